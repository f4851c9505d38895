//! The vault password in the system keyring: Secret Service (GNOME Keyring,
//! KWallet) where a D-Bus session bus runs, the kernel's keyutils store
//! otherwise. An entry is named by the vault ID from the config, so the same
//! vault synced to another path or device is the same entry.

use std::path::Path;

use zeroize::Zeroizing;

use crate::vault::Vault;
use crate::{Error, Result};

const SERVICE: &str = "sealfs";

fn store_name() -> &'static str {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
        "Secret Service"
    } else {
        "kernel keyutils"
    }
}

fn entry(vault: &Path) -> Result<keyring_core::Entry> {
    let id = Vault::info(vault)?.vault_id;
    let fail = |e: keyring_core::Error| {
        Error::Config(format!("no usable keyring ({}): {e}", store_name()))
    };
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
        keyring_core::set_default_store(
            zbus_secret_service_keyring_store::Store::new().map_err(fail)?,
        );
    } else {
        keyring_core::set_default_store(linux_keyutils_keyring_store::Store::new().map_err(fail)?);
    }
    keyring_core::Entry::new(SERVICE, &format!("vault-{}", super::setup::hex(&id))).map_err(fail)
}

/// The password stored for `vault`.
pub fn load(vault: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let e = entry(vault)?;
    match e.get_secret() {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(keyring_core::Error::NoEntry) => Err(Error::Config(format!(
            "the keyring ({}) has no password for this vault; run `sealfs keyring save {}`",
            store_name(),
            vault.display()
        ))),
        Err(err) => Err(Error::Config(format!(
            "cannot read the keyring ({}): {err}",
            store_name()
        ))),
    }
}

/// Stores `password` for `vault`.
pub fn save(vault: &Path, password: &[u8]) -> Result<()> {
    entry(vault)?.set_secret(password).map_err(|e| {
        Error::Config(format!(
            "cannot write to the keyring ({}): {e}",
            store_name()
        ))
    })
}

/// Removes the stored password; an error if there was none.
pub fn forget(vault: &Path) -> Result<()> {
    match entry(vault)?.delete_credential() {
        Ok(()) => Ok(()),
        Err(keyring_core::Error::NoEntry) => Err(Error::Config(format!(
            "the keyring ({}) has no password for this vault",
            store_name()
        ))),
        Err(e) => Err(Error::Config(format!(
            "cannot change the keyring ({}): {e}",
            store_name()
        ))),
    }
}

/// Which store is in use (for messages).
pub fn store() -> &'static str {
    store_name()
}

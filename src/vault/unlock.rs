//! Creating a vault's config and unlocking it with a password or recovery key.

use std::os::fd::BorrowedFd;

use crate::crypto::{KdfParams, SecretKey, argon2id, open_detached, random_array, seal_detached};
use crate::error::{Error, Result};
use crate::format::chunk::Geometry;
use crate::format::config::{
    CONFIG_FILE, ConfigFile, PasswordSlot, SALT_LEN, WRAPPED_KEY_LEN, WRAPPED_VAULT_KEYS_LEN,
};

use super::keys::{VaultKeys, context};
use super::sys;

/// What unlocks a vault.
pub enum Secret<'a> {
    Password(&'a [u8]),
    RecoveryKey(&'a SecretKey),
}

/// Reads and parses the config (no secret needed).
pub fn read_config(root: BorrowedFd<'_>) -> Result<ConfigFile> {
    let bytes = match sys::read_small_file(root, CONFIG_FILE.as_bytes(), 64 * 1024) {
        Ok(b) => b,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            return Err(Error::Config(format!(
                "not a sealfs vault: no {CONFIG_FILE} in it"
            )));
        }
        Err(e) => return Err(Error::Config(format!("cannot read {CONFIG_FILE}: {e}"))),
    };
    let cfg =
        ConfigFile::decode(&bytes).map_err(|e| Error::Config(format!("{CONFIG_FILE}: {e}")))?;
    if Geometry::new(cfg.chunk_size).is_none() {
        return Err(Error::Config(format!(
            "{CONFIG_FILE}: invalid chunk size {}",
            cfg.chunk_size
        )));
    }
    Ok(cfg)
}

fn to_key<const N: usize>(v: &[u8]) -> Result<[u8; N]> {
    v.try_into()
        .map_err(|_| Error::Config("internal: wrapped key length".into()))
}

/// Recomputes the MAC of `cfg` under `mk`.
fn compute_mac(cfg: &ConfigFile, mk: &SecretKey) -> [u8; 32] {
    *blake3::keyed_hash(mk.derive(context::CONFIG_MAC).expose(), &cfg.mac_input()).as_bytes()
}

/// Seals all MK-dependent parts of `cfg` (password slot, vault keys, MAC).
pub(crate) fn seal_config(
    cfg: &mut ConfigFile,
    mk: &SecretKey,
    password: &[u8],
    name_key: &SecretKey,
    dirid_key: &SecretKey,
) -> Result<()> {
    let kek = argon2id(
        password,
        &cfg.password.salt,
        KdfParams {
            memory_kib: cfg.password.memory_kib,
            passes: cfg.password.passes,
            lanes: cfg.password.lanes,
        },
    )
    .map_err(Error::Config)?;
    cfg.password.wrapped_mk =
        to_key::<WRAPPED_KEY_LEN>(&seal_detached(&kek, &cfg.password_aad(), mk.expose())?)?;
    let mut both = zeroize::Zeroizing::new([0u8; 64]);
    both[..32].copy_from_slice(name_key.expose());
    both[32..].copy_from_slice(dirid_key.expose());
    cfg.vault_keys = to_key::<WRAPPED_VAULT_KEYS_LEN>(&seal_detached(
        &mk.derive(context::VAULT_KEY_WRAP),
        &cfg.prefix(),
        &both[..],
    )?)?;
    cfg.mac = compute_mac(cfg, mk);
    Ok(())
}

/// Adds (or replaces) the recovery slot; returns the new recovery key.
pub(crate) fn seal_recovery(cfg: &mut ConfigFile, mk: &SecretKey) -> Result<SecretKey> {
    let rk = SecretKey::random()?;
    cfg.recovery = Some([0; WRAPPED_KEY_LEN]);
    let w = seal_detached(
        &rk.derive(context::RECOVERY_SLOT),
        &cfg.recovery_aad(),
        mk.expose(),
    )?;
    cfg.recovery = Some(to_key(&w)?);
    cfg.mac = compute_mac(cfg, mk);
    Ok(rk)
}

/// A new config with fresh master, name and dir-id keys.
pub fn create_config(
    password: &[u8],
    kdf: KdfParams,
    chunk_size: u32,
) -> Result<(ConfigFile, SecretKey)> {
    kdf.check().map_err(Error::Config)?;
    if Geometry::new(chunk_size).is_none() {
        return Err(Error::Config(format!(
            "chunk size {chunk_size} is not a power of two between 4096 and 1048576"
        )));
    }
    let mk = SecretKey::random()?;
    let name_key = SecretKey::random()?;
    let dirid_key = SecretKey::random()?;
    let mut cfg = ConfigFile {
        chunk_size,
        generation: 1,
        password: PasswordSlot {
            memory_kib: kdf.memory_kib,
            passes: kdf.passes,
            lanes: kdf.lanes,
            salt: random_array::<SALT_LEN>()?,
            wrapped_mk: [0; WRAPPED_KEY_LEN],
        },
        recovery: None,
        vault_keys: [0; WRAPPED_VAULT_KEYS_LEN],
        retired: Vec::new(),
        mac: [0; 32],
    };
    seal_config(&mut cfg, &mk, password, &name_key, &dirid_key)?;
    let rk = seal_recovery(&mut cfg, &mk)?;
    Ok((cfg, rk))
}

/// Recovers the master key from a slot, then authenticates the whole config.
pub fn unlock_config(cfg: &ConfigFile, secret: Secret<'_>) -> Result<VaultKeys> {
    let mk_bytes = match secret {
        Secret::Password(pw) => {
            let params = KdfParams {
                memory_kib: cfg.password.memory_kib,
                passes: cfg.password.passes,
                lanes: cfg.password.lanes,
            };
            params.check().map_err(Error::Config)?;
            let kek = argon2id(pw, &cfg.password.salt, params).map_err(Error::Config)?;
            open_detached(&kek, &cfg.password_aad(), &cfg.password.wrapped_mk)
        }
        Secret::RecoveryKey(rk) => {
            let Some(w) = &cfg.recovery else {
                return Err(Error::Config("this vault has no recovery key slot".into()));
            };
            open_detached(&rk.derive(context::RECOVERY_SLOT), &cfg.recovery_aad(), w)
        }
    };
    let mut mk_bytes = zeroize::Zeroizing::new(mk_bytes.ok_or(Error::WrongPassword)?);
    let mk = SecretKey::from_slice(&mk_bytes).ok_or(Error::WrongPassword)?;
    zeroize::Zeroize::zeroize(&mut *mk_bytes);
    let mac = compute_mac(cfg, &mk);
    if !constant_time_eq(&mac, &cfg.mac) {
        return Err(Error::Config(format!(
            "{CONFIG_FILE} failed authentication: it was modified outside sealfs"
        )));
    }
    let both = zeroize::Zeroizing::new(
        open_detached(
            &mk.derive(context::VAULT_KEY_WRAP),
            &cfg.prefix(),
            &cfg.vault_keys,
        )
        .ok_or_else(|| Error::Config(format!("{CONFIG_FILE}: vault keys failed authentication")))?,
    );
    let name_key =
        SecretKey::from_slice(&both[..32]).ok_or_else(|| Error::Config("vault keys".into()))?;
    let dirid_key =
        SecretKey::from_slice(&both[32..]).ok_or_else(|| Error::Config("vault keys".into()))?;
    let mut mks = vec![(cfg.generation, mk.clone())];
    let retired_wrap = mk.derive(context::RETIRED_KEY_WRAP);
    for r in &cfg.retired {
        let old = open_detached(&retired_wrap, &cfg.retired_aad(r.generation), &r.wrapped_mk)
            .and_then(|b| SecretKey::from_slice(&zeroize::Zeroizing::new(b)))
            .ok_or_else(|| {
                Error::Config(format!("{CONFIG_FILE}: retired key failed authentication"))
            })?;
        mks.push((r.generation, old));
    }
    let geometry = Geometry::new(cfg.chunk_size)
        .ok_or_else(|| Error::Config(format!("invalid chunk size {}", cfg.chunk_size)))?;
    Ok(VaultKeys::new(
        geometry,
        cfg.generation,
        &mks,
        &name_key,
        dirid_key,
    ))
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    blake3::Hash::from(*a) == blake3::Hash::from(*b)
}

/// Formats a recovery key for humans: 64 hex digits in groups of 8.
pub fn format_recovery_key(k: &SecretKey) -> String {
    k.expose()
        .chunks(4)
        .map(|c| c.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// Parses a recovery key, ignoring dashes and whitespace.
pub fn parse_recovery_key(s: &str) -> Result<SecretKey> {
    let hex = zeroize::Zeroizing::new(
        s.bytes()
            .filter(|c| !c.is_ascii_whitespace() && *c != b'-')
            .collect::<Vec<u8>>(),
    );
    let bad = || Error::Config("a recovery key is 64 hexadecimal digits".into());
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    for (i, pair) in hex.chunks(2).enumerate() {
        let p = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    SecretKey::from_slice(&out[..]).ok_or_else(bad)
}

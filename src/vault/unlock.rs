//! Creating a vault's config, unlocking it, and writing it back sealed.

use std::os::fd::BorrowedFd;

use crate::crypto::{
    KdfParams, SecretKey, constant_time_eq, open_detached, random_array, seal_detached,
};
use crate::error::{Error, Result};
use crate::format::chunk::Geometry;
use crate::format::config::{
    CONFIG_FILE, ConfigFile, LONGNAME_MAX, LONGNAME_MIN, RetiredKey, State, WRAPPED_VAULT_KEYS_LEN,
};

use super::keys::{MasterKeys, context};
use super::slots::{self, Secret};
use super::sys;

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

/// Writes `cfg` atomically (temp file, fsync, rename, fsync of the directory).
pub fn write_config(root: BorrowedFd<'_>, cfg: &ConfigFile) -> Result<()> {
    sys::write_atomic(root, CONFIG_FILE, &cfg.encode(), 0o600)?;
    Ok(())
}

fn to_key<const N: usize>(v: &[u8]) -> Result<[u8; N]> {
    v.try_into()
        .map_err(|_| Error::Config("internal: wrapped key length".into()))
}

fn compute_mac(cfg: &ConfigFile, auth: &SecretKey) -> [u8; 32] {
    *blake3::keyed_hash(auth.derive(context::CONFIG_MAC).expose(), &cfg.mac_input()).as_bytes()
}

/// Seals everything MK-bound in `cfg` under `m`: the MK to every slot, the
/// vault keys, the retired keys and the MAC. Needs no slot secret.
pub fn seal_config(cfg: &mut ConfigFile, m: &MasterKeys) -> Result<()> {
    slots::seal_slots(cfg, &m.current)?;
    let seal_pair = |name: &SecretKey, dirid: &SecretKey, aad: &[u8]| {
        let mut both = zeroize::Zeroizing::new([0u8; 64]);
        both[..32].copy_from_slice(name.expose());
        both[32..].copy_from_slice(dirid.expose());
        to_key::<WRAPPED_VAULT_KEYS_LEN>(&seal_detached(
            &m.current.derive(context::VAULT_KEY_WRAP),
            aad,
            &both[..],
        )?)
    };
    cfg.vault_keys = seal_pair(&m.name_key, &m.dirid_key, &cfg.vault_keys_aad())?;
    cfg.state = match (&m.previous, cfg.state) {
        (Some(_), _) => State::FullRekeying,
        (None, State::FullRekeying) => State::Idle,
        (None, s) => s,
    };
    cfg.previous_vault_keys = match &m.previous {
        Some((n, d)) => Some(seal_pair(n, d, &cfg.previous_vault_keys_aad())?),
        None => None,
    };
    let wrap = m.current.derive(context::RETIRED_KEY_WRAP);
    cfg.retired = m
        .retired
        .iter()
        .map(|(g, k)| {
            Ok(RetiredKey {
                generation: *g,
                wrapped_mk: to_key(&seal_detached(&wrap, &cfg.retired_aad(*g), k.expose())?)?,
            })
        })
        .collect::<Result<_>>()?;
    cfg.mac = compute_mac(cfg, &m.auth);
    Ok(())
}

/// Parameters of a new vault.
#[derive(Clone, Copy, Debug)]
pub struct NewConfig {
    pub kdf: KdfParams,
    pub chunk_size: u32,
    pub longname_max: u16,
}

impl NewConfig {
    /// Refuses what `create_config` would refuse, before anything is asked or written.
    pub fn check(&self) -> Result<()> {
        self.kdf.check().map_err(Error::Config)?;
        if Geometry::new(self.chunk_size).is_none() {
            return Err(Error::Config(format!(
                "chunk size {} is not a power of two between 4096 and 1048576",
                self.chunk_size
            )));
        }
        if !(LONGNAME_MIN..=LONGNAME_MAX).contains(&self.longname_max) {
            return Err(Error::Config(format!(
                "the name length limit must be between {LONGNAME_MIN} and {LONGNAME_MAX} bytes"
            )));
        }
        Ok(())
    }
}

impl Default for NewConfig {
    fn default() -> Self {
        NewConfig {
            kdf: KdfParams::DEFAULT,
            chunk_size: super::DEFAULT_CHUNK_SIZE,
            longname_max: crate::format::config::LONGNAME_DEFAULT,
        }
    }
}

/// A new config with fresh master, name and dir-id keys, one password slot
/// and a recovery slot; returns it with its keys and the recovery key.
pub fn create_config(password: &[u8], p: NewConfig) -> Result<(ConfigFile, MasterKeys, SecretKey)> {
    p.check()?;
    let m = MasterKeys {
        slot: 0,
        current: SecretKey::random()?,
        retired: Vec::new(),
        name_key: SecretKey::random()?,
        dirid_key: SecretKey::random()?,
        auth: SecretKey::random()?,
        previous: None,
    };
    let mut cfg = ConfigFile {
        chunk_size: p.chunk_size,
        generation: 1,
        vault_id: random_array()?,
        longname_max: p.longname_max,
        state: State::Idle,
        slots: Vec::new(),
        vault_keys: [0; WRAPPED_VAULT_KEYS_LEN],
        previous_vault_keys: None,
        retired: Vec::new(),
        mac: [0; 32],
    };
    let pw = slots::password_slot(&cfg, 0, password, p.kdf, &m.auth)?;
    let (rs, rk) = slots::recovery_slot(&cfg, 1, &m.auth)?;
    cfg.slots = vec![pw, rs];
    seal_config(&mut cfg, &m)?;
    Ok((cfg, m, rk))
}

/// Opens the master key through a slot, then authenticates the whole config
/// and unwraps the vault keys and retired generations.
pub fn unlock_config(cfg: &ConfigFile, secret: Secret<'_>) -> Result<MasterKeys> {
    let (slot, mk, auth) = slots::open_slots(cfg, &secret)?;
    if !constant_time_eq(&compute_mac(cfg, &auth), &cfg.mac) {
        return Err(Error::Config(format!(
            "{CONFIG_FILE} failed authentication: it was modified outside sealfs"
        )));
    }
    let open_pair = |sealed: &[u8], aad: &[u8]| -> Result<(SecretKey, SecretKey)> {
        let both = zeroize::Zeroizing::new(
            open_detached(&mk.derive(context::VAULT_KEY_WRAP), aad, sealed).ok_or_else(|| {
                Error::Config(format!("{CONFIG_FILE}: vault keys failed authentication"))
            })?,
        );
        let bad = || Error::Config("vault keys".into());
        Ok((
            SecretKey::from_slice(&both[..32]).ok_or_else(bad)?,
            SecretKey::from_slice(&both[32..]).ok_or_else(bad)?,
        ))
    };
    let (name_key, dirid_key) = open_pair(&cfg.vault_keys, &cfg.vault_keys_aad())?;
    let previous = match &cfg.previous_vault_keys {
        Some(p) => Some(open_pair(p, &cfg.previous_vault_keys_aad())?),
        None => None,
    };
    let wrap = mk.derive(context::RETIRED_KEY_WRAP);
    let mut retired = Vec::new();
    for r in &cfg.retired {
        let old = open_detached(&wrap, &cfg.retired_aad(r.generation), &r.wrapped_mk)
            .and_then(|b| SecretKey::from_slice(&zeroize::Zeroizing::new(b)))
            .ok_or_else(|| {
                Error::Config(format!("{CONFIG_FILE}: retired key failed authentication"))
            })?;
        retired.push((r.generation, old));
    }
    Ok(MasterKeys {
        slot,
        current: mk,
        retired,
        name_key,
        dirid_key,
        auth,
        previous,
    })
}

fn recovery_checksum(k: &[u8]) -> String {
    let h = blake3::derive_key("sealfs v1 2026-11 recovery key checksum", k);
    format!("{:02x}{:02x}", h[0], h[1])
}

/// Formats a recovery key for humans: 64 hex digits in groups of 8, then a
/// group of 4 that is a checksum, so a typo is named as a typo.
pub fn format_recovery_key(k: &SecretKey) -> String {
    let mut groups: Vec<String> = k
        .expose()
        .chunks(4)
        .map(|c| c.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .collect();
    groups.push(recovery_checksum(k.expose()));
    groups.join("-")
}

/// Parses a recovery key, ignoring dashes and whitespace; checks the
/// checksum group when it is there.
pub fn parse_recovery_key(s: &str) -> Result<SecretKey> {
    let hex = zeroize::Zeroizing::new(
        s.bytes()
            .filter(|c| !c.is_ascii_whitespace() && *c != b'-')
            .map(|c| c.to_ascii_lowercase())
            .collect::<Vec<u8>>(),
    );
    let bad = || {
        Error::Config(
            "a recovery key is 68 hexadecimal digits (9 groups, the last a checksum)".into(),
        )
    };
    if hex.len() != 64 && hex.len() != 68 {
        return Err(bad());
    }
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    for (i, pair) in hex.chunks(2).enumerate() {
        let p = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        if i == 31 {
            break;
        }
    }
    if hex.len() == 68 && hex[64..] != *recovery_checksum(&out[..]).as_bytes() {
        return Err(Error::Config(
            "the recovery key has a typo: its checksum (last group) does not match".into(),
        ));
    }
    SecretKey::from_slice(&out[..]).ok_or_else(bad)
}

/// Names at the vault root that look like a sync tool's conflict copy of
/// the config (`sealfs.sync-conflict-….conf`, `sealfs (… conflicted copy …).conf`).
pub fn config_conflicts(root: BorrowedFd<'_>) -> Vec<String> {
    let tmp = format!("{CONFIG_FILE}.tmp-");
    sys::read_dir(root)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| e.name.into_string().ok())
        .filter(|n| {
            crate::format::names::is_config_name(n) && n != CONFIG_FILE && !n.starts_with(&tmp)
        })
        .collect()
}

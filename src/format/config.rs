//! The vault config (`sealfs.conf` at the vault root): format version, chunk
//! size, the key slots that wrap the master key, the MK-wrapped vault keys,
//! any retired master-key generations, and a MAC under the master key.
//!
//! ```text
//! off  len  field (integers little-endian)
//!   0    8  magic "SEALFSv\n"
//!   8    2  format version = 1
//!  10    2  flags = 0 (any set bit is refused)
//!  12    4  chunk size (plaintext bytes; power of two, 4 KiB..1 MiB)
//!  16    4  current master-key generation
//!  -- password slot --
//!  20    1  kdf = 1 (Argon2id v1.3)
//!  21    3  zero
//!  24    4  Argon2 memory (KiB)
//!  28    4  Argon2 passes
//!  32    4  Argon2 lanes
//!  36   16  salt
//!  52   60  nonce(12) || AES-256-GCM-SIV(KEK, MK) || tag(16); aad = bytes 0..52
//!  -- recovery slot --
//! 112    1  present (0 or 1)
//! 113    3  zero
//! 116   60  nonce || AES-256-GCM-SIV(recovery KEK, MK) || tag; aad = bytes 0..20 || 112..116
//!  -- vault keys (stable across rekey) --
//! 176   92  nonce || AES-256-GCM-SIV(MK-derived wrap key, name key || dir-id key) || tag;
//!           aad = bytes 0..20
//!  -- retired master keys (present only while a rekey is in progress) --
//! 268    2  count n (0..=8)
//! 270 n*64  generation(4) || nonce || AES-256-GCM-SIV(MK-derived wrap key, old MK) || tag;
//!           aad = bytes 0..20 || generation
//!  -- end --
//! 270+64n  32  BLAKE3-keyed(MK-derived config MAC key, all preceding bytes)
//! ```

pub const CONFIG_FILE: &str = "sealfs.conf";
pub const CONFIG_MAGIC: [u8; 8] = *b"SEALFSv\n";
pub const CONFIG_VERSION: u16 = 1;
pub const SALT_LEN: usize = 16;
/// nonce || wrapped 32-byte key || tag
pub const WRAPPED_KEY_LEN: usize = 12 + 32 + 16;
/// nonce || wrapped 64 bytes || tag
pub const WRAPPED_VAULT_KEYS_LEN: usize = 12 + 64 + 16;
pub const MAX_RETIRED: usize = 8;
pub const MAC_LEN: usize = 32;

const OFF_PASSWORD: usize = 20;
const OFF_PW_WRAP: usize = 52;
const OFF_RECOVERY: usize = 112;
const OFF_VAULT_KEYS: usize = 176;
const OFF_RETIRED: usize = 268;
const FIXED_LEN: usize = 270;
const RETIRED_ENTRY_LEN: usize = 4 + WRAPPED_KEY_LEN;
pub const KDF_ARGON2ID: u8 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordSlot {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
    pub salt: [u8; SALT_LEN],
    pub wrapped_mk: [u8; WRAPPED_KEY_LEN],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetiredKey {
    pub generation: u32,
    pub wrapped_mk: [u8; WRAPPED_KEY_LEN],
}

/// A parsed config. The MAC is checked by the caller once the master key is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    pub chunk_size: u32,
    pub generation: u32,
    pub password: PasswordSlot,
    pub recovery: Option<[u8; WRAPPED_KEY_LEN]>,
    pub vault_keys: [u8; WRAPPED_VAULT_KEYS_LEN],
    pub retired: Vec<RetiredKey>,
    pub mac: [u8; MAC_LEN],
}

#[derive(Debug, PartialEq, Eq)]
pub enum ConfigError {
    NotSealfs,
    Truncated,
    UnsupportedVersion(u16),
    UnknownFlags(u16),
    UnknownKdf(u8),
    Malformed(&'static str),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::NotSealfs => f.write_str("not a sealfs config (bad magic)"),
            ConfigError::Truncated => f.write_str("config is truncated"),
            ConfigError::UnsupportedVersion(v) => write!(
                f,
                "config format version {v} is not supported by this sealfs (supports {CONFIG_VERSION}); upgrade sealfs"
            ),
            ConfigError::UnknownFlags(x) => {
                write!(f, "config has unknown flags {x:#x}; upgrade sealfs")
            }
            ConfigError::UnknownKdf(k) => {
                write!(f, "config names unknown key derivation function {k}")
            }
            ConfigError::Malformed(m) => write!(f, "config is malformed: {m}"),
        }
    }
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn arr<const N: usize>(b: &[u8], o: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[o..o + N]);
    a
}

impl ConfigFile {
    /// Bytes 0..20: what every wrap in the config binds as associated data.
    pub fn prefix(&self) -> [u8; 20] {
        let mut p = [0u8; 20];
        p[..8].copy_from_slice(&CONFIG_MAGIC);
        p[8..10].copy_from_slice(&CONFIG_VERSION.to_le_bytes());
        p[12..16].copy_from_slice(&self.chunk_size.to_le_bytes());
        p[16..20].copy_from_slice(&self.generation.to_le_bytes());
        p
    }

    /// Associated data of the password slot's wrap: bytes 0..52.
    pub fn password_aad(&self) -> Vec<u8> {
        let mut a = self.prefix().to_vec();
        a.push(KDF_ARGON2ID);
        a.extend_from_slice(&[0; 3]);
        a.extend_from_slice(&self.password.memory_kib.to_le_bytes());
        a.extend_from_slice(&self.password.passes.to_le_bytes());
        a.extend_from_slice(&self.password.lanes.to_le_bytes());
        a.extend_from_slice(&self.password.salt);
        a
    }

    /// Associated data of the recovery slot's wrap.
    pub fn recovery_aad(&self) -> Vec<u8> {
        let mut a = self.prefix().to_vec();
        a.extend_from_slice(&[1, 0, 0, 0]);
        a
    }

    /// Associated data of a retired key's wrap.
    pub fn retired_aad(&self, generation: u32) -> Vec<u8> {
        let mut a = self.prefix().to_vec();
        a.extend_from_slice(&generation.to_le_bytes());
        a
    }

    /// Everything the MAC covers.
    pub fn mac_input(&self) -> Vec<u8> {
        let mut b = self.password_aad();
        b.extend_from_slice(&self.password.wrapped_mk);
        match &self.recovery {
            Some(w) => {
                b.extend_from_slice(&[1, 0, 0, 0]);
                b.extend_from_slice(w);
            }
            None => b.extend_from_slice(&[0u8; 4 + WRAPPED_KEY_LEN]),
        }
        b.extend_from_slice(&self.vault_keys);
        b.extend_from_slice(&(self.retired.len() as u16).to_le_bytes());
        for r in &self.retired {
            b.extend_from_slice(&r.generation.to_le_bytes());
            b.extend_from_slice(&r.wrapped_mk);
        }
        b
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.mac_input();
        b.extend_from_slice(&self.mac);
        b
    }

    pub fn decode(b: &[u8]) -> Result<Self, ConfigError> {
        if b.len() < 8 || b[..8] != CONFIG_MAGIC {
            return Err(ConfigError::NotSealfs);
        }
        if b.len() < 12 {
            return Err(ConfigError::Truncated);
        }
        let version = u16_at(b, 8);
        if version != CONFIG_VERSION {
            return Err(ConfigError::UnsupportedVersion(version));
        }
        let flags = u16_at(b, 10);
        if flags != 0 {
            return Err(ConfigError::UnknownFlags(flags));
        }
        if b.len() < FIXED_LEN + MAC_LEN {
            return Err(ConfigError::Truncated);
        }
        if b[OFF_PASSWORD] != KDF_ARGON2ID {
            return Err(ConfigError::UnknownKdf(b[OFF_PASSWORD]));
        }
        if b[OFF_PASSWORD + 1..OFF_PASSWORD + 4] != [0; 3]
            || b[OFF_RECOVERY + 1..OFF_RECOVERY + 4] != [0; 3]
        {
            return Err(ConfigError::Malformed("reserved bytes are not zero"));
        }
        let recovery = match b[OFF_RECOVERY] {
            0 => None,
            1 => Some(arr(b, OFF_RECOVERY + 4)),
            _ => return Err(ConfigError::Malformed("recovery slot marker")),
        };
        let n = usize::from(u16_at(b, OFF_RETIRED));
        if n > MAX_RETIRED {
            return Err(ConfigError::Malformed("too many retired keys"));
        }
        let total = FIXED_LEN + n * RETIRED_ENTRY_LEN + MAC_LEN;
        if b.len() < total {
            return Err(ConfigError::Truncated);
        }
        if b.len() > total {
            return Err(ConfigError::Malformed("trailing bytes"));
        }
        let retired = (0..n)
            .map(|i| {
                let o = FIXED_LEN + i * RETIRED_ENTRY_LEN;
                RetiredKey {
                    generation: u32_at(b, o),
                    wrapped_mk: arr(b, o + 4),
                }
            })
            .collect();
        Ok(ConfigFile {
            chunk_size: u32_at(b, 12),
            generation: u32_at(b, 16),
            password: PasswordSlot {
                memory_kib: u32_at(b, 24),
                passes: u32_at(b, 28),
                lanes: u32_at(b, 32),
                salt: arr(b, 36),
                wrapped_mk: arr(b, OFF_PW_WRAP),
            },
            recovery,
            vault_keys: arr(b, OFF_VAULT_KEYS),
            retired,
            mac: arr(b, total - MAC_LEN),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ConfigFile {
        ConfigFile {
            chunk_size: 4096,
            generation: 3,
            password: PasswordSlot {
                memory_kib: 65536,
                passes: 3,
                lanes: 1,
                salt: [1; SALT_LEN],
                wrapped_mk: [2; WRAPPED_KEY_LEN],
            },
            recovery: Some([3; WRAPPED_KEY_LEN]),
            vault_keys: [4; WRAPPED_VAULT_KEYS_LEN],
            retired: vec![RetiredKey {
                generation: 2,
                wrapped_mk: [5; WRAPPED_KEY_LEN],
            }],
            mac: [6; MAC_LEN],
        }
    }

    #[test]
    fn layout_offsets_match_the_spec() {
        let c = sample();
        let b = c.encode();
        assert_eq!(b.len(), FIXED_LEN + RETIRED_ENTRY_LEN + MAC_LEN);
        assert_eq!(&b[OFF_PW_WRAP..OFF_PW_WRAP + 4], &[2; 4]);
        assert_eq!(b[OFF_RECOVERY], 1);
        assert_eq!(&b[OFF_RECOVERY + 4..OFF_RECOVERY + 8], &[3; 4]);
        assert_eq!(&b[OFF_VAULT_KEYS..OFF_VAULT_KEYS + 4], &[4; 4]);
        assert_eq!(u16_at(&b, OFF_RETIRED), 1);
        assert_eq!(c.password_aad().len(), OFF_PW_WRAP);
        assert_eq!(ConfigFile::decode(&b).unwrap(), c);
    }

    #[test]
    fn refuses_bad_input() {
        let b = sample().encode();
        assert_eq!(ConfigFile::decode(b"nope"), Err(ConfigError::NotSealfs));
        assert_eq!(ConfigFile::decode(&b[..100]), Err(ConfigError::Truncated));
        let mut v = b.clone();
        v[8] = 9;
        assert_eq!(
            ConfigFile::decode(&v),
            Err(ConfigError::UnsupportedVersion(9))
        );
        let mut f = b.clone();
        f[10] = 1;
        assert_eq!(ConfigFile::decode(&f), Err(ConfigError::UnknownFlags(1)));
        let mut t = b.clone();
        t.push(0);
        assert!(ConfigFile::decode(&t).is_err());
        for cut in 0..b.len() {
            assert!(ConfigFile::decode(&b[..cut]).is_err(), "cut at {cut}");
        }
    }
}

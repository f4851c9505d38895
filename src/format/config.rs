//! The vault config (`sealfs.conf` at the vault root): format version, chunk
//! size, vault ID, name-length limit, the key-slot table, the MK-wrapped
//! vault keys, retired master-key generations, and a MAC under the master key.
//!
//! ```text
//! off  len  field (integers little-endian)
//!   0    8  magic "SEALFSv\n"
//!   8    2  format version = 1
//!  10    2  flags = 0 (any set bit is refused)
//!  12    4  chunk size (plaintext bytes; power of two, 4 KiB..1 MiB)
//!  16    4  current master-key generation (new headers are wrapped with it)
//!  20   16  vault ID (random at init; names the vault in keyrings, locks, logs)
//!  36    2  longest vault entry name for an encrypted name (50..=255; longer ones are hashed)
//!  38    1  state: 0 idle, 1 rekey in progress, 2 rekey --full in progress
//!           (other values refused)
//!  39    1  zero
//!  40    2  slot count s (1..=64)
//!  42    2  retired-generation count r (0..=16)
//!  44       s slots, each:
//!             0   1  kind: 1 password, 2 recovery key; other kinds are kept and rewrapped, never opened
//!             1   1  zero
//!             2   2  slot id (stable; never reused while the slot exists)
//!             4   2  length b of the kind's body
//!             6  32  slot public key (X25519)
//!            38  32  ephemeral public key
//!            70  60  nonce || AES-256-GCM-SIV(wrap key, MK) || tag
//!           130  32  key commitment
//!           162   b  body. Password (b = 124): kdf = 1 (Argon2id v1.3), 3 zero, memory
//!                    KiB, passes, lanes (u32 each), salt (16), nonce || AES-256-GCM-SIV(KEK,
//!                    slot private key || vault auth key) || tag (92). Recovery (b = 60):
//!                    nonce || AES-256-GCM-SIV(recovery-key subkey, vault auth key) || tag;
//!                    the private key is derived from the recovery key.
//!    .  92  nonce || AES-256-GCM-SIV(MK subkey, name key || dir-id key) || tag
//!    .  92  (state 2 only) the same for the previous name and dir-id keys
//!    . r*64 generation (4) || nonce || AES-256-GCM-SIV(MK subkey, that generation's MK) || tag
//!    .  32  BLAKE3-keyed(vault-auth-key subkey, every preceding byte)
//!
//! The vault auth key is a random secret made at init that every slot holds
//! under its own secret and that `rekey` keeps: the MAC under it is what stops
//! anyone without a slot's secret from sealing a master key of their choosing
//! to a slot's public key.
//! ```

use crate::crypto::{SEALED_LEN, SealedKey};

pub const CONFIG_FILE: &str = "sealfs.conf";
pub const CONFIG_MAGIC: [u8; 8] = *b"SEALFSv\n";
pub const CONFIG_VERSION: u16 = 1;
pub const SALT_LEN: usize = 16;
pub const VAULT_ID_LEN: usize = 16;
/// nonce || wrapped 32-byte key || tag
pub const WRAPPED_KEY_LEN: usize = SEALED_LEN;
/// nonce || wrapped (slot private key || vault auth key) || tag
pub const WRAPPED_SECRET_LEN: usize = 12 + 64 + 16;
/// nonce || wrapped 64 bytes || tag
pub const WRAPPED_VAULT_KEYS_LEN: usize = 12 + 64 + 16;
pub const MAX_SLOTS: usize = 64;
pub const MAX_RETIRED: usize = 16;
pub const MAC_LEN: usize = 32;
pub const KDF_ARGON2ID: u8 = 1;
pub const SLOT_PASSWORD: u8 = 1;
pub const SLOT_RECOVERY: u8 = 2;
/// Bounds and default of the longest encrypted entry name kept as is.
pub const LONGNAME_MIN: u16 = 50;
pub const LONGNAME_MAX: u16 = 255;
pub const LONGNAME_DEFAULT: u16 = 200;

const FIXED_LEN: usize = 44;
#[cfg(test)]
const SLOT_COMMON_LEN: usize = 162;
const PASSWORD_BODY_LEN: usize = 16 + SALT_LEN + WRAPPED_SECRET_LEN;
#[cfg(test)]
const RETIRED_ENTRY_LEN: usize = 4 + WRAPPED_KEY_LEN;

/// What a config says about a rekey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Rekeying,
    /// `rekey --full`: names, directory IDs and contents are being
    /// re-encrypted; the previous name and dir-id keys are in the config.
    FullRekeying,
}

impl State {
    fn code(self) -> u8 {
        match self {
            State::Idle => 0,
            State::Rekeying => 1,
            State::FullRekeying => 2,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordSlot {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
    pub salt: [u8; SALT_LEN],
    /// The slot's private key and the vault auth key under the Argon2id KEK.
    pub wrapped_secret: [u8; WRAPPED_SECRET_LEN],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoverySlot {
    /// The vault auth key under a subkey of the recovery key.
    pub wrapped_auth: [u8; WRAPPED_KEY_LEN],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotKind {
    Password(PasswordSlot),
    Recovery(RecoverySlot),
    /// A kind from a newer sealfs: kept byte-exactly, rewrapped by rekey.
    Other {
        kind: u8,
        body: Vec<u8>,
    },
}

impl SlotKind {
    pub fn code(&self) -> u8 {
        match self {
            SlotKind::Password(_) => SLOT_PASSWORD,
            SlotKind::Recovery(_) => SLOT_RECOVERY,
            SlotKind::Other { kind, .. } => *kind,
        }
    }

    pub fn name(&self) -> String {
        match self {
            SlotKind::Password(_) => "password".into(),
            SlotKind::Recovery(_) => "recovery".into(),
            SlotKind::Other { kind, .. } => format!("kind {kind} (from a newer sealfs)"),
        }
    }

    fn body(&self) -> Vec<u8> {
        match self {
            SlotKind::Password(p) => {
                let mut b = Vec::with_capacity(PASSWORD_BODY_LEN);
                b.extend_from_slice(&[KDF_ARGON2ID, 0, 0, 0]);
                b.extend_from_slice(&p.memory_kib.to_le_bytes());
                b.extend_from_slice(&p.passes.to_le_bytes());
                b.extend_from_slice(&p.lanes.to_le_bytes());
                b.extend_from_slice(&p.salt);
                b.extend_from_slice(&p.wrapped_secret);
                b
            }
            SlotKind::Recovery(r) => r.wrapped_auth.to_vec(),
            SlotKind::Other { body, .. } => body.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub id: u16,
    pub kind: SlotKind,
    pub public: [u8; 32],
    /// The master key sealed to `public`.
    pub mk: SealedKey,
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
    pub vault_id: [u8; VAULT_ID_LEN],
    pub longname_max: u16,
    pub state: State,
    pub slots: Vec<Slot>,
    pub vault_keys: [u8; WRAPPED_VAULT_KEYS_LEN],
    /// Present exactly in state `FullRekeying`.
    pub previous_vault_keys: Option<[u8; WRAPPED_VAULT_KEYS_LEN]>,
    pub retired: Vec<RetiredKey>,
    pub mac: [u8; MAC_LEN],
}

#[derive(Debug, PartialEq, Eq)]
pub enum ConfigError {
    NotSealfs,
    Truncated,
    UnsupportedVersion(u16),
    UnknownFlags(u16),
    UnknownState(u8),
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
            ConfigError::UnknownState(s) => write!(
                f,
                "config is in state {s}, written by a newer sealfs (for example a rekey --full in progress); upgrade sealfs"
            ),
            ConfigError::UnknownKdf(k) => {
                write!(f, "config names unknown key derivation function {k}")
            }
            ConfigError::Malformed(m) => write!(f, "config is malformed: {m}"),
        }
    }
}

/// A bounds-checked little-endian reader.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ConfigError> {
        let end = self.at.checked_add(n).ok_or(ConfigError::Truncated)?;
        let s = self.b.get(self.at..end).ok_or(ConfigError::Truncated)?;
        self.at = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], ConfigError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ConfigError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ConfigError> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    fn u32(&mut self) -> Result<u32, ConfigError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
}

fn decode_password(body: &[u8]) -> Result<PasswordSlot, ConfigError> {
    if body.len() != PASSWORD_BODY_LEN {
        return Err(ConfigError::Malformed("password slot length"));
    }
    let mut r = Reader { b: body, at: 0 };
    let kdf = r.u8()?;
    if kdf != KDF_ARGON2ID {
        return Err(ConfigError::UnknownKdf(kdf));
    }
    if r.take(3)? != [0; 3] {
        return Err(ConfigError::Malformed("reserved bytes are not zero"));
    }
    Ok(PasswordSlot {
        memory_kib: r.u32()?,
        passes: r.u32()?,
        lanes: r.u32()?,
        salt: r.arr()?,
        wrapped_secret: r.arr()?,
    })
}

impl ConfigFile {
    /// What every MK-bound wrap in the config binds: magic, version, chunk
    /// size, generation and vault ID.
    pub fn core(&self) -> Vec<u8> {
        let mut a = Vec::with_capacity(34);
        a.extend_from_slice(&CONFIG_MAGIC);
        a.extend_from_slice(&CONFIG_VERSION.to_le_bytes());
        a.extend_from_slice(&self.chunk_size.to_le_bytes());
        a.extend_from_slice(&self.generation.to_le_bytes());
        a.extend_from_slice(&self.vault_id);
        a
    }

    /// Associated data of the MK sealed to a slot.
    pub fn slot_aad(&self, id: u16, kind: u8, public: &[u8; 32]) -> Vec<u8> {
        let mut a = self.core();
        a.extend_from_slice(b"slot");
        a.push(kind);
        a.extend_from_slice(&id.to_le_bytes());
        a.extend_from_slice(public);
        a
    }

    /// Associated data of a password slot's private-key wrap. It leaves out
    /// the generation, so `rekey` can keep the slot without its password.
    pub fn password_aad(&self, id: u16, p: &PasswordSlot, public: &[u8; 32]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&CONFIG_MAGIC);
        a.extend_from_slice(&CONFIG_VERSION.to_le_bytes());
        a.extend_from_slice(&self.vault_id);
        a.extend_from_slice(&id.to_le_bytes());
        let body = SlotKind::Password(p.clone()).body();
        a.extend_from_slice(&body[..PASSWORD_BODY_LEN - WRAPPED_SECRET_LEN]);
        a.extend_from_slice(public);
        a
    }

    /// Associated data of a recovery slot's auth-key wrap (no generation).
    pub fn recovery_aad(&self, id: u16, public: &[u8; 32]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&CONFIG_MAGIC);
        a.extend_from_slice(&CONFIG_VERSION.to_le_bytes());
        a.extend_from_slice(&self.vault_id);
        a.extend_from_slice(b"recovery");
        a.extend_from_slice(&id.to_le_bytes());
        a.extend_from_slice(public);
        a
    }

    /// Associated data of the vault keys' wrap.
    pub fn vault_keys_aad(&self) -> Vec<u8> {
        let mut a = self.core();
        a.extend_from_slice(b"vault keys");
        a
    }

    /// Associated data of the previous vault keys' wrap (state 2).
    pub fn previous_vault_keys_aad(&self) -> Vec<u8> {
        let mut a = self.core();
        a.extend_from_slice(b"previous vault keys");
        a
    }

    /// Associated data of a retired key's wrap.
    pub fn retired_aad(&self, generation: u32) -> Vec<u8> {
        let mut a = self.core();
        a.extend_from_slice(b"retired");
        a.extend_from_slice(&generation.to_le_bytes());
        a
    }

    /// The slot with this id.
    pub fn slot(&self, id: u16) -> Option<&Slot> {
        self.slots.iter().find(|s| s.id == id)
    }

    /// An id no slot has (`None` once ids are exhausted).
    pub fn next_slot_id(&self) -> Option<u16> {
        match self.slots.iter().map(|s| s.id).max() {
            None => Some(0),
            Some(m) => m.checked_add(1),
        }
    }

    /// Everything the MAC covers.
    pub fn mac_input(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(512);
        b.extend_from_slice(&CONFIG_MAGIC);
        b.extend_from_slice(&CONFIG_VERSION.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&self.chunk_size.to_le_bytes());
        b.extend_from_slice(&self.generation.to_le_bytes());
        b.extend_from_slice(&self.vault_id);
        b.extend_from_slice(&self.longname_max.to_le_bytes());
        b.push(self.state.code());
        b.push(0);
        b.extend_from_slice(&(self.slots.len() as u16).to_le_bytes());
        b.extend_from_slice(&(self.retired.len() as u16).to_le_bytes());
        for s in &self.slots {
            let body = s.kind.body();
            b.push(s.kind.code());
            b.push(0);
            b.extend_from_slice(&s.id.to_le_bytes());
            b.extend_from_slice(&(body.len() as u16).to_le_bytes());
            b.extend_from_slice(&s.public);
            b.extend_from_slice(&s.mk.ephemeral);
            b.extend_from_slice(&s.mk.sealed);
            b.extend_from_slice(&s.mk.commitment);
            b.extend_from_slice(&body);
        }
        b.extend_from_slice(&self.vault_keys);
        if let Some(p) = &self.previous_vault_keys {
            b.extend_from_slice(p);
        }
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
        let mut r = Reader { b, at: 8 };
        let version = r.u16()?;
        if version != CONFIG_VERSION {
            return Err(ConfigError::UnsupportedVersion(version));
        }
        let flags = r.u16()?;
        if flags != 0 {
            return Err(ConfigError::UnknownFlags(flags));
        }
        if b.len() < FIXED_LEN {
            return Err(ConfigError::Truncated);
        }
        let chunk_size = r.u32()?;
        let generation = r.u32()?;
        if generation == 0 {
            return Err(ConfigError::Malformed("generation 0"));
        }
        let vault_id = r.arr()?;
        let longname_max = r.u16()?;
        if !(LONGNAME_MIN..=LONGNAME_MAX).contains(&longname_max) {
            return Err(ConfigError::Malformed("name length limit out of range"));
        }
        let state = match r.u8()? {
            0 => State::Idle,
            1 => State::Rekeying,
            2 => State::FullRekeying,
            s => return Err(ConfigError::UnknownState(s)),
        };
        if r.u8()? != 0 {
            return Err(ConfigError::Malformed("reserved bytes are not zero"));
        }
        let nslots = usize::from(r.u16()?);
        let nretired = usize::from(r.u16()?);
        if nslots == 0 || nslots > MAX_SLOTS {
            return Err(ConfigError::Malformed("slot count"));
        }
        if nretired > MAX_RETIRED {
            return Err(ConfigError::Malformed("too many retired keys"));
        }
        let mut slots: Vec<Slot> = Vec::with_capacity(nslots);
        for _ in 0..nslots {
            let kind = r.u8()?;
            if r.u8()? != 0 {
                return Err(ConfigError::Malformed("reserved bytes are not zero"));
            }
            let id = r.u16()?;
            let body_len = usize::from(r.u16()?);
            let public = r.arr()?;
            let mk = SealedKey {
                ephemeral: r.arr()?,
                sealed: r.arr()?,
                commitment: r.arr()?,
            };
            let body = r.take(body_len)?;
            let kind = match kind {
                SLOT_PASSWORD => SlotKind::Password(decode_password(body)?),
                SLOT_RECOVERY if body.len() == WRAPPED_KEY_LEN => {
                    SlotKind::Recovery(RecoverySlot {
                        wrapped_auth: body.try_into().map_err(|_| ConfigError::Truncated)?,
                    })
                }
                SLOT_RECOVERY => return Err(ConfigError::Malformed("recovery slot length")),
                0 => return Err(ConfigError::Malformed("slot kind 0")),
                k => SlotKind::Other {
                    kind: k,
                    body: body.to_vec(),
                },
            };
            if slots.iter().any(|s| s.id == id) {
                return Err(ConfigError::Malformed("two slots with one id"));
            }
            let recovery = |k: &SlotKind| matches!(k, SlotKind::Recovery(_));
            if recovery(&kind) && slots.iter().any(|s| recovery(&s.kind)) {
                return Err(ConfigError::Malformed("two recovery slots"));
            }
            slots.push(Slot {
                id,
                kind,
                public,
                mk,
            });
        }
        let vault_keys = r.arr()?;
        let previous_vault_keys = match state {
            State::FullRekeying => Some(r.arr()?),
            _ => None,
        };
        let mut retired = Vec::with_capacity(nretired);
        for _ in 0..nretired {
            retired.push(RetiredKey {
                generation: r.u32()?,
                wrapped_mk: r.arr()?,
            });
        }
        let mac = r.arr()?;
        if r.at != b.len() {
            return Err(ConfigError::Malformed("trailing bytes"));
        }
        Ok(ConfigFile {
            chunk_size,
            generation,
            vault_id,
            longname_max,
            state,
            slots,
            vault_keys,
            previous_vault_keys,
            retired,
            mac,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(x: u8) -> SealedKey {
        SealedKey {
            ephemeral: [x; 32],
            sealed: [x + 1; WRAPPED_KEY_LEN],
            commitment: [x + 2; 32],
        }
    }

    fn sample() -> ConfigFile {
        ConfigFile {
            chunk_size: 4096,
            generation: 3,
            vault_id: [8; VAULT_ID_LEN],
            longname_max: LONGNAME_DEFAULT,
            state: State::Rekeying,
            slots: vec![
                Slot {
                    id: 0,
                    kind: SlotKind::Password(PasswordSlot {
                        memory_kib: 65536,
                        passes: 3,
                        lanes: 1,
                        salt: [1; SALT_LEN],
                        wrapped_secret: [2; WRAPPED_SECRET_LEN],
                    }),
                    public: [9; 32],
                    mk: sealed(10),
                },
                Slot {
                    id: 1,
                    kind: SlotKind::Recovery(RecoverySlot {
                        wrapped_auth: [22; WRAPPED_KEY_LEN],
                    }),
                    public: [20; 32],
                    mk: sealed(21),
                },
                Slot {
                    id: 5,
                    kind: SlotKind::Other {
                        kind: 77,
                        body: vec![1, 2, 3],
                    },
                    public: [30; 32],
                    mk: sealed(31),
                },
            ],
            vault_keys: [4; WRAPPED_VAULT_KEYS_LEN],
            previous_vault_keys: None,
            retired: vec![RetiredKey {
                generation: 2,
                wrapped_mk: [5; WRAPPED_KEY_LEN],
            }],
            mac: [6; MAC_LEN],
        }
    }

    #[test]
    fn layout_matches_the_spec_and_roundtrips() {
        let c = sample();
        let b = c.encode();
        assert_eq!(
            b.len(),
            FIXED_LEN
                + 3 * SLOT_COMMON_LEN
                + PASSWORD_BODY_LEN
                + WRAPPED_KEY_LEN
                + 3
                + WRAPPED_VAULT_KEYS_LEN
                + RETIRED_ENTRY_LEN
                + MAC_LEN
        );
        assert_eq!(&b[20..36], &[8; 16]);
        assert_eq!(b[38], 1);
        assert_eq!(b[FIXED_LEN], SLOT_PASSWORD);
        assert_eq!(&b[FIXED_LEN + 6..FIXED_LEN + 8], &[9, 9]);
        assert_eq!(c.next_slot_id(), Some(6));
        assert_eq!(ConfigFile::decode(&b).unwrap(), c);
    }

    #[test]
    fn full_rekey_state_carries_the_previous_keys() {
        let mut c = sample();
        c.state = State::FullRekeying;
        c.previous_vault_keys = Some([7; WRAPPED_VAULT_KEYS_LEN]);
        let b = c.encode();
        assert_eq!(b.len(), sample().encode().len() + WRAPPED_VAULT_KEYS_LEN);
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
        let mut s = b.clone();
        s[38] = 3;
        assert_eq!(ConfigFile::decode(&s), Err(ConfigError::UnknownState(3)));
        let mut n = b.clone();
        n[40] = 0;
        assert!(ConfigFile::decode(&n).is_err());
        n[40] = 200;
        assert!(ConfigFile::decode(&n).is_err());
        let mut t = b.clone();
        t.push(0);
        assert!(ConfigFile::decode(&t).is_err());
        for cut in 0..b.len() {
            assert!(ConfigFile::decode(&b[..cut]).is_err(), "cut at {cut}");
        }
    }
}

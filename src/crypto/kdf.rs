//! Password-based key derivation: Argon2id with parameters stored in the
//! password slot and floors enforced at unlock.

use super::keys::{KEY_LEN, SecretKey};

/// The weakest memory cost accepted at unlock (64 MiB). A config that asks
/// for less was tampered with (or written by a broken tool) and is refused.
pub const KDF_FLOOR_MEMORY_KIB: u32 = 64 * 1024;
/// The fewest passes accepted at unlock.
pub const KDF_FLOOR_PASSES: u32 = 3;
/// Upper bounds so a hostile config cannot make unlock allocate unbounded memory.
pub const KDF_MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
pub const KDF_MAX_PASSES: u32 = 64;
pub const KDF_MAX_LANES: u32 = 16;

/// Argon2id cost parameters as stored in a password slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl KdfParams {
    /// Defaults, chosen by measurement (see sealfs-format(5)): 256 MiB and
    /// 3 passes take about 1 s on the reference machine.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 256 * 1024,
        passes: 3,
        lanes: 1,
    };

    /// Refuses parameters below the floors or above the sanity caps.
    pub fn check(&self) -> Result<(), String> {
        if self.memory_kib < KDF_FLOOR_MEMORY_KIB || self.passes < KDF_FLOOR_PASSES {
            return Err(format!(
                "key derivation parameters ({} KiB, {} passes) are below the minimum ({} KiB, {} passes); \
                 the config was weakened or tampered with",
                self.memory_kib, self.passes, KDF_FLOOR_MEMORY_KIB, KDF_FLOOR_PASSES
            ));
        }
        if self.memory_kib > KDF_MAX_MEMORY_KIB
            || self.passes > KDF_MAX_PASSES
            || self.lanes == 0
            || self.lanes > KDF_MAX_LANES
        {
            return Err("key derivation parameters are out of range".into());
        }
        Ok(())
    }
}

/// Derives a 256-bit key-encryption key from a password.
pub fn argon2id(password: &[u8], salt: &[u8], p: KdfParams) -> Result<SecretKey, String> {
    p.check()?;
    let params = argon2::Params::new(p.memory_kib, p.passes, p.lanes, Some(KEY_LEN))
        .map_err(|e| format!("argon2 parameters: {e}"))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; KEY_LEN];
    a.hash_password_into(password, salt, &mut out)
        .map_err(|e| format!("argon2: {e}"))?;
    Ok(SecretKey::from_bytes(&mut out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_are_enforced() {
        let weak = KdfParams {
            memory_kib: 1024,
            passes: 3,
            lanes: 1,
        };
        assert!(argon2id(b"pw", &[0; 16], weak).is_err());
        let few = KdfParams {
            memory_kib: KDF_FLOOR_MEMORY_KIB,
            passes: 1,
            lanes: 1,
        };
        assert!(few.check().is_err());
        assert!(KdfParams::DEFAULT.check().is_ok());
    }
}

//! Password-based key derivation: Argon2id with parameters stored in the
//! password slot, and one documented range that `init` and unlock both enforce.

use super::keys::{KEY_LEN, SecretKey};

/// The accepted range (sealfs-format(5)). Below the floors a config was
/// weakened; above the caps a hostile config could make unlock spend
/// gigabytes and minutes before "wrong password". 64 MiB × 3 passes takes
/// about 0.3 s here, 1 GiB × 10 passes about 40 s: the caps leave room for a
/// slower, stronger choice without letting a planted config stall a machine.
pub const KDF_FLOOR_MEMORY_KIB: u32 = 64 * 1024;
pub const KDF_MAX_MEMORY_KIB: u32 = 1024 * 1024;
pub const KDF_FLOOR_PASSES: u32 = 3;
pub const KDF_MAX_PASSES: u32 = 10;
pub const KDF_MAX_LANES: u32 = 4;

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

    /// Refuses parameters outside the documented range.
    pub fn check(&self) -> Result<(), String> {
        let ok = (KDF_FLOOR_MEMORY_KIB..=KDF_MAX_MEMORY_KIB).contains(&self.memory_kib)
            && (KDF_FLOOR_PASSES..=KDF_MAX_PASSES).contains(&self.passes)
            && (1..=KDF_MAX_LANES).contains(&self.lanes);
        if ok {
            return Ok(());
        }
        Err(format!(
            "key derivation parameters ({} MiB, {} passes, {} lanes) are outside the accepted range \
             ({}..{} MiB, {}..{} passes, 1..{} lanes); the config was damaged or tampered with",
            self.memory_kib / 1024,
            self.passes,
            self.lanes,
            KDF_FLOOR_MEMORY_KIB / 1024,
            KDF_MAX_MEMORY_KIB / 1024,
            KDF_FLOOR_PASSES,
            KDF_MAX_PASSES,
            KDF_MAX_LANES
        ))
    }
}

/// The kernel's estimate of memory available without swapping, in KiB.
fn mem_available_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Derives a 256-bit key-encryption key from a password. Checks the range
/// and the memory available before allocating anything.
pub fn argon2id(password: &[u8], salt: &[u8], p: KdfParams) -> Result<SecretKey, String> {
    p.check()?;
    if let Some(avail) = mem_available_kib() {
        if avail < u64::from(p.memory_kib) {
            return Err(format!(
                "unlocking needs {} MiB of memory for the key derivation, but only {} MiB is available",
                p.memory_kib / 1024,
                avail / 1024
            ));
        }
    }
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
    fn range_is_enforced_before_allocation() {
        let p = |memory_kib, passes, lanes| KdfParams {
            memory_kib,
            passes,
            lanes,
        };
        assert!(argon2id(b"pw", &[0; 16], p(1024, 3, 1)).is_err());
        assert!(p(KDF_FLOOR_MEMORY_KIB, 2, 1).check().is_err());
        assert!(p(KDF_MAX_MEMORY_KIB + 1, 3, 1).check().is_err());
        assert!(p(4 * 1024 * 1024, 3, 1).check().is_err());
        assert!(p(KDF_FLOOR_MEMORY_KIB, 11, 1).check().is_err());
        assert!(p(KDF_FLOOR_MEMORY_KIB, 3, 0).check().is_err());
        assert!(p(KDF_FLOOR_MEMORY_KIB, 3, 5).check().is_err());
        assert!(
            p(KDF_MAX_MEMORY_KIB, KDF_MAX_PASSES, KDF_MAX_LANES)
                .check()
                .is_ok()
        );
        assert!(KdfParams::DEFAULT.check().is_ok());
        // A hostile 4 GiB config is refused at once, not after seconds of work.
        let t = std::time::Instant::now();
        assert!(argon2id(b"pw", &[0; 16], p(4 * 1024 * 1024, 3, 1)).is_err());
        assert!(t.elapsed().as_millis() < 100);
    }
}

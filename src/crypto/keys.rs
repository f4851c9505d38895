//! Secret key material: zeroized on drop, never printed.

use zeroize::Zeroize;

use crate::os::keymem::Locked;

/// Length of every symmetric key in sealfs (256 bits).
pub const KEY_LEN: usize = 32;

/// A 256-bit secret. Lives in locked, no-dump key memory (`os::keymem`), so
/// moves leave no copies behind; is wiped on drop and has a `Debug` that
/// prints nothing secret.
pub struct SecretKey(Locked<[u8; KEY_LEN]>);

impl Clone for SecretKey {
    fn clone(&self) -> Self {
        let mut k = Self::zeroed();
        k.0.copy_from_slice(&self.0[..]);
        k
    }
}

impl SecretKey {
    /// A fresh key from the operating system's random generator.
    pub fn random() -> std::io::Result<Self> {
        let mut k = Self::zeroed();
        random_bytes(&mut k.0[..])?;
        Ok(k)
    }

    /// Takes ownership of `bytes`, wiping the caller's copy.
    pub fn from_bytes(bytes: &mut [u8; KEY_LEN]) -> Self {
        let mut k = Self::zeroed();
        k.0.copy_from_slice(bytes);
        bytes.zeroize();
        k
    }

    /// Copies a key from a slice of exactly `KEY_LEN` bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let mut k = Self::zeroed();
        k.0.copy_from_slice(bytes);
        Some(k)
    }

    fn zeroed() -> Self {
        SecretKey(Locked::zeroed())
    }

    /// The raw key bytes, for handing to a primitive.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A subkey for one purpose: BLAKE3 `derive_key` with a context string
    /// that names the purpose (domain separation).
    pub fn derive(&self, context: &str) -> SecretKey {
        let mut out = blake3::derive_key(context, &self.0[..]);
        SecretKey::from_bytes(&mut out)
    }

    /// BLAKE3 keyed hash of `parts` (each length-prefixed, so concatenations
    /// cannot collide).
    pub fn keyed_hash(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        for p in parts {
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p);
        }
        *h.finalize().as_bytes()
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Fills `buf` from the operating system's random generator.
pub fn random_bytes(buf: &mut [u8]) -> std::io::Result<()> {
    getrandom::fill(buf).map_err(|e| std::io::Error::other(format!("random generator: {e}")))
}

/// A random fixed-size array.
pub fn random_array<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut a = [0u8; N];
    random_bytes(&mut a)?;
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_key_bytes() {
        let k = SecretKey::from_slice(&[0xAB; 32]).unwrap();
        let s = format!("{k:?}");
        assert!(
            !s.contains("171") && !s.to_lowercase().contains("ab"),
            "{s}"
        );
    }

    #[test]
    fn subkeys_differ_by_context() {
        let k = SecretKey::from_slice(&[7; 32]).unwrap();
        assert_ne!(k.derive("a").expose(), k.derive("b").expose());
        assert_eq!(k.derive("a").expose(), k.derive("a").expose());
    }

    #[test]
    fn keyed_hash_is_length_prefixed() {
        let k = SecretKey::from_slice(&[1; 32]).unwrap();
        assert_ne!(k.keyed_hash(&[b"ab", b"c"]), k.keyed_hash(&[b"a", b"bc"]));
    }
}

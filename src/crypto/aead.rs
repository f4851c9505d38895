//! AES-256-GCM-SIV with detached nonce and tag, so callers lay out the
//! bytes on disk themselves.

use aes_gcm_siv::aead::{AeadInOut, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};

use super::keys::{SecretKey, random_array};
use crate::os::keymem::Locked;

/// Bytes of nonce stored in front of every sealed message.
pub const NONCE_LEN: usize = 12;
/// Bytes of authentication tag stored after every sealed message.
pub const TAG_LEN: usize = 16;

/// An AES-256-GCM-SIV instance with its key schedule expanded once, kept
/// in locked, no-dump key memory. The crate wipes the expanded key on drop
/// (feature `zeroize`), and so does the key memory.
pub struct Cipher(Locked<Aes256GcmSiv>);

impl Cipher {
    pub fn new(key: &SecretKey) -> Self {
        // A 32-byte key always has the right length for AES-256.
        Cipher(Locked::new(Aes256GcmSiv::new(key.expose().into())))
    }

    /// Encrypts `buf` in place under a fresh random nonce; returns (nonce, tag).
    pub fn seal(
        &self,
        aad: &[u8],
        buf: &mut [u8],
    ) -> std::io::Result<([u8; NONCE_LEN], [u8; TAG_LEN])> {
        let nonce = random_array::<NONCE_LEN>()?;
        let tag = self.seal_with_nonce(&nonce, aad, buf)?;
        Ok((nonce, tag))
    }

    /// Encrypts `buf` in place under the given nonce. Only for deterministic
    /// uses where nonce reuse is intended (name encryption, see the format
    /// spec); GCM-SIV then reveals only equality of identical inputs.
    pub fn seal_with_nonce(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> std::io::Result<[u8; TAG_LEN]> {
        let n = Nonce::from(*nonce);
        let tag = self
            .0
            .encrypt_inout_detached(&n, aad, buf.into())
            .map_err(|_| std::io::Error::other("message too long to seal"))?;
        Ok(tag.into())
    }

    /// Decrypts `buf` in place; false (and `buf` wiped) if authentication fails.
    #[must_use]
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> bool {
        let n = Nonce::from(*nonce);
        let t = Tag::from(*tag);
        match self.0.decrypt_inout_detached(&n, aad, buf.into(), &t) {
            Ok(()) => true,
            Err(_) => {
                buf.fill(0);
                false
            }
        }
    }
}

impl Cipher {
    /// Seals `plain` into `nonce || ciphertext || tag` under a fresh random nonce.
    pub fn seal_detached(&self, aad: &[u8], plain: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(&[0u8; NONCE_LEN]);
        out.extend_from_slice(plain);
        let (nonce, tag) = self.seal(aad, &mut out[NONCE_LEN..])?;
        out[..NONCE_LEN].copy_from_slice(&nonce);
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens `nonce || ciphertext || tag`; `None` if malformed or inauthentic.
    pub fn open_detached(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut buf = body.to_vec();
        let ok = self.open(nonce.try_into().ok()?, aad, &mut buf, tag.try_into().ok()?);
        ok.then_some(buf)
    }
}

/// Seals `plain` into `nonce || ciphertext || tag` under `key`.
pub fn seal_detached(key: &SecretKey, aad: &[u8], plain: &[u8]) -> std::io::Result<Vec<u8>> {
    Cipher::new(key).seal_detached(aad, plain)
}

/// Opens `nonce || ciphertext || tag` under `key`.
pub fn open_detached(key: &SecretKey, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    Cipher::new(key).open_detached(aad, sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_every_bit_flip_fails() {
        let k = SecretKey::from_slice(&[3; 32]).unwrap();
        let sealed = seal_detached(&k, b"ad", b"hello").unwrap();
        assert_eq!(open_detached(&k, b"ad", &sealed).unwrap(), b"hello");
        assert!(open_detached(&k, b"other", &sealed).is_none());
        for i in 0..sealed.len() * 8 {
            let mut s = sealed.clone();
            s[i / 8] ^= 1 << (i % 8);
            assert!(open_detached(&k, b"ad", &s).is_none(), "bit {i}");
        }
    }

    #[test]
    fn fresh_nonce_each_seal() {
        let k = SecretKey::from_slice(&[3; 32]).unwrap();
        assert_ne!(
            seal_detached(&k, b"", b"x").unwrap(),
            seal_detached(&k, b"", b"x").unwrap()
        );
    }
}

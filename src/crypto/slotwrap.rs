//! Sealing a key to a key slot's X25519 public key (the `age` model): an
//! ephemeral key pair, X25519, a BLAKE3 `derive_key` of the shared secret and
//! both public keys, AES-256-GCM-SIV of the key, and a key commitment.
//!
//! Because a slot is a public key, `rekey` can wrap a new master key to every
//! slot without knowing any slot's password; only the slot's own secret (a
//! password-wrapped private key, or one derived from the recovery key) opens it.

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::aead::{open_detached, seal_detached};
use super::keys::{KEY_LEN, SecretKey, random_array};

const WRAP_CONTEXT: &str = "sealfs v1 2026-11 slot wrap";
const COMMIT_CONTEXT: &str = "sealfs v1 2026-11 slot key commitment";

/// nonce || sealed 32-byte key || tag
pub const SEALED_LEN: usize = 12 + KEY_LEN + 16;

/// A slot's private key (zeroized on drop).
pub struct SlotSecret(StaticSecret);

/// What `seal_to` produces and `open_from` consumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedKey {
    pub ephemeral: [u8; 32],
    pub sealed: [u8; SEALED_LEN],
    pub commitment: [u8; 32],
}

impl SlotSecret {
    /// A fresh random private key.
    pub fn random() -> std::io::Result<Self> {
        let b = Zeroizing::new(random_array::<32>()?);
        Ok(SlotSecret(StaticSecret::from(*b)))
    }

    /// The private key deterministically derived from `key` (the recovery slot).
    pub fn derived(key: &SecretKey, context: &str) -> Self {
        SlotSecret(StaticSecret::from(*key.derive(context).expose()))
    }

    /// From stored bytes (a password slot's unwrapped private key).
    pub fn from_key(key: &SecretKey) -> Self {
        SlotSecret(StaticSecret::from(*key.expose()))
    }

    /// The private key's bytes, to be wrapped under a password.
    pub fn to_key(&self) -> SecretKey {
        SecretKey::from_slice(self.0.as_bytes()).expect("32 bytes")
    }

    pub fn public(&self) -> [u8; 32] {
        PublicKey::from(&self.0).to_bytes()
    }
}

fn wrap_key(shared: &[u8; 32], ephemeral: &[u8; 32], recipient: &[u8; 32]) -> SecretKey {
    let mut ikm = Zeroizing::new([0u8; 96]);
    ikm[..32].copy_from_slice(shared);
    ikm[32..64].copy_from_slice(ephemeral);
    ikm[64..].copy_from_slice(recipient);
    let mut k = blake3::derive_key(WRAP_CONTEXT, &ikm[..]);
    SecretKey::from_bytes(&mut k)
}

fn commitment(wk: &SecretKey, aad: &[u8], key: &SecretKey) -> [u8; 32] {
    wk.derive(COMMIT_CONTEXT).keyed_hash(&[aad, key.expose()])
}

/// Seals `key` to `recipient`, binding `aad`.
pub fn seal_to(recipient: &[u8; 32], aad: &[u8], key: &SecretKey) -> std::io::Result<SealedKey> {
    let eph = SlotSecret::random()?;
    let ephemeral = eph.public();
    let shared = eph.0.diffie_hellman(&PublicKey::from(*recipient));
    if !shared.was_contributory() {
        return Err(std::io::Error::other("key slot has an invalid public key"));
    }
    let wk = wrap_key(shared.as_bytes(), &ephemeral, recipient);
    let sealed = seal_detached(&wk, aad, key.expose())?
        .try_into()
        .map_err(|_| std::io::Error::other("sealed key length"))?;
    Ok(SealedKey {
        ephemeral,
        sealed,
        commitment: commitment(&wk, aad, key),
    })
}

/// Opens a key sealed to `secret`'s public key; `None` for a wrong secret,
/// tampered bytes or a commitment that does not match.
pub fn open_from(secret: &SlotSecret, aad: &[u8], s: &SealedKey) -> Option<SecretKey> {
    let recipient = secret.public();
    let shared = secret.0.diffie_hellman(&PublicKey::from(s.ephemeral));
    if !shared.was_contributory() {
        return None;
    }
    let wk = wrap_key(shared.as_bytes(), &s.ephemeral, &recipient);
    let bytes = Zeroizing::new(open_detached(&wk, aad, &s.sealed)?);
    let key = SecretKey::from_slice(&bytes)?;
    let expect = commitment(&wk, aad, &key);
    constant_time_eq(&expect, &s.commitment).then_some(key)
}

/// Equality of two 32-byte values without an early exit.
pub fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    blake3::Hash::from(*a) == blake3::Hash::from(*b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_wrong_secret_and_tamper() {
        let s = SlotSecret::random().unwrap();
        let k = SecretKey::random().unwrap();
        let sealed = seal_to(&s.public(), b"aad", &k).unwrap();
        assert_eq!(open_from(&s, b"aad", &sealed).unwrap().expose(), k.expose());
        assert!(open_from(&s, b"other", &sealed).is_none());
        assert!(open_from(&SlotSecret::random().unwrap(), b"aad", &sealed).is_none());
        let mut c = sealed.clone();
        c.commitment[0] ^= 1;
        assert!(open_from(&s, b"aad", &c).is_none());
        let mut e = sealed.clone();
        e.ephemeral[3] ^= 1;
        assert!(open_from(&s, b"aad", &e).is_none());
        let zero = SealedKey {
            ephemeral: [0; 32],
            ..sealed
        };
        assert!(open_from(&s, b"aad", &zero).is_none());
    }

    #[test]
    fn derived_secret_is_deterministic() {
        let k = SecretKey::from_slice(&[5; 32]).unwrap();
        assert_eq!(
            SlotSecret::derived(&k, "x").public(),
            SlotSecret::derived(&k, "x").public()
        );
        assert_ne!(
            SlotSecret::derived(&k, "x").public(),
            SlotSecret::derived(&k, "y").public()
        );
    }
}

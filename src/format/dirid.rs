//! Directory IDs. Every vault directory but the root holds a small file
//! `.sealfs.dir` with its 32-byte ID; the IDs enter name encryption, so names
//! differ across directories and a directory rename is one rename in the vault.
//!
//! A new directory's ID is derived, not random:
//! `BLAKE3-keyed(dir-id key, len || parent ID || len || plaintext name)`. Two
//! devices that create the same folder while offline therefore agree on its
//! ID and on every child name, so a sync service merges them instead of
//! leaving names one side cannot decrypt. The file keeps the ID across later
//! renames. The root's ID is `BLAKE3-keyed(dir-id key, len || "sealfs root")`.
//!
//! The file is authenticated with a deterministic MAC under a subkey of the
//! dir-id key, so nobody without the key can plant an ID of their choosing,
//! and two devices that create the same folder offline still write identical
//! bytes. What the MAC cannot stop: a provider may copy an authentic ID file
//! from one folder into another (both then share an ID, and entries moved
//! between them still decrypt), as it may copy whole folders.
//!
//! ```text
//! .sealfs.dir: magic "SFd1" (4) || version u16 LE = 1 || zero u16 || ID (32)
//!              || BLAKE3-keyed(dir-id MAC key, len || bytes 0..40) (32)    = 72 bytes
//! ```

use crate::crypto::SecretKey;

pub const DIRID_FILE: &str = ".sealfs.dir";
pub const DIRID_FILE_LEN: usize = 72;
const MAGIC: [u8; 4] = *b"SFd1";

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DirId(pub [u8; 32]);

impl std::fmt::Debug for DirId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DirId({:02x}{:02x}{:02x}{:02x}..)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

impl DirId {
    pub fn root(key: &SecretKey) -> DirId {
        DirId(key.keyed_hash(&[b"sealfs root"]))
    }

    pub fn child(key: &SecretKey, parent: &DirId, name: &[u8]) -> DirId {
        DirId(key.keyed_hash(&[&parent.0, name]))
    }

    pub fn encode(&self, mac_key: &SecretKey) -> [u8; DIRID_FILE_LEN] {
        let mut b = [0u8; DIRID_FILE_LEN];
        b[..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&1u16.to_le_bytes());
        b[8..40].copy_from_slice(&self.0);
        let mac = mac_key.keyed_hash(&[&b[..40]]);
        b[40..].copy_from_slice(&mac);
        b
    }

    /// Parses and authenticates an ID file; `None` if it is malformed or forged.
    pub fn decode(b: &[u8], mac_key: &SecretKey) -> Option<DirId> {
        if b.len() != DIRID_FILE_LEN || b[..4] != MAGIC || b[4..8] != [1, 0, 0, 0] {
            return None;
        }
        let mac: [u8; 32] = b[40..].try_into().ok()?;
        if !crate::crypto::constant_time_eq(&mac_key.keyed_hash(&[&b[..40]]), &mac) {
            return None;
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(&b[8..40]);
        Some(DirId(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_name_dependent() {
        let k = SecretKey::from_slice(&[1; 32]).unwrap();
        let r = DirId::root(&k);
        assert_eq!(DirId::child(&k, &r, b"a"), DirId::child(&k, &r, b"a"));
        assert_ne!(DirId::child(&k, &r, b"a"), DirId::child(&k, &r, b"b"));
        let other = SecretKey::from_slice(&[2; 32]).unwrap();
        assert_ne!(DirId::child(&k, &r, b"a"), DirId::child(&other, &r, b"a"));
    }

    #[test]
    fn file_roundtrip_and_refusal() {
        let k = SecretKey::from_slice(&[1; 32]).unwrap();
        let id = DirId([7; 32]);
        assert_eq!(id.encode(&k), id.encode(&k));
        assert_eq!(DirId::decode(&id.encode(&k), &k), Some(id));
        assert_eq!(DirId::decode(&id.encode(&k)[..71], &k), None);
        let mut b = id.encode(&k);
        b[4] = 2;
        assert_eq!(DirId::decode(&b, &k), None);
        for i in 8..DIRID_FILE_LEN {
            let mut f = id.encode(&k);
            f[i] ^= 1;
            assert_eq!(DirId::decode(&f, &k), None, "byte {i}");
        }
        let other = SecretKey::from_slice(&[2; 32]).unwrap();
        assert_eq!(DirId::decode(&id.encode(&k), &other), None);
    }
}

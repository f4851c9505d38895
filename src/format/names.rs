//! Name and symlink-target encryption, and the classification of the entries
//! found in a vault directory.
//!
//! A name is padded with NUL bytes to a multiple of 16 (names cannot contain
//! NUL), sealed with AES-256-GCM-SIV under the name key with the directory's
//! nonce `BLAKE3-keyed(name-nonce key, len || dir ID)[..12]` and aad
//! `"sealfs name v1" || dir ID`, and written as unpadded base64url of
//! `ciphertext || tag`. Encryption is deterministic within a directory (lookups
//! need that) and differs across directories. GCM-SIV under a repeated nonce
//! reveals only whether two names in one directory are equal, which the
//! directory listing reveals anyway.
//!
//! Encodings longer than `MAX_SHORT_NAME` bytes are stored as
//! `~` || base64url(BLAKE3(encoding)) with the full encoding in a sidecar file
//! of the same name plus `.name`. The threshold leaves 55 bytes of the 255-byte
//! name limit for the suffixes sync tools add to conflict copies.

use super::base64url;
use super::dirid::{DIRID_FILE, DirId};
use crate::crypto::{Cipher, NONCE_LEN, SecretKey, TAG_LEN};

pub const MAX_SHORT_NAME: usize = 200;
pub const LONG_PREFIX: &str = "~";
pub const SIDECAR_SUFFIX: &str = ".name";
/// Prefix of the transient names sealfs uses inside the vault (atomic mkdir).
pub const TEMP_PREFIX: &str = ".sealfs.tmp.";
/// Longest plaintext name accepted (NAME_MAX).
pub const MAX_PLAIN_NAME: usize = 255;
const NAME_AAD: &[u8] = b"sealfs name v1";
const SYMLINK_AAD: &[u8] = b"sealfs symlink v1";

/// Files sync services keep in a folder; hidden from the plaintext view and never touched.
pub const SYNC_TOOL_NAMES: &[&str] = &[
    ".dropbox",
    ".dropbox.cache",
    ".dropbox.attr",
    ".stfolder",
    ".stignore",
    ".stversions",
    ".sync",
    "desktop.ini",
    ".nextcloudsync.log",
    ".owncloudsync.log",
    ".sync_journal.db",
];

/// How sealfs reads one name found in a vault directory.
#[derive(Debug, PartialEq, Eq)]
pub enum VaultEntry<'a> {
    /// An encrypted name stored directly.
    Short(&'a str),
    /// A hashed long name; the full encoding is in the sidecar.
    Long(&'a str),
    /// A long name's sidecar (not an entry of its own).
    Sidecar,
    /// sealfs's own files: config, directory ID, temporary names.
    Internal,
    /// A sync tool's file.
    SyncTool,
    /// Anything else: not produced by sealfs.
    Foreign,
}

/// Classifies a name found in a vault directory.
pub fn classify(name: &[u8], at_root: bool) -> VaultEntry<'_> {
    let Ok(s) = std::str::from_utf8(name) else {
        return VaultEntry::Foreign;
    };
    if s == DIRID_FILE || s.starts_with(TEMP_PREFIX) || (at_root && s.starts_with("sealfs.conf")) {
        return VaultEntry::Internal;
    }
    if SYNC_TOOL_NAMES.contains(&s)
        || (s.starts_with(".syncthing.") && s.ends_with(".tmp"))
        || (s.starts_with("~syncthing~") && s.ends_with(".tmp"))
        || s.starts_with(".~lock.")
    {
        return VaultEntry::SyncTool;
    }
    if let Some(h) = s.strip_prefix(LONG_PREFIX) {
        if h.len() == 43 && h.bytes().all(base64url::is_alphabet) {
            return VaultEntry::Long(s);
        }
        if let Some(h) = h.strip_suffix(SIDECAR_SUFFIX) {
            if h.len() == 43 && h.bytes().all(base64url::is_alphabet) {
                return VaultEntry::Sidecar;
            }
        }
        return VaultEntry::Foreign;
    }
    if s.len() >= 43 && s.len() <= MAX_SHORT_NAME && s.bytes().all(base64url::is_alphabet) {
        return VaultEntry::Short(s);
    }
    VaultEntry::Foreign
}

/// The on-disk form of one encrypted name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskName {
    Short(String),
    Long { hashed: String, full: String },
}

impl DiskName {
    /// The name of the vault entry itself.
    pub fn entry(&self) -> &str {
        match self {
            DiskName::Short(s) => s,
            DiskName::Long { hashed, .. } => hashed,
        }
    }

    /// The sidecar holding the full encoding, for long names.
    pub fn sidecar(&self) -> Option<String> {
        match self {
            DiskName::Short(_) => None,
            DiskName::Long { hashed, .. } => Some(format!("{hashed}{SIDECAR_SUFFIX}")),
        }
    }
}

/// The name of the sidecar of a hashed long name.
pub fn sidecar_of(hashed: &str) -> String {
    format!("{hashed}{SIDECAR_SUFFIX}")
}

/// The hashed on-disk name of a full long encoding.
pub fn hashed_long_name(full: &str) -> String {
    format!(
        "{LONG_PREFIX}{}",
        base64url::encode(blake3::hash(full.as_bytes()).as_bytes())
    )
}

/// Checks a plaintext name: not empty, not `.`/`..`, no `/` or NUL, at most NAME_MAX.
pub fn valid_plain_name(name: &[u8]) -> Result<(), i32> {
    if name.len() > MAX_PLAIN_NAME {
        return Err(libc::ENAMETOOLONG);
    }
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(libc::EINVAL);
    }
    Ok(())
}

/// Encrypts and decrypts names and symlink targets.
pub struct NameCodec {
    names: Cipher,
    nonce_key: SecretKey,
    symlinks: Cipher,
    xattr_values: Cipher,
}

/// The pseudo directory ID under which extended-attribute names are encrypted.
pub const XATTR_NAMESPACE: DirId = DirId(*b"sealfs extended attribute names!");

impl NameCodec {
    /// Builds the codec from the vault's name key (random, wrapped in the config).
    pub fn new(name_key: &SecretKey) -> Self {
        NameCodec {
            names: Cipher::new(&name_key.derive("sealfs v1 name encryption")),
            nonce_key: name_key.derive("sealfs v1 name nonce"),
            symlinks: Cipher::new(&name_key.derive("sealfs v1 symlink target")),
            xattr_values: Cipher::new(&name_key.derive("sealfs v1 xattr value")),
        }
    }

    fn nonce(&self, dir: &DirId) -> [u8; NONCE_LEN] {
        let h = self.nonce_key.keyed_hash(&[&dir.0]);
        let mut n = [0u8; NONCE_LEN];
        n.copy_from_slice(&h[..NONCE_LEN]);
        n
    }

    fn aad(dir: &DirId) -> [u8; 46] {
        let mut a = [0u8; 46];
        a[..14].copy_from_slice(NAME_AAD);
        a[14..].copy_from_slice(&dir.0);
        a
    }

    /// The base64url encoding of a name in directory `dir` (before long-name hashing).
    pub fn encode(&self, dir: &DirId, name: &[u8]) -> std::io::Result<String> {
        let padded = name.len().div_ceil(16).max(1) * 16;
        let mut buf = vec![0u8; padded + TAG_LEN];
        buf[..name.len()].copy_from_slice(name);
        let tag =
            self.names
                .seal_with_nonce(&self.nonce(dir), &Self::aad(dir), &mut buf[..padded])?;
        buf[padded..].copy_from_slice(&tag);
        Ok(base64url::encode(&buf))
    }

    /// The on-disk name for `name` in `dir`.
    pub fn disk_name(&self, dir: &DirId, name: &[u8]) -> std::io::Result<DiskName> {
        let full = self.encode(dir, name)?;
        Ok(if full.len() <= MAX_SHORT_NAME {
            DiskName::Short(full)
        } else {
            DiskName::Long {
                hashed: hashed_long_name(&full),
                full,
            }
        })
    }

    /// Decrypts a full encoding; `None` if it is not a name of this directory.
    pub fn decode(&self, dir: &DirId, encoded: &[u8]) -> Option<Vec<u8>> {
        let raw = base64url::decode(encoded)?;
        if raw.len() < 16 + TAG_LEN || (raw.len() - TAG_LEN) % 16 != 0 {
            return None;
        }
        let (body, tag) = raw.split_at(raw.len() - TAG_LEN);
        let mut buf = body.to_vec();
        if !self.names.open(
            &self.nonce(dir),
            &Self::aad(dir),
            &mut buf,
            tag.try_into().ok()?,
        ) {
            return None;
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        // Canonical padding only: the rest must be NUL, and at most one block of it.
        if end == 0 || buf.len() - end >= 16 || buf[end..].iter().any(|&b| b != 0) {
            return None;
        }
        buf.truncate(end);
        Some(buf)
    }

    /// Encrypts a symlink target (random nonce) into a base64url string.
    pub fn encrypt_target(&self, target: &[u8]) -> std::io::Result<String> {
        Ok(base64url::encode(
            &self.symlinks.seal_detached(SYMLINK_AAD, target)?,
        ))
    }

    /// Decrypts a stored symlink target.
    pub fn decrypt_target(&self, stored: &[u8]) -> Option<Vec<u8>> {
        self.symlinks
            .open_detached(SYMLINK_AAD, &base64url::decode(stored)?)
    }

    /// Seals an extended-attribute value, bound to its (encrypted) name.
    pub fn seal_xattr(&self, enc_name: &[u8], value: &[u8]) -> std::io::Result<Vec<u8>> {
        self.xattr_values.seal_detached(enc_name, value)
    }

    /// Opens an extended-attribute value sealed by `seal_xattr`.
    pub fn open_xattr(&self, enc_name: &[u8], raw: &[u8]) -> Option<Vec<u8>> {
        self.xattr_values.open_detached(enc_name, raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> NameCodec {
        NameCodec::new(&SecretKey::from_slice(&[9; 32]).unwrap())
    }

    #[test]
    fn deterministic_within_dir_distinct_across() {
        let c = codec();
        let a = DirId([1; 32]);
        let b = DirId([2; 32]);
        assert_eq!(c.encode(&a, b"x").unwrap(), c.encode(&a, b"x").unwrap());
        assert_ne!(c.encode(&a, b"x").unwrap(), c.encode(&b, b"x").unwrap());
        let e = c.encode(&a, b"hello.txt").unwrap();
        assert_eq!(c.decode(&a, e.as_bytes()).unwrap(), b"hello.txt");
        assert!(c.decode(&b, e.as_bytes()).is_none());
    }

    #[test]
    fn every_length_roundtrips_and_long_names_hash() {
        let c = codec();
        let d = DirId([3; 32]);
        for len in 1..=255usize {
            let n: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let dn = c.disk_name(&d, &n).unwrap();
            assert!(dn.entry().len() <= MAX_SHORT_NAME);
            let full = match &dn {
                DiskName::Short(s) => s.clone(),
                DiskName::Long { hashed, full } => {
                    assert_eq!(classify(hashed.as_bytes(), false), VaultEntry::Long(hashed));
                    full.clone()
                }
            };
            assert_eq!(c.decode(&d, full.as_bytes()).unwrap(), n);
        }
    }

    #[test]
    fn flipped_names_are_rejected() {
        let c = codec();
        let d = DirId([3; 32]);
        let e = c.encode(&d, b"secret").unwrap().into_bytes();
        for i in 0..e.len() {
            let mut f = e.clone();
            f[i] = if f[i] == b'A' { b'B' } else { b'A' };
            assert!(c.decode(&d, &f).is_none(), "position {i}");
        }
    }

    #[test]
    fn symlink_targets_roundtrip_and_reject_tamper() {
        let c = codec();
        let s = c.encrypt_target(b"../some/where").unwrap();
        assert_eq!(c.decrypt_target(s.as_bytes()).unwrap(), b"../some/where");
        let mut t = s.into_bytes();
        t[20] = if t[20] == b'A' { b'B' } else { b'A' };
        assert!(c.decrypt_target(&t).is_none());
    }

    #[test]
    fn classification() {
        assert_eq!(classify(b".sealfs.dir", false), VaultEntry::Internal);
        assert_eq!(classify(b"sealfs.conf", true), VaultEntry::Internal);
        assert_eq!(classify(b".stfolder", false), VaultEntry::SyncTool);
        assert_eq!(classify(b"notes.txt", false), VaultEntry::Foreign);
        let h = hashed_long_name("abc");
        assert_eq!(
            classify(sidecar_of(&h).as_bytes(), false),
            VaultEntry::Sidecar
        );
        assert!(valid_plain_name(b"..").is_err());
        assert_eq!(valid_plain_name(&[b'a'; 256]), Err(libc::ENAMETOOLONG));
    }
}

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
//! Encodings longer than the vault's name limit (`longname_max` in the config,
//! 200 bytes by default) are stored as `~` || base64url(BLAKE3(encoding)) with
//! the full encoding in a sidecar file of the same name plus `.name`. The
//! default leaves 55 bytes of the 255-byte name limit for the suffixes sync
//! tools add to conflict copies.
//!
//! A decrypted name must be a valid file name (1..=255 bytes, no `/` or NUL,
//! not `.` or `..`); one that is not is treated like a foreign entry.
//!
//! Extended-attribute names are sealed the same way under their own subkey,
//! so an attribute name's ciphertext never decrypts as a file name.
//!
//! Symlink targets and extended-attribute values are padded (a 0x80 byte, then
//! zeros, to a multiple of 16) and sealed with a random nonce, so their exact
//! lengths do not show. A target whose encoding is longer than
//! `MAX_INLINE_TARGET` is stored in `.sealfs.links/<base64url(BLAKE3(sealed))>`
//! at the vault root, and the vault symlink points to `~<that hash>`.

use super::base64url;
use super::conflict;
use super::dirid::{DIRID_FILE, DirId};
use crate::crypto::{Cipher, NONCE_LEN, SecretKey, TAG_LEN};

/// Longest target encoding stored in the vault symlink itself.
pub const MAX_INLINE_TARGET: usize = 1024;
/// Longest plaintext symlink target (PATH_MAX - 1).
pub const MAX_TARGET: usize = 4095;
/// Where long symlink targets live (a directory at the vault root).
pub const LINKS_DIR: &str = ".sealfs.links";
pub const LONG_PREFIX: &str = "~";
pub const SIDECAR_SUFFIX: &str = ".name";
/// Prefix of the transient names sealfs uses inside the vault (atomic mkdir).
pub const TEMP_PREFIX: &str = ".sealfs.tmp.";
/// Longest plaintext name accepted (NAME_MAX).
pub const MAX_PLAIN_NAME: usize = 255;
const NAME_AAD: &[u8] = b"sealfs name v1";
const XATTR_NAME_AAD: &[u8] = b"sealfs xattr name v1";
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
    /// Possibly a sync tool's copy of an entry: an encrypted name plus a
    /// marker (see `conflict`); decryption tells.
    Copy(&'a str),
    /// Anything else: not produced by sealfs.
    Foreign,
}

/// Classifies a name found in a vault directory.
pub fn classify(name: &[u8], at_root: bool) -> VaultEntry<'_> {
    let Ok(s) = std::str::from_utf8(name) else {
        return VaultEntry::Foreign;
    };
    if s.starts_with(DIRID_FILE)
        || s.starts_with(TEMP_PREFIX)
        || conflict::dirid_copy_marker(s).is_some()
        || (at_root && (s == LINKS_DIR || is_config_name(s)))
    {
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
    } else if conflict::is_encoding_len(s.len()) && s.bytes().all(base64url::is_alphabet) {
        return VaultEntry::Short(s);
    }
    match conflict::splits(s).first().map(|x| x.kind) {
        // A copy of a sidecar is sealfs's own file: used, never shown.
        Some(conflict::BaseKind::Sidecar) => VaultEntry::Internal,
        Some(_) => VaultEntry::Copy(s),
        None => VaultEntry::Foreign,
    }
}

/// The config and the copies of it that sealfs or a sync tool makes at the
/// vault root: `sealfs.conf`, its temporary files, and conflict copies such
/// as `sealfs.sync-conflict-….conf` or `sealfs (… conflicted copy …).conf`.
pub fn is_config_name(s: &str) -> bool {
    s.starts_with("sealfs.conf") || (s.starts_with("sealfs") && s.ends_with(".conf"))
}

/// Pads to a multiple of 16: a 0x80 byte, then zeros (ISO/IEC 7816-4).
fn pad(data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity((data.len() / 16 + 1) * 16);
    v.extend_from_slice(data);
    v.push(0x80);
    v.resize(v.len().div_ceil(16) * 16, 0);
    v
}

/// Reverses `pad`; `None` if the padding is not canonical.
fn unpad(mut v: Vec<u8>) -> Option<Vec<u8>> {
    if v.is_empty() || v.len() % 16 != 0 {
        return None;
    }
    let mark = v.iter().rposition(|&b| b != 0)?;
    if v[mark] != 0x80 || v.len() - mark > 16 {
        return None;
    }
    v.truncate(mark);
    Some(v)
}

/// How a vault symlink's own target refers to the sealed target.
#[derive(Debug, PartialEq, Eq)]
pub enum TargetRef<'a> {
    /// base64url of the sealed target.
    Inline(&'a [u8]),
    /// The name of the file in `LINKS_DIR` that holds the sealed target.
    Stored(&'a str),
}

/// Reads a vault symlink's own target.
pub fn target_ref(raw: &[u8]) -> TargetRef<'_> {
    match raw.strip_prefix(LONG_PREFIX.as_bytes()) {
        Some(h) if h.len() == 43 && h.iter().all(|&c| base64url::is_alphabet(c)) => {
            TargetRef::Stored(std::str::from_utf8(h).unwrap_or_default())
        }
        _ => TargetRef::Inline(raw),
    }
}

/// The store file name for a sealed long target.
pub fn stored_target_name(sealed: &[u8]) -> String {
    base64url::encode(blake3::hash(sealed).as_bytes())
}

/// The on-disk form of one encrypted name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskName {
    Short(String),
    Long {
        hashed: String,
        full: String,
    },
    /// An entry that does not decrypt as it is (a sync tool's conflict
    /// copy, an entry of another directory ID), found by its shown name.
    Raw(String),
}

impl DiskName {
    /// The name of the vault entry itself.
    pub fn entry(&self) -> &str {
        match self {
            DiskName::Short(s) | DiskName::Raw(s) => s,
            DiskName::Long { hashed, .. } => hashed,
        }
    }

    /// The sidecar holding the full encoding, for long names.
    pub fn sidecar(&self) -> Option<String> {
        match self {
            DiskName::Short(_) | DiskName::Raw(_) => None,
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
    xattr_names: Cipher,
    symlinks: Cipher,
    xattr_values: Cipher,
    longname_max: usize,
}

/// The pseudo directory ID that enters extended-attribute name encryption
/// (under its own key, so it never meets a file name's).
const XATTR_NAMESPACE: DirId = DirId(*b"sealfs extended attribute names!");

impl NameCodec {
    /// Builds the codec from the vault's name key (random, wrapped in the
    /// config) and its name length limit.
    pub fn new(name_key: &SecretKey, longname_max: usize) -> Self {
        NameCodec {
            names: Cipher::new(&name_key.derive("sealfs v1 name encryption")),
            nonce_key: name_key.derive("sealfs v1 name nonce"),
            xattr_names: Cipher::new(&name_key.derive("sealfs v1 xattr name encryption")),
            symlinks: Cipher::new(&name_key.derive("sealfs v1 symlink target")),
            xattr_values: Cipher::new(&name_key.derive("sealfs v1 xattr value")),
            longname_max,
        }
    }

    fn nonce(&self, dir: &DirId) -> [u8; NONCE_LEN] {
        let h = self.nonce_key.keyed_hash(&[&dir.0]);
        let mut n = [0u8; NONCE_LEN];
        n.copy_from_slice(&h[..NONCE_LEN]);
        n
    }

    fn aad(label: &[u8], dir: &DirId) -> Vec<u8> {
        let mut a = label.to_vec();
        a.extend_from_slice(&dir.0);
        a
    }

    fn seal_name(
        &self,
        c: &Cipher,
        label: &[u8],
        dir: &DirId,
        name: &[u8],
    ) -> std::io::Result<String> {
        let padded = name.len().div_ceil(16).max(1) * 16;
        let mut buf = vec![0u8; padded + TAG_LEN];
        buf[..name.len()].copy_from_slice(name);
        let tag =
            c.seal_with_nonce(&self.nonce(dir), &Self::aad(label, dir), &mut buf[..padded])?;
        buf[padded..].copy_from_slice(&tag);
        Ok(base64url::encode(&buf))
    }

    fn open_name(&self, c: &Cipher, label: &[u8], dir: &DirId, encoded: &[u8]) -> Option<Vec<u8>> {
        let raw = base64url::decode(encoded)?;
        if raw.len() < 16 + TAG_LEN || (raw.len() - TAG_LEN) % 16 != 0 {
            return None;
        }
        let (body, tag) = raw.split_at(raw.len() - TAG_LEN);
        let mut buf = body.to_vec();
        if !c.open(
            &self.nonce(dir),
            &Self::aad(label, dir),
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

    /// The base64url encoding of a name in directory `dir` (before long-name hashing).
    pub fn encode(&self, dir: &DirId, name: &[u8]) -> std::io::Result<String> {
        self.seal_name(&self.names, NAME_AAD, dir, name)
    }

    /// The encoding of an extended-attribute name.
    pub fn encode_xattr_name(&self, name: &[u8]) -> std::io::Result<String> {
        self.seal_name(&self.xattr_names, XATTR_NAME_AAD, &XATTR_NAMESPACE, name)
    }

    /// Decrypts an extended-attribute name's encoding.
    pub fn decode_xattr_name(&self, encoded: &[u8]) -> Option<Vec<u8>> {
        self.open_name(&self.xattr_names, XATTR_NAME_AAD, &XATTR_NAMESPACE, encoded)
    }

    /// The on-disk name for `name` in `dir`.
    pub fn disk_name(&self, dir: &DirId, name: &[u8]) -> std::io::Result<DiskName> {
        let full = self.encode(dir, name)?;
        Ok(if full.len() <= self.longname_max {
            DiskName::Short(full)
        } else {
            DiskName::Long {
                hashed: hashed_long_name(&full),
                full,
            }
        })
    }

    /// Decrypts a full encoding; `None` if it is not a valid name of this directory.
    pub fn decode(&self, dir: &DirId, encoded: &[u8]) -> Option<Vec<u8>> {
        let name = self.open_name(&self.names, NAME_AAD, dir, encoded)?;
        valid_plain_name(&name).ok()?;
        Some(name)
    }

    /// Seals a symlink target (padded, random nonce).
    pub fn seal_target(&self, target: &[u8]) -> std::io::Result<Vec<u8>> {
        self.symlinks.seal_detached(SYMLINK_AAD, &pad(target))
    }

    /// Opens a sealed symlink target; `None` unless authentic and valid.
    pub fn open_target(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let t = unpad(self.symlinks.open_detached(SYMLINK_AAD, sealed)?)?;
        (!t.is_empty() && t.len() <= MAX_TARGET && !t.contains(&0)).then_some(t)
    }

    /// Seals an extended-attribute value (padded), bound to its encrypted name.
    pub fn seal_xattr(&self, enc_name: &[u8], value: &[u8]) -> std::io::Result<Vec<u8>> {
        self.xattr_values.seal_detached(enc_name, &pad(value))
    }

    /// Opens an extended-attribute value sealed by `seal_xattr`.
    pub fn open_xattr(&self, enc_name: &[u8], raw: &[u8]) -> Option<Vec<u8>> {
        unpad(self.xattr_values.open_detached(enc_name, raw)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> NameCodec {
        NameCodec::new(&SecretKey::from_slice(&[9; 32]).unwrap(), 200)
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
            assert!(dn.entry().len() <= 200);
            let full = match &dn {
                DiskName::Short(s) => {
                    assert_eq!(classify(s.as_bytes(), false), VaultEntry::Short(s));
                    s.clone()
                }
                DiskName::Long { hashed, full } => {
                    assert_eq!(classify(hashed.as_bytes(), false), VaultEntry::Long(hashed));
                    full.clone()
                }
                DiskName::Raw(_) => unreachable!("disk_name never gives a raw name"),
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
    fn symlink_targets_roundtrip_padded_and_reject_tamper() {
        let c = codec();
        let s = c.seal_target(b"../some/where").unwrap();
        assert_eq!(c.open_target(&s).unwrap(), b"../some/where");
        // 13 and 15 bytes seal to the same length.
        assert_eq!(c.seal_target(b"abcdefghijklm").unwrap().len(), s.len());
        assert_eq!(c.seal_target(b"abcdefghijklmno").unwrap().len(), s.len());
        let mut t = s.clone();
        t[20] ^= 1;
        assert!(c.open_target(&t).is_none());
        let long = vec![b'x'; MAX_TARGET];
        assert_eq!(c.open_target(&c.seal_target(&long).unwrap()).unwrap(), long);
    }

    #[test]
    fn padding_is_canonical_and_values_keep_nuls() {
        for len in 0..40 {
            let v: Vec<u8> = (0..len).map(|i| (i % 3) as u8).collect();
            let p = pad(&v);
            assert_eq!(p.len() % 16, 0);
            assert_eq!(unpad(p).unwrap(), v);
        }
        assert!(unpad(vec![0; 16]).is_none());
        assert!(unpad(vec![1; 16]).is_none());
        let c = codec();
        let v = c.seal_xattr(b"n", b"a\0b\0").unwrap();
        assert_eq!(c.open_xattr(b"n", &v).unwrap(), b"a\0b\0");
        assert!(c.open_xattr(b"m", &v).is_none());
    }

    #[test]
    fn attribute_names_never_decrypt_as_file_names() {
        let c = codec();
        let e = c.encode_xattr_name(b"user.test").unwrap();
        assert_eq!(c.decode_xattr_name(e.as_bytes()).unwrap(), b"user.test");
        assert!(c.decode(&XATTR_NAMESPACE, e.as_bytes()).is_none());
        let f = c.encode(&XATTR_NAMESPACE, b"user.test").unwrap();
        assert!(c.decode_xattr_name(f.as_bytes()).is_none());
    }

    #[test]
    fn invalid_decrypted_names_are_refused() {
        let c = codec();
        let d = DirId([4; 32]);
        for bad in [&b".."[..], b".", b"a/b"] {
            let e = c.encode(&d, bad).unwrap();
            assert!(c.decode(&d, e.as_bytes()).is_none());
        }
    }

    #[test]
    fn target_refs() {
        let h = stored_target_name(b"x");
        let link = format!("~{h}");
        assert_eq!(target_ref(link.as_bytes()), TargetRef::Stored(&h));
        assert_eq!(target_ref(b"abc"), TargetRef::Inline(b"abc"));
        assert!(is_config_name(
            "sealfs.sync-conflict-20261130-101500-ABCDEFG.conf"
        ));
        assert!(is_config_name(
            "sealfs (Alice's conflicted copy 2026-11-30).conf"
        ));
        assert!(!is_config_name("notes.conf"));
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

//! One vault directory, held open by fd, with operations by plaintext name.
//! Renames of the directory itself never invalidate the fd.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::dirid::{DIRID_FILE, DIRID_FILE_LEN, DirId};
use crate::format::names::{
    DiskName, MAX_TARGET, TEMP_PREFIX, VaultEntry, classify, hashed_long_name, sidecar_of,
    valid_plain_name,
};

use super::conflicts::{self, Index};
use super::file::SealedFile;
use super::keys::VaultKeys;
use super::sys;
use super::warn_once;
use crate::vault::sys::Stat;

/// Why a long name does not decode when its sidecar has not arrived (yet).
pub(crate) const MISSING_SIDECAR: &str = "long name's .name sidecar is missing (not synced yet?)";

/// Kind of a directory entry, from the vault's own `d_type`/`st_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl Kind {
    pub fn from_mode(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFCHR => Kind::CharDevice,
            libc::S_IFBLK => Kind::BlockDevice,
            _ => Kind::Unknown,
        }
    }

    fn from_dtype(t: u8) -> Kind {
        match t {
            libc::DT_REG => Kind::File,
            libc::DT_DIR => Kind::Dir,
            libc::DT_LNK => Kind::Symlink,
            libc::DT_FIFO => Kind::Fifo,
            libc::DT_SOCK => Kind::Socket,
            libc::DT_CHR => Kind::CharDevice,
            libc::DT_BLK => Kind::BlockDevice,
            _ => Kind::Unknown,
        }
    }
}

/// One decrypted directory entry.
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub name: OsString,
    /// The vault entry's own name (ciphertext).
    pub disk_name: OsString,
    pub ino: u64,
    pub kind: Kind,
}

/// One item of a streamed listing (see `Dir::list_from`).
pub enum Listed {
    Dot,
    DotDot,
    Entry(DirEntry),
}

/// Something that knows its vault-relative ciphertext path (for messages).
pub trait Labelled: Send + Sync {
    fn vault_path(&self) -> String;
}

/// A directory's ciphertext path: fixed, or asked of its owner only when a
/// message needs it (so operations by name build no path string).
enum Label {
    Fixed(String),
    Of(Arc<dyn Labelled>),
}

/// Which name keys seal a directory's entries. Anything but `Current` exists
/// only while a `rekey --full` is unfinished (see `super::fullrekey`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Naming {
    Current,
    /// Not reached yet: the previous name key, and `id` is the old ID.
    Previous,
    /// Being converted: `id` is the new ID; entries not yet converted are
    /// sealed with the previous name key under `old`.
    Both {
        old: DirId,
    },
}

/// The file that holds a directory's new ID while `rekey --full` converts it.
pub(crate) const DIRID_NEXT_FILE: &str = ".sealfs.dir.next";

pub struct Dir {
    fd: Arc<OwnedFd>,
    id: DirId,
    naming: Naming,
    keys: Arc<VaultKeys>,
    is_root: bool,
    /// Vault-relative ciphertext path, for log messages.
    label: Label,
}

impl Dir {
    pub(crate) fn root(fd: OwnedFd, keys: Arc<VaultKeys>) -> Dir {
        let id = keys.root_id;
        let naming = match &keys.previous {
            Some(p) => Naming::Both { old: p.root_id },
            None => Naming::Current,
        };
        Dir {
            fd: Arc::new(fd),
            id,
            naming,
            keys,
            is_root: true,
            label: Label::Fixed(".".into()),
        }
    }

    /// Wraps an open vault directory fd, reading its ID file.
    pub fn from_fd(fd: OwnedFd, keys: Arc<VaultKeys>, label: String) -> Result<Dir> {
        let (id, naming) = Self::read_naming(fd.as_fd(), &keys, &label)?;
        Ok(Dir {
            fd: Arc::new(fd),
            id,
            naming,
            keys,
            is_root: false,
            label: Label::Fixed(label),
        })
    }

    /// A directory whose fd and ID the caller already holds (and checked);
    /// `owner` gives its path when a message needs one.
    pub fn view(
        fd: Arc<OwnedFd>,
        id: DirId,
        keys: Arc<VaultKeys>,
        is_root: bool,
        owner: Arc<dyn Labelled>,
    ) -> Dir {
        Dir {
            fd,
            id,
            naming: Naming::Current,
            keys,
            is_root,
            label: Label::Of(owner),
        }
    }

    /// The directory's ID and naming: as `read_id`, and during a
    /// `rekey --full` also an ID file still under the previous key.
    pub(crate) fn read_naming(
        fd: BorrowedFd<'_>,
        keys: &VaultKeys,
        label: &str,
    ) -> Result<(DirId, Naming)> {
        let Some(p) = &keys.previous else {
            return Ok((Self::read_id(fd, keys, label)?, Naming::Current));
        };
        let raw = sys::read_small_file(fd, DIRID_FILE.as_bytes(), DIRID_FILE_LEN)
            .map_err(|e| Error::Corrupt(format!("{label}/{DIRID_FILE}: {e}")))?;
        if let Some(id) = DirId::decode(&raw, &keys.dirid_mac) {
            return Ok((id, Naming::Current));
        }
        let old = DirId::decode(&raw, &p.dirid_mac)
            .ok_or_else(|| Error::Corrupt(format!("{label}/{DIRID_FILE}")))?;
        let next = sys::read_small_file(fd, DIRID_NEXT_FILE.as_bytes(), DIRID_FILE_LEN)
            .ok()
            .and_then(|b| DirId::decode(&b, &keys.dirid_mac));
        Ok(match next {
            Some(new) => (new, Naming::Both { old }),
            None => (old, Naming::Previous),
        })
    }

    pub(crate) fn naming(&self) -> Naming {
        self.naming
    }

    /// Reads and checks the ID file of the vault directory open as `fd`.
    pub fn read_id(fd: BorrowedFd<'_>, keys: &VaultKeys, label: &str) -> Result<DirId> {
        let mac_key = &keys.dirid_mac;
        let raw = match sys::read_small_file(fd, DIRID_FILE.as_bytes(), DIRID_FILE_LEN) {
            Ok(b) => b,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                warn_once(
                    label,
                    "directory has no directory-ID file (not yet synced?)",
                );
                return Err(Error::Corrupt(format!(
                    "{label}: missing {DIRID_FILE} {}",
                    crate::error::NOT_SYNCED_YET
                )));
            }
            Err(e) => return Err(e.into()),
        };
        DirId::decode(&raw, mac_key).ok_or_else(|| {
            warn_once(
                label,
                "directory-ID file is malformed or failed authentication",
            );
            Error::Corrupt(format!("{label}/{DIRID_FILE}"))
        })
    }

    /// The shared fd.
    pub fn shared_fd(&self) -> &Arc<OwnedFd> {
        &self.fd
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn id(&self) -> &DirId {
        &self.id
    }

    pub fn keys(&self) -> &Arc<VaultKeys> {
        &self.keys
    }

    pub fn label(&self) -> String {
        match &self.label {
            Label::Fixed(l) => l.clone(),
            Label::Of(owner) => owner.vault_path(),
        }
    }

    fn child_label(&self, entry: &str) -> String {
        if self.is_root {
            entry.to_string()
        } else {
            format!("{}/{entry}", self.label())
        }
    }

    /// The on-disk name of plaintext `name` in this directory.
    pub fn disk_name(&self, name: &OsStr) -> Result<DiskName> {
        let b = sys::bytes(name);
        valid_plain_name(b).map_err(Error::errno)?;
        match (self.naming, &self.keys.previous) {
            (Naming::Current, _) | (_, None) => Ok(self.keys.names.disk_name(&self.id, b)?),
            (Naming::Previous, Some(p)) => Ok(p.names.disk_name(&self.id, b)?),
            (Naming::Both { old }, Some(p)) => {
                let dn = self.keys.names.disk_name(&self.id, b)?;
                if sys::fstatat(self.fd(), dn.entry().as_bytes()).is_err() {
                    let o = p.names.disk_name(&old, b)?;
                    if sys::fstatat(self.fd(), o.entry().as_bytes()).is_ok() {
                        return Ok(o);
                    }
                }
                Ok(dn)
            }
        }
    }

    /// The vault entry shown as plaintext `name` when that is not its
    /// encrypted name: a sync tool's conflict copy, or an entry of another
    /// directory ID (see `conflicts`).
    pub(crate) fn indirect(&self, name: &OsStr) -> Result<Option<String>> {
        let b = sys::bytes(name);
        // A directory that cannot be listed has no copies to show.
        let Ok(mut ix) = conflicts::index(self, false) else {
            return Ok(None);
        };
        if ix.raw_of(b).is_none() && conflicts::looks_shown(b) {
            // Shaped like a copy's name: only an up-to-date index may say no.
            match conflicts::index(self, true) {
                Ok(i) => ix = i,
                Err(_) => return Ok(None),
            }
        }
        Ok(ix
            .raw_of(b)
            .filter(|r| sys::fstatat(self.fd(), r.as_bytes()).is_ok())
            .map(str::to_string))
    }

    /// The on-disk name under which plaintext `name` exists: its encrypted
    /// name, or else the vault name of the copy shown as `name`; a name that
    /// exists neither way gives its encrypted name.
    pub fn find(&self, name: &OsStr) -> Result<DiskName> {
        let dn = self.disk_name(name)?;
        match sys::fstatat(self.fd(), dn.entry().as_bytes()) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(match self.indirect(name)? {
                Some(raw) => DiskName::Raw(raw),
                None => dn,
            }),
            _ => Ok(dn),
        }
    }

    /// The name an entry has under the current name key (what `rekey --full` converts to).
    pub(crate) fn current_disk_name(&self, name: &OsStr) -> Result<DiskName> {
        Ok(self.keys.names.disk_name(&self.id, sys::bytes(name))?)
    }

    /// Decrypts a full name encoding; `Some((name, sealed with the current key))`.
    pub(crate) fn decode_full(&self, full: &str) -> Option<(Vec<u8>, bool)> {
        let cur = || self.keys.names.decode(&self.id, full.as_bytes());
        match (self.naming, &self.keys.previous) {
            (Naming::Current, _) | (_, None) => cur().map(|n| (n, true)),
            (Naming::Previous, Some(p)) => p
                .names
                .decode(&self.id, full.as_bytes())
                .map(|n| (n, false)),
            (Naming::Both { old }, Some(p)) => cur()
                .map(|n| (n, true))
                .or_else(|| p.names.decode(&old, full.as_bytes()).map(|n| (n, false))),
        }
    }

    /// `lstat` of an entry by plaintext name.
    pub fn stat(&self, name: &OsStr) -> Result<Stat> {
        let dn = self.find(name)?;
        Ok(sys::fstatat(self.fd(), dn.entry().as_bytes())?)
    }

    /// Opens an entry as an `O_PATH` fd (for the FUSE inode table), with its stat.
    pub fn open_path(&self, name: &OsStr) -> Result<(OwnedFd, Stat, DiskName)> {
        let dn = self.find(name)?;
        let fd = sys::openat(self.fd(), dn.entry().as_bytes(), libc::O_PATH, 0)?;
        let st = sys::fstat(fd.as_fd())?;
        Ok((fd, st, dn))
    }

    /// The full name encoding of a raw entry: `Err(None)` for entries that
    /// are not names (sealfs's own files, sidecars, sync tools' files),
    /// `Err(Some(why))` for ones that should be.
    fn full_encoding(&self, raw: &OsStr) -> std::result::Result<String, Option<&'static str>> {
        match classify(sys::bytes(raw), self.is_root) {
            VaultEntry::Short(s) => Ok(s.to_string()),
            VaultEntry::Long(h) => {
                match sys::read_small_file(self.fd(), sidecar_of(h).as_bytes(), 8192) {
                    Ok(v) if std::str::from_utf8(&v).map(hashed_long_name).as_deref() == Ok(h) => {
                        String::from_utf8(v).map_err(|_| Some("long name sidecar is not text"))
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(Some(MISSING_SIDECAR)),
                    _ => Err(Some("long name's .name sidecar does not match it")),
                }
            }
            VaultEntry::Foreign => Err(Some("not a sealfs entry")),
            _ => Err(None),
        }
    }

    /// Decrypts a sealfs entry's raw name (no logging); the error says why
    /// not. The flag tells whether it is sealed with the current name key.
    pub(crate) fn decode_entry_which(
        &self,
        raw: &OsStr,
    ) -> std::result::Result<(OsString, bool), &'static str> {
        use std::os::unix::ffi::OsStringExt;
        let full = self
            .full_encoding(raw)
            .map_err(|e| e.unwrap_or("not a sealfs entry"))?;
        self.decode_full(&full)
            .map(|(n, cur)| (OsString::from_vec(n), cur))
            .ok_or("name failed authentication")
    }

    /// Decrypts a sealfs entry's raw name (no logging); the error says why not.
    pub(crate) fn decode_entry(&self, raw: &OsStr) -> std::result::Result<OsString, &'static str> {
        self.decode_entry_which(raw).map(|(n, _)| n)
    }

    /// The ciphertext path of entry `entry` of this directory.
    pub(crate) fn entry_label(&self, entry: &str) -> String {
        self.child_label(entry)
    }

    /// Whether this is the vault root.
    pub fn is_root(&self) -> bool {
        self.is_root
    }

    /// The name raw entry `raw` is shown under, and whether it is sealed with
    /// the current name key; `None` for what is not shown (logged once if it
    /// should have been). `ix` carries the directory's index of copies
    /// between calls of one listing.
    fn shown_entry(&self, raw: &OsStr, ix: &mut Option<Arc<Index>>) -> Option<(OsString, bool)> {
        use std::os::unix::ffi::OsStringExt;
        let why = match self.decode_entry_which(raw) {
            Ok(x) => return Some(x),
            Err(why) => why,
        };
        match classify(sys::bytes(raw), self.is_root) {
            VaultEntry::Internal | VaultEntry::SyncTool | VaultEntry::Sidecar => return None,
            VaultEntry::Foreign => {}
            VaultEntry::Short(_) | VaultEntry::Long(_) | VaultEntry::Copy(_) => {
                if let Some(s) = raw.to_str().and_then(|r| conflicts::shown(self, r, ix)) {
                    return Some((OsString::from_vec(s), true));
                }
            }
        }
        warn_once(
            &self.child_label(&raw.to_string_lossy()),
            &format!("{why}; hidden"),
        );
        None
    }

    /// The name raw entry `raw` is shown under (its plaintext name, or a
    /// conflict copy's shown name); the error says why it is not shown.
    pub(crate) fn entry_name(
        &self,
        raw: &OsStr,
        ix: &mut Option<Arc<Index>>,
    ) -> std::result::Result<OsString, &'static str> {
        use std::os::unix::ffi::OsStringExt;
        let why = match self.decode_entry(raw) {
            Ok(n) => return Ok(n),
            Err(why) => why,
        };
        if matches!(
            classify(sys::bytes(raw), self.is_root),
            VaultEntry::Short(_) | VaultEntry::Long(_) | VaultEntry::Copy(_)
        ) {
            if let Some(s) = raw.to_str().and_then(|r| conflicts::shown(self, r, ix)) {
                return Ok(OsString::from_vec(s));
            }
        }
        Err(why)
    }

    /// Lists the plaintext entries, conflict copies under their shown names;
    /// undecryptable ones are skipped and logged once.
    pub fn list(&self) -> Result<Vec<DirEntry>> {
        let raw = sys::read_dir(self.fd())?;
        let mut out = Vec::with_capacity(raw.len());
        let mut old = Vec::new();
        let mut ix = None;
        for r in raw {
            if let Some((name, current)) = self.shown_entry(&r.name, &mut ix) {
                let e = DirEntry {
                    name,
                    disk_name: r.name,
                    ino: r.ino,
                    kind: Kind::from_dtype(r.d_type),
                };
                if current { out.push(e) } else { old.push(e) }
            }
        }
        // During a rekey --full a crash can leave an entry under both keys
        // for a moment: the converted one is the one shown.
        if !old.is_empty() {
            let seen: std::collections::HashSet<OsString> =
                out.iter().map(|e| e.name.clone()).collect();
            out.extend(old.into_iter().filter(|e| !seen.contains(&e.name)));
        }
        Ok(out)
    }

    /// Streams the listing from position `cookie` (0: the start), calling
    /// `visit(item, next)` until it returns false; `next` resumes after the
    /// item. Undecryptable entries are skipped (and logged once). Nothing is
    /// held between calls, so entries made since an earlier call (or a
    /// rewind to 0) show up.
    pub fn list_from(&self, cookie: u64, mut visit: impl FnMut(Listed, u64) -> bool) -> Result<()> {
        let mut ix = None;
        sys::read_dir_from(self.fd(), cookie, |r, next| match sys::bytes(&r.name) {
            b"." => visit(Listed::Dot, next),
            b".." => visit(Listed::DotDot, next),
            _ => match self.shown_entry(&r.name, &mut ix) {
                Some((name, _)) => visit(
                    Listed::Entry(DirEntry {
                        name,
                        disk_name: r.name,
                        ino: r.ino,
                        kind: Kind::from_dtype(r.d_type),
                    }),
                    next,
                ),
                None => true,
            },
        })?;
        Ok(())
    }

    /// Writes the sidecar of a long name durably (idempotent; a damaged
    /// existing sidecar is replaced atomically).
    pub(crate) fn put_sidecar(&self, dn: &DiskName) -> Result<()> {
        if let (Some(side), DiskName::Long { full, .. }) = (dn.sidecar(), dn) {
            match sys::write_new_file(self.fd(), side.as_bytes(), full.as_bytes(), 0o644, true) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    let current = sys::read_small_file(self.fd(), side.as_bytes(), 8192).ok();
                    if current.as_deref() != Some(full.as_bytes()) {
                        sys::write_atomic(self.fd(), &side, full.as_bytes(), 0o644)?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Removes the sidecar of a long name if no entry uses it any more.
    fn drop_sidecar(&self, dn: &DiskName) {
        if let Some(side) = dn.sidecar() {
            if matches!(sys::fstatat(self.fd(), dn.entry().as_bytes()), Err(e) if e.raw_os_error() == Some(libc::ENOENT))
                && !self.copies_use(dn.entry())
            {
                let _ = sys::unlinkat(self.fd(), side.as_bytes(), 0);
            }
        }
    }

    /// Whether a conflict copy of the long name `hashed` (which reads its
    /// name from the same sidecar) is in this directory; true when unsure.
    fn copies_use(&self, hashed: &str) -> bool {
        conflicts::index(self, true).map_or(true, |ix| {
            ix.copies()
                .any(|n| n.len() > hashed.len() && n.starts_with(hashed))
        })
    }

    /// Opens a subdirectory by plaintext name.
    pub fn open_subdir(&self, name: &OsStr) -> Result<Dir> {
        let dn = self.find(name)?;
        let fd = sys::open_subdir(self.fd(), dn.entry().as_bytes())?;
        Dir::from_fd(fd, self.keys.clone(), self.child_label(dn.entry()))
    }

    /// Creates a directory. Atomic: built under a temporary name with its
    /// ID file, then renamed into place without replacing anything.
    pub fn mkdir(&self, name: &OsStr, mode: u32) -> Result<Dir> {
        if self.naming == Naming::Previous {
            // Not reached by an unfinished rekey --full yet: read-only.
            return Err(Error::errno(libc::EROFS));
        }
        let dn = self.disk_name(name)?;
        let _g = conflicts::own_change(self);
        let id = DirId::child(&self.keys.dirid_key, &self.id, sys::bytes(name));
        let tmp = format!(
            "{TEMP_PREFIX}{:016x}",
            u64::from_le_bytes(crate::crypto::random_array()?)
        );
        sys::mkdirat(self.fd(), tmp.as_bytes(), mode & 0o7777)?;
        let result = (|| -> Result<OwnedFd> {
            let sub = sys::open_subdir(self.fd(), tmp.as_bytes())?;
            // Durable before the directory gets its name: never an empty ID file.
            sys::write_new_file(
                sub.as_fd(),
                DIRID_FILE.as_bytes(),
                &id.encode(&self.keys.dirid_mac),
                0o444,
                true,
            )?;
            self.put_sidecar(&dn)?;
            sys::renameat2(
                self.fd(),
                tmp.as_bytes(),
                self.fd(),
                dn.entry().as_bytes(),
                libc::RENAME_NOREPLACE,
            )?;
            Ok(sub)
        })();
        match result {
            // The fd opened under the temporary name follows the rename.
            Ok(sub) => Ok(Dir {
                fd: Arc::new(sub),
                id,
                naming: Naming::Current,
                keys: self.keys.clone(),
                is_root: false,
                label: Label::Fixed(self.child_label(dn.entry())),
            }),
            Err(e) => {
                if let Ok(sub) = sys::open_subdir(self.fd(), tmp.as_bytes()) {
                    let _ = sys::unlinkat(sub.as_fd(), DIRID_FILE.as_bytes(), 0);
                }
                let _ = sys::unlinkat(self.fd(), tmp.as_bytes(), libc::AT_REMOVEDIR);
                Err(e)
            }
        }
    }

    /// Creates a regular file (`O_EXCL` when `exclusive`) and returns it open.
    /// An existing file is opened (and truncated when `truncate`).
    pub fn create_file(
        &self,
        name: &OsStr,
        mode: u32,
        exclusive: bool,
    ) -> Result<(SealedFile, bool)> {
        let (f, created, _) = self.create_file_found(name, mode, exclusive)?;
        Ok((f, created))
    }

    /// `create_file`, also returning the vault entry the file has (so a
    /// caller need not encrypt and look up the name a second time).
    pub fn create_file_found(
        &self,
        name: &OsStr,
        mode: u32,
        exclusive: bool,
    ) -> Result<(SealedFile, bool, DiskName)> {
        let dn = self.find(name)?;
        if let DiskName::Raw(_) = dn {
            if exclusive {
                return Err(Error::errno(libc::EEXIST));
            }
            return Ok((self.open_file(name, true)?, false, dn));
        }
        let _g = conflicts::own_change(self);
        self.put_sidecar(&dn)?;
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
        match sys::openat(self.fd(), dn.entry().as_bytes(), flags, mode & 0o7777) {
            Ok(fd) => {
                let label = self.child_label(dn.entry());
                match SealedFile::create(fd, &self.keys, label) {
                    Ok(f) => Ok((f, true, dn)),
                    Err(e) => {
                        let _ = sys::unlinkat(self.fd(), dn.entry().as_bytes(), 0);
                        self.drop_sidecar(&dn);
                        Err(e)
                    }
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && !exclusive => {
                Ok((self.open_file(name, true)?, false, dn))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates an empty sealed file under a hidden temporary name, for an
    /// atomic replace with `commit_temp`.
    pub fn create_temp_file(&self, mode: u32) -> Result<(SealedFile, String)> {
        let _g = conflicts::own_change(self);
        let tmp = format!(
            "{TEMP_PREFIX}{:016x}",
            u64::from_le_bytes(crate::crypto::random_array()?)
        );
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
        let fd = sys::openat(self.fd(), tmp.as_bytes(), flags, mode & 0o7777)?;
        match SealedFile::create(fd, &self.keys, self.child_label(&tmp)) {
            Ok(f) => Ok((f, tmp)),
            Err(e) => {
                let _ = sys::unlinkat(self.fd(), tmp.as_bytes(), 0);
                Err(e)
            }
        }
    }

    /// Renames a temporary file from `create_temp_file` over `name`.
    pub fn commit_temp(&self, tmp: &str, name: &OsStr) -> Result<()> {
        let dn = self.disk_name(name)?;
        let _g = conflicts::own_change(self);
        self.put_sidecar(&dn)?;
        sys::renameat2(
            self.fd(),
            tmp.as_bytes(),
            self.fd(),
            dn.entry().as_bytes(),
            0,
        )?;
        sys::fsync(self.fd())?;
        Ok(())
    }

    /// Removes a temporary file after a failure.
    pub fn discard_temp(&self, tmp: &str) {
        let _ = sys::unlinkat(self.fd(), tmp.as_bytes(), 0);
    }

    /// Opens an existing regular file.
    pub fn open_file(&self, name: &OsStr, writable: bool) -> Result<SealedFile> {
        let dn = self.find(name)?;
        // O_NONBLOCK: a FIFO under this name must not hang us; it is refused below.
        let flags = libc::O_NONBLOCK
            | if writable {
                libc::O_RDWR
            } else {
                libc::O_RDONLY
            };
        let fd = sys::openat(self.fd(), dn.entry().as_bytes(), flags, 0).map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                Error::errno(libc::EISDIR)
            } else {
                e.into()
            }
        })?;
        let st = sys::fstat(fd.as_fd())?;
        if Kind::from_mode(st.st_mode) != Kind::File {
            return Err(Error::errno(if Kind::from_mode(st.st_mode) == Kind::Dir {
                libc::EISDIR
            } else {
                libc::EINVAL
            }));
        }
        SealedFile::open(fd, &self.keys, self.child_label(dn.entry()))
    }

    /// Creates a symlink with an encrypted target.
    pub fn symlink(&self, name: &OsStr, target: &[u8]) -> Result<()> {
        if target.is_empty() || target.contains(&0) {
            return Err(Error::errno(libc::EINVAL));
        }
        if target.len() > MAX_TARGET {
            return Err(Error::errno(libc::ENAMETOOLONG));
        }
        let dn = self.disk_name(name)?;
        let enc = self.keys.store_target(target)?;
        let _g = conflicts::own_change(self);
        self.put_sidecar(&dn)?;
        sys::symlinkat(&enc, self.fd(), dn.entry().as_bytes()).map_err(|e| {
            self.drop_sidecar(&dn);
            Error::from(e)
        })
    }

    /// Reads and decrypts a symlink target by plaintext name.
    pub fn readlink(&self, name: &OsStr) -> Result<Vec<u8>> {
        let dn = self.find(name)?;
        let raw = sys::readlinkat(self.fd(), dn.entry().as_bytes())?;
        self.decrypt_target(&raw, dn.entry())
    }

    /// Decrypts a raw stored symlink target.
    pub fn decrypt_target(&self, raw: &[u8], entry: &str) -> Result<Vec<u8>> {
        self.keys.read_target(raw).ok_or_else(|| {
            let l = self.child_label(entry);
            log::error!("symlink target failed authentication: {l}");
            Error::Corrupt(l)
        })
    }

    /// Makes a fifo, socket or device node.
    pub fn mknod(&self, name: &OsStr, mode: u32, rdev: u64) -> Result<()> {
        let dn = self.disk_name(name)?;
        match mode & libc::S_IFMT {
            libc::S_IFREG => {
                self.create_file(name, mode, true)?;
                return Ok(());
            }
            libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR | libc::S_IFBLK => {}
            _ => return Err(Error::errno(libc::EINVAL)),
        }
        let _g = conflicts::own_change(self);
        self.put_sidecar(&dn)?;
        sys::mknodat(self.fd(), dn.entry().as_bytes(), mode, rdev).map_err(|e| {
            self.drop_sidecar(&dn);
            Error::from(e)
        })
    }

    /// Makes `name` a new hard link to the inode `fd` refers to.
    pub fn link(&self, fd: BorrowedFd<'_>, name: &OsStr) -> Result<()> {
        let dn = self.disk_name(name)?;
        let _g = conflicts::own_change(self);
        self.put_sidecar(&dn)?;
        sys::link_fd(fd, self.fd(), dn.entry().as_bytes()).map_err(|e| {
            self.drop_sidecar(&dn);
            Error::from(e)
        })
    }

    /// Removes a non-directory entry.
    pub fn unlink(&self, name: &OsStr) -> Result<()> {
        self.unlink_found(&self.find(name)?)
    }

    /// Removes the non-directory entry `dn` (as `find` returned it).
    pub fn unlink_found(&self, dn: &DiskName) -> Result<()> {
        let mut g = conflicts::own_change(self);
        sys::unlinkat(self.fd(), dn.entry().as_bytes(), 0)?;
        g.done();
        self.drop_sidecar(dn);
        Ok(())
    }

    /// Removes an empty directory (empty of plaintext entries and of anything
    /// else but its ID file).
    pub fn rmdir(&self, name: &OsStr) -> Result<()> {
        self.rmdir_found(&self.find(name)?)
    }

    /// Removes the empty directory `dn` (as `find` returned it).
    pub fn rmdir_found(&self, dn: &DiskName) -> Result<()> {
        let mut g = conflicts::own_change(self);
        let sub = sys::open_subdir(self.fd(), dn.entry().as_bytes())?;
        let entries = sys::read_dir(sub.as_fd())?;
        if entries.iter().any(|e| e.name != DIRID_FILE) {
            return Err(Error::errno(libc::ENOTEMPTY));
        }
        let id = sys::read_small_file(sub.as_fd(), DIRID_FILE.as_bytes(), DIRID_FILE_LEN).ok();
        match sys::unlinkat(sub.as_fd(), DIRID_FILE.as_bytes(), 0) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
        if let Err(e) = sys::unlinkat(self.fd(), dn.entry().as_bytes(), libc::AT_REMOVEDIR) {
            if let Some(id) = id {
                let _ = sys::write_new_file(sub.as_fd(), DIRID_FILE.as_bytes(), &id, 0o444, false);
            }
            return Err(e.into());
        }
        g.done();
        self.drop_sidecar(dn);
        Ok(())
    }

    /// If `from` is a directory and `to/to_entry` an empty one, removes the
    /// target's ID file; returns what is needed to put it back.
    fn clear_replaced_dir(
        &self,
        from: &str,
        to: &Dir,
        to_entry: &str,
    ) -> Result<Option<(OwnedFd, Vec<u8>)>> {
        let src = sys::fstatat(self.fd(), from.as_bytes())?;
        let dst = match sys::fstatat(to.fd(), to_entry.as_bytes()) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if Kind::from_mode(src.st_mode) != Kind::Dir || Kind::from_mode(dst.st_mode) != Kind::Dir {
            return Ok(None);
        }
        if src.st_ino == dst.st_ino && src.st_dev == dst.st_dev {
            return Ok(None);
        }
        let sub = sys::open_subdir(to.fd(), to_entry.as_bytes())?;
        if sys::read_dir(sub.as_fd())?
            .iter()
            .any(|e| e.name != DIRID_FILE)
        {
            return Err(Error::errno(libc::ENOTEMPTY));
        }
        let id = match sys::read_small_file(sub.as_fd(), DIRID_FILE.as_bytes(), DIRID_FILE_LEN) {
            Ok(id) => id,
            // Already without its ID file (a crash, a half-synced vault): nothing to move away.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        sys::unlinkat(sub.as_fd(), DIRID_FILE.as_bytes(), 0)?;
        Ok(Some((sub, id)))
    }

    /// Renames `name` to `to/to_name`; `flags` as for renameat2. Returns
    /// the entry's on-disk name in `to` afterwards: replacing a conflict
    /// copy shown as `to_name` leaves the entry under its own encrypted
    /// name, not the copy's.
    pub fn rename(&self, name: &OsStr, to: &Dir, to_name: &OsStr, flags: u32) -> Result<DiskName> {
        let a = self.find(name)?;
        let b = to.find(to_name)?;
        let mut g = (conflicts::own_change(self), conflicts::own_change(to));
        // A directory replacing an empty directory: the target holds only its
        // ID file, which must go first for the vault rename to succeed.
        let mut restore = None;
        if flags & (libc::RENAME_EXCHANGE | libc::RENAME_NOREPLACE) == 0 {
            restore = self.clear_replaced_dir(a.entry(), to, b.entry())?;
        }
        to.put_sidecar(&b)?;
        if let Err(e) = sys::renameat2(
            self.fd(),
            a.entry().as_bytes(),
            to.fd(),
            b.entry().as_bytes(),
            flags,
        ) {
            if let Some((sub, id)) = restore {
                let _ = sys::write_new_file(sub.as_fd(), DIRID_FILE.as_bytes(), &id, 0o444, false);
            }
            to.drop_sidecar(&b);
            return Err(e.into());
        }
        g.0.done();
        g.1.done();
        if flags & libc::RENAME_EXCHANGE != 0 {
            return Ok(b);
        }
        self.drop_sidecar(&a);
        let DiskName::Raw(copy) = &b else {
            return Ok(b);
        };
        // It replaced a copy: give it its own name (which does not exist,
        // or `find` would have given it). A failure leaves it readable under
        // the copy's name, shown as `to_name` still.
        let own = to.disk_name(to_name)?;
        to.put_sidecar(&own)?;
        match sys::renameat2(
            to.fd(),
            copy.as_bytes(),
            to.fd(),
            own.entry().as_bytes(),
            libc::RENAME_NOREPLACE,
        ) {
            Ok(()) => Ok(own),
            Err(e) => {
                log::warn!("{}: could not take its own name: {e}", to.entry_label(copy));
                to.drop_sidecar(&own);
                Ok(b)
            }
        }
    }
}

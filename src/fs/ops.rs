//! The filesystem operations, each `fn(..) -> Result<T>` over the vault
//! library. The `Filesystem` impl in `mod.rs` only calls these and replies.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fuser::{FileAttr, FileType};

use super::attr;
use super::inodes::{Inodes, Node, OpenFile};
use super::lock;
use crate::error::{Error, Result};
use crate::vault::{Dir, Kind, SealedFile, Vault, VaultKeys, sys};

/// How many handle-less open files stay open (two fds each at most).
const MAX_PINNED: usize = 1024;

/// One directory listing, taken at opendir.
pub type Listing = Arc<Vec<(u64, FileType, OsString)>>;

pub struct SealFs {
    keys: Arc<VaultKeys>,
    root_backing_ino: u64,
    pub inodes: Inodes,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    dirs: Mutex<HashMap<u64, Listing>>,
    next_fh: AtomicU64,
    pub read_only: bool,
    /// Use the kernel's writeback cache and keep page caches across opens.
    pub caching: bool,
    /// The kernel agreed to FUSE_NO_OPEN_SUPPORT: OPEN answers ENOSYS, after
    /// which the kernel sends no OPEN/RELEASE and file requests carry fh 0.
    pub no_open: std::sync::atomic::AtomicBool,
    /// Recently used open files kept open without a handle (fh 0 requests),
    /// so a file is not reopened and re-authenticated per request; bounded,
    /// oldest dropped first.
    pins: Mutex<std::collections::VecDeque<Arc<OpenFile>>>,
    root_fd: std::os::fd::OwnedFd,
}

/// Who is asking (for ownership of new entries).
#[derive(Clone, Copy)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
}

impl SealFs {
    pub fn new(vault: &Vault, read_only: bool) -> Result<SealFs> {
        let root = vault.root()?;
        let st = sys::fstat(root.fd())?;
        let fd = root.fd().try_clone_to_owned()?;
        let root_fd = root.fd().try_clone_to_owned()?;
        let inodes = Inodes::default();
        inodes.insert_root(Node::new(1, Kind::Dir, fd, ".".into(), Some(root)));
        Ok(SealFs {
            keys: vault.keys().clone(),
            root_backing_ino: st.st_ino,
            inodes,
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            read_only,
            caching: true,
            no_open: std::sync::atomic::AtomicBool::new(false),
            pins: Mutex::new(std::collections::VecDeque::new()),
            root_fd,
        })
    }

    /// FUSE inode number of a vault inode: the vault's own, with the vault
    /// root's number and 1 swapped (FUSE's root is 1).
    pub fn fuse_ino(&self, backing: u64) -> u64 {
        if backing == self.root_backing_ino {
            1
        } else if backing == 1 {
            self.root_backing_ino
        } else {
            backing
        }
    }

    /// Whether to ask the kernel for `flag` at init.
    pub fn want_capability(&self, flag: fuser::InitFlags) -> bool {
        self.caching || flag != fuser::InitFlags::FUSE_WRITEBACK_CACHE
    }

    /// Flags for open replies: keep the page cache (the kernel drops it when
    /// it sees a changed mtime or size, FUSE_AUTO_INVAL_DATA). A read-only
    /// open also gets FOPEN_NOFLUSH: its close has nothing of its own to
    /// flush, so without the writeback cache the kernel skips FLUSH (one
    /// round trip per file; with the writeback cache the kernel flushes anyway).
    pub fn open_flags(&self, flags: i32) -> fuser::FopenFlags {
        let mut f = fuser::FopenFlags::empty();
        if self.caching {
            f |= fuser::FopenFlags::FOPEN_KEEP_CACHE;
        }
        if flags & libc::O_ACCMODE == libc::O_RDONLY {
            f |= fuser::FopenFlags::FOPEN_NOFLUSH;
        }
        f
    }

    pub fn keys(&self) -> &Arc<VaultKeys> {
        &self.keys
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only {
            Err(Error::errno(libc::EROFS))
        } else {
            Ok(())
        }
    }

    fn dir_of(&self, ino: u64) -> Result<Arc<Dir>> {
        self.inodes.get(ino)?.dir(&self.keys)
    }

    /// Attributes of a node.
    pub fn attr_of(&self, node: &Node) -> Result<FileAttr> {
        let st = sys::fstat(node.fd.as_fd())?;
        self.attr_with(node, &st)
    }

    /// Attributes of a node whose vault inode has stat `st`.
    fn attr_with(&self, node: &Node, st: &libc::stat) -> Result<FileAttr> {
        let size = match node.kind {
            Kind::File => match node.open_file() {
                Some(f) => lock_read(&f).size(),
                None => self.keys.geometry.plain_size_for_stat(st.st_size as u64),
            },
            Kind::Symlink => match node.symlink_len.get() {
                Some(n) => *n,
                None => {
                    let raw = sys::readlinkat(node.fd.as_fd(), b"")?;
                    let n = self
                        .keys
                        .names
                        .decrypt_target(&raw)
                        .map(|t| t.len() as u64)
                        .unwrap_or(0);
                    let _ = node.symlink_len.set(n);
                    n
                }
            },
            _ => st.st_size as u64,
        };
        Ok(attr::from_stat(node.ino, st, size))
    }

    pub fn getattr(&self, ino: u64) -> Result<FileAttr> {
        let node = self.inodes.get(ino)?;
        self.attr_of(&node)
    }

    /// Resolves `parent/name` to a node, counting one kernel lookup.
    pub fn lookup(&self, parent: u64, name: &OsStr) -> Result<FileAttr> {
        let dir = self.dir_of(parent)?;
        let (fd, st, dn) = dir.open_path(name)?;
        let label = child_label(&dir, dn.entry());
        let node = self.register(&st, label, None, move |kind| {
            Ok(if kind == Kind::Dir {
                sys::openat(fd.as_fd(), b".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?
            } else {
                fd
            })
        })?;
        self.attr_with(&node, &st)
    }

    /// Counts one kernel lookup of the vault inode `st`, building its node
    /// (with the fd from `fd`) if the kernel did not know it yet.
    fn register(
        &self,
        st: &libc::stat,
        label: String,
        dir: Option<Dir>,
        fd: impl FnOnce(Kind) -> Result<std::os::fd::OwnedFd>,
    ) -> Result<Arc<Node>> {
        let ino = self.fuse_ino(st.st_ino);
        let kind = Kind::from_mode(st.st_mode);
        self.inodes
            .lookup(ino, || Ok(Node::new(ino, kind, fd(kind)?, label, dir)))
    }

    pub fn forget(&self, ino: u64, n: u64) {
        if ino == 1 {
            return;
        }
        // A forgotten (often unlinked) file must not stay open through a pin:
        // its space would not be freed.
        if let Some(f) = self.inodes.forget(ino, n).and_then(|node| node.open_file()) {
            lock(&self.pins).retain(|p| !Arc::ptr_eq(p, &f));
        }
    }

    /// Gives a new entry to the caller and the right group (set-gid
    /// directories); returns the entry's stat afterwards.
    fn own(
        &self,
        dir: &Dir,
        node_fd: std::os::fd::BorrowedFd<'_>,
        who: Caller,
    ) -> Result<libc::stat> {
        let pst = sys::fstat(dir.fd())?;
        let gid = if pst.st_mode & libc::S_ISGID != 0 {
            None
        } else {
            Some(who.gid)
        };
        let st = sys::fstat(node_fd)?;
        if st.st_uid == who.uid && gid.is_none_or(|g| g == st.st_gid) {
            return Ok(st);
        }
        sys::fchown_any(node_fd, Some(who.uid), gid)?;
        Ok(sys::fstat(node_fd)?)
    }

    /// Registers an entry just created by name (symlink, special file).
    fn new_entry(&self, dir: &Dir, name: &OsStr, who: Caller) -> Result<FileAttr> {
        let (fd, _, dn) = dir.open_path(name)?;
        let st = self.own(dir, fd.as_fd(), who)?;
        let node = self.register(&st, child_label(dir, dn.entry()), None, |_| Ok(fd))?;
        self.attr_with(&node, &st)
    }

    pub fn mkdir(&self, parent: u64, name: &OsStr, mode: u32, who: Caller) -> Result<FileAttr> {
        self.check_writable()?;
        let dir = self.dir_of(parent)?;
        let sub = dir.mkdir(name, mode)?;
        let st = self.own(&dir, sub.fd(), who)?;
        let fd = sub.fd().try_clone_to_owned()?;
        let label = sub.label().to_string();
        let node = self.register(&st, label, Some(sub), |_| Ok(fd))?;
        self.attr_with(&node, &st)
    }

    pub fn mknod(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
        who: Caller,
    ) -> Result<FileAttr> {
        self.check_writable()?;
        let dir = self.dir_of(parent)?;
        dir.mknod(name, mode, u64::from(rdev))?;
        self.new_entry(&dir, name, who)
    }

    pub fn symlink(
        &self,
        parent: u64,
        name: &OsStr,
        target: &[u8],
        who: Caller,
    ) -> Result<FileAttr> {
        self.check_writable()?;
        let dir = self.dir_of(parent)?;
        dir.symlink(name, target)?;
        self.new_entry(&dir, name, who)
    }

    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let node = self.inodes.get(ino)?;
        if node.kind != Kind::Symlink {
            return Err(Error::errno(libc::EINVAL));
        }
        let raw = sys::readlinkat(node.fd.as_fd(), b"")?;
        self.keys.names.decrypt_target(&raw).ok_or_else(|| {
            log::error!("symlink target failed authentication: {}", node.label);
            Error::Corrupt(node.label.clone())
        })
    }

    pub fn link(&self, ino: u64, parent: u64, name: &OsStr) -> Result<FileAttr> {
        self.check_writable()?;
        let node = self.inodes.get(ino)?;
        if node.kind == Kind::Dir {
            return Err(Error::errno(libc::EPERM));
        }
        let dir = self.dir_of(parent)?;
        dir.link(node.fd.as_fd(), name)?;
        self.lookup(parent, name)
    }

    pub fn unlink(&self, parent: u64, name: &OsStr) -> Result<()> {
        self.check_writable()?;
        self.dir_of(parent)?.unlink(name)
    }

    pub fn rmdir(&self, parent: u64, name: &OsStr) -> Result<()> {
        self.check_writable()?;
        self.dir_of(parent)?.rmdir(name)
    }

    pub fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
    ) -> Result<()> {
        self.check_writable()?;
        let from = self.dir_of(parent)?;
        let to = self.dir_of(newparent)?;
        from.rename(name, &to, newname, flags)
    }

    /// Creates and opens a regular file.
    pub fn create(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        who: Caller,
    ) -> Result<(FileAttr, u64)> {
        self.check_writable()?;
        let dir = self.dir_of(parent)?;
        let (file, created) = dir.create_file(name, mode, flags & libc::O_EXCL != 0)?;
        let st = if created {
            self.own(&dir, file.fd(), who)?
        } else {
            sys::fstat(file.fd())?
        };
        let fd = file.fd().try_clone_to_owned()?;
        let label = file.label().to_string();
        let node = self.register(&st, label, None, |_| Ok(fd))?;
        let shared = match node.open_file() {
            Some(f) => f,
            None => {
                let f = Arc::new(std::sync::RwLock::new(file));
                node.set_open(&f);
                f
            }
        };
        if !created && flags & libc::O_TRUNC != 0 {
            lock_write(&shared).set_len(0)?;
        }
        let fh = self.add_handle(shared);
        Ok((self.attr_of(&node)?, fh))
    }

    fn add_handle(&self, f: Arc<OpenFile>) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.files).insert(fh, f);
        fh
    }

    /// The open state for a file request: the handle's, or (fh 0, no OPEN
    /// was sent) the node's own, opened on first use and kept until FORGET.
    fn file_for(&self, ino: u64, fh: u64) -> Result<Arc<OpenFile>> {
        if fh != 0 {
            return self.handle(fh);
        }
        let node = self.inodes.get(ino)?;
        if let Some(f) = node.open_file() {
            return Ok(f);
        }
        let f = match node.open_or_get(&self.keys, !self.read_only) {
            // Out of fds: close the kept-open files nobody is using, retry once.
            Err(e) if matches!(e.to_errno(), libc::EMFILE | libc::ENFILE) => {
                lock(&self.pins).clear();
                node.open_or_get(&self.keys, !self.read_only)?
            }
            r => r?,
        };
        let mut pins = lock(&self.pins);
        pins.push_back(f.clone());
        if pins.len() > MAX_PINNED {
            pins.pop_front();
        }
        Ok(f)
    }

    fn handle(&self, fh: u64) -> Result<Arc<OpenFile>> {
        lock(&self.files)
            .get(&fh)
            .cloned()
            .ok_or(Error::errno(libc::EBADF))
    }

    pub fn open(&self, ino: u64, flags: i32) -> Result<u64> {
        if self.no_open.load(Ordering::Relaxed) {
            // "No open needed": the kernel will not send OPEN or RELEASE again
            // (it did its permission checks; O_TRUNC comes as a SETATTR).
            return Err(Error::errno(libc::ENOSYS));
        }
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if writable || flags & libc::O_TRUNC != 0 {
            self.check_writable()?;
        }
        let node = self.inodes.get(ino)?;
        let f = node.open_or_get(&self.keys, writable)?;
        if flags & libc::O_TRUNC != 0 {
            lock_write(&f).set_len(0)?;
        }
        Ok(self.add_handle(f))
    }

    pub fn read(&self, ino: u64, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let f = self.file_for(ino, fh)?;
        let g = lock_read(&f);
        g.read_vec(offset, size as usize)
    }

    /// `kill_suidgid`: the kernel asks us (FUSE_HANDLE_KILLPRIV_V2) to drop
    /// set-user-ID and set-group-ID bits, as a write by a non-owner must.
    pub fn write(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        data: &[u8],
        kill_suidgid: bool,
    ) -> Result<u32> {
        self.check_writable()?;
        let f = self.file_for(ino, fh)?;
        if kill_suidgid {
            self.kill_suidgid(&*self.inodes.get(ino)?)?;
        }
        let n = lock_write(&f).write_at(data, offset)?;
        Ok(n as u32)
    }

    /// Clears S_ISUID, and S_ISGID when group-executable, as the kernel would
    /// for a write or truncate by an unprivileged caller.
    fn kill_suidgid(&self, node: &Node) -> Result<()> {
        let st = sys::fstat(node.fd.as_fd())?;
        let mut kill = libc::S_ISUID;
        if st.st_mode & libc::S_IXGRP != 0 {
            kill |= libc::S_ISGID;
        }
        if node.kind == Kind::File && st.st_mode & kill != 0 {
            sys::fchmod_any(node.fd.as_fd(), st.st_mode & 0o7777 & !kill)?;
        }
        Ok(())
    }

    pub fn release(&self, fh: u64) {
        lock(&self.files).remove(&fh);
    }

    pub fn fsync(&self, ino: u64, fh: u64, datasync: bool) -> Result<()> {
        let f = self.file_for(ino, fh)?;
        let g = lock_read(&f);
        g.sync(datasync)
    }

    pub fn fallocate(&self, ino: u64, fh: u64, offset: u64, length: u64, mode: i32) -> Result<()> {
        self.check_writable()?;
        let f = self.file_for(ino, fh)?;
        let mut g = lock_write(&f);
        let end = offset
            .checked_add(length)
            .ok_or(Error::errno(libc::EFBIG))?;
        let keep = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
        match mode & !libc::FALLOC_FL_KEEP_SIZE {
            0 => {
                if !keep && end > g.size() {
                    g.set_len(end)?;
                }
            }
            libc::FALLOC_FL_PUNCH_HOLE if keep => g.zero_range(offset, length)?,
            libc::FALLOC_FL_ZERO_RANGE => {
                g.zero_range(offset, length)?;
                if !keep && end > g.size() {
                    g.set_len(end)?;
                }
            }
            _ => return Err(Error::errno(libc::EOPNOTSUPP)),
        }
        Ok(())
    }

    /// chmod / chown / truncate / utimens.
    #[allow(clippy::too_many_arguments)]
    pub fn setattr(
        &self,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<fuser::TimeOrNow>,
        mtime: Option<fuser::TimeOrNow>,
        fh: Option<u64>,
        who: Caller,
    ) -> Result<FileAttr> {
        self.check_writable()?;
        let node = self.inodes.get(ino)?;
        if let Some(size) = size {
            // Truncation by anyone but root drops set-ID bits (killpriv v2
            // leaves this to us; fuser does not pass FATTR_KILL_SUIDGID).
            if who.uid != 0 && mode.is_none() {
                self.kill_suidgid(&node)?;
            }
            let f = match fh.and_then(|fh| self.handle(fh).ok()) {
                Some(f) => f,
                None => node.open_or_get(&self.keys, true)?,
            };
            lock_write(&f).set_len(size)?;
        }
        if uid.is_some() || gid.is_some() {
            sys::fchown_any(node.fd.as_fd(), uid, gid)?;
        }
        if let Some(mode) = mode {
            if node.kind == Kind::Symlink {
                return Err(Error::errno(libc::EOPNOTSUPP));
            }
            sys::fchmod_any(node.fd.as_fd(), mode & 0o7777)?;
        }
        if atime.is_some() || mtime.is_some() {
            sys::futimens_any(
                node.fd.as_fd(),
                &[attr::timespec(atime), attr::timespec(mtime)],
            )?;
        }
        self.attr_of(&node)
    }

    /// Lists a directory once, at opendir.
    pub fn opendir(&self, ino: u64) -> Result<u64> {
        let node = self.inodes.get(ino)?;
        let dir = node.dir(&self.keys)?;
        let mut entries = vec![
            (ino, FileType::Directory, OsString::from(".")),
            (ino, FileType::Directory, OsString::from("..")),
        ];
        for e in dir.list()? {
            entries.push((self.fuse_ino(e.ino), attr::file_type(e.kind), e.name));
        }
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.dirs).insert(fh, Arc::new(entries));
        Ok(fh)
    }

    pub fn listing(&self, fh: u64) -> Result<Listing> {
        lock(&self.dirs)
            .get(&fh)
            .cloned()
            .ok_or(Error::errno(libc::EBADF))
    }

    pub fn releasedir(&self, fh: u64) {
        lock(&self.dirs).remove(&fh);
    }

    pub fn statfs(&self) -> Result<libc::statvfs> {
        Ok(sys::fstatvfs(self.root_fd.as_fd())?)
    }

    /// Writes everything to stable storage (at unmount).
    pub fn flush_all(&self) {
        for f in self.inodes.open_files() {
            if let Err(e) = lock_read(&f).sync(false) {
                log::error!("flush at unmount failed for {}: {e}", lock_read(&f).label());
            }
        }
        // SAFETY: syncfs on a live fd.
        unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&self.root_fd)) };
    }
}

/// Ciphertext path of an entry of `dir`, for log messages.
fn child_label(dir: &Dir, entry: &str) -> String {
    if dir.label() == "." {
        entry.to_string()
    } else {
        format!("{}/{}", dir.label(), entry)
    }
}

pub fn lock_read(f: &OpenFile) -> std::sync::RwLockReadGuard<'_, SealedFile> {
    f.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn lock_write(f: &OpenFile) -> std::sync::RwLockWriteGuard<'_, SealedFile> {
    f.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

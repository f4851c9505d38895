//! The filesystem operations, each `fn(..) -> Result<T>` over the vault
//! library. The `Filesystem` impl in `mod.rs` only calls these and replies.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use fuser::{FileAttr, FileType};

use super::attr;
use super::fdcache::{self, Cached, FdCache};
use super::inodes::{self, Anchor, Inodes, Node, OpenFile, Place};
use super::requester::Requester;
use crate::error::{Error, Result};
use crate::format::names::DiskName;
use crate::vault::sys::Stat;
use crate::vault::{Dir, Kind, Listed, SealedFile, Vault, VaultKeys, sys};

pub struct SealFs {
    keys: Arc<VaultKeys>,
    root_backing_ino: u64,
    pub inodes: Inodes,
    cache: FdCache,
    pub read_only: bool,
    /// Use the kernel's writeback cache and keep page caches across opens.
    pub caching: bool,
    /// The kernel agreed to FUSE_NO_OPEN_SUPPORT: OPEN answers ENOSYS, after
    /// which the kernel sends no OPEN/RELEASE and file requests carry fh 0.
    pub no_open: std::sync::atomic::AtomicBool,
    /// Likewise FUSE_NO_OPENDIR_SUPPORT: no OPENDIR/RELEASEDIR round trips.
    pub no_opendir: std::sync::atomic::AtomicBool,
    root_fd: Arc<OwnedFd>,
    /// Why the final write to stable storage at unmount failed, if it did
    /// (read by the daemon after the session, to tell `sealfs umount`).
    pub flush_failed: Arc<std::sync::OnceLock<String>>,
}

/// Who is asking (for ownership of new entries).
#[derive(Clone, Copy)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
}

/// A new or looked-up entry: its attributes and FUSE generation.
pub struct Entry {
    pub attr: FileAttr,
    pub generation: u64,
}

/// One item of a directory listing, with the position after it.
pub struct Item<'a> {
    pub ino: u64,
    pub kind: FileType,
    pub name: &'a OsStr,
    pub next: u64,
    /// readdirplus only: the entry (counted as one lookup).
    pub entry: Option<Entry>,
}

/// An fd naming a node's vault inode (`O_PATH` or better), for metadata calls.
enum PathFd {
    Shared(Arc<OwnedFd>),
    Anchor(Arc<Anchor>),
    Own(OwnedFd),
}

impl AsFd for PathFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            PathFd::Shared(f) => f.as_fd(),
            PathFd::Anchor(a) => a.fd.as_fd(),
            PathFd::Own(f) => f.as_fd(),
        }
    }
}

/// Errors that mean "this node is not where we thought": after a rename
/// outside the mount, a replaced entry, a removed directory.
fn is_gone(e: &Error) -> bool {
    matches!(
        e.to_errno(),
        libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::ESTALE
    )
}

fn stale() -> Error {
    Error::errno(libc::ESTALE)
}

fn same_place(a: &Place, b: &Place) -> bool {
    match (a, b) {
        (Place::Root, Place::Root) | (Place::Gone, Place::Gone) => true,
        (Place::Named(p, e), Place::Named(q, f)) => Arc::ptr_eq(p, q) && e == f,
        (Place::Anchored(x), Place::Anchored(y)) => Arc::ptr_eq(x, y),
        _ => false,
    }
}

impl SealFs {
    pub fn new(vault: &Vault, read_only: bool) -> Result<SealFs> {
        let root = vault.root()?;
        let st = sys::fstat(root.fd())?;
        let root_fd = root.shared_fd().clone();
        let (cap, anchors) = fdcache::budget();
        log::info!("descriptor budget: {cap} cached, {anchors} for removed entries in use");
        Ok(SealFs {
            keys: vault.keys().clone(),
            root_backing_ino: st.st_ino,
            inodes: Inodes::new(anchors),
            cache: FdCache::new(cap),
            read_only,
            caching: true,
            no_open: std::sync::atomic::AtomicBool::new(false),
            no_opendir: std::sync::atomic::AtomicBool::new(false),
            root_fd,
            flush_failed: Arc::default(),
        })
    }

    /// Descriptors held in the cache now, and its capacity.
    pub fn cache_usage(&self) -> (usize, usize) {
        (self.cache.len(), self.cache.capacity())
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

    fn node(&self, ino: u64) -> Result<Arc<Node>> {
        self.inodes.get(ino)
    }

    /// Runs `f`, which opens descriptors; out of descriptors, closes the
    /// older half of the cache and tries once more.
    fn with_fds<T>(&self, mut f: impl FnMut() -> std::io::Result<T>) -> Result<T> {
        match f() {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                log::warn!("out of file descriptors; closing cached ones");
                self.cache.shrink();
                Ok(f()?)
            }
            r => Ok(r?),
        }
    }

    /// Runs `f` on the node's current place; if the node turned out not to
    /// be there because a concurrent rename moved it, tries its new place.
    /// A node that is really gone answers ESTALE.
    fn at_place<T>(&self, node: &Node, mut f: impl FnMut(&Place) -> Result<T>) -> Result<T> {
        let mut place = node.place();
        for _ in 0..3 {
            match f(&place) {
                Err(e) if is_gone(&e) => {
                    let now = node.place();
                    if same_place(&now, &place) {
                        return Err(stale());
                    }
                    place = now;
                }
                r => return r,
            }
        }
        Err(stale())
    }

    /// Checks that stat `st` (with birth `stamp`) is the node's vault inode.
    fn verify(&self, node: &Node, st: &Stat, stamp: u64) -> Result<()> {
        let same = self.fuse_ino(st.st_ino) == node.ino
            && Kind::from_mode(st.st_mode) == node.kind
            && (node.stamp == 0 || stamp == 0 || node.stamp == stamp);
        if same { Ok(()) } else { Err(stale()) }
    }

    /// The directory fd of a directory node: cached, or reopened through
    /// its parent and checked (inode, birth time and directory ID).
    fn dir_fd(&self, node: &Arc<Node>) -> Result<Arc<OwnedFd>> {
        if node.kind != Kind::Dir {
            return Err(Error::errno(libc::ENOTDIR));
        }
        if node.ino == 1 {
            return Ok(self.root_fd.clone());
        }
        if let Some(fd) = self.cache.dir(node.ino, node.generation) {
            return Ok(fd);
        }
        let fd = self.at_place(node, |place| {
            let flags = libc::O_RDONLY | libc::O_DIRECTORY;
            let fd = match place {
                Place::Named(parent, entry) => {
                    let pfd = self.dir_fd(parent)?;
                    self.with_fds(|| sys::openat(pfd.as_fd(), entry.as_bytes(), flags, 0))?
                }
                Place::Anchored(a) => {
                    self.with_fds(|| sys::openat(a.fd.as_fd(), b".", flags, 0))?
                }
                Place::Root => return Ok(self.root_fd.clone()),
                Place::Gone => return Err(stale()),
            };
            let (st, stamp) = sys::statx(fd.as_fd(), b"")?;
            self.verify(node, &st, stamp)?;
            Ok(Arc::new(fd))
        })?;
        let id = Dir::read_id(fd.as_fd(), &self.keys, &node.label())?;
        match node.dir_id.get() {
            Some(known) if **known != id => return Err(stale()),
            Some(_) => {}
            None => {
                let _ = node.dir_id.set(Box::new(id));
            }
        }
        self.cache
            .put(node.ino, node.generation, Cached::Dir(fd.clone()));
        Ok(fd)
    }

    /// The directory of a directory node, ready for operations by name.
    fn dir(&self, node: &Arc<Node>) -> Result<Dir> {
        let fd = self.dir_fd(node)?;
        let (id, is_root) = if node.ino == 1 {
            (self.keys.root_id, true)
        } else {
            match node.dir_id.get() {
                Some(id) => (**id, false),
                None => (Dir::read_id(fd.as_fd(), &self.keys, &node.label())?, false),
            }
        };
        Ok(Dir::view(fd, id, self.keys.clone(), is_root, node.clone()))
    }

    fn dir_of(&self, ino: u64) -> Result<(Arc<Node>, Dir)> {
        let node = self.node(ino)?;
        let dir = self.dir(&node)?;
        Ok((node, dir))
    }

    /// An fd naming the node's vault inode, checked to be that inode.
    fn path_fd(&self, node: &Arc<Node>) -> Result<PathFd> {
        if node.kind == Kind::Dir {
            return Ok(PathFd::Shared(self.dir_fd(node)?));
        }
        self.at_place(node, |place| match place {
            Place::Named(parent, entry) => {
                let pfd = self.dir_fd(parent)?;
                let fd =
                    self.with_fds(|| sys::openat(pfd.as_fd(), entry.as_bytes(), libc::O_PATH, 0))?;
                let (st, stamp) = sys::statx(fd.as_fd(), b"")?;
                self.verify(node, &st, stamp)?;
                Ok(PathFd::Own(fd))
            }
            Place::Anchored(a) => Ok(PathFd::Anchor(a.clone())),
            Place::Root => Ok(PathFd::Shared(self.root_fd.clone())),
            Place::Gone => Err(stale()),
        })
    }

    /// The stat of a node's vault inode (and its birth time).
    fn stat_node(&self, node: &Arc<Node>) -> Result<Stat> {
        if node.ino == 1 {
            return Ok(sys::statx(self.root_fd.as_fd(), b"")?.0);
        }
        if let Some(f) = self.cache.peek_file(node.ino, node.generation) {
            let g = lock_read(&f);
            return Ok(sys::statx(g.fd(), b"")?.0);
        }
        if let Some(fd) = self.cache.dir(node.ino, node.generation) {
            return Ok(sys::statx(fd.as_fd(), b"")?.0);
        }
        self.at_place(node, |place| match place {
            Place::Named(parent, entry) => {
                let pfd = self.dir_fd(parent)?;
                let (st, stamp) = sys::statx(pfd.as_fd(), entry.as_bytes())?;
                self.verify(node, &st, stamp)?;
                Ok(st)
            }
            Place::Anchored(a) => Ok(sys::statx(a.fd.as_fd(), b"")?.0),
            Place::Root => Ok(sys::statx(self.root_fd.as_fd(), b"")?.0),
            Place::Gone => Err(stale()),
        })
    }

    /// The shared open state of a file node: cached, or opened (read-write
    /// where allowed) through its place and checked to be its inode.
    fn open_file(&self, node: &Arc<Node>) -> Result<Arc<OpenFile>> {
        if node.kind != Kind::File {
            return Err(Error::errno(if node.kind == Kind::Dir {
                libc::EISDIR
            } else {
                libc::EINVAL
            }));
        }
        if let Some(f) = self.cache.file(node.ino, node.generation) {
            return Ok(f);
        }
        let _one = inodes::open_lock(node.ino);
        if let Some(f) = self.cache.file(node.ino, node.generation) {
            return Ok(f);
        }
        let fd = self.open_backing(node)?;
        let f = SealedFile::open(fd, &self.keys, node.label())?;
        Ok(self.cache_open(node, f))
    }

    /// Makes `f` the shared open state of `node` (the caller holds the
    /// node's open lock and found none cached).
    fn cache_open(&self, node: &Node, f: SealedFile) -> Arc<OpenFile> {
        let f = Arc::new(std::sync::RwLock::new(Box::new(f)));
        self.cache
            .put(node.ino, node.generation, Cached::File(f.clone()));
        f
    }

    /// The open state of a file node that is being truncated to zero: as
    /// `open_file`, but a file that fails authentication is emptied with a
    /// fresh header instead of failing (see `SealedFile::recreate_empty`).
    fn open_file_to_empty(&self, node: &Arc<Node>) -> Result<Arc<OpenFile>> {
        match self.open_file(node) {
            Err(e) if SealedFile::damage_to_empty(&e) => {}
            r => return r,
        }
        let _one = inodes::open_lock(node.ino);
        if let Some(f) = self.cache.file(node.ino, node.generation) {
            return Ok(f);
        }
        // Once more under the lock: a sync may have repaired it meanwhile.
        let fd = self.open_backing(node)?;
        let f = match SealedFile::open(fd.try_clone()?, &self.keys, node.label()) {
            Ok(f) => f,
            Err(e) if SealedFile::damage_to_empty(&e) => {
                let f = SealedFile::recreate_empty(fd, &self.keys, node.label())?;
                log::warn!(
                    "{}: emptied (its contents failed authentication)",
                    f.label()
                );
                f
            }
            Err(e) => return Err(e),
        };
        Ok(self.cache_open(node, f))
    }

    /// Opens a file node's vault inode through its place (read-write where
    /// allowed) and checks that it is that inode.
    fn open_backing(&self, node: &Arc<Node>) -> Result<OwnedFd> {
        self.at_place(node, |place| {
            let fd = match place {
                Place::Named(parent, entry) => {
                    let pfd = self.dir_fd(parent)?;
                    self.open_rw(|flags| {
                        sys::openat(pfd.as_fd(), entry.as_bytes(), flags | libc::O_NONBLOCK, 0)
                    })?
                }
                Place::Anchored(a) => self.open_rw(|flags| sys::reopen(a.fd.as_fd(), flags))?,
                Place::Root | Place::Gone => return Err(stale()),
            };
            let (st, stamp) = sys::statx(fd.as_fd(), b"")?;
            self.verify(node, &st, stamp)?;
            Ok(fd)
        })
    }

    /// Opens read-write, or read-only where the daemon may not write (a
    /// non-root daemon and a 0444 file; writes then fail with EBADF).
    fn open_rw(&self, open: impl Fn(i32) -> std::io::Result<OwnedFd>) -> Result<OwnedFd> {
        let flags = if self.read_only {
            libc::O_RDONLY
        } else {
            libc::O_RDWR
        };
        match self.with_fds(|| open(flags)) {
            Err(e)
                if flags == libc::O_RDWR
                    && matches!(e.to_errno(), libc::EACCES | libc::EROFS | libc::EPERM) =>
            {
                self.with_fds(|| open(libc::O_RDONLY))
            }
            r => r,
        }
    }

    /// Attributes of a node.
    pub fn attr_of(&self, node: &Arc<Node>) -> Result<FileAttr> {
        let st = self.stat_node(node)?;
        self.attr_with(node, &st, None)
    }

    /// Attributes of a node whose vault inode has stat `st`; `at` is the
    /// directory and entry it was just found under, if known.
    fn attr_with(&self, node: &Arc<Node>, st: &Stat, at: Option<(&Dir, &str)>) -> Result<FileAttr> {
        let size = match node.kind {
            Kind::File => match self.cache.peek_file(node.ino, node.generation) {
                Some(f) => lock_read(&f).size(),
                None => SealedFile::shown_size(
                    &self.keys,
                    st.st_size as u64,
                    || {
                        let flags = libc::O_RDONLY | libc::O_NONBLOCK;
                        Ok(match at {
                            Some((dir, entry)) => {
                                sys::openat(dir.fd(), entry.as_bytes(), flags, 0)?
                            }
                            None => sys::reopen(self.path_fd(node)?.as_fd(), flags)?,
                        })
                    },
                    || node.label(),
                ),
            },
            Kind::Symlink => match node.symlink_len.load(Ordering::Relaxed) {
                n if n != u64::MAX => n,
                _ => {
                    let raw = match at {
                        Some((dir, entry)) => sys::readlinkat(dir.fd(), entry.as_bytes())?,
                        None => sys::readlinkat(self.path_fd(node)?.as_fd(), b"")?,
                    };
                    let n = self
                        .keys
                        .read_target(&raw)
                        .map(|t| t.len() as u64)
                        .unwrap_or(0);
                    node.symlink_len.store(n, Ordering::Relaxed);
                    n
                }
            },
            _ => st.st_size as u64,
        };
        Ok(attr::from_stat(node.ino, st, size))
    }

    pub fn getattr(&self, ino: u64) -> Result<FileAttr> {
        let node = self.node(ino)?;
        self.attr_of(&node)
    }

    /// Resolves `parent/name` to a node, counting one kernel lookup.
    pub fn lookup(&self, parent: u64, name: &OsStr) -> Result<Entry> {
        let (pnode, dir) = self.dir_of(parent)?;
        let dn = dir.disk_name(name)?;
        match self.enter(&pnode, &dir, dn.entry()) {
            // Not its encrypted name: perhaps a conflict copy's shown name.
            Err(e) if e.to_errno() == libc::ENOENT => match dir.indirect(name)? {
                Some(raw) => self.enter(&pnode, &dir, &raw),
                None => Err(e),
            },
            r => r,
        }
    }

    /// Counts one kernel lookup of the vault inode `st` (birth `stamp`),
    /// found as `entry` in the directory of `pnode`.
    fn node_at(&self, st: &Stat, stamp: u64, pnode: &Arc<Node>, entry: &str) -> Arc<Node> {
        self.inodes.lookup(
            self.fuse_ino(st.st_ino),
            stamp,
            Kind::from_mode(st.st_mode),
            pnode,
            entry,
        )
    }

    /// The node the kernel knows for the vault inode `st` (birth `stamp`).
    fn known(&self, st: &Stat, stamp: u64) -> Option<Arc<Node>> {
        self.inodes.find(self.fuse_ino(st.st_ino), stamp)
    }

    /// Counts one kernel lookup of the vault entry `entry` of `dir` (the
    /// directory of `pnode`), building its node if the kernel did not know it.
    fn enter(&self, pnode: &Arc<Node>, dir: &Dir, entry: &str) -> Result<Entry> {
        let (st, stamp) = sys::statx(dir.fd(), entry.as_bytes())?;
        let node = self.node_at(&st, stamp, pnode, entry);
        match self.attr_with(&node, &st, Some((dir, entry))) {
            Ok(attr) => Ok(Entry {
                attr,
                generation: node.generation,
            }),
            Err(e) => {
                self.forget(node.ino, 1);
                Err(e)
            }
        }
    }

    pub fn forget(&self, ino: u64, n: u64) {
        // A forgotten (often unlinked) file must not stay open in the cache:
        // its space would not be freed.
        for node in self.inodes.forget(ino, n) {
            self.cache.remove(node.ino, node.generation);
        }
    }

    /// Gives a new entry to the caller and the right group (set-gid
    /// directories); returns the entry's stat afterwards.
    fn own(&self, dir: &Dir, node_fd: BorrowedFd<'_>, who: Caller) -> Result<(Stat, u64)> {
        let pst = sys::fstat(dir.fd())?;
        let gid = if pst.st_mode & libc::S_ISGID != 0 {
            None
        } else {
            Some(who.gid)
        };
        let (st, stamp) = sys::statx(node_fd, b"")?;
        if st.st_uid == who.uid && gid.is_none_or(|g| g == st.st_gid) {
            return Ok((st, stamp));
        }
        sys::fchown_any(node_fd, Some(who.uid), gid)?;
        Ok(sys::statx(node_fd, b"")?)
    }

    /// Registers an entry of `dir` just made under `entry`, whose vault
    /// inode `fd` names (one kernel lookup).
    fn register(
        &self,
        pnode: &Arc<Node>,
        dir: &Dir,
        entry: &str,
        fd: BorrowedFd<'_>,
        who: Caller,
    ) -> Result<(Arc<Node>, Stat)> {
        let (st, stamp) = self.own(dir, fd, who)?;
        Ok((self.node_at(&st, stamp, pnode, entry), st))
    }

    /// Registers an entry just created by name (symlink, special file).
    fn new_entry(&self, pnode: &Arc<Node>, dir: &Dir, name: &OsStr, who: Caller) -> Result<Entry> {
        let dn = dir.disk_name(name)?;
        let fd = self.with_fds(|| sys::openat(dir.fd(), dn.entry().as_bytes(), libc::O_PATH, 0))?;
        let (node, st) = self.register(pnode, dir, dn.entry(), fd.as_fd(), who)?;
        Ok(Entry {
            attr: self.attr_with(&node, &st, Some((dir, dn.entry())))?,
            generation: node.generation,
        })
    }

    pub fn mkdir(&self, parent: u64, name: &OsStr, mode: u32, who: Caller) -> Result<Entry> {
        self.check_writable()?;
        let (pnode, dir) = self.dir_of(parent)?;
        let sub = dir.mkdir(name, mode)?;
        let dn = dir.disk_name(name)?;
        let (node, st) = self.register(&pnode, &dir, dn.entry(), sub.fd(), who)?;
        let _ = node.dir_id.set(Box::new(*sub.id()));
        self.cache.put(
            node.ino,
            node.generation,
            Cached::Dir(sub.shared_fd().clone()),
        );
        Ok(Entry {
            attr: self.attr_with(&node, &st, None)?,
            generation: node.generation,
        })
    }

    pub fn mknod(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
        who: Caller,
    ) -> Result<Entry> {
        self.check_writable()?;
        let (pnode, dir) = self.dir_of(parent)?;
        dir.mknod(name, mode, u64::from(rdev))?;
        self.new_entry(&pnode, &dir, name, who)
    }

    pub fn symlink(&self, parent: u64, name: &OsStr, target: &[u8], who: Caller) -> Result<Entry> {
        self.check_writable()?;
        let (pnode, dir) = self.dir_of(parent)?;
        dir.symlink(name, target)?;
        self.new_entry(&pnode, &dir, name, who)
    }

    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let node = self.node(ino)?;
        if node.kind != Kind::Symlink {
            return Err(Error::errno(libc::EINVAL));
        }
        let raw = sys::readlinkat(self.path_fd(&node)?.as_fd(), b"")?;
        self.keys.read_target(&raw).ok_or_else(|| {
            let l = node.label();
            log::error!("symlink target failed authentication: {l}");
            Error::Corrupt(l)
        })
    }

    pub fn link(&self, ino: u64, parent: u64, name: &OsStr) -> Result<Entry> {
        self.check_writable()?;
        let node = self.node(ino)?;
        if node.kind == Kind::Dir {
            return Err(Error::errno(libc::EPERM));
        }
        let (pnode, dir) = self.dir_of(parent)?;
        dir.link(self.path_fd(&node)?.as_fd(), name)?;
        let dn = dir.disk_name(name)?;
        self.enter(&pnode, &dir, dn.entry())
    }

    /// The node the kernel knows under `dir/entry`, if any, with what keeps
    /// it reachable once that name is gone.
    fn losing_name(
        &self,
        pnode: &Arc<Node>,
        dir: &Dir,
        entry: &str,
    ) -> Option<(Arc<Node>, Option<Arc<Anchor>>)> {
        let (st, stamp) = sys::statx(dir.fd(), entry.as_bytes()).ok()?;
        let node = self.known(&st, stamp)?;
        if !node.is_at(pnode, entry) {
            return None;
        }
        let anchor = self
            .inodes
            .anchor(|| self.with_fds(|| sys::openat(dir.fd(), entry.as_bytes(), libc::O_PATH, 0)));
        Some((node, anchor))
    }

    pub fn unlink(&self, parent: u64, name: &OsStr) -> Result<()> {
        self.remove(parent, name, Dir::unlink_found)
    }

    pub fn rmdir(&self, parent: u64, name: &OsStr) -> Result<()> {
        self.remove(parent, name, Dir::rmdir_found)
    }

    /// Removes `name` from `parent` with `remove`; a node the kernel still
    /// knows under that name keeps an anchor (within budget).
    fn remove(
        &self,
        parent: u64,
        name: &OsStr,
        remove: impl FnOnce(&Dir, &DiskName) -> Result<()>,
    ) -> Result<()> {
        self.check_writable()?;
        let (pnode, dir) = self.dir_of(parent)?;
        let dn = dir.find(name)?;
        let losing = self.losing_name(&pnode, &dir, dn.entry());
        remove(&dir, &dn)?;
        if let Some((node, anchor)) = losing {
            self.inodes.detach(&node, anchor);
        }
        Ok(())
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
        let (pnode, from) = self.dir_of(parent)?;
        let (qnode, to) = self.dir_of(newparent)?;
        let a = from.find(name)?;
        let b = to.find(newname)?;
        let exchange = flags & libc::RENAME_EXCHANGE != 0;
        let src = sys::statx(from.fd(), a.entry().as_bytes())
            .ok()
            .and_then(|(st, stamp)| self.known(&st, stamp))
            .filter(|n| n.is_at(&pnode, a.entry()));
        let dst = if exchange {
            sys::statx(to.fd(), b.entry().as_bytes())
                .ok()
                .and_then(|(st, stamp)| self.known(&st, stamp))
                .filter(|n| n.is_at(&qnode, b.entry()))
                .map(|n| (n, None))
        } else if flags & libc::RENAME_NOREPLACE == 0 {
            self.losing_name(&qnode, &to, b.entry())
        } else {
            None
        };
        let landed = from.rename(name, &to, newname, flags)?;
        if let Some(src) = &src {
            self.inodes.moved(src, &qnode, landed.entry());
        }
        match dst {
            Some((dst, _)) if exchange => self.inodes.moved(&dst, &pnode, a.entry()),
            // Renaming a hard link over another name of the same inode
            // changes nothing.
            Some((dst, anchor)) if src.as_ref().is_none_or(|s| !Arc::ptr_eq(s, &dst)) => {
                self.inodes.detach(&dst, anchor);
            }
            _ => {}
        }
        Ok(())
    }

    /// Creates and opens a regular file.
    pub fn create(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
        who: Caller,
    ) -> Result<(Entry, u64)> {
        self.check_writable()?;
        let (pnode, dir) = self.dir_of(parent)?;
        let (file, created, dn) = dir.create_file_found(name, mode, flags & libc::O_EXCL != 0)?;
        let (node, _) = if created {
            self.register(&pnode, &dir, dn.entry(), file.fd(), who)?
        } else {
            let (st, stamp) = sys::statx(file.fd(), b"")?;
            (self.node_at(&st, stamp, &pnode, dn.entry()), st)
        };
        let shared = {
            let _one = inodes::open_lock(node.ino);
            match self.cache.file(node.ino, node.generation) {
                Some(f) => f,
                None => self.cache_open(&node, file),
            }
        };
        if !created && flags & libc::O_TRUNC != 0 {
            lock_write(&shared).set_len(0)?;
        }
        let entry = Entry {
            attr: self.attr_of(&node)?,
            generation: node.generation,
        };
        Ok((entry, 0))
    }

    /// The open state for a file request. Handles carry nothing: every
    /// request goes through the node and the bounded cache.
    fn file_for(&self, ino: u64) -> Result<Arc<OpenFile>> {
        let node = self.node(ino)?;
        self.open_file(&node)
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
        let node = self.node(ino)?;
        if flags & libc::O_TRUNC != 0 {
            let f = self.open_file_to_empty(&node)?;
            lock_write(&f).set_len(0)?;
        } else {
            self.open_file(&node)?;
        }
        Ok(0)
    }

    pub fn read(&self, ino: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let f = self.file_for(ino)?;
        let g = lock_read(&f);
        g.read_vec(offset, size as usize)
    }

    /// `kill_suidgid`: the kernel asks us (FUSE_HANDLE_KILLPRIV_V2) to drop
    /// set-user-ID and set-group-ID bits, as a write by a non-owner must.
    pub fn write(
        &self,
        ino: u64,
        offset: u64,
        data: &[u8],
        kill_suidgid: bool,
        who: Caller,
    ) -> Result<u32> {
        self.check_writable()?;
        let node = self.node(ino)?;
        let f = self.open_file(&node)?;
        if kill_suidgid {
            self.kill_suidgid(&node)?;
        }
        let n = lock_write(&f).write_at_guarded(data, offset, &Requester::new(who.pid))?;
        Ok(n as u32)
    }

    /// Clears S_ISUID, and S_ISGID when group-executable, as the kernel would
    /// for a write or truncate by an unprivileged caller.
    fn kill_suidgid(&self, node: &Arc<Node>) -> Result<()> {
        if node.kind != Kind::File {
            return Ok(());
        }
        let st = self.stat_node(node)?;
        let mut kill = libc::S_ISUID;
        if st.st_mode & libc::S_IXGRP != 0 {
            kill |= libc::S_ISGID;
        }
        if st.st_mode & kill != 0 {
            sys::fchmod_any(self.path_fd(node)?.as_fd(), st.st_mode & 0o7777 & !kill)?;
        }
        Ok(())
    }

    pub fn fsync(&self, ino: u64, datasync: bool) -> Result<()> {
        let f = self.file_for(ino)?;
        let g = lock_read(&f);
        g.sync(datasync)
    }

    pub fn fallocate(
        &self,
        ino: u64,
        offset: u64,
        length: u64,
        mode: i32,
        who: Caller,
    ) -> Result<()> {
        self.check_writable()?;
        let node = self.node(ino)?;
        let f = self.open_file(&node)?;
        // Like a write: an unprivileged caller drops set-ID bits.
        if who.uid != 0 {
            self.kill_suidgid(&node)?;
        }
        let guard = Requester::new(who.pid);
        let mut g = lock_write(&f);
        let end = offset
            .checked_add(length)
            .ok_or(Error::errno(libc::EFBIG))?;
        let keep = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
        match mode & !libc::FALLOC_FL_KEEP_SIZE {
            0 => {
                if !keep && end > g.size() {
                    g.set_len_guarded(end, &guard)?;
                }
            }
            libc::FALLOC_FL_PUNCH_HOLE if keep => g.zero_range(offset, length)?,
            libc::FALLOC_FL_ZERO_RANGE => {
                g.zero_range(offset, length)?;
                if !keep && end > g.size() {
                    g.set_len_guarded(end, &guard)?;
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
        who: Caller,
    ) -> Result<FileAttr> {
        self.check_writable()?;
        let node = self.node(ino)?;
        if let Some(size) = size {
            // Truncation by anyone but root drops set-ID bits (killpriv v2
            // leaves this to us; fuser does not pass FATTR_KILL_SUIDGID).
            if who.uid != 0 && mode.is_none() {
                self.kill_suidgid(&node)?;
            }
            let f = if size == 0 {
                self.open_file_to_empty(&node)?
            } else {
                self.open_file(&node)?
            };
            lock_write(&f).set_len_guarded(size, &Requester::new(who.pid))?;
        }
        if uid.is_some() || gid.is_some() || mode.is_some() || atime.is_some() || mtime.is_some() {
            let pf = self.path_fd(&node)?;
            if uid.is_some() || gid.is_some() {
                sys::fchown_any(pf.as_fd(), uid, gid)?;
            }
            if let Some(mode) = mode {
                if node.kind == Kind::Symlink {
                    return Err(Error::errno(libc::EOPNOTSUPP));
                }
                sys::fchmod_any(pf.as_fd(), mode & 0o7777)?;
            }
            if atime.is_some() || mtime.is_some() {
                sys::futimens_any(pf.as_fd(), &[attr::timespec(atime), attr::timespec(mtime)])?;
            }
        }
        self.attr_of(&node)
    }

    /// Directories need no open state: positions are the vault directory's
    /// own, so a listing streams and a rewind sees new entries.
    pub fn opendir(&self, ino: u64) -> Result<u64> {
        if self.no_opendir.load(Ordering::Relaxed) {
            return Err(Error::errno(libc::ENOSYS));
        }
        let node = self.node(ino)?;
        self.dir_fd(&node)?;
        Ok(0)
    }

    /// Lists directory `ino` from position `offset`, handing each item to
    /// `add` until it returns true (full). With `plus`, each entry is also
    /// looked up (readdirplus); an entry `add` refuses is forgotten again.
    /// Returns how many items were added.
    pub fn readdir(
        &self,
        ino: u64,
        offset: u64,
        plus: bool,
        mut add: impl FnMut(Item<'_>) -> bool,
    ) -> Result<usize> {
        let (node, dir) = self.dir_of(ino)?;
        let parent_ino = match node.place() {
            Place::Named(p, _) => p.ino,
            _ => 1,
        };
        let mut added = 0;
        dir.list_from(offset, |item, next| {
            let (ino, kind, name, entry) = match &item {
                Listed::Dot => (node.ino, FileType::Directory, OsStr::new("."), None),
                Listed::DotDot => (parent_ino, FileType::Directory, OsStr::new(".."), None),
                Listed::Entry(e) => {
                    let entry = if plus {
                        match self.enter(&node, &dir, &e.disk_name.to_string_lossy()) {
                            Ok(en) => Some(en),
                            Err(_) => return true,
                        }
                    } else {
                        None
                    };
                    let ino = entry
                        .as_ref()
                        .map_or(self.fuse_ino(e.ino), |en| en.attr.ino.0);
                    (ino, attr::file_type(e.kind), e.name.as_os_str(), entry)
                }
            };
            let counted = entry.as_ref().map(|e| e.attr.ino.0);
            let full = add(Item {
                ino,
                kind,
                name,
                next,
                entry,
            });
            if full {
                if let Some(i) = counted {
                    self.forget(i, 1);
                }
                return false;
            }
            added += 1;
            true
        })?;
        Ok(added)
    }

    pub fn statfs(&self) -> Result<crate::vault::sys::StatVfs> {
        Ok(sys::fstatvfs(self.root_fd.as_fd())?)
    }

    /// An fd for extended-attribute calls on a node.
    pub(super) fn xattr_fd(&self, ino: u64) -> Result<(Arc<Node>, impl AsFd)> {
        let node = self.node(ino)?;
        let pf = self.path_fd(&node)?;
        Ok((node, pf))
    }

    /// Writes everything to stable storage (at unmount): one syncfs of the
    /// vault's filesystem covers every file (a per-file fsync would cost
    /// seconds with many files open), then the cache closes its fds.
    /// A failure is logged and kept in `flush_failed`.
    pub fn flush_all(&self) {
        super::requester::ENDING.store(true, Ordering::Relaxed);
        let synced = if test_hook_fail_sync() {
            Err(rustix::io::Errno::IO)
        } else {
            rustix::fs::syncfs(&*self.root_fd)
        };
        if let Err(e) = synced {
            log::error!("flush at unmount failed: {e}");
            let _ = self.flush_failed.set(e.to_string());
        }
        self.cache.shrink_all();
    }
}

/// Test hook (debug builds only): `SEALFS_TEST_FAIL_SYNC=1` makes the final
/// sync at unmount fail, as a disk error would.
fn test_hook_fail_sync() -> bool {
    cfg!(debug_assertions) && std::env::var_os("SEALFS_TEST_FAIL_SYNC").is_some()
}

/// A file's lock for reading; a lock a panicking request left poisoned is
/// first taken for writing, which recovers the file (see `lock_write`).
pub fn lock_read(f: &OpenFile) -> std::sync::RwLockReadGuard<'_, Box<SealedFile>> {
    if f.is_poisoned() {
        drop(lock_write(f));
    }
    f.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A file's lock for writing. If a request panicked while holding it, the
/// size change it was making is finished or undone before anyone goes on.
pub fn lock_write(f: &OpenFile) -> std::sync::RwLockWriteGuard<'_, Box<SealedFile>> {
    match f.write() {
        Ok(g) => g,
        Err(poisoned) => {
            let mut g = poisoned.into_inner();
            g.recover_after_panic();
            f.clear_poison();
            g
        }
    }
}

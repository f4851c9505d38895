//! The inode table: one node per inode the kernel knows, each holding an fd
//! to its vault inode (O_PATH for non-directories), so names and renames
//! never need re-resolving and hard links resolve to one node. Lookup counts
//! are honoured by `forget`, so the table stays as small as the kernel's cache.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

use crate::error::{Error, Result};
use crate::vault::{Dir, Kind, SealedFile, VaultKeys};

use super::lock;

/// A regular file open through one or more handles; its lock is the per-file lock.
pub type OpenFile = RwLock<SealedFile>;

pub struct Node {
    pub ino: u64,
    pub kind: Kind,
    pub fd: OwnedFd,
    /// Ciphertext path at lookup time, for log messages.
    pub label: String,
    lookups: AtomicU64,
    dir: Mutex<Option<Arc<Dir>>>,
    open: Mutex<Weak<OpenFile>>,
    pub symlink_len: OnceLock<u64>,
}

impl Node {
    pub fn new(ino: u64, kind: Kind, fd: OwnedFd, label: String, dir: Option<Dir>) -> Node {
        Node {
            ino,
            kind,
            fd,
            label,
            lookups: AtomicU64::new(0),
            dir: Mutex::new(dir.map(Arc::new)),
            open: Mutex::new(Weak::new()),
            symlink_len: OnceLock::new(),
        }
    }

    /// The directory object (loaded on first use, retried after a failure,
    /// e.g. a directory-ID file that has not synced yet).
    pub fn dir(&self, keys: &Arc<VaultKeys>) -> Result<Arc<Dir>> {
        if self.kind != Kind::Dir {
            return Err(Error::errno(libc::ENOTDIR));
        }
        let mut d = lock(&self.dir);
        if let Some(d) = &*d {
            return Ok(d.clone());
        }
        // A directory node's fd is already an O_RDONLY directory fd: share it.
        let fd = self.fd.try_clone()?;
        let dir = Arc::new(Dir::from_fd(fd, keys.clone(), self.label.clone())?);
        *d = Some(dir.clone());
        Ok(dir)
    }

    /// The shared open state of this file, if any handle has it open.
    pub fn open_file(&self) -> Option<Arc<OpenFile>> {
        lock(&self.open).upgrade()
    }

    /// The shared open state, opening the vault file if no handle has it.
    pub fn open_or_get(&self, keys: &VaultKeys, writable: bool) -> Result<Arc<OpenFile>> {
        if self.kind != Kind::File {
            return Err(Error::errno(if self.kind == Kind::Dir {
                libc::EISDIR
            } else {
                libc::EINVAL
            }));
        }
        let mut slot = lock(&self.open);
        if let Some(f) = slot.upgrade() {
            return Ok(f);
        }
        let fd = match crate::vault::sys::reopen(self.fd.as_fd(), libc::O_RDWR) {
            Ok(fd) => fd,
            Err(e)
                if !writable
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::EACCES | libc::EROFS | libc::EPERM)
                    ) =>
            {
                crate::vault::sys::reopen(self.fd.as_fd(), libc::O_RDONLY)?
            }
            Err(e) => return Err(e.into()),
        };
        let f = Arc::new(RwLock::new(SealedFile::open(fd, keys, self.label.clone())?));
        *slot = Arc::downgrade(&f);
        Ok(f)
    }

    /// Installs a freshly created file as this node's open state.
    pub fn set_open(&self, f: &Arc<OpenFile>) {
        *lock(&self.open) = Arc::downgrade(f);
    }
}

#[derive(Default)]
pub struct Inodes {
    map: RwLock<HashMap<u64, Arc<Node>>>,
}

impl Inodes {
    pub fn get(&self, ino: u64) -> Result<Arc<Node>> {
        let m = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.get(&ino).cloned().ok_or(Error::errno(libc::ESTALE))
    }

    /// Inserts the root (never forgotten).
    pub fn insert_root(&self, node: Node) {
        node.lookups.store(1 << 62, Ordering::Relaxed);
        let mut m = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.insert(node.ino, Arc::new(node));
    }

    /// Records one kernel lookup of `ino`; `make` builds the node if it is new.
    pub fn lookup(&self, ino: u64, make: impl FnOnce() -> Result<Node>) -> Result<Arc<Node>> {
        {
            let m = self
                .map
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(n) = m.get(&ino) {
                n.lookups.fetch_add(1, Ordering::Relaxed);
                return Ok(n.clone());
            }
        }
        let node = make()?;
        let mut m = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(ino).or_insert_with(|| Arc::new(node)).clone();
        n.lookups.fetch_add(1, Ordering::Relaxed);
        Ok(n)
    }

    /// The kernel dropped `n` references; the node goes when none remain.
    /// Returns the node if this was its last reference.
    pub fn forget(&self, ino: u64, n: u64) -> Option<Arc<Node>> {
        let mut m = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let node = m.get(&ino)?;
        let prev = node.lookups.fetch_sub(
            n.min(node.lookups.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        if prev <= n { m.remove(&ino) } else { None }
    }

    pub fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every node with an open file (for the final flush).
    pub fn open_files(&self) -> Vec<Arc<OpenFile>> {
        let m = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.values().filter_map(|n| n.open_file()).collect()
    }
}

//! The inode table. A node holds no descriptor: it knows where it lives —
//! its parent directory node and its encrypted entry name — and descriptors
//! are opened on demand through the bounded cache in `fdcache`. Only a node
//! that has lost its last name while the kernel still knows it (open, then
//! unlinked or renamed over) keeps an fd, its *anchor*; anchors are counted
//! and bounded, and past the bound such a node answers ESTALE.
//!
//! A node is recognised by its vault inode number together with the inode's
//! birth time (`stamp`): inode numbers are reused, (number, birth time) is
//! not. When a lookup finds a different inode under a known number, the old
//! node goes stale and the new one gets the next FUSE generation, so the
//! kernel drops its old inode instead of mixing the two.
//!
//! Bookkeeping follows the kernel's: `lookups` counts the kernel's
//! references (FORGET takes them back), `children` the nodes whose location
//! names this directory. A node leaves the table when both are zero, so a
//! child can always walk up to the root. Every change of the table or of a
//! location happens under the table's write lock.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use rustc_hash::FxHashMap as HashMap;

use crate::error::{Error, Result};
use crate::format::dirid::DirId;
use crate::vault::{Kind, Labelled, SealedFile};

use super::lock;

/// A regular file's open state; its lock is the per-file lock. Boxed, so a
/// reference that outlives it keeps little memory.
pub type OpenFile = RwLock<Box<SealedFile>>;

/// Serialises opens of one file (striped by inode number), so a file never
/// has two open states.
pub fn open_lock(ino: u64) -> MutexGuard<'static, ()> {
    static OPENING: [Mutex<()>; 64] = [const { Mutex::new(()) }; 64];
    lock(&OPENING[(ino % 64) as usize])
}

/// An fd that keeps a nameless node reachable; counted against the budget.
pub struct Anchor {
    pub fd: OwnedFd,
    count: Arc<AtomicUsize>,
}

impl Drop for Anchor {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where a node lives now.
pub enum Place {
    /// The vault root.
    Root,
    /// `entry` in directory `parent`.
    Named(Arc<Node>, Box<str>),
    /// No name left; reachable through its anchor.
    Anchored(Arc<Anchor>),
    /// No name and no anchor (or replaced by another inode): ESTALE.
    Gone,
}

struct State {
    parent: Option<Arc<Node>>,
    entry: Box<str>,
    anchor: Option<Arc<Anchor>>,
}

pub struct Node {
    pub ino: u64,
    pub kind: Kind,
    pub generation: u64,
    /// Birth time of the vault inode (0: unknown); see the module docs.
    pub stamp: u64,
    lookups: AtomicU64,
    children: AtomicU32,
    state: Mutex<State>,
    /// Directory ID (directories) once read and checked.
    pub dir_id: OnceLock<Box<DirId>>,
    /// Plaintext target length (symlinks) once decrypted; u64::MAX: unknown.
    pub symlink_len: AtomicU64,
}

impl Node {
    fn new(ino: u64, kind: Kind, stamp: u64, generation: u64) -> Node {
        Node {
            ino,
            kind,
            generation,
            stamp,
            lookups: AtomicU64::new(0),
            children: AtomicU32::new(0),
            state: Mutex::new(State {
                parent: None,
                entry: Box::from(""),
                anchor: None,
            }),
            dir_id: OnceLock::new(),
            symlink_len: AtomicU64::new(u64::MAX),
        }
    }

    /// Where the node lives now.
    pub fn place(&self) -> Place {
        if self.ino == 1 {
            return Place::Root;
        }
        let s = lock(&self.state);
        if let Some(p) = &s.parent {
            Place::Named(p.clone(), s.entry.clone())
        } else if let Some(a) = &s.anchor {
            Place::Anchored(a.clone())
        } else {
            Place::Gone
        }
    }

    /// Whether the node's name is `entry` in `parent`.
    pub fn is_at(&self, parent: &Arc<Node>, entry: &str) -> bool {
        let s = lock(&self.state);
        s.parent.as_ref().is_some_and(|p| Arc::ptr_eq(p, parent)) && &*s.entry == entry
    }

    /// Ciphertext path (vault-relative), for messages.
    pub fn label(&self) -> String {
        match self.place() {
            Place::Root => ".".into(),
            Place::Named(p, e) => {
                let pl = p.label();
                if pl == "." {
                    e.to_string()
                } else {
                    format!("{pl}/{e}")
                }
            }
            Place::Anchored(_) => format!("(unlinked inode {})", self.ino),
            Place::Gone => format!("(stale inode {})", self.ino),
        }
    }
}

impl Labelled for Node {
    fn vault_path(&self) -> String {
        self.label()
    }
}

pub struct Inodes {
    map: RwLock<HashMap<u64, Arc<Node>>>,
    anchors: Arc<AtomicUsize>,
    max_anchors: usize,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Moves `node` to `parent/entry` (or to no name), keeping child counts.
fn relocate(node: &Node, parent: Option<Arc<Node>>, entry: Box<str>) {
    let mut s = lock(&node.state);
    if let Some(old) = s.parent.take() {
        old.children.fetch_sub(1, Ordering::Relaxed);
    }
    if let Some(p) = &parent {
        p.children.fetch_add(1, Ordering::Relaxed);
        s.anchor = None;
    }
    s.parent = parent;
    s.entry = entry;
}

impl Inodes {
    pub fn new(max_anchors: usize) -> Inodes {
        let root = Node::new(1, Kind::Dir, 0, 0);
        root.lookups.store(1 << 62, Ordering::Relaxed);
        let mut m = HashMap::default();
        m.insert(1, Arc::new(root));
        Inodes {
            map: RwLock::new(m),
            anchors: Arc::new(AtomicUsize::new(0)),
            max_anchors,
        }
    }

    pub fn get(&self, ino: u64) -> Result<Arc<Node>> {
        read(&self.map)
            .get(&ino)
            .cloned()
            .ok_or(Error::errno(libc::ESTALE))
    }

    pub fn root(&self) -> Arc<Node> {
        read(&self.map)[&1].clone()
    }

    /// The node for `ino` if it is the inode with birth time `stamp`.
    pub fn find(&self, ino: u64, stamp: u64) -> Option<Arc<Node>> {
        read(&self.map)
            .get(&ino)
            .filter(|n| n.stamp == stamp)
            .cloned()
    }

    /// Records one kernel lookup of the vault inode (`ino`, `stamp`, `kind`)
    /// found as `entry` in `parent`; builds its node if it is new.
    pub fn lookup(
        &self,
        ino: u64,
        stamp: u64,
        kind: Kind,
        parent: &Arc<Node>,
        entry: &str,
    ) -> Arc<Node> {
        {
            let m = read(&self.map);
            if let Some(n) = m.get(&ino) {
                if n.stamp == stamp && n.kind == kind && (ino == 1 || n.is_at(parent, entry)) {
                    n.lookups.fetch_add(1, Ordering::Relaxed);
                    return n.clone();
                }
            }
        }
        let mut m = write(&self.map);
        let node = match m.get(&ino) {
            Some(n) if n.stamp == stamp && n.kind == kind => {
                // A known inode under a new name (a hard link, or renamed
                // outside the mount): the most recent name is its place.
                if ino != 1 && !n.is_at(parent, entry) {
                    relocate(n, Some(parent.clone()), Box::from(entry));
                }
                n.clone()
            }
            old => {
                // New, or another inode that reuses a known number.
                let generation = old.map_or(0, |o| o.generation + 1);
                let carried = old.map_or(0, |o| o.lookups.load(Ordering::Relaxed));
                if let Some(o) = old {
                    relocate(o, None, Box::from(""));
                    lock(&o.state).anchor = None;
                }
                let n = Arc::new(Node::new(ino, kind, stamp, generation));
                n.lookups.store(carried, Ordering::Relaxed);
                relocate(&n, Some(parent.clone()), Box::from(entry));
                m.insert(ino, n.clone());
                n
            }
        };
        node.lookups.fetch_add(1, Ordering::Relaxed);
        node
    }

    /// `node` now lives at `parent/entry` (a rename through the mount).
    pub fn moved(&self, node: &Arc<Node>, parent: &Arc<Node>, entry: &str) {
        let m = write(&self.map);
        if m.get(&node.ino).is_some_and(|n| Arc::ptr_eq(n, node)) {
            relocate(node, Some(parent.clone()), Box::from(entry));
        }
    }

    /// Opens an anchor with `open` if the budget allows (None otherwise).
    pub fn anchor(&self, open: impl FnOnce() -> Result<OwnedFd>) -> Option<Arc<Anchor>> {
        if self.anchors.fetch_add(1, Ordering::Relaxed) >= self.max_anchors {
            self.anchors.fetch_sub(1, Ordering::Relaxed);
            log::warn!(
                "more than {} removed entries are still in use; the next one answers ESTALE",
                self.max_anchors
            );
            return None;
        }
        match open() {
            Ok(fd) => Some(Arc::new(Anchor {
                fd,
                count: self.anchors.clone(),
            })),
            Err(_) => {
                self.anchors.fetch_sub(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// `node` lost its name; `anchor` (if any) keeps it reachable.
    pub fn detach(&self, node: &Arc<Node>, anchor: Option<Arc<Anchor>>) {
        let _m = write(&self.map);
        relocate(node, None, Box::from(""));
        lock(&node.state).anchor = anchor;
    }

    /// The kernel dropped `n` references; returns the nodes that left the
    /// table (the node, and parents that were kept only for it).
    pub fn forget(&self, ino: u64, n: u64) -> Vec<Arc<Node>> {
        let mut gone = Vec::new();
        if ino == 1 {
            return gone;
        }
        let mut m = write(&self.map);
        let Some(node) = m.get(&ino).cloned() else {
            return gone;
        };
        let cur = node.lookups.load(Ordering::Relaxed);
        node.lookups.store(cur - n.min(cur), Ordering::Relaxed);
        let mut next = Some(node);
        while let Some(node) = next.take() {
            if node.ino == 1
                || node.lookups.load(Ordering::Relaxed) != 0
                || node.children.load(Ordering::Relaxed) != 0
                || !m.get(&node.ino).is_some_and(|x| Arc::ptr_eq(x, &node))
            {
                break;
            }
            m.remove(&node.ino);
            let parent = lock(&node.state).parent.clone();
            relocate(&node, None, Box::from(""));
            lock(&node.state).anchor = None;
            gone.push(node);
            next = parent;
        }
        gone
    }

    pub fn len(&self) -> usize {
        read(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Anchors held now.
    pub fn anchors(&self) -> usize {
        self.anchors.load(Ordering::Relaxed)
    }
}

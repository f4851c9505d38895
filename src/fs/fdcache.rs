//! The descriptors the daemon holds between requests: directory fds and open
//! files, in one least-recently-used cache whose size is a fixed share of
//! the process's descriptor limit. Entries are shared (`Arc`): evicting one
//! only drops the cache's reference, so a request still using it finishes
//! first. Each entry records the node generation it belongs to, so a node
//! that replaced another under the same inode number never sees its fd.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use super::inodes::OpenFile;
use super::lock;

#[derive(Clone)]
pub enum Cached {
    Dir(Arc<OwnedFd>),
    File(Arc<OpenFile>),
}

pub struct FdCache {
    lru: Mutex<LruCache<u64, (u64, Cached)>>,
    cap: usize,
}

/// The descriptor budget: (cache size, removed-but-used entries), from the
/// soft RLIMIT_NOFILE. Half the limit for the cache, an eighth for anchors;
/// the rest stays free for requests in flight, FUSE channels and logs.
pub fn budget() -> (usize, usize) {
    // SAFETY: getrlimit with a valid out-pointer.
    let limit = unsafe {
        let mut r = std::mem::zeroed::<libc::rlimit>();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur as usize
        } else {
            1024
        }
    };
    budget_for(limit)
}

pub fn budget_for(limit: usize) -> (usize, usize) {
    ((limit / 2).clamp(8, 8192), (limit / 8).clamp(2, 4096))
}

impl FdCache {
    pub fn new(cap: usize) -> FdCache {
        FdCache {
            lru: Mutex::new(LruCache::unbounded()),
            cap: cap.max(1),
        }
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn len(&self) -> usize {
        lock(&self.lru).len()
    }

    /// The entry of node (`ino`, `generation`), marked most recently used.
    pub fn get(&self, ino: u64, generation: u64) -> Option<Cached> {
        let mut l = lock(&self.lru);
        match l.get(&ino) {
            Some((g, c)) if *g == generation => Some(c.clone()),
            _ => None,
        }
    }

    pub fn dir(&self, ino: u64, generation: u64) -> Option<Arc<OwnedFd>> {
        match self.get(ino, generation) {
            Some(Cached::Dir(fd)) => Some(fd),
            _ => None,
        }
    }

    pub fn file(&self, ino: u64, generation: u64) -> Option<Arc<OpenFile>> {
        match self.get(ino, generation) {
            Some(Cached::File(f)) => Some(f),
            _ => None,
        }
    }

    /// Adds (or refreshes) an entry, evicting the least recently used ones
    /// beyond the capacity.
    pub fn put(&self, ino: u64, generation: u64, c: Cached) {
        let mut evicted = Vec::new();
        {
            let mut l = lock(&self.lru);
            if let Some(old) = l.put(ino, (generation, c)) {
                evicted.push(old);
            }
            while l.len() > self.cap {
                match l.pop_lru() {
                    Some((_, v)) => evicted.push(v),
                    None => break,
                }
            }
        }
        drop(evicted); // closed outside the lock
    }

    /// Drops the entry of a node that left the table.
    pub fn remove(&self, ino: u64, generation: u64) {
        let old = {
            let mut l = lock(&self.lru);
            match l.peek(&ino) {
                Some((g, _)) if *g == generation => l.pop(&ino),
                _ => None,
            }
        };
        drop(old);
    }

    /// Closes the older half of the cache (after EMFILE/ENFILE); returns
    /// whether anything was closed.
    pub fn shrink(&self) -> bool {
        let evicted: Vec<_> = {
            let mut l = lock(&self.lru);
            let n = l.len().div_ceil(2);
            (0..n).filter_map(|_| l.pop_lru()).collect()
        };
        !evicted.is_empty()
    }

    /// Every cached open file (for the final flush).
    pub fn files(&self) -> Vec<Arc<OpenFile>> {
        lock(&self.lru)
            .iter()
            .filter_map(|(_, (_, c))| match c {
                Cached::File(f) => Some(f.clone()),
                Cached::Dir(_) => None,
            })
            .collect()
    }
}

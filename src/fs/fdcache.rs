//! The descriptors the daemon holds between requests: directory fds and open
//! files, in one least-recently-used cache whose size is a fixed share of
//! the process's descriptor limit. Entries are shared (`Arc`): evicting one
//! only drops the cache's reference, so a request still using it finishes
//! first. Each entry records the node generation it belongs to, so a node
//! that replaced another under the same inode number never sees its fd.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use rustc_hash::FxBuildHasher;

use super::inodes::OpenFile;
use super::lock;

#[derive(Clone)]
pub enum Cached {
    Dir(Arc<OwnedFd>),
    File(Arc<OpenFile>),
}

pub struct FdCache {
    lru: Mutex<LruCache<u64, (u64, Cached), FxBuildHasher>>,
    cap: usize,
}

/// The descriptor budget: (cache size, removed-but-used entries), from the
/// soft RLIMIT_NOFILE. Half the limit for the cache, an eighth for anchors;
/// the rest stays free for requests in flight, FUSE channels and logs.
pub fn budget() -> (usize, usize) {
    let limit = crate::vault::sys::nofile_limit().map_or(1024, |(soft, _)| soft);
    budget_for(usize::try_from(limit).unwrap_or(usize::MAX))
}

fn budget_for(limit: usize) -> (usize, usize) {
    ((limit / 2).clamp(8, 8192), (limit / 8).clamp(2, 4096))
}

/// Evicts up to `n` least recently used entries into `out`. An open file a
/// request is using right now stays (moved to the front): the cache is the
/// one place its open state is found, so a file never has two.
fn evict(
    l: &mut LruCache<u64, (u64, Cached), FxBuildHasher>,
    n: usize,
    out: &mut Vec<(u64, Cached)>,
) {
    let mut kept = Vec::new();
    let mut done = 0;
    for _ in 0..l.len() {
        if done >= n {
            break;
        }
        let Some((ino, v)) = l.pop_lru() else { break };
        match &v.1 {
            Cached::File(f) if Arc::strong_count(f) > 1 => kept.push((ino, v)),
            _ => {
                out.push(v);
                done += 1;
            }
        }
    }
    for (ino, v) in kept {
        l.put(ino, v);
    }
}

impl FdCache {
    pub fn new(cap: usize) -> FdCache {
        FdCache {
            lru: Mutex::new(LruCache::unbounded_with_hasher(FxBuildHasher)),
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
            let over = l.len().saturating_sub(self.cap);
            evict(&mut l, over, &mut evicted);
        }
        drop(evicted); // closed outside the lock
    }

    /// The open file of node (`ino`, `generation`), without marking it used.
    pub fn peek_file(&self, ino: u64, generation: u64) -> Option<Arc<OpenFile>> {
        match lock(&self.lru).peek(&ino) {
            Some((g, Cached::File(f))) if *g == generation => Some(f.clone()),
            _ => None,
        }
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
        let mut evicted = Vec::new();
        {
            let mut l = lock(&self.lru);
            let n = l.len().div_ceil(2);
            evict(&mut l, n, &mut evicted);
        }
        !evicted.is_empty()
    }

    /// Closes everything (at unmount).
    pub fn shrink_all(&self) {
        let all: Vec<_> = {
            let mut l = lock(&self.lru);
            std::iter::from_fn(|| l.pop_lru()).collect()
        };
        drop(all);
    }
}

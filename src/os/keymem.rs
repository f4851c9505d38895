//! Memory for key material: pages that are locked in RAM (`mlock`, so keys
//! never reach swap), excluded from core dumps (`MADV_DONTDUMP`), and wiped
//! when a key is freed. Keys (`SecretKey`) and expanded key schedules
//! (`Cipher`) live here; both come in a handful of sizes, so the pages are
//! cut into power-of-two slots (64 bytes to 2 KiB) kept on free lists.
//!
//! When locking fails (an ordinary user's `RLIMIT_MEMLOCK` is used up),
//! sealfs says so once and goes on with unlocked pages: the keys are still
//! out of core dumps and wiped on free. Locks are not inherited across
//! fork(2): the mount daemon is forked before any key exists.
//!
//! Transient copies a primitive makes on the stack while it runs (GCM-SIV's
//! per-message keys) are outside what this can reach.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use zeroize::Zeroize;

/// Slot sizes; anything larger gets pages of its own.
const CLASSES: [usize; 6] = [64, 128, 256, 512, 1024, 2048];

struct Pools {
    /// Free slots of each class, by address.
    free: [Vec<usize>; CLASSES.len()],
    /// Every mapping made (address, length).
    maps: Vec<(usize, usize)>,
}

static POOLS: Mutex<Pools> = Mutex::new(Pools {
    free: [const { Vec::new() }; CLASSES.len()],
    maps: Vec::new(),
});

static WARNED: AtomicBool = AtomicBool::new(false);

fn pools() -> std::sync::MutexGuard<'static, Pools> {
    POOLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn page_size() -> usize {
    rustix::param::page_size()
}

fn class_of(layout: Layout) -> Option<usize> {
    let need = layout.size().max(layout.align());
    CLASSES.iter().position(|&c| c >= need)
}

fn warn_once(e: rustix::io::Errno) {
    if !WARNED.swap(true, Ordering::Relaxed) {
        log::warn!(
            "cannot lock key memory in RAM ({e}): keys may reach swap; \
             raise the locked-memory limit (ulimit -l) to prevent it"
        );
    }
}

/// Locks `len` bytes at `addr` in RAM; a failure is reported once.
fn lock(addr: usize, len: usize) {
    // SAFETY: `addr..addr+len` is a mapping this module made and still owns.
    if let Err(e) = unsafe { rustix::mm::mlock(addr as *mut _, len) } {
        warn_once(e);
    }
}

/// Maps `len` bytes (a multiple of the page size) of fresh, zeroed,
/// no-dump, locked memory.
fn map(len: usize) -> usize {
    use rustix::mm::{MapFlags, ProtFlags};
    // SAFETY: an anonymous private mapping at an address the kernel picks
    // aliases no existing memory.
    let p = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE,
        )
    };
    let Ok(p) = p else {
        std::alloc::handle_alloc_error(Layout::from_size_align(len, page_size()).unwrap());
    };
    // SAFETY: `p..p+len` is the mapping just made.
    if let Err(e) = unsafe { rustix::mm::madvise(p, len, rustix::mm::Advice::LinuxDontDump) } {
        log::warn!("cannot exclude key memory from core dumps: {e}");
    }
    lock(p as usize, len);
    p as usize
}

/// Bytes mapped for a layout too large for a slot.
fn dedicated_len(layout: Layout) -> usize {
    layout.size().max(1).next_multiple_of(page_size())
}

fn alloc(layout: Layout) -> NonNull<u8> {
    // Mappings are page-aligned: nothing here needs more.
    assert!(
        layout.align() <= page_size(),
        "key memory cannot align to {}",
        layout.align()
    );
    let mut pools = pools();
    let addr = match class_of(layout) {
        Some(c) => {
            if pools.free[c].is_empty() {
                let page = page_size();
                let base = map(page);
                pools.maps.push((base, page));
                let slot = CLASSES[c];
                pools.free[c].extend((0..page / slot).rev().map(|i| base + i * slot));
            }
            pools.free[c].pop().expect("a slot was just added")
        }
        None => {
            let len = dedicated_len(layout);
            let base = map(len);
            pools.maps.push((base, len));
            base
        }
    };
    NonNull::new(addr as *mut u8).expect("mmap never returns null")
}

/// Wipes and returns the memory of `layout` at `p`.
///
/// # Safety
/// `p` came from `alloc(layout)` and nothing refers to it any more.
unsafe fn free(p: NonNull<u8>, layout: Layout) {
    let addr = p.as_ptr() as usize;
    let mut pools = pools();
    match class_of(layout) {
        Some(c) => {
            // SAFETY: the slot is CLASSES[c] bytes of our mapping, unused now.
            unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), CLASSES[c]) }.zeroize();
            pools.free[c].push(addr);
        }
        None => {
            let len = dedicated_len(layout);
            // SAFETY: the region is `len` bytes of our own mapping, unused now.
            unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), len) }.zeroize();
            pools.maps.retain(|&(a, _)| a != addr);
            // SAFETY: the mapping was made by `map` with this length and
            // nothing refers to it.
            let _ = unsafe { rustix::mm::munmap(p.as_ptr().cast(), len) };
        }
    }
}

/// Bytes of key memory mapped now.
pub fn mapped_bytes() -> usize {
    pools().maps.iter().map(|&(_, len)| len).sum()
}

/// An owned `T` in key memory: wiped when dropped.
pub struct Locked<T> {
    ptr: NonNull<T>,
}

// SAFETY: `Locked<T>` owns its `T` exactly as a `Box<T>` does.
unsafe impl<T: Send> Send for Locked<T> {}
// SAFETY: as for `Box<T>`: shared access only hands out `&T`.
unsafe impl<T: Sync> Sync for Locked<T> {}

impl<T> Locked<T> {
    /// Moves `value` into key memory.
    pub fn new(value: T) -> Self {
        let ptr = alloc(Layout::new::<T>()).cast::<T>();
        // SAFETY: fresh memory of `T`'s size and alignment, owned by us.
        unsafe { ptr.as_ptr().write(value) };
        Locked { ptr }
    }
}

impl<const N: usize> Locked<[u8; N]> {
    /// Zeroed bytes in key memory (filled in place, with no copy elsewhere).
    pub fn zeroed() -> Self {
        let ptr = alloc(Layout::new::<[u8; N]>()).cast::<[u8; N]>();
        // SAFETY: fresh memory of this size and alignment, owned by us.
        unsafe { ptr.as_ptr().write([0u8; N]) };
        Locked { ptr }
    }
}

impl<T> std::ops::Deref for Locked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `ptr` holds an initialised `T` for as long as `self` lives.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> std::ops::DerefMut for Locked<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and `&mut self` makes the access unique.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T> Drop for Locked<T> {
    fn drop(&mut self) {
        // SAFETY: the `T` is initialised and dropped exactly once here; then
        // its memory, no longer referred to, is wiped and returned.
        unsafe {
            std::ptr::drop_in_place(self.ptr.as_ptr());
            free(self.ptr.cast(), Layout::new::<T>());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_wiped_and_excluded_from_dumps() {
        let a = Locked::new([0xA5u8; 48]);
        let addr = &*a as *const _ as usize;
        drop(a);
        // The same class hands the wiped slot out again.
        let b: Locked<[u8; 48]> = Locked::zeroed();
        assert_eq!(&*b as *const _ as usize, addr);
        assert!(b.iter().all(|&x| x == 0));
        let big = Locked::new([7u8; 5000]);
        assert_eq!(big[4999], 7);
        assert!(mapped_bytes() >= 4096 + 8192);
        // The mapping carries the no-dump flag ("dd" in smaps' VmFlags).
        // (Adjacent mappings with the same flags may be merged, so look for
        // the one that contains the slot.)
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut flags = None;
        let mut inside = false;
        for l in smaps.lines() {
            if let Some((range, _)) = l.split_once(' ') {
                if let Some((lo, hi)) = range.split_once('-') {
                    if let (Ok(lo), Ok(hi)) =
                        (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                    {
                        inside = (lo..hi).contains(&addr);
                        continue;
                    }
                }
            }
            if inside && l.starts_with("VmFlags") {
                flags = Some(l.to_string());
            }
        }
        let flags = flags.expect("no smaps entry for the key page");
        assert!(flags.split_whitespace().any(|f| f == "dd"), "{flags}");
        // Locked ("lo") where the limit allows: always for root.
        if rustix::process::geteuid().is_root() {
            assert!(flags.split_whitespace().any(|f| f == "lo"), "{flags}");
        }
    }
}

//! The one place with `unsafe` code: what raw memory or a syscall needs and
//! no safe crate offers. Every other module forbids `unsafe`
//! (`#![forbid(unsafe_code)]`), and every block here states the invariant
//! it relies on. Syscalls elsewhere go through `rustix`.
//!
//! - `keymem`: locked, no-dump pages for keys (mmap, mlock, madvise, and
//!   the raw pointers of a slot allocator);
//! - `process`: fork(2), which no safe API offers, checked to run with one
//!   thread only.

pub mod keymem;
pub mod process;

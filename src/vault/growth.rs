//! Growing a file decides before it writes: a size past the largest file the
//! backing filesystem can hold is EFBIG, sealed zeros that cannot fit in its
//! free space are ENOSPC, and long extensions run in bounded steps that a
//! caller can stop (`Guard::keep_going`), leaving the file at its old size.

use std::os::fd::BorrowedFd;

use crate::error::{Error, Result};
use crate::format::chunk::Geometry;

use super::sys;

/// Growth below this many ciphertext bytes skips the free-space check (the
/// backing filesystem's own ENOSPC handles it, and appends stay cheap).
const CHECK_FREE_FROM: u64 = 1 << 20;

/// What a caller allows a growing request to do.
pub trait Guard {
    /// False stops the request between steps (EINTR; the file keeps its old size).
    fn keep_going(&self) -> bool {
        true
    }
}

/// No limits beyond the backing filesystem's (offline commands).
pub struct Unguarded;

impl Guard for Unguarded {}

/// The largest file the backing filesystem of `fd` holds, in bytes.
fn backing_max_file(fd: BorrowedFd<'_>) -> u64 {
    const EXT4: i64 = 0xEF53;
    const MSDOS: i64 = 0x4d44;
    match sys::fstatfs(fd) {
        // ext2/3/4 with extents: 2^32 - 1 blocks.
        Ok(s) if s.f_type == EXT4 => u64::from(u32::MAX) * s.f_bsize as u64,
        Ok(s) if s.f_type == MSDOS => u64::from(u32::MAX),
        _ => i64::MAX as u64,
    }
}

/// The largest plaintext size a file on the backing filesystem of `fd` can have.
pub fn max_plain_size(fd: BorrowedFd<'_>, geo: &Geometry) -> u64 {
    geo.plain_size_for_stat(backing_max_file(fd))
        .min(i64::MAX as u64)
}

/// Refuses, before anything is written, a growth of the file open as `fd`
/// from ciphertext length `cur` to plaintext size `new`, where files hold
/// at most `max` plaintext bytes (`max_plain_size`).
pub fn admit(fd: BorrowedFd<'_>, geo: &Geometry, cur: u64, new: u64, max: u64) -> Result<()> {
    if new > max {
        return Err(Error::errno(libc::EFBIG));
    }
    let grow = geo.sealed_len(new).saturating_sub(cur);
    if grow < CHECK_FREE_FROM {
        return Ok(());
    }
    let st = sys::fstatvfs(fd)?;
    let avail = st.f_bavail.saturating_mul(st.f_frsize);
    let total = st.f_blocks.saturating_mul(st.f_frsize);
    // Keep a margin: the filesystem's own metadata, and everyone else.
    let margin = (total / 64).min(64 << 20);
    if grow.saturating_add(margin) > avail {
        return Err(Error::errno(libc::ENOSPC));
    }
    Ok(())
}

//! A walk over the vault tree by ciphertext names, for offline commands
//! (`rekey`, `fsck`). Directories are opened from the root with openat2
//! (no symlinks, never outside the root), so nothing planted in the vault can
//! lead the walk elsewhere; only one directory fd is open at a time.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::format::names::{VaultEntry, classify};

use super::sys;

/// One entry found by the walk.
pub struct Found<'a> {
    /// Vault-relative path of the directory holding it.
    pub dir: &'a Path,
    pub dirfd: BorrowedFd<'a>,
    pub name: &'a OsString,
    pub class: VaultEntry<'a>,
    /// File type bits (`S_IFREG`, ...), from lstat.
    pub kind: u32,
}

/// Visits every entry of every sealfs directory under `root`, depth first.
/// Directories of sealfs entries are descended into after their visit.
pub fn walk(root: BorrowedFd<'_>, mut visit: impl FnMut(&Found<'_>) -> Result<()>) -> Result<()> {
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let fd: OwnedFd = sys::open_dir_beneath(root, &rel)?;
        let mut entries = sys::read_dir(fd.as_fd())?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for e in &entries {
            let st = match sys::fstatat(fd.as_fd(), sys::bytes(&e.name)) {
                Ok(st) => st,
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(err) => return Err(err.into()),
            };
            let kind = st.st_mode & libc::S_IFMT;
            let class = classify(sys::bytes(&e.name), rel.as_os_str().is_empty());
            let sealfs = matches!(
                class,
                VaultEntry::Short(_) | VaultEntry::Long(_) | VaultEntry::Copy(_)
            );
            visit(&Found {
                dir: &rel,
                dirfd: fd.as_fd(),
                name: &e.name,
                class,
                kind,
            })?;
            if sealfs && kind == libc::S_IFDIR {
                stack.push(rel.join(&e.name));
            }
        }
    }
    Ok(())
}

/// Counts the regular files `walk` will visit as sealfs entries.
pub fn count_files(root: BorrowedFd<'_>) -> Result<u64> {
    let mut n = 0;
    walk(root, |f| {
        if f.kind == libc::S_IFREG
            && matches!(
                f.class,
                VaultEntry::Short(_) | VaultEntry::Long(_) | VaultEntry::Copy(_)
            )
        {
            n += 1;
        }
        Ok(())
    })?;
    Ok(n)
}

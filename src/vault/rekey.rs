//! `rekey`, phase 2: rewrap every file header still naming an older master-key
//! generation under the current one. Content is not touched, so the time
//! grows with the number of files, not their size. Each header is one
//! `pwrite` inside one sector: after a crash a file has either its old or its
//! new header, and both generations are readable until the rekey completes.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, BorrowedFd};

use crate::error::{Error, Result};
use crate::format::header::{FileHeader, HEADER_LEN};
use crate::format::names::VaultEntry;

use super::keys::VaultKeys;
use super::walk::{count_files, walk};
use super::{Vault, sys};

/// What a rekey pass did.
#[derive(Debug, Default)]
pub struct Report {
    /// Files looked at.
    pub files: u64,
    /// Headers rewritten.
    pub rewrapped: u64,
    /// Older generations found in headers before rewrapping.
    pub seen: BTreeSet<u32>,
    /// Ciphertext paths of files whose header could not be read or opened.
    pub damaged: Vec<String>,
}

fn open_rw(dir: BorrowedFd<'_>, name: &[u8]) -> std::io::Result<std::os::fd::OwnedFd> {
    match sys::openat(dir, name, libc::O_RDWR, 0) {
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            // A read-only file (mode 0444): lend its owner write permission
            // for the one pwrite.
            let p = sys::openat(dir, name, libc::O_PATH, 0)?;
            let mode = sys::fstat(p.as_fd())?.st_mode & 0o7777;
            sys::fchmod_any(p.as_fd(), mode | 0o200)?;
            let fd = sys::openat(dir, name, libc::O_RDWR, 0);
            sys::fchmod_any(p.as_fd(), mode)?;
            fd
        }
        r => r,
    }
}

/// Rewraps one file's header if it names an older generation; returns that generation.
fn rewrap_one(keys: &VaultKeys, dir: BorrowedFd<'_>, name: &[u8]) -> Result<Option<u32>> {
    let fd = sys::openat(dir, name, libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
    let mut hb = [0u8; HEADER_LEN];
    let n = rustix::io::pread(&fd, &mut hb, 0).map_err(std::io::Error::from)?;
    let h = FileHeader::decode(&hb[..n]).map_err(|e| Error::Corrupt(format!("header: {e:?}")))?;
    if h.generation == keys.generation {
        return Ok(None);
    }
    let dek = keys
        .unwrap_dek(&h)
        .ok_or_else(|| Error::Corrupt("file key failed authentication".into()))?;
    let new = keys.wrap_dek(&dek, h.file_id, h.reserved)?;
    drop(fd);
    let fd = open_rw(dir, name)?;
    sys::pwrite_all(fd.as_fd(), &new.encode(), 0)?;
    Ok(Some(h.generation))
}

/// Rewraps every header of `vault` that is not of its current generation.
pub fn rewrap_all(vault: &Vault, progress: &mut dyn FnMut(u64, u64)) -> Result<Report> {
    let keys = vault.keys();
    let total = count_files(vault.root_fd())?;
    let mut r = Report::default();
    progress(0, total);
    walk(vault.root_fd(), |f| {
        // Conflict copies too: each holds a DEK wrapped by the master key.
        if f.kind != libc::S_IFREG
            || !matches!(
                f.class,
                VaultEntry::Short(_) | VaultEntry::Long(_) | VaultEntry::Copy(_)
            )
        {
            return Ok(());
        }
        r.files += 1;
        match rewrap_one(keys, f.dirfd, sys::bytes(f.name)) {
            Ok(Some(g)) => {
                r.rewrapped += 1;
                r.seen.insert(g);
            }
            Ok(None) => {}
            // Shaped like a conflict copy but not a sealfs file: not ours.
            Err(Error::Corrupt(_)) if matches!(f.class, VaultEntry::Copy(_)) => {
                r.files -= 1;
            }
            Err(Error::Corrupt(why)) => {
                let p = f.dir.join(f.name).display().to_string();
                log::error!("rekey: {p}: {why}");
                r.damaged.push(p);
            }
            // The vault cannot take writes: stop (a rerun resumes).
            Err(e)
                if matches!(
                    e.to_errno(),
                    libc::ENOSPC | libc::EROFS | libc::EIO | libc::EDQUOT
                ) =>
            {
                return Err(e);
            }
            // One file this user cannot rewrite (another owner, a FIFO put in
            // its place): report it and go on; its generation stays readable.
            Err(e) => {
                let p = f.dir.join(f.name).display().to_string();
                log::error!("rekey: {p}: {e}");
                r.damaged.push(format!("{p}: {e}"));
            }
        }
        progress(r.files, total.max(r.files));
        Ok(())
    })?;
    Ok(r)
}

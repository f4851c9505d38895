//! The private runtime directory of sealfs for this user (locks and the
//! mount daemons' pid files):
//! `$XDG_RUNTIME_DIR/sealfs`, else `/run/sealfs` for root, else
//! `/tmp/sealfs-UID`. Other local users are adversaries: the directory must
//! be a real directory (never a symlink) owned by us with mode 0700 (a
//! looser one of ours is tightened; one owned by anyone else is refused), and
//! every file in it is opened relative to it with O_NOFOLLOW, created with
//! O_EXCL and mode 0600, and trusted only if it is a regular file of ours.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::{Error, Result};

fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Where the runtime directory lives for this user.
pub fn runtime_path() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(d).join("sealfs");
    }
    match uid() {
        0 => PathBuf::from("/run/sealfs"),
        u => PathBuf::from(format!("/tmp/sealfs-{u}")),
    }
}

fn fail(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Config(format!("runtime directory {}: {why}", path.display()))
}

/// Opens (creating it if needed) the runtime directory, checked as above.
pub fn open_dir() -> Result<OwnedFd> {
    open_dir_at(&runtime_path())
}

/// `open_dir` for an explicit path (tests).
pub fn open_dir_at(path: &Path) -> Result<OwnedFd> {
    match rustix::fs::mkdir(path, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(fail(path, e)),
    }
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => {
            fail(path, "is not a directory (a symlink?); refusing to use it")
        }
        e => fail(path, e),
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| fail(path, e))?;
    if st.st_uid != uid() {
        return Err(fail(
            path,
            format!(
                "is owned by uid {}, not by us ({}); refusing to use it (remove it)",
                st.st_uid,
                uid()
            ),
        ));
    }
    if st.st_mode & 0o077 != 0 {
        // Ours, but others could write or read it (older sealfs made it 0777):
        // tighten it, and drop what anybody could have planted in it.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700)).map_err(|e| fail(path, e))?;
        log::warn!(
            "runtime directory {} had mode {:o}; tightened to 0700",
            path.display(),
            st.st_mode & 0o7777
        );
        for e in crate::vault::sys::read_dir(fd.as_fd()).map_err(|e| fail(path, e))? {
            let _ = rustix::fs::unlinkat(&fd, e.name.as_os_str(), rustix::fs::AtFlags::empty());
        }
    }
    Ok(fd)
}

/// Writes `text` to `name` in the runtime directory: a fresh file (O_EXCL,
/// mode 0600) renamed into place, so nothing already there is followed or
/// written through.
pub fn write_file(dir: &OwnedFd, name: &str, text: &str) -> Result<()> {
    let tmp = format!(
        ".{name}.{:016x}",
        u64::from_le_bytes(crate::crypto::random_array()?)
    );
    let fd = rustix::fs::openat(
        dir,
        tmp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(std::io::Error::from)?;
    let mut f = std::fs::File::from(fd);
    let written = f.write_all(text.as_bytes()).and_then(|()| f.sync_all());
    let renamed = written.and_then(|()| {
        rustix::fs::renameat(dir, tmp.as_str(), dir, name).map_err(std::io::Error::from)
    });
    if let Err(e) = renamed {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), rustix::fs::AtFlags::empty());
        return Err(e.into());
    }
    Ok(())
}

/// Reads `name` from the runtime directory if it is a regular file of ours
/// (never through a symlink).
pub fn read_file(dir: &OwnedFd, name: &str) -> Option<String> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if st.st_uid != uid() || (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
        return None;
    }
    let mut s = String::new();
    std::fs::File::from(fd)
        .take(4096)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// The name of the lock file of the vault directory `vault`: its vault ID
/// and the directory's device and inode, so two copies of one vault (two
/// devices' folders on one machine, a backup) lock apart.
pub fn lock_name(vault: &Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let id = super::Vault::info(vault)?.vault_id;
    let md =
        std::fs::metadata(vault).map_err(|e| Error::Config(format!("{}: {e}", vault.display())))?;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("vault-{hex}-{:x}-{:x}.lock", md.dev(), md.ino()))
}

/// The path of that lock file (for messages and tests).
pub fn lock_path(vault: &Path) -> Result<PathBuf> {
    Ok(runtime_path().join(lock_name(vault)?))
}

/// Opens the lock file of a vault: the lock a mount holds for its whole
/// life and offline commands hold while they change the vault. It lives in
/// the private runtime directory, where no other user can reach it (a lock
/// on the vault directory itself could be taken by anyone who can read it).
pub fn open_lock(vault: &Path) -> Result<OwnedFd> {
    let name = lock_name(vault)?;
    let dir = open_dir()?;
    let fd = rustix::fs::openat(
        &dir,
        name.as_str(),
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| fail(&runtime_path().join(&name), e))?;
    let st = rustix::fs::fstat(&fd).map_err(std::io::Error::from)?;
    if st.st_uid != uid() || (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
        return Err(fail(
            &runtime_path().join(&name),
            "is not a regular file of ours",
        ));
    }
    Ok(fd)
}

/// Takes the exclusive lock on `fd` without waiting; false if another
/// process holds it.
pub fn try_lock(fd: &OwnedFd) -> Result<bool> {
    match rustix::fs::flock(fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(std::io::Error::from(e).into()),
    }
}

/// Removes `name` from the runtime directory.
pub fn remove_file(dir: &OwnedFd, name: &str) {
    let _ = rustix::fs::unlinkat(dir, name, rustix::fs::AtFlags::empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join("run");
        let victim = t.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let dir = open_dir_at(&run).unwrap();
        assert_eq!(
            std::fs::metadata(&run).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::os::unix::fs::symlink(&victim, run.join("x.pid")).unwrap();
        assert_eq!(read_file(&dir, "x.pid"), None, "read through a symlink");
        write_file(&dir, "x.pid", "123\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(read_file(&dir, "x.pid").as_deref(), Some("123\n"));
        let m = std::fs::symlink_metadata(run.join("x.pid")).unwrap();
        assert!(m.file_type().is_file());
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_loose_directory_is_tightened_and_a_symlinked_one_refused() {
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(run.join("planted.pid"), "1\n").unwrap();
        open_dir_at(&run).unwrap();
        assert_eq!(
            std::fs::metadata(&run).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(!run.join("planted.pid").exists());
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&run, &link).unwrap();
        let e = open_dir_at(&link).err().unwrap().to_string();
        assert!(e.contains("not a directory"), "{e}");
    }
}

//! Offline access to an unmounted vault: `ls`, `cat`, `put`. No FUSE involved.

use std::io::{Read, Write};
use std::path::Path;

use super::{PassArgs, password};
use crate::vault::{Kind, Secret, Vault};
use crate::{Error, Result};

fn unlock(pass: &PassArgs, vault: &Path) -> Result<Vault> {
    // Check it is a vault before asking for a password.
    Vault::info(vault)?;
    let pw = password::existing(pass, vault)?;
    Vault::unlock(vault, Secret::Password(&pw))
}

pub fn ls(pass: &PassArgs, vault: &Path, path: &Path) -> Result<()> {
    let v = unlock(pass, vault)?;
    let dir = v.open_dir(path)?;
    let mut entries = dir.list()?;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = std::io::stdout().lock();
    for e in entries {
        use std::os::unix::ffi::OsStrExt;
        out.write_all(e.name.as_bytes())?;
        match e.kind {
            Kind::Dir => out.write_all(b"/")?,
            Kind::Symlink => {
                out.write_all(b" -> ")?;
                match dir.readlink(&e.name) {
                    Ok(t) => out.write_all(&t)?,
                    Err(_) => out.write_all(b"(unreadable)")?,
                }
            }
            _ => {}
        }
        out.write_all(b"\n")?;
    }
    Ok(())
}

pub fn cat(pass: &PassArgs, vault: &Path, path: &Path) -> Result<()> {
    let v = unlock(pass, vault)?;
    let (dir, name) = v.open_parent(path)?;
    let f = dir.open_file(name, false)?;
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    loop {
        let n = f.read_at(&mut buf, off)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(Error::Io)?;
        off += n as u64;
    }
    out.flush()?;
    Ok(())
}

pub fn put(pass: &PassArgs, vault: &Path, path: &Path) -> Result<()> {
    super::refuse_unfinished_full_rekey(vault)?;
    let v = unlock(pass, vault)?;
    // Create missing parent directories.
    let mut dir = v.root()?;
    let comps: Vec<_> = path.iter().filter(|c| *c != "/").collect();
    let (name, parents) = comps.split_last().ok_or(Error::errno(libc::EINVAL))?;
    for c in parents {
        dir = match dir.open_subdir(c) {
            Ok(d) => d,
            Err(e) if e.is_not_found() => {
                dir.mkdir(c, 0o755)?;
                dir.open_subdir(c)?
            }
            Err(e) => return Err(e),
        };
    }
    let (mut f, tmp) = dir.create_temp_file(0o644)?;
    let result = (|| -> Result<()> {
        let mut input = std::io::stdin().lock();
        // A regular file on standard input has a known length.
        let total = crate::vault::sys::fstat(std::os::fd::AsFd::as_fd(&input))
            .ok()
            .filter(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
            .map(|st| st.st_size as u64);
        let bar = super::progress::bytes("put", total);
        let mut buf = vec![0u8; 1 << 20];
        let mut off = 0u64;
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            f.write_at(&buf[..n], off)?;
            off += n as u64;
            bar.set_position(off);
        }
        f.sync(false)?;
        bar.finish_and_clear();
        dir.commit_temp(&tmp, name)
    })();
    if result.is_err() {
        dir.discard_temp(&tmp);
    }
    result
}

//! User extended attributes, with names and values encrypted. Stored on the
//! vault inode as `user.sealfs.<encrypted name>`; other namespaces are not
//! supported (security/trusted/system attributes are not synced anyway).

use std::ffi::{CString, OsStr};
use std::os::fd::AsFd;

use fuser::{Errno, ReplyXattr};

use super::ops::SealFs;
use crate::error::{Error, Result};
use crate::vault::sys;

const PREFIX: &str = "user.sealfs.";
const MAX_VALUE: usize = 64 * 1024;

pub fn reply_sized(reply: ReplyXattr, size: u32, r: std::result::Result<Vec<u8>, Errno>) {
    match r {
        Ok(v) if size == 0 => reply.size(v.len() as u32),
        Ok(v) if v.len() > size as usize => reply.error(Errno::ERANGE),
        Ok(v) => reply.data(&v),
        Err(e) => reply.error(e),
    }
}

impl SealFs {
    fn backing_name(&self, name: &OsStr) -> Result<CString> {
        let b = sys::bytes(name);
        if !b.starts_with(b"user.") {
            return Err(Error::errno(libc::EOPNOTSUPP));
        }
        if b.len() > 255 {
            return Err(Error::errno(libc::ERANGE));
        }
        let enc = self.keys().names.encode_xattr_name(b)?;
        let full = format!("{PREFIX}{enc}");
        if full.len() > 255 {
            return Err(Error::errno(libc::ERANGE));
        }
        CString::new(full).map_err(|_| Error::errno(libc::EINVAL))
    }

    pub fn setxattr(&self, ino: u64, name: &OsStr, value: &[u8], flags: i32) -> Result<()> {
        if self.read_only {
            return Err(Error::errno(libc::EROFS));
        }
        if value.len() > MAX_VALUE {
            return Err(Error::errno(libc::E2BIG));
        }
        let bname = self.backing_name(name)?;
        let sealed = self.keys().names.seal_xattr(bname.as_bytes(), value)?;
        let (_node, fd) = self.xattr_fd(ino)?;
        Ok(sys::setxattr_fd(fd.as_fd(), &bname, &sealed, flags)?)
    }

    pub fn getxattr(&self, ino: u64, name: &OsStr) -> Result<Vec<u8>> {
        // Other namespaces answer EOPNOTSUPP (not ENODATA): ls and cp then
        // stop asking for SELinux labels and ACLs on this filesystem, which
        // saves two round trips per file. (The kernel disables getxattr
        // altogether only on ENOSYS, so user attributes keep working.)
        let bname = self.backing_name(name)?;
        let (node, fd) = self.xattr_fd(ino)?;
        let mut buf = vec![0u8; MAX_VALUE + 64];
        let n = sys::getxattr_fd(fd.as_fd(), &bname, &mut buf)?;
        self.keys()
            .names
            .open_xattr(bname.as_bytes(), &buf[..n])
            .ok_or_else(|| {
                let l = node.label();
                log::error!("extended attribute failed authentication: {l}");
                Error::Corrupt(l)
            })
    }

    pub fn listxattr(&self, ino: u64) -> Result<Vec<u8>> {
        let (_node, fd) = self.xattr_fd(ino)?;
        let buf = sys::listxattr_fd(fd.as_fd())?;
        let mut out = Vec::new();
        for raw in buf.split(|&b| b == 0).filter(|s| !s.is_empty()) {
            let Some(enc) = raw.strip_prefix(PREFIX.as_bytes()) else {
                continue;
            };
            if let Some(name) = self.keys().names.decode_xattr_name(enc) {
                out.extend_from_slice(&name);
                out.push(0);
            }
        }
        Ok(out)
    }

    pub fn removexattr(&self, ino: u64, name: &OsStr) -> Result<()> {
        if self.read_only {
            return Err(Error::errno(libc::EROFS));
        }
        let bname = match self.backing_name(name) {
            Ok(n) => n,
            Err(e) if e.to_errno() == libc::EOPNOTSUPP => return Err(Error::errno(libc::ENODATA)),
            Err(e) => return Err(e),
        };
        let (_node, fd) = self.xattr_fd(ino)?;
        Ok(sys::removexattr_fd(fd.as_fd(), &bname)?)
    }
}

//! `rekey --full`, the conversion pass: every name, directory ID, file
//! (new DEK, content re-encrypted), symlink target and extended attribute is
//! rewritten under the new keys, so the old master key opens nothing current.
//!
//! Crash safety: the config (state 2) holds the new keys and, sealed under
//! the new MK, the previous name and dir-id keys; the previous MK is a retired
//! generation. A directory is converted in place: its new ID goes to
//! `.sealfs.dir.next`, each entry is rewritten under its new name (a file is
//! copied to a temporary and renamed into place, then the old entry is
//! removed; a subdirectory is renamed), then `.sealfs.dir.next` is renamed
//! over `.sealfs.dir`. At every instant each entry is readable under one of
//! the two name keys (`Dir` reads both while state 2 lasts), and a rerun
//! finishes the same conversion. Hard links become separate files.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::format::dirid::{DIRID_FILE, DirId};
use crate::format::names::{
    LINKS_DIR, NameCodec, SIDECAR_SUFFIX, TEMP_PREFIX, TargetRef, VaultEntry, classify, target_ref,
};

use super::dir::{DIRID_NEXT_FILE, Dir, Kind, Naming};
use super::file::SealedFile;
use super::keys::VaultKeys;
use super::walk::{count_files, walk};
use super::{Vault, sys};
use crate::vault::sys::Stat;

const XATTR_PREFIX: &[u8] = b"user.sealfs.";

/// What a conversion pass did.
#[derive(Debug, Default)]
pub struct Report {
    pub files: u64,
    pub converted: u64,
    /// Entries that could not be converted (damaged): ciphertext paths.
    pub damaged: Vec<String>,
}

struct Converter<'a> {
    vault: &'a Vault,
    keys: &'a VaultKeys,
    prev: &'a NameCodec,
    report: Report,
    total: u64,
    progress: &'a mut dyn FnMut(u64, u64),
}

/// Rewrites every `user.sealfs.*` attribute of `from` sealed with the
/// previous key onto `to` under the current key; with `remove`, the old
/// attribute is removed afterwards (when `from` and `to` are one inode).
fn convert_xattrs(
    keys: &VaultKeys,
    prev: &NameCodec,
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    remove: bool,
) -> Result<()> {
    let mut names = vec![0u8; 65536];
    let n = rustix::fs::flistxattr(from, &mut names).map_err(std::io::Error::from)?;
    for raw in names[..n].split(|&b| b == 0) {
        let Some(enc) = raw.strip_prefix(XATTR_PREFIX) else {
            continue;
        };
        let Some(name) = prev.decode_xattr_name(enc) else {
            continue; // current already, or not ours
        };
        let mut v = vec![0u8; 65536 + 64];
        let m = rustix::fs::fgetxattr(from, raw, &mut v).map_err(std::io::Error::from)?;
        let value = prev
            .open_xattr(raw, &v[..m])
            .ok_or_else(|| Error::Corrupt("an extended attribute failed authentication".into()))?;
        let backing = [
            XATTR_PREFIX,
            keys.names.encode_xattr_name(&name)?.as_bytes(),
        ]
        .concat();
        let sealed = keys.names.seal_xattr(&backing, &value)?;
        sys::crash_point();
        rustix::fs::fsetxattr(
            to,
            backing.as_slice(),
            &sealed,
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(std::io::Error::from)?;
        if remove {
            sys::crash_point();
            rustix::fs::fremovexattr(from, raw).map_err(std::io::Error::from)?;
        }
    }
    Ok(())
}

fn times(st: &Stat) -> [libc::timespec; 2] {
    [
        libc::timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec,
        },
        libc::timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec,
        },
    ]
}

/// The long-name sidecar of a raw entry name, if it is a hashed one.
fn sidecar_of_raw(raw: &OsStr) -> Option<OsString> {
    raw.as_bytes().starts_with(b"~").then(|| {
        let mut s = raw.to_os_string();
        s.push(SIDECAR_SUFFIX);
        s
    })
}

impl Converter<'_> {
    /// Removes what a crashed run left in `d`: temporaries, and sidecars
    /// under the previous key whose entry is gone (converted). A sidecar
    /// under the current key, or one that may belong to an entry still
    /// syncing, stays.
    fn clean(&self, d: &Dir, old_id: Option<&DirId>) -> Result<()> {
        let entries = sys::read_dir(d.fd())?;
        let next_tmp = format!("{DIRID_NEXT_FILE}.tmp-");
        for e in &entries {
            let n = e.name.as_bytes();
            if n.starts_with(next_tmp.as_bytes()) {
                sys::unlinkat(d.fd(), n, 0)?;
            } else if n.starts_with(TEMP_PREFIX.as_bytes()) {
                if let Ok(sub) = sys::open_subdir(d.fd(), n) {
                    for c in sys::read_dir(sub.as_fd())? {
                        sys::unlinkat(sub.as_fd(), c.name.as_bytes(), 0)?;
                    }
                    sys::unlinkat(d.fd(), n, libc::AT_REMOVEDIR)?;
                } else {
                    sys::unlinkat(d.fd(), n, 0)?;
                }
            } else if classify(n, d.is_root()) == VaultEntry::Sidecar {
                let entry = &n[..n.len() - SIDECAR_SUFFIX.len()];
                let orphan = !entries.iter().any(|o| o.name.as_bytes() == entry);
                let old = old_id.is_some_and(|id| {
                    sys::read_small_file(d.fd(), n, 8192)
                        .is_ok_and(|full| self.prev.decode(id, &full).is_some())
                });
                if orphan && old {
                    sys::unlinkat(d.fd(), n, 0)?;
                }
            }
        }
        Ok(())
    }

    /// Gives a new entry made under temporary name `tmp` the old entry's
    /// owner (as root), mode (`chmod`: not for symlinks, which have none) and
    /// times, then renames it into place without replacing anything.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        d: &Dir,
        tmp: &str,
        new: &crate::format::names::DiskName,
        st: &Stat,
        uid: Option<u32>,
        gid: Option<u32>,
        chmod: bool,
    ) -> Result<()> {
        let p = sys::openat(d.fd(), tmp.as_bytes(), libc::O_PATH, 0)?;
        sys::fchown_any(p.as_fd(), uid, gid)?;
        if chmod {
            sys::fchmod_any(p.as_fd(), st.st_mode & 0o7777)?;
        }
        sys::futimens_any(p.as_fd(), &times(st))?;
        d.put_sidecar(new)?;
        sys::renameat2(
            d.fd(),
            tmp.as_bytes(),
            d.fd(),
            new.entry().as_bytes(),
            libc::RENAME_NOREPLACE,
        )?;
        Ok(())
    }

    /// Records an entry the pass could not convert; the run will not finish.
    fn damaged(&mut self, d: &Dir, raw: &OsStr, why: &str) {
        let p = d.entry_label(&raw.to_string_lossy());
        log::error!("rekey --full: {p}: {why}");
        self.report.damaged.push(format!("{p}: {why}"));
    }

    /// Rewrites one entry sealed with the previous keys under the current ones.
    fn convert_entry(&mut self, d: &Dir, raw: &OsStr, name: &OsStr) -> Result<()> {
        let new = d.current_disk_name(name)?;
        let st = sys::fstatat(d.fd(), raw.as_bytes())?;
        let drop_old = |d: &Dir| -> Result<()> {
            sys::unlinkat(d.fd(), raw.as_bytes(), 0)?;
            if let Some(side) = sidecar_of_raw(raw) {
                let _ = sys::unlinkat(d.fd(), side.as_bytes(), 0);
            }
            Ok(())
        };
        if sys::fstatat(d.fd(), new.entry().as_bytes()).is_ok() {
            // A crashed run got this far: the new entry is whole.
            return if Kind::from_mode(st.st_mode) == Kind::Dir {
                Err(Error::Corrupt("directory present under both keys".into()))
            } else {
                drop_old(d)
            };
        }
        let uid = (is_root_user()).then_some(st.st_uid);
        let gid = (is_root_user()).then_some(st.st_gid);
        match Kind::from_mode(st.st_mode) {
            Kind::File => {
                let fd = sys::openat(d.fd(), raw.as_bytes(), libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
                let old = SealedFile::open(
                    fd.try_clone()?,
                    self.keys,
                    d.entry_label(&raw.to_string_lossy()),
                )?;
                let (mut f, tmp) = d.create_temp_file(0o600)?;
                let result = (|| -> Result<()> {
                    let mut off = 0u64;
                    loop {
                        let chunk = old.read_vec(off, 1 << 20)?;
                        if chunk.is_empty() {
                            break;
                        }
                        f.write_at(&chunk, off)?;
                        off += chunk.len() as u64;
                    }
                    convert_xattrs(self.keys, self.prev, fd.as_fd(), f.fd(), false)?;
                    f.sync(false)?;
                    self.settle(d, &tmp, &new, &st, uid, gid, true)
                })();
                if result.is_err() {
                    d.discard_temp(&tmp);
                }
                result?;
                self.report.files += 1;
                (self.progress)(self.report.files, self.total.max(self.report.files));
                drop_old(d)?;
            }
            Kind::Dir => {
                d.put_sidecar(&new)?;
                sys::renameat2(
                    d.fd(),
                    raw.as_bytes(),
                    d.fd(),
                    new.entry().as_bytes(),
                    libc::RENAME_NOREPLACE,
                )?;
                if let Some(side) = sidecar_of_raw(raw) {
                    let _ = sys::unlinkat(d.fd(), side.as_bytes(), 0);
                }
            }
            Kind::Symlink => {
                let t = sys::readlinkat(d.fd(), raw.as_bytes())?;
                let target = self
                    .keys
                    .read_target_with(self.prev, &t)
                    .ok_or_else(|| Error::Corrupt("symlink target failed authentication".into()))?;
                let stored = self.keys.store_target(&target)?;
                let tmp = temp_name()?;
                sys::symlinkat(&stored, d.fd(), tmp.as_bytes())?;
                self.settle(d, &tmp, &new, &st, uid, gid, false)?;
                drop_old(d)?;
            }
            _ => {
                let tmp = temp_name()?;
                sys::mknodat(d.fd(), tmp.as_bytes(), st.st_mode, st.st_rdev)?;
                self.settle(d, &tmp, &new, &st, uid, gid, true)?;
                drop_old(d)?;
            }
        }
        self.report.converted += 1;
        Ok(())
    }

    /// Converts one directory's own ID, attributes and entries; returns its
    /// subdirectories as (vault path, ID, plaintext name) to visit next.
    fn convert_dir(
        &mut self,
        mut d: Dir,
        rel: PathBuf,
        name: Option<&OsStr>,
        parent: DirId,
    ) -> Result<Vec<(PathBuf, OsString, DirId)>> {
        let dir_st = sys::fstat(d.fd())?;
        if d.naming() == Naming::Previous {
            let name = name.ok_or_else(|| Error::Corrupt("root under the previous key".into()))?;
            let id = DirId::child(&self.keys.dirid_key, &parent, name.as_bytes());
            match sys::write_new_file(
                d.fd(),
                DIRID_NEXT_FILE.as_bytes(),
                &id.encode(&self.keys.dirid_mac),
                0o444,
                true,
            ) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    // Unreadable leftover of a crash (it did not authenticate): replace it.
                    sys::write_atomic(
                        d.fd(),
                        DIRID_NEXT_FILE,
                        &id.encode(&self.keys.dirid_mac),
                        0o444,
                    )?;
                }
                Err(e) => return Err(e.into()),
            }
            let fd = sys::open_dir_beneath(self.vault.root_fd(), &rel)?;
            d = Dir::from_fd(fd, self.vault.keys().clone(), d.label())?;
        }
        let old_id = match d.naming() {
            Naming::Both { old } => Some(old),
            _ => None,
        };
        self.clean(&d, old_id.as_ref())?;
        // Only a directory whose every entry is converted gets its new ID
        // for good; anything left stays readable under the previous key.
        let mut complete = true;
        if let Err(e) = convert_xattrs(self.keys, self.prev, d.fd(), d.fd(), true) {
            self.damaged(&d, OsStr::new("."), &format!("its attributes: {e}"));
            complete = false;
        }
        let mut subdirs = Vec::new();
        let mut entries = sys::read_dir(d.fd())?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for e in entries {
            let (plain, current) = match d.decode_entry_which(&e.name) {
                Ok(x) => x,
                Err(why) => {
                    // A sealfs-shaped name neither key opens (damaged, or its
                    // sidecar still syncing): never finish past it.
                    match classify(e.name.as_bytes(), d.is_root()) {
                        VaultEntry::Short(_) | VaultEntry::Long(_) => {
                            self.damaged(&d, &e.name, why);
                            complete = false;
                        }
                        // Its name would stay sealed under the previous key:
                        // the user resolves it first.
                        VaultEntry::Copy(_) if d.entry_name(&e.name, &mut None).is_ok() => {
                            self.damaged(&d, &e.name, "a sync tool's conflict copy: rename or remove it through the mount, then run rekey --full again");
                            complete = false;
                        }
                        _ => {}
                    }
                    continue;
                }
            };
            if !current {
                if let Err(err) = self.convert_entry(&d, &e.name, &plain) {
                    // The vault cannot take writes: stop (a rerun resumes).
                    if matches!(err.to_errno(), libc::ENOSPC | libc::EROFS | libc::EDQUOT)
                        && !matches!(err, Error::Corrupt(_))
                    {
                        return Err(err);
                    }
                    self.damaged(&d, &e.name, &err.to_string());
                    complete = false;
                    continue;
                }
            }
            let dn = d.current_disk_name(&plain)?;
            if let Ok(st) = sys::fstatat(d.fd(), dn.entry().as_bytes()) {
                if Kind::from_mode(st.st_mode) == Kind::Dir {
                    subdirs.push((rel.join(dn.entry()), plain, *d.id()));
                } else if Kind::from_mode(st.st_mode) == Kind::File && current {
                    self.report.files += 1;
                    (self.progress)(self.report.files, self.total.max(self.report.files));
                }
            }
        }
        if let Naming::Both { .. } = d.naming() {
            if !d.is_root() && complete {
                sys::renameat2(
                    d.fd(),
                    DIRID_NEXT_FILE.as_bytes(),
                    d.fd(),
                    DIRID_FILE.as_bytes(),
                    0,
                )?;
                sys::fsync(d.fd())?;
            }
        }
        sys::futimens_any(d.fd(), &times(&dir_st))?;
        Ok(subdirs)
    }
}

/// A fresh `.sealfs.tmp.*` name.
fn temp_name() -> Result<String> {
    Ok(format!(
        "{TEMP_PREFIX}{:016x}",
        u64::from_le_bytes(crate::crypto::random_array()?)
    ))
}

fn is_root_user() -> bool {
    rustix::process::geteuid().is_root()
}

/// Converts every entry of `vault` (opened with the state-2 config).
pub fn convert_all(vault: &Vault, progress: &mut dyn FnMut(u64, u64)) -> Result<Report> {
    let keys = vault.keys();
    let prev = &keys
        .previous
        .as_ref()
        .ok_or_else(|| Error::Config("no rekey --full in progress".into()))?
        .names;
    let total = count_files(vault.root_fd())?;
    let mut c = Converter {
        vault,
        keys,
        prev,
        report: Report::default(),
        total,
        progress,
    };
    let mut stack = vec![(PathBuf::new(), None::<OsString>, keys.root_id)];
    while let Some((rel, name, parent)) = stack.pop() {
        let d = if rel.as_os_str().is_empty() {
            vault.root()?
        } else {
            let fd = sys::open_dir_beneath(vault.root_fd(), &rel)?;
            match Dir::from_fd(fd, keys.clone(), rel.display().to_string()) {
                Ok(d) => d,
                Err(Error::Corrupt(why)) => {
                    c.report.damaged.push(format!("{}: {why}", rel.display()));
                    continue;
                }
                Err(e) => return Err(e),
            }
        };
        for (r, n, id) in c.convert_dir(d, rel, name.as_deref(), parent)? {
            stack.push((r, Some(n), id));
        }
    }
    Ok(c.report)
}

/// Removes stored long symlink targets no symlink refers to (after a full
/// rekey they are sealed with the previous key).
pub fn sweep_links(vault: &Vault) -> Result<()> {
    let mut used = std::collections::BTreeSet::new();
    walk(vault.root_fd(), |f| {
        if f.kind == libc::S_IFLNK {
            if let Ok(t) = sys::readlinkat(f.dirfd, f.name.as_bytes()) {
                if let TargetRef::Stored(h) = target_ref(&t) {
                    used.insert(h.to_string());
                }
            }
        }
        Ok(())
    })?;
    let Ok(dir) = sys::open_subdir(vault.root_fd(), LINKS_DIR.as_bytes()) else {
        return Ok(());
    };
    let prev = vault.keys().previous.as_ref().map(|p| &p.names);
    for e in sys::read_dir(dir.as_fd())? {
        if used.contains(&*e.name.to_string_lossy()) {
            continue;
        }
        // Only targets sealed under the previous key: one under the current
        // key may belong to a symlink that has not synced here yet.
        let old = prev.is_some_and(|p| {
            sys::read_small_file(dir.as_fd(), e.name.as_bytes(), 8192)
                .is_ok_and(|sealed| p.open_target(&sealed).is_some())
        });
        if old {
            sys::unlinkat(dir.as_fd(), e.name.as_bytes(), 0)?;
        }
    }
    Ok(())
}

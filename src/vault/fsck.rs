//! `fsck`: checks every entry of an unlocked vault — names, long-name
//! sidecars, directory IDs, headers, every chunk, symlink targets, extended
//! attributes — and, with `repair`, moves what fails authentication into a
//! `lost+found` directory of the plaintext view, salvaging the readable chunks
//! of a damaged file into a new file there. It never deletes anything and
//! never touches foreign files or sync tools' files.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use crate::error::{Error, Result};
use crate::format::config::CONFIG_FILE;
use crate::format::conflict;
use crate::format::names::{
    LINKS_DIR, SIDECAR_SUFFIX, TargetRef, VaultEntry, classify, is_config_name, target_ref,
};

use super::dir::{Dir, Kind};
use super::file::SealedFile;
use super::walk::count_files;
use super::{Vault, sys};

/// The plaintext directory repairs move things into.
pub const LOST_FOUND: &str = "lost+found";

/// One thing fsck has to say about one entry.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Vault-relative ciphertext path.
    pub vault_path: String,
    /// Plaintext path, where known.
    pub plain_path: Option<String>,
    pub what: String,
    /// Damage (counts for the exit status) or only a notice.
    pub damage: bool,
    /// Where a repair put it (plaintext path), if one did.
    pub repaired: Option<String>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub dirs: u64,
    pub files: u64,
    pub symlinks: u64,
    pub chunks: u64,
    pub bad_chunks: u64,
}

impl Report {
    pub fn damage_left(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.damage && f.repaired.is_none())
            .count()
    }
    pub fn repaired(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.repaired.is_some())
            .count()
    }
}

struct Checker<'a> {
    vault: &'a Vault,
    repair: bool,
    report: Report,
    lost_found: Option<Dir>,
    links: BTreeSet<String>,
    done: u64,
    total: u64,
    progress: &'a mut dyn FnMut(u64, u64),
}

/// What is wrong with one entry, and whether its content can be salvaged.
struct Damage {
    what: String,
    salvage: bool,
}

/// Damage that a sync still in progress explains (a header of a generation
/// whose config has not arrived, a missing ID file or sidecar): reported,
/// never moved by a repair.
fn maybe_syncing(what: &str) -> bool {
    what.contains(super::file::UNKNOWN_GENERATION)
        || what.contains(super::dir::MISSING_SIDECAR)
        || what.contains(MISSING_DIRID)
}

const MISSING_DIRID: &str = "its directory-ID file is missing (not synced yet?)";

fn join(parent: &str, name: &OsStr) -> String {
    let n = name.to_string_lossy();
    if parent.is_empty() {
        n.into_owned()
    } else {
        format!("{parent}/{n}")
    }
}

impl Checker<'_> {
    fn note(&mut self, vault_path: String, plain_path: Option<String>, what: &str, damage: bool) {
        self.report.findings.push(Finding {
            vault_path,
            plain_path,
            what: what.to_string(),
            damage,
            repaired: None,
        });
    }

    fn tick(&mut self) {
        self.done += 1;
        (self.progress)(self.done, self.total.max(self.done));
    }

    /// Checks the extended attributes of an entry open as `fd`.
    fn check_xattrs(&self, fd: BorrowedFd<'_>) -> Option<String> {
        let mut names = vec![0u8; 65536];
        let n = rustix::fs::flistxattr(fd, &mut names).ok()?;
        let keys = self.vault.keys();
        for raw in names[..n].split(|&b| b == 0) {
            let Some(enc) = raw.strip_prefix(b"user.sealfs.") else {
                continue;
            };
            if keys.names.decode_xattr_name(enc).is_none() {
                return Some("an extended attribute's name failed authentication".into());
            }
            let mut v = vec![0u8; 65536 + 64];
            let ok = rustix::fs::fgetxattr(fd, raw, &mut v)
                .ok()
                .and_then(|m| keys.names.open_xattr(raw, &v[..m]))
                .is_some();
            if !ok {
                return Some("an extended attribute's value failed authentication".into());
            }
        }
        None
    }

    /// Checks a regular file: header, every chunk and its mark.
    fn check_file(&mut self, dir: &Dir, raw: &OsStr) -> Result<Option<Damage>> {
        let fd = sys::openat(
            dir.fd(),
            raw.as_bytes(),
            libc::O_RDONLY | libc::O_NONBLOCK,
            0,
        )?;
        if let Some(x) = self.check_xattrs(fd.as_fd()) {
            return Ok(Some(Damage {
                what: x,
                salvage: false,
            }));
        }
        let label = dir.entry_label(&raw.to_string_lossy());
        let (f, len) = match SealedFile::open_for_check(fd, self.vault.keys(), label) {
            Ok(x) => x,
            Err(Error::Corrupt(why)) => {
                let what = why.rsplit(": ").next().unwrap_or(&why).to_string();
                return Ok(Some(Damage {
                    what,
                    salvage: false,
                }));
            }
            Err(e) => return Err(e),
        };
        let slots = f.chunk_slots(len);
        let mut bad = Vec::new();
        let mut marks = Vec::new();
        for i in 0..slots {
            self.report.chunks += 1;
            match f.check_chunk(i, len) {
                Ok((_, last)) => marks.push((i, last)),
                Err(Error::Corrupt(_)) => bad.push(i),
                Err(e) => return Err(e),
            }
        }
        self.report.bad_chunks += bad.len() as u64;
        let mut what = Vec::new();
        if !bad.is_empty() {
            let shown: Vec<String> = bad.iter().take(8).map(|i| i.to_string()).collect();
            let more = if bad.len() > 8 { ", ..." } else { "" };
            what.push(format!(
                "{} of {slots} chunks failed authentication (chunk {}{more})",
                bad.len(),
                shown.join(", ")
            ));
        }
        let last_ok = marks
            .last()
            .is_some_and(|&(i, last)| last && i + 1 == slots);
        if slots == 0 || (bad.is_empty() && !last_ok) {
            what.push("the file was truncated (its final chunk is missing)".into());
        }
        if marks.iter().any(|&(i, last)| last && i + 1 != slots) {
            what.push("a chunk marked final is followed by more data".into());
        }
        if self.vault.keys().geometry.plain_size(len).is_none() && what.is_empty() {
            what.push("its length is not that of a complete sealfs file".into());
        }
        Ok((!what.is_empty()).then(|| Damage {
            what: what.join("; "),
            salvage: true,
        }))
    }

    /// The `lost+found` directory, made on first use.
    fn lost_found(&mut self) -> Result<&Dir> {
        if self.lost_found.is_none() {
            let root = self.vault.root()?;
            let name = OsStr::new(LOST_FOUND);
            let d = match root.open_subdir(name) {
                Ok(d) => d,
                Err(e) if e.is_not_found() => root.mkdir(name, 0o700)?,
                Err(e) => return Err(e),
            };
            self.lost_found = Some(d);
        }
        Ok(self.lost_found.as_ref().expect("set above"))
    }

    /// A name in lost+found that is free: `base`, `base-2`, ...
    fn free_name(&mut self, base: &str) -> Result<OsString> {
        let lf = self.lost_found()?;
        for n in 1.. {
            let cand = if n == 1 {
                base.to_string()
            } else {
                format!("{base}-{n}")
            };
            match lf.stat(OsStr::new(&cand)) {
                Err(e) if e.is_not_found() => return Ok(cand.into()),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
        unreachable!()
    }

    /// Moves a damaged entry into lost+found (and salvages a file's readable
    /// chunks next to it); returns where it went.
    fn repair(
        &mut self,
        dir: &Dir,
        raw: &OsStr,
        plain: Option<&str>,
        d: &Damage,
        kind: Kind,
    ) -> Result<String> {
        // Short, readable names (at most 100 bytes, so no long-name sidecar).
        let mut base: String = match plain {
            Some(p) => p.replace('/', "_"),
            None => format!("unnamed-{}", &raw.to_string_lossy()),
        };
        while base.len() > 90 {
            base.pop();
        }
        if d.salvage && kind == Kind::File {
            let fd = sys::openat(
                dir.fd(),
                raw.as_bytes(),
                libc::O_RDONLY | libc::O_NONBLOCK,
                0,
            )?;
            let label = dir.entry_label(&raw.to_string_lossy());
            let (f, len) = SealedFile::open_for_check(fd, self.vault.keys(), label)?;
            let name = self.free_name(&format!("{base}.salvaged"))?;
            let lf = self.lost_found()?;
            let (mut out, _) = lf.create_file(&name, 0o600, true)?;
            let cs = self.vault.keys().geometry.chunk_size;
            let size = self.vault.keys().geometry.plain_size_for_stat(len);
            for i in 0..f.chunk_slots(len) {
                if let Ok((plain, _)) = f.check_chunk(i, len) {
                    out.write_at(&plain, i * cs)?;
                } else {
                    // An unreadable chunk stays a run of zeros of its size.
                    let end = ((i + 1) * cs).min(size.max(i * cs));
                    if end > out.size() {
                        out.set_len(end)?;
                    }
                }
            }
            out.sync(false)?;
        }
        let name = self.free_name(&format!("{base}.damaged"))?;
        let lf = self.lost_found()?;
        let dn = lf.disk_name(&name)?;
        sys::renameat2(
            dir.fd(),
            raw.as_bytes(),
            lf.fd(),
            dn.entry().as_bytes(),
            libc::RENAME_NOREPLACE,
        )?;
        Ok(format!("{LOST_FOUND}/{}", name.to_string_lossy()))
    }

    fn check_dir(&mut self, dir: Dir, plain: String, in_lost_found: bool) -> Result<()> {
        self.report.dirs += 1;
        let mut entries = sys::read_dir(dir.fd())?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let names: BTreeSet<OsString> = entries.iter().map(|e| e.name.clone()).collect();
        let mut copies = None;
        for e in entries {
            let raw = e.name.as_os_str();
            let label = dir.entry_label(&raw.to_string_lossy());
            let class = classify(raw.as_bytes(), dir.is_root());
            match class {
                VaultEntry::SyncTool => continue,
                VaultEntry::Internal => {
                    let s = raw.to_string_lossy();
                    if dir.is_root()
                        && is_config_name(&s)
                        && s != CONFIG_FILE
                        && !s.starts_with(&format!("{CONFIG_FILE}.tmp-"))
                    {
                        self.note(label, None, "a sync conflict copy of the config (compare it with sealfs.conf; sealfs uses only sealfs.conf)", false);
                    } else if conflict::dirid_copy_marker(&s).is_some() {
                        self.note(label, None, "a sync tool's copy of the directory-ID file (names sealed under either ID are shown)", false);
                    }
                    continue;
                }
                VaultEntry::Sidecar => {
                    let base = raw
                        .as_bytes()
                        .strip_suffix(SIDECAR_SUFFIX.as_bytes())
                        .unwrap_or(raw.as_bytes());
                    if !names.contains(OsStr::from_bytes(base)) {
                        self.note(label, None, "a long-name sidecar without its entry", false);
                    }
                    continue;
                }
                VaultEntry::Foreign => {
                    self.note(label, None, "not a sealfs entry (left alone)", false);
                    continue;
                }
                VaultEntry::Short(_) | VaultEntry::Long(_) | VaultEntry::Copy(_) => {}
            }
            let st = match sys::fstatat(dir.fd(), raw.as_bytes()) {
                Ok(st) => st,
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(err) => return Err(err.into()),
            };
            let kind = Kind::from_mode(st.st_mode);
            let name = match dir.decode_entry(raw) {
                Ok(n) => Ok(n),
                Err(why) => match dir.entry_name(raw, &mut copies) {
                    Ok(n) => {
                        let p = Some(join(&plain, &n));
                        self.note(label.clone(), p, "a sync tool's conflict copy (or an entry of a copied directory ID), shown under this name", false);
                        Ok(n)
                    }
                    Err(_) if matches!(class, VaultEntry::Copy(_)) => {
                        self.note(label, None, "not a sealfs entry (left alone)", false);
                        continue;
                    }
                    Err(_) => Err(why),
                },
            };
            let plain_path = name.as_ref().ok().map(|n| join(&plain, n));
            let mut damage = name.as_ref().err().map(|why| Damage {
                what: why.to_string(),
                salvage: kind == Kind::File,
            });
            match kind {
                Kind::Dir => {
                    let sub = sys::open_subdir(dir.fd(), raw.as_bytes())
                        .map_err(Error::from)
                        .and_then(|fd| {
                            if let Some(x) = self.check_xattrs(fd.as_fd()) {
                                return Err(Error::Corrupt(x));
                            }
                            Dir::from_fd(fd, self.vault.keys().clone(), label.clone())
                        });
                    match sub {
                        Ok(sub) if damage.is_none() => {
                            let p = plain_path.clone().unwrap_or_default();
                            let lf = in_lost_found || (dir.is_root() && p == LOST_FOUND);
                            self.check_dir(sub, p, lf)?;
                        }
                        Ok(_) => {}
                        Err(Error::Corrupt(x)) if x.starts_with("an extended") => {
                            damage.get_or_insert(Damage {
                                what: x,
                                salvage: false,
                            });
                        }
                        Err(Error::Corrupt(_)) => {
                            damage.get_or_insert(Damage {
                                what: "its directory-ID file is missing or failed authentication"
                                    .into(),
                                salvage: false,
                            });
                        }
                        Err(err) => return Err(err),
                    }
                }
                Kind::File => {
                    self.report.files += 1;
                    if let Some(d) = self.check_file(&dir, raw)? {
                        let salvage = d.salvage && damage.as_ref().is_none_or(|x| x.salvage);
                        damage = Some(Damage {
                            what: match damage {
                                Some(n) => format!("{}; {}", n.what, d.what),
                                None => d.what,
                            },
                            salvage,
                        });
                    }
                    self.tick();
                }
                Kind::Symlink => {
                    self.report.symlinks += 1;
                    let t = sys::readlinkat(dir.fd(), raw.as_bytes())?;
                    if let TargetRef::Stored(h) = target_ref(&t) {
                        self.links.insert(h.to_string());
                    }
                    if self.vault.keys().read_target(&t).is_none() {
                        damage.get_or_insert(Damage {
                            what: "its target failed authentication".into(),
                            salvage: false,
                        });
                    }
                }
                _ => {}
            }
            let Some(d) = damage else { continue };
            let mut f = Finding {
                vault_path: label,
                plain_path: plain_path.clone(),
                what: d.what.clone(),
                damage: !in_lost_found,
                repaired: None,
            };
            if in_lost_found {
                f.what.push_str(" (already in lost+found)");
            } else if maybe_syncing(&f.what) {
                if self.repair {
                    f.what.push_str("; left in place: it may still be syncing");
                }
            } else if self.repair {
                f.repaired = Some(self.repair(&dir, raw, plain_path.as_deref(), &d, kind)?);
            }
            self.report.findings.push(f);
        }
        Ok(())
    }

    /// Notes stored symlink targets no symlink refers to.
    fn check_links(&mut self) -> Result<()> {
        let root = self.vault.root_fd();
        let Ok(fd) = sys::open_subdir(root, LINKS_DIR.as_bytes()) else {
            return Ok(());
        };
        for e in sys::read_dir(fd.as_fd())? {
            let n = e.name.to_string_lossy().into_owned();
            if !self.links.contains(&n) {
                self.note(
                    format!("{LINKS_DIR}/{n}"),
                    None,
                    "a stored symlink target no symlink uses",
                    false,
                );
            }
        }
        Ok(())
    }
}

/// Checks (and with `repair`, repairs) every entry of `vault`.
pub fn fsck(vault: &Vault, repair: bool, progress: &mut dyn FnMut(u64, u64)) -> Result<Report> {
    let total = count_files(vault.root_fd())?;
    let mut c = Checker {
        vault,
        repair,
        report: Report::default(),
        lost_found: None,
        links: BTreeSet::new(),
        done: 0,
        total,
        progress,
    };
    c.check_dir(vault.root()?, String::new(), false)?;
    c.check_links()?;
    Ok(c.report)
}

//! The entries of a vault directory that do not decrypt as they are: sync
//! tools' conflict copies (an encrypted name plus a marker, see
//! `format::conflict`), and entries sealed under another directory ID (both
//! devices made the folder under different IDs and the ID file itself got a
//! conflict copy). Each gets a *shown* name, unique in the directory, and
//! this index maps between shown names and vault names.
//!
//! An index is built from one listing of the vault directory and cached per
//! directory. It is used again while the directory is unchanged (its
//! modification and change times, size and link count, as `stat` gives
//! them), and for at most `STALE_FOR` after it changed, so a busy directory
//! is not listed again on every miss; a listing that meets a copy the index
//! does not know rebuilds it at once. As in git's index, a build in the same
//! clock tick as the directory's last change is fresh only within that tick.
//! The daemon's own changes move a current index on to the new stamp
//! (`OwnChange`), so a busy directory is not listed again for each of them.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::Result;
use crate::format::conflict::{self, BaseKind};
use crate::format::dirid::{DIRID_FILE_LEN, DirId};
use crate::format::names::{VaultEntry, classify, hashed_long_name, sidecar_of, valid_plain_name};

use super::dir::Dir;
use super::sys;
use crate::vault::sys::Stat;

/// How long an index of a changed directory may still answer lookups.
pub(crate) const STALE_FOR: Duration = Duration::from_millis(500);
/// How long an index built in its directory's last clock tick is trusted.
const RACY: Duration = Duration::from_millis(50);
/// Other directory IDs tried per directory (each costs a decryption per name).
const MAX_ALTS: usize = 16;
/// Directories whose index is kept; past it the cache starts over.
const CACHED_DIRS: usize = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp([i64; 6]);

impl Stamp {
    fn of(st: &Stat) -> Stamp {
        Stamp([
            st.st_mtime,
            st.st_mtime_nsec,
            st.st_ctime,
            st.st_ctime_nsec,
            st.st_size,
            st.st_nlink as i64,
        ])
    }
}

pub(crate) struct Index {
    /// The directory's stamp this index is current for, and whether it was
    /// built in the clock tick of the directory's last change (racy).
    stamp: Mutex<(Stamp, bool)>,
    built: Instant,
    by_shown: HashMap<Vec<u8>, String>,
    by_raw: HashMap<String, Vec<u8>>,
    /// Vault names found not to be entries (so a listing does not rebuild for them).
    failed: Mutex<HashSet<String>>,
}

impl Index {
    /// The vault name shown as `name`.
    pub fn raw_of(&self, name: &[u8]) -> Option<&str> {
        self.by_shown.get(name).map(String::as_str)
    }

    /// The shown name of vault name `raw`.
    pub fn shown_of(&self, raw: &str) -> Option<&[u8]> {
        self.by_raw.get(raw).map(Vec::as_slice)
    }

    /// Whether this index is current for a directory with stamp `st`.
    fn current(&self, st: Stamp) -> bool {
        let (stamp, racy) = *super::lock(&self.stamp);
        // A racy index may have missed a change in its own clock tick: it
        // counts as current only for that tick, then is rebuilt once.
        stamp == st && (!racy || self.built.elapsed() < RACY)
    }

    /// Vault names of the copies shown here.
    pub fn copies(&self) -> impl Iterator<Item = &str> {
        self.by_raw.keys().map(String::as_str)
    }

    fn knows(&self, raw: &str) -> bool {
        self.by_raw.contains_key(raw) || super::lock(&self.failed).contains(raw)
    }

    fn fail(&self, raw: &str) {
        super::lock(&self.failed).insert(raw.to_string());
    }
}

/// A directory: its device, inode and the start of its ID.
type Key = (u64, u64, [u8; 8]);

fn key_of(st: &Stat, dir: &Dir) -> Key {
    let mut id = [0u8; 8];
    id.copy_from_slice(&dir.id().0[..8]);
    (st.st_dev, st.st_ino, id)
}

fn cache() -> &'static Mutex<HashMap<Key, Arc<Index>>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Arc<Index>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The index of `dir`: cached (see the module docs), or built now; `fresh`
/// forces a rebuild unless the directory is unchanged since the last one.
pub(crate) fn index(dir: &Dir, fresh: bool) -> Result<Arc<Index>> {
    let st = sys::fstat(dir.fd())?;
    let key = key_of(&st, dir);
    let stamp = Stamp::of(&st);
    if let Some(ix) = super::lock(cache()).get(&key).cloned() {
        if ix.current(stamp) || (!fresh && ix.built.elapsed() < STALE_FOR) {
            return Ok(ix);
        }
    }
    let ix = Arc::new(build(dir, &st)?);
    let mut c = super::lock(cache());
    if c.len() >= CACHED_DIRS {
        c.clear();
    }
    c.insert(key, ix.clone());
    Ok(ix)
}

/// Held while this process changes a directory. The daemon's own changes
/// never make a copy, so an index that was current before one stays current
/// after it (without this, every create in a busy directory would list it
/// again). `done` moves the index on to the directory's new stamp; dropping
/// the guard does too.
pub(crate) struct OwnChange<'a> {
    dir: &'a Dir,
    /// The cache key and the stamp the index is current for.
    was: Option<(Key, Stamp)>,
}

pub(crate) fn own_change(dir: &Dir) -> OwnChange<'_> {
    let was = sys::fstat(dir.fd()).ok().and_then(|st| {
        let (key, stamp) = (key_of(&st, dir), Stamp::of(&st));
        let c = super::lock(cache());
        c.get(&key)
            .filter(|ix| ix.current(stamp))
            .map(|_| (key, stamp))
    });
    OwnChange { dir, was }
}

impl OwnChange<'_> {
    pub(crate) fn done(&mut self) {
        let Some((key, old)) = self.was.take() else {
            return;
        };
        let Ok(st) = sys::fstat(self.dir.fd()) else {
            return;
        };
        let new = Stamp::of(&st);
        if let Some(ix) = super::lock(cache()).get(&key) {
            let mut s = super::lock(&ix.stamp);
            if s.0 == old {
                *s = (new, false);
                self.was = Some((key, new));
            }
        }
    }
}

impl Drop for OwnChange<'_> {
    fn drop(&mut self) {
        self.done();
    }
}

/// The shown name of the vault entry `raw` that does not decrypt as it is,
/// through `ix`, an index current when a listing first needs it (so shown
/// names are unique in what it lists), rebuilt once more if it does not
/// know `raw`; `None`: not a sealfs entry after all.
pub(crate) fn shown(dir: &Dir, raw: &str, ix: &mut Option<Arc<Index>>) -> Option<Vec<u8>> {
    if ix.is_none() {
        *ix = index(dir, true).ok();
    }
    let known = ix.as_ref()?.knows(raw);
    if !known {
        *ix = index(dir, true).ok();
    }
    let i = ix.as_ref()?;
    let s = i.shown_of(raw).map(<[u8]>::to_vec);
    if s.is_none() {
        i.fail(raw);
    }
    s
}

/// Whether a plaintext name has the shape of a copy's shown name:
/// `stem (label)` before an extension.
pub(crate) fn looks_shown(name: &[u8]) -> bool {
    let open = name.windows(2).position(|w| w == b" (");
    open.is_some_and(|i| name[i..].contains(&b')'))
}

/// Whether the clock has left the tick of time `(sec, nsec)`.
fn settled(sec: i64, nsec: i64) -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let t = Duration::new(sec.max(0) as u64, nsec.clamp(0, 999_999_999) as u32);
    now > t + RACY
}

/// One entry that needs a shown name.
struct Found {
    raw: String,
    plain: Vec<u8>,
    label: String,
    /// Sealed under another directory ID with no marker: shown under its
    /// own name when that is free.
    plain_first: bool,
}

fn build(dir: &Dir, st: &Stat) -> Result<Index> {
    let racy = !settled(st.st_ctime, st.st_ctime_nsec) || !settled(st.st_mtime, st.st_mtime_nsec);
    let built = Instant::now();
    let raws = sys::read_dir(dir.fd())?;
    let keys = dir.keys().clone();
    let mut alts: Vec<(DirId, String)> = Vec::new();
    // Full encodings of long names, from copies of their sidecars.
    let mut sidecars: HashMap<String, String> = HashMap::new();
    for r in &raws {
        let Some(name) = r.name.to_str() else {
            continue;
        };
        if let Some(m) = conflict::dirid_copy_marker(name) {
            let id = sys::read_small_file(dir.fd(), name.as_bytes(), DIRID_FILE_LEN)
                .ok()
                .and_then(|b| DirId::decode(&b, &keys.dirid_mac));
            if let Some(id) = id {
                if id != *dir.id() && alts.len() < MAX_ALTS && !alts.iter().any(|(a, _)| *a == id) {
                    alts.push((id, conflict::label(m)));
                }
            }
        } else if let Some(s) = conflict::splits(name).first() {
            if s.kind == BaseKind::Sidecar {
                if let Ok(v) = sys::read_small_file(dir.fd(), name.as_bytes(), 8192) {
                    if let Ok(full) = String::from_utf8(v) {
                        if hashed_long_name(&full) == s.base {
                            sidecars.insert(s.base.to_string(), full);
                        }
                    }
                }
            }
        }
    }
    let full_of = |base: &str, kind: BaseKind| -> Option<String> {
        match kind {
            BaseKind::Short => Some(base.to_string()),
            BaseKind::Long => sys::read_small_file(dir.fd(), sidecar_of(base).as_bytes(), 8192)
                .ok()
                .and_then(|v| String::from_utf8(v).ok())
                .filter(|f| hashed_long_name(f) == base)
                .or_else(|| sidecars.get(base).cloned()),
            BaseKind::Sidecar => None,
        }
    };
    // Decrypts under this directory's naming, then under its other IDs:
    // the plaintext name and, for another ID, that ID's label.
    let open = |full: &str| -> Option<(Vec<u8>, Option<&str>)> {
        if let Some((n, _)) = dir.decode_full(full) {
            return Some((n, None));
        }
        alts.iter().find_map(|(id, label)| {
            keys.names
                .decode(id, full.as_bytes())
                .map(|n| (n, Some(label.as_str())))
        })
    };
    let mut found = Vec::new();
    for r in &raws {
        let Some(name) = r.name.to_str() else {
            continue;
        };
        let class = classify(name.as_bytes(), dir.is_root());
        // (kind, whether a name that decrypts under this directory's own ID
        // still needs the index: a long name whose sidecar is missing).
        let whole = match class {
            VaultEntry::Short(_) => {
                let suspicious = conflict::splits(name)
                    .iter()
                    .any(|s| s.marker.starts_with(['-', '_']));
                if alts.is_empty() && !suspicious {
                    continue;
                }
                Some((BaseKind::Short, false))
            }
            VaultEntry::Long(h) => {
                if alts.is_empty() && !sidecars.contains_key(h) {
                    continue;
                }
                let own = sys::fstatat(dir.fd(), sidecar_of(h).as_bytes()).is_ok();
                if alts.is_empty() && own {
                    continue;
                }
                Some((BaseKind::Long, !own))
            }
            VaultEntry::Copy(_) => None,
            _ => continue,
        };
        // The name as it is (another directory ID, a sidecar from a copy).
        if let Some((kind, needs_index)) = whole {
            if let Some((plain, id_label)) = full_of(name, kind).and_then(|f| open(&f)) {
                if id_label.is_none() && !needs_index {
                    // A normal entry of this directory.
                    continue;
                }
                found.push(Found {
                    raw: name.to_string(),
                    plain,
                    label: id_label.unwrap_or("copy").to_string(),
                    plain_first: true,
                });
                continue;
            }
        }
        // An encrypted name plus a marker.
        for s in conflict::splits(name) {
            if s.kind == BaseKind::Sidecar {
                continue;
            }
            if let Some((plain, _)) = full_of(s.base, s.kind).and_then(|f| open(&f)) {
                found.push(Found {
                    raw: name.to_string(),
                    plain,
                    label: conflict::label(s.marker),
                    plain_first: false,
                });
                break;
            }
        }
    }
    // Each copy's preferred name: untagged, and not an entry as it is. Two
    // copies that prefer one name both get tagged, so a name never passes
    // from one copy to another as copies come and go.
    let prefs: Vec<Option<Vec<u8>>> = found
        .iter()
        .map(|f| {
            let mut untagged = Vec::with_capacity(2);
            if f.plain_first {
                untagged.push(f.plain.clone());
            }
            untagged.push(conflict::shown_name(
                &f.plain,
                &f.label,
                &conflict::tag(&f.raw, 6),
                false,
            ));
            untagged.into_iter().find(|o| !exists(dir, o, &f.raw))
        })
        .collect();
    let mut wanted: HashMap<&[u8], usize> = HashMap::new();
    for p in prefs.iter().flatten() {
        *wanted.entry(p.as_slice()).or_default() += 1;
    }
    let mut by_shown = HashMap::new();
    let mut by_raw = HashMap::new();
    let mut tagged = Vec::new();
    for (f, p) in found.iter().zip(&prefs) {
        match p {
            Some(p) if wanted[p.as_slice()] == 1 => {
                by_shown.insert(p.clone(), f.raw.clone());
                by_raw.insert(f.raw.clone(), p.clone());
            }
            _ => tagged.push(f),
        }
    }
    for f in tagged {
        let pick = [6, 24]
            .into_iter()
            .map(|n| conflict::shown_name(&f.plain, &f.label, &conflict::tag(&f.raw, n), true))
            .find(|o| !by_shown.contains_key(o) && !exists(dir, o, &f.raw));
        if let Some(pick) = pick {
            by_shown.insert(pick.clone(), f.raw.clone());
            by_raw.insert(f.raw.clone(), pick);
        }
    }
    Ok(Index {
        stamp: Mutex::new((Stamp::of(st), racy)),
        built,
        by_shown,
        by_raw,
        failed: Mutex::new(HashSet::new()),
    })
}

/// Whether plaintext `name` is an entry of `dir` as it is, other than
/// the vault entry `raw` itself.
fn exists(dir: &Dir, name: &[u8], raw: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    valid_plain_name(name).is_err()
        || dir.disk_name(OsStr::from_bytes(name)).is_ok_and(|dn| {
            dn.entry() != raw && sys::fstatat(dir.fd(), dn.entry().as_bytes()).is_ok()
        })
}

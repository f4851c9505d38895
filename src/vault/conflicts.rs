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
//! clock tick as the directory's last change does not count as fresh.

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

/// How long an index of a changed directory may still answer lookups.
pub(crate) const STALE_FOR: Duration = Duration::from_millis(500);
/// Directories whose index is kept; past it the cache starts over.
const CACHED_DIRS: usize = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp([i64; 6]);

impl Stamp {
    fn of(st: &libc::stat) -> Stamp {
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
    stamp: Stamp,
    /// Built in the clock tick of the directory's last change.
    racy: bool,
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

    fn knows(&self, raw: &str) -> bool {
        self.by_raw.contains_key(raw) || super::lock(&self.failed).contains(raw)
    }

    fn fail(&self, raw: &str) {
        super::lock(&self.failed).insert(raw.to_string());
    }
}

type Key = (u64, u64);

fn cache() -> &'static Mutex<HashMap<Key, Arc<Index>>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Arc<Index>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The index of `dir`: cached (see the module docs), or built now; `fresh`
/// forces a rebuild unless the directory is unchanged since the last one.
pub(crate) fn index(dir: &Dir, fresh: bool) -> Result<Arc<Index>> {
    let st = sys::fstat(dir.fd())?;
    let key = (st.st_dev, st.st_ino);
    let stamp = Stamp::of(&st);
    if let Some(ix) = super::lock(cache()).get(&key).cloned() {
        let unchanged = ix.stamp == stamp && !ix.racy;
        if unchanged || (!fresh && ix.built.elapsed() < STALE_FOR) {
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

/// The shown name of the vault entry `raw` that does not decrypt as it is,
/// through `ix` (rebuilt once when it does not know `raw`); `None`: not a
/// sealfs entry after all.
pub(crate) fn shown(dir: &Dir, raw: &str, ix: &mut Option<Arc<Index>>) -> Option<Vec<u8>> {
    if ix.is_none() {
        *ix = index(dir, false).ok();
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
    now > t + Duration::from_millis(50)
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

fn build(dir: &Dir, st: &libc::stat) -> Result<Index> {
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
                if id != *dir.id() && !alts.iter().any(|(a, _)| *a == id) {
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
        let whole = match class {
            VaultEntry::Short(_) => {
                let suspicious = conflict::splits(name)
                    .iter()
                    .any(|s| s.marker.starts_with(['-', '_']));
                if alts.is_empty() && !suspicious {
                    continue;
                }
                Some(BaseKind::Short)
            }
            VaultEntry::Long(h) => {
                let own = sys::fstatat(dir.fd(), sidecar_of(h).as_bytes()).is_ok();
                if alts.is_empty() && (own || !sidecars.contains_key(h)) {
                    continue;
                }
                Some(BaseKind::Long)
            }
            VaultEntry::Copy(_) => None,
            _ => continue,
        };
        // The name as it is (another directory ID, a sidecar from a copy).
        if let Some(kind) = whole {
            if let Some((plain, id_label)) = full_of(name, kind).and_then(|f| open(&f)) {
                match id_label {
                    // Decrypts under this directory's own ID: a normal entry.
                    None if kind == BaseKind::Short => continue,
                    _ => {
                        found.push(Found {
                            raw: name.to_string(),
                            plain,
                            label: id_label.unwrap_or("copy").to_string(),
                            plain_first: true,
                        });
                        continue;
                    }
                }
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
    found.sort_by(|a, b| a.raw.cmp(&b.raw));
    let mut by_shown = HashMap::new();
    let mut by_raw = HashMap::new();
    for f in found {
        let t = conflict::tag(&f.raw, 6);
        let mut options = Vec::with_capacity(4);
        if f.plain_first {
            options.push(f.plain.clone());
        }
        options.push(conflict::shown_name(&f.plain, &f.label, &t, false));
        options.push(conflict::shown_name(&f.plain, &f.label, &t, true));
        options.push(conflict::shown_name(
            &f.plain,
            &f.label,
            &conflict::tag(&f.raw, 24),
            true,
        ));
        let last = options.len() - 1;
        let pick = options
            .into_iter()
            .enumerate()
            .find(|(i, o)| *i == last || (!by_shown.contains_key(o) && !exists(dir, o)))
            .map(|(_, o)| o)
            .unwrap_or_default();
        by_shown.insert(pick.clone(), f.raw.clone());
        by_raw.insert(f.raw, pick);
    }
    Ok(Index {
        stamp: Stamp::of(st),
        racy,
        built,
        by_shown,
        by_raw,
        failed: Mutex::new(HashSet::new()),
    })
}

/// Whether plaintext `name` is an entry of `dir` as it is.
fn exists(dir: &Dir, name: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    valid_plain_name(name).is_err()
        || dir
            .disk_name(OsStr::from_bytes(name))
            .is_ok_and(|dn| sys::fstatat(dir.fd(), dn.entry().as_bytes()).is_ok())
}

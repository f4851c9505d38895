//! Sync tools' copies of vault entries: how their names are built from an
//! encrypted name, and how sealfs shows them.
//!
//! A sync tool that finds both devices changed one file keeps both: the
//! losing version gets the original name plus a marker, put before the last
//! dot of the name (encrypted names have no dot, so there the marker ends the
//! name):
//!
//! ```text
//! Dropbox      X (Alice's conflicted copy 2026-11-30)
//! Syncthing    X.sync-conflict-20261130-101500-ABCDEFG
//! Nextcloud    X (conflicted copy 2026-11-30 101500)
//! ownCloud     X_conflict-20261130-101500
//! OneDrive     X-LAPTOP
//! Google Drive X (1)
//! ```
//!
//! This module finds the ways a name can split into an encrypted name and a
//! marker (`splits`); whether a split is real is decided by decrypting the
//! encrypted part (`vault::conflicts`), never by the pattern alone: a OneDrive
//! marker such as `-LAPTOP` is itself valid base64url.
//!
//! A copy is shown as a sibling of the original, the marker turned into a
//! readable label before the plaintext name's extension:
//! `notes (sync-conflict 20261130-101500 ABCDEFG).txt`,
//! `notes (Alice's conflicted copy 2026-11-30).txt`,
//! `notes (conflicted copy LAPTOP).txt`. A shown name that is taken or too
//! long gets a tag from the hash of its vault name (`shown_name`).

use super::base64url::is_alphabet;
use super::dirid::DIRID_FILE;
use super::names::{LONG_PREFIX, MAX_PLAIN_NAME, SIDECAR_SUFFIX};

/// One example marker of each tool above, and the label it is shown with.
pub const EXAMPLES: &[(&str, &str, &str)] = &[
    (
        "Dropbox",
        " (Alice's conflicted copy 2026-11-30)",
        "Alice's conflicted copy 2026-11-30",
    ),
    (
        "Syncthing",
        ".sync-conflict-20261130-101500-ABCDEFG",
        "sync-conflict 20261130-101500 ABCDEFG",
    ),
    (
        "Nextcloud",
        " (conflicted copy 2026-11-30 101500)",
        "conflicted copy 2026-11-30 101500",
    ),
    (
        "ownCloud",
        "_conflict-20261130-101500",
        "conflict 20261130-101500",
    ),
    ("OneDrive", "-LAPTOP", "conflicted copy LAPTOP"),
    ("Google Drive", " (1)", "conflicted copy 1"),
];

/// What the encrypted part of a split names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaseKind {
    /// A short encrypted name: `base` is the full encoding.
    Short,
    /// A hashed long name (`~` and 43 characters): the entry itself.
    Long,
    /// A copy of a long name's sidecar (`~h<marker>.name`): not an entry.
    Sidecar,
}

/// One way to read a vault name as an encrypted name plus a marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split<'a> {
    pub base: &'a str,
    pub marker: &'a str,
    pub kind: BaseKind,
}

/// Whether `len` is the length of a short name encoding: base64url (no
/// padding) of a 16-byte multiple of at least 16 bytes plus a 16-byte tag.
pub fn is_encoding_len(len: usize) -> bool {
    let n = len * 3 / 4;
    n >= 32 && n % 16 == 0 && (4 * n).div_ceil(3) == len
}

/// The ways `raw` can be an encrypted name plus a non-empty marker, longest
/// encrypted part first.
pub fn splits(raw: &str) -> Vec<Split<'_>> {
    let b = raw.as_bytes();
    let mut out = Vec::new();
    if let Some(rest) = raw.strip_prefix(LONG_PREFIX) {
        if rest.len() > 43 && rest.as_bytes()[..43].iter().all(|&c| is_alphabet(c)) {
            let (base, marker) = raw.split_at(44);
            match marker.strip_suffix(SIDECAR_SUFFIX) {
                Some(m) if !m.is_empty() => out.push(Split {
                    base,
                    marker: m,
                    kind: BaseKind::Sidecar,
                }),
                Some(_) => {}
                None => out.push(Split {
                    base,
                    marker,
                    kind: BaseKind::Long,
                }),
            }
        }
        return out;
    }
    let run = b.iter().take_while(|&&c| is_alphabet(c)).count();
    for len in (43..=run.min(b.len().saturating_sub(1))).rev() {
        if is_encoding_len(len) {
            let (base, marker) = raw.split_at(len);
            out.push(Split {
                base,
                marker,
                kind: BaseKind::Short,
            });
        }
    }
    out
}

/// The marker of a copy of a directory-ID file (`.sealfs<marker>.dir`, or a
/// marker after the whole name); `None` for anything else.
pub fn dirid_copy_marker(raw: &str) -> Option<&str> {
    if raw == DIRID_FILE || raw.starts_with(".sealfs.tmp.") || raw == ".sealfs.dir.next" {
        return None;
    }
    if let Some(m) = raw.strip_prefix(DIRID_FILE) {
        return (!m.starts_with(".next")).then_some(m);
    }
    let m = raw.strip_prefix(".sealfs")?.strip_suffix(".dir")?;
    (!m.is_empty()).then_some(m)
}

/// A readable label for a marker (see the module docs).
pub fn label(marker: &str) -> String {
    if let Some(rest) = marker.strip_prefix(".sync-conflict-") {
        // YYYYMMDD-HHMMSS-DEVICE
        let p: Vec<&str> = rest.splitn(3, '-').collect();
        return match p.as_slice() {
            [d, t, dev] => format!("sync-conflict {d}-{t} {dev}"),
            _ => format!("sync-conflict {rest}"),
        };
    }
    if let Some(inner) = marker.strip_prefix(" (").and_then(|m| m.strip_suffix(')')) {
        if inner.to_ascii_lowercase().contains("conflict") {
            return inner.to_string();
        }
        if !inner.is_empty() && inner.bytes().all(|c| c.is_ascii_digit()) {
            return format!("conflicted copy {inner}");
        }
    }
    if let Some(rest) = marker.strip_prefix("_conflict-") {
        return format!("conflict {rest}");
    }
    if let Some(host) = marker.strip_prefix('-') {
        if !host.is_empty() && host.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
            return format!("conflicted copy {host}");
        }
    }
    let t = marker.trim_matches(|c: char| !c.is_alphanumeric());
    if t.is_empty() {
        "copy".to_string()
    } else {
        format!("copy {t}")
    }
}

/// A short tag that tells copies apart: hex of the hash of the vault name.
pub fn tag(raw: &str, len: usize) -> String {
    let h = blake3::hash(raw.as_bytes());
    h.to_hex()[..len].to_string()
}

/// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
fn cut(s: &[u8], max: usize) -> &[u8] {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && (s[end] & 0xc0) == 0x80 {
        end -= 1;
    }
    &s[..end]
}

/// The name a copy is shown under: `stem (label[ tag]).ext` for plaintext
/// name `plain`, the tag only `with_tag`, within NAME_MAX (the stem, then the
/// label, shortened; a shortened name always carries the tag).
pub fn shown_name(plain: &[u8], label: &str, tag: &str, with_tag: bool) -> Vec<u8> {
    let dot = plain
        .iter()
        .rposition(|&c| c == b'.')
        .filter(|&i| i > 0 && i + 1 < plain.len() && plain.len() - i <= 32);
    let (stem, ext) = match dot {
        Some(i) => plain.split_at(i),
        None => (plain, &b""[..]),
    };
    let build = |stem: &[u8], label: &[u8], tag: Option<&str>| {
        let mut v = Vec::with_capacity(MAX_PLAIN_NAME);
        v.extend_from_slice(stem);
        v.extend_from_slice(b" (");
        v.extend_from_slice(label);
        if let Some(t) = tag {
            v.push(b' ');
            v.extend_from_slice(t.as_bytes());
        }
        v.push(b')');
        v.extend_from_slice(ext);
        v
    };
    let full = build(stem, label.as_bytes(), with_tag.then_some(tag));
    if full.len() <= MAX_PLAIN_NAME {
        return full;
    }
    let label = cut(label.as_bytes(), 64);
    let fixed = 2 + label.len() + 1 + tag.len() + 1 + ext.len();
    build(cut(stem, MAX_PLAIN_NAME - fixed), label, Some(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    const E43: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn encoding_lengths() {
        let lens: Vec<usize> = (1..260).filter(|&l| is_encoding_len(l)).collect();
        assert_eq!(lens, [43, 64, 86, 107, 128, 150, 171, 192, 214, 235, 256]);
        for n in (32..=272).step_by(16) {
            assert!(is_encoding_len(
                super::super::base64url::encode(&vec![0; n]).len()
            ));
        }
    }

    #[test]
    fn every_tool_marker_splits_off() {
        for &(_, marker, shown) in EXAMPLES {
            assert_eq!(label(marker), shown);
            let raw = format!("{E43}{marker}");
            let s = splits(&raw);
            assert!(s.contains(&Split {
                base: E43,
                marker,
                kind: BaseKind::Short
            }));
            let long = format!("~{E43}{marker}");
            assert_eq!(splits(&long)[0].kind, BaseKind::Long);
            assert_eq!(splits(&long)[0].marker, marker);
            let side = format!("~{E43}{marker}.name");
            assert_eq!(splits(&side)[0].kind, BaseKind::Sidecar);
            assert_eq!(splits(&side)[0].marker, marker);
        }
        // A marker of base64url characters offers every encoding length.
        let raw = format!("{E43}{}", "-".repeat(30));
        let s = splits(&raw);
        assert_eq!(s.iter().map(|s| s.base.len()).collect::<Vec<_>>(), [64, 43]);
        assert!(splits(E43).is_empty());
        assert!(splits(&format!("~{E43}")).is_empty());
        assert!(splits(&format!("~{E43}.name")).is_empty());
        assert!(splits("notes.txt").is_empty());
    }

    #[test]
    fn dirid_copies() {
        assert_eq!(
            dirid_copy_marker(".sealfs.sync-conflict-20261130-101500-ABCDEFG.dir"),
            Some(".sync-conflict-20261130-101500-ABCDEFG")
        );
        assert_eq!(
            dirid_copy_marker(".sealfs (Alice's conflicted copy 2026-11-30).dir"),
            Some(" (Alice's conflicted copy 2026-11-30)")
        );
        assert_eq!(dirid_copy_marker(".sealfs-LAPTOP.dir"), Some("-LAPTOP"));
        assert_eq!(dirid_copy_marker(".sealfs.dir (1)"), Some(" (1)"));
        assert_eq!(dirid_copy_marker(".sealfs.dir"), None);
        assert_eq!(dirid_copy_marker(".sealfs.dir.next"), None);
        assert_eq!(dirid_copy_marker(".sealfs.tmp.0123.dir"), None);
    }

    #[test]
    fn labels_are_readable() {
        assert_eq!(
            label(".sync-conflict-20261130-101500-ABCDEFG"),
            "sync-conflict 20261130-101500 ABCDEFG"
        );
        assert_eq!(
            label(" (Alice's conflicted copy 2026-11-30)"),
            "Alice's conflicted copy 2026-11-30"
        );
        assert_eq!(
            label(" (conflicted copy 2026-11-30 101500)"),
            "conflicted copy 2026-11-30 101500"
        );
        assert_eq!(
            label("_conflict-20261130-101500"),
            "conflict 20261130-101500"
        );
        assert_eq!(label("-LAPTOP"), "conflicted copy LAPTOP");
        assert_eq!(label(" (1)"), "conflicted copy 1");
        assert_eq!(label(".orig"), "copy orig");
        assert_eq!(label("~"), "copy");
    }

    #[test]
    fn shown_names_keep_the_extension_and_fit() {
        assert_eq!(
            shown_name(b"notes.txt", "conflicted copy LAPTOP", "abc123", false),
            b"notes (conflicted copy LAPTOP).txt"
        );
        assert_eq!(
            shown_name(b".bashrc", "copy", "abc123", false),
            b".bashrc (copy)"
        );
        assert_eq!(
            shown_name(b"photos", "x", "abc123", true),
            b"photos (x abc123)"
        );
        let long = [b'a'; 250];
        let s = shown_name(
            &long,
            "sync-conflict 20261130-101500 ABCDEFG",
            "abc123",
            false,
        );
        assert!(s.len() <= 255 && s.ends_with(b" abc123)"));
        assert!(s.len() <= 255);
        let mut ext = vec![b'b'; 240];
        ext.extend_from_slice(".jpeg".as_bytes());
        let s = shown_name(&ext, "conflicted copy 1", "abc123", false);
        assert!(
            s.len() <= 255 && s.ends_with(b").jpeg"),
            "{}",
            String::from_utf8_lossy(&s)
        );
        // Never splits a UTF-8 sequence.
        let u = "é".repeat(127);
        let s = shown_name(u.as_bytes(), "conflicted copy 1", "abc123", false);
        assert!(std::str::from_utf8(&s).is_ok() && s.len() <= 255);
    }
}

//! Sync tools' conflict copies and directory-ID conflicts, through the vault
//! library: every tool's name form, for every entry kind, is shown as a
//! readable, writable, renamable and removable plaintext sibling.

mod common;

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use common::*;
use sealfs::format::conflict::{label, shown_name, tag};
use sealfs::vault::{Dir, Kind};

/// Every tool's marker and the label it is shown with.
fn markers() -> impl Iterator<Item = (&'static str, &'static str)> {
    sealfs::format::conflict::EXAMPLES
        .iter()
        .map(|&(_, marker, label)| (marker, label))
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn raw_of(dir: &Dir, plain: &str) -> String {
    dir.disk_name(os(plain)).unwrap().entry().to_string()
}

fn write(dir: &Dir, name: &str, data: &[u8]) {
    let (mut f, _) = dir.create_file(os(name), 0o644, false).unwrap();
    f.set_len(0).unwrap();
    f.write_at(data, 0).unwrap();
    f.sync(false).unwrap();
}

fn read(dir: &Dir, name: &OsStr) -> Vec<u8> {
    let f = dir.open_file(name, false).unwrap();
    f.read_vec(0, 1 << 20).unwrap()
}

fn names(dir: &Dir) -> BTreeSet<OsString> {
    dir.list().unwrap().into_iter().map(|e| e.name).collect()
}

/// Copies a vault entry (file, symlink or directory tree) as a sync tool would.
fn copy_entry(from: &Path, to: &Path) {
    let o = std::process::Command::new("cp")
        .args(["-a", "--no-target-directory"])
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(o.success());
}

fn expected(plain: &str, raw_copy: &str, label: &str) -> OsString {
    OsStr::from_bytes(&shown_name(
        plain.as_bytes(),
        label,
        &tag(raw_copy, 6),
        false,
    ))
    .to_owned()
}

#[test]
fn every_tools_copy_of_every_entry_kind_is_shown_and_readable() {
    let (_t, path, vault) = new_vault(4096);
    let root = vault.root().unwrap();
    let long = format!("{}.txt", "L".repeat(200));
    // The older versions, saved as a sync tool would keep them.
    write(&root, "notes.txt", b"old notes");
    write(&root, &long, b"old long");
    root.mkdir(os("photos"), 0o755).unwrap();
    write(
        &root.open_subdir(os("photos")).unwrap(),
        "a.jpg",
        b"old photo",
    );
    root.symlink(os("link"), b"notes.txt").unwrap();
    let saved = tempfile::tempdir().unwrap();
    let kinds = ["notes.txt", long.as_str(), "photos", "link"];
    for k in kinds {
        copy_entry(
            &path.join(raw_of(&root, k)),
            &saved.path().join(raw_of(&root, k)),
        );
    }
    write(&root, "notes.txt", b"new notes");
    write(&root, &long, b"new long");
    let mut want = names(&root);
    for k in kinds {
        let raw = raw_of(&root, k);
        for (marker, label) in markers() {
            let copy = format!("{raw}{marker}");
            copy_entry(&saved.path().join(&raw), &path.join(&copy));
            want.insert(expected(k, &copy, label));
        }
    }
    let vault = reopen(&path);
    let root = vault.root().unwrap();
    assert_eq!(names(&root), want);
    for (marker, label) in markers() {
        let shown = |k: &str| expected(k, &format!("{}{marker}", raw_of(&root, k)), label);
        assert_eq!(read(&root, &shown("notes.txt")), b"old notes", "{marker}");
        assert_eq!(read(&root, &shown(&long)), b"old long", "{marker}");
        let photos = root.open_subdir(&shown("photos")).unwrap();
        assert_eq!(read(&photos, os("a.jpg")), b"old photo", "{marker}");
        assert_eq!(root.readlink(&shown("link")).unwrap(), b"notes.txt");
        assert_eq!(
            Kind::from_mode(root.stat(&shown("photos")).unwrap().st_mode),
            Kind::Dir
        );
    }
    assert_eq!(read(&root, os("notes.txt")), b"new notes");
    assert_eq!(read(&root, os(&long)), b"new long");
}

#[test]
fn a_marker_of_base64url_characters_is_found_by_decryption() {
    let (_t, path, vault) = new_vault(4096);
    let root = vault.root().unwrap();
    write(&root, "report.odt", b"mine");
    let raw = raw_of(&root, "report.odt");
    // 43 + 21 = 64 characters: itself the length of a valid encoding.
    for marker in ["-DESKTOP0123456789ABC", "-PC", "_conflict-20261130-101500"] {
        let copy = format!("{raw}{marker}");
        std::fs::copy(path.join(&raw), path.join(&copy)).unwrap();
        let shown = expected("report.odt", &copy, &label(marker));
        assert!(
            names(&root).contains(&shown),
            "{marker}: {:?}",
            names(&root)
        );
        assert_eq!(read(&root, &shown), b"mine");
    }
}

#[test]
fn shown_names_never_collide_and_never_hide_an_entry() {
    let (_t, path, vault) = new_vault(4096);
    let root = vault.root().unwrap();
    write(&root, "notes.txt", b"original");
    write(&root, "notes (conflicted copy 1).txt", b"a real file");
    let raw = raw_of(&root, "notes.txt");
    // Google Drive's " (1)" and OneDrive's "-1" both read "conflicted copy 1".
    for marker in [" (1)", "-1"] {
        std::fs::copy(path.join(&raw), path.join(format!("{raw}{marker}"))).unwrap();
    }
    let listed = names(&root);
    assert_eq!(listed.len(), 4, "{listed:?}");
    // Two copies that want one name both get a tag: neither takes it.
    root.unlink(os("notes (conflicted copy 1).txt")).unwrap();
    let listed = names(&root);
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(!listed.contains(os("notes (conflicted copy 1).txt")));
    write(&root, "notes (conflicted copy 1).txt", b"a real file");
    let listed = names(&root);
    assert!(listed.contains(os("notes (conflicted copy 1).txt")));
    assert_eq!(
        read(&root, os("notes (conflicted copy 1).txt")),
        b"a real file"
    );
    for n in &listed {
        let s = n.to_string_lossy();
        assert!(s.len() <= 255);
        if s != "notes (conflicted copy 1).txt" && s != "notes.txt" {
            assert!(
                s.starts_with("notes (conflicted copy 1 ") && s.ends_with(").txt"),
                "{s}"
            );
            assert_eq!(read(&root, n), b"original");
        }
    }
}

#[test]
fn a_copy_is_writable_renamable_and_removable() {
    let (_t, path, vault) = new_vault(4096);
    let root = vault.root().unwrap();
    write(&root, "a.txt", b"version one");
    let raw = raw_of(&root, "a.txt");
    let copy = format!("{raw}.sync-conflict-20261130-101500-ABCDEFG");
    std::fs::copy(path.join(&raw), path.join(&copy)).unwrap();
    let shown = expected(
        "a.txt",
        &copy,
        &label(".sync-conflict-20261130-101500-ABCDEFG"),
    );
    {
        let mut f = root.open_file(&shown, true).unwrap();
        f.write_at(b" and more", 11).unwrap();
    }
    assert_eq!(read(&root, &shown), b"version one and more");
    // A rename gives it a proper encrypted name.
    root.rename(&shown, &root, os("b.txt"), 0).unwrap();
    assert!(!path.join(&copy).exists());
    assert!(path.join(raw_of(&root, "b.txt")).exists());
    assert_eq!(read(&root, os("b.txt")), b"version one and more");
    assert_eq!(
        names(&root),
        [os("a.txt"), os("b.txt")].map(OsString::from).into()
    );
    // Removal removes the copy only.
    std::fs::copy(path.join(&raw), path.join(&copy)).unwrap();
    root.unlink(&shown).unwrap();
    assert!(!path.join(&copy).exists() && path.join(&raw).exists());
    // A copy of a directory is removed like one.
    root.mkdir(os("d"), 0o755).unwrap();
    let draw = raw_of(&root, "d");
    let dcopy = format!("{draw} (1)");
    copy_entry(&path.join(&draw), &path.join(&dcopy));
    root.rmdir(&expected("d", &dcopy, "conflicted copy 1"))
        .unwrap();
    assert!(!path.join(&dcopy).exists() && path.join(&draw).exists());
}

#[test]
fn a_long_names_copy_outlives_the_original_and_uses_a_sidecar_copy() {
    let (_t, path, vault) = new_vault(4096);
    let root = vault.root().unwrap();
    let long = "x".repeat(220);
    write(&root, &long, b"long one");
    let raw = raw_of(&root, &long);
    assert!(raw.starts_with('~'));
    let copy = format!("{raw}-LAPTOP");
    std::fs::copy(path.join(&raw), path.join(&copy)).unwrap();
    // Removing the original keeps the sidecar the copy reads its name from.
    root.unlink(os(&long)).unwrap();
    let shown = expected(&long, &copy, "conflicted copy LAPTOP");
    assert_eq!(names(&root), BTreeSet::from([shown.clone()]));
    assert_eq!(read(&root, &shown), b"long one");
    // Only a conflict copy of the sidecar arrived: the entry still reads.
    write(&root, &long, b"again");
    root.unlink(&shown).unwrap();
    std::fs::rename(
        path.join(format!("{raw}.name")),
        path.join(format!("{raw}.sync-conflict-20261130-101500-ABCDEFG.name")),
    )
    .unwrap();
    let vault = reopen(&path);
    let root = vault.root().unwrap();
    let listed = names(&root);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let n = listed.into_iter().next().unwrap();
    assert_eq!(n, OsString::from(&long), "shown under its own name");
    assert_eq!(read(&root, &n), b"again");
}

/// Both devices made folder `b`, under different directory IDs (one of them
/// was created as `a` and renamed); the sync tool merged the two folders and
/// kept the losing ID file as a conflict copy.
#[test]
fn a_directory_id_conflict_leaves_every_name_readable() {
    let (_t, path, vault) = new_vault(4096);
    let root = vault.root().unwrap();
    let other = root.mkdir(os("b"), 0o755).unwrap();
    write(&other, "x.txt", b"x from device two");
    write(&other, "z.txt", b"z from device two");
    root.rename(os("b"), &root, os("b-elsewhere"), 0).unwrap();
    let mine = root.mkdir(os("a"), 0o755).unwrap();
    write(&mine, "x.txt", b"x from device one");
    write(&mine, "y.txt", b"y from device one");
    root.rename(os("a"), &root, os("b"), 0).unwrap();
    let (into, from) = (
        path.join(raw_of(&root, "b")),
        path.join(raw_of(&root, "b-elsewhere")),
    );
    for e in std::fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        let n = e.file_name();
        let to = if n == ".sealfs.dir" {
            OsString::from(".sealfs.sync-conflict-20261130-101500-ABCDEFG.dir")
        } else {
            n
        };
        std::fs::rename(e.path(), into.join(to)).unwrap();
    }
    std::fs::remove_dir(&from).unwrap();
    let vault = reopen(&path);
    let b = vault.root().unwrap().open_subdir(os("b")).unwrap();
    let listed = names(&b);
    let clash = OsString::from("x (sync-conflict 20261130-101500 ABCDEFG).txt");
    assert_eq!(
        listed,
        [os("x.txt"), os("y.txt"), os("z.txt"), &clash]
            .map(OsString::from)
            .into(),
    );
    assert_eq!(read(&b, os("x.txt")), b"x from device one");
    assert_eq!(read(&b, os("y.txt")), b"y from device one");
    assert_eq!(read(&b, os("z.txt")), b"z from device two");
    assert_eq!(read(&b, &clash), b"x from device two");
    // New entries go under the directory's own ID; old ones can be renamed.
    b.rename(os("z.txt"), &b, os("z2.txt"), 0).unwrap();
    assert_eq!(read(&b, os("z2.txt")), b"z from device two");
    // A long name of the directory's own ID is an ordinary entry: no alias.
    let long = format!("{}.txt", "L".repeat(200));
    write(&b, &long, b"long");
    assert_eq!(names(&b).len(), 5);
    assert!(
        b.stat(os(&format!("{} (copy).txt", "L".repeat(200))))
            .is_err()
    );
    assert_eq!(read(&b, os(&long)), b"long");
}

#[test]
fn renaming_onto_a_copy_replaces_it_and_takes_a_proper_name() {
    let (_t, path, vault) = new_vault(4096);
    let root = vault.root().unwrap();
    write(&root, "a.txt", b"original");
    let raw = raw_of(&root, "a.txt");
    let copy = format!("{raw}.sync-conflict-20261130-101500-ABCDEFG");
    std::fs::copy(path.join(&raw), path.join(&copy)).unwrap();
    let shown = expected("a.txt", &copy, "sync-conflict 20261130-101500 ABCDEFG");
    write(&root, "mine.txt", b"mine");
    let landed = root.rename(os("mine.txt"), &root, &shown, 0).unwrap();
    assert!(!path.join(&copy).exists());
    assert_eq!(landed.entry(), raw_of(&root, &shown.to_string_lossy()));
    assert!(path.join(landed.entry()).exists());
    assert_eq!(read(&root, &shown), b"mine");
    assert_eq!(
        names(&root),
        BTreeSet::from([OsString::from("a.txt"), shown.clone()])
    );
    // RENAME_NOREPLACE onto a copy: EEXIST, nothing moves.
    std::fs::copy(path.join(&raw), path.join(&copy)).unwrap();
    // The name is taken now: the copy shows tagged.
    let listed = names(&root);
    assert_eq!(listed.len(), 3, "{listed:?}");
    let other = listed
        .into_iter()
        .find(|n| n != "a.txt" && *n != shown)
        .unwrap();
    assert!(
        other
            .to_string_lossy()
            .starts_with("a (sync-conflict 20261130-101500 ABCDEFG ")
    );
    let e = root
        .rename(os("a.txt"), &root, &other, libc::RENAME_NOREPLACE)
        .unwrap_err();
    assert_eq!(e.to_errno(), libc::EEXIST);
}

#[test]
fn names_that_only_look_like_copies_stay_hidden() {
    let (_t, path, vault) = new_vault(4096);
    let root = vault.root().unwrap();
    write(&root, "real", b"r");
    let fake = format!("{} (1)", "A".repeat(43));
    std::fs::write(path.join(&fake), b"not sealfs").unwrap();
    std::fs::write(path.join(format!("~{}-PC", "B".repeat(43))), b"no sidecar").unwrap();
    std::fs::write(path.join(".sealfs (conflicted copy).dir"), b"junk").unwrap();
    assert_eq!(names(&root), BTreeSet::from([OsString::from("real")]));
    assert!(root.stat(os("real (conflicted copy 1)")).is_err());
}

#[test]
fn a_new_copy_shows_in_the_next_listing() {
    let (_t, path, vault) = new_vault(4096);
    let root = vault.root().unwrap();
    write(&root, "n.txt", b"1");
    assert_eq!(names(&root).len(), 1);
    let raw = raw_of(&root, "n.txt");
    std::fs::copy(path.join(&raw), path.join(format!("{raw} (1)"))).unwrap();
    assert_eq!(names(&root).len(), 2);
}

#[test]
fn fsck_accepts_copies_and_rekey_rewraps_them() {
    use sealfs::vault::admin::Admin;
    use sealfs::vault::{Secret, fsck};
    let (_t, path, vault) = new_vault(4096);
    let root = vault.root().unwrap();
    write(&root, "a.txt", b"kept");
    let raw = raw_of(&root, "a.txt");
    let copy = format!("{raw} (Bob's conflicted copy 2026-11-30)");
    std::fs::copy(path.join(&raw), path.join(&copy)).unwrap();
    std::fs::write(path.join(format!("{} (1)", "Q".repeat(43))), b"junk").unwrap();
    let r = fsck::fsck(&vault, false, &mut |_, _| {}).unwrap();
    assert_eq!(r.damage_left(), 0, "{:?}", r.findings);
    let says = |what: &str| r.findings.iter().any(|f| f.what.contains(what));
    assert!(says("conflict copy") && says("not a sealfs entry"));
    let mut admin = Admin::open(&path, Secret::Password(PASSWORD)).unwrap();
    let rk = admin.rekey(&mut |_, _| {}).unwrap();
    assert_eq!((rk.files, rk.rewrapped), (2, 2), "{:?}", rk.damaged);
    let vault = reopen(&path);
    let root = vault.root().unwrap();
    let shown = expected("a.txt", &copy, "Bob's conflicted copy 2026-11-30");
    assert_eq!(read(&root, &shown), b"kept");
}

//! A mounted vault inside a sync folder: conflict copies in the mount, what
//! the sync tool changes under a running mount, half-synced entries, and the
//! vault writes (none for reading, one chunk for a one-byte edit).

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::mount::Mounted;
use common::pattern;
use sealfs::format::header::HEADER_LEN;
use sealfs::vault::{Secret, Vault};

fn unlock(vault: &Path) -> Vault {
    Vault::unlock(vault, Secret::Password(b"test password")).expect("unlock")
}

fn raw(v: &Vault, plain: &str) -> String {
    v.root()
        .unwrap()
        .disk_name(OsStr::new(plain))
        .unwrap()
        .entry()
        .to_string()
}

fn put(path: &Path, data: &[u8]) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(data).unwrap();
    f.sync_all().unwrap();
}

/// Waits (at most `limit`) until `done` holds; returns how long it took.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    loop {
        if done() {
            return Some(t.elapsed());
        }
        if t.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ls(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn conflict_copies_are_plain_files_in_the_mount() {
    let m = Mounted::new(&[]);
    put(&m.path("notes.txt"), b"older edit");
    std::fs::create_dir(m.path("photos")).unwrap();
    put(&m.path("photos/a.jpg"), b"jpeg");
    let v = unlock(&m.vault);
    let (f, d) = (raw(&v, "notes.txt"), raw(&v, "photos"));
    let saved = m.tmp.path().join("saved");
    std::fs::copy(m.vault.join(&f), &saved).unwrap();
    put(&m.path("notes.txt"), b"newer edit");
    // What Syncthing leaves: the older edit under a marked name.
    let marker = ".sync-conflict-20261130-024058-SN6YHF7";
    std::fs::copy(&saved, m.vault.join(format!("{f}{marker}"))).unwrap();
    let s = std::process::Command::new("cp")
        .arg("-a")
        .arg(m.vault.join(&d))
        .arg(m.vault.join(format!("{d} (1)")))
        .status()
        .unwrap();
    assert!(s.success());
    let copy = "notes (sync-conflict 20261130-024058 SN6YHF7).txt";
    assert_eq!(
        ls(&m.mnt),
        [
            "notes (sync-conflict 20261130-024058 SN6YHF7).txt",
            "notes.txt",
            "photos",
            "photos (conflicted copy 1)"
        ]
    );
    assert_eq!(std::fs::read(m.path(copy)).unwrap(), b"older edit");
    assert_eq!(std::fs::read(m.path("notes.txt")).unwrap(), b"newer edit");
    assert_eq!(
        std::fs::read(m.path("photos (conflicted copy 1)/a.jpg")).unwrap(),
        b"jpeg"
    );
    // Writable, renamable (to a proper encrypted name), removable.
    let mut h = std::fs::OpenOptions::new()
        .append(true)
        .open(m.path(copy))
        .unwrap();
    h.write_all(b", kept").unwrap();
    h.sync_all().unwrap();
    drop(h);
    std::fs::rename(m.path(copy), m.path("notes-mine.txt")).unwrap();
    assert!(!m.vault.join(format!("{f}{marker}")).exists());
    assert!(m.vault.join(raw(&v, "notes-mine.txt")).exists());
    assert_eq!(
        std::fs::read(m.path("notes-mine.txt")).unwrap(),
        b"older edit, kept"
    );
    std::fs::remove_dir_all(m.path("photos (conflicted copy 1)")).unwrap();
    assert!(!m.vault.join(format!("{d} (1)")).exists());
    assert_eq!(ls(&m.mnt), ["notes-mine.txt", "notes.txt", "photos"]);
    assert!(!m.log().contains("ERROR"), "{}", m.log());
}

#[test]
fn a_conflict_copy_of_the_config_is_reported_at_mount_and_never_used() {
    let mut m = Mounted::new(&[]);
    put(&m.path("f"), b"f");
    m.umount();
    let copy = m
        .vault
        .join("sealfs (Alice's conflicted copy 2026-11-30).conf");
    std::fs::write(&copy, b"a foreign config").unwrap();
    m.mount(&[]);
    assert!(
        m.mount_stderr.contains("conflicted copy 2026-11-30).conf")
            && m.mount_stderr.contains("uses sealfs.conf only"),
        "{}",
        m.mount_stderr
    );
    assert_eq!(std::fs::read(m.path("f")).unwrap(), b"f");
    assert_eq!(ls(&m.mnt), ["f"]);
    assert_eq!(std::fs::read(&copy).unwrap(), b"a foreign config");
}

/// A second device: a copy of the vault changed offline, then "synced" into
/// the mounted vault the way Syncthing writes (temporary file renamed over the
/// target, so the vault inode changes).
#[test]
fn changes_under_the_mount_show_within_two_seconds() {
    let m = Mounted::new(&[]);
    let v1 = pattern(8 << 20, 1);
    put(&m.path("f.txt"), b"version one");
    put(&m.path("big.bin"), &v1);
    for n in ["gone.txt", "old-name.txt"] {
        put(&m.path(n), n.as_bytes());
    }
    // The kernel now caches all of it: entries, attributes, pages.
    assert_eq!(std::fs::read(m.path("f.txt")).unwrap(), b"version one");
    assert!(!m.path("new.txt").exists());
    let mut held = std::fs::File::open(m.path("big.bin")).unwrap();
    let mut head = vec![0u8; 4096];
    held.read_exact(&mut head).unwrap();
    // Device two.
    let two = m.tmp.path().join("device-two");
    let s = std::process::Command::new("cp")
        .arg("-a")
        .arg(&m.vault)
        .arg(&two)
        .status()
        .unwrap();
    assert!(s.success());
    let v2 = pattern(8 << 20, 2);
    {
        let d = unlock(&two);
        let root = d.root().unwrap();
        for (name, data) in [
            ("f.txt", &b"version two, longer"[..]),
            ("new.txt", b"new"),
            ("big.bin", &v2),
        ] {
            let (mut f, _) = root.create_file(OsStr::new(name), 0o644, false).unwrap();
            f.set_len(0).unwrap();
            f.write_at(data, 0).unwrap();
            f.sync(false).unwrap();
        }
    }
    let v = unlock(&m.vault);
    for n in ["f.txt", "new.txt", "big.bin"] {
        let r = raw(&v, n);
        let tmp = m.vault.join(format!(".syncthing.{r}.tmp"));
        std::fs::copy(two.join(&r), &tmp).unwrap();
        std::fs::rename(&tmp, m.vault.join(&r)).unwrap();
    }
    std::fs::rename(
        m.vault.join(raw(&v, "old-name.txt")),
        m.vault.join(raw(&v, "new-name.txt")),
    )
    .unwrap();
    std::fs::remove_file(m.vault.join(raw(&v, "gone.txt"))).unwrap();
    let took = within(Duration::from_secs(3), || {
        std::fs::read(m.path("f.txt")).ok().as_deref() == Some(b"version two, longer")
            && std::fs::read(m.path("new.txt")).ok().as_deref() == Some(b"new")
            && m.path("new-name.txt").exists()
            && !m.path("old-name.txt").exists()
            && !m.path("gone.txt").exists()
            && std::fs::read(m.path("big.bin")).is_ok_and(|b| b == v2)
    });
    eprintln!("changes visible after {took:?}");
    assert!(
        took.is_some_and(|t| t <= Duration::from_secs(2)),
        "{took:?}"
    );
    // The reader that opened the old version keeps reading it to the end,
    // as on ext4 (the daemon holds the replaced file open for it): never
    // bytes of the new version, and no error.
    let mut rest = Vec::new();
    held.read_to_end(&mut rest)
        .expect("the held-open reader reads the version it opened");
    assert!(rest == v1[4096..], "a read mixed two versions");
    assert_eq!(head, v1[..4096]);
}

#[test]
fn half_synced_entries_fail_alone() {
    let mut m = Mounted::new(&[]);
    let long = "l".repeat(200);
    put(&m.path("big.bin"), &pattern(20_000, 3));
    put(&m.path("small.txt"), b"fine");
    put(&m.path("header-only.txt"), b"was not empty");
    put(&m.path("cut-to-empty.txt"), b"was not empty either");
    put(&m.path("empty.txt"), b"");
    put(&m.path(&long), b"long");
    for d in ["dir", "no-id"] {
        std::fs::create_dir(m.path(d)).unwrap();
        put(&m.path(&format!("{d}/x")), b"x");
    }
    m.umount();
    let v = unlock(&m.vault);
    let sealed = 4096 + 28;
    let cut = |name: &str, len: usize| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(m.vault.join(raw(&v, name)))
            .unwrap();
        f.set_len(len as u64).unwrap();
    };
    cut("big.bin", HEADER_LEN + sealed + 1000);
    cut("header-only.txt", HEADER_LEN);
    // The length of an empty file: header and one empty final chunk.
    cut("cut-to-empty.txt", HEADER_LEN + 28);
    std::fs::remove_file(m.vault.join(raw(&v, "no-id")).join(".sealfs.dir")).unwrap();
    let lr = raw(&v, &long);
    std::fs::remove_file(m.vault.join(format!("{lr}.name"))).unwrap();
    m.mount(&[]);
    assert_eq!(
        ls(&m.mnt),
        [
            "big.bin",
            "cut-to-empty.txt",
            "dir",
            "empty.txt",
            "header-only.txt",
            "no-id",
            "small.txt"
        ]
    );
    assert_eq!(std::fs::read(m.path("empty.txt")).unwrap(), b"");
    let eio = |p: PathBuf| {
        let e = std::fs::read(&p).expect_err(&format!("{p:?} read"));
        assert_eq!(e.raw_os_error(), Some(libc::EIO), "{p:?}: {e}");
    };
    eio(m.path("big.bin"));
    eio(m.path("header-only.txt"));
    eio(m.path("cut-to-empty.txt"));
    let e = std::fs::read_dir(m.path("no-id"))
        .and_then(|mut d| d.next().transpose())
        .expect_err("no-id listing");
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert_eq!(std::fs::read(m.path("small.txt")).unwrap(), b"fine");
    assert_eq!(std::fs::read(m.path("dir/x")).unwrap(), b"x");
    // The sidecar arrives: the long name shows.
    std::fs::write(
        m.vault.join(format!("{lr}.name")),
        v.root()
            .unwrap()
            .disk_name(OsStr::new(&long))
            .map(|d| match d {
                sealfs::format::names::DiskName::Long { full, .. } => full,
                _ => unreachable!(),
            })
            .unwrap(),
    )
    .unwrap();
    assert!(within(Duration::from_secs(2), || m.path(&long).exists()).is_some());
    assert_eq!(std::fs::read(m.path(&long)).unwrap(), b"long");
    m.umount();
}

/// Relative path -> (bytes, mtime in ns) of everything in the vault.
fn vault_state(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = std::fs::symlink_metadata(e.path()).unwrap();
            let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
            let mtime = md.mtime() * 1_000_000_000 + md.mtime_nsec();
            let bytes = if md.is_file() {
                std::fs::read(e.path()).unwrap()
            } else if md.file_type().is_symlink() {
                std::fs::read_link(e.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                stack.push(e.path());
                Vec::new()
            };
            out.insert(rel, (bytes, mtime));
        }
    }
    let md = std::fs::metadata(root).unwrap();
    out.insert(
        PathBuf::from("."),
        (Vec::new(), md.mtime() * 1_000_000_000 + md.mtime_nsec()),
    );
    out
}

#[test]
fn mounting_listing_and_reading_write_nothing() {
    let mut m = Mounted::new(&[]);
    std::fs::create_dir_all(m.path("a/b/c")).unwrap();
    for (i, p) in ["a/1", "a/b/2", "a/b/c/3", &"n".repeat(230)]
        .iter()
        .enumerate()
    {
        put(&m.path(p), &pattern(5000 * i + 1, i as u64));
    }
    std::os::unix::fs::symlink("a/1", m.path("link")).unwrap();
    let s = std::process::Command::new("setfattr")
        .args(["-n", "user.k", "-v", "v"])
        .arg(m.path("a/1"))
        .status()
        .unwrap();
    assert!(s.success());
    m.umount();
    let before = vault_state(&m.vault);
    m.mount(&["--read-only"]);
    m.umount();
    m.mount(&[]);
    let s = std::process::Command::new("sh")
        .arg("-c")
        .arg("ls -laR . >/dev/null && find . -type f -exec cat {} + >/dev/null && getfattr -R -d . >/dev/null 2>&1 && readlink link >/dev/null")
        .current_dir(&m.mnt)
        .status()
        .unwrap();
    assert!(s.success());
    m.umount();
    let after = vault_state(&m.vault);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (k, v) in &before {
        assert!(after[k] == *v, "{k:?} changed");
    }
}

#[test]
fn a_one_byte_edit_changes_one_chunk_and_a_directory_rename_one_name() {
    let mut m = Mounted::new(&[]);
    put(&m.path("big"), &pattern(100 << 20, 5));
    std::fs::create_dir(m.path("d")).unwrap();
    put(&m.path("d/inner"), b"inner");
    m.umount();
    let v = unlock(&m.vault);
    let vf = m.vault.join(raw(&v, "big"));
    let before = std::fs::read(&vf).unwrap();
    let tree_before = vault_state(&m.vault);
    m.mount(&[]);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(m.path("big"))
        .unwrap();
    f.seek(SeekFrom::Start((50 << 20) + 123)).unwrap();
    f.write_all(b"#").unwrap();
    f.sync_all().unwrap();
    drop(f);
    m.umount();
    let after = std::fs::read(&vf).unwrap();
    assert_eq!(before.len(), after.len());
    let diff: Vec<usize> = (0..before.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    let (first, last) = (diff[0], *diff.last().unwrap());
    eprintln!(
        "one-byte edit of a 100 MiB file: {} ciphertext bytes differ, in [{first}, {last}]",
        diff.len()
    );
    assert!(
        first >= HEADER_LEN && last - first < 4096 + 28,
        "{first}..{last}"
    );
    // Only that file changed.
    let tree_mid = vault_state(&m.vault);
    let changed: Vec<_> = tree_before
        .iter()
        .filter(|(k, v)| tree_mid.get(*k).map(|x| &x.0) != Some(&v.0))
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(changed, [PathBuf::from(raw(&v, "big"))]);
    // A directory rename is one rename in the vault.
    m.mount(&[]);
    std::fs::rename(m.path("d"), m.path("e")).unwrap();
    m.umount();
    let tree_after = vault_state(&m.vault);
    let (d, e) = (raw(&v, "d"), raw(&v, "e"));
    let renamed = |p: &PathBuf| match p.strip_prefix(&d) {
        Ok(rest) => Path::new(&e).join(rest),
        Err(_) => p.clone(),
    };
    let expect: BTreeMap<PathBuf, Vec<u8>> = tree_mid
        .iter()
        .filter(|(k, _)| *k != Path::new("."))
        .map(|(k, v)| (renamed(k), v.0.clone()))
        .collect();
    let got: BTreeMap<PathBuf, Vec<u8>> = tree_after
        .iter()
        .filter(|(k, _)| *k != Path::new("."))
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    assert_eq!(expect, got);
}

/// Two devices' copies of one vault (same vault ID) on one machine, both
/// mounted: each is locked apart.
#[test]
fn two_copies_of_one_vault_mount_side_by_side() {
    let mut a = Mounted::new(&[]);
    put(&a.path("f"), b"from a");
    a.umount();
    let mut b = Mounted::new(&[]);
    b.umount();
    std::fs::remove_dir_all(&b.vault).unwrap();
    let s = std::process::Command::new("cp")
        .arg("-a")
        .arg(&a.vault)
        .arg(&b.vault)
        .status()
        .unwrap();
    assert!(s.success());
    a.mount(&[]);
    b.mount(&[]);
    put(&b.path("f"), b"from b");
    assert_eq!(std::fs::read(a.path("f")).unwrap(), b"from a");
    assert_eq!(std::fs::read(b.path("f")).unwrap(), b"from b");
    // A second mount of the same copy is still refused.
    let spare = b.tmp.path().join("mnt2");
    std::fs::create_dir(&spare).unwrap();
    let o = common::mount::sealfs(&[
        "mount",
        "--passfile",
        common::mount::p(&a.passfile),
        common::mount::p(&a.vault),
        common::mount::p(&spare),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("already mounted"),
        "{err}"
    );
}

/// Every tool's marker on every entry kind, read through the mount; and a
/// folder both devices made under different directory IDs.
#[test]
fn every_tools_copies_and_a_directory_id_conflict_read_through_the_mount() {
    use sealfs::format::conflict::{label, shown_name, tag};
    let m = Mounted::new(&[]);
    let long = format!("{}.txt", "L".repeat(200));
    put(&m.path("notes.txt"), b"old notes");
    put(&m.path(&long), b"old long");
    std::fs::create_dir(m.path("photos")).unwrap();
    put(&m.path("photos/a.jpg"), b"old photo");
    std::os::unix::fs::symlink("notes.txt", m.path("link")).unwrap();
    let v = unlock(&m.vault);
    let kinds = ["notes.txt", long.as_str(), "photos", "link"];
    let mut want: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
    for k in kinds {
        let r = raw(&v, k);
        for &(_, marker, _) in sealfs::format::conflict::EXAMPLES {
            let copy = format!("{r}{marker}");
            let s = std::process::Command::new("cp")
                .args(["-a", "--no-target-directory"])
                .arg(m.vault.join(&r))
                .arg(m.vault.join(&copy))
                .status()
                .unwrap();
            assert!(s.success());
            let shown = shown_name(k.as_bytes(), &label(marker), &tag(&copy, 6), false);
            let shown = String::from_utf8(shown).unwrap();
            let p = m.path(&shown);
            match k {
                "photos" => assert_eq!(std::fs::read(p.join("a.jpg")).unwrap(), b"old photo"),
                "link" => assert_eq!(std::fs::read_link(&p).unwrap(), Path::new("notes.txt")),
                "notes.txt" => assert_eq!(std::fs::read(&p).unwrap(), b"old notes"),
                _ => assert_eq!(std::fs::read(&p).unwrap(), b"old long"),
            }
            want.push(shown);
        }
    }
    want.sort();
    assert_eq!(ls(&m.mnt), want);
    // Folder "b" made on two devices under different IDs (one was made as
    // "a" and renamed), merged by the sync tool, one ID file a conflict copy.
    std::fs::create_dir(m.path("b")).unwrap();
    put(&m.path("b/x.txt"), b"x from two");
    std::fs::rename(m.path("b"), m.path("b2")).unwrap();
    std::fs::create_dir(m.path("a")).unwrap();
    put(&m.path("a/x.txt"), b"x from one");
    std::fs::rename(m.path("a"), m.path("b")).unwrap();
    let (into, from) = (m.vault.join(raw(&v, "b")), m.vault.join(raw(&v, "b2")));
    for e in std::fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        let n = e.file_name();
        let to = if n == ".sealfs.dir" {
            ".sealfs (Bob's conflicted copy 2026-11-30).dir".into()
        } else {
            n
        };
        std::fs::rename(e.path(), into.join(to)).unwrap();
    }
    std::fs::remove_dir(&from).unwrap();
    let clash = "x (Bob's conflicted copy 2026-11-30).txt";
    let listed = within(Duration::from_secs(2), || {
        std::fs::read_dir(m.path("b")).is_ok() && ls(&m.path("b")) == [clash, "x.txt"]
    });
    assert!(listed.is_some(), "{:?}", ls(&m.path("b")));
    assert_eq!(std::fs::read(m.path("b/x.txt")).unwrap(), b"x from one");
    assert_eq!(
        std::fs::read(m.path(&format!("b/{clash}"))).unwrap(),
        b"x from two"
    );
    assert!(!m.log().contains("ERROR"), "{}", m.log());
}

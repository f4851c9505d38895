//! `rekey --full`: every name, directory ID, file key and content, symlink
//! target and extended attribute is re-encrypted. Killed before any of its
//! writes (a debug-build hook) or by `kill -9` at random moments, the vault
//! still unlocks and reads byte-exactly, and a rerun finishes. Afterwards the
//! old master key (and the old name and dir-id keys, from a config saved
//! before) decrypts nothing left in the vault.

mod common;

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sealfs::format::dirid::DirId;
use sealfs::format::header::{FileHeader, HEADER_LEN};
use sealfs::format::names::{VaultEntry, classify};
use sealfs::vault::walk::walk;
use sealfs::vault::{Secret, Vault};

const BIN: &str = env!("CARGO_BIN_EXE_sealfs");
const PW: &[u8] = common::PASSWORD;

struct Tree {
    files: Vec<(PathBuf, Vec<u8>)>,
    links: Vec<(PathBuf, Vec<u8>)>,
}

fn long_target() -> Vec<u8> {
    b"../"
        .iter()
        .copied()
        .cycle()
        .take(3000)
        .chain(*b"x")
        .collect()
}

/// Sets a user xattr on the vault entry of `rel` through the vault's keys.
fn set_xattr(v: &Vault, rel: &str, name: &[u8], value: &[u8]) {
    let (dir, last) = v.open_parent(Path::new(rel)).unwrap();
    let entry = v
        .path()
        .join(dir_path(v, rel))
        .join(dir.disk_name(last).unwrap().entry());
    let names = &v.keys().names;
    let backing = format!("user.sealfs.{}", names.encode_xattr_name(name).unwrap());
    let sealed = names.seal_xattr(backing.as_bytes(), value).unwrap();
    let p = CString::new(entry.as_os_str().as_bytes()).unwrap();
    let n = CString::new(backing).unwrap();
    // SAFETY: valid C strings and buffer.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            sealed.as_ptr().cast(),
            sealed.len(),
            0,
        )
    };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
}

/// The vault-relative ciphertext path of the directory holding `rel`.
fn dir_path(v: &Vault, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    let mut d = v.root().unwrap();
    let comps: Vec<&str> = rel.split('/').collect();
    for c in &comps[..comps.len() - 1] {
        out.push(d.disk_name(OsStr::new(c)).unwrap().entry());
        d = d.open_subdir(OsStr::new(c)).unwrap();
    }
    out
}

/// A vault with nested directories, files of several sizes, a long name,
/// short and long symlink targets, a fifo and attributes on a file and a dir.
fn populate(extra_files: usize) -> (tempfile::TempDir, PathBuf, Tree) {
    let (tmp, path, v) = common::new_vault(4096);
    let root = v.root().unwrap();
    let mut files = Vec::new();
    root.mkdir(OsStr::new("a"), 0o755).unwrap();
    v.open_dir(Path::new("a"))
        .unwrap()
        .mkdir(OsStr::new("b"), 0o700)
        .unwrap();
    let long = format!("{}.txt", "L".repeat(210));
    let mut put = |rel: String, data: Vec<u8>| {
        let (dir, name) = v.open_parent(Path::new(&rel)).unwrap();
        let (mut f, _) = dir.create_file(name, 0o640, true).unwrap();
        f.write_at(&data, 0).unwrap();
        files.push((PathBuf::from(rel), data));
    };
    put("top.bin".into(), common::pattern(3 * 4096 + 17, 1));
    put("empty".into(), Vec::new());
    put(format!("a/{long}"), b"long name\n".to_vec());
    put("a/b/deep.txt".into(), b"deep\n".to_vec());
    for i in 0..extra_files {
        put(format!("a/b/f{i}"), common::pattern(i % 5000, i as u64));
    }
    root.symlink(OsStr::new("short-link"), b"a/b/deep.txt")
        .unwrap();
    v.open_dir(Path::new("a"))
        .unwrap()
        .symlink(OsStr::new("long-link"), &long_target())
        .unwrap();
    root.mknod(OsStr::new("fifo"), libc::S_IFIFO | 0o644, 0)
        .unwrap();
    set_xattr(&v, "top.bin", b"user.tag", b"file attribute");
    set_xattr(&v, "a/b", b"user.dirtag", b"dir attribute");
    let links = vec![
        (PathBuf::from("short-link"), b"a/b/deep.txt".to_vec()),
        (PathBuf::from("a/long-link"), long_target()),
    ];
    (tmp, path, Tree { files, links })
}

/// Unlocks and reads everything back (works in the middle of a rekey too).
fn verify(vault: &Path, t: &Tree, what: &str) {
    let v = Vault::unlock(vault, Secret::Password(PW))
        .unwrap_or_else(|e| panic!("{what}: the vault no longer unlocks: {e}"));
    for (rel, data) in &t.files {
        let (dir, name) = v
            .open_parent(rel)
            .unwrap_or_else(|e| panic!("{what}: {rel:?}: {e}"));
        let f = dir
            .open_file(name, false)
            .unwrap_or_else(|e| panic!("{what}: {rel:?}: {e}"));
        let mut buf = vec![0u8; data.len() + 1];
        let n = f.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf[..n], &data[..], "{what}: {rel:?} differs");
    }
    for (rel, target) in &t.links {
        let (dir, name) = v.open_parent(rel).unwrap();
        assert_eq!(&dir.readlink(name).unwrap(), target, "{what}: {rel:?}");
    }
    let root = v.root().unwrap();
    let mut names: Vec<String> = root
        .list()
        .unwrap()
        .into_iter()
        .map(|e| e.name.into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["a", "empty", "fifo", "short-link", "top.bin"],
        "{what}"
    );
}

fn passfile(dir: &Path) -> String {
    let p = dir.join("pw");
    common::secret(&p, PW);
    p.to_str().unwrap().to_string()
}

fn run(args: &[&str], abort_after: Option<u64>) -> std::process::ExitStatus {
    let mut c = Command::new(BIN);
    c.args(args).stdout(std::process::Stdio::null());
    if let Some(n) = abort_after {
        c.env("SEALFS_TEST_ABORT_AFTER_WRITES", n.to_string());
    }
    let o = c.output().unwrap();
    if !o.status.success() && o.status.signal() != Some(libc::SIGABRT) {
        eprintln!("{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    o.status
}

#[test]
fn rekey_full_survives_a_crash_before_every_write() {
    let (tmp, vault, tree) = populate(3);
    let pw = passfile(tmp.path());
    let v = vault.to_str().unwrap();
    let mut n = 0;
    loop {
        let st = run(&["rekey", "--full", "--passfile", &pw, v], Some(n));
        if st.success() {
            break;
        }
        assert_eq!(
            st.signal(),
            Some(libc::SIGABRT),
            "rekey --full failed without the hook"
        );
        verify(
            &vault,
            &tree,
            &format!("rekey --full aborted after {n} writes"),
        );
        if n == 3 {
            // In the middle: offline reads work, writes and mounts wait.
            let o = Command::new(BIN)
                .args(["cat", "--passfile", &pw, v, "a/b/deep.txt"])
                .output()
                .unwrap();
            assert_eq!(o.stdout, b"deep\n");
            let o = Command::new(BIN)
                .args(["put", "--passfile", &pw, v, "x"])
                .output()
                .unwrap();
            assert!(
                String::from_utf8_lossy(&o.stderr)
                    .contains("rekey --full of this vault is unfinished")
            );
            let o = Command::new(BIN)
                .args(["rekey", "--passfile", &pw, v])
                .output()
                .unwrap();
            assert!(!o.status.success());
        }
        assert!(
            run(&["rekey", "--full", "--passfile", &pw, v], None).success(),
            "second run after abort at {n}"
        );
        verify(
            &vault,
            &tree,
            &format!("rekey --full rerun after abort at {n}"),
        );
        n += 1;
    }
    assert!(n >= 30, "the hook fired only {n} times");
    assert_eq!(
        Vault::info(&vault).unwrap().state,
        sealfs::format::config::State::Idle
    );
    let (code, out) = {
        let o = Command::new(BIN)
            .args(["fsck", "--passfile", &pw, v])
            .output()
            .unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    };
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains("NOTICE"),
        "leftovers after rekey --full: {out}"
    );
}

#[test]
fn rekey_full_survives_kill_9_at_random_moments() {
    let (tmp, vault, tree) = populate(2000);
    let pw = passfile(tmp.path());
    let v = vault.to_str().unwrap();
    let t0 = std::time::Instant::now();
    assert!(run(&["rekey", "--full", "--passfile", &pw, v], None).success());
    let full = t0.elapsed().as_millis() as u64;
    let killed = common::cli::kill_at_random_moments(
        &["rekey", "--full", "--passfile", &pw, v],
        full,
        3,
        16,
        |what| verify(&vault, &tree, what),
    );
    assert!(
        killed >= 3,
        "only {killed} of 16 runs were killed mid-way (a run takes {full} ms)"
    );
    assert!(run(&["rekey", "--full", "--passfile", &pw, v], None).success());
    verify(&vault, &tree, "after the final rekey --full");
}

/// Every directory ID the old keys knew, by vault-relative directory.
fn old_dir_ids(v: &Vault) -> Vec<DirId> {
    let mut ids = vec![*v.root().unwrap().id()];
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let d = v.open_dir(&rel).unwrap();
        for e in d.list().unwrap() {
            if e.kind == sealfs::vault::Kind::Dir {
                let p = rel.join(&e.name);
                ids.push(*v.open_dir(&p).unwrap().id());
                stack.push(p);
            }
        }
    }
    ids
}

#[test]
fn after_rekey_full_the_old_keys_decrypt_nothing() {
    let (tmp, vault, tree) = populate(5);
    let pw = passfile(tmp.path());
    let old_conf = std::fs::read(vault.join("sealfs.conf")).unwrap();
    let old = Vault::unlock(&vault, Secret::Password(PW)).unwrap();
    let old_ids = old_dir_ids(&old);
    assert!(old_ids.len() >= 3);
    drop(old);
    assert!(
        run(
            &[
                "rekey",
                "--full",
                "--passfile",
                &pw,
                vault.to_str().unwrap()
            ],
            None
        )
        .success()
    );
    verify(&vault, &tree, "after rekey --full");
    // The old keys, from the config saved before, against a copy of the vault.
    let copy = tmp.path().join("old-view");
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(&vault)
            .arg(&copy)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(copy.join("sealfs.conf"), &old_conf).unwrap();
    let old = Vault::unlock(&copy, Secret::Password(PW)).unwrap();
    let keys = old.keys();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    walk(old.root_fd(), |f| {
        let raw = f.name.as_bytes();
        match f.class {
            VaultEntry::Short(s) => {
                *seen.entry("names").or_default() += 1;
                for id in &old_ids {
                    assert!(
                        keys.names.decode(id, s.as_bytes()).is_none(),
                        "a name opens: {:?}",
                        f.name
                    );
                }
            }
            VaultEntry::Long(_) => *seen.entry("long names").or_default() += 1,
            _ => {}
        }
        if raw == b".sealfs.dir" {
            *seen.entry("dir ids").or_default() += 1;
            let b = std::fs::read(old.path().join(f.dir).join(".sealfs.dir")).unwrap();
            assert!(
                DirId::decode(&b, &keys.dirid_mac).is_none(),
                "a directory ID opens"
            );
        }
        if raw.ends_with(b".name") {
            let full = std::fs::read(old.path().join(f.dir).join(f.name)).unwrap();
            for id in &old_ids {
                assert!(keys.names.decode(id, &full).is_none(), "a long name opens");
            }
        }
        let p = old.path().join(f.dir).join(f.name);
        if f.kind == libc::S_IFREG && matches!(f.class, VaultEntry::Short(_) | VaultEntry::Long(_))
        {
            *seen.entry("files").or_default() += 1;
            let b = std::fs::read(&p).unwrap();
            let h = FileHeader::decode(&b[..HEADER_LEN]).unwrap();
            assert!(keys.unwrap_dek(&h).is_none(), "a file key opens: {p:?}");
        }
        if f.kind == libc::S_IFLNK {
            *seen.entry("symlinks").or_default() += 1;
            let t = std::fs::read_link(&p).unwrap();
            assert!(
                keys.read_target(t.as_os_str().as_bytes()).is_none(),
                "a symlink target opens"
            );
        }
        if matches!(f.kind, libc::S_IFREG | libc::S_IFDIR) {
            let mut list = vec![0u8; 4096];
            let c = CString::new(p.as_os_str().as_bytes()).unwrap();
            // SAFETY: valid C string and buffer.
            let n = unsafe { libc::llistxattr(c.as_ptr(), list.as_mut_ptr().cast(), list.len()) };
            for name in list[..n.max(0) as usize].split(|&b| b == 0) {
                if let Some(enc) = name.strip_prefix(b"user.sealfs.") {
                    *seen.entry("xattrs").or_default() += 1;
                    assert!(
                        keys.names.decode_xattr_name(enc).is_none(),
                        "an attribute name opens"
                    );
                }
            }
        }
        Ok(())
    })
    .unwrap();
    for what in [
        "names",
        "long names",
        "dir ids",
        "files",
        "symlinks",
        "xattrs",
    ] {
        assert!(
            seen.get(what).copied().unwrap_or(0) > 0,
            "nothing of kind {what} was checked: {seen:?}"
        );
    }
    assert_eq!(seen["xattrs"], 2, "{seen:?}");
    // Nothing under the old keys is left in the long-target store either.
    let store = old.path().join(".sealfs.links");
    for e in std::fs::read_dir(store).unwrap() {
        let sealed = std::fs::read(e.unwrap().path()).unwrap();
        assert!(
            keys.names.open_target(&sealed).is_none(),
            "a stored target opens"
        );
    }
    let _ = classify;
}

#[test]
fn a_damaged_entry_stops_rekey_full_every_time_until_it_is_dealt_with() {
    let (tmp, vault, mut tree) = populate(3);
    let pw = passfile(tmp.path());
    let v = vault.to_str().unwrap();
    // Damage a/b/f2's only chunk.
    let victim = {
        let vt = Vault::unlock(&vault, Secret::Password(PW)).unwrap();
        let dir = vt.open_dir(Path::new("a/b")).unwrap();
        vault
            .join(dir_path(&vt, "a/b/f2"))
            .join(dir.disk_name(OsStr::new("f2")).unwrap().entry())
    };
    let mut b = std::fs::read(&victim).unwrap();
    b[HEADER_LEN + 20] ^= 1;
    std::fs::write(&victim, &b).unwrap();
    tree.files.retain(|(p, _)| p != Path::new("a/b/f2"));
    for attempt in 0..2 {
        let o = Command::new(BIN)
            .args(["rekey", "--full", "--passfile", &pw, v])
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success(),
            "attempt {attempt} finished past damage: {e}"
        );
        assert!(
            e.contains("could not be re-encrypted") && e.contains("failed authentication"),
            "{e}"
        );
        assert_eq!(
            Vault::info(&vault).unwrap().state,
            sealfs::format::config::State::FullRekeying
        );
        verify(&vault, &tree, &format!("after stopping, attempt {attempt}"));
    }
    // fsck checks (not repairs) meanwhile and names it.
    let o = Command::new(BIN)
        .args(["fsck", "--passfile", &pw, v])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("(/a/b/f2)"));
    // Once it is dealt with (here: removed), a rerun finishes. (Its
    // directory has a new name by now: find it by its bytes.)
    let mut found = None;
    walk(std::fs::File::open(&vault).unwrap().as_fd(), |f| {
        if f.kind == libc::S_IFREG {
            let p = vault.join(f.dir).join(f.name);
            if std::fs::read(&p).unwrap() == b {
                found = Some(p);
            }
        }
        Ok(())
    })
    .unwrap();
    std::fs::remove_file(found.expect("the damaged file")).unwrap();
    assert!(run(&["rekey", "--full", "--passfile", &pw, v], None).success());
    verify(&vault, &tree, "after the rerun");
    assert_eq!(
        Vault::info(&vault).unwrap().state,
        sealfs::format::config::State::Idle
    );
}

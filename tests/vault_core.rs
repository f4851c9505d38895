//! The vault library without FUSE: random access against a model,
//! persistence across unlocks, and plaintext never reaching the vault.

mod common;

use std::ffi::OsStr;

use common::*;
use proptest::prelude::*;
use sealfs::vault::{Kind, Vault};

#[derive(Debug, Clone)]
enum Op {
    Write { off: u64, len: usize, seed: u64 },
    SetLen(u64),
    Read { off: u64, len: usize },
    Reopen,
}

const C: u64 = 4096;

/// Offsets that straddle chunk boundaries more often than chance would.
fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..6 * C,
        (0u64..6, -1i64..=1).prop_map(|(k, d)| (k * C).saturating_add_signed(d)),
    ]
}

fn length() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..3 * C as usize,
        Just(C as usize),
        Just(C as usize + 1),
        Just(1usize)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (offset(), length(), any::<u64>()).prop_map(|(off, len, seed)| Op::Write { off, len, seed }),
        2 => offset().prop_map(Op::SetLen),
        3 => (offset(), length()).prop_map(|(off, len)| Op::Read { off, len }),
        1 => Just(Op::Reopen),
    ]
}

fn shared() -> &'static (tempfile::TempDir, std::path::PathBuf, Vault, Vault) {
    static V: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf, Vault, Vault)> =
        std::sync::OnceLock::new();
    V.get_or_init(|| {
        let (t, p, v) = new_vault(C as u32);
        let second = reopen(&p);
        (t, p, v, second)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_access_matches_model(ops in proptest::collection::vec(op(), 1..24)) {
        let (_t, _p, vault, second) = shared();
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!("f{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let dir = vault.root().unwrap();
        let (mut f, _) = dir.create_file(OsStr::new(&name), 0o644, true).unwrap();
        let mut model: Vec<u8> = Vec::new();
        for op in ops {
            match op {
                Op::Write { off, len, seed } => {
                    let data = pattern(len, seed);
                    f.write_at(&data, off).unwrap();
                    if len > 0 {
                        let end = off as usize + len;
                        if model.len() < end { model.resize(end, 0); }
                        model[off as usize..end].copy_from_slice(&data);
                    }
                }
                Op::SetLen(n) => { f.set_len(n).unwrap(); model.resize(n as usize, 0); }
                Op::Read { off, len } => {
                    let mut buf = vec![0u8; len];
                    let n = f.read_at(&mut buf, off).unwrap();
                    let want = model.get(off as usize..).map(|s| &s[..len.min(s.len())]).unwrap_or(&[]);
                    prop_assert_eq!(&buf[..n], want);
                }
                Op::Reopen => {
                    drop(f);
                    f = dir.open_file(OsStr::new(&name), true).unwrap();
                }
            }
            prop_assert_eq!(f.size(), model.len() as u64);
        }
        drop(f);
        // Read back through an independently unlocked vault instance.
        let f2 = second.root().unwrap().open_file(OsStr::new(&name), false).unwrap();
        prop_assert_eq!(f2.size(), model.len() as u64);
        let mut all = vec![0u8; model.len() + 10];
        let n = f2.read_at(&mut all, 0).unwrap();
        prop_assert_eq!(&all[..n], &model[..]);
    }
}

#[test]
fn edge_sizes_survive_a_fresh_unlock() {
    let (_t, path, v) = new_vault(C as u32);
    let root = v.root().unwrap();
    let sizes = [
        0usize,
        1,
        C as usize - 1,
        C as usize,
        C as usize + 1,
        3 * C as usize,
        100_000,
    ];
    for (i, &s) in sizes.iter().enumerate() {
        let (mut f, _) = root
            .create_file(OsStr::new(&format!("s{s}")), 0o600, true)
            .unwrap();
        f.write_at(&pattern(s, i as u64), 0).unwrap();
        f.sync(false).unwrap();
    }
    drop(root);
    drop(v);
    let v = reopen(&path);
    let root = v.root().unwrap();
    for (i, &s) in sizes.iter().enumerate() {
        let f = root.open_file(OsStr::new(&format!("s{s}")), false).unwrap();
        assert_eq!(f.size(), s as u64);
        let mut buf = vec![0u8; s + 1];
        let n = f.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf[..n], &pattern(s, i as u64)[..], "size {s}");
        // stat-size from ciphertext length alone
        let st = root.stat(OsStr::new(&format!("s{s}"))).unwrap();
        assert_eq!(
            v.keys().geometry.plain_size(st.st_size as u64),
            Some(s as u64)
        );
    }
}

#[test]
fn directories_symlinks_renames_and_long_names() {
    let (_t, path, v) = new_vault(C as u32);
    let root = v.root().unwrap();
    root.mkdir(OsStr::new("docs"), 0o755).unwrap();
    let docs = root.open_subdir(OsStr::new("docs")).unwrap();
    let long = "L".repeat(255);
    let (mut f, _) = docs.create_file(OsStr::new(&long), 0o644, true).unwrap();
    f.write_at(b"long-named content", 0).unwrap();
    drop(f);
    docs.symlink(OsStr::new("link"), b"../target/file").unwrap();
    assert_eq!(
        docs.readlink(OsStr::new("link")).unwrap(),
        b"../target/file"
    );
    assert!(
        root.mkdir(OsStr::new("docs"), 0o755).is_err(),
        "mkdir over existing"
    );
    // Rename the directory: one rename in the vault, children still readable.
    root.rename(OsStr::new("docs"), &root, OsStr::new("papers"), 0)
        .unwrap();
    let v2 = reopen(&path);
    let papers = v2.open_dir(std::path::Path::new("papers")).unwrap();
    let mut names: Vec<_> = papers
        .list()
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.kind))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            (long.clone().into(), Kind::File),
            ("link".into(), Kind::Symlink)
        ]
    );
    let f = papers.open_file(OsStr::new(&long), false).unwrap();
    let mut b = vec![0u8; 64];
    let n = f.read_at(&mut b, 0).unwrap();
    assert_eq!(&b[..n], b"long-named content");
    // Remove everything, including the long name's sidecar.
    papers.unlink(OsStr::new(&long)).unwrap();
    papers.unlink(OsStr::new("link")).unwrap();
    v2.root().unwrap().rmdir(OsStr::new("papers")).unwrap();
    let left: Vec<_> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("sealfs.conf")]);
}

#[test]
fn rmdir_refuses_non_empty_and_rename_replaces_empty_dir() {
    let (_t, _p, v) = new_vault(C as u32);
    let root = v.root().unwrap();
    root.mkdir(OsStr::new("a"), 0o755).unwrap();
    root.mkdir(OsStr::new("b"), 0o755).unwrap();
    root.open_subdir(OsStr::new("a"))
        .unwrap()
        .create_file(OsStr::new("x"), 0o644, true)
        .unwrap();
    assert_eq!(
        root.rmdir(OsStr::new("a")).unwrap_err().to_errno(),
        libc::ENOTEMPTY
    );
    assert_eq!(
        root.rename(OsStr::new("b"), &root, OsStr::new("a"), 0)
            .unwrap_err()
            .to_errno(),
        libc::ENOTEMPTY
    );
    root.rename(OsStr::new("a"), &root, OsStr::new("b"), 0)
        .unwrap();
    let b = root.open_subdir(OsStr::new("b")).unwrap();
    assert_eq!(b.list().unwrap().len(), 1);
}

#[test]
fn same_folder_created_on_two_devices_gets_the_same_id_and_names() {
    // Two copies of one vault (as two synced devices) each create "Photos/x" offline.
    let (_t, path, v) = new_vault(C as u32);
    let copy = _t.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    std::fs::copy(path.join("sealfs.conf"), copy.join("sealfs.conf")).unwrap();
    let v2 = reopen(&copy);
    for vault in [&v, &v2] {
        let r = vault.root().unwrap();
        r.mkdir(OsStr::new("Photos"), 0o755).unwrap();
        r.open_subdir(OsStr::new("Photos"))
            .unwrap()
            .create_file(OsStr::new("x"), 0o644, true)
            .unwrap();
    }
    let a = snapshot(&path).into_keys().collect::<Vec<_>>();
    let b = snapshot(&copy).into_keys().collect::<Vec<_>>();
    assert_eq!(a, b, "both devices produced the same vault paths");
    let id_a =
        std::fs::read(path.join(a.iter().find(|p| p.ends_with(".sealfs.dir")).unwrap())).unwrap();
    let id_b =
        std::fs::read(copy.join(b.iter().find(|p| p.ends_with(".sealfs.dir")).unwrap())).unwrap();
    assert_eq!(id_a, id_b);
}

#[test]
fn no_plaintext_in_the_vault() {
    let (_t, path, v) = new_vault(C as u32);
    let root = v.root().unwrap();
    let secrets: [&[u8]; 4] = [
        b"TOPSECRETCONTENTS",
        b"confidential-name",
        b"hidden-directory",
        b"/very/secret/target",
    ];
    root.mkdir(OsStr::new("hidden-directory"), 0o755).unwrap();
    let d = root.open_subdir(OsStr::new("hidden-directory")).unwrap();
    let (mut f, _) = d
        .create_file(OsStr::new("confidential-name"), 0o644, true)
        .unwrap();
    let mut content = Vec::new();
    for _ in 0..1000 {
        content.extend_from_slice(b"TOPSECRETCONTENTS ");
    }
    f.write_at(&content, 0).unwrap();
    d.symlink(OsStr::new("confidential-name-link"), b"/very/secret/target")
        .unwrap();
    let long = format!("confidential-name{}", "x".repeat(200));
    d.create_file(OsStr::new(&long), 0o644, true).unwrap();
    drop(f);
    let mut all = Vec::new();
    for (p, bytes) in snapshot(&path) {
        all.extend_from_slice(p.to_string_lossy().as_bytes());
        all.push(b'\n');
        all.extend_from_slice(&bytes);
    }
    for s in secrets {
        assert!(
            !contains(&all, s),
            "plaintext {:?} found in the vault",
            String::from_utf8_lossy(s)
        );
    }
    assert!(!contains(&all, PASSWORD));
}

#[test]
fn recovery_key_unlocks_and_a_wrong_one_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("v");
    let (v, rk) = Vault::create(&path, PASSWORD, fast_opts(4096)).unwrap();
    let (mut f, _) = v
        .root()
        .unwrap()
        .create_file(OsStr::new("x"), 0o600, true)
        .unwrap();
    f.write_at(b"recoverable", 0).unwrap();
    drop((f, v));
    let shown = sealfs::vault::format_recovery_key(&rk);
    let parsed = sealfs::vault::parse_recovery_key(&shown).unwrap();
    let v = Vault::unlock(&path, sealfs::vault::Secret::RecoveryKey(&parsed)).unwrap();
    let f = v.root().unwrap().open_file(OsStr::new("x"), false).unwrap();
    let mut b = [0u8; 11];
    f.read_at(&mut b, 0).unwrap();
    assert_eq!(&b, b"recoverable");
    let wrong = sealfs::crypto::SecretKey::from_slice(&[0x42; 32]).unwrap();
    assert!(matches!(
        Vault::unlock(&path, sealfs::vault::Secret::RecoveryKey(&wrong)),
        Err(sealfs::Error::WrongPassword)
    ));
    assert!(sealfs::vault::parse_recovery_key("not a key").is_err());
}

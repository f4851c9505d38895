//! A vault created once by sealfs 0.1 (format 1, final) and committed. Every
//! future version must open it and read it byte-exactly, so any format change
//! is a deliberate one. Regenerate only with a format bump:
//! `SEALFS_WRITE_FIXTURE=1 cargo test --test frozen_vault -- --ignored`.
//!
//! Git keeps no extended attributes, so the vault's attributes are committed
//! beside it (`vault-v1.xattrs`: vault path, backing name, base64url value)
//! and put back on a copy before the vault is read.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sealfs::format::base64url;
use sealfs::format::config::{SlotKind, State};
use sealfs::vault::{Kind, Secret, Vault, parse_recovery_key};

const PASSWORD: &[u8] = b"sealfs frozen fixture v1";
const SECOND_PASSWORD: &[u8] = b"second frozen password v1";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn multi() -> Vec<u8> {
    (0..10_000u32).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

fn long_name() -> String {
    format!("{}.txt", "n".repeat(220))
}

fn long_target() -> Vec<u8> {
    let mut t = Vec::new();
    while t.len() < 4000 {
        t.extend_from_slice(b"../a-rather-long-directory-name");
    }
    t.truncate(4000);
    t
}

fn read_all(dir: &sealfs::vault::Dir, name: &str) -> Vec<u8> {
    let f = dir.open_file(OsStr::new(name), false).unwrap();
    let mut buf = vec![0u8; f.size() as usize];
    assert_eq!(f.read_at(&mut buf, 0).unwrap(), buf.len());
    buf
}

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// Copies the committed fixture and puts its extended attributes back.
fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dst = tmp.path().join("vault");
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(fixtures().join("vault-v1"))
        .arg(&dst)
        .status()
        .unwrap();
    assert!(st.success());
    let list = std::fs::read_to_string(fixtures().join("vault-v1.xattrs")).unwrap();
    for line in list.lines() {
        let [path, name, value] = line.split('\t').collect::<Vec<_>>()[..] else {
            panic!("bad xattr line {line}");
        };
        let v = base64url::decode(value.as_bytes()).unwrap();
        let n = CString::new(name).unwrap();
        // SAFETY: valid C strings and a buffer of the given length.
        let r = unsafe {
            libc::lsetxattr(
                c(&dst.join(path)).as_ptr(),
                n.as_ptr(),
                v.as_ptr().cast(),
                v.len(),
                0,
            )
        };
        assert_eq!(
            r,
            0,
            "setxattr on the fixture copy: {}",
            std::io::Error::last_os_error()
        );
    }
    (tmp, dst)
}

fn raw_xattrs(p: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 65536];
    // SAFETY: the buffer is writable for its length.
    let n = unsafe { libc::llistxattr(c(p).as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(n >= 0);
    names[..n as usize]
        .split(|&b| b == 0)
        .filter(|s| s.starts_with(b"user.sealfs."))
        .map(|s| {
            let name = String::from_utf8(s.to_vec()).unwrap();
            let mut v = vec![0u8; 65536];
            let cn = CString::new(name.clone()).unwrap();
            // SAFETY: as above.
            let m = unsafe {
                libc::lgetxattr(c(p).as_ptr(), cn.as_ptr(), v.as_mut_ptr().cast(), v.len())
            };
            assert!(m >= 0);
            v.truncate(m as usize);
            (name, v)
        })
        .collect()
}

#[test]
fn frozen_vault_v1_reads_byte_exactly() {
    let (_tmp, dir) = fixture_copy();
    let info = Vault::info(&dir).unwrap();
    assert_eq!(
        (info.chunk_size, info.generation, info.longname_max),
        (4096, 2, 200)
    );
    assert_eq!(info.state, State::Idle);
    let kinds: Vec<_> = info.slots.iter().map(|s| (s.id, s.kind.code())).collect();
    assert_eq!(kinds, vec![(0, 1), (1, 2), (2, 1)]);
    assert!(matches!(info.slots[0].kind, SlotKind::Password(_)));
    assert_eq!(
        info.retired
            .iter()
            .map(|r| r.generation)
            .collect::<Vec<_>>(),
        vec![1]
    );

    // Every slot kind opens it.
    Vault::unlock(&dir, Secret::Password(SECOND_PASSWORD)).expect("second password slot");
    let rk = parse_recovery_key(
        &std::fs::read_to_string(fixtures().join("vault-v1.recovery-key")).unwrap(),
    )
    .unwrap();
    Vault::unlock(&dir, Secret::RecoveryKey(&rk)).expect("recovery slot");
    let v = Vault::unlock(&dir, Secret::Password(PASSWORD)).expect("the frozen vault must unlock");

    let root = v.root().unwrap();
    let mut names: Vec<_> = root
        .list()
        .unwrap()
        .into_iter()
        .map(|e| (e.name.into_string().unwrap(), e.kind))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            ("docs".to_string(), Kind::Dir),
            ("empty".to_string(), Kind::File),
            ("hello.txt".to_string(), Kind::File),
            ("link".to_string(), Kind::Symlink),
            ("long-link".to_string(), Kind::Symlink),
            ("multi.bin".to_string(), Kind::File),
            (long_name(), Kind::File),
        ]
    );
    assert_eq!(read_all(&root, "hello.txt"), b"Hello, sealfs!\n");
    assert_eq!(read_all(&root, "empty"), b"");
    assert_eq!(read_all(&root, "multi.bin"), multi());
    assert_eq!(read_all(&root, &long_name()), b"long\n");
    assert_eq!(
        root.readlink(OsStr::new("link")).unwrap(),
        b"docs/nested/deep.txt"
    );
    assert_eq!(
        root.readlink(OsStr::new("long-link")).unwrap(),
        long_target()
    );
    let nested = v.open_dir(Path::new("docs/nested")).unwrap();
    assert_eq!(read_all(&nested, "deep.txt"), b"deep\n");

    // The attribute on hello.txt.
    let hello = root.disk_name(OsStr::new("hello.txt")).unwrap();
    let attrs = raw_xattrs(&dir.join(hello.entry()));
    assert_eq!(attrs.len(), 1);
    let (backing, value) = &attrs[0];
    let enc = backing.strip_prefix("user.sealfs.").unwrap();
    let names = &v.keys().names;
    assert_eq!(
        names.decode_xattr_name(enc.as_bytes()).unwrap(),
        b"user.note"
    );
    assert_eq!(
        names.open_xattr(backing.as_bytes(), value).unwrap(),
        b"frozen attribute\0value"
    );
}

#[test]
#[ignore = "writes the fixture; run only on a deliberate format change"]
fn write_fixture() {
    if std::env::var_os("SEALFS_WRITE_FIXTURE").is_none() {
        return;
    }
    let dir = fixtures().join("vault-v1");
    let _ = std::fs::remove_dir_all(&dir);
    let opts = sealfs::vault::CreateOptions {
        kdf: sealfs::crypto::KdfParams {
            memory_kib: 64 * 1024,
            passes: 3,
            lanes: 1,
        },
        chunk_size: 4096,
        ..Default::default()
    };
    let (_, rk) = Vault::create(&dir, PASSWORD, opts).unwrap();
    std::fs::write(
        fixtures().join("vault-v1.recovery-key"),
        sealfs::vault::format_recovery_key(&rk) + "\n",
    )
    .unwrap();
    {
        let mut a = sealfs::vault::admin::Admin::open(&dir, Secret::Password(PASSWORD)).unwrap();
        a.add_password(SECOND_PASSWORD, opts.kdf).unwrap();
    }
    let v = Vault::unlock(&dir, Secret::Password(PASSWORD)).unwrap();
    let root = v.root().unwrap();
    let put = |d: &sealfs::vault::Dir, name: &str, data: &[u8]| {
        let (mut f, _) = d.create_file(OsStr::new(name), 0o644, true).unwrap();
        f.write_at(data, 0).unwrap();
    };
    put(&root, "hello.txt", b"Hello, sealfs!\n");
    put(&root, "empty", b"");
    put(&root, "multi.bin", &multi());
    put(&root, &long_name(), b"long\n");
    root.symlink(OsStr::new("link"), b"docs/nested/deep.txt")
        .unwrap();
    root.symlink(OsStr::new("long-link"), &long_target())
        .unwrap();
    root.mkdir(OsStr::new("docs"), 0o755).unwrap();
    let docs = root.open_subdir(OsStr::new("docs")).unwrap();
    docs.mkdir(OsStr::new("nested"), 0o755).unwrap();
    put(
        &docs.open_subdir(OsStr::new("nested")).unwrap(),
        "deep.txt",
        b"deep\n",
    );
    let hello = root.disk_name(OsStr::new("hello.txt")).unwrap();
    let names = &v.keys().names;
    let backing = format!(
        "user.sealfs.{}",
        names.encode_xattr_name(b"user.note").unwrap()
    );
    let value = names
        .seal_xattr(backing.as_bytes(), b"frozen attribute\0value")
        .unwrap();
    std::fs::write(
        fixtures().join("vault-v1.xattrs"),
        format!(
            "{}\t{backing}\t{}\n",
            hello.entry(),
            base64url::encode(&value)
        ),
    )
    .unwrap();
    drop(v);
    // A rekey, so the fixture has a retired generation too.
    let mut a = sealfs::vault::admin::Admin::open(&dir, Secret::Password(PASSWORD)).unwrap();
    a.rekey(&mut |_, _| {}).unwrap();
}

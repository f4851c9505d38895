//! A vault created once by sealfs 0.1 (format 1) and committed. Every future
//! version must open it and read it byte-exactly, so any format change is a
//! deliberate one. Regenerate only with a format bump:
//! `SEALFS_WRITE_FIXTURE=1 cargo test --test frozen_vault -- --ignored`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use sealfs::vault::{Kind, Secret, Vault};

const PASSWORD: &[u8] = b"sealfs frozen fixture v1";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vault-v1")
}

fn multi() -> Vec<u8> {
    (0..10_000u32).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

fn long_name() -> String {
    format!("{}.txt", "n".repeat(220))
}

fn read_all(dir: &sealfs::vault::Dir, name: &str) -> Vec<u8> {
    let f = dir.open_file(OsStr::new(name), false).unwrap();
    let mut buf = vec![0u8; f.size() as usize];
    assert_eq!(f.read_at(&mut buf, 0).unwrap(), buf.len());
    buf
}

#[test]
fn frozen_vault_v1_reads_byte_exactly() {
    let v = Vault::unlock(&fixture_dir(), Secret::Password(PASSWORD))
        .expect("the frozen vault must unlock");
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
    let nested = v.open_dir(Path::new("docs/nested")).unwrap();
    assert_eq!(read_all(&nested, "deep.txt"), b"deep\n");
    let info = Vault::info(&fixture_dir()).unwrap();
    assert_eq!((info.chunk_size, info.generation), (4096, 1));
}

#[test]
#[ignore = "writes the fixture; run only on a deliberate format change"]
fn write_fixture() {
    if std::env::var_os("SEALFS_WRITE_FIXTURE").is_none() {
        return;
    }
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    let opts = sealfs::vault::CreateOptions {
        kdf: sealfs::crypto::KdfParams {
            memory_kib: 64 * 1024,
            passes: 3,
            lanes: 1,
        },
        chunk_size: 4096,
    };
    let (v, _) = Vault::create(&dir, PASSWORD, opts).unwrap();
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
    root.mkdir(OsStr::new("docs"), 0o755).unwrap();
    let docs = root.open_subdir(OsStr::new("docs")).unwrap();
    docs.mkdir(OsStr::new("nested"), 0o755).unwrap();
    put(
        &docs.open_subdir(OsStr::new("nested")).unwrap(),
        "deep.txt",
        b"deep\n",
    );
}

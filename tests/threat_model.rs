//! The limits the README's threat model states, each pinned exactly: what
//! the ciphertext shows (no less: a test fails if the format starts hiding
//! it without the document changing; no more: a test fails if it shows
//! more), and what authentication does not bind.
//! Also pinned elsewhere: a one-byte edit changes one chunk
//! (tests/mount_sync.rs), a whole file swapped between names reads as the
//! other file (tests/mount_tamper.rs).

mod common;

use std::ffi::OsStr;

use common::*;
use sealfs::format::chunk::CHUNK_OVERHEAD;
use sealfs::format::header::HEADER_LEN;

const C: usize = 4096;

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn vault_file(path: &std::path::Path, v: &sealfs::vault::Vault, name: &str) -> std::path::PathBuf {
    path.join(v.root().unwrap().disk_name(os(name)).unwrap().entry())
}

/// Plaintext sizes are exact: the ciphertext length is a function of the
/// plaintext length alone (104-byte header, 28 bytes per chunk).
#[test]
fn plaintext_sizes_are_exact() {
    let (_t, path, v) = new_vault(C as u32);
    let root = v.root().unwrap();
    for (i, len) in [0usize, 1, 15, 16, 4095, 4096, 4097, 3 * C + 100]
        .into_iter()
        .enumerate()
    {
        let name = format!("f{i}");
        let (mut f, _) = root.create_file(os(&name), 0o644, true).unwrap();
        f.write_at(&pattern(len, i as u64), 0).unwrap();
        let sealed = std::fs::metadata(vault_file(&path, &v, &name))
            .unwrap()
            .len() as usize;
        let chunks = len.div_ceil(C).max(1);
        assert_eq!(
            sealed,
            HEADER_LEN + len + chunks * CHUNK_OVERHEAD as usize,
            "{len}"
        );
        assert_eq!(
            v.keys().geometry.plain_size(sealed as u64),
            Some(len as u64)
        );
    }
}

/// Name lengths show rounded up to 16 bytes; names of one length class in
/// one directory are indistinguishable by length.
#[test]
fn name_lengths_show_to_16_bytes() {
    let (_t, _path, v) = new_vault(C as u32);
    let root = v.root().unwrap();
    let enc = |n: usize| root.disk_name(os(&"x".repeat(n))).unwrap().entry().len();
    for n in 1..=16 {
        assert_eq!(enc(n), enc(1), "{n}");
    }
    assert!(enc(17) > enc(16));
    for n in 17..=32 {
        assert_eq!(enc(n), enc(17), "{n}");
    }
}

/// Symlink targets and extended-attribute values show their length to 16
/// bytes (padding), not exactly.
#[test]
fn target_and_attribute_value_lengths_show_to_16_bytes() {
    let (_t, _path, v) = new_vault(C as u32);
    let names = &v.keys().names;
    let t = |n: usize| names.seal_target(&vec![b'a'; n]).unwrap().len();
    for n in 1..=15 {
        assert_eq!(t(n), t(1), "target {n}");
    }
    assert!(t(16) > t(15));
    let x = |n: usize| names.seal_xattr(b"user.k", &vec![b'v'; n]).unwrap().len();
    for n in 0..=15 {
        assert_eq!(x(n), x(0), "value {n}");
    }
    assert!(x(16) > x(15));
}

/// Rollback is not detected: the provider can put back an older version of
/// a whole file, and it reads as that version.
#[test]
fn a_whole_file_rolled_back_reads_as_the_old_version() {
    let (_t, path, v) = new_vault(C as u32);
    let root = v.root().unwrap();
    let (mut f, _) = root.create_file(os("doc"), 0o644, true).unwrap();
    f.write_at(b"version one", 0).unwrap();
    let vf = vault_file(&path, &v, "doc");
    let old = std::fs::read(&vf).unwrap();
    f.write_at(b"VERSION TWO", 0).unwrap();
    drop(f);
    std::fs::write(&vf, &old).unwrap();
    let f = root.open_file(os("doc"), false).unwrap();
    assert_eq!(f.read_vec(0, 100).unwrap(), b"version one");
}

/// Nor is a rollback of single chunks within one file: a chunk from an
/// older version of the same file (same key, same position) is authentic,
/// so old and new chunks can be mixed. Chunks from another file or another
/// position are refused (tests/tamper.rs).
#[test]
fn chunks_of_older_versions_of_one_file_can_be_mixed() {
    let (_t, path, v) = new_vault(C as u32);
    let root = v.root().unwrap();
    let (mut f, _) = root.create_file(os("doc"), 0o644, true).unwrap();
    f.write_at(&[1u8; 3 * C], 0).unwrap();
    let vf = vault_file(&path, &v, "doc");
    let old = std::fs::read(&vf).unwrap();
    f.write_at(&[2u8; 3 * C], 0).unwrap();
    drop(f);
    let mut mixed = std::fs::read(&vf).unwrap();
    let chunk1 =
        HEADER_LEN + (C + CHUNK_OVERHEAD as usize)..HEADER_LEN + 2 * (C + CHUNK_OVERHEAD as usize);
    mixed[chunk1.clone()].copy_from_slice(&old[chunk1]);
    std::fs::write(&vf, &mixed).unwrap();
    let got = root
        .open_file(os("doc"), false)
        .unwrap()
        .read_vec(0, 3 * C)
        .unwrap();
    assert_eq!(&got[..C], &[2u8; C][..]);
    assert_eq!(&got[C..2 * C], &[1u8; C][..]);
    assert_eq!(&got[2 * C..], &[2u8; C][..]);
}

/// Entries moved between folders together with a copy of the source
/// folder's directory-ID file decrypt in their new folder (the ID file is
/// authentic, only not bound to its place).
#[test]
fn entries_moved_with_a_copied_directory_id_file_decrypt_elsewhere() {
    let (_t, path, v) = new_vault(C as u32);
    let root = v.root().unwrap();
    let a = root.mkdir(os("a"), 0o755).unwrap();
    let (mut f, _) = a.create_file(os("secret.txt"), 0o644, true).unwrap();
    f.write_at(b"from a", 0).unwrap();
    drop(f);
    root.mkdir(os("b"), 0o755).unwrap();
    let (pa, pb) = (vault_file(&path, &v, "a"), vault_file(&path, &v, "b"));
    for e in std::fs::read_dir(&pa).unwrap() {
        let e = e.unwrap();
        let to = pb.join(e.file_name());
        if e.file_name() == ".sealfs.dir" {
            std::fs::copy(e.path(), to).unwrap();
        } else {
            std::fs::rename(e.path(), to).unwrap();
        }
    }
    let b = reopen(&path).root().unwrap().open_subdir(os("b")).unwrap();
    let names: Vec<_> = b.list().unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, [std::ffi::OsString::from("secret.txt")]);
}

/// Without the ID file copied, moved entries do not decrypt: names are bound
/// to their folder's ID.
#[test]
fn entries_moved_alone_do_not_decrypt_in_another_folder() {
    let (_t, path, v) = new_vault(C as u32);
    let root = v.root().unwrap();
    let a = root.mkdir(os("a"), 0o755).unwrap();
    a.create_file(os("secret.txt"), 0o644, true).unwrap();
    root.mkdir(os("b"), 0o755).unwrap();
    let (pa, pb) = (vault_file(&path, &v, "a"), vault_file(&path, &v, "b"));
    for e in std::fs::read_dir(&pa).unwrap() {
        let e = e.unwrap();
        if e.file_name() != ".sealfs.dir" {
            std::fs::rename(e.path(), pb.join(e.file_name())).unwrap();
        }
    }
    let b = reopen(&path).root().unwrap().open_subdir(os("b")).unwrap();
    assert!(b.list().unwrap().is_empty());
}

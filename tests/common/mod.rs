//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod cli;
pub mod mount;

use sealfs::crypto::{KDF_FLOOR_MEMORY_KIB, KdfParams};
use sealfs::vault::{CreateOptions, Secret, Vault};

pub const PASSWORD: &[u8] = b"correct horse battery staple";

/// Fastest parameters the floors allow, to keep tests quick.
pub fn fast_opts(chunk_size: u32) -> CreateOptions {
    CreateOptions {
        kdf: KdfParams {
            memory_kib: KDF_FLOOR_MEMORY_KIB,
            passes: 3,
            lanes: 1,
        },
        chunk_size,
        ..Default::default()
    }
}

/// A new vault in a fresh temporary directory.
pub fn new_vault(chunk_size: u32) -> (tempfile::TempDir, PathBuf, Vault) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("vault");
    let (v, _rk) = Vault::create(&path, PASSWORD, fast_opts(chunk_size)).expect("create vault");
    (tmp, path, v)
}

pub fn reopen(path: &Path) -> Vault {
    Vault::unlock(path, Secret::Password(PASSWORD)).expect("unlock")
}

/// Every file under `root` (relative path -> bytes; symlinks as their target, dirs empty).
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                use std::os::unix::ffi::OsStrExt;
                out.insert(
                    rel,
                    std::fs::read_link(&p)
                        .unwrap()
                        .as_os_str()
                        .as_bytes()
                        .to_vec(),
                );
            } else if ft.is_dir() {
                out.insert(rel.clone(), Vec::new());
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// True if `needle` occurs anywhere in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Writes a secret file (a password or key file) readable only by its owner,
/// as a user would; sealfs warns about looser ones.
pub fn secret(path: impl AsRef<Path>, text: impl AsRef<[u8]>) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path.as_ref())
        .expect("write a secret file");
    f.write_all(text.as_ref()).unwrap();
}

/// A small xorshift generator: reproducible from a printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

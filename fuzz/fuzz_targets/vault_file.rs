//! A vault file's bytes (header, then sealed chunks), as a sync tool or an
//! attacker may leave them: opening and reading every byte either gives
//! the file or an error, never a panic and never unauthenticated bytes
//! (only a file sealed under this vault's keys could read back at all).
#![no_main]
use std::ffi::OsStr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealfs::vault::{CreateOptions, Vault};

struct Fixture {
    _tmp: tempfile::TempDir,
    vault: Vault,
    entry: std::path::PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("vault");
        let mut opts = CreateOptions::default();
        opts.kdf.memory_kib = sealfs::crypto::KDF_FLOOR_MEMORY_KIB;
        opts.kdf.passes = 3;
        opts.chunk_size = 4096;
        let (vault, _) = Vault::create(&path, b"fuzz", opts).unwrap();
        let root = vault.root().unwrap();
        root.create_file(OsStr::new("f"), 0o644, true).unwrap();
        let entry = path.join(root.disk_name(OsStr::new("f")).unwrap().entry());
        Fixture {
            _tmp: tmp,
            vault,
            entry,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    std::fs::write(&f.entry, data).unwrap();
    let root = f.vault.root().unwrap();
    if let Ok(file) = root.open_file(OsStr::new("f"), false) {
        let mut buf = vec![0u8; 64 << 10];
        let mut off = 0u64;
        while let Ok(n) = file.read_at(&mut buf, off) {
            if n == 0 {
                break;
            }
            off += n as u64;
        }
    }
});

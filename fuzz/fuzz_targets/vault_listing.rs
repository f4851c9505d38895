//! A vault directory as a sync tool may leave it: entries with any names
//! (including conflict copies and hashed long names) and any `.name`
//! sidecar bytes. Listing and looking each entry up give
//! names or errors, never a panic.
#![no_main]
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealfs::vault::{CreateOptions, Vault};

struct Fixture {
    _tmp: tempfile::TempDir,
    vault: Vault,
    /// The vault directory of the plaintext directory "d".
    dir: std::path::PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("vault");
        let mut opts = CreateOptions::default();
        opts.kdf.memory_kib = sealfs::crypto::KDF_FLOOR_MEMORY_KIB;
        opts.kdf.passes = 3;
        let (vault, _) = Vault::create(&path, b"fuzz", opts).unwrap();
        let root = vault.root().unwrap();
        root.mkdir(OsStr::new("d"), 0o755).unwrap();
        let dir = path.join(root.disk_name(OsStr::new("d")).unwrap().entry());
        Fixture {
            _tmp: tmp,
            vault,
            dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    // Input: entries separated by 0xff; each is NAME 0x00 CONTENT.
    let mut made = Vec::new();
    for part in data.split(|&b| b == 0xff).take(8) {
        let (name, content) = match part.iter().position(|&b| b == 0) {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &[][..]),
        };
        if name.is_empty() || name.len() > 255 || name.contains(&b'/') || name == b"." || name == b".." {
            continue;
        }
        // Never over the fixture's own files (its directory-ID file).
        let p = f.dir.join(OsStr::from_bytes(name));
        let new = std::fs::OpenOptions::new().write(true).create_new(true).open(&p);
        if let Ok(mut file) = new {
            made.push(p);
            let _ = std::io::Write::write_all(&mut file, content);
        }
    }
    let root = f.vault.root().unwrap();
    if let Ok(d) = root.open_subdir(OsStr::new("d")) {
        if let Ok(list) = d.list() {
            for e in list {
                let _ = d.open_file(&e.name, false);
                let _ = d.readlink(&e.name);
            }
        }
    }
    for p in made {
        let _ = std::fs::remove_file(p);
    }
});

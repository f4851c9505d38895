//! `fsck` finds every kind of damage the tamper tests make, names the vault
//! path (and the plaintext path where the name still decrypts), exits as
//! fsck(8) does, and `--repair` moves damage into /lost+found, salvaging every
//! undamaged chunk of a damaged file, while foreign files and sync tools'
//! copies are left exactly as they are.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sealfs::format::chunk::CHUNK_OVERHEAD;
use sealfs::format::header::HEADER_LEN;
use sealfs::vault::{Secret, Vault};

const BIN: &str = env!("CARGO_BIN_EXE_sealfs");
const CS: usize = 4096;

fn chunk(i: usize) -> std::ops::Range<usize> {
    let s = HEADER_LEN + i * (CS + CHUNK_OVERHEAD as usize);
    s..s + CS + CHUNK_OVERHEAD as usize
}

fn fsck(vault: &Path, pw: &Path, repair: bool) -> (i32, String) {
    let mut args = vec!["fsck", "--passfile", pw.to_str().unwrap()];
    if repair {
        args.push("--repair");
    }
    args.push(vault.to_str().unwrap());
    let o: Output = Command::new(BIN).args(&args).output().unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
    )
}

struct Fx {
    _tmp: tempfile::TempDir,
    vault: PathBuf,
    pw: PathBuf,
}

fn put(v: &Vault, rel: &str, data: &[u8]) {
    let (dir, name) = v.open_parent(Path::new(rel)).unwrap();
    let (mut f, _) = dir.create_file(name, 0o644, true).unwrap();
    f.write_at(data, 0).unwrap();
}

fn vpath(v: &Vault, rel: &str) -> PathBuf {
    let mut out = v.path().to_path_buf();
    let mut d = v.root().unwrap();
    let comps: Vec<&str> = rel.split('/').collect();
    for (i, c) in comps.iter().enumerate() {
        out.push(d.disk_name(OsStr::new(c)).unwrap().entry());
        if i + 1 < comps.len() {
            d = d.open_subdir(OsStr::new(c)).unwrap();
        }
    }
    out
}

fn edit(p: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = std::fs::read(p).unwrap();
    f(&mut b);
    std::fs::write(p, b).unwrap();
}

fn setup() -> Fx {
    let (tmp, vault, v) = common::new_vault(CS as u32);
    let pw = tmp.path().join("pw");
    common::secret(&pw, common::PASSWORD);
    v.root().unwrap().mkdir(OsStr::new("docs"), 0o755).unwrap();
    for i in 0..8 {
        put(&v, &format!("docs/f{i}"), &common::pattern(5 * CS, i));
    }
    put(&v, "long", &common::pattern(100, 9));
    Fx {
        _tmp: tmp,
        vault,
        pw,
    }
}

#[test]
fn a_clean_vault_exits_0_and_wrong_password_12() {
    let fx = setup();
    let (code, out) = fsck(&fx.vault, &fx.pw, false);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("checked 2 directories, 9 files"), "{out}");
    let wrong = fx.vault.parent().unwrap().join("wrong");
    common::secret(&wrong, "nope");
    assert_eq!(fsck(&fx.vault, &wrong, false).0, 12);
    assert_eq!(fsck(&fx.vault.join("missing"), &fx.pw, false).0, 8);
}

#[test]
fn finds_every_damage_kind_and_repair_salvages_undamaged_chunks() {
    let fx = setup();
    let v = Vault::unlock(&fx.vault, Secret::Password(common::PASSWORD)).unwrap();
    let root = v.root().unwrap();
    let long_name = "l".repeat(200);
    put(&v, &long_name, b"long name\n");
    root.symlink(OsStr::new("link"), b"docs/f0").unwrap();
    root.mkdir(OsStr::new("sub"), 0o755).unwrap();
    put(&v, "sub/inside", b"x");
    let p = |rel: &str| vpath(&v, rel);
    // One damage per file, as the tamper tests make them.
    edit(&p("docs/f0"), |b| b[chunk(1).start + 40] ^= 1); // bit flip in chunk 1
    edit(&p("docs/f1"), |b| b[20] ^= 1); // header
    edit(&p("docs/f2"), |b| b.truncate(chunk(4).start)); // cut at a chunk boundary
    edit(&p("docs/f3"), |b| {
        let (c1, c2) = (b[chunk(1)].to_vec(), b[chunk(2)].to_vec());
        b[chunk(1)].copy_from_slice(&c2);
        b[chunk(2)].copy_from_slice(&c1);
    });
    let other = std::fs::read(p("docs/f5")).unwrap();
    edit(&p("docs/f4"), |b| {
        b[chunk(0)].copy_from_slice(&other[chunk(0)])
    });
    edit(&p("docs/f6"), |b| b.extend_from_slice(&[7; 100]));
    let f7 = p("docs/f7");
    let mut flipped = f7
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
        .into_bytes();
    flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
    let flipped = f7.with_file_name(String::from_utf8(flipped).unwrap());
    std::fs::rename(&f7, &flipped).unwrap();
    let long = p(&long_name);
    edit(&PathBuf::from(format!("{}.name", long.display())), |b| {
        b[10] ^= 1
    });
    edit(&p("sub").join(".sealfs.dir"), |b| b[50] ^= 1);
    let link = p("link");
    let t = std::fs::read_link(&link)
        .unwrap()
        .into_os_string()
        .into_string()
        .unwrap();
    let mut t = t.into_bytes();
    t[10] = if t[10] == b'A' { b'B' } else { b'A' };
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(String::from_utf8(t).unwrap(), &link).unwrap();
    // Things fsck must leave alone.
    std::fs::write(fx.vault.join("notes.txt"), b"foreign").unwrap();
    let conflict = fx
        .vault
        .join("sealfs.sync-conflict-20261130-101500-ABCDEFG.conf");
    std::fs::copy(fx.vault.join("sealfs.conf"), &conflict).unwrap();
    drop(root);
    drop(v);

    let (code, out) = fsck(&fx.vault, &fx.pw, false);
    assert_eq!(code, 4, "{out}");
    let rel = |a: &Path| a.strip_prefix(&fx.vault).unwrap().display().to_string();
    for (path, plain, what) in [
        (
            rel(&p_of(&fx, "docs/f0")),
            Some("/docs/f0"),
            "1 of 5 chunks failed",
        ),
        (
            rel(&p_of(&fx, "docs/f1")),
            Some("/docs/f1"),
            "file key failed authentication",
        ),
        (rel(&p_of(&fx, "docs/f2")), Some("/docs/f2"), "truncated"),
        (
            rel(&p_of(&fx, "docs/f3")),
            Some("/docs/f3"),
            "2 of 5 chunks failed",
        ),
        (
            rel(&p_of(&fx, "docs/f4")),
            Some("/docs/f4"),
            "1 of 5 chunks failed",
        ),
        (rel(&p_of(&fx, "docs/f6")), Some("/docs/f6"), "failed"),
        (rel(&flipped), None, "name failed authentication"),
        (rel(&long), None, "sidecar"),
        (rel(&p_of(&fx, "sub")), Some("/sub"), "directory-ID file"),
        (rel(&link), Some("/link"), "target failed authentication"),
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with("DAMAGE") && l.contains(&path))
            .unwrap_or_else(|| panic!("no DAMAGE line for {path}:\n{out}"));
        if let Some(pl) = plain {
            assert!(line.contains(&format!("({pl})")), "{line}");
        }
        assert!(line.contains(what), "{line}");
    }
    assert!(
        out.contains("NOTICE   notes.txt: not a sealfs entry"),
        "{out}"
    );
    assert!(out.contains("sync conflict copy of the config"), "{out}");

    let (code, out) = fsck(&fx.vault, &fx.pw, true);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("REPAIRED")).count(),
        10,
        "{out}"
    );
    // Nothing of others' was touched.
    assert_eq!(
        std::fs::read(fx.vault.join("notes.txt")).unwrap(),
        b"foreign"
    );
    assert!(conflict.exists());
    // The salvaged copy of f0 has every chunk but chunk 1, which is zeros.
    let v = Vault::unlock(&fx.vault, Secret::Password(common::PASSWORD)).unwrap();
    let lf = v.open_dir(Path::new("lost+found")).unwrap();
    let f = lf.open_file(OsStr::new("docs_f0.salvaged"), false).unwrap();
    let mut got = vec![0u8; 5 * CS];
    assert_eq!(f.read_at(&mut got, 0).unwrap(), 5 * CS);
    let mut want = common::pattern(5 * CS, 0);
    want[CS..2 * CS].fill(0);
    assert_eq!(got, want);
    // The damaged f7 is readable under its new name (only its name was hit).
    let names: Vec<String> = lf
        .list()
        .unwrap()
        .into_iter()
        .map(|e| e.name.into_string().unwrap())
        .collect();
    let salvaged: Vec<Vec<u8>> = names
        .iter()
        .filter(|n| n.starts_with("unnamed-") && n.ends_with(".salvaged"))
        .map(|n| {
            let f = lf.open_file(OsStr::new(n), false).unwrap();
            let mut b = vec![0u8; f.size() as usize];
            assert_eq!(f.read_at(&mut b, 0).unwrap(), b.len());
            b
        })
        .collect();
    assert_eq!(salvaged.len(), 2, "{names:?}");
    assert!(salvaged.contains(&common::pattern(5 * CS, 7)));
    assert!(salvaged.contains(&b"long name\n".to_vec()));
    drop(v);
    // Afterwards only notices remain.
    let (code, out) = fsck(&fx.vault, &fx.pw, false);
    assert_eq!(code, 0, "{out}");
}

/// The vault path of `rel` in the fixture, computed with a fresh unlock.
fn p_of(fx: &Fx, rel: &str) -> PathBuf {
    let v = Vault::unlock(&fx.vault, Secret::Password(common::PASSWORD)).unwrap();
    vpath(&v, rel)
}

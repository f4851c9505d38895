//! Tampering with the ciphertext: every change is detected and reads fail;
//! no read ever returns bytes that differ from what was written.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use common::*;
use sealfs::Error;
use sealfs::format::chunk::CHUNK_OVERHEAD;
use sealfs::format::header::HEADER_LEN;
use sealfs::vault::{Secret, Vault};

const C: usize = 4096;
const SEALED: usize = C + CHUNK_OVERHEAD as usize;
const SIZE: usize = 3 * C + 100;

struct Fixture {
    _t: tempfile::TempDir,
    path: PathBuf,
    vault: Vault,
    original: Vec<u8>,
    /// Vault path of "victim" and of "other" (same size, other file).
    victim: PathBuf,
    other: PathBuf,
}

fn fixture() -> Fixture {
    let (t, path, vault) = new_vault(C as u32);
    let root = vault.root().unwrap();
    let original = pattern(SIZE, 1);
    for (name, seed) in [("victim", 1), ("other", 2)] {
        let (mut f, _) = root.create_file(OsStr::new(name), 0o644, true).unwrap();
        f.write_at(&pattern(SIZE, seed), 0).unwrap();
    }
    let victim = path.join(root.disk_name(OsStr::new("victim")).unwrap().entry());
    let other = path.join(root.disk_name(OsStr::new("other")).unwrap().entry());
    Fixture {
        _t: t,
        path,
        vault,
        original,
        victim,
        other,
    }
}

/// Reads all of "victim"; any success must return exactly the original bytes.
fn read_victim(fx: &Fixture) -> Result<Vec<u8>, Error> {
    let f = fx.vault.root()?.open_file(OsStr::new("victim"), false)?;
    let mut buf = vec![0u8; SIZE + 2 * C];
    let n = f.read_at(&mut buf, 0)?;
    buf.truncate(n);
    Ok(buf)
}

/// Applies `edit` to the victim's ciphertext and asserts the read fails.
fn assert_detected(fx: &Fixture, what: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    let good = std::fs::read(&fx.victim).unwrap();
    let mut bad = good.clone();
    edit(&mut bad);
    assert_ne!(bad, good, "{what}: the edit changed nothing");
    std::fs::write(&fx.victim, &bad).unwrap();
    match read_victim(fx) {
        Ok(bytes) => panic!(
            "{what}: tampering not detected (read {} bytes, equal: {})",
            bytes.len(),
            bytes == fx.original
        ),
        Err(e) => assert_eq!(e.to_errno(), libc::EIO, "{what}: {e}"),
    }
    std::fs::write(&fx.victim, &good).unwrap();
    assert_eq!(read_victim(fx).unwrap(), fx.original, "{what}: restore");
}

fn chunk(i: usize) -> std::ops::Range<usize> {
    let start = HEADER_LEN + i * SEALED;
    start..start + SEALED
}

#[test]
fn every_header_bit_flip_is_detected() {
    let fx = fixture();
    for byte in 0..HEADER_LEN {
        for bit in [0, 7] {
            assert_detected(&fx, &format!("header byte {byte} bit {bit}"), |b| {
                b[byte] ^= 1 << bit
            });
        }
    }
}

#[test]
fn chunk_nonce_body_and_tag_flips_are_detected() {
    let fx = fixture();
    for i in 0..4 {
        let r = if i < 3 {
            chunk(i)
        } else {
            HEADER_LEN + 3 * SEALED..HEADER_LEN + 3 * SEALED + 128
        };
        for (part, off) in [
            ("nonce", r.start + 3),
            ("body", r.start + 12 + 50),
            ("tag", r.end - 1),
        ] {
            assert_detected(&fx, &format!("chunk {i} {part}"), |b| b[off] ^= 0x10);
        }
    }
}

#[test]
fn swapped_chunks_and_chunks_from_another_file_are_detected() {
    let fx = fixture();
    assert_detected(&fx, "swap chunks 0 and 1", |b| {
        let c0 = b[chunk(0)].to_vec();
        let c1 = b[chunk(1)].to_vec();
        b[chunk(0)].copy_from_slice(&c1);
        b[chunk(1)].copy_from_slice(&c0);
    });
    let other = std::fs::read(&fx.other).unwrap();
    for i in 0..3 {
        assert_detected(&fx, &format!("chunk {i} from another file"), |b| {
            b[chunk(i)].copy_from_slice(&other[chunk(i)])
        });
    }
    assert_detected(&fx, "other file's header", |b| {
        b[..HEADER_LEN].copy_from_slice(&other[..HEADER_LEN])
    });
}

#[test]
fn truncation_and_appended_garbage_are_detected() {
    let fx = fixture();
    for n in 0..=3 {
        assert_detected(&fx, &format!("truncated to {n} chunks"), |b| {
            b.truncate(HEADER_LEN + n * SEALED)
        });
    }
    assert_detected(&fx, "truncated inside the last chunk", |b| {
        b.truncate(b.len() - 1)
    });
    // Cut to the length of an empty file: header plus 28 bytes.
    assert_detected(&fx, "truncated to the length of an empty file", |b| {
        b.truncate(HEADER_LEN + 28)
    });
    assert_detected(&fx, "truncated to part of the header", |b| b.truncate(40));
    for extra in [1usize, 28, 100, SEALED, SEALED + 50] {
        assert_detected(&fx, &format!("{extra} bytes appended"), |b| {
            b.extend(pattern(extra, 9))
        });
    }
    // A whole valid-looking chunk appended: the real last chunk is marked last.
    assert_detected(&fx, "chunk appended", |b| {
        let c = b[chunk(1)].to_vec();
        b.extend_from_slice(&c);
    });
}

#[test]
fn a_flipped_name_is_hidden_and_never_decrypted_wrongly() {
    let fx = fixture();
    let name = fx.victim.file_name().unwrap().to_str().unwrap().to_string();
    let mut flipped = name.clone().into_bytes();
    flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    std::fs::rename(&fx.victim, fx.path.join(&flipped)).unwrap();
    let names: Vec<_> = fx
        .vault
        .root()
        .unwrap()
        .list()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("other")]);
    assert!(read_victim(&fx).unwrap_err().is_not_found());
}

fn edit_config(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let p = path.join("sealfs.conf");
    let good = std::fs::read(&p).unwrap();
    let mut b = good.clone();
    edit(&mut b);
    std::fs::write(&p, &b).unwrap();
    good
}

/// The provider holds no slot secret but sees every slot's public key: it
/// seals a master key of its own to the password slot (and could reseal the
/// vault keys under it). The config MAC is keyed by the vault auth key, which
/// only slot secrets open, so the vault refuses to unlock with that key.
#[test]
fn a_master_key_sealed_by_the_provider_is_refused() {
    use sealfs::format::config::ConfigFile;
    let fx = fixture();
    let p = fx.path.join("sealfs.conf");
    let mut cfg = ConfigFile::decode(&std::fs::read(&p).unwrap()).unwrap();
    let evil = sealfs::crypto::SecretKey::random().unwrap();
    for i in 0..cfg.slots.len() {
        let s = &cfg.slots[i];
        let aad = cfg.slot_aad(s.id, s.kind.code(), &s.public);
        cfg.slots[i].mk = sealfs::crypto::seal_to(&s.public, &aad, &evil).unwrap();
    }
    // The best MAC the provider can make: under a key it knows.
    cfg.mac = *blake3::keyed_hash(evil.expose(), &cfg.mac_input()).as_bytes();
    std::fs::write(&p, cfg.encode()).unwrap();
    match Vault::unlock(&fx.path, Secret::Password(PASSWORD)) {
        Err(Error::Config(m)) => assert!(m.contains("failed authentication"), "{m}"),
        other => panic!(
            "a provider-sealed master key was accepted: {:?}",
            other.err()
        ),
    }
}

#[test]
fn weakened_or_edited_config_is_refused() {
    let fx = fixture();
    // Layout (sealfs-format(5)): the password slot starts at 44 and its body
    // at 44 + 162 = 206 (KDF id, memory 210, passes 214, lanes 218, salt 222,
    // wrapped private key and vault auth key 238); the recovery slot at 330;
    // vault keys at 552.
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let put = |at: usize, v: u32| -> Edit {
        Box::new(move |b: &mut Vec<u8>| b[at..at + 4].copy_from_slice(&v.to_le_bytes()))
    };
    let flip = |at: usize| -> Edit { Box::new(move |b: &mut Vec<u8>| b[at] ^= 1) };
    // (what, edit, must it be the same error as a wrong password?)
    let cases: Vec<(&str, Edit, bool)> = vec![
        ("memory lowered below the floor", put(210, 1024), false),
        (
            "memory raised past the cap",
            put(210, 4 * 1024 * 1024),
            false,
        ),
        ("passes lowered", put(214, 1), false),
        ("memory changed within range", put(210, 128 * 1024), true),
        ("salt flipped", flip(222), true),
        ("wrapped private key flipped", flip(250), true),
        ("slot public key flipped", flip(50), true),
        ("ephemeral key flipped", flip(90), true),
        ("sealed master key flipped", flip(130), true),
        ("key commitment flipped", flip(44 + 130), true),
        (
            "slot id changed",
            Box::new(|b: &mut Vec<u8>| b[46] ^= 4),
            true,
        ),
        ("chunk size changed", put(12, 8192), true),
        (
            "generation changed",
            Box::new(|b: &mut Vec<u8>| b[16] ^= 2),
            true,
        ),
        ("vault id flipped", flip(20), true),
        ("name limit changed", flip(36), false),
        ("state set to rekeying", flip(38), false),
        ("recovery slot flipped", flip(330 + 80), false),
        ("recovery auth wrap flipped", flip(330 + 170), false),
        ("vault keys flipped", flip(560), false),
        (
            "mac flipped",
            Box::new(|b: &mut Vec<u8>| {
                let n = b.len() - 1;
                b[n] ^= 1
            }),
            false,
        ),
    ];
    for (what, edit, as_wrong_password) in cases {
        let good = edit_config(&fx.path, |b| edit(b));
        let t = std::time::Instant::now();
        let r = Vault::unlock(&fx.path, Secret::Password(PASSWORD));
        assert!(r.is_err(), "{what}: edited config was accepted");
        if as_wrong_password {
            assert!(
                matches!(r, Err(Error::WrongPassword)),
                "{what}: {:?}",
                r.err()
            );
        }
        assert!(t.elapsed().as_secs() < 5, "{what}: took {:?}", t.elapsed());
        std::fs::write(fx.path.join("sealfs.conf"), good).unwrap();
    }
    assert!(Vault::unlock(&fx.path, Secret::Password(PASSWORD)).is_ok());
}

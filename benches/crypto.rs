//! Hot paths of the vault core: chunk seal/open (through sealfs's wrapper
//! and raw `aes-gcm-siv` for comparison), name encryption/decryption, and the
//! file layer's read/write on /dev/shm.

use std::ffi::OsStr;
use std::hint::black_box;

use aes_gcm_siv::aead::{AeadInOut, KeyInit};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealfs::crypto::{Cipher, SecretKey};
use sealfs::format::chunk::chunk_aad;
use sealfs::format::dirid::DirId;
use sealfs::format::names::NameCodec;

const SIZES: [usize; 4] = [4096, 16384, 32768, 131072];

fn chunks(c: &mut Criterion) {
    let key = SecretKey::from_slice(&[7; 32]).unwrap();
    let cipher = Cipher::new(&key);
    let raw = aes_gcm_siv::Aes256GcmSiv::new(&(*key.expose()).into());
    let mut g = c.benchmark_group("chunk");
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x5a; size];
        let aad = chunk_aad(&[1; 16], 3, false);
        g.bench_with_input(
            BenchmarkId::new("raw_aes_gcm_siv_seal", size),
            &size,
            |b, _| {
                let nonce = aes_gcm_siv::Nonce::from([9u8; 12]);
                b.iter(|| {
                    raw.encrypt_inout_detached(&nonce, &aad, buf.as_mut_slice().into())
                        .unwrap()
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("seal", size), &size, |b, _| {
            b.iter(|| cipher.seal(&aad, &mut buf).unwrap())
        });
        let (nonce, tag) = cipher.seal(&aad, &mut buf).unwrap();
        let sealed = buf.clone();
        g.bench_with_input(BenchmarkId::new("open", size), &size, |b, _| {
            b.iter(|| {
                buf.copy_from_slice(&sealed);
                assert!(cipher.open(&nonce, &aad, &mut buf, &tag));
            })
        });
    }
    g.finish();
}

fn names(c: &mut Criterion) {
    let codec = NameCodec::new(&SecretKey::from_slice(&[3; 32]).unwrap(), 200);
    let dir = DirId([4; 32]);
    let mut g = c.benchmark_group("names");
    for name in ["a.txt", "IMG_20261130_101500_HDR.jpg", &"x".repeat(120)] {
        let enc = codec.encode(&dir, name.as_bytes()).unwrap();
        g.bench_with_input(BenchmarkId::new("encrypt", name.len()), name, |b, n| {
            b.iter(|| codec.encode(&dir, black_box(n.as_bytes())).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("decrypt", name.len()), &enc, |b, e| {
            b.iter(|| codec.decode(&dir, black_box(e.as_bytes())).unwrap())
        });
    }
    g.finish();
}

fn file_layer(c: &mut Criterion) {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let tmp = tempfile::tempdir_in(base).unwrap();
    let opts = sealfs::vault::CreateOptions {
        kdf: sealfs::crypto::KdfParams {
            memory_kib: 64 * 1024,
            passes: 3,
            lanes: 1,
        },
        chunk_size: 4096,
        ..Default::default()
    };
    let (v, _) = sealfs::vault::Vault::create(&tmp.path().join("v"), b"pw", opts).unwrap();
    let root = v.root().unwrap();
    let (mut f, _) = root.create_file(OsStr::new("bench"), 0o644, true).unwrap();
    let data = vec![0xa5u8; 1 << 20];
    f.write_at(&data, 0).unwrap();
    let mut g = c.benchmark_group("file");
    g.throughput(Throughput::Bytes(1 << 20));
    g.bench_function("write_1MiB_aligned", |b| {
        b.iter(|| f.write_at(&data, 0).unwrap())
    });
    let mut out = vec![0u8; 1 << 20];
    g.bench_function("read_1MiB", |b| b.iter(|| f.read_at(&mut out, 0).unwrap()));
    g.throughput(Throughput::Bytes(4096));
    g.bench_function("write_4KiB_unaligned", |b| {
        b.iter(|| f.write_at(&data[..4096], 1000).unwrap())
    });
    g.finish();
}

criterion_group!(benches, chunks, names, file_layer);
criterion_main!(benches);

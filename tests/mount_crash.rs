//! The daemon killed with SIGKILL in the middle of heavy writes, atomic
//! saves (temporary file renamed over) and size changes: the vault unlocks
//! and mounts again; every file that was not being written reads back
//! exactly as last synced; a file that was being written holds, chunk by
//! chunk, its old bytes or its new bytes, or gives EIO for that chunk, and
//! fsck names each such file. Several kill points per run.
//! Longer: scripts/crash-soak.sh (SEALFS_CRASH_ROUNDS kill points).

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::FileExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::mount::{Mounted, p, sealfs};
use common::{Rng, pattern};

const C: usize = 4096;
const FILES: usize = 6;

fn len_of(g: u64) -> usize {
    3 * C + (g as usize % 3) * (C / 2) + 17
}

fn content(i: usize, g: u64) -> Vec<u8> {
    pattern(len_of(g), (i as u64) << 32 | g)
}

/// What the writer knows: the generation last synced per file, and the one
/// being written (if any) when the daemon died.
#[derive(Default, Clone)]
struct State {
    done: [u64; FILES],
    inflight: [Option<u64>; FILES],
}

/// Writes generation `g` of file `i`: in place (chunks in a scattered
/// order, then the size) or as an atomic save (temporary + rename).
fn write_gen(m: &Mounted, i: usize, g: u64, rng: &mut Rng) -> std::io::Result<()> {
    let data = content(i, g);
    let path = m.path(&format!("f{i}"));
    if rng.next() % 3 == 0 {
        let tmp = m.path(&format!(".f{i}.tmp"));
        let f = std::fs::File::create(&tmp)?;
        f.write_all_at(&data, 0)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
    } else {
        let f = std::fs::OpenOptions::new().write(true).open(&path)?;
        // The size first, then whole chunks: every chunk is then, at any
        // moment, old, cut, zero-extended or new (see `plausible`).
        f.set_len(data.len() as u64)?;
        let chunks = data.len().div_ceil(C);
        let start = (rng.next() as usize) % chunks;
        for k in 0..chunks {
            let c = (start + k * 3) % chunks; // 3 is coprime with 4 and 5 chunks
            let end = ((c + 1) * C).min(data.len());
            f.write_all_at(&data[c * C..end], (c * C) as u64)?;
        }
        f.sync_all()?;
    }
    Ok(())
}

fn chunk_of(v: &[u8], k: usize) -> &[u8] {
    let s = (k * C).min(v.len());
    &v[s..((k + 1) * C).min(v.len())]
}

/// What chunk `got` of a file caught mid-rewrite may hold: its new bytes,
/// its old bytes, the old bytes cut short or extended with zeros (the size
/// changes first), or zeros (a chunk of the extension not written yet).
fn plausible(got: &[u8], old: &[u8], new: &[u8]) -> bool {
    got == new
        || got == old
        || old.starts_with(got)
        || (got.starts_with(old) && got[old.len()..].iter().all(|&b| b == 0))
        || got.iter().all(|&b| b == 0)
}

/// Checks every file against the state; returns the files that may be damaged.
fn verify(m: &Mounted, st: &State) -> BTreeSet<usize> {
    let mut torn = BTreeSet::new();
    for i in 0..FILES {
        let path = m.path(&format!("f{i}"));
        let old = content(i, st.done[i]);
        match st.inflight[i] {
            None => {
                let got = std::fs::read(&path).unwrap();
                if got != old {
                    let per_chunk: Vec<Option<u64>> = (0..got.len().div_ceil(C))
                        .map(|k| {
                            (0..st.done[i] + 200)
                                .find(|&g| chunk_of(&content(i, g), k) == chunk_of(&got, k))
                        })
                        .collect();
                    panic!(
                        "f{i} (not being written, generation {}) changed: {} bytes, chunks from generations {per_chunk:?}",
                        st.done[i],
                        got.len()
                    );
                }
            }
            Some(g) => {
                let new = content(i, g);
                let f = std::fs::File::open(&path).unwrap();
                let len = f.metadata().unwrap().len() as usize;
                for k in 0..len.div_ceil(C).max(1) {
                    let mut buf = vec![0u8; C];
                    match f.read_at(&mut buf, (k * C) as u64) {
                        Ok(n) => {
                            let got = &buf[..n];
                            assert!(
                                plausible(got, chunk_of(&old, k), chunk_of(&new, k)),
                                "f{i} chunk {k}: neither old nor new bytes"
                            );
                        }
                        Err(e) => {
                            assert_eq!(e.raw_os_error(), Some(libc::EIO), "f{i} chunk {k}: {e}");
                            eprintln!(
                                "f{i} chunk {k} of {len} bytes: EIO; daemon log: {}",
                                m.log()
                                    .lines()
                                    .rev()
                                    .take(3)
                                    .collect::<Vec<_>>()
                                    .join(" | ")
                            );
                            torn.insert(i);
                        }
                    }
                }
            }
        }
    }
    torn
}

#[test]
fn killed_during_writes_the_vault_mounts_and_only_files_in_flight_differ() {
    let mut m = Mounted::new(&[]);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let mut rng = Rng(seed);
    let mut st = State::default();
    for i in 0..FILES {
        let f = std::fs::File::create(m.path(&format!("f{i}"))).unwrap();
        f.write_all_at(&content(i, 0), 0).unwrap();
        f.sync_all().unwrap();
    }
    let mut writes_total = 0;
    let mut in_flight_total = 0;
    let rounds: u64 = std::env::var("SEALFS_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    for round in 0..rounds {
        let shared = Arc::new(Mutex::new(st.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let live = Arc::new(std::sync::atomic::AtomicUsize::new(2));
        std::thread::scope(|s| {
            // Stops the writers even if this thread panics (the scope would
            // otherwise wait for them forever).
            struct Stop(Arc<AtomicBool>);
            impl Drop for Stop {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
            let _stop = Stop(stop.clone());
            for w in 0..2u64 {
                let live = live.clone();
                let (shared, stop, writes) = (shared.clone(), stop.clone(), writes.clone());
                let m = &m;
                let mut rng =
                    Rng(seed ^ (round * 7 + w + 1u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
                s.spawn(move || {
                    struct Gone(Arc<std::sync::atomic::AtomicUsize>);
                    impl Drop for Gone {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, Ordering::Relaxed);
                        }
                    }
                    let _gone = Gone(live);
                    while !stop.load(Ordering::Relaxed) {
                        // Writer w owns the files i with i % 2 == w.
                        let i = (rng.next() as usize % (FILES / 2)) * 2 + w as usize;
                        let g = {
                            let mut s = shared.lock().unwrap();
                            let g = s.done[i] + 1;
                            s.inflight[i] = Some(g);
                            g
                        };
                        if write_gen(m, i, g, &mut rng).is_err() {
                            return; // the daemon is gone: this one stays in flight
                        }
                        let mut s = shared.lock().unwrap();
                        s.done[i] = g;
                        s.inflight[i] = None;
                        writes.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            // Kill at a point that varies: after some writes have landed.
            let want = 20 + rng.next() % 60;
            while writes.load(Ordering::Relaxed) < want {
                assert!(
                    live.load(Ordering::Relaxed) > 0,
                    "both writers failed before the kill"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            // Every process serving this mount, and wait until they are gone:
            // nothing may reach the vault after this point.
            let pattern = format!("sealfs mount.*{}", p(&m.mnt));
            let pkill = Command::new("pkill").args(["-9", "-f", &pattern]).status();
            assert!(pkill.unwrap().success(), "no daemon to kill");
            while Command::new("pgrep")
                .args(["-f", &pattern])
                .output()
                .unwrap()
                .status
                .success()
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            stop.store(true, Ordering::Relaxed);
        });
        writes_total += writes.load(Ordering::Relaxed);
        let _ = Command::new("umount").arg("-l").arg(&m.mnt).status();
        m.forget_mounted();
        st = shared.lock().unwrap().clone();
        in_flight_total += st.inflight.iter().flatten().count();
        // A temporary left by an atomic save is the user's file: keep it.
        m.mount(&[]);
        let torn = verify(&m, &st);
        m.umount();
        let o = sealfs(&["fsck", "--passfile", p(&m.passfile), p(&m.vault)]);
        let out =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        // fsck names exactly files that were in flight (a file or the
        // temporary of an atomic save), and every torn one among them.
        let flying: Vec<usize> = (0..FILES).filter(|&i| st.inflight[i].is_some()).collect();
        let damaged: Vec<&str> = out.lines().filter(|l| l.contains("DAMAGE")).collect();
        for l in &damaged {
            assert!(
                flying.iter().any(|i| {
                    l.contains(&format!("(/f{i})")) || l.contains(&format!("(/.f{i}.tmp)"))
                }),
                "fsck names a file that was not in flight: {l}"
            );
        }
        for i in &torn {
            assert!(
                damaged.iter().any(|l| l.contains(&format!("(/f{i})"))),
                "fsck does not name f{i}: {out}"
            );
        }
        if flying.is_empty() {
            assert!(o.status.success(), "fsck: {out}");
        }
        eprintln!(
            "round {round}: {} writes, killed; in flight {:?}, torn {:?}",
            writes.load(Ordering::Relaxed),
            st.inflight
                .iter()
                .enumerate()
                .filter_map(|(i, g)| g.map(|_| i))
                .collect::<Vec<_>>(),
            torn
        );
        // Start the next round from a known state.
        m.mount(&[]);
        for i in 0..FILES {
            // What a user does after a crash: the interrupted atomic save's
            // temporary (possibly damaged) goes; so does a damaged file.
            let _ = std::fs::remove_file(m.path(&format!(".f{i}.tmp")));
            if st.inflight[i].take().is_some() || torn.contains(&i) {
                let g = st.done[i] + 100;
                let _ = std::fs::remove_file(m.path(&format!("f{i}")));
                std::fs::write(m.path(&format!("f{i}")), content(i, g)).unwrap();
                st.done[i] = g;
            }
        }
        for i in 0..FILES {
            let f = std::fs::File::open(m.path(&format!("f{i}"))).unwrap();
            f.sync_all().unwrap();
        }
    }
    eprintln!(
        "{writes_total} synced writes across {rounds} kills, {in_flight_total} files caught in flight"
    );
    assert!(writes_total >= 20 * rounds);
    // The kills did land in the middle of writes (else nothing was tested).
    assert!(in_flight_total >= 1);
}

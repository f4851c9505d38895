//! Concurrency stress through a mount: threads create, write, read, rename
//! (across directories, over their own files), unlink, truncate and hard-link
//! in the same directories at once, each against its own model (disjoint
//! names, shared directories). No operation may fail where a plain directory
//! would not; no deadlock (a watchdog bounds the run); afterwards, and after
//! a remount, the tree equals the models: names, contents, link counts.
//! Longer: SEALFS_STRESS_OPS=20000 cargo test --release --test mount_stress.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::mpsc;
use std::time::Duration;

use common::mount::Mounted;
use common::{Rng, pattern};

const DIRS: usize = 4;
const THREADS: usize = 6;

/// One thread's view: its names (dir, name) -> inode, and inode contents.
#[derive(Default)]
struct Model {
    names: BTreeMap<(usize, String), usize>,
    inodes: BTreeMap<usize, Vec<u8>>,
    next_inode: usize,
    next_name: usize,
}

impl Model {
    fn pick(&self, rng: &mut Rng) -> Option<((usize, String), usize)> {
        if self.names.is_empty() {
            return None;
        }
        let k = rng.below(self.names.len());
        self.names.iter().nth(k).map(|(n, i)| (n.clone(), *i))
    }

    fn links(&self, inode: usize) -> usize {
        self.names.values().filter(|&&i| i == inode).count()
    }

    fn drop_name(&mut self, n: &(usize, String)) {
        if let Some(i) = self.names.remove(n) {
            if self.links(i) == 0 {
                self.inodes.remove(&i);
            }
        }
    }
}

fn run_thread(m: &Mounted, t: usize, ops: usize, seed: u64) -> Model {
    let mut rng = Rng(seed | 1);
    let mut model = Model::default();
    let path = |d: usize, n: &str| m.path(&format!("d{d}/{n}"));
    for op in 0..ops {
        match rng.below(10) {
            // create
            0 | 1 => {
                let name = format!("t{t}-{}", model.next_name);
                model.next_name += 1;
                let d = rng.below(DIRS);
                let data = pattern(rng.below(3 * 4096 + 1), rng.next());
                std::fs::write(path(d, &name), &data)
                    .unwrap_or_else(|e| panic!("t{t} op {op} create: {e}"));
                let i = model.next_inode;
                model.next_inode += 1;
                model.inodes.insert(i, data);
                model.names.insert((d, name), i);
            }
            // write at an offset
            2 | 3 => {
                let Some(((d, n), i)) = model.pick(&mut rng) else {
                    continue;
                };
                let data = pattern(1 + rng.below(6000), rng.next());
                let len = model.inodes[&i].len();
                let off = rng.below(len + 4096);
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path(d, &n))
                    .unwrap();
                f.write_all_at(&data, off as u64)
                    .unwrap_or_else(|e| panic!("t{t} op {op} write: {e}"));
                let c = model.inodes.get_mut(&i).unwrap();
                if c.len() < off + data.len() {
                    c.resize(off + data.len(), 0);
                }
                c[off..off + data.len()].copy_from_slice(&data);
            }
            // read and check
            4 => {
                let Some(((d, n), i)) = model.pick(&mut rng) else {
                    continue;
                };
                let got =
                    std::fs::read(path(d, &n)).unwrap_or_else(|e| panic!("t{t} op {op} read: {e}"));
                assert!(
                    got == model.inodes[&i],
                    "t{t} op {op}: d{d}/{n} content differs"
                );
            }
            // rename, sometimes over another of its own names
            5 | 6 => {
                let Some(((d, n), i)) = model.pick(&mut rng) else {
                    continue;
                };
                let to = if rng.below(3) == 0 {
                    match model.pick(&mut rng) {
                        Some((to, j)) if j != i => to,
                        _ => continue,
                    }
                } else {
                    let name = format!("t{t}-{}", model.next_name);
                    model.next_name += 1;
                    (rng.below(DIRS), name)
                };
                std::fs::rename(path(d, &n), path(to.0, &to.1))
                    .unwrap_or_else(|e| panic!("t{t} op {op} rename: {e}"));
                model.drop_name(&to);
                model.names.remove(&(d, n));
                model.names.insert(to, i);
            }
            // unlink
            7 => {
                let Some((n, _)) = model.pick(&mut rng) else {
                    continue;
                };
                std::fs::remove_file(path(n.0, &n.1))
                    .unwrap_or_else(|e| panic!("t{t} op {op} unlink: {e}"));
                model.drop_name(&n);
            }
            // truncate
            8 => {
                let Some(((d, n), i)) = model.pick(&mut rng) else {
                    continue;
                };
                let len = rng.below(3 * 4096);
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path(d, &n))
                    .unwrap();
                f.set_len(len as u64)
                    .unwrap_or_else(|e| panic!("t{t} op {op} truncate: {e}"));
                model.inodes.get_mut(&i).unwrap().resize(len, 0);
            }
            // hard link
            _ => {
                let Some(((d, n), i)) = model.pick(&mut rng) else {
                    continue;
                };
                let name = format!("t{t}-{}", model.next_name);
                model.next_name += 1;
                let to = rng.below(DIRS);
                std::fs::hard_link(path(d, &n), path(to, &name))
                    .unwrap_or_else(|e| panic!("t{t} op {op} link: {e}"));
                model.names.insert((to, name), i);
            }
        }
    }
    model
}

fn verify(m: &Mounted, models: &[Model]) {
    for d in 0..DIRS {
        let mut listed: Vec<String> = std::fs::read_dir(m.path(&format!("d{d}")))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        listed.sort();
        let mut want: Vec<String> = models
            .iter()
            .flat_map(|md| {
                md.names
                    .keys()
                    .filter(|(x, _)| *x == d)
                    .map(|(_, n)| n.clone())
            })
            .collect();
        want.sort();
        assert_eq!(listed, want, "d{d} listing");
    }
    for (t, md) in models.iter().enumerate() {
        for ((d, n), i) in &md.names {
            let p = m.path(&format!("d{d}/{n}"));
            assert!(
                std::fs::read(&p).unwrap() == md.inodes[i],
                "t{t}: d{d}/{n} content"
            );
            assert_eq!(
                std::fs::metadata(&p).unwrap().nlink() as usize,
                md.links(*i),
                "t{t}: d{d}/{n} links"
            );
        }
    }
}

#[test]
fn threads_in_shared_directories_leave_the_tree_their_models_describe() {
    let mut m = Mounted::new(&[]);
    for d in 0..DIRS {
        std::fs::create_dir(m.path(&format!("d{d}"))).unwrap();
    }
    let ops: usize = std::env::var("SEALFS_STRESS_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}, {THREADS} threads x {ops} operations");
    let (tx, rx) = mpsc::channel();
    let models = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (m, tx) = (&m, tx.clone());
                s.spawn(move || {
                    // Signals the watchdog when the thread ends, panics included.
                    struct Done(mpsc::Sender<()>);
                    impl Drop for Done {
                        fn drop(&mut self) {
                            let _ = self.0.send(());
                        }
                    }
                    let _done = Done(tx);
                    run_thread(m, t, ops, seed.wrapping_add(t as u64 * 0x9e37_79b9))
                })
            })
            .collect();
        // The watchdog: every thread finishes within the bound, or it is a hang.
        for _ in 0..THREADS {
            if rx.recv_timeout(Duration::from_secs(300)).is_err() {
                // Unmounting makes every blocked call fail, so the scope can end.
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(&m.mnt)
                    .status();
                panic!("a thread made no progress for 300 s: deadlock");
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    verify(&m, &models);
    m.remount();
    verify(&m, &models);
    assert!(!m.log().contains("ERROR"), "{}", m.log());
}

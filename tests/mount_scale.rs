//! Scale: the daemon holds a bounded number of descriptors whatever the
//! kernel caches, paths of any depth work, large trees stay correct, and
//! entries changed behind the mount never serve another file's bytes.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::mount::Mounted;
use common::pattern;

/// (soft, hard) "Max open files" of a process.
fn fd_limits(pid: i32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = s
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (v[0], v[1])
}

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd dir")
        .count()
}

fn assert_log_clean(m: &Mounted) {
    let log = m.log();
    for bad in ["ERROR", "panic", "Too many open files", "EMFILE"] {
        assert!(!log.contains(bad), "daemon log has {bad:?}:\n{log}");
    }
}

fn content(i: usize) -> Vec<u8> {
    // Mostly tiny files; every 97th spans several chunks.
    let len = if i % 97 == 0 {
        9000 + i % 5000
    } else {
        1 + i % 300
    };
    pattern(len, i as u64)
}

/// The test tree's model: each directory's current path, and each live
/// file's (directory, name).
struct Model {
    dirs: Vec<PathBuf>,
    files: BTreeMap<usize, (usize, String)>,
    gone: Vec<PathBuf>,
}

impl Model {
    fn path(&self, i: usize) -> PathBuf {
        let (d, n) = &self.files[&i];
        self.dirs[*d].join(n)
    }

    fn verify(&self, root: &Path) {
        for (&i, _) in self.files.iter() {
            let path = root.join(self.path(i));
            let got = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
            assert!(got == content(i), "content of {path:?} differs");
        }
        for g in &self.gone {
            let path = root.join(g);
            assert!(
                std::fs::symlink_metadata(&path).is_err(),
                "{path:?} should be gone"
            );
        }
    }
}

#[test]
fn twenty_thousand_files_under_a_256_descriptor_limit() {
    let mut m = Mounted::new_under(&["prlimit", "--nofile=256:256"], &[]);
    let pid = m.daemon_pid();
    assert_eq!(fd_limits(pid), (256, 256), "the daemon's limit must hold");

    // 200 directories in chains of up to 6 levels, 100 files each.
    let mut model = Model {
        dirs: Vec::new(),
        files: BTreeMap::new(),
        gone: Vec::new(),
    };
    for i in 0..200 {
        let path = if i % 6 == 0 {
            PathBuf::from(format!("chain{i}"))
        } else {
            model.dirs[i - 1].join(format!("level{i}"))
        };
        std::fs::create_dir(m.mnt.join(&path)).expect("mkdir");
        model.dirs.push(path);
    }
    for i in 0..20_000 {
        let d = i % 200;
        let name = format!("file-{i}.txt");
        std::fs::write(m.mnt.join(&model.dirs[d]).join(&name), content(i)).expect("create");
        model.files.insert(i, (d, name));
    }
    assert!(fd_count(pid) <= 256);

    // Stat and read every one.
    for &i in model.files.keys() {
        let path = m.mnt.join(model.path(i));
        assert_eq!(
            std::fs::metadata(&path).expect("stat").len(),
            content(i).len() as u64
        );
    }
    model.verify(&m.mnt);

    // Rename half the files, across directories.
    for i in (0..20_000).step_by(2) {
        let old = model.path(i);
        let d = (model.files[&i].0 + 7) % 200;
        let name = format!("moved-{i}");
        std::fs::rename(m.mnt.join(&old), m.mnt.join(&model.dirs[d]).join(&name)).expect("rename");
        model.files.insert(i, (d, name));
        model.gone.push(old);
    }
    // Move every fourth chain (a directory with its subtree) under the
    // deepest directory of the next chain.
    for k in (0..32).step_by(4) {
        let (head, target) = (6 * k, 6 * (k + 1) + 5);
        let old = model.dirs[head].clone();
        let new = model.dirs[target].join(format!("adopted{head}"));
        std::fs::rename(m.mnt.join(&old), m.mnt.join(&new)).expect("rename dir");
        for d in model.dirs.iter_mut() {
            if let Ok(rest) = d.strip_prefix(&old) {
                *d = new.join(rest);
            }
        }
        model.gone.push(old);
    }
    // Remove a quarter.
    for i in (1..20_000).step_by(4) {
        let path = model.path(i);
        std::fs::remove_file(m.mnt.join(&path)).expect("unlink");
        model.files.remove(&i);
        model.gone.push(path);
    }
    model.verify(&m.mnt);
    assert!(fd_count(pid) <= 256);
    assert_log_clean(&m);

    m.remount();
    assert_eq!(fd_limits(m.daemon_pid()), (256, 256));
    model.verify(&m.mnt);
    assert_log_clean(&m);
}

#[test]
fn vault_paths_longer_than_path_max() {
    let m = Mounted::new_under(&["prlimit", "--nofile=64:64"], &[]);
    // 100-byte names encrypt to 171-byte vault names: 30 levels make a
    // plaintext path of about 3 KiB and a vault path of about 5 KiB.
    let mut rel = PathBuf::new();
    for i in 0..30 {
        rel.push(format!("{i:02}{}", "d".repeat(98)));
    }
    std::fs::create_dir_all(m.mnt.join(&rel)).expect("deep mkdir");
    let bottom = m.mnt.join(&rel);
    std::fs::write(bottom.join("a"), b"at the bottom").unwrap();
    assert_eq!(std::fs::read(bottom.join("a")).unwrap(), b"at the bottom");
    std::fs::rename(bottom.join("a"), bottom.join("b")).unwrap();
    assert_eq!(std::fs::read(bottom.join("b")).unwrap(), b"at the bottom");
    assert!(!bottom.join("a").exists());

    // The vault really is deeper than PATH_MAX.
    let o = Command::new("find")
        .arg(&m.vault)
        .args(["-type", "f", "-printf", "%d %p\n"])
        .output()
        .expect("find");
    let longest = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.len())
        .max()
        .unwrap_or(0);
    assert!(longest > 4096, "longest vault path is only {longest} bytes");

    // Reached again from a cold cache.
    Command::new("sh")
        .args(["-c", "echo 2 > /proc/sys/vm/drop_caches"])
        .status()
        .unwrap();
    assert_eq!(std::fs::read(bottom.join("b")).unwrap(), b"at the bottom");
    std::fs::remove_file(bottom.join("b")).unwrap();
    assert!(!bottom.join("b").exists());
    std::fs::remove_dir(&bottom).unwrap();
    assert!(!bottom.exists());
    assert_log_clean(&m);
}

#[test]
fn hundred_thousand_files() {
    let m = Mounted::new_under(&["prlimit", "--nofile=1024:1024"], &[]);
    let pid = m.daemon_pid();
    let t0 = Instant::now();
    let mut t = Instant::now();
    let mut times = Vec::new();
    let mut lap = |what: &str, t: &mut Instant| {
        times.push(format!("{what} {:.2}s", t.elapsed().as_secs_f64()));
        *t = Instant::now();
    };
    for d in 0..100 {
        let dir = m.mnt.join(format!("dir{d:03}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..1000 {
            std::fs::write(dir.join(format!("f{f:04}")), format!("{d}/{f}")).expect("create");
        }
    }
    lap("create", &mut t);
    let run = |cmd: &str| {
        let o = Command::new("sh")
            .args(["-c", cmd])
            .current_dir(&m.mnt)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let drop_caches = || run("sync; echo 3 > /proc/sys/vm/drop_caches");
    drop_caches();
    let ls = run("ls -lR . | grep -c '^-'");
    assert_eq!(ls.trim(), "100000");
    lap("ls -lR", &mut t);
    drop_caches();
    assert_eq!(run("find . -type f | wc -l").trim(), "100000");
    lap("find", &mut t);
    drop_caches();
    run("du -s .");
    lap("du", &mut t);
    drop_caches();
    for d in 0..100 {
        for f in 0..1000 {
            let mut s = String::new();
            std::fs::File::open(m.mnt.join(format!("dir{d:03}/f{f:04}")))
                .and_then(|mut h| h.read_to_string(&mut s))
                .expect("read");
            assert_eq!(s, format!("{d}/{f}"));
        }
    }
    lap("read all", &mut t);
    assert!(fd_count(pid) <= 1024);
    run("rm -rf ./*");
    lap("rm -rf", &mut t);
    assert_eq!(std::fs::read_dir(&m.mnt).unwrap().count(), 0);
    assert_log_clean(&m);
    eprintln!(
        "100000 files: {} (total {:.1}s)",
        times.join(", "),
        t0.elapsed().as_secs_f64()
    );
}

/// The vault entry at the vault's top level whose inode is `ino` (the
/// daemon serves vault inode numbers).
fn vault_entry_of(m: &Mounted, ino: u64) -> PathBuf {
    for e in std::fs::read_dir(&m.vault).unwrap() {
        let e = e.unwrap();
        if e.metadata().unwrap().ino() == ino {
            return e.path();
        }
    }
    panic!("no vault entry with inode {ino}");
}

#[test]
fn a_replaced_entry_never_serves_another_files_bytes() {
    // A tiny budget, so the open state is evicted between reads.
    let m = Mounted::new_under(&["prlimit", "--nofile=64:64"], &[]);
    std::fs::write(m.path("a"), b"the old content of a").unwrap();
    std::fs::write(m.path("b"), b"B B B B B B B B").unwrap();
    let ino_a = std::fs::metadata(m.path("a")).unwrap().ino();
    let ino_b = std::fs::metadata(m.path("b")).unwrap().ino();
    let mut held = std::fs::File::open(m.path("a")).unwrap();
    let mut buf = Vec::new();
    held.read_to_end(&mut buf).unwrap();
    assert_eq!(buf, b"the old content of a");

    // A sync tool replaces a's vault file by renaming another one over it.
    let va = vault_entry_of(&m, ino_a);
    let vb = vault_entry_of(&m, ino_b);
    let tmp = m.vault.join(".syncthing.tmp");
    std::fs::copy(&vb, &tmp).unwrap();
    std::fs::rename(&tmp, &va).unwrap();
    // Push a's open state out of the daemon's cache.
    for i in 0..100 {
        std::fs::write(m.path(&format!("other{i}")), b"x").unwrap();
        std::fs::read(m.path(&format!("other{i}"))).unwrap();
    }
    // The held inode is gone from the vault: an error (ESTALE from the
    // daemon; a buffered read reports it as EIO), never b's bytes.
    use std::os::unix::fs::FileExt;
    let mut again = vec![0u8; 64];
    Command::new("sh")
        .args(["-c", "echo 1 > /proc/sys/vm/drop_caches"])
        .status()
        .unwrap();
    let e = held
        .read_at(&mut again, 0)
        .expect_err("a replaced entry read through its old inode");
    assert!(
        matches!(e.raw_os_error(), Some(libc::ESTALE | libc::EIO)),
        "{e}"
    );
    // By name, once the kernel looks again, the name shows what the vault
    // holds now (a whole-file swap is not detectable; see sealfs-format(5)).
    drop(held);
    Command::new("sh")
        .args(["-c", "echo 2 > /proc/sys/vm/drop_caches"])
        .status()
        .unwrap();
    assert_eq!(std::fs::read(m.path("a")).unwrap(), b"B B B B B B B B");
    assert_log_clean(&m);
}

#[test]
fn a_directory_renamed_or_removed_behind_the_mount() {
    let m = Mounted::new_under(&["prlimit", "--nofile=64:64"], &[]);
    for d in ["d1", "d2"] {
        std::fs::create_dir(m.path(d)).unwrap();
        for i in 0..50 {
            std::fs::write(m.path(&format!("{d}/f{i}")), format!("{d} {i}")).unwrap();
        }
    }
    let ino = std::fs::metadata(m.path("d1")).unwrap().ino();
    let vd = vault_entry_of(&m, ino);
    // Renamed outside the mount: the cached directory's entries fail
    // (ESTALE or ENOENT) or still read right; never another file's bytes.
    std::fs::rename(&vd, m.vault.join("somewhere-else")).unwrap();
    for i in 0..50 {
        match std::fs::read(m.path(&format!("d1/f{i}"))) {
            Ok(b) => assert_eq!(b, format!("d1 {i}").as_bytes()),
            Err(e) => assert!(
                matches!(e.raw_os_error(), Some(libc::ESTALE | libc::ENOENT)),
                "{e}"
            ),
        }
    }
    // The other directory is untouched.
    for i in 0..50 {
        assert_eq!(
            std::fs::read(m.path(&format!("d2/f{i}"))).unwrap(),
            format!("d2 {i}").as_bytes()
        );
    }
    // Removed outside the mount: listing the root still works.
    std::fs::remove_dir_all(m.vault.join("somewhere-else")).unwrap();
    Command::new("sh")
        .args(["-c", "echo 2 > /proc/sys/vm/drop_caches"])
        .status()
        .unwrap();
    let names: Vec<_> = std::fs::read_dir(&m.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("d2")]);
    assert!(std::fs::read(m.path("d1/f0")).is_err());
    assert_eq!(std::fs::read(m.path("d2/f0")).unwrap(), b"d2 0");
}

//! Concurrency, corruption, bad input and shutdown on a real mount.

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::process::Command;
use std::sync::Arc;

use common::mount::{Mounted, p, sealfs};
use common::pattern;

/// Held by the tests that drop the kernel's caches, and by the one that
/// counts the daemon's fds (a drop by another test would empty its count).
static KERNEL_CACHES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn caches() -> std::sync::MutexGuard<'static, ()> {
    KERNEL_CACHES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn concurrent_writers_on_different_and_same_files() {
    let m = Arc::new(Mounted::new(&[]));
    const PER: usize = 300_000;
    let mut threads = Vec::new();
    for t in 0..8u64 {
        let m = m.clone();
        threads.push(std::thread::spawn(move || {
            let path = m.path(&format!("own{t}"));
            let data = pattern(PER, t);
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            for (i, piece) in data.chunks(7919).enumerate() {
                f.write_all_at(piece, (i * 7919) as u64).unwrap();
                if i % 5 == 0 {
                    let mut back = vec![0u8; piece.len()];
                    f.read_exact_at(&mut back, (i * 7919) as u64).unwrap();
                    assert_eq!(back, piece);
                }
            }
        }));
    }
    let shared = m.path("shared");
    fs::File::create(&shared)
        .unwrap()
        .set_len(4 * PER as u64)
        .unwrap();
    for t in 0..4u64 {
        let shared = shared.clone();
        threads.push(std::thread::spawn(move || {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&shared)
                .unwrap();
            let data = pattern(PER, 100 + t);
            let base = t * PER as u64;
            for (i, piece) in data.chunks(5003).enumerate() {
                f.write_all_at(piece, base + (i * 5003) as u64).unwrap();
            }
        }));
    }
    for t in threads {
        t.join().expect("worker panicked");
    }
    for t in 0..8u64 {
        assert!(
            fs::read(m.path(&format!("own{t}"))).unwrap() == pattern(PER, t),
            "own{t}"
        );
    }
    let all = fs::read(&shared).unwrap();
    for t in 0..4usize {
        assert!(
            all[t * PER..(t + 1) * PER] == pattern(PER, 100 + t as u64)[..],
            "shared range {t}"
        );
    }
}

#[test]
fn a_corrupt_chunk_fails_only_its_range_and_foreign_files_are_hidden() {
    let mut m = Mounted::new(&[]);
    let data = pattern(5 * 4096, 4);
    fs::write(m.path("victim"), &data).unwrap();
    fs::write(m.path("fine"), b"fine").unwrap();
    m.umount();
    // Flip a byte inside chunk 2 of the victim (the larger of the two vault files).
    let mut files: Vec<_> = fs::read_dir(&m.vault)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.ends_with("sealfs.conf"))
        .collect();
    files.sort_by_key(|p| fs::metadata(p).unwrap().len());
    let victim = files.last().unwrap().clone();
    let mut bytes = fs::read(&victim).unwrap();
    bytes[88 + 2 * (4096 + 28) + 100] ^= 1;
    fs::write(&victim, bytes).unwrap();
    fs::write(
        m.vault.join("not-a-sealfs-file.txt"),
        b"dropped here by someone",
    )
    .unwrap();
    m.mount(&[]);
    let mut names: Vec<_> = fs::read_dir(&m.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, vec!["fine", "victim"], "foreign entry hidden");
    let f = fs::File::open(m.path("victim")).unwrap();
    let mut buf = vec![0u8; 4096];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(buf, data[..4096]);
    f.read_exact_at(&mut buf, 3 * 4096).unwrap();
    assert_eq!(buf, data[3 * 4096..4 * 4096]);
    let err = f.read_exact_at(&mut buf, 2 * 4096).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    assert_eq!(fs::read(m.path("fine")).unwrap(), b"fine");
    drop(f);
    m.umount();
    let log = m.log();
    assert!(
        log.contains("not-a-sealfs-file.txt"),
        "warning names the vault path: {log}"
    );
    assert!(
        log.contains(victim.file_name().unwrap().to_str().unwrap()),
        "EIO names the vault path: {log}"
    );
}

/// A damaged file can be overwritten, as on a kernel filesystem: a truncate
/// to zero needs none of its bytes, so `cp backup damaged` (an open with
/// O_TRUNC) works whether a chunk or the header is damaged, and the file
/// then holds exactly what was written, also after a remount. A truncate
/// that keeps damaged bytes still fails with EIO.
#[test]
fn a_damaged_file_can_be_emptied_and_rewritten() {
    use sealfs::format::chunk::CHUNK_OVERHEAD;
    use sealfs::format::header::HEADER_LEN;
    let mut m = Mounted::new(&[]);
    let data = pattern(3 * 4096 + 10, 5);
    for name in ["bad-chunk", "bad-header"] {
        fs::write(m.path(name), &data).unwrap();
    }
    m.umount();
    let damage = |name: &str, at: usize| {
        let path = m.vault.join(m.vault_entry(name));
        let mut bytes = fs::read(&path).unwrap();
        bytes[at] ^= 0x40;
        fs::write(&path, bytes).unwrap();
    };
    damage(
        "bad-chunk",
        HEADER_LEN + (4096 + CHUNK_OVERHEAD as usize) + 50,
    );
    damage("bad-header", 70); // inside the wrapped file key
    m.mount(&[]);
    let eio = |r: std::io::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.raw_os_error(), Some(libc::EIO), "{what}: {e}");
    };
    eio(
        fs::read(m.path("bad-chunk")).map(drop),
        "read damaged chunk",
    );
    eio(
        fs::read(m.path("bad-header")).map(drop),
        "read damaged header",
    );
    let set_len = |name: &str, len: u64| {
        OpenOptions::new()
            .write(true)
            .open(m.path(name))
            .and_then(|f| f.set_len(len))
    };
    eio(
        set_len("bad-chunk", 4096 + 10),
        "truncate into the damaged chunk",
    );
    eio(set_len("bad-header", 10), "truncate a file whose key fails");
    fs::write(m.path("bad-chunk"), b"restored from backup").unwrap();
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(m.path("bad-header"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"rewritten").unwrap();
    drop(f);
    for _ in 0..2 {
        assert_eq!(
            fs::read(m.path("bad-chunk")).unwrap(),
            b"restored from backup"
        );
        assert_eq!(fs::read(m.path("bad-header")).unwrap(), b"rewritten");
        m.umount();
        m.mount(&[]);
    }
    m.umount();
    // Only the file whose key failed needed a fresh header (the other one
    // opened, and a truncate to zero reads no chunk), and the log says so by
    // its vault name.
    let log = m.log();
    let emptied: Vec<_> = log.lines().filter(|l| l.contains("emptied")).collect();
    let entry = m.vault_entry("bad-header");
    assert!(
        emptied.len() == 1 && emptied[0].contains(&entry),
        "one line names the emptied vault file {entry}: {log}"
    );
}

#[test]
fn bad_mount_requests_get_clear_errors() {
    let m = Mounted::new(&[]);
    let pf = p(&m.passfile);
    let other = m.tmp.path().join("other-mnt");
    fs::create_dir(&other).unwrap();
    // Already mounted vault: refused, nothing corrupted.
    let o = sealfs(&["mount", "--passfile", pf, p(&m.vault), p(&other)]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already mounted"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Missing and non-empty mountpoints.
    let o = sealfs(&[
        "mount",
        "--passfile",
        pf,
        p(&m.vault),
        p(&m.tmp.path().join("nope")),
    ]);
    assert!(!o.status.success());
    let full = m.tmp.path().join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("x"), b"").unwrap();
    let o = sealfs(&["mount", "--passfile", pf, p(&m.vault), p(&full)]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not empty"));
    // Not a vault.
    let o = sealfs(&["mount", "--passfile", pf, p(&other), p(&other)]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a sealfs vault"));
    // Wrong password: 12.
    let bad = m.tmp.path().join("badpw");
    fs::write(&bad, "nope\n").unwrap();
    let second = m.tmp.path().join("v2");
    let o = sealfs(&[
        "init",
        "--passfile",
        pf,
        "--kdf-memory",
        "64",
        "--recovery-key-file",
        p(&m.tmp.path().join("rk2")),
        p(&second),
    ]);
    assert!(o.status.success());
    let o = sealfs(&["mount", "--passfile", p(&bad), p(&second), p(&other)]);
    assert_eq!(o.status.code(), Some(12));
    assert_eq!(fs::read_dir(&other).unwrap().count(), 0);
    // The original mount still works.
    fs::write(m.path("still"), b"ok").unwrap();
    assert_eq!(fs::read(m.path("still")).unwrap(), b"ok");
}

#[test]
fn backing_directory_disappearing_gives_errors_not_a_crash() {
    let _caches = caches();
    let mut m = Mounted::new(&[]);
    fs::create_dir(m.path("d")).unwrap();
    fs::write(m.path("d/f"), b"data").unwrap();
    // The sync tool removes the whole vault content underneath us.
    for e in fs::read_dir(&m.vault).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            fs::remove_dir_all(e.path()).unwrap();
        }
    }
    // Once the kernel's caches are dropped it must ask the daemon, which
    // finds the directory gone: ENOENT, never other bytes.
    fs::write("/proc/sys/vm/drop_caches", "3").expect("drop caches (root)");
    let err = fs::read(m.path("d/f")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    let err = fs::write(m.path("d/g"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    // The daemon is alive and serves the root.
    fs::write(m.path("root-file"), b"alive").unwrap();
    assert_eq!(fs::read(m.path("root-file")).unwrap(), b"alive");
    m.umount();
}

#[test]
fn sigterm_flushes_and_unmounts_cleanly() {
    let m = Mounted::new(&[]);
    fs::write(m.path("f"), pattern(100_000, 1)).unwrap();
    let pid = m.daemon_pid();
    // SAFETY: pidfd_open on a pid we just found; the fd is closed below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    assert!(pidfd >= 0);
    // SAFETY: sending SIGTERM to the daemon.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let mut pfd = libc::pollfd {
        fd: pidfd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; waits for the daemon to exit.
    assert_eq!(
        unsafe { libc::poll(&mut pfd, 1, 30_000) },
        1,
        "daemon exited"
    );
    // SAFETY: closing the pidfd we opened.
    unsafe { libc::close(pidfd) };
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(p(&m.mnt)), "unmounted");
    let v =
        sealfs::vault::Vault::unlock(&m.vault, sealfs::vault::Secret::Password(b"test password"))
            .unwrap();
    let f = v
        .root()
        .unwrap()
        .open_file(std::ffi::OsStr::new("f"), false)
        .unwrap();
    assert_eq!(f.size(), 100_000);
    // The guard's umount now fails harmlessly; forget it.
    std::mem::forget(m);
}

/// A signal that arrives after the kernel has the mount but before the
/// daemon has recorded it as its own (held in that window by a debug-build
/// hook) still ends in an unmount, not in a dead mount that answers
/// "Transport endpoint is not connected" until someone unmounts it by hand.
#[test]
fn a_signal_while_mounting_leaves_no_mount_behind() {
    use common::mount::{mount_line, wait_for};
    use std::process::Stdio;
    let mut m = Mounted::new(&[]);
    m.umount();
    let marker = tempfile::tempdir().unwrap();
    let held = marker.path().join("held");
    // Whatever happens below, the guard unmounts what is left and the
    // child is killed (the hook would hold it forever).
    m.adopt();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(
        Command::new(common::mount::BIN)
            .args(["mount", "--foreground", "--passfile"])
            .args([p(&m.passfile), p(&m.vault), p(&m.mnt)])
            .env("SEALFS_TEST_HOLD_MOUNT", &held)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_for(30, || held.exists()),
        "the daemon reached the hold"
    );
    assert!(mount_line(&m.mnt).is_some(), "the kernel has the mount");
    let kill = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.0.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        !status.success(),
        "a stopped mount is a failed mount: {err}"
    );
    assert!(err.contains("stopped by a signal while mounting"), "{err}");
    assert!(mount_line(&m.mnt).is_none(), "no mount left behind");
    m.forget_mounted();
    // The vault mounts and serves again.
    m.mount(&[]);
    fs::write(m.path("after"), b"ok").unwrap();
    assert_eq!(fs::read(m.path("after")).unwrap(), b"ok");
}

/// The inode table follows the kernel's cache: after the kernel forgets
/// inodes (dropped caches), the daemon closes their fds.
#[test]
fn forgotten_inodes_release_their_fds() {
    let _caches = caches();
    let m = Mounted::new(&[]);
    fs::create_dir(m.path("many")).unwrap();
    for i in 0..2000 {
        fs::write(m.path(&format!("many/f{i}")), b"x").unwrap();
    }
    let pid = m.daemon_pid();
    let fds = || fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    for e in fs::read_dir(m.path("many")).unwrap() {
        fs::metadata(e.unwrap().path()).unwrap();
    }
    let busy = fds();
    assert!(busy >= 2000, "one fd per known inode: {busy}");
    // Ask the kernel to drop its dentry and inode caches: it sends FORGET.
    fs::write("/proc/sys/vm/drop_caches", "2").unwrap();
    // The kernel queues FORGETs and hands them out ahead of other requests,
    // so each request we make drives the daemon through the queue.
    let mut after = fds();
    for _ in 0..2000 {
        if after < 500 {
            break;
        }
        // opendir always reaches the daemon (no kernel cache answers it).
        fs::read_dir(&m.mnt).unwrap().count();
        after = fds();
    }
    assert!(after < 500, "fds after forget: {after} (before: {busy})");
}

/// A growing write that runs out of space leaves the file as it was:
/// readable, its final chunk still marked last, and appendable.
#[test]
fn a_write_failing_with_enospc_leaves_the_file_intact() {
    struct Tmpfs(std::path::PathBuf);
    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix("sealfs-test-")
        .tempdir()
        .unwrap();
    let small = tmp.path().join("small");
    fs::create_dir(&small).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(st.success(), "mounting a 1 MiB tmpfs (needs root)");
    let _guard = Tmpfs(small.clone());
    let vault_path = small.join("v");
    let (vault, _) =
        sealfs::vault::Vault::create(&vault_path, b"pw", common::fast_opts(4096)).unwrap();
    let root = vault.root().unwrap();
    let (mut f, _) = root
        .create_file(std::ffi::OsStr::new("f"), 0o644, true)
        .unwrap();
    let start = pattern(10_000, 1);
    f.write_at(&start, 0).unwrap();
    let err = f.write_at(&pattern(4 << 20, 2), 10_000).unwrap_err();
    assert_eq!(err.to_errno(), libc::ENOSPC);
    assert_eq!(f.size(), 10_000);
    drop(f);
    let mut f = root.open_file(std::ffi::OsStr::new("f"), true).unwrap();
    assert_eq!(f.size(), 10_000);
    let mut back = vec![0u8; 10_000];
    f.read_at(&mut back, 0).unwrap();
    assert_eq!(back, start);
    f.write_at(b"tail", 10_000).unwrap();
    assert_eq!(f.size(), 10_004);
}

/// Files the daemon keeps open between requests are closed once the kernel
/// forgets them, so removing a file frees its space.
#[test]
fn removed_files_are_not_held_open() {
    let m = Mounted::new(&[]);
    fs::write(m.path("big"), pattern(3 << 20, 4)).unwrap();
    assert_eq!(fs::read(m.path("big")).unwrap().len(), 3 << 20);
    let pid = m.daemon_pid();
    let deleted = || -> Vec<String> {
        fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| fs::read_link(e.unwrap().path()).ok())
            .map(|l| l.to_string_lossy().into_owned())
            .filter(|l| l.ends_with("(deleted)"))
            .collect()
    };
    fs::remove_file(m.path("big")).unwrap();
    // FORGET for the unlinked inode is queued by the kernel; requests drive
    // it. A descriptor leaked for good stays however long this waits.
    let closed = common::mount::wait_for(20, || {
        fs::read_dir(&m.mnt).unwrap().count();
        deleted().is_empty()
    });
    assert!(
        closed,
        "the daemon still holds a removed file open: {:?}",
        deleted()
    );
}

/// A request that panics part-way through growing a file (a bug, simulated
/// by a debug-build hook) must not leave the file's cached size and its
/// chunks disagreeing: the next request finds the lock poisoned, undoes the
/// growth from the vault, and the file reads and grows again.
#[test]
fn a_handler_panic_mid_growth_leaves_the_file_consistent() {
    // The vault changes of this mount: the file's creation and first write
    // and its fsync, then the truncate below, one per 1 MiB batch; the
    // second batch of that truncate panics.
    let at = std::env::var("SEALFS_PANIC_AT").unwrap_or_else(|_| "4".into());
    let m = Mounted::new_under(&["env", &format!("SEALFS_TEST_PANIC_AT_WRITE={at}")], &[]);
    let data = pattern(10_000, 3);
    {
        let f = fs::File::create(m.path("f")).unwrap();
        f.write_all_at(&data, 0).unwrap();
        f.sync_all().unwrap();
    }
    let f = OpenOptions::new().write(true).open(m.path("f")).unwrap();
    let e = f
        .set_len(8 << 20)
        .expect_err("the hook panics inside this truncate");
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    drop(f);
    // Size and chunks agree: the old content, readable to its end.
    assert_eq!(fs::read(m.path("f")).unwrap(), data);
    assert!(
        m.log().contains("panicked while changing this file"),
        "{}",
        m.log()
    );
    // And it grows again.
    let f = OpenOptions::new().write(true).open(m.path("f")).unwrap();
    f.set_len(8 << 20).unwrap();
    f.write_all_at(b"end", (8 << 20) - 3).unwrap();
    f.sync_all().unwrap();
    let back = fs::read(m.path("f")).unwrap();
    assert_eq!(back.len(), 8 << 20);
    assert_eq!(&back[..10_000], &data[..]);
    assert_eq!(&back[(8 << 20) - 3..], b"end");
}

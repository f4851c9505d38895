//! POSIX edges: requests far past the end of a file decide before writing,
//! a killed caller stops a long extension, set-ID bits drop as on tmpfs,
//! rewinddir sees new entries, and a vault remounts right after `umount`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::mount::Mounted;

fn sh(cmd: &str) {
    let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Bytes the vault's files occupy on disk.
fn disk_usage(dir: &Path) -> u64 {
    let o = Command::new("du")
        .args(["-s", "--block-size=1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Runs a python3 snippet with the file path as argv[1]; returns its stdout.
fn python(code: &str, file: &Path) -> String {
    let o = Command::new("python3")
        .args(["-c", code])
        .arg(file)
        .output()
        .expect("python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn requests_far_past_the_end_decide_before_writing() {
    let m = Mounted::new(&[]);
    let f = m.path("f");
    let cases = [
        // A buffered write lands in the page cache; the daemon refuses it at
        // writeback, and fsync reports it (the kernel turns a writeback
        // EFBIG into EIO).
        (
            "pwrite at 16 TiB",
            "import os,sys\nfd=os.open(sys.argv[1],os.O_RDWR)\ntry:\n os.pwrite(fd,b'x'*4096,16<<40); os.fsync(fd); print('ok')\nexcept OSError as e: print(e.errno)",
        ),
        (
            "fallocate of twice the free space",
            "import os,sys\nfd=os.open(sys.argv[1],os.O_RDWR)\nst=os.statvfs(sys.argv[1])\ntry:\n os.posix_fallocate(fd,0,2*st.f_bavail*st.f_frsize); os.fsync(fd); print('ok')\nexcept OSError as e: print(e.errno)",
        ),
        (
            "copy_file_range to 2^63 - 1 MiB",
            "import os,sys\nsrc=os.open(sys.argv[1]+'.src',os.O_RDWR|os.O_CREAT)\nos.write(src,b'y'*4096)\nfd=os.open(sys.argv[1],os.O_RDWR)\ntry:\n os.copy_file_range(src,fd,4096,0,(1<<63)-(1<<20)); os.fsync(fd); print('ok')\nexcept OSError as e: print(e.errno)",
        ),
        (
            "truncate to 1 PiB",
            "import os,sys\ntry:\n os.truncate(sys.argv[1],1<<50); print('ok')\nexcept OSError as e: print(e.errno)",
        ),
    ];
    for (what, code) in cases {
        std::fs::write(&f, b"hello").unwrap();
        let before = disk_usage(&m.vault);
        let t = Instant::now();
        let out = python(code, &f);
        let took = t.elapsed();
        let errno: i32 = out
            .parse()
            .unwrap_or_else(|_| panic!("{what}: succeeded ({out}) though it cannot fit"));
        assert!(
            [libc::EFBIG, libc::ENOSPC, libc::EIO].contains(&errno),
            "{what}: errno {errno}"
        );
        assert!(took < Duration::from_secs(2), "{what}: took {took:?}");
        let grew = disk_usage(&m.vault).saturating_sub(before);
        assert!(grew < 1 << 20, "{what}: the vault grew by {grew} bytes");
        // The file keeps its size and content (seen fresh from the daemon).
        sh("echo 2 > /proc/sys/vm/drop_caches");
        assert_eq!(std::fs::metadata(&f).unwrap().len(), 5, "{what}: size");
        assert_eq!(std::fs::read(&f).unwrap(), b"hello", "{what}: content");
        // And the daemon keeps serving.
        std::fs::write(m.path("after"), what).unwrap();
        assert_eq!(std::fs::read(m.path("after")).unwrap(), what.as_bytes());
        let _ = std::fs::remove_file(m.path("f.src"));
    }
}

/// The vault file behind the only file in the mount.
fn only_vault_file(vault: &Path) -> std::path::PathBuf {
    std::fs::read_dir(vault)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            !n.starts_with('.') && n != "sealfs.conf"
        })
        .expect("a vault file")
}

#[test]
fn killing_the_caller_stops_a_long_extension() {
    let m = Mounted::new(&[]);
    let f = m.path("big");
    std::fs::write(&f, b"hello").unwrap();
    let vf = only_vault_file(&m.vault);
    let old_len = std::fs::metadata(&vf).unwrap().len();
    // 4 GiB fits on the disk, so neither EFBIG nor ENOSPC answers it.
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import os,sys\nfd=os.open(sys.argv[1],os.O_RDWR)\nos.posix_fallocate(fd,0,4<<30)",
        ])
        .arg(&f)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the daemon is well into writing zeros.
    let t = Instant::now();
    while std::fs::metadata(&vf).unwrap().len() < old_len + (64 << 20) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the extension never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    // Within a second the daemon has stopped and put the file back.
    while std::fs::metadata(&vf).unwrap().len() != old_len {
        assert!(
            killed.elapsed() < Duration::from_secs(1),
            "still {} bytes a second after the kill",
            std::fs::metadata(&vf).unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    sh("echo 2 > /proc/sys/vm/drop_caches");
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 5);
    assert_eq!(std::fs::read(&f).unwrap(), b"hello");
    assert_eq!(std::fs::metadata(&vf).unwrap().len(), old_len);
}

const SETID_OPS: &[(&str, &str)] = &[
    ("write", "fd=os.open(p,os.O_WRONLY); os.pwrite(fd,b'x',0)"),
    (
        "O_DIRECT write",
        "import mmap\nfd=os.open(p,os.O_WRONLY|os.O_DIRECT); b=mmap.mmap(-1,4096); b.write(b'x'*4096); os.pwrite(fd,b,0)",
    ),
    ("truncate", "os.truncate(p,1)"),
    (
        "fallocate",
        "fd=os.open(p,os.O_WRONLY); os.posix_fallocate(fd,0,8192)",
    ),
    (
        "punch hole",
        "import ctypes\nfd=os.open(p,os.O_WRONLY); r=ctypes.CDLL(None,use_errno=True).fallocate(fd,3,ctypes.c_long(0),ctypes.c_long(4096)); assert r==0, ctypes.get_errno()",
    ),
    (
        "zero range",
        "import ctypes\nfd=os.open(p,os.O_WRONLY); r=ctypes.CDLL(None,use_errno=True).fallocate(fd,16,ctypes.c_long(0),ctypes.c_long(4096)); assert r==0, ctypes.get_errno()",
    ),
];

/// Mode bits after an unprivileged `op` on a file of mode `mode` in `dir`.
fn setid_after(dir: &Path, name: &str, mode: u32, op: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, vec![7u8; 8192]).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    let code = format!("import os,sys\np=sys.argv[1]\n{op}");
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "python3",
            "-c",
        ])
        .arg(&code)
        .arg(&path)
        .output()
        .expect("setpriv");
    let result = if o.status.success() {
        "ok".to_string()
    } else {
        format!(
            "failed: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )
    };
    let after = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    format!("{result} {after:o}")
}

#[test]
fn unprivileged_writers_drop_set_id_bits_as_tmpfs_does() {
    let m = Mounted::new(&["--allow-other"]);
    std::fs::set_permissions(m.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let reference = tempfile::Builder::new()
        .prefix("sealfs-setid-")
        .tempdir_in("/dev/shm")
        .unwrap();
    std::fs::set_permissions(reference.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(m.mnt.as_path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    for (i, (what, op)) in SETID_OPS.iter().enumerate() {
        // Group-executable (both bits drop) and not (only set-user-ID drops).
        for mode in [0o6777, 0o6666] {
            let name = format!("f{i}-{mode:o}");
            let want = setid_after(reference.path(), &name, mode, op);
            let got = setid_after(&m.mnt, &name, mode, op);
            assert_eq!(got, want, "{what} on mode {mode:o}: sealfs vs tmpfs");
        }
    }
}

#[test]
fn rewinddir_sees_entries_made_after_opendir() {
    let m = Mounted::new(&[]);
    for i in 0..10 {
        std::fs::write(m.path(&format!("old{i}")), b"x").unwrap();
    }
    let script = r#"
        my $d = shift;
        opendir(my $h, $d) or die "opendir: $!";
        my @first = grep { !/^\.\.?$/ } readdir($h);
        for my $i (0 .. 9999) { open(my $f, '>', "$d/new$i") or die "create: $!"; close($f); }
        rewinddir($h);
        my @second = grep { !/^\.\.?$/ } readdir($h);
        print scalar(@first), " ", scalar(@second), "\n";
    "#;
    let o = Command::new("perl")
        .args(["-e", script])
        .arg(&m.mnt)
        .output()
        .expect("perl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "10 10010");
}

#[test]
fn remount_right_after_a_plain_umount() {
    let mut m = Mounted::new(&[]);
    for i in 0..20 {
        std::fs::write(m.path(&format!("f{i}")), format!("write {i}")).unwrap();
        let o = Command::new("umount").arg(&m.mnt).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        m.forget_mounted();
        m.mount(&[]);
        for j in 0..=i {
            assert_eq!(
                std::fs::read(m.path(&format!("f{j}"))).unwrap(),
                format!("write {j}").as_bytes(),
                "round {i}"
            );
        }
    }
}

/// Another process (util-linux flock) holding an exclusive flock on `path`
/// until it is killed; returns once the lock is held.
fn hold_flock(path: &std::path::Path) -> std::process::Child {
    let mut holder = Command::new("flock")
        .arg("-n")
        .arg(path)
        .args(["-c", "echo locked; exec sleep 60"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("flock (util-linux)");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    holder
}

#[test]
fn a_lock_on_the_vault_directory_by_anyone_blocks_nothing() {
    // Anyone who can read the vault directory can flock it; mounts and
    // offline commands lock in the private runtime directory instead.
    let mut m = Mounted::new(&[]);
    m.umount();
    let mut holder = hold_flock(&m.vault);
    m.mount(&[]);
    std::fs::write(m.path("x"), b"mounted despite the lock").unwrap();
    m.umount();
    holder.kill().unwrap();
    holder.wait().unwrap();
}

#[test]
fn a_vault_held_by_another_process_is_refused_at_once() {
    let mut m = Mounted::new(&[]);
    m.umount();
    // Another process holds the vault's lock (as an offline command will).
    drop(sealfs::vault::runtime::open_lock(&m.vault).unwrap());
    let mut holder = hold_flock(&sealfs::vault::runtime::lock_path(&m.vault).unwrap());
    let t = Instant::now();
    let o = common::mount::sealfs(&[
        "mount",
        "--passfile",
        m.passfile.to_str().unwrap(),
        m.vault.to_str().unwrap(),
        m.mnt.to_str().unwrap(),
    ]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(!o.status.success(), "mounted a vault another process holds");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("in use by another process"), "{err}");
}

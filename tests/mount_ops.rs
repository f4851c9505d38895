//! Every operation an application uses, through the kernel, on a real mount.

mod common;

use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;

use common::mount::Mounted;
use common::pattern;

fn c(p: &Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

/// getxattr into a 64-byte buffer; the value, or None with errno set.
fn getx(p: &CString, name: &CString) -> Option<Vec<u8>> {
    let mut buf = [0u8; 64];
    // SAFETY: valid C strings and a writable buffer of its length.
    let n = unsafe {
        libc::getxattr(
            p.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap()
}

#[test]
fn files_read_write_append_truncate_and_survive_remount() {
    let mut m = Mounted::new(&[]);
    let p = m.path("a.bin");
    let data = pattern(1_000_000, 3);
    fs::write(&p, &data).unwrap();
    assert_eq!(fs::read(&p).unwrap(), data);
    assert_eq!(fs::metadata(&p).unwrap().len(), 1_000_000);
    // Unaligned overwrite straddling chunk boundaries.
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    f.write_all_at(b"XYZ", 4095).unwrap();
    let mut buf = [0u8; 5];
    f.read_exact_at(&mut buf, 4094).unwrap();
    assert_eq!(&buf, &[data[4094], b'X', b'Y', b'Z', data[4098]]);
    // Truncate down and up.
    f.set_len(5000).unwrap();
    f.set_len(9000).unwrap();
    drop(f);
    let got = fs::read(&p).unwrap();
    assert_eq!(got.len(), 9000);
    assert_eq!(&got[4095..4098], b"XYZ");
    assert!(got[5000..].iter().all(|&b| b == 0));
    // O_APPEND
    let mut a = OpenOptions::new().append(true).open(&p).unwrap();
    a.write_all(b"tail").unwrap();
    drop(a);
    assert_eq!(fs::metadata(&p).unwrap().len(), 9004);
    // Seek past end and write: a gap of zeros.
    let mut g = OpenOptions::new()
        .write(true)
        .open(m.path("gap"))
        .or_else(|_| fs::File::create(m.path("gap")))
        .unwrap();
    g.seek(SeekFrom::Start(100_000)).unwrap();
    g.write_all(b"end").unwrap();
    drop(g);
    m.remount();
    let got2 = fs::read(&p).unwrap();
    assert_eq!(got2[..9000], got[..]);
    assert_eq!(&got2[9000..], b"tail");
    let gap = fs::read(m.path("gap")).unwrap();
    assert_eq!(gap.len(), 100_003);
    assert!(gap[..100_000].iter().all(|&b| b == 0));
    // O_TRUNC
    fs::write(&p, b"short").unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"short");
}

#[test]
fn directories_renames_and_rename_flags() {
    let m = Mounted::new(&[]);
    fs::create_dir_all(m.path("a/b/c")).unwrap();
    fs::write(m.path("a/b/c/f"), b"deep").unwrap();
    fs::rename(m.path("a/b"), m.path("moved")).unwrap();
    assert_eq!(fs::read(m.path("moved/c/f")).unwrap(), b"deep");
    assert!(fs::metadata(m.path("a/b")).is_err());
    let mut names: Vec<_> = fs::read_dir(m.path("moved"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, vec!["c"]);
    assert_eq!(
        fs::remove_dir(m.path("moved")).unwrap_err().raw_os_error(),
        Some(libc::ENOTEMPTY)
    );
    // rename over an existing file, and over an empty directory
    fs::write(m.path("x"), b"x").unwrap();
    fs::write(m.path("y"), b"y").unwrap();
    fs::rename(m.path("x"), m.path("y")).unwrap();
    assert_eq!(fs::read(m.path("y")).unwrap(), b"x");
    fs::create_dir(m.path("empty")).unwrap();
    fs::create_dir(m.path("full")).unwrap();
    fs::write(m.path("full/z"), b"z").unwrap();
    fs::rename(m.path("full"), m.path("empty")).unwrap();
    assert_eq!(fs::read(m.path("empty/z")).unwrap(), b"z");
    // RENAME_NOREPLACE and RENAME_EXCHANGE
    fs::write(m.path("p"), b"P").unwrap();
    fs::write(m.path("q"), b"Q").unwrap();
    let (pp, qq) = (c(&m.path("p")), c(&m.path("q")));
    // SAFETY: valid C strings.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            pp.as_ptr(),
            libc::AT_FDCWD,
            qq.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    assert_eq!((r, errno()), (-1, libc::EEXIST));
    // SAFETY: valid C strings.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            pp.as_ptr(),
            libc::AT_FDCWD,
            qq.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(r, 0);
    assert_eq!(fs::read(m.path("p")).unwrap(), b"Q");
    assert_eq!(fs::read(m.path("q")).unwrap(), b"P");
    // Long names (stored hashed in the vault) behave like any other.
    let long = "ü".repeat(127);
    fs::write(m.path(&long), b"long").unwrap();
    fs::rename(
        m.path(&long),
        m.path(&format!("{long}2").replacen('ü', "u", 1)),
    )
    .unwrap();
    fs::remove_dir_all(m.path("empty")).unwrap();
}

#[test]
fn links_symlinks_special_files_and_stable_inodes() {
    let mut m = Mounted::new(&[]);
    fs::write(m.path("orig"), b"linked").unwrap();
    fs::hard_link(m.path("orig"), m.path("hard")).unwrap();
    let (a, b) = (
        fs::metadata(m.path("orig")).unwrap(),
        fs::metadata(m.path("hard")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.nlink(), 2);
    fs::remove_file(m.path("orig")).unwrap();
    assert_eq!(fs::metadata(m.path("hard")).unwrap().nlink(), 1);
    assert_eq!(fs::read(m.path("hard")).unwrap(), b"linked");
    std::os::unix::fs::symlink("hard", m.path("sym")).unwrap();
    assert_eq!(fs::read_link(m.path("sym")).unwrap(), Path::new("hard"));
    assert_eq!(fs::symlink_metadata(m.path("sym")).unwrap().len(), 4);
    assert_eq!(fs::read(m.path("sym")).unwrap(), b"linked");
    let fifo = c(&m.path("fifo"));
    // SAFETY: valid C string.
    assert_eq!(
        unsafe { libc::mknod(fifo.as_ptr(), libc::S_IFIFO | 0o600, 0) },
        0
    );
    let sock = c(&m.path("sock"));
    // SAFETY: valid C string.
    assert_eq!(
        unsafe { libc::mknod(sock.as_ptr(), libc::S_IFSOCK | 0o600, 0) },
        0
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        fs::symlink_metadata(m.path("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(
        fs::symlink_metadata(m.path("sock"))
            .unwrap()
            .file_type()
            .is_socket()
    );
    let ino = fs::metadata(m.path("hard")).unwrap().ino();
    m.remount();
    assert_eq!(
        fs::metadata(m.path("hard")).unwrap().ino(),
        ino,
        "inode numbers are stable across mounts"
    );
    assert_eq!(fs::read_link(m.path("sym")).unwrap(), Path::new("hard"));
}

#[test]
fn attributes_chmod_chown_utimens_statfs() {
    let m = Mounted::new(&["--allow-other"]);
    let p = m.path("f");
    fs::write(&p, b"x").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
    std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
    let md = fs::metadata(&p).unwrap();
    assert_eq!((md.uid(), md.gid()), (65534, 65534));
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_600_000_000, 123_456_789);
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
    drop(f);
    let md = fs::metadata(&p).unwrap();
    assert_eq!((md.mtime(), md.mtime_nsec()), (1_600_000_000, 123_456_789));
    // SAFETY: zeroed statvfs is a valid out-buffer; valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let mp = c(&m.mnt);
    assert_eq!(unsafe { libc::statvfs(mp.as_ptr(), &mut st) }, 0);
    assert!(st.f_blocks > 0 && st.f_namemax == 255);
    // A new file belongs to its creator, not to the daemon.
    fs::create_dir(m.path("pub")).unwrap();
    fs::set_permissions(m.path("pub"), fs::Permissions::from_mode(0o777)).unwrap();
    let o = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "touch"])
        .arg(m.path("pub/mine"))
        .output()
        .expect("setpriv (util-linux)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = fs::metadata(m.path("pub/mine")).unwrap();
    assert_eq!((md.uid(), md.gid()), (65534, 65534));
}

#[test]
fn extended_attributes_are_encrypted() {
    let mut m = Mounted::new(&[]);
    let p = c(&m.path("f"));
    fs::write(m.path("f"), b"x").unwrap();
    let name = CString::new("user.secret-attr-name").unwrap();
    let val = b"secret-attr-value";
    // SAFETY: valid C strings and buffers.
    unsafe {
        assert_eq!(
            libc::setxattr(p.as_ptr(), name.as_ptr(), val.as_ptr().cast(), val.len(), 0),
            0
        );
        assert_eq!(getx(&p, &name).as_deref(), Some(&val[..]));
        let mut buf = [0u8; 64];
        let n = libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len());
        assert_eq!(&buf[..n as usize], b"user.secret-attr-name\0");
        assert_eq!(
            libc::setxattr(
                p.as_ptr(),
                name.as_ptr(),
                val.as_ptr().cast(),
                val.len(),
                libc::XATTR_CREATE
            ),
            -1
        );
        assert_eq!(errno(), libc::EEXIST);
    }
    m.umount();
    // Nothing of the name or value in the vault's xattrs.
    let o = std::process::Command::new("getfattr")
        .args(["-d", "-m", "-", "-R"])
        .arg(&m.vault)
        .output()
        .expect("getfattr (the attr package; scripts/test.sh installs it)");
    let s = String::from_utf8_lossy(&o.stdout);
    // It did list the attribute (sealed), and nothing of its name or value.
    assert!(s.contains("user.sealfs."), "getfattr listed nothing: {s}");
    assert!(!s.contains("secret-attr"), "{s}");
    m.mount(&[]);
    assert_eq!(getx(&p, &name).as_deref(), Some(&val[..]));
    // SAFETY: valid C strings.
    assert_eq!(unsafe { libc::removexattr(p.as_ptr(), name.as_ptr()) }, 0);
    assert_eq!(getx(&p, &name), None);
    assert_eq!(errno(), libc::ENODATA);
}

#[test]
fn fallocate_punch_hole_and_mmap() {
    let mut m = Mounted::new(&[]);
    let p = m.path("f");
    let data = pattern(50_000, 8);
    fs::write(&p, &data).unwrap();
    let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscalls on a live fd.
    unsafe {
        assert_eq!(
            libc::fallocate(
                f.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                1000,
                10_000
            ),
            0
        );
        assert_eq!(libc::fallocate(f.as_raw_fd(), 0, 0, 80_000), 0);
    }
    let got = fs::read(&p).unwrap();
    assert_eq!(got.len(), 80_000);
    assert_eq!(&got[..1000], &data[..1000]);
    assert!(got[1000..11_000].iter().all(|&b| b == 0));
    assert_eq!(&got[11_000..50_000], &data[11_000..]);
    // Shared writable mapping through the page cache.
    // SAFETY: mapping 8192 bytes of a file at least that long; unmapped below.
    unsafe {
        let ptr = libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(ptr, libc::MAP_FAILED);
        let s = std::slice::from_raw_parts_mut(ptr.cast::<u8>(), 8192);
        s[4090..4100].copy_from_slice(b"MMAPWRITE!");
        assert_eq!(libc::msync(ptr, 8192, libc::MS_SYNC), 0);
        libc::munmap(ptr, 8192);
    }
    drop(f);
    m.remount();
    let got = fs::read(&p).unwrap();
    assert_eq!(&got[4090..4100], b"MMAPWRITE!");
}

#[test]
fn read_only_mount_refuses_writes() {
    let mut m = Mounted::new(&[]);
    fs::write(m.path("f"), b"x").unwrap();
    m.umount();
    m.mount(&["--read-only"]);
    assert_eq!(fs::read(m.path("f")).unwrap(), b"x");
    assert_eq!(
        fs::write(m.path("g"), b"y").unwrap_err().raw_os_error(),
        Some(libc::EROFS)
    );
}

#[test]
fn plaintext_never_reaches_the_vault_through_the_mount() {
    let mut m = Mounted::new(&[]);
    fs::create_dir(m.path("Secret Project")).unwrap();
    let mut f = fs::File::create(m.path("Secret Project/passwords.txt")).unwrap();
    for _ in 0..500 {
        f.write_all(b"hunter2-the-password ").unwrap();
    }
    drop(f);
    std::os::unix::fs::symlink("/home/alice/private", m.path("Secret Project/link")).unwrap();
    m.umount();
    let snap = common::snapshot(&m.vault);
    for (path, bytes) in &snap {
        let ps = path.to_string_lossy();
        for needle in ["Secret Project", "passwords", "hunter2", "/home/alice"] {
            assert!(!ps.contains(needle), "{needle} in vault path {ps}");
            assert!(
                !common::contains(bytes, needle.as_bytes()),
                "{needle} in {ps}"
            );
        }
    }
}

#[test]
fn big_file_streams_through() {
    let m = Mounted::new(&[]);
    let p = m.path("big");
    let chunk = pattern(1 << 20, 11);
    let mut f = fs::File::create(&p).unwrap();
    for _ in 0..32 {
        f.write_all(&chunk).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    let mut r = fs::File::open(&p).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..32 {
        r.read_exact(&mut buf).unwrap();
        assert!(buf == chunk);
    }
    assert_eq!(r.read(&mut buf).unwrap(), 0);
}

#[test]
fn writes_and_truncation_by_others_drop_set_id_bits() {
    let m = Mounted::new(&["--allow-other"]);
    for (name, cmd) in [("w", "echo x >> \"$0\""), ("t", "truncate -s 1 \"$0\"")] {
        let p = m.path(name);
        fs::write(&p, b"data").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o6777)).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o6777);
        let o = std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sh",
                "-c",
                cmd,
            ])
            .arg(&p)
            .output()
            .expect("setpriv");
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            fs::metadata(&p).unwrap().mode() & 0o7777,
            0o0777,
            "{name}: set-ID bits dropped"
        );
    }
    // The owner's own root writes keep them.
    let p = m.path("r");
    fs::write(&p, b"data").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o4755)).unwrap();
    OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(b"more")
        .unwrap();
    assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o4755);
}

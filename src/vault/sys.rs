//! Thin, safe wrappers over the `*at` system calls. Every vault access goes
//! through a directory fd plus a single path component, never following
//! symlinks (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use rustix::fs::{AtFlags, Mode, OFlags};

/// File status as `stat(2)` gives it: the fields of `struct stat` the vault
/// uses, with the same names and types, filled from `statx(2)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub st_dev: u64,
    pub st_ino: u64,
    pub st_nlink: u64,
    pub st_mode: u32,
    pub st_uid: u32,
    pub st_gid: u32,
    pub st_rdev: u64,
    pub st_size: i64,
    pub st_blksize: i64,
    pub st_blocks: i64,
    pub st_atime: i64,
    pub st_atime_nsec: i64,
    pub st_mtime: i64,
    pub st_mtime_nsec: i64,
    pub st_ctime: i64,
    pub st_ctime_nsec: i64,
}

/// Filesystem statistics (statvfs).
pub type StatVfs = rustix::fs::StatVfs;

fn oflags(flags: i32) -> OFlags {
    OFlags::from_bits_retain(flags as _)
}

fn mode(m: u32) -> Mode {
    Mode::from_raw_mode(m as _)
}

/// `openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC, mode)`.
pub fn openat(dir: BorrowedFd<'_>, name: &[u8], flags: i32, mode_bits: u32) -> io::Result<OwnedFd> {
    if flags & libc::O_CREAT != 0 {
        crash_point();
    }
    Ok(rustix::fs::openat(
        dir,
        name,
        oflags(flags) | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        mode(mode_bits),
    )?)
}

/// Opens a directory by absolute or relative path (only for the vault root
/// and mountpoint given on the command line).
pub fn open_dir_path(path: &std::path::Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens a subdirectory for listing and as a dirfd.
pub fn open_subdir(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    openat(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// Reopens an `O_PATH` (or any) fd with new flags through `/proc/self/fd`
/// (the magic link names the inode `fd` refers to).
pub fn reopen(fd: BorrowedFd<'_>, flags: i32) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        proc_path(fd).as_c_str(),
        oflags(flags) | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// The `/proc/self/fd/N` path of an fd, for calls that lack an fd variant.
pub fn proc_path(fd: BorrowedFd<'_>) -> CString {
    // Digits only: never contains NUL.
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

fn from_statx(x: &rustix::fs::Statx) -> Stat {
    Stat {
        st_dev: rustix::fs::makedev(x.stx_dev_major, x.stx_dev_minor),
        st_ino: x.stx_ino,
        st_nlink: u64::from(x.stx_nlink),
        st_mode: u32::from(x.stx_mode),
        st_uid: x.stx_uid,
        st_gid: x.stx_gid,
        st_rdev: rustix::fs::makedev(x.stx_rdev_major, x.stx_rdev_minor),
        st_size: x.stx_size as i64,
        st_blksize: i64::from(x.stx_blksize),
        st_blocks: x.stx_blocks as i64,
        st_atime: x.stx_atime.tv_sec,
        st_atime_nsec: i64::from(x.stx_atime.tv_nsec),
        st_mtime: x.stx_mtime.tv_sec,
        st_mtime_nsec: i64::from(x.stx_mtime.tv_nsec),
        st_ctime: x.stx_ctime.tv_sec,
        st_ctime_nsec: i64::from(x.stx_ctime.tv_nsec),
    }
}

fn statx_raw(dir: BorrowedFd<'_>, name: &[u8], extra: AtFlags) -> io::Result<rustix::fs::Statx> {
    use rustix::fs::StatxFlags;
    Ok(rustix::fs::statx(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW | AtFlags::STATX_SYNC_AS_STAT | extra,
        StatxFlags::BASIC_STATS | StatxFlags::BTIME,
    )?)
}

/// `lstat` of `dir/name`.
pub fn fstatat(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Stat> {
    Ok(from_statx(&statx_raw(dir, name, AtFlags::empty())?))
}

/// Status of the inode `fd` refers to (works for O_PATH fds).
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    Ok(from_statx(&statx_raw(fd, b"", AtFlags::EMPTY_PATH)?))
}

/// `lstat` through `statx`, with the inode's birth time folded into one
/// number (`stamp`, nanoseconds; 0 where the backing filesystem keeps none).
/// Inode numbers are reused once an inode is freed; (inode, birth time) is
/// not, so the FUSE layer uses the pair to recognise an entry again.
/// `name` empty stats `dir` itself.
pub fn statx(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<(Stat, u64)> {
    let extra = if name.is_empty() {
        AtFlags::EMPTY_PATH
    } else {
        AtFlags::empty()
    };
    let x = statx_raw(dir, name, extra)?;
    let stamp = if x.stx_mask & rustix::fs::StatxFlags::BTIME.bits() != 0 {
        (x.stx_btime.tv_sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(u64::from(x.stx_btime.tv_nsec))
            .max(1)
    } else {
        0
    };
    Ok((from_statx(&x), stamp))
}

/// Test hook for crash tests (debug builds only): with
/// `SEALFS_TEST_ABORT_AFTER_WRITES=N` in the environment, the process aborts
/// instead of making its (N+1)th change to the vault, like a crash between
/// two writes; with `SEALFS_TEST_PANIC_AT_WRITE=N` the Nth change panics
/// instead (once), like a bug in a handler. Release builds compile this to
/// nothing.
pub fn crash_point() {
    #[cfg(debug_assertions)]
    {
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU64, Ordering};
        static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
        static DONE: AtomicU64 = AtomicU64::new(0);
        let limit = LIMIT.get_or_init(|| {
            std::env::var("SEALFS_TEST_ABORT_AFTER_WRITES")
                .ok()
                .and_then(|v| v.parse().ok())
        });
        if let Some(n) = *limit {
            if DONE.fetch_add(1, Ordering::SeqCst) >= n {
                std::process::abort();
            }
        }
        // `SEALFS_TEST_PANIC_AT_WRITE=N`: the Nth change panics, once.
        static PANIC_AT: OnceLock<Option<u64>> = OnceLock::new();
        static SEEN: AtomicU64 = AtomicU64::new(0);
        let at = PANIC_AT.get_or_init(|| {
            std::env::var("SEALFS_TEST_PANIC_AT_WRITE")
                .ok()
                .and_then(|v| v.parse().ok())
        });
        if let Some(n) = *at {
            if SEEN.fetch_add(1, Ordering::SeqCst) + 1 == n {
                panic!("test hook: SEALFS_TEST_PANIC_AT_WRITE={n}");
            }
        }
    }
}

/// `pwrite` of all of `data` at `offset`.
pub fn pwrite_all(fd: BorrowedFd<'_>, data: &[u8], offset: u64) -> io::Result<()> {
    crash_point();
    let mut done = 0;
    while done < data.len() {
        let n = rustix::io::pwrite(fd, &data[done..], offset + done as u64)?;
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        done += n;
    }
    Ok(())
}

/// Opens a directory at a vault-relative path without following any symlink
/// and without leaving `root` (openat2 RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH).
pub fn open_dir_beneath(root: BorrowedFd<'_>, rel: &std::path::Path) -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let path = if rel.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        rel
    };
    Ok(rustix::fs::openat2(
        root,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH,
    )?)
}

pub fn mkdirat(dir: BorrowedFd<'_>, name: &[u8], mode_bits: u32) -> io::Result<()> {
    crash_point();
    Ok(rustix::fs::mkdirat(dir, name, mode(mode_bits))?)
}

pub fn unlinkat(dir: BorrowedFd<'_>, name: &[u8], flags: i32) -> io::Result<()> {
    crash_point();
    Ok(rustix::fs::unlinkat(
        dir,
        name,
        AtFlags::from_bits_retain(flags as _),
    )?)
}

/// renameat2(2); it never follows the final component.
pub fn renameat2(
    from_dir: BorrowedFd<'_>,
    from: &[u8],
    to_dir: BorrowedFd<'_>,
    to: &[u8],
    flags: u32,
) -> io::Result<()> {
    crash_point();
    Ok(rustix::fs::renameat_with(
        from_dir,
        from,
        to_dir,
        to,
        rustix::fs::RenameFlags::from_bits_retain(flags as _),
    )?)
}

pub fn symlinkat(target: &[u8], dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    crash_point();
    Ok(rustix::fs::symlinkat(target, dir, name)?)
}

/// Reads a symlink; `name` empty reads the link an `O_PATH` fd refers to.
pub fn readlinkat(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<u8>> {
    Ok(rustix::fs::readlinkat(dir, name, Vec::new())?.into_bytes())
}

/// Makes a new hard link `to_dir/to` to the inode `fd` refers to.
/// AT_SYMLINK_FOLLOW resolves only the /proc magic link to the inode we
/// hold, never a vault symlink.
pub fn link_fd(fd: BorrowedFd<'_>, to_dir: BorrowedFd<'_>, to: &[u8]) -> io::Result<()> {
    Ok(rustix::fs::linkat(
        rustix::fs::CWD,
        proc_path(fd).as_c_str(),
        to_dir,
        to,
        AtFlags::SYMLINK_FOLLOW,
    )?)
}

pub fn mknodat(dir: BorrowedFd<'_>, name: &[u8], mode_bits: u32, dev: u64) -> io::Result<()> {
    crash_point();
    Ok(rustix::fs::mknodat(
        dir,
        name,
        rustix::fs::FileType::from_raw_mode(mode_bits as _),
        mode(mode_bits & !libc::S_IFMT),
        dev,
    )?)
}

/// chmod of the inode `fd` refers to (works for O_PATH fds).
pub fn fchmod_any(fd: BorrowedFd<'_>, mode_bits: u32) -> io::Result<()> {
    Ok(rustix::fs::chmod(
        proc_path(fd).as_c_str(),
        mode(mode_bits),
    )?)
}

/// chown of the inode `fd` refers to, never following a symlink.
pub fn fchown_any(fd: BorrowedFd<'_>, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    Ok(rustix::fs::chownat(
        fd,
        c"",
        uid.map(rustix::fs::Uid::from_raw),
        gid.map(rustix::fs::Gid::from_raw),
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

/// Sets atime/mtime of the inode `fd` refers to (works for O_PATH fds,
/// including symlinks, which are never followed). `tv_nsec` may be
/// `UTIME_NOW` or `UTIME_OMIT`.
pub fn futimens_any(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> io::Result<()> {
    let ts = |t: &libc::timespec| rustix::fs::Timespec {
        tv_sec: t.tv_sec,
        tv_nsec: t.tv_nsec as _,
    };
    let t = rustix::fs::Timestamps {
        last_access: ts(&times[0]),
        last_modification: ts(&times[1]),
    };
    Ok(rustix::fs::utimensat(
        fd,
        c"",
        &t,
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
    )?)
}

pub fn fsync(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::fs::fsync(fd)?)
}

pub fn fdatasync(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::fs::fdatasync(fd)?)
}

pub fn ftruncate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    if i64::try_from(len).is_err() {
        return Err(io::Error::from_raw_os_error(libc::EFBIG));
    }
    Ok(rustix::fs::ftruncate(fd, len)?)
}

pub fn fstatvfs(fd: BorrowedFd<'_>) -> io::Result<StatVfs> {
    Ok(rustix::fs::fstatvfs(fd)?)
}

pub fn fstatfs(fd: BorrowedFd<'_>) -> io::Result<rustix::fs::StatFs> {
    Ok(rustix::fs::fstatfs(fd)?)
}

/// The (soft, hard) descriptor limit of this process (`u64::MAX`: none).
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let r = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    Ok((r.current.unwrap_or(u64::MAX), r.maximum.unwrap_or(u64::MAX)))
}

/// Sets the soft descriptor limit (at most the hard one).
pub fn set_nofile_soft(soft: u64) -> io::Result<()> {
    let (_, hard) = nofile_limit()?;
    let lim = |v: u64| (v != u64::MAX).then_some(v);
    Ok(rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: lim(soft.min(hard)),
            maximum: lim(hard),
        },
    )?)
}

/// One raw directory entry.
pub struct RawEntry {
    pub name: OsString,
    pub ino: u64,
    pub d_type: u8,
}

/// Lists a directory (fresh fd each call, so concurrent listings don't share offsets).
pub fn read_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<RawEntry>> {
    let mut out = Vec::new();
    read_dir_from(dir, 0, |e, _| {
        if e.name != "." && e.name != ".." {
            out.push(e);
        }
        true
    })?;
    Ok(out)
}

/// Lists a directory from position `cookie` (0: the start; otherwise a
/// `next` value this function returned), calling `visit(entry, next)` for
/// each entry until it returns false. Opens a fresh fd per call, so no
/// descriptor is held between calls and concurrent listings never share an
/// offset. "." and ".." are passed on too: their positions belong to the stream.
///
/// Reads through a 4 KiB buffer: a FUSE reply holds a few dozen entries, so
/// a larger read would list (and throw away) hundreds per call.
pub fn read_dir_from(
    dir: BorrowedFd<'_>,
    cookie: u64,
    mut visit: impl FnMut(RawEntry, u64) -> bool,
) -> io::Result<()> {
    use rustix::fs::{FileType, RawDir, SeekFrom, seek};
    let fd = openat(dir, b".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    if cookie != 0 {
        seek(&fd, SeekFrom::Start(cookie))?;
    }
    let mut buf = Vec::with_capacity(4096);
    let mut entries = RawDir::new(&fd, buf.spare_capacity_mut());
    while let Some(e) = entries.next() {
        let e = e?;
        let d_type = match e.file_type() {
            FileType::RegularFile => libc::DT_REG,
            FileType::Directory => libc::DT_DIR,
            FileType::Symlink => libc::DT_LNK,
            FileType::Fifo => libc::DT_FIFO,
            FileType::Socket => libc::DT_SOCK,
            FileType::CharacterDevice => libc::DT_CHR,
            FileType::BlockDevice => libc::DT_BLK,
            _ => libc::DT_UNKNOWN,
        };
        let entry = RawEntry {
            name: OsString::from_vec(e.file_name().to_bytes().to_vec()),
            ino: e.ino(),
            d_type,
        };
        if !visit(entry, e.next_entry_cookie()) {
            break;
        }
    }
    Ok(())
}

/// Reads a whole small regular file at `dir/name` (never blocks on a FIFO
/// planted under that name, and refuses anything but a regular file).
pub fn read_small_file(dir: BorrowedFd<'_>, name: &[u8], max: usize) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let fd = openat(dir, name, libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
    if fstat(fd.as_fd())?.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut f = std::fs::File::from(fd);
    let mut buf = Vec::new();
    (&mut f).take(max as u64 + 1).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Writes `data` to a new file `dir/name` (O_EXCL) and fsyncs it.
pub fn write_new_file(
    dir: BorrowedFd<'_>,
    name: &[u8],
    data: &[u8],
    mode: u32,
    sync: bool,
) -> io::Result<()> {
    use std::io::Write;
    crash_point();
    let fd = openat(
        dir,
        name,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
        mode,
    )?;
    let mut f = std::fs::File::from(fd);
    f.write_all(data)?;
    if sync {
        f.sync_all()?;
    }
    Ok(())
}

/// Writes `dir/name` atomically: temp file, fsync, rename, fsync of the directory.
pub fn write_atomic(dir: BorrowedFd<'_>, name: &str, data: &[u8], mode: u32) -> io::Result<()> {
    let tmp = format!(
        "{name}.tmp-{:016x}",
        u64::from_le_bytes(crate::crypto::random_array()?)
    );
    write_new_file(dir, tmp.as_bytes(), data, mode, true)?;
    if let Err(e) = renameat2(dir, tmp.as_bytes(), dir, name.as_bytes(), 0) {
        let _ = unlinkat(dir, tmp.as_bytes(), 0);
        return Err(e);
    }
    fsync(dir)
}

/// `OsStr` as bytes.
pub fn bytes(s: &OsStr) -> &[u8] {
    s.as_bytes()
}

/// File type bits of a mode.
pub fn file_type(mode: u32) -> u32 {
    mode & libc::S_IFMT
}

/// syncfs(2): everything written to the filesystem holding `fd` reaches disk.
pub fn syncfs(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::fs::syncfs(fd)?)
}

/// setxattr(2) on the inode `fd` refers to (works for O_PATH fds).
pub fn setxattr_fd(
    fd: BorrowedFd<'_>,
    name: &std::ffi::CStr,
    value: &[u8],
    flags: i32,
) -> io::Result<()> {
    Ok(rustix::fs::setxattr(
        proc_path(fd).as_c_str(),
        name,
        value,
        rustix::fs::XattrFlags::from_bits_retain(flags as _),
    )?)
}

/// getxattr(2) on the inode `fd` refers to, into `buf`; the value's length.
pub fn getxattr_fd(fd: BorrowedFd<'_>, name: &std::ffi::CStr, buf: &mut [u8]) -> io::Result<usize> {
    Ok(rustix::fs::getxattr(proc_path(fd).as_c_str(), name, buf)?)
}

/// listxattr(2) of the inode `fd` refers to: NUL-separated names.
pub fn listxattr_fd(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let p = proc_path(fd);
    let need = rustix::fs::listxattr_query(p.as_c_str())?;
    let mut buf = vec![0u8; need + 256];
    let n = rustix::fs::listxattr(p.as_c_str(), &mut buf[..])?;
    buf.truncate(n);
    Ok(buf)
}

/// removexattr(2) on the inode `fd` refers to.
pub fn removexattr_fd(fd: BorrowedFd<'_>, name: &std::ffi::CStr) -> io::Result<()> {
    Ok(rustix::fs::removexattr(proc_path(fd).as_c_str(), name)?)
}

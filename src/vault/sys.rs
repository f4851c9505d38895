//! Thin, safe wrappers over the `*at` system calls. Every vault access goes
//! through a directory fd plus a single path component, never following
//! symlinks (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

fn cstr(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC, mode)`.
pub fn openat(dir: BorrowedFd<'_>, name: &[u8], flags: i32, mode: u32) -> io::Result<OwnedFd> {
    if flags & libc::O_CREAT != 0 {
        crash_point();
    }
    let c = cstr(name)?;
    // SAFETY: `c` is a valid NUL-terminated string and `dir` a live fd; on
    // success the kernel returns a new fd that we exclusively own.
    let fd = check(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode,
        )
    })?;
    // SAFETY: `fd` was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a directory by absolute or relative path (only for the vault root
/// and mountpoint given on the command line).
pub fn open_dir_path(path: &std::path::Path) -> io::Result<OwnedFd> {
    let c = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: valid C string; new fd owned by us on success.
    let fd = check(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: fresh fd from open.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens a subdirectory for listing and as a dirfd.
pub fn open_subdir(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    openat(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// Reopens an `O_PATH` (or any) fd with new flags through `/proc/self/fd`.
pub fn reopen(fd: BorrowedFd<'_>, flags: i32) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let c = cstr(path.as_bytes())?;
    // SAFETY: valid C string; the magic link names the inode `fd` refers to.
    let fd = check(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The `/proc/self/fd/N` path of an fd, for calls that lack an fd variant.
pub fn proc_path(fd: BorrowedFd<'_>) -> CString {
    // Digits only: never contains NUL.
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

pub fn fstatat(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<libc::stat> {
    let c = cstr(name)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a valid out-pointer of the right type; `c` is valid.
    check(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    // SAFETY: fstatat succeeded, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid out-pointer; an empty path with AT_EMPTY_PATH stats `fd`
    // itself, which also works for O_PATH fds.
    check(unsafe {
        libc::fstatat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            st.as_mut_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    // SAFETY: filled by a successful fstatat.
    Ok(unsafe { st.assume_init() })
}

/// `lstat` through `statx`, with the inode's birth time folded into one
/// number (`stamp`, nanoseconds; 0 where the backing filesystem keeps none).
/// Inode numbers are reused once an inode is freed; (inode, birth time) is
/// not, so the FUSE layer uses the pair to recognise an entry again.
/// `name` empty stats `dir` itself.
pub fn statx(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<(libc::stat, u64)> {
    let c = cstr(name)?;
    let mut flags = libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_SYNC_AS_STAT;
    if name.is_empty() {
        flags |= libc::AT_EMPTY_PATH;
    }
    let mut sx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: `c` is a valid C string, `sx` a valid out-pointer of the right type.
    check(unsafe {
        libc::statx(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags,
            libc::STATX_BASIC_STATS | libc::STATX_BTIME,
            sx.as_mut_ptr(),
        )
    })?;
    // SAFETY: statx succeeded and filled `sx` (zeroed before, so every byte is initialised).
    let x = unsafe { sx.assume_init() };
    // SAFETY: libc::stat is plain old data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    st.st_dev = libc::makedev(x.stx_dev_major, x.stx_dev_minor);
    st.st_ino = x.stx_ino;
    st.st_nlink = u64::from(x.stx_nlink) as _;
    st.st_mode = u32::from(x.stx_mode);
    st.st_uid = x.stx_uid;
    st.st_gid = x.stx_gid;
    st.st_rdev = libc::makedev(x.stx_rdev_major, x.stx_rdev_minor);
    st.st_size = x.stx_size as i64;
    st.st_blksize = i64::from(x.stx_blksize) as _;
    st.st_blocks = x.stx_blocks as i64;
    st.st_atime = x.stx_atime.tv_sec;
    st.st_atime_nsec = i64::from(x.stx_atime.tv_nsec);
    st.st_mtime = x.stx_mtime.tv_sec;
    st.st_mtime_nsec = i64::from(x.stx_mtime.tv_nsec);
    st.st_ctime = x.stx_ctime.tv_sec;
    st.st_ctime_nsec = i64::from(x.stx_ctime.tv_nsec);
    let stamp = if x.stx_mask & libc::STATX_BTIME != 0 {
        (x.stx_btime.tv_sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(u64::from(x.stx_btime.tv_nsec))
            .max(1)
    } else {
        0
    };
    Ok((st, stamp))
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

pub fn mkdirat(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<()> {
    crash_point();
    let c = cstr(name)?;
    // SAFETY: valid C string and fd.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode) }).map(drop)
}

pub fn unlinkat(dir: BorrowedFd<'_>, name: &[u8], flags: i32) -> io::Result<()> {
    crash_point();
    let c = cstr(name)?;
    // SAFETY: valid C string and fd.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) }).map(drop)
}

pub fn renameat2(
    from_dir: BorrowedFd<'_>,
    from: &[u8],
    to_dir: BorrowedFd<'_>,
    to: &[u8],
    flags: u32,
) -> io::Result<()> {
    crash_point();
    let a = cstr(from)?;
    let b = cstr(to)?;
    // SAFETY: valid C strings and fds; renameat2 never follows the final component.
    check(unsafe {
        libc::renameat2(
            from_dir.as_raw_fd(),
            a.as_ptr(),
            to_dir.as_raw_fd(),
            b.as_ptr(),
            flags,
        )
    })
    .map(drop)
}

pub fn symlinkat(target: &[u8], dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    crash_point();
    let t = cstr(target)?;
    let c = cstr(name)?;
    // SAFETY: valid C strings and fd.
    check(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), c.as_ptr()) }).map(drop)
}

/// Reads a symlink; `name` empty reads the link an `O_PATH` fd refers to.
pub fn readlinkat(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<u8>> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: `buf` is writable for its full length.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Makes a new hard link `to_dir/to` to the inode `fd` refers to.
pub fn link_fd(fd: BorrowedFd<'_>, to_dir: BorrowedFd<'_>, to: &[u8]) -> io::Result<()> {
    let p = proc_path(fd);
    let b = cstr(to)?;
    // SAFETY: valid C strings and fds. AT_SYMLINK_FOLLOW resolves only the
    // /proc magic link to the inode we hold, not a vault symlink.
    check(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            p.as_ptr(),
            to_dir.as_raw_fd(),
            b.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
    .map(drop)
}

pub fn mknodat(dir: BorrowedFd<'_>, name: &[u8], mode: u32, dev: u64) -> io::Result<()> {
    crash_point();
    let c = cstr(name)?;
    // SAFETY: valid C string and fd.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), c.as_ptr(), mode, dev) }).map(drop)
}

/// chmod of the inode `fd` refers to (works for O_PATH fds).
pub fn fchmod_any(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    let p = proc_path(fd);
    // SAFETY: valid C string.
    check(unsafe { libc::chmod(p.as_ptr(), mode) }).map(drop)
}

/// chown of the inode `fd` refers to, never following a symlink.
pub fn fchown_any(fd: BorrowedFd<'_>, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    let u = uid.unwrap_or(u32::MAX);
    let g = gid.unwrap_or(u32::MAX);
    // SAFETY: empty path with AT_EMPTY_PATH operates on `fd` itself.
    check(unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            u,
            g,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

/// Sets atime/mtime of the inode `fd` refers to (works for O_PATH fds,
/// including symlinks, which are never followed).
pub fn futimens_any(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> io::Result<()> {
    // SAFETY: an empty path with AT_EMPTY_PATH operates on `fd` itself; `times`
    // is a two-element array as utimensat requires.
    check(unsafe {
        libc::utimensat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map(drop)
}

pub fn fsync(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall on a live fd.
    check(unsafe { libc::fsync(fd.as_raw_fd()) }).map(drop)
}

pub fn fdatasync(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall on a live fd.
    check(unsafe { libc::fdatasync(fd.as_raw_fd()) }).map(drop)
}

pub fn ftruncate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    let len = i64::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: plain syscall on a live fd.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), len) }).map(drop)
}

pub fn fstatvfs(fd: BorrowedFd<'_>) -> io::Result<libc::statvfs> {
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: valid out-pointer.
    check(unsafe { libc::fstatvfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: filled on success.
    Ok(unsafe { st.assume_init() })
}

pub fn fstatfs(fd: BorrowedFd<'_>) -> io::Result<libc::statfs> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: valid out-pointer.
    check(unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: filled on success.
    Ok(unsafe { st.assume_init() })
}

/// The (soft, hard) descriptor limit of this process.
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut r = std::mem::MaybeUninit::<libc::rlimit>::uninit();
    // SAFETY: valid out-pointer of the right type.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, r.as_mut_ptr()) })?;
    // SAFETY: filled on success.
    let r = unsafe { r.assume_init() };
    Ok((r.rlim_cur, r.rlim_max))
}

/// Sets the soft descriptor limit (at most the hard one).
pub fn set_nofile_soft(soft: u64) -> io::Result<()> {
    let (_, hard) = nofile_limit()?;
    let r = libc::rlimit {
        rlim_cur: soft.min(hard),
        rlim_max: hard,
    };
    // SAFETY: a valid rlimit struct.
    check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }).map(drop)
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

//! The kernel side of a mount: checks that name the fix when FUSE cannot
//! work, the mount itself, the mount table, and unmounting.
//!
//! Root mounts through mount(2) made here, with the type `fuse.sealfs` and
//! the absolute vault path as the source, so `/proc/mounts`, `mount` and
//! `df -T` show what is mounted (fuser's own call passes plain `fuse`). An
//! ordinary user mounts through fusermount3 (fuser), which sets the same
//! type and source from the `subtype` and `fsname` options.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// How a mount is made.
pub struct Request<'a> {
    /// The absolute vault path: the mount's source.
    pub source: &'a Path,
    pub mountpoint: &'a Mountpoint,
    pub read_only: bool,
    pub allow_other: bool,
    /// Refuse to execute files from the mount (`noexec`, which `user` fstab
    /// entries imply).
    pub no_exec: bool,
}

/// A checked mountpoint: its canonical path, and the directory itself held
/// open (`O_PATH`), so a root mount lands on the directory that was checked
/// even if a path component is swapped for a symlink meanwhile.
pub struct Mountpoint {
    pub path: PathBuf,
    dir: OwnedFd,
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether `path` is a mountpoint in this process's mount table.
pub fn is_mountpoint(path: &Path) -> bool {
    mount_entry(path).is_some()
}

/// The (source, type) of the last mount on `path`, from /proc/self/mounts.
pub fn mount_entry(path: &Path) -> Option<(String, String)> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let want = escape(path);
    mounts.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.get(1) == Some(&want.as_str())).then(|| (f[0].to_string(), f[2].to_string()))
    })
}

/// Whether a FUSE mount with `source` (an absolute vault path) is in the mount table.
pub fn source_is_mounted(source: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let want = escape(source);
    mounts.lines().any(|l| {
        let mut f = l.split(' ');
        let (src, _, ty) = (f.next(), f.next(), f.next());
        src == Some(want.as_str()) && ty.is_some_and(|t| t.starts_with("fuse"))
    })
}

/// A path as /proc/mounts writes it (octal escapes for space, tab, newline, backslash).
fn escape(p: &Path) -> String {
    let mut s = String::new();
    for c in p.to_string_lossy().chars() {
        match c {
            ' ' => s.push_str("\\040"),
            '\t' => s.push_str("\\011"),
            '\n' => s.push_str("\\012"),
            '\\' => s.push_str("\\134"),
            c => s.push(c),
        }
    }
    s
}

/// Whether `cmd` is an executable on PATH (without one, as mount(8) runs
/// helpers for users, the default search path of execvp(3)).
fn on_path(cmd: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    std::env::split_paths(&path).any(|d| {
        std::fs::metadata(d.join(cmd))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Whether /etc/fuse.conf lets ordinary users pass allow_other.
fn user_allow_other() -> bool {
    std::fs::read_to_string("/etc/fuse.conf").is_ok_and(|c| {
        c.lines()
            .any(|l| l.split('#').next().unwrap_or("").trim() == "user_allow_other")
    })
}

/// Checks, before the password is asked for, everything that would make the
/// mount fail; each error is one line that names the fix.
pub fn preflight(r: &Request<'_>) -> Result<()> {
    let fail = |s: String| Err(Error::Config(s));
    use rustix::fs::{Mode, OFlags};
    match rustix::fs::open("/dev/fuse", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
        Ok(_) => {}
        Err(rustix::io::Errno::NOENT) => {
            return fail(
                "/dev/fuse is missing: load the FUSE module (`modprobe fuse`, as root); \
                 in a container, pass the device in (e.g. `--device /dev/fuse`)"
                    .into(),
            );
        }
        // The device node is there but no driver answers (opening it loads
        // the module where it can).
        Err(rustix::io::Errno::NODEV | rustix::io::Errno::NXIO) => {
            return fail(
                "the kernel has no FUSE support loaded: run `modprobe fuse` as root".into(),
            );
        }
        Err(e) => {
            return fail(format!(
                "cannot open /dev/fuse ({e}): ask root to allow it for users \
                 (`chmod 0666 /dev/fuse`, the usual mode) or to mount for you"
            ));
        }
    }
    if !is_root() {
        if !on_path("fusermount3") {
            return fail(
                "fusermount3 is missing: install the fuse3 package (`apt install fuse3`)".into(),
            );
        }
        if r.allow_other && !user_allow_other() {
            return fail(
                "--allow-other needs `user_allow_other` in /etc/fuse.conf: as root, run \
                 `echo user_allow_other >> /etc/fuse.conf`"
                    .into(),
            );
        }
    }
    if !r.read_only {
        if let Ok(st) = rustix::fs::statvfs(r.source) {
            if st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
                return fail(format!(
                    "the vault {} is on a read-only filesystem: mount it with --read-only",
                    r.source.display()
                ));
            }
        }
    }
    Ok(())
}

/// The /dev/fuse descriptor of a mount made here; `None` when the caller
/// should let fuser mount through fusermount3 (not root, or mount(2) refused).
pub fn mount(r: &Request<'_>) -> Result<Option<OwnedFd>> {
    if !is_root() {
        return Ok(None);
    }
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open("/dev/fuse", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::Config(format!("cannot open /dev/fuse: {e}")))?;
    let mut data = format!(
        "fd={},rootmode=40000,user_id={},group_id={},default_permissions",
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw()
    );
    if r.allow_other {
        data.push_str(",allow_other");
    }
    use rustix::mount::MountFlags;
    let mut flags = MountFlags::NODEV | MountFlags::NOSUID | MountFlags::NOATIME;
    if r.read_only {
        flags |= MountFlags::RDONLY;
    }
    if r.no_exec {
        flags |= MountFlags::NOEXEC;
    }
    let data = CString::new(data).map_err(|e| Error::Config(e.to_string()))?;
    // The directory that was checked, whatever its path leads to now.
    let target = format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&r.mountpoint.dir)
    );
    match rustix::mount::mount(
        r.source,
        &target,
        "fuse.sealfs",
        flags,
        Some(data.as_c_str()),
    ) {
        Ok(()) => Ok(Some(fd)),
        // Root without CAP_SYS_ADMIN (a user namespace): fusermount3 may still work.
        Err(rustix::io::Errno::PERM) => Ok(None),
        Err(e) => Err(Error::Config(format!(
            "cannot mount on {}: {e}",
            r.mountpoint.path.display()
        ))),
    }
}

/// The device (`major:minor`) of the mount on top of `mnt` now, from
/// /proc/self/mountinfo: what tells one mount from another on the same path.
pub fn device_of(mnt: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = escape(mnt);
    info.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.get(4) == Some(&want.as_str()))
            .then(|| f.get(2).map(|d| d.to_string()))
            .flatten()
    })
}

/// Unmounts `mnt` (through fusermount3 when not allowed directly), never
/// through a symlink; a busy mount is EBUSY.
pub fn unmount(mnt: &Path) -> std::io::Result<()> {
    match rustix::mount::unmount(mnt, rustix::mount::UnmountFlags::NOFOLLOW) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let out = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(mnt)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()?;
    if out.status.success() {
        return Ok(());
    }
    let msg = String::from_utf8_lossy(&out.stderr);
    if msg.contains("busy") {
        return Err(std::io::Error::from_raw_os_error(libc::EBUSY));
    }
    Err(std::io::Error::other(format!(
        "fusermount3 -u failed: {}",
        msg.trim()
    )))
}

/// Detaches `mnt` now; it goes away when its last user lets go.
pub fn detach(mnt: &Path) {
    let flags = rustix::mount::UnmountFlags::DETACH | rustix::mount::UnmountFlags::NOFOLLOW;
    if rustix::mount::unmount(mnt, flags).is_err() {
        let _ = std::process::Command::new("fusermount3")
            .arg("-uz")
            .arg(mnt)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The mount this daemon serves, once it is made: only that mount is ever
/// unmounted by the daemon (on a signal, when idle, after a failure), never
/// whatever else sits on the same path by then.
///
/// A signal can arrive while the mount is being made, after the kernel has
/// it but before it is recorded here: `mounting` and `stop` hand that case
/// to the mounting thread, which unmounts once it has recorded the mount
/// (exiting at once would leave a dead mount behind).
#[derive(Clone, Default)]
pub struct Ours(std::sync::Arc<OursInner>);

#[derive(Default)]
pub struct OursInner {
    mount: std::sync::OnceLock<(PathBuf, String)>,
    /// (a mount is being made, a stop was asked for)
    state: std::sync::Mutex<(bool, bool)>,
    asked: std::sync::Condvar,
}

/// What a stop request found (see `Ours::request_stop`).
pub enum OnStop {
    /// Our mount is there: unmount it.
    Unmount,
    /// A mount is being made: its thread unmounts it once recorded.
    Deferred,
    /// Nothing mounted, nothing being mounted: just exit.
    Exit,
}

impl Ours {
    fn state(&self) -> std::sync::MutexGuard<'_, (bool, bool)> {
        self.0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Says a mount is about to be made (call before mounting).
    pub fn mounting(&self) {
        self.state().0 = true;
    }

    /// Records the mount now on `mnt` as ours and ends `mounting`; returns
    /// whether a stop was asked for meanwhile (the caller then unmounts).
    pub fn record(&self, mnt: &Path) -> bool {
        test_hook_hold_mount(self);
        if let Some(dev) = device_of(mnt) {
            let _ = self.0.mount.set((mnt.to_path_buf(), dev));
        }
        self.mounting_failed()
    }

    /// Ends `mounting` without a mount (it failed); returns whether a stop
    /// was asked for meanwhile.
    pub fn mounting_failed(&self) -> bool {
        let mut st = self.state();
        st.0 = false;
        st.1
    }

    /// Asks for a stop (a signal came) and says what the caller must do.
    pub fn request_stop(&self) -> OnStop {
        let mut st = self.state();
        st.1 = true;
        self.0.asked.notify_all();
        if st.0 {
            OnStop::Deferred
        } else if self.device().is_some() {
            OnStop::Unmount
        } else {
            OnStop::Exit
        }
    }

    /// The device of our mount, once made.
    pub fn device(&self) -> Option<&str> {
        self.0.mount.get().map(|(_, d)| d.as_str())
    }

    /// Whether our mount is still the one on its path.
    pub fn is_mounted(&self) -> bool {
        self.0
            .mount
            .get()
            .is_some_and(|(p, d)| device_of(p).as_deref() == Some(d.as_str()))
    }

    /// Unmounts our mount; `Ok` also when it is already gone.
    pub fn unmount(&self) -> std::io::Result<()> {
        match self.0.mount.get() {
            Some((p, _)) if self.is_mounted() => unmount(p),
            _ => Ok(()),
        }
    }

    /// Detaches our mount, if it is still there.
    pub fn detach(&self) {
        if let Some((p, _)) = self.0.mount.get().filter(|_| self.is_mounted()) {
            detach(p);
        }
    }
}

/// The mountpoint, canonical, checked to be an empty directory that is not
/// already a mountpoint, and held open.
pub fn check_mountpoint(mnt: &Path) -> Result<Mountpoint> {
    let canon = std::fs::canonicalize(mnt).map_err(|e| {
        Error::Config(format!(
            "mountpoint {}: {e}; create it first (`mkdir -p {}`)",
            mnt.display(),
            mnt.display()
        ))
    })?;
    use rustix::fs::{Mode, OFlags};
    let dir = rustix::fs::open(
        &canon,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::NOTDIR => Error::Config(format!(
            "mountpoint {} is not a directory: mount on an empty directory",
            mnt.display()
        )),
        e => Error::Config(format!("mountpoint {}: {e}", mnt.display())),
    })?;
    if is_mountpoint(&canon) {
        return Err(Error::Config(format!(
            "{} is already a mountpoint: unmount it first (`sealfs umount {}`) or pick another directory",
            mnt.display(),
            mnt.display()
        )));
    }
    let listing = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&dir));
    let mut entries = std::fs::read_dir(&listing)
        .map_err(|e| Error::Config(format!("mountpoint {}: {e}", mnt.display())))?;
    if entries.next().is_some() {
        return Err(Error::Config(format!(
            "mountpoint {} is not empty: mount on an empty directory",
            mnt.display()
        )));
    }
    Ok(Mountpoint { path: canon, dir })
}

/// Test hook (debug builds only): with `SEALFS_TEST_HOLD_MOUNT=FILE`, the
/// daemon creates FILE once the kernel has the mount but before it is
/// recorded, then waits for a stop request before it goes on, so a test can
/// signal it exactly in the window between the mount and its bookkeeping.
fn test_hook_hold_mount(ours: &Ours) {
    if !cfg!(debug_assertions) {
        return;
    }
    let Some(file) = std::env::var_os("SEALFS_TEST_HOLD_MOUNT") else {
        return;
    };
    let _ = std::fs::write(file, b"held\n");
    let mut st = ours.state();
    while !st.1 {
        st = ours
            .0
            .asked
            .wait(st)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}

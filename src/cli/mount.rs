//! `sealfs mount` and `sealfs umount`: a daemon that detaches once the mount
//! is ready, unmounts cleanly on SIGINT/SIGTERM, and an unmount that waits
//! for the daemon to have flushed everything and exited.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use super::{PassArgs, fuse_mount, password};
use crate::fs::SealFs;
use crate::vault::sys::Stat;
use crate::vault::{Secret, Vault, sys};
use crate::{Error, Result};

pub struct MountArgs<'a> {
    pub pass: &'a PassArgs,
    pub vault: &'a Path,
    pub mountpoint: &'a Path,
    pub foreground: bool,
    pub read_only: bool,
    pub allow_other: bool,
    pub threads: usize,
    pub no_writeback_cache: bool,
    /// Files in the mount cannot be executed (`noexec`).
    pub no_exec: bool,
    /// Unmount after no use for this long.
    pub idle_timeout: Option<std::time::Duration>,
}

/// The name of the file in which daemon `pid` serving `mountpoint` leaves
/// why its final sync failed, for the `sealfs umount` that waited for that
/// very daemon to report.
fn failed_file(mountpoint: &Path, pid: i32) -> String {
    pid_file(mountpoint).replace(".pid", &format!(".{pid}.flush-failed"))
}

/// The name of the pid file of the daemon serving `mountpoint`, in the
/// private runtime directory (see `super::runtime`).
fn pid_file(mountpoint: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let h = blake3::hash(mountpoint.as_os_str().as_bytes()).to_hex();
    format!("{}.pid", &h[..16])
}

/// The pid holding a flock on the inode `st` (from /proc/locks).
fn flock_holder(st: &Stat) -> Option<i32> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let want = format!(
        "{:02x}:{:02x}:{}",
        libc::major(st.st_dev),
        libc::minor(st.st_dev),
        st.st_ino
    );
    locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // "1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF"
        (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&want.as_str()))
            .then(|| f.get(4)?.parse().ok())
            .flatten()
    })
}

/// Whether the lock taken by process `pid` belongs to a mount daemon
/// (possibly still flushing after its mount went away), not an offline
/// command. /proc/locks names the process that took the lock: for a daemon
/// that is the `sealfs mount` that forked it, which has usually exited.
fn is_mount_daemon(pid: i32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(c) => {
            let args: Vec<&[u8]> = c.split(|&b| b == 0).collect();
            args.len() > 1 && args[0].ends_with(b"sealfs") && args[1] == b"mount"
        }
        Err(_) => true,
    }
}

/// How long a new mount waits for the daemon of an unmounted earlier mount
/// of the same vault to finish flushing and let go of the vault.
const PREVIOUS_MOUNT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Takes an exclusive lock on the vault root for the life of the mount, so a
/// second mount of the same vault on this machine is refused (writes nothing).
/// A lock held by the daemon of a mount that is already gone from the mount
/// table (a plain `umount`, still flushing) is waited for, up to 30 s;
/// a lock held by anything else is refused at once.
fn lock_vault(vault: &Path) -> Result<OwnedFd> {
    let fd = crate::vault::runtime::open_lock(vault)?;
    let canon = std::fs::canonicalize(vault).unwrap_or_else(|_| vault.to_path_buf());
    let st = sys::fstat(std::os::fd::AsFd::as_fd(&fd))?;
    let start = std::time::Instant::now();
    let mut told = false;
    loop {
        if crate::vault::runtime::try_lock(&fd)? {
            return Ok(fd);
        }
        // Wait only for a mount daemon whose mount is already gone; anything
        // else holding the vault (a live mount, an offline command) is
        // refused at once.
        let holder = flock_holder(&st);
        if let Some(pid) = holder.filter(|&p| !is_mount_daemon(p)) {
            return Err(Error::Config(format!(
                "{} is in use by another process (pid {pid}); try again when it has finished",
                vault.display()
            )));
        }
        if fuse_mount::source_is_mounted(&canon) || start.elapsed() > PREVIOUS_MOUNT_WAIT {
            return Err(Error::Config(format!(
                "{} is already mounted by another sealfs process",
                vault.display()
            )));
        }
        if !told && start.elapsed() > std::time::Duration::from_secs(1) {
            eprintln!(
                "sealfs: waiting for the previous mount of {} to finish writing",
                vault.display()
            );
            told = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Starts a thread that unmounts our mount when SIGINT, SIGTERM or SIGHUP
/// arrives (signal-hook replaces their default action, so none of them
/// kills the daemon mid-write); the session then ends normally. Before the
/// mount is made, a signal ends the daemon.
fn handle_signals(ours: fuse_mount::Ours) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("sealfs-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                match ours.request_stop() {
                    fuse_mount::OnStop::Exit => {
                        log::info!("signal {sig} before the mount was made: exiting");
                        std::process::exit(1);
                    }
                    fuse_mount::OnStop::Deferred => {
                        log::info!("signal {sig} while mounting: unmounting once mounted");
                    }
                    fuse_mount::OnStop::Unmount => {
                        log::info!("signal {sig}: unmounting");
                        if let Err(e) = ours.unmount() {
                            // Busy: detach now; the session ends when the last user lets go.
                            log::warn!("unmount: {e}; detaching lazily");
                            ours.detach();
                        }
                    }
                }
            }
        })?;
    Ok(())
}

/// Tells the parent (or the service manager) that the mount failed, and returns the error.
fn failed(ready: Option<OwnedFd>, err: Error) -> Error {
    if let Some(r) = ready {
        let mut f = std::fs::File::from(r);
        let _ = writeln!(f, "{err}");
    }
    err
}

fn serve(
    vault: &Vault,
    mnt: &fuse_mount::Mountpoint,
    a: &MountArgs<'_>,
    ready: Option<OwnedFd>,
) -> Result<()> {
    // Modes arrive already masked by the caller's umask; ours must not mask them again.
    rustix::process::umask(rustix::fs::Mode::empty());
    let mut fs = match SealFs::new(vault, a.read_only) {
        Ok(fs) => fs,
        Err(e) => return Err(failed(ready, e)),
    };
    fs.caching = !a.no_writeback_cache;
    let flush_failed = fs.flush_failed.clone();
    let source = std::fs::canonicalize(vault.path()).unwrap_or_else(|_| vault.path().to_path_buf());
    let mut cfg = fuser::Config::default();
    let mut opts = vec![
        fuser::MountOption::FSName(source.display().to_string()),
        fuser::MountOption::Subtype("sealfs".into()),
        fuser::MountOption::DefaultPermissions,
        fuser::MountOption::NoAtime,
    ];
    if a.read_only {
        opts.push(fuser::MountOption::RO);
    }
    if a.no_exec {
        opts.push(fuser::MountOption::NoExec);
    }
    cfg.mount_options = opts;
    cfg.acl = if a.allow_other {
        fuser::SessionACL::All
    } else {
        fuser::SessionACL::Owner
    };
    cfg.n_threads = Some(a.threads.max(1));
    cfg.clone_fd = true;
    let ours = fuse_mount::Ours::default();
    if let Err(e) = handle_signals(ours.clone()) {
        return Err(failed(ready, e));
    }
    if let Some(idle) = a.idle_timeout {
        if let Err(e) = super::idle::watch(ours.clone(), idle) {
            return Err(failed(ready, e));
        }
    }
    // The runtime directory is checked before anything is mounted.
    let runtime = match crate::vault::runtime::open_dir() {
        Ok(d) => d,
        Err(e) => {
            let err = Error::Config(format!("cannot record the mount daemon: {e}"));
            return Err(failed(ready, err));
        }
    };
    let request = fuse_mount::Request {
        source: &source,
        mountpoint: mnt,
        read_only: a.read_only,
        allow_other: a.allow_other,
        no_exec: a.no_exec,
    };
    let path = mnt.path.as_path();
    ours.mounting();
    let mut stopped = false;
    let session = match fuse_mount::mount(&request) {
        Ok(Some(dev)) => {
            stopped = ours.record(path);
            fuser::Session::from_fd(fs, dev, cfg.acl, cfg.clone()).inspect_err(|_| ours.detach())
        }
        Ok(None) => fuser::Session::new(fs, path, &cfg).inspect(|_| stopped = ours.record(path)),
        Err(e) => {
            ours.mounting_failed();
            return Err(failed(ready, e));
        }
    };
    let session = match session {
        Ok(s) => s,
        Err(e) => {
            ours.mounting_failed();
            let err = Error::Config(format!("cannot mount on {}: {e}", path.display()));
            return Err(failed(ready, err));
        }
    };
    if stopped {
        // A signal came while the mount was being made: undo it.
        if ours.unmount().is_err() {
            ours.detach();
        }
        let err = Error::Config("stopped by a signal while mounting".into());
        return Err(failed(ready, err));
    }
    tune_readahead(&ours);
    let pidf = pid_file(path);
    // Where `umount` learns whom to wait for; a failure here stops the mount
    // (an unmount that cannot wait for the flush would lose data silently).
    let record = super::status::Record {
        pid: std::process::id() as i32,
        vault: source.clone(),
        mountpoint: path.to_path_buf(),
        vault_id: Vault::info(vault.path())
            .map(|i| i.vault_id.iter().map(|b| format!("{b:02x}")).collect())
            .unwrap_or_default(),
        read_only: a.read_only,
        started: super::status::now(),
    };
    if let Err(e) = crate::vault::runtime::write_file(&runtime, &pidf, &record.to_text()) {
        let err = Error::Config(format!("cannot record the mount daemon: {e}"));
        if ours.unmount().is_err() {
            ours.detach();
        }
        return Err(failed(ready, err));
    }
    if let Some(r) = ready {
        let mut f = std::fs::File::from(r);
        let _ = f.write_all(b"OK\n");
    }
    super::service::notify_ready();
    let result = session.run();
    // A final sync that failed is left for `sealfs umount` to report.
    if let Some(why) = flush_failed.get() {
        let name = failed_file(path, std::process::id() as i32);
        let _ = crate::vault::runtime::write_file(&runtime, &name, why);
    }
    crate::vault::runtime::remove_file(&runtime, &pidf);
    if result.is_err() {
        // The session failed while mounted: no one would answer there again.
        ours.detach();
    }
    result.map_err(|e| Error::Config(format!("FUSE session ended with an error: {e}")))
}

/// Kernel readahead for this mount, in KiB. The kernel starts FUSE mounts at
/// 128 KiB, which caps cold sequential reads at 128 KiB requests; a larger
/// window lets several 1 MiB reads be decrypted in parallel (1.0 -> 1.8 GB/s
/// on the reference machine). It only applies to sequential access.
const READAHEAD_KIB: u32 = 8192;

/// Raises the readahead window of the mount's backing device info (root only;
/// best effort).
fn tune_readahead(ours: &fuse_mount::Ours) {
    // The device number comes from mountinfo: a stat of the mountpoint would
    // be a FUSE request that nobody serves yet (the session runs after this).
    let Some(dev) = ours.device() else {
        return;
    };
    let path = format!("/sys/class/bdi/{dev}/read_ahead_kb");
    if let Err(e) = std::fs::write(&path, READAHEAD_KIB.to_string()) {
        log::info!("could not raise readahead ({path}): {e}");
    }
}

/// Redirects stdin/stdout/stderr to /dev/null (or stderr to a log file).
fn detach_stdio(log: Option<&Path>) -> Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let err = match log {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)?,
        None => null.try_clone()?,
    };
    rustix::stdio::dup2_stdin(&null)?;
    rustix::stdio::dup2_stdout(&null)?;
    rustix::stdio::dup2_stderr(&err)?;
    Ok(())
}

/// What the daemon tells `sealfs mount` when the password was wrong.
const WRONG_PASSWORD: &str = "WRONG-PASSWORD";

/// Asks for the password (terminal, file, command or keyring) and unlocks,
/// with the warnings a mount gives.
fn unlock(a: &MountArgs<'_>) -> Result<Vault> {
    let pw = password::existing(a.pass, a.vault)?;
    let vault = Vault::unlock(a.vault, Secret::Password(&pw))?;
    drop(pw);
    for c in crate::vault::config_conflicts(vault.root_fd()) {
        eprintln!(
            "sealfs: warning: {c} in the vault looks like a sync tool's conflict copy of \
             sealfs.conf; sealfs uses sealfs.conf only (see `sealfs fsck`)"
        );
    }
    if Vault::info(a.vault)?.state == crate::format::config::State::Rekeying {
        eprintln!(
            "sealfs: warning: a rekey of this vault is unfinished; run `sealfs rekey` when it is unmounted"
        );
    }
    Ok(vault)
}

pub fn mount(a: &MountArgs<'_>, log_file: Option<&Path>) -> Result<()> {
    Vault::info(a.vault)?;
    super::refuse_unfinished_full_rekey(a.vault)?;
    let mnt = fuse_mount::check_mountpoint(a.mountpoint)?;
    let source = std::fs::canonicalize(a.vault)?;
    fuse_mount::preflight(&fuse_mount::Request {
        source: &source,
        mountpoint: &mnt,
        read_only: a.read_only,
        allow_other: a.allow_other,
        no_exec: a.no_exec,
    })?;
    let lock = lock_vault(a.vault)?;
    raise_fd_limit();
    if a.foreground {
        let vault = unlock(a)?;
        let r = serve(&vault, &mnt, a, None);
        drop(lock);
        return r;
    }
    // The daemon is forked before anything starts a thread (a keyring
    // client does), and reads the password itself, still on this terminal;
    // the keys never exist in this process.
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    match crate::os::process::fork()? {
        crate::os::process::Forked::Child => {
            drop(rd);
            let vault = match unlock(a) {
                Ok(v) => v,
                Err(e) => {
                    let msg = match e {
                        Error::WrongPassword => WRONG_PASSWORD.to_string(),
                        e => e.to_string(),
                    };
                    let _ = writeln!(std::fs::File::from(wr), "{msg}");
                    std::process::exit(1);
                }
            };
            // A session of its own: the terminal's hangup does not reach it.
            let _ = rustix::process::setsid();
            let _ = detach_stdio(log_file);
            if log_file.is_none() {
                super::logging::to_syslog();
            }
            let code = match serve(&vault, &mnt, a, Some(wr)) {
                Ok(()) => 0,
                Err(e) => {
                    log::error!("{e}");
                    1
                }
            };
            drop(lock);
            std::process::exit(code);
        }
        crate::os::process::Forked::Parent(_) => {
            drop(wr);
            drop(lock);
            let mut msg = String::new();
            let _ = std::fs::File::from(rd).read_to_string(&mut msg);
            match msg.trim() {
                "OK" => Ok(()),
                WRONG_PASSWORD => Err(Error::WrongPassword),
                "" => Err(Error::Config(
                    "the mount daemon exited before the mount was ready".into(),
                )),
                m => Err(Error::Config(m.trim_start_matches("sealfs: ").to_string())),
            }
        }
    }
}

/// Raises the soft descriptor limit to the hard one (never the hard limit
/// itself). The daemon holds a bounded number of descriptors, a fixed share
/// of this limit (see `fs::fdcache`), so any limit works; a larger one only
/// means fewer reopens.
fn raise_fd_limit() {
    if let Ok((soft, hard)) = sys::nofile_limit() {
        if soft < hard && sys::set_nofile_soft(hard).is_err() {
            log::warn!("could not raise the descriptor limit to {hard}");
        }
    }
}

/// Unmounts and waits until the daemon has flushed and exited.
pub fn umount(mnt: &Path) -> Result<()> {
    let canon =
        std::fs::canonicalize(mnt).map_err(|e| Error::Config(format!("{}: {e}", mnt.display())))?;
    if !fuse_mount::is_mountpoint(&canon) {
        return Err(Error::Config(format!("{} is not mounted", mnt.display())));
    }
    let pid: Option<i32> = crate::vault::runtime::open_dir()
        .ok()
        .and_then(|d| crate::vault::runtime::read_file(&d, &pid_file(&canon)))
        .and_then(|s| super::status::Record::parse(&s))
        .map(|r| r.pid);
    let pidfd = pid
        .and_then(rustix::process::Pid::from_raw)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    fuse_mount::unmount(&canon).map_err(|e| match e.raw_os_error() {
        Some(libc::EBUSY) => {
            Error::Config(format!("{} is busy (files are open there)", mnt.display()))
        }
        _ => Error::Config(format!("cannot unmount {}: {e}", mnt.display())),
    })?;
    if let Some(fd) = &pidfd {
        // Readable once the daemon has exited (after its final flush).
        let mut p = [rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN)];
        let limit = rustix::event::Timespec {
            tv_sec: 120,
            tv_nsec: 0,
        };
        let r = rustix::event::poll(&mut p, Some(&limit)).unwrap_or(1);
        if r == 0 {
            return Err(Error::Config(
                "unmounted, but the daemon did not exit within 120 s".into(),
            ));
        }
    }
    // The daemon waited for has exited: did its final write to the vault's
    // disk fail? (Without a pid to wait for, there is no report to trust.)
    if let (Some(pid), Some(_), Ok(dir)) = (pid, &pidfd, crate::vault::runtime::open_dir()) {
        let name = failed_file(&canon, pid);
        if let Some(why) = crate::vault::runtime::read_file(&dir, &name) {
            crate::vault::runtime::remove_file(&dir, &name);
            return Err(Error::Config(format!(
                "unmounted, but the final write to the vault's disk failed ({}); \
                 recent changes may be lost: check the disk, then run `sealfs fsck`",
                why.trim()
            )));
        }
    }
    Ok(())
}

//! A real FUSE mount for a test, unmounted on drop even when the test fails.
//! A mount that cannot be made is a test failure, never a skip.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_sealfs");

pub struct Mounted {
    pub tmp: tempfile::TempDir,
    pub vault: PathBuf,
    pub mnt: PathBuf,
    pub passfile: PathBuf,
    /// A command the mount runs under (e.g. `prlimit --nofile=256:256`).
    pub launcher: Vec<String>,
    /// What the last `sealfs mount` printed on stderr.
    pub mount_stderr: String,
    mounted: bool,
}

pub fn sealfs(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().expect("run sealfs")
}

impl Mounted {
    /// A new vault, mounted with `extra` mount flags.
    pub fn new(extra: &[&str]) -> Mounted {
        Self::new_under(&[], extra)
    }

    /// A new vault, mounted by `sealfs` started through `launcher`
    /// (which the daemon inherits, e.g. a descriptor limit).
    pub fn new_under(launcher: &[&str], extra: &[&str]) -> Mounted {
        let tmp = tempfile::Builder::new()
            .prefix("sealfs-test-")
            .tempdir()
            .expect("tempdir");
        let vault = tmp.path().join("vault");
        let mnt = tmp.path().join("mnt");
        let passfile = tmp.path().join("pw");
        std::fs::create_dir(&mnt).unwrap();
        super::secret(&passfile, "test password\n");
        let o = sealfs(&[
            "init",
            "--passfile",
            p(&passfile),
            "--kdf-memory",
            "64",
            "--recovery-key-file",
            p(&tmp.path().join("rk")),
            p(&vault),
        ]);
        assert!(
            o.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut m = Mounted {
            tmp,
            vault,
            mnt,
            passfile,
            launcher: launcher.iter().map(|s| s.to_string()).collect(),
            mount_stderr: String::new(),
            mounted: false,
        };
        m.mount(extra);
        m
    }

    pub fn mount(&mut self, extra: &[&str]) {
        let log = self.tmp.path().join("daemon.log");
        let mut args = vec![
            "mount",
            "--passfile",
            p(&self.passfile),
            "--log-file",
            p(&log),
        ];
        args.extend_from_slice(extra);
        args.push(p(&self.vault));
        args.push(p(&self.mnt));
        let o = if self.launcher.is_empty() {
            sealfs(&args)
        } else {
            Command::new(&self.launcher[0])
                .args(&self.launcher[1..])
                .arg(BIN)
                .args(&args)
                .output()
                .expect("run the launcher")
        };
        assert!(
            o.status.success(),
            "MOUNT FAILED (FUSE must work here: root and /dev/fuse): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        self.mounted = true;
        self.mount_stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    }

    pub fn umount(&mut self) {
        if !self.mounted {
            return;
        }
        self.mounted = false;
        // Tests run in parallel threads, and a process another thread spawns
        // holds copies of this process's fds between its fork and its exec:
        // a file this test just closed can keep the mount busy for that
        // instant. Retry a "busy" briefly; anything else fails at once.
        let mut o = sealfs(&["umount", p(&self.mnt)]);
        for _ in 0..50 {
            if o.status.success() || !String::from_utf8_lossy(&o.stderr).contains("busy") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            o = sealfs(&["umount", p(&self.mnt)]);
        }
        if !o.status.success() {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
            panic!(
                "sealfs umount failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }

    /// The mount was taken down by other means (a plain `umount`).
    pub fn forget_mounted(&mut self) {
        self.mounted = false;
    }

    /// The mountpoint was mounted by other means (`mount -t`, an fstab
    /// line): unmount it when dropped.
    pub fn adopt(&mut self) {
        self.mounted = true;
    }

    /// Whether the mountpoint is mounted now.
    pub fn is_mounted(&self) -> bool {
        mount_line(&self.mnt).is_some()
    }

    pub fn remount(&mut self) {
        self.umount();
        self.mount(&[]);
    }

    /// The vault entry name (in the vault's root) of the plaintext `name`.
    pub fn vault_entry(&self, name: &str) -> String {
        let v = sealfs::vault::Vault::unlock(
            &self.vault,
            sealfs::vault::Secret::Password(b"test password"),
        )
        .expect("unlock");
        let root = v.root().expect("root");
        let entry = root
            .disk_name(std::ffi::OsStr::new(name))
            .expect("disk name");
        entry.entry().to_string()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    /// The pid of the daemon serving this mount.
    pub fn daemon_pid(&self) -> i32 {
        let o = Command::new("pgrep")
            .arg("-f")
            .arg(format!("sealfs mount.*{}", p(&self.mnt)))
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("daemon pid")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.tmp.path().join("daemon.log")).unwrap_or_default()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.mounted {
            self.mounted = false;
            let ok = sealfs(&["umount", p(&self.mnt)]).status.success();
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
            }
        }
    }
}

/// The fields (source, mountpoint, type, options, ..) of the last
/// /proc/mounts line for `mnt`.
pub fn mount_line(mnt: &Path) -> Option<Vec<String>> {
    let mounts = std::fs::read_to_string("/proc/mounts").expect("/proc/mounts");
    mounts
        .lines()
        .rev()
        .map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())
        .find(|f| f.get(1).map(String::as_str) == Some(p(mnt)))
}

/// Polls `cond` (every 20 ms) until it holds or `secs` pass; whether it held.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    cond()
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// /sbin/mount.fuse.sealfs linked to `bin` while it lives; whatever was
/// there before is put back.
pub struct Helper {
    path: PathBuf,
    saved: Option<PathBuf>,
}

impl Helper {
    pub fn install(bin: impl AsRef<Path>) -> Helper {
        let path = PathBuf::from("/sbin/mount.fuse.sealfs");
        let saved = std::fs::symlink_metadata(&path).ok().map(|_| {
            let s = path.with_extension("sealfs-test-saved");
            std::fs::rename(&path, &s).unwrap();
            s
        });
        std::os::unix::fs::symlink(bin, &path).expect("install the mount helper (root)");
        Helper { path, saved }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(s) = &self.saved {
            let _ = std::fs::rename(s, &self.path);
        }
    }
}

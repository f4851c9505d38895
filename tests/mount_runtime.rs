//! Other local users are adversaries: what they plant in the runtime
//! directory of the mount daemons is never followed or trusted. The tests
//! point XDG_RUNTIME_DIR at a directory of their own, so they do not touch
//! the runtime directory other tests' mounts use.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::mount::{BIN, Mounted, p};

/// The pid-file name the daemon for `mnt` uses.
fn pid_name(mnt: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let canon = std::fs::canonicalize(mnt).unwrap();
    format!(
        "{}.pid",
        &blake3::hash(canon.as_os_str().as_bytes()).to_hex()[..16]
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A vault mounted once (and unmounted again) with XDG_RUNTIME_DIR pointing
/// at a directory of the test's own: (its guard, its path, the env
/// assignment, the mount).
fn unmounted_with_private_runtime() -> (tempfile::TempDir, PathBuf, String, Mounted) {
    assert!(is_root(), "this test needs root (CI runs as root)");
    let xdg_tmp = tempfile::tempdir().unwrap();
    let xdg = xdg_tmp.path().to_path_buf();
    let env = format!("XDG_RUNTIME_DIR={}", xdg.display());
    let mut m = Mounted::new_under(&["env", &env], &[]);
    m.umount();
    (xdg_tmp, xdg, env, m)
}

#[test]
fn a_planted_pid_symlink_and_a_loose_directory_are_not_trusted() {
    let (_xdg_tmp, xdg, env, mut m) = unmounted_with_private_runtime();
    // What older sealfs left (a 0777 directory) with another user's plant in
    // it: a symlink named like the pid file, pointing at a file to clobber.
    let run = xdg.join("sealfs");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
    let victim: PathBuf = xdg.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let pidf = run.join(pid_name(&m.mnt));
    let _ = std::fs::remove_file(&pidf);
    std::os::unix::fs::symlink(&victim, &pidf).unwrap();
    m.mount(&[]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(
        std::fs::metadata(&run).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let meta = std::fs::symlink_metadata(&pidf).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the pid file is still a symlink"
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let record = std::fs::read_to_string(&pidf).unwrap();
    assert!(
        record.starts_with(&format!("pid={}\n", m.daemon_pid())),
        "{record}"
    );
    // umount (with the same runtime directory) waits for that daemon.
    let o = Command::new("env")
        .arg(&env)
        .arg(BIN)
        .args(["umount", p(&m.mnt)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    m.forget_mounted();
    // The daemon removes its pid file last, just before it exits.
    assert!(!pidf.exists(), "umount returned before the daemon finished");
}

#[test]
fn a_runtime_directory_owned_by_another_user_is_refused() {
    let (_xdg_tmp, xdg, env, m) = unmounted_with_private_runtime();
    // Another user (nobody) owns the runtime directory now.
    let run = xdg.join("sealfs");
    std::fs::remove_dir_all(&run).unwrap();
    std::fs::create_dir(&run).unwrap();
    std::os::unix::fs::chown(&run, Some(65534), Some(65534)).unwrap();
    let o = Command::new("env")
        .arg(&env)
        .arg(BIN)
        .args([
            "mount",
            "--passfile",
            p(&m.passfile),
            p(&m.vault),
            p(&m.mnt),
        ])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    if o.status.success() {
        let _ = Command::new("umount").arg("-l").arg(&m.mnt).status();
        panic!("mounted with a runtime directory owned by someone else");
    }
    assert!(e.contains("owned by uid 65534"), "{e}");
    assert_eq!(
        std::fs::read_dir(&run).unwrap().count(),
        0,
        "something was written there"
    );
    assert_eq!(std::fs::metadata(&run).unwrap().uid(), 65534);
    // Nothing is left mounted.
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(p(&m.mnt)), "left mounted");
}

/// Tests that change /dev/fuse's mode or /etc/fuse.conf run one at a time.
static SYSTEM_WIDE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Sets /dev/fuse to mode 0666 (what a desktop has; these machines have
/// 0600) and puts the old mode back when dropped, even when a test fails.
/// Holds the lock of the system-wide settings while it lives.
struct DevFuseOpen(u32, #[allow(dead_code)] std::sync::MutexGuard<'static, ()>);

impl DevFuseOpen {
    fn new() -> DevFuseOpen {
        let guard = SYSTEM_WIDE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = std::fs::metadata("/dev/fuse")
            .expect("/dev/fuse")
            .permissions()
            .mode()
            & 0o7777;
        let d = DevFuseOpen(old, guard);
        d.set(0o666);
        d
    }

    fn set(&self, mode: u32) {
        std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

impl Drop for DevFuseOpen {
    fn drop(&mut self) {
        let _ = std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(self.0));
    }
}

/// /etc/fuse.conf with or without `user_allow_other`; the old file (or its
/// absence) comes back when dropped.
struct FuseConf(Option<Vec<u8>>);

impl FuseConf {
    fn new() -> FuseConf {
        FuseConf(std::fs::read("/etc/fuse.conf").ok())
    }

    fn allow_other(&self, on: bool) {
        let old = String::from_utf8_lossy(self.0.as_deref().unwrap_or_default()).into_owned();
        let mut text: String = old
            .lines()
            .filter(|l| l.trim() != "user_allow_other")
            .map(|l| format!("{l}\n"))
            .collect();
        if on {
            text.push_str("user_allow_other\n");
        }
        std::fs::write("/etc/fuse.conf", text).unwrap();
    }
}

impl Drop for FuseConf {
    fn drop(&mut self) {
        let _ = match &self.0 {
            Some(old) => std::fs::write("/etc/fuse.conf", old),
            None => std::fs::remove_file("/etc/fuse.conf"),
        };
    }
}

/// Runs `args` as uid/gid `id` with a clean environment plus `env`.
fn as_user(id: u32, env: &[String], args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args([
            &format!("--reuid={id}"),
            &format!("--regid={id}"),
            "--clear-groups",
            "env",
            "-i",
            "PATH=/usr/local/bin:/usr/bin:/bin",
        ])
        .args(env)
        .args(args)
        .output()
        .expect("setpriv (util-linux)")
}

/// `sealfs init` of `vault` by nobody with the password in `pw` (the
/// recovery key goes beside the vault); the test fails if it does not.
fn init_as_nobody(bin: &Path, env: &[String], pw: &Path, vault: &Path) {
    let rk = vault.with_extension("rk");
    let o = as_user(
        65534,
        env,
        &[
            p(bin),
            "init",
            "--passfile",
            p(pw),
            "--kdf-memory",
            "64",
            "--recovery-key-file",
            p(&rk),
            p(vault),
        ],
    );
    assert!(
        o.status.success(),
        "init: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Nobody's vault in `home`: a 0600 passfile, a mountpoint others may
/// traverse, and `init` (see `init_as_nobody`); (vault, mountpoint, passfile).
fn nobody_vault(bin: &Path, env: &[String], home: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (vault, mnt, pw) = (home.join("vault"), home.join("mnt"), home.join("pw"));
    let o = as_user(
        65534,
        env,
        &[
            "sh",
            "-c",
            &format!(
                "umask 022; printf 'an ordinary users passphrase\\n' > {pw}; chmod 600 {pw}; mkdir {mnt}",
                pw = pw.display(),
                mnt = mnt.display()
            ),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    init_as_nobody(bin, env, &pw, &vault);
    (vault, mnt, pw)
}

/// A world-traversable test directory holding a copy of the binary (a
/// build under /root is not reachable by other users) and a home owned by
/// nobody: (its guard, the binary, the home).
fn user_home() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::set_permissions(t, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = t.join("sealfs");
    std::fs::copy(BIN, &bin).unwrap();
    let home = t.join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    (tmp, bin, home)
}

/// An ordinary user (nobody) mounts and unmounts their own vault through
/// fusermount3. Before that, another local user (uid 4242) plants the
/// user's runtime directory in a shared, sticky parent (as /tmp is): as a
/// symlink to a directory of theirs, then as a directory of theirs holding
/// symlinks; the mount refuses both and writes nothing through them.
#[test]
fn an_ordinary_user_mounts_through_fusermount3_and_trusts_no_plant() {
    assert!(is_root(), "this test needs root (CI runs as root)");
    const NOBODY: u32 = 65534;
    const OTHER: u32 = 4242;
    let _fuse = DevFuseOpen::new();
    let (tmp, bin, home) = user_home();
    let t = tmp.path();
    // A shared, sticky runtime parent (like /tmp), and the other user's loot.
    let shared = t.join("run");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let loot = t.join("loot");
    std::fs::create_dir(&loot).unwrap();
    std::os::unix::fs::chown(&loot, Some(OTHER), Some(OTHER)).unwrap();
    std::fs::set_permissions(&loot, std::fs::Permissions::from_mode(0o777)).unwrap();
    let env = vec![
        format!("XDG_RUNTIME_DIR={}", shared.display()),
        "HOME=/nonexistent".into(),
    ];
    let (vault, mnt, pw) = nobody_vault(&bin, &env, &home);
    let sealfs = |args: &[&str]| {
        let mut a = vec![p(&bin)];
        a.extend_from_slice(args);
        as_user(NOBODY, &env, &a)
    };
    let mount = || sealfs(&["mount", "--passfile", p(&pw), p(&vault), p(&mnt)]);
    let run = shared.join("sealfs");
    let mounted = || {
        std::fs::read_to_string("/proc/mounts")
            .unwrap()
            .contains(p(&mnt))
    };
    // Plant 1: the runtime directory is the other user's symlink.
    let o = as_user(OTHER, &env, &["ln", "-s", p(&loot), p(&run)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = mount();
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success() && !mounted(),
        "mounted through a planted symlink: {e}"
    );
    assert!(e.contains("symlink"), "{e}");
    assert_eq!(
        std::fs::read_dir(&loot).unwrap().count(),
        0,
        "wrote through the symlink"
    );
    // Plant 2: a directory of the other user's, holding symlinks.
    let o = as_user(
        OTHER,
        &env,
        &[
            "sh",
            "-c",
            &format!(
                "rm {r} && mkdir -m 777 {r} && for n in a.pid b.lock; do ln -s {l}/$n {r}/$n; done",
                r = run.display(),
                l = loot.display()
            ),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = mount();
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success() && !mounted(),
        "mounted with another user's runtime directory: {e}"
    );
    assert!(e.contains(&format!("owned by uid {OTHER}")), "{e}");
    assert_eq!(
        std::fs::read_dir(&loot).unwrap().count(),
        0,
        "wrote through a planted link"
    );
    // The plants gone, the ordinary user's mount works, through fusermount3.
    std::fs::remove_dir_all(&run).unwrap();
    let o = mount();
    assert!(
        o.status.success(),
        "ordinary user's mount: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(mounted());
    // The user's daemon is not dumpable (its /proc files belong to root, so
    // the user's other processes cannot read its memory) and holds its keys
    // in locked memory.
    let pgrep = Command::new("pgrep")
        .args(["-u", "65534", "-f", &format!("sealfs mount .*{}", p(&mnt))])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&pgrep.stdout).trim().to_string();
    let status_path = format!("/proc/{pid}/status");
    let owner = std::fs::metadata(&status_path).map(|m| m.uid());
    let status = std::fs::read_to_string(&status_path).unwrap_or_default();
    let o = as_user(
        NOBODY,
        &env,
        &[
            "sh",
            "-c",
            &format!("echo hello > {m}/f && cat {m}/f", m = mnt.display()),
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let umount = sealfs(&["umount", p(&mnt)]);
    if !umount.status.success() {
        let _ = Command::new("umount").arg("-l").arg(&mnt).status();
    }
    assert_eq!(out, "hello\n", "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        !pid.is_empty() && !pid.contains('\n'),
        "daemon pid: {pid:?}"
    );
    assert_eq!(owner.ok(), Some(0), "the daemon is dumpable: {status}");
    assert!(status.contains("\nUid:\t65534"), "{status}");
    let locked = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .map(|v| v.trim().trim_end_matches("kB").trim().to_string());
    assert!(
        locked.as_deref().is_some_and(|k| k != "0"),
        "no locked key memory: {status}"
    );
    assert!(
        umount.status.success(),
        "umount: {}",
        String::from_utf8_lossy(&umount.stderr)
    );
    assert!(!mounted());
    let md = std::fs::symlink_metadata(&run).unwrap();
    assert!(md.is_dir() && md.uid() == NOBODY && md.mode() & 0o777 == 0o700);
    assert_eq!(std::fs::read_dir(&loot).unwrap().count(), 0);
}

#[test]
fn status_shows_each_mount_with_its_vault_pid_mode_and_uptime() {
    let mut m = Mounted::new(&["--read-only"]);
    let status = |args: &[&str]| {
        let mut a = vec!["status"];
        a.extend_from_slice(args);
        common::mount::sealfs(&a)
    };
    let o = status(&[p(&m.mnt)]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mnt = std::fs::canonicalize(&m.mnt).unwrap();
    let vault = std::fs::canonicalize(&m.vault).unwrap();
    assert!(out.starts_with(&format!("{}\n", mnt.display())), "{out}");
    assert!(
        out.contains(&format!("vault:  {} (id ", vault.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("pid {}, read-only, up ", m.daemon_pid())),
        "{out}"
    );
    // Listing every mount of this user shows it too.
    let all = String::from_utf8_lossy(&status(&[]).stdout).into_owned();
    assert!(all.contains(&format!("{}\n", mnt.display())), "{all}");
    m.umount();
    let o = status(&[p(&m.mnt)]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a sealfs mount"));
}

/// An ordinary user's mount: each missing piece (access to /dev/fuse,
/// fusermount3, `user_allow_other`) is named with its fix; with
/// `user_allow_other` in /etc/fuse.conf, `--allow-other` lets root and
/// another user in, which without it the kernel refuses.
#[test]
fn an_ordinary_users_allow_other_and_what_to_fix() {
    assert!(is_root(), "this test needs root (CI runs as root)");
    const NOBODY: u32 = 65534;
    const OTHER: u32 = 4242;
    let fuse = DevFuseOpen::new();
    let conf = FuseConf::new();
    let (_tmp, bin, home) = user_home();
    let env = vec![
        format!("XDG_RUNTIME_DIR={}", home.display()),
        "HOME=/nonexistent".into(),
    ];
    let (vault, mnt, pw) = nobody_vault(&bin, &env, &home);
    let sealfs_with = |env: &[String], args: &[&str]| {
        let mut a = vec![p(&bin)];
        a.extend_from_slice(args);
        as_user(NOBODY, env, &a)
    };
    let sealfs = |args: &[&str]| sealfs_with(&env, args);
    let mounted = || common::mount::mount_line(&mnt).is_some();
    let fails_with = |o: std::process::Output, want: &[&str]| {
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success() && !mounted(), "mounted: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
        for w in want {
            assert!(e.contains(w), "{w:?} missing from {e}");
        }
    };
    let mount = |extra: &[&str]| {
        let mut a = vec!["mount", "--passfile", p(&pw)];
        a.extend_from_slice(extra);
        a.push(p(&vault));
        a.push(p(&mnt));
        sealfs(&a)
    };
    // /dev/fuse closed to users (this machine's default).
    fuse.set(0o600);
    fails_with(
        mount(&[]),
        &["cannot open /dev/fuse", "chmod 0666 /dev/fuse"],
    );
    fuse.set(0o666);
    // No fusermount3 on the user's PATH.
    let no_path = vec![env[0].clone(), env[1].clone(), "PATH=/nonexistent".into()];
    fails_with(
        sealfs_with(
            &no_path,
            &["mount", "--passfile", p(&pw), p(&vault), p(&mnt)],
        ),
        &["fusermount3 is missing", "apt install fuse3"],
    );
    // --allow-other without user_allow_other.
    conf.allow_other(false);
    fails_with(
        mount(&["--allow-other"]),
        &["user_allow_other", "/etc/fuse.conf"],
    );
    let read_as = |uid: u32| as_user(uid, &env, &["cat", p(&mnt.join("f"))]);
    let unmount = || {
        let o = sealfs(&["umount", p(&mnt)]);
        if !o.status.success() {
            let _ = Command::new("umount").arg("-l").arg(&mnt).status();
        }
        assert!(
            o.status.success(),
            "umount: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    // Without --allow-other, nobody else gets in, root included.
    let o = mount(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = as_user(
        NOBODY,
        &env,
        &["sh", "-c", &format!("echo shared > {}/f", mnt.display())],
    );
    let other_denied = !read_as(OTHER).status.success();
    let root_denied = std::fs::metadata(mnt.join("f")).map_err(|e| e.raw_os_error());
    unmount();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(other_denied);
    assert_eq!(root_denied.err(), Some(Some(libc::EACCES)));
    // With user_allow_other, --allow-other lets them in.
    conf.allow_other(true);
    let o = mount(&["--allow-other"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let other = read_as(OTHER);
    let root = std::fs::read(mnt.join("f"));
    unmount();
    assert_eq!(
        String::from_utf8_lossy(&other.stdout),
        "shared\n",
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
    assert_eq!(root.unwrap(), b"shared\n");
    assert!(!mounted());
}

/// An `/etc/fstab` line with `noauto,user`: the ordinary user mounts it
/// with a plain `mount MOUNTPOINT` (mount(8) runs the helper with the
/// user's own rights), the daemon runs as that user, and `umount` by the
/// user ends it with the data on disk.
#[test]
fn an_fstab_user_entry_is_mounted_by_that_user() {
    assert!(is_root(), "this test needs root (CI runs as root)");
    const NOBODY: u32 = 65534;
    let _fuse = DevFuseOpen::new();
    let (_tmp, bin, home) = user_home();
    let _helper = common::mount::Helper::install(&bin);
    let env = vec![
        format!("XDG_RUNTIME_DIR={}", home.display()),
        format!("HOME={}", home.display()),
    ];
    let (vault, mnt, pw) = nobody_vault(&bin, &env, &home);
    /// /etc/fstab as it was (or its absence) comes back when dropped.
    struct Fstab(Option<Vec<u8>>);
    impl Drop for Fstab {
        fn drop(&mut self) {
            let _ = match &self.0 {
                Some(old) => std::fs::write("/etc/fstab", old),
                None => std::fs::remove_file("/etc/fstab"),
            };
        }
    }
    let old = std::fs::read("/etc/fstab").ok();
    let _fstab = Fstab(old.clone());
    let mut text = old.unwrap_or_default();
    text.extend_from_slice(
        format!(
            "{} {} fuse.sealfs noauto,user,passfile={} 0 0\n",
            vault.display(),
            mnt.display(),
            pw.display()
        )
        .as_bytes(),
    );
    std::fs::write("/etc/fstab", text).unwrap();
    let o = as_user(NOBODY, &env, &["mount", p(&mnt)]);
    assert!(
        o.status.success(),
        "user mount: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let line = common::mount::mount_line(&mnt);
    let o = as_user(
        NOBODY,
        &env,
        &[
            "sh",
            "-c",
            &format!("echo from fstab > {}/f", mnt.display()),
        ],
    );
    let daemon_uid = Command::new("pgrep")
        .args([
            "-f",
            "-u",
            "65534",
            &format!("mount.fuse.sealfs {}", vault.display()),
        ])
        .output()
        .unwrap();
    let um = as_user(NOBODY, &env, &["umount", p(&mnt)]);
    if common::mount::mount_line(&mnt).is_some() {
        let _ = Command::new("umount").arg("-l").arg(&mnt).status();
    }
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let line = line.expect("mounted");
    assert_eq!(line[2], "fuse.sealfs");
    assert!(line[3].contains("user_id=65534"), "{line:?}");
    assert!(daemon_uid.status.success(), "no daemon of that user");
    assert!(
        um.status.success(),
        "user umount: {}",
        String::from_utf8_lossy(&um.stderr)
    );
    // The daemon flushes and exits after the unmount; then the file is on disk.
    let cat = || {
        as_user(
            NOBODY,
            &env,
            &[p(&bin), "cat", "--passfile", p(&pw), p(&vault), "f"],
        )
    };
    let mut o = cat();
    assert!(
        common::mount::wait_for(30, || {
            o = cat();
            o.status.success()
        }),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "from fstab\n");
}

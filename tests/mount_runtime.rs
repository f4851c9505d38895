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
    let pid: i32 = std::fs::read_to_string(&pidf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, m.daemon_pid());
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

//! `scripts/install.sh` puts every part where the system looks for it: the
//! binary, man pages, completions, the mount helper and the user unit.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sealfs");

fn repo(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn assert_ok(o: &std::process::Output) {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_staged_system_install_places_every_part() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let o = Command::new("bash")
        .arg(repo("scripts/install.sh"))
        .args(["--prefix", "/usr", "--destdir"])
        .arg(d)
        .arg("--bin")
        .arg(BIN)
        .output()
        .unwrap();
    assert_ok(&o);
    let bin = d.join("usr/bin/sealfs");
    assert!(std::fs::metadata(&bin).unwrap().permissions().mode() & 0o111 != 0);
    let helper = std::fs::read_link(d.join("sbin/mount.fuse.sealfs")).unwrap();
    assert_eq!(helper, Path::new("/usr/bin/sealfs"));
    let unit = std::fs::read_to_string(d.join("usr/lib/systemd/user/sealfs@.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/sealfs mount"), "{unit}");
    assert!(!unit.contains("@BINDIR@"), "{unit}");
    let pages = std::fs::read_dir(repo("man")).unwrap().count();
    let installed = std::fs::read_dir(d.join("usr/share/man/man1"))
        .unwrap()
        .count()
        + std::fs::read_dir(d.join("usr/share/man/man5"))
            .unwrap()
            .count();
    assert_eq!(installed, pages);
    for f in [
        "usr/share/bash-completion/completions/sealfs",
        "usr/share/zsh/site-functions/_sealfs",
        "usr/share/fish/vendor_completions.d/sealfs.fish",
    ] {
        let text = std::fs::read_to_string(d.join(f)).unwrap();
        assert!(text.contains("idle-timeout"), "{f}");
    }
    // The installed man page is found by man through its MANPATH.
    let o = Command::new("man")
        .args(["-P", "cat", "sealfs-mount"])
        .env("MANPATH", d.join("usr/share/man"))
        .output()
        .unwrap();
    assert_ok(&o);
    assert!(String::from_utf8_lossy(&o.stdout).contains("--idle-timeout"));
}

/// An ordinary user's install goes to ~/.local, with the unit where the
/// user manager looks (~/.local/share/systemd/user) and no mount helper.
#[test]
fn an_ordinary_users_install_goes_to_their_home() {
    const NOBODY: u32 = 65534;
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::set_permissions(t, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The repository's parts, where that user can read them.
    let src = t.join("src");
    std::fs::create_dir(&src).unwrap();
    for dir in ["scripts", "man", "contrib"] {
        let o = Command::new("cp")
            .arg("-r")
            .arg(repo(dir))
            .arg(&src)
            .output();
        assert_ok(&o.unwrap());
    }
    std::fs::copy(BIN, t.join("sealfs")).unwrap();
    let home = t.join("home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
    let o = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "env",
            "-i",
            "PATH=/usr/bin:/bin",
        ])
        .arg(format!("HOME={}", home.display()))
        .arg("bash")
        .arg(src.join("scripts/install.sh"))
        .arg("--bin")
        .arg(t.join("sealfs"))
        .output()
        .unwrap();
    assert_ok(&o);
    let local = home.join(".local");
    assert!(local.join("bin/sealfs").exists());
    let unit = std::fs::read_to_string(local.join("share/systemd/user/sealfs@.service")).unwrap();
    assert!(unit.contains(&format!("ExecStart={}/bin/sealfs", local.display())));
    assert!(local.join("share/man/man1/sealfs.1").exists());
    assert!(String::from_utf8_lossy(&o.stdout).contains("mount helper: (skipped"));
}

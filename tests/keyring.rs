//! The system keyring, for real: the kernel keyutils store inside a fresh
//! session keyring (`keyctl session -`), and Secret Service from a real
//! gnome-keyring-daemon under `dbus-run-session`. scripts/test.sh installs
//! both; a missing tool fails the test rather than skipping it.

mod common;

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sealfs");

fn tool(name: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).exists()))
        .unwrap_or(false);
    assert!(found, "{name} is missing (scripts/test.sh installs it)");
}

/// A vault with one file; returns (tmpdir, vault, passfile).
fn vault() -> (tempfile::TempDir, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("pw");
    common::secret(&pw, "keyring test password 9f3a\n");
    let v = tmp.path().join("vault");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let o = Command::new(BIN)
        .args([
            "init",
            "--passfile",
            &s(&pw),
            "--kdf-memory",
            "64",
            "--recovery-key-file",
        ])
        .arg(tmp.path().join("rk"))
        .arg(&v)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(BIN)
        .args(["put", "--passfile", &s(&pw), &s(&v), "a.txt"])
        .stdin(std::fs::File::open(&pw).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success());
    (tmp, s(&v), s(&pw))
}

/// The script every store runs: save, use, forget, and the errors after.
fn script(v: &str, pw: &str) -> String {
    format!(
        "set -u
         {BIN} cat --keyring {v} a.txt 2>&1; echo \"before=$?\"
         {BIN} keyring save --passfile {pw}.wrong {v} 2>&1; echo \"save-wrong=$?\"
         {BIN} keyring save --passfile {pw} {v} 2>&1; echo \"save=$?\"
         {BIN} cat --keyring {v} a.txt; echo \"cat=$?\"
         {BIN} keyring forget {v} 2>&1; echo \"forget=$?\"
         {BIN} cat --keyring {v} a.txt 2>&1; echo \"after=$?\"
         {BIN} keyring forget {v} 2>&1; echo \"forget-again=$?\""
    )
}

fn check(out: &str, store: &str) {
    let has = |s: &str| assert!(out.contains(s), "expected {s:?} in:\n{out}");
    has(&format!(
        "the keyring ({store}) has no password for this vault"
    ));
    has("before=1");
    has("wrong password or recovery key");
    has("save-wrong=12");
    has("save=0");
    has("keyring test password 9f3a\ncat=0");
    has("forget=0");
    has("after=1");
    has("forget-again=1");
}

#[test]
fn kernel_keyutils_in_a_session_keyring() {
    tool("keyctl");
    let (_tmp, v, pw) = vault();
    common::secret(format!("{pw}.wrong"), "not it\n");
    let o = Command::new("keyctl")
        .args(["session", "-", "sh", "-c", &script(&v, &pw)])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    check(&String::from_utf8_lossy(&o.stdout), "kernel keyutils");
}

/// Runs `script` in a fresh D-Bus session with a gnome-keyring-daemon
/// serving the Secret Service, in a home of its own (so it makes a fresh
/// login keyring, unlocked by the password given here).
fn with_secret_service(script: &str) -> std::process::Output {
    tool("dbus-run-session");
    tool("gnome-keyring-daemon");
    let inner = format!(
        "printf unlock-pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1\n\
         # Wait (bounded) until the daemon owns the Secret Service name: a\n\
         # request before that starts a second daemon through D-Bus activation.\n\
         for i in $(seq 200); do dbus-send --session --print-reply --dest=org.freedesktop.DBus \
           /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets \
           2>/dev/null | grep -q 'boolean true' && break; sleep 0.05; done\n{script}"
    );
    let home = tempfile::tempdir().unwrap();
    Command::new("dbus-run-session")
        .args(["--", "sh", "-c", &inner])
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env_remove("DISPLAY")
        .output()
        .unwrap()
}

#[test]
fn secret_service_from_gnome_keyring() {
    let (_tmp, v, pw) = vault();
    common::secret(format!("{pw}.wrong"), "not it\n");
    let o = with_secret_service(&script(&v, &pw));
    check(&String::from_utf8_lossy(&o.stdout), "Secret Service");
}

/// `sealfs mount --keyring` with the password from the Secret Service: the
/// client starts threads, so the daemon must be forked before it asks
/// (a fork with other threads running is refused).
#[test]
fn a_mount_takes_its_password_from_the_secret_service() {
    let (tmp, v, pw) = vault();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let m = mnt.to_str().unwrap();
    let o = with_secret_service(&format!(
        "{BIN} keyring save --passfile {pw} {v} 2>&1; echo \"save=$?\"\n\
         {BIN} mount --keyring {v} {m} 2>&1; echo \"mount=$?\"\n\
         cat {m}/a.txt; echo \"read=$?\"\n\
         {BIN} umount {m} 2>&1; echo \"umount=$?\""
    ));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    if common::mount::mount_line(&mnt).is_some() {
        let _ = Command::new("umount").arg("-l").arg(&mnt).status();
    }
    for want in [
        "save=0",
        "mount=0",
        "keyring test password 9f3a\nread=0",
        "umount=0",
    ] {
        assert!(out.contains(want), "expected {want:?} in:\n{out}");
    }
}

#[test]
fn no_keyring_service_is_one_clear_line() {
    let (_tmp, v, _pw) = vault();
    let o = Command::new(BIN)
        .args(["cat", "--keyring", &v, "a.txt"])
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains("no usable keyring (Secret Service)"), "{e}");
}

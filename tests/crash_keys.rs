//! Crash safety of `rekey` and `passwd`: the command is aborted before its
//! 1st, 2nd, ... change to the vault (a debug-build hook counts them), and
//! after every abort the vault unlocks with the old or the new password,
//! every file reads back byte-exactly, and running the command again
//! finishes. On a larger vault, real `kill -9` at random moments.

mod common;

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sealfs::vault::{Secret, Vault};

const BIN: &str = env!("CARGO_BIN_EXE_sealfs");
const PW: &[u8] = common::PASSWORD;
const PW2: &[u8] = b"the new password for crash tests";

/// A vault with `n` files in a few directories; returns (path, name, data).
fn populate(n: usize) -> (tempfile::TempDir, PathBuf, Vec<(PathBuf, Vec<u8>)>) {
    let (tmp, path, v) = common::new_vault(4096);
    let root = v.root().unwrap();
    let mut files = Vec::new();
    for d in 0..4 {
        root.mkdir(OsStr::new(&format!("dir{d}")), 0o755).unwrap();
    }
    for i in 0..n {
        let rel = PathBuf::from(format!("dir{}/file{i}", i % 4));
        let data = common::pattern(i * 37 % 9000, i as u64);
        let (dir, name) = v.open_parent(&rel).unwrap();
        let (mut f, _) = dir.create_file(name, 0o644, true).unwrap();
        f.write_at(&data, 0).unwrap();
        files.push((rel, data));
    }
    root.symlink(OsStr::new("link"), b"dir0/file0").unwrap();
    (tmp, path, files)
}

/// Unlocks with either password and reads every file back.
fn verify(vault: &Path, files: &[(PathBuf, Vec<u8>)], what: &str) {
    let v = Vault::unlock(vault, Secret::Password(PW))
        .or_else(|_| Vault::unlock(vault, Secret::Password(PW2)))
        .unwrap_or_else(|e| panic!("{what}: the vault no longer unlocks: {e}"));
    for (rel, data) in files {
        let (dir, name) = v.open_parent(rel).unwrap();
        let f = dir
            .open_file(name, false)
            .unwrap_or_else(|e| panic!("{what}: {rel:?}: {e}"));
        let mut buf = vec![0u8; data.len() + 1];
        let n = f.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf[..n], &data[..], "{what}: {rel:?} differs");
    }
    assert_eq!(
        v.root().unwrap().readlink(OsStr::new("link")).unwrap(),
        b"dir0/file0"
    );
}

fn passfile(dir: &Path, name: &str, pw: &[u8]) -> String {
    let p = dir.join(name);
    common::secret(&p, pw);
    p.to_str().unwrap().to_string()
}

/// Runs `args` with the abort hook set to `after` writes; true if it finished.
fn run_hooked(args: &[&str], after: Option<u64>) -> bool {
    let mut c = Command::new(BIN);
    c.args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(n) = after {
        c.env("SEALFS_TEST_ABORT_AFTER_WRITES", n.to_string());
    }
    let st = c.status().unwrap();
    if st.success() {
        return true;
    }
    assert_eq!(
        st.signal(),
        Some(libc::SIGABRT),
        "{args:?} failed without the hook firing"
    );
    false
}

/// Which password opens the vault now.
fn current_pw(vault: &Path, dir: &Path) -> String {
    if Vault::unlock(vault, Secret::Password(PW)).is_ok() {
        passfile(dir, "cur", PW)
    } else {
        passfile(dir, "cur", PW2)
    }
}

#[test]
fn rekey_survives_a_crash_before_every_write() {
    let (tmp, vault, files) = populate(24);
    let v = vault.to_str().unwrap();
    let pw = passfile(tmp.path(), "pw", PW);
    let mut n = 0;
    loop {
        if run_hooked(&["rekey", "--passfile", &pw, v], Some(n)) {
            break;
        }
        verify(&vault, &files, &format!("rekey aborted after {n} writes"));
        assert!(
            run_hooked(&["rekey", "--passfile", &pw, v], None),
            "second run"
        );
        verify(&vault, &files, &format!("rekey rerun after abort at {n}"));
        n += 1;
    }
    // 24 headers plus two config writes of two steps each.
    assert!(n >= 28, "the hook fired only {n} times");
    let info = Vault::info(&vault).unwrap();
    assert_eq!(info.state, sealfs::format::config::State::Idle);
}

#[test]
fn passwd_survives_a_crash_before_every_write() {
    let (tmp, vault, files) = populate(8);
    let v = vault.to_str().unwrap();
    let new = passfile(tmp.path(), "new", PW2);
    let old = passfile(tmp.path(), "old", PW);
    let mut n = 0;
    loop {
        // From whichever password opens the vault now, to the other one.
        let (from, to) = if Vault::unlock(&vault, Secret::Password(PW)).is_ok() {
            (&old, &new)
        } else {
            (&new, &old)
        };
        let args = [
            "passwd",
            "--passfile",
            from,
            "--new-passfile",
            to,
            "--kdf-memory",
            "64",
            v,
        ];
        if run_hooked(&args, Some(n)) {
            break;
        }
        verify(&vault, &files, &format!("passwd aborted after {n} writes"));
        let from_now = current_pw(&vault, tmp.path());
        let rerun = [
            "passwd",
            "--passfile",
            &from_now,
            "--new-passfile",
            to,
            "--kdf-memory",
            "64",
            v,
        ];
        assert!(run_hooked(&rerun, None), "second run");
        verify(&vault, &files, &format!("passwd rerun after abort at {n}"));
        n += 1;
    }
    assert!(n >= 2, "the hook fired only {n} times");
}

#[test]
fn rekey_survives_kill_9_at_random_moments_on_2000_files() {
    let (tmp, vault, files) = populate(2000);
    let v = vault.to_str().unwrap();
    let pw = passfile(tmp.path(), "pw", PW);
    // How long a whole rekey takes here, to aim the kills inside it.
    let t0 = std::time::Instant::now();
    assert!(run_hooked(&["rekey", "--passfile", &pw, v], None));
    let full = t0.elapsed().as_millis() as u64;
    let killed = common::cli::kill_at_random_moments(
        &["rekey", "--passfile", &pw, v],
        full,
        3,
        16,
        |what| verify(&vault, &files, what),
    );
    assert!(
        killed >= 3,
        "only {killed} of 16 runs were killed mid-way (a run takes {full} ms)"
    );
    assert!(run_hooked(&["rekey", "--passfile", &pw, v], None));
    verify(&vault, &files, "after the final rekey");
    assert_eq!(
        Vault::info(&vault).unwrap().state,
        sealfs::format::config::State::Idle
    );
}

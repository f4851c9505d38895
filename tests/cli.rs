//! The command-line contract: init/info/ls/cat/put, exit statuses, and bad
//! input that gets one clear line and changes nothing on disk.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::cli::run;
use common::snapshot;

struct Env {
    tmp: tempfile::TempDir,
    vault: PathBuf,
    passfile: PathBuf,
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn setup() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let passfile = tmp.path().join("pw");
    common::secret(&passfile, "s3cret pass\nignored second line\n");
    let vault = tmp.path().join("vault");
    let rk = tmp.path().join("recovery.txt");
    let o = run(
        &[
            "init",
            "--passfile",
            s(&passfile),
            "--kdf-memory",
            "64",
            "--recovery-key-file",
            s(&rk),
            s(&vault),
        ],
        b"",
    );
    assert!(
        o.status.success(),
        "init: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let key = std::fs::read_to_string(&rk).unwrap();
    assert_eq!(key.trim().len(), 68 + 8, "recovery key format: {key}");
    Env {
        tmp,
        vault,
        passfile,
    }
}

fn one_line(o: &Output) -> String {
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        e.trim_end().lines().count(),
        1,
        "expected one error line, got: {e}"
    );
    e
}

#[test]
fn put_cat_ls_info_roundtrip() {
    let env = setup();
    let (v, pf) = (s(&env.vault), s(&env.passfile));
    let data = common::pattern(300_000, 5);
    assert!(
        run(&["put", "--passfile", pf, v, "photos/2026/a.jpg"], &data)
            .status
            .success()
    );
    assert!(
        run(&["put", "--passfile", pf, v, "notes.txt"], b"hello\n")
            .status
            .success()
    );
    let o = run(&["cat", "--passfile", pf, v, "photos/2026/a.jpg"], b"");
    assert!(o.status.success());
    assert_eq!(o.stdout, data);
    // put replaces atomically
    assert!(
        run(&["put", "--passfile", pf, v, "notes.txt"], b"bye\n")
            .status
            .success()
    );
    assert_eq!(
        run(&["cat", "--passfile", pf, v, "notes.txt"], b"").stdout,
        b"bye\n"
    );
    assert_eq!(
        run(&["ls", "--passfile", pf, v], b"").stdout,
        b"notes.txt\nphotos/\n"
    );
    assert_eq!(
        run(&["ls", "--passfile", pf, v, "photos/2026"], b"").stdout,
        b"a.jpg\n"
    );
    let o = run(&["info", v], b"");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("format version:        1") && out.contains("4096") && out.contains("64 MiB"),
        "{out}"
    );
    assert!(out.contains("master key generation: 1"));
}

#[test]
fn wrong_password_exits_12_and_changes_nothing() {
    let env = setup();
    let before = snapshot(&env.vault);
    let bad = env.tmp.path().join("bad");
    common::secret(&bad, "wrong\n");
    for args in [vec!["ls"], vec!["cat"], vec!["put"]] {
        let mut a = args.clone();
        a.extend(["--passfile", s(&bad), s(&env.vault), "x"]);
        let o = run(&a, b"data");
        assert_eq!(o.status.code(), Some(12), "{args:?}");
        assert!(one_line(&o).contains("wrong password"));
    }
    assert_eq!(snapshot(&env.vault), before);
}

#[test]
fn bad_vaults_get_one_clear_line_and_are_not_changed() {
    let env = setup();
    let pf = s(&env.passfile).to_string();
    let conf = env.vault.join("sealfs.conf");
    let good = std::fs::read(&conf).unwrap();
    type Breaker<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Breaker, &str)> = vec![
        (
            "missing config",
            Box::new(|| std::fs::remove_file(&conf).unwrap()),
            "not a sealfs vault",
        ),
        (
            "truncated config",
            Box::new(|| std::fs::write(&conf, &good[..150]).unwrap()),
            "truncated",
        ),
        (
            "newer version",
            Box::new(|| {
                let mut b = good.clone();
                b[8] = 2;
                std::fs::write(&conf, b).unwrap()
            }),
            "version 2",
        ),
        (
            "not a config",
            Box::new(|| std::fs::write(&conf, b"just some text file\n").unwrap()),
            "not a sealfs config",
        ),
    ];
    for (what, break_it, expect) in cases {
        break_it();
        let before = snapshot(&env.vault);
        for cmd in ["ls", "info"] {
            let o = if cmd == "info" {
                run(&["info", s(&env.vault)], b"")
            } else {
                run(&[cmd, "--passfile", &pf, s(&env.vault)], b"")
            };
            assert!(
                !o.status.success() && o.status.code() != Some(12),
                "{what}/{cmd}"
            );
            let line = one_line(&o);
            assert!(line.contains(expect), "{what}/{cmd}: {line}");
        }
        assert_eq!(snapshot(&env.vault), before, "{what}: vault changed");
        std::fs::write(&conf, &good).unwrap();
    }
    // A plain directory, a missing one, and a file are not vaults.
    let plain = env.tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    for p in [
        plain.clone(),
        env.tmp.path().join("nope"),
        env.passfile.clone(),
    ] {
        let o = run(&["ls", "--passfile", &pf, s(&p)], b"");
        assert!(!o.status.success());
        one_line(&o);
    }
    assert_eq!(std::fs::read_dir(&plain).unwrap().count(), 0);
}

#[test]
fn foreign_and_undecryptable_entries_fail_clearly() {
    let env = setup();
    let (v, pf) = (s(&env.vault), s(&env.passfile));
    assert!(
        run(&["put", "--passfile", pf, v, "real.txt"], b"real")
            .status
            .success()
    );
    // A file that is not a sealfs file, under a name that looks encrypted.
    let real = std::fs::read_dir(&env.vault)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.ends_with("sealfs.conf"))
        .unwrap();
    std::fs::write(&real, b"plaintext garbage, not sealfs").unwrap();
    std::fs::write(env.vault.join("README.txt"), b"foreign").unwrap();
    let before = snapshot(&env.vault);
    let o = run(&["cat", "--passfile", pf, v, "real.txt"], b"");
    assert!(!o.status.success());
    assert!(one_line(&o).contains("authentication"));
    let o = run(&["ls", "--passfile", pf, v], b"");
    assert!(o.status.success());
    assert_eq!(o.stdout, b"real.txt\n", "foreign entries are hidden");
    assert_eq!(snapshot(&env.vault), before);
}

#[test]
fn init_refuses_non_empty_dirs_existing_vaults_and_weak_kdf() {
    let env = setup();
    let pf = s(&env.passfile);
    let o = run(
        &[
            "init",
            "--passfile",
            pf,
            "--kdf-memory",
            "64",
            s(&env.vault),
        ],
        b"",
    );
    assert!(!o.status.success());
    assert!(one_line(&o).contains("already a sealfs vault"));
    let full = env.tmp.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("x"), b"x").unwrap();
    let o = run(
        &["init", "--passfile", pf, "--kdf-memory", "64", s(&full)],
        b"",
    );
    assert!(one_line(&o).contains("not empty"));
    let o = run(
        &[
            "init",
            "--passfile",
            pf,
            "--kdf-memory",
            "8",
            s(&env.tmp.path().join("weak")),
        ],
        b"",
    );
    assert!(one_line(&o).contains("outside the accepted range (64..1024 MiB"));
    let o = run(
        &[
            "init",
            "--passfile",
            pf,
            "--kdf-memory",
            "4096",
            s(&env.tmp.path().join("huge")),
        ],
        b"",
    );
    assert!(one_line(&o).contains("outside the accepted range"));
    let o = run(
        &[
            "init",
            "--passfile",
            pf,
            "--kdf-memory",
            "64",
            "--longname-max",
            "20",
            s(&env.tmp.path().join("short")),
        ],
        b"",
    );
    assert!(one_line(&o).contains("between 50 and 255"));
    let o = run(
        &[
            "init",
            "--passfile",
            pf,
            "--kdf-memory",
            "64",
            "--chunk-size",
            "5000",
            s(&env.tmp.path().join("odd")),
        ],
        b"",
    );
    assert!(one_line(&o).contains("chunk size"));
    // An empty password is refused; a weak one is accepted with a warning
    // that says why (on a terminal it must also be confirmed).
    let empty = env.tmp.path().join("empty-pw");
    common::secret(&empty, "\n");
    let o = run(
        &[
            "init",
            "--passfile",
            s(&empty),
            "--kdf-memory",
            "64",
            s(&env.tmp.path().join("e")),
        ],
        b"",
    );
    assert!(one_line(&o).contains("empty"));
    assert!(!env.tmp.path().join("e").join("sealfs.conf").exists());
    let weak = env.tmp.path().join("weak-pw");
    common::secret(&weak, "a\n");
    let o = run(
        &[
            "init",
            "--passfile",
            s(&weak),
            "--kdf-memory",
            "64",
            s(&env.tmp.path().join("w")),
        ],
        b"",
    );
    assert!(o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("password is weak") && e.contains("zxcvbn score 0"),
        "{e}"
    );
    // A sync folder marker does not count as content.
    let synced = env.tmp.path().join("synced");
    std::fs::create_dir(&synced).unwrap();
    std::fs::create_dir(synced.join(".stfolder")).unwrap();
    assert!(
        run(
            &["init", "--passfile", pf, "--kdf-memory", "64", s(&synced)],
            b""
        )
        .status
        .success()
    );
}

/// `put` of a large file draws a progress bar on a terminal (here a pty
/// made by script(1)) and writes nothing to a pipe.
#[test]
fn put_shows_progress_on_a_terminal_only() {
    let e = setup();
    let big = e.tmp.path().join("big");
    std::fs::write(&big, common::pattern(64 << 20, 5)).unwrap();
    let put = |name: &str| {
        format!(
            "{} put --passfile {} {} {name} < {}",
            common::cli::BIN,
            s(&e.passfile),
            s(&e.vault),
            s(&big)
        )
    };
    let o = std::process::Command::new("script")
        .args(["-qec", &put("on-a-tty"), "/dev/null"])
        .output()
        .expect("script (util-linux)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tty = String::from_utf8_lossy(&o.stdout);
    assert!(tty.contains("put ") && tty.contains("64.00 MiB"), "{tty}");
    let o = std::process::Command::new("sh")
        .args(["-c", &put("on-a-pipe")])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(
        &["cat", "--passfile", s(&e.passfile), s(&e.vault), "on-a-tty"],
        b"",
    );
    assert_eq!(o.stdout.len(), 64 << 20);
}

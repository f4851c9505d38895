//! Key management from the command line: passwd, key add/list/remove,
//! recover (key file, shares), recovery-key, rekey; their failure paths give
//! one clear line, exit 12 for a wrong secret, and change nothing on disk.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::cli::run;
use common::snapshot;

const BIN: &str = env!("CARGO_BIN_EXE_sealfs");
const PW: &str = "correct horse battery staple";
const PW2: &str = "a second long passphrase, 42";

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    vault: PathBuf,
}

impl Env {
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.join(name);
        common::secret(&p, text);
        p.to_str().unwrap().to_string()
    }
    fn v(&self) -> &str {
        self.vault.to_str().unwrap()
    }
    fn conf(&self) -> Vec<u8> {
        std::fs::read(self.vault.join("sealfs.conf")).unwrap()
    }
    fn cat(&self, pwfile: &str, path: &str) -> Output {
        run(&["cat", "--passfile", pwfile, self.v(), path], b"")
    }
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "expected success: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Fails with exactly one line on stderr containing `what`; returns the status.
fn fails(o: &Output, what: &str) -> i32 {
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "expected failure, got success: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "expected one line: {e}");
    assert!(e.contains(what), "expected {what:?} in: {e}");
    o.status.code().unwrap()
}

fn setup() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let vault = dir.join("vault");
    let env = Env {
        _tmp: tmp,
        dir,
        vault,
    };
    let pw = env.file("pw", PW);
    let rk = env.dir.join("rk");
    ok(&run(
        &[
            "init",
            "--passfile",
            &pw,
            "--kdf-memory",
            "64",
            "--recovery-key-file",
            rk.to_str().unwrap(),
            env.v(),
        ],
        b"",
    ));
    ok(&run(
        &["put", "--passfile", &pw, env.v(), "docs/a.txt"],
        b"alpha\n",
    ));
    env
}

#[test]
fn passwd_changes_only_the_config() {
    let env = setup();
    let (pw, pw2) = (env.file("pw", PW), env.file("pw2", PW2));
    let mut before = snapshot(&env.vault);
    let o = run(
        &[
            "passwd",
            "--passfile",
            &pw,
            "--new-passfile",
            &pw2,
            "--kdf-memory",
            "64",
            env.v(),
        ],
        b"",
    );
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("sealfs rekey"));
    let mut after = snapshot(&env.vault);
    let conf = Path::new("sealfs.conf").to_path_buf();
    assert_ne!(before.remove(&conf), after.remove(&conf));
    assert_eq!(before, after, "passwd touched more than the config");
    assert_eq!(fails(&env.cat(&pw, "docs/a.txt"), "wrong password"), 12);
    assert_eq!(ok(&env.cat(&pw2, "docs/a.txt")), "alpha\n");
}

#[test]
fn bad_input_is_one_line_and_changes_nothing() {
    let env = setup();
    let pw = env.file("pw", PW);
    let wrong = env.file("wrong", "not the password at all");
    let empty = env.file("empty", "\n");
    let pw2 = env.file("pw2", PW2);
    let before = snapshot(&env.vault);
    let v = env.v();
    let cases: Vec<(Vec<&str>, &str, i32)> = vec![
        (
            vec!["passwd", "--passfile", &wrong, "--new-passfile", &pw2, v],
            "wrong password",
            12,
        ),
        (
            vec!["passwd", "--passfile", &pw, "--new-passfile", &empty, v],
            "empty",
            1,
        ),
        (
            vec!["passwd", "--extpass", "exit 3", "--new-passfile", &pw2, v],
            "--extpass command failed",
            1,
        ),
        (
            vec!["passwd", "--extpass", "true", "--new-passfile", &pw2, v],
            "printed no password",
            1,
        ),
        (
            vec!["passwd", "--passfile", &pw, "--new-extpass", "false", v],
            "--extpass command failed",
            1,
        ),
        (
            vec![
                "key",
                "add",
                "--passfile",
                &wrong,
                "--new-passfile",
                &pw2,
                v,
            ],
            "wrong password",
            12,
        ),
        (
            vec!["key", "remove", "--passfile", &wrong, v, "0"],
            "wrong password",
            12,
        ),
        (
            vec!["key", "remove", "--passfile", &pw, v, "7"],
            "no key slot 7",
            1,
        ),
        (vec!["rekey", "--passfile", &wrong, v], "wrong password", 12),
        (
            vec!["recovery-key", "--passfile", &wrong, "--regenerate", v],
            "wrong password",
            12,
        ),
        (
            vec!["recovery-key", "--passfile", &pw, v],
            "--regenerate",
            1,
        ),
        (
            vec![
                "recovery-key",
                "--passfile",
                &pw,
                "--split",
                "2",
                "--threshold",
                "3",
                v,
            ],
            "threshold",
            1,
        ),
    ];
    for (args, what, code) in &cases {
        let o = run(&args[..], b"");
        assert_eq!(fails(&o, what), *code, "{args:?}");
        assert_eq!(snapshot(&env.vault), before, "{args:?} changed the vault");
    }
    // A missing vault, and a config from a newer version.
    let missing = env.dir.join("nope");
    fails(
        &run(
            &[
                "passwd",
                "--passfile",
                &pw,
                "--new-passfile",
                &pw2,
                missing.to_str().unwrap(),
            ],
            b"",
        ),
        "no such directory",
    );
    let mut conf = env.conf();
    conf[8] = 2;
    std::fs::write(env.vault.join("sealfs.conf"), &conf).unwrap();
    fails(
        &run(
            &["passwd", "--passfile", &pw, "--new-passfile", &pw2, v],
            b"",
        ),
        "version 2 is not supported",
    );
    assert_eq!(env.conf(), conf);
}

#[test]
fn key_slots_add_list_remove_with_stable_ids() {
    let env = setup();
    let (pw, pw2) = (env.file("pw", PW), env.file("pw2", PW2));
    let v = env.v();
    let o = run(
        &[
            "key",
            "add",
            "--passfile",
            &pw,
            "--new-passfile",
            &pw2,
            "--kdf-memory",
            "64",
            v,
        ],
        b"",
    );
    assert_eq!(ok(&o).trim(), "2");
    let list = ok(&run(&["key", "list", v], b""));
    assert_eq!(list.lines().count(), 4, "{list}");
    assert!(
        list.contains("0     password")
            && list.contains("1     recovery")
            && list.contains("2     password")
    );
    assert_eq!(ok(&env.cat(&pw2, "docs/a.txt")), "alpha\n");
    ok(&run(&["key", "remove", "--passfile", &pw2, v, "0"], b""));
    assert_eq!(fails(&env.cat(&pw, "docs/a.txt"), "wrong password"), 12);
    // The last password slot stays, and the recovery slot alone is no way in.
    let before = env.conf();
    fails(
        &run(&["key", "remove", "--passfile", &pw2, v, "2"], b""),
        "last password slot",
    );
    assert_eq!(env.conf(), before);
    // Ids are never reused while a slot exists: the next one is 3.
    let o = run(
        &[
            "key",
            "add",
            "--passfile",
            &pw2,
            "--new-passfile",
            &pw,
            "--kdf-memory",
            "64",
            v,
        ],
        b"",
    );
    assert_eq!(ok(&o).trim(), "3");
    ok(&run(&["key", "remove", "--passfile", &pw2, v, "1"], b""));
    let list = ok(&run(&["key", "list", v], b""));
    assert!(!list.contains("recovery"), "{list}");
}

#[test]
fn recover_with_the_key_file_and_refuse_typos_and_wrong_keys() {
    let env = setup();
    let pw2 = env.file("pw2", PW2);
    let rk = env.dir.join("rk");
    let key = std::fs::read_to_string(&rk).unwrap();
    let v = env.v();
    // A typo is named as one; a different (well-formed) key is a wrong secret.
    let mut typo = key.clone().into_bytes();
    typo[3] = if typo[3] == b'0' { b'1' } else { b'0' };
    let typo_file = env.file("typo", std::str::from_utf8(&typo).unwrap());
    let before = snapshot(&env.vault);
    fails(
        &run(
            &[
                "recover",
                "--recovery-key-file",
                &typo_file,
                "--new-passfile",
                &pw2,
                v,
            ],
            b"",
        ),
        "typo",
    );
    let other = sealfs::vault::format_recovery_key(&sealfs::crypto::SecretKey::random().unwrap());
    let other_file = env.file("other", &other);
    assert_eq!(
        fails(
            &run(
                &[
                    "recover",
                    "--recovery-key-file",
                    &other_file,
                    "--new-passfile",
                    &pw2,
                    v
                ],
                b""
            ),
            "wrong password or recovery key"
        ),
        12
    );
    assert_eq!(snapshot(&env.vault), before);
    ok(&run(
        &[
            "recover",
            "--recovery-key-file",
            rk.to_str().unwrap(),
            "--new-passfile",
            &pw2,
            "--kdf-memory",
            "64",
            v,
        ],
        b"",
    ));
    assert_eq!(ok(&env.cat(&pw2, "docs/a.txt")), "alpha\n");
}

#[test]
fn recovery_key_shares_recover_and_bad_shares_are_named() {
    let env = setup();
    let (pw, pw2) = (env.file("pw", PW), env.file("pw2", PW2));
    let v = env.v();
    let a = env.dir.join("a");
    let b = env.dir.join("b");
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    // Two splits: only the second one's shares open the vault.
    for d in [&a, &b] {
        ok(&run(
            &[
                "recovery-key",
                "--passfile",
                &pw,
                "--split",
                "3",
                "--threshold",
                "2",
                "--out",
                d.to_str().unwrap(),
                v,
            ],
            b"",
        ));
    }
    let share = |d: &Path, i: u32| {
        d.join(format!("sealfs-share-{i}-of-3.txt"))
            .to_str()
            .unwrap()
            .to_string()
    };
    // The printed-at-init recovery key was replaced.
    let rk = env.dir.join("rk");
    assert_eq!(
        fails(
            &run(
                &[
                    "recover",
                    "--recovery-key-file",
                    rk.to_str().unwrap(),
                    "--new-passfile",
                    &pw2,
                    v
                ],
                b""
            ),
            "wrong password or recovery key"
        ),
        12
    );
    let before = snapshot(&env.vault);
    let recover = |files: &[String]| {
        let mut args = vec!["recover".to_string()];
        for f in files {
            args.push("--share-file".into());
            args.push(f.clone());
        }
        args.extend([
            "--new-passfile".into(),
            pw2.clone(),
            "--kdf-memory".into(),
            "64".into(),
            v.to_string(),
        ]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs, b"")
    };
    fails(&recover(&[share(&b, 1), share(&b, 1)]), "twice");
    fails(&recover(&[share(&a, 1), share(&b, 2)]), "different splits");
    fails(&recover(&[share(&b, 2)]), "needed");
    let mut t = std::fs::read(share(&b, 3)).unwrap();
    t[25] = if t[25] == b'0' { b'1' } else { b'0' };
    let typo = env.file("typo-share", std::str::from_utf8(&t).unwrap());
    fails(&recover(&[share(&b, 1), typo]), "typo");
    // Shares of the replaced split recover a key the vault no longer has.
    assert_eq!(
        fails(
            &recover(&[share(&a, 1), share(&a, 3)]),
            "wrong password or recovery key"
        ),
        12
    );
    assert_eq!(snapshot(&env.vault), before);
    ok(&recover(&[share(&b, 3), share(&b, 1)]));
    assert_eq!(ok(&env.cat(&pw2, "docs/a.txt")), "alpha\n");
}

#[test]
fn a_vault_in_use_is_refused_and_untouched() {
    let env = setup();
    let (pw, pw2) = (env.file("pw", PW), env.file("pw2", PW2));
    let v = env.v();
    // The lock a mount holds for its life (in the private runtime directory).
    let lock = sealfs::vault::runtime::open_lock(&env.vault).unwrap();
    assert!(sealfs::vault::runtime::try_lock(&lock).unwrap());
    let rk = env.dir.join("rk");
    let before = snapshot(&env.vault);
    for args in [
        vec!["passwd", "--passfile", &pw, "--new-passfile", &pw2, v],
        vec!["key", "add", "--passfile", &pw, "--new-passfile", &pw2, v],
        vec!["key", "remove", "--passfile", &pw, v, "1"],
        vec!["rekey", "--passfile", &pw, v],
        vec!["recovery-key", "--passfile", &pw, "--regenerate", v],
        vec![
            "recover",
            "--recovery-key-file",
            rk.to_str().unwrap(),
            "--new-passfile",
            &pw2,
            v,
        ],
    ] {
        fails(&run(&args, b""), "mounted or in use");
    }
    assert_eq!(snapshot(&env.vault), before);
}

#[test]
fn rekey_rewraps_headers_leaves_content_and_revokes_old_configs() {
    let env = setup();
    let pw = env.file("pw", PW);
    let v = env.v();
    for i in 0..20 {
        let data = common::pattern(5000 + i * 997, i as u64);
        ok(&run(
            &["put", "--passfile", &pw, v, &format!("d{}/f{i}", i % 3)],
            &data,
        ));
    }
    let before = snapshot(&env.vault);
    let old_conf = env.conf();
    let o = run(&["rekey", "--passfile", &pw, v], b"");
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("21 of 21 file headers rewrapped"));
    let after = snapshot(&env.vault);
    assert_eq!(before.len(), after.len());
    for (path, old) in &before {
        let new = &after[path];
        if path.ends_with("sealfs.conf") {
            continue;
        }
        if old.len() >= 104 && !path.ends_with(".sealfs.dir") {
            assert_ne!(old[..104], new[..104], "{path:?}: header not rewrapped");
            assert_eq!(old[104..], new[104..], "{path:?}: content changed");
        } else {
            assert_eq!(old, new, "{path:?}");
        }
    }
    for i in 0..20 {
        let o = env.cat(&pw, &format!("d{}/f{i}", i % 3));
        assert_eq!(o.stdout, common::pattern(5000 + i * 997, i as u64));
    }
    let info = ok(&run(&["info", v], b""));
    assert!(info.contains("master key generation: 2"), "{info}");
    // A file written after the rekey is closed to a config saved before it.
    ok(&run(&["put", "--passfile", &pw, v, "new.txt"], b"after\n"));
    std::fs::write(env.vault.join("sealfs.conf"), &old_conf).unwrap();
    let o = env.cat(&pw, "new.txt");
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
}

/// Runs `sealfs ARGS` on a pseudo-terminal (util-linux `script`), typing `input`.
fn on_terminal(args: &str, input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new("script")
        .args(["-qec", &format!("{BIN} {args}"), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux script (scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn terminal_prompts_refuse_mismatches_and_confirm_weak_passwords() {
    let env = setup();
    let v = env.v();
    let before = env.conf();
    let o = on_terminal(
        &format!("passwd --kdf-memory 64 {v}"),
        &format!("{PW}\nnew pass one 1234\nnew pass two 5678\n"),
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("the passwords do not match"));
    assert_eq!(env.conf(), before);
    // A weak password must be confirmed on a terminal: "n" keeps the old one.
    let o = on_terminal(
        &format!("passwd --kdf-memory 64 {v}"),
        &format!("{PW}\na\na\nn\n"),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("password is weak") && out.contains("Use it anyway?"),
        "{out}"
    );
    assert_eq!(env.conf(), before);
    // "y" takes it.
    let o = on_terminal(
        &format!("passwd --kdf-memory 64 {v}"),
        &format!("{PW}\na\na\ny\n"),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let a = env.file("a", "a");
    assert_eq!(ok(&env.cat(&a, "docs/a.txt")), "alpha\n");
}

#[test]
fn a_file_written_with_an_older_generation_after_a_rekey_stays_readable() {
    // Another device that has not seen the new config keeps writing headers
    // of the old generation; they arrive after the rekey and must open.
    let env = setup();
    let pw = env.file("pw", PW);
    let v = env.v();
    ok(&run(
        &["put", "--passfile", &pw, v, "late.txt"],
        b"from the other device\n",
    ));
    let vault =
        sealfs::vault::Vault::unlock(&env.vault, sealfs::vault::Secret::Password(PW.as_bytes()))
            .unwrap();
    let entry = vault
        .root()
        .unwrap()
        .disk_name(std::ffi::OsStr::new("late.txt"))
        .unwrap();
    drop(vault);
    let path = env.vault.join(entry.entry());
    let old_generation = std::fs::read(&path).unwrap();
    for round in 0..10 {
        ok(&run(&["rekey", "--passfile", &pw, v], b""));
        if round == 0 {
            // The other device's write (generation 1) lands after the first rekey.
            std::fs::write(&path, &old_generation).unwrap();
            assert_eq!(ok(&env.cat(&pw, "late.txt")), "from the other device\n");
        }
    }
    assert_eq!(ok(&env.cat(&pw, "late.txt")), "from the other device\n");
    assert_eq!(ok(&env.cat(&pw, "docs/a.txt")), "alpha\n");
    let info = ok(&run(&["info", v], b""));
    assert!(info.contains("master key generation: 11"), "{info}");
}

#[test]
fn a_password_file_others_can_read_draws_a_warning() {
    let env = setup();
    let loose = env.dir.join("loose-pw");
    std::fs::write(&loose, PW).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(&["ls", "--passfile", loose.to_str().unwrap(), env.v()], b"");
    assert!(o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("can be read or changed by other users (mode 644)"),
        "{e}"
    );
    let tight = env.file("tight-pw", PW);
    let o = run(&["ls", "--passfile", &tight, env.v()], b"");
    assert!(String::from_utf8_lossy(&o.stderr).is_empty());
}

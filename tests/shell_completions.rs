//! `sealfs completions SHELL` prints a script each shell loads, and that
//! completes subcommands and options.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sealfs");

fn script(shell: &str, dir: &Path) -> std::path::PathBuf {
    let o = Command::new(BIN)
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let f = dir.join(format!("sealfs.{shell}"));
    std::fs::write(&f, o.stdout).unwrap();
    f
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().expect("the shell (apt install bash zsh fish)");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.is_empty(), "{err}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn bash_loads_and_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let f = script("bash", tmp.path());
    let out = run(Command::new("bash").arg("-c").arg(format!(
        "source {} && complete -p sealfs && \
         COMP_WORDS=(sealfs mo); COMP_CWORD=1; _sealfs sealfs mo sealfs; echo \"${{COMPREPLY[@]}}\"; \
         COMP_WORDS=(sealfs mount --idle); COMP_CWORD=2; _sealfs sealfs --idle mount; echo \"${{COMPREPLY[@]}}\"",
        f.display()
    )));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].ends_with(" sealfs"), "{out}");
    assert_eq!(lines[1], "mount", "{out}");
    assert_eq!(lines[2], "--idle-timeout", "{out}");
}

#[test]
fn zsh_loads_and_registers() {
    let tmp = tempfile::tempdir().unwrap();
    let f = script("zsh", tmp.path());
    let out = run(Command::new("zsh").arg("-f").arg("-c").arg(format!(
        "autoload -U compinit && compinit -u -D && source {} && print ${{_comps[sealfs]}}",
        f.display()
    )));
    assert_eq!(out.trim(), "_sealfs");
}

#[test]
fn fish_loads_and_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let f = script("fish", tmp.path());
    let out = run(Command::new("fish")
        .arg("--no-config")
        .arg("-c")
        .arg(format!(
            "source {}; complete -C 'sealfs mo'; complete -C 'sealfs mount --idle'",
            f.display()
        )));
    assert!(out.lines().any(|l| l.starts_with("mount\t")), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("--idle-timeout\t")),
        "{out}"
    );
}

//! The man pages of the commands (`man/sealfs.1` and one page per
//! subcommand, `man/sealfs-passwd.1` and so on) are generated from the clap
//! definitions, so they can never drift from the binary: this test renders
//! them and compares. After changing an option, regenerate with
//! `SEALFS_WRITE_MAN=1 cargo test --test man_pages`.
//! (sealfs-format(5) is written by hand.)

use std::path::{Path, PathBuf};

use clap::CommandFactory;

fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("man")
}

/// Renders `cmd` as page `name` and every subcommand as `name-sub`.
fn render(cmd: &clap::Command, name: &str, out: &mut Vec<(String, Vec<u8>)>) {
    // clap names are &'static str (without its "string" feature); a test
    // may leak a few.
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let page = cmd
        .clone()
        .name(leak(name.to_string()))
        .bin_name(leak(name.replace('-', " ")));
    let mut buf = Vec::new();
    clap_mangen::Man::new(page)
        .date("2026-11-30")
        .render(&mut buf)
        .unwrap();
    out.push((format!("{name}.1"), buf));
    for sub in cmd.get_subcommands() {
        render(sub, &format!("{name}-{}", sub.get_name()), out);
    }
}

#[test]
fn man_pages_match_the_command_line() {
    let mut pages = Vec::new();
    render(&sealfs::cli::Cli::command(), "sealfs", &mut pages);
    assert!(pages.len() > 15, "{} pages", pages.len());
    let write = std::env::var_os("SEALFS_WRITE_MAN").is_some();
    for (file, text) in &pages {
        let path = man_dir().join(file);
        if write {
            std::fs::write(&path, text).unwrap();
            continue;
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == *text,
            "{} is out of date with the command line; regenerate: SEALFS_WRITE_MAN=1 cargo test --test man_pages",
            path.display()
        );
    }
    // No page of a command that no longer exists.
    for e in std::fs::read_dir(man_dir()).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        if n.ends_with(".1") {
            assert!(pages.iter().any(|(f, _)| *f == n), "man/{n} has no command");
        }
    }
}

/// Every long and short option of `cmd` as a user types it.
fn flags(cmd: &clap::Command) -> Vec<String> {
    let mut out = Vec::new();
    for a in cmd.get_arguments() {
        if a.is_hide_set() {
            continue;
        }
        if let Some(l) = a.get_long() {
            out.push(format!("--{l}"));
        }
        if let Some(s) = a.get_short() {
            out.push(format!("-{s}"));
        }
    }
    out
}

/// `man -l` renders each page without a warning, and the rendered text
/// holds every subcommand and every option clap knows.
#[test]
fn man_renders_every_command_and_option() {
    fn check(cmd: &clap::Command, name: &str) {
        let page = man_dir().join(format!("{name}.1"));
        assert!(page.exists(), "{} is missing", page.display());
        let o = std::process::Command::new("man")
            .args(["--warnings", "-P", "cat", "-l"])
            .arg(&page)
            .env("MANWIDTH", "200")
            .output()
            .expect("man (apt install man-db)");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success() && err.is_empty(), "{name}: {err}");
        // man hyphenates and may use Unicode hyphens; compare plain ASCII.
        let text = String::from_utf8_lossy(&o.stdout).replace('\u{2010}', "-");
        for f in flags(cmd) {
            assert!(text.contains(&f), "{name}(1) does not show {f}");
        }
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            assert!(
                text.contains(sub.get_name()),
                "{name}(1) does not show the subcommand {}",
                sub.get_name()
            );
            check(sub, &format!("{name}-{}", sub.get_name()));
        }
    }
    check(&sealfs::cli::Cli::command(), "sealfs");
    let o = std::process::Command::new("man")
        .args(["--warnings", "-P", "cat", "-l"])
        .arg(man_dir().join("sealfs-format.5"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && err.is_empty(),
        "sealfs-format(5): {err}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains(".dropbox.cache"));
}

//! Where secrets come from: `--passfile` (first line), `--extpass CMD` (first
//! line of its output), the system keyring (`--keyring`), or the terminal
//! without echo. Every copy is zeroized after use. New passwords are checked
//! with the zxcvbn estimator.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::PassArgs;
use crate::{Error, Result};

fn first_line(raw: &[u8]) -> Zeroizing<Vec<u8>> {
    let line = raw.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Zeroizing::new(line.to_vec())
}

fn from_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "sealfs: warning: password file {} can be read or changed by other users (mode {:o}); chmod 600 it",
                path.display(),
                m.permissions().mode() & 0o777
            );
        }
    }
    let raw = Zeroizing::new(std::fs::read(path).map_err(|e| {
        Error::Config(format!("cannot read password file {}: {e}", path.display()))
    })?);
    Ok(first_line(&raw))
}

fn from_command(cmd: &str) -> Result<Zeroizing<Vec<u8>>> {
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| Error::Config(format!("cannot run the --extpass command: {e}")))?;
    let raw = Zeroizing::new(out.stdout);
    if !out.status.success() {
        return Err(Error::Config(format!(
            "the --extpass command failed ({})",
            out.status
        )));
    }
    let pw = first_line(&raw);
    if pw.is_empty() {
        return Err(Error::Config(
            "the --extpass command printed no password".into(),
        ));
    }
    Ok(pw)
}

fn prompt(text: &str) -> Result<Zeroizing<Vec<u8>>> {
    let pw = rpassword::prompt_password(text).map_err(|e| {
        Error::Config(format!(
            "cannot read a password from the terminal ({e}); use --passfile or --extpass"
        ))
    })?;
    Ok(Zeroizing::new(pw.into_bytes()))
}

/// The password to unlock an existing vault.
pub fn existing(args: &PassArgs, vault: &Path) -> Result<Zeroizing<Vec<u8>>> {
    if let Some(p) = &args.passfile {
        return from_file(p);
    }
    if let Some(c) = &args.extpass {
        return from_command(c);
    }
    if args.keyring {
        return super::keyring::load(vault);
    }
    prompt("Password: ")
}

/// Where a new password comes from.
pub struct NewSource<'a> {
    pub file: Option<&'a PathBuf>,
    pub extpass: Option<&'a str>,
}

/// A new password: from a file or command, or asked twice on the terminal.
/// Refuses an empty one; warns about a weak one (and asks on a terminal).
pub fn new(src: NewSource<'_>) -> Result<Zeroizing<Vec<u8>>> {
    let pw = match (src.file, src.extpass) {
        (Some(p), _) => from_file(p)?,
        (None, Some(c)) => from_command(c)?,
        (None, None) => {
            let a = prompt("New password: ")?;
            let b = prompt("Repeat password: ")?;
            if *a != *b {
                return Err(Error::Config("the passwords do not match".into()));
            }
            a
        }
    };
    if pw.is_empty() {
        return Err(Error::Config("the password is empty".into()));
    }
    check_strength(&pw)?;
    Ok(pw)
}

/// zxcvbn's verdict: a warning for a guessable password, confirmed on a terminal.
fn check_strength(pw: &[u8]) -> Result<()> {
    let Ok(s) = std::str::from_utf8(pw) else {
        return Ok(());
    };
    let e = zxcvbn::zxcvbn(s, &["sealfs", "vault"]);
    if e.score() >= zxcvbn::Score::Three {
        return Ok(());
    }
    let mut why = match e.feedback() {
        Some(f) => {
            let mut parts: Vec<String> = f.warning().map(|w| w.to_string()).into_iter().collect();
            parts.extend(f.suggestions().iter().map(|s| s.to_string()));
            parts.join(" ")
        }
        None => String::new(),
    };
    if why.is_empty() {
        why = "it is easy to guess".into();
    }
    eprintln!(
        "sealfs: warning: this password is weak (zxcvbn score {} of 4, about 10^{:.0} guesses): {why}",
        u8::from(e.score()),
        e.guesses_log10()
    );
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        eprint!("Use it anyway? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            return Err(Error::Config(
                "no password set; choose a stronger one".into(),
            ));
        }
    }
    Ok(())
}

/// Reads a recovery key: from a file (as `init --recovery-key-file` writes
/// it, or as printed), or typed on the terminal.
pub fn recovery_key(file: Option<&Path>) -> Result<crate::crypto::SecretKey> {
    let text = match file {
        Some(p) => Zeroizing::new(std::fs::read_to_string(p).map_err(|e| {
            Error::Config(format!(
                "cannot read recovery key file {}: {e}",
                p.display()
            ))
        })?),
        None => Zeroizing::new(
            String::from_utf8(prompt("Recovery key: ")?.to_vec())
                .map_err(|_| Error::Config("a recovery key is hexadecimal".into()))?,
        ),
    };
    crate::vault::parse_recovery_key(&text)
}

//! Where passwords come from: `--passfile` (first line) or the terminal, without echo.

use std::path::Path;

use zeroize::Zeroizing;

use super::PassArgs;
use crate::{Error, Result};

fn from_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let raw = Zeroizing::new(std::fs::read(path).map_err(|e| {
        Error::Config(format!("cannot read password file {}: {e}", path.display()))
    })?);
    let line = raw.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Zeroizing::new(line.to_vec()))
}

fn prompt(text: &str) -> Result<Zeroizing<Vec<u8>>> {
    let pw = rpassword::prompt_password(text).map_err(|e| {
        Error::Config(format!(
            "cannot read a password from the terminal ({e}); use --passfile"
        ))
    })?;
    Ok(Zeroizing::new(pw.into_bytes()))
}

/// The password to unlock an existing vault.
pub fn existing(args: &PassArgs) -> Result<Zeroizing<Vec<u8>>> {
    match &args.passfile {
        Some(p) => from_file(p),
        None => prompt("Password: "),
    }
}

/// A new password: from the file, or asked twice on the terminal.
pub fn new(args: &PassArgs) -> Result<Zeroizing<Vec<u8>>> {
    let pw = match &args.passfile {
        Some(p) => from_file(p)?,
        None => {
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
    Ok(pw)
}

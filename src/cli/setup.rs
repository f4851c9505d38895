//! `sealfs init` and `sealfs info`.

use std::io::Write;
use std::path::Path;

use super::{PassArgs, password};
use crate::crypto::{KDF_FLOOR_MEMORY_KIB, KdfParams};
use crate::vault::{CreateOptions, Vault, format_recovery_key};
use crate::{Error, Result};

pub fn init(
    pass: &PassArgs,
    kdf_mib: u32,
    chunk_size: u32,
    recovery_out: Option<&Path>,
    vault: &Path,
) -> Result<()> {
    let memory_kib = kdf_mib.saturating_mul(1024);
    if memory_kib < KDF_FLOOR_MEMORY_KIB {
        return Err(Error::Config(format!(
            "--kdf-memory must be at least {} MiB",
            KDF_FLOOR_MEMORY_KIB / 1024
        )));
    }
    if let Some(out) = recovery_out {
        if out.exists() {
            return Err(Error::Config(format!(
                "{} already exists; not overwriting it",
                out.display()
            )));
        }
    }
    let pw = password::new(pass)?;
    let kdf = KdfParams {
        memory_kib,
        ..KdfParams::DEFAULT
    };
    let (_, rk) = Vault::create(vault, &pw, CreateOptions { kdf, chunk_size })?;
    let shown = zeroize::Zeroizing::new(format_recovery_key(&rk));
    match recovery_out {
        Some(out) => {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(out)
                .map_err(|e| Error::Config(format!("cannot write {}: {e}", out.display())))?;
            writeln!(f, "{}", *shown)?;
            f.sync_all()?;
            eprintln!(
                "Created vault {}. Recovery key written to {}.",
                vault.display(),
                out.display()
            );
        }
        None => {
            eprintln!("Created vault {}.", vault.display());
            eprintln!("Recovery key (shown once; store it somewhere safe, away from the vault):");
            println!("{}", *shown);
        }
    }
    Ok(())
}

pub fn info(vault: &Path) -> Result<()> {
    let c = Vault::info(vault)?;
    println!(
        "format version:        {}",
        crate::format::config::CONFIG_VERSION
    );
    println!("chunk size:            {} bytes", c.chunk_size);
    println!("master key generation: {}", c.generation);
    println!(
        "password KDF:          Argon2id, {} MiB, {} passes, {} lane(s)",
        c.password.memory_kib / 1024,
        c.password.passes,
        c.password.lanes
    );
    println!(
        "recovery key slot:     {}",
        if c.recovery.is_some() {
            "present"
        } else {
            "absent"
        }
    );
    if !c.retired.is_empty() {
        println!(
            "rekey in progress:     {} older generation(s) still readable",
            c.retired.len()
        );
    }
    Ok(())
}

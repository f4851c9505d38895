//! `sealfs init` and `sealfs info`.

use std::io::Write;
use std::path::Path;

use super::{PassArgs, password};
use crate::crypto::KdfParams;
use crate::vault::{CreateOptions, Vault, format_recovery_key};
use crate::{Error, Result};

pub fn init(
    pass: &PassArgs,
    kdf_mib: u32,
    chunk_size: u32,
    longname_max: u16,
    recovery_out: Option<&Path>,
    vault: &Path,
) -> Result<()> {
    let opts = CreateOptions {
        kdf: KdfParams {
            memory_kib: kdf_mib.saturating_mul(1024),
            ..KdfParams::DEFAULT
        },
        chunk_size,
        longname_max,
    };
    opts.check()?;
    if pass.keyring {
        return Err(Error::Config(
            "init sets a new password: give it with --passfile, --extpass or the terminal, then \
             `sealfs keyring save` stores it"
                .into(),
        ));
    }
    if let Some(out) = recovery_out {
        if out.exists() {
            return Err(Error::Config(format!(
                "{} already exists; not overwriting it",
                out.display()
            )));
        }
    }
    Vault::check_creatable(vault)?;
    let pw = password::new(password::NewSource {
        file: pass.passfile.as_ref(),
        extpass: pass.extpass.as_deref(),
    })?;
    let (_, rk) = Vault::create(vault, &pw, opts)?;
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
    use crate::format::config::{SlotKind, State};
    let c = Vault::info(vault)?;
    println!(
        "format version:        {}",
        crate::format::config::CONFIG_VERSION
    );
    println!("vault id:              {}", hex(&c.vault_id));
    println!("chunk size:            {} bytes", c.chunk_size);
    println!("longest stored name:   {} bytes", c.longname_max);
    println!("master key generation: {}", c.generation);
    for s in &c.slots {
        match &s.kind {
            SlotKind::Password(p) => {
                println!("key slot {}:            password, {}", s.id, kdf(p))
            }
            other => println!("key slot {}:            {}", s.id, other.name()),
        }
    }
    match c.state {
        State::Rekeying => {
            println!("rekey:                 in progress (run `sealfs rekey` again to finish)")
        }
        State::FullRekeying => println!(
            "rekey:                 --full in progress (run `sealfs rekey --full` again to finish)"
        ),
        State::Idle => {}
    }
    if !c.retired.is_empty() {
        let gens: Vec<String> = c.retired.iter().map(|r| r.generation.to_string()).collect();
        println!(
            "older generations:     {} (still readable)",
            gens.join(", ")
        );
    }
    Ok(())
}

/// A password slot's key derivation, as `info` and `key list` show it.
pub fn kdf(p: &crate::format::config::PasswordSlot) -> String {
    format!(
        "Argon2id {} MiB, {} passes, {} lane(s)",
        p.memory_kib / 1024,
        p.passes,
        p.lanes
    )
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

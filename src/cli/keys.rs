//! Key management on an unmounted vault: `passwd`, `key`, `recover`,
//! `recovery-key`, `rekey`, `keyring`. Each is a thin adapter over
//! `vault::admin`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::password::{self, NewSource};
use super::{NewPassArgs, PassArgs};
use crate::crypto::KdfParams;
use crate::format::config::SlotKind;
use crate::format::shares;
use crate::vault::admin::Admin;
use crate::vault::{Secret, Vault, format_recovery_key};
use crate::{Error, Result};

fn new_source(n: &NewPassArgs) -> NewSource<'_> {
    NewSource {
        file: n.new_passfile.as_ref(),
        extpass: n.new_extpass.as_deref(),
    }
}

/// Checks the vault exists, then asks for its password and opens it for admin.
fn open(pass: &PassArgs, vault: &Path) -> Result<Admin> {
    Vault::info(vault)?;
    crate::vault::admin::lock_now(vault)?;
    let pw = password::existing(pass, vault)?;
    Admin::open(vault, Secret::Password(&pw))
}

fn kdf(n: &NewPassArgs) -> KdfParams {
    KdfParams {
        memory_kib: n.kdf_memory.saturating_mul(1024),
        ..KdfParams::DEFAULT
    }
}

const OLD_COPIES: &str = "Old copies of the config (sync history, backups) still open the vault \
with the old password. `sealfs rekey` keeps them from opening files created after it.";

pub fn passwd(pass: &PassArgs, new: &NewPassArgs, slot: Option<u16>, vault: &Path) -> Result<()> {
    let mut a = open(pass, vault)?;
    let id = slot.unwrap_or(a.opened_slot());
    let pw = password::new(new_source(new))?;
    a.change_password(id, &pw, kdf(new))?;
    eprintln!("Password of key slot {id} changed.");
    eprintln!("{OLD_COPIES}");
    Ok(())
}

pub fn key_add(pass: &PassArgs, new: &NewPassArgs, vault: &Path) -> Result<()> {
    let mut a = open(pass, vault)?;
    let pw = password::new(new_source(new))?;
    let id = a.add_password(&pw, kdf(new))?;
    println!("{id}");
    eprintln!("Added password slot {id}.");
    Ok(())
}

pub fn key_list(vault: &Path) -> Result<()> {
    let c = Vault::info(vault)?;
    println!("SLOT  KIND      KDF");
    for s in &c.slots {
        match &s.kind {
            SlotKind::Password(p) => println!("{:<5} password  {}", s.id, super::setup::kdf(p)),
            k => println!("{:<5} {:<9} -", s.id, k.name()),
        }
    }
    Ok(())
}

pub fn key_remove(pass: &PassArgs, slot: u16, vault: &Path) -> Result<()> {
    let mut a = open(pass, vault)?;
    a.remove_slot(slot)?;
    eprintln!("Removed key slot {slot}.");
    eprintln!("{OLD_COPIES}");
    Ok(())
}

pub fn recover(
    key_file: Option<&Path>,
    share_files: &[PathBuf],
    new: &NewPassArgs,
    slot: Option<u16>,
    vault: &Path,
) -> Result<()> {
    Vault::info(vault)?;
    crate::vault::admin::lock_now(vault)?;
    let rk = if share_files.is_empty() {
        password::recovery_key(key_file)?
    } else {
        let mut parsed = Vec::new();
        for f in share_files {
            let text = zeroize::Zeroizing::new(std::fs::read_to_string(f).map_err(|e| {
                Error::Config(format!("cannot read share file {}: {e}", f.display()))
            })?);
            parsed.push(
                shares::parse(&text).map_err(|e| Error::Config(format!("{}: {e}", f.display())))?,
            );
        }
        shares::combine(&parsed).map_err(Error::Config)?
    };
    let mut a = Admin::open(vault, Secret::RecoveryKey(&rk))?;
    let id = match slot {
        Some(s) => s,
        None => a
            .first_password_slot()
            .ok_or_else(|| Error::Config("this vault has no password slot to reset".into()))?,
    };
    let pw = password::new(new_source(new))?;
    a.change_password(id, &pw, kdf(new))?;
    eprintln!("Recovered: key slot {id} has the new password.");
    Ok(())
}

pub fn recovery_key(
    pass: &PassArgs,
    regenerate: bool,
    split: Option<(u8, u8)>,
    out: Option<&Path>,
    vault: &Path,
) -> Result<()> {
    if !regenerate && split.is_none() {
        return Err(Error::Config(
            "the recovery key is not stored anywhere to show again; use --regenerate for a new one, \
             or --split N --threshold K for a new one as Shamir shares"
                .into(),
        ));
    }
    if let Some((n, k)) = split {
        // Refuse bad split parameters before changing anything.
        let dummy = crate::crypto::SecretKey::from_slice(&[0; 32]).expect("32 bytes");
        shares::split(&dummy, k, n).map_err(Error::Config)?;
    }
    if let Some(dir) = out {
        if !dir.is_dir() {
            return Err(Error::Config(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
    }
    let mut a = open(pass, vault)?;
    let rk = a.prepare_recovery()?;
    // Hand the new key out first; the config changes only once that worked.
    let mut out_lines = Vec::new();
    match split {
        None => out_lines.push(zeroize::Zeroizing::new(format_recovery_key(&rk))),
        Some((n, k)) => {
            let parts = shares::split(&rk, k, n).map_err(Error::Config)?;
            match out {
                Some(dir) => {
                    let paths: Vec<PathBuf> = (1..=n)
                        .map(|i| dir.join(format!("sealfs-share-{i}-of-{n}.txt")))
                        .collect();
                    if let Some(p) = paths.iter().find(|p| p.exists()) {
                        return Err(Error::Config(format!(
                            "{} already exists; not overwriting it (nothing changed)",
                            p.display()
                        )));
                    }
                    for (p, s) in paths.iter().zip(&parts) {
                        write_private(p, s)?;
                        eprintln!("wrote {}", p.display());
                    }
                }
                None => out_lines.extend(parts.into_iter().map(zeroize::Zeroizing::new)),
            }
        }
    }
    {
        let mut stdout = std::io::stdout().lock();
        for l in &out_lines {
            writeln!(stdout, "{}", **l).map_err(|e| {
                Error::Config(format!(
                    "cannot print the new recovery key ({e}); nothing changed"
                ))
            })?;
        }
        stdout.flush().map_err(|e| {
            Error::Config(format!(
                "cannot print the new recovery key ({e}); nothing changed"
            ))
        })?;
    }
    a.commit()?;
    match split {
        None => eprintln!(
            "New recovery key above (the old one no longer opens the vault; store this one safely)."
        ),
        Some((n, k)) => eprintln!(
            "New recovery key split into {n} shares; any {k} recover the vault. Give each to a different person."
        ),
    }
    Ok(())
}

fn write_private(p: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .map_err(|e| Error::Config(format!("cannot write {}: {e}", p.display())))?;
    writeln!(f, "{text}")?;
    f.sync_all()?;
    Ok(())
}

pub fn rekey(pass: &PassArgs, full: bool, vault: &Path) -> Result<()> {
    if full {
        return rekey_full(pass, vault);
    }
    let mut a = open(pass, vault)?;
    let bar = super::progress::files("rekey");
    let report = a.rekey(&mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    eprintln!(
        "Rekeyed: master key generation {}; {} of {} file headers rewrapped.",
        a.config().generation,
        report.rewrapped,
        report.files
    );
    if !report.damaged.is_empty() {
        eprintln!(
            "{} file(s) could not be rewrapped (run `sealfs fsck`):",
            report.damaged.len()
        );
        for d in &report.damaged {
            eprintln!("  {d}");
        }
    }
    Ok(())
}

fn rekey_full(pass: &PassArgs, vault: &Path) -> Result<()> {
    let mut a = open(pass, vault)?;
    let bar = super::progress::files("rekey --full");
    let report = a.rekey_full(&mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    if !report.damaged.is_empty() {
        eprintln!(
            "sealfs: rekey --full stopped: {} entr{} could not be re-encrypted:",
            report.damaged.len(),
            if report.damaged.len() == 1 {
                "y"
            } else {
                "ies"
            }
        );
        for d in &report.damaged {
            eprintln!("  {d}");
        }
        return Err(Error::Config(
            "the vault stays readable (`sealfs ls`, `sealfs cat`, `sealfs fsck`); restore or \
             remove those entries in the vault directory (or wait for a sync to finish), then \
             run `sealfs rekey --full` again to finish"
                .into(),
        ));
    }
    eprintln!(
        "Rekeyed fully: master key generation {}; {} entries re-encrypted under new keys. \
         The old master key opens nothing in the vault now.",
        a.config().generation,
        report.converted
    );
    Ok(())
}

pub fn keyring_save(pass: &PassArgs, vault: &Path) -> Result<()> {
    Vault::info(vault)?;
    let pw = password::existing(pass, vault)?;
    // Only a password that opens the vault is stored.
    crate::vault::unlock_config(&Vault::info(vault)?, Secret::Password(&pw))?;
    super::keyring::save(vault, &pw)?;
    eprintln!(
        "Password saved in the keyring ({}).",
        super::keyring::store()
    );
    Ok(())
}

pub fn keyring_forget(vault: &Path) -> Result<()> {
    super::keyring::forget(vault)?;
    eprintln!(
        "Password removed from the keyring ({}).",
        super::keyring::store()
    );
    Ok(())
}

/// `fsck`: exit status as fsck(8): 0 clean, 1 repaired, 4 damage left,
/// 8 could not check (12 for a wrong password, as everywhere).
pub fn fsck(pass: &PassArgs, repair: bool, vault: &Path) -> i32 {
    match fsck_run(pass, repair, vault) {
        Ok(code) => code,
        Err(e) => {
            let code = super::report(&e);
            if code == super::EXIT_WRONG_PASSWORD {
                code
            } else {
                8
            }
        }
    }
}

fn fsck_run(pass: &PassArgs, repair: bool, vault: &Path) -> Result<i32> {
    let cfg = Vault::info(vault)?;
    if repair {
        super::refuse_unfinished_full_rekey(vault)?;
    }
    let _lock = crate::vault::admin::lock_now(vault)?;
    let pw = password::existing(pass, vault)?;
    let v = Vault::unlock(vault, Secret::Password(&pw))?;
    match cfg.state {
        crate::format::config::State::Rekeying => println!(
            "NOTICE   sealfs.conf: a rekey is in progress; run `sealfs rekey` to finish it"
        ),
        crate::format::config::State::FullRekeying => println!(
            "NOTICE   sealfs.conf: a rekey --full is in progress; run `sealfs rekey --full` to finish it"
        ),
        crate::format::config::State::Idle => {}
    }
    let bar = super::progress::files("fsck");
    let r = crate::vault::fsck::fsck(&v, repair, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    for f in &r.findings {
        let tag = match (f.damage, &f.repaired) {
            (_, Some(_)) => "REPAIRED",
            (true, None) => "DAMAGE",
            (false, None) => "NOTICE",
        };
        let plain = f
            .plain_path
            .as_ref()
            .map(|p| format!(" (/{p})"))
            .unwrap_or_default();
        let moved = f
            .repaired
            .as_ref()
            .map(|p| format!(" -> moved to /{p}"))
            .unwrap_or_default();
        println!("{tag:<8} {}{plain}: {}{moved}", f.vault_path, f.what);
    }
    let notices = r.findings.iter().filter(|f| !f.damage).count();
    println!(
        "checked {} directories, {} files ({} chunks, {} failed), {} symlinks: {} damaged, {} repaired, {} notices",
        r.dirs,
        r.files,
        r.chunks,
        r.bad_chunks,
        r.symlinks,
        r.damage_left() + r.repaired(),
        r.repaired(),
        notices
    );
    Ok(if r.damage_left() > 0 {
        4
    } else if r.repaired() > 0 {
        1
    } else {
        0
    })
}

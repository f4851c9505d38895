//! Offline key management on an unmounted vault: password slots, the
//! recovery slot, and `rekey`. Every change is one atomic config write, made
//! while holding the vault's lock (the one a mount holds), so none of this
//! runs while the vault is mounted on this machine, and a mount waits for none.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use crate::crypto::{KdfParams, SecretKey};
use crate::error::{Error, Result};
use crate::format::config::{ConfigFile, MAX_RETIRED, SlotKind, State};

use super::keys::MasterKeys;
use super::slots::{self, Secret};
use super::unlock::{read_config, seal_config, unlock_config, write_config};
use super::{Vault, sys};

/// Older master-key generations a rekey always keeps readable.
pub const KEEP_GENERATIONS: usize = 8;

/// An unlocked vault config, held under the vault's exclusive lock.
pub struct Admin {
    _lock: OwnedFd,
    root: OwnedFd,
    path: std::path::PathBuf,
    cfg: ConfigFile,
    m: MasterKeys,
}

/// Takes the vault's exclusive lock without waiting (the lock a mount holds
/// for its whole life; see `super::runtime::open_lock`). The returned fd
/// holds it until dropped.
pub fn lock_now(path: &Path) -> Result<OwnedFd> {
    let fd = super::runtime::open_lock(path)?;
    if !super::runtime::try_lock(&fd)? {
        return Err(Error::Config(format!(
            "{} is mounted or in use by another sealfs command; unmount it or wait, then try again",
            path.display()
        )));
    }
    Ok(fd)
}

/// Removes config temp files a crashed command left behind (safe: the
/// exclusive lock is held, so no writer on this machine is mid-way).
fn remove_stale_temp_configs(root: std::os::fd::BorrowedFd<'_>) {
    let prefix = format!("{}.tmp-", crate::format::config::CONFIG_FILE);
    if let Ok(entries) = sys::read_dir(root) {
        for e in entries {
            if sys::bytes(&e.name).starts_with(prefix.as_bytes()) {
                let _ = sys::unlinkat(root, sys::bytes(&e.name), 0);
            }
        }
    }
}

impl Admin {
    /// Locks the vault, then unlocks its config with `secret`.
    pub fn open(path: &Path, secret: Secret<'_>) -> Result<Admin> {
        let lock = lock_now(path)?;
        let root = sys::open_dir_path(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let cfg = read_config(root.as_fd())?;
        remove_stale_temp_configs(root.as_fd());
        let m = unlock_config(&cfg, secret)?;
        Ok(Admin {
            _lock: lock,
            root,
            path: path.to_path_buf(),
            cfg,
            m,
        })
    }

    pub fn config(&self) -> &ConfigFile {
        &self.cfg
    }

    /// The id of the slot that unlocked the vault.
    pub fn opened_slot(&self) -> u16 {
        self.m.slot
    }

    fn save(&mut self) -> Result<()> {
        seal_config(&mut self.cfg, &self.m)?;
        write_config(self.root.as_fd(), &self.cfg)
    }

    fn password_slots(&self) -> usize {
        self.cfg
            .slots
            .iter()
            .filter(|s| matches!(s.kind, SlotKind::Password(_)))
            .count()
    }

    /// Gives password slot `id` a new password (new key pair, new salt).
    pub fn change_password(&mut self, id: u16, password: &[u8], kdf: KdfParams) -> Result<()> {
        let pos = self
            .cfg
            .slots
            .iter()
            .position(|s| s.id == id && matches!(s.kind, SlotKind::Password(_)))
            .ok_or_else(|| Error::Config(format!("there is no password slot {id}")))?;
        let slot = slots::password_slot(&self.cfg, id, password, kdf, &self.m.auth)?;
        self.cfg.slots[pos] = slot;
        self.save()
    }

    /// Adds a password slot; returns its id.
    pub fn add_password(&mut self, password: &[u8], kdf: KdfParams) -> Result<u16> {
        if self.cfg.slots.len() >= crate::format::config::MAX_SLOTS {
            return Err(Error::Config(
                "this vault has the most key slots it can hold".into(),
            ));
        }
        let id = self
            .cfg
            .next_slot_id()
            .ok_or_else(|| Error::Config("no free key slot id".into()))?;
        let slot = slots::password_slot(&self.cfg, id, password, kdf, &self.m.auth)?;
        self.cfg.slots.push(slot);
        self.save()?;
        Ok(id)
    }

    /// Removes slot `id`; refuses to remove the last password slot.
    pub fn remove_slot(&mut self, id: u16) -> Result<()> {
        let pos = self
            .cfg
            .slots
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(|| Error::Config(format!("there is no key slot {id}")))?;
        if matches!(self.cfg.slots[pos].kind, SlotKind::Password(_)) && self.password_slots() == 1 {
            return Err(Error::Config(
                "refusing to remove the last password slot: the recovery key alone is not a way to \
                 work day to day (add another password first)"
                    .into(),
            ));
        }
        self.cfg.slots.remove(pos);
        self.save()
    }

    /// Replaces the recovery slot (or adds one) in memory and returns the
    /// new recovery key; nothing is written until `commit`, so the caller
    /// can hand the key out first and never leave a vault whose only
    /// recovery key was lost on the way.
    pub fn prepare_recovery(&mut self) -> Result<SecretKey> {
        let id = match self
            .cfg
            .slots
            .iter()
            .position(|s| matches!(s.kind, SlotKind::Recovery(_)))
        {
            Some(pos) => self.cfg.slots.remove(pos).id,
            None => self
                .cfg
                .next_slot_id()
                .ok_or_else(|| Error::Config("no free key slot id".into()))?,
        };
        let (slot, rk) = slots::recovery_slot(&self.cfg, id, &self.m.auth)?;
        self.cfg.slots.push(slot);
        self.cfg.slots.sort_by_key(|s| s.id);
        Ok(rk)
    }

    /// Writes what `prepare_recovery` changed.
    pub fn commit(&mut self) -> Result<()> {
        self.save()
    }

    /// The id of the first password slot (what `passwd` changes by default).
    pub fn first_password_slot(&self) -> Option<u16> {
        self.cfg
            .slots
            .iter()
            .find(|s| matches!(s.kind, SlotKind::Password(_)))
            .map(|s| s.id)
    }

    /// Keeps the newest `KEEP_GENERATIONS` older generations and any in `seen`.
    fn prune_retired(&mut self, seen: &std::collections::BTreeSet<u32>) {
        let mut gens: Vec<u32> = self.m.retired.iter().map(|(g, _)| *g).collect();
        gens.sort_unstable_by(|a, b| b.cmp(a));
        let recent: Vec<u32> = gens.into_iter().take(KEEP_GENERATIONS).collect();
        self.m
            .retired
            .retain(|(g, _)| recent.contains(g) || seen.contains(g));
    }

    /// A new master key for the next generation; the current one is retired
    /// (still readable). Not saved.
    fn new_generation(&mut self) -> Result<()> {
        if self.m.retired.len() + 1 > MAX_RETIRED {
            return Err(Error::Config(format!(
                "this vault already keeps {} older key generations, the most it can",
                self.m.retired.len()
            )));
        }
        let next = self
            .cfg
            .generation
            .checked_add(1)
            .ok_or_else(|| Error::Config("key generation counter exhausted".into()))?;
        let old = std::mem::replace(&mut self.m.current, SecretKey::random()?);
        self.m.retired.insert(0, (self.cfg.generation, old));
        self.cfg.generation = next;
        Ok(())
    }

    /// `rekey --full` (see `super::fullrekey`): new master, name and dir-id
    /// keys, every entry re-encrypted. Resumable. Returns the pass's report;
    /// when it lists damaged entries the rekey stays unfinished (state 2,
    /// everything still readable) and a rerun continues.
    pub fn rekey_full(
        &mut self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<super::fullrekey::Report> {
        if self.cfg.state != State::FullRekeying {
            self.new_generation()?;
            let name = std::mem::replace(&mut self.m.name_key, SecretKey::random()?);
            let dirid = std::mem::replace(&mut self.m.dirid_key, SecretKey::random()?);
            self.m.previous = Some((name, dirid));
            self.save()?;
        }
        let vault = Vault::open(self.root.try_clone()?, &self.cfg, &self.m, &self.path)?;
        let report = super::fullrekey::convert_all(&vault, progress)?;
        if !report.damaged.is_empty() {
            return Ok(report);
        }
        super::fullrekey::sweep_links(&vault)?;
        sys::syncfs(self.root.as_fd())?;
        // Nothing here uses the previous name keys now. Older generations stay
        // readable as after a plain rekey (headers another device writes
        // late, or not synced yet); their keys open nothing in the vault now.
        self.m.previous = None;
        self.prune_retired(&Default::default());
        self.cfg.state = State::Idle;
        self.save()?;
        Ok(report)
    }

    /// Rotates the master key (see `super::rekey`).
    pub fn rekey(&mut self, progress: &mut dyn FnMut(u64, u64)) -> Result<super::rekey::Report> {
        if self.cfg.state == State::FullRekeying {
            return Err(Error::Config(
                "a rekey --full of this vault is unfinished; run `sealfs rekey --full` to finish it"
                    .into(),
            ));
        }
        if self.cfg.state == State::Idle {
            // Phase 1: a new generation; every older one stays readable.
            self.new_generation()?;
            self.cfg.state = State::Rekeying;
            self.save()?;
        }
        // Phase 2: rewrap every header still naming an older generation.
        let vault = Vault::open(self.root.try_clone()?, &self.cfg, &self.m, &self.path)?;
        let report = super::rekey::rewrap_all(&vault, progress)?;
        // Headers must be on disk before the config stops naming the state.
        sys::syncfs(self.root.as_fd())?;
        // Phase 3. The newest KEEP_GENERATIONS older generations stay
        // readable whatever the pass saw: another device may still write
        // with one until it sees this config, and the pass cannot see files
        // not synced here yet. Older ones stay only while a header uses
        // them. (A plain rekey keeps every DEK, so an old MK kept costs no
        // secrecy.)
        self.prune_retired(&report.seen);
        self.cfg.state = State::Idle;
        self.save()?;
        Ok(report)
    }
}

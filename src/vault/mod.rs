//! An unlocked vault: the root directory fd plus the vault keys, and the
//! operations the CLI and the FUSE layer compose.
#![forbid(unsafe_code)]

pub mod admin;
pub mod backing;
mod conflicts;
mod dir;
mod file;
pub mod fsck;
pub mod fullrekey;
pub mod growth;
mod keys;
mod links;
pub mod rekey;
pub mod runtime;
mod slots;
pub mod sys;
mod unlock;
pub mod walk;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

pub use dir::{Dir, DirEntry, Kind, Labelled, Listed};
pub use file::SealedFile;
pub use keys::{MasterKeys, VaultKeys};
pub use slots::Secret;
pub use unlock::{
    NewConfig, config_conflicts, format_recovery_key, parse_recovery_key, read_config, seal_config,
    write_config,
};

use crate::crypto::SecretKey;
use crate::error::{Error, Result};
use crate::format::config::{CONFIG_FILE, ConfigFile};
use crate::format::names::{VaultEntry, classify};
pub use unlock::unlock_config;

/// Default plaintext chunk size (see sealfs-format(5) for the measurements).
pub const DEFAULT_CHUNK_SIZE: u32 = 4096;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Logs a warning about a vault path once per process (listings repeat).
pub fn warn_once(vault_path: &str, what: &str) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(|| Mutex::new(HashSet::new()));
    let mut s = match seen.lock() {
        Ok(s) => s,
        Err(p) => p.into_inner(),
    };
    if s.len() < 100_000 && s.insert(format!("{what}\0{vault_path}")) {
        log::warn!("vault entry {vault_path}: {what}");
    }
}

/// Options for `Vault::create` (checked by `CreateOptions::check`).
pub type CreateOptions = NewConfig;

pub struct Vault {
    root: OwnedFd,
    keys: Arc<VaultKeys>,
    path: PathBuf,
}

fn open_root(path: &Path) -> Result<OwnedFd> {
    sys::open_dir_path(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => Error::Config(format!("{}: no such directory", path.display())),
        Some(libc::ENOTDIR) => Error::Config(format!("{}: not a directory", path.display())),
        _ => Error::Config(format!("{}: {e}", path.display())),
    })
}

impl Vault {
    /// Creates a vault in an empty (or missing) directory; returns the
    /// unlocked vault and the recovery key (to show once).
    pub fn create(path: &Path, password: &[u8], opts: CreateOptions) -> Result<(Vault, SecretKey)> {
        match std::fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(Error::Config(format!(
                    "cannot create {}: {e}",
                    path.display()
                )));
            }
        }
        let root = open_root(path)?;
        Self::check_empty(root.as_fd(), path)?;
        let (cfg, m, rk) = unlock::create_config(password, opts)?;
        write_config(root.as_fd(), &cfg)?;
        Ok((Self::open(root, &cfg, &m, path)?, rk))
    }

    /// Refuses a directory that is a vault already or holds anything but
    /// sync tools' files; a missing directory is fine (init creates it).
    pub fn check_creatable(path: &Path) -> Result<()> {
        match sys::open_dir_path(path) {
            Ok(fd) => Self::check_empty(fd.as_fd(), path),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(Error::Config(format!("{}: {e}", path.display()))),
        }
    }

    fn check_empty(root: BorrowedFd<'_>, path: &Path) -> Result<()> {
        for e in sys::read_dir(root)? {
            let n = sys::bytes(&e.name);
            if n == CONFIG_FILE.as_bytes() {
                return Err(Error::Config(format!(
                    "{} is already a sealfs vault",
                    path.display()
                )));
            }
            if classify(n, true) != VaultEntry::SyncTool {
                return Err(Error::Config(format!(
                    "{} is not empty; a vault is created in an empty directory",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// Unlocks an existing vault.
    pub fn unlock(path: &Path, secret: Secret<'_>) -> Result<Vault> {
        let root = open_root(path)?;
        let cfg = read_config(root.as_fd())?;
        let m = unlock::unlock_config(&cfg, secret)?;
        Self::open(root, &cfg, &m, path)
    }

    /// An unlocked vault from its root fd, config and keys.
    pub fn open(root: OwnedFd, cfg: &ConfigFile, m: &MasterKeys, path: &Path) -> Result<Vault> {
        let keys = VaultKeys::new(cfg, m, Arc::new(root.try_clone()?))?;
        Ok(Vault {
            root,
            keys: Arc::new(keys),
            path: path.to_path_buf(),
        })
    }

    /// Reads the public part of the config (no secret needed).
    pub fn info(path: &Path) -> Result<ConfigFile> {
        let root = open_root(path)?;
        read_config(root.as_fd())
    }

    pub fn keys(&self) -> &Arc<VaultKeys> {
        &self.keys
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn root_fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// The root directory.
    pub fn root(&self) -> Result<Dir> {
        let fd = self.root.try_clone()?;
        Ok(Dir::root(fd, self.keys.clone()))
    }

    /// Splits a vault-relative plaintext path into its components.
    fn components(path: &Path) -> Result<Vec<&OsStr>> {
        let mut out = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(n) => out.push(n),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(Error::errno(libc::EINVAL));
                }
            }
        }
        Ok(out)
    }

    /// Opens the directory at a plaintext path ("" or "/" is the root).
    pub fn open_dir(&self, path: &Path) -> Result<Dir> {
        let mut d = self.root()?;
        for c in Self::components(path)? {
            d = d.open_subdir(c)?;
        }
        Ok(d)
    }

    /// Opens the parent directory of a plaintext path and returns it with the last component.
    pub fn open_parent<'p>(&self, path: &'p Path) -> Result<(Dir, &'p OsStr)> {
        let comps = Self::components(path)?;
        let (last, parents) = comps.split_last().ok_or(Error::errno(libc::EINVAL))?;
        let mut d = self.root()?;
        for c in parents {
            d = d.open_subdir(c)?;
        }
        Ok((d, last))
    }
}

//! Command-line interface: clap definitions and one module per command.
//! Each command is a thin adapter over the vault library.
#![forbid(unsafe_code)]

mod completions;
mod fuse_mount;
mod idle;
mod keyring;
mod keys;
pub mod logging;
mod mount;
pub mod mount_helper;
mod offline;
mod password;
mod progress;
mod service;
mod setup;
mod status;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::Error;

/// FUSE worker threads of a mount unless told otherwise: one per CPU, at
/// least 2, at most 4 (the old fixed count, so larger machines keep it).
/// More threads than CPUs only adds wake-ups: on 2 CPUs, 4 threads made
/// untar 25% and rm -rf 13% slower than 2 (round trips are the cost of
/// metadata work, and each extra thread lengthens them).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4))
}

/// Exit status for a wrong password or recovery key (a documented contract).
pub const EXIT_WRONG_PASSWORD: i32 = 12;

#[derive(Parser, Debug)]
#[command(
    name = "sealfs",
    version,
    about = "Transparent encrypting filesystem for sync folders"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args, Debug, Clone)]
pub struct PassArgs {
    /// Read the password from the first line of this file instead of the terminal
    #[arg(long, value_name = "FILE", conflicts_with_all = ["extpass", "keyring"])]
    pub passfile: Option<PathBuf>,
    /// Run this shell command and use the first line of its output as the password
    #[arg(long, value_name = "CMD", conflicts_with = "keyring")]
    pub extpass: Option<String>,
    /// Use the password saved with `sealfs keyring save`
    #[arg(long)]
    pub keyring: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct NewPassArgs {
    /// Read the new password from the first line of this file
    #[arg(long, value_name = "FILE", conflicts_with = "new_extpass")]
    pub new_passfile: Option<PathBuf>,
    /// Run this shell command and use the first line of its output as the new password
    #[arg(long, value_name = "CMD")]
    pub new_extpass: Option<String>,
    /// Argon2id memory cost of the new password slot in MiB (64..1024)
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub kdf_memory: u32,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Add a password slot (another password that opens the vault)
    Add {
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        new: NewPassArgs,
        vault: PathBuf,
    },
    /// List the key slots: id, kind, KDF parameters (no password needed)
    List { vault: PathBuf },
    /// Remove a key slot (never the last password slot)
    Remove {
        #[command(flatten)]
        pass: PassArgs,
        vault: PathBuf,
        slot: u16,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyringCommand {
    /// Save the vault password in the system keyring (checked against the vault first)
    Save {
        #[command(flatten)]
        pass: PassArgs,
        vault: PathBuf,
    },
    /// Remove the vault password from the system keyring
    Forget {
        #[command(flatten)]
        pass: PassArgs,
        vault: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new vault in an empty or non-existent directory
    Init {
        #[command(flatten)]
        pass: PassArgs,
        /// Argon2id memory cost in MiB (at least 64)
        #[arg(long, value_name = "MIB", default_value_t = 256)]
        kdf_memory: u32,
        /// Plaintext chunk size in bytes (power of two, 4096..1048576)
        #[arg(long, value_name = "BYTES", default_value_t = crate::vault::DEFAULT_CHUNK_SIZE)]
        chunk_size: u32,
        /// Keep every vault entry name within this many bytes (50..255), for
        /// sync services with a shorter name limit; longer encrypted names are
        /// stored hashed with a sidecar
        #[arg(long, value_name = "N", default_value_t = crate::format::config::LONGNAME_DEFAULT)]
        longname_max: u16,
        /// Write the recovery key to this file (mode 0600) instead of printing it
        #[arg(long, value_name = "OUT")]
        recovery_key_file: Option<PathBuf>,
        vault: PathBuf,
    },
    /// Show format version, chunk size, KDF parameters and key generation (no password needed)
    Info { vault: PathBuf },
    /// List a directory of an unmounted vault
    Ls {
        #[command(flatten)]
        pass: PassArgs,
        vault: PathBuf,
        #[arg(default_value = "/")]
        path: PathBuf,
    },
    /// Write a file of an unmounted vault to standard output
    Cat {
        #[command(flatten)]
        pass: PassArgs,
        vault: PathBuf,
        path: PathBuf,
    },
    /// Store standard input as a file of an unmounted vault (atomic replace; parents are created)
    Put {
        #[command(flatten)]
        pass: PassArgs,
        vault: PathBuf,
        path: PathBuf,
    },
    /// Mount a vault: a plaintext view of VAULT at MOUNTPOINT
    Mount {
        #[command(flatten)]
        pass: PassArgs,
        /// Stay in the foreground and log to stderr
        #[arg(short = 'f', long)]
        foreground: bool,
        /// Mount read-only
        #[arg(long)]
        read_only: bool,
        /// Let other users (and root) use the mount
        #[arg(long)]
        allow_other: bool,
        /// FUSE worker threads [default: one per CPU, 2 to 4]
        #[arg(long)]
        threads: Option<usize>,
        /// Send every write to the vault at once instead of through the
        /// kernel's writeback cache (slower for small writes)
        #[arg(long)]
        no_writeback_cache: bool,
        /// Append the daemon's log to this file (default: the system log
        /// once detached, warnings and errors only)
        #[arg(long, value_name = "FILE")]
        log_file: Option<PathBuf>,
        /// Unmount after no use for this long (90s, 10m, 1h30m); the data
        /// is flushed first, and a mount in use stays
        #[arg(long, value_name = "DURATION", value_parser = idle::parse_duration)]
        idle_timeout: Option<std::time::Duration>,
        vault: PathBuf,
        mountpoint: PathBuf,
    },
    /// Unmount and wait until all data is on disk
    Umount { mountpoint: PathBuf },
    /// Show this user's mounted vaults: where, which vault, daemon pid, mode, uptime
    Status {
        /// Only this mount (exit status 1 if it is not a sealfs mount)
        mountpoint: Option<PathBuf>,
    },
    /// Change a password (the slot the old password opens, or --slot)
    Passwd {
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        new: NewPassArgs,
        /// The password slot to change
        #[arg(long)]
        slot: Option<u16>,
        vault: PathBuf,
    },
    /// Manage password slots
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Unlock with the recovery key (or Shamir shares) and set a new password
    Recover {
        /// Read the recovery key from this file (as `init --recovery-key-file` wrote it, or as printed)
        #[arg(long, value_name = "FILE", conflicts_with = "share_file")]
        recovery_key_file: Option<PathBuf>,
        /// A file holding one Shamir share (repeat for each share)
        #[arg(long, value_name = "FILE")]
        share_file: Vec<PathBuf>,
        #[command(flatten)]
        new: NewPassArgs,
        /// The password slot to reset (default: the first)
        #[arg(long)]
        slot: Option<u16>,
        vault: PathBuf,
    },
    /// Replace the recovery key, whole or as K-of-N Shamir shares
    RecoveryKey {
        #[command(flatten)]
        pass: PassArgs,
        /// Make a new recovery key and print it
        #[arg(long)]
        regenerate: bool,
        /// Make a new recovery key and print it as N shares
        #[arg(long, value_name = "N", requires = "threshold")]
        split: Option<u8>,
        /// How many shares recover the key
        #[arg(long, value_name = "K", requires = "split")]
        threshold: Option<u8>,
        /// Write each share to its own file in this directory instead of printing
        #[arg(long, value_name = "DIR", requires = "split")]
        out: Option<PathBuf>,
        vault: PathBuf,
    },
    /// Rotate the master key: rewrap every file header (content untouched)
    Rekey {
        #[command(flatten)]
        pass: PassArgs,
        /// Also renew every file key, name, directory ID, symlink target and
        /// attribute: re-encrypts everything (unmount other devices first)
        #[arg(long)]
        full: bool,
        vault: PathBuf,
    },
    /// Check every name, header, chunk, directory ID, symlink and attribute;
    /// exit 0 clean, 1 repaired, 4 damage left, 8 could not check
    Fsck {
        #[command(flatten)]
        pass: PassArgs,
        /// Move what fails authentication into /lost+found, salvaging the
        /// readable chunks of damaged files (never deletes anything)
        #[arg(long)]
        repair: bool,
        vault: PathBuf,
    },
    /// Keep the vault password in the system keyring
    Keyring {
        #[command(subcommand)]
        command: KeyringCommand,
    },
    /// Print a shell completion script (bash, zsh or fish)
    Completions {
        #[arg(value_enum)]
        shell: completions::Shell,
    },
}

/// Runs the parsed command; returns the process exit status.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Fsck {
            pass,
            repair,
            vault,
        } => return keys::fsck(&pass, repair, &vault),
        Command::Init {
            pass,
            kdf_memory,
            chunk_size,
            longname_max,
            recovery_key_file,
            vault,
        } => setup::init(
            &pass,
            kdf_memory,
            chunk_size,
            longname_max,
            recovery_key_file.as_deref(),
            &vault,
        ),
        Command::Info { vault } => setup::info(&vault),
        Command::Ls { pass, vault, path } => offline::ls(&pass, &vault, &path),
        Command::Cat { pass, vault, path } => offline::cat(&pass, &vault, &path),
        Command::Put { pass, vault, path } => offline::put(&pass, &vault, &path),
        Command::Mount {
            pass,
            foreground,
            read_only,
            allow_other,
            threads,
            no_writeback_cache,
            log_file,
            idle_timeout,
            vault,
            mountpoint,
        } => {
            let a = mount::MountArgs {
                pass: &pass,
                vault: &vault,
                mountpoint: &mountpoint,
                foreground,
                read_only,
                allow_other,
                threads: threads.unwrap_or_else(default_threads),
                no_writeback_cache,
                no_exec: false,
                idle_timeout,
            };
            mount::mount(&a, log_file.as_deref())
        }
        Command::Umount { mountpoint } => mount::umount(&mountpoint),
        Command::Status { mountpoint } => status::status(mountpoint.as_deref()),
        Command::Passwd {
            pass,
            new,
            slot,
            vault,
        } => keys::passwd(&pass, &new, slot, &vault),
        Command::Key { command } => match command {
            KeyCommand::Add { pass, new, vault } => keys::key_add(&pass, &new, &vault),
            KeyCommand::List { vault } => keys::key_list(&vault),
            KeyCommand::Remove { pass, vault, slot } => keys::key_remove(&pass, slot, &vault),
        },
        Command::Recover {
            recovery_key_file,
            share_file,
            new,
            slot,
            vault,
        } => keys::recover(
            recovery_key_file.as_deref(),
            &share_file,
            &new,
            slot,
            &vault,
        ),
        Command::RecoveryKey {
            pass,
            regenerate,
            split,
            threshold,
            out,
            vault,
        } => keys::recovery_key(
            &pass,
            regenerate,
            split.zip(threshold),
            out.as_deref(),
            &vault,
        ),
        Command::Rekey { pass, full, vault } => keys::rekey(&pass, full, &vault),
        Command::Keyring { command } => match command {
            KeyringCommand::Save { pass, vault } => keys::keyring_save(&pass, &vault),
            KeyringCommand::Forget { pass: _, vault } => keys::keyring_forget(&vault),
        },
        Command::Completions { shell } => completions::print(shell),
    };
    match result {
        Ok(()) => 0,
        Err(e) => report(&e),
    }
}

/// Writing (mount, put, fsck) waits for an unfinished `rekey --full`; reading
/// offline (`ls`, `cat`) works throughout.
fn refuse_unfinished_full_rekey(vault: &std::path::Path) -> crate::Result<()> {
    if crate::vault::Vault::info(vault)?.state == crate::format::config::State::FullRekeying {
        return Err(Error::Config(format!(
            "a rekey --full of this vault is unfinished; run `sealfs rekey --full {}` first \
             (`sealfs ls` and `sealfs cat` read it meanwhile)",
            vault.display()
        )));
    }
    Ok(())
}

/// Prints one clear line for an error and returns its exit status.
pub fn report(e: &Error) -> i32 {
    eprintln!("sealfs: {e}");
    match e {
        Error::WrongPassword => EXIT_WRONG_PASSWORD,
        _ => 1,
    }
}

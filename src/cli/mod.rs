//! Command-line interface: clap definitions and one module per command.
//! Each command is a thin adapter over the vault library.

mod mount;
mod offline;
mod password;
mod setup;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::Error;

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
    #[arg(long, value_name = "FILE")]
    pub passfile: Option<PathBuf>,
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
        /// FUSE worker threads
        #[arg(long, default_value_t = 4)]
        threads: usize,
        /// Send every write to the vault at once instead of through the
        /// kernel's writeback cache (slower for small writes)
        #[arg(long)]
        no_writeback_cache: bool,
        /// Append the daemon's log to this file (default: discarded once detached)
        #[arg(long, value_name = "FILE")]
        log_file: Option<PathBuf>,
        vault: PathBuf,
        mountpoint: PathBuf,
    },
    /// Unmount and wait until all data is on disk
    Umount { mountpoint: PathBuf },
}

/// Runs the parsed command; returns the process exit status.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Init {
            pass,
            kdf_memory,
            chunk_size,
            recovery_key_file,
            vault,
        } => setup::init(
            &pass,
            kdf_memory,
            chunk_size,
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
                threads,
                no_writeback_cache,
            };
            mount::mount(&a, log_file.as_deref())
        }
        Command::Umount { mountpoint } => mount::umount(&mountpoint),
    };
    match result {
        Ok(()) => 0,
        Err(e) => report(&e),
    }
}

/// Prints one clear line for an error and returns its exit status.
pub fn report(e: &Error) -> i32 {
    eprintln!("sealfs: {e}");
    match e {
        Error::WrongPassword => EXIT_WRONG_PASSWORD,
        _ => 1,
    }
}

//! The one error type of the vault library. Every variant maps to an errno
//! for the FUSE layer and to one clear line (and an exit status) for the CLI.
#![forbid(unsafe_code)]

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// The password or recovery key does not unlock the vault.
    WrongPassword,
    /// The directory is not a sealfs vault, or its config cannot be used
    /// (missing, truncated, newer version, unknown flags, weakened KDF, tampered).
    Config(String),
    /// Vault data failed authentication or is structurally invalid.
    /// The message names ciphertext paths only, never plaintext.
    Corrupt(String),
    /// An operating-system error with its errno.
    Io(std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The end of the message of vault data not (yet) there; see `is_unsynced`.
pub const NOT_SYNCED_YET: &str = "(not synced yet?)";

impl Error {
    /// Vault data that is missing rather than damaged, as while a sync tool
    /// is still bringing a directory over: its message ends in
    /// [`NOT_SYNCED_YET`]. (EIO for that entry; logged once where found.)
    pub fn is_unsynced(&self) -> bool {
        matches!(self, Error::Corrupt(m) if m.ends_with(NOT_SYNCED_YET))
    }

    /// An error carrying a bare errno.
    pub fn errno(code: i32) -> Self {
        Error::Io(std::io::Error::from_raw_os_error(code))
    }

    /// The errno the FUSE layer reports for this error.
    pub fn to_errno(&self) -> i32 {
        match self {
            Error::WrongPassword => libc::EACCES,
            Error::Config(_) | Error::Corrupt(_) => libc::EIO,
            Error::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
        }
    }

    /// True when this is "no such file or directory".
    pub fn is_not_found(&self) -> bool {
        self.to_errno() == libc::ENOENT
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WrongPassword => f.write_str("wrong password or recovery key"),
            Error::Config(m) => f.write_str(m),
            Error::Corrupt(m) => write!(f, "vault data failed authentication: {m}"),
            Error::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<rustix::io::Errno> for Error {
    fn from(e: rustix::io::Errno) -> Self {
        Error::Io(e.into())
    }
}

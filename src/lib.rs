//! # sealfs: a transparent encrypting filesystem for sync folders
//!
//! ```text
//!   plaintext view (FUSE, src/fs)      offline commands (src/cli)
//!                 \                     /
//!                  vault library (src/vault): unlock, Dir (dirfd + *at), SealedFile
//!                  /                      \
//!   byte layouts (src/format)        primitives (src/crypto)
//!   config, header, chunk geometry,  AES-256-GCM-SIV, Argon2id, BLAKE3 subkeys,
//!   names, directory IDs             zeroizing SecretKey
//! ```
//!
//! **Envelope encryption.** A random master key (MK) is wrapped by key slots
//! (Argon2id password, random recovery key) in `sealfs.conf`, which is
//! authenticated under the MK. Each file has its own random DEK, wrapped under
//! the MK generation named in its fixed-size header. Content is stored in
//! fixed-size chunks sealed with AES-256-GCM-SIV, bound by associated data to
//! the file id, chunk index and "last chunk" mark. Names are encrypted
//! deterministically per directory under a random name key; directory IDs are
//! derived from the parent ID and name so devices agree on them.
//!
//! The library has no FUSE dependency: `vault` and below are pure, and the
//! `fs` module is a thin adapter. The format is specified in
//! `man/sealfs-format.5`.

pub mod cli;
pub mod crypto;
pub mod error;
pub mod format;
pub mod fs;
pub mod os;
pub mod vault;

pub use error::{Error, Result};

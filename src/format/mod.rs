//! Byte layouts of everything sealfs stores in a vault. Pure functions over
//! bytes; the crypto happens in `crypto`, the I/O in `vault`. The normative
//! description is `man/sealfs-format.5`.
#![forbid(unsafe_code)]

pub mod base64url;
pub mod chunk;
pub mod config;
pub mod conflict;
pub mod dirid;
pub mod header;
pub mod names;
pub mod shares;

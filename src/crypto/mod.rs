//! Cryptographic primitives, composed from audited crates only: AES-256-GCM-SIV
//! (`aes-gcm-siv`), Argon2id (`argon2`), BLAKE3 (`blake3`), X25519 (`x25519-dalek`) and the OS random
//! generator (`getrandom`). Nothing here invents a cipher, MAC or KDF.
#![forbid(unsafe_code)]

mod aead;
mod kdf;
mod keys;
mod slotwrap;

pub use aead::{Cipher, NONCE_LEN, TAG_LEN, open_detached, seal_detached};
pub use kdf::{
    KDF_FLOOR_MEMORY_KIB, KDF_FLOOR_PASSES, KDF_MAX_LANES, KDF_MAX_MEMORY_KIB, KDF_MAX_PASSES,
    KdfParams, argon2id,
};
pub use keys::{KEY_LEN, SecretKey, random_array, random_bytes};
pub use slotwrap::{SEALED_LEN, SealedKey, SlotSecret, constant_time_eq, open_from, seal_to};

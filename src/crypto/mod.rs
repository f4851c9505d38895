//! Cryptographic primitives, composed from audited crates only: AES-256-GCM-SIV
//! (`aes-gcm-siv`), Argon2id (`argon2`), BLAKE3 (`blake3`) and the OS random
//! generator (`getrandom`). Nothing here invents a cipher, MAC or KDF.

mod aead;
mod kdf;
mod keys;

pub use aead::{Cipher, NONCE_LEN, TAG_LEN, open_detached, seal_detached};
pub use kdf::{KDF_FLOOR_MEMORY_KIB, KDF_FLOOR_PASSES, KdfParams, argon2id};
pub use keys::{KEY_LEN, SecretKey, random_array, random_bytes};

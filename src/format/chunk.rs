//! Chunk geometry: where plaintext bytes live in a vault file, and how the
//! plaintext size follows from the ciphertext size alone.
//!
//! ```text
//! file  = header (HEADER_LEN) || chunk 0 || chunk 1 || ... || chunk n-1
//! chunk = nonce (12) || AES-256-GCM-SIV(DEK, plaintext, aad) (len) || tag (16)
//! aad   = file id (16) || chunk index (u64 LE) || last (u8: 1 on the final chunk)
//! ```
//! Every chunk but the last holds exactly `chunk_size` plaintext bytes; the
//! last holds 1..=chunk_size, or 0 only when the file is empty. So a file
//! always has at least one chunk, and truncation at any chunk boundary leaves
//! a final chunk whose `last` bit says otherwise.

use super::header::HEADER_LEN;
use crate::crypto::{NONCE_LEN, TAG_LEN};

/// Bytes a chunk adds to its plaintext.
pub const CHUNK_OVERHEAD: u64 = (NONCE_LEN + TAG_LEN) as u64;
/// Length of the associated data of a chunk.
pub const CHUNK_AAD_LEN: usize = 16 + 8 + 1;

pub const MIN_CHUNK_SIZE: u32 = 4096;
pub const MAX_CHUNK_SIZE: u32 = 1 << 20;

/// The chunk layout of one vault (its chunk size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub chunk_size: u64,
}

impl Geometry {
    /// Accepts powers of two from 4 KiB to 1 MiB.
    pub fn new(chunk_size: u32) -> Option<Self> {
        (chunk_size.is_power_of_two() && (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size))
            .then_some(Geometry {
                chunk_size: u64::from(chunk_size),
            })
    }

    /// Ciphertext bytes of one full chunk.
    pub fn sealed_chunk_len(&self) -> u64 {
        self.chunk_size + CHUNK_OVERHEAD
    }

    /// Offset of chunk `index` in the vault file.
    pub fn chunk_offset(&self, index: u64) -> u64 {
        HEADER_LEN as u64 + index * self.sealed_chunk_len()
    }

    /// Number of chunks a file of `size` plaintext bytes has (at least one).
    pub fn chunk_count(&self, size: u64) -> u64 {
        size.div_ceil(self.chunk_size).max(1)
    }

    /// Index of the final chunk of a file of `size` bytes.
    pub fn last_chunk(&self, size: u64) -> u64 {
        self.chunk_count(size) - 1
    }

    /// Plaintext bytes in chunk `index` of a file of `size` bytes.
    pub fn chunk_plain_len(&self, size: u64, index: u64) -> u64 {
        size.saturating_sub(index * self.chunk_size)
            .min(self.chunk_size)
    }

    /// Ciphertext length of a well-formed file of `size` plaintext bytes.
    pub fn sealed_len(&self, size: u64) -> u64 {
        HEADER_LEN as u64 + size + self.chunk_count(size) * CHUNK_OVERHEAD
    }

    /// Plaintext size of a well-formed file of `sealed` ciphertext bytes, or
    /// `None` if no well-formed file has that length (truncated inside a
    /// chunk's overhead, header only, or an empty chunk after full ones).
    pub fn plain_size(&self, sealed: u64) -> Option<u64> {
        let body = sealed.checked_sub(HEADER_LEN as u64)?;
        let full = body / self.sealed_chunk_len();
        let rem = body % self.sealed_chunk_len();
        match (full, rem) {
            (0, 0) => None,
            (_, 0) => Some(full * self.chunk_size),
            (0, r) if r == CHUNK_OVERHEAD => Some(0),
            (_, r) if r <= CHUNK_OVERHEAD => None,
            (f, r) => Some(f * self.chunk_size + r - CHUNK_OVERHEAD),
        }
    }

    /// Best-effort plaintext size for `stat`: the size of the well-formed
    /// prefix. Reads past a malformed tail fail authentication anyway.
    pub fn plain_size_for_stat(&self, sealed: u64) -> u64 {
        if let Some(s) = self.plain_size(sealed) {
            return s;
        }
        let body = sealed.saturating_sub(HEADER_LEN as u64);
        (body / self.sealed_chunk_len()) * self.chunk_size
    }

    /// The size a mount shows for a vault file of `sealed` bytes. A length no
    /// complete file has (a half-synced download, a header alone) shows one
    /// byte past the well-formed prefix, so a reader reaches the damage and
    /// gets EIO instead of a clean, early end of file.
    pub fn shown_size(&self, sealed: u64) -> u64 {
        match self.plain_size(sealed) {
            Some(s) => s,
            None => self.plain_size_for_stat(sealed) + 1,
        }
    }
}

/// The associated data that binds a chunk to its file, position and finality.
pub fn chunk_aad(file_id: &[u8; 16], index: u64, last: bool) -> [u8; CHUNK_AAD_LEN] {
    let mut a = [0u8; CHUNK_AAD_LEN];
    a[..16].copy_from_slice(file_id);
    a[16..24].copy_from_slice(&index.to_le_bytes());
    a[24] = u8::from(last);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_roundtrips_for_every_shape() {
        let g = Geometry::new(4096).unwrap();
        for size in [
            0u64,
            1,
            4095,
            4096,
            4097,
            8191,
            8192,
            8193,
            1 << 20,
            (1 << 20) + 7,
        ] {
            assert_eq!(g.plain_size(g.sealed_len(size)), Some(size), "size {size}");
        }
    }

    #[test]
    fn malformed_lengths_are_rejected() {
        let g = Geometry::new(4096).unwrap();
        let h = HEADER_LEN as u64;
        assert_eq!(g.plain_size(0), None);
        assert_eq!(g.plain_size(h), None, "header only");
        assert_eq!(g.plain_size(h + 5), None, "inside overhead");
        assert_eq!(
            g.plain_size(h + g.sealed_chunk_len() + 28),
            None,
            "empty chunk after a full one"
        );
        assert_eq!(g.plain_size(h + g.sealed_chunk_len() + 29), Some(4097));
    }

    #[test]
    fn chunk_sizes_are_validated() {
        assert!(Geometry::new(4096).is_some());
        assert!(Geometry::new(1 << 20).is_some());
        assert!(Geometry::new(5000).is_none());
        assert!(Geometry::new(2048).is_none());
        assert!(Geometry::new(2 << 20).is_none());
    }
}

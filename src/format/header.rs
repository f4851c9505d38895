//! The fixed-size file header: the file's own DEK, wrapped under the master
//! key generation named in it. Rewritable in place by `rekey` with one
//! `pwrite` of `HEADER_LEN` bytes (well under one sector).
//!
//! ```text
//! off len
//!   0   4  magic "SFh1"
//!   4   2  format version (u16 LE) = 1
//!   6   2  flags (u16 LE) = 0; any set bit is refused
//!   8   4  master-key generation that wrapped the DEK (u32 LE)
//!  12  16  file id (random; bound into every chunk's aad)
//!  28  16  reserved: written as zero, authenticated, not interpreted by
//!          version 1 (room for a per-file epoch against chunk mixing and
//!          rollback without moving any other field)
//!  44  12  nonce of the DEK wrap
//!  56  48  AES-256-GCM-SIV(wrap key of that generation, DEK, aad = bytes 0..44)
//! 104      end
//! ```

pub const HEADER_LEN: usize = 104;
pub const HEADER_MAGIC: [u8; 4] = *b"SFh1";
pub const HEADER_VERSION: u16 = 1;
/// Bytes of the header covered as associated data by the DEK wrap.
pub const HEADER_AAD_LEN: usize = 44;
const RESERVED: std::ops::Range<usize> = 28..44;
pub const WRAPPED_DEK_LEN: usize = 12 + 32 + 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHeader {
    pub generation: u32,
    pub file_id: [u8; 16],
    /// The reserved bytes as read (authenticated by the DEK wrap).
    pub reserved: [u8; 16],
    /// nonce || wrapped DEK || tag
    pub wrapped_dek: [u8; WRAPPED_DEK_LEN],
}

#[derive(Debug, PartialEq, Eq)]
pub enum HeaderError {
    NotSealfs,
    UnsupportedVersion(u16),
    UnknownFlags(u16),
}

impl FileHeader {
    /// The bytes the DEK wrap authenticates (everything before the nonce).
    pub fn aad(generation: u32, file_id: &[u8; 16], reserved: &[u8; 16]) -> [u8; HEADER_AAD_LEN] {
        let mut a = [0u8; HEADER_AAD_LEN];
        a[..4].copy_from_slice(&HEADER_MAGIC);
        a[4..6].copy_from_slice(&HEADER_VERSION.to_le_bytes());
        a[8..12].copy_from_slice(&generation.to_le_bytes());
        a[12..28].copy_from_slice(file_id);
        a[RESERVED].copy_from_slice(reserved);
        a
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..HEADER_AAD_LEN].copy_from_slice(&Self::aad(
            self.generation,
            &self.file_id,
            &self.reserved,
        ));
        b[HEADER_AAD_LEN..].copy_from_slice(&self.wrapped_dek);
        b
    }

    pub fn decode(b: &[u8]) -> Result<Self, HeaderError> {
        if b.len() < HEADER_LEN || b[..4] != HEADER_MAGIC {
            return Err(HeaderError::NotSealfs);
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != HEADER_VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let flags = u16::from_le_bytes([b[6], b[7]]);
        if flags != 0 {
            return Err(HeaderError::UnknownFlags(flags));
        }
        let mut file_id = [0u8; 16];
        file_id.copy_from_slice(&b[12..28]);
        let mut reserved = [0u8; 16];
        reserved.copy_from_slice(&b[RESERVED]);
        let mut wrapped_dek = [0u8; WRAPPED_DEK_LEN];
        wrapped_dek.copy_from_slice(&b[HEADER_AAD_LEN..HEADER_LEN]);
        Ok(FileHeader {
            generation: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            file_id,
            reserved,
            wrapped_dek,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_refusals() {
        let h = FileHeader {
            generation: 7,
            file_id: [9; 16],
            reserved: [0; 16],
            wrapped_dek: [5; WRAPPED_DEK_LEN],
        };
        let b = h.encode();
        assert_eq!(FileHeader::decode(&b).unwrap(), h);
        let mut v = b;
        v[4] = 2;
        assert_eq!(
            FileHeader::decode(&v),
            Err(HeaderError::UnsupportedVersion(2))
        );
        let mut f = b;
        f[6] = 1;
        assert_eq!(FileHeader::decode(&f), Err(HeaderError::UnknownFlags(1)));
        assert_eq!(FileHeader::decode(b"hello"), Err(HeaderError::NotSealfs));
    }
}

//! The unlocked key material of a vault and the purpose-bound subkeys
//! derived from each master key.

use crate::crypto::{Cipher, NONCE_LEN, SecretKey, TAG_LEN};
use crate::error::{Error, Result};
use crate::format::chunk::Geometry;
use crate::format::dirid::DirId;
use crate::format::header::{FileHeader, WRAPPED_DEK_LEN};
use crate::format::names::NameCodec;

/// BLAKE3 `derive_key` contexts: one purpose, one key.
pub(crate) mod context {
    pub const FILE_KEY_WRAP: &str = "sealfs v1 2026-11 file key wrap";
    pub const VAULT_KEY_WRAP: &str = "sealfs v1 2026-11 vault key wrap";
    pub const RETIRED_KEY_WRAP: &str = "sealfs v1 2026-11 retired master key wrap";
    pub const CONFIG_MAC: &str = "sealfs v1 2026-11 config mac";
    pub const RECOVERY_SLOT: &str = "sealfs v1 2026-11 recovery slot";
}

/// Everything needed to read and write a vault, derived once at unlock.
pub struct VaultKeys {
    pub geometry: Geometry,
    /// The generation new headers are wrapped with.
    pub generation: u32,
    /// DEK-wrap ciphers of every readable generation (the current one and
    /// any retired ones still named by headers during a rekey).
    wraps: Vec<(u32, Cipher)>,
    pub names: NameCodec,
    pub dirid_key: SecretKey,
    pub root_id: DirId,
}

impl VaultKeys {
    pub(crate) fn new(
        geometry: Geometry,
        generation: u32,
        master_keys: &[(u32, SecretKey)],
        name_key: &SecretKey,
        dirid_key: SecretKey,
    ) -> Self {
        VaultKeys {
            geometry,
            generation,
            wraps: master_keys
                .iter()
                .map(|(g, mk)| (*g, Cipher::new(&mk.derive(context::FILE_KEY_WRAP))))
                .collect(),
            names: NameCodec::new(name_key),
            root_id: DirId::root(&dirid_key),
            dirid_key,
        }
    }

    fn wrap_cipher(&self, generation: u32) -> Option<&Cipher> {
        self.wraps
            .iter()
            .find(|(g, _)| *g == generation)
            .map(|(_, c)| c)
    }

    /// A header for a new file with a fresh random DEK and file id.
    pub fn new_file(&self) -> Result<(FileHeader, Cipher)> {
        let dek = SecretKey::random()?;
        let file_id = crate::crypto::random_array::<16>()?;
        let header = self.wrap_dek(&dek, file_id)?;
        Ok((header, Cipher::new(&dek)))
    }

    /// Wraps `dek` under the current generation.
    pub fn wrap_dek(&self, dek: &SecretKey, file_id: [u8; 16]) -> Result<FileHeader> {
        let cipher = self
            .wrap_cipher(self.generation)
            .ok_or_else(|| Error::Config("current master key generation is missing".into()))?;
        let mut w = [0u8; WRAPPED_DEK_LEN];
        w[NONCE_LEN..NONCE_LEN + 32].copy_from_slice(dek.expose());
        let aad = FileHeader::aad(self.generation, &file_id);
        let (nonce, tag) = cipher.seal(&aad, &mut w[NONCE_LEN..NONCE_LEN + 32])?;
        w[..NONCE_LEN].copy_from_slice(&nonce);
        w[NONCE_LEN + 32..].copy_from_slice(&tag);
        Ok(FileHeader {
            generation: self.generation,
            file_id,
            wrapped_dek: w,
        })
    }

    /// Unwraps a header's DEK; `None` if the generation is unknown or the wrap is inauthentic.
    pub fn unwrap_dek(&self, h: &FileHeader) -> Option<SecretKey> {
        let cipher = self.wrap_cipher(h.generation)?;
        let mut body = [0u8; 32];
        body.copy_from_slice(&h.wrapped_dek[NONCE_LEN..NONCE_LEN + 32]);
        let nonce: [u8; NONCE_LEN] = h.wrapped_dek[..NONCE_LEN].try_into().ok()?;
        let tag: [u8; TAG_LEN] = h.wrapped_dek[NONCE_LEN + 32..].try_into().ok()?;
        let ok = cipher.open(
            &nonce,
            &FileHeader::aad(h.generation, &h.file_id),
            &mut body,
            &tag,
        );
        let key = SecretKey::from_bytes(&mut body);
        ok.then_some(key)
    }
}

//! The unlocked key material of a vault and the purpose-bound subkeys
//! derived from each master key.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::crypto::{Cipher, NONCE_LEN, SecretKey, TAG_LEN};
use crate::error::{Error, Result};
use crate::format::chunk::Geometry;
use crate::format::config::ConfigFile;
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
    pub const DIRID_FILE_MAC: &str = "sealfs v1 2026-11 dir id file mac";
    pub const RECOVERY_AUTH: &str = "sealfs v1 2026-11 recovery slot auth key wrap";
}

/// The secrets an unlocked config yields.
pub struct MasterKeys {
    /// The slot that opened the config.
    pub slot: u16,
    pub current: SecretKey,
    /// Older generations still readable: `(generation, MK)`.
    pub retired: Vec<(u32, SecretKey)>,
    pub name_key: SecretKey,
    pub dirid_key: SecretKey,
    /// The vault auth key: every slot holds it; the config MAC is keyed by it.
    pub auth: SecretKey,
    /// During `rekey --full`: the name and dir-id keys being replaced.
    pub previous: Option<(SecretKey, SecretKey)>,
}

/// The name keys `rekey --full` is replacing, to read what it has not reached yet.
pub struct PreviousNames {
    pub names: NameCodec,
    pub dirid_mac: SecretKey,
    pub root_id: DirId,
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
    /// Authenticates `.sealfs.dir` files.
    pub dirid_mac: SecretKey,
    pub root_id: DirId,
    pub vault_id: [u8; 16],
    /// The vault root (long symlink targets live under it).
    pub(crate) root: Arc<OwnedFd>,
    /// Only while a `rekey --full` is unfinished.
    pub previous: Option<PreviousNames>,
}

impl VaultKeys {
    pub(crate) fn new(cfg: &ConfigFile, m: &MasterKeys, root: Arc<OwnedFd>) -> Result<Self> {
        let geometry = Geometry::new(cfg.chunk_size)
            .ok_or_else(|| Error::Config(format!("invalid chunk size {}", cfg.chunk_size)))?;
        let mut wraps = vec![(
            cfg.generation,
            Cipher::new(&m.current.derive(context::FILE_KEY_WRAP)),
        )];
        for (g, mk) in &m.retired {
            wraps.push((*g, Cipher::new(&mk.derive(context::FILE_KEY_WRAP))));
        }
        Ok(VaultKeys {
            geometry,
            generation: cfg.generation,
            wraps,
            names: NameCodec::new(&m.name_key, usize::from(cfg.longname_max)),
            root_id: DirId::root(&m.dirid_key),
            dirid_key: m.dirid_key.clone(),
            dirid_mac: m.dirid_key.derive(context::DIRID_FILE_MAC),
            vault_id: cfg.vault_id,
            root,
            previous: m.previous.as_ref().map(|(name, dirid)| PreviousNames {
                names: NameCodec::new(name, usize::from(cfg.longname_max)),
                dirid_mac: dirid.derive(context::DIRID_FILE_MAC),
                root_id: DirId::root(dirid),
            }),
        })
    }

    /// The generations this key set can unwrap.
    pub fn generations(&self) -> impl Iterator<Item = u32> + '_ {
        self.wraps.iter().map(|(g, _)| *g)
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
        let header = self.wrap_dek(&dek, file_id, [0; 16])?;
        Ok((header, Cipher::new(&dek)))
    }

    /// Wraps `dek` under the current generation, keeping the header's
    /// reserved bytes (a later version's, which rekey must not lose).
    pub fn wrap_dek(
        &self,
        dek: &SecretKey,
        file_id: [u8; 16],
        reserved: [u8; 16],
    ) -> Result<FileHeader> {
        let cipher = self
            .wrap_cipher(self.generation)
            .ok_or_else(|| Error::Config("current master key generation is missing".into()))?;
        let mut w = [0u8; WRAPPED_DEK_LEN];
        w[NONCE_LEN..NONCE_LEN + 32].copy_from_slice(dek.expose());
        let aad = FileHeader::aad(self.generation, &file_id, &reserved);
        let (nonce, tag) = cipher.seal(&aad, &mut w[NONCE_LEN..NONCE_LEN + 32])?;
        w[..NONCE_LEN].copy_from_slice(&nonce);
        w[NONCE_LEN + 32..].copy_from_slice(&tag);
        Ok(FileHeader {
            generation: self.generation,
            file_id,
            reserved,
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
            &FileHeader::aad(h.generation, &h.file_id, &h.reserved),
            &mut body,
            &tag,
        );
        let key = SecretKey::from_bytes(&mut body);
        ok.then_some(key)
    }
}

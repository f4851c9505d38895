//! Symlink targets: sealed inline in the vault symlink, or, when the sealed
//! encoding is too long for the backing filesystem, in a content-addressed
//! file under `.sealfs.links/` at the vault root (see sealfs-format(5)).

use std::os::fd::AsFd;

use crate::error::Result;
use crate::format::base64url;
use crate::format::names::{
    LINKS_DIR, LONG_PREFIX, MAX_INLINE_TARGET, TargetRef, stored_target_name, target_ref,
};

use super::keys::VaultKeys;
use super::sys;

impl VaultKeys {
    /// Seals `target` and returns what the vault symlink should point to,
    /// writing the store file first when the target is long.
    pub fn store_target(&self, target: &[u8]) -> Result<Vec<u8>> {
        let sealed = self.names.seal_target(target)?;
        let inline = base64url::encode(&sealed);
        if inline.len() <= MAX_INLINE_TARGET {
            return Ok(inline.into_bytes());
        }
        let root = self.root.as_fd();
        match sys::mkdirat(root, LINKS_DIR.as_bytes(), 0o700) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let dir = sys::open_subdir(root, LINKS_DIR.as_bytes())?;
        let name = stored_target_name(&sealed);
        sys::write_atomic(dir.as_fd(), &name, &sealed, 0o600)?;
        Ok(format!("{LONG_PREFIX}{name}").into_bytes())
    }

    /// Opens a vault symlink's target; `None` unless it is authentic. During
    /// a `rekey --full`, targets it has not reached open with the previous key.
    pub fn read_target(&self, raw: &[u8]) -> Option<Vec<u8>> {
        self.read_target_with(&self.names, raw).or_else(|| {
            let p = self.previous.as_ref()?;
            self.read_target_with(&p.names, raw)
        })
    }

    /// Opens a target with one particular codec.
    pub(crate) fn read_target_with(
        &self,
        names: &crate::format::names::NameCodec,
        raw: &[u8],
    ) -> Option<Vec<u8>> {
        match target_ref(raw) {
            TargetRef::Inline(enc) => names.open_target(&base64url::decode(enc)?),
            TargetRef::Stored(name) => {
                let dir = sys::open_subdir(self.root.as_fd(), LINKS_DIR.as_bytes()).ok()?;
                let sealed = sys::read_small_file(dir.as_fd(), name.as_bytes(), 8192).ok()?;
                if stored_target_name(&sealed) != name {
                    return None;
                }
                names.open_target(&sealed)
            }
        }
    }
}

//! Key slots: making a password or recovery slot, opening one, and sealing
//! the master key to every slot of a config.

use crate::crypto::{
    KdfParams, SecretKey, SlotSecret, argon2id, open_detached, open_from, random_array,
    seal_detached, seal_to,
};
use crate::error::{Error, Result};
use crate::format::config::{ConfigFile, PasswordSlot, SALT_LEN, Slot, SlotKind, WRAPPED_KEY_LEN};

use super::keys::context;

/// What unlocks a vault.
pub enum Secret<'a> {
    Password(&'a [u8]),
    RecoveryKey(&'a SecretKey),
}

fn wrapped<const N: usize>(v: Vec<u8>) -> Result<[u8; N]> {
    v.try_into()
        .map_err(|_| Error::Config("internal: wrapped key length".into()))
}

fn kdf_of(p: &PasswordSlot) -> KdfParams {
    KdfParams {
        memory_kib: p.memory_kib,
        passes: p.passes,
        lanes: p.lanes,
    }
}

/// A new password slot with its own key pair and salt. The MK is sealed to
/// it later by `seal_slots`.
pub fn password_slot(cfg: &ConfigFile, id: u16, password: &[u8], kdf: KdfParams) -> Result<Slot> {
    kdf.check().map_err(Error::Config)?;
    let secret = SlotSecret::random()?;
    let public = secret.public();
    let mut p = PasswordSlot {
        memory_kib: kdf.memory_kib,
        passes: kdf.passes,
        lanes: kdf.lanes,
        salt: random_array::<SALT_LEN>()?,
        wrapped_secret: [0; WRAPPED_KEY_LEN],
    };
    let kek = argon2id(password, &p.salt, kdf).map_err(Error::Config)?;
    let aad = cfg.password_aad(id, &p, &public);
    p.wrapped_secret = wrapped(seal_detached(&kek, &aad, secret.to_key().expose())?)?;
    Ok(Slot {
        id,
        kind: SlotKind::Password(p),
        public,
        mk: placeholder(),
    })
}

/// A new recovery slot and the recovery key that opens it.
pub fn recovery_slot(id: u16) -> Result<(Slot, SecretKey)> {
    let rk = SecretKey::random()?;
    let public = SlotSecret::derived(&rk, context::RECOVERY_SLOT).public();
    Ok((
        Slot {
            id,
            kind: SlotKind::Recovery,
            public,
            mk: placeholder(),
        },
        rk,
    ))
}

fn placeholder() -> crate::crypto::SealedKey {
    crate::crypto::SealedKey {
        ephemeral: [0; 32],
        sealed: [0; WRAPPED_KEY_LEN],
        commitment: [0; 32],
    }
}

/// Seals `mk` to every slot (each slot's public key; no secret needed).
pub fn seal_slots(cfg: &mut ConfigFile, mk: &SecretKey) -> Result<()> {
    let mut slots = std::mem::take(&mut cfg.slots);
    for s in &mut slots {
        let aad = cfg.slot_aad(s.id, s.kind.code(), &s.public);
        s.mk = seal_to(&s.public, &aad, mk)?;
    }
    cfg.slots = slots;
    Ok(())
}

/// The private key of `slot` for `secret`, if the secret is of the slot's kind.
fn slot_secret(cfg: &ConfigFile, slot: &Slot, secret: &Secret<'_>) -> Result<Option<SlotSecret>> {
    match (&slot.kind, secret) {
        (SlotKind::Password(p), Secret::Password(pw)) => {
            let kek = argon2id(pw, &p.salt, kdf_of(p)).map_err(Error::Config)?;
            let aad = cfg.password_aad(slot.id, p, &slot.public);
            Ok(open_detached(&kek, &aad, &p.wrapped_secret)
                .and_then(|b| SecretKey::from_slice(&zeroize::Zeroizing::new(b)))
                .map(|k| SlotSecret::from_key(&k)))
        }
        (SlotKind::Recovery, Secret::RecoveryKey(rk)) => {
            Ok(Some(SlotSecret::derived(rk, context::RECOVERY_SLOT)))
        }
        _ => Ok(None),
    }
}

/// Opens the master key from the first slot `secret` opens: `(slot id, MK)`.
/// A wrong secret and a tampered slot are the same error.
pub fn open_slots(cfg: &ConfigFile, secret: &Secret<'_>) -> Result<(u16, SecretKey)> {
    let mut any = false;
    for slot in &cfg.slots {
        if let SlotKind::Password(p) = &slot.kind {
            // Refuse a hostile KDF before any work, even for other slots.
            kdf_of(p).check().map_err(Error::Config)?;
        }
    }
    for slot in &cfg.slots {
        let Some(ss) = slot_secret(cfg, slot, secret)? else {
            continue;
        };
        any = true;
        if ss.public() != slot.public {
            continue;
        }
        let aad = cfg.slot_aad(slot.id, slot.kind.code(), &slot.public);
        if let Some(mk) = open_from(&ss, &aad, &slot.mk) {
            return Ok((slot.id, mk));
        }
    }
    if !any && matches!(secret, Secret::RecoveryKey(_)) {
        return Err(Error::Config("this vault has no recovery key slot".into()));
    }
    Err(Error::WrongPassword)
}

//! Key slots: making a password or recovery slot, opening one, and sealing
//! the master key to every slot of a config.
//!
//! Every slot also holds the vault auth key under its own secret; the config
//! MAC is keyed by it, so a master key sealed to a slot's public key by
//! anyone who holds no slot secret is refused (see sealfs-format(5)).

use zeroize::Zeroizing;

use crate::crypto::{
    KdfParams, SecretKey, SlotSecret, argon2id, open_detached, open_from, random_array,
    seal_detached, seal_to,
};
use crate::error::{Error, Result};
use crate::format::config::{
    ConfigFile, PasswordSlot, RecoverySlot, SALT_LEN, Slot, SlotKind, WRAPPED_KEY_LEN,
    WRAPPED_SECRET_LEN,
};

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

/// A new password slot with its own key pair and salt, holding `auth`. The
/// MK is sealed to it later by `seal_slots`.
pub fn password_slot(
    cfg: &ConfigFile,
    id: u16,
    password: &[u8],
    kdf: KdfParams,
    auth: &SecretKey,
) -> Result<Slot> {
    kdf.check().map_err(Error::Config)?;
    let secret = SlotSecret::random()?;
    let public = secret.public();
    let mut p = PasswordSlot {
        memory_kib: kdf.memory_kib,
        passes: kdf.passes,
        lanes: kdf.lanes,
        salt: random_array::<SALT_LEN>()?,
        wrapped_secret: [0; WRAPPED_SECRET_LEN],
    };
    let kek = argon2id(password, &p.salt, kdf).map_err(Error::Config)?;
    let aad = cfg.password_aad(id, &p, &public);
    let mut both = Zeroizing::new([0u8; 64]);
    both[..32].copy_from_slice(secret.to_key().expose());
    both[32..].copy_from_slice(auth.expose());
    p.wrapped_secret = wrapped(seal_detached(&kek, &aad, &both[..])?)?;
    Ok(Slot {
        id,
        kind: SlotKind::Password(p),
        public,
        mk: placeholder(),
    })
}

/// A new recovery slot holding `auth`, and the recovery key that opens it.
pub fn recovery_slot(cfg: &ConfigFile, id: u16, auth: &SecretKey) -> Result<(Slot, SecretKey)> {
    let rk = SecretKey::random()?;
    let public = SlotSecret::derived(&rk, context::RECOVERY_SLOT).public();
    let aad = cfg.recovery_aad(id, &public);
    let wrapped_auth = wrapped(seal_detached(
        &rk.derive(context::RECOVERY_AUTH),
        &aad,
        auth.expose(),
    )?)?;
    Ok((
        Slot {
            id,
            kind: SlotKind::Recovery(RecoverySlot { wrapped_auth }),
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

/// The private key and the vault auth key of `slot` for `secret`, if the
/// secret is of the slot's kind and opens it.
fn slot_secret(
    cfg: &ConfigFile,
    slot: &Slot,
    secret: &Secret<'_>,
) -> Result<Option<Option<(SlotSecret, SecretKey)>>> {
    match (&slot.kind, secret) {
        (SlotKind::Password(p), Secret::Password(pw)) => {
            let kek = argon2id(pw, &p.salt, kdf_of(p)).map_err(Error::Config)?;
            let aad = cfg.password_aad(slot.id, p, &slot.public);
            let Some(both) = open_detached(&kek, &aad, &p.wrapped_secret).map(Zeroizing::new)
            else {
                return Ok(Some(None));
            };
            let (Some(sk), Some(auth)) = (
                SecretKey::from_slice(&both[..32]),
                SecretKey::from_slice(&both[32..]),
            ) else {
                return Ok(Some(None));
            };
            Ok(Some(Some((SlotSecret::from_key(&sk), auth))))
        }
        (SlotKind::Recovery(r), Secret::RecoveryKey(rk)) => {
            let ss = SlotSecret::derived(rk, context::RECOVERY_SLOT);
            let aad = cfg.recovery_aad(slot.id, &slot.public);
            Ok(Some(
                open_detached(&rk.derive(context::RECOVERY_AUTH), &aad, &r.wrapped_auth)
                    .and_then(|b| SecretKey::from_slice(&Zeroizing::new(b)))
                    .map(|auth| (ss, auth)),
            ))
        }
        _ => Ok(None),
    }
}

/// The largest total key-derivation work (MiB × passes over all password
/// slots) unlock will do for one wrong password: a household's ten slots at
/// the defaults fit; a planted config of many slots at the cap does not.
pub const KDF_WORK_BUDGET_MIB_PASSES: u64 = 16 * 1024;

/// Opens the master key from the first slot `secret` opens:
/// `(slot id, MK, vault auth key)`. A wrong secret and a tampered slot are
/// the same error.
pub fn open_slots(cfg: &ConfigFile, secret: &Secret<'_>) -> Result<(u16, SecretKey, SecretKey)> {
    let mut work = 0u64;
    for slot in &cfg.slots {
        if let SlotKind::Password(p) = &slot.kind {
            // Refuse a hostile KDF before any work, even for other slots.
            kdf_of(p).check().map_err(Error::Config)?;
            work += u64::from(p.memory_kib / 1024) * u64::from(p.passes);
        }
    }
    if work > KDF_WORK_BUDGET_MIB_PASSES {
        return Err(Error::Config(format!(
            "the config's password slots ask for {work} MiB-passes of key derivation in all, more \
             than the {KDF_WORK_BUDGET_MIB_PASSES} sealfs allows; the config was tampered with"
        )));
    }
    let mut any = false;
    for slot in &cfg.slots {
        let Some(opened) = slot_secret(cfg, slot, secret)? else {
            continue;
        };
        any = true;
        let Some((ss, auth)) = opened else { continue };
        if ss.public() != slot.public {
            continue;
        }
        let aad = cfg.slot_aad(slot.id, slot.kind.code(), &slot.public);
        if let Some(mk) = open_from(&ss, &aad, &slot.mk) {
            return Ok((slot.id, mk, auth));
        }
    }
    if !any && matches!(secret, Secret::RecoveryKey(_)) {
        return Err(Error::Config("this vault has no recovery key slot".into()));
    }
    Err(Error::WrongPassword)
}

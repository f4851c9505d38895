//! Vault entry names, `.name` sidecars, symlink targets and extended
//! attributes as they come from the vault directory: classified, decoded
//! or refused, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealfs::crypto::SecretKey;
use sealfs::format::{base64url, dirid::DirId, names};

fuzz_target!(|data: &[u8]| {
    let key = SecretKey::from_slice(&[9; 32]).unwrap();
    let codec = names::NameCodec::new(&key, 200);
    let dir = DirId::root(&key);
    let _ = names::classify(data, true);
    let _ = names::classify(data, false);
    let _ = names::target_ref(data);
    let _ = base64url::decode(data);
    if let Some(plain) = codec.decode(&dir, data) {
        assert!(names::valid_plain_name(&plain).is_ok());
    }
    let _ = codec.decode_xattr_name(data);
    let _ = codec.open_target(data);
    let _ = codec.open_xattr(b"name", data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = names::is_config_name(s);
        let _ = names::hashed_long_name(s);
    }
});

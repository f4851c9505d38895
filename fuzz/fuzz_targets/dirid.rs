//! A directory-ID file: only an authentic one decodes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealfs::crypto::SecretKey;
use sealfs::format::dirid::DirId;

fuzz_target!(|data: &[u8]| {
    let key = SecretKey::from_slice(&[7; 32]).unwrap();
    if let Some(id) = DirId::decode(data, &key) {
        // Forging a MAC is not something a fuzzer does: only re-encodings
        // of a real ID pass.
        assert_eq!(&id.encode(&key)[..], data);
    }
});

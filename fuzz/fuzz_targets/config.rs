//! `sealfs.conf` (the slot table included): any bytes decode or are
//! refused; what decodes encodes back to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealfs::format::config::ConfigFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = ConfigFile::decode(data) {
        let again = c.encode();
        let c2 = ConfigFile::decode(&again).expect("an encoded config decodes");
        assert_eq!(c2.encode(), again);
    }
});

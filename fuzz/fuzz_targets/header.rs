//! A file header: any bytes decode or are refused, never panic; what
//! decodes encodes back to the bytes it came from.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealfs::format::header::{FileHeader, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = FileHeader::decode(data) {
        assert_eq!(&h.encode()[..], &data[..HEADER_LEN]);
    }
});

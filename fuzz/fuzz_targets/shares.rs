//! Shamir recovery shares as a user pastes them: parsed or refused, and any
//! set of parsed shares combines or is refused, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealfs::format::shares;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed: Vec<_> = text.split('\n').filter_map(|l| shares::parse(l).ok()).collect();
    let _ = shares::combine(&parsed);
});

//! Sync tools' conflict-copy names: every split, label and shown name of
//! any name stays within bounds and valid UTF-8.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealfs::format::conflict;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    for s in conflict::splits(raw) {
        let label = conflict::label(s.marker);
        let tag = conflict::tag(raw, 6);
        let shown = conflict::shown_name(b"report.odt", &label, &tag, true);
        assert!(shown.len() <= 255, "{} bytes", shown.len());
        assert!(std::str::from_utf8(&shown).is_ok());
    }
    let _ = conflict::dirid_copy_marker(raw);
});

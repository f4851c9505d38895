//! Unpadded base64url (RFC 4648 §5): the alphabet of encrypted names, safe
//! in file names on every platform sync tools run on (no `/`, `+`, `=`),
//! through the `base64` crate.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn encode(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// True if `c` belongs to the alphabet.
pub fn is_alphabet(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// Decodes canonical unpadded base64url (the unused low bits of the last
/// character zero, no padding); `None` on any other input.
pub fn decode(s: &[u8]) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"f"), "Zg");
        assert_eq!(encode(b"fo"), "Zm8");
        assert_eq!(encode(b"foo"), "Zm9v");
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
        for n in 0..40u8 {
            let v: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(decode(encode(&v).as_bytes()).unwrap(), v);
        }
    }

    #[test]
    fn rejects_non_canonical_and_foreign() {
        assert!(decode(b"Zh").is_none());
        assert!(decode(b"Z").is_none());
        assert!(decode(b"Zm9v=").is_none());
        assert!(decode(b"a b").is_none());
    }
}

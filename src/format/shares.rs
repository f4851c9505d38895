//! Shamir shares of a recovery key, as text a person can copy:
//!
//! ```text
//! sealfs-share-1-<split id, 8 hex>-<threshold K>-<count N>-<x, 2 hex>-<y, 64 hex>-<check, 8 hex>
//! ```
//!
//! The split id is random per split, so shares of two different splits are
//! named as such; the check is the first 4 bytes of BLAKE3 of everything
//! before it, so a mistyped share is named, not silently wrong.

use blahaj::{Share, Sharks};
use zeroize::Zeroizing;

use crate::crypto::SecretKey;

const PREFIX: &str = "sealfs-share-1-";

/// One parsed share.
pub struct ParsedShare {
    // (no Debug: it holds secret share bytes)
    pub split: [u8; 4],
    pub threshold: u8,
    pub count: u8,
    share: Share,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn check(body: &str) -> String {
    hex(&blake3::hash(body.as_bytes()).as_bytes()[..4])
}

/// Splits `key` into `count` shares, any `threshold` of which recover it.
pub fn split(key: &SecretKey, threshold: u8, count: u8) -> Result<Vec<String>, String> {
    if threshold < 2 || count < threshold {
        return Err(format!(
            "--threshold must be at least 2 and at most --split (got {threshold} of {count})"
        ));
    }
    let split: [u8; 4] = crate::crypto::random_array().map_err(|e| e.to_string())?;
    Ok(Sharks(threshold)
        .dealer(key.expose())
        .take(usize::from(count))
        .map(|s| {
            let bytes = Zeroizing::new(Vec::from(&s));
            let body = format!(
                "{PREFIX}{}-{threshold}-{count}-{:02x}-{}",
                hex(&split),
                bytes[0],
                hex(&bytes[1..])
            );
            let c = check(&body);
            format!("{body}-{c}")
        })
        .collect())
}

/// Parses one share; the error names what is wrong with it.
pub fn parse(text: &str) -> Result<ParsedShare, String> {
    let t: String = text.split_whitespace().collect();
    let t = t.to_ascii_lowercase();
    let Some(rest) = t.strip_prefix(PREFIX) else {
        return Err("not a sealfs recovery-key share (it starts with \"sealfs-share-1-\")".into());
    };
    let (body_rest, c) = rest.rsplit_once('-').ok_or("the share is incomplete")?;
    let body = format!("{PREFIX}{body_rest}");
    if check(&body) != c {
        return Err("the share has a typo: its checksum (last group) does not match".into());
    }
    let parts: Vec<&str> = body_rest.split('-').collect();
    let [split, k, n, x, y] = parts[..] else {
        return Err("the share is malformed".into());
    };
    let bad = || "the share is malformed".to_string();
    let split: [u8; 4] = unhex(split)
        .and_then(|v| v.try_into().ok())
        .ok_or_else(bad)?;
    let threshold: u8 = k.parse().map_err(|_| bad())?;
    let count: u8 = n.parse().map_err(|_| bad())?;
    let mut bytes = Zeroizing::new(unhex(x).ok_or_else(bad)?);
    bytes.extend_from_slice(&Zeroizing::new(unhex(y).ok_or_else(bad)?));
    if bytes.len() != 33 || bytes[0] == 0 {
        return Err(bad());
    }
    let share = Share::try_from(&bytes[..]).map_err(|_| bad())?;
    Ok(ParsedShare {
        split,
        threshold,
        count,
        share,
    })
}

/// Recovers the key from shares of one split.
pub fn combine(shares: &[ParsedShare]) -> Result<SecretKey, String> {
    let first = shares.first().ok_or("no shares given")?;
    if shares.iter().any(|s| s.split != first.split) {
        return Err("the shares come from two different splits".into());
    }
    for (i, s) in shares.iter().enumerate() {
        if shares[..i].iter().any(|o| o.share.x.0 == s.share.x.0) {
            return Err(format!("share {} is given twice", s.share.x.0));
        }
    }
    if shares.len() < usize::from(first.threshold) {
        return Err(format!(
            "{} of the {} shares are needed; {} given",
            first.threshold,
            first.count,
            shares.len()
        ));
    }
    let v = Zeroizing::new(
        Sharks(first.threshold)
            .recover(shares.iter().map(|s| &s.share))
            .map_err(|e| e.to_string())?,
    );
    SecretKey::from_slice(&v).ok_or_else(|| "recovered key has the wrong length".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_parse_combine() {
        let k = SecretKey::from_slice(&[7; 32]).unwrap();
        let s = split(&k, 3, 5).unwrap();
        let p: Vec<_> = s.iter().map(|x| parse(x).unwrap()).collect();
        let got = combine(&[p.remove_at(4), p.remove_at(0), p.remove_at(2)]);
        assert_eq!(got.unwrap().expose(), k.expose());
    }

    trait RemoveAt {
        fn remove_at(&self, i: usize) -> ParsedShare;
    }
    impl RemoveAt for Vec<ParsedShare> {
        fn remove_at(&self, i: usize) -> ParsedShare {
            ParsedShare {
                split: self[i].split,
                threshold: self[i].threshold,
                count: self[i].count,
                share: self[i].share.clone(),
            }
        }
    }

    #[test]
    fn typos_duplicates_mixed_splits_and_too_few_are_named() {
        let k = SecretKey::from_slice(&[7; 32]).unwrap();
        let a = split(&k, 2, 3).unwrap();
        let b = split(&k, 2, 3).unwrap();
        let mut typo = a[0].clone().into_bytes();
        let i = 30;
        typo[i] = if typo[i] == b'0' { b'1' } else { b'0' };
        assert!(
            parse(std::str::from_utf8(&typo).unwrap())
                .err()
                .unwrap()
                .contains("typo")
        );
        let pa: Vec<_> = a.iter().map(|x| parse(x).unwrap()).collect();
        let pb: Vec<_> = b.iter().map(|x| parse(x).unwrap()).collect();
        assert!(
            combine(&[pa.remove_at(0), pb.remove_at(1)])
                .unwrap_err()
                .contains("different splits")
        );
        assert!(
            combine(&[pa.remove_at(0), pa.remove_at(0)])
                .unwrap_err()
                .contains("twice")
        );
        assert!(combine(&[pa.remove_at(0)]).unwrap_err().contains("needed"));
        assert!(parse("hello").err().unwrap().contains("not a sealfs"));
    }
}

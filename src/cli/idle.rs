//! `sealfs mount --idle-timeout`: unmount after no use for a while. The
//! unmount is an ordinary one, so the kernel flushes and the daemon writes
//! everything before it exits; a mount still in use (a file open, a shell's
//! working directory) is busy and is tried again later.

use std::time::Duration;

use super::fuse_mount;
use crate::{Error, Result};

/// Parses `90s`, `10m`, `2h`, `1h30m`, `1d` or plain seconds (`45`).
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (examples: 90s, 10m, 1h30m)");
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return if n == 0 {
            Err(bad())
        } else {
            Ok(Duration::from_secs(n))
        };
    }
    let (mut total, mut num) = (0u64, String::new());
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        num.clear();
    }
    if !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Starts the thread that unmounts our mount once no request has come for
/// `idle`; it ends with the mount.
pub fn watch(ours: fuse_mount::Ours, idle: Duration) -> Result<()> {
    // Checked a few times per timeout, at most once a second.
    let tick = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    std::thread::Builder::new()
        .name("sealfs-idle".into())
        .spawn(move || {
            let mut told = false;
            loop {
                std::thread::sleep(tick);
                if ours.device().is_none() || crate::fs::idle_for() < idle {
                    continue;
                }
                if !ours.is_mounted() {
                    return;
                }
                match ours.unmount() {
                    Ok(()) => {
                        log::info!("idle for {idle:?}: unmounted");
                        return;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        if !told {
                            log::info!("idle for {idle:?} but in use; unmounting once it is free");
                            told = true;
                        }
                    }
                    Err(e) => log::warn!("idle unmount: {e}"),
                }
            }
        })
        .map_err(|e| Error::Config(format!("cannot start the idle timer: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "0", "0s", "m", "10x", "1.5h", "-3s", "10m5"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}

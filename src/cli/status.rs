//! What a mount daemon records about itself in the private runtime
//! directory (`vault::runtime`), and `sealfs status`, which reads it back.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::vault::runtime;

/// One mount daemon's record: its pid file, as `key=value` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub pid: i32,
    pub vault: PathBuf,
    pub mountpoint: PathBuf,
    /// The vault ID, hex.
    pub vault_id: String,
    pub read_only: bool,
    /// When the mount started (seconds since the epoch).
    pub started: u64,
}

impl Record {
    pub fn to_text(&self) -> String {
        format!(
            "pid={}\nvault={}\nmountpoint={}\nvault_id={}\nread_only={}\nstarted={}\n",
            self.pid,
            self.vault.display(),
            self.mountpoint.display(),
            self.vault_id,
            self.read_only,
            self.started
        )
    }

    /// Parses a record; a file holding only a pid (older sealfs) gives that pid.
    pub fn parse(text: &str) -> Option<Record> {
        if let Ok(pid) = text.trim().parse() {
            return Some(Record {
                pid,
                vault: PathBuf::new(),
                mountpoint: PathBuf::new(),
                vault_id: String::new(),
                read_only: false,
                started: 0,
            });
        }
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
        };
        Some(Record {
            pid: get("pid")?.parse().ok()?,
            vault: PathBuf::from(get("vault")?),
            mountpoint: PathBuf::from(get("mountpoint")?),
            vault_id: get("vault_id")?.to_string(),
            read_only: get("read_only")? == "true",
            started: get("started")?.parse().ok()?,
        })
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether `pid` is a live sealfs mount daemon.
fn alive(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let args: Vec<&[u8]> = c.split(|&b| b == 0).collect();
        args.len() > 1 && args[0].ends_with(b"sealfs") && args[1] == b"mount"
    })
}

fn mounted(mnt: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts").is_ok_and(|m| {
        m.lines().any(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.len() > 2 && f[2].starts_with("fuse") && Path::new(&unescape(f[1])) == mnt
        })
    })
}

/// /proc/mounts escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The live mounts of this user, from the runtime directory.
pub fn mounts() -> Result<Vec<Record>> {
    let dir = runtime::open_dir()?;
    let mut out = Vec::new();
    for e in crate::vault::sys::read_dir(dir.as_fd())? {
        let Some(name) = e.name.to_str() else {
            continue;
        };
        if !name.ends_with(".pid") || name.starts_with('.') {
            continue;
        }
        let Some(r) = runtime::read_file(&dir, name).and_then(|t| Record::parse(&t)) else {
            continue;
        };
        if alive(r.pid) && mounted(&r.mountpoint) {
            out.push(r);
        }
    }
    out.sort_by(|a, b| a.mountpoint.cmp(&b.mountpoint));
    Ok(out)
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d {:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// `sealfs status [MOUNTPOINT]`.
pub fn status(mountpoint: Option<&Path>) -> Result<()> {
    let mut list = mounts()?;
    if let Some(m) = mountpoint {
        let canon =
            std::fs::canonicalize(m).map_err(|e| Error::Config(format!("{}: {e}", m.display())))?;
        list.retain(|r| r.mountpoint == canon);
        if list.is_empty() {
            return Err(Error::Config(format!(
                "{} is not a sealfs mount of this user",
                m.display()
            )));
        }
    }
    if list.is_empty() {
        println!("no sealfs mounts");
    }
    let now = now();
    for r in list {
        println!("{}", r.mountpoint.display());
        println!("  vault:  {} (id {})", r.vault.display(), r.vault_id);
        println!(
            "  daemon: pid {}, {}, up {}",
            r.pid,
            if r.read_only {
                "read-only"
            } else {
                "read-write"
            },
            duration(now.saturating_sub(r.started))
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_roundtrip_and_old_pid_files_parse() {
        let r = Record {
            pid: 42,
            vault: "/a b/v".into(),
            mountpoint: "/m".into(),
            vault_id: "00ff".into(),
            read_only: true,
            started: 7,
        };
        assert_eq!(Record::parse(&r.to_text()), Some(r));
        assert_eq!(Record::parse("123\n").unwrap().pid, 123);
        assert!(Record::parse("pid=x\n").is_none());
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(duration(3725), "1h 02m");
    }
}

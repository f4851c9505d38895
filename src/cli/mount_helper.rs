//! `mount.fuse.sealfs`: the helper mount(8) runs for `mount -t fuse.sealfs`,
//! `/etc/fstab` lines (including `noauto,user` entries) and systemd mount and
//! automount units. It is the `sealfs` binary under another name (a link
//! made by `scripts/install.sh`), called as
//! `mount.fuse.sealfs VAULT MOUNTPOINT [-sfnv] [-o OPTIONS]`.

use std::ffi::OsString;
use std::path::PathBuf;

use super::{PassArgs, mount};
use crate::{Error, Result};

/// The options sealfs takes in `-o`; the generic ones mount(8) and systemd
/// use are accepted and left alone.
const KNOWN: &str = "passfile=FILE, keyring, ro, rw, allow_other, idle_timeout=DURATION, \
                     log_file=FILE, threads=N, no_writeback_cache";

/// Options that belong to mount(8), fstab or systemd, not to sealfs. (A
/// sealfs mount is always nosuid and nodev; `dev` and `suid` are refused.)
fn generic(opt: &str) -> bool {
    const PLAIN: &[&str] = &[
        "defaults",
        "auto",
        "noauto",
        "user",
        "users",
        "nouser",
        "owner",
        "group",
        "nofail",
        "_netdev",
        "atime",
        "noatime",
        "relatime",
        "strictatime",
        "nodev",
        "nosuid",
        "dev",
        "suid",
        "exec",
        "noexec",
        "async",
        "nodiratime",
        "diratime",
    ];
    let key = opt.split('=').next().unwrap_or(opt);
    PLAIN.contains(&opt)
        || opt.starts_with("x-")
        || matches!(key, "comment" | "user" | "helper" | "uhelper")
}

/// Whether the binary was called by a helper name (`mount.fuse.sealfs`, `mount.sealfs`).
pub fn is_helper(args: &[OsString]) -> bool {
    args.first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("mount."))
}

#[derive(Debug, Default, PartialEq)]
struct Parsed {
    vault: PathBuf,
    mountpoint: PathBuf,
    passfile: Option<PathBuf>,
    keyring: bool,
    read_only: bool,
    allow_other: bool,
    no_exec: bool,
    idle_timeout: Option<std::time::Duration>,
    log_file: Option<PathBuf>,
    threads: Option<usize>,
    no_writeback_cache: bool,
    /// `-f`: do everything but mount.
    fake: bool,
}

fn parse(args: &[OsString]) -> Result<Parsed> {
    let usage = || {
        Error::Config(
            "usage: mount.fuse.sealfs VAULT MOUNTPOINT [-sfnv] [-o OPTIONS] \
             (as mount(8) calls it)"
                .into(),
        )
    };
    let mut p = Parsed::default();
    let mut positional = Vec::new();
    let mut opts = Vec::new();
    let mut sloppy = false;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        match s.as_ref() {
            "-o" => opts.push(it.next().ok_or_else(usage)?.to_string_lossy().into_owned()),
            // -t TYPE takes a value we do not need.
            "-t" => {
                it.next().ok_or_else(usage)?;
            }
            "-N" => {
                return Err(Error::Config(
                    "mount.fuse.sealfs cannot mount into another namespace (-N); \
                     run mount inside it instead"
                        .into(),
                ));
            }
            f if f.starts_with("-o") => opts.push(f[2..].to_string()),
            f if f.starts_with('-') && f.len() > 1 => {
                for c in f[1..].chars() {
                    match c {
                        's' => sloppy = true,
                        'f' => p.fake = true,
                        'r' => p.read_only = true,
                        'n' | 'v' | 'w' => {}
                        _ => return Err(usage()),
                    }
                }
            }
            _ => positional.push(PathBuf::from(a)),
        }
    }
    let [vault, mountpoint] = <[PathBuf; 2]>::try_from(positional).map_err(|_| usage())?;
    p.vault = vault;
    p.mountpoint = mountpoint;
    for opt in opts
        .iter()
        .flat_map(|o| o.split(','))
        .filter(|o| !o.is_empty())
    {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        let need = |v: Option<&str>| {
            v.filter(|v| !v.is_empty())
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::Config(format!("mount option {key} needs a value ({key}=...)"))
                })
        };
        match key {
            "passfile" => p.passfile = Some(need(value)?.into()),
            "keyring" => p.keyring = true,
            "ro" => p.read_only = true,
            "rw" => p.read_only = false,
            "allow_other" => p.allow_other = true,
            "noexec" => p.no_exec = true,
            "exec" => p.no_exec = false,
            "suid" | "dev" | "sync" | "dirsync" => {
                return Err(Error::Config(format!(
                    "mount option {opt} is not supported by sealfs (mounts are nosuid, nodev, async)"
                )));
            }
            "idle_timeout" | "idle" => {
                p.idle_timeout =
                    Some(super::idle::parse_duration(&need(value)?).map_err(Error::Config)?)
            }
            "log_file" => p.log_file = Some(need(value)?.into()),
            "threads" => {
                p.threads = Some(
                    need(value)?
                        .parse()
                        .map_err(|_| Error::Config(format!("mount option {opt}: not a number")))?,
                )
            }
            "no_writeback_cache" => p.no_writeback_cache = true,
            _ if generic(opt) => {}
            _ if sloppy => log::info!("ignoring mount option {opt}"),
            _ => {
                return Err(Error::Config(format!(
                    "unknown mount option {opt:?}; sealfs knows {KNOWN}"
                )));
            }
        }
    }
    Ok(p)
}

/// Runs the helper; returns the exit status mount(8) expects (0, or 32 for
/// a failed mount).
pub fn run(args: &[OsString]) -> i32 {
    let p = match parse(args) {
        Ok(p) => p,
        Err(e) => {
            super::report(&e);
            return 1;
        }
    };
    if p.fake {
        return 0;
    }
    let pass = PassArgs {
        passfile: p.passfile.clone(),
        extpass: None,
        keyring: p.keyring,
    };
    let a = mount::MountArgs {
        pass: &pass,
        vault: &p.vault,
        mountpoint: &p.mountpoint,
        foreground: false,
        read_only: p.read_only,
        allow_other: p.allow_other,
        no_exec: p.no_exec,
        threads: p.threads.unwrap_or_else(super::default_threads),
        no_writeback_cache: p.no_writeback_cache,
        idle_timeout: p.idle_timeout,
    };
    match mount::mount(&a, p.log_file.as_deref()) {
        Ok(()) => 0,
        Err(e) => {
            super::report(&e);
            32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn fstab_options() {
        let p = parse(&args(
            "/sbin/mount.fuse.sealfs /v /m -o rw,noauto,user,passfile=/k/pw,allow_other,x-systemd.automount,idle_timeout=10m,_netdev",
        ))
        .unwrap();
        assert_eq!(p.vault, PathBuf::from("/v"));
        assert_eq!(p.mountpoint, PathBuf::from("/m"));
        assert_eq!(p.passfile, Some(PathBuf::from("/k/pw")));
        assert!(p.allow_other && !p.read_only && !p.fake);
        assert_eq!(p.idle_timeout, Some(std::time::Duration::from_secs(600)));
        let p = parse(&args("mount.fuse.sealfs /v /m -n -o ro,keyring,user=alice")).unwrap();
        assert!(p.read_only && p.keyring && !p.no_exec);
        // A `user` entry implies noexec, and mount(8) says so.
        let p = parse(&args(
            "mount.fuse.sealfs /v /m -o rw,noexec,nosuid,nodev,user",
        ))
        .unwrap();
        assert!(p.no_exec);
        let p = parse(&args("mount.fuse.sealfs /v /m -o noexec,exec")).unwrap();
        assert!(!p.no_exec);
    }

    #[test]
    fn bad_options_are_named() {
        let e = parse(&args("mount.fuse.sealfs /v /m -o passfile=/k,bogus")).unwrap_err();
        assert!(e.to_string().contains("\"bogus\""), "{e}");
        assert!(parse(&args("mount.fuse.sealfs /v /m -s -o bogus")).is_ok());
        assert!(parse(&args("mount.fuse.sealfs /v -o ro")).is_err());
        let e = parse(&args("mount.fuse.sealfs /v /m -o passfile")).unwrap_err();
        assert!(e.to_string().contains("passfile=..."), "{e}");
        assert!(parse(&args("mount.fuse.sealfs /v /m -o idle_timeout=soon")).is_err());
        for refused in ["suid", "dev", "sync", "dirsync"] {
            let e = parse(&args(&format!("mount.fuse.sealfs /v /m -o {refused}"))).unwrap_err();
            assert!(e.to_string().contains("not supported"), "{e}");
        }
        let e = parse(&args("mount.fuse.sealfs /v /m -N /proc/1/ns/mnt")).unwrap_err();
        assert!(e.to_string().contains("namespace"), "{e}");
    }

    #[test]
    fn helper_names() {
        assert!(is_helper(&args("/usr/sbin/mount.fuse.sealfs /v /m")));
        assert!(is_helper(&args("mount.sealfs /v /m")));
        assert!(!is_helper(&args("/usr/bin/sealfs mount /v /m")));
    }
}

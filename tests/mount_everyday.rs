//! Everyday use of a mount: what `/proc/mounts` shows, `mount -t` and
//! fstab lines through the mount helper, systemd's fstab generator and the
//! user unit, the idle timeout, the system log of a detached daemon, and
//! messages that name the fix.

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use common::mount::{BIN, Helper, Mounted, mount_line, p, sealfs, wait_for};
use common::pattern;

/// Tests that install /sbin/mount.fuse.sealfs or serve /dev/log run one at a time.
static SYSTEM_WIDE: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SYSTEM_WIDE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A vault with one file, not mounted.
fn unmounted(content: &[u8]) -> Mounted {
    let mut m = Mounted::new(&[]);
    std::fs::write(m.path("f"), content).unwrap();
    m.umount();
    m
}

/// `sealfs cat` of a file of the (unmounted) vault.
fn cat(m: &Mounted, name: &str) -> Vec<u8> {
    let o = sealfs(&["cat", "--passfile", p(&m.passfile), p(&m.vault), name]);
    assert!(o.status.success(), "cat: {}", stderr(&o));
    o.stdout
}

#[test]
fn a_root_mount_shows_fuse_sealfs_and_the_absolute_vault_path() {
    let mut m = unmounted(b"x");
    // Given as a relative path, from the vault's parent directory.
    let o = Command::new(BIN)
        .current_dir(m.tmp.path())
        .args(["mount", "--passfile", "pw", "vault", "mnt"])
        .output()
        .unwrap();
    assert!(o.status.success(), "mount: {}", stderr(&o));
    m.adopt();
    let line = mount_line(&m.mnt).expect("in /proc/mounts");
    let vault = std::fs::canonicalize(&m.vault).unwrap();
    assert_eq!(line[0], p(&vault), "{line:?}");
    assert_eq!(line[2], "fuse.sealfs", "{line:?}");
    let df = Command::new("df").arg("-T").arg(&m.mnt).output().unwrap();
    let df = String::from_utf8_lossy(&df.stdout);
    assert!(df.contains("fuse.sealfs") && df.contains(p(&vault)), "{df}");
    let mount = Command::new("mount").output().unwrap();
    let want = format!("{} on {} type fuse.sealfs", p(&vault), p(&m.mnt));
    assert!(String::from_utf8_lossy(&mount.stdout).contains(&want));
    m.umount();
}

/// `mount -t fuse.sealfs VAULT MNT -o passfile=F,ro` and an fstab line
/// (`noauto,user`, read with `mount -T FSTAB MNT`) mount through the helper.
#[test]
fn mount_t_and_an_fstab_line_mount_through_the_helper() {
    let _one = serial();
    let data = pattern(100_000, 7);
    let mut m = unmounted(&data);
    let _helper = Helper::install(BIN);
    let o = Command::new("mount")
        .args(["-t", "fuse.sealfs"])
        .arg(&m.vault)
        .arg(&m.mnt)
        .args(["-o", &format!("passfile={},ro,nodev", p(&m.passfile))])
        .output()
        .unwrap();
    assert!(o.status.success(), "mount -t: {}", stderr(&o));
    m.adopt();
    let line = mount_line(&m.mnt).unwrap();
    let vault = std::fs::canonicalize(&m.vault).unwrap();
    assert_eq!(
        (line[0].as_str(), line[2].as_str()),
        (p(&vault), "fuse.sealfs")
    );
    assert!(line[3].split(',').any(|o| o == "ro"), "{line:?}");
    assert_eq!(std::fs::read(m.path("f")).unwrap(), data);
    let e = std::fs::write(m.path("g"), b"no").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    m.umount();

    let fstab = m.tmp.path().join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "# a user's vault\n{} {} fuse.sealfs noauto,user,passfile={},idle_timeout=10m 0 0\n",
            p(&m.vault),
            p(&m.mnt),
            p(&m.passfile)
        ),
    )
    .unwrap();
    let o = Command::new("mount")
        .arg("-T")
        .arg(&fstab)
        .arg(&m.mnt)
        .output()
        .unwrap();
    assert!(o.status.success(), "mount from fstab: {}", stderr(&o));
    m.adopt();
    let line = mount_line(&m.mnt).unwrap();
    assert_eq!(line[2], "fuse.sealfs");
    // `user` implies noexec, and the mount keeps it.
    assert!(line[3].split(',').any(|o| o == "noexec"), "{line:?}");
    std::fs::write(m.path("g"), b"written through an fstab mount").unwrap();
    m.umount();
    assert_eq!(cat(&m, "g"), b"written through an fstab mount");

    // Unknown options are refused with the list of known ones.
    let o = Command::new("mount")
        .args(["-t", "fuse.sealfs"])
        .arg(&m.vault)
        .arg(&m.mnt)
        .args(["-o", &format!("passfile={},bogus", p(&m.passfile))])
        .output()
        .unwrap();
    assert!(!o.status.success() && !m.is_mounted());
    assert!(
        stderr(&o).contains("unknown mount option \"bogus\""),
        "{}",
        stderr(&o)
    );
}

/// An `x-systemd.automount` fstab line: systemd's generator makes an
/// automount and a mount unit of type fuse.sealfs, and both verify.
#[test]
fn systemd_turns_an_automount_fstab_line_into_units_that_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let fstab = tmp.path().join("fstab");
    std::fs::write(
        &fstab,
        "/srv/sync/vault /srv/private fuse.sealfs \
         noauto,x-systemd.automount,x-systemd.idle-timeout=5min,passfile=/etc/sealfs/pw 0 0\n",
    )
    .unwrap();
    let out = tmp.path().join("units");
    std::fs::create_dir(&out).unwrap();
    let o = Command::new("/lib/systemd/system-generators/systemd-fstab-generator")
        .args([&out, &out, &out])
        .env("SYSTEMD_FSTAB", &fstab)
        .output()
        .expect("systemd-fstab-generator");
    assert!(o.status.success(), "{}", stderr(&o));
    let automount = std::fs::read_to_string(out.join("srv-private.automount")).unwrap();
    assert!(automount.contains("Where=/srv/private"), "{automount}");
    let mount = std::fs::read_to_string(out.join("srv-private.mount")).unwrap();
    for want in [
        "What=/srv/sync/vault",
        "Where=/srv/private",
        "Type=fuse.sealfs",
        "passfile=/etc/sealfs/pw",
    ] {
        assert!(mount.contains(want), "{want} missing from\n{mount}");
    }
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(out.join("srv-private.mount"))
        .arg(out.join("srv-private.automount"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The user unit in contrib/ verifies (its commands exist, its man page is
/// found) once installed with the binary's directory filled in.
#[test]
fn the_systemd_user_unit_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/sealfs@.service"),
    )
    .unwrap();
    let bindir = Path::new(BIN).parent().unwrap();
    let unit = unit.replace("@BINDIR@", p(bindir));
    let file = tmp.path().join("sealfs@vault.service");
    std::fs::write(&file, &unit).unwrap();
    let man = tmp.path().join("man/man1");
    std::fs::create_dir_all(&man).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("man/sealfs-mount.1"),
        man.join("sealfs-mount.1"),
    )
    .unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let verify = |f: &Path| {
        Command::new("systemd-analyze")
            .args(["verify", "--user"])
            .arg(f)
            .env("XDG_RUNTIME_DIR", &run)
            .env("MANPATH", tmp.path().join("man"))
            .output()
            .expect("systemd-analyze")
    };
    let o = verify(&file);
    assert!(o.status.success(), "{}{}", stderr(&o), unit);
    for want in ["Type=notify", "--foreground --keyring", "sealfs umount"] {
        assert!(unit.contains(want), "{want}");
    }
    // The check can fail: a unit whose command is missing does not verify.
    let bad = tmp.path().join("sealfs@bad.service");
    std::fs::write(&bad, unit.replace(p(bindir), "/nonexistent")).unwrap();
    assert!(!verify(&bad).status.success());
}

#[test]
fn an_idle_mount_unmounts_once_free_with_its_data_on_disk() {
    let mut m = Mounted::new_under(&["env", "RUST_LOG=sealfs=info"], &["--idle-timeout", "1s"]);
    let data = pattern(300_000, 9);
    std::fs::write(m.path("f"), &data).unwrap();
    // An open file keeps it in use: the daemon says so and stays mounted.
    let held = std::fs::File::open(m.path("f")).unwrap();
    assert!(
        wait_for(60, || m.log().contains("but in use")),
        "{}",
        m.log()
    );
    assert!(m.is_mounted());
    let mut one = [0u8];
    held.read_at(&mut one, 0).unwrap();
    drop(held);
    // Free and idle: it unmounts by itself, and the daemon exits.
    let pid = m.daemon_pid();
    assert!(wait_for(60, || !m.is_mounted()), "still mounted");
    m.forget_mounted();
    assert!(wait_for(60, || !Path::new(&format!("/proc/{pid}")).exists()));
    assert!(m.log().contains("unmounted"), "{}", m.log());
    assert_eq!(cat(&m, "f"), data);
}

/// A detached daemon given no --log-file reports to the system log: a read
/// that fails authentication leaves a record naming the vault file, never
/// the plaintext name. The daemon runs in a private mount namespace with a
/// /dev of its own, where an rsyslogd started here serves /dev/log (these
/// machines run none, and a host's own /dev/log is never touched).
#[test]
fn a_detached_daemon_reports_damage_to_the_system_log() {
    let mut m = Mounted::new(&[]);
    let name = "quarterly-plan-confidential.txt";
    std::fs::write(m.path(name), pattern(20_000, 3)).unwrap();
    m.umount();
    let entry = m.vault_entry(name);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(m.vault.join(&entry))
        .unwrap();
    file.write_at(b"\xff\xff\xff\xff", 200).unwrap();
    drop(file);
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let messages = dir.join("messages");
    std::fs::write(
        dir.join("rsyslog.conf"),
        format!(
            "global(workDirectory=\"{d}\")\n\
             module(load=\"imuxsock\" SysSock.Name=\"/dev/log\")\n\
             *.* action(type=\"omfile\" file=\"{m}\")\n",
            d = p(dir),
            m = p(&messages)
        ),
    )
    .unwrap();
    let script = format!(
        r#"set -e
mount -t tmpfs -o mode=755 none /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/urandom c 1 9
mknod -m 600 /dev/fuse c 10 229
rsyslogd -n -f {d}/rsyslog.conf -i {d}/rsyslogd.pid > /dev/null 2>&1 &
rs=$!
i=0; until [ -S /dev/log ]; do i=$((i+1)); [ $i -lt 600 ] || exit 3; sleep 0.05; done
{bin} mount --passfile {pw} {vault} {mnt}
if cat {mnt}/{name} > /dev/null 2> {d}/cat.err; then echo read > {d}/cat.status; fi
{bin} umount {mnt}
i=0; until grep -q 'authentication failed' {m}; do i=$((i+1)); [ $i -lt 600 ] || break; sleep 0.05; done
kill $rs; wait $rs || true
"#,
        d = p(dir),
        bin = BIN,
        pw = p(&m.passfile),
        vault = p(&m.vault),
        mnt = p(&m.mnt),
        m = p(&messages)
    );
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux)");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !dir.join("cat.status").exists(),
        "the damaged file was read"
    );
    let err = std::fs::read_to_string(dir.join("cat.err")).unwrap();
    assert!(err.contains("Input/output error"), "{err}");
    let text = std::fs::read_to_string(&messages).expect("rsyslogd wrote nothing");
    assert!(text.contains("authentication failed"), "{text}");
    assert!(text.contains("sealfs["), "{text}");
    assert!(text.contains(&entry), "the vault file is not named: {text}");
    assert!(
        !text.contains("quarterly"),
        "a plaintext name was logged: {text}"
    );
}

/// Each reason a mount cannot work is one line that names the fix.
#[test]
fn mount_errors_name_the_fix() {
    let mut m = unmounted(b"x");
    let (pw, vault) = (m.passfile.clone(), m.vault.clone());
    let mount = |extra: &[&str], vault: &Path, mnt: &Path| {
        let mut a = vec!["mount", "--passfile", p(&pw)];
        a.extend_from_slice(extra);
        a.push(p(vault));
        a.push(p(mnt));
        sealfs(&a)
    };
    let one_line = |o: &std::process::Output, want: &[&str]| {
        let e = stderr(o);
        assert!(!o.status.success(), "succeeded");
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
        for w in want {
            assert!(e.contains(w), "{w:?} missing from {e}");
        }
    };
    // A mountpoint that is not empty.
    std::fs::write(m.mnt.join("stray"), b"").unwrap();
    one_line(
        &mount(&[], &vault, &m.mnt),
        &["not empty", "mount on an empty directory"],
    );
    std::fs::remove_file(m.mnt.join("stray")).unwrap();
    // A mountpoint already mounted.
    m.mount(&[]);
    one_line(
        &mount(&[], &vault, &m.mnt),
        &["already a mountpoint", "sealfs umount"],
    );
    m.umount();
    // A mountpoint that does not exist.
    one_line(
        &mount(&[], &vault, &m.tmp.path().join("nowhere")),
        &["mkdir -p"],
    );
    // The vault on a read-only filesystem (a read-only bind mount of it).
    let ro = m.tmp.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    struct Bind(PathBuf);
    impl Drop for Bind {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    assert!(
        Command::new("mount")
            .arg("--bind")
            .arg(&m.vault)
            .arg(&ro)
            .status()
            .unwrap()
            .success()
    );
    let _bind = Bind(ro.clone());
    assert!(
        Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(&ro)
            .status()
            .unwrap()
            .success()
    );
    one_line(
        &mount(&[], &ro, &m.mnt),
        &["read-only filesystem", "--read-only"],
    );
    let o = mount(&["--read-only"], &ro, &m.mnt);
    assert!(o.status.success(), "{}", stderr(&o));
    m.adopt();
    assert_eq!(std::fs::read(m.path("f")).unwrap(), b"x");
    m.umount();
    // No /dev/fuse, and no FUSE in the kernel: in a private mount namespace.
    let mnt = m.mnt.clone();
    let hidden = |setup: &str| {
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "{setup} && exec {BIN} mount --passfile {} {} {}",
                p(&pw),
                p(&vault),
                p(&mnt)
            ))
            .output()
            .expect("unshare (util-linux)")
    };
    one_line(
        &hidden("mount -t tmpfs none /dev"),
        &["/dev/fuse is missing", "modprobe fuse"],
    );
    // A device node no driver answers (misc minor 254 is unassigned): what
    // /dev/fuse is when the module is not loaded and cannot be.
    one_line(
        &hidden("mount -t tmpfs none /dev && mknod -m 666 /dev/fuse c 10 254"),
        &["no FUSE support", "modprobe fuse"],
    );
    assert!(!m.is_mounted());
}

//! What a running mount must not give away: the daemon dumps no core even
//! when started under `ulimit -c unlimited`, and its log at the default level
//! names vault paths only, never a plaintext name, even when it reports
//! damage.

mod common;

use common::mount::Mounted;

fn limit_line<'a>(limits: &'a str, what: &str) -> &'a str {
    limits
        .lines()
        .find(|l| l.starts_with(what))
        .unwrap_or_else(|| panic!("no {what} in /proc/PID/limits"))
}

#[test]
fn no_core_dumps_and_no_plaintext_names_in_the_log() {
    // `sh -c 'ulimit -c unlimited; exec sealfs mount …'`: the daemon inherits
    // an unlimited core size unless sealfs lowers it.
    let mut m = Mounted::new_under(
        &["sh", "-c", "ulimit -c unlimited && exec \"$0\" \"$@\""],
        &[],
    );
    let pid = m.daemon_pid();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core: Vec<&str> = limit_line(&limits, "Max core file size")
        .split_whitespace()
        .collect();
    assert_eq!(&core[4..6], &["0", "0"], "{limits}");
    // The keys sit in locked memory in the process that serves the mount
    // (after its fork): VmLck counts it.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let locked_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmLck in /proc/PID/status");
    assert!(locked_kib >= 4, "no locked key memory: {status}");

    // Names that must never reach the log, in every kind of entry.
    let secret_names = [
        "SECRET-salary-2026.xlsx",
        "CONFIDENTIAL-plans",
        "PRIVATE-link",
        "TOPSECRET-renamed.txt",
    ];
    std::fs::write(m.path(secret_names[0]), vec![7u8; 20_000]).unwrap();
    std::fs::create_dir(m.path(secret_names[1])).unwrap();
    std::fs::write(m.path(&format!("{}/inner", secret_names[1])), b"x").unwrap();
    std::os::unix::fs::symlink("PRIVATE-target", m.path(secret_names[2])).unwrap();
    std::fs::rename(m.path(secret_names[0]), m.path(secret_names[3])).unwrap();
    assert!(std::fs::remove_dir(m.path(secret_names[1])).is_err()); // ENOTEMPTY
    m.umount();

    // Damage the renamed file's second chunk in the vault, so the daemon has
    // something to report when it is read.
    let entry = m.vault_entry(secret_names[3]);
    let vpath = m.vault.join(&entry);
    let mut b = std::fs::read(&vpath).unwrap();
    let at = sealfs::format::header::HEADER_LEN + 4096 + 28 + 30;
    b[at] ^= 1;
    std::fs::write(&vpath, &b).unwrap();
    m.mount(&[]);
    let err = std::fs::read(m.path(secret_names[3])).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    m.umount();

    let log = m.log();
    assert!(
        log.contains(&entry),
        "the damage was not logged by its vault path: {log}"
    );
    for name in secret_names
        .iter()
        .chain(["PRIVATE-target", "inner"].iter())
    {
        assert!(
            !log.contains(name),
            "plaintext {name:?} in the daemon log:\n{log}"
        );
    }
}

/// Without the right to lock memory (no CAP_IPC_LOCK, a locked-memory
/// limit of 0), the mount still works and says once that keys may reach swap.
#[test]
fn a_mount_without_locked_memory_works_and_says_so_once() {
    let mut m = Mounted::new_under(
        &[
            "setpriv",
            "--bounding-set=-ipc_lock",
            "--inh-caps=-ipc_lock",
            "prlimit",
            "--memlock=0:0",
        ],
        &[],
    );
    let pid = m.daemon_pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("\nVmLck:\t       0 kB"), "{status}");
    // Said when the keys are first unlocked, on the terminal of `sealfs mount`.
    let told = m.mount_stderr.clone();
    for i in 0..20 {
        std::fs::write(m.path(&format!("f{i}")), vec![i as u8; 10_000]).unwrap();
    }
    assert_eq!(std::fs::read(m.path("f7")).unwrap(), vec![7u8; 10_000]);
    m.umount();
    let all = format!("{told}{}", m.log());
    assert_eq!(
        all.matches("cannot lock key memory").count(),
        1,
        "told once: {all}"
    );
    assert!(told.contains("ulimit -l"), "{told}");
}

/// The final sync at unmount failing (a disk error, simulated by a
/// debug-build hook) is an error of `sealfs umount`, not a silent success;
/// the next unmount is clean again.
#[test]
fn a_failed_final_sync_fails_the_unmount() {
    let mut m = Mounted::new_under(&["env", "SEALFS_TEST_FAIL_SYNC=1"], &[]);
    std::fs::write(m.path("f"), b"data").unwrap();
    m.forget_mounted();
    let o = common::mount::sealfs(&["umount", common::mount::p(&m.mnt)]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "umount succeeded: {err}");
    assert!(
        err.contains("final write to the vault's disk failed"),
        "{err}"
    );
    assert!(m.log().contains("flush at unmount failed"), "{}", m.log());
    assert!(!m.is_mounted());
    // Without the fault, the next mount unmounts cleanly (no stale report).
    m.launcher.clear();
    m.mount(&[]);
    m.umount();
}

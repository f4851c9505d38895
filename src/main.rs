//! The `sealfs` binary: parse, dispatch, map errors to exit codes.

use clap::Parser;

fn main() {
    // Keys must not reach a core dump: no dumps, and no ptrace by other
    // processes of this user, from before any secret is read.
    // A failure here stops sealfs before it reads any secret.
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prctl and setrlimit with constant, valid arguments.
    let (dumpable, core) = unsafe {
        (
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0),
            libc::setrlimit(libc::RLIMIT_CORE, &zero),
        )
    };
    if dumpable != 0 || core != 0 {
        eprintln!(
            "sealfs: cannot keep keys out of core dumps ({}); refusing to run",
            std::io::Error::last_os_error()
        );
        std::process::exit(1);
    }
    sealfs::cli::logging::init();
    // Called as `mount.fuse.sealfs` (by mount(8), fstab, systemd): the mount helper.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if sealfs::cli::mount_helper::is_helper(&args) {
        std::process::exit(sealfs::cli::mount_helper::run(&args));
    }
    let cli = sealfs::cli::Cli::parse();
    std::process::exit(sealfs::cli::run(cli));
}

//! The `sealfs` binary: parse, dispatch, map errors to exit codes.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    // Keys must not reach a core dump: no dumps, and no ptrace by other
    // processes of this user, from before any secret is read.
    // A failure here stops sealfs before it reads any secret.
    let no_core = rustix::process::Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    let hardened =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
            .and_then(|()| rustix::process::setrlimit(rustix::process::Resource::Core, no_core));
    if let Err(e) = hardened {
        eprintln!("sealfs: cannot keep keys out of core dumps ({e}); refusing to run");
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

//! The `sealfs` binary: parse, dispatch, map errors to exit codes.

use clap::Parser;

fn main() {
    // Keys must not reach a core dump: no dumps, and no ptrace by other
    // processes of this user, from before any secret is read.
    // SAFETY: prctl and setrlimit with constant, valid arguments.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = sealfs::cli::Cli::parse();
    std::process::exit(sealfs::cli::run(cli));
}

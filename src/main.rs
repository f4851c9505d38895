//! The `sealfs` binary: parse, dispatch, map errors to exit codes.

use clap::Parser;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = sealfs::cli::Cli::parse();
    std::process::exit(sealfs::cli::run(cli));
}

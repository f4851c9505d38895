//! Running the sealfs binary from tests.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_sealfs");

/// Runs `sealfs ARGS` with `stdin` as its input.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sealfs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Kills `sealfs ARGS` with SIGKILL at random moments within the first half
/// of the time one whole run took (`full_ms`; runs vary with the load of
/// other tests), checking the vault after each with `verify`, until `want`
/// runs were interrupted or `rounds` runs were made; returns how many were.
pub fn kill_at_random_moments(
    args: &[&str],
    full_ms: u64,
    want: u32,
    rounds: u32,
    mut verify: impl FnMut(&str),
) -> u32 {
    use std::os::unix::process::ExitStatusExt;
    let mut seed = std::process::id() as u64;
    let mut killed = 0;
    for round in 0..rounds {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = full_ms / 20 + (seed >> 33) % (full_ms / 2).max(1);
        // A random moment, not a synchronisation: the kill lands anywhere.
        std::thread::sleep(std::time::Duration::from_millis(delay));
        // SAFETY: kill on our own child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        if child.wait().unwrap().signal() == Some(libc::SIGKILL) {
            killed += 1;
        }
        verify(&format!("kill -9 in round {round}, {delay} ms in"));
        if killed >= want {
            break;
        }
    }
    killed
}

//! The process behind a request, for long extensions: they stop between
//! steps once it is gone or has a fatal signal pending (fuser answers the
//! kernel's INTERRUPT with ENOSYS, so interrupts never reach us), or once
//! the session is ending.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::vault::growth::Guard;

/// Set when the session ends: long requests stop.
pub static ENDING: AtomicBool = AtomicBool::new(false);

/// How often the requester's state is looked at.
const EVERY: Duration = Duration::from_millis(20);

pub struct Requester {
    pid: u32,
    checked: Cell<Instant>,
}

impl Requester {
    pub fn new(pid: u32) -> Requester {
        Requester {
            pid,
            checked: Cell::new(Instant::now()),
        }
    }

    /// Whether the process is still there, not a zombie, without SIGKILL pending.
    fn alive(&self) -> bool {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", self.pid)) else {
            return false;
        };
        let kill_bit = 1u64 << (libc::SIGKILL - 1);
        for line in status.lines() {
            if let Some(state) = line.strip_prefix("State:") {
                if matches!(state.trim_start().chars().next(), Some('Z' | 'X')) {
                    return false;
                }
            }
            for key in ["SigPnd:", "ShdPnd:"] {
                if let Some(v) = line.strip_prefix(key) {
                    if u64::from_str_radix(v.trim(), 16).is_ok_and(|m| m & kill_bit != 0) {
                        return false;
                    }
                }
            }
        }
        true
    }
}

impl Guard for Requester {
    fn keep_going(&self) -> bool {
        if ENDING.load(Ordering::Relaxed) {
            return false;
        }
        if self.pid == 0 || self.checked.get().elapsed() < EVERY {
            return true;
        }
        self.checked.set(Instant::now());
        self.alive()
    }
}

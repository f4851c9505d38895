//! fork(2) for the mount daemon.

/// Which side of a fork this is.
pub enum Forked {
    Child,
    Parent(i32),
}

/// The number of threads of this process.
fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// fork(2), refused unless this process runs a single thread: a fork while
/// another thread holds a lock (the allocator's, a logger's) could leave
/// the child blocked on it forever.
pub fn fork() -> std::io::Result<Forked> {
    if threads() != Some(1) {
        return Err(std::io::Error::other(
            "cannot start the mount daemon: other threads are running",
        ));
    }
    // SAFETY: with this the only thread, no lock is held by another thread
    // at the fork, and the child goes on running ordinary Rust code.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

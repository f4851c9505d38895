//! Readiness for a service manager: under systemd (`Type=notify`), the
//! mount tells it when the mount is ready, so units ordered after it see
//! the plaintext view.

/// Sends `READY=1` to `$NOTIFY_SOCKET` when there is one; best effort.
pub fn notify_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&path, b"READY=1") {
        log::warn!("could not tell the service manager the mount is ready: {e}");
    }
}

fn send(path: &std::ffi::OsStr, msg: &[u8]) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let bytes = path.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(path)?,
    };
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(msg, &addr)?;
    Ok(())
}

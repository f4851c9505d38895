//! Where messages go: standard error (env_logger's filter and format;
//! `RUST_LOG` as usual, warnings by default), or, for a detached daemon
//! given no `--log-file`, the system log through `/dev/log` (which journald
//! also serves), so a read that failed authentication leaves a record of
//! which vault file is damaged. At the default level no message carries a
//! plaintext name.

use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The system log socket.
const SYSLOG: &str = "/dev/log";
/// syslog facility LOG_USER, as in syslog(3).
const FACILITY_USER: u8 = 1;

struct Logger {
    stderr: env_logger::Logger,
    /// Set once a detached daemon has no other place for its messages.
    to_syslog: AtomicBool,
    /// Connected on first use and again after a failure.
    socket: Mutex<Option<UnixDatagram>>,
}

static LOGGER: std::sync::OnceLock<&'static Logger> = std::sync::OnceLock::new();

/// Installs the logger (once, at start).
pub fn init() {
    let stderr =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).build();
    let level = stderr.filter();
    let logger: &'static Logger = Box::leak(Box::new(Logger {
        stderr,
        to_syslog: AtomicBool::new(false),
        socket: Mutex::new(None),
    }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
        let _ = LOGGER.set(logger);
    }
}

/// From now on, messages go to the system log instead of standard error.
pub fn to_syslog() {
    if let Some(l) = LOGGER.get() {
        l.to_syslog.store(true, Ordering::Relaxed);
    }
}

fn severity(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// `Mmm dd hh:mm:ss` of now (UTC), the RFC 3164 timestamp.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {:2} {:02}:{:02}:{:02}",
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl Logger {
    fn send(&self, record: &log::Record<'_>) {
        // Names from the vault are anyone's input: no control character
        // (a newline, a forged `<PRI>`) reaches the log as itself.
        let text: String = record
            .args()
            .to_string()
            .chars()
            .flat_map(|c| {
                let escaped: Vec<char> = if c.is_control() {
                    c.escape_default().collect()
                } else {
                    vec![c]
                };
                escaped
            })
            .collect();
        let msg = format!(
            "<{}>{} sealfs[{}]: {}: {text}",
            FACILITY_USER * 8 + severity(record.level()),
            timestamp(),
            std::process::id(),
            record.level(),
        );
        let mut sock = self
            .socket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for _ in 0..2 {
            if sock.is_none() {
                *sock = UnixDatagram::unbound()
                    .and_then(|s| s.connect(SYSLOG).map(|()| s))
                    .ok();
            }
            match sock.as_ref().map(|s| s.send(msg.as_bytes())) {
                Some(Ok(_)) => return,
                // The log daemon restarted: reconnect once.
                Some(Err(_)) => *sock = None,
                None => return,
            }
        }
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.stderr.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.stderr.matches(record) {
            return;
        }
        if self.to_syslog.load(Ordering::Relaxed) {
            self.send(record);
        } else {
            self.stderr.log(record);
        }
    }

    fn flush(&self) {
        self.stderr.flush();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_has_the_rfc3164_shape() {
        let t = super::timestamp();
        assert_eq!(t.len(), 15, "{t}");
        assert!(t[..3].chars().all(|c| c.is_ascii_alphabetic()), "{t}");
        assert_eq!(&t[9..10], ":", "{t}");
    }
}

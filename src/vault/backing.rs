//! Where a vault file's bytes live: the `Backing` of a `SealedFile`. In use
//! it is the vault file itself (`std::fs::File`). For power-loss tests a
//! recording backing also notes every write, length change and sync, so a
//! test can rebuild the file as it would be after a crash at any point of
//! the workload: every operation before the crash point, the one at it
//! torn, none after (the model of redb's crash-testing storage; device
//! mapper is not available here).

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The byte store under one sealed file.
pub trait Backing: Send + Sync {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;
    fn write_all_at(&self, data: &[u8], offset: u64) -> std::io::Result<()>;
    fn set_len(&self, len: u64) -> std::io::Result<()>;
    fn byte_len(&self) -> std::io::Result<u64>;
    /// fdatasync (`data_only`) or fsync.
    fn sync(&self, data_only: bool) -> std::io::Result<()>;
    /// The descriptor, for what only the kernel answers (statfs, timestamps).
    fn fd(&self) -> BorrowedFd<'_>;
}

impl Backing for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
    fn write_all_at(&self, data: &[u8], offset: u64) -> std::io::Result<()> {
        FileExt::write_all_at(self, data, offset)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        File::set_len(self, len)
    }
    fn byte_len(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn sync(&self, data_only: bool) -> std::io::Result<()> {
        if data_only {
            self.sync_data()
        } else {
            self.sync_all()
        }
    }
    fn fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

/// One change to a backing file, as recorded.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Write {
        ino: u64,
        offset: u64,
        data: Vec<u8>,
    },
    SetLen {
        ino: u64,
        len: u64,
    },
    Sync {
        ino: u64,
    },
}

static RECORDING: AtomicBool = AtomicBool::new(false);
static LOG: Mutex<Vec<Op>> = Mutex::new(Vec::new());

fn log() -> std::sync::MutexGuard<'static, Vec<Op>> {
    LOG.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts recording the changes of every sealed file opened from now on
/// (tests only: one recording per process at a time).
#[doc(hidden)]
pub fn start_recording() {
    log().clear();
    RECORDING.store(true, Ordering::SeqCst);
}

/// How many changes were recorded so far.
#[doc(hidden)]
pub fn recorded() -> usize {
    log().len()
}

/// Stops recording; returns what was recorded, in order.
#[doc(hidden)]
pub fn stop_recording() -> Vec<Op> {
    RECORDING.store(false, Ordering::SeqCst);
    std::mem::take(&mut *log())
}

/// Rebuilds a file's bytes after a crash: `initial`, then `ops` (those of
/// inode `ino`) in order up to `crash_at`, the operation at `crash_at`
/// torn to its first `torn` bytes when it is a write, none after.
#[doc(hidden)]
pub fn replay(initial: &[u8], ops: &[Op], ino: u64, crash_at: usize, torn: usize) -> Vec<u8> {
    let mut b = initial.to_vec();
    let write = |b: &mut Vec<u8>, offset: u64, data: &[u8]| {
        let end = offset as usize + data.len();
        if b.len() < end {
            b.resize(end, 0);
        }
        b[offset as usize..end].copy_from_slice(data);
    };
    for (i, op) in ops.iter().enumerate().take(crash_at + 1) {
        match op {
            Op::Write {
                ino: n,
                offset,
                data,
            } if *n == ino => {
                if i < crash_at {
                    write(&mut b, *offset, data);
                } else {
                    write(&mut b, *offset, &data[..torn.min(data.len())]);
                }
            }
            Op::SetLen { ino: n, len } if *n == ino && i < crash_at => b.resize(*len as usize, 0),
            _ => {}
        }
    }
    b
}

/// A vault file that also records its changes.
struct Recording {
    file: File,
    ino: u64,
}

impl Recording {
    fn note(&self, op: Op) {
        if RECORDING.load(Ordering::SeqCst) {
            log().push(op);
        }
    }
}

impl Backing for Recording {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        FileExt::read_at(&self.file, buf, offset)
    }
    fn write_all_at(&self, data: &[u8], offset: u64) -> std::io::Result<()> {
        self.note(Op::Write {
            ino: self.ino,
            offset,
            data: data.to_vec(),
        });
        FileExt::write_all_at(&self.file, data, offset)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.note(Op::SetLen { ino: self.ino, len });
        self.file.set_len(len)
    }
    fn byte_len(&self) -> std::io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn sync(&self, data_only: bool) -> std::io::Result<()> {
        self.note(Op::Sync { ino: self.ino });
        Backing::sync(&self.file, data_only)
    }
    fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// The backing for a vault file just opened: the file itself, or, while a
/// test records, a recording wrapper.
pub(crate) fn wrap(file: File) -> Arc<dyn Backing> {
    if RECORDING.load(Ordering::Relaxed) {
        if let Ok(md) = file.metadata() {
            use std::os::unix::fs::MetadataExt;
            return Arc::new(Recording {
                ino: md.ino(),
                file,
            });
        }
    }
    Arc::new(file)
}

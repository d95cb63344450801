//! Redis's MISCONF state, entered when a write fails on the disk: no space, a file size or quota
//! limit, or a failed fsync. Write commands and PING are then refused with `-MISCONF Errors
//! writing to the AOF file: …` (the data files are caskdb's append-only file), and reads go
//! on. Once a second a probe (`server.rs`) asks the engine for room (`Db::reserve`, which allocates what the
//! next writes need, writing nothing) and lifts the state when it gets it: writes resume by
//! themselves, as Redis's do once its AOF write succeeds again. After a failed fsync the engine
//! refuses writes until it is reopened (what reached the disk must be read back), so the state
//! then lasts until a restart.

use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::frame::Frame;

/// Bytes the probe reserves: the engine's allocation step, so that it tests what a write
/// needs next rather than space already allocated.
pub(crate) const PROBE_BYTES: u64 = 4 << 20;

/// How often the probe runs while writes are refused (Redis retries its AOF write every
/// second).
pub(crate) const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Whether writes are refused for a disk error, and why.
#[derive(Default)]
pub(crate) struct DiskState {
    failed: AtomicBool,
    /// Bumped by every failure: the probe lifts the state only if none came after its try.
    failures: AtomicU64,
    /// The error, as C's `strerror` words it (Redis's MISCONF reply carries that).
    reason: Mutex<&'static str>,
}

impl DiskState {
    /// The reply refusing a write (or PING) while a write has failed on the disk.
    pub fn refusal(&self) -> Option<Frame> {
        if !self.failed() {
            return None;
        }
        Some(Frame::Error(format!(
            "MISCONF Errors writing to the AOF file: {}",
            self.reason.lock()
        )))
    }

    /// Notes the engine error `e` a write got: a disk's failure refuses writes from now on,
    /// and the MISCONF reply is returned for the write itself.
    pub fn note(&self, e: &caskdb::Error) -> Option<Frame> {
        let reason = match e {
            caskdb::Error::Io(io) => match io.kind() {
                ErrorKind::StorageFull => "No space left on device",
                ErrorKind::FileTooLarge => "File too large",
                ErrorKind::QuotaExceeded => "Disk quota exceeded",
                ErrorKind::ReadOnlyFilesystem => "Read-only file system",
                _ => return None,
            },
            caskdb::Error::Poisoned { .. } => "Input/output error",
            _ => return None,
        };
        self.fail(reason, e);
        self.refusal()
    }

    /// An fsync failed (`error`, from the fsync thread): the engine refuses writes until a
    /// restart.
    pub fn sync_failed(&self, error: &str) {
        self.fail("Input/output error", error);
    }

    /// Whether writes are refused.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// The count of failures so far, taken before the probe tries.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Acquire)
    }

    /// The engine found room again (the probe, which began when `failures` failures had
    /// happened): writes resume, unless a write failed meanwhile.
    pub fn recovered(&self, failures: u64) {
        if self.failures() == failures && self.failed.swap(false, Ordering::AcqRel) {
            tracing::info!("the disk takes writes again: write commands resume");
        }
    }

    fn fail(&self, reason: &'static str, error: impl std::fmt::Display) {
        self.failures.fetch_add(1, Ordering::AcqRel);
        *self.reason.lock() = reason;
        if !self.failed.swap(true, Ordering::AcqRel) {
            tracing::error!(
                "a write failed on the disk ({error}): write commands are refused (MISCONF) \
                 until there is space again"
            );
        }
    }
}

//! What every handle and background thread of an open database shares: the index, the log,
//! the options, and the flags and signals that coordinate closing and merging.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::keydir::Keydir;
use crate::log::writer::{Log, Writer};
use crate::options::{Options, SyncPolicy};

/// The shared state of an open database.
pub(crate) struct Core {
    pub opts: Options,
    pub keydir: Keydir,
    pub log: Log,
    /// Held for the whole of a merge (and a backup): no file disappears meanwhile.
    pub merge_lock: Mutex<()>,
    /// Wakes the background merger.
    pub merge_signal: Arc<Signal>,
    /// After a failed automatic merge, the next one waits until dead bytes pass this.
    pub merge_retry_at: AtomicU64,
    /// Set when the database starts closing: a running merge stops at its next step.
    pub stopping: AtomicBool,
    pub closed: AtomicBool,
    /// The directory lock, released at close.
    pub dir_lock: Mutex<Option<Box<dyn Any + Send + Sync>>>,
    /// Odd while a write changes the index, bumped again when it is done: a reader without
    /// the writer lock that sees the same even value before and after its reads saw one state
    /// ([`Db::read_unlocked`](crate::Db::read_unlocked)).
    pub write_seq: AtomicU64,
}

/// A flag and a condition variable: how the database wakes or stops a background thread.
#[derive(Default)]
pub(crate) struct Signal {
    pub state: Mutex<SignalState>,
    pub cv: Condvar,
}

#[derive(Default)]
pub(crate) struct SignalState {
    pub stop: bool,
    pub wanted: bool,
}

impl Core {
    pub fn new(
        opts: Options,
        keydir: Keydir,
        log: Log,
        dir_lock: Box<dyn Any + Send + Sync>,
    ) -> Self {
        Core {
            opts,
            keydir,
            log,
            merge_lock: Mutex::new(()),
            merge_signal: Arc::default(),
            merge_retry_at: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            dir_lock: Mutex::new(Some(dir_lock)),
            write_seq: AtomicU64::new(0),
        }
    }

    pub fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Checked under the writer lock before any append.
    pub fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        self.log.check_writable()
    }

    /// Milliseconds since the epoch, by the configured clock.
    pub fn now(&self) -> u64 {
        self.opts.clock.now_ms()
    }

    /// Whether the entry at `loc` has expired. The clock is read only for an entry that has an
    /// expiry: most have none, and a read of the clock per entry was 6 % of a range read.
    pub fn expired(&self, loc: &crate::keydir::Loc) -> bool {
        loc.expire_at != 0 && loc.expired(self.now())
    }

    /// The expiry (never 0) of a value written now with `ttl`.
    pub fn expiry_after(&self, ttl: Duration) -> u64 {
        self.now()
            .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .max(1)
    }

    /// Whether dead bytes passed both automatic-merge thresholds. Cheap: called under the
    /// writer lock after every write.
    pub fn wants_merge(&self, w: &Writer) -> bool {
        let (total, dead) = w.totals();
        self.merge_thresholds_passed(total, dead)
    }

    /// Like `wants_merge`, counting expired records as dead too. Costs a pass over the expired
    /// entries, so the merger thread calls it periodically rather than every write.
    pub fn wants_merge_counting_expired(&self) -> bool {
        let (total, dead) = self.log.lock().totals();
        self.merge_thresholds_passed(total, dead + self.keydir.expired_bytes(self.now()))
    }

    /// Whether `garbage` bytes out of `total` call for an automatic merge.
    fn merge_thresholds_passed(&self, total: u64, garbage: u64) -> bool {
        self.opts.auto_merge
            && garbage >= self.opts.merge_min_dead_bytes
            && garbage as f64 >= self.opts.merge_trigger_ratio * total as f64
            && garbage >= self.merge_retry_at.load(Ordering::Relaxed)
    }

    /// Wakes the background merger (it merges once, however often it is woken meanwhile).
    pub fn request_merge(&self) {
        let mut st = self.merge_signal.state.lock();
        if !st.wanted {
            st.wanted = true;
            self.merge_signal.cv.notify_all();
        }
    }

    /// The end of every write: durability as the policy requires, then the merger if the write
    /// passed its thresholds.
    pub fn finish_write(&self, lsn: u64, want_merge: bool) -> Result<()> {
        if self.opts.sync == SyncPolicy::Always {
            self.log.sync_upto(lsn)?;
        }
        if want_merge {
            self.request_merge();
        }
        Ok(())
    }

    /// Marks the database closed and, with every write finished, seals the active file and
    /// releases the directory lock. A running merge is waited for: it stops at its next step.
    pub fn shutdown(&self) -> Result<()> {
        // Merge lock before writer lock, as in a merge.
        let _no_merge = self.merge_lock.lock();
        let w = self.log.lock();
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let result = self.log.seal_active(&w);
        drop(w);
        self.dir_lock.lock().take();
        result
    }
}

//! The database's background threads: the syncer behind [`SyncPolicy::Interval`] and the
//! automatic merger. Each sleeps on a [`Signal`] and is stopped and joined at close.
//!
//! [`SyncPolicy::Interval`]: crate::SyncPolicy::Interval

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::merge;
use crate::shared::{Core, Signal};

/// How often the merger looks at expired bytes.
const EXPIRY_CHECK_EVERY: Duration = Duration::from_secs(1);

/// A running background thread.
pub(crate) struct Background {
    signal: Arc<Signal>,
    thread: JoinHandle<()>,
}

impl Background {
    fn spawn(
        name: &str,
        signal: Arc<Signal>,
        body: impl FnOnce() + Send + 'static,
    ) -> Result<Self> {
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(body)
            .map_err(Error::Io)?;
        Ok(Background { signal, thread })
    }

    /// Syncs what was appended, every `every`.
    pub fn syncer(core: Arc<Core>, every: Duration) -> Result<Self> {
        let signal = Arc::new(Signal::default());
        let sig = signal.clone();
        Self::spawn("caskdb-sync", signal, move || {
            let mut st = sig.state.lock();
            while !st.stop {
                sig.cv.wait_for(&mut st, every);
                if st.stop {
                    break;
                }
                if let Err(e) = core.log.sync_pending() {
                    tracing::error!(dir = %core.log.dir().display(), "periodic sync: {e}");
                }
            }
        })
    }

    /// Merges whenever a write (or, checked every second, expiry) passes the thresholds.
    pub fn merger(core: Arc<Core>) -> Result<Self> {
        let signal = core.merge_signal.clone();
        let sig = signal.clone();
        Self::spawn("caskdb-merge", signal, move || {
            loop {
                {
                    let mut st = sig.state.lock();
                    while !st.stop && !st.wanted {
                        // Woken by a write that passed the thresholds, or once a second to see
                        // whether expired records did (nothing is written when keys expire).
                        if sig.cv.wait_for(&mut st, EXPIRY_CHECK_EVERY).timed_out()
                            && parking_lot::MutexGuard::unlocked(&mut st, || {
                                core.wants_merge_counting_expired()
                            })
                        {
                            st.wanted = true;
                        }
                    }
                    if st.stop {
                        return;
                    }
                    st.wanted = false;
                }
                if !merge_once(&core) {
                    return;
                }
            }
        })
    }

    /// Stops the thread and waits for it.
    pub fn stop(self) {
        {
            let mut st = self.signal.state.lock();
            st.stop = true;
        }
        self.signal.cv.notify_all();
        let _ = self.thread.join();
    }
}

/// One automatic merge. Returns `false` once the database is closing.
fn merge_once(core: &Core) -> bool {
    let dir = core.log.dir();
    let started = Instant::now();
    match merge::run(core, &mut |_| {}) {
        Ok(m) => {
            core.merge_retry_at.store(0, Ordering::Relaxed);
            tracing::info!(
                dir = %dir.display(),
                "automatic merge: {} files ({} bytes) into {} ({} bytes) in {:?}",
                m.files_merged, m.bytes_before, m.files_written, m.bytes_after, started.elapsed()
            );
        }
        Err(Error::Closed) => return false,
        Err(e) => {
            // Do not retry at once: wait for another merge_min_dead_bytes of garbage.
            let (_, dead) = core.log.lock().totals();
            core.merge_retry_at.store(
                dead.saturating_add(core.opts.merge_min_dead_bytes.max(1)),
                Ordering::Relaxed,
            );
            tracing::error!(dir = %dir.display(), "automatic merge failed: {e}");
        }
    }
    true
}

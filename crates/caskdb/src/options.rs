//! Tuning knobs, with documented defaults, and the builder that opens a [`Db`](crate::Db).

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::hook::MergeStep;
use crate::vfs::Vfs;

/// When appended records are forced to stable storage with `fdatasync`.
///
/// Whatever the policy, a put is in the operating system's page cache when it returns, so it
/// survives the *process* being killed. The policy decides what survives a machine crash or
/// power loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncPolicy {
    /// Every write is on disk before it returns. Concurrent writers share fsyncs (group commit):
    /// writers that arrive while an fsync is in flight are covered together by the next one.
    Always,
    /// A background thread syncs at this interval when there is something to sync, like Redis'
    /// `appendfsync everysec`: a machine crash loses at most about one interval of writes.
    Interval(Duration),
    /// Never sync explicitly (except when a data file is sealed and on close); the OS decides.
    Never,
}

impl Default for SyncPolicy {
    /// `Interval(1 s)`.
    fn default() -> Self {
        SyncPolicy::Interval(Duration::from_secs(1))
    }
}

/// Options for opening a [`Db`](crate::Db). Start from [`Options::default()`], chain setters, then call
/// [`Options::open`]:
///
/// ```
/// use caskdb::{Options, SyncPolicy};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let db = Options::default()
///     .data_file_size(1 << 20)
///     .sync(SyncPolicy::Always)
///     .open(dir.path())?;
/// assert_eq!(db.options().sync_policy(), SyncPolicy::Always);
///
/// // Out-of-range settings are refused before anything is opened.
/// let err = Options::default().data_file_size(1).open(dir.path().join("other"));
/// assert!(matches!(err, Err(caskdb::Error::InvalidOptions(_))));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) data_file_size: u64,
    pub(crate) sync: SyncPolicy,
    pub(crate) max_key_size: usize,
    pub(crate) max_value_size: usize,
    pub(crate) merge_trigger_ratio: f64,
    pub(crate) merge_min_dead_bytes: u64,
    pub(crate) auto_merge: bool,
    pub(crate) max_batch_size: usize,
    pub(crate) clock: Arc<dyn Clock>,
    /// The file layer; `None` = the real file system.
    pub(crate) vfs: Option<Arc<dyn Vfs>>,
    #[cfg(feature = "testing")]
    merge_hook: Option<MergeHook>,
}

/// See [`Options::merge_hook`].
#[cfg(feature = "testing")]
#[derive(Clone)]
struct MergeHook(Arc<dyn Fn(MergeStep) -> Result<()> + Send + Sync>);

#[cfg(feature = "testing")]
impl std::fmt::Debug for MergeHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MergeHook")
    }
}

/// Default size at which the active data file is sealed: 256 MiB.
pub const DEFAULT_DATA_FILE_SIZE: u64 = 256 << 20;
/// Default maximum key length: 64 KiB. Every key lives in memory, in the key directory.
pub const DEFAULT_MAX_KEY_SIZE: usize = 64 << 10;
/// Default maximum value length: 64 MiB.
pub const DEFAULT_MAX_VALUE_SIZE: usize = 64 << 20;

/// Default [`Options::merge_trigger_ratio`]: merge once half the bytes on disk are dead.
pub const DEFAULT_MERGE_TRIGGER_RATIO: f64 = 0.5;
/// Default [`Options::merge_min_dead_bytes`]: 64 MiB (like Redis' `auto-aof-rewrite-min-size`).
pub const DEFAULT_MERGE_MIN_DEAD_BYTES: u64 = 64 << 20;

/// Default [`Options::max_batch_size`]: 64 MiB.
pub const DEFAULT_MAX_BATCH_SIZE: usize = 64 << 20;

/// Smallest accepted `data_file_size`. Tiny files are useful in tests (every record rotates).
const MIN_DATA_FILE_SIZE: u64 = 64;
/// Largest accepted `data_file_size` (the active file is memory-mapped at this size).
const MAX_DATA_FILE_SIZE: u64 = 64 << 30;
/// Key plus value must fit the record's u32 length fields with room for the header.
const MAX_RECORD_PAYLOAD: u64 = u32::MAX as u64 - 64;

impl Default for Options {
    fn default() -> Self {
        Options {
            data_file_size: DEFAULT_DATA_FILE_SIZE,
            sync: SyncPolicy::default(),
            max_key_size: DEFAULT_MAX_KEY_SIZE,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            merge_trigger_ratio: DEFAULT_MERGE_TRIGGER_RATIO,
            merge_min_dead_bytes: DEFAULT_MERGE_MIN_DEAD_BYTES,
            auto_merge: true,
            max_batch_size: DEFAULT_MAX_BATCH_SIZE,
            clock: Arc::new(SystemClock),
            vfs: None,
            #[cfg(feature = "testing")]
            merge_hook: None,
        }
    }
}

/// Builder setters: each takes the new value of the field of its name and returns the options.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.$name = value;
                self
            }
        )*
    };
}

impl Options {
    setters! {
        /// Size in bytes at which the active data file is synced, sealed and replaced by a new one.
        /// Default 256 MiB ([`DEFAULT_DATA_FILE_SIZE`]); accepted range 64 B to 64 GiB. A single
        /// record larger than this gets a file of its own.
        data_file_size: u64;
        /// Durability policy. Default [`SyncPolicy::Interval`] of one second.
        sync: SyncPolicy;
        /// Longest key accepted by `put`, in bytes. Default 64 KiB ([`DEFAULT_MAX_KEY_SIZE`]).
        /// Lowering it later does not hide longer keys already stored.
        max_key_size: usize;
        /// Longest value accepted by `put`, in bytes. Default 64 MiB ([`DEFAULT_MAX_VALUE_SIZE`]);
        /// key plus value may not exceed 4 GiB − 64 bytes.
        max_value_size: usize;
        /// A background merge starts when dead bytes reach this fraction of all bytes in data files
        /// (and at least [`Options::merge_min_dead_bytes`]). Default 0.5
        /// ([`DEFAULT_MERGE_TRIGGER_RATIO`]); accepted range (0, 1].
        merge_trigger_ratio: f64;
        /// A background merge needs at least this many dead bytes. Default 64 MiB
        /// ([`DEFAULT_MERGE_MIN_DEAD_BYTES`]), so small databases are not merged over and over.
        merge_min_dead_bytes: u64;
        /// Whether merges start by themselves when the thresholds above are passed. Default `true`.
        /// [`Db::merge`](crate::Db::merge) works either way.
        auto_merge: bool;
        /// Largest encoded size of a [`WriteBatch`](crate::WriteBatch) (its keys, values and about
        /// 10 bytes per operation). Default 64 MiB ([`DEFAULT_MAX_BATCH_SIZE`]); at most 4 GiB − 64.
        /// A larger batch is refused with [`Error::BatchTooLarge`], nothing written.
        max_batch_size: usize;
        /// The clock expiries are measured by. Default: [`SystemClock`]. Tests can pass a
        /// [`ManualClock`](crate::ManualClock).
        clock: Arc<dyn Clock>;
    }

    /// The configured [`Options::max_batch_size`].
    pub fn max_batch_size_bytes(&self) -> usize {
        self.max_batch_size
    }

    /// The configured sync policy.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.sync
    }

    /// The file layer the database goes through for every file operation. Default: the real
    /// file system ([`StdVfs`](crate::StdVfs)). Tests plug in one that injects faults or
    /// simulates power loss.
    pub fn vfs(mut self, vfs: Arc<dyn Vfs>) -> Self {
        self.vfs = Some(vfs);
        self
    }

    /// Calls `hook` at each step of every merge; an error it returns stops the merge right
    /// there, exactly as if the process had died there. For crash tests only.
    #[cfg(feature = "testing")]
    pub fn merge_hook(
        mut self,
        hook: impl Fn(MergeStep) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.merge_hook = Some(MergeHook(Arc::new(hook)));
        self
    }

    /// Runs the merge hook, if any, at `step`.
    pub(crate) fn run_merge_hook(&self, step: MergeStep) -> Result<()> {
        #[cfg(feature = "testing")]
        if let Some(hook) = &self.merge_hook {
            return (hook.0)(step);
        }
        let _ = step;
        Ok(())
    }

    /// Checks a key against the limits: not empty, at most `max_key_size` bytes.
    pub(crate) fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.is_empty() {
            return Err(Error::KeyIsEmpty);
        }
        if key.len() > self.max_key_size {
            return Err(Error::KeyTooLarge {
                size: key.len(),
                max: self.max_key_size,
            });
        }
        Ok(())
    }

    /// Checks a value against `max_value_size`.
    pub(crate) fn check_value(&self, value: &[u8]) -> Result<()> {
        if value.len() > self.max_value_size {
            return Err(Error::ValueTooLarge {
                size: value.len(),
                max: self.max_value_size,
            });
        }
        Ok(())
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if !(MIN_DATA_FILE_SIZE..=MAX_DATA_FILE_SIZE).contains(&self.data_file_size) {
            return Err(Error::InvalidOptions(format!(
                "data_file_size {} is outside {MIN_DATA_FILE_SIZE}..={MAX_DATA_FILE_SIZE}",
                self.data_file_size
            )));
        }
        if self.max_key_size == 0 {
            return Err(Error::InvalidOptions(
                "max_key_size must be at least 1".into(),
            ));
        }
        if self.max_key_size as u64 + self.max_value_size as u64 > MAX_RECORD_PAYLOAD {
            return Err(Error::InvalidOptions(format!(
                "max_key_size + max_value_size must not exceed {MAX_RECORD_PAYLOAD} bytes"
            )));
        }
        if self.max_batch_size as u64 > MAX_RECORD_PAYLOAD {
            return Err(Error::InvalidOptions(format!(
                "max_batch_size must not exceed {MAX_RECORD_PAYLOAD} bytes"
            )));
        }
        if !(self.merge_trigger_ratio > 0.0 && self.merge_trigger_ratio <= 1.0) {
            return Err(Error::InvalidOptions(format!(
                "merge_trigger_ratio {} is outside (0, 1]",
                self.merge_trigger_ratio
            )));
        }
        if let SyncPolicy::Interval(d) = self.sync
            && d.is_zero()
        {
            return Err(Error::InvalidOptions(
                "SyncPolicy::Interval needs a non-zero interval (use Always instead)".into(),
            ));
        }
        Ok(())
    }
}

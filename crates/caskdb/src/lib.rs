//! caskdb: a Bitcask-style persistent key/value store.
//!
//! Writes are appended to numbered data files; an in-memory ordered index (the *keydir*) maps
//! every key to the file, offset and length of its latest record, so a read is one lookup and one
//! copy. Opening a database replays the files to rebuild the index, cutting a torn tail left by a
//! crash. See `docs/ARCHITECTURE.md` and `docs/FORMAT.md` in the repository.
//!
//! ```
//! use caskdb::{Options, SyncPolicy};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let db = Options::default().sync(SyncPolicy::Always).open(dir.path())?;
//! db.put("user:1", "ada")?;
//! assert_eq!(db.get("user:1")?.as_deref(), Some(&b"ada"[..]));
//!
//! // Ordered iteration, by range or prefix, from either end.
//! db.put("user:2", "grace")?;
//! let names: Vec<_> = db.prefix("user:").rev().map(|r| r.map(|(_, v)| v)).collect::<Result<_, _>>()?;
//! assert_eq!(names, ["grace", "ada"]);
//!
//! // An atomic read-modify-write.
//! db.transaction(|tx| {
//!     let n = tx.get("visits")?.map_or(0, |v| v[0]);
//!     tx.put("visits", [n + 1])
//! })?;
//!
//! db.delete("user:1")?;
//! assert_eq!(db.get("user:1")?, None);
//! db.close()?;
//! # Ok(()) }
//! ```

mod background;
mod backup;
mod batch;
mod check;
mod clock;
mod db;
mod error;
mod hint;
mod hook;
mod iter;
mod keydir;
mod log;
mod merge;
mod options;
mod overlay;
mod rebuild;
mod recovery;
mod shared;
mod stats;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
mod transaction;
mod tx_iter;
mod value_ref;
mod vfs;

pub use batch::WriteBatch;
pub use bytes::Bytes;
pub use check::{CheckProgress, CheckReport, Problem, check, check_with};
pub use clock::{Clock, ManualClock, SystemClock};
pub use db::Db;
pub use error::{Error, Result};
#[cfg(feature = "testing")]
pub use hook::MergeStep;
pub use iter::{Iter, Keys, RefIter};
pub use merge::{MergeProgress, MergeStats};
pub use options::{
    DEFAULT_DATA_FILE_SIZE, DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_KEY_SIZE, DEFAULT_MAX_VALUE_SIZE,
    DEFAULT_MERGE_MIN_DEAD_BYTES, DEFAULT_MERGE_TRIGGER_RATIO, Options, SyncPolicy,
};
pub use overlay::Overlay;
pub use stats::{FileStats, Stats};
pub use transaction::{Savepoint, StagedWrite, SyncToken, Transaction};
pub use tx_iter::{TxIter, TxKeys, TxRefIter};
pub use value_ref::{Chunks, ValueRef};
pub use vfs::{LogFile, OpenMode, StdVfs, Vfs, check_append, check_read};

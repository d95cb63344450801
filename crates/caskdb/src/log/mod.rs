//! The log: numbered data files of CRC-checked records (`docs/FORMAT.md`).
//!
//! - [`record`]: the bytes of file headers and records, and the one varint they and hints use.
//! - [`file`]: a data file, the table of open ones, and the names of files in the directory.
//! - [`writer`]: appending, rotation, group commit.
//! - [`reader`]: reading records back, and telling crash damage from corruption.

pub(crate) mod file;
pub(crate) mod reader;
pub(crate) mod record;
pub(crate) mod writer;

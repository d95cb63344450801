//! Commands: the table of every command the server knows, how a request is dispatched to one,
//! and the layers they run on.
//!
//! Each command is a function that parses its arguments, applies them to the store through
//! `Ctx`, and returns its reply. Commands flagged `WRITE` (and multi-key reads) run inside an
//! engine transaction, so each is atomic, and its writes land on disk as one record; plain
//! single-key reads run without taking the writer lock.
//!
//! The modules, from the bottom up (each imports only modules listed before it):
//! - `reply`: the result type and the error replies; `args`: argument parsers.
//! - `ctx`: the store layer (`Ctx`); `collection`: its collection half; `stream_store`: streams'
//!   records (over `collection`); `scan`: SCAN cursors.
//! - `spec`: a row of the command table, and `commands!`, which writes a group's rows.
//! - the command groups: `connection`, `client` (over `connection`), `strings`, `keys`, `server`, `hashes`, `lists`, `sets`,
//!   `zsets`, `zset_ranges`, `zset_algebra`, `transactions`, `pubsub`, `info`, `blocking` (over `lists` and
//!   `zsets`), `sort` (over `lists` and `zsets`), `debug`, `memory`, `object`, `slowlog`, `scripting`, `functions` (over `scripting`), `streams`, `stream_groups` (over `streams`), `dump` (DUMP/RESTORE, over `lists`,
//!   `zsets` and the payload format in `rdb`); each holds its rows (`COMMANDS`) and handlers.
//! - `table`: every group's rows and the lookup by name; COMMAND.
//! - `dispatch`: a request → its reply (checks, MULTI, EXEC); the one module the connection
//!   uses.
//!
//! This file only declares them.

mod acl;
mod args;
mod bitfield;
mod bits;
mod blocking;
mod client;
mod collection;
mod connection;
mod ctx;
mod debug;
pub(crate) mod dispatch;
mod dump;
mod events;
mod functions;
mod geo;
mod hashes;
mod hyperloglog;
mod info;
mod keys;
mod keyspec;
mod lists;
mod memory;
mod object;
mod pubsub;
mod reply;
mod scan;
mod scripting;
mod server;
mod sets;
mod slowlog;
mod sort;
mod spec;
mod stream_groups;
mod stream_store;
mod streams;
mod string_store;
mod strings;
mod table;
mod transactions;
mod zset_algebra;
mod zset_ranges;
mod zsets;

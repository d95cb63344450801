//! caskdb-server: a Redis-compatible server over a caskdb store.
//!
//! Speaks RESP2, and RESP3 after `HELLO 3`, so `redis-cli`, `redis-benchmark` and Redis client
//! libraries work against it. Strings, hashes, lists, sets, sorted sets, generic key commands,
//! expiry and MULTI/EXEC follow Redis 7's semantics and error texts; every write command is one atomic record in the
//! engine's log, so an acknowledged write survives `kill -9` (under `appendfsync always`, also
//! a machine crash). See the repository's README for the command list and its limits.
//!
//! ```no_run
//! # async fn run() -> Result<(), caskdb_server::ServeError> {
//! let config = caskdb_server::Config { port: 6380, ..Default::default() };
//! caskdb_server::Server::bind(config).await?.run().await
//! # }
//! ```

#![warn(missing_docs)]

mod acl;
mod blocking;
mod clients;
mod cluster;
mod cmd;
mod command_info;
pub mod config;
mod connection;
pub mod direct;
mod disk;
mod expire;
mod frame;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;
mod glob;
mod keyspace;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod lua_testing;
mod metrics;
mod notify;
mod parse;
mod pubsub;
mod rdb;
mod relay;
mod script;
mod server;
mod session;
mod shutdown;
mod state;
mod stream_records;
mod string_chunks;
mod strtod;
mod sweep;
mod tls;
mod tracking;
mod watch;

pub use config::{AppendFsync, Config};
pub use server::{ServeError, Server};
pub use state::REDIS_VERSION;

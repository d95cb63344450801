//! Replication for caskdb, through [openraft](https://docs.rs/openraft) 0.9: the Raft log and
//! the state machine, both kept by the caskdb engine.
//!
//! - [`LogStore`] ([`openraft::storage::RaftLogStorage`]): entries, the vote, the committed
//!   and purged marks in an engine directory of their own, written with
//!   [`caskdb::SyncPolicy::Always`] (group commit: concurrent appends share an fsync).
//! - [`StateMachine`] ([`openraft::storage::RaftStateMachine`]): the data directory itself.
//!   An entry carries [`Effects`], the writes of one engine transaction; applying it makes
//!   those writes and records the applied log id and membership in the same transaction, so
//!   the data and the applied index never disagree after a crash. Snapshots are files of every
//!   key at an applied index.
//!
//! - [`network`]: peers talk over TCP (a frame per request and per answer), each connection
//!   opened by a handshake proving the group's [`Secret`] (HMAC-SHA256 over fresh nonces).
//! - [`membership`]: Raft ids (a node id and an incarnation), addresses, joins and removals.
//! - [`Node`]: one member — log, state machine, listener — that initialises a fresh group, or
//!   joins a live one as a new incarnation when it has no state (a wiped directory).
//!
//! The bytes kept on disk are in docs/FORMAT.md ("Raft"). `caskdb serve --node-id --cluster`
//! runs one `Node` per server.

mod codec;
mod effects;
mod handshake;
mod log_store;
pub mod membership;
pub mod network;
mod node;
mod state_machine;
pub mod tls;

pub use effects::{Effects, Op};
pub use handshake::Secret;
pub use log_store::LogStore;
pub use node::{Node, NodeOptions};
pub use state_machine::{OnApply, StateMachine};

/// A node's id in the group.
pub type NodeId = u64;

/// What an applied entry answers (nothing yet: the leader computed the reply when it made the
/// effects).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied;

openraft::declare_raft_types!(
    /// caskdb's choice of openraft's types: entries carry [`Effects`], nodes are
    /// [`openraft::BasicNode`]s (an address), snapshots are files.
    pub TypeConfig:
        D = Effects,
        R = Applied,
        SnapshotData = tokio::fs::File,
);

/// What goes wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Stored bytes that do not decode (a newer format, or damage the engine's CRCs did not
    /// catch).
    #[error("{0}")]
    Format(String),
    /// The engine failed (I/O, a CRC mismatch naming file and offset, a locked directory…).
    #[error(transparent)]
    Engine(#[from] caskdb::Error),
    /// openraft refused the options, failed to start, or failed a request.
    #[error("raft: {0}")]
    Raft(String),
    /// A write reached a node that is not the leader.
    #[error("not the leader (the leader is {leader:?})")]
    NotLeader {
        /// The leader this node knows of, if any.
        leader: Option<NodeId>,
    },
    /// The node's Raft address could not be listened on.
    #[error("listening for raft peers on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A snapshot file could not be read or written.
    #[error("snapshot file {path}: {source}")]
    Snapshot {
        /// The file.
        path: std::path::PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

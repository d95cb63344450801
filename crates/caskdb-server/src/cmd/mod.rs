//! Commands: the table of every command the server knows, and the context they run in.
//!
//! Each command is a function that parses its arguments, applies them to the store through
//! [`Ctx`], and returns its reply. Commands flagged `WRITE` (and multi-key reads) run inside an
//! engine transaction, so each is atomic, and its writes land on disk as one record; plain
//! single-key reads run without taking the writer lock.

mod args;
mod collection;
mod connection;
mod ctx;
mod hashes;
mod keys;
mod lists;
mod reply;
mod scan;
mod server;
mod sets;
mod spec;
mod strings;
mod table;
mod transactions;
mod zsets;

use bytes::Bytes;

use crate::frame::Frame;
use crate::session::ConnState;
use crate::state::Shared;
pub(crate) use ctx::{Ctx, Store};
pub(crate) use reply::{engine_error, unknown_command, wrong_arity};
pub(crate) use spec::{Spec, flags};
pub(crate) use table::lookup;

/// Runs one command against `store` and returns its reply.
pub(crate) fn execute(
    shared: &Shared,
    conn: &mut ConnState,
    store: Store<'_, '_>,
    spec: &Spec,
    args: &[Bytes],
) -> Frame {
    let mut ctx = Ctx {
        shared,
        conn,
        store,
        member_writes: 0,
    };
    // A command that fails has no effect, even if it had staged writes before failing (a
    // member too large, a storage error…): its writes are rolled back, the transaction's
    // earlier ones (EXEC) are kept.
    let savepoint = match &mut ctx.store {
        Store::Write(tx) => Some(tx.savepoint()),
        Store::Read(_) => None,
    };
    match (spec.run)(&mut ctx, args) {
        Ok(f) => f,
        Err(e) => {
            if let (Some(sp), Store::Write(tx)) = (savepoint, &mut ctx.store) {
                tx.rollback_to(sp);
            }
            e.into_frame()
        }
    }
}

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
mod strings;
mod transactions;
mod zsets;

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::frame::Frame;
use crate::session::ConnState;
use crate::state::Shared;
pub(crate) use ctx::{Ctx, Store};
pub(crate) use reply::{CmdResult, engine_error, unknown_command, wrong_arity};

/// Command properties (Redis's flags, as far as the server uses them).
pub(crate) mod flags {
    /// Changes data: runs in a transaction.
    pub const WRITE: u32 = 1;
    /// Reads several keys: runs in a transaction so that it sees one state.
    pub const ATOMIC_READ: u32 = 1 << 1;
    /// Allowed before authentication.
    pub const NO_AUTH: u32 = 1 << 2;
    /// Executed at once even inside MULTI (MULTI, EXEC, DISCARD, WATCH, QUIT, RESET).
    pub const NO_QUEUE: u32 = 1 << 3;
    /// Rejected inside MULTI (WATCH, MULTI itself).
    pub const NO_MULTI: u32 = 1 << 4;
    /// Fast (O(1) or O(log n)).
    pub const FAST: u32 = 1 << 5;
    /// Read-only.
    pub const READONLY: u32 = 1 << 6;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 7;
}

/// A command handler.
pub(crate) type Handler = fn(&mut Ctx<'_, '_>, &[Bytes]) -> CmdResult;

/// One entry of the command table.
pub(crate) struct Spec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis's convention: `n` exactly n arguments (name included), `-n` at least n.
    pub arity: i32,
    pub flags: u32,
    /// Key positions for `COMMAND INFO`: first, last (-1 = last argument), step.
    pub keys: (i32, i32, i32),
    pub group: &'static str,
    pub summary: &'static str,
    pub run: Handler,
}

impl Spec {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Whether `argc` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i32;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// Whether the command must run inside a transaction.
    pub fn needs_tx(&self) -> bool {
        self.has(flags::WRITE | flags::ATOMIC_READ)
    }
}

/// Every command, in alphabetical order.
pub(crate) fn table() -> &'static [Spec] {
    static TABLE: OnceLock<Vec<Spec>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Vec::new();
        connection::register(&mut t);
        server::register(&mut t);
        strings::register(&mut t);
        keys::register(&mut t);
        hashes::register(&mut t);
        sets::register(&mut t);
        lists::register(&mut t);
        zsets::register(&mut t);
        transactions::register(&mut t);
        t.sort_by_key(|s| s.name);
        t
    })
}

/// Finds a command by name, in any case.
pub(crate) fn lookup(name: &[u8]) -> Option<&'static Spec> {
    static INDEX: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        table()
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name, i))
            .collect()
    });
    if name.len() > 32 {
        return None;
    }
    let mut buf = [0u8; 32];
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let name = std::str::from_utf8(lower).ok()?;
    index.get(name).map(|&i| &table()[i])
}

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

/// A helper for `register`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    group: &'static str,
    summary: &'static str,
    run: Handler,
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        keys,
        group,
        summary,
        run,
    }
}

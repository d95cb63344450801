//! Commands: the table of every command the server knows, and the context they run in.
//!
//! Each command is a function that parses its arguments, applies them to the store through
//! [`Ctx`], and returns its reply. Commands flagged `WRITE` (and multi-key reads) run inside an
//! engine transaction, so each is atomic, and its writes land on disk as one record; plain
//! single-key reads run without taking the writer lock.

mod connection;
mod hashes;
pub(crate) mod keys;
mod lists;
mod server;
mod sets;
mod strings;
mod transactions;
mod zsets;

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use caskdb::{Db, Transaction};

use crate::frame::Frame;
use crate::keyspace::{self, Entry, Type};
use crate::parse::parse_i64;
use crate::session::ConnState;
use crate::state::Shared;

/// What a command returns: its reply, or an early reply (an error, usually) through `?`.
pub(crate) type CmdResult = Result<Frame, CmdError>;

/// Why a command stopped early.
#[derive(Debug)]
pub(crate) enum CmdError {
    /// Reply with this frame.
    Reply(Frame),
    /// The engine failed: reply with an error naming the failure.
    Engine(caskdb::Error),
}

impl From<caskdb::Error> for CmdError {
    fn from(e: caskdb::Error) -> Self {
        CmdError::Engine(e)
    }
}

impl From<Frame> for CmdError {
    fn from(f: Frame) -> Self {
        CmdError::Reply(f)
    }
}

impl CmdError {
    /// The reply a client gets.
    pub(crate) fn into_frame(self) -> Frame {
        match self {
            CmdError::Reply(f) => f,
            CmdError::Engine(e) => engine_error(&e),
        }
    }
}

/// The reply for a key of `len` bytes, over [`keyspace::MAX_KEY_LEN`].
pub(crate) fn key_too_large(len: usize) -> Frame {
    Frame::err(format!(
        "key is too large ({len} bytes; the limit is {} bytes)",
        keyspace::MAX_KEY_LEN
    ))
}

/// The reply for a string longer than `proto-max-bulk-len`.
fn string_too_large() -> Frame {
    Frame::err("string exceeds maximum allowed size (proto-max-bulk-len)")
}

/// The reply for an engine error.
pub(crate) fn engine_error(e: &caskdb::Error) -> Frame {
    match e {
        // The engine's key carries a two-byte prefix (keyspace.rs).
        caskdb::Error::KeyTooLarge { size, .. } => key_too_large(size.saturating_sub(2)),
        caskdb::Error::ValueTooLarge { .. } => string_too_large(),
        caskdb::Error::BatchTooLarge { size, max } => Frame::err(format!(
            "transaction too large ({size} bytes; the limit is {max} bytes)"
        )),
        other => Frame::err(format!("storage: {other}")),
    }
}

pub(crate) fn syntax_error() -> CmdError {
    Frame::err("syntax error").into()
}

pub(crate) fn wrongtype() -> CmdError {
    Frame::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into()).into()
}

pub(crate) fn not_an_integer() -> CmdError {
    Frame::err("value is not an integer or out of range").into()
}

pub(crate) fn wrong_arity(name: &str) -> Frame {
    Frame::err(format!("wrong number of arguments for '{name}' command"))
}

/// Parses an integer argument as Redis does.
pub(crate) fn int_arg(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or_else(not_an_integer)
}

/// Whether `arg` equals `word`, ignoring ASCII case.
pub(crate) fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// The store a command sees: lock-free reads, or a transaction.
pub(crate) enum Store<'a, 'db> {
    Read(&'a Db),
    Write(&'a mut Transaction<'db>),
}

/// Everything a command can touch.
pub(crate) struct Ctx<'a, 'db> {
    pub shared: &'a Shared,
    pub conn: &'a mut ConnState,
    pub store: Store<'a, 'db>,
    /// Member records this command wrote or deleted (collection.rs), so that one that
    /// changed nothing does not signal WATCH.
    pub member_writes: u32,
}

impl<'db> Ctx<'_, 'db> {
    /// Milliseconds since the epoch, as the engine judges expiry.
    pub fn now_ms(&self) -> u64 {
        match &self.store {
            Store::Read(db) => db.now_ms(),
            Store::Write(tx) => tx.now_ms(),
        }
    }

    /// The value of `key` in database `db`, of any type.
    pub fn lookup_in(&mut self, db: u8, key: &[u8]) -> Result<Option<Entry>, CmdError> {
        let ek = keyspace::engine_key(db, key);
        let raw = match &self.store {
            Store::Read(d) => d.get_with_expiry(&ek),
            Store::Write(tx) => tx.get_with_expiry(&ek),
        }?;
        match raw {
            None => Ok(None),
            Some((v, exp)) => match Entry::decode(v, exp) {
                Some(e) => Ok(Some(e)),
                None => {
                    Err(Frame::err("value of unknown type (written by a newer version?)").into())
                }
            },
        }
    }

    /// The value of `key` in the selected database, of any type.
    pub fn lookup(&mut self, key: &[u8]) -> Result<Option<Entry>, CmdError> {
        self.lookup_in(self.conn.db, key)
    }

    /// The string under `key` and its expiry; WRONGTYPE for other types.
    pub fn get_string(&mut self, key: &[u8]) -> Result<Option<(Bytes, Option<u64>)>, CmdError> {
        match self.lookup(key)? {
            None => Ok(None),
            Some(e) if e.ty == Type::String => Ok(Some((e.payload, e.expire_at))),
            Some(_) => Err(wrongtype()),
        }
    }

    /// Whether `key` exists in database `db`. Reads no value.
    pub fn exists_in(&mut self, db: u8, key: &[u8]) -> Result<bool, CmdError> {
        let ek = keyspace::engine_key(db, key);
        Ok(match &self.store {
            Store::Read(d) => d.contains_key(&ek),
            Store::Write(tx) => tx.contains_key(&ek),
        }?)
    }

    pub fn tx(&mut self) -> Result<&mut Transaction<'db>, CmdError> {
        match &mut self.store {
            Store::Write(tx) => Ok(*tx),
            Store::Read(_) => Err(Frame::err("internal error: write outside a transaction").into()),
        }
    }

    /// Stores a value (type byte included) under `key` in `db`. An expiry already past deletes
    /// the key instead, as Redis does.
    pub fn put_raw(
        &mut self,
        db: u8,
        key: &[u8],
        raw: Bytes,
        expire_at: Option<u64>,
    ) -> Result<(), CmdError> {
        if key.len() > keyspace::MAX_KEY_LEN {
            return Err(key_too_large(key.len()).into());
        }
        if let Some(at) = expire_at
            && at <= self.now_ms()
        {
            self.remove_in(db, key)?;
            return Ok(());
        }
        let ek = keyspace::engine_key(db, key);
        self.shared.watches.touch(db, key);
        let tx = self.tx()?;
        match expire_at {
            None => tx.put(&ek, raw)?,
            Some(at) => tx.put_expiring_at(&ek, raw, at)?,
        }
        Ok(())
    }

    /// Refuses a string of `len` bytes if it is over `proto-max-bulk-len` (checked before a
    /// command builds a long value, and by every string write).
    pub fn check_string_len(&self, len: u64) -> Result<(), CmdError> {
        if len > self.shared.config.proto_max_bulk_len() {
            return Err(string_too_large().into());
        }
        Ok(())
    }

    /// Stores the string `value` under `key` in the selected database.
    pub fn set_string(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at: Option<u64>,
    ) -> Result<(), CmdError> {
        self.check_string_len(value.len() as u64)?;
        self.put_raw(
            self.conn.db,
            key,
            Entry::encode(Type::String, value),
            expire_at,
        )
    }

    /// Deletes `key` from `db`; returns whether it existed.
    pub fn remove_in(&mut self, db: u8, key: &[u8]) -> Result<bool, CmdError> {
        let ek = keyspace::engine_key(db, key);
        let tx = self.tx()?;
        let existed = tx.delete(&ek)?;
        if existed {
            self.shared.watches.touch(db, key);
        }
        Ok(existed)
    }

    /// Deletes `key` from `db` like [`Ctx::remove_in`], noting the members a collection leaves
    /// behind for the sweeper.
    pub fn remove_counting_in(&mut self, db: u8, key: &[u8]) -> Result<bool, CmdError> {
        // A value this version cannot decode is still deleted (only not counted).
        if let Ok(Some(e)) = self.lookup_in(db, key)
            && let Some(m) = keyspace::Meta::decode(&e)
        {
            self.shared.collections.orphaned(m.len);
        }
        self.remove_in(db, key)
    }

    /// [`Ctx::remove_counting_in`] in the selected database.
    pub fn remove_counting(&mut self, key: &[u8]) -> Result<bool, CmdError> {
        self.remove_counting_in(self.conn.db, key)
    }

    /// Deletes `key` from the selected database; returns whether it existed.
    pub fn remove(&mut self, key: &[u8]) -> Result<bool, CmdError> {
        self.remove_in(self.conn.db, key)
    }

    /// Up to `limit` keys of database `db` after `after` (from the first if `None`), in order.
    pub fn keys_after(
        &mut self,
        db: u8,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Bytes>, CmdError> {
        match after {
            Some(k) => self.keys_from(db, std::ops::Bound::Excluded(k), limit),
            None => self.keys_from(db, std::ops::Bound::Unbounded, limit),
        }
    }

    /// Calls `f` with the keys of `db` from `start` on, in order, `step` at a time, until it
    /// returns `false` or the keys run out. Memory is bounded by `step`, not by the database.
    pub fn walk_keys(
        &mut self,
        db: u8,
        start: std::ops::Bound<&[u8]>,
        step: usize,
        mut f: impl FnMut(&mut Self, Vec<Bytes>) -> Result<bool, CmdError>,
    ) -> Result<(), CmdError> {
        let mut batch = self.keys_from(db, start, step)?;
        while let Some(last) = batch.last().cloned() {
            if !f(self, batch)? {
                break;
            }
            batch = self.keys_from(db, std::ops::Bound::Excluded(&last), step)?;
        }
        Ok(())
    }

    /// Up to `limit` keys of database `db` from `start` on, in order.
    pub fn keys_from(
        &mut self,
        db: u8,
        start: std::ops::Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Bytes>, CmdError> {
        use std::ops::Bound;
        let (first, end) = keyspace::db_range(db);
        let lo: Bound<Vec<u8>> = match start {
            Bound::Included(k) => Bound::Included(keyspace::engine_key(db, k).to_vec()),
            Bound::Excluded(k) => Bound::Excluded(keyspace::engine_key(db, k).to_vec()),
            Bound::Unbounded => Bound::Included(first.to_vec()),
        };
        let hi = Bound::Excluded(end.to_vec());
        let keys = match &self.store {
            Store::Read(d) => {
                let mut out = Vec::new();
                for k in d.range_keys((lo, hi)).take(limit) {
                    out.push(k?);
                }
                out
            }
            Store::Write(tx) => tx.keys_in((lo, hi), limit)?,
        };
        Ok(keys.into_iter().map(|k| k.slice(2..)).collect())
    }
}

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

/// Redis's reply to an unknown command.
pub(crate) fn unknown_command(args: &[Bytes]) -> Frame {
    let mut msg = format!(
        "unknown command '{}', with args beginning with: ",
        String::from_utf8_lossy(&args[0])
    );
    for a in args.iter().skip(1).take(20) {
        msg.push_str(&format!("'{}' ", String::from_utf8_lossy(a)));
    }
    Frame::err(msg)
}

/// Redis's reply to an unknown subcommand.
pub(crate) fn unknown_subcommand(sub: &[u8], cmd: &str) -> Frame {
    Frame::err(format!(
        "unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        cmd.to_ascii_uppercase()
    ))
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

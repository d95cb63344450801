//! A row of the command table ([`Spec`]: name, arity, flags, key positions, docs, handler), the
//! flags, and [`commands!`], which writes a command group's rows. Each group module holds its
//! rows; `table.rs` gathers them.

use bytes::Bytes;

use super::ctx::Ctx;
use super::reply::CmdResult;

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
    /// Allowed on a RESP2 connection in subscribe mode ((P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING,
    /// QUIT, RESET).
    pub const SUBSCRIBED_OK: u32 = 1 << 8;
    /// A container of subcommands (CLIENT, CONFIG…): CLIENT LIST shows `name|sub`.
    pub const CONTAINER: u32 = 1 << 9;
    /// Read-only, in a transaction so that it sees one state: the collection reads (their member
    /// records are read through one) and the reads of several keys.
    pub const READ_TX: u32 = READONLY | ATOMIC_READ;
}

/// A command handler.
pub(crate) type Handler = fn(&mut Ctx<'_, '_>, &[Bytes]) -> CmdResult;

/// How dispatch runs a command (`dispatch.rs`, which also says where the kinds to come fit).
#[derive(Clone, Copy)]
pub(crate) enum Run {
    /// Its handler, against the store: every command but EXEC.
    Store(Handler),
    /// EXEC: the connection's queued commands, in one engine transaction. Dispatch runs it (it
    /// holds the queue and the table); refused for its arity, it also discards the transaction.
    Exec,
    /// A script (EVAL, EVALSHA, their `_RO` forms): dispatch runs it in one engine
    /// transaction, its `redis.call`s through the table.
    Script(ScriptCall),
}

/// Which script command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScriptCall {
    /// EVAL / EVAL_RO (`ro`): the body is the first argument.
    Eval { ro: bool },
    /// EVALSHA / EVALSHA_RO: the SHA1 of a cached body.
    EvalSha { ro: bool },
    /// FCALL / FCALL_RO: a function of a loaded library.
    Fcall { ro: bool },
}

/// One row of the command table.
pub(crate) struct Spec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis's convention: `n` exactly n arguments (name included), `-n` at least n.
    pub arity: i32,
    /// [`flags`], or-ed.
    pub flags: u32,
    /// Key positions for `COMMAND INFO`: the first key argument (0: none), the last (-1: the
    /// last argument), the step between keys.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// Redis's command group (`COMMAND INFO`, `COMMAND DOCS`).
    pub group: &'static str,
    /// One sentence for `COMMAND DOCS`.
    pub summary: &'static str,
    pub run: Run,
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

/// A command group's rows of the command table, as a `&'static [Spec]`; one row per command,
/// laid out as in Redis's table:
///
/// ```text
/// commands! {
///     group "string";
///     /// Returns the string value of a key.
///     "get", 2, READONLY | FAST, 1, 1, 1 => get;
/// }
/// ```
///
/// That is: the summary (`COMMAND DOCS`) as doc comments, on as many lines as it takes (each
/// line after the first continues the sentence, after its leading space); then name, arity,
/// flags, first key, last key, key step, and what runs it: the handler; or a function (or `Ctx`
/// method) that takes more arguments after a handler's two, with those arguments, for the
/// commands that are variants of one (`=> ttl_generic(true, false)` runs
/// `ttl_generic(ctx, args, true, false)`, `=> Ctx::coll_len(Type::Hash)` runs
/// `Ctx::coll_len(ctx, args, Type::Hash)`); or a [`Run`] variant other than `Store`
/// (`=> Run::Exec`, `=> Run::Script(ScriptCall::Eval { ro: false })`).
macro_rules! commands {
    (
        group $group:literal;
        $(
            $(#[doc = $doc:literal])+
            $name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr
                => $head:ident $(:: $tail:ident)? $(($($arg:expr),*))?;
        )*
    ) => {
        &[$(
            $crate::cmd::spec::Spec {
                name: $name,
                arity: $arity,
                flags: $flags,
                first_key: $first,
                last_key: $last,
                step: $step,
                group: $group,
                summary: concat!($($doc),+).trim_ascii_start(),
                run: $crate::cmd::spec::commands!(@run $head $(:: $tail)? $(($($arg),*))?),
            },
        )*]
    };
    (@run Run::$variant:ident) => {
        $crate::cmd::spec::Run::$variant
    };
    (@run Run::$variant:ident ($($arg:expr),*)) => {
        $crate::cmd::spec::Run::$variant($($arg),*)
    };
    (@run $handler:ident) => {
        $crate::cmd::spec::Run::Store($handler)
    };
    (@run $($handler:ident)::+ ($($arg:expr),*)) => {
        $crate::cmd::spec::Run::Store(|ctx, args| $($handler)::+(ctx, args, $($arg),*))
    };
}
pub(crate) use commands;

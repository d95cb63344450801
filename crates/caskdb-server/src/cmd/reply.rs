//! The replies a command stops with: its result type, and the error replies commands share
//! (with Redis's texts).

use bytes::Bytes;

use crate::frame::Frame;
use crate::keyspace;

/// The reply to a command refused for `maxmemory`.
pub(crate) const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// What a command returns: its reply, or an early reply (an error, usually) through `?`.
pub(crate) type CmdResult = Result<Frame, CmdError>;

/// Why a command stopped early.
#[derive(Debug)]
pub(crate) enum CmdError {
    /// Reply with this frame.
    Reply(Frame),
    /// The engine failed: reply with an error naming the failure.
    Engine(caskdb::Error),
    /// A blocking command found nothing to pop: the client waits (see `blocking.rs`).
    Block(Box<BlockOn>),
}

/// What a blocked command waits for.
#[derive(Debug)]
pub(crate) struct BlockOn {
    /// The keys, in the command's order.
    pub keys: Vec<Bytes>,
    /// How long; `None` for ever.
    pub timeout: Option<std::time::Duration>,
    /// The type a key must have to serve it.
    pub ty: crate::keyspace::Type,
    /// The reply when the time is up.
    pub timeout_reply: Frame,
    /// The command to run when a key is ready, if not the one that blocked (XREAD's, with
    /// `$` resolved).
    pub args: Option<Vec<Bytes>>,
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
            CmdError::Block(on) => on.timeout_reply,
        }
    }
}

/// A HELP reply: one status line per line of text, as Redis sends them.
pub(crate) fn help(lines: &[&'static str]) -> Frame {
    Frame::Array(lines.iter().map(|l| Frame::Simple(l)).collect())
}

/// The reply for a key of `len` bytes, over [`keyspace::MAX_KEY_LEN`].
pub(crate) fn key_too_large(len: usize) -> Frame {
    Frame::err(format!(
        "key is too large ({len} bytes; the limit is {} bytes)",
        keyspace::MAX_KEY_LEN
    ))
}

/// The reply for a string longer than `proto-max-bulk-len`.
pub(crate) fn string_too_large() -> Frame {
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

/// ERR syntax error.
pub(crate) fn syntax_error() -> CmdError {
    Frame::err("syntax error").into()
}

/// The reply to a command on a key of another type.
pub(crate) fn wrongtype() -> CmdError {
    Frame::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into()).into()
}

/// The reply for an integer argument that is not one (or out of range).
pub(crate) fn not_an_integer() -> CmdError {
    Frame::err("value is not an integer or out of range").into()
}

/// The reply for a wrong number of arguments; `name` is the command (or `cmd|sub`).
pub(crate) fn wrong_arity(name: &str) -> Frame {
    Frame::err(arity_message(name))
}

/// [`wrong_arity`]'s message, without the error code.
pub(crate) fn arity_message(name: &str) -> String {
    format!("wrong number of arguments for '{name}' command")
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

/// Redis's reply to a subcommand of `container` (as `acl`) it knows, with arguments it does not
/// take.
pub(crate) fn subcommand_syntax_error(sub: &[u8], container: &str) -> Frame {
    Frame::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        container.to_ascii_uppercase()
    ))
}

/// For a subcommand of `container` (`args[1]`): Redis's "unknown subcommand" or arity error,
/// from the arities of Redis's table (`command_info`), or `None` when the call is well formed.
pub(crate) fn subcommand_error(container: &str, args: &[Bytes]) -> Option<Frame> {
    let sub = args.get(1)?;
    let name = format!(
        "{container}|{}",
        String::from_utf8_lossy(sub).to_ascii_lowercase()
    );
    let Some(info) = crate::command_info::get(&name) else {
        return Some(unknown_subcommand(sub, container));
    };
    let argc = args.len() as i64;
    if (info.arity > 0 && info.arity != argc) || argc < -info.arity {
        return Some(wrong_arity(&name));
    }
    None
}

//! SLOWLOG (GET, LEN, RESET, HELP; `slowlog-log-slower-than`, `slowlog-max-len`) and LATENCY
//! (HELP, LATEST, HISTORY, RESET, DOCTOR: latency monitoring is off, as Redis's default).

use bytes::Bytes;

use super::args::is;
use super::ctx::Ctx;
use super::reply::{CmdResult, help, unknown_subcommand, wrong_arity};
use super::spec::flags::{ADMIN, CONTAINER};
use super::spec::{Spec, commands};
use crate::frame::Frame;
use crate::parse::parse_i64;

/// SLOWLOG and LATENCY.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "server";
    /// A container for slow log commands.
    "slowlog", -2, ADMIN | CONTAINER, 0, 0, 0 => slowlog;
    /// A container for latency diagnostics commands.
    "latency", -2, ADMIN | CONTAINER, 0, 0, 0 => latency;
};

/// Redis's reply to a subcommand given the wrong number of arguments.
fn wrong_args(sub: &[u8], cmd: &str) -> Frame {
    Frame::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {cmd} HELP.",
        String::from_utf8_lossy(sub)
    ))
}

fn slowlog(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let log = &ctx.shared.slowlog;
    if is(sub, "get") && args.len() <= 3 {
        let n = match args.get(2) {
            None => 10,
            Some(a) => match parse_i64(a) {
                Some(-1) => usize::MAX,
                Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
                _ => return Ok(Frame::err("count should be greater than or equal to -1")),
            },
        };
        return Ok(Frame::Array(log.newest(n, |e| {
            Frame::Array(vec![
                Frame::Integer(e.id as i64),
                Frame::Integer(e.time as i64),
                Frame::Integer(e.usec as i64),
                Frame::Array(e.args.iter().cloned().map(Frame::Bulk).collect()),
                Frame::bulk(&e.addr),
                Frame::Bulk(e.name.clone()),
            ])
        })));
    }
    if is(sub, "len") && args.len() == 2 {
        return Ok(Frame::Integer(log.len() as i64));
    }
    if is(sub, "reset") && args.len() == 2 {
        log.reset();
        return Ok(Frame::OK);
    }
    if is(sub, "help") && args.len() == 2 {
        return Ok(help(&[
            "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
            "HELP",
            "    Prints this help.",
        ]));
    }
    if is(sub, "get") {
        return Ok(wrong_args(sub, "SLOWLOG"));
    }
    if let Some(w) = ["len", "reset", "help"].into_iter().find(|w| is(sub, w)) {
        return Ok(wrong_arity(&format!("slowlog|{w}")));
    }
    Ok(unknown_subcommand(sub, "slowlog"))
}

fn latency(_ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "latest") && args.len() == 2 {
        return Ok(Frame::Array(Vec::new()));
    }
    if is(sub, "history") && args.len() == 3 {
        return Ok(Frame::Array(Vec::new()));
    }
    if is(sub, "reset") {
        return Ok(Frame::Integer(0));
    }
    if is(sub, "doctor") && args.len() == 2 {
        return Ok(Frame::Verbatim(
            "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into(),
        ));
    }
    if is(sub, "help") && args.len() == 2 {
        return Ok(help(&[
            "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
            "HELP",
            "    Prints this help.",
        ]));
    }
    if let Some(w) = ["latest", "history", "doctor", "help"]
        .into_iter()
        .find(|w| is(sub, w))
    {
        return Ok(wrong_arity(&format!("latency|{w}")));
    }
    Ok(unknown_subcommand(sub, "latency"))
}

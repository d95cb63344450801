//! Pub/sub commands: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs, PUBLISH,
//! SPUBLISH, PUBSUB. The registry is `pubsub.rs`; the connection writes the messages.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::args::is;
use super::ctx::Ctx;
use super::reply::{CmdResult, help, unknown_subcommand, wrong_arity};
use super::spec::flags::{CONTAINER, FAST, SUBSCRIBED_OK};
use super::spec::{Spec, commands};
use crate::frame::Frame;
use crate::pubsub::Kind;
use crate::session::Subscriptions;

/// The pub/sub commands.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "pubsub";
    /// Listens for messages published to channels.
    "subscribe", -2, SUBSCRIBED_OK, 0, 0, 0 => subscribe(Kind::Channel);
    /// Stops listening to messages posted to channels.
    "unsubscribe", -1, SUBSCRIBED_OK, 0, 0, 0 => unsubscribe(Kind::Channel);
    /// Listens for messages published to channels that match one or more patterns.
    "psubscribe", -2, SUBSCRIBED_OK, 0, 0, 0 => subscribe(Kind::Pattern);
    /// Stops listening to messages published to channels that match one or more patterns.
    "punsubscribe", -1, SUBSCRIBED_OK, 0, 0, 0 => unsubscribe(Kind::Pattern);
    /// Listens for messages published to shard channels.
    "ssubscribe", -2, SUBSCRIBED_OK, 1, -1, 1 => subscribe(Kind::Shard);
    /// Stops listening to messages posted to shard channels.
    "sunsubscribe", -1, SUBSCRIBED_OK, 1, -1, 1 => unsubscribe(Kind::Shard);
    /// Posts a message to a channel.
    "publish", 3, FAST, 0, 0, 0 => publish(false);
    /// Post a message to a shard channel.
    "spublish", 3, FAST, 1, 1, 1 => publish(true);
    /// A container for Pub/Sub commands.
    "pubsub", -2, CONTAINER, 0, 0, 0 => pubsub;
};

/// The words a confirmation starts with.
fn verb(kind: Kind, subscribe: bool) -> &'static str {
    match (kind, subscribe) {
        (Kind::Channel, true) => "subscribe",
        (Kind::Channel, false) => "unsubscribe",
        (Kind::Pattern, true) => "psubscribe",
        (Kind::Pattern, false) => "punsubscribe",
        (Kind::Shard, true) => "ssubscribe",
        (Kind::Shard, false) => "sunsubscribe",
    }
}

/// The count a confirmation carries: channels and patterns together, shard channels apart.
fn count(subs: &Subscriptions, kind: Kind) -> i64 {
    let n = match kind {
        Kind::Shard => subs.names[2].len(),
        _ => subs.names[0].len() + subs.names[1].len(),
    };
    n as i64
}

fn confirmation(kind: Kind, subscribe: bool, name: Option<Bytes>, n: i64) -> Frame {
    Frame::Push(vec![
        Frame::bulk(verb(kind, subscribe)),
        name.map_or(Frame::Null, Frame::Bulk),
        Frame::Integer(n),
    ])
}

fn subscribe(ctx: &mut Ctx<'_, '_>, args: &[Bytes], kind: Kind) -> CmdResult {
    if ctx.conn.multi.is_some() || matches!(ctx.store, super::ctx::Store::Write(_)) {
        // Inside MULTI the connection could not switch to push mode mid-EXEC.
        return Ok(Frame::err(format!(
            "Command not allowed inside a transaction: {}",
            verb(kind, true)
        )));
    }
    let info = ctx.conn.info.clone();
    let subs = ctx.conn.subscriptions();
    let mut replies = Vec::with_capacity(args.len() - 1);
    for name in &args[1..] {
        if subs.names[kind.index()].insert(name.clone()) {
            ctx.shared.pubsub.subscribe(kind, name, &subs.handle);
        }
        replies.push(confirmation(
            kind,
            true,
            Some(name.clone()),
            count(subs, kind),
        ));
    }
    info.subs[kind.index()].store(subs.names[kind.index()].len(), Ordering::Relaxed);
    Ok(Frame::Sequence(replies))
}

fn unsubscribe(ctx: &mut Ctx<'_, '_>, args: &[Bytes], kind: Kind) -> CmdResult {
    let Some(subs) = ctx.conn.subs.as_mut() else {
        // Never subscribed: one confirmation per name all the same, as Redis.
        if args.len() == 1 {
            return Ok(confirmation(kind, false, None, 0));
        }
        return Ok(Frame::Sequence(
            args[1..]
                .iter()
                .map(|n| confirmation(kind, false, Some(n.clone()), 0))
                .collect(),
        ));
    };
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        subs.names[kind.index()].iter().cloned().collect()
    };
    if names.is_empty() {
        return Ok(confirmation(kind, false, None, count(subs, kind)));
    }
    let mut replies = Vec::with_capacity(names.len());
    for name in names {
        if subs.names[kind.index()].remove(&name) {
            ctx.shared.pubsub.unsubscribe(kind, &name, subs.handle.id);
        }
        replies.push(confirmation(kind, false, Some(name), count(subs, kind)));
    }
    ctx.conn.info.subs[kind.index()].store(subs.names[kind.index()].len(), Ordering::Relaxed);
    Ok(Frame::Sequence(replies))
}

/// Drops every subscription of the connection (RESET).
pub(crate) fn unsubscribe_all(ctx: &mut Ctx<'_, '_>) {
    if let Some(subs) = ctx.conn.subs.take() {
        ctx.shared.pubsub.forget(&subs.names, subs.handle.id);
        for n in &ctx.conn.info.subs {
            n.store(0, Ordering::Relaxed);
        }
        *ctx.conn.info.inbox.lock() = None;
    }
}

fn publish(ctx: &mut Ctx<'_, '_>, args: &[Bytes], shard: bool) -> CmdResult {
    let limit = ctx.shared.config.pubsub_limit();
    let n = ctx.shared.pubsub.publish(shard, &args[1], &args[2], limit);
    // In a group, the other nodes' subscribers get it too; the count is this node's, as in
    // Redis Cluster.
    crate::relay::publish(ctx.shared, shard, &args[1], &args[2]);
    Ok(Frame::Integer(n as i64))
}

fn pubsub(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let ps = &ctx.shared.pubsub;
    let names = |kind: Kind| -> CmdResult {
        let pattern = match args.len() {
            2 => None,
            3 => Some(&args[2][..]),
            _ => {
                return Ok(Frame::err(format!(
                    "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                    String::from_utf8_lossy(sub)
                )));
            }
        };
        Ok(Frame::Array(
            ps.names(kind, pattern)
                .into_iter()
                .map(Frame::Bulk)
                .collect(),
        ))
    };
    let numsub = |kind: Kind| -> CmdResult {
        let mut out = Vec::with_capacity((args.len() - 2) * 2);
        for name in &args[2..] {
            out.push(Frame::Bulk(name.clone()));
            out.push(Frame::Integer(ps.count(kind, name) as i64));
        }
        Ok(Frame::Array(out))
    };
    if is(sub, "channels") {
        return names(Kind::Channel);
    }
    if is(sub, "shardchannels") {
        return names(Kind::Shard);
    }
    if is(sub, "numsub") {
        return numsub(Kind::Channel);
    }
    if is(sub, "shardnumsub") {
        return numsub(Kind::Shard);
    }
    if is(sub, "numpat") {
        if args.len() != 2 {
            return Ok(wrong_arity("pubsub|numpat"));
        }
        return Ok(Frame::Integer(ps.len(Kind::Pattern) as i64));
    }
    if is(sub, "help") {
        let lines = [
            "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
            "HELP",
            "    Prints this help.",
        ];
        return Ok(help(&lines));
    }
    Ok(unknown_subcommand(sub, "pubsub"))
}

//! MULTI/EXEC/DISCARD/WATCH/UNWATCH (the registry of watched keys is `watch.rs`).
//!
//! EXEC itself is run by `dispatch.rs` (it needs the queued commands and the table): all queued
//! commands run inside one engine transaction, so no other write interleaves and their writes
//! land on disk as one atomic record.

use bytes::Bytes;

use super::ctx::Ctx;
use super::reply::CmdResult;
use super::spec::flags::{FAST, NO_MULTI, NO_QUEUE};
use super::spec::{Spec, commands};
use crate::frame::Frame;
use crate::session::Multi;

/// The transaction commands.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "transactions";
    /// Starts a transaction.
    "multi", 1, FAST | NO_QUEUE | NO_MULTI, 0, 0, 0 => multi;
    /// Executes all commands in a transaction.
    "exec", 1, NO_QUEUE, 0, 0, 0 => Run::Exec;
    /// Discards a transaction.
    "discard", 1, FAST | NO_QUEUE, 0, 0, 0 => discard;
    /// Monitors changes to keys to determine the execution of a transaction.
    "watch", -2, FAST | NO_QUEUE | NO_MULTI, 1, -1, 1 => watch;
    /// Forgets about watched keys of a transaction.
    "unwatch", 1, FAST, 0, 0, 0 => unwatch;
};

fn multi(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    if ctx.conn.multi.is_some() {
        return Ok(Frame::err("MULTI calls can not be nested"));
    }
    ctx.conn.multi = Some(Multi::default());
    Ok(Frame::OK)
}

fn discard(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    if ctx.conn.multi.take().is_none() {
        return Ok(Frame::err("DISCARD without MULTI"));
    }
    ctx.conn.watch.clear(&ctx.shared.watches);
    Ok(Frame::OK)
}

fn watch(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    if ctx.conn.multi.is_some() {
        return Ok(Frame::err("WATCH inside MULTI is not allowed"));
    }
    let db = ctx.conn.db;
    for key in &args[1..] {
        ctx.conn.watch.add(&ctx.shared.watches, db, key);
    }
    Ok(Frame::OK)
}

fn unwatch(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    ctx.conn.watch.clear(&ctx.shared.watches);
    Ok(Frame::OK)
}

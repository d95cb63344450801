//! The SCAN family's cursors: where a walk resumes, the cursor to reply with, and the reply;
//! and the body HSCAN, SSCAN and ZSCAN share. A cursor is a number standing for "after this
//! key (or member)" in the server's cursor table (`state.rs`); SCAN's options are parsed in
//! `args.rs`.

use std::ops::Bound;

use bytes::Bytes;

use super::args::ScanArgs;
use super::ctx::Ctx;
use super::reply::{CmdError, CmdResult};
use crate::frame::Frame;
use crate::keyspace::{Type, kind};

/// Where `scan`'s cursor resumes: after the key (or member) it stands for; `None` from the
/// start.
pub(crate) fn resume(ctx: &Ctx<'_, '_>, scan: &ScanArgs<'_>) -> Result<Option<Bytes>, CmdError> {
    if scan.cursor == 0 {
        return Ok(None);
    }
    let found = ctx.shared.cursors.get(ctx.conn.db, scan.cursor);
    Ok(Some(found.ok_or_else(|| Frame::err("invalid cursor"))?))
}

/// The cursor to reply with after a batch of `len` items ending at `last`: 0 when the batch
/// was short (the walk is done).
pub(crate) fn next_cursor(
    ctx: &Ctx<'_, '_>,
    scan: &ScanArgs<'_>,
    len: usize,
    last: Option<&Bytes>,
) -> u64 {
    match last {
        Some(last) if len == scan.count => ctx.shared.cursors.put(ctx.conn.db, last.clone()),
        _ => 0,
    }
}

/// A SCAN-style reply: the next cursor, then the items.
pub(crate) fn reply(next: u64, items: Vec<Frame>) -> Frame {
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(items),
    ])
}

/// HSCAN, SSCAN, ZSCAN: `key cursor [MATCH pattern] [COUNT count]`. The cursor stands for the
/// last member returned; `emit` turns a `(member, value)` pair into reply items (the pattern is
/// matched against the member).
pub(crate) fn members(
    ctx: &mut Ctx<'_, '_>,
    args: &[Bytes],
    ty: Type,
    emit: impl Fn(&Bytes, &Bytes, &mut Vec<Frame>),
) -> CmdResult {
    let scan = ScanArgs::parse(args, 2, false)?;
    let Some(m) = ctx.coll(&args[1], ty)? else {
        return Ok(reply(0, Vec::new()));
    };
    let after = resume(ctx, &scan)?;
    let lo = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let batch = ctx.members(&m, kind::MEMBER, lo, Bound::Unbounded, scan.count, false)?;
    let last = batch.last().map(|(member, _)| member);
    let next = next_cursor(ctx, &scan, batch.len(), last);
    let mut out = Vec::new();
    for (member, value) in &batch {
        if scan.matches(member) {
            emit(member, value, &mut out);
        }
    }
    Ok(reply(next, out))
}

//! Bitmaps, on the string type as in Redis (a bitmap is a string; GET returns its bytes; bit 0
//! is the most significant bit of the first byte): SETBIT, GETBIT, BITCOUNT (BYTE|BIT ranges),
//! BITPOS, BITOP AND|OR|XOR|NOT, with Redis 7.0's argument checks in Redis's order.
//!
//! Reads fetch only the bytes their range covers, and SETBIT writes back one chunk of a long
//! bitmap (`string_store.rs`), so a bit costs the same in a 16 MB bitmap as in a short one.

use bytes::Bytes;

use super::args::{int_arg, is};
use super::ctx::Ctx;
use super::reply::{CmdError, CmdResult, syntax_error};
use super::spec::flags::{READONLY, WRITE};
use super::spec::{Spec, commands};
use crate::frame::Frame;
use crate::parse::parse_i64;

pub(super) static COMMANDS: &[Spec] = commands! {
    group "bitmap";
    /// Sets or clears the bit at offset of the string value. Creates the key if it doesn't
    /// exist.
    "setbit", 4, WRITE, 1, 1, 1 => setbit;
    /// Returns a bit value by offset.
    "getbit", 3, READONLY, 1, 1, 1 => getbit;
    /// Counts the number of set bits (population counting) in a string.
    "bitcount", -2, READONLY, 1, 1, 1 => bitcount;
    /// Finds the first set (1) or clear (0) bit in a string.
    "bitpos", -3, READONLY, 1, 1, 1 => bitpos;
    /// Performs bitwise operations on multiple strings, and stores the result.
    "bitop", -4, WRITE, 2, -1, 1 => bitop;
};

/// A bit offset: a non-negative integer whose byte lies below `proto-max-bulk-len`.
fn bit_offset(ctx: &Ctx<'_, '_>, arg: &[u8]) -> Result<u64, Frame> {
    let err = || Frame::err("bit offset is not an integer or out of range");
    let n = parse_i64(arg).ok_or_else(err)?;
    if n < 0 || (n as u64 >> 3) >= ctx.shared.config.proto_max_bulk_len() {
        return Err(err());
    }
    Ok(n as u64)
}

fn bit_at(bytes: &[u8], bit: u64) -> bool {
    bytes
        .get((bit >> 3) as usize)
        .is_some_and(|b| b & (0x80 >> (bit & 7)) != 0)
}

fn setbit(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(ctx, &args[2])?;
    let on = match parse_i64(&args[3]) {
        Some(v @ (0 | 1)) => v == 1,
        _ => return Err(Frame::err("bit is not an integer or out of range").into()),
    };
    let mut edit = ctx.string_edit(&args[1])?;
    let byte = offset >> 3;
    let mask = 0x80u8 >> (offset & 7);
    let grows = !edit.existed() || edit.len() <= byte;
    let old = edit.read(ctx, byte, 1)?[0];
    let was = old & mask != 0;
    // Nothing changes (same bit, same length): nothing is written, as in Redis.
    if grows || was != on {
        let new = if on { old | mask } else { old & !mask };
        edit.write(ctx, byte, &[new])?;
        edit.save(ctx, &args[1])?;
    } else {
        // Redis makes the string `raw` all the same (OBJECT ENCODING shows it).
        edit.save_as_raw(ctx, &args[1])?;
    }
    Ok(Frame::Integer(i64::from(was)))
}

fn getbit(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(ctx, &args[2])?;
    let byte = offset >> 3;
    let value = ctx.string_range(&args[1], |_| Some((byte, byte + 1)))?;
    Ok(Frame::Integer(i64::from(
        value.is_some_and(|(_, v)| bit_at(&v, offset & 7)),
    )))
}

/// A `start end [BYTE|BIT]` range over a string of `len` bytes, as bits `[lo, hi]` (Redis's
/// clamping); `None` when it is empty.
fn bit_range(len: u64, start: i64, end: i64, bits: bool) -> Option<(u64, u64)> {
    let total = if bits { len as i64 * 8 } else { len as i64 };
    let mut start = if start < 0 { total + start } else { start };
    let mut end = if end < 0 { total + end } else { end };
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    if start > end {
        return None;
    }
    Some(if bits {
        (start as u64, end as u64)
    } else {
        (start as u64 * 8, end as u64 * 8 + 7)
    })
}

/// The unit word of a range (`BYTE`, the default, or `BIT`).
fn unit(arg: Option<&Bytes>) -> Result<bool, CmdError> {
    match arg {
        None => Ok(false),
        Some(a) if is(a, "byte") => Ok(false),
        Some(a) if is(a, "bit") => Ok(true),
        Some(_) => Err(syntax_error()),
    }
}

fn count_ones(bytes: &[u8], lo: u64, hi: u64) -> u64 {
    let (first, last) = ((lo >> 3) as usize, (hi >> 3) as usize);
    let mut n: u64 = bytes[first..=last]
        .iter()
        .map(|b| u64::from(b.count_ones()))
        .sum();
    // The bits of the edge bytes outside the range.
    n -= u64::from((bytes[first] & !(0xffu8 >> (lo & 7))).count_ones());
    n -= u64::from((bytes[last] & (0x7fu8 >> (hi & 7))).count_ones());
    n
}

/// The bytes a bit range `[lo, hi]` lies in, as a `from..to` byte range.
fn bytes_of(range: Option<(u64, u64)>) -> Option<(u64, u64)> {
    range.map(|(lo, hi)| (lo >> 3, (hi >> 3) + 1))
}

fn bitcount(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    // The range is worked out once the length is known; a missing key counts 0 whatever the
    // arguments (as in Redis).
    let range_of = |len: u64| -> Result<Option<(u64, u64)>, CmdError> {
        match args.len() {
            2 => Ok(bit_range(len, 0, -1, false)),
            4 | 5 => {
                let start = int_arg(&args[2])?;
                let end = int_arg(&args[3])?;
                if start < 0 && end < 0 && start > end {
                    return Ok(None);
                }
                let bits = unit(args.get(4))?;
                Ok(bit_range(len, start, end, bits))
            }
            _ => Err(syntax_error()),
        }
    };
    let mut range = Ok(None);
    let found = ctx.string_range(&args[1], |len| {
        range = range_of(len);
        bytes_of(range.as_ref().ok().copied().flatten())
    })?;
    if found.is_none() {
        return Ok(Frame::Integer(0));
    }
    let (Some((lo, hi)), Some((_, bytes))) = (range?, found) else {
        return Ok(Frame::Integer(0));
    };
    // `bytes` starts at the byte of bit `lo`.
    let base = lo & !7;
    Ok(Frame::Integer(
        count_ones(&bytes, lo - base, hi - base) as i64
    ))
}

fn bitpos(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let target = match int_arg(&args[2])? {
        0 => false,
        1 => true,
        _ => return Err(Frame::err("The bit argument must be 1 or 0.").into()),
    };
    let range_of = |len: u64| -> Result<(Option<(u64, u64)>, bool), CmdError> {
        match args.len() {
            3 => Ok((bit_range(len, 0, -1, false), false)),
            4..=6 => {
                let start = int_arg(&args[3])?;
                let bits = unit(args.get(5))?;
                let end = match args.get(4) {
                    Some(e) => int_arg(e)?,
                    None => -1,
                };
                Ok((bit_range(len, start, end, bits), args.len() >= 5))
            }
            _ => Err(syntax_error()),
        }
    };
    let mut range = Ok((None, false));
    let found = ctx.string_range(&args[1], |len| {
        range = range_of(len);
        bytes_of(range.as_ref().ok().and_then(|r| r.0))
    })?;
    // A missing key is an endless run of zeros.
    let Some((_, value)) = found else {
        return Ok(Frame::Integer(if target { -1 } else { 0 }));
    };
    let (range, end_given) = range?;
    let Some((lo, hi)) = range else {
        return Ok(Frame::Integer(-1));
    };
    // `value` starts at the byte of bit `lo`; whole bytes with no bit of interest are
    // skipped at once.
    let base = lo & !7;
    let skip = if target { 0x00 } else { 0xff };
    let mut b = lo;
    while b <= hi {
        if b & 7 == 0 && b + 7 <= hi && value[((b - base) >> 3) as usize] == skip {
            b += 8;
            continue;
        }
        if bit_at(&value, b - base) == target {
            return Ok(Frame::Integer(b as i64));
        }
        b += 1;
    }
    // No clear bit in the range: without an end, the one just past it (the string reads as
    // followed by zeros).
    Ok(Frame::Integer(if target || end_given {
        -1
    } else {
        hi as i64 + 1
    }))
}

fn bitop(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    #[derive(PartialEq)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let op = if is(&args[1], "and") {
        Op::And
    } else if is(&args[1], "or") {
        Op::Or
    } else if is(&args[1], "xor") {
        Op::Xor
    } else if is(&args[1], "not") {
        Op::Not
    } else {
        return Err(syntax_error());
    };
    if op == Op::Not && args.len() != 4 {
        return Err(Frame::err("BITOP NOT must be called with a single source key.").into());
    }
    let mut sources = Vec::with_capacity(args.len() - 3);
    for key in &args[3..] {
        // Missing keys are empty strings.
        sources.push(ctx.get_string(key)?.map(|(v, _)| v).unwrap_or_default());
    }
    let max = sources.iter().map(Bytes::len).max().unwrap_or(0);
    let byte = |s: &Bytes, i: usize| s.get(i).copied().unwrap_or(0);
    let result: Vec<u8> = (0..max)
        .map(|i| match op {
            Op::Not => !byte(&sources[0], i),
            Op::And => sources.iter().fold(0xff, |acc, s| acc & byte(s, i)),
            Op::Or => sources.iter().fold(0, |acc, s| acc | byte(s, i)),
            Op::Xor => sources.iter().fold(0, |acc, s| acc ^ byte(s, i)),
        })
        .collect();
    let dest = &args[2];
    if result.is_empty() {
        ctx.remove_counting(dest)?;
    } else {
        ctx.check_string_len(result.len() as u64)?;
        ctx.set_raw_string(dest, &result, None)?;
    }
    Ok(Frame::Integer(max as i64))
}

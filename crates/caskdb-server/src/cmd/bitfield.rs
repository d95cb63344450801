//! BITFIELD and BITFIELD_RO: integers of 1 to 64 bits (unsigned up to 63) at any bit offset of
//! a string, most significant bit first as SETBIT numbers bits, read, set and incremented with
//! OVERFLOW WRAP, SAT or FAIL, as Redis 7.0 does: every argument is checked before any
//! operation runs, a write grows the string to the farthest bit written first, GET reads past
//! the end as zeros.

use bytes::Bytes;

use super::ctx::Ctx;
use super::reply::{CmdError, CmdResult, syntax_error};
use super::spec::flags::{READ_TX, WRITE};
use super::spec::{Spec, commands};
use crate::frame::Frame;
use crate::parse::parse_i64;

pub(super) static COMMANDS: &[Spec] = commands! {
    group "bitmap";
    /// Performs arbitrary bitfield integer operations on strings.
    "bitfield", -2, WRITE, 1, 1, 1 => bitfield;
    /// Performs arbitrary read-only bitfield integer operations on strings.
    "bitfield_ro", -2, READ_TX, 1, 1, 1 => bitfield_ro;
};

#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Get,
    Set,
    IncrBy,
}

struct FieldOp {
    op: Op,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    overflow: Overflow,
}

/// `i1`…`i64` or `u1`…`u63`: (signed, bits).
fn field_type(arg: &[u8]) -> Result<(bool, u32), Frame> {
    let err = || {
        Frame::err(
            "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
        )
    };
    let (signed, rest) = match arg.split_first() {
        Some((b'i', rest)) => (true, rest),
        Some((b'u', rest)) => (false, rest),
        _ => return Err(err()),
    };
    match parse_i64(rest) {
        Some(n) if n >= 1 && n <= if signed { 64 } else { 63 } => Ok((signed, n as u32)),
        _ => Err(err()),
    }
}

/// A bit offset, `#N` meaning `N` fields of `bits`; below `proto-max-bulk-len` bytes.
fn field_offset(ctx: &Ctx<'_, '_>, arg: &[u8], bits: u32) -> Result<u64, Frame> {
    let err = || Frame::err("bit offset is not an integer or out of range");
    let (hash, digits) = match arg.split_first() {
        Some((b'#', rest)) => (true, rest),
        _ => (false, arg),
    };
    let mut n = parse_i64(digits).ok_or_else(err)?;
    if hash {
        n = n.checked_mul(i64::from(bits)).ok_or_else(err)?;
    }
    if n < 0 || (n as u64 >> 3) >= ctx.shared.config.proto_max_bulk_len() {
        return Err(err());
    }
    Ok(n as u64)
}

/// Parses every operation, in Redis's order of checks.
fn parse_ops(ctx: &Ctx<'_, '_>, args: &[Bytes]) -> Result<Vec<FieldOp>, CmdError> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let word = args[j].to_ascii_lowercase();
        let op = match word.as_slice() {
            b"get" if left >= 2 => Op::Get,
            b"set" if left >= 3 => Op::Set,
            b"incrby" if left >= 3 => Op::IncrBy,
            b"overflow" if left >= 1 => {
                overflow = match args[j + 1].to_ascii_lowercase().as_slice() {
                    b"wrap" => Overflow::Wrap,
                    b"sat" => Overflow::Sat,
                    b"fail" => Overflow::Fail,
                    _ => return Err(Frame::err("Invalid OVERFLOW type specified").into()),
                };
                j += 2;
                continue;
            }
            _ => return Err(syntax_error()),
        };
        let (signed, bits) = field_type(&args[j + 1])?;
        let offset = field_offset(ctx, &args[j + 2], bits)?;
        let value = if op == Op::Get {
            0
        } else {
            parse_i64(&args[j + 3])
                .ok_or_else(|| Frame::err("value is not an integer or out of range"))?
        };
        ops.push(FieldOp {
            op,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        j += if op == Op::Get { 3 } else { 4 };
    }
    Ok(ops)
}

fn get_unsigned(p: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..u64::from(bits) {
        let at = offset + j;
        let bit = p
            .get((at >> 3) as usize)
            .map_or(0, |b| (b >> (7 - (at & 7))) & 1);
        v = (v << 1) | u64::from(bit);
    }
    v
}

fn get_signed(p: &[u8], offset: u64, bits: u32) -> i64 {
    let mut v = get_unsigned(p, offset, bits);
    if bits < 64 && v & (1u64 << (bits - 1)) != 0 {
        v |= u64::MAX << bits;
    }
    v as i64
}

fn set_bits(p: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..u64::from(bits) {
        let on = value & (1u64 << (u64::from(bits) - 1 - j)) != 0;
        let at = offset + j;
        let mask = 0x80u8 >> (at & 7);
        let byte = &mut p[(at >> 3) as usize];
        if on {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// Redis's overflow rule for an unsigned field: `Some(value)` it takes instead (wrapped or
/// saturated) on overflow, with whether one happened.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (bool, u64) {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
    if value > max || (incr > 0 && incr > maxincr) {
        return (true, if ow == Overflow::Sat { max } else { wrap() });
    }
    if incr < 0 && incr < minincr {
        return (true, if ow == Overflow::Sat { 0 } else { wrap() });
    }
    (false, value.wrapping_add(incr as u64))
}

/// The same for a signed field.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (bool, i64) {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        return (true, if ow == Overflow::Sat { max } else { wrap() });
    }
    if value < min || (bits != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
        return (true, if ow == Overflow::Sat { min } else { wrap() });
    }
    (false, value.wrapping_add(incr))
}

fn bitfield(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    run(ctx, args, false)
}

fn bitfield_ro(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    run(ctx, args, true)
}

fn run(ctx: &mut Ctx<'_, '_>, args: &[Bytes], read_only: bool) -> CmdResult {
    let ops = parse_ops(ctx, args)?;
    let writes = ops.iter().any(|o| o.op != Op::Get);
    if writes && read_only {
        return Err(Frame::err("BITFIELD_RO only supports the GET subcommand").into());
    }
    let mut edit = ctx.string_edit(&args[1])?;
    // A write makes room up to the farthest bit written, before anything runs.
    let mut grown = false;
    if writes {
        let highest = ops
            .iter()
            .filter(|o| o.op != Op::Get)
            .map(|o| o.offset + u64::from(o.bits) - 1)
            .max()
            .unwrap_or(0);
        let need = (highest >> 3) + 1;
        if !edit.existed() || edit.len() < need {
            edit.grow(ctx, need.max(edit.len()))?;
            grown = true;
        }
    }
    let mut changes = 0;
    let mut out = Vec::with_capacity(ops.len());
    for o in &ops {
        // The bytes the field lies in (at most 9), and its offset in them.
        let first = o.offset >> 3;
        let n = (((o.offset + u64::from(o.bits) - 1) >> 3) - first + 1) as usize;
        let mut window = edit.read(ctx, first, n)?;
        let at = o.offset & 7;
        if o.op == Op::Get {
            out.push(Frame::Integer(if o.signed {
                get_signed(&window, at, o.bits)
            } else {
                get_unsigned(&window, at, o.bits) as i64
            }));
            continue;
        }
        let (overflowed, new, reply, old_bits) = if o.signed {
            let old = get_signed(&window, at, o.bits);
            let (ov, new, reply) = if o.op == Op::IncrBy {
                let (ov, new) = signed_overflow(old, o.value, o.bits, o.overflow);
                (ov, new, new)
            } else {
                let (ov, wrapped) = signed_overflow(o.value, 0, o.bits, o.overflow);
                (ov, if ov { wrapped } else { o.value }, old)
            };
            (ov, new as u64, reply, old as u64)
        } else {
            let old = get_unsigned(&window, at, o.bits);
            let (ov, new, reply) = if o.op == Op::IncrBy {
                let (ov, new) = unsigned_overflow(old, o.value, o.bits, o.overflow);
                (ov, new, new as i64)
            } else {
                let v = o.value as u64;
                let (ov, wrapped) = unsigned_overflow(v, 0, o.bits, o.overflow);
                (ov, if ov { wrapped } else { v }, old as i64)
            };
            (ov, new, reply, old)
        };
        if overflowed && o.overflow == Overflow::Fail {
            out.push(Frame::Null);
            continue;
        }
        out.push(Frame::Integer(reply));
        let mask = if o.bits == 64 {
            u64::MAX
        } else {
            (1u64 << o.bits) - 1
        };
        if (old_bits & mask) != (new & mask) {
            set_bits(&mut window, at, o.bits, new);
            edit.write(ctx, first, &window)?;
            changes += 1;
        }
    }
    if grown || changes > 0 {
        edit.save(ctx, &args[1])?;
    }
    Ok(Frame::Array(out))
}

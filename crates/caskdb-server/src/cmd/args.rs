//! Argument parsers commands share: integers, floats, options, expiry times, database indexes,
//! counts, SCAN's options. Each refuses bad input with Redis's error reply.

use bytes::Bytes;

use super::reply::{CmdError, not_an_integer, syntax_error};
use crate::frame::Frame;
use crate::glob;
use crate::keyspace::DATABASES;
use crate::parse::parse_i64;

/// Parses an integer argument as Redis does.
pub(crate) fn int_arg(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or_else(not_an_integer)
}

/// Whether `arg` equals `word`, ignoring ASCII case.
pub(crate) fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Reads the flag options at the start of `args` (words of `words`, in any case, each any
/// number of times): which were given, and how many arguments they are.
pub(crate) fn option_flags<const N: usize>(args: &[Bytes], words: [&str; N]) -> ([bool; N], usize) {
    let mut given = [false; N];
    let mut n = 0;
    for arg in args {
        let Some(i) = words.iter().position(|w| is(arg, w)) else {
            break;
        };
        given[i] = true;
        n += 1;
    }
    (given, n)
}

/// An expiry option's unit and reference point.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ExpireKind {
    /// Seconds from now.
    Ex,
    /// Milliseconds from now.
    Px,
    /// A Unix time in seconds.
    ExAt,
    /// A Unix time in milliseconds.
    PxAt,
}

impl ExpireKind {
    /// The kind an option names (`EX`, `PX`, `EXAT`, `PXAT`, in any case).
    pub(crate) fn from_arg(arg: &[u8]) -> Option<ExpireKind> {
        [
            ("ex", ExpireKind::Ex),
            ("px", ExpireKind::Px),
            ("exat", ExpireKind::ExAt),
            ("pxat", ExpireKind::PxAt),
        ]
        .into_iter()
        .find(|(w, _)| is(arg, w))
        .map(|(_, k)| k)
    }
}

/// Redis's `getExpireMillisecondsOrReply`: the absolute expiry in ms for `value` of `kind`, or
/// `ERR invalid expire time in '<cmd>' command`.
pub(crate) fn expire_at(
    now_ms: u64,
    kind: ExpireKind,
    value: &[u8],
    cmd: &str,
) -> Result<u64, CmdError> {
    let n = int_arg(value)?;
    let invalid =
        || -> CmdError { Frame::err(format!("invalid expire time in '{cmd}' command")).into() };
    let seconds = matches!(kind, ExpireKind::Ex | ExpireKind::ExAt);
    if n <= 0 || (seconds && n > i64::MAX / 1000) {
        return Err(invalid());
    }
    let mut ms = if seconds { n * 1000 } else { n };
    if matches!(kind, ExpireKind::Ex | ExpireKind::Px) {
        ms = ms.checked_add(now_ms as i64).ok_or_else(invalid)?;
    }
    Ok(ms as u64)
}

/// Parses a float as Redis's `string2ld` does: no blanks, no NaN; hexadecimal (`0x1p4`) as C's
/// `strtod` reads it.
pub(crate) fn parse_float(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let v: f64 = match s.parse() {
        Ok(v) => v,
        Err(_) => parse_hex_float(s)?,
    };
    (!v.is_nan()).then_some(v)
}

/// C's hexadecimal float syntax: `[+-]0x<hex>[.<hex>][p[+-]<dec>]`.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let rest = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))?;
    let (mantissa, exp) = match rest.find(['p', 'P']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    Some(if neg { -v } else { v })
}

/// Parses a database index argument.
pub(crate) fn db_index(arg: &[u8]) -> Result<u8, CmdError> {
    let n = int_arg(arg)?;
    if !(0..i64::from(DATABASES)).contains(&n) {
        return Err(Frame::err("DB index is out of range").into());
    }
    Ok(n as u8)
}

/// Most elements a random pick with repetition (negative count) returns: the reply is built in
/// memory.
pub(crate) const MAX_RANDOM_PICKS: u64 = 10_000_000;

/// Parses the count of HRANDFIELD / SRANDMEMBER: `-LONG_MAX..=LONG_MAX` as in Redis, and a
/// negative count (picks may repeat) no larger than [`MAX_RANDOM_PICKS`].
pub(crate) fn random_count(arg: &[u8]) -> Result<i64, CmdError> {
    check_picks(signed_count(arg)?)
}

/// Parses a count of `-LONG_MAX..=LONG_MAX`, as Redis's random picks read it (the range check
/// only; see [`check_picks`]).
pub(crate) fn signed_count(arg: &[u8]) -> Result<i64, CmdError> {
    let n = int_arg(arg)?;
    if n == i64::MIN {
        return Err(Frame::err(
            "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        )
        .into());
    }
    Ok(n)
}

/// Refuses a negative count (picks may repeat) larger than [`MAX_RANDOM_PICKS`].
pub(crate) fn check_picks(n: i64) -> Result<i64, CmdError> {
    if n.unsigned_abs() > MAX_RANDOM_PICKS && n < 0 {
        return Err(Frame::err(format!(
            "count is too large (at most {MAX_RANDOM_PICKS} picks with repetition)"
        ))
        .into());
    }
    Ok(n)
}

/// Parses the count of SPOP, LPOP, ZPOPMIN…: a non-negative integer.
pub(crate) fn positive_count(arg: &[u8]) -> Result<u64, CmdError> {
    let n = int_arg(arg)
        .map_err(|_| CmdError::from(Frame::err("value is out of range, must be positive")))?;
    u64::try_from(n).map_err(|_| Frame::err("value is out of range, must be positive").into())
}

/// The arguments of SCAN and of HSCAN/SSCAN/ZSCAN: `cursor [MATCH pattern] [COUNT count]`
/// (and `[TYPE type]` for SCAN). A cursor stands for "after this key (or member)" in the
/// server's cursor table (`scan.rs` resolves it).
pub(crate) struct ScanArgs<'a> {
    /// The cursor argument: 0 to start (see `scan.rs`).
    pub cursor: u64,
    /// Items per call (at most 100,000).
    pub count: usize,
    pattern: Option<&'a Bytes>,
    /// SCAN's TYPE filter.
    pub ty: Option<&'a Bytes>,
}

impl<'a> ScanArgs<'a> {
    /// Parses `args[at..]`: the cursor, then the options (TYPE only if `with_type`).
    pub fn parse(args: &'a [Bytes], at: usize, with_type: bool) -> Result<Self, CmdError> {
        let cursor: u64 = std::str::from_utf8(&args[at])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Frame::err("invalid cursor"))?;
        let mut count = 10i64;
        let mut pattern: Option<&Bytes> = None;
        let mut ty: Option<&Bytes> = None;
        let mut i = at + 1;
        while i < args.len() {
            if i + 1 >= args.len() {
                return Err(syntax_error());
            }
            let (opt, val) = (&args[i], &args[i + 1]);
            if is(opt, "count") {
                count = int_arg(val)?;
                if count < 1 {
                    return Err(syntax_error());
                }
            } else if is(opt, "match") {
                pattern = Some(val);
            } else if with_type && is(opt, "type") {
                ty = Some(val);
            } else {
                return Err(syntax_error());
            }
            i += 2;
        }
        Ok(ScanArgs {
            cursor,
            count: count.min(100_000) as usize,
            pattern,
            ty,
        })
    }

    /// Whether `item` passes the MATCH pattern.
    pub fn matches(&self, item: &[u8]) -> bool {
        self.pattern
            .is_none_or(|p| p.as_ref() == b"*" || glob::matches(p, item))
    }
}

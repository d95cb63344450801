//! String commands: GET, SET and friends, counters, ranges.

use bytes::Bytes;

use super::args::{ExpireKind, expire_at, int_arg, is, parse_float};
use super::ctx::Ctx;
use super::reply::{CmdError, CmdResult, syntax_error, wrong_arity, wrongtype};
use super::spec::flags::{FAST, READ_TX, READONLY, WRITE};
use super::spec::{Spec, commands};
use crate::frame::Frame;
use crate::keyspace::{Entry, Type};

/// The string commands.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "string";
    /// Returns the string value of a key.
    "get", 2, READONLY | FAST, 1, 1, 1 => get;
    /// Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.
    "set", -3, WRITE, 1, 1, 1 => set;
    /// Set the string value of a key only when the key doesn't exist.
    "setnx", 3, WRITE | FAST, 1, 1, 1 => setnx;
    /// Sets the string value and expiration time of a key. Creates the key if it doesn't exist.
    "setex", 4, WRITE, 1, 1, 1 => setex_with(ExpireKind::Ex, "setex");
    /// Sets both string value and expiration time in milliseconds of a key. The key is created if
    /// it doesn't exist.
    "psetex", 4, WRITE, 1, 1, 1 => setex_with(ExpireKind::Px, "psetex");
    /// Atomically returns the string values of one or more keys.
    "mget", -2, READ_TX | FAST, 1, -1, 1 => mget;
    /// Atomically creates or modifies the string values of one or more keys.
    "mset", -3, WRITE, 1, -1, 2 => mset;
    /// Atomically modifies the string values of one or more keys only when all keys don't exist.
    "msetnx", -3, WRITE, 1, -1, 2 => msetnx;
    /// Returns the previous string value of a key after setting it to a new value.
    "getset", 3, WRITE | FAST, 1, 1, 1 => getset;
    /// Returns the string value of a key after deleting the key.
    "getdel", 2, WRITE | FAST, 1, 1, 1 => getdel;
    /// Returns the string value of a key after setting its expiration time.
    "getex", -2, WRITE | FAST, 1, 1, 1 => getex;
    /// Appends a string to the value of a key. Creates the key if it doesn't exist.
    "append", 3, WRITE | FAST, 1, 1, 1 => append;
    /// Returns the length of a string value.
    "strlen", 2, READONLY | FAST, 1, 1, 1 => strlen;
    /// Returns a substring of the string stored at a key.
    "getrange", 4, READONLY, 1, 1, 1 => getrange;
    /// Returns a substring from a string value.
    "substr", 4, READONLY, 1, 1, 1 => getrange;
    /// Overwrites a part of a string value with another by an offset. Creates the key if it doesn't
    /// exist.
    "setrange", 4, WRITE, 1, 1, 1 => setrange;
    /// Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't
    /// exist.
    "incr", 2, WRITE | FAST, 1, 1, 1 => incr_generic(1);
    /// Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't
    /// exist.
    "decr", 2, WRITE | FAST, 1, 1, 1 => incr_generic(-1);
    /// Increments the integer value of a key by a number. Uses 0 as initial value if the key
    /// doesn't exist.
    "incrby", 3, WRITE | FAST, 1, 1, 1 => incr_generic(1);
    /// Decrements a number from the integer value of a key. Uses 0 as initial value if the key
    /// doesn't exist.
    "decrby", 3, WRITE | FAST, 1, 1, 1 => incr_generic(-1);
    /// Increment the floating point value of a key by a number. Uses 0 as initial value if the key
    /// doesn't exist.
    "incrbyfloat", 3, WRITE | FAST, 1, 1, 1 => incrbyfloat;
    /// Finds the longest common substring.
    "lcs", -3, READ_TX, 1, 2, 1 => lcs;
};

fn bulk_or_null(v: Option<Bytes>) -> Frame {
    v.map_or(Frame::Null, Frame::Bulk)
}

fn get(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    match ctx.string_reply(&args[1])? {
        None => Ok(Frame::Null),
        Some(Ok(v)) => Ok(v),
        Some(Err(_)) => Err(wrongtype()),
    }
}

fn set(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let (key, value) = (&args[1], &args[2]);
    let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
    let mut expiry: Option<(ExpireKind, &Bytes)> = None;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        if is(a, "nx") && !xx {
            nx = true;
        } else if is(a, "xx") && !nx {
            xx = true;
        } else if is(a, "get") {
            get = true;
        } else if is(a, "keepttl") && expiry.is_none() {
            keepttl = true;
        } else if let Some(kind) = ExpireKind::from_arg(a) {
            // The same option twice is allowed (the last wins), as in Redis; two kinds are not.
            if keepttl || expiry.is_some_and(|(k, _)| k != kind) || i + 1 >= args.len() {
                return Err(syntax_error());
            }
            expiry = Some((kind, &args[i + 1]));
            i += 1;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    let now = ctx.now_ms();
    let at = match expiry {
        Some((kind, v)) => Some(expire_at(now, kind, v, "set")?),
        None => None,
    };
    if !(nx || xx || get || keepttl) {
        // The common case needs no read of the old value.
        ctx.set_string(key, value, at)?;
        return Ok(Frame::OK);
    }
    // The old value itself only for GET (a string in chunks is not read otherwise).
    let old = if get {
        ctx.lookup(key)?
    } else {
        ctx.lookup_stored(key)?
    };
    if get && old.as_ref().is_some_and(|e| e.ty != Type::String) {
        return Err(wrongtype());
    }
    let old_value = || bulk_or_null(old.as_ref().map(|e| e.payload.clone()));
    if (nx && old.is_some()) || (xx && old.is_none()) {
        return Ok(if get { old_value() } else { Frame::Null });
    }
    let at = if keepttl {
        old.as_ref().and_then(|e| e.expire_at)
    } else {
        at
    };
    ctx.set_string(key, value, at)?;
    Ok(if get { old_value() } else { Frame::OK })
}

fn setnx(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    if ctx.exists_in(ctx.conn.db, &args[1])? {
        return Ok(Frame::Integer(0));
    }
    ctx.set_string(&args[1], &args[2], None)?;
    Ok(Frame::Integer(1))
}

fn setex_with(ctx: &mut Ctx<'_, '_>, args: &[Bytes], kind: ExpireKind, cmd: &str) -> CmdResult {
    let at = expire_at(ctx.now_ms(), kind, &args[2], cmd)?;
    ctx.set_string(&args[1], &args[3], Some(at))?;
    Ok(Frame::OK)
}

fn mget(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let mut out = Vec::with_capacity(args.len() - 1);
    for key in &args[1..] {
        // Keys of other types read as nil, as in Redis.
        out.push(match ctx.string_reply(key)? {
            Some(Ok(v)) => v,
            _ => Frame::Null,
        });
    }
    Ok(Frame::Array(out))
}

fn mset_pairs(args: &[Bytes], name: &str) -> Result<(), CmdError> {
    if args.len().is_multiple_of(2) {
        return Err(wrong_arity(name).into());
    }
    Ok(())
}

fn mset(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    mset_pairs(args, "mset")?;
    for pair in args[1..].chunks(2) {
        ctx.set_string(&pair[0], &pair[1], None)?;
    }
    Ok(Frame::OK)
}

fn msetnx(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    mset_pairs(args, "msetnx")?;
    for pair in args[1..].chunks(2) {
        if ctx.exists_in(ctx.conn.db, &pair[0])? {
            return Ok(Frame::Integer(0));
        }
    }
    for pair in args[1..].chunks(2) {
        ctx.set_string(&pair[0], &pair[1], None)?;
    }
    Ok(Frame::Integer(1))
}

fn getset(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let old = ctx.get_string(&args[1])?;
    ctx.set_string(&args[1], &args[2], None)?;
    Ok(bulk_or_null(old.map(|(v, _)| v)))
}

fn getdel(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let old = ctx.get_string(&args[1])?;
    if old.is_some() {
        ctx.remove(&args[1])?;
    }
    Ok(bulk_or_null(old.map(|(v, _)| v)))
}

fn getex(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    enum Change {
        Keep,
        Persist,
        At(u64),
    }
    // Options may repeat (the last wins), but PERSIST and the expiry kinds exclude each other.
    let mut persist = false;
    let mut expiry: Option<(ExpireKind, &Bytes)> = None;
    let mut i = 2;
    while i < args.len() {
        if is(&args[i], "persist") && expiry.is_none() {
            persist = true;
        } else if let Some(kind) = ExpireKind::from_arg(&args[i])
            && !persist
            && expiry.is_none_or(|(k, _)| k == kind)
            && i + 1 < args.len()
        {
            expiry = Some((kind, &args[i + 1]));
            i += 1;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    let change = match expiry {
        Some((kind, v)) => Change::At(expire_at(ctx.now_ms(), kind, v, "getex")?),
        None if persist => Change::Persist,
        None => Change::Keep,
    };
    let e = match ctx.lookup(key)? {
        None => return Ok(Frame::Null),
        Some(e) if e.ty == Type::String => e,
        Some(_) => return Err(wrongtype()),
    };
    // The value is stored again as it is stored (encoding, chunks), with the new expiry.
    let db = ctx.conn.db;
    match change {
        Change::Keep => {}
        Change::Persist if e.expire_at.is_none() => {}
        Change::Persist => ctx.put_raw(db, key, e.raw.clone(), None)?,
        Change::At(at) => ctx.put_raw(db, key, e.raw.clone(), Some(at))?,
    }
    Ok(Frame::Bulk(e.payload))
}

fn append(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let mut edit = ctx.string_edit(&args[1])?;
    if !edit.existed() {
        // A new key is stored as SET would store it (Redis encodes it afresh).
        ctx.set_string(&args[1], &args[2], None)?;
        return Ok(Frame::Integer(args[2].len() as i64));
    }
    ctx.check_string_len(edit.len() + args[2].len() as u64)?;
    let end = edit.len();
    edit.write(ctx, end, &args[2])?;
    // Even appending nothing is a change for Redis (stored `raw`; WATCH and events hear of it).
    edit.mark_changed();
    let len = edit.len();
    edit.save(ctx, &args[1])?;
    Ok(Frame::Integer(len as i64))
}

fn strlen(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let len = ctx.string_range(&args[1], |_| None)?;
    Ok(Frame::Integer(len.map_or(0, |(len, _)| len as i64)))
}

fn getrange(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let start = int_arg(&args[2])?;
    let end = int_arg(&args[3])?;
    if start < 0 && end < 0 && start > end {
        // Checked before the key is read, as Redis does.
        ctx.string_range(&args[1], |_| None)?;
        return Ok(Frame::bulk(""));
    }
    let pick = |len: u64| {
        let len = len as i64;
        let (mut start, mut end) = (start, end);
        if start < 0 {
            start += len;
        }
        if end < 0 {
            end += len;
        }
        start = start.max(0);
        end = end.max(0);
        if end >= len {
            end = len - 1;
        }
        (start <= end && len > 0).then(|| (start as u64, end as u64 + 1))
    };
    let value = ctx.string_range(&args[1], pick)?;
    Ok(Frame::Bulk(value.map(|(_, v)| v).unwrap_or_default()))
}

fn setrange(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let offset = int_arg(&args[2])?;
    if offset < 0 {
        return Err(Frame::err("offset is out of range").into());
    }
    let patch = &args[3];
    let mut edit = ctx.string_edit(&args[1])?;
    if patch.is_empty() {
        return Ok(Frame::Integer(edit.len() as i64));
    }
    let offset = offset as u64;
    ctx.check_string_len(offset + patch.len() as u64)?;
    edit.write(ctx, offset, patch)?;
    let len = edit.len();
    edit.save(ctx, &args[1])?;
    Ok(Frame::Integer(len as i64))
}

/// INCR and DECR (by `sign`: 1 or -1), INCRBY and DECRBY (by `sign` times `args[2]`).
fn incr_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], sign: i64) -> CmdResult {
    let by = match args.get(2) {
        Some(by) => int_arg(by)?,
        None => 1,
    };
    if sign < 0 && by == i64::MIN {
        return Err(Frame::err("decrement would overflow").into());
    }
    let key = &args[1];
    let (current, at) = match ctx.get_string(key)? {
        Some((v, at)) => (int_arg(&v)?, at),
        None => (0, None),
    };
    let Some(n) = current.checked_add(sign * by) else {
        return Err(Frame::err("increment or decrement would overflow").into());
    };
    ctx.set_string(key, n.to_string().as_bytes(), at)?;
    Ok(Frame::Integer(n))
}

/// Formats a float result for humans, like Redis's `%.17Lf` with trailing zeros removed.
/// Redis computes in `long double`; in `f64`, sums such as 0.1 + 0.2 carry binary noise in the
/// 16th-17th digits, which Redis's extra precision rounds away. Rounding to 15 significant
/// digits when the shortest form is longer gives the same text in those cases.
pub(crate) fn format_float(v: f64) -> String {
    let shortest = format!("{v}");
    let digits = shortest
        .bytes()
        .filter(u8::is_ascii_digit)
        .skip_while(|&b| b == b'0')
        .count();
    if digits <= 15 {
        return shortest;
    }
    match format!("{v:.14e}").parse::<f64>() {
        // Rounding up near f64::MAX can overflow: keep the exact value then.
        Ok(rounded) if rounded.is_finite() => format!("{rounded}"),
        _ => shortest,
    }
}

fn incrbyfloat(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let by = parse_float(&args[2]).ok_or_else(|| Frame::err("value is not a valid float"))?;
    let (current, at) = match ctx.get_string(&args[1])? {
        Some((v, at)) => (
            parse_float(&v).ok_or_else(|| Frame::err("value is not a valid float"))?,
            at,
        ),
        None => (0.0, None),
    };
    let n = current + by;
    if !n.is_finite() {
        return Err(Frame::err("increment would produce NaN or Infinity").into());
    }
    let text = format_float(n);
    ctx.set_string(&args[1], text.as_bytes(), at)?;
    Ok(Frame::Bulk(Bytes::from(text)))
}

/// LCS `key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`: the longest common
/// subsequence of two strings (a missing key is an empty string), its length, or the matching
/// ranges (from the ends of the strings back to their starts), as Redis 7.0 computes them.
fn lcs(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    // Both keys are read and checked before the options, as Redis does.
    let a = ctx.lookup(&args[1])?;
    let b = ctx.lookup(&args[2])?;
    let text = |e: Option<Entry>| match e {
        None => Some(Bytes::new()),
        Some(e) if e.ty == Type::String => Some(e.payload),
        Some(_) => None,
    };
    let (Some(a), Some(b)) = (text(a), text(b)) else {
        return Err(Frame::err("The specified keys must contain string values").into());
    };
    let (mut want_len, mut want_idx, mut with_len, mut min_len) = (false, false, false, 0i64);
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        if is(opt, "idx") {
            want_idx = true;
        } else if is(opt, "len") {
            want_len = true;
        } else if is(opt, "withmatchlen") {
            with_len = true;
        } else if is(opt, "minmatchlen") && j + 1 < args.len() {
            min_len = int_arg(&args[j + 1])?.max(0);
            j += 1;
        } else {
            return Err(syntax_error());
        }
        j += 1;
    }
    if want_len && want_idx {
        return Err(
            Frame::err("If you want both the length and indexes, please just use IDX.").into(),
        );
    }
    if a.len() as u64 >= u64::from(u32::MAX - 1) || b.len() as u64 >= u64::from(u32::MAX - 1) {
        return Err(Frame::err("String too long for LCS").into());
    }
    // Redis's table is (|a| + 1) × (|b| + 1) 32-bit lengths, refused past proto-max-bulk-len;
    // this one keeps two rows of lengths and one bit per cell for the walk back.
    let table = (a.len() as u128 + 1) * (b.len() as u128 + 1) * 4;
    let failed = || Frame::err("Insufficient memory, failed allocating transient memory for LCS");
    if table >= u128::from(u64::MAX) {
        return Err(failed().into());
    }
    if table > u128::from(ctx.shared.config.proto_max_bulk_len()) {
        return Err(Frame::err(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        )
        .into());
    }
    let walk = want_idx || !want_len;
    let Some(found) = lcs_table(&a, &b, walk) else {
        return Err(failed().into());
    };
    let (ranges, common) = if walk {
        lcs_walk(&a, &b, &found, min_len as u64)
    } else {
        (Vec::new(), Vec::new())
    };
    let total = Frame::Integer(i64::from(found.len));
    if !want_idx {
        return Ok(if want_len {
            total
        } else {
            Frame::Bulk(Bytes::from(common))
        });
    }
    let pair =
        |x: usize, y: usize| Frame::Array(vec![Frame::Integer(x as i64), Frame::Integer(y as i64)]);
    let matches = ranges
        .into_iter()
        .map(|r| {
            let mut v = vec![pair(r.a.0, r.a.1), pair(r.b.0, r.b.1)];
            if with_len {
                v.push(Frame::Integer((r.a.1 - r.a.0 + 1) as i64));
            }
            Frame::Array(v)
        })
        .collect();
    Ok(Frame::Map(vec![
        (Frame::bulk("matches"), Frame::Array(matches)),
        (Frame::bulk("len"), total),
    ]))
}

/// The LCS table as the walk back needs it: the length, and for each cell (i, j) (1-based,
/// `a[i-1] != b[j-1]`) whether LCS(i-1, j) > LCS(i, j-1), one bit each (`None` if that much
/// memory cannot be had).
struct LcsTable {
    len: u32,
    up: Vec<u64>,
}

fn lcs_table(a: &[u8], b: &[u8], walk: bool) -> Option<LcsTable> {
    let cells = a.len() * b.len();
    let mut up = Vec::new();
    if walk {
        up.try_reserve_exact(cells.div_ceil(64)).ok()?;
        up.resize(cells.div_ceil(64), 0u64);
    }
    let mut prev = vec![0u32; b.len() + 1];
    let mut cur = vec![0u32; b.len() + 1];
    for (i, &x) in a.iter().enumerate() {
        for (j, &y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                let (above, left) = (prev[j + 1], cur[j]);
                if walk && above > left {
                    let bit = i * b.len() + j;
                    up[bit / 64] |= 1 << (bit % 64);
                }
                above.max(left)
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(LcsTable {
        len: prev[b.len()],
        up,
    })
}

/// A matching range: first and last positions in each string.
struct LcsRange {
    a: (usize, usize),
    b: (usize, usize),
}

/// Redis's walk back from the ends of both strings: the common subsequence, and its runs of
/// consecutive matches at least `min_len` long, last run first.
fn lcs_walk(a: &[u8], b: &[u8], t: &LcsTable, min_len: u64) -> (Vec<LcsRange>, Vec<u8>) {
    let mut common = vec![0u8; t.len as usize];
    let mut at = common.len();
    let mut ranges = Vec::new();
    // The run being extended backwards; `None` between runs.
    let mut run: Option<LcsRange> = None;
    let (mut i, mut j) = (a.len(), b.len());
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            common[at - 1] = a[i - 1];
            match &mut run {
                None => {
                    run = Some(LcsRange {
                        a: (i - 1, i - 1),
                        b: (j - 1, j - 1),
                    })
                }
                Some(r) if r.a.0 == i && r.b.0 == j => {
                    r.a.0 -= 1;
                    r.b.0 -= 1;
                }
                Some(_) => emit = true,
            }
            if run.as_ref().is_some_and(|r| r.a.0 == 0 || r.b.0 == 0) {
                emit = true;
            }
            at -= 1;
            i -= 1;
            j -= 1;
        } else {
            let bit = (i - 1) * b.len() + (j - 1);
            if t.up[bit / 64] >> (bit % 64) & 1 == 1 {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = run.is_some();
        }
        // A run emitted is over, whether it is long enough to be reported or not.
        if emit
            && let Some(r) = run.take()
            && (min_len == 0 || (r.a.1 - r.a.0 + 1) as u64 >= min_len)
        {
            ranges.push(r);
        }
    }
    (ranges, common)
}

#[cfg(test)]
mod tests {
    use super::{format_float, lcs_table, lcs_walk};

    #[test]
    fn lcs_walks_back_as_redis() {
        let (a, b) = (&b"ohmytext"[..], &b"mynewtext"[..]);
        let t = lcs_table(a, b, true).unwrap();
        let (ranges, common) = lcs_walk(a, b, &t, 0);
        assert_eq!(common, b"mytext");
        let got: Vec<_> = ranges.iter().map(|r| (r.a, r.b)).collect();
        assert_eq!(got, vec![((4, 7), (5, 8)), ((2, 3), (0, 1))]);
        let (ranges, _) = lcs_walk(a, b, &t, 4);
        assert_eq!(ranges.len(), 1);
        assert_eq!(lcs_table(b"", b"abc", true).unwrap().len, 0);
    }

    #[test]
    fn floats_format_like_redis() {
        assert_eq!(format_float(10.5 + 0.1), "10.6");
        assert_eq!(format_float(0.1 + 0.2), "0.3");
        assert_eq!(format_float(5200.0), "5200");
        assert_eq!(format_float(-3.5), "-3.5");
        assert_eq!(format_float(1e20), "100000000000000000000");
        assert_ne!(format_float(-f64::MAX), "-inf");
    }
}

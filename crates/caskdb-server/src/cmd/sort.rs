//! SORT and SORT_RO, as Redis 7.0's `sort.c` behaves: a list, set or sorted set sorted by its
//! elements or by weights that `BY` patterns name, numerically or (`ALPHA`) by bytes, a `LIMIT`
//! range, `GET` patterns to return instead of the elements, `STORE` into a list.
//!
//! What decides the order, beyond the weights:
//! - numeric weights are read with C's `strtod` (`strtod.rs`), a missing one is 0; equal
//!   weights order by the elements' bytes;
//! - `ALPHA` compares C strings (up to a NUL byte: Redis uses `strcoll`, which is `strcmp` in
//!   the C locales), or all the bytes with `STORE`; elements without a `BY` weight come first;
//!   elements that compare equal keep their order in the collection (the C library's `qsort` is
//!   a merge sort), except when `BY` and a `LIMIT` are given: Redis then sorts only the range
//!   with its partial quicksort, reproduced here (`pqsort`);
//! - a `BY` pattern without `*` (`BY nosort`) does not sort: lists and sorted sets in their
//!   own order (`DESC` reverses it, `LIMIT` is a range of it), sets unordered (sorted by bytes
//!   with `STORE`).
//!
//! A set's own order is Redis's where Redis's is known (an intset: ascending integers) and byte
//! order otherwise; it shows only in `BY nosort` without `STORE` and among equal `ALPHA` weights.

use std::cmp::Ordering;
use std::ops::Bound;

use bytes::Bytes;

use super::args::{int_arg, is};
use super::ctx::Ctx;
use super::lists::{elements, store_list};
use super::reply::{CmdError, CmdResult, syntax_error, wrongtype};
use super::spec::flags::{READ_TX, WRITE};
use super::spec::{Spec, commands};
use super::zsets::split_entry;
use crate::frame::Frame;
use crate::keyspace::{self, Meta, Type, kind};
use crate::strtod::strtod;

/// SORT, SORT_RO.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "generic";
    /// Sorts the elements in a list, a set, or a sorted set, optionally storing the result.
    "sort", -2, WRITE, 1, 1, 1 => sort_generic(false);
    /// Returns the sorted elements of a list, a set, or a sorted set.
    "sort_ro", -2, READ_TX, 1, 1, 1 => sort_generic(true);
};

/// SORT's options, as parsed.
struct Options<'a> {
    desc: bool,
    alpha: bool,
    offset: i64,
    count: i64,
    store: Option<&'a Bytes>,
    /// The last `BY` pattern.
    by: Option<&'a [u8]>,
    /// A `BY` pattern without `*` was given (even if a later one has one, as in Redis).
    dontsort: bool,
    gets: Vec<&'a [u8]>,
}

/// Redis's option loop: options in any order and number, the last of each kind wins.
fn parse(args: &[Bytes], readonly: bool) -> Result<Options<'_>, CmdError> {
    let mut o = Options {
        desc: false,
        alpha: false,
        offset: 0,
        count: -1,
        store: None,
        by: None,
        dontsort: false,
        gets: Vec::new(),
    };
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if is(a, "asc") {
            o.desc = false;
        } else if is(a, "desc") {
            o.desc = true;
        } else if is(a, "alpha") {
            o.alpha = true;
        } else if is(a, "limit") && left >= 2 {
            o.offset = int_arg(&args[j + 1])?;
            o.count = int_arg(&args[j + 2])?;
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            o.store = Some(&args[j + 1]);
            j += 1;
        } else if is(a, "by") && left >= 1 {
            let pattern = &args[j + 1][..];
            if !c_str(pattern).contains(&b'*') {
                o.dontsort = true;
            }
            o.by = Some(pattern);
            j += 1;
        } else if is(a, "get") && left >= 1 {
            o.gets.push(&args[j + 1]);
            j += 1;
        } else {
            return Err(syntax_error());
        }
        j += 1;
    }
    Ok(o)
}

/// `s` as C reads it: up to its first NUL byte.
fn c_str(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |n| &s[..n])
}

/// The value a `BY` or `GET` pattern names for element `elem`: `#` is the element itself;
/// otherwise the first `*` is replaced by the element, and the key found must hold a string,
/// or, with `->field` after the `*`, a hash with that field. `None` for anything else (no `*`,
/// no such key or field, another type).
fn lookup_pattern(
    ctx: &mut Ctx<'_, '_>,
    pattern: &[u8],
    elem: &Bytes,
) -> Result<Option<Bytes>, CmdError> {
    // Redis reads the pattern as a C string for `#`, `*` and `->`, but takes the field (and a
    // key without field) to the end of its bytes.
    if pattern.first() == Some(&b'#') && pattern.get(1).is_none_or(|&b| b == 0) {
        return Ok(Some(elem.clone()));
    }
    let text = c_str(pattern);
    let Some(star) = text.iter().position(|&b| b == b'*') else {
        return Ok(None);
    };
    let arrow = text[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|i| star + 1 + i)
        .filter(|&i| i + 2 < text.len());
    let (suffix, field) = match arrow {
        Some(i) => (&pattern[star + 1..i], Some(&pattern[i + 2..])),
        None => (&pattern[star + 1..], None),
    };
    let len = star + elem.len() + suffix.len();
    if len > keyspace::MAX_KEY_LEN {
        return Ok(None);
    }
    let mut key = Vec::with_capacity(len);
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(suffix);
    let Some(entry) = ctx.lookup(&key)? else {
        return Ok(None);
    };
    match field {
        None => Ok((entry.ty == Type::String).then_some(entry.payload)),
        Some(field) if entry.ty == Type::Hash => {
            let m =
                Meta::decode(&entry).ok_or_else(|| Frame::err("corrupt collection metadata"))?;
            ctx.member(&m, kind::MEMBER, field)
        }
        Some(_) => Ok(None),
    }
}

/// A numeric weight as SORT reads it: `strtod` must take the text up to its end or a NUL
/// byte, without overflow, underflow or NaN (an empty text is 0).
fn weight(text: &[u8]) -> Option<f64> {
    let p = strtod(text);
    let ends = text.get(p.used).is_none_or(|&b| b == 0);
    (ends && !p.erange && !p.value.is_nan()).then_some(p.value)
}

/// One element to sort, with its weight.
struct Item {
    elem: Bytes,
    score: f64,
    /// The `ALPHA` weight a `BY` pattern found.
    by: Option<Bytes>,
}

/// How two items compare, as Redis's `sortCompare`.
struct Compare {
    alpha: bool,
    by: bool,
    store: bool,
    desc: bool,
}

impl Compare {
    fn cmp(&self, a: &Item, b: &Item) -> Ordering {
        // `strcoll` in the C locales is `strcmp`: bytes up to a NUL. STORE compares all bytes.
        let text = |x: &[u8], y: &[u8]| {
            if self.store {
                x.cmp(y)
            } else {
                c_str(x).cmp(c_str(y))
            }
        };
        let c = if !self.alpha {
            if a.score > b.score {
                Ordering::Greater
            } else if a.score < b.score {
                Ordering::Less
            } else {
                a.elem.cmp(&b.elem)
            }
        } else if self.by {
            match (&a.by, &b.by) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => text(x, y),
            }
        } else {
            text(&a.elem, &b.elem)
        };
        if self.desc { c.reverse() } else { c }
    }
}

/// Redis's partial quicksort (`pqsort.c`, Bentley and McIlroy's quicksort that only recurses
/// into the parts overlapping positions `lo..=hi`): with a `LIMIT`, the elements that compare
/// equal end up in its order, which the output shows.
fn pqsort<T>(v: &mut [T], cmp: &dyn Fn(&T, &T) -> Ordering, lo: i64, hi: i64) {
    let mut a = 0usize;
    let mut n = v.len();
    // Whether positions start..start+len overlap the range (as Redis's pointer tests).
    let wanted = |start: usize, len: usize| {
        let (s, e) = (start as i64, (start + len) as i64);
        !((lo < s && hi < s) || (lo >= e && hi >= e))
    };
    loop {
        if n < 7 {
            for m in a + 1..a + n {
                let mut l = m;
                while l > a && cmp(&v[l - 1], &v[l]) == Ordering::Greater {
                    v.swap(l, l - 1);
                    l -= 1;
                }
            }
            return;
        }
        let med3 = |x: usize, y: usize, z: usize| {
            if cmp(&v[x], &v[y]) == Ordering::Less {
                if cmp(&v[y], &v[z]) == Ordering::Less {
                    y
                } else if cmp(&v[x], &v[z]) == Ordering::Less {
                    z
                } else {
                    x
                }
            } else if cmp(&v[y], &v[z]) == Ordering::Greater {
                y
            } else if cmp(&v[x], &v[z]) == Ordering::Less {
                x
            } else {
                z
            }
        };
        let mut pm = a + n / 2;
        if n > 7 {
            let mut pl = a;
            let mut pn = a + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(pl, pl + d, pl + 2 * d);
                pm = med3(pm - d, pm, pm + d);
                pn = med3(pn - 2 * d, pn - d, pn);
            }
            pm = med3(pl, pm, pn);
        }
        v.swap(a, pm);
        // Signed positions: `pc` may step just below `pb`.
        let (mut pa, mut pb) = (a as i64 + 1, a as i64 + 1);
        let (mut pc, mut pd) = ((a + n - 1) as i64, (a + n - 1) as i64);
        loop {
            while pb <= pc {
                let r = cmp(&v[pb as usize], &v[a]);
                if r == Ordering::Greater {
                    break;
                }
                if r == Ordering::Equal {
                    v.swap(pa as usize, pb as usize);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let r = cmp(&v[pc as usize], &v[a]);
                if r == Ordering::Less {
                    break;
                }
                if r == Ordering::Equal {
                    v.swap(pc as usize, pd as usize);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb as usize, pc as usize);
            pb += 1;
            pc -= 1;
        }
        let pn = (a + n) as i64;
        let vecswap = |v: &mut [T], x: i64, y: i64, len: i64| {
            for i in 0..len.max(0) {
                v.swap((x + i) as usize, (y + i) as usize);
            }
        };
        let r = (pa - a as i64).min(pb - pa);
        vecswap(v, a as i64, pb - r, r);
        let r = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - r, r);
        let left = (pb - pa) as usize;
        if left > 1 && wanted(a, left) {
            pqsort_part(v, cmp, lo, hi, a, left);
        }
        let right = (pd - pc) as usize;
        if right > 1 {
            a = pn as usize - right;
            n = right;
            if wanted(a, n) {
                continue;
            }
        }
        return;
    }
}

/// [`pqsort`] on `v[a..a + n]` (its recursion, on the sub-slice with the range shifted).
fn pqsort_part<T>(
    v: &mut [T],
    cmp: &dyn Fn(&T, &T) -> Ordering,
    lo: i64,
    hi: i64,
    a: usize,
    n: usize,
) {
    pqsort(&mut v[a..a + n], cmp, lo - a as i64, hi - a as i64);
}

/// A set's members in Redis's iteration order where it is known: an intset's ascending
/// integers. Others stay in byte order.
fn set_order(ctx: &Ctx<'_, '_>, m: &Meta, members: &mut [Bytes]) {
    let intset = !m.converted && m.len <= ctx.shared.config.compact_max_len(Type::Set);
    if intset {
        members.sort_by_key(|b| {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(0)
        });
    }
}

/// Redis converts a sorted set in its compact encoding to a skiplist before sorting it, for
/// good: marks it converted (OBJECT ENCODING). Not a change of the value: no WATCH, no event.
fn convert_zset(ctx: &mut Ctx<'_, '_>, key: &[u8], m: &Meta) -> Result<(), CmdError> {
    if m.converted {
        return Ok(());
    }
    let grown = Meta {
        converted: true,
        ..m.clone()
    };
    let ek = keyspace::engine_key(ctx.conn.db, key);
    let tx = ctx.tx()?;
    match grown.expire_at {
        None => tx.put(&ek, grown.encode())?,
        Some(at) => tx.put_expiring_at(&ek, grown.encode(), at)?,
    }
    Ok(())
}

/// The elements of a sorted set from rank `start` (from the end if `desc`), `n` of them.
fn zset_range(
    ctx: &mut Ctx<'_, '_>,
    m: &Meta,
    start: u64,
    n: u64,
    desc: bool,
) -> Result<Vec<Bytes>, CmdError> {
    let upto = start.saturating_add(n).min(m.len) as usize;
    let entries = ctx.members(
        m,
        kind::SCORE,
        Bound::Unbounded,
        Bound::Unbounded,
        upto,
        desc,
    )?;
    Ok(entries
        .iter()
        .skip(start as usize)
        .map(|(rest, _)| split_entry(rest).0)
        .collect())
}

fn sort_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], readonly: bool) -> CmdResult {
    let mut o = parse(args, readonly)?;
    let key = &args[1];
    let meta = match ctx.lookup_stored(key)? {
        None => None,
        Some(e) if matches!(e.ty, Type::List | Type::Set | Type::ZSet) => {
            Some(Meta::decode(&e).ok_or_else(|| Frame::err("corrupt collection metadata"))?)
        }
        Some(_) => return Err(wrongtype()),
    };
    // A missing key sorts as an empty list.
    let ty = meta.as_ref().map_or(Type::List, |m| m.ty);
    let len = meta.as_ref().map_or(0, |m| m.len) as i64;
    // An unsorted set would be stored in its arbitrary order: Redis sorts it by bytes.
    if o.dontsort && ty == Type::Set && o.store.is_some() {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    if let Some(m) = &meta
        && m.ty == Type::ZSet
    {
        convert_zset(ctx, key, m)?;
    }

    // Redis's LIMIT arithmetic: `start..=end` of the sorted elements.
    let mut start = o.offset.clamp(0, len);
    let count = o.count.clamp(-1, len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    end = end.min(len - 1);

    let mut items: Vec<Bytes> = match &meta {
        None => Vec::new(),
        // In the collection's own order, only the range: it is the output.
        Some(m) if o.dontsort && m.ty != Type::Set => {
            let n = (end - start + 1).max(0) as u64;
            let first = start.max(0) as u64;
            let got = if n == 0 {
                Vec::new()
            } else if m.ty == Type::List {
                if o.desc {
                    let last = m.len - 1 - first;
                    let mut v = elements(ctx, m, last + 1 - n, last)?;
                    v.reverse();
                    v
                } else {
                    elements(ctx, m, first, first + n - 1)?
                }
            } else {
                zset_range(ctx, m, first, n, o.desc)?
            };
            end -= start;
            start = 0;
            got
        }
        Some(m) if m.ty == Type::List => {
            if m.len == 0 {
                Vec::new()
            } else {
                elements(ctx, m, 0, m.len - 1)?
            }
        }
        Some(m) if m.ty == Type::Set => {
            let mut members: Vec<Bytes> = ctx
                .all_members(m, kind::MEMBER)?
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            set_order(ctx, m, &mut members);
            members
        }
        Some(m) => zset_range(ctx, m, 0, m.len, false)?,
    };

    if !o.dontsort {
        let mut sortable = Vec::with_capacity(items.len());
        for elem in items {
            let mut item = Item {
                elem,
                score: 0.0,
                by: None,
            };
            let value = match o.by {
                Some(pattern) => lookup_pattern(ctx, pattern, &item.elem)?,
                None => Some(item.elem.clone()),
            };
            if let Some(value) = value {
                if o.alpha {
                    if o.by.is_some() {
                        item.by = Some(value);
                    }
                } else {
                    match weight(&value) {
                        Some(w) => item.score = w,
                        None => {
                            // Redis sorts anyway, then answers with the error: nothing is
                            // returned or stored (the sorted set stays converted).
                            return Ok(Frame::err(
                                "One or more scores can't be converted into double",
                            ));
                        }
                    }
                }
            }
            sortable.push(item);
        }
        let c = Compare {
            alpha: o.alpha,
            by: o.by.is_some(),
            store: o.store.is_some(),
            desc: o.desc,
        };
        if o.by.is_some() && (start != 0 || end != sortable.len() as i64 - 1) {
            pqsort(&mut sortable, &|x, y| c.cmp(x, y), start, end);
        } else {
            sortable.sort_by(|x, y| c.cmp(x, y));
        }
        items = sortable.into_iter().map(|i| i.elem).collect();
    }

    let range = if end >= start {
        // Fewer members than the metadata counts: a damaged collection, not a panic.
        items
            .get(start as usize..=end as usize)
            .ok_or_else(|| Frame::err("corrupt collection: a member is missing"))?
    } else {
        &[][..]
    };
    // Reserved up to a point: many GET patterns over a large range grow it as it fills.
    let out_len = range.len().saturating_mul(o.gets.len().max(1));
    if let Some(dest) = o.store {
        let mut out = Vec::with_capacity(out_len.min(1 << 16));
        for elem in range {
            if o.gets.is_empty() {
                out.push(elem.clone());
            }
            for pattern in &o.gets {
                out.push(lookup_pattern(ctx, pattern, elem)?.unwrap_or_default());
            }
        }
        let n = store_list(ctx, dest, out)?;
        return Ok(Frame::Integer(n as i64));
    }
    let mut out = Vec::with_capacity(out_len.min(1 << 16));
    for elem in range {
        if o.gets.is_empty() {
            out.push(Frame::Bulk(elem.clone()));
        }
        for pattern in &o.gets {
            out.push(lookup_pattern(ctx, pattern, elem)?.map_or(Frame::Null, Frame::Bulk));
        }
    }
    Ok(Frame::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sorting by the first byte only, so the second tells equal keys apart.
    fn by_first(x: &[u8; 2], y: &[u8; 2]) -> Ordering {
        x[0].cmp(&y[0])
    }

    #[test]
    fn pqsort_sorts_the_range() {
        let mut seed = 7u64;
        for n in [0usize, 1, 5, 7, 8, 40, 41, 100, 300] {
            for _ in 0..20 {
                let mut v: Vec<[u8; 2]> = (0..n)
                    .map(|i| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        [(seed >> 60) as u8, i as u8]
                    })
                    .collect();
                let mut sorted = v.clone();
                sorted.sort_by(by_first);
                let lo = (seed % (n as u64 + 1)) as i64;
                let hi = (lo + (seed >> 20) as i64 % 10).min(n as i64 - 1);
                pqsort(&mut v, &|x, y| by_first(x, y), lo, hi);
                for i in lo.max(0)..=hi {
                    assert_eq!(v[i as usize][0], sorted[i as usize][0], "n {n} {lo}..={hi}");
                }
            }
        }
    }

    #[test]
    fn weights_as_sort_reads_them() {
        assert_eq!(weight(b""), Some(0.0));
        assert_eq!(weight(b" 12"), Some(12.0));
        assert_eq!(weight(b"12 "), None);
        assert_eq!(weight(b"1\x00x"), Some(1.0));
        assert_eq!(weight(b"\x001"), Some(0.0));
        assert_eq!(weight(b" "), None);
        assert_eq!(weight(b"nan"), None);
        assert_eq!(weight(b"1e400"), None);
        assert_eq!(weight(b"0x10"), Some(16.0));
        assert_eq!(weight(b"-inf"), Some(f64::NEG_INFINITY));
    }
}

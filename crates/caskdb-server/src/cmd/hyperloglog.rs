//! HyperLogLog on the string type, in Redis's own representation, so that a value written by
//! either server reads the same on the other and PFCOUNT gives the same count: PFADD, PFCOUNT,
//! PFMERGE.
//!
//! The value: a 16-byte header (`HYLL`, the encoding, three zero bytes, the cached count as
//! 8 bytes little endian whose top bit says it is stale), then 16384 registers of 6 bits —
//! dense (12288 bytes, register `i` at bit `6 i`, least significant bits first) or sparse
//! (runs: `00xxxxxx` 1–64 zeros, `01xxxxxx yyyyyyyy` 1–16384 zeros, `1vvvvvxx` 1–4 registers
//! of value 1–32). An element hashes with MurmurHash64A (seed `0xadc83b19`): the low 14 bits
//! pick the register, the position of the lowest set bit of the rest (plus one) is its value.
//! A sparse value turns dense when a register needs more than 32 or when it would pass
//! `hll-sparse-max-bytes` (default 3000). The count is Ertl's estimator over the registers'
//! histogram, as Redis 5+ computes it. Sparse edits split and merge runs exactly as Redis
//! does, so the bytes match too.

use bytes::Bytes;

use super::ctx::Ctx;
use super::reply::{CmdError, CmdResult, wrongtype};
use super::spec::flags::{FAST, WRITE};
use super::spec::{Spec, commands};
use super::string_store::StringEdit;
use crate::frame::Frame;
use crate::keyspace::Type;

pub(super) static COMMANDS: &[Spec] = commands! {
    group "hyperloglog";
    /// Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.
    "pfadd", -2, WRITE | FAST, 1, 1, 1 => pfadd;
    /// Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).
    /// (It writes the cached count back, as Redis does.)
    "pfcount", -2, WRITE, 1, -1, 1 => pfcount;
    /// Merges one or more HyperLogLog values into a single key.
    "pfmerge", -2, WRITE, 1, -1, 1 => pfmerge;
};

const HDR: usize = 16;
const P: u32 = 14;
const Q: usize = 64 - P as usize;
const REGISTERS: usize = 1 << P;
const DENSE_SIZE: usize = HDR + REGISTERS * 6 / 8;
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
/// The byte of the header whose top bit marks the cached count stale.
const CACHE_FLAG: usize = 15;

const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

/// A sparse value that does not describe 16384 registers.
struct Invalid;

fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register `ele` falls in and the value it offers it.
fn pattern(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The bit past the used ones bounds the count at Q + 1.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let b0 = u16::from(regs[byte]);
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) & 63) as u8
}

fn dense_set_raw(regs: &mut [u8], i: usize, v: u8) {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let v = u16::from(v);
    regs[byte] &= !((63u16 << fb) as u8);
    regs[byte] |= (v << fb) as u8;
    if let Some(next) = regs.get_mut(byte + 1) {
        *next &= !((63u16 >> (8 - fb)) as u8);
        *next |= (v >> (8 - fb)) as u8;
    }
}

/// Raises register `i` of a dense value to `count`; whether it changed.
fn dense_set(v: &mut [u8], i: usize, count: u8) -> bool {
    let regs = &mut v[HDR..];
    if count > dense_get(regs, i) {
        dense_set_raw(regs, i, count);
        true
    } else {
        false
    }
}

fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}
fn is_val(b: u8) -> bool {
    b & 0x80 != 0
}
fn zero_len(b: u8) -> usize {
    usize::from(b & 0x3f) + 1
}
fn xzero_len(b: u8, b2: u8) -> usize {
    ((usize::from(b & 0x3f) << 8) | usize::from(b2)) + 1
}
fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}
fn val_len(b: u8) -> usize {
    usize::from(b & 0x3) + 1
}
fn val_op(value: u8, len: usize) -> u8 {
    ((value - 1) << 2 | (len as u8 - 1)) | 0x80
}
/// ZERO or XZERO for a run of `len` zeros.
fn zeros_op(out: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        let l = len - 1;
        out.push((l >> 8) as u8 | 0x40);
        out.push((l & 0xff) as u8);
    } else {
        out.push((len - 1) as u8);
    }
}

/// An empty HyperLogLog: sparse, all zeros, cached count 0 (valid).
fn empty() -> Vec<u8> {
    let mut v = b"HYLL".to_vec();
    v.push(SPARSE);
    v.resize(HDR, 0);
    let mut left = REGISTERS;
    while left > 0 {
        let run = left.min(XZERO_MAX_LEN);
        let l = run - 1;
        v.push((l >> 8) as u8 | 0x40);
        v.push((l & 0xff) as u8);
        left -= run;
    }
    v
}

/// Each register of a sparse value, as runs `(value, length)`.
fn sparse_runs(v: &[u8]) -> impl Iterator<Item = (u8, usize)> + '_ {
    let mut p = HDR;
    std::iter::from_fn(move || {
        let b = *v.get(p)?;
        Some(if is_zero(b) {
            p += 1;
            (0, zero_len(b))
        } else if is_xzero(b) {
            let len = xzero_len(b, v.get(p + 1).copied().unwrap_or(0));
            p += 2;
            (0, len)
        } else {
            p += 1;
            (val_value(b), val_len(b))
        })
    })
}

/// The dense form of a sparse value (header kept, encoding changed).
fn to_dense(v: &[u8]) -> Result<Vec<u8>, Invalid> {
    let mut d = vec![0u8; DENSE_SIZE];
    d[..HDR].copy_from_slice(&v[..HDR]);
    d[4] = DENSE;
    let mut idx = 0;
    for (value, len) in sparse_runs(v) {
        if value != 0 {
            if idx + len > REGISTERS {
                break;
            }
            for i in idx..idx + len {
                dense_set_raw(&mut d[HDR..], i, value);
            }
        }
        idx += len;
    }
    if idx != REGISTERS {
        return Err(Invalid);
    }
    Ok(d)
}

/// Raises register `index` of a sparse value to `count`, splitting and merging runs as Redis
/// does, or turning the value dense; whether it changed.
fn sparse_set(v: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, Invalid> {
    if count > VAL_MAX_VALUE {
        return promote(v, index, count);
    }
    // Find the run holding the register.
    let end = v.len();
    let (mut p, mut first, mut span, mut prev) = (HDR, 0usize, 0usize, None);
    while p < end {
        let b = v[p];
        let mut oplen = 1;
        span = if is_zero(b) {
            zero_len(b)
        } else if is_val(b) {
            val_len(b)
        } else {
            oplen = 2;
            xzero_len(b, v.get(p + 1).copied().unwrap_or(0))
        };
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(Invalid);
    }
    let b = v[p];
    let (zero, xzero) = (is_zero(b), is_xzero(b));
    // The run the loop stopped at is the register's.
    let runlen = span;
    let trivial = if !zero && !xzero {
        if val_value(b) >= count {
            return Ok(false);
        }
        runlen == 1
    } else {
        zero && runlen == 1
    };
    if trivial {
        v[p] = val_op(count, 1);
    } else {
        let last = first + span - 1;
        let mut seq = Vec::with_capacity(5);
        if zero || xzero {
            if index != first {
                zeros_op(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                zeros_op(&mut seq, last - index);
            }
        } else {
            let cur = val_value(b);
            if index != first {
                seq.push(val_op(cur, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(cur, last - index));
            }
        }
        let oldlen = if xzero { 2 } else { 1 };
        if seq.len() > oldlen && v.len() + seq.len() - oldlen > max_bytes {
            return promote(v, index, count);
        }
        v.splice(p..p + oldlen, seq);
    }
    // Merge adjacent runs of one value, looking at up to five opcodes from the one before.
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < v.len() && scan > 0 {
        scan -= 1;
        let b = v[p];
        if is_xzero(b) {
            p += 2;
            continue;
        }
        if is_zero(b) {
            p += 1;
            continue;
        }
        if let Some(&b2) = v.get(p + 1)
            && is_val(b2)
            && val_value(b) == val_value(b2)
        {
            let len = val_len(b) + val_len(b2);
            if len <= VAL_MAX_LEN {
                v[p + 1] = val_op(val_value(b), len);
                v.remove(p);
                continue;
            }
        }
        p += 1;
    }
    v[CACHE_FLAG] |= 0x80;
    Ok(true)
}

fn promote(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Invalid> {
    *v = to_dense(v)?;
    Ok(dense_set(v, index, count))
}

/// Whether `v` is a HyperLogLog value (Redis's check: header, encoding, a dense one's size).
fn valid(v: &[u8]) -> bool {
    v.len() >= HDR
        && &v[..4] == b"HYLL"
        && v[4] <= SPARSE
        && (v[4] != DENSE || v.len() == DENSE_SIZE)
}

/// Raises registers of `max` to those of `v`.
fn merge_into(max: &mut [u8; REGISTERS], v: &[u8]) -> Result<(), Invalid> {
    if v[4] == DENSE {
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(&v[HDR..], i));
        }
        return Ok(());
    }
    let mut i = 0;
    for (value, len) in sparse_runs(v) {
        if value != 0 {
            if i + len > REGISTERS {
                break;
            }
            for m in &mut max[i..i + len] {
                *m = (*m).max(value);
            }
        }
        i += len;
    }
    if i == REGISTERS { Ok(()) } else { Err(Invalid) }
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if before == z {
            return z / 3.0;
        }
    }
}

/// The estimate from the registers' histogram (Ertl's, as Redis's `hllCount`).
fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - f64::from(histo[Q + 1])) / m);
    for j in (1..=Q).rev() {
        z += f64::from(histo[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histo[0]) / m);
    const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
    (ALPHA_INF * m * m / z).round() as u64
}

/// The estimate from each register's value.
fn estimate_registers(registers: impl Iterator<Item = u8>) -> u64 {
    let mut histo = [0u32; 64];
    for r in registers {
        histo[usize::from(r)] += 1;
    }
    estimate(&histo)
}

/// The count of a value, from its registers; `Err` for a sparse value that does not add up.
fn count(v: &[u8]) -> Result<u64, Invalid> {
    if v[4] == DENSE {
        return Ok(estimate_registers(
            (0..REGISTERS).map(|i| dense_get(&v[HDR..], i)),
        ));
    }
    let mut histo = [0u32; 64];
    let mut idx = 0;
    for (value, len) in sparse_runs(v) {
        idx += len;
        histo[usize::from(value)] += len as u32;
    }
    if idx != REGISTERS {
        return Err(Invalid);
    }
    Ok(estimate(&histo))
}

/// A HyperLogLog's bytes and its key's expiry.
type Loaded = (Vec<u8>, Option<u64>);

/// The HyperLogLog under `key` and its expiry; `None` if absent; errors for another type or a
/// string that is not one.
fn load(ctx: &mut Ctx<'_, '_>, key: &[u8]) -> Result<Option<Loaded>, CmdError> {
    match ctx.lookup(key)? {
        None => Ok(None),
        Some(e) if e.ty == Type::String => {
            if !valid(&e.payload) {
                return Err(Frame::Error(NOT_HLL.into()).into());
            }
            Ok(Some((e.payload.to_vec(), e.expire_at)))
        }
        Some(_) => Err(wrongtype()),
    }
}

fn corrupt() -> CmdError {
    Frame::Error(CORRUPT.into()).into()
}

fn sparse_max_bytes(ctx: &Ctx<'_, '_>) -> usize {
    ctx.shared
        .config
        .knob("hll-sparse-max-bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

fn add(v: &mut Vec<u8>, ele: &[u8], max_bytes: usize) -> Result<bool, CmdError> {
    let (index, count) = pattern(ele);
    match v[4] {
        DENSE => Ok(dense_set(v, index, count)),
        _ => sparse_set(v, index, count, max_bytes).map_err(|Invalid| corrupt()),
    }
}

/// The HyperLogLog under `key` as an edit of its string and its bytes (`None` if absent);
/// errors for another type or a string that is not one.
fn edit(ctx: &mut Ctx<'_, '_>, key: &[u8]) -> Result<(StringEdit, Option<Vec<u8>>), CmdError> {
    let mut edit = ctx.string_edit(key)?;
    if !edit.existed() {
        return Ok((edit, None));
    }
    let v = edit.all(ctx)?;
    if !valid(&v) {
        return Err(Frame::Error(NOT_HLL.into()).into());
    }
    Ok((edit, Some(v)))
}

fn pfadd(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let max_bytes = sparse_max_bytes(ctx);
    let (mut edit, v) = edit(ctx, &args[1])?;
    let (mut v, mut updated) = match v {
        Some(v) => (v, false),
        None => (empty(), true),
    };
    for ele in &args[2..] {
        updated |= add(&mut v, ele, max_bytes)?;
    }
    if updated {
        v[CACHE_FLAG] |= 0x80;
        // A dense one (12 KB, in chunks) gets back the chunks whose registers changed.
        edit.replace(ctx, &v)?;
        edit.save(ctx, &args[1])?;
    }
    Ok(Frame::Integer(i64::from(updated)))
}

fn pfcount(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 {
        let mut max = Box::new([0u8; REGISTERS]);
        for key in &args[1..] {
            if let Some((v, _)) = load(ctx, key)? {
                merge_into(&mut max, &v).map_err(|Invalid| corrupt())?;
            }
        }
        return Ok(Frame::Integer(
            estimate_registers(max.iter().copied()) as i64
        ));
    }
    let (mut edit, Some(mut v)) = edit(ctx, &args[1])? else {
        return Ok(Frame::Integer(0));
    };
    if v[CACHE_FLAG] & 0x80 == 0 {
        let mut card = [0u8; 8];
        card.copy_from_slice(&v[8..16]);
        return Ok(Frame::Integer(u64::from_le_bytes(card) as i64));
    }
    let n = count(&v).map_err(|Invalid| corrupt())?;
    // The count is cached in the value, as Redis does (GET shows it).
    v[8..16].copy_from_slice(&n.to_le_bytes());
    edit.replace(ctx, &v)?;
    edit.save(ctx, &args[1])?;
    Ok(Frame::Integer(n as i64))
}

fn pfmerge(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let max_bytes = sparse_max_bytes(ctx);
    let mut max = Box::new([0u8; REGISTERS]);
    let mut dense = false;
    for key in &args[1..] {
        if let Some((v, _)) = load(ctx, key)? {
            dense |= v[4] == DENSE;
            merge_into(&mut max, &v).map_err(|Invalid| corrupt())?;
        }
    }
    // The destination keeps its registers (it was merged above if it existed) and expiry.
    let (mut edit, v) = edit(ctx, &args[1])?;
    let mut v = v.unwrap_or_else(empty);
    if dense && v[4] == SPARSE {
        v = to_dense(&v).map_err(|Invalid| corrupt())?;
    }
    for (i, &m) in max.iter().enumerate() {
        if m == 0 {
            continue;
        }
        if v[4] == DENSE {
            dense_set(&mut v, i, m);
        } else {
            sparse_set(&mut v, i, m, max_bytes).map_err(|Invalid| corrupt())?;
        }
    }
    v[CACHE_FLAG] |= 0x80;
    edit.replace(ctx, &v)?;
    // Written even if unchanged: WATCH and keyspace events hear of every PFMERGE, as from
    // Redis.
    edit.mark_changed();
    edit.save(ctx, &args[1])?;
    Ok(Frame::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_value_is_one_xzero_run() {
        let v = empty();
        assert_eq!(v.len(), 18);
        assert_eq!(&v[16..], &[0x7f, 0xff]);
        assert_eq!(count(&v).ok(), Some(0));
    }

    #[test]
    fn dense_registers_round_trip_at_every_bit_offset() {
        let mut d = vec![0u8; DENSE_SIZE];
        for i in 0..REGISTERS {
            dense_set_raw(&mut d[HDR..], i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&d[HDR..], i), (i % 64) as u8, "register {i}");
        }
    }

    #[test]
    fn sparse_and_dense_count_alike() {
        let mut s = empty();
        for i in 0..2000u32 {
            let (index, c) = pattern(&i.to_le_bytes());
            sparse_set(&mut s, index, c, usize::MAX).ok().unwrap();
        }
        assert_eq!(s[4], SPARSE);
        let d = to_dense(&s).ok().unwrap();
        assert_eq!(count(&s).ok(), count(&d).ok());
    }
}

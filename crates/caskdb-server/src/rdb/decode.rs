//! Reading the RDB object of a payload: the type byte, lengths, strings (plain, integer,
//! LZF-compressed), doubles, and each type's layout. Every read is checked against the bytes
//! left, so a declared length or count never allocates more than the payload could fill.

use std::collections::HashSet;

use bytes::Bytes;

use super::{
    Error, Stream, StreamEntry, StreamGroup, StreamId, StreamPending, Value, itoa, lzf, packed, ty,
};

/// A length, or the special string encoding that takes its place (Redis's `RDB_ENCVAL`).
enum Len {
    Plain(u64),
    Encoded(u8),
}

/// Special string encodings.
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// Quicklist node containers (Redis 7.0's `QUICKLIST_NODE_CONTAINER_*`).
const CONTAINER_PLAIN: u64 = 1;
const CONTAINER_PACKED: u64 = 2;

/// A cursor over the payload's body.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The longest string a read may produce.
    max_string: u64,
}

type Result<T> = std::result::Result<T, Error>;

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn byte(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(Error::Format)?;
        self.pos += 1;
        Ok(b)
    }

    /// The next `n` bytes.
    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| Error::Format)?;
        if n > self.left() {
            return Err(Error::Format);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N as u64)?.try_into().map_err(|_| Error::Format)
    }

    fn len_or_encoding(&mut self) -> Result<Len> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3f)),
            1 => Len::Plain((u64::from(b & 0x3f) << 8) | u64::from(self.byte()?)),
            3 => Len::Encoded(b & 0x3f),
            _ => match b {
                0x80 => Len::Plain(u64::from(u32::from_be_bytes(self.array()?))),
                0x81 => Len::Plain(u64::from_be_bytes(self.array()?)),
                _ => return Err(Error::Format),
            },
        })
    }

    /// A length (a count, a size): a special encoding is malformed here.
    fn len(&mut self) -> Result<u64> {
        match self.len_or_encoding()? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(_) => Err(Error::Format),
        }
    }

    /// A count of items each taking at least one byte: no more than the bytes left.
    fn count(&mut self) -> Result<usize> {
        let n = self.len()?;
        match usize::try_from(n) {
            Ok(n) if n <= self.left() => Ok(n),
            _ => Err(Error::Format),
        }
    }

    /// A string: raw, an integer (as its decimal text), or LZF-compressed.
    fn string(&mut self) -> Result<Vec<u8>> {
        match self.len_or_encoding()? {
            Len::Plain(n) => {
                if n > self.max_string {
                    return Err(Error::Format);
                }
                Ok(self.take(n)?.to_vec())
            }
            Len::Encoded(ENC_INT8) => Ok(itoa(i64::from(i8::from_le_bytes(self.array()?)))),
            Len::Encoded(ENC_INT16) => Ok(itoa(i64::from(i16::from_le_bytes(self.array()?)))),
            Len::Encoded(ENC_INT32) => Ok(itoa(i64::from(i32::from_le_bytes(self.array()?)))),
            Len::Encoded(ENC_LZF) => {
                let compressed_len = self.len()?;
                let len = self.len()?;
                if len > self.max_string {
                    return Err(Error::Format);
                }
                let compressed = self.take(compressed_len)?;
                lzf::decompress(compressed, len).ok_or(Error::Format)
            }
            Len::Encoded(_) => Err(Error::Format),
        }
    }

    /// A score as RDB 8+ writes it: an IEEE 754 double, little endian.
    fn binary_double(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A score as older RDBs wrote it: a length byte (253 NaN, 254 +inf, 255 -inf), then text.
    fn text_double(&mut self) -> Result<f64> {
        match self.byte()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => parse_double(self.take(u64::from(n))?).ok_or(Error::Format),
        }
    }
}

/// A score written as text (`%.17g`, an integer, `inf`…).
pub(super) fn parse_double(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

/// The value in `body` (a payload without its footer): a type byte, then exactly one object.
pub(super) fn payload_body(body: &[u8], max_string: u64) -> Result<Value> {
    let mut r = Reader {
        buf: body,
        pos: 0,
        max_string,
    };
    let t = r.byte()?;
    let value = object(t, &mut r)?;
    if r.left() != 0 {
        return Err(Error::Format);
    }
    Ok(value)
}

/// The libraries' codes in a FUNCTION DUMP body: `RDB_OPCODE_FUNCTION2` and a string, each;
/// Redis's error texts.
pub(super) fn libraries(body: &[u8]) -> std::result::Result<Vec<Vec<u8>>, &'static str> {
    let mut r = Reader {
        buf: body,
        pos: 0,
        max_string: u64::MAX,
    };
    let mut out = Vec::new();
    while r.left() > 0 {
        let t = r.byte().map_err(|_| "can not read data type")?;
        if t != super::OPCODE_FUNCTION2 {
            return Err("given type is not a function");
        }
        out.push(
            r.string()
                .map_err(|_| "failed loading the given functions payload")?,
        );
    }
    Ok(out)
}

/// The object of RDB type `t`.
fn object(t: u8, r: &mut Reader<'_>) -> Result<Value> {
    let value = match t {
        ty::STRING => Value::String(r.string()?.into()),
        ty::LIST => {
            let n = r.count()?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(r.string()?.into());
            }
            Value::List(items)
        }
        ty::SET => {
            let n = r.count()?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(r.string()?.into());
            }
            Value::Set(items)
        }
        ty::ZSET | ty::ZSET_2 => {
            let n = r.count()?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                let member = r.string()?.into();
                let score = if t == ty::ZSET_2 {
                    r.binary_double()?
                } else {
                    r.text_double()?
                };
                items.push((member, score));
            }
            Value::ZSet(items)
        }
        ty::HASH => {
            let n = r.count()?;
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                let field = r.string()?.into();
                pairs.push((field, r.string()?.into()));
            }
            Value::Hash(pairs)
        }
        ty::LIST_QUICKLIST | ty::LIST_QUICKLIST_2 => {
            let nodes = r.count()?;
            let mut items = Vec::new();
            for _ in 0..nodes {
                let container = if t == ty::LIST_QUICKLIST_2 {
                    r.len()?
                } else {
                    CONTAINER_PACKED
                };
                let blob = r.string()?;
                if blob.is_empty() {
                    return Err(Error::Format);
                }
                match container {
                    CONTAINER_PLAIN => items.push(blob.into()),
                    CONTAINER_PACKED if t == ty::LIST_QUICKLIST_2 => {
                        items.extend(packed::listpack(&blob)?.into_iter().map(Bytes::from));
                    }
                    CONTAINER_PACKED => {
                        items.extend(packed::ziplist(&blob)?.into_iter().map(Bytes::from));
                    }
                    _ => return Err(Error::Format),
                }
            }
            Value::List(items)
        }
        ty::LIST_ZIPLIST => Value::List(bytes(packed::ziplist(&r.string()?)?)),
        ty::SET_INTSET => Value::Set(bytes(packed::intset(&r.string()?)?)),
        ty::HASH_ZIPMAP => Value::Hash(
            packed::zipmap(&r.string()?)?
                .into_iter()
                .map(|(f, v)| (f.into(), v.into()))
                .collect(),
        ),
        ty::HASH_ZIPLIST => Value::Hash(pairs(packed::ziplist(&r.string()?)?)?),
        ty::HASH_LISTPACK => Value::Hash(pairs(packed::listpack(&r.string()?)?)?),
        ty::ZSET_ZIPLIST | ty::ZSET_LISTPACK => {
            let blob = r.string()?;
            let flat = if t == ty::ZSET_ZIPLIST {
                packed::ziplist(&blob)?
            } else {
                packed::listpack(&blob)?
            };
            let scored = pairs(flat)?
                .into_iter()
                .map(|(member, score)| Ok((member, parse_double(&score).ok_or(Error::Format)?)))
                .collect::<Result<Vec<_>>>()?;
            Value::ZSet(scored)
        }
        ty::STREAM_LISTPACKS | ty::STREAM_LISTPACKS_2 => {
            Value::Stream(Box::new(stream(r, t == ty::STREAM_LISTPACKS_2)?))
        }
        // Module values (no module is loaded here) and types no Redis writes.
        ty::MODULE | ty::MODULE_2 => return Err(Error::Format),
        _ => return Err(Error::Format),
    };
    check(&value)?;
    Ok(value)
}

/// An integer element of a stream's listpack.
fn lp_int(item: Option<&Vec<u8>>) -> Result<i64> {
    item.and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
        .ok_or(Error::Format)
}

/// One node of a stream: its key (the master id) and listpack, as `(id, fields and values)`
/// of its live entries, and how many entries it holds with the deleted ones.
fn stream_node(key: &[u8], lp: &[u8]) -> Result<(Vec<StreamEntry>, u64)> {
    const DELETED: i64 = 1;
    const SAMEFIELDS: i64 = 2;
    let master = (
        u64::from_be_bytes(
            key.get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or(Error::Format)?,
        ),
        u64::from_be_bytes(
            key.get(8..16)
                .and_then(|b| b.try_into().ok())
                .ok_or(Error::Format)?,
        ),
    );
    if key.len() != 16 {
        return Err(Error::Format);
    }
    let items = packed::listpack(lp)?;
    let mut it = items.iter();
    let count = lp_int(it.next())?;
    let deleted = lp_int(it.next())?;
    let nfields = usize::try_from(lp_int(it.next())?).map_err(|_| Error::Format)?;
    let mut master_fields = Vec::with_capacity(nfields.min(items.len()));
    for _ in 0..nfields {
        master_fields.push(Bytes::from(it.next().ok_or(Error::Format)?.clone()));
    }
    if lp_int(it.next())? != 0 {
        return Err(Error::Format);
    }
    let total = count.checked_add(deleted).ok_or(Error::Format)?;
    if count < 0 || deleted < 0 || total == 0 {
        return Err(Error::Format);
    }
    let mut out = Vec::new();
    for _ in 0..total {
        let flags = lp_int(it.next())?;
        let ms = master.0.wrapping_add(lp_int(it.next())? as u64);
        let seq = master.1.wrapping_add(lp_int(it.next())? as u64);
        let mut pairs = Vec::new();
        if flags & SAMEFIELDS != 0 {
            for f in &master_fields {
                pairs.push(f.clone());
                pairs.push(Bytes::from(it.next().ok_or(Error::Format)?.clone()));
            }
        } else {
            let n = usize::try_from(lp_int(it.next())?).map_err(|_| Error::Format)?;
            for _ in 0..n.checked_mul(2).ok_or(Error::Format)? {
                pairs.push(Bytes::from(it.next().ok_or(Error::Format)?.clone()));
            }
        }
        lp_int(it.next())?; // the entry's element count, for walking backwards
        if pairs.is_empty() {
            return Err(Error::Format);
        }
        if flags & DELETED == 0 {
            out.push(((ms, seq), pairs));
        }
    }
    if it.next().is_some() || out.len() as i64 != count {
        return Err(Error::Format);
    }
    Ok((out, total as u64))
}

/// A 128-bit id as Redis writes it in a PEL: ms then seq, big endian.
fn raw_id(r: &mut Reader<'_>) -> Result<StreamId> {
    let b: [u8; 16] = r.array()?;
    Ok((
        u64::from_be_bytes(b[..8].try_into().map_err(|_| Error::Format)?),
        u64::from_be_bytes(b[8..].try_into().map_err(|_| Error::Format)?),
    ))
}

/// `RDB_TYPE_STREAM_LISTPACKS` (Redis 5 and 6) or `_2` (7.0: with the first and largest
/// deleted ids, the entries added, each group's entries read).
fn stream(r: &mut Reader<'_>, v2: bool) -> Result<Stream> {
    let mut s = Stream::default();
    let nodes = r.count()?;
    for _ in 0..nodes {
        let key = r.string()?;
        let lp = r.string()?;
        let (entries, fill) = stream_node(&key, &lp)?;
        s.last_node_fill = fill;
        if !entries.is_empty() {
            s.nodes.push(entries);
        } else {
            // (A node of deleted entries only: the next entry starts a new one.)
            s.last_node_fill = 0;
        }
    }
    let length = r.len()?;
    if length != s.nodes.iter().map(|n| n.len() as u64).sum::<u64>() {
        return Err(Error::Format);
    }
    s.last_id = (r.len()?, r.len()?);
    let first = s
        .nodes
        .first()
        .and_then(|n| n.first())
        .map_or((0, 0), |(id, _)| *id);
    if v2 {
        s.first_id = (r.len()?, r.len()?);
        s.max_deleted = (r.len()?, r.len()?);
        s.entries_added = r.len()?;
    } else {
        s.first_id = first;
        s.entries_added = length;
    }
    let groups = r.count()?;
    for _ in 0..groups {
        let name = Bytes::from(r.string()?);
        let last_id = (r.len()?, r.len()?);
        // Before 7.0 the count is estimated on load, as Redis does (−1 when it cannot be).
        let entries_read = if v2 {
            // −1 (unknown) is written as the largest 64-bit length.
            match r.len()? {
                u64::MAX => -1,
                n => i64::try_from(n).map_err(|_| Error::Format)?,
            }
        } else if length == 0 {
            0
        } else if last_id == s.last_id {
            length as i64
        } else if last_id < first {
            0
        } else if last_id == first {
            1
        } else {
            -1
        };
        let n = r.count()?;
        let mut pending: Vec<StreamPending> = Vec::with_capacity(n);
        for _ in 0..n {
            let id = raw_id(r)?;
            let time = u64::from_le_bytes(r.array()?);
            let count = r.len()?;
            pending.push((id, time, count, Bytes::new()));
        }
        pending.sort_by_key(|p| p.0);
        if pending.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(Error::Format);
        }
        let mut consumers: Vec<(Bytes, u64)> = Vec::new();
        for _ in 0..r.count()? {
            let cname = Bytes::from(r.string()?);
            let seen = u64::from_le_bytes(r.array()?);
            for _ in 0..r.count()? {
                let id = raw_id(r)?;
                let at = pending
                    .binary_search_by_key(&id, |p| p.0)
                    .map_err(|_| Error::Format)?;
                if !pending[at].3.is_empty() {
                    return Err(Error::Format);
                }
                pending[at].3 = cname.clone();
            }
            consumers.push((cname, seen));
        }
        // Every pending entry belongs to a consumer (Redis's deep check).
        if pending.iter().any(|p| p.3.is_empty()) {
            return Err(Error::Format);
        }
        consumers.sort_by(|a, b| a.0.cmp(&b.0));
        s.groups.push(StreamGroup {
            name,
            last_id,
            entries_read,
            consumers,
            pending,
        });
    }
    s.groups.sort_by(|a, b| a.name.cmp(&b.name));
    s.check().map_err(|_| Error::Format)?;
    Ok(s)
}

fn bytes(items: Vec<Vec<u8>>) -> Vec<Bytes> {
    items.into_iter().map(Bytes::from).collect()
}

/// A flat run of elements as (field, value) pairs: an odd count is malformed.
fn pairs(flat: Vec<Vec<u8>>) -> Result<Vec<(Bytes, Bytes)>> {
    if !flat.len().is_multiple_of(2) {
        return Err(Error::Format);
    }
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a.into(), b.into()));
    }
    Ok(out)
}

/// Refuses what Redis refuses once loaded: an empty collection, a duplicate member or field, a
/// NaN score.
fn check(value: &Value) -> Result<()> {
    fn distinct<'a>(n: usize, mut keys: impl Iterator<Item = &'a [u8]>) -> Result<()> {
        let mut seen = HashSet::with_capacity(n);
        if keys.all(|k| seen.insert(k)) {
            Ok(())
        } else {
            Err(Error::Format)
        }
    }
    match value {
        Value::String(_) | Value::Stream(_) => Ok(()),
        Value::List(items) if !items.is_empty() => Ok(()),
        Value::Set(items) if !items.is_empty() => {
            distinct(items.len(), items.iter().map(|m| &m[..]))
        }
        Value::Hash(pairs) if !pairs.is_empty() => {
            distinct(pairs.len(), pairs.iter().map(|(f, _)| &f[..]))
        }
        Value::ZSet(items) if !items.is_empty() => {
            if items.iter().any(|(_, s)| s.is_nan()) {
                return Err(Error::Format);
            }
            distinct(items.len(), items.iter().map(|(m, _)| &m[..]))
        }
        _ => Err(Error::Format),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(bytes: &[u8]) -> Result<Value> {
        payload_body(bytes, u64::MAX)
    }

    #[test]
    fn lengths_and_integer_strings() {
        let s = |t: &'static [u8]| Ok(Value::String(Bytes::from_static(t)));
        assert_eq!(body(b"\x00\xc0\xfb"), s(b"-5"));
        assert_eq!(body(b"\x00\xc1\x39\x30"), s(b"12345"));
        assert_eq!(body(b"\x00\xc2\x00\x00\x00\x80"), s(b"-2147483648"));
        // A 14-bit length, and the 32-bit one (big endian).
        let mut p = vec![0u8, 0x40 | 1, 0x00];
        p.extend(vec![b'x'; 256]);
        assert_eq!(body(&p), Ok(Value::String(vec![b'x'; 256].into())));
        let mut p = vec![0u8, 0x80, 0, 0, 1, 0];
        p.extend(vec![b'y'; 256]);
        assert_eq!(body(&p), Ok(Value::String(vec![b'y'; 256].into())));
    }

    #[test]
    fn malformed_bodies() {
        for bad in [
            &b""[..],
            b"\x00",
            b"\x00\x05hell",
            b"\x00\x05hello!",
            b"\x00\xc4",
            b"\x00\x82",
            b"\x02\x00",
            b"\x02\x02\x01a\x01a",
            b"\x04\x01\x01a",
            b"\x05\x01\x01a\x00\x00\x00\x00\x00\x00\xf8\x7f",
            b"\x06\x00",
            b"\x08\x00",
            b"\x14\x00",
            b"\x01\xff\xff\xff\xff",
            b"\x12\x01\x03\x01a",
        ] {
            assert_eq!(body(bad), Err(Error::Format), "{bad:?}");
        }
        // A stream cut short after its node count.
        assert_eq!(body(b"\x0f\x00"), Err(Error::Format));
        // Longer than allowed.
        assert_eq!(payload_body(b"\x00\x03abc", 2), Err(Error::Format));
    }

    #[test]
    fn text_scores() {
        assert_eq!(
            body(b"\x03\x02\x01a\x031.5\x01b\xff"),
            Ok(Value::ZSet(vec![
                (Bytes::from_static(b"a"), 1.5),
                (Bytes::from_static(b"b"), f64::NEG_INFINITY)
            ]))
        );
        assert_eq!(body(b"\x03\x01\x01a\xfd"), Err(Error::Format));
    }
}

//! Writing a value as an RDB object, in the plainest encoding of its type that redis-server
//! 7.0 loads: a string as its bytes (no integer or LZF form), a list as `RDB_TYPE_LIST` (a
//! count, then each element), a set as `RDB_TYPE_SET`, a hash as `RDB_TYPE_HASH`, a sorted set
//! as `RDB_TYPE_ZSET_2` (binary scores). Redis converts each to its compact encoding as its
//! size knobs say, as it does for its own payloads. A stream has one encoding,
//! `RDB_TYPE_STREAM_LISTPACKS_2`: its nodes as listpacks, its state, its groups.

use super::packed::{Item, write_listpack};
use super::{Stream, Value, ty};

/// A length: 6 bits, 14 bits, or a marker byte and 32 or 64 bits big endian.
fn len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if let Ok(n) = u32::try_from(n) {
        out.push(0x80);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// The type byte and the object of `value`.
pub(super) fn value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::String(s) => {
            out.push(ty::STRING);
            string(out, s);
        }
        Value::List(items) | Value::Set(items) => {
            out.push(if matches!(value, Value::List(_)) {
                ty::LIST
            } else {
                ty::SET
            });
            len(out, items.len() as u64);
            for item in items {
                string(out, item);
            }
        }
        Value::Hash(pairs) => {
            out.push(ty::HASH);
            len(out, pairs.len() as u64);
            for (field, v) in pairs {
                string(out, field);
                string(out, v);
            }
        }
        Value::ZSet(items) => {
            out.push(ty::ZSET_2);
            len(out, items.len() as u64);
            for (member, score) in items {
                string(out, member);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        Value::Stream(s) => stream(s, out),
    }
}

/// A 128-bit id as the radix tree keys it: ms then seq, big endian.
fn raw_id(out: &mut Vec<u8>, (ms, seq): (u64, u64)) {
    out.extend_from_slice(&ms.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
}

/// One node's listpack, as Redis lays it out: the master entry (count, deleted, the first
/// entry's fields, 0), then each entry as flags, the id's distance from the node's key, its
/// values alone if its fields are the master's (flag 2) or its fields and values, and the
/// number of listpack elements the entry took.
fn node_listpack(node: &[((u64, u64), Vec<bytes::Bytes>)]) -> Vec<u8> {
    const SAMEFIELDS: i64 = 2;
    let Some((master, first)) = node.first() else {
        return write_listpack(&[]);
    };
    let master_fields: Vec<&[u8]> = first.iter().step_by(2).map(|f| &f[..]).collect();
    let mut items = vec![
        Item::Int(node.len() as i64),
        Item::Int(0),
        Item::Int(master_fields.len() as i64),
    ];
    items.extend(master_fields.iter().map(|f| Item::Str(f)));
    items.push(Item::Int(0));
    for ((ms, seq), pairs) in node {
        let fields: Vec<&[u8]> = pairs.iter().step_by(2).map(|f| &f[..]).collect();
        let same = fields == master_fields;
        items.push(Item::Int(if same { SAMEFIELDS } else { 0 }));
        items.push(Item::Int(ms.wrapping_sub(master.0) as i64));
        items.push(Item::Int(seq.wrapping_sub(master.1) as i64));
        let n = pairs.len() / 2;
        if same {
            items.extend(pairs.iter().skip(1).step_by(2).map(|v| Item::Str(v)));
            items.push(Item::Int(n as i64 + 3));
        } else {
            items.push(Item::Int(n as i64));
            items.extend(pairs.iter().map(|p| Item::Str(p)));
            items.push(Item::Int(2 * n as i64 + 4));
        }
    }
    write_listpack(&items)
}

fn stream(s: &Stream, out: &mut Vec<u8>) {
    out.push(ty::STREAM_LISTPACKS_2);
    len(out, s.nodes.len() as u64);
    let mut length = 0;
    for node in &s.nodes {
        let mut key = Vec::with_capacity(16);
        raw_id(&mut key, node.first().map_or((0, 0), |(id, _)| *id));
        string(out, &key);
        string(out, &node_listpack(node));
        length += node.len() as u64;
    }
    len(out, length);
    for (ms, seq) in [s.last_id, s.first_id, s.max_deleted] {
        len(out, ms);
        len(out, seq);
    }
    len(out, s.entries_added);
    len(out, s.groups.len() as u64);
    for g in &s.groups {
        string(out, &g.name);
        len(out, g.last_id.0);
        len(out, g.last_id.1);
        // (−1, unknown, as the 64-bit length Redis writes for it.)
        len(out, g.entries_read as u64);
        len(out, g.pending.len() as u64);
        for (id, time, count, _) in &g.pending {
            raw_id(out, *id);
            out.extend_from_slice(&time.to_le_bytes());
            len(out, *count);
        }
        let mut by_owner: std::collections::HashMap<&[u8], Vec<(u64, u64)>> =
            std::collections::HashMap::new();
        for (id, _, _, owner) in &g.pending {
            by_owner.entry(owner).or_default().push(*id);
        }
        len(out, g.consumers.len() as u64);
        for (name, seen) in &g.consumers {
            string(out, name);
            out.extend_from_slice(&seen.to_le_bytes());
            let mine = by_owner.remove(&name[..]).unwrap_or_default();
            len(out, mine.len() as u64);
            for id in mine {
                raw_id(out, id);
            }
        }
    }
}

/// A function library, as Redis's `RDB_OPCODE_FUNCTION2`: the opcode, then its code.
pub(super) fn library(code: &[u8], out: &mut Vec<u8>) {
    out.push(super::OPCODE_FUNCTION2);
    string(out, code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        let enc = |n| {
            let mut v = Vec::new();
            len(&mut v, n);
            v
        };
        assert_eq!(enc(63), vec![63]);
        assert_eq!(enc(64), vec![0x40, 64]);
        assert_eq!(enc(16383), vec![0x7f, 0xff]);
        assert_eq!(enc(16384), vec![0x80, 0, 0, 0x40, 0]);
        assert_eq!(enc(1 << 32), vec![0x81, 0, 0, 0, 1, 0, 0, 0, 0]);
    }
}

//! Writing a value as an RDB object, in the plainest encoding of its type that redis-server
//! 7.0 loads: a string as its bytes (no integer or LZF form), a list as `RDB_TYPE_LIST` (a
//! count, then each element), a set as `RDB_TYPE_SET`, a hash as `RDB_TYPE_HASH`, a sorted set
//! as `RDB_TYPE_ZSET_2` (binary scores). Redis converts each to its compact encoding as its
//! size knobs say, as it does for its own payloads.

use super::{Value, ty};

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

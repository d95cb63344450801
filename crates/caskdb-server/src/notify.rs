//! Keyspace notifications: the event classes of `notify-keyspace-events` and their letters, and
//! the channels an event is published on (`__keyspace@<db>__:<key>`, `__keyevent@<db>__:<event>`).

use bytes::{BufMut, Bytes, BytesMut};

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME…).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: expired keys.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: evicted keys.
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: key misses (not in `A`).
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module key types.
pub const MODULE: u32 = 1 << 13;
/// `n`: new keys (not in `A`).
pub const NEW: u32 = 1 << 14;
/// `A`: every class but `m` and `n`.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The flags of a `notify-keyspace-events` value; `None` for a letter Redis does not know.
pub fn parse_flags(s: &[u8]) -> Option<u32> {
    let mut flags = 0;
    for &c in s {
        flags |= match c {
            b'A' => ALL,
            b'g' => GENERIC,
            b'$' => STRING,
            b'l' => LIST,
            b's' => SET,
            b'h' => HASH,
            b'z' => ZSET,
            b'x' => EXPIRED,
            b'e' => EVICTED,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b't' => STREAM,
            b'm' => KEY_MISS,
            b'd' => MODULE,
            b'n' => NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// The flags as CONFIG GET shows them, in Redis's order (`A` standing for all of its classes).
pub fn flags_to_string(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// Whether an event of `class` is published under `flags`: its class is on, and so is at least
/// one of the two channel families.
pub fn wanted(flags: u32, class: u32) -> bool {
    flags & class != 0 && flags & (KEYSPACE | KEYEVENT) != 0
}

/// The channel `__keyspace@<db>__:<key>`, which carries the event name.
pub fn keyspace_channel(db: u8, key: &[u8]) -> Bytes {
    channel(b"__keyspace@", db, key)
}

/// The channel `__keyevent@<db>__:<event>`, which carries the key.
pub fn keyevent_channel(db: u8, event: &[u8]) -> Bytes {
    channel(b"__keyevent@", db, event)
}

fn channel(prefix: &[u8], db: u8, tail: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(prefix.len() + 6 + tail.len());
    b.put_slice(prefix);
    b.put_slice(db.to_string().as_bytes());
    b.put_slice(b"__:");
    b.put_slice(tail);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_like_redis() {
        assert_eq!(flags_to_string(parse_flags(b"KEA").unwrap()), "AKE");
        assert_eq!(flags_to_string(parse_flags(b"Kgn").unwrap()), "gnK");
        assert_eq!(flags_to_string(parse_flags(b"KEA$lmn").unwrap()), "AKEm");
        assert_eq!(flags_to_string(parse_flags(b"").unwrap()), "");
        assert_eq!(parse_flags(b"Q"), None);
        assert!(wanted(parse_flags(b"K$").unwrap(), STRING));
        assert!(!wanted(parse_flags(b"$").unwrap(), STRING));
        assert_eq!(&keyspace_channel(3, b"k")[..], b"__keyspace@3__:k");
        assert_eq!(&keyevent_channel(0, b"set")[..], b"__keyevent@0__:set");
    }
}

/// A key a write command changed (recorded only while notifications are on): the raw material
/// of its events (`cmd/events.rs`).
#[derive(Debug, Clone)]
pub(crate) struct Touched {
    pub db: u8,
    pub key: Bytes,
    /// Deleted rather than written.
    pub removed: bool,
}

/// One keyspace event, to publish once its command's transaction is committed.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub class: u32,
    pub name: &'static str,
    pub db: u8,
    pub key: Bytes,
}

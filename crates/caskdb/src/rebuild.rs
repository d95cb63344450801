//! Building the index from replayed records in bulk.
//!
//! Inserting millions of keys one by one into the trees of the index costs a cache miss or more
//! per key (10M random keys: 12 s). Instead, replay gathers every record's key and location per
//! shard in log order; a stable sort by key then puts each key's records next to each other,
//! oldest first, so the last one of each run is the one that counts; and each shard's tree is
//! built bottom-up from the survivors ([`Keydir::fill_sorted`]). Shards are resolved on all
//! cores at once.
//!
//! Memory follows keys, not records: while a file is read, a shard's list is compacted to the
//! newest op per key whenever it doubles ([`FileOps`]); across files, the lists are resolved
//! whenever they double in all ([`Rebuild::append`]). A log that rewrote each key many times
//! needs memory for about twice its keys.

use std::collections::BTreeMap;

use crate::keydir::{KeyBuf, Keydir, Loc, SHARDS, shard_of};

/// One replayed record: a value (`live`) or a deletion.
struct Op {
    /// The key's first 8 bytes, big-endian, zero-padded: decides most comparisons without
    /// following into the key's bytes. Zero padding keeps the order of the keys themselves:
    /// where two prefixes first differ, either both keys have a byte there, or the shorter one
    /// ended and is a prefix of the other, so it is the smaller one either way.
    prefix: u64,
    key: KeyBuf,
    loc: Loc,
    live: bool,
}

impl Op {
    fn new(key: &[u8], loc: Loc, live: bool) -> Op {
        let mut head = [0u8; 8];
        let n = key.len().min(8);
        head[..n].copy_from_slice(&key[..n]);
        Op {
            prefix: u64::from_be_bytes(head),
            key: KeyBuf::from_slice(key),
            loc,
            live,
        }
    }
}

/// The records replayed from one file, per shard. A key's ops are in log order; whenever a
/// shard's list doubles (past [`COMPACT_MIN`]), only the newest op of each key is kept — a
/// deletion too, as it must still delete the key's entries from older files — so a file
/// that rewrites few keys many times needs memory for its keys, not its records.
pub(crate) struct FileOps {
    shards: Vec<FileShard>,
    /// Bytes of the records dropped, by file id.
    dead: BTreeMap<u32, u64>,
}

#[derive(Default)]
struct FileShard {
    ops: Vec<Op>,
    /// Length of `ops` after its last compaction.
    compacted: usize,
}

/// Ops in a shard of one file before it is first compacted (and the most reserved up front).
/// (Tiny in the crate's unit tests, so that every recovery they run compacts.)
const COMPACT_MIN: usize = if cfg!(test) { 16 } else { 8192 };

impl FileOps {
    /// Room for the records of a file of `file_len` bytes, if they average 64 bytes or more
    /// (up to [`COMPACT_MIN`] per shard). Reserved, not touched: pages never written cost no
    /// memory, and the vectors do not have to grow (copying) while the file is read.
    pub fn for_file(file_len: u64) -> Self {
        let per_shard = usize::try_from(file_len / 64 / SHARDS as u64)
            .unwrap_or(COMPACT_MIN)
            .min(COMPACT_MIN);
        FileOps {
            shards: (0..SHARDS)
                .map(|_| FileShard {
                    ops: Vec::with_capacity(per_shard),
                    compacted: 0,
                })
                .collect(),
            dead: BTreeMap::new(),
        }
    }

    /// Records that `key` was set to the record at `loc` (`live`) or deleted (by the record at
    /// `loc`). Calls must come in the order of the records in the file.
    pub fn push(&mut self, key: &[u8], loc: Loc, live: bool) {
        let shard = &mut self.shards[shard_of(key)];
        shard.ops.push(Op::new(key, loc, live));
        if shard.ops.len() >= (2 * shard.compacted).max(COMPACT_MIN) {
            let mut whole = Shard {
                pieces: vec![std::mem::take(&mut shard.ops)],
                resolved: false,
            };
            resolve(&mut whole, Keep::NewestOp, &mut self.dead);
            shard.ops = whole.pieces.pop().unwrap_or_default();
            shard.compacted = shard.ops.len();
        }
    }
}

/// What a resolve keeps of each key.
#[derive(Clone, Copy)]
enum Keep {
    /// Its newest op, deletion or not (older files may still hold the key).
    NewestOp,
    /// Its newest op if that is a value that has not expired at this time (ms).
    LiveAt(u64),
}

/// The ops of one shard, in log order: one piece per file, except that after a resolve the
/// first piece holds its result (sorted, one live op per key).
#[derive(Default)]
struct Shard {
    pieces: Vec<Vec<Op>>,
    resolved: bool,
}

/// Entries gathered from replayed records, not yet in the index.
pub(crate) struct Rebuild {
    shards: Vec<Shard>,
    /// Ops held in all shards, and how many there were after the last resolve.
    len: usize,
    resolved: usize,
    /// Bytes of records found superseded (or deletions), by file id.
    dead: BTreeMap<u32, u64>,
    now: u64,
    slack: usize,
}

/// Ops gathered beyond twice the count after the last resolve that trigger the next one: large
/// enough that resolving stays rare, small enough (64 MiB) not to matter next to the index.
/// (Tiny in the crate's unit tests, so that every recovery they run resolves early.)
const SLACK: usize = if cfg!(test) { 64 } else { 1 << 20 };

impl Rebuild {
    /// An empty rebuild; values whose expiry is at or before `now_ms` count as deletions.
    pub fn new(now_ms: u64) -> Self {
        Rebuild {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            len: 0,
            resolved: 0,
            dead: BTreeMap::new(),
            now: now_ms,
            slack: SLACK,
        }
    }

    /// Adds the records of the next file, in file id order.
    pub fn append(&mut self, ops: FileOps) {
        for (shard, more) in self.shards.iter_mut().zip(ops.shards) {
            if !more.ops.is_empty() {
                self.len += more.ops.len();
                shard.pieces.push(more.ops);
            }
        }
        add_dead(&mut self.dead, ops.dead);
        if self.len >= 2 * self.resolved + self.slack {
            let keep = Keep::LiveAt(self.now);
            let dead = on_shards(&mut self.shards, |shard, dead| resolve(shard, keep, dead));
            add_dead(&mut self.dead, dead);
            self.len = self
                .shards
                .iter()
                .map(|s| s.pieces.iter().map(Vec::len).sum::<usize>())
                .sum();
            self.resolved = self.len;
        }
    }

    /// Builds the (empty) `keydir` from everything appended and returns the dead bytes found,
    /// by file id.
    pub fn finish(mut self, keydir: &Keydir) -> BTreeMap<u32, u64> {
        let keep = Keep::LiveAt(self.now);
        let dead = on_shards(&mut self.shards, |shard, dead| {
            resolve(shard, keep, dead);
            if let Some(ops) = shard.pieces.pop() {
                keydir.fill_sorted(ops.into_iter().map(|op| (op.key, op.loc)).collect());
            }
        });
        add_dead(&mut self.dead, dead);
        self.dead
    }
}

/// Adds the dead bytes per file of `found` to `into`.
fn add_dead(into: &mut BTreeMap<u32, u64>, found: BTreeMap<u32, u64>) {
    for (id, bytes) in found {
        *into.entry(id).or_default() += bytes;
    }
}

/// Number of threads replay and rebuild use: every core, up to 8.
pub(crate) fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Runs `f` on every shard, on all cores; returns the dead bytes they counted.
fn on_shards(
    shards: &mut [Shard],
    f: impl Fn(&mut Shard, &mut BTreeMap<u32, u64>) + Sync,
) -> BTreeMap<u32, u64> {
    // Shard i goes to thread i mod n: keys of text share few first bytes (all printable), which
    // contiguous chunks of shards would hand to one thread.
    let threads = threads();
    let mut parts: Vec<Vec<&mut Shard>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, shard) in shards.iter_mut().enumerate() {
        parts[i % threads].push(shard);
    }
    let f = &f;
    let found: Vec<BTreeMap<u32, u64>> = std::thread::scope(|s| {
        let workers: Vec<_> = parts
            .into_iter()
            .map(|part| {
                s.spawn(move || {
                    let mut dead = BTreeMap::new();
                    for shard in part {
                        f(shard, &mut dead);
                    }
                    dead
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut dead = BTreeMap::new();
    for part in found {
        add_dead(&mut dead, part);
    }
    dead
}

/// Orders the shard's ops by key, a key's ops oldest first, and keeps of each key only its
/// newest op — with `Keep::LiveAt`, only if that is a value that has not expired; leaves them
/// as the only piece (none if nothing is left). Every op dropped is counted in `dead`.
///
/// What gets sorted is (prefix, position) pairs, not the ops: 16 bytes instead of 72 to move,
/// and a key's bytes are only looked at when two prefixes are equal. The result of an earlier
/// resolve is sorted already: only the ops that came after it are sorted, then merged with it.
fn resolve(shard: &mut Shard, keep: Keep, dead: &mut BTreeMap<u32, u64>) {
    let pieces = &mut shard.pieces;
    // A position: piece index in the high half, index within the piece in the low half, so
    // positions compare in log order.
    let op = |pos: u64| &pieces[(pos >> 32) as usize][(pos & 0xffff_ffff) as usize];
    let by_key = |a: &(u64, u64), b: &(u64, u64)| {
        a.0.cmp(&b.0)
            .then_with(|| op(a.1).key.cmp(&op(b.1).key))
            .then(a.1.cmp(&b.1))
    };
    let positions = |p: usize| {
        let piece = &pieces[p];
        piece
            .iter()
            .zip(0u64..)
            .map(move |(op, i)| (op.prefix, (p as u64) << 32 | i))
    };
    let first_new = usize::from(shard.resolved);
    debug_assert!(!shard.resolved || !pieces.is_empty());
    let mut order: Vec<(u64, u64)> = (first_new..pieces.len()).flat_map(positions).collect();
    order.sort_unstable_by(by_key);
    if shard.resolved {
        order = merge(positions(0), order, by_key);
    }
    let mut kept = Vec::with_capacity(order.len());
    for (i, &(prefix, at)) in order.iter().enumerate() {
        let newest = order
            .get(i + 1)
            .is_none_or(|&(next_prefix, next)| next_prefix != prefix || op(next).key != op(at).key);
        let o = op(at);
        let kept_op = match keep {
            Keep::NewestOp => newest,
            Keep::LiveAt(now) => newest && o.live && !o.loc.expired(now),
        };
        if kept_op {
            kept.push(at);
        } else {
            *dead.entry(o.loc.file_id).or_default() += u64::from(o.loc.len);
        }
    }
    let mut result = Vec::with_capacity(kept.len());
    for at in kept {
        let o = &mut pieces[(at >> 32) as usize][(at & 0xffff_ffff) as usize];
        result.push(Op {
            prefix: o.prefix,
            key: std::mem::take(&mut o.key),
            loc: o.loc,
            live: o.live,
        });
    }
    pieces.clear();
    // With nothing left, the next piece to come is a new one, not a resolved one.
    shard.resolved = !result.is_empty();
    if shard.resolved {
        pieces.push(result);
    }
}

/// Merges two sequences sorted by `cmp`, `a`'s item first when they compare equal.
fn merge<T>(
    a: impl Iterator<Item = T>,
    b: Vec<T>,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<T> {
    let mut out = Vec::with_capacity(b.len() + a.size_hint().0);
    let mut b = b.into_iter().peekable();
    for x in a {
        while let Some(y) = b.next_if(|y| cmp(y, &x).is_lt()) {
            out.push(y);
        }
        out.push(x);
    }
    out.extend(b);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that `keydir` holds, in order, the keys `expect` maps to a location; returns them.
    fn assert_holds(
        keydir: &Keydir,
        expect: BTreeMap<Vec<u8>, Option<Loc>>,
    ) -> Vec<(Vec<u8>, Loc)> {
        let live: Vec<(Vec<u8>, Loc)> = expect
            .into_iter()
            .filter_map(|(k, l)| l.map(|l| (k, l)))
            .collect();
        let got: Vec<(Vec<u8>, Loc)> = keydir
            .chunk_after(None, usize::MAX)
            .into_iter()
            .map(|(k, l)| (k.to_vec(), l))
            .collect();
        assert_eq!(got, live);
        live
    }

    fn loc(file_id: u32, offset: u64, expire_at: u64) -> Loc {
        Loc {
            file_id,
            len: 10,
            offset,
            expire_at,
        }
    }

    #[test]
    fn newest_op_of_each_key_wins_and_the_rest_is_dead() {
        let mut r = Rebuild::new(1_000);
        let mut file1 = FileOps::for_file(0);
        file1.push(b"b", loc(1, 0, 0), true);
        file1.push(b"a", loc(1, 10, 0), true);
        file1.push(b"b", loc(1, 20, 0), true); // overwrites b@0
        r.append(file1);
        let mut file2 = FileOps::for_file(0);
        file2.push(b"a", loc(2, 0, 0), false); // deletes a
        file2.push(b"c", loc(2, 10, 500), true); // expired before `now`
        file2.push(b"d", loc(2, 20, 5_000), true);
        file2.push(b"a", loc(2, 30, 0), true); // a again
        r.append(file2);
        let keydir = Keydir::default();
        let dead = r.finish(&keydir);
        assert_eq!(keydir.get(b"a"), Some(loc(2, 30, 0)));
        assert_eq!(keydir.get(b"b"), Some(loc(1, 20, 0)));
        assert_eq!(keydir.get(b"c"), None);
        assert_eq!(keydir.get(b"d"), Some(loc(2, 20, 5_000)));
        // file 1: b@0 and a@10 superseded; file 2: the tombstone and the expired c.
        assert_eq!(dead, BTreeMap::from([(1, 20), (2, 20)]));
        assert_eq!(keydir.live_len(1_000), 3);
    }

    #[test]
    fn a_shard_emptied_by_a_resolve_takes_new_keys() {
        let mut r = Rebuild::new(0);
        r.slack = 1; // resolve after every file
        let mut file1 = FileOps::for_file(0);
        file1.push(b"k2", loc(1, 0, 0), true);
        file1.push(b"k2", loc(1, 10, 0), false);
        r.append(file1);
        let mut file2 = FileOps::for_file(0);
        file2.push(b"k3", loc(2, 0, 0), true);
        file2.push(b"k1", loc(2, 10, 0), true);
        r.append(file2);
        let mut file3 = FileOps::for_file(0);
        file3.push(b"k0", loc(3, 0, 0), true);
        r.append(file3);
        let keydir = Keydir::default();
        r.finish(&keydir);
        let keys: Vec<KeyBuf> = keydir
            .chunk_after(None, 10)
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(keys, [&b"k0"[..], b"k1", b"k3"].map(KeyBuf::from_slice));
    }

    #[test]
    fn a_file_that_rewrites_few_keys_many_times_is_compacted_as_it_is_read() {
        // File 1 sets 100 keys; file 2 rewrites and deletes them 100,000 times in all, all in
        // one shard. Memory must follow the keys, not the records, and a deletion kept by the
        // compaction must still delete the key's entry from file 1.
        let mut expect: BTreeMap<Vec<u8>, Option<Loc>> = BTreeMap::new();
        let key = |k: u64| format!("k{k:03}").into_bytes();
        let mut r = Rebuild::new(0);
        let mut file1 = FileOps::for_file(0);
        for k in 0..100 {
            file1.push(&key(k), loc(1, k * 10, 0), true);
            expect.insert(key(k), Some(loc(1, k * 10, 0)));
        }
        r.append(file1);
        let mut file2 = FileOps::for_file(1 << 30);
        for n in 0..100_000u64 {
            let k = (n * 37) % 100;
            let live = n % 3 != 0;
            let l = loc(2, n * 10, 0);
            file2.push(&key(k), l, live);
            expect.insert(key(k), live.then_some(l));
            let longest = file2.shards.iter().map(|s| s.ops.len()).max().unwrap_or(0);
            assert!(
                longest <= (2 * 100).max(COMPACT_MIN),
                "{longest} ops held for 100 keys"
            );
        }
        r.append(file2);
        let keydir = Keydir::default();
        let dead = r.finish(&keydir);
        let live = assert_holds(&keydir, expect);
        let dead_total: u64 = dead.values().sum();
        assert_eq!(dead_total, (100 + 100_000 - live.len() as u64) * 10);
    }

    #[test]
    fn early_resolves_keep_the_outcome_of_a_long_history() {
        // Many rewrites of few keys (short ones, ones with zero bytes, ones that are prefixes of
        // others) force resolves in the middle; the result must equal the naive "last op wins"
        // replay, in key order.
        let mut r = Rebuild::new(0);
        r.slack = 500;
        let keys: Vec<Vec<u8>> = (0..2_000u32)
            .map(|k| match k % 4 {
                0 => format!("k{k:05}").into_bytes(),
                1 => k.to_le_bytes()[..(k as usize % 5)].to_vec(),
                2 => [b"a\0".as_slice(), &k.to_be_bytes()].concat(),
                _ => [
                    k.to_be_bytes().as_slice(),
                    b"0123456789abcdefghijklmnopqrst",
                ]
                .concat(),
            })
            .collect();
        let mut expect: BTreeMap<Vec<u8>, Option<Loc>> = BTreeMap::new();
        let mut ops = 0u64;
        for round in 0..40u64 {
            let mut file = FileOps::for_file(0);
            for k in 0..2_000u64 {
                let key = &keys[((k * 7 + round) % 2_000) as usize];
                let live = (k + round) % 5 != 0;
                let l = loc(1 + round as u32, k * 10, 0);
                file.push(key, l, live);
                expect.insert(key.clone(), live.then_some(l));
                ops += 1;
            }
            r.append(file);
        }
        let keydir = Keydir::default();
        let dead = r.finish(&keydir);
        let live = assert_holds(&keydir, expect);
        let dead_total: u64 = dead.values().sum();
        assert_eq!(dead_total, (ops - live.len() as u64) * 10);
    }
}

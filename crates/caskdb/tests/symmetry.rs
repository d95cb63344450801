//! `Db` and `Transaction` have the same verbs with the same results: a random sequence of
//! operations runs on one database through `Db`'s verbs and on another inside one long
//! transaction; after every operation both answer every read alike — the transaction's
//! iterators merging its pending writes with what is stored, taken from both ends.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use caskdb::{Bytes, Clock, Db, ManualClock, Options, Result, SyncPolicy, Transaction};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Put(u8, u8),
    PutTtl(u8, u8, u8),
    PutAt(u8, u8, i8),
    Delete(u8),
    Expire(u8, u8),
    Persist(u8),
    Advance(u8),
}

/// Keys `k00`..`k11`, and a few that sort between and around them.
fn key(k: u8) -> Vec<u8> {
    match k % 16 {
        12 => b"a".to_vec(),
        13 => b"k".to_vec(),
        14 => b"k0".to_vec(),
        15 => b"z".to_vec(),
        k => format!("k{k:02}").into_bytes(),
    }
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..16u8;
    prop_oneof![
        4 => (k.clone(), any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (k.clone(), any::<u8>(), 0..5u8).prop_map(|(k, v, s)| Op::PutTtl(k, v, s)),
        1 => (k.clone(), any::<u8>(), -3..4i8).prop_map(|(k, v, s)| Op::PutAt(k, v, s)),
        3 => k.clone().prop_map(Op::Delete),
        2 => (k.clone(), 0..5u8).prop_map(|(k, s)| Op::Expire(k, s)),
        1 => k.prop_map(Op::Persist),
        1 => (1..3u8).prop_map(Op::Advance),
    ]
}

/// The same verbs on both types, so that one function can drive either.
trait Verbs {
    fn put(&mut self, k: &[u8], v: &[u8]) -> Result<()>;
    fn put_with_ttl(&mut self, k: &[u8], v: &[u8], ttl: Duration) -> Result<()>;
    fn put_expiring_at(&mut self, k: &[u8], v: &[u8], at: u64) -> Result<()>;
    fn delete(&mut self, k: &[u8]) -> Result<bool>;
    fn expire(&mut self, k: &[u8], ttl: Duration) -> Result<bool>;
    fn persist(&mut self, k: &[u8]) -> Result<bool>;
}

macro_rules! verbs {
    ($t:ty) => {
        impl Verbs for $t {
            fn put(&mut self, k: &[u8], v: &[u8]) -> Result<()> {
                <$t>::put(self, k, v)
            }
            fn put_with_ttl(&mut self, k: &[u8], v: &[u8], ttl: Duration) -> Result<()> {
                <$t>::put_with_ttl(self, k, v, ttl)
            }
            fn put_expiring_at(&mut self, k: &[u8], v: &[u8], at: u64) -> Result<()> {
                <$t>::put_expiring_at(self, k, v, at)
            }
            fn delete(&mut self, k: &[u8]) -> Result<bool> {
                <$t>::delete(self, k)
            }
            fn expire(&mut self, k: &[u8], ttl: Duration) -> Result<bool> {
                <$t>::expire(self, k, ttl)
            }
            fn persist(&mut self, k: &[u8]) -> Result<bool> {
                <$t>::persist(self, k)
            }
        }
    };
}
verbs!(Db);
verbs!(Transaction<'_>);

/// Runs `op` through `v` (the clock is the caller's); the result of a verb that returns a
/// bool, or `None`.
fn apply(v: &mut dyn Verbs, op: &Op, now: u64) -> Option<bool> {
    let val = |b: u8| vec![b; usize::from(b % 7)];
    let secs = |s: u8| Duration::from_secs(u64::from(s));
    match *op {
        Op::Put(k, b) => v.put(&key(k), &val(b)).map(|()| None),
        Op::PutTtl(k, b, s) => v.put_with_ttl(&key(k), &val(b), secs(s)).map(|()| None),
        Op::PutAt(k, b, s) => {
            let at = now.saturating_add_signed(i64::from(s) * 1000);
            v.put_expiring_at(&key(k), &val(b), at).map(|()| None)
        }
        Op::Delete(k) => v.delete(&key(k)).map(Some),
        Op::Expire(k, s) => v.expire(&key(k), secs(s)).map(Some),
        Op::Persist(k) => v.persist(&key(k)).map(Some),
        Op::Advance(_) => Ok(None),
    }
    .unwrap()
}

type Pairs = Vec<(Bytes, Bytes)>;

/// Takes everything from `it`, from the front or the back as `pattern`'s bits say, and
/// returns it in ascending order.
fn drain(mut it: impl DoubleEndedIterator<Item = Result<(Bytes, Bytes)>>, pattern: u32) -> Pairs {
    let (mut front, mut back) = (Vec::new(), Vec::new());
    for i in 0.. {
        let rev = (pattern >> (i % 32)) & 1 != 0;
        let Some(item) = (if rev { it.next_back() } else { it.next() }) else {
            break;
        };
        if rev { &mut back } else { &mut front }.push(item.unwrap());
    }
    front.extend(back.into_iter().rev());
    front
}

/// Every read both types offer, answered by `db` and by `tx`, must agree.
fn same_reads(db: &Db, tx: &Transaction<'_>, pattern: u32, step: usize) {
    let all = drain(db.iter(), 0);
    assert_eq!(drain(tx.iter(), pattern), all, "step {step}: iter");
    let rev: Pairs = tx.iter().rev().map(|r| r.unwrap()).collect();
    assert_eq!(
        rev.into_iter().rev().collect::<Pairs>(),
        all,
        "step {step}: rev"
    );
    let bounds = [
        (Bound::Included(key(2)), Bound::Excluded(key(9))),
        (Bound::Excluded(key(13)), Bound::Included(key(5))),
        (Bound::Included(key(9)), Bound::Excluded(key(2))), // empty
        (Bound::Unbounded, Bound::Included(key(3))),
    ];
    for b in bounds {
        let want = drain(db.range::<Vec<u8>, _>(b.clone()), 0);
        assert_eq!(
            drain(tx.range::<Vec<u8>, _>(b.clone()), pattern),
            want,
            "step {step}: range {b:?}"
        );
        let keys: Vec<Bytes> = tx
            .range_keys::<Vec<u8>, _>(b.clone())
            .map(|r| r.unwrap())
            .collect();
        let want_keys: Vec<Bytes> = want.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, want_keys, "step {step}: range_keys {b:?}");
    }
    for p in [&b"k0"[..], b"k", b"z", b""] {
        assert_eq!(
            drain(tx.prefix(p), pattern),
            drain(db.prefix(p), 0),
            "step {step}: prefix {p:?}"
        );
    }
    let keys: Vec<Bytes> = tx.keys().map(|r| r.unwrap()).collect();
    let db_keys: Vec<Bytes> = db.keys().map(|r| r.unwrap()).collect();
    assert_eq!(keys, db_keys, "step {step}: keys");
    for k in 0..16 {
        let k = key(k);
        assert_eq!(tx.get(&k).unwrap(), db.get(&k).unwrap(), "step {step}: get");
        assert_eq!(
            tx.get_with_expiry(&k).unwrap(),
            db.get_with_expiry(&k).unwrap()
        );
        assert_eq!(tx.get_with_ttl(&k).unwrap(), db.get_with_ttl(&k).unwrap());
        assert_eq!(tx.ttl(&k).unwrap(), db.ttl(&k).unwrap(), "step {step}: ttl");
        assert_eq!(tx.contains_key(&k).unwrap(), db.contains_key(&k).unwrap());
    }
}

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Db {
    Options::default()
        .sync(SyncPolicy::Never)
        .clock(clock.clone())
        .open(dir)
        .unwrap()
}

fn run(before: Vec<Op>, ops: Vec<Op>, pattern: u32) {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = Arc::new(ManualClock::new(1_000_000));
    let (mut a, mut b) = (open(d1.path(), &clock), open(d2.path(), &clock));
    // What is stored before the transaction starts: the same on both.
    let advance = |op: &Op| {
        if let Op::Advance(s) = op {
            clock.advance(Duration::from_secs(u64::from(*s)));
        }
    };
    for op in &before {
        advance(op);
        let now = clock.now_ms();
        apply(&mut a, op, now);
        apply(&mut b, op, now);
    }
    let a_ref = a.clone();
    b.clone()
        .transaction(|tx| {
            for (step, op) in ops.iter().enumerate() {
                advance(op);
                let now = clock.now_ms();
                let direct = apply(&mut a, op, now);
                let staged = apply(tx, op, now);
                assert_eq!(staged, direct, "step {step}: {op:?}");
                same_reads(&a_ref, tx, pattern.rotate_left(step as u32), step);
            }
            Ok::<_, caskdb::Error>(())
        })
        .unwrap();
    // Committed, the transaction's writes read as the direct ones.
    assert_eq!(drain(b.iter(), 0), drain(a.iter(), 0), "after commit");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_transaction_reads_and_writes_like_the_database(
        before in proptest::collection::vec(op(), 0..20),
        ops in proptest::collection::vec(op(), 1..30),
        pattern in any::<u32>(),
    ) {
        run(before, ops, pattern);
    }
}

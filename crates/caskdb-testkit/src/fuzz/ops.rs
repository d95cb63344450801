//! The `ops` harness: engine operations spelled by fuzz input, checked against the model after
//! every one.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use caskdb::testing::MAX_RECORD_HEADER_LEN;
use caskdb::{Clock, Db, Error, Iter, ManualClock, Result};

use super::ops_env::{
    BatchOp, Input, MAX_BATCH, MAX_STEPS, START_MS, ScratchDir, append_zeros, error_name,
    in_bounds, key_error, open_scratch, put_error,
};
use crate::model::{Model, expiry, pairs};

/// Runs the operations that `data` spells against a database in a scratch directory and
/// checks it against a `BTreeMap` model after every one.
///
/// The first byte picks the data file size (64 to 1084 bytes: most writes rotate); then each
/// operation is a byte (which one) followed by its arguments. Operations: put, put with TTL,
/// delete, the reads (`get`, `get_with_ttl`, `ttl`, `contains_key`), a `WriteBatch` commit,
/// full iteration forward or backward (values or keys), a range or prefix read from both ends,
/// merge, close and reopen (optionally with a zero-filled tail appended to the newest file, as
/// a crash leaves preallocated space), clock advance, `expire`, `persist`, `sync`, and an
/// iterator held open across other operations. Errors (empty or oversized keys, oversized
/// values or batches) must be exactly those the limits call for, and change nothing.
///
/// Panics, naming the step, when the database disagrees with the model. The scratch directory
/// is under `/dev/shm` when it exists (tmpfs: the many fsyncs of rotation cost nothing), else
/// the system's temporary directory; it is removed afterwards.
pub fn ops(data: &[u8]) {
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    let dir = ScratchDir::new().expect("create a scratch directory for the database");
    let clock = Arc::new(ManualClock::new(START_MS));
    let data_file_size = 64 + u64::from(size) * 4;
    let db = open_scratch(&dir.0, &clock, data_file_size, 0);
    let mut s = Session {
        input: Input(rest),
        dir,
        clock,
        data_file_size,
        db: Some(db),
        model: Model::new(START_MS),
        held: None,
        step: 0,
    };
    while !s.input.0.is_empty() && s.step < MAX_STEPS {
        s.step += 1;
        s.run_one();
        s.model.set_now(s.clock.now_ms());
        s.model.drop_expired();
        s.check_all();
    }
}

/// An iterator held open across operations, and what it must (and must not) return.
struct Held {
    iter: Iter,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    /// Live keys in range when it was made.
    at_start: BTreeSet<Vec<u8>>,
    /// Keys written (or deleted, or re-expired) since.
    touched: BTreeSet<Vec<u8>>,
    returned: BTreeSet<Vec<u8>>,
    /// Last key returned from the front, and from the back.
    front: Option<Vec<u8>>,
    back: Option<Vec<u8>>,
}

/// The state of one `ops` run. Fields drop in order: the iterator and the database before the
/// directory they live in.
struct Session<'a> {
    held: Option<Held>,
    /// `None` only while reopening.
    db: Option<Db>,
    input: Input<'a>,
    clock: Arc<ManualClock>,
    data_file_size: u64,
    model: Model,
    step: usize,
    dir: ScratchDir,
}

impl Session<'_> {
    fn db(&self) -> &Db {
        self.db
            .as_ref()
            .expect("the database is open between operations")
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The live value of `key` in the model, with its expiry.
    fn live(&self, key: &[u8]) -> Option<&(Vec<u8>, u64)> {
        self.model.get(key)
    }

    fn touch(&mut self, key: &[u8]) {
        if let Some(h) = &mut self.held {
            h.touched.insert(key.to_vec());
        }
    }

    /// Checks that `r` is the error `want` names, or succeeded if `want` is `None`; returns
    /// the value on success.
    fn expect<T: std::fmt::Debug>(
        &self,
        what: &str,
        r: Result<T>,
        want: Option<&str>,
    ) -> Option<T> {
        let step = self.step;
        match (r, want) {
            (Ok(v), None) => Some(v),
            (Err(e), Some(name)) if error_name(&e) == name => None,
            (r, want) => panic!("step {step}: {what}: got {r:?}, expected error {want:?}"),
        }
    }

    fn run_one(&mut self) {
        match self.input.byte() % 21 {
            0..=2 => {
                let (k, v) = (self.input.key(), self.input.value());
                self.put(k, v, None);
            }
            3 => {
                let (k, v, ttl) = (self.input.key(), self.input.value(), self.input.ttl());
                self.put(k, v, Some(ttl));
            }
            4 | 5 => {
                let k = self.input.key();
                self.delete(k);
            }
            6 => {
                let k = self.input.key();
                self.get(&k);
            }
            7 => self.batch(),
            8 | 9 => {
                let how = self.input.byte();
                self.iterate_all(how & 1 != 0, how & 2 != 0);
            }
            10 => self.range(),
            11 => {
                let stats = self.db().merge();
                self.expect("merge", stats, None);
            }
            12 => self.reopen(None),
            13 => {
                let n = usize::from(self.input.byte()) * 32;
                self.reopen(Some(n));
            }
            14 => {
                let by = self.input.ttl();
                self.clock.advance(by);
                self.model.set_now(self.clock.now_ms());
            }
            15 => {
                let (k, ttl) = (self.input.key(), self.input.ttl());
                self.set_expiry(k, Some(ttl));
            }
            16 => {
                let k = self.input.key();
                self.set_expiry(k, None);
            }
            17 => {
                let r = self.db().sync();
                self.expect("sync", r, None);
            }
            18 => self.hold(),
            _ => self.step_held(),
        }
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>, ttl: Option<Duration>) {
        let now = self.now();
        let r = match ttl {
            None => self.db().put(&key, &value),
            Some(t) => self.db().put_with_ttl(&key, &value, t),
        };
        self.touch(&key);
        if self.expect("put", r, put_error(&key, &value)).is_some() {
            let t = ttl.map_or(0, |t| expiry(now, t));
            self.model.put_expiring_at(key, value, t);
        }
    }

    fn delete(&mut self, key: Vec<u8>) {
        let existed = self.live(&key).is_some();
        let r = self.db().delete(&key);
        self.touch(&key);
        let want = key.is_empty().then_some("KeyIsEmpty");
        if let Some(got) = self.expect("delete", r, want) {
            assert_eq!(got, existed, "step {}: delete {key:?} result", self.step);
            self.model.delete(&key);
        }
    }

    fn get(&mut self, key: &[u8]) {
        let step = self.step;
        let now = self.now();
        let want = self.live(key).cloned();
        let db = self.db();
        if key.is_empty() {
            self.expect("get", db.get(key), Some("KeyIsEmpty"));
            self.expect("get_with_ttl", db.get_with_ttl(key), Some("KeyIsEmpty"));
            self.expect("ttl", db.ttl(key), Some("KeyIsEmpty"));
            self.expect("contains_key", db.contains_key(key), Some("KeyIsEmpty"));
            return;
        }
        let value = self.expect("get", db.get(key), None).flatten();
        assert_eq!(
            value.as_deref(),
            want.as_ref().map(|(v, _)| &v[..]),
            "step {step}: get {key:?}"
        );
        let left = |t: u64| (t != 0).then(|| Duration::from_millis(t - now));
        let with_ttl = self
            .expect("get_with_ttl", db.get_with_ttl(key), None)
            .flatten();
        assert_eq!(
            with_ttl.map(|(v, d)| (v.to_vec(), d)),
            want.as_ref().map(|(v, t)| (v.clone(), left(*t))),
            "step {step}: get_with_ttl {key:?}"
        );
        let ttl = self.expect("ttl", db.ttl(key), None).flatten();
        assert_eq!(
            ttl,
            want.as_ref().and_then(|(_, t)| left(*t)),
            "step {step}: ttl {key:?}"
        );
        let has = self.expect("contains_key", db.contains_key(key), None);
        assert_eq!(
            has,
            Some(want.is_some()),
            "step {step}: contains_key {key:?}"
        );
    }

    fn batch(&mut self) {
        let n = self.input.byte() % 8;
        let mut planned: Vec<BatchOp> = Vec::new();
        for _ in 0..n {
            let kind = self.input.byte() % 3;
            let key = self.input.key();
            planned.push(match kind {
                0 => (key, Some((self.input.value(), None))),
                1 => (key, Some((self.input.value(), Some(self.input.ttl())))),
                _ => (key, None),
            });
        }
        let mut batch = self.db().batch();
        let mut encoded = 0;
        for (key, op) in &planned {
            encoded += MAX_RECORD_HEADER_LEN + key.len();
            match op {
                Some((value, None)) => batch.put(key, value),
                Some((value, Some(ttl))) => batch.put_with_ttl(key, value, *ttl),
                None => batch.delete(key),
            };
            encoded += op.as_ref().map_or(0, |(v, _)| v.len());
        }
        assert_eq!(batch.len(), planned.len(), "step {}: batch len", self.step);
        let want = if planned.is_empty() {
            None
        } else if encoded > MAX_BATCH {
            Some("BatchTooLarge")
        } else {
            planned.iter().find_map(|(key, op)| match op {
                Some((value, _)) => put_error(key, value),
                None => key_error(key),
            })
        };
        let now = self.now();
        let r = batch.commit();
        for (key, _) in &planned {
            self.touch(key);
        }
        if self.expect("batch commit", r, want).is_some() {
            for (key, op) in planned {
                match op {
                    Some((value, ttl)) => {
                        let t = ttl.map_or(0, |t| expiry(now, t));
                        self.model.put_expiring_at(key, value, t);
                    }
                    None => {
                        self.model.delete(&key);
                    }
                }
            }
        }
    }

    fn live_pairs(&self, lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.model
            .entries()
            .filter(|(k, _)| in_bounds(k, lo, hi))
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    fn iterate_all(&self, rev: bool, keys_only: bool) {
        let step = self.step;
        let mut want = self.live_pairs(&Bound::Unbounded, &Bound::Unbounded);
        if rev {
            want.reverse();
        }
        if keys_only {
            let keys = self.db().keys();
            let items: Vec<Result<caskdb::Bytes>> = if rev {
                keys.rev().collect()
            } else {
                keys.collect()
            };
            let got: Vec<Vec<u8>> = items
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|e| panic!("step {step}: keys failed: {e}"))
                        .to_vec()
                })
                .collect();
            let want: Vec<Vec<u8>> = want.into_iter().map(|(k, _)| k).collect();
            assert_eq!(got, want, "step {step}: keys (rev: {rev})");
        } else {
            let iter = self.db().iter();
            let when = format!("step {step}: iter (rev: {rev})");
            let got = if rev {
                pairs(iter.rev(), &when)
            } else {
                pairs(iter, &when)
            };
            assert_eq!(got, want, "step {step}: iter (rev: {rev})");
        }
    }

    /// A range or prefix read, taking from the front or the back as the input says.
    fn range(&mut self) {
        let step = self.step;
        let how = self.input.byte();
        let (mut iter, want) = if how & 1 == 0 {
            let (lo, hi) = (self.input.bound(), self.input.bound());
            let want = self.live_pairs(&lo, &hi);
            (self.db().range::<Vec<u8>, _>((lo, hi)), want)
        } else {
            let p = self.input.key();
            let mut want = self.live_pairs(&Bound::Unbounded, &Bound::Unbounded);
            want.retain(|(k, _)| k.starts_with(&p));
            (self.db().prefix(&p), want)
        };
        let pattern = self.input.byte();
        let (mut front, mut back) = (Vec::new(), Vec::new());
        for i in 0usize.. {
            let rev = (pattern >> (i % 8)) & 1 != 0;
            let item = if rev { iter.next_back() } else { iter.next() };
            let Some(item) = item else { break };
            let (k, v) = item.unwrap_or_else(|e| panic!("step {step}: range read failed: {e}"));
            let end = if rev { &mut back } else { &mut front };
            end.push((k.to_vec(), v.to_vec()));
        }
        front.extend(back.into_iter().rev());
        assert_eq!(
            front, want,
            "step {step}: range/prefix read (how {how}, pattern {pattern})"
        );
    }

    fn reopen(&mut self, zero_tail: Option<usize>) {
        let step = self.step;
        let drop_late = self.input.byte() & 1 != 0;
        let db = self
            .db
            .take()
            .expect("the database is open between operations");
        db.close()
            .unwrap_or_else(|e| panic!("step {step}: close failed: {e}"));
        if let Some(h) = &mut self.held {
            // A closed handle's iterators say so once, then end.
            let first = h.iter.next();
            assert!(
                matches!(first, Some(Err(Error::Closed))),
                "step {step}: iterator after close gave {first:?}"
            );
            assert!(
                h.iter.next().is_none(),
                "step {step}: iterator went on after Closed"
            );
            assert!(
                h.iter.next_back().is_none(),
                "step {step}: iterator went on after Closed"
            );
        }
        if !drop_late {
            self.held = None;
        }
        if let Some(n) = zero_tail.filter(|&n| n > 0) {
            append_zeros(&self.dir.0, n).expect("append zeros to the newest data file");
        }
        self.db = Some(open_scratch(
            &self.dir.0,
            &self.clock,
            self.data_file_size,
            step,
        ));
        // Dropping the last clone of the closed handle now must not touch the reopened files.
        self.held = None;
    }

    /// `expire` (with a `ttl`) or `persist` (without), checked against the model.
    fn set_expiry(&mut self, key: Vec<u8>, ttl: Option<Duration>) {
        let step = self.step;
        let now = self.now();
        let current = self.live(&key).cloned();
        let (what, want, r) = match ttl {
            Some(t) => ("expire", current.is_some(), self.db().expire(&key, t)),
            None => {
                let had = current.as_ref().is_some_and(|(_, at)| *at != 0);
                ("persist", had, self.db().persist(&key))
            }
        };
        self.touch(&key);
        match r {
            // Documented as KeyIsEmpty; an empty key is also simply never found.
            Err(Error::KeyIsEmpty) | Ok(false) if key.is_empty() => {}
            Ok(got) => {
                assert_eq!(got, want, "step {step}: {what} {key:?} result");
                if let Some((value, _)) = current.filter(|_| got) {
                    let at = ttl.map_or(0, |t| expiry(now, t));
                    self.model.put_expiring_at(key, value, at);
                }
            }
            Err(e) => panic!("step {step}: {what} {key:?}: {e}"),
        }
    }

    /// Opens an iterator over a range, replacing the one held.
    fn hold(&mut self) {
        let (lo, hi) = (self.input.bound(), self.input.bound());
        let at_start = self
            .live_pairs(&lo, &hi)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let iter = self.db().range::<Vec<u8>, _>((lo.clone(), hi.clone()));
        self.held = Some(Held {
            iter,
            lo,
            hi,
            at_start,
            touched: BTreeSet::new(),
            returned: BTreeSet::new(),
            front: None,
            back: None,
        });
    }

    /// Takes a few entries from the held iterator, checking each against the model as it is
    /// now: in range, in order, never twice, with the current value; and once it ends, every
    /// key that was live at its start and was left alone must have been returned.
    fn step_held(&mut self) {
        let step = self.step;
        let count = 1 + self.input.byte() % 8;
        let pattern = self.input.byte();
        let Some(h) = &mut self.held else {
            return;
        };
        for i in 0..count {
            let rev = (pattern >> i) & 1 != 0;
            let item = if rev {
                h.iter.next_back()
            } else {
                h.iter.next()
            };
            let Some(item) = item else {
                for k in &h.at_start {
                    if self.model.has(k) && !h.touched.contains(k) {
                        assert!(
                            h.returned.contains(k),
                            "step {step}: held iterator ended without {:?}",
                            caskdb::Bytes::copy_from_slice(k)
                        );
                    }
                }
                return;
            };
            let (key, v) = item.unwrap_or_else(|e| panic!("step {step}: held iterator: {e}"));
            let k = key.to_vec();
            let end = if rev { "next_back" } else { "next" };
            assert!(
                in_bounds(&k, &h.lo, &h.hi),
                "step {step}: held iterator {end}() gave {key:?}, out of range"
            );
            let shown = |k: &Option<Vec<u8>>| k.as_deref().map(caskdb::Bytes::copy_from_slice);
            assert!(
                h.front.as_ref().is_none_or(|f| k > *f) && h.back.as_ref().is_none_or(|b| k < *b),
                "step {step}: held iterator {end}() gave {key:?} out of order: the last keys \
                 returned were {:?} from the front and {:?} from the back",
                shown(&h.front),
                shown(&h.back),
            );
            assert!(
                h.returned.insert(k.clone()),
                "step {step}: held iterator gave {key:?} twice"
            );
            let want = self.model.get(&k);
            assert_eq!(
                Some(&v[..]),
                want.map(|(v, _)| &v[..]),
                "step {step}: held iterator value of {key:?}"
            );
            if rev {
                h.back = Some(k);
            } else {
                h.front = Some(k);
            }
        }
    }

    /// After every operation: the database holds what the model holds.
    fn check_all(&self) {
        let step = self.step;
        let want = self.live_pairs(&Bound::Unbounded, &Bound::Unbounded);
        let db = self.db();
        assert_eq!(db.len(), want.len(), "step {step}: len");
        let got = pairs(db.iter(), &format!("step {step}"));
        assert_eq!(got, want, "step {step}: contents");
        let stats = self.expect("stats", db.stats(), None).unwrap_or_default();
        assert_eq!(stats.keys, want.len(), "step {step}: stats.keys");
        for f in &stats.files {
            assert!(
                f.dead_bytes <= f.total_bytes,
                "step {step}: file {} has {} dead bytes of {}",
                f.id,
                f.dead_bytes,
                f.total_bytes
            );
        }
    }
}

//! A model of the store for tests to check it against, and helpers to read and compare what a
//! database shows.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use caskdb::{Bytes, Db};

/// The key the power-loss and I/O-error workloads use for index `i`.
pub fn key_name(i: usize) -> Vec<u8> {
    format!("key-{i:03}").into_bytes()
}

/// What the store must hold: key → (value, expiry in ms since the epoch, 0 = never), judged
/// against the clock `now` — the same rules as the engine's, written as plainly as possible.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    map: BTreeMap<Vec<u8>, (Vec<u8>, u64)>,
    now: u64,
}

/// The contents a database shows: key → value.
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// Whether a value expiring at `expire_at` (0 = never) is live at `now`.
pub fn live_at(expire_at: u64, now: u64) -> bool {
    expire_at == 0 || expire_at > now
}

/// The expiry of a value written at `now` with `ttl`, as the engine computes it (never 0).
pub fn expiry(now: u64, ttl: Duration) -> u64 {
    now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
        .max(1)
}

impl Model {
    /// An empty model whose clock reads `now`.
    pub fn new(now: u64) -> Self {
        Model {
            map: BTreeMap::new(),
            now,
        }
    }

    /// The model's clock.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Moves the clock to `now`.
    pub fn set_now(&mut self, now: u64) {
        self.now = now;
    }

    /// A put, expiring `ttl_ms` from now if given.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>, ttl_ms: Option<u64>) {
        let expire_at = ttl_ms.map_or(0, |t| expiry(self.now, Duration::from_millis(t)));
        self.put_expiring_at(key, value, expire_at);
    }

    /// A put expiring at `expire_at` (0 = never).
    pub fn put_expiring_at(&mut self, key: Vec<u8>, value: Vec<u8>, expire_at: u64) {
        self.map.insert(key, (value, expire_at));
    }

    /// A delete; returns whether the key was live.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        let was = self.has(key);
        self.map.remove(key);
        was
    }

    /// The live value of `key` now, with its expiry.
    pub fn get(&self, key: &[u8]) -> Option<&(Vec<u8>, u64)> {
        self.map.get(key).filter(|(_, at)| live_at(*at, self.now))
    }

    /// Whether `key` reads as present now.
    pub fn has(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Forgets what has expired by now (the store never brings it back).
    pub fn drop_expired(&mut self) {
        let now = self.now;
        self.map.retain(|_, (_, at)| live_at(*at, now));
    }

    /// Every live entry now, in key order, with its expiry.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = (&Vec<u8>, &(Vec<u8>, u64))> {
        let now = self.now;
        self.map
            .iter()
            .filter(move |(_, (_, at))| live_at(*at, now))
    }

    /// What reads return at `now`.
    pub fn visible(&self, now: u64) -> State {
        self.map
            .iter()
            .filter(|(_, (_, at))| live_at(*at, now))
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }
}

/// Every pair `items` yields, as owned bytes in the order yielded; panics, naming `when`, at
/// the first error.
pub fn pairs(
    items: impl Iterator<Item = caskdb::Result<(Bytes, Bytes)>>,
    when: &str,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    items
        .map(|r| {
            let (k, v) = r.unwrap_or_else(|e| panic!("{when}: iteration failed: {e}"));
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// Everything a database shows: iteration, `get` of each key of the key space, and `len` must
/// agree.
pub fn read_state(db: &Db, keyspace: usize) -> Result<State, String> {
    let mut state = State::new();
    for item in db.iter() {
        let (k, v) = item.map_err(|e| format!("iteration failed: {e}"))?;
        state.insert(k.to_vec(), v.to_vec());
    }
    for i in 0..keyspace {
        let k = key_name(i);
        let got = db
            .get(&k)
            .map_err(|e| format!("get {} failed: {e}", show(&k)))?;
        if got.as_deref() != state.get(&k).map(Vec::as_slice) {
            return Err(format!(
                "get and iteration disagree on {}: {:?} vs {:?}",
                show(&k),
                got.as_deref().map(show),
                state.get(&k).map(Vec::as_slice).map(show)
            ));
        }
    }
    if db.len() != state.len() {
        return Err(format!(
            "len() is {} but iteration returned {} keys",
            db.len(),
            state.len()
        ));
    }
    Ok(state)
}

/// A short printable form of a key or value.
pub fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(24)]).into_owned();
    if b.len() > 24 {
        format!("{s}…({} bytes)", b.len())
    } else {
        s
    }
}

/// The keys on which two states differ, described.
pub fn diff(got: &State, want: &State) -> String {
    let keys: BTreeSet<&Vec<u8>> = got.keys().chain(want.keys()).collect();
    let lines: Vec<String> = keys
        .into_iter()
        .filter(|k| got.get(*k) != want.get(*k))
        .take(8)
        .map(|k| {
            format!(
                "{}: database {:?}, model {:?}",
                show(k),
                got.get(k).map(Vec::as_slice).map(show),
                want.get(k).map(Vec::as_slice).map(show)
            )
        })
        .collect();
    lines.join("; ")
}

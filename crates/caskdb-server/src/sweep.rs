//! Reclaiming the members of collections that are gone.
//!
//! DEL, EXPIRE and overwriting a collection change only its metadata record (O(1)); its member
//! records stay in the engine, unreachable, because no new collection ever gets their id (ids
//! are fresh, see [`Collections::next_id`]). The sweeper walks the member keys id by id and,
//! for an id whose owner no longer holds a collection with that id, deletes its records, a
//! bounded number per engine transaction so writers wait little. The engine's merge then drops
//! the deleted records from disk.
//!
//! It runs in its own thread: when enough members were orphaned, a minute after any were, every
//! ten minutes anyway (collections that expired or were overwritten by SET are not counted), and
//! on BGREWRITEAOF (followed by a merge).

use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use caskdb::{Db, Transaction};
use parking_lot::{Condvar, Mutex};

use crate::keyspace::{self, Entry, MEMBER_TAG_BASE, MEMBER_TAGS, Meta, kind};
use crate::string_chunks::Chunked;

/// Orphaned members that start a sweep without waiting.
const ORPHANS_NOW: u64 = 100_000;
/// How long orphans below that wait.
const ORPHANS_WAIT: Duration = Duration::from_secs(60);
/// A sweep at least this often while collections exist (expired ones are not counted).
const PERIODIC: Duration = Duration::from_secs(600);
/// Records deleted per engine transaction.
const STEP: usize = 1024;

/// Collection ids, orphan accounting, and the sweeper's state.
pub(crate) struct Collections {
    next: AtomicU64,
    orphans: AtomicU64,
    /// Members reclaimed since the server started.
    pub reclaimed: AtomicU64,
    /// Sweeps (with merges, on request) completed since the server started.
    pub rewrites: AtomicU64,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    stop: bool,
    /// A sweep and merge was asked for and has not started yet.
    requested: bool,
    /// A sweep is running; `running_rewrite` if it was asked for (a merge follows).
    running: bool,
    running_rewrite: bool,
}

/// The highest collection id the store holds members of (0 if none).
fn highest_id(db: &Db) -> caskdb::Result<u64> {
    let mut max = 0;
    for t in 0..MEMBER_TAGS {
        let tag = MEMBER_TAG_BASE + t;
        if let Some(k) = db.range_keys([tag]..[tag + 1]).next_back()
            && let Some((id, _)) = keyspace::parse_member_key(&k?)
        {
            max = max.max(id);
        }
    }
    Ok(max)
}

impl Collections {
    /// Reads the highest id in use: new ids start above it, so no id with a record left is
    /// reused (after a restart too).
    pub fn open(db: &Db) -> caskdb::Result<Collections> {
        Ok(Collections {
            next: AtomicU64::new(highest_id(db)? + 1),
            orphans: AtomicU64::new(0),
            reclaimed: AtomicU64::new(0),
            rewrites: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        })
    }

    /// Raises the next id above every id the store holds members of (a new leader of a group
    /// calls it: the ids its predecessor gave out are in its data by then).
    ///
    /// # Errors
    /// The engine's, reading the member keys.
    pub fn refresh(&self, db: &Db) -> caskdb::Result<()> {
        self.next.fetch_max(highest_id(db)? + 1, Ordering::Relaxed);
        Ok(())
    }

    /// A collection id never used before.
    pub fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Notes that `n` members lost their collection.
    pub fn orphaned(&self, n: u64) {
        let before = self.orphans.fetch_add(n, Ordering::Relaxed);
        if before < ORPHANS_NOW && before + n >= ORPHANS_NOW {
            self.wake.notify_one();
        }
    }

    /// Asks for a sweep followed by a merge (BGREWRITEAOF). Returns true if it starts now,
    /// false if it waits for the sweep running now (it then runs after it, so it sees every
    /// deletion made before the request) or joins a request already waiting.
    pub fn request_rewrite(&self) -> bool {
        let mut s = self.state.lock();
        if s.requested {
            return false;
        }
        s.requested = true;
        self.wake.notify_one();
        !s.running
    }

    /// Whether a requested sweep and merge is waiting or running (automatic sweeps are not
    /// counted).
    pub fn rewrite_in_progress(&self) -> bool {
        let s = self.state.lock();
        s.requested || s.running_rewrite
    }

    /// Stops the sweeper thread (at its next step).
    pub fn stop(&self) {
        self.state.lock().stop = true;
        self.wake.notify_all();
    }

    fn stopping(&self) -> bool {
        self.state.lock().stop
    }
}

/// The sweeper thread's body: sweeps `db` when due (see the module's doc) until `c` is told to
/// stop.
pub(crate) fn run(db: &Db, c: &Collections) {
    let mut last = Instant::now();
    loop {
        let requested = {
            let mut s = c.state.lock();
            if !s.stop && !s.requested {
                c.wake.wait_for(&mut s, Duration::from_secs(1));
            }
            if s.stop {
                return;
            }
            let orphans = c.orphans.load(Ordering::Relaxed);
            let due = s.requested
                || orphans >= ORPHANS_NOW
                || (orphans > 0 && last.elapsed() >= ORPHANS_WAIT)
                || last.elapsed() >= PERIODIC;
            if !due {
                continue;
            }
            s.running = true;
            s.running_rewrite = std::mem::take(&mut s.requested);
            s.running_rewrite
        };
        last = Instant::now();
        c.orphans.store(0, Ordering::Relaxed);
        match sweep(db, || c.stopping()) {
            Ok(n) => {
                c.reclaimed.fetch_add(n, Ordering::Relaxed);
                if n > 0 {
                    tracing::info!(
                        members = n,
                        "sweep: reclaimed the members of deleted collections"
                    );
                }
            }
            Err(e) => tracing::warn!("sweep failed: {e}"),
        }
        if requested
            && !c.stopping()
            && let Err(e) = db.merge()
        {
            tracing::warn!("merge failed: {e}");
        }
        let mut s = c.state.lock();
        s.running = false;
        s.running_rewrite = false;
        if requested {
            c.rewrites.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Deletes the records of every collection id whose owner no longer holds it. Returns the
/// number of records deleted. Stops early (without error) when `stop` says so.
pub(crate) fn sweep(db: &Db, stop: impl Fn() -> bool) -> caskdb::Result<u64> {
    let mut deleted = 0;
    for t in 0..MEMBER_TAGS {
        let tag = MEMBER_TAG_BASE + t;
        let end = [tag + 1];
        let mut from = vec![tag];
        loop {
            if stop() {
                return Ok(deleted);
            }
            let Some(first) = db
                .range_keys::<&[u8], _>((Bound::Included(&from[..]), Bound::Excluded(&end[..])))
                .next()
                .transpose()?
            else {
                break;
            };
            let Some((id, _)) = keyspace::parse_member_key(&first) else {
                // Not ours (cannot happen with our writers): step over it.
                from = first.to_vec();
                from.push(0);
                continue;
            };
            let lo = keyspace::member_prefix(id, kind::OWNER)[..9].to_vec();
            let hi = id_end(tag, id);
            let (n, more) = db.transaction(|tx| {
                let owner = owner_key(tx, id)?;
                if let Some(k) = &owner
                    && holds(tx, k, id)?
                {
                    return Ok::<_, caskdb::Error>((0, false));
                }
                // An expired key record that still names this id goes too: were the clock to
                // step back, it must not come back pointing at records about to be deleted
                // (or, after a restart, at a reused id).
                if let Some(k) = &owner
                    && !tx.contains_key(k)?
                {
                    tx.delete(k)?;
                }
                let keys = tx
                    .range_keys::<&[u8], _>((Bound::Included(&lo[..]), Bound::Excluded(&hi[..])))
                    .take(STEP)
                    .collect::<caskdb::Result<Vec<_>>>()?;
                for k in &keys {
                    tx.delete(k)?;
                }
                Ok((keys.len() as u64, keys.len() == STEP))
            })?;
            deleted += n;
            if !more {
                if hi.first() != Some(&tag) {
                    break;
                }
                from = hi;
            }
        }
    }
    Ok(deleted)
}

/// The first key after every record of `id` under `tag` (exclusive end).
fn id_end(tag: u8, id: u64) -> Vec<u8> {
    match id.checked_add(1) {
        Some(next) => {
            let mut k = vec![tag];
            k.extend_from_slice(&next.to_be_bytes());
            k
        }
        None => vec![tag + 1],
    }
}

/// The engine key that `id`'s owner record names, if it has a usable one.
fn owner_key(tx: &Transaction<'_>, id: u64) -> caskdb::Result<Option<keyspace::EngineKey>> {
    let who = tx.get(keyspace::member_key(id, kind::OWNER, b""))?;
    Ok(match who.as_deref().and_then(|w| w.split_first()) {
        Some((&db, key)) if !key.is_empty() => Some(keyspace::engine_key(db, key)),
        _ => None,
    })
}

/// Whether engine key `k` holds a live collection (or chunked string) with id `id`.
fn holds(tx: &Transaction<'_>, k: &[u8], id: u64) -> caskdb::Result<bool> {
    let Some((raw, at)) = tx.get_with_expiry(k)? else {
        return Ok(false);
    };
    Ok(Entry::decode(raw, at).is_some_and(|e| {
        Meta::decode(&e)
            .map(|m| m.id)
            .or_else(|| Chunked::of(&e).map(|c| c.id))
            == Some(id)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::{Type, engine_key, member_key, owner_value};

    /// Writes a collection of `n` members under `key` in db 0 (metadata, owner, members).
    fn collection(db: &Db, key: &[u8], id: u64, n: u64, expire_at: Option<u64>) {
        db.transaction(|tx| {
            let meta = Meta {
                ty: Type::Set,
                id,
                len: n,
                head: 0,
                expire_at,
                fresh: false,
                converted: false,
            };
            match expire_at {
                Some(at) => tx.put_expiring_at(engine_key(0, key), meta.encode(), at)?,
                None => tx.put(engine_key(0, key), meta.encode())?,
            }
            tx.put(member_key(id, kind::OWNER, b""), owner_value(0, key))?;
            for i in 0..n {
                tx.put(member_key(id, kind::MEMBER, &i.to_be_bytes()), "")?;
            }
            Ok::<_, caskdb::Error>(())
        })
        .unwrap();
    }

    fn ids_left(db: &Db) -> Vec<u64> {
        let mut ids: Vec<u64> = db
            .range_keys([MEMBER_TAG_BASE]..[MEMBER_TAG_BASE + MEMBER_TAGS])
            .map(|k| keyspace::parse_member_key(&k.unwrap()).unwrap().0)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    #[test]
    fn sweep_deletes_only_the_records_of_dead_ids() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let now = db.now_ms();
        collection(&db, b"live", 1, 10, None);
        collection(&db, b"deleted", 2, 3000, None); // more than one step
        collection(&db, b"expired", 3, 5, Some(now + 1));
        collection(&db, b"replaced", 4, 7, None);
        collection(&db, b"renamed-from", 65, 4, None); // same tag as id 1
        collection(&db, b"later", 66, 2, Some(now + 3_600_000));
        db.delete(engine_key(0, b"deleted")).unwrap();
        // The key now holds another collection (id 5): id 4's records are orphans.
        collection(&db, b"replaced", 5, 1, None);
        // RENAME: the key record moved and the owner names the new key: id 65 stays alive.
        db.transaction(|tx| {
            let raw = tx.get(engine_key(0, b"renamed-from"))?.unwrap();
            tx.delete(engine_key(0, b"renamed-from"))?;
            tx.put(engine_key(0, b"renamed-to"), raw)?;
            tx.put(
                member_key(65, kind::OWNER, b""),
                owner_value(0, b"renamed-to"),
            )?;
            Ok::<_, caskdb::Error>(())
        })
        .unwrap();
        // Wait until id 3's metadata has expired by the database clock (a condition).
        while db.get(engine_key(0, b"expired")).unwrap().is_some() {
            std::thread::yield_now();
        }
        assert_eq!(ids_left(&db), vec![1, 2, 3, 4, 5, 65, 66]);
        let deleted = sweep(&db, || false).unwrap();
        assert_eq!(deleted, 3001 + 6 + 8);
        assert_eq!(ids_left(&db), vec![1, 5, 65, 66]);
        // The live ones are whole.
        let count = |id: u64| db.prefix(keyspace::member_prefix(id, kind::MEMBER)).count();
        assert_eq!((count(1), count(5), count(65), count(66)), (10, 1, 4, 2));
        // A second sweep finds nothing; ids restart above the highest one left.
        assert_eq!(sweep(&db, || false).unwrap(), 0);
        assert_eq!(Collections::open(&db).unwrap().next_id(), 67);
    }

    #[test]
    fn sweep_stops_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        collection(&db, b"gone", 7, 10, None);
        db.delete(engine_key(0, b"gone")).unwrap();
        assert_eq!(sweep(&db, || true).unwrap(), 0);
        assert_eq!(ids_left(&db), vec![7]);
    }
}

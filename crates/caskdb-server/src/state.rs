//! What every connection shares: the store, the settings, the client and WATCH registries,
//! SCAN cursors, statistics, the fsync thread, the collection ids; and the server's cheap
//! random numbers.
//!
//! It names only modules that import nothing else from the server (or only `keyspace.rs`), so
//! every layer above (connections, commands, the listener) can use it without a cycle.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use caskdb::{Db, SyncToken};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::acl::Acl;
use crate::blocking::Blocking;
use crate::clients::{Clients, Pause};
use crate::config::Runtime;
use crate::disk::DiskState;
use crate::keyspace::DbMap;
use crate::metrics::{Histogram, Rates};
use crate::pubsub::PubSub;
use crate::shutdown::Shutdown;
use crate::sweep::Collections;
use crate::watch::Watches;

/// The Redis version the server reports (HELLO, INFO): the one whose commands and replies it
/// follows. Client libraries pick features by it.
pub const REDIS_VERSION: &str = "7.0.0";

/// A statistics counter.
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// INFO stats.
#[derive(Default)]
pub(crate) struct Stats {
    pub connections: Counter,
    pub commands: Counter,
    pub rejected: Counter,
    pub hits: Counter,
    pub misses: Counter,
    /// Clients closed for going over their output buffer limit.
    pub output_limit_closes: Counter,
    /// Bytes read from and written to clients.
    pub net_input: Counter,
    pub net_output: Counter,
    /// Reads and writes on client sockets.
    pub reads: Counter,
    pub writes: Counter,
    /// Keys the expiry task deleted.
    pub expired_keys: Counter,
    /// Write commands since the last SAVE/BGSAVE (`rdb_changes_since_last_save`; not reset by
    /// CONFIG RESETSTAT).
    pub dirty: Counter,
    /// SAVE and BGSAVE calls (`rdb_saves`).
    pub saves: Counter,
    /// The most memory INFO has seen in use (`used_memory_peak`).
    pub peak_memory: AtomicU64,
    /// Memory in use once the server was ready (`used_memory_startup`).
    pub startup_memory: AtomicU64,
    /// Memory in use at the last sample (every 100 ms): what `maxmemory` is compared with.
    pub used_memory: AtomicU64,
    /// Commands and network bytes per second, sampled every 100 ms.
    pub rates: Rates,
}

impl Stats {
    /// CONFIG RESETSTAT: every counter but `dirty` (as Redis).
    pub fn reset(&self) {
        for c in [
            &self.connections,
            &self.commands,
            &self.rejected,
            &self.hits,
            &self.misses,
            &self.output_limit_closes,
            &self.net_input,
            &self.net_output,
            &self.reads,
            &self.writes,
            &self.expired_keys,
            &self.saves,
        ] {
            c.reset();
        }
        self.peak_memory.store(0, Ordering::Relaxed);
    }

    /// Takes one sample of the rates and of the memory in use (every 100 ms).
    pub fn sample(&self) {
        self.used_memory
            .store(crate::metrics::used_bytes(), Ordering::Relaxed);
        self.rates.sample([
            self.commands.get(),
            self.net_input.get(),
            self.net_output.get(),
        ]);
    }
}

/// One command's name (once called), its calls, usec, rejected and failed calls, and its
/// latency histogram (from its first call).
type CommandSlot = (
    std::sync::OnceLock<&'static str>,
    [AtomicU64; 4],
    std::sync::OnceLock<Histogram>,
);

/// INFO commandstats and errorstats: per command (by its place in the command table) calls,
/// microseconds, rejected and failed calls; per error code, replies.
#[derive(Default)]
pub(crate) struct CommandStats {
    slots: std::sync::OnceLock<Box<[CommandSlot]>>,
    errors: Mutex<std::collections::BTreeMap<String, u64>>,
    /// Error replies of any kind.
    pub total_errors: Counter,
}

impl CommandStats {
    /// Records one call of command number `i` of `n`: its time, and whether it was refused
    /// before running (`rejected`) or ran and failed.
    pub fn record(
        &self,
        n: usize,
        i: usize,
        name: &'static str,
        nanos: u64,
        rejected: bool,
        failed: bool,
    ) {
        let slots = self
            .slots
            .get_or_init(|| (0..n).map(|_| Default::default()).collect());
        if let Some((slot_name, s, histogram)) = slots.get(i) {
            slot_name.get_or_init(|| name);
            s[0].fetch_add(1, Ordering::Relaxed);
            s[1].fetch_add(nanos / 1000, Ordering::Relaxed);
            // Redis tracks the latency of the calls that ran (`latency-tracking`).
            if !rejected {
                histogram.get_or_init(Histogram::default).record(nanos);
            }
            // Shared by every client: touch the error counters only when they change.
            if rejected {
                s[2].fetch_add(1, Ordering::Relaxed);
            }
            if failed {
                s[3].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts an error reply under its code (its first word: ERR, WRONGTYPE…).
    pub fn error(&self, text: &str) {
        self.total_errors.add(1);
        let code = text.split(' ').next().unwrap_or("ERR");
        *self.errors.lock().entry(code.to_string()).or_default() += 1;
    }

    /// Every command called since the start (or CONFIG RESETSTAT), in table order, with its
    /// (calls, usec, rejected, failed).
    pub fn all(&self) -> Vec<(&'static str, [u64; 4])> {
        let Some(slots) = self.slots.get() else {
            return Vec::new();
        };
        slots
            .iter()
            .filter_map(|(name, s, _)| {
                let v = s.each_ref().map(|a| a.load(Ordering::Relaxed));
                Some((*name.get()?, v)).filter(|_| v[0] > 0)
            })
            .collect()
    }

    /// Every command with a latency recorded, in table order, with its histogram.
    pub fn latencies(&self) -> Vec<(&'static str, &Histogram)> {
        let Some(slots) = self.slots.get() else {
            return Vec::new();
        };
        slots
            .iter()
            .filter_map(|(name, _, h)| {
                let h = h.get()?;
                Some((*name.get()?, h)).filter(|(_, h)| h.percentile_usec(100.0).is_some())
            })
            .collect()
    }

    /// Error replies per code, in code order.
    pub fn errors(&self) -> Vec<(String, u64)> {
        self.errors
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    pub fn reset(&self) {
        if let Some(slots) = self.slots.get() {
            for (_, s, h) in slots.iter() {
                for a in s {
                    a.store(0, Ordering::Relaxed);
                }
                if let Some(h) = h.get() {
                    h.reset();
                }
            }
        }
        self.errors.lock().clear();
        self.total_errors.reset();
    }
}

/// One SLOWLOG entry.
pub(crate) struct SlowEntry {
    pub id: u64,
    /// Unix seconds when it was logged.
    pub time: u64,
    pub usec: u64,
    /// At most 32 arguments, each at most 128 bytes, as Redis keeps them.
    pub args: Vec<Bytes>,
    pub addr: String,
    pub name: Bytes,
}

/// SLOWLOG: the newest entries first, at most `slowlog-max-len`.
#[derive(Default)]
pub(crate) struct SlowLog {
    inner: Mutex<(u64, VecDeque<SlowEntry>)>,
}

impl SlowLog {
    /// Logs a command that took `usec`, keeping at most `max` entries.
    pub fn push(&self, args: &[Bytes], usec: u64, addr: String, name: Bytes, max: usize) {
        const MAX_ARGS: usize = 32;
        const MAX_STRING: usize = 128;
        let mut kept: Vec<Bytes> = Vec::with_capacity(args.len().min(MAX_ARGS));
        for (i, a) in args.iter().enumerate() {
            if i == MAX_ARGS - 1 && args.len() > MAX_ARGS {
                kept.push(Bytes::from(format!(
                    "... ({} more arguments)",
                    args.len() - MAX_ARGS + 1
                )));
                break;
            }
            if a.len() > MAX_STRING {
                let mut s = a[..MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes(),
                );
                kept.push(Bytes::from(s));
            } else {
                kept.push(a.clone());
            }
        }
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut g = self.inner.lock();
        let id = g.0;
        g.0 += 1;
        g.1.push_front(SlowEntry {
            id,
            time,
            usec,
            args: kept,
            addr,
            name,
        });
        g.1.truncate(max);
    }

    /// Runs `f` over the newest `n` entries.
    pub fn newest<T>(&self, n: usize, f: impl Fn(&SlowEntry) -> T) -> Vec<T> {
        self.inner.lock().1.iter().take(n).map(f).collect()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().1.len()
    }

    pub fn reset(&self) {
        self.inner.lock().1.clear();
    }
}

/// SCAN cursors. The key space is ordered, so a cursor stands for "after this key"; the key is
/// kept here under a number, since clients expect cursors to be numbers. Old cursors are
/// forgotten once the table holds [`Cursors::MAX_BYTES`] of keys (their use then gets
/// `ERR invalid cursor`).
#[derive(Default)]
pub(crate) struct Cursors {
    inner: Mutex<CursorTable>,
}

#[derive(Default)]
struct CursorTable {
    next: u64,
    bytes: usize,
    map: HashMap<u64, (u8, Bytes)>,
    order: VecDeque<u64>,
}

impl Cursors {
    const MAX_BYTES: usize = 64 * 1024 * 1024;

    /// A new cursor standing for "after `key` in `db`".
    pub fn put(&self, db: u8, key: Bytes) -> u64 {
        let mut t = self.inner.lock();
        t.next += 1;
        // Never 0, which means "start" and "done".
        let id = t.next;
        t.bytes += key.len() + 32;
        t.map.insert(id, (db, key));
        t.order.push_back(id);
        while t.bytes > Self::MAX_BYTES {
            let Some(old) = t.order.pop_front() else {
                break;
            };
            if let Some((_, k)) = t.map.remove(&old) {
                t.bytes -= k.len() + 32;
            }
        }
        id
    }

    /// The key a cursor stands for, if it is known and belongs to `db`.
    pub fn get(&self, db: u8, id: u64) -> Option<Bytes> {
        let t = self.inner.lock();
        t.map
            .get(&id)
            .filter(|(d, _)| *d == db)
            .map(|(_, k)| k.clone())
    }
}

/// Waits for the disk on behalf of connections under `appendfsync always`: one thread takes
/// every pending request and answers them all with one fsync (group commit across clients).
pub(crate) struct SyncPump {
    tx: std::sync::mpsc::Sender<(SyncToken, oneshot::Sender<Result<(), String>>)>,
}

impl SyncPump {
    /// Starts the fsync thread for `db`.
    pub fn start(db: Db) -> std::io::Result<SyncPump> {
        let (tx, rx) =
            std::sync::mpsc::channel::<(SyncToken, oneshot::Sender<Result<(), String>>)>();
        std::thread::Builder::new()
            .name("caskdb-fsync".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut waiting = vec![first];
                    while let Ok(more) = rx.try_recv() {
                        waiting.push(more);
                    }
                    let upto = waiting.iter().map(|(t, _)| *t).max().unwrap_or_default();
                    let result = db.sync_through(upto).map_err(|e| e.to_string());
                    for (_, reply) in waiting {
                        let _ = reply.send(result.clone());
                    }
                }
            })?;
        Ok(SyncPump { tx })
    }

    /// Returns once every write up to `token` is on disk.
    pub async fn wait(&self, token: SyncToken) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((token, tx))
            .map_err(|_| "the fsync thread has stopped".to_string())?;
        rx.await
            .map_err(|_| "the fsync thread has stopped".to_string())?
    }
}

/// State shared by every connection.
pub(crate) struct Shared {
    pub db: Db,
    /// Where each database is stored (SWAPDB).
    pub dbs: DbMap,
    pub config: Runtime,
    pub clients: Clients,
    /// CLIENT PAUSE.
    pub pause: Pause,
    /// The expiry task runs (DEBUG SET-ACTIVE-EXPIRE 0 stops it).
    pub active_expire: std::sync::atomic::AtomicBool,
    pub watches: Watches,
    pub cursors: Cursors,
    pub stats: Stats,
    pub started: Instant,
    /// Unix time in seconds of the last SAVE or BGSAVE (LASTSAVE), or of the start.
    pub last_save: Arc<AtomicU64>,
    pub run_id: String,
    pub shutdown: Shutdown,
    pub pump: SyncPump,
    /// Writes refused after one failed on the disk (MISCONF).
    pub disk: DiskState,
    /// ACL users and the log of denials.
    pub acl: Acl,
    /// `aclfile`: where ACL LOAD and ACL SAVE read and write users.
    pub acl_file: Option<std::path::PathBuf>,
    pub collections: Collections,
    pub pubsub: PubSub,
    pub blocking: Blocking,
    pub command_stats: CommandStats,
    pub slowlog: SlowLog,
    /// Scripting: the script cache, the Lua VM, the running script.
    pub scripts: crate::script::Scripts,
    /// Client-side caching (CLIENT TRACKING).
    pub tracking: crate::tracking::Tracking,
    /// TLS clients still in their handshake: they count toward `maxclients`.
    pub handshakes: AtomicU64,
    /// The acceptor of the TLS port, if there is one: replaced by CONFIG SET of a `tls-*`
    /// parameter (new connections use the new one).
    pub tls: Option<parking_lot::RwLock<tokio_rustls::TlsAcceptor>>,
    /// This node's replicated group, if it is in one (`--node-id`, `--cluster`).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl Shared {
    /// Loads the FUNCTION libraries the store keeps. One that no longer loads is logged and
    /// left in the store (a FUNCTION LOAD REPLACE or DELETE of its name deals with it).
    pub fn load_libraries(&self) {
        let (start, end) = crate::keyspace::functions_range();
        for item in self.db.range(start.to_vec()..end.to_vec()) {
            match item {
                Ok((key, code)) => {
                    if let Err(e) = self.scripts.load_library(&code, true) {
                        tracing::error!(
                            library = %String::from_utf8_lossy(&key[2..]),
                            "a stored function library does not load: {e}"
                        );
                    }
                }
                Err(e) => tracing::error!("reading the stored function libraries: {e}"),
            }
        }
    }

    /// Makes what this node also holds in memory — the FUNCTION libraries, the database map —
    /// what the store keeps, for those named: a group's node after applying a change to them,
    /// or installing a snapshot, or beginning a term; any node after a change it staged
    /// failed.
    pub fn reload(&self, libraries: bool, db_map: bool) {
        if libraries {
            self.reload_libraries();
        }
        if db_map {
            self.reload_db_map();
        }
    }

    fn reload_libraries(&self) {
        self.scripts.flush_functions();
        self.load_libraries();
    }

    /// (Under the engine's writer lock: a SWAPDB staged meanwhile, which holds it, never
    /// interleaves with this.)
    fn reload_db_map(&self) {
        let read = self.db.transaction(|tx| -> caskdb::Result<()> {
            let stored = tx.get(crate::keyspace::DB_MAP_KEY)?;
            let map = stored
                .and_then(|v| crate::keyspace::DbMap::decode(&v))
                .unwrap_or_default();
            self.dbs.assign(&map);
            Ok(())
        });
        if let Err(e) = read {
            tracing::error!("reading the database map: {e}");
        }
    }

    /// A node that leads a new term is about to write its first write: what it derives from
    /// the data follows what the previous leaders committed (collection ids, the FUNCTION
    /// libraries, the database map).
    pub fn leading_a_new_term(&self) -> Result<(), String> {
        self.collections
            .refresh(&self.db)
            .map_err(|e| format!("reading the collection ids: {e}"))?;
        self.reload(true, true);
        Ok(())
    }

    /// Whether memory in use is over `maxmemory` (0: no limit): then commands that may grow
    /// the data (Redis's `denyoom` ones) are refused, as under Redis's `noeviction` policy.
    pub fn over_maxmemory(&self) -> bool {
        let max = self.config.maxmemory();
        if max == 0 {
            return false;
        }
        let mut used = self.stats.used_memory.load(Ordering::Relaxed);
        if used == 0 {
            // Not sampled yet.
            used = crate::metrics::used_bytes();
            self.stats.used_memory.store(used, Ordering::Relaxed);
        }
        used > max
    }

    /// `keys` changed (by client `by`), their transaction committed: the tracking clients
    /// that read them are told.
    pub fn keys_changed(&self, keys: &[Bytes], by: Option<u64>) {
        self.tracking
            .changed(keys, by, &|id| self.clients.tracking_target(id));
    }

    /// Every key changed (FLUSHDB, FLUSHALL): every tracking client is told.
    pub fn all_keys_changed(&self) {
        self.tracking
            .flushed(&|id| self.clients.tracking_target(id));
    }

    /// Client `id` (tracking, default mode) reads `keys`.
    pub fn keys_read(&self, id: u64, keys: Vec<Bytes>) {
        let max = self
            .config
            .knob("tracking-table-max-keys")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
        self.tracking
            .remember(id, keys, max, &|id| self.clients.tracking_target(id));
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A cheap random number (for RANDOMKEY and run ids): not for secrets.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A random index below `n` (not for secrets).
fn random_below(n: usize) -> usize {
    (random_u64() % n.max(1) as u64) as usize
}

/// The picks of HRANDFIELD / SRANDMEMBER / ZRANDMEMBER with a count, from `items`: `count`
/// distinct items (all of them if fewer), or, for a negative count, `-count` items that may
/// repeat.
pub(crate) fn random_picks<T: Clone>(items: &[T], count: i64) -> Vec<T> {
    if items.is_empty() || count == 0 {
        return Vec::new();
    }
    if count < 0 {
        let n = count.unsigned_abs() as usize;
        return (0..n)
            .map(|_| items[random_below(items.len())].clone())
            .collect();
    }
    let n = (count as u64).min(items.len() as u64) as usize;
    // A partial Fisher-Yates shuffle of the indexes.
    let mut idx: Vec<usize> = (0..items.len()).collect();
    for i in 0..n {
        let j = i + random_below(items.len() - i);
        idx.swap(i, j);
    }
    idx[..n].iter().map(|&i| items[i].clone()).collect()
}

//! The listener: opens the store, accepts connections up to `maxclients`, and shuts down
//! cleanly on SIGINT, SIGTERM or SHUTDOWN.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use caskdb::{Db, Options, SyncPolicy, SyncToken};
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::clients::Clients;
use crate::cmd::transactions::Watches;
use crate::config::{Config, Runtime};
use crate::connection::Connection;
use crate::keyspace;
use crate::shutdown::Shutdown;

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
    fn reset(&self) {
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
}

impl Stats {
    pub fn reset(&self) {
        for c in [
            &self.connections,
            &self.commands,
            &self.rejected,
            &self.hits,
            &self.misses,
        ] {
            c.reset();
        }
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
    fn start(db: Db) -> std::io::Result<SyncPump> {
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
    pub config: Runtime,
    pub clients: Clients,
    pub watches: Watches,
    pub cursors: Cursors,
    pub stats: Stats,
    pub started: Instant,
    pub run_id: String,
    pub shutdown: Shutdown,
    pub pump: SyncPump,
    pub collections: crate::sweep::Collections,
}

/// A cheap random number (for RANDOMKEY and run ids): not for secrets.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

fn is_loopback(addr: &IpAddr) -> bool {
    addr.is_loopback()
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A setting is unusable (protected mode, bad address…).
    #[error("{0}")]
    Config(String),
    /// The data directory could not be opened.
    #[error("opening {dir}: {source}")]
    Open {
        /// The data directory.
        dir: std::path::PathBuf,
        /// The engine's error.
        source: caskdb::Error,
    },
    /// Listening failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Closing the store at shutdown failed (its last writes may not be on disk).
    #[error("closing the store: {0}")]
    Close(caskdb::Error),
    /// Another I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A bound, not yet running server: lets a caller learn the port before serving (tests bind
/// port 0).
pub struct Server {
    shared: Arc<Shared>,
    listeners: Vec<TcpListener>,
    sweeper: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Opens the store and binds the listeners.
    ///
    /// # Errors
    /// [`ServeError::Config`] for a non-loopback bind without a password in protected mode;
    /// [`ServeError::Open`] if the data directory is locked or damaged; [`ServeError::Listen`].
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        if config.protected_mode
            && config.requirepass.is_none()
            && config.bind.iter().any(|a| !is_loopback(a))
        {
            return Err(ServeError::Config(format!(
                "refusing to listen on {} without a password: set requirepass, or turn protected mode off (protected-mode no / --protected-mode no) if every client on that network may read and change all data",
                config
                    .bind
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            )));
        }
        // Values carry one type byte; keys two bytes of prefix.
        let ceiling = config
            .proto_max_bulk_len
            .max(crate::config::DEFAULT_PROTO_MAX_BULK_LEN);
        let db = Options::default()
            // `always` waits through the fsync thread; the engine's own syncer covers the rest.
            .sync(SyncPolicy::Interval(std::time::Duration::from_secs(1)))
            // Member keys: a 10-byte prefix, a score (sorted sets), the member.
            .max_key_size(keyspace::MAX_KEY_LEN + keyspace::MEMBER_PREFIX_LEN + 8)
            .max_value_size(usize::try_from(ceiling + 1).unwrap_or(usize::MAX))
            .max_batch_size(
                usize::try_from(ceiling.saturating_mul(2))
                    .unwrap_or(usize::MAX)
                    .max(1 << 30),
            )
            .open(&config.dir)
            .map_err(|source| ServeError::Open {
                dir: config.dir.clone(),
                source,
            })?;
        let mut listeners = Vec::new();
        for ip in &config.bind {
            let addr = SocketAddr::new(*ip, config.port);
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Listen { addr, source })?;
            listeners.push(l);
        }
        let collections =
            crate::sweep::Collections::open(&db).map_err(|source| ServeError::Open {
                dir: config.dir.clone(),
                source,
            })?;
        let pump = SyncPump::start(db.clone())?;
        let port = listeners
            .first()
            .and_then(|l| l.local_addr().ok())
            .map_or(config.port, |a| a.port());
        let mut runtime = Runtime::new(&config, ceiling);
        runtime.port = port;
        let shared = Arc::new(Shared {
            db,
            config: runtime,
            clients: Clients::default(),
            watches: Watches::default(),
            cursors: Cursors::default(),
            stats: Stats::default(),
            started: Instant::now(),
            run_id: format!("{:016x}{:016x}", random_u64(), random_u64()),
            shutdown: Shutdown::new(),
            pump,
            collections,
        });
        let sweeper = Some(crate::sweep::start(shared.clone())?);
        Ok(Server {
            shared,
            listeners,
            sweeper,
        })
    }

    /// The addresses the server listens on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Serves until SIGINT, SIGTERM or SHUTDOWN, then stops accepting, lets connections finish
    /// the commands they are running, syncs and closes the store (releasing its lock).
    ///
    /// # Errors
    /// [`ServeError::Close`] if the final sync fails.
    pub async fn run(self) -> Result<(), ServeError> {
        let Server {
            shared,
            listeners,
            mut sweeper,
        } = self;
        let signals = install_signal_handlers(shared.clone())?;
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            addrs = ?listeners.iter().filter_map(|l| l.local_addr().ok()).collect::<Vec<_>>(),
            dir = %shared.config.dir.display(),
            appendfsync = shared.config.appendfsync().name(),
            "caskdb server ready to accept connections"
        );
        let mut tasks = tokio::task::JoinSet::new();
        for l in listeners {
            tasks.spawn(accept_loop(l, shared.clone()));
        }
        while tasks.join_next().await.is_some() {}
        signals.abort();
        shared.collections.stop();
        if let Some(t) = sweeper.take() {
            let _ = t.join();
        }
        tracing::info!("shutting down: all connections closed, syncing the store");
        let db = shared.db.clone();
        drop(shared);
        db.close().map_err(ServeError::Close)?;
        tracing::info!("store closed; bye");
        Ok(())
    }
}

/// Turns SIGINT and SIGTERM into a shutdown. The handlers are installed before the server says
/// it is ready, so a signal sent right after that line is never the default "terminate now".
fn install_signal_handlers(shared: Arc<Shared>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
        shared.shutdown.trigger();
    }))
}

/// Accepts until shutdown; then waits for this listener's connections to finish.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = tokio::task::JoinSet::new();
    let mut stop = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = stop.wait() => break,
            accepted = listener.accept() => {
                let (socket, addr) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors, usually: back off briefly instead of spinning.
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                shared.stats.connections.add(1);
                if shared.clients.len() as u64 >= shared.config.maxclients() {
                    shared.stats.rejected.add(1);
                    tokio::spawn(refuse(socket));
                    continue;
                }
                let _ = socket.set_nodelay(true);
                // Registered before the next accept, so maxclients is exact.
                let laddr = socket.local_addr().unwrap_or(addr);
                let conn = Connection::new(socket, addr, laddr, shared.clone());
                conns.spawn(conn.run());
                // Reap finished connections so the set does not grow.
                while conns.try_join_next().is_some() {}
            }
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

async fn refuse(mut socket: TcpStream) {
    let _ = socket
        .write_all(b"-ERR max number of clients reached\r\n")
        .await;
    let _ = socket.shutdown().await;
}

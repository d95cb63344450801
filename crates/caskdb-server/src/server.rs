//! The listener: opens the store, builds the state connections share, accepts connections up
//! to `maxclients`, and shuts down cleanly on SIGINT, SIGTERM or SHUTDOWN.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use caskdb::SyncPolicy;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::tls::{Socket, TlsSettings};

use crate::acl::Acl;
use crate::blocking::Blocking;
use crate::clients::Clients;
use crate::config::{self, Config, Runtime};
use crate::connection::Connection;
use crate::disk;
use crate::pubsub::PubSub;
use crate::shutdown::Shutdown;
use crate::state::{Cursors, Shared, Stats, SyncPump, random_u64, unix_secs};
use crate::sweep::{self, Collections};
use crate::watch::Watches;

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
    /// Each listener, and whether it is on `tls-port` (its acceptor is `Shared::tls`).
    listeners: Vec<(TcpListener, bool)>,
    sweeper: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Opens the store and binds the listeners.
    ///
    /// # Errors
    /// [`ServeError::Config`] for a non-loopback bind without a password in protected mode;
    /// [`ServeError::Open`] if the data directory is locked or damaged; [`ServeError::Listen`].
    pub async fn bind(mut config: Config) -> Result<Server, ServeError> {
        let acl = Acl::new(config.requirepass.as_deref());
        // (A follower forwards requests without checking users: a group has the default user
        // only, and `requirepass`.)
        if config.aclfile.is_some() && config.cluster.is_some() {
            return Err(ServeError::Config(
                "aclfile: ACL users are not supported in a replicated group yet (use requirepass)"
                    .into(),
            ));
        }
        if let Some(path) = &config.aclfile {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ServeError::Config(format!("aclfile {}: {e}", path.display())))?;
            let users = crate::acl::parse_file(&text)
                .map_err(|e| ServeError::Config(format!("aclfile {}: {e}", path.display())))?;
            acl.replace(users);
        }
        if config.protected_mode
            && acl.default_user().nopass()
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
            .max(config::DEFAULT_PROTO_MAX_BULK_LEN);
        let db = crate::direct::engine_options(ceiling)
            // `always` waits through the fsync thread; the engine's own syncer covers the rest.
            .sync(SyncPolicy::Interval(std::time::Duration::from_secs(1)))
            .open(&config.dir)
            .map_err(|source| ServeError::Open {
                dir: config.dir.clone(),
                source,
            })?;
        // Keys written by the command line before it shared this keyspace become strings of
        // database 0.
        match crate::direct::migrate_raw_keys(&db) {
            Ok((0, 0)) => {}
            Ok((moved, kept)) => tracing::warn!(
                moved,
                kept,
                "moved keys of the old command-line encoding into database 0 (kept: their names were taken)"
            ),
            Err(source) => {
                return Err(ServeError::Open {
                    dir: config.dir.clone(),
                    source,
                });
            }
        }
        let mut listeners = Vec::new();
        for ip in &config.bind {
            let addr = SocketAddr::new(*ip, config.port);
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Listen { addr, source })?;
            listeners.push((l, false));
        }
        // TLS, on a port of its own beside the plain one, as Redis.
        let tls = TlsSettings::from_params(|name| config.redis_param(name));
        let mut acceptor = None;
        if tls.port != 0 {
            acceptor = Some(tls.acceptor().map_err(ServeError::Config)?);
            for ip in &config.bind {
                let addr = SocketAddr::new(*ip, tls.port);
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Listen { addr, source })?;
                listeners.push((l, true));
            }
        }
        // Messages from the group's other nodes (their PUBLISHes) reach this node's
        // subscribers once the state they are published to exists.
        let inbox: Arc<std::sync::OnceLock<std::sync::Weak<Shared>>> = Arc::default();
        let cluster = start_cluster(&config, &db, inbox.clone()).await?;
        // (Read once the group's start finished any snapshot install a crash interrupted.)
        let dbs = crate::direct::db_map(&db).map_err(|source| ServeError::Open {
            dir: config.dir.clone(),
            source,
        })?;
        let collections = Collections::open(&db).map_err(|source| ServeError::Open {
            dir: config.dir.clone(),
            source,
        })?;
        let pump = SyncPump::start(db.clone())?;
        let port = listeners
            .first()
            .and_then(|(l, _)| l.local_addr().ok())
            .map_or(config.port, |a| a.port());
        config.port = port;
        let acl_file = config.aclfile.clone();
        let runtime = Runtime::new(config, ceiling);
        let shared = Arc::new(Shared {
            db,
            config: runtime,
            clients: Clients::default(),
            pause: Default::default(),
            active_expire: std::sync::atomic::AtomicBool::new(true),
            dbs,
            watches: Watches::default(),
            cursors: Cursors::default(),
            stats: Stats::default(),
            started: Instant::now(),
            last_save: Arc::new(AtomicU64::new(unix_secs())),
            // 40 hex digits, as Redis's.
            run_id: format!(
                "{:016x}{:016x}{:08x}",
                random_u64(),
                random_u64(),
                random_u64() as u32
            ),
            shutdown: Shutdown::new(),
            pump,
            disk: Default::default(),
            acl,
            acl_file,
            collections,
            pubsub: PubSub::default(),
            blocking: Blocking::default(),
            command_stats: Default::default(),
            slowlog: Default::default(),
            scripts: crate::script::Scripts::new(crate::state::REDIS_VERSION),
            tracking: Default::default(),
            handshakes: AtomicU64::new(0),
            tls: acceptor.map(parking_lot::RwLock::new),
            cluster,
        });
        let _ = inbox.set(Arc::downgrade(&shared));
        shared.load_libraries();
        // In a group, orphaned members stay: the sweeper's deletions would be this node's
        // alone, and a new leader must see every collection id the old one gave out.
        let sweeper = match shared.cluster {
            None => Some(start_sweeper(shared.clone())?),
            Some(_) => None,
        };
        Ok(Server {
            shared,
            listeners,
            sweeper,
        })
    }

    /// The addresses the server listens on for plain connections.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter(|(_, tls)| !tls)
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// The addresses the server listens on for TLS connections (`tls-port`).
    pub fn tls_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter(|(_, tls)| *tls)
            .filter_map(|(l, _)| l.local_addr().ok())
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
            addrs = ?listeners.iter().filter_map(|(l, _)| l.local_addr().ok()).collect::<Vec<_>>(),
            dir = %shared.config.dir().display(),
            appendfsync = shared.config.appendfsync().name(),
            "caskdb server ready to accept connections"
        );
        shared.stats.startup_memory.store(
            crate::metrics::used_bytes(),
            std::sync::atomic::Ordering::Relaxed,
        );
        let mut tasks = tokio::task::JoinSet::new();
        // (In a group it runs on the leader only, and its deletions are proposed.)
        tasks.spawn(crate::expire::run(shared.clone()));
        tasks.spawn(sample_rates(shared.clone()));
        tasks.spawn(probe_disk(shared.clone()));
        for (l, tls) in listeners {
            tasks.spawn(accept_loop(l, tls, shared.clone()));
        }
        while tasks.join_next().await.is_some() {}
        signals.abort();
        shared.collections.stop();
        if let Some(t) = sweeper.take() {
            let _ = t.join();
        }
        if let Some(c) = &shared.cluster {
            c.shutdown().await;
        }
        tracing::info!("shutting down: all connections closed, syncing the store");
        let db = shared.db.clone();
        drop(shared);
        db.close().map_err(ServeError::Close)?;
        tracing::info!("store closed; bye");
        Ok(())
    }
}

/// What the group's Raft bus proves on each connection (`cluster-secret`, else `masterauth`,
/// else `requirepass`), inside TLS when `tls-replication` is `yes`.
fn bus_secret(config: &Config) -> Result<caskdb_raft::Secret, ServeError> {
    let secret = config
        .cluster_secret
        .as_ref()
        .or(config.masterauth.as_ref())
        .or(config.requirepass.as_ref())
        .map_or_else(caskdb_raft::Secret::default, |s| {
            caskdb_raft::Secret::new(s.as_bytes())
        });
    if !config
        .redis_param("tls-replication")
        .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
    {
        return Ok(secret);
    }
    let tls = TlsSettings::from_params(|name| config.redis_param(name))
        .bus_tls()
        .map_err(ServeError::Config)?;
    tracing::info!("raft bus: TLS with client certificates (tls-replication yes)");
    Ok(secret.with_tls(tls))
}

/// Starts this node's member of its replicated group, if `node-id` and `cluster` are set.
async fn start_cluster(
    config: &Config,
    db: &caskdb::Db,
    inbox: Arc<std::sync::OnceLock<std::sync::Weak<Shared>>>,
) -> Result<Option<Arc<crate::cluster::Cluster>>, ServeError> {
    let (id, spec) = match (config.node_id, &config.cluster) {
        (None, None) => return Ok(None),
        (Some(id), Some(spec)) => (id, spec),
        _ => {
            return Err(ServeError::Config(
                "a replicated group needs both node-id and cluster".into(),
            ));
        }
    };
    let members = crate::cluster::parse_members(spec).map_err(ServeError::Config)?;
    let settings = crate::cluster::Settings {
        id,
        members,
        dir: &config.dir,
        election_timeout: std::time::Duration::from_millis(config.cluster_election_timeout_ms),
        snapshot_every: config.cluster_snapshot_every,
        timeout: std::time::Duration::from_millis(config.cluster_timeout_ms),
        password: config.requirepass.clone(),
        secret: bus_secret(config)?,
        on_message: caskdb_raft::network::OnMessage({
            let inbox = inbox.clone();
            Arc::new(move |msg| when_up(&inbox, |s| crate::relay::received(s, &msg)))
        }),
        on_apply: caskdb_raft::OnApply({
            let inbox = inbox.clone();
            Arc::new(move |notes| when_up(&inbox, |s| crate::relay::applied(s, notes)))
        }),
        // A snapshot replaced the store: what the node also holds in memory follows it.
        on_install: caskdb_raft::OnApply(Arc::new(move |_| {
            when_up(&inbox, |s| s.reload(true, true));
        })),
    };
    let cluster = crate::cluster::Cluster::start(settings, db.clone())
        .await
        .map_err(ServeError::Config)?;
    Ok(Some(Arc::new(cluster)))
}

/// Runs `f` on the server's shared state once it exists (and while it does): the group's
/// hooks are made before it.
fn when_up(inbox: &std::sync::OnceLock<std::sync::Weak<Shared>>, f: impl FnOnce(&Shared)) {
    if let Some(shared) = inbox.get().and_then(std::sync::Weak::upgrade) {
        f(&shared);
    }
}

/// Samples INFO's instantaneous rates every 100 ms (as Redis's cron does), until shutdown.
async fn sample_rates(shared: Arc<Shared>) {
    let mut stop = shared.shutdown.subscribe();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait() => return,
            _ = tick.tick() => shared.stats.sample(),
        }
    }
}

/// While writes are refused for a disk error (`disk.rs`), asks the engine for room once a
/// second, and lets writes resume once it gets it; until shutdown.
async fn probe_disk(shared: Arc<Shared>) {
    let mut stop = shared.shutdown.subscribe();
    let mut tick = tokio::time::interval(disk::PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait() => return,
            _ = tick.tick() => {}
        }
        if !shared.disk.failed() {
            continue;
        }
        let db = shared.db.clone();
        let failures = shared.disk.failures();
        // (Allocating, or starting a new data file, blocks on the disk.)
        let reserved = tokio::task::spawn_blocking(move || db.reserve(disk::PROBE_BYTES)).await;
        if let Ok(Ok(())) = reserved {
            shared.disk.recovered(failures);
        }
    }
}

/// Starts the thread that reclaims the members of deleted collections (`sweep.rs`); it stops
/// when `shared.collections` is told to.
fn start_sweeper(shared: Arc<Shared>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("caskdb-sweep".into())
        .spawn(move || sweep::run(&shared.db, &shared.collections))
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
        // A running script stops (its writes dropped), or the server could not stop.
        shared.scripts.abort();
        shared.shutdown.trigger();
    }))
}

/// Accepts until shutdown; then waits for this listener's connections to finish.
async fn accept_loop(listener: TcpListener, tls: bool, shared: Arc<Shared>) {
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
                let handshaking = shared.handshakes.load(std::sync::atomic::Ordering::Relaxed);
                if shared.clients.len() as u64 + handshaking >= shared.config.maxclients() {
                    shared.stats.rejected.add(1);
                    tokio::spawn(refuse(socket));
                    continue;
                }
                let _ = socket.set_nodelay(true);
                let laddr = socket.local_addr().unwrap_or(addr);
                let acceptor = if tls {
                    shared.tls.as_ref().map(|a| a.read().clone())
                } else {
                    None
                };
                match acceptor {
                    None => {
                        // Registered before the next accept, so maxclients is exact.
                        let conn = Connection::new(Socket::Plain(socket), addr, laddr, shared.clone());
                        conns.spawn(conn.run());
                    }
                    Some(acceptor) => {
                        shared.handshakes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        conns.spawn(handshake(acceptor, socket, addr, laddr, shared.clone()));
                    }
                }
                // Reap finished connections so the set does not grow.
                while conns.try_join_next().is_some() {}
            }
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// How long a client has to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A TLS client: its handshake (bounded in time, cut short by a shutdown), then its
/// connection. A failed handshake (a bad or missing certificate, plain text sent to the TLS
/// port) is logged and closes the connection.
async fn handshake(
    acceptor: TlsAcceptor,
    socket: TcpStream,
    addr: SocketAddr,
    laddr: SocketAddr,
    shared: Arc<Shared>,
) {
    let counted = Handshaking(shared.clone());
    let mut stop = shared.shutdown.subscribe();
    let stream = tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)) => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::info!(%addr, "TLS handshake failed: {e}");
                return;
            }
            Err(_) => {
                tracing::info!(%addr, "TLS handshake timed out");
                return;
            }
        },
        _ = stop.wait() => return,
    };
    // Registered (counted as a client) before it stops counting as a handshake.
    let conn = Connection::new(Socket::Tls(Box::new(stream)), addr, laddr, shared.clone());
    drop(counted);
    conn.run().await;
}

/// Counts a TLS handshake in progress until dropped (whichever way the handshake ends).
struct Handshaking(Arc<Shared>);

impl Drop for Handshaking {
    fn drop(&mut self) {
        self.0
            .handshakes
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn refuse(mut socket: TcpStream) {
    let _ = socket
        .write_all(b"-ERR max number of clients reached\r\n")
        .await;
    let _ = socket.shutdown().await;
}

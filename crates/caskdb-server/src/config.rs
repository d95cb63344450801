//! Server settings: a TOML file whose keys follow redis.conf, overridden by flags, some of them
//! changeable at run time with `CONFIG SET`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

use parking_lot::RwLock;
use serde::Deserialize;

/// Redis's default `proto-max-bulk-len`: 512 MB.
pub const DEFAULT_PROTO_MAX_BULK_LEN: u64 = 512 * 1024 * 1024;
/// Redis's default port is 6379; caskdb listens next to it so both can run side by side.
pub const DEFAULT_PORT: u16 = 6380;
/// Redis's default `maxclients`.
pub const DEFAULT_MAXCLIENTS: u64 = 10_000;

/// When writes reach the disk, as Redis's `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendFsync {
    /// Every write is on disk before its reply is sent (group commit shares each fsync).
    Always,
    /// An fsync every second: a machine crash may lose the last second.
    Everysec,
    /// Also an fsync every second here (the engine never leaves data unsynced longer).
    No,
}

impl AppendFsync {
    /// Parses `always`, `everysec` or `no`.
    pub fn parse(s: &str) -> Option<AppendFsync> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Some(AppendFsync::Always),
            "everysec" => Some(AppendFsync::Everysec),
            "no" => Some(AppendFsync::No),
            _ => None,
        }
    }

    /// The redis.conf spelling.
    pub fn name(self) -> &'static str {
        match self {
            AppendFsync::Always => "always",
            AppendFsync::Everysec => "everysec",
            AppendFsync::No => "no",
        }
    }
}

/// The settings a server starts with. Build one with [`Config::default`], [`Config::from_file`]
/// and the setters, then pass it to [`Server::bind`](crate::Server::bind).
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on (default `127.0.0.1`).
    pub bind: Vec<IpAddr>,
    /// TCP port (default 6380; 0 picks a free one).
    pub port: u16,
    /// Data directory (default `caskdb-data`).
    pub dir: PathBuf,
    /// Default `everysec`.
    pub appendfsync: AppendFsync,
    /// Password for AUTH; `None` (default) lets every client in.
    pub requirepass: Option<String>,
    /// ACL users' file (`aclfile`), loaded at start; ACL LOAD and ACL SAVE use it. Default none.
    pub aclfile: Option<PathBuf>,
    /// Most clients connected at once (default 10000).
    pub maxclients: u64,
    /// Close clients idle this many seconds (0, the default: never).
    pub timeout: u64,
    /// Longest bulk string accepted (default 512 MB).
    pub proto_max_bulk_len: u64,
    /// Refuse to listen beyond loopback without a password (default true).
    pub protected_mode: bool,
    /// The file the settings came from, if any.
    pub config_file: Option<PathBuf>,
    /// Keyspace notification classes, in Redis's letters (default `""`: none).
    pub notify_keyspace_events: String,
    /// Output limits per client class, in Redis's syntax (default
    /// `normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60`); only the pubsub
    /// class is enforced so far.
    pub client_output_buffer_limit: String,
    /// Other Redis 7.0 parameters, by name, as the config file sets them (immutable ones
    /// included, such as `enable-debug-command`): those caskdb implements take effect, the
    /// others are stored for CONFIG GET (default: none).
    pub redis: Vec<(String, String)>,
    /// This node's id in a replicated group (`node-id`; default none: a single node).
    pub node_id: Option<u64>,
    /// The group's members, `id=host:port[@busport],…` (`cluster`; default none). Raft
    /// traffic goes to the bus port, by default the client port + 10000.
    pub cluster: Option<String>,
    /// How long a command waits for a leader before `-CLUSTERDOWN` (`cluster-timeout`, in
    /// milliseconds; default 2000).
    pub cluster_timeout_ms: u64,
    /// Raft's election timeout (`cluster-election-timeout`, in milliseconds; default 150, as
    /// openraft's own): a follower that hears nothing from its leader for three to four times
    /// this (openraft first waits out the leader's lease, twice this) starts an election.
    pub cluster_election_timeout_ms: u64,
    /// Entries applied between two snapshots of a group's node (`cluster-snapshot-every`;
    /// default 100000). The log keeps at most 1000 entries behind a snapshot.
    pub cluster_snapshot_every: u64,
    /// How long a reply being sent may keep a data file that a merge has since removed
    /// (`reply-hold-seconds`, caskdb's own; default 60): large values are read from their
    /// files as the client takes them, and past this the client is closed, as one over its
    /// output buffer limit, so that a client that stops reading cannot hold disk space.
    pub reply_hold_seconds: u64,
    /// The secret a group's nodes prove to each other on every Raft connection
    /// (`cluster-secret`; default none). Without it `masterauth`, then `requirepass`, is used.
    pub cluster_secret: Option<String>,
    /// The password of the group's other nodes (`masterauth`, as redis.conf names a replica's
    /// password for its master); here, the bus secret when `cluster-secret` is not set.
    pub masterauth: Option<String>,
}

/// The parameters Redis 7.0 knows by two names (its `alias`): setting one sets both.
const ALIASES: &[(&str, &str)] = &[
    ("cluster-replica-no-failover", "cluster-slave-no-failover"),
    ("replica-lazy-flush", "slave-lazy-flush"),
    ("replica-serve-stale-data", "slave-serve-stale-data"),
    ("replica-read-only", "slave-read-only"),
    ("replica-ignore-maxmemory", "slave-ignore-maxmemory"),
    ("replica-announce-ip", "slave-announce-ip"),
    (
        "cluster-replica-validity-factor",
        "cluster-slave-validity-factor",
    ),
    ("list-max-listpack-size", "list-max-ziplist-size"),
    ("replica-priority", "slave-priority"),
    ("replica-announce-port", "slave-announce-port"),
    ("repl-ping-replica-period", "repl-ping-slave-period"),
    ("min-replicas-to-write", "min-slaves-to-write"),
    ("min-replicas-max-lag", "min-slaves-max-lag"),
    ("busy-reply-threshold", "lua-time-limit"),
    ("hash-max-listpack-entries", "hash-max-ziplist-entries"),
    ("zset-max-listpack-entries", "zset-max-ziplist-entries"),
    ("hash-max-listpack-value", "hash-max-ziplist-value"),
    ("zset-max-listpack-value", "zset-max-ziplist-value"),
    ("replicaof", "slaveof"),
];

/// The parameters Redis 7.0 declares as memory sizes (its `MEMORY_CONFIG` flag), aliases
/// included: a value such as `1mb` is kept, and shown, in bytes.
const MEMORY_PARAMS: &[&str] = &[
    "repl-backlog-size",
    "maxmemory",
    "cluster-link-sendbuf-limit",
    "active-defrag-ignore-bytes",
    "hash-max-listpack-value",
    "hash-max-ziplist-value",
    "stream-node-max-bytes",
    "zset-max-listpack-value",
    "zset-max-ziplist-value",
    "hll-sparse-max-bytes",
    "client-query-buffer-limit",
    "maxmemory-clients",
    "auto-aof-rewrite-min-size",
];

/// Redis's default `client-output-buffer-limit`.
pub const DEFAULT_OUTPUT_LIMITS: &str =
    "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";

/// One client class's output limit: close above `hard` bytes at once, or above `soft` bytes
/// for `soft_seconds` (0 turns a limit off).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct OutputLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: u64,
}

impl OutputLimit {
    /// Whether `pending` bytes break this limit: over `hard`, or over `soft` for more than
    /// `soft_seconds`. As Redis: the first time over the soft limit starts the clock
    /// (`over_soft_since`), and falling back under it stops it.
    pub fn broken(&self, pending: u64, over_soft_since: &mut Option<std::time::Instant>) -> bool {
        let over_hard = self.hard > 0 && pending > self.hard;
        let over_soft = self.soft > 0 && pending > self.soft;
        if !over_soft {
            *over_soft_since = None;
            return over_hard;
        }
        let start = *over_soft_since.get_or_insert_with(std::time::Instant::now);
        over_hard || start.elapsed().as_secs() > self.soft_seconds
    }
}

/// The limits of the three client classes (normal, replica, pubsub), changed by a
/// `client-output-buffer-limit` value: `<class> <hard> <soft> <seconds>` repeated.
fn parse_output_limits(
    mut limits: [OutputLimit; 3],
    value: &str,
) -> Result<[OutputLimit; 3], &'static str> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.");
    }
    for w in words.chunks(4) {
        let class = match w[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => return Err("Invalid client class specified in buffer limit configuration."),
        };
        let hard = parse_size(w[1]);
        let soft = parse_size(w[2]);
        let secs = w[3].parse::<u64>().ok();
        let (Some(hard), Some(soft), Some(soft_seconds)) = (hard, soft, secs) else {
            return Err(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
            );
        };
        limits[class] = OutputLimit {
            hard,
            soft,
            soft_seconds,
        };
    }
    Ok(limits)
}

fn format_output_limits(l: &[OutputLimit; 3]) -> String {
    let mut s = String::new();
    for (name, l) in ["normal", "slave", "pubsub"].iter().zip(l) {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&format!("{name} {} {} {}", l.hard, l.soft, l.soft_seconds));
    }
    s
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: vec![IpAddr::from([127, 0, 0, 1])],
            port: DEFAULT_PORT,
            dir: PathBuf::from("caskdb-data"),
            appendfsync: AppendFsync::Everysec,
            requirepass: None,
            aclfile: None,
            maxclients: DEFAULT_MAXCLIENTS,
            timeout: 0,
            proto_max_bulk_len: DEFAULT_PROTO_MAX_BULK_LEN,
            protected_mode: true,
            config_file: None,
            notify_keyspace_events: String::new(),
            client_output_buffer_limit: DEFAULT_OUTPUT_LIMITS.to_string(),
            redis: Vec::new(),
            node_id: None,
            cluster: None,
            cluster_timeout_ms: 2000,
            cluster_election_timeout_ms: 150,
            cluster_snapshot_every: 100_000,
            reply_hold_seconds: 60,
            cluster_secret: None,
            masterauth: None,
        }
    }
}

/// A value in the TOML file that may be a number or a string such as `"512mb"` or `"yes"`.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum Value {
    Int(i64),
    Bool(bool),
    Str(String),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Int(n) => n.to_string(),
            Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
            Value::Str(s) => s.clone(),
        }
    }
}

/// Parses a redis.conf memory size: `1024`, `64kb`, `512mb`, `1gb`, `1k` (1000), `1m`, `1g`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let mul = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// A valid `maxclients`: at least 1.
fn parse_maxclients(s: &str) -> Option<u64> {
    s.parse().ok().filter(|&n| n >= 1)
}

/// A valid `proto-max-bulk-len`: a size of at least 1 MB, as in Redis.
fn parse_bulk_len(s: &str) -> Option<u64> {
    parse_size(s).filter(|&n| n >= 1024 * 1024)
}

fn parse_yes_no(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// Parses a `bind` value: addresses separated by blanks; a leading `-` (optional address in
/// redis.conf) is accepted and ignored.
pub fn parse_bind(s: &str) -> Result<Vec<IpAddr>, String> {
    let addrs: Result<Vec<IpAddr>, String> = s
        .split_whitespace()
        .map(|a| {
            let a = a.trim_start_matches('-');
            let a = if a == "localhost" { "127.0.0.1" } else { a };
            a.parse()
                .map_err(|_| format!("bind: '{a}' is not an IP address"))
        })
        .collect();
    let addrs = addrs?;
    if addrs.is_empty() {
        return Err("bind: no address given".into());
    }
    Ok(addrs)
}

impl Config {
    /// The last value given for redis.conf parameter `name` among [`Config::redis`].
    pub fn redis_param(&self, name: &str) -> Option<String> {
        self.redis
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// Reads a TOML file with redis.conf names (`bind`, `port`, `dir`, `appendfsync`,
    /// `requirepass`, `maxclients`, `timeout`, `proto-max-bulk-len`, `protected-mode`; a
    /// group's `node-id`, `cluster`, `cluster-timeout`, `cluster-election-timeout`, `cluster-snapshot-every`,
    /// `cluster-secret`, `masterauth`; caskdb's `reply-hold-seconds`) over the defaults.
    ///
    /// # Errors
    /// If the file cannot be read, is not TOML, or has an unknown key or a bad value.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let table: std::collections::BTreeMap<String, Value> =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut config = Config {
            config_file: Some(path.to_path_buf()),
            ..Config::default()
        };
        for (key, value) in &table {
            config
                .apply(key, &value.text())
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(config)
    }

    /// Sets one setting by its redis.conf name from its text form.
    ///
    /// # Errors
    /// An unknown name or a bad value.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bad = |what: &str| format!("{key}: {what} (got '{value}')");
        match key {
            "bind" => self.bind = parse_bind(value)?,
            "port" => self.port = value.parse().map_err(|_| bad("expected a port number"))?,
            "dir" => self.dir = PathBuf::from(value),
            "appendfsync" => {
                self.appendfsync = AppendFsync::parse(value)
                    .ok_or_else(|| bad("expected always, everysec or no"))?
            }
            "requirepass" => {
                self.requirepass = (!value.is_empty()).then(|| value.to_string());
            }
            "aclfile" => self.aclfile = (!value.is_empty()).then(|| PathBuf::from(value)),
            "maxclients" => {
                self.maxclients = parse_maxclients(value)
                    .ok_or_else(|| bad("expected a number of clients >= 1"))?
            }
            "timeout" => self.timeout = value.parse().map_err(|_| bad("expected seconds"))?,
            "proto-max-bulk-len" => {
                self.proto_max_bulk_len =
                    parse_bulk_len(value).ok_or_else(|| bad("expected a size of at least 1mb"))?
            }
            "protected-mode" => {
                self.protected_mode =
                    parse_yes_no(value).ok_or_else(|| bad("expected yes or no"))?
            }
            "notify-keyspace-events" => {
                crate::notify::parse_flags(value.as_bytes())
                    .ok_or_else(|| bad("expected letters of Ag$lshzxeKEtmdn"))?;
                self.notify_keyspace_events = value.to_string();
            }
            "node-id" => {
                self.node_id = Some(value.parse().map_err(|_| bad("expected a node number"))?)
            }
            "cluster-secret" => {
                self.cluster_secret = (!value.is_empty()).then(|| value.to_string())
            }
            "masterauth" => self.masterauth = (!value.is_empty()).then(|| value.to_string()),
            "cluster" => {
                crate::cluster::parse_members(value)?;
                self.cluster = Some(value.to_string());
            }
            "cluster-timeout" => {
                self.cluster_timeout_ms = value
                    .parse()
                    .ok()
                    .filter(|&ms| ms > 0)
                    .ok_or_else(|| bad("expected milliseconds"))?
            }
            "reply-hold-seconds" => {
                self.reply_hold_seconds = value
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| bad("expected seconds, at least 1"))?
            }
            "cluster-snapshot-every" => {
                self.cluster_snapshot_every = value
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| bad("expected a number of entries, at least 1"))?
            }
            "cluster-election-timeout" => {
                self.cluster_election_timeout_ms = value
                    .parse()
                    .ok()
                    .filter(|&ms| ms >= 10)
                    .ok_or_else(|| bad("expected at least 10 milliseconds"))?
            }
            "client-output-buffer-limit" => {
                parse_output_limits([OutputLimit::default(); 3], value).map_err(bad)?;
                self.client_output_buffer_limit = value.to_string();
            }
            _ => {
                let Some((_, default, _)) = redis_params().find(|(k, _, _)| *k == key) else {
                    return Err(format!("unknown setting '{key}'"));
                };
                check_knob_value(key, default, value).map_err(|why| bad(&why))?;
                self.redis.retain(|(k, _)| k != key);
                self.redis.push((key.to_string(), value.to_string()));
            }
        }
        Ok(())
    }
}

/// Whether `value` is of the kind a parameter whose default is `default` takes: yes/no, or an
/// integer (with Redis's size suffixes); anything for the others.
fn check_knob_value(name: &str, default: &str, value: &str) -> Result<(), String> {
    if matches!(
        name,
        "enable-debug-command" | "enable-module-command" | "enable-protected-configs"
    ) {
        return match value {
            "yes" | "no" | "local" => Ok(()),
            _ => Err("argument(s) must be one of the following: no, yes, local".into()),
        };
    }
    // Below this, a client could not send even a small request: Redis refuses it.
    if name == "client-query-buffer-limit" && parse_size(value).is_some_and(|n| n < 1 << 20) {
        return Err("argument must be between 1048576 and 9223372036854775807 inclusive".into());
    }
    if (default == "yes" || default == "no") && value != "yes" && value != "no" {
        return Err("argument must be 'yes' or 'no'".into());
    }
    // (`maxmemory-clients` also takes a share of `maxmemory`: `5%`.)
    let percent = name == "maxmemory-clients"
        && value
            .strip_suffix('%')
            .is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n <= 100));
    if !default.is_empty()
        && default.bytes().all(|b| b.is_ascii_digit())
        && !percent
        && parse_size(value).is_none()
        && value.parse::<i64>().is_err()
    {
        return Err("argument couldn't be parsed into an integer".into());
    }
    Ok(())
}

/// The settings of a running server: those it started with, and atomics for those CONFIG SET
/// changes.
pub(crate) struct Runtime {
    /// The settings the server started with (and the port it listens on): read here only for
    /// those CONFIG SET cannot change. The others are read from the fields below; the password
    /// is moved out of it into `requirepass`.
    start: Config,
    /// Largest `proto-max-bulk-len` the engine was opened for.
    bulk_len_ceiling: u64,
    appendfsync: AtomicU8,
    requirepass: RwLock<Option<String>>,
    maxclients: AtomicU64,
    timeout: AtomicU64,
    proto_max_bulk_len: AtomicU64,
    notify_flags: AtomicU32,
    output_limits: RwLock<[OutputLimit; 3]>,
    /// Whether the `normal` class has a limit (read on every reply, without the lock).
    normal_limited: AtomicBool,
    /// The compact encodings' limits OBJECT ENCODING follows: hash entries and value bytes,
    /// sorted-set entries and member bytes, intset entries.
    compact: [AtomicU64; 5],
    /// `slowlog-log-slower-than` (µs; negative: off) and `slowlog-max-len`.
    slowlog_threshold: std::sync::atomic::AtomicI64,
    slowlog_max_len: AtomicU64,
    /// `busy-reply-threshold` (alias `lua-time-limit`), milliseconds.
    busy_threshold_ms: AtomicU64,
    /// `client-query-buffer-limit`: a client whose unprocessed input passes it is closed.
    query_buffer_limit: AtomicU64,
    /// `maxmemory` in bytes (0: no limit).
    maxmemory: AtomicU64,
    /// Redis parameters caskdb accepts without implementing them, with their values.
    knobs: RwLock<std::collections::BTreeMap<String, String>>,
    /// Those whose no-effect CONFIG SET was logged.
    knobs_logged: parking_lot::Mutex<std::collections::HashSet<String>>,
}

/// The limits of Redis's compact encodings, which OBJECT ENCODING follows: hash entries and value
/// bytes, sorted-set entries and member bytes, intset entries (`hash-max-listpack-entries`,
/// `hash-max-listpack-value`, `zset-max-listpack-entries`, `zset-max-listpack-value`,
/// `set-max-intset-entries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompactLimits(pub [u64; 5]);

impl CompactLimits {
    /// Redis 7.0's defaults (what a server without those settings uses; what the command line's
    /// import goes by, having no server configuration).
    pub const REDIS_DEFAULT: CompactLimits = CompactLimits([128, 64, 128, 64, 512]);

    /// The most members a collection of type `ty` has in its compact encoding.
    pub fn max_len(&self, ty: crate::keyspace::Type) -> u64 {
        use crate::keyspace::Type;
        match ty {
            Type::Hash => self.0[0],
            Type::ZSet => self.0[2],
            Type::Set => self.0[4],
            _ => u64::MAX,
        }
    }

    /// Whether member `member` (with `value`, for hashes) leaves the compact encoding of type
    /// `ty`: too long for a listpack, or not an integer for an intset.
    pub fn breaks(&self, ty: crate::keyspace::Type, member: &[u8], value: &[u8]) -> bool {
        use crate::keyspace::Type;
        match ty {
            Type::Hash => member.len() as u64 > self.0[1] || value.len() as u64 > self.0[1],
            Type::ZSet => member.len() as u64 > self.0[3],
            Type::Set => !is_canonical_int(member),
            _ => false,
        }
    }
}

/// Whether `s` is an integer as Redis writes one (what an intset or an `int` string holds): no
/// sign but `-`, no leading zero, no blanks, within i64.
pub(crate) fn is_canonical_int(s: &[u8]) -> bool {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    !digits.is_empty()
        && s.len() <= 20
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || s == b"0")
        && std::str::from_utf8(s).is_ok_and(|t| t.parse::<i64>().is_ok())
}

/// Redis 7.0.15's parameters: (name, default, `set` | `immutable` | `protected`).
fn redis_params() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    include_str!("redis_params.tsv")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?, f.next()?, f.next()?))
        })
}

impl Runtime {
    pub fn new(mut start: Config, bulk_len_ceiling: u64) -> Runtime {
        let mut runtime = Runtime {
            bulk_len_ceiling,
            appendfsync: AtomicU8::new(start.appendfsync as u8),
            requirepass: RwLock::new(start.requirepass.take()),
            maxclients: AtomicU64::new(start.maxclients),
            timeout: AtomicU64::new(start.timeout),
            proto_max_bulk_len: AtomicU64::new(start.proto_max_bulk_len),
            // Both were checked when the configuration was read.
            notify_flags: AtomicU32::new(
                crate::notify::parse_flags(start.notify_keyspace_events.as_bytes()).unwrap_or(0),
            ),
            output_limits: RwLock::new(
                parse_output_limits(
                    parse_output_limits([OutputLimit::default(); 3], DEFAULT_OUTPUT_LIMITS)
                        .unwrap_or_default(),
                    &start.client_output_buffer_limit,
                )
                .unwrap_or_default(),
            ),
            normal_limited: AtomicBool::new(false),
            knobs: RwLock::new(
                redis_params()
                    .map(|(k, v, _)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            knobs_logged: Default::default(),
            compact: CompactLimits::REDIS_DEFAULT.0.map(AtomicU64::new),
            slowlog_threshold: std::sync::atomic::AtomicI64::new(10_000),
            slowlog_max_len: AtomicU64::new(128),
            busy_threshold_ms: AtomicU64::new(5000),
            query_buffer_limit: AtomicU64::new(1 << 30),
            maxmemory: AtomicU64::new(0),
            start,
        };
        let normal = runtime.output_limits.read()[0];
        runtime
            .normal_limited
            .store(normal != OutputLimit::default(), Ordering::Relaxed);
        // The config file's Redis parameters (checked when it was read), immutable ones too.
        for (k, v) in std::mem::take(&mut runtime.start.redis) {
            runtime.store_knob(&k, &v);
        }
        // (Kept apart for the server's start; CONFIG GET shows it as Redis does.)
        if let Some(path) = runtime.start.aclfile.clone() {
            runtime.store_knob("aclfile", &path.display().to_string());
        }
        runtime
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.start.port
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.start.dir
    }

    /// The file the settings came from, if any.
    pub fn config_file(&self) -> Option<&Path> {
        self.start.config_file.as_deref()
    }

    pub fn appendfsync(&self) -> AppendFsync {
        match self.appendfsync.load(Ordering::Relaxed) {
            0 => AppendFsync::Always,
            1 => AppendFsync::Everysec,
            _ => AppendFsync::No,
        }
    }

    pub fn requirepass(&self) -> Option<String> {
        self.requirepass.read().clone()
    }

    pub fn maxclients(&self) -> u64 {
        self.maxclients.load(Ordering::Relaxed)
    }

    pub fn timeout(&self) -> u64 {
        self.timeout.load(Ordering::Relaxed)
    }

    pub fn proto_max_bulk_len(&self) -> u64 {
        self.proto_max_bulk_len.load(Ordering::Relaxed)
    }

    /// The most members a collection of type `ty` has in its compact encoding.
    pub fn compact_max_len(&self, ty: crate::keyspace::Type) -> u64 {
        self.compact_limits().max_len(ty)
    }

    /// Whether member `member` (with `value`, for hashes) leaves the compact encoding of type
    /// `ty`: too long for a listpack, or not an integer for an intset.
    pub fn breaks_compact(&self, ty: crate::keyspace::Type, member: &[u8], value: &[u8]) -> bool {
        self.compact_limits().breaks(ty, member, value)
    }

    /// The compact encodings' limits as set now.
    fn compact_limits(&self) -> CompactLimits {
        CompactLimits(self.compact.each_ref().map(|c| c.load(Ordering::Relaxed)))
    }

    /// How long a script runs before other clients get BUSY (`busy-reply-threshold`).
    pub fn busy_threshold(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.busy_threshold_ms.load(Ordering::Relaxed))
    }

    /// SLOWLOG's threshold in µs (`None`: off) and length.
    pub fn slowlog(&self) -> (Option<u64>, usize) {
        let t = self.slowlog_threshold.load(Ordering::Relaxed);
        let max = self.slowlog_max_len.load(Ordering::Relaxed);
        (
            u64::try_from(t).ok(),
            usize::try_from(max).unwrap_or(usize::MAX),
        )
    }

    /// The keyspace notification flags (`notify.rs`).
    pub fn notify_flags(&self) -> u32 {
        self.notify_flags.load(Ordering::Relaxed)
    }

    /// `reply-hold-seconds`: how long a reply may keep a merged-away file.
    pub fn reply_hold(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.start.reply_hold_seconds)
    }

    /// The output limit of other clients (`normal`), if it has one.
    pub fn normal_limit(&self) -> Option<OutputLimit> {
        if !self.normal_limited.load(Ordering::Relaxed) {
            return None;
        }
        Some(self.output_limits.read()[0])
    }

    /// The output limit of pub/sub clients.
    pub fn pubsub_limit(&self) -> OutputLimit {
        self.output_limits.read()[2]
    }

    /// A Redis parameter's value as stored (CONFIG SET of one caskdb does not implement changes
    /// only this); `None` for a name Redis 7.0 does not have.
    pub fn knob(&self, name: &str) -> Option<String> {
        self.knobs.read().get(name).cloned()
    }

    /// Every setting CONFIG GET knows, as (name, value).
    pub fn all(&self) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = self
            .implemented()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let knobs = self.knobs.read();
        for (k, v) in knobs.iter() {
            if !all.iter().any(|(name, _)| name == k) {
                all.push((k.clone(), v.clone()));
            }
        }
        all
    }

    /// The settings caskdb implements, as (name, value).
    fn implemented(&self) -> Vec<(&'static str, String)> {
        let start = &self.start;
        let bind: Vec<String> = start.bind.iter().map(|a| a.to_string()).collect();
        vec![
            ("bind", bind.join(" ")),
            ("port", start.port.to_string()),
            ("dir", start.dir.display().to_string()),
            ("appendonly", "yes".into()),
            ("appendfsync", self.appendfsync().name().into()),
            ("requirepass", self.requirepass().unwrap_or_default()),
            ("maxclients", self.maxclients().to_string()),
            ("timeout", self.timeout().to_string()),
            ("proto-max-bulk-len", self.proto_max_bulk_len().to_string()),
            (
                "protected-mode",
                if start.protected_mode { "yes" } else { "no" }.into(),
            ),
            ("databases", crate::keyspace::DATABASES.to_string()),
            ("save", String::new()),
            (
                "notify-keyspace-events",
                crate::notify::flags_to_string(self.notify_flags()),
            ),
            (
                "client-output-buffer-limit",
                format_output_limits(&self.output_limits.read()),
            ),
        ]
    }

    /// CONFIG SET of a Redis parameter caskdb does not implement: refused as Redis refuses it
    /// (immutable, protected, unknown, a value of the wrong kind), else stored, so CONFIG GET
    /// shows it, and logged once as having no effect.
    fn set_knob(&self, name: &str, value: &str) -> Result<(), String> {
        let failed = |why: &str| {
            format!("CONFIG SET failed (possibly related to argument '{name}') - {why}")
        };
        let Some((_, default, mode)) = redis_params().find(|(k, _, _)| *k == name) else {
            return Err(format!(
                "Unknown option or number of arguments for CONFIG SET - '{name}'"
            ));
        };
        match mode {
            "immutable" => return Err(failed("can't set immutable config")),
            "protected" => return Err(failed("can't set protected config")),
            _ => {}
        }
        check_knob_value(name, default, value).map_err(|why| failed(&why))?;
        if !self.store_knob(name, value) && self.knobs_logged.lock().insert(name.to_string()) {
            tracing::info!("CONFIG SET {name}: stored; this setting has no effect in caskdb");
        }
        Ok(())
    }

    /// Stores a Redis parameter's (checked) value and applies it where caskdb implements it;
    /// returns whether it has an effect.
    fn store_knob(&self, name: &str, value: &str) -> bool {
        // Redis keeps its memory parameters in bytes: CONFIG GET shows `1048576` for `1mb`.
        let normalized;
        let value = match parse_size(value) {
            Some(n) if MEMORY_PARAMS.contains(&name) => {
                normalized = n.to_string();
                normalized.as_str()
            }
            _ => value,
        };
        // Two names of one setting, as in Redis: CONFIG GET shows the new value under both.
        let names: Vec<&str> = match ALIASES.iter().find(|(a, b)| *a == name || *b == name) {
            Some((a, b)) => vec![a, b],
            None => vec![name],
        };
        {
            let mut knobs = self.knobs.write();
            for n in &names {
                knobs.insert((*n).to_string(), value.to_string());
            }
        }
        if names.contains(&"busy-reply-threshold") {
            if let Ok(ms) = value.parse::<u64>() {
                self.busy_threshold_ms.store(ms, Ordering::Relaxed);
            }
            return true;
        }
        let slot = match name {
            "hash-max-listpack-entries" | "hash-max-ziplist-entries" => Some(0),
            "hash-max-listpack-value" | "hash-max-ziplist-value" => Some(1),
            "zset-max-listpack-entries" | "zset-max-ziplist-entries" => Some(2),
            "zset-max-listpack-value" | "zset-max-ziplist-value" => Some(3),
            "set-max-intset-entries" => Some(4),
            _ => None,
        };
        match (name, value.parse::<i64>()) {
            ("slowlog-log-slower-than", Ok(n)) => {
                self.slowlog_threshold.store(n, Ordering::Relaxed);
                return true;
            }
            ("slowlog-max-len", Ok(n)) => {
                self.slowlog_max_len
                    .store(u64::try_from(n).unwrap_or(0), Ordering::Relaxed);
                return true;
            }
            _ => {}
        }
        if name == "client-query-buffer-limit"
            && let Some(n) = parse_size(value)
        {
            self.query_buffer_limit.store(n, Ordering::Relaxed);
            return true;
        }
        if name == "maxmemory"
            && let Some(n) = parse_size(value)
        {
            self.maxmemory.store(n, Ordering::Relaxed);
            return true;
        }
        if let (Some(i), Some(n)) = (slot, parse_size(value)) {
            // OBJECT ENCODING follows them.
            self.compact[i].store(n, Ordering::Relaxed);
            return true;
        }
        // Read where they are used (DEBUG; INFO shows them; CONFIG SET of the TLS files
        // makes the TLS port's acceptor again).
        matches!(
            name,
            "enable-debug-command"
                | "hz"
                | "latency-tracking"
                | "latency-tracking-info-percentiles"
                | "tls-cert-file"
                | "tls-key-file"
                | "tls-ca-cert-file"
                | "tls-auth-clients"
                | "tls-protocols"
        )
    }

    /// `maxmemory` in bytes (0, the default: no limit).
    pub fn maxmemory(&self) -> u64 {
        self.maxmemory.load(Ordering::Relaxed)
    }

    /// `client-query-buffer-limit` (default 1 GB, as Redis).
    pub fn query_buffer_limit(&self) -> u64 {
        self.query_buffer_limit.load(Ordering::Relaxed)
    }

    /// `enable-debug-command`: `yes`, `local` (loopback clients only) or `no` (the default).
    pub fn debug_allowed(&self, from_loopback: bool) -> bool {
        match self.knob("enable-debug-command").as_deref() {
            Some("yes") => true,
            Some("local") => from_loopback,
            _ => false,
        }
    }

    /// CONFIG REWRITE: writes the settings into the config file the server started with,
    /// replacing the lines of those it already sets (comments and the rest stay) and adding
    /// those that differ from their defaults.
    pub fn rewrite(&self) -> Result<(), String> {
        let Some(path) = self.config_file() else {
            return Err("The server is running without a config file".into());
        };
        let defaults: std::collections::HashMap<&str, &str> =
            redis_params().map(|(k, v, _)| (k, v)).collect();
        let mut wanted: Vec<(String, String)> = Vec::new();
        for (k, v) in self.implemented() {
            if !matches!(k, "databases" | "save" | "appendonly") {
                wanted.push((k.to_string(), v));
            }
        }
        for (k, v) in self.knobs.read().iter() {
            if !wanted.iter().any(|(w, _)| w == k) && defaults.get(k.as_str()) != Some(&v.as_str())
            {
                wanted.push((k.clone(), v.clone()));
            }
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("Rewriting config file: {e}"))?;
        let quoted = |v: &str| {
            let mut q = String::from("\"");
            for c in v.chars() {
                match c {
                    '"' | '\\' => {
                        q.push('\\');
                        q.push(c);
                    }
                    c if c.is_control() => q.push_str(&format!("\\u{:04X}", c as u32)),
                    c => q.push(c),
                }
            }
            q.push('"');
            q
        };
        let mut done = std::collections::HashSet::new();
        let mut out = String::new();
        for line in text.lines() {
            let key = line
                .split_once('=')
                .map(|(k, _)| k.trim().trim_matches('"'))
                .filter(|k| !k.starts_with('#') && !k.is_empty());
            match key.and_then(|k| wanted.iter().find(|(w, _)| w == k)) {
                Some((k, v)) if !done.contains(k) => {
                    out.push_str(&format!("{k} = {}\n", quoted(v)));
                    done.insert(k.clone());
                }
                Some(_) => {} // a repeated key: the first line stands for it
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        let defaults_implemented = Config::default();
        for (k, v) in &wanted {
            if done.contains(k) {
                continue;
            }
            let is_default = match k.as_str() {
                "appendfsync" => v == defaults_implemented.appendfsync.name(),
                "maxclients" => *v == defaults_implemented.maxclients.to_string(),
                "timeout" => v == "0",
                "proto-max-bulk-len" => *v == defaults_implemented.proto_max_bulk_len.to_string(),
                "protected-mode" => v == "yes",
                "requirepass" | "notify-keyspace-events" => v.is_empty(),
                "client-output-buffer-limit" => v == DEFAULT_OUTPUT_LIMITS,
                "bind" => v == "127.0.0.1",
                "port" => *v == DEFAULT_PORT.to_string(),
                _ => false,
            };
            if !is_default {
                out.push_str(&format!("{k} = {}\n", quoted(v)));
            }
        }
        // Atomically: a crash leaves the old file or the new one.
        let tmp = path.with_extension("rewrite.tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(out.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            if let Some(parent) = path.parent() {
                let dir = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| format!("Rewriting config file: {e}"))
    }

    /// CONFIG SET of one setting; the error text follows Redis's.
    pub fn set(&self, name: &[u8], value: &[u8]) -> Result<(), String> {
        let name = String::from_utf8_lossy(name).to_lowercase();
        let value = String::from_utf8_lossy(value).to_string();
        let failed = |why: &str| {
            format!("CONFIG SET failed (possibly related to argument '{name}') - {why}")
        };
        match name.as_str() {
            "appendfsync" => {
                let v = AppendFsync::parse(&value).ok_or_else(|| {
                    failed("argument(s) must be one of the following: always, everysec, no")
                })?;
                self.appendfsync.store(v as u8, Ordering::Relaxed);
            }
            "requirepass" => {
                *self.requirepass.write() = (!value.is_empty()).then_some(value);
            }
            "maxclients" => {
                let n = parse_maxclients(&value)
                    .ok_or_else(|| failed("argument must be a number of at least 1"))?;
                self.maxclients.store(n, Ordering::Relaxed);
            }
            "timeout" => {
                let n: u64 = value
                    .parse()
                    .map_err(|_| failed("argument couldn't be parsed into an integer"))?;
                self.timeout.store(n, Ordering::Relaxed);
            }
            "proto-max-bulk-len" => {
                let n = parse_bulk_len(&value)
                    .ok_or_else(|| failed("argument must be a memory value of at least 1mb"))?;
                if n > self.bulk_len_ceiling {
                    return Err(failed(&format!(
                        "the store was opened for values up to {} bytes; restart with a larger proto-max-bulk-len",
                        self.bulk_len_ceiling
                    )));
                }
                self.proto_max_bulk_len.store(n, Ordering::Relaxed);
            }
            "notify-keyspace-events" => {
                let flags = crate::notify::parse_flags(value.as_bytes()).ok_or_else(|| {
                    failed("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
                })?;
                self.notify_flags.store(flags, Ordering::Relaxed);
            }
            "client-output-buffer-limit" => {
                let mut limits = self.output_limits.write();
                *limits = parse_output_limits(*limits, &value).map_err(failed)?;
                self.normal_limited
                    .store(limits[0] != OutputLimit::default(), Ordering::Relaxed);
            }
            // Fixed once the server listens: accepted only unchanged.
            "bind" | "port" | "protected-mode" | "appendonly" => {
                let current = self.implemented().into_iter().find(|(k, _)| *k == name);
                if current.is_none_or(|(_, v)| v != value) {
                    return Err(failed("can't set immutable config"));
                }
            }
            _ => return self.set_knob(&name, &value),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_binds() {
        assert_eq!(parse_size("512mb"), Some(512 * 1024 * 1024));
        assert_eq!(parse_size("1k"), Some(1000));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1tb"), None);
        assert_eq!(
            parse_bind("127.0.0.1 -::1").unwrap(),
            vec![
                IpAddr::from([127, 0, 0, 1]),
                "::1".parse::<IpAddr>().unwrap()
            ]
        );
        assert!(parse_bind("nonsense").is_err());
    }

    #[test]
    fn toml_file_with_redis_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("caskdb.toml");
        std::fs::write(
            &path,
            "port = 7000\nappendfsync = \"always\"\nproto-max-bulk-len = \"16mb\"\nprotected-mode = \"no\"\nrequirepass = \"pw\"\n",
        )
        .unwrap();
        let c = Config::from_file(&path).unwrap();
        assert_eq!(c.port, 7000);
        assert_eq!(c.appendfsync, AppendFsync::Always);
        assert_eq!(c.proto_max_bulk_len, 16 * 1024 * 1024);
        assert!(!c.protected_mode);
        assert_eq!(c.requirepass.as_deref(), Some("pw"));
        std::fs::write(&path, "prot = 1\n").unwrap();
        let err = Config::from_file(&path).unwrap_err();
        assert!(err.contains("unknown setting 'prot'"), "{err}");
        std::fs::write(&path, "appendfsync = \"sometimes\"\n").unwrap();
        assert!(
            Config::from_file(&path)
                .unwrap_err()
                .contains("always, everysec or no")
        );
    }
}

//! INFO, with Redis 7.0's sections and field names: true values where caskdb has them
//! (clients, keyspace hits and misses, commands and their latencies, errors, network bytes,
//! expired keys, rates sampled every 100 ms, the store's files), Redis's values for what
//! caskdb does not have (replication, forks, the allocator), so monitoring tools
//! (redis_exporter, `redis-cli --stat`) read it.

use std::fmt::Write as _;
use std::ops::Bound;

use bytes::Bytes;

use super::ctx::{Ctx, Store};
use super::keys::STEP;
use super::reply::{CmdError, CmdResult};
use super::spec::{Spec, commands};
use crate::frame::Frame;
use crate::keyspace::{self, DATABASES};
use crate::state::{REDIS_VERSION, Shared};

/// INFO.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "server";
    /// Returns information and statistics about the server.
    "info", -1, 0, 0, 0, 0 => info;
};

/// Every section, in Redis's order, and whether `INFO` without arguments shows it.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
];

fn info(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let asked: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_lowercase())
        .collect();
    let all = asked.iter().any(|w| w == "all" || w == "everything");
    let default = asked.is_empty() || asked.iter().any(|w| w == "default");
    let mut out = String::new();
    for &(name, in_default) in SECTIONS {
        if !(all || (default && in_default) || asked.iter().any(|w| w == name)) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        section(ctx, name, &mut out)?;
    }
    Ok(Frame::Verbatim(out))
}

/// Appends section `name`: its title, then a `field:value` line per field.
fn section(ctx: &mut Ctx<'_, '_>, name: &str, out: &mut String) -> Result<(), CmdError> {
    let sh = ctx.shared;
    let mut title = name.to_string();
    title[..1].make_ascii_uppercase();
    if name == "cpu" {
        title = "CPU".into();
    }
    let _ = write!(out, "# {title}\r\n");
    let mut f = Fields(out);
    match name {
        "server" => server(sh, &mut f),
        "clients" => clients(sh, &mut f),
        "memory" => memory(sh, &mut f),
        "persistence" => persistence(sh, &mut f)?,
        "stats" => stats(sh, &mut f),
        "replication" => replication(sh, &mut f),
        "cpu" => cpu(&mut f),
        "commandstats" => {
            for (name, [calls, usec, rejected, failed]) in sh.command_stats.all() {
                f.put(
                    &format!("cmdstat_{name}"),
                    format!(
                        "calls={calls},usec={usec},usec_per_call={:.2},rejected_calls={rejected},failed_calls={failed}",
                        usec as f64 / calls.max(1) as f64
                    ),
                );
            }
        }
        "errorstats" => {
            for (code, count) in sh.command_stats.errors() {
                f.put(&format!("errorstat_{code}"), format!("count={count}"));
            }
        }
        "latencystats" => latencystats(sh, &mut f),
        "cluster" => f.put("cluster_enabled", 0),
        "keyspace" => {
            for db in 0..DATABASES {
                let (keys, expires, avg_ttl) = count_keys(ctx, db)?;
                if keys > 0 {
                    let mut f = Fields(out);
                    f.put(
                        &format!("db{db}"),
                        format!("keys={keys},expires={expires},avg_ttl={avg_ttl}"),
                    );
                }
            }
        }
        _ => {} // modules: none
    }
    Ok(())
}

/// Writes `field:value` lines.
struct Fields<'a>(&'a mut String);

impl Fields<'_> {
    fn put(&mut self, field: &str, value: impl std::fmt::Display) {
        let _ = write!(self.0, "{field}:{value}\r\n");
    }
}

/// Bytes as Redis's `*_human` fields print them: `943.29K`.
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["K", "M", "G", "T", "P"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2}{}", UNITS[unit])
}

fn knob_or(sh: &Shared, name: &str, default: &str) -> String {
    sh.config.knob(name).unwrap_or_else(|| default.to_string())
}

fn server(sh: &Shared, f: &mut Fields<'_>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let up = sh.started.elapsed().as_secs();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let hz = knob_or(sh, "hz", "10");
    f.put("redis_version", REDIS_VERSION);
    f.put("redis_git_sha1", "00000000");
    f.put("redis_git_dirty", 0);
    f.put("redis_build_id", "0");
    f.put("redis_mode", "standalone");
    f.put(
        "os",
        format!(
            "{} {} {}",
            if std::env::consts::OS == "linux" {
                "Linux"
            } else {
                std::env::consts::OS
            },
            release.trim(),
            std::env::consts::ARCH
        ),
    );
    f.put("arch_bits", 64);
    f.put("monotonic_clock", "POSIX clock_gettime");
    f.put("multiplexing_api", "epoll");
    f.put("atomicvar_api", "c11-builtin");
    f.put("gcc_version", "0.0.0");
    f.put("process_id", std::process::id());
    f.put("process_supervised", "no");
    f.put("run_id", &sh.run_id);
    f.put("tcp_port", sh.config.port());
    f.put("server_time_usec", now.as_micros());
    f.put("uptime_in_seconds", up);
    f.put("uptime_in_days", up / 86400);
    f.put("hz", &hz);
    f.put("configured_hz", &hz);
    f.put("lru_clock", now.as_secs() & ((1 << 24) - 1));
    f.put(
        "executable",
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    f.put(
        "config_file",
        sh.config
            .config_file()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    f.put("io_threads_active", 0);
    f.put("caskdb_version", env!("CARGO_PKG_VERSION"));
}

fn clients(sh: &Shared, f: &mut Fields<'_>) {
    let (subscribed, blocked) = sh.clients.counts();
    f.put("connected_clients", sh.clients.len());
    f.put("cluster_connections", 0);
    f.put("maxclients", sh.config.maxclients());
    f.put("client_recent_max_input_buffer", 0);
    f.put("client_recent_max_output_buffer", 0);
    f.put("blocked_clients", blocked);
    f.put("tracking_clients", sh.tracking.counts().0);
    f.put("clients_in_timeout_table", 0);
    f.put("pubsub_clients", subscribed);
}

/// The machine's memory in bytes (0 if unknown).
fn system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// The process's memory in use, the most seen, and what it used at start (bytes): MEMORY's and
/// INFO's figures.
pub(super) fn memory_figures(sh: &Shared) -> (u64, u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let used = crate::metrics::used_bytes();
    let peak = sh.stats.peak_memory.fetch_max(used, Relaxed).max(used);
    (used, peak, sh.stats.startup_memory.load(Relaxed))
}

/// The number of keys in each database (walks them).
pub(super) fn total_keys(ctx: &mut Ctx<'_, '_>) -> Result<[u64; DATABASES as usize], CmdError> {
    let mut out = [0; DATABASES as usize];
    for db in 0..DATABASES {
        out[db as usize] = count_keys(ctx, db)?.0;
    }
    Ok(out)
}

/// The memory section. caskdb has no allocator statistics: `used_memory` is the process's
/// anonymous resident memory (the index, buffers, caches), `used_memory_rss` all of its resident
/// memory (with the data files' mapped pages), and the allocator's ratios are 1.
fn memory(sh: &Shared, f: &mut Fields<'_>) {
    let (used, peak, startup) = memory_figures(sh);
    let system = system_memory();
    let maxmemory = knob_or(sh, "maxmemory", "0").parse::<u64>().unwrap_or(0);
    f.put("used_memory", used);
    f.put("used_memory_human", human(used));
    let rss = crate::metrics::rss_bytes();
    f.put("used_memory_rss", rss);
    f.put("used_memory_rss_human", human(rss));
    f.put("used_memory_peak", peak);
    f.put("used_memory_peak_human", human(peak));
    f.put(
        "used_memory_peak_perc",
        format!("{:.2}%", used as f64 * 100.0 / peak.max(1) as f64),
    );
    let dataset = used.saturating_sub(startup);
    f.put("used_memory_overhead", startup);
    f.put("used_memory_startup", startup);
    f.put("used_memory_dataset", dataset);
    f.put(
        "used_memory_dataset_perc",
        format!("{:.2}%", dataset as f64 * 100.0 / used.max(1) as f64),
    );
    f.put("allocator_allocated", used);
    f.put("allocator_active", used);
    f.put("allocator_resident", used);
    f.put("total_system_memory", system);
    f.put("total_system_memory_human", human(system));
    // The Lua VMs' memory as they held it when last used (reading it now would need a VM's
    // lock, which a running script holds). The scripts' memory is their source: EVAL's cached
    // bodies, the libraries' code.
    let scripts = sh.scripts.counts();
    let script_bytes = scripts.cached_bytes + scripts.library_bytes;
    let vm_total = scripts.vm_eval + scripts.vm_functions;
    for (k, v) in [
        ("used_memory_lua", scripts.vm_eval.to_string()),
        ("used_memory_vm_eval", scripts.vm_eval.to_string()),
        ("used_memory_lua_human", human(scripts.vm_eval as u64)),
        ("used_memory_scripts_eval", scripts.cached_bytes.to_string()),
        (
            "number_of_cached_scripts",
            scripts.cached_scripts.to_string(),
        ),
        ("number_of_functions", scripts.functions.to_string()),
        ("number_of_libraries", scripts.libraries.to_string()),
        ("used_memory_vm_functions", scripts.vm_functions.to_string()),
        ("used_memory_vm_total", vm_total.to_string()),
        ("used_memory_vm_total_human", human(vm_total as u64)),
        ("used_memory_functions", scripts.library_bytes.to_string()),
        ("used_memory_scripts", script_bytes.to_string()),
        ("used_memory_scripts_human", human(script_bytes as u64)),
    ] {
        f.put(k, v);
    }
    f.put("maxmemory", maxmemory);
    f.put("maxmemory_human", human(maxmemory));
    f.put(
        "maxmemory_policy",
        knob_or(sh, "maxmemory-policy", "noeviction"),
    );
    for (k, v) in [
        ("allocator_frag_ratio", "1.00"),
        ("allocator_frag_bytes", "0"),
        ("allocator_rss_ratio", "1.00"),
        ("allocator_rss_bytes", "0"),
        ("rss_overhead_ratio", "1.00"),
        ("rss_overhead_bytes", "0"),
        ("mem_fragmentation_ratio", "1.00"),
        ("mem_fragmentation_bytes", "0"),
        ("mem_not_counted_for_evict", "0"),
        ("mem_replication_backlog", "0"),
        ("mem_total_replication_buffers", "0"),
        ("mem_clients_slaves", "0"),
        ("mem_clients_normal", "0"),
        ("mem_cluster_links", "0"),
        ("mem_aof_buffer", "0"),
        ("mem_allocator", "libc"),
        ("active_defrag_running", "0"),
        ("lazyfree_pending_objects", "0"),
        ("lazyfreed_objects", "0"),
    ] {
        f.put(k, v);
    }
}

fn persistence(sh: &Shared, f: &mut Fields<'_>) -> Result<(), CmdError> {
    use std::sync::atomic::Ordering::Relaxed;
    let files = sh.db.stats()?;
    let rewriting = i32::from(sh.collections.rewrite_in_progress());
    for (k, v) in [
        ("loading", "0"),
        ("async_loading", "0"),
        ("current_cow_peak", "0"),
        ("current_cow_size", "0"),
        ("current_cow_size_age", "0"),
        ("current_fork_perc", "0.00"),
        ("current_save_keys_processed", "0"),
        ("current_save_keys_total", "0"),
    ] {
        f.put(k, v);
    }
    f.put("rdb_changes_since_last_save", sh.stats.dirty.get());
    f.put("rdb_bgsave_in_progress", 0);
    f.put("rdb_last_save_time", sh.last_save.load(Relaxed));
    f.put("rdb_last_bgsave_status", "ok");
    f.put("rdb_last_bgsave_time_sec", -1);
    f.put("rdb_current_bgsave_time_sec", -1);
    f.put("rdb_saves", sh.stats.saves.get());
    f.put("rdb_last_cow_size", 0);
    f.put("rdb_last_load_keys_expired", 0);
    f.put("rdb_last_load_keys_loaded", 0);
    // The log is the persistence: always on, like an append-only file.
    f.put("aof_enabled", 1);
    f.put("aof_rewrite_in_progress", rewriting);
    f.put("aof_rewrite_scheduled", 0);
    f.put("aof_last_rewrite_time_sec", -1);
    f.put("aof_current_rewrite_time_sec", -1);
    f.put("aof_last_bgrewrite_status", "ok");
    f.put("aof_rewrites", sh.collections.rewrites.load(Relaxed));
    f.put("aof_rewrites_consecutive_failures", 0);
    f.put(
        "aof_last_write_status",
        if sh.disk.refusal().is_some() {
            "err"
        } else {
            "ok"
        },
    );
    f.put("aof_last_cow_size", 0);
    f.put("module_fork_in_progress", 0);
    f.put("module_fork_last_cow_size", 0);
    f.put("aof_current_size", files.total_bytes);
    f.put("aof_base_size", 0);
    f.put("aof_pending_rewrite", 0);
    f.put("aof_buffer_length", 0);
    f.put("aof_pending_bio_fsync", 0);
    f.put("aof_delayed_fsync", 0);
    f.put("appendfsync", sh.config.appendfsync().name());
    f.put("caskdb_rewrites", sh.collections.rewrites.load(Relaxed));
    f.put(
        "caskdb_members_reclaimed",
        sh.collections.reclaimed.load(Relaxed),
    );
    f.put("caskdb_data_files", files.data_files);
    f.put("caskdb_disk_bytes", files.total_bytes);
    f.put(
        "caskdb_live_bytes",
        files.total_bytes.saturating_sub(files.dead_bytes),
    );
    f.put("caskdb_dead_bytes", files.dead_bytes);
    f.put("caskdb_dir", sh.config.dir().display());
    Ok(())
}

fn stats(sh: &Shared, f: &mut Fields<'_>) {
    let s = &sh.stats;
    let [ops, input, output] = s.rates.get();
    f.put("total_connections_received", s.connections.get());
    f.put("total_commands_processed", s.commands.get());
    f.put("instantaneous_ops_per_sec", ops.round() as u64);
    f.put("total_net_input_bytes", s.net_input.get());
    f.put("total_net_output_bytes", s.net_output.get());
    f.put("total_net_repl_input_bytes", 0);
    f.put("total_net_repl_output_bytes", 0);
    f.put("instantaneous_input_kbps", format!("{:.2}", input / 1024.0));
    f.put(
        "instantaneous_output_kbps",
        format!("{:.2}", output / 1024.0),
    );
    f.put("instantaneous_input_repl_kbps", "0.00");
    f.put("instantaneous_output_repl_kbps", "0.00");
    f.put("rejected_connections", s.rejected.get());
    f.put("sync_full", 0);
    f.put("sync_partial_ok", 0);
    f.put("sync_partial_err", 0);
    f.put("expired_keys", s.expired_keys.get());
    f.put("expired_stale_perc", "0.00");
    f.put("expired_time_cap_reached_count", 0);
    f.put("expire_cycle_cpu_milliseconds", 0);
    f.put("evicted_keys", 0);
    f.put("evicted_clients", 0);
    f.put("total_eviction_exceeded_time", 0);
    f.put("current_eviction_exceeded_time", 0);
    f.put("keyspace_hits", s.hits.get());
    f.put("keyspace_misses", s.misses.get());
    f.put(
        "pubsub_channels",
        sh.pubsub.len(crate::pubsub::Kind::Channel),
    );
    f.put(
        "pubsub_patterns",
        sh.pubsub.len(crate::pubsub::Kind::Pattern),
    );
    f.put(
        "pubsubshard_channels",
        sh.pubsub.len(crate::pubsub::Kind::Shard),
    );
    for k in [
        "latest_fork_usec",
        "total_forks",
        "migrate_cached_sockets",
        "slave_expires_tracked_keys",
        "active_defrag_hits",
        "active_defrag_misses",
        "active_defrag_key_hits",
        "active_defrag_key_misses",
        "total_active_defrag_time",
        "current_active_defrag_time",
    ] {
        f.put(k, 0);
    }
    let (_, keys, items, prefixes) = sh.tracking.counts();
    f.put("tracking_total_keys", keys);
    f.put("tracking_total_items", items);
    f.put("tracking_total_prefixes", prefixes);
    f.put("unexpected_error_replies", 0);
    f.put("total_error_replies", sh.command_stats.total_errors.get());
    f.put("dump_payload_sanitizations", 0);
    f.put("total_reads_processed", s.reads.get());
    f.put("total_writes_processed", s.writes.get());
    f.put("io_threaded_reads_processed", 0);
    f.put("io_threaded_writes_processed", 0);
    f.put("reply_buffer_shrinks", 0);
    f.put("reply_buffer_expands", 0);
    f.put(
        "client_output_buffer_limit_disconnections",
        s.output_limit_closes.get(),
    );
}

fn replication(sh: &Shared, f: &mut Fields<'_>) {
    if let Some(cluster) = &sh.cluster {
        return group_replication(sh, cluster, f);
    }
    f.put("role", "master");
    f.put("connected_slaves", 0);
    f.put("master_failover_state", "no-failover");
    f.put("master_replid", &sh.run_id);
    f.put("master_replid2", "0".repeat(40));
    f.put("master_repl_offset", 0);
    f.put("second_repl_offset", -1);
    f.put("repl_backlog_active", 0);
    f.put(
        "repl_backlog_size",
        knob_or(sh, "repl-backlog-size", "1048576"),
    );
    f.put("repl_backlog_first_byte_offset", 0);
    f.put("repl_backlog_histlen", 0);
}

/// INFO replication of a node of a replicated group: Redis's fields for the role, the
/// leader's address and the followers, then the Raft state.
fn group_replication(sh: &Shared, cluster: &crate::cluster::Cluster, f: &mut Fields<'_>) {
    let m = cluster.metrics();
    let applied = m.last_applied.map_or(0, |l| l.index);
    let role = cluster.role();
    match role {
        crate::cluster::Role::Leader => {
            f.put("role", "master");
            let followers = cluster.followers();
            f.put("connected_slaves", followers.len());
            for (i, (id, matched)) in followers.iter().enumerate() {
                let addr = cluster.client_addr(*id).unwrap_or_default();
                let (ip, port) = addr.rsplit_once(':').unwrap_or((&addr, "0"));
                let offset = matched.unwrap_or(0);
                f.put(
                    &format!("slave{i}"),
                    format!(
                        "ip={ip},port={port},state=online,offset={offset},lag={}",
                        applied.saturating_sub(offset)
                    ),
                );
            }
        }
        _ => {
            f.put("role", "slave");
            let leader = match role {
                crate::cluster::Role::Follower(l) => cluster.client_addr(l),
                _ => None,
            };
            let addr = leader.clone().unwrap_or_default();
            let (ip, port) = addr.rsplit_once(':').unwrap_or(("", "0"));
            f.put("master_host", ip);
            f.put("master_port", port);
            f.put(
                "master_link_status",
                if leader.is_some() { "up" } else { "down" },
            );
            f.put("connected_slaves", 0);
        }
    }
    f.put("master_replid", &sh.run_id);
    f.put("master_repl_offset", applied);
    f.put("raft_node_id", cluster.id);
    f.put(
        "raft_leader_id",
        m.current_leader.map_or(String::new(), |l| {
            caskdb_raft::membership::node_of(l).to_string()
        }),
    );
    f.put("raft_term", m.current_term);
    f.put("raft_last_log_index", m.last_log_index.unwrap_or(0));
    f.put("raft_applied_index", applied);
    f.put("raft_members", cluster.members.len());
    // PUBLISHes and keyspace events this node sent to others that were lost (a node down, or
    // too slow).
    f.put("raft_messages_dropped", cluster.messages_dropped());
    let membership = m.membership_config.membership();
    let voters: Vec<u64> = membership.voter_ids().collect();
    f.put("raft_voters", voters.len());
    f.put(
        "raft_learners",
        membership.nodes().count().saturating_sub(voters.len()),
    );
    for (id, m) in &cluster.members {
        f.put(
            &format!("raft_member{id}"),
            format!("client={},bus={}", m.client, m.bus),
        );
    }
}

/// User and system CPU seconds of the process (`None` if unknown), from `/proc/<path>/stat`.
fn cpu_seconds(path: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold blanks, in parentheses): utime and stime
    // are the 14th and 15th fields of the line, in clock ticks (100 per second on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? / 100.0, ticks(12)? / 100.0))
}

fn cpu(f: &mut Fields<'_>) {
    let (user, sys) = cpu_seconds("/proc/self/stat").unwrap_or_default();
    let main = format!("/proc/self/task/{}/stat", std::process::id());
    let (main_user, main_sys) = cpu_seconds(&main).unwrap_or_default();
    f.put("used_cpu_sys", format!("{sys:.6}"));
    f.put("used_cpu_user", format!("{user:.6}"));
    f.put("used_cpu_sys_children", "0.000000");
    f.put("used_cpu_user_children", "0.000000");
    f.put("used_cpu_sys_main_thread", format!("{main_sys:.6}"));
    f.put("used_cpu_user_main_thread", format!("{main_user:.6}"));
}

/// `latency_percentiles_usec_<command>:p50=…,p99=…,p99.9=…`, at the percentiles of
/// `latency-tracking-info-percentiles`, while `latency-tracking` is on.
fn latencystats(sh: &Shared, f: &mut Fields<'_>) {
    if knob_or(sh, "latency-tracking", "yes") != "yes" {
        return;
    }
    let percentiles: Vec<f64> = knob_or(sh, "latency-tracking-info-percentiles", "50 99 99.9")
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    for (name, h) in sh.command_stats.latencies() {
        let values: Vec<String> = percentiles
            .iter()
            .filter_map(|&p| Some(format!("p{p}={:.3}", h.percentile_usec(p)?)))
            .collect();
        f.put(
            &format!("latency_percentiles_usec_{name}"),
            values.join(","),
        );
    }
}

/// Keys in `db`, how many of them expire, and their mean time to live in milliseconds.
/// Walks the database.
fn count_keys(ctx: &mut Ctx<'_, '_>, db: u8) -> Result<(u64, u64, u64), CmdError> {
    let (mut keys, mut expires, mut ttl_ms) = (0u64, 0u64, 0u128);
    let stored = ctx.stored(db);
    ctx.walk_keys(db, Bound::Unbounded, STEP, |ctx, batch| {
        keys += batch.len() as u64;
        if let Store::Read(d) = &ctx.store {
            for k in &batch {
                if let Some(t) = d.ttl(keyspace::engine_key(stored, k))? {
                    expires += 1;
                    ttl_ms += t.as_millis();
                }
            }
        }
        Ok(true)
    })?;
    let avg = if expires == 0 {
        0
    } else {
        (ttl_ms / u128::from(expires)) as u64
    };
    Ok((keys, expires, avg))
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn human_sizes_read_like_redis() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(965_928), "943.29K");
        assert_eq!(human(12_201_984), "11.64M");
        assert_eq!(human(25_276_182_528), "23.54G");
    }
}

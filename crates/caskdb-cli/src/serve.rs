//! `caskdb serve`: settings from a TOML file and flags, then the server on a tokio runtime.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use caskdb_server::{AppendFsync, Config, Server};

/// Flags of `caskdb serve`; each overrides the config file.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Addresses to listen on [default: 127.0.0.1].
    #[arg(long, num_args = 1.., value_name = "ADDR")]
    bind: Option<Vec<IpAddr>>,
    /// TCP port [default: 6380].
    #[arg(long)]
    port: Option<u16>,
    /// A TOML file with redis.conf names: bind, port, dir, appendfsync, requirepass,
    /// maxclients, timeout, proto-max-bulk-len, protected-mode; for a group also node-id,
    /// cluster, cluster-timeout, cluster-election-timeout, cluster-secret, masterauth.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// When writes reach the disk: always (before the reply), everysec, no [default: everysec].
    #[arg(long, value_parser = ["always", "everysec", "no"])]
    appendfsync: Option<String>,
    /// Require AUTH with this password (also read from CASKDB_REQUIREPASS).
    #[arg(long, env = "CASKDB_REQUIREPASS", hide_env_values = true)]
    requirepass: Option<String>,
    /// Most clients connected at once [default: 10000].
    #[arg(long)]
    maxclients: Option<u64>,
    /// Close clients idle for this many seconds; 0 = never [default: 0].
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Refuse a non-loopback bind without a password: yes or no [default: yes].
    #[arg(long, value_parser = ["yes", "no"])]
    protected_mode: Option<String>,
    /// This node's id in a replicated group (with --cluster).
    #[arg(long, value_name = "N")]
    node_id: Option<u64>,
    /// The replicated group's members, the same list on every node:
    /// "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003" (client addresses; Raft traffic
    /// goes to the port + 10000, or to the port given as id=host:port@busport).
    #[arg(long, value_name = "MEMBERS")]
    cluster: Option<String>,
}

pub fn run(args: ServeArgs, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path).map_err(anyhow::Error::msg)?,
        None => Config::default(),
    };
    if let Some(dir) = dir {
        config.dir = dir;
    }
    if let Some(bind) = args.bind {
        config.bind = bind;
    }
    if let Some(port) = args.port {
        config.port = port;
    }
    if let Some(a) = &args.appendfsync {
        config.appendfsync = AppendFsync::parse(a).context("appendfsync")?;
    }
    if let Some(p) = args.requirepass {
        config.requirepass = (!p.is_empty()).then_some(p);
    }
    if let Some(n) = args.maxclients {
        anyhow::ensure!(n >= 1, "--maxclients must be at least 1");
        config.maxclients = n;
    }
    if let Some(t) = args.timeout {
        config.timeout = t;
    }
    if let Some(p) = &args.protected_mode {
        config.protected_mode = p == "yes";
    }
    if let Some(id) = args.node_id {
        config.node_id = Some(id);
    }
    if let Some(c) = &args.cluster {
        config.apply("cluster", c).map_err(anyhow::Error::msg)?;
    }
    // Descriptors: one per client plus the store's files; raise the soft limit as far as the
    // hard one allows, as Redis does for maxclients.
    raise_nofile_limit(config.maxclients + 64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("caskdb-server")
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let server = Server::bind(config).await?;
        server.run().await
    })?;
    Ok(ExitCode::SUCCESS)
}

fn raise_nofile_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                tracing::warn!("could not raise the descriptor limit to {want}");
            }
        }
    }
}

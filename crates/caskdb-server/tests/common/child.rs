//! A server in a child process, for tests that kill it or watch its memory: the test binary
//! runs itself again with one ignored test, which calls [`serve`]; the parent holds it as a
//! [`ServerProcess`], built on the test kit's `ChildTest`.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use caskdb_server::{Config, Server};
use caskdb_testkit::child::{self, ChildTest};

use super::Raw;

/// The key under which the child reports its address.
const ADDR_KEY: &str = "caskdb-child-server-addr";

/// In the child: serves `config` until SHUTDOWN, after reporting its address to the parent.
/// Exits when the parent's end of stdin closes, so it never outlives the test process.
pub fn serve(config: Config) {
    child::exit_with_parent();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = Server::bind(config).await.expect("the server binds");
        child::report(ADDR_KEY, server.local_addrs()[0]);
        server.run().await.expect("the server stops cleanly");
    });
}

/// In the child of a crash test: serves the directory named by environment variable `var`
/// under `appendfsync always`. Without the variable (the ignored test run on its own) it
/// returns at once.
pub fn serve_always_in(var: &str) {
    let Some(dir) = std::env::var_os(var) else {
        return;
    };
    serve(Config {
        port: 0,
        dir: dir.into(),
        appendfsync: caskdb_server::AppendFsync::Always,
        ..Config::default()
    });
}

/// A server process: stopped with SHUTDOWN (and then it must exit successfully), killed with
/// SIGKILL, or killed when dropped.
pub struct ServerProcess {
    process: ChildTest,
    pub addr: SocketAddr,
    pub pid: u32,
}

impl ServerProcess {
    /// Runs the ignored test `test` of this binary as the server, with `envs` set, and waits
    /// up to `wait` for its address.
    pub fn spawn(test: &str, envs: &[(&str, &OsStr)], wait: Duration) -> ServerProcess {
        let process = ChildTest::spawn(test, envs, Stdio::inherit());
        let addr = process
            .next(ADDR_KEY, wait)
            .unwrap_or_else(|e| panic!("the server process did not report its address: {e}"));
        ServerProcess {
            pid: process.pid(),
            addr: addr.parse().expect("an address"),
            process,
        }
    }

    pub fn raw(&self) -> Raw {
        Raw::connect(self.addr)
    }

    /// The exit status, if the process exits within `limit`.
    pub fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.process.exited_within(limit)
    }

    /// SHUTDOWN, which closes the connection without a reply; then the process must exit
    /// successfully (the store closed cleanly) within `limit`.
    pub fn stop(mut self, limit: Duration) {
        let mut c = self.raw();
        c.send(&["SHUTDOWN"]);
        assert_eq!(
            c.read_to_end(),
            Vec::<u8>::new(),
            "SHUTDOWN closes silently"
        );
        let status = self
            .exited_within(limit)
            .expect("the server process exits after SHUTDOWN");
        assert!(status.success(), "server process: {status}");
    }

    /// kill -9.
    pub fn kill(mut self) {
        let status = self.process.kill();
        assert!(!status.success(), "killed: {status}");
    }
}

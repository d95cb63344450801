//! A server in a child process, for tests that kill it or watch its memory: the test binary
//! runs itself again with one ignored test, which calls [`serve`].

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use caskdb_server::{Config, Server};

/// The line prefix the child prints its address after.
const ADDR_LINE: &str = "caskdb-child-server-addr=";

/// In the child: serves `config` until SHUTDOWN, after printing its address for [`spawn`].
/// Exits when the parent's end of stdin closes, so it never outlives the test process.
pub fn serve(config: Config) {
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = Server::bind(config).await.expect("the server binds");
        println!("{ADDR_LINE}{}", server.local_addrs()[0]);
        std::io::stdout().flush().unwrap();
        server.run().await.expect("the server stops cleanly");
    });
}

/// In the parent: runs the ignored test `test` of this test binary as a child, with `envs`
/// set (stdin piped: dropping it ends the child), and returns the child with the address it
/// reported within `wait`.
pub fn spawn(test: &str, envs: &[(&str, &OsStr)], wait: Duration) -> (Child, SocketAddr) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        test,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start the server process");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads the address, then drains the rest (libtest's lines) so the child never blocks.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest's "test <name> ... " may come first on the line.
            if let Some((_, addr)) = line.split_once(ADDR_LINE) {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    match rx.recv_timeout(wait) {
        Ok(a) => (child, a.parse().expect("an address")),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server process did not report its address");
        }
    }
}

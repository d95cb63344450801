//! A server process started with [`super::child::spawn`]: stopped with SHUTDOWN (and then it
//! must exit successfully), killed with SIGKILL, or killed when dropped.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ExitStatus};
use std::time::{Duration, Instant};

use super::Raw;

pub struct ServerProcess {
    child: Option<Child>,
    /// Kept open: the child exits when it closes.
    stdin: Option<ChildStdin>,
    pub addr: SocketAddr,
    pub pid: u32,
}

impl ServerProcess {
    /// Runs the ignored test `test` of this binary as the server (see `child::spawn`).
    pub fn spawn(test: &str, envs: &[(&str, &OsStr)], wait: Duration) -> ServerProcess {
        let (mut child, addr) = super::child::spawn(test, envs, wait);
        ServerProcess {
            pid: child.id(),
            stdin: child.stdin.take(),
            child: Some(child),
            addr,
        }
    }

    pub fn raw(&self) -> Raw {
        Raw::connect(self.addr)
    }

    /// The exit status, if the process exits within `limit` (polled).
    pub fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
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
        let mut child = self.child.take().unwrap();
        child.kill().expect("SIGKILL");
        let status = child.wait().unwrap();
        assert!(!status.success(), "killed: {status}");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        drop(self.stdin.take());
    }
}

//! Tests that kill a process: the test binary runs itself again with one ignored test as the
//! child, talks to it through stdout lines, and kills it with SIGKILL.
//!
//! The child side: [`exit_with_parent`] so that it never outlives the test, [`ack`] after each
//! acknowledged operation (or [`report`] of any value). The parent side: [`ChildTest`].

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// In the child: exits as soon as the parent's end of stdin closes (the parent died or dropped
/// its [`ChildTest`]).
pub fn exit_with_parent() {
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        std::process::exit(0);
    });
}

/// In the child: tells the parent `key` is `value` (one line `key=value`).
pub fn report(key: &str, value: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    // A parent that stopped reading has killed us or is about to.
    let _ = writeln!(out, "{key}={value}");
    let _ = out.flush();
}

/// In the child: tells the parent operation `n` was acknowledged.
pub fn ack(n: u64) {
    report("ack", n);
}

/// A running child test, its stdout read line by line in a thread (so a child that hangs is
/// noticed instead of blocking the test).
pub struct ChildTest {
    child: Child,
    /// Held apart from `child`: `Child::wait` would close it, and a child that called
    /// [`exit_with_parent`] exits when it closes.
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl ChildTest {
    /// Runs the ignored test `test` of this test binary as a child, with `envs` set and stdin
    /// piped, its stderr going to `stderr`.
    ///
    /// # Panics
    /// If the process cannot be started.
    pub fn spawn(test: &str, envs: &[(&str, &OsStr)], stderr: Stdio) -> ChildTest {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut cmd = Command::new(exe);
        cmd.args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start the child test process");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildTest {
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The value of the next `key=value` line within `wait` (other lines skipped); `Err` if
    /// the child ended or stayed silent that long.
    pub fn next(&self, key: &str, wait: Duration) -> Result<String, RecvTimeoutError> {
        let prefix = format!("{key}=");
        loop {
            let line = self.lines.recv_timeout(wait)?;
            // libtest's "test <name> ... " may come first on the line.
            if let Some((_, value)) = line.split_once(&prefix) {
                return Ok(value.trim().to_string());
            }
        }
    }

    /// Reads acks until `until` operations are acknowledged, then kills the child (SIGKILL),
    /// reaps it and counts the acks it printed before dying. Returns the number acknowledged
    /// (at least `until` unless the child ended on its own) and how the child ended.
    ///
    /// # Errors
    /// The number acknowledged so far, if no ack came for `stall`.
    pub fn kill_after_acks(
        mut self,
        first: u64,
        until: u64,
        stall: Duration,
    ) -> Result<(u64, ExitStatus), u64> {
        let mut acked = first;
        let parse = |v: String| v.parse::<u64>().map(|n| n + 1);
        loop {
            match self.next("ack", stall) {
                Ok(v) => {
                    acked = parse(v).unwrap_or(acked).max(acked);
                    if acked >= until {
                        break;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => return Err(acked),
            }
        }
        let status = self.kill();
        // Acks printed before the kill are still in the pipe: every one of them counts.
        while let Ok(v) = self.next("ack", Duration::from_secs(60)) {
            acked = parse(v).unwrap_or(acked).max(acked);
        }
        Ok((acked, status))
    }

    /// Kills the child with SIGKILL (unless it already ended) and returns how it ended.
    ///
    /// # Panics
    /// If the child cannot be reaped.
    pub fn kill(&mut self) -> ExitStatus {
        // An error means it has been reaped already; `wait` then returns its status.
        let _ = self.child.kill();
        self.child.wait().expect("reap the child")
    }

    /// How the child ended, if it ends within `limit`. Waits on a pidfd (readable once the
    /// process has exited), so nothing is polled and no other process's pid can be hit.
    ///
    /// # Panics
    /// If the kernel has no `pidfd_open` (Linux before 5.3).
    pub fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: plain syscalls; the fd returned is ours alone and closed by OwnedFd.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut poll = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, ms) };
        if ready <= 0 {
            return None;
        }
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for ChildTest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.stdin.take());
    }
}

//! Tests that kill a process: the test binary runs itself again with one ignored test as the
//! child, talks to it through stdout lines, and kills it with SIGKILL.
//!
//! The child side: [`exit_with_parent`] so that it never outlives the test, [`ack`] after each
//! acknowledged operation (or [`report`] of any value). The parent side: [`ChildTest`].

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
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
    /// `None` once a thread waits for it ([`ChildTest::exited_within`]).
    child: Option<Child>,
    pid: u32,
    /// The exit status, from the waiting thread.
    exit: Option<Receiver<ExitStatus>>,
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
            pid: child.id(),
            child: Some(child),
            exit: None,
            lines,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
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
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            return child.wait().expect("reap the child");
        }
        let exit = self.exit.take().expect("a child or its waiter");
        match exit.try_recv() {
            Ok(status) => status,
            Err(_) => {
                // Still running (its waiter has not reaped it, so the pid is still ours).
                // SAFETY: a plain syscall on our own child's pid.
                unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
                exit.recv().expect("the waiter reports the exit")
            }
        }
    }

    /// How the child ended, if it ends within `limit` (waited for by a thread, not polled).
    pub fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        if let Some(mut child) = self.child.take() {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                if let Ok(status) = child.wait() {
                    let _ = tx.send(status);
                }
            });
            self.exit = Some(rx);
        }
        let status = self.exit.as_ref()?.recv_timeout(limit).ok()?;
        self.exit = None;
        Some(status)
    }
}

impl Drop for ChildTest {
    fn drop(&mut self) {
        let running = match &self.exit {
            Some(exit) => matches!(exit.try_recv(), Err(TryRecvError::Empty)),
            None => self.child.is_some(),
        };
        if running {
            self.kill();
        }
    }
}

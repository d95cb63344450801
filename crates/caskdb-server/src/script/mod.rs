//! Scripting: EVAL's script cache over one Lua 5.1 VM (`vm.rs`, sandboxed by `prelude.lua`),
//! the libraries Redis gives scripts (`libs`), the conversions between replies and Lua values
//! (`convert.rs`), and what the server must know while a script runs: who runs it since when
//! (BUSY), whether it wrote (SCRIPT KILL), and the kill switch.
//!
//! A script runs inside one engine transaction that dispatch opens (`cmd/dispatch.rs`): its
//! commands go through the same `execute` as EXEC's, so it is atomic and lands as one record.

pub(crate) mod libs;

mod convert;
mod vm;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

pub use vm::Call;
use vm::Vm;

use crate::frame::Frame;

/// A script's shebang flags (`#!lua flags=no-writes,…`); a script without a shebang is in
/// compatibility mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    pub compat: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
    pub no_cluster: bool,
    pub allow_cross_slot_keys: bool,
}

impl ScriptFlags {
    /// Reads a body's shebang line: the flags, and where the code starts (the line feed is
    /// kept, so that line numbers stay the user's). Redis's error texts.
    pub fn parse(body: &[u8]) -> Result<(ScriptFlags, usize), String> {
        if !body.starts_with(b"#!") {
            return Ok((
                ScriptFlags {
                    compat: true,
                    ..ScriptFlags::default()
                },
                0,
            ));
        }
        let Some(end) = body.iter().position(|&b| b == b'\n') else {
            return Err("Invalid script shebang".into());
        };
        let line = String::from_utf8_lossy(&body[..end]);
        let mut parts = line.split_ascii_whitespace();
        let Some(engine) = parts.next() else {
            return Err("Invalid engine in script shebang".into());
        };
        if engine != "#!lua" {
            return Err(format!("Unexpected engine in script shebang: {engine}"));
        }
        let mut flags = ScriptFlags::default();
        for part in parts {
            let Some(list) = part.strip_prefix("flags=") else {
                return Err(format!("Unknown lua shebang option: {part}"));
            };
            for f in list.split(',').filter(|f| !f.is_empty()) {
                match f {
                    "no-writes" => flags.no_writes = true,
                    "allow-oom" => flags.allow_oom = true,
                    "allow-stale" => flags.allow_stale = true,
                    "no-cluster" => flags.no_cluster = true,
                    "allow-cross-slot-keys" => flags.allow_cross_slot_keys = true,
                    other => return Err(format!("Unexpected flag in script shebang: {other}")),
                }
            }
        }
        Ok((flags, end))
    }
}

/// A script in the cache: its body and flags.
struct Cached {
    flags: ScriptFlags,
}

/// The script running now.
struct Running {
    started: Instant,
    /// Run by EVAL/EVALSHA (else FCALL): which BUSY text the others get.
    eval: bool,
    client: u64,
    wrote: bool,
}

/// What SCRIPT KILL / FUNCTION KILL found.
pub enum KillOutcome {
    /// No script runs.
    NotBusy,
    /// It already wrote: it cannot be stopped without losing atomicity.
    Unkillable,
    /// A function asked to stop by SCRIPT KILL, or an EVAL by FUNCTION KILL.
    WrongKind,
    /// It will stop at its next hook.
    Killed,
}

/// Scripting's shared state.
pub(crate) struct Scripts {
    vm: Mutex<Option<Vm>>,
    cache: Mutex<HashMap<String, Cached>>,
    kill: Arc<AtomicBool>,
    /// Set by a shutdown: the running script stops and its writes are dropped.
    aborting: AtomicBool,
    running: Mutex<Option<Running>>,
    ended: tokio::sync::Notify,
    version: String,
}

/// What one run gave.
pub struct Ran {
    pub reply: Frame,
    /// A shutdown stopped it: its writes must not be committed.
    pub aborted: bool,
}

impl Scripts {
    pub fn new(version: &str) -> Scripts {
        Scripts {
            vm: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
            kill: Arc::new(AtomicBool::new(false)),
            aborting: AtomicBool::new(false),
            running: Mutex::new(None),
            ended: tokio::sync::Notify::new(),
            version: version.to_string(),
        }
    }

    fn with_vm<T>(&self, f: impl FnOnce(&mut Vm) -> T) -> Result<T, String> {
        let mut guard = self.vm.lock();
        if guard.is_none() {
            let vm = Vm::new(self.kill.clone(), &self.version)
                .map_err(|e| format!("cannot start the Lua VM: {e}"))?;
            *guard = Some(vm);
        }
        match guard.as_mut() {
            Some(vm) => Ok(f(vm)),
            None => Err("cannot start the Lua VM".into()),
        }
    }

    /// SCRIPT LOAD and EVAL's first step: the body's SHA1, compiled and cached.
    pub fn load(&self, body: &[u8]) -> Result<String, String> {
        let sha = vm::sha1_hex(body);
        if self.cache.lock().contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, skip) = ScriptFlags::parse(body)?;
        self.with_vm(|vm| vm.compile(&sha, &body[skip..]))??;
        self.cache.lock().insert(sha.clone(), Cached { flags });
        Ok(sha)
    }

    /// The flags of cached script `sha` (lowercase), if cached.
    pub fn flags(&self, sha: &str) -> Option<ScriptFlags> {
        self.cache.lock().get(sha).map(|c| c.flags)
    }

    /// Whether `sha` names a cached script (exactly: SCRIPT EXISTS does not fold case).
    pub fn exists(&self, sha: &[u8]) -> bool {
        std::str::from_utf8(sha).is_ok_and(|sha| self.cache.lock().contains_key(sha))
    }

    /// SCRIPT FLUSH.
    pub fn flush(&self) {
        self.cache.lock().clear();
        let _ = self.with_vm(Vm::flush);
    }

    /// Runs cached script `sha` for client `client`, its commands through `call`.
    pub fn run_eval(
        &self,
        sha: &str,
        keys: &[Bytes],
        args: &[Bytes],
        client: u64,
        call: &mut Call<'_>,
    ) -> Ran {
        self.run(sha, sha, keys, args, true, client, call)
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        name: &str,
        funcname: &str,
        keys: &[Bytes],
        args: &[Bytes],
        eval: bool,
        client: u64,
        call: &mut Call<'_>,
    ) -> Ran {
        let mut guard = self.vm.lock();
        let Some(vm) = guard.as_mut() else {
            return Ran {
                reply: Frame::Error("NOSCRIPT No matching script. Please use EVAL.".into()),
                aborted: false,
            };
        };
        *self.running.lock() = Some(Running {
            started: Instant::now(),
            eval,
            client,
            wrote: false,
        });
        if self.aborting.load(Ordering::Relaxed) {
            self.kill.store(true, Ordering::Relaxed);
        }
        let outcome = vm.run(name, funcname, keys, args, eval, call);
        drop(guard);
        *self.running.lock() = None;
        self.ended.notify_waiters();
        Ran {
            reply: outcome.reply,
            aborted: outcome.killed && self.aborting.load(Ordering::Relaxed),
        }
    }

    /// Records that the running script wrote (SCRIPT KILL then refuses).
    pub fn note_write(&self) {
        if let Some(r) = self.running.lock().as_mut() {
            r.wrote = true;
        }
    }

    /// Since when a script of another client than `client` runs, and whether by EVAL.
    pub fn running_for_other(&self, client: u64) -> Option<(Instant, bool)> {
        self.running
            .lock()
            .as_ref()
            .filter(|r| r.client != client)
            .map(|r| (r.started, r.eval))
    }

    /// Resolves when the running script ends. Create and `enable` it before looking at
    /// [`Scripts::running_for_other`].
    pub fn ended(&self) -> tokio::sync::futures::Notified<'_> {
        self.ended.notified()
    }

    /// SCRIPT KILL / FUNCTION KILL (`eval`: which of the two asks; the other kind of script
    /// is not its to kill).
    pub fn kill(&self, eval: bool) -> KillOutcome {
        let running = self.running.lock();
        let Some(r) = running.as_ref() else {
            return KillOutcome::NotBusy;
        };
        if r.wrote {
            return KillOutcome::Unkillable;
        }
        if r.eval != eval {
            return KillOutcome::WrongKind;
        }
        self.kill.store(true, Ordering::Relaxed);
        KillOutcome::Killed
    }

    /// A shutdown: the running script (and any started from now on) stops; its writes are
    /// dropped.
    pub fn abort(&self) {
        self.aborting.store(true, Ordering::Relaxed);
        if self.running.lock().is_some() {
            self.kill.store(true, Ordering::Relaxed);
        }
    }
}

//! Scripting: EVAL's script cache over one Lua 5.1 VM (`vm.rs`, sandboxed by `prelude.lua`),
//! the libraries Redis gives scripts (`libs`), the conversions between replies and Lua values
//! (`convert.rs`), and what the server must know while a script runs: who runs it since when
//! (BUSY), whether it wrote (SCRIPT KILL), and the kill switch.
//!
//! A script runs inside one engine transaction that dispatch opens (`cmd/dispatch.rs`): its
//! commands go through the same `execute` as EXEC's, so it is atomic and lands as one record.

pub(crate) mod libs;

mod call;
mod convert;
mod functions;
mod vm;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

pub use call::Call;
use functions::Registry;
pub use functions::{FunctionInfo, Library, metadata as library_name};
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
    /// The flags' names, in Redis's order (FUNCTION LIST).
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.no_writes, "no-writes"),
            (self.allow_oom, "allow-oom"),
            (self.allow_stale, "allow-stale"),
            (self.no_cluster, "no-cluster"),
            (self.allow_cross_slot_keys, "allow-cross-slot-keys"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }

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

/// A script in the cache: its flags (its body is the key of `ScriptCache::by_body`).
struct Cached {
    flags: ScriptFlags,
}

/// EVAL's cache: the compiled scripts by SHA1, and the SHA1s by body, so that EVAL finds its
/// script without hashing the body again (SHA1 in software was a tenth of a short script's
/// time). Both change under one lock, and only under the VM's: a body found is always a script
/// cached and compiled.
#[derive(Default)]
struct ScriptCache {
    by_sha: HashMap<String, Cached>,
    /// A body's SHA1 and flags: EVAL finds both in one lookup.
    by_body: HashMap<Bytes, (String, ScriptFlags)>,
}

/// The script running now.
struct Running {
    started: Instant,
    /// The function's name, or the script's SHA1.
    name: String,
    /// The command that started it.
    command: Vec<Bytes>,
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
    /// FUNCTION's own VM (Redis runs libraries apart from EVAL's scripts), and its libraries.
    fvm: Mutex<Option<Vm>>,
    registry: Mutex<Registry>,
    cache: Mutex<ScriptCache>,
    kill: Arc<AtomicBool>,
    /// Set by a shutdown: the running script stops and its writes are dropped.
    aborting: AtomicBool,
    running: Mutex<Option<Running>>,
    /// Whether `running` holds a script (read without the lock by every request).
    busy: AtomicBool,
    ended: tokio::sync::Notify,
    /// Scripts run one at a time: connections wait for this (asynchronously, in FIFO order)
    /// rather than on the VM's lock, so that waiting scripts hold no thread.
    pub gate: Arc<tokio::sync::Mutex<()>>,
    /// Connections waiting for the gate asynchronously (the gate goes to them first).
    pub gate_waiters: AtomicUsize,
    /// What each VM (EVAL's, FUNCTION's) held when last used: INFO reads it without the VM's
    /// lock, which a running script holds.
    vm_bytes: [AtomicUsize; 2],
    version: String,
}

/// INFO's figures of scripts ([`Scripts::counts`]).
pub struct ScriptCounts {
    pub cached_scripts: usize,
    pub cached_bytes: usize,
    pub libraries: usize,
    pub functions: usize,
    pub library_bytes: usize,
    /// What EVAL's VM held when last used.
    pub vm_eval: usize,
    /// What FUNCTION's VM held when last used.
    pub vm_functions: usize,
}

/// Marks the running script as ended when dropped.
struct RunEnded<'a>(&'a Scripts);

impl Drop for RunEnded<'_> {
    fn drop(&mut self) {
        *self.0.running.lock() = None;
        self.0.busy.store(false, Ordering::Release);
        self.0.ended.notify_waiters();
    }
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
            fvm: Mutex::new(None),
            registry: Mutex::new(Registry::default()),
            cache: Mutex::new(ScriptCache::default()),
            kill: Arc::new(AtomicBool::new(false)),
            aborting: AtomicBool::new(false),
            running: Mutex::new(None),
            busy: AtomicBool::new(false),
            ended: tokio::sync::Notify::new(),
            gate: Arc::new(tokio::sync::Mutex::new(())),
            gate_waiters: AtomicUsize::new(0),
            vm_bytes: [AtomicUsize::new(0), AtomicUsize::new(0)],
            version: version.to_string(),
        }
    }

    fn with_vm<T>(&self, f: impl FnOnce(&mut Vm) -> T) -> Result<T, String> {
        self.with(&self.vm, false, f)
    }

    fn with<T>(
        &self,
        slot: &Mutex<Option<Vm>>,
        functions: bool,
        f: impl FnOnce(&mut Vm) -> T,
    ) -> Result<T, String> {
        let mut guard = slot.lock();
        if guard.is_none() {
            let vm = Vm::new(self.kill.clone(), &self.version, functions)
                .map_err(|e| format!("cannot start the Lua VM: {e}"))?;
            *guard = Some(vm);
        }
        match guard.as_mut() {
            Some(vm) => {
                let r = f(vm);
                self.vm_bytes[usize::from(functions)].store(vm.used_memory(), Ordering::Relaxed);
                Ok(r)
            }
            None => Err("cannot start the Lua VM".into()),
        }
    }

    /// FUNCTION LOAD: loads library `code` (replacing one of the same name if `replace`);
    /// returns its name, or Redis's error text.
    pub fn load_library(&self, code: &[u8], replace: bool) -> Result<String, String> {
        let (name, start) = functions::metadata(code)?;
        if !replace && self.registry.lock().libraries.contains_key(&name) {
            return Err(format!("Library '{name}' already exists"));
        }
        let registered = self.with(&self.fvm, true, |vm| vm.load_library(&code[start..]))??;
        let mut registry = self.registry.lock();
        registry.check(&name, &registered, replace)?;
        let lib = Library {
            name: name.clone(),
            code: Bytes::copy_from_slice(code),
            functions: registered
                .iter()
                .map(|r| FunctionInfo {
                    name: r.name.clone(),
                    description: r.description.clone(),
                    flags: r.flags,
                })
                .collect(),
        };
        let gone = registry.add(lib);
        drop(registry);
        self.with(&self.fvm, true, |vm| {
            for f in &gone {
                vm.uninstall(f);
            }
            for r in registered {
                vm.install(&r.name, r.callback);
            }
        })?;
        Ok(name)
    }

    /// FUNCTION DELETE: whether library `name` was there.
    pub fn delete_library(&self, name: &str) -> bool {
        let Some(lib) = self.registry.lock().remove(name) else {
            return false;
        };
        let _ = self.with(&self.fvm, true, |vm| {
            for f in &lib.functions {
                vm.uninstall(&f.name);
            }
        });
        true
    }

    /// Every loaded library, by name.
    pub fn libraries(&self) -> Vec<Library> {
        self.registry.lock().libraries.values().cloned().collect()
    }

    /// FUNCTION FLUSH: every library gone (a fresh VM).
    pub fn flush_functions(&self) {
        *self.registry.lock() = Registry::default();
        *self.fvm.lock() = None;
    }

    /// A function's flags, if it exists.
    pub fn function_flags(&self, name: &str) -> Option<ScriptFlags> {
        let registry = self.registry.lock();
        let lib = registry.libraries.get(registry.owner.get(name)?)?;
        lib.functions
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.flags)
    }

    /// The running script's name (function name, or SHA1), command and duration, for
    /// FUNCTION STATS; and whether it is an EVAL.
    pub fn running_info(&self) -> Option<(String, Vec<Bytes>, u128, bool)> {
        self.running.lock().as_ref().map(|r| {
            (
                r.name.clone(),
                r.command.clone(),
                r.started.elapsed().as_millis(),
                r.eval,
            )
        })
    }

    /// Runs function `name` (FCALL) for client `client`.
    pub fn run_function(
        &self,
        name: &str,
        keys: &[Bytes],
        args: &[Bytes],
        client: u64,
        command: &[Bytes],
        call: &mut Call<'_>,
    ) -> Ran {
        self.run(
            &self.fvm, name, name, keys, args, false, client, command, call,
        )
    }

    /// SCRIPT LOAD and EVAL's first step: the body's SHA1 and flags, compiled and cached.
    pub fn load(&self, body: &[u8]) -> Result<(String, ScriptFlags), String> {
        if let Some(found) = self.cache.lock().by_body.get(body) {
            return Ok(found.clone());
        }
        let sha = vm::sha1_hex(body);
        let (flags, skip) = ScriptFlags::parse(body)?;
        // Compiled and cached under the VM's lock, as SCRIPT FLUSH empties both: a script in
        // the cache is always one the VM holds.
        self.with_vm(|vm| {
            vm.compile(&sha, &body[skip..])?;
            let mut cache = self.cache.lock();
            cache.by_sha.insert(sha.clone(), Cached { flags });
            cache
                .by_body
                .insert(Bytes::copy_from_slice(body), (sha.clone(), flags));
            Ok::<_, String>(())
        })??;
        Ok((sha, flags))
    }

    /// INFO's figures of scripts: EVAL's cached scripts and the bytes of their bodies; the
    /// libraries, their functions and the bytes of their code.
    pub fn counts(&self) -> ScriptCounts {
        let cache = self.cache.lock();
        let registry = self.registry.lock();
        ScriptCounts {
            cached_scripts: cache.by_sha.len(),
            cached_bytes: cache.by_body.keys().map(Bytes::len).sum(),
            libraries: registry.libraries.len(),
            functions: registry.libraries.values().map(|l| l.functions.len()).sum(),
            library_bytes: registry.libraries.values().map(|l| l.code.len()).sum(),
            vm_eval: self.vm_bytes[0].load(Ordering::Relaxed),
            vm_functions: self.vm_bytes[1].load(Ordering::Relaxed),
        }
    }

    /// The flags of cached script `sha` (lowercase), if cached.
    pub fn flags(&self, sha: &str) -> Option<ScriptFlags> {
        self.cache.lock().by_sha.get(sha).map(|c| c.flags)
    }

    /// Whether `sha` names a cached script (exactly: SCRIPT EXISTS does not fold case).
    pub fn exists(&self, sha: &[u8]) -> bool {
        std::str::from_utf8(sha).is_ok_and(|sha| self.cache.lock().by_sha.contains_key(sha))
    }

    /// SCRIPT FLUSH.
    pub fn flush(&self) {
        let _ = self.with_vm(|vm| {
            *self.cache.lock() = ScriptCache::default();
            vm.flush();
        });
    }

    /// Runs cached script `sha` for client `client`, its commands through `call`.
    pub fn run_eval(
        &self,
        sha: &str,
        keys: &[Bytes],
        args: &[Bytes],
        client: u64,
        command: &[Bytes],
        call: &mut Call<'_>,
    ) -> Ran {
        self.run(&self.vm, sha, sha, keys, args, true, client, command, call)
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        slot: &Mutex<Option<Vm>>,
        name: &str,
        funcname: &str,
        keys: &[Bytes],
        args: &[Bytes],
        eval: bool,
        client: u64,
        command: &[Bytes],
        call: &mut Call<'_>,
    ) -> Ran {
        let mut guard = slot.lock();
        let Some(vm) = guard.as_mut() else {
            return Ran {
                reply: if eval {
                    Frame::Error("NOSCRIPT No matching script. Please use EVAL.".into())
                } else {
                    Frame::err("Function not found")
                },
                aborted: false,
            };
        };
        // Reset before the script shows as running: a SCRIPT KILL that sees it running must
        // not be undone by a late reset (the thread may be descheduled in between).
        self.kill.store(false, Ordering::Relaxed);
        self.busy.store(true, Ordering::Release);
        *self.running.lock() = Some(Running {
            started: Instant::now(),
            name: funcname.to_string(),
            command: command.to_vec(),
            eval,
            client,
            wrote: false,
        });
        if self.aborting.load(Ordering::Relaxed) {
            self.kill.store(true, Ordering::Relaxed);
        }
        // Ended also if the run unwinds (a command it called panicked): the server must not
        // stay BUSY.
        let ended = RunEnded(self);
        let outcome = vm.run(name, funcname, keys, args, eval, call);
        self.vm_bytes[usize::from(!eval)].store(outcome.memory, Ordering::Relaxed);
        drop(guard);
        drop(ended);
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
        if !self.busy.load(Ordering::Acquire) {
            return None;
        }
        self.running
            .lock()
            .as_ref()
            .filter(|r| r.client != client)
            .map(|r| (r.started, r.eval))
    }

    /// Whether a script runs and has run for longer than `d`.
    pub fn running_longer_than(&self, d: std::time::Duration) -> bool {
        self.busy.load(Ordering::Acquire)
            && self
                .running
                .lock()
                .as_ref()
                .is_some_and(|r| r.started.elapsed() > d)
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

//! The Lua 5.1 VM scripts run in: made once, sandboxed by `prelude.lua` as Redis 7.0
//! sandboxes its own, with the `redis` table, Redis's `math.random`, a hook that stops a killed
//! script, and a memory cap per run.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, Variadic, VmState};
use parking_lot::Mutex;

use super::call::{Call, Lent, Slot};
use super::convert::{self, reply_error_text};
use crate::frame::Frame;

/// Instructions between two looks at the kill flag (Redis: 100,000).
const HOOK_EVERY: u32 = 100_000;
/// Hooks between two hand-offs of a long script's runtime thread (about every 100 ms).
const HAND_OFF_EVERY: u32 = 100;

/// Gives the tasks queued on this tokio worker thread to another thread, for a script that
/// runs long: tokio cannot steal a worker's next task (its LIFO slot), so a client woken just
/// before the script started would otherwise wait for the script to end — no BUSY reply, no
/// SCRIPT KILL. `block_in_place` moves that task to the stealable queue and hands the worker
/// to a new thread; the short pause lets that thread take it, so that this one finishes the
/// script outside the worker pool.
fn hand_off_worker() {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(|| std::thread::sleep(std::time::Duration::from_millis(1)));
    }
}

/// Memory a script may allocate beyond what the VM holds when it starts.
pub const SCRIPT_MEMORY: usize = 256 << 20;
/// Garbage a run may leave to Lua's incremental collector; past it, a full collection.
const GARBAGE_MAX: usize = 32 << 20;

/// The error a killed script is stopped with.
#[derive(Debug)]
pub struct Killed;

impl std::fmt::Display for Killed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Script killed by user with SCRIPT KILL...")
    }
}

impl std::error::Error for Killed {}

/// Redis's rand48 (its `math.random`): one sequence for the server's life.
struct Rand48(u64);

impl Rand48 {
    const A: u64 = 0x5_DEEC_E66D;
    const C: u64 = 0xB;
    const MASK: u64 = (1 << 48) - 1;

    /// The state before any seed (Redis's, as rand48's).
    const START: u64 = 0x1234_ABCD_330E;

    fn seed(seed: i32) -> Rand48 {
        let s = u64::from(seed as u32);
        Rand48(((s << 16) | 0x330E) & Self::MASK)
    }

    fn next(&mut self) -> i32 {
        self.0 = (Self::A.wrapping_mul(self.0).wrapping_add(Self::C)) & Self::MASK;
        // The top 31 bits, as lrand48 returns them.
        (self.0 >> 17) as i32
    }
}

/// The outcome of one run.
pub struct Outcome {
    /// The reply to the caller.
    pub reply: Frame,
    /// The run was stopped by SCRIPT KILL or a shutdown.
    pub killed: bool,
    /// What the VM holds after the run (INFO's `used_memory_lua`).
    pub memory: usize,
}

/// A function a library registered while it loaded.
pub struct Registered {
    pub name: String,
    pub callback: Function,
    pub description: Option<String>,
    pub flags: super::ScriptFlags,
}

/// Registrations of the library loading now (`None`: none is loading).
type Loading = Arc<Mutex<Option<Vec<Registered>>>>;

/// The VM, and the compiled scripts by name.
pub struct Vm {
    lua: Lua,
    /// `bridge.run`: a library's code, protected.
    run: Function,
    /// `bridge.handler`: the error handler scripts and functions are called with.
    handler: Function,
    functions: HashMap<String, Function>,
    kill: Arc<AtomicBool>,
    bridge: Table,
    loading: Loading,
    slot: Arc<Slot>,
    /// What the VM held after its last full collection.
    collected_at: usize,
}

impl Vm {
    /// A fresh VM, for EVAL or (`functions`) for FUNCTION's libraries; `kill` stops the
    /// running script at its next hook.
    pub fn new(kill: Arc<AtomicBool>, version: &str, functions: bool) -> mlua::Result<Vm> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        let bridge = lua.create_table()?;
        let rand = Arc::new(Mutex::new(Rand48(Rand48::START)));
        let r = rand.clone();
        bridge.raw_set(
            "random",
            lua.create_function(move |lua, args: Variadic<Value>| {
                random(lua, &mut r.lock(), &args)
            })?,
        )?;
        bridge.raw_set(
            "randomseed",
            lua.create_function(move |lua, args: Variadic<Value>| {
                let seed = check_int(lua, &args, 0)?;
                *rand.lock() = Rand48::seed(seed);
                Ok(())
            })?,
        )?;
        bridge.raw_set(
            "errinfo",
            lua.create_function(|_, v: Value| Ok(error_info(&v)))?,
        )?;
        let slot = Arc::new(Slot::default());
        let redis = redis_table(&lua, version, &slot)?;
        bridge.raw_set("redis", redis.clone())?;
        let loading: Loading = Arc::new(Mutex::new(None));
        let l = loading.clone();
        bridge.raw_set(
            "register_function",
            lua.create_function(move |_, argv: Variadic<Value>| {
                let mut guard = l.lock();
                let Some(list) = guard.as_mut() else {
                    return Err(raise(
                        "ERR redis.register_function can only be called on FUNCTION LOAD command",
                    ));
                };
                let r = registration(&argv).map_err(|e| raise(format!("ERR {e}")))?;
                if !valid_name(&r.name) {
                    return Err(raise(format!("ERR {BAD_NAME}")));
                }
                if list.iter().any(|f| f.name == r.name) {
                    return Err(raise("ERR Function already exists in the library"));
                }
                list.push(r);
                Ok(())
            })?,
        )?;
        bridge.raw_set(
            "locate",
            lua.create_function(|lua, ()| {
                // The first frame that is the user's: neither C nor the prelude.
                for level in 1.. {
                    let Some(found) = lua.inspect_stack(level, |d| {
                        let src = d.source();
                        if src.what == "C" || src.source.as_deref() == Some("@caskdb") {
                            return None;
                        }
                        Some((
                            src.source.map(|s| s.into_owned()),
                            d.current_line().map(|l| l as i64),
                        ))
                    }) else {
                        break;
                    };
                    if let Some(place) = found {
                        return Ok(place);
                    }
                }
                Ok((None, None))
            })?,
        )?;
        super::libs::register_all(&lua)?;
        let mode = if functions { "functions" } else { "eval" };
        lua.load(include_str!("prelude.lua"))
            .set_name("@caskdb")
            .call::<()>((bridge.clone(), mode))?;
        let run: Function = bridge.raw_get("run")?;
        let handler: Function = bridge.raw_get("handler")?;
        let flag = kill.clone();
        let sl = slot.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, _| {
                if flag.load(Ordering::Relaxed) {
                    return Err(mlua::Error::external(Killed));
                }
                // A long script (and again every HAND_OFF_EVERY hooks): the tasks waiting on
                // this runtime thread go to another one.
                if sl.hooks.fetch_add(1, Ordering::Relaxed) % HAND_OFF_EVERY == 0 {
                    hand_off_worker();
                }
                Ok(VmState::Continue)
            },
        )?;
        Ok(Vm {
            lua,
            run,
            handler,
            functions: HashMap::new(),
            kill,
            bridge,
            loading,
            slot,
            collected_at: 0,
        })
    }

    /// FUNCTION LOAD's work in the VM: compiles a library's code (chunk `@user_function`) and
    /// runs it; returns the functions it registered, or Redis's error text.
    pub fn load_library(&mut self, code: &[u8]) -> Result<Vec<Registered>, String> {
        let f = self
            .lua
            .load(code)
            .set_name("@user_function")
            .set_mode(mlua::ChunkMode::Text)
            .into_function()
            .map_err(|e| {
                let msg = match &e {
                    mlua::Error::SyntaxError { message, .. } => message.clone(),
                    other => error_chain_text(other),
                };
                format!("Error compiling function: {msg}")
            })?;
        *self.loading.lock() = Some(Vec::new());
        let _ = self.bridge.raw_set("loading", true);
        self.kill.store(false, Ordering::Relaxed);
        let result: mlua::Result<(bool, Value)> = self.run.call((f,));
        let _ = self.bridge.raw_set("loading", Value::Nil);
        let registered = self.loading.lock().take().unwrap_or_default();
        match result {
            Ok((true, _)) => Ok(registered),
            Ok((false, err)) => {
                let text = match &err {
                    Value::Table(t) => match t.raw_get::<Value>("err") {
                        Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
                        _ => "ERR execution failure".into(),
                    },
                    _ => "ERR execution failure".into(),
                };
                Err(format!("Error registering functions: {text}"))
            }
            Err(e) => Err(format!(
                "Error registering functions: {}",
                error_chain_text(&e)
            )),
        }
    }

    /// Makes `callback` callable as function `name` (FCALL).
    pub fn install(&mut self, name: &str, callback: Function) {
        self.functions.insert(name.to_string(), callback);
    }

    /// Forgets function `name`.
    pub fn uninstall(&mut self, name: &str) {
        self.functions.remove(name);
    }

    /// Compiles a script body under `name` (chunk `@user_script`, as Redis names it);
    /// Redis's error text if it does not compile.
    pub fn compile(&mut self, name: &str, body: &[u8]) -> Result<(), String> {
        if self.functions.contains_key(name) {
            return Ok(());
        }
        let f = self
            .lua
            .load(body)
            .set_name("@user_script")
            .set_mode(mlua::ChunkMode::Text)
            .into_function()
            .map_err(|e| compile_error_text(&e))?;
        self.functions.insert(name.to_string(), f);
        Ok(())
    }

    /// What the VM holds, garbage included.
    pub fn used_memory(&self) -> usize {
        self.lua.used_memory()
    }

    /// Forgets every compiled script.
    pub fn flush(&mut self) {
        self.functions.clear();
        self.lua.gc_collect().ok();
        self.collected_at = self.lua.used_memory();
    }

    /// Runs compiled script `name`: as EVAL (KEYS and ARGV as globals) or as a function
    /// (keys and args as its two arguments). Commands go to `call`. `funcname` names the script
    /// in error replies.
    pub fn run(
        &mut self,
        name: &str,
        funcname: &str,
        keys: &[bytes::Bytes],
        args: &[bytes::Bytes],
        as_eval: bool,
        call: &mut Call<'_>,
    ) -> Outcome {
        let Some(f) = self.functions.get(name) else {
            return Outcome {
                reply: Frame::Error("NOSCRIPT No matching script. Please use EVAL.".into()),
                killed: false,
                memory: self.lua.used_memory(),
            };
        };
        // (The kill switch was reset by the caller, before the script showed as running.)
        let result = self.run_lent(f, funcname, keys, args, as_eval, call);
        // A run that left much garbage (one stopped by the memory cap leaves up to
        // SCRIPT_MEMORY) is collected now: the next run's cap counts from what the VM holds,
        // and would otherwise climb with the garbage, run after run.
        let mut memory = self.lua.used_memory();
        if memory > self.collected_at.saturating_add(GARBAGE_MAX) {
            let _ = self.lua.gc_collect();
            memory = self.lua.used_memory();
            self.collected_at = memory;
        }
        let killed = self.kill.swap(false, Ordering::Relaxed);
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => Frame::err(format!(
                "Error running script {funcname}, {}",
                error_chain_text(&e)
            )),
        };
        Outcome {
            reply,
            killed,
            memory,
        }
    }

    /// Runs `f` as EVAL (`keys` and `args` as the globals KEYS and ARGV) or as a function
    /// (as its two arguments), `call` lent to `redis.call` for the time of the run.
    ///
    /// The arguments are made and the script is called in one protected call through Lua's C
    /// API: through mlua's tables, each string and each `raw_set` takes its lock and a registry
    /// reference, and each protected call pushes two C closures (allocated, in Lua 5.1); under
    /// EVAL of a one-line script that was a tenth of the server's time. The arguments are made
    /// before the memory cap is set, so a large argument is not counted against the script.
    fn run_lent(
        &self,
        f: &Function,
        funcname: &str,
        keys: &[bytes::Bytes],
        args: &[bytes::Bytes],
        as_eval: bool,
        call: &mut Call<'_>,
    ) -> mlua::Result<Frame> {
        self.slot.resp3.store(false, Ordering::Relaxed);
        self.slot.hooks.store(0, Ordering::Relaxed);
        // (Left by a run that unwound before taking it.)
        self.slot.panic.lock().take();
        let mut call: &mut Call<'_> = call;
        self.slot
            .call
            .store((&raw mut call).cast::<()>(), Ordering::Release);
        let lent = Lent(&self.slot);
        let lua = &self.lua;
        // On the stack when this runs: the prelude's error handler, `f`. Nothing in it needs
        // dropping, so an error thrown through it (memory, while the arguments are made) is
        // safe. The script is called as xpcall would call it, without xpcall's Lua and C
        // frames: true and its result, or false and the handler's error table.
        let body = |state: *mut mlua::lua_State| {
            // SAFETY: `state` is the Lua state mlua hands to `exec_raw`'s closure, with the
            // handler and `f` on its stack; the stack is grown before the pushes, and every
            // pointer and length comes from a live slice.
            unsafe {
                use mlua::ffi;
                // Sized as Redis's, which grows them (`pairs` order depends on it).
                let array = |items: &[bytes::Bytes]| {
                    ffi::lua_createtable(state, convert::grown_array_size(items.len()), 0);
                    for (i, a) in items.iter().enumerate() {
                        ffi::lua_pushlstring(state, a.as_ptr().cast(), a.len());
                        ffi::lua_rawseti(state, -2, i as ffi::lua_Integer + 1);
                    }
                };
                // (Raises a Lua error if the stack cannot grow.)
                ffi::luaL_checkstack(state, 4, c"too many arguments".as_ptr());
                let nargs = if as_eval {
                    // Raw sets: the globals table is read-only to scripts.
                    ffi::lua_pushlstring(state, c"KEYS".as_ptr(), 4);
                    array(keys);
                    ffi::lua_rawset(state, ffi::LUA_GLOBALSINDEX);
                    ffi::lua_pushlstring(state, c"ARGV".as_ptr(), 4);
                    array(args);
                    ffi::lua_rawset(state, ffi::LUA_GLOBALSINDEX);
                    0
                } else {
                    array(keys);
                    array(args);
                    2
                };
                // The cap counts from what the VM holds with the arguments made.
                let limit = lua.used_memory().saturating_add(SCRIPT_MEMORY);
                let _ = lua.set_memory_limit(limit);
                let status = ffi::lua_pcall(state, nargs, 1, 1);
                // Handler, value → ok, value.
                ffi::lua_pushboolean(state, std::os::raw::c_int::from(status == 0));
                ffi::lua_replace(state, 1);
            }
        };
        // SAFETY: see `body`.
        let ran = unsafe { lua.exec_raw::<(bool, Value)>((&self.handler, f), body) };
        let _ = lua.set_memory_limit(0);
        drop(lent);
        if let Some(panic) = self.slot.panic.lock().take() {
            std::panic::resume_unwind(panic);
        }
        let (ok, value) = ran?;
        let resp3 = self.slot.resp3.load(Ordering::Relaxed);
        Ok(if ok {
            convert::lua_to_reply(&value, resp3)
        } else {
            script_error(&value, funcname)
        })
    }
}

/// An error a server function raises in a script: the text of the error table Redis would
/// raise (`ERR …`, `WRONGTYPE …`).
#[derive(Debug)]
pub struct ScriptError(pub String);

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScriptError {}

fn raise(text: impl Into<String>) -> mlua::Error {
    mlua::Error::external(ScriptError(text.into()))
}

/// Redis's text for a bad library or function name.
pub const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// Letters, digits and underscores, at least one.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `redis.register_function`'s arguments: `(name, callback)` or a table of named arguments.
fn registration(argv: &[Value]) -> Result<Registered, &'static str> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
        Value::Number(n) => Some(crate::frame::format_double(*n)),
        Value::Integer(n) => Some(n.to_string()),
        _ => None,
    };
    match argv {
        [name, callback] => {
            let name =
                text(name).ok_or("first argument to redis.register_function must be a string")?;
            let Value::Function(callback) = callback else {
                return Err("second argument to redis.register_function must be a function");
            };
            Ok(Registered {
                name,
                callback: callback.clone(),
                description: None,
                flags: super::ScriptFlags::default(),
            })
        }
        [named] => {
            let Value::Table(t) = named else {
                return Err(
                    "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).",
                );
            };
            let (mut name, mut description, mut callback) = (None, None, None);
            let mut flags = super::ScriptFlags::default();
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(
                    |_| "named argument key given to redis.register_function is not a string",
                )?;
                let Some(key) = text(&k).filter(|_| {
                    matches!(k, Value::String(_) | Value::Number(_) | Value::Integer(_))
                }) else {
                    return Err(
                        "named argument key given to redis.register_function is not a string",
                    );
                };
                match key.to_ascii_lowercase().as_str() {
                    "function_name" => {
                        name = Some(text(&v).ok_or(
                            "function_name argument given to redis.register_function must be a string",
                        )?);
                    }
                    "description" => {
                        description = Some(text(&v).ok_or(
                            "description argument given to redis.register_function must be a string",
                        )?);
                    }
                    "callback" => {
                        let Value::Function(f) = v else {
                            return Err(
                                "callback argument given to redis.register_function must be a function",
                            );
                        };
                        callback = Some(f);
                    }
                    "flags" => {
                        let Value::Table(list) = v else {
                            return Err(
                                "flags argument to redis.register_function must be a table representing function flags",
                            );
                        };
                        for i in 1.. {
                            match list.raw_get::<Value>(i) {
                                Ok(Value::Nil) | Err(_) => break,
                                Ok(f) => {
                                    let f = text(&f).ok_or("unknown flag given")?;
                                    match f.to_ascii_lowercase().as_str() {
                                        "no-writes" => flags.no_writes = true,
                                        "allow-oom" => flags.allow_oom = true,
                                        "allow-stale" => flags.allow_stale = true,
                                        "no-cluster" => flags.no_cluster = true,
                                        "allow-cross-slot-keys" => {
                                            flags.allow_cross_slot_keys = true
                                        }
                                        _ => return Err("unknown flag given"),
                                    }
                                }
                            }
                        }
                    }
                    _ => return Err("unknown argument given to redis.register_function"),
                }
            }
            let name = name.ok_or("redis.register_function must get a function name argument")?;
            let callback =
                callback.ok_or("redis.register_function must get a callback argument")?;
            Ok(Registered {
                name,
                callback,
                description,
                flags,
            })
        }
        _ => Err("wrong number of arguments to redis.register_function"),
    }
}

fn setresp_arg(argv: &[Value]) -> mlua::Result<i64> {
    if argv.len() != 1 {
        return Err(raise("ERR redis.setresp() requires one argument."));
    }
    match number(&argv[0]) {
        Some(v) if v == 2.0 || v == 3.0 => Ok(v as i64),
        _ => Err(raise("ERR RESP version must be 2 or 3.")),
    }
}

/// A Lua number, or a string Lua reads as one (`lua_tonumber`).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        Value::String(s) => {
            let text = String::from_utf8_lossy(&s.as_bytes()).trim().to_string();
            if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
                return u64::from_str_radix(hex, 16).ok().map(|n| n as f64);
            }
            text.parse::<f64>().ok()
        }
        _ => None,
    }
}

fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(v) => v.type_name(),
    }
}

/// An error raised by a function of ours as `luaL_error` raises it: prefixed with the
/// calling Lua function's place (`user_script:1: `), if a Lua function called it.
fn c_error(lua: &Lua, msg: &str) -> mlua::Error {
    let place = lua
        .inspect_stack(1, |d| {
            let line = d.current_line()?;
            let src = d.source().short_src?.into_owned();
            Some(format!("{src}:{line}: "))
        })
        .flatten()
        .unwrap_or_default();
    mlua::Error::runtime(format!("{place}{msg}"))
}

/// `luaL_argerror`: `bad argument #n to 'name' (…)`, the name as the caller wrote it (`?`
/// when called by another C function, such as pcall).
fn arg_error(lua: &Lua, n: usize, extra: &str) -> mlua::Error {
    let name = lua
        .inspect_stack(0, |d| d.names().name.map(|n| n.into_owned()))
        .flatten()
        .unwrap_or_else(|| "?".into());
    c_error(lua, &format!("bad argument #{n} to '{name}' ({extra})"))
}

/// `luaL_checkint`: argument `i` as a C int, or Lua's argument error.
fn check_int(lua: &Lua, args: &[Value], i: usize) -> mlua::Result<i32> {
    match args.get(i).and_then(number) {
        Some(n) => Ok(n as i32),
        None => Err(arg_error(
            lua,
            i + 1,
            &format!("number expected, got {}", type_name(args.get(i))),
        )),
    }
}

/// Redis's `math.random`: rand48 scaled as Lua scales `rand()`.
fn random(lua: &Lua, r: &mut Rand48, args: &[Value]) -> mlua::Result<f64> {
    let x = f64::from(r.next() % i32::MAX) / f64::from(i32::MAX);
    match args.len() {
        0 => Ok(x),
        1 => {
            let u = check_int(lua, args, 0)?;
            if u < 1 {
                return Err(arg_error(lua, 1, "interval is empty"));
            }
            Ok((x * f64::from(u)).floor() + 1.0)
        }
        2 => {
            let l = check_int(lua, args, 0)?;
            let u = check_int(lua, args, 1)?;
            if l > u {
                return Err(arg_error(lua, 2, "interval is empty"));
            }
            Ok((x * (f64::from(u) - f64::from(l) + 1.0)).floor() + f64::from(l))
        }
        _ => Err(c_error(lua, "wrong number of arguments")),
    }
}

/// The `redis` table; `call`, `pcall` and `setresp` work on the run `slot` lends them.
fn redis_table(lua: &Lua, version: &str, slot: &Arc<Slot>) -> mlua::Result<Table> {
    let redis = lua.create_table()?;
    redis.raw_set("call", super::call::make(lua, slot, true)?)?;
    redis.raw_set("pcall", super::call::make(lua, slot, false)?)?;
    let sl = slot.clone();
    redis.raw_set(
        "setresp",
        lua.create_function(move |_, argv: Variadic<Value>| {
            let v = setresp_arg(&argv)?;
            // (Outside a run it only checks its argument, as in Redis.)
            if !sl.call.load(Ordering::Acquire).is_null() {
                sl.resp3.store(v == 3, Ordering::Relaxed);
            }
            Ok(())
        })?,
    )?;
    let single = |field: &'static str| {
        lua.create_function(move |lua, argv: Variadic<Value>| {
            let t = lua.create_table()?;
            match &argv[..] {
                [Value::String(s)] => {
                    let text = String::from_utf8_lossy(&s.as_bytes()).into_owned();
                    if field == "err" {
                        t.raw_set("err", reply_error_text(&text))?;
                    } else {
                        t.raw_set(field, s.clone())?;
                    }
                }
                _ => t.raw_set("err", "ERR wrong number or type of arguments")?,
            }
            Ok(t)
        })
    };
    redis.raw_set("error_reply", single("err")?)?;
    redis.raw_set("status_reply", single("ok")?)?;
    redis.raw_set(
        "sha1hex",
        lua.create_function(|_, argv: Variadic<Value>| {
            if argv.len() != 1 {
                return Err(raise("ERR wrong number of arguments"));
            }
            let bytes = match &argv[0] {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Number(n) => crate::frame::format_double(*n).into_bytes(),
                Value::Integer(n) => n.to_string().into_bytes(),
                _ => Vec::new(),
            };
            Ok(sha1_hex(&bytes))
        })?,
    )?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        redis.raw_set(name, level)?;
    }
    redis.raw_set(
        "log",
        lua.create_function(|_, argv: Variadic<Value>| {
            if argv.len() < 2 {
                return Err(raise("ERR redis.log() requires two arguments or more."));
            }
            let Some(level) = number(&argv[0]) else {
                return Err(raise("ERR First argument must be a number (log level)."));
            };
            if !(0.0..4.0).contains(&level) {
                return Err(raise("ERR Invalid debug level."));
            }
            let text = argv[1..]
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
                    Value::Number(n) => Some(crate::frame::format_double(*n)),
                    Value::Integer(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(" ");
            match level as i64 {
                0 => tracing::debug!(target: "script", "{text}"),
                1 | 2 => tracing::info!(target: "script", "{text}"),
                _ => tracing::warn!(target: "script", "{text}"),
            }
            Ok(())
        })?,
    )?;
    for (name, flags) in [
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        redis.raw_set(name, flags)?;
    }
    redis.raw_set(
        "set_repl",
        lua.create_function(|_, argv: Variadic<Value>| {
            if argv.len() != 1 {
                return Err(raise("ERR redis.set_repl() requires two arguments."));
            }
            let flags = number(&argv[0]).unwrap_or(0.0) as i64;
            if flags & !3 != 0 {
                return Err(raise(
                    "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                ));
            }
            Ok(())
        })?,
    )?;
    redis.raw_set(
        "replicate_commands",
        lua.create_function(|_, _: Variadic<Value>| Ok(true))?,
    )?;
    redis.raw_set(
        "breakpoint",
        lua.create_function(|_, _: Variadic<Value>| Ok(false))?,
    )?;
    redis.raw_set(
        "debug",
        lua.create_function(|_, _: Variadic<Value>| Ok(()))?,
    )?;
    redis.raw_set(
        "acl_check_cmd",
        lua.create_function(|_, argv: Variadic<Value>| {
            let Some(first) = argv.first() else {
                return Err(raise(
                    "ERR Please specify at least one argument for this redis lib call",
                ));
            };
            let known = match first {
                Value::String(s) => {
                    crate::command_info::get(&String::from_utf8_lossy(&s.as_bytes()).to_lowercase())
                        .is_some()
                }
                _ => false,
            };
            if !known {
                return Err(raise("ERR Invalid command passed to redis.acl_check_cmd()"));
            }
            Ok(true)
        })?,
    )?;
    redis.raw_set("REDIS_VERSION", version)?;
    redis.raw_set("REDIS_VERSION_NUM", version_num(version))?;
    Ok(redis)
}

/// The reply for a script that raised `err` (the handler's table): `-<err> script: <name>, on
/// <source>:<line>.`, as Redis writes it.
fn script_error(err: &Value, funcname: &str) -> Frame {
    let Value::Table(t) = err else {
        // Not through the handler (Lua does not call it for a memory error): Redis's text.
        let msg = match err {
            Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
            Value::Error(e) => error_chain_text(e),
            _ => "execution failure".into(),
        };
        return Frame::err(format!("Error running script {funcname}, {msg}"));
    };
    let text = |field: &str| match t.raw_get::<Value>(field) {
        Ok(Value::String(s)) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
        Ok(Value::Number(n)) => Some(format!("{n}")),
        Ok(Value::Integer(n)) => Some(n.to_string()),
        _ => None,
    };
    let msg = text("err").unwrap_or_else(|| "ERR execution failure".into());
    let msg = msg.strip_prefix('-').unwrap_or(&msg).to_string();
    match (text("source"), text("line")) {
        (Some(source), Some(line)) => {
            Frame::Error(format!("{msg} script: {funcname}, on {source}:{line}."))
        }
        _ => Frame::Error(msg),
    }
}

/// An error value raised through Rust, for the prelude's handler: its text, and whether it
/// is the whole `err` text (a [`ScriptError`]) or a message to prefix with `ERR`.
fn error_info(v: &Value) -> (Option<String>, bool) {
    match v {
        Value::Error(e) => match script_error_of(e) {
            Some(text) => (Some(text), true),
            None => (Some(error_chain_text(e)), false),
        },
        Value::String(s) => (
            Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
            false,
        ),
        _ => (None, false),
    }
}

fn script_error_of(e: &mlua::Error) -> Option<String> {
    match e {
        mlua::Error::CallbackError { cause, .. } => script_error_of(cause),
        mlua::Error::WithContext { cause, .. } => script_error_of(cause),
        mlua::Error::ExternalError(inner) => {
            inner.downcast_ref::<ScriptError>().map(|s| s.0.clone())
        }
        _ => None,
    }
}

fn error_chain_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => error_chain_text(cause),
        mlua::Error::RuntimeError(s) => s.clone(),
        mlua::Error::MemoryError(_) => "not enough memory".into(),
        mlua::Error::ExternalError(inner) => inner.to_string(),
        mlua::Error::WithContext { cause, .. } => error_chain_text(cause),
        other => other.to_string(),
    }
}

/// EVAL's compile error: `Error compiling script (new function): user_script:1: …`.
fn compile_error_text(e: &mlua::Error) -> String {
    let msg = match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => error_chain_text(other),
    };
    format!("Error compiling script (new function): {msg}")
}

/// SHA1 of `bytes`, 40 lowercase hex digits.
pub fn sha1_hex(bytes: &[u8]) -> String {
    // (By hand: `Digest`'s Display goes through the formatting machinery, a cost every
    // EVAL pays.)
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha1_smol::Sha1::from(bytes).digest().bytes();
    let mut out = String::with_capacity(40);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// `7.0.0` as Redis's REDIS_VERSION_NUM: 0x070000.
fn version_num(version: &str) -> i64 {
    version
        .split('.')
        .take(3)
        .fold(0, |acc, p| acc * 256 + p.parse::<i64>().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers() {
        assert_eq!(version_num("7.0.0"), 0x07_00_00);
        assert_eq!(version_num("7.0.15"), 0x07_00_0f);
    }

    #[test]
    fn sha1() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }
}

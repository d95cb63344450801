//! `redis.call` and `redis.pcall`: Lua C functions over Lua's C API.
//!
//! Made as mlua functions, each call took mlua's lock, a registry reference per argument and
//! per result, and a preallocated error userdata: under EVAL of a one-line script that was as
//! much as the command it ran. Here the arguments are read off the Lua stack and the reply is
//! pushed onto it directly.
//!
//! A Lua error is a `longjmp`: it must never skip a Rust frame that holds something to drop.
//! So the Rust part (arguments, the command, the reply made ready) runs first, under
//! `catch_unwind` (a panic must not unwind through Lua's C frames either); the reply is then
//! pushed by a C function called with `lua_pcall` (which catches a memory error there), that
//! only borrows it, and only once it is dropped is an error raised. The reply is held in a
//! `ManuallyDrop` meanwhile: were an error to escape the `lua_pcall` all the same (Lua makes
//! "error in error handling" outside its protection), it would leak rather than skip a drop.

use std::mem::ManuallyDrop;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};

use bytes::Bytes;
use mlua::{Function, Lua, ffi};
use parking_lot::Mutex;

use super::convert::{self, message_error_text};
use crate::frame::Frame;

/// What a command run from a script answers: its reply, or a refusal of the script layer
/// (`Unknown Redis command called from script`…).
pub type Call<'a> = dyn FnMut(Vec<Bytes>, bool) -> Result<Frame, String> + 'a;

/// What the VM's `redis.call`, `redis.pcall` and `redis.setresp` work with during a run: they
/// are made once with the VM (making them per run cost a closure allocation each and garbage
/// for Lua's collector), so the run's command runner is lent to them through this slot.
#[derive(Default)]
pub(super) struct Slot {
    /// A `*mut &mut Call<'_>` while a run is on (null otherwise, and while a command it
    /// called runs: a nested call finds it empty).
    pub(super) call: AtomicPtr<()>,
    /// `redis.setresp(3)` was called in this run.
    pub(super) resp3: AtomicBool,
    /// Hooks (every HOOK_EVERY instructions) reached in this run (`vm.rs`).
    pub(super) hooks: AtomicU32,
    /// A command called by the script panicked: resumed once the run is over (a panic must
    /// not unwind through Lua's C frames).
    pub(super) panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl Slot {
    /// Whether the running script said `redis.setresp(3)`.
    pub(super) fn resp3(&self) -> bool {
        self.resp3.load(Ordering::Relaxed)
    }

    /// Keeps a panic of a command the script called, for the end of the run.
    pub(super) fn stash_panic(&self, panic: Box<dyn std::any::Any + Send>) {
        *self.panic.lock() = Some(panic);
    }

    /// Whether a command called in this run panicked.
    pub(super) fn panicked(&self) -> bool {
        self.panic.lock().is_some()
    }

    /// Runs `f` with the running script's command runner; `None` outside a run.
    pub(super) fn with_call<R>(&self, f: impl FnOnce(&mut Call<'_>) -> R) -> Option<R> {
        let p = self.call.swap(std::ptr::null_mut(), Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` was stored by `Vm::run_lent` from a `&mut &mut Call` that outlives the
        // run, and is cleared (by `Lent`'s drop) before that borrow ends. It is taken out of
        // the slot for the duration of `f`, so no second `&mut` to it can exist; the VM is used
        // by one thread at a time (its owner holds the VM's mutex for the whole run).
        let call = unsafe { &mut *(p as *mut &mut Call<'_>) };
        let r = f(&mut **call);
        self.call.store(p, Ordering::Release);
        Some(r)
    }
}

/// The command runner lent to the slot for one run: taken back when dropped, also on unwind.
pub(super) struct Lent<'s>(pub(super) &'s Slot);

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        self.0.call.store(std::ptr::null_mut(), Ordering::Release);
    }
}

/// `redis.call` (`raise`: an error reply is raised) or `redis.pcall` (it is returned), reading
/// the run's command runner from `slot`, which must outlive `lua` (it is kept in its app data).
pub fn make(lua: &Lua, slot: &std::sync::Arc<Slot>, raise: bool) -> mlua::Result<Function> {
    lua.set_app_data(slot.clone());
    let slot_ptr = std::sync::Arc::as_ptr(slot)
        .cast_mut()
        .cast::<std::ffi::c_void>();
    let body = |state: *mut ffi::lua_State| {
        // SAFETY: `state` is the state `exec_raw` lends; three pushes fit in the stack mlua
        // guarantees a C function (LUA_MINSTACK).
        unsafe {
            ffi::lua_pushlightuserdata(state, slot_ptr);
            ffi::lua_pushboolean(state, c_int::from(raise));
            ffi::lua_pushcfunction(state, push_reply);
            ffi::lua_pushcclosure(state, redis_call, 3);
        }
    };
    // SAFETY: see `body`; nothing in it needs dropping.
    unsafe { lua.exec_raw::<Function>((), body) }
}

/// The error of `redis.call` after a command panicked (the panic is resumed after the run).
const PANICKED: &str = "ERR a command called by the script panicked";

/// The Lua C function behind `redis.call` / `redis.pcall`. Upvalues: the `Slot`, whether an
/// error reply is raised, [`push_reply`].
unsafe extern "C-unwind" fn redis_call(state: *mut ffi::lua_State) -> c_int {
    // SAFETY (whole body): the upvalues are those `make` set, the slot alive as long as the
    // VM; two pushes fit in LUA_MINSTACK; when `lua_error` runs, nothing here needs dropping.
    unsafe {
        let slot = &*ffi::lua_touserdata(state, ffi::lua_upvalueindex(1))
            .cast_const()
            .cast::<Slot>();
        let raise_errors = ffi::lua_toboolean(state, ffi::lua_upvalueindex(2)) != 0;
        let prepared = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            prepare(state, slot, raise_errors)
        }));
        let (reply, resp3, raise) = prepared.unwrap_or_else(|panic| {
            slot.stash_panic(panic);
            (Frame::Error(PANICKED.into()), slot.resp3(), true)
        });
        let mut reply = ManuallyDrop::new(reply);
        let mut job = Job {
            reply: &reply,
            resp3,
        };
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(3));
        ffi::lua_pushlightuserdata(state, (&raw mut job).cast());
        let status = ffi::lua_pcall(state, 1, 1, 0);
        ManuallyDrop::drop(&mut reply);
        // On top: the value, or the message of a failed push (memory, nesting too deep).
        if status != 0 || raise {
            ffi::lua_error(state);
        }
        1
    }
}

/// The reply `push_reply` pushes.
struct Job<'a> {
    reply: &'a Frame,
    resp3: bool,
}

/// Called with `lua_pcall` and a `Job`: pushes the job's reply as the script sees it.
unsafe extern "C-unwind" fn push_reply(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: the light userdata is the `Job` `redis_call` passed, alive for the whole
    // `lua_pcall`; the pushes only borrow it, so a Lua error thrown through here (to that
    // `lua_pcall`) skips no Rust value to drop.
    unsafe {
        let job = &*ffi::lua_touserdata(state, 1).cast_const().cast::<Job<'_>>();
        convert::push_reply(state, job.reply, job.resp3, 0);
    }
    1
}

/// The reply to push, the script's protocol, and whether to raise it: the command's reply
/// made ready ([`convert::settle`]), raised if an error and `raise_errors` (`redis.call`), and
/// always when `redis.call`/`pcall` cannot run (outside a run, after a command panicked).
///
/// # Safety
/// `state` is the state of the running call; only its stack is read (nothing that can raise).
unsafe fn prepare(
    state: *mut ffi::lua_State,
    slot: &Slot,
    raise_errors: bool,
) -> (Frame, bool, bool) {
    let resp3 = slot.resp3();
    if slot.panicked() {
        // The script does not go on running commands after one panicked.
        return (Frame::Error(PANICKED.into()), resp3, true);
    }
    // SAFETY: see the function's contract.
    let (mut reply, mut raise) = unsafe { run(state, slot, resp3) };
    if let Err(text) = convert::settle(&mut reply, resp3, 0) {
        // (A stored value that could not be read.)
        reply = Frame::Error(message_error_text(&text));
        raise = true;
    }
    let raise = raise || (raise_errors && matches!(reply, Frame::Error(_)));
    (reply, resp3, raise)
}

/// The command the script asked for, run: its reply, and whether it is to be raised even by
/// `pcall` (called outside a run).
///
/// # Safety
/// `state` is the state of the running call; only its stack is read (nothing that can raise).
unsafe fn run(state: *mut ffi::lua_State, slot: &Slot, resp3: bool) -> (Frame, bool) {
    // SAFETY: see the function's contract.
    let args = unsafe { arguments(state) };
    let args = match args {
        Ok(args) => args,
        Err(text) => return (Frame::Error(message_error_text(text)), false),
    };
    match slot.with_call(|call| call(args, resp3)) {
        None => (
            Frame::Error(
                "ERR redis.call/pcall can only be called inside a script invocation".into(),
            ),
            true,
        ),
        Some(Ok(reply)) => (reply, false),
        Some(Err(msg)) => (Frame::Error(message_error_text(&msg)), false),
    }
}

/// The call's arguments as a command, or Redis's complaint.
///
/// # Safety
/// `state` is the state of the running call.
unsafe fn arguments(state: *mut ffi::lua_State) -> Result<Vec<Bytes>, &'static str> {
    // SAFETY: indexes 1..=top are valid; `lua_tolstring` is called on strings only, which it
    // returns without converting (so without allocating, and without raising).
    unsafe {
        let n = ffi::lua_gettop(state);
        if n == 0 {
            return Err("Please specify at least one argument for this redis lib call");
        }
        let mut args = Vec::with_capacity(n as usize);
        for i in 1..=n {
            match ffi::lua_type(state, i) {
                ffi::LUA_TSTRING => {
                    let mut len = 0;
                    let p = ffi::lua_tolstring(state, i, &mut len);
                    args.push(Bytes::copy_from_slice(std::slice::from_raw_parts(
                        p.cast::<u8>(),
                        len,
                    )));
                }
                ffi::LUA_TNUMBER => args.push(number_text(ffi::lua_tonumber(state, i))),
                _ => return Err("Lua redis lib command arguments must be strings or integers"),
            }
        }
        Ok(args)
    }
}

/// A number argument's text: Lua's `%.17g`, as Redis's Lua prints it (an integral number
/// below 1e17 as an integer, `0/0` as `-nan`).
fn number_text(n: f64) -> Bytes {
    Bytes::from(super::libs::fmt_g(n, 17))
}

#[cfg(test)]
mod tests {
    use super::number_text;

    #[test]
    fn numbers_print_as_lua_prints_them() {
        assert_eq!(number_text(3.0), "3");
        assert_eq!(number_text(-7.0), "-7");
        assert_eq!(number_text(3.5), "3.5");
        assert_eq!(number_text(-0.0), "-0");
        assert_eq!(number_text(1e16), "10000000000000000");
        assert_eq!(number_text(1e17), "1e+17");
        assert_eq!(
            number_text(-9_223_372_036_854_775_808.0),
            "-9.2233720368547758e+18"
        );
    }
}

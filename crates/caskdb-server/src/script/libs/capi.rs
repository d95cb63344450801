//! What the four libraries share: the C function scripts call, arguments read as Lua's C API
//! reads them, and C's conversions of numbers as redis-server (x86-64, glibc) does them.
//!
//! Redis's libraries are C functions. Their errors are strings raised by `luaL_error`, which
//! prefixes the caller's position (`user_script:3: `), or by `luaL_argerror`, which names the
//! function as the caller spelt it (`bad argument #1 to 'encode'`, `'?'` through `pcall`).
//! Scripts match on those strings, so every library function here is [`entry`], a C function
//! that runs a Rust body and raises the body's [`Fail`] with those very calls (an error mlua
//! raises from a Rust callback is a userdata, not a string).
//!
//! Lua 5.1 lets a C function use at most [`MAX_C_STACK`] stack slots; Redis's libraries hit that
//! bound on deep or long data and fail there with errors scripts see. The bodies count the slots
//! the C code would use and fail where it fails. They also keep few mlua values alive at once:
//! mlua holds each in a Lua thread whose stack has the same bound, and panics past it.

use std::os::raw::c_int;

use mlua::{Function, Lua, MultiValue, Table, Value, ffi};

/// Lua 5.1's `LUAI_MAXCSTACK`: a C function's stack holds at most this many slots
/// (`lua_checkstack` fails past it).
pub(crate) const MAX_C_STACK: usize = 8000;

/// At most this many arguments reach a body as values; more come in one table (see [`Args`]).
const INLINE_ARGS: c_int = 8;

/// How a body fails: the error a C library function would raise.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fail {
    /// `luaL_error`: the message, after the caller's position.
    Error(Vec<u8>),
    /// `luaL_argerror(narg, message)`: "bad argument #narg to 'name' (message)".
    Arg(usize, Vec<u8>),
    /// An error the VM raises inside a C function, without a position ("table index is nil").
    Raw(Vec<u8>),
}

impl From<mlua::Error> for Fail {
    fn from(e: mlua::Error) -> Self {
        match e {
            mlua::Error::MemoryError(_) => Fail::Raw(b"not enough memory".to_vec()),
            other => Fail::Raw(other.to_string().into_bytes()),
        }
    }
}

/// A body's outcome.
pub(crate) type Result<T> = std::result::Result<T, Fail>;

/// [`Fail::Error`] with `message`.
pub(crate) fn error(message: impl Into<Vec<u8>>) -> Fail {
    Fail::Error(message.into())
}

/// [`Fail::Arg`] for argument `narg`.
pub(crate) fn arg_error(narg: usize, message: impl Into<Vec<u8>>) -> Fail {
    Fail::Arg(narg, message.into())
}

/// What a body returns.
pub(crate) enum Ret {
    /// Some values.
    Values(Vec<Value>),
    /// `n` values, `t[1]` to `t[n]` (many values would each hold an mlua reference).
    Table(Table, usize),
}

impl Ret {
    /// One value.
    pub(crate) fn one(v: impl Into<Value>) -> Ret {
        Ret::Values(vec![v.into()])
    }
}

/// Values a body returns, moved into a Lua table once they are more than a few (each value kept
/// in Rust holds an mlua reference).
pub(crate) struct Results<'a> {
    lua: &'a Lua,
    values: Vec<Value>,
    table: Option<Table>,
    n: usize,
}

impl<'a> Results<'a> {
    /// Kept in Rust up to this many.
    const FEW: usize = 16;

    /// No values yet.
    pub(crate) fn new(lua: &'a Lua) -> Results<'a> {
        Results {
            lua,
            values: Vec::new(),
            table: None,
            n: 0,
        }
    }

    /// How many values.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// Adds `v` after the others.
    pub(crate) fn push(&mut self, v: Value) -> Result<()> {
        if self.table.is_none() && self.values.len() >= Self::FEW {
            let t = self.lua.create_table()?;
            for (i, v) in self.values.drain(..).enumerate() {
                t.raw_set(i + 1, v)?;
            }
            self.table = Some(t);
        }
        match &self.table {
            Some(t) => t.raw_set(self.n + 1, v)?,
            None => self.values.push(v),
        }
        self.n += 1;
        Ok(())
    }

    /// The last value.
    pub(crate) fn last(&self) -> Result<Option<Value>> {
        if self.n == 0 {
            return Ok(None);
        }
        Ok(Some(match &self.table {
            Some(t) => t.raw_get(self.n)?,
            None => self.values.last().cloned().unwrap_or(Value::Nil),
        }))
    }

    /// Drops the last value.
    pub(crate) fn pop(&mut self) -> Result<()> {
        if self.n == 0 {
            return Ok(());
        }
        match &self.table {
            Some(t) => t.raw_set(self.n, Value::Nil)?,
            None => {
                self.values.pop();
            }
        }
        self.n -= 1;
        Ok(())
    }

    /// Replaces the first value.
    pub(crate) fn set_first(&mut self, v: Value) -> Result<()> {
        match &self.table {
            Some(t) => t.raw_set(1, v)?,
            None => {
                if let Some(first) = self.values.first_mut() {
                    *first = v;
                }
            }
        }
        Ok(())
    }

    /// The values, as a body returns them.
    pub(crate) fn into_ret(self) -> Result<Ret> {
        Ok(match self.table {
            Some(t) => Ret::Table(t, self.n),
            None => Ret::Values(self.values),
        })
    }
}

/// A body's arguments: `lua_gettop` and each argument, `None` past the count (Lua's "none").
pub(crate) struct Args {
    n: usize,
    inline: Vec<Value>,
    packed: Option<Table>,
}

impl Args {
    /// What [`entry`] passes: the count, then the arguments or, past [`INLINE_ARGS`], a table.
    fn from_call(call: MultiValue) -> mlua::Result<Args> {
        let mut values = call.into_iter();
        let n = match values.next() {
            Some(Value::Integer(n)) => usize::try_from(n).unwrap_or(0),
            Some(Value::Number(n)) => n as usize,
            _ => 0,
        };
        if n > INLINE_ARGS as usize {
            let packed = match values.next() {
                Some(Value::Table(t)) => Some(t),
                _ => None,
            };
            return Ok(Args {
                n,
                inline: Vec::new(),
                packed,
            });
        }
        Ok(Args {
            n,
            inline: values.collect(),
            packed: None,
        })
    }

    /// The number of arguments (`lua_gettop`).
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// Whether argument `i` (from 1) was not passed at all (`lua_isnone`).
    pub(crate) fn is_none(&self, i: usize) -> bool {
        i == 0 || i > self.n
    }

    /// Argument `i` (from 1): nil when not passed.
    pub(crate) fn get(&self, i: usize) -> Result<Value> {
        if self.is_none(i) {
            return Ok(Value::Nil);
        }
        match &self.packed {
            Some(t) => Ok(t.raw_get(i)?),
            None => Ok(self.inline.get(i - 1).cloned().unwrap_or(Value::Nil)),
        }
    }

    /// `luaL_typename` of argument `i`: "no value" when not passed.
    pub(crate) fn type_name(&self, i: usize) -> Result<&'static str> {
        if self.is_none(i) {
            return Ok("no value");
        }
        Ok(type_name(&self.get(i)?))
    }

    /// `luaL_typerror`: "`expected` expected, got <type>" for argument `i`.
    pub(crate) fn type_error(&self, i: usize, expected: &str) -> Fail {
        let got = self.type_name(i).unwrap_or("no value");
        arg_error(i, format!("{expected} expected, got {got}"))
    }

    /// `luaL_checknumber`: a number, or a string Lua converts to one.
    pub(crate) fn check_number(&self, lua: &Lua, i: usize) -> Result<f64> {
        match to_number(lua, &self.get(i)?)? {
            Some(n) => Ok(n),
            None => Err(self.type_error(i, "number")),
        }
    }

    /// `luaL_checkinteger`: [`Args::check_number`] converted as C converts a double to a
    /// `lua_Integer`.
    pub(crate) fn check_integer(&self, lua: &Lua, i: usize) -> Result<i64> {
        self.check_number(lua, i).map(d2i64)
    }

    /// `luaL_optinteger`: `default` when the argument is none or nil.
    pub(crate) fn opt_integer(&self, lua: &Lua, i: usize, default: i64) -> Result<i64> {
        match self.get(i)? {
            Value::Nil => Ok(default),
            _ => self.check_integer(lua, i),
        }
    }

    /// `luaL_checklstring`: a string's bytes, or a number as Lua writes it (`%.14g`).
    pub(crate) fn check_bytes(&self, i: usize) -> Result<Bytes> {
        match self.get(i)? {
            Value::String(s) => Ok(Bytes::Lua(s)),
            Value::Integer(n) => Ok(Bytes::Owned(fmt_g(n as f64, 14).into_bytes())),
            Value::Number(n) => Ok(Bytes::Owned(fmt_g(n, 14).into_bytes())),
            _ => Err(self.type_error(i, "string")),
        }
    }
}

/// A string argument: a Lua string, or the text of a number.
pub(crate) enum Bytes {
    /// A Lua string.
    Lua(mlua::String),
    /// A number written as Lua writes it.
    Owned(Vec<u8>),
}

impl Bytes {
    /// Runs `f` on the bytes.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Bytes::Lua(s) => f(&s.as_bytes()),
            Bytes::Owned(v) => f(v),
        }
    }

    /// The bytes up to the first NUL: what C sees of a string it reads with `luaL_checkstring`.
    pub(crate) fn c_string(&self) -> Vec<u8> {
        self.with(|b| c_str(b).to_vec())
    }
}

/// `s` up to its first NUL byte.
pub(crate) fn c_str(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(end) => &s[..end],
        None => s,
    }
}

/// `lua_typename(lua_type(v))`.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// `lua_tonumber`, and whether the value is a number (`lua_isnumber`): numbers, and strings
/// Lua converts (`" 0x10 "`, `"1e3"`).
pub(crate) fn to_number(lua: &Lua, v: &Value) -> Result<Option<f64>> {
    Ok(match v {
        Value::Integer(n) => Some(*n as f64),
        Value::Number(n) => Some(*n),
        Value::String(_) => lua.coerce_number(v.clone())?,
        _ => None,
    })
}

/// A Lua number as mlua reads it (whole numbers come as `Integer`), as the double it is.
pub(crate) fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(n) => Some(*n as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// C's `(int)d` on x86-64 (`cvttsd2si`): truncation, and `INT_MIN` for NaN and out of range.
pub(crate) fn d2i32(d: f64) -> i32 {
    if d > -2_147_483_649.0 && d < 2_147_483_648.0 {
        d as i32
    } else {
        i32::MIN
    }
}

/// C's `(int64_t)d` on x86-64: truncation, and `INT64_MIN` for NaN and out of range.
pub(crate) fn d2i64(d: f64) -> i64 {
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&d) {
        d as i64
    } else {
        i64::MIN
    }
}

/// C's `(uint64_t)d` as gcc compiles it for x86-64: below 2^63 (or NaN) a signed conversion
/// reinterpreted, from 2^63 on a signed conversion of `d - 2^63` with the top bit flipped (so
/// 2^64 and beyond give 0).
pub(crate) fn d2u64(d: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if d >= TWO63 {
        (d2i64(d - TWO63) as u64) ^ (1 << 63)
    } else {
        d2i64(d) as u64
    }
}

/// C's `printf("%.*g", precision, x)` with glibc: `inf`, `-nan`, `1e+20`, `0.0001`, `-0`.
pub(crate) fn fmt_g(x: f64, precision: usize) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let p = precision.max(1);
    // The exponent %e would print, after rounding to `p` digits, picks the style.
    let sci = format!("{:.*e}", p - 1, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i64 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip_fraction_zeros(mantissa), exp.abs())
    } else {
        let decimals = usize::try_from(p as i64 - 1 - exp).unwrap_or(0);
        strip_fraction_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

/// `%g` drops trailing zeros of the fraction, and the point when nothing is left after it.
fn strip_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A library function: the C function [`entry`] around `body`.
pub(crate) fn function<F>(lua: &Lua, body: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, &Args) -> Result<Ret> + Send + 'static,
{
    let inner = lua.create_function(move |lua, call: MultiValue| {
        let args = Args::from_call(call)?;
        outcome(lua, body(lua, &args))
    })?;
    // SAFETY: the closure pops the one value `exec_raw` pushed (the Rust body, a function) and
    // pushes a C closure with it as its upvalue, which is what `entry` expects to find.
    unsafe {
        lua.exec_raw::<Function>(inner, |state| {
            ffi::lua_pushcclosure(state, entry, 1);
        })
    }
}

/// A body's outcome as [`entry`] reads it: a code, then what goes with it.
fn outcome(lua: &Lua, out: Result<Ret>) -> mlua::Result<MultiValue> {
    let mut values = Vec::new();
    match out {
        Ok(Ret::Values(vs)) => {
            values.push(Value::Integer(1));
            values.extend(vs);
        }
        Ok(Ret::Table(t, n)) => {
            values.push(Value::Integer(2));
            values.push(Value::Table(t));
            values.push(Value::Integer(n as i64));
        }
        Err(Fail::Error(m)) => {
            values.push(Value::Integer(3));
            values.push(Value::String(lua.create_string(m)?));
        }
        Err(Fail::Arg(narg, m)) => {
            values.push(Value::Integer(4));
            values.push(Value::Integer(narg as i64));
            values.push(Value::String(lua.create_string(m)?));
        }
        Err(Fail::Raw(m)) => {
            values.push(Value::Integer(5));
            values.push(Value::String(lua.create_string(m)?));
        }
    }
    Ok(MultiValue::from_vec(values))
}

/// The C function scripts call. Calls the Rust body (upvalue 1) with the argument count and the
/// arguments (past [`INLINE_ARGS`] of them, one table of them), then returns what it answered
/// or raises its error as `luaL_error` (the caller's position first), `luaL_argerror` (the
/// function's name as the caller spelt it) or `lua_error` do.
///
/// No Rust value with a destructor is alive here: Lua's errors leave by `longjmp`.
unsafe extern "C-unwind" fn entry(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: `state` is the running thread, in a call to this C function; a C function starts
    // with `LUA_MINSTACK` (20) free slots, and the pushes below stay within them (at most
    // `INLINE_ARGS` + 2 or 4 values) or check for room first.
    unsafe {
        let nargs = ffi::lua_gettop(state);
        let first = if nargs > INLINE_ARGS {
            ffi::lua_createtable(state, nargs, 0);
            for i in 1..=nargs {
                ffi::lua_pushvalue(state, i);
                ffi::lua_rawseti_(state, -2, i);
            }
            ffi::lua_replace(state, 1);
            ffi::lua_settop(state, 1);
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
            ffi::lua_pushinteger(state, nargs as ffi::lua_Integer);
            ffi::lua_pushvalue(state, 1);
            ffi::lua_call(state, 2, ffi::LUA_MULTRET);
            2
        } else {
            ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
            ffi::lua_insert(state, 1);
            ffi::lua_pushinteger(state, nargs as ffi::lua_Integer);
            ffi::lua_insert(state, 2);
            ffi::lua_call(state, nargs + 1, ffi::LUA_MULTRET);
            1
        };
        // Only the body's results are left above `first - 1`: a code and at most three
        // values, or (code 2) a table whose values get room checked below.
        let top = ffi::lua_gettop(state);
        match ffi::lua_tonumber(state, first) as i64 {
            1 => top - first,
            2 => {
                let n = ffi::lua_tonumber(state, first + 2) as c_int;
                ffi::lua_pushvalue(state, first + 1);
                ffi::lua_replace(state, 1);
                ffi::lua_settop(state, 1);
                if n < 0 || ffi::lua_checkstack(state, n) == 0 {
                    ffi::lua_pushstring(state, c"stack overflow (too many results)".as_ptr());
                    ffi::lua_error(state);
                }
                for i in 1..=n {
                    ffi::lua_rawgeti_(state, 1, i);
                }
                n
            }
            4 => {
                let narg = ffi::lua_tonumber(state, first + 1) as c_int;
                let message = ffi::lua_tolstring(state, first + 2, std::ptr::null_mut());
                ffi::luaL_argerror(state, narg, message)
            }
            5 => {
                ffi::lua_pushvalue(state, first + 1);
                ffi::lua_error(state)
            }
            _ => {
                ffi::luaL_where(state, 1);
                ffi::lua_pushvalue(state, first + 1);
                ffi::lua_concat(state, 2);
                ffi::lua_error(state)
            }
        }
    }
}

/// Lua's `next` (raw), for walking a table a step at a time from a key kept elsewhere: mlua's
/// iterators cannot resume from a key.
pub(crate) fn next_function(lua: &Lua) -> mlua::Result<Function> {
    // SAFETY: `raw_next` follows the C function protocol and checks its argument's type.
    unsafe { lua.create_c_function(raw_next) }
}

/// `next(t, k)`: the pair after `k` in `t`, or nil at the end.
unsafe extern "C-unwind" fn raw_next(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: `state` is in a call to this function; it pushes at most two values. `lua_next`
    // raises an error (by longjmp, nothing to drop here) for a key not in the table.
    unsafe {
        if ffi::lua_type(state, 1) != ffi::LUA_TTABLE {
            ffi::lua_settop(state, 0);
            ffi::lua_pushnil(state);
            return 1;
        }
        ffi::lua_settop(state, 2);
        if ffi::lua_next(state, 1) != 0 {
            2
        } else {
            ffi::lua_pushnil(state);
            1
        }
    }
}

/// The pair after `key` in `t` (`None` at the end).
pub(crate) fn next_pair(next: &Function, t: &Table, key: Value) -> Result<Option<(Value, Value)>> {
    let (k, v): (Value, Value) = next.call((t.clone(), key))?;
    Ok(match k {
        Value::Nil => None,
        k => Some((k, v)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format_as_glibc() {
        // printf '%.14g' … in a shell (glibc) gives each expected text.
        for (x, p, want) in [
            (0.1, 14, "0.1"),
            (1e15, 14, "1e+15"),
            (123456789012345.0, 14, "1.2345678901234e+14"),
            (12345678901234.0, 14, "12345678901234"),
            (0.0001, 14, "0.0001"),
            (0.00001, 14, "1e-05"),
            (-0.0, 14, "-0"),
            (f64::INFINITY, 14, "inf"),
            (f64::NEG_INFINITY, 14, "-inf"),
            (-f64::NAN, 14, "-nan"),
            (2.5, 1, "2"),
            (3.5, 1, "4"),
            (1.0 / 3.0, 3, "0.333"),
            (1e100, 14, "1e+100"),
            (5e-324, 14, "4.9406564584125e-324"),
            (100.0, 2, "1e+02"),
        ] {
            assert_eq!(fmt_g(x, p), want, "{x} %.{p}g");
        }
    }

    #[test]
    fn c_conversions_as_x86_64() {
        assert_eq!(d2i32(2_147_483_648.0), i32::MIN);
        assert_eq!(d2i32(-2_147_483_648.9), i32::MIN);
        assert_eq!(d2i32(-2.9), -2);
        assert_eq!(d2i32(f64::NAN), i32::MIN);
        assert_eq!(d2i64(1e19), i64::MIN);
        assert_eq!(d2i64(-1e19), i64::MIN);
        assert_eq!(d2u64(1e19), 10_000_000_000_000_000_000);
        assert_eq!(d2u64(18_446_744_073_709_551_616.0), 0);
        assert_eq!(d2u64(-1.0), u64::MAX);
        assert_eq!(d2u64(f64::NAN), 1 << 63);
    }
}

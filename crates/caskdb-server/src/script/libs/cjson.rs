//! `cjson`: Lua CJSON 2.1.0 as Redis 7.0 ships it.
//!
//! Encoding: a table is an array when every key is a whole number ≥ 1 and it is not
//! excessively sparse (its largest key more than `ratio` times its count and more than `safe`:
//! an error, or an object when `encode_sparse_array` says convert); an empty table is `{}`;
//! other tables are objects, number keys written as strings, in `next` order. Numbers are
//! `%.14g` (the precision is settable, 1 to 14); NaN and infinities are errors unless
//! `encode_invalid_numbers` allows them; strings escape `"`, `\`, `/`, control characters and
//! DEL, and pass other bytes through. Nesting deeper than `encode_max_depth` (1000) is an error.
//!
//! Decoding: JSON with C's `strtod` for numbers (so, by default, also hexadecimal, `inf`,
//! `nan` and a leading `+`: `decode_invalid_numbers`); `\u` escapes to UTF-8, surrogate pairs
//! joined; `null` is `cjson.null`, a NULL light userdata. The text ends at its first NUL byte,
//! as C reads it. Errors name the token found and its position ("Expected value but found
//! invalid token at character 1"); nesting deeper than `decode_max_depth` (1000) is an error.
//!
//! Either way, Lua's bound on a C function's stack caps nesting where it caps Redis's.

use std::ptr;
use std::sync::Arc;

use mlua::{Function, LightUserData, Lua, Table, Value};
use parking_lot::Mutex;

use super::capi::{self, Args, Fail, Ret, arg_error, error};
use crate::strtod::strtod;

/// The settings a `cjson` table's functions share (each `cjson.new()` has its own).
#[derive(Debug, Clone, Copy)]
struct Config {
    sparse_convert: bool,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    /// 0: off (an error), 1: on (`inf`, `nan`), 2: written as `null`.
    encode_invalid_numbers: usize,
    decode_invalid_numbers: usize,
    encode_keep_buffer: usize,
    encode_number_precision: i32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: 1,
            encode_keep_buffer: 1,
            encode_number_precision: 14,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

/// The `cjson` table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    new_module(lua, capi::next_function(lua)?)
}

/// A `cjson` table with settings of its own (`cjson.new()`).
fn new_module(lua: &Lua, next: Function) -> mlua::Result<Table> {
    let cfg: Shared = Arc::new(Mutex::new(Config::default()));
    let t = lua.create_table()?;
    // The order Lua CJSON registers them in (a table's layout follows its insertions).
    let (c, n) = (cfg.clone(), next.clone());
    t.set(
        "encode",
        capi::function(lua, move |lua, a| {
            let config = *c.lock();
            encode(lua, a, config, &n)
        })?,
    )?;
    let c = cfg.clone();
    t.set(
        "decode",
        capi::function(lua, move |lua, a| {
            let config = *c.lock();
            decode(lua, a, config)
        })?,
    )?;
    let c = cfg.clone();
    t.set(
        "encode_sparse_array",
        capi::function(lua, move |lua, a| {
            arg_count(a, 3)?;
            let mut cfg = c.lock();
            let mut convert = usize::from(cfg.sparse_convert);
            let r = enum_option(lua, a, 1, &mut convert, BOOL_OPTIONS);
            cfg.sparse_convert = convert == 1;
            let convert = r?;
            let ratio = integer_option(lua, a, 2, &mut cfg.sparse_ratio, 0, i32::MAX)?;
            let safe = integer_option(lua, a, 3, &mut cfg.sparse_safe, 0, i32::MAX)?;
            Ok(Ret::Values(vec![convert, ratio, safe]))
        })?,
    )?;
    t.set(
        "encode_max_depth",
        int_setting(lua, &cfg, |c| &mut c.encode_max_depth, 1, i32::MAX)?,
    )?;
    t.set(
        "decode_max_depth",
        int_setting(lua, &cfg, |c| &mut c.decode_max_depth, 1, i32::MAX)?,
    )?;
    t.set(
        "encode_number_precision",
        int_setting(lua, &cfg, |c| &mut c.encode_number_precision, 1, 14)?,
    )?;
    t.set(
        "encode_keep_buffer",
        enum_setting(lua, &cfg, |c| &mut c.encode_keep_buffer, BOOL_OPTIONS)?,
    )?;
    t.set(
        "encode_invalid_numbers",
        enum_setting(
            lua,
            &cfg,
            |c| &mut c.encode_invalid_numbers,
            &["off", "on", "null"],
        )?,
    )?;
    t.set(
        "decode_invalid_numbers",
        enum_setting(lua, &cfg, |c| &mut c.decode_invalid_numbers, BOOL_OPTIONS)?,
    )?;
    let n = next.clone();
    t.set(
        "new",
        capi::function(lua, move |lua, _| {
            Ok(Ret::one(Value::Table(new_module(lua, n.clone())?)))
        })?,
    )?;
    t.set("null", null())?;
    t.set("_NAME", "cjson")?;
    t.set("_VERSION", "2.1.0")?;
    Ok(t)
}

/// `cjson.null`: a NULL light userdata, as Lua CJSON's.
fn null() -> Value {
    Value::LightUserData(LightUserData(ptr::null_mut()))
}

// ---------------------------------------------------------------------------------------------
// Settings.

const BOOL_OPTIONS: &[&str] = &["off", "on"];

/// At most `n` arguments.
fn arg_count(a: &Args, n: usize) -> capi::Result<()> {
    if a.len() > n {
        return Err(arg_error(n + 1, "found too many arguments"));
    }
    Ok(())
}

/// An integer setting: set from argument `i` unless nil, then returned. The range error names
/// argument 1 whatever `i` is, as Lua CJSON's.
fn integer_option(
    lua: &Lua,
    a: &Args,
    i: usize,
    setting: &mut i32,
    min: i32,
    max: i32,
) -> capi::Result<Value> {
    if !matches!(a.get(i)?, Value::Nil) {
        // `int value = luaL_checkinteger(…)`: the low 32 bits.
        let value = a.check_integer(lua, i)? as i32;
        if !(min <= value && value <= max) {
            return Err(arg_error(
                1,
                format!("expected integer between {min} and {max}"),
            ));
        }
        *setting = value;
    }
    Ok(Value::Integer(i64::from(*setting)))
}

/// An option setting: a boolean (off/on) or one of `options` by name, from argument `i` unless
/// nil; returned as a boolean when off or on, else by name.
fn enum_option(
    lua: &Lua,
    a: &Args,
    i: usize,
    setting: &mut usize,
    options: &[&str],
) -> capi::Result<Value> {
    match a.get(i)? {
        Value::Nil => {}
        Value::Boolean(b) => *setting = usize::from(b),
        _ => {
            // `luaL_checkoption`: the name as C reads it, up to a NUL.
            let name = a.check_bytes(i)?.c_string();
            match options.iter().position(|o| o.as_bytes() == name) {
                Some(k) => *setting = k,
                None => {
                    let mut m = b"invalid option '".to_vec();
                    m.extend_from_slice(&name);
                    m.push(b'\'');
                    return Err(Fail::Arg(i, m));
                }
            }
        }
    }
    Ok(match *setting {
        0 | 1 => Value::Boolean(*setting == 1),
        k => Value::String(lua.create_string(options.get(k).copied().unwrap_or(""))?),
    })
}

/// A function setting one integer (`encode_max_depth` …).
fn int_setting(
    lua: &Lua,
    cfg: &Shared,
    field: fn(&mut Config) -> &mut i32,
    min: i32,
    max: i32,
) -> mlua::Result<Function> {
    let cfg = cfg.clone();
    capi::function(lua, move |lua, a| {
        arg_count(a, 1)?;
        let mut c = cfg.lock();
        Ok(Ret::one(integer_option(
            lua,
            a,
            1,
            field(&mut c),
            min,
            max,
        )?))
    })
}

/// A function setting one option (`encode_keep_buffer` …).
fn enum_setting(
    lua: &Lua,
    cfg: &Shared,
    field: fn(&mut Config) -> &mut usize,
    options: &'static [&'static str],
) -> mlua::Result<Function> {
    let cfg = cfg.clone();
    capi::function(lua, move |lua, a| {
        arg_count(a, 1)?;
        let mut c = cfg.lock();
        Ok(Ret::one(enum_option(lua, a, 1, field(&mut c), options)?))
    })
}

// ---------------------------------------------------------------------------------------------
// Encoding.

/// `cjson.encode(value)`.
fn encode(lua: &Lua, a: &Args, cfg: Config, next: &Function) -> capi::Result<Ret> {
    if a.len() != 1 {
        return Err(arg_error(1, "expected 1 argument"));
    }
    let mut e = Encoder {
        lua,
        cfg,
        next,
        out: Vec::new(),
        open: Vec::new(),
        table: None,
        key: Value::Nil,
        spill: None,
        slots: 1,
    };
    e.run(a.get(1)?)?;
    Ok(Ret::one(Value::String(lua.create_string(&e.out)?)))
}

/// A table being written.
enum Open {
    /// An array of `len` elements, `done` of them written.
    Array { len: i32, done: i32 },
    /// An object, and whether a pair has been written.
    Object { any: bool },
}

impl Open {
    /// The C stack slots the C encoder uses while inside it: the element being written (an
    /// array), or the key and the value (an object).
    fn slots(&self) -> usize {
        match self {
            Open::Array { .. } => 1,
            Open::Object { .. } => 2,
        }
    }
}

struct Encoder<'a> {
    lua: &'a Lua,
    cfg: Config,
    next: &'a Function,
    out: Vec<u8>,
    open: Vec<Open>,
    /// The innermost open table, and (an object) the key last written.
    table: Option<Table>,
    key: Value,
    /// The open tables below the innermost and their keys, in a Lua table: deep nesting holds
    /// no mlua references.
    spill: Option<Table>,
    /// The C stack slots in use: the argument and what each open table adds.
    slots: usize,
}

impl Encoder<'_> {
    fn run(&mut self, root: Value) -> capi::Result<()> {
        self.value(root)?;
        loop {
            let Some(t) = self.table.clone() else {
                return Ok(());
            };
            match self.open.last_mut() {
                None => return Ok(()),
                Some(Open::Array { len, done }) => {
                    if *done == *len {
                        self.out.push(b']');
                        self.close()?;
                        continue;
                    }
                    *done += 1;
                    let i = *done;
                    if i > 1 {
                        self.out.push(b',');
                    }
                    let v: Value = t.raw_get(i)?;
                    self.value(v)?;
                }
                Some(Open::Object { any }) => {
                    let first = !*any;
                    *any = true;
                    let key = std::mem::replace(&mut self.key, Value::Nil);
                    let Some((k, v)) = capi::next_pair(self.next, &t, key)? else {
                        self.out.push(b'}');
                        self.close()?;
                        continue;
                    };
                    if !first {
                        self.out.push(b',');
                    }
                    match &k {
                        Value::Integer(_) | Value::Number(_) => {
                            self.out.push(b'"');
                            self.number(&k)?;
                            self.out.extend_from_slice(b"\":");
                        }
                        Value::String(s) => {
                            escape(&s.as_bytes(), &mut self.out);
                            self.out.push(b':');
                        }
                        other => {
                            return Err(error(format!(
                                "Cannot serialise {}: table key must be a number or string",
                                capi::type_name(other)
                            )));
                        }
                    }
                    self.key = k;
                    self.value(v)?;
                }
            }
        }
    }

    /// Writes a scalar, or opens a table.
    fn value(&mut self, v: Value) -> capi::Result<()> {
        match &v {
            Value::String(s) => escape(&s.as_bytes(), &mut self.out),
            Value::Integer(_) | Value::Number(_) => self.number(&v)?,
            Value::Boolean(b) => self
                .out
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            Value::Table(t) => self.open_table(t.clone())?,
            other => {
                return Err(error(format!(
                    "Cannot serialise {}: type not supported",
                    capi::type_name(other)
                )));
            }
        }
        Ok(())
    }

    fn number(&mut self, v: &Value) -> capi::Result<()> {
        let x = capi::number_of(v).unwrap_or(0.0);
        match self.cfg.encode_invalid_numbers {
            0 if !x.is_finite() => {
                return Err(error("Cannot serialise number: must not be NaN or Inf"));
            }
            1 if x.is_nan() => {
                self.out.extend_from_slice(b"nan");
                return Ok(());
            }
            2 if !x.is_finite() => {
                self.out.extend_from_slice(b"null");
                return Ok(());
            }
            _ => {}
        }
        let precision = self.cfg.encode_number_precision.clamp(1, 14) as usize;
        self.out
            .extend_from_slice(capi::fmt_g(x, precision).as_bytes());
        Ok(())
    }

    fn open_table(&mut self, t: Table) -> capi::Result<()> {
        let depth = self.open.len() + 1;
        if depth > self.cfg.encode_max_depth as usize || self.slots + 3 > capi::MAX_C_STACK {
            return Err(error(format!(
                "Cannot serialise, excessive nesting ({depth})"
            )));
        }
        let len = self.array_length(&t)?;
        let open = if len > 0 {
            self.out.push(b'[');
            Open::Array { len, done: 0 }
        } else {
            self.out.push(b'{');
            Open::Object { any: false }
        };
        if let Some(parent) = self.table.take() {
            let spill = match &self.spill {
                Some(s) => s.clone(),
                None => {
                    let s = self.lua.create_table()?;
                    self.spill = Some(s.clone());
                    s
                }
            };
            let d = self.open.len();
            spill.raw_set(2 * d - 1, parent)?;
            spill.raw_set(2 * d, std::mem::replace(&mut self.key, Value::Nil))?;
        }
        self.slots += open.slots();
        self.open.push(open);
        self.table = Some(t);
        Ok(())
    }

    fn close(&mut self) -> capi::Result<()> {
        if let Some(done) = self.open.pop() {
            self.slots = self.slots.saturating_sub(done.slots());
        }
        self.table = None;
        let d = self.open.len();
        if d > 0
            && let Some(spill) = &self.spill
        {
            self.table = spill.raw_get(2 * d - 1)?;
            self.key = spill.raw_get(2 * d)?;
            spill.raw_set(2 * d - 1, Value::Nil)?;
            spill.raw_set(2 * d, Value::Nil)?;
        }
        Ok(())
    }

    /// The array length of `t` as Lua CJSON computes it: > 0 an array of that length, ≤ 0 an
    /// object. Keys must all be whole numbers ≥ 1; the largest is kept in a C `int` (a key past
    /// `INT_MAX` makes it negative: an object).
    fn array_length(&self, t: &Table) -> capi::Result<i32> {
        let (mut max, mut items, mut array) = (0i32, 0i32, true);
        t.for_each::<Value, Value>(|k, _| {
            if !array {
                return Ok(());
            }
            match capi::number_of(&k) {
                Some(k) if k != 0.0 && k.floor() == k && k >= 1.0 => {
                    if k > f64::from(max) {
                        max = capi::d2i32(k);
                    }
                    items = items.wrapping_add(1);
                }
                _ => array = false,
            }
            Ok(())
        })?;
        if !array {
            return Ok(-1);
        }
        let cfg = &self.cfg;
        if cfg.sparse_ratio > 0
            && max > items.wrapping_mul(cfg.sparse_ratio)
            && max > cfg.sparse_safe
        {
            if !cfg.sparse_convert {
                return Err(error("Cannot serialise table: excessively sparse array"));
            }
            return Ok(-1);
        }
        Ok(max)
    }
}

/// `s` as a JSON string.
fn escape(s: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..=0x1f | 0x7f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 15)]);
            }
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

// ---------------------------------------------------------------------------------------------
// Decoding.

/// `cjson.decode(text)`.
fn decode(lua: &Lua, a: &Args, cfg: Config) -> capi::Result<Ret> {
    if a.len() != 1 {
        return Err(arg_error(1, "expected 1 argument"));
    }
    let text = a.check_bytes(1)?;
    text.with(|text| {
        if text.len() >= 2 && (text[0] == 0 || text[1] == 0) {
            return Err(error("JSON parser does not support UTF-16 or UTF-32"));
        }
        let mut p = Parser {
            lua,
            cfg,
            data: capi::c_str(text),
            pos: 0,
            spill: None,
        };
        Ok(Ret::one(p.document()?))
    })
}

/// A token, as Lua CJSON's tokenizer makes them.
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Num(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    /// What is wrong ("invalid token", "invalid number", …).
    Error(&'static str),
}

impl Tok {
    /// How an error message names the token.
    fn name(&self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str(_) => "T_STRING",
            Tok::Num(_) => "T_NUMBER",
            Tok::Bool(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(e) => e,
        }
    }
}

/// A table being filled.
enum Fill {
    /// The next index.
    Array(i32),
    /// The key of the current pair.
    Object(Vec<u8>),
}

struct Parser<'a> {
    lua: &'a Lua,
    cfg: Config,
    /// The text up to its first NUL (where C's parser sees its end).
    data: &'a [u8],
    pos: usize,
    /// The open tables below the innermost (see [`Encoder::spill`]).
    spill: Option<Table>,
}

/// "Expected `what` but found <token> at character <position>".
fn expected(what: &str, tok: &Tok, at: usize) -> Fail {
    error(format!(
        "Expected {what} but found {} at character {}",
        tok.name(),
        c_int(at + 1)
    ))
}

/// A position as Lua CJSON prints it: a `size_t` given to `%d`, so its low 32 bits, signed.
fn c_int(n: usize) -> i32 {
    n as u32 as i32
}

impl Parser<'_> {
    /// The byte at `i`, NUL past the end.
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    /// The next token and where it starts.
    fn token(&mut self) -> (Tok, usize) {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let start = self.pos;
        let c = self.at(start);
        let single = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            _ => None,
        };
        if let Some(t) = single {
            self.pos += 1;
            return (t, start);
        }
        let rest = &self.data[start.min(self.data.len())..];
        let tok = match c {
            0 => return (Tok::End, start),
            b'"' => self.string(),
            b'-' | b'0'..=b'9' => {
                if self.cfg.decode_invalid_numbers == 0 && invalid_number(rest) {
                    Tok::Error("invalid number")
                } else {
                    self.number()
                }
            }
            _ if rest.starts_with(b"true") => {
                self.pos += 4;
                Tok::Bool(true)
            }
            _ if rest.starts_with(b"false") => {
                self.pos += 5;
                Tok::Bool(false)
            }
            _ if rest.starts_with(b"null") => {
                self.pos += 4;
                Tok::Null
            }
            // Only what is surely not JSON (inf, nan, hex, `+`) gets to `strtod` this way.
            b'+' | b'i' | b'I' | b'n' | b'N'
                if self.cfg.decode_invalid_numbers != 0 && invalid_number(rest) =>
            {
                self.number()
            }
            _ => Tok::Error("invalid token"),
        };
        let at = match tok {
            // An error is placed where it was found.
            Tok::Error(_) => self.pos,
            _ => start,
        };
        (tok, at)
    }

    fn number(&mut self) -> Tok {
        let r = strtod(self.data.get(self.pos..).unwrap_or_default());
        if r.used == 0 {
            return Tok::Error("invalid number");
        }
        self.pos += r.used;
        Tok::Num(r.value)
    }

    /// A string token; on an error, `pos` is left where it was found.
    fn string(&mut self) -> Tok {
        self.pos += 1;
        let mut s = Vec::new();
        loop {
            let c = self.at(self.pos);
            match c {
                b'"' => break,
                0 => return Tok::Error("unexpected end of string"),
                b'\\' => {
                    let e = match self.at(self.pos + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 8,
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => 12,
                        b'r' => b'\r',
                        b'u' => {
                            if !self.unicode_escape(&mut s) {
                                return Tok::Error("invalid unicode escape code");
                            }
                            continue;
                        }
                        _ => return Tok::Error("invalid escape code"),
                    };
                    s.push(e);
                    self.pos += 2;
                }
                _ => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        Tok::Str(s)
    }

    /// Four hex digits at `i`.
    fn hex4(&self, i: usize) -> Option<u32> {
        (i..i + 4).try_fold(0, |acc, j| {
            let d = char::from(self.at(j)).to_digit(16)?;
            Some(acc << 4 | d)
        })
    }

    /// A `\uXXXX` escape (with its low surrogate, for a high one) at `pos`, as UTF-8.
    fn unicode_escape(&mut self, s: &mut Vec<u8>) -> bool {
        let Some(mut cp) = self.hex4(self.pos + 2) else {
            return false;
        };
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 {
                return false;
            }
            if self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.pos + 8) else {
                return false;
            };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        let mut buf = [0u8; 4];
        // Every value here is a scalar value (surrogates were paired or refused).
        match char::from_u32(cp) {
            Some(ch) => s.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes()),
            None => return false,
        }
        self.pos += len;
        true
    }

    /// The whole text: one value, then the end.
    fn document(&mut self) -> capi::Result<Value> {
        let v = self.value()?;
        let (tok, at) = self.token();
        if !matches!(tok, Tok::End) {
            return Err(expected("the end", &tok, at));
        }
        Ok(v)
    }

    /// One value, tables filled without recursion.
    fn value(&mut self) -> capi::Result<Value> {
        let mut open: Vec<Fill> = Vec::new();
        let mut table: Option<Table> = None;
        // The C stack slots in use: the argument, and each open table with (an object) its key.
        let mut slots = 1;
        let mut tok = self.token();
        loop {
            // `tok` starts a value.
            let mut v = match tok.0 {
                Tok::Str(s) => Value::String(self.lua.create_string(&s)?),
                Tok::Num(n) => Value::Number(n),
                Tok::Bool(b) => Value::Boolean(b),
                Tok::Null => null(),
                Tok::ObjBegin | Tok::ArrBegin => {
                    let object = matches!(tok.0, Tok::ObjBegin);
                    let depth = open.len() + 1;
                    let need = if object { 3 } else { 2 };
                    if depth > self.cfg.decode_max_depth as usize
                        || slots + need > capi::MAX_C_STACK
                    {
                        return Err(error(format!(
                            "Found too many nested data structures ({depth}) at character {}",
                            c_int(self.pos)
                        )));
                    }
                    let t = self.lua.create_table()?;
                    let next = self.token();
                    let empty = if object {
                        matches!(next.0, Tok::ObjEnd)
                    } else {
                        matches!(next.0, Tok::ArrEnd)
                    };
                    if empty {
                        Value::Table(t)
                    } else {
                        if let Some(parent) = table.take() {
                            self.spill_set(open.len(), parent)?;
                        }
                        table = Some(t);
                        if object {
                            let key = self.key(next)?;
                            slots += 2;
                            open.push(Fill::Object(key));
                            tok = self.token();
                        } else {
                            slots += 1;
                            open.push(Fill::Array(1));
                            tok = next;
                        }
                        continue;
                    }
                }
                _ => return Err(expected("value", &tok.0, tok.1)),
            };
            // Store it; a table that ends here is then a value to store in turn.
            loop {
                let Some(top) = open.last_mut() else {
                    return Ok(v);
                };
                let Some(t) = &table else {
                    return Ok(v);
                };
                match top {
                    Fill::Array(i) => {
                        t.raw_set(*i, v)?;
                        let next = self.token();
                        match next.0 {
                            Tok::ArrEnd => {}
                            Tok::Comma => {
                                *i = i.wrapping_add(1);
                                tok = self.token();
                                break;
                            }
                            other => return Err(expected("comma or array end", &other, next.1)),
                        }
                    }
                    Fill::Object(key) => {
                        t.raw_set(self.lua.create_string(&*key)?, v)?;
                        let next = self.token();
                        match next.0 {
                            Tok::ObjEnd => {}
                            Tok::Comma => {
                                let after = self.token();
                                *key = self.key(after)?;
                                tok = self.token();
                                break;
                            }
                            other => {
                                return Err(expected("comma or object end", &other, next.1));
                            }
                        }
                    }
                }
                // The table ended.
                slots = slots.saturating_sub(match open.pop() {
                    Some(Fill::Object(_)) => 2,
                    _ => 1,
                });
                v = match table.take() {
                    Some(t) => Value::Table(t),
                    None => Value::Nil,
                };
                if !open.is_empty() {
                    table = Some(self.spill_take(open.len())?);
                }
            }
        }
    }

    /// An object's key (`tok`), and the colon after it.
    fn key(&mut self, tok: (Tok, usize)) -> capi::Result<Vec<u8>> {
        let Tok::Str(key) = tok.0 else {
            return Err(expected("object key string", &tok.0, tok.1));
        };
        let colon = self.token();
        if !matches!(colon.0, Tok::Colon) {
            return Err(expected("colon", &colon.0, colon.1));
        }
        Ok(key)
    }

    fn spill_set(&mut self, depth: usize, t: Table) -> mlua::Result<()> {
        if self.spill.is_none() {
            self.spill = Some(self.lua.create_table()?);
        }
        match &self.spill {
            Some(s) => s.raw_set(depth, t),
            None => Ok(()),
        }
    }

    fn spill_take(&mut self, depth: usize) -> capi::Result<Table> {
        let Some(s) = &self.spill else {
            return Err(error("cjson: lost a table"));
        };
        let t: Table = s.raw_get(depth)?;
        s.raw_set(depth, Value::Nil)?;
        Ok(t)
    }
}

/// Whether a number token is one strict JSON refuses: a leading `+`, hexadecimal, a leading
/// zero, `inf` or `nan` (others `strtod` takes or refuses).
fn invalid_number(s: &[u8]) -> bool {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    if at(0) == b'+' {
        return true;
    }
    let p = usize::from(at(0) == b'-');
    if at(p) == b'0' {
        let c = at(p + 1);
        return c | 0x20 == b'x' || c.is_ascii_digit();
    }
    if at(p) <= b'9' {
        return false;
    }
    let word = |w: &[u8]| s.len() >= p + 3 && s[p..p + 3].eq_ignore_ascii_case(w);
    word(b"inf") || word(b"nan")
}

#[cfg(test)]
mod tests {
    use crate::script::libs::testing::{error_of, eval};

    /// Each chunk's result as `redis-cli -p N eval "<chunk>" 0` gives it on redis-server 7.0.15
    /// (the chunks return strings).
    #[test]
    fn encode_as_redis() {
        for (chunk, want) in [
            ("return cjson.encode({1, 2, 3})", "[1,2,3]"),
            ("return cjson.encode({})", "{}"),
            (
                "return cjson.encode({{}, {{}}, {a = {}}})",
                r#"[{},[{}],{"a":{}}]"#,
            ),
            // Object keys in `next` order, as Redis's Lua gives them.
            (
                "return cjson.encode({a = 1, b = 2, c = 3, d = {1, 2}, e = 'x'})",
                r#"{"a":1,"c":3,"b":2,"e":"x","d":[1,2]}"#,
            ),
            // Sparse arrays: holes up to the ratio, or up to index 10, are nulls.
            (
                "return cjson.encode({[1] = 1, [2] = 2, [4] = 4})",
                "[1,2,null,4]",
            ),
            (
                "return cjson.encode({[10] = 1})",
                "[null,null,null,null,null,null,null,null,null,1]",
            ),
            ("return cjson.encode({nil, 2})", "[null,2]"),
            (
                "cjson.encode_sparse_array(true) return cjson.encode({[1] = 1, [20] = 2})",
                r#"{"1":1,"20":2}"#,
            ),
            // Keys that are not positive whole numbers make an object, numbers as strings.
            ("return cjson.encode({[0] = 1})", r#"{"0":1}"#),
            ("return cjson.encode({[1.5] = 1})", r#"{"1.5":1}"#),
            ("return cjson.encode({[1] = 1, a = 2})", r#"{"1":1,"a":2}"#),
            ("return cjson.encode({[2^31] = 1})", r#"{"2147483648":1}"#),
            (
                "return cjson.encode({[2^53] = 1})",
                r#"{"9.007199254741e+15":1}"#,
            ),
            (
                "return cjson.encode({[1] = 1, [2] = 2, [3e9] = 3})",
                r#"{"1":1,"2":2,"3000000000":3}"#,
            ),
            (
                "return cjson.encode({a = {b = {c = {1, {d = true}}}}})",
                r#"{"a":{"b":{"c":[1,{"d":true}]}}}"#,
            ),
            (
                "return cjson.encode({1, 'two', {three = 3}, false, cjson.null})",
                r#"[1,"two",{"three":3},false,null]"#,
            ),
            // Escapes: `/` too, control characters and DEL as \u00XX, other bytes as they are.
            ("return cjson.encode('a/b\"c\\\\d')", r#""a\/b\"c\\d""#),
            (
                "return cjson.encode('\\0\\1\\7\\8\\9\\10\\11\\12\\13\\14\\27\\31\\32\\127')",
                r#""\u0000\u0001\u0007\b\t\n\u000b\f\r\u000e\u001b\u001f \u007f""#,
            ),
            (
                "return cjson.encode('h\\195\\169llo \\226\\152\\131')",
                "\"h\u{e9}llo \u{2603}\"",
            ),
            // Numbers: %.14g.
            (
                "return cjson.encode({0.1, -0.0, 1e15, 1e14, 123456789012345, 1 / 3})",
                "[0.1,-0,1e+15,1e+14,1.2345678901234e+14,0.33333333333333]",
            ),
            (
                "return cjson.encode({1e-5, 1e-4, 2^63, 5e-324, 99999999999999.5})",
                "[1e-05,0.0001,9.2233720368548e+18,4.9406564584125e-324,1e+14]",
            ),
            (
                "cjson.encode_number_precision(3) return cjson.encode({1 / 3, 1234.5, 0.0001234})",
                "[0.333,1.23e+03,0.000123]",
            ),
            (
                "cjson.encode_invalid_numbers(true) return cjson.encode({1 / 0, -1 / 0, 0 / 0})",
                "[inf,-inf,nan]",
            ),
            (
                "cjson.encode_invalid_numbers('null') return cjson.encode({1 / 0, 0 / 0, 1})",
                "[null,null,1]",
            ),
            ("return tostring(#cjson.encode(deep(1000, 1)))", "2001"),
        ] {
            assert_eq!(eval(chunk), want, "{chunk}");
        }
    }

    #[test]
    fn encode_errors_as_redis() {
        for (expr, want) in [
            (
                "cjson.encode({[1] = 1, [11] = 11})",
                "Cannot serialise table: excessively sparse array",
            ),
            (
                "cjson.encode({[1 / 0] = 1})",
                "Cannot serialise number: must not be NaN or Inf",
            ),
            (
                "cjson.encode(0 / 0)",
                "Cannot serialise number: must not be NaN or Inf",
            ),
            (
                "cjson.encode({[true] = 1})",
                "Cannot serialise boolean: table key must be a number or string",
            ),
            (
                "cjson.encode({f = type})",
                "Cannot serialise function: type not supported",
            ),
            (
                "cjson.encode(coroutine.create(function() end))",
                "Cannot serialise thread: type not supported",
            ),
            (
                "cjson.encode(deep(1001, 1))",
                "Cannot serialise, excessive nesting (1001)",
            ),
            (
                "cjson.encode()",
                "bad argument #1 to 'encode' (expected 1 argument)",
            ),
            (
                "cjson:encode(1)",
                "calling 'encode' on bad self (expected 1 argument)",
            ),
            (
                "cjson.encode_number_precision(15)",
                "bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)",
            ),
            (
                "cjson.encode_sparse_array(true, -1)",
                "bad argument #1 to 'encode_sparse_array' (expected integer between 0 and 2147483647)",
            ),
            (
                "cjson.encode_max_depth(1, 2)",
                "bad argument #2 to 'encode_max_depth' (found too many arguments)",
            ),
            (
                "cjson.encode_invalid_numbers('maybe')",
                "bad argument #1 to 'encode_invalid_numbers' (invalid option 'maybe')",
            ),
        ] {
            assert_eq!(error_of(expr), format!("user_script:1: {want}"), "{expr}");
        }
        // Lua's C stack bound, with the depth limit raised: 7998 nested arrays, and objects
        // from 3999 on (two slots each).
        assert_eq!(
            eval(
                "cjson.encode_max_depth(100000) local ok, e = pcall(cjson.encode, deep(7998, 1)) \
                 return e"
            ),
            "Cannot serialise, excessive nesting (7998)"
        );
        assert_eq!(
            eval(
                "cjson.encode_max_depth(100000) local ok = pcall(cjson.encode, deep(7997, 1)) \
                 return tostring(ok)"
            ),
            "true"
        );
    }

    #[test]
    fn decode_as_redis() {
        for (chunk, want) in [
            (
                "local t = cjson.decode('{\"a\":1,\"b\":[true,false,null]}') \
                 return t.a .. tostring(t.b[1]) .. tostring(t.b[3] == cjson.null)",
                "1truetrue",
            ),
            (
                "return table.concat({cjson.decode('1e400'), cjson.decode('-1e400'), \
                 cjson.decode('1e-400'), cjson.decode('0x10'), cjson.decode('+1'), \
                 cjson.decode('01'), cjson.decode('1.')}, ',')",
                "inf,-inf,0,16,1,1,1",
            ),
            (
                "return tostring(cjson.decode('NaN')) .. tostring(cjson.decode('-Infinity'))",
                "nan-inf",
            ),
            (
                "return cjson.decode('\"\\\\u00e9\\\\u20AC\\\\ud83d\\\\ude00\"')",
                "\u{e9}\u{20ac}\u{1f600}",
            ),
            (
                "return cjson.decode('\"\\\\/\\\\b\\\\f\\\\n\\\\r\\\\t\\\\\"\\\\\\\\\"')",
                "/\u{8}\u{c}\n\r\t\"\\",
            ),
            ("return #cjson.decode('\"a\\\\u0000b\"')", "3"),
            // The text ends at a NUL, as C reads it.
            ("return #cjson.decode('[1]\\0garbage')", "1"),
            ("return cjson.decode(123)", "123"),
            (
                "return cjson.encode(cjson.decode('{\"b\":[1,2,{\"c\":\"d\"}],\"a\":null}'))",
                r#"{"a":null,"b":[1,2,{"c":"d"}]}"#,
            ),
            (
                "return #cjson.decode(string.rep('[', 1000) .. string.rep(']', 1000))",
                "1",
            ),
        ] {
            assert_eq!(eval(chunk), want, "{chunk}");
        }
    }

    #[test]
    fn decode_errors_as_redis() {
        for (text, want) in [
            ("", "Expected value but found T_END at character 1"),
            ("[1,", "Expected value but found T_END at character 4"),
            (
                "[1 2]",
                "Expected comma or array end but found T_NUMBER at character 4",
            ),
            (
                "{\"a\"}",
                "Expected colon but found T_OBJ_END at character 5",
            ),
            (
                "{1:2}",
                "Expected object key string but found T_NUMBER at character 2",
            ),
            (
                "{\"a\":1,}",
                "Expected object key string but found T_OBJ_END at character 8",
            ),
            (
                "{\"a\":1 \"b\":2}",
                "Expected comma or object end but found T_STRING at character 8",
            ),
            ("[1,]", "Expected value but found T_ARR_END at character 4"),
            ("x", "Expected value but found invalid token at character 1"),
            (
                ".5",
                "Expected value but found invalid token at character 1",
            ),
            (
                "-",
                "Expected value but found invalid number at character 1",
            ),
            (
                "1e",
                "Expected the end but found invalid token at character 2",
            ),
            (
                "truex",
                "Expected the end but found invalid token at character 5",
            ),
            (
                "\"\\\\x\"",
                "Expected value but found invalid escape code at character 2",
            ),
            (
                "\"\\\\ud800\"",
                "Expected value but found invalid unicode escape code at character 2",
            ),
            (
                "\"\\\\udc00\\\\ud800\"",
                "Expected value but found invalid unicode escape code at character 2",
            ),
            (
                "\"abc",
                "Expected value but found unexpected end of string at character 5",
            ),
            ("\\0[", "JSON parser does not support UTF-16 or UTF-32"),
        ] {
            let expr = format!("cjson.decode('{text}')");
            assert_eq!(error_of(&expr), format!("user_script:1: {want}"), "{expr}");
        }
        assert_eq!(
            error_of("cjson.decode(string.rep('[', 1001) .. string.rep(']', 1001))"),
            "user_script:1: Found too many nested data structures (1001) at character 1001"
        );
        assert_eq!(
            error_of("cjson.decode(string.rep('{\"a\":', 1001) .. '1' .. string.rep('}', 1001))"),
            "user_script:1: Found too many nested data structures (1001) at character 5001"
        );
        assert_eq!(
            eval(
                "cjson.decode_invalid_numbers(false) local ok, e = pcall(cjson.decode, '0x10') \
                 return e"
            ),
            "Expected value but found invalid number at character 1"
        );
        assert_eq!(
            error_of("cjson.decode(nil)"),
            "user_script:1: bad argument #1 to 'decode' (string expected, got nil)"
        );
        assert_eq!(
            eval("local ok, e = pcall(cjson.decode) return e"),
            "bad argument #1 to '?' (expected 1 argument)"
        );
    }

    #[test]
    fn settings_and_instances() {
        assert_eq!(
            eval(
                "local c = cjson.new() c.encode_max_depth(2) \
                 return cjson.encode_max_depth() .. ' ' .. c.encode_max_depth() .. ' ' \
                 .. c.encode({{1}}) .. ' ' .. select(2, pcall(c.encode, {{{1}}}))"
            ),
            "1000 2 [[1]] Cannot serialise, excessive nesting (3)"
        );
        assert_eq!(
            eval(
                "return table.concat({tostring(cjson.encode_sparse_array('on', nil, 20)), \
                 select(2, cjson.encode_sparse_array())}, ' ')"
            ),
            "true 2 20"
        );
        assert_eq!(
            eval("return tostring(cjson.encode_invalid_numbers('null'))"),
            "null"
        );
        assert_eq!(
            eval("return cjson._NAME .. ' ' .. cjson._VERSION .. ' ' .. type(cjson.null)"),
            "cjson 2.1.0 userdata"
        );
    }
}

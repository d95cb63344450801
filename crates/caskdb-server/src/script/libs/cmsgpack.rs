//! `cmsgpack`: lua-cmsgpack 0.4.0 as Redis 7.0 ships it.
//!
//! Packing: a number that is a whole 64-bit integer is the smallest integer format that holds
//! it (positive fixint, uint 8/16/32/64, negative fixint, int 8/16/32/64); other numbers are a
//! float 32 when that holds them exactly, else a float 64; strings are fixstr/str 8/16/32 (never
//! bin); a table whose keys are exactly 1..n is an array, any other a map (keys in `next`
//! order); tables nested 16 deep, and values msgpack has no type for, are nil.
//!
//! Unpacking reads every type lua-cmsgpack reads (not bin, ext or fixext: "Bad data format");
//! a uint 64 past 2^63 wraps to negative, as the C code pushes it as a signed integer. Nesting
//! has no limit of its own: Lua's C stack bound does, with lua-cmsgpack's errors.

use mlua::{Lua, Table, Value};

use super::capi::{self, Args, Fail, Ret, arg_error, error};

/// Tables this deep are packed as nil (`LUACMSGPACK_MAX_NESTING`).
const MAX_NESTING: usize = 16;

/// The `cmsgpack` table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("pack", capi::function(lua, pack)?)?;
    t.set(
        "unpack",
        capi::function(lua, |lua, a| unpack_full(lua, a, 0, 0))?,
    )?;
    t.set("unpack_one", capi::function(lua, unpack_one)?)?;
    t.set("unpack_limit", capi::function(lua, unpack_limit)?)?;
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

// ---------------------------------------------------------------------------------------------
// Packing.

/// `cmsgpack.pack(...)`: each argument packed, concatenated.
fn pack(lua: &Lua, a: &Args) -> capi::Result<Ret> {
    if a.len() == 0 {
        return Err(arg_error(0, "MessagePack pack needs input."));
    }
    // `lua_checkstack(L, nargs)` above the arguments.
    if 2 * a.len() > capi::MAX_C_STACK {
        return Err(arg_error(0, "Too many arguments for MessagePack pack."));
    }
    let mut out = Vec::new();
    for i in 1..=a.len() {
        encode(&a.get(i)?, 0, &mut out)?;
    }
    Ok(Ret::one(Value::String(lua.create_string(out)?)))
}

/// Appends `v` at nesting `level` (0 for an argument).
fn encode(v: &Value, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::String(s) => encode_bytes(&s.as_bytes(), out),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => encode_number(*n as f64, out),
        Value::Number(n) => encode_number(*n, out),
        Value::Table(t) if level < MAX_NESTING => encode_table(t, level, out)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

fn encode_bytes(s: &[u8], out: &mut Vec<u8>) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// A whole number that fits an `int64_t` as an integer, others as a float.
fn encode_number(n: f64, out: &mut Vec<u8>) {
    let i = capi::d2i64(n);
    if !n.is_infinite() && i as f64 == n {
        encode_int(i, out);
        return;
    }
    let f = n as f32;
    if f64::from(f) == n {
        out.push(0xca);
        out.extend_from_slice(&f.to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_header(n: usize, fix: u8, b16: u8, b32: u8, out: &mut Vec<u8>) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 65535 {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode_table(t: &Table, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    if is_array(t)? {
        let len = t.raw_len();
        encode_header(len, 0x90, 0xdc, 0xdd, out);
        for j in 1..=len {
            encode(&t.raw_get::<Value>(j)?, level + 1, out)?;
        }
    } else {
        let mut len = 0;
        t.for_each::<Value, Value>(|_, _| {
            len += 1;
            Ok(())
        })?;
        encode_header(len, 0x80, 0xde, 0xdf, out);
        t.for_each::<Value, Value>(|k, v| {
            encode(&k, level + 1, out)?;
            encode(&v, level + 1, out)
        })?;
    }
    Ok(())
}

/// Whether the keys are exactly 1..n: all positive numbers that are whole `int`s, as many as
/// the largest. (The empty table is an array.)
fn is_array(t: &Table) -> mlua::Result<bool> {
    let (mut count, mut max, mut array) = (0i32, 0i32, true);
    t.for_each::<Value, Value>(|k, _| {
        if !array {
            return Ok(());
        }
        match capi::number_of(&k) {
            Some(n) if n > 0.0 && f64::from(capi::d2i32(n)) == n => {
                max = max.max(n as i32);
                count = count.wrapping_add(1);
            }
            _ => array = false,
        }
        Ok(())
    })?;
    Ok(array && max == count)
}

// ---------------------------------------------------------------------------------------------
// Unpacking.

/// `cmsgpack.unpack_one(s [, offset])`.
fn unpack_one(lua: &Lua, a: &Args) -> capi::Result<Ret> {
    let offset = a.opt_integer(lua, 2, 0)?;
    unpack_full(lua, &Only1(a), 1, offset)
}

/// `cmsgpack.unpack_limit(s, limit [, offset])`.
fn unpack_limit(lua: &Lua, a: &Args) -> capi::Result<Ret> {
    let limit = a.check_integer(lua, 2)?;
    let offset = a.opt_integer(lua, 3, 0)?;
    unpack_full(lua, &Only1(a), limit, offset)
}

/// `unpack_one` and `unpack_limit` drop their arguments after the first before decoding.
struct Only1<'a>(&'a Args);

/// The arguments `unpack_full` reads.
trait Input {
    /// `luaL_checklstring(L, 1)`.
    fn string(&self) -> capi::Result<capi::Bytes>;
    /// The stack slots in use before the first result.
    fn base(&self) -> usize;
}

impl Input for Args {
    fn string(&self) -> capi::Result<capi::Bytes> {
        self.check_bytes(1)
    }
    fn base(&self) -> usize {
        self.len()
    }
}

impl Input for Only1<'_> {
    fn string(&self) -> capi::Result<capi::Bytes> {
        self.0.check_bytes(1)
    }
    fn base(&self) -> usize {
        self.0.len().min(1)
    }
}

/// Decodes up to `limit` values from `offset` (both 0: every value, and no offset returned);
/// otherwise the offset after them comes first (-1 once the input is used up).
fn unpack_full(lua: &Lua, a: &dyn Input, limit: i64, offset: i64) -> capi::Result<Ret> {
    let s = a.string()?;
    s.with(|s| {
        let len = s.len();
        if offset < 0 || limit < 0 {
            // (The C code prints the input's length where it means the limit.)
            return Err(error(format!(
                "Invalid request to unpack with offset of {} and limit of {}.",
                offset as i32, len as i32
            )));
        }
        if offset as u64 > len as u64 {
            return Err(error(format!(
                "Start offset {} greater than input length {}.",
                offset as i32, len as i32
            )));
        }
        let decode_all = limit == 0 && offset == 0;
        let limit = if decode_all {
            i64::from(i32::MAX)
        } else {
            limit
        };
        let mut d = Decoder {
            lua,
            data: s,
            pos: offset as usize,
            slots: a.base(),
            spill: None,
        };
        let mut results = capi::Results::new(lua);
        if !decode_all {
            // The offset comes first; it is known at the end.
            results.push(Value::Nil)?;
        }
        let mut count: i64 = 0;
        while d.pos < len && count < limit {
            let v = d.value()?;
            results.push(v)?;
            count += 1;
        }
        if !decode_all {
            if d.slots + 1 > capi::MAX_C_STACK {
                return Err(error("stack overflow (in function mp_unpack_full)"));
            }
            let next = if d.pos == len { -1 } else { d.pos as i64 };
            results.set_first(Value::Number(next as f64))?;
        }
        results.into_ret()
    })
}

/// What a value's first bytes announce.
enum Head {
    Scalar(Value),
    Array(usize),
    Map(usize),
}

/// A table being filled.
enum Open {
    /// Elements left, and the next index.
    Array { left: usize, index: i64 },
    /// Pairs left, and whether the key of the current pair has been read.
    Map { left: usize, have_key: bool },
}

/// Why decoding stopped: lua-cmsgpack's cursor errors, or a Lua error on the way.
enum Stop {
    Eof,
    BadFormat,
    Lua(Fail),
}

impl From<mlua::Error> for Stop {
    fn from(e: mlua::Error) -> Self {
        Stop::Lua(e.into())
    }
}

impl From<Fail> for Stop {
    fn from(e: Fail) -> Self {
        Stop::Lua(e)
    }
}

struct Decoder<'a> {
    lua: &'a Lua,
    data: &'a [u8],
    pos: usize,
    /// The C stack slots the C decoder would be using: the arguments, the values decoded, and
    /// for each open table the table and an index or key.
    slots: usize,
    /// The open tables below the innermost, and their pending keys: a Lua table, so that deep
    /// nesting holds no mlua references.
    spill: Option<Table>,
}

impl Decoder<'_> {
    /// One whole value.
    fn value(&mut self) -> capi::Result<Value> {
        match self.value_inner() {
            Ok(v) => Ok(v),
            Err(Stop::Eof) => Err(error("Missing bytes in input.")),
            Err(Stop::BadFormat) => Err(error("Bad data format in input.")),
            Err(Stop::Lua(e)) => Err(e),
        }
    }

    fn need(&self, n: usize) -> Result<(), Stop> {
        if self.data.len() - self.pos < n {
            Err(Stop::Eof)
        } else {
            Ok(())
        }
    }

    fn be(&self, from: usize, n: usize) -> u64 {
        self.data[from..from + n]
            .iter()
            .fold(0, |acc, &b| (acc << 8) | u64::from(b))
    }

    /// Reads the start of a value: a whole scalar, or an array's or map's header. As the C
    /// decoder, checks first that a byte is there, then that the stack has room.
    fn head(&mut self) -> Result<Head, Stop> {
        self.need(1)?;
        if self.slots + 1 > capi::MAX_C_STACK {
            return Err(Stop::Lua(error(
                "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)",
            )));
        }
        let p = self.pos;
        let byte = self.data[p];
        let num = |v: f64| -> Result<Head, Stop> { Ok(Head::Scalar(Value::Number(v))) };
        let fixed = |me: &mut Self, n: usize| -> Result<u64, Stop> {
            me.need(1 + n)?;
            let v = me.be(p + 1, n);
            me.pos += 1 + n;
            Ok(v)
        };
        match byte {
            0xcc => num(fixed(self, 1)? as f64),
            0xd0 => num(f64::from(fixed(self, 1)? as u8 as i8)),
            0xcd => num(fixed(self, 2)? as f64),
            0xd1 => num(f64::from(fixed(self, 2)? as u16 as i16)),
            0xce => num(fixed(self, 4)? as f64),
            0xd2 => num(f64::from(fixed(self, 4)? as u32 as i32)),
            // Pushed as a signed `lua_Integer`: past 2^63 it wraps.
            0xcf | 0xd3 => num(fixed(self, 8)? as i64 as f64),
            0xc0 => {
                self.pos += 1;
                Ok(Head::Scalar(Value::Nil))
            }
            0xc3 | 0xc2 => {
                self.pos += 1;
                Ok(Head::Scalar(Value::Boolean(byte == 0xc3)))
            }
            0xca => num(f64::from(f32::from_bits(fixed(self, 4)? as u32))),
            0xcb => num(f64::from_bits(fixed(self, 8)?)),
            0xd9 => {
                let l = fixed(self, 1)? as usize;
                self.pos = p;
                self.string(p + 2, l)
            }
            0xda => {
                let l = fixed(self, 2)? as usize;
                self.pos = p;
                self.string(p + 3, l)
            }
            0xdb => {
                // This one takes the header before checking the body.
                let l = fixed(self, 4)? as usize;
                self.string(self.pos, l)
            }
            0xdc => Ok(Head::Array(fixed(self, 2)? as usize)),
            0xdd => Ok(Head::Array(fixed(self, 4)? as usize)),
            0xde => Ok(Head::Map(fixed(self, 2)? as usize)),
            0xdf => Ok(Head::Map(fixed(self, 4)? as usize)),
            _ if byte & 0x80 == 0 => {
                self.pos += 1;
                num(f64::from(byte))
            }
            _ if byte & 0xe0 == 0xe0 => {
                self.pos += 1;
                num(f64::from(byte as i8))
            }
            _ if byte & 0xe0 == 0xa0 => self.string(p + 1, usize::from(byte & 0x1f)),
            _ if byte & 0xf0 == 0x90 => {
                self.pos += 1;
                Ok(Head::Array(usize::from(byte & 0xf)))
            }
            _ if byte & 0xf0 == 0x80 => {
                self.pos += 1;
                Ok(Head::Map(usize::from(byte & 0xf)))
            }
            _ => Err(Stop::BadFormat),
        }
    }

    /// A string of `len` bytes at `at`, the value ending there.
    fn string(&mut self, at: usize, len: usize) -> Result<Head, Stop> {
        if self.data.len() < at || self.data.len() - at < len {
            return Err(Stop::Eof);
        }
        let s = self.lua.create_string(&self.data[at..at + len])?;
        self.pos = at + len;
        Ok(Head::Scalar(Value::String(s)))
    }

    fn value_inner(&mut self) -> Result<Value, Stop> {
        let mut open: Vec<Open> = Vec::new();
        // The innermost open table and its pending key; the others are in `spill`.
        let mut table: Option<Table> = None;
        let mut key = Value::Nil;
        loop {
            // Read a value; tables are opened, and complete at once when empty.
            let mut v = match self.head()? {
                Head::Scalar(v) => {
                    self.slots += 1;
                    v
                }
                Head::Array(len) => {
                    self.slots += 1;
                    if self.slots + 1 > capi::MAX_C_STACK {
                        return Err(Stop::Lua(error(
                            "stack overflow (in function mp_decode_to_lua_array)",
                        )));
                    }
                    let t = self.lua.create_table()?;
                    if len == 0 {
                        Value::Table(t)
                    } else {
                        self.descend(&open, &mut table, &mut key, t)?;
                        open.push(Open::Array {
                            left: len,
                            index: 1,
                        });
                        self.slots += 1; // the index
                        continue;
                    }
                }
                Head::Map(len) => {
                    self.slots += 1;
                    let t = self.lua.create_table()?;
                    if len == 0 {
                        Value::Table(t)
                    } else {
                        self.descend(&open, &mut table, &mut key, t)?;
                        open.push(Open::Map {
                            left: len,
                            have_key: false,
                        });
                        continue;
                    }
                }
            };
            // Store the value in its table; a table filled up is itself a value to store.
            loop {
                let Some(top) = open.last_mut() else {
                    return Ok(v);
                };
                let Some(t) = &table else {
                    return Err(Stop::BadFormat);
                };
                match top {
                    Open::Array { left, index } => {
                        t.raw_set(*index, v)?;
                        self.slots = self.slots.saturating_sub(2);
                        *index += 1;
                        *left -= 1;
                        if *left > 0 {
                            self.slots += 1; // the next index
                            break;
                        }
                    }
                    Open::Map { left, have_key } => {
                        if !*have_key {
                            key = v;
                            *have_key = true;
                            break;
                        }
                        let k = std::mem::replace(&mut key, Value::Nil);
                        match &k {
                            Value::Nil => {
                                return Err(Stop::Lua(Fail::Raw(b"table index is nil".to_vec())));
                            }
                            Value::Number(n) if n.is_nan() => {
                                return Err(Stop::Lua(Fail::Raw(b"table index is NaN".to_vec())));
                            }
                            _ => {}
                        }
                        t.raw_set(k, v)?;
                        self.slots = self.slots.saturating_sub(2);
                        *have_key = false;
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                    }
                }
                // Filled: it becomes the value, its parent the innermost table.
                open.pop();
                v = match table.take() {
                    Some(t) => Value::Table(t),
                    None => Value::Nil,
                };
                self.ascend(&open, &mut table, &mut key)?;
            }
        }
    }

    /// Makes `t` the innermost open table, putting away the one it was (and its pending key).
    fn descend(
        &mut self,
        open: &[Open],
        table: &mut Option<Table>,
        key: &mut Value,
        t: Table,
    ) -> mlua::Result<()> {
        if let Some(parent) = table.take() {
            let spill = match &self.spill {
                Some(s) => s.clone(),
                None => {
                    let s = self.lua.create_table()?;
                    self.spill = Some(s.clone());
                    s
                }
            };
            let depth = open.len();
            spill.raw_set(2 * depth - 1, parent)?;
            spill.raw_set(2 * depth, std::mem::replace(key, Value::Nil))?;
        }
        *table = Some(t);
        Ok(())
    }

    /// Makes the table below the innermost one (if any) the innermost again.
    fn ascend(
        &mut self,
        open: &[Open],
        table: &mut Option<Table>,
        key: &mut Value,
    ) -> mlua::Result<()> {
        let depth = open.len();
        if depth == 0 {
            return Ok(());
        }
        if let Some(spill) = &self.spill {
            *table = spill.raw_get(2 * depth - 1)?;
            *key = spill.raw_get(2 * depth)?;
            spill.raw_set(2 * depth - 1, Value::Nil)?;
            spill.raw_set(2 * depth, Value::Nil)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::script::libs::testing::{error_of, eval};

    /// Each chunk's result as `redis-cli -p N eval "<chunk>" 0` gives it on redis-server 7.0.15,
    /// with `hex` defined as in `testing` (`local function hex(s) return (string.gsub(s, '.',
    /// function(c) return string.format('%02x', string.byte(c)) end)) end`).
    #[test]
    fn pack_as_redis() {
        for (chunk, want) in [
            // Integers at each width's edges.
            (
                "return hex(cmsgpack.pack(0, 1, 127, 128, 255, 256))",
                "00017fcc80ccffcd0100",
            ),
            (
                "return hex(cmsgpack.pack(65535, 65536, 2^32 - 1, 2^32, 2^53, 2^63 - 1024))",
                "cdffffce00010000ceffffffffcf0000000100000000cf0020000000000000cf7ffffffffffffc00",
            ),
            (
                "return hex(cmsgpack.pack(-1, -32, -33, -128, -129))",
                "ffe0d0dfd080d1ff7f",
            ),
            (
                "return hex(cmsgpack.pack(-32768, -32769, -2^31, -2^31 - 1, -2^53))",
                "d18000d2ffff7fffd280000000d3ffffffff7fffffffd3ffe0000000000000",
            ),
            // 2^63 does not fit an int64: a float (exact as float 32).
            (
                "return hex(cmsgpack.pack(2^63)) .. ' ' .. hex(cmsgpack.pack(-2^63))",
                "ca5f000000 d38000000000000000",
            ),
            // Floats: 32 bits when exact, else 64; -0 is the integer 0.
            (
                "return hex(cmsgpack.pack(0.5, 1.5, -0.25, 0.1, 1e300))",
                "ca3f000000ca3fc00000cabe800000cb3fb999999999999acb7e37e43c8800759c",
            ),
            (
                "return hex(cmsgpack.pack(-0.0, 1 / 0, -1 / 0, 0 / 0))",
                "00caff800000ca7f800000cbfff8000000000000",
            ),
            // Strings: fixstr up to 31, then str 8/16/32.
            (
                "return hex(cmsgpack.pack('', 'a', string.rep('y', 32)):sub(1, 6))",
                "a0a161d92079",
            ),
            (
                "return hex(cmsgpack.pack(string.rep('z', 256)):sub(1, 4)) .. \
                 hex(cmsgpack.pack(string.rep('z', 65536)):sub(1, 6))",
                "da01007adb000100007a",
            ),
            // Tables: arrays when the keys are exactly 1..n, maps otherwise.
            ("return hex(cmsgpack.pack({}))", "90"),
            ("return hex(cmsgpack.pack({1, 2, 3}))", "93010203"),
            ("return hex(cmsgpack.pack({a = 1}))", "81a16101"),
            (
                "return hex(cmsgpack.pack({1, 2, nil, 4}))",
                "83010102020404",
            ),
            ("return hex(cmsgpack.pack({[0] = 1}))", "810001"),
            (
                "return hex(cmsgpack.pack({a = {b = {1, {c = true}}}}))",
                "81a16181a162920181a163c3",
            ),
            (
                "local t = {} for i = 1, 16 do t[i] = i end return hex(cmsgpack.pack(t):sub(1, 3))",
                "dc0010",
            ),
            // Nesting past 16 tables is nil.
            (
                "return hex(cmsgpack.pack(deep(20, 1)))",
                "91919191919191919191919191919191c0",
            ),
            ("local t = {} t[1] = t return #cmsgpack.pack(t)", "17"),
            (
                "return hex(cmsgpack.pack(nil, true, false, cjson.null, type))",
                "c0c3c2c0c0",
            ),
        ] {
            assert_eq!(eval(chunk), want, "{chunk}");
        }
    }

    #[test]
    fn unpack_as_redis() {
        for (chunk, want) in [
            (
                "return table.concat({cmsgpack.unpack(cmsgpack.pack(127, 128, 65536, 2^32, -33, \
                 -129, -2^31 - 1, 0.5))}, ',')",
                "127,128,65536,4294967296,-33,-129,-2147483649,0.5",
            ),
            // uint 64 is pushed as a signed integer.
            (
                "return cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255')",
                "-1",
            ),
            ("return cmsgpack.unpack('\\217\\3abc')", "abc"),
            (
                "local t = cmsgpack.unpack('\\147\\1\\192\\3') return #t .. tostring(t[2]) .. t[3]",
                "1nil3",
            ),
            (
                "local t = cmsgpack.unpack('\\129\\145\\1\\2') local k = next(t) return k[1] .. t[k]",
                "12",
            ),
            (
                "return table.concat({cmsgpack.unpack(123)}, ',')",
                "49,50,51",
            ),
            (
                "local s = cmsgpack.pack(1, 'two', {3}) \
                 return table.concat({cmsgpack.unpack_one(s, 1)}, ',')",
                "5,two",
            ),
            (
                "local s = cmsgpack.pack(1, 2, 3, 4) \
                 return table.concat({cmsgpack.unpack_limit(s, 2, 2)}, ',')",
                "-1,3,4",
            ),
            (
                "local s = cmsgpack.pack(1, 2, 3, 4) \
                 return table.concat({cmsgpack.unpack_limit(s, 0)}, ',')",
                "1,2,3,4",
            ),
            (
                "return select('#', cmsgpack.unpack(string.rep('\\161a', 7999)))",
                "7999",
            ),
            (
                "local t = cmsgpack.unpack(string.rep('\\145', 1000) .. '\\7') \
                 for i = 1, 1000 do t = t[1] end return t",
                "7",
            ),
        ] {
            assert_eq!(eval(chunk), want, "{chunk}");
        }
    }

    #[test]
    fn errors_as_redis() {
        for (expr, want) in [
            (
                "cmsgpack.unpack('\\196\\1a')",
                "user_script:1: Bad data format in input.",
            ),
            (
                "cmsgpack.unpack('\\193')",
                "user_script:1: Bad data format in input.",
            ),
            (
                "cmsgpack.unpack('\\205\\1')",
                "user_script:1: Missing bytes in input.",
            ),
            (
                "cmsgpack.unpack('\\146\\1')",
                "user_script:1: Missing bytes in input.",
            ),
            ("cmsgpack.unpack('\\129\\192\\1')", "table index is nil"),
            (
                "cmsgpack.unpack('\\129\\203\\255\\248\\0\\0\\0\\0\\0\\0\\1')",
                "table index is NaN",
            ),
            (
                "cmsgpack.pack()",
                "user_script:1: bad argument #0 to 'pack' (MessagePack pack needs input.)",
            ),
            (
                "cmsgpack.unpack_one(cmsgpack.pack(1), 2)",
                "user_script:1: Start offset 2 greater than input length 1.",
            ),
            (
                "cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4), -1)",
                "user_script:1: Invalid request to unpack with offset of 0 and limit of 4.",
            ),
            (
                "cmsgpack.unpack(string.rep('\\1', 8000))",
                "user_script:1: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)",
            ),
            (
                "cmsgpack.unpack(string.rep('\\145', 5000))",
                "user_script:1: stack overflow (in function mp_decode_to_lua_array)",
            ),
            (
                "cmsgpack.unpack_limit(string.rep('\\1', 9000), 7999)",
                "user_script:1: stack overflow (in function mp_unpack_full)",
            ),
        ] {
            assert_eq!(error_of(expr), want, "{expr}");
        }
        assert_eq!(
            eval(
                "local t = {} for i = 1, 4001 do t[i] = i end \
                 local ok, e = pcall(function() return cmsgpack.pack(unpack(t)) end) return e"
            ),
            "user_script:1: bad argument #0 to 'pack' (Too many arguments for MessagePack pack.)"
        );
    }

    #[test]
    fn round_trips() {
        assert_eq!(
            eval(
                "local v = {1, -1, 0.5, 'str', {a = {1, 2, {b = 'c'}}}, true, false} \
                 local r = {cmsgpack.unpack(cmsgpack.pack(unpack(v)))} \
                 return cjson.encode(r)"
            ),
            r#"[1,-1,0.5,"str",{"a":[1,2,{"b":"c"}]},true,false]"#
        );
        assert_eq!(
            eval(
                "local t = {} for i = 1, 20000 do t[i] = 'x' .. i end \
                 local u = cmsgpack.unpack(cmsgpack.pack(t)) return #u .. u[20000]"
            ),
            "20000x20000"
        );
    }
}

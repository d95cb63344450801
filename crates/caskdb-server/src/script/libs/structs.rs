//! `struct`: Roberto Ierusalimschy's struct library (1.7) as Redis 7.0 loads it: `pack`,
//! `unpack` and `size` over a format of options, with C's sizes on x86-64 Linux (`short` 2,
//! `int` 4, `long` and `size_t` 8, alignment up to 8) and its errors.
//!
//! Format: `>` big endian, `<` little endian (the default, as x86-64), `![n]` alignment (a power
//! of 2, 8 without `n`), `x` a zero byte, `b/B` `h/H` `l/L` `T` `i/I[n]` signed and unsigned
//! integers (`n` bytes, at most 32), `c[n]` `n` characters (packing `c0`: the whole string;
//! unpacking `c0`: as many as the previous result says), `s` a zero-terminated string, `f`
//! float, `d` double, spaces ignored. The format ends at a NUL byte, as C reads it.

use mlua::{Lua, Table, Value};

use super::capi::{self, Args, Fail, Ret, arg_error, error};

/// The most bytes an `i`/`I` option may take (`MAXINTSIZE`).
const MAX_INT_SIZE: usize = 32;

/// The alignment `!` sets without a number (`MAXALIGN`: a double's on x86-64).
const MAX_ALIGN: usize = 8;

/// The `struct` table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    // As `luaL_register`: a table sized for its functions, filled in the library's order.
    let t = lua.create_table_with_capacity(0, 3)?;
    t.set("pack", capi::function(lua, pack)?)?;
    t.set("unpack", capi::function(lua, unpack)?)?;
    t.set("size", capi::function(lua, size)?)?;
    Ok(t)
}

/// Byte order and alignment, as options set them.
struct Header {
    little: bool,
    align: usize,
}

impl Header {
    fn new() -> Header {
        Header {
            little: true,
            align: 1,
        }
    }
}

/// A format being read: the options and the position of the next one.
struct Format {
    bytes: Vec<u8>,
    at: usize,
}

impl Format {
    fn next(&mut self) -> Option<u8> {
        let b = self.bytes.get(self.at).copied();
        self.at += 1;
        b
    }

    /// A decimal number at the current position, or `default` when there is none.
    fn number(&mut self, default: usize) -> capi::Result<usize> {
        if !self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: i32 = 0;
        while let Some(&d) = self.bytes.get(self.at).filter(|b| b.is_ascii_digit()) {
            let d = i32::from(d - b'0');
            if a > i32::MAX / 10 || a * 10 > i32::MAX - d {
                return Err(error("integral size overflow"));
            }
            a = a * 10 + d;
            self.at += 1;
        }
        Ok(a as usize)
    }

    /// The size of option `opt` (reading its number, if it takes one); 0 for options that do
    /// not need alignment.
    fn size(&mut self, opt: u8) -> capi::Result<usize> {
        Ok(match opt {
            b'B' | b'b' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'x' => 1,
            b'c' => self.number(1)?,
            b'i' | b'I' => {
                let size = self.number(4)?;
                if size > MAX_INT_SIZE {
                    return Err(error(format!(
                        "integral size {size} is larger than limit of {MAX_INT_SIZE}"
                    )));
                }
                size
            }
            _ => 0,
        })
    }

    /// The options that are not data: byte order, alignment, spaces; others are errors.
    fn control(&mut self, opt: u8, h: &mut Header) -> capi::Result<()> {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' => h.little = true,
            b'!' => {
                let a = self.number(MAX_ALIGN)?;
                if !a.is_power_of_two() {
                    return Err(error(format!("alignment {a} is not a power of 2")));
                }
                h.align = a;
            }
            _ => {
                let mut m = b"invalid format option '".to_vec();
                m.push(opt);
                m.push(b'\'');
                return Err(Fail::Arg(1, m));
            }
        }
        Ok(())
    }
}

/// The padding that aligns an item of `size` bytes at `len` (none for `c` and sizeless
/// options), with the C library's arithmetic (a size that is not a power of 2 gives what it
/// gives).
fn padding(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & (size - 1)) & (size - 1)
}

/// The format argument: a string (or number) up to its first NUL.
fn format_arg(a: &Args) -> capi::Result<Format> {
    Ok(Format {
        bytes: a.check_bytes(1)?.c_string(),
        at: 0,
    })
}

/// `struct.pack(fmt, ...)`.
fn pack(lua: &Lua, a: &Args) -> capi::Result<Ret> {
    let mut fmt = format_arg(a)?;
    let mut h = Header::new();
    let mut arg = 2;
    let mut out: Vec<u8> = Vec::new();
    while let Some(opt) = fmt.next() {
        let mut size = fmt.size(opt)?;
        let pad = padding(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                missing(a, arg, "number")?;
                let n = a.check_number(lua, arg)?;
                arg += 1;
                // Negative numbers through the signed type, others straight to unsigned.
                let mut value = if n < 0.0 {
                    capi::d2i64(n) as u64
                } else {
                    capi::d2u64(n)
                };
                let mut bytes = vec![0u8; size];
                for b in bytes.iter_mut() {
                    *b = value as u8;
                    value >>= 8;
                }
                if !h.little {
                    bytes.reverse();
                }
                out.extend_from_slice(&bytes);
            }
            b'x' => out.push(0),
            b'f' => {
                missing(a, arg, "number")?;
                let f = a.check_number(lua, arg)? as f32;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    f.to_le_bytes()
                } else {
                    f.to_be_bytes()
                });
            }
            b'd' => {
                missing(a, arg, "number")?;
                let d = a.check_number(lua, arg)?;
                arg += 1;
                out.extend_from_slice(&if h.little {
                    d.to_le_bytes()
                } else {
                    d.to_be_bytes()
                });
            }
            b'c' | b's' => {
                missing(a, arg, "string")?;
                let s = a.check_bytes(arg)?;
                arg += 1;
                s.with(|s| {
                    if size == 0 {
                        size = s.len();
                    }
                    // The library checks after counting the argument: the error names the next.
                    if s.len() < size {
                        return Err(arg_error(arg, "string too short"));
                    }
                    out.extend_from_slice(&s[..size]);
                    Ok(())
                })?;
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => fmt.control(opt, &mut h)?,
        }
    }
    Ok(Ret::one(Value::String(lua.create_string(out)?)))
}

/// `pack` pushes a nil after its arguments before it starts: the first argument missing is
/// that nil (and it fails, so no later one is read).
fn missing(a: &Args, arg: usize, expected: &str) -> capi::Result<()> {
    if a.is_none(arg) {
        return Err(arg_error(arg, format!("{expected} expected, got nil")));
    }
    Ok(())
}

/// The integer of `size` bytes at the start of `buf`: only the last 8 bytes read count (C's
/// `unsigned long` keeps them), signed ones extended from bit `size * 8 - 1` as x86-64 shifts
/// (the count modulo 64).
fn integer(buf: &[u8], little: bool, signed: bool, size: usize) -> f64 {
    let mut l: u64 = 0;
    let mut take = |b: u8| l = (l << 8) | u64::from(b);
    if little {
        buf[..size].iter().rev().for_each(|&b| take(b));
    } else {
        buf[..size].iter().for_each(|&b| take(b));
    }
    if !signed {
        return l as f64;
    }
    let shift = ((size as i64) * 8 - 1) & 63;
    let mask = u64::MAX << shift;
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

/// `struct.unpack(fmt, data [, pos])`: the values, then the position after them.
fn unpack(lua: &Lua, a: &Args) -> capi::Result<Ret> {
    let mut fmt = format_arg(a)?;
    let data = a.check_bytes(2)?;
    // `size_t pos = luaL_optinteger(...)`: a negative position wraps around.
    let start = a.opt_integer(lua, 3, 1)? as u64 as usize;
    if start == 0 {
        return Err(arg_error(3, "offset must be 1 or greater"));
    }
    data.with(|data| unpack_data(lua, a, &mut fmt, data, start - 1))
}

fn unpack_data(
    lua: &Lua,
    a: &Args,
    fmt: &mut Format,
    data: &[u8],
    mut pos: usize,
) -> capi::Result<Ret> {
    let ld = data.len();
    let too_short = || arg_error(2, "data string too short");
    let mut h = Header::new();
    let mut results = capi::Results::new(lua);
    while let Some(opt) = fmt.next() {
        let mut size = fmt.size(opt)?;
        pos = pos.wrapping_add(padding(pos, &h, opt, size));
        if !(size <= ld && pos <= ld - size) {
            return Err(too_short());
        }
        // Room for the item and the final position (`luaL_checkstack(L, 2, …)`).
        if a.len() + results.len() + 2 > capi::MAX_C_STACK {
            return Err(error("stack overflow (too many results)"));
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let signed = opt.is_ascii_lowercase();
                results.push(Value::Number(integer(&data[pos..], h.little, signed, size)))?;
            }
            b'x' => {}
            b'f' => {
                let b: [u8; 4] = std::array::from_fn(|i| data[pos + i]);
                let f = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                results.push(Value::Number(f64::from(f)))?;
            }
            b'd' => {
                let b: [u8; 8] = std::array::from_fn(|i| data[pos + i]);
                let d = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                results.push(Value::Number(d))?;
            }
            b'c' => {
                if size == 0 {
                    // The length is the previous result, which must be a number (or a string
                    // Lua reads as one); it is replaced by the string.
                    let previous = match results.last()? {
                        Some(v) => capi::to_number(lua, &v)?,
                        None => None,
                    };
                    let Some(n) = previous else {
                        return Err(error("format 'c0' needs a previous size"));
                    };
                    size = capi::d2u64(n) as usize;
                    results.pop()?;
                    if !(size <= ld && pos <= ld - size) {
                        return Err(too_short());
                    }
                }
                let s = lua.create_string(&data[pos..pos + size])?;
                results.push(Value::String(s))?;
            }
            b's' => {
                let Some(len) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(error("unfinished string in data"));
                };
                size = len + 1;
                let s = lua.create_string(&data[pos..pos + len])?;
                results.push(Value::String(s))?;
            }
            _ => fmt.control(opt, &mut h)?,
        }
        pos = pos.wrapping_add(size);
    }
    results.push(Value::Number(pos.wrapping_add(1) as i64 as f64))?;
    results.into_ret()
}

/// `struct.size(fmt)`: the bytes `pack` would make; letters and digits that are not options
/// count nothing.
fn size(_lua: &Lua, a: &Args) -> capi::Result<Ret> {
    let mut fmt = format_arg(a)?;
    let mut h = Header::new();
    let mut pos: usize = 0;
    while let Some(opt) = fmt.next() {
        let size = fmt.size(opt)?;
        pos = pos.wrapping_add(padding(pos, &h, opt, size));
        if opt == b's' {
            return Err(arg_error(1, "option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(arg_error(1, "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            fmt.control(opt, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(Ret::one(Value::Number(pos as i64 as f64)))
}

#[cfg(test)]
mod tests {
    use crate::script::libs::testing::eval;

    /// Each chunk's result as `redis-cli -p N eval "<chunk>" 0` gives it on redis-server 7.0.15
    /// (the chunks return strings, so the reply is the text itself).
    #[test]
    fn as_redis() {
        for (chunk, want) in [
            (
                "return (string.gsub(struct.pack('>i2<i2', 258, 258), '.', function(c) return string.format('%02x', c:byte()) end))",
                "01020201",
            ),
            (
                "return (string.gsub(struct.pack('!4 b i', 1, 2), '.', function(c) return string.format('%02x', c:byte()) end))",
                "0100000002000000",
            ),
            (
                "return (string.gsub(struct.pack('>I3', -1), '.', function(c) return string.format('%02x', c:byte()) end))",
                "ffffff",
            ),
            (
                "return (string.gsub(struct.pack('<i10', -2), '.', function(c) return string.format('%02x', c:byte()) end))",
                "feffffffffffffff0000",
            ),
            ("return struct.pack('c0s', 'ab', 'cd')", "abcd\0"),
            ("return tostring(struct.size('!8 b d'))", "16"),
            ("return tostring(struct.size('zq i'))", "4"),
            (
                "return table.concat({struct.unpack('>h B c2 s', '\\255\\254\\200xyz\\0')}, ',')",
                "-2,200,xy,z,8",
            ),
            (
                "return table.concat({struct.unpack('b c0', '\\3abcd')}, ',')",
                "abc,5",
            ),
            (
                "return table.concat({struct.unpack('<d', struct.pack('<d', 1.5))}, ',')",
                "1.5,9",
            ),
            (
                "return table.concat({struct.unpack('i', 'abcdefgh', 5)}, ',')",
                "1751606885,9",
            ),
            (
                "return tostring(select('#', struct.unpack('', 'abc', -5)))",
                "1",
            ),
            ("return tostring(struct.unpack('', 'abc', -5))", "-5"),
        ] {
            assert_eq!(eval(chunk), want, "{chunk}");
        }
    }

    #[test]
    fn errors_as_redis() {
        for (expr, want) in [
            (
                "struct.pack('q', 1)",
                "user_script:1: bad argument #1 to 'pack' (invalid format option 'q')",
            ),
            (
                "struct.pack('i33', 1)",
                "user_script:1: integral size 33 is larger than limit of 32",
            ),
            (
                "struct.pack('!3 i', 1)",
                "user_script:1: alignment 3 is not a power of 2",
            ),
            (
                "struct.pack('c5', 'ab')",
                "user_script:1: bad argument #3 to 'pack' (string too short)",
            ),
            (
                "struct.pack('i')",
                "user_script:1: bad argument #2 to 'pack' (number expected, got nil)",
            ),
            (
                "struct.unpack('i', 'abc')",
                "user_script:1: bad argument #2 to 'unpack' (data string too short)",
            ),
            (
                "struct.unpack('i', 'abcd', 0)",
                "user_script:1: bad argument #3 to 'unpack' (offset must be 1 or greater)",
            ),
            (
                "struct.unpack('s', 'abc')",
                "user_script:1: unfinished string in data",
            ),
            (
                "struct.unpack('c0', 'abc')",
                "user_script:1: format 'c0' needs a previous size",
            ),
            (
                "struct.size('s')",
                "user_script:1: bad argument #1 to 'size' (option 's' has no fixed size)",
            ),
            (
                "struct.size('c0')",
                "user_script:1: bad argument #1 to 'size' (option 'c0' has no fixed size)",
            ),
            (
                "struct.size('i99999999999')",
                "user_script:1: integral size overflow",
            ),
        ] {
            let got = eval(&format!(
                "local ok, e = pcall(function() return {expr} end) return e"
            ));
            assert_eq!(got, want, "{expr}");
        }
    }

    #[test]
    fn round_trips() {
        let chunk = "
            local fmt = '>!4 b B h H l L T i3 I5 f d c3 s x'
            local packed = struct.pack(fmt, -5, 250, -300, 60000, -2^40, 2^40, 12345, -70000,
                2^33, 0.5, -1.25, 'abc', 'zero')
            local r = {struct.unpack(fmt, packed)}
            return table.concat(r, ',', 1, #r - 1)";
        assert_eq!(
            eval(chunk),
            "-5,250,-300,60000,-1099511627776,1099511627776,12345,-70000,8589934592,0.5,-1.25,abc,zero"
        );
    }
}

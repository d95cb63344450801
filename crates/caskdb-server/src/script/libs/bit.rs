//! `bit`: LuaBitOp 1.0.2 as Redis 7.0 loads it. Operations on 32-bit integers; every argument
//! is normalised as LuaBitOp does (the double plus 2^52 + 2^51, whose low 32 mantissa bits are
//! the integer, so values wrap modulo 2^32 and fractions round to even), and results are signed.

use mlua::{Lua, Table, Value};

use super::capi::{self, Args, Ret};

/// The `bit` table.
pub(crate) fn module(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("tobit", capi::function(lua, |lua, a| ret(arg(lua, a, 1)?))?)?;
    t.set("bnot", capi::function(lua, |lua, a| ret(!arg(lua, a, 1)?))?)?;
    t.set("band", fold(lua, |x, y| x & y)?)?;
    t.set("bor", fold(lua, |x, y| x | y)?)?;
    t.set("bxor", fold(lua, |x, y| x ^ y)?)?;
    t.set("lshift", shift(lua, |b, n| b << n)?)?;
    t.set("rshift", shift(lua, |b, n| b >> n)?)?;
    t.set("arshift", shift(lua, |b, n| ((b as i32) >> n) as u32)?)?;
    t.set("rol", shift(lua, u32::rotate_left)?)?;
    t.set("ror", shift(lua, u32::rotate_right)?)?;
    t.set(
        "bswap",
        capi::function(lua, |lua, a| ret(arg(lua, a, 1)?.swap_bytes()))?,
    )?;
    t.set("tohex", capi::function(lua, tohex)?)?;
    Ok(t)
}

/// Argument `i` as LuaBitOp's `barg`: `lua_tonumber`, then the low word of the double plus
/// 2^52 + 2^51; a zero word from something that is not a number is a type error.
fn arg(lua: &Lua, a: &Args, i: usize) -> capi::Result<u32> {
    let n = capi::to_number(lua, &a.get(i)?)?;
    let b = (n.unwrap_or(0.0) + 6_755_399_441_055_744.0).to_bits() as u32;
    if b == 0 && n.is_none() {
        return Err(a.type_error(i, "number"));
    }
    Ok(b)
}

/// A result: the word as a signed 32-bit number.
fn ret(b: u32) -> capi::Result<Ret> {
    Ok(Ret::one(Value::Number(f64::from(b as i32))))
}

/// `band`, `bor`, `bxor`: the first argument, then the others from the last one back (the
/// order their type errors come in).
fn fold(lua: &Lua, op: fn(u32, u32) -> u32) -> mlua::Result<mlua::Function> {
    capi::function(lua, move |lua, a| {
        let mut b = arg(lua, a, 1)?;
        for i in (2..=a.len()).rev() {
            b = op(b, arg(lua, a, i)?);
        }
        ret(b)
    })
}

/// Shifts and rotations: the count is the second argument's low 5 bits.
fn shift(lua: &Lua, op: fn(u32, u32) -> u32) -> mlua::Result<mlua::Function> {
    capi::function(lua, move |lua, a| {
        let b = arg(lua, a, 1)?;
        let n = arg(lua, a, 2)? & 31;
        ret(op(b, n))
    })
}

/// `tohex(x [, n])`: the low `|n|` hex digits (8 by default, at most 8), upper case when `n` is
/// negative.
fn tohex(lua: &Lua, a: &Args) -> capi::Result<Ret> {
    let mut b = arg(lua, a, 1)?;
    let n = if a.is_none(2) {
        8
    } else {
        arg(lua, a, 2)? as i32
    };
    let digits: &[u8; 16] = if n < 0 {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    // `-n` of INT_MIN: redis-server's build gives 8 digits, as for any count past 8.
    let n = (i64::from(n).unsigned_abs()).min(8) as usize;
    let mut out = vec![0u8; n];
    for slot in out.iter_mut().rev() {
        *slot = digits[(b & 15) as usize];
        b >>= 4;
    }
    Ok(Ret::one(Value::String(lua.create_string(out)?)))
}

#[cfg(test)]
mod tests {
    use crate::script::libs::testing::eval;

    /// Each expression's result as `redis-cli -p N eval "return tostring(<expr>)" 0` gives it
    /// on redis-server 7.0.15 (errors: `eval "local ok, e = pcall(function() return <expr>
    /// end) return e" 0`).
    #[test]
    fn as_redis() {
        for (expr, want) in [
            ("bit.tobit(0xffffffff)", "-1"),
            ("bit.tobit(2^32 + 5)", "5"),
            ("bit.tobit(-1)", "-1"),
            ("bit.tobit(2^31)", "-2147483648"),
            ("bit.tobit(1.5)", "2"),
            ("bit.tobit(2.5)", "2"),
            ("bit.tobit(-1.5)", "-2"),
            ("bit.tobit('0x10')", "16"),
            ("bit.tobit(2^53 + 7)", "4"),
            ("bit.bnot(0)", "-1"),
            ("bit.bnot(-2^31)", "2147483647"),
            ("bit.band(0xff, 0x0f, 0x3c)", "12"),
            ("bit.band(-1, 2^40 + 3)", "3"),
            ("bit.bor(1, 2, 4, 8)", "15"),
            ("bit.bxor(-1, 0x0f)", "-16"),
            ("bit.lshift(1, 31)", "-2147483648"),
            ("bit.lshift(1, 32)", "1"),
            ("bit.lshift(3, -1)", "-2147483648"),
            ("bit.rshift(-1, 28)", "15"),
            ("bit.arshift(-256, 4)", "-16"),
            ("bit.rol(0x12345678, 8)", "878082066"),
            ("bit.ror(0x12345678, 8)", "2014458966"),
            ("bit.rol(5, 0)", "5"),
            ("bit.bswap(0x12345678)", "2018915346"),
            ("bit.tohex(255)", "000000ff"),
            ("bit.tohex(-1, -4)", "FFFF"),
            ("bit.tohex(0x1234, 2)", "34"),
            ("bit.tohex(1, 0)", ""),
            ("bit.tohex(255, 20)", "000000ff"),
            ("bit.tohex(255, -2^31)", "000000FF"),
        ] {
            let got = eval(&format!("return tostring({expr})"));
            assert_eq!(got, want, "{expr}");
        }
    }

    #[test]
    fn errors_as_redis() {
        for (expr, want) in [
            (
                "bit.band(1, 'x')",
                "user_script:1: bad argument #2 to 'band' (number expected, got string)",
            ),
            (
                "bit.bor(1, {}, nil)",
                "user_script:1: bad argument #3 to 'bor' (number expected, got nil)",
            ),
            (
                "bit.tobit()",
                "user_script:1: bad argument #1 to 'tobit' (number expected, got no value)",
            ),
            (
                "bit.tohex(1, nil)",
                "user_script:1: bad argument #2 to 'tohex' (number expected, got nil)",
            ),
        ] {
            let got = eval(&format!(
                "local ok, e = pcall(function() return {expr} end) return e"
            ));
            assert_eq!(got, want, "{expr}");
        }
        // Through pcall directly, C's caller is pcall: no position, no name.
        assert_eq!(
            eval("local ok, e = pcall(bit.band, 1, 'x') return e"),
            "bad argument #2 to '?' (number expected, got string)"
        );
    }
}

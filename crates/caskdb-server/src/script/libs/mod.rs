//! The libraries Redis 7.0 gives Lua scripts, as globals: `cjson`, `cmsgpack`, `bit` and
//! `struct`, behaving as redis-server 7.0.15's vendored C libraries do (the same output bytes,
//! the same error texts, failing at the same limits). They read and build Lua values only: no
//! file, process or VM access.
//!
//! Every function is a C function (see `capi`), as in Redis: its errors are strings with the
//! caller's position (`user_script:1: …`, for a chunk named `@user_script`), and Redis's error
//! handler (which steps over the C function that raised the error) finds the script's line.
//! Settings (`cjson.encode_max_depth(…)` …) live in the tables, so they last as long as the Lua
//! state, as in Redis. `tests/lua_libs_reference.rs` compares them with redis-server.

mod bit;
mod capi;

/// C's `%.*g` (glibc), as Lua and Redis's libraries print numbers.
pub(crate) use capi::fmt_g;
mod cjson;
mod cmsgpack;
mod structs;

use mlua::Lua;

/// Sets the globals `cjson`, `struct`, `cmsgpack` and `bit` (in the order Redis loads them)
/// in `lua`. Raw sets: a protected global table does not refuse them.
#[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
pub(crate) fn register_all(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    globals.raw_set("cjson", cjson::module(lua)?)?;
    globals.raw_set("struct", structs::module(lua)?)?;
    globals.raw_set("cmsgpack", cmsgpack::module(lua)?)?;
    globals.raw_set("bit", bit::module(lua)?)?;
    Ok(())
}

/// Runs `chunk` in a new Lua 5.1 with the standard libraries and these, named as Redis names a
/// script (`@user_script`, so positions read `user_script:1:`): the value it returns (a string,
/// or a number as Lua writes it), or the error's text.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn eval_chunk(chunk: &str) -> Result<Vec<u8>, String> {
    let lua = Lua::new();
    register_all(&lua).map_err(|e| e.to_string())?;
    let v: mlua::Value = lua
        .load(chunk)
        .set_name("@user_script")
        .eval()
        .map_err(|e| e.to_string())?;
    match lua.coerce_string(v.clone()) {
        Ok(Some(s)) => Ok(s.as_bytes().to_vec()),
        _ => Ok(format!("{v:?}").into_bytes()),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    /// Helpers for test chunks, on the chunk's first line (positions in errors stay line 1):
    /// `hex(s)`, and `deep(n, leaf)`, `leaf` inside `n` nested arrays.
    const PRELUDE: &str = "local function hex(s) return (string.gsub(s, '.', function(c) \
        return string.format('%02x', string.byte(c)) end)) end \
        local function deep(n, leaf) local t = leaf for i = 1, n do t = {t} end return t end ";

    /// [`super::eval_chunk`] of `chunk` after the helpers, as text (errors: "error: …").
    pub(crate) fn eval(chunk: &str) -> String {
        match super::eval_chunk(&format!("{PRELUDE}{chunk}")) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => format!("error: {e}"),
        }
    }

    /// The error `expr` raises, caught by `pcall` in a function on line 1.
    pub(crate) fn error_of(expr: &str) -> String {
        eval(&format!(
            "local ok, e = pcall(function() return {expr} end) return ok and 'no error' or e"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::eval;

    /// Random bytes and random formats never make a library panic (they return values or raise
    /// Lua errors), deep inputs included. (Many results are counted inside the `pcall`: Lua
    /// 5.1's `pcall` pushes its status past the frame's top when a function returns more than
    /// about 20 values, which Lua built with API checks, as in debug builds, aborts on.)
    #[test]
    fn no_panics_on_random_input() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"[]{}\":,0123456789-+.eEtrufalsn \\u\x00\x80\xff<>!xbBhHlLTiIcsfd";
        for round in 0..300 {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let lit: String = bytes.iter().map(|b| format!("\\{b}")).collect();
            let chunk = format!(
                "local s = '{lit}' \
                 local function n(f, ...) return select('#', f(...)) end \
                 pcall(cjson.decode, s) pcall(n, cmsgpack.unpack, s) pcall(n, struct.unpack, s, s) \
                 pcall(struct.pack, s, s, 1, 2) pcall(struct.size, s) \
                 pcall(n, cmsgpack.unpack_limit, s, {}, {}) pcall(bit.tohex, s, s) \
                 return 'done'",
                round % 5,
                round % 3
            );
            assert_eq!(eval(&chunk), "done", "{chunk}");
        }
        let deep = "cjson.encode_max_depth(1e9) cjson.decode_max_depth(1e9) \
            local t = {} for i = 1, 100000 do t = {t} end \
            local a = pcall(cjson.encode, t) \
            local b = pcall(cjson.decode, string.rep('[', 100000)) \
            local c = pcall(cmsgpack.unpack, string.rep('\\145', 100000)) \
            local d = cmsgpack.pack(t) \
            return tostring(a) .. tostring(b) .. tostring(c) .. #d";
        assert_eq!(eval(deep), "falsefalsefalse17");
    }
}

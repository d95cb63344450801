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
mod cjson;
mod structs;

use mlua::Lua;

/// Sets the globals `cjson`, `struct`, `cmsgpack` and `bit` (in the order Redis loads them)
/// in `lua`. Raw sets: a protected global table does not refuse them.
#[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))]
pub(crate) fn register_all(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    globals.raw_set("cjson", cjson::module(lua)?)?;
    globals.raw_set("struct", structs::module(lua)?)?;
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

//! The libraries Redis gives scripts (cjson, cmsgpack, bit, struct).

/// Registers the libraries as globals.
pub(crate) fn register_all(_lua: &mlua::Lua) -> mlua::Result<()> {
    Ok(())
}

//! Entry point for the test that compares the scripting libraries (`cjson`, `cmsgpack`, `bit`,
//! `struct`) with redis-server's.
//!
//! **For tests only: not a stable API.** Hidden from the docs; it lives in the crate because
//! the libraries are private.

/// Runs the Lua 5.1 `chunk` in a new interpreter with the standard libraries and Redis's four,
/// the chunk named `@user_script` as Redis names scripts: the string (or number) it returns,
/// or the error's text.
pub fn eval(chunk: &str) -> Result<Vec<u8>, String> {
    crate::script::libs::eval_chunk(chunk)
}

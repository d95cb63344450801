//! Scripting (EVAL, FUNCTION): Lua 5.1 as Redis 7.0 embeds it, and the libraries it loads.

pub(crate) mod libs;

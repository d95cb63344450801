//! Values between the server and Lua, as Redis converts them: a command's reply to a Lua value
//! (`redis.call`), in the script's protocol (RESP2 unless `redis.setresp(3)`), and a script's
//! result to a reply, in the caller's.

use bytes::Bytes;
use std::os::raw::c_int;

use mlua::{Table, Value, ffi};

use crate::frame::Frame;

/// Deepest nesting converted either way (Redis stops at its Lua stack limit).
const MAX_DEPTH: usize = 1000;

/// The `err` field Redis makes of an error reply (`-CODE message`, the dash optional here):
/// the reply's text; `ERR` and the word when it is a single word.
pub fn reply_error_text(text: &str) -> String {
    let text = text.strip_prefix('-').unwrap_or(text);
    match text.split_once(' ') {
        Some((code, msg)) => format!("{code} {}", msg.trim_matches(['\r', '\n'])),
        None => format!("ERR {}", text.trim_matches(['\r', '\n'])),
    }
}

/// The `err` field Redis makes of a message of its own (not a reply): `ERR message`.
pub fn message_error_text(msg: &str) -> String {
    format!("ERR {}", msg.trim_matches(['\r', '\n']))
}

/// Makes a command's reply ready for [`push_reply`], which must not allocate on the Rust side:
/// stored values read, error texts in the `err` form, RESP2 doubles formatted, several replies
/// down to the last. `Err`: a stored value could not be read.
pub fn settle(frame: &mut Frame, resp3: bool, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Ok(()); // (`push_reply` raises there.)
    }
    match frame {
        Frame::Stored(v) => *frame = Frame::Bulk(v.0.read().map_err(|e| e.to_string())?),
        Frame::Error(e) => *e = reply_error_text(e),
        Frame::Double(d) if !resp3 => {
            *frame = Frame::Bulk(Bytes::from(crate::frame::format_double(*d)));
        }
        // Several replies (only pub/sub commands give them, and scripts may not call those):
        // the last one.
        Frame::Sequence(frames) => {
            // (None: no value, `push_reply` pushes nil.)
            if let Some(last) = frames.pop() {
                *frame = last;
                return settle(frame, resp3, depth + 1);
            }
        }
        Frame::Array(items) | Frame::Push(items) | Frame::Set(items) => {
            for f in items {
                settle(f, resp3, depth + 1)?;
            }
        }
        Frame::Map(pairs) | Frame::Pairs(pairs) => {
            for (k, v) in pairs {
                settle(k, resp3, depth + 1)?;
                settle(v, resp3, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Pushes a settled reply ([`settle`]) as the Lua value a script sees (`resp3`: the script
/// said `redis.setresp(3)`). Tables are laid out as Redis's, which it makes empty and fills in
/// this order: `#t` over nils and the order `pairs` takes depend on it.
///
/// # Safety
/// Runs in a protected call (`lua_pcall`, `call.rs`): it raises Lua errors (memory, nesting
/// too deep).
/// Allocates nothing on the Rust side, so such an error skips nothing to drop.
pub unsafe fn push_reply(state: *mut ffi::lua_State, frame: &Frame, resp3: bool, depth: usize) {
    // SAFETY: the stack is grown before each level's pushes; every pointer and length comes
    // from a live borrow of `frame`.
    unsafe {
        if depth > MAX_DEPTH {
            raise(state, "reached lua stack limit");
        }
        ffi::luaL_checkstack(state, 4, c"reached lua stack limit".as_ptr());
        let text = |s: &[u8]| {
            ffi::lua_pushlstring(state, s.as_ptr().cast(), s.len());
        };
        // `{field = <the value on top>}`.
        let wrap = |field: &str| {
            ffi::lua_newtable(state);
            text(field.as_bytes());
            ffi::lua_pushvalue(state, -3);
            ffi::lua_rawset(state, -3);
            ffi::lua_remove(state, -2);
        };
        // (Slice iterators only: nothing with a destructor lives in these frames.)
        let array = |items: &[Frame]| {
            // A nil (RESP3's null) leaves a hole, which growing places differently.
            let holes = resp3
                && items
                    .iter()
                    .any(|f| matches!(f, Frame::Null | Frame::NullArray));
            let size = if holes {
                0
            } else {
                grown_array_size(items.len())
            };
            ffi::lua_createtable(state, size, 0);
            for (i, f) in items.iter().enumerate() {
                push_reply(state, f, resp3, depth + 1);
                ffi::lua_rawseti(state, -2, (i + 1) as ffi::lua_Integer);
            }
        };
        match frame {
            Frame::Simple(s) => {
                text(s.as_bytes());
                wrap("ok");
            }
            Frame::Status(s) => {
                text(s.as_bytes());
                wrap("ok");
            }
            Frame::Error(e) => {
                text(e.as_bytes());
                wrap("err");
            }
            Frame::Integer(n) => ffi::lua_pushnumber(state, *n as f64),
            Frame::Bulk(b) => text(b),
            Frame::Null | Frame::NullArray if resp3 => ffi::lua_pushnil(state),
            Frame::Null | Frame::NullArray => ffi::lua_pushboolean(state, 0),
            Frame::Array(items) | Frame::Push(items) => array(items),
            Frame::Set(items) if resp3 => {
                ffi::lua_newtable(state);
                for f in items {
                    push_reply(state, f, resp3, depth + 1);
                    ffi::lua_pushboolean(state, 1);
                    ffi::lua_rawset(state, -3);
                }
                wrap("set");
            }
            Frame::Set(items) => array(items),
            Frame::Map(pairs) if resp3 => {
                ffi::lua_newtable(state);
                for (k, v) in pairs {
                    push_reply(state, k, resp3, depth + 1);
                    push_reply(state, v, resp3, depth + 1);
                    ffi::lua_rawset(state, -3);
                }
                wrap("map");
            }
            Frame::Pairs(pairs) if resp3 => {
                ffi::lua_newtable(state);
                for (i, (k, v)) in pairs.iter().enumerate() {
                    ffi::luaL_checkstack(state, 4, c"reached lua stack limit".as_ptr());
                    ffi::lua_newtable(state);
                    push_reply(state, k, resp3, depth + 2);
                    ffi::lua_rawseti(state, -2, 1);
                    push_reply(state, v, resp3, depth + 2);
                    ffi::lua_rawseti(state, -2, 2);
                    ffi::lua_rawseti(state, -2, (i + 1) as ffi::lua_Integer);
                }
            }
            Frame::Map(pairs) | Frame::Pairs(pairs) => {
                // Flat: key, value, key, value…
                ffi::lua_newtable(state);
                for (i, (k, v)) in pairs.iter().enumerate() {
                    push_reply(state, k, resp3, depth + 1);
                    ffi::lua_rawseti(state, -2, (2 * i + 1) as ffi::lua_Integer);
                    push_reply(state, v, resp3, depth + 1);
                    ffi::lua_rawseti(state, -2, (2 * i + 2) as ffi::lua_Integer);
                }
            }
            Frame::Verbatim(s) if resp3 => {
                ffi::lua_newtable(state);
                text(b"string");
                text(s.as_bytes());
                ffi::lua_rawset(state, -3);
                text(b"format");
                text(b"txt");
                ffi::lua_rawset(state, -3);
                wrap("verbatim_string");
            }
            Frame::Verbatim(s) => text(s.as_bytes()),
            Frame::Double(d) if resp3 => {
                ffi::lua_pushnumber(state, *d);
                wrap("double");
            }
            Frame::DoubleText(t) if resp3 => {
                ffi::lua_pushnumber(state, t.parse::<f64>().unwrap_or(0.0));
                wrap("double");
            }
            Frame::DoubleText(t) => text(t.as_bytes()),
            Frame::Boolean(b) if resp3 => ffi::lua_pushboolean(state, c_int::from(*b)),
            Frame::Boolean(b) => ffi::lua_pushnumber(state, if *b { 1.0 } else { 0.0 }),
            Frame::BigNumber(n) if resp3 => {
                text(n.as_bytes());
                wrap("big_number");
            }
            Frame::BigNumber(n) => text(n.as_bytes()),
            // Settled away (`settle`): a RESP2 double, a stored value, several replies.
            Frame::Double(_) | Frame::Stored(_) | Frame::Sequence(_) => ffi::lua_pushnil(state),
        }
    }
}

/// The array part Lua 5.1 ends with when `n` values are set at 1..=n of an empty table, one
/// after the other (the next power of two; no hash part): made at that size at once, the table
/// is laid out as if grown, as Redis grows its tables, at one allocation instead of one per
/// doubling.
pub fn grown_array_size(n: usize) -> c_int {
    if n == 0 {
        return 0;
    }
    c_int::try_from(n.next_power_of_two()).unwrap_or(0)
}

/// Raises `msg` as a Lua error.
///
/// # Safety
/// As [`push_reply`]'s.
unsafe fn raise(state: *mut ffi::lua_State, msg: &str) -> ! {
    // SAFETY: a protected call catches the error; `msg` is a live borrow.
    unsafe {
        ffi::lua_pushlstring(state, msg.as_ptr().cast(), msg.len());
        ffi::lua_error(state)
    }
}

/// A script's result as the reply to the caller (`resp3`: the script's protocol, which
/// decides how `true` and `false` answer).
pub fn lua_to_reply(value: &Value, resp3: bool) -> Frame {
    from_lua(value, resp3, 0)
}

fn from_lua(value: &Value, resp3: bool, depth: usize) -> Frame {
    if depth > MAX_DEPTH {
        return Frame::err("reached lua stack limit");
    }
    match value {
        Value::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if resp3 => Frame::Boolean(*b),
        Value::Boolean(true) => Frame::Integer(1),
        Value::Boolean(false) => Frame::Null,
        // C's cast, as Redis: the fraction dropped.
        Value::Integer(n) => Frame::Integer(*n),
        Value::Number(n) => Frame::Integer(*n as i64),
        Value::Table(t) => table_to_reply(t, resp3, depth),
        _ => Frame::Null,
    }
}

fn table_to_reply(t: &Table, resp3: bool, depth: usize) -> Frame {
    let field = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(e) = field("err") {
        return Frame::Error(
            String::from_utf8_lossy(&e.as_bytes())
                .trim_start_matches('-')
                .to_string(),
        );
    }
    if let Value::String(s) = field("ok") {
        let text = String::from_utf8_lossy(&s.as_bytes()).replace(['\r', '\n'], " ");
        return Frame::Status(text);
    }
    match field("double") {
        Value::Number(d) => return Frame::Double(d),
        Value::Integer(n) => return Frame::Double(n as f64),
        _ => {}
    }
    if let Value::String(s) = field("big_number") {
        let text = String::from_utf8_lossy(&s.as_bytes()).replace(['\r', '\n'], " ");
        return Frame::BigNumber(text);
    }
    if let Value::Table(v) = field("verbatim_string")
        && let (Ok(Value::String(_)), Ok(Value::String(s))) =
            (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
    {
        return Frame::Verbatim(String::from_utf8_lossy(&s.as_bytes()).into_owned());
    }
    if let Value::Table(m) = field("map") {
        let pairs = m
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, v)| {
                (
                    from_lua(&k, resp3, depth + 1),
                    from_lua(&v, resp3, depth + 1),
                )
            })
            .collect();
        return Frame::Map(pairs);
    }
    if let Value::Table(s) = field("set") {
        let members = s
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| from_lua(&k, resp3, depth + 1))
            .collect();
        return Frame::Set(members);
    }
    // An array, up to the first nil.
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(from_lua(&v, resp3, depth + 1)),
        }
    }
    Frame::Array(items)
}

//! Values between the server and Lua, as Redis converts them: a command's reply to a Lua value
//! (`redis.call`), in the script's protocol (RESP2 unless `redis.setresp(3)`), and a script's
//! result to a reply, in the caller's.

use bytes::Bytes;
use mlua::{Lua, Table, Value};

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

/// `{err = text}`.
pub fn error_table(lua: &Lua, text: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", text)?;
    Ok(t)
}

fn single(lua: &Lua, field: &str, value: impl mlua::IntoLua) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, value)?;
    Ok(Value::Table(t))
}

/// A command's reply as the script sees it (`resp3`: the script said `redis.setresp(3)`).
pub fn reply_to_lua(lua: &Lua, frame: &Frame, resp3: bool) -> mlua::Result<Value> {
    to_lua(lua, frame, resp3, 0)
}

fn to_lua(lua: &Lua, frame: &Frame, resp3: bool, depth: usize) -> mlua::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::runtime("reached lua stack limit"));
    }
    let array = |items: &mut dyn Iterator<Item = &Frame>| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        for (i, f) in items.enumerate() {
            t.raw_set(i + 1, to_lua(lua, f, resp3, depth + 1)?)?;
        }
        Ok(Value::Table(t))
    };
    Ok(match frame {
        Frame::Simple(s) => single(lua, "ok", *s)?,
        Frame::Status(s) => single(lua, "ok", s.as_str())?,
        Frame::Error(e) => Value::Table(error_table(lua, &reply_error_text(e))?),
        Frame::Integer(n) => Value::Number(*n as f64),
        Frame::Bulk(b) => Value::String(lua.create_string(b)?),
        Frame::Stored(v) => {
            Value::String(lua.create_string(v.0.read().map_err(mlua::Error::external)?)?)
        }
        Frame::Null | Frame::NullArray => {
            if resp3 {
                Value::Nil
            } else {
                Value::Boolean(false)
            }
        }
        Frame::Array(items) | Frame::Push(items) => array(&mut items.iter())?,
        Frame::Set(items) if resp3 => {
            let set = lua.create_table()?;
            for f in items {
                set.raw_set(to_lua(lua, f, resp3, depth + 1)?, true)?;
            }
            single(lua, "set", set)?
        }
        Frame::Set(items) => array(&mut items.iter())?,
        Frame::Map(pairs) if resp3 => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                map.raw_set(
                    to_lua(lua, k, resp3, depth + 1)?,
                    to_lua(lua, v, resp3, depth + 1)?,
                )?;
            }
            single(lua, "map", map)?
        }
        Frame::Map(pairs) => array(&mut pairs.iter().flat_map(|(k, v)| [k, v]))?,
        Frame::Pairs(pairs) if resp3 => {
            let t = lua.create_table()?;
            for (i, (k, v)) in pairs.iter().enumerate() {
                let pair = Frame::Array(vec![k.clone(), v.clone()]);
                t.raw_set(i + 1, to_lua(lua, &pair, resp3, depth + 1)?)?;
            }
            Value::Table(t)
        }
        Frame::Pairs(pairs) => array(&mut pairs.iter().flat_map(|(k, v)| [k, v]))?,
        Frame::Verbatim(s) if resp3 => {
            let v = lua.create_table()?;
            v.raw_set("format", "txt")?;
            v.raw_set("string", lua.create_string(s)?)?;
            single(lua, "verbatim_string", v)?
        }
        Frame::Verbatim(s) => Value::String(lua.create_string(s)?),
        Frame::Double(d) if resp3 => single(lua, "double", *d)?,
        Frame::DoubleText(t) if resp3 => single(lua, "double", t.parse::<f64>().unwrap_or(0.0))?,
        Frame::DoubleText(t) => Value::String(lua.create_string(t)?),
        Frame::Double(d) => Value::String(lua.create_string(crate::frame::format_double(*d))?),
        Frame::Boolean(b) if resp3 => Value::Boolean(*b),
        Frame::Boolean(b) => Value::Number(if *b { 1.0 } else { 0.0 }),
        Frame::BigNumber(n) if resp3 => single(lua, "big_number", n.as_str())?,
        Frame::BigNumber(n) => Value::String(lua.create_string(n)?),
        // Several replies (only pub/sub commands give them, and scripts may not call those):
        // the last one.
        Frame::Sequence(frames) => match frames.last() {
            Some(f) => to_lua(lua, f, resp3, depth + 1)?,
            None => Value::Nil,
        },
    })
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

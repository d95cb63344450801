//! `export` and `import`: the server's keys as JSON lines, one object per Redis key.
//!
//! ```text
//! {"db":0,"key":"greeting","type":"string","value":"hello","ttl_ms":59000}
//! {"db":0,"key":"user:1","type":"hash","value":{"name":"Ada","born":"1815"}}
//! {"db":0,"key":"queue","type":"list","value":["a","b","a"]}
//! {"db":3,"key":"tags","type":"set","value":["red","blue"]}
//! {"db":0,"key":"scores","type":"zset","value":[["low","-inf"],["ada",1.5],["top","inf"]]}
//! {"db":0,"key":"events","type":"stream","value":{"entries":[["1-0",["f","v"]]],"last_id":"1-0","first_id":"1-0","max_deleted_id":"0-0","entries_added":1,"groups":[{"name":"g","last_delivered_id":"1-0","entries_read":1,"consumers":[["alice",1765000000000]],"pending":[["1-0","alice",1765000000000,1]]}]}}
//! ```
//!
//! - `db` is the database (SELECT's number), `type` what TYPE answers; `ttl_ms` is there only
//!   for keys that expire (milliseconds left at export time).
//! - `value`: a string's bytes; a hash's fields and values as an object; a set's members, a
//!   list's elements (in order) as an array; a sorted set's `[member, score]` pairs in score
//!   order, scores as JSON numbers, infinities as the strings `"inf"` and `"-inf"`; a
//!   stream's entries (`[id, [field, value, …]]`, ids as `"ms-seq"`), its last, first and
//!   largest deleted ids, the count of entries ever added, and its groups: last delivered id,
//!   entries read (`null`: unknown), consumers as `[name, seen time]` and pending entries as
//!   `[id, consumer, delivery time, deliveries]` (times in ms since the epoch). Import puts
//!   the entries in nodes of 100 (`stream-node-max-entries`'s default, which approximate
//!   trimming follows).
//! - Binary-safe: bytes that are not UTF-8 are base64 (standard alphabet, padded). A key or a
//!   string value then goes under `key_base64` / `value_base64` instead of `key` / `value`; a
//!   member, field, element or hash value becomes `{"base64":"..."}` in place of its string;
//!   and a hash with a field that is not UTF-8 (which cannot be an object's name) is written as
//!   an array of `[field, value]` pairs instead of an object.
//!
//! Import reads that format. A line without `type` is a string and one without `db` goes to
//! database 0 (or `--db N`), so the older export format (`{"key":..,"value":..,"ttl_ms":..}`
//! lines) still loads. A key that exists is replaced, as RESTORE REPLACE replaces it. Keys are
//! written many per engine transaction (a large collection in one of its own), each whole:
//! after a crash a key is all there or as it was. A bad line stops the import with its number;
//! the lines before it are imported, nothing from it on.

use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use caskdb_server::direct::{self, Contents, Item};
use serde_json::{Map, Value};

/// At most this many keys per engine transaction on import, and this many bytes of keys and
/// values (or half the database's `max_batch_size`, if smaller). A key too big for a batch is
/// written in a transaction of its own.
const IMPORT_BATCH: usize = 1000;
const IMPORT_BATCH_BYTES: usize = 8 << 20;
/// Bytes a record costs beyond its key and value (header, member-key prefix), for the budget.
const RECORD_OVERHEAD: usize = 64;
/// Databases in the server's keyspace.
const DATABASES: u8 = 16;

/// Writes every key of database `only` (all databases if `None`) as JSON lines to `out`;
/// returns how many.
pub fn export(db: &caskdb::Db, only: Option<u8>, out: &mut impl Write) -> anyhow::Result<u64> {
    // Stdout writes a line at a time; one write per 64 KiB instead.
    let mut out = std::io::BufWriter::with_capacity(64 << 10, out);
    let mut line = Vec::new();
    let mut n = 0;
    let databases = match only {
        Some(d) => d..d + 1,
        None => 0..DATABASES,
    };
    for d in databases {
        for item in direct::entries(db, d)? {
            let item = item.context("cannot export")?;
            line.clear();
            write_item(&mut line, &item)?;
            line.push(b'\n');
            out.write_all(&line)?;
            n += 1;
        }
    }
    out.flush()?;
    Ok(n)
}

/// One key as a JSON object (no newline).
fn write_item(out: &mut Vec<u8>, item: &Item) -> anyhow::Result<()> {
    write!(out, "{{\"db\":{},", item.db)?;
    write_named(out, "key", &item.key)?;
    write!(out, ",\"type\":\"{}\",", item.contents.type_name())?;
    match &item.contents {
        Contents::String(s) => write_named(out, "value", s)?,
        Contents::List(items) | Contents::Set(items) => {
            out.extend_from_slice(b"\"value\":[");
            write_joined(out, items, |out, item| write_element(out, item))?;
            out.push(b']');
        }
        Contents::Hash(pairs) => {
            out.extend_from_slice(b"\"value\":");
            // Object names are strings: a field that is not UTF-8 needs the array of pairs.
            let object = pairs.iter().all(|(f, _)| std::str::from_utf8(f).is_ok());
            out.push(if object { b'{' } else { b'[' });
            write_joined(out, pairs, |out, (field, value)| {
                if object {
                    write_element(out, field)?;
                    out.push(b':');
                    write_element(out, value)
                } else {
                    out.push(b'[');
                    write_element(out, field)?;
                    out.push(b',');
                    write_element(out, value)?;
                    out.push(b']');
                    Ok(())
                }
            })?;
            out.push(if object { b'}' } else { b']' });
        }
        Contents::ZSet(pairs) => {
            out.extend_from_slice(b"\"value\":[");
            write_joined(out, pairs, |out, (member, score)| {
                out.push(b'[');
                write_element(out, member)?;
                out.push(b',');
                write_score(out, *score)?;
                out.push(b']');
                Ok(())
            })?;
            out.push(b']');
        }
        Contents::Stream(st) => write_stream(out, st)?,
        other => bail!(
            "key \"{}\" of database {}: a {} this version cannot export",
            item.key.escape_ascii(),
            item.db,
            other.type_name()
        ),
    }
    if let Some(left) = item.ttl {
        // At least 1: a key about to expire must not come back as one without expiry.
        write!(out, ",\"ttl_ms\":{}", left.as_millis().max(1))?;
    }
    out.push(b'}');
    Ok(())
}

/// `"name":"text"`, or `"name_base64":"..."` for bytes that are not UTF-8.
fn write_named(out: &mut Vec<u8>, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            write!(out, "\"{name}\":")?;
            serde_json::to_writer(&mut *out, s)?;
        }
        Err(_) => write!(out, "\"{name}_base64\":\"{}\"", B64.encode(bytes))?,
    }
    Ok(())
}

/// A member, field, element or hash value: a string, or `{"base64":"..."}`.
fn write_id(out: &mut Vec<u8>, (ms, seq): direct::StreamId) -> anyhow::Result<()> {
    write!(out, "\"{ms}-{seq}\"")?;
    Ok(())
}

/// A stream's `value`: its entries, state and groups (see the module's documentation).
fn write_stream(out: &mut Vec<u8>, st: &direct::Stream) -> anyhow::Result<()> {
    out.extend_from_slice(b"\"value\":{\"entries\":[");
    write_joined(out, st.nodes.iter().flatten(), |out, (id, pairs)| {
        out.push(b'[');
        write_id(out, *id)?;
        out.extend_from_slice(b",[");
        write_joined(out, pairs, |out, p| write_element(out, p))?;
        out.extend_from_slice(b"]]");
        Ok(())
    })?;
    out.extend_from_slice(b"],\"last_id\":");
    write_id(out, st.last_id)?;
    out.extend_from_slice(b",\"first_id\":");
    write_id(out, st.first_id)?;
    out.extend_from_slice(b",\"max_deleted_id\":");
    write_id(out, st.max_deleted)?;
    write!(out, ",\"entries_added\":{},\"groups\":[", st.entries_added)?;
    write_joined(out, &st.groups, |out, g| {
        out.extend_from_slice(b"{\"name\":");
        write_element(out, &g.name)?;
        out.extend_from_slice(b",\"last_delivered_id\":");
        write_id(out, g.last_id)?;
        if g.entries_read >= 0 {
            write!(out, ",\"entries_read\":{}", g.entries_read)?;
        } else {
            out.extend_from_slice(b",\"entries_read\":null");
        }
        out.extend_from_slice(b",\"consumers\":[");
        write_joined(out, &g.consumers, |out, (name, seen)| {
            out.push(b'[');
            write_element(out, name)?;
            write!(out, ",{seen}]")?;
            Ok(())
        })?;
        out.extend_from_slice(b"],\"pending\":[");
        write_joined(out, &g.pending, |out, (id, at, count, owner)| {
            out.push(b'[');
            write_id(out, *id)?;
            out.push(b',');
            write_element(out, owner)?;
            write!(out, ",{at},{count}]")?;
            Ok(())
        })?;
        out.extend_from_slice(b"]}");
        Ok(())
    })?;
    out.extend_from_slice(b"]}");
    Ok(())
}

/// Writes each of `items` with `each`, commas between them.
fn write_joined<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(&mut Vec<u8>, T) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, item)?;
    }
    Ok(())
}

fn write_element(out: &mut Vec<u8>, bytes: &[u8]) -> anyhow::Result<()> {
    match std::str::from_utf8(bytes) {
        Ok(s) => serde_json::to_writer(&mut *out, s)?,
        Err(_) => write!(out, "{{\"base64\":\"{}\"}}", B64.encode(bytes))?,
    }
    Ok(())
}

/// A score as the shortest JSON number that reads back to the same `f64`; JSON has no
/// infinities, so those are strings (NaN never is a score; written as "nan" should one be
/// stored).
fn write_score(out: &mut Vec<u8>, score: f64) -> anyhow::Result<()> {
    if score.is_finite() {
        serde_json::to_writer(&mut *out, &score)?;
    } else if score.is_nan() {
        out.extend_from_slice(b"\"nan\"");
    } else if score > 0.0 {
        out.extend_from_slice(b"\"inf\"");
    } else {
        out.extend_from_slice(b"\"-inf\"");
    }
    Ok(())
}

/// Reads JSON lines from `input` and stores their keys; `into`: the `--db` given, if any (see
/// the module's doc). Returns how many keys were stored.
pub fn import(db: &caskdb::Db, input: impl BufRead, into: Option<u8>) -> anyhow::Result<u64> {
    let budget = IMPORT_BATCH_BYTES.min(db.options().max_batch_size_bytes() / 2);
    let mut batch = Batch {
        db,
        items: Vec::new(),
        lines: Vec::new(),
        bytes: 0,
        stored: 0,
    };
    // With --db, the first database a line names, and that line (the others must name it too).
    let mut named: Option<(u8, usize)> = None;
    for (i, line) in input.lines().enumerate() {
        let number = i + 1;
        let parsed = line
            .context("cannot read it")
            .and_then(|line| parse_line(&line))
            .and_then(|parsed| match parsed {
                None => Ok(None),
                Some((item, line_db)) => place(item, line_db, into, &mut named, number).map(Some),
            });
        let item = match parsed {
            Ok(None) => continue,
            Ok(Some(item)) => item,
            Err(e) => {
                // What came before the bad line is imported; then the error.
                let stored = batch.commit()?;
                return Err(e.context(format!(
                    "line {number}: cannot import it ({} imported before it)",
                    keys(stored)
                )));
            }
        };
        let size = weight(&item);
        if size > budget {
            // Too big for a batch: in a transaction of its own, after what came before it.
            batch.commit()?;
            batch.push(number, item, size);
            batch.commit()?;
            continue;
        }
        if batch.items.len() == IMPORT_BATCH || batch.bytes + size > budget {
            batch.commit()?;
        }
        batch.push(number, item, size);
    }
    batch.commit()
}

/// The database `item` goes to: the one its line names (`line_db`), 0 if none; with `--db N`
/// (`into`), N, provided every line that names a database names the same one (`named`: the
/// first such, and its line number).
fn place(
    mut item: Item,
    line_db: Option<u8>,
    into: Option<u8>,
    named: &mut Option<(u8, usize)>,
    number: usize,
) -> anyhow::Result<Item> {
    let Some(n) = into else {
        return Ok(item);
    };
    if let Some(d) = line_db {
        match *named {
            Some((first, at)) if first != d => bail!(
                "it is of database {d} and line {at} of database {first}: --db {n} loads an \
                 export of one database (made with --db)"
            ),
            Some(_) => {}
            None => *named = Some((d, number)),
        }
    }
    item.db = n;
    Ok(item)
}

/// "1 key", "2 keys".
pub fn keys(n: u64) -> String {
    format!("{n} key{}", if n == 1 { "" } else { "s" })
}

/// Keys read and not stored yet, with their line numbers.
struct Batch<'a> {
    db: &'a caskdb::Db,
    items: Vec<Item>,
    lines: Vec<usize>,
    bytes: usize,
    /// Keys stored so far.
    stored: u64,
}

impl Batch<'_> {
    fn push(&mut self, line: usize, item: Item, size: usize) {
        self.items.push(item);
        self.lines.push(line);
        self.bytes += size;
    }

    /// Stores the batch in one transaction; returns how many keys are stored so far. If the
    /// engine refuses it, its keys are stored one at a time, to import every line before the
    /// one refused and name that one.
    fn commit(&mut self) -> anyhow::Result<u64> {
        if self.items.is_empty() {
            return Ok(self.stored);
        }
        let items = std::mem::take(&mut self.items);
        let lines = std::mem::take(&mut self.lines);
        self.bytes = 0;
        if direct::put_many(self.db, &items).is_err() {
            for (item, line) in items.iter().zip(&lines) {
                direct::put(self.db, item.db, &item.key, &item.contents, item.ttl).with_context(
                    || {
                        format!(
                            "line {line}: cannot store it ({} imported before it)",
                            keys(self.stored)
                        )
                    },
                )?;
                self.stored += 1;
            }
            return Ok(self.stored);
        }
        self.stored += items.len() as u64;
        Ok(self.stored)
    }
}

/// Roughly the bytes `item` takes in a transaction.
fn weight(item: &Item) -> usize {
    let member = |b: &Bytes| b.len() + RECORD_OVERHEAD;
    let members: usize = match &item.contents {
        Contents::String(s) => s.len(),
        Contents::List(v) | Contents::Set(v) => v.iter().map(member).sum(),
        Contents::Hash(p) => p.iter().map(|(f, v)| member(f) + v.len()).sum(),
        // Two records a member: the member with its score, the score index entry.
        Contents::ZSet(p) => p.iter().map(|(m, _)| 2 * (member(m) + 8)).sum(),
        // An entry record each; a group, consumer and two records per pending entry.
        Contents::Stream(st) => {
            let entries: usize = st
                .nodes
                .iter()
                .flatten()
                .map(|(_, pairs)| {
                    16 + RECORD_OVERHEAD + pairs.iter().map(|p| p.len() + 4).sum::<usize>()
                })
                .sum();
            let groups: usize = st
                .groups
                .iter()
                .map(|g| {
                    member(&g.name)
                        + g.consumers
                            .iter()
                            .map(|(c, _)| member(c) + g.name.len())
                            .sum::<usize>()
                        + g.pending
                            .iter()
                            .map(|p| 2 * (member(&p.3) + g.name.len() + 32))
                            .sum::<usize>()
                })
                .sum();
            entries + groups
        }
        _ => 0,
    };
    // The key record and the owner record.
    members + 2 * (item.key.len() + RECORD_OVERHEAD)
}

const FIELDS: [&str; 7] = [
    "db",
    "key",
    "key_base64",
    "type",
    "value",
    "value_base64",
    "ttl_ms",
];

/// One line: `None` if blank; else its key and the database the line names, if any.
fn parse_line(line: &str) -> anyhow::Result<Option<(Item, Option<u8>)>> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    // The error says where in the line; the line is 1 (its number in the input comes with it).
    let parsed = serde_json::from_str::<Value>(line).map_err(|e| {
        anyhow::anyhow!(
            "not valid JSON: {}",
            e.to_string().replace(" at line 1 column ", " at column ")
        )
    })?;
    let Value::Object(obj) = parsed else {
        bail!("not a JSON object");
    };
    if let Some(name) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        bail!("unknown field \"{name}\"");
    }
    let db = match obj.get("db") {
        None => None,
        Some(d) => Some(
            d.as_u64()
                .filter(|&d| d < u64::from(DATABASES))
                .and_then(|d| u8::try_from(d).ok())
                .context("db is not a database number (0 to 15)")?,
        ),
    };
    let ttl = match obj.get("ttl_ms") {
        None => None,
        Some(t) => Some(Duration::from_millis(
            t.as_u64().context("ttl_ms is not a non-negative integer")?,
        )),
    };
    let key = Bytes::from(get_bytes(&obj, "key")?);
    let ty = match obj.get("type") {
        None => "string",
        Some(Value::String(t)) => t.as_str(),
        Some(_) => bail!("type is not a string"),
    };
    let collection = |what: &str| -> anyhow::Result<&Value> {
        if obj.contains_key("value_base64") {
            bail!("value_base64 is for strings: a {ty}'s value is {what}");
        }
        obj.get("value")
            .with_context(|| format!("no \"value\": a {ty}'s value is {what}"))
    };
    let contents = match ty {
        "string" => Contents::String(Bytes::from(get_bytes(&obj, "value")?)),
        "list" | "set" => {
            let Value::Array(items) = collection("an array")? else {
                bail!("a {ty}'s value must be an array");
            };
            let items = items
                .iter()
                .enumerate()
                .map(|(i, v)| element(v).with_context(|| format!("element {i}")))
                .collect::<anyhow::Result<_>>()?;
            if ty == "list" {
                Contents::List(items)
            } else {
                Contents::Set(items)
            }
        }
        "hash" => Contents::Hash(match collection("an object (or an array of pairs)")? {
            Value::Object(fields) => fields
                .iter()
                .map(|(f, v)| {
                    let v = element(v).with_context(|| format!("field \"{f}\""))?;
                    Ok((Bytes::copy_from_slice(f.as_bytes()), v))
                })
                .collect::<anyhow::Result<_>>()?,
            Value::Array(pairs) => pairs
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let pair = (|| match p.as_array().map(Vec::as_slice) {
                        Some([f, v]) => Ok((element(f)?, element(v)?)),
                        _ => bail!("not a [field, value] pair"),
                    })();
                    pair.with_context(|| format!("pair {i}"))
                })
                .collect::<anyhow::Result<_>>()?,
            _ => bail!("a hash's value must be an object, or an array of [field, value] pairs"),
        }),
        "zset" => {
            let Value::Array(pairs) = collection("an array of [member, score] pairs")? else {
                bail!("a zset's value must be an array of [member, score] pairs");
            };
            Contents::ZSet(
                pairs
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let pair = (|| match p.as_array().map(Vec::as_slice) {
                            Some([m, s]) => Ok((element(m)?, score(s)?)),
                            _ => bail!("not a [member, score] pair"),
                        })();
                        pair.with_context(|| format!("pair {i}"))
                    })
                    .collect::<anyhow::Result<_>>()?,
            )
        }
        "stream" => {
            let Value::Object(v) = collection("an object")? else {
                bail!("a stream's value must be an object");
            };
            Contents::Stream(Box::new(read_stream(v)?))
        }
        other => bail!("unknown type \"{other}\" (string, hash, list, set, zset or stream)"),
    };
    Ok(Some((
        Item {
            db: db.unwrap_or(0),
            key,
            contents,
            ttl,
        },
        db,
    )))
}

/// `obj[name]` as a string's bytes, or `obj[name_base64]` decoded.
fn get_bytes(obj: &Map<String, Value>, name: &str) -> anyhow::Result<Vec<u8>> {
    match (obj.get(name), obj.get(&format!("{name}_base64"))) {
        (Some(Value::String(s)), None) => Ok(s.as_bytes().to_vec()),
        (None, Some(Value::String(s))) => B64
            .decode(s)
            .with_context(|| format!("{name}_base64 is not valid base64")),
        _ => bail!("needs exactly one of \"{name}\" or \"{name}_base64\", as a string"),
    }
}

/// A member, field, element or hash value: a string, or `{"base64":"..."}`.
/// A stream id written `ms-seq`.
fn stream_id(v: &Value) -> anyhow::Result<direct::StreamId> {
    let text = v
        .as_str()
        .context("a stream id must be a string \"ms-seq\"")?;
    let (ms, seq) = text
        .split_once('-')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .with_context(|| format!("\"{text}\" is not a stream id (ms-seq)"))?;
    Ok((ms, seq))
}

/// Entries per node when an import rebuilds a stream's nodes (Redis's default
/// `stream-node-max-entries`).
const STREAM_NODE: usize = 100;

/// A stream's `value` object.
fn read_stream(v: &Map<String, Value>) -> anyhow::Result<direct::Stream> {
    let field = |name: &str| v.get(name).with_context(|| format!("no \"{name}\""));
    let count = |name: &str| -> anyhow::Result<u64> {
        field(name)?
            .as_u64()
            .with_context(|| format!("\"{name}\" must be a whole number"))
    };
    let Value::Array(rows) = field("entries")? else {
        bail!("\"entries\" must be an array of [id, [field, value, …]]");
    };
    let mut entries = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let entry = (|| match row.as_array().map(Vec::as_slice) {
            Some([id, Value::Array(pairs)]) if !pairs.is_empty() && pairs.len() % 2 == 0 => {
                let pairs = pairs
                    .iter()
                    .map(element)
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Ok((stream_id(id)?, pairs))
            }
            _ => bail!("not [id, [field, value, …]]"),
        })();
        entries.push(entry.with_context(|| format!("entry {i}"))?);
    }
    if entries.windows(2).any(|w| w[0].0 >= w[1].0) {
        bail!("the entries' ids must increase");
    }
    let last_id = stream_id(field("last_id")?)?;
    if entries.last().is_some_and(|(id, _)| *id > last_id) {
        bail!("\"last_id\" is below the last entry's id");
    }
    let Value::Array(group_rows) = field("groups")? else {
        bail!("\"groups\" must be an array");
    };
    let mut groups = Vec::with_capacity(group_rows.len());
    for (i, g) in group_rows.iter().enumerate() {
        let group = (|| -> anyhow::Result<direct::StreamGroup> {
            let g = g.as_object().context("not an object")?;
            let get = |name: &str| g.get(name).with_context(|| format!("no \"{name}\""));
            let entries_read = match get("entries_read")? {
                Value::Null => -1,
                n => n
                    .as_i64()
                    .filter(|n| *n >= 0)
                    .context("\"entries_read\" must be a whole number or null")?,
            };
            let consumers = get("consumers")?
                .as_array()
                .context("\"consumers\" must be an array")?
                .iter()
                .map(|c| match c.as_array().map(Vec::as_slice) {
                    Some([name, seen]) => Ok((
                        element(name)?,
                        seen.as_u64()
                            .context("a seen time must be a whole number")?,
                    )),
                    _ => bail!("a consumer must be [name, seen time]"),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let pending = get("pending")?
                .as_array()
                .context("\"pending\" must be an array")?
                .iter()
                .map(|p| match p.as_array().map(Vec::as_slice) {
                    Some([id, owner, at, n]) => {
                        let owner = element(owner)?;
                        if !consumers.iter().any(|(c, _)| *c == owner) {
                            bail!("a pending entry's consumer is not among the group's");
                        }
                        Ok((
                            stream_id(id)?,
                            at.as_u64()
                                .context("a delivery time must be a whole number")?,
                            n.as_u64()
                                .context("a delivery count must be a whole number")?,
                            owner,
                        ))
                    }
                    _ => bail!("a pending entry must be [id, consumer, time, count]"),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(direct::StreamGroup {
                name: element(get("name")?)?,
                last_id: stream_id(get("last_delivered_id")?)?,
                entries_read,
                consumers,
                pending,
            })
        })();
        groups.push(group.with_context(|| format!("group {i}"))?);
    }
    let nodes: Vec<Vec<_>> = entries.chunks(STREAM_NODE).map(<[_]>::to_vec).collect();
    let last_node_fill = nodes.last().map_or(0, |n| n.len() as u64);
    Ok(direct::Stream {
        nodes,
        last_node_fill,
        last_id,
        first_id: stream_id(field("first_id")?)?,
        max_deleted: stream_id(field("max_deleted_id")?)?,
        entries_added: count("entries_added")?,
        groups,
    })
}

fn element(v: &Value) -> anyhow::Result<Bytes> {
    match v {
        Value::String(s) => Ok(Bytes::copy_from_slice(s.as_bytes())),
        Value::Object(o) if o.len() == 1 => match o.get("base64") {
            Some(Value::String(s)) => Ok(Bytes::from(
                B64.decode(s).context("base64 is not valid base64")?,
            )),
            _ => bail!("not a string or {{\"base64\":\"...\"}}"),
        },
        _ => bail!("not a string or {{\"base64\":\"...\"}}"),
    }
}

/// A score: a JSON number, or "inf", "+inf", "-inf" (as ZADD reads them, any case).
fn score(v: &Value) -> anyhow::Result<f64> {
    match v {
        Value::Number(n) => n.as_f64().context("the score is not a number"),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "inf" | "+inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            _ => bail!("the score {s:?} is not a number, \"inf\" or \"-inf\""),
        },
        _ => bail!("the score is not a number, \"inf\" or \"-inf\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export_all(db: &caskdb::Db) -> String {
        let mut out = Vec::new();
        export(db, None, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn import_splits_by_size_and_stores_oversized_values_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = direct::options()
            .max_batch_size(64 << 10)
            .open(dir.path())
            .unwrap();
        let mut input = String::new();
        for i in 0..100 {
            input += &format!(
                "{{\"key\":\"k{i:03}\",\"value\":\"{}\"}}\n",
                "v".repeat(10_000)
            );
        }
        input += &format!("{{\"key\":\"big\",\"value\":\"{}\"}}\n", "b".repeat(40_000));
        let members: Vec<String> = (0..500).map(|i| format!("\"m{i:04}\"")).collect();
        input += &format!(
            "{{\"key\":\"bigset\",\"type\":\"set\",\"value\":[{}]}}\n",
            members.join(",")
        );
        input += "{\"key\":\"t\",\"value\":\"x\",\"ttl_ms\":60000}\n";
        assert_eq!(import(&db, input.as_bytes(), None).unwrap(), 103);
        assert_eq!(direct::key_counts(&db).unwrap()[0], 103);
        match direct::read(&db, 0, b"big").unwrap() {
            Some((Contents::String(s), None)) => assert_eq!(s.len(), 40_000),
            other => panic!("{other:?}"),
        }
        match direct::read(&db, 0, b"bigset").unwrap() {
            Some((Contents::Set(m), None)) => assert_eq!(m.len(), 500),
            other => panic!("{other:?}"),
        }
        assert!(matches!(direct::ttl(&db, 0, b"t").unwrap(), Some(Some(_))));
        let text = export_all(&db);
        assert_eq!(text.lines().count(), 103);
        assert!(
            text.lines().any(|l| {
                l.starts_with(r#"{"db":0,"key":"t","type":"string","value":"x","ttl_ms":"#)
            }),
            "the expiry is exported"
        );
    }

    #[test]
    fn every_type_round_trips_binary_members_and_infinite_scores() {
        let dir = tempfile::tempdir().unwrap();
        let db = direct::options().open(dir.path()).unwrap();
        let b = |s: &[u8]| Bytes::copy_from_slice(s);
        let values = [
            Contents::String(b(b"\xff\x00text")),
            Contents::Hash(vec![(b(b"f"), b(b"\xfe")), (b(b"g"), b(b"v"))]),
            Contents::Hash(vec![(b(b"\xff"), b(b"x"))]),
            Contents::List(vec![b(b"z"), b(b"a"), b(b"z"), b(b"\x80")]),
            Contents::Set(vec![b(b"1"), b(b"\xc3")]),
            Contents::ZSet(vec![
                (b(b"lo"), f64::NEG_INFINITY),
                (b(b"\x81"), -2.5),
                (b(b"x"), 0.1 + 0.2),
                (b(b"y"), 1e300),
                (b(b"hi"), f64::INFINITY),
            ]),
        ];
        for (i, v) in values.iter().enumerate() {
            direct::put(&db, 1, format!("k{i}").as_bytes(), v, None).unwrap();
        }
        let text = export_all(&db);
        assert!(text.contains(r#"["lo","-inf"]"#), "{text}");
        assert!(text.contains(r#"[{"base64":"gQ=="},-2.5]"#), "{text}");
        assert!(
            text.contains(r#""value":[[{"base64":"/w=="},"x"]]"#),
            "{text}"
        );
        assert!(
            text.contains(r#""value":{"f":{"base64":"/g=="},"g":"v"}"#),
            "{text}"
        );
        let other = tempfile::tempdir().unwrap();
        let copy = direct::options().open(other.path()).unwrap();
        assert_eq!(import(&copy, text.as_bytes(), None).unwrap(), 6);
        for (i, v) in values.iter().enumerate() {
            let (got, ttl) = direct::read(&copy, 1, format!("k{i}").as_bytes())
                .unwrap()
                .unwrap();
            assert_eq!((&got, ttl), (v, None), "k{i}");
        }
        assert_eq!(export_all(&copy), text);
    }

    #[test]
    fn bad_lines_name_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let db = direct::options().open(dir.path()).unwrap();
        for (line, why) in [
            (r#"{"key":"a","value":"1","colour":"red"}"#, "unknown field"),
            (r#"{"key":"a","type":"geo","value":[]}"#, "unknown type"),
            (
                r#"{"key":"a","type":"stream","value":[]}"#,
                "must be an object",
            ),
            (
                r#"{"key":"a","type":"stream","value":{"entries":[["2-0",["f","v"]],["1-0",["f","v"]]],"last_id":"2-0","first_id":"1-0","max_deleted_id":"0-0","entries_added":2,"groups":[]}}"#,
                "must increase",
            ),
            (
                r#"{"key":"a","type":"stream","value":{"entries":[["1-0",["f"]]],"last_id":"1-0","first_id":"1-0","max_deleted_id":"0-0","entries_added":1,"groups":[]}}"#,
                "entry 0",
            ),
            (
                r#"{"key":"a","type":"stream","value":{"entries":[],"last_id":"x","first_id":"0-0","max_deleted_id":"0-0","entries_added":0,"groups":[]}}"#,
                "not a stream id",
            ),
            (
                r#"{"key":"a","type":"stream","value":{"entries":[["1-0",["f","v"]]],"last_id":"1-0","first_id":"1-0","max_deleted_id":"0-0","entries_added":1,"groups":[{"name":"g","last_delivered_id":"1-0","entries_read":1,"consumers":[],"pending":[["1-0","ghost",1,1]]}]}}"#,
                "not among the group's",
            ),
            (r#"{"key":"a","type":"set","value":[]}"#, "empty set"),
            (r#"{"key":"a","type":"set","value":["x","x"]}"#, "twice"),
            (
                r#"{"key":"a","type":"zset","value":[["x","nan"]]}"#,
                "score",
            ),
            (r#"{"key":"a","type":"zset","value":[["x"]]}"#, "pair 0"),
            (r#"{"key":"a","type":"list","value":[1]}"#, "element 0"),
            (
                r#"{"key":"a","type":"list","value_base64":"AA=="}"#,
                "for strings",
            ),
            (r#"{"db":16,"key":"a","value":"1"}"#, "0 to 15"),
            (r#"{"key":"a","value":"1","ttl_ms":-1}"#, "ttl_ms"),
        ] {
            let err = import(&db, format!("{line}\n").as_bytes(), None).unwrap_err();
            let text = format!("{err:#}");
            assert!(
                text.contains("line 1") && text.contains(why),
                "{line}: {text}"
            );
        }
        assert_eq!(direct::key_counts(&db).unwrap(), [0; 16]);
    }
}

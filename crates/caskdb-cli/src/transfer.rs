//! `export` and `import`: one JSON object per line.
//!
//! `{"key":"...","value":"...","ttl_ms":1234}`: keys and values that are UTF-8 are JSON strings;
//! others are base64 under `key_base64` / `value_base64`, so any bytes survive a round trip.
//! `ttl_ms` is present only for keys that expire (milliseconds left at export time).

use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};

/// Operations per batch on import.
const IMPORT_BATCH: usize = 1000;

fn put_bytes(obj: &mut Map<String, Value>, name: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => obj.insert(name.into(), Value::String(s.into())),
        Err(_) => obj.insert(format!("{name}_base64"), Value::String(B64.encode(bytes))),
    };
}

fn get_bytes(obj: &Map<String, Value>, name: &str) -> anyhow::Result<Vec<u8>> {
    match (obj.get(name), obj.get(&format!("{name}_base64"))) {
        (Some(Value::String(s)), None) => Ok(s.as_bytes().to_vec()),
        (None, Some(Value::String(s))) => B64
            .decode(s)
            .with_context(|| format!("{name}_base64 is not valid base64")),
        _ => bail!("needs exactly one of \"{name}\" or \"{name}_base64\", as a string"),
    }
}

pub fn export(db: &caskdb::Db, out: &mut impl Write) -> anyhow::Result<u64> {
    let mut n = 0;
    for item in db.iter() {
        let (k, v) = item?;
        let mut obj = Map::new();
        put_bytes(&mut obj, "key", &k);
        put_bytes(&mut obj, "value", &v);
        if let Some(left) = db.ttl(&k)? {
            obj.insert("ttl_ms".into(), Value::from(left.as_millis() as u64));
        }
        serde_json::to_writer(&mut *out, &Value::Object(obj))?;
        out.write_all(b"\n")?;
        n += 1;
    }
    Ok(n)
}

pub fn import(db: &caskdb::Db, input: impl BufRead) -> anyhow::Result<u64> {
    let mut n = 0;
    let mut batch = db.batch();
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = (|| -> anyhow::Result<_> {
            let Value::Object(obj) = serde_json::from_str::<Value>(&line)? else {
                bail!("not a JSON object");
            };
            let ttl = match obj.get("ttl_ms") {
                None => None,
                Some(t) => Some(Duration::from_millis(
                    t.as_u64().context("ttl_ms is not a non-negative integer")?,
                )),
            };
            let key = get_bytes(&obj, "key")?;
            if key.is_empty() {
                bail!("the key is empty");
            }
            Ok((key, get_bytes(&obj, "value")?, ttl))
        })();
        let (k, v, ttl) = parsed.with_context(|| {
            format!(
                "line {}: cannot import ({n} keys imported before it)",
                i + 1
            )
        })?;
        match ttl {
            Some(t) => batch.put_with_ttl(k, v, t),
            None => batch.put(k, v),
        };
        if batch.len() == IMPORT_BATCH {
            let full = std::mem::replace(&mut batch, db.batch());
            full.commit()?;
            n += IMPORT_BATCH as u64;
        }
    }
    let rest = batch.len() as u64;
    batch.commit()?;
    Ok(n + rest)
}

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

/// Operations per batch on import, and at most this many bytes of keys and values per batch
/// (or half the database's `max_batch_size`, if smaller). A value too big for a batch is
/// written on its own.
const IMPORT_BATCH: usize = 1000;
const IMPORT_BATCH_BYTES: usize = 8 << 20;

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
    for key in db.keys() {
        let k = key?;
        // value and expiry read together: a key expiring meanwhile is skipped, never exported
        // as permanent
        let Some((v, ttl)) = db.get_with_ttl(&k)? else {
            continue;
        };
        let mut obj = Map::new();
        put_bytes(&mut obj, "key", &k);
        put_bytes(&mut obj, "value", &v);
        if let Some(left) = ttl {
            obj.insert("ttl_ms".into(), Value::from(left.as_millis().max(1) as u64));
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
    let budget = IMPORT_BATCH_BYTES.min(db.options().max_batch_size_bytes() / 2);
    let mut bytes = 0;
    let mut first_line = 1;
    let mut last_line = 0;
    let commit = |batch: caskdb::WriteBatch, from: usize, to: usize| {
        batch
            .commit()
            .with_context(|| format!("lines {from}-{to}: cannot store them"))
    };
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        last_line = i + 1;
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
        let size = k.len() + v.len();
        if size > budget {
            // too big for a batch: on its own, after what came before it
            let full = std::mem::replace(&mut batch, db.batch());
            n += full.len() as u64;
            commit(full, first_line, i)?;
            match ttl {
                Some(t) => db.put_with_ttl(&k, &v, t),
                None => db.put(&k, &v),
            }
            .with_context(|| format!("line {}: cannot store it", i + 1))?;
            n += 1;
            bytes = 0;
            first_line = i + 2;
            continue;
        }
        if batch.len() == IMPORT_BATCH || bytes + size > budget {
            let full = std::mem::replace(&mut batch, db.batch());
            n += full.len() as u64;
            commit(full, first_line, i)?;
            bytes = 0;
            first_line = i + 1;
        }
        bytes += size;
        match ttl {
            Some(t) => batch.put_with_ttl(k, v, t),
            None => batch.put(k, v),
        };
    }
    let rest = batch.len() as u64;
    commit(batch, first_line, last_line)?;
    Ok(n + rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_splits_by_size_and_stores_oversized_values_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = caskdb::Options::default()
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
        input += "{\"key\":\"t\",\"value\":\"x\",\"ttl_ms\":60000}\n";
        assert_eq!(import(&db, input.as_bytes()).unwrap(), 102);
        assert_eq!(db.len(), 102);
        assert_eq!(db.get("big").unwrap().unwrap().len(), 40_000);
        assert!(db.ttl("t").unwrap().is_some());
        let mut out = Vec::new();
        assert_eq!(export(&db, &mut out).unwrap(), 102);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("{\"key\":\"t\"") && l.contains("\"ttl_ms\":")),
            "the expiry is exported"
        );
    }
}

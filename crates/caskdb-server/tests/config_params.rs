//! CONFIG against a real redis-server: every parameter redis-server 7.0.15 lists in
//! `CONFIG GET *` is listed by caskdb too, and setting each one to its current value gets the
//! same answer from both (OK, or Redis's own error for immutable and protected ones), in both
//! protocols.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::Reply;
use common::diff::differential;

/// The (name, value) pairs of a CONFIG GET reply (a map in RESP3, a flat array in RESP2).
fn pairs(r: Reply) -> Vec<(Vec<u8>, Vec<u8>)> {
    let bulk = |r: Reply| match r {
        Reply::Bulk(b) => b,
        other => panic!("not a bulk string: {other:?}"),
    };
    match r {
        Reply::Map(m) => m.into_iter().map(|(k, v)| (bulk(k), bulk(v))).collect(),
        Reply::Array(a) => a
            .chunks(2)
            .map(|p| (bulk(p[0].clone()), bulk(p[1].clone())))
            .collect(),
        other => panic!("CONFIG GET: {other:?}"),
    }
}

#[test]
fn every_redis_parameter_is_known_and_set_as_redis_sets_it() {
    differential(|d| {
        d.script("CONFIG SET of every parameter to its value");
        let (r, c) = d.conn(0);
        let redis = pairs(r.cmd(&["CONFIG", "GET", "*"]));
        let cask = pairs(c.cmd(&["CONFIG", "GET", "*"]));
        let missing: Vec<String> = redis
            .iter()
            .filter(|(k, _)| !cask.iter().any(|(n, _)| n == k))
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .collect();
        assert!(missing.is_empty(), "CONFIG GET * lacks {missing:?}");
        assert!(redis.len() > 150, "redis listed only {}", redis.len());
        for (name, rvalue) in &redis {
            // Each server keeps its own value (ports, directories differ): set it back.
            let cvalue = &cask.iter().find(|(n, _)| n == name).unwrap().1;
            let (r, c) = d.conn(0);
            let send = |conn: &mut common::Raw, v: &[u8]| {
                conn.send_bytes(&common::encode_bytes(&[b"CONFIG", b"SET", name, v]));
                conn.read()
            };
            let rr = send(r, rvalue);
            let cr = send(c, cvalue);
            if rr != cr {
                let args: Vec<&[u8]> = vec![b"CONFIG", b"SET", name, rvalue];
                d.mismatch(0, &args, &rr, &cr);
            }
        }
        // Values of the wrong kind, unknown names, several at once.
        d.run(
            r#"
            CONFIG SET hz abc
            CONFIG SET hz 20
            CONFIG GET hz
            CONFIG SET lazyfree-lazy-eviction maybe
            CONFIG SET lazyfree-lazy-eviction yes
            CONFIG GET lazyfree-lazy-eviction
            CONFIG SET hash-max-listpack-entries 256
            CONFIG GET hash-max-listpack-entries
            CONFIG SET no-such-parameter 1
            CONFIG SET daemonize yes
            CONFIG SET dir /
            CONFIG SET databases 4
            CONFIG SET hz 10 maxmemory-samples 7
            CONFIG GET maxmemory-samples
            "#,
        );
    });
}

#[test]
fn memory_parameters_are_kept_in_bytes() {
    differential(|d| {
        d.script("memory parameters set with units");
        d.run(
            r"
            CONFIG SET client-query-buffer-limit 2mb
            CONFIG GET client-query-buffer-limit
            CONFIG SET client-query-buffer-limit 0
            CONFIG SET client-query-buffer-limit 100
            CONFIG GET client-query-buffer-limit
            CONFIG SET maxmemory 1gb
            CONFIG GET maxmemory
            CONFIG SET hash-max-ziplist-value 1k
            CONFIG GET hash-max-listpack-value
            CONFIG GET hash-max-ziplist-value
            CONFIG SET stream-node-max-bytes 4kb
            CONFIG GET stream-node-max-bytes
            CONFIG SET maxmemory-clients 5%
            CONFIG GET maxmemory-clients
            CONFIG SET maxmemory 0
            CONFIG SET maxmemory-clients 0
            CONFIG SET client-query-buffer-limit 1gb
            CONFIG SET hash-max-ziplist-value 64
            CONFIG SET stream-node-max-bytes 4096
            ",
        );
    });
}

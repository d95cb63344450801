//! Entry point for the `resp` fuzz target in `fuzz/` and for the test that replays its corpus.
//!
//! **For fuzzing only: not a stable API.** The module is hidden from the docs and changes with
//! the parser it drives; it lives in the crate because the parser is private.

use bytes::{Bytes, BytesMut};

use crate::config::Config;
use crate::parse::{self, Limits, Parsed, ProtocolError};

/// Feeds `data` to the request parser as a connection does, and checks what it makes of it.
///
/// With the limits a default server gives every client (no password: authenticated, 512 MB
/// `proto-max-bulk-len`), and with those of a client that has not yet authenticated:
/// - the bytes in one read, and in two reads split at a point derived from the input, give the
///   same requests and end the same way (waiting for the same byte count, or the same protocol
///   error);
/// - every parsed request consumed bytes, and "incomplete" always asks for more than is there
///   (else a connection would spin);
/// - the stricter limits only ever stop earlier, with an "unauthenticated" error: otherwise
///   both limits give the same result.
///
/// Each request, encoded again as a RESP array, parses back to itself. Never panics unless one
/// of these fails.
pub fn resp(data: &[u8]) {
    let max_bulk = i64::try_from(Config::default().proto_max_bulk_len).unwrap_or(i64::MAX);
    let open = Limits {
        max_bulk,
        authenticated: true,
    };
    let guarded = Limits {
        authenticated: false,
        ..open
    };
    let split = split_point(data);
    let mut outcomes = Vec::new();
    for limits in [open, guarded] {
        let whole = feed(limits, &[data]);
        let pieces = feed(limits, &[&data[..split], &data[split..]]);
        assert_eq!(
            whole.requests, pieces.requests,
            "requests differ when split at {split}"
        );
        if !whole.end.depends_on_arrival() && !pieces.end.depends_on_arrival() {
            assert_eq!(
                whole.end, pieces.end,
                "outcome differs when split at {split}"
            );
        }
        outcomes.push(whole);
    }
    let (open_run, guarded_run) = (&outcomes[0], &outcomes[1]);
    assert!(
        open_run.requests.starts_with(&guarded_run.requests),
        "the unauthenticated limits parsed requests the open ones did not"
    );
    if !matches!(&guarded_run.end, End::Error(e) if e.starts_with("unauthenticated")) {
        assert_eq!(
            (&open_run.requests, &open_run.end),
            (&guarded_run.requests, &guarded_run.end),
            "the unauthenticated limits changed more than their own checks"
        );
    }
    for args in &open_run.requests {
        let mut buf = encode(args);
        let parsed = parse::parse(&mut buf, open);
        assert_eq!(
            parsed,
            Ok(Parsed::Request(args.clone())),
            "a re-encoded request"
        );
        assert!(buf.is_empty(), "a re-encoded request left bytes behind");
    }
}

/// A split point in `0..=data.len()`: an FNV-1a hash of the input, so every point is reachable.
fn split_point(data: &[u8]) -> usize {
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % (data.len() as u64 + 1)) as usize
}

/// How a run of the parser ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Waiting for the buffer to hold this many bytes.
    Waiting(usize),
    /// A protocol error, with its message.
    Error(String),
}

impl End {
    /// Errors that, as in Redis, depend on how much of a line has arrived: a count line with
    /// no end yet in over 64 KiB is refused as too big, but if its end has arrived the same
    /// line is refused as not a number (or is still waiting for its `\n`). Only inputs over
    /// 64 KiB reach them.
    fn depends_on_arrival(&self) -> bool {
        matches!(self, End::Error(e) if e.starts_with("too big"))
    }
}

/// What the parser made of the bytes.
#[derive(Debug)]
struct Outcome {
    requests: Vec<Vec<Bytes>>,
    end: End,
}

/// Appends each chunk to the read buffer in turn, parsing all complete requests after each,
/// as `Connection::process` does.
fn feed(limits: Limits, chunks: &[&[u8]]) -> Outcome {
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    let mut end = End::Waiting(1);
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match parse::parse(&mut buf, limits) {
                Ok(Parsed::Request(args)) => {
                    assert!(buf.len() < before, "a request consumed no bytes");
                    requests.push(args);
                }
                Ok(Parsed::Incomplete(need)) => {
                    assert!(
                        need > buf.len(),
                        "incomplete, needing {need} bytes with {} there",
                        buf.len()
                    );
                    end = End::Waiting(need);
                    break;
                }
                Err(ProtocolError(message)) => {
                    return Outcome {
                        requests,
                        end: End::Error(message),
                    };
                }
            }
        }
    }
    Outcome { requests, end }
}

/// `args` as a RESP array of bulk strings.
fn encode(args: &[Bytes]) -> BytesMut {
    let mut out = BytesMut::new();
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

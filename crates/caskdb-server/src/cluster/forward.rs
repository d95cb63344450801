//! A follower's link to the leader on behalf of one client connection: the client's commands
//! go over it as they came and the leader's replies come back byte for byte. The link carries
//! the connection's state the leader needs — its protocol (HELLO), database (SELECT), the
//! group's password (AUTH) — and keeps the leader-side state a client builds (MULTI, WATCH) on
//! the one leader connection; a blocking command blocks there.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use caskdb_raft::NodeId;

/// The request that marks a connection as a follower's link: such a connection never
/// forwards further (two nodes with different views of the leader would pass a command back
/// and forth), it answers `-CLUSTERDOWN` instead.
pub const LINK_HELLO: &str = "CASKDB.LINK";

/// The error a link connection answers on a node that does not lead.
pub const NOT_LEADER: &str = "CLUSTERDOWN not the leader, not executed";

/// Largest reply relayed (the leader's own output limits apply before this).
const MAX_REPLY: usize = 1 << 30;

/// One client's connection to the leader.
pub struct Link {
    pub leader: NodeId,
    stream: TcpStream,
    buf: BytesMut,
    resp3: bool,
    db: u8,
    /// Inside a MULTI opened through this link: everything goes to the leader until EXEC or
    /// DISCARD.
    pub in_multi: bool,
}

/// What went wrong on a link; the command's outcome is unknown unless `sent` is false.
#[derive(Debug)]
pub struct LinkError {
    pub sent: bool,
    pub why: String,
}

impl Link {
    /// Connects to the leader `leader` at `addr` and sets the connection up.
    pub async fn connect(
        leader: NodeId,
        addr: &str,
        password: Option<&str>,
        timeout: Duration,
    ) -> Result<Link, LinkError> {
        let not_sent = |why: String| LinkError { sent: false, why };
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| not_sent(format!("connecting to the leader at {addr} timed out")))?
            .map_err(|e| not_sent(format!("connecting to the leader at {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let mut link = Link {
            leader,
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
            resp3: false,
            db: 0,
            in_multi: false,
        };
        if let Some(p) = password {
            link.setup(&[b"AUTH", p.as_bytes()], timeout).await?;
        }
        link.setup(&[LINK_HELLO.as_bytes()], timeout).await?;
        Ok(link)
    }

    /// Sends a set-up request and checks its reply is not an error.
    async fn setup(&mut self, args: &[&[u8]], timeout: Duration) -> Result<(), LinkError> {
        let reply = self
            .round_trip(args, Some(timeout))
            .await
            .map_err(|e| LinkError {
                sent: false,
                why: e.why,
            })?;
        if reply.first() == Some(&b'-') {
            return Err(LinkError {
                sent: false,
                why: format!(
                    "the leader refused {}: {}",
                    String::from_utf8_lossy(args[0]),
                    String::from_utf8_lossy(&reply[1..]).trim_end()
                ),
            });
        }
        Ok(())
    }

    /// Forwards one request, first matching the connection's protocol and database; returns
    /// the leader's reply as it came. `timeout`: `None` for a command that may block.
    pub async fn forward(
        &mut self,
        args: &[Bytes],
        resp3: bool,
        db: u8,
        timeout: Option<Duration>,
    ) -> Result<Bytes, LinkError> {
        let setup_timeout = timeout.unwrap_or(Duration::from_secs(10));
        if resp3 != self.resp3 {
            let v: &[u8] = if resp3 { b"3" } else { b"2" };
            self.setup(&[b"HELLO", v], setup_timeout).await?;
            self.resp3 = resp3;
        }
        if db != self.db {
            let n = db.to_string();
            self.setup(&[b"SELECT", n.as_bytes()], setup_timeout)
                .await?;
            self.db = db;
        }
        let parts: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        let reply = self.round_trip(&parts, timeout).await?;
        // The client's own database and protocol changes are the follower's to track; they
        // are answered locally, so only MULTI's bracket needs following here.
        let name = args.first().map(|a| a.to_ascii_lowercase());
        match name.as_deref() {
            Some(b"multi") if reply.first() == Some(&b'+') => self.in_multi = true,
            Some(b"exec" | b"discard") => self.in_multi = false,
            _ => {}
        }
        Ok(reply)
    }

    async fn round_trip(
        &mut self,
        args: &[&[u8]],
        timeout: Option<Duration>,
    ) -> Result<Bytes, LinkError> {
        let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        let exchange = async {
            self.stream.write_all(&out).await.map_err(|e| LinkError {
                sent: false,
                why: format!("sending to the leader: {e}"),
            })?;
            loop {
                match reply_len(&self.buf) {
                    Ok(Some(n)) => return Ok(self.buf.split_to(n).freeze()),
                    Ok(None) => {}
                    Err(why) => {
                        return Err(LinkError {
                            sent: true,
                            why: format!("the leader's reply: {why}"),
                        });
                    }
                }
                if self.buf.len() > MAX_REPLY {
                    return Err(LinkError {
                        sent: true,
                        why: "the leader's reply is too large to relay".into(),
                    });
                }
                self.buf.reserve(16 * 1024);
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) => {
                        return Err(LinkError {
                            sent: true,
                            why: "the leader closed the connection".into(),
                        });
                    }
                    Ok(_) => {}
                    Err(e) => {
                        return Err(LinkError {
                            sent: true,
                            why: format!("reading from the leader: {e}"),
                        });
                    }
                }
            }
        };
        match timeout {
            None => exchange.await,
            Some(t) => tokio::time::timeout(t, exchange).await.unwrap_or_else(|_| {
                Err(LinkError {
                    sent: true,
                    why: "the leader did not answer in time".into(),
                })
            }),
        }
    }
}

/// The length of the first complete RESP2/RESP3 reply in `buf`: `Ok(None)` if it is not all
/// there yet.
///
/// # Errors
/// A type byte RESP does not have, or a bad length.
pub fn reply_len(buf: &[u8]) -> Result<Option<usize>, String> {
    let mut at = 0;
    match skip(buf, &mut at, 0)? {
        true => Ok(Some(at)),
        false => Ok(None),
    }
}

/// Moves `at` past one reply; `false` if incomplete.
fn skip(buf: &[u8], at: &mut usize, depth: usize) -> Result<bool, String> {
    if depth > 64 {
        return Err("nested too deeply".into());
    }
    let Some(line_end) = buf[*at..].windows(2).position(|w| w == b"\r\n") else {
        return Ok(false);
    };
    let line = &buf[*at..*at + line_end];
    let Some((&kind, rest)) = line.split_first() else {
        return Err("an empty line".into());
    };
    *at += line_end + 2;
    let count = || -> Result<i64, String> {
        std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad length '{}'", String::from_utf8_lossy(rest)))
    };
    match kind {
        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => Ok(true),
        b'$' | b'!' | b'=' => {
            let n = count()?;
            if n < 0 {
                return Ok(true);
            }
            let end = *at + n as usize + 2;
            if buf.len() < end {
                return Ok(false);
            }
            *at = end;
            Ok(true)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = count()?;
            if n < 0 {
                return Ok(true);
            }
            let items = if matches!(kind, b'%' | b'|') {
                n * 2
            } else {
                n
            };
            for _ in 0..items {
                if !skip(buf, at, depth + 1)? {
                    return Ok(false);
                }
            }
            // An attribute comes before the reply it annotates.
            if kind == b'|' {
                return skip(buf, at, depth + 1);
            }
            Ok(true)
        }
        other => Err(format!("unknown type byte {other:#04x}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
    use super::reply_len;

    #[test]
    fn reply_lengths() {
        assert_eq!(reply_len(b"+OK\r\n").unwrap(), Some(5));
        assert_eq!(reply_len(b"+OK\r").unwrap(), None);
        assert_eq!(reply_len(b"$3\r\nabc\r\n+x").unwrap(), Some(9));
        assert_eq!(reply_len(b"$3\r\nab").unwrap(), None);
        assert_eq!(reply_len(b"$-1\r\n").unwrap(), Some(5));
        assert_eq!(reply_len(b"*2\r\n:1\r\n$1\r\na\r\n").unwrap(), Some(15));
        assert_eq!(reply_len(b"*2\r\n:1\r\n").unwrap(), None);
        assert_eq!(reply_len(b"%1\r\n+a\r\n:1\r\n").unwrap(), Some(12));
        assert_eq!(reply_len(b"|1\r\n+a\r\n:1\r\n+r\r\n").unwrap(), Some(16));
        assert!(reply_len(b"?x\r\n").is_err());
    }
}

//! The part of a reply not yet in the write buffer: encoded bytes, and the large values in it
//! ([`Frame::Stored`](crate::frame::Frame::Stored)) still in their data files, read piece by
//! piece as the client takes the reply. So a reply of any size holds about [`STREAM_AT`] bytes
//! of memory, not its size.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use caskdb::{Chunks, ValueRef};

use crate::frame::{Out, put_bulk, put_len};

/// While a reply is streamed, the write buffer is filled to this many bytes per write.
pub(crate) const STREAM_AT: usize = 256 * 1024;

/// What is queued behind the write buffer, in order.
#[derive(Default)]
pub(crate) struct Outbox {
    queue: VecDeque<Piece>,
    /// Encoded bytes after the last queued value.
    tail: BytesMut,
    /// Bytes queued, in memory or not.
    unsent: u64,
    /// When the oldest value queued was located.
    since: Option<Instant>,
}

enum Piece {
    Encoded(Bytes),
    Value(Chunks),
}

impl Outbox {
    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.tail.is_empty()
    }

    /// Bytes queued, whether read yet or not: what counts against the output buffer limit.
    pub fn unsent(&self) -> u64 {
        self.unsent
    }

    /// When the oldest value still queued was located.
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// Whether a queued value lies in a file a merge has removed.
    pub fn holds_retired(&self) -> bool {
        self.queue.iter().any(|p| match p {
            Piece::Value(chunks) => chunks.value().is_retired(),
            Piece::Encoded(_) => false,
        })
    }

    /// Moves queued bytes into `wbuf` until it holds [`STREAM_AT`] bytes or nothing is left
    /// queued.
    ///
    /// # Errors
    /// A value that can no longer be read, or fails its check: the reply cannot be finished.
    pub fn fill(&mut self, wbuf: &mut BytesMut) -> caskdb::Result<()> {
        while wbuf.len() < STREAM_AT {
            let Some(front) = self.queue.front_mut() else {
                self.unsent -= self.tail.len() as u64;
                wbuf.put(self.tail.split());
                self.since = None;
                return Ok(());
            };
            match front {
                Piece::Encoded(b) => {
                    self.unsent -= b.len() as u64;
                    wbuf.put_slice(b);
                    self.queue.pop_front();
                }
                Piece::Value(chunks) => {
                    // Straight from the file into the write buffer.
                    let before = wbuf.len();
                    let more = chunks.read_into(wbuf, STREAM_AT - before)?;
                    self.unsent -= (wbuf.len() - before) as u64;
                    if !more {
                        self.queue.pop_front();
                    }
                }
            }
        }
        Ok(())
    }
}

/// Encodes into the write buffer while nothing is queued, else behind what is queued; a
/// stored value that is not in memory is queued, to be read as it is sent.
pub(crate) struct StreamOut<'a> {
    pub wbuf: &'a mut BytesMut,
    pub outbox: &'a mut Outbox,
}

impl Out for StreamOut<'_> {
    fn raw(&mut self, b: &[u8]) {
        if self.outbox.queue.is_empty() {
            self.wbuf.put_slice(b);
        } else {
            self.outbox.tail.put_slice(b);
            self.outbox.unsent += b.len() as u64;
        }
    }

    fn stored(&mut self, v: &ValueRef) {
        if v.is_in_memory() {
            // In memory: read() cannot fail.
            if let Ok(b) = v.read() {
                put_bulk(self, &b);
            }
            return;
        }
        put_len(self, b'$', v.len() as usize);
        let o = &mut *self.outbox;
        if !o.tail.is_empty() {
            o.queue.push_back(Piece::Encoded(o.tail.split().freeze()));
        }
        o.queue.push_back(Piece::Value(v.chunks(STREAM_AT)));
        o.unsent += v.len();
        o.since.get_or_insert_with(Instant::now);
        self.raw(b"\r\n");
    }
}

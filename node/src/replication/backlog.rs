//! The replication backlog: the last `repl-backlog-size` bytes of the replication stream,
//! addressed by replication offset, so a replica that lost its link can continue from where
//! it stopped (partial resync) instead of loading a full snapshot again.
//!
//! Guarantee: [`Backlog::read_from`] returns exactly the stream bytes starting at the asked
//! offset, or says the offset is no longer (or not yet) held; it never returns a gap.

use bytes::Bytes;
use std::collections::VecDeque;

/// A ring of stream bytes. Offsets follow Redis: the first byte ever written to the stream
/// has offset 1, and `master_repl_offset` is the offset of the last byte written.
#[derive(Debug)]
pub struct Backlog {
    buf: VecDeque<u8>,
    capacity: usize,
    /// Offset of the first byte held (`repl_backlog_first_byte_offset`).
    first_offset: u64,
}

impl Backlog {
    /// An empty backlog whose next byte will have offset `master_repl_offset + 1`.
    pub fn new(capacity: usize, master_repl_offset: u64) -> Backlog {
        Backlog {
            buf: VecDeque::with_capacity(capacity.min(1 << 20)),
            capacity: capacity.max(1),
            first_offset: master_repl_offset + 1,
        }
    }

    /// Appends stream bytes, dropping the oldest beyond the capacity.
    pub fn append(&mut self, data: &[u8]) {
        if data.len() >= self.capacity {
            let skip = data.len() - self.capacity;
            self.first_offset += (self.buf.len() + skip) as u64;
            self.buf.clear();
            self.buf.extend(&data[skip..]);
            return;
        }
        let over = (self.buf.len() + data.len()).saturating_sub(self.capacity);
        if over > 0 {
            self.buf.drain(..over);
            self.first_offset += over as u64;
        }
        self.buf.extend(data);
    }

    /// `repl_backlog_first_byte_offset`.
    pub fn first_offset(&self) -> u64 {
        self.first_offset
    }

    /// `repl_backlog_histlen`.
    pub fn histlen(&self) -> u64 {
        self.buf.len() as u64
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the size (CONFIG SET repl-backlog-size), keeping the newest bytes.
    pub fn resize(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        let over = self.buf.len().saturating_sub(self.capacity);
        if over > 0 {
            self.buf.drain(..over);
            self.first_offset += over as u64;
        }
    }

    /// True when a replica asking to continue at `offset` (the offset of the next byte it
    /// needs) can be served from here: Redis's `backlog.offset <= offset <= offset+histlen`.
    pub fn can_serve(&self, offset: u64) -> bool {
        offset >= self.first_offset && offset <= self.first_offset + self.histlen()
    }

    /// Up to `max` bytes starting at stream offset `offset`; `None` if that offset is not
    /// held. An empty result means the caller is up to date.
    pub fn read_from(&self, offset: u64, max: usize) -> Option<Bytes> {
        if !self.can_serve(offset) {
            return None;
        }
        let start = (offset - self.first_offset) as usize;
        let end = self.buf.len().min(start + max);
        let (a, b) = self.buf.as_slices();
        let mut out = Vec::with_capacity(end - start);
        if start < a.len() {
            out.extend_from_slice(&a[start..end.min(a.len())]);
            if end > a.len() {
                out.extend_from_slice(&b[..end - a.len()]);
            }
        } else {
            out.extend_from_slice(&b[start - a.len()..end - a.len()]);
        }
        Some(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_exact_ranges_and_forgets_old_bytes() {
        let mut b = Backlog::new(8, 100);
        assert_eq!(b.first_offset(), 101);
        b.append(b"abcdef");
        assert_eq!(&b.read_from(101, 100).unwrap()[..], b"abcdef");
        assert_eq!(&b.read_from(103, 2).unwrap()[..], b"cd");
        assert_eq!(&b.read_from(107, 10).unwrap()[..], b"");
        assert!(b.read_from(108, 1).is_none());
        b.append(b"ghij");
        // 10 bytes written, 8 kept: "cdefghij" from offset 103.
        assert_eq!(b.first_offset(), 103);
        assert!(b.read_from(102, 1).is_none());
        assert_eq!(&b.read_from(103, 100).unwrap()[..], b"cdefghij");
        b.append(b"0123456789");
        assert_eq!(b.first_offset(), 113);
        assert_eq!(&b.read_from(113, 100).unwrap()[..], b"23456789");
    }

    #[test]
    fn resize_keeps_newest() {
        let mut b = Backlog::new(8, 0);
        b.append(b"abcdefgh");
        b.resize(3);
        assert_eq!(b.first_offset(), 6);
        assert_eq!(&b.read_from(6, 10).unwrap()[..], b"fgh");
    }
}

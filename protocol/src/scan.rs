//! Reply boundaries in a RESP byte stream, found without decoding values or allocating per
//! reply: the proxy relays replies as the bytes the backend sent (RESP2 or RESP3), and the
//! [`crate::client`] checks a reply is whole and not nested too deep before decoding it. The
//! scanner is resumable, so a huge reply arriving in many reads is scanned once (never
//! quadratic), it rejects anything that is not RESP, and its counts cannot overflow: each
//! aggregate level keeps its own count, and the nesting depth has a limit.

/// Scan state of the reply being received: where scanning stopped and, per open aggregate,
/// how many values it still owes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanner {
    /// Offset (from the start of the reply) up to which bytes have been scanned.
    pos: usize,
    /// The open aggregates, innermost last; empty between replies (the reply itself is owed).
    levels: Vec<Level>,
    /// Deepest nesting accepted (the reply itself is depth 0).
    max_depth: usize,
}

/// One open aggregate: the values it still owes, and whether it is an attribute (whose
/// completion owes its parent nothing: the value it annotates follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Level {
    owed: u64,
    attribute: bool,
}

/// The peer sent bytes that are not RESP, or RESP this scanner refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RESP: {0}")]
pub struct BadReply(pub &'static str);

/// Longest header line accepted (a length or a simple string / error line).
const MAX_LINE: usize = 1 << 20;

/// Nesting accepted by [`Scanner::default`]: no Redis reply comes near it, but it is far
/// from what a recursive decoder's stack could take.
pub const MAX_DEPTH: usize = 64;

impl Default for Scanner {
    fn default() -> Self {
        Scanner::with_max_depth(MAX_DEPTH)
    }
}

impl Scanner {
    /// A scanner accepting replies nested up to `max_depth` aggregates deep (a relay that
    /// never recurses can take any depth its peer sends; its memory is then 16 bytes a level,
    /// bounded by the reply's own size).
    pub fn with_max_depth(max_depth: usize) -> Self {
        Scanner {
            pos: 0,
            levels: Vec::new(),
            max_depth,
        }
    }

    /// Continues scanning `buf` (which starts at the beginning of the reply). Returns the
    /// reply's total length once it is complete; `Ok(None)` means more bytes are needed.
    /// After `Some` or an error, the scanner is reset for the next reply.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, BadReply> {
        let r = self.scan_inner(buf);
        if !matches!(r, Ok(None)) {
            self.pos = 0;
            self.levels.clear();
        }
        r
    }

    fn scan_inner(&mut self, buf: &[u8]) -> Result<Option<usize>, BadReply> {
        loop {
            let Some(&kind) = buf.get(self.pos) else {
                return Ok(None);
            };
            let rest = &buf[self.pos + 1..];
            let Some(nl) = memchr_nl(rest) else {
                if rest.len() > MAX_LINE {
                    return Err(BadReply("header line too long"));
                }
                return Ok(None);
            };
            if nl == 0 || rest[nl - 1] != b'\r' {
                return Err(BadReply("line not terminated by CRLF"));
            }
            let line = &rest[..nl - 1];
            let after = self.pos + 1 + nl + 1;
            let done = match kind {
                // Simple values: status, error, integer, null, double, boolean, big number.
                b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {
                    self.pos = after;
                    self.value_done()
                }
                // Bulk-like: bulk string, bulk error, verbatim string.
                b'$' | b'!' | b'=' => {
                    let len = parse_len(line)?;
                    if len < 0 {
                        self.pos = after;
                    } else {
                        let end = after
                            .checked_add(len as usize + 2)
                            .ok_or(BadReply("bulk length overflows"))?;
                        if buf.len() < end {
                            return Ok(None);
                        }
                        if &buf[end - 2..end] != b"\r\n" {
                            return Err(BadReply("bulk string not terminated by CRLF"));
                        }
                        self.pos = end;
                    }
                    self.value_done()
                }
                // Aggregates: array, set, push (n values); map (n pairs); attribute (n pairs,
                // then the value it annotates).
                b'*' | b'~' | b'>' | b'%' | b'|' => {
                    let n = parse_len(line)?;
                    self.pos = after;
                    let owed = if kind == b'%' || kind == b'|' {
                        2 * n
                    } else {
                        n
                    };
                    if owed > 0 {
                        if self.levels.len() >= self.max_depth {
                            return Err(BadReply("reply nested too deep"));
                        }
                        self.levels.push(Level {
                            owed: owed as u64,
                            attribute: kind == b'|',
                        });
                        false
                    } else if kind == b'|' {
                        // An empty attribute: the annotated value is still to come.
                        false
                    } else {
                        self.value_done()
                    }
                }
                _ => return Err(BadReply("unknown type byte")),
            };
            if done {
                return Ok(Some(self.pos));
            }
        }
    }

    /// Counts one complete value against the innermost open aggregate, closing every
    /// aggregate it completes; true when the whole reply is complete.
    fn value_done(&mut self) -> bool {
        while let Some(top) = self.levels.last_mut() {
            top.owed -= 1;
            if top.owed > 0 {
                return false;
            }
            let attribute = top.attribute;
            self.levels.pop();
            if attribute {
                // The attribute is complete; the value it annotates is still owed.
                return false;
            }
        }
        true
    }
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

fn parse_len(s: &[u8]) -> Result<i64, BadReply> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(BadReply("invalid length"));
    }
    let v = digits
        .iter()
        .fold(0i64, |acc, &c| acc * 10 + (c - b'0') as i64);
    if neg {
        if v != 1 {
            return Err(BadReply("invalid negative length"));
        }
        return Ok(-1);
    }
    if v > (1 << 40) {
        return Err(BadReply("length too large"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(b: &[u8]) -> Option<usize> {
        Scanner::default().scan(b).unwrap()
    }

    #[test]
    fn finds_ends_of_resp2_and_resp3_replies() {
        assert_eq!(whole(b"+OK\r\n"), Some(5));
        assert_eq!(whole(b"+OK\r\n:1\r\n"), Some(5));
        assert_eq!(whole(b"$3\r\nabc\r\n"), Some(9));
        assert_eq!(whole(b"$-1\r\n"), Some(5));
        assert_eq!(whole(b"*-1\r\n"), Some(5));
        assert_eq!(whole(b"*2\r\n$1\r\na\r\n:5\r\n"), Some(15));
        assert_eq!(whole(b"*0\r\n"), Some(4));
        assert_eq!(whole(b"%1\r\n+a\r\n*1\r\n_\r\n"), Some(15));
        assert_eq!(whole(b">2\r\n+m\r\n,1.5\r\n"), Some(14));
        assert_eq!(whole(b"|1\r\n+k\r\n+v\r\n#t\r\n"), Some(16));
        assert_eq!(whole(b"=8\r\ntxt:abcd\r\n"), Some(14));
        assert_eq!(whole(b"*2\r\n$1\r\na\r\n"), None);
        assert_eq!(whole(b"$3\r\nab"), None);
    }

    #[test]
    fn resumes_where_it_stopped() {
        let full = b"*3\r\n$5\r\nhello\r\n*2\r\n:1\r\n:2\r\n+end\r\n+next\r\n";
        let mut s = Scanner::default();
        let mut got = None;
        for cut in 1..=full.len() {
            if let Some(n) = s.scan(&full[..cut]).unwrap() {
                got = Some((cut, n));
                break;
            }
        }
        assert_eq!(got, Some((33, 33)));
        assert_eq!(s, Scanner::default());
    }

    #[test]
    fn nesting_has_a_limit_and_counts_never_overflow() {
        let nested = |depth: usize| {
            let mut b = b"*1\r\n".repeat(depth);
            b.extend_from_slice(b":1\r\n");
            b
        };
        assert_eq!(whole(&nested(MAX_DEPTH)), Some(MAX_DEPTH * 4 + 4));
        let err = Scanner::default().scan(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(err, BadReply("reply nested too deep"));
        let deep = nested(100_000);
        assert_eq!(
            Scanner::with_max_depth(usize::MAX).scan(&deep).unwrap(),
            Some(deep.len())
        );
        // Many huge aggregates, each at its own level: no sum of counts to overflow.
        let huge = b"*1099511627776\r\n".repeat(20);
        assert_eq!(
            Scanner::with_max_depth(usize::MAX).scan(&huge).unwrap(),
            None
        );
        // Attributes annotate the value after them, empty ones included.
        assert_eq!(whole(b"|0\r\n:1\r\n"), Some(8));
        assert_eq!(whole(b"*2\r\n|1\r\n+k\r\n+v\r\n:1\r\n:2\r\n"), Some(24));
        // An error resets the scanner for a next reply.
        let mut s = Scanner::default();
        assert!(s.scan(b"?\r\n").is_err());
        assert_eq!(s.scan(b"+OK\r\n").unwrap(), Some(5));
    }

    #[test]
    fn rejects_garbage() {
        assert!(Scanner::default().scan(b"?x\r\n").is_err());
        assert!(Scanner::default().scan(b"$x\r\n").is_err());
        assert!(Scanner::default().scan(b"$1\r\nab\r\n").is_err());
        assert!(Scanner::default().scan(b"+OK\n").is_err());
    }
}

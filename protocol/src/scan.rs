//! Reply boundaries in a backend's byte stream, found without decoding values or allocating:
//! the proxy relays replies as the bytes the backend sent (RESP2 or RESP3), so all it needs is
//! where each reply ends. The scanner is resumable, so a huge reply arriving in many reads is
//! scanned once (never quadratic), and it rejects anything that is not RESP.

/// Scan state of the reply being received: where scanning stopped and how many values are
/// still owed to the current reply (aggregates add their element counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanner {
    /// Offset (from the start of the reply) up to which bytes have been scanned.
    pos: usize,
    /// Values still to read before the reply is complete.
    owed: u64,
}

/// The backend sent bytes that are not RESP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RESP from backend: {0}")]
pub struct BadReply(pub &'static str);

/// Longest header line accepted (a length or a simple string / error line).
const MAX_LINE: usize = 1 << 20;

impl Default for Scanner {
    fn default() -> Self {
        Scanner { pos: 0, owed: 1 }
    }
}

impl Scanner {
    /// Continues scanning `buf` (which starts at the beginning of the reply). Returns the
    /// reply's total length once it is complete; `Ok(None)` means more bytes are needed.
    /// After `Some`, the scanner is reset for the next reply.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, BadReply> {
        while self.owed > 0 {
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
            match kind {
                // Simple values: status, error, integer, null, double, boolean, big number.
                b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {
                    self.pos = after;
                    self.owed -= 1;
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
                    self.owed -= 1;
                }
                // Aggregates: array, set, push.
                b'*' | b'~' | b'>' => {
                    let n = parse_len(line)?;
                    self.pos = after;
                    self.owed -= 1;
                    if n > 0 {
                        self.owed += n as u64;
                    }
                }
                // Map: n key/value pairs.
                b'%' => {
                    let n = parse_len(line)?;
                    self.pos = after;
                    self.owed -= 1;
                    if n > 0 {
                        self.owed += 2 * n as u64;
                    }
                }
                // Attribute: n pairs, then the value it annotates (which is still owed).
                b'|' => {
                    let n = parse_len(line)?;
                    self.pos = after;
                    if n > 0 {
                        self.owed += 2 * n as u64;
                    }
                }
                _ => return Err(BadReply("unknown type byte")),
            }
        }
        let len = self.pos;
        *self = Scanner::default();
        Ok(Some(len))
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
    fn rejects_garbage() {
        assert!(Scanner::default().scan(b"?x\r\n").is_err());
        assert!(Scanner::default().scan(b"$x\r\n").is_err());
        assert!(Scanner::default().scan(b"$1\r\nab\r\n").is_err());
        assert!(Scanner::default().scan(b"+OK\n").is_err());
    }
}

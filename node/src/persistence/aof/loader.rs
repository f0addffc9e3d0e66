//! Reading AOF files at start-up: the base (an RDB preamble, or commands) and the incr files,
//! command by command, each replayed through the normal command path. A file that ends in
//! the middle of a command (or of a MULTI block) is reported as truncated at the end of the
//! last complete command; anything else that is not a well-formed command stops the load
//! with the file name and byte offset. Nothing here writes to disk.

use bytes::Bytes;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Longest `*<argc>` / `$<len>` line (Redis's `AOF_ANNOTATION_LINE_MAX_LEN`).
const MAX_LINE: u64 = 1024;
/// Read buffer of the loader.
const READ_BUF: usize = 1 << 20;

/// How one file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every command was read.
    Complete,
    /// The file is empty.
    Empty,
    /// The file ends inside a command or a MULTI block; everything before `valid_up_to`
    /// was applied.
    Truncated { valid_up_to: u64 },
}

/// Why the AOF could not be loaded. Every variant names the file; format errors the offset.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the append only file {file} listed in the manifest doesn't exist")]
    Missing { file: PathBuf },
    #[error("can't read the append only file {file}: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("bad file format reading the append only file {file} at byte offset {offset}: {what} (make a backup of your AOF, then use redis-check-aof --fix <manifest>)")]
    Format {
        file: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("unexpected end of file reading the append only file {file}: the last complete command ends at byte offset {valid_up_to}{hint}")]
    Truncated {
        file: PathBuf,
        valid_up_to: u64,
        hint: &'static str,
    },
    #[error("error reading the RDB base of the append only file {file}: {message}")]
    Rdb { file: PathBuf, message: String },
    #[error(transparent)]
    Manifest(#[from] super::manifest::ManifestError),
    #[error("{0}")]
    Other(String),
}

/// What replaying one command can report.
pub enum ApplyError {
    /// Not a command Tandem knows: the file is not loadable.
    Unknown(String),
    /// A known command with the wrong number of arguments.
    Arity(String),
}

/// The reader of one file: buffered, counting its byte offset.
struct Input {
    r: BufReader<File>,
    pos: u64,
    len: u64,
}

/// Reading a command stopped.
enum Stop {
    /// The file ended inside a command (a short read).
    Short,
    /// Not the AOF format, at this offset.
    Format(u64, String),
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Stop::Short
        } else {
            Stop::Io(e)
        }
    }
}

impl Input {
    /// Reads one line (up to `\n`, at most [`MAX_LINE`] bytes). `Ok(None)` on a clean end
    /// of file before any byte.
    fn line(&mut self, buf: &mut Vec<u8>) -> Result<Option<()>, Stop> {
        buf.clear();
        let at = self.pos;
        let n = (&mut self.r).take(MAX_LINE + 1).read_until(b'\n', buf)?;
        self.pos += n as u64;
        if n == 0 {
            return Ok(None);
        }
        if buf.last() != Some(&b'\n') {
            if n as u64 > MAX_LINE {
                return Err(Stop::Format(at, "line too long".into()));
            }
            return Err(Stop::Short);
        }
        Ok(Some(()))
    }

    /// The next command, `Ok(None)` at a clean end of file.
    fn command(&mut self, line: &mut Vec<u8>) -> Result<Option<Vec<Bytes>>, Stop> {
        loop {
            let at = self.pos;
            if self.line(line)?.is_none() {
                return Ok(None);
            }
            if line.first() == Some(&b'#') {
                continue; // annotation (e.g. `#TS:...`)
            }
            if line.first() != Some(&b'*') {
                return Err(Stop::Format(
                    at,
                    format!("expected '*', found {}", shown(line)),
                ));
            }
            let argc = number(&line[1..]).filter(|&n| n >= 1).ok_or_else(|| {
                Stop::Format(at, format!("invalid argument count {}", shown(line)))
            })?;
            let mut args = Vec::with_capacity(argc.min(1024) as usize);
            for _ in 0..argc {
                let at = self.pos;
                if self.line(line)?.is_none() {
                    return Err(Stop::Short);
                }
                if line.first() != Some(&b'$') {
                    return Err(Stop::Format(
                        at,
                        format!("expected '$', found {}", shown(line)),
                    ));
                }
                let len = number(&line[1..]).ok_or_else(|| {
                    Stop::Format(at, format!("invalid bulk length {}", shown(line)))
                })?;
                // A length past the end of the file is a short read, never a huge allocation.
                if self.pos.saturating_add(len).saturating_add(2) > self.len {
                    return Err(Stop::Short);
                }
                let mut v = vec![0u8; len as usize];
                self.r.read_exact(&mut v)?;
                self.pos += len;
                let crlf_at = self.pos;
                let mut crlf = [0u8; 2];
                self.r.read_exact(&mut crlf)?;
                self.pos += 2;
                if &crlf != b"\r\n" {
                    return Err(Stop::Format(
                        crlf_at,
                        "expected CRLF after a bulk string".into(),
                    ));
                }
                args.push(Bytes::from(v));
            }
            return Ok(Some(args));
        }
    }
}

/// `123\r\n` -> 123 (strictly digits, then optional CR, then LF).
fn number(s: &[u8]) -> Option<u64> {
    let s = s.strip_suffix(b"\n")?;
    let s = s.strip_suffix(b"\r").unwrap_or(s);
    if s.is_empty() || s.len() > 18 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn shown(line: &[u8]) -> String {
    let t: Vec<u8> = line.iter().copied().take(32).collect();
    format!("{:?}", String::from_utf8_lossy(&t).trim_end())
}

/// Where a file's contents go (the keyspace, through the command path).
pub trait Replay {
    /// An RDB preamble at the start of `file` (the whole file is given): returns where the
    /// RDB ended (`None`: at the end of the file).
    fn rdb(&mut self, file: &mut File, path: &Path) -> Result<Option<u64>, String>;
    /// One command, in order.
    fn apply(&mut self, args: Vec<Bytes>) -> Result<(), ApplyError>;
    /// Checks a command queued inside MULTI (it runs only once EXEC is read).
    fn known(&self, args: &[Bytes]) -> Result<(), ApplyError>;
}

/// Loads one file: an RDB preamble first if the file starts with `REDIS`, then commands,
/// each given to the replay (MULTI blocks are applied only once their EXEC is read).
/// Returns how the file ended and the number of commands read.
pub fn load_file(path: &Path, to: &mut dyn Replay) -> Result<(Outcome, u64), LoadError> {
    let io_err = |source| LoadError::Io {
        file: path.to_path_buf(),
        source,
    };
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(LoadError::Missing {
                file: path.to_path_buf(),
            })
        }
        Err(e) => return Err(io_err(e)),
    };
    let len = f.metadata().map_err(io_err)?.len();
    if len == 0 {
        return Ok((Outcome::Empty, 0));
    }
    let mut sig = [0u8; 5];
    let is_rdb = f.read_exact(&mut sig).is_ok() && &sig == b"REDIS";
    f.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let mut start = 0;
    if is_rdb {
        match to.rdb(&mut f, path).map_err(|message| LoadError::Rdb {
            file: path.to_path_buf(),
            message,
        })? {
            None => return Ok((Outcome::Complete, 0)),
            Some(end) if end >= len => return Ok((Outcome::Complete, 0)),
            Some(end) => {
                f.seek(SeekFrom::Start(end)).map_err(io_err)?;
                start = end;
            }
        }
    }
    let mut inp = Input {
        r: BufReader::with_capacity(READ_BUF, f),
        pos: start,
        len,
    };
    let mut line = Vec::with_capacity(64);
    let mut valid = start;
    let mut before_multi = start;
    let mut queued: Option<Vec<Vec<Bytes>>> = None;
    let mut commands = 0u64;
    let fail = |offset, what| LoadError::Format {
        file: path.to_path_buf(),
        offset,
        what,
    };
    loop {
        let at = inp.pos;
        match inp.command(&mut line) {
            Ok(Some(args)) => {
                let name = &args[0];
                let r = if name.eq_ignore_ascii_case(b"multi") {
                    before_multi = valid;
                    queued = Some(Vec::new());
                    Ok(())
                } else if name.eq_ignore_ascii_case(b"exec") && queued.is_some() {
                    queued
                        .take()
                        .into_iter()
                        .flatten()
                        .try_for_each(|c| to.apply(c))
                } else if let Some(q) = queued.as_mut() {
                    to.known(&args).map(|()| q.push(args))
                } else {
                    to.apply(args)
                };
                match r {
                    Ok(()) => {}
                    Err(ApplyError::Unknown(n)) => {
                        return Err(fail(at, format!("unknown command '{n}'")))
                    }
                    Err(ApplyError::Arity(n)) => {
                        return Err(fail(
                            at,
                            format!("wrong number of arguments for '{n}' command"),
                        ))
                    }
                }
                commands += 1;
                valid = inp.pos;
            }
            Ok(None) => {
                if queued.is_some() {
                    tracing::warn!(file = %path.display(), "Revert incomplete MULTI/EXEC transaction in AOF file");
                    return Ok((
                        Outcome::Truncated {
                            valid_up_to: before_multi,
                        },
                        commands,
                    ));
                }
                return Ok((Outcome::Complete, commands));
            }
            Err(Stop::Short) => {
                let valid_up_to = if queued.is_some() {
                    before_multi
                } else {
                    valid
                };
                return Ok((Outcome::Truncated { valid_up_to }, commands));
            }
            Err(Stop::Format(offset, what)) => return Err(fail(offset, what)),
            Err(Stop::Io(e)) => return Err(io_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    struct Collect(Vec<Vec<String>>);

    impl Replay for Collect {
        fn rdb(&mut self, _: &mut File, _: &Path) -> Result<Option<u64>, String> {
            Ok(None)
        }
        fn apply(&mut self, args: Vec<Bytes>) -> Result<(), ApplyError> {
            self.known(&args)?;
            self.0.push(
                args.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect(),
            );
            Ok(())
        }
        fn known(&self, args: &[Bytes]) -> Result<(), ApplyError> {
            if args[0].eq_ignore_ascii_case(b"bogus") {
                return Err(ApplyError::Unknown("bogus".into()));
            }
            Ok(())
        }
    }

    type Run = (Result<(Outcome, u64), LoadError>, Vec<Vec<String>>);

    fn run(bytes: &[u8]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.aof");
        std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
        let mut c = Collect(Vec::new());
        let r = load_file(&p, &mut c);
        (r, c.0)
    }

    const SET: &[u8] = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";

    #[test]
    fn reads_commands_and_skips_annotations() {
        let mut b = b"#TS:1700000000\r\n".to_vec();
        b.extend_from_slice(SET);
        b.extend_from_slice(b"*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n");
        let (r, got) = run(&b);
        assert_eq!(r.unwrap(), (Outcome::Complete, 2));
        assert_eq!(got, vec![vec!["SET", "k", "v"], vec!["DEL", "k"]]);
    }

    #[test]
    fn every_cut_of_the_last_command_is_a_truncation() {
        for cut in 1..SET.len() {
            let mut b = SET.to_vec();
            b.extend_from_slice(&SET[..cut]);
            let (r, got) = run(&b);
            assert_eq!(
                r.unwrap().0,
                Outcome::Truncated {
                    valid_up_to: SET.len() as u64
                },
                "cut {cut}"
            );
            assert_eq!(got.len(), 1);
        }
    }

    #[test]
    fn an_unfinished_multi_is_reverted() {
        let mut b = SET.to_vec();
        b.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n");
        b.extend_from_slice(SET);
        let (r, got) = run(&b);
        assert_eq!(
            r.unwrap().0,
            Outcome::Truncated {
                valid_up_to: SET.len() as u64
            }
        );
        assert_eq!(got.len(), 1);
        b.extend_from_slice(b"*1\r\n$4\r\nEXEC\r\n");
        let (r, got) = run(&b);
        assert_eq!(r.unwrap().0, Outcome::Complete);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn corruption_names_the_offset() {
        let mut b = SET.to_vec();
        b.extend_from_slice(b"xx garbage\r\n");
        b.extend_from_slice(SET);
        match run(&b).0 {
            Err(LoadError::Format { offset, .. }) => assert_eq!(offset, SET.len() as u64),
            other => panic!("{other:?}"),
        }
        let mut b = SET.to_vec();
        b.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nkXX$1\r\nv\r\n");
        b.extend_from_slice(SET);
        match run(&b).0 {
            Err(LoadError::Format { offset, .. }) => {
                assert_eq!(offset, SET.len() as u64 + 4 + 9 + 4 + 1)
            }
            other => panic!("{other:?}"),
        }
        let mut b = SET.to_vec();
        b.extend_from_slice(b"*1\r\n$5\r\nbogus\r\n");
        match run(&b).0 {
            Err(e @ LoadError::Format { .. }) => {
                assert!(e.to_string().contains("unknown command 'bogus'"), "{e}");
                assert!(
                    e.to_string().contains(&format!("offset {}", SET.len())),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn huge_lengths_are_short_reads_not_allocations() {
        let mut b = SET.to_vec();
        b.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$999999999999\r\nab");
        assert!(matches!(run(&b).0.unwrap().0, Outcome::Truncated { .. }));
        assert!(matches!(run(b"").0.unwrap().0, Outcome::Empty));
    }
}

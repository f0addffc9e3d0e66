//! The multi-part AOF manifest, in Redis 7's format: one line per file,
//! `file <name> seq <n> type <b|h|i>`, base first, then history, then the incr files in
//! sequence order. Parsing is strict (as Redis's, so a damaged manifest stops start-up
//! with the line it could not read); writing is atomic (temp file, fsync, rename, fsync
//! of the directory).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Longest manifest line Redis accepts.
const MAX_LINE: usize = 1024;

/// The role of one file in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// The snapshot of the last rewrite (`b`).
    Base,
    /// A file made obsolete by a rewrite, waiting to be deleted (`h`).
    History,
    /// Commands after the base, in order (`i`).
    Incr,
}

impl FileKind {
    fn letter(self) -> char {
        match self {
            FileKind::Base => 'b',
            FileKind::History => 'h',
            FileKind::Incr => 'i',
        }
    }
}

/// One line of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AofFile {
    pub name: String,
    pub seq: u64,
    pub kind: FileKind,
}

/// The set of files that make up the AOF.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<AofFile>,
    pub history: Vec<AofFile>,
    pub incr: Vec<AofFile>,
    /// Highest base and incr sequence numbers handed out so far.
    pub base_seq: u64,
    pub incr_seq: u64,
}

/// A manifest that could not be read: which line, and why (Redis's wording).
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read the AOF manifest {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid AOF manifest {path} at line {line} ('{text}'): {reason}")]
    Invalid {
        path: PathBuf,
        line: usize,
        text: String,
        reason: &'static str,
    },
}

impl Manifest {
    /// Name of the manifest file for `appendfilename`.
    pub fn file_name(aof_name: &str) -> String {
        format!("{aof_name}.manifest")
    }

    /// Reads and parses the manifest at `path`.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read(path).map_err(|source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::parse(&text).map_err(|(line, text, reason)| ManifestError::Invalid {
            path: path.to_path_buf(),
            line,
            text,
            reason,
        })
    }

    /// Parses manifest text; an error is (line number, line, reason).
    pub fn parse(text: &[u8]) -> Result<Manifest, (usize, String, &'static str)> {
        let mut m = Manifest::default();
        let mut max_incr = 0u64;
        if text.is_empty() {
            return Err((0, String::new(), "Found an empty AOF manifest"));
        }
        let mut rest = text;
        let mut lineno = 0;
        while !rest.is_empty() {
            lineno += 1;
            let (raw, next, has_nl) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..], true),
                None => (rest, &rest[rest.len()..], false),
            };
            rest = next;
            let shown = String::from_utf8_lossy(raw).into_owned();
            let fail = |reason| Err((lineno, shown.clone(), reason));
            if raw.first() == Some(&b'#') {
                continue;
            }
            if !has_nl || raw.len() > MAX_LINE {
                return fail("The AOF manifest file contains too long line");
            }
            let line = trim(raw);
            if line.is_empty() {
                return fail("Invalid AOF manifest file format");
            }
            let Some(words) = split_args(line) else {
                return fail("Invalid AOF manifest file format");
            };
            if words.len() < 6 || words.len() % 2 == 1 {
                return fail("Invalid AOF manifest file format");
            }
            let (mut name, mut seq, mut kind) = (None, 0u64, None);
            for kv in words.chunks(2) {
                let key = kv[0].to_ascii_lowercase();
                match key.as_slice() {
                    b"file" => {
                        let n = String::from_utf8_lossy(&kv[1]).into_owned();
                        if n.contains('/') || n.is_empty() {
                            return fail("File can't be a path, just a filename");
                        }
                        name = Some(n);
                    }
                    b"seq" => seq = atoll(&kv[1]),
                    b"type" => kind = kv[1].first().copied(),
                    _ => {}
                }
            }
            let (Some(name), Some(kind)) = (name, kind) else {
                return fail("Invalid AOF manifest file format");
            };
            if seq == 0 {
                return fail("Invalid AOF manifest file format");
            }
            match kind {
                b'b' => {
                    if m.base.is_some() {
                        return fail("Found duplicate base file information");
                    }
                    m.base_seq = seq;
                    m.base = Some(AofFile {
                        name,
                        seq,
                        kind: FileKind::Base,
                    });
                }
                b'h' => m.history.push(AofFile {
                    name,
                    seq,
                    kind: FileKind::History,
                }),
                b'i' => {
                    if seq <= max_incr {
                        return fail("Found a non-monotonic sequence number");
                    }
                    max_incr = seq;
                    m.incr_seq = seq;
                    m.incr.push(AofFile {
                        name,
                        seq,
                        kind: FileKind::Incr,
                    });
                }
                _ => return fail("Unknown AOF file type"),
            }
        }
        Ok(m)
    }

    /// The manifest as Redis writes it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in self.base.iter().chain(&self.history).chain(&self.incr) {
            let _ = writeln!(
                out,
                "file {} seq {} type {}",
                repr_if_needed(&f.name),
                f.seq,
                f.kind.letter()
            );
        }
        out
    }

    /// True when the manifest lists no file to load.
    pub fn is_empty(&self) -> bool {
        self.base.is_none() && self.incr.is_empty()
    }

    /// Adds a new incr file (`<aof>.<seq>.incr.aof`) and returns its name.
    pub fn new_incr(&mut self, aof_name: &str) -> String {
        self.incr_seq += 1;
        let name = format!("{aof_name}.{}.incr.aof", self.incr_seq);
        self.incr.push(AofFile {
            name: name.clone(),
            seq: self.incr_seq,
            kind: FileKind::Incr,
        });
        name
    }

    /// Makes a new base file (`<aof>.<seq>.base.rdb`) the base, the old one history, and
    /// returns its name.
    pub fn new_base(&mut self, aof_name: &str) -> String {
        if let Some(mut old) = self.base.take() {
            old.kind = FileKind::History;
            self.history.insert(0, old);
        }
        self.base_seq += 1;
        let name = format!("{aof_name}.{}.base.rdb", self.base_seq);
        self.base = Some(AofFile {
            name: name.clone(),
            seq: self.base_seq,
            kind: FileKind::Base,
        });
        name
    }

    /// After a rewrite: every incr file but the last `keep` becomes history (they are
    /// contained in the new base).
    pub fn retire_incr(&mut self, keep: usize) {
        let n = self.incr.len().saturating_sub(keep);
        for mut f in self.incr.drain(..n).rev() {
            f.kind = FileKind::History;
            self.history.insert(0, f);
        }
    }

    /// Writes the manifest into `dir` atomically: temp file, fsync, rename, directory fsync.
    pub fn persist(&self, dir: &Path, aof_name: &str) -> std::io::Result<()> {
        let path = dir.join(Manifest::file_name(aof_name));
        let tmp = dir.join(format!("temp-{}", Manifest::file_name(aof_name)));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(self.to_text().as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        sync_dir(dir)
    }
}

/// fsyncs a directory so renames and new files in it survive a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let Some((first, rest)) = s.split_first() {
        if matches!(first, b' ' | b'\t' | b'\r' | b'\n') {
            s = rest;
        } else {
            break;
        }
    }
    while let Some((last, rest)) = s.split_last() {
        if matches!(last, b' ' | b'\t' | b'\r' | b'\n') {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// C's `atoll`: leading digits, 0 when there are none.
fn atoll(s: &[u8]) -> u64 {
    let mut n: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            break;
        }
        n = n.saturating_mul(10).saturating_add((c - b'0') as u64);
    }
    n
}

/// Splits a line into words the way Redis's `sdssplitargs` does: spaces separate words,
/// `"..."` allows escapes (`\n`, `\xHH`, ...), `'...'` allows `\'`. `None` on unbalanced
/// quotes.
fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            return Some(out);
        }
        let mut word = Vec::new();
        match line[i] {
            b'"' => {
                i += 1;
                loop {
                    let c = *line.get(i)?;
                    if c == b'\\' && line.get(i + 1) == Some(&b'x') {
                        let hex = line
                            .get(i + 2..i + 4)
                            .and_then(|h| std::str::from_utf8(h).ok());
                        if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                            word.push(v);
                            i += 4;
                            continue;
                        }
                    }
                    if c == b'\\' {
                        let e = *line.get(i + 1)?;
                        word.push(match e {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                        i += 2;
                        continue;
                    }
                    if c == b'"' {
                        i += 1;
                        // A closing quote must be followed by a space or the end.
                        if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                            return None;
                        }
                        break;
                    }
                    word.push(c);
                    i += 1;
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    let c = *line.get(i)?;
                    if c == b'\\' && line.get(i + 1) == Some(&b'\'') {
                        word.push(b'\'');
                        i += 2;
                        continue;
                    }
                    if c == b'\'' {
                        i += 1;
                        if line.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                            return None;
                        }
                        break;
                    }
                    word.push(c);
                    i += 1;
                }
            }
            _ => {
                while i < line.len() && !line[i].is_ascii_whitespace() {
                    word.push(line[i]);
                    i += 1;
                }
            }
        }
        out.push(word);
    }
}

/// A file name as Redis writes it in the manifest: quoted and escaped (`sdscatrepr`)
/// when it holds spaces, quotes or unprintable bytes, else as is.
fn repr_if_needed(name: &str) -> String {
    let needs = name
        .bytes()
        .any(|c| !c.is_ascii_graphic() || c == b'"' || c == b'\\' || c == b'\'');
    if !needs {
        return name.to_string();
    }
    let mut out = String::from("\"");
    for c in name.bytes() {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c as char),
            c => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_redis_manifests() {
        let text = "file appendonly.aof.2.base.rdb seq 2 type b\n\
                    file appendonly.aof.1.incr.aof seq 1 type h\n\
                    file appendonly.aof.4.incr.aof seq 4 type i\n\
                    file appendonly.aof.5.incr.aof seq 5 type i\n";
        let m = Manifest::parse(text.as_bytes()).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.2.base.rdb");
        assert_eq!(m.history.len(), 1);
        assert_eq!(m.incr.len(), 2);
        assert_eq!((m.base_seq, m.incr_seq), (2, 5));
        assert_eq!(m.to_text(), text);
    }

    #[test]
    fn rejects_what_redis_rejects() {
        let bad = |t: &str| Manifest::parse(t.as_bytes()).unwrap_err().2;
        assert_eq!(bad(""), "Found an empty AOF manifest");
        assert_eq!(bad("file a seq 1\n"), "Invalid AOF manifest file format");
        assert_eq!(
            bad("file a seq 1 type b\nfile b seq 2 type b\n"),
            "Found duplicate base file information"
        );
        assert_eq!(
            bad("file a seq 2 type i\nfile b seq 2 type i\n"),
            "Found a non-monotonic sequence number"
        );
        assert_eq!(
            bad("file ../a seq 1 type i\n"),
            "File can't be a path, just a filename"
        );
        assert_eq!(bad("file a seq 1 type x\n"), "Unknown AOF file type");
        assert_eq!(
            bad("file a seq 0 type i\n"),
            "Invalid AOF manifest file format"
        );
        assert_eq!(
            bad("file a seq 1 type i"),
            "The AOF manifest file contains too long line"
        );
        assert_eq!(bad("\n"), "Invalid AOF manifest file format");
    }

    #[test]
    fn quoted_names_round_trip() {
        let mut m = Manifest::default();
        m.incr.push(AofFile {
            name: "my aof\".1.incr.aof".into(),
            seq: 1,
            kind: FileKind::Incr,
        });
        m.incr_seq = 1;
        let text = m.to_text();
        assert_eq!(text, "file \"my aof\\\".1.incr.aof\" seq 1 type i\n");
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
    }

    #[test]
    fn rewrite_bookkeeping() {
        let mut m = Manifest::default();
        assert_eq!(m.new_base("a.aof"), "a.aof.1.base.rdb");
        assert_eq!(m.new_incr("a.aof"), "a.aof.1.incr.aof");
        assert_eq!(m.new_incr("a.aof"), "a.aof.2.incr.aof");
        assert_eq!(m.new_base("a.aof"), "a.aof.2.base.rdb");
        m.retire_incr(1);
        assert_eq!(
            m.to_text(),
            "file a.aof.2.base.rdb seq 2 type b\n\
             file a.aof.1.incr.aof seq 1 type h\n\
             file a.aof.1.base.rdb seq 1 type h\n\
             file a.aof.2.incr.aof seq 2 type i\n"
        );
    }
}

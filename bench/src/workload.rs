//! Workloads: which command comes next, on which key, with which value. Each connection owns a
//! [`Generator`] seeded from the run's seed and its own index, so a run is reproducible and
//! connections do not replay each other's key sequence. Commands are encoded straight into the
//! connection's output buffer (no allocation per request).

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution as _, Zipf};
use serde::Serialize;

/// Largest key space: key indices are written as 12 decimal digits, as redis-benchmark does.
pub const MAX_KEYS: u64 = 1_000_000_000_000;

/// Fields per hash key in the `hset` and `mixed` workloads.
pub const HASH_FIELDS: u64 = 100;

/// The command mix a run sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// GET and SET on `key:N`; `--read-ratio` is the share of GETs.
    Getset,
    /// GET only.
    Get,
    /// SET only.
    Set,
    /// INCR on `counter:N`.
    Incr,
    /// LPUSH on `list:N`.
    Lpush,
    /// HSET on `hash:N`.
    Hset,
    /// PING only (no key): the cost of the round trip itself.
    Ping,
    /// GET 40%, SET 20%, INCR 10%, LPUSH 10%, RPOP 10%, HSET 5%, HGET 5%.
    Mixed,
}

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Getset => "getset",
            WorkloadKind::Get => "get",
            WorkloadKind::Set => "set",
            WorkloadKind::Incr => "incr",
            WorkloadKind::Lpush => "lpush",
            WorkloadKind::Hset => "hset",
            WorkloadKind::Ping => "ping",
            WorkloadKind::Mixed => "mixed",
        }
    }
}

/// How keys are picked from the key space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyDistribution {
    /// Every key equally likely.
    Uniform,
    /// Zipf: key 0 is the hottest, key N is 1/(N+1)^s as likely (`--zipf-exponent` s).
    Zipf,
}

/// The commands the workloads send; each gets its own latency histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    Ping,
    Get,
    Set,
    Incr,
    Lpush,
    Rpop,
    Hset,
    Hget,
}

impl Command {
    pub const COUNT: usize = 8;
    pub const ALL: [Command; Command::COUNT] = [
        Command::Ping,
        Command::Get,
        Command::Set,
        Command::Incr,
        Command::Lpush,
        Command::Rpop,
        Command::Hset,
        Command::Hget,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Command::Ping => "PING",
            Command::Get => "GET",
            Command::Set => "SET",
            Command::Incr => "INCR",
            Command::Lpush => "LPUSH",
            Command::Rpop => "RPOP",
            Command::Hset => "HSET",
            Command::Hget => "HGET",
        }
    }

    /// Argument count and key prefix, the fixed shape of the encoded command.
    fn shape(self) -> (usize, &'static str) {
        match self {
            Command::Ping => (1, ""),
            Command::Get => (2, "key:"),
            Command::Set => (3, "key:"),
            Command::Incr => (2, "counter:"),
            Command::Lpush => (3, "list:"),
            Command::Rpop => (2, "list:"),
            Command::Hset => (4, "hash:"),
            Command::Hget => (3, "hash:"),
        }
    }

    /// The key prefix this command works on (`key:`, `counter:`, ...).
    pub fn key_prefix(self) -> &'static str {
        self.shape().1
    }
}

/// Everything a [`Generator`] needs; shared by all connections of a run.
#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    pub kind: WorkloadKind,
    /// Share of GETs in `getset` (0.0 to 1.0).
    pub read_ratio: f64,
    /// Key space size (keys `0..keys`).
    pub keys: u64,
    pub distribution: KeyDistribution,
    pub zipf_exponent: f64,
    pub value_size: usize,
    pub seed: u64,
}

/// Cumulative weights (out of 100) of the `mixed` workload.
const MIXED: [(u32, Command); 7] = [
    (40, Command::Get),
    (60, Command::Set),
    (70, Command::Incr),
    (80, Command::Lpush),
    (90, Command::Rpop),
    (95, Command::Hset),
    (100, Command::Hget),
];

enum KeyChooser {
    Uniform(u64),
    Zipf(Zipf<f64>, u64),
}

/// Produces the next command of one connection and encodes it.
pub struct Generator {
    rng: SmallRng,
    kind: WorkloadKind,
    read_ratio: f64,
    keys: KeyChooser,
    /// Encoded value argument: `$<size>\r\n<x...>\r\n` (redis-benchmark's `x` filler).
    value: Vec<u8>,
}

impl Generator {
    /// A generator for connection number `stream` of a run.
    pub fn new(spec: &WorkloadSpec, stream: u64) -> Generator {
        // SplitMix-style spreading so neighbouring streams get unrelated sequences.
        let seed = spec
            .seed
            .wrapping_add(stream.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let keys = spec.keys.clamp(1, MAX_KEYS);
        let keys = match spec.distribution {
            KeyDistribution::Uniform => KeyChooser::Uniform(keys),
            KeyDistribution::Zipf => match Zipf::new(keys as f64, spec.zipf_exponent.max(0.0)) {
                Ok(z) => KeyChooser::Zipf(z, keys),
                Err(_) => KeyChooser::Uniform(keys),
            },
        };
        let mut value = Vec::with_capacity(spec.value_size + 16);
        push_len(&mut value, b'$', spec.value_size);
        value.resize(value.len() + spec.value_size, b'x');
        value.extend_from_slice(b"\r\n");
        Generator {
            rng: SmallRng::seed_from_u64(seed),
            kind: spec.kind,
            read_ratio: spec.read_ratio,
            keys,
            value,
        }
    }

    /// Picks the next command, appends its RESP encoding to `out`, and says which it was.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Command {
        let cmd = self.pick();
        self.encode(cmd, out);
        cmd
    }

    fn pick(&mut self) -> Command {
        match self.kind {
            WorkloadKind::Getset => {
                if self.rng.random::<f64>() < self.read_ratio {
                    Command::Get
                } else {
                    Command::Set
                }
            }
            WorkloadKind::Get => Command::Get,
            WorkloadKind::Set => Command::Set,
            WorkloadKind::Incr => Command::Incr,
            WorkloadKind::Lpush => Command::Lpush,
            WorkloadKind::Hset => Command::Hset,
            WorkloadKind::Ping => Command::Ping,
            WorkloadKind::Mixed => {
                let roll = self.rng.random_range(0..100u32);
                MIXED
                    .iter()
                    .find(|(upto, _)| roll < *upto)
                    .map(|(_, c)| *c)
                    .unwrap_or(Command::Get)
            }
        }
    }

    /// The next key index.
    pub fn key(&mut self) -> u64 {
        match &self.keys {
            KeyChooser::Uniform(n) => self.rng.random_range(0..*n),
            KeyChooser::Zipf(z, n) => {
                let rank: f64 = z.sample(&mut self.rng);
                (rank as u64).saturating_sub(1).min(n - 1)
            }
        }
    }

    fn encode(&mut self, cmd: Command, out: &mut Vec<u8>) {
        let (argc, prefix) = cmd.shape();
        push_len(out, b'*', argc);
        push_bulk(out, cmd.name().as_bytes());
        if cmd == Command::Ping {
            return;
        }
        let key = self.key();
        push_len(out, b'$', prefix.len() + 12);
        out.extend_from_slice(prefix.as_bytes());
        push_digits12(out, key);
        out.extend_from_slice(b"\r\n");
        match cmd {
            Command::Set | Command::Lpush => out.extend_from_slice(&self.value),
            Command::Hset | Command::Hget => {
                let field = self.rng.random_range(0..HASH_FIELDS);
                let mut f = *b"field:00";
                f[6] = b'0' + (field / 10) as u8;
                f[7] = b'0' + (field % 10) as u8;
                push_bulk(out, &f);
                if cmd == Command::Hset {
                    out.extend_from_slice(&self.value);
                }
            }
            _ => {}
        }
    }
}

/// The key name of index `n` under `prefix` (what the generator sends).
pub fn key_name(prefix: &str, n: u64) -> String {
    format!("{prefix}{:012}", n % MAX_KEYS)
}

fn push_len(out: &mut Vec<u8>, marker: u8, n: usize) {
    out.push(marker);
    push_decimal(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

/// Appends one bulk string argument.
pub fn push_bulk(out: &mut Vec<u8>, arg: &[u8]) {
    push_len(out, b'$', arg.len());
    out.extend_from_slice(arg);
    out.extend_from_slice(b"\r\n");
}

/// Encodes a whole command (for setup commands such as AUTH and HELLO).
pub fn encode_command<A: AsRef<[u8]>>(args: &[A], out: &mut Vec<u8>) {
    push_len(out, b'*', args.len());
    for a in args {
        push_bulk(out, a.as_ref());
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

fn push_digits12(out: &mut Vec<u8>, n: u64) {
    let mut tmp = [b'0'; 12];
    let mut n = n % MAX_KEYS;
    for d in tmp.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&tmp);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: WorkloadKind) -> WorkloadSpec {
        WorkloadSpec {
            kind,
            read_ratio: 0.5,
            keys: 1000,
            distribution: KeyDistribution::Uniform,
            zipf_exponent: 0.99,
            value_size: 3,
            seed: 7,
        }
    }

    #[test]
    fn encodes_set_like_redis_benchmark() {
        let mut g = Generator::new(&spec(WorkloadKind::Set), 0);
        let mut out = Vec::new();
        assert_eq!(g.next_into(&mut out), Command::Set);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000"),
            "{text}"
        );
        assert!(text.ends_with("\r\n$3\r\nxxx\r\n"), "{text}");
    }

    #[test]
    fn encodes_every_command_as_valid_multibulk() {
        let mut g = Generator::new(&spec(WorkloadKind::Mixed), 3);
        let mut seen = [false; Command::COUNT];
        for _ in 0..2000 {
            let mut out = Vec::new();
            let c = g.next_into(&mut out);
            seen[c.index()] = true;
            let (argc, _) = c.shape();
            assert!(out.starts_with(format!("*{argc}\r\n").as_bytes()));
            // argc bulk strings, each "$len\r\n<len bytes>\r\n".
            let mut pos = out.iter().position(|&b| b == b'\n').unwrap() + 1;
            for _ in 0..argc {
                let nl = pos + out[pos..].iter().position(|&b| b == b'\n').unwrap();
                let len: usize = std::str::from_utf8(&out[pos + 1..nl - 1])
                    .unwrap()
                    .parse()
                    .unwrap();
                pos = nl + 1 + len + 2;
            }
            assert_eq!(pos, out.len());
        }
        // Mixed sends everything but PING.
        assert_eq!(seen.iter().filter(|s| **s).count(), Command::COUNT - 1);
    }

    #[test]
    fn same_seed_same_sequence_other_stream_differs() {
        let run = |stream| {
            let mut g = Generator::new(&spec(WorkloadKind::Getset), stream);
            let mut out = Vec::new();
            for _ in 0..100 {
                g.next_into(&mut out);
            }
            out
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn read_ratio_is_honoured() {
        let mut s = spec(WorkloadKind::Getset);
        s.read_ratio = 0.9;
        let mut g = Generator::new(&s, 0);
        let mut out = Vec::new();
        let gets = (0..10_000)
            .filter(|_| {
                out.clear();
                g.next_into(&mut out) == Command::Get
            })
            .count();
        assert!((8800..9200).contains(&gets), "{gets}");
    }

    #[test]
    fn zipf_prefers_low_keys_and_stays_in_range() {
        let mut s = spec(WorkloadKind::Get);
        s.distribution = KeyDistribution::Zipf;
        s.keys = 100;
        let mut g = Generator::new(&s, 0);
        let mut hits = [0u32; 100];
        for _ in 0..20_000 {
            let k = g.key();
            assert!(k < 100);
            hits[k as usize] += 1;
        }
        assert!(hits[0] > hits[10] && hits[10] > hits[99], "{hits:?}");
        // Uniform for comparison: roughly flat.
        let mut g = Generator::new(&spec(WorkloadKind::Get), 0);
        let low = (0..20_000).filter(|_| g.key() < 10).count();
        assert!((100..300).contains(&low), "{low}");
    }

    #[test]
    fn key_names_match_the_encoding() {
        assert_eq!(key_name("key:", 42), "key:000000000042");
        let mut out = Vec::new();
        push_digits12(&mut out, 999_999_999_999);
        assert_eq!(out, b"999999999999");
    }
}

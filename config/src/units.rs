//! Memory sizes written the way Redis configs write them (`1gb`, `512mb`, `100kb`, or bytes).

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A size in bytes; deserializes from an integer or a string with Redis's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct MemSize(pub u64);

impl MemSize {
    /// Parses `100`, `1k` (1000), `1kb` (1024), `5mb`, `2gb`, case-insensitive.
    pub fn parse(s: &str) -> Option<MemSize> {
        let t = s.trim().to_ascii_lowercase();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return None;
        }
        let n: u64 = num.parse().ok()?;
        let mul: u64 = match unit {
            "" | "b" => 1,
            "k" => 1000,
            "kb" => 1024,
            "m" => 1_000_000,
            "mb" => 1 << 20,
            "g" => 1_000_000_000,
            "gb" => 1 << 30,
            _ => return None,
        };
        n.checked_mul(mul).map(MemSize)
    }
}

impl<'de> Deserialize<'de> for MemSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = MemSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size in bytes, or a string such as \"100mb\" or \"1gb\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MemSize, E> {
                u64::try_from(v)
                    .map(MemSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MemSize, E> {
                Ok(MemSize(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MemSize, E> {
                MemSize::parse(v).ok_or_else(|| {
                    E::custom(format!(
                        "invalid size {v:?}: expected bytes or a number with b, k, kb, m, mb, g or gb"
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for MemSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

//! The sorted set: members with scores, ordered by (score, member), with rank queries.

use super::value::{CompactBytes, HashMap};

/// A Redis sorted set.
#[derive(Clone, Debug, Default)]
pub struct ZSet {
    /// member -> score.
    pub dict: HashMap<CompactBytes, f64>,
}

impl ZSet {
    pub fn len(&self) -> usize {
        self.dict.len()
    }
    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
    }
}

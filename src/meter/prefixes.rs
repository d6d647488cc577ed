//! Which stable prompt prefixes this replica saw lately, for the live prefix-reuse series: a
//! call whose prefix the same app sent to the same model within a prompt cache's lifetime could
//! have been a cache read.
//!
//! A fixed table of slots, indexed by the keyed fingerprint's own bits (a SHA-256, so already
//! uniform), each holding the last key and when it was seen. Bounded (16,384 slots, 192 KiB)
//! and lock-free: two prefixes that share a slot push each other out, so reuse is counted at
//! most, never more, than it happened.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

/// A prompt cache keeps a prefix this long after its last use (Bedrock's default TTL).
pub const CACHE_TTL_SECS: u32 = 300;
/// Bedrock caches prefixes of at least this many tokens (the lowest model minimum).
pub const MIN_CACHE_TOKENS: u64 = 1024;
/// Bytes per token where only the bytes are known: the estimate the ledger marks as one.
pub const BYTES_PER_TOKEN: u64 = 4;

const SLOTS: usize = 1 << 14;

pub struct RecentPrefixes {
    keys: Box<[AtomicU64]>,
    /// Seconds since `started`, plus one (0: never seen), of each slot's last sighting.
    seen: Box<[AtomicU32]>,
    started: Instant,
}

impl Default for RecentPrefixes {
    fn default() -> Self {
        RecentPrefixes {
            keys: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            seen: (0..SLOTS).map(|_| AtomicU32::new(0)).collect(),
            started: Instant::now(),
        }
    }
}

impl RecentPrefixes {
    /// Whether `key` was seen within the last [`CACHE_TTL_SECS`]; it is seen now.
    pub fn sighted(&self, key: u64) -> bool {
        self.sighted_at(key, self.started.elapsed().as_secs())
    }

    fn sighted_at(&self, key: u64, secs: u64) -> bool {
        let now = u32::try_from(secs).unwrap_or(u32::MAX - 1) + 1;
        let slot = (key as usize) & (SLOTS - 1);
        // Races between the two stores are harmless: at worst one sighting is missed.
        let before = self.keys[slot].swap(key, Ordering::Relaxed);
        let last = self.seen[slot].swap(now, Ordering::Relaxed);
        before == key && last != 0 && now - last.min(now) <= CACHE_TTL_SECS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_within_the_ttl_only() {
        let t = RecentPrefixes::default();
        assert!(!t.sighted_at(7, 0), "first sighting");
        assert!(t.sighted_at(7, 10));
        assert!(t.sighted_at(7, 310), "the TTL runs from the last use");
        assert!(!t.sighted_at(7, 611), "expired");
        assert!(!t.sighted_at(8, 611), "another prefix");
        // A prefix sharing 7's slot pushes it out.
        let rival = 7 + SLOTS as u64;
        assert!(!t.sighted_at(rival, 612));
        assert!(!t.sighted_at(7, 613));
        assert!(t.sighted_at(7, 614));
    }

    #[test]
    fn key_zero_is_a_key_too() {
        let t = RecentPrefixes::default();
        assert!(!t.sighted_at(0, 0));
        assert!(t.sighted_at(0, 1));
    }
}

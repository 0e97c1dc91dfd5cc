//! Bounded per-VM cache of verified tokens, keyed by a digest of the token bytes, so a
//! session's token is verified once. Entries are dropped at the token's `exp`.
//!
//! Keys are 128-bit digests from SipHash-1-3-128 under a random per-VM key (drawn through
//! std's `RandomState`, seeded from the host's `random_get`): a keyed PRF the client can
//! neither observe nor compute, so a colliding token cannot be crafted, in one pass over the
//! token at a fraction of SHA-256's cost inside wasm (it runs on every request). The token text itself is never stored. Every operation is
//! O(log n): a hash map holds the entries, one ordered index finds the entry that expires
//! first, another the least recently used one. When full, an expired entry is evicted
//! first, else the least recently used. Recency is kept to the second: a hit moves its entry
//! in the recency index only the first time in a given second, so a busy session's hits
//! cost a hash lookup and no index update.

use crate::metrics;
use siphasher::sip128::{Hasher128, SipHasher13};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::OnceLock;

/// A 128-bit keyed digest of a token.
type Digest = [u8; 16];

/// Hashes a digest by its first 8 bytes: keys are already uniform, and this needs no
/// random seed (none is required from the wasm host).
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }

    fn write_usize(&mut self, _len: usize) {
        // The array length prefix carries no information.
    }
}

struct Entry<V> {
    value: V,
    expires_at: u64,
    /// Key in `by_use`: (second of last use, insertion order within the index).
    last_used: (u64, u64),
}

/// A bounded cache from token digest to a value, with per-entry expiry (seconds since epoch).
pub struct TokenCache<V> {
    capacity: usize,
    entries: HashMap<Digest, Entry<V>, BuildHasherDefault<DigestHasher>>,
    /// (expires_at, digest), ordered by expiry.
    by_expiry: BTreeSet<(u64, Digest)>,
    /// (second of last use, tick) → digest, ordered from least recently used.
    by_use: BTreeMap<(u64, u64), Digest>,
    tick: u64,
}

impl<V: Clone> TokenCache<V> {
    /// A cache holding at most `capacity` entries (0 disables caching).
    pub fn new(capacity: usize) -> Self {
        TokenCache {
            capacity,
            entries: HashMap::default(),
            by_expiry: BTreeSet::new(),
            by_use: BTreeMap::new(),
            tick: 0,
        }
    }

    /// The entry for `token`, if present and not expired at `now_secs`. An entry is
    /// expired once `now_secs >= expires_at`.
    pub fn get(&mut self, token: &[u8], now_secs: u64) -> Option<V> {
        if self.capacity == 0 {
            return None;
        }
        let digest = digest(token);
        let (expires_at, last_used) = {
            let entry = self.entries.get(&digest)?;
            (entry.expires_at, entry.last_used)
        };
        if now_secs >= expires_at {
            self.remove(&digest);
            return None;
        }
        if now_secs > last_used.0 {
            let used = (now_secs, self.next_tick());
            self.by_use.remove(&last_used);
            self.by_use.insert(used, digest);
            if let Some(entry) = self.entries.get_mut(&digest) {
                entry.last_used = used;
            }
        }
        self.entries.get(&digest).map(|entry| entry.value.clone())
    }

    /// Stores `value` for `token` until `expires_at` (seconds since epoch). Values already
    /// expired at `now_secs` are not stored.
    pub fn insert(&mut self, token: &[u8], value: V, expires_at: u64, now_secs: u64) {
        if self.capacity == 0 || now_secs >= expires_at {
            return;
        }
        let digest = digest(token);
        self.remove(&digest);
        self.purge_expired(now_secs);
        while self.entries.len() >= self.capacity {
            if !self.evict_least_recently_used() {
                break;
            }
        }
        let used = (now_secs, self.next_tick());
        self.by_expiry.insert((expires_at, digest));
        self.by_use.insert(used, digest);
        self.entries.insert(
            digest,
            Entry {
                value,
                expires_at,
                last_used: used,
            },
        );
    }

    /// Drops every entry that is expired at `now_secs`. Each entry is dropped once, so the
    /// cost is amortised over insertions.
    pub fn purge_expired(&mut self, now_secs: u64) {
        while let Some(&(expires_at, digest)) = self.by_expiry.first() {
            if now_secs < expires_at {
                break;
            }
            self.remove(&digest);
        }
    }

    /// Number of stored entries. Expired entries are dropped lazily (on `get`, `insert` or
    /// `purge_expired`), so this may count some that are expired but not yet dropped.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured capacity (0 = disabled).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Drops every entry (e.g. after a key rotation removed keys).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.by_expiry.clear();
        self.by_use.clear();
    }

    fn next_tick(&mut self) -> u64 {
        self.tick = self.tick.wrapping_add(1);
        self.tick
    }

    fn remove(&mut self, digest: &Digest) {
        if let Some(entry) = self.entries.remove(digest) {
            self.by_expiry.remove(&(entry.expires_at, *digest));
            self.by_use.remove(&entry.last_used);
        }
    }

    fn evict_least_recently_used(&mut self) -> bool {
        match self.by_use.first_key_value() {
            Some((_, digest)) => {
                let digest = *digest;
                self.remove(&digest);
                true
            }
            None => false,
        }
    }
}

/// The random 128-bit key of this VM, drawn once.
static DIGEST_KEY: OnceLock<(u64, u64)> = OnceLock::new();

fn digest(token: &[u8]) -> Digest {
    let &(k0, k1) = DIGEST_KEY.get_or_init(|| {
        let random = RandomState::new();
        (random.hash_one(0u8), random.hash_one(1u8))
    });
    let mut hasher = SipHasher13::new_with_keys(k0, k1);
    hasher.write(token);
    hasher.finish128().as_bytes()
}

/// Whether a session came from the verified-session cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Found in the cache.
    Hit,
    /// Not in the cache: verified (or decoded) now.
    Miss,
    /// Not in this VM's cache, but verified by another VM (shared data): not verified again.
    Shared,
}

impl CacheUse {
    /// `hit` or `miss`, as in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheUse::Hit => "hit",
            CacheUse::Miss => "miss",
            CacheUse::Shared => "shared",
        }
    }

    /// The counter this use increments.
    pub fn counter(self) -> &'static str {
        match self {
            CacheUse::Hit => metrics::TOKEN_CACHE_HIT,
            CacheUse::Miss => metrics::TOKEN_CACHE_MISS,
            CacheUse::Shared => metrics::TOKEN_CACHE_SHARED_HIT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn hit_returns_the_stored_value() {
        let mut cache = TokenCache::new(4);
        cache.insert(b"token-a", "claims-a", NOW + 60, NOW);
        assert_eq!(cache.get(b"token-a", NOW + 1), Some("claims-a"));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn miss_for_an_unknown_token() {
        let mut cache = TokenCache::new(4);
        cache.insert(b"token-a", 1, NOW + 60, NOW);
        assert_eq!(cache.get(b"token-b", NOW), None);
        // A token differing in one byte is a different key.
        assert_eq!(cache.get(b"token-A", NOW), None);
    }

    #[test]
    fn entries_expire_at_exp() {
        let mut cache = TokenCache::new(4);
        cache.insert(b"t", 1, NOW + 10, NOW);
        assert_eq!(cache.get(b"t", NOW + 9), Some(1));
        assert_eq!(cache.get(b"t", NOW + 10), None);
        assert!(cache.is_empty(), "an expired entry is dropped when read");
        cache.insert(b"late", 2, NOW, NOW);
        assert!(cache.is_empty(), "an already expired value is not stored");
    }

    #[test]
    fn eviction_keeps_the_bound_and_prefers_expired_entries() {
        let mut cache = TokenCache::new(3);
        cache.insert(b"short", 0, NOW + 5, NOW);
        cache.insert(b"long-1", 1, NOW + 100, NOW);
        cache.insert(b"long-2", 2, NOW + 100, NOW);
        // At NOW+6 "short" has expired: it goes, not the least recently used live entry.
        cache.insert(b"long-3", 3, NOW + 100, NOW + 6);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(b"long-1", NOW + 6), Some(1));
        assert_eq!(cache.get(b"long-2", NOW + 6), Some(2));
        assert_eq!(cache.get(b"long-3", NOW + 6), Some(3));
    }

    #[test]
    fn eviction_drops_the_least_recently_used_live_entry() {
        let mut cache = TokenCache::new(2);
        cache.insert(b"a", 'a', NOW + 100, NOW);
        cache.insert(b"b", 'b', NOW + 100, NOW);
        assert_eq!(cache.get(b"a", NOW + 1), Some('a')); // "b" is now least recently used
        cache.insert(b"c", 'c', NOW + 100, NOW + 1);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(b"b", NOW), None);
        assert_eq!(cache.get(b"a", NOW), Some('a'));
        assert_eq!(cache.get(b"c", NOW), Some('c'));
    }

    #[test]
    fn recency_is_kept_to_the_second() {
        let mut cache = TokenCache::new(2);
        cache.insert(b"a", 'a', NOW + 100, NOW);
        cache.insert(b"b", 'b', NOW + 100, NOW);
        // A hit in the second "a" was stored in does not move it: "a" stays the oldest.
        assert_eq!(cache.get(b"a", NOW), Some('a'));
        cache.insert(b"c", 'c', NOW + 100, NOW);
        assert_eq!(cache.get(b"a", NOW), None);
        assert_eq!(cache.get(b"b", NOW), Some('b'));
    }

    #[test]
    fn never_exceeds_capacity_under_many_inserts() {
        let mut cache = TokenCache::new(100);
        for i in 0u64..1000 {
            cache.insert(&i.to_le_bytes(), i, NOW + 1000 + i, NOW);
            assert!(cache.len() <= 100);
        }
        assert_eq!(cache.len(), 100);
        assert_eq!(cache.get(&999u64.to_le_bytes(), NOW), Some(999));
        assert_eq!(cache.get(&0u64.to_le_bytes(), NOW), None);
        assert_eq!(cache.by_use.len(), 100);
        assert_eq!(cache.by_expiry.len(), 100);
    }

    #[test]
    fn reinserting_replaces_the_value_and_expiry() {
        let mut cache = TokenCache::new(2);
        cache.insert(b"t", 1, NOW + 10, NOW);
        cache.insert(b"t", 2, NOW + 20, NOW);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(b"t", NOW + 15), Some(2));
    }

    #[test]
    fn clear_drops_everything() {
        let mut cache = TokenCache::new(4);
        cache.insert(b"a", 1, NOW + 10, NOW);
        cache.insert(b"b", 2, NOW + 10, NOW);
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!(cache.get(b"a", NOW), None);
    }

    #[test]
    fn capacity_zero_disables_the_cache() {
        let mut cache = TokenCache::new(0);
        cache.insert(b"a", 1, NOW + 10, NOW);
        assert!(cache.is_empty());
        assert_eq!(cache.get(b"a", NOW), None);
    }

    #[test]
    fn purge_expired_drops_only_expired_entries() {
        let mut cache = TokenCache::new(10);
        cache.insert(b"a", 1, NOW + 10, NOW);
        cache.insert(b"b", 2, NOW + 20, NOW);
        cache.purge_expired(NOW + 15);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(b"b", NOW + 15), Some(2));
    }
}

//! Bounded per-VM cache of verified tokens, keyed by a digest of the token bytes, so a
//! session's token is verified once. Entries are dropped at the token's `exp`.
//!
//! OWNER: tokens helper. Interface fixed below; implementation to be completed.

/// A bounded cache from token digest to a value, with per-entry expiry (seconds since epoch).
pub struct TokenCache<V> {
    capacity: usize,
    _entries: Vec<V>,
}

impl<V: Clone> TokenCache<V> {
    /// A cache holding at most `capacity` entries (0 disables caching).
    pub fn new(capacity: usize) -> Self {
        TokenCache {
            capacity,
            _entries: Vec::new(),
        }
    }

    /// The entry for `token`, if present and not expired at `now_secs`.
    pub fn get(&mut self, token: &[u8], now_secs: u64) -> Option<V> {
        let _ = (token, now_secs);
        None
    }

    /// Stores `value` for `token` until `expires_at` (seconds since epoch).
    pub fn insert(&mut self, token: &[u8], value: V, expires_at: u64, now_secs: u64) {
        let _ = (token, value, expires_at, now_secs, self.capacity);
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        0
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every entry (e.g. after a key rotation removed keys).
    pub fn clear(&mut self) {}
}

//! A small bounded map whose entries expire: what the demo identity provider keeps of
//! pending authorization requests, one-time codes, opaque tokens and used assertion ids.
//!
//! Bounded: expired entries are dropped on every insert; when the map is still full, the
//! entry that expires first is dropped (so a flood of new entries cannot grow it).

use std::collections::HashMap;
use std::sync::Mutex;

/// A map from random ids to values, each with an expiry time (seconds since the epoch).
#[derive(Debug)]
pub struct ExpiringMap<V> {
    capacity: usize,
    entries: Mutex<HashMap<String, (V, u64)>>,
}

impl<V: Clone> ExpiringMap<V> {
    /// An empty map that holds at most `capacity` entries.
    pub fn new(capacity: usize) -> ExpiringMap<V> {
        ExpiringMap {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps `value` under `key` until `expires_at`.
    pub fn insert(&self, key: &str, value: V, expires_at: u64, now: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (_, exp)| *exp > now);
        if entries.len() >= self.capacity && !entries.contains_key(key) {
            let soonest = entries
                .iter()
                .min_by_key(|(_, (_, exp))| *exp)
                .map(|(k, _)| k.clone());
            if let Some(soonest) = soonest {
                entries.remove(&soonest);
            }
        }
        entries.insert(key.to_string(), (value, expires_at));
    }

    /// The live value under `key`.
    pub fn get(&self, key: &str, now: u64) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v.clone())
    }

    /// Removes the value under `key` and returns it with its expiry, live or not
    /// (a one-time code is taken out before it is checked, so it cannot be used twice).
    pub fn take(&self, key: &str) -> Option<(V, u64)> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(key)
    }

    /// Whether a live entry is kept under `key`.
    pub fn contains(&self, key: &str, now: u64) -> bool {
        self.get(key, now).is_some()
    }

    /// How many entries are kept (expired ones included until the next insert).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn entries_expire_and_the_map_stays_bounded() {
        let map = ExpiringMap::new(2);
        map.insert("a", 1, 100, 0);
        map.insert("b", 2, 50, 0);
        assert_eq!(map.get("a", 99), Some(1));
        assert_eq!(map.get("a", 100), None);
        // Full: the entry expiring first ("b") makes room.
        map.insert("c", 3, 200, 10);
        assert_eq!(map.len(), 2);
        assert_eq!(map.get("b", 10), None);
        assert_eq!(map.get("a", 10), Some(1));
        // Expired entries go first.
        map.insert("d", 4, 300, 150);
        assert_eq!(map.len(), 2);
        assert_eq!(map.get("c", 150), Some(3));
        assert_eq!(map.take("c"), Some((3, 200)));
        assert_eq!(map.take("c"), None);
    }
}

//! The states already used, in shared data: a callback whose `state` came back before is a
//! replay, refused on every worker of this Envoy. Kept as 16 shards of at most
//! [`MAX_PER_SHARD`] (digest, expiry) pairs, expired entries dropped first and the soonest
//! to expire beyond the bound: a state's cookie is refused after its lifetime anyway, so an
//! entry is needed only that long. Digests are keyed (the state key), never the state.

use crate::store::{self, Store, UpdateError};
use std::cell::Cell;

/// The format version of a shard.
const FORMAT: u8 = 1;
/// Shards of the set.
const SHARDS: usize = 16;
/// Entries per shard.
pub const MAX_PER_SHARD: usize = 512;
/// Bytes of one entry: an 8-byte digest, an 8-byte expiry.
const ENTRY: usize = 16;
const MAX_BYTES: usize = 1 + MAX_PER_SHARD * ENTRY;

/// Why a state could not be claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimError {
    /// It was used before.
    Replayed,
    /// Shared data cannot say (the sign-in is refused: it fails closed).
    Unavailable,
}

fn digest(key: &[u8], state: &str) -> [u8; 8] {
    let mut h = hmac_sha256::HMAC::new(key);
    h.update(b"mfa-gate used state\0");
    h.update(state.as_bytes());
    let full = h.finalize();
    let mut out = [0_u8; 8];
    out.copy_from_slice(&full[..8]);
    out
}

fn entries(bytes: Option<&[u8]>) -> Vec<([u8; 8], u64)> {
    let Some(payload) = bytes.and_then(|b| store::decode(FORMAT, b, MAX_BYTES).ok()) else {
        return Vec::new();
    };
    payload
        .chunks_exact(ENTRY)
        .map(|c| {
            let mut d = [0_u8; 8];
            d.copy_from_slice(&c[..8]);
            let mut e = [0_u8; 8];
            e.copy_from_slice(&c[8..]);
            (d, u64::from_le_bytes(e))
        })
        .collect()
}

/// Marks `state` used until `expires_at`. Fails when it was used before, or when the store
/// cannot answer.
pub fn claim(
    store: &mut dyn Store,
    key: &[u8],
    state: &str,
    expires_at: u64,
    now: u64,
) -> Result<(), ClaimError> {
    let d = digest(key, state);
    let shard = usize::from(d[0]) % SHARDS;
    let name = format!("mfa_gate.sign_in.used.{shard}");
    let replayed = Cell::new(false);
    let result = store::update(store, &name, |current| {
        let mut list = entries(current);
        list.retain(|(_, until)| *until > now);
        if list.iter().any(|(seen, _)| *seen == d) {
            replayed.set(true);
            return None;
        }
        replayed.set(false);
        if list.len() >= MAX_PER_SHARD {
            list.sort_by_key(|(_, until)| *until);
            list.drain(..=list.len() - MAX_PER_SHARD);
        }
        list.push((d, expires_at));
        let mut payload = Vec::with_capacity(list.len() * ENTRY);
        for (digest, until) in &list {
            payload.extend_from_slice(digest);
            payload.extend_from_slice(&until.to_le_bytes());
        }
        store::encode(FORMAT, &payload, MAX_BYTES).ok()
    });
    match result {
        Ok(_) if replayed.get() => Err(ClaimError::Replayed),
        Ok(Some(_)) => Ok(()),
        Ok(None) | Err(UpdateError::Contended | UpdateError::Store(_)) => {
            Err(ClaimError::Unavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_state_is_claimed_once_until_it_expires() {
        let mut store = MemoryStore::default();
        assert_eq!(claim(&mut store, KEY, "s1", 700, 100), Ok(()));
        assert_eq!(
            claim(&mut store, KEY, "s1", 700, 200),
            Err(ClaimError::Replayed)
        );
        assert_eq!(claim(&mut store, KEY, "s2", 700, 200), Ok(()));
        // Past its expiry the entry is gone (the cookie is refused by then anyway).
        assert_eq!(claim(&mut store, KEY, "s1", 1_400, 701), Ok(()));
    }

    #[test]
    fn the_set_stays_bounded() {
        let mut store = MemoryStore::default();
        for i in 0..(SHARDS * MAX_PER_SHARD * 2) {
            let state = format!("state-{i}");
            assert_eq!(claim(&mut store, KEY, &state, 10_000 + i as u64, 1), Ok(()));
        }
        for shard in 0..SHARDS {
            let v = store
                .get(&format!("mfa_gate.sign_in.used.{shard}"))
                .unwrap()
                .unwrap();
            assert!(v.bytes.len() <= MAX_BYTES);
        }
    }
}

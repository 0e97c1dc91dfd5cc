//! DPoP proofs seen once (RFC 9449 §11.1): every worker VM shares the `jti` digests of the
//! proofs it accepted, so a proof replayed to any worker within its acceptance window is
//! recognised. Kept in shared data through [`crate::store`]'s bounded CAS loop.
//!
//! **Layout.** [`SHARDS`] shards by digest, each one versioned value holding at most
//! [`ReplaySettings::per_shard`] entries of a 16-byte digest and the time the proof stops
//! being acceptable (`iat + max_age + skew`), sorted by that time. An entry is kept while
//! that time has not passed; expired entries are dropped on every write.
//!
//! **Bounded.** A full shard drops its oldest entries (the soonest to expire) to make room,
//! and says so ([`Remembered::evicted_unexpired`]): a proof evicted before its window ends
//! could then be replayed, so the glue counts it (raise the capacity if it happens). The
//! alternative, refusing new proofs while full, would let one client lock every other out.
//!
//! What it must never do: take bytes it cannot read (another format version, a bad size)
//! to mean "seen" or trust them in any way (they are replaced); hold anything but digests
//! (no `jti` values, no personal data); or grow past its bound. A leaf: it imports only
//! [`crate::store`].

use crate::store::{self, Store, StoreError, UpdateError};

/// Number of shards the digests are spread over (a power of two, so digests spread evenly).
pub const SHARDS: usize = 64;
/// The shared-data key prefix (the format version is part of it).
pub const KEY_PREFIX: &str = "mfa_gate.dpop_jti.v1";
/// Format version of every value under [`KEY_PREFIX`].
const FORMAT: u8 = 1;
/// Bytes of one encoded entry: the digest, then the expiry (big-endian seconds).
const ENTRY_BYTES: usize = 16 + 8;
/// The default total capacity ([`ReplaySettings::capacity`]).
pub const DEFAULT_CAPACITY: usize = 65_536;
/// The largest total capacity honoured (larger settings are capped to it): 16,384 entries
/// (384 KiB) per shard.
pub const MAX_CAPACITY: usize = 1 << 20;

/// How many proofs are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySettings {
    /// Entries in all, split evenly over the shards ([`DEFAULT_CAPACITY`]; at most
    /// [`MAX_CAPACITY`]).
    pub capacity: usize,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        ReplaySettings {
            capacity: DEFAULT_CAPACITY,
        }
    }
}

impl ReplaySettings {
    /// Entries one shard holds: the capacity (capped at [`MAX_CAPACITY`]) over the shards,
    /// rounded up, and at least one.
    pub fn per_shard(&self) -> usize {
        self.capacity.min(MAX_CAPACITY).div_ceil(SHARDS).max(1)
    }

    /// The largest value one shard may hold, in bytes.
    fn max_value_bytes(&self) -> usize {
        1 + ENTRY_BYTES * MAX_CAPACITY.div_ceil(SHARDS).max(self.per_shard())
    }
}

/// Whether a proof was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not seen within its window: it is now remembered.
    First,
    /// Seen already and still within its window: a replay.
    Replayed,
}

/// What [`remember`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remembered {
    /// Whether the proof was seen before.
    pub seen: Seen,
    /// A full shard dropped an entry whose window had not ended to make room (count it).
    pub evicted_unexpired: bool,
}

/// Why the store could not say whether a proof was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    /// Every CAS attempt lost to another writer.
    Contended,
    /// The store failed.
    Store(StoreError),
}

impl ReplayError {
    /// Stable snake_case code for records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ReplayError::Contended => "dpop_replay_store_contended",
            ReplayError::Store(_) => "dpop_replay_store_unavailable",
        }
    }
}

impl From<UpdateError> for ReplayError {
    fn from(error: UpdateError) -> Self {
        match error {
            UpdateError::Contended => ReplayError::Contended,
            UpdateError::Store(e) => ReplayError::Store(e),
        }
    }
}

/// The shared-data key of shard `index`.
pub fn shard_key(index: usize) -> String {
    format!("{KEY_PREFIX}.shard.{index}")
}

/// Every shard's key, for the glue to create at configuration.
pub fn shard_keys() -> impl Iterator<Item = String> {
    (0..SHARDS).map(shard_key)
}

/// The shard a digest lives in.
fn shard_of(digest: &[u8; 16]) -> usize {
    usize::from(digest[0]) % SHARDS
}

/// One remembered proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    digest: [u8; 16],
    expires_at: u64,
}

/// A shard's entries, sorted by expiry; `None` when the bytes are not a value this build
/// wrote (another version, a bad size).
fn decode(bytes: &[u8], settings: &ReplaySettings) -> Option<Vec<Entry>> {
    let payload = store::decode(FORMAT, bytes, settings.max_value_bytes()).ok()?;
    if payload.len() % ENTRY_BYTES != 0 {
        return None;
    }
    let mut entries = Vec::with_capacity(payload.len() / ENTRY_BYTES + 1);
    for chunk in payload.chunks_exact(ENTRY_BYTES) {
        let (digest, expires_at) = chunk.split_at(16);
        entries.push(Entry {
            digest: digest.try_into().ok()?,
            expires_at: u64::from_be_bytes(expires_at.try_into().ok()?),
        });
    }
    if !entries.is_sorted_by_key(|e| e.expires_at) {
        entries.sort_by_key(|e| e.expires_at);
    }
    Some(entries)
}

fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + entries.len() * ENTRY_BYTES);
    bytes.push(FORMAT);
    for entry in entries {
        bytes.extend_from_slice(&entry.digest);
        bytes.extend_from_slice(&entry.expires_at.to_be_bytes());
    }
    bytes
}

/// Records that the proof with `digest` was accepted and must be refused again until
/// `expires_at` has passed (`iat + max_age + skew`), unless it was recorded already and
/// that time has not passed: then it is a replay and nothing is written.
///
/// The shard is read and written with one CAS loop: two workers seeing the same proof at
/// once cannot both get [`Seen::First`] (the second write loses its CAS, reads again and
/// finds the first). Expired entries are dropped; a full shard drops its soonest-expiring
/// entries. A shard holding bytes this build cannot read is replaced.
pub fn remember<S: Store + ?Sized>(
    store: &mut S,
    digest: [u8; 16],
    expires_at: u64,
    now_secs: u64,
    settings: &ReplaySettings,
) -> Result<Remembered, ReplayError> {
    let per_shard = settings.per_shard();
    let mut outcome = Remembered {
        seen: Seen::First,
        evicted_unexpired: false,
    };
    store::update(store, &shard_key(shard_of(&digest)), |bytes| {
        let mut entries = bytes.and_then(|b| decode(b, settings)).unwrap_or_default();
        // Still within their window: expires_at not passed.
        let live = entries.partition_point(|e| e.expires_at < now_secs);
        if entries
            .get(live..)
            .unwrap_or_default()
            .iter()
            .any(|e| e.digest == digest)
        {
            outcome = Remembered {
                seen: Seen::Replayed,
                evicted_unexpired: false,
            };
            return None;
        }
        // Expired entries go (among them any earlier entry of this digest).
        entries.drain(..live);
        let at = entries.partition_point(|e| e.expires_at <= expires_at);
        entries.insert(at, Entry { digest, expires_at });
        let excess = entries.len().saturating_sub(per_shard);
        entries.drain(..excess);
        outcome = Remembered {
            seen: Seen::First,
            evicted_unexpired: excess > 0,
        };
        Some(encode(&entries))
    })?;
    Ok(outcome)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, Versioned};

    const NOW: u64 = 1_750_000_000;

    /// A digest in shard `shard`, distinct per `n`.
    fn digest(shard: usize, n: u32) -> [u8; 16] {
        let mut d = [0u8; 16];
        d[0] = shard as u8;
        d[1..5].copy_from_slice(&n.to_be_bytes());
        d
    }

    fn settings(capacity: usize) -> ReplaySettings {
        ReplaySettings { capacity }
    }

    fn first(evicted_unexpired: bool) -> Remembered {
        Remembered {
            seen: Seen::First,
            evicted_unexpired,
        }
    }

    const REPLAYED: Remembered = Remembered {
        seen: Seen::Replayed,
        evicted_unexpired: false,
    };

    fn stored(store: &MemoryStore, shard: usize) -> Vec<Entry> {
        let value = store.get(&shard_key(shard)).unwrap().unwrap();
        decode(&value.bytes, &ReplaySettings::default()).unwrap()
    }

    #[test]
    fn keys_are_versioned_and_one_per_shard() {
        let keys: Vec<String> = shard_keys().collect();
        assert_eq!(keys.len(), SHARDS);
        assert_eq!(keys[0], "mfa_gate.dpop_jti.v1.shard.0");
        assert_eq!(
            keys[SHARDS - 1],
            format!("mfa_gate.dpop_jti.v1.shard.{}", SHARDS - 1)
        );
        // Every byte value lands in a shard, evenly.
        let mut counts = [0usize; SHARDS];
        for b in 0..=255u8 {
            let mut d = [0u8; 16];
            d[0] = b;
            counts[shard_of(&d)] += 1;
        }
        assert!(counts.iter().all(|&c| c == 256 / SHARDS));
    }

    #[test]
    fn a_proof_is_first_once_and_a_replay_until_its_window_ends() {
        let mut store = MemoryStore::default();
        let s = ReplaySettings::default();
        let d = digest(3, 1);
        assert_eq!(
            remember(&mut store, d, NOW + 360, NOW, &s),
            Ok(first(false))
        );
        let written = store.get(&shard_key(3)).unwrap();
        assert_eq!(
            remember(&mut store, d, NOW + 360, NOW + 1, &s),
            Ok(REPLAYED)
        );
        // A replay writes nothing.
        assert_eq!(store.get(&shard_key(3)).unwrap(), written);
        // Still a replay at the last second of its window...
        assert_eq!(
            remember(&mut store, d, NOW + 360, NOW + 360, &s),
            Ok(REPLAYED)
        );
        // ...and first again once it has passed (the proof is refused as too old anyway).
        assert_eq!(
            remember(&mut store, d, NOW + 721, NOW + 361, &s),
            Ok(first(false))
        );
        assert_eq!(
            stored(&store, 3),
            vec![Entry {
                digest: d,
                expires_at: NOW + 721
            }]
        );
        // Other proofs, in the same shard or another, are first.
        assert_eq!(
            remember(&mut store, digest(3, 2), NOW + 400, NOW, &s),
            Ok(first(false))
        );
        assert_eq!(
            remember(&mut store, digest(4, 1), NOW + 400, NOW, &s),
            Ok(first(false))
        );
    }

    #[test]
    fn expired_entries_are_dropped_on_write() {
        let mut store = MemoryStore::default();
        let s = ReplaySettings::default();
        for n in 0..10 {
            remember(&mut store, digest(0, n), NOW + u64::from(n), NOW, &s).unwrap();
        }
        assert_eq!(stored(&store, 0).len(), 10);
        // At NOW + 5, entries expiring before it (0..5) go.
        remember(&mut store, digest(0, 100), NOW + 400, NOW + 5, &s).unwrap();
        let left: Vec<u64> = stored(&store, 0).iter().map(|e| e.expires_at).collect();
        assert_eq!(
            left,
            vec![NOW + 5, NOW + 6, NOW + 7, NOW + 8, NOW + 9, NOW + 400]
        );
    }

    #[test]
    fn a_full_shard_drops_its_soonest_expiring_entries_and_says_so() {
        let mut store = MemoryStore::default();
        // 4 entries per shard.
        let s = settings(4 * SHARDS);
        assert_eq!(s.per_shard(), 4);
        for n in 0..4 {
            let r = remember(&mut store, digest(7, n), NOW + 100 + u64::from(n), NOW, &s);
            assert_eq!(r, Ok(first(false)));
        }
        // A fifth: the entry expiring soonest (n = 0) goes, unexpired.
        assert_eq!(
            remember(&mut store, digest(7, 9), NOW + 300, NOW, &s),
            Ok(first(true))
        );
        let digests: Vec<[u8; 16]> = stored(&store, 7).iter().map(|e| e.digest).collect();
        assert_eq!(
            digests,
            vec![digest(7, 1), digest(7, 2), digest(7, 3), digest(7, 9)]
        );
        // The evicted proof is no longer known: it would pass as first.
        assert_eq!(
            remember(&mut store, digest(7, 0), NOW + 100, NOW, &s),
            Ok(first(true))
        );
        // When an expired entry makes room, nothing unexpired is evicted.
        assert_eq!(
            remember(&mut store, digest(7, 10), NOW + 500, NOW + 102, &s),
            Ok(first(false))
        );
        assert!(stored(&store, 7).len() <= 4);
        // Lowering the capacity shrinks a shard at its next write.
        let smaller = settings(2 * SHARDS);
        assert_eq!(
            remember(&mut store, digest(7, 11), NOW + 600, NOW + 102, &smaller),
            Ok(first(true))
        );
        assert_eq!(stored(&store, 7).len(), 2);
    }

    #[test]
    fn the_bound_holds_under_a_flood() {
        let mut store = MemoryStore::default();
        let s = settings(1024);
        for n in 0..5000u32 {
            let d = digest(n as usize % SHARDS, n);
            remember(&mut store, d, NOW + 300, NOW, &s).unwrap();
        }
        let mut total = 0;
        for shard in 0..SHARDS {
            let value = store.get(&shard_key(shard)).unwrap().unwrap();
            assert!(value.bytes.len() <= 1 + s.per_shard() * ENTRY_BYTES);
            total += stored(&store, shard).len();
        }
        assert_eq!(total, 1024);
        // Settings out of range are brought into it.
        assert_eq!(settings(0).per_shard(), 1);
        assert_eq!(settings(usize::MAX).per_shard(), MAX_CAPACITY / SHARDS);
    }

    #[test]
    fn unreadable_bytes_are_replaced_not_taken_for_seen() {
        let d = digest(5, 1);
        let key = shard_key(5);
        let mut entry = Vec::from([FORMAT]);
        entry.extend_from_slice(&d);
        entry.extend_from_slice(&(NOW + 100).to_be_bytes());
        let mut other_version = entry.clone();
        other_version[0] = FORMAT + 1;
        let mut bad_size = entry.clone();
        bad_size.push(0);
        for garbage in [other_version, bad_size, Vec::new(), vec![0xff; 7]] {
            let mut store = MemoryStore::default();
            store.set_if_cas(&key, &garbage, 0).unwrap();
            assert_eq!(
                remember(&mut store, d, NOW + 100, NOW, &ReplaySettings::default()),
                Ok(first(false)),
                "{garbage:?}"
            );
            assert_eq!(
                stored(&store, 5),
                vec![Entry {
                    digest: d,
                    expires_at: NOW + 100
                }]
            );
        }
        // A value over the size bound is replaced too.
        let mut store = MemoryStore::default();
        let mut huge = vec![FORMAT];
        huge.resize(1 + ENTRY_BYTES * (MAX_CAPACITY / SHARDS + 1), 0);
        store.set_if_cas(&key, &huge, 0).unwrap();
        let r = remember(&mut store, d, NOW + 100, NOW, &ReplaySettings::default());
        assert_eq!(r, Ok(first(false)));
        assert_eq!(stored(&store, 5).len(), 1);
        // Entries out of order (written by hand) are still read right.
        let mut store = MemoryStore::default();
        let unsorted = encode(&[
            Entry {
                digest: digest(5, 2),
                expires_at: NOW + 200,
            },
            Entry {
                digest: d,
                expires_at: NOW + 100,
            },
        ]);
        store.set_if_cas(&key, &unsorted, 0).unwrap();
        let r = remember(&mut store, d, NOW + 100, NOW, &ReplaySettings::default());
        assert_eq!(r, Ok(REPLAYED));
    }

    /// A store where another worker remembers `theirs` between each read and write, for
    /// the first `races` writes.
    struct Racing {
        inner: MemoryStore,
        races: u32,
        theirs: [u8; 16],
    }

    impl Store for Racing {
        fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
            self.inner.get(key)
        }

        fn set_if_cas(&mut self, key: &str, bytes: &[u8], cas: u32) -> Result<(), StoreError> {
            if self.races > 0 {
                self.races -= 1;
                let theirs = self.theirs;
                remember(
                    &mut self.inner,
                    theirs,
                    NOW + 300,
                    NOW,
                    &ReplaySettings::default(),
                )
                .unwrap();
            }
            self.inner.set_if_cas(key, bytes, cas)
        }
    }

    /// A store with the shard present, so a lost race shows (cas 0 always wins).
    fn racing(races: u32, theirs: [u8; 16]) -> Racing {
        let mut inner = MemoryStore::default();
        remember(
            &mut inner,
            digest(2, 999),
            NOW + 300,
            NOW,
            &ReplaySettings::default(),
        )
        .unwrap();
        Racing {
            inner,
            races,
            theirs,
        }
    }

    #[test]
    fn two_workers_seeing_the_same_proof_cannot_both_take_it_first() {
        let d = digest(2, 1);
        let mut store = racing(1, d);
        // The other worker wrote it between our read and our write: we lose the CAS, read
        // again and find it.
        assert_eq!(
            remember(&mut store, d, NOW + 300, NOW, &ReplaySettings::default()),
            Ok(REPLAYED)
        );
    }

    #[test]
    fn a_lost_race_on_another_proof_is_retried_and_both_are_kept() {
        let mine = digest(2, 1);
        let theirs = digest(2, 2);
        let mut store = racing(1, theirs);
        let r = remember(&mut store, mine, NOW + 300, NOW, &ReplaySettings::default());
        assert_eq!(r, Ok(first(false)));
        let digests: Vec<[u8; 16]> = stored(&store.inner, 2).iter().map(|e| e.digest).collect();
        assert!(digests.contains(&mine) && digests.contains(&theirs));
    }

    /// A store another worker writes to between every read and write.
    struct Always(MemoryStore);

    impl Store for Always {
        fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
            self.0.get(key)
        }

        fn set_if_cas(&mut self, key: &str, bytes: &[u8], cas: u32) -> Result<(), StoreError> {
            let theirs = self.0.get(key)?.map_or(0, |v| v.cas);
            self.0.set_if_cas(key, &[FORMAT], theirs)?;
            self.0.set_if_cas(key, bytes, cas)
        }
    }

    /// A store that cannot be reached.
    struct Down;

    impl Store for Down {
        fn get(&self, _: &str) -> Result<Option<Versioned>, StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }

        fn set_if_cas(&mut self, _: &str, _: &[u8], _: u32) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("down".into()))
        }
    }

    #[test]
    fn a_store_that_cannot_answer_is_an_error_never_a_first() {
        let mut always = Always(racing(0, digest(2, 2)).inner);
        let r = remember(
            &mut always,
            digest(2, 1),
            NOW + 300,
            NOW,
            &ReplaySettings::default(),
        );
        assert_eq!(r, Err(ReplayError::Contended));
        assert_eq!(ReplayError::Contended.code(), "dpop_replay_store_contended");
        let r = remember(
            &mut Down,
            digest(2, 1),
            NOW + 300,
            NOW,
            &ReplaySettings::default(),
        );
        let down = ReplayError::Store(StoreError::Unavailable("down".into()));
        assert_eq!(r, Err(down.clone()));
        assert_eq!(down.code(), "dpop_replay_store_unavailable");
    }
}

//! Verified sessions shared by every worker VM of an Envoy, so a token is verified once per
//! Envoy rather than once per worker, and stays verified across a plugin configuration
//! update (shared data outlives it under the same `vm_id`).
//!
//! What is kept, by the token's keyed digest (HMAC-SHA256, 16 bytes; never the token): the
//! verified claims, the algorithm and the fingerprint of the key that verified them, `exp`
//! and `iat`. A worker that finds an entry checks the fingerprint against its current keys
//! and runs the claims checks again under its current configuration
//! ([`crate::token::verify::recheck_claims`]) before it trusts the entry; a removed or
//! rotated key, a narrowed algorithm list, another audience or an expired token all make the
//! entry useless, and the token is verified in full.
//!
//! The digest key is 32 random bytes the first VM publishes in shared data
//! ([`current_digest_key`]); every VM reads it from there, so all compute the same
//! digests, and nobody outside the Envoy process can compute one.
//!
//! Bounded: the sharded record sets of `prompts::shard` (1,024 shards), `capacity` entries
//! in all (the configured `token_cache_entries`), at most [`MAX_PAYLOAD_BYTES`] each; a write
//! drops expired entries first, then those expiring soonest. Claims that do not fit are not
//! shared (that worker keeps them in its own cache). Bytes of another format read as
//! absent and are replaced.

use crate::claims::Claims;
pub use crate::digest::{DigestKey, TokenDigest};
use crate::prompts::shard::{secs32, u32_at, Layout, Record};
use crate::store::{Store, StoreError, UpdateError};
use crate::token::jose::Algorithm;
use crate::token::jwks::KeyFingerprint;

/// Bytes of one stored chunk of an entry.
const CHUNK_BYTES: usize = 64;
/// Chunks an entry takes at most.
const MAX_CHUNKS: usize = 64;
/// The largest stored entry: header and claims.
pub const MAX_PAYLOAD_BYTES: usize = CHUNK_BYTES * MAX_CHUNKS;
/// Bytes before the claims: algorithm, fingerprint, exp, iat flag, iat, claims length.
const HEADER_BYTES: usize = 1 + 16 + 4 + 1 + 4 + 2;

/// Where the digest key is published.
pub const DIGEST_KEY_SLOT: &str = "mfa_gate.sessions.key.v1";
/// Format byte of the digest key slot.
const DIGEST_KEY_FORMAT: u8 = 1;

/// The shared layout for `capacity` entries (the prefix carries the format version).
fn layout(capacity: usize) -> Layout {
    Layout {
        prefix: "mfa_gate.sessions.v1",
        shards: 1024,
        format: 1,
        entry_bytes: CHUNK_BYTES,
        max_entries: MAX_CHUNKS,
        capacity,
    }
}

/// The published digest key; when none is readable, publishes `fresh()` (32 random bytes)
/// and returns whichever key the slot then holds, so VMs racing to publish end up agreeing.
/// `None`: the store failed, or no randomness was available.
pub fn current_digest_key<S, F>(store: &mut S, fresh: F) -> Option<DigestKey>
where
    S: Store + ?Sized,
    F: FnOnce() -> Option<[u8; 32]>,
{
    let current = store.get(DIGEST_KEY_SLOT).ok()?;
    if let Some(key) = current.as_ref().and_then(|v| parse_digest_key(&v.bytes)) {
        return Some(key);
    }
    let mut bytes = vec![DIGEST_KEY_FORMAT];
    bytes.extend_from_slice(&fresh()?);
    let cas = current.map_or(0, |v| v.cas);
    match store.set_if_cas(DIGEST_KEY_SLOT, &bytes, cas) {
        Ok(()) | Err(StoreError::CasMismatch) => {}
        Err(StoreError::Unavailable(_)) => return None,
    }
    let stored = store.get(DIGEST_KEY_SLOT).ok()??;
    parse_digest_key(&stored.bytes)
}

fn parse_digest_key(bytes: &[u8]) -> Option<DigestKey> {
    match bytes.split_first() {
        Some((&DIGEST_KEY_FORMAT, key)) => Some(DigestKey::new(key.try_into().ok()?)),
        _ => None,
    }
}

/// A session verified by some worker VM, as shared.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedSession {
    /// The verified payload.
    pub claims: Claims,
    /// The algorithm that verified it.
    pub algorithm: Algorithm,
    /// The fingerprint of the key that verified it.
    pub key_fingerprint: KeyFingerprint,
    /// `exp`.
    pub expires_at: u64,
    /// `iat`, when present.
    pub issued_at: Option<u64>,
}

/// Why a session was not shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareError {
    /// Its claims do not fit [`MAX_PAYLOAD_BYTES`].
    TooLarge,
    /// The store failed or stayed contended.
    Store(UpdateError),
}

/// The shared sessions in a store.
#[derive(Debug, Clone, Copy)]
pub struct SharedSessions {
    layout: Layout,
}

impl SharedSessions {
    /// Sessions kept for at most `capacity` tokens in all.
    pub fn new(capacity: usize) -> Self {
        SharedSessions {
            layout: layout(capacity),
        }
    }

    /// The session shared for `digest`, if one is and it is kept past `now_secs`.
    pub fn lookup<S: Store + ?Sized>(
        &self,
        store: &S,
        digest: &TokenDigest,
        now_secs: u64,
    ) -> Result<Option<SharedSession>, StoreError> {
        let Some(record) = self.layout.read(store, &digest.0)? else {
            return Ok(None);
        };
        if u64::from(record.recency) <= now_secs {
            return Ok(None);
        }
        Ok(decode_payload(&record.entries.concat()))
    }

    /// Shares `session` for `digest` until `until` (seconds since the epoch).
    pub fn share<S: Store + ?Sized>(
        &self,
        store: &mut S,
        digest: &TokenDigest,
        session: &SharedSession,
        until: u64,
        now_secs: u64,
    ) -> Result<(), ShareError> {
        if until <= now_secs {
            return Ok(());
        }
        let payload = encode_payload(session).ok_or(ShareError::TooLarge)?;
        let record = Record {
            subject: digest.0,
            recency: secs32(until),
            entries: payload.chunks(CHUNK_BYTES).map(<[u8]>::to_vec).collect(),
        };
        self.layout
            .update(store, &digest.0, secs32(now_secs), |_| Some(record.clone()))
            .map(drop)
            .map_err(ShareError::Store)
    }

    /// Entries and bytes kept (figures, tests).
    pub fn size<S: Store + ?Sized>(&self, store: &S) -> (usize, usize) {
        self.layout.size(store)
    }
}

fn algorithm_code(algorithm: Algorithm) -> u8 {
    let at = Algorithm::ALL.iter().position(|a| *a == algorithm);
    at.and_then(|at| u8::try_from(at).ok()).unwrap_or(u8::MAX)
}

/// Header then claims JSON; `None` when it does not fit.
fn encode_payload(session: &SharedSession) -> Option<Vec<u8>> {
    let json = serde_json::to_vec(&session.claims).ok()?;
    if json.len() + HEADER_BYTES > MAX_PAYLOAD_BYTES {
        return None;
    }
    let exp = u32::try_from(session.expires_at).ok()?;
    let iat = match session.issued_at {
        Some(iat) => Some(u32::try_from(iat).ok()?),
        None => None,
    };
    let mut out = Vec::with_capacity(HEADER_BYTES + json.len());
    out.push(algorithm_code(session.algorithm));
    out.extend_from_slice(&session.key_fingerprint);
    out.extend_from_slice(&exp.to_be_bytes());
    out.push(u8::from(iat.is_some()));
    out.extend_from_slice(&iat.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&u16::try_from(json.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&json);
    Some(out)
}

/// The session in a payload (padding after the claims ignored); `None` if it is not one.
fn decode_payload(bytes: &[u8]) -> Option<SharedSession> {
    let algorithm = *Algorithm::ALL.get(usize::from(*bytes.first()?))?;
    let key_fingerprint: KeyFingerprint = bytes.get(1..17)?.try_into().ok()?;
    let expires_at = u64::from(u32_at(bytes, 17)?);
    let issued_at = match *bytes.get(21)? {
        0 => None,
        1 => Some(u64::from(u32_at(bytes, 22)?)),
        _ => return None,
    };
    let len = usize::from(u16::from_be_bytes([*bytes.get(26)?, *bytes.get(27)?]));
    let json = bytes.get(HEADER_BYTES..HEADER_BYTES + len)?;
    let claims: Claims = serde_json::from_slice(json).ok()?;
    Some(SharedSession {
        claims,
        algorithm,
        key_fingerprint,
        expires_at,
        issued_at,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use serde_json::json;

    fn session(claims: serde_json::Value) -> SharedSession {
        SharedSession {
            claims: claims.as_object().unwrap().clone(),
            algorithm: Algorithm::ES256,
            key_fingerprint: [7; 16],
            expires_at: 1_100,
            issued_at: Some(990),
        }
    }

    fn key(store: &mut MemoryStore) -> DigestKey {
        current_digest_key(store, || Some([3; 32])).unwrap()
    }

    #[test]
    fn the_first_published_key_is_the_one_every_vm_uses() {
        let mut store = MemoryStore::default();
        let first = current_digest_key(&mut store, || Some([1; 32])).unwrap();
        let second = current_digest_key(&mut store, || Some([2; 32])).unwrap();
        assert_eq!(first, second, "the second VM reads the published key");
        assert_eq!(first.digest(b"t"), second.digest(b"t"));
        assert_ne!(first.digest(b"t"), DigestKey::new([2; 32]).digest(b"t"));
        assert_eq!(format!("{first:?}"), "DigestKey(..)");
        // No randomness and nothing published: no key (so nothing is shared).
        assert_eq!(
            current_digest_key(&mut MemoryStore::default(), || None),
            None
        );
    }

    #[test]
    fn a_garbage_key_slot_is_replaced() {
        let mut store = MemoryStore::default();
        store.set_if_cas(DIGEST_KEY_SLOT, b"\x09junk", 0).unwrap();
        let key = current_digest_key(&mut store, || Some([5; 32])).unwrap();
        assert_eq!(key, DigestKey::new([5; 32]));
    }

    #[test]
    fn sessions_round_trip_until_their_end() {
        let mut store = MemoryStore::default();
        let digest = key(&mut store).digest(b"token-one");
        let shared = SharedSessions::new(100);
        let s = session(json!({"iss":"https://idp","sub":"alice","amr":["hwk"]}));
        shared.share(&mut store, &digest, &s, 1_160, 1_000).unwrap();
        assert_eq!(shared.lookup(&store, &digest, 1_159).unwrap(), Some(s));
        assert_eq!(shared.lookup(&store, &digest, 1_160).unwrap(), None);
        let other = key(&mut store).digest(b"token-two");
        assert_eq!(shared.lookup(&store, &other, 1_000).unwrap(), None);
        // Only the digest names the entry: the token is nowhere in shared data.
        let layout = layout(100);
        let shard = layout.key(layout.shard_of(&digest.0));
        let bytes = store.get(&shard).unwrap().unwrap().bytes;
        assert!(!bytes.windows(9).any(|w| w == b"token-one"));
    }

    #[test]
    fn oversized_claims_are_not_shared() {
        let mut store = MemoryStore::default();
        let digest = key(&mut store).digest(b"t");
        let big = "x".repeat(MAX_PAYLOAD_BYTES);
        let s = session(json!({ "sub": "bob", "groups": big }));
        let got = SharedSessions::new(10).share(&mut store, &digest, &s, 2_000, 1_000);
        assert_eq!(got, Err(ShareError::TooLarge));
    }

    #[test]
    fn the_set_stays_bounded_and_drops_the_soonest_to_expire() {
        let mut store = MemoryStore::default();
        let k = key(&mut store);
        let shared = SharedSessions::new(2048);
        let s = session(json!({"sub":"c"}));
        for n in 0..10_000u64 {
            let digest = k.digest(&n.to_be_bytes());
            shared
                .share(&mut store, &digest, &s, 5_000 + n, 1_000)
                .unwrap();
        }
        let (entries, _) = shared.size(&store);
        assert!(entries <= 2048, "{entries} entries kept");
        let newest = k.digest(&9_999u64.to_be_bytes());
        assert!(shared.lookup(&store, &newest, 1_000).unwrap().is_some());
    }

    #[test]
    fn bytes_of_another_format_read_as_absent() {
        let bad = [0xff, 1, 2, 3];
        assert_eq!(decode_payload(&bad), None);
        assert_eq!(decode_payload(&[]), None);
        let mut good = encode_payload(&session(json!({"sub":"d"}))).unwrap();
        good[21] = 9;
        assert_eq!(decode_payload(&good), None, "bad iat flag");
    }
}

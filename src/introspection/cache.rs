//! The shared cache of introspection answers, by the token's keyed digest (never the token):
//! active answers until `min(exp, now + cache_ttl_secs)`, inactive ones for
//! `inactive_ttl_secs`. Shared by every worker VM through [`crate::store`], in the sharded,
//! bounded record sets of `prompts::shard` (256 shards, 20,000 answers in all): a write
//! drops expired answers first, then those expiring soonest. An answer's payload is a kind
//! byte, a length and the claims as compact JSON, at most [`MAX_PAYLOAD_BYTES`]; bytes of
//! another format read as absent and are replaced.

use super::answer::{Active, Answer};
use crate::claims::Claims;
use crate::prompts::shard::{secs32, Layout, Record};
use crate::store::{Store, StoreError, UpdateError};

/// Bytes of one stored chunk of an answer.
const CHUNK_BYTES: usize = 32;
/// Chunks an answer takes at most.
const MAX_CHUNKS: usize = 32;
/// The largest stored answer: kind byte, length, claims.
pub const MAX_PAYLOAD_BYTES: usize = CHUNK_BYTES * MAX_CHUNKS;

/// Where answers are kept (the prefix carries the format version).
const SHARED: Layout = Layout {
    prefix: "mfa_gate.introspection.v1",
    shards: 256,
    format: 1,
    entry_bytes: CHUNK_BYTES,
    max_entries: MAX_CHUNKS,
    capacity: 20_000,
};

/// The claims kept when an answer's claims do not fit: what sessions, assurance and
/// revocation read.
const CORE_CLAIMS: [&str; 12] = [
    "iss",
    "sub",
    "sid",
    "jti",
    "exp",
    "iat",
    "auth_time",
    "amr",
    "acr",
    "cnf",
    "email",
    "client_id",
];

const KIND_INACTIVE: u8 = 0;
const KIND_ACTIVE: u8 = 1;

pub use crate::digest::{DigestKey, TokenDigest};

/// The key of the token digests, derived from the client secret (which every VM reads
/// from its environment), so every VM computes the same digest and nobody without the
/// secret can test a guessed token against shared data.
pub fn digest_key(client_secret: &[u8]) -> DigestKey {
    DigestKey::derive(b"mfa-gate introspection cache key v1", client_secret)
}

/// A cached answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Cached {
    /// Active, with its claims, until `until`.
    Active { claims: Claims, until: u64 },
    /// Inactive until `until`.
    Inactive { until: u64 },
}

impl Cached {
    /// Until when it is kept (seconds since the epoch).
    pub fn until(&self) -> u64 {
        match self {
            Cached::Active { until, .. } | Cached::Inactive { until } => *until,
        }
    }
}

/// How long answers are kept.
#[derive(Debug, Clone, Copy)]
pub struct Ttl {
    /// Active answers, at most (and never past their `exp`).
    pub active_secs: u64,
    /// Inactive answers.
    pub inactive_secs: u64,
}

/// Why an answer was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RememberError {
    /// Even its core claims do not fit [`MAX_PAYLOAD_BYTES`].
    TooLarge,
    /// The store failed or stayed contended.
    Store(UpdateError),
}

/// The cache of answers in a store.
#[derive(Debug, Clone, Copy)]
pub struct AnswerCache {
    layout: Layout,
}

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache { layout: SHARED }
    }
}

impl AnswerCache {
    /// The answer stored for `digest`, if one is and it has not expired.
    pub fn lookup<S: Store + ?Sized>(
        &self,
        store: &S,
        digest: &TokenDigest,
        now_secs: u64,
    ) -> Result<Option<Cached>, StoreError> {
        let Some(record) = self.layout.read(store, &digest.0)? else {
            return Ok(None);
        };
        let until = u64::from(record.recency);
        if until <= now_secs {
            return Ok(None);
        }
        Ok(decode_payload(&record.entries.concat(), until))
    }

    /// Stores `answer` for `digest` and returns it as cached. An active answer whose `exp`
    /// has passed is kept as inactive.
    pub fn remember<S: Store + ?Sized>(
        &self,
        store: &mut S,
        digest: &TokenDigest,
        answer: &Answer,
        ttl: Ttl,
        now_secs: u64,
    ) -> Result<Cached, RememberError> {
        let cached = as_cached(answer, ttl, now_secs);
        let payload = encode_payload(&cached).ok_or(RememberError::TooLarge)?;
        let recency = secs32(cached.until());
        let entries: Vec<Vec<u8>> = payload.chunks(CHUNK_BYTES).map(<[u8]>::to_vec).collect();
        let record = Record {
            subject: digest.0,
            recency,
            entries,
        };
        self.layout
            .update(store, &digest.0, secs32(now_secs), |_| Some(record.clone()))
            .map_err(RememberError::Store)?;
        Ok(cached)
    }

    /// Answers and bytes kept (figures, tests).
    pub fn size<S: Store + ?Sized>(&self, store: &S) -> (usize, usize) {
        self.layout.size(store)
    }
}

/// The cached form of an answer at `now_secs`.
fn as_cached(answer: &Answer, ttl: Ttl, now_secs: u64) -> Cached {
    let inactive = Cached::Inactive {
        until: now_secs.saturating_add(ttl.inactive_secs),
    };
    match answer {
        Answer::Inactive => inactive,
        Answer::Active(Active { claims, exp }) => {
            let ttl_end = now_secs.saturating_add(ttl.active_secs);
            let until = exp.map_or(ttl_end, |exp| exp.min(ttl_end));
            if until <= now_secs {
                return inactive;
            }
            Cached::Active {
                claims: claims.clone(),
                until,
            }
        }
    }
}

/// Kind byte, claims length (u16), claims; `None` when even the core claims do not fit.
fn encode_payload(cached: &Cached) -> Option<Vec<u8>> {
    let claims = match cached {
        Cached::Inactive { .. } => return Some(vec![KIND_INACTIVE, 0, 0]),
        Cached::Active { claims, .. } => claims,
    };
    let fits = |json: &[u8]| json.len() + 3 <= MAX_PAYLOAD_BYTES;
    let mut json = serde_json::to_vec(claims).ok()?;
    if !fits(&json) {
        let core: Claims = (claims.iter())
            .filter(|(name, _)| CORE_CLAIMS.contains(&name.as_str()))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        json = serde_json::to_vec(&core).ok()?;
    }
    if !fits(&json) {
        return None;
    }
    let len = u16::try_from(json.len()).ok()?;
    let mut out = Vec::with_capacity(json.len() + 3);
    out.push(KIND_ACTIVE);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    Some(out)
}

/// The answer in a payload (padding after the claims ignored); `None` if it is not one.
fn decode_payload(bytes: &[u8], until: u64) -> Option<Cached> {
    let (&kind, rest) = bytes.split_first()?;
    let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
    let json = rest.get(2..2 + len)?;
    match kind {
        KIND_INACTIVE if len == 0 => Some(Cached::Inactive { until }),
        KIND_ACTIVE => {
            let claims: Claims = serde_json::from_slice(json).ok()?;
            Some(Cached::Active { claims, until })
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use serde_json::json;

    const TTL: Ttl = Ttl {
        active_secs: 300,
        inactive_secs: 10,
    };

    fn active(exp: Option<u64>) -> Answer {
        let claims = json!({"iss":"https://idp","sub":"alice","amr":["hwk"]});
        Answer::Active(Active {
            claims: claims.as_object().unwrap().clone(),
            exp,
        })
    }

    fn key() -> DigestKey {
        digest_key(b"client secret")
    }

    #[test]
    fn digests_are_keyed_and_stable() {
        let a = key().digest(b"token-1");
        assert_eq!(a, key().digest(b"token-1"));
        assert_ne!(a, key().digest(b"token-2"));
        assert_ne!(a, digest_key(b"other secret").digest(b"token-1"));
        assert_eq!(format!("{:?}", key()), "DigestKey(..)");
    }

    #[test]
    fn active_answers_round_trip_until_the_earlier_of_exp_and_ttl() {
        let cache = AnswerCache::default();
        let mut store = MemoryStore::default();
        let d = key().digest(b"tok");
        let got = cache
            .remember(&mut store, &d, &active(Some(1_100)), TTL, 1_000)
            .unwrap();
        assert_eq!(got.until(), 1_100, "exp comes first");
        let Some(Cached::Active { claims, until }) = cache.lookup(&store, &d, 1_050).unwrap()
        else {
            panic!("active");
        };
        assert_eq!(
            (claims.get("sub").unwrap(), until),
            (&json!("alice"), 1_100)
        );
        assert_eq!(cache.lookup(&store, &d, 1_100).unwrap(), None, "expired");
        let got = cache
            .remember(&mut store, &d, &active(None), TTL, 2_000)
            .unwrap();
        assert_eq!(got.until(), 2_300, "the TTL bounds it");
        // No token bytes in shared data: only the digest names the record.
        let shard = SHARED.key(SHARED.shard_of(&d.0));
        let bytes = store.get(&shard).unwrap().unwrap().bytes;
        assert!(!bytes.windows(3).any(|w| w == b"tok"));
    }

    #[test]
    fn inactive_answers_and_past_exp_are_kept_briefly() {
        let cache = AnswerCache::default();
        let mut store = MemoryStore::default();
        let d = key().digest(b"t");
        let got = cache
            .remember(&mut store, &d, &Answer::Inactive, TTL, 1_000)
            .unwrap();
        assert_eq!(got, Cached::Inactive { until: 1_010 });
        assert_eq!(
            cache.lookup(&store, &d, 1_009).unwrap(),
            Some(Cached::Inactive { until: 1_010 })
        );
        assert_eq!(cache.lookup(&store, &d, 1_010).unwrap(), None);
        let got = cache
            .remember(&mut store, &d, &active(Some(900)), TTL, 1_000)
            .unwrap();
        assert_eq!(got, Cached::Inactive { until: 1_010 }, "exp passed");
    }

    #[test]
    fn oversized_claims_keep_the_core_or_are_refused() {
        let cache = AnswerCache::default();
        let mut store = MemoryStore::default();
        let d = key().digest(b"t");
        let mut claims = json!({"sub":"bob","amr":["otp"]})
            .as_object()
            .unwrap()
            .clone();
        claims.insert("scope".into(), json!("x".repeat(2_000)));
        let answer = Answer::Active(Active { claims, exp: None });
        cache.remember(&mut store, &d, &answer, TTL, 0).unwrap();
        let Some(Cached::Active { claims, .. }) = cache.lookup(&store, &d, 1).unwrap() else {
            panic!("active");
        };
        assert!(claims.get("scope").is_none());
        assert_eq!(claims.get("amr").unwrap(), &json!(["otp"]));
        let mut claims = Claims::new();
        claims.insert("sub".into(), json!("y".repeat(2_000)));
        let answer = Answer::Active(Active { claims, exp: None });
        assert_eq!(
            cache.remember(&mut store, &d, &answer, TTL, 0),
            Err(RememberError::TooLarge)
        );
    }

    #[test]
    fn the_cache_is_bounded_expired_first_then_soonest_to_expire() {
        let cache = AnswerCache {
            layout: Layout {
                prefix: "test.introspection",
                shards: 1,
                capacity: 3,
                ..SHARED
            },
        };
        let mut store = MemoryStore::default();
        let d = |n: u8| key().digest(&[n]);
        let short = Ttl {
            active_secs: 5,
            ..TTL
        };
        cache
            .remember(&mut store, &d(1), &active(None), short, 100)
            .unwrap(); // until 105
        cache
            .remember(&mut store, &d(2), &active(None), TTL, 100)
            .unwrap(); // until 400
        cache
            .remember(&mut store, &d(3), &Answer::Inactive, TTL, 100)
            .unwrap(); // until 110
                       // Full: the one expiring soonest (1) goes.
        cache
            .remember(&mut store, &d(4), &active(None), TTL, 101)
            .unwrap();
        assert_eq!(cache.lookup(&store, &d(1), 101).unwrap(), None);
        assert!(cache.lookup(&store, &d(3), 101).unwrap().is_some());
        assert_eq!(cache.size(&store).0, 3);
        // Later, the expired inactive one (3) goes first, not the live ones.
        cache
            .remember(&mut store, &d(5), &active(None), TTL, 200)
            .unwrap();
        assert!(cache.lookup(&store, &d(2), 200).unwrap().is_some());
        assert!(cache.lookup(&store, &d(4), 200).unwrap().is_some());
        assert!(cache.lookup(&store, &d(5), 200).unwrap().is_some());
        assert_eq!(cache.size(&store).0, 3);
    }

    #[test]
    fn the_shared_layout_holds_twenty_thousand_answers() {
        assert_eq!(SHARED.shards, 256);
        assert_eq!(SHARED.capacity, 20_000);
        let cache = AnswerCache::default();
        let mut store = MemoryStore::default();
        for n in 0..25_000u32 {
            let d = key().digest(&n.to_be_bytes());
            cache
                .remember(&mut store, &d, &Answer::Inactive, TTL, 0)
                .unwrap();
        }
        let (answers, _) = cache.size(&store);
        assert!(answers <= 256 * 79, "{answers}");
        assert!(answers > 15_000, "{answers}");
    }

    #[test]
    fn garbage_payloads_read_as_absent() {
        assert_eq!(decode_payload(&[], 5), None);
        assert_eq!(decode_payload(&[1, 0], 5), None);
        assert_eq!(decode_payload(&[1, 0, 9, b'{', b'}'], 5), None, "short");
        assert_eq!(
            decode_payload(&[1, 0, 2, b'[', b']'], 5),
            None,
            "not an object"
        );
        assert_eq!(decode_payload(&[7, 0, 0], 5), None, "unknown kind");
        assert_eq!(
            decode_payload(&[0, 0, 0, 0, 0], 5),
            Some(Cached::Inactive { until: 5 })
        );
    }
}

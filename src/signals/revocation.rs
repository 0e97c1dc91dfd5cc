//! The revocation set every worker VM shares: which sessions, subjects and tokens are no
//! longer good, kept in shared data through [`crate::store`]'s bounded CAS loop.
//!
//! **What an entry means.** An entry names an identifier of one issuer (a `sid`, a `sub`,
//! an email or opaque claim, a `jti`) and a time: every token of that issuer carrying the
//! identifier and issued (`iat`) at or before `revoked_before` is revoked, or, for
//! [`Effect::LowerAssurance`], must step up. A token without `iat` counts as issued at 0,
//! so every entry naming it covers it. Identifiers are kept as 16-byte SHA-256 digests
//! (never the values), so shared data holds no personal data and entries have one size.
//!
//! **Bounded.** An entry is dropped once `drop_after` (its time plus the issuer's maximum
//! token lifetime) has passed: no token it covers can still be valid. Entries live in
//! [`SHARDS`] shards by digest, each capped at `max_entries / SHARDS`. When a shard is full
//! its oldest entries are folded into their issuer's *horizon*: one entry per issuer that
//! revokes every token of that issuer issued at or before it. The horizon is raised (and
//! written) before the entries are dropped, so reaching the cap never re-admits a revoked
//! session; it logs out, early, the sessions of that issuer older than the folded entries.
//!
//! **Read cheaply.** Every write bumps one generation key. A VM's [`LocalCopy`] reads
//! only that key per request while nothing changed; after a change it re-reads (and
//! re-decodes) only the shards the session's digests fall in, and only if their version
//! moved.

use crate::store::{self, Store, StoreError, UpdateError};
use smallvec::SmallVec;

/// Number of shards the entries are spread over.
pub const SHARDS: usize = 32;
/// The shared-data key prefix (the format version is part of it).
pub const KEY_PREFIX: &str = "mfa_gate.revocation.v1";
/// Format version of every value under [`KEY_PREFIX`].
const FORMAT: u8 = 1;
/// Bytes of one encoded entry.
const ENTRY_BYTES: usize = 16 + 1 + 4 + 8 + 8 + 1 + 1;
/// Event ids remembered for replay detection.
pub const SEEN_EVENTS: usize = 8192;
/// Attempts to fold and write a full shard before giving up.
const OVERFLOW_ATTEMPTS: u32 = 4;

/// What an identifier is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifierKind {
    /// `sid`.
    SessionId = 1,
    /// `sub`.
    Subject = 2,
    /// The configured email claim.
    Email = 3,
    /// The configured claim for opaque subject identifiers.
    Opaque = 4,
    /// `jti`.
    TokenId = 5,
    /// The issuer itself (a horizon: every token issued before a time).
    Issuer = 6,
}

impl IdentifierKind {
    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::SessionId,
            2 => Self::Subject,
            3 => Self::Email,
            4 => Self::Opaque,
            5 => Self::TokenId,
            6 => Self::Issuer,
            _ => return None,
        })
    }

    /// The name in decision records and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionId => "session",
            Self::Subject => "subject",
            Self::Email => "email",
            Self::Opaque => "opaque",
            Self::TokenId => "token",
            Self::Issuer => "issuer",
        }
    }
}

/// What an entry does to the tokens it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    /// Their assurance counts as the lowest: any rule with a requirement asks for step-up.
    LowerAssurance = 1,
    /// They are refused (401 `invalid_token`, reason `session_revoked`).
    Revoke = 2,
}

/// Where an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A Security Event Token pushed to the listener (RFC 8935).
    Push = 1,
    /// A Security Event Token polled from a transmitter (RFC 8936).
    Poll = 2,
    /// An OpenID Connect back-channel logout token.
    Logout = 3,
    /// The gate's own `revoke` decision.
    Gate = 4,
    /// Folded into an issuer horizon when a shard was full.
    Overflow = 5,
    /// Listed by an operator (e.g. `mfa-gate explain --revoked`).
    Operator = 6,
}

impl Source {
    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::Push,
            2 => Self::Poll,
            3 => Self::Logout,
            4 => Self::Gate,
            5 => Self::Overflow,
            6 => Self::Operator,
            _ => return None,
        })
    }

    /// The name in decision records, logs and counters.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::Poll => "poll",
            Self::Logout => "backchannel_logout",
            Self::Gate => "gate",
            Self::Overflow => "overflow",
            Self::Operator => "operator",
        }
    }
}

/// A 16-byte digest naming an identifier of an issuer.
pub type Digest = [u8; 16];

/// The digest of `value` as an identifier of `kind` issued by `issuer`.
pub fn digest(kind: IdentifierKind, issuer: &str, value: &str) -> Digest {
    let mut input = Vec::with_capacity(issuer.len() + value.len() + 2);
    input.push(kind as u8);
    input.extend_from_slice(issuer.as_bytes());
    input.push(0);
    input.extend_from_slice(value.as_bytes());
    let full = hmac_sha256::Hash::hash(&input);
    let mut digest = [0u8; 16];
    digest.copy_from_slice(&full[..16]);
    digest
}

/// An issuer's short tag (the first bytes of its digest), kept with each entry so a full
/// shard can fold entries into their issuer's horizon.
pub fn issuer_tag(issuer: &str) -> u32 {
    let d = digest(IdentifierKind::Issuer, issuer, "");
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

fn horizon_digest(tag: u32) -> Digest {
    let mut digest = [0u8; 16];
    digest[0] = IdentifierKind::Issuer as u8;
    digest[1..5].copy_from_slice(&tag.to_be_bytes());
    digest
}

/// One revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Which identifier ([`digest`]).
    pub digest: Digest,
    /// What kind of identifier it is.
    pub kind: IdentifierKind,
    /// The issuer's [`issuer_tag`].
    pub issuer_tag: u32,
    /// Tokens issued at or before this time (seconds since the epoch) are covered.
    pub revoked_before: u64,
    /// When the entry may be dropped: no token it covers can be valid after it.
    pub drop_after: u64,
    /// What it does.
    pub effect: Effect,
    /// Where it came from.
    pub source: Source,
}

impl Entry {
    /// An entry for identifier `value` of `kind` issued by `issuer`, covering tokens
    /// issued at or before `revoked_before`, kept until `revoked_before` plus the issuer's
    /// maximum token lifetime (and `now_secs`, for entries about the past) has passed.
    pub fn new(
        issuer: &str,
        kind: IdentifierKind,
        value: &str,
        revoked_before: u64,
        lifetime: Lifetime,
        effect: Effect,
        source: Source,
    ) -> Entry {
        Entry {
            digest: digest(kind, issuer, value),
            kind,
            issuer_tag: issuer_tag(issuer),
            revoked_before,
            drop_after: lifetime.drop_after(revoked_before),
            effect,
            source,
        }
    }

    /// An entry for an identifier known by its digest (a session's own [`SessionKeys`]).
    pub fn from_digest(
        digest: Digest,
        kind: IdentifierKind,
        issuer_tag: u32,
        revoked_before: u64,
        lifetime: Lifetime,
        effect: Effect,
        source: Source,
    ) -> Entry {
        Entry {
            digest,
            kind,
            issuer_tag,
            revoked_before,
            drop_after: lifetime.drop_after(revoked_before),
            effect,
            source,
        }
    }

    fn shard(&self) -> usize {
        usize::from(self.digest[15]) % SHARDS
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.digest);
        out.push(self.kind as u8);
        out.extend_from_slice(&self.issuer_tag.to_be_bytes());
        out.extend_from_slice(&self.revoked_before.to_be_bytes());
        out.extend_from_slice(&self.drop_after.to_be_bytes());
        out.push(self.effect as u8);
        out.push(self.source as u8);
    }

    fn decode(bytes: &[u8]) -> Option<Entry> {
        let digest: Digest = bytes.get(..16)?.try_into().ok()?;
        let kind = IdentifierKind::from_byte(*bytes.get(16)?)?;
        let issuer_tag = u32::from_be_bytes(bytes.get(17..21)?.try_into().ok()?);
        let revoked_before = u64::from_be_bytes(bytes.get(21..29)?.try_into().ok()?);
        let drop_after = u64::from_be_bytes(bytes.get(29..37)?.try_into().ok()?);
        let effect = match *bytes.get(37)? {
            1 => Effect::LowerAssurance,
            2 => Effect::Revoke,
            _ => return None,
        };
        let source = Source::from_byte(*bytes.get(38)?)?;
        Some(Entry {
            digest,
            kind,
            issuer_tag,
            revoked_before,
            drop_after,
            effect,
            source,
        })
    }

    /// Folds `other` (same digest) into this entry: the later time, the longer keep, the
    /// stronger effect.
    fn absorb(&mut self, other: &Entry) {
        if other.revoked_before > self.revoked_before {
            self.revoked_before = other.revoked_before;
            self.source = other.source;
        }
        self.drop_after = self.drop_after.max(other.drop_after);
        self.effect = self.effect.max(other.effect);
    }
}

/// How long an issuer's tokens can live, and the clock skew allowed: together they say
/// when an entry may be dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// The issuer's maximum token lifetime (`exp - iat`), in seconds.
    pub max_token_lifetime_secs: u64,
    /// The clock skew allowed on `exp`.
    pub clock_skew_secs: u64,
    /// Now, seconds since the epoch.
    pub now_secs: u64,
}

impl Lifetime {
    fn drop_after(&self, revoked_before: u64) -> u64 {
        revoked_before
            .max(self.now_secs)
            .saturating_add(self.max_token_lifetime_secs)
            .saturating_add(self.clock_skew_secs)
    }
}

/// A session's digests, worked out once when it is established.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionKeys {
    /// The issuer's [`issuer_tag`].
    pub issuer_tag: u32,
    /// The digests of its identifiers, with their kinds.
    pub digests: SmallVec<[(IdentifierKind, Digest); 4]>,
    /// `iat` (0 when the token has none).
    pub issued_at: u64,
}

/// A session's identifiers, as read from its claims.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identifiers<'a> {
    pub session_id: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub email: Option<&'a str>,
    pub opaque: Option<&'a str>,
    pub token_id: Option<&'a str>,
}

impl SessionKeys {
    /// The digests of a session of `issuer` with these identifiers and `iat`.
    pub fn new(issuer: &str, ids: Identifiers<'_>, issued_at: Option<u64>) -> SessionKeys {
        let mut digests = SmallVec::new();
        let named = [
            (IdentifierKind::SessionId, ids.session_id),
            (IdentifierKind::Subject, ids.subject),
            (IdentifierKind::Email, ids.email),
            (IdentifierKind::Opaque, ids.opaque),
            (IdentifierKind::TokenId, ids.token_id),
        ];
        for (kind, value) in named {
            if let Some(value) = value {
                digests.push((kind, digest(kind, issuer, value)));
            }
        }
        SessionKeys {
            issuer_tag: issuer_tag(issuer),
            digests,
            issued_at: issued_at.unwrap_or(0),
        }
    }
}

/// The entry that covers a session, as the decision record tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// What identifier matched.
    pub kind: IdentifierKind,
    /// Where the entry came from.
    pub source: Source,
    /// The entry's time.
    pub revoked_before: u64,
    /// What it does.
    pub effect: Effect,
}

/// A shard (or the horizons) as decoded: entries sorted by digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries(Vec<Entry>);

impl Entries {
    /// Decodes a stored value; `None` when it is not one this build reads.
    pub fn decode(bytes: &[u8]) -> Option<Entries> {
        let payload = store::decode(FORMAT, bytes, usize::MAX).ok()?;
        if payload.len() % ENTRY_BYTES != 0 {
            return None;
        }
        let mut entries = Vec::with_capacity(payload.len() / ENTRY_BYTES);
        for chunk in payload.chunks_exact(ENTRY_BYTES) {
            entries.push(Entry::decode(chunk)?);
        }
        entries.sort_unstable_by_key(|e| e.digest);
        Some(Entries(entries))
    }

    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(1 + self.0.len() * ENTRY_BYTES);
        bytes.push(FORMAT);
        for entry in &self.0 {
            entry.encode_into(&mut bytes);
        }
        bytes
    }

    /// The entry for `digest`, if any.
    pub fn find(&self, digest: &Digest) -> Option<&Entry> {
        let at = self.0.binary_search_by(|e| e.digest.cmp(digest)).ok()?;
        self.0.get(at)
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries, sorted by digest.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.0.iter()
    }

    fn merge(&mut self, entry: &Entry) -> bool {
        match self.0.binary_search_by(|e| e.digest.cmp(&entry.digest)) {
            Ok(at) => {
                let Some(current) = self.0.get_mut(at) else {
                    return false;
                };
                let before = *current;
                current.absorb(entry);
                *current != before
            }
            Err(at) => {
                self.0.insert(at, *entry);
                true
            }
        }
    }

    fn prune(&mut self, now_secs: u64) -> usize {
        let before = self.0.len();
        self.0.retain(|e| e.drop_after >= now_secs);
        before - self.0.len()
    }
}

/// The shared-data key of shard `index`.
pub fn shard_key(index: usize) -> String {
    format!("{KEY_PREFIX}.shard.{index}")
}
/// The shared-data key of the issuer horizons.
pub const HORIZONS_KEY: &str = "mfa_gate.revocation.v1.horizons";
/// The shared-data key bumped by every write (read on every gated request).
pub const GENERATION_KEY: &str = "mfa_gate.revocation.v1.generation";
/// The shared-data key of the event ids already processed.
pub const SEEN_KEY: &str = "mfa_gate.revocation.v1.seen";

/// What a session is, according to the revocation set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Nothing covers it.
    Good,
    /// Covered by this entry (the strongest, when several do).
    Covered(Hit),
    /// The store cannot be read: revocations cannot be checked.
    Unknown,
}

/// A VM's copy of the shards it has read, kept until the generation key changes.
#[derive(Debug, Default)]
pub struct LocalCopy {
    /// The generation key's version when the copies were last known current.
    generation: Option<u32>,
    /// Per shard (and the horizons, at index [`SHARDS`]): version and entries.
    copies: Vec<Option<(u32, Entries)>>,
    /// Which copies are known current under `generation` (bit per index).
    current: u64,
}

impl LocalCopy {
    /// The standing of the session with `keys`, reading the store only as far as needed.
    pub fn standing<S: Store + ?Sized>(&mut self, store: &S, keys: &SessionKeys) -> Standing {
        let generation = match store.get(GENERATION_KEY) {
            Ok(g) => g.map(|v| v.cas),
            Err(_) => return Standing::Unknown,
        };
        let Some(generation) = generation else {
            // Nothing was ever written.
            self.generation = None;
            return Standing::Good;
        };
        if self.generation != Some(generation) {
            self.generation = Some(generation);
            self.current = 0;
        }
        if self.copies.len() != SHARDS + 1 {
            self.copies = vec![None; SHARDS + 1];
        }
        let mut strongest: Option<Hit> = None;
        let mut consider = |entry: &Entry, kind: IdentifierKind| {
            if keys.issued_at > entry.revoked_before {
                return;
            }
            let hit = Hit {
                kind,
                source: entry.source,
                revoked_before: entry.revoked_before,
                effect: entry.effect,
            };
            if strongest.is_none_or(|s| hit.effect > s.effect) {
                strongest = Some(hit);
            }
        };
        let horizon = horizon_digest(keys.issuer_tag);
        match self.entries(store, SHARDS) {
            Ok(entries) => {
                if let Some(entry) = entries.find(&horizon) {
                    consider(entry, IdentifierKind::Issuer);
                }
            }
            Err(()) => return Standing::Unknown,
        }
        for (kind, digest) in &keys.digests {
            let shard = usize::from(digest[15]) % SHARDS;
            match self.entries(store, shard) {
                Ok(entries) => {
                    if let Some(entry) = entries.find(digest) {
                        consider(entry, *kind);
                    }
                }
                Err(()) => return Standing::Unknown,
            }
        }
        strongest.map_or(Standing::Good, Standing::Covered)
    }

    fn entries<S: Store + ?Sized>(&mut self, store: &S, index: usize) -> Result<&Entries, ()> {
        let bit = 1u64 << index;
        let slot = self.copies.get_mut(index).ok_or(())?;
        if self.current & bit == 0 {
            let key = if index == SHARDS {
                HORIZONS_KEY.to_string()
            } else {
                shard_key(index)
            };
            match store.get(&key).map_err(|_| ())? {
                None => *slot = Some((0, Entries::default())),
                Some(v) => {
                    let stale = !matches!(slot, Some((cas, _)) if *cas == v.cas);
                    if stale {
                        *slot = Some((v.cas, Entries::decode(&v.bytes).ok_or(())?));
                    }
                }
            }
            self.current |= bit;
        }
        match slot {
            Some((_, entries)) => Ok(entries),
            None => Err(()),
        }
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Entries added or strengthened.
    pub changed: usize,
    /// Expired entries dropped on the way.
    pub expired: usize,
    /// Entries folded into an issuer horizon because their shard was full.
    pub folded: usize,
}

/// Why [`apply`] could not record every entry (those it could are recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// The store failed or stayed contended.
    Store(UpdateError),
    /// A shard stayed over its cap while other writers kept filling it.
    Full,
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Store(UpdateError::Contended) => {
                f.write_str("shared data stayed contended")
            }
            ApplyError::Store(UpdateError::Store(StoreError::CasMismatch)) => {
                f.write_str("shared data changed under the write")
            }
            ApplyError::Store(UpdateError::Store(StoreError::Unavailable(why))) => {
                write!(f, "shared data unavailable: {why}")
            }
            ApplyError::Full => f.write_str("a revocation shard stayed full"),
        }
    }
}

/// Records `entries` in the shared set, at most `max_entries` in all (spread over the
/// shards), dropping expired entries on the way and folding the oldest entries of a full
/// shard into their issuer's horizon (written first, so nothing is re-admitted).
pub fn apply<S: Store + ?Sized>(
    store: &mut S,
    entries: &[Entry],
    max_entries: usize,
    now_secs: u64,
) -> Result<Applied, ApplyError> {
    let per_shard = max_entries.div_ceil(SHARDS).max(1);
    let mut applied = Applied::default();
    let mut wrote = false;
    for shard in 0..SHARDS {
        let mine: SmallVec<[&Entry; 4]> = entries.iter().filter(|e| e.shard() == shard).collect();
        if mine.is_empty() {
            continue;
        }
        let result = apply_to_shard(store, shard, &mine, per_shard, now_secs, &mut applied);
        wrote |= applied.changed > 0 || applied.folded > 0;
        if let Err(e) = result {
            if wrote {
                bump_generation(store).map_err(ApplyError::Store)?;
            }
            return Err(e);
        }
    }
    if wrote || applied.expired > 0 {
        bump_generation(store).map_err(ApplyError::Store)?;
    }
    Ok(applied)
}

fn apply_to_shard<S: Store + ?Sized>(
    store: &mut S,
    shard: usize,
    mine: &[&Entry],
    per_shard: usize,
    now_secs: u64,
    applied: &mut Applied,
) -> Result<(), ApplyError> {
    let key = shard_key(shard);
    for _ in 0..OVERFLOW_ATTEMPTS {
        // Work out what would overflow, and raise those issuers' horizons first.
        let current = read_entries(store, &key)?;
        let mut next = current.clone();
        for entry in mine {
            next.merge(entry);
        }
        next.prune(now_secs);
        let fold = oldest_over_cap(&next, per_shard);
        if !fold.is_empty() {
            raise_horizons(store, &fold, now_secs)?;
        }
        let horizons = read_entries(store, HORIZONS_KEY)?;
        let mut outcome = Applied::default();
        let mut over_cap = false;
        let written = store::update(store, &key, |bytes| {
            let mut entries = bytes.and_then(Entries::decode).unwrap_or_default();
            outcome = Applied::default();
            for entry in mine {
                if entries.merge(entry) {
                    outcome.changed += 1;
                }
            }
            outcome.expired = entries.prune(now_secs);
            let before = entries.len();
            if before > per_shard {
                // Only entries their issuer's horizon already covers may go.
                entries.0.retain(|e| !covered_by_horizon(&horizons, e));
                outcome.folded = before - entries.len();
            }
            over_cap = entries.len() > per_shard;
            if over_cap || (outcome.changed == 0 && outcome.expired == 0 && outcome.folded == 0) {
                return None;
            }
            Some(entries.encode())
        });
        written.map_err(ApplyError::Store)?;
        if !over_cap {
            applied.changed += outcome.changed;
            applied.expired += outcome.expired;
            applied.folded += outcome.folded;
            return Ok(());
        }
    }
    Err(ApplyError::Full)
}

fn read_entries<S: Store + ?Sized>(store: &S, key: &str) -> Result<Entries, ApplyError> {
    let value = store
        .get(key)
        .map_err(|e| ApplyError::Store(UpdateError::Store(e)))?;
    // A value another build wrote in another format reads as empty: it is overwritten.
    Ok(value
        .and_then(|v| Entries::decode(&v.bytes))
        .unwrap_or_default())
}

/// The entries a shard must lose to fit `per_shard`: the oldest first.
fn oldest_over_cap(entries: &Entries, per_shard: usize) -> Vec<Entry> {
    let excess = entries.len().saturating_sub(per_shard);
    if excess == 0 {
        return Vec::new();
    }
    let mut by_age: Vec<Entry> = entries.0.clone();
    by_age.sort_unstable_by_key(|e| e.revoked_before);
    by_age.truncate(excess);
    by_age
}

fn covered_by_horizon(horizons: &Entries, entry: &Entry) -> bool {
    horizons
        .find(&horizon_digest(entry.issuer_tag))
        .is_some_and(|h| h.revoked_before >= entry.revoked_before && h.effect >= entry.effect)
}

/// Raises the horizon of each folded entry's issuer to cover it.
fn raise_horizons<S: Store + ?Sized>(
    store: &mut S,
    folded: &[Entry],
    now_secs: u64,
) -> Result<(), ApplyError> {
    let result = store::update(store, HORIZONS_KEY, |bytes| {
        let mut horizons = bytes.and_then(Entries::decode).unwrap_or_default();
        horizons.prune(now_secs);
        for entry in folded {
            horizons.merge(&Entry {
                digest: horizon_digest(entry.issuer_tag),
                kind: IdentifierKind::Issuer,
                issuer_tag: entry.issuer_tag,
                revoked_before: entry.revoked_before,
                drop_after: entry.drop_after,
                // A horizon revokes: a folded assurance entry errs on the safe side.
                effect: Effect::Revoke,
                source: Source::Overflow,
            });
        }
        Some(horizons.encode())
    });
    result.map(|_| ()).map_err(ApplyError::Store)
}

fn bump_generation<S: Store + ?Sized>(store: &mut S) -> Result<(), UpdateError> {
    store::update(store, GENERATION_KEY, |bytes| {
        let n = bytes
            .and_then(|b| b.get(..8))
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes);
        Some(n.wrapping_add(1).to_be_bytes().to_vec())
    })
    .map(|_| ())
}

/// Whether event `event_id` of `transmitter` was processed already (read only).
pub fn delivered_before<S: Store + ?Sized>(
    store: &S,
    transmitter: &str,
    event_id: &str,
) -> Result<bool, StoreError> {
    let id = digest(IdentifierKind::TokenId, transmitter, event_id);
    let Some(value) = store.get(SEEN_KEY)? else {
        return Ok(false);
    };
    let ids = store::decode(FORMAT, &value.bytes, usize::MAX).unwrap_or_default();
    Ok(ids.chunks_exact(16).any(|c| c == id))
}

/// Records that event `event_id` of `transmitter` was processed; returns false when it
/// already was (a redelivery: acknowledge it again, do not process it again). The last
/// [`SEEN_EVENTS`] ids are remembered.
pub fn first_delivery<S: Store + ?Sized>(
    store: &mut S,
    transmitter: &str,
    event_id: &str,
) -> Result<bool, UpdateError> {
    let id = digest(IdentifierKind::TokenId, transmitter, event_id);
    let mut first = true;
    store::update(store, SEEN_KEY, |bytes| {
        let mut ids: Vec<u8> = bytes
            .and_then(|b| store::decode(FORMAT, b, usize::MAX).ok())
            .filter(|p| p.len() % 16 == 0)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        first = !ids.chunks_exact(16).any(|c| c == id);
        if !first {
            return None;
        }
        if ids.len() >= SEEN_EVENTS * 16 {
            ids.drain(..16);
        }
        ids.extend_from_slice(&id);
        let mut out = Vec::with_capacity(ids.len() + 1);
        out.push(FORMAT);
        out.extend_from_slice(&ids);
        Some(out)
    })?;
    Ok(first)
}

/// The shared-data key of the poll lease of transmitter `name`.
pub fn lease_key(name: &str) -> String {
    format!("{KEY_PREFIX}.lease.{name}")
}

/// Takes or renews the lease on `key` for `holder` until `now + ttl`, if it is free,
/// expired or already `holder`'s. Returns whether `holder` holds it.
pub fn take_lease<S: Store + ?Sized>(
    store: &mut S,
    key: &str,
    holder: u64,
    now_secs: u64,
    ttl_secs: u64,
) -> Result<bool, UpdateError> {
    let mut held = false;
    store::update(store, key, |bytes| {
        let current = bytes.and_then(|b| {
            let holder = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
            let until = u64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
            Some((holder, until))
        });
        held = !matches!(current, Some((other, until)) if other != holder && until > now_secs);
        if !held {
            return None;
        }
        let mut value = holder.to_be_bytes().to_vec();
        value.extend_from_slice(&now_secs.saturating_add(ttl_secs).to_be_bytes());
        Some(value)
    })?;
    Ok(held)
}

/// A number no other VM sharing `store` got from it (for lease holders).
pub fn unique_id<S: Store + ?Sized>(store: &mut S) -> Result<u64, UpdateError> {
    let key = format!("{KEY_PREFIX}.vm_ids");
    let value = store::update(store, &key, |bytes| {
        let n = bytes
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes);
        Some(n.wrapping_add(1).to_be_bytes().to_vec())
    })?;
    Ok(value
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map_or(0, u64::from_be_bytes))
}

/// Size in bytes of everything the set keeps in `store` (for the figures).
pub fn stored_bytes<S: Store + ?Sized>(store: &S) -> usize {
    size(store).1
}

/// Entries (shards and horizons) and bytes the set keeps in `store`, read from the stored
/// sizes (nothing is decoded).
pub fn size<S: Store + ?Sized>(store: &S) -> (usize, usize) {
    let mut keys: Vec<String> = (0..SHARDS).map(shard_key).collect();
    keys.push(HORIZONS_KEY.to_string());
    let mut entries = 0;
    let mut bytes = 0;
    for key in &keys {
        if let Ok(Some(v)) = store.get(key) {
            entries += v.bytes.len().saturating_sub(1) / ENTRY_BYTES;
            bytes += v.bytes.len();
        }
    }
    for key in [GENERATION_KEY, SEEN_KEY] {
        if let Ok(Some(v)) = store.get(key) {
            bytes += v.bytes.len();
        }
    }
    (entries, bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const ISS: &str = "https://idp.example";

    fn lifetime(now: u64) -> Lifetime {
        Lifetime {
            max_token_lifetime_secs: 3600,
            clock_skew_secs: 60,
            now_secs: now,
        }
    }

    fn session(sid: &str, sub: &str, iat: u64) -> SessionKeys {
        let ids = Identifiers {
            session_id: Some(sid),
            subject: Some(sub),
            ..Identifiers::default()
        };
        SessionKeys::new(ISS, ids, Some(iat))
    }

    fn revoke(kind: IdentifierKind, value: &str, at: u64, now: u64) -> Entry {
        Entry::new(
            ISS,
            kind,
            value,
            at,
            lifetime(now),
            Effect::Revoke,
            Source::Push,
        )
    }

    #[test]
    fn key_constants_carry_the_prefix() {
        for key in [HORIZONS_KEY, GENERATION_KEY, SEEN_KEY] {
            assert!(key.starts_with(KEY_PREFIX), "{key}");
        }
    }

    #[test]
    fn an_entry_covers_tokens_issued_before_it_only() {
        let mut store = MemoryStore::default();
        let mut copy = LocalCopy::default();
        let old = session("s1", "alice", 100);
        assert_eq!(copy.standing(&store, &old), Standing::Good);
        let entry = revoke(IdentifierKind::Subject, "alice", 150, 160);
        apply(&mut store, &[entry], 1000, 160).unwrap();
        match copy.standing(&store, &old) {
            Standing::Covered(hit) => {
                assert_eq!(hit.kind, IdentifierKind::Subject);
                assert_eq!(hit.source, Source::Push);
            }
            other => panic!("{other:?}"),
        }
        // A session issued after the revocation (signed in again) is good.
        assert_eq!(
            copy.standing(&store, &session("s2", "alice", 151)),
            Standing::Good
        );
        // Another subject is untouched; another issuer's alice too.
        assert_eq!(
            copy.standing(&store, &session("s3", "bob", 100)),
            Standing::Good
        );
        let other = SessionKeys::new(
            "https://other",
            Identifiers {
                subject: Some("alice"),
                ..Identifiers::default()
            },
            Some(100),
        );
        assert_eq!(copy.standing(&store, &other), Standing::Good);
    }

    #[test]
    fn session_and_token_entries_match_their_identifier() {
        let mut store = MemoryStore::default();
        let mut copy = LocalCopy::default();
        let entries = [
            revoke(IdentifierKind::SessionId, "s1", 200, 200),
            revoke(IdentifierKind::TokenId, "t9", 200, 200),
        ];
        apply(&mut store, &entries, 1000, 200).unwrap();
        assert!(
            matches!(copy.standing(&store, &session("s1", "a", 100)), Standing::Covered(h) if h.kind == IdentifierKind::SessionId)
        );
        assert_eq!(
            copy.standing(&store, &session("s2", "a", 100)),
            Standing::Good
        );
        let token = SessionKeys::new(
            ISS,
            Identifiers {
                token_id: Some("t9"),
                ..Identifiers::default()
            },
            None,
        );
        assert!(
            matches!(copy.standing(&store, &token), Standing::Covered(h) if h.kind == IdentifierKind::TokenId)
        );
    }

    #[test]
    fn revoke_outranks_lower_assurance_and_a_later_time_wins() {
        let mut store = MemoryStore::default();
        let mut copy = LocalCopy::default();
        let lower = Entry::new(
            ISS,
            IdentifierKind::Subject,
            "alice",
            300,
            lifetime(300),
            Effect::LowerAssurance,
            Source::Poll,
        );
        apply(&mut store, &[lower], 1000, 300).unwrap();
        let s = session("s1", "alice", 100);
        assert!(
            matches!(copy.standing(&store, &s), Standing::Covered(h) if h.effect == Effect::LowerAssurance)
        );
        apply(
            &mut store,
            &[revoke(IdentifierKind::SessionId, "s1", 300, 300)],
            1000,
            300,
        )
        .unwrap();
        assert!(
            matches!(copy.standing(&store, &s), Standing::Covered(h) if h.effect == Effect::Revoke)
        );
    }

    #[test]
    fn entries_are_dropped_once_no_token_they_cover_can_be_valid() {
        let mut store = MemoryStore::default();
        let mut copy = LocalCopy::default();
        let alice = revoke(IdentifierKind::Subject, "alice", 1000, 1000);
        apply(&mut store, &[alice], 1000, 1000).unwrap();
        let s = session("s", "alice", 900);
        // Kept until 1000 + 3600 (lifetime) + 60 (skew): a write to its shard before then
        // keeps it, one after drops it.
        let filler = |n: u32, now: u64| {
            (0..)
                .map(|i| revoke(IdentifierKind::Subject, &format!("f{n}-{i}"), now, now))
                .find(|e| e.shard() == alice.shard())
                .unwrap()
        };
        let kept = apply(&mut store, &[filler(1, 4660)], 1000, 4660).unwrap();
        assert_eq!(kept.expired, 0);
        assert!(matches!(copy.standing(&store, &s), Standing::Covered(_)));
        let dropped = apply(&mut store, &[filler(2, 4661)], 1000, 4661).unwrap();
        assert_eq!(dropped.expired, 1);
        assert_eq!(copy.standing(&store, &s), Standing::Good);
    }

    #[test]
    fn a_full_shard_folds_its_oldest_entries_into_the_issuer_horizon() {
        let mut store = MemoryStore::default();
        let mut copy = LocalCopy::default();
        // 64 entries allowed in all: 2 per shard. Write 40 subjects, one at a time, at
        // increasing times: every shard that gets a third entry folds its oldest.
        let mut written = Vec::new();
        let mut folded = 0;
        for i in 0..200u64 {
            let e = revoke(
                IdentifierKind::Subject,
                &format!("user{i}"),
                1000 + i,
                1000 + i,
            );
            folded += apply(&mut store, &[e], 64, 1000 + i).unwrap().folded;
            written.push((format!("user{i}"), 1000 + i));
        }
        assert!(folded > 0, "some shard overflowed");
        // Every revoked subject is still refused, folded or not.
        for (sub, at) in &written {
            let s = session("x", sub, at - 1);
            assert!(
                matches!(copy.standing(&store, &s), Standing::Covered(_)),
                "{sub} was re-admitted"
            );
        }
        // A session issued after every revocation is good.
        assert_eq!(
            copy.standing(&store, &session("x", "user3", 5000)),
            Standing::Good
        );
        // Each shard holds at most its cap.
        for shard in 0..SHARDS {
            let entries = read_entries(&store, &shard_key(shard)).unwrap();
            assert!(entries.len() <= 2, "shard {shard} holds {}", entries.len());
        }
        assert!(stored_bytes(&store) < 64 * ENTRY_BYTES + 4096);
    }

    #[test]
    fn an_unchanged_store_costs_one_read() {
        struct Counting {
            inner: MemoryStore,
            reads: std::cell::Cell<u32>,
        }
        impl Store for Counting {
            fn get(&self, key: &str) -> Result<Option<store::Versioned>, StoreError> {
                self.reads.set(self.reads.get() + 1);
                self.inner.get(key)
            }
            fn set_if_cas(&mut self, key: &str, bytes: &[u8], cas: u32) -> Result<(), StoreError> {
                self.inner.set_if_cas(key, bytes, cas)
            }
        }
        let mut store = Counting {
            inner: MemoryStore::default(),
            reads: 0.into(),
        };
        apply(
            &mut store,
            &[revoke(IdentifierKind::Subject, "bob", 10, 10)],
            1000,
            10,
        )
        .unwrap();
        let mut copy = LocalCopy::default();
        let s = session("s", "alice", 5);
        copy.standing(&store, &s);
        store.reads.set(0);
        assert_eq!(copy.standing(&store, &s), Standing::Good);
        assert_eq!(store.reads.get(), 1);
        apply(
            &mut store,
            &[revoke(IdentifierKind::Subject, "alice", 10, 10)],
            1000,
            10,
        )
        .unwrap();
        assert!(matches!(copy.standing(&store, &s), Standing::Covered(_)));
    }

    #[test]
    fn redelivered_events_are_recognised_and_the_memory_is_bounded() {
        let mut store = MemoryStore::default();
        assert!(!delivered_before(&store, "t", "e1").unwrap());
        assert!(first_delivery(&mut store, "t", "e1").unwrap());
        assert!(delivered_before(&store, "t", "e1").unwrap());
        assert!(!first_delivery(&mut store, "t", "e1").unwrap());
        assert!(first_delivery(&mut store, "other", "e1").unwrap());
        for i in 0..SEEN_EVENTS + 10 {
            first_delivery(&mut store, "t", &format!("n{i}")).unwrap();
        }
        let size = store.get(SEEN_KEY).unwrap().unwrap().bytes.len();
        assert_eq!(size, 1 + SEEN_EVENTS * 16);
    }

    #[test]
    fn one_holder_has_the_lease_until_it_expires() {
        let mut store = MemoryStore::default();
        let key = lease_key("idp");
        let a = unique_id(&mut store).unwrap();
        let b = unique_id(&mut store).unwrap();
        assert_ne!(a, b);
        assert!(take_lease(&mut store, &key, a, 100, 15).unwrap());
        assert!(!take_lease(&mut store, &key, b, 110, 15).unwrap());
        assert!(take_lease(&mut store, &key, a, 110, 15).unwrap());
        assert!(take_lease(&mut store, &key, b, 126, 15).unwrap());
        assert!(!take_lease(&mut store, &key, a, 127, 15).unwrap());
    }

    #[test]
    fn a_store_written_by_another_format_reads_as_unknown_to_the_check() {
        let mut store = MemoryStore::default();
        apply(
            &mut store,
            &[revoke(IdentifierKind::Subject, "alice", 10, 10)],
            1000,
            10,
        )
        .unwrap();
        let shard = revoke(IdentifierKind::Subject, "alice", 0, 0).shard();
        let cas = store.get(&shard_key(shard)).unwrap().unwrap().cas;
        store
            .set_if_cas(&shard_key(shard), b"\x09garbage", cas)
            .unwrap();
        let g = store.get(GENERATION_KEY).unwrap().unwrap().cas;
        store.set_if_cas(GENERATION_KEY, &[0; 8], g).unwrap();
        let mut copy = LocalCopy::default();
        assert_eq!(
            copy.standing(&store, &session("s", "alice", 5)),
            Standing::Unknown
        );
    }
}

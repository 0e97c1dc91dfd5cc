//! Session establishment: from where the claims come (a token on the request, Envoy
//! jwt_authn's verified payload, or claims given to the CLI) to a [`Session`], or a typed
//! [`Refusal`] saying why there is none, or the keys still needed. It never builds a
//! reply: the engine chooses that once, from the refusal.

use crate::assurance::classify;
use crate::claims::Claims;
use crate::introspection::cache::Cached;
use crate::introspection::is_jwt_shaped;
use crate::reason::Reason;
use crate::request::RequestView;
use crate::schedule::KeysWanted;
use crate::signals::revocation::{Identifiers, SessionKeys};
use crate::store::StoreError;
use crate::token::cache::{CacheUse, TokenCache};
use crate::token::extract::{carries_other_credential, check_token, locate_token, TokenSource};
use crate::token::issuer::{issuer_index, IssuerConfig};
use crate::token::jwks::KeySet;
use crate::token::jwt_authn::decode_payload;
use crate::token::session::{Session, SessionFacts, UpstreamHeaders};
use crate::token::shared_sessions::SharedSession;
use crate::token::verify::{peek_issuer, recheck_claims, verify, VerifiedToken, VerifyError};
use std::borrow::Cow;
use std::rc::Rc;

/// The verified-session cache of one worker VM.
pub type SessionCache = TokenCache<Rc<Session>>;

/// The source label of sessions read from Envoy jwt_authn.
const JWT_AUTHN: &str = "jwt_authn";

/// Where this request's claims come from.
#[derive(Debug, Clone, Copy)]
pub enum ClaimsInput<'a> {
    /// Extract a token from the request and verify it.
    Token,
    /// Envoy jwt_authn's verified payload: `None` when absent, `Err` when unreadable.
    JwtAuthn(Option<&'a Result<Claims, String>>),
    /// The raw bytes of the `metadata` property (Envoy's serialized dynamic metadata), from
    /// which jwt_authn's payload under `payload_key` is read. Sessions are cached by these
    /// bytes, so a repeated payload is decoded and classified once.
    JwtAuthnMetadata {
        metadata: Option<&'a [u8]>,
        payload_key: &'a str,
    },
    /// Claims given directly, unverified (only the `explain --claims` CLI uses this).
    Unverified(&'a Claims),
}

/// The key set each issuer has now (inline or last good fetch), by issuer index.
pub trait KeyLookup {
    /// The keys of issuer `index`, if any are loaded.
    fn keys(&self, index: usize) -> Option<&KeySet>;

    /// The cached introspection answers, when an issuer introspects (none by default:
    /// opaque tokens are then refused as unreadable, or as unavailable when an issuer
    /// introspects).
    fn introspection(&self) -> Option<&dyn IntrospectionLookup> {
        None
    }

    /// The sessions every worker VM verified, when they are shared (none by default: each
    /// VM then verifies a token itself).
    fn shared_sessions(&self) -> Option<&dyn SharedSessionLookup> {
        None
    }
}

/// Sessions verified by any worker VM of the Envoy, shared by the token's keyed digest (the
/// lookup digests the token itself). Failures read as "none" and share nothing: the token
/// is then verified again, never trusted unverified.
pub trait SharedSessionLookup {
    /// The session some VM shared for `token`, if one is kept past `now_secs`.
    fn find(&self, token: &[u8], now_secs: u64) -> Option<SharedSession>;

    /// Shares a session this VM has just verified, until `until`.
    fn share(&self, token: &[u8], session: &SharedSession, until: u64, now_secs: u64);
}

/// The introspection answers cached for the introspecting issuer (shared by every VM, by
/// the token's keyed digest: the lookup digests the token itself).
pub trait IntrospectionLookup {
    /// The unexpired answer cached for `token` (`Ok(None)`: none; `Err`: the cache cannot
    /// be read).
    fn answer(&self, token: &[u8], now_secs: u64) -> Result<Option<Cached>, StoreError>;
}

impl KeyLookup for [Option<KeySet>] {
    fn keys(&self, index: usize) -> Option<&KeySet> {
        self.get(index).and_then(Option::as_ref)
    }
}

impl KeyLookup for Vec<Option<KeySet>> {
    fn keys(&self, index: usize) -> Option<&KeySet> {
        self.as_slice().keys(index)
    }
}

/// What establishment needs from the configuration.
pub struct Trust<'a> {
    /// Trusted issuers, by index.
    pub issuers: &'a [IssuerConfig],
    /// Where to look for the token, in order.
    pub sources: &'a [TokenSource],
    /// Token length cap, bytes.
    pub max_token_bytes: usize,
    /// The identity headers' names, rendered into each new session.
    pub upstream_headers: &'a UpstreamHeaders,
    /// When revocation is on: the claims email and opaque subjects are matched through
    /// (each session's revocation digests are worked out once, with it).
    pub revocation_claims: Option<RevocationClaims<'a>>,
    /// The claim a device's posture is read from, when one is configured.
    pub posture_claim: Option<&'a str>,
    /// The claim naming the push user (push prompts' fatigue marks), when configured.
    pub push_user_claim: Option<&'a str>,
}

/// The claims a session's email and opaque revocation identifiers are read from.
#[derive(Debug, Clone, Copy, Default)]
pub struct RevocationClaims<'a> {
    pub email: Option<&'a str>,
    pub opaque: Option<&'a str>,
    /// By issuer index: the claim naming the user at the IdP (sessions ended there).
    pub idp_user: &'a [Option<String>],
}

/// A session and how it was obtained, for the record.
pub struct Established {
    /// The session.
    pub session: Rc<Session>,
    /// Where it came from: `bearer`, `cookie:<name>`, `jwt_authn`, ...
    pub source: Cow<'static, str>,
    /// Whether the session cache was used.
    pub cache: Option<CacheUse>,
}

/// Why no session was established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalKind {
    /// No credential (or no jwt_authn payload).
    Missing,
    /// The request carries a second credential beside the one located.
    MultipleCredentials,
    /// The credential is not a valid token: the reason says why.
    Invalid(Reason),
    /// A valid token for another audience.
    WrongAudience,
    /// The token's issuer has no keys loaded.
    KeysUnavailable,
}

/// A request refused before any policy applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub kind: RefusalKind,
    /// The issuer, once the token named a trusted one.
    pub issuer: Option<usize>,
    /// Where the credential was found.
    pub source: Option<Cow<'static, str>>,
}

impl Refusal {
    fn new(kind: RefusalKind, issuer: Option<usize>, source: Option<Cow<'static, str>>) -> Self {
        Refusal {
            kind,
            issuer,
            source,
        }
    }

    /// The reason recorded and counted.
    pub fn reason(&self) -> Reason {
        match &self.kind {
            RefusalKind::Missing => Reason::Refused("missing_token"),
            RefusalKind::MultipleCredentials => Reason::Refused("multiple_credentials"),
            RefusalKind::Invalid(reason) => reason.clone(),
            RefusalKind::WrongAudience => Reason::Refused(VerifyError::WrongAudience.reason()),
            RefusalKind::KeysUnavailable => Reason::Refused("keys_unavailable"),
        }
    }
}

/// Why establishment did not end in a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotEstablished {
    /// Refused.
    Refused(Refusal),
    /// Issuer `issuer`'s keys are needed first (only when the request may fetch them).
    NeedKeys { issuer: usize, why: KeysWanted },
    /// Issuer `issuer` must introspect the request's opaque token first (only when the
    /// request may fetch: the same flag as keys).
    NeedIntrospection { issuer: usize },
}

fn refused(kind: RefusalKind, issuer: Option<usize>, source: Cow<'static, str>) -> NotEstablished {
    NotEstablished::Refused(Refusal::new(kind, issuer, Some(source)))
}

fn invalid(code: &'static str, source: Cow<'static, str>) -> NotEstablished {
    refused(RefusalKind::Invalid(Reason::Refused(code)), None, source)
}

/// One request's inputs to establishment.
pub struct Attempt<'a> {
    /// Where the claims come from.
    pub claims: ClaimsInput<'a>,
    /// The request's headers (for a token).
    pub headers: &'a dyn RequestView,
    /// Seconds since the Unix epoch.
    pub now_secs: u64,
    /// Whether [`NotEstablished::NeedKeys`] may be returned.
    pub may_fetch_keys: bool,
}

/// Establishes the session of one request.
#[inline]
pub fn establish(
    trust: &Trust<'_>,
    attempt: &Attempt<'_>,
    keys: &dyn KeyLookup,
    cache: &mut SessionCache,
) -> Result<Established, NotEstablished> {
    let now = attempt.now_secs;
    let source = Cow::Borrowed(JWT_AUTHN);
    match attempt.claims {
        ClaimsInput::JwtAuthnMetadata {
            metadata,
            payload_key,
        } => {
            refuse_second_credential(trust, attempt.headers)?;
            let bytes = metadata.filter(|b| !b.is_empty());
            if let Some(session) = bytes.and_then(|b| cache.get(b, now)) {
                return Ok(established(session, source, Some(CacheUse::Hit)));
            }
            let payload = bytes.and_then(|b| decode_payload(b, payload_key).transpose());
            let session = Rc::new(jwt_authn_session(trust, payload.as_ref())?);
            if let Some(bytes) = bytes {
                // Envoy checked exp; keep the entry no longer than the token, and at most a
                // minute when the payload carries no exp.
                let until = if session.expires_at > 0 {
                    session.expires_at
                } else {
                    now.saturating_add(60)
                };
                cache.insert(bytes, Rc::clone(&session), until, now);
            }
            Ok(established(session, source, Some(CacheUse::Miss)))
        }
        ClaimsInput::JwtAuthn(payload) => {
            refuse_second_credential(trust, attempt.headers)?;
            let session = jwt_authn_session(trust, payload)?;
            Ok(established(Rc::new(session), source, None))
        }
        ClaimsInput::Unverified(claims) => {
            let session = session_from_claims(trust, claims, "claims")?;
            let source = Cow::Borrowed("unverified_claims");
            Ok(established(Rc::new(session), source, None))
        }
        ClaimsInput::Token => token_session(trust, attempt, keys, cache),
    }
}

fn established(
    session: Rc<Session>,
    source: Cow<'static, str>,
    cache: Option<CacheUse>,
) -> Established {
    Established {
        session,
        source,
        cache,
    }
}

/// The session of the token on the request: cached, or verified now.
#[inline]
fn token_session(
    trust: &Trust<'_>,
    attempt: &Attempt<'_>,
    keys: &dyn KeyLookup,
    cache: &mut SessionCache,
) -> Result<Established, NotEstablished> {
    let now = attempt.now_secs;
    let Some(found) = locate_token(trust.sources, attempt.headers) else {
        return Err(NotEstablished::Refused(Refusal::new(
            RefusalKind::Missing,
            None,
            None,
        )));
    };
    let source = trust
        .sources
        .get(found.source)
        .map_or(Cow::Borrowed("token"), |s| s.label());
    if carries_other_credential(trust.sources, attempt.headers, found.token) {
        return Err(refused(RefusalKind::MultipleCredentials, None, source));
    }
    // A cached token passed `check_token` when it was verified: look it up first (an
    // oversized one cannot be cached, and is not worth hashing).
    let cached = (found.token.len() <= trust.max_token_bytes)
        .then(|| cache.get(found.token, now))
        .flatten();
    if let Some(session) = cached {
        return Ok(established(session, source, Some(CacheUse::Hit)));
    }
    if let Err(reason) = check_token(found.token) {
        let reason = Reason::MalformedCredential(reason);
        return Err(refused(RefusalKind::Invalid(reason), None, source));
    }
    if !is_jwt_shaped(found.token) {
        if let Some(issuer) = introspecting(trust) {
            return introspected_session(
                trust,
                attempt,
                keys,
                cache,
                issuer,
                (found.token, source),
            );
        }
    }
    let iss = peek_issuer(found.token, trust.max_token_bytes)
        .map_err(|e| invalid(e.reason(), source.clone()))?;
    let Some((index, issuer)) = find_issuer(trust, &iss) else {
        return Err(invalid("unknown_issuer", source));
    };
    let fetchable = attempt.may_fetch_keys && issuer.remote_jwks.is_some();
    let Some(keyset) = keys.keys(index) else {
        if fetchable {
            return Err(NotEstablished::NeedKeys {
                issuer: index,
                why: KeysWanted::NotLoaded,
            });
        }
        return Err(refused(RefusalKind::KeysUnavailable, Some(index), source));
    };
    if let Some(session) = shared_session(trust, (index, issuer), found.token, keys, cache, now) {
        return Ok(established(session, source, Some(CacheUse::Shared)));
    }
    let verified = match verify(found.token, keyset, &issuer.verify, now) {
        Ok(v) => v,
        Err(VerifyError::UnknownKid(_)) if fetchable => {
            return Err(NotEstablished::NeedKeys {
                issuer: index,
                why: KeysWanted::UnknownKid,
            });
        }
        Err(VerifyError::WrongAudience) => {
            return Err(refused(RefusalKind::WrongAudience, Some(index), source))
        }
        Err(e) => {
            let reason = Reason::Refused(e.reason());
            return Err(refused(RefusalKind::Invalid(reason), Some(index), source));
        }
    };
    let session = cache_verified(
        trust,
        (index, issuer),
        (found.token, &verified),
        keys,
        cache,
        now,
    );
    Ok(established(session, source, Some(CacheUse::Miss)))
}

/// The session another VM (or this one, before a configuration update) verified for
/// `token`, if its key is still one of the issuer's keys and its claims still pass today's
/// checks; kept in this VM's cache from then on.
fn shared_session(
    trust: &Trust<'_>,
    (index, issuer): (usize, &IssuerConfig),
    token: &[u8],
    keys: &dyn KeyLookup,
    cache: &mut SessionCache,
    now: u64,
) -> Option<Rc<Session>> {
    let shared = keys.shared_sessions()?.find(token, now)?;
    let keyset = keys.keys(index)?;
    if !keyset.has_key(&shared.key_fingerprint, shared.algorithm) {
        return None;
    }
    let (expires_at, issued_at) =
        recheck_claims(&shared.claims, shared.algorithm, &issuer.verify, now).ok()?;
    let session = new_session(
        trust,
        (index, issuer),
        &shared.claims,
        issued_at,
        expires_at,
    );
    let session = Rc::new(session);
    let until = expires_at.saturating_add(issuer.verify.clock_skew_secs);
    cache.insert(token, Rc::clone(&session), until, now);
    Some(session)
}

/// The session of a token just verified, kept in the VM's cache until its `exp` (plus
/// skew), and shared with the other VMs when sessions are shared.
fn cache_verified(
    trust: &Trust<'_>,
    (index, issuer): (usize, &IssuerConfig),
    (token, verified): (&[u8], &VerifiedToken),
    keys: &dyn KeyLookup,
    cache: &mut SessionCache,
    now: u64,
) -> Rc<Session> {
    let session = Rc::new(new_session(
        trust,
        (index, issuer),
        &verified.claims,
        verified.issued_at,
        verified.expires_at,
    ));
    let until = verified
        .expires_at
        .saturating_add(issuer.verify.clock_skew_secs);
    cache.insert(token, Rc::clone(&session), until, now);
    if let Some(shared) = keys.shared_sessions() {
        let entry = SharedSession {
            claims: verified.claims.clone(),
            algorithm: verified.algorithm,
            key_fingerprint: verified.key_fingerprint,
            expires_at: verified.expires_at,
            issued_at: verified.issued_at,
        };
        shared.share(token, &entry, until, now);
    }
    session
}

/// Verifies a token the gateway obtained itself from issuer `index` (the ID token of a
/// sign-in it finished) exactly as a request's token is verified, and caches its session
/// as [`establish`] would, so the browser's next request is a cache hit. Returns the
/// session and the verified claims; the error is the refusal's reason code.
pub fn verify_obtained(
    trust: &Trust<'_>,
    index: usize,
    token: &[u8],
    keys: &dyn KeyLookup,
    cache: &mut SessionCache,
    now: u64,
) -> Result<(Rc<Session>, Claims), &'static str> {
    check_token(token)?;
    let issuer = trust.issuers.get(index).ok_or("unknown_issuer")?;
    let keyset = keys.keys(index).ok_or("keys_unavailable")?;
    let verified = verify(token, keyset, &issuer.verify, now).map_err(|e| e.reason())?;
    let verified_token = (token, &verified);
    let session = cache_verified(trust, (index, issuer), verified_token, keys, cache, now);
    Ok((session, verified.claims))
}

/// The issuer that introspects opaque tokens, if one does (the configuration allows one).
fn introspecting<'t>(trust: &Trust<'t>) -> Option<(usize, &'t IssuerConfig)> {
    (trust.issuers.iter().enumerate()).find(|(_, issuer)| issuer.introspection.is_some())
}

/// The session of an opaque token, from its cached introspection answer: active → a
/// session from the answer's claims (kept in the VM's cache until the answer expires);
/// inactive → refused `token_inactive`; none yet → introspect first (when allowed), else,
/// or when the cache cannot be read, refused `introspection_unavailable` (fail closed).
fn introspected_session(
    trust: &Trust<'_>,
    attempt: &Attempt<'_>,
    keys: &dyn KeyLookup,
    cache: &mut SessionCache,
    (index, issuer): (usize, &IssuerConfig),
    (token, source): (&[u8], Cow<'static, str>),
) -> Result<Established, NotEstablished> {
    let now = attempt.now_secs;
    if token.len() > trust.max_token_bytes {
        return Err(invalid("token_too_large", source));
    }
    let unavailable = |source| {
        let reason = Reason::Refused("introspection_unavailable");
        Err(refused(RefusalKind::Invalid(reason), Some(index), source))
    };
    let answer = match keys.introspection().map(|l| l.answer(token, now)) {
        Some(Ok(answer)) => answer,
        None | Some(Err(_)) => return unavailable(source),
    };
    match answer {
        Some(Cached::Active { claims, until }) => {
            let expires_at = number_claim(&claims, "exp").unwrap_or(until);
            let issued_at = number_claim(&claims, "iat");
            let session = new_session(trust, (index, issuer), &claims, issued_at, expires_at);
            let session = Rc::new(session);
            cache.insert(token, Rc::clone(&session), until, now);
            Ok(established(session, source, Some(CacheUse::Miss)))
        }
        Some(Cached::Inactive { .. }) => {
            let reason = Reason::Refused("token_inactive");
            Err(refused(RefusalKind::Invalid(reason), Some(index), source))
        }
        None if attempt.may_fetch_keys => Err(NotEstablished::NeedIntrospection { issuer: index }),
        None => unavailable(source),
    }
}

/// Envoy's jwt_authn verified one of the request's credentials, but the payload does not
/// say which: a request carrying two different ones is refused, as on the own-verification
/// path.
fn refuse_second_credential(
    trust: &Trust<'_>,
    headers: &dyn RequestView,
) -> Result<(), NotEstablished> {
    let Some(first) = locate_token(trust.sources, headers) else {
        return Ok(());
    };
    if carries_other_credential(trust.sources, headers, first.token) {
        let source = Cow::Borrowed(JWT_AUTHN);
        return Err(refused(RefusalKind::MultipleCredentials, None, source));
    }
    Ok(())
}

/// The trusted issuer whose `iss` is exactly `iss`.
fn find_issuer<'t>(trust: &Trust<'t>, iss: &str) -> Option<(usize, &'t IssuerConfig)> {
    let index = issuer_index(trust.issuers, iss)?;
    trust.issuers.get(index).map(|issuer| (index, issuer))
}

/// The session for Envoy jwt_authn's verified payload: absent → missing token, unreadable
/// → refused.
fn jwt_authn_session(
    trust: &Trust<'_>,
    payload: Option<&Result<Claims, String>>,
) -> Result<Session, NotEstablished> {
    match payload {
        None => Err(refused(
            RefusalKind::Missing,
            None,
            Cow::Borrowed(JWT_AUTHN),
        )),
        Some(Err(_)) => Err(invalid(
            "jwt_authn_payload_unreadable",
            Cow::Borrowed(JWT_AUTHN),
        )),
        Some(Ok(claims)) => session_from_claims(trust, claims, JWT_AUTHN),
    }
}

/// The session for claims someone else verified (or nobody: `explain --claims`); `source`
/// labels a refusal.
fn session_from_claims(
    trust: &Trust<'_>,
    claims: &Claims,
    source: &'static str,
) -> Result<Session, NotEstablished> {
    let Some(iss) = string_claim(claims, "iss") else {
        return Err(invalid("missing_issuer", Cow::Borrowed(source)));
    };
    let Some(issuer) = find_issuer(trust, &iss) else {
        return Err(invalid("unknown_issuer", Cow::Borrowed(source)));
    };
    let expires_at = number_claim(claims, "exp").unwrap_or(0);
    Ok(new_session(
        trust,
        issuer,
        claims,
        number_claim(claims, "iat"),
        expires_at,
    ))
}

/// A session of an issuer (index, settings) from its claims: who, how they authenticated,
/// when.
fn new_session(
    trust: &Trust<'_>,
    (index, issuer): (usize, &IssuerConfig),
    claims: &Claims,
    issued_at: Option<u64>,
    expires_at: u64,
) -> Session {
    let revocation = trust.revocation_claims.map(|names| {
        let claim = |name: Option<&str>| name.and_then(|n| claims.get(n)).and_then(|v| v.as_str());
        let ids = Identifiers {
            session_id: claims.get("sid").and_then(|v| v.as_str()),
            subject: claims.get("sub").and_then(|v| v.as_str()),
            email: claim(names.email),
            opaque: claim(names.opaque),
            token_id: claims.get("jti").and_then(|v| v.as_str()),
        };
        SessionKeys::new(&issuer.verify.issuer, ids, issued_at)
    });
    let idp_user = (trust.revocation_claims)
        .and_then(|names| names.idp_user.get(index).cloned().flatten())
        .and_then(|claim| string_claim(claims, &claim));
    let posture_claim = trust
        .posture_claim
        .and_then(|name| claims.get(name))
        .and_then(|v| v.as_str())
        .filter(|v| v.len() <= 64)
        .map(str::to_string);
    let push_user = trust
        .push_user_claim
        .and_then(|name| string_claim(claims, name))
        .map(|value| crate::prompts::user_key(value.as_bytes()));
    let facts = SessionFacts {
        push_user,
        revocation,
        idp_user,
        binding: crate::token::binding::confirmation(claims),
        posture_claim,
        subject_key: string_claim(claims, "sub")
            .map(|sub| crate::signals::sightings::subject_key(&issuer.verify.issuer, &sub)),
        issuer_index: index,
        issuer: issuer.verify.issuer.clone(),
        subject: string_claim(claims, "sub"),
        session_id: string_claim(claims, "sid"),
        assurance: classify(claims, &issuer.classifier),
        issued_at,
        expires_at,
    };
    Session::new(facts, trust.upstream_headers)
}

fn string_claim(claims: &Claims, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

fn number_claim(claims: &Claims, name: &str) -> Option<u64> {
    let v = claims.get(name)?;
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| *f >= 0.0 && f.is_finite())
            .map(|f| f as u64)
    })
}

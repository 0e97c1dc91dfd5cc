//! JWT verification: signature (with ring), algorithm allow-list, `kid` selection and
//! registered claims (iss, aud, exp required, nbf, iat) with an explicit clock skew.
//!
//! Order of checks (each step only runs if the previous one passed):
//! 1. length cap, before any decoding ([`VerifyError::TooLarge`]);
//! 2. compact form: three base64url segments, header and payload JSON objects without
//!    duplicate members ([`VerifyError::Malformed`]);
//! 3. header `alg`: `none` ([`VerifyError::AlgNone`]), unknown ([`VerifyError::UnsupportedAlgorithm`]),
//!    not allowed for the issuer ([`VerifyError::AlgorithmNotAllowed`]); `crit`, a non-JWT
//!    `typ`, a header over [`MAX_HEADER_SEGMENT_BYTES`] and header members of an unexpected
//!    type (`cty`, `jku`, `jwk`, `x5u`, `x5t`, `x5t#S256`, `salt` not a string, `x5c` not an
//!    array of strings; null is taken as absent) are refused;
//! 4. key selection: the token's `kid` only ([`VerifyError::UnknownKid`]), or up to
//!    [`crate::token::jwks::MAX_KEYS_TRIED_WITHOUT_KID`] keys of the algorithm; HS* only with a
//!    configured secret ([`VerifyError::NoMatchingKey`]) — so an HS256 token "signed" with
//!    an RSA public key never reaches a MAC check;
//! 5. signature over the signing input (`header.payload`, as sent) with ring, by each chosen
//!    key whose `kid` agrees with the header's; a `salt` header member (a salted-HMAC
//!    extension mfa-gate does not implement) fails the check of an HS* token, and of any
//!    token when it is not base64url ([`VerifyError::BadSignature`]);
//! 6. registered claims on the JSON payload: exp, nbf, iat, iss, aud, then `sub`, `jti` and
//!    `nonce`, which must be strings when present ([`VerifyError::InvalidClaim`]).

use std::fmt;

use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
use serde_json::{Map, Value};

use crate::claims::Claims;
pub use crate::token::jose::Algorithm;
use crate::token::jose::{decode_object, decode_segment, truncate_for_log, Compact, JoseError};
use crate::token::jwks::{KeyFingerprint, KeySet, NoKey};

/// Per-issuer verification settings (compiled from configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Exact `iss` value required.
    pub issuer: String,
    /// At least one must appear in `aud` (string or array). Empty = audience not checked.
    pub audiences: Vec<String>,
    /// Allowed algorithms. HS* appear here only if a secret is configured.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerance for exp/nbf/iat, seconds (default 60).
    pub clock_skew_secs: u64,
    /// Maximum token length in bytes (default 8192).
    pub max_token_bytes: usize,
}

/// A token whose signature and registered claims were verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// The whole payload.
    pub claims: Claims,
    /// `exp`, seconds since epoch (always present: tokens without exp are rejected).
    pub expires_at: u64,
    /// `iat`, when present.
    pub issued_at: Option<u64>,
    /// The algorithm that verified it.
    pub algorithm: Algorithm,
    /// The `kid` of the key that verified it, when the key had one.
    pub kid: Option<String>,
    /// The fingerprint of the key that verified it.
    pub key_fingerprint: KeyFingerprint,
}

/// Why a token was rejected. `reason()` is a stable snake_case code for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// Over the configured maximum length.
    TooLarge { len: usize, max: usize },
    /// Not three base64url segments, bad base64, bad JSON header or payload, etc.
    Malformed(String),
    /// `alg` is `none`.
    AlgNone,
    /// `alg` is not one mfa-gate implements.
    UnsupportedAlgorithm(String),
    /// `alg` is implemented but not allowed for this issuer.
    AlgorithmNotAllowed(String),
    /// The token names a `kid` the key set does not have.
    UnknownKid(String),
    /// No key in the set fits the algorithm.
    NoMatchingKey,
    /// Signature does not verify.
    BadSignature,
    /// `exp` missing.
    MissingExp,
    /// `exp` + skew is in the past.
    Expired,
    /// `nbf` - skew is in the future.
    NotYetValid,
    /// `iat` - skew is in the future.
    IssuedInFuture,
    /// `iss` differs.
    WrongIssuer,
    /// No configured audience in `aud`.
    WrongAudience,
    /// A registered claim has the wrong JSON type (e.g. `exp` a string).
    InvalidClaim(&'static str),
    /// A validly signed JWT of another kind: a logout token or a Security Event Token
    /// (`typ` `logout+jwt` / `secevent+jwt`, or an `events` claim). IdPs sign logout tokens
    /// with their ID-token keys (Back-Channel Logout 1.0 §2.4), so one must never be taken
    /// for a session (BCL §4.1, RFC 8725 §3.11).
    NotASessionToken,
}

impl VerifyError {
    /// Stable snake_case code, e.g. `expired`, `bad_signature`, `unknown_kid`.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::TooLarge { .. } => "token_too_large",
            VerifyError::Malformed(_) => "malformed_token",
            VerifyError::AlgNone => "alg_none",
            VerifyError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            VerifyError::AlgorithmNotAllowed(_) => "algorithm_not_allowed",
            VerifyError::UnknownKid(_) => "unknown_kid",
            VerifyError::NoMatchingKey => "no_matching_key",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::MissingExp => "missing_exp",
            VerifyError::Expired => "expired",
            VerifyError::NotYetValid => "not_yet_valid",
            VerifyError::IssuedInFuture => "issued_in_future",
            VerifyError::WrongIssuer => "wrong_issuer",
            VerifyError::WrongAudience => "wrong_audience",
            VerifyError::InvalidClaim(_) => "invalid_claim",
            VerifyError::NotASessionToken => "not_a_session_token",
        }
    }
}

impl fmt::Display for VerifyError {
    /// A short message for logs. Never contains the token text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::TooLarge { len, max } => {
                write!(f, "token is {len} bytes, over the {max}-byte limit")
            }
            VerifyError::Malformed(why) => write!(f, "malformed token: {why}"),
            VerifyError::AlgNone => f.write_str("alg \"none\" is never accepted"),
            VerifyError::UnsupportedAlgorithm(alg) => write!(f, "unsupported alg {alg:?}"),
            VerifyError::AlgorithmNotAllowed(alg) => {
                write!(f, "alg {alg} is not allowed for this issuer")
            }
            VerifyError::UnknownKid(kid) => write!(f, "no key with kid {kid:?}"),
            VerifyError::NoMatchingKey => f.write_str("no key for the token's algorithm"),
            VerifyError::BadSignature => f.write_str("signature does not verify"),
            VerifyError::MissingExp => f.write_str("token has no exp claim"),
            VerifyError::NotASessionToken => {
                f.write_str("a logout token or security event token, not a session token")
            }
            VerifyError::Expired => f.write_str("token has expired"),
            VerifyError::NotYetValid => f.write_str("token is not valid yet (nbf)"),
            VerifyError::IssuedInFuture => f.write_str("token is issued in the future (iat)"),
            VerifyError::WrongIssuer => f.write_str("iss does not match"),
            VerifyError::WrongAudience => f.write_str("aud has no configured audience"),
            VerifyError::InvalidClaim(name) => write!(f, "claim {name} has an invalid value"),
        }
    }
}

impl From<JoseError> for VerifyError {
    fn from(error: JoseError) -> Self {
        match error {
            JoseError::TooLarge { len, max } => VerifyError::TooLarge { len, max },
            JoseError::Malformed(why) => VerifyError::Malformed(why),
        }
    }
}

impl From<NoKey> for VerifyError {
    fn from(error: NoKey) -> Self {
        match error {
            NoKey::UnknownKid(kid) => VerifyError::UnknownKid(kid),
            NoKey::NoMatchingKey => VerifyError::NoMatchingKey,
        }
    }
}

/// Largest NumericDate accepted for exp/nbf/iat (2106-02-07, `u32::MAX` seconds): a later
/// one is an invalid claim.
const MAX_NUMERIC_DATE: u64 = u32::MAX as u64;
/// Longest header segment accepted, in bytes (whatever `max_token_bytes` allows).
pub const MAX_HEADER_SEGMENT_BYTES: usize = 8192;
/// Header members that must be strings when present (null counts as absent).
const STRING_HEADER_MEMBERS: [&str; 7] = ["cty", "jku", "jwk", "x5u", "x5t", "x5t#S256", "salt"];
/// Claims that must be strings when present.
const STRING_CLAIMS: [&str; 3] = ["sub", "jti", "nonce"];

/// Reads the unverified `iss` of a token, only to choose which issuer's keys to try.
/// Nothing else may be trusted from it. Missing `iss` → `WrongIssuer`; non-string →
/// `InvalidClaim("iss")`.
pub fn peek_issuer(token: &[u8], max_token_bytes: usize) -> Result<String, VerifyError> {
    let compact = Compact::split(token, max_token_bytes)?;
    let payload = decode_object(compact.payload, "payload")?;
    match payload.get("iss") {
        Some(Value::String(iss)) => Ok(iss.clone()),
        Some(_) => Err(VerifyError::InvalidClaim("iss")),
        None => Err(VerifyError::WrongIssuer),
    }
}

/// Verifies `token` against `keys` and `options` at time `now_secs` (seconds since epoch).
pub fn verify(
    token: &[u8],
    keys: &KeySet,
    options: &VerifyOptions,
    now_secs: u64,
) -> Result<VerifiedToken, VerifyError> {
    let compact = Compact::split(token, options.max_token_bytes)?;
    let header = Header::parse(&compact, options, keys)?;
    let claims = decode_object(compact.payload, "payload")?;
    if header.event_token || claims.contains_key("events") {
        return Err(VerifyError::NotASessionToken);
    }
    let (kid, key_fingerprint) = check_signature(&compact, &header, keys)?;
    let registered = check_registered_claims(&claims, options, now_secs)?;
    check_string_claims(&claims)?;
    Ok(VerifiedToken {
        claims,
        expires_at: registered.expires_at,
        issued_at: registered.issued_at,
        algorithm: header.algorithm,
        kid,
        key_fingerprint,
    })
}

/// The claims checks of [`verify`] again, for a session verified earlier (by any worker
/// VM) under today's `options` and clock: the algorithm is still allowed, `exp`, `nbf`,
/// `iat`, `iss` and `aud` still pass. Returns `exp` and `iat`. The signature is not
/// checked: the caller has matched the verifying key's fingerprint to a current key.
pub fn recheck_claims(
    claims: &Claims,
    algorithm: Algorithm,
    options: &VerifyOptions,
    now_secs: u64,
) -> Result<(u64, Option<u64>), VerifyError> {
    if !options.algorithms.contains(&algorithm) {
        return Err(VerifyError::AlgorithmNotAllowed(algorithm.as_str().into()));
    }
    if claims.contains_key("events") {
        return Err(VerifyError::NotASessionToken);
    }
    let registered = check_registered_claims(claims, options, now_secs)?;
    Ok((registered.expires_at, registered.issued_at))
}

/// The result of a signature-level check: which algorithm and key accepted the JWS.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureAccepted {
    /// The algorithm that verified it.
    pub algorithm: Algorithm,
    /// The `kid` of the key that verified it.
    pub kid: Option<String>,
}

/// **Never use it alone to authorize a request.** Runs every check of
/// [`verify`] up to and including the signature (length, compact form, header, `alg`
/// allow-list, key selection, signature), but accepts a payload that is not a JWT claims
/// set (e.g. Wycheproof's `"foo"`, RFC 7520's prose) and does not check registered claims.
/// It exists so JWS conformance vectors, which carry no `exp`, can be run through the same
/// code path, and for the security event and logout tokens of the `events` module, which
/// checks their claims itself after it. A JWS counts as accepted when its signature
/// verifies with one of the keys chosen for it.
#[doc(hidden)]
pub fn verify_signature_only(
    token: &[u8],
    keys: &KeySet,
    options: &VerifyOptions,
    _now_secs: u64,
) -> Result<SignatureAccepted, VerifyError> {
    let compact = Compact::split(token, options.max_token_bytes)?;
    let header = Header::parse(&compact, options, keys)?;
    let (kid, _) = check_signature(&compact, &header, keys)?;
    Ok(SignatureAccepted {
        algorithm: header.algorithm,
        kid,
    })
}

/// The parts of the protected header that choose the key and take part in its check, and
/// whether its `typ` names an event token (`logout+jwt`, `secevent+jwt`, with or without
/// `application/`).
struct Header {
    algorithm: Algorithm,
    kid: Option<String>,
    event_token: bool,
    /// A `salt` member (not null).
    salt: Option<String>,
}

impl Header {
    /// Parses and checks the header: alg (none / unsupported / not allowed), crit, typ, kid,
    /// then its size and the types of its other members.
    fn parse(
        compact: &Compact<'_>,
        options: &VerifyOptions,
        keys: &KeySet,
    ) -> Result<Header, VerifyError> {
        let header = decode_object(compact.header, "header")?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg,
            Some(_) => return Err(malformed("header alg is not a string")),
            None => return Err(malformed("header has no alg")),
        };
        if alg.eq_ignore_ascii_case("none") {
            return Err(VerifyError::AlgNone);
        }
        let algorithm = Algorithm::parse(alg)
            .ok_or_else(|| VerifyError::UnsupportedAlgorithm(truncate_for_log(alg)))?;
        if !options.algorithms.contains(&algorithm) {
            return Err(VerifyError::AlgorithmNotAllowed(algorithm.as_str().into()));
        }
        keys.admits(algorithm)?;
        if header.contains_key("crit") {
            return Err(malformed(
                "critical header parameters (crit) are not supported",
            ));
        }
        let event_token = match header.get("typ") {
            None => false,
            Some(Value::String(typ)) => {
                let typ = typ.to_ascii_uppercase();
                if typ != "JWT" && !typ.ends_with("+JWT") {
                    return Err(malformed("header typ is not JWT"));
                }
                let kind = typ.strip_prefix("APPLICATION/").unwrap_or(&typ);
                kind == "LOGOUT+JWT" || kind == "SECEVENT+JWT"
            }
            Some(_) => return Err(malformed("header typ is not a string")),
        };
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(malformed("header kid is not a string")),
        };
        if compact.signature.is_empty() {
            return Err(malformed("empty signature segment"));
        }
        if compact.header.len() > MAX_HEADER_SEGMENT_BYTES {
            return Err(malformed("header is over 8192 bytes"));
        }
        let salt = check_member_types(&header)?;
        Ok(Header {
            algorithm,
            kid,
            event_token,
            salt,
        })
    }
}

/// The header members read as strings must be strings (or null), `x5c` an array of strings:
/// a JWS with one of another type is refused, not read one way here and another by a
/// library downstream. Returns the `salt`, if any.
fn check_member_types(header: &Map<String, Value>) -> Result<Option<String>, VerifyError> {
    let unexpected = || malformed("header has a member of an unexpected type");
    for name in STRING_HEADER_MEMBERS {
        if !matches!(
            header.get(name),
            None | Some(Value::Null | Value::String(_))
        ) {
            return Err(unexpected());
        }
    }
    match header.get("x5c") {
        None | Some(Value::Null) => {}
        Some(Value::Array(chain)) if chain.iter().all(Value::is_string) => {}
        Some(_) => return Err(unexpected()),
    }
    Ok(header
        .get("salt")
        .and_then(Value::as_str)
        .map(str::to_string))
}

/// Checks the signature with the keys chosen for the header; the `kid` and fingerprint of
/// the key that verified it.
fn check_signature(
    compact: &Compact<'_>,
    header: &Header,
    keys: &KeySet,
) -> Result<(Option<String>, KeyFingerprint), VerifyError> {
    decode_segment(compact.payload, "payload")?;
    let signature = decode_segment(compact.signature, "signature")?;
    let signing_input = compact
        .text
        .get(..compact.header.len() + 1 + compact.payload.len())
        .ok_or_else(|| malformed("token does not have exactly three segments"))?;
    let candidates = keys.candidates(header.algorithm, header.kid.as_deref())?;
    if let Some(salt) = &header.salt {
        // No salted MAC is configured, and a salt must at least be base64url.
        if header.algorithm.is_hmac() || Base64UrlSafeNoPadding::decode_to_vec(salt, None).is_err()
        {
            return Err(VerifyError::BadSignature);
        }
    }
    for candidate in candidates {
        if let (Some(wanted), Some(offered)) = (header.kid.as_deref(), candidate.kid) {
            if wanted != offered {
                continue;
            }
        }
        if candidate.key.verifies(signing_input.as_bytes(), &signature) {
            return Ok((candidate.kid.map(str::to_string), candidate.fingerprint));
        }
    }
    Err(VerifyError::BadSignature)
}

/// exp and iat read from a verified payload.
struct Registered {
    expires_at: u64,
    issued_at: Option<u64>,
}

/// The registered-claim checks, on the JSON payload itself.
fn check_registered_claims(
    claims: &Claims,
    options: &VerifyOptions,
    now_secs: u64,
) -> Result<Registered, VerifyError> {
    let exp = numeric_date(claims, "exp")?.ok_or(VerifyError::MissingExp)?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    let issuer = match claims.get("iss") {
        Some(Value::String(iss)) => Some(iss.as_str()),
        Some(_) => return Err(VerifyError::InvalidClaim("iss")),
        None => None,
    };
    let audience_matches = match claims.get("aud") {
        None => false,
        Some(Value::String(aud)) => options.audiences.iter().any(|a| a == aud),
        Some(Value::Array(items)) => {
            let mut matches = false;
            for item in items {
                let Value::String(aud) = item else {
                    return Err(VerifyError::InvalidClaim("aud"));
                };
                matches |= options.audiences.iter().any(|a| a == aud);
            }
            matches
        }
        Some(_) => return Err(VerifyError::InvalidClaim("aud")),
    };
    let skew = options.clock_skew_secs;
    if exp.saturating_add(skew) < now_secs {
        return Err(VerifyError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > now_secs.saturating_add(skew)) {
        return Err(VerifyError::NotYetValid);
    }
    if iat.is_some_and(|iat| iat > now_secs.saturating_add(skew)) {
        return Err(VerifyError::IssuedInFuture);
    }
    if issuer != Some(options.issuer.as_str()) {
        return Err(VerifyError::WrongIssuer);
    }
    if !options.audiences.is_empty() && !audience_matches {
        return Err(VerifyError::WrongAudience);
    }
    Ok(Registered {
        expires_at: exp,
        issued_at: iat,
    })
}

/// A NumericDate claim: a non-negative JSON number up to [`MAX_NUMERIC_DATE`]; fractions are
/// truncated.
pub(crate) fn numeric_date(
    claims: &Claims,
    name: &'static str,
) -> Result<Option<u64>, VerifyError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let Value::Number(number) = value else {
        return Err(VerifyError::InvalidClaim(name));
    };
    let secs = if let Some(secs) = number.as_u64() {
        secs
    } else {
        match number.as_f64() {
            Some(f) if f.is_finite() && f >= 0.0 && f <= MAX_NUMERIC_DATE as f64 => f as u64,
            _ => return Err(VerifyError::InvalidClaim(name)),
        }
    };
    if secs > MAX_NUMERIC_DATE {
        return Err(VerifyError::InvalidClaim(name));
    }
    Ok(Some(secs))
}

/// `sub`, `jti` and `nonce` are strings when present: a session's subject and a token's
/// identifiers are compared as text, so a number or null in their place is refused.
fn check_string_claims(claims: &Claims) -> Result<(), VerifyError> {
    for name in STRING_CLAIMS {
        if claims.get(name).is_some_and(|v| !v.is_string()) {
            return Err(VerifyError::InvalidClaim(name));
        }
    }
    Ok(())
}

fn malformed(why: &str) -> VerifyError {
    VerifyError::Malformed(why.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numeric_dates() {
        let claims = |v: Value| json!({ "exp": v }).as_object().unwrap().clone();
        assert_eq!(
            numeric_date(&claims(json!(1_700_000_000)), "exp"),
            Ok(Some(1_700_000_000))
        );
        assert_eq!(numeric_date(&claims(json!(10.9)), "exp"), Ok(Some(10)));
        assert_eq!(numeric_date(&claims(json!(0)), "exp"), Ok(Some(0)));
        assert_eq!(
            numeric_date(&claims(json!(u32::MAX)), "exp"),
            Ok(Some(u64::from(u32::MAX)))
        );
        for bad in [
            json!(u64::from(u32::MAX) + 1),
            json!(-1),
            json!(-0.5),
            json!("1"),
            json!(null),
        ] {
            assert_eq!(
                numeric_date(&claims(bad), "exp"),
                Err(VerifyError::InvalidClaim("exp"))
            );
        }
        assert_eq!(numeric_date(&Claims::new(), "exp"), Ok(None));
    }

    #[test]
    fn too_large_is_checked_before_anything_else() {
        let opts = VerifyOptions {
            issuer: "i".into(),
            audiences: vec![],
            algorithms: vec![Algorithm::ES256],
            clock_skew_secs: 60,
            max_token_bytes: 10,
        };
        let err = verify(&[0xff; 11], &KeySet::default(), &opts, 0).unwrap_err();
        assert_eq!(err, VerifyError::TooLarge { len: 11, max: 10 });
        assert_eq!(err.reason(), "token_too_large");
        assert_eq!(err.to_string(), "token is 11 bytes, over the 10-byte limit");
    }
}

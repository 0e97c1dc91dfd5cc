//! JWT verification with jwt-simple: signature, algorithm allow-list, `kid` selection and
//! registered claims (iss, aud, exp required, nbf, iat) with an explicit clock skew.
//!
//! Order of checks (each step only runs if the previous one passed):
//! 1. length cap, before any decoding ([`VerifyError::TooLarge`]);
//! 2. compact form: three base64url segments, header and payload JSON objects without
//!    duplicate members ([`VerifyError::Malformed`]);
//! 3. header `alg`: `none` ([`VerifyError::AlgNone`]), unknown ([`VerifyError::UnsupportedAlgorithm`]),
//!    not allowed for the issuer ([`VerifyError::AlgorithmNotAllowed`]); `crit` and a non-JWT
//!    `typ` are refused;
//! 4. key selection: the token's `kid` only ([`VerifyError::UnknownKid`]), or up to
//!    [`crate::token::jwks::MAX_KEYS_TRIED_WITHOUT_KID`] keys of the algorithm; HS* only with a
//!    configured secret ([`VerifyError::NoMatchingKey`]) — so an HS256 token "signed" with
//!    an RSA public key never reaches a MAC check;
//! 5. signature with jwt-simple, every [`VerificationOptions`] field set explicitly;
//! 6. registered claims checked again here on the JSON payload, so the precise error
//!    does not depend on jwt-simple's behaviour.

use std::collections::HashSet;
use std::fmt;

use jwt_simple::prelude::*;
use jwt_simple::JWTError;
use serde_json::Value;

use crate::claims::Claims;
pub use crate::token::jose::Algorithm;
use crate::token::jose::{decode_object, decode_segment, truncate_for_log, Compact, JoseError};
use crate::token::jwks::{KeySet, NoKey, PublicKey};

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

/// Largest NumericDate accepted for exp/nbf/iat (2106-02-07): jwt-simple's timestamps are
/// 32.32 fixed point, so larger values would wrap inside it.
const MAX_NUMERIC_DATE: u64 = u32::MAX as u64;
/// Clock skew passed to jwt-simple is capped so `now + skew` cannot overflow its clock type.
const MAX_SKEW_SECS: u64 = 1 << 24;
/// `now` passed to jwt-simple is capped for the same reason (year 2065).
const MAX_NOW_SECS: u64 = 3_000_000_000;

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
    let jwt_options = jwt_simple_options(options, header.kid.as_deref(), now_secs, true);
    let outcome = check_signature(&compact, &header, keys, jwt_options)?;
    let registered = check_registered_claims(&claims, options, now_secs)?;
    if outcome.jwt_simple_rejected_claims {
        // jwt-simple verified the signature but refused a registered claim our own checks
        // accept: name the claim jwt-simple could not read, never accept the token.
        return Err(VerifyError::InvalidClaim(claim_jwt_simple_cannot_read(
            &claims,
        )));
    }
    Ok(VerifiedToken {
        claims,
        expires_at: registered.expires_at,
        issued_at: registered.issued_at,
        algorithm: header.algorithm,
        kid: outcome.kid,
    })
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
/// allow-list, key selection, jwt-simple signature), but accepts a payload that is not a
/// JWT claims set (e.g. Wycheproof's `"foo"`, RFC 7520's prose) and does not check
/// registered claims. It exists so JWS conformance vectors, which carry no `exp`, can be
/// run through the same code path, and for the security event and logout tokens of the
/// `events` module, which checks their claims itself after it.
///
/// A JWS counts as accepted when jwt-simple returns Ok or fails only *after* its signature
/// step (claims parsing or claim validation): jwt-simple checks the signature before it
/// reads the payload, and the header was already accepted by its own header parser
/// (`Token::decode_metadata`), so such an error cannot come from anything before the signature.
#[doc(hidden)]
pub fn verify_signature_only(
    token: &[u8],
    keys: &KeySet,
    options: &VerifyOptions,
    now_secs: u64,
) -> Result<SignatureAccepted, VerifyError> {
    let compact = Compact::split(token, options.max_token_bytes)?;
    let header = Header::parse(&compact, options, keys)?;
    let jwt_options = jwt_simple_options(options, header.kid.as_deref(), now_secs, false);
    let outcome = check_signature(&compact, &header, keys, jwt_options)?;
    Ok(SignatureAccepted {
        algorithm: header.algorithm,
        kid: outcome.kid,
    })
}

/// The parts of the protected header that choose the key, and whether its `typ` names an
/// event token (`logout+jwt`, `secevent+jwt`, with or without `application/`).
struct Header {
    algorithm: Algorithm,
    kid: Option<String>,
    event_token: bool,
}

impl Header {
    /// Parses and checks the header: alg (none / unsupported / not allowed), crit, typ, kid,
    /// then asks jwt-simple's own header parser to accept it too.
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
        // jwt-simple parses the header again with stricter member types (e.g. jwk, x5c);
        // refusing here keeps every later jwt-simple error a signature or claims error.
        Token::decode_metadata(compact.text)
            .map_err(|_| malformed("header has a member of an unexpected type"))?;
        Ok(Header {
            algorithm,
            kid,
            event_token,
        })
    }
}

/// What the signature step found.
struct SignatureOutcome {
    kid: Option<String>,
    /// The signature verified but jwt-simple refused the claims (our checks decide the error).
    jwt_simple_rejected_claims: bool,
}

/// How a jwt-simple error is to be read.
enum JwtSimpleFailure {
    /// The signature (or MAC) did not verify with this key, or the key could not be used.
    Signature,
    /// The signature verified; jwt-simple refused the payload or a registered claim.
    AfterSignature,
}

fn classify(error: &jwt_simple::Error) -> JwtSimpleFailure {
    if let Some(e) = error.downcast_ref::<JWTError>() {
        return match e {
            JWTError::TokenHasExpired
            | JWTError::TokenNotValidYet
            | JWTError::ClockDrift
            | JWTError::RequiredIssuerMismatch
            | JWTError::RequiredIssuerMissing
            | JWTError::RequiredAudienceMismatch
            | JWTError::RequiredAudienceMissing
            | JWTError::TooManyAudiences => JwtSimpleFailure::AfterSignature,
            _ => JwtSimpleFailure::Signature,
        };
    }
    // The header was accepted by jwt-simple's parser beforehand and every segment decodes,
    // so a JSON error can only come from reading the claims, after the signature step.
    if error.downcast_ref::<serde_json::Error>().is_some() {
        return JwtSimpleFailure::AfterSignature;
    }
    JwtSimpleFailure::Signature
}

fn check_signature(
    compact: &Compact<'_>,
    header: &Header,
    keys: &KeySet,
    jwt_options: VerificationOptions,
) -> Result<SignatureOutcome, VerifyError> {
    // Every segment must decode before jwt-simple runs (see `classify`).
    decode_segment(compact.payload, "payload")?;
    decode_segment(compact.signature, "signature")?;
    let candidates = keys.candidates(header.algorithm, header.kid.as_deref())?;
    for candidate in candidates {
        let key: &PublicKey = candidate.key;
        match key.verify_token(compact.text, jwt_options.clone()) {
            Ok(()) => {
                return Ok(SignatureOutcome {
                    kid: candidate.kid.map(str::to_string),
                    jwt_simple_rejected_claims: false,
                })
            }
            Err(e) => match classify(&e) {
                JwtSimpleFailure::AfterSignature => {
                    return Ok(SignatureOutcome {
                        kid: candidate.kid.map(str::to_string),
                        jwt_simple_rejected_claims: true,
                    })
                }
                JwtSimpleFailure::Signature => continue,
            },
        }
    }
    Err(VerifyError::BadSignature)
}

/// jwt-simple options with every field set (its defaults are looser: 15 min tolerance,
/// 1 MB tokens, its own clock).
fn jwt_simple_options(
    options: &VerifyOptions,
    token_kid: Option<&str>,
    now_secs: u64,
    check_issuer_and_audience: bool,
) -> VerificationOptions {
    let allowed_audiences = if check_issuer_and_audience && !options.audiences.is_empty() {
        Some(
            options
                .audiences
                .iter()
                .cloned()
                .collect::<HashSet<String>>(),
        )
    } else {
        None
    };
    let allowed_issuers = if check_issuer_and_audience {
        Some(HashSet::from([options.issuer.clone()]))
    } else {
        None
    };
    VerificationOptions {
        reject_before: None,
        accept_future: false,
        required_subject: None,
        // Keys were chosen by this kid; jwt-simple checks the header agrees.
        required_key_id: token_kid.map(str::to_string),
        required_signature_type: None,
        required_content_type: None,
        required_nonce: None,
        allowed_issuers,
        allowed_audiences,
        time_tolerance: Some(Duration::from_secs(
            options.clock_skew_secs.min(MAX_SKEW_SECS),
        )),
        max_validity: None,
        max_token_length: Some(options.max_token_bytes),
        max_header_length: Some(options.max_token_bytes),
        artificial_time: Some(UnixTimeStamp::from_secs(now_secs.min(MAX_NOW_SECS))),
    }
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
/// truncated (as jwt-simple does).
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

/// The registered claim whose type jwt-simple's claims struct cannot read.
fn claim_jwt_simple_cannot_read(claims: &Claims) -> &'static str {
    for name in ["sub", "jti", "nonce"] {
        if claims.get(name).is_some_and(|v| !v.is_string()) {
            return name;
        }
    }
    "registered claims"
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

    #[test]
    fn jwt_simple_gets_every_option_from_ours() {
        let opts = VerifyOptions {
            issuer: "https://issuer".into(),
            audiences: vec!["a".into(), "b".into()],
            algorithms: vec![Algorithm::ES256],
            clock_skew_secs: 60,
            max_token_bytes: 4096,
        };
        let o = jwt_simple_options(&opts, Some("kid-1"), 1_700_000_000, true);
        assert_eq!(o.time_tolerance, Some(Duration::from_secs(60)));
        assert_eq!(o.max_token_length, Some(4096));
        assert_eq!(
            o.artificial_time,
            Some(UnixTimeStamp::from_secs(1_700_000_000))
        );
        assert_eq!(o.required_key_id.as_deref(), Some("kid-1"));
        assert_eq!(
            o.allowed_issuers,
            Some(HashSet::from(["https://issuer".to_string()]))
        );
        assert_eq!(o.allowed_audiences.map(|a| a.len()), Some(2));
        assert!(!o.accept_future);
        let signature_only = jwt_simple_options(&opts, None, u64::MAX, false);
        assert_eq!(signature_only.allowed_issuers, None);
        assert_eq!(signature_only.allowed_audiences, None);
        assert_eq!(
            signature_only.artificial_time,
            Some(UnixTimeStamp::from_secs(MAX_NOW_SECS))
        );
    }
}

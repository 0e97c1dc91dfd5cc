//! JWT verification with jwt-simple: signature, algorithm allow-list, `kid` selection and
//! registered claims (iss, aud, exp required, nbf, iat) with an explicit clock skew.
//!
//! OWNER: tokens helper. Interface fixed below; implementation to be completed.

use crate::claims::Claims;
use crate::jwks::KeySet;

/// A JWS algorithm mfa-gate can verify. `none` is not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
    HS256,
    HS384,
    HS512,
}

impl Algorithm {
    /// All algorithms.
    pub const ALL: [Algorithm; 12] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
    ];

    /// The JOSE `alg` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
        }
    }

    /// Parses the JOSE spelling (case-sensitive, as RFC 7515 requires). `none` → None.
    pub fn parse(s: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// True for the HMAC family, which needs an explicitly configured secret.
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }
}

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
        }
    }
}

/// Reads the unverified `iss` of a token, only to choose which issuer's keys to try.
/// Nothing else may be trusted from it.
pub fn peek_issuer(token: &[u8], max_token_bytes: usize) -> Result<String, VerifyError> {
    let _ = (token, max_token_bytes);
    Err(VerifyError::Malformed("not implemented".into()))
}

/// Verifies `token` against `keys` and `options` at time `now_secs` (seconds since epoch).
pub fn verify(
    token: &[u8],
    keys: &KeySet,
    options: &VerifyOptions,
    now_secs: u64,
) -> Result<VerifiedToken, VerifyError> {
    let _ = (token, keys, options, now_secs);
    Err(VerifyError::Malformed("not implemented".into()))
}

//! Revocation signals in, typed actions out: Security Event Tokens (RFC 8417) as the OpenID
//! Shared Signals Framework 1.0 (SSF) profiles them, OpenID Connect Back-Channel Logout 1.0
//! logout tokens, and the RFC 8936 poll bodies that carry SETs. Pure: no SDK, no
//! configuration; the caller passes what to expect ([`Expect`]) and the time.
//!
//! - `envelope`: what both kinds of token share (explicit `typ`, signature through
//!   [`crate::token::verify`], `iss`, `aud`, `iat`, `jti`);
//! - `subject`: RFC 9493 / SSF §3 subject identifiers → [`Target`]s;
//! - `kinds`: CAEP 1.0 / RISC 1.0 event types → [`Action`];
//! - `set`: a SET ([`verify_set`]); `logout`: a logout token ([`verify_logout_token`]);
//! - `poll`: RFC 8936 request and response bodies.
//!
//! Replay (a `jti` seen before) is not checked here: the revocation store does it.

use std::fmt;

use crate::token::jose::Algorithm;
use crate::token::jwks::KeySet;
use crate::token::verify::VerifyError;

mod envelope;
mod subject;
mod kinds;
mod set;
mod logout;
mod poll;

pub use kinds::{BACKCHANNEL_LOGOUT, CAEP_PREFIX, RISC_PREFIX};
pub use logout::{logout_token_from_form, verify_logout_token};
pub use poll::{
    parse_poll_response, poll_request_body, PollError, PollResponse, PolledSet, SetErr,
    MAX_POLL_BODY_BYTES, MAX_POLL_SETS,
};
pub use set::verify_set;

/// What a transmitter's tokens must be: its issuer, the audience mfa-gate answers to, its
/// keys and algorithms, and the limits session tokens also have.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Exact `iss` required.
    pub issuer: &'a str,
    /// Must appear in `aud` (a string or an array).
    pub audience: &'a str,
    /// The transmitter's keys (its `jwks_uri`).
    pub keys: &'a KeySet,
    /// Allowed algorithms (`none` is never representable).
    pub algorithms: &'a [Algorithm],
    /// Tolerance for `iat` in the future and for `exp`, seconds.
    pub clock_skew_secs: u64,
    /// Longest token accepted, bytes.
    pub max_token_bytes: usize,
}

/// One identifier a revocation applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identifier {
    /// A session (`sid`, or the `session` member of a complex subject).
    SessionId(String),
    /// A subject (`sub`): every session of that user.
    Subject(String),
    /// An email address, as sent (matched through a configured claim).
    Email(String),
    /// An opaque identifier, or the single value of the `account`, `phone_number`, `did`
    /// and `uri` formats (matched through a configured claim).
    Opaque(String),
    /// One token (`jti` of SSF's `jwt_id` format).
    TokenId(String),
}

/// Who an event applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// issuer: the token issuer the identifier belongs to when the subject names one
    /// (iss_sub's iss; a logout token's iss); None = every issuer the transmitter speaks for.
    pub issuer: Option<String>,
    /// The identifier.
    pub identifier: Identifier,
}

/// What mfa-gate does about an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// End the targets' sessions issued before the event.
    Revoke,
    /// Lower the targets' assurance: their next privileged request must step up.
    LowerAssurance,
    /// Acknowledge and ignore (an event type or change mfa-gate does not act on).
    Nothing,
}

/// A verified event.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEvent {
    /// The token's `jti` (for replay detection and acknowledgement).
    pub jti: String,
    /// The token's `iat`.
    pub issued_at: u64,
    /// When the event took effect: its `event_timestamp` when that is a number, else
    /// `iat`; never later than now + clock skew.
    pub at: u64,
    /// Short name, e.g. `caep.session-revoked`, `risc.account-disabled`,
    /// `backchannel-logout`, `unknown`.
    pub kind: &'static str,
    /// What to do.
    pub action: Action,
    /// Whom it applies to (empty only when `action` is [`Action::Nothing`]).
    pub targets: Vec<Target>,
}

/// Why an event token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// The JWS itself: length, form, `alg`, key, signature, or a time claim.
    Token(VerifyError),
    /// Header `typ` missing or not the token's kind.
    WrongType,
    /// `iss` is not the transmitter's.
    WrongIssuer,
    /// `aud` does not contain the expected audience.
    WrongAudience,
    /// A required claim is absent.
    MissingClaim(&'static str),
    /// A claim has the wrong type or value.
    InvalidClaim(&'static str),
    /// A claim the profile forbids is present.
    ForbiddenClaim(&'static str),
    /// `events` does not hold exactly one event (SSF §4.2.1).
    EventCount(usize),
    /// A subject identifier format mfa-gate cannot match (the format, shortened).
    UnsupportedSubject(String),
    /// Anything else that is not a well-formed event.
    Malformed(String),
}

impl From<VerifyError> for EventError {
    fn from(error: VerifyError) -> Self {
        EventError::Token(error)
    }
}

impl EventError {
    /// The RFC 8935 §2.4 error code for a push answer or a poll `setErrs` entry.
    pub fn err_code(&self) -> &'static str {
        match self {
            EventError::Token(error) => match error {
                VerifyError::AlgNone
                | VerifyError::UnsupportedAlgorithm(_)
                | VerifyError::AlgorithmNotAllowed(_)
                | VerifyError::UnknownKid(_)
                | VerifyError::NoMatchingKey
                | VerifyError::BadSignature => "invalid_key",
                VerifyError::WrongIssuer => "invalid_issuer",
                VerifyError::WrongAudience => "invalid_audience",
                _ => "invalid_request",
            },
            EventError::WrongIssuer | EventError::MissingClaim("iss") => "invalid_issuer",
            EventError::InvalidClaim("iss") => "invalid_issuer",
            EventError::WrongAudience | EventError::MissingClaim("aud") => "invalid_audience",
            EventError::InvalidClaim("aud") => "invalid_audience",
            _ => "invalid_request",
        }
    }

    /// Stable snake_case code for logs and counters, e.g. `bad_signature`, `wrong_issuer`,
    /// `missing_jti`, `forbidden_exp`.
    pub fn reason(&self) -> String {
        match self {
            EventError::Token(error) => error.reason().to_string(),
            EventError::WrongType => "wrong_type".into(),
            EventError::WrongIssuer => "wrong_issuer".into(),
            EventError::WrongAudience => "wrong_audience".into(),
            EventError::MissingClaim(claim) => format!("missing_{claim}"),
            EventError::InvalidClaim(claim) => format!("invalid_{claim}"),
            EventError::ForbiddenClaim(claim) => format!("forbidden_{claim}"),
            EventError::EventCount(_) => "event_count".into(),
            EventError::UnsupportedSubject(_) => "unsupported_subject".into(),
            EventError::Malformed(_) => "malformed_event".into(),
        }
    }
}

impl fmt::Display for EventError {
    /// A short message for logs and `description`. Never contains the token text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::Token(error) => error.fmt(f),
            EventError::WrongType => f.write_str("header typ is not the token's kind"),
            EventError::WrongIssuer => f.write_str("iss is not the transmitter's"),
            EventError::WrongAudience => f.write_str("aud does not contain this receiver"),
            EventError::MissingClaim(claim) => write!(f, "claim {claim} is missing"),
            EventError::InvalidClaim(claim) => write!(f, "claim {claim} has an invalid value"),
            EventError::ForbiddenClaim(claim) => write!(f, "claim {claim} is not allowed here"),
            EventError::EventCount(count) => {
                write!(f, "events holds {count} events, not exactly one")
            }
            EventError::UnsupportedSubject(format) => {
                write!(f, "subject format {format:?} is not supported")
            }
            EventError::Malformed(why) => write!(f, "malformed event: {why}"),
        }
    }
}

#[cfg(test)]
pub(crate) mod fixture;

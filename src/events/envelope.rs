//! What a Security Event Token and a logout token share, checked in this order:
//! 1. the explicit `typ` header (RFC 8725 §3.11; RFC 8417 §2.3 and SSF 1.0 §4.1.1
//!    `secevent+jwt`; Back-Channel Logout 1.0 §2.4 `logout+jwt`), with or without the
//!    `application/` prefix and in any case (RFC 7515 §4.1.9), before any key is used;
//! 2. the signature, by the session tokens' own verifier
//!    ([`crate::token::verify::verify_signature_only`]): length cap, compact form, `alg`
//!    allow-list (`none` refused, HS* only with a configured secret), `kid` selection;
//! 3. `iss` (RFC 8417 §2.2, SSF §4.1.3), `aud` (SSF §4.1.8, BCL §2.4), `iat` required and
//!    not in the future beyond the skew, `nbf` when present, and `jti` (RFC 8417 §2.2);
//! 4. `events`: a JSON object (RFC 8417 §2.2); how many members it may have is the
//!    caller's rule.

use serde_json::{Map, Value};

use crate::claims::Claims;
use crate::events::{EventError, Expect};
use crate::token::jose::{decode_object, Compact};
use crate::token::verify::{numeric_date, verify_signature_only, VerifyError, VerifyOptions};

/// Longest `jti` accepted, bytes (it is kept for replay detection and acknowledgement).
pub(super) const MAX_JTI_BYTES: usize = 256;

/// A token whose type, signature and shared claims were checked.
pub(super) struct Envelope {
    /// The payload, without `events`.
    pub claims: Claims,
    /// `iat`.
    pub issued_at: u64,
    /// `jti`.
    pub jti: String,
    /// The `events` object (taken out of `claims`).
    pub events: Map<String, Value>,
}

/// Opens `token` as a token of media type `kind` (`secevent+jwt`, `logout+jwt`).
pub(super) fn open(
    token: &[u8],
    expect: &Expect<'_>,
    now_secs: u64,
    kind: &str,
) -> Result<Envelope, EventError> {
    let compact = Compact::split(token, expect.max_token_bytes).map_err(VerifyError::from)?;
    let header = decode_object(compact.header, "header").map_err(VerifyError::from)?;
    if !is_type(header.get("typ"), kind) {
        return Err(EventError::WrongType);
    }
    let options = VerifyOptions {
        issuer: expect.issuer.to_string(),
        audiences: vec![expect.audience.to_string()],
        algorithms: expect.algorithms.to_vec(),
        clock_skew_secs: expect.clock_skew_secs,
        max_token_bytes: expect.max_token_bytes,
    };
    verify_signature_only(token, expect.keys, &options, now_secs)?;
    let mut claims = decode_object(compact.payload, "payload").map_err(VerifyError::from)?;
    match claims.get("iss") {
        None => return Err(EventError::MissingClaim("iss")),
        Some(Value::String(iss)) if iss == expect.issuer => {}
        Some(Value::String(_)) => return Err(EventError::WrongIssuer),
        Some(_) => return Err(EventError::InvalidClaim("iss")),
    }
    if !audience_contains(claims.get("aud"), expect.audience)? {
        return Err(EventError::WrongAudience);
    }
    let skew = expect.clock_skew_secs;
    let issued_at = time_claim(&claims, "iat")?.ok_or(EventError::MissingClaim("iat"))?;
    if issued_at > now_secs.saturating_add(skew) {
        return Err(VerifyError::IssuedInFuture.into());
    }
    if time_claim(&claims, "nbf")?.is_some_and(|nbf| nbf > now_secs.saturating_add(skew)) {
        return Err(VerifyError::NotYetValid.into());
    }
    let jti = match claims.get("jti") {
        None => return Err(EventError::MissingClaim("jti")),
        Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= MAX_JTI_BYTES => jti.clone(),
        Some(_) => return Err(EventError::InvalidClaim("jti")),
    };
    let events = match claims.remove("events") {
        None => return Err(EventError::MissingClaim("events")),
        Some(Value::Object(events)) => events,
        Some(_) => return Err(EventError::InvalidClaim("events")),
    };
    Ok(Envelope {
        claims,
        issued_at,
        jti,
        events,
    })
}

/// Whether header `typ` names media type `kind` (RFC 7515 §4.1.9: `application/` may be
/// omitted; media types compare case-insensitively).
fn is_type(typ: Option<&Value>, kind: &str) -> bool {
    let Some(Value::String(typ)) = typ else {
        return false;
    };
    let short = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ.as_str(),
    };
    short.eq_ignore_ascii_case(kind)
}

/// Whether `aud` (a string or an array of strings) contains `audience`.
fn audience_contains(aud: Option<&Value>, audience: &str) -> Result<bool, EventError> {
    match aud {
        None => Err(EventError::MissingClaim("aud")),
        Some(Value::String(aud)) => Ok(aud == audience),
        Some(Value::Array(items)) => {
            let mut found = false;
            for item in items {
                let Value::String(aud) = item else {
                    return Err(EventError::InvalidClaim("aud"));
                };
                found |= aud == audience;
            }
            Ok(found)
        }
        Some(_) => Err(EventError::InvalidClaim("aud")),
    }
}

/// A NumericDate claim of `object` (the payload, or an event's members).
pub(super) fn time_claim(
    object: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, EventError> {
    numeric_date(object, name).map_err(|_| EventError::InvalidClaim(name))
}

/// When an event took effect: `claimed` (its `event_timestamp`), else `issued_at`; never
/// later than now + skew, so a clock far ahead cannot revoke sessions not yet begun.
pub(super) fn effective_time(
    claimed: Option<u64>,
    issued_at: u64,
    expect: &Expect<'_>,
    now_secs: u64,
) -> u64 {
    claimed
        .unwrap_or(issued_at)
        .min(now_secs.saturating_add(expect.clock_skew_secs))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typ_is_matched_without_case_and_with_or_without_application() {
        for typ in [
            "secevent+jwt",
            "SECEVENT+JWT",
            "application/secevent+jwt",
            "Application/SecEvent+JWT",
        ] {
            assert!(is_type(Some(&json!(typ)), "secevent+jwt"), "{typ}");
        }
        for typ in [
            json!("JWT"),
            json!("logout+jwt"),
            json!("application/jwt"),
            json!("text/secevent+jwt"),
            json!("secevent+jwt "),
            json!("applicationsecevent+jwt"),
            json!(["secevent+jwt"]),
            json!(null),
        ] {
            assert!(!is_type(Some(&typ), "secevent+jwt"), "{typ}");
        }
        assert!(!is_type(None, "secevent+jwt"));
        // A multi-byte character at the prefix boundary does not panic.
        assert!(!is_type(
            Some(&json!("applicatioñsecevent+jwt")),
            "secevent+jwt"
        ));
    }

    #[test]
    fn audience_may_be_a_string_or_an_array() {
        assert_eq!(audience_contains(Some(&json!("a")), "a"), Ok(true));
        assert_eq!(audience_contains(Some(&json!(["b", "a"])), "a"), Ok(true));
        assert_eq!(audience_contains(Some(&json!(["b"])), "a"), Ok(false));
        assert_eq!(audience_contains(Some(&json!([])), "a"), Ok(false));
        assert_eq!(
            audience_contains(Some(&json!(["a", 1])), "a"),
            Err(EventError::InvalidClaim("aud"))
        );
        assert_eq!(
            audience_contains(Some(&json!({"a": 1})), "a"),
            Err(EventError::InvalidClaim("aud"))
        );
        assert_eq!(
            audience_contains(None, "a"),
            Err(EventError::MissingClaim("aud"))
        );
    }
}

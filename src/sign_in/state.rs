//! A sign-in's state: the random `state` sent to the provider, and the cookie that binds it
//! to the browser that started the sign-in.
//!
//! The cookie is `v1.<payload>.<mac>`, both base64url: the payload is a small JSON object
//! (the state, the return URL, what was asked, when it was issued), the MAC an HMAC-SHA256
//! over it with the state key. The PKCE verifier and the nonce are never stored: both are
//! HMACs of the state under the same key, so only a holder of the key can work them out
//! from a cookie, and the cookie carries no secret of its own.

use super::Asked;
use crate::assurance::Level;
use ct_codecs::{Base64UrlSafeNoPadding, Decoder, Encoder};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// The cookie format's version prefix.
const VERSION: &str = "v1";
/// The longest return URL kept (a longer one goes back to `/`).
pub const MAX_RETURN_URL: usize = 2048;
/// The largest cookie value read, bytes.
const MAX_COOKIE_BYTES: usize = 3072;

/// What a state cookie holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignIn {
    /// The `state` (22 base64url characters of 16 random bytes).
    pub state: String,
    /// Where the browser goes back: a path on this origin.
    pub return_url: String,
    /// What the step-up asked for.
    pub asked: Asked,
    /// When the sign-in began, seconds since the epoch.
    pub issued_at: u64,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    s: String,
    r: String,
    l: String,
    a: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<u64>,
    t: u64,
}

/// Why a state cookie was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// Not `v1.<payload>.<mac>` of base64url, or its JSON is not ours.
    Malformed,
    /// The MAC does not hold: altered, or made with another key.
    BadMac,
    /// Older than its lifetime (or from the future).
    Expired,
}

impl StateError {
    /// The reason code shown and counted.
    pub fn reason(self) -> &'static str {
        match self {
            StateError::Malformed => "state_cookie_malformed",
            StateError::BadMac => "state_cookie_altered",
            StateError::Expired => "state_cookie_expired",
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap_or_default()
}

fn mac(key: &[u8], label: &[u8], data: &[u8]) -> [u8; 32] {
    let mut h = hmac_sha256::HMAC::new(key);
    h.update(label);
    h.update(data);
    h.finalize()
}

/// A new `state` from 16 random bytes.
pub fn new_state(random: &[u8; 16]) -> String {
    b64(random)
}

/// The PKCE `code_verifier` of a sign-in (43 base64url characters, RFC 7636 §4.1).
pub fn code_verifier(key: &[u8], state: &str) -> String {
    b64(&mac(key, b"mfa-gate pkce\0", state.as_bytes()))
}

/// The S256 `code_challenge` of a verifier (RFC 7636 §4.2).
pub fn code_challenge(verifier: &str) -> String {
    b64(&hmac_sha256::Hash::hash(verifier.as_bytes()))
}

/// The `nonce` of a sign-in (OpenID Connect Core §3.1.2.1).
pub fn nonce(key: &[u8], state: &str) -> String {
    b64(&mac(key, b"mfa-gate nonce\0", state.as_bytes()))
}

/// Where the browser goes back: `url` when it is a path on this origin (not `//host`,
/// not `/\host`) and not too long, else `/`.
pub fn same_origin_path(url: &str) -> String {
    let safe = url.starts_with('/')
        && !url.starts_with("//")
        && !url.starts_with("/\\")
        && url.len() <= MAX_RETURN_URL
        && url.bytes().all(|b| b.is_ascii_graphic());
    if safe {
        url.to_string()
    } else {
        "/".to_string()
    }
}

/// The cookie value for `pending`.
pub fn encode_cookie(key: &[u8], pending: &PendingSignIn) -> String {
    let payload = Payload {
        s: pending.state.clone(),
        r: pending.return_url.clone(),
        l: pending.asked.level.as_str().to_string(),
        a: pending.asked.acr_values.clone(),
        m: pending.asked.max_age,
        t: pending.issued_at,
    };
    let json = serde_json::to_vec(&payload).unwrap_or_default();
    let body = b64(&json);
    let tag = b64(&mac(key, b"mfa-gate state cookie\0", body.as_bytes()));
    format!("{VERSION}.{body}.{tag}")
}

/// The sign-in a cookie value holds, if it is intact, ours and fresh at `now`
/// (`ttl_secs` old at most, `skew_secs` of clock difference allowed).
pub fn decode_cookie(
    key: &[u8],
    value: &[u8],
    now: u64,
    ttl_secs: u64,
    skew_secs: u64,
) -> Result<PendingSignIn, StateError> {
    if value.len() > MAX_COOKIE_BYTES {
        return Err(StateError::Malformed);
    }
    let text = std::str::from_utf8(value).map_err(|_| StateError::Malformed)?;
    let mut parts = text.split('.');
    let (Some(version), Some(body), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(StateError::Malformed);
    };
    if version != VERSION {
        return Err(StateError::Malformed);
    }
    let tag =
        Base64UrlSafeNoPadding::decode_to_vec(tag, None).map_err(|_| StateError::Malformed)?;
    let expected = mac(key, b"mfa-gate state cookie\0", body.as_bytes());
    if !bool::from(tag.as_slice().ct_eq(&expected)) {
        return Err(StateError::BadMac);
    }
    let json =
        Base64UrlSafeNoPadding::decode_to_vec(body, None).map_err(|_| StateError::Malformed)?;
    let payload: Payload = serde_json::from_slice(&json).map_err(|_| StateError::Malformed)?;
    let level = Level::parse(&payload.l).ok_or(StateError::Malformed)?;
    if payload.t > now.saturating_add(skew_secs) || now > payload.t.saturating_add(ttl_secs) {
        return Err(StateError::Expired);
    }
    Ok(PendingSignIn {
        state: payload.s,
        return_url: same_origin_path(&payload.r),
        asked: Asked {
            level,
            acr_values: payload.a,
            max_age: payload.m,
        },
        issued_at: payload.t,
    })
}

/// Whether two states are the same (constant time).
pub fn same_state(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn pending() -> PendingSignIn {
        PendingSignIn {
            state: new_state(&[7; 16]),
            return_url: "/admin/users?x=1".into(),
            asked: Asked {
                level: Level::PhishingResistant,
                acr_values: "phr".into(),
                max_age: Some(300),
            },
            issued_at: 1_000,
        }
    }

    #[test]
    fn a_cookie_round_trips_and_refuses_alteration_age_and_other_keys() {
        let cookie = encode_cookie(KEY, &pending());
        assert_eq!(
            decode_cookie(KEY, cookie.as_bytes(), 1_100, 600, 60),
            Ok(pending())
        );
        let other_key = b"ffffffffffffffffffffffffffffffff";
        assert_eq!(
            decode_cookie(other_key, cookie.as_bytes(), 1_100, 600, 60),
            Err(StateError::BadMac)
        );
        assert_eq!(
            decode_cookie(KEY, cookie.as_bytes(), 1_601, 600, 60),
            Err(StateError::Expired)
        );
        assert_eq!(
            decode_cookie(KEY, cookie.as_bytes(), 900, 600, 60),
            Err(StateError::Expired)
        );
        // One character of the payload changed.
        let mut bytes = cookie.clone().into_bytes();
        bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            decode_cookie(KEY, &bytes, 1_100, 600, 60),
            Err(StateError::BadMac)
        );
        for bad in ["", "v1", "v2.a.b", "v1.a.b.c", "v1.%%.%%"] {
            assert_eq!(
                decode_cookie(KEY, bad.as_bytes(), 1_100, 600, 60),
                Err(StateError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn verifier_challenge_and_nonce_follow_rfc_7636_and_differ_per_state() {
        // RFC 7636 Appendix B.
        assert_eq!(
            code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let s1 = new_state(&[1; 16]);
        let s2 = new_state(&[2; 16]);
        let v1 = code_verifier(KEY, &s1);
        assert_eq!(v1.len(), 43);
        assert_ne!(v1, code_verifier(KEY, &s2));
        assert_ne!(nonce(KEY, &s1), nonce(KEY, &s2));
        assert_ne!(nonce(KEY, &s1), v1);
        assert_eq!(s1.len(), 22);
    }

    #[test]
    fn return_urls_stay_on_this_origin() {
        assert_eq!(same_origin_path("/admin?a=b"), "/admin?a=b");
        for evil in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "admin",
            "/a b",
        ] {
            assert_eq!(same_origin_path(evil), "/", "{evil}");
        }
        assert_eq!(same_origin_path(&format!("/{}", "a".repeat(3000))), "/");
    }
}

//! Sender-constrained tokens: the confirmation (`cnf`, RFC 7800 §3.1) a verified token
//! carries, and the comparisons that say whether the request's sender is the one the
//! token was issued to: `x5t#S256` against the connection's client certificate (RFC 8705
//! §3.1, [`certificate_matches`]), `jkt` against a verified DPoP proof's key thumbprint
//! (RFC 9449 §6.1, [`thumbprint_matches`]).
//!
//! What it must never do: read a `cnf` it cannot enforce as "not bound" (a token bound by a
//! method mfa-gate does not implement, or with a malformed member, is refused by its caller
//! through the error code, never let through as a bearer token); compare digests in
//! variable time; or panic on any input.

use ct_codecs::{Decoder, Hex};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::token::jose::decode_segment;

/// The `cnf` member naming the SHA-256 thumbprint of a client certificate (RFC 8705 §3.1).
pub const X5T_S256: &str = "x5t#S256";
/// The `cnf` member naming the RFC 7638 thumbprint of a DPoP key (RFC 9449 §6.1).
pub const JKT: &str = "jkt";
/// Bytes of a SHA-256 digest.
const DIGEST_BYTES: usize = 32;

/// What a token is bound to. At least one member is set when [`confirmation`] returns it;
/// when both are, the request must satisfy both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Confirmation {
    /// `x5t#S256`: base64url SHA-256 of the DER client certificate (43 characters).
    pub x5t_s256: Option<String>,
    /// `jkt`: base64url SHA-256 JWK thumbprint of the DPoP key (43 characters).
    pub jkt: Option<String>,
}

/// The `cnf` claim of a verified token's `claims`.
///
/// * absent → `Ok(None)`: the token is a bearer token;
/// * `x5t#S256` and/or `jkt`, each a canonical base64url SHA-256 digest → `Ok(Some(_))`;
///   other members beside them (e.g. a `jwk` naming the same key) are ignored;
/// * present but not an object, or empty → `Err("cnf_malformed")`;
/// * a known member that is not a string holding a base64url SHA-256 digest →
///   `Err("cnf_bad_x5t_s256")` / `Err("cnf_bad_jkt")`;
/// * only members mfa-gate cannot check (`jwk`, `jwe`, `jku`, `kid`, or unknown) →
///   `Err("cnf_unsupported")`: such a token is bound to something, so it must not be
///   read as unbound.
pub fn confirmation(claims: &Map<String, Value>) -> Result<Option<Confirmation>, &'static str> {
    let Some(cnf) = claims.get("cnf") else {
        return Ok(None);
    };
    let Value::Object(cnf) = cnf else {
        return Err("cnf_malformed");
    };
    if cnf.is_empty() {
        return Err("cnf_malformed");
    }
    let x5t_s256 = digest_member(cnf, X5T_S256).map_err(|()| "cnf_bad_x5t_s256")?;
    let jkt = digest_member(cnf, JKT).map_err(|()| "cnf_bad_jkt")?;
    if x5t_s256.is_none() && jkt.is_none() {
        return Err("cnf_unsupported");
    }
    Ok(Some(Confirmation { x5t_s256, jkt }))
}

/// Member `name` of `cnf`: absent → `Ok(None)`; a canonical base64url SHA-256 digest →
/// `Ok(Some)`; anything else → `Err`.
fn digest_member(cnf: &Map<String, Value>, name: &str) -> Result<Option<String>, ()> {
    match cnf.get(name) {
        None => Ok(None),
        Some(Value::String(value)) if digest_of_base64url(value).is_some() => {
            Ok(Some(value.clone()))
        }
        Some(_) => Err(()),
    }
}

/// The 32 bytes a canonical base64url SHA-256 digest names.
fn digest_of_base64url(value: &str) -> Option<[u8; DIGEST_BYTES]> {
    // 43 characters; checked first so an over-long value is never decoded.
    if value.len() != 43 {
        return None;
    }
    let bytes = decode_segment(value, "digest").ok()?;
    bytes.try_into().ok()
}

/// RFC 8705 §3.1: whether `x5t_s256` (base64url of the SHA-256 of the DER client
/// certificate) names the certificate whose digest Envoy gives as the
/// `connection.sha256_peer_certificate_digest` property (hex; lower case, upper case
/// accepted). Constant time; false for malformed input on either side, including an empty
/// digest (no client certificate).
pub fn certificate_matches(x5t_s256: &str, peer_digest_hex: &[u8]) -> bool {
    let Some(expected) = digest_of_base64url(x5t_s256) else {
        return false;
    };
    if peer_digest_hex.len() != 2 * DIGEST_BYTES {
        return false;
    }
    let mut peer = [0u8; DIGEST_BYTES];
    match Hex::decode(&mut peer, peer_digest_hex, None) {
        Ok(decoded) if decoded.len() == DIGEST_BYTES => {}
        _ => return false,
    }
    bool::from(expected.ct_eq(&peer))
}

/// RFC 9449 §6.1: whether the token's `jkt` names the key of a verified DPoP proof (its
/// [`crate::token::dpop::VerifiedProof::thumbprint`]). Constant time; false for malformed
/// input.
pub fn thumbprint_matches(jkt: &str, thumbprint: &str) -> bool {
    match (digest_of_base64url(jkt), digest_of_base64url(thumbprint)) {
        (Some(a), Some(b)) => bool::from(a.ct_eq(&b)),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use ct_codecs::{Base64, Base64UrlSafeNoPadding, Encoder};
    use serde_json::json;

    /// A self-signed Ed25519 client certificate (`openssl req -x509 -newkey ed25519
    /// -subj /CN=client.example.com`). `openssl x509 -fingerprint -sha256` gives
    /// [`OPENSSL_FINGERPRINT`]; its DER digest in base64url is [`X5T`].
    const CERTIFICATE: &str = "MIIBTzCCAQGgAwIBAgIUVgLh1fpsjh8QOS1s4Stb/fmcRCUwBQYDK2VwMB0xGzAZ
BgNVBAMMEmNsaWVudC5leGFtcGxlLmNvbTAeFw0yNjEyMDIwMTAxMzFaFw0zNjEx
MjkwMTAxMzFaMB0xGzAZBgNVBAMMEmNsaWVudC5leGFtcGxlLmNvbTAqMAUGAytl
cAMhAEA6+rbiFW3rWCGvLVlc5X9s92aozEBbGOXP3beY9xHPo1MwUTAdBgNVHQ4E
FgQUl1gwCrqo+t4GjQVKbO+fFXd6dEcwHwYDVR0jBBgwFoAUl1gwCrqo+t4GjQVK
bO+fFXd6dEcwDwYDVR0TAQH/BAUwAwEB/zAFBgMrZXADQQCXmVBDbpajZJ5nr1ue
bPuHM+fTeXCJY/Z8T/ppkHJwxt4p5cIs+N0qrWX3ne/Fof+qPQ4k/uuDG/xOmZTN
fc4D";
    const OPENSSL_FINGERPRINT: &str = "FF:94:02:D2:C2:9D:0D:6D:0E:A2:45:84:1B:F6:C7:25:87:88:A0:B2:A8:1D:F9:FC:0F:01:3C:08:87:E9:82:B2";
    const X5T: &str = "_5QC0sKdDW0OokWEG_bHJYeIoLKoHfn8DwE8CIfpgrI";

    /// The certificate's digest as Envoy's `sha256_peer_certificate_digest` gives it.
    fn envoy_digest() -> String {
        OPENSSL_FINGERPRINT.replace(':', "").to_ascii_lowercase()
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_certificate_digest_is_the_sha256_of_its_der() {
        let der = Base64::decode_to_vec(CERTIFICATE, Some(b"\n")).unwrap();
        let digest = hmac_sha256::Hash::hash(&der);
        assert_eq!(
            Base64UrlSafeNoPadding::encode_to_string(digest).unwrap(),
            X5T
        );
        assert_eq!(Hex::encode_to_string(digest).unwrap(), envoy_digest());
    }

    #[test]
    fn a_certificate_matches_its_x5t_s256_only() {
        let lower = envoy_digest();
        assert!(certificate_matches(X5T, lower.as_bytes()));
        assert!(certificate_matches(
            X5T,
            lower.to_ascii_uppercase().as_bytes()
        ));
        // Another certificate's digest, one bit off.
        let mut other = lower.clone().into_bytes();
        other[63] = if other[63] == b'2' { b'3' } else { b'2' };
        assert!(!certificate_matches(X5T, &other));
        let another =
            Base64UrlSafeNoPadding::encode_to_string(hmac_sha256::Hash::hash(b"x")).unwrap();
        assert!(!certificate_matches(&another, lower.as_bytes()));
        // Malformed on either side.
        for peer in [
            &b""[..],
            &lower.as_bytes()[..62],
            format!("{lower}00").as_bytes(),
            OPENSSL_FINGERPRINT.as_bytes(),
            format!("{}zz", &lower[..62]).as_bytes(),
            &[0xffu8; 64][..],
        ] {
            assert!(!certificate_matches(X5T, peer), "{peer:?}");
        }
        for x5t in [
            "",
            &X5T[..42],
            &format!("{X5T}A"),
            &format!("{X5T}="),
            "_5QC0sKdDW0OokWEG_bHJYeIoLKoHfn8DwE8CIfpgrJ", // non-canonical last character
            "/5QC0sKdDW0OokWEG/bHJYeIoLKoHfn8DwE8CIfpgrI", // base64, not base64url
            &lower,
        ] {
            assert!(!certificate_matches(x5t, lower.as_bytes()), "{x5t}");
        }
    }

    #[test]
    fn thumbprints_match_in_constant_time_and_only_when_equal() {
        let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
        assert!(thumbprint_matches(jkt, jkt));
        assert!(!thumbprint_matches(jkt, X5T));
        assert!(!thumbprint_matches(jkt, ""));
        assert!(!thumbprint_matches("", ""));
        assert!(!thumbprint_matches(&format!("{jkt}x"), &format!("{jkt}x")));
    }

    #[test]
    fn cnf_is_read_strictly() {
        let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
        assert_eq!(confirmation(&claims(json!({"sub": "a"}))), Ok(None));
        assert_eq!(
            confirmation(&claims(json!({"cnf": {"x5t#S256": X5T}}))),
            Ok(Some(Confirmation {
                x5t_s256: Some(X5T.into()),
                jkt: None
            }))
        );
        assert_eq!(
            confirmation(&claims(json!({"cnf": {"jkt": jkt}}))),
            Ok(Some(Confirmation {
                x5t_s256: None,
                jkt: Some(jkt.into())
            }))
        );
        // Both, and beside a member we do not check.
        assert_eq!(
            confirmation(&claims(
                json!({"cnf": {"jkt": jkt, "x5t#S256": X5T, "jwk": {"kty": "EC"}}})
            )),
            Ok(Some(Confirmation {
                x5t_s256: Some(X5T.into()),
                jkt: Some(jkt.into())
            }))
        );
        for (cnf, code) in [
            (json!("bound"), "cnf_malformed"),
            (json!(null), "cnf_malformed"),
            (json!([jkt]), "cnf_malformed"),
            (json!({}), "cnf_malformed"),
            (json!({"jkt": 7}), "cnf_bad_jkt"),
            (json!({"jkt": ""}), "cnf_bad_jkt"),
            (json!({"jkt": "not a digest"}), "cnf_bad_jkt"),
            (json!({"jkt": format!("{jkt}{jkt}")}), "cnf_bad_jkt"),
            (json!({"jkt": jkt, "x5t#S256": "x"}), "cnf_bad_x5t_s256"),
            (json!({"x5t#S256": [X5T]}), "cnf_bad_x5t_s256"),
            (json!({"x5t#s256": X5T}), "cnf_unsupported"),
            (json!({"jwk": {"kty": "EC"}}), "cnf_unsupported"),
            (json!({"kid": "k1"}), "cnf_unsupported"),
            (json!({"jku": "https://a.example/jwks"}), "cnf_unsupported"),
            (json!({"something": "else"}), "cnf_unsupported"),
        ] {
            assert_eq!(
                confirmation(&claims(json!({ "cnf": cnf }))),
                Err(code),
                "{cnf}"
            );
        }
    }
}

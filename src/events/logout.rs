//! OpenID Connect Back-Channel Logout 1.0 logout tokens (§2.4 contents, §2.6 validation):
//! header `typ` `logout+jwt` (§2.4 recommends it; mfa-gate requires it, so no other JWT
//! signed with the same keys is ever taken for one), the shared checks of `envelope`
//! (signature, `iss`, `aud`, `iat`, `jti`), `exp` required and not passed (§2.4), `events`
//! holding the back-channel-logout member with a JSON object value (§2.6 step 5), `sub`
//! and/or `sid` (§2.6 step 6) and no `nonce` (§2.4: PROHIBITED, §4.1). The token arrives
//! as the `logout_token` form parameter of a POST (§2.5).

use serde_json::Value;

use crate::events::envelope::{effective_time, open, time_claim};
use crate::events::kinds::BACKCHANNEL_LOGOUT;
use crate::events::subject::text;
use crate::events::{Action, EventError, Expect, Identifier, SecurityEvent, Target};
use crate::request::percent_decode;
use crate::token::verify::VerifyError;

/// The media type of a logout token's `typ` header (Back-Channel Logout 1.0 §2.4).
const LOGOUT_TYPE: &str = "logout+jwt";

/// Verifies a logout token at time `now_secs`. Its target is the session (`sid`) when the
/// token names one, else every session of `sub`; both at the token's issuer.
pub fn verify_logout_token(
    token: &[u8],
    expect: &Expect<'_>,
    now_secs: u64,
) -> Result<SecurityEvent, EventError> {
    let envelope = open(token, expect, now_secs, LOGOUT_TYPE)?;
    let claims = &envelope.claims;
    let expires_at = time_claim(claims, "exp")?.ok_or(EventError::MissingClaim("exp"))?;
    if expires_at.saturating_add(expect.clock_skew_secs) < now_secs {
        return Err(VerifyError::Expired.into());
    }
    if claims.contains_key("nonce") {
        return Err(EventError::ForbiddenClaim("nonce"));
    }
    if !matches!(
        envelope.events.get(BACKCHANNEL_LOGOUT),
        Some(Value::Object(_))
    ) {
        return Err(EventError::InvalidClaim("events"));
    }
    let read = |name: &'static str| match claims.get(name) {
        None => Ok(None),
        Some(_) => text(claims, name)
            .map(Some)
            .map_err(|_| EventError::InvalidClaim(name)),
    };
    let identifier = match (read("sid")?, read("sub")?) {
        (Some(sid), _) => Identifier::SessionId(sid),
        (None, Some(sub)) => Identifier::Subject(sub),
        (None, None) => return Err(EventError::MissingClaim("sub_or_sid")),
    };
    Ok(SecurityEvent {
        jti: envelope.jti,
        issued_at: envelope.issued_at,
        at: effective_time(None, envelope.issued_at, expect, now_secs),
        kind: "backchannel-logout",
        action: Action::Revoke,
        targets: vec![Target {
            issuer: Some(expect.issuer.to_string()),
            identifier,
        }],
    })
}

/// The `logout_token` parameter of an `application/x-www-form-urlencoded` body (decoded:
/// `%XX` and `+`), when it occurs exactly once and is non-empty UTF-8; else None.
pub fn logout_token_from_form(body: &[u8]) -> Option<String> {
    let mut found = None;
    for pair in body.split(|&b| b == b'&') {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &b""[..]),
        };
        if *percent_decode(name) != *b"logout_token" {
            continue;
        }
        if found.is_some() {
            return None;
        }
        found = Some(percent_decode(value).into_owned());
    }
    String::from_utf8(found?)
        .ok()
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::events::fixture::*;
    use serde_json::json;

    fn logout(sid: Option<&str>, sub: Option<&str>) -> Value {
        let mut payload = json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": NOW - 2,
            "exp": NOW + 118,
            "jti": "bWJq",
            "events": {LOGOUT: {}},
        });
        if let Some(sid) = sid {
            payload["sid"] = json!(sid);
        }
        if let Some(sub) = sub {
            payload["sub"] = json!(sub);
        }
        payload
    }

    fn check(token: &str) -> Result<SecurityEvent, EventError> {
        verify_logout_token(token.as_bytes(), &expect(), NOW)
    }

    fn at_issuer(identifier: Identifier) -> Vec<Target> {
        vec![Target {
            issuer: Some(ISSUER.into()),
            identifier,
        }]
    }

    #[test]
    fn a_logout_token_with_sid_ends_that_session() {
        let token = mint(
            "logout+jwt",
            &logout(Some("08a5019c-17e1"), Some("248289761001")),
        );
        assert_eq!(
            check(&token),
            Ok(SecurityEvent {
                jti: "bWJq".into(),
                issued_at: NOW - 2,
                at: NOW - 2,
                kind: "backchannel-logout",
                action: Action::Revoke,
                targets: at_issuer(Identifier::SessionId("08a5019c-17e1".into())),
            })
        );
        let sid_only = mint_rs256("application/logout+jwt", &logout(Some("s-2"), None));
        assert_eq!(
            check(&sid_only).unwrap().targets,
            at_issuer(Identifier::SessionId("s-2".into()))
        );
    }

    #[test]
    fn a_logout_token_with_sub_only_ends_every_session_of_the_subject() {
        let token = mint("logout+jwt", &logout(None, Some("248289761001")));
        let event = check(&token).unwrap();
        assert_eq!(
            event.targets,
            at_issuer(Identifier::Subject("248289761001".into()))
        );
        assert_eq!(event.action, Action::Revoke);
    }

    #[test]
    fn bad_logout_tokens_are_refused_each_with_its_error() {
        let good = logout(Some("s-1"), Some("alice"));
        let typed = |payload: &Value| mint("logout+jwt", payload);
        let mut other_event = good.clone();
        other_event["events"] =
            json!({"https://schemas.openid.net/secevent/caep/event-type/session-revoked": {}});
        let cases: Vec<(&str, String, EventError)> = vec![
            (
                "tampered signature",
                tampered(&typed(&good)),
                EventError::Token(VerifyError::BadSignature),
            ),
            (
                "typ secevent+jwt",
                mint("secevent+jwt", &good),
                EventError::WrongType,
            ),
            ("typ JWT", mint("JWT", &good), EventError::WrongType),
            (
                "typ missing",
                mint_hs256_raw(&json!({"alg": "HS256"}), &good, SECRET),
                EventError::WrongType,
            ),
            (
                "wrong iss",
                typed(&with(good.clone(), "iss", json!("https://evil/"))),
                EventError::WrongIssuer,
            ),
            (
                "wrong aud",
                typed(&with(good.clone(), "aud", json!("someone-else"))),
                EventError::WrongAudience,
            ),
            (
                "unknown kid",
                mint_stranger("logout+jwt", &good),
                EventError::Token(VerifyError::UnknownKid("stranger".into())),
            ),
            (
                "alg none",
                mint_alg_none("logout+jwt", &good),
                EventError::Token(VerifyError::AlgNone),
            ),
            (
                "nonce",
                typed(&with(good.clone(), "nonce", json!("n-0S6_WzA2Mj"))),
                EventError::ForbiddenClaim("nonce"),
            ),
            (
                "neither sid nor sub",
                typed(&logout(None, None)),
                EventError::MissingClaim("sub_or_sid"),
            ),
            (
                "sid not a string",
                typed(&with(good.clone(), "sid", json!(7))),
                EventError::InvalidClaim("sid"),
            ),
            (
                "empty sub",
                typed(&with(logout(None, None), "sub", json!(""))),
                EventError::InvalidClaim("sub"),
            ),
            (
                "expired",
                typed(&with(good.clone(), "exp", json!(NOW - 61))),
                EventError::Token(VerifyError::Expired),
            ),
            (
                "no exp",
                typed(&without(good.clone(), "exp")),
                EventError::MissingClaim("exp"),
            ),
            (
                "iat in the future",
                typed(&with(good.clone(), "iat", json!(NOW + 61))),
                EventError::Token(VerifyError::IssuedInFuture),
            ),
            (
                "no jti",
                typed(&without(good.clone(), "jti")),
                EventError::MissingClaim("jti"),
            ),
            (
                "no logout event",
                typed(&other_event),
                EventError::InvalidClaim("events"),
            ),
            (
                "logout event not an object",
                typed(&with(good.clone(), "events", json!({LOGOUT: "yes"}))),
                EventError::InvalidClaim("events"),
            ),
        ];
        for (name, token, error) in cases {
            assert_eq!(check(&token), Err(error), "{name}");
        }
        // exp within the skew is still accepted; other members of events are allowed.
        assert!(check(&typed(&with(good.clone(), "exp", json!(NOW - 60)))).is_ok());
        let mut more = good.clone();
        more["events"]["https://example.com/other"] = json!({});
        assert!(check(&typed(&more)).is_ok());
    }

    #[test]
    fn a_set_verifier_refuses_a_logout_token_and_the_other_way_round() {
        let token = mint("logout+jwt", &logout(Some("s-1"), None));
        assert_eq!(
            crate::events::verify_set(token.as_bytes(), &expect(), NOW),
            Err(EventError::WrongType)
        );
        // Nor does the session verifier take it for a session token.
        let options = crate::token::verify::VerifyOptions {
            issuer: ISSUER.into(),
            audiences: vec![AUDIENCE.into()],
            algorithms: ALGORITHMS.to_vec(),
            clock_skew_secs: 60,
            max_token_bytes: 8192,
        };
        assert_eq!(
            crate::token::verify::verify(token.as_bytes(), &KEYS.keys, &options, NOW),
            Err(VerifyError::NotASessionToken)
        );
    }

    #[test]
    fn the_form_parameter_is_read_once_and_decoded() {
        assert_eq!(
            logout_token_from_form(b"logout_token=eyJ.eyJ.sig"),
            Some("eyJ.eyJ.sig".into())
        );
        assert_eq!(
            logout_token_from_form(b"state=x&logout_token=a%2Eb+c&other"),
            Some("a.b c".into())
        );
        assert_eq!(
            logout_token_from_form(b"logout%5Ftoken=abc"),
            Some("abc".into())
        );
        for bad in [
            &b""[..],
            b"token=abc",
            b"logout_token=",
            b"logout_token",
            b"logout_token=a&logout_token=a",
            b"logout_token=a&logout%5ftoken=b",
            b"logout_token=%FF",
            b"Logout_Token=abc",
        ] {
            assert_eq!(
                logout_token_from_form(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

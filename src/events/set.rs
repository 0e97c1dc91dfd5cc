//! A Security Event Token (RFC 8417) as the Shared Signals Framework 1.0 profiles it:
//! header `typ` `secevent+jwt` (SSF §4.1.1), the shared checks of `envelope` (signature,
//! `iss`, `aud`, `iat`, `jti`), exactly one event in `events` (SSF §4.2.1), no `exp`
//! (SSF §4.1.7: a SET is not a credential) and no `sub` (SSF §4.1.2). The subject is the
//! top-level `sub_id` (SSF §4.1.2, RFC 9493); a `subject` member inside the event (where
//! CAEP and RISC drafts put it, and early transmitters still do) is read when `sub_id` is
//! absent.

use crate::events::envelope::{effective_time, open, time_claim};
use crate::events::{kinds, subject, Action, EventError, Expect, SecurityEvent};

/// The media type of a SET's `typ` header (RFC 8417 §2.3).
const SET_TYPE: &str = "secevent+jwt";

/// Verifies a SET and reads its one event at time `now_secs`.
///
/// An event mfa-gate does not act on ([`Action::Nothing`]) is returned even when its
/// subject cannot be read (its targets are then empty): it is acknowledged, never applied.
pub fn verify_set(
    token: &[u8],
    expect: &Expect<'_>,
    now_secs: u64,
) -> Result<SecurityEvent, EventError> {
    let envelope = open(token, expect, now_secs, SET_TYPE)?;
    for forbidden in ["exp", "sub"] {
        if envelope.claims.contains_key(forbidden) {
            return Err(EventError::ForbiddenClaim(forbidden));
        }
    }
    let mut events = envelope.events.iter();
    let (Some((uri, event)), None) = (events.next(), events.next()) else {
        return Err(EventError::EventCount(envelope.events.len()));
    };
    let serde_json::Value::Object(event) = event else {
        return Err(EventError::InvalidClaim("events"));
    };
    let kind = kinds::classify(uri, event);
    let subject = envelope
        .claims
        .get("sub_id")
        .or_else(|| event.get("subject"))
        .ok_or(EventError::MissingClaim("sub_id"))
        .and_then(subject::targets);
    let targets = match (subject, kind.action) {
        (Ok(targets), _) => targets,
        (Err(_), Action::Nothing) => Vec::new(),
        (Err(error), _) => return Err(error),
    };
    let claimed = time_claim(event, "event_timestamp").ok().flatten();
    Ok(SecurityEvent {
        jti: envelope.jti,
        issued_at: envelope.issued_at,
        at: effective_time(claimed, envelope.issued_at, expect, now_secs),
        kind: kind.name,
        action: kind.action,
        targets,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::events::fixture::*;
    use crate::events::{Identifier, Target};
    use crate::token::verify::VerifyError;
    use serde_json::{json, Value};

    fn session_revoked(sub_id: Value) -> Value {
        json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": NOW - 5,
            "jti": "set-1",
            "txn": "8675309",
            "sub_id": sub_id,
            "events": {
                SESSION_REVOKED: {
                    "initiating_entity": "policy",
                    "reason_admin": {"en": "Landspeed Policy Violation: C076E822"},
                    "event_timestamp": NOW - 30,
                },
            },
        })
    }

    fn iss_sub() -> Value {
        json!({"format": "iss_sub", "iss": ISSUER, "sub": "alice"})
    }

    fn check(token: &str) -> Result<SecurityEvent, EventError> {
        verify_set(token.as_bytes(), &expect(), NOW)
    }

    fn one(issuer: Option<&str>, identifier: Identifier) -> Vec<Target> {
        vec![Target {
            issuer: issuer.map(str::to_string),
            identifier,
        }]
    }

    #[test]
    fn a_session_revoked_set_with_iss_sub() {
        let event = check(&mint("secevent+jwt", &session_revoked(iss_sub()))).unwrap();
        assert_eq!(
            event,
            SecurityEvent {
                jti: "set-1".into(),
                issued_at: NOW - 5,
                at: NOW - 30,
                kind: "caep.session-revoked",
                action: Action::Revoke,
                targets: one(Some(ISSUER), Identifier::Subject("alice".into())),
            }
        );
        // RS256 and the registered media type with its prefix are just as good.
        let rs = mint_rs256("application/secevent+jwt", &session_revoked(iss_sub()));
        assert_eq!(check(&rs), Ok(event));
    }

    #[test]
    fn a_session_revoked_set_with_complex_email_and_opaque_subjects() {
        let complex = json!({
            "format": "complex",
            "user": {"format": "iss_sub", "iss": ISSUER, "sub": "alice"},
            "session": {"format": "opaque", "id": "sid-42"},
        });
        let cases = [
            (
                complex,
                one(Some(ISSUER), Identifier::SessionId("sid-42".into())),
            ),
            (
                json!({"format": "email", "email": "alice@example.com"}),
                one(None, Identifier::Email("alice@example.com".into())),
            ),
            (
                json!({"format": "opaque", "id": "00u1a2b3"}),
                one(None, Identifier::Opaque("00u1a2b3".into())),
            ),
        ];
        for (sub_id, targets) in cases {
            let event = check(&mint("secevent+jwt", &session_revoked(sub_id))).unwrap();
            assert_eq!(event.targets, targets);
            assert_eq!(event.action, Action::Revoke);
        }
    }

    #[test]
    fn the_subject_inside_the_event_is_read_when_sub_id_is_absent() {
        let mut payload = without(session_revoked(iss_sub()), "sub_id");
        payload["events"][SESSION_REVOKED]["subject"] =
            json!({"format": "email", "email": "bob@example.com"});
        let event = check(&mint("secevent+jwt", &payload)).unwrap();
        assert_eq!(
            event.targets,
            one(None, Identifier::Email("bob@example.com".into()))
        );
        // sub_id wins over it.
        payload["sub_id"] = iss_sub();
        let event = check(&mint("secevent+jwt", &payload)).unwrap();
        assert_eq!(
            event.targets,
            one(Some(ISSUER), Identifier::Subject("alice".into()))
        );
        let none = without(session_revoked(iss_sub()), "sub_id");
        assert_eq!(
            check(&mint("secevent+jwt", &none)),
            Err(EventError::MissingClaim("sub_id"))
        );
    }

    #[test]
    fn the_effective_time_is_the_event_timestamp_else_iat_and_never_the_future() {
        let mut payload = session_revoked(iss_sub());
        payload["events"][SESSION_REVOKED]["event_timestamp"] = json!("yesterday");
        assert_eq!(check(&mint("secevent+jwt", &payload)).unwrap().at, NOW - 5);
        payload["events"][SESSION_REVOKED]["event_timestamp"] = json!(NOW + 86_400);
        assert_eq!(check(&mint("secevent+jwt", &payload)).unwrap().at, NOW + 60);
        payload["events"][SESSION_REVOKED]
            .as_object_mut()
            .unwrap()
            .remove("event_timestamp");
        assert_eq!(check(&mint("secevent+jwt", &payload)).unwrap().at, NOW - 5);
    }

    #[test]
    fn an_ignored_event_is_returned_even_with_an_unreadable_subject() {
        let payload = json!({
            "iss": ISSUER, "aud": [AUDIENCE, "other"], "iat": NOW, "jti": "v-1",
            "sub_id": {"format": "saml_assertion_id", "issuer": "x", "assertion_id": "y"},
            "events": {"https://schemas.openid.net/secevent/ssf/event-type/verification":
                {"state": "abc"}},
        });
        let event = check(&mint("secevent+jwt", &payload)).unwrap();
        assert_eq!(
            (event.kind, event.action, event.targets.len()),
            ("ssf.verification", Action::Nothing, 0)
        );
        // The same subject on an event that revokes is an error.
        let revoking = with(payload.clone(), "events", json!({SESSION_REVOKED: {}}));
        assert_eq!(
            check(&mint("secevent+jwt", &revoking)),
            Err(EventError::UnsupportedSubject("saml_assertion_id".into()))
        );
    }

    /// The bad SETs of the issue: each refused, with the error the receiver reports.
    #[test]
    fn bad_sets_are_refused_each_with_its_error() {
        let good = session_revoked(iss_sub());
        let f = &*KEYS;
        let secevent = |payload: &Value| mint("secevent+jwt", payload);
        let hs_header = json!({"alg": "HS256", "typ": "secevent+jwt", "kid": "rsa-1"});
        let rsa_public = f.rs256.public_key().to_der().unwrap();
        let cases: Vec<(&str, String, EventError)> = vec![
            (
                "tampered signature",
                tampered(&secevent(&good)),
                EventError::Token(VerifyError::BadSignature),
            ),
            (
                "wrong iss",
                secevent(&with(good.clone(), "iss", json!("https://evil.example/"))),
                EventError::WrongIssuer,
            ),
            (
                "no iss",
                secevent(&without(good.clone(), "iss")),
                EventError::MissingClaim("iss"),
            ),
            (
                "wrong aud",
                secevent(&with(good.clone(), "aud", json!(["https://other/"]))),
                EventError::WrongAudience,
            ),
            (
                "no aud",
                secevent(&without(good.clone(), "aud")),
                EventError::MissingClaim("aud"),
            ),
            ("typ JWT", mint("JWT", &good), EventError::WrongType),
            (
                "typ logout+jwt",
                mint("logout+jwt", &good),
                EventError::WrongType,
            ),
            (
                "typ missing",
                mint_hs256_raw(&json!({"alg": "HS256"}), &good, SECRET),
                EventError::WrongType,
            ),
            (
                "unknown kid",
                mint_stranger("secevent+jwt", &good),
                EventError::Token(VerifyError::UnknownKid("stranger".into())),
            ),
            (
                "two events",
                secevent(&with(
                    good.clone(),
                    "events",
                    json!({SESSION_REVOKED: {}, format!("{}account-disabled", kinds::RISC_PREFIX): {}}),
                )),
                EventError::EventCount(2),
            ),
            (
                "zero events",
                secevent(&with(good.clone(), "events", json!({}))),
                EventError::EventCount(0),
            ),
            (
                "events not an object",
                secevent(&with(good.clone(), "events", json!([SESSION_REVOKED]))),
                EventError::InvalidClaim("events"),
            ),
            (
                "event not an object",
                secevent(&with(
                    good.clone(),
                    "events",
                    json!({SESSION_REVOKED: true}),
                )),
                EventError::InvalidClaim("events"),
            ),
            (
                "alg none",
                mint_alg_none("secevent+jwt", &good),
                EventError::Token(VerifyError::AlgNone),
            ),
            (
                "HS256 with the RSA public key as secret",
                mint_hs256_raw(&hs_header, &good, &rsa_public),
                EventError::Token(VerifyError::NoMatchingKey),
            ),
            (
                "exp",
                secevent(&with(good.clone(), "exp", json!(NOW + 300))),
                EventError::ForbiddenClaim("exp"),
            ),
            (
                "sub",
                secevent(&with(good.clone(), "sub", json!("alice"))),
                EventError::ForbiddenClaim("sub"),
            ),
            (
                "iat in the future",
                secevent(&with(good.clone(), "iat", json!(NOW + 61))),
                EventError::Token(VerifyError::IssuedInFuture),
            ),
            (
                "no iat",
                secevent(&without(good.clone(), "iat")),
                EventError::MissingClaim("iat"),
            ),
            (
                "iat a string",
                secevent(&with(good.clone(), "iat", json!("now"))),
                EventError::InvalidClaim("iat"),
            ),
            (
                "no jti",
                secevent(&without(good.clone(), "jti")),
                EventError::MissingClaim("jti"),
            ),
            (
                "empty jti",
                secevent(&with(good.clone(), "jti", json!(""))),
                EventError::InvalidClaim("jti"),
            ),
            (
                "jti over 256 bytes",
                secevent(&with(good.clone(), "jti", json!("j".repeat(257)))),
                EventError::InvalidClaim("jti"),
            ),
            (
                "no events",
                secevent(&without(good.clone(), "events")),
                EventError::MissingClaim("events"),
            ),
            (
                "unsupported subject",
                secevent(&with(
                    good.clone(),
                    "sub_id",
                    json!({"format": "x509", "x": 1}),
                )),
                EventError::UnsupportedSubject("x509".into()),
            ),
        ];
        for (name, token, error) in cases {
            assert_eq!(check(&token), Err(error), "{name}");
        }
        // iat exactly at the skew is still accepted.
        assert!(check(&secevent(&with(good.clone(), "iat", json!(NOW + 60)))).is_ok());
    }

    #[test]
    fn hs256_with_the_rsa_public_key_is_refused_whatever_is_allowed() {
        let f = &*KEYS;
        let good = session_revoked(iss_sub());
        let header = json!({"alg": "HS256", "typ": "secevent+jwt", "kid": "rsa-1"});
        for secret in [
            f.rs256.public_key().to_der().unwrap(),
            f.rs256.public_key().to_pem().unwrap().into_bytes(),
            f.jwks.clone().into_bytes(),
        ] {
            let forged = mint_hs256_raw(&header, &good, &secret);
            let rs_only = Expect {
                algorithms: &[crate::token::jose::Algorithm::RS256],
                ..expect()
            };
            assert_eq!(
                verify_set(forged.as_bytes(), &rs_only, NOW),
                Err(EventError::Token(VerifyError::AlgorithmNotAllowed(
                    "HS256".into()
                )))
            );
            assert_eq!(
                verify_set(forged.as_bytes(), &expect(), NOW),
                Err(EventError::Token(VerifyError::NoMatchingKey))
            );
            // With a configured secret the MAC is checked, and fails.
            let with_secret = Expect {
                keys: &f.with_secret,
                ..expect()
            };
            assert_eq!(
                verify_set(forged.as_bytes(), &with_secret, NOW),
                Err(EventError::Token(VerifyError::BadSignature))
            );
        }
        // The configured secret itself verifies: the MAC path is live.
        let with_secret = Expect {
            keys: &f.with_secret,
            ..expect()
        };
        let genuine = mint_hs256_raw(
            &json!({"alg": "HS256", "typ": "secevent+jwt"}),
            &good,
            SECRET,
        );
        assert!(verify_set(genuine.as_bytes(), &with_secret, NOW).is_ok());
    }

    #[test]
    fn errors_map_to_rfc_8935_codes_and_reasons() {
        let cases = [
            (
                EventError::Token(VerifyError::BadSignature),
                "invalid_key",
                "bad_signature",
            ),
            (
                EventError::Token(VerifyError::UnknownKid("k".into())),
                "invalid_key",
                "unknown_kid",
            ),
            (
                EventError::Token(VerifyError::AlgNone),
                "invalid_key",
                "alg_none",
            ),
            (EventError::WrongIssuer, "invalid_issuer", "wrong_issuer"),
            (
                EventError::MissingClaim("iss"),
                "invalid_issuer",
                "missing_iss",
            ),
            (
                EventError::WrongAudience,
                "invalid_audience",
                "wrong_audience",
            ),
            (EventError::WrongType, "invalid_request", "wrong_type"),
            (EventError::EventCount(2), "invalid_request", "event_count"),
            (
                EventError::ForbiddenClaim("exp"),
                "invalid_request",
                "forbidden_exp",
            ),
            (
                EventError::MissingClaim("jti"),
                "invalid_request",
                "missing_jti",
            ),
            (
                EventError::Token(VerifyError::IssuedInFuture),
                "invalid_request",
                "issued_in_future",
            ),
        ];
        for (error, code, reason) in cases {
            assert_eq!(
                (error.err_code(), error.reason().as_str()),
                (code, reason),
                "{error:?}"
            );
        }
        // Display never carries the token, and stays short for attacker-chosen formats.
        let long =
            EventError::UnsupportedSubject(crate::token::jose::truncate_for_log(&"f".repeat(500)));
        assert!(long.to_string().len() < 120, "{long}");
        let bad = check(&tampered(&mint(
            "secevent+jwt",
            &session_revoked(iss_sub()),
        )))
        .unwrap_err();
        assert_eq!(bad.to_string(), "signature does not verify");
    }
}

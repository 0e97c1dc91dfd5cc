//! Subject identifiers (RFC 9493, and SSF 1.0 §3) → the [`Target`]s a revocation applies to.
//!
//! | format (RFC 9493 §3.2 / SSF §3.2) | members | target |
//! |---|---|---|
//! | `iss_sub` | `iss`, `sub` | [`Identifier::Subject`], issuer `iss` |
//! | `email` | `email` | [`Identifier::Email`] |
//! | `opaque` | `id` | [`Identifier::Opaque`] |
//! | `account` / `phone_number` / `did` / `uri` | `uri` / `phone_number` / `url` / `uri` | [`Identifier::Opaque`] (the value as sent) |
//! | `jwt_id` (SSF §3.2.2) | `iss`, `jti` | [`Identifier::TokenId`], issuer `iss` |
//! | `aliases` (RFC 9493 §3.2.8) | `identifiers` | every identifier in it (no nested `aliases`) |
//! | `complex` (SSF §3.2, CAEP 1.0 §2) | `session`, `user`, … | `session` (an `opaque` id) → [`Identifier::SessionId`], issuer the `user`'s `iss` when it is `iss_sub`; else the `user`'s targets |
//!
//! Any other format is [`EventError::UnsupportedSubject`]. Values are non-empty strings of at
//! most [`MAX_IDENTIFIER_BYTES`]; they are kept as sent (no case folding).

use serde_json::{Map, Value};

use crate::events::{EventError, Identifier, Target};
use crate::token::jose::truncate_for_log;

/// Longest identifier value accepted, bytes.
pub(super) const MAX_IDENTIFIER_BYTES: usize = 1024;

/// The claim named in errors about a subject.
const CLAIM: &str = "sub_id";

/// The targets of subject identifier `subject`.
pub(super) fn targets(subject: &Value) -> Result<Vec<Target>, EventError> {
    let (format, members) = format_of(subject)?;
    match format {
        "complex" => complex(members),
        "aliases" => {
            let Some(Value::Array(identifiers)) = members.get("identifiers") else {
                return Err(EventError::InvalidClaim(CLAIM));
            };
            if identifiers.is_empty() {
                return Err(EventError::InvalidClaim(CLAIM));
            }
            let mut targets = Vec::with_capacity(identifiers.len());
            for identifier in identifiers {
                let target = simple(identifier)?;
                if !targets.contains(&target) {
                    targets.push(target);
                }
            }
            Ok(targets)
        }
        _ => Ok(vec![simple_of(format, members)?]),
    }
}

/// An identifier's `format` and members.
fn format_of(subject: &Value) -> Result<(&str, &Map<String, Value>), EventError> {
    let Value::Object(members) = subject else {
        return Err(EventError::InvalidClaim(CLAIM));
    };
    match members.get("format") {
        Some(Value::String(format)) => Ok((format.as_str(), members)),
        _ => Err(EventError::InvalidClaim(CLAIM)),
    }
}

/// One identifier that names one thing (not `aliases`, not `complex`).
fn simple(identifier: &Value) -> Result<Target, EventError> {
    let (format, members) = format_of(identifier)?;
    match format {
        "aliases" | "complex" => Err(EventError::InvalidClaim(CLAIM)),
        _ => simple_of(format, members),
    }
}

fn simple_of(format: &str, members: &Map<String, Value>) -> Result<Target, EventError> {
    let anyone = |identifier| Target {
        issuer: None,
        identifier,
    };
    Ok(match format {
        "iss_sub" => Target {
            issuer: Some(text(members, "iss")?),
            identifier: Identifier::Subject(text(members, "sub")?),
        },
        "jwt_id" => Target {
            issuer: Some(text(members, "iss")?),
            identifier: Identifier::TokenId(text(members, "jti")?),
        },
        "email" => anyone(Identifier::Email(text(members, "email")?)),
        "opaque" => anyone(Identifier::Opaque(text(members, "id")?)),
        "account" | "uri" => anyone(Identifier::Opaque(text(members, "uri")?)),
        "phone_number" => anyone(Identifier::Opaque(text(members, "phone_number")?)),
        "did" => anyone(Identifier::Opaque(text(members, "url")?)),
        other => return Err(EventError::UnsupportedSubject(truncate_for_log(other))),
    })
}

/// A complex subject: its session when it names one, else its user.
fn complex(members: &Map<String, Value>) -> Result<Vec<Target>, EventError> {
    let user = members.get("user").map(simple).transpose()?;
    if let Some(session) = members.get("session") {
        let (format, session) = format_of(session)?;
        if format != "opaque" {
            return Err(EventError::UnsupportedSubject(truncate_for_log(format)));
        }
        let issuer = user.and_then(|user| match user.identifier {
            Identifier::Subject(_) => user.issuer,
            _ => None,
        });
        return Ok(vec![Target {
            issuer,
            identifier: Identifier::SessionId(text(session, "id")?),
        }]);
    }
    match user {
        Some(user) => Ok(vec![user]),
        None => Err(EventError::UnsupportedSubject(
            "complex without user or session".into(),
        )),
    }
}

/// A member that must be a non-empty string of at most [`MAX_IDENTIFIER_BYTES`].
pub(super) fn text(members: &Map<String, Value>, name: &str) -> Result<String, EventError> {
    match members.get(name) {
        Some(Value::String(value)) if !value.is_empty() && value.len() <= MAX_IDENTIFIER_BYTES => {
            Ok(value.clone())
        }
        _ => Err(EventError::InvalidClaim(CLAIM)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(issuer: Option<&str>, identifier: Identifier) -> Target {
        Target {
            issuer: issuer.map(str::to_string),
            identifier,
        }
    }

    #[test]
    fn each_simple_format_names_its_target() {
        let cases = [
            (
                json!({"format": "iss_sub", "iss": "https://idp/", "sub": "alice"}),
                target(Some("https://idp/"), Identifier::Subject("alice".into())),
            ),
            (
                json!({"format": "email", "email": "Alice@Example.com"}),
                target(None, Identifier::Email("Alice@Example.com".into())),
            ),
            (
                json!({"format": "opaque", "id": "u-1"}),
                target(None, Identifier::Opaque("u-1".into())),
            ),
            (
                json!({"format": "account", "uri": "acct:alice@example.com"}),
                target(None, Identifier::Opaque("acct:alice@example.com".into())),
            ),
            (
                json!({"format": "phone_number", "phone_number": "+12065550100"}),
                target(None, Identifier::Opaque("+12065550100".into())),
            ),
            (
                json!({"format": "did", "url": "did:example:123"}),
                target(None, Identifier::Opaque("did:example:123".into())),
            ),
            (
                json!({"format": "uri", "uri": "https://user.example.com/"}),
                target(None, Identifier::Opaque("https://user.example.com/".into())),
            ),
            (
                json!({"format": "jwt_id", "iss": "https://idp/", "jti": "t-1"}),
                target(Some("https://idp/"), Identifier::TokenId("t-1".into())),
            ),
        ];
        for (subject, expected) in cases {
            assert_eq!(targets(&subject), Ok(vec![expected]), "{subject}");
        }
    }

    #[test]
    fn aliases_give_every_identifier_once() {
        let subject = json!({"format": "aliases", "identifiers": [
            {"format": "email", "email": "alice@example.com"},
            {"format": "iss_sub", "iss": "https://idp/", "sub": "alice"},
            {"format": "email", "email": "alice@example.com"},
        ]});
        assert_eq!(
            targets(&subject),
            Ok(vec![
                target(None, Identifier::Email("alice@example.com".into())),
                target(Some("https://idp/"), Identifier::Subject("alice".into())),
            ])
        );
        for bad in [
            json!({"format": "aliases", "identifiers": []}),
            json!({"format": "aliases"}),
            json!({"format": "aliases", "identifiers": [{"format": "aliases", "identifiers": []}]}),
            json!({"format": "aliases", "identifiers": [{"format": "complex", "user": {}}]}),
        ] {
            assert_eq!(
                targets(&bad),
                Err(EventError::InvalidClaim("sub_id")),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_complex_subject_names_its_session_else_its_user() {
        let user = json!({"format": "iss_sub", "iss": "https://idp/", "sub": "alice"});
        let session = json!({"format": "opaque", "id": "sid-1"});
        assert_eq!(
            targets(
                &json!({"format": "complex", "user": user, "session": session,
                "tenant": {"format": "opaque", "id": "t"}})
            ),
            Ok(vec![target(
                Some("https://idp/"),
                Identifier::SessionId("sid-1".into())
            )])
        );
        assert_eq!(
            targets(&json!({"format": "complex", "session": session})),
            Ok(vec![target(None, Identifier::SessionId("sid-1".into()))])
        );
        assert_eq!(
            targets(&json!({"format": "complex", "session": session,
                "user": {"format": "email", "email": "a@b"}})),
            Ok(vec![target(None, Identifier::SessionId("sid-1".into()))])
        );
        assert_eq!(
            targets(&json!({"format": "complex", "user": user,
                "device": {"format": "opaque", "id": "d"}})),
            Ok(vec![target(
                Some("https://idp/"),
                Identifier::Subject("alice".into())
            )])
        );
        assert_eq!(
            targets(&json!({"format": "complex", "device": {"format": "opaque", "id": "d"}})),
            Err(EventError::UnsupportedSubject(
                "complex without user or session".into()
            ))
        );
        assert_eq!(
            targets(&json!({"format": "complex", "session": {"format": "uri", "uri": "x"}})),
            Err(EventError::UnsupportedSubject("uri".into()))
        );
    }

    #[test]
    fn unknown_formats_and_bad_members_are_refused() {
        let long = "x".repeat(MAX_IDENTIFIER_BYTES + 1);
        assert_eq!(
            targets(&json!({"format": "saml_assertion_id", "issuer": "i", "assertion_id": "a"})),
            Err(EventError::UnsupportedSubject("saml_assertion_id".into()))
        );
        for bad in [
            json!("alice"),
            json!({"email": "a@b"}),
            json!({"format": 1, "email": "a@b"}),
            json!({"format": "email"}),
            json!({"format": "email", "email": ""}),
            json!({"format": "email", "email": 7}),
            json!({"format": "email", "email": long}),
            json!({"format": "iss_sub", "sub": "alice"}),
        ] {
            assert_eq!(
                targets(&bad),
                Err(EventError::InvalidClaim("sub_id")),
                "{bad}"
            );
        }
    }
}

//! Revocation events in, revocation entries out: a Security Event Token pushed or polled
//! from a configured transmitter, or a back-channel logout token from a configured
//! issuer, verified ([`crate::events`]) and turned into [`Entry`]s for the shared set.
//! Pure: the glue reads the request or poll body, calls these, records the entries
//! ([`crate::signals::revocation::apply`]) and answers.

use crate::config::{Config, RevocationConfig, Transmitter};
use crate::events::{
    verify_logout_token, verify_set, Action, EventError, Expect, Identifier, SecurityEvent,
};
use crate::signals::revocation::{Effect, Entry, IdentifierKind, Lifetime, Source};
use crate::token::jwks::KeySet;
use crate::token::verify::peek_issuer;

/// A verified event and the entries it asks for (none for an event that asks nothing
/// of the gate: counted as ignored, acknowledged all the same).
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The event.
    pub event: SecurityEvent,
    /// The entries to record.
    pub entries: Vec<Entry>,
}

/// Verifies a SET from transmitter `t` (its keys `keys`) and works out its entries.
pub fn receive_set(
    config: &Config,
    settings: &RevocationConfig,
    t: &Transmitter,
    keys: &KeySet,
    token: &[u8],
    now_secs: u64,
    source: Source,
) -> Result<Received, EventError> {
    let expect = Expect {
        issuer: &t.issuer,
        audience: &t.audience,
        keys,
        algorithms: &t.algorithms,
        clock_skew_secs: crate::config::DEFAULT_CLOCK_SKEW_SECS,
        max_token_bytes: config.max_token_bytes,
    };
    let event = verify_set(token, &expect, now_secs)?;
    let entries = entries_for(
        config,
        settings,
        &t.subject_issuers,
        &event,
        now_secs,
        source,
    );
    Ok(Received { event, entries })
}

/// Verifies a back-channel logout token from one of the configured issuers (chosen by
/// its `iss`; the keys are that issuer's, `keys_of(index)`) for one of the configured
/// audiences, and works out its entries.
pub fn receive_logout<'k>(
    config: &Config,
    settings: &RevocationConfig,
    keys_of: &dyn Fn(usize) -> Option<&'k KeySet>,
    token: &[u8],
    now_secs: u64,
) -> Result<Received, EventError> {
    let Some(logout) = &settings.backchannel_logout else {
        return Err(EventError::Malformed(
            "back-channel logout is not configured".into(),
        ));
    };
    let iss = peek_issuer(token, config.max_token_bytes).map_err(EventError::Token)?;
    let Some(index) = config.issuer_index(&iss) else {
        return Err(EventError::WrongIssuer);
    };
    let (Some(issuer), Some(keys)) = (config.issuers.get(index), keys_of(index)) else {
        return Err(EventError::Malformed(
            "the issuer's keys are not loaded yet".into(),
        ));
    };
    let mut last = EventError::WrongAudience;
    for audience in &logout.audiences {
        let expect = Expect {
            issuer: &issuer.verify.issuer,
            audience,
            keys,
            algorithms: &issuer.verify.algorithms,
            clock_skew_secs: issuer.verify.clock_skew_secs,
            max_token_bytes: config.max_token_bytes,
        };
        match verify_logout_token(token, &expect, now_secs) {
            Ok(event) => {
                let issuers = [issuer.verify.issuer.clone()];
                let entries =
                    entries_for(config, settings, &issuers, &event, now_secs, Source::Logout);
                return Ok(Received { event, entries });
            }
            Err(EventError::WrongAudience) => last = EventError::WrongAudience,
            Err(other) => return Err(other),
        }
    }
    Err(last)
}

/// The entries an event asks for: one per target and issuer it concerns, only for
/// issuers the gate trusts and identifiers it can match.
fn entries_for(
    config: &Config,
    settings: &RevocationConfig,
    default_issuers: &[String],
    event: &SecurityEvent,
    now_secs: u64,
    source: Source,
) -> Vec<Entry> {
    let effect = match event.action {
        Action::Revoke => Effect::Revoke,
        Action::LowerAssurance => Effect::LowerAssurance,
        Action::Nothing => return Vec::new(),
    };
    let mut entries = Vec::new();
    for target in &event.targets {
        let (kind, value) = match &target.identifier {
            Identifier::SessionId(v) => (IdentifierKind::SessionId, v),
            Identifier::Subject(v) => (IdentifierKind::Subject, v),
            Identifier::TokenId(v) => (IdentifierKind::TokenId, v),
            Identifier::Email(v) if settings.email_claim.is_some() => (IdentifierKind::Email, v),
            Identifier::Opaque(v) if settings.opaque_claim.is_some() => (IdentifierKind::Opaque, v),
            Identifier::Email(_) | Identifier::Opaque(_) => continue,
        };
        let named;
        let issuers: &[String] = match &target.issuer {
            Some(iss) => {
                named = [iss.clone()];
                &named
            }
            None => default_issuers,
        };
        for iss in issuers {
            let Some(issuer) = config.issuer_index(iss).and_then(|i| config.issuers.get(i)) else {
                continue;
            };
            let lifetime = Lifetime {
                max_token_lifetime_secs: settings.max_token_lifetime_secs,
                clock_skew_secs: issuer.verify.clock_skew_secs,
                now_secs,
            };
            let entry = Entry::new(iss, kind, value, event.at, lifetime, effect, source);
            if !entries.contains(&entry) {
                entries.push(entry);
            }
        }
    }
    entries
}

/// The bearer credential a request carries, compared with `expected` in constant time.
pub fn bearer_matches(authorization: Option<&[u8]>, expected: &str) -> bool {
    let Some(value) = authorization else {
        return false;
    };
    let Some(scheme) = value.get(..7) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return false;
    }
    let given = value.get(7..).unwrap_or_default();
    let expected = expected.as_bytes();
    // Compare digests: equal length, and no early exit on the first differing byte.
    let a = hmac_sha256::Hash::hash(given);
    let b = hmac_sha256::Hash::hash(expected);
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    diff == 0 && !expected.is_empty()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::events::fixture::{self, AUDIENCE, ISSUER, KEYS, NOW, SESSION_REVOKED};
    use crate::signals::revocation::{apply, Identifiers, LocalCopy, SessionKeys, Standing};
    use crate::store::MemoryStore;
    use serde_json::{json, Value};

    fn config() -> Config {
        let doc = json!({
            "issuers": [
                {"issuer": ISSUER, "audiences": ["api"], "jwks": serde_json::from_str::<Value>(&KEYS.jwks).unwrap()},
                {"issuer": "https://second.example", "audiences": ["api"], "jwks": serde_json::from_str::<Value>(&KEYS.jwks).unwrap()}
            ],
            "routes": [],
            "revocation": {
                "subject_claims": {"opaque": "uid"},
                "transmitters": [{"name": "t", "issuer": ISSUER, "audience": AUDIENCE,
                    "jwks": serde_json::from_str::<Value>(&KEYS.jwks).unwrap(),
                    "push": {"path": "/push", "bearer_env": "B"}}],
                "backchannel_logout": {"path": "/bcl", "audiences": ["other", AUDIENCE]}
            }
        });
        crate::config::parse(doc.to_string().as_bytes()).unwrap()
    }

    fn set(subject: Value) -> String {
        fixture::mint(
            "secevent+jwt",
            &json!({"iss": ISSUER, "aud": AUDIENCE, "iat": NOW, "jti": "e-1", "sub_id": subject,
                    "events": {SESSION_REVOKED: {"event_timestamp": NOW - 5}}}),
        )
    }

    fn received(token: &str) -> Result<Received, EventError> {
        let c = config();
        let r = c.revocation.as_ref().unwrap();
        receive_set(
            &c,
            r,
            &r.transmitters[0],
            &KEYS.keys,
            token.as_bytes(),
            NOW,
            Source::Push,
        )
    }

    /// Whether a session of `issuer` with these identifiers, issued at `iat`, is covered
    /// once `entries` are recorded.
    fn covers(entries: &[Entry], issuer: &str, ids: Identifiers<'_>, iat: u64) -> bool {
        let mut store = MemoryStore::default();
        apply(&mut store, entries, 1000, NOW).unwrap();
        let keys = SessionKeys::new(issuer, ids, Some(iat));
        matches!(
            LocalCopy::default().standing(&store, &keys),
            Standing::Covered(_)
        )
    }

    fn sid(s: &str) -> Identifiers<'_> {
        Identifiers {
            session_id: Some(s),
            ..Identifiers::default()
        }
    }

    #[test]
    fn a_session_revoked_set_covers_that_session_only() {
        let subject = json!({"format": "complex",
            "user": {"format": "iss_sub", "iss": ISSUER, "sub": "alice"},
            "session": {"format": "opaque", "id": "s-1"}});
        let r = received(&set(subject)).unwrap();
        assert_eq!(r.entries.len(), 1);
        assert!(covers(&r.entries, ISSUER, sid("s-1"), NOW - 100));
        assert!(!covers(&r.entries, ISSUER, sid("s-2"), NOW - 100));
        assert!(!covers(
            &r.entries,
            "https://second.example",
            sid("s-1"),
            NOW - 100
        ));
        // Issued after the event's time: a new sign-in.
        assert!(!covers(&r.entries, ISSUER, sid("s-1"), NOW - 4));
    }

    #[test]
    fn user_subjects_cover_their_issuers_sessions() {
        let alice = Identifiers {
            subject: Some("alice"),
            ..Identifiers::default()
        };
        let r = received(&set(
            json!({"format": "iss_sub", "iss": ISSUER, "sub": "alice"}),
        ))
        .unwrap();
        assert!(covers(&r.entries, ISSUER, alice, NOW - 100));
        assert!(!covers(
            &r.entries,
            "https://second.example",
            alice,
            NOW - 100
        ));
        // An iss_sub of an issuer the gate does not trust asks nothing.
        let r = received(&set(
            json!({"format": "iss_sub", "iss": "https://x", "sub": "alice"}),
        ))
        .unwrap();
        assert!(r.entries.is_empty());
        // email: every issuer the transmitter speaks for.
        let r = received(&set(json!({"format": "email", "email": "a@example.com"}))).unwrap();
        assert_eq!(r.entries.len(), 2);
        let email = Identifiers {
            email: Some("a@example.com"),
            ..Identifiers::default()
        };
        assert!(covers(
            &r.entries,
            "https://second.example",
            email,
            NOW - 100
        ));
        // opaque: through the configured claim.
        let r = received(&set(json!({"format": "opaque", "id": "u-9"}))).unwrap();
        let opaque = Identifiers {
            opaque: Some("u-9"),
            ..Identifiers::default()
        };
        assert!(covers(&r.entries, ISSUER, opaque, NOW - 100));
    }

    #[test]
    fn garbage_is_refused_quickly() {
        for body in [&b"abc"[..], b"", b"a.b.c", b"....", b"\xff\xfe"] {
            let text = String::from_utf8_lossy(body).to_string();
            assert!(received(&text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn a_bad_set_is_refused_and_asks_nothing() {
        let good = set(json!({"format": "iss_sub", "iss": ISSUER, "sub": "alice"}));
        assert!(received(&fixture::tampered(&good)).is_err());
        let wrong_aud = fixture::mint(
            "secevent+jwt",
            &json!({"iss": ISSUER, "aud": "elsewhere", "iat": NOW, "jti": "e", "sub_id": {"format": "email", "email": "a@b"},
                    "events": {SESSION_REVOKED: {}}}),
        );
        assert_eq!(received(&wrong_aud), Err(EventError::WrongAudience));
    }

    #[test]
    fn logout_tokens_are_checked_against_each_configured_audience() {
        let c = config();
        let r = c.revocation.as_ref().unwrap();
        let keys = &KEYS.keys;
        let keys_of = |_: usize| Some(keys);
        let logout = |aud: &str| {
            fixture::mint(
                "logout+jwt",
                &json!({"iss": ISSUER, "aud": aud, "iat": NOW, "exp": NOW + 120, "jti": "l-1",
                        "sid": "s-7", "events": {fixture::LOGOUT: {}}}),
            )
        };
        let ok = receive_logout(&c, r, &keys_of, logout(AUDIENCE).as_bytes(), NOW).unwrap();
        assert!(covers(&ok.entries, ISSUER, sid("s-7"), NOW - 10));
        let refused = receive_logout(&c, r, &keys_of, logout("nobody").as_bytes(), NOW);
        assert_eq!(refused, Err(EventError::WrongAudience));
        // A SET is not a logout token, even when posted to the logout endpoint.
        let set = set(json!({"format": "iss_sub", "iss": ISSUER, "sub": "alice"}));
        assert!(receive_logout(&c, r, &keys_of, set.as_bytes(), NOW).is_err());
    }

    #[test]
    fn bearer_credentials_are_compared_exactly() {
        assert!(bearer_matches(Some(b"Bearer s3cret"), "s3cret"));
        assert!(bearer_matches(Some(b"bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(Some(b"Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(Some(b"Bearer s3cret "), "s3cret"));
        assert!(!bearer_matches(Some(b"Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(Some(b"Bearer"), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
        assert!(!bearer_matches(Some(b"Bearer "), ""));
    }
}

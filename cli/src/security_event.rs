//! Security Event Tokens (SET, RFC 8417) as the OpenID Shared Signals Framework 1.0 (SSF)
//! profiles them, for the CAEP 1.0 and RISC 1.0 event types mfa-gate acts on, and OpenID
//! Connect Back-Channel Logout 1.0 logout tokens. Used by the demo transmitter and by
//! `mfa-gate set`; test tooling only.
//!
//! A SET here is exactly what the specifications prescribe:
//! - header `typ: secevent+jwt` (RFC 8417 section 2.3, SSF section 4.1.1), `alg` and `kid` of
//!   the transmitter's signing key (SSF section 4.1.4: the key is in the `jwks_uri` JWKS);
//! - claims `iss`, `iat`, `jti` (RFC 8417 section 2.2), `aud` (SSF section 4.1.8), `txn`
//!   (SSF section 4.1.9), the subject in the top-level `sub_id` (SSF section 3.1, RFC 9493),
//!   and exactly one event in `events` (SSF section 4.2.1);
//! - no `sub` (SSF section 4.1.2) and no `exp` (SSF section 4.1.7).
//!
//! A logout token (Back-Channel Logout 1.0 section 2.4) has header `typ: logout+jwt`, claims
//! `iss`, `aud`, `iat`, `exp`, `jti`, `events` with the back-channel-logout member (an empty
//! object), `sub` and/or `sid`, and never `nonce` (PROHIBITED there).

use crate::error::{CliError, CliResult};
use crate::keys::SigningKey;
use serde_json::{json, Map, Value};

/// The `typ` header of a SET (RFC 8417 section 2.3; SSF section 4.1.1).
pub const SET_TYP: &str = "secevent+jwt";
/// The `typ` header of a logout token (Back-Channel Logout 1.0 section 2.4).
pub const LOGOUT_TYP: &str = "logout+jwt";
/// The `events` member that makes a JWT a logout token (Back-Channel Logout 1.0 section 2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Lifetime of a logout token: `exp` is REQUIRED (Back-Channel Logout 1.0 section 2.4) and
/// should be short (two minutes, as ASVS 5.0 10.5.5 recommends).
pub const LOGOUT_TOKEN_LIFETIME_SECS: u64 = 120;
/// The name `mfa-gate set --event` and the demo's `/ssf/emit` use for a logout token.
pub const LOGOUT_EVENT_NAME: &str = "backchannel-logout";

/// Which specification defines an event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// OpenID Continuous Access Evaluation Profile 1.0.
    Caep,
    /// OpenID RISC Profile Specification 1.0.
    Risc,
}

/// One event type: its short name, its URI (the key in `events`) and where it is defined.
#[derive(Debug)]
pub struct EventType {
    /// Short name (`session-revoked`), the last path segment of the URI.
    pub name: &'static str,
    /// The event type URI.
    pub uri: &'static str,
    /// CAEP or RISC.
    pub profile: Profile,
    /// The section of its profile that defines it.
    pub section: &'static str,
}

/// The event types the demo transmitter and `mfa-gate set` can emit.
pub const EVENT_TYPES: [EventType; 9] = [
    EventType {
        name: "session-revoked",
        uri: "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
        profile: Profile::Caep,
        section: "CAEP 1.0 section 3.1",
    },
    EventType {
        name: "token-claims-change",
        uri: "https://schemas.openid.net/secevent/caep/event-type/token-claims-change",
        profile: Profile::Caep,
        section: "CAEP 1.0 section 3.2",
    },
    EventType {
        name: "credential-change",
        uri: "https://schemas.openid.net/secevent/caep/event-type/credential-change",
        profile: Profile::Caep,
        section: "CAEP 1.0 section 3.3",
    },
    EventType {
        name: "assurance-level-change",
        uri: "https://schemas.openid.net/secevent/caep/event-type/assurance-level-change",
        profile: Profile::Caep,
        section: "CAEP 1.0 section 3.4",
    },
    EventType {
        name: "device-compliance-change",
        uri: "https://schemas.openid.net/secevent/caep/event-type/device-compliance-change",
        profile: Profile::Caep,
        section: "CAEP 1.0 section 3.5",
    },
    EventType {
        name: "account-credential-change-required",
        uri:
            "https://schemas.openid.net/secevent/risc/event-type/account-credential-change-required",
        profile: Profile::Risc,
        section: "RISC 1.0 section 2.1",
    },
    EventType {
        name: "account-purged",
        uri: "https://schemas.openid.net/secevent/risc/event-type/account-purged",
        profile: Profile::Risc,
        section: "RISC 1.0 section 2.2",
    },
    EventType {
        name: "account-disabled",
        uri: "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
        profile: Profile::Risc,
        section: "RISC 1.0 section 2.3",
    },
    EventType {
        name: "sessions-revoked",
        uri: "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked",
        profile: Profile::Risc,
        section: "RISC 1.0 section 2.11 (deprecated there in favour of CAEP session-revoked)",
    },
];

/// The event type named `name` (short name or full URI).
pub fn event_type(name: &str) -> CliResult<&'static EventType> {
    EVENT_TYPES
        .iter()
        .find(|t| t.name == name || t.uri == name)
        .ok_or_else(|| {
            CliError::new(format!(
                "unknown event \"{name}\" (expected {} or {LOGOUT_EVENT_NAME})",
                event_names()
            ))
        })
}

/// The short names of every event type, comma-separated.
pub fn event_names() -> String {
    let names: Vec<&str> = EVENT_TYPES.iter().map(|t| t.name).collect();
    names.join(", ")
}

/// A Subject Identifier (RFC 9493 section 3) of one of the formats mfa-gate matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimpleSubject {
    /// `iss_sub` (RFC 9493 section 3.2.4): the `iss` and `sub` of the user's tokens.
    IssSub { iss: String, sub: String },
    /// `email` (RFC 9493 section 3.2.2).
    Email(String),
    /// `opaque` (RFC 9493 section 3.2.6): an identifier only the two parties understand.
    Opaque(String),
}

impl SimpleSubject {
    /// The Subject Identifier as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            SimpleSubject::IssSub { iss, sub } => {
                json!({"format": "iss_sub", "iss": iss, "sub": sub})
            }
            SimpleSubject::Email(email) => json!({"format": "email", "email": email}),
            SimpleSubject::Opaque(id) => json!({"format": "opaque", "id": id}),
        }
    }
}

/// The value of `sub_id`: a simple subject (SSF section 3.2) or a complex one with a `user`
/// and/or a `session` member (SSF section 3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Simple(SimpleSubject),
    Complex {
        user: Option<SimpleSubject>,
        session: Option<SimpleSubject>,
    },
}

impl Subject {
    /// A complex subject: the user and one of their sessions (`session` is `opaque` with the
    /// session's `sid`), as CAEP 1.0 section 3.1's second example has it.
    pub fn user_session(user: SimpleSubject, sid: &str) -> Subject {
        Subject::Complex {
            user: Some(user),
            session: Some(SimpleSubject::Opaque(sid.to_string())),
        }
    }

    /// The `sub_id` JSON. A complex subject without members is refused (SSF section 3.3
    /// requires one or more).
    pub fn to_json(&self) -> CliResult<Value> {
        match self {
            Subject::Simple(simple) => Ok(simple.to_json()),
            Subject::Complex { user, session } => {
                let mut object = Map::new();
                object.insert("format".into(), "complex".into());
                if let Some(user) = user {
                    object.insert("user".into(), user.to_json());
                }
                if let Some(session) = session {
                    object.insert("session".into(), session.to_json());
                }
                if object.len() == 1 {
                    return Err(CliError::new(
                        "a complex subject needs a user or a session member",
                    ));
                }
                Ok(Value::Object(object))
            }
        }
    }
}

/// What an event says beyond its type: CAEP's optional claims (CAEP 1.0 section 2), RISC's
/// `reason` (account-disabled) and each type's own members.
#[derive(Debug, Clone, Default)]
pub struct EventDetails {
    /// `event_timestamp` (CAEP 1.0 section 2); CAEP events get the signing time when absent.
    pub event_timestamp: Option<u64>,
    /// `initiating_entity`: `admin`, `user`, `policy` or `system` (CAEP 1.0 section 2).
    pub initiating_entity: Option<String>,
    /// `reason_admin`, in English (CAEP 1.0 section 2: a language-tagged object).
    pub reason_admin: Option<String>,
    /// `reason_user`, in English.
    pub reason_user: Option<String>,
    /// Event-specific members (`credential_type`, `claims`, `current_level`, RISC `reason`,
    /// ...), over the defaults [`default_members`] gives.
    pub members: Map<String, Value>,
}

/// The event-specific members a type requires, with the values the demo uses when none are
/// given: a push credential re-enrolled, an assurance level lowered (so the session must step
/// up), a device turned non-compliant, the `amr` claim changed.
pub fn default_members(event: &EventType) -> Map<String, Value> {
    let value = match event.name {
        // CAEP 1.0 section 3.3: credential_type and change_type REQUIRED.
        "credential-change" => json!({"credential_type": "app", "change_type": "update"}),
        // CAEP 1.0 section 3.4: namespace and current_level REQUIRED; change_direction
        // SHOULD accompany previous_level.
        "assurance-level-change" => json!({
            "namespace": "NIST-AAL",
            "current_level": "nist-aal1",
            "previous_level": "nist-aal2",
            "change_direction": "decrease",
        }),
        // CAEP 1.0 section 3.5: previous_status and current_status REQUIRED.
        "device-compliance-change" => {
            json!({"previous_status": "compliant", "current_status": "not-compliant"})
        }
        // CAEP 1.0 section 3.2: claims REQUIRED (a JSON object of the new values).
        "token-claims-change" => json!({"claims": {"amr": ["pwd"]}}),
        _ => json!({}),
    };
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn one_of(event: &EventType, member: &str, value: &Value, allowed: &[&str]) -> CliResult<()> {
    match value.as_str() {
        Some(text) if allowed.contains(&text) => Ok(()),
        _ => Err(CliError::new(format!(
            "{}: {member} must be one of {} ({}), not {value}",
            event.name,
            allowed.join(", "),
            event.section
        ))),
    }
}

/// Checks the event-specific members against the type's definition.
fn check_members(event: &EventType, members: &Map<String, Value>) -> CliResult<()> {
    let required: &[&str] = match event.name {
        "credential-change" => &["credential_type", "change_type"],
        "assurance-level-change" => &["namespace", "current_level"],
        "device-compliance-change" => &["previous_status", "current_status"],
        "token-claims-change" => &["claims"],
        _ => &[],
    };
    for name in required {
        if !members.contains_key(*name) {
            return Err(CliError::new(format!(
                "{}: {name} is REQUIRED ({})",
                event.name, event.section
            )));
        }
    }
    for (name, value) in members {
        match (event.name, name.as_str()) {
            ("credential-change", "change_type") => one_of(
                event,
                name,
                value,
                &["create", "revoke", "update", "delete"],
            )?,
            ("assurance-level-change", "change_direction") => {
                one_of(event, name, value, &["increase", "decrease"])?
            }
            ("device-compliance-change", "previous_status" | "current_status") => {
                one_of(event, name, value, &["compliant", "not-compliant"])?
            }
            ("token-claims-change", "claims") if !value.is_object() => {
                return Err(CliError::new(format!(
                    "token-claims-change: claims must be a JSON object ({})",
                    event.section
                )))
            }
            ("account-disabled", "reason") => {
                one_of(event, name, value, &["hijacking", "bulk-account"])?
            }
            (_, "event_timestamp" | "initiating_entity" | "reason_admin" | "reason_user") => {
                return Err(CliError::new(format!(
                    "{}: set {name} with its own option, not as an event member",
                    event.name
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The event object (the value under the type's URI in `events`).
pub fn event_object(
    event: &EventType,
    details: &EventDetails,
    now: u64,
) -> CliResult<Map<String, Value>> {
    let mut object = default_members(event);
    for (name, value) in &details.members {
        object.insert(name.clone(), value.clone());
    }
    check_members(event, &object)?;
    match event.profile {
        Profile::Caep => {
            object.insert(
                "event_timestamp".into(),
                details.event_timestamp.unwrap_or(now).into(),
            );
            if let Some(entity) = &details.initiating_entity {
                let value = Value::from(entity.as_str());
                one_of(
                    event,
                    "initiating_entity",
                    &value,
                    &["admin", "user", "policy", "system"],
                )?;
                object.insert("initiating_entity".into(), value);
            }
            if let Some(reason) = &details.reason_admin {
                object.insert("reason_admin".into(), json!({ "en": reason }));
            }
            if let Some(reason) = &details.reason_user {
                object.insert("reason_user".into(), json!({ "en": reason }));
            }
        }
        Profile::Risc => {
            // RISC 1.0 defines none of CAEP's optional claims for these types.
            let given = [
                ("event_timestamp", details.event_timestamp.is_some()),
                ("initiating_entity", details.initiating_entity.is_some()),
                ("reason_admin", details.reason_admin.is_some()),
                ("reason_user", details.reason_user.is_some()),
            ];
            if let Some((name, _)) = given.iter().find(|(_, set)| *set) {
                return Err(CliError::new(format!(
                    "{}: RISC defines no {name} for this event ({})",
                    event.name, event.section
                )));
            }
        }
    }
    Ok(object)
}

/// Everything a SET carries.
#[derive(Debug, Clone)]
pub struct SetContent {
    /// `iss`: the transmitter (SSF section 4.1.6).
    pub issuer: String,
    /// `aud`: the receiver(s) (SSF section 4.1.8); one value is sent as a string.
    pub audience: Vec<String>,
    /// `iat`.
    pub issued_at: u64,
    /// `jti`: unique per SET (RFC 8417 section 2.2).
    pub jti: String,
    /// `txn`: the same for every SET one cause produced (SSF section 4.1.9).
    pub txn: Option<String>,
    /// `sub_id`.
    pub subject: Subject,
    /// The one event.
    pub event: &'static EventType,
    /// Its members.
    pub details: EventDetails,
}

fn audience_claim(audience: &[String]) -> CliResult<Value> {
    match audience {
        [] => Err(CliError::new("a SET needs an audience (aud)")),
        [one] => Ok(one.as_str().into()),
        many => Ok(json!(many)),
    }
}

/// The SET's claims (no `sub`, no `exp`).
pub fn set_claims(content: &SetContent) -> CliResult<Map<String, Value>> {
    let mut claims = Map::new();
    claims.insert("iss".into(), content.issuer.as_str().into());
    claims.insert("iat".into(), content.issued_at.into());
    claims.insert("jti".into(), content.jti.as_str().into());
    claims.insert("aud".into(), audience_claim(&content.audience)?);
    if let Some(txn) = &content.txn {
        claims.insert("txn".into(), txn.as_str().into());
    }
    claims.insert("sub_id".into(), content.subject.to_json()?);
    let object = event_object(content.event, &content.details, content.issued_at)?;
    let mut events = Map::new();
    events.insert(content.event.uri.into(), Value::Object(object));
    claims.insert("events".into(), Value::Object(events));
    Ok(claims)
}

/// Signs a SET with `key` (header `typ: secevent+jwt`, the key's `alg` and `kid`).
pub fn sign_set(key: &SigningKey, content: &SetContent) -> CliResult<String> {
    key.sign_typed(&set_claims(content)?, Some(SET_TYP))
}

/// Everything a logout token carries (Back-Channel Logout 1.0 section 2.4).
#[derive(Debug, Clone)]
pub struct LogoutContent {
    /// `iss`: the OpenID Provider.
    pub issuer: String,
    /// `aud`: the relying party's client_id.
    pub audience: Vec<String>,
    /// `iat`; `exp` is `iat` + [`LOGOUT_TOKEN_LIFETIME_SECS`].
    pub issued_at: u64,
    /// `jti`.
    pub jti: String,
    /// `sub`: all of the user's sessions when `sid` is absent.
    pub subject: Option<String>,
    /// `sid`: the one session.
    pub session: Option<String>,
}

/// The logout token's claims: REQUIRED `iss`, `aud`, `iat`, `exp`, `jti`, `events`; `sub`
/// and/or `sid` (at least one); never `nonce`.
pub fn logout_claims(content: &LogoutContent) -> CliResult<Map<String, Value>> {
    if content.subject.is_none() && content.session.is_none() {
        return Err(CliError::new(
            "a logout token needs a sub or a sid (Back-Channel Logout 1.0 section 2.4)",
        ));
    }
    let mut claims = Map::new();
    claims.insert("iss".into(), content.issuer.as_str().into());
    claims.insert("aud".into(), audience_claim(&content.audience)?);
    claims.insert("iat".into(), content.issued_at.into());
    claims.insert(
        "exp".into(),
        (content.issued_at + LOGOUT_TOKEN_LIFETIME_SECS).into(),
    );
    claims.insert("jti".into(), content.jti.as_str().into());
    if let Some(sub) = &content.subject {
        claims.insert("sub".into(), sub.as_str().into());
    }
    if let Some(sid) = &content.session {
        claims.insert("sid".into(), sid.as_str().into());
    }
    claims.insert("events".into(), json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
    Ok(claims)
}

/// Signs a logout token with `key` (header `typ: logout+jwt`). Back-Channel Logout 1.0
/// section 2.4: the same keys sign logout tokens as sign ID tokens.
pub fn sign_logout(key: &SigningKey, content: &LogoutContent) -> CliResult<String> {
    key.sign_typed(&logout_claims(content)?, Some(LOGOUT_TYP))
}

/// A fresh random identifier (128 bits, hex) for `jti`, `txn` and `sid`.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    jwt_simple::reexports::rand::fill(&mut bytes[..]);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn content(event: &str) -> SetContent {
        SetContent {
            issuer: "https://idp.example".into(),
            audience: vec!["rp".into()],
            issued_at: 1_700_000_000,
            jti: "j1".into(),
            txn: None,
            subject: Subject::Simple(SimpleSubject::Email("a@example.com".into())),
            event: event_type(event).unwrap(),
            details: EventDetails::default(),
        }
    }

    #[test]
    fn a_set_has_one_event_no_sub_and_no_exp() {
        let claims = set_claims(&content("session-revoked")).unwrap();
        assert!(!claims.contains_key("sub") && !claims.contains_key("exp"));
        assert_eq!(claims["aud"], "rp");
        let events = claims["events"].as_object().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[EVENT_TYPES[0].uri]["event_timestamp"],
            1_700_000_000u64
        );
    }

    #[test]
    fn required_members_and_enumerations_are_enforced() {
        let mut c = content("credential-change");
        c.details
            .members
            .insert("change_type".into(), "renamed".into());
        assert!(set_claims(&c).is_err());
        let mut c = content("account-disabled");
        c.details.reason_admin = Some("x".into());
        assert!(set_claims(&c).is_err(), "RISC has no reason_admin");
    }

    #[test]
    fn a_logout_token_needs_sub_or_sid_and_has_no_nonce() {
        let mut logout = LogoutContent {
            issuer: "https://idp.example".into(),
            audience: vec!["rp".into()],
            issued_at: 10,
            jti: "j".into(),
            subject: None,
            session: None,
        };
        assert!(logout_claims(&logout).is_err());
        logout.session = Some("s".into());
        let claims = logout_claims(&logout).unwrap();
        assert_eq!(claims["exp"], 10 + LOGOUT_TOKEN_LIFETIME_SECS);
        assert!(!claims.contains_key("nonce"));
        assert_eq!(claims["events"][BACKCHANNEL_LOGOUT_EVENT], json!({}));
    }
}

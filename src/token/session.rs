//! A verified session, as cached per worker VM. What every request on the session needs
//! (the upstream identity header values, the decision record's session fields as JSON) is
//! worked out once, when the session is established, not on each request.

use crate::assurance::{Assurance, Level};
use crate::json::{json_str, json_str_array};
use crate::signals::revocation::SessionKeys;
use crate::token::binding::Confirmation;
use std::rc::Rc;

/// Headers set on the upstream request, (name, value): shared, since a session's are the
/// same on every request.
pub type HeaderList = Rc<[(String, String)]>;

/// What a verified session is: who, from which issuer, how they authenticated, when.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionFacts {
    /// Index into `Config::issuers`.
    pub issuer_index: usize,
    /// The issuer's `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: Option<String>,
    /// `sid`.
    pub session_id: Option<String>,
    /// Methods and level.
    pub assurance: Assurance,
    /// `iat`.
    pub issued_at: Option<u64>,
    /// `exp` (0 when unknown, e.g. a jwt_authn payload without exp).
    pub expires_at: u64,
    /// Its revocation digests (when revocation is on).
    pub revocation: Option<SessionKeys>,
    /// The user's id at the IdP (when the gate ends its sessions there).
    pub idp_user: Option<String>,
    /// What the token is bound to (`cnf`): `None` unbound; `Err` a malformed `cnf`, which
    /// is refused (never read as unbound).
    pub binding: Result<Option<Confirmation>, &'static str>,
    /// The posture claim's value, when a posture claim is configured.
    pub posture_claim: Option<String>,
    /// The key of the subject's sightings (issuer and `sub`, digested once).
    pub subject_key: Option<[u8; 16]>,
    /// The push user this session belongs to (the configured claim's value, keyed as push
    /// endpoints key it), when push prompts are guarded.
    pub push_user: Option<crate::prompts::UserKey>,
}

/// A session whose token (or jwt_authn payload) was verified: its facts (read through
/// `Deref`) and what every request on it needs, rendered once.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    facts: SessionFacts,
    /// The identity headers for the upstream (configured names, header-safe values).
    identity_headers: HeaderList,
    /// `,"subject":…,"session_id":…,"issuer":…,"methods":[…],"level":…` for the record.
    record_fields: String,
}

impl std::ops::Deref for Session {
    type Target = SessionFacts;

    fn deref(&self) -> &SessionFacts {
        &self.facts
    }
}

impl Session {
    /// A session from its facts, with its per-request renderings worked out: the identity
    /// headers under the configured names (`sub` and each method percent-encoded outside
    /// visible ASCII; methods comma-separated), and the record's session fields.
    pub fn new(facts: SessionFacts, names: &UpstreamHeaders) -> Self {
        let mut identity = Vec::with_capacity(3);
        if let (Some(name), Some(sub)) = (&names.subject, &facts.subject) {
            identity.push((name.clone(), header_safe(sub)));
        }
        if let Some(name) = &names.level {
            identity.push((name.clone(), facts.assurance.level.as_str().to_string()));
        }
        if let Some(name) = &names.methods {
            let methods: Vec<String> = facts
                .assurance
                .methods
                .iter()
                .map(|m| header_safe(m))
                .collect();
            identity.push((name.clone(), methods.join(",")));
        }
        let mut record_fields = String::with_capacity(128);
        if let Some(subject) = &facts.subject {
            record_fields.push_str(",\"subject\":");
            json_str(&mut record_fields, subject);
        }
        if let Some(sid) = &facts.session_id {
            record_fields.push_str(",\"session_id\":");
            json_str(&mut record_fields, sid);
        }
        record_fields.push_str(",\"issuer\":");
        json_str(&mut record_fields, &facts.issuer);
        record_fields.push_str(",\"methods\":");
        json_str_array(&mut record_fields, &facts.assurance.methods);
        record_fields.push_str(",\"level\":");
        json_str(&mut record_fields, facts.assurance.level.as_str());
        Session {
            facts,
            identity_headers: identity.into(),
            record_fields,
        }
    }

    /// The level found.
    pub fn level(&self) -> Level {
        self.assurance.level
    }

    /// The identity headers for the upstream, (name, value).
    pub fn identity_headers(&self) -> &HeaderList {
        &self.identity_headers
    }

    /// The record's session fields as JSON members, each preceded by a comma.
    pub fn record_fields(&self) -> &str {
        &self.record_fields
    }
}

/// Upstream header names; `None` disables that header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamHeaders {
    pub subject: Option<String>,
    pub level: Option<String>,
    pub methods: Option<String>,
}

/// The identity headers' default names: stripped from every request even when an operator
/// disables or renames them, since an upstream may still read them.
pub const DEFAULT_UPSTREAM_HEADERS: [&str; 3] = [
    "x-mfa-gate-subject",
    "x-mfa-gate-level",
    "x-mfa-gate-methods",
];

impl UpstreamHeaders {
    /// The configured names, for stripping client-supplied copies.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        [&self.subject, &self.level, &self.methods]
            .into_iter()
            .filter_map(|n| n.as_deref())
    }

    /// Whether a request header called `name` could reach the upstream as one of ours:
    /// any configured or default name, compared ASCII case-insensitively with `_` read as
    /// `-` (WSGI, Rack, CGI and PHP fold both into `HTTP_X_MFA_GATE_LEVEL`).
    pub fn shadows(&self, name: &[u8]) -> bool {
        let folded_eq = |ours: &str| {
            ours.len() == name.len()
                && ours.bytes().zip(name).all(|(a, &b)| {
                    let b = if b == b'_' {
                        b'-'
                    } else {
                        b.to_ascii_lowercase()
                    };
                    a == b
                })
        };
        DEFAULT_UPSTREAM_HEADERS.iter().any(|d| folded_eq(d)) || self.names().any(folded_eq)
    }
}

/// Percent-encodes anything outside visible ASCII (and `%` itself), so a claim can never
/// inject a header line or an invalid header byte.
pub fn header_safe(value: &str) -> String {
    crate::response::percent_encode_unless(value, |b| (0x20..0x7f).contains(&b) && b != b'%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_cannot_inject() {
        assert_eq!(header_safe("alice\r\nx-admin: 1"), "alice%0D%0Ax-admin: 1");
        assert_eq!(header_safe("zoë"), "zo%C3%AB");
        assert_eq!(header_safe("100%"), "100%25");
    }

    #[test]
    fn renderings_are_worked_out_once() {
        let facts = SessionFacts {
            issuer_index: 0,
            issuer: "https://idp".into(),
            subject: Some("al\"ice\n".into()),
            session_id: None,
            assurance: Assurance {
                methods: vec!["pwd".into(), "h\u{e9}k".into()],
                level: Level::Push,
                unknown: Vec::new(),
                auth_time: None,
                auth_time_malformed: false,
            },
            issued_at: None,
            expires_at: 10,
            revocation: None,
            idp_user: None,
            binding: Ok(None),
            posture_claim: None,
            push_user: None,
            subject_key: None,
        };
        let names = UpstreamHeaders {
            subject: Some("x-sub".into()),
            level: Some("x-level".into()),
            methods: Some("x-methods".into()),
        };
        let session = Session::new(facts, &names);
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        assert_eq!(
            &session.identity_headers()[..],
            &[
                pair("x-sub", "al\"ice%0A"),
                pair("x-level", "push"),
                pair("x-methods", "pwd,h%C3%A9k")
            ]
        );
        let json: serde_json::Value =
            serde_json::from_str(&format!("{{\"x\":1{}}}", session.record_fields())).unwrap();
        assert_eq!(json["subject"], "al\"ice\n");
        assert_eq!(json["issuer"], "https://idp");
        assert_eq!(json["methods"], serde_json::json!(["pwd", "h\u{e9}k"]));
        assert_eq!(json["level"], "push");
        assert!(json.get("session_id").is_none());
    }
}

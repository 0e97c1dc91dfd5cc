//! Event types and what mfa-gate does about each.
//!
//! | event type | defined in | action |
//! |---|---|---|
//! | CAEP `session-revoked` | CAEP 1.0 §3.1 | [`Action::Revoke`] |
//! | CAEP `token-claims-change` | CAEP 1.0 §3.2 | [`Action::Revoke`] (the session's claims are stale) |
//! | CAEP `credential-change` | CAEP 1.0 §3.3 | [`Action::Revoke`] |
//! | CAEP `assurance-level-change` | CAEP 1.0 §3.4 | [`Action::LowerAssurance`] when `change_direction` is `decrease`, else [`Action::Nothing`] |
//! | CAEP `device-compliance-change` | CAEP 1.0 §3.5 | [`Action::Revoke`] when `current_status` is `not-compliant`, else [`Action::Nothing`] |
//! | RISC `account-credential-change-required`, `account-purged`, `account-disabled`, `sessions-revoked` | RISC 1.0 §2 | [`Action::Revoke`] |
//! | every other CAEP, RISC or SSF (`verification`, `stream-updated`) type | | [`Action::Nothing`] |
//! | Back-Channel Logout (in a logout token only) | BCL 1.0 §2.4 | [`Action::Revoke`] |
//!
//! An event takes effect at its `event_timestamp` (CAEP 1.0 §2) when that is a number, else
//! at the token's `iat`.

use serde_json::{Map, Value};

use crate::events::Action;

/// The prefix of every CAEP event-type URI.
pub const CAEP_PREFIX: &str = "https://schemas.openid.net/secevent/caep/event-type/";
/// The prefix of every RISC event-type URI.
pub const RISC_PREFIX: &str = "https://schemas.openid.net/secevent/risc/event-type/";
/// The prefix of SSF's own event types (stream verification and updates, SSF 1.0 §8.1.4).
pub const SSF_PREFIX: &str = "https://schemas.openid.net/secevent/ssf/event-type/";
/// The `events` member that makes a JWT a logout token (Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How an event type's action is decided.
#[derive(Clone, Copy)]
enum Rule {
    Always(Action),
    /// CAEP `assurance-level-change`: lower only on `change_direction: decrease`.
    LowerWhenDecreased,
    /// CAEP `device-compliance-change`: revoke only on `current_status: not-compliant`.
    RevokeWhenNotCompliant,
}

const REVOKE: Rule = Rule::Always(Action::Revoke);
const IGNORE: Rule = Rule::Always(Action::Nothing);

/// An event type: the last segment of its URI, its short name and its rule.
type EventType = (&'static str, &'static str, Rule);

/// CAEP 1.0 event types.
const CAEP: [EventType; 8] = [
    ("session-revoked", "caep.session-revoked", REVOKE),
    ("token-claims-change", "caep.token-claims-change", REVOKE),
    ("credential-change", "caep.credential-change", REVOKE),
    (
        "assurance-level-change",
        "caep.assurance-level-change",
        Rule::LowerWhenDecreased,
    ),
    (
        "device-compliance-change",
        "caep.device-compliance-change",
        Rule::RevokeWhenNotCompliant,
    ),
    ("session-established", "caep.session-established", IGNORE),
    ("session-presented", "caep.session-presented", IGNORE),
    ("risk-level-change", "caep.risk-level-change", IGNORE),
];

/// RISC 1.0 event types.
const RISC: [EventType; 14] = [
    (
        "account-credential-change-required",
        "risc.account-credential-change-required",
        REVOKE,
    ),
    ("account-purged", "risc.account-purged", REVOKE),
    ("account-disabled", "risc.account-disabled", REVOKE),
    ("sessions-revoked", "risc.sessions-revoked", REVOKE),
    ("account-enabled", "risc.account-enabled", IGNORE),
    (
        "credential-compromise",
        "risc.credential-compromise",
        IGNORE,
    ),
    ("identifier-changed", "risc.identifier-changed", IGNORE),
    ("identifier-recycled", "risc.identifier-recycled", IGNORE),
    ("opt-in", "risc.opt-in", IGNORE),
    ("opt-out-initiated", "risc.opt-out-initiated", IGNORE),
    ("opt-out-cancelled", "risc.opt-out-cancelled", IGNORE),
    ("opt-out-effective", "risc.opt-out-effective", IGNORE),
    ("recovery-activated", "risc.recovery-activated", IGNORE),
    (
        "recovery-information-changed",
        "risc.recovery-information-changed",
        IGNORE,
    ),
];

/// SSF 1.0 event types.
const SSF: [EventType; 2] = [
    ("verification", "ssf.verification", IGNORE),
    ("stream-updated", "ssf.stream-updated", IGNORE),
];

/// What one event of a SET is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Kind {
    /// Short name for logs and counters (`caep.session-revoked`, `risc.other`, `unknown`).
    pub name: &'static str,
    /// What to do.
    pub action: Action,
}

/// The kind of the event `uri` of a SET, with its members `event`.
pub(super) fn classify(uri: &str, event: &Map<String, Value>) -> Kind {
    let families: [(&str, &[EventType], &'static str); 3] = [
        (CAEP_PREFIX, &CAEP, "caep.other"),
        (RISC_PREFIX, &RISC, "risc.other"),
        (SSF_PREFIX, &SSF, "ssf.other"),
    ];
    for (prefix, types, other) in families {
        let Some(name) = uri.strip_prefix(prefix) else {
            continue;
        };
        return match types.iter().find(|(segment, _, _)| *segment == name) {
            Some(&(_, short, rule)) => Kind {
                name: short,
                action: decide(rule, event),
            },
            None => Kind {
                name: other,
                action: Action::Nothing,
            },
        };
    }
    Kind {
        name: "unknown",
        action: Action::Nothing,
    }
}

fn decide(rule: Rule, event: &Map<String, Value>) -> Action {
    let member_is =
        |name: &str, value: &str| event.get(name).and_then(Value::as_str) == Some(value);
    match rule {
        Rule::Always(action) => action,
        Rule::LowerWhenDecreased if member_is("change_direction", "decrease") => {
            Action::LowerAssurance
        }
        Rule::RevokeWhenNotCompliant if member_is("current_status", "not-compliant") => {
            Action::Revoke
        }
        Rule::LowerWhenDecreased | Rule::RevokeWhenNotCompliant => Action::Nothing,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(uri: &str, event: Value) -> (&'static str, Action) {
        let k = classify(uri, event.as_object().unwrap());
        (k.name, k.action)
    }

    #[test]
    fn revoking_event_types() {
        for (uri, name) in [
            ("caep/event-type/session-revoked", "caep.session-revoked"),
            (
                "caep/event-type/credential-change",
                "caep.credential-change",
            ),
            (
                "caep/event-type/token-claims-change",
                "caep.token-claims-change",
            ),
            ("risc/event-type/account-disabled", "risc.account-disabled"),
            ("risc/event-type/account-purged", "risc.account-purged"),
            ("risc/event-type/sessions-revoked", "risc.sessions-revoked"),
            (
                "risc/event-type/account-credential-change-required",
                "risc.account-credential-change-required",
            ),
        ] {
            let uri = format!("https://schemas.openid.net/secevent/{uri}");
            assert_eq!(kind(&uri, json!({})), (name, Action::Revoke), "{uri}");
        }
    }

    #[test]
    fn assurance_is_lowered_only_on_a_decrease() {
        let uri = format!("{CAEP_PREFIX}assurance-level-change");
        let name = "caep.assurance-level-change";
        assert_eq!(
            kind(
                &uri,
                json!({"namespace": "NIST-AAL", "current_level": "nist-aal1",
                "previous_level": "nist-aal2", "change_direction": "decrease"})
            ),
            (name, Action::LowerAssurance)
        );
        for event in [
            json!({"change_direction": "increase"}),
            json!({}),
            json!({"change_direction": "DECREASE"}),
            json!({"change_direction": ["decrease"]}),
        ] {
            assert_eq!(kind(&uri, event), (name, Action::Nothing));
        }
    }

    #[test]
    fn device_compliance_revokes_only_when_not_compliant() {
        let uri = format!("{CAEP_PREFIX}device-compliance-change");
        let name = "caep.device-compliance-change";
        assert_eq!(
            kind(
                &uri,
                json!({"previous_status": "compliant", "current_status": "not-compliant"})
            ),
            (name, Action::Revoke)
        );
        for event in [json!({"current_status": "compliant"}), json!({})] {
            assert_eq!(kind(&uri, event), (name, Action::Nothing));
        }
    }

    #[test]
    fn other_types_are_acknowledged_and_ignored() {
        for (uri, name) in [
            (
                format!("{RISC_PREFIX}account-enabled"),
                "risc.account-enabled",
            ),
            (
                format!("{CAEP_PREFIX}session-established"),
                "caep.session-established",
            ),
            (format!("{CAEP_PREFIX}a-future-type"), "caep.other"),
            (format!("{RISC_PREFIX}a-future-type"), "risc.other"),
            (format!("{SSF_PREFIX}verification"), "ssf.verification"),
            (BACKCHANNEL_LOGOUT.to_string(), "unknown"),
            ("https://example.com/event".to_string(), "unknown"),
            (
                "https://schemas.openid.net/secevent/caep/event-type/Session-Revoked".to_string(),
                "caep.other",
            ),
        ] {
            assert_eq!(kind(&uri, json!({})), (name, Action::Nothing), "{uri}");
        }
    }
}

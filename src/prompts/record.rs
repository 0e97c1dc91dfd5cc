//! The decision record of one push endpoint request (one JSON object on one line, logged
//! at info): what it was (`push_prompt`, `push_prompt_repeated`, …), what was decided and
//! why, the count and what remains, and how it was counted. Never a raw user (only the
//! first 8 hex characters of its key), a body, a transaction id or a secret.

use super::history::PromptEvent;
use super::window::Scope;
use crate::json::{json_field, json_str, json_word, push_u64};
use std::rc::Rc;

/// One record per push endpoint request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromptRecord {
    /// The endpoint's name (configuration).
    pub endpoint: Rc<str>,
    /// What it was, when known.
    pub event: Option<PromptEvent>,
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// The status answered (`None`: passed on).
    pub status: Option<u16>,
    /// Why it was refused: `push_rate_limited`, `push_user_missing`,
    /// `push_body_too_large`, `push_body_unreadable`, `push_field_repeated`,
    /// `push_counting_unavailable`…
    pub reason: Option<&'static str>,
    /// The scope that limited it.
    pub scope: Option<Scope>,
    /// Prompts counted in the window that decided.
    pub count: Option<u32>,
    /// Prompts that window still lets through.
    pub remaining: Option<u32>,
    /// Seconds until a prompt would pass (with a 429).
    pub retry_after_secs: Option<u64>,
    /// `local`, `service`, `local_fallback` or `none`.
    pub counting: &'static str,
    /// The first 8 hex characters of the user key.
    pub user: Option<String>,
    /// The client address.
    pub client: Option<String>,
    /// The approval marked the user (the fatigue signature).
    pub marked: bool,
}

impl PromptRecord {
    /// Appends the record as one JSON object:
    /// `{"kind":"push","endpoint":"duo","event":"push_prompt_repeated","count":3,...}`.
    pub fn write_json(&self, out: &mut String) {
        out.push_str("{\"kind\":\"push\",\"endpoint\":");
        json_str(out, &self.endpoint);
        if let Some(event) = &self.event {
            out.push_str(",\"event\":");
            json_word(out, event.as_str());
            match event {
                PromptEvent::PromptRepeated { count } => {
                    out.push_str(",\"repeated\":");
                    push_u64(out, u64::from(*count));
                }
                PromptEvent::ApprovedAfterRepeats { unanswered } => {
                    out.push_str(",\"unanswered\":");
                    push_u64(out, u64::from(*unanswered));
                }
                _ => {}
            }
        }
        out.push_str(",\"decision\":");
        json_word(
            out,
            if self.decision.is_empty() {
                "allow"
            } else {
                self.decision
            },
        );
        if let Some(status) = self.status {
            out.push_str(",\"status\":");
            push_u64(out, u64::from(status));
        }
        if let Some(reason) = self.reason {
            out.push_str(",\"reason\":");
            json_word(out, reason);
        }
        if let Some(scope) = self.scope {
            out.push_str(",\"scope\":");
            json_word(out, scope.as_str());
        }
        for (name, value) in [
            ("count", self.count.map(u64::from)),
            ("remaining", self.remaining.map(u64::from)),
            ("retry_after_secs", self.retry_after_secs),
        ] {
            if let Some(value) = value {
                out.push_str(",\"");
                out.push_str(name);
                out.push_str("\":");
                push_u64(out, value);
            }
        }
        out.push_str(",\"counting\":");
        json_word(
            out,
            if self.counting.is_empty() {
                "none"
            } else {
                self.counting
            },
        );
        if self.marked {
            out.push_str(",\"marked\":true");
        }
        json_field(out, "user", self.user.as_deref());
        json_field(out, "client", self.client.as_deref());
        out.push('}');
    }

    /// The record as a JSON string.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write_json(&mut out);
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::prompts::user_key;

    #[test]
    fn records_are_one_json_object_without_raw_users() {
        let user = user_key(b"jane@example.com");
        let record = PromptRecord {
            endpoint: Rc::from("duo \"eu\""),
            event: Some(PromptEvent::PromptRepeated { count: 3 }),
            decision: "allow",
            count: Some(3),
            remaining: Some(0),
            counting: "local",
            user: Some(user.short()),
            client: Some("203.0.113.9".into()),
            ..PromptRecord::default()
        };
        let json = record.to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["kind"], "push");
        assert_eq!(v["endpoint"], "duo \"eu\"");
        assert_eq!(v["event"], "push_prompt_repeated");
        assert_eq!(v["repeated"], 3);
        assert_eq!(v["count"], 3);
        assert_eq!(v["remaining"], 0);
        assert_eq!(v["counting"], "local");
        assert_eq!(v["user"].as_str().unwrap().len(), 8);
        assert!(user.hex().starts_with(v["user"].as_str().unwrap()));
        assert!(!json.contains("jane"));
        assert!(v.get("status").is_none() && v.get("reason").is_none());

        let limited = PromptRecord {
            endpoint: Rc::from("okta"),
            decision: "deny",
            status: Some(429),
            reason: Some("push_rate_limited"),
            scope: Some(Scope::Client),
            count: Some(20),
            retry_after_secs: Some(270),
            counting: "local_fallback",
            ..PromptRecord::default()
        };
        let v: serde_json::Value = serde_json::from_str(&limited.to_json()).unwrap();
        assert_eq!(v["decision"], "deny");
        assert_eq!(v["status"], 429);
        assert_eq!(v["reason"], "push_rate_limited");
        assert_eq!(v["scope"], "client");
        assert_eq!(v["retry_after_secs"], 270);
        assert_eq!(v["counting"], "local_fallback");
        assert!(v.get("event").is_none());
        let v: serde_json::Value =
            serde_json::from_str(&PromptRecord::default().to_json()).unwrap();
        assert_eq!(v["counting"], "none");
        assert_eq!(v["decision"], "allow");
    }
}

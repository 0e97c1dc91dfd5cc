//! The structured decision record logged once per gated request (one JSON object on one
//! line). The record never carries a token.

use crate::assurance::{with_level_names, Level};
use crate::json::{json_field, json_str, json_word, push_u64};
use crate::policy::{Decision, Mode};
use crate::reason::Reasons;
use crate::signals::revocation::{Effect, Hit};
use crate::token::cache::CacheUse;
use crate::token::session::Session;
use std::borrow::Cow;
use std::rc::Rc;

/// One structured record per gated request, logged at info as JSON.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecisionRecord {
    /// `allow`, `step_up` or `deny`.
    pub decision: Option<Decision>,
    /// Whether the decision was enforced (`enforce`) or only reported (`report_only`).
    pub mode: Option<Mode>,
    /// HTTP status answered (0 when the request was passed on).
    pub status: u32,
    /// The rule that matched (`<unmatched>` when none).
    pub rule: Rc<str>,
    /// The matched rule's name already rendered as a JSON string (from configuration);
    /// when absent, `rule` is escaped as the record is written.
    pub rule_json: Option<Rc<str>>,
    /// The verified session: subject (`sub`), session id (`sid`), issuer, methods, level.
    pub session: Option<Rc<Session>>,
    /// The issuer, when a request was refused before a session was established.
    pub refused_issuer: Option<String>,
    /// Where the session came from: `bearer`, `cookie:<name>`, `header:<name>`, `jwt_authn`.
    /// A borrowed label must be one of mfa-gate's own words: it is written unescaped.
    pub source: Option<Cow<'static, str>>,
    /// `hit`, `miss` (verified now) or absent.
    pub cache: Option<CacheUse>,
    /// Level the rule requires.
    pub required_level: Option<Level>,
    /// Every reason, as stable codes with detail.
    pub reasons: Reasons,
    /// Seconds since `iat`.
    pub token_age_secs: Option<u64>,
    /// Seconds since `auth_time`.
    pub auth_age_secs: Option<u64>,
    /// The revocation entry that covers the session, when one does.
    pub revocation: Option<Hit>,
    /// The risk score as JSON (`{"score":…,"signals":[…]}`), on rules judged on it.
    pub risk: Option<String>,
}

impl DecisionRecord {
    /// Verified subject (`sub`).
    pub fn subject(&self) -> Option<&str> {
        self.session.as_ref().and_then(|s| s.subject.as_deref())
    }

    /// Session id (`sid`), when the token has one.
    pub fn session_id(&self) -> Option<&str> {
        self.session.as_ref().and_then(|s| s.session_id.as_deref())
    }

    /// Issuer (`iss`), of the session or of the refused token.
    pub fn issuer(&self) -> Option<&str> {
        match &self.session {
            Some(s) => Some(&s.issuer),
            None => self.refused_issuer.as_deref(),
        }
    }

    /// Authentication methods found.
    pub fn methods(&self) -> &[String] {
        self.session
            .as_ref()
            .map_or(&[], |s| s.assurance.methods.as_slice())
    }

    /// Level found.
    pub fn level(&self) -> Option<Level> {
        self.session.as_ref().map(|s| s.level())
    }

    /// The record as one JSON object on one line (absent optional fields are left out).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write_json(&mut out);
        out
    }

    /// Appends the record's JSON object to `out`. Written by hand into one buffer, with
    /// the session's fields rendered once per session: this runs on every gated request.
    pub fn write_json(&self, out: &mut String) {
        let session_len = self.session.as_ref().map_or(0, |s| s.record_fields().len());
        out.reserve(200 + self.rule.len() + session_len + 64 * self.reasons.len());
        out.push_str(record_head(self.decision, self.mode));
        push_u64(out, u64::from(self.status));
        out.push_str(",\"rule\":");
        match &self.rule_json {
            Some(rendered) => out.push_str(rendered),
            None => json_str(out, &self.rule),
        }
        match &self.session {
            Some(session) => out.push_str(session.record_fields()),
            None => {
                json_field(out, "issuer", self.refused_issuer.as_deref());
                out.push_str(",\"methods\":[]");
            }
        }
        match &self.source {
            // Borrowed labels are mfa-gate's own words (`bearer`, `jwt_authn`, ...).
            Some(Cow::Borrowed(word)) => {
                out.push_str(",\"source\":");
                json_word(out, word);
            }
            Some(Cow::Owned(label)) => json_field(out, "source", Some(label)),
            None => {}
        }
        if let Some(cache) = self.cache {
            out.push_str(cache_member(cache));
        }
        if let Some(level) = self.required_level {
            out.push_str(required_level_member(level));
        }
        out.push_str(",\"reasons\":");
        out.push('[');
        for (i, reason) in self.reasons.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            reason.write_json(out);
        }
        out.push(']');
        if let Some(age) = self.token_age_secs {
            out.push_str(",\"token_age_secs\":");
            push_u64(out, age);
        }
        if let Some(age) = self.auth_age_secs {
            out.push_str(",\"auth_age_secs\":");
            push_u64(out, age);
        }
        if let Some(hit) = &self.revocation {
            out.push_str(",\"revocation\":{\"entry\":");
            json_word(out, hit.kind.as_str());
            out.push_str(",\"source\":");
            json_word(out, hit.source.as_str());
            out.push_str(",\"effect\":");
            json_word(
                out,
                match hit.effect {
                    Effect::Revoke => "revoke",
                    Effect::LowerAssurance => "lower_assurance",
                },
            );
            out.push_str(",\"revoked_before\":");
            push_u64(out, hit.revoked_before);
            out.push('}');
        }
        if let Some(risk) = &self.risk {
            out.push_str(",\"risk\":");
            out.push_str(risk);
        }
        out.push('}');
    }
}

/// The record's opening members up to `"status":`, one static string per decision and mode.
fn record_head(decision: Option<Decision>, mode: Option<Mode>) -> &'static str {
    use Decision::{Allow, Deny, Revoke, StepUp};
    use Mode::{Enforce, ReportOnly};
    match (decision, mode) {
        (Some(Allow), Some(Enforce)) => r#"{"decision":"allow","mode":"enforce","status":"#,
        (Some(StepUp), Some(Enforce)) => r#"{"decision":"step_up","mode":"enforce","status":"#,
        (Some(Deny), Some(Enforce)) => r#"{"decision":"deny","mode":"enforce","status":"#,
        (Some(Allow), Some(ReportOnly)) => r#"{"decision":"allow","mode":"report_only","status":"#,
        (Some(StepUp), Some(ReportOnly)) => {
            r#"{"decision":"step_up","mode":"report_only","status":"#
        }
        (Some(Deny), Some(ReportOnly)) => r#"{"decision":"deny","mode":"report_only","status":"#,
        (Some(Allow), None) => r#"{"decision":"allow","mode":null,"status":"#,
        (Some(StepUp), None) => r#"{"decision":"step_up","mode":null,"status":"#,
        (Some(Deny), None) => r#"{"decision":"deny","mode":null,"status":"#,
        (Some(Revoke), Some(Enforce)) => r#"{"decision":"revoke","mode":"enforce","status":"#,
        (Some(Revoke), Some(ReportOnly)) => {
            r#"{"decision":"revoke","mode":"report_only","status":"#
        }
        (Some(Revoke), None) => r#"{"decision":"revoke","mode":null,"status":"#,
        (None, Some(Enforce)) => r#"{"decision":null,"mode":"enforce","status":"#,
        (None, Some(ReportOnly)) => r#"{"decision":null,"mode":"report_only","status":"#,
        (None, None) => r#"{"decision":null,"mode":null,"status":"#,
    }
}

macro_rules! required_level_members {
    ([$($name:literal),*]) => {
        [$(concat!(",\"required_level\":\"", $name, "\"")),*]
    };
}

/// The `required_level` member of each level, by `Level as usize`.
static REQUIRED_LEVEL_MEMBERS: [&str; Level::ALL.len()] =
    with_level_names!(required_level_members!());

/// The `required_level` member, one static string per level.
fn required_level_member(level: Level) -> &'static str {
    (REQUIRED_LEVEL_MEMBERS.get(level as usize).copied()).unwrap_or_default()
}

/// The record's `cache` member.
fn cache_member(cache: CacheUse) -> &'static str {
    match cache {
        CacheUse::Hit => r#","cache":"hit""#,
        CacheUse::Miss => r#","cache":"miss""#,
        CacheUse::Shared => r#","cache":"shared""#,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_json_is_valid_and_escaped() {
        let record = DecisionRecord {
            decision: Some(Decision::StepUp),
            mode: Some(Mode::ReportOnly),
            status: 401,
            rule: Rc::from("ad\"min"),
            session: Some(Rc::new(Session::new(
                crate::token::session::SessionFacts {
                    issuer_index: 0,
                    issuer: "https://idp".into(),
                    subject: Some("al\\ice\n\u{1}\u{7f}\t\rzoë".to_string()),
                    session_id: None,
                    assurance: crate::assurance::Assurance {
                        methods: vec!["pwd".to_string(), "swk".to_string()],
                        level: Level::Push,
                        unknown: Vec::new(),
                        auth_time: None,
                        auth_time_malformed: false,
                    },
                    issued_at: None,
                    expires_at: 1,
                    revocation: None,
                    idp_user: None,
                    binding: Ok(None),
                    posture_claim: None,
                    push_user: None,
                    subject_key: None,
                },
                &crate::token::session::UpstreamHeaders::default(),
            ))),
            cache: Some(CacheUse::Hit),
            reasons: smallvec::smallvec![crate::reason::Reason::LevelBelowRequired {
                have: Level::Push,
                required: Level::PhishingResistant,
            }],
            token_age_secs: Some(10),
            ..DecisionRecord::default()
        };
        let json = record.to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["decision"], "step_up");
        assert_eq!(v["mode"], "report_only");
        assert_eq!(v["status"], 401);
        assert_eq!(v["rule"], "ad\"min");
        assert_eq!(v["subject"], "al\\ice\n\u{1}\u{7f}\t\rzoë");
        assert_eq!(v["cache"], "hit");
        assert_eq!(v["methods"], serde_json::json!(["pwd", "swk"]));
        assert_eq!(v["level"], "push");
        assert_eq!(v["token_age_secs"], 10);
        assert!(v.get("session_id").is_none() && v.get("auth_age_secs").is_none());
        assert!(!json.contains('\n'), "one line: {json}");
        let empty: serde_json::Value =
            serde_json::from_str(&DecisionRecord::default().to_json()).unwrap();
        assert_eq!(empty["decision"], serde_json::Value::Null);
        assert_eq!(empty["methods"], serde_json::json!([]));
        let refused = DecisionRecord {
            refused_issuer: Some("https://other".into()),
            source: Some(Cow::Borrowed("bearer")),
            ..DecisionRecord::default()
        };
        let v: serde_json::Value = serde_json::from_str(&refused.to_json()).unwrap();
        assert_eq!(v["issuer"], "https://other");
        assert_eq!(v["source"], "bearer");
    }

    #[test]
    fn required_level_members_name_each_level() {
        for level in Level::ALL {
            let member = format!(",\"required_level\":\"{}\"", level.as_str());
            assert_eq!(required_level_member(level), member);
        }
    }
}

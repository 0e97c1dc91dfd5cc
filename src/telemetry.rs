//! Metric names (one place; the README's metrics table lists them) and the structured
//! decision record logged once per gated request. The record never carries a token.

use crate::assurance::Level;
use crate::policy::{Decision, Mode};
use serde::Serialize;

/// Requests answered `allow` (enforced).
pub const DECISION_ALLOW: &str = "mfa_gate.decision.allow";
/// Requests answered with a step-up challenge or redirect (enforced).
pub const DECISION_STEP_UP: &str = "mfa_gate.decision.step_up";
/// Requests denied: 401/403 (enforced).
pub const DECISION_DENY: &str = "mfa_gate.decision.deny";
/// Decisions in report-only mode that would have been allow.
pub const REPORT_ONLY_ALLOW: &str = "mfa_gate.report_only.allow";
/// Decisions in report-only mode that would have been a step-up.
pub const REPORT_ONLY_STEP_UP: &str = "mfa_gate.report_only.step_up";
/// Decisions in report-only mode that would have been a deny.
pub const REPORT_ONLY_DENY: &str = "mfa_gate.report_only.deny";
/// Prefix of the per-reason counters: `mfa_gate.reason.<code>`.
pub const REASON_PREFIX: &str = "mfa_gate.reason.";
/// CORS preflight requests passed through untouched.
pub const CORS_PREFLIGHT: &str = "mfa_gate.cors_preflight";
/// Requests that matched no rule and were let through (`unmatched: allow`).
pub const UNMATCHED_ALLOWED: &str = "mfa_gate.unmatched_allowed";
/// Requests on public rules (no requirement) let through.
pub const PUBLIC_ALLOWED: &str = "mfa_gate.public_allowed";
/// Verified-token cache hits.
pub const TOKEN_CACHE_HIT: &str = "mfa_gate.token_cache.hit";
/// Verified-token cache misses (a full verification followed).
pub const TOKEN_CACHE_MISS: &str = "mfa_gate.token_cache.miss";
/// Sessions read from Envoy jwt_authn's verified payload.
pub const JWT_AUTHN_PAYLOAD: &str = "mfa_gate.jwt_authn_payload";
/// JWKS fetches that produced a usable key set.
pub const JWKS_FETCH_SUCCESS: &str = "mfa_gate.jwks_fetch.success";
/// JWKS fetches that failed (status, timeout, reset, unparsable body); last good keys kept.
pub const JWKS_FETCH_FAILURE: &str = "mfa_gate.jwks_fetch.failure";
/// Refreshes triggered by a token naming an unknown `kid`.
pub const JWKS_UNKNOWN_KID_REFRESH: &str = "mfa_gate.jwks_fetch.unknown_kid_refresh";

/// Every fixed counter name, defined at start so they show at 0.
pub const FIXED_COUNTERS: [&str; 15] = [
    DECISION_ALLOW,
    DECISION_STEP_UP,
    DECISION_DENY,
    REPORT_ONLY_ALLOW,
    REPORT_ONLY_STEP_UP,
    REPORT_ONLY_DENY,
    CORS_PREFLIGHT,
    UNMATCHED_ALLOWED,
    PUBLIC_ALLOWED,
    TOKEN_CACHE_HIT,
    TOKEN_CACHE_MISS,
    JWT_AUTHN_PAYLOAD,
    JWKS_FETCH_SUCCESS,
    JWKS_FETCH_FAILURE,
    JWKS_UNKNOWN_KID_REFRESH,
];

/// The counter for a decision, by mode.
pub fn decision_counter(decision: Decision, mode: Mode) -> &'static str {
    match (mode, decision) {
        (Mode::Enforce, Decision::Allow) => DECISION_ALLOW,
        (Mode::Enforce, Decision::StepUp) => DECISION_STEP_UP,
        (Mode::Enforce, Decision::Deny) => DECISION_DENY,
        (Mode::ReportOnly, Decision::Allow) => REPORT_ONLY_ALLOW,
        (Mode::ReportOnly, Decision::StepUp) => REPORT_ONLY_STEP_UP,
        (Mode::ReportOnly, Decision::Deny) => REPORT_ONLY_DENY,
    }
}

/// The per-reason counter for a reason string: the code before any `:` detail, limited to
/// `[a-z0-9_]` so a hostile value can never mint arbitrary stat names.
pub fn reason_counter(reason: &str) -> String {
    let code = reason.split(':').next().unwrap_or("");
    let clean: String = code
        .chars()
        .take(48)
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{REASON_PREFIX}{clean}")
}

/// One structured record per gated request, logged at info as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct DecisionRecord {
    /// `allow`, `step_up` or `deny`.
    pub decision: Option<Decision>,
    /// Whether the decision was enforced (`enforce`) or only reported (`report_only`).
    pub mode: Option<Mode>,
    /// HTTP status answered (0 when the request was passed on).
    pub status: u32,
    /// The rule that matched (`<unmatched>` when none).
    pub rule: String,
    /// Verified subject (`sub`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Session id (`sid`), when the token has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Issuer (`iss`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Where the session came from: `bearer`, `cookie:<name>`, `header:<name>`, `jwt_authn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `hit`, `miss` (verified now) or absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'static str>,
    /// Authentication methods found.
    pub methods: Vec<String>,
    /// Level found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// Level the rule requires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_level: Option<Level>,
    /// Every reason, as stable codes with detail.
    pub reasons: Vec<String>,
    /// Seconds since `iat`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_age_secs: Option<u64>,
    /// Seconds since `auth_time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_age_secs: Option<u64>,
}

impl DecisionRecord {
    /// The record as one JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_counters_are_sanitised() {
        assert_eq!(
            reason_counter("level_below_required:push<phishing_resistant"),
            "mfa_gate.reason.level_below_required"
        );
        assert_eq!(reason_counter("Bad.Name{x}"), "mfa_gate.reason._ad__ame_x_");
        assert!(reason_counter(&"a".repeat(500)).len() < 70);
    }

    #[test]
    fn decision_counters_by_mode() {
        assert_eq!(
            decision_counter(Decision::StepUp, Mode::Enforce),
            DECISION_STEP_UP
        );
        assert_eq!(
            decision_counter(Decision::Deny, Mode::ReportOnly),
            REPORT_ONLY_DENY
        );
    }
}

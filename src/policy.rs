//! Route rules and the per-request decision: which rule a request matches, and whether the
//! session's assurance satisfies it (allow), must be raised (step-up) or is refused (deny).
//!
//! OWNER: assurance helper. Interface fixed below; implementation to be completed.

use crate::assurance::{Assurance, Level};
use serde::Serialize;

/// Enforce the decision, or only log and count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Enforce,
    ReportOnly,
}

/// What to answer when a session's level is too low for a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInsufficient {
    /// RFC 9470 challenge (API) or a redirect to the provider (browser).
    StepUp,
    /// 403.
    Deny,
}

/// How a step-up is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserMode {
    /// Redirect when the request prefers `text/html`, RFC 9470 401 otherwise.
    Auto,
    /// Always redirect to the provider's authorization endpoint.
    Redirect,
    /// Always answer RFC 9470 401.
    Api,
}

/// What to do with requests that match no rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmatched {
    /// Pass untouched (no token needed).
    Allow,
    /// Require a valid token of any level.
    RequireToken,
    /// 403.
    Deny,
}

/// Which requests a rule applies to. Empty lists match anything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteMatch {
    /// Exact path (query excluded).
    pub path_exact: Option<String>,
    /// Path prefix (query excluded), segment-aware is the implementer's choice, documented.
    pub path_prefix: Option<String>,
    /// Upper-case methods.
    pub methods: Vec<String>,
    /// Lower-case hosts (port stripped); `*.example.com` matches subdomains.
    pub hosts: Vec<String>,
}

/// What a rule requires of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Minimum level.
    pub level: Level,
    /// Maximum seconds since `auth_time` (or `iat` when absent), if set.
    pub max_auth_age_secs: Option<u64>,
    /// `acr_values` to ask the provider for on step-up.
    pub acr_values: String,
}

/// A compiled route rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    pub name: String,
    pub matcher: RouteMatch,
    /// None = the route is public (no token needed).
    pub require: Option<Requirement>,
    pub mode: Mode,
    pub on_insufficient: OnInsufficient,
    pub browser: BrowserMode,
}

/// The facts of a request that rules match on.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    /// Host without port, lower-case.
    pub host: &'a str,
}

/// The first rule that matches, in configuration order.
pub fn match_route<'r>(rules: &'r [RouteRule], facts: &RequestFacts<'_>) -> Option<&'r RouteRule> {
    let _ = facts;
    rules.first().filter(|_| false)
}

/// The decision for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    StepUp,
    Deny,
}

/// A decision with every reason that led to it (snake_case codes, e.g.
/// `level_below_required:push<phishing_resistant`, `auth_too_old:1200>900`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub decision: Decision,
    pub reasons: Vec<String>,
}

/// Decides a request that matched `rule`, for a session with `assurance`, at `now_secs`.
/// `issued_at` is the token's `iat`, used for the age check when there is no `auth_time`.
pub fn decide(
    rule: &RouteRule,
    assurance: &Assurance,
    issued_at: Option<u64>,
    now_secs: u64,
) -> Verdict {
    let _ = (rule, assurance, issued_at, now_secs);
    Verdict {
        decision: Decision::Deny,
        reasons: vec!["not_implemented".into()],
    }
}

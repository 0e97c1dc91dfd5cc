//! Route rules and the per-request decision: which rule a request matches, and whether the
//! session's assurance satisfies it (allow), must be raised (step-up) or is refused (deny).
//!
//! # Matching ([`match_route`])
//!
//! Rules are tried in configuration order; the first whose every condition holds wins.
//!
//! - **Path** is the raw request path without the query, compared byte for byte and
//!   case-sensitively (as Envoy's route matching is). `path_exact` must equal it.
//!   `path_prefix` is segment-aware: `/admin` matches `/admin` and `/admin/x` but not
//!   `/administrator`; a prefix that ends in `/` (e.g. `/admin/`) is a plain prefix. When a
//!   rule sets both, both must hold.
//! - **Methods**: empty = any; otherwise compared ASCII case-insensitively, so `post` cannot
//!   slip past a `POST` rule on an upstream that treats methods loosely.
//! - **Hosts**: empty = any; `*.example.com` matches any subdomain (not `example.com`
//!   itself); comparison ignores ASCII case and one trailing `.` (`example.com.`).
//!
//! The path is **not** normalised here: `//admin`, `/a/../admin` or `/%61dmin` are different
//! bytes from `/admin`. Run Envoy with `normalize_path: true`, `merge_slashes: true` and
//! `path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT` (or `REJECT_REQUEST`) so that
//! the filter and the upstream see the same path. [`ambiguous_path`] names the tricks that
//! survive when those settings are off, for callers that prefer to refuse such requests.
//!
//! # Deciding ([`decide`])
//!
//! A rule without a requirement is public (`public_route`). Otherwise the session must have
//! at least the required level and, when `max_auth_age_secs` is set, an authentication age
//! (`now - auth_time`, or `now - iat` when there is no `auth_time`) within it; an unknown age
//! counts as too old. A failure answers `StepUp` or `Deny` as the rule says. `decide` does not
//! look at [`RouteRule::mode`]: report-only is the caller's business (it logs the verdict and
//! lets the request through).
//!
//! Reason codes are stable snake_case with `:`-separated detail and never contain spaces:
//!
//! | code | meaning |
//! |---|---|
//! | `public_route` | the rule requires nothing |
//! | `level_satisfied:<have>>=<need>` | level is enough |
//! | `level_below_required:<have><<need>` | level too low |
//! | `auth_age_ok:<age>s<=<max>s` | authentication recent enough |
//! | `auth_too_old:<age>s><max>s` | authentication too old |
//! | `auth_age_unknown` | neither `auth_time` nor `iat` |
//! | `auth_age_from_iat` | the age was taken from `iat` |
//! | `unknown_<claim>:<value>` | a claim value the classifier did not understand |

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
    rules.iter().find(|rule| rule.matcher.matches(facts))
}

impl RouteMatch {
    /// Whether this matcher accepts the request (see the module doc for the rules).
    pub fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        if let Some(exact) = &self.path_exact {
            if facts.path != exact {
                return false;
            }
        }
        if let Some(prefix) = &self.path_prefix {
            if !path_has_prefix(facts.path, prefix) {
                return false;
            }
        }
        let method_ok = self.methods.is_empty()
            || self
                .methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(facts.method));
        method_ok
            && (self.hosts.is_empty() || self.hosts.iter().any(|h| host_matches(h, facts.host)))
    }
}

/// Segment-aware prefix: `/admin` matches `/admin` and `/admin/...`, not `/administrator`.
/// A prefix ending in `/` (or empty) is a plain prefix.
pub fn path_has_prefix(path: &str, prefix: &str) -> bool {
    if prefix.is_empty() || prefix.ends_with('/') {
        return path.starts_with(prefix);
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// `pattern` is a lower-case host or `*.domain`; `host` is the request host without port.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    match pattern.strip_prefix("*.") {
        Some(domain) => {
            host.len() > domain.len() + 1
                && host.is_char_boundary(host.len() - domain.len() - 1)
                && host[host.len() - domain.len() - 1..].starts_with('.')
                && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
        }
        None => host.eq_ignore_ascii_case(pattern),
    }
}

/// Names a path trick that makes the raw path differ from what an upstream may serve:
/// `double_slash`, `dot_segment` (`/./`, `/../`, trailing `/.` or `/..`), `backslash`,
/// `percent_encoding` (any `%`), `semicolon` (path parameters) or `control_char`.
/// `None` for a plain path. Envoy's `normalize_path` / `merge_slashes` remove most of these
/// before the filter runs; this is for deployments that cannot turn them on.
pub fn ambiguous_path(path: &str) -> Option<&'static str> {
    if path.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Some("control_char");
    }
    if path.contains('%') {
        return Some("percent_encoding");
    }
    if path.contains('\\') {
        return Some("backslash");
    }
    if path.contains("//") {
        return Some("double_slash");
    }
    if path.contains(';') {
        return Some("semicolon");
    }
    let dot_segment = path
        .split('/')
        .skip(1)
        .any(|segment| segment == "." || segment == "..");
    if dot_segment {
        return Some("dot_segment");
    }
    None
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
    let Some(require) = &rule.require else {
        return Verdict {
            decision: Decision::Allow,
            reasons: vec!["public_route".to_string()],
        };
    };
    let mut reasons = Vec::new();
    let mut sufficient = true;

    let have = assurance.level;
    if have >= require.level {
        reasons.push(format!(
            "level_satisfied:{}>={}",
            have.as_str(),
            require.level.as_str()
        ));
    } else {
        sufficient = false;
        reasons.push(format!(
            "level_below_required:{}<{}",
            have.as_str(),
            require.level.as_str()
        ));
    }

    if let Some(max) = require.max_auth_age_secs {
        let authenticated_at = match (assurance.auth_time, issued_at) {
            (Some(t), _) => Some(t),
            (None, Some(iat)) => {
                reasons.push("auth_age_from_iat".to_string());
                Some(iat)
            }
            (None, None) => None,
        };
        match authenticated_at {
            None => {
                sufficient = false;
                reasons.push("auth_age_unknown".to_string());
            }
            Some(at) => {
                // An authentication time in the future (clock skew) counts as age 0.
                let age = now_secs.saturating_sub(at);
                if age > max {
                    sufficient = false;
                    reasons.push(format!("auth_too_old:{age}s>{max}s"));
                } else {
                    reasons.push(format!("auth_age_ok:{age}s<={max}s"));
                }
            }
        }
    }

    reasons.extend(assurance.unknown.iter().map(|u| format!("unknown_{u}")));

    let decision = if sufficient {
        Decision::Allow
    } else {
        match rule.on_insufficient {
            OnInsufficient::StepUp => Decision::StepUp,
            OnInsufficient::Deny => Decision::Deny,
        }
    };
    Verdict { decision, reasons }
}

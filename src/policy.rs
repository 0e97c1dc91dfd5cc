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
//! The path is **not** normalised here: [`crate::request`] works out every path, method and
//! host the upstream may serve a request as (refusing ambiguous paths by default), and the
//! engine matches each reading.
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
use crate::metrics;
use crate::reason::{Reason, Reasons};
use serde::Serialize;

/// Enforce the decision, or only log and count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Send the step-up / deny reply.
    Enforce,
    /// Log and count the verdict, let the request through.
    ReportOnly,
}

impl Mode {
    /// The configuration and log spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::ReportOnly => "report_only",
        }
    }
}

/// What to answer when a session's level is too low for a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInsufficient {
    /// RFC 9470 challenge (API) or a redirect to the provider (browser).
    StepUp,
    /// 403.
    Deny,
    /// End the session: recorded in the shared revocation set at once (every worker
    /// refuses it from the next request), answered 401 `invalid_token`.
    Revoke,
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
    /// Name used in logs and metrics (shared, so each request's record borrows it).
    pub name: std::rc::Rc<str>,
    /// The name as a JSON string, rendered once for the decision record.
    pub name_json: std::rc::Rc<str>,
    /// Which requests the rule applies to.
    pub matcher: RouteMatch,
    /// The level (and age) required; `None` with no `risk` either: the route is public.
    pub require: Option<Requirement>,
    /// Enforce or report only.
    pub mode: Mode,
    /// Step-up or deny when the session falls short.
    pub on_insufficient: OnInsufficient,
    /// How a step-up reaches the client.
    pub browser: BrowserMode,
    /// The risk score's thresholds, when the rule is judged on its score too.
    pub risk: Option<RouteRisk>,
}

impl RouteRule {
    /// Whether the rule needs no session at all.
    pub fn is_public(&self) -> bool {
        self.require.is_none() && self.risk.is_none()
    }
}

/// The facts of a request that rules match on.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// HTTP method as sent (raw header bytes).
    pub method: &'a [u8],
    /// Path without the query string (raw bytes: compared, never decoded).
    pub path: &'a [u8],
    /// Compare the path ASCII case-insensitively (`paths.case_insensitive`).
    pub fold_case: bool,
    /// Host without port (raw bytes).
    pub host: &'a [u8],
}

/// The first rule that matches, in configuration order.
pub fn match_route<'r>(rules: &'r [RouteRule], facts: &RequestFacts<'_>) -> Option<&'r RouteRule> {
    match_route_index(rules, facts).and_then(|index| rules.get(index))
}

/// The index of the first rule that matches, in configuration order.
pub fn match_route_index(rules: &[RouteRule], facts: &RequestFacts<'_>) -> Option<usize> {
    rules.iter().position(|rule| rule.matcher.matches(facts))
}

impl RouteMatch {
    /// Whether this matcher accepts the request (see the module doc for the rules).
    pub fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        if let Some(exact) = &self.path_exact {
            let same = if facts.fold_case {
                facts.path.eq_ignore_ascii_case(exact.as_bytes())
            } else {
                facts.path == exact.as_bytes()
            };
            if !same {
                return false;
            }
        }
        if let Some(prefix) = &self.path_prefix {
            if !path_has_prefix(facts.path, prefix, facts.fold_case) {
                return false;
            }
        }
        let method_ok = self.methods.is_empty()
            || self
                .methods
                .iter()
                .any(|m| m.as_bytes().eq_ignore_ascii_case(facts.method));
        method_ok
            && (self.hosts.is_empty() || self.hosts.iter().any(|h| host_matches(h, facts.host)))
    }
}

/// Segment-aware prefix: `/admin` matches `/admin` and `/admin/...`, not `/administrator`.
/// A prefix ending in `/` (or empty) is a plain prefix. `fold_case`: ASCII
/// case-insensitive.
pub fn path_has_prefix(path: &[u8], prefix: &str, fold_case: bool) -> bool {
    let prefix = prefix.as_bytes();
    let Some(head) = path.get(..prefix.len()) else {
        return false;
    };
    let same = if fold_case {
        head.eq_ignore_ascii_case(prefix)
    } else {
        head == prefix
    };
    if !same {
        return false;
    }
    if prefix.is_empty() || prefix.ends_with(b"/") {
        return true;
    }
    let rest = &path[prefix.len()..];
    rest.is_empty() || rest.starts_with(b"/")
}

/// `pattern` is a lower-case host or `*.domain`; `host` is the request host without port.
pub fn host_matches(pattern: &str, host: &[u8]) -> bool {
    let host = host.strip_suffix(b".").unwrap_or(host);
    match pattern.strip_prefix("*.") {
        Some(domain) => {
            let domain = domain.as_bytes();
            host.len() > domain.len() + 1
                && host[host.len() - domain.len() - 1] == b'.'
                && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
        }
        None => host.eq_ignore_ascii_case(pattern.as_bytes()),
    }
}

/// Scores at which a route steps up, denies or revokes (each optional; the strictest
/// reached wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Thresholds {
    /// At or above: step up to phishing-resistant authentication.
    pub step_up_at: Option<i32>,
    /// At or above: 403.
    pub deny_at: Option<i32>,
    /// At or above: revoke the session (needs the revocation section).
    pub revoke_at: Option<i32>,
}

/// The default thresholds: step up at 50, deny at 100, no revoke (configure `revoke_at`
/// with a revocation section to end sessions on the score).
pub const DEFAULT_THRESHOLDS: Thresholds = Thresholds {
    step_up_at: Some(50),
    deny_at: Some(100),
    revoke_at: None,
};

/// A rule's risk gate: the thresholds its score is judged against, and what a step-up asks
/// for (the rule's own requirement, else phishing-resistant authentication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRisk {
    /// Score thresholds.
    pub thresholds: Thresholds,
    /// The level (and `acr_values`, `max_age`) a risk step-up asks for.
    pub step_up: Requirement,
}

/// The decision for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Pass the request on.
    Allow,
    /// Ask for stronger or fresher authentication (RFC 9470 401 or redirect).
    StepUp,
    /// 403.
    Deny,
    /// End the session everywhere (401 `invalid_token`, "session revoked").
    Revoke,
}

impl Decision {
    /// The log spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::StepUp => "step_up",
            Decision::Deny => "deny",
            Decision::Revoke => "revoke",
        }
    }
}

/// A decision with every reason that led to it (snake_case codes, e.g.
/// `level_below_required:push<phishing_resistant`, `auth_too_old:1200>900`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// What to do.
    pub decision: Decision,
    /// Why, in order: level, age, unknown values.
    pub reasons: Reasons,
}

/// Decides a request that matched `rule`, for a session with `assurance`, at `now_secs`.
/// `issued_at` is the token's `iat`, used for the age check when there is no `auth_time`;
/// `skew_secs` is the issuer's clock skew: an authentication time further in the future
/// than that counts as unknown, never as age 0.
pub fn decide(
    rule: &RouteRule,
    assurance: &Assurance,
    issued_at: Option<u64>,
    now_secs: u64,
    skew_secs: u64,
) -> Verdict {
    let Some(require) = &rule.require else {
        return Verdict {
            decision: Decision::Allow,
            reasons: smallvec::smallvec![Reason::PublicRoute],
        };
    };
    let mut reasons = Reasons::new();
    let mut sufficient = true;

    let have = assurance.level;
    if have >= require.level {
        reasons.push(Reason::LevelSatisfied {
            have,
            required: require.level,
        });
    } else {
        sufficient = false;
        reasons.push(Reason::LevelBelowRequired {
            have,
            required: require.level,
        });
    }

    if let Some(max) = require.max_auth_age_secs {
        let authenticated_at = match (assurance.auth_time, issued_at) {
            // A present but unreadable auth_time never falls back to iat.
            _ if assurance.auth_time_malformed => None,
            (Some(t), _) => Some(t),
            (None, Some(iat)) => {
                reasons.push(Reason::AuthAgeFromIat);
                Some(iat)
            }
            (None, None) => None,
        };
        match authenticated_at {
            None => {
                sufficient = false;
                reasons.push(if assurance.auth_time_malformed {
                    Reason::AuthTimeMalformed
                } else {
                    Reason::AuthAgeUnknown
                });
            }
            Some(at) if at > now_secs.saturating_add(skew_secs) => {
                sufficient = false;
                reasons.push(Reason::AuthTimeInFuture);
            }
            Some(at) => {
                // Within the clock skew, an authentication time in the future is age 0.
                let age = now_secs.saturating_sub(at);
                if age > max {
                    sufficient = false;
                    reasons.push(Reason::AuthTooOld { age, max });
                } else {
                    reasons.push(Reason::AuthAgeOk { age, max });
                }
            }
        }
    }

    if !assurance.unknown.is_empty() {
        reasons.extend(assurance.unknown.iter().cloned().map(Reason::Unknown));
    }

    let decision = if sufficient {
        Decision::Allow
    } else {
        match rule.on_insufficient {
            OnInsufficient::StepUp => Decision::StepUp,
            OnInsufficient::Deny => Decision::Deny,
            OnInsufficient::Revoke => Decision::Revoke,
        }
    };
    Verdict { decision, reasons }
}

/// The counter for a decision, by mode.
pub fn decision_counter(decision: Decision, mode: Mode) -> &'static str {
    match (mode, decision) {
        (Mode::Enforce, Decision::Allow) => metrics::DECISION_ALLOW,
        (Mode::Enforce, Decision::StepUp) => metrics::DECISION_STEP_UP,
        (Mode::Enforce, Decision::Deny) => metrics::DECISION_DENY,
        (Mode::ReportOnly, Decision::Allow) => metrics::REPORT_ONLY_ALLOW,
        (Mode::ReportOnly, Decision::StepUp) => metrics::REPORT_ONLY_STEP_UP,
        (Mode::ReportOnly, Decision::Deny) => metrics::REPORT_ONLY_DENY,
        (Mode::Enforce, Decision::Revoke) => metrics::DECISION_REVOKE,
        (Mode::ReportOnly, Decision::Revoke) => metrics::REPORT_ONLY_REVOKE,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::assurance::{classify, ClassifierSettings, Profile};
    use serde_json::json;

    fn rule(name: &str, prefix: &str, level: Option<Level>, on: OnInsufficient) -> RouteRule {
        RouteRule {
            name: name.into(),
            name_json: crate::json::json_string(name).into(),
            matcher: RouteMatch {
                path_prefix: Some(prefix.into()),
                ..RouteMatch::default()
            },
            require: level.map(|level| Requirement {
                level,
                max_auth_age_secs: None,
                acr_values: String::new(),
            }),
            mode: Mode::Enforce,
            on_insufficient: on,
            browser: BrowserMode::Auto,
            risk: None,
        }
    }

    fn facts<'a>(method: &'a str, path: &'a str, host: &'a str) -> RequestFacts<'a> {
        RequestFacts {
            method: method.as_bytes(),
            path: path.as_bytes(),
            fold_case: false,
            host: host.as_bytes(),
        }
    }

    fn session(level: Level, auth_time: Option<u64>, unknown: &[&str]) -> Assurance {
        Assurance {
            methods: Vec::new(),
            level,
            unknown: unknown.iter().map(|s| s.to_string()).collect(),
            auth_time,
            auth_time_malformed: false,
        }
    }

    #[test]
    fn prefix_is_segment_aware() {
        let cases = [
            ("/admin", "/admin", true),
            ("/admin", "/admin/", true),
            ("/admin", "/admin/users", true),
            ("/admin", "/administrator", false),
            ("/admin", "/adm", false),
            ("/admin", "/ADMIN", false),
            ("/admin", "//admin", false),
            ("/admin/", "/admin/x", true),
            ("/admin/", "/admin", false),
            ("/api/v", "/api/v2", false),
            ("/", "/anything", true),
            ("", "/anything", true),
        ];
        assert!(path_has_prefix(b"/ADMIN/x", "/admin", true));
        assert!(!path_has_prefix(b"/ADMINISTRATOR", "/admin", true));
        assert!(!path_has_prefix(b"/ADM", "/admin", true));
        for (prefix, path, expected) in cases {
            assert_eq!(
                path_has_prefix(path.as_bytes(), prefix, false),
                expected,
                "{prefix} vs {path}"
            );
        }
    }

    #[test]
    fn hosts_methods_and_exact_paths() {
        let mut r = rule("r", "/admin", Some(Level::Password), OnInsufficient::Deny);
        r.matcher.methods = vec!["POST".into(), "DELETE".into()];
        r.matcher.hosts = vec!["api.example.com".into(), "*.corp.example".into()];
        let rules = [r];
        let cases = [
            ("POST", "/admin/x", "api.example.com", true),
            ("post", "/admin/x", "api.example.com", true),
            ("GET", "/admin/x", "api.example.com", false),
            ("POST", "/admin/x", "API.Example.com", true),
            ("POST", "/admin/x", "api.example.com.", true),
            ("POST", "/admin/x", "a.corp.example", true),
            ("POST", "/admin/x", "a.b.corp.example", true),
            ("POST", "/admin/x", "corp.example", false),
            ("POST", "/admin/x", "evilcorp.example", false),
            ("POST", "/admin/x", "xapi.example.com", false),
            ("POST", "/admin/x", "é.corp.example", true),
            ("POST", "/admin/x", "é", false),
            ("POST", "/public", "api.example.com", false),
        ];
        for (method, path, host, expected) in cases {
            let got = match_route(&rules, &facts(method, path, host)).is_some();
            assert_eq!(got, expected, "{method} {host}{path}");
        }

        let exact = RouteRule {
            matcher: RouteMatch {
                path_exact: Some("/login".into()),
                ..RouteMatch::default()
            },
            ..rule("e", "/", None, OnInsufficient::Deny)
        };
        let rules = [exact];
        assert!(match_route(&rules, &facts("GET", "/login", "h")).is_some());
        assert!(match_route(&rules, &facts("GET", "/login/", "h")).is_none());
        assert!(match_route(&rules, &facts("GET", "/log", "h")).is_none());
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = [
            rule(
                "keys",
                "/admin/keys",
                Some(Level::HardwareBoundPhishingResistant),
                OnInsufficient::Deny,
            ),
            rule(
                "admin",
                "/admin",
                Some(Level::PhishingResistant),
                OnInsufficient::StepUp,
            ),
            rule("all", "/", Some(Level::Password), OnInsufficient::StepUp),
        ];
        let name = |path| match_route(&rules, &facts("GET", path, "h")).map(|r| &*r.name);
        assert_eq!(name("/admin/keys/1"), Some("keys"));
        assert_eq!(name("/admin/keysmith"), Some("admin"));
        assert_eq!(name("/admin"), Some("admin"));
        assert_eq!(name("/other"), Some("all"));
        assert_eq!(match_route(&rules[..1], &facts("GET", "/x", "h")), None);
        assert_eq!(match_route(&[], &facts("GET", "/x", "h")), None);
    }

    #[test]
    fn decide_levels_and_reasons() {
        let step = rule(
            "admin",
            "/admin",
            Some(Level::PhishingResistant),
            OnInsufficient::StepUp,
        );
        let deny = rule(
            "admin",
            "/admin",
            Some(Level::PhishingResistant),
            OnInsufficient::Deny,
        );
        let public = rule("health", "/health", None, OnInsufficient::Deny);

        let v = decide(&step, &session(Level::Push, None, &[]), None, 100, 60);
        assert_eq!(v.decision, Decision::StepUp);
        assert_eq!(
            v.reasons.to_vec(),
            vec!["level_below_required:push<phishing_resistant"]
        );

        let v = decide(
            &deny,
            &session(Level::Push, None, &["amr:foo"]),
            None,
            100,
            60,
        );
        assert_eq!(v.decision, Decision::Deny);
        assert_eq!(
            v.reasons.to_vec(),
            vec![
                "level_below_required:push<phishing_resistant",
                "unknown_amr:foo"
            ]
        );

        let v = decide(
            &step,
            &session(Level::HardwareBoundPhishingResistant, None, &[]),
            None,
            1,
            60,
        );
        assert_eq!(v.decision, Decision::Allow);
        assert_eq!(
            v.reasons.to_vec(),
            vec!["level_satisfied:hardware_bound_phishing_resistant>=phishing_resistant"]
        );

        let v = decide(&public, &session(Level::None, None, &[]), None, 1, 60);
        assert_eq!(v.decision, Decision::Allow);
        assert_eq!(v.reasons.to_vec(), vec!["public_route"]);
    }

    #[test]
    fn decide_authentication_age() {
        let mut r = rule("pay", "/pay", Some(Level::Otp), OnInsufficient::StepUp);
        if let Some(req) = r.require.as_mut() {
            req.max_auth_age_secs = Some(900);
        }
        let now = 10_000;
        let otp = |at| session(Level::Otp, at, &[]);
        let cases: &[(Assurance, Option<u64>, Decision, &[&str])] = &[
            (
                otp(Some(now - 900)),
                None,
                Decision::Allow,
                &["level_satisfied:otp>=otp", "auth_age_ok:900s<=900s"],
            ),
            (
                otp(Some(now - 1200)),
                Some(now),
                Decision::StepUp,
                &["level_satisfied:otp>=otp", "auth_too_old:1200s>900s"],
            ),
            (
                otp(None),
                Some(now - 60),
                Decision::Allow,
                &[
                    "level_satisfied:otp>=otp",
                    "auth_age_from_iat",
                    "auth_age_ok:60s<=900s",
                ],
            ),
            (
                otp(None),
                None,
                Decision::StepUp,
                &["level_satisfied:otp>=otp", "auth_age_unknown"],
            ),
            // Clock skew: an auth_time in the future is age 0.
            (
                otp(Some(now + 30)),
                None,
                Decision::Allow,
                &["level_satisfied:otp>=otp", "auth_age_ok:0s<=900s"],
            ),
            (
                session(Level::Push, Some(now - 5000), &[]),
                None,
                Decision::StepUp,
                &["level_below_required:push<otp", "auth_too_old:5000s>900s"],
            ),
            // Beyond the skew, a future auth_time (ten years ahead) is no age at all.
            (
                otp(Some(now + 61)),
                None,
                Decision::StepUp,
                &["level_satisfied:otp>=otp", "auth_time_in_future"],
            ),
            (
                otp(Some(now + 315_360_000)),
                Some(now),
                Decision::StepUp,
                &["level_satisfied:otp>=otp", "auth_time_in_future"],
            ),
            // A future iat standing in for auth_time (jwt_authn payloads) likewise.
            (
                otp(None),
                Some(now + 3600),
                Decision::StepUp,
                &[
                    "level_satisfied:otp>=otp",
                    "auth_age_from_iat",
                    "auth_time_in_future",
                ],
            ),
            // A present but malformed auth_time (a string, -1, 1e300) never falls back to iat.
            (
                Assurance {
                    auth_time_malformed: true,
                    ..otp(None)
                },
                Some(now),
                Decision::StepUp,
                &["level_satisfied:otp>=otp", "auth_time_malformed"],
            ),
        ];
        for (assurance, iat, decision, reasons) in cases {
            let v = decide(&r, assurance, *iat, now, 60);
            assert_eq!(v.decision, *decision, "{assurance:?}");
            assert_eq!(v.reasons.to_vec(), *reasons, "{assurance:?}");
        }
        for v in cases
            .iter()
            .map(|(a, iat, _, _)| decide(&r, a, *iat, now, 60))
        {
            assert!(v.reasons.iter().all(|r| !r.to_string().contains(' ')));
        }
    }

    /// The README's decision table: documented sessions × example routes. Run with
    /// `cargo test -p mfa-gate --lib decision_table -- --nocapture` to print the markdown.
    #[test]
    fn decision_table() {
        use Level::{
            HardwareBoundPhishingResistant, Otp, Password, PhishingResistant, PushNumberMatch,
        };
        let routes = [
            (
                "`GET /health` (public)",
                rule("health", "/health", None, OnInsufficient::Deny),
            ),
            (
                "`/app` (password)",
                rule("app", "/app", Some(Password), OnInsufficient::StepUp),
            ),
            (
                "`/transfers` (push_number_match)",
                rule(
                    "transfers",
                    "/transfers",
                    Some(PushNumberMatch),
                    OnInsufficient::StepUp,
                ),
            ),
            (
                "`/payments` (otp)",
                rule("payments", "/payments", Some(Otp), OnInsufficient::StepUp),
            ),
            (
                "`/admin` (phishing_resistant, step-up)",
                rule(
                    "admin",
                    "/admin",
                    Some(PhishingResistant),
                    OnInsufficient::StepUp,
                ),
            ),
            (
                "`/admin/keys` (hardware_bound, deny)",
                rule(
                    "keys",
                    "/admin/keys",
                    Some(HardwareBoundPhishingResistant),
                    OnInsufficient::Deny,
                ),
            ),
        ];
        let okta_nm = ClassifierSettings {
            profile: Profile::Okta,
            amr_levels: vec![("swk".into(), PushNumberMatch)],
            ..ClassifierSettings::default()
        };
        let entra_pr = ClassifierSettings {
            profile: Profile::EntraId,
            phishing_resistant_acrs: vec!["c1".into()],
            ..ClassifierSettings::default()
        };
        let plain = |profile| ClassifierSettings {
            profile,
            ..ClassifierSettings::default()
        };
        let sessions: Vec<(&str, serde_json::Value, ClassifierSettings, &str)> = vec![
            (
                "Okta password",
                json!({"amr": ["pwd"]}),
                plain(Profile::Okta),
                "AASSSD",
            ),
            (
                "Okta Verify push",
                json!({"amr": ["pwd", "okta_verify", "swk"]}),
                plain(Profile::Okta),
                "AASSSD",
            ),
            (
                "Okta push, org maps `swk`→push_number_match",
                json!({"amr": ["pwd", "okta_verify", "swk"]}),
                okta_nm,
                "AAASSD",
            ),
            (
                "Okta SMS (`sms`,`mfa`,`pwd`)",
                json!({"amr": ["sms", "mfa", "pwd"]}),
                plain(Profile::Okta),
                "AAAASD",
            ),
            (
                "Okta FastPass (`okta_verify`,`phr`)",
                json!({"amr": ["okta_verify", "phr"]}),
                plain(Profile::Okta),
                "AAAAAD",
            ),
            (
                "Okta WebAuthn (`pwd`,`pop`)",
                json!({"amr": ["pwd", "pop"]}),
                plain(Profile::Okta),
                "AAAAAD",
            ),
            (
                "Okta smart card, hardware key (`sc`,`hwk`)",
                json!({"amr": ["sc", "hwk"]}),
                plain(Profile::Okta),
                "AAAAAA",
            ),
            (
                "Entra Authenticator (`mfa`,`rsa`,`pwd`)",
                json!({"amr": ["mfa", "rsa", "pwd"]}),
                plain(Profile::EntraId),
                "AASSSD",
            ),
            (
                "Entra `acrs: [c1]`, c1 = phishing-resistant CA",
                json!({"acrs": ["c1"]}),
                entra_pr,
                "AAAAAD",
            ),
            (
                "Auth0 `amr: [mfa]` (push or FIDO2)",
                json!({"amr": ["mfa"], "acr": "http://schemas.openid.net/pape/policies/2007/06/multi-factor"}),
                plain(Profile::Auth0),
                "AASSSD",
            ),
            (
                "Generic `acr: phrh`",
                json!({"acr": "phrh"}),
                plain(Profile::Generic),
                "AAAAAA",
            ),
            (
                "Any profile, `amr: \"pwd\"` (not an array)",
                json!({"amr": "pwd"}),
                plain(Profile::Generic),
                "ASSSSD",
            ),
        ];
        let mut md = String::from("| session (amr/acr) | level |");
        for (title, _) in &routes {
            md.push_str(&format!(" {title} |"));
        }
        md.push_str("\n|---|---|");
        md.push_str(&"---|".repeat(routes.len()));
        md.push('\n');
        for (name, c, settings, expected) in &sessions {
            let serde_json::Value::Object(c) = c.clone() else {
                unreachable!()
            };
            let a = classify(&c, settings);
            md.push_str(&format!("| {name} | `{}` |", a.level.as_str()));
            for (i, (_, r)) in routes.iter().enumerate() {
                let v = decide(r, &a, None, 0, 60);
                let (cell, letter) = match v.decision {
                    Decision::Allow => ("allow", 'A'),
                    Decision::StepUp => ("**step-up**", 'S'),
                    Decision::Deny => ("**403**", 'D'),
                    Decision::Revoke => ("**revoke**", 'R'),
                };
                assert_eq!(
                    expected.chars().nth(i),
                    Some(letter),
                    "{name} on {}: {v:?}",
                    r.name
                );
                md.push_str(&format!(" {cell} |"));
            }
            md.push('\n');
        }
        println!("{md}");
    }

    #[test]
    fn decision_counters_by_mode() {
        assert_eq!(
            decision_counter(Decision::StepUp, Mode::Enforce),
            metrics::DECISION_STEP_UP
        );
        assert_eq!(
            decision_counter(Decision::Deny, Mode::ReportOnly),
            metrics::REPORT_ONLY_DENY
        );
    }
}

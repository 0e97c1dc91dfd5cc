//! Compiles `routes[]` into [`RouteRule`]s: what a rule matches (path, methods, hosts),
//! what it requires, and what it does when the requirement is not met.

use super::error::{parse_choice, parse_level, push, quote, ConfigError, MODES};
use super::raw::{RawMatch, RawRequire, RawRoute};
use super::risk::compile_thresholds;
use crate::assurance::Level;
use crate::policy::{
    BrowserMode, Mode, OnInsufficient, Requirement, RouteMatch, RouteRisk, RouteRule, Thresholds,
};

/// One rule, or `None` (with its errors pushed) when it does not compile.
pub(super) fn compile_route(
    raw: RawRoute,
    index: usize,
    path: &str,
    global_mode: Mode,
    thresholds: Thresholds,
    errors: &mut Vec<ConfigError>,
) -> Option<RouteRule> {
    let before = errors.len();
    let name = raw.name.unwrap_or_else(|| format!("route_{index}"));
    let matcher = compile_match(raw.matcher, path, errors);
    let require = compile_require(raw.require, path, errors);
    // A risk step-up asks for phishing-resistant sign-in, or for what the rule requires
    // when that is stronger still (a weaker requirement is already met, so asking for it
    // again could not lower the score).
    let risk = raw.risk.map(|r| RouteRisk {
        thresholds: compile_thresholds(Some(r), thresholds),
        step_up: match &require {
            Some(q) if q.level >= Level::PhishingResistant => q.clone(),
            _ => Requirement {
                level: Level::PhishingResistant,
                max_auth_age_secs: require.as_ref().and_then(|q| q.max_auth_age_secs),
                acr_values: default_acr_values(Level::PhishingResistant).to_string(),
            },
        },
    });

    let on_insufficient = parse_choice(
        raw.on_insufficient.as_deref(),
        OnInsufficient::StepUp,
        &[
            ("step_up", OnInsufficient::StepUp),
            ("deny", OnInsufficient::Deny),
            ("revoke", OnInsufficient::Revoke),
        ],
        &format!("{path}.on_insufficient"),
        errors,
    );
    let browser = parse_choice(
        raw.browser.as_deref(),
        BrowserMode::Auto,
        &[
            ("auto", BrowserMode::Auto),
            ("redirect", BrowserMode::Redirect),
            ("api", BrowserMode::Api),
        ],
        &format!("{path}.browser"),
        errors,
    );
    let mode = parse_choice(
        raw.mode.as_deref(),
        global_mode,
        &MODES,
        &format!("{path}.mode"),
        errors,
    );
    if errors.len() > before {
        return None;
    }
    Some(RouteRule {
        name_json: crate::json::json_string(&name).into(),
        name: name.into(),
        matcher,
        require,
        mode,
        on_insufficient,
        browser,
        risk,
    })
}

/// What a rule matches: an exact path or a prefix, methods, hosts.
fn compile_match(m: RawMatch, path: &str, errors: &mut Vec<ConfigError>) -> RouteMatch {
    match (&m.path, &m.path_prefix) {
        (Some(_), Some(_)) => push(
            errors,
            format!("{path}.match"),
            "set either path or path_prefix, not both",
        ),
        (None, None) => push(
            errors,
            format!("{path}.match"),
            "set path (exact) or path_prefix",
        ),
        _ => {}
    }
    for (field, value) in [("path", &m.path), ("path_prefix", &m.path_prefix)] {
        if let Some(v) = value {
            if !v.starts_with('/') || v.contains('?') || v.contains('#') {
                push(
                    errors,
                    format!("{path}.match.{field}"),
                    format!(
                        "{} must start with \"/\" and contain no query or fragment",
                        quote(v)
                    ),
                );
            }
        }
    }
    let mut methods = Vec::new();
    for (j, method) in m.methods.iter().enumerate() {
        let upper = method.to_ascii_uppercase();
        if upper.is_empty() || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
            push(
                errors,
                format!("{path}.match.methods[{j}]"),
                format!("invalid method {}", quote(method)),
            );
        } else {
            methods.push(upper);
        }
    }
    let mut hosts = Vec::new();
    for (j, host) in m.hosts.iter().enumerate() {
        let lower = host.to_ascii_lowercase();
        let bare = lower.strip_prefix("*.").unwrap_or(&lower);
        if bare.is_empty()
            || bare.contains(':')
            || !bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            push(
                errors,
                format!("{path}.match.hosts[{j}]"),
                format!(
                    "invalid host {} (a DNS name without port, optionally \"*.\" for subdomains)",
                    quote(host)
                ),
            );
        } else {
            hosts.push(lower);
        }
    }

    RouteMatch {
        path_exact: m.path,
        path_prefix: m.path_prefix,
        methods,
        hosts,
    }
}

/// What a rule requires: a level, a sign-in age, the `acr_values` asked for on step-up.
fn compile_require(
    raw: Option<RawRequire>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Requirement> {
    raw.and_then(|r| {
        let level = parse_level(&r.level, &format!("{path}.require.level"), errors)?;
        if let Some(age) = r.max_auth_age_secs {
            if age == 0 {
                push(
                    errors,
                    format!("{path}.require.max_auth_age_secs"),
                    "must be greater than 0",
                );
            }
        }
        let acr_values = r
            .acr_values
            .unwrap_or_else(|| default_acr_values(level).to_string());
        if !acr_values
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\' || b == b' ')
        {
            push(
                errors,
                format!("{path}.require.acr_values"),
                format!("invalid acr_values {}", quote(&acr_values)),
            );
        }
        Some(Requirement {
            level,
            max_auth_age_secs: r.max_auth_age_secs,
            acr_values,
        })
    })
}

/// The `acr_values` asked for on step-up when a rule names none: the OpenID EAP values
/// `phr` / `phrh` for the phishing-resistant levels, otherwise nothing specific.
pub fn default_acr_values(level: Level) -> &'static str {
    match level {
        Level::HardwareBoundPhishingResistant => "phrh",
        Level::PhishingResistant => "phr",
        _ => "",
    }
}

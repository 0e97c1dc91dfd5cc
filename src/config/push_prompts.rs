//! The `push_prompts` section: the push endpoints mfa-gate guards (provider presets or
//! full definitions), the prompt limits per user and per client address, the fatigue
//! signature and where prompts are counted. Compiles into [`PromptSettings`].
//!
//! A preset may have its `user` sources overridden and nothing else (`okta_authn` must be
//! given one: its requests do not name the user); a full definition names its `initiate`
//! step and `user` sources. `fatigue.action: revoke` needs the revocation section, as a
//! revoking rule does.

use super::error::{check_header_name, parse_choice, push, quote};
use super::raw::{
    RawCounting, RawFatigue, RawFieldSource, RawPushCondition, RawPushEndpoint, RawPushLimits,
    RawPushPrompts, RawPushStep, RawPushWindow,
};
use super::shape::{self, Shape, FIELD_SOURCE, PUSH_CONDITION};
use super::ConfigError;
use crate::prompts::endpoint::{preset, PRESETS};
use crate::prompts::{
    history, Condition, Counting, Endpoint, FatigueAction, FatigueSettings, FieldSource, Limits,
    OnUnavailable, OutcomeRule, PathPattern, PromptOutcome, PromptSettings, ServiceCounting,
    StepMatch, Test, Window, DEFAULT_MAX_BODY_BYTES, DEFAULT_SERVICE_DOMAIN,
    DEFAULT_SERVICE_TIMEOUT_MS,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::rc::Rc;

/// The most endpoints a configuration names.
pub const MAX_PUSH_ENDPOINTS: usize = 32;
/// The most windows per scope.
pub const MAX_WINDOWS: usize = 4;
/// The most prompts a window allows.
pub const MAX_WINDOW_PROMPTS: u64 = 100;
/// The longest window, seconds (a day).
pub const MAX_WINDOW_SECS: u64 = 86_400;
/// The most sources or conditions in one list.
const MAX_LIST: usize = 8;

/// The `push_prompts` section (`None` when absent). `revocation`: whether the
/// configuration has a revocation section.
pub(super) fn compile_push_prompts(
    raw: Option<RawPushPrompts>,
    revocation: bool,
    errors: &mut Vec<ConfigError>,
) -> Option<PromptSettings> {
    let raw = raw?;
    let base = "push_prompts";
    if raw.endpoints.is_empty() {
        push(
            errors,
            format!("{base}.endpoints"),
            "name at least one endpoint",
        );
    }
    if raw.endpoints.len() > MAX_PUSH_ENDPOINTS {
        push(
            errors,
            format!("{base}.endpoints"),
            format!(
                "{} endpoints; the limit is {MAX_PUSH_ENDPOINTS}",
                raw.endpoints.len()
            ),
        );
    }
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for (i, raw_endpoint) in raw.endpoints.into_iter().enumerate() {
        let path = format!("{base}.endpoints[{i}]");
        if let Some(endpoint) = compile_endpoint(raw_endpoint, &path, errors) {
            if endpoints.iter().any(|e| e.name == endpoint.name) {
                push(
                    errors,
                    format!("{path}.name"),
                    format!("duplicate endpoint name {}", quote(&endpoint.name)),
                );
            }
            endpoints.push(endpoint);
        }
    }
    let limits = compile_limits(raw.limits, errors);
    let fatigue = compile_fatigue(raw.fatigue, revocation, errors);
    let counting = compile_counting(raw.counting, errors);
    let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if !(256..=262_144).contains(&max_body_bytes) {
        push(
            errors,
            format!("{base}.max_body_bytes"),
            format!("{max_body_bytes} is out of range (256 to 262144)"),
        );
    }
    Some(PromptSettings {
        endpoints,
        limits,
        fatigue,
        counting,
        max_body_bytes,
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

fn compile_endpoint(
    raw: RawPushEndpoint,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Endpoint> {
    if !valid_name(&raw.name) {
        push(
            errors,
            format!("{path}.name"),
            format!(
                "invalid name {} (1-64 letters, digits, _ - .)",
                quote(&raw.name)
            ),
        );
    }
    if let Some(provider) = &raw.provider {
        let Some(mut endpoint) = preset(provider, &raw.name) else {
            push(
                errors,
                format!("{path}.provider"),
                format!(
                    "unknown provider {} (expected one of: {})",
                    quote(provider),
                    PRESETS.join(", ")
                ),
            );
            return None;
        };
        for (field, given) in [
            ("initiate", raw.initiate.is_some()),
            ("poll", raw.poll.is_some()),
            ("transaction", raw.transaction.is_some()),
            ("outcome", raw.outcome.is_some()),
        ] {
            if given {
                push(
                    errors,
                    format!("{path}.{field}"),
                    format!(
                        "a provider preset sets its own {field} (only user may be given; write the endpoint in full to change it)"
                    ),
                );
            }
        }
        match &raw.user {
            Some(user) => {
                let segments = endpoint.initiate.path.len();
                endpoint.users = sources(user, &format!("{path}.user"), segments, errors);
                // The poll reads the user where the preset says, else by its transaction.
            }
            None if endpoint.users.is_empty() => push(
                errors,
                format!("{path}.user"),
                format!(
                    "provider {} does not name the user in its requests: give a user source (e.g. a header set by a trusted hop)",
                    quote(provider)
                ),
            ),
            None => {}
        }
        return Some(endpoint);
    }
    let Some(initiate) = raw.initiate else {
        push(
            errors,
            path,
            "give a provider preset or the endpoint in full (initiate, user)",
        );
        return None;
    };
    let initiate_path = format!("{path}.initiate");
    let (initiate, initiate_users) = compile_step(initiate, "POST", &initiate_path, errors)?;
    if let Some(users) = initiate_users {
        push(
            errors,
            format!("{initiate_path}.user"),
            format!(
                "the initiate's user is the endpoint's user (move it up); found {} source(s)",
                users.len()
            ),
        );
    }
    let users = match &raw.user {
        Some(user) => sources(user, &format!("{path}.user"), initiate.path.len(), errors),
        None => {
            push(
                errors,
                format!("{path}.user"),
                "is required (where the user is)",
            );
            Vec::new()
        }
    };
    let (poll, poll_users) = match raw.poll {
        Some(poll) => {
            let (step, users) = compile_step(poll, "GET", &format!("{path}.poll"), errors)?;
            if !step.when.is_empty() {
                push(
                    errors,
                    format!("{path}.poll.when"),
                    "only the initiate has conditions (a poll is never a prompt)",
                );
            }
            (Some(step), users)
        }
        None => (None, None),
    };
    let segments = poll.as_ref().map_or(initiate.path.len(), |p| {
        p.path.len().max(initiate.path.len())
    });
    let (transaction_request, transaction_response) = match raw.transaction {
        Some(t) => {
            let request = t.request.as_ref().map_or_else(Vec::new, |r| {
                sources(r, &format!("{path}.transaction.request"), segments, errors)
            });
            if let Some(pointer) = &t.response {
                check_pointer(pointer, &format!("{path}.transaction.response"), errors);
            }
            if request.is_empty() && t.response.is_none() {
                push(
                    errors,
                    format!("{path}.transaction"),
                    "give request (where a request carries it) or response (a JSON pointer into the initiate's answer)",
                );
            }
            (request, t.response)
        }
        None => (Vec::new(), None),
    };
    let mut outcomes = Vec::new();
    for (i, rule) in raw.outcome.unwrap_or_default().into_iter().enumerate() {
        let rule_path = format!("{path}.outcome[{i}]");
        check_pointer(&rule.pointer, &format!("{rule_path}.pointer"), errors);
        match PromptOutcome::parse(&rule.outcome) {
            Some(outcome) => outcomes.push(OutcomeRule {
                pointer: rule.pointer,
                equals: rule.equals,
                outcome,
            }),
            None => push(
                errors,
                format!("{rule_path}.outcome"),
                format!(
                    "unknown outcome {} (expected one of: approved, denied, timeout, pending)",
                    quote(&rule.outcome)
                ),
            ),
        }
    }
    // Polls that use the initiate's own request (no poll step) but carry a transaction.
    let polls_on_initiate = poll.is_none() && !transaction_request.is_empty();
    Some(Endpoint {
        name: Rc::from(raw.name.as_str()),
        initiate,
        poll,
        users,
        poll_users,
        transaction_request,
        transaction_response,
        outcomes,
        polls_on_initiate,
    })
}

/// A step, and its own user sources when it names them.
fn compile_step(
    raw: RawPushStep,
    default_method: &str,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<(StepMatch, Option<Vec<FieldSource>>)> {
    let pattern = match PathPattern::parse(&raw.path) {
        Ok(pattern) => pattern,
        Err(why) => {
            push(
                errors,
                format!("{path}.path"),
                format!(
                    "invalid pattern {} ({why}; e.g. /api/v1/users/*/factors/*/verify)",
                    quote(&raw.path)
                ),
            );
            return None;
        }
    };
    let methods = match (raw.method, raw.methods) {
        (Some(_), Some(_)) => {
            push(errors, path, "set method or methods, not both");
            Vec::new()
        }
        (Some(m), None) => vec![m],
        (None, Some(list)) => list,
        (None, None) => vec![default_method.to_string()],
    };
    if methods.is_empty() || methods.len() > MAX_LIST {
        push(
            errors,
            format!("{path}.methods"),
            format!("name 1 to {MAX_LIST} methods"),
        );
    }
    for (i, m) in methods.iter().enumerate() {
        if m.is_empty() || m.len() > 16 || !m.bytes().all(|b| b.is_ascii_uppercase()) {
            push(
                errors,
                format!("{path}.methods[{i}]"),
                format!(
                    "invalid method {} (upper-case letters, e.g. POST)",
                    quote(m)
                ),
            );
        }
    }
    let segments = pattern.len();
    let when = raw.when.as_ref().map_or_else(Vec::new, |w| {
        conditions(w, &format!("{path}.when"), segments, errors)
    });
    let users = raw
        .user
        .as_ref()
        .map(|u| sources(u, &format!("{path}.user"), segments, errors));
    Some((
        StepMatch {
            methods,
            path: pattern,
            when,
        },
        users,
    ))
}

/// One object or a list of them, each checked against `item` and read as `T`.
fn items<T: DeserializeOwned>(
    value: &Value,
    item: &Shape,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, T)> {
    let list: Vec<(String, &Value)> = match value {
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{path}[{i}]"), v))
            .collect(),
        Value::Object(_) => vec![(path.to_string(), value)],
        _ => {
            push(errors, path, "expected an object or a list of objects");
            return Vec::new();
        }
    };
    if list.is_empty() || list.len() > MAX_LIST {
        push(errors, path, format!("give 1 to {MAX_LIST} entries"));
    }
    let mut out = Vec::new();
    for (item_path, v) in list {
        let before = errors.len();
        shape::check(v, item, &item_path, errors);
        if errors.len() > before {
            continue;
        }
        match serde_json::from_value::<T>(v.clone()) {
            Ok(t) => out.push((item_path, t)),
            Err(e) => push(errors, item_path, e.to_string()),
        }
    }
    out
}

fn sources(
    value: &Value,
    path: &str,
    segments: usize,
    errors: &mut Vec<ConfigError>,
) -> Vec<FieldSource> {
    items::<RawFieldSource>(value, &FIELD_SOURCE, path, errors)
        .into_iter()
        .filter_map(|(p, raw)| source(raw, &p, segments, errors))
        .collect()
}

fn source(
    raw: RawFieldSource,
    path: &str,
    segments: usize,
    errors: &mut Vec<ConfigError>,
) -> Option<FieldSource> {
    let source = match (raw.form, raw.json, raw.path_segment, raw.header, raw.query) {
        (Some(name), None, None, None, None) => FieldSource::Form(name),
        (None, Some(pointer), None, None, None) => {
            check_pointer(&pointer, &format!("{path}.json"), errors);
            FieldSource::Json(pointer)
        }
        (None, None, Some(index), None, None) => {
            if index == 0 || index > segments {
                push(
                    errors,
                    format!("{path}.path_segment"),
                    format!("{index} is out of range (1 to {segments}, the pattern's segments)"),
                );
            }
            FieldSource::PathSegment(index)
        }
        (None, None, None, Some(header), None) => FieldSource::Header(check_header_name(
            &header,
            &format!("{path}.header"),
            errors,
        )?),
        (None, None, None, None, Some(name)) => FieldSource::Query(name),
        _ => {
            push(
                errors,
                path,
                "set exactly one of form, json, path_segment, header, query",
            );
            return None;
        }
    };
    if let FieldSource::Form(name) | FieldSource::Query(name) = &source {
        if name.is_empty() || name.len() > 128 {
            push(errors, path, format!("invalid field name {}", quote(name)));
        }
    }
    Some(source)
}

fn conditions(
    value: &Value,
    path: &str,
    segments: usize,
    errors: &mut Vec<ConfigError>,
) -> Vec<Condition> {
    let mut out = Vec::new();
    for (p, raw) in items::<RawPushCondition>(value, &PUSH_CONDITION, path, errors) {
        let field = RawFieldSource {
            form: raw.form,
            json: raw.json,
            path_segment: raw.path_segment,
            header: raw.header,
            query: raw.query,
        };
        let Some(field) = source(field, &p, segments, errors) else {
            continue;
        };
        let test = match (raw.equals, raw.one_of, raw.absent) {
            (Some(value), None, None) => Test::OneOf(vec![value]),
            (None, Some(values), None) if !values.is_empty() && values.len() <= MAX_LIST => {
                Test::OneOf(values)
            }
            (None, None, Some(true)) => Test::Absent,
            _ => {
                push(
                    errors,
                    p,
                    format!(
                        "set exactly one of equals, one_of (1 to {MAX_LIST} values), absent (true)"
                    ),
                );
                continue;
            }
        };
        out.push(Condition { field, test });
    }
    out
}

/// A JSON pointer (RFC 6901): empty or starting with `/`.
fn check_pointer(pointer: &str, path: &str, errors: &mut Vec<ConfigError>) {
    if !(pointer.is_empty() || pointer.starts_with('/')) || pointer.len() > 256 {
        push(
            errors,
            path,
            format!(
                "invalid JSON pointer {} (e.g. /response/result)",
                quote(pointer)
            ),
        );
    }
}

fn compile_windows(
    raw: Option<Vec<RawPushWindow>>,
    default: Vec<Window>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<Window> {
    let Some(raw) = raw else {
        return default;
    };
    if raw.len() > MAX_WINDOWS {
        push(
            errors,
            path,
            format!("{} windows; the limit is {MAX_WINDOWS}", raw.len()),
        );
    }
    let mut windows = Vec::new();
    for (i, w) in raw.into_iter().enumerate() {
        let p = format!("{path}[{i}]");
        if !(1..=MAX_WINDOW_PROMPTS).contains(&w.prompts) {
            push(
                errors,
                format!("{p}.prompts"),
                format!("{} is out of range (1 to {MAX_WINDOW_PROMPTS})", w.prompts),
            );
            continue;
        }
        if !(1..=MAX_WINDOW_SECS).contains(&w.window_secs) {
            push(
                errors,
                format!("{p}.window_secs"),
                format!("{} is out of range (1 to {MAX_WINDOW_SECS})", w.window_secs),
            );
            continue;
        }
        windows.push(Window {
            max_prompts: u32::try_from(w.prompts).unwrap_or(1),
            window_secs: w.window_secs,
        });
    }
    windows
}

fn compile_limits(raw: Option<RawPushLimits>, errors: &mut Vec<ConfigError>) -> Limits {
    let defaults = Limits::default();
    let Some(raw) = raw else {
        return defaults;
    };
    let limits = Limits {
        per_user: compile_windows(
            raw.per_user,
            defaults.per_user,
            "push_prompts.limits.per_user",
            errors,
        ),
        per_client: compile_windows(
            raw.per_client,
            defaults.per_client,
            "push_prompts.limits.per_client",
            errors,
        ),
    };
    if limits.per_user.is_empty() && limits.per_client.is_empty() {
        push(
            errors,
            "push_prompts.limits",
            "give at least one window (per_user or per_client)",
        );
    }
    limits
}

fn compile_fatigue(
    raw: Option<RawFatigue>,
    revocation: bool,
    errors: &mut Vec<ConfigError>,
) -> FatigueSettings {
    let mut fatigue = FatigueSettings::default();
    let Some(raw) = raw else {
        return fatigue;
    };
    let path = "push_prompts.fatigue";
    if let Some(secs) = raw.window_secs {
        if !(60..=MAX_WINDOW_SECS).contains(&secs) {
            push(
                errors,
                format!("{path}.window_secs"),
                format!("{secs} is out of range (60 to {MAX_WINDOW_SECS})"),
            );
        }
        fatigue.window_secs = secs;
    }
    if let Some(n) = raw.min_unanswered {
        let most = history::MAX_PROMPTS as u64 - 1;
        if !(1..=most).contains(&n) {
            push(
                errors,
                format!("{path}.min_unanswered"),
                format!("{n} is out of range (1 to {most})"),
            );
        }
        fatigue.min_unanswered = u32::try_from(n).unwrap_or(1);
    }
    fatigue.action = parse_choice(
        raw.action.as_deref(),
        FatigueAction::StepUp,
        &[
            ("step_up", FatigueAction::StepUp),
            ("revoke", FatigueAction::Revoke),
        ],
        &format!("{path}.action"),
        errors,
    );
    if fatigue.action == FatigueAction::Revoke && !revocation {
        push(
            errors,
            format!("{path}.action"),
            "\"revoke\" needs a revocation section (where the revocation is kept)",
        );
    }
    if let Some(ttl) = raw.mark_ttl_secs {
        if !(60..=604_800).contains(&ttl) {
            push(
                errors,
                format!("{path}.mark_ttl_secs"),
                format!("{ttl} is out of range (60 to 604800)"),
            );
        }
        fatigue.mark_ttl_secs = ttl;
    }
    if let Some(claim) = raw.session_claim {
        if claim.is_empty() || claim.len() > 128 {
            push(
                errors,
                format!("{path}.session_claim"),
                format!("invalid claim name {}", quote(&claim)),
            );
        }
        fatigue.session_claim = claim;
    }
    fatigue
}

fn compile_counting(raw: Option<RawCounting>, errors: &mut Vec<ConfigError>) -> Counting {
    let Some(raw) = raw else {
        return Counting::Local;
    };
    let path = "push_prompts.counting";
    match raw.mode.as_str() {
        "local" => {
            for (field, given) in [
                ("cluster", raw.cluster.is_some()),
                ("domain", raw.domain.is_some()),
                ("timeout_ms", raw.timeout_ms.is_some()),
                ("on_unavailable", raw.on_unavailable.is_some()),
            ] {
                if given {
                    push(
                        errors,
                        format!("{path}.{field}"),
                        "only with mode \"service\"",
                    );
                }
            }
            Counting::Local
        }
        "service" => {
            let cluster = raw.cluster.unwrap_or_default();
            if cluster.is_empty() {
                push(
                    errors,
                    format!("{path}.cluster"),
                    "mode \"service\" needs the rate-limit service's cluster",
                );
            }
            let domain = raw
                .domain
                .unwrap_or_else(|| DEFAULT_SERVICE_DOMAIN.to_string());
            if domain.is_empty() || domain.len() > 128 {
                push(
                    errors,
                    format!("{path}.domain"),
                    format!("invalid domain {}", quote(&domain)),
                );
            }
            let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_SERVICE_TIMEOUT_MS);
            if !(1..=10_000).contains(&timeout_ms) {
                push(
                    errors,
                    format!("{path}.timeout_ms"),
                    format!("{timeout_ms} is out of range (1 to 10000)"),
                );
            }
            let on_unavailable = parse_choice(
                raw.on_unavailable.as_deref(),
                OnUnavailable::Local,
                &[
                    ("local", OnUnavailable::Local),
                    ("deny", OnUnavailable::Deny),
                    ("allow", OnUnavailable::Allow),
                ],
                &format!("{path}.on_unavailable"),
                errors,
            );
            Counting::Service(ServiceCounting {
                cluster,
                domain,
                timeout_ms,
                on_unavailable,
            })
        }
        other => {
            push(
                errors,
                format!("{path}.mode"),
                format!(
                    "unknown value {} (expected one of: local, service)",
                    quote(other)
                ),
            );
            Counting::Local
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::parse;
    use crate::prompts::{Counting, FatigueAction, FieldSource, OnUnavailable, Step, Test, Window};

    fn doc(push_prompts: &str, extra: &str) -> String {
        format!(
            r#"{{"issuers":[{{"issuer":"https://idp.example","audiences":["api"],
                "remote_jwks":{{"cluster":"idp","path":"/jwks"}}}}],
                "routes":[{{"match":{{"path_prefix":"/"}}}}],
                "push_prompts":{push_prompts}{extra}}}"#
        )
    }

    fn errors_of(push_prompts: &str) -> Vec<String> {
        match parse(doc(push_prompts, "").as_bytes()) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn assert_error(push_prompts: &str, expected: &str) {
        let errors = errors_of(push_prompts);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{expected:?} not in {errors:#?}"
        );
    }

    const FULL: &str = r#"{
      "endpoints": [ {"name": "duo", "provider": "duo"},
                     {"name": "okta", "provider": "okta_authn", "user": {"header": "X-Okta-User"}},
                     {"name": "custom", "initiate": {"method": "POST", "path": "/push/*/start", "when": {"form": "factor", "equals": "push"}},
                      "poll": {"method": "GET", "path": "/push/*/status"}, "user": [{"path_segment": 2}],
                      "transaction": {"request": {"query": "tx"}, "response": "/tx"},
                      "outcome": [{"pointer": "/result", "equals": "allow", "outcome": "approved"},
                                  {"pointer": "/result", "equals": "deny", "outcome": "denied"}]} ],
      "limits": {"per_user": [{"prompts": 3, "window_secs": 300}, {"prompts": 10, "window_secs": 3600}], "per_client": [{"prompts": 50, "window_secs": 600}]},
      "fatigue": {"window_secs": 900, "min_unanswered": 3, "action": "step_up", "mark_ttl_secs": 3600, "session_claim": "email"},
      "counting": {"mode": "service", "cluster": "ratelimit", "domain": "gate", "timeout_ms": 150, "on_unavailable": "deny"},
      "max_body_bytes": 8192
    }"#;

    #[test]
    fn the_documented_example_compiles() {
        let c = parse(doc(FULL, "").as_bytes()).unwrap();
        let p = c.push_prompts.unwrap();
        assert_eq!(p.endpoints.len(), 3);
        assert_eq!(&*p.endpoints[0].name, "duo");
        assert_eq!(
            p.endpoints[1].users,
            vec![FieldSource::Header("x-okta-user".into())]
        );
        assert!(p.endpoints[1].polls_on_initiate);
        let custom = &p.endpoints[2];
        assert_eq!(custom.users, vec![FieldSource::PathSegment(2)]);
        assert_eq!(custom.initiate.methods, vec!["POST"]);
        assert_eq!(
            custom.initiate.when[0].test,
            Test::OneOf(vec!["push".into()])
        );
        assert_eq!(
            custom.transaction_request,
            vec![FieldSource::Query("tx".into())]
        );
        assert_eq!(custom.transaction_response.as_deref(), Some("/tx"));
        assert_eq!(custom.outcomes.len(), 2);
        assert!(!custom.polls_on_initiate);
        assert!(custom.needs_body(Step::Initiate));
        assert_eq!(
            p.limits.per_client,
            vec![Window {
                max_prompts: 50,
                window_secs: 600
            }]
        );
        assert_eq!(p.fatigue.window_secs, 900);
        assert_eq!(p.fatigue.min_unanswered, 3);
        assert_eq!(p.fatigue.session_claim, "email");
        assert_eq!(p.fatigue.mark_ttl_secs, 3600);
        match p.counting {
            Counting::Service(s) => {
                assert_eq!(s.cluster, "ratelimit");
                assert_eq!(s.domain, "gate");
                assert_eq!(s.timeout_ms, 150);
                assert_eq!(s.on_unavailable, OnUnavailable::Deny);
            }
            Counting::Local => panic!("service"),
        }
        assert_eq!(p.max_body_bytes, 8192);
    }

    #[test]
    fn defaults() {
        let c = parse(doc(r#"{"endpoints":[{"name":"duo","provider":"duo"}]}"#, "").as_bytes())
            .unwrap();
        let p = c.push_prompts.unwrap();
        assert_eq!(p.limits, crate::prompts::Limits::default());
        assert_eq!(
            p.limits.per_user,
            vec![
                Window {
                    max_prompts: 3,
                    window_secs: 300
                },
                Window {
                    max_prompts: 10,
                    window_secs: 3600
                }
            ]
        );
        assert_eq!(p.fatigue, crate::prompts::FatigueSettings::default());
        assert_eq!(p.fatigue.action, FatigueAction::StepUp);
        assert_eq!(p.fatigue.min_unanswered, 2);
        assert_eq!(p.fatigue.window_secs, 600);
        assert_eq!(p.counting, Counting::Local);
        assert_eq!(p.max_body_bytes, 16_384);
        let c = parse(doc(
            r#"{"endpoints":[{"name":"duo","provider":"duo"}],"counting":{"mode":"service","cluster":"rl"}}"#,
            "",
        ).as_bytes())
        .unwrap();
        match c.push_prompts.unwrap().counting {
            Counting::Service(s) => {
                assert_eq!((s.domain.as_str(), s.timeout_ms), ("mfa-gate", 200));
                assert_eq!(s.on_unavailable, OnUnavailable::Local);
            }
            Counting::Local => panic!("service"),
        }
        assert!(parse(doc("null", "").as_bytes()).is_err());
        let none = r#"{"issuers":[{"issuer":"https://i","audiences":["a"],"remote_jwks":{"cluster":"c","path":"/j"}}]}"#;
        assert!(parse(none.as_bytes()).unwrap().push_prompts.is_none());
    }

    #[test]
    fn endpoint_errors_name_their_paths() {
        assert_error(
            r#"{"endpoints":[]}"#,
            "push_prompts.endpoints: name at least one endpoint",
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","provider":"duo2"}]}"#,
            r#"push_prompts.endpoints[0].provider: unknown provider "duo2" (expected one of: duo, okta_factors, okta_authn)"#,
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","provider":"okta_authn"}]}"#,
            r#"push_prompts.endpoints[0].user: provider "okta_authn" does not name the user"#,
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","provider":"duo","poll":{"path":"/x"}}]}"#,
            "push_prompts.endpoints[0].poll: a provider preset sets its own poll",
        );
        assert_error(
            r#"{"endpoints":[{"name":"a b","provider":"duo"}]}"#,
            r#"push_prompts.endpoints[0].name: invalid name "a b""#,
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","provider":"duo"},{"name":"a","provider":"okta_factors"}]}"#,
            r#"push_prompts.endpoints[1].name: duplicate endpoint name "a""#,
        );
        assert_error(
            r#"{"endpoints":[{"name":"a"}]}"#,
            "push_prompts.endpoints[0]: give a provider preset or the endpoint in full",
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x"}}]}"#,
            "push_prompts.endpoints[0].user: is required",
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"x/*"},"user":{"form":"u"}}]}"#,
            r#"push_prompts.endpoints[0].initiate.path: invalid pattern "x/*" (must start with /"#,
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x","method":"post"},"user":{"form":"u"}}]}"#,
            r#"push_prompts.endpoints[0].initiate.methods[0]: invalid method "post""#,
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x","method":"POST","methods":["PUT"]},"user":{"form":"u"}}]}"#,
            "push_prompts.endpoints[0].initiate: set method or methods, not both",
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x/*"},"user":{"path_segment":3}}]}"#,
            "push_prompts.endpoints[0].user.path_segment: 3 is out of range (1 to 2",
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x"},"user":[{"form":"u","header":"h"}]}]}"#,
            "push_prompts.endpoints[0].user[0]: set exactly one of form, json, path_segment, header, query",
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x"},"user":[{"cookie":"u"}]}]}"#,
            "push_prompts.endpoints[0].user[0]: unknown field `cookie`",
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x"},"user":"u"}]}"#,
            "push_prompts.endpoints[0].user: expected an object or a list of objects",
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x"},"user":[]}]}"#,
            "push_prompts.endpoints[0].user: give 1 to 8 entries",
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x"},"user":{"json":"user"}}]}"#,
            r#"push_prompts.endpoints[0].user.json: invalid JSON pointer "user""#,
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x"},"user":{"header":"x y"}}]}"#,
            r#"push_prompts.endpoints[0].user.header: invalid header name "x y""#,
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x","when":{"form":"f"}},"user":{"form":"u"}}]}"#,
            "push_prompts.endpoints[0].initiate.when: set exactly one of equals, one_of",
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x","when":{"form":"f","equals":"p","absent":true}},"user":{"form":"u"}}]}"#,
            "push_prompts.endpoints[0].initiate.when: set exactly one of equals",
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x","user":{"form":"u"}},"user":{"form":"u"}}]}"#,
            "push_prompts.endpoints[0].initiate.user: the initiate's user is the endpoint's user",
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x"},"poll":{"path":"/y","when":{"form":"f","equals":"x"}},"user":{"form":"u"}}]}"#,
            "push_prompts.endpoints[0].poll.when: only the initiate has conditions",
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x"},"user":{"form":"u"},"transaction":{}}]}"#,
            "push_prompts.endpoints[0].transaction: give request",
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x"},"user":{"form":"u"},"outcome":[{"pointer":"/r","equals":"ok","outcome":"approve"}]}]}"#,
            r#"push_prompts.endpoints[0].outcome[0].outcome: unknown outcome "approve""#,
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","initiate":{"path":"/x"},"user":{"form":"u"},"outcome":[{"pointer":"r","equals":"ok","outcome":"approved"}]}]}"#,
            r#"push_prompts.endpoints[0].outcome[0].pointer: invalid JSON pointer "r""#,
        );
        assert_error(
            r#"{"endpoints":[{"name":"a","provider":"duo","typo":1}]}"#,
            "push_prompts.endpoints[0]: unknown field `typo`",
        );
    }

    #[test]
    fn limit_fatigue_and_counting_errors_name_their_paths() {
        let with =
            |rest: &str| format!(r#"{{"endpoints":[{{"name":"duo","provider":"duo"}}],{rest}}}"#);
        assert_error(
            &with(r#""limits":{"per_user":[{"prompts":0,"window_secs":300}]}"#),
            "push_prompts.limits.per_user[0].prompts: 0 is out of range (1 to 100)",
        );
        assert_error(
            &with(r#""limits":{"per_user":[{"prompts":3,"window_secs":0}]}"#),
            "push_prompts.limits.per_user[0].window_secs: 0 is out of range (1 to 86400)",
        );
        let five = r#"{"prompts":1,"window_secs":1}"#;
        assert_error(
            &with(&format!(
                r#""limits":{{"per_client":[{five},{five},{five},{five},{five}]}}"#
            )),
            "push_prompts.limits.per_client: 5 windows; the limit is 4",
        );
        assert_error(
            &with(r#""limits":{"per_user":[],"per_client":[]}"#),
            "push_prompts.limits: give at least one window",
        );
        assert_error(
            &with(r#""limits":{"per_user":[{"prompts":3}]}"#),
            "push_prompts.limits.per_user[0].window_secs: is required",
        );
        assert_error(
            &with(r#""fatigue":{"action":"revoke"}"#),
            "push_prompts.fatigue.action: \"revoke\" needs a revocation section",
        );
        assert_error(
            &with(r#""fatigue":{"action":"block"}"#),
            r#"push_prompts.fatigue.action: unknown value "block" (expected one of: step_up, revoke)"#,
        );
        assert_error(
            &with(r#""fatigue":{"window_secs":10}"#),
            "push_prompts.fatigue.window_secs: 10 is out of range (60 to 86400)",
        );
        assert_error(
            &with(r#""fatigue":{"min_unanswered":0}"#),
            "push_prompts.fatigue.min_unanswered: 0 is out of range (1 to 15)",
        );
        assert_error(
            &with(r#""fatigue":{"mark_ttl_secs":1}"#),
            "push_prompts.fatigue.mark_ttl_secs: 1 is out of range (60 to 604800)",
        );
        assert_error(
            &with(r#""fatigue":{"session_claim":""}"#),
            r#"push_prompts.fatigue.session_claim: invalid claim name """#,
        );
        assert_error(
            &with(r#""counting":{"mode":"service"}"#),
            "push_prompts.counting.cluster: mode \"service\" needs the rate-limit service's cluster",
        );
        assert_error(
            &with(r#""counting":{"mode":"redis"}"#),
            r#"push_prompts.counting.mode: unknown value "redis" (expected one of: local, service)"#,
        );
        assert_error(
            &with(r#""counting":{"mode":"local","cluster":"rl"}"#),
            "push_prompts.counting.cluster: only with mode \"service\"",
        );
        assert_error(
            &with(r#""counting":{"mode":"service","cluster":"rl","timeout_ms":0}"#),
            "push_prompts.counting.timeout_ms: 0 is out of range (1 to 10000)",
        );
        assert_error(
            &with(r#""counting":{"mode":"service","cluster":"rl","on_unavailable":"fail"}"#),
            r#"push_prompts.counting.on_unavailable: unknown value "fail" (expected one of: local, deny, allow)"#,
        );
        assert_error(
            &with(r#""counting":{"mode":"service","cluster":"rl","domain":""}"#),
            r#"push_prompts.counting.domain: invalid domain """#,
        );
        assert_error(
            &with(r#""max_body_bytes":10"#),
            "push_prompts.max_body_bytes: 10 is out of range (256 to 262144)",
        );
        assert_error(
            &with(r#""max_body_bytes":"big""#),
            "push_prompts.max_body_bytes: expected a non-negative integer, found a string",
        );
        assert_error(
            r#"{"endpoint":[]}"#,
            "push_prompts: unknown field `endpoint`",
        );
    }

    #[test]
    fn revoke_is_accepted_with_a_revocation_section() {
        let pp = r#"{"endpoints":[{"name":"duo","provider":"duo"}],"fatigue":{"action":"revoke"}}"#;
        let c = parse(doc(pp, r#","revocation":{}"#).as_bytes()).unwrap();
        assert_eq!(
            c.push_prompts.unwrap().fatigue.action,
            FatigueAction::Revoke
        );
    }
}

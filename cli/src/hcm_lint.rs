//! Warnings for an Envoy bootstrap whose HTTP connection manager runs mfa-gate but hands it
//! (and the upstream) requests the upstream may read differently: paths not normalised,
//! `//` not merged, `%2F` passed through, header names with underscores accepted. mfa-gate
//! refuses what it can by itself; these settings let Envoy fix the rest before any filter.

use serde_json::Value;

const HCM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const WASM_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// One warning per missing setting of each HTTP connection manager that runs a wasm filter,
/// labelled with its listener (empty for a file that is no Envoy bootstrap).
pub fn warnings(document: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(document, "", &mut found);
    found
}

fn walk(value: &Value, listener: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let listener = match (
                map.get("name").and_then(Value::as_str),
                map.get("filter_chains"),
            ) {
                (Some(name), Some(_)) => name,
                _ => listener,
            };
            if map.get("@type").and_then(Value::as_str) == Some(HCM_TYPE) && runs_wasm(value) {
                check(value, listener, found);
            }
            for child in map.values() {
                walk(child, listener, found);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, listener, found);
            }
        }
        _ => {}
    }
}

fn runs_wasm(hcm: &Value) -> bool {
    hcm.get("http_filters")
        .and_then(Value::as_array)
        .is_some_and(|filters| {
            filters.iter().any(|f| {
                f.pointer("/typed_config/@type").and_then(Value::as_str) == Some(WASM_FILTER_TYPE)
            })
        })
}

fn check(hcm: &Value, listener: &str, found: &mut Vec<String>) {
    let on = |key: &str| hcm.get(key).and_then(Value::as_bool) == Some(true);
    let mut warn = |setting: &str, why: &str| {
        found.push(format!("listener {listener:?}: {setting}: {why}"));
    };
    if !on("normalize_path") {
        warn(
            "normalize_path is off",
            "/x/../admin and /%61dmin reach the filter as sent, while most application servers serve /admin (set normalize_path: true)",
        );
    }
    if !on("merge_slashes") {
        warn(
            "merge_slashes is off",
            "//admin reaches the filter as sent, while most application servers serve /admin (set merge_slashes: true)",
        );
    }
    let escaped = hcm
        .get("path_with_escaped_slashes_action")
        .and_then(Value::as_str)
        .unwrap_or("KEEP_UNCHANGED");
    if !matches!(
        escaped,
        "UNESCAPE_AND_REDIRECT" | "REJECT_REQUEST" | "UNESCAPE_AND_FORWARD"
    ) {
        warn(
            &format!("path_with_escaped_slashes_action is {escaped}"),
            "/admin%2Fusers reaches the filter as one segment, while some upstreams decode it to /admin/users (set UNESCAPE_AND_REDIRECT or REJECT_REQUEST)",
        );
    }
    let wasm_filters = (hcm
        .get("http_filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten())
    .filter(|f| f.pointer("/typed_config/@type").and_then(Value::as_str) == Some(WASM_FILTER_TYPE));
    let filters: Vec<&Value> = (hcm.get("http_filters").and_then(Value::as_array))
        .into_iter()
        .flatten()
        .collect();
    for filter in wasm_filters {
        let config = filter.pointer("/typed_config/config");
        if let Some(prefix) = config.and_then(geoip_header_prefix) {
            let at = filters.iter().position(|f| std::ptr::eq(*f, filter));
            let before = &filters[..at.unwrap_or(0)];
            let geoip = before
                .iter()
                .position(|f| f.get("name").and_then(Value::as_str) == Some(GEOIP_FILTER));
            match geoip {
                None => warn(
                    "no geoip filter before mfa-gate",
                    "risk.location reads the geoip filter's headers, but no envoy.filters.http.geoip runs before the wasm filter: every request has no location, or a client's own x-geo-* headers (put the geoip filter, and a header_mutation filter removing those headers, before it)",
                ),
                Some(g) if !before[..g].iter().any(|f| removes_prefix(f, &prefix)) => warn(
                    "geo headers are not stripped before the geoip filter",
                    &format!("the geoip filter leaves a client's own {prefix}* header in place when its lookup finds nothing: a client could claim any country (put an envoy.filters.http.header_mutation filter removing the {prefix} prefix before it, as envoy/envoy.yaml does)"),
                ),
                Some(_) => {}
            }
        }
        let allowed = config
            .and_then(|c| c.get("allow_on_headers_stop_iteration"))
            .and_then(Value::as_bool)
            == Some(true);
        if !allowed && config.is_some_and(serves_revocation_endpoints) {
            warn(
                "allow_on_headers_stop_iteration is off",
                "the revocation push and back-channel logout endpoints never get their body and hang: Envoy stops the whole stream while the filter waits for it (set allow_on_headers_stop_iteration: true beside failure_policy, Envoy >= 1.35)",
            );
        }
    }
    let underscores = hcm
        .pointer("/common_http_protocol_options/headers_with_underscores_action")
        .and_then(Value::as_str)
        .unwrap_or("ALLOW");
    if !matches!(underscores, "REJECT_REQUEST" | "DROP_HEADER") {
        warn(
            &format!("headers_with_underscores_action is {underscores}"),
            "WSGI, Rack, CGI and PHP read x_mfa_gate_level as X-Mfa-Gate-Level (set common_http_protocol_options.headers_with_underscores_action: REJECT_REQUEST)",
        );
    }
}

const GEOIP_FILTER: &str = "envoy.filters.http.geoip";

/// The prefix of the geo headers a plugin configuration reads from Envoy's geoip filter
/// (`risk.location.headers` "geoip", the default): `x-geo-`.
fn geoip_header_prefix(config: &Value) -> Option<String> {
    let text = config.pointer("/configuration/value")?.as_str()?;
    let plugin: Value = serde_json::from_str(text).ok()?;
    let location = plugin.pointer("/risk/location")?;
    match location.get("headers") {
        None => Some("x-geo-".into()),
        Some(Value::String(preset)) if preset == "geoip" => Some("x-geo-".into()),
        _ => None,
    }
}

/// Whether `filter` is a header_mutation filter that removes every request header starting
/// with `prefix` (or a shorter prefix of it).
fn removes_prefix(filter: &Value, prefix: &str) -> bool {
    let mutations = filter.pointer("/typed_config/mutations/request_mutations");
    (mutations.and_then(Value::as_array).into_iter().flatten()).any(|m| {
        m.pointer("/remove_on_match/key_matcher/prefix")
            .and_then(Value::as_str)
            .is_some_and(|p| !p.is_empty() && prefix.starts_with(&p.to_ascii_lowercase()))
    })
}

/// Whether a wasm filter's plugin configuration (a StringValue's JSON) has a push or
/// back-channel logout endpoint.
fn serves_revocation_endpoints(config: &Value) -> bool {
    let Some(text) = config
        .pointer("/configuration/value")
        .and_then(Value::as_str)
    else {
        return false;
    };
    let Ok(plugin) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    let revocation = &plugin["revocation"];
    let push = (revocation["transmitters"].as_array().into_iter().flatten())
        .any(|t| t.get("push").is_some());
    push || revocation.get("backchannel_logout").is_some()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bootstrap(hcm_extra: Value) -> Value {
        let mut hcm = json!({
            "@type": HCM_TYPE,
            "http_filters": [
                {"name": "envoy.filters.http.wasm", "typed_config": {"@type": WASM_FILTER_TYPE}},
                {"name": "envoy.filters.http.router"}
            ]
        });
        for (k, v) in hcm_extra.as_object().unwrap() {
            hcm[k] = v.clone();
        }
        json!({"static_resources": {"listeners": [
            {"name": "gateway", "filter_chains": [{"filters": [
                {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
            ]}]}
        ]}})
    }

    #[test]
    fn every_missing_setting_is_named_with_its_listener() {
        let found = warnings(&bootstrap(json!({})));
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found
            .iter()
            .all(|w| w.starts_with("listener \"gateway\": ")));
        for setting in [
            "normalize_path is off",
            "merge_slashes is off",
            "path_with_escaped_slashes_action is KEEP_UNCHANGED",
            "headers_with_underscores_action is ALLOW",
        ] {
            assert!(
                found.iter().any(|w| w.contains(setting)),
                "{setting}: {found:?}"
            );
        }
    }

    #[test]
    fn safe_settings_give_no_warning() {
        let safe = bootstrap(json!({
            "normalize_path": true,
            "merge_slashes": true,
            "path_with_escaped_slashes_action": "REJECT_REQUEST",
            "common_http_protocol_options": {"headers_with_underscores_action": "DROP_HEADER"}
        }));
        assert_eq!(warnings(&safe), Vec::<String>::new());
        // No wasm filter in the chain: nothing of ours to warn about.
        let mut other = bootstrap(json!({}));
        other["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["http_filters"] = json!([{"name": "envoy.filters.http.router"}]);
        assert_eq!(warnings(&other), Vec::<String>::new());
    }

    #[test]
    fn location_needs_the_geoip_filter_and_the_strip_before_it() {
        let plugin = json!({"risk": {"location": {"headers": "geoip"}}}).to_string();
        let wasm = json!({"name": "envoy.filters.http.wasm", "typed_config": {
            "@type": WASM_FILTER_TYPE,
            "config": {"configuration": {"value": plugin}}}});
        let geoip = json!({"name": "envoy.filters.http.geoip", "typed_config": {}});
        let strip = json!({"name": "envoy.filters.http.header_mutation", "typed_config": {
            "mutations": {"request_mutations": [{"remove_on_match": {"key_matcher": {"prefix": "x-geo-"}}}]}}});
        let doc = |filters: Vec<Value>| bootstrap(json!({"http_filters": filters}));
        let named = |filters: Vec<Value>, what: &str| {
            warnings(&doc(filters)).iter().any(|w| w.contains(what))
        };
        assert!(named(vec![wasm.clone()], "no geoip filter before mfa-gate"));
        assert!(named(
            vec![wasm.clone(), geoip.clone()],
            "no geoip filter before mfa-gate"
        ));
        assert!(named(
            vec![geoip.clone(), wasm.clone()],
            "geo headers are not stripped"
        ));
        assert!(named(
            vec![geoip.clone(), strip.clone(), wasm.clone()],
            "geo headers are not stripped"
        ));
        let safe = vec![strip, geoip, wasm];
        assert!(!named(safe.clone(), "geoip"), "{:?}", warnings(&doc(safe)));
    }

    #[test]
    fn revocation_endpoints_need_headers_only_pauses() {
        let plugin = |revocation: Value| {
            json!({"@type": WASM_FILTER_TYPE, "config": {
                "configuration": {"value": json!({"revocation": revocation}).to_string()}}})
        };
        let with_filter = |filter: Value, allow: Option<bool>| {
            let mut filter = filter;
            if let Some(allow) = allow {
                filter["config"]["allow_on_headers_stop_iteration"] = allow.into();
            }
            let mut doc = bootstrap(json!({"normalize_path": true, "merge_slashes": true,
                "path_with_escaped_slashes_action": "REJECT_REQUEST",
                "common_http_protocol_options": {"headers_with_underscores_action": "REJECT_REQUEST"}}));
            doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
                ["typed_config"]["http_filters"][0]["typed_config"] = filter;
            warnings(&doc)
        };
        let logout = plugin(json!({"backchannel_logout": {"path": "/bcl", "audiences": ["a"]}}));
        let found = with_filter(logout.clone(), None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("allow_on_headers_stop_iteration is off"),
            "{found:?}"
        );
        assert!(with_filter(logout, Some(true)).is_empty());
        let push = plugin(json!({"transmitters": [{"name": "t", "push": {"path": "/p"}}]}));
        assert_eq!(with_filter(push, Some(false)).len(), 1);
        // Poll only: no endpoint, nothing to warn about.
        let poll = plugin(json!({"transmitters": [{"name": "t", "poll": {"path": "/p"}}]}));
        assert!(with_filter(poll, None).is_empty());
    }
}

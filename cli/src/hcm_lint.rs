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
    for filter in wasm_filters {
        let config = filter.pointer("/typed_config/config");
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

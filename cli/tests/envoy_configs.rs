//! Every file in envoy/ is checked here: the plugin configuration embedded in each parses
//! with the filter's own `config::parse`, the JSON Schema accepts all of them and rejects
//! broken ones, and the Envoy / Istio / Envoy Gateway documents have the structure their
//! consumers need (checked field by field: no CRD schemas are vendored).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod common;

use serde_json::{json, Value};

fn yaml_docs(rel: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(common::repo().join(rel)).expect("read envoy file");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).expect("valid YAML"))
        .collect()
}

fn doc<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

/// The http_filters of the first listener's HTTP connection manager.
fn http_filters(bootstrap: &Value) -> Vec<Value> {
    bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"]
        .as_array()
        .cloned()
        .expect("http_filters")
}

fn wasm_filter(bootstrap: &Value) -> Value {
    http_filters(bootstrap)
        .into_iter()
        .find(|f| f["name"] == "envoy.filters.http.wasm")
        .expect("wasm filter")
}

fn string_value_config(bootstrap: &Value) -> Value {
    let config = &wasm_filter(bootstrap)["typed_config"]["config"]["configuration"];
    assert_eq!(
        config["@type"],
        "type.googleapis.com/google.protobuf.StringValue"
    );
    serde_json::from_str(config["value"].as_str().expect("value string"))
        .expect("JSON configuration")
}

/// Every plugin configuration shipped in envoy/, with where it comes from.
fn shipped_configs() -> Vec<(&'static str, Value)> {
    let istio = yaml_docs("envoy/istio/wasmplugin.yaml");
    let gateway = yaml_docs("envoy/envoy-gateway/extension-policy.yaml");
    vec![
        (
            "envoy.yaml",
            string_value_config(&yaml_docs("envoy/envoy.yaml")[0]),
        ),
        (
            "envoy-jwt-authn.yaml",
            string_value_config(&yaml_docs("envoy/envoy-jwt-authn.yaml")[0]),
        ),
        (
            "istio WasmPlugin",
            doc(&istio, "WasmPlugin")["spec"]["pluginConfig"].clone(),
        ),
        (
            "EnvoyExtensionPolicy",
            doc(&gateway, "EnvoyExtensionPolicy")["spec"]["wasm"][0]["config"].clone(),
        ),
    ]
}

fn schema() -> jsonschema::Validator {
    let text =
        std::fs::read_to_string(common::repo().join("envoy/mfa-gate.schema.json")).expect("schema");
    let schema: Value = serde_json::from_str(&text).expect("schema JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema")
}

#[test]
fn every_shipped_config_parses_with_the_filters_own_parser() {
    for (name, config) in shipped_configs() {
        let bytes = serde_json::to_vec(&config).expect("json");
        if let Err(errors) = mfa_gate::config::parse(&bytes) {
            panic!("{name}: {errors}");
        }
    }
}

#[test]
fn schema_accepts_every_shipped_config() {
    let validator = schema();
    for (name, config) in shipped_configs() {
        let errors: Vec<String> = validator
            .iter_errors(&config)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}

#[test]
fn schema_rejects_broken_configs_the_parser_also_rejects() {
    let validator = schema();
    let base =
        || json!({"issuers": [{"issuer": "https://i", "audiences": ["a"], "jwks": {"keys": []}}]});
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut c = base();
    c["routs"] = json!([]);
    cases.push(("unknown top-level field", c));
    let mut c = base();
    c["routes"] =
        json!([{"match": {"path_prefix": "/a"}, "require": {"level": "phishing_resistent"}}]);
    cases.push(("misspelt level", c));
    let mut c = base();
    c["routes"] = json!([{"match": {"path_prefix": "/a", "path": "/b"}}]);
    cases.push(("path and path_prefix", c));
    let mut c = base();
    c["token_sources"] = json!([{"header": "x", "cookie": "y"}]);
    cases.push(("two places in one token source", c));
    let mut c = base();
    c["issuers"][0]["algorithms"] = json!(["none"]);
    cases.push(("alg none", c));
    let mut c = base();
    c["issuers"][0]["audiences"] = json!([]);
    cases.push(("no audience", c));
    cases.push(("no issuers", json!({"routes": []})));
    let mut c = base();
    c["issuers"][0]["remote_jwks"] =
        json!({"cluster": "idp", "path": "/jwks", "refresh_interval_secs": 1});
    cases.push(("jwks and remote_jwks, refresh below minimum", c));
    for (what, config) in cases {
        assert!(!validator.is_valid(&config), "schema accepted: {what}");
        let parsed = mfa_gate::config::parse(&serde_json::to_vec(&config).expect("json"));
        assert!(parsed.is_err(), "the filter accepted: {what}");
    }
}

#[test]
fn standalone_gateway_is_wired_as_make_run_needs() {
    let bootstrap = &yaml_docs("envoy/envoy.yaml")[0];
    let listener = &bootstrap["static_resources"]["listeners"][0];
    assert_eq!(
        listener["address"]["socket_address"],
        json!({"address": "127.0.0.1", "port_value": 10000})
    );
    let filters = http_filters(bootstrap);
    assert_eq!(
        filters.last().expect("filters")["name"],
        "envoy.filters.http.router",
        "router last"
    );
    let wasm = wasm_filter(bootstrap);
    let plugin = &wasm["typed_config"]["config"];
    assert_eq!(plugin["failure_policy"], "FAIL_CLOSED");
    assert_eq!(
        plugin["vm_config"]["code"]["local"]["filename"],
        "target/wasm32-wasip1/release/mfa_gate.wasm"
    );
    let clusters = bootstrap["static_resources"]["clusters"]
        .as_array()
        .expect("clusters");
    let cluster_port = |name: &str| {
        let c = clusters
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("cluster {name}"));
        assert_eq!(c["type"], "STATIC");
        c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            ["socket_address"]["port_value"]
            .clone()
    };
    let config = string_value_config(bootstrap);
    let jwks_cluster = config["issuers"][0]["remote_jwks"]["cluster"]
        .as_str()
        .expect("remote_jwks cluster");
    assert_eq!(
        cluster_port(jwks_cluster),
        10001,
        "the IdP cluster is the demo IdP"
    );
    assert_eq!(cluster_port("demo_app"), 10002);
    assert_eq!(config["issuers"][0]["issuer"], "https://idp.mfa-gate.test");
}

#[test]
fn jwt_authn_variant_feeds_mfa_gate_the_verified_payload() {
    let bootstrap = &yaml_docs("envoy/envoy-jwt-authn.yaml")[0];
    let names: Vec<String> = http_filters(bootstrap)
        .iter()
        .map(|f| f["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        names,
        [
            "envoy.filters.http.jwt_authn",
            "envoy.filters.http.wasm",
            "envoy.filters.http.router"
        ]
    );
    let jwt = &http_filters(bootstrap)[0]["typed_config"];
    let provider = &jwt["providers"]["demo_idp"];
    let config = string_value_config(bootstrap);
    assert_eq!(
        provider["payload_in_metadata"],
        config["jwt_authn"]["payload_in_metadata"]
    );
    assert_eq!(provider["issuer"], config["issuers"][0]["issuer"]);
    assert_eq!(provider["remote_jwks"]["http_uri"]["cluster"], "demo_idp");
    assert!(
        config["issuers"][0].get("remote_jwks").is_none(),
        "jwt_authn holds the keys"
    );
}

/// Where Istio's jwt_authn leaves the verified payload, by the sidecar's minor version.
/// istio/istio pilot/pkg/security/authn/policy_applier.go: 1.22.0 and 1.23.0 set
/// `filters.EnvoyJwtFilterPayload` ("payload", pilot/pkg/xds/filters/filters.go) for proxies
/// of 1.21+ (`SupportsEnvoyExtendedJwt`) and the issuer for older ones; 1.24.0 to 1.31 set
/// "payload" for every proxy.
fn istio_payload_key(proxy_minor: u32, issuer: &str) -> &str {
    if proxy_minor >= 21 {
        "payload"
    } else {
        issuer
    }
}

/// Where Envoy Gateway's jwt_authn leaves the verified payload, by minor version.
/// envoyproxy/gateway internal/xds/translator/jwt.go: `PayloadInMetadata: irProvider.Issuer` in
/// v1.0.0 and v1.1.0, `irProvider.Name` (the SecurityPolicy provider's name, copied verbatim by
/// internal/gatewayapi/securitypolicy.go `buildJWT`) from v1.2.0 (#4167) to v1.9.0.
fn envoy_gateway_payload_key(minor: u32, provider: &Value) -> &Value {
    if minor < 2 {
        &provider["issuer"]
    } else {
        &provider["name"]
    }
}

/// The lowest minor version a manifest's first line claims ("... (v1.2+)" / "(1.22+)").
fn claimed_minimum_minor(rel: &str, platform: &str) -> u32 {
    let text = std::fs::read_to_string(common::repo().join(rel)).expect("read manifest");
    let first = text.lines().next().expect("header line");
    let claim = first
        .split(&format!("{platform} ("))
        .nth(1)
        .and_then(|rest| rest.split("+)").next())
        .unwrap_or_else(|| panic!("{rel}: no \"{platform} (x.y+)\" in {first:?}"));
    claim
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("{rel}: version {claim:?}"))
}

/// Istio's HTTP filter order on a sidecar's inbound listener, as built by
/// pilot/pkg/networking/core/listener_builder.go (1.22.0 to 1.31): CUSTOM authorization
/// (ext_authz), the AUTHN wasm phase, Istio's authentication (jwt_authn from
/// RequestAuthentication), the AUTHZ wasm phase, Istio's authorization (AuthorizationPolicy:
/// RBAC), then the STATS and unspecified wasm phases.
const ISTIO_INBOUND_ORDER: [&str; 8] = [
    "ext_authz",
    "phase:AUTHN",
    "jwt_authn",
    "phase:AUTHZ",
    "rbac",
    "phase:STATS",
    "phase:UNSPECIFIED_PHASE",
    "router",
];

/// Whether a WasmPlugin's `match` selects a listener class, as pilot/pkg/model/extensions.go
/// `matchTrafficSelectors` / `matchMode` / `workloadModeForListenerClass` decide it (1.22.0
/// to 1.31): no match → every listener; a selector's mode (UNDEFINED and CLIENT_AND_SERVER
/// match all) against SERVER for sidecar inbound, CLIENT for sidecar outbound and gateways.
fn istio_plugin_runs_on(matches: &Value, listener_class: &str) -> bool {
    let selectors = matches.as_array().map_or(&[][..], Vec::as_slice);
    if selectors.is_empty() {
        return true;
    }
    let listener_mode = match listener_class {
        "sidecar_inbound" => "SERVER",
        _ => "CLIENT",
    };
    selectors.iter().any(|s| {
        let mode = s["mode"].as_str().unwrap_or("UNDEFINED");
        let ports_match = s["ports"].as_array().is_none_or(|p| p.is_empty());
        ports_match && (mode == "UNDEFINED" || mode == "CLIENT_AND_SERVER" || mode == listener_mode)
    })
}

#[test]
fn both_bootstraps_tag_mfa_gate_counters_alike() {
    let standalone = &yaml_docs("envoy/envoy.yaml")[0]["stats_config"];
    let behind_jwt_authn = &yaml_docs("envoy/envoy-jwt-authn.yaml")[0]["stats_config"];
    assert!(
        standalone["stats_tags"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "stats_tags in envoy/envoy.yaml"
    );
    assert_eq!(
        standalone, behind_jwt_authn,
        "one Prometheus naming for both (README \"Metrics\")"
    );
}

#[test]
fn istio_manifests_have_the_fields_istio_needs() {
    let docs = yaml_docs("envoy/istio/wasmplugin.yaml");
    let plugin = doc(&docs, "WasmPlugin");
    assert_eq!(plugin["apiVersion"], "extensions.istio.io/v1alpha1");
    let spec = &plugin["spec"];
    assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
    assert!(spec["url"].as_str().unwrap_or("").starts_with("oci://"));
    assert!(spec["pluginConfig"].is_object(), "pluginConfig is a Struct");
    assert!(spec["selector"]["matchLabels"].is_object());
    let authn = doc(&docs, "RequestAuthentication");
    assert_eq!(authn["apiVersion"], "security.istio.io/v1");
    assert_eq!(authn["spec"]["selector"], spec["selector"], "same workload");
    let issuer = &authn["spec"]["jwtRules"][0]["issuer"];
    assert_eq!(issuer, &spec["pluginConfig"]["issuers"][0]["issuer"]);
    for d in &docs {
        assert_eq!(d["metadata"]["namespace"], plugin["metadata"]["namespace"]);
    }

    // Inbound only: outbound listeners have no jwt_authn, so the app's own calls would get 401.
    assert!(istio_plugin_runs_on(&spec["match"], "sidecar_inbound"));
    assert!(!istio_plugin_runs_on(&spec["match"], "sidecar_outbound"));
    assert!(
        istio_plugin_runs_on(&Value::Null, "sidecar_outbound"),
        "no match would select outbound too"
    );

    // The phase sits after jwt_authn (claims verified) and before RBAC.
    let phase = spec["phase"].as_str().expect("phase");
    let at = |name: &str| ISTIO_INBOUND_ORDER.iter().position(|f| *f == name);
    let ours = at(&format!("phase:{phase}")).expect("a known phase");
    assert!(
        at("jwt_authn") < Some(ours) && Some(ours) < at("rbac"),
        "{phase}"
    );

    // The jwt_authn payload key, for every Istio version the manifest claims (sidecars of
    // the same version).
    let min = claimed_minimum_minor("envoy/istio/wasmplugin.yaml", "Istio");
    assert!(min >= 21, "older sidecars use the issuer: claim 1.21+");
    for minor in min..=31 {
        assert_eq!(
            spec["pluginConfig"]["jwt_authn"]["payload_in_metadata"],
            istio_payload_key(minor, issuer.as_str().expect("issuer")),
            "Istio 1.{minor}"
        );
    }
}

#[test]
fn envoy_gateway_manifests_have_the_fields_envoy_gateway_needs() {
    let docs = yaml_docs("envoy/envoy-gateway/extension-policy.yaml");
    let policy = doc(&docs, "EnvoyExtensionPolicy");
    assert_eq!(policy["apiVersion"], "gateway.envoyproxy.io/v1alpha1");
    let wasm = &policy["spec"]["wasm"][0];
    assert_eq!(wasm["code"]["type"], "Image");
    assert!(wasm["code"]["image"]["url"].is_string());
    assert_eq!(wasm["failOpen"], false);
    let security = doc(&docs, "SecurityPolicy");
    assert_eq!(
        security["spec"]["targetRefs"], policy["spec"]["targetRefs"],
        "same route"
    );
    let provider = &security["spec"]["jwt"]["providers"][0];
    assert_eq!(&wasm["config"]["issuers"][0]["issuer"], &provider["issuer"]);
    assert_ne!(
        provider["name"], provider["issuer"],
        "name and issuer differ, so the key rule is tested"
    );

    // The payload key, for every Envoy Gateway version the manifest claims.
    let min = claimed_minimum_minor("envoy/envoy-gateway/extension-policy.yaml", "Envoy Gateway");
    assert!(min >= 2, "v1.0 and v1.1 use another key: claim v1.2+");
    for minor in min..=9 {
        assert_eq!(
            &wasm["config"]["jwt_authn"]["payload_in_metadata"],
            envoy_gateway_payload_key(minor, provider),
            "Envoy Gateway v1.{minor}"
        );
    }
}

#[test]
fn docker_compose_runs_envoy_on_the_shipped_config() {
    let compose = &yaml_docs("envoy/docker-compose.yaml")[0];
    let envoy = &compose["services"]["envoy"];
    assert!(envoy["image"]
        .as_str()
        .unwrap_or("")
        .starts_with("envoyproxy/envoy:"));
    assert_eq!(envoy["network_mode"], "host");
    assert_eq!(envoy["working_dir"], "/mfa-gate");
    assert!(envoy["volumes"][0]
        .as_str()
        .unwrap_or("")
        .starts_with("..:/mfa-gate"));
    let command: Vec<&str> = envoy["command"]
        .as_array()
        .expect("command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let config = command
        .iter()
        .position(|a| *a == "-c")
        .map(|i| command[i + 1])
        .expect("-c");
    assert!(common::repo().join(config).exists(), "{config} exists");
}

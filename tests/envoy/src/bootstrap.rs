//! Rewrites a shipped Envoy bootstrap for one test: listener and admin on free ports, the
//! demo clusters pointed at the test's upstreams, the demo's fixed `127.0.0.1:1000x`
//! addresses (plugin configuration, jwt_authn URI) moved, the wasm filename made absolute.

use serde_yaml::Value;
use std::path::Path;

/// Where the rewritten bootstrap sends things.
pub struct Ports {
    pub listener: u16,
    pub admin: u16,
    /// The demo IdP (replaces 127.0.0.1:10001 in strings).
    pub idp: u16,
    /// The demo app (replaces 127.0.0.1:10002 in strings).
    pub app: u16,
    /// Endpoint of the `demo_idp` cluster.
    pub idp_cluster: u16,
    /// Endpoint of the `demo_app` cluster.
    pub app_cluster: u16,
}

const HCM: &str = "envoy.filters.network.http_connection_manager";
const WASM: &str = "envoy.filters.http.wasm";

/// Reads `path` as YAML.
pub fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
}

/// Applies the ports and the wasm file to `bootstrap`.
pub fn rewrite(bootstrap: &mut Value, ports: &Ports, wasm: &Path) {
    let moves = [
        ("127.0.0.1:10000", ports.listener),
        ("127.0.0.1:10001", ports.idp),
        ("127.0.0.1:10002", ports.app),
    ];
    replace_in_strings(bootstrap, &moves);

    let listeners = seq_mut(&mut bootstrap["static_resources"]["listeners"]);
    assert_eq!(
        listeners.len(),
        1,
        "the shipped bootstraps have one listener"
    );
    set_port(&mut listeners[0]["address"], ports.listener);

    bootstrap["admin"] = serde_yaml::from_str(&format!(
        "address: {{socket_address: {{address: 127.0.0.1, port_value: {}}}}}",
        ports.admin
    ))
    .expect("admin block");

    for cluster in seq_mut(&mut bootstrap["static_resources"]["clusters"]) {
        let port = match cluster["name"].as_str() {
            Some("demo_idp") => ports.idp_cluster,
            Some("demo_app") => ports.app_cluster,
            _ => continue,
        };
        for locality in seq_mut(&mut cluster["load_assignment"]["endpoints"]) {
            for endpoint in seq_mut(&mut locality["lb_endpoints"]) {
                set_port(&mut endpoint["endpoint"]["address"], port);
            }
        }
    }

    make_geoip_paths_absolute(bootstrap);

    let wasm = wasm.to_string_lossy().into_owned();
    for filter in wasm_filters(bootstrap) {
        let code = &mut filter["typed_config"]["config"]["vm_config"]["code"]["local"];
        assert!(
            code.get("filename").is_some(),
            "wasm filter without code.local.filename"
        );
        code["filename"] = Value::String(wasm.clone());
    }
}

fn set_port(address: &mut Value, port: u16) {
    let socket = &mut address["socket_address"];
    assert!(
        socket.get("port_value").is_some(),
        "no socket_address.port_value in {address:?}"
    );
    socket["port_value"] = Value::Number(port.into());
}

fn replace_in_strings(value: &mut Value, moves: &[(&str, u16)]) {
    match value {
        Value::String(text) => {
            for (from, port) in moves {
                if text.contains(from) {
                    *text = text.replace(from, &format!("127.0.0.1:{port}"));
                }
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(|v| replace_in_strings(v, moves)),
        Value::Mapping(map) => map
            .iter_mut()
            .for_each(|(_, v)| replace_in_strings(v, moves)),
        Value::Tagged(tagged) => replace_in_strings(&mut tagged.value, moves),
        _ => {}
    }
}

/// An empty list for an absent key, so loops over optional lists just do nothing.
fn seq_mut(value: &mut Value) -> &mut Vec<Value> {
    if value.is_null() {
        *value = Value::Sequence(Vec::new());
    }
    match value {
        Value::Sequence(items) => items,
        other => panic!("expected a list, found {other:?}"),
    }
}

/// The HttpConnectionManager `typed_config` of the (only) listener.
pub fn hcm(bootstrap: &mut Value) -> &mut Value {
    let listener = &mut seq_mut(&mut bootstrap["static_resources"]["listeners"])[0];
    for chain in seq_mut(&mut listener["filter_chains"]) {
        for filter in seq_mut(&mut chain["filters"]) {
            if filter["name"].as_str() == Some(HCM) {
                return &mut filter["typed_config"];
            }
        }
    }
    panic!("no {HCM} in the listener")
}

/// The geoip filter's database paths, relative to the repository root in the shipped
/// bootstraps, made absolute (Envoy runs in a scratch directory); the demo's databases are
/// built first when the bootstrap names them.
fn make_geoip_paths_absolute(bootstrap: &mut Value) {
    let Some(filters) = hcm(bootstrap)["http_filters"].as_sequence_mut() else {
        return;
    };
    for filter in filters {
        if filter["name"].as_str() != Some("envoy.filters.http.geoip") {
            continue;
        }
        let provider = &mut filter["typed_config"]["provider"]["typed_config"];
        for field in ["city_db_path", "asn_db_path", "anon_db_path", "isp_db_path"] {
            let Some(path) = provider[field].as_str().map(str::to_string) else {
                continue;
            };
            if Path::new(&path).is_absolute() {
                continue;
            }
            if path.starts_with(crate::geo::DEMO_GEOIP_DIR) {
                crate::geo::demo_databases();
            }
            let absolute = crate::repo_root().join(&path);
            provider[field] = Value::String(absolute.to_string_lossy().into_owned());
        }
    }
}

/// Every `envoy.filters.http.wasm` entry of the HCM's `http_filters`.
pub fn wasm_filters(bootstrap: &mut Value) -> impl Iterator<Item = &mut Value> {
    seq_mut(&mut hcm(bootstrap)["http_filters"])
        .iter_mut()
        .filter(|f| f["name"].as_str() == Some(WASM))
}

/// The mfa-gate filter's configuration (the StringValue's JSON), edited in place.
pub fn edit_plugin_config(bootstrap: &mut Value, edit: &mut dyn FnMut(&mut serde_json::Value)) {
    let mut found = false;
    for filter in wasm_filters(bootstrap) {
        let value = &mut filter["typed_config"]["config"]["configuration"]["value"];
        let text = value.as_str().expect("configuration.value is a string");
        let mut json: serde_json::Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("plugin configuration is not JSON: {e}"));
        edit(&mut json);
        *value = Value::String(serde_json::to_string_pretty(&json).expect("JSON"));
        found = true;
    }
    assert!(
        found,
        "no wasm filter with a configuration in the bootstrap"
    );
}

/// Sets `vm_config.environment_variables.host_env_keys` of every wasm filter: the Envoy
/// process variables its VMs may read.
pub fn set_host_env_keys(bootstrap: &mut Value, names: &[String]) {
    let keys = Value::Sequence(names.iter().cloned().map(Value::String).collect());
    let mut found = false;
    for filter in wasm_filters(bootstrap) {
        let vm = &mut filter["typed_config"]["config"]["vm_config"];
        assert!(vm.is_mapping(), "wasm filter without vm_config");
        vm["environment_variables"]["host_env_keys"] = keys.clone();
        found = true;
    }
    assert!(found, "no wasm filter in the bootstrap");
}

/// Makes the (only) listener's filter chains terminate TLS with `transport_socket`.
pub fn set_listener_transport_socket(bootstrap: &mut Value, transport_socket: &Value) {
    let listener = &mut seq_mut(&mut bootstrap["static_resources"]["listeners"])[0];
    let chains = seq_mut(&mut listener["filter_chains"]);
    assert!(!chains.is_empty(), "the listener has no filter chain");
    for chain in chains {
        chain["transport_socket"] = transport_socket.clone();
    }
}

/// Removes the bootstrap's own geolocation filters (the geoip filter and the header_mutation
/// filter that strips client geo headers before it), so a test can put its own in.
pub fn remove_geo_filters(bootstrap: &mut Value) {
    let http_filters = seq_mut(&mut hcm(bootstrap)["http_filters"]);
    http_filters.retain(|f| {
        !matches!(
            f["name"].as_str(),
            Some("envoy.filters.http.geoip" | "envoy.filters.http.header_mutation")
        )
    });
}

/// Inserts `filters` into the HCM's `http_filters` just before the first wasm filter, in
/// order (before the router when there is no wasm filter).
pub fn insert_http_filters_before_wasm(bootstrap: &mut Value, filters: Vec<Value>) {
    let http_filters = seq_mut(&mut hcm(bootstrap)["http_filters"]);
    let position = http_filters
        .iter()
        .position(|f| f["name"].as_str() == Some(WASM))
        .or_else(|| {
            http_filters
                .iter()
                .position(|f| f["name"].as_str() == Some("envoy.filters.http.router"))
        })
        .expect("no wasm filter and no router in http_filters");
    for (offset, filter) in filters.into_iter().enumerate() {
        http_filters.insert(position + offset, filter);
    }
}

/// Adds a file access log to the HCM: one JSON object per request, `fields` (name →
/// Envoy command operator, e.g. `%DOWNSTREAM_PEER_SUBJECT%`), written to `path`.
pub fn add_json_access_log(bootstrap: &mut Value, path: &Path, fields: &[(String, String)]) {
    let mut format = serde_yaml::Mapping::new();
    for (name, operator) in fields {
        format.insert(Value::String(name.clone()), Value::String(operator.clone()));
    }
    let mut log: Value = serde_yaml::from_str(&format!(
        r#"
name: envoy.access_loggers.file
typed_config:
  "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
  path: "{}"
"#,
        path.display()
    ))
    .expect("access log YAML");
    log["typed_config"]["log_format"]["json_format"] = Value::Mapping(format);
    seq_mut(&mut hcm(bootstrap)["access_log"]).push(log);
}

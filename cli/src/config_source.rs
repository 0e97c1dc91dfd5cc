//! Finding mfa-gate's plugin configuration in a file: a plain JSON configuration, or the
//! configuration embedded in an Envoy bootstrap (the `envoy.filters.http.wasm` filter's
//! `StringValue`), an Istio `WasmPlugin` (`pluginConfig`) or an Envoy Gateway
//! `EnvoyExtensionPolicy` (`wasm[].config`). YAML files may hold several documents.

use crate::error::{read_file, CliError, CliResult};
use serde_json::Value;

/// `@type` of Envoy's HTTP wasm filter config.
const WASM_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
/// Wrappers the Envoy SDK examples use around the wasm filter config.
const TYPED_STRUCT_TYPES: [&str; 2] = [
    "type.googleapis.com/udpa.type.v1.TypedStruct",
    "type.googleapis.com/xds.type.v3.TypedStruct",
];
/// `@type` Envoy passes to the plugin unchanged.
const STRING_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.StringValue";

/// One plugin configuration found in a file.
#[derive(Debug)]
pub struct FoundConfig {
    /// Where it was found, e.g. `wasm filter "mfa-gate"` or `WasmPlugin istio-system/mfa-gate`.
    pub location: String,
    /// The JSON bytes the filter's `on_configure` would receive.
    pub json: Result<Vec<u8>, String>,
}

/// Reads `path` and returns every plugin configuration in it.
pub fn load(path: &str) -> CliResult<Vec<FoundConfig>> {
    let bytes = read_file(path)?;
    let text = String::from_utf8_lossy(&bytes);
    if text.trim_start().starts_with('{') {
        // A plain configuration file: hand the bytes over untouched so that JSON syntax
        // errors are reported exactly as on_configure reports them.
        return Ok(vec![FoundConfig {
            location: "configuration".into(),
            json: Ok(bytes),
        }]);
    }
    let mut found = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = <Value as serde::Deserialize>::deserialize(document)
            .map_err(|e| CliError::new(format!("{path}: not valid YAML or JSON: {e}")))?;
        collect(&value, &mut found);
    }
    if found.is_empty() {
        return Err(CliError::new(format!(
            "{path}: no mfa-gate configuration found (expected a JSON configuration, an Envoy config with an \
             envoy.filters.http.wasm filter, an Istio WasmPlugin or an Envoy Gateway EnvoyExtensionPolicy)"
        )));
    }
    Ok(found)
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_str()
}

/// Walks a YAML/JSON tree and records every plugin configuration.
fn collect(value: &Value, found: &mut Vec<FoundConfig>) {
    match value {
        Value::Object(map) => {
            let type_url = map.get("@type").and_then(Value::as_str).unwrap_or("");
            if type_url == WASM_FILTER_TYPE {
                if let Some(config) = map.get("config") {
                    found.push(from_envoy_plugin_config(config));
                }
            }
            if TYPED_STRUCT_TYPES.contains(&type_url)
                && map.get("type_url").and_then(Value::as_str) == Some(WASM_FILTER_TYPE)
            {
                if let Some(config) = map.get("value").and_then(|v| v.get("config")) {
                    found.push(from_envoy_plugin_config(config));
                }
            }
            match map.get("kind").and_then(Value::as_str) {
                Some("WasmPlugin") => found.push(from_wasm_plugin(value)),
                Some("EnvoyExtensionPolicy") => from_extension_policy(value, found),
                _ => {}
            }
            for child in map.values() {
                collect(child, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, found)),
        _ => {}
    }
}

fn from_envoy_plugin_config(config: &Value) -> FoundConfig {
    let name = str_at(config, &["name"]).unwrap_or("(unnamed)");
    let location = format!("wasm filter \"{name}\"");
    let configuration = match config.get("configuration") {
        Some(c) => c,
        None => {
            return FoundConfig {
                location,
                json: Err(
                    "config.configuration is missing (mfa-gate needs its configuration)".into(),
                ),
            }
        }
    };
    let json = match str_at(configuration, &["@type"]) {
        Some(STRING_VALUE_TYPE) => match str_at(configuration, &["value"]) {
            Some(text) => Ok(text.as_bytes().to_vec()),
            None => Err(
                "config.configuration.value must be a string holding the JSON configuration".into(),
            ),
        },
        Some(other) => Err(format!(
            "config.configuration: @type \"{other}\" is not passed to the plugin as JSON; use \
             \"{STRING_VALUE_TYPE}\" with the JSON in value"
        )),
        None => Err("config.configuration has no @type".into()),
    };
    FoundConfig { location, json }
}

fn from_wasm_plugin(plugin: &Value) -> FoundConfig {
    let namespace = str_at(plugin, &["metadata", "namespace"]).unwrap_or("default");
    let name = str_at(plugin, &["metadata", "name"]).unwrap_or("(unnamed)");
    let location = format!("WasmPlugin {namespace}/{name}");
    let json = match plugin.get("spec").and_then(|s| s.get("pluginConfig")) {
        // Istio turns the Struct into JSON text in a StringValue: the same bytes.
        Some(config) => serde_json::to_vec(config).map_err(|e| e.to_string()),
        None => Err("spec.pluginConfig is missing".into()),
    };
    FoundConfig { location, json }
}

fn from_extension_policy(policy: &Value, found: &mut Vec<FoundConfig>) {
    let name = str_at(policy, &["metadata", "name"]).unwrap_or("(unnamed)");
    let wasms = policy
        .get("spec")
        .and_then(|s| s.get("wasm"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if wasms.is_empty() {
        found.push(FoundConfig {
            location: format!("EnvoyExtensionPolicy {name}"),
            json: Err("spec.wasm is missing or empty".into()),
        });
    }
    for (i, wasm) in wasms.iter().enumerate() {
        let wasm_name = str_at(wasm, &["name"]).unwrap_or("(unnamed)");
        found.push(FoundConfig {
            location: format!("EnvoyExtensionPolicy {name} wasm[{i}] \"{wasm_name}\""),
            json: match wasm.get("config") {
                Some(config) => serde_json::to_vec(config).map_err(|e| e.to_string()),
                None => Err(format!("spec.wasm[{i}].config is missing")),
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found_in(yaml: &str) -> Vec<FoundConfig> {
        let mut found = Vec::new();
        for document in serde_yaml::Deserializer::from_str(yaml) {
            let value = <Value as serde::Deserialize>::deserialize(document).unwrap_or(Value::Null);
            collect(&value, &mut found);
        }
        found
    }

    #[test]
    fn string_value_and_typed_struct_wrappers_are_found() {
        let yaml = r#"
filters:
- typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config: {name: a, configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: '{"x":1}'}}
- typed_config:
    "@type": type.googleapis.com/udpa.type.v1.TypedStruct
    type_url: type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    value:
      config: {name: b, configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: '{"y":2}'}}
"#;
        let found = found_in(yaml);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].location, "wasm filter \"a\"");
        assert_eq!(found[0].json.as_deref().ok(), Some(&br#"{"x":1}"#[..]));
        assert_eq!(found[1].location, "wasm filter \"b\"");
    }

    #[test]
    fn a_struct_configuration_is_named_as_the_mistake_it_is() {
        let yaml = r#"
"@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
config: {name: a, configuration: {"@type": type.googleapis.com/google.protobuf.Struct, value: {x: 1}}}
"#;
        let found = found_in(yaml);
        let message = found[0].json.as_ref().err().cloned().unwrap_or_default();
        assert!(message.contains("protobuf.Struct"), "{message}");
        assert!(message.contains("StringValue"), "{message}");
    }

    #[test]
    fn kubernetes_documents_in_one_file() {
        let yaml = "kind: WasmPlugin\nmetadata: {name: p, namespace: n}\nspec: {pluginConfig: {mode: enforce}}\n---\n\
                    kind: EnvoyExtensionPolicy\nmetadata: {name: e}\nspec: {wasm: [{name: w, config: {realm: r}}, {name: v}]}\n";
        let found = found_in(yaml);
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].location, "WasmPlugin n/p");
        assert_eq!(
            found[0].json.as_deref().ok(),
            Some(&br#"{"mode":"enforce"}"#[..])
        );
        assert_eq!(
            found[1].json.as_deref().ok(),
            Some(&br#"{"realm":"r"}"#[..])
        );
        assert!(
            found[2].json.is_err(),
            "a wasm entry without config is reported"
        );
    }
}

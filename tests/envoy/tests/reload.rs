//! A plugin configuration reload keeps the revocation set: the listener comes from a file
//! (LDS, `path_config_source`); rewriting it with another plugin configuration (same
//! `vm_id`) makes Envoy configure the filter again, and a session revoked before the reload
//! is still refused after it, on the new configuration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{Gateway, GatewayBuilder};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Writes `listeners` as an LDS file at `path`, atomically (Envoy watches for a rename).
fn write_lds(path: &std::path::Path, listeners: &serde_yaml::Value) {
    let resources: Vec<serde_yaml::Value> = listeners
        .as_sequence()
        .unwrap()
        .iter()
        .map(|l| {
            let mut l = l.clone();
            l["@type"] = "type.googleapis.com/envoy.config.listener.v3.Listener".into();
            l
        })
        .collect();
    let mut doc = serde_yaml::Mapping::new();
    doc.insert("resources".into(), serde_yaml::Value::Sequence(resources));
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_yaml::to_string(&doc).unwrap()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The plugin configuration (JSON) inside the listener's wasm filter.
fn plugin_config(listeners: &mut serde_yaml::Value) -> &mut serde_yaml::Value {
    let filters = listeners[0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
        .as_sequence_mut()
        .expect("http_filters");
    let wasm = filters
        .iter_mut()
        .find(|f| f["name"].as_str() == Some("envoy.filters.http.wasm"))
        .expect("the mfa-gate wasm filter");
    &mut wasm["typed_config"]["config"]["configuration"]["value"]
}

fn configured_lines(gateway: &Gateway) -> usize {
    gateway
        .envoy_log()
        .lines()
        .filter(|l| l.contains("wasm log") && l.contains("configured: "))
        .count()
}

#[test]
fn a_plugin_reload_with_the_same_vm_id_keeps_the_revocation_set() {
    let dir: PathBuf = std::env::temp_dir().join(format!("mfa-gate-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lds = dir.join("listeners.yaml");
    let listeners: Arc<Mutex<Option<serde_yaml::Value>>> = Arc::default();
    let keep = Arc::clone(&listeners);
    let lds_path = lds.clone();
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .bootstrap(move |yaml| {
            // The listener moves to a file Envoy watches.
            let moved = yaml["static_resources"]
                .as_mapping_mut()
                .unwrap()
                .remove("listeners")
                .unwrap();
            write_lds(&lds_path, &moved);
            *keep.lock().unwrap() = Some(moved);
            // File-based LDS needs a node identity.
            yaml["node"] = serde_yaml::from_str("{id: reload-test, cluster: mfa-gate}").unwrap();
            yaml["dynamic_resources"] = serde_yaml::from_str(&format!(
                "lds_config: {{path_config_source: {{path: {}}}, resource_api_version: V3}}",
                lds_path.display()
            ))
            .unwrap();
        })
        .start();
    let mut listeners = listeners.lock().unwrap().take().unwrap();

    // Revoke a session (the shipped /admin/keys rule), seen refused elsewhere.
    let token = gateway.token("push");
    let revoking = gateway.get("/admin/keys/x", &[("authorization", &bearer(&token))]);
    assert_eq!(revoking.status, 401, "{}", revoking.text());
    let before = gateway.get("/api/profile", &[("authorization", &bearer(&token))]);
    assert_eq!(before.status, 401, "{}", before.text());

    // Another plugin configuration (another realm), same vm_id and code.
    let configured = configured_lines(&gateway);
    let value = plugin_config(&mut listeners);
    let text = value.as_str().unwrap().replace(
        "\"realm\": \"mfa-gate-demo\"",
        "\"realm\": \"mfa-gate-reloaded\"",
    );
    assert!(text.contains("mfa-gate-reloaded"));
    *value = text.into();
    write_lds(&lds, &listeners);
    let deadline = Instant::now() + Duration::from_secs(20);
    while configured_lines(&gateway) <= configured {
        assert!(
            Instant::now() < deadline,
            "no reload\n{}",
            gateway.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The new configuration answers (its realm), and the revocation is still there.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let after = gateway.get("/api/profile", &[("authorization", &bearer(&token))]);
        assert_eq!(after.status, 401, "{}", after.text());
        let www = after
            .header("www-authenticate")
            .unwrap_or_default()
            .to_string();
        if www.contains("mfa-gate-reloaded") {
            assert!(www.contains("session revoked"), "{www}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new configuration never answered: {www}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A fresh session of the same user is let in by the new configuration.
    let fresh = gateway.get(
        "/api/profile",
        &[("authorization", &bearer(&gateway.token("push")))],
    );
    assert_eq!(fresh.status, 200, "{}", fresh.text());
    gateway.assert_no_wasm_failure();
    let _ = std::fs::remove_dir_all(&dir);
}

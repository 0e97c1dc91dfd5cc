//! A plugin configuration reload keeps the revocation set: the listener comes from a file
//! (LDS, `path_config_source`); rewriting it with another plugin configuration (same
//! `vm_id`) makes Envoy configure the filter again, and a session revoked before the reload
//! is still refused after it, on the new configuration. With 4 workers, a token is verified
//! once in all (the others take the verified session from shared data), and not again after
//! a reload that kept the keys.
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

/// The shipped gateway with its listener moved to a file Envoy watches (LDS), so a test can
/// change the plugin configuration while Envoy runs.
struct Reloadable {
    gateway: Gateway,
    listeners: serde_yaml::Value,
    lds: PathBuf,
    dir: PathBuf,
}

impl Reloadable {
    fn start(name: &str, concurrency: u32) -> Reloadable {
        let dir = std::env::temp_dir().join(format!("mfa-gate-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lds = dir.join("listeners.yaml");
        let listeners: Arc<Mutex<Option<serde_yaml::Value>>> = Arc::default();
        let keep = Arc::clone(&listeners);
        let lds_path = lds.clone();
        let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
            .concurrency(concurrency)
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
                yaml["node"] =
                    serde_yaml::from_str("{id: reload-test, cluster: mfa-gate}").unwrap();
                yaml["dynamic_resources"] = serde_yaml::from_str(&format!(
                    "lds_config: {{path_config_source: {{path: {}}}, resource_api_version: V3}}",
                    lds_path.display()
                ))
                .unwrap();
            })
            .start();
        let listeners = listeners.lock().unwrap().take().unwrap();
        Reloadable {
            gateway,
            listeners,
            lds,
            dir,
        }
    }

    /// Rewrites the plugin configuration with another realm (same `vm_id` and code) and
    /// waits until the filter has been configured again and answers with the new realm.
    fn reload_with_realm(&mut self, realm: &str) {
        let configured = configured_lines(&self.gateway);
        let value = plugin_config(&mut self.listeners);
        let text = value.as_str().unwrap().replace(
            "\"realm\": \"mfa-gate-demo\"",
            &format!("\"realm\": \"{realm}\""),
        );
        assert!(text.contains(realm));
        *value = text.into();
        write_lds(&self.lds, &self.listeners);
        let deadline = Instant::now() + Duration::from_secs(20);
        while configured_lines(&self.gateway) <= configured {
            assert!(
                Instant::now() < deadline,
                "no reload\n{}",
                self.gateway.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Reloadable {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_plugin_reload_with_the_same_vm_id_keeps_the_revocation_set() {
    let mut reloadable = Reloadable::start("reload", 1);
    let gateway = &reloadable.gateway;

    // Revoke a session (the shipped /admin/keys rule), seen refused elsewhere.
    let token = gateway.token("push");
    let revoking = gateway.get("/admin/keys/x", &[("authorization", &bearer(&token))]);
    assert_eq!(revoking.status, 401, "{}", revoking.text());
    let before = gateway.get("/api/profile", &[("authorization", &bearer(&token))]);
    assert_eq!(before.status, 401, "{}", before.text());

    // Another plugin configuration (another realm), same vm_id and code.
    reloadable.reload_with_realm("mfa-gate-reloaded");
    let gateway = &reloadable.gateway;
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
}

/// How many decision records say the session was verified here (`miss`), taken from
/// another worker VM (`shared`) or found in the VM's own cache (`hit`), after the first
/// `skip` records.
fn cache_uses(gateway: &Gateway, skip: usize) -> (usize, usize, usize) {
    let records = gateway.decision_records();
    let count = |what: &str| {
        (records.iter().skip(skip))
            .filter(|r| r["cache"].as_str() == Some(what))
            .count()
    };
    (count("miss"), count("shared"), count("hit"))
}

#[test]
fn with_four_workers_a_token_is_verified_once_and_stays_verified_across_a_reload() {
    let mut reloadable = Reloadable::start("shared-sessions", 4);
    let tokens: Vec<String> = (0..12)
        .map(|_| reloadable.gateway.token("passkey"))
        .collect();
    let distinct: std::collections::BTreeSet<&String> = tokens.iter().collect();
    assert_eq!(
        distinct.len(),
        tokens.len(),
        "the demo IdP mints distinct tokens"
    );
    // Each request is a new connection: the kernel spreads them over the 4 workers.
    let send_all = |gateway: &Gateway, times: usize| {
        for _ in 0..times {
            for token in &tokens {
                let answer = gateway.get("/admin/users", &[("authorization", &bearer(token))]);
                assert_eq!(answer.status, 200, "{}", answer.text());
            }
        }
    };
    send_all(&reloadable.gateway, 6);
    let (miss, shared, hit) = cache_uses(&reloadable.gateway, 0);
    assert_eq!(
        miss,
        tokens.len(),
        "one verification per distinct token, not per worker"
    );
    assert_eq!(miss + shared + hit, tokens.len() * 6);
    assert!(shared > 0, "some worker took a session another verified");
    let metric = |name: &str| {
        reloadable
            .gateway
            .counter(&format!("wasmcustom.mfa_gate.token_cache.{name}"))
    };
    assert_eq!(metric("miss"), tokens.len() as u64);
    assert_eq!(metric("shared_hit"), shared as u64);

    // A plugin configuration update empties every VM's own cache; the keys are the same,
    // so the shared sessions still count and no token is verified again.
    let before = reloadable.gateway.decision_records().len();
    reloadable.reload_with_realm("mfa-gate-reloaded");
    send_all(&reloadable.gateway, 2);
    let (miss, shared, hit) = cache_uses(&reloadable.gateway, before);
    assert_eq!(miss, 0, "verified again after the reload");
    assert!(shared > 0, "{shared} shared, {hit} hit");
    assert_eq!(miss + shared + hit, tokens.len() * 2);
    // A new token is still verified (once).
    let fresh = reloadable.gateway.token("passkey");
    let answer = reloadable
        .gateway
        .get("/admin/users", &[("authorization", &bearer(&fresh))]);
    assert_eq!(answer.status, 200);
    let (miss, _, _) = cache_uses(&reloadable.gateway, before);
    assert_eq!(miss, 1);
    reloadable.gateway.assert_no_wasm_failure();
}

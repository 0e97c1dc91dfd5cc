//! The risk score as `envoy/envoy.yaml` ships it (`make run`'s walk-through): Envoy's geoip
//! filter on the demo databases (`envoy/demo-geoip.json`), the client address taken from
//! the load balancer's `X-Forwarded-For` entry. One push user from the usual place, from a
//! new country (step-up), then impossible travel (revoked, here and at the IdP); a passkey
//! user from a new country (allowed); a DPoP-bound token without its proof (refused); and
//! a client's own `x-geo-*` headers, which never count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{http_get, Answer, Gateway, GatewayBuilder};
use serde_json::Value;

const VIENNA: &str = "198.51.100.7";
const BRATISLAVA: &str = "198.51.100.200";
const TOKYO: &str = "203.0.113.7";

fn profile_from(gateway: &Gateway, token: &str, address: &str) -> Answer {
    gateway.get(
        "/api/profile",
        &[
            ("authorization", &format!("Bearer {token}")),
            ("x-forwarded-for", address),
        ],
    )
}

fn last_risk(gateway: &Gateway) -> Value {
    let records = gateway.decision_records();
    let last = records.last().expect("a decision record");
    last["risk"].clone()
}

fn signal(risk: &Value, name: &str) -> Option<Value> {
    risk["signals"]
        .as_array()?
        .iter()
        .find(|s| s["signal"] == name)
        .cloned()
}

#[test]
fn the_walk_through_make_run_prints() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml").start();
    let pat = gateway.token("push");

    let usual = profile_from(&gateway, &pat, VIENNA);
    assert_eq!(usual.status, 200, "{}", usual.text());
    let risk = last_risk(&gateway);
    assert_eq!(risk["score"], 30, "{risk}");
    assert!(signal(&risk, "first_sighting").is_some(), "{risk}");

    let again = profile_from(&gateway, &pat, VIENNA);
    assert_eq!(again.status, 200);

    let new_country = profile_from(&gateway, &pat, BRATISLAVA);
    assert_eq!(new_country.status, 401, "{}", new_country.text());
    let www = new_country.header("www-authenticate").unwrap_or_default();
    assert!(
        www.contains("insufficient_user_authentication") && www.contains("acr_values=\"phr\""),
        "{www}"
    );
    let risk = last_risk(&gateway);
    assert_eq!(risk["score"], 55, "{risk}");
    assert_eq!(risk["threshold"], "step_up");
    assert_eq!(signal(&risk, "new_country").unwrap()["value"], "SK");

    let tokyo = profile_from(&gateway, &pat, TOKYO);
    assert_eq!(tokyo.status, 401, "{}", tokyo.text());
    let www = tokyo.header("www-authenticate").unwrap_or_default();
    assert!(www.contains("session revoked"), "{www}");
    let risk = last_risk(&gateway);
    let travel = signal(&risk, "impossible_travel").expect("impossible travel");
    assert!(
        travel["value"].as_str().unwrap().starts_with("AT->JP:"),
        "{travel}"
    );
    assert_eq!(risk["threshold"], "revoke");
    // Revoked: from the usual place too, and on every worker.
    let after = profile_from(&gateway, &pat, VIENNA);
    assert_eq!(after.status, 401, "{}", after.text());
    assert!(gateway.counter("wasmcustom.mfa_gate.decision.revoke") >= 1);
    assert!(gateway.counter("wasmcustom.mfa_gate.risk.signal.impossible_travel") >= 1);

    let kim = gateway.token("passkey");
    assert_eq!(profile_from(&gateway, &kim, VIENNA).status, 200);
    let passkey_abroad = profile_from(&gateway, &kim, BRATISLAVA);
    assert_eq!(passkey_abroad.status, 200, "{}", passkey_abroad.text());
    assert_eq!(last_risk(&gateway)["score"], 25);

    let bound = http_get(
        gateway.idp_port,
        "/token/push?dpop_jkt=0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
    );
    assert_eq!(bound.status, 200, "{}", bound.text());
    let refused = gateway.get(
        "/api/profile",
        &[("authorization", &format!("Bearer {}", bound.text().trim()))],
    );
    assert_eq!(refused.status, 401, "{}", refused.text());
    let www = refused.header("www-authenticate").unwrap_or_default();
    assert!(
        www.starts_with("DPoP ") && www.contains("error=\"invalid_token\""),
        "{www}"
    );
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_clients_own_geo_headers_never_count() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml").start();
    let pat = gateway.token("push");
    assert_eq!(profile_from(&gateway, &pat, VIENNA).status, 200);
    // From Vienna again, claiming to be in Tokyo: the strip filter removes the claim and the
    // lookup says AT.
    let claimed = gateway.get(
        "/api/profile",
        &[
            ("authorization", &format!("Bearer {pat}")),
            ("x-forwarded-for", VIENNA),
            ("x-geo-country", "JP"),
            ("x-geo-city", "Tokyo"),
        ],
    );
    assert_eq!(claimed.status, 200, "{}", claimed.text());
    assert_eq!(last_risk(&gateway)["score"], 30);
    // An address the databases do not know, with a forged country: no location at all.
    let unknown = gateway.get(
        "/api/profile",
        &[
            ("authorization", &format!("Bearer {pat}")),
            ("x-forwarded-for", "192.0.2.1"),
            ("x-geo-country", "JP"),
        ],
    );
    assert_eq!(unknown.status, 200, "{}", unknown.text());
    let risk = last_risk(&gateway);
    assert!(signal(&risk, "new_country").is_none(), "{risk}");
    assert!(signal(&risk, "impossible_travel").is_none(), "{risk}");
    // A client-written X-Forwarded-For entry left of the load balancer's is never used.
    let spoofed = gateway.get(
        "/api/profile",
        &[
            ("authorization", &format!("Bearer {pat}")),
            ("x-forwarded-for", &format!("{TOKYO}, {VIENNA}")),
        ],
    );
    assert_eq!(spoofed.status, 200, "{}", spoofed.text());
    gateway.assert_no_wasm_failure();
}

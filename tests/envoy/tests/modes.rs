//! `report_only` in real Envoy, globally and per rule: decisions are counted and logged,
//! requests pass untouched to the upstream. And decision records following Envoy's `wasm`
//! log level, changed at run time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{http_request, Gateway, GatewayBuilder};

#[test]
fn report_only_counts_and_logs_but_lets_everything_through() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .plugin_config(|c| c["mode"] = "report_only".into())
        .echo_upstream()
        .start();
    let push = format!("Bearer {}", gateway.token("push"));
    for (method, path, headers, would) in [
        (
            "GET",
            "/admin/users",
            vec![("authorization", push.as_str())],
            "step_up",
        ),
        (
            "POST",
            "/payments/transfer",
            vec![("authorization", push.as_str())],
            "deny",
        ),
        ("GET", "/api/profile", vec![], "deny"),
        (
            "GET",
            "/api/profile",
            vec![("authorization", push.as_str())],
            "allow",
        ),
    ] {
        let answer = gateway.request(method, path, &headers, &[]);
        assert_eq!(
            answer.status,
            200,
            "{method} {path} (would {would}): {}",
            answer.text()
        );
        let echoed = answer.json();
        assert_eq!(echoed["path"], path, "reached the upstream as sent");
        assert_eq!(echoed["method"], method);
    }
    let metric = |name: &str| gateway.counter(&format!("wasmcustom.mfa_gate.{name}"));
    assert_eq!(metric("report_only.step_up"), 1);
    assert_eq!(metric("report_only.deny"), 2);
    assert_eq!(metric("report_only.allow"), 1);
    for enforced in ["decision.allow", "decision.step_up", "decision.deny"] {
        assert_eq!(metric(enforced), 0, "{enforced}");
    }
    let log = gateway.envoy_log();
    let records: Vec<&str> = log.lines().filter(|l| l.contains("] decision {")).collect();
    assert_eq!(records.len(), 4, "one decision record per request");
    assert!(
        records
            .iter()
            .all(|r| r.contains("\"mode\":\"report_only\"")),
        "{records:?}"
    );
    assert!(records
        .iter()
        .any(|r| r.contains("\"decision\":\"step_up\"")));
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_report_only_rule_passes_while_the_others_enforce() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .plugin_config(|c| {
            let admin = c["routes"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|r| r["name"] == "admin")
                .unwrap();
            admin["mode"] = "report_only".into();
        })
        .start();
    let push = format!("Bearer {}", gateway.token("push"));
    let admin = gateway.get("/admin/users", &[("authorization", &push)]);
    assert_eq!(admin.status, 200, "{}", admin.text());
    let payments = gateway.request(
        "POST",
        "/payments/transfer",
        &[("authorization", &push)],
        &[],
    );
    assert_eq!(payments.status, 403, "{}", payments.text());
    assert_eq!(
        gateway.counter("wasmcustom.mfa_gate.report_only.step_up"),
        1
    );
    assert_eq!(gateway.counter("wasmcustom.mfa_gate.decision.deny"), 1);
    gateway.assert_no_wasm_failure();
}

#[test]
fn decision_records_follow_envoys_wasm_log_level_and_counters_are_kept() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml").start();
    let push = format!("Bearer {}", gateway.token("push"));
    let step_up = |g: &Gateway| {
        let answer = g.get("/admin/users", &[("authorization", push.as_str())]);
        assert_eq!(answer.status, 401, "{}", answer.text());
        assert!((answer.header("www-authenticate").unwrap())
            .contains("insufficient_user_authentication"));
    };
    let set_wasm_level = |level: &str| {
        let path = format!("/logging?wasm={level}");
        let answer = http_request(gateway.admin_port, "POST", &path, &[], &[]);
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    };
    let steps_up = |g: &Gateway| g.counter("wasmcustom.mfa_gate.decision.step_up");
    step_up(&gateway);
    assert_eq!(gateway.decision_records().len(), 1, "a record at info");

    set_wasm_level("warning");
    for _ in 0..3 {
        step_up(&gateway);
    }
    assert_eq!(
        gateway.decision_records().len(),
        1,
        "no record while the wasm logger is at warning"
    );
    assert_eq!(steps_up(&gateway), 4, "every decision still counted");

    set_wasm_level("info");
    step_up(&gateway);
    let records = gateway.decision_records();
    assert_eq!(records.len(), 2, "records again at info");
    assert_eq!(records[1]["decision"], "step_up");
    assert_eq!(records[1]["rule"], "admin");
    gateway.assert_no_wasm_failure();
}

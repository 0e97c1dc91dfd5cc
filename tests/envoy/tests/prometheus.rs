//! mfa-gate's counters in Envoy's Prometheus output, as the README's "Metrics" table gives
//! them: the shipped `stats_config.stats_tags` fold each family into one labelled metric
//! (`mfa_gate_decision{decision="allow"}`), while `/stats` keeps the dotted
//! `wasmcustom.mfa_gate.*` names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{repo_root, GatewayBuilder};
use std::collections::BTreeMap;

/// Each counter's name in `/stats` and its series in `/stats/prometheus`.
const SERIES: [(&str, &str); 25] = [
    (
        "wasmcustom.mfa_gate.decision.allow",
        r#"mfa_gate_decision{decision="allow"}"#,
    ),
    (
        "wasmcustom.mfa_gate.decision.step_up",
        r#"mfa_gate_decision{decision="step_up"}"#,
    ),
    (
        "wasmcustom.mfa_gate.decision.deny",
        r#"mfa_gate_decision{decision="deny"}"#,
    ),
    (
        "wasmcustom.mfa_gate.report_only.allow",
        r#"mfa_gate_report_only{decision="allow"}"#,
    ),
    (
        "wasmcustom.mfa_gate.report_only.step_up",
        r#"mfa_gate_report_only{decision="step_up"}"#,
    ),
    (
        "wasmcustom.mfa_gate.report_only.deny",
        r#"mfa_gate_report_only{decision="deny"}"#,
    ),
    (
        "wasmcustom.mfa_gate.reason.level_below_required",
        r#"mfa_gate_reason{reason="level_below_required"}"#,
    ),
    (
        "wasmcustom.mfa_gate.cors_preflight",
        "mfa_gate_cors_preflight{}",
    ),
    (
        "wasmcustom.mfa_gate.public_allowed",
        "mfa_gate_public_allowed{}",
    ),
    (
        "wasmcustom.mfa_gate.unmatched_allowed",
        "mfa_gate_unmatched_allowed{}",
    ),
    (
        "wasmcustom.mfa_gate.token_cache.hit",
        r#"mfa_gate_token_cache{result="hit"}"#,
    ),
    (
        "wasmcustom.mfa_gate.token_cache.miss",
        r#"mfa_gate_token_cache{result="miss"}"#,
    ),
    (
        "wasmcustom.mfa_gate.jwt_authn_payload",
        "mfa_gate_jwt_authn_payload{}",
    ),
    (
        "wasmcustom.mfa_gate.jwks_fetch.success",
        r#"mfa_gate_jwks_fetch{result="success"}"#,
    ),
    (
        "wasmcustom.mfa_gate.jwks_fetch.failure",
        r#"mfa_gate_jwks_fetch{result="failure"}"#,
    ),
    (
        "wasmcustom.mfa_gate.decision.revoke",
        r#"mfa_gate_decision{decision="revoke"}"#,
    ),
    (
        "wasmcustom.mfa_gate.revocation.hit",
        "mfa_gate_revocation_hit{}",
    ),
    (
        "wasmcustom.mfa_gate.revocation.event.accepted",
        r#"mfa_gate_revocation_event{result="accepted"}"#,
    ),
    (
        "wasmcustom.mfa_gate.revocation.event.rejected",
        r#"mfa_gate_revocation_event{result="rejected"}"#,
    ),
    (
        "wasmcustom.mfa_gate.revocation.event.replayed",
        r#"mfa_gate_revocation_event{result="replayed"}"#,
    ),
    (
        "wasmcustom.mfa_gate.revocation.poll.success",
        r#"mfa_gate_revocation_poll{result="success"}"#,
    ),
    (
        "wasmcustom.mfa_gate.revocation.poll.failure",
        r#"mfa_gate_revocation_poll{result="failure"}"#,
    ),
    (
        "wasmcustom.mfa_gate.idp_session.ended",
        r#"mfa_gate_idp_session{result="ended"}"#,
    ),
    (
        "wasmcustom.mfa_gate.idp_session.gave_up",
        r#"mfa_gate_idp_session{result="gave_up"}"#,
    ),
    (
        "wasmcustom.mfa_gate.jwks_fetch.unknown_kid_refresh",
        "mfa_gate_jwks_fetch_unknown_kid_refresh{}",
    ),
];

/// `series value` lines of Prometheus' text format, by series.
fn prometheus_samples(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn counters_are_labelled_families_in_prometheus_and_dotted_in_stats() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml").start();
    let bearer = format!("Bearer {}", gateway.token("push"));
    assert_eq!(
        gateway
            .get("/api/profile", &[("authorization", &bearer)])
            .status,
        200
    );
    assert_eq!(
        gateway
            .get("/api/profile", &[("authorization", &bearer)])
            .status,
        200
    );
    assert_eq!(
        gateway
            .get("/admin/users", &[("authorization", &bearer)])
            .status,
        401
    );

    let stats = gateway.stats();
    let answer = gateway.admin_get("/stats/prometheus");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let samples = prometheus_samples(&answer.text());
    for (stats_name, series) in SERIES {
        let in_stats = stats
            .get(stats_name)
            .unwrap_or_else(|| panic!("{stats_name} not in /stats"));
        assert_eq!(
            samples.get(series),
            Some(in_stats),
            "{series} in /stats/prometheus, same value as {stats_name}"
        );
    }
    assert_eq!(samples[r#"mfa_gate_decision{decision="allow"}"#], 2);
    assert_eq!(samples[r#"mfa_gate_decision{decision="step_up"}"#], 1);
    assert!(
        !samples.keys().any(|s| s.starts_with("mfa_gate_decision_")),
        "no flat per-decision names left"
    );
    gateway.assert_no_wasm_failure();

    // The README's Metrics section documents these names.
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README");
    let metrics = readme
        .split("## Metrics")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README Metrics section");
    for family in [
        r#"mfa_gate_decision{decision="allow"}"#,
        r#"mfa_gate_report_only{decision="allow"}"#,
        r#"mfa_gate_reason{reason="<code>"}"#,
        r#"mfa_gate_token_cache{result="hit"}"#,
        r#"mfa_gate_jwks_fetch{result="success"}"#,
        "mfa_gate_jwks_fetch_unknown_kid_refresh",
        r#"mfa_gate_revocation_event{result="accepted"}"#,
        r#"mfa_gate_revocation_poll{result="success"}"#,
        r#"mfa_gate_idp_session{result="ended"}"#,
        "`wasmcustom.mfa_gate.decision.allow`",
    ] {
        assert!(metrics.contains(family), "README Metrics names {family}");
    }
}

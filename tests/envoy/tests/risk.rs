//! Issue 15's risk decision in real Envoy, as a user depends on it:
//!
//! - **DPoP** (RFC 9449): a token bound to a key (`cnf.jkt`) passes only with the `DPoP`
//!   scheme and one fresh proof of that key for this method and URI, never seen before on
//!   any worker; everything else is a 401 with the `DPoP` challenge.
//! - **mTLS binding** (RFC 8705): a token bound to a client certificate (`cnf.x5t#S256`)
//!   passes only on a connection presenting it.
//! - **Posture** from a token claim, a header, the device certificate.
//! - **Location** from Envoy's geoip filter on a database made at test time: new country,
//!   anonymous network, impossible travel (across workers) up to a revoked session, and
//!   report-only signals.
//! - The counters each of these bumps.
//!
//! The last test pins a bug this suite found: a refused request must not be a sighting
//! (`only_an_allowed_request_is_a_sighting`). A second `claim` posture source, which read the
//! first source's claim, is now refused by the configuration (tests/risk_decisions.rs).
//!
//! Tokens are the test's own (signed with a key the issuer trusts inline), so their claims
//! (`cnf`, `amr`, `auth_time`, `device_posture`) are what each case needs. Each assertion
//! reads the answer, its `WWW-Authenticate`, the decision record Envoy logged and, where
//! relevant, the counters on Envoy's admin port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{
    demo_claims, now_secs, strip_geo_headers_filter, x5t_s256, Answer, CertSpec, ClientAddress,
    ClientCerts, DpopKey, EchoUpstream, Gateway, GatewayBuilder, GeoDatabases, GeoNetwork,
    GeoSetup, ProofSpec, TestKey, TlsClient, TlsMaterial, TEST_CLIENT_IP_HEADER,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Okta `amr` values the default profile reads as push (Okta Verify with a software key).
const PUSH: &[&str] = &["pwd", "okta_verify", "swk"];
/// ... as one-time code.
const OTP: &[&str] = &["pwd", "okta_verify", "otp"];
/// ... as phishing-resistant (a passkey: proof of possession).
const PASSKEY: &[&str] = &["pwd", "pop"];
/// The `algs` of every DPoP challenge.
const DPOP_ALGS: &str = "algs=\"ES256 ES384 EdDSA RS256 PS256\"";
/// The realm of envoy/envoy.yaml's plugin configuration.
const REALM: &str = "realm=\"mfa-gate-demo\"";

// ---------------------------------------------------------------------------------------
// The gateway, tokens and records.

/// envoy/envoy.yaml in front of an echo upstream, its issuer trusting `key` inline, two
/// rules (`/health` public; `/api` judged on the risk score alone, stepping up at 50), a
/// minimal revocation section (a revoke threshold needs one), then `edit`.
fn builder(key: &TestKey, edit: impl FnOnce(&mut Value) + 'static) -> GatewayBuilder {
    let jwks = key.jwks.clone();
    GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .plugin_config(move |c| {
            let issuer = c["issuers"][0].as_object_mut().unwrap();
            issuer.remove("remote_jwks");
            issuer.insert("jwks".into(), jwks);
            c["routes"] = json!([
                {"name": "health", "match": {"path": "/health"}},
                {"name": "api", "match": {"path_prefix": "/api"}, "risk": {"step_up_at": 50}},
            ]);
            c["revocation"] = json!({"max_token_lifetime_secs": 3600});
            edit(c);
        })
}

/// Claims of a demo-issuer token for `sub` signed in now with `amr`, with a session id.
fn claims(sub: &str, amr: &[&str]) -> Value {
    let mut claims = demo_claims(sub, amr);
    claims["sid"] = json!(format!("sid-{sub}"));
    claims
}

/// The same claims bound to `cnf`.
fn bound(mut claims: Value, cnf: Value) -> Value {
    claims["cnf"] = cnf;
    claims
}

/// A request's answer and the decision record it produced (with the Envoy thread that
/// wrote it, i.e. the worker).
struct Decided {
    answer: Answer,
    record: Value,
    thread: String,
}

impl Decided {
    fn status(&self) -> u16 {
        self.answer.status
    }

    fn www(&self) -> String {
        self.answer
            .header("www-authenticate")
            .unwrap_or_default()
            .to_string()
    }

    fn reasons(&self) -> Vec<String> {
        strings(&self.record["reasons"])
    }

    fn risk(&self) -> &Value {
        &self.record["risk"]
    }

    /// The risk signals as (signal, value, points).
    fn signals(&self) -> Vec<(String, String, i64)> {
        self.risk()["signals"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                (
                    s["signal"].as_str().unwrap().to_string(),
                    s["value"].as_str().unwrap().to_string(),
                    s["points"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    /// The signal named `name` (panics when absent).
    fn signal(&self, name: &str) -> &Value {
        self.risk()["signals"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["signal"] == name)
            .unwrap_or_else(|| panic!("no {name} signal in {}", self.record))
    }

    fn has_signal(&self, name: &str) -> bool {
        self.risk()["signals"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["signal"] == name)
    }

    /// The header the upstream received (the request went through).
    fn upstream_header(&self, name: &str) -> Option<String> {
        EchoUpstream::headers_seen(&self.answer)
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

impl std::fmt::Debug for Decided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {} www {:?} record {}",
            self.answer.status,
            self.www(),
            self.record
        )
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Every decision record in Envoy's log, with the thread that wrote it.
fn decisions(gateway: &Gateway) -> Vec<(String, Value)> {
    gateway
        .envoy_log()
        .lines()
        .filter_map(|line| {
            let (_, json) = line.split_once("] decision ")?;
            let thread = line.split("][").nth(1)?.to_string();
            Some((thread, serde_json::from_str(json).ok()?))
        })
        .collect()
}

/// Sends a request (`send`) and pairs its answer with the one decision record it made.
fn decided(gateway: &Gateway, send: impl FnOnce() -> Answer) -> Decided {
    let before = decisions(gateway).len();
    let answer = send();
    gateway.wait_until("the request's decision record", |g| {
        decisions(g).len() > before
    });
    let all = decisions(gateway);
    assert_eq!(all.len(), before + 1, "one decision record per request");
    let (thread, record) = all[before].clone();
    Decided {
        answer,
        record,
        thread,
    }
}

/// A GET through the plain listener with these headers.
fn get(gateway: &Gateway, path: &str, headers: &[(&str, &str)]) -> Decided {
    decided(gateway, || gateway.get(path, headers))
}

/// A GET through the TLS listener with `client`.
fn tls_get(gateway: &Gateway, client: &TlsClient, path: &str, headers: &[(&str, &str)]) -> Decided {
    decided(gateway, || gateway.tls_get(client, path, headers).unwrap())
}

fn metric(gateway: &Gateway, name: &str) -> u64 {
    gateway.counter(&format!("wasmcustom.mfa_gate.{name}"))
}

/// Asserts several counters at once (all of them reported on failure).
fn assert_metrics(gateway: &Gateway, expected: &[(&str, u64)]) {
    let stats = gateway.stats();
    let actual: Vec<(&str, u64)> = expected
        .iter()
        .map(|(name, _)| {
            let full = format!("wasmcustom.mfa_gate.{name}");
            (*name, stats.get(&full).copied().unwrap_or(0))
        })
        .collect();
    assert_eq!(actual, expected, "counters");
}

fn sig(signal: &str, value: &str, points: i64) -> (String, String, i64) {
    (signal.to_string(), value.to_string(), points)
}

/// An allowed request: 200 from the upstream, which saw the session's subject and level.
fn assert_allowed(d: &Decided, subject: &str, level: &str) {
    assert_eq!(d.status(), 200, "{d:?}");
    assert_eq!(d.record["decision"], "allow", "{d:?}");
    assert_eq!(
        d.upstream_header("x-mfa-gate-subject").as_deref(),
        Some(subject),
        "{d:?}"
    );
    assert_eq!(
        d.upstream_header("x-mfa-gate-level").as_deref(),
        Some(level),
        "{d:?}"
    );
}

/// A 401 with the `DPoP` challenge: `error` and the record's one reason `code`; the
/// request never reached the upstream and was not scored.
fn assert_dpop_refused(d: &Decided, error: &str, code: &str) {
    assert_eq!(d.status(), 401, "{code}: {d:?}");
    let www = d.www();
    assert!(www.starts_with("DPoP "), "{code}: {www}");
    for part in [REALM, &format!("error=\"{error}\""), DPOP_ALGS] {
        assert!(www.contains(part), "{code}: {part} in {www}");
    }
    assert_eq!(d.answer.json()["error"], error, "{code}: {d:?}");
    assert_eq!(d.record["decision"], "deny", "{code}: {d:?}");
    assert_eq!(d.record["status"], 401, "{code}: {d:?}");
    assert_eq!(d.reasons(), [code], "{d:?}");
    assert!(d.record.get("risk").is_none(), "{code}: not scored: {d:?}");
}

/// A 401 `Bearer` `invalid_token` for a certificate binding that does not hold.
fn assert_certificate_refused(d: &Decided, code: &str, description: &str) {
    assert_eq!(d.status(), 401, "{code}: {d:?}");
    let www = d.www();
    assert!(www.starts_with("Bearer "), "{code}: {www}");
    assert!(www.contains("error=\"invalid_token\""), "{code}: {www}");
    assert!(
        www.contains(&format!("error_description=\"{description}\"")),
        "{code}: {www}"
    );
    assert_eq!(d.reasons(), [code], "{d:?}");
    assert!(d.record.get("risk").is_none(), "{code}: not scored: {d:?}");
}

/// A risk step-up: 401 RFC 9470 challenge asking for a phishing-resistant sign-in.
fn assert_risk_step_up(d: &Decided, score: i64) {
    assert_eq!(d.status(), 401, "{d:?}");
    let www = d.www();
    assert!(
        www.starts_with("Bearer ")
            && www.contains("error=\"insufficient_user_authentication\"")
            && www.contains("acr_values=\"phr\""),
        "{www}"
    );
    assert_eq!(d.record["decision"], "step_up", "{d:?}");
    assert_eq!(d.risk()["score"], score, "{d:?}");
    assert_eq!(d.risk()["threshold"], "step_up", "{d:?}");
    assert_eq!(d.risk()["threshold_points"], 50, "{d:?}");
    assert_eq!(d.reasons()[0], format!("risk_score:{score}>=50"), "{d:?}");
}

/// A 401 `invalid_token` "session revoked".
fn assert_session_revoked(d: &Decided) {
    assert_eq!(d.status(), 401, "{d:?}");
    let www = d.www();
    assert!(
        www.contains("error=\"invalid_token\"")
            && www.contains("error_description=\"session revoked\""),
        "{www}"
    );
}

// ---------------------------------------------------------------------------------------
// DPoP.

/// The `htu` of a request to `path` on the plain listener (`:scheme` http, `:authority`
/// 127.0.0.1:port, as the harness sends them).
fn htu(gateway: &Gateway, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", gateway.port)
}

fn dpop_get(gateway: &Gateway, path: &str, token: &str, proofs: &[&str]) -> Decided {
    let authorization = format!("DPoP {token}");
    let mut headers = vec![("authorization", authorization.as_str())];
    headers.extend(proofs.iter().map(|p| ("dpop", *p)));
    get(gateway, path, &headers)
}

#[test]
fn a_dpop_bound_token_passes_only_with_a_fresh_proof_of_its_key() {
    let issuer = TestKey::generate("ES256", "k-risk-dpop");
    let gateway = builder(&issuer, |c| {
        c["risk"] = json!({});
    })
    .start();
    let es256 = DpopKey::es256();
    let eddsa = DpopKey::ed25519();
    let stranger = DpopKey::es256();
    let es_token = issuer.token(&bound(claims("es@example.com", PUSH), es256.cnf()));
    let ed_token = issuer.token(&bound(claims("ed@example.com", OTP), eddsa.cnf()));
    let unbound = issuer.token(&claims("plain@example.com", PUSH));
    let url = htu(&gateway, "/api/profile");
    let spec = |token: &str| ProofSpec::new("GET", &url, token);

    // A valid ES256 proof: 200, the upstream sees the session; the binding counts in the
    // score (push 30, device bound -10).
    let ok = dpop_get(
        &gateway,
        "/api/profile",
        &es_token,
        &[&es256.proof(&spec(&es_token))],
    );
    assert_allowed(&ok, "es@example.com", "push");
    assert_eq!(
        ok.signals(),
        [
            sig("assurance", "push", 30),
            sig("device_bound", "dpop", -10)
        ]
    );
    assert_eq!(ok.reasons(), ["risk_score_ok:20<50"]);

    // EdDSA, with a query the proof's htu leaves out (RFC 9449 §4.3: compared without it).
    let ed = dpop_get(
        &gateway,
        "/api/profile?page=2",
        &ed_token,
        &[&eddsa.proof(&spec(&ed_token))],
    );
    assert_allowed(&ed, "ed@example.com", "otp");
    assert_eq!(ed.signal("device_bound")["value"], "dpop");

    // A proof at the edge of its window (max age 300 + skew 60) still passes.
    let old_but_ok = es256.proof(&spec(&es_token).issued_at(now_secs() - 330));
    let edge = dpop_get(&gateway, "/api/profile", &es_token, &[&old_but_ok]);
    assert_allowed(&edge, "es@example.com", "push");

    // The proof at fault: invalid_dpop_proof.
    let missing = dpop_get(&gateway, "/api/profile", &es_token, &[]);
    assert_dpop_refused(&missing, "invalid_dpop_proof", "dpop_proof_missing");
    let two = dpop_get(
        &gateway,
        "/api/profile",
        &es_token,
        &[
            &es256.proof(&spec(&es_token)),
            &es256.proof(&spec(&es_token)),
        ],
    );
    assert_dpop_refused(&two, "invalid_dpop_proof", "dpop_proof_repeated");
    let post_proof = es256.proof(&ProofSpec::new("POST", &url, &es_token));
    let wrong_method = dpop_get(&gateway, "/api/profile", &es_token, &[&post_proof]);
    assert_dpop_refused(&wrong_method, "invalid_dpop_proof", "dpop_htm_mismatch");
    for other_uri in [
        htu(&gateway, "/api/other"),
        format!("https://127.0.0.1:{}/api/profile", gateway.port),
        "http://gw.example/api/profile".to_string(),
    ] {
        let proof = es256.proof(&ProofSpec::new("GET", &other_uri, &es_token));
        let wrong_uri = dpop_get(&gateway, "/api/profile", &es_token, &[&proof]);
        assert_dpop_refused(&wrong_uri, "invalid_dpop_proof", "dpop_htu_mismatch");
    }
    let strangers = stranger.proof(&spec(&es_token));
    let other_key = dpop_get(&gateway, "/api/profile", &es_token, &[&strangers]);
    assert_dpop_refused(&other_key, "invalid_dpop_proof", "dpop_key_mismatch");
    let stale = es256.proof(&spec(&es_token).issued_at(now_secs() - 400));
    let too_old = dpop_get(&gateway, "/api/profile", &es_token, &[&stale]);
    assert_dpop_refused(&too_old, "invalid_dpop_proof", "dpop_too_old");
    let ahead = es256.proof(&spec(&es_token).issued_at(now_secs() + 120));
    let future = dpop_get(&gateway, "/api/profile", &es_token, &[&ahead]);
    assert_dpop_refused(&future, "invalid_dpop_proof", "dpop_issued_in_future");
    // A proof made for another access token (its ath).
    let for_ed = es256.proof(&spec(&ed_token));
    let wrong_ath = dpop_get(&gateway, "/api/profile", &es_token, &[&for_ed]);
    assert_dpop_refused(&wrong_ath, "invalid_dpop_proof", "dpop_ath_mismatch");
    let mut no_ath = spec(&es_token);
    no_ath.ath = None;
    let without_ath = dpop_get(
        &gateway,
        "/api/profile",
        &es_token,
        &[&es256.proof(&no_ath)],
    );
    assert_dpop_refused(&without_ath, "invalid_dpop_proof", "dpop_missing_claim");
    let mut jwt_typ = spec(&es_token);
    jwt_typ.typ = "JWT".to_string();
    let wrong_typ = dpop_get(
        &gateway,
        "/api/profile",
        &es_token,
        &[&es256.proof(&jwt_typ)],
    );
    assert_dpop_refused(&wrong_typ, "invalid_dpop_proof", "dpop_bad_typ");
    // A proof whose signature is another key's than its jwk.
    let good = es256.proof(&spec(&es_token));
    let forged_signature = stranger.proof(&spec(&es_token));
    let forged = format!(
        "{}.{}",
        good.rsplit_once('.').unwrap().0,
        forged_signature.rsplit_once('.').unwrap().1
    );
    let bad_signature = dpop_get(&gateway, "/api/profile", &es_token, &[&forged]);
    assert_dpop_refused(&bad_signature, "invalid_dpop_proof", "dpop_bad_signature");

    // The token at fault: invalid_token, still with the DPoP challenge.
    let bearer = format!("Bearer {es_token}");
    let as_bearer = get(&gateway, "/api/profile", &[("authorization", &bearer)]);
    assert_dpop_refused(&as_bearer, "invalid_token", "dpop_scheme_required");
    // ...even with a valid proof beside it.
    let fresh = es256.proof(&spec(&es_token));
    let bearer_with_proof = get(
        &gateway,
        "/api/profile",
        &[("authorization", &bearer), ("dpop", &fresh)],
    );
    assert_dpop_refused(&bearer_with_proof, "invalid_token", "dpop_scheme_required");
    // An unbound token with the DPoP scheme claims a binding it does not have.
    let unbound_proof = es256.proof(&spec(&unbound));
    let not_bound = dpop_get(&gateway, "/api/profile", &unbound, &[&unbound_proof]);
    assert_dpop_refused(&not_bound, "invalid_token", "dpop_token_not_bound");
    // A bound session too weak for the route (no MFA: 60 - 10 = 50) is stepped up.
    let weak = issuer.token(&bound(claims("weak@example.com", &[]), es256.cnf()));
    let weak_proof = es256.proof(&spec(&weak));
    let stepped = dpop_get(&gateway, "/api/profile", &weak, &[&weak_proof]);
    assert_eq!(stepped.status(), 401, "{stepped:?}");
    assert_eq!(stepped.record["decision"], "step_up", "{stepped:?}");
    assert_eq!(stepped.reasons(), ["risk_score:50>=50"]);
    // Under the DPoP scheme: a DPoP client answers DPoP challenges (RFC 9449 §7.1).
    let www = stepped.www();
    assert!(
        www.starts_with("DPoP ")
            && www.contains("error=\"insufficient_user_authentication\"")
            && www.contains("acr_values=\"phr\"")
            && www.contains("algs=\""),
        "{www}"
    );
    assert_eq!(stepped.record["source"], "dpop", "{stepped:?}");

    // The same token as a bearer token is fine (and scored as unbound).
    let plain = get(
        &gateway,
        "/api/profile",
        &[("authorization", &format!("Bearer {unbound}"))],
    );
    assert_allowed(&plain, "plain@example.com", "push");
    assert_eq!(plain.signal("device_unbound")["value"], "bearer");
    assert_eq!(plain.risk()["score"], 30);

    let refused = 16;
    assert_metrics(
        &gateway,
        &[
            ("binding.dpop", 4),
            ("binding.mtls", 0),
            ("binding.refused", refused),
            ("risk.scored", 5),
            ("risk.signal.device_bound", 4),
            ("risk.signal.device_unbound", 1),
            ("reason.dpop_proof_missing", 1),
            ("reason.dpop_proof_repeated", 1),
            ("reason.dpop_htm_mismatch", 1),
            ("reason.dpop_htu_mismatch", 3),
            ("reason.dpop_key_mismatch", 1),
            ("reason.dpop_too_old", 1),
            ("reason.dpop_issued_in_future", 1),
            ("reason.dpop_ath_mismatch", 1),
            ("reason.dpop_missing_claim", 1),
            ("reason.dpop_bad_typ", 1),
            ("reason.dpop_bad_signature", 1),
            ("reason.dpop_scheme_required", 2),
            ("reason.dpop_token_not_bound", 1),
            ("decision.allow", 4),
            ("decision.step_up", 1),
            ("decision.deny", refused),
        ],
    );
    assert_eq!(gateway.echo().unwrap().requests(), 4);
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_dpop_proof_is_accepted_once_across_workers() {
    let issuer = TestKey::generate("ES256", "k-risk-replay");
    let gateway = builder(&issuer, |_| {}).concurrency(2).start();
    let key = DpopKey::es256();
    let token = issuer.token(&bound(claims("replay@example.com", PUSH), key.cnf()));
    let url = htu(&gateway, "/api/profile");

    // Each proof twice: the first passes, the second is a replay wherever it lands. Go on
    // until some replay was refused by the other worker than the one that took the proof.
    let (mut rounds, mut across, mut threads) = (0, 0, BTreeSet::new());
    while across < 2 {
        assert!(rounds < 40, "40 proofs never crossed workers twice");
        rounds += 1;
        let proof = key.proof(&ProofSpec::new("GET", &url, &token));
        let first = dpop_get(&gateway, "/api/profile", &token, &[&proof]);
        assert_allowed(&first, "replay@example.com", "push");
        let again = dpop_get(&gateway, "/api/profile", &token, &[&proof]);
        assert_dpop_refused(&again, "invalid_dpop_proof", "dpop_replayed");
        assert!(
            again
                .www()
                .contains("error_description=\"The DPoP proof was used before\""),
            "{again:?}"
        );
        threads.insert(first.thread.clone());
        threads.insert(again.thread.clone());
        if first.thread != again.thread {
            across += 1;
        }
    }
    println!("{rounds} proofs, {across} replays refused by the other worker");
    assert_eq!(threads.len(), 2, "{threads:?}");
    assert_metrics(
        &gateway,
        &[
            ("binding.dpop", rounds),
            ("binding.refused", rounds),
            ("reason.dpop_replayed", rounds),
            ("binding.dpop_replay_unavailable", 0),
            ("binding.dpop_replay_evicted", 0),
        ],
    );
    gateway.assert_no_wasm_failure();
}

#[test]
fn dpop_settings_and_a_stripped_posture_header_hold_behind_a_proxy() {
    let issuer = TestKey::generate("ES256", "k-risk-origins");
    // The gateway sits behind a TLS-terminating proxy: clients sign for the public origin.
    // Its proofs live 30 s (+5 s skew). The posture header is a trusted hop's: the first
    // filter removes any client copy (no hop sets it here).
    let gateway = builder(&issuer, |c| {
        c["binding"] = json!({"dpop": {
            "max_age_secs": 30,
            "clock_skew_secs": 5,
            "replay_capacity": 1000,
            "origins": ["https://gw.example", "https://api.example:8443"]
        }});
        c["risk"] = json!({"posture": {"sources": [{"header": "x-device-posture"}]}});
    })
    .http_filters_before_wasm(vec![strip_geo_headers_filter("x-device-posture")])
    .start();
    let key = DpopKey::es256();
    let token = issuer.token(&bound(claims("proxied@example.com", PUSH), key.cnf()));
    let proof_for = |uri: &str| key.proof(&ProofSpec::new("GET", uri, &token));

    // Host 127.0.0.1 matches no origin: the first one is the request's.
    let public = dpop_get(
        &gateway,
        "/api/profile",
        &token,
        &[&proof_for("https://gw.example/api/profile")],
    );
    assert_allowed(&public, "proxied@example.com", "push");
    // The client claimed a managed device; the strip filter removed the claim.
    let authorization = format!("DPoP {token}");
    let claimed = get(
        &gateway,
        "/api/profile",
        &[
            ("authorization", &authorization),
            ("dpop", &proof_for("https://gw.example/api/profile")),
            ("x-device-posture", "managed"),
        ],
    );
    assert_eq!(claimed.status(), 200, "{claimed:?}");
    assert_eq!(claimed.signal("posture_unknown")["value"], "unknown:none");
    assert!(!claimed.has_signal("posture_managed"), "{claimed:?}");
    // The request's own origin is not accepted once origins are configured.
    let own = dpop_get(
        &gateway,
        "/api/profile",
        &token,
        &[&proof_for(&htu(&gateway, "/api/profile"))],
    );
    assert_dpop_refused(&own, "invalid_dpop_proof", "dpop_htu_mismatch");
    // A request for the second origin's host is held to that origin (default port
    // normalisation aside, the port counts).
    let host = [("host", "api.example:8443")];
    let second = |uri: &str| {
        let mut headers = vec![("authorization", authorization.as_str())];
        let proof = proof_for(uri);
        headers.push(("dpop", proof.as_str()));
        headers.extend_from_slice(&host);
        get(&gateway, "/api/profile", &headers)
    };
    assert_allowed(
        &second("https://api.example:8443/api/profile"),
        "proxied@example.com",
        "push",
    );
    let first_origin = second("https://gw.example/api/profile");
    assert_dpop_refused(&first_origin, "invalid_dpop_proof", "dpop_htu_mismatch");
    // max_age_secs 30 (+5): a 40 s old proof is too old, a 30 s old one is not.
    let aged = |age: u64| {
        key.proof(
            &ProofSpec::new("GET", "https://gw.example/api/profile", &token)
                .issued_at(now_secs() - age),
        )
    };
    let too_old = dpop_get(&gateway, "/api/profile", &token, &[&aged(40)]);
    assert_dpop_refused(&too_old, "invalid_dpop_proof", "dpop_too_old");
    let recent = dpop_get(&gateway, "/api/profile", &token, &[&aged(30)]);
    assert_allowed(&recent, "proxied@example.com", "push");
    assert_metrics(
        &gateway,
        &[
            ("binding.dpop", 4),
            ("binding.refused", 3),
            ("risk.signal.posture_unknown", 4),
            ("risk.signal.posture_managed", 0),
        ],
    );
    gateway.assert_no_wasm_failure();
}

// ---------------------------------------------------------------------------------------
// mTLS binding and posture.

#[test]
fn a_certificate_bound_token_needs_its_certificate_and_posture_comes_from_trusted_sources() {
    let issuer = TestKey::generate("ES256", "k-risk-mtls");
    let tls = TlsMaterial::new();
    let device = |cn: &str, uri: &str| tls.device(&CertSpec::client().common_name(cn).uri_san(uri));
    let laptop = device("laptop-1", "spiffe://devices.example/laptop-1");
    let tablet = device("tablet-7", "spiffe://devices.example/tablet-7");
    let personal = device("byod-3", "spiffe://people.example/byod-3");
    let gateway = builder(&issuer, |c| {
        c["risk"] = json!({"posture": {
            "sources": [
                {"claim": "device_posture"},
                {"header": "x-device-posture"},
                {"certificate": {
                    "uri_san_prefixes": ["spiffe://devices.example/"],
                    "dns_san_suffixes": [],
                    "subject_contains": [],
                    "posture": "managed"
                }}
            ],
            "values": {"noncompliant": "unmanaged"}
        }});
    })
    .tls_listener(&tls, ClientCerts::Optional)
    .start();
    let on_laptop = tls.client(Some(&laptop));
    let on_tablet = tls.client(Some(&tablet));
    let on_personal = tls.client(Some(&personal));
    let no_cert = tls.client(None);

    let cnf = json!({"x5t#S256": x5t_s256(laptop.cert_der())});
    let laptops = issuer.token(&bound(claims("laptop@example.com", PUSH), cnf));
    let bearer = format!("Bearer {laptops}");
    let auth = [("authorization", bearer.as_str())];

    // The right certificate: 200; bound (-10) and managed by the certificate rule (-10).
    let right = tls_get(&gateway, &on_laptop, "/api/profile", &auth);
    assert_allowed(&right, "laptop@example.com", "push");
    assert_eq!(
        right.signals(),
        [
            sig("assurance", "push", 30),
            sig("device_bound", "mtls", -10),
            sig("posture_managed", "managed:certificate", -10),
        ]
    );
    assert_eq!(right.reasons(), ["risk_score_ok:10<50"]);
    // Another device the CA trusts: not the one the token is bound to.
    let other = tls_get(&gateway, &on_tablet, "/api/profile", &auth);
    assert_certificate_refused(
        &other,
        "certificate_binding_mismatch",
        "The token is bound to another client certificate",
    );
    // No certificate on the (optional-certificate) listener.
    let none = tls_get(&gateway, &no_cert, "/api/profile", &auth);
    assert_certificate_refused(
        &none,
        "certificate_binding_missing",
        "The token is bound to a client certificate the connection does not present",
    );

    // DPoP over TLS: the htu is https (the request's :scheme). A token bound to both the
    // laptop's certificate and a DPoP key needs both.
    let key = DpopKey::es256();
    let both = bound(
        claims("both@example.com", PUSH),
        json!({"x5t#S256": x5t_s256(laptop.cert_der()), "jkt": key.thumbprint()}),
    );
    let both = issuer.token(&both);
    let dpop_auth = format!("DPoP {both}");
    let tls_htu = format!("https://127.0.0.1:{}/api/profile", gateway.port);
    let with_proof = |client: &TlsClient| {
        let proof = key.proof(&ProofSpec::new("GET", &tls_htu, &both));
        tls_get(
            &gateway,
            client,
            "/api/profile",
            &[("authorization", &dpop_auth), ("dpop", &proof)],
        )
    };
    let both_held = with_proof(&on_laptop);
    assert_allowed(&both_held, "both@example.com", "push");
    assert_eq!(both_held.signal("device_bound")["value"], "dpop");
    let wrong_device = with_proof(&on_tablet);
    assert_dpop_refused(
        &wrong_device,
        "invalid_token",
        "certificate_binding_mismatch",
    );
    let http_proof = key.proof(&ProofSpec::new(
        "GET",
        &htu(&gateway, "/api/profile"),
        &both,
    ));
    let plain_htu = tls_get(
        &gateway,
        &on_laptop,
        "/api/profile",
        &[("authorization", &dpop_auth), ("dpop", &http_proof)],
    );
    assert_dpop_refused(&plain_htu, "invalid_dpop_proof", "dpop_htu_mismatch");

    // Posture of unbound tokens. A claim the IdP put in the token:
    let managed_claim = {
        let mut c = claims("claimed@example.com", PUSH);
        c["device_posture"] = json!("managed");
        issuer.token(&c)
    };
    let claimed = tls_get(
        &gateway,
        &no_cert,
        "/api/profile",
        &[("authorization", &format!("Bearer {managed_claim}"))],
    );
    assert_allowed(&claimed, "claimed@example.com", "push");
    assert_eq!(
        claimed.signals(),
        [
            sig("assurance", "push", 30),
            sig("device_unbound", "bearer", 0),
            sig("posture_managed", "managed:claim", -10),
        ]
    );

    // A header a trusted hop sets (here the test itself plays that hop: no filter in front
    // strips the client's copy on this listener), through the value map: noncompliant is
    // unmanaged (+20), so push 30 + 20 = 50 reaches the step-up threshold.
    let plain = issuer.token(&claims("header@example.com", PUSH));
    let plain_auth = format!("Bearer {plain}");
    let noncompliant = tls_get(
        &gateway,
        &no_cert,
        "/api/profile",
        &[
            ("authorization", &plain_auth),
            ("x-device-posture", "NonCompliant"),
        ],
    );
    assert_risk_step_up(&noncompliant, 50);
    assert_eq!(
        noncompliant.signal("posture_unmanaged")["value"],
        "unmanaged:header"
    );
    assert_eq!(noncompliant.signal("posture_unmanaged")["points"], 20);
    let compliant = tls_get(
        &gateway,
        &no_cert,
        "/api/profile",
        &[
            ("authorization", &plain_auth),
            ("x-device-posture", "compliant"),
        ],
    );
    assert_allowed(&compliant, "header@example.com", "push");
    assert_eq!(
        compliant.signal("posture_compliant")["value"],
        "compliant:header"
    );
    // A device certificate outside the rule's SAN prefixes says nothing.
    let byod = tls_get(
        &gateway,
        &on_personal,
        "/api/profile",
        &[("authorization", &plain_auth)],
    );
    assert_allowed(&byod, "header@example.com", "push");
    assert_eq!(byod.signal("posture_unknown")["value"], "unknown:none");
    // The first source that answers wins: the token's claim over the managed certificate.
    let unmanaged_claim = {
        let mut c = claims("claim-first@example.com", PUSH);
        c["device_posture"] = json!("unmanaged");
        issuer.token(&c)
    };
    let claim_first = tls_get(
        &gateway,
        &on_laptop,
        "/api/profile",
        &[("authorization", &format!("Bearer {unmanaged_claim}"))],
    );
    assert_risk_step_up(&claim_first, 50);
    assert_eq!(
        claim_first.signal("posture_unmanaged")["value"],
        "unmanaged:claim"
    );
    // An unbound token on the laptop: managed by the certificate, not bound.
    let on_the_laptop = tls_get(
        &gateway,
        &on_laptop,
        "/api/profile",
        &[("authorization", &plain_auth)],
    );
    assert_allowed(&on_the_laptop, "header@example.com", "push");
    assert_eq!(
        on_the_laptop.signals(),
        [
            sig("assurance", "push", 30),
            sig("device_unbound", "bearer", 0),
            sig("posture_managed", "managed:certificate", -10),
        ]
    );

    assert_metrics(
        &gateway,
        &[
            ("binding.mtls", 1),
            ("binding.dpop", 1),
            ("binding.refused", 4),
            ("reason.certificate_binding_mismatch", 2),
            ("reason.certificate_binding_missing", 1),
            ("reason.dpop_htu_mismatch", 1),
            ("risk.scored", 8),
            ("risk.signal.posture_managed", 4),
            ("risk.signal.posture_compliant", 1),
            ("risk.signal.posture_unmanaged", 2),
            ("risk.signal.posture_unknown", 1),
            ("decision.step_up", 2),
            ("reason.risk_score", 2),
        ],
    );
    gateway.assert_no_wasm_failure();
}

// ---------------------------------------------------------------------------------------
// Location.

const VIENNA: &str = "203.0.113.10";
const BRATISLAVA: &str = "203.0.113.70";
const TOKYO: &str = "203.0.113.140";
const TOR_EXIT: &str = "203.0.113.200";

/// Vienna (AT: not in the city table, so placed at the capital, with the country's reach),
/// Bratislava (SK, 55 km away), Tokyo (JP, from the city table), a Tor exit in Germany.
fn geo() -> GeoDatabases {
    GeoDatabases::build(&[
        GeoNetwork::new("203.0.113.0/26")
            .country("AT")
            .city("Vienna"),
        GeoNetwork::new("203.0.113.64/26")
            .country("SK")
            .city("Bratislava"),
        GeoNetwork::new("203.0.113.128/26")
            .country("JP")
            .city("Tokyo"),
        GeoNetwork::new("203.0.113.192/26")
            .country("DE")
            .city("Berlin")
            .anonymous(true)
            .tor_exit_node(true),
    ])
}

fn located_builder(issuer: &TestKey, databases: &GeoDatabases, risk: Value) -> GatewayBuilder {
    builder(issuer, move |c| c["risk"] = risk)
        .geoip(&GeoSetup::new(databases, ClientAddress::test_header()))
}

/// A GET of /api/profile with `token` from `ip` (None: no address header, the
/// connection's 127.0.0.1, which the databases do not know).
fn from(gateway: &Gateway, token: &str, ip: Option<&str>) -> Decided {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("authorization", bearer.as_str())];
    headers.extend(ip.map(|ip| (TEST_CLIENT_IP_HEADER, ip)));
    get(gateway, "/api/profile", &headers)
}

/// The travel of an impossible-travel signal value `AT->JP:8530km/0s`: (from, to, km).
fn travel(value: &str) -> (String, String, u64) {
    let (countries, rest) = value.split_once(':').unwrap();
    let (from, to) = countries.split_once("->").unwrap();
    let km = rest.split_once("km/").unwrap().0.parse().unwrap();
    (from.to_string(), to.to_string(), km)
}

#[test]
fn location_signals_step_up_deny_and_revoke_across_workers() {
    let issuer = TestKey::generate("ES256", "k-risk-geo");
    let databases = geo();
    let risk = json!({
        "thresholds": {"step_up_at": 50, "deny_at": 100, "revoke_at": 100},
        "location": {"headers": "geoip", "max_speed_kmh": 805, "min_distance_km": 100, "refresh_secs": 300}
    });
    let gateway = located_builder(&issuer, &databases, risk)
        .concurrency(2)
        .start();
    let mut scored = 0;

    // A push user seen in Vienna, then in Bratislava seconds later: too close to be travel,
    // but a new country (+25): 30 + 25 = 55, stepped up to a phishing-resistant sign-in.
    let push = issuer.token(&claims("commuter@example.com", PUSH));
    let vienna = from(&gateway, &push, Some(VIENNA));
    assert_allowed(&vienna, "commuter@example.com", "push");
    assert_eq!(
        vienna.signals(),
        [
            sig("assurance", "push", 30),
            sig("device_unbound", "bearer", 0),
            sig("first_sighting", "AT", 0),
        ]
    );
    let bratislava = from(&gateway, &push, Some(BRATISLAVA));
    assert_risk_step_up(&bratislava, 55);
    assert_eq!(
        bratislava.signals(),
        [
            sig("assurance", "push", 30),
            sig("device_unbound", "bearer", 0),
            sig("new_country", "SK", 25),
        ]
    );
    scored += 2;

    // A phishing-resistant user from a new country: 0 + 25, allowed.
    let passkey = issuer.token(&claims("traveller@example.com", PASSKEY));
    assert_allowed(
        &from(&gateway, &passkey, Some(VIENNA)),
        "traveller@example.com",
        "phishing_resistant",
    );
    let abroad = from(&gateway, &passkey, Some(BRATISLAVA));
    assert_allowed(&abroad, "traveller@example.com", "phishing_resistant");
    assert_eq!(abroad.risk()["score"], 25);
    assert_eq!(abroad.signal("new_country")["value"], "SK");
    assert_eq!(abroad.reasons(), ["risk_score_ok:25<50"]);
    scored += 2;
    // ...but a new country through Tor (0 + 25 + 30 = 55) steps up a session that is
    // already phishing-resistant: signing in again cannot lower the score, so it is denied.
    // (Another user: Bratislava to Berlin in seconds would be impossible travel.)
    let cautious = issuer.token(&claims("cautious@example.com", PASSKEY));
    let home = from(&gateway, &cautious, Some(VIENNA));
    assert_allowed(&home, "cautious@example.com", "phishing_resistant");
    let via_tor = from(&gateway, &cautious, Some(TOR_EXIT));
    assert_eq!(via_tor.status(), 403, "{via_tor:?}");
    assert_eq!(via_tor.record["decision"], "deny", "{via_tor:?}");
    assert_eq!(
        via_tor.reasons(),
        ["risk_score:55>=50", "step_up_cannot_help"]
    );
    assert_eq!(via_tor.answer.json()["reason"], "risk_score:55>=50");
    assert_eq!(via_tor.signal("anonymous_network")["value"], "tor");
    assert_eq!(via_tor.signal("new_country")["value"], "DE");
    assert!(!via_tor.has_signal("impossible_travel"), "{via_tor:?}");
    scored += 2;

    // An anonymous network on a first sighting: push 30 + Tor 30 = 60, stepped up.
    let anonymous = issuer.token(&claims("hidden@example.com", PUSH));
    let tor = from(&gateway, &anonymous, Some(TOR_EXIT));
    assert_risk_step_up(&tor, 60);
    assert_eq!(
        tor.signals(),
        [
            sig("assurance", "push", 30),
            sig("device_unbound", "bearer", 0),
            sig("first_sighting", "DE", 0),
            sig("anonymous_network", "tor", 30),
        ]
    );
    scored += 1;

    // No location at all (the connection's address is in no database).
    let nowhere = from(&gateway, &anonymous, None);
    assert_eq!(nowhere.signal("location_unknown")["value"], "none");
    assert_eq!(nowhere.status(), 200, "{nowhere:?}");
    // A sign-in older than 12 hours: +15.
    let mut old_claims = claims("sleepy@example.com", OTP);
    old_claims["auth_time"] = json!(now_secs() - 50_000);
    let sleepy = from(&gateway, &issuer.token(&old_claims), Some(VIENNA));
    assert_allowed(&sleepy, "sleepy@example.com", "otp");
    assert_eq!(sleepy.risk()["score"], 20 + 15);
    assert_eq!(sleepy.signal("stale_authentication")["points"], 15);
    assert!(
        sleepy.signal("stale_authentication")["value"]
            .as_str()
            .unwrap()
            .starts_with("500"),
        "{sleepy:?}"
    );
    scored += 2;

    // Tokyo seconds after Vienna: impossible travel (+100) on top of push 30 and a new
    // country 25 reaches revoke_at 100. Users until one's two sightings were judged by
    // different workers (the sightings are shared).
    let (mut users, mut across) = (0, 0);
    let mut revoked_tokens = Vec::new();
    while across < 1 {
        assert!(
            users < 16,
            "16 users never had their sightings on both workers"
        );
        users += 1;
        let sub = format!("jetsetter-{users}@example.com");
        let token = issuer.token(&claims(&sub, PUSH));
        let vienna = from(&gateway, &token, Some(VIENNA));
        assert_allowed(&vienna, &sub, "push");
        let tokyo = from(&gateway, &token, Some(TOKYO));
        assert_session_revoked(&tokyo);
        assert_eq!(tokyo.record["decision"], "revoke", "{tokyo:?}");
        assert_eq!(tokyo.record["status"], 401, "{tokyo:?}");
        assert_eq!(tokyo.risk()["score"], 155, "{tokyo:?}");
        assert_eq!(tokyo.risk()["threshold"], "revoke", "{tokyo:?}");
        assert_eq!(tokyo.risk()["threshold_points"], 100, "{tokyo:?}");
        assert_eq!(tokyo.reasons()[0], "risk_score:155>=100", "{tokyo:?}");
        assert_eq!(tokyo.signal("new_country")["value"], "JP");
        let impossible = tokyo.signal("impossible_travel");
        assert_eq!(impossible["points"], 100);
        let (from_country, to_country, km) = travel(impossible["value"].as_str().unwrap());
        assert_eq!((from_country.as_str(), to_country.as_str()), ("AT", "JP"));
        // Vienna to Tokyo is 9,130 km; Austria reaches 600 km from its capital.
        assert!((8_000..=9_200).contains(&km), "{impossible}");
        if vienna.thread != tokyo.thread {
            across += 1;
        }
        revoked_tokens.push(token);
        scored += 2;
    }
    println!("{users} users until impossible travel was judged across workers");
    // The revoked session is refused on its next requests, by both workers, even from home.
    let mut refusing = BTreeSet::new();
    let mut follow_ups = 0;
    while refusing.len() < 2 {
        assert!(follow_ups < 30, "30 follow-ups never reached both workers");
        follow_ups += 1;
        let token = &revoked_tokens[follow_ups % revoked_tokens.len()];
        let next = from(&gateway, token, Some(VIENNA));
        assert_session_revoked(&next);
        assert_eq!(next.reasons(), ["session_revoked"], "{next:?}");
        assert!(next.record.get("risk").is_none(), "{next:?}");
        refusing.insert(next.thread);
    }

    let users = users as u64;
    let scored = scored as u64;
    assert_metrics(
        &gateway,
        &[
            ("risk.scored", scored),
            ("risk.signal.assurance", scored),
            ("risk.signal.first_sighting", 5 + users),
            ("risk.signal.new_country", 3 + users),
            ("risk.signal.anonymous_network", 2),
            ("risk.signal.impossible_travel", users),
            ("risk.signal.location_unknown", 1),
            ("risk.signal.stale_authentication", 1),
            ("decision.revoke", users),
            ("decision.step_up", 2),
            ("reason.step_up_cannot_help", 1),
            ("reason.session_revoked", follow_ups as u64),
            ("location.store_error", 0),
        ],
    );
    assert!(metric(&gateway, "revocation.entries_added") >= users);
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_report_only_signal_is_shown_with_its_points_but_not_enforced() {
    let issuer = TestKey::generate("ES256", "k-risk-report");
    let databases = geo();
    let risk = json!({
        "report_only": ["impossible_travel"],
        "thresholds": {"step_up_at": 50, "deny_at": 100, "revoke_at": 100},
        "location": {"headers": "geoip"}
    });
    let gateway = located_builder(&issuer, &databases, risk).start();

    // Phishing-resistant, Vienna then Tokyo: 0 + 25 counted, the 100 of impossible travel
    // only shown: allowed.
    let passkey = issuer.token(&claims("reported@example.com", PASSKEY));
    from(&gateway, &passkey, Some(VIENNA));
    let tokyo = from(&gateway, &passkey, Some(TOKYO));
    assert_allowed(&tokyo, "reported@example.com", "phishing_resistant");
    assert_eq!(tokyo.risk()["score"], 25, "{tokyo:?}");
    assert_eq!(tokyo.risk()["score_if_enforced"], 125, "{tokyo:?}");
    assert!(tokyo.risk().get("threshold").is_none(), "{tokyo:?}");
    let impossible = tokyo.signal("impossible_travel");
    assert_eq!(impossible["points"], 100);
    assert_eq!(impossible["report_only"], true);
    assert!(tokyo.signal("new_country").get("report_only").is_none());
    assert_eq!(tokyo.reasons(), ["risk_score_ok:25<50"]);

    // A push user: 30 + 25 = 55 steps up; enforced, impossible travel would have revoked.
    let push = issuer.token(&claims("reported-push@example.com", PUSH));
    from(&gateway, &push, Some(VIENNA));
    let stepped = from(&gateway, &push, Some(TOKYO));
    assert_risk_step_up(&stepped, 55);
    assert_eq!(stepped.risk()["score_if_enforced"], 155);
    // Not revoked, and not learnt either: a refused request is not a sighting, so asking
    // again from Tokyo is stepped up again.
    let again = from(&gateway, &push, Some(TOKYO));
    assert_risk_step_up(&again, 55);

    assert_metrics(
        &gateway,
        &[
            ("risk.signal.impossible_travel", 3),
            ("decision.revoke", 0),
            ("revocation.entries_added", 0),
        ],
    );
    gateway.assert_no_wasm_failure();
}

// ---------------------------------------------------------------------------------------
// Found while writing the above: requests that must not count.

#[test]
fn only_an_allowed_request_is_a_sighting() {
    // The subject's history (last place, known countries) must be learnt from requests the
    // gate let through, never from one it refused: else a refused request teaches the gate
    // the very place it was refused for. Four ways that shows; each is checked and all
    // failures are reported together.
    let issuer = TestKey::generate("ES256", "k-risk-sightings");
    let databases = geo();
    let risk = json!({
        "thresholds": {"step_up_at": 50, "revoke_at": 100},
        "location": {"headers": "geoip"}
    });
    let gateway = located_builder(&issuer, &databases, risk).start();
    let mut failures: Vec<String> = Vec::new();

    // 1. A stolen DPoP-bound token is useless without the key: the binding refuses it.
    // That refusal must not say where the owner is, or the thief, from Tokyo, makes the
    // owner's next request from Vienna impossible travel and gets the session revoked.
    let key = DpopKey::es256();
    let token = issuer.token(&bound(claims("owner@example.com", PUSH), key.cnf()));
    let url = htu(&gateway, "/api/profile");
    let authorization = format!("DPoP {token}");
    let send = |ip: &str, proof: Option<String>| {
        let mut headers = vec![("authorization", authorization.clone())];
        headers.extend(proof.map(|p| ("dpop", p)));
        headers.push((TEST_CLIENT_IP_HEADER, ip.to_string()));
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        get(&gateway, "/api/profile", &headers)
    };
    let proof = || Some(key.proof(&ProofSpec::new("GET", &url, &token)));
    assert_allowed(&send(VIENNA, proof()), "owner@example.com", "push");
    let thief = send(TOKYO, None);
    assert_dpop_refused(&thief, "invalid_dpop_proof", "dpop_proof_missing");
    let owner_again = send(VIENNA, proof());
    if owner_again.status() != 200 || owner_again.has_signal("impossible_travel") {
        failures.push(format!(
            "1. a request refused for its binding (from Tokyo) was taken as the owner's \
             sighting; the owner's next request from Vienna: {owner_again:?}"
        ));
    }

    // 2. A new country steps a push session up. Sending the same request again must not
    // get it through: the stepped-up request did not make the country known.
    let commuter = issuer.token(&claims("retrier@example.com", PUSH));
    assert_allowed(
        &from(&gateway, &commuter, Some(VIENNA)),
        "retrier@example.com",
        "push",
    );
    assert_risk_step_up(&from(&gateway, &commuter, Some(BRATISLAVA)), 55);
    let retried = from(&gateway, &commuter, Some(BRATISLAVA));
    if retried.status() != 401 || !retried.has_signal("new_country") {
        failures.push(format!(
            "2. the same request, sent again after its new-country step-up, got through \
             (the step-up made SK a known country): {retried:?}"
        ));
    }

    // 3. Impossible travel revokes the session; signing in again from the far place (the
    // thief who has the password and gets a push approved) is still impossible travel.
    let jet = issuer.token(&claims("phished@example.com", PUSH));
    assert_allowed(
        &from(&gateway, &jet, Some(VIENNA)),
        "phished@example.com",
        "push",
    );
    assert_session_revoked(&from(&gateway, &jet, Some(TOKYO)));
    let mut fresh = claims("phished@example.com", PUSH);
    fresh["sid"] = json!("sid-phished-again");
    let thief_again = from(&gateway, &issuer.token(&fresh), Some(TOKYO));
    if thief_again.status() == 200 {
        failures.push(format!(
            "3. after an impossible-travel revoke, a new session from the same far place \
             is let in (the revoked request recorded Tokyo and made JP known): \
             {thief_again:?}"
        ));
    }

    // 4. ...and the owner, signing in again at home, is not revoked a second time.
    let home = issuer.token(&claims("victim@example.com", PUSH));
    assert_allowed(
        &from(&gateway, &home, Some(VIENNA)),
        "victim@example.com",
        "push",
    );
    assert_session_revoked(&from(&gateway, &home, Some(TOKYO)));
    let mut fresh = claims("victim@example.com", PUSH);
    fresh["sid"] = json!("sid-victim-again");
    let back_home = from(&gateway, &issuer.token(&fresh), Some(VIENNA));
    if back_home.status() != 200 {
        failures.push(format!(
            "4. the owner signing in again from Vienna after the revoke is judged against \
             the revoked request's Tokyo: {back_home:?}"
        ));
    }
    assert!(
        failures.is_empty(),
        "refused requests were recorded as sightings:\n{}",
        failures.join("\n")
    );
}

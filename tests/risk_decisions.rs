//! The risk stage through the engine, as the filter runs it: the score folded into each
//! rule's decision (allow, step-up, deny, revoke), sightings remembered between requests,
//! posture and binding facts, report-only signals, and the decision record that explains
//! it. Claims are taken as given (`ClaimsInput::Unverified`): verification has its own
//! tests; what matters here is what the gate does with a session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate::claims::Claims;
use mfa_gate::config::{self, Config};
use mfa_gate::engine::{self, ClaimsInput, Evaluation, Outcome, SessionCache, SharedSignals};
use mfa_gate::policy::Decision;
use mfa_gate::request::{RequestHeaders, RequestView};
use mfa_gate::store::MemoryStore;
use serde_json::{json, Value};
use std::borrow::Cow;

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://idp.risk.test";

fn config(extra: Value) -> Config {
    let mut doc = json!({
        "realm": "risk",
        "issuers": [{"issuer": ISSUER, "audiences": ["api"], "profile": "okta",
            "hmac_secret_base64": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            "step_up": {"authorization_endpoint": "https://idp.risk.test/authorize",
                        "client_id": "app", "redirect_uri": "https://app.risk.test/cb"}}],
        "routes": [
            {"name": "admin", "match": {"path_prefix": "/admin"},
             "require": {"level": "phishing_resistant"}, "risk": {}},
            {"name": "api", "match": {"path_prefix": "/api"}, "risk": {}, "browser": "api"}
        ],
        "risk": {
            "posture": {"sources": [{"header": "x-device-posture"}], "values": {"noncompliant": "unmanaged"}},
            "location": {"headers": "geoip"}
        }
    });
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            d.insert(k.clone(), v.clone());
        }
    }
    config::parse(doc.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn claims(sub: &str, amr: &[&str], extra: Value) -> Claims {
    let mut c = json!({"iss": ISSUER, "sub": sub, "sid": format!("sid-{sub}"), "aud": "api",
        "amr": amr, "iat": NOW - 60, "auth_time": NOW - 60, "exp": NOW + 3600});
    if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    match c {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// A request: headers and Envoy connection properties.
struct Req {
    headers: Vec<(String, Vec<u8>)>,
    properties: Vec<(Vec<&'static str>, Vec<u8>)>,
}

impl RequestHeaders for Req {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.header(name)
    }
    fn each_header<'s>(&'s self, visit: &mut dyn FnMut(&'s [u8], &'s [u8])) {
        self.headers.each_header(visit)
    }
}

impl RequestView for Req {
    fn property(&self, path: &[&str]) -> Option<Cow<'_, [u8]>> {
        (self.properties.iter())
            .find(|(p, _)| p.as_slice() == path)
            .map(|(_, v)| Cow::Borrowed(v.as_slice()))
    }
}

fn request(path: &str, extra: &[(&str, &str)]) -> Req {
    let mut headers = vec![
        (":method".to_string(), b"GET".to_vec()),
        (":path".to_string(), path.as_bytes().to_vec()),
        (":authority".to_string(), b"gw.risk.test".to_vec()),
        (":scheme".to_string(), b"https".to_vec()),
    ];
    for (k, v) in extra {
        headers.push((k.to_string(), v.as_bytes().to_vec()));
    }
    Req {
        headers,
        properties: Vec::new(),
    }
}

/// Geo headers as Envoy's geoip filter sets them.
fn from(country: &'static str, city: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![("x-geo-country", country), ("x-geo-city", city)]
}

struct Gate {
    config: Config,
    signals: SharedSignals<MemoryStore>,
    cache: SessionCache,
}

impl Gate {
    fn new(config: Config) -> Self {
        Gate {
            config,
            signals: SharedSignals::new(MemoryStore::default()),
            cache: SessionCache::new(0),
        }
    }

    fn eval(&mut self, req: &Req, claims: &Claims, now: u64) -> Evaluation {
        let request = engine::Request {
            headers: req,
            claims: ClaimsInput::Unverified(claims),
            now_secs: now,
            may_fetch_keys: false,
            revocations: &engine::NothingRevoked,
            signals: &self.signals,
        };
        let keys: Vec<Option<mfa_gate::jwks::KeySet>> = vec![None];
        let e = engine::evaluate(&self.config, &request, &keys, &mut self.cache);
        // As the glue does: a request let through is a sighting.
        if let Some(sighting) = &e.sighting {
            engine::record_sighting(&self.config, &self.signals, sighting, now).unwrap();
        }
        e
    }
}

fn record(e: &Evaluation) -> Value {
    serde_json::from_str(&e.record.as_ref().unwrap().to_json()).unwrap()
}

fn decision(e: &Evaluation) -> Decision {
    e.record.as_ref().unwrap().decision.unwrap()
}

fn signals(e: &Evaluation) -> Vec<(String, i64)> {
    record(e)["risk"]["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["signal"].as_str().unwrap().to_string(),
                s["points"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn status(e: &Evaluation) -> u32 {
    match &e.outcome {
        Outcome::Reply(r) => r.status,
        Outcome::Continue { .. } => 200,
        Outcome::Need(_) => 0,
    }
}

fn header<'e>(e: &'e Evaluation, name: &str) -> Option<&'e str> {
    match &e.outcome {
        Outcome::Reply(r) => r
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str()),
        _ => None,
    }
}

#[test]
fn a_push_user_from_the_usual_place_passes_then_a_new_country_steps_up() {
    let mut gate = Gate::new(config(json!({})));
    let pat = claims("pat", &["pwd", "okta_verify"], json!({}));
    let vienna = from("AT", "Vienna");
    let first = gate.eval(&request("/api/profile", &vienna), &pat, NOW);
    assert_eq!(status(&first), 200, "{:?}", record(&first));
    assert_eq!(
        signals(&first),
        [
            ("assurance".into(), 30),
            ("device_unbound".into(), 0),
            ("posture_unknown".into(), 0),
            ("first_sighting".into(), 0)
        ]
    );
    let again = gate.eval(&request("/api/profile", &vienna), &pat, NOW + 60);
    assert_eq!(status(&again), 200);
    assert_eq!(record(&again)["risk"]["score"], 30);
    assert!(record(&again)["reasons"]
        .as_array()
        .unwrap()
        .contains(&json!("risk_score_ok:30<50")));

    // Bratislava is 55 km from Vienna: no travel, but a country pat was never seen in.
    let bratislava = from("SK", "Bratislava");
    let stepped = gate.eval(&request("/api/profile", &bratislava), &pat, NOW + 120);
    assert_eq!(decision(&stepped), Decision::StepUp, "{}", record(&stepped));
    assert_eq!(status(&stepped), 401);
    let challenge = header(&stepped, "www-authenticate").unwrap();
    assert!(
        challenge.contains("insufficient_user_authentication"),
        "{challenge}"
    );
    assert!(challenge.contains("acr_values=\"phr\""), "{challenge}");
    let r = record(&stepped);
    assert_eq!(r["risk"]["score"], 55);
    assert_eq!(r["risk"]["threshold"], "step_up");
    assert_eq!(r["reasons"][0], "risk_score:55>=50");
    assert!(signals(&stepped).contains(&("new_country".into(), 25)));
    assert!(stepped
        .counters
        .iter()
        .any(|c| c == "mfa_gate.risk.signal.new_country"));
}

#[test]
fn impossible_travel_revokes_when_a_revoke_threshold_is_set() {
    let mut gate = Gate::new(config(json!({
        "revocation": {"max_token_lifetime_secs": 3600},
        "routes": [{"name": "api", "match": {"path_prefix": "/api"},
                    "risk": {"revoke_at": 100}, "browser": "api"}]
    })));
    let pat = claims("pat", &["pwd", "okta_verify"], json!({}));
    let first = gate.eval(&request("/api/x", &from("AT", "Vienna")), &pat, NOW);
    assert_eq!(status(&first), 200);
    // Tokyo ten minutes later: about 9,100 km.
    let tokyo = gate.eval(&request("/api/x", &from("JP", "Tokyo")), &pat, NOW + 600);
    assert_eq!(decision(&tokyo), Decision::Revoke, "{}", record(&tokyo));
    assert_eq!(status(&tokyo), 401);
    let r = record(&tokyo);
    let travel = r["risk"]["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["signal"] == "impossible_travel")
        .cloned()
        .unwrap();
    assert_eq!(travel["points"], 100);
    assert!(
        travel["value"].as_str().unwrap().starts_with("AT->JP:"),
        "{travel}"
    );
    assert_eq!(
        tokyo.revocations.len(),
        1,
        "the session is put in the revocation set"
    );
}

#[test]
fn a_passkey_user_from_a_new_country_is_allowed_but_tor_is_not() {
    let mut gate = Gate::new(config(json!({})));
    let kim = claims("kim", &["pwd", "webauthn", "hwk"], json!({}));
    assert_eq!(
        status(&gate.eval(&request("/api/x", &from("AT", "Vienna")), &kim, NOW)),
        200
    );
    let new_country = gate.eval(
        &request("/api/x", &from("SK", "Bratislava")),
        &kim,
        NOW + 60,
    );
    assert_eq!(status(&new_country), 200, "{}", record(&new_country));
    assert_eq!(record(&new_country)["risk"]["score"], 25);

    // A passkey session through Tor in a new country: 55 is a step-up, but a step-up to a
    // passkey cannot lower it: denied instead of a sign-in loop.
    let mut tor = from("SK", "Bratislava");
    tor.push(("x-geo-anon-tor", "true"));
    let mut gate = Gate::new(config(json!({})));
    gate.eval(&request("/api/x", &from("AT", "Vienna")), &kim, NOW);
    let through_tor = gate.eval(&request("/api/x", &tor), &kim, NOW + 60);
    assert_eq!(
        decision(&through_tor),
        Decision::Deny,
        "{}",
        record(&through_tor)
    );
    assert_eq!(status(&through_tor), 403);
    let r = record(&through_tor);
    assert_eq!(r["risk"]["score"], 55);
    assert!(r["reasons"]
        .as_array()
        .unwrap()
        .contains(&json!("step_up_cannot_help")));
    assert!(signals(&through_tor).contains(&("anonymous_network".into(), 30)));
}

#[test]
fn posture_from_a_trusted_header_and_the_level_rule_both_count() {
    let mut gate = Gate::new(config(json!({})));
    let pat = claims("pat", &["pwd", "okta_verify"], json!({}));
    let mut managed = from("AT", "Vienna");
    managed.push(("x-device-posture", "managed"));
    let e = gate.eval(&request("/api/x", &managed), &pat, NOW);
    assert!(signals(&e).contains(&("posture_managed".into(), -10)));
    assert_eq!(record(&e)["risk"]["score"], 20);

    let mut unmanaged = from("AT", "Vienna");
    unmanaged.push(("x-device-posture", "NonCompliant"));
    let e = gate.eval(&request("/api/x", &unmanaged), &pat, NOW + 1);
    assert!(signals(&e).contains(&("posture_unmanaged".into(), 20)));
    assert_eq!(status(&e), 401, "30 + 20 = 50 steps up");

    // /admin requires phishing-resistant: the level rule steps a push session up whatever
    // the score, and both reasons are recorded.
    let e = gate.eval(&request("/admin/x", &managed), &pat, NOW + 2);
    assert_eq!(decision(&e), Decision::StepUp);
    let reasons = record(&e)["reasons"].clone();
    assert!(reasons
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r.as_str().unwrap().starts_with("level_below_required")));
    assert!(reasons
        .as_array()
        .unwrap()
        .contains(&json!("risk_score_ok:20<50")));
}

#[test]
fn report_only_signals_are_recorded_but_not_enforced() {
    let mut gate = Gate::new(config(json!({
        "risk": {"location": {"headers": "geoip"}, "report_only": ["new_country"]}
    })));
    let pat = claims("pat", &["pwd", "okta_verify"], json!({}));
    gate.eval(&request("/api/x", &from("AT", "Vienna")), &pat, NOW);
    let e = gate.eval(
        &request("/api/x", &from("SK", "Bratislava")),
        &pat,
        NOW + 60,
    );
    assert_eq!(status(&e), 200, "{}", record(&e));
    let r = record(&e);
    assert_eq!(r["risk"]["score"], 30);
    assert_eq!(r["risk"]["score_if_enforced"], 55);
    let new_country = r["risk"]["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["signal"] == "new_country")
        .cloned()
        .unwrap();
    assert_eq!(new_country["report_only"], true);
}

#[test]
fn a_bound_token_is_never_taken_as_a_bearer_token() {
    let mut gate = Gate::new(config(json!({})));
    let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    let bound = claims("pat", &["pwd", "okta_verify"], json!({"cnf": {"jkt": jkt}}));
    // Presented as a bearer token: refused with the DPoP challenge.
    let e = gate.eval(
        &request("/api/x", &[("authorization", "Bearer x.y.z")]),
        &bound,
        NOW,
    );
    assert_eq!(status(&e), 401);
    let challenge = header(&e, "www-authenticate").unwrap();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(record(&e)["reasons"][0], "dpop_scheme_required");
    // With the DPoP scheme but no proof.
    let e = gate.eval(
        &request("/api/x", &[("authorization", "DPoP x.y.z")]),
        &bound,
        NOW,
    );
    assert!(header(&e, "www-authenticate")
        .unwrap()
        .contains("error=\"invalid_dpop_proof\""));
    assert_eq!(record(&e)["reasons"][0], "dpop_proof_missing");
    assert!(e.counters.iter().any(|c| c == "mfa_gate.binding.refused"));

    // A certificate-bound token: the connection's certificate must be the one named.
    let digest_hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let x5t = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg";
    let cert_bound = claims(
        "pat",
        &["pwd", "okta_verify"],
        json!({"cnf": {"x5t#S256": x5t}}),
    );
    let mut on_tls = request("/api/x", &from("AT", "Vienna"));
    let e = gate.eval(&on_tls, &cert_bound, NOW);
    assert_eq!(record(&e)["reasons"][0], "certificate_binding_missing");
    on_tls.properties.push((
        vec!["connection", "sha256_peer_certificate_digest"],
        digest_hex.as_bytes().to_vec(),
    ));
    let e = gate.eval(&on_tls, &cert_bound, NOW);
    assert_eq!(status(&e), 200, "{}", record(&e));
    assert!(signals(&e).contains(&("device_bound".into(), -10)));
    assert!(e.counters.iter().any(|c| c == "mfa_gate.binding.mtls"));
    on_tls.properties[0].1 = b"00".repeat(32);
    let e = gate.eval(&on_tls, &cert_bound, NOW);
    assert_eq!(record(&e)["reasons"][0], "certificate_binding_mismatch");

    // A malformed cnf is refused, never read as "unbound".
    let odd = claims("pat", &["pwd"], json!({"cnf": {"jwk": {"kty": "EC"}}}));
    let e = gate.eval(&request("/api/x", &[]), &odd, NOW);
    assert_eq!(status(&e), 401);
    assert_eq!(record(&e)["reasons"][0], "cnf_unsupported");
}

#[test]
fn a_refused_request_is_not_a_sighting() {
    let mut gate = Gate::new(config(json!({})));
    let pat = claims("pat", &["pwd", "okta_verify"], json!({}));
    assert_eq!(
        status(&gate.eval(&request("/api/x", &from("AT", "Vienna")), &pat, NOW)),
        200
    );
    // Stepped up from Bratislava: not let in, so SK is not learnt...
    let stepped = gate.eval(
        &request("/api/x", &from("SK", "Bratislava")),
        &pat,
        NOW + 60,
    );
    assert_eq!(status(&stepped), 401);
    assert!(stepped.sighting.is_none());
    // ... and asking again is stepped up again, not let in as a known country.
    let again = gate.eval(
        &request("/api/x", &from("SK", "Bratislava")),
        &pat,
        NOW + 61,
    );
    assert_eq!(status(&again), 401, "{}", record(&again));
    // A stolen bound token refused from Tokyo does not move the owner's last place.
    let bound = claims(
        "pat",
        &["pwd", "okta_verify"],
        json!({"cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}),
    );
    let thief = gate.eval(&request("/api/x", &from("JP", "Tokyo")), &bound, NOW + 62);
    assert_eq!(status(&thief), 401);
    let owner = gate.eval(&request("/api/x", &from("AT", "Vienna")), &pat, NOW + 63);
    assert_eq!(status(&owner), 200, "{}", record(&owner));
}

#[test]
fn risk_configuration_errors_name_the_field() {
    let typo = json!({"risk": {"points": {"new_contry": 5}}});
    let errors = config::parse(typo.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("risk.points: unknown field `new_contry`"),
        "{errors}"
    );
    let bad = json!({
        "issuers": [{"issuer": ISSUER, "audiences": ["api"],
                     "hmac_secret_base64": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}],
        "routes": [{"name": "api", "match": {"path_prefix": "/api"}, "risk": {"revoke_at": 90}}],
        "risk": {"report_only": ["nope"],
                 "posture": {"sources": [{"claim": "a"}, {"claim": "b"}]},
                 "location": {"headers": "maxmind", "max_speed_kmh": 5}},
        "binding": {"dpop": {"origins": ["https://gw.example/path"]}}
    });
    let errors = config::parse(bad.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    for expected in [
        "risk.report_only[0]: unknown signal \"nope\"",
        "risk.location.headers: unknown preset \"maxmind\"",
        "risk.location.max_speed_kmh: 5 is out of range",
        "binding.dpop.origins[0]",
        "risk.posture.sources[1].claim: only one claim source is read",
        "routes[0].risk.revoke_at: a revoke threshold needs a revocation section",
    ] {
        assert!(errors.contains(expected), "{expected:?} not in:\n{errors}");
    }
}

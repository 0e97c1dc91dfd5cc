//! Per-request cost of mfa-gate through the ABI, measured in one run beside the no-op
//! fixture filter (the floor), and uncached verification per algorithm in wasm beside the
//! same engine compiled natively. `scripts/bench.sh` turns the results into BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, Criterion};
use jwt_simple::prelude::*;
use mfa_gate::engine::{self, ClaimsInput, Request, SessionCache};
use mfa_gate_e2e::{bench_request, ok_upstream};
use mfa_gate_host::{Clusters, DownstreamRequest, Host, HostOptions};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::time::Duration;

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://idp.example.test";
const AUD: &str = "api://orders";

fn wasm(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm32-wasip1/release")
        .join(name);
    assert!(
        p.exists(),
        "{} missing: build it first (make wasm)",
        p.display()
    );
    p
}

fn b64(bytes: &[u8]) -> String {
    use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
}

fn claims() -> JWTClaims<Map<String, Value>> {
    let mut custom = Map::new();
    custom.insert("amr".into(), json!(["pwd", "pop"]));
    custom.insert("auth_time".into(), json!(NOW - 10));
    custom.insert("sid".into(), json!("sid-bench"));
    let mut c = Claims::with_custom_claims(custom, jwt_simple::prelude::Duration::from_secs(3600));
    c.issued_at = Some(jwt_simple::prelude::Duration::from_secs(NOW - 10));
    c.expires_at = Some(jwt_simple::prelude::Duration::from_secs(NOW + 3600));
    c.invalid_before = None;
    c.issuer = Some(ISS.into());
    c.subject = Some("bench-user".into());
    c.audiences = Some(Audiences::AsString(AUD.into()));
    c
}

fn rsa_jwk(alg: &str, kid: &str, c: RSAPublicKeyComponents) -> Value {
    json!({"kty":"RSA","alg":alg,"use":"sig","kid":kid,"n":b64(&c.n),"e":b64(&c.e)})
}

/// (algorithm, token, public JWK)
fn tokens() -> Vec<(&'static str, String, Value)> {
    let mut out = Vec::new();
    let k = RS256KeyPair::generate(2048).unwrap().with_key_id("rs256");
    out.push((
        "RS256",
        k.sign(claims()).unwrap(),
        rsa_jwk("RS256", "rs256", k.public_key().to_components()),
    ));
    let k = PS256KeyPair::generate(2048).unwrap().with_key_id("ps256");
    out.push((
        "PS256",
        k.sign(claims()).unwrap(),
        rsa_jwk("PS256", "ps256", k.public_key().to_components()),
    ));
    let k = ES256KeyPair::generate().with_key_id("es256");
    out.push((
        "ES256",
        k.sign(claims()).unwrap(),
        serde_json::from_str(&k.public_key().to_jwk()).unwrap(),
    ));
    let k = ES384KeyPair::generate().with_key_id("es384");
    out.push((
        "ES384",
        k.sign(claims()).unwrap(),
        serde_json::from_str(&k.public_key().to_jwk()).unwrap(),
    ));
    let k = Ed25519KeyPair::generate().with_key_id("eddsa");
    out.push((
        "EdDSA",
        k.sign(claims()).unwrap(),
        serde_json::from_str(&k.public_key().to_jwk()).unwrap(),
    ));
    out
}

fn config(jwks: &[Value], cache_entries: usize) -> String {
    json!({
        "issuers":[{"issuer":ISS,"audiences":[AUD],"jwks":{"keys":jwks},"profile":"okta",
                    "algorithms":["RS256","PS256","ES256","ES384","EdDSA"]}],
        "token_cache_entries": cache_entries,
        "routes":[{"name":"admin","match":{"path_prefix":"/admin"},"require":{"level":"phishing_resistant"}},
                  {"name":"public","match":{"path_prefix":"/public"}}]
    })
    .to_string()
}

fn metadata_config() -> String {
    json!({"jwt_authn":{"payload_in_metadata":"jwt_payload"},"issuers":[{"issuer":ISS,"profile":"okta"}],
           "routes":[{"name":"admin","match":{"path_prefix":"/admin"},"require":{"level":"phishing_resistant"}}]})
    .to_string()
}

fn host(wasm_file: &str, config: &str) -> Host {
    let options = HostOptions {
        workers: 1,
        plugin_configuration: config.as_bytes().to_vec(),
        ..HostOptions::default()
    };
    Host::load(&wasm(wasm_file), options, Clusters::new()).unwrap()
}

fn run(host: &mut Host, req: &DownstreamRequest, want: u16) {
    let ex = host.handle(req.clone(), &mut ok_upstream);
    assert_eq!(ex.response.status, want);
}

fn per_request(c: &mut Criterion) {
    let toks = tokens();
    let (_, eddsa_token, _) = toks.iter().find(|t| t.0 == "EdDSA").unwrap();
    let jwks: Vec<Value> = toks.iter().map(|t| t.2.clone()).collect();
    let admin = bench_request("/admin/users", Some(eddsa_token));

    let mut g = c.benchmark_group("per_request");
    let mut noop = host("noop_filter.wasm", "");
    g.bench_function("noop_filter", |b| b.iter(|| run(&mut noop, &admin, 200)));
    let mut gate = host("mfa_gate.wasm", &config(&jwks, 10_000));
    let public = bench_request("/public/logo.png", None);
    g.bench_function("mfa_gate_public_route", |b| {
        b.iter(|| run(&mut gate, &public, 200))
    });
    g.bench_function("mfa_gate_cache_hit", |b| {
        b.iter(|| run(&mut gate, &admin, 200))
    });
    let mut meta = host("mfa_gate.wasm", &metadata_config());
    let mut with_payload = bench_request("/admin/users", None);
    let payload: Value = serde_json::to_value(claims()).unwrap();
    with_payload.filter_metadata.insert(
        "envoy.filters.http.jwt_authn".into(),
        json!({"jwt_payload": payload}),
    );
    g.bench_function("mfa_gate_jwt_authn_metadata", |b| {
        b.iter(|| run(&mut meta, &with_payload, 200))
    });
    // The floor for the jwt_authn case: the same request (metadata and all) through no-op.
    g.bench_function("noop_filter_jwt_authn_request", |b| {
        b.iter(|| run(&mut noop, &with_payload, 200))
    });
    g.finish();
}

fn uncached_verification(c: &mut Criterion) {
    let toks = tokens();
    let jwks: Vec<Value> = toks.iter().map(|t| t.2.clone()).collect();
    let cfg = config(&jwks, 0);
    let parsed = mfa_gate::config::parse(cfg.as_bytes()).unwrap();
    let keys = vec![parsed.issuers[0].inline_keys.clone()];
    let mut gate = host("mfa_gate.wasm", &cfg);
    let mut g = c.benchmark_group("uncached_verification");
    for (alg, token, _) in &toks {
        let req = bench_request("/admin/users", Some(token));
        g.bench_function(format!("wasm/{alg}"), |b| {
            b.iter(|| run(&mut gate, &req, 200))
        });
        let headers: Vec<(String, Vec<u8>)> = req
            .headers
            .iter()
            .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.clone()))
            .collect();
        let mut cache = SessionCache::new(0);
        g.bench_function(format!("native/{alg}"), |b| {
            b.iter(|| {
                let request = Request {
                    headers: &headers,
                    claims: ClaimsInput::Token,
                    now_secs: NOW,
                    may_fetch_keys: false,
                    revocations: &mfa_gate::engine::NothingRevoked,
                    signals: &mfa_gate::engine::SharedSignals::new(
                        mfa_gate::store::MemoryStore::default(),
                    ),
                };
                let e = engine::evaluate(&parsed, &request, &keys, &mut cache);
                assert!(matches!(e.outcome, engine::Outcome::Continue { .. }));
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = per_request, uncached_verification
}
criterion_main!(benches);

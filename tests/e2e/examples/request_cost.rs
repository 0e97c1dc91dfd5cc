//! Runs N identical requests of one case through the host, for instruction counting with
//! `valgrind --tool=callgrind` (deterministic where wall-clock timing is not): the
//! difference between two N gives the cost of one request. Used by scripts/bench.sh.
//!
//!     request_cost <noop|noop_jwt_authn|noop_signals|noop_push|public|cache_hit|
//!                   cache_hit_revocation|cache_hit_signals|cache_hit_push|jwt_authn|push_local|push_service> <N>
//!
//! `cache_hit_revocation` is `cache_hit` with a revocation section: the shared revocation
//! set is checked on every request (one shared-data read while it is unchanged).
//! `cache_hit_signals` is `cache_hit` on a rule judged on its risk score with every request
//! signal on: the binding check, posture (a certificate rule, then a trusted header), location
//! from geoip headers against the subject's sightings in shared data, and the score.
//!
//! `push_local` and `push_service` are prompts on a guarded Duo push endpoint (`POST
//! /auth/v2/auth`, a form body, the provider's JSON answer read back), each from another
//! user and address: counted in shared data, or by a rate-limit service answering over the
//! host's gRPC callouts at once (the filter's encode, callout and decode, no network);
//! `noop_push` sends the same prompts through the no-op filter.
//!
//! `noop` sends the bearer request of `cache_hit` through the no-op filter; `noop_jwt_authn`
//! sends the jwt_authn request (payload in dynamic metadata) through it: each filter case is
//! compared with the no-op filter given the same request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mfa_gate_e2e::{bench_request, ok_upstream};
use mfa_gate_host::{Clusters, Host, HostOptions};
use serde_json::json;
use std::path::PathBuf;

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://idp.example.test";

fn b64(bytes: &[u8]) -> String {
    use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = args.get(1).map(String::as_str).unwrap_or("noop");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let key = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7; 32]));
    let jwk = json!({"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"k","x":b64(key.pk.as_ref())});
    let claims = json!({"iss":ISS,"aud":"api","sub":"bench","sid":"s","iat":NOW-10,"auth_time":NOW-10,"exp":NOW+3600,"amr":["pwd","pop"]});
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"EdDSA","typ":"JWT","kid":"k"}"#),
        b64(claims.to_string().as_bytes())
    );
    let token = format!(
        "{input}.{}",
        b64(key.sk.sign(input.as_bytes(), None).as_ref())
    );
    let gate_config = json!({"issuers":[{"issuer":ISS,"audiences":["api"],"jwks":{"keys":[jwk]},"profile":"okta"}],
        "routes":[{"name":"admin","match":{"path_prefix":"/admin"},"require":{"level":"phishing_resistant"}},
                  {"name":"public","match":{"path_prefix":"/public"}}]});
    let meta_config = json!({"jwt_authn":{"payload_in_metadata":"jwt_payload"},"issuers":[{"issuer":ISS,"profile":"okta"}],
        "routes":[{"name":"admin","match":{"path_prefix":"/admin"},"require":{"level":"phishing_resistant"}}]});
    if let Some(native) = case.strip_prefix("native_") {
        let config = mfa_gate::config::parse(gate_config.to_string().as_bytes()).unwrap();
        let keys = vec![config.issuers[0].inline_keys.clone()];
        let mut cache = mfa_gate::engine::SessionCache::new(10_000);
        let path = if native == "public" {
            "/public/logo.png"
        } else {
            "/admin/users"
        };
        let headers: Vec<(String, Vec<u8>)> = vec![
            (":method".into(), b"GET".to_vec()),
            (":path".into(), path.as_bytes().to_vec()),
            (":authority".into(), b"app.example.test".to_vec()),
            (
                "authorization".into(),
                format!("Bearer {token}").into_bytes(),
            ),
        ];
        for _ in 0..n {
            let request = mfa_gate::engine::Request {
                headers: &headers,
                claims: mfa_gate::engine::ClaimsInput::Token,
                now_secs: NOW,
                may_fetch_keys: false,
                revocations: &mfa_gate::engine::NothingRevoked,
                signals: &mfa_gate::engine::SharedSignals::new(
                    mfa_gate::store::MemoryStore::default(),
                ),
            };
            let e = mfa_gate::engine::evaluate(&config, &request, &keys, &mut cache);
            if let Some(record) = &e.record {
                std::hint::black_box(record.to_json());
            }
            std::hint::black_box(e);
        }
        return;
    }
    let signals_config = {
        let mut config = gate_config.clone();
        config["routes"][0]["risk"] = json!({});
        config["risk"] = json!({
            "posture": {"sources": [
                {"certificate": {"uri_san_prefixes": ["spiffe://devices.example/"], "posture": "managed"}},
                {"header": "x-device-posture"}]},
            "location": {"headers": "geoip"}
        });
        config
    };
    if let Some(push) = case
        .strip_prefix("push_")
        .or(case.strip_prefix("noop_push"))
    {
        return push_case(case, push, n, &gate_config);
    }
    let (wasm, config, path) = match case {
        "noop" | "noop_jwt_authn" => ("noop_filter.wasm", String::new(), "/admin/users"),
        "public" => ("mfa_gate.wasm", gate_config.to_string(), "/public/logo.png"),
        "cache_hit" => ("mfa_gate.wasm", gate_config.to_string(), "/admin/users"),
        "cache_hit_revocation" => {
            let mut config = gate_config.clone();
            config["revocation"] =
                json!({"backchannel_logout": {"path": "/.bcl", "audiences": ["api"]}});
            ("mfa_gate.wasm", config.to_string(), "/admin/users")
        }
        "cache_hit_signals" => ("mfa_gate.wasm", signals_config.to_string(), "/admin/users"),
        "cache_hit_push" => {
            // A gate beside a guarded push endpoint: every gated request looks its session's
            // push user up in the fatigue marks (one shared-data read while they are unchanged).
            let mut config = gate_config.clone();
            config["push_prompts"] = json!({"endpoints": [{"name": "duo", "provider": "duo"}]});
            ("mfa_gate.wasm", config.to_string(), "/admin/users")
        }
        "noop_signals" => ("noop_filter.wasm", String::new(), "/admin/users"),
        "jwt_authn" => ("mfa_gate.wasm", meta_config.to_string(), "/admin/users"),
        other => panic!("unknown case {other}"),
    };
    // MFA_GATE_WASM_DIR points at another build (e.g. an unstripped one, for profiling).
    let dir = std::env::var_os("MFA_GATE_WASM_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm32-wasip1/release"),
        PathBuf::from,
    );
    let file = dir.join(wasm);
    let options = HostOptions {
        workers: 1,
        plugin_configuration: config.into_bytes(),
        ..HostOptions::default()
    };
    let mut host = Host::load(&file, options, Clusters::new()).unwrap();
    let jwt_authn = case.ends_with("jwt_authn");
    let mut request = bench_request(path, (!jwt_authn).then_some(token.as_str()));
    if case.ends_with("_signals") {
        for (name, value) in [
            ("x-geo-country", "AT"),
            ("x-geo-city", "Vienna"),
            ("x-geo-asn", "64501"),
            ("x-device-posture", "managed"),
        ] {
            request
                .headers
                .push((name.as_bytes().to_vec(), value.as_bytes().to_vec()));
        }
    }
    if jwt_authn {
        request.filter_metadata.insert(
            "envoy.filters.http.jwt_authn".into(),
            json!({"jwt_payload": claims}),
        );
    }
    for _ in 0..n {
        let ex = host.handle(request.clone(), &mut ok_upstream);
        assert_eq!(ex.response.status, 200, "{case}");
        host.take_logs();
    }
    // With MFA_GATE_HOST_PROFILE set, the host sampled guest stacks: print them.
    if std::env::var_os("MFA_GATE_HOST_PROFILE").is_some() {
        eprint!("{}", mfa_gate_host::folded_stacks());
    }
}

/// Prompts on a guarded push endpoint (see the module doc).
fn push_case(case: &str, counting: &str, n: usize, gate_config: &serde_json::Value) {
    use mfa_gate_host::{Cluster, GrpcReply, HttpResponse};
    let mut config = gate_config.clone();
    let counting_config = match counting {
        "service" => json!({"mode": "service", "cluster": "ratelimit"}),
        _ => json!({"mode": "local"}),
    };
    config["push_prompts"] = json!({
        "endpoints": [{"name": "duo", "provider": "duo"}],
        "counting": counting_config,
    });
    let mut clusters = Clusters::new();
    // RateLimitResponse { overall_code: OK, statuses: [{ code: OK, limit_remaining: 2 }] }.
    let ok = [0x08, 0x01, 0x12, 0x04, 0x08, 0x01, 0x18, 0x02];
    clusters.add(
        "ratelimit",
        Cluster::Grpc(Box::new(move |_| GrpcReply::message(&ok))),
    );
    let wasm = if case == "noop_push" {
        "noop_filter.wasm"
    } else {
        "mfa_gate.wasm"
    };
    let dir = std::env::var_os("MFA_GATE_WASM_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm32-wasip1/release"),
        PathBuf::from,
    );
    let options = HostOptions {
        workers: 1,
        plugin_configuration: config.to_string().into_bytes(),
        allow_on_headers_stop_iteration: true,
        ..HostOptions::default()
    };
    let mut host = Host::load(&dir.join(wasm), options, clusters).unwrap();
    let mut duo = |_: &mfa_gate_host::UpstreamRequest| {
        Ok(HttpResponse {
            status: 200,
            headers: vec![(b"content-type".to_vec(), b"application/json".to_vec())],
            body: br#"{"stat":"OK","response":{"result":"deny","status":"deny","status_msg":"Login request denied."}}"#.to_vec(),
            trailers: vec![],
        })
    };
    for i in 0..n {
        let mut request = bench_request("/auth/v2/auth", None);
        request.headers[0].1 = b"POST".to_vec();
        request.headers.push((
            b"content-type".to_vec(),
            b"application/x-www-form-urlencoded".to_vec(),
        ));
        request.body =
            format!("username=user{i}%40example.com&factor=push&device=auto").into_bytes();
        request.source_address = Some(format!("198.51.{}.{}:5000", (i / 250) % 250, i % 250));
        let ex = host.handle(request, &mut duo);
        assert_eq!(
            ex.response.status, 200,
            "{case}: {:?}",
            ex.response_code_details
        );
        host.take_logs();
    }
}

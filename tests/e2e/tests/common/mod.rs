//! Shared fixtures for the end-to-end tests: one fixture key set minted at test time,
//! token minting with full control over header and payload bytes, and a builder that runs
//! the release `mfa_gate.wasm` in mfa-gate-host.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use mfa_gate_host::{
    Cluster, ClusterReply, ClusterRequest, Clusters, DownstreamRequest, Exchange, Host,
    HostOptions, HttpResponse, UpstreamRequest,
};
use once_cell::sync::Lazy;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The virtual clock's start (ms) and the same instant in seconds.
pub const START_MS: u64 = 1_700_000_000_000;
pub const NOW: u64 = START_MS / 1000;
pub const ISS: &str = "https://idp.example.test";
pub const AUD: &str = "api://orders";

/// The release filter; tests fail with a clear message if it was not built.
pub fn wasm_path() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm32-wasip1/release/mfa_gate.wasm");
    assert!(
        path.exists(),
        "{} is missing: build it first (make wasm)",
        path.display()
    );
    path
}

pub fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
}

/// An Ed25519 signing key with a kid; signs arbitrary header/payload bytes.
pub struct Signer {
    pub kid: String,
    key: ed25519_compact::KeyPair,
}

impl Signer {
    pub fn new(kid: &str) -> Self {
        Signer {
            kid: kid.to_string(),
            key: ed25519_compact::KeyPair::generate(),
        }
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        json!({"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":self.kid,"x":b64(self.key.pk.as_ref())})
    }

    /// Signs `header.payload` exactly as given (so tests can send duplicate keys, odd types).
    pub fn sign_raw(&self, header_json: &str, payload_json: &str) -> String {
        let input = format!(
            "{}.{}",
            b64(header_json.as_bytes()),
            b64(payload_json.as_bytes())
        );
        let sig = self.key.sk.sign(input.as_bytes(), None);
        format!("{input}.{}", b64(sig.as_ref()))
    }

    /// A token with the standard header for this key.
    pub fn token(&self, claims: &Value) -> String {
        let header = json!({"alg":"EdDSA","typ":"JWT","kid":self.kid}).to_string();
        self.sign_raw(&header, &claims.to_string())
    }
}

pub static KEY: Lazy<Signer> = Lazy::new(|| Signer::new("ed-1"));
pub static ROTATED_KEY: Lazy<Signer> = Lazy::new(|| Signer::new("ed-2"));

pub fn jwks(keys: &[&Signer]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}).to_string()
}

/// Standard claims: valid now for an hour, issued 10 s ago, with `amr`.
pub fn claims(sub: &str, amr: &[&str]) -> Value {
    json!({"iss":ISS,"aud":AUD,"sub":sub,"sid":format!("sid-{sub}"),"iat":NOW-10,"auth_time":NOW-10,"exp":NOW+3600,"amr":amr})
}

/// A configuration with one issuer (keys inline unless `issuer_extra` says otherwise) and
/// the standard routes: /admin needs phishing-resistant (max age 900 s), /reports needs
/// otp (deny when insufficient), /public is public; anything else needs a valid token.
pub fn config_with(issuer_extra: Value, root_extra: Value) -> String {
    let mut issuer = json!({"issuer":ISS,"audiences":[AUD],"jwks":serde_json::from_str::<Value>(&jwks(&[&KEY])).unwrap(),"profile":"generic"});
    for (k, v) in issuer_extra.as_object().unwrap() {
        if v.is_null() {
            issuer.as_object_mut().unwrap().remove(k);
        } else {
            issuer[k] = v.clone();
        }
    }
    let mut root = json!({
        "issuers":[issuer],
        "token_sources":[{"authorization_bearer":true},{"cookie":"session"}],
        "routes":[
            {"name":"admin","match":{"path_prefix":"/admin"},"require":{"level":"phishing_resistant","max_auth_age_secs":900}},
            {"name":"reports","match":{"path_prefix":"/reports"},"require":{"level":"otp"},"on_insufficient":"deny"},
            {"name":"public","match":{"path_prefix":"/public"}}
        ]
    });
    for (k, v) in root_extra.as_object().unwrap() {
        root[k] = v.clone();
    }
    root.to_string()
}

pub fn config() -> String {
    config_with(json!({}), json!({}))
}

/// Counts and answers for one in-process cluster.
#[derive(Clone, Default)]
pub struct ClusterScript {
    pub replies: Arc<Mutex<Vec<ClusterReply>>>,
    pub calls: Arc<Mutex<Vec<ClusterRequest>>>,
}

impl ClusterScript {
    /// Replies served in order; the last one repeats.
    pub fn new(replies: Vec<ClusterReply>) -> Self {
        ClusterScript {
            replies: Arc::new(Mutex::new(replies)),
            calls: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn set(&self, replies: Vec<ClusterReply>) {
        *self.replies.lock().unwrap() = replies;
    }

    pub fn call_count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    pub fn cluster(&self) -> Cluster {
        let me = self.clone();
        Cluster::Handler(Box::new(move |req: &ClusterRequest| {
            me.calls.lock().unwrap().push(req.clone());
            let mut replies = me.replies.lock().unwrap();
            if replies.len() > 1 {
                replies.remove(0)
            } else {
                replies[0].clone()
            }
        }))
    }
}

pub fn ok_json(body: &str) -> ClusterReply {
    ClusterReply::Response(HttpResponse {
        status: 200,
        headers: vec![(b"content-type".to_vec(), b"application/json".to_vec())],
        body: body.as_bytes().to_vec(),
        trailers: vec![],
    })
}

pub fn status_reply(status: u16, body: &str) -> ClusterReply {
    ClusterReply::Response(HttpResponse {
        status,
        headers: vec![],
        body: body.as_bytes().to_vec(),
        trailers: vec![],
    })
}

/// The filter running in the host.
pub struct Gate {
    pub host: Host,
}

impl Gate {
    pub fn new(config: &str) -> Gate {
        Gate::with_clusters(config, Clusters::new(), 2)
    }

    pub fn with_clusters(config: &str, clusters: Clusters, workers: usize) -> Gate {
        let options = HostOptions {
            workers,
            plugin_configuration: config.as_bytes().to_vec(),
            // As the shipped bootstraps configure the filter (push and revocation
            // endpoints read their bodies while the headers wait).
            allow_on_headers_stop_iteration: true,
            ..HostOptions::default()
        };
        match Host::load(&wasm_path(), options, clusters) {
            Ok(host) => Gate { host },
            Err(e) => panic!("host failed to load the filter: {e}"),
        }
    }

    /// Sends a request; the upstream echoes 200.
    pub fn send(&mut self, request: DownstreamRequest) -> Exchange {
        let mut upstream = |_req: &UpstreamRequest| -> Result<HttpResponse, String> {
            Ok(HttpResponse {
                status: 200,
                headers: vec![(b"content-type".to_vec(), b"text/plain".to_vec())],
                body: b"upstream".to_vec(),
                trailers: vec![],
            })
        };
        let exchange = self.host.handle(request, &mut upstream);
        for w in 0..self.host.workers() {
            if let Some(trap) = self.host.worker_failed(w) {
                let critical: Vec<_> = self
                    .host
                    .logs()
                    .into_iter()
                    .filter(|l| l.level == "critical" || l.level == "error")
                    .collect();
                panic!("worker {w} trapped: {trap}; error logs: {critical:?}");
            }
        }
        exchange
    }

    pub fn get(&mut self, path: &str, headers: &[(&str, &[u8])]) -> Exchange {
        self.send(request("GET", path, headers))
    }

    pub fn get_with_token(&mut self, path: &str, token: &str) -> Exchange {
        let auth = format!("Bearer {token}");
        self.get(path, &[("authorization", auth.as_bytes())])
    }

    pub fn metric(&self, name: &str) -> i64 {
        self.host.metric(name).unwrap_or(0)
    }
}

pub fn request(method: &str, path: &str, headers: &[(&str, &[u8])]) -> DownstreamRequest {
    let mut list: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b":method".to_vec(), method.as_bytes().to_vec()),
        (b":path".to_vec(), path.as_bytes().to_vec()),
        (b":authority".to_vec(), b"app.example.test".to_vec()),
        (b":scheme".to_vec(), b"https".to_vec()),
    ];
    for (k, v) in headers {
        list.push((k.as_bytes().to_vec(), v.to_vec()));
    }
    DownstreamRequest {
        headers: list,
        source_address: Some("192.0.2.10:40000".to_string()),
        ..DownstreamRequest::default()
    }
}

/// The value of a response header.
pub fn header(exchange: &Exchange, name: &str) -> Option<String> {
    exchange
        .response
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

/// The value of a header as the upstream received it (None if the request never got there).
pub fn upstream_header(exchange: &Exchange, name: &str) -> Option<String> {
    exchange.upstream_request.as_ref().and_then(|u| {
        u.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    })
}

/// The decision record the filter logged for this exchange.
pub fn decision(exchange: &Exchange) -> Value {
    let line = exchange
        .logs
        .iter()
        .find_map(|l| {
            l.message
                .split_once("decision ")
                .map(|(_, json)| json.to_string())
        })
        .unwrap_or_else(|| panic!("no decision record in logs: {:?}", exchange.logs));
    serde_json::from_str(&line).unwrap()
}

/// The reasons of the decision record.
pub fn reasons(exchange: &Exchange) -> Vec<String> {
    decision(exchange)["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

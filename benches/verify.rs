//! Native cost of token verification per algorithm (uncached), and of a token-cache hit.
//! The lead compares these with the same work inside the wasm filter.
//!
//! Run: `cargo bench -p mfa-gate --bench verify` (add `-- --quick` for a short run).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use jwt_simple::prelude::*;
use mfa_gate::jwks::KeySet;
use mfa_gate::token_cache::TokenCache;
use mfa_gate::verify::{verify, Algorithm, VerifiedToken, VerifyOptions};
use serde_json::{json, Map, Value};

const NOW: u64 = 1_800_000_000;

fn claims() -> JWTClaims<Map<String, Value>> {
    let payload = json!({
        "iss": "https://idp.example.com", "aud": "mfa-gate", "sub": "alice",
        "iat": NOW - 10, "exp": NOW + 300, "amr": ["pwd", "hwk"], "acr": "phr",
        "email": "alice@example.com", "groups": ["admins", "dev"],
    });
    JWTClaims {
        issued_at: None,
        expires_at: None,
        invalid_before: None,
        issuer: None,
        subject: None,
        audiences: None,
        jwt_id: None,
        nonce: None,
        custom: payload.as_object().unwrap().clone(),
    }
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap()
}

fn with_kid(jwk: &str, kid: &str) -> Value {
    let mut v: Value = serde_json::from_str(jwk).unwrap();
    v["kid"] = json!(kid);
    v
}

/// One token per algorithm, and the key set that verifies them all.
fn fixture() -> (Vec<(Algorithm, String)>, KeySet) {
    let rsa = RS256KeyPair::generate(2048).unwrap();
    let der = rsa.to_der().unwrap();
    let c = rsa.public_key().to_components();
    let es256 = ES256KeyPair::generate().with_key_id("ec-256");
    let es384 = ES384KeyPair::generate().with_key_id("ec-384");
    let ed = Ed25519KeyPair::generate().with_key_id("ed");
    let secret = [42u8; 64];
    let jwks = json!({"keys": [
        {"kty": "RSA", "kid": "rsa", "n": b64(&c.n), "e": b64(&c.e)},
        with_kid(&es256.public_key().to_jwk(), "ec-256"),
        with_kid(&es384.public_key().to_jwk(), "ec-384"),
        with_kid(&ed.public_key().to_jwk(), "ed"),
    ]});
    let mut keys = KeySet::from_jwks_json(jwks.to_string().as_bytes()).unwrap();
    keys.try_add_hmac_secret(&secret).unwrap();
    let tokens = vec![
        (
            Algorithm::RS256,
            rsa.with_key_id("rsa").sign(claims()).unwrap(),
        ),
        (
            Algorithm::PS256,
            PS256KeyPair::from_der(&der)
                .unwrap()
                .with_key_id("rsa")
                .sign(claims())
                .unwrap(),
        ),
        (Algorithm::ES256, es256.sign(claims()).unwrap()),
        (Algorithm::ES384, es384.sign(claims()).unwrap()),
        (Algorithm::EdDSA, ed.sign(claims()).unwrap()),
        (
            Algorithm::HS256,
            HS256Key::from_bytes(&secret)
                .authenticate(claims())
                .unwrap(),
        ),
    ];
    (tokens, keys)
}

fn options() -> VerifyOptions {
    VerifyOptions {
        issuer: "https://idp.example.com".into(),
        audiences: vec!["mfa-gate".into()],
        algorithms: Algorithm::ALL.to_vec(),
        clock_skew_secs: 60,
        max_token_bytes: 8192,
    }
}

fn bench_verify(c: &mut Criterion) {
    let (tokens, keys) = fixture();
    let opts = options();
    let mut group = c.benchmark_group("verify_uncached");
    for (alg, token) in &tokens {
        assert!(verify(token.as_bytes(), &keys, &opts, NOW).is_ok());
        group.bench_function(alg.as_str(), |b| {
            b.iter(|| verify(black_box(token.as_bytes()), &keys, &opts, NOW).unwrap())
        });
    }
    group.finish();

    let (_, token) = &tokens[0];
    let verified = verify(token.as_bytes(), &keys, &opts, NOW).unwrap();
    let mut cache: TokenCache<VerifiedToken> = TokenCache::new(10_000);
    for i in 0u32..9_999 {
        cache.insert(&i.to_le_bytes(), verified.clone(), NOW + 300, NOW);
    }
    cache.insert(token.as_bytes(), verified.clone(), NOW + 300, NOW);
    c.bench_function("token_cache_hit_10k_entries", |b| {
        b.iter(|| cache.get(black_box(token.as_bytes()), NOW).unwrap())
    });
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);

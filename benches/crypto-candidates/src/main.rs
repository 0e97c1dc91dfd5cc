//! Times one signature check per algorithm and candidate; prints one JSON line per
//! measurement: `{"candidate": ..., "alg": ..., "us": ...}` (µs per verification, the mean of
//! N checks after one warm-up check). The tokens are signed here, once, with jwt-simple.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark program

use jwt_simple::prelude::*;
use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder};
use std::time::Instant;

fn time<F: FnMut() -> bool>(candidate: &str, alg: &str, n: u32, mut verify: F) {
    assert!(verify(), "{candidate} {alg}: the signature must verify");
    let start = Instant::now();
    for _ in 0..n {
        assert!(verify());
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("{{\"candidate\": \"{candidate}\", \"alg\": \"{alg}\", \"us\": {us:.1}}}");
}

/// (signing input, signature bytes) of a compact JWS.
fn split(token: &str) -> (&str, Vec<u8>) {
    let dot = token.rfind('.').unwrap();
    let signature = Base64UrlSafeNoPadding::decode_to_vec(&token[dot + 1..], None).unwrap();
    (&token[..dot], signature)
}

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let claims = Claims::create(Duration::from_hours(1));

    let rsa = RS256KeyPair::generate(2048).unwrap();
    let token = rsa.sign(claims.clone()).unwrap();
    let key = rsa.public_key();
    time("jwt-simple", "RS256", n, || key.verify_token::<NoCustomClaims>(&token, None).is_ok());
    let parts = key.to_components();
    let (message, signature) = split(&token);
    time("ring", "RS256", n, || {
        ring::signature::RsaPublicKeyComponents { n: &parts.n, e: &parts.e }
            .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, message.as_bytes(), &signature)
            .is_ok()
    });

    let ec = ES256KeyPair::generate();
    let token = ec.sign(claims.clone()).unwrap();
    let key = ec.public_key();
    time("jwt-simple", "ES256", n, || key.verify_token::<NoCustomClaims>(&token, None).is_ok());
    let point = key.public_key().to_bytes_uncompressed();
    let (message, signature) = split(&token);
    time("ring", "ES256", n, || {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point)
            .verify(message.as_bytes(), &signature)
            .is_ok()
    });

    let ed = Ed25519KeyPair::generate();
    let token = ed.sign(claims).unwrap();
    let key = ed.public_key();
    time("jwt-simple", "EdDSA", n, || key.verify_token::<NoCustomClaims>(&token, None).is_ok());
    let raw = key.to_bytes();
    let (message, signature) = split(&token);
    time("ring", "EdDSA", n, || {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &raw)
            .verify(message.as_bytes(), &signature)
            .is_ok()
    });
}

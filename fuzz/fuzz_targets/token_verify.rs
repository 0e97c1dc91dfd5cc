//! Fuzz target: a session token through `verify::peek_issuer` and `verify::verify`, against
//! a fixed key set (Envoy jwt_authn's test JWKS, two RSA keys, plus an HMAC secret) and
//! fixed options, as sent and re-signed with the HMAC secret. Must hold: no panic; an accepted token has an `exp` in the future (with
//! skew), its `iss` is the configured one and its algorithm is an allowed one.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mfa_gate::jwks::KeySet;
use mfa_gate::verify::{peek_issuer, verify, Algorithm, VerifyOptions};

const NOW: u64 = 1_800_000_000;

fn fixed() -> &'static (KeySet, VerifyOptions) {
    static FIXED: OnceLock<(KeySet, VerifyOptions)> = OnceLock::new();
    FIXED.get_or_init(|| {
        let keys = mfa_gate_fuzz::key_set().unwrap();
        let options = VerifyOptions {
            issuer: "https://example.com".to_string(),
            audiences: vec!["example_service".to_string(), "mfa-gate".to_string()],
            algorithms: vec![Algorithm::RS256, Algorithm::HS256, Algorithm::ES256],
            clock_skew_secs: 60,
            max_token_bytes: 8192,
        };
        (keys, options)
    })
}

fuzz_target!(|data: &[u8]| {
    let (keys, options) = fixed();
    check(data, keys, options);
    // Re-signed with the HMAC secret: the header and claim checks after the signature.
    if let Some(resigned) = mfa_gate_fuzz::resign_hs256(data) {
        check(&resigned, keys, options);
    }
});

fn check(data: &[u8], keys: &KeySet, options: &VerifyOptions) {
    let _ = peek_issuer(data, options.max_token_bytes);
    if let Ok(token) = verify(data, keys, options, NOW) {
        assert!(token.expires_at.saturating_add(options.clock_skew_secs) >= NOW);
        assert!(options.algorithms.contains(&token.algorithm));
        assert_eq!(
            peek_issuer(data, options.max_token_bytes).ok().as_deref(),
            Some(options.issuer.as_str())
        );
    }
}

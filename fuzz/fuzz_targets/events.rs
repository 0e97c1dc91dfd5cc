//! Fuzz target: revocation signals (src/events): the first byte chooses the entry point,
//! `verify_set`, `verify_logout_token`, `logout_token_from_form` then `verify_logout_token`,
//! or `parse_poll_response` then `verify_set` of each polled SET. Keys: Envoy's test JWKS
//! and an HMAC secret; bit 2 of the first byte re-signs a SET or logout token with it.
//! Must hold: no panic; a poll answer respects its caps.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mfa_gate::events::{
    logout_token_from_form, parse_poll_response, verify_logout_token, verify_set, Expect,
    MAX_POLL_SETS,
};
use mfa_gate::jwks::KeySet;
use mfa_gate::verify::Algorithm;

const NOW: u64 = 1_800_000_000;
const ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::HS256];

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| mfa_gate_fuzz::key_set().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let expect = Expect {
        issuer: "https://idp.example.com",
        audience: "mfa-gate",
        keys: keys(),
        algorithms: &ALGORITHMS,
        clock_skew_secs: 60,
        max_token_bytes: 8192,
    };
    let Some((choice, rest)) = data.split_first() else {
        return;
    };
    // Bit 2 of the first byte: re-sign the token with the HMAC secret, so the claims
    // checks after the signature are reached.
    let resigned;
    let token = if choice & 4 != 0 && choice % 4 < 2 {
        resigned = mfa_gate_fuzz::resign_hs256(rest);
        resigned.as_deref().unwrap_or(rest)
    } else {
        rest
    };
    match choice % 4 {
        0 => {
            let _ = verify_set(token, &expect, NOW);
        }
        1 => {
            let _ = verify_logout_token(token, &expect, NOW);
        }
        2 => {
            if let Some(token) = logout_token_from_form(rest) {
                let _ = verify_logout_token(token.as_bytes(), &expect, NOW);
            }
        }
        _ => {
            if let Ok(poll) = parse_poll_response(rest) {
                assert!(poll.sets.len() <= MAX_POLL_SETS);
                for set in &poll.sets {
                    if let Err(e) = verify_set(set.token.as_bytes(), &expect, NOW) {
                        let _ = (e.err_code(), e.reason());
                    }
                }
            }
        }
    }
});

//! Fuzz target: `token::jwt_authn::decode_payload`, the decoder of Envoy's serialized
//! dynamic metadata. The first input byte chooses the payload key. Must hold: no panic
//! (depth limit, lengths), and decoded claims serialize as JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_gate::token::jwt_authn::decode_payload;

fuzz_target!(|data: &[u8]| {
    let (key, bytes) = match data.split_first() {
        Some((0, rest)) => ("payload", rest),
        Some((1, rest)) => ("", rest),
        Some((_, rest)) => ("jwt_payload", rest),
        None => ("payload", data),
    };
    if let Ok(Some(claims)) = decode_payload(bytes, key) {
        assert!(serde_json::to_vec(&claims).is_ok());
    }
});

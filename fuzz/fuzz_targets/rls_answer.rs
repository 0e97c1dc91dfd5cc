//! Fuzz target: `wire::rls::decode_answer`, the rate-limit service's protobuf answer. Must
//! hold: no panic; every refusal has its reason code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_gate::wire::rls::decode_answer;

fuzz_target!(|data: &[u8]| {
    match decode_answer(data) {
        Ok(answer) => {
            let _ = answer;
        }
        Err(e) => {
            assert!(e.code().starts_with("rls_answer_"));
        }
    }
});

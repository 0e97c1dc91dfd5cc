//! Fuzz target: `introspection::answer::parse`, an RFC 7662 answer body. Must hold: no
//! panic; an active answer's claims carry the introspecting issuer's `iss`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_gate::introspection::answer::{parse, Answer, Expect};
use mfa_gate::introspection::Fields;

fuzz_target!(|data: &[u8]| {
    let fields = Fields::default();
    let audiences = vec!["mfa-gate".to_string()];
    let expect = Expect {
        issuer: "https://idp.example.com",
        audiences: &audiences,
        fields: &fields,
    };
    if let Ok(Answer::Active(active)) = parse(data, &expect) {
        let _ = active;
    }
});

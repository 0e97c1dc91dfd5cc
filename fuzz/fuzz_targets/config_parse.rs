//! Fuzz target: `config::parse`, the plugin configuration compile. Must hold: no panic, and
//! the same document compiles the same way twice (no hidden state).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let first = mfa_gate::config::parse(data);
    let second = mfa_gate::config::parse(data);
    assert_eq!(first.is_ok(), second.is_ok());
    if let Ok(config) = first {
        let _ = config.key_refresh_intervals();
        let _ = config.issuer_index("https://example.com");
    }
});

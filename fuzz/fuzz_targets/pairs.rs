//! Fuzz target: the proxy-wasm header pairs codec (`pairs::parse`, `serialize`). Must hold:
//! no panic; every entry of a parsed map is found by `header` under its own name;
//! serialize(parse(x)) parses back to the same entries (when names and values are UTF-8).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_gate::pairs::{parse, serialize};
use mfa_gate::request::RequestHeaders;

fuzz_target!(|data: &[u8]| {
    let Some(pairs) = parse(data) else { return };
    let entries: Vec<(&[u8], &[u8])> = pairs.iter().collect();
    let mut visited = 0usize;
    pairs.each_header(&mut |_, _| visited += 1);
    assert_eq!(visited, entries.len());
    for (name, _) in &entries {
        if let Ok(name) = std::str::from_utf8(name) {
            assert!(pairs.header(name).is_some(), "entry {name:?} not found");
        }
    }
    let owned: Option<Vec<(String, String)>> = entries
        .iter()
        .map(|(k, v)| {
            Some((
                String::from_utf8(k.to_vec()).ok()?,
                String::from_utf8(v.to_vec()).ok()?,
            ))
        })
        .collect();
    if let Some(owned) = owned {
        let encoded = serialize(&owned);
        let again = parse(&encoded).expect("serialize output parses");
        let back: Vec<(&[u8], &[u8])> = again.iter().collect();
        assert_eq!(back, entries);
    }
});

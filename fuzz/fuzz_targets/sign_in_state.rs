//! Fuzz target: the sign-in state cookie (`sign_in::state::decode_cookie`). Must hold: no
//! panic; a decoded cookie re-encodes to a cookie that decodes to the same sign-in
//! (decode(encode(x)) == x), and its return URL is a path on this origin.
#![no_main]

use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use libfuzzer_sys::fuzz_target;
use mfa_gate::sign_in::state::{decode_cookie, encode_cookie};

const KEY: &[u8] = b"fuzzing state key";
const NOW: u64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    // As sent: the MAC almost never matches, so this reaches the framing and MAC checks.
    let _ = decode_cookie(KEY, data, NOW, 600, 60);
    // Re-signed with our key: the payload parser and the freshness checks.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '.');
    let (Some(version), Some(body)) = (parts.next(), parts.next()) else {
        return;
    };
    let cookie = format!("{version}.{body}.{}", mac_b64(body));
    if let Ok(pending) = decode_cookie(KEY, cookie.as_bytes(), NOW, 600, 60) {
        assert!(pending.return_url.starts_with('/'));
        let again = encode_cookie(KEY, &pending);
        assert_eq!(
            decode_cookie(KEY, again.as_bytes(), NOW, 600, 60),
            Ok(pending)
        );
    }
});

/// The cookie's MAC over `body` under [`KEY`], as the filter computes it (HMAC-SHA-256 of
/// a label and the body, base64url): the format, restated so the payload parser is reached.
fn mac_b64(body: &str) -> String {
    let mut h = hmac_sha256::HMAC::new(KEY);
    h.update(b"mfa-gate state cookie\0");
    h.update(body.as_bytes());
    Base64UrlSafeNoPadding::encode_to_string(h.finalize()).unwrap_or_default()
}

//! What the revocation suites share: the credentials the tests give the gateway's push and
//! poll endpoints and the demo IdP's session API, ending a user's sessions at the demo IdP,
//! and the answer a revoked session gets.

use crate::http::{request as http_request, Answer};

/// Where the gateway takes pushed SETs (RFC 8935).
pub const PUSH_PATH: &str = "/.mfa-gate/ssf/push";
/// The VM environment variable holding the push endpoint's bearer credential.
pub const PUSH_BEARER_ENV: &str = "MFA_GATE_TEST_PUSH_BEARER";
/// The VM environment variable holding the credential the gateway polls with.
pub const POLL_BEARER_ENV: &str = "MFA_GATE_TEST_POLL_BEARER";
/// The credential the transmitter presents when it pushes.
pub const PUSH_BEARER: &str = "push-credential-the-idp-presents";
/// The credential the gateway presents when it polls.
pub const POLL_BEARER: &str = "poll-credential-the-gateway-presents";
/// The demo IdP's session API token (`--okta-api-token`).
pub const OKTA_API_TOKEN: &str = "okta-api-token-for-the-test";

/// The demo IdP ends every session of `user` (its Okta-shaped "Revoke all User sessions",
/// `DELETE /api/v1/users/{user}/sessions`), and the transmitter announces it.
pub fn end_sessions_at_idp(idp_port: u16, user: &str) {
    let answer = http_request(
        idp_port,
        "DELETE",
        &format!("/api/v1/users/{user}/sessions"),
        &[("authorization", &format!("SSWS {OKTA_API_TOKEN}"))],
        &[],
    );
    assert_eq!(answer.status, 204, "session API: {}", answer.text());
}

/// A 401 `invalid_token` "session revoked", in the challenge and in the JSON body.
pub fn assert_session_revoked(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 401, "{what}: {}", answer.text());
    let www = answer.header("www-authenticate").unwrap_or("");
    assert!(www.contains("error=\"invalid_token\""), "{what}: {www}");
    assert!(
        www.contains("error_description=\"session revoked\""),
        "{what}: {www}"
    );
    assert_eq!(answer.json()["error"], "invalid_token", "{what}");
}

//! The HTTP answers mfa-gate sends: RFC 6750 for missing/invalid tokens, RFC 9470 for
//! step-up, a redirect to the provider for browsers, 403 for a policy deny.
//!
//! OWNER: assurance helper. Interface fixed below; implementation to be completed.

/// A local reply for `send_http_response`. `details` has no spaces (access-log friendly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub details: &'static str,
}

/// Where to send a browser for step-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectTarget<'a> {
    pub authorization_endpoint: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    /// The URL the user asked for (scheme://host/path?query), carried back to the app.
    pub return_url: &'a str,
}

/// 401, `WWW-Authenticate: Bearer realm="…"` with no error code (RFC 6750 §3.1).
pub fn missing_token(realm: &str) -> LocalReply {
    let _ = realm;
    LocalReply {
        status: 401,
        headers: Vec::new(),
        body: Vec::new(),
        details: "mfa_gate_missing_token",
    }
}

/// 401, `error="invalid_token"` with a description (never the token itself).
pub fn invalid_token(realm: &str, description: &str) -> LocalReply {
    let _ = (realm, description);
    LocalReply {
        status: 401,
        headers: Vec::new(),
        body: Vec::new(),
        details: "mfa_gate_invalid_token",
    }
}

/// 403 for a token whose audience is not accepted.
pub fn audience_mismatch(realm: &str) -> LocalReply {
    let _ = realm;
    LocalReply {
        status: 403,
        headers: Vec::new(),
        body: Vec::new(),
        details: "mfa_gate_audience_mismatch",
    }
}

/// 401 RFC 9470: `error="insufficient_user_authentication"`, `acr_values`, `max_age`.
pub fn step_up_challenge(
    realm: &str,
    acr_values: &str,
    max_age: Option<u64>,
    description: &str,
) -> LocalReply {
    let _ = (realm, acr_values, max_age, description);
    LocalReply {
        status: 401,
        headers: Vec::new(),
        body: Vec::new(),
        details: "mfa_gate_step_up",
    }
}

/// 302 to the provider with `acr_values`, `max_age`, `prompt=login` and the return URL.
pub fn step_up_redirect(target: &RedirectTarget<'_>, acr_values: &str, max_age: Option<u64>) -> LocalReply {
    let _ = (target, acr_values, max_age);
    LocalReply {
        status: 302,
        headers: Vec::new(),
        body: Vec::new(),
        details: "mfa_gate_step_up_redirect",
    }
}

/// 403 for a policy deny, with the reason code in the body (JSON).
pub fn denied(reason: &str) -> LocalReply {
    let _ = reason;
    LocalReply {
        status: 403,
        headers: Vec::new(),
        body: Vec::new(),
        details: "mfa_gate_denied",
    }
}

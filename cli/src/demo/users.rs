//! The demo's users, routes and the answer the gateway gives each user on each route.
//!
//! The expectations here are what `envoy/envoy.yaml`'s policy must produce; the demo test
//! (cli/tests/demo.rs) sends every case through the real filter and checks them.

use serde::Serialize;

/// Issuer of the demo identity provider's tokens (fixed, so it does not depend on ports).
pub const ISSUER: &str = "https://idp.mfa-gate.test";
/// Audience of the demo tokens.
pub const AUDIENCE: &str = "mfa-gate-demo";
/// Custom claim the demo IdP uses for push with number matching (mapped in the config).
pub const STRENGTH_CLAIM: &str = "auth_strength";
/// Cookie that carries the session token in the browser part of the demo.
pub const SESSION_COOKIE: &str = "mfa_session";
/// Token lifetime.
pub const TOKEN_LIFETIME_SECS: u64 = 8 * 3600;

/// A demo user: how they signed in, as an Okta-style ID token says it.
pub struct DemoUser {
    /// Short handle used in URLs (`/token/<id>`).
    pub id: &'static str,
    /// `sub` claim.
    pub subject: &'static str,
    /// How the user signed in, in words.
    pub signed_in_with: &'static str,
    /// `amr` claim (Okta vocabulary).
    pub amr: &'static [&'static str],
    /// Value of the custom [`STRENGTH_CLAIM`], if any.
    pub strength: Option<&'static str>,
    /// `acr` of the code flow's ID token and of introspection (Okta's values: `phr` is
    /// phishing-resistant, `urn:okta:loa:2fa:any` any second factor).
    pub acr: &'static str,
    /// The level mfa-gate should find, as sent upstream in `x-mfa-gate-level`.
    pub level: &'static str,
}

/// The four demo users.
pub const USERS: [DemoUser; 4] = [
    DemoUser {
        id: "push",
        subject: "pat@example.com",
        signed_in_with: "password + Okta Verify push (one tap)",
        amr: &["pwd", "okta_verify", "swk"],
        strength: None,
        acr: "urn:okta:loa:2fa:any",
        level: "push",
    },
    DemoUser {
        id: "number-match",
        subject: "nia@example.com",
        signed_in_with: "password + push with number matching",
        amr: &["pwd", "okta_verify", "swk"],
        strength: Some("push_nm"),
        acr: "urn:okta:loa:2fa:any",
        level: "push_number_match",
    },
    DemoUser {
        id: "otp",
        subject: "otto@example.com",
        signed_in_with: "password + one-time code (TOTP)",
        amr: &["pwd", "okta_verify", "otp"],
        strength: None,
        acr: "urn:okta:loa:2fa:any",
        level: "otp",
    },
    DemoUser {
        id: "passkey",
        subject: "kim@example.com",
        signed_in_with: "passkey / FIDO2 security key (WebAuthn)",
        amr: &["pwd", "pop"],
        strength: None,
        acr: "phr",
        level: "phishing_resistant",
    },
];

/// A demo route and what it requires (as configured in envoy/envoy.yaml).
pub struct DemoRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub kind: &'static str,
    pub requirement: &'static str,
}

/// The routes every user is tried on: a normal one and two privileged ones.
pub const ROUTES: [DemoRoute; 3] = [
    DemoRoute {
        method: "GET",
        path: "/api/profile",
        kind: "normal",
        requirement: "any MFA (level push or above)",
    },
    DemoRoute {
        method: "POST",
        path: "/payments/transfer",
        kind: "privileged",
        requirement: "push_number_match or above, else 403",
    },
    DemoRoute {
        method: "GET",
        path: "/admin/users",
        kind: "privileged",
        requirement: "phishing_resistant, else RFC 9470 step-up",
    },
];

/// The answer expected for one request.
#[derive(Debug, Clone, Serialize)]
pub struct Expectation {
    /// HTTP status.
    pub status: u16,
    /// A fragment the `WWW-Authenticate` header must contain (401s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub www_authenticate_contains: Option<String>,
    /// The `x-mfa-gate-level` the app must have received (200s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_level: Option<String>,
    /// A prefix of the `Location` header (browser redirects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_starts_with: Option<String>,
    /// The expectation in words, printed beside the curl line.
    pub summary: String,
}

fn rank(level: &str) -> usize {
    ["push", "push_number_match", "otp", "phishing_resistant"]
        .iter()
        .position(|l| *l == level)
        .unwrap_or(0)
}

/// What the gateway answers `user` on `route`.
pub fn expect(user: &DemoUser, route: &DemoRoute) -> Expectation {
    let allowed = Expectation {
        status: 200,
        www_authenticate_contains: None,
        upstream_level: Some(user.level.to_string()),
        location_starts_with: None,
        summary: format!("200 OK, the app sees x-mfa-gate-level: {}", user.level),
    };
    match route.path {
        "/payments/transfer" if rank(user.level) < rank("push_number_match") => Expectation {
            status: 403,
            www_authenticate_contains: None,
            upstream_level: None,
            location_starts_with: None,
            summary: "403 Forbidden: one-tap push is not enough for payments".into(),
        },
        "/admin/users" if rank(user.level) < rank("phishing_resistant") => Expectation {
            status: 401,
            www_authenticate_contains: Some("insufficient_user_authentication".into()),
            upstream_level: None,
            location_starts_with: None,
            summary: "401 step-up: WWW-Authenticate: Bearer error=\"insufficient_user_authentication\", acr_values=\"phr\"".into(),
        },
        _ => allowed,
    }
}

//! `mfa-gate demo`: the demo identity provider and the demo upstream app, on 127.0.0.1.
//!
//! The identity provider makes a fresh ES256 key at start, serves its JWKS, mints tokens for
//! the demo users (`/token/<user>`), and has a small `/authorize` page for the browser
//! step-up. Every sign-in starts a session whose `sid` its token carries. The provider is
//! also a Shared Signals transmitter ([`transmitter`], routes in `signals_routes`): SETs
//! by poll and push, back-channel logout, and an Okta-shaped session API that ends a user's
//! sessions. The app echoes what reached it, including the `x-mfa-gate-*` headers.
//! Before serving, it prints a `curl` line per user and route with the answer to expect.

mod client_auth;
mod expiring;
pub mod oidc;
mod poll;
mod push_api;
mod server;
mod sessions;
mod signals_routes;
pub mod transmitter;
pub mod users;

use crate::error::{CliError, CliResult};
use crate::keys::{self, SigningKey};
use crate::security_event;
use serde_json::json;
use server::{html_escape, percent_encode, DemoRequest, DemoResponse, Handler};
use sessions::Sessions;
use std::sync::Arc;
use transmitter::{SignalsConfig, Transmitter};
use users::{expect, DemoUser, Expectation, AUDIENCE, ISSUER, ROUTES, SESSION_COOKIE, USERS};

/// Ports of the demo (defaults match envoy/envoy.yaml).
#[derive(Debug, Clone, Copy)]
pub struct DemoPorts {
    /// Where the gateway listens (printed in the curl lines; the proxy is started separately).
    pub proxy: u16,
    /// The identity provider.
    pub idp: u16,
    /// The upstream app.
    pub app: u16,
}

impl Default for DemoPorts {
    fn default() -> Self {
        DemoPorts {
            proxy: 10000,
            idp: 10001,
            app: 10002,
        }
    }
}

/// The identity provider's state: its key, its sessions, its transmitter and where it runs.
struct IdentityProvider {
    key: SigningKey,
    jwks: serde_json::Value,
    ports: DemoPorts,
    sessions: Sessions,
    push_api: push_api::PushApi,
    transmitter: Transmitter,
    oidc: oidc::Oidc,
}

impl IdentityProvider {
    /// The provider, and the receiving end of its transmitter's outbound deliveries.
    fn new(
        ports: DemoPorts,
        signals: SignalsConfig,
        client: &oidc::ClientSettings,
    ) -> CliResult<(
        IdentityProvider,
        tokio::sync::mpsc::Receiver<transmitter::Outbound>,
    )> {
        let now = keys::now_secs();
        let key = SigningKey::generate("ES256", &format!("demo-{now}"))?;
        let jwks = keys::jwks(&[&key])?;
        // SETs get their own key, served at the transmitter's jwks_uri (/ssf/jwks.json):
        // the session-token JWKS holds no key that signs SETs.
        let (transmitter, outbound) =
            Transmitter::new(ISSUER, &format!("demo-ssf-{now}"), signals)?;
        let idp = IdentityProvider {
            key,
            jwks,
            ports,
            sessions: Sessions::new(users::TOKEN_LIFETIME_SECS),
            push_api: push_api::PushApi::default(),
            transmitter,
            oidc: oidc::Oidc::new(client)?,
        };
        Ok((idp, outbound))
    }

    fn claims(
        &self,
        user: &DemoUser,
        now: u64,
        sid: &str,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut claims = serde_json::Map::new();
        claims.insert("iss".into(), ISSUER.into());
        claims.insert("sub".into(), user.subject.into());
        claims.insert("aud".into(), AUDIENCE.into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + users::TOKEN_LIFETIME_SECS).into());
        claims.insert("auth_time".into(), now.into());
        claims.insert("amr".into(), json!(user.amr));
        if let Some(strength) = user.strength {
            claims.insert(users::STRENGTH_CLAIM.into(), strength.into());
        }
        // OpenID Connect Front-/Back-Channel Logout: `sid` identifies this sign-in.
        claims.insert("sid".into(), sid.into());
        claims
    }

    /// Signs `user` in: a new session, and its token.
    fn mint(&self, user: &DemoUser) -> CliResult<String> {
        self.mint_bound(user, None)
    }

    /// Signs `user` in with a token bound to the DPoP key whose RFC 7638 thumbprint is
    /// `jkt` (`cnf.jkt`, RFC 9449 §6.1), or unbound.
    fn mint_bound(&self, user: &DemoUser, jkt: Option<&str>) -> CliResult<String> {
        let now = keys::now_secs();
        let sid = security_event::random_id();
        let mut claims = self.claims(user, now, &sid);
        if let Some(jkt) = jkt {
            claims.insert("cnf".into(), json!({ "jkt": jkt }));
        }
        let token = self.key.sign(&claims)?;
        self.sessions.start(user.id, &sid, now);
        Ok(token)
    }

    /// Signs `user` in with an opaque access token (RFC 7662 introspection tells its claims).
    fn mint_opaque(&self, user: &DemoUser, jkt: Option<&str>) -> String {
        let now = keys::now_secs();
        let sid = security_event::random_id();
        self.sessions.start(user.id, &sid, now);
        self.oidc.issue_opaque(self, user, now, now, &sid, jkt)
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.idp)
    }

    /// Only URLs on the demo gateway are followed after sign-in (no open redirect).
    /// The gateway URL to send the browser back to: mfa-gate's `state` is a path on the
    /// gateway (`/admin/users`); anything else (another origin, `//host`) is refused.
    fn safe_return(&self, url: Option<&str>) -> String {
        let gateway = format!("http://127.0.0.1:{}", self.ports.proxy);
        match url {
            Some(path)
                if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') =>
            {
                format!("{gateway}{path}")
            }
            Some(u) if u.starts_with(&format!("{gateway}/")) => u.to_string(),
            _ => format!("{gateway}/admin/users"),
        }
    }

    async fn handle(&self, request: DemoRequest) -> DemoResponse {
        if let Some(response) = self.signals(&request).await {
            return response;
        }
        let mint = |user: &DemoUser| self.mint(user).ok();
        if let Some(response) = self.push_api.handle(&request, &mint) {
            return response;
        }
        if let Some(response) = self.oidc.route(self, &request, oidc::now()) {
            return response;
        }
        let path = request.path.as_str();
        if path == "/.well-known/jwks.json" {
            return DemoResponse::json(200, &self.jwks);
        }
        if path == "/.well-known/openid-configuration" {
            let base = self.base_url();
            let mut doc = json!({
                "issuer": ISSUER,
                "jwks_uri": format!("{base}/.well-known/jwks.json"),
                "authorization_endpoint": format!("{base}/authorize"),
                "acr_values_supported": ["phr"],
                // Back-Channel Logout 1.0 section 2.1: logout tokens carry `sid`.
                "backchannel_logout_supported": true,
                "backchannel_logout_session_supported": true,
            });
            if let Some(map) = doc.as_object_mut() {
                map.extend(oidc::discovery(&base));
            }
            return DemoResponse::json(200, &doc);
        }
        if path == "/users" {
            let list: Vec<_> = USERS
                .iter()
                .map(|u| json!({"id": u.id, "sub": u.subject, "signed_in_with": u.signed_in_with, "amr": u.amr}))
                .collect();
            return DemoResponse::json(200, &json!(list));
        }
        if let Some(id) = path.strip_prefix("/token/") {
            // `?dpop_jkt=THUMBPRINT`: a token bound to that DPoP key (43 base64url chars).
            let jkt = request.param("dpop_jkt");
            if let Some(jkt) = jkt {
                let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
                if jkt.len() != 43 || !jkt.bytes().all(base64url) {
                    return DemoResponse::text(
                        400,
                        "dpop_jkt: expected a JWK SHA-256 thumbprint (43 base64url characters)\n",
                    );
                }
            }
            let opaque = match request.param("format") {
                None | Some("jwt") => false,
                Some("opaque") => true,
                Some(other) => {
                    return DemoResponse::text(
                        400,
                        format!(
                            "format \"{}\": expected jwt or opaque\n",
                            other.escape_default()
                        ),
                    )
                }
            };
            return match USERS.iter().find(|u| u.id == id) {
                Some(user) if opaque => DemoResponse::text(200, self.mint_opaque(user, jkt)),
                Some(user) => match self.mint_bound(user, jkt) {
                    Ok(token) => DemoResponse::text(200, token),
                    Err(e) => DemoResponse::text(500, format!("cannot mint: {e}\n")),
                },
                None => DemoResponse::text(404, format!("no demo user \"{id}\"\n")),
            };
        }
        if let Some(id) = path.strip_prefix("/login/") {
            // Browser demo: sign in as a user (cookie), then go to the gateway.
            return self.sign_in(id, request.param("return_to"));
        }
        if path == "/authorize" {
            return self.authorize_page(&request);
        }
        DemoResponse::text(404, "not found\n")
    }

    fn sign_in(&self, id: &str, return_to: Option<&str>) -> DemoResponse {
        let Some(user) = USERS.iter().find(|u| u.id == id) else {
            return DemoResponse::text(404, format!("no demo user \"{id}\"\n"));
        };
        match self.mint(user) {
            Ok(token) => DemoResponse {
                status: 302,
                headers: vec![
                    ("location".into(), self.safe_return(return_to)),
                    (
                        "set-cookie".into(),
                        format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax"),
                    ),
                ],
                body: String::new(),
            },
            Err(e) => DemoResponse::text(500, format!("cannot mint: {e}\n")),
        }
    }

    /// The provider's legacy sign-in page for a step-up (no code flow): echoes what
    /// mfa-gate asked for and links to `/login/passkey`, which sets the session cookie.
    fn authorize_page(&self, request: &DemoRequest) -> DemoResponse {
        // mfa-gate carries the URL the user wanted in `state` (or `return_to`).
        let return_to = request
            .param("return_to")
            .or_else(|| request.param("state"))
            .or_else(|| request.param("redirect_uri"));
        let target = self.safe_return(return_to);
        let link = format!(
            "<p><a href=\"/login/passkey?return_to={}\">Use my passkey</a> (signs you in as kim@example.com)</p>\n",
            html_escape(&percent_encode(&target)),
        );
        DemoResponse::html(200, step_up_page(request, &link))
    }
}

/// The sign-in page for a step-up: what was asked for, then `links` (HTML).
fn step_up_page(request: &DemoRequest, links: &str) -> String {
    let shown = |name: &str| html_escape(request.param(name).unwrap_or("(not given)"));
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>mfa-gate demo IdP</title></head>\n\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\n\
         <h1>Re-authenticate with your passkey</h1>\n\
         <p>The page you asked for needs a phishing-resistant sign-in. A push approval is not enough.</p>\n\
         <table border=\"1\" cellpadding=\"4\">\n\
         <tr><th>acr_values</th><td>{}</td></tr>\n<tr><th>max_age</th><td>{}</td></tr>\n\
         <tr><th>prompt</th><td>{}</td></tr>\n<tr><th>client_id</th><td>{}</td></tr>\n\
         <tr><th>redirect_uri</th><td>{}</td></tr>\n<tr><th>state</th><td>{}</td></tr>\n</table>\n\
         {links}</body></html>\n",
        shown("acr_values"),
        shown("max_age"),
        shown("prompt"),
        shown("client_id"),
        shown("redirect_uri"),
        shown("state"),
    )
}

/// The demo app: echoes the request and the identity headers mfa-gate set.
fn app_handle(request: DemoRequest) -> DemoResponse {
    let mfa_headers: serde_json::Map<String, serde_json::Value> = request
        .headers
        .iter()
        .filter(|(k, _)| k.starts_with("x-mfa-gate-"))
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    DemoResponse::json(
        200,
        &json!({
            "app": "mfa-gate demo app",
            "method": request.method,
            "path": request.path,
            "headers": mfa_headers,
            "authorization_forwarded": request.headers.iter().any(|(k, _)| k == "authorization"),
        }),
    )
}

/// One request of the demo and the answer to expect.
#[derive(Debug, serde::Serialize)]
pub struct DemoCase {
    /// Demo user id (`anonymous` for no token).
    pub user: String,
    pub method: String,
    pub path: String,
    /// Headers to send (a concrete token included).
    pub headers: Vec<(String, String)>,
    /// The same request as a curl line that fetches a fresh token from the IdP.
    pub curl: String,
    pub expect: Expectation,
}

fn cases(idp: &IdentityProvider) -> CliResult<Vec<DemoCase>> {
    let gateway = format!("http://127.0.0.1:{}", idp.ports.proxy);
    let token_url = |id: &str| format!("{}/token/{id}", idp.base_url());
    let mut out = Vec::new();
    for user in &USERS {
        let token = idp.mint(user)?;
        for route in &ROUTES {
            let method_flag = if route.method == "GET" {
                String::new()
            } else {
                format!("-X {} ", route.method)
            };
            out.push(DemoCase {
                user: user.id.into(),
                method: route.method.into(),
                path: route.path.into(),
                headers: vec![("authorization".into(), format!("Bearer {token}"))],
                curl: format!(
                    "curl -si {method_flag}-H \"Authorization: Bearer $(curl -s {})\" {gateway}{}",
                    token_url(user.id),
                    route.path
                ),
                expect: expect(user, route),
            });
        }
    }
    out.push(DemoCase {
        user: "anonymous".into(),
        method: "GET".into(),
        path: "/api/profile".into(),
        headers: Vec::new(),
        curl: format!("curl -si {gateway}/api/profile"),
        expect: Expectation {
            status: 401,
            www_authenticate_contains: Some("Bearer realm=".into()),
            upstream_level: None,
            location_starts_with: None,
            summary: "401: no token (WWW-Authenticate: Bearer realm=\"mfa-gate-demo\")".into(),
        },
    });
    let push_token = USERS
        .iter()
        .find(|u| u.id == "push")
        .map(|u| idp.mint(u))
        .transpose()?;
    if let Some(token) = push_token {
        out.push(DemoCase {
            user: "push".into(),
            method: "GET".into(),
            path: "/admin/users".into(),
            headers: vec![
                ("cookie".into(), format!("{SESSION_COOKIE}={token}")),
                ("accept".into(), "text/html".into()),
            ],
            curl: format!(
                "curl -si -H 'Accept: text/html' -b \"{SESSION_COOKIE}=$(curl -s {})\" {gateway}/admin/users",
                token_url("push")
            ),
            expect: Expectation {
                status: 302,
                www_authenticate_contains: None,
                upstream_level: None,
                location_starts_with: Some(format!("{}/authorize?", idp.base_url())),
                summary: "302 to the IdP's /authorize with acr_values=phr (browser step-up)".into(),
            },
        });
    }
    Ok(out)
}

fn print_banner(idp: &IdentityProvider, cases: &[DemoCase]) {
    let p = idp.ports;
    println!("mfa-gate demo");
    println!(
        "  gateway            http://127.0.0.1:{}   (mfa-gate inline in the proxy)",
        p.proxy
    );
    println!(
        "  identity provider  http://127.0.0.1:{}   (issuer {ISSUER}, JWKS /.well-known/jwks.json)",
        p.idp
    );
    println!(
        "  upstream app       http://127.0.0.1:{}   (echoes the x-mfa-gate-* headers it gets)",
        p.app
    );
    println!();
    println!(
        "Demo users (GET http://127.0.0.1:{}/token/<user> mints a fresh token):",
        p.idp
    );
    for user in &USERS {
        println!(
            "  {:<13} {:<18} {}",
            user.id, user.subject, user.signed_in_with
        );
    }
    println!();
    println!("Routes:");
    for route in &ROUTES {
        println!(
            "  {:<5} {:<20} {:<11} {}",
            route.method, route.path, route.kind, route.requirement
        );
    }
    println!();
    println!("Try these (expected answer under each):");
    let mut last_user = String::new();
    for case in cases {
        if case.user != last_user {
            println!();
            last_user.clone_from(&case.user);
        }
        println!("  {}", case.curl);
        println!("      -> {}", case.expect.summary);
    }
    println!();
    println!(
        "In a browser: open http://127.0.0.1:{}/login/push (signs in with push, then opens /admin/users:\n  \
         the gateway sends you to the IdP to re-authenticate with a passkey, then lets you in).",
        p.idp
    );
    print_revocation(idp);
    print_risk(idp);
    print_push(idp);
    println!();
    println!("Ctrl-C stops the demo.");
}

/// The revocation walk-through: end a session at the IdP (the gateway hears of it by push
/// and by poll) and see the next request refused; and a session the gateway revokes itself.
fn print_revocation(idp: &IdentityProvider) {
    let p = idp.ports;
    let gateway = format!("http://127.0.0.1:{}", p.proxy);
    let token_url = format!("http://127.0.0.1:{}/token/push", p.idp);
    let config = idp.transmitter.config();
    let api_token = config
        .okta_api_token
        .as_deref()
        .unwrap_or("<--okta-api-token>");
    println!();
    println!(
        "Revocation (the IdP is a Shared Signals transmitter; envoy/envoy.yaml polls it every 2 s"
    );
    println!("and takes its pushes at /.mfa-gate/ssf/push):");
    println!("  T=$(curl -s {token_url})");
    println!("  curl -si -H \"Authorization: Bearer $T\" {gateway}/api/profile");
    println!("      -> 200");
    println!(
        "  curl -si -X DELETE -H 'Authorization: SSWS {api_token}' http://127.0.0.1:{}/api/v1/users/push/sessions",
        p.idp
    );
    println!("      -> 204: the IdP ended pat's sessions and sent a CAEP session-revoked SET");
    println!("  curl -si -H \"Authorization: Bearer $T\" {gateway}/api/profile");
    println!("      -> 401 invalid_token \"session revoked\" on every route (at once by push, within 2 s by poll)");
    println!("  T=$(curl -s {token_url})");
    println!("  curl -si -H \"Authorization: Bearer $T\" {gateway}/admin/keys/rotate");
    println!(
        "      -> 401 \"session revoked\": a push session on /admin/keys is revoked by the gateway"
    );
    println!("         itself, which then ends it at the IdP (Okta-shaped DELETE) too");
    println!("  curl -si -H \"Authorization: Bearer $T\" {gateway}/api/profile");
    println!("      -> 401 \"session revoked\"");
}

/// A DPoP key thumbprint for the demo's bound token (any key's: the point is that the
/// token comes without a proof).
pub const DEMO_DPOP_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

/// The risk walk-through: one push user from the usual place, a new country, then
/// impossible travel; a passkey user from a new country; a DPoP-bound token without its
/// proof. X-Forwarded-For stands for the address the load balancer in front saw.
fn print_risk(idp: &IdentityProvider) {
    let p = idp.ports;
    let gateway = format!("http://127.0.0.1:{}", p.proxy);
    let token = |user: &str| format!("http://127.0.0.1:{}/token/{user}", p.idp);
    let from = |address: &str, var: &str| {
        format!("curl -si -H \"Authorization: Bearer ${var}\" -H 'X-Forwarded-For: {address}' {gateway}/api/profile")
    };
    println!();
    println!("Risk (envoy/envoy.yaml runs Envoy's geoip filter on the demo databases of");
    println!("envoy/demo-geoip.json; X-Forwarded-For is the address the load balancer saw):");
    println!("  T=$(curl -s {})", token("push"));
    println!("  {}", from("198.51.100.7", "T"));
    println!("      -> 200: push (30 points), first sighting, in Vienna AT: score 30 < 50");
    println!("  {}", from("198.51.100.200", "T"));
    println!("      -> 401 step-up (acr_values=\"phr\"): a new country, Bratislava SK, 55 km away: 30 + 25 = 55 >= 50\n         (a refused request is not a sighting: the last place stays Vienna)");
    println!("  {}", from("203.0.113.7", "T"));
    println!("      -> 401 \"session revoked\": Tokyo seconds after Vienna is impossible travel: 30 + 25 + 100 >= 100");
    println!("  P=$(curl -s {})", token("passkey"));
    println!("  {}", from("198.51.100.7", "P"));
    println!("  {}", from("198.51.100.200", "P"));
    println!("      -> 200 both: a passkey (0 points) from a new country scores 25");
    println!(
        "  D=$(curl -s '{}?dpop_jkt={DEMO_DPOP_JKT}')",
        token("push")
    );
    println!("  curl -si -H \"Authorization: Bearer $D\" {gateway}/api/profile");
    println!("      -> 401 WWW-Authenticate: DPoP error=\"invalid_token\": a DPoP-bound token without its proof");
    println!("  (Sightings are remembered: run the walk-through on a fresh `make run`.)");
}

/// The push-bombing walk-through: the gateway counts the prompts of the IdP's Duo-shaped
/// push endpoint, and marks a session approved after denied prompts.
fn print_push(idp: &IdentityProvider) {
    let gateway = format!("http://127.0.0.1:{}", idp.ports.proxy);
    let prompt = |user: &str, answer: &str, client: &str| {
        format!(
            "curl -s -H 'X-Forwarded-For: {client}' -d username={user} -d factor=push -d demo_answer={answer} {gateway}/auth/v2/auth"
        )
    };
    println!();
    println!(
        "Push bombing (the IdP's legacy push endpoint, Duo Auth API shape; `demo_answer` is what"
    );
    println!("the user's phone does: allow, deny or timeout):");
    for n in 1..=3 {
        println!("  {}", prompt("sam%40example.com", "deny", "198.51.100.9"));
        println!("      -> 200 {{\"stat\":\"OK\",\"response\":{{\"result\":\"deny\",...}}}}: prompt {n} of 3 in 5 minutes");
    }
    println!("  curl -si -H 'X-Forwarded-For: 198.51.100.9' -d username=sam%40example.com -d factor=push {gateway}/auth/v2/auth");
    println!("      -> 429 Retry-After, {{\"error\":\"push_rate_limited\"}}: the 4th prompt never reaches the phone");
    println!("  {}", prompt("pat%40example.com", "deny", "198.51.100.7"));
    println!("  {}", prompt("pat%40example.com", "deny", "198.51.100.7"));
    println!(
        "  T=$({} | sed -E 's/.*\"session_token\":\"([^\"]*)\".*/\\1/')",
        prompt("pat%40example.com", "allow", "198.51.100.7")
    );
    println!("      -> deny, deny, then approve: a push session for pat, approved under pressure");
    println!("  curl -si -H \"Authorization: Bearer $T\" -H 'X-Forwarded-For: 198.51.100.7' {gateway}/api/profile");
    println!("      -> 401 step-up (insufficient_user_authentication): /api takes push, but not this one (reason push_fatigue)");
    println!("  curl -si -H \"Authorization: Bearer $T\" -H 'X-Forwarded-For: 198.51.100.7' {gateway}/admin/users");
    println!("      -> 401 step-up to a passkey, as for any push session");
}

/// Runs the demo IdP and app until Ctrl-C / SIGTERM. With `print_json`, prints the cases
/// (with concrete tokens) as one JSON line instead of the banner, for tests.
pub fn run(
    ports: DemoPorts,
    signals: SignalsConfig,
    client: oidc::ClientSettings,
    print_json: bool,
) -> CliResult<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let idp_listener = server::bind(ports.idp, "identity provider", "--idp-port").await?;
        let app_listener = server::bind(ports.app, "app", "--app-port").await?;
        let (idp, outbound) = IdentityProvider::new(ports, signals.clone(), &client)?;
        let idp = Arc::new(idp);
        tokio::spawn(transmitter::deliver(outbound, signals));
        let cases = cases(&idp)?;
        if print_json {
            let doc = json!({
                "issuer": ISSUER,
                "audience": AUDIENCE,
                "ports": {"proxy": ports.proxy, "idp": ports.idp, "app": ports.app},
                "cases": cases,
            });
            println!("{doc}");
        } else {
            print_banner(&idp, &cases);
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let idp_handler: Handler = {
            let idp = idp.clone();
            Arc::new(move |request| {
                let idp = idp.clone();
                Box::pin(async move { idp.handle(request).await })
            })
        };
        let app_handler: Handler = server::sync_handler(app_handle);
        tokio::spawn(server::serve(idp_listener, idp_handler));
        tokio::spawn(server::serve(app_listener, app_handler));
        wait_for_stop().await;
        eprintln!("mfa-gate demo: stopped");
        Ok(())
    })
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

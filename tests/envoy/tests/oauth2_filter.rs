//! mfa-gate behind Envoy's own OAuth 2.0 filter, in real Envoy: envoy/envoy-oauth2.yaml
//! with the release filter and `mfa-gate demo` as IdP and app. A client walks the code flow
//! by hand (the gateway's 302 to the IdP, the IdP's sign-in page and approval, the oauth2
//! filter's callback and its cookies) and the tests assert what mfa-gate then decides from
//! the ID token in the `IdToken` cookie; and what the oauth2 filter does around it (what it
//! asks the IdP, what reaches later filters and the upstream, what a step-up reply does).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{http_get, Answer, EchoUpstream, Gateway, GatewayBuilder};

const BOOTSTRAP: &str = "envoy/envoy-oauth2.yaml";

/// The `name=value` part of every `set-cookie` of `answer`.
fn set_cookies(answer: &Answer) -> Vec<(String, String)> {
    answer
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| {
            let pair = v.split(';').next()?;
            let (name, value) = pair.split_once('=')?;
            Some((name.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

/// A browser's cookie jar, by hand: later `set-cookie`s replace earlier ones, `deleted`
/// values remove them.
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn take(&mut self, answer: &Answer) {
        for (name, value) in set_cookies(answer) {
            self.0.retain(|(n, _)| *n != name);
            if value != "deleted" {
                self.0.push((name, value));
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn path_of(url: &str, port: u16) -> String {
    url.strip_prefix(&format!("http://127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("{url} is not on port {port}"))
        .to_string()
}

/// The first query parameter `name` of `url`, percent-decoded (`+` is a space).
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let (_, value) = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)?;
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(String::from_utf8(out).unwrap())
}

/// Signs in through the oauth2 filter as demo user `user`, starting from `path`: the
/// gateway's redirect, the IdP's page and approval, the callback. Returns the jar with the
/// oauth2 filter's cookies and the IdP's authorize URL it was sent to.
fn sign_in(gateway: &Gateway, path: &str, user: &str) -> (Jar, String) {
    sign_in_via(gateway, Jar::default(), path, user, "/oauth2/callback", "")
}

/// [`sign_in`] with the browser's cookies so far, through the oauth2 configuration whose
/// callback is `callback` and whose cookie names start with `prefix`.
fn sign_in_via(
    gateway: &Gateway,
    mut jar: Jar,
    path: &str,
    user: &str,
    callback_path: &str,
    prefix: &str,
) -> (Jar, String) {
    let cookie = jar.header();
    let html = [("accept", "text/html"), ("cookie", cookie.as_str())];
    let first = gateway.get(path, &html);
    assert_eq!(first.status, 302, "{}", first.text());
    jar.take(&first);
    let authorize = first.header("location").unwrap().to_string();
    assert!(
        authorize.starts_with(&format!("http://127.0.0.1:{}/authorize?", gateway.idp_port)),
        "{authorize}"
    );

    let page = http_get(gateway.idp_port, &path_of(&authorize, gateway.idp_port));
    assert_eq!(page.status, 200, "{}", page.text());
    let page = page.text();
    assert!(page.contains("Re-authenticate with your passkey"), "{page}");
    let request = page
        .split("/authorize/approve?request=")
        .nth(1)
        .and_then(|rest| rest.split("&amp;").next())
        .expect("the approve link");
    let approved = http_get(
        gateway.idp_port,
        &format!("/authorize/approve?request={request}&user={user}"),
    );
    assert_eq!(approved.status, 302, "{}", approved.text());
    let callback = approved.header("location").unwrap().to_string();
    assert!(
        callback.starts_with(&format!(
            "http://127.0.0.1:{}{callback_path}?code=",
            gateway.port
        )),
        "{callback}"
    );

    let cookie = jar.header();
    let back = gateway.get(&path_of(&callback, gateway.port), &[("cookie", &cookie)]);
    assert_eq!(back.status, 302, "the oauth2 callback: {}", back.text());
    assert_eq!(
        back.header("location"),
        Some(format!("http://127.0.0.1:{}{path}", gateway.port).as_str())
    );
    jar.take(&back);
    for name in ["OauthHMAC", "OauthExpires", "BearerToken", "IdToken"] {
        let name = format!("{prefix}{name}");
        assert!(jar.get(&name).is_some(), "{name} set after the callback");
    }
    (jar, authorize)
}

fn with_cookies(jar: &str) -> [(&str, &str); 2] {
    [("accept", "text/html"), ("cookie", jar)]
}

#[test]
fn a_passkey_sign_in_through_the_oauth2_filter_reaches_the_app_at_phishing_resistant() {
    let gateway = GatewayBuilder::shipped(BOOTSTRAP).start();
    let (jar, authorize) = sign_in(&gateway, "/admin/users", "passkey");

    // What the oauth2 filter asked for: a code flow with PKCE (S256), and the parameters of
    // its authorization_endpoint's own query: acr_values=phr and the stand-in nonce.
    for (name, value) in [
        ("response_type", "code"),
        ("client_id", "mfa-gate-demo"),
        ("code_challenge_method", "S256"),
        ("acr_values", "phr"),
        ("scope", "openid"),
    ] {
        assert_eq!(
            query_param(&authorize, name).as_deref(),
            Some(value),
            "{name}: {authorize}"
        );
    }
    assert_eq!(
        query_param(&authorize, "redirect_uri"),
        Some(format!("http://127.0.0.1:{}/oauth2/callback", gateway.port))
    );

    let cookie = jar.header();
    let admin = gateway.get("/admin/users", &with_cookies(&cookie));
    assert_eq!(admin.status, 200, "{}", admin.text());
    let app = admin.json();
    assert_eq!(app["headers"]["x-mfa-gate-level"], "phishing_resistant");
    assert_eq!(app["headers"]["x-mfa-gate-subject"], "kim@example.com");
    // The oauth2 filter removed any Authorization header and set none (forward_bearer_token
    // is off): mfa-gate read the ID token from the IdToken cookie.
    assert_eq!(app["authorization_forwarded"], false);
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_push_sign_in_through_the_oauth2_filter_gets_mfa_gates_step_up_on_admin() {
    let gateway = GatewayBuilder::shipped(BOOTSTRAP).start();
    let (jar, _) = sign_in(&gateway, "/api/profile", "push");
    let cookie = jar.header();

    let api = gateway.get("/api/profile", &with_cookies(&cookie));
    assert_eq!(api.status, 200, "{}", api.text());
    assert_eq!(api.json()["headers"]["x-mfa-gate-level"], "push");

    let admin = gateway.get("/admin/users", &with_cookies(&cookie));
    assert_eq!(admin.status, 401, "{}", admin.text());
    let challenge = admin.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("insufficient_user_authentication"),
        "{challenge}"
    );
    assert!(challenge.contains("acr_values=\"phr\""), "{challenge}");
    // mfa-gate's reply goes back to the browser unchanged (the oauth2 filter does not turn
    // a 401 from a later filter into a new sign-in), and no new cookies come with it.
    assert!(set_cookies(&admin).is_empty(), "{:?}", admin.headers);
    let records = gateway.decision_records();
    assert!(
        records.iter().any(|r| r["decision"] == "step_up"),
        "a step_up decision record: {records:?}"
    );
    gateway.assert_no_wasm_failure();
}

/// The token cookies are encrypted in the browser and decrypted in the request before later
/// filters run; the ID and access tokens reach the upstream too (as cookies), while the
/// oauth2 filter removes its HMAC, expiry and flow cookies.
#[test]
fn the_oauth2_filter_passes_its_cookies_decrypted_to_later_filters_and_the_upstream() {
    let gateway = GatewayBuilder::shipped(BOOTSTRAP).echo_upstream().start();
    let (jar, _) = sign_in(&gateway, "/api/profile", "passkey");
    let encrypted = jar.get("IdToken").unwrap();
    assert_eq!(
        encrypted.matches('.').count(),
        0,
        "the IdToken cookie in the browser is not the JWT: {encrypted}"
    );
    let cookie = jar.header();
    let seen = gateway.get("/api/profile", &with_cookies(&cookie));
    assert_eq!(seen.status, 200, "{}", seen.text());
    let headers = EchoUpstream::headers_seen(&seen);
    let upstream_cookie = headers
        .iter()
        .find(|(k, _)| k == "cookie")
        .map(|(_, v)| v.clone())
        .expect("a cookie header upstream");
    let id_token = upstream_cookie
        .split("; ")
        .find_map(|c| c.strip_prefix("IdToken="))
        .expect("IdToken upstream");
    assert_eq!(id_token.matches('.').count(), 2, "the JWT, decrypted");
    assert!(
        upstream_cookie.contains("BearerToken="),
        "{upstream_cookie}"
    );
    for removed in ["OauthHMAC", "OauthExpires", "CodeVerifier", "OauthNonce"] {
        assert!(
            !upstream_cookie.contains(removed),
            "{removed}: {upstream_cookie}"
        );
    }
    assert!(headers.iter().all(|(k, _)| k != "authorization"));
    assert!(headers
        .iter()
        .any(|(k, v)| k == "x-mfa-gate-level" && v == "phishing_resistant"));
    gateway.assert_no_wasm_failure();
}

/// A bearer client cannot go around the oauth2 filter: without its cookies the request is
/// sent to sign in, and mfa-gate never sees the Authorization header (removed).
#[test]
fn a_bearer_token_alone_is_sent_to_sign_in() {
    let gateway = GatewayBuilder::shipped(BOOTSTRAP).start();
    let token = gateway.token("passkey");
    let bearer = format!("Bearer {token}");
    let answer = gateway.get("/api/profile", &[("authorization", &bearer)]);
    assert_eq!(answer.status, 302, "{}", answer.text());
    assert!(answer.header("location").unwrap().contains("/authorize?"));
    assert_eq!(gateway.counter("wasmcustom.mfa_gate.decision.allow"), 0);
}

/// With mfa-gate's own browser step-up (a 302 to the IdP) behind the oauth2 filter, the
/// user goes round in a loop: the step-up's sign-in does not replace the oauth2 filter's
/// IdToken cookie, so the next request carries the same push ID token and is sent away
/// again. The shipped file answers 401 instead (`"browser": "api"`).
#[test]
fn mfa_gates_browser_step_up_behind_the_oauth2_filter_loops() {
    let gateway = GatewayBuilder::shipped(BOOTSTRAP)
        .plugin_config(|config| {
            // This edit runs after the ports are moved: the IdP's comes from the JWKS's.
            let idp = config["issuers"][0]["remote_jwks"]["authority"]
                .as_str()
                .unwrap()
                .to_string();
            config["issuers"][0]["step_up"] = serde_json::json!({
                "authorization_endpoint": format!("http://{idp}/authorize"),
                "client_id": "mfa-gate-demo",
                // Only shown: the demo's legacy page sends the browser back to `state`.
                "redirect_uri": format!("http://{idp}/callback")
            });
            config["routes"][0]["browser"] = "auto".into();
        })
        .start();
    let (mut jar, _) = sign_in(&gateway, "/api/profile", "push");
    let idp = format!("http://127.0.0.1:{}/authorize?", gateway.idp_port);
    for round in 1..=2 {
        let cookie = jar.header();
        let step_up = gateway.get("/admin/users", &with_cookies(&cookie));
        assert_eq!(step_up.status, 302, "round {round}: {}", step_up.text());
        let location = step_up.header("location").unwrap().to_string();
        assert!(location.starts_with(&idp), "round {round}: {location}");
        // The IdP's page for mfa-gate's redirect (no PKCE: the legacy page), and its
        // passkey sign-in, which sets the IdP's session cookie and sends the browser back.
        let page = http_get(gateway.idp_port, &path_of(&location, gateway.idp_port)).text();
        let href = page
            .split("href=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .replace("&amp;", "&");
        let passkey = http_get(gateway.idp_port, &href);
        assert_eq!(passkey.status, 302);
        let back = passkey.header("location").unwrap().to_string();
        assert_eq!(path_of(&back, gateway.port), "/admin/users");
        jar.take(&passkey);
        assert!(jar.get("mfa_session").is_some());
    }
    // The oauth2 filter's IdToken is still pat's push sign-in: the third try goes away again.
    let cookie = jar.header();
    let again = gateway.get("/admin/users", &with_cookies(&cookie));
    assert_eq!(again.status, 302);
    assert_eq!(gateway.counter("wasmcustom.mfa_gate.decision.allow"), 0);
    gateway.assert_no_wasm_failure();
}

/// A step-up *through* the oauth2 filter, per route: Envoy 1.40's `OAuth2PerRoute` gives
/// `/admin` its own oauth2 configuration (an authorization endpoint asking `acr_values=phr`,
/// `max_age=0`, `prompt=login`, its own callback and cookie names). A push session on `/api`
/// is sent to sign in again on `/admin`, and the passkey sign-in comes back with its own
/// cookies. But mfa-gate's token sources are the same on every route: the request then
/// carries two ID tokens (`AdminIdToken` and `IdToken`), and mfa-gate refuses a request with
/// more than one credential (RFC 6750 §2, 400 `invalid_request`). This shape needs mfa-gate to
/// read a token source per route, which it does not today.
#[test]
fn a_per_route_oauth2_configuration_signs_in_again_but_mfa_gate_sees_two_tokens() {
    let gateway = GatewayBuilder::shipped(BOOTSTRAP)
        .bootstrap(|yaml| {
            let hcm = &mut yaml["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
                [0]["typed_config"];
            let mut admin = hcm["http_filters"][0]["typed_config"]["config"].clone();
            let text = |v: &serde_yaml::Value| v.as_str().unwrap().to_string();
            let endpoint = text(&admin["authorization_endpoint"]);
            admin["authorization_endpoint"] = endpoint
                .replace("acr_values=phr", "acr_values=phr&max_age=0&prompt=login")
                .into();
            let redirect = text(&admin["redirect_uri"]);
            admin["redirect_uri"] = redirect
                .replace("/oauth2/callback", "/admin/oauth2/callback")
                .into();
            admin["redirect_path_matcher"] =
                serde_yaml::from_str("path: {exact: /admin/oauth2/callback}").unwrap();
            admin["credentials"]["cookie_names"] = serde_yaml::from_str(
                "{id_token: AdminIdToken, bearer_token: AdminBearerToken, oauth_hmac: AdminOauthHMAC, oauth_expires: AdminOauthExpires, oauth_nonce: AdminOauthNonce, code_verifier: AdminCodeVerifier}",
            )
            .unwrap();
            let routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
                .as_sequence_mut()
                .unwrap();
            let mut route: serde_yaml::Value = serde_yaml::from_str(
                "{match: {prefix: /admin}, route: {cluster: demo_app, timeout: 5s}}",
            )
            .unwrap();
            let mut per_route = serde_yaml::Mapping::new();
            per_route.insert(
                "@type".into(),
                "type.googleapis.com/envoy.extensions.filters.http.oauth2.v3.OAuth2PerRoute".into(),
            );
            per_route.insert("config".into(), admin);
            let mut per_filter = serde_yaml::Mapping::new();
            per_filter.insert("envoy.filters.http.oauth2".into(), per_route.into());
            route["typed_per_filter_config"] = per_filter.into();
            routes.insert(0, route);
        })
        .plugin_config(|config| {
            config["token_sources"] = serde_json::json!([
                {"cookie": "AdminIdToken"},
                {"cookie": "IdToken"}
            ]);
        })
        .start();
    let (jar, _) = sign_in(&gateway, "/api/profile", "push");
    let cookie = jar.header();
    let api = gateway.get("/api/profile", &with_cookies(&cookie));
    assert_eq!(api.json()["headers"]["x-mfa-gate-level"], "push");

    // /admin has its own oauth2 configuration: the push session's cookies do not count
    // there, so the browser is sent to sign in again, asked for phr, max_age=0, prompt=login.
    let (jar, authorize) = sign_in_via(
        &gateway,
        jar,
        "/admin/users",
        "passkey",
        "/admin/oauth2/callback",
        "Admin",
    );
    for (name, value) in [("acr_values", "phr"), ("max_age", "0"), ("prompt", "login")] {
        assert_eq!(
            query_param(&authorize, name).as_deref(),
            Some(value),
            "{name}: {authorize}"
        );
    }
    let cookie = jar.header();
    let admin = gateway.get("/admin/users", &with_cookies(&cookie));
    assert_eq!(admin.status, 400, "{}", admin.text());
    assert_eq!(
        admin.json()["error_description"],
        "the request carries more than one credential"
    );
    assert!(jar.get("AdminIdToken").is_some() && jar.get("IdToken").is_some());
    assert_eq!(
        gateway.counter("wasmcustom.mfa_gate.decision.allow"),
        1,
        "only the first /api"
    );
    gateway.assert_no_wasm_failure();
}

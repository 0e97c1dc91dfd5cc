//! The browser's sign-in through the shipped demo, walked by hand (no browser): the
//! gateway's step-up redirect and its state cookie, the demo IdP's passkey approval, and
//! the callback that comes back to the gateway.

use crate::gateway::Gateway;
use crate::http::{self, Answer};

/// The state cookie the gateway sets on its step-up redirect.
pub const STATE_COOKIE: &str = "mfa_gate_signin";
/// The callback path of envoy/envoy.yaml's `sign_in`.
pub const CALLBACK_PATH: &str = "/.mfa-gate/callback";

/// A sign-in the gateway started.
pub struct Started {
    /// The IdP's authorization URL, as a path on the IdP.
    pub authorize_path: String,
    /// `mfa_gate_signin=...`, for the callback's `Cookie` header.
    pub state_cookie: String,
    /// The whole `set-cookie` of the state cookie (its attributes).
    pub state_set_cookie: String,
}

/// The `name=value` part of the `set-cookie` header naming cookie `name`.
pub fn set_cookie(answer: &Answer, name: &str) -> Option<String> {
    answer
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find(|(_, v)| v.starts_with(&format!("{name}=")))
        .map(|(_, v)| v.clone())
}

/// The demo IdP's session cookie of a push sign-in (`mfa_session=...`).
pub fn push_session(gateway: &Gateway) -> String {
    let login = http::get(gateway.idp_port, "/login/push");
    assert_eq!(login.status, 302, "{}", login.text());
    let cookie = set_cookie(&login, "mfa_session").expect("mfa_session from /login/push");
    cookie.split(';').next().unwrap_or_default().to_string()
}

/// A browser (Accept: text/html) with `cookie` asks for `path`: the gateway's 302 to the
/// IdP with its state cookie.
pub fn start(gateway: &Gateway, path: &str, cookie: &str) -> Started {
    let redirect = gateway.get(path, &[("accept", "text/html"), ("cookie", cookie)]);
    assert_eq!(redirect.status, 302, "{}", redirect.text());
    let location = redirect.header("location").unwrap_or_default().to_string();
    let idp = format!("http://127.0.0.1:{}", gateway.idp_port);
    assert!(
        location.starts_with(&format!("{idp}/authorize?")),
        "{location}"
    );
    let state_set_cookie = set_cookie(&redirect, STATE_COOKIE).expect("the state cookie");
    Started {
        authorize_path: location.trim_start_matches(&idp).to_string(),
        state_cookie: state_set_cookie
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string(),
        state_set_cookie,
    }
}

/// The IdP's page for `started`, then its "Use my passkey" link: the callback URL the IdP
/// sends the browser to, as a path on the gateway.
pub fn approve_with_passkey(gateway: &Gateway, started: &Started) -> String {
    let page = http::get(gateway.idp_port, &started.authorize_path);
    assert_eq!(page.status, 200, "{}", page.text());
    let page = page.text();
    assert!(page.contains("Re-authenticate with your passkey"), "{page}");
    let href = page
        .split("href=\"")
        .find(|rest| rest.starts_with("/authorize/approve") && rest.contains("user=passkey"))
        .and_then(|rest| rest.split('"').next())
        .expect("the passkey link")
        .replace("&amp;", "&");
    let approved = http::get(gateway.idp_port, &href);
    assert_eq!(approved.status, 302, "{}", approved.text());
    let back = approved.header("location").unwrap_or_default();
    let gateway_origin = format!("http://127.0.0.1:{}", gateway.port);
    assert!(
        back.starts_with(&format!("{gateway_origin}{CALLBACK_PATH}?")),
        "{back}"
    );
    back.trim_start_matches(&gateway_origin).to_string()
}

/// The browser opens the callback with the state cookie.
pub fn callback(gateway: &Gateway, callback_path: &str, state_cookie: &str) -> Answer {
    gateway.get(
        callback_path,
        &[("accept", "text/html"), ("cookie", state_cookie)],
    )
}

//! The sign-in the gateway finishes itself (`sign_in` in envoy/envoy.yaml), in real Envoy
//! with the demo IdP: the round trip, the session cookie, the state's single use across
//! workers, logout, and a token endpoint that is down, slow, refusing or talking nonsense.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::sign_in::{self, CALLBACK_PATH};
use mfa_gate_envoy::{Answer, Gateway, GatewayBuilder, KeyServer, Reply};
use std::time::{Duration, Instant};

const SCRIPTED_CLUSTER: &str = "scripted_token_endpoint";

fn metric(gateway: &Gateway, name: &str) -> u64 {
    gateway.counter(&format!("wasmcustom.mfa_gate.sign_in.{name}"))
}

/// The shipped demo; with `token_endpoint`, the code is exchanged at that scripted server
/// (timeout 500 ms) instead of the demo IdP.
fn demo(concurrency: u32, token_endpoint: Option<u16>) -> Gateway {
    let mut builder = GatewayBuilder::shipped("envoy/envoy.yaml").concurrency(concurrency);
    if let Some(port) = token_endpoint {
        builder = builder
            .plugin_config(|json| {
                json["sign_in"]["token_endpoint"]["cluster"] = SCRIPTED_CLUSTER.into();
                json["sign_in"]["token_endpoint"]["timeout_ms"] = 500.into();
            })
            .loopback_cluster(SCRIPTED_CLUSTER, port);
    }
    builder.start()
}

fn page_reason(answer: &Answer) -> String {
    let text = answer.text();
    assert!(text.contains("<title>Sign-in failed</title>"), "{text}");
    text.split("<code>")
        .nth(1)
        .and_then(|r| r.split("</code>").next())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_push_session_steps_up_through_the_gateway_and_the_state_is_used_once() {
    let gateway = demo(2, None);
    let push = sign_in::push_session(&gateway);
    let started = sign_in::start(&gateway, "/admin/users?tab=keys", &push);
    for part in [
        "response_type=code",
        "code_challenge_method=S256",
        "acr_values=phr",
        "prompt=login",
        "nonce=",
        "code_challenge=",
        "redirect_uri=http%3A%2F%2F127.0.0.1%3A",
    ] {
        assert!(
            started.authorize_path.contains(part),
            "{part}: {}",
            started.authorize_path
        );
    }
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=600",
    ] {
        assert!(
            started.state_set_cookie.contains(attribute),
            "{}",
            started.state_set_cookie
        );
    }
    let back = sign_in::approve_with_passkey(&gateway, &started);
    let done = sign_in::callback(&gateway, &back, &started.state_cookie);
    assert_eq!(done.status, 302, "{}", done.text());
    assert_eq!(done.header("location"), Some("/admin/users?tab=keys"));
    let session = sign_in::set_cookie(&done, "mfa_session").expect("the session cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(session.contains(attribute), "{session}");
    }
    let cleared = sign_in::set_cookie(&done, sign_in::STATE_COOKIE).unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let cookie = session.split(';').next().unwrap().to_string();
    let misses = gateway.counter("wasmcustom.mfa_gate.token_cache.miss");
    let admin = gateway.get(
        "/admin/users?tab=keys",
        &[("accept", "text/html"), ("cookie", &cookie)],
    );
    assert_eq!(admin.status, 200, "{}", admin.text());
    assert_eq!(
        admin.json()["headers"]["x-mfa-gate-level"],
        "phishing_resistant"
    );
    assert_eq!(metric(&gateway, "completed"), 1);

    // The same callback again, on fresh connections (either worker): a replay every time,
    // and no session cookie.
    for _ in 0..4 {
        let again = sign_in::callback(&gateway, &back, &started.state_cookie);
        assert_eq!(again.status, 401);
        assert_eq!(page_reason(&again), "state_replayed");
        assert!(sign_in::set_cookie(&again, "mfa_session").is_none());
    }
    assert_eq!(metric(&gateway, "refused"), 4);
    assert!(
        gateway.counter("wasmcustom.mfa_gate.token_cache.miss") <= misses + 1,
        "the ID token was verified at the callback; the next request on that worker hits the cache"
    );
    let log = gateway.envoy_log();
    assert!(
        log.contains(r#"sign_in {"event":"completed","level":"phishing_resistant"}"#),
        "{log}"
    );
    assert!(log.contains(r#"sign_in {"event":"refused","reason":"state_replayed"}"#));
    assert!(
        !log.contains(cookie.trim_start_matches("mfa_session=")),
        "no token in the log"
    );
    gateway.assert_no_wasm_failure();
}

#[test]
fn logout_clears_the_session_cookie_and_a_callback_without_its_cookie_is_refused() {
    let gateway = demo(1, None);
    let out = gateway.get("/.mfa-gate/logout", &[("accept", "text/html")]);
    assert_eq!(out.status, 302);
    assert_eq!(out.header("location"), Some("/"));
    let cleared = sign_in::set_cookie(&out, "mfa_session").expect("mfa_session cleared");
    assert!(
        cleared.starts_with("mfa_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(metric(&gateway, "signed_out"), 1);

    let push = sign_in::push_session(&gateway);
    let started = sign_in::start(&gateway, "/admin/users", &push);
    let back = sign_in::approve_with_passkey(&gateway, &started);
    // Another browser (no state cookie) opening the callback URL: refused, nothing exchanged.
    let stolen = sign_in::callback(&gateway, &back, "other=1");
    assert_eq!(stolen.status, 401);
    assert_eq!(page_reason(&stolen), "state_cookie_missing");
    // The Cancel link: the provider's error comes back and ends the sign-in.
    let denied = format!(
        "{CALLBACK_PATH}?error=access_denied&state={}",
        back.split("state=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
    );
    let answer = sign_in::callback(&gateway, &denied, &started.state_cookie);
    assert_eq!(page_reason(&answer), "provider_error:access_denied");
    let after = sign_in::callback(&gateway, &back, &started.state_cookie);
    assert_eq!(page_reason(&after), "state_replayed");
    assert_eq!(metric(&gateway, "completed"), 0);
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_token_endpoint_that_fails_gives_an_error_page_and_never_a_session() {
    let server = KeyServer::start(Reply::Hangup);
    let gateway = demo(1, Some(server.port()));
    let cases: Vec<(Reply, &str)> = vec![
        // Envoy answers a reset itself, 503 (its "upstream connect error" reply).
        (Reply::Hangup, "token_endpoint_failed:503"),
        (
            Reply::Delayed(Duration::from_secs(3), Box::new(Reply::text(200, "{}"))),
            // Slower than the 500 ms timeout: Envoy's 504.
            "token_endpoint_failed:504",
        ),
        (
            Reply::json(400, &serde_json::json!({"error": "invalid_grant"})),
            "token_endpoint_failed:invalid_grant",
        ),
        (Reply::text(503, "overloaded"), "token_endpoint_failed:503"),
        (
            Reply::text(200, "<html>not json"),
            "token_answer_malformed:json",
        ),
        (
            Reply::json(200, &serde_json::json!({"id_token": "a.b.c"})),
            "id_token_invalid:malformed_token",
        ),
        (
            Reply::Http {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: vec![b' '; 70 * 1024],
            },
            "token_answer_malformed:too_large",
        ),
    ];
    let push = sign_in::push_session(&gateway);
    for (i, (reply, reason)) in cases.into_iter().enumerate() {
        server.set(reply);
        let started = sign_in::start(&gateway, "/admin/users", &push);
        let back = sign_in::approve_with_passkey(&gateway, &started);
        let at = Instant::now();
        let answer = sign_in::callback(&gateway, &back, &started.state_cookie);
        assert_eq!(answer.status, 502, "{reason}: {}", answer.text());
        let shown = page_reason(&answer);
        assert_eq!(shown, reason);
        assert!(
            sign_in::set_cookie(&answer, "mfa_session").is_none(),
            "{reason}: no session"
        );
        assert!(
            at.elapsed() < Duration::from_secs(3),
            "{reason}: bounded by the 500 ms timeout"
        );
        assert_eq!(metric(&gateway, "failed"), i as u64 + 1);
    }
    // The push session is still a push session: /admin still steps up.
    let still = gateway.get(
        "/admin/users",
        &[("accept", "text/html"), ("cookie", &push)],
    );
    assert_eq!(still.status, 302);
    gateway.assert_no_wasm_failure();
}

/// `private_key_jwt`: the gateway signs an ES256 client assertion with a private JWK from
/// Envoy's environment, and the demo IdP, holding the public key, accepts it; another key
/// is refused by the IdP, and that sign-in ends on the error page.
#[test]
fn private_key_jwt_authenticates_the_gateway_at_the_token_endpoint() {
    use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
    use jwt_simple::prelude::ES256KeyPair;
    let client = ES256KeyPair::generate();
    let scratch = std::env::temp_dir().join(format!("mfa-gate-client-{}.pem", std::process::id()));
    std::fs::write(&scratch, client.public_key().to_pem().unwrap()).unwrap();
    let jwk = |key: &ES256KeyPair| {
        let d = Base64UrlSafeNoPadding::encode_to_string(key.to_bytes()).unwrap();
        let mut jwk: serde_json::Value = serde_json::from_str(&key.public_key().to_jwk()).unwrap();
        jwk["d"] = d.into();
        jwk["kid"] = "gateway-1".into();
        jwk.to_string()
    };
    for (key, expected) in [
        (client, None),
        (
            ES256KeyPair::generate(),
            Some("token_endpoint_failed:invalid_client"),
        ),
    ] {
        let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
            .demo_args(&["--client-key-pem", scratch.to_str().unwrap()])
            .plugin_config(|json| {
                let sign_in = &mut json["sign_in"];
                sign_in["client_auth"] = "private_key_jwt".into();
                sign_in.as_object_mut().unwrap().remove("client_secret_env");
                sign_in["client_key_env"] = "MFA_GATE_CLIENT_JWK".into();
            })
            .envoy_env("MFA_GATE_CLIENT_JWK", &jwk(&key))
            .host_env_keys(&["MFA_GATE_CLIENT_JWK"])
            .start();
        let push = sign_in::push_session(&gateway);
        let started = sign_in::start(&gateway, "/admin/users", &push);
        let back = sign_in::approve_with_passkey(&gateway, &started);
        let done = sign_in::callback(&gateway, &back, &started.state_cookie);
        match expected {
            None => {
                assert_eq!(done.status, 302, "{}", done.text());
                let session = sign_in::set_cookie(&done, "mfa_session").expect("session");
                let cookie = session.split(';').next().unwrap();
                let admin = gateway.get("/admin/users", &[("cookie", cookie)]);
                assert_eq!(admin.status, 200, "{}", admin.text());
            }
            Some(reason) => {
                assert_eq!(done.status, 502, "{}", done.text());
                assert_eq!(page_reason(&done), reason);
                assert!(sign_in::set_cookie(&done, "mfa_session").is_none());
            }
        }
        let log = gateway.envoy_log();
        assert!(!log.contains("\"d\":"), "no key material in the log");
        gateway.assert_no_wasm_failure();
    }
    let _ = std::fs::remove_file(&scratch);
}

//! Peer faults no other suite shows, in real Envoy 1.40 with the real peer servers: an
//! oversized JWKS body, the SSF transmitter oversized / resetting / down, the IdP session
//! API slow / garbage / resetting, the push-counting rate-limit service slow or answering
//! garbage, the introspection cluster down. Each: the status, reason and counter the README's
//! "When a peer fails" table says, no wasm VM failure, and recovery once the fault ends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::revocation::{
    assert_session_revoked, end_sessions_at_idp, OKTA_API_TOKEN, POLL_BEARER, POLL_BEARER_ENV,
    PUSH_BEARER, PUSH_BEARER_ENV, PUSH_PATH,
};
use mfa_gate_envoy::{
    free_port, jwks_of, now_secs, rls_cluster, Answer, Gateway, GatewayBuilder,
    IntrospectionServer, KeyServer, RateLimitService, Redis, Reply, TestKey, DEMO_AUDIENCE,
    DEMO_ISSUER,
};
use serde_json::json;
use std::time::{Duration, Instant};

/// Over the filter's 1 MiB JWKS bound (src/token/jwks.rs `MAX_JWKS_BYTES`).
const OVER_JWKS_BOUND: usize = 1024 * 1024 + 4096;

/// Over the filter's 2 MiB poll-answer bound (src/events/poll.rs `MAX_POLL_BODY_BYTES`).
const OVER_POLL_BOUND: usize = 2 * 1024 * 1024 + 4096;

/// The cluster polls go to: the test's scripted transmitter.
const POLL_CLUSTER: &str = "scripted_transmitter";

fn metric(gateway: &Gateway, name: &str) -> u64 {
    gateway.counter(&format!("wasmcustom.mfa_gate.{name}"))
}

fn profile(gateway: &Gateway, token: &str) -> Answer {
    gateway.get(
        "/api/profile",
        &[("authorization", &format!("Bearer {token}"))],
    )
}

/// A well-formed JWKS holding `keys`, padded past the bound with an extra member.
fn oversized_jwks(keys: &[&TestKey]) -> Reply {
    let mut document = jwks_of(keys);
    document["padding"] = "x".repeat(OVER_JWKS_BOUND).into();
    Reply::json(200, &document)
}

#[test]
fn an_oversized_key_set_is_refused_no_keys_gives_keys_unavailable_kept_keys_stay_then_recovers() {
    let good = TestKey::generate("ES256", "k-good");
    let rotated = TestKey::generate("ES256", "k-rotated");
    // The oversized set holds the very key the token is signed with: only the size refuses it.
    let keys = KeyServer::start(oversized_jwks(&[&good]));
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .idp_cluster_port(keys.port())
        .plugin_config(|c| c["issuers"][0]["remote_jwks"]["timeout_ms"] = 1000.into())
        .start();

    // No keys yet: the request's own fetch gets the oversized set.
    let failures = metric(&gateway, "jwks_fetch.failure");
    let answer = profile(&gateway, &good.demo_token("a@example.com", &["pwd", "pop"]));
    assert_eq!(answer.status, 401, "no keys yet: {}", answer.text());
    assert!(answer
        .header("www-authenticate")
        .unwrap_or("")
        .contains("error=\"invalid_token\""));
    assert_eq!(metric(&gateway, "reason.keys_unavailable"), 1);
    gateway.wait_until("the oversized fetch counted as a failure", |g| {
        metric(g, "jwks_fetch.failure") > failures
    });
    assert_eq!(metric(&gateway, "jwks_fetch.success"), 0);
    let log = gateway.envoy_log();
    assert!(
        log.contains("the limit is 1048576"),
        "the size is the reason logged"
    );

    // Recovery: the key server answers a normal set; the next request fetches it.
    keys.set(Reply::json(200, &jwks_of(&[&good])));
    gateway.wait_until("a good fetch after the oversized ones", |g| {
        profile(g, &good.demo_token("b@example.com", &["pwd", "pop"])).status == 200
    });
    assert!(metric(&gateway, "jwks_fetch.success") >= 1);

    // With keys: an oversized set on the refresh an unknown kid triggers keeps the last good.
    keys.set(oversized_jwks(&[&good, &rotated]));
    let failures = metric(&gateway, "jwks_fetch.failure");
    let unknown = profile(
        &gateway,
        &rotated.demo_token("c@example.com", &["pwd", "pop"]),
    );
    assert_eq!(unknown.status, 401, "unknown kid: {}", unknown.text());
    assert_eq!(metric(&gateway, "jwks_fetch.unknown_kid_refresh"), 1);
    gateway.wait_until("the oversized refresh counted as a failure", |g| {
        metric(g, "jwks_fetch.failure") > failures
    });
    assert!(
        gateway.envoy_log().contains("keeping the last good keys"),
        "the kept keys are logged"
    );
    let kept = profile(&gateway, &good.demo_token("d@example.com", &["pwd", "pop"]));
    assert_eq!(kept.status, 200, "kept keys: {}", kept.text());
    assert_eq!(
        kept.json()["headers"]["x-mfa-gate-subject"],
        "d@example.com"
    );
    gateway.assert_no_wasm_failure();
}

/// envoy/envoy.yaml with the demo IdP pushing SETs to the gateway (so revocations get
/// recorded) and the gateway also polling a scripted transmitter at `poll_port` every second
/// (500 ms timeout).
fn pushed_and_polled(poll_port: u16) -> GatewayBuilder {
    let demo_args = [
        "--okta-api-token",
        OKTA_API_TOKEN,
        "--ssf-bearer",
        POLL_BEARER,
        "--ssf-push-url",
        &format!("http://127.0.0.1:{{listener}}{PUSH_PATH}"),
        "--ssf-push-bearer",
        PUSH_BEARER,
    ]
    .map(str::to_string);
    let demo_args: Vec<&str> = demo_args.iter().map(String::as_str).collect();
    GatewayBuilder::shipped("envoy/envoy.yaml")
        .plugin_config(|c| {
            let authority = c["issuers"][0]["remote_jwks"]["authority"].clone();
            c["revocation"] = json!({
                "max_token_lifetime_secs": 3600,
                "transmitters": [{
                    "name": "demo",
                    "issuer": DEMO_ISSUER,
                    "audience": DEMO_AUDIENCE,
                    "algorithms": ["ES256"],
                    "remote_jwks": {
                        "cluster": "demo_idp", "path": "/ssf/jwks.json",
                        "authority": authority, "timeout_ms": 1000,
                    },
                    "push": {"path": PUSH_PATH, "bearer_env": PUSH_BEARER_ENV},
                    "poll": {
                        "cluster": POLL_CLUSTER, "path": "/ssf/poll", "authority": authority,
                        "interval_secs": 1, "timeout_ms": 500, "bearer_env": POLL_BEARER_ENV,
                    },
                }],
            });
        })
        .plugin_option("allow_on_headers_stop_iteration", true.into())
        .envoy_env(PUSH_BEARER_ENV, PUSH_BEARER)
        .envoy_env(POLL_BEARER_ENV, POLL_BEARER)
        .host_env_keys(&[PUSH_BEARER_ENV, POLL_BEARER_ENV])
        .demo_args(&demo_args)
        .loopback_cluster(POLL_CLUSTER, poll_port)
}

/// Waits (up to 40 s: a failed poll backs off) until `counter` moves past `before`.
fn wait_for_counter(gateway: &Gateway, what: &str, counter: &str, before: u64) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while metric(gateway, counter) <= before {
        assert!(Instant::now() < deadline, "{what}: {counter} never moved");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn empty_poll_answer() -> Reply {
    Reply::json(200, &json!({"sets": {}}))
}

#[test]
fn a_transmitter_oversized_resetting_or_down_is_a_counted_poll_failure_revocations_stay_polls_recover(
) {
    let transmitter = KeyServer::start(empty_poll_answer());
    let port = transmitter.port();
    let gateway = pushed_and_polled(port).start();
    let token = gateway.token("push");
    assert_eq!(profile(&gateway, &token).status, 200);
    end_sessions_at_idp(gateway.idp_port, "push");
    gateway.wait_until("the pushed SET recorded", |g| {
        profile(g, &token).status == 401
    });
    assert!(metric(&gateway, "revocation.event.accepted") >= 1);
    assert_session_revoked(&profile(&gateway, &token), "pushed");
    wait_for_counter(&gateway, "healthy polls", "revocation.poll.success", 0);

    let mut padded = json!({"sets": {}});
    padded["padding"] = "x".repeat(OVER_POLL_BOUND).into();
    let faults = [
        ("an oversized answer", Reply::json(200, &padded)),
        ("a reset", Reply::Hangup),
    ];
    let mut transmitter = Some(transmitter);
    for (what, fault) in faults {
        transmitter.as_ref().unwrap().set(fault);
        let failures = metric(&gateway, "revocation.poll.failure");
        wait_for_counter(&gateway, what, "revocation.poll.failure", failures);
        assert_session_revoked(&profile(&gateway, &token), what);
        transmitter.as_ref().unwrap().set(empty_poll_answer());
        let successes = metric(&gateway, "revocation.poll.success");
        wait_for_counter(&gateway, what, "revocation.poll.success", successes);
    }
    let log = gateway.envoy_log();
    let poll_failures: Vec<&str> = log.lines().filter(|l| l.contains("poll of")).collect();
    assert!(
        poll_failures
            .iter()
            .any(|l| l.contains("poll response is") && l.contains("bytes, over the limit")),
        "the oversized answer's reason is logged: {poll_failures:#?}"
    );

    // Down: the reset above left no pooled connection; now nothing listens on the port.
    transmitter.as_ref().unwrap().set(Reply::Hangup);
    drop(transmitter.take());
    let failures = metric(&gateway, "revocation.poll.failure");
    wait_for_counter(
        &gateway,
        "cluster down",
        "revocation.poll.failure",
        failures,
    );
    let successes = metric(&gateway, "revocation.poll.success");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        metric(&gateway, "revocation.poll.success"),
        successes,
        "no poll succeeds while the transmitter is down"
    );
    assert_session_revoked(&profile(&gateway, &token), "cluster down");

    // The transmitter comes back on the same port: polling recovers.
    let _back = KeyServer::start_on(port, empty_poll_answer());
    wait_for_counter(&gateway, "back up", "revocation.poll.success", successes);
    assert_session_revoked(&profile(&gateway, &token), "after recovery");
    gateway.assert_no_wasm_failure();
}

/// The cluster the IdP session API calls go to: the test's scripted API.
const IDP_API_CLUSTER: &str = "scripted_idp_api";

#[test]
fn an_idp_session_api_garbage_resetting_or_slow_is_counted_and_retried_the_local_revocation_stands()
{
    let api = KeyServer::start(Reply::Raw(
        b"\x00\x01 this is not HTTP at all\r\n\r\n".to_vec(),
    ));
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .plugin_config(|c| {
            let api = &mut c["revocation"]["idp_sessions"][0];
            api["cluster"] = IDP_API_CLUSTER.into();
            api["timeout_ms"] = 300.into();
        })
        .loopback_cluster(IDP_API_CLUSTER, api.port())
        .start();
    let token = gateway.token("push");
    // The shipped revoke rule: /admin/keys ends the session here and asks the IdP to.
    let keys = gateway.get(
        "/admin/keys/rotate",
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_session_revoked(&keys, "/admin/keys");
    assert_eq!(metric(&gateway, "decision.revoke"), 1);

    // Each attempt meets the next fault: garbage (the first), a reset, an answer too late.
    let faults = [
        ("a reset", Reply::Hangup),
        (
            "slower than timeout_ms (300)",
            Reply::Delayed(
                Duration::from_millis(1500),
                Box::new(Reply::Http {
                    status: 204,
                    headers: Vec::new(),
                    body: Vec::new(),
                }),
            ),
        ),
    ];
    let mut failures = 0;
    wait_for_counter(&gateway, "garbage", "idp_session.failure", failures);
    for (what, fault) in faults {
        failures = metric(&gateway, "idp_session.failure");
        assert_session_revoked(&profile(&gateway, &token), what);
        api.set(fault);
        wait_for_counter(&gateway, what, "idp_session.failure", failures);
    }
    assert_session_revoked(&profile(&gateway, &token), "after the slow answer");
    assert_eq!(metric(&gateway, "idp_session.ended"), 0);
    assert_eq!(metric(&gateway, "idp_session.gave_up"), 0, "still retried");
    assert!(
        api.hits() >= 3,
        "the API was called each time: {}",
        api.hits()
    );
    // Envoy answers the wasm call itself: 502 for garbage, 503 for a reset, 504 for a timeout.
    let log = gateway.envoy_log();
    for status in [502, 503, 504] {
        assert!(
            log.contains(&format!("HTTP {status}; trying again")),
            "{status}: {}",
            gateway.log_tail()
        );
    }

    // Recovery: the API answers; the retry ends the session at the IdP.
    api.set(Reply::Http {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
    });
    wait_for_counter(&gateway, "recovery", "idp_session.ended", 0);
    assert_eq!(metric(&gateway, "idp_session.gave_up"), 0);
    assert_session_revoked(&profile(&gateway, &token), "after the IdP ended it");
    assert!(
        !gateway.envoy_log().contains("demo-okta-api-token"),
        "the API credential never reaches a log"
    );
    gateway.assert_no_wasm_failure();
}

/// The rate-limit service's limits: mfa-gate's defaults (3 per user in 5 minutes).
fn push_limits() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../envoy/ratelimit-limits.yaml"),
    )
    .unwrap()
}

/// A gateway counting push prompts through the service at 127.0.0.1:`port` (500 ms timeout).
fn counted_by_service_at(port: u16, on_unavailable: &'static str) -> Gateway {
    GatewayBuilder::shipped("envoy/envoy.yaml")
        .plugin_config(move |config| {
            config["push_prompts"]["counting"] = json!({
                "mode": "service",
                "cluster": "ratelimit",
                "domain": "mfa-gate",
                "timeout_ms": 500,
                "on_unavailable": on_unavailable,
            });
        })
        .bootstrap(move |bootstrap| {
            let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            bootstrap["static_resources"]["clusters"]
                .as_sequence_mut()
                .unwrap()
                .push(rls_cluster("ratelimit", address));
        })
        .start()
}

/// A Duo Auth API push prompt for `user` (the demo phone denies it).
fn push_prompt(gateway: &Gateway, user: &str) -> Answer {
    let body = format!(
        "username={}&factor=push&device=auto&demo_answer=deny",
        user.replace('@', "%40")
    );
    gateway.request(
        "POST",
        "/auth/v2/auth",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-forwarded-for", "198.51.100.40"),
        ],
        body.as_bytes(),
    )
}

/// The `counting` of the last prompt's decision record.
fn last_push_counting(gateway: &Gateway) -> serde_json::Value {
    let records = gateway.decision_records();
    let last = records
        .iter()
        .rev()
        .find(|r| r["kind"] == "push" && r["event"] == "push_prompt")
        .unwrap();
    last["counting"].clone()
}

#[test]
fn a_rate_limit_service_too_slow_or_answering_garbage_is_unavailable_local_counts_deny_refuses_then_recovers(
) {
    let port = free_port();
    // Too slow: the kernel accepts the connection, nothing ever reads or answers it.
    let silent = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let local = counted_by_service_at(port, "local");
    let deny = counted_by_service_at(port, "deny");

    let check_unavailable = |what: &str, user: &str| {
        let (unavailable, fallback) = (
            metric(&local, "push.service.unavailable"),
            metric(&local, "push.service.fallback_local"),
        );
        let counted_here = push_prompt(&local, user);
        assert_eq!(
            counted_here.status,
            200,
            "{what}, local: {}",
            counted_here.text()
        );
        assert_eq!(last_push_counting(&local), "local_fallback", "{what}");
        assert_eq!(
            metric(&local, "push.service.fallback_local"),
            fallback + 1,
            "{what}"
        );
        assert!(
            metric(&local, "push.service.unavailable") > unavailable,
            "{what}"
        );
        let refused = push_prompt(&deny, user);
        assert_eq!(refused.status, 503, "{what}, deny: {}", refused.text());
        assert_eq!(refused.json()["reason"], "push_limit_unavailable", "{what}");
    };
    check_unavailable("slower than timeout_ms", "slow@example.com");
    // Envoy ends a timed-out gRPC call UNAVAILABLE too, so the log gives `rls_unavailable`.
    assert!(
        local
            .envoy_log()
            .contains("the rate-limit service could not count it (rls_"),
        "{}",
        local.log_tail()
    );

    // Garbage: not HTTP/2 at all.
    drop(silent);
    let garbage = KeyServer::start_on(
        port,
        Reply::Raw(b"HTTP/1.1 200 OK\r\n\r\nnot grpc".to_vec()),
    );
    check_unavailable("garbage", "garbage@example.com");
    assert!(garbage.hits() >= 1, "the garbage server was asked");

    // Recovery: the real service comes up on the port.
    drop(garbage);
    let redis = Redis::start();
    let _rls = RateLimitService::start_on(port, &redis.url(), &push_limits());
    for gateway in [&local, &deny] {
        gateway.wait_until("the service answers again", |g| {
            let before = metric(g, "push.service.answered");
            let answer = push_prompt(g, "back@example.com");
            answer.status == 200 && metric(g, "push.service.answered") > before
        });
        assert_eq!(last_push_counting(gateway), "service");
        gateway.assert_no_wasm_failure();
    }
}

/// The introspection client secret: a VM environment variable and its value.
const INTROSPECTION_SECRET_ENV: &str = "MFA_GATE_INTROSPECTION_SECRET";
const INTROSPECTION_SECRET: &str = "introspection-secret-9f3e";

#[test]
fn an_introspection_cluster_down_fails_closed_with_introspection_unavailable_then_recovers() {
    let port = free_port();
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .envoy_env(INTROSPECTION_SECRET_ENV, INTROSPECTION_SECRET)
        .host_env_keys(&[INTROSPECTION_SECRET_ENV])
        .plugin_config(|c| {
            c["issuers"][0]["introspection"] = json!({
                "cluster": "introspection_peer",
                "endpoint": "http://127.0.0.1:10001/oauth/introspect",
                "client_id": "mfa-gate-demo",
                "client_secret_env": INTROSPECTION_SECRET_ENV,
                "auth": "client_secret_basic",
                "timeout_ms": 300,
                "cache_ttl_secs": 300,
                "inactive_ttl_secs": 10
            })
        })
        .loopback_cluster("introspection_peer", port)
        .start();
    let token = "opaque-while-down";
    let down = profile(&gateway, token);
    assert_eq!(down.status, 401, "cluster down: {}", down.text());
    assert!(down
        .header("www-authenticate")
        .unwrap_or("")
        .contains("error=\"invalid_token\""));
    let records = gateway.decision_records();
    assert_eq!(
        records.last().unwrap()["reasons"][0],
        "introspection_unavailable",
        "{}",
        gateway.log_tail()
    );
    assert_eq!(metric(&gateway, "introspection.unavailable"), 1);
    assert_eq!(metric(&gateway, "decision.allow"), 0);

    // The endpoint comes up on the cluster's port: the same token is introspected and passes.
    let server = IntrospectionServer::start_on(port);
    let now = now_secs();
    server.answer(
        token,
        json!({"active": true, "iss": "https://idp.mfa-gate.test", "sub": "back@example.com",
               "aud": "mfa-gate-demo", "amr": ["pwd", "pop"], "iat": now - 30,
               "auth_time": now - 30, "exp": now + 3600, "token_type": "Bearer"}),
    );
    let back = profile(&gateway, token);
    assert_eq!(back.status, 200, "recovered: {}", back.text());
    assert_eq!(
        back.json()["headers"]["x-mfa-gate-subject"],
        "back@example.com"
    );
    assert_eq!(server.calls_for(token), 1);
    assert_eq!(metric(&gateway, "introspection.unavailable"), 1);
    gateway.assert_no_wasm_failure();
}

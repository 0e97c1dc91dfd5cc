//! Hostile header bytes in real Envoy. What Envoy's HTTP/1 codec refuses (NUL, control
//! characters, bytes above 0x7F in the Host or the path) never reaches the filter: 400. What
//! it lets through (bytes above 0x7F — obs-text — in header values, duplicate headers, odd
//! Host lines, a 30 KB token) gets an ordinary answer from mfa-gate, never a 5xx, and the VM
//! keeps running: a normal request afterwards is still allowed. Every byte 0x00-0xFF in
//! Authorization, Cookie, DPoP and the path: Envoy refuses it before the filter (no decision
//! counted) or mfa-gate answers it, never 5xx, never 200 on /admin/users without a passkey
//! session; thousands of cookies, headers near and over the 60 KiB limit (431).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{Answer, EchoUpstream, Gateway, GatewayBuilder};

/// `GET path` with these header lines (raw bytes) and `connection: close`.
fn raw_get(gateway: &Gateway, path: &[u8], lines: &[&[u8]]) -> Answer {
    let mut bytes = [b"GET ".as_slice(), path, b" HTTP/1.1\r\n"].concat();
    if !lines
        .iter()
        .any(|l| l.to_ascii_lowercase().starts_with(b"host:"))
    {
        bytes.extend_from_slice(format!("host: 127.0.0.1:{}\r\n", gateway.port).as_bytes());
    }
    for line in lines {
        bytes.extend_from_slice(line);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"connection: close\r\n\r\n");
    gateway.raw(&bytes)
}

#[test]
fn bytes_envoy_lets_through_get_ordinary_answers() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .start();
    let push = gateway.token("push");
    let passkey = gateway.token("passkey");

    // Refused by Envoy's codec before any filter runs.
    for (what, path, line) in [
        (
            "NUL in a value",
            b"/api/profile".as_slice(),
            b"x-a: a\x00b".as_slice(),
        ),
        (
            "a control character in a value",
            b"/api/profile",
            b"x-a: a\x01b",
        ),
        (
            "a byte above 0x7F in the Host",
            b"/api/profile",
            b"host: exa\xffmple",
        ),
        ("a byte above 0x7F in the path", b"/api/\xff", b"x-a: b"),
    ] {
        assert_eq!(raw_get(&gateway, path, &[line]).status, 400, "{what}");
    }

    // Let through by Envoy: mfa-gate answers a malformed credential with 401, never 5xx.
    let malformed = |lines: &[&[u8]], what: &str| {
        let answer = raw_get(&gateway, b"/api/profile", lines);
        assert_eq!(answer.status, 401, "{what}: {}", answer.text());
        let www = answer.header("www-authenticate").unwrap_or("");
        assert!(www.contains("error=\"invalid_token\""), "{what}: {www}");
    };
    malformed(
        &[b"authorization: Bearer \xff\xfe\x80"],
        "obs-text bearer token",
    );
    malformed(
        &[b"cookie: mfa_session=\xc3\x28\xff"],
        "obs-text session cookie",
    );
    let huge = format!("authorization: Bearer {}", "a".repeat(30_000));
    malformed(&[huge.as_bytes()], "a 30 KB token");
    // Two Authorization lines reach the filter joined with ",": one ambiguous credential.
    let first = format!("authorization: Bearer {push}");
    let second = format!("authorization: Bearer {passkey}");
    malformed(&[first.as_bytes(), second.as_bytes()], "two bearer tokens");

    // Two Cookie lines with different session tokens: two credentials, refused (an
    // upstream may read either one).
    let first = format!("cookie: mfa_session={push}");
    let second = format!("cookie: mfa_session={passkey}");
    let answer = raw_get(
        &gateway,
        b"/admin/users",
        &[first.as_bytes(), second.as_bytes()],
    );
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_request\""));

    // Spoofed identity headers, in any case and with any bytes, never reach the upstream.
    let answer = raw_get(
        &gateway,
        b"/health",
        &[b"x-mfa-gate-level: \xff\xfe", b"X-MFA-GATE-SUBJECT: root"],
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let seen = EchoUpstream::headers_seen(&answer);
    assert!(
        !seen.iter().any(|(k, _)| k.starts_with("x-mfa-gate-")),
        "{seen:?}"
    );
    let bearer = format!("authorization: Bearer {push}");
    let answer = raw_get(
        &gateway,
        b"/api/profile",
        &[
            b"x-mfa-gate-subject: admin@example.com",
            b"X-Mfa-Gate-Level: \xffhardware",
            bearer.as_bytes(),
        ],
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let seen = EchoUpstream::headers_seen(&answer);
    let values = |name: &str| -> Vec<&str> {
        seen.iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(
        values("x-mfa-gate-subject"),
        ["pat@example.com"],
        "{seen:?}"
    );
    assert_eq!(values("x-mfa-gate-level"), ["push"], "{seen:?}");

    // Odd bytes in headers the policy reads (Accept, Origin) and odd Host lines.
    let answer = raw_get(
        &gateway,
        b"/admin/users",
        &[b"accept: text/html\xff", bearer.as_bytes()],
    );
    assert!(
        matches!(answer.status, 302 | 401),
        "{}: {}",
        answer.status,
        answer.text()
    );
    let answer = gateway.raw(
        format!(
            "OPTIONS /admin/users HTTP/1.1\r\nhost: 127.0.0.1:{}\r\norigin: https://\u{ff}.example\r\n\
             access-control-request-method: POST\r\nconnection: close\r\n\r\n",
            gateway.port
        )
        .as_bytes(),
    );
    assert!(
        answer.status < 500,
        "preflight with an odd origin: {}",
        answer.status
    );
    for host in ["host: 127.0.0.1:1:2", "host: [::1", "host: a..b", "host: "] {
        let answer = raw_get(
            &gateway,
            b"/admin/users",
            &[host.as_bytes(), bearer.as_bytes()],
        );
        assert!(
            matches!(answer.status, 400 | 401),
            "{host:?}: {} {}",
            answer.status,
            answer.text()
        );
    }

    // The VM survived all of it.
    let answer = gateway.get(
        "/admin/users",
        &[("authorization", &format!("Bearer {passkey}"))],
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    gateway.assert_no_wasm_failure();
}

/// What a request is for, its path, its header lines.
type RawRequest<'a> = (&'a str, &'a [u8], Vec<&'a [u8]>);

/// The sum of mfa-gate's decision counters: it moves only when the filter saw the request.
fn decisions(gateway: &Gateway) -> u64 {
    ["allow", "step_up", "deny"]
        .iter()
        .map(|d| gateway.counter(&format!("wasmcustom.mfa_gate.decision.{d}")))
        .sum()
}

#[test]
fn every_byte_in_credentials_and_path_gets_an_ordinary_answer() {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .echo_upstream()
        .start();
    // Not phishing-resistant: /admin/users must never answer 200 with it, whatever the bytes.
    let push = gateway.token("push");
    let passkey = gateway.token("passkey");
    let (mut refused_by_codec, mut seen_by_filter) = (0, 0);
    for byte in 0u8..=255 {
        let with_byte = |prefix: &str| [prefix.as_bytes(), &[byte], b"x"].concat();
        let authorization = with_byte(&format!("authorization: Bearer {push}"));
        let cookie = with_byte(&format!("cookie: mfa_session={push}"));
        let dpop = with_byte("dpop: eyJhbGciOiJFUzI1NiJ9.e30.");
        let bearer = format!("authorization: Bearer {push}");
        let path = [b"/admin/users".as_slice(), &[byte], b"x"].concat();
        let requests: [RawRequest; 4] = [
            ("authorization", b"/admin/users", vec![&authorization]),
            ("cookie", b"/admin/users", vec![&cookie]),
            ("dpop", b"/admin/users", vec![bearer.as_bytes(), &dpop]),
            ("path", &path, vec![bearer.as_bytes()]),
        ];
        for (place, path, lines) in requests {
            let before = decisions(&gateway);
            let answer = raw_get(&gateway, path, &lines);
            let what = format!("byte {byte:#04x} in the {place}");
            if decisions(&gateway) == before {
                // Envoy refused it before the filter ran: 400, or 426 when a CR/LF in the path
                // left an HTTP/0.9-like request line (or answered a redirect itself).
                assert!(
                    matches!(answer.status, 400 | 301 | 404 | 426),
                    "{what}: {} {}",
                    answer.status,
                    answer.text()
                );
                refused_by_codec += 1;
            } else {
                assert!(
                    answer.status < 500,
                    "{what}: {} {}",
                    answer.status,
                    answer.text()
                );
                assert_ne!(answer.status, 200, "{what}: {}", answer.text());
                seen_by_filter += 1;
            }
        }
    }
    assert!(
        refused_by_codec > 0 && seen_by_filter > 0,
        "{refused_by_codec} / {seen_by_filter}"
    );

    // Different tokens in many places at once (bearer, cookie, query, a second Authorization
    // line): never the passkey session's 200. (The query is no token source in
    // envoy/envoy.yaml: a bearer plus a query token is just the bearer.)
    let bearer = format!("authorization: Bearer {passkey}");
    let cookie = format!("cookie: mfa_session={push}");
    let second = format!("authorization: Bearer {push}");
    let query = format!("/admin/users?access_token={push}");
    let places: [RawRequest; 2] = [
        (
            "bearer + cookie",
            b"/admin/users",
            vec![bearer.as_bytes(), cookie.as_bytes()],
        ),
        (
            "bearer twice + cookie + query",
            query.as_bytes(),
            vec![bearer.as_bytes(), second.as_bytes(), cookie.as_bytes()],
        ),
    ];
    for (what, path, lines) in places {
        let answer = raw_get(&gateway, path, &lines);
        assert!(
            answer.status < 500 && answer.status != 200,
            "{what}: {} {}",
            answer.status,
            answer.text()
        );
    }

    // Thousands of cookies, and one near Envoy's 60 KiB header limit and one over it.
    let many: String = (0..3000).map(|i| format!("c{i}=v; ")).collect();
    let many = format!("cookie: {many}mfa_session={push}");
    let answer = raw_get(&gateway, b"/admin/users", &[many.as_bytes()]);
    assert!(
        answer.status < 500 && answer.status != 200,
        "3000 cookies: {}",
        answer.status
    );
    let near = format!("x-pad: {}", "a".repeat(50 * 1024));
    let answer = raw_get(&gateway, b"/health", &[near.as_bytes()]);
    assert_eq!(answer.status, 200, "50 KiB header: {}", answer.text());
    let over = format!("x-pad: {}", "a".repeat(61 * 1024));
    let answer = raw_get(&gateway, b"/health", &[over.as_bytes()]);
    assert_eq!(answer.status, 431, "61 KiB header: {}", answer.text());

    // The VM survived: a normal request is still allowed, no wasm failure stat moved.
    let answer = gateway.get(
        "/admin/users",
        &[("authorization", &format!("Bearer {passkey}"))],
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let wasm_stats: Vec<String> = gateway
        .stats()
        .into_keys()
        .filter(|name| name.starts_with("wasm."))
        .collect();
    eprintln!("wasm stats: {wasm_stats:?}");
    assert!(
        wasm_stats
            .iter()
            .any(|n| n.ends_with("_failure") || n.ends_with(".failed")),
        "Envoy reports wasm failure stats to assert on: {wasm_stats:?}"
    );
    gateway.assert_no_wasm_failure();
}

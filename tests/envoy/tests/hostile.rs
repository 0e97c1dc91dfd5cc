//! Hostile header bytes in real Envoy. What Envoy's HTTP/1 codec refuses (NUL, control
//! characters, bytes above 0x7F in the Host or the path) never reaches the filter: 400. What
//! it lets through (bytes above 0x7F — obs-text — in header values, duplicate headers, odd
//! Host lines, a 30 KB token) gets an ordinary answer from mfa-gate, never a 5xx, and the VM
//! keeps running: a normal request afterwards is still allowed.
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

    // Two Cookie lines: Envoy joins them with "; ", the first session cookie counts.
    let first = format!("cookie: mfa_session={push}");
    let second = format!("cookie: mfa_session={passkey}");
    let answer = raw_get(
        &gateway,
        b"/admin/users",
        &[first.as_bytes(), second.as_bytes()],
    );
    assert_eq!(answer.status, 401, "the push session is the one judged");
    assert!(answer
        .header("www-authenticate")
        .unwrap()
        .contains("insufficient_user_authentication"));

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

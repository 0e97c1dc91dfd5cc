//! `mfa-gate-host serve` end to end: the built binary on an ephemeral loopback port, in front of
//! `mfa-gate-host upstream-echo`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use mfa_gate_host::upstream_http::send_parts;
use mfa_gate_host::HttpResponse;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A child process killed when the test ends.
struct Running {
    child: Child,
    address: String,
    _stdout: BufReader<ChildStdout>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mfa-gate-host ARGS` and waits for its `listening on ADDR` line.
fn start(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfa-gate-host"))
        .args(args)
        .current_dir(workspace())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let Some(address) = line.trim().strip_prefix("listening on ") else {
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let _ = child.kill();
        panic!("{args:?} did not start: {line:?} {stderr}");
    };
    Running {
        address: address.to_string(),
        child,
        _stdout: stdout,
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `host/tests/data/<name>` with the echo's and a closed port substituted.
fn config(name: &str, upstream: &str) -> PathBuf {
    let template = std::fs::read_to_string(workspace().join("host/tests/data").join(name)).unwrap();
    let port = upstream.rsplit(':').next().unwrap();
    let path = std::env::temp_dir().join(format!(
        "front-serve-{}-{}-{name}",
        std::process::id(),
        free_port()
    ));
    std::fs::write(
        &path,
        template
            .replace("UPSTREAM_PORT", port)
            .replace("DOWN_PORT", &free_port().to_string()),
    )
    .unwrap();
    path
}

fn serve_with(name: &str) -> (Running, Running) {
    let echo = start(&["upstream-echo", "--listen", "127.0.0.1:0"]);
    let yaml = config(name, &echo.address);
    let proxy = start(&[
        "serve",
        "--config",
        yaml.to_str().unwrap(),
        "--listen-override",
        "127.0.0.1:0",
        "--workers",
        "2",
    ]);
    (echo, proxy)
}

fn get(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut list = vec![
        (b":method".to_vec(), method.as_bytes().to_vec()),
        (b":path".to_vec(), path.as_bytes().to_vec()),
        (b":authority".to_vec(), b"app.local".to_vec()),
    ];
    for (n, v) in headers {
        list.push((n.as_bytes().to_vec(), v.as_bytes().to_vec()));
    }
    send_parts(address, &list, body, Some(Duration::from_secs(20))).unwrap()
}

fn header<'a>(response: &'a HttpResponse, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n.as_slice() == name.as_bytes())
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

fn echo_json(response: &HttpResponse) -> serde_json::Value {
    serde_json::from_slice(&response.body).unwrap()
}

/// Sends raw bytes and returns whatever the server answers before closing.
fn raw_exchange(address: &str, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn plain_proxy_forwards_survives_bad_clients_and_answers_503_for_a_down_upstream() {
    let (_echo, proxy) = serve_with("plain.yaml");
    let response = get(
        &proxy.address,
        "POST",
        "/items?q=1",
        &[("x-a", "1")],
        b"payload",
    );
    assert_eq!(response.status, 200);
    let seen = echo_json(&response);
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/items?q=1");
    assert_eq!(seen["body"], "payload");
    assert_eq!(seen["headers"]["x-a"], "1");
    assert_eq!(seen["headers"]["host"], "app.local");

    // Upstream status passes through.
    assert_eq!(
        get(&proxy.address, "GET", "/status/418", &[], b"").status,
        418
    );

    // Malformed HTTP → 400 and the connection closes; the proxy keeps serving.
    let answer = raw_exchange(&proxy.address, b"NOT HTTP AT ALL\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");

    // A client that disconnects mid-body.
    {
        let mut stream = TcpStream::connect(&proxy.address).unwrap();
        stream
            .write_all(b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\nabc")
            .unwrap();
    }

    // The routed cluster is down → 503 as Envoy's router.
    let down = get(&proxy.address, "GET", "/down/here", &[], b"");
    assert_eq!(down.status, 503);
    let body = String::from_utf8_lossy(&down.body);
    assert!(
        body.starts_with("upstream connect error or disconnect/reset before headers"),
        "{body}"
    );

    assert_eq!(
        get(&proxy.address, "GET", "/still-up", &[], b"").status,
        200
    );
}

#[test]
fn filter_runs_inline_with_real_properties_and_local_replies() {
    let wasm = workspace().join("target/wasm32-wasip1/release/conformance_filter.wasm");
    assert!(
        wasm.exists(),
        "{} is missing: build it first: make wasm",
        wasm.display()
    );
    let (_echo, proxy) = serve_with("filter.yaml");

    let response = get(
        &proxy.address,
        "GET",
        "/hello",
        &[("x-conformance", "properties")],
        b"",
    );
    assert_eq!(response.status, 200);
    assert_eq!(header(&response, "x-r-plugin-name"), Some("conformance"));
    assert_eq!(header(&response, "x-r-route"), Some("app"));
    assert_eq!(header(&response, "x-r-cluster"), Some("app"));
    let source = header(&response, "x-r-source").unwrap();
    assert!(source.starts_with("127.0.0.1:"), "{source}");
    let seen = echo_json(&response);
    assert_eq!(seen["headers"]["x-forwarded-proto"], "http");
    assert_eq!(seen["headers"]["x-request-id"].as_str().unwrap().len(), 36);

    let denied = get(
        &proxy.address,
        "GET",
        "/x",
        &[("x-conformance", "local-reply")],
        b"",
    );
    assert_eq!(denied.status, 403);
    assert_eq!(header(&denied, "x-local"), Some("1"));

    let down = get(&proxy.address, "GET", "/down", &[], b"");
    assert_eq!(down.status, 503);
    assert!(String::from_utf8_lossy(&down.body).starts_with("upstream connect error"));

    // A stream that ends without a response (paused forever) closes the connection unanswered.
    let answer = raw_exchange(
        &proxy.address,
        b"GET /x HTTP/1.1\r\nhost: a\r\nx-conformance: stuck\r\n\r\n",
    );
    assert_eq!(answer, "");
    assert_eq!(get(&proxy.address, "GET", "/", &[], b"").status, 200);
}

#[test]
fn sigterm_stops_cleanly() {
    let (_echo, mut proxy) = serve_with("plain.yaml");
    assert_eq!(get(&proxy.address, "GET", "/", &[], b"").status, 200);
    let pid = proxy.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = proxy.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    proxy
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("shutting down"), "{stderr}");
}

#[test]
fn port_in_use_is_one_clear_error() {
    let echo = start(&["upstream-echo", "--listen", "127.0.0.1:0"]);
    let yaml = config("plain.yaml", &echo.address);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_mfa-gate-host"))
        .args([
            "serve",
            "--config",
            yaml.to_str().unwrap(),
            "--listen-override",
            &address,
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("address already in use"), "{stderr}");
}

//! The demo `make run` starts, end to end: `mfa-gate demo` (IdP + app) and the release
//! filter inside `mfa-gate-host serve` on envoy/envoy.yaml (ports moved to free ones).
//! Every case the demo prints is sent, and must get the answer printed beside it; where
//! `curl` is installed, the printed curl line itself is run too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills a child process when the test ends, pass or fail.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A plain HTTP/1.1 exchange: status, lower-case headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn send(port: u16, method: &str, path: &str, headers: &[(String, String)]) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the gateway");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\ncontent-length: 0\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in: {text}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

fn wait_for_port(port: u16) {
    for _ in 0..600 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

fn curl_available() -> bool {
    Command::new("curl")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn every_printed_curl_line_gets_the_printed_answer() {
    let wasm = common::filter_wasm();
    let host = common::host_binary();
    let (proxy, idp, app) = (free_port(), free_port(), free_port());
    let dir = common::scratch("demo");

    let mut demo = Running(
        Command::new(env!("CARGO_BIN_EXE_mfa-gate"))
            .args(["demo", "--print-json"])
            .args([
                "--proxy-port",
                &proxy.to_string(),
                "--idp-port",
                &idp.to_string(),
                "--app-port",
                &app.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start mfa-gate demo"),
    );
    let mut first_line = String::new();
    BufReader::new(demo.0.stdout.take().expect("stdout"))
        .read_line(&mut first_line)
        .expect("demo prints its cases");
    let printed: Value = serde_json::from_str(&first_line).expect("cases JSON");
    let cases = printed["cases"].as_array().expect("cases");
    assert!(cases.len() >= 14, "4 users x 3 routes, no token, browser");

    // envoy/envoy.yaml with the free ports and the absolute filter path.
    let yaml =
        std::fs::read_to_string(common::repo().join("envoy/envoy.yaml")).expect("envoy.yaml");
    let yaml = yaml
        .replace("port_value: 10000", &format!("port_value: {proxy}"))
        .replace("port_value: 10001", &format!("port_value: {idp}"))
        .replace("port_value: 10002", &format!("port_value: {app}"))
        .replace("127.0.0.1:10000", &format!("127.0.0.1:{proxy}"))
        .replace("127.0.0.1:10001", &format!("127.0.0.1:{idp}"))
        .replace(
            "target/wasm32-wasip1/release/mfa_gate.wasm",
            &wasm.to_string_lossy(),
        );
    let config = common::write(&dir, "envoy.yaml", &yaml);
    let _proxy = Running(
        Command::new(host)
            .args(["serve", "--config", &config])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mfa-gate-host serve"),
    );
    wait_for_port(proxy);
    let curl = curl_available();

    for case in cases {
        let method = case["method"].as_str().expect("method");
        let path = case["path"].as_str().expect("path");
        let headers: Vec<(String, String)> = case["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap_or("").to_string(),
                    h[1].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let expect = &case["expect"];
        let what = format!(
            "{} {method} {path} (expected {})",
            case["user"], expect["summary"]
        );
        let answer = send(proxy, method, path, &headers);

        assert_eq!(
            Some(answer.status as u64),
            expect["status"].as_u64(),
            "{what}: body {}",
            answer.body
        );
        if let Some(fragment) = expect["www_authenticate_contains"].as_str() {
            let www = answer.header("www-authenticate").unwrap_or("");
            assert!(www.contains(fragment), "{what}: WWW-Authenticate {www:?}");
        }
        if let Some(prefix) = expect["location_starts_with"].as_str() {
            let location = answer.header("location").unwrap_or("");
            assert!(
                location.starts_with(prefix),
                "{what}: Location {location:?}"
            );
            assert!(
                location.contains("acr_values=phr"),
                "{what}: Location {location:?}"
            );
        }
        if let Some(level) = expect["upstream_level"].as_str() {
            let echoed: Value = serde_json::from_str(&answer.body)
                .unwrap_or_else(|_| panic!("{what}: app JSON, got {}", answer.body));
            assert_eq!(echoed["headers"]["x-mfa-gate-level"], level, "{what}");
            assert_eq!(echoed["path"], path, "{what}");
        }

        if curl {
            // The printed line, as a user pastes it (fresh token from the IdP).
            let line = case["curl"].as_str().expect("curl line");
            assert!(line.contains(&format!("127.0.0.1:{proxy}{path}")), "{line}");
            let out = Command::new("bash")
                .arg("-c")
                .arg(
                    format!("{line} -o /dev/null -w '%{{http_code}}'")
                        .replace("curl -si ", "curl -s "),
                )
                .output()
                .expect("run curl");
            let code = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                code.trim_start_matches(|c: char| !c.is_ascii_digit()),
                expect["status"].to_string(),
                "{what}: {line}"
            );
        }
    }
}

#[test]
fn demo_reports_a_port_in_use_clearly() {
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let out = common::mfa_gate(&[
        "demo",
        "--idp-port",
        &port.to_string(),
        "--app-port",
        &free_port().to_string(),
    ]);
    common::assert_one_line_error(&out, &format!("port {port} on 127.0.0.1 is already in use"));
}

//! Cluster::Http against real loopback sockets, and the real clock (serve mode) (§3.3, §3.6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;

use common::*;
use mfa_gate_host::{ClockMode, Cluster, Clusters, Host, HostOptions};

/// Serves one HTTP/1.1 request with a fixed response; returns the address and the request text.
fn one_shot_server(response: &'static str) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let read = socket.read(&mut buffer).unwrap();
            request.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&request);
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    break;
                }
            }
            if read == 0 {
                break;
            }
        }
        socket.write_all(response.as_bytes()).unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    (address, handle)
}

// §3.3: a call to a real HTTP/1.1 upstream delivers its status, headers and body.
#[test]
fn http_cluster_round_trip() {
    let (address, server) =
        one_shot_server("HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-real: 1\r\n\r\nhello");
    let mut clusters = Clusters::new();
    clusters.add("real", Cluster::Http { address });
    let mut host = conformance_host(clusters);
    let exchange = run(
        &mut host,
        get("/c", &[("x-conformance", "callout"), ("x-cluster", "real")]),
    );
    assert_eq!(
        response_header(&exchange, "x-r-call-status").as_deref(),
        Some("200")
    );
    assert_eq!(
        response_header(&exchange, "x-r-call-body").as_deref(),
        Some("hello")
    );
    assert_eq!(exchange.response.status, 200);
    let request = server.join().unwrap();
    assert!(
        request.starts_with("POST /check/0 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(request.ends_with("callout-body"), "{request}");
}

// §3.3: connection refused → the router's 503 through the success path.
#[test]
fn http_cluster_connect_failure_is_503() {
    let address = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let mut clusters = Clusters::new();
    clusters.add("down", Cluster::Http { address });
    let mut host = conformance_host(clusters);
    let exchange = run(
        &mut host,
        get("/c", &[("x-conformance", "callout"), ("x-cluster", "down")]),
    );
    assert_eq!(
        response_header(&exchange, "x-r-call-status").as_deref(),
        Some("503")
    );
}

// §3.6 with the real clock: workers report their next deadline and fire due ticks.
#[test]
fn real_clock_ticks_fire_through_run_due_timers() {
    let options = HostOptions {
        clock: ClockMode::Real,
        workers: 1,
        plugin_configuration: b"tick=5".to_vec(),
        ..HostOptions::default()
    };
    let host = Host::load(&conformance_wasm(), options, Clusters::new()).unwrap();
    let mut workers = host.into_workers();
    let worker = &mut workers[0];
    let deadline = worker.next_deadline_ms().expect("a tick is armed");
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        < u128::from(deadline)
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    worker.run_due_timers();
    let logs = worker.take_logs();
    assert!(
        logs.iter().any(|l| l.message.starts_with("tick root=1")),
        "{logs:?}"
    );
    assert!(worker.next_deadline_ms().unwrap() > deadline);
}

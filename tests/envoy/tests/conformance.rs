//! Host fidelity: the conformance fixture (`tests/fixtures/conformance-filter`) runs the same
//! scenarios in the project's host and in real Envoy, and every difference fails the test.
//!
//! For each request the test writes one record from what each side reports: the status, the
//! response headers and body, what the upstream received, the access log's response code
//! details, and the fixture's own log lines (`lifecycle …`, `result <hostcall>=<status/value>`)
//! in order, with their level. The start-up lines of the worker VM are a record too. Envoy's
//! records come from the wire, its echo upstream and its log; the host's from its `Exchange`.
//!
//! What is not compared, and why (each is normalised the same way on both sides):
//! - values that depend on the run, not on the ABI: the clock (`now-ns`, `request-time`),
//!   the loopback addresses and ports of the connection (`source`, `destination`, …), the
//!   `x-request-id` value (its presence is compared);
//! - what Envoy's codec and router write after the filter chain: `date`, `server`,
//!   `connection`, the HTTP/1.1 framing (`transfer-encoding`, `content-length: 0`),
//!   `x-envoy-expected-rq-timeout-ms`, the value of `x-envoy-upstream-service-time`, and the
//!   wire order of headers (sorted here; the order the filter sees is the fixture's `names`
//!   result, and the header counts it logs);
//! - the order in which two callouts in flight together complete (racy in Envoy);
//! - behaviour the host models on purpose instead of waiting for it: a stream paused with
//!   nothing pending (the host reports it at once, Envoy waits for the stream timeout), ticks
//!   on the virtual clock, and `on_configure` failing (the host returns an error, Envoy
//!   refuses the configuration) — these keep their host-only tests in `host/tests`.
//! - gRPC replies from a real gRPC server (a message, a status): the suite has none; the
//!   `grpc` session compares what needs none (a refused HTTP/2 connection, a timeout on a
//!   port that never answers, unknown clusters, cancel), `host/tests/grpc.rs` the rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mfa_gate_envoy::{free_port, repo_root, GatewayBuilder, KeyServer, Reply, Scratch};
use mfa_gate_host::{
    Cluster, ClusterReply, ClusterRequest, Clusters, DownstreamRequest, GrpcReply, Host,
    HostOptions, HttpResponse, LogLine, UpstreamRequest,
};
use std::time::{Duration, Instant};

/// The authority every request carries (the same on both sides, whatever Envoy's port).
const AUTHORITY: &str = "conformance.test";
/// The route and cluster names the `properties` scenario reads.
const ROUTE: &str = "conformance-route";
const APP_CLUSTER: &str = "demo_app";
/// What the `auth` cluster answers to every call.
const AUTH_BODY: &str = "allowed";
/// The `slow` cluster answers after this; the requests that use it time out before.
const SLOW_DELAY: Duration = Duration::from_secs(3);
/// The response body the host's upstream answers; Envoy's echo answer is replaced by it.
const ECHO: &str = "<echo>";

/// One request of a scenario.
struct Case {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: &'static [u8],
}

fn get(path: &'static str, headers: &[(&'static str, &'static str)]) -> Case {
    Case {
        method: "GET",
        path,
        headers: headers.to_vec(),
        body: b"",
    }
}

fn post(path: &'static str, headers: &[(&'static str, &'static str)], body: &'static [u8]) -> Case {
    Case {
        method: "POST",
        ..get(path, headers)
    }
    .with_body(body)
}

impl Case {
    fn with_body(mut self, body: &'static [u8]) -> Case {
        self.body = body;
        self
    }

    fn label(&self) -> String {
        let scenario = self
            .headers
            .iter()
            .find(|(k, _)| *k == "x-conformance")
            .map_or("none", |(_, v)| v);
        let extra: Vec<String> = self
            .headers
            .iter()
            .filter(|(k, _)| *k != "x-conformance")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "{} {} [{scenario}] {}",
            self.method,
            self.path,
            extra.join(" ")
        )
    }
}

fn scenario(name: &'static str) -> Case {
    get("/conformance", &[("x-conformance", name)])
}

/// A fresh VM (one worker) with these buffers, and the requests sent to it in order.
struct Session {
    name: &'static str,
    plugin_configuration: &'static str,
    vm_configuration: &'static str,
    cases: Vec<Case>,
}

/// The scenarios of `host/tests/conformance.rs` that both sides can run. Traps end a VM, so
/// each kind of trap has its own session.
fn sessions() -> Vec<Session> {
    let shared = |extra: &[(&'static str, &'static str)]| {
        let mut headers = vec![("x-conformance", "shared")];
        headers.extend_from_slice(extra);
        get("/", &headers)
    };
    let main = vec![
        scenario("noop"),
        post("/conformance", &[("x-conformance", "noop")], b"abc"),
        get(
            "/h",
            &[
                ("x-conformance", "headers"),
                ("x-multi", "one"),
                ("x-multi", "two"),
                ("x-replace", "old"),
                ("x-remove", "gone"),
            ],
        ),
        // Not `set-pairs`: Envoy looks the route up again on the replaced header map and
        // answers 404 route_not_found; the host has no route table (host/tests only).
        scenario("header-window"),
        scenario("local-reply"),
        scenario("local-reply-continue"),
        get(
            "/svc/M",
            &[
                ("x-conformance", "local-reply-grpc"),
                ("content-type", "application/grpc"),
            ],
        ),
        scenario("response-local-reply"),
        scenario("callout"),
        get("/c", &[("x-conformance", "callout"), ("x-calls", "2")]),
        get(
            "/c",
            &[("x-conformance", "callout"), ("x-on-reply", "deny")],
        ),
        post("/conformance", &[("x-conformance", "callout")], b"payload"),
        post(
            "/conformance",
            &[("x-conformance", "body-callout")],
            b"form=1",
        ),
        scenario("callout-bad"),
        get(
            "/c",
            &[
                ("x-conformance", "callout"),
                ("x-cluster", "slow"),
                ("x-timeout-ms", "250"),
            ],
        ),
        get("/c", &[("x-conformance", "callout"), ("x-cluster", "down")]),
        scenario("close"),
        scenario("continue-codes"),
        scenario("effective"),
        scenario("misc"),
        scenario("metrics"),
        shared(&[("x-set", "v1")]),
        shared(&[]),
        shared(&[("x-set", "v2"), ("x-cas", "7")]),
        shared(&[("x-set", "v2"), ("x-cas", "1")]),
        shared(&[("x-key", "new"), ("x-set", "n"), ("x-cas", "99")]),
        shared(&[("x-remove", "1")]),
        shared(&[("x-key", "never")]),
        get("/", &[("x-conformance", "enqueue"), ("x-value", "hello")]),
        get(
            "/p/q?a=1&b=2",
            &[
                ("x-conformance", "properties"),
                ("x-prop", "p1"),
                ("user-agent", "ua"),
            ],
        ),
        scenario("metadata"),
        scenario("env"),
        scenario("stdio"),
        get("/u", &[("x-conformance", "headers")]),
        post("/conformance", &[("x-conformance", "body")], b"hello"),
    ];
    let session = |name, cases| Session {
        name,
        plugin_configuration: "conformance",
        vm_configuration: "vmcfg",
        cases,
    };
    vec![
        session("main", main),
        session(
            "trap in request headers",
            vec![scenario("trap"), scenario("noop")],
        ),
        session("trap in response headers", vec![scenario("trap-response")]),
        session(
            "SDK header read after Continue",
            vec![post(
                "/conformance",
                &[("x-conformance", "sdk-header-in-body")],
                b"x",
            )],
        ),
        Session {
            plugin_configuration: "fetch=auth",
            ..session("callout at configure", vec![scenario("noop")])
        },
        session("grpc", grpc_cases()),
    ]
}

/// A `grpc` scenario request with these headers.
fn grpc(extra: &[(&'static str, &'static str)]) -> Case {
    let mut headers = vec![("x-conformance", "grpc")];
    headers.extend_from_slice(extra);
    get("/grpc", &headers)
}

/// Unary gRPC calls Envoy can be asked for without a gRPC server: an HTTP/2 cluster on a
/// closed port (`push_down`), one on a port that accepts and never answers (`push_silent`),
/// an unknown cluster by name and by serialized GrpcService, and a cancel.
fn grpc_cases() -> Vec<Case> {
    vec![
        grpc(&[("x-grpc-cluster", "push_down")]),
        grpc(&[
            ("x-grpc-cluster", "push_silent"),
            ("x-grpc-timeout-ms", "300"),
        ]),
        grpc(&[("x-grpc-cluster", "no-such-cluster")]),
        grpc(&[("x-grpc-cluster", "push_silent"), ("x-grpc-cancel", "1")]),
        grpc(&[("x-grpc-cluster", "nowhere"), ("x-grpc-service", "proto")]),
        grpc(&[("x-grpc-cluster", "push_down"), ("x-grpc-service", "proto")]),
        grpc(&[("x-grpc-cluster", "push_down")]),
    ]
}

/// What one side reported, as comparable lines.
#[derive(Default)]
struct Record {
    lines: Vec<String>,
}

impl Record {
    fn push(&mut self, line: String) {
        self.lines.push(line);
    }

    fn status(&mut self, status: u16) {
        self.push(format!("status {status}"));
    }

    /// Response headers, sorted, without what Envoy's codec writes after the filter chain:
    /// `date`, `server`, `connection` and the HTTP/1.1 framing (`transfer-encoding`, a
    /// `content-length: 0`; the echo's length too, as its body is not the host's).
    fn response_headers(&mut self, headers: &[(String, String)], echoed: bool) {
        let mut kept: Vec<&(String, String)> = headers
            .iter()
            .filter(|(k, v)| {
                !matches!(
                    k.as_str(),
                    "date" | "server" | "connection" | "transfer-encoding"
                ) && !(k == "content-length" && (echoed || v == "0"))
            })
            .collect();
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in kept {
            let value = match name.as_str() {
                "x-envoy-upstream-service-time" => "<ms>",
                _ => value,
            };
            self.push(format!(
                "response-header {name}: {}",
                normalise_result(name, value)
            ));
        }
    }

    fn body(&mut self, body: &str) {
        self.push(format!("body {body:?}"));
    }

    /// Whether the request reached the upstream and, when the answer shows it (the echo),
    /// what arrived: method, target, headers (sorted, minus the router's), body.
    fn upstream(&mut self, reached: bool, upstream: Option<&Upstreamed>) {
        self.push(format!("upstream reached {reached}"));
        let Some(up) = upstream else {
            return;
        };
        self.push(format!("upstream {} {}", up.method, up.target));
        let mut headers: Vec<&(String, String)> = up
            .headers
            .iter()
            .filter(|(k, _)| k != "x-envoy-expected-rq-timeout-ms" && k != "transfer-encoding")
            .collect();
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in headers {
            let value = if name == "x-request-id" {
                "<id>"
            } else {
                value
            };
            self.push(format!("upstream-header {name}: {value}"));
        }
        self.push(format!("upstream-body {:?}", up.body));
    }

    fn details(&mut self, details: &str) {
        self.push(format!("details {details}"));
    }

    /// A log line; `echoed`: the response body is the echo, whose size is not compared.
    /// Trace lines (the SDK's own) are left out: Envoy runs the wasm logger at info.
    fn log(&mut self, level: &str, message: &str, echoed: bool) {
        if level == "trace" {
            return;
        }
        if let Some(function) = message
            .strip_prefix("Function: ")
            .and_then(|m| m.split_once(" failed: "))
        {
            // The VM failure line: the trap's wording is the engine's (V8, wasmtime).
            self.push(format!(
                "log {level} Function: {} failed: <trap>",
                function.0
            ));
            return;
        }
        if let Some(rest) = message.strip_prefix("lifecycle response_body ") {
            if echoed && !rest.contains(" size=0 ") {
                let id = rest.split(' ').next().unwrap_or_default();
                let eos = rest.rsplit(' ').next().unwrap_or_default();
                self.push(format!(
                    "log {level} lifecycle response_body {id} size=<echo> {eos}"
                ));
                return;
            }
        }
        let message = match message.strip_prefix("result ") {
            Some(result) => match result.split_once('=') {
                Some((name, value)) => format!("result {name}={}", normalise_result(name, value)),
                None => message.to_string(),
            },
            None => message.to_string(),
        };
        self.push(format!("log {level} {message}"));
    }
}

/// A result value that depends on the run rather than on the ABI, replaced by its kind.
fn normalise_result(name: &str, value: &str) -> String {
    let name = name.strip_prefix("x-r-").unwrap_or(name);
    match name {
        // Not emulated by the host (host/README.md): Envoy starts a gRPC call to any
        // cluster (Ok) and registers foreign functions such as `compress` (Ok).
        "grpc-call" | "foreign" => "<not emulated>".to_string(),
        "now-ns" | "request-time" => "<time>".to_string(),
        "source" | "destination" => "<address>".to_string(),
        "source-port" | "destination-port" => "<port>".to_string(),
        _ => value.to_string(),
    }
}

/// The request as the upstream received it, HTTP/1.1 style (`host`, no pseudo-headers).
struct Upstreamed {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn pairs(list: &[(Vec<u8>, Vec<u8>)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (text(k), text(v))).collect()
}

impl Record {
    /// The lines, the `result call-<token>=` lines sorted among their own places: callouts
    /// in flight together complete in any order in Envoy.
    fn comparable(&self) -> Vec<String> {
        let is_call = |line: &str| {
            line.strip_prefix("log info result call-")
                .and_then(|rest| rest.split_once('='))
                .is_some_and(|(token, _)| token.parse::<u32>().is_ok())
        };
        let mut lines = self.lines.clone();
        let places: Vec<usize> = (0..lines.len()).filter(|&i| is_call(&lines[i])).collect();
        let mut calls: Vec<String> = places.iter().map(|&i| lines[i].clone()).collect();
        calls.sort();
        for (place, call) in places.into_iter().zip(calls) {
            lines[place] = call;
        }
        lines
    }
}

// --- the host side ------------------------------------------------------------------------------

fn fixture() -> std::path::PathBuf {
    let path = repo_root().join("target/wasm32-wasip1/release/conformance_filter.wasm");
    assert!(
        path.is_file(),
        "{} is missing: build it first (make wasm)",
        path.display()
    );
    path
}

/// A 200 with one header, a content-length and this body, as the test's upstreams send it.
fn answer_200(header: (&str, &str), body: &str) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![
            (header.0.as_bytes().to_vec(), header.1.as_bytes().to_vec()),
            (
                b"content-length".to_vec(),
                body.len().to_string().into_bytes(),
            ),
        ],
        body: body.as_bytes().to_vec(),
        trailers: Vec::new(),
    }
}

fn host_clusters() -> Clusters {
    let mut clusters = Clusters::new();
    clusters.add(
        "auth",
        Cluster::Handler(Box::new(|_: &ClusterRequest| {
            ClusterReply::Response(answer_200(("x-auth", "ok"), AUTH_BODY))
        })),
    );
    clusters.add(
        "slow",
        Cluster::Handler(Box::new(|_: &ClusterRequest| ClusterReply::NoAnswer)),
    );
    clusters.add(
        "down",
        Cluster::Handler(Box::new(|_: &ClusterRequest| ClusterReply::ConnectFailure)),
    );
    clusters.add("push_down", Cluster::grpc_fixed(GrpcReply::Unreachable));
    clusters.add("push_silent", Cluster::grpc_fixed(GrpcReply::NoAnswer));
    clusters
}

fn host_request(case: &Case) -> DownstreamRequest {
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b":authority".to_vec(), AUTHORITY.as_bytes().to_vec()),
        (b":path".to_vec(), case.path.as_bytes().to_vec()),
        (b":method".to_vec(), case.method.as_bytes().to_vec()),
        (b":scheme".to_vec(), b"http".to_vec()),
    ];
    for (name, value) in &case.headers {
        headers.push((name.as_bytes().to_vec(), value.as_bytes().to_vec()));
    }
    if !case.body.is_empty() || case.method == "POST" {
        headers.push((
            b"content-length".to_vec(),
            case.body.len().to_string().into_bytes(),
        ));
    }
    let metadata = serde_json::json!({"ns": {"key": "value", "null": null}});
    DownstreamRequest {
        headers,
        body: case.body.to_vec(),
        filter_metadata: metadata.as_object().unwrap().clone(),
        source_address: Some("127.0.0.1:40000".to_string()),
        destination_address: Some("127.0.0.1:10000".to_string()),
        route_name: Some(ROUTE.to_string()),
        cluster_name: Some(APP_CLUSTER.to_string()),
        ..DownstreamRequest::default()
    }
}

/// The host's upstream request in HTTP/1.1 form, as Envoy's codec writes it.
fn host_upstreamed(request: &UpstreamRequest) -> Upstreamed {
    let headers = pairs(&request.headers);
    let pseudo = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Upstreamed {
        method: pseudo(":method"),
        target: pseudo(":path"),
        headers: headers
            .iter()
            .filter_map(|(k, v)| match k.as_str() {
                ":authority" => Some(("host".to_string(), v.clone())),
                k if k.starts_with(':') => None,
                _ => Some((k.to_string(), v.clone())),
            })
            .collect(),
        body: text(&request.body),
    }
}

fn host_log(record: &mut Record, lines: &[LogLine], echoed: bool) {
    for line in lines {
        record.log(line.level, &line.message, echoed);
    }
}

fn host_records(session: &Session) -> Vec<(String, Record)> {
    let options = HostOptions {
        workers: 1,
        plugin_configuration: session.plugin_configuration.as_bytes().to_vec(),
        vm_configuration: session.vm_configuration.as_bytes().to_vec(),
        environment: vec![("CONF_ENV".to_string(), "from-host".to_string())],
        ..HostOptions::default()
    };
    let mut host = Host::load(&fixture(), options, host_clusters()).expect("fixture loads");
    let mut start = Record::default();
    host_log(&mut start, &host.take_logs(), false);
    let mut records = vec![("start".to_string(), start)];
    let mut upstream =
        |_: &UpstreamRequest| Ok(answer_200(("content-type", "application/json"), ECHO));
    for case in &session.cases {
        let exchange = host.handle_on(0, host_request(case), &mut upstream);
        host.take_logs();
        let mut record = Record::default();
        record.status(exchange.response.status);
        let body = text(&exchange.response.body);
        let echoed = body.contains(ECHO);
        record.response_headers(&pairs(&exchange.response.headers), echoed);
        record.body(&body);
        let upstreamed = exchange.upstream_request.as_ref().map(host_upstreamed);
        record.upstream(
            exchange.upstream_request.is_some(),
            upstreamed.as_ref().filter(|_| echoed),
        );
        record.details(
            exchange
                .response_code_details
                .as_deref()
                .unwrap_or("via_upstream"),
        );
        host_log(&mut record, &exchange.logs, echoed);
        records.push((case.label(), record));
    }
    records
}

// --- the Envoy side ------------------------------------------------------------------------------

/// The ports of the callout clusters.
struct Ports {
    auth: u16,
    slow: u16,
    down: u16,
    /// HTTP/2 (gRPC) clusters: nothing listens on `push_down`; `push_silent` accepts and
    /// never answers.
    push_down: u16,
    push_silent: u16,
}

/// The conformance fixture on a `/` route to the echo upstream, the set_metadata filter in
/// front (the `metadata` scenario), callout clusters `auth`, `slow` and `down`, gRPC
/// clusters `push_down` and `push_silent`, and an access log line with the response code
/// details.
fn envoy_bootstrap(session: &Session, ports: &Ports) -> String {
    let cluster = |name: &str, port: u16| {
        format!(
            r#"
  - name: {name}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}"#
        )
    };
    let http2 = |name: &str, port: u16| {
        format!(
            r#"{}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}"#,
            cluster(name, port)
        )
    };
    format!(
        r#"static_resources:
  listeners:
  - name: conformance
    address: {{socket_address: {{address: 127.0.0.1, port_value: 10000}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: conformance
          access_log:
          - name: envoy.access_loggers.stdout
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
              log_format:
                text_format_source: {{inline_string: "access details=%RESPONSE_CODE_DETAILS%\n"}}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - name: {ROUTE}
                match: {{prefix: "/"}}
                route: {{cluster: {APP_CLUSTER}, timeout: 10s}}
          http_filters:
          - name: envoy.filters.http.set_metadata
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.set_metadata.v3.Config
              metadata:
              - metadata_namespace: ns
                value: {{key: value, "null": null}}
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: mfa-gate
                root_id: mfa-gate
                configuration: {{"@type": type.googleapis.com/google.protobuf.StringValue, value: "{plugin}"}}
                failure_policy: FAIL_CLOSED
                vm_config:
                  vm_id: mfa-gate
                  runtime: envoy.wasm.runtime.v8
                  configuration: {{"@type": type.googleapis.com/google.protobuf.StringValue, value: "{vm}"}}
                  environment_variables: {{key_values: {{CONF_ENV: from-host}}}}
                  code: {{local: {{filename: conformance_filter.wasm}}}}
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:{app}{idp}{auth}{slow}{down}{push_down}{push_silent}
"#,
        plugin = session.plugin_configuration,
        vm = session.vm_configuration,
        app = cluster("demo_app", 10002),
        idp = cluster("demo_idp", 10001),
        auth = cluster("auth", ports.auth),
        slow = cluster("slow", ports.slow),
        down = cluster("down", ports.down),
        push_down = http2("push_down", ports.push_down),
        push_silent = http2("push_silent", ports.push_silent),
    )
}

/// An Envoy log line `[time][thread][level][logger] [source] message`, split.
struct EnvoyLine<'a> {
    thread: &'a str,
    level: &'a str,
    message: &'a str,
}

fn parse_line(line: &str) -> Option<EnvoyLine<'_>> {
    let rest = line.strip_prefix('[')?;
    let (_, rest) = rest.split_once("][")?;
    let (thread, rest) = rest.split_once("][")?;
    let (level, rest) = rest.split_once("][")?;
    let (_, rest) = rest.split_once("] ")?;
    let (_, message) = rest.split_once(' ')?;
    Some(EnvoyLine {
        thread,
        level,
        message,
    })
}

/// The worker's lines the fixture logged (`wasm log <names>: <message>`) and the access log
/// lines, in order, from Envoy's log.
fn worker_lines(log: &str) -> (Vec<(String, String)>, Vec<String>) {
    let main_thread = log
        .lines()
        .find_map(parse_line)
        .map(|l| l.thread.to_string());
    let mut wasm = Vec::new();
    let mut access = Vec::new();
    let mut lines = log.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(details) = line.strip_prefix("access details=") {
            access.push(details.to_string());
            continue;
        }
        let Some(parsed) = parse_line(line) else {
            continue;
        };
        // A message with newlines continues on lines without the `[time]` prefix.
        let mut message = parsed.message.to_string();
        while let Some(next) = lines.peek() {
            if next.starts_with('[') || next.starts_with("access details=") {
                break;
            }
            message.push('\n');
            message.push_str(next);
            lines.next();
        }
        if Some(parsed.thread) == main_thread.as_deref() {
            continue;
        }
        if let Some(message) = message
            .strip_prefix("wasm log ")
            .and_then(|m| m.split_once(": ").map(|(_, m)| m))
        {
            // spdlog's names; the host uses the proxy-wasm level names.
            let level = match parsed.level {
                "warning" => "warn",
                other => other,
            };
            wasm.push((level.to_string(), message.to_string()));
        } else if message.starts_with("Function: ") {
            // The VM failure (wasm_vm.cc).
            wasm.push((parsed.level.to_string(), message));
        }
    }
    (wasm, access)
}

/// Envoy's echo answer replaced by [`ECHO`] (text the filter put around it kept), and the
/// upstream request it describes.
fn split_echo(body: &str) -> (String, Option<Upstreamed>) {
    let Some(start) = body.find("{\"") else {
        return (body.to_string(), None);
    };
    let mut values = serde_json::Deserializer::from_str(&body[start..]).into_iter();
    let Some(Ok(echo)) = values.next() else {
        return (body.to_string(), None);
    };
    let end = start + values.byte_offset();
    let echo: serde_json::Value = echo;
    let field = |name: &str| echo[name].as_str().unwrap_or_default().to_string();
    let headers = echo["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            (
                h[0].as_str().unwrap_or_default().to_ascii_lowercase(),
                h[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let upstreamed = Upstreamed {
        method: field("method"),
        target: field("path"),
        headers,
        body: field("body"),
    };
    (
        format!("{}{ECHO}{}", &body[..start], &body[end..]),
        Some(upstreamed),
    )
}

/// A loopback listener that accepts connections and never writes (the connections are kept
/// open and read to the end by a thread that lives as long as the test process).
fn silent_listener() -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a silent listener");
    let accepting = listener.try_clone().expect("clone the silent listener");
    std::thread::spawn(move || {
        for stream in accepting.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let _ = std::io::copy(&mut stream, &mut std::io::sink());
            });
        }
    });
    listener
}

fn envoy_records(session: &Session) -> Vec<(String, Record)> {
    let auth = KeyServer::start(Reply::Http {
        status: 200,
        headers: vec![("x-auth".into(), "ok".into())],
        body: AUTH_BODY.as_bytes().to_vec(),
    });
    let slow = KeyServer::start(Reply::Delayed(
        SLOW_DELAY,
        Box::new(Reply::text(200, "late")),
    ));
    let silent = silent_listener();
    let ports = Ports {
        auth: auth.port(),
        slow: slow.port(),
        down: free_port(),
        push_down: free_port(),
        push_silent: silent.local_addr().expect("silent listener address").port(),
    };
    let scratch = Scratch::new("conformance-bootstrap");
    let file = scratch.write("conformance.yaml", envoy_bootstrap(session, &ports));
    let gateway = GatewayBuilder::shipped(file.to_str().unwrap())
        .wasm_file(fixture())
        .echo_upstream()
        // The access log goes through Envoy's file flush: keep it prompt.
        .envoy_args(&["--file-flush-interval-msec", "20"])
        .start();
    let wait_for = |what: &str, condition: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !condition(&gateway.envoy_log()) {
            if Instant::now() > deadline {
                return Err(format!("timed out waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    };
    let configured = |log: &str| {
        worker_lines(log)
            .0
            .iter()
            .any(|(_, m)| m.starts_with("configured ") || m.starts_with("root call_response"))
    };
    wait_for("the worker's VM to start", &configured).unwrap_or_else(|e| panic!("{e}"));
    if session.plugin_configuration.starts_with("fetch=") {
        let answered = |log: &str| {
            worker_lines(log)
                .0
                .iter()
                .any(|(_, m)| m.starts_with("root call_response"))
        };
        wait_for("the configure-time callout's answer", &answered)
            .unwrap_or_else(|e| panic!("{e}\n{}", gateway.log_tail()));
    }
    let (start_lines, _) = worker_lines(&gateway.envoy_log());
    let mut start = Record::default();
    for (level, message) in &start_lines {
        start.log(level, message, false);
    }
    let mut records = vec![("start".to_string(), start)];
    let (mut seen_wasm, mut seen_access) = (start_lines.len(), 0);
    for (index, case) in session.cases.iter().enumerate() {
        let mut headers = vec![("host", AUTHORITY)];
        headers.extend(case.headers.iter().copied());
        let upstream_before = gateway.echo().map_or(0, |echo| echo.requests());
        let answer = gateway.request(case.method, case.path, &headers, case.body);
        // The stream's last lines (on_log, on_done, on_delete, the access log) follow the
        // answer; a trapped VM logs no more, so a timeout here is not an error by itself.
        let deletes = |log: &str| {
            let (wasm, access) = worker_lines(log);
            wasm.iter()
                .filter(|(_, m)| m.starts_with("lifecycle delete"))
                .count()
                > index
                && access.len() > index
        };
        let _ = wait_for("the stream's end", &deletes);
        std::thread::sleep(Duration::from_millis(50));
        let (wasm, access) = worker_lines(&gateway.envoy_log());
        let mut record = Record::default();
        record.status(answer.status);
        let (body, upstreamed) = split_echo(&answer.text());
        let echoed = upstreamed.is_some();
        record.response_headers(
            &answer
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect::<Vec<_>>(),
            echoed,
        );
        record.body(&body);
        let reached = gateway.echo().map_or(0, |echo| echo.requests()) > upstream_before;
        record.upstream(reached, upstreamed.as_ref());
        record.details(
            access
                .get(seen_access)
                .map_or("(no access log)", String::as_str),
        );
        for (level, message) in &wasm[seen_wasm.min(wasm.len())..] {
            record.log(level, message, echoed);
        }
        seen_wasm = wasm.len();
        seen_access = access.len().max(seen_access + 1);
        records.push((case.label(), record));
    }
    records
}

// --- comparison ----------------------------------------------------------------------------------

/// Lines only in `a` ("- ") or only in `b` ("+ "), in order (a longest-common-subsequence
/// diff; records are short).
fn diff(a: &[String], b: &[String]) -> Vec<String> {
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+ envoy: {}", b[j]));
            j += 1;
        } else {
            out.push(format!("- host:  {}", a[i]));
            i += 1;
        }
    }
    out
}

#[test]
fn host_answers_every_conformance_scenario_as_envoy_does() {
    let mut differences = Vec::new();
    let mut compared = 0;
    for session in sessions() {
        let host = host_records(&session);
        let envoy = envoy_records(&session);
        assert_eq!(host.len(), envoy.len());
        for ((label, host), (_, envoy)) in host.iter().zip(&envoy) {
            compared += host.lines.len();
            let lines = diff(&host.comparable(), &envoy.comparable());
            if !lines.is_empty() {
                differences.push(format!(
                    "session {:?}, {label}:\n  {}",
                    session.name,
                    lines.join("\n  ")
                ));
            }
        }
    }
    assert!(compared > 300, "only {compared} lines compared");
    assert!(
        differences.is_empty(),
        "the host differs from Envoy in {} record(s):\n\n{}",
        differences.len(),
        differences.join("\n\n")
    );
}

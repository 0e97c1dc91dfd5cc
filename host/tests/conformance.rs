//! Conformance of the host to the ABI reference (shared/docs/proxy-wasm-abi.md), driven through the
//! conformance fixture. Each test cites the section it checks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use mfa_gate_host::{
    Cluster, ClusterReply, ClusterRequest, Clusters, FailurePolicy, HostOptions, HttpResponse,
    UpstreamRequest,
};
use std::sync::{Arc, Mutex};

fn header(exchange: &mfa_gate_host::Exchange, name: &str) -> String {
    response_header(exchange, &format!("x-r-{name}"))
        .unwrap_or_else(|| panic!("missing x-r-{name}: {exchange:#?}"))
}

fn auth_ok() -> Clusters {
    let mut clusters = Clusters::new();
    clusters.add(
        "auth",
        Cluster::Handler(Box::new(|request: &ClusterRequest| {
            ClusterReply::Response(HttpResponse {
                status: 200,
                headers: vec![(b"x-auth".to_vec(), b"ok".to_vec())],
                body: format!("checked {}", request.headers.len()).into_bytes(),
                trailers: Vec::new(),
            })
        })),
    );
    clusters
}

// §2 HTTP stream: on_request_headers → response → on_log → on_done → on_delete (Envoy order);
// the upstream's body comes as Envoy's HTTP/1.1 codec hands it on: the data, then an empty
// end of stream.
#[test]
fn stream_lifecycle_order_is_envoys() {
    let mut host = conformance_host(Clusters::new());
    let exchange = run(&mut host, scenario("noop"));
    let lifecycle: Vec<String> = messages(&exchange.logs)
        .into_iter()
        .filter(|m| m.starts_with("lifecycle"))
        .map(|m| m.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lifecycle,
        vec![
            "lifecycle create",
            "lifecycle request_headers",
            "lifecycle response_headers",
            "lifecycle response_body",
            "lifecycle response_body",
            "lifecycle log",
            "lifecycle done",
            "lifecycle delete"
        ]
    );
    // §2: context ids per VM: root 1, streams 2, 3, …
    assert!(messages(&exchange.logs).contains(&"lifecycle create 2".to_string()));
    let second = run(&mut host, scenario("noop"));
    assert!(messages(&second.logs).contains(&"lifecycle create 3".to_string()));
    assert!(exchange
        .logs
        .iter()
        .any(|l| l.context_id == 2 && l.worker == 0));
}

// §2: on_request_body is not called when headers carry end_of_stream; eos flag is accurate; a
// body streaming in comes as its data (end_of_stream false), then an empty end of stream.
#[test]
fn end_of_stream_flag_and_body_callbacks() {
    let mut host = conformance_host(Clusters::new());
    let exchange = run(&mut host, scenario("noop"));
    assert_eq!(header(&exchange, "eos"), "true");
    assert!(!messages(&exchange.logs)
        .iter()
        .any(|m| m.starts_with("lifecycle request_body")));
    let mut with_body = scenario("noop");
    with_body.body = b"abc".to_vec();
    let exchange = run(&mut host, with_body);
    assert_eq!(header(&exchange, "eos"), "false");
    let bodies: Vec<String> = messages(&exchange.logs)
        .into_iter()
        .filter(|m| m.starts_with("lifecycle request_body"))
        .collect();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(bodies[0].ends_with("size=3 eos=false"), "{bodies:?}");
    assert!(bodies[1].ends_with("size=0 eos=true"), "{bodies:?}");
}

// §1 header map calls: add/replace/remove lower-case keys, first value wins, pseudo-headers first,
// HCM headers present (§3.1 Header ordering); replace moves the header to the end (Envoy 1.40's
// setCopy: remove, then add).
#[test]
fn header_map_operations() {
    let mut host = conformance_host(Clusters::new());
    let request = get(
        "/h",
        &[
            ("x-conformance", "headers"),
            ("x-multi", "one"),
            ("x-multi", "two"),
            ("x-replace", "old"),
            ("x-remove", "gone"),
        ],
    );
    let exchange = run(&mut host, request);
    assert_eq!(header(&exchange, "first-multi"), "one");
    assert_eq!(header(&exchange, "get-mixed-case"), "0:one");
    assert_eq!(header(&exchange, "get-absent"), "1");
    assert_eq!(
        header(&exchange, "names"),
        ":authority,:path,:method,:scheme,x-conformance,x-multi,x-multi,x-forwarded-proto,x-request-id,x-added,x-replace,x-upper"
    );
    assert_eq!(upstream_header(&exchange, "x-added").as_deref(), Some("1"));
    assert_eq!(
        upstream_header(&exchange, "x-replace").as_deref(),
        Some("new")
    );
    assert_eq!(upstream_header(&exchange, "x-remove"), None);
    assert_eq!(upstream_header(&exchange, "x-upper").as_deref(), Some("v"));
    // The filter removed x-upstream from the response and added its results.
    assert_eq!(response_header(&exchange, "x-upstream"), None);
}

// §1 proxy_set_header_map_pairs: removes all, then adds each pair lower-cased.
#[test]
fn set_header_map_pairs_replaces_everything() {
    let mut host = conformance_host(Clusters::new());
    let exchange = run(&mut host, scenario("set-pairs"));
    let upstream = exchange.upstream_request.unwrap();
    let names: Vec<String> = upstream
        .headers
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(names, vec![":authority", ":path", ":method", "only"]);
}

// §3.1 Header access windows: after Continue, get value → BadArgument, get map → empty,
// set → BadArgument, request.* properties NotFound; in on_log request headers are read-only,
// unavailable maps give NotFound.
#[test]
fn header_access_windows() {
    let mut host = conformance_host(Clusters::new());
    let exchange = run(&mut host, scenario("header-window"));
    assert_eq!(header(&exchange, "req-get-after-continue"), "2");
    assert_eq!(header(&exchange, "req-pairs-after-continue"), "(0, 0)");
    assert_eq!(header(&exchange, "req-set-after-continue"), "2");
    assert_eq!(header(&exchange, "path-prop-after-continue"), "1");
    assert_eq!(
        logged(&exchange.logs, "result log-get-req=").as_deref(),
        Some("0:/conformance")
    );
    assert_eq!(
        logged(&exchange.logs, "result log-set-req=").as_deref(),
        Some("2")
    );
    assert_eq!(
        logged(&exchange.logs, "result log-get-trailer=").as_deref(),
        Some("1")
    );
    assert_eq!(
        logged(&exchange.logs, "result log-get-resp=").as_deref(),
        Some("0")
    );
    assert_eq!(
        logged(&exchange.logs, "result log-path-prop=").as_deref(),
        Some("0:/conformance")
    );
}

// §3.2 send_local_response: deferred, passes through the same plugin's on_response_headers,
// details whitespace replaced, grpc −1 ignored, headers lower-cased, content-type/length added.
#[test]
fn local_reply_goes_through_own_response_path() {
    let mut host = conformance_host(Clusters::new());
    let exchange = run(&mut host, scenario("local-reply"));
    assert_eq!(exchange.response.status, 403);
    assert_eq!(exchange.response.body, b"denied");
    assert!(exchange.upstream_request.is_none());
    assert_eq!(
        exchange.response_code_details.as_deref(),
        Some("denied_by_conformance")
    );
    assert_eq!(header(&exchange, "send-status"), "0");
    assert_eq!(header(&exchange, "saw-status"), "403");
    assert_eq!(response_header(&exchange, "x-local").as_deref(), Some("1"));
    assert_eq!(response_header(&exchange, "x-upper").as_deref(), Some("2"));
    assert_eq!(
        response_header(&exchange, "content-length").as_deref(),
        Some("6")
    );
    assert_eq!(
        response_header(&exchange, "content-type").as_deref(),
        Some("text/plain")
    );
    assert_eq!(response_header(&exchange, "grpc-status"), None);
    // on_log/on_done/on_delete still run.
    assert!(messages(&exchange.logs)
        .iter()
        .any(|m| m.starts_with("lifecycle delete")));
}

// §3.1: the return value is ignored after send_local_response (forced stop).
#[test]
fn local_reply_wins_over_returned_continue() {
    let mut host = conformance_host(Clusters::new());
    let exchange = run(&mut host, scenario("local-reply-continue"));
    assert_eq!(exchange.response.status, 401);
    assert!(exchange.upstream_request.is_none());
    assert_eq!(
        response_header(&exchange, "www-authenticate").as_deref(),
        Some("Bearer")
    );
    assert_eq!(response_header(&exchange, "content-length"), None);
    assert_eq!(exchange.response_code_details.as_deref(), Some(""));
}

// §3.2: grpc_status 0..16 applies to a gRPC request.
#[test]
fn local_reply_grpc_status_for_grpc_request() {
    let mut host = conformance_host(Clusters::new());
    let request = get(
        "/svc/M",
        &[
            ("x-conformance", "local-reply-grpc"),
            ("content-type", "application/grpc"),
        ],
    );
    let exchange = run(&mut host, request);
    assert_eq!(exchange.response.status, 200);
    assert_eq!(
        response_header(&exchange, "grpc-status").as_deref(),
        Some("7")
    );
    assert_eq!(
        response_header(&exchange, "grpc-message").as_deref(),
        Some("no access")
    );
}

// §3.2 table: a local reply once response headers entered the chain goes straight out.
#[test]
fn local_reply_from_response_headers_bypasses_filter() {
    let mut host = conformance_host(Clusters::new());
    let exchange = run(&mut host, scenario("response-local-reply"));
    assert_eq!(exchange.response.status, 500);
    assert_eq!(exchange.response.body, b"from response");
    assert_eq!(
        response_header(&exchange, "x-from").as_deref(),
        Some("response")
    );
    assert_eq!(response_header(&exchange, "x-r-saw-status"), None);
    let saw: Vec<_> = messages(&exchange.logs)
        .into_iter()
        .filter(|m| m.starts_with("result saw-status"))
        .collect();
    assert_eq!(saw, vec!["result saw-status=200"]);
}

// §3.3: dispatch_http_call from a paused stream; reply delivered to the root id with token 4,
// after the callback returns; request headers writable while paused; resume continues.
#[test]
fn http_call_pause_and_resume() {
    let seen: Arc<Mutex<Vec<ClusterRequest>>> = Arc::default();
    let log = seen.clone();
    let mut clusters = Clusters::new();
    clusters.add(
        "auth",
        Cluster::Handler(Box::new(move |request: &ClusterRequest| {
            log.lock().unwrap().push(request.clone());
            ClusterReply::Response(HttpResponse {
                status: 200,
                body: b"allowed".to_vec(),
                ..HttpResponse::default()
            })
        })),
    );
    let mut host = conformance_host(clusters);
    let exchange = run(&mut host, scenario("callout"));
    assert_eq!(exchange.response.status, 200);
    assert_eq!(header(&exchange, "token-0"), "4");
    // :status and the router's x-envoy-upstream-service-time.
    assert_eq!(header(&exchange, "call-4"), "h2b7t0 status=0:");
    assert_eq!(header(&exchange, "call-body"), "allowed");
    assert_eq!(
        upstream_header(&exchange, "x-callout-status").as_deref(),
        Some("200")
    );
    assert_eq!(host.cluster_calls("auth"), 1);
    let first = seen.lock().unwrap()[0].clone();
    assert_eq!(first.timeout_ms, 1000);
    assert_eq!(first.body, b"callout-body");
    // A non-empty body sets content-length.
    assert!(first
        .headers
        .contains(&(b"content-length".to_vec(), b"12".to_vec())));
    // Tokens are per VM: 4, 8, 12 …
    let exchange = run(
        &mut host,
        get("/c", &[("x-conformance", "callout"), ("x-calls", "2")]),
    );
    assert_eq!(header(&exchange, "token-0"), "8");
    assert_eq!(header(&exchange, "token-1"), "12");
    assert_eq!(exchange.response.status, 200);
}

// §3.3: the callback can answer with a local reply instead of resuming.
#[test]
fn http_call_reply_then_local_reply() {
    let mut host = conformance_host(auth_ok());
    let exchange = run(
        &mut host,
        get(
            "/c",
            &[("x-conformance", "callout"), ("x-on-reply", "deny")],
        ),
    );
    assert_eq!(exchange.response.status, 403);
    assert_eq!(exchange.response.body, b"callout denied");
    assert_eq!(
        response_header(&exchange, "x-denied-by").as_deref(),
        Some("callout")
    );
    assert!(exchange.upstream_request.is_none());
}

// §3.3 synchronous errors: unknown cluster, missing :path/:authority, timeout > INT32_MAX → BadArgument.
#[test]
fn http_call_bad_arguments() {
    let mut host = conformance_host(auth_ok());
    let exchange = run(&mut host, scenario("callout-bad"));
    assert_eq!(header(&exchange, "unknown-cluster"), "2");
    assert_eq!(header(&exchange, "missing-authority"), "2");
    assert_eq!(header(&exchange, "missing-path"), "2");
    assert_eq!(header(&exchange, "timeout-too-big"), "2");
    assert_eq!(host.cluster_calls("auth"), 0);
}

// §3.3: timeout → 504 "upstream request timeout" through the success path; virtual time moves.
#[test]
fn http_call_timeout_is_504() {
    let mut clusters = Clusters::new();
    clusters.add(
        "slow",
        Cluster::Handler(Box::new(|_: &ClusterRequest| ClusterReply::NoAnswer)),
    );
    let mut host = conformance_host(clusters);
    let before = host.now_unix_ms();
    let request = get(
        "/c",
        &[
            ("x-conformance", "callout"),
            ("x-cluster", "slow"),
            ("x-timeout-ms", "250"),
        ],
    );
    let exchange = run(&mut host, request);
    assert_eq!(header(&exchange, "call-status"), "504");
    assert_eq!(header(&exchange, "call-body"), "upstream request timeout");
    assert_eq!(host.now_unix_ms(), before + 250);
}

// §3.3: a delayed reply within the timeout arrives after its delay.
#[test]
fn http_call_delayed_reply() {
    let mut clusters = Clusters::new();
    clusters.add(
        "auth",
        Cluster::Handler(Box::new(|_: &ClusterRequest| ClusterReply::Delayed {
            delay_ms: 40,
            response: HttpResponse {
                status: 201,
                ..HttpResponse::default()
            },
        })),
    );
    let mut host = conformance_host(clusters);
    let before = host.now_unix_ms();
    let exchange = run(&mut host, scenario("callout"));
    assert_eq!(header(&exchange, "call-status"), "201");
    assert_eq!(host.now_unix_ms(), before + 40);
}

// §3.3: connect failure → 503 with a text body through the success path.
#[test]
fn http_call_connect_failure_is_503() {
    let mut clusters = Clusters::new();
    clusters.add(
        "auth",
        Cluster::Handler(Box::new(|_: &ClusterRequest| ClusterReply::ConnectFailure)),
    );
    let mut host = conformance_host(clusters);
    let exchange = run(&mut host, scenario("callout"));
    assert_eq!(header(&exchange, "call-status"), "503");
    assert!(header(&exchange, "call-body").starts_with("upstream connect error"));
}

// §3.3 failure path: reset → (0,0,0) and get_status = (11, "reset").
#[test]
fn http_call_reset_is_broken_connection() {
    let mut clusters = Clusters::new();
    clusters.add(
        "auth",
        Cluster::Handler(Box::new(|_: &ClusterRequest| ClusterReply::Reset)),
    );
    let mut host = conformance_host(clusters);
    let exchange = run(&mut host, scenario("callout"));
    assert_eq!(header(&exchange, "call-4"), "h0b0t0 status=11:reset");
    assert_eq!(header(&exchange, "call-status"), "none");
}

// Paused with nothing pending: the stream never continues (host reports stream_paused_forever).
#[test]
fn paused_stream_with_nothing_pending_is_reported() {
    let mut host = conformance_host(auth_ok());
    let exchange = run(&mut host, scenario("stuck"));
    assert_eq!(exchange.response.status, 0);
    assert_eq!(
        exchange.response_code_details.as_deref(),
        Some("stream_paused_forever")
    );
    assert!(exchange.upstream_request.is_none());
    assert!(exchange
        .logs
        .iter()
        .any(|l| l.message.contains("stream_paused_forever")));
    let exchange = run(
        &mut host,
        get(
            "/c",
            &[("x-conformance", "callout"), ("x-on-reply", "stay")],
        ),
    );
    assert_eq!(
        exchange.response_code_details.as_deref(),
        Some("stream_paused_forever")
    );
}

// §3.1 proxy_close_stream → deferred reset, details wasm_close_stream.
#[test]
fn close_stream_resets() {
    let mut host = conformance_host(Clusters::new());
    let exchange = run(&mut host, scenario("close"));
    assert_eq!(exchange.response.status, 0);
    assert_eq!(
        exchange.response_code_details.as_deref(),
        Some("wasm_close_stream")
    );
    assert!(exchange.upstream_request.is_none());
}

// §3.1 proxy_continue_stream: Upstream → Unimplemented (12); bad type → BadArgument.
#[test]
fn continue_stream_codes() {
    let mut host = conformance_host(Clusters::new());
    let exchange = run(&mut host, scenario("continue-codes"));
    assert_eq!(header(&exchange, "continue-upstream"), "12");
    assert_eq!(header(&exchange, "continue-downstream"), "0");
    assert_eq!(header(&exchange, "continue-bad"), "2");
}

// §1 proxy_set_effective_context: unknown id → BadArgument; root context has no request headers.
#[test]
fn effective_context() {
    let mut host = conformance_host(Clusters::new());
    let exchange = run(&mut host, scenario("effective"));
    assert_eq!(header(&exchange, "unknown"), "2");
    assert_eq!(header(&exchange, "to-root"), "0");
    assert_eq!(header(&exchange, "root-get-header"), "2");
    assert_eq!(header(&exchange, "back"), "0");
    assert_eq!(header(&exchange, "stream-get-header"), "0");
}

// §1 table rows answered without emulation: a gRPC call to an HTTP cluster → ParseFailure and
// foreign functions → NotFound (not emulated: Envoy 1.40 starts the gRPC call and runs
// `compress`, both Ok),
// proxy_done → NotFound, log level > 5 → BadArgument, bad pointer → InvalidMemoryAccess,
// buffers (unknown type → BadArgument, immutable → BadArgument, PluginConfiguration outside
// on_configure → NotFound, slices clamp), unknown map → BadArgument, time follows the clock.
#[test]
fn misc_hostcall_statuses() {
    let options = HostOptions {
        vm_configuration: b"vmcfg".to_vec(),
        ..HostOptions::default()
    };
    let mut host = conformance_host_with(options, auth_ok());
    let exchange = run(&mut host, scenario("misc"));
    assert_eq!(header(&exchange, "grpc-call"), "4");
    assert_eq!(header(&exchange, "foreign"), "1");
    assert_eq!(header(&exchange, "done"), "1");
    assert_eq!(header(&exchange, "log-level-6"), "2");
    assert_eq!(header(&exchange, "bad-pointer"), "6");
    assert_eq!(header(&exchange, "buffer-unknown"), "2");
    assert_eq!(header(&exchange, "set-vm-config"), "2");
    assert_eq!(header(&exchange, "plugin-config-in-stream"), "1");
    assert_eq!(header(&exchange, "vm-config"), "0:vmcfg");
    assert_eq!(header(&exchange, "vm-config-slice"), "0:mcf");
    // Envoy's body buffer is always there: empty outside the body callbacks.
    assert_eq!(header(&exchange, "request-body-in-headers"), "0");
    assert_eq!(header(&exchange, "grpc-metadata-pairs"), "(0, 0)");
    assert_eq!(header(&exchange, "unknown-map"), "2");
    assert_eq!(header(&exchange, "call-headers-outside"), "2");
    assert_eq!(
        header(&exchange, "now-ns"),
        (host.now_unix_ms() as u128 * 1_000_000).to_string()
    );
}

// §3.7 metrics: ids 4/5/6, counter increment needs delta>0, counter record adds, gauge set/add,
// histogram get → BadArgument, unknown id → BadArgument (Envoy 1.40), type > 2 → BadArgument,
// new id per define,
// same stat across workers.
#[test]
fn metrics_rules() {
    let mut host = conformance_host(Clusters::new());
    let exchange = run(&mut host, scenario("metrics"));
    assert_eq!(header(&exchange, "ids"), "4,5,6");
    assert_eq!(header(&exchange, "inc-1"), "0");
    assert_eq!(header(&exchange, "inc-0"), "2");
    assert_eq!(header(&exchange, "inc-neg"), "2");
    assert_eq!(header(&exchange, "counter"), "6");
    assert_eq!(header(&exchange, "gauge-dec"), "0");
    assert_eq!(header(&exchange, "gauge"), "5");
    assert_eq!(header(&exchange, "hist-get"), "2");
    assert_eq!(header(&exchange, "hist-inc"), "2");
    assert_eq!(header(&exchange, "unknown-get"), "2");
    assert_eq!(header(&exchange, "define-bad-type"), "2");
    assert_eq!(
        header(&exchange, "redefine-id"),
        "16",
        "4, 8, 12 taken by the root's counters"
    );
    assert_eq!(host.metric("conf_counter"), Some(6));
    assert_eq!(host.metric("conf_gauge"), Some(5));
    assert_eq!(host.histogram("conf_histogram"), Some(vec![3]));
    let mut upstream = ok_upstream();
    host.handle_on(1, scenario("metrics"), &mut upstream);
    assert_eq!(
        host.metric("conf_counter"),
        Some(12),
        "one stat shared by both workers"
    );
    assert_eq!(host.metrics().get("conf_gauge"), Some(&5));
}

// §3.4 shared data: process-wide across workers, cas rules, remove = set(empty).
#[test]
fn shared_data_across_workers() {
    let mut host = conformance_host(Clusters::new());
    let mut upstream = ok_upstream();
    let set = host.handle_on(
        0,
        get("/", &[("x-conformance", "shared"), ("x-set", "v1")]),
        &mut upstream,
    );
    assert_eq!(header(&set, "set"), "Ok(())");
    assert_eq!(header(&set, "cas"), "1");
    let read = host.handle_on(1, get("/", &[("x-conformance", "shared")]), &mut upstream);
    assert_eq!(header(&read, "get"), "v1");
    let stale = host.handle_on(
        1,
        get(
            "/",
            &[("x-conformance", "shared"), ("x-set", "v2"), ("x-cas", "7")],
        ),
        &mut upstream,
    );
    assert_eq!(header(&stale, "set"), "Err(CasMismatch)");
    assert_eq!(header(&stale, "get"), "v1");
    let fresh = host.handle_on(
        0,
        get(
            "/",
            &[("x-conformance", "shared"), ("x-set", "v2"), ("x-cas", "1")],
        ),
        &mut upstream,
    );
    assert_eq!(header(&fresh, "set"), "Ok(())");
    assert_eq!(header(&fresh, "cas"), "2");
    let absent = host.handle_on(
        0,
        get(
            "/",
            &[
                ("x-conformance", "shared"),
                ("x-key", "new"),
                ("x-set", "n"),
                ("x-cas", "99"),
            ],
        ),
        &mut upstream,
    );
    assert_eq!(
        header(&absent, "set"),
        "Ok(())",
        "non-zero cas on an absent key succeeds"
    );
    let removed = host.handle_on(
        1,
        get("/", &[("x-conformance", "shared"), ("x-remove", "1")]),
        &mut upstream,
    );
    assert_eq!(header(&removed, "get"), "none");
    assert_eq!(header(&removed, "cas"), "4");
    let missing = host.handle_on(
        1,
        get("/", &[("x-conformance", "shared"), ("x-key", "never")]),
        &mut upstream,
    );
    assert_eq!(header(&missing, "cas"), "none");
}

// §3.4: shared data is per host (one Envoy process) and namespaced by vm_id.
#[test]
fn shared_data_namespaced_by_vm_id() {
    let mut first = conformance_host(Clusters::new());
    run(
        &mut first,
        get("/", &[("x-conformance", "shared"), ("x-set", "v")]),
    );
    let mut second = conformance_host(Clusters::new());
    let read = run(&mut second, get("/", &[("x-conformance", "shared")]));
    assert_eq!(header(&read, "get"), "none");
}

// §3.5 shared queues: the last registrant (worker 1) gets on_queue_ready(root, token) posted.
#[test]
fn shared_queue_notifies_registrant_root() {
    let mut host = conformance_host(Clusters::new());
    let exchange = run(
        &mut host,
        get("/", &[("x-conformance", "enqueue"), ("x-value", "hello")]),
    );
    assert_eq!(header(&exchange, "token"), "1");
    assert_eq!(header(&exchange, "enqueue"), "Ok(())");
    assert_eq!(header(&exchange, "other-vm"), "None");
    let ready: Vec<_> = host
        .logs()
        .into_iter()
        .filter(|l| l.message.starts_with("queue_ready"))
        .collect();
    assert_eq!(ready.len(), 1);
    assert_eq!(&*ready[0].message, "queue_ready root=1 token=1 data=hello");
    assert_eq!(ready[0].worker, 1);
    assert_eq!(ready[0].context_id, 1);
    assert_eq!(host.metric("conf_queue_ready"), Some(1));
}

// §3.6 ticks: first tick after one period, per worker, re-armed; virtual clock.
#[test]
fn ticks_follow_the_virtual_clock() {
    let options = HostOptions {
        plugin_configuration: b"tick=100".to_vec(),
        ..HostOptions::default()
    };
    let mut host = conformance_host_with(options, Clusters::new());
    let start = host.now_unix_ms();
    host.advance(99);
    assert_eq!(host.metric("conf_ticks"), Some(0));
    host.advance(1);
    assert_eq!(host.metric("conf_ticks"), Some(2), "one tick per worker");
    host.advance(250);
    assert_eq!(host.metric("conf_ticks"), Some(6));
    let tick = host
        .logs()
        .into_iter()
        .find(|l| l.message.starts_with("tick"))
        .unwrap();
    assert_eq!(
        &*tick.message,
        format!("tick root=1 now_ms={}", start + 100)
    );
    assert_eq!(tick.context_id, 1);
}

// §2 instantiation: vm/plugin configuration buffers, root id 1, properties in the root context.
#[test]
fn start_sequence_and_configuration() {
    let options = HostOptions {
        vm_configuration: b"vm-cfg".to_vec(),
        plugin_configuration: b"plugin-cfg".to_vec(),
        ..HostOptions::default()
    };
    let host = conformance_host_with(options, Clusters::new());
    let logs = messages(&host.logs());
    assert_eq!(
        logs.iter()
            .filter(|m| *m == "vm_start root=1 size=6 vm_config=vm-cfg")
            .count(),
        2
    );
    assert_eq!(
        logs.iter()
            .filter(|m| *m == "configure root=1 size=10 plugin_config=plugin-cfg")
            .count(),
        2
    );
    // §3.8 Availability: a root context resolves plugin_* but not request.*.
    assert!(logs.contains(
        &"configured queue=1 root_request_path_status=1 plugin_name=mfa-gate".to_string()
    ));
}

// §2: on_vm_start / on_configure false → clear errors carrying the logs.
#[test]
fn configure_or_vm_start_false_is_an_error() {
    let options = HostOptions {
        plugin_configuration: b"fail".to_vec(),
        ..HostOptions::default()
    };
    let error =
        mfa_gate_host::Host::load(&conformance_wasm(), options, Clusters::new()).unwrap_err();
    assert!(
        matches!(&error, mfa_gate_host::HostError::ConfigureFailed { logs } if logs.iter().any(|l| &*l.message == "configuration rejected"))
    );
    assert!(
        error.to_string().contains("proxy_on_configure failed"),
        "{error}"
    );
    let options = HostOptions {
        vm_configuration: b"fail".to_vec(),
        ..HostOptions::default()
    };
    let error =
        mfa_gate_host::Host::load(&conformance_wasm(), options, Clusters::new()).unwrap_err();
    assert!(
        matches!(error, mfa_gate_host::HostError::VmStartFailed { .. }),
        "{error}"
    );
}

// §3.3 + §2: a root-context callout at configure time is answered to the root after start.
#[test]
fn root_callout_at_configure() {
    let options = HostOptions {
        plugin_configuration: b"fetch=auth".to_vec(),
        workers: 1,
        ..HostOptions::default()
    };
    let host = conformance_host_with(options, auth_ok());
    let logs = messages(&host.logs());
    assert!(
        logs.contains(&"root fetch dispatched ok=true".to_string()),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|m| m.starts_with("root call_response token=4 headers=3")),
        "{logs:?}"
    );
    assert_eq!(host.cluster_calls("auth"), 1);
}

// §3.8 properties: request.*, source/destination, connection.*, plugin_*, xds.*, removed names,
// filter state via set_property.
#[test]
fn properties() {
    let mut host = conformance_host(Clusters::new());
    let mut request = get(
        "/p/q?a=1&b=2",
        &[
            ("x-conformance", "properties"),
            ("x-prop", "p1"),
            ("user-agent", "ua"),
        ],
    );
    request.peer.mtls = true;
    request.peer.uri_san = Some("spiffe://cluster.local/ns/a/sa/b".to_string());
    request.route_name = Some("admin-route".to_string());
    request.cluster_name = Some("app".to_string());
    let start = host.now_unix_ms();
    let exchange = run(&mut host, request);
    let expect = [
        ("plugin-name", "mfa-gate"),
        ("root-id", "mfa-gate"),
        ("vm-id", "mfa-gate"),
        ("path", "/p/q?a=1&b=2"),
        ("url-path", "/p/q"),
        ("query", "a=1&b=2"),
        ("method", "GET"),
        ("host", "app.example"),
        ("scheme", "https"),
        ("useragent", "ua"),
        ("header-prop", "p1"),
        ("source", "10.0.0.7:51234"),
        ("destination", "10.0.0.1:8443"),
        ("uri-san", "spiffe://cluster.local/ns/a/sa/b"),
        ("digest", "none"),
        ("subject", "none"),
        ("route", "admin-route"),
        ("cluster", "app"),
        ("old-route", "none"),
        ("unknown", "none"),
        ("source-port", "51234"),
        ("destination-port", "8443"),
        ("mtls", "[1]"),
        ("request-id-len", "Some(36)"),
        ("headers-map", "Some(true)"),
        ("set-property", "0"),
        ("get-set", "my-value"),
        ("filter-state", "my-value"),
    ];
    for (name, value) in expect {
        assert_eq!(header(&exchange, name), value, "property {name}");
    }
    assert_eq!(
        header(&exchange, "request-time"),
        (start as i64 * 1_000_000).to_string()
    );
}

// §1 WASI: environ from options.environment; fd 1 → info, fd 2 → error.
#[test]
fn wasi_environment_and_stdio() {
    let options = HostOptions {
        environment: vec![("CONF_ENV".to_string(), "from-host".to_string())],
        ..HostOptions::default()
    };
    let mut host = conformance_host_with(options, Clusters::new());
    assert_eq!(header(&run(&mut host, scenario("env")), "env"), "from-host");
    let exchange = run(&mut host, scenario("stdio"));
    let out = exchange
        .logs
        .iter()
        .find(|l| &*l.message == "hello from stdout")
        .unwrap();
    assert_eq!(out.level, "info");
    let err = exchange
        .logs
        .iter()
        .find(|l| &*l.message == "hello from stderr")
        .unwrap();
    assert_eq!(err.level, "error");
}

// §3.1 set_buffer_bytes: start 0 replaces, start ≥ len appends, mid → BadArgument; trailers can be
// added in on_*_body at eos; response body rewrite. The body streams in (the data, then an empty
// end of stream): the fixture edits each chunk, so the empty last one gets "!" and "?" (start ≥
// len appends), and the response's "filtered:" lands after the upstream's body.
#[test]
fn body_and_trailers() {
    let mut host = conformance_host(Clusters::new());
    let mut request = scenario("body");
    request.body = b"hello".to_vec();
    let exchange = run(&mut host, request);
    let upstream = exchange.upstream_request.clone().unwrap();
    assert_eq!(upstream.body, b"HELLO!!?");
    assert_eq!(
        upstream.trailers,
        vec![(b"x-added-trailer".to_vec(), b"t".to_vec())]
    );
    assert_eq!(header(&exchange, "append"), "0");
    assert_eq!(header(&exchange, "mid-replace"), "2");
    assert_eq!(exchange.response.body, b"upstream-bodyfiltered:");
    let mut request = scenario("body");
    request.body = b"abc".to_vec();
    request.trailers = vec![(b"x-trailer".to_vec(), b"tv".to_vec())];
    let exchange = run(&mut host, request);
    assert_eq!(header(&exchange, "trailer"), "tv");
    let trailers = exchange.upstream_request.unwrap().trailers;
    assert!(trailers.contains(&(b"x-more".to_vec(), b"1".to_vec())));
}

// §3.9 fail closed: a trap fails the worker's VM; this and later streams on it get 503
// wasm_fail_stream; other workers keep working; on_log etc. are skipped.
#[test]
fn trap_fails_worker_closed() {
    let mut host = conformance_host(Clusters::new());
    let mut upstream = ok_upstream();
    let exchange = host.handle_on(0, scenario("trap"), &mut upstream);
    assert_eq!(exchange.response.status, 503);
    assert!(exchange.response.body.is_empty());
    assert_eq!(
        exchange.response_code_details.as_deref(),
        Some("wasm_fail_stream")
    );
    assert!(exchange.upstream_request.is_none());
    assert!(exchange
        .logs
        .iter()
        .any(|l| l.level == "critical" && l.message.contains("conformance trap requested")));
    assert!(!messages(&exchange.logs)
        .iter()
        .any(|m| m.starts_with("lifecycle log")));
    let failure = host.worker_failed(0).unwrap();
    assert!(failure.contains("proxy_on_request_headers"), "{failure}");
    let later = host.handle_on(0, scenario("noop"), &mut upstream);
    assert_eq!(later.response.status, 503);
    assert_eq!(
        later.response_code_details.as_deref(),
        Some("wasm_fail_stream")
    );
    let other = host.handle_on(1, scenario("noop"), &mut upstream);
    assert_eq!(other.response.status, 200);
    assert_eq!(host.worker_failed(1), None);
}

// §3.9 fail open: the filter is skipped.
#[test]
fn trap_fails_worker_open() {
    let options = HostOptions {
        failure_policy: FailurePolicy::FailOpen,
        ..HostOptions::default()
    };
    let mut host = conformance_host_with(options, Clusters::new());
    let exchange = run(&mut host, scenario("trap"));
    assert_eq!(exchange.response.status, 200);
    assert!(exchange.upstream_request.is_some());
    let later = run(&mut host, scenario("headers"));
    assert_eq!(later.response.status, 200);
    assert_eq!(upstream_header(&later, "x-added"), None, "filter bypassed");
}

// §3.9: a trap while the response is in the filter (headers not yet sent) → 503.
#[test]
fn trap_in_response_headers_fails_closed() {
    let mut host = conformance_host(Clusters::new());
    let exchange = run(&mut host, scenario("trap-response"));
    assert_eq!(exchange.response.status, 503);
    assert_eq!(
        exchange.response_code_details.as_deref(),
        Some("wasm_fail_stream")
    );
    assert!(exchange.upstream_request.is_some());
}

// Upstream closure sees exactly the filtered request.
#[test]
fn upstream_receives_filtered_request() {
    let mut host = conformance_host(Clusters::new());
    let mut seen = Vec::new();
    let mut upstream = |request: &UpstreamRequest| {
        seen.push(request.clone());
        Ok(HttpResponse {
            status: 204,
            ..HttpResponse::default()
        })
    };
    let exchange = host.handle(get("/u", &[("x-conformance", "headers")]), &mut upstream);
    assert_eq!(exchange.response.status, 204);
    assert_eq!(seen.len(), 1);
    assert_eq!(Some(&seen[0]), exchange.upstream_request.as_ref());
}

// §3.8 metadata: dynamic metadata through the property path (values from metadata.rs);
// a null value is SerializationFailure (3), a miss NotFound (1).
#[test]
fn metadata_property() {
    let mut host = conformance_host(Clusters::new());
    let mut request = scenario("metadata");
    let metadata = serde_json::json!({"ns": {"key": "value", "null": null}});
    request.filter_metadata = metadata.as_object().unwrap().clone();
    let exchange = run(&mut host, request);
    assert_eq!(header(&exchange, "md-string"), "0:value");
    assert_eq!(header(&exchange, "md-missing"), "1:");
    assert_eq!(header(&exchange, "md-null"), "3:");
}

// §3.1: Pause in request headers holds the body; after the callout resumes the stream,
// on_request_body runs with the whole body.
#[test]
fn body_waits_for_paused_headers() {
    let mut host = conformance_host(auth_ok());
    let mut request = scenario("callout");
    request.body = b"payload".to_vec();
    let exchange = run(&mut host, request);
    let order: Vec<String> = messages(&exchange.logs)
        .into_iter()
        .filter(|m| m.starts_with("lifecycle request") || m.starts_with("result call-status"))
        .collect();
    assert_eq!(order.len(), 3, "{order:?}");
    assert!(order[0].starts_with("lifecycle request_headers"));
    assert_eq!(order[1], "result call-status=200");
    assert!(
        order[2].starts_with("lifecycle request_body") && order[2].ends_with("size=7 eos=true")
    );
    assert_eq!(exchange.upstream_request.unwrap().body, b"payload");
}

// §3.1 Body: Pause at end of stream buffers the body until the callout resumes the stream;
// the buffered body is readable from the callback.
#[test]
fn body_pause_waits_for_callout() {
    let mut host = conformance_host(auth_ok());
    let mut request = scenario("body-callout");
    request.body = b"form=1".to_vec();
    let exchange = run(&mut host, request);
    assert_eq!(header(&exchange, "paused-body"), "form=1");
    assert_eq!(header(&exchange, "call-status"), "200");
    assert_eq!(exchange.upstream_request.unwrap().body, b"form=1");
    assert_eq!(host.cluster_calls("auth"), 1);
}

// §3.1 Header access windows: an SDK read of request headers in on_request_body gets
// BadArgument, which the SDK turns into a panic — the VM fails as it would under Envoy.
#[test]
fn sdk_request_header_read_after_continue_traps() {
    let mut host = conformance_host(Clusters::new());
    let mut request = scenario("sdk-header-in-body");
    request.body = b"x".to_vec();
    let exchange = run(&mut host, request);
    assert_eq!(exchange.response.status, 503);
    assert_eq!(
        exchange.response_code_details.as_deref(),
        Some("wasm_fail_stream")
    );
    assert!(exchange
        .logs
        .iter()
        .any(|l| l.message.contains("unexpected status: 2")));
    assert!(host
        .worker_failed(0)
        .unwrap()
        .contains("proxy_on_request_body"));
}

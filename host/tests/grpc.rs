//! gRPC unary calls (`proxy_grpc_call`) through the conformance fixture's `grpc` scenario, as
//! Envoy 1.40 makes them (host/README.md, Callouts): what the cluster receives, tokens, the
//! reply to the stream that paused on it, the status of a failed call, the timeout on the
//! virtual clock, an unreachable or unknown cluster, cancel.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use mfa_gate_host::{Cluster, Clusters, GrpcCall, GrpcReply, HostOptions};
use std::sync::{Arc, Mutex};

fn header(exchange: &mfa_gate_host::Exchange, name: &str) -> String {
    response_header(exchange, &format!("x-r-{name}"))
        .unwrap_or_else(|| panic!("missing x-r-{name}: {exchange:#?}"))
}

fn grpc(extra: &[(&str, &str)]) -> mfa_gate_host::DownstreamRequest {
    let mut headers = vec![("x-conformance", "grpc")];
    headers.extend_from_slice(extra);
    get("/grpc", &headers)
}

fn one_worker() -> HostOptions {
    HostOptions {
        workers: 1,
        ..HostOptions::default()
    }
}

/// A `push` cluster answering `reply`, recording every call it gets.
fn push(reply: GrpcReply) -> (Clusters, Arc<Mutex<Vec<GrpcCall>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let clusters = Clusters::new().with(
        "push",
        Cluster::Grpc(Box::new(move |call: &GrpcCall| {
            record.lock().unwrap().push(call.clone());
            reply.clone()
        })),
    );
    (clusters, seen)
}

// A message reply: the cluster gets service, method, lower-cased metadata, the message and
// the timeout; the stream paused on the call gets on_grpc_call_response(token, 0, size) with
// the bytes in the GrpcReceiveBuffer (slices clamp), resumes, and reaches the upstream.
// Tokens are 5, 9, … per VM; outside the callback the buffer reads empty (Ok).
#[test]
fn message_reply_round_trips_the_body() {
    let (clusters, seen) = push(GrpcReply::message(b"pong:\x00\xffbytes"));
    let mut host = conformance_host_with(one_worker(), clusters);
    let exchange = run(
        &mut host,
        grpc(&[("x-grpc-message", "hello"), ("x-grpc-timeout-ms", "250")]),
    );
    assert_eq!(header(&exchange, "grpc-dispatch"), "Ok:5");
    assert_eq!(header(&exchange, "grpc-5"), "status=0 size=12");
    assert_eq!(
        header(&exchange, "grpc-body"),
        String::from_utf8_lossy(b"pong:\x00\xffbytes")
    );
    assert_eq!(header(&exchange, "grpc-get-status"), "0:");
    assert_eq!(header(&exchange, "grpc-buffer-slice"), "0:on");
    // The call being delivered is still live in Envoy: cancelling it is Ok.
    assert_eq!(header(&exchange, "grpc-cancel-delivered"), "0");
    assert_eq!(header(&exchange, "grpc-buffer-outside"), "0:0");
    assert_eq!(header(&exchange, "grpc-cancel-unknown"), "1");
    assert_eq!(header(&exchange, "grpc-cancel-http-token"), "2");
    assert!(exchange.upstream_request.is_some());
    assert_eq!(exchange.response.status, 200);
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].cluster, "push");
    assert_eq!(calls[0].service, "mfa.test.Push");
    assert_eq!(calls[0].method, "Notify");
    assert_eq!(calls[0].message, b"hello");
    assert_eq!(calls[0].timeout_ms, 250);
    assert_eq!(
        calls[0].initial_metadata,
        vec![
            (b"x-md".to_vec(), b"1".to_vec()),
            (b"x-upper-md".to_vec(), b"2".to_vec())
        ]
    );
    assert_eq!(host.cluster_calls("push"), 1);
    let second = run(&mut host, grpc(&[]));
    assert_eq!(header(&second, "grpc-dispatch"), "Ok:9");
    assert_eq!(header(&second, "grpc-9"), "status=0 size=12");
}

// A status reply: on_grpc_call_response(token, code, 0), get_status = (code, message), no body.
// grpc-status 0 without a message is Envoy's Internal (13) with an empty message.
#[test]
fn status_reply_reaches_on_grpc_close() {
    let (clusters, _) = push(GrpcReply::status(7, "too many pushes"));
    let mut host = conformance_host_with(one_worker(), clusters);
    let exchange = run(&mut host, grpc(&[]));
    assert_eq!(header(&exchange, "grpc-5"), "status=7 size=0");
    assert_eq!(header(&exchange, "grpc-get-status"), "7:too many pushes");
    assert_eq!(header(&exchange, "grpc-body"), "none");
    assert_eq!(exchange.response.status, 200);

    let (clusters, _) = push(GrpcReply::status(0, "ignored"));
    let mut host = conformance_host_with(one_worker(), clusters);
    let exchange = run(&mut host, grpc(&[]));
    assert_eq!(header(&exchange, "grpc-5"), "status=13 size=0");
    assert_eq!(header(&exchange, "grpc-get-status"), "13:");
}

// Timeouts on the virtual clock: a reply later than the timeout, or none, fails at the
// timeout: UNAVAILABLE (14, not DEADLINE_EXCEEDED) with the router's "upstream request
// timeout" and its details, as Envoy 1.40 answers; the paused stream waits for it (the
// clock moves exactly to the deadline). An earlier delayed reply arrives at its time.
#[test]
fn timeout_on_the_virtual_clock() {
    for reply in [
        GrpcReply::NoAnswer,
        GrpcReply::Message {
            bytes: b"late".to_vec(),
            delay_ms: 5_000,
        },
    ] {
        let (clusters, _) = push(reply);
        let mut host = conformance_host_with(one_worker(), clusters);
        let start = host.now_unix_ms();
        let exchange = run(&mut host, grpc(&[("x-grpc-timeout-ms", "300")]));
        assert_eq!(header(&exchange, "grpc-5"), "status=14 size=0");
        assert_eq!(
            header(&exchange, "grpc-get-status"),
            "14:upstream request timeout{response_timeout}"
        );
        assert_eq!(host.now_unix_ms() - start, 300);
        assert_eq!(exchange.response.status, 200);
    }
    let (clusters, _) = push(GrpcReply::Message {
        bytes: b"soon".to_vec(),
        delay_ms: 120,
    });
    let mut host = conformance_host_with(one_worker(), clusters);
    let start = host.now_unix_ms();
    let exchange = run(&mut host, grpc(&[("x-grpc-timeout-ms", "300")]));
    assert_eq!(header(&exchange, "grpc-body"), "soon");
    assert_eq!(host.now_unix_ms() - start, 120);
}

// An unreachable cluster: UNAVAILABLE (14) with the router's connect-failure text, after the
// callback that made the call (never re-entrantly: the dispatch result comes first).
#[test]
fn unreachable_cluster_is_unavailable() {
    let (clusters, _) = push(GrpcReply::Unreachable);
    let mut host = conformance_host_with(one_worker(), clusters);
    let exchange = run(&mut host, grpc(&[]));
    assert_eq!(header(&exchange, "grpc-5"), "status=14 size=0");
    assert_eq!(
        header(&exchange, "grpc-get-status"),
        "14:upstream connect error or disconnect/reset before headers. reset reason: remote \
         connection failure{upstream_reset_before_response_started{remote_connection_failure|\
         delayed_connect_error:_Connection_refused}}"
    );
    let results: Vec<String> = messages(&exchange.logs)
        .into_iter()
        .filter(|m| m.starts_with("result grpc-dispatch") || m.starts_with("result grpc-5"))
        .collect();
    assert_eq!(
        results,
        vec![
            "result grpc-dispatch=Ok:5",
            "result grpc-5=status=14 size=0"
        ]
    );
}

// A cluster name Envoy does not know is ParseFailure (the SDK's Err); so is one of the host's
// HTTP clusters (they do not speak gRPC). A serialized GrpcService naming a gRPC cluster
// starts the call; one naming an unknown cluster is InternalFailure, its token used up.
#[test]
fn unknown_cluster_and_serialized_services() {
    let (clusters, seen) = push(GrpcReply::message(b"x"));
    let clusters = clusters.with("http-only", Cluster::fixed(200, b"ok"));
    let mut host = conformance_host_with(one_worker(), clusters);
    let exchange = run(&mut host, grpc(&[("x-grpc-cluster", "no-such-cluster")]));
    assert_eq!(header(&exchange, "grpc-dispatch"), "ParseFailure");
    let exchange = run(&mut host, grpc(&[("x-grpc-cluster", "http-only")]));
    assert_eq!(header(&exchange, "grpc-dispatch"), "ParseFailure");
    assert_eq!(host.cluster_calls("http-only"), 0);

    let exchange = run(&mut host, grpc(&[("x-grpc-service", "proto")]));
    assert_eq!(header(&exchange, "grpc-dispatch"), "0:5");
    assert_eq!(seen.lock().unwrap().len(), 1);
    let exchange = run(
        &mut host,
        grpc(&[("x-grpc-service", "proto"), ("x-grpc-cluster", "nowhere")]),
    );
    assert_eq!(header(&exchange, "grpc-dispatch"), "10:0");
    let exchange = run(&mut host, grpc(&[]));
    assert_eq!(header(&exchange, "grpc-dispatch"), "Ok:13");
}

// Cancel of a live call: Ok, nothing delivered, a second cancel NotFound; the stream goes on.
#[test]
fn cancel_live_call_delivers_nothing() {
    let (clusters, _) = push(GrpcReply::Message {
        bytes: b"never seen".to_vec(),
        delay_ms: 50,
    });
    let mut host = conformance_host_with(one_worker(), clusters);
    let exchange = run(&mut host, grpc(&[("x-grpc-cancel", "1")]));
    assert_eq!(header(&exchange, "grpc-cancel"), "0");
    assert_eq!(header(&exchange, "grpc-cancel-again"), "1");
    assert_eq!(exchange.response.status, 200);
    host.advance(1_000);
    let later = host.take_logs();
    assert!(
        !messages(&later).iter().any(|m| m.contains("result grpc-5")),
        "{later:?}"
    );
    assert_eq!(host.cluster_calls("push"), 1);
}

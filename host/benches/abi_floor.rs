//! ABI floor: ns per request for the noop fixture through the host (context create, request
//! headers in → Continue, upstream closure, response callbacks, on_log/on_done/on_delete).
//! Run: `make wasm && cargo bench -p mfa-gate-host --bench abi_floor`.

#![allow(clippy::panic)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use mfa_gate_host::{
    Clusters, DownstreamRequest, Host, HostOptions, HttpResponse, UpstreamRequest,
};

fn noop_wasm() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip1/release/noop_filter.wasm");
    assert!(
        path.exists(),
        "{} is missing: build it first: make wasm",
        path.display()
    );
    path
}

fn request() -> DownstreamRequest {
    let header = |name: &str, value: &str| (name.as_bytes().to_vec(), value.as_bytes().to_vec());
    DownstreamRequest {
        headers: vec![
            header(":authority", "app.example"),
            header(":path", "/api/items?page=2"),
            header(":method", "GET"),
            header(":scheme", "https"),
            header("user-agent", "bench/1.0"),
            header("accept", "*/*"),
            header("x-request-id", "3f1c2a9e-8b7d-4c6e-9a5b-1d2e3f4a5b6c"),
        ],
        ..DownstreamRequest::default()
    }
}

fn abi_floor(c: &mut Criterion) {
    let options = HostOptions {
        workers: 1,
        ..HostOptions::default()
    };
    let mut host = match Host::load(&noop_wasm(), options, Clusters::new()) {
        Ok(host) => host,
        Err(error) => panic!("noop filter does not load: {error}"),
    };
    let template = request();
    let mut upstream = |_: &UpstreamRequest| {
        Ok::<_, String>(HttpResponse {
            status: 200,
            ..HttpResponse::default()
        })
    };
    c.bench_function("abi_floor/noop_request", |b| {
        b.iter(|| {
            let exchange = host.handle(black_box(template.clone()), &mut upstream);
            black_box(exchange.response.status)
        })
    });
}

criterion_group!(benches, abi_floor);
criterion_main!(benches);

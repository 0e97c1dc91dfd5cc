//! `mfa-gate-host serve`: a real HTTP/1.1 proxy on loopback with the wasm filter inline.
//!
//! Layout (as Envoy): a hyper 1 server on a small tokio runtime accepts connections; each
//! connection is pinned to one worker (round robin at accept). A worker is an OS thread that
//! owns one filter VM and takes jobs from a channel; it runs the stream through the filter and,
//! if allowed, forwards it to the routed cluster with a blocking HTTP/1.1 client
//! ([`HttpUpstream`]) — blocking inside the worker thread, so one worker handles one stream at a
//! time. Between jobs it fires ticks and `dispatch_http_call` timers, using the worker's next
//! deadline as its receive timeout. Without a wasm filter in the config the same workers just
//! forward (the load-test baseline).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::clusters::text_response;
use crate::envoy_yaml::{EnvoyConfig, ListenerConfig};
use crate::types::{
    DownstreamRequest, Exchange, HeaderList, HttpResponse, LogLine, Upstream, UpstreamRequest,
};
use crate::upstream_http::{HttpFailure, HttpUpstream, HOP_BY_HOP};

/// Largest downstream request body accepted (larger → 413, as Envoy's buffer limit).
pub const MAX_REQUEST_BODY_BYTES: usize = 16 * 1024 * 1024;

/// What a serve worker thread drives: a filter VM, or nothing (plain proxy).
pub trait StreamWorker: Send {
    /// Runs one stream; `upstream` is the router to the routed cluster.
    fn handle(&mut self, request: DownstreamRequest, upstream: &mut dyn Upstream) -> Exchange;
    /// Fires due ticks and call timers.
    fn run_due_timers(&mut self);
    /// Unix ms of the next tick/timer, if any.
    fn next_deadline_ms(&self) -> Option<u64>;
    /// Log lines emitted outside streams since the last call.
    fn take_logs(&mut self) -> Vec<LogLine>;
}

impl StreamWorker for crate::Worker {
    fn handle(&mut self, request: DownstreamRequest, upstream: &mut dyn Upstream) -> Exchange {
        crate::Worker::handle(self, request, upstream)
    }
    fn run_due_timers(&mut self) {
        crate::Worker::run_due_timers(self);
    }
    fn next_deadline_ms(&self) -> Option<u64> {
        crate::Worker::next_deadline_ms(self)
    }
    fn take_logs(&mut self) -> Vec<LogLine> {
        crate::Worker::take_logs(self)
    }
}

/// No filter: the router alone.
pub struct PlainWorker {
    /// Worker number (reported in `Exchange::worker`).
    pub index: usize,
}

impl StreamWorker for PlainWorker {
    fn handle(&mut self, request: DownstreamRequest, upstream: &mut dyn Upstream) -> Exchange {
        let upstream_request = UpstreamRequest {
            headers: request.headers,
            body: request.body,
            trailers: request.trailers,
        };
        let response = upstream
            .forward(&upstream_request)
            .unwrap_or_else(|error| router_error(&error));
        Exchange {
            response,
            upstream_request: Some(upstream_request),
            worker: self.index,
            ..Default::default()
        }
    }
    fn run_due_timers(&mut self) {}
    fn next_deadline_ms(&self) -> Option<u64> {
        None
    }
    fn take_logs(&mut self) -> Vec<LogLine> {
        Vec::new()
    }
}

/// Envoy router's local reply for a failed upstream (503, or 504 on timeout).
pub fn router_error(error: &str) -> HttpResponse {
    let (status, body) = if error == HttpFailure::Timeout.to_string() {
        (504, "upstream request timeout".to_string())
    } else {
        (
            503,
            format!(
                "upstream connect error or disconnect/reset before headers. reset reason: {error}"
            ),
        )
    };
    text_response(status, &body)
}

/// The router for one stream: forwards to the routed cluster's first endpoint, or 404.
enum Router {
    Cluster(HttpUpstream),
    NoRoute,
}

impl Upstream for Router {
    fn forward(&mut self, request: &UpstreamRequest) -> Result<HttpResponse, String> {
        match self {
            Router::Cluster(upstream) => upstream.forward(request),
            // Envoy: 404 with an empty body, details route_not_found.
            Router::NoRoute => Ok(HttpResponse {
                status: 404,
                headers: vec![(b"content-length".to_vec(), b"0".to_vec())],
                ..Default::default()
            }),
        }
    }
}

struct Job {
    request: DownstreamRequest,
    router: Router,
    reply: oneshot::Sender<Exchange>,
}

/// Settings of one `serve` run.
pub struct ServeSettings {
    /// The parsed bootstrap; its first listener is served.
    pub config: EnvoyConfig,
    /// Listen here instead of the listener's address (`127.0.0.1:0` = any free port).
    pub listen_override: Option<String>,
    /// Lowest filter log level printed to stderr (trace, debug, info, warn, error, critical).
    pub log_level: String,
    /// The plugin name used as log prefix.
    pub plugin_name: String,
}

fn level_rank(level: &str) -> u8 {
    match level {
        "trace" => 0,
        "debug" => 1,
        "info" => 2,
        "warn" => 3,
        "error" => 4,
        _ => 5,
    }
}

fn print_logs(logs: &[LogLine], min_rank: u8, plugin: &str) {
    for line in logs {
        if level_rank(line.level) >= min_rank {
            eprintln!(
                "[{}][wasm][worker {}] {} ctx={}: {}",
                line.level, line.worker, plugin, line.context_id, line.message
            );
        }
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn worker_loop(
    mut worker: Box<dyn StreamWorker>,
    jobs: mpsc::Receiver<Job>,
    min_rank: u8,
    plugin: Arc<str>,
) {
    loop {
        let next = match worker.next_deadline_ms() {
            Some(deadline) => jobs.recv_timeout(Duration::from_millis(
                deadline.saturating_sub(now_unix_ms()),
            )),
            None => jobs
                .recv()
                .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(job) => {
                let mut router = job.router;
                let exchange = worker.handle(job.request, &mut router);
                // The client may be gone; its stream still ran (as in Envoy).
                let _ = job.reply.send(exchange);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if worker
            .next_deadline_ms()
            .is_some_and(|deadline| deadline <= now_unix_ms())
        {
            worker.run_due_timers();
        }
        // All workers share one log store (stream lines included): print whatever is there.
        let logs = worker.take_logs();
        print_logs(&logs, min_rank, &plugin);
    }
}

struct Front {
    listener: ListenerConfig,
    config: EnvoyConfig,
    workers: Vec<mpsc::Sender<Job>>,
    next_worker: AtomicUsize,
}

impl Front {
    fn router_for(&self, request: &mut DownstreamRequest, authority: &str, path: &str) -> Router {
        let Some(route) = self.listener.route(authority, path) else {
            return Router::NoRoute;
        };
        if !route.name.is_empty() {
            request.route_name = Some(route.name.clone());
        }
        request.cluster_name = Some(route.cluster.clone());
        match self
            .config
            .cluster(&route.cluster)
            .and_then(|c| c.endpoints.first())
        {
            Some(address) => Router::Cluster(HttpUpstream {
                address: address.clone(),
                timeout: route.timeout,
            }),
            None => Router::NoRoute,
        }
    }
}

fn to_hyper_response(response: HttpResponse) -> hyper::Response<Full<Bytes>> {
    let mut builder = hyper::Response::builder().status(response.status);
    if let Some(map) = builder.headers_mut() {
        for (name, value) in &response.headers {
            if name.first() == Some(&b':')
                || name.eq_ignore_ascii_case(b"content-length")
                || HOP_BY_HOP
                    .iter()
                    .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
            {
                continue;
            }
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            {
                map.append(name, value);
            }
        }
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        .unwrap_or_else(|_| {
            let mut fallback = hyper::Response::new(Full::new(Bytes::from_static(
                b"invalid response from filter",
            )));
            *fallback.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            fallback
        })
}

fn plain(status: u16, body: &'static str) -> hyper::Response<Full<Bytes>> {
    to_hyper_response(text_response(status, body))
}

/// The stream ended without a response (reset, or paused forever): the connection is closed
/// without an answer, as Envoy resets an HTTP/1.1 stream.
#[derive(Debug)]
struct StreamReset(String);

impl std::fmt::Display for StreamReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stream reset ({})", self.0)
    }
}

impl std::error::Error for StreamReset {}

async fn handle_request(
    front: Arc<Front>,
    worker: usize,
    peer: SocketAddr,
    local: SocketAddr,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, StreamReset> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return Ok(plain(413, "Payload Too Large"));
            }
            return Ok(plain(400, "Bad Request"));
        }
    };
    let authority = parts
        .headers
        .get(hyper::header::HOST)
        .map(|h| h.as_bytes().to_vec())
        .or_else(|| {
            parts
                .uri
                .authority()
                .map(|a| a.as_str().as_bytes().to_vec())
        })
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let mut headers: HeaderList = vec![
        (b":authority".to_vec(), authority.clone()),
        (b":path".to_vec(), path.clone().into_bytes()),
        (
            b":method".to_vec(),
            parts.method.as_str().as_bytes().to_vec(),
        ),
        (b":scheme".to_vec(), b"http".to_vec()),
    ];
    for (name, value) in &parts.headers {
        if name == hyper::header::HOST || HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        headers.push((name.as_str().as_bytes().to_vec(), value.as_bytes().to_vec()));
    }
    let mut downstream = DownstreamRequest {
        headers,
        body: body.to_vec(),
        source_address: Some(peer.to_string()),
        destination_address: Some(local.to_string()),
        ..Default::default()
    };
    let router = front.router_for(&mut downstream, &String::from_utf8_lossy(&authority), &path);
    let (reply, answer) = oneshot::channel();
    let job = Job {
        request: downstream,
        router,
        reply,
    };
    let Some(sender) = front.workers.get(worker) else {
        return Ok(plain(503, "no worker"));
    };
    if sender.send(job).is_err() {
        return Ok(plain(503, "worker stopped"));
    }
    match answer.await {
        Ok(exchange) if exchange.response.status == 0 => Err(StreamReset(
            exchange
                .response_code_details
                .unwrap_or_else(|| "no response".to_string()),
        )),
        Ok(exchange) => Ok(to_hyper_response(exchange.response)),
        Err(_) => Ok(plain(503, "worker failed")),
    }
}

/// Runs the proxy until Ctrl-C or SIGTERM. `workers` are the filter VMs (or plain workers).
/// Prints `listening on ADDR` (the bound address) on stdout once ready.
pub fn run(settings: ServeSettings, workers: Vec<Box<dyn StreamWorker>>) -> Result<(), String> {
    let ServeSettings {
        config,
        listen_override,
        log_level,
        plugin_name,
    } = settings;
    let listener_config = config
        .listeners
        .first()
        .cloned()
        .ok_or("the config has no listener")?;
    let address = listen_override.unwrap_or_else(|| listener_config.address.clone());
    let min_rank = level_rank(&log_level);
    let plugin: Arc<str> = Arc::from(plugin_name.as_str());

    let mut senders = Vec::new();
    let mut threads = Vec::new();
    for (index, worker) in workers.into_iter().enumerate() {
        let (sender, receiver) = mpsc::channel::<Job>();
        let plugin = plugin.clone();
        let thread = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || worker_loop(worker, receiver, min_rank, plugin))
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        senders.push(sender);
        threads.push(thread);
    }
    if senders.is_empty() {
        return Err("no worker".to_string());
    }
    let front = Arc::new(Front {
        listener: listener_config,
        config,
        workers: senders,
        next_worker: AtomicUsize::new(0),
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the network runtime: {e}"))?;
    let result = runtime.block_on(accept_loop(front.clone(), address));
    runtime.shutdown_timeout(Duration::from_secs(1));
    // Dropping the last senders ends the worker threads.
    drop(front);
    for thread in threads {
        let _ = thread.join();
    }
    result
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn accept_loop(front: Arc<Front>, address: String) -> Result<(), String> {
    let listener = TcpListener::bind(&address).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "cannot listen on {address}: address already in use (is another proxy running? try --listen-override 127.0.0.1:PORT)"
            )
        } else {
            format!("cannot listen on {address}: {e}")
        }
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    println!("listening on {bound}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                eprintln!("shutting down");
                return Ok(());
            }
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        eprintln!("accept failed: {e}");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().unwrap_or(bound);
                let worker = front.next_worker.fetch_add(1, Ordering::Relaxed) % front.workers.len();
                let front = front.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        handle_request(front.clone(), worker, peer, local, request)
                    });
                    // Malformed requests get hyper's 400 and the connection closes; a client
                    // that disconnects mid-request just ends this task.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

/// Plain (no-filter) workers: the router alone, for configs without a wasm filter.
pub fn plain_workers(count: usize) -> Vec<Box<dyn StreamWorker>> {
    (0..count.max(1))
        .map(|index| Box::new(PlainWorker { index }) as Box<dyn StreamWorker>)
        .collect()
}

/// `upstream-echo`: a tiny loopback upstream for tests and the load test. It answers every
/// request 200 with a JSON body `{"method","path","headers":{name: value},"body"}`; a path
/// `/status/NNN` answers status NNN instead of 200.
pub fn run_echo(address: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the network runtime: {e}"))?;
    runtime.block_on(async {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        let bound = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        println!("listening on {bound}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(async move {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service_fn(echo))
                            .await;
                    });
                }
            }
        }
    })
}

async fn echo(
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = Limited::new(body, MAX_REQUEST_BODY_BYTES)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let status = path
        .strip_prefix("/status/")
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(200);
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        headers.insert(
            name.as_str().to_string(),
            serde_json::Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        );
    }
    let answer = serde_json::json!({
        "method": parts.method.as_str(),
        "path": path,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut response = text_response(status, &answer.to_string());
    response.headers[1].1 = b"application/json".to_vec();
    Ok(to_hyper_response(response))
}

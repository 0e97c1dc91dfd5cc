//! A blocking HTTP/1.1 client for loopback upstreams and clusters.
//!
//! Used by the runtime core for `dispatch_http_call` to a `Cluster::Http`.
//!
//! Built on hyper 1 through `hyper_util`'s pooled client, driven by a tokio current-thread runtime
//! owned by the calling thread (one per thread, created on first use). Keep-alive connections are
//! pooled per thread and per address; hyper handles `content-length`, chunked bodies and trailers.
//! A blocking call must not be made from inside a tokio runtime; if it is, the call is run on a
//! short-lived helper thread instead of panicking.

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::types::{ClusterRequest, HeaderList, HttpResponse};

/// Largest response body accepted (Envoy's async client also fails the call past its buffer limit).
pub const MAX_RESPONSE_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Headers that describe one HTTP/1.1 connection and are never forwarded.
pub(crate) const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
];

/// Why an HTTP exchange with an upstream did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpFailure {
    /// No complete response within the timeout.
    Timeout,
    /// The TCP connection could not be made (refused, unreachable, bad address).
    ConnectFailed(String),
    /// The connection broke, the response was malformed or too large, or the request could not be
    /// encoded (e.g. an invalid header name).
    Reset(String),
}

impl fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpFailure::Timeout => write!(f, "upstream request timeout"),
            HttpFailure::ConnectFailed(why) => write!(f, "upstream connect failure: {why}"),
            HttpFailure::Reset(why) => write!(f, "upstream reset: {why}"),
        }
    }
}

impl std::error::Error for HttpFailure {}

type PooledClient = Client<HttpConnector, Full<Bytes>>;

struct ThreadClient {
    runtime: tokio::runtime::Runtime,
    client: PooledClient,
}

thread_local! {
    static THREAD_CLIENT: RefCell<Option<ThreadClient>> = const { RefCell::new(None) };
}

/// Sends `request` to `address` (`host:port`) and waits for the whole response.
///
/// The pseudo-headers `:method`, `:path` and `:authority` of `request.headers` give the request
/// line and `Host`; other pseudo-headers and hop-by-hop headers are dropped. `timeout` bounds the
/// whole exchange (connect, send, response and body); `None` waits forever. Request trailers are
/// not sent (HTTP/1.1 with a fixed-length body has none); response trailers of a chunked
/// response are returned.
pub fn send_blocking(
    address: &str,
    request: &ClusterRequest,
    timeout: Option<Duration>,
) -> Result<HttpResponse, HttpFailure> {
    send_parts(address, &request.headers, &request.body, timeout)
}

/// Like [`send_blocking`] with the request given as headers and body.
pub fn send_parts(
    address: &str,
    headers: &HeaderList,
    body: &[u8],
    timeout: Option<Duration>,
) -> Result<HttpResponse, HttpFailure> {
    let request = build_request(address, headers, body)?;
    if tokio::runtime::Handle::try_current().is_ok() {
        // block_on inside a runtime would panic: run the call on a helper thread.
        return std::thread::scope(|scope| {
            scope
                .spawn(|| run_on_thread_client(request, timeout))
                .join()
                .unwrap_or_else(|_| Err(HttpFailure::Reset("client thread failed".to_string())))
        });
    }
    run_on_thread_client(request, timeout)
}

fn run_on_thread_client(
    request: hyper::Request<Full<Bytes>>,
    timeout: Option<Duration>,
) -> Result<HttpResponse, HttpFailure> {
    THREAD_CLIENT.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| HttpFailure::Reset(format!("cannot start client runtime: {e}")))?;
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            let client = {
                let _guard = runtime.enter();
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(30))
                    .build(connector)
            };
            *slot = Some(ThreadClient { runtime, client });
        }
        match slot.as_ref() {
            Some(tc) => tc.runtime.block_on(exchange(&tc.client, request, timeout)),
            None => Err(HttpFailure::Reset("client runtime unavailable".to_string())),
        }
    })
}

async fn exchange(
    client: &PooledClient,
    request: hyper::Request<Full<Bytes>>,
    timeout: Option<Duration>,
) -> Result<HttpResponse, HttpFailure> {
    let work = async {
        let response = client
            .request(request)
            .await
            .map_err(classify_client_error)?;
        let status = response.status().as_u16();
        let mut headers: HeaderList = Vec::with_capacity(response.headers().len());
        for (name, value) in response.headers() {
            if is_hop_by_hop(name.as_str()) {
                continue;
            }
            headers.push((name.as_str().as_bytes().to_vec(), value.as_bytes().to_vec()));
        }
        let collected = Limited::new(response.into_body(), MAX_RESPONSE_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    HttpFailure::Reset(format!(
                        "response body over {MAX_RESPONSE_BODY_BYTES} bytes"
                    ))
                } else {
                    HttpFailure::Reset(format!("response body: {e}"))
                }
            })?;
        let trailers = collected
            .trailers()
            .map(|map| {
                map.iter()
                    .map(|(n, v)| (n.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(HttpResponse {
            status,
            headers,
            body: collected.to_bytes().to_vec(),
            trailers,
        })
    };
    match timeout {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .unwrap_or(Err(HttpFailure::Timeout)),
        None => work.await,
    }
}

fn classify_client_error(error: hyper_util::client::legacy::Error) -> HttpFailure {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    if error.is_connect() {
        HttpFailure::ConnectFailed(text)
    } else {
        HttpFailure::Reset(text)
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

fn build_request(
    address: &str,
    headers: &HeaderList,
    body: &[u8],
) -> Result<hyper::Request<Full<Bytes>>, HttpFailure> {
    let invalid = |why: String| HttpFailure::Reset(format!("invalid request: {why}"));
    let mut method: &[u8] = b"GET";
    let mut path: &[u8] = b"/";
    let mut authority: Option<&[u8]> = None;
    for (name, value) in headers {
        match name.as_slice() {
            b":method" => method = value,
            b":path" => path = value,
            b":authority" => authority = Some(value),
            _ => {}
        }
    }
    let path_text = std::str::from_utf8(path).map_err(|_| invalid(":path is not ASCII".into()))?;
    if !path_text.starts_with('/') {
        return Err(invalid(format!(
            ":path {path_text:?} does not start with '/'"
        )));
    }
    let uri: hyper::Uri = format!("http://{address}{path_text}")
        .parse()
        .map_err(|e| invalid(format!("uri for {address:?}: {e}")))?;
    let method = hyper::Method::from_bytes(method).map_err(|e| invalid(format!(":method: {e}")))?;
    let mut builder = hyper::Request::builder().method(method).uri(uri);
    if let Some(map) = builder.headers_mut() {
        if let Some(authority) = authority {
            let value = HeaderValue::from_bytes(authority)
                .map_err(|e| invalid(format!(":authority: {e}")))?;
            map.insert(hyper::header::HOST, value);
        }
        for (name, value) in headers {
            if name.first() == Some(&b':') || name.eq_ignore_ascii_case(b"host") {
                continue;
            }
            let header_name = HeaderName::from_bytes(name).map_err(|e| {
                invalid(format!(
                    "header name {:?}: {e}",
                    String::from_utf8_lossy(name)
                ))
            })?;
            if is_hop_by_hop(header_name.as_str()) || header_name == hyper::header::CONTENT_LENGTH {
                continue;
            }
            let header_value = HeaderValue::from_bytes(value)
                .map_err(|e| invalid(format!("value of {}: {e}", header_name.as_str())))?;
            map.append(header_name, header_value);
        }
    }
    builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A one-shot server: accepts one connection, reads the request head (and `body_len` bytes),
    /// writes `reply` raw, and returns the raw request text.
    fn one_shot(reply: &'static [u8]) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf).unwrap();
                seen.extend_from_slice(&buf[..n]);
                if n == 0 || seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            stream.write_all(reply).unwrap();
            stream.flush().unwrap();
            String::from_utf8_lossy(&seen).to_string()
        });
        (address, handle)
    }

    fn request(headers: &[(&str, &str)]) -> ClusterRequest {
        ClusterRequest {
            cluster: "c".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn sends_pseudo_headers_as_request_line_and_host_and_reads_content_length() {
        let (address, server) =
            one_shot(b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\nx-a: 1\r\n\r\nhello");
        let req = request(&[
            (":method", "GET"),
            (":path", "/keys?x=1"),
            (":authority", "idp.example"),
            ("accept", "application/json"),
        ]);
        let response = send_blocking(&address, &req, Some(Duration::from_secs(10))).unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.body, b"hello");
        assert!(response.headers.contains(&(b"x-a".to_vec(), b"1".to_vec())));
        let seen = server.join().unwrap();
        assert!(seen.starts_with("GET /keys?x=1 HTTP/1.1\r\n"), "{seen}");
        assert!(seen.contains("host: idp.example\r\n"), "{seen}");
        assert!(seen.contains("accept: application/json\r\n"), "{seen}");
    }

    #[test]
    fn reads_chunked_body_and_trailers() {
        let (address, _server) = one_shot(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nx-t: 9\r\n\r\n",
        );
        let req = request(&[(":method", "GET"), (":path", "/"), (":authority", "a")]);
        let response = send_blocking(&address, &req, Some(Duration::from_secs(10))).unwrap();
        assert_eq!(response.body, b"abcde");
        assert!(!response
            .headers
            .iter()
            .any(|(n, _)| n.as_slice() == b"transfer-encoding"));
        assert_eq!(response.trailers, vec![(b"x-t".to_vec(), b"9".to_vec())]);
    }

    #[test]
    fn refused_connection_is_connect_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        drop(listener);
        let req = request(&[(":method", "GET"), (":path", "/"), (":authority", "a")]);
        let failure = send_blocking(&address, &req, Some(Duration::from_secs(10))).unwrap_err();
        assert!(
            matches!(failure, HttpFailure::ConnectFailed(_)),
            "{failure}"
        );
    }

    #[test]
    fn server_closing_without_answer_is_reset() {
        let (address, _server) = one_shot(b"");
        let req = request(&[(":method", "GET"), (":path", "/"), (":authority", "a")]);
        let failure = send_blocking(&address, &req, Some(Duration::from_secs(10))).unwrap_err();
        assert!(matches!(failure, HttpFailure::Reset(_)), "{failure}");
    }

    #[test]
    fn silent_server_is_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let req = request(&[(":method", "GET"), (":path", "/"), (":authority", "a")]);
        let failure = send_blocking(&address, &req, Some(Duration::from_millis(50))).unwrap_err();
        assert_eq!(failure, HttpFailure::Timeout);
        drop(listener);
    }

    #[test]
    fn invalid_header_name_is_reported_not_panicking() {
        let req = request(&[(":method", "GET"), (":path", "/"), ("bad name", "v")]);
        let failure = send_blocking("127.0.0.1:1", &req, None).unwrap_err();
        assert!(failure.to_string().contains("bad name"), "{failure}");
    }
}

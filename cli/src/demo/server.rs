//! A tiny HTTP/1.1 server on hyper for the demo identity provider and app: each request is
//! answered by an async function from a [`DemoRequest`] to a [`DemoResponse`]. Request bodies
//! are read up to [`MAX_BODY_BYTES`] (413 beyond).

use crate::error::{io_reason, CliError, CliResult};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The parts of a request the demo handlers look at.
pub struct DemoRequest {
    pub method: String,
    pub path: String,
    /// Query parameters, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// Header names lower-case; values lossily decoded.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The most of a request body the demo reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

impl DemoRequest {
    /// The first query parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first header named `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response from a demo handler.
pub struct DemoResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl DemoResponse {
    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> DemoResponse {
        let body = serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
        DemoResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> DemoResponse {
        DemoResponse {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.into(),
        }
    }

    /// A response without a body (204, or 202 for an accepted SET).
    pub fn empty(status: u16) -> DemoResponse {
        DemoResponse {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// The same response with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> DemoResponse {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// An HTML response.
    pub fn html(status: u16, body: String) -> DemoResponse {
        DemoResponse {
            status,
            headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
            body,
        }
    }
}

/// What a handler returns: its answer, later.
pub type Reply = Pin<Box<dyn Future<Output = DemoResponse> + Send>>;

/// A request handler.
pub type Handler = Arc<dyn Fn(DemoRequest) -> Reply + Send + Sync>;

/// A handler from a synchronous function.
pub fn sync_handler(f: impl Fn(DemoRequest) -> DemoResponse + Send + Sync + 'static) -> Handler {
    let f = Arc::new(f);
    Arc::new(move |request| {
        let f = f.clone();
        Box::pin(async move { f(request) })
    })
}

/// Binds `127.0.0.1:port`, with a clear message when the port is taken.
pub async fn bind(port: u16, role: &str, flag: &str) -> CliResult<TcpListener> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            CliError::new(format!(
                "port {port} on 127.0.0.1 is already in use, so the demo {role} cannot start \
                 (is another demo running? choose another port with {flag})"
            ))
        } else {
            CliError::new(format!(
                "cannot listen on {addr} for the demo {role}: {}",
                io_reason(&e)
            ))
        }
    })
}

/// Serves `handler` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, handler: Handler) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(_) => continue,
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(answer(&handler, request).await) }
            });
            // A client hanging up mid-request is not the demo's problem.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    handler: &Handler,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let reply = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => {
            let demo_request = DemoRequest {
                method: parts.method.as_str().to_string(),
                path: parts.uri.path().to_string(),
                query: parts.uri.query().map(parse_query).unwrap_or_default(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
                body: collected.to_bytes().to_vec(),
            };
            handler(demo_request).await
        }
        Err(_) => DemoResponse::text(
            413,
            format!("request body over {MAX_BODY_BYTES} bytes, or cut short\n"),
        ),
    };
    let mut response = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// Splits and percent-decodes an `application/x-www-form-urlencoded` query.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Percent-encodes a query parameter value.
pub fn percent_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Escapes text for HTML.
pub fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

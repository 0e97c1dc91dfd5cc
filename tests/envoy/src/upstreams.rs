//! Upstreams a test controls: an echo server that shows exactly what reached it, and a key
//! server whose JWKS answer the test scripts (good keys, 500, garbage, slow, hang-up).

use crate::server::{Handler, Reply, Request, TestServer};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Answers 200 with JSON `{"method", "path" (the raw request target), "headers" ([name,
/// value] pairs in order, names as received), "body" (lossy UTF-8)}`.
pub struct EchoUpstream {
    server: TestServer,
    requests: Arc<AtomicUsize>,
}

impl EchoUpstream {
    /// Starts it on a free loopback port.
    pub fn start() -> EchoUpstream {
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let handler: Handler = Arc::new(move |request: &Request| {
            counter.fetch_add(1, Ordering::SeqCst);
            let headers: Vec<[&str; 2]> = request
                .headers
                .iter()
                .map(|(k, v)| [k.as_str(), v.as_str()])
                .collect();
            Reply::json(
                200,
                &json!({
                    "method": request.method,
                    "path": request.target,
                    "headers": headers,
                    "body": String::from_utf8_lossy(&request.body),
                }),
            )
        });
        EchoUpstream {
            server: TestServer::start(handler),
            requests,
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Requests it has answered.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The headers an echo answer says reached the upstream, in order.
    pub fn headers_seen(answer: &crate::Answer) -> Vec<(String, String)> {
        answer.json()["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
                (text(&h[0]), text(&h[1]))
            })
            .collect()
    }
}

/// A JWKS endpoint whose answer the test sets; counts the requests it gets.
pub struct KeyServer {
    server: TestServer,
    reply: Arc<Mutex<Reply>>,
    hits: Arc<AtomicUsize>,
}

impl KeyServer {
    /// Starts it answering `reply` to every request.
    pub fn start(reply: Reply) -> KeyServer {
        let reply = Arc::new(Mutex::new(reply));
        let hits = Arc::new(AtomicUsize::new(0));
        let (current, counter) = (reply.clone(), hits.clone());
        let handler: Handler = Arc::new(move |_request: &Request| {
            counter.fetch_add(1, Ordering::SeqCst);
            current.lock().expect("key server reply").clone()
        });
        KeyServer {
            server: TestServer::start(handler),
            reply,
            hits,
        }
    }

    /// Starts it serving this JWKS document.
    pub fn serving(jwks: &serde_json::Value) -> KeyServer {
        KeyServer::start(Reply::json(200, jwks))
    }

    /// Answers `reply` from now on.
    pub fn set(&self, reply: Reply) {
        *self.reply.lock().expect("key server reply") = reply;
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Requests it has received.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

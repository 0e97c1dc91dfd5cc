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
        KeyServer::start_on(0, reply)
    }

    /// Starts it on this loopback port (0: a free one) answering `reply`.
    pub fn start_on(port: u16, reply: Reply) -> KeyServer {
        let reply = Arc::new(Mutex::new(reply));
        let hits = Arc::new(AtomicUsize::new(0));
        let (current, counter) = (reply.clone(), hits.clone());
        let handler: Handler = Arc::new(move |_request: &Request| {
            counter.fetch_add(1, Ordering::SeqCst);
            current.lock().expect("key server reply").clone()
        });
        KeyServer {
            server: TestServer::start_on(port, handler),
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

/// An RFC 7662 introspection endpoint the test scripts: POSTs answer by the form's
/// `token` (an unknown token is `{"active":false}`), unless a fault is set (down, slow,
/// 500, garbage). Every other request (the filter's JWKS fetches on the same cluster)
/// gets an empty key set and is not counted.
pub struct IntrospectionServer {
    server: TestServer,
    state: Arc<Mutex<IntrospectionScript>>,
    calls: Arc<Mutex<Vec<Request>>>,
}

#[derive(Default)]
struct IntrospectionScript {
    answers: std::collections::HashMap<String, serde_json::Value>,
    fault: Option<Reply>,
}

impl IntrospectionServer {
    /// Starts it with no known token.
    pub fn start() -> IntrospectionServer {
        IntrospectionServer::start_on(0)
    }

    /// Starts it on this loopback port (0: a free one), e.g. coming back on its cluster's.
    pub fn start_on(port: u16) -> IntrospectionServer {
        let state = Arc::new(Mutex::new(IntrospectionScript::default()));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let (script, seen) = (state.clone(), calls.clone());
        let handler: Handler = Arc::new(move |request: &Request| {
            if request.method != "POST" {
                return Reply::json(200, &json!({"keys": []}));
            }
            seen.lock()
                .expect("introspection calls")
                .push(request.clone());
            let script = script.lock().expect("introspection script");
            if let Some(fault) = &script.fault {
                return fault.clone();
            }
            let body = String::from_utf8_lossy(&request.body).into_owned();
            let token = form_value(&body, "token").unwrap_or_default();
            let answer =
                (script.answers.get(&token).cloned()).unwrap_or_else(|| json!({"active": false}));
            Reply::json(200, &answer)
        });
        IntrospectionServer {
            server: TestServer::start_on(port, handler),
            state,
            calls,
        }
    }

    /// Answers `answer` for `token` from now on.
    pub fn answer(&self, token: &str, answer: serde_json::Value) {
        let mut script = self.state.lock().expect("introspection script");
        script.answers.insert(token.to_string(), answer);
    }

    /// Answers every introspection with `fault` (None: answer normally again).
    pub fn fault(&self, fault: Option<Reply>) {
        self.state.lock().expect("introspection script").fault = fault;
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The introspection calls received, in order.
    pub fn calls(&self) -> Vec<Request> {
        self.calls.lock().expect("introspection calls").clone()
    }

    /// How many calls asked about `token`.
    pub fn calls_for(&self, token: &str) -> usize {
        (self.calls().iter())
            .filter(|c| {
                form_value(&String::from_utf8_lossy(&c.body), "token").as_deref() == Some(token)
            })
            .count()
    }
}

/// The percent-decoded value of `name` in a form body.
fn form_value(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

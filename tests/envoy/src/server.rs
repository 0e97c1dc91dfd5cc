//! A small threaded HTTP/1.1 server on a free loopback port (keep-alive), answering each
//! request with a handler's [`Reply`]. The echo upstream and the key server are built on it.

use crate::http::{read_body, read_head};
use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target exactly as received (path and query).
    pub target: String,
    /// Every header in order, names as received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a test server answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// An HTTP answer (`content-length` is added).
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// The same answer after a delay.
    Delayed(Duration, Box<Reply>),
    /// Close the connection without answering.
    Hangup,
    /// These bytes as they are (not HTTP, e.g. garbage), then close the connection.
    Raw(Vec<u8>),
}

impl Reply {
    /// A JSON answer with this status.
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply::Http {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: value.to_string().into_bytes(),
        }
    }

    /// A plain-text answer with this status.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply::Http {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
        }
    }
}

/// The handler a server calls for each request.
pub type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// A running server; stops accepting when dropped.
pub struct TestServer {
    port: u16,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts serving `handler` on a free loopback port.
    pub fn start(handler: Handler) -> TestServer {
        TestServer::start_on(0, handler)
    }

    /// Starts serving `handler` on this loopback port (0: a free one), e.g. a peer coming
    /// back on the port its cluster names.
    pub fn start_on(port: u16, handler: Handler) -> TestServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind a test server");
        let port = listener.local_addr().expect("address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let accept_thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                let stopping = stopping.clone();
                std::thread::spawn(move || serve_connection(stream, &handler, &stopping));
            }
        });
        TestServer {
            port,
            stop,
            accept_thread: Some(accept_thread),
        }
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_connection(stream: TcpStream, handler: &Handler, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while !stop.load(Ordering::SeqCst) {
        let Ok(Some(head)) = read_head(&mut reader) else {
            return;
        };
        let Ok(body) = read_body(&mut reader, &head, false) else {
            return;
        };
        let mut parts = head.start_line.splitn(3, ' ');
        let request = Request {
            method: parts.next().unwrap_or_default().to_string(),
            target: parts.next().unwrap_or_default().to_string(),
            headers: head.headers,
            body,
        };
        let close = request
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
        if !write_reply(&mut writer, handler(&request)) || close {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
    }
}

/// Writes `reply`; false when the connection must close.
fn write_reply(writer: &mut TcpStream, reply: Reply) -> bool {
    match reply {
        Reply::Hangup => false,
        Reply::Raw(bytes) => {
            let _ = writer.write_all(&bytes);
            false
        }
        Reply::Delayed(delay, reply) => {
            std::thread::sleep(delay);
            write_reply(writer, *reply)
        }
        Reply::Http {
            status,
            headers,
            body,
        } => {
            let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
            writer.write_all(head.as_bytes()).is_ok() && writer.write_all(&body).is_ok()
        }
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

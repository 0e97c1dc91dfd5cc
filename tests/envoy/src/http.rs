//! HTTP/1.1 by hand: the client side of the tests (one request per connection) and the
//! message framing the test servers share (head, `content-length` or chunked body).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a test waits for an answer before failing.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest message head accepted.
const MAX_HEAD_BYTES: usize = 256 * 1024;

/// An HTTP answer: status (0 when the connection closed without one), headers as received
/// (in order), body (chunked encoding removed).
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        first_header(&self.headers, name)
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected a JSON body ({e}), got status {} body {:?}",
                self.status,
                self.text()
            )
        })
    }
}

/// A request head as read: start line, header lines split at the first `:`, values trimmed.
pub struct Head {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        first_header(&self.headers, name)
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    fn content_length(&self) -> Option<usize> {
        self.header("content-length")
            .and_then(|v| v.trim().parse().ok())
    }
}

/// The first of `headers` named `name` (case-insensitive).
fn first_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads a message head; `None` at a clean end of stream before any byte.
pub fn read_head(reader: &mut impl BufRead) -> std::io::Result<Option<Head>> {
    let mut raw = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            if raw.is_empty() {
                return Ok(None);
            }
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed inside a message head",
            ));
        }
        if raw.is_empty() && (line == b"\r\n" || line == b"\n") {
            continue; // tolerated empty line before a message
        }
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        raw.extend_from_slice(&line);
        if raw.len() > MAX_HEAD_BYTES {
            return Err(std::io::Error::other("message head too large"));
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let start_line = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect();
    Ok(Some(Head {
        start_line,
        headers,
    }))
}

/// Reads the body `head` announces; without a length or chunking, `to_eof` says whether
/// the body runs to the end of the stream (responses) or is empty (requests).
pub fn read_body(reader: &mut impl BufRead, head: &Head, to_eof: bool) -> std::io::Result<Vec<u8>> {
    if head.chunked() {
        return read_chunked(reader);
    }
    if let Some(length) = head.content_length() {
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    if to_eof {
        reader.read_to_end(&mut body)?;
    }
    Ok(body)
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size_text = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("bad chunk size {size_line:?}"),
            )
        })?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = String::new();
        reader.read_line(&mut crlf)?;
    }
}

/// Sends `bytes` on a new connection to `127.0.0.1:port` and reads one answer (a `100
/// Continue` is skipped). A connection closed without an answer gives status 0.
pub fn exchange(port: u16, bytes: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{port}: {e}"));
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    if let Err(e) = stream.write_all(bytes) {
        // The server may answer (400) and close before reading everything.
        if e.kind() != std::io::ErrorKind::BrokenPipe
            && e.kind() != std::io::ErrorKind::ConnectionReset
        {
            panic!("cannot send to 127.0.0.1:{port}: {e}");
        }
    }
    match read_answer(&mut BufReader::new(stream), bytes.starts_with(b"HEAD ")) {
        Ok(Some(answer)) => answer,
        Ok(None) => Answer::default(),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Answer::default(),
        Err(e) => panic!("reading the answer from 127.0.0.1:{port}: {e}"),
    }
}

/// Reads one answer from `reader` (a `100 Continue` is skipped); `None` when the stream
/// ends before any byte of it. `head_request`: the request was a HEAD (no body follows).
pub fn read_answer(
    reader: &mut impl BufRead,
    head_request: bool,
) -> std::io::Result<Option<Answer>> {
    loop {
        let Some(head) = read_head(reader)? else {
            return Ok(None);
        };
        let status: u16 = head
            .start_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("no status line: {:?}", head.start_line),
                )
            })?;
        if status == 100 {
            continue;
        }
        // An answer to HEAD has a content-length but never a body (RFC 9110 §9.3.2).
        let body = if status == 204 || status == 304 || head_request {
            Vec::new()
        } else {
            read_body(reader, &head, true)?
        };
        return Ok(Some(Answer {
            status,
            headers: head.headers,
            body,
        }));
    }
}

/// A request as bytes: `host: 127.0.0.1:port` unless `headers` has a host, `connection:
/// close`, and a `content-length` when there is a body or the method usually has one.
pub fn request_bytes(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("host: 127.0.0.1:{port}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("connection: close\r\n");
    if !body.is_empty() || !matches!(method, "GET" | "HEAD" | "OPTIONS" | "DELETE") {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A GET to a server on `127.0.0.1:port`, e.g. the demo IdP or Envoy's admin interface.
pub fn get(port: u16, path: &str) -> Answer {
    exchange(port, &request_bytes(port, "GET", path, &[], &[]))
}

/// Any request to a server on `127.0.0.1:port` (e.g. the demo IdP's session API).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    exchange(port, &request_bytes(port, method, path, headers, body))
}

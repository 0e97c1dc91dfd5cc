//! A small HTTP/1.1 client on hyper for the CLI's outbound calls: RFC 8935 push of a SET and
//! a back-channel logout POST (demo transmitter and `mfa-gate set --push`). Plain `http://`
//! only (the demo and tests run on loopback); the answer's body is capped.

use crate::error::{io_reason, CliError, CliResult};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use std::time::Duration;

/// The most of an answer's body that is read.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// An HTTP answer: status and body (lossily UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// POSTs `body` to `url` with `headers`, waiting at most `timeout` for the whole exchange.
pub async fn post(
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> CliResult<Answer> {
    tokio::time::timeout(timeout, exchange(url, headers, body))
        .await
        .map_err(|_| {
            CliError::new(format!(
                "{url}: no answer within {} s",
                timeout.as_secs_f32()
            ))
        })?
}

/// [`post`] from synchronous code (a one-off current-thread runtime).
pub fn post_blocking(
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> CliResult<Answer> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(post(url, headers, body, timeout))
}

/// Host, port and path-and-query of an `http://` URL.
fn target(url: &str) -> CliResult<(String, u16, String)> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| CliError::new(format!("\"{url}\" is not a URL")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(CliError::new(format!(
                "{url}: only http:// URLs are supported (not {other}://): this is a test tool for loopback receivers"
            )))
        }
        None => return Err(CliError::new(format!("{url}: the URL needs http://"))),
    }
    let host = uri
        .host()
        .ok_or_else(|| CliError::new(format!("{url}: the URL has no host")))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    Ok((host, uri.port_u16().unwrap_or(80), path))
}

async fn exchange(url: &str, headers: &[(&str, String)], body: Vec<u8>) -> CliResult<Answer> {
    let (host, port, path) = target(url)?;
    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| CliError::new(format!("{url}: cannot connect: {}", io_reason(&e))))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| CliError::new(format!("{url}: HTTP handshake failed: {e}")))?;
    tokio::spawn(connection);
    let authority = if port == 80 {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let mut request = hyper::Request::post(path).header(hyper::header::HOST, authority);
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| CliError::new(format!("{url}: cannot build the request: {e}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| CliError::new(format!("{url}: request failed: {e}")))?;
    let status = response.status().as_u16();
    let bytes = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| CliError::new(format!("{url}: cannot read the answer: {e}")))?
        .to_bytes();
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

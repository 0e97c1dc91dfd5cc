//! `mfa-gate-host replay`: requests as JSON lines in, one JSON line per exchange out.
//!
//! Input line (every field but `path` optional):
//! `{"method","path","authority","scheme","headers":{k: v | [v..]} | [[k,v]..],"body",
//!   "metadata":{filter_metadata},"source_address","peer":{mtls,sha256_digest,uri_san,subject},
//!   "route_name","cluster_name","advance_ms","upstream":{status,headers,body} | {"fault":..}}`.
//! A line with only `advance_ms` moves the virtual clock and prints `{"advanced_ms":N}`.
//! Output line: `{"status","headers":[[k,v]..],"body","details","reached_upstream",
//!   "upstream_headers","logs":[{level,context_id,message}],"worker"}`; a bad line prints
//! `{"error":"line N: ..."}` and replay goes on.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::envoy_yaml::EnvoyConfig;
use crate::types::{
    ClusterReply, DownstreamRequest, Exchange, HeaderList, HttpResponse, LogLine, PeerCertificate,
    Upstream, UpstreamRequest,
};

/// What replay needs from the host (the runtime core's `Host` implements it).
pub trait Runner {
    /// Runs one stream through the filter; `upstream` answers if the filter lets it through.
    fn handle(&mut self, request: DownstreamRequest, upstream: &mut dyn Upstream) -> Exchange;
    /// Moves the virtual clock (runs due ticks and timers).
    fn advance(&mut self, ms: u64);
    /// Log lines emitted outside any stream since the last call.
    fn take_logs(&mut self) -> Vec<LogLine>;
}

impl Runner for crate::Host {
    fn handle(&mut self, request: DownstreamRequest, upstream: &mut dyn Upstream) -> Exchange {
        crate::Host::handle(self, request, upstream)
    }
    fn advance(&mut self, ms: u64) {
        crate::Host::advance(self, ms);
    }
    fn take_logs(&mut self) -> Vec<LogLine> {
        crate::Host::take_logs(self)
    }
}

/// A canned response or fault, as in `--cluster NAME=file.json` and a line's `upstream`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CannedReply {
    #[serde(default = "default_status")]
    /// Response status (default 200).
    pub status: u16,
    #[serde(default)]
    /// Response headers.
    pub headers: Headers,
    #[serde(default)]
    /// Response body (UTF-8 text).
    pub body: String,
    /// `reset`, `connect_failure` or `no_answer`.
    #[serde(default)]
    pub fault: Option<String>,
    /// Answer after this many milliseconds (of the virtual clock).
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

fn default_status() -> u16 {
    200
}

/// Headers as `{name: value | [values]}` or `[[name, value], ..]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(untagged)]
pub enum Headers {
    #[default]
    None,
    Map(serde_json::Map<String, Value>),
    Pairs(Vec<(String, String)>),
}

impl Headers {
    /// Lower-cased names with raw values, in input order (a map is in name order).
    fn to_list(&self, path: &str) -> Result<HeaderList, String> {
        let mut list = HeaderList::new();
        match self {
            Headers::None => {}
            Headers::Pairs(pairs) => {
                for (name, value) in pairs {
                    list.push((
                        name.to_ascii_lowercase().into_bytes(),
                        value.clone().into_bytes(),
                    ));
                }
            }
            Headers::Map(map) => {
                for (name, value) in map {
                    let lower = name.to_ascii_lowercase().into_bytes();
                    match value {
                        Value::String(s) => list.push((lower, s.clone().into_bytes())),
                        Value::Array(values) => {
                            for v in values {
                                let s = v.as_str().ok_or_else(|| {
                                    format!("{path}.{name}: expected a string or a list of strings")
                                })?;
                                list.push((lower.clone(), s.as_bytes().to_vec()));
                            }
                        }
                        _ => {
                            return Err(format!(
                                "{path}.{name}: expected a string or a list of strings"
                            ))
                        }
                    }
                }
            }
        }
        Ok(list)
    }
}

impl CannedReply {
    fn response(&self) -> Result<HttpResponse, String> {
        Ok(HttpResponse {
            status: self.status,
            headers: self.headers.to_list("headers")?,
            body: self.body.clone().into_bytes(),
            trailers: Vec::new(),
        })
    }

    /// As a cluster's answer to `dispatch_http_call`.
    pub fn cluster_reply(&self) -> Result<ClusterReply, String> {
        match self.fault.as_deref() {
            Some("reset") => return Ok(ClusterReply::Reset),
            Some("connect_failure") => return Ok(ClusterReply::ConnectFailure),
            Some("no_answer") => return Ok(ClusterReply::NoAnswer),
            Some(other) => {
                return Err(format!(
                    "fault: unknown {other:?} (expected reset, connect_failure or no_answer)"
                ))
            }
            None => {}
        }
        let response = self.response()?;
        Ok(match self.delay_ms {
            Some(delay_ms) => ClusterReply::Delayed { delay_ms, response },
            None => ClusterReply::Response(response),
        })
    }
}

/// Reads a canned cluster file: one reply, or a list served in order (the last one repeats).
pub fn load_canned(path: &Path) -> Result<Vec<ClusterReply>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse_canned(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses the text of a canned cluster file.
pub fn parse_canned(text: &str) -> Result<Vec<ClusterReply>, String> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<CannedReply>),
        One(CannedReply),
    }
    let replies = match serde_json::from_str::<OneOrMany>(text) {
        Ok(OneOrMany::Many(list)) => list,
        Ok(OneOrMany::One(one)) => vec![one],
        Err(_) => {
            // Re-parse as a single reply for a precise error message.
            let one: CannedReply =
                serde_json::from_str(text).map_err(|e| format!("not a canned reply: {e}"))?;
            vec![one]
        }
    };
    if replies.is_empty() {
        return Err("empty list of replies".to_string());
    }
    replies.iter().map(CannedReply::cluster_reply).collect()
}

/// A cluster handler that serves `replies` in order and repeats the last one.
pub fn sequence_handler(
    replies: Vec<ClusterReply>,
) -> impl FnMut(&crate::types::ClusterRequest) -> ClusterReply + Send {
    let mut next = 0usize;
    move |_| {
        let index = next.min(replies.len().saturating_sub(1));
        next = next.saturating_add(1);
        replies
            .get(index)
            .cloned()
            .unwrap_or(ClusterReply::ConnectFailure)
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PeerInput {
    #[serde(default)]
    mtls: bool,
    sha256_digest: Option<String>,
    uri_san: Option<String>,
    subject: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LineInput {
    method: Option<String>,
    path: Option<String>,
    authority: Option<String>,
    scheme: Option<String>,
    #[serde(default)]
    headers: Headers,
    body: Option<String>,
    metadata: Option<serde_json::Map<String, Value>>,
    source_address: Option<String>,
    destination_address: Option<String>,
    peer: Option<PeerInput>,
    route_name: Option<String>,
    cluster_name: Option<String>,
    advance_ms: Option<u64>,
    upstream: Option<CannedReply>,
}

/// One parsed input line.
#[derive(Debug)]
enum Line {
    Advance(u64),
    Request {
        advance_ms: Option<u64>,
        request: Box<DownstreamRequest>,
        upstream: Option<CannedReply>,
    },
}

fn parse_line(text: &str, config: Option<&EnvoyConfig>) -> Result<Line, String> {
    let input: LineInput = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let is_request = input.method.is_some()
        || input.path.is_some()
        || input.authority.is_some()
        || !matches!(input.headers, Headers::None)
        || input.body.is_some();
    if !is_request {
        return match input.advance_ms {
            Some(ms) => Ok(Line::Advance(ms)),
            None => Err("neither a request (path) nor advance_ms".to_string()),
        };
    }
    let path = input.path.ok_or("missing \"path\"")?;
    if !path.starts_with('/') {
        return Err(format!("path {path:?} must start with '/'"));
    }
    let method = input.method.unwrap_or_else(|| "GET".to_string());
    let authority = input.authority.unwrap_or_else(|| "localhost".to_string());
    let mut headers: HeaderList = vec![
        (b":method".to_vec(), method.into_bytes()),
        (b":path".to_vec(), path.clone().into_bytes()),
        (b":authority".to_vec(), authority.clone().into_bytes()),
        (
            b":scheme".to_vec(),
            input
                .scheme
                .unwrap_or_else(|| "http".to_string())
                .into_bytes(),
        ),
    ];
    for (name, value) in input.headers.to_list("headers")? {
        if name.first() == Some(&b':') {
            return Err(format!(
                "headers: {:?}: give pseudo-headers as method/path/authority/scheme",
                String::from_utf8_lossy(&name)
            ));
        }
        headers.push((name, value));
    }
    let mut route_name = input.route_name;
    let mut cluster_name = input.cluster_name;
    if let Some(listener) = config.and_then(|c| c.listeners.first()) {
        if let Some(route) = listener.route(&authority, &path) {
            if route_name.is_none() && !route.name.is_empty() {
                route_name = Some(route.name.clone());
            }
            if cluster_name.is_none() {
                cluster_name = Some(route.cluster.clone());
            }
        }
    }
    let peer = input
        .peer
        .map(|p| PeerCertificate {
            mtls: p.mtls,
            sha256_digest: p.sha256_digest,
            uri_san: p.uri_san,
            subject: p.subject,
        })
        .unwrap_or_default();
    if let Some(upstream) = &input.upstream {
        if let Some(fault) = upstream.fault.as_deref() {
            if fault != "reset" && fault != "connect_failure" {
                return Err(format!(
                    "upstream.fault: {fault:?} (expected reset or connect_failure)"
                ));
            }
        }
        upstream.headers.to_list("upstream.headers")?;
    }
    Ok(Line::Request {
        advance_ms: input.advance_ms,
        request: Box::new(DownstreamRequest {
            headers,
            body: input.body.unwrap_or_default().into_bytes(),
            trailers: Vec::new(),
            filter_metadata: input.metadata.unwrap_or_default(),
            source_address: input.source_address,
            destination_address: input.destination_address,
            peer,
            route_name,
            cluster_name,
        }),
        upstream: input.upstream,
    })
}

/// The upstream for one line: the canned reply, or a 200 that echoes the request body.
fn line_upstream(
    canned: Option<CannedReply>,
) -> impl FnMut(&UpstreamRequest) -> Result<HttpResponse, String> {
    move |request: &UpstreamRequest| match &canned {
        Some(reply) => match reply.fault.as_deref() {
            Some("reset") => Err("upstream reset: canned fault".to_string()),
            Some(_) => Err("upstream connect failure: canned fault".to_string()),
            None => reply.response(),
        },
        None => Ok(HttpResponse {
            status: 200,
            headers: vec![(b"content-type".to_vec(), b"text/plain".to_vec())],
            body: request.body.clone(),
            trailers: Vec::new(),
        }),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn header_json(headers: &HeaderList) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|(n, v)| json!([text(n), text(v)]))
            .collect(),
    )
}

fn logs_json(logs: &[LogLine]) -> Value {
    Value::Array(
        logs.iter()
            .map(|l| {
                json!({"level": l.level, "context_id": l.context_id, "worker": l.worker,
                       "message": l.message})
            })
            .collect(),
    )
}

/// The output line for one exchange.
pub fn exchange_json(exchange: &Exchange) -> Value {
    json!({
        "status": exchange.response.status,
        "headers": header_json(&exchange.response.headers),
        "body": text(&exchange.response.body),
        "details": exchange.response_code_details,
        "reached_upstream": exchange.upstream_request.is_some(),
        "upstream_headers": exchange.upstream_request.as_ref().map(|u| header_json(&u.headers)),
        "logs": logs_json(&exchange.logs),
        "worker": exchange.worker,
    })
}

/// Replays every line of `input` through `runner`, writing one JSON line per input line.
pub fn run<R: BufRead, W: Write>(
    runner: &mut dyn Runner,
    config: Option<&EnvoyConfig>,
    input: R,
    mut output: W,
) -> std::io::Result<()> {
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let number = index + 1;
        let result = match parse_line(&line, config) {
            Err(e) => json!({"error": format!("line {number}: {e}")}),
            Ok(Line::Advance(ms)) => {
                runner.advance(ms);
                let logs = runner.take_logs();
                if logs.is_empty() {
                    json!({"advanced_ms": ms})
                } else {
                    json!({"advanced_ms": ms, "logs": logs_json(&logs)})
                }
            }
            Ok(Line::Request {
                advance_ms,
                request,
                upstream,
            }) => {
                if let Some(ms) = advance_ms {
                    runner.advance(ms);
                }
                let mut upstream = line_upstream(upstream);
                // Logs emitted between lines, then this stream's, then other workers' (the
                // shared log store also holds this stream's lines: skip those).
                let mut logs = runner.take_logs();
                let mut exchange = runner.handle(*request, &mut upstream);
                let worker = exchange.worker;
                logs.append(&mut exchange.logs);
                logs.extend(
                    runner
                        .take_logs()
                        .into_iter()
                        .filter(|l| l.worker != worker),
                );
                exchange.logs = logs;
                exchange_json(&exchange)
            }
        };
        writeln!(output, "{result}")?;
        output.flush()?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// A runner without a filter: everything reaches the upstream.
    #[derive(Default)]
    struct PassThrough {
        clock: u64,
        seen: Vec<DownstreamRequest>,
    }

    impl Runner for PassThrough {
        fn handle(&mut self, request: DownstreamRequest, upstream: &mut dyn Upstream) -> Exchange {
            self.seen.push(request.clone());
            let up = UpstreamRequest {
                headers: request.headers.clone(),
                body: request.body.clone(),
                trailers: Vec::new(),
            };
            let response = upstream.forward(&up).unwrap_or_else(|e| HttpResponse {
                status: 503,
                body: e.into_bytes(),
                ..Default::default()
            });
            Exchange {
                response,
                upstream_request: Some(up),
                ..Default::default()
            }
        }
        fn advance(&mut self, ms: u64) {
            self.clock += ms;
        }
        fn take_logs(&mut self) -> Vec<LogLine> {
            Vec::new()
        }
    }

    fn replay(input: &str) -> (PassThrough, Vec<Value>) {
        let mut runner = PassThrough::default();
        let mut out = Vec::new();
        run(&mut runner, None, input.as_bytes(), &mut out).unwrap();
        let lines = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (runner, lines)
    }

    #[test]
    fn request_line_becomes_downstream_request_and_echo_upstream() {
        let (runner, out) = replay(
            r#"{"method":"POST","path":"/a","authority":"app","headers":{"x-m":["1","2"],"Cookie":"c"},"body":"hi","source_address":"10.0.0.1:5","peer":{"mtls":true,"uri_san":"spiffe://x"},"metadata":{"envoy.filters.http.jwt_authn":{"p":{"sub":"u"}}}}"#,
        );
        assert_eq!(out[0]["status"], 200);
        assert_eq!(out[0]["body"], "hi");
        assert_eq!(out[0]["reached_upstream"], true);
        let request = &runner.seen[0];
        assert_eq!(request.headers[0], (b":method".to_vec(), b"POST".to_vec()));
        assert!(request
            .headers
            .contains(&(b"cookie".to_vec(), b"c".to_vec())));
        assert_eq!(
            request
                .headers
                .iter()
                .filter(|(n, _)| n.as_slice() == b"x-m")
                .count(),
            2
        );
        assert_eq!(request.source_address.as_deref(), Some("10.0.0.1:5"));
        assert!(request.peer.mtls);
        assert!(request
            .filter_metadata
            .contains_key("envoy.filters.http.jwt_authn"));
    }

    #[test]
    fn malformed_lines_are_reported_and_replay_goes_on() {
        let (runner, out) = replay(
            "{\"path\":\"/ok\"}\nnot json\n{\"path\":\"nope\"}\n{\"path\":\"/x\",\"bogus\":1}\n{}\n{\"advance_ms\":1500}\n{\"path\":\"/last\",\"upstream\":{\"status\":418,\"body\":\"tea\"}}\n",
        );
        assert_eq!(out[0]["status"], 200);
        assert!(out[1]["error"].as_str().unwrap().starts_with("line 2: "));
        assert!(out[2]["error"]
            .as_str()
            .unwrap()
            .contains("must start with '/'"));
        assert!(out[3]["error"].as_str().unwrap().contains("bogus"));
        assert!(out[4]["error"].as_str().unwrap().starts_with("line 5: "));
        assert_eq!(out[5], json!({"advanced_ms": 1500}));
        assert_eq!(out[6]["status"], 418);
        assert_eq!(out[6]["body"], "tea");
        assert_eq!(runner.clock, 1500);
        assert_eq!(runner.seen.len(), 2);
    }

    #[test]
    fn upstream_fault_gives_router_error() {
        let (_, out) = replay(r#"{"path":"/","upstream":{"fault":"connect_failure"}}"#);
        assert_eq!(out[0]["status"], 503);
    }

    #[test]
    fn canned_cluster_files_parse_one_or_many_and_faults() {
        let one = parse_canned(r#"{"status":200,"body":"{}"}"#).unwrap();
        assert!(matches!(&one[0], ClusterReply::Response(r) if r.status == 200));
        let many = parse_canned(
            r#"[{"fault":"reset"},{"status":500,"delay_ms":20},{"fault":"no_answer"}]"#,
        )
        .unwrap();
        assert_eq!(many[0], ClusterReply::Reset);
        assert!(
            matches!(&many[1], ClusterReply::Delayed { delay_ms: 20, response } if response.status == 500)
        );
        assert_eq!(many[2], ClusterReply::NoAnswer);
        let err = parse_canned(r#"{"fault":"meteor"}"#).unwrap_err();
        assert!(err.contains("meteor"), "{err}");
        let err = parse_canned(r#"{"stauts":200}"#).unwrap_err();
        assert!(err.contains("stauts"), "{err}");
    }

    #[test]
    fn sequence_handler_repeats_the_last_reply() {
        let mut handler = sequence_handler(vec![ClusterReply::Reset, ClusterReply::NoAnswer]);
        let request = crate::types::ClusterRequest::default();
        assert_eq!(handler(&request), ClusterReply::Reset);
        assert_eq!(handler(&request), ClusterReply::NoAnswer);
        assert_eq!(handler(&request), ClusterReply::NoAnswer);
    }
}

//! One HTTP stream through the plugin, in Envoy's order (§2 "HTTP stream", §3.1, §3.2, §3.9).

use std::time::Duration;

use super::vm::{response_header_map, Access, LocalReply, StreamState};
use super::Worker;
use crate::clusters::{text_response, with_service_time};
use crate::types::{
    DownstreamRequest, Exchange, FailurePolicy, HeaderList, HttpResponse, Upstream, UpstreamRequest,
};

/// Which direction a continue applies to.
#[derive(Clone, Copy)]
enum Direction {
    Request,
    Response,
}

/// How a filter stage ended.
enum Flow {
    Continue,
    LocalReply(LocalReply),
    Reset,
    Failed,
    Stuck,
}

/// Details Envoy uses for a trapped VM's local reply.
pub(crate) const FAIL_STREAM_DETAILS: &str = "wasm_fail_stream";
const CLOSE_STREAM_DETAILS: &str = "wasm_close_stream";
/// The host's answer for a stream left paused with nothing pending (Envoy would wait until a timeout).
pub(crate) const PAUSED_FOREVER_DETAILS: &str = "stream_paused_forever";
/// Bound on waiting steps while a stream is paused.
const MAX_WAIT_STEPS: usize = 100_000;

fn header<'a>(headers: &'a HeaderList, name: &[u8]) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(key, _)| key.as_slice() == name)
        .map(|(_, value)| value.as_slice())
}

fn is_grpc(headers: &HeaderList) -> bool {
    header(headers, b"content-type").is_some_and(|value| value.starts_with(b"application/grpc"))
}

/// Envoy's sendLocalReply headers: `:status`, the filter's headers, then content-length and
/// content-type (text/plain unless set) when there is a body (§3.2).
fn local_response(reply: &LocalReply, grpc_request: bool) -> HttpResponse {
    let mut headers = reply.headers.clone();
    if let (true, Some(code)) = (grpc_request, reply.grpc_status) {
        headers.retain(|(name, _)| name.as_slice() != b"content-type");
        headers.push((b"content-type".to_vec(), b"application/grpc".to_vec()));
        headers.push((b"grpc-status".to_vec(), code.to_string().into_bytes()));
        if !reply.body.is_empty() {
            headers.push((b"grpc-message".to_vec(), reply.body.clone()));
        }
        return HttpResponse {
            status: 200,
            headers,
            body: Vec::new(),
            trailers: Vec::new(),
        };
    }
    headers.retain(|(name, _)| name.as_slice() != b"content-length");
    if reply.body.is_empty() {
        headers.retain(|(name, _)| name.as_slice() != b"content-type");
    } else {
        headers.push((
            b"content-length".to_vec(),
            reply.body.len().to_string().into_bytes(),
        ));
        if header(&headers, b"content-type").is_none() {
            headers.push((b"content-type".to_vec(), b"text/plain".to_vec()));
        }
    }
    HttpResponse {
        status: u16::try_from(reply.status).unwrap_or(u16::MAX),
        headers,
        body: reply.body.clone(),
        trailers: Vec::new(),
    }
}

fn fail_stream_reply() -> LocalReply {
    LocalReply {
        status: 503,
        body: Vec::new(),
        headers: Vec::new(),
        grpc_status: Some(14),
        details: FAIL_STREAM_DETAILS.to_string(),
    }
}

/// A stream that ended without a response (reset, or paused forever).
fn no_response() -> HttpResponse {
    HttpResponse::default()
}

impl Worker {
    /// Runs one request through this worker's plugin, the upstream, and the response path.
    pub fn handle(&mut self, request: DownstreamRequest, upstream: &mut dyn Upstream) -> Exchange {
        self.store.data_mut().stream_logs = Some(Vec::new());
        self.pump();
        let (response, response_code_details, upstream_request) =
            self.run_stream(request, upstream);
        self.pump();
        let logs = self.store.data_mut().stream_logs.take().unwrap_or_default();
        Exchange {
            response,
            response_code_details,
            upstream_request,
            logs,
            worker: self.index,
        }
    }

    fn policy(&self) -> FailurePolicy {
        self.shared.options.failure_policy
    }

    /// HCM adds `x-forwarded-proto` and `x-request-id` before filters run (§3.1 Header ordering).
    fn add_hcm_headers(&mut self, headers: &mut HeaderList) {
        if header(headers, b"x-forwarded-proto").is_none() {
            let scheme = header(headers, b":scheme").unwrap_or(b"http").to_vec();
            headers.push((b"x-forwarded-proto".to_vec(), scheme));
        }
        if header(headers, b"x-request-id").is_none() {
            let state = self.store.data_mut();
            let (high, low) = (state.next_random(), state.next_random());
            let id = format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                high >> 32,
                (high >> 16) & 0xffff,
                high & 0x0fff,
                0x8000 | (low >> 48) & 0x3fff,
                low & 0xffff_ffff_ffff
            );
            headers.push((b"x-request-id".to_vec(), id.into_bytes()));
        }
    }

    fn stream_mut(&mut self) -> Option<&mut StreamState> {
        self.store.data_mut().stream.as_mut()
    }

    fn run_stream(
        &mut self,
        mut request: DownstreamRequest,
        upstream: &mut dyn Upstream,
    ) -> (HttpResponse, Option<String>, Option<UpstreamRequest>) {
        self.add_hcm_headers(&mut request.headers);
        if self.failed.is_some() {
            // §3.9: a failed VM answers 503 (fail closed) or is skipped (fail open).
            return match self.policy() {
                FailurePolicy::FailClosed => (
                    local_response(&fail_stream_reply(), is_grpc(&request.headers)),
                    Some(FAIL_STREAM_DETAILS.to_string()),
                    None,
                ),
                FailurePolicy::FailOpen => {
                    let forwarded = UpstreamRequest {
                        headers: request.headers,
                        body: request.body,
                        trailers: request.trailers,
                    };
                    let (response, details) = forward(upstream, &forwarded);
                    (response, details, Some(forwarded))
                }
            };
        }
        let now_ns = self.shared.clock.now_unix_ns();
        self.connections += 1;
        let connection_id = self.connections;
        let state = self.store.data_mut();
        let id = state.allocate_context_id();
        let root = state.root_context;
        let headers = std::mem::take(&mut request.headers);
        let body = std::mem::take(&mut request.body);
        let trailers = std::mem::take(&mut request.trailers);
        let mut stream = StreamState::new(id, request, connection_id, now_ns);
        stream.request_headers = headers;
        stream.request_body = body;
        stream.request_trailers = trailers;
        state.stream = Some(stream);
        self.invoke(
            "proxy_on_context_create",
            self.exports.context_create.clone(),
            id,
            (id as i32, root as i32),
        );

        let flow = self.request_path(id);
        let mut upstream_request = None;
        let (response, details) = match flow {
            Flow::Continue => {
                let forwarded = self.upstream_request();
                // Events posted meanwhile (queue notifications) run while the request is on
                // its way, before the upstream's answer comes back, as on Envoy's dispatcher.
                self.deliver_posted();
                let started = self.shared.clock.now_unix_ms();
                let (mut response, details) = forward(upstream, &forwarded);
                if details.is_none() {
                    let elapsed = self.shared.clock.now_unix_ms().saturating_sub(started);
                    response = with_service_time(response, elapsed);
                }
                upstream_request = Some(forwarded);
                self.response_path(id, response, details)
            }
            Flow::LocalReply(reply) => {
                let response = local_response(&reply, self.request_is_grpc());
                self.response_path(id, response, Some(reply.details))
            }
            other => self.end_without_filter(id, other),
        };
        self.finish_stream(id);
        (response, details, upstream_request)
    }

    fn request_is_grpc(&self) -> bool {
        self.store
            .data()
            .stream
            .as_ref()
            .is_some_and(|stream| is_grpc(&stream.request_headers))
    }

    fn upstream_request(&self) -> UpstreamRequest {
        match self.store.data().stream.as_ref() {
            Some(stream) => UpstreamRequest {
                headers: stream.request_headers.clone(),
                body: stream.request_body_sent(),
                trailers: stream.request_trailers.clone(),
            },
            None => UpstreamRequest::default(),
        }
    }

    /// A stage ended in reset, failure or a stuck pause: the response the client gets.
    fn end_without_filter(&mut self, id: u32, flow: Flow) -> (HttpResponse, Option<String>) {
        match flow {
            Flow::Reset => (no_response(), Some(CLOSE_STREAM_DETAILS.to_string())),
            Flow::Stuck => {
                let state = self.store.data_mut();
                state.effective_context = id;
                state.log(
                    "warn",
                    "host: stream paused with no pending callout, tick-free wait would never end \
                     (stream_paused_forever)"
                        .to_string(),
                );
                state.effective_context = 0;
                (no_response(), Some(PAUSED_FOREVER_DETAILS.to_string()))
            }
            Flow::LocalReply(reply) => {
                let response = local_response(&reply, self.request_is_grpc());
                (response, Some(reply.details))
            }
            Flow::Failed | Flow::Continue => (
                local_response(&fail_stream_reply(), self.request_is_grpc()),
                Some(FAIL_STREAM_DETAILS.to_string()),
            ),
        }
    }

    /// Decides how a stage ended; while paused (and `wait`), delivers async events until the
    /// stream continues, replies locally, resets, fails, or nothing more can arrive.
    fn settle(&mut self, action: Option<i32>, direction: Direction, wait: bool) -> Flow {
        let mut paused = action.is_some_and(|value| value != 0);
        for _ in 0..MAX_WAIT_STEPS {
            if self.failed.is_some() {
                return match self.policy() {
                    FailurePolicy::FailOpen => Flow::Continue,
                    FailurePolicy::FailClosed => Flow::Failed,
                };
            }
            let Some(stream) = self.stream_mut() else {
                return Flow::Failed;
            };
            if let Some(reply) = stream.local_reply.take() {
                return Flow::LocalReply(reply);
            }
            if stream.close {
                return Flow::Reset;
            }
            let continued = match direction {
                Direction::Request => std::mem::take(&mut stream.continue_request),
                Direction::Response => std::mem::take(&mut stream.continue_response),
            };
            if !paused || continued || !wait {
                return Flow::Continue;
            }
            paused = true;
            if !self.wait_step() {
                return Flow::Stuck;
            }
        }
        Flow::Stuck
    }

    /// Delivers one async event, moving the clock to the next cluster reply if needed.
    fn wait_step(&mut self) -> bool {
        if self.deliver_one_due() {
            return true;
        }
        let Some(due) = self.store.data().next_reply_due() else {
            return false;
        };
        if self.shared.clock.is_virtual() {
            self.shared.clock.advance_to_ms(due);
        } else {
            let now = self.shared.clock.now_unix_ms();
            std::thread::sleep(Duration::from_millis(due.saturating_sub(now).max(1)));
        }
        true
    }

    fn reset_continue_flags(&mut self) {
        if let Some(stream) = self.stream_mut() {
            stream.continue_request = false;
            stream.continue_response = false;
        }
    }

    /// A body's callbacks as Envoy drives them. `chunked`, a body streaming in from a codec (a
    /// downstream request, an upstream response over HTTP/1.1) while the filter is not paused:
    /// the data with end_of_stream false, then the end of the stream as an empty chunk, or the
    /// trailers. Otherwise (a local reply's body, or a body that arrived while the headers
    /// were paused): one call, with end_of_stream unless trailers follow. A chunk the plugin
    /// lets through (Continue) is passed on; one it pauses on stays buffered, and the next
    /// call sees it.
    fn body_calls(
        &mut self,
        id: u32,
        direction: Direction,
        has_trailers: bool,
        chunked: bool,
    ) -> Flow {
        let calls: &[bool] = if has_trailers {
            &[false]
        } else if chunked {
            &[false, true]
        } else {
            &[true]
        };
        for &eos in calls {
            let Some(stream) = self.stream_mut() else {
                return Flow::Failed;
            };
            let size = match direction {
                Direction::Request => {
                    stream.request_body_access = Access::ReadWrite;
                    if eos {
                        // Trailers can be added in on_*_body when end_of_stream is true.
                        stream.request_trailers_access = Access::ReadWrite;
                    }
                    stream.request_body.len()
                }
                Direction::Response => {
                    stream.response_body_access = Access::ReadWrite;
                    if eos {
                        stream.response_trailers_access = Access::ReadWrite;
                    }
                    stream.response_body.len()
                }
            };
            self.reset_continue_flags();
            let (name, export) = match direction {
                Direction::Request => ("proxy_on_request_body", self.exports.request_body.clone()),
                Direction::Response => {
                    ("proxy_on_response_body", self.exports.response_body.clone())
                }
            };
            let action = self.invoke(name, export, id, (id as i32, size as i32, i32::from(eos)));
            let paused = action.is_some_and(|value| value != 0);
            let flow = self.settle(action, direction, eos);
            let Some(stream) = self.stream_mut() else {
                return Flow::Failed;
            };
            let pass = matches!(flow, Flow::Continue) && (eos || !paused);
            match direction {
                Direction::Request => {
                    stream.request_body_access = Access::None;
                    stream.request_trailers_access = Access::None;
                    if pass {
                        let chunk = std::mem::take(&mut stream.request_body);
                        stream.request_body_passed.extend_from_slice(&chunk);
                    }
                }
                Direction::Response => {
                    stream.response_body_access = Access::None;
                    stream.response_trailers_access = Access::None;
                    if pass {
                        let chunk = std::mem::take(&mut stream.response_body);
                        stream.response_body_passed.extend_from_slice(&chunk);
                    }
                }
            }
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
        }
        Flow::Continue
    }

    fn request_path(&mut self, id: u32) -> Flow {
        let Some(stream) = self.stream_mut() else {
            return Flow::Failed;
        };
        let header_count = stream.request_headers.len() as i32;
        let has_body = !stream.request_body.is_empty();
        let has_trailers = !stream.request_trailers.is_empty();
        stream.request_headers_access = Access::ReadWrite;
        self.reset_continue_flags();
        let eos = !has_body && !has_trailers;
        let action = self.invoke(
            "proxy_on_request_headers",
            self.exports.request_headers.clone(),
            id,
            (id as i32, header_count, i32::from(eos)),
        );
        // Paused headers: the body arrives meanwhile and comes in one piece on resume.
        let headers_paused = action.is_some_and(|value| value != 0);
        // allow_on_headers_stop_iteration: paused headers do not hold the body back (Envoy
        // 1.40 runs decodeData on it); the stream goes on once a later callback continues.
        let body_goes_on = headers_paused
            && (has_body || has_trailers)
            && self.shared.options.allow_on_headers_stop_iteration;
        let flow = self.settle(action, Direction::Request, !body_goes_on);
        if let Some(stream) = self.stream_mut() {
            // Headers not yet sent on stay readable while their body is handled.
            stream.request_headers_access = if body_goes_on {
                Access::ReadWrite
            } else {
                Access::None
            };
        }
        if !matches!(flow, Flow::Continue) {
            return flow;
        }
        if has_body {
            let flow = self.body_calls(id, Direction::Request, has_trailers, !headers_paused);
            if let Some(stream) = self.stream_mut() {
                stream.request_headers_access = Access::None;
            }
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
        }
        if has_trailers {
            let Some(stream) = self.stream_mut() else {
                return Flow::Failed;
            };
            let count = stream.request_trailers.len() as i32;
            stream.request_trailers_access = Access::ReadWrite;
            self.reset_continue_flags();
            let action = self.invoke(
                "proxy_on_request_trailers",
                self.exports.request_trailers.clone(),
                id,
                (id as i32, count),
            );
            let flow = self.settle(action, Direction::Request, true);
            if let Some(stream) = self.stream_mut() {
                stream.request_trailers_access = Access::None;
            }
            return flow;
        }
        Flow::Continue
    }

    /// The encoder path: the plugin sees the response (an upstream's or a local reply) (§3.2).
    fn response_path(
        &mut self,
        id: u32,
        response: HttpResponse,
        details: Option<String>,
    ) -> (HttpResponse, Option<String>) {
        // No details: an upstream's answer, whose body comes from the codec in chunks.
        let from_codec = details.is_none();
        if self.failed.is_some() {
            return match self.policy() {
                FailurePolicy::FailOpen => (response, details),
                FailurePolicy::FailClosed => self.end_without_filter(id, Flow::Failed),
            };
        }
        let has_body = !response.body.is_empty();
        let has_trailers = !response.trailers.is_empty();
        let Some(stream) = self.stream_mut() else {
            return (response, details);
        };
        stream.response_started = true;
        stream.response_code_details = details.clone();
        stream.response_headers = response_header_map(&response);
        stream.response_body = response.body;
        stream.response_trailers = response.trailers;
        stream.response_headers_access = Access::ReadWrite;
        let header_count = stream.response_headers.len() as i32;
        self.reset_continue_flags();
        let eos = !has_body && !has_trailers;
        let action = self.invoke(
            "proxy_on_response_headers",
            self.exports.response_headers.clone(),
            id,
            (id as i32, header_count, i32::from(eos)),
        );
        let headers_paused = action.is_some_and(|value| value != 0);
        let flow = self.settle(action, Direction::Response, true);
        if let Some(stream) = self.stream_mut() {
            stream.response_headers_access = Access::None;
        }
        if !matches!(flow, Flow::Continue) {
            // Headers entered the filter chain but were not sent: the reply goes straight out.
            return self.end_without_filter(id, flow);
        }
        if has_body {
            let flow = self.body_calls(
                id,
                Direction::Response,
                has_trailers,
                from_codec && !headers_paused,
            );
            if !matches!(flow, Flow::Continue) {
                return self.after_headers_sent(id, flow);
            }
        }
        if has_trailers {
            let Some(stream) = self.stream_mut() else {
                return (no_response(), details);
            };
            let count = stream.response_trailers.len() as i32;
            stream.response_trailers_access = Access::ReadWrite;
            self.reset_continue_flags();
            let action = self.invoke(
                "proxy_on_response_trailers",
                self.exports.response_trailers.clone(),
                id,
                (id as i32, count),
            );
            let flow = self.settle(action, Direction::Response, true);
            if let Some(stream) = self.stream_mut() {
                stream.response_trailers_access = Access::None;
            }
            if !matches!(flow, Flow::Continue) {
                return self.after_headers_sent(id, flow);
            }
        }
        let Some(stream) = self.store.data().stream.as_ref() else {
            return (no_response(), details);
        };
        let status = header(&stream.response_headers, b":status")
            .and_then(|value| std::str::from_utf8(value).ok())
            .and_then(|value| value.parse::<u16>().ok())
            .unwrap_or(0);
        let response = HttpResponse {
            status,
            headers: stream
                .response_headers
                .iter()
                .filter(|(name, _)| name.first() != Some(&b':'))
                .cloned()
                .collect(),
            body: stream.response_body_sent(),
            trailers: stream.response_trailers.clone(),
        };
        (response, details)
    }

    /// A local reply or failure after the response headers went downstream resets the stream.
    fn after_headers_sent(&mut self, id: u32, flow: Flow) -> (HttpResponse, Option<String>) {
        let details = match flow {
            Flow::LocalReply(reply) => reply.details,
            Flow::Failed => FAIL_STREAM_DETAILS.to_string(),
            Flow::Stuck => return self.end_without_filter(id, Flow::Stuck),
            Flow::Reset | Flow::Continue => CLOSE_STREAM_DETAILS.to_string(),
        };
        let state = self.store.data_mut();
        state.effective_context = id;
        state.log(
            "warn",
            format!("host: response already started; stream reset ({details})"),
        );
        state.effective_context = 0;
        (no_response(), Some(details))
    }

    /// on_log → on_done → on_delete (Envoy's HTTP order, §2 step 5); skipped on a failed VM.
    fn finish_stream(&mut self, id: u32) {
        if self.failed.is_none() {
            let state = self.store.data_mut();
            state.in_log = true;
            if let Some(stream) = state.stream.as_mut() {
                stream.request_headers_access = Access::ReadOnly;
                stream.request_body_access = Access::None;
                stream.response_body_access = Access::None;
                stream.request_trailers_access = if stream.request_trailers.is_empty() {
                    Access::None
                } else {
                    Access::ReadOnly
                };
                stream.response_headers_access = if stream.response_started {
                    Access::ReadOnly
                } else {
                    Access::None
                };
                stream.response_trailers_access = if stream.response_trailers.is_empty() {
                    Access::None
                } else {
                    Access::ReadOnly
                };
            }
            self.invoke("proxy_on_log", self.exports.log.clone(), id, id as i32);
            self.store.data_mut().in_log = false;
            self.invoke("proxy_on_done", self.exports.done.clone(), id, id as i32);
            self.invoke(
                "proxy_on_delete",
                self.exports.delete.clone(),
                id,
                id as i32,
            );
        }
        let state = self.store.data_mut();
        state.in_log = false;
        state.stream = None;
    }
}

/// The router: forwards, or answers 503 as Envoy does when the upstream cannot be reached.
fn forward(
    upstream: &mut dyn Upstream,
    request: &UpstreamRequest,
) -> (HttpResponse, Option<String>) {
    match upstream.forward(request) {
        Ok(response) => (response, None),
        Err(reason) => (
            text_response(
                503,
                &format!(
                    "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: {reason}"
                ),
            ),
            Some("upstream_reset_before_response_started{connection_failure}".to_string()),
        ),
    }
}

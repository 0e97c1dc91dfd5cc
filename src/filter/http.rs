//! One HTTP stream: evaluate the request with the pure engine and carry out the outcome
//! (pass with identity headers, local reply, or pause to fulfil a need, e.g. fetch keys,
//! and evaluate again).

use super::clock;
use super::header_map;
use super::introspection::{self, HostAnswers, Trusted};
use super::keys;
use super::local_reply;
use super::log_level;
use super::prompts::{self, PushStream};
use super::revocation::{self, Endpoint, HostRevocations};
use super::sign_in::{self, Exchanging, Started};
use super::state::Shared;
use crate::engine::{self, ClaimsInput, Evaluation, KeysWanted, Need, Outcome, Request};
use crate::metrics;
use crate::push_endpoint::{Decided, Next};
use crate::request::{RequestHeaders, RequestView};
use crate::response::LocalReply;
use crate::schedule::FetchKind;
use crate::token::jwt_authn;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, LogLevel, MapType};
use std::borrow::Cow;

/// A stream of the gate.
pub struct GateHttp {
    context_id: u32,
    state: Shared,
    /// A request-triggered key fetch in flight: (call token, issuer index).
    fetching: Option<(u32, usize)>,
    /// An introspection in flight: (call token, issuer index, the token's digest).
    introspecting: Option<(u32, usize, crate::introspection::cache::TokenDigest)>,
    /// The revocation endpoint this request is for, waiting for its body.
    receiving: Option<Endpoint>,
    /// A push endpoint request: where it is (body, rate-limit service, provider's answer).
    push: Option<PushStream>,
    /// A sign-in callback waiting for the token endpoint.
    exchanging: Option<Exchanging>,
}

impl GateHttp {
    /// A new stream sharing its VM's state.
    pub fn new(context_id: u32, state: Shared) -> Self {
        GateHttp {
            context_id,
            state,
            fetching: None,
            introspecting: None,
            receiving: None,
            push: None,
            exchanging: None,
        }
    }

    /// Evaluates the request as its headers are now (read in one hostcall).
    fn evaluate(&self, may_fetch_keys: bool) -> Evaluation {
        let header_bytes = header_map::request_header_bytes();
        // A malformed map reads as empty, as Envoy's own parser treats it.
        let view = crate::pairs::parse(&header_bytes).unwrap_or_default();
        self.evaluate_view(&view, may_fetch_keys)
    }

    /// Evaluates the request whose headers `view` holds.
    fn evaluate_view(&self, view: &crate::pairs::Pairs<'_>, may_fetch_keys: bool) -> Evaluation {
        let now = clock::now_secs();
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        let metadata = match &state.config.jwt_authn {
            // Unavailable reads as "no verified payload".
            Some(_) => view
                .property(&jwt_authn::PROPERTY_PATH)
                .map(Cow::into_owned),
            None => None,
        };
        let claims = match &state.config.jwt_authn {
            Some(j) => ClaimsInput::JwtAuthnMetadata {
                metadata: metadata.as_deref(),
                payload_key: &j.payload_in_metadata,
            },
            None => ClaimsInput::Token,
        };
        let revocations: &dyn engine::RevocationLookup = match &state.revocation {
            Some(r) => &HostRevocations(&r.copy),
            None => &engine::NothingRevoked,
        };
        let request = Request {
            headers: view,
            claims,
            now_secs: now,
            may_fetch_keys,
            revocations,
            signals: &state.signals,
        };
        let trusted = Trusted {
            keys: &state.keys,
            answers: state.introspection.as_ref().map(HostAnswers::new),
            sessions: state.shared_sessions.as_ref(),
        };
        let evaluation = engine::evaluate(&state.config, &request, &trusted, &mut state.cache);
        // Counted on the first evaluation only: the one after a call reads its own answer.
        let hit = (trusted.answers.as_ref()).is_some_and(|a| a.hit.get());
        if hit && may_fetch_keys {
            state.metrics.increment_static(metrics::INTROSPECTION_HIT);
        }
        evaluation
    }

    /// Starts the work the engine needs, if the schedule admits it now. Returns whether it
    /// started (the stream then waits for it).
    fn fulfil(&mut self, need: Need) -> bool {
        match need {
            Need::Keys { issuer, why } => self.fetch_keys(issuer, why),
            Need::Introspect { issuer } => self.introspect(issuer),
        }
    }

    /// Starts introspecting the request's token at issuer `issuer`. Returns whether the
    /// call started (a failed dispatch counts as unavailable).
    fn introspect(&mut self, issuer: usize) -> bool {
        let header_bytes = header_map::request_header_bytes();
        let view = crate::pairs::parse(&header_bytes).unwrap_or_default();
        let mut state = self.state.borrow_mut();
        let config = std::rc::Rc::clone(&state.config);
        let Some(found) = crate::token::extract::locate_token(&config.token_sources, &view) else {
            return false;
        };
        state.metrics.increment_static(metrics::INTROSPECTION_MISS);
        match introspection::dispatch(&state, issuer, found.token) {
            Ok((token, digest)) => {
                self.introspecting = Some((token, issuer, digest));
                log::debug!(
                    "[ctx {}] waiting for introspection at issuer #{issuer}",
                    self.context_id
                );
                true
            }
            Err(e) => {
                log::warn!("[ctx {}] {e}", self.context_id);
                state
                    .metrics
                    .increment_static(metrics::INTROSPECTION_UNAVAILABLE);
                false
            }
        }
    }

    /// Whether the headers wait for a call (keys, introspection).
    fn waiting_for_call(&self) -> bool {
        self.fetching.is_some() || self.introspecting.is_some() || self.exchanging.is_some()
    }

    /// Starts a fetch of issuer `issuer`'s keys for this stream, if admitted.
    fn fetch_keys(&mut self, issuer: usize, why: KeysWanted) -> bool {
        let now = clock::now_secs();
        let mut state = self.state.borrow_mut();
        if !state.schedule.admits_request(issuer, why, now) {
            return false;
        }
        match keys::dispatch(&state, issuer) {
            Ok(token) => {
                state.schedule.request_started(issuer, why, now);
                if why == KeysWanted::UnknownKid {
                    state.metrics.increment(metrics::JWKS_UNKNOWN_KID_REFRESH);
                }
                self.fetching = Some((token, issuer));
                log::debug!(
                    "[ctx {}] waiting for keys of issuer #{issuer} ({why:?})",
                    self.context_id
                );
                true
            }
            Err(e) => {
                log::warn!("[ctx {}] {e}", self.context_id);
                state.metrics.increment(metrics::JWKS_FETCH_FAILURE);
                false
            }
        }
    }

    /// Carries out an evaluation. Returns the action for the current callback.
    fn apply(&mut self, evaluation: Evaluation, in_headers_callback: bool) -> Action {
        let Evaluation {
            outcome,
            record,
            counters,
            revocations,
            session,
            sighting,
            ..
        } = evaluation;
        {
            let mut state = self.state.borrow_mut();
            if let Some(sighting) = &sighting {
                let now = clock::now_secs();
                let recorded =
                    crate::observe::record_sighting(&state.config, &state.signals, sighting, now);
                if recorded.is_err() {
                    state.metrics.increment(metrics::LOCATION_STORE_ERROR);
                }
            }
            if !revocations.is_empty() {
                // Recorded before the reply: every worker refuses the session from the
                // next request on. Then the IdP is asked to end it too.
                let now = clock::now_secs();
                revocation::record(&mut state, &revocations, now);
                if let Some(session) = &session {
                    let token = self.session_token(&state);
                    revocation::queue_idp_call(&mut state, session, token.as_deref(), now);
                }
            }
            for &counter in counters.fixed() {
                state.metrics.increment_static(counter);
            }
            for counter in counters.named() {
                state.metrics.increment(counter);
            }
            // Built only when Envoy would print it (its `wasm` logger at info or finer).
            if let Some(record) = record.as_ref().filter(|_| log_level::info_enabled()) {
                // One buffer, one hostcall: the log facade would format the line a second
                // time. The buffer is the VM's, reused from request to request.
                let line = &mut state.log_line;
                line.clear();
                line.push_str("[ctx ");
                crate::json::push_u64(line, u64::from(self.context_id));
                line.push_str("] decision ");
                record.write_json(line);
                if hostcalls::log(LogLevel::Info, line).is_err() {
                    log::warn!("[ctx {}] cannot log the decision record", self.context_id);
                }
                // A record with a huge reason must not pin a large buffer.
                if line.capacity() > 8192 {
                    *line = String::with_capacity(512);
                }
            }
        }
        match outcome {
            Outcome::Continue { remove, set } => {
                for name in &remove {
                    if let Err(s) = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name) {
                        log::warn!(
                            "[ctx {}] cannot remove header {name}: {s:?}",
                            self.context_id
                        );
                    }
                }
                for (name, value) in set.iter() {
                    if let Err(s) =
                        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value))
                    {
                        log::warn!("[ctx {}] cannot set header {name}: {s:?}", self.context_id);
                    }
                }
                if in_headers_callback {
                    Action::Continue
                } else {
                    if let Err(s) = hostcalls::resume_http_request() {
                        log::warn!("[ctx {}] cannot resume: {s:?}", self.context_id);
                    }
                    Action::Pause
                }
            }
            Outcome::Reply(reply) => self.reply(&reply),
            Outcome::Need(_) => {
                // The engine only asks when allowed to; answer as if keys were unavailable.
                let e = self.evaluate(false);
                self.apply(e, in_headers_callback)
            }
        }
    }

    fn reply(&self, reply: &LocalReply) -> Action {
        if !local_reply::send(reply) {
            log::warn!(
                "[ctx {}] host refused the local reply {}",
                self.context_id,
                reply.status
            );
        }
        Action::Pause
    }
}

impl Context for GateHttp {
    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        if !matches!(&self.push, Some(PushStream::Asking { token, .. }) if *token == token_id) {
            return;
        }
        let Some(PushStream::Asking { held, .. }) = self.push.take() else {
            return;
        };
        let decided = prompts::answered(&self.state.borrow(), held, status_code, response_size);
        self.carry_out_push(decided, false);
    }

    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if self
            .exchanging
            .as_ref()
            .is_some_and(|e| e.token == token_id)
        {
            if let Some(exchanging) = self.exchanging.take() {
                let mut state = self.state.borrow_mut();
                sign_in::answered(
                    &mut state,
                    self.context_id,
                    &exchanging.pending,
                    num_headers,
                    body_size,
                );
            }
            return;
        }
        if let Some((token, issuer, digest)) = self.introspecting {
            if token == token_id {
                self.introspecting = None;
                {
                    let now = clock::now_secs();
                    let mut state = self.state.borrow_mut();
                    let sizes = (num_headers, body_size);
                    introspection::complete(
                        self.context_id,
                        &mut state,
                        issuer,
                        &digest,
                        sizes,
                        now,
                    );
                }
                let evaluation = self.evaluate(false);
                self.apply(evaluation, false);
                return;
            }
        }
        let Some((token, issuer)) = self.fetching else {
            return;
        };
        if token != token_id {
            return;
        }
        self.fetching = None;
        {
            let now = clock::now_secs();
            let mut state = self.state.borrow_mut();
            keys::complete(
                &mut state,
                issuer,
                FetchKind::Request,
                num_headers,
                body_size,
                now,
            );
        }
        let evaluation = self.evaluate(false);
        self.apply(evaluation, false);
    }
}

impl GateHttp {
    /// The request's token as the configured sources find it (for RFC 7009 revocation).
    fn session_token(&self, state: &super::state::VmState) -> Option<String> {
        let header_bytes = header_map::request_header_bytes();
        let view = crate::pairs::parse(&header_bytes).unwrap_or_default();
        let found = crate::token::extract::locate_token(&state.config.token_sources, &view)?;
        std::str::from_utf8(found.token).ok().map(str::to_string)
    }

    /// A request for one of the revocation endpoints: refused at once, answered now (no
    /// body), or left to wait for its body. `None` when the request is for another path.
    fn revocation_endpoint(
        &mut self,
        view: &crate::pairs::Pairs<'_>,
        end_of_stream: bool,
    ) -> Option<Action> {
        let endpoint = {
            let state = self.state.borrow();
            state.config.revocation.as_ref()?;
            let path = view.header(":path").unwrap_or_default();
            let endpoint = revocation::endpoint_for(&state.config, path)?;
            if let Some(refusal) = revocation::admit(&state, endpoint, view) {
                return Some(self.reply(&refusal));
            }
            endpoint
        };
        if end_of_stream {
            let reply = {
                let mut state = self.state.borrow_mut();
                revocation::receive(&mut state, endpoint, b"", clock::now_secs())
            };
            return Some(self.reply(&reply));
        }
        self.receiving = Some(endpoint);
        Some(Action::Pause)
    }
}

impl GateHttp {
    /// A request for the sign-in's callback or logout path: answered, or waiting for the
    /// code exchange. `None` for any other path.
    fn sign_in_path(&mut self, view: &crate::pairs::Pairs<'_>) -> Option<Action> {
        let started = {
            let mut state = self.state.borrow_mut();
            sign_in::start(&mut state, self.context_id, view)?
        };
        Some(match started {
            Started::Answered(action) => action,
            Started::Exchanging(exchanging) => {
                self.exchanging = Some(exchanging);
                Action::Pause
            }
        })
    }

    /// A request for a guarded push endpoint: judged now, or left to wait for its body.
    /// `None` when the request is for another path (or push prompts are not configured).
    fn push_endpoint(
        &mut self,
        view: &crate::pairs::Pairs<'_>,
        end_of_stream: bool,
    ) -> Option<Action> {
        let matched = {
            let state = self.state.borrow();
            let settings = state.config.push_prompts.as_ref()?;
            prompts::classify(settings, view)?
        };
        if matched.needs_body && !end_of_stream {
            self.push = Some(PushStream::Body { matched });
            return Some(Action::Pause);
        }
        let decided = prompts::start(&self.state.borrow(), &matched, view, b"");
        Some(self.carry_out_push(decided, true))
    }

    /// The push endpoint request's body: refused over the cap, buffered until complete,
    /// then judged.
    fn push_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let matched = match &self.push {
            Some(PushStream::Body { matched }) => *matched,
            // Waiting for the rate-limit service: the body waits with the headers.
            _ => return Action::Pause,
        };
        let cap = {
            let state = self.state.borrow();
            (state.config.push_prompts.as_ref()).map_or(0, |p| p.max_body_bytes)
        };
        if body_size > cap {
            let decided = prompts::too_large(&self.state.borrow(), &matched);
            return self.carry_out_push(decided, true);
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let header_bytes = header_map::request_header_bytes();
        let view = crate::pairs::parse(&header_bytes).unwrap_or_default();
        let decided = prompts::start(&self.state.borrow(), &matched, &view, &body);
        self.carry_out_push(decided, true)
    }

    /// Carries out a push endpoint decision. `in_request_callback`: called from a request
    /// callback (return Continue to go on) rather than from a callout's answer (resume).
    fn carry_out_push(&mut self, decided: Decided, in_request_callback: bool) -> Action {
        {
            let mut state = self.state.borrow_mut();
            prompts::account(&mut state, self.context_id, &decided);
        }
        match decided.next {
            Next::Forward(forwarded) => {
                self.push = Some(PushStream::Forwarded {
                    forwarded,
                    status: 0,
                    body: Vec::new(),
                    overflow: false,
                });
                self.go_on(in_request_callback)
            }
            Next::Pass => {
                self.push = None;
                self.go_on(in_request_callback)
            }
            Next::Reply(reply) => {
                self.push = None;
                prompts::reply(self.context_id, &reply)
            }
            Next::Ask(question) => match prompts::ask(&question) {
                Ok(token) => {
                    self.push = Some(PushStream::Asking {
                        token,
                        held: question.held,
                    });
                    Action::Pause
                }
                Err(code) => {
                    let decided = prompts::unasked(&self.state.borrow(), question.held, code);
                    self.carry_out_push(decided, in_request_callback)
                }
            },
        }
    }

    /// Lets the request go on: Continue inside a request callback, else resume it.
    fn go_on(&self, in_request_callback: bool) -> Action {
        if in_request_callback {
            return Action::Continue;
        }
        if let Err(s) = hostcalls::resume_http_request() {
            log::warn!("[ctx {}] cannot resume: {s:?}", self.context_id);
        }
        Action::Pause
    }

    /// The provider's whole answer is in: settle the prompt on it.
    fn finish_answer(&mut self) {
        if let Some(PushStream::Forwarded {
            forwarded,
            status,
            body,
            overflow,
        }) = self.push.take()
        {
            if !overflow {
                let mut state = self.state.borrow_mut();
                prompts::settle(&mut state, self.context_id, &forwarded, status, &body);
            }
        }
    }
}

impl HttpContext for GateHttp {
    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if let Some(PushStream::Forwarded { status, .. }) = &mut self.push {
            *status = prompts::response_status();
            if end_of_stream {
                self.finish_answer();
            }
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some(PushStream::Forwarded { body, overflow, .. }) = &mut self.push {
            if !*overflow && !prompts::collect_chunk(body, body_size) {
                *overflow = true;
            }
            if end_of_stream {
                self.finish_answer();
            }
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if matches!(
            self.push,
            Some(PushStream::Body { .. } | PushStream::Asking { .. })
        ) {
            return self.push_body(body_size, end_of_stream);
        }
        let Some(endpoint) = self.receiving else {
            // Still deciding (keys being fetched): the body waits with the headers. Envoy
            // hands it over while the headers are paused when the plugin is configured
            // with allow_on_headers_stop_iteration (the revocation endpoints need it);
            // Continue here would send the request on before the decision.
            return if self.waiting_for_call() {
                Action::Pause
            } else {
                Action::Continue
            };
        };
        if body_size > revocation::MAX_EVENT_BODY_BYTES {
            self.receiving = None;
            return self.reply(&crate::response::bad_request("body_too_large"));
        }
        if !end_of_stream {
            // Buffered until the whole body is in.
            return Action::Pause;
        }
        self.receiving = None;
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let reply = {
            let mut state = self.state.borrow_mut();
            revocation::receive(&mut state, endpoint, &body, clock::now_secs())
        };
        self.reply(&reply)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // Trailers while the headers wait (keys being fetched, an endpoint reading its
        // body) wait too: Continue would send the request on before the decision.
        let push_waiting = matches!(
            self.push,
            Some(PushStream::Body { .. } | PushStream::Asking { .. })
        );
        if self.waiting_for_call() || self.receiving.is_some() || push_waiting {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        // The header map is read once for the endpoint check and the evaluation.
        let header_bytes = header_map::request_header_bytes();
        let view = crate::pairs::parse(&header_bytes).unwrap_or_default();
        if let Some(action) = self.sign_in_path(&view) {
            return action;
        }
        if let Some(action) = self.revocation_endpoint(&view, end_of_stream) {
            return action;
        }
        if let Some(action) = self.push_endpoint(&view, end_of_stream) {
            return action;
        }
        let evaluation = self.evaluate_view(&view, true);
        if let Outcome::Need(need) = evaluation.outcome {
            if self.fulfil(need) {
                return Action::Pause;
            }
            let evaluation = self.evaluate(false);
            return self.apply(evaluation, true);
        }
        self.apply(evaluation, true)
    }
}

/// The stream context used if a host sends traffic to a VM whose configuration failed.
pub struct Unconfigured {
    pub context_id: u32,
}

impl Context for Unconfigured {}

impl HttpContext for Unconfigured {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        log::error!(
            "[ctx {}] request refused: mfa-gate is not configured",
            self.context_id
        );
        local_reply::send(&LocalReply {
            status: 503,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"error":"mfa_gate_not_configured"}"#.to_vec(),
            details: "mfa_gate_not_configured",
        });
        Action::Pause
    }
}

//! The identity provider's Shared Signals routes:
//!
//! | route | what |
//! | --- | --- |
//! | `GET /.well-known/ssf-configuration` | Transmitter Configuration Metadata (SSF 1.0 section 7) |
//! | `GET /ssf/jwks.json` | the SET signing key (the metadata's `jwks_uri`, SSF section 4.1.4) |
//! | `GET /ssf/stream[?stream_id=ID]` | stream configuration, read-only (SSF section 8.1.1.2), bearer |
//! | `POST /ssf/poll`, `POST /ssf/poll/<stream>` | RFC 8936 poll (`/ssf/poll` is the first stream), bearer |
//! | `POST /ssf/emit` | operator: emit one event about a demo user (demo only, like `/token`) |
//! | `DELETE /api/v1/users/<id>/sessions` | Okta-shaped: end the user's sessions, `SSWS` token |
//!
//! Ending a user's sessions sends, per session, a CAEP `session-revoked` SET whose complex
//! subject has the user (`iss_sub`) and the session (`opaque`, the token's `sid`), and a
//! logout token with `sub` and `sid`; all SETs of one call share a `txn` (SSF section 4.1.9).
//! RISC `sessions-revoked` is not used there: RISC 1.0 section 2.11 deprecates it in favour
//! of CAEP `session-revoked` (`/ssf/emit` still sends it, for receivers of older transmitters).

use super::server::{DemoRequest, DemoResponse};
use super::transmitter::authorized;
use super::users::{DemoUser, ISSUER, USERS};
use super::IdentityProvider;
use crate::error::CliResult;
use crate::keys;
use crate::security_event::{
    self, EventDetails, LogoutContent, SimpleSubject, Subject, LOGOUT_EVENT_NAME,
};
use serde_json::{json, Map, Value};

/// The realm of the bearer-protected transmitter endpoints (RFC 6750 section 3).
const REALM: &str = "mfa-gate-demo-ssf";

fn find_user(id: &str) -> Option<&'static DemoUser> {
    USERS.iter().find(|u| u.id == id || u.subject == id)
}

fn method_not_allowed(allowed: &str) -> DemoResponse {
    DemoResponse::text(405, format!("use {allowed}\n")).with_header("allow", allowed)
}

/// RFC 8935 section 2.3 / RFC 8936 section 2.5.1: `{err, description}`.
fn set_error(status: u16, err: &str, description: &str) -> DemoResponse {
    DemoResponse::json(status, &json!({"err": err, "description": description}))
}

/// 401 for a missing or wrong bearer credential (RFC 6750 section 3.1).
fn bearer_refused(request: &DemoRequest, configured: bool) -> DemoResponse {
    let challenge = if request.header("authorization").is_some() {
        format!("Bearer realm=\"{REALM}\", error=\"invalid_token\"")
    } else {
        format!("Bearer realm=\"{REALM}\"")
    };
    let description = if configured {
        "a valid bearer credential is required"
    } else {
        "the demo was started without --ssf-bearer (or MFA_GATE_SSF_BEARER): poll delivery is off"
    };
    set_error(401, "authentication_failed", description).with_header("www-authenticate", &challenge)
}

/// An Okta-style error body.
fn okta_error(status: u16, code: &str, summary: &str) -> DemoResponse {
    DemoResponse::json(
        status,
        &json!({
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": security_event::random_id(),
            "errorCauses": [],
        }),
    )
}

fn string_member(body: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("\"{name}\" must be a string")),
    }
}

impl IdentityProvider {
    /// Answers the Shared Signals routes; None for every other path.
    pub(super) async fn signals(&self, request: &DemoRequest) -> Option<DemoResponse> {
        let path = request.path.as_str();
        let method = request.method.as_str();
        let base = self.base_url();
        let transmitter = &self.transmitter;
        let response = match path {
            "/.well-known/ssf-configuration" => {
                DemoResponse::json(200, &transmitter.configuration(&base))
            }
            "/ssf/jwks.json" => DemoResponse::json(200, transmitter.jwks()),
            "/ssf/stream" => {
                if !self.poll_authorized(request) {
                    return Some(bearer_refused(
                        request,
                        transmitter.config().poll_bearer.is_some(),
                    ));
                }
                let streams = transmitter.stream_configurations(&base);
                let answer = match request.param("stream_id") {
                    None => DemoResponse::json(200, &json!(streams)),
                    Some(id) => match streams.iter().find(|s| s["stream_id"] == id) {
                        Some(stream) => DemoResponse::json(200, stream),
                        None => DemoResponse::text(404, format!("no stream \"{id}\"\n")),
                    },
                };
                answer.with_header("cache-control", "no-store")
            }
            "/ssf/emit" if method == "POST" => self.emit(request),
            "/ssf/emit" => method_not_allowed("POST"),
            _ => {
                if let Some(stream) = path
                    .strip_prefix("/ssf/poll")
                    .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                {
                    let name = match stream.strip_prefix('/') {
                        Some(name) => name.to_string(),
                        None => transmitter.config().streams.first().cloned()?,
                    };
                    return Some(self.poll(request, &name).await);
                }
                let id = path
                    .strip_prefix("/api/v1/users/")?
                    .strip_suffix("/sessions")?;
                if method != "DELETE" {
                    return Some(method_not_allowed("DELETE"));
                }
                self.end_sessions(request, id)
            }
        };
        Some(response)
    }

    fn poll_authorized(&self, request: &DemoRequest) -> bool {
        authorized(
            request.header("authorization"),
            "Bearer",
            self.transmitter.config().poll_bearer.as_deref(),
        )
    }

    /// RFC 8936 poll on stream `name`.
    async fn poll(&self, request: &DemoRequest, name: &str) -> DemoResponse {
        if request.method != "POST" {
            return method_not_allowed("POST");
        }
        if !self.poll_authorized(request) {
            return bearer_refused(request, self.transmitter.config().poll_bearer.is_some());
        }
        if !self.transmitter.has_stream(name) {
            return set_error(
                404,
                "invalid_request",
                &format!("no poll stream \"{name}\""),
            );
        }
        match super::poll::PollRequest::parse(&request.body) {
            Ok(poll) => DemoResponse::json(200, &self.transmitter.poll(name, poll).await),
            Err(description) => set_error(400, "invalid_request", &description),
        }
    }

    /// `POST /ssf/emit`: `{event, user, subject?, sid?, txn?, event_timestamp?,
    /// initiating_entity?, reason_admin?, reason_user?, members?}`.
    fn emit(&self, request: &DemoRequest) -> DemoResponse {
        match self.emit_checked(request) {
            Ok(Ok(answer)) => DemoResponse::json(200, &answer),
            Ok(Err((status, description))) => DemoResponse::json(
                status,
                &json!({"error": "invalid_request", "error_description": description}),
            ),
            Err(e) => DemoResponse::text(500, format!("cannot sign: {e}\n")),
        }
    }

    #[allow(clippy::type_complexity)]
    fn emit_checked(&self, request: &DemoRequest) -> CliResult<Result<Value, (u16, String)>> {
        let body: Map<String, Value> = match serde_json::from_slice(&request.body) {
            Ok(Value::Object(body)) => body,
            _ => {
                return Ok(Err((
                    400,
                    "the body must be a JSON object with \"event\" and \"user\"".into(),
                )))
            }
        };
        let bad = |e: String| Ok(Err((400, e)));
        let text = |name: &str| string_member(&body, name);
        let (event, user_id, subject_format, sid, txn) = match (
            text("event"),
            text("user"),
            text("subject"),
            text("sid"),
            text("txn"),
        ) {
            (Ok(Some(e)), Ok(Some(u)), Ok(f), Ok(s), Ok(t)) => (e, u, f, s, t),
            (Ok(None), ..) | (_, Ok(None), ..) => {
                return bad("\"event\" and \"user\" are required".into())
            }
            (Err(e), ..)
            | (_, Err(e), ..)
            | (_, _, Err(e), ..)
            | (_, _, _, Err(e), _)
            | (.., Err(e)) => return bad(e),
        };
        let Some(user) = find_user(&user_id) else {
            return Ok(Err((404, format!("no demo user \"{user_id}\""))));
        };
        let sid = sid.or_else(|| self.sessions.newest(user.id));
        if event == LOGOUT_EVENT_NAME {
            let session = match subject_format.as_deref() {
                Some("iss_sub") => None,
                _ => sid,
            };
            let (jti, token) = self.logout_token(user, session)?;
            let delivered = self
                .transmitter
                .send_logout(format!("{} (operator)", user.subject), token.clone());
            return Ok(Ok(
                json!({"event": LOGOUT_EVENT_NAME, "jti": jti, "logout_token": token, "delivered": delivered}),
            ));
        }
        let event = match security_event::event_type(&event) {
            Ok(event) => event,
            Err(e) => return bad(e.to_string()),
        };
        let user_subject = SimpleSubject::IssSub {
            iss: ISSUER.into(),
            sub: user.subject.into(),
        };
        let default_format = if event.name == "session-revoked" {
            "complex"
        } else {
            "iss_sub"
        };
        let subject = match subject_format.as_deref().unwrap_or(default_format) {
            "iss_sub" => Subject::Simple(user_subject),
            "email" => Subject::Simple(SimpleSubject::Email(user.subject.into())),
            // The demo's opaque user identifier is its `sub` (a receiver matches it through
            // a configured claim).
            "opaque" => Subject::Simple(SimpleSubject::Opaque(user.subject.into())),
            "complex" => match sid {
                Some(sid) => Subject::user_session(user_subject, &sid),
                None => {
                    return Ok(Err((
                        409,
                        format!(
                            "{} has no session: sign in first (GET /token/{})",
                            user.subject, user.id
                        ),
                    )))
                }
            },
            other => {
                return bad(format!(
                    "unknown subject \"{other}\" (expected iss_sub, email, opaque or complex)"
                ))
            }
        };
        let mut details = EventDetails::default();
        match body.get("event_timestamp") {
            None | Some(Value::Null) => {}
            Some(value) => match value.as_u64() {
                Some(t) => details.event_timestamp = Some(t),
                None => return bad("\"event_timestamp\" must be a number of seconds".into()),
            },
        }
        match (
            text("initiating_entity"),
            text("reason_admin"),
            text("reason_user"),
        ) {
            (Ok(entity), Ok(admin), Ok(user_reason)) => {
                details.initiating_entity = entity;
                details.reason_admin = admin;
                details.reason_user = user_reason;
            }
            (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => return bad(e),
        }
        match body.get("members") {
            None | Some(Value::Null) => {}
            Some(Value::Object(members)) => details.members = members.clone(),
            Some(_) => return bad("\"members\" must be a JSON object".into()),
        }
        // A bad member is the caller's error (400); signing failures are ours (500).
        if let Err(e) = security_event::event_object(event, &details, 0) {
            return bad(e.to_string());
        }
        let (jti, set) = self.transmitter.emit(event, subject, details, txn)?;
        Ok(Ok(json!({"event": event.uri, "jti": jti, "set": set})))
    }

    /// A logout token (`jti`, token) for `user` (`sub`) and `session` (`sid`), signed with
    /// the ID-token key (Back-Channel Logout 1.0 section 2.4).
    fn logout_token(
        &self,
        user: &DemoUser,
        session: Option<String>,
    ) -> CliResult<(String, String)> {
        let content = LogoutContent {
            issuer: ISSUER.into(),
            audience: vec![self.transmitter.config().audience.clone()],
            issued_at: keys::now_secs(),
            jti: security_event::random_id(),
            subject: Some(user.subject.into()),
            session,
        };
        let token = security_event::sign_logout(&self.key, &content)?;
        Ok((content.jti, token))
    }

    /// `DELETE /api/v1/users/<id>/sessions` (Okta's "Revoke all User sessions").
    fn end_sessions(&self, request: &DemoRequest, id: &str) -> DemoResponse {
        let token = self.transmitter.config().okta_api_token.as_deref();
        if !authorized(request.header("authorization"), "SSWS", token) {
            return okta_error(401, "E0000011", "Invalid token provided");
        }
        // The id is a path segment: percent-decoded, as any server routes it
        // (`pat%40example.com` is the user `pat@example.com`).
        let decoded = mfa_gate::request::percent_decode(id.as_bytes());
        let id = String::from_utf8_lossy(&decoded);
        let id = id.as_ref();
        let Some(user) = find_user(id) else {
            return okta_error(
                404,
                "E0000007",
                &format!("Not found: Resource not found: {id} (User)"),
            );
        };
        let ended = self.sessions.end_all(user.id);
        let txn = security_event::random_id();
        let user_subject = SimpleSubject::IssSub {
            iss: ISSUER.into(),
            sub: user.subject.into(),
        };
        let details = EventDetails {
            initiating_entity: Some("admin".into()),
            reason_admin: Some("Sessions ended through the session API".into()),
            ..EventDetails::default()
        };
        let mut subjects: Vec<(Subject, Option<String>)> = ended
            .sids
            .iter()
            .map(|sid| {
                (
                    Subject::user_session(user_subject.clone(), sid),
                    Some(sid.clone()),
                )
            })
            .collect();
        if ended.forgot_live_session {
            // Sessions past the bound were forgotten: revoke every session of the user.
            subjects.push((Subject::Simple(user_subject.clone()), None));
        }
        let session_revoked = EVENT_SESSION_REVOKED;
        for (subject, sid) in subjects {
            let outcome = security_event::event_type(session_revoked).and_then(|event| {
                self.transmitter
                    .emit(event, subject, details.clone(), Some(txn.clone()))
            });
            if let Err(e) = outcome {
                return DemoResponse::text(500, format!("cannot sign: {e}\n"));
            }
            match self.logout_token(user, sid.clone()) {
                Ok((_, token)) => {
                    let label = match &sid {
                        Some(sid) => format!("{} session {sid}", user.subject),
                        None => format!("{} (every session)", user.subject),
                    };
                    self.transmitter.send_logout(label, token);
                }
                Err(e) => return DemoResponse::text(500, format!("cannot sign: {e}\n")),
            }
        }
        eprintln!(
            "mfa-gate demo: session API ended {} session(s) of {}",
            ended.sids.len(),
            user.subject
        );
        DemoResponse::empty(204)
    }
}

/// The CAEP event the session API sends.
const EVENT_SESSION_REVOKED: &str = "session-revoked";

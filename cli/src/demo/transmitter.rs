//! The demo identity provider as a Shared Signals transmitter (OpenID SSF 1.0): its own SET
//! signing key and JWKS, the discovery document (SSF section 7), the read-only stream
//! configuration (SSF section 8.1.1.2), RFC 8936 poll streams, RFC 8935 push to one
//! receiver, and the POSTs of OpenID Connect Back-Channel Logout 1.0 logout tokens.
//!
//! Every SET emitted goes into every poll stream's queue (each receiver, e.g. each Envoy of
//! a fleet, polls its own stream and acknowledges for itself) and, when a push URL is
//! configured, to the push receiver. Outbound POSTs (push, logout) go through one task in
//! emission order, with up to [`DELIVERY_ATTEMPTS`] attempts when the receiver cannot be
//! reached or answers 5xx; a 4xx answer is final and logged. Credentials are never logged.

use super::poll::{self, PollQueue, PollRequest};
use crate::error::{CliError, CliResult};
use crate::http_client;
use crate::keys::SigningKey;
use crate::security_event::{self, EventDetails, EventType, SetContent, Subject, EVENT_TYPES};
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// RFC 8935 section 2: the media type of a pushed SET.
pub const SET_MEDIA_TYPE: &str = "application/secevent+jwt";
/// The delivery method URIs (SSF sections 6.1.1 and 6.1.2).
pub const PUSH_METHOD: &str = "urn:ietf:rfc:8935";
/// RFC 8936 poll delivery.
pub const POLL_METHOD: &str = "urn:ietf:rfc:8936";
/// Attempts per outbound POST.
pub const DELIVERY_ATTEMPTS: u32 = 3;
/// How long one outbound POST may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Outbound POSTs waiting for the delivery task, at most.
const OUTBOUND_QUEUE: usize = 1024;

/// The transmitter's settings (`mfa-gate demo` options).
#[derive(Debug, Clone)]
pub struct SignalsConfig {
    /// `aud` of the SETs (the receiver) and of the logout tokens (the RP's client_id).
    pub audience: String,
    /// The bearer credential poll requests and the stream configuration need.
    pub poll_bearer: Option<String>,
    /// The poll streams (`POST /ssf/poll/<name>`; `/ssf/poll` is the first).
    pub streams: Vec<String>,
    /// Unacknowledged SETs kept per stream.
    pub queue_max: usize,
    /// How long a long poll (`returnImmediately` false) waits for a SET.
    pub long_poll: Duration,
    /// RFC 8935 push receiver.
    pub push_url: Option<String>,
    /// The push receiver's bearer credential (SSF section 6.1.1 `authorization_header`).
    pub push_bearer: Option<String>,
    /// The RP's back-channel logout URL.
    pub logout_url: Option<String>,
    /// The Okta-style API token (`Authorization: SSWS <token>`) of the session API.
    pub okta_api_token: Option<String>,
}

impl Default for SignalsConfig {
    fn default() -> SignalsConfig {
        SignalsConfig {
            audience: super::users::AUDIENCE.to_string(),
            poll_bearer: None,
            streams: vec!["default".to_string()],
            queue_max: 1000,
            long_poll: Duration::from_secs(10),
            push_url: None,
            push_bearer: None,
            logout_url: None,
            okta_api_token: None,
        }
    }
}

/// An outbound POST for the delivery task.
#[derive(Debug)]
pub enum Outbound {
    /// A SET for the push receiver.
    Push {
        jti: String,
        event: &'static str,
        set: String,
    },
    /// A logout token for the back-channel logout URL.
    Logout { label: String, token: String },
}

/// The transmitter.
pub struct Transmitter {
    issuer: String,
    key: SigningKey,
    jwks: Value,
    config: SignalsConfig,
    streams: Mutex<Vec<(String, PollQueue)>>,
    arrived: Notify,
    outbound: mpsc::Sender<Outbound>,
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, byte) in a.iter().enumerate() {
        diff |= usize::from(byte ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

/// Whether `authorization` is `<scheme> <expected>` (scheme case-insensitive, RFC 9110
/// section 11.1). `expected` None: nothing is accepted.
pub fn authorized(authorization: Option<&str>, scheme: &str, expected: Option<&str>) -> bool {
    let (Some(header), Some(expected)) = (authorization, expected) else {
        return false;
    };
    match header.split_once(' ') {
        Some((given_scheme, credential)) if given_scheme.eq_ignore_ascii_case(scheme) => {
            same_secret(credential.trim(), expected)
        }
        _ => false,
    }
}

impl Transmitter {
    /// A transmitter for `issuer` with a fresh ES256 key `kid`; the receiver end of the
    /// outbound queue goes to [`deliver`].
    pub fn new(
        issuer: &str,
        kid: &str,
        mut config: SignalsConfig,
    ) -> CliResult<(Transmitter, mpsc::Receiver<Outbound>)> {
        let key = SigningKey::generate("ES256", kid)?;
        let jwks = crate::keys::jwks(&[&key])?;
        if config.streams.is_empty() {
            config.streams.push("default".into());
        }
        let streams = config
            .streams
            .iter()
            .map(|name| (name.clone(), PollQueue::new(config.queue_max)))
            .collect();
        let (outbound, receiver) = mpsc::channel(OUTBOUND_QUEUE);
        Ok((
            Transmitter {
                issuer: issuer.to_string(),
                key,
                jwks,
                config,
                streams: Mutex::new(streams),
                arrived: Notify::new(),
                outbound,
            },
            receiver,
        ))
    }

    /// The settings.
    pub fn config(&self) -> &SignalsConfig {
        &self.config
    }

    /// The JWKS with the SET signing key (served at the discovery's `jwks_uri`).
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// The Transmitter Configuration Metadata (SSF section 7.1) for a transmitter served at
    /// `base` (its endpoints; `issuer` is the fixed issuer).
    pub fn configuration(&self, base: &str) -> Value {
        json!({
            "spec_version": "1_0",
            "issuer": self.issuer,
            "jwks_uri": format!("{base}/ssf/jwks.json"),
            "delivery_methods_supported": [PUSH_METHOD, POLL_METHOD],
            "configuration_endpoint": format!("{base}/ssf/stream"),
            // SSF section 7.1.1: the scheme protecting the stream configuration and the
            // poll endpoints; RFC 6750 bearer credentials.
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}],
            "default_subjects": "ALL",
        })
    }

    /// The stream configurations (SSF section 8.1.1): one per poll stream, and the push
    /// stream when configured (its credential is not shown).
    pub fn stream_configurations(&self, base: &str) -> Vec<Value> {
        let events: Vec<&str> = EVENT_TYPES.iter().map(|t| t.uri).collect();
        let stream = |id: &str, delivery: Value| {
            json!({
                "stream_id": id,
                "iss": self.issuer,
                "aud": self.config.audience,
                "delivery": delivery,
                "events_supported": events,
                "events_delivered": events,
            })
        };
        let mut out: Vec<Value> = self
            .config
            .streams
            .iter()
            .map(|name| {
                stream(
                    name,
                    json!({"method": POLL_METHOD, "endpoint_url": format!("{base}/ssf/poll/{name}")}),
                )
            })
            .collect();
        if let Some(url) = &self.config.push_url {
            out.push(stream(
                "push",
                json!({"method": PUSH_METHOD, "endpoint_url": url}),
            ));
        }
        out
    }

    /// Signs a SET for `event` about `subject` and sends it: into every poll stream, and to
    /// the push receiver. Returns the `jti` and the SET.
    pub fn emit(
        &self,
        event: &'static EventType,
        subject: Subject,
        details: EventDetails,
        txn: Option<String>,
    ) -> CliResult<(String, String)> {
        let content = SetContent {
            issuer: self.issuer.clone(),
            audience: vec![self.config.audience.clone()],
            issued_at: crate::keys::now_secs(),
            jti: security_event::random_id(),
            txn,
            subject,
            event,
            details,
        };
        let set = security_event::sign_set(&self.key, &content)?;
        let jti = content.jti;
        {
            let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            for (name, queue) in streams.iter_mut() {
                if let Some(dropped) = queue.push(&jti, &set) {
                    eprintln!(
                        "mfa-gate demo: poll stream \"{name}\" is full ({} SETs): dropped the oldest, {dropped}",
                        self.config.queue_max
                    );
                }
            }
        }
        self.arrived.notify_waiters();
        eprintln!("mfa-gate demo: emitted {} (jti {jti})", event.name);
        if self.config.push_url.is_some() {
            self.send(Outbound::Push {
                jti: jti.clone(),
                event: event.name,
                set: set.clone(),
            });
        }
        Ok((jti, set))
    }

    /// Sends a logout token to the back-channel logout URL; false when none is configured.
    pub fn send_logout(&self, label: String, token: String) -> bool {
        if self.config.logout_url.is_none() {
            return false;
        }
        self.send(Outbound::Logout { label, token });
        true
    }

    fn send(&self, outbound: Outbound) {
        if self.outbound.try_send(outbound).is_err() {
            eprintln!("mfa-gate demo: {OUTBOUND_QUEUE} deliveries already wait: one was dropped");
        }
    }

    /// Whether a stream named `name` exists.
    pub fn has_stream(&self, name: &str) -> bool {
        self.config.streams.iter().any(|s| s == name)
    }

    /// Answers an RFC 8936 poll on stream `name` (which must exist).
    pub async fn poll(&self, name: &str, request: PollRequest) -> Value {
        {
            let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, queue)) = streams.iter_mut().find(|(n, _)| n == name) {
                for jti in &request.ack {
                    queue.remove(jti);
                }
                for error in &request.set_errs {
                    queue.remove(&error.jti);
                    eprintln!(
                        "mfa-gate demo: poll stream \"{name}\": the receiver refused SET {}: {} {}",
                        error.jti, error.err, error.description
                    );
                }
            }
        }
        let deadline = tokio::time::Instant::now() + self.config.long_poll;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let (sets, more) = {
                let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
                match streams.iter().find(|(n, _)| n == name) {
                    Some((_, queue)) => queue.oldest(request.max_events),
                    None => (Vec::new(), false),
                }
            };
            let waited_enough = request.return_immediately
                || request.max_events == Some(0)
                || tokio::time::Instant::now() >= deadline;
            if !sets.is_empty() || waited_enough {
                return poll::response(&sets, more);
            }
            let _ = tokio::time::timeout_at(deadline, arrived).await;
        }
    }
}

/// Delivers the outbound POSTs in order until the transmitter is dropped.
pub async fn deliver(
    mut receiver: mpsc::Receiver<Outbound>,
    config: SignalsConfig,
) -> CliResult<()> {
    while let Some(outbound) = receiver.recv().await {
        match outbound {
            Outbound::Push { jti, event, set } => {
                let Some(url) = config.push_url.as_deref() else {
                    continue;
                };
                let mut headers = vec![
                    ("content-type", SET_MEDIA_TYPE.to_string()),
                    ("accept", "application/json".to_string()),
                ];
                if let Some(bearer) = &config.push_bearer {
                    headers.push(("authorization", format!("Bearer {bearer}")));
                }
                let outcome = post_with_retries(url, &headers, set.into_bytes()).await;
                eprintln!(
                    "mfa-gate demo: push of {event} (jti {jti}) to {url}: {}",
                    describe_push_answer(&outcome)
                );
            }
            Outbound::Logout { label, token } => {
                let Some(url) = config.logout_url.as_deref() else {
                    continue;
                };
                let body = format!("logout_token={}", super::server::percent_encode(&token));
                let headers = [(
                    "content-type",
                    "application/x-www-form-urlencoded".to_string(),
                )];
                let outcome = post_with_retries(url, &headers, body.into_bytes()).await;
                eprintln!(
                    "mfa-gate demo: back-channel logout of {label} to {url}: {}",
                    describe_logout_answer(&outcome)
                );
            }
        }
    }
    Ok(())
}

async fn post_with_retries(
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> CliResult<http_client::Answer> {
    let mut last = Err(CliError::new("not sent"));
    for attempt in 0..DELIVERY_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
        }
        last = http_client::post(url, headers, body.clone(), DELIVERY_TIMEOUT).await;
        match &last {
            Ok(answer) if answer.status < 500 => return last,
            _ => {}
        }
    }
    last
}

/// The receiver's answer to a push, in words: RFC 8935 section 2.2 (202 Accepted) or
/// section 2.3 (400 with `err` and `description`).
pub fn describe_push_answer(outcome: &CliResult<http_client::Answer>) -> String {
    match outcome {
        Ok(answer) if answer.status == 202 => "202 accepted".to_string(),
        Ok(answer) => format!("{} {}", answer.status, error_body(&answer.body)),
        Err(e) => format!("not delivered: {e}"),
    }
}

/// The RP's answer to a logout token: Back-Channel Logout 1.0 section 2.8 (200, or 204).
pub fn describe_logout_answer(outcome: &CliResult<http_client::Answer>) -> String {
    match outcome {
        Ok(answer) if answer.status == 200 || answer.status == 204 => {
            format!("{} logged out", answer.status)
        }
        Ok(answer) => format!("{} {}", answer.status, error_body(&answer.body)),
        Err(e) => format!("not delivered: {e}"),
    }
}

/// `err`/`description` (RFC 8935) or `error`/`error_description` (OAuth style) of an error
/// body, else the start of the body.
fn error_body(body: &str) -> String {
    if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(body) {
        let text = |name: &str| object.get(name).and_then(Value::as_str).unwrap_or("");
        let (err, description) = if object.contains_key("err") {
            (text("err"), text("description"))
        } else {
            (text("error"), text("error_description"))
        };
        if !err.is_empty() {
            return format!("{err}: {description}");
        }
    }
    let start: String = body.trim().chars().take(200).collect();
    if start.is_empty() {
        "(no body)".to_string()
    } else {
        start
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn credentials_must_match_exactly_with_the_scheme() {
        assert!(authorized(Some("Bearer s3cret"), "Bearer", Some("s3cret")));
        assert!(authorized(Some("bearer s3cret"), "Bearer", Some("s3cret")));
        assert!(!authorized(Some("Bearer s3cre"), "Bearer", Some("s3cret")));
        assert!(!authorized(
            Some("Bearer s3cret2"),
            "Bearer",
            Some("s3cret")
        ));
        assert!(!authorized(Some("SSWS s3cret"), "Bearer", Some("s3cret")));
        assert!(!authorized(None, "Bearer", Some("s3cret")));
        assert!(!authorized(Some("Bearer x"), "Bearer", None));
    }

    #[test]
    fn error_bodies_are_summarised() {
        assert_eq!(
            error_body(r#"{"err":"invalid_audience","description":"wrong aud"}"#),
            "invalid_audience: wrong aud"
        );
        assert_eq!(error_body(""), "(no body)");
    }
}

//! The push-endpoint rule kind: a request for a provider's push prompt (or its result
//! poll) is identified ([`crate::prompts`]), counted, and then let through or refused; the
//! provider's answer is read for the prompt's outcome (the fatigue signature). Pure, like
//! the engine: the glue reads the request and its body, carries out a [`Next`] (forward,
//! reply, or ask the rate-limit service and come back with [`after_service`]), and hands
//! the provider's answer to [`settle_answer`].
//!
//! Never logs a user, a body or a secret: records carry the user's key prefix only.

use crate::metrics;
use crate::prompts::history::{self, PromptEvent, PromptOutcome};
use crate::prompts::outcome::{read_outcome, read_transaction};
use crate::prompts::record::PromptRecord;
use crate::prompts::window::{count_local, Counted, Scope};
use crate::prompts::{
    identify, resolve, Counting, Identified, IdentifyError, Matched, OnUnavailable, PromptSettings,
    Step, UserKey,
};
use crate::request::RequestView;
use crate::response::{self, LocalReply};
use crate::store::Store;
use crate::wire::rls::{self, RlsAnswer};
use std::rc::Rc;

/// What the stream keeps while the provider answers a forwarded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The endpoint's index in the settings.
    pub endpoint: usize,
    /// Prompt or poll.
    pub step: Step,
    /// Whose prompt it is (`None`: a poll the gate cannot attribute; its answer is ignored).
    pub user: Option<UserKey>,
    /// The provider's transaction, when the request named one.
    pub transaction: Option<[u8; 16]>,
}

/// A prompt waiting for the rate-limit service's count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The identified prompt.
    pub forwarded: Forwarded,
    /// The client's address, when known.
    pub client: Option<Vec<u8>>,
}

/// A question for the rate-limit service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The HTTP/2 cluster serving `ShouldRateLimit`.
    pub cluster: String,
    /// The encoded `RateLimitRequest`.
    pub message: Vec<u8>,
    /// How long to wait, milliseconds.
    pub timeout_ms: u64,
    /// The prompt it is for.
    pub held: Held,
}

/// What the glue does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Let the request go on; read its answer with [`settle_answer`].
    Forward(Forwarded),
    /// Answer it locally: the provider never sees it.
    Reply(LocalReply),
    /// Ask the rate-limit service, then call [`after_service`].
    Ask(Question),
    /// Not a prompt (another factor, an unattributable request): pass it on untouched.
    Pass,
}

/// The next step, the record to log and the counters to bump.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// What to do.
    pub next: Next,
    /// The push decision record, when the request was a prompt (or refused as one).
    pub record: Option<PromptRecord>,
    /// Counters to increment by one.
    pub counters: Vec<&'static str>,
}

impl Decided {
    fn new(next: Next) -> Self {
        Decided {
            next,
            record: None,
            counters: Vec::new(),
        }
    }
}

/// Judges a push endpoint request whose body (when `matched.needs_body`) is complete.
/// `client` is the client's address (`source.address` without port), when known.
pub fn start<S: Store + ?Sized>(
    settings: &PromptSettings,
    matched: &Matched,
    headers: &dyn RequestView,
    body: &[u8],
    client: Option<&[u8]>,
    now_secs: u64,
    store: &mut S,
) -> Decided {
    let identified = match identify(settings, matched, headers, body) {
        Ok(identified) => resolve(settings, identified, &*store, now_secs),
        Err(error) => return refused(settings, matched.endpoint, error),
    };
    if !identified.is_prompt && identified.step == Step::Initiate {
        return Decided::new(Next::Pass);
    }
    let Identified {
        endpoint,
        step,
        user,
        transaction,
        ..
    } = identified;
    if step == Step::Poll {
        // A poll is never a prompt: it is attributed (by its own user source, else by its
        // transaction) only so its answer can settle the prompt.
        let user = user
            .or_else(|| transaction.and_then(|t| history::transaction_user(&*store, &t, now_secs)));
        return Decided::new(Next::Forward(Forwarded {
            endpoint,
            step,
            user,
            transaction,
        }));
    }
    let Some(user) = user else {
        return refused(settings, endpoint, IdentifyError::UserMissing);
    };
    let forwarded = Forwarded {
        endpoint,
        step,
        user: Some(user),
        transaction,
    };
    let client = client.map(<[u8]>::to_vec);
    match &settings.counting {
        Counting::Local => counted_locally(settings, forwarded, client, now_secs, store, "local"),
        Counting::Service(service) => {
            let endpoint_name = endpoint_name(settings, endpoint);
            let user_hex = user.hex();
            let client_text = client.as_deref().map(String::from_utf8_lossy);
            let mut entries: Vec<(&str, &str)> =
                vec![("mfa_gate_push", &endpoint_name), ("user", &user_hex)];
            if let Some(client) = client_text.as_deref() {
                entries.push(("client", client));
            }
            let message = rls::encode_request(&service.domain, &entries);
            Decided::new(Next::Ask(Question {
                cluster: service.cluster.clone(),
                message,
                timeout_ms: service.timeout_ms,
                held: Held { forwarded, client },
            }))
        }
    }
}

/// Decides a held prompt on the rate-limit service's answer (`Err`: its reason code, the
/// service down, slow or answering garbage: the configured failure mode applies).
pub fn after_service<S: Store + ?Sized>(
    settings: &PromptSettings,
    held: Held,
    answer: Result<RlsAnswer, &'static str>,
    now_secs: u64,
    store: &mut S,
) -> Decided {
    let Held { forwarded, client } = held;
    let on_unavailable = match &settings.counting {
        Counting::Service(service) => service.on_unavailable,
        Counting::Local => OnUnavailable::Local,
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(code) => {
            log::warn!("push prompt: the rate-limit service could not count it ({code})");
            let mut decided = match on_unavailable {
                OnUnavailable::Local => {
                    let mut d = counted_locally(
                        settings,
                        forwarded,
                        client,
                        now_secs,
                        store,
                        "local_fallback",
                    );
                    d.counters.push(metrics::PUSH_SERVICE_FALLBACK);
                    d
                }
                OnUnavailable::Allow => {
                    admitted(settings, forwarded, None, now_secs, store, "none")
                }
                OnUnavailable::Deny => {
                    let mut record = base_record(settings, &forwarded, "service_unavailable");
                    record.decision = "deny";
                    record.status = Some(503);
                    record.reason = Some("push_limit_unavailable");
                    Decided {
                        next: Next::Reply(response::push_limit_unavailable()),
                        record: Some(record),
                        counters: Vec::new(),
                    }
                }
            };
            decided.counters.push(metrics::PUSH_SERVICE_UNAVAILABLE);
            return decided;
        }
    };
    let mut decided = if answer.over_limit {
        let retry_after = answer.reset_secs.unwrap_or(60).max(1);
        limited(
            settings,
            &forwarded,
            Scope::User,
            None,
            retry_after,
            "service",
        )
    } else {
        admitted(
            settings,
            forwarded,
            answer.remaining,
            now_secs,
            store,
            "service",
        )
    };
    if let Some(record) = decided.record.as_mut() {
        record.remaining = answer.remaining;
    }
    decided.counters.push(metrics::PUSH_SERVICE_ANSWERED);
    decided
}

/// Reads the provider's answer to a forwarded request (status and, within the cap, its
/// body): records a prompt's transaction, and settles the prompt once the answer says how
/// it ended. `None` when there is nothing to record (still pending, unattributed, garbage).
pub fn settle_answer<S: Store + ?Sized>(
    settings: &PromptSettings,
    forwarded: &Forwarded,
    status: u16,
    body: &[u8],
    now_secs: u64,
    store: &mut S,
) -> Option<(PromptRecord, Vec<&'static str>)> {
    let endpoint = settings.endpoints.get(forwarded.endpoint)?;
    let user = forwarded.user?;
    let answered_transaction = if forwarded.step == Step::Initiate && (200..300).contains(&status) {
        read_transaction(endpoint, body)
    } else {
        None
    };
    let transaction = forwarded.transaction.or(answered_transaction);
    let mut counters = Vec::new();
    if let (Some(transaction), None) = (answered_transaction, forwarded.transaction) {
        // An asynchronous prompt (Duo's `async=1`): its polls name this transaction.
        if history::attach_transaction(store, &settings.fatigue, &user, &transaction, now_secs)
            .is_err()
        {
            counters.push(metrics::PUSH_STORE_ERROR);
        }
    }
    let outcome = read_outcome(endpoint, status, body)?;
    if outcome == PromptOutcome::Pending {
        return None;
    }
    let settled = match history::settle(
        store,
        &settings.fatigue,
        &user,
        transaction,
        outcome,
        now_secs,
    ) {
        Ok(settled) => settled?,
        Err(_) => {
            counters.push(metrics::PUSH_STORE_ERROR);
            return Some((base_record(settings, forwarded, "local"), counters));
        }
    };
    let mut record = base_record(settings, forwarded, "none");
    record.event = Some(settled.event);
    record.decision = "allow";
    record.marked = settled.marked;
    counters.push(event_counter(&settled.event));
    Some((record, counters))
}

/// A push endpoint request whose body is over the cap: 413, never forwarded.
pub fn body_too_large(settings: &PromptSettings, matched: &Matched) -> Decided {
    refused(settings, matched.endpoint, IdentifyError::BodyTooLarge)
}

/// The reason code of a failed `ShouldRateLimit` call, by gRPC status.
pub fn grpc_failure(status_code: u32) -> &'static str {
    match status_code {
        4 => "rls_deadline_exceeded",
        14 => "rls_unavailable",
        _ => "rls_call_failed",
    }
}

/// An address property (`ip:port`, `[v6]:port`, or a bare ip) without its port.
pub fn address_without_port(address: &[u8]) -> Option<&[u8]> {
    if let Some(rest) = address.strip_prefix(b"[") {
        let end = rest.iter().position(|&b| b == b']')?;
        return rest.get(..end).filter(|ip| !ip.is_empty());
    }
    let colons = address.iter().filter(|&&b| b == b':').count();
    let ip = match colons {
        1 => address.split(|&b| b == b':').next()?,
        _ => address,
    };
    Some(ip).filter(|ip| !ip.is_empty() && ip.len() <= 64)
}

/// Counts a prompt in shared data and decides on it.
fn counted_locally<S: Store + ?Sized>(
    settings: &PromptSettings,
    forwarded: Forwarded,
    client: Option<Vec<u8>>,
    now_secs: u64,
    store: &mut S,
    counting: &'static str,
) -> Decided {
    let Some(user) = forwarded.user else {
        return refused(settings, forwarded.endpoint, IdentifyError::UserMissing);
    };
    let name = endpoint_name(settings, forwarded.endpoint);
    match count_local(
        store,
        &settings.limits,
        &name,
        &user,
        client.as_deref(),
        now_secs,
    ) {
        Ok(Counted::Admitted { remaining, .. }) => {
            let mut decided = admitted(
                settings,
                forwarded,
                Some(remaining),
                now_secs,
                store,
                counting,
            );
            if let Some(record) = decided.record.as_mut() {
                record.client = client
                    .as_deref()
                    .map(|c| String::from_utf8_lossy(c).into_owned());
            }
            decided
        }
        Ok(Counted::Limited {
            scope,
            count,
            retry_after_secs,
        }) => {
            let mut decided = limited(
                settings,
                &forwarded,
                scope,
                Some(count),
                retry_after_secs,
                counting,
            );
            if let Some(record) = decided.record.as_mut() {
                record.client = client
                    .as_deref()
                    .map(|c| String::from_utf8_lossy(c).into_owned());
            }
            decided
        }
        Err(_) => {
            // Shared data refused: the prompt goes on uncounted (a store fault must not lock
            // every user out), and the counter says so.
            let mut decided = admitted(settings, forwarded, None, now_secs, store, "none");
            decided.counters.push(metrics::PUSH_STORE_ERROR);
            decided
        }
    }
}

/// A prompt let through: its event (first or repeated) recorded, the request forwarded.
fn admitted<S: Store + ?Sized>(
    settings: &PromptSettings,
    forwarded: Forwarded,
    remaining: Option<u32>,
    now_secs: u64,
    store: &mut S,
    counting: &'static str,
) -> Decided {
    let mut record = base_record(settings, &forwarded, counting);
    record.decision = "allow";
    record.remaining = remaining;
    let mut counters = Vec::new();
    if let Some(user) = &forwarded.user {
        match history::note_prompt(
            store,
            &settings.fatigue,
            user,
            forwarded.transaction,
            now_secs,
        ) {
            Ok(event) => {
                counters.push(event_counter(&event));
                record.event = Some(event);
            }
            Err(_) => counters.push(metrics::PUSH_STORE_ERROR),
        }
    }
    Decided {
        next: Next::Forward(forwarded),
        record: Some(record),
        counters,
    }
}

/// A prompt over a limit: 429, never forwarded.
fn limited(
    settings: &PromptSettings,
    forwarded: &Forwarded,
    scope: Scope,
    count: Option<u32>,
    retry_after_secs: u64,
    counting: &'static str,
) -> Decided {
    let scope_name = scope.as_str();
    let mut record = base_record(settings, forwarded, counting);
    record.decision = "deny";
    record.status = Some(429);
    record.reason = Some("push_rate_limited");
    record.scope = Some(scope);
    record.count = count;
    record.remaining = Some(0);
    record.retry_after_secs = Some(retry_after_secs.max(1));
    Decided {
        next: Next::Reply(response::push_rate_limited(scope_name, retry_after_secs)),
        record: Some(record),
        counters: vec![metrics::PUSH_RATE_LIMITED],
    }
}

/// A push endpoint request the gate cannot read: 413 or 400, never forwarded (a prompt
/// that cannot be counted must not reach the user's phone).
fn refused(settings: &PromptSettings, endpoint: usize, error: IdentifyError) -> Decided {
    let (status, reason) = match error {
        IdentifyError::BodyTooLarge => (413, "push_body_too_large"),
        IdentifyError::Unreadable(code) => (400, code),
        IdentifyError::UserMissing => (400, "push_user_missing"),
    };
    let mut record = PromptRecord {
        endpoint: Rc::from(endpoint_name(settings, endpoint).as_str()),
        ..PromptRecord::default()
    };
    record.decision = "deny";
    record.status = Some(status);
    record.reason = Some(reason);
    Decided {
        next: Next::Reply(response::push_refused(u32::from(status), reason)),
        record: Some(record),
        counters: vec![metrics::PUSH_REFUSED],
    }
}

fn base_record(
    settings: &PromptSettings,
    forwarded: &Forwarded,
    counting: &'static str,
) -> PromptRecord {
    PromptRecord {
        endpoint: Rc::from(endpoint_name(settings, forwarded.endpoint).as_str()),
        counting,
        user: forwarded.user.map(|u| u.short()),
        ..PromptRecord::default()
    }
}

fn endpoint_name(settings: &PromptSettings, endpoint: usize) -> String {
    settings
        .endpoints
        .get(endpoint)
        .map_or_else(|| "push".to_string(), |e| e.name.to_string())
}

/// The counter of a record's event.
pub fn event_counter(event: &PromptEvent) -> &'static str {
    let index = match event {
        PromptEvent::Prompt => 0,
        PromptEvent::PromptRepeated { .. } => 1,
        PromptEvent::Denied => 2,
        PromptEvent::Timeout => 3,
        PromptEvent::Approved => 4,
        PromptEvent::ApprovedAfterRepeats { .. } => 5,
    };
    metrics::PUSH_EVENT_COUNTERS[index]
}

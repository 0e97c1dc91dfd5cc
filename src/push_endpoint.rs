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
use crate::prompts::window::{count_local, note_admitted, Counted, Scope};
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
    /// Not a push prompt: pass the request on untouched, nothing to record.
    pub fn pass() -> Self {
        Decided::new(Next::Pass)
    }

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
        return Decided::pass();
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
        // Counted locally too, so a later fallback to local counting knows this prompt.
        if let Some(user) = &forwarded.user {
            let name = endpoint_name(settings, forwarded.endpoint);
            let client = client.as_deref();
            let noted = note_admitted(store, &settings.limits, &name, user, client, now_secs);
            if noted.is_err() {
                log::warn!("push prompt: cannot note a prompt the rate-limit service admitted");
            }
        }
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
        // Envoy answers a timed-out call UNAVAILABLE too ("upstream request timeout").
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
            let decided = admitted(
                settings,
                forwarded,
                Some(remaining),
                now_secs,
                store,
                counting,
            );
            with_client(decided, client.as_deref())
        }
        Ok(Counted::Limited {
            scope,
            count,
            retry_after_secs,
        }) => {
            let decided = limited(
                settings,
                &forwarded,
                scope,
                Some(count),
                retry_after_secs,
                counting,
            );
            with_client(decided, client.as_deref())
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

/// The decision with the client's address in its record.
fn with_client(mut decided: Decided, client: Option<&[u8]>) -> Decided {
    if let Some(record) = decided.record.as_mut() {
        record.client = client.map(|c| String::from_utf8_lossy(c).into_owned());
    }
    decided
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::prompts::endpoint::preset;
    use crate::prompts::{classify, FatigueAction, ServiceCounting};
    use crate::store::MemoryStore;

    const T0: u64 = 1_700_000_000;

    fn settings(counting: Counting) -> PromptSettings {
        PromptSettings {
            endpoints: vec![preset("duo", "duo").unwrap()],
            counting,
            ..PromptSettings::default()
        }
    }

    fn service(on_unavailable: OnUnavailable) -> Counting {
        Counting::Service(ServiceCounting {
            cluster: "ratelimit".into(),
            domain: "mfa-gate".into(),
            timeout_ms: 200,
            on_unavailable,
        })
    }

    fn duo_prompt(user: &str) -> (Vec<(String, Vec<u8>)>, Vec<u8>) {
        let headers = vec![
            (":method".to_string(), b"POST".to_vec()),
            (":path".to_string(), b"/auth/v2/auth".to_vec()),
            (
                "content-type".to_string(),
                b"application/x-www-form-urlencoded".to_vec(),
            ),
        ];
        (
            headers,
            format!("username={user}&factor=push&device=auto").into_bytes(),
        )
    }

    fn prompt_at(
        s: &PromptSettings,
        store: &mut MemoryStore,
        user: &str,
        client: &[u8],
        now: u64,
    ) -> Decided {
        let (headers, body) = duo_prompt(user);
        let matched = classify(s, b"POST", b"/auth/v2/auth").unwrap();
        start(s, &matched, &headers, &body, Some(client), now, store)
    }

    fn duo_answer(result: &str, status: &str) -> Vec<u8> {
        format!(r#"{{"stat":"OK","response":{{"result":"{result}","status":"{status}","status_msg":"x"}}}}"#)
            .into_bytes()
    }

    fn forwarded(decided: &Decided) -> Forwarded {
        match &decided.next {
            Next::Forward(f) => f.clone(),
            other => panic!("not forwarded: {other:?}"),
        }
    }

    #[test]
    fn the_fourth_prompt_in_five_minutes_is_refused_with_retry_after() {
        let s = settings(Counting::Local);
        let mut store = MemoryStore::default();
        let events: Vec<_> = (0..3)
            .map(|i| {
                let d = prompt_at(&s, &mut store, "jane", b"198.51.100.1", T0 + i * 10);
                assert!(matches!(d.next, Next::Forward(_)));
                d.record.unwrap().event.unwrap()
            })
            .collect();
        assert_eq!(
            events,
            [
                PromptEvent::Prompt,
                PromptEvent::PromptRepeated { count: 2 },
                PromptEvent::PromptRepeated { count: 3 }
            ]
        );
        let refused = prompt_at(&s, &mut store, "jane", b"198.51.100.1", T0 + 30);
        let Next::Reply(reply) = &refused.next else {
            panic!("{refused:?}")
        };
        assert_eq!(reply.status, 429);
        let retry: u64 = (reply.headers.iter())
            .find(|(n, _)| n == "retry-after")
            .unwrap()
            .1
            .parse()
            .unwrap();
        // The first prompt (at T0) leaves the 300 s window at T0 + 300.
        assert_eq!(retry, 270);
        let record = refused.record.unwrap();
        assert_eq!(record.reason, Some("push_rate_limited"));
        assert_eq!(record.scope, Some(Scope::User));
        assert_eq!(refused.counters, [metrics::PUSH_RATE_LIMITED]);
        // Another user is not held back, and jane may prompt again once T0 leaves.
        assert!(matches!(
            prompt_at(&s, &mut store, "joe", b"198.51.100.1", T0 + 31).next,
            Next::Forward(_)
        ));
        assert!(matches!(
            prompt_at(&s, &mut store, "jane", b"198.51.100.1", T0 + 301).next,
            Next::Forward(_)
        ));
    }

    #[test]
    fn deny_deny_approve_marks_the_user() {
        let s = settings(Counting::Local);
        let mut store = MemoryStore::default();
        let mut events = Vec::new();
        for (i, (result, status)) in [("deny", "deny"), ("deny", "timeout"), ("allow", "allow")]
            .into_iter()
            .enumerate()
        {
            let now = T0 + 20 * i as u64;
            let d = prompt_at(&s, &mut store, "Jane", b"198.51.100.1", now);
            let f = forwarded(&d);
            let (record, counters) = settle_answer(
                &s,
                &f,
                200,
                &duo_answer(result, status),
                now + 5,
                &mut store,
            )
            .unwrap();
            events.push(record.event.unwrap());
            assert_eq!(counters, [event_counter(&record.event.unwrap())]);
            if result == "allow" {
                assert!(record.marked);
            }
        }
        assert_eq!(
            events,
            [
                PromptEvent::Denied,
                PromptEvent::Timeout,
                PromptEvent::ApprovedAfterRepeats { unanswered: 2 }
            ]
        );
        // The gate finds the mark by the session claim's value (case folded as pushed).
        let mut copy = crate::prompts::marks::MarkCopy::default();
        let mark = copy
            .lookup(&store, &crate::prompts::user_key(b"jane"), T0 + 60)
            .unwrap();
        assert!(crate::prompts::marks::covers(
            &mark,
            Some(T0 + 50),
            T0 + 60,
            43_200
        ));
        assert_eq!(s.fatigue.action, FatigueAction::StepUp);
    }

    #[test]
    fn an_approval_without_pressure_is_plain_and_a_pending_answer_records_nothing() {
        let s = settings(Counting::Local);
        let mut store = MemoryStore::default();
        let d = prompt_at(&s, &mut store, "kim", b"198.51.100.1", T0);
        let f = forwarded(&d);
        assert!(settle_answer(
            &s,
            &f,
            200,
            br#"{"stat":"OK","response":{"result":"waiting"}}"#,
            T0,
            &mut store
        )
        .is_none());
        assert!(settle_answer(&s, &f, 502, b"<html>", T0, &mut store).is_none());
        assert!(settle_answer(&s, &f, 200, b"\xff\xfe{", T0, &mut store).is_none());
        let (record, _) = settle_answer(
            &s,
            &f,
            200,
            &duo_answer("allow", "allow"),
            T0 + 3,
            &mut store,
        )
        .unwrap();
        assert_eq!(record.event, Some(PromptEvent::Approved));
        assert!(!record.marked);
    }

    #[test]
    fn service_counting_asks_with_one_descriptor_and_follows_its_answer() {
        let s = settings(service(OnUnavailable::Local));
        let mut store = MemoryStore::default();
        let d = prompt_at(&s, &mut store, "jane", b"203.0.113.9", T0);
        let Next::Ask(question) = d.next else {
            panic!("{d:?}")
        };
        assert_eq!(question.cluster, "ratelimit");
        use prost::Message;
        let sent = rls::RateLimitRequest::decode(question.message.as_slice()).unwrap();
        assert_eq!(sent.domain, "mfa-gate");
        let entries: Vec<(String, String)> = (sent.descriptors[0].entries.iter())
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect();
        assert_eq!(entries[0], ("mfa_gate_push".into(), "duo".into()));
        assert_eq!(entries[1].0, "user");
        assert_eq!(entries[1].1.len(), 32, "a digest, never the user name");
        assert_eq!(entries[2], ("client".into(), "203.0.113.9".into()));

        let held = question.held;
        let ok = RlsAnswer {
            over_limit: false,
            remaining: Some(2),
            reset_secs: Some(300),
        };
        let admitted = after_service(&s, held.clone(), Ok(ok), T0, &mut store);
        assert!(matches!(admitted.next, Next::Forward(_)));
        let record = admitted.record.unwrap();
        assert_eq!((record.counting, record.remaining), ("service", Some(2)));
        assert!(admitted.counters.contains(&metrics::PUSH_SERVICE_ANSWERED));

        let over = RlsAnswer {
            over_limit: true,
            remaining: Some(0),
            reset_secs: Some(41),
        };
        let limited = after_service(&s, held, Ok(over), T0, &mut store);
        let Next::Reply(reply) = &limited.next else {
            panic!("{limited:?}")
        };
        assert_eq!(reply.status, 429);
        assert!(reply
            .headers
            .contains(&("retry-after".to_string(), "41".to_string())));
    }

    #[test]
    fn each_failure_mode_of_the_service() {
        for (mode, status, counting) in [
            (OnUnavailable::Local, None, "local_fallback"),
            (OnUnavailable::Allow, None, "none"),
            (OnUnavailable::Deny, Some(503), "service_unavailable"),
        ] {
            let s = settings(service(mode));
            let mut store = MemoryStore::default();
            let Next::Ask(q) = prompt_at(&s, &mut store, "jane", b"203.0.113.9", T0).next else {
                panic!()
            };
            let d = after_service(&s, q.held, Err("rls_unavailable"), T0, &mut store);
            match (&d.next, status) {
                (Next::Reply(r), Some(want)) => assert_eq!(r.status, want),
                (Next::Forward(_), None) => {}
                (other, _) => panic!("{mode:?}: {other:?}"),
            }
            assert_eq!(d.record.unwrap().counting, counting, "{mode:?}");
            assert!(d.counters.contains(&metrics::PUSH_SERVICE_UNAVAILABLE));
        }
        // local: the fallback counts, so the 4th prompt is refused there too.
        let s = settings(service(OnUnavailable::Local));
        let mut store = MemoryStore::default();
        let mut last = None;
        for i in 0..4 {
            let Next::Ask(q) = prompt_at(&s, &mut store, "jane", b"203.0.113.9", T0 + i).next
            else {
                panic!()
            };
            last = Some(after_service(
                &s,
                q.held,
                Err("rls_deadline_exceeded"),
                T0 + i,
                &mut store,
            ));
        }
        assert!(matches!(last.unwrap().next, Next::Reply(ref r) if r.status == 429));
    }

    #[test]
    fn unreadable_requests_never_reach_the_provider() {
        let s = settings(Counting::Local);
        let mut store = MemoryStore::default();
        let matched = classify(&s, b"POST", b"/auth/v2/auth").unwrap();
        let (headers, _) = duo_prompt("x");
        let no_user = start(&s, &matched, &headers, b"factor=push", None, T0, &mut store);
        assert!(matches!(no_user.next, Next::Reply(ref r) if r.status == 400));
        assert_eq!(no_user.record.unwrap().reason, Some("push_user_missing"));
        let big = body_too_large(&s, &matched);
        assert!(matches!(big.next, Next::Reply(ref r) if r.status == 413));
        // Not a push (a passcode): passed untouched, nothing counted.
        let passcode = start(
            &s,
            &matched,
            &headers,
            b"username=x&factor=passcode",
            None,
            T0,
            &mut store,
        );
        assert_eq!(passcode.next, Next::Pass);
        assert!(passcode.record.is_none());
    }

    #[test]
    fn addresses_lose_their_port() {
        assert_eq!(
            address_without_port(b"198.51.100.7:5412"),
            Some(&b"198.51.100.7"[..])
        );
        assert_eq!(
            address_without_port(b"[2001:db8::1]:443"),
            Some(&b"2001:db8::1"[..])
        );
        assert_eq!(
            address_without_port(b"2001:db8::1"),
            Some(&b"2001:db8::1"[..])
        );
        assert_eq!(address_without_port(b""), None);
        assert_eq!(address_without_port(b"[unterminated"), None);
    }
}

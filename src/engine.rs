//! The pure decision pipeline, shared by the filter and the `mfa-gate explain` CLI so both
//! give the same answer: request facts → route rule → session (verified token, cached, or
//! Envoy jwt_authn's payload) → assurance → verdict → what to do with the request.

use crate::assurance::classify;
use crate::claims::Claims;
use crate::config::{Config, IssuerConfig};
use crate::extract::{carries_other_credential, check_token, locate_token, RequestHeaders};
use crate::jwks::KeySet;
use crate::policy::{
    decide, match_route_index, BrowserMode, Decision, Mode, OnInsufficient, RequestFacts,
    RouteRule, Unmatched, Verdict,
};
use crate::reason::Reason;
use crate::request::{self, Unreadable};
use crate::response::{self, LocalReply, RedirectTarget};
use crate::telemetry::{self, CacheUse, Counters, DecisionRecord};
use crate::token_cache::TokenCache;
use crate::verify::{peek_issuer, verify, VerifyError};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::rc::Rc;

pub use crate::session::Session;
use crate::session::{HeaderList, SessionFacts};

/// The reason of a request without a token.
const MISSING_TOKEN: &str = "missing_token";

/// The rule name recorded when no rule matched.
const UNMATCHED: &str = "<unmatched>";

/// The verified-session cache of one worker VM.
pub type SessionCache = TokenCache<Rc<Session>>;

/// Where this request's claims come from.
#[derive(Debug, Clone, Copy)]
pub enum ClaimsInput<'a> {
    /// Extract a token from the request and verify it.
    Token,
    /// Envoy jwt_authn's verified payload: `None` when absent, `Err` when unreadable.
    JwtAuthn(Option<&'a Result<Claims, String>>),
    /// The raw bytes of the `metadata` property (Envoy's serialized dynamic metadata), from
    /// which jwt_authn's payload under `payload_key` is read. Sessions are cached by these
    /// bytes, so a repeated payload is decoded and classified once.
    JwtAuthnMetadata {
        metadata: Option<&'a [u8]>,
        payload_key: &'a str,
    },
    /// Claims given directly, unverified (only the `explain --claims` CLI uses this).
    Unverified(&'a Claims),
}

/// Why evaluation needs keys before it can finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysWanted {
    /// No keys were loaded yet for this issuer.
    NotLoaded,
    /// The token names a `kid` the current key set lacks (rotation?).
    UnknownKid,
}

/// What to do with the request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Pass it on: remove the `remove` headers (client copies of ours), then set `set`.
    Continue {
        remove: Vec<String>,
        set: HeaderList,
    },
    /// Answer it locally.
    Reply(LocalReply),
    /// Fetch this issuer's keys, then evaluate again.
    FetchKeys { issuer: usize, why: KeysWanted },
}

/// The outcome, the decision record (for gated requests) and the counters to bump.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub outcome: Outcome,
    /// Present for every gated request (logged at info as JSON).
    pub record: Option<DecisionRecord>,
    /// Counter names to increment by one.
    pub counters: Counters,
    /// The matched rule's name, when one matched.
    pub rule: Option<Rc<str>>,
    /// The session, when one was established.
    pub session: Option<Rc<Session>>,
}

/// Inputs that change per request.
pub struct Request<'a> {
    /// Header access by name (pseudo-headers included).
    pub headers: &'a dyn RequestHeaders,
    /// Where claims come from.
    pub claims: ClaimsInput<'a>,
    /// Seconds since the Unix epoch.
    pub now_secs: u64,
    /// Whether `Outcome::FetchKeys` may be returned (false once a fetch was tried or is
    /// rate-limited: the engine then answers with what it has).
    pub may_fetch_keys: bool,
}

/// The key set each issuer has now (inline or last good fetch), by issuer index.
pub trait KeyLookup {
    /// The keys of issuer `index`, if any are loaded.
    fn keys(&self, index: usize) -> Option<&KeySet>;
}

impl KeyLookup for [Option<KeySet>] {
    fn keys(&self, index: usize) -> Option<&KeySet> {
        self.get(index).and_then(Option::as_ref)
    }
}

impl KeyLookup for Vec<Option<KeySet>> {
    fn keys(&self, index: usize) -> Option<&KeySet> {
        self.as_slice().keys(index)
    }
}

/// How the session was obtained, for the record.
struct Obtained {
    session: Rc<Session>,
    source: Cow<'static, str>,
    cache: Option<CacheUse>,
}

/// A request refused before any policy applies (401/403), with its reason.
struct Refusal {
    reply: LocalReply,
    reason: Reason,
    issuer: Option<String>,
    source: Option<Cow<'static, str>>,
}

/// Evaluates one request: every reading of it (see [`crate::request`]: the methods, paths
/// and hosts the upstream may serve it as) is matched, each distinct rule so found is
/// evaluated, and the strictest outcome wins. A plain request has one reading.
pub fn evaluate(
    config: &Config,
    request: &Request<'_>,
    keys: &dyn KeyLookup,
    cache: &mut SessionCache,
) -> Evaluation {
    let headers = request.headers;
    let readings = match request::read(headers, config.paths, config.host_rules) {
        Ok(readings) => readings,
        Err(unreadable) => return unreadable_request(config, headers, unreadable),
    };
    // Matched as raw bytes: nothing is decoded, so a non-UTF-8 path cannot be made to
    // look like another one.
    let mut rules: SmallVec<[Option<usize>; 2]> = SmallVec::new();
    for method in &readings.methods {
        for (path, fold_case) in &readings.paths {
            for host in &readings.hosts {
                let facts = RequestFacts {
                    method,
                    path,
                    fold_case: *fold_case,
                    host,
                };
                let rule = match_route_index(&config.routes, &facts);
                if !rules.contains(&rule) {
                    rules.push(rule);
                }
            }
        }
    }
    if is_preflight(config, headers) {
        return preflight(config, headers, &rules);
    }
    let rule_at = |index: Option<usize>| index.and_then(|i| config.routes.get(i));
    let mut chosen = evaluate_rule(config, request, keys, cache, rule_at(rules[0]));
    for &other in &rules[1..] {
        if matches!(chosen.outcome, Outcome::FetchKeys { .. }) {
            break;
        }
        let evaluation = evaluate_rule(config, request, keys, cache, rule_at(other));
        let needs_keys = matches!(evaluation.outcome, Outcome::FetchKeys { .. });
        if needs_keys || strictness(&evaluation) > strictness(&chosen) {
            chosen = evaluation;
        }
    }
    chosen
}

/// How strict an evaluation's outcome is, to keep the strictest of several readings.
fn strictness(evaluation: &Evaluation) -> u8 {
    match evaluation.record.as_ref().and_then(|r| r.decision) {
        Some(Decision::Deny) => 3,
        Some(Decision::StepUp) => 2,
        Some(Decision::Allow) => 1,
        None => 0,
    }
}

/// A passed request without a session: no identity headers, every copy a client sent
/// removed.
fn pass(config: &Config, headers: &dyn RequestHeaders, counters: Counters) -> Evaluation {
    Evaluation {
        outcome: Outcome::Continue {
            remove: removals(config, headers, &[]),
            set: HeaderList::from([]),
        },
        record: None,
        counters,
        rule: None,
        session: None,
    }
}

/// 400 for a request whose path or host the upstream may read otherwise.
fn unreadable_request(
    config: &Config,
    headers: &dyn RequestHeaders,
    unreadable: Unreadable,
) -> Evaluation {
    let reason = match unreadable {
        Unreadable::AmbiguousPath(kind) => Reason::AmbiguousPath(kind),
        Unreadable::InvalidHost(kind) => Reason::InvalidHost(kind),
    };
    let reply = response::bad_request(&reason.to_string());
    let verdict = Verdict {
        decision: Decision::Deny,
        reasons: smallvec::smallvec![reason],
    };
    let record = DecisionRecord {
        rule: Rc::from(UNMATCHED),
        ..DecisionRecord::default()
    };
    refuse(config, headers, config.mode, verdict, reply, record)
}

/// A genuine CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`,
/// and nothing a preflight never has: no credential (browsers send none) and no body.
/// Anything else is an ordinary `OPTIONS` request and goes through the gate.
fn is_preflight(config: &Config, headers: &dyn RequestHeaders) -> bool {
    let method = headers.header(":method").unwrap_or_default();
    if method != b"OPTIONS"
        || headers.header("origin").is_none()
        || headers.header("access-control-request-method").is_none()
    {
        return false;
    }
    let mut clean = true;
    headers.each_header(&mut |name, value| {
        let credential = name.eq_ignore_ascii_case(b"authorization")
            || name.eq_ignore_ascii_case(b"cookie")
            || config.token_sources.iter().any(|s| {
                matches!(s, crate::extract::TokenSource::Header(h) if name.eq_ignore_ascii_case(h.as_bytes()))
            });
        let body = name.eq_ignore_ascii_case(b"transfer-encoding")
            || (name.eq_ignore_ascii_case(b"content-length") && value != b"0");
        if credential || body {
            clean = false;
        }
    });
    clean
}

/// A genuine preflight passes (counted on its own), unless some reading of it matches no
/// rule while unmatched routes are denied.
fn preflight(config: &Config, headers: &dyn RequestHeaders, rules: &[Option<usize>]) -> Evaluation {
    if config.unmatched == Unmatched::Deny && rules.contains(&None) {
        return unmatched_denied(config, headers);
    }
    pass(config, headers, Counters::one(telemetry::CORS_PREFLIGHT))
}

fn unmatched_denied(config: &Config, headers: &dyn RequestHeaders) -> Evaluation {
    let verdict = Verdict {
        decision: Decision::Deny,
        reasons: smallvec::smallvec![Reason::UnmatchedRoute],
    };
    let record = DecisionRecord {
        rule: Rc::from(UNMATCHED),
        ..DecisionRecord::default()
    };
    refuse(
        config,
        headers,
        config.mode,
        verdict,
        response::denied("unmatched_route"),
        record,
    )
}

/// Evaluates a request under one rule (`None`: no rule matched).
fn evaluate_rule(
    config: &Config,
    request: &Request<'_>,
    keys: &dyn KeyLookup,
    cache: &mut SessionCache,
    rule: Option<&RouteRule>,
) -> Evaluation {
    let headers = request.headers;
    let mut record = DecisionRecord {
        rule: rule.map_or_else(|| Rc::from(UNMATCHED), |r| Rc::clone(&r.name)),
        rule_json: rule.map(|r| Rc::clone(&r.name_json)),
        ..DecisionRecord::default()
    };
    let mode = rule.map_or(config.mode, |r| r.mode);

    match rule {
        Some(r) if r.require.is_none() => {
            let mut e = pass(config, headers, Counters::one(telemetry::PUBLIC_ALLOWED));
            e.rule = Some(Rc::clone(&r.name));
            return e;
        }
        None if config.unmatched == Unmatched::Allow => {
            return pass(config, headers, Counters::one(telemetry::UNMATCHED_ALLOWED));
        }
        None if config.unmatched == Unmatched::Deny => return unmatched_denied(config, headers),
        _ => {}
    }

    let obtained = match obtain_session(config, request, keys, cache) {
        Ok(o) => o,
        Err(SessionError::FetchKeys(issuer, why)) => {
            return Evaluation {
                outcome: Outcome::FetchKeys { issuer, why },
                record: None,
                counters: Counters::default(),
                rule: rule.map(|r| Rc::clone(&r.name)),
                session: None,
            }
        }
        Err(SessionError::Refused(refusal)) => {
            let Refusal {
                mut reply,
                reason,
                issuer,
                source,
            } = *refusal;
            // A browser without a session on a protected route is sent to sign in.
            if reason == Reason::Refused(MISSING_TOKEN) && wants_browser_answer(rule, headers) {
                if let (Some(step_up), Some(rule)) = (first_step_up(config), rule) {
                    if let Some(req) = &rule.require {
                        reply = redirect(step_up, headers, &req.acr_values, req.max_auth_age_secs);
                    }
                }
            }
            record.refused_issuer = issuer;
            record.source = source;
            record.required_level = rule.and_then(|r| r.require.as_ref()).map(|q| q.level);
            // A sign-in redirect is a step-up; every other refusal is a deny.
            let verdict = Verdict {
                decision: if reply.status == 302 {
                    Decision::StepUp
                } else {
                    Decision::Deny
                },
                reasons: smallvec::smallvec![reason],
            };
            return refuse(config, headers, mode, verdict, reply, record);
        }
    };

    let session = obtained.session;
    let issuer = config.issuers.get(session.issuer_index);
    let from_jwt_authn = matches!(
        request.claims,
        ClaimsInput::JwtAuthn(_) | ClaimsInput::JwtAuthnMetadata { .. }
    );
    record.session = Some(Rc::clone(&session));
    record.source = Some(obtained.source);
    record.cache = obtained.cache;
    record.token_age_secs = session
        .issued_at
        .map(|t| request.now_secs.saturating_sub(t));
    record.auth_age_secs = session
        .assurance
        .auth_time
        .map(|t| request.now_secs.saturating_sub(t));

    let mut counters = Counters::default();
    if let Some(cache) = obtained.cache {
        counters.push(cache.counter());
    }
    if from_jwt_authn {
        counters.push(telemetry::JWT_AUTHN_PAYLOAD);
    }

    let (verdict, reply) = match rule {
        None => (
            Verdict {
                decision: Decision::Allow,
                reasons: smallvec::smallvec![Reason::ValidTokenUnmatchedRoute],
            },
            None,
        ),
        Some(rule) => {
            let verdict = decide(
                rule,
                &session.assurance,
                session.issued_at,
                request.now_secs,
                issuer.map_or(crate::config::DEFAULT_CLOCK_SKEW_SECS, |i| {
                    i.verify.clock_skew_secs
                }),
            );
            record.required_level = rule.require.as_ref().map(|q| q.level);
            let reply = match verdict.decision {
                Decision::Allow => None,
                Decision::StepUp => Some(step_up_reply(
                    config,
                    rule,
                    issuer,
                    headers,
                    wants_browser_answer(Some(rule), headers),
                )),
                Decision::Deny => {
                    Some(response::denied(&verdict.reasons.first().map_or_else(
                        || "policy_deny".to_string(),
                        Reason::to_string,
                    )))
                }
            };
            (verdict, reply)
        }
    };
    finish(
        config,
        headers,
        mode,
        verdict,
        reply,
        record,
        Some(session),
        counters,
    )
}

/// Builds the evaluation of a request answered without a session.
fn refuse(
    config: &Config,
    headers: &dyn RequestHeaders,
    mode: Mode,
    verdict: Verdict,
    reply: LocalReply,
    record: DecisionRecord,
) -> Evaluation {
    finish(
        config,
        headers,
        mode,
        verdict,
        Some(reply),
        record,
        None,
        Counters::default(),
    )
}

/// Builds the evaluation for a verdict: enforce (reply) or report (pass, with the
/// session's identity headers). `counters` holds the counters already due (cache,
/// source); the decision's are added after them.
#[allow(clippy::too_many_arguments)]
fn finish(
    config: &Config,
    headers: &dyn RequestHeaders,
    mode: Mode,
    verdict: Verdict,
    reply: Option<LocalReply>,
    mut record: DecisionRecord,
    session: Option<Rc<Session>>,
    mut counters: Counters,
) -> Evaluation {
    counters.push(telemetry::decision_counter(verdict.decision, mode));
    // Per-reason counters explain refusals; an allow is already counted by its decision.
    if verdict.decision != Decision::Allow {
        for reason in &verdict.reasons {
            counters.push_named(reason.counter());
        }
    }
    record.decision = Some(verdict.decision);
    record.mode = Some(mode);
    record.reasons = verdict.reasons;
    let rule = Some(Rc::clone(&record.rule)).filter(|r| &**r != UNMATCHED);
    let outcome = match (mode, reply) {
        (Mode::Enforce, Some(reply)) => {
            record.status = reply.status;
            Outcome::Reply(reply)
        }
        _ => {
            let set = session
                .as_ref()
                .map_or_else(|| HeaderList::from([]), |s| Rc::clone(s.identity_headers()));
            let remove = removals(config, headers, &set);
            Outcome::Continue { remove, set }
        }
    };
    Evaluation {
        outcome,
        record: Some(record),
        counters,
        rule,
        session,
    }
}

/// The client's headers to strip from the request: every header an upstream could read as
/// one of ours (configured or default names, any case, `_` for `-`: see
/// [`crate::config::UpstreamHeaders::shadows`]) that is not being set. Setting a header
/// replaces every copy of that exact name, so those need no removal (one hostcall fewer).
fn removals(
    config: &Config,
    headers: &dyn RequestHeaders,
    set: &[(String, String)],
) -> Vec<String> {
    let mut remove: Vec<String> = Vec::new();
    headers.each_header(&mut |name, _| {
        // A set name replaces the copies of exactly that name; any other spelling (a host
        // that keeps case, `_` for `-`) goes.
        if !config.upstream_headers.shadows(name) || set.iter().any(|(n, _)| n.as_bytes() == name) {
            return;
        }
        let name = String::from_utf8_lossy(name).into_owned();
        if !remove.contains(&name) {
            remove.push(name);
        }
    });
    remove
}

enum SessionError {
    FetchKeys(usize, KeysWanted),
    Refused(Box<Refusal>),
}

fn refused(
    config: &Config,
    reason: Reason,
    reply: Option<LocalReply>,
    issuer: Option<&IssuerConfig>,
    source: Option<Cow<'static, str>>,
) -> SessionError {
    let reply =
        reply.unwrap_or_else(|| response::invalid_token(&config.realm, &describe(reason.code())));
    SessionError::Refused(Box::new(Refusal {
        reply,
        reason,
        issuer: issuer.map(|i| i.verify.issuer.clone()),
        source,
    }))
}

fn obtain_session(
    config: &Config,
    request: &Request<'_>,
    keys: &dyn KeyLookup,
    cache: &mut SessionCache,
) -> Result<Obtained, SessionError> {
    let now = request.now_secs;
    match request.claims {
        ClaimsInput::JwtAuthnMetadata {
            metadata,
            payload_key,
        } => {
            refuse_second_credential(config, request.headers, "jwt_authn")?;
            let bytes = metadata.filter(|b| !b.is_empty());
            if let Some(session) = bytes.and_then(|b| cache.get(b, now)) {
                return Ok(Obtained {
                    session,
                    source: Cow::Borrowed("jwt_authn"),
                    cache: Some(CacheUse::Hit),
                });
            }
            let payload = bytes.and_then(|b| {
                crate::jwt_authn_metadata::decode_payload(b, payload_key).transpose()
            });
            let session = Rc::new(jwt_authn_session(config, payload.as_ref())?);
            if let Some(bytes) = bytes {
                // Envoy checked exp; keep the entry no longer than the token, and at most a
                // minute when the payload carries no exp.
                let until = if session.expires_at > 0 {
                    session.expires_at
                } else {
                    now.saturating_add(60)
                };
                cache.insert(bytes, Rc::clone(&session), until, now);
            }
            Ok(Obtained {
                session,
                source: Cow::Borrowed("jwt_authn"),
                cache: Some(CacheUse::Miss),
            })
        }
        ClaimsInput::JwtAuthn(payload) => {
            refuse_second_credential(config, request.headers, "jwt_authn")?;
            let session = jwt_authn_session(config, payload)?;
            Ok(Obtained {
                session: Rc::new(session),
                source: Cow::Borrowed("jwt_authn"),
                cache: None,
            })
        }
        ClaimsInput::Unverified(claims) => {
            let session = session_from_claims(config, claims, Some(Cow::Borrowed("claims")))?;
            Ok(Obtained {
                session: Rc::new(session),
                source: Cow::Borrowed("unverified_claims"),
                cache: None,
            })
        }
        ClaimsInput::Token => {
            let Some(found) = locate_token(&config.token_sources, request.headers) else {
                return Err(refused(
                    config,
                    Reason::Refused(MISSING_TOKEN),
                    Some(response::missing_token(&config.realm)),
                    None,
                    None,
                ));
            };
            let source = config
                .token_sources
                .get(found.source)
                .map_or(Cow::Borrowed("token"), |s| s.label());
            if carries_other_credential(&config.token_sources, request.headers, found.token) {
                return Err(refused(
                    config,
                    Reason::Refused("multiple_credentials"),
                    Some(response::multiple_credentials(&config.realm)),
                    None,
                    Some(source),
                ));
            }
            // A cached token passed `check_token` when it was verified: look it up first
            // (an oversized one cannot be cached, and is not worth hashing).
            let cached = (found.token.len() <= config.max_token_bytes)
                .then(|| cache.get(found.token, now))
                .flatten();
            if let Some(session) = cached {
                return Ok(Obtained {
                    session,
                    source,
                    cache: Some(CacheUse::Hit),
                });
            }
            if let Err(reason) = check_token(found.token) {
                return Err(refused(
                    config,
                    Reason::MalformedCredential(reason),
                    None,
                    None,
                    Some(source),
                ));
            }
            let iss = peek_issuer(found.token, config.max_token_bytes).map_err(|e| {
                refused(
                    config,
                    Reason::Refused(e.reason()),
                    None,
                    None,
                    Some(source.clone()),
                )
            })?;
            let Some(index) = config.issuer_index(&iss) else {
                return Err(refused(
                    config,
                    Reason::Refused("unknown_issuer"),
                    None,
                    None,
                    Some(source.clone()),
                ));
            };
            let issuer = &config.issuers[index];
            let Some(keyset) = keys.keys(index) else {
                if request.may_fetch_keys && issuer.remote_jwks.is_some() {
                    return Err(SessionError::FetchKeys(index, KeysWanted::NotLoaded));
                }
                return Err(refused(
                    config,
                    Reason::Refused("keys_unavailable"),
                    None,
                    Some(issuer),
                    Some(source.clone()),
                ));
            };
            let verified = match verify(found.token, keyset, &issuer.verify, now) {
                Ok(v) => v,
                Err(VerifyError::UnknownKid(_))
                    if request.may_fetch_keys && issuer.remote_jwks.is_some() =>
                {
                    return Err(SessionError::FetchKeys(index, KeysWanted::UnknownKid));
                }
                Err(e @ VerifyError::WrongAudience) => {
                    return Err(refused(
                        config,
                        Reason::Refused(e.reason()),
                        Some(response::audience_mismatch(&config.realm)),
                        Some(issuer),
                        Some(source.clone()),
                    ))
                }
                Err(e) => {
                    return Err(refused(
                        config,
                        Reason::Refused(e.reason()),
                        None,
                        Some(issuer),
                        Some(source.clone()),
                    ))
                }
            };
            let assurance = classify(&verified.claims, &issuer.classifier);
            let session = Rc::new(Session::new(
                SessionFacts {
                    issuer_index: index,
                    issuer: issuer.verify.issuer.clone(),
                    subject: string_claim(&verified.claims, "sub"),
                    session_id: string_claim(&verified.claims, "sid"),
                    assurance,
                    issued_at: verified.issued_at,
                    expires_at: verified.expires_at,
                },
                &config.upstream_headers,
            ));
            cache.insert(
                found.token,
                Rc::clone(&session),
                verified
                    .expires_at
                    .saturating_add(issuer.verify.clock_skew_secs),
                now,
            );
            Ok(Obtained {
                session,
                source,
                cache: Some(CacheUse::Miss),
            })
        }
    }
}

/// Envoy's jwt_authn verified one of the request's credentials, but the payload does not
/// say which: a request carrying two different ones is refused, as on the own-verification
/// path.
fn refuse_second_credential(
    config: &Config,
    headers: &dyn RequestHeaders,
    source: &'static str,
) -> Result<(), SessionError> {
    let Some(first) = locate_token(&config.token_sources, headers) else {
        return Ok(());
    };
    if carries_other_credential(&config.token_sources, headers, first.token) {
        return Err(refused(
            config,
            Reason::Refused("multiple_credentials"),
            Some(response::multiple_credentials(&config.realm)),
            None,
            Some(Cow::Borrowed(source)),
        ));
    }
    Ok(())
}

/// The session for Envoy jwt_authn's verified payload: absent → missing token, unreadable
/// → refused.
fn jwt_authn_session(
    config: &Config,
    payload: Option<&Result<Claims, String>>,
) -> Result<Session, SessionError> {
    let source = Some(Cow::Borrowed("jwt_authn"));
    match payload {
        None => Err(refused(
            config,
            Reason::Refused(MISSING_TOKEN),
            Some(response::missing_token(&config.realm)),
            None,
            source,
        )),
        Some(Err(_)) => Err(refused(
            config,
            Reason::Refused("jwt_authn_payload_unreadable"),
            None,
            None,
            source,
        )),
        Some(Ok(claims)) => session_from_claims(config, claims, source),
    }
}

fn session_from_claims(
    config: &Config,
    claims: &Claims,
    source: Option<Cow<'static, str>>,
) -> Result<Session, SessionError> {
    let Some(iss) = string_claim(claims, "iss") else {
        return Err(refused(
            config,
            Reason::Refused("missing_issuer"),
            None,
            None,
            source,
        ));
    };
    let Some(index) = config.issuer_index(&iss) else {
        return Err(refused(
            config,
            Reason::Refused("unknown_issuer"),
            None,
            None,
            source,
        ));
    };
    let issuer = &config.issuers[index];
    Ok(Session::new(
        SessionFacts {
            issuer_index: index,
            issuer: issuer.verify.issuer.clone(),
            subject: string_claim(claims, "sub"),
            session_id: string_claim(claims, "sid"),
            assurance: classify(claims, &issuer.classifier),
            issued_at: number_claim(claims, "iat"),
            expires_at: number_claim(claims, "exp").unwrap_or(0),
        },
        &config.upstream_headers,
    ))
}

fn string_claim(claims: &Claims, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

fn number_claim(claims: &Claims, name: &str) -> Option<u64> {
    let v = claims.get(name)?;
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| *f >= 0.0 && f.is_finite())
            .map(|f| f as u64)
    })
}

fn wants_browser_answer(rule: Option<&RouteRule>, headers: &dyn RequestHeaders) -> bool {
    match rule.map_or(BrowserMode::Auto, |r| r.browser) {
        BrowserMode::Api => false,
        BrowserMode::Redirect => true,
        BrowserMode::Auto => headers.header("accept").is_some_and(response::prefers_html),
    }
}

fn first_step_up(config: &Config) -> Option<&crate::config::StepUpEndpoint> {
    config.issuers.iter().find_map(|i| i.step_up.as_ref())
}

/// Where the browser goes back after a step-up: the request's path and query, relative to
/// the origin it was sent to. Never built from the client's `Host` (which could make it
/// `http://gateway@evil.example/...`), and never protocol-relative (`//evil.example`).
fn return_url(headers: &dyn RequestHeaders) -> String {
    let target = headers.header(":path").unwrap_or(b"/");
    let target = String::from_utf8_lossy(target);
    let rest = target.trim_start_matches(['/', '\\']);
    if !target.starts_with('/') {
        return "/".to_string();
    }
    format!("/{rest}")
}

fn redirect(
    step_up: &crate::config::StepUpEndpoint,
    headers: &dyn RequestHeaders,
    acr_values: &str,
    max_age: Option<u64>,
) -> LocalReply {
    let url = return_url(headers);
    response::step_up_redirect(
        &RedirectTarget {
            authorization_endpoint: &step_up.authorization_endpoint,
            client_id: &step_up.client_id,
            redirect_uri: &step_up.redirect_uri,
            return_url: &url,
        },
        acr_values,
        max_age,
    )
}

fn step_up_reply(
    config: &Config,
    rule: &RouteRule,
    issuer: Option<&IssuerConfig>,
    headers: &dyn RequestHeaders,
    wants_html: bool,
) -> LocalReply {
    let Some(req) = &rule.require else {
        return response::denied("policy_deny");
    };
    if rule.on_insufficient == OnInsufficient::Deny {
        return response::denied("insufficient_user_authentication");
    }
    if wants_html {
        if let Some(step_up) = issuer.and_then(|i| i.step_up.as_ref()) {
            return redirect(step_up, headers, &req.acr_values, req.max_auth_age_secs);
        }
    }
    response::step_up_challenge(
        &config.realm,
        &req.acr_values,
        req.max_auth_age_secs,
        &format!(
            "This resource requires {} authentication",
            req.level.as_str().replace('_', "-")
        ),
    )
}

pub use crate::session::header_safe;

/// Human description for `error_description` from a reason code (never token content).
fn describe(reason: &str) -> String {
    let code = reason.split(':').next().unwrap_or(reason);
    match code {
        "expired" => "The token has expired".to_string(),
        "not_yet_valid" => "The token is not valid yet".to_string(),
        "bad_signature" => "The token signature is invalid".to_string(),
        "unknown_issuer" => "The token issuer is not trusted".to_string(),
        "keys_unavailable" => "Signing keys for this issuer are unavailable".to_string(),
        "unknown_kid" => "The token was signed with an unknown key".to_string(),
        other => format!("Invalid token ({})", other.replace('_', " ")),
    }
}

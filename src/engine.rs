//! The pure decision pipeline, shared by the filter and the `mfa-gate explain` CLI so both
//! give the same answer: request readings → route rule → session ([`crate::token`]:
//! verified token, cached, or Envoy jwt_authn's payload) → verdict ([`crate::policy`]) →
//! [`answer`]: the one place the reply is chosen, from the verdict or the refusal.

use crate::config::StoreUnavailable;
use crate::config::{Config, DEFAULT_CLOCK_SKEW_SECS};
use crate::metrics::{self, Counters};
use crate::observe::{gather, BindingRefusal, Gathered};
use crate::policy::{
    decide, decision_counter, match_route_index, BrowserMode, Decision, Mode, OnInsufficient,
    RequestFacts, Requirement, RouteRule, Unmatched, Verdict,
};
use crate::prompts::FatigueAction;
use crate::reason::Reason;
use crate::record::DecisionRecord;
use crate::request::{self, RequestView, Unreadable};
use crate::response::{self, LocalReply, RedirectTarget, StepUpEndpoint};
use crate::risk::{self, Observed};
use crate::signals::revocation::{self, Effect, Entry, Lifetime};
use crate::token::establish::{
    establish, Attempt, NotEstablished, Refusal, RefusalKind, RevocationClaims, Trust,
};
use crate::token::extract::TokenSource;
use crate::token::issuer::IssuerConfig;
use crate::token::session::HeaderList;
use smallvec::SmallVec;
use std::rc::Rc;

pub use crate::observe::{record_sighting, SharedSignals, Sighting, SignalStores};
pub use crate::schedule::KeysWanted;
pub use crate::signals::revocation::{SessionKeys, Standing};
pub use crate::token::establish::{ClaimsInput, KeyLookup, SessionCache};
pub use crate::token::session::{header_safe, Session};

/// The scoring table of rules judged on a score without a `risk` section (built once).
static DEFAULT_PROFILE: once_cell::sync::Lazy<risk::Profile> =
    once_cell::sync::Lazy::new(risk::Profile::default);

/// The rule name recorded when no rule matched.
const UNMATCHED: &str = "<unmatched>";

/// Work the engine cannot do itself: the glue carries it out, then evaluates again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Fetch this issuer's keys.
    Keys { issuer: usize, why: KeysWanted },
    /// Introspect the request's opaque token at this issuer (RFC 7662) and cache the
    /// answer.
    Introspect { issuer: usize },
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
    /// Do this first, then evaluate again.
    Need(Need),
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
    /// Entries to record in the shared revocation set (a rule's enforced `revoke`).
    pub revocations: Vec<Entry>,
    /// The request's sighting, when it is let through: record it with
    /// [`crate::observe::record_sighting`] (a refused request is never a sighting).
    pub sighting: Option<crate::observe::Sighting>,
}

/// The shared revocation set, as the engine reads it (the glue's shared data; a
/// [`crate::store::MemoryStore`] natively).
pub trait RevocationLookup {
    /// What the set says about a session with these digests.
    fn standing(&self, keys: &SessionKeys) -> Standing;
}

/// A set with nothing in it (revocation not configured, or explain without entries).
pub struct NothingRevoked;

impl RevocationLookup for NothingRevoked {
    fn standing(&self, _: &SessionKeys) -> Standing {
        Standing::Good
    }
}

/// Inputs that change per request.
pub struct Request<'a> {
    /// The request: headers by name (pseudo-headers included), properties and body on demand.
    pub headers: &'a dyn RequestView,
    /// Where claims come from.
    pub claims: ClaimsInput<'a>,
    /// Seconds since the Unix epoch.
    pub now_secs: u64,
    /// Whether `Outcome::Need` may be returned (false once the need was tried or is
    /// rate-limited: the engine then answers with what it has).
    pub may_fetch_keys: bool,
    /// The shared revocation set (read only when revocation is configured).
    pub revocations: &'a dyn RevocationLookup,
    /// The shared stores of request signals (DPoP proofs seen, sightings).
    pub signals: &'a dyn SignalStores,
}

/// The request signals, gathered once per request however many rules its readings match.
type SignalMemo = std::cell::RefCell<Option<Rc<Gathered>>>;

/// What a gated request was judged to be, before its reply is chosen.
enum Judged {
    /// Refused before any rule applies: an unreadable request, or no rule while unmatched
    /// routes are denied.
    BeforeRules(Reason),
    /// No session: why.
    Refused(Refusal),
    /// The policy's verdict on a session.
    Verdict {
        verdict: Verdict,
        session: Rc<Session>,
    },
    /// A session the revocation set covers (or cannot vouch for: `hit` is None).
    Revoked {
        session: Rc<Session>,
        reason: Reason,
    },
    /// A bound token whose binding does not hold.
    Unbound {
        session: Rc<Session>,
        refusal: BindingRefusal,
    },
}

impl From<Unreadable> for Reason {
    fn from(unreadable: Unreadable) -> Reason {
        match unreadable {
            Unreadable::AmbiguousPath(kind) => Reason::AmbiguousPath(kind),
            Unreadable::InvalidHost(kind) => Reason::InvalidHost(kind),
        }
    }
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
        Err(unreadable) => {
            return refused_before_rules(config, headers, request.now_secs, unreadable.into())
        }
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
    let memo = SignalMemo::default();
    let mut chosen = evaluate_rule(config, request, keys, cache, &memo, rule_at(rules[0]));
    for &other in &rules[1..] {
        if matches!(chosen.outcome, Outcome::Need(_)) {
            break;
        }
        let evaluation = evaluate_rule(config, request, keys, cache, &memo, rule_at(other));
        let needs_keys = matches!(evaluation.outcome, Outcome::Need(_));
        if needs_keys || strictness(&evaluation) > strictness(&chosen) {
            chosen = evaluation;
        }
    }
    chosen
}

/// An evaluation that asks the glue for `need` first (no record: the request is
/// evaluated again once it is met).
fn needs(rule: Option<&RouteRule>, need: Need) -> Evaluation {
    Evaluation {
        outcome: Outcome::Need(need),
        record: None,
        counters: Counters::default(),
        rule: rule.map(|r| Rc::clone(&r.name)),
        session: None,
        revocations: Vec::new(),
        sighting: None,
    }
}

/// How strict an evaluation's outcome is, to keep the strictest of several readings.
fn strictness(evaluation: &Evaluation) -> u8 {
    match evaluation.record.as_ref().and_then(|r| r.decision) {
        Some(Decision::Revoke) => 4,
        Some(Decision::Deny) => 3,
        Some(Decision::StepUp) => 2,
        Some(Decision::Allow) => 1,
        None => 0,
    }
}

/// A passed request without a session: no identity headers, every copy a client sent
/// removed.
fn pass(config: &Config, headers: &dyn RequestView, counters: Counters) -> Evaluation {
    Evaluation {
        outcome: Outcome::Continue {
            remove: removals(config, headers, &[]),
            set: HeaderList::from([]),
        },
        record: None,
        counters,
        rule: None,
        session: None,
        revocations: Vec::new(),
        sighting: None,
    }
}

/// A request refused before any rule applies (400 unreadable, 403 unmatched).
fn refused_before_rules(
    config: &Config,
    headers: &dyn RequestView,
    now: u64,
    reason: Reason,
) -> Evaluation {
    let record = DecisionRecord {
        rule: Rc::from(UNMATCHED),
        ..DecisionRecord::default()
    };
    let judged = Judged::BeforeRules(reason);
    answer(
        config,
        headers,
        now,
        None,
        judged,
        record,
        Counters::default(),
    )
}

/// A genuine CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`,
/// and nothing a preflight never has: no credential (browsers send none) and no body.
/// Anything else is an ordinary `OPTIONS` request and goes through the gate.
fn is_preflight(config: &Config, headers: &dyn RequestView) -> bool {
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
            || config.token_sources.iter().any(
                |s| matches!(s, TokenSource::Header(h) if name.eq_ignore_ascii_case(h.as_bytes())),
            );
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
fn preflight(config: &Config, headers: &dyn RequestView, rules: &[Option<usize>]) -> Evaluation {
    if config.unmatched == Unmatched::Deny && rules.contains(&None) {
        // A refusal before any rule never starts a sign-in: no clock is needed.
        return refused_before_rules(config, headers, 0, Reason::UnmatchedRoute);
    }
    pass(config, headers, Counters::one(metrics::CORS_PREFLIGHT))
}

/// Evaluates a request under one rule (`None`: no rule matched).
fn evaluate_rule(
    config: &Config,
    request: &Request<'_>,
    keys: &dyn KeyLookup,
    cache: &mut SessionCache,
    memo: &SignalMemo,
    rule: Option<&RouteRule>,
) -> Evaluation {
    let headers = request.headers;
    let mut record = DecisionRecord {
        rule: rule.map_or_else(|| Rc::from(UNMATCHED), |r| Rc::clone(&r.name)),
        rule_json: rule.map(|r| Rc::clone(&r.name_json)),
        ..DecisionRecord::default()
    };

    match rule {
        Some(r) if r.is_public() => {
            let mut e = pass(config, headers, Counters::one(metrics::PUBLIC_ALLOWED));
            e.rule = Some(Rc::clone(&r.name));
            return e;
        }
        None if config.unmatched == Unmatched::Allow => {
            return pass(config, headers, Counters::one(metrics::UNMATCHED_ALLOWED));
        }
        None if config.unmatched == Unmatched::Deny => {
            return refused_before_rules(config, headers, request.now_secs, Reason::UnmatchedRoute)
        }
        _ => {}
    }

    let attempt = Attempt {
        claims: request.claims,
        headers,
        now_secs: request.now_secs,
        may_fetch_keys: request.may_fetch_keys,
    };
    let established = match establish(&trust(config), &attempt, keys, cache) {
        Ok(established) => established,
        Err(NotEstablished::NeedKeys { issuer, why }) => {
            return needs(rule, Need::Keys { issuer, why })
        }
        Err(NotEstablished::NeedIntrospection { issuer }) => {
            return needs(rule, Need::Introspect { issuer })
        }
        Err(NotEstablished::Refused(refusal)) => {
            let judged = Judged::Refused(refusal);
            return answer(
                config,
                headers,
                request.now_secs,
                rule,
                judged,
                record,
                Counters::default(),
            );
        }
    };

    let session = established.session;
    let from_jwt_authn = matches!(
        request.claims,
        ClaimsInput::JwtAuthn(_) | ClaimsInput::JwtAuthnMetadata { .. }
    );
    record.session = Some(Rc::clone(&session));
    record.source = Some(established.source);
    record.cache = established.cache;
    record.token_age_secs = session
        .issued_at
        .map(|t| request.now_secs.saturating_sub(t));
    record.auth_age_secs =
        (session.assurance.auth_time).map(|t| request.now_secs.saturating_sub(t));

    let mut counters = Counters::default();
    if let Some(cache) = established.cache {
        counters.push(cache.counter());
    }
    if from_jwt_authn {
        counters.push(metrics::JWT_AUTHN_PAYLOAD);
    }

    // Why the session counts as the lowest level (an assurance-level-change event, or a
    // push approved under pressure), when it does.
    let mut lowered: Option<&'static str> = None;
    if let Some(settings) = &config.revocation {
        let standing = (session.revocation.as_ref())
            .map_or(Standing::Good, |keys| request.revocations.standing(keys));
        match standing {
            Standing::Good => {}
            Standing::Covered(hit) => {
                record.revocation = Some(hit);
                counters.push(metrics::REVOCATION_HIT);
                if hit.effect == Effect::Revoke {
                    let judged = Judged::Revoked {
                        session,
                        reason: Reason::Refused("session_revoked"),
                    };
                    return answer(
                        config,
                        headers,
                        request.now_secs,
                        rule,
                        judged,
                        record,
                        counters,
                    );
                }
                lowered = Some("assurance_lowered");
            }
            Standing::Unknown => {
                counters.push(metrics::REVOCATION_UNAVAILABLE);
                if settings.on_store_unavailable == StoreUnavailable::Deny {
                    let judged = Judged::Revoked {
                        session,
                        reason: Reason::Refused("revocation_unavailable"),
                    };
                    return answer(
                        config,
                        headers,
                        request.now_secs,
                        rule,
                        judged,
                        record,
                        counters,
                    );
                }
            }
        }
    }

    let pressured = pressured_session(config, request, &session);
    if let Some(action) = pressured {
        counters.push(metrics::PUSH_PRESSURED_SESSION);
        if action == FatigueAction::StepUp && lowered.is_none() {
            lowered = Some("push_fatigue");
        }
    }

    let gathered = gathered(memo, || {
        gather(config, headers, &session, request.now_secs, request.signals)
    });
    for counter in &gathered.counters {
        counters.push(counter);
    }
    let binding = match gathered.binding {
        Ok(binding) => binding,
        Err(refusal) => {
            counters.push(metrics::BINDING_REFUSED);
            let judged = Judged::Unbound { session, refusal };
            return answer(
                config,
                headers,
                request.now_secs,
                rule,
                judged,
                record,
                counters,
            );
        }
    };
    match binding {
        Some(risk::Binding::Dpop) => {
            counters.push(metrics::BINDING_DPOP);
            // The token came under the DPoP scheme, with its proof.
            if record.source.as_deref() == Some("bearer") {
                record.source = Some(std::borrow::Cow::Borrowed("dpop"));
            }
        }
        Some(risk::Binding::Certificate) => counters.push(metrics::BINDING_MTLS),
        None => {}
    }

    let verdict = match rule {
        None => Verdict {
            decision: Decision::Allow,
            reasons: smallvec::smallvec![Reason::ValidTokenUnmatchedRoute],
        },
        Some(rule) => {
            let skew = (config.issuers.get(session.issuer_index))
                .map_or(DEFAULT_CLOCK_SKEW_SECS, |i| i.verify.clock_skew_secs);
            // An assurance-level-change event: the session counts as the lowest level.
            let mut lowered_assurance = None;
            if lowered.is_some() {
                let mut assurance = session.assurance.clone();
                assurance.level = crate::assurance::Level::None;
                lowered_assurance = Some(assurance);
            }
            let assurance = lowered_assurance.as_ref().unwrap_or(&session.assurance);
            let mut verdict = match rule.require {
                Some(_) => decide(rule, assurance, session.issued_at, request.now_secs, skew),
                None => Verdict {
                    decision: Decision::Allow,
                    reasons: Default::default(),
                },
            };
            if let Some(route_risk) = &rule.risk {
                let observed = Observed {
                    level: assurance.level,
                    binding,
                    posture: gathered.posture,
                    location: gathered.location.clone(),
                    auth_age_secs: record.auth_age_secs.or(record.token_age_secs),
                };
                let profile = match &config.risk {
                    Some(r) => &r.profile,
                    None => &*DEFAULT_PROFILE,
                };
                let score = risk::score(profile, &observed);
                let reached = risk::judge(&score, &route_risk.thresholds);
                counters.push(metrics::RISK_SCORED);
                for c in &score.contributions {
                    if let Some(name) = metrics::RISK_SIGNAL_COUNTERS.get(c.signal as usize) {
                        counters.push(name);
                    }
                }
                let mut json = String::with_capacity(256);
                risk::write_json(&mut json, &score, reached);
                record.risk = Some(json);
                judge_risk(&mut verdict, &score, reached, route_risk, assurance.level);
            }
            if let Some(why) = lowered {
                verdict.reasons.insert(0, Reason::Refused(why));
            }
            if pressured == Some(FatigueAction::Revoke) {
                // Approved under pressure, and the configuration revokes such sessions.
                verdict.reasons.insert(0, Reason::Refused("push_fatigue"));
                verdict.decision = Decision::Revoke;
            }
            verdict
        }
    };
    let mut revocations = Vec::new();
    if verdict.decision == Decision::Revoke && rule.map_or(config.mode, |r| r.mode) == Mode::Enforce
    {
        revocations.extend(gate_revocation(config, &session, request.now_secs));
    }
    let judged = Judged::Verdict { verdict, session };
    let mut evaluation = answer(
        config,
        headers,
        request.now_secs,
        rule,
        judged,
        record,
        counters,
    );
    evaluation.revocations = revocations;
    if matches!(evaluation.outcome, Outcome::Continue { .. }) {
        evaluation.sighting = gathered.sighting.clone();
    }
    evaluation
}

/// What the push fatigue signature asks of this session: `Some` when the session's push
/// user approved a prompt under pressure (denied or unanswered prompts, then an approval)
/// and the session is not phishing-resistant and was signed in since the mark.
fn pressured_session(
    config: &Config,
    request: &Request<'_>,
    session: &Session,
) -> Option<FatigueAction> {
    let settings = config.push_prompts.as_ref()?;
    let user = session.push_user.as_ref()?;
    if session.assurance.level >= crate::assurance::Level::PhishingResistant {
        return None;
    }
    let mark = request.signals.pressured(user, request.now_secs)?;
    let session_time = session.assurance.auth_time.or(session.issued_at);
    crate::prompts::marks::covers(
        &mark,
        session_time,
        request.now_secs,
        settings.fatigue.mark_ttl_secs,
    )
    .then_some(settings.fatigue.action)
}

/// The request's signals: gathered by `run` the first time, then shared.
fn gathered(memo: &SignalMemo, run: impl FnOnce() -> Gathered) -> Rc<Gathered> {
    if let Ok(mut slot) = memo.try_borrow_mut() {
        if let Some(done) = slot.as_ref() {
            return Rc::clone(done);
        }
        let done = Rc::new(run());
        *slot = Some(Rc::clone(&done));
        return done;
    }
    Rc::new(run())
}

/// Folds the risk score into the level verdict: the stricter decision wins, and the score's
/// reason says why. A step-up the session's level already meets cannot lower the score, so
/// it becomes a deny instead of a sign-in loop.
fn judge_risk(
    verdict: &mut Verdict,
    score: &risk::Score,
    reached: Option<(Decision, i32)>,
    route_risk: &crate::policy::RouteRisk,
    level: crate::assurance::Level,
) {
    let Some((mut decision, threshold)) = reached else {
        let lowest = [
            route_risk.thresholds.step_up_at,
            route_risk.thresholds.deny_at,
            route_risk.thresholds.revoke_at,
        ]
        .into_iter()
        .flatten()
        .min();
        verdict.reasons.push(Reason::RiskScoreBelow {
            score: score.total,
            threshold: lowest,
        });
        return;
    };
    let mut reasons: crate::reason::Reasons = smallvec::smallvec![Reason::RiskScore {
        score: score.total,
        threshold
    }];
    if decision == Decision::StepUp && level >= route_risk.step_up.level {
        decision = Decision::Deny;
        reasons.push(Reason::StepUpCannotHelp);
    }
    if rank(decision) >= rank(verdict.decision) {
        // The score decides: its reasons come first (a deny's reply names the first).
        reasons.extend(verdict.reasons.drain(..));
        verdict.reasons = reasons;
        verdict.decision = decision;
    } else {
        verdict.reasons.extend(reasons);
    }
}

/// How strict a decision is.
fn rank(decision: Decision) -> u8 {
    match decision {
        Decision::Allow => 0,
        Decision::StepUp => 1,
        Decision::Deny => 2,
        Decision::Revoke => 3,
    }
}

/// What a step-up on `rule` asks for: its requirement, else its risk gate's.
fn step_up_requirement(rule: Option<&RouteRule>) -> Option<&Requirement> {
    let rule = rule?;
    rule.require
        .as_ref()
        .or(rule.risk.as_ref().map(|r| &r.step_up))
}

/// The entry a rule's `revoke` records for `session`: its `sid`, else its `jti`, else its
/// `sub` (every session of the subject issued until now).
fn gate_revocation(config: &Config, session: &Session, now_secs: u64) -> Option<Entry> {
    let settings = config.revocation.as_ref()?;
    let keys = session.revocation.as_ref()?;
    let preference = [
        revocation::IdentifierKind::SessionId,
        revocation::IdentifierKind::TokenId,
        revocation::IdentifierKind::Subject,
    ];
    let (kind, digest) = preference
        .iter()
        .find_map(|want| keys.digests.iter().find(|(kind, _)| kind == want))?;
    let skew = (config.issuers.get(session.issuer_index))
        .map_or(DEFAULT_CLOCK_SKEW_SECS, |i| i.verify.clock_skew_secs);
    let lifetime = Lifetime {
        max_token_lifetime_secs: settings.max_token_lifetime_secs,
        clock_skew_secs: skew,
        now_secs,
    };
    Some(Entry::from_digest(
        *digest,
        *kind,
        keys.issuer_tag,
        now_secs.max(keys.issued_at),
        lifetime,
        Effect::Revoke,
        revocation::Source::Gate,
    ))
}

/// What session establishment needs from the configuration.
pub fn trust(config: &Config) -> Trust<'_> {
    Trust {
        issuers: &config.issuers,
        sources: &config.token_sources,
        max_token_bytes: config.max_token_bytes,
        upstream_headers: &config.upstream_headers,
        revocation_claims: config.revocation.as_ref().map(|r| RevocationClaims {
            email: r.email_claim.as_deref(),
            opaque: r.opaque_claim.as_deref(),
            idp_user: &r.idp_user_claims,
        }),
        push_user_claim: (config.push_prompts.as_ref())
            .filter(|p| !p.endpoints.is_empty())
            .map(|p| p.fatigue.session_claim.as_str()),
        // The configuration allows one claim source.
        posture_claim: (config.risk.as_ref())
            .and_then(|r| r.posture.as_ref())
            .and_then(|p| {
                p.sources.iter().find_map(|s| match s {
                    crate::config::PostureSourceConfig::Claim(name) => Some(name.as_str()),
                    _ => None,
                })
            }),
    }
}

/// Chooses the reply, once, from what the request was judged to be, and builds the
/// evaluation: enforce (reply) or report (pass, with the session's identity headers).
/// `counters` holds the counters already due (cache, source); the decision's are added
/// after them.
fn answer(
    config: &Config,
    headers: &dyn RequestView,
    now: u64,
    rule: Option<&RouteRule>,
    judged: Judged,
    mut record: DecisionRecord,
    mut counters: Counters,
) -> Evaluation {
    let mode = rule.map_or(config.mode, |r| r.mode);
    record.required_level = rule.and_then(|r| r.require.as_ref()).map(|q| q.level);
    // Each arm leaves its reasons in the record and gives the decision, the reply (when
    // enforced) and the session.
    let (decision, reply, session) = match judged {
        Judged::BeforeRules(reason) => {
            let reply = match reason {
                Reason::UnmatchedRoute => response::denied(reason.code()),
                _ => response::bad_request(&reason.to_string()),
            };
            record.reasons = smallvec::smallvec![reason];
            (Decision::Deny, Some(reply), None)
        }
        Judged::Refused(refusal) => {
            let (decision, reply) = refusal_reply(config, rule, headers, now, &refusal.kind);
            record.reasons = smallvec::smallvec![refusal.reason()];
            record.refused_issuer = (refusal.issuer)
                .and_then(|i| config.issuers.get(i))
                .map(|i| i.verify.issuer.clone());
            record.source = refusal.source;
            (decision, Some(reply), None)
        }
        Judged::Verdict { verdict, session } => {
            let issuer = config.issuers.get(session.issuer_index);
            let reply = match (rule, verdict.decision) {
                (None, _) | (_, Decision::Allow) => None,
                (Some(rule), Decision::StepUp) => {
                    // A step-up the score decided asks for what the risk gate asks for.
                    let by_score =
                        matches!(verdict.reasons.first(), Some(Reason::RiskScore { .. }));
                    Some(step_up_reply(config, rule, issuer, headers, now, by_score))
                }
                (Some(_), Decision::Deny) => Some(response::denied(
                    &(verdict.reasons.first())
                        .map_or_else(|| "policy_deny".to_string(), Reason::to_string),
                )),
                (Some(rule), Decision::Revoke) => Some(revoked_reply(
                    config,
                    Some(rule),
                    headers,
                    now,
                    record.source.as_deref(),
                )),
            };
            record.reasons = verdict.reasons;
            (verdict.decision, reply, Some(session))
        }
        Judged::Revoked { session, reason } => {
            let reply = revoked_reply(config, rule, headers, now, record.source.as_deref());
            record.reasons = smallvec::smallvec![reason];
            (Decision::Deny, Some(reply), Some(session))
        }
        Judged::Unbound { session, refusal } => {
            let reply = if refusal.dpop {
                response::dpop_refused(&config.realm, refusal.proof, refusal.description)
            } else {
                response::invalid_token(&config.realm, refusal.description)
            };
            record.reasons = smallvec::smallvec![Reason::Refused(refusal.code)];
            (Decision::Deny, Some(reply), Some(session))
        }
    };
    // A DPoP-bound session is challenged under the DPoP scheme (its client may answer no other).
    let dpop_bound = session
        .as_ref()
        .is_some_and(|s| matches!(&s.binding, Ok(Some(c)) if c.jkt.is_some()));
    let mut reply = reply;
    if let (true, Some(reply)) = (dpop_bound, reply.as_mut()) {
        response::as_dpop_challenge(reply);
    }
    counters.push(decision_counter(decision, mode));
    // Per-reason counters explain refusals; an allow is already counted by its decision.
    if decision != Decision::Allow {
        for reason in &record.reasons {
            counters.push_named(reason.counter());
        }
    }
    record.decision = Some(decision);
    record.mode = Some(mode);
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
        revocations: Vec::new(),
        sighting: None,
    }
}

/// The reply to a request without a session, and whether it is a step-up: a browser
/// without a session on a protected route is sent to sign in; every other refusal is a
/// deny (401, 403 for another audience, 400 for two credentials).
fn refusal_reply(
    config: &Config,
    rule: Option<&RouteRule>,
    headers: &dyn RequestView,
    now: u64,
    refusal: &RefusalKind,
) -> (Decision, LocalReply) {
    let realm = &config.realm;
    let reply = match refusal {
        RefusalKind::Missing => {
            let requirement = step_up_requirement(rule);
            if let (true, Some(step_up), Some(req)) = (
                wants_browser_answer(rule, headers),
                first_step_up(config),
                requirement,
            ) {
                let reply = redirect(config, step_up, headers, now, Some(req));
                return (Decision::StepUp, reply);
            }
            response::missing_token(realm)
        }
        RefusalKind::MultipleCredentials => response::multiple_credentials(realm),
        RefusalKind::WrongAudience => response::audience_mismatch(realm),
        RefusalKind::Invalid(reason) => response::invalid_token(realm, &describe(reason.code())),
        RefusalKind::KeysUnavailable => {
            response::invalid_token(realm, &describe("keys_unavailable"))
        }
    };
    (Decision::Deny, reply)
}

/// The client's headers to strip from the request: every header an upstream could read as
/// one of ours (configured or default names, any case, `_` for `-`: see
/// [`crate::token::session::UpstreamHeaders::shadows`]) that is not being set. Setting a header
/// replaces every copy of that exact name, so those need no removal (one hostcall fewer).
fn removals(config: &Config, headers: &dyn RequestView, set: &[(String, String)]) -> Vec<String> {
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

/// The reply to a revoked session: 401 `invalid_token` "session revoked" for API
/// clients; for browsers, a redirect to sign in again (to the first issuer with a step-up
/// endpoint). Either way, the session cookie is cleared when the token came from one.
fn revoked_reply(
    config: &Config,
    rule: Option<&RouteRule>,
    headers: &dyn RequestView,
    now: u64,
    source: Option<&str>,
) -> LocalReply {
    let mut reply = match (wants_browser_answer(rule, headers), first_step_up(config)) {
        (true, Some(step_up)) => redirect(config, step_up, headers, now, step_up_requirement(rule)),
        _ => response::invalid_token(&config.realm, "session revoked"),
    };
    if let Some(cookie) = source.and_then(|s| s.strip_prefix("cookie:")) {
        reply.headers.push(response::clear_cookie(cookie));
    }
    reply
}

fn wants_browser_answer(rule: Option<&RouteRule>, headers: &dyn RequestView) -> bool {
    match rule.map_or(BrowserMode::Auto, |r| r.browser) {
        BrowserMode::Api => false,
        BrowserMode::Redirect => true,
        BrowserMode::Auto => headers.header("accept").is_some_and(response::prefers_html),
    }
}

fn first_step_up(config: &Config) -> Option<&StepUpEndpoint> {
    config.issuers.iter().find_map(|i| i.step_up.as_ref())
}

/// Where the browser goes back after a step-up: the request's path and query, relative to
/// the origin it was sent to. Never built from the client's `Host` (which could make it
/// `http://gateway@evil.example/...`), and never protocol-relative (`//evil.example`).
fn return_url(headers: &dyn RequestView) -> String {
    let target = headers.header(":path").unwrap_or(b"/");
    let target = String::from_utf8_lossy(target);
    let rest = target.trim_start_matches(['/', '\\']);
    if !target.starts_with('/') {
        return "/".to_string();
    }
    format!("/{rest}")
}

/// The browser's step-up redirect: a sign-in the gateway finishes itself (state cookie,
/// `nonce`, PKCE) when `sign_in` is configured for this provider, else the plain redirect
/// whose `state` is the return URL, for the application at `redirect_uri`.
fn redirect(
    config: &Config,
    step_up: &StepUpEndpoint,
    headers: &dyn RequestView,
    now: u64,
    requirement: Option<&Requirement>,
) -> LocalReply {
    let url = return_url(headers);
    let acr_values = requirement.map_or("", |q| q.acr_values.as_str());
    let max_age = requirement.and_then(|q| q.max_auth_age_secs);
    let finished_here = (config.sign_in.as_ref())
        .filter(|s| s.client_id == step_up.client_id && s.redirect_uri == step_up.redirect_uri);
    if let Some(sign_in) = finished_here {
        if let Some(secrets) = &sign_in.secrets {
            let asked = crate::sign_in::Asked {
                level: requirement.map_or(crate::assurance::Level::None, |q| q.level),
                acr_values: acr_values.to_string(),
                max_age,
            };
            return crate::sign_in::begin(
                sign_in,
                secrets,
                step_up,
                asked,
                &url,
                crate::sign_in::fresh_random(),
                now,
            );
        }
    }
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
    headers: &dyn RequestView,
    now: u64,
    by_score: bool,
) -> LocalReply {
    let by_score = by_score
        .then(|| rule.risk.as_ref().map(|r| &r.step_up))
        .flatten();
    let Some(req) = by_score.or(step_up_requirement(Some(rule))) else {
        return response::denied("policy_deny");
    };
    if rule.on_insufficient == OnInsufficient::Deny {
        return response::denied("insufficient_user_authentication");
    }
    if wants_browser_answer(Some(rule), headers) {
        if let Some(step_up) = issuer.and_then(|i| i.step_up.as_ref()) {
            return redirect(config, step_up, headers, now, Some(req));
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
        "token_inactive" => "The token is not active".to_string(),
        "introspection_unavailable" => "The token cannot be checked now".to_string(),
        other => format!("Invalid token ({})", other.replace('_', " ")),
    }
}

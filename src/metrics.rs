//! Metric names (one place; the README's metrics table lists them) and the counters one
//! evaluation bumps. A leaf: it imports nothing from the crate.

/// Requests answered `allow` (enforced).
pub const DECISION_ALLOW: &str = "mfa_gate.decision.allow";
/// Requests answered with a step-up challenge or redirect (enforced).
pub const DECISION_STEP_UP: &str = "mfa_gate.decision.step_up";
/// Requests denied: 401/403 (enforced).
pub const DECISION_DENY: &str = "mfa_gate.decision.deny";
/// Decisions in report-only mode that would have been allow.
pub const REPORT_ONLY_ALLOW: &str = "mfa_gate.report_only.allow";
/// Decisions in report-only mode that would have been a step-up.
pub const REPORT_ONLY_STEP_UP: &str = "mfa_gate.report_only.step_up";
/// Decisions in report-only mode that would have been a deny.
pub const REPORT_ONLY_DENY: &str = "mfa_gate.report_only.deny";
/// Prefix of the per-reason counters: `mfa_gate.reason.<code>`.
pub const REASON_PREFIX: &str = "mfa_gate.reason.";
/// CORS preflight requests passed through untouched.
pub const CORS_PREFLIGHT: &str = "mfa_gate.cors_preflight";
/// Requests that matched no rule and were let through (`unmatched: allow`).
pub const UNMATCHED_ALLOWED: &str = "mfa_gate.unmatched_allowed";
/// Requests on public rules (no requirement) let through.
pub const PUBLIC_ALLOWED: &str = "mfa_gate.public_allowed";
/// Verified-token cache hits.
pub const TOKEN_CACHE_HIT: &str = "mfa_gate.token_cache.hit";
/// Verified-token cache misses (a full verification followed).
pub const TOKEN_CACHE_MISS: &str = "mfa_gate.token_cache.miss";
/// Tokens missing from the VM's cache but verified by another worker VM (shared data): no
/// verification followed.
pub const TOKEN_CACHE_SHARED_HIT: &str = "mfa_gate.token_cache.shared_hit";
/// Sessions read from Envoy jwt_authn's verified payload.
pub const JWT_AUTHN_PAYLOAD: &str = "mfa_gate.jwt_authn_payload";
/// JWKS fetches that produced a usable key set.
pub const JWKS_FETCH_SUCCESS: &str = "mfa_gate.jwks_fetch.success";
/// JWKS fetches that failed (status, timeout, reset, unparsable body); last good keys kept.
pub const JWKS_FETCH_FAILURE: &str = "mfa_gate.jwks_fetch.failure";
/// Refreshes triggered by a token naming an unknown `kid`.
pub const JWKS_UNKNOWN_KID_REFRESH: &str = "mfa_gate.jwks_fetch.unknown_kid_refresh";

/// Sessions ended by a rule's `revoke` decision (enforced).
pub const DECISION_REVOKE: &str = "mfa_gate.decision.revoke";
/// Decisions in report-only mode that would have revoked the session.
pub const REPORT_ONLY_REVOKE: &str = "mfa_gate.report_only.revoke";
/// Gated requests whose session a revocation entry covers (refused, or lowered to step up).
pub const REVOCATION_HIT: &str = "mfa_gate.revocation.hit";
/// Gated requests for which the revocation set could not be read.
pub const REVOCATION_UNAVAILABLE: &str = "mfa_gate.revocation.unavailable";
/// Security Event Tokens and logout tokens verified and applied.
pub const REVOCATION_EVENT_ACCEPTED: &str = "mfa_gate.revocation.event.accepted";
/// Security Event Tokens and logout tokens refused (bad signature, issuer, audience, ...).
pub const REVOCATION_EVENT_REJECTED: &str = "mfa_gate.revocation.event.rejected";
/// Events delivered again (same `jti`): acknowledged, not applied again.
pub const REVOCATION_EVENT_REPLAYED: &str = "mfa_gate.revocation.event.replayed";
/// Valid events of a type (or status) that asks nothing of the gate: acknowledged.
pub const REVOCATION_EVENT_IGNORED: &str = "mfa_gate.revocation.event.ignored";
/// Entries added to (or strengthened in) the shared revocation set.
pub const REVOCATION_ENTRIES_ADDED: &str = "mfa_gate.revocation.entries_added";
/// Entries folded into their issuer's horizon because their shard was full.
pub const REVOCATION_FOLDED: &str = "mfa_gate.revocation.folded";
/// Writes to the shared revocation set that failed (contended or unavailable).
pub const REVOCATION_STORE_ERROR: &str = "mfa_gate.revocation.store_error";
/// Polls of a transmitter answered with a readable body.
pub const REVOCATION_POLL_SUCCESS: &str = "mfa_gate.revocation.poll.success";
/// Polls that failed (status, timeout, reset, unreadable body): the next one backs off.
pub const REVOCATION_POLL_FAILURE: &str = "mfa_gate.revocation.poll.failure";

/// Sessions the IdP confirmed ended (or already gone) after the gate revoked them.
pub const IDP_SESSION_ENDED: &str = "mfa_gate.idp_session.ended";
/// Calls to end a session at the IdP that failed (each attempt; retried with backoff).
pub const IDP_SESSION_FAILURE: &str = "mfa_gate.idp_session.failure";
/// Sessions the IdP could not be made to end (out of attempts, or refused outright).
pub const IDP_SESSION_GAVE_UP: &str = "mfa_gate.idp_session.gave_up";

/// Gauge: entries in the shared revocation set (all shards and horizons).
pub const REVOCATION_ENTRIES: &str = "mfa_gate.revocation.entries";
/// Gauge: bytes the revocation set keeps in shared data.
pub const REVOCATION_STORED_BYTES: &str = "mfa_gate.revocation.stored_bytes";

/// Requests whose DPoP-bound token came with a valid, fresh proof of its key.
pub const BINDING_DPOP: &str = "mfa_gate.binding.dpop";
/// Requests whose certificate-bound token came on a connection with its certificate.
pub const BINDING_MTLS: &str = "mfa_gate.binding.mtls";
/// Requests refused because a token's binding did not hold (or a proof was bad).
pub const BINDING_REFUSED: &str = "mfa_gate.binding.refused";
/// DPoP `jti`s dropped from the full replay store before their window ended.
pub const DPOP_REPLAY_EVICTED: &str = "mfa_gate.binding.dpop_replay_evicted";
/// DPoP proofs refused because the replay store could not be read or written.
pub const DPOP_REPLAY_UNAVAILABLE: &str = "mfa_gate.binding.dpop_replay_unavailable";
/// Sightings that could not be read or recorded (the request is scored without history).
pub const LOCATION_STORE_ERROR: &str = "mfa_gate.location.store_error";
/// Requests judged on a risk score.
pub const RISK_SCORED: &str = "mfa_gate.risk.scored";
/// Per signal (in `risk::Signal::ALL` order): requests the signal contributed to.
pub const RISK_SIGNAL_COUNTERS: [&str; 13] = [
    "mfa_gate.risk.signal.assurance",
    "mfa_gate.risk.signal.device_bound",
    "mfa_gate.risk.signal.device_unbound",
    "mfa_gate.risk.signal.posture_managed",
    "mfa_gate.risk.signal.posture_compliant",
    "mfa_gate.risk.signal.posture_unmanaged",
    "mfa_gate.risk.signal.posture_unknown",
    "mfa_gate.risk.signal.new_country",
    "mfa_gate.risk.signal.first_sighting",
    "mfa_gate.risk.signal.anonymous_network",
    "mfa_gate.risk.signal.impossible_travel",
    "mfa_gate.risk.signal.location_unknown",
    "mfa_gate.risk.signal.stale_authentication",
];

/// Push prompts, by decision-record event (index: [`PUSH_EVENT_COUNTERS`] order is
/// push_prompt, push_prompt_repeated, push_denied, push_timeout, push_approved,
/// push_approved_after_repeats).
pub const PUSH_EVENT_COUNTERS: [&str; 6] = [
    "mfa_gate.push.prompt",
    "mfa_gate.push.prompt_repeated",
    "mfa_gate.push.denied",
    "mfa_gate.push.timeout",
    "mfa_gate.push.approved",
    "mfa_gate.push.approved_after_repeats",
];
/// A push prompt refused over its limit (429).
pub const PUSH_RATE_LIMITED: &str = "mfa_gate.push.rate_limited";
/// A push endpoint request refused as unreadable (400/413: no user, body too large).
pub const PUSH_REFUSED: &str = "mfa_gate.push.refused";
/// A prompt counted by the rate-limit service.
pub const PUSH_SERVICE_ANSWERED: &str = "mfa_gate.push.service.answered";
/// The rate-limit service could not answer (down, slow, garbage); its failure mode applied.
pub const PUSH_SERVICE_UNAVAILABLE: &str = "mfa_gate.push.service.unavailable";
/// A prompt counted locally because the rate-limit service could not answer.
pub const PUSH_SERVICE_FALLBACK: &str = "mfa_gate.push.service.fallback_local";
/// The push stores in shared data could not be read or written.
pub const PUSH_STORE_ERROR: &str = "mfa_gate.push.store_error";
/// A gated request on a session approved under pressure (the fatigue signature).
pub const PUSH_PRESSURED_SESSION: &str = "mfa_gate.push.pressured_session";
/// Every push counter, defined at start so they show at 0.
pub const PUSH_COUNTERS: [&str; 13] = [
    PUSH_EVENT_COUNTERS[0],
    PUSH_EVENT_COUNTERS[1],
    PUSH_EVENT_COUNTERS[2],
    PUSH_EVENT_COUNTERS[3],
    PUSH_EVENT_COUNTERS[4],
    PUSH_EVENT_COUNTERS[5],
    PUSH_RATE_LIMITED,
    PUSH_REFUSED,
    PUSH_SERVICE_ANSWERED,
    PUSH_SERVICE_UNAVAILABLE,
    PUSH_SERVICE_FALLBACK,
    PUSH_STORE_ERROR,
    PUSH_PRESSURED_SESSION,
];

/// Opaque tokens answered from the shared introspection cache (no call).
pub const INTROSPECTION_HIT: &str = "mfa_gate.introspection.hit";
/// Opaque tokens not in the shared introspection cache: an introspection call was made.
pub const INTROSPECTION_MISS: &str = "mfa_gate.introspection.miss";
/// Introspection answers `active: true` (accepted and cached).
pub const INTROSPECTION_ACTIVE: &str = "mfa_gate.introspection.active";
/// Introspection answers `active: false` (cached briefly; the request gets 401).
pub const INTROSPECTION_INACTIVE: &str = "mfa_gate.introspection.inactive";
/// Introspection calls that failed (down, timeout, non-200, unreadable, oversized): the
/// unknown token gets 401 `introspection_unavailable`.
pub const INTROSPECTION_UNAVAILABLE: &str = "mfa_gate.introspection.unavailable";

/// Every fixed counter name, defined at start so they show at 0 (the per-signal counters
/// of [`RISK_SIGNAL_COUNTERS`] too).
pub const FIXED_COUNTERS: [&str; 44] = [
    DECISION_ALLOW,
    DECISION_STEP_UP,
    DECISION_DENY,
    REPORT_ONLY_ALLOW,
    REPORT_ONLY_STEP_UP,
    REPORT_ONLY_DENY,
    CORS_PREFLIGHT,
    UNMATCHED_ALLOWED,
    PUBLIC_ALLOWED,
    TOKEN_CACHE_HIT,
    TOKEN_CACHE_MISS,
    TOKEN_CACHE_SHARED_HIT,
    JWT_AUTHN_PAYLOAD,
    JWKS_FETCH_SUCCESS,
    JWKS_FETCH_FAILURE,
    JWKS_UNKNOWN_KID_REFRESH,
    DECISION_REVOKE,
    REPORT_ONLY_REVOKE,
    REVOCATION_HIT,
    REVOCATION_UNAVAILABLE,
    REVOCATION_EVENT_ACCEPTED,
    REVOCATION_EVENT_REJECTED,
    REVOCATION_EVENT_REPLAYED,
    REVOCATION_EVENT_IGNORED,
    REVOCATION_ENTRIES_ADDED,
    REVOCATION_FOLDED,
    REVOCATION_STORE_ERROR,
    REVOCATION_POLL_SUCCESS,
    REVOCATION_POLL_FAILURE,
    IDP_SESSION_ENDED,
    IDP_SESSION_FAILURE,
    IDP_SESSION_GAVE_UP,
    BINDING_DPOP,
    BINDING_MTLS,
    BINDING_REFUSED,
    DPOP_REPLAY_EVICTED,
    DPOP_REPLAY_UNAVAILABLE,
    LOCATION_STORE_ERROR,
    RISK_SCORED,
    INTROSPECTION_HIT,
    INTROSPECTION_MISS,
    INTROSPECTION_ACTIVE,
    INTROSPECTION_INACTIVE,
    INTROSPECTION_UNAVAILABLE,
];

/// The counters one evaluation bumps, in order: mfa-gate's fixed names held inline (no
/// allocation on the per-request path), then the per-reason counters of a refusal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counters {
    fixed: [&'static str; 4],
    fixed_len: usize,
    named: Vec<String>,
}

impl Counters {
    /// One fixed counter.
    pub fn one(name: &'static str) -> Self {
        let mut counters = Counters::default();
        counters.push(name);
        counters
    }

    /// Adds a fixed counter (an evaluation has at most three; more would be kept as named).
    pub fn push(&mut self, name: &'static str) {
        match self.fixed.get_mut(self.fixed_len) {
            Some(slot) => {
                *slot = name;
                self.fixed_len += 1;
            }
            None => self.push_named(name.to_string()),
        }
    }

    /// Adds a counter by computed name, once.
    pub fn push_named(&mut self, name: String) {
        if !self.named.contains(&name) && !self.fixed().contains(&name.as_str()) {
            self.named.push(name);
        }
    }

    /// The fixed counters.
    pub fn fixed(&self) -> &[&'static str] {
        self.fixed.get(..self.fixed_len).unwrap_or(&[])
    }

    /// The counters with computed names (per reason).
    pub fn named(&self) -> &[String] {
        &self.named
    }

    /// Every counter, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.fixed()
            .iter()
            .copied()
            .chain(self.named.iter().map(String::as_str))
    }
}

impl serde::Serialize for Counters {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// A sign-in the gateway finished: the session cookie set, the browser sent back.
pub const SIGN_IN_COMPLETED: &str = "mfa_gate.sign_in.completed";
/// A callback refused before any code exchange (state missing, altered, replayed, ...).
pub const SIGN_IN_REFUSED: &str = "mfa_gate.sign_in.refused";
/// A code exchange that did not give a session (token endpoint down or refusing, ID token
/// invalid, wrong nonce, level not met).
pub const SIGN_IN_FAILED: &str = "mfa_gate.sign_in.failed";
/// A sign-out at the logout path.
pub const SIGN_IN_SIGNED_OUT: &str = "mfa_gate.sign_in.signed_out";
/// Every sign-in counter, defined at start so they show at 0.
pub const SIGN_IN_COUNTERS: [&str; 4] = [
    SIGN_IN_COMPLETED,
    SIGN_IN_REFUSED,
    SIGN_IN_FAILED,
    SIGN_IN_SIGNED_OUT,
];

/// The per-reason counter for a reason string: the code before any `:` detail, limited to
/// `[a-z0-9_]` so a hostile value can never mint arbitrary stat names.
pub fn reason_counter(reason: &str) -> String {
    let code = reason.split(':').next().unwrap_or("");
    let clean: String = code
        .chars()
        .take(48)
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{REASON_PREFIX}{clean}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_counters_are_sanitised() {
        assert_eq!(
            reason_counter("level_below_required:push<phishing_resistant"),
            "mfa_gate.reason.level_below_required"
        );
        assert_eq!(reason_counter("Bad.Name{x}"), "mfa_gate.reason._ad__ame_x_");
        assert!(reason_counter(&"a".repeat(500)).len() < 70);
    }
}

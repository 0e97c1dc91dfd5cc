//! The push-prompt stage: where mfa-gate fronts an MFA provider's push endpoint (Duo's Auth
//! API, Okta's factor verification), it sees every prompt being asked for and its answer,
//! so it can stop a flood before it reaches the user's phone ("push bombing") and tell an
//! approval given under pressure from a normal one.
//!
//! The pipeline for one request on a push endpoint, all pure code:
//! 1. [`classify`] (headers only: method and path) says whether it is an initiate or a poll
//!    of a configured [`Endpoint`], and whether the body is needed;
//! 2. [`identify`] (with the body, capped at [`PromptSettings::max_body_bytes`]) checks the
//!    step's conditions (Duo's `factor=push`) and reads the user and the transaction;
//!    [`resolve`] then attributes a poll through the pending-transaction store and turns an
//!    initiate on a transaction already waiting (Okta authn) into a poll;
//! 3. [`window::count_local`] counts a prompt per user and per client address in sliding
//!    windows ([`Limits`]); over a limit the prompt never reaches the provider;
//! 4. [`history::note_prompt`] remembers the prompt; the provider's answer
//!    ([`outcome::read_outcome`]) is [`history::settle`]d, and an approval after denied or
//!    unanswered prompts leaves a [`marks`] mark the gate acts on;
//! 5. one [`record::PromptRecord`] per prompt.
//!
//! Never keeps or logs a raw user, body or transaction id: users and transactions are
//! keyed digests ([`user_key`], [`transaction_key`]); everything in shared data is bounded
//! and versioned and changes only through `store::update`. Never panics on any body.

pub mod endpoint;
pub mod history;
pub mod marks;
pub mod outcome;
pub mod record;
pub(crate) mod shard;
pub mod window;

pub use endpoint::{Condition, Endpoint, FieldSource, OutcomeRule, PathPattern, StepMatch, Test};
pub use history::{PromptEvent, PromptOutcome, Settled};
pub use marks::{Mark, MarkCopy};
pub use record::PromptRecord;
pub use window::{Counted, Scope};

use crate::request::RequestView;
use crate::store::Store;

/// Default cap on a push request's body, bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16_384;
/// Cap on a provider's answer read for its outcome, bytes.
pub const MAX_RESPONSE_BODY_BYTES: usize = 65_536;
/// Default fatigue window, seconds.
pub const DEFAULT_FATIGUE_WINDOW_SECS: u64 = 600;
/// Default denied or unanswered prompts before an approval that marks the session.
pub const DEFAULT_MIN_UNANSWERED: u32 = 2;
/// Default time a mark holds, seconds (12 hours).
pub const DEFAULT_MARK_TTL_SECS: u64 = 43_200;
/// Default rate-limit service domain.
pub const DEFAULT_SERVICE_DOMAIN: &str = "mfa-gate";
/// Default rate-limit service timeout, milliseconds.
pub const DEFAULT_SERVICE_TIMEOUT_MS: u64 = 200;

/// The compiled `push_prompts` section.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptSettings {
    /// The push endpoints, first match wins.
    pub endpoints: Vec<Endpoint>,
    /// Prompt limits per user and per client address.
    pub limits: Limits,
    /// The fatigue signature.
    pub fatigue: FatigueSettings,
    /// Where prompts are counted.
    pub counting: Counting,
    /// Request body cap, bytes (the provider's answer is read up to
    /// [`MAX_RESPONSE_BODY_BYTES`]).
    pub max_body_bytes: usize,
}

impl Default for PromptSettings {
    fn default() -> Self {
        PromptSettings {
            endpoints: Vec::new(),
            limits: Limits::default(),
            fatigue: FatigueSettings::default(),
            counting: Counting::Local,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// One sliding window: at most `max_prompts` prompts in any `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Prompts allowed in the window (at least 1).
    pub max_prompts: u32,
    /// The window's length, seconds (at least 1).
    pub window_secs: u64,
}

/// Prompt limits by scope; every window of a scope must have room for a prompt to pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Per user (the user the prompt is for).
    pub per_user: Vec<Window>,
    /// Per client address.
    pub per_client: Vec<Window>,
}

impl Default for Limits {
    /// 3 prompts in 5 minutes and 10 in an hour per user; 20 in 5 minutes per client
    /// address (the figures they are based on are in the README).
    fn default() -> Self {
        Limits {
            per_user: vec![
                Window {
                    max_prompts: 3,
                    window_secs: 300,
                },
                Window {
                    max_prompts: 10,
                    window_secs: 3600,
                },
            ],
            per_client: vec![Window {
                max_prompts: 20,
                window_secs: 300,
            }],
        }
    }
}

/// The fatigue signature: denied or unanswered prompts, then an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatigueSettings {
    /// Denied and unanswered prompts this recent count.
    pub window_secs: u64,
    /// Denied or unanswered prompts before an approval that mark the session.
    pub min_unanswered: u32,
    /// What the gate does with a marked session on a privileged route.
    pub action: FatigueAction,
    /// How long a mark holds, seconds.
    pub mark_ttl_secs: u64,
    /// The token claim whose value is the push user (digested with [`user_key`]).
    pub session_claim: String,
}

impl Default for FatigueSettings {
    fn default() -> Self {
        FatigueSettings {
            window_secs: DEFAULT_FATIGUE_WINDOW_SECS,
            min_unanswered: DEFAULT_MIN_UNANSWERED,
            action: FatigueAction::StepUp,
            mark_ttl_secs: DEFAULT_MARK_TTL_SECS,
            session_claim: "sub".to_string(),
        }
    }
}

/// What the gate does with a session approved under pressure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatigueAction {
    /// Step up to phishing-resistant authentication on privileged routes (the default).
    StepUp,
    /// Revoke the session (needs the revocation section).
    Revoke,
}

/// Where prompts are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counting {
    /// In shared data: all workers of one Envoy (the default).
    Local,
    /// Through Envoy's rate-limit service protocol: the whole fleet.
    Service(ServiceCounting),
}

/// The rate-limit service (`envoy.service.ratelimit.v3.RateLimitService`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCounting {
    /// The HTTP/2 cluster it is reached through.
    pub cluster: String,
    /// The rate-limit domain of the descriptors.
    pub domain: String,
    /// How long to wait for its answer, milliseconds.
    pub timeout_ms: u64,
    /// What happens when it does not answer in time or fails.
    pub on_unavailable: OnUnavailable,
}

/// What happens to a prompt when the rate-limit service is down or slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnavailable {
    /// Count it in shared data instead (the default).
    Local,
    /// Refuse the prompt (503).
    Deny,
    /// Let it through uncounted.
    Allow,
}

/// A step of a push endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Asks the provider to send a push: a prompt, counted.
    Initiate,
    /// Asks for a push's answer: never a prompt.
    Poll,
}

/// A request on a push endpoint, from its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    /// The index of the endpoint in [`PromptSettings::endpoints`].
    pub endpoint: usize,
    /// Which step.
    pub step: Step,
    /// Whether [`identify`] needs the request body (a form or JSON field is read).
    pub needs_body: bool,
}

/// Headers only (method, `:path`), before any body: is this a push endpoint request?
/// The path is matched as sent and, when an upstream could read it as another path, as it
/// would be served (`request::normalize_path`); literal segments ASCII case-insensitively
/// and one trailing `/` ignored, so a spelling the provider serves the same is the same
/// endpoint.
pub fn classify(settings: &PromptSettings, method: &[u8], path: &[u8]) -> Option<Matched> {
    let (path, _) = crate::request::split_target(path);
    let normalised = crate::request::ambiguous_path(path)
        .is_some()
        .then(|| crate::request::normalize_path(path));
    let paths = std::iter::once(path).chain(normalised.as_deref());
    for candidate in paths {
        for (index, endpoint) in settings.endpoints.iter().enumerate() {
            if endpoint.initiate.matches(method, candidate) {
                return Some(Matched {
                    endpoint: index,
                    step: Step::Initiate,
                    needs_body: endpoint.needs_body(Step::Initiate),
                });
            }
            if endpoint
                .poll
                .as_ref()
                .is_some_and(|p| p.matches(method, candidate))
            {
                return Some(Matched {
                    endpoint: index,
                    step: Step::Poll,
                    needs_body: endpoint.needs_body(Step::Poll),
                });
            }
        }
    }
    None
}

/// What a push endpoint request is about, from its headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identified {
    /// The index of the endpoint in [`PromptSettings::endpoints`].
    pub endpoint: usize,
    /// Which step ([`resolve`] may turn an initiate into a poll).
    pub step: Step,
    /// The step's conditions hold; `false`: not a push (e.g. `factor=passcode`), pass it
    /// untouched.
    pub is_prompt: bool,
    /// The user, from the step's sources (for a poll, [`resolve`] prefers the user its
    /// transaction was prompted for).
    pub user: Option<UserKey>,
    /// The transaction, from the request ([`transaction_key`] of its value).
    pub transaction: Option<[u8; 16]>,
}

/// Why a push endpoint request cannot be identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifyError {
    /// The body is over [`PromptSettings::max_body_bytes`] (the glue answers 413).
    BodyTooLarge,
    /// The request cannot be read safely (the glue answers 400 with this code):
    /// `push_body_unreadable` (not valid JSON or form, or a content type that is neither
    /// while a body field is needed), `push_field_repeated` (a field read here given twice
    /// with different values: the provider might read the other one).
    Unreadable(&'static str),
    /// An initiate whose user cannot be found (the glue answers 400).
    UserMissing,
}

impl IdentifyError {
    /// The stable reason code for records and replies.
    pub fn code(&self) -> &'static str {
        match self {
            IdentifyError::BodyTooLarge => "push_body_too_large",
            IdentifyError::Unreadable(code) => code,
            IdentifyError::UserMissing => "push_user_missing",
        }
    }
}

/// Identifies a classified request with its (complete, capped) request body; the body's
/// format comes from its content type (form or JSON).
pub fn identify(
    settings: &PromptSettings,
    matched: &Matched,
    headers: &dyn RequestView,
    body: &[u8],
) -> Result<Identified, IdentifyError> {
    if body.len() > settings.max_body_bytes {
        return Err(IdentifyError::BodyTooLarge);
    }
    let Some(endpoint) = settings.endpoints.get(matched.endpoint) else {
        return Err(IdentifyError::Unreadable("push_endpoint_unknown"));
    };
    let step = match matched.step {
        Step::Initiate => &endpoint.initiate,
        Step::Poll => endpoint.poll.as_ref().unwrap_or(&endpoint.initiate),
    };
    let fields = endpoint::Fields::new(headers, body, endpoint, matched.step)
        .map_err(IdentifyError::Unreadable)?;
    let is_prompt = match matched.step {
        Step::Initiate => fields
            .conditions_hold(&step.when)
            .map_err(IdentifyError::Unreadable)?,
        Step::Poll => false,
    };
    let user_sources = match matched.step {
        Step::Initiate => &endpoint.users,
        Step::Poll => endpoint.poll_users.as_ref().unwrap_or(&endpoint.users),
    };
    let user = fields
        .first(user_sources)
        .map_err(IdentifyError::Unreadable)?
        .map(|v| user_key(&v));
    let transaction = fields
        .first(&endpoint.transaction_request)
        .map_err(IdentifyError::Unreadable)?
        .map(|v| transaction_key(&v));
    if is_prompt && user.is_none() {
        return Err(IdentifyError::UserMissing);
    }
    Ok(Identified {
        endpoint: matched.endpoint,
        step: matched.step,
        is_prompt,
        user,
        transaction,
    })
}

/// Completes an identified request from the pending-transaction store:
/// - a poll whose transaction is known takes the user it was prompted for (a poll cannot
///   name another user), else keeps the user from its own sources;
/// - on an endpoint whose polls use the initiate path (Okta authn), an initiate whose
///   transaction is waiting for an answer is a poll, not a new prompt.
pub fn resolve<S: Store + ?Sized>(
    settings: &PromptSettings,
    mut identified: Identified,
    store: &S,
    now_secs: u64,
) -> Identified {
    let known = identified
        .transaction
        .and_then(|t| history::transaction(store, &t, now_secs));
    let polls_on_initiate = settings
        .endpoints
        .get(identified.endpoint)
        .is_some_and(|e| e.polls_on_initiate);
    if identified.step == Step::Initiate && polls_on_initiate {
        if let Some(known) = known.filter(|k| k.pending) {
            identified.step = Step::Poll;
            identified.is_prompt = false;
            identified.user = Some(known.user);
            return identified;
        }
    }
    if identified.step == Step::Poll {
        if let Some(known) = known {
            identified.user = Some(known.user);
        }
    }
    identified
}

/// A user, as kept and counted: a keyed digest of the normalised user value (ASCII
/// trimmed and lower-cased), never the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserKey(pub [u8; 16]);

impl UserKey {
    /// The digest in lower-case hex: what goes to the rate-limit service (never the raw
    /// user).
    pub fn hex(&self) -> String {
        hex(&self.0)
    }

    /// The first 8 hex characters (for records).
    pub fn short(&self) -> String {
        let mut h = self.hex();
        h.truncate(8);
        h
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// Domain-separation key of user digests (fixed: the gate digests a session claim's value
/// with the same function, so the two meet without configuration).
const USER_KEY: &[u8] = b"mfa-gate push user v1";
/// Domain-separation key of transaction digests.
const TRANSACTION_KEY: &[u8] = b"mfa-gate push transaction v1";
/// Domain-separation key of client address digests.
const CLIENT_KEY: &[u8] = b"mfa-gate push client v1";

/// The normalised form of a value: ASCII spaces trimmed, ASCII lower-cased.
fn normalised(value: &[u8]) -> Vec<u8> {
    value.trim_ascii().to_ascii_lowercase()
}

fn keyed(key: &[u8], value: &[u8]) -> [u8; 16] {
    let full = hmac_sha256::HMAC::mac(value, key);
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// The key of a push user: HMAC-SHA-256 (fixed key) of the value ASCII-trimmed and
/// lower-cased, truncated to 16 bytes. The SAME function the gate uses on the session
/// claim's value ([`FatigueSettings::session_claim`]).
pub fn user_key(value: &[u8]) -> UserKey {
    UserKey(keyed(USER_KEY, &normalised(value)))
}

/// The key of a provider transaction id (exact bytes, trimmed: ids are case-sensitive).
pub fn transaction_key(value: &[u8]) -> [u8; 16] {
    keyed(TRANSACTION_KEY, value.trim_ascii())
}

/// The key of a client address (its text, as the glue reads it).
pub fn client_key(address: &[u8]) -> [u8; 16] {
    keyed(CLIENT_KEY, &normalised(address))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

//! Metric names (one place; the README's metrics table lists them) and the structured
//! decision record logged once per gated request. The record never carries a token.

use crate::assurance::Level;
use crate::policy::{Decision, Mode};
use crate::reason::Reasons;
use crate::token::session::Session;
use std::borrow::Cow;
use std::rc::Rc;

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
/// Sessions read from Envoy jwt_authn's verified payload.
pub const JWT_AUTHN_PAYLOAD: &str = "mfa_gate.jwt_authn_payload";
/// JWKS fetches that produced a usable key set.
pub const JWKS_FETCH_SUCCESS: &str = "mfa_gate.jwks_fetch.success";
/// JWKS fetches that failed (status, timeout, reset, unparsable body); last good keys kept.
pub const JWKS_FETCH_FAILURE: &str = "mfa_gate.jwks_fetch.failure";
/// Refreshes triggered by a token naming an unknown `kid`.
pub const JWKS_UNKNOWN_KID_REFRESH: &str = "mfa_gate.jwks_fetch.unknown_kid_refresh";

/// Every fixed counter name, defined at start so they show at 0.
pub const FIXED_COUNTERS: [&str; 15] = [
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
    JWT_AUTHN_PAYLOAD,
    JWKS_FETCH_SUCCESS,
    JWKS_FETCH_FAILURE,
    JWKS_UNKNOWN_KID_REFRESH,
];

/// The counter for a decision, by mode.
pub fn decision_counter(decision: Decision, mode: Mode) -> &'static str {
    match (mode, decision) {
        (Mode::Enforce, Decision::Allow) => DECISION_ALLOW,
        (Mode::Enforce, Decision::StepUp) => DECISION_STEP_UP,
        (Mode::Enforce, Decision::Deny) => DECISION_DENY,
        (Mode::ReportOnly, Decision::Allow) => REPORT_ONLY_ALLOW,
        (Mode::ReportOnly, Decision::StepUp) => REPORT_ONLY_STEP_UP,
        (Mode::ReportOnly, Decision::Deny) => REPORT_ONLY_DENY,
    }
}

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

/// Whether a session came from the verified-session cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Found in the cache.
    Hit,
    /// Not in the cache: verified (or decoded) now.
    Miss,
}

impl CacheUse {
    /// `hit` or `miss`, as in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheUse::Hit => "hit",
            CacheUse::Miss => "miss",
        }
    }

    /// The record's `cache` member.
    fn record_member(self) -> &'static str {
        match self {
            CacheUse::Hit => r#","cache":"hit""#,
            CacheUse::Miss => r#","cache":"miss""#,
        }
    }

    /// The counter this use increments.
    pub fn counter(self) -> &'static str {
        match self {
            CacheUse::Hit => TOKEN_CACHE_HIT,
            CacheUse::Miss => TOKEN_CACHE_MISS,
        }
    }
}

/// One structured record per gated request, logged at info as JSON.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecisionRecord {
    /// `allow`, `step_up` or `deny`.
    pub decision: Option<Decision>,
    /// Whether the decision was enforced (`enforce`) or only reported (`report_only`).
    pub mode: Option<Mode>,
    /// HTTP status answered (0 when the request was passed on).
    pub status: u32,
    /// The rule that matched (`<unmatched>` when none).
    pub rule: Rc<str>,
    /// The matched rule's name already rendered as a JSON string (from configuration);
    /// when absent, `rule` is escaped as the record is written.
    pub rule_json: Option<Rc<str>>,
    /// The verified session: subject (`sub`), session id (`sid`), issuer, methods, level.
    pub session: Option<Rc<Session>>,
    /// The issuer, when a request was refused before a session was established.
    pub refused_issuer: Option<String>,
    /// Where the session came from: `bearer`, `cookie:<name>`, `header:<name>`, `jwt_authn`.
    /// A borrowed label must be one of mfa-gate's own words: it is written unescaped.
    pub source: Option<Cow<'static, str>>,
    /// `hit`, `miss` (verified now) or absent.
    pub cache: Option<CacheUse>,
    /// Level the rule requires.
    pub required_level: Option<Level>,
    /// Every reason, as stable codes with detail.
    pub reasons: Reasons,
    /// Seconds since `iat`.
    pub token_age_secs: Option<u64>,
    /// Seconds since `auth_time`.
    pub auth_age_secs: Option<u64>,
}

impl DecisionRecord {
    /// Verified subject (`sub`).
    pub fn subject(&self) -> Option<&str> {
        self.session.as_ref().and_then(|s| s.subject.as_deref())
    }

    /// Session id (`sid`), when the token has one.
    pub fn session_id(&self) -> Option<&str> {
        self.session.as_ref().and_then(|s| s.session_id.as_deref())
    }

    /// Issuer (`iss`), of the session or of the refused token.
    pub fn issuer(&self) -> Option<&str> {
        match &self.session {
            Some(s) => Some(&s.issuer),
            None => self.refused_issuer.as_deref(),
        }
    }

    /// Authentication methods found.
    pub fn methods(&self) -> &[String] {
        self.session
            .as_ref()
            .map_or(&[], |s| s.assurance.methods.as_slice())
    }

    /// Level found.
    pub fn level(&self) -> Option<Level> {
        self.session.as_ref().map(|s| s.level())
    }

    /// The record as one JSON object on one line (absent optional fields are left out).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write_json(&mut out);
        out
    }

    /// Appends the record's JSON object to `out`. Written by hand into one buffer, with
    /// the session's fields rendered once per session: this runs on every gated request.
    pub fn write_json(&self, out: &mut String) {
        let session_len = self.session.as_ref().map_or(0, |s| s.record_fields().len());
        out.reserve(200 + self.rule.len() + session_len + 64 * self.reasons.len());
        out.push_str(record_head(self.decision, self.mode));
        push_u64(out, u64::from(self.status));
        out.push_str(",\"rule\":");
        match &self.rule_json {
            Some(rendered) => out.push_str(rendered),
            None => json_str(out, &self.rule),
        }
        match &self.session {
            Some(session) => out.push_str(session.record_fields()),
            None => {
                json_field(out, "issuer", self.refused_issuer.as_deref());
                out.push_str(",\"methods\":[]");
            }
        }
        match &self.source {
            // Borrowed labels are mfa-gate's own words (`bearer`, `jwt_authn`, ...).
            Some(Cow::Borrowed(word)) => {
                out.push_str(",\"source\":");
                json_word(out, word);
            }
            Some(Cow::Owned(label)) => json_field(out, "source", Some(label)),
            None => {}
        }
        if let Some(cache) = self.cache {
            out.push_str(cache.record_member());
        }
        if let Some(level) = self.required_level {
            out.push_str(required_level_member(level));
        }
        out.push_str(",\"reasons\":");
        out.push('[');
        for (i, reason) in self.reasons.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            reason.write_json(out);
        }
        out.push(']');
        if let Some(age) = self.token_age_secs {
            out.push_str(",\"token_age_secs\":");
            push_u64(out, age);
        }
        if let Some(age) = self.auth_age_secs {
            out.push_str(",\"auth_age_secs\":");
            push_u64(out, age);
        }
        out.push('}');
    }
}

/// The record's opening members up to `"status":`, one static string per decision and mode.
fn record_head(decision: Option<Decision>, mode: Option<Mode>) -> &'static str {
    use Decision::{Allow, Deny, StepUp};
    use Mode::{Enforce, ReportOnly};
    match (decision, mode) {
        (Some(Allow), Some(Enforce)) => r#"{"decision":"allow","mode":"enforce","status":"#,
        (Some(StepUp), Some(Enforce)) => r#"{"decision":"step_up","mode":"enforce","status":"#,
        (Some(Deny), Some(Enforce)) => r#"{"decision":"deny","mode":"enforce","status":"#,
        (Some(Allow), Some(ReportOnly)) => r#"{"decision":"allow","mode":"report_only","status":"#,
        (Some(StepUp), Some(ReportOnly)) => {
            r#"{"decision":"step_up","mode":"report_only","status":"#
        }
        (Some(Deny), Some(ReportOnly)) => r#"{"decision":"deny","mode":"report_only","status":"#,
        (Some(Allow), None) => r#"{"decision":"allow","mode":null,"status":"#,
        (Some(StepUp), None) => r#"{"decision":"step_up","mode":null,"status":"#,
        (Some(Deny), None) => r#"{"decision":"deny","mode":null,"status":"#,
        (None, Some(Enforce)) => r#"{"decision":null,"mode":"enforce","status":"#,
        (None, Some(ReportOnly)) => r#"{"decision":null,"mode":"report_only","status":"#,
        (None, None) => r#"{"decision":null,"mode":null,"status":"#,
    }
}

/// The `required_level` member, one static string per level.
fn required_level_member(level: Level) -> &'static str {
    match level {
        Level::None => r#","required_level":"none""#,
        Level::Password => r#","required_level":"password""#,
        Level::Push => r#","required_level":"push""#,
        Level::PushNumberMatch => r#","required_level":"push_number_match""#,
        Level::Otp => r#","required_level":"otp""#,
        Level::PhishingResistant => r#","required_level":"phishing_resistant""#,
        Level::HardwareBoundPhishingResistant => {
            r#","required_level":"hardware_bound_phishing_resistant""#
        }
    }
}

/// `value` as a JSON string.
pub fn json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    json_str(&mut out, value);
    out
}

/// `,"name":"value"` when the value is present.
fn json_field(out: &mut String, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        out.push_str(",\"");
        out.push_str(name);
        out.push_str("\":");
        json_str(out, value);
    }
}

/// Appends `items` as a JSON array of strings.
pub fn json_str_array(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(out, item);
    }
    out.push(']');
}

/// Appends one of our own identifiers (`[a-z_]`, never client data) as a JSON string.
fn json_word(out: &mut String, word: &'static str) {
    out.push('"');
    out.push_str(word);
    out.push('"');
}

/// Bytes that JSON strings must escape: `"`, `\\`, control characters and DEL.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b < 0x20 || b == 0x7f || b == b'"' as usize || b == b'\\' as usize;
        b += 1;
    }
    table
};

/// Whether any byte must be escaped; eight bytes at a time, the tail padded with spaces
/// (this runs over every string of every record, and a byte-at-a-time loop costs ~20
/// instructions a byte in wasm).
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Exact as an "any" test: a false positive in one lane needs a true one below it.
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS != 0;
    let word_needs_escape = |x: u64| {
        x.wrapping_sub(ONES * 0x20) & !x & HIGHS != 0
            || has_zero(x ^ (ONES * u64::from(b'"')))
            || has_zero(x ^ (ONES * u64::from(b'\\')))
            || has_zero(x ^ (ONES * 0x7f))
    };
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if word_needs_escape(u64::from_le_bytes(word)) {
            return true;
        }
    }
    let tail = chunks.remainder();
    if tail.is_empty() {
        return false;
    }
    let mut word = [b' '; 8];
    word[..tail.len()].copy_from_slice(tail);
    word_needs_escape(u64::from_le_bytes(word))
}

/// Appends `value` as a JSON string (RFC 8259 escaping; non-ASCII UTF-8 is kept as is).
pub fn json_str(out: &mut String, value: &str) {
    out.push('"');
    if !needs_escape(value.as_bytes()) {
        out.push_str(value);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        if !NEEDS_ESCAPE[usize::from(b)] {
            continue;
        }
        out.push_str(value.get(start..i).unwrap_or_default());
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        start = i + 1;
    }
    out.push_str(value.get(start..).unwrap_or_default());
    out.push('"');
}

/// Appends a decimal number.
pub fn push_u64(out: &mut String, n: u64) {
    // Statuses, stream ids and ages are mostly under 1000: digit by digit, no buffer.
    if n < 1000 {
        let n = n as u32;
        if n >= 100 {
            out.push(char::from(b'0' + (n / 100) as u8));
        }
        if n >= 10 {
            out.push(char::from(b'0' + (n / 10 % 10) as u8));
        }
        out.push(char::from(b'0' + (n % 10) as u8));
        return;
    }
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    // Two digits per division, in 32-bit arithmetic once the value fits (ages, ids).
    let mut wide = n;
    while wide > u64::from(u32::MAX) {
        let pair = (wide % 100) as usize;
        wide /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair * 2..pair * 2 + 2]);
    }
    let mut narrow = wide as u32;
    while narrow >= 100 {
        let pair = (narrow % 100) as usize;
        narrow /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair * 2..pair * 2 + 2]);
    }
    if narrow >= 10 {
        let pair = narrow as usize;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair * 2..pair * 2 + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + narrow as u8;
    }
    out.reserve(digits.len() - at);
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// "00" to "99", two bytes each.
static DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        table[i * 2] = b'0' + (i / 10) as u8;
        table[i * 2 + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [
            0,
            7,
            10,
            99,
            100,
            101,
            1_000,
            65_536,
            1_700_000_000,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            10_000_000_000_000_000_000,
            u64::MAX,
        ] {
            let mut out = String::from("x");
            push_u64(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
    }

    #[test]
    fn reason_counters_are_sanitised() {
        assert_eq!(
            reason_counter("level_below_required:push<phishing_resistant"),
            "mfa_gate.reason.level_below_required"
        );
        assert_eq!(reason_counter("Bad.Name{x}"), "mfa_gate.reason._ad__ame_x_");
        assert!(reason_counter(&"a".repeat(500)).len() < 70);
    }

    #[test]
    fn record_json_is_valid_and_escaped() {
        let record = DecisionRecord {
            decision: Some(Decision::StepUp),
            mode: Some(Mode::ReportOnly),
            status: 401,
            rule: Rc::from("ad\"min"),
            session: Some(Rc::new(Session::new(
                crate::token::session::SessionFacts {
                    issuer_index: 0,
                    issuer: "https://idp".into(),
                    subject: Some("al\\ice\n\u{1}\u{7f}\t\rzoë".to_string()),
                    session_id: None,
                    assurance: crate::assurance::Assurance {
                        methods: vec!["pwd".to_string(), "swk".to_string()],
                        level: Level::Push,
                        unknown: Vec::new(),
                        auth_time: None,
                        auth_time_malformed: false,
                    },
                    issued_at: None,
                    expires_at: 1,
                },
                &crate::config::UpstreamHeaders::default(),
            ))),
            cache: Some(CacheUse::Hit),
            reasons: smallvec::smallvec![crate::reason::Reason::LevelBelowRequired {
                have: Level::Push,
                required: Level::PhishingResistant,
            }],
            token_age_secs: Some(10),
            ..DecisionRecord::default()
        };
        let json = record.to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["decision"], "step_up");
        assert_eq!(v["mode"], "report_only");
        assert_eq!(v["status"], 401);
        assert_eq!(v["rule"], "ad\"min");
        assert_eq!(v["subject"], "al\\ice\n\u{1}\u{7f}\t\rzoë");
        assert_eq!(v["cache"], "hit");
        assert_eq!(v["methods"], serde_json::json!(["pwd", "swk"]));
        assert_eq!(v["level"], "push");
        assert_eq!(v["token_age_secs"], 10);
        assert!(v.get("session_id").is_none() && v.get("auth_age_secs").is_none());
        assert!(!json.contains('\n'), "one line: {json}");
        let empty: serde_json::Value =
            serde_json::from_str(&DecisionRecord::default().to_json()).unwrap();
        assert_eq!(empty["decision"], serde_json::Value::Null);
        assert_eq!(empty["methods"], serde_json::json!([]));
        let refused = DecisionRecord {
            refused_issuer: Some("https://other".into()),
            source: Some(Cow::Borrowed("bearer")),
            ..DecisionRecord::default()
        };
        let v: serde_json::Value = serde_json::from_str(&refused.to_json()).unwrap();
        assert_eq!(v["issuer"], "https://other");
        assert_eq!(v["source"], "bearer");
    }

    #[test]
    fn escape_check_agrees_with_the_table_at_every_offset() {
        for special in 0u8..=255 {
            for len in [1usize, 7, 8, 9, 16, 17] {
                for at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    let expected = NEEDS_ESCAPE[usize::from(special)];
                    assert_eq!(
                        needs_escape(&bytes),
                        expected,
                        "byte {special:#x} at {at}/{len}"
                    );
                }
            }
        }
        assert!(!needs_escape("zoë ünïcode ☃ text".as_bytes()));
        assert!(!needs_escape(b""));
    }

    #[test]
    fn decision_counters_by_mode() {
        assert_eq!(
            decision_counter(Decision::StepUp, Mode::Enforce),
            DECISION_STEP_UP
        );
        assert_eq!(
            decision_counter(Decision::Deny, Mode::ReportOnly),
            REPORT_ONLY_DENY
        );
    }
}

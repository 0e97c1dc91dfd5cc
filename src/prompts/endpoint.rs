//! Push endpoints: how a provider's push-initiation and result-poll requests are matched
//! (method, a path pattern with `*` for one segment, conditions on fields), where the user
//! and the transaction are read from, and how the answer is read ([`OutcomeRule`]). The
//! presets ([`preset`]) expand `"provider": "duo" | "okta_factors" | "okta_authn"` to full
//! definitions.
//!
//! Reading is strict where a difference from the provider's reading would let a prompt
//! through uncounted: a field given twice with different values, or a JSON body with a
//! duplicate key, is refused (`push_field_repeated`, `push_body_unreadable`), never read
//! one way here and another way upstream; conditions compare ASCII case-insensitively.
//! Never panics on any request; never keeps a value it reads (the caller digests it).

use super::history::PromptOutcome;
use super::Step;
use crate::request::{header_values, percent_decode, split_target, RequestView};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::rc::Rc;

/// The most segments a path pattern has.
pub const MAX_PATTERN_SEGMENTS: usize = 32;

/// Where a field of a request is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSource {
    /// A field of an `application/x-www-form-urlencoded` body.
    Form(String),
    /// A JSON pointer (RFC 6901) into a JSON body (a string, number or boolean value).
    Json(String),
    /// The path's segment at this 1-based index (`/a/b`: 1 is `a`), percent-decoded.
    PathSegment(usize),
    /// A header (lower-case name), e.g. set by a trusted hop.
    Header(String),
    /// A query parameter.
    Query(String),
}

impl FieldSource {
    /// Whether reading it needs the request body.
    pub fn in_body(&self) -> bool {
        matches!(self, FieldSource::Form(_) | FieldSource::Json(_))
    }
}

/// What a condition asks of its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    /// Present and equal to one of these (ASCII case-insensitive, trimmed).
    OneOf(Vec<String>),
    /// Not present.
    Absent,
}

/// A condition on a request field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The field.
    pub field: FieldSource,
    /// What it must be.
    pub test: Test,
}

/// One segment of a path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Any,
}

/// A path pattern: literal segments and `*` for exactly one non-empty segment; the query
/// is never part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<Segment>,
    text: String,
}

impl PathPattern {
    /// Parses `/api/v1/users/*/factors/*/verify`; the reason otherwise.
    pub fn parse(pattern: &str) -> Result<PathPattern, &'static str> {
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err("must start with /");
        };
        if pattern.contains(['?', '#']) {
            return Err("must not have a query or fragment");
        }
        if pattern.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err("must not have spaces or control characters");
        }
        let segments: Vec<Segment> = rest
            .split('/')
            .map(|s| match s {
                "*" => Ok(Segment::Any),
                "" => Err("must not have empty segments"),
                s if s.contains('*') => Err("* must be a whole segment"),
                s => Ok(Segment::Literal(s.to_string())),
            })
            .collect::<Result<_, _>>()?;
        if segments.len() > MAX_PATTERN_SEGMENTS {
            return Err("has too many segments");
        }
        Ok(PathPattern {
            segments,
            text: pattern.to_string(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Whether the pattern is `/` alone (never: parse refuses it).
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Whether `path` (no query) matches: same number of segments (one trailing `/`
    /// ignored), literals equal ASCII case-insensitively, `*` any non-empty segment.
    pub fn matches(&self, path: &[u8]) -> bool {
        let Some(rest) = path.strip_prefix(b"/") else {
            return false;
        };
        let rest = rest.strip_suffix(b"/").unwrap_or(rest);
        let mut parts = rest.split(|&b| b == b'/');
        for segment in &self.segments {
            let Some(part) = parts.next() else {
                return false;
            };
            let fits = match segment {
                Segment::Any => !part.is_empty(),
                Segment::Literal(l) => part.eq_ignore_ascii_case(l.as_bytes()),
            };
            if !fits {
                return false;
            }
        }
        parts.next().is_none()
    }
}

/// How one step of an endpoint is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepMatch {
    /// Methods (upper-case); any of them.
    pub methods: Vec<String>,
    /// The path pattern.
    pub path: PathPattern,
    /// Conditions that all hold on a push (initiate only; e.g. Duo's `factor=push`).
    pub when: Vec<Condition>,
}

impl StepMatch {
    /// Whether a request with this method and path (no query) is this step.
    pub fn matches(&self, method: &[u8], path: &[u8]) -> bool {
        self.methods
            .iter()
            .any(|m| method.eq_ignore_ascii_case(m.as_bytes()))
            && self.path.matches(path)
    }
}

/// An answer rule: the value at `pointer` equals `equals` → `outcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeRule {
    /// A JSON pointer into the provider's answer.
    pub pointer: String,
    /// The value (a string; numbers and booleans compare by their JSON text).
    pub equals: String,
    /// What it means.
    pub outcome: PromptOutcome,
}

/// A push endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Its name (records, counters, the rate-limit descriptor).
    pub name: Rc<str>,
    /// The request that sends a push.
    pub initiate: StepMatch,
    /// The request that asks for a push's answer, if the provider has one apart.
    pub poll: Option<StepMatch>,
    /// Where the user is, tried in order (on an initiate; on a poll unless `poll_users`).
    pub users: Vec<FieldSource>,
    /// Where a poll carries the user, when not where the initiate does.
    pub poll_users: Option<Vec<FieldSource>>,
    /// Where a request carries the transaction id, tried in order.
    pub transaction_request: Vec<FieldSource>,
    /// Where the initiate's answer carries it (a JSON pointer; a URL's last segment).
    pub transaction_response: Option<String>,
    /// Answer rules, first match wins.
    pub outcomes: Vec<OutcomeRule>,
    /// Polls use the initiate request (Okta authn): an initiate whose transaction is
    /// waiting for an answer is a poll.
    pub polls_on_initiate: bool,
}

impl Endpoint {
    /// Whether identifying `step` reads the body.
    pub fn needs_body(&self, step: Step) -> bool {
        let (step_match, users) = match step {
            Step::Initiate => (&self.initiate, &self.users),
            Step::Poll => (
                self.poll.as_ref().unwrap_or(&self.initiate),
                self.poll_users.as_ref().unwrap_or(&self.users),
            ),
        };
        let conditions =
            step == Step::Initiate && step_match.when.iter().any(|c| c.field.in_body());
        conditions
            || users.iter().any(FieldSource::in_body)
            || self.transaction_request.iter().any(FieldSource::in_body)
    }
}

fn one_of(values: &[&str]) -> Test {
    Test::OneOf(values.iter().map(|v| v.to_string()).collect())
}

fn step(methods: &[&str], path: &str, when: Vec<Condition>) -> Option<StepMatch> {
    Some(StepMatch {
        methods: methods.iter().map(|m| m.to_string()).collect(),
        path: PathPattern::parse(path).ok()?,
        when,
    })
}

fn rule(pointer: &str, equals: &str, outcome: PromptOutcome) -> OutcomeRule {
    OutcomeRule {
        pointer: pointer.to_string(),
        equals: equals.to_string(),
        outcome,
    }
}

/// Okta's factor results (`factorResult`), as its verify and transaction answers carry
/// them.
fn okta_results() -> Vec<OutcomeRule> {
    vec![
        rule("/factorResult", "SUCCESS", PromptOutcome::Approved),
        rule("/factorResult", "REJECTED", PromptOutcome::Denied),
        rule("/factorResult", "TIMEOUT", PromptOutcome::Timeout),
        rule("/factorResult", "WAITING", PromptOutcome::Pending),
    ]
}

/// A verify request that carries an answer (`passCode`, `answer`) checks a code, not a
/// push.
fn okta_push_only() -> Vec<Condition> {
    ["/passCode", "/answer"]
        .iter()
        .map(|p| Condition {
            field: FieldSource::Json(p.to_string()),
            test: Test::Absent,
        })
        .collect()
}

/// The full definition of a provider preset named `provider` (`None`: unknown), for an
/// endpoint called `name`. `okta_authn` has no user source: the configuration gives one.
pub fn preset(provider: &str, name: &str) -> Option<Endpoint> {
    let name: Rc<str> = Rc::from(name);
    match provider {
        // Duo Auth API v2: POST /auth/v2/auth (form-encoded) with factor=push (or auto,
        // which pushes when the user has a push device); async mode answers a txid
        // polled on /auth/v2/auth_status?txid=…; results allow / deny / waiting, with
        // status "timeout" on a push left unanswered.
        "duo" => Some(Endpoint {
            name,
            initiate: step(
                &["POST"],
                "/auth/v2/auth",
                vec![Condition {
                    field: FieldSource::Form("factor".into()),
                    test: one_of(&["push", "auto"]),
                }],
            )?,
            poll: step(&["GET", "POST"], "/auth/v2/auth_status", Vec::new()),
            users: vec![
                FieldSource::Form("username".into()),
                FieldSource::Form("user_id".into()),
            ],
            poll_users: Some(Vec::new()),
            transaction_request: vec![
                FieldSource::Query("txid".into()),
                FieldSource::Form("txid".into()),
            ],
            transaction_response: Some("/response/txid".into()),
            outcomes: vec![
                rule("/response/result", "allow", PromptOutcome::Approved),
                rule("/response/status", "timeout", PromptOutcome::Timeout),
                rule("/response/result", "deny", PromptOutcome::Denied),
                rule("/response/result", "waiting", PromptOutcome::Pending),
            ],
            polls_on_initiate: false,
        }),
        // Okta Factors API: POST /api/v1/users/{userId}/factors/{factorId}/verify, polled
        // on …/transactions/{transactionId} (the verify answer's _links.poll.href).
        "okta_factors" => Some(Endpoint {
            name,
            initiate: step(
                &["POST"],
                "/api/v1/users/*/factors/*/verify",
                okta_push_only(),
            )?,
            poll: step(
                &["GET"],
                "/api/v1/users/*/factors/*/transactions/*",
                Vec::new(),
            ),
            users: vec![FieldSource::PathSegment(4)],
            poll_users: None,
            transaction_request: vec![FieldSource::PathSegment(8)],
            transaction_response: Some("/_links/poll/href".into()),
            outcomes: okta_results(),
            polls_on_initiate: false,
        }),
        // Okta Authentication API: POST /api/v1/authn/factors/{factorId}/verify with the
        // stateToken; the same request polls while the answer is WAITING, and the
        // transaction ends with status SUCCESS.
        "okta_authn" => {
            let mut outcomes = okta_results();
            outcomes.insert(1, rule("/status", "SUCCESS", PromptOutcome::Approved));
            Some(Endpoint {
                name,
                initiate: step(
                    &["POST"],
                    "/api/v1/authn/factors/*/verify",
                    okta_push_only(),
                )?,
                poll: None,
                users: Vec::new(),
                poll_users: None,
                transaction_request: vec![FieldSource::Json("/stateToken".into())],
                transaction_response: None,
                outcomes,
                polls_on_initiate: true,
            })
        }
        _ => None,
    }
}

/// The preset names, for error messages.
pub const PRESETS: [&str; 3] = ["duo", "okta_factors", "okta_authn"];

/// A request body, as far as fields are read from it.
enum Body<'a> {
    None,
    Form(&'a [u8]),
    Json(Value),
}

/// The fields of one request: headers, path segments, query and body.
pub(crate) struct Fields<'a> {
    headers: &'a dyn RequestView,
    path: Cow<'a, [u8]>,
    query: &'a [u8],
    body: Body<'a>,
}

const UNREADABLE: &str = "push_body_unreadable";
const REPEATED: &str = "push_field_repeated";

impl<'a> Fields<'a> {
    /// Reads what `step` of `endpoint` needs: the body is parsed (by its content type)
    /// only when a body field is read.
    pub(crate) fn new(
        headers: &'a dyn RequestView,
        body: &'a [u8],
        endpoint: &Endpoint,
        step: Step,
    ) -> Result<Fields<'a>, &'static str> {
        let step_match = match step {
            Step::Initiate => &endpoint.initiate,
            Step::Poll => endpoint.poll.as_ref().unwrap_or(&endpoint.initiate),
        };
        let target = headers.header(":path").unwrap_or_default();
        let (raw, query) = split_target(target);
        // The path segments are read from the reading that matched.
        let path = if step_match.path.matches(raw) {
            Cow::Borrowed(raw)
        } else {
            Cow::Owned(crate::request::normalize_path(raw))
        };
        let body = if body.is_empty() || !endpoint.needs_body(step) {
            Body::None
        } else {
            let content_type = headers
                .header("content-type")
                .unwrap_or_default()
                .trim_ascii()
                .to_ascii_lowercase();
            let media = content_type
                .split(|&b| b == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            if media == b"application/x-www-form-urlencoded" {
                Body::Form(body)
            } else if media == b"application/json" || media.ends_with(b"+json") {
                Body::Json(parse_json_strict(body).ok_or(UNREADABLE)?)
            } else {
                return Err(UNREADABLE);
            }
        };
        Ok(Fields {
            headers,
            path,
            query,
            body,
        })
    }

    /// The value of `source`, if present.
    pub(crate) fn read(&self, source: &FieldSource) -> Result<Option<Cow<'_, [u8]>>, &'static str> {
        match source {
            FieldSource::Form(name) => match &self.body {
                Body::Form(form) => pair_value(form, name),
                _ => Ok(None),
            },
            FieldSource::Query(name) => pair_value(self.query, name),
            FieldSource::Json(pointer) => match &self.body {
                Body::Json(value) => Ok(value.pointer(pointer).and_then(scalar_text)),
                _ => Ok(None),
            },
            FieldSource::PathSegment(index) => {
                let rest = self.path.strip_prefix(b"/").unwrap_or(&self.path);
                let segment = index
                    .checked_sub(1)
                    .and_then(|i| rest.split(|&b| b == b'/').nth(i))
                    .filter(|s| !s.is_empty());
                Ok(segment.map(decode_segment))
            }
            FieldSource::Header(name) => {
                let values = header_values(self.headers, name);
                let mut values = values.iter().map(|v| v.trim_ascii());
                let first = values.next();
                if let Some(first) = first {
                    if values.any(|v| v != first) {
                        return Err(REPEATED);
                    }
                }
                Ok(first.filter(|v| !v.is_empty()).map(Cow::Borrowed))
            }
        }
    }

    /// The first present value among `sources` (empty values are absent).
    pub(crate) fn first(&self, sources: &[FieldSource]) -> Result<Option<Vec<u8>>, &'static str> {
        for source in sources {
            if let Some(value) = self.read(source)? {
                if !value.trim_ascii().is_empty() {
                    return Ok(Some(value.into_owned()));
                }
            }
        }
        Ok(None)
    }

    /// Whether every condition holds.
    pub(crate) fn conditions_hold(&self, conditions: &[Condition]) -> Result<bool, &'static str> {
        for condition in conditions {
            let value = self.read(&condition.field)?;
            let holds = match (&condition.test, value) {
                (Test::Absent, value) => value.is_none(),
                (Test::OneOf(_), None) => false,
                (Test::OneOf(wanted), Some(value)) => {
                    let value = value.trim_ascii();
                    wanted
                        .iter()
                        .any(|w| value.eq_ignore_ascii_case(w.as_bytes()))
                }
            };
            if !holds {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The value of `name` among `a=1&b=2` pairs (names and values percent-decoded); a name
/// given twice with different values is refused.
fn pair_value<'b>(pairs: &'b [u8], name: &str) -> Result<Option<Cow<'b, [u8]>>, &'static str> {
    let mut found: Option<Cow<'b, [u8]>> = None;
    for pair in pairs.split(|&b| b == b'&') {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &b""[..]),
        };
        if *percent_decode(key) != *name.as_bytes() {
            continue;
        }
        let value = percent_decode(value);
        match &found {
            Some(seen) if **seen != *value => return Err(REPEATED),
            Some(_) => {}
            None => found = Some(value),
        }
    }
    Ok(found)
}

/// A path segment with `%XX` escapes decoded (`+` stays: it is not a space in a path).
fn decode_segment(segment: &[u8]) -> Cow<'_, [u8]> {
    if !segment.contains(&b'%') {
        return Cow::Borrowed(segment);
    }
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(segment.len());
    let mut i = 0;
    while i < segment.len() {
        let escape = (segment[i] == b'%')
            .then(|| Some((hex(*segment.get(i + 1)?)?, hex(*segment.get(i + 2)?)?)))
            .flatten();
        match escape {
            Some((hi, lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(0));
                i += 3;
            }
            None => {
                out.push(segment[i]);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// A JSON scalar as text: strings as they are, numbers and booleans as JSON writes them.
pub(crate) fn scalar_text(value: &Value) -> Option<Cow<'_, [u8]>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s.as_bytes())),
        Value::Number(n) => Some(Cow::Owned(n.to_string().into_bytes())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { b"true" } else { b"false" })),
        _ => None,
    }
}

/// Parses JSON, refusing an object with a key given twice (serde_json keeps the last;
/// another parser may keep the first). serde_json bounds the nesting depth.
pub(crate) fn parse_json_strict(bytes: &[u8]) -> Option<Value> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize_from(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(value)
}

struct StrictValue;

impl StrictValue {
    fn deserialize_from<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictSeed;

impl<'de> de::DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize_from(d)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON without duplicate keys")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrictSeed)?;
            if object.insert(key, value).is_some() {
                return Err(de::Error::custom("duplicate key"));
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_one_segment_per_star_and_ignore_case_and_a_trailing_slash() {
        let p = PathPattern::parse("/api/v1/users/*/factors/*/verify").unwrap();
        assert_eq!(p.len(), 7);
        assert!(p.matches(b"/api/v1/users/00u1/factors/opf2/verify"));
        assert!(p.matches(b"/API/v1/users/00u1/factors/opf2/Verify/"));
        assert!(!p.matches(b"/api/v1/users//factors/opf2/verify"));
        assert!(!p.matches(b"/api/v1/users/a/b/factors/opf2/verify"));
        assert!(!p.matches(b"/api/v1/users/a/factors/opf2/verify/resend"));
        assert!(!p.matches(b"api/v1/users/a/factors/b/verify"));
        assert!(!p.matches(b""));
        for bad in ["", "auth", "/a//b", "/a/b*", "/a?x=1", "/a b", "/"] {
            assert!(PathPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn strict_json_refuses_duplicate_keys_and_trailing_garbage() {
        assert!(parse_json_strict(br#"{"a":1,"b":{"c":[1,2,{"d":true}]}}"#).is_some());
        assert!(parse_json_strict(br#"{"a":1,"a":2}"#).is_none());
        assert!(parse_json_strict(br#"{"x":{"a":1,"a":1}}"#).is_none());
        assert!(parse_json_strict(br#"{"a":1} x"#).is_none());
        assert!(parse_json_strict(b"\xff\xfe").is_none());
        let deep = "[".repeat(10_000);
        assert!(parse_json_strict(deep.as_bytes()).is_none());
    }

    #[test]
    fn form_pairs_are_decoded_and_repeats_refused() {
        let form = b"username=Jane%40Example.com&factor=push&x";
        assert_eq!(
            pair_value(form, "username").unwrap().as_deref(),
            Some(&b"Jane@Example.com"[..])
        );
        assert_eq!(pair_value(form, "x").unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(pair_value(form, "none").unwrap(), None);
        assert_eq!(
            pair_value(b"factor=passcode&factor=push", "factor"),
            Err(REPEATED)
        );
        assert_eq!(
            pair_value(b"factor=push&f%61ctor=push", "factor")
                .unwrap()
                .as_deref(),
            Some(&b"push"[..])
        );
    }

    #[test]
    fn path_segments_are_percent_decoded() {
        assert_eq!(&*decode_segment(b"jane%40example.com"), b"jane@example.com");
        assert_eq!(&*decode_segment(b"a+b%zz%4"), b"a+b%zz%4");
    }

    #[test]
    fn presets_expand_and_unknown_names_do_not() {
        for name in PRESETS {
            let e = preset(name, "x").unwrap();
            assert_eq!(&*e.name, "x");
            assert!(!e.outcomes.is_empty());
        }
        assert!(preset("duo2", "x").is_none());
        let duo = preset("duo", "duo").unwrap();
        assert!(duo.needs_body(Step::Initiate));
        assert!(
            duo.needs_body(Step::Poll),
            "a POST poll carries txid in its form"
        );
        let okta = preset("okta_factors", "okta").unwrap();
        assert!(
            okta.needs_body(Step::Initiate),
            "passCode tells OTP from push"
        );
        assert!(!okta.needs_body(Step::Poll));
    }
}

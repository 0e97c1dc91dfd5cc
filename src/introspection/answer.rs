//! The strict parser of an RFC 7662 §2.2 introspection answer: a JSON object whose
//! `active` is a boolean. An active answer is checked against the issuer asking (`exp`
//! numeric if present, `iss` equal to the issuer if present, `aud` a string or a list of
//! strings meeting the issuer's audiences if present) and becomes the session's claims,
//! with the configured amr/acr members renamed to `amr`/`acr`. Anything else is refused
//! with a typed [`AnswerError`] (the glue then treats the endpoint as unavailable).

use super::Fields;
use crate::claims::Claims;
use serde_json::Value;

/// The largest answer body read, bytes.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What the authorization server said about a token.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Active: its claims (the answer's members but `active`).
    Active(Active),
    /// Not active (revoked, expired, unknown, or not for this client to see).
    Inactive,
}

/// An active answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Active {
    /// The claims the session is built from (`iss` set to the issuer when absent).
    pub claims: Claims,
    /// The token's expiry, when the answer gives one.
    pub exp: Option<u64>,
}

/// Why an answer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerError {
    /// Over [`MAX_ANSWER_BYTES`].
    TooLarge,
    /// Not JSON.
    NotJson,
    /// JSON, but not an object.
    NotObject,
    /// No `active` member.
    MissingActive,
    /// `active` is not a boolean.
    ActiveNotBoolean,
    /// `exp` is not a non-negative number.
    BadExp,
    /// `iss` is not the issuer asking.
    WrongIssuer,
    /// `aud` is not a string or a list of strings.
    BadAudience,
    /// `aud` names none of the issuer's audiences.
    WrongAudience,
}

impl AnswerError {
    /// A short code for logs.
    pub fn code(self) -> &'static str {
        match self {
            AnswerError::TooLarge => "too_large",
            AnswerError::NotJson => "not_json",
            AnswerError::NotObject => "not_an_object",
            AnswerError::MissingActive => "missing_active",
            AnswerError::ActiveNotBoolean => "active_not_boolean",
            AnswerError::BadExp => "bad_exp",
            AnswerError::WrongIssuer => "wrong_issuer",
            AnswerError::BadAudience => "bad_aud",
            AnswerError::WrongAudience => "wrong_audience",
        }
    }
}

/// What an active answer must agree with.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The introspecting issuer's `iss`.
    pub issuer: &'a str,
    /// Its audiences (empty: any).
    pub audiences: &'a [String],
    /// Where amr/acr are read from.
    pub fields: &'a Fields,
}

/// Parses an answer body.
pub fn parse(body: &[u8], expect: &Expect<'_>) -> Result<Answer, AnswerError> {
    if body.len() > MAX_ANSWER_BYTES {
        return Err(AnswerError::TooLarge);
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| AnswerError::NotJson)?;
    let Value::Object(mut object) = value else {
        return Err(AnswerError::NotObject);
    };
    match object.remove("active") {
        None => return Err(AnswerError::MissingActive),
        Some(Value::Bool(false)) => return Ok(Answer::Inactive),
        Some(Value::Bool(true)) => {}
        Some(_) => return Err(AnswerError::ActiveNotBoolean),
    }
    let exp = match object.get("exp") {
        None => None,
        Some(v) => Some(seconds(v).ok_or(AnswerError::BadExp)?),
    };
    match object.get("iss") {
        None => {
            object.insert("iss".to_string(), Value::String(expect.issuer.to_string()));
        }
        Some(Value::String(iss)) if iss == expect.issuer => {}
        Some(_) => return Err(AnswerError::WrongIssuer),
    }
    if let Some(aud) = object.get("aud") {
        let named: Vec<&str> = match aud {
            Value::String(a) => vec![a.as_str()],
            Value::Array(list) => list
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<_>>>()
                .ok_or(AnswerError::BadAudience)?,
            _ => return Err(AnswerError::BadAudience),
        };
        let meets = expect.audiences.is_empty()
            || named
                .iter()
                .any(|a| expect.audiences.iter().any(|want| want == a));
        if !meets {
            return Err(AnswerError::WrongAudience);
        }
    }
    rename(&mut object, &expect.fields.amr, "amr");
    rename(&mut object, &expect.fields.acr, "acr");
    Ok(Answer::Active(Active {
        claims: object,
        exp,
    }))
}

/// Moves member `from` to `to` (a configured field standing for `amr`/`acr`); the
/// answer's own `to` is replaced by it, or dropped when `from` is absent, so only the
/// configured member is read.
fn rename(object: &mut Claims, from: &str, to: &str) {
    if from == to {
        return;
    }
    match object.remove(from) {
        Some(value) => {
            object.insert(to.to_string(), value);
        }
        None => {
            object.remove(to);
        }
    }
}

/// A non-negative number of seconds (fractions dropped).
fn seconds(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| *f >= 0.0 && f.is_finite())
            .map(|f| f as u64)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const ISS: &str = "https://idp.example";

    fn parse_with(
        body: &str,
        audiences: &[String],
        fields: &Fields,
    ) -> Result<Answer, AnswerError> {
        let expect = Expect {
            issuer: ISS,
            audiences,
            fields,
        };
        parse(body.as_bytes(), &expect)
    }

    fn parse_str(body: &str) -> Result<Answer, AnswerError> {
        parse_with(body, &["api".to_string()], &Fields::default())
    }

    #[test]
    fn an_active_answer_becomes_claims() {
        let Answer::Active(active) = parse_str(
            r#"{"active":true,"sub":"alice","amr":["hwk"],"exp":2000000000,"aud":["x","api"]}"#,
        )
        .unwrap() else {
            panic!("active");
        };
        assert_eq!(active.exp, Some(2_000_000_000));
        assert_eq!(active.claims.get("iss").unwrap(), ISS, "iss filled in");
        assert_eq!(active.claims.get("sub").unwrap(), "alice");
        assert!(active.claims.get("active").is_none());
        let a = parse_str(r#"{"active":true,"iss":"https://idp.example","aud":"api"}"#);
        assert!(matches!(a, Ok(Answer::Active(Active { exp: None, .. }))));
    }

    #[test]
    fn an_inactive_answer_needs_nothing_else() {
        assert_eq!(parse_str(r#"{"active":false}"#), Ok(Answer::Inactive));
        assert_eq!(
            parse_str(r#"{"active":false,"iss":"other","exp":"x"}"#),
            Ok(Answer::Inactive)
        );
    }

    #[test]
    fn every_refusal() {
        let cases = [
            ("", AnswerError::NotJson),
            ("{", AnswerError::NotJson),
            ("[]", AnswerError::NotObject),
            ("true", AnswerError::NotObject),
            (r#"{"sub":"a"}"#, AnswerError::MissingActive),
            (r#"{"active":"true"}"#, AnswerError::ActiveNotBoolean),
            (r#"{"active":1}"#, AnswerError::ActiveNotBoolean),
            (r#"{"active":true,"exp":"soon"}"#, AnswerError::BadExp),
            (r#"{"active":true,"exp":-5}"#, AnswerError::BadExp),
            (
                r#"{"active":true,"iss":"https://evil"}"#,
                AnswerError::WrongIssuer,
            ),
            (r#"{"active":true,"iss":7}"#, AnswerError::WrongIssuer),
            (r#"{"active":true,"aud":5}"#, AnswerError::BadAudience),
            (
                r#"{"active":true,"aud":["api",5]}"#,
                AnswerError::BadAudience,
            ),
            (
                r#"{"active":true,"aud":"other"}"#,
                AnswerError::WrongAudience,
            ),
            (r#"{"active":true,"aud":[]}"#, AnswerError::WrongAudience),
        ];
        for (body, want) in cases {
            assert_eq!(parse_str(body), Err(want), "{body}");
        }
        let big = format!(
            r#"{{"active":true,"pad":"{}"}}"#,
            "x".repeat(MAX_ANSWER_BYTES)
        );
        assert_eq!(parse_str(&big), Err(AnswerError::TooLarge));
    }

    #[test]
    fn any_audience_when_the_issuer_lists_none() {
        let a = parse_with(
            r#"{"active":true,"aud":"whatever"}"#,
            &[],
            &Fields::default(),
        );
        assert!(matches!(a, Ok(Answer::Active(_))));
    }

    #[test]
    fn configured_fields_stand_for_amr_and_acr() {
        let fields = Fields {
            amr: "auth_methods".into(),
            acr: "level".into(),
        };
        let Ok(Answer::Active(active)) = parse_with(
            r#"{"active":true,"auth_methods":["pwd","otp"],"amr":["hwk"],"acr":"forged"}"#,
            &[],
            &fields,
        ) else {
            panic!("active");
        };
        assert_eq!(
            active.claims.get("amr").unwrap(),
            &serde_json::json!(["pwd", "otp"])
        );
        assert!(
            active.claims.get("acr").is_none(),
            "only the configured member counts"
        );
        assert!(active.claims.get("auth_methods").is_none());
    }
}

//! Why a request got its decision. Reasons are kept structured (levels, ages, codes) and
//! rendered as stable snake_case codes with detail, e.g. `level_satisfied:push>=push` or
//! `auth_too_old:1200s>900s`, only where they are shown: the decision record, the
//! per-reason counters, replies and the CLI. The code before any `:` never carries client
//! data, so it can name a counter.

use crate::assurance::{with_level_names, Level};
use crate::json::{json_str, push_i32, push_u64};
use crate::metrics::reason_counter;
use serde::{Serialize, Serializer};
use std::fmt;

/// A verdict's reasons, in order. Up to three (level, age, one unknown value) are held
/// inline: a request's verdict allocates nothing.
pub type Reasons = smallvec::SmallVec<[Reason; 3]>;

/// One fact behind a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The matched rule requires nothing.
    PublicRoute,
    /// No rule matched and unmatched routes are denied.
    UnmatchedRoute,
    /// A valid session on a route no rule covers (`unmatched: require_valid_token`).
    ValidTokenUnmatchedRoute,
    /// The session's level meets the rule's.
    LevelSatisfied { have: Level, required: Level },
    /// The session's level is below the rule's.
    LevelBelowRequired { have: Level, required: Level },
    /// The token has no `auth_time`: its `iat` stood in for the authentication time.
    AuthAgeFromIat,
    /// Neither `auth_time` nor `iat`: the authentication age cannot be checked.
    AuthAgeUnknown,
    /// Authenticated longer ago than the rule allows (seconds).
    AuthTooOld { age: u64, max: u64 },
    /// Authenticated recently enough (seconds).
    AuthAgeOk { age: u64, max: u64 },
    /// `auth_time` is present but unreadable: the authentication age is unknown.
    AuthTimeMalformed,
    /// `auth_time` (or `iat` standing in) lies further ahead than the clock skew.
    AuthTimeInFuture,
    /// The path can be read as another one by the upstream (`double_slash`, ...).
    AmbiguousPath(&'static str),
    /// The authority or a forwarded host is not a plain `host[:port]` (`userinfo`, ...).
    InvalidHost(&'static str),
    /// A claim value nobody knows, as the classifier listed it (`amr:foo`): client data.
    Unknown(String),
    /// The located credential cannot be a token (`empty_credential`, ...).
    MalformedCredential(&'static str),
    /// Refused before any policy applied: `missing_token`, `expired`, `unknown_issuer`, ...
    Refused(&'static str),
    /// The risk score reached a threshold (points).
    RiskScore { score: i32, threshold: i32 },
    /// The risk score is below every threshold (the lowest one, when any is set).
    RiskScoreBelow { score: i32, threshold: Option<i32> },
    /// A risk step-up for a session already at the level a step-up asks for: denied, since
    /// signing in again cannot lower the score.
    StepUpCannotHelp,
}

impl Reason {
    /// The stable code, without detail: what the per-reason counter is named after.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::PublicRoute => "public_route",
            Reason::UnmatchedRoute => "unmatched_route",
            Reason::ValidTokenUnmatchedRoute => "valid_token_unmatched_route",
            Reason::LevelSatisfied { .. } => "level_satisfied",
            Reason::LevelBelowRequired { .. } => "level_below_required",
            Reason::AuthAgeFromIat => "auth_age_from_iat",
            Reason::AuthAgeUnknown => "auth_age_unknown",
            Reason::AuthTooOld { .. } => "auth_too_old",
            Reason::AuthAgeOk { .. } => "auth_age_ok",
            Reason::AuthTimeMalformed => "auth_time_malformed",
            Reason::AuthTimeInFuture => "auth_time_in_future",
            Reason::AmbiguousPath(_) => "ambiguous_path",
            Reason::InvalidHost(_) => "invalid_host",
            Reason::Unknown(_) => "unknown",
            Reason::MalformedCredential(_) => "malformed_credential",
            Reason::Refused(code) => code,
            Reason::RiskScore { .. } => "risk_score",
            Reason::RiskScoreBelow { .. } => "risk_score_ok",
            Reason::StepUpCannotHelp => "step_up_cannot_help",
        }
    }

    /// The per-reason counter (`mfa_gate.reason.<code>`; an unknown value counts under
    /// the claim it came from, `unknown_amr`), sanitised so a token can never mint names.
    pub fn counter(&self) -> String {
        match self {
            Reason::Unknown(entry) => reason_counter(&format!("unknown_{entry}")),
            other => reason_counter(other.code()),
        }
    }

    /// Appends the rendered reason.
    fn render(&self, out: &mut String) {
        match self {
            Reason::LevelSatisfied { have, required } => {
                level_detail(out, &LEVEL_SATISFIED, *have, *required)
            }
            Reason::LevelBelowRequired { have, required } => {
                level_detail(out, &LEVEL_BELOW_REQUIRED, *have, *required)
            }
            Reason::AuthTooOld { age, max } => age_detail(out, "auth_too_old:", *age, ">", *max),
            Reason::AuthAgeOk { age, max } => age_detail(out, "auth_age_ok:", *age, "<=", *max),
            Reason::Unknown(entry) => {
                out.push_str("unknown_");
                out.push_str(entry);
            }
            Reason::MalformedCredential(detail) => {
                out.push_str("malformed_credential:");
                out.push_str(detail);
            }
            Reason::AmbiguousPath(kind) => {
                out.push_str("ambiguous_path:");
                out.push_str(kind);
            }
            Reason::InvalidHost(kind) => {
                out.push_str("invalid_host:");
                out.push_str(kind);
            }
            Reason::RiskScore { score, threshold } => {
                out.push_str("risk_score:");
                push_i32(out, *score);
                out.push_str(">=");
                push_i32(out, *threshold);
            }
            Reason::RiskScoreBelow { score, threshold } => {
                out.push_str("risk_score_ok:");
                push_i32(out, *score);
                if let Some(threshold) = threshold {
                    out.push('<');
                    push_i32(out, *threshold);
                }
            }
            other => out.push_str(other.code()),
        }
    }

    /// Appends the reason as a JSON string. Only [`Reason::Unknown`] holds client data
    /// and goes through escaping; the rest are our own words and numbers.
    pub fn write_json(&self, out: &mut String) {
        if let Reason::Unknown(_) = self {
            json_str(out, &self.to_string());
            return;
        }
        out.push('"');
        self.render(out);
        out.push('"');
    }
}

/// Every level comparison rendered once, at compile time, indexed `[have][required]`:
/// one copy per reason instead of four (each a `memory.copy` call in wasm), from
/// [`with_level_names`]'s list.
macro_rules! level_table {
    (@rows $code:literal, $relation:literal, $names:tt) => {
        level_table!(@each $code, $relation, $names, $names)
    };
    (@each $code:literal, $relation:literal, [$($have:literal),*], $required:tt) => {
        [$(level_table!(@row $code, $have, $relation, $required)),*]
    };
    (@row $code:literal, $have:literal, $relation:literal, [$($required:literal),*]) => {
        [$(concat!($code, $have, $relation, $required)),*]
    };
}

/// Rendered level comparisons, `[have][required]`.
type LevelTable = [[&'static str; Level::ALL.len()]; Level::ALL.len()];

static LEVEL_SATISFIED: LevelTable =
    with_level_names!(level_table!(@rows "level_satisfied:", ">=",));
static LEVEL_BELOW_REQUIRED: LevelTable =
    with_level_names!(level_table!(@rows "level_below_required:", "<",));

fn level_detail(out: &mut String, table: &LevelTable, have: Level, required: Level) {
    let rendered = table
        .get(have as usize)
        .and_then(|row| row.get(required as usize));
    out.push_str(rendered.copied().unwrap_or_default());
}

fn age_detail(out: &mut String, code: &str, age: u64, relation: &str, max: u64) {
    out.push_str(code);
    push_u64(out, age);
    out.push('s');
    out.push_str(relation);
    push_u64(out, max);
    out.push('s');
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        self.render(&mut text);
        f.write_str(&text)
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        let mut text = String::new();
        self.render(&mut text);
        text == *other
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn level_tables_follow_level_names_and_order() {
        for have in Level::ALL {
            for required in Level::ALL {
                let satisfied = Reason::LevelSatisfied { have, required }.to_string();
                let below = Reason::LevelBelowRequired { have, required }.to_string();
                assert_eq!(
                    satisfied,
                    format!("level_satisfied:{}>={}", have.as_str(), required.as_str())
                );
                assert_eq!(
                    below,
                    format!(
                        "level_below_required:{}<{}",
                        have.as_str(),
                        required.as_str()
                    )
                );
            }
        }
    }

    #[test]
    fn renders_stable_codes_with_detail() {
        let cases = [
            (Reason::PublicRoute, "public_route"),
            (
                Reason::LevelSatisfied {
                    have: Level::PhishingResistant,
                    required: Level::Push,
                },
                "level_satisfied:phishing_resistant>=push",
            ),
            (
                Reason::LevelBelowRequired {
                    have: Level::Push,
                    required: Level::PhishingResistant,
                },
                "level_below_required:push<phishing_resistant",
            ),
            (
                Reason::AuthTooOld {
                    age: 1200,
                    max: 900,
                },
                "auth_too_old:1200s>900s",
            ),
            (Reason::AuthAgeOk { age: 0, max: 60 }, "auth_age_ok:0s<=60s"),
            (Reason::Unknown("amr:foo".into()), "unknown_amr:foo"),
            (
                Reason::MalformedCredential("empty_credential"),
                "malformed_credential:empty_credential",
            ),
            (Reason::Refused("expired"), "expired"),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
            assert_eq!(reason, text);
            let mut json = String::new();
            reason.write_json(&mut json);
            assert_eq!(
                serde_json::from_str::<String>(&json).unwrap(),
                text,
                "{json}"
            );
            assert_eq!(serde_json::to_string(&reason).unwrap(), json);
            assert!(text.starts_with(reason.code()));
        }
    }

    #[test]
    fn client_data_is_escaped_and_kept_out_of_counter_names() {
        let reason = Reason::Unknown("amr:\"x\"\n\\".into());
        let mut json = String::new();
        reason.write_json(&mut json);
        assert_eq!(json, r#""unknown_amr:\"x\"\n\\""#);
        assert_eq!(reason.counter(), "mfa_gate.reason.unknown_amr");
        let hostile = Reason::Unknown("Acr.Values{}:x".into());
        assert_eq!(hostile.counter(), "mfa_gate.reason.unknown__cr__alues__");
        assert_eq!(
            Reason::MalformedCredential("empty_credential").counter(),
            "mfa_gate.reason.malformed_credential"
        );
    }
}

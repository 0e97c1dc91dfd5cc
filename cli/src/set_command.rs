//! `mfa-gate set`: mint a test Security Event Token (or a back-channel logout token) with a
//! key from `mfa-gate keygen`, print it, and optionally POST it to a receiver: an RFC 8935
//! push (SET) or a Back-Channel Logout 1.0 section 2.5 request (logout token). For tests
//! only, like `mfa-gate token`.

use crate::demo::users::{AUDIENCE, ISSUER};
use crate::error::{read_text, CliError, CliResult};
use crate::http_client;
use crate::keys::{self, SigningKey};
use crate::security_event::{
    self, EventDetails, LogoutContent, SetContent, SimpleSubject, Subject, LOGOUT_EVENT_NAME,
};
use crate::usage;
use crate::{number, value};
use std::process::ExitCode;
use std::time::Duration;

/// The environment variable `--bearer` falls back to.
pub const BEARER_ENV: &str = "MFA_GATE_PUSH_BEARER";

/// How long the receiver may take to answer.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Options {
    key: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    event: Option<String>,
    iss: Option<String>,
    aud: Vec<String>,
    iss_sub: Option<String>,
    sub_iss: Option<String>,
    email: Option<String>,
    opaque: Option<String>,
    session: Option<String>,
    complex: bool,
    jti: Option<String>,
    iat: Option<u64>,
    txn: Option<String>,
    details: EventDetails,
    push: Option<String>,
    bearer: Option<String>,
}

/// `--member NAME=VALUE`: VALUE as JSON when it parses, else as a string.
fn member(text: &str) -> CliResult<(String, serde_json::Value)> {
    let (name, raw) = text
        .split_once('=')
        .ok_or_else(|| CliError::new(format!("--member {text}: expected NAME=VALUE")))?;
    let parsed = serde_json::from_str(raw).unwrap_or_else(|_| raw.into());
    Ok((name.to_string(), parsed))
}

fn parse(parser: &mut lexopt::Parser) -> CliResult<Option<Options>> {
    let mut o = Options::default();
    while let Some(arg) = parser.next()? {
        match arg {
            lexopt::Arg::Long("key") => o.key = Some(value(parser)?),
            lexopt::Arg::Long("kid") => o.kid = Some(value(parser)?),
            lexopt::Arg::Long("alg") => o.alg = Some(value(parser)?),
            lexopt::Arg::Long("event") => o.event = Some(value(parser)?),
            lexopt::Arg::Long("iss") => o.iss = Some(value(parser)?),
            lexopt::Arg::Long("aud") => o.aud.push(value(parser)?),
            lexopt::Arg::Long("iss-sub") => o.iss_sub = Some(value(parser)?),
            lexopt::Arg::Long("sub-iss") => o.sub_iss = Some(value(parser)?),
            lexopt::Arg::Long("email") => o.email = Some(value(parser)?),
            lexopt::Arg::Long("opaque") => o.opaque = Some(value(parser)?),
            lexopt::Arg::Long("session") => o.session = Some(value(parser)?),
            lexopt::Arg::Long("complex") => o.complex = true,
            lexopt::Arg::Long("jti") => o.jti = Some(value(parser)?),
            lexopt::Arg::Long("iat") => o.iat = Some(number(parser, "--iat")?),
            lexopt::Arg::Long("txn") => o.txn = Some(value(parser)?),
            lexopt::Arg::Long("event-timestamp") => {
                o.details.event_timestamp = Some(number(parser, "--event-timestamp")?)
            }
            lexopt::Arg::Long("initiating-entity") => {
                o.details.initiating_entity = Some(value(parser)?)
            }
            lexopt::Arg::Long("reason-admin") => o.details.reason_admin = Some(value(parser)?),
            lexopt::Arg::Long("reason-user") => o.details.reason_user = Some(value(parser)?),
            lexopt::Arg::Long("member") => {
                let (name, v) = member(&value(parser)?)?;
                o.details.members.insert(name, v);
            }
            lexopt::Arg::Long("push") => o.push = Some(value(parser)?),
            lexopt::Arg::Long("bearer") => o.bearer = Some(value(parser)?),
            arg if usage::is_help(&arg) => return Ok(None),
            other => return Err(other.unexpected().into()),
        }
    }
    Ok(Some(o))
}

/// The user part of the subject, from `--iss-sub`, `--email` or `--opaque` (at most one).
fn user_subject(o: &Options, iss: &str) -> CliResult<Option<SimpleSubject>> {
    let given = [&o.iss_sub, &o.email, &o.opaque]
        .iter()
        .filter(|v| v.is_some())
        .count();
    if given > 1 {
        return Err(CliError::new(
            "give one of --iss-sub, --email and --opaque (the user; --session adds the session)",
        ));
    }
    Ok(if let Some(sub) = &o.iss_sub {
        Some(SimpleSubject::IssSub {
            iss: o.sub_iss.clone().unwrap_or_else(|| iss.to_string()),
            sub: sub.clone(),
        })
    } else if let Some(email) = &o.email {
        Some(SimpleSubject::Email(email.clone()))
    } else {
        o.opaque.clone().map(SimpleSubject::Opaque)
    })
}

fn mint(o: &Options, key: &SigningKey) -> CliResult<String> {
    let event = o
        .event
        .as_deref()
        .ok_or_else(|| CliError::new("set needs --event (see --help for the names)"))?;
    let iss = o.iss.clone().unwrap_or_else(|| ISSUER.to_string());
    let audience = if o.aud.is_empty() {
        vec![AUDIENCE.to_string()]
    } else {
        o.aud.clone()
    };
    let issued_at = o.iat.unwrap_or_else(keys::now_secs);
    let jti = o.jti.clone().unwrap_or_else(security_event::random_id);
    if event == LOGOUT_EVENT_NAME {
        if o.email.is_some() || o.opaque.is_some() {
            return Err(CliError::new(
                "a logout token names its user with --iss-sub (its sub claim), not --email or --opaque",
            ));
        }
        return security_event::sign_logout(
            key,
            &LogoutContent {
                issuer: iss,
                audience,
                issued_at,
                jti,
                subject: o.iss_sub.clone(),
                session: o.session.clone(),
            },
        );
    }
    let event = security_event::event_type(event)?;
    let user = user_subject(o, &iss)?;
    let session = o.session.clone().map(SimpleSubject::Opaque);
    let subject = match (user, session, o.complex) {
        (Some(user), None, false) => Subject::Simple(user),
        (None, None, _) => {
            return Err(CliError::new(
                "set needs a subject: --iss-sub, --email or --opaque, and/or --session",
            ))
        }
        (user, session, _) => Subject::Complex { user, session },
    };
    security_event::sign_set(
        key,
        &SetContent {
            issuer: iss,
            audience,
            issued_at,
            jti,
            txn: o.txn.clone(),
            subject,
            event,
            details: o.details.clone(),
        },
    )
}

/// `mfa-gate set --key KEY --event E (subject) [--push URL [--bearer T]] ...`.
pub fn run(parser: &mut lexopt::Parser) -> CliResult<ExitCode> {
    let Some(o) = parse(parser)? else {
        return Ok(usage::SET.print());
    };
    let key_path = o
        .key
        .clone()
        .ok_or_else(|| CliError::new("set needs --key KEY (a private JWK from keygen, or PEM)"))?;
    let key = SigningKey::load(&read_text(&key_path)?, o.alg.as_deref(), o.kid.as_deref())
        .map_err(|e| CliError::new(format!("{key_path}: {e}")))?;
    let token = mint(&o, &key)?;
    println!("{token}");
    let Some(url) = o.push.as_deref() else {
        return Ok(ExitCode::SUCCESS);
    };
    let logout = o.event.as_deref() == Some(LOGOUT_EVENT_NAME);
    let (headers, body, accepted): (Vec<(&str, String)>, Vec<u8>, &[u16]) = if logout {
        // Back-Channel Logout 1.0 section 2.5: a form POST; section 2.8: 200 (or 204).
        let body = format!(
            "logout_token={}",
            form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
        );
        let headers = vec![(
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        )];
        (headers, body.into_bytes(), &[200, 204])
    } else {
        // RFC 8935 section 2: the SET is the body; section 2.2: 202 on success.
        let mut headers = vec![
            (
                "content-type",
                crate::demo::transmitter::SET_MEDIA_TYPE.to_string(),
            ),
            ("accept", "application/json".to_string()),
        ];
        let bearer = o.bearer.clone().or_else(|| std::env::var(BEARER_ENV).ok());
        if let Some(bearer) = bearer.filter(|b| !b.is_empty()) {
            headers.push(("authorization", format!("Bearer {bearer}")));
        }
        (headers, token.clone().into_bytes(), &[202])
    };
    let answer = http_client::post_blocking(url, &headers, body, PUSH_TIMEOUT)?;
    println!("HTTP {}", answer.status);
    if !answer.body.is_empty() {
        println!("{}", answer.body.trim_end());
    }
    if accepted.contains(&answer.status) {
        Ok(ExitCode::SUCCESS)
    } else {
        let expected: Vec<String> = accepted.iter().map(u16::to_string).collect();
        Err(CliError::new(format!(
            "{url} answered {} (expected {})",
            answer.status,
            expected.join(" or ")
        )))
    }
}

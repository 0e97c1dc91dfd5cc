//! `mfa-gate`: check a plugin configuration, explain a decision, mint test tokens and
//! Security Event Tokens, and run the demo identity provider (a Shared Signals transmitter
//! too) and app. Answers come from the filter's own pure modules.

mod check;
mod config_source;
mod demo;
mod error;
mod explain;
mod hcm_lint;
mod http_client;
mod keys;
mod security_event;
mod set_command;
mod token;
mod usage;

use error::{CliError, CliResult};
use lexopt::ValueExt;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mfa-gate: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run() -> CliResult<ExitCode> {
    let mut parser = lexopt::Parser::from_env();
    let command = match parser.next()? {
        Some(lexopt::Arg::Value(v)) => v.string()?,
        Some(arg) if usage::is_help(&arg) => {
            print!("{}", usage::top_level());
            return Ok(ExitCode::SUCCESS);
        }
        Some(lexopt::Arg::Long("version")) | Some(lexopt::Arg::Short('V')) => {
            println!("mfa-gate {}", mfa_gate::VERSION);
            return Ok(ExitCode::SUCCESS);
        }
        Some(other) => return Err(other.unexpected().into()),
        None => {
            eprint!("{}", usage::top_level());
            return Err(CliError::new(format!(
                "missing command ({})",
                usage::names()
            )));
        }
    };
    match command.as_str() {
        "check" => check::run(&mut parser),
        "explain" => explain::run(&mut parser),
        "token" => token::run_token(&mut parser),
        "keygen" => token::run_keygen(&mut parser),
        "set" => set_command::run(&mut parser),
        "demo" => run_demo(&mut parser),
        "help" => {
            let subcommand = match parser.next()? {
                Some(lexopt::Arg::Value(v)) => Some(v.string()?),
                Some(other) => return Err(other.unexpected().into()),
                None => None,
            };
            usage::help_command(subcommand.as_deref())
        }
        other => Err(usage::unknown_command(other)),
    }
}

/// The value of an option, as a UTF-8 string.
pub(crate) fn value(parser: &mut lexopt::Parser) -> CliResult<String> {
    Ok(parser.value()?.string()?)
}

/// The value of an option parsed as a number, naming the option on error.
pub(crate) fn number<T: std::str::FromStr>(
    parser: &mut lexopt::Parser,
    option: &str,
) -> CliResult<T> {
    let text = value(parser)?;
    text.parse()
        .map_err(|_| CliError::new(format!("{option}: \"{text}\" is not a valid number")))
}

/// A credential from its option, else from the environment variable `env`; empty is refused.
fn credential(given: Option<String>, option: &str, env: &str) -> CliResult<Option<String>> {
    match given.or_else(|| std::env::var(env).ok()) {
        Some(c) if c.trim().is_empty() => Err(CliError::new(format!(
            "{option} (or {env}) is empty: give a credential or leave it out"
        ))),
        other => Ok(other),
    }
}

fn run_demo(parser: &mut lexopt::Parser) -> CliResult<ExitCode> {
    let mut ports = demo::DemoPorts::default();
    let mut signals = demo::transmitter::SignalsConfig::default();
    let (mut streams, mut poll_bearer, mut push_bearer, mut okta_token) =
        (Vec::new(), None, None, None);
    let mut print_json = false;
    let (mut client_secret, mut client_key) = (None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            lexopt::Arg::Long("proxy-port") => ports.proxy = number(parser, "--proxy-port")?,
            lexopt::Arg::Long("idp-port") => ports.idp = number(parser, "--idp-port")?,
            lexopt::Arg::Long("app-port") => ports.app = number(parser, "--app-port")?,
            lexopt::Arg::Long("print-json") => print_json = true,
            lexopt::Arg::Long("ssf-bearer") => poll_bearer = Some(value(parser)?),
            lexopt::Arg::Long("ssf-stream") => {
                let name = value(parser)?;
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
                if !valid {
                    return Err(CliError::new(format!(
                        "--ssf-stream \"{name}\": use letters, digits and - . _ ~ (it is a URL path segment)"
                    )));
                }
                streams.push(name);
            }
            lexopt::Arg::Long("ssf-queue") => signals.queue_max = number(parser, "--ssf-queue")?,
            lexopt::Arg::Long("ssf-long-poll") => {
                signals.long_poll =
                    std::time::Duration::from_secs(number(parser, "--ssf-long-poll")?)
            }
            lexopt::Arg::Long("ssf-aud") => signals.audience = value(parser)?,
            lexopt::Arg::Long("ssf-push-url") => signals.push_url = Some(value(parser)?),
            lexopt::Arg::Long("ssf-push-bearer") => push_bearer = Some(value(parser)?),
            lexopt::Arg::Long("backchannel-logout-url") => {
                signals.logout_url = Some(value(parser)?)
            }
            lexopt::Arg::Long("okta-api-token") => okta_token = Some(value(parser)?),
            lexopt::Arg::Long("client-secret") => client_secret = Some(value(parser)?),
            lexopt::Arg::Long("client-key-pem") => {
                let path = value(parser)?;
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    CliError::new(format!("--client-key-pem {path}: {}", error::io_reason(&e)))
                })?;
                client_key = Some(text);
            }
            arg if usage::is_help(&arg) => return Ok(usage::DEMO.print()),
            other => return Err(other.unexpected().into()),
        }
    }
    if !streams.is_empty() {
        signals.streams = streams;
    }
    if signals.queue_max == 0 {
        return Err(CliError::new("--ssf-queue must be at least 1"));
    }
    signals.poll_bearer = credential(poll_bearer, "--ssf-bearer", "MFA_GATE_SSF_BEARER")?;
    signals.push_bearer = credential(push_bearer, "--ssf-push-bearer", "MFA_GATE_SSF_PUSH_BEARER")?;
    signals.okta_api_token = credential(okta_token, "--okta-api-token", "MFA_GATE_OKTA_API_TOKEN")?;
    let client = demo::oidc::ClientSettings {
        secret: credential(client_secret, "--client-secret", "MFA_GATE_CLIENT_SECRET")?
            .unwrap_or_else(|| demo::oidc::DEFAULT_CLIENT_SECRET.to_string()),
        key_pem: client_key,
    };
    demo::run(ports, signals, client, print_json)?;
    Ok(ExitCode::SUCCESS)
}

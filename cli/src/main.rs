//! `mfa-gate`: check a plugin configuration, explain a decision, mint test tokens, and run
//! the demo identity provider and app. Answers come from the filter's own pure modules.

mod check;
mod config_source;
mod demo;
mod error;
mod explain;
mod hcm_lint;
mod keys;
mod token;

use error::{CliError, CliResult};
use lexopt::ValueExt;
use std::process::ExitCode;

const USAGE: &str = "\
mfa-gate — keep push-MFA sessions off privileged routes (CLI for the mfa-gate Envoy filter)

Usage:
  mfa-gate check CONFIG...
      Validate a configuration exactly as the filter's on_configure does. CONFIG is a JSON
      configuration, an Envoy YAML (the envoy.filters.http.wasm filter's StringValue), an
      Istio WasmPlugin or an Envoy Gateway EnvoyExtensionPolicy. Exit 0 when valid, 1 if not.

  mfa-gate explain --config CONFIG (--token TOKEN | --claims FILE) --method M --path P
                   [--host H] [--header 'Name: value']... [--jwks FILE] [--now UNIX] [--json]
      The decision the filter makes for this request: methods and level found, the rule
      matched, each reason, and the answer sent. --claims takes unsigned claims (JSON) and
      skips signature checks; --jwks gives keys for issuers configured with remote_jwks.

  mfa-gate token --key KEY --claims FILE [--kid K] [--alg A] [--exp-in SECS]
      Mint a signed test token (KEY: a private JWK or PEM file). Adds iat and exp when absent.
      For tests and demos only — not for production.

  mfa-gate keygen [--alg ES256] [--kid K] --out KEY.json
      Generate a private JWK for `token` and print the public JWKS (for the configuration).

  mfa-gate demo [--proxy-port 10000] [--idp-port 10001] [--app-port 10002] [--print-json]
      Run the demo identity provider and upstream app on 127.0.0.1 and print curl lines
      with the answers to expect (scripts/run-demo.sh starts the proxy beside it).

  mfa-gate --version | --help
";

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
        Some(lexopt::Arg::Long("help")) | Some(lexopt::Arg::Short('h')) => {
            print!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        Some(lexopt::Arg::Long("version")) | Some(lexopt::Arg::Short('V')) => {
            println!("mfa-gate {}", mfa_gate::VERSION);
            return Ok(ExitCode::SUCCESS);
        }
        Some(other) => return Err(other.unexpected().into()),
        None => {
            eprint!("{USAGE}");
            return Err(CliError::new(
                "missing command (check, explain, token, keygen or demo)",
            ));
        }
    };
    match command.as_str() {
        "check" => check::run(&mut parser),
        "explain" => explain::run(&mut parser),
        "token" => token::run_token(&mut parser),
        "keygen" => token::run_keygen(&mut parser),
        "demo" => run_demo(&mut parser),
        "help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(CliError::new(format!(
            "unknown command \"{other}\" (expected check, explain, token, keygen or demo; see --help)"
        ))),
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

fn run_demo(parser: &mut lexopt::Parser) -> CliResult<ExitCode> {
    let mut ports = demo::DemoPorts::default();
    let mut print_json = false;
    while let Some(arg) = parser.next()? {
        match arg {
            lexopt::Arg::Long("proxy-port") => ports.proxy = number(parser, "--proxy-port")?,
            lexopt::Arg::Long("idp-port") => ports.idp = number(parser, "--idp-port")?,
            lexopt::Arg::Long("app-port") => ports.app = number(parser, "--app-port")?,
            lexopt::Arg::Long("print-json") => print_json = true,
            other => return Err(other.unexpected().into()),
        }
    }
    demo::run(ports, print_json)?;
    Ok(ExitCode::SUCCESS)
}

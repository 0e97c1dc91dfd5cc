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

fn run_demo(parser: &mut lexopt::Parser) -> CliResult<ExitCode> {
    let mut ports = demo::DemoPorts::default();
    let mut print_json = false;
    while let Some(arg) = parser.next()? {
        match arg {
            lexopt::Arg::Long("proxy-port") => ports.proxy = number(parser, "--proxy-port")?,
            lexopt::Arg::Long("idp-port") => ports.idp = number(parser, "--idp-port")?,
            lexopt::Arg::Long("app-port") => ports.app = number(parser, "--app-port")?,
            lexopt::Arg::Long("print-json") => print_json = true,
            arg if usage::is_help(&arg) => return Ok(usage::DEMO.print()),
            other => return Err(other.unexpected().into()),
        }
    }
    demo::run(ports, print_json)?;
    Ok(ExitCode::SUCCESS)
}

//! `mfa-gate token` (mint a signed test token) and `mfa-gate keygen` (make a test key).

use crate::error::{read_text, CliError, CliResult};
use crate::keys::{self, SigningKey};
use crate::usage;
use crate::{number, value};
use std::process::ExitCode;

/// `mfa-gate token --key KEY --claims FILE [--kid K] [--alg A] [--exp-in SECS]`.
pub fn run_token(parser: &mut lexopt::Parser) -> CliResult<ExitCode> {
    let (mut key_path, mut claims_path, mut kid, mut alg, mut exp_in) =
        (None, None, None, None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            lexopt::Arg::Long("key") => key_path = Some(value(parser)?),
            lexopt::Arg::Long("claims") => claims_path = Some(value(parser)?),
            lexopt::Arg::Long("kid") => kid = Some(value(parser)?),
            lexopt::Arg::Long("alg") => alg = Some(value(parser)?),
            lexopt::Arg::Long("exp-in") => exp_in = Some(number::<u64>(parser, "--exp-in")?),
            arg if usage::is_help(&arg) => return Ok(usage::TOKEN.print()),
            other => return Err(other.unexpected().into()),
        }
    }
    let key_path = key_path
        .ok_or_else(|| CliError::new("token needs --key KEY (a private JWK or PEM file)"))?;
    let claims_path =
        claims_path.ok_or_else(|| CliError::new("token needs --claims FILE (a JSON object)"))?;
    let key_text = read_text(&key_path)?;
    let key = SigningKey::load(&key_text, alg.as_deref(), kid.as_deref())
        .map_err(|e| CliError::new(format!("{key_path}: {e}")))?;
    let claims_text = read_text(&claims_path)?;
    let mut claims = match serde_json::from_str::<serde_json::Value>(&claims_text) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => {
            return Err(CliError::new(format!(
                "{claims_path}: the claims must be a JSON object"
            )))
        }
        Err(e) => return Err(CliError::new(format!("{claims_path}: not valid JSON: {e}"))),
    };
    keys::fill_time_claims(&mut claims, keys::now_secs(), exp_in);
    let token = key.sign(&claims)?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// `mfa-gate keygen [--alg A] [--kid K] --out FILE`.
pub fn run_keygen(parser: &mut lexopt::Parser) -> CliResult<ExitCode> {
    let (mut alg, mut kid, mut out) = ("ES256".to_string(), None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            lexopt::Arg::Long("alg") => alg = value(parser)?,
            lexopt::Arg::Long("kid") => kid = Some(value(parser)?),
            lexopt::Arg::Long("out") => out = Some(value(parser)?),
            arg if usage::is_help(&arg) => return Ok(usage::KEYGEN.print()),
            other => return Err(other.unexpected().into()),
        }
    }
    let out = out
        .ok_or_else(|| CliError::new("keygen needs --out FILE (where to write the private JWK)"))?;
    let kid = kid.unwrap_or_else(|| format!("test-{}", keys::now_secs()));
    let key = SigningKey::generate(&alg, &kid)?;
    let private = key.private_jwk()?;
    write_private(&out, &private)?;
    eprintln!(
        "mfa-gate: wrote the private {alg} key to {out} (a test key: never use it in production)"
    );
    match key.hmac_secret_base64() {
        Some(secret) => {
            eprintln!("mfa-gate: configure it as the issuer's \"hmac_secret_base64\":");
            println!("{secret}");
        }
        None => {
            eprintln!("mfa-gate: public JWKS for the issuer's \"jwks\":");
            let jwks = keys::jwks(&[&key])?;
            println!(
                "{}",
                serde_json::to_string_pretty(&jwks).unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_private(path: &str, text: &str) -> CliResult<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        CliError::new(format!(
            "cannot write {path}: {}",
            crate::error::io_reason(&e)
        ))
    })?;
    file.write_all(format!("{text}\n").as_bytes()).map_err(|e| {
        CliError::new(format!(
            "cannot write {path}: {}",
            crate::error::io_reason(&e)
        ))
    })
}

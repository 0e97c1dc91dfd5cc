//! `mfa-gate explain`: the decision the filter makes for one request, through the same
//! pure engine (`mfa_gate::engine::evaluate`), as a table or as JSON.

use crate::config_source;
use crate::error::{read_file, read_text, CliError, CliResult};
use crate::keys::now_secs;
use crate::usage;
use crate::{number, value};
use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Decoder};
use mfa_gate::claims::Claims;
use mfa_gate::config::Config;
use mfa_gate::engine::{self, ClaimsInput, Evaluation, Need, Outcome, SessionCache};
use mfa_gate::extract::TokenSource;
use mfa_gate::jwks::KeySet;
use mfa_gate::signals::location::{Coordinates, CoordinatesSource, Place};
use mfa_gate::signals::revocation::{
    self, Effect, Entry, IdentifierKind, Lifetime, LocalCopy, Source,
};
use mfa_gate::signals::{places, sightings};
use mfa_gate::store::MemoryStore;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::process::ExitCode;

/// Parsed `explain` options.
#[derive(Default)]
struct Options {
    config: Option<String>,
    token: Option<String>,
    claims: Option<String>,
    method: Option<String>,
    path: Option<String>,
    host: Option<String>,
    headers: Vec<(String, String)>,
    jwks: Option<String>,
    revoked: Option<String>,
    now: Option<u64>,
    json: bool,
    /// Envoy connection properties (the mTLS client certificate), by path.
    properties: Vec<(&'static [&'static str], Vec<u8>)>,
    /// Earlier sightings of the subject: (country, coordinates, seconds ago).
    last_seen: Vec<Sighting>,
}

const DIGEST_PROPERTY: [&str; 2] = ["connection", "sha256_peer_certificate_digest"];
const MTLS_PROPERTY: [&str; 2] = ["connection", "mtls"];
const URI_SAN_PROPERTY: [&str; 2] = ["connection", "uri_san_peer_certificate"];
const DNS_SAN_PROPERTY: [&str; 2] = ["connection", "dns_san_peer_certificate"];
const SUBJECT_PROPERTY: [&str; 2] = ["connection", "subject_peer_certificate"];

/// An earlier sighting given on the command line: country, coordinates, seconds ago.
type Sighting = (String, Option<(f64, f64)>, u64);

/// `--last-seen COUNTRY[,LAT,LON],SECONDS_AGO`: an earlier sighting of the subject.
fn parse_last_seen(text: &str) -> CliResult<Sighting> {
    let bad = || {
        CliError::new(format!(
            "--last-seen \"{text}\": expected COUNTRY,SECONDS_AGO or COUNTRY,LAT,LON,SECONDS_AGO (e.g. FR,48.86,2.35,3600)"
        ))
    };
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let (country, coordinates, ago) = match parts.as_slice() {
        [country, ago] => (*country, None, *ago),
        [country, lat, lon, ago] => {
            let lat: f64 = lat.parse().map_err(|_| bad())?;
            let lon: f64 = lon.parse().map_err(|_| bad())?;
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                return Err(bad());
            }
            (*country, Some((lat, lon)), *ago)
        }
        _ => return Err(bad()),
    };
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(bad());
    }
    let ago: u64 = ago.parse().map_err(|_| bad())?;
    Ok((country.to_ascii_uppercase(), coordinates, ago))
}

/// The request as the engine reads it: headers, and the connection properties given.
struct ExplainedRequest {
    headers: Vec<(String, Vec<u8>)>,
    properties: Vec<(&'static [&'static str], Vec<u8>)>,
}

impl mfa_gate::request::RequestHeaders for ExplainedRequest {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.header(name)
    }

    fn each_header<'s>(&'s self, visit: &mut dyn FnMut(&'s [u8], &'s [u8])) {
        self.headers.each_header(visit);
    }
}

impl mfa_gate::request::RequestView for ExplainedRequest {
    fn property(&self, path: &[&str]) -> Option<std::borrow::Cow<'_, [u8]>> {
        (self.properties.iter())
            .rev()
            .find(|(p, _)| *p == path)
            .map(|(_, v)| std::borrow::Cow::Borrowed(v.as_slice()))
    }
}

/// The options, or None when help was asked for.
fn parse_options(parser: &mut lexopt::Parser) -> CliResult<Option<Options>> {
    let mut o = Options::default();
    while let Some(arg) = parser.next()? {
        match arg {
            lexopt::Arg::Long("config") => o.config = Some(value(parser)?),
            lexopt::Arg::Long("token") => o.token = Some(value(parser)?),
            lexopt::Arg::Long("claims") => o.claims = Some(value(parser)?),
            lexopt::Arg::Long("method") => o.method = Some(value(parser)?),
            lexopt::Arg::Long("path") => o.path = Some(value(parser)?),
            lexopt::Arg::Long("host") => o.host = Some(value(parser)?),
            lexopt::Arg::Long("header") | lexopt::Arg::Short('H') => {
                let text = value(parser)?;
                let (name, val) = text.split_once(':').ok_or_else(|| {
                    CliError::new(format!("--header \"{text}\": expected \"Name: value\""))
                })?;
                let name = name.trim().to_ascii_lowercase();
                if name.is_empty() {
                    return Err(CliError::new(format!(
                        "--header \"{text}\": empty header name"
                    )));
                }
                o.headers.push((name, val.trim().to_string()));
            }
            lexopt::Arg::Long("jwks") => o.jwks = Some(value(parser)?),
            lexopt::Arg::Long("revoked") => o.revoked = Some(value(parser)?),
            lexopt::Arg::Long("now") => o.now = Some(number(parser, "--now")?),
            lexopt::Arg::Long("client-cert-digest") => {
                let digest = value(parser)?;
                o.properties.push((&DIGEST_PROPERTY, digest.into_bytes()));
                o.properties.push((&MTLS_PROPERTY, b"true".to_vec()));
            }
            lexopt::Arg::Long("client-cert-uri-san") => {
                o.properties
                    .push((&URI_SAN_PROPERTY, value(parser)?.into_bytes()));
                o.properties.push((&MTLS_PROPERTY, b"true".to_vec()));
            }
            lexopt::Arg::Long("client-cert-dns-san") => {
                o.properties
                    .push((&DNS_SAN_PROPERTY, value(parser)?.into_bytes()));
                o.properties.push((&MTLS_PROPERTY, b"true".to_vec()));
            }
            lexopt::Arg::Long("client-cert-subject") => {
                o.properties
                    .push((&SUBJECT_PROPERTY, value(parser)?.into_bytes()));
                o.properties.push((&MTLS_PROPERTY, b"true".to_vec()));
            }
            lexopt::Arg::Long("last-seen") => o.last_seen.push(parse_last_seen(&value(parser)?)?),
            lexopt::Arg::Long("json") => o.json = true,
            arg if usage::is_help(&arg) => return Ok(None),
            other => return Err(other.unexpected().into()),
        }
    }
    Ok(Some(o))
}

/// Loads and checks the configuration (the first one in the file).
fn load_config(path: &str) -> CliResult<Config> {
    let found = config_source::load(path)?;
    let first = found
        .into_iter()
        .next()
        .ok_or_else(|| CliError::new(format!("{path}: no configuration found")))?;
    let bytes = first
        .json
        .map_err(|m| CliError::new(format!("{path}: {m}")))?;
    mfa_gate::config::parse(&bytes).map_err(|errors| {
        let first = errors
            .0
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        let more = errors.0.len().saturating_sub(1);
        let tail = if more > 0 {
            format!(" (and {more} more: run `mfa-gate check {path}`)")
        } else {
            String::new()
        };
        CliError::new(format!("{path}: invalid configuration: {first}{tail}"))
    })
}

/// Decodes a compact JWS's payload without verifying it: only to reject malformed input
/// early with a clear message (verification is the engine's job).
fn decode_unverified(token: &str) -> CliResult<Claims> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(CliError::new(format!(
            "malformed token: expected three dot-separated parts (header.payload.signature), found {}",
            parts.len()
        )));
    }
    let decode = |part: &str, what: &str| -> CliResult<Value> {
        let bytes = Base64UrlSafeNoPadding::decode_to_vec(part.as_bytes(), None)
            .map_err(|_| CliError::new(format!("malformed token: the {what} is not base64url")))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| CliError::new(format!("malformed token: the {what} is not JSON")))
    };
    decode(parts[0], "header")?;
    match decode(parts[1], "payload")? {
        Value::Object(map) => Ok(map),
        _ => Err(CliError::new(
            "malformed token: the payload is not a JSON object",
        )),
    }
}

fn read_claims(path: &str) -> CliResult<Claims> {
    let text = read_text(path)?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(CliError::new(format!(
            "{path}: the claims must be a JSON object"
        ))),
        Err(e) => Err(CliError::new(format!("{path}: not valid JSON: {e}"))),
    }
}

/// Keys per issuer: inline keys, else the `--jwks` file, plus any HMAC secret.
fn key_sets(config: &Config, jwks: Option<&KeySet>) -> Vec<Option<KeySet>> {
    (config.issuers.iter())
        .map(|issuer| issuer.initial_keys(jwks))
        .collect()
}

/// Runs `explain`.
pub fn run(parser: &mut lexopt::Parser) -> CliResult<ExitCode> {
    let Some(o) = parse_options(parser)? else {
        return Ok(usage::EXPLAIN.print());
    };
    let config_path = o
        .config
        .as_deref()
        .ok_or_else(|| CliError::new("explain needs --config CONFIG"))?;
    let method = o
        .method
        .clone()
        .ok_or_else(|| CliError::new("explain needs --method M (e.g. GET)"))?;
    let path = o
        .path
        .clone()
        .ok_or_else(|| CliError::new("explain needs --path P (e.g. /admin)"))?;
    if !path.starts_with('/') {
        return Err(CliError::new(format!(
            "--path \"{path}\": must start with /"
        )));
    }
    let mut config = load_config(config_path)?;
    let now = o.now.unwrap_or_else(now_secs);
    if let Some(sign_in) = config.sign_in.as_mut() {
        // The filter's secrets live in Envoy's environment: explain shows the same redirect
        // (state cookie, nonce, PKCE) under a throwaway state key, and never exchanges a code.
        let mut state_key = [0_u8; 32];
        for chunk in state_key.chunks_mut(16) {
            let random = mfa_gate::sign_in::fresh_random()
                .ok_or_else(|| CliError::new("no randomness for the sign-in state".to_string()))?;
            chunk.copy_from_slice(&random);
        }
        sign_in.secrets = Some(mfa_gate::sign_in::SignInSecrets {
            state_key: state_key.to_vec(),
            client_secret: None,
            client_key: None,
        });
    }

    let mut headers: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), method.to_ascii_uppercase().into_bytes()),
        (":path".into(), path.clone().into_bytes()),
        (
            ":authority".into(),
            o.host
                .clone()
                .unwrap_or_else(|| "localhost".into())
                .into_bytes(),
        ),
        (":scheme".into(), b"http".to_vec()),
    ];
    headers.extend(
        o.headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes())),
    );

    // Who the request is about, for seeding --last-seen (read unverified; the engine
    // verifies as the filter does).
    let claims_seen = match (&o.token, &o.claims) {
        (Some(token), None) => Some(decode_unverified(token)?),
        (None, Some(file)) => Some(read_claims(file)?),
        _ => None,
    };
    // Where the claims come from, and how much is checked.
    let (claims_for_input, verification): (Option<Claims>, &str) = match (&o.token, &o.claims) {
        (Some(_), Some(_)) => return Err(CliError::new("give --token or --claims, not both")),
        (None, None) => (None, "none: no --token or --claims given (the request carries only its --header values)"),
        (Some(token), None) => {
            let payload = decode_unverified(token)?;
            if config.jwt_authn.is_some() {
                (Some(payload), "NOT checked here: this configuration reads claims that Envoy jwt_authn verified")
            } else {
                place_token(&config, token, &mut headers);
                (None, "verified: signature, algorithm, iss, aud, exp/nbf/iat, as the filter does")
            }
        }
        (None, Some(file)) => (
            Some(read_claims(file)?),
            "NOT verified: --claims are taken as given (no signature, issuer, audience or expiry checks)",
        ),
    };
    let jwt_authn_payload = claims_for_input.clone().map(Ok);
    let claims_input = match (&claims_for_input, config.jwt_authn.is_some()) {
        (Some(_), true) => ClaimsInput::JwtAuthn(jwt_authn_payload.as_ref()),
        (None, true) => ClaimsInput::JwtAuthn(None),
        (Some(claims), false) => ClaimsInput::Unverified(claims),
        (None, false) => ClaimsInput::Token,
    };

    let jwks = match &o.jwks {
        Some(file) => {
            let bytes = read_file(file)?;
            Some(
                KeySet::from_jwks_json(&bytes)
                    .map_err(|e| CliError::new(format!("{file}: {e}")))?,
            )
        }
        None => None,
    };
    let keys = key_sets(&config, jwks.as_ref());
    if matches!(claims_input, ClaimsInput::Token) && o.token.is_some() {
        needs_jwks_hint(&config, o.token.as_deref().unwrap_or(""), &keys)?;
    }
    let revoked = match &o.revoked {
        Some(file) => Some(revoked_store(&config, file, now)?),
        None => None,
    };
    let revocations: &dyn engine::RevocationLookup = match &revoked {
        Some(listed) => listed,
        None => &engine::NothingRevoked,
    };
    let signals = engine::SharedSignals::new(sightings_store(&config, &o, &claims_seen, now)?);
    let explained = ExplainedRequest {
        headers,
        properties: o.properties.clone(),
    };
    let request = engine::Request {
        headers: &explained,
        claims: claims_input,
        now_secs: now,
        may_fetch_keys: false,
        revocations,
        signals: &signals,
    };
    let mut cache = SessionCache::new(0);
    let evaluation = engine::evaluate(&config, &request, &keys, &mut cache);
    let report = report(
        &config,
        &evaluation,
        &method,
        &path,
        o.host.as_deref(),
        verification,
    );
    if o.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// Revocation entries listed in a file, in a store as the filter keeps them.
struct ListedRevocations {
    store: MemoryStore,
    copy: RefCell<LocalCopy>,
}

impl engine::RevocationLookup for ListedRevocations {
    fn standing(&self, keys: &engine::SessionKeys) -> engine::Standing {
        self.copy.borrow_mut().standing(&self.store, keys)
    }
}

/// Reads `--revoked FILE`: a JSON array of entries, each naming an `issuer`, exactly one
/// identifier (`session`, `subject`, `email`, `opaque` or `token`: the value of `sid`,
/// `sub`, the email claim, the opaque claim or `jti`), and optionally `before` (tokens
/// issued at or before it are covered; default now) and `effect` (`revoke`, default, or
/// `lower_assurance`).
fn revoked_store(config: &Config, file: &str, now: u64) -> CliResult<ListedRevocations> {
    let Some(settings) = &config.revocation else {
        return Err(CliError::new(
            "--revoked needs a configuration with a revocation section",
        ));
    };
    let text = read_text(file)?;
    let listed: Value =
        serde_json::from_str(&text).map_err(|e| CliError::new(format!("{file}: {e}")))?;
    let Some(items) = listed.as_array() else {
        return Err(CliError::new(format!(
            "{file}: expected a JSON array of entries"
        )));
    };
    let kinds = [
        ("session", IdentifierKind::SessionId),
        ("subject", IdentifierKind::Subject),
        ("email", IdentifierKind::Email),
        ("opaque", IdentifierKind::Opaque),
        ("token", IdentifierKind::TokenId),
    ];
    let mut entries = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = |what: &str| CliError::new(format!("{file}: entry {i}: {what}"));
        let issuer = item["issuer"]
            .as_str()
            .ok_or_else(|| at("issuer (a string) is required"))?;
        let named: Vec<(IdentifierKind, &str)> = kinds
            .iter()
            .filter_map(|(field, kind)| item[*field].as_str().map(|v| (*kind, v)))
            .collect();
        let [(kind, value)] = named.as_slice() else {
            return Err(at(
                "name exactly one of session, subject, email, opaque, token",
            ));
        };
        let before = match &item["before"] {
            Value::Null => now,
            v => v.as_u64().ok_or_else(|| at("before must be a Unix time"))?,
        };
        let effect = match item["effect"].as_str() {
            None | Some("revoke") => Effect::Revoke,
            Some("lower_assurance") => Effect::LowerAssurance,
            Some(other) => {
                return Err(at(&format!(
                    "unknown effect {other:?} (revoke, lower_assurance)"
                )))
            }
        };
        let lifetime = Lifetime {
            max_token_lifetime_secs: settings.max_token_lifetime_secs,
            clock_skew_secs: 60,
            now_secs: now,
        };
        entries.push(Entry::new(
            issuer,
            *kind,
            value,
            before,
            lifetime,
            effect,
            Source::Operator,
        ));
    }
    let mut store = MemoryStore::default();
    revocation::apply(&mut store, &entries, settings.max_entries, now)
        .map_err(|e| CliError::new(format!("{file}: {e}")))?;
    Ok(ListedRevocations {
        store,
        copy: RefCell::new(LocalCopy::default()),
    })
}

/// The sightings store, seeded with the `--last-seen` sightings of the request's subject
/// (its `iss` and `sub`, read unverified from the token or claims given).
fn sightings_store(
    config: &Config,
    o: &Options,
    claims: &Option<Claims>,
    now: u64,
) -> CliResult<MemoryStore> {
    let mut store = MemoryStore::default();
    if o.last_seen.is_empty() {
        return Ok(store);
    }
    let Some(location) = config.risk.as_ref().and_then(|r| r.location.as_ref()) else {
        return Err(CliError::new(
            "--last-seen needs a configuration with a risk.location section",
        ));
    };
    let claim = |name: &str| {
        claims
            .as_ref()
            .and_then(|c| c.get(name)?.as_str().map(str::to_string))
    };
    let (Some(iss), Some(sub)) = (claim("iss"), claim("sub")) else {
        return Err(CliError::new(
            "--last-seen needs a --token or --claims with iss and sub (whose sightings they are)",
        ));
    };
    let subject = mfa_gate::observe::subject_digest(&iss, &sub);
    let mut seen = o.last_seen.clone();
    // Oldest first, as they happened.
    seen.sort_by_key(|s| std::cmp::Reverse(s.2));
    for (country, coordinates, ago) in seen {
        let code = [country.as_bytes()[0], country.as_bytes()[1]];
        if !places::is_country(code) {
            return Err(CliError::new(format!(
                "--last-seen: {country} is not an ISO 3166-1 country code"
            )));
        }
        let point = coordinates.and_then(|(lat, lon)| Coordinates::new(lat, lon));
        let place = Place {
            country: Some(code),
            coordinates: point.or_else(|| places::country_point(code)),
            coordinates_source: Some(if point.is_some() {
                CoordinatesSource::Header
            } else {
                CoordinatesSource::CountryTable
            }),
            ..Place::default()
        };
        sightings::observe(
            &mut store,
            subject,
            &place,
            now.saturating_sub(ago),
            &location.sightings,
        )
        .map_err(|e| CliError::new(format!("--last-seen: {e}")))?;
    }
    Ok(store)
}

/// Puts the token where the configuration's first token source looks for it.
fn place_token(config: &Config, token: &str, headers: &mut Vec<(String, Vec<u8>)>) {
    match config.token_sources.first() {
        Some(TokenSource::Header(name)) => headers.push((name.clone(), token.as_bytes().to_vec())),
        Some(TokenSource::Cookie(name)) => {
            headers.push(("cookie".into(), format!("{name}={token}").into_bytes()))
        }
        _ => headers.push((
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        )),
    }
}

/// A clear error when the token's issuer has no keys here (remote_jwks without --jwks).
fn needs_jwks_hint(config: &Config, token: &str, keys: &[Option<KeySet>]) -> CliResult<()> {
    let Ok(iss) = mfa_gate::verify::peek_issuer(token.as_bytes(), config.max_token_bytes) else {
        return Ok(());
    };
    let Some(index) = config.issuer_index(&iss) else {
        return Ok(());
    };
    if keys.get(index).is_some_and(Option::is_some) {
        return Ok(());
    }
    let fetch = config.issuers[index]
        .remote_jwks
        .as_ref()
        .map(|r| {
            format!(
                " (the filter fetches it from cluster \"{}\" path {})",
                r.cluster, r.path
            )
        })
        .unwrap_or_default();
    Err(CliError::new(format!(
        "issuer \"{iss}\" has no inline keys{fetch}: pass its JWKS with --jwks FILE"
    )))
}

fn report(
    config: &Config,
    evaluation: &Evaluation,
    method: &str,
    path: &str,
    host: Option<&str>,
    verification: &str,
) -> Value {
    let record = evaluation.record.as_ref();
    let rule = config
        .routes
        .iter()
        .find(|r| Some(&r.name) == evaluation.rule.as_ref());
    let requirement = rule.and_then(|r| r.require.as_ref()).map(|q| {
        json!({
            "level": q.level.as_str(),
            "max_auth_age_secs": q.max_auth_age_secs,
            "acr_values": q.acr_values,
        })
    });
    let (decision, mode) = match record {
        Some(r) => (
            r.decision.map_or(Value::Null, |d| json!(d.as_str())),
            r.mode.map_or(Value::Null, |m| json!(m.as_str())),
        ),
        None => (json!("allow"), json!("not_gated")),
    };
    let answer = match &evaluation.outcome {
        Outcome::Continue { set, .. } => json!({
            "status": "passed to the upstream",
            "upstream_headers": set.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        }),
        Outcome::Reply(reply) => json!({
            "status": reply.status,
            "headers": reply.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "body": String::from_utf8_lossy(&reply.body),
            "details": reply.details,
        }),
        Outcome::Need(Need::Keys { issuer, .. }) => json!({
            "status": "keys needed",
            "issuer": config.issuers.get(*issuer).map(|i| i.verify.issuer.clone()),
        }),
        Outcome::Need(Need::Introspect { issuer }) => json!({
            "status": "introspection needed",
            "issuer": config.issuers.get(*issuer).map(|i| i.verify.issuer.clone()),
        }),
    };
    let session = evaluation.session.as_ref();
    let mut report = json!({
        "request": {"method": method.to_ascii_uppercase(), "path": path, "host": host.unwrap_or("localhost")},
        "claims": verification,
        "issuer": record.and_then(|r| r.issuer()),
        "subject": record.and_then(|r| r.subject()),
        "source": record.and_then(|r| r.source.as_deref()),
        "methods": session.map(|s| s.assurance.methods.as_slice()).or_else(|| record.map(|r| r.methods())).unwrap_or_default(),
        "level": session.map(|s| s.assurance.level.as_str()),
        "auth_age_secs": record.and_then(|r| r.auth_age_secs),
        "rule": evaluation.rule.as_deref(),
        "requirement": requirement,
        "decision": decision,
        "mode": mode,
        "reasons": record.map(|r| r.reasons.clone()).unwrap_or_default(),
        "revocation": record.and_then(|r| r.revocation).map(|hit| json!({
            "entry": hit.kind.as_str(),
            "source": hit.source.as_str(),
            "revoked_before": hit.revoked_before,
            "effect": match hit.effect {
                Effect::Revoke => "revoke",
                Effect::LowerAssurance => "lower_assurance",
            },
        })),
        "answer": answer,
        "counters": evaluation.counters,
    });
    // Only rules judged on a score have one (other reports stay as they were).
    let risk = record
        .and_then(|r| r.risk.as_deref())
        .and_then(|json| serde_json::from_str::<Value>(json).ok());
    if let (Some(risk), Some(map)) = (risk, report.as_object_mut()) {
        map.insert("risk".into(), risk);
    }
    report
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn print_table(report: &Value) {
    let row = |label: &str, value: String| println!("  {label:<14} {value}");
    let r = &report["request"];
    println!("mfa-gate explain");
    row(
        "request",
        format!(
            "{} {} (host {})",
            text(&r["method"]),
            text(&r["path"]),
            text(&r["host"])
        ),
    );
    row("claims", text(&report["claims"]));
    row("issuer", text(&report["issuer"]));
    row("subject", text(&report["subject"]));
    row("token from", text(&report["source"]));
    row("methods", text(&report["methods"]));
    row("level", text(&report["level"]));
    if !report["auth_age_secs"].is_null() {
        row("auth age", format!("{}s", report["auth_age_secs"]));
    }
    let rule = match (&report["rule"], &report["requirement"]) {
        (Value::String(name), Value::Object(q)) => {
            let age = q
                .get("max_auth_age_secs")
                .and_then(Value::as_u64)
                .map(|a| format!(", sign-in at most {a}s ago"))
                .unwrap_or_default();
            format!("{name} (requires {}{age})", text(&q["level"].clone()))
        }
        (Value::String(name), _) => format!("{name} (public: no token needed)"),
        _ => "none matched (the `unmatched` setting applies)".into(),
    };
    row("rule", rule);
    row(
        "decision",
        format!("{} ({})", text(&report["decision"]), text(&report["mode"])),
    );
    if let Value::Object(hit) = &report["revocation"] {
        row(
            "revoked",
            format!(
                "{} entry from {} ({}): tokens issued at or before {}",
                text(&hit["entry"]),
                text(&hit["source"]),
                text(&hit["effect"]),
                text(&hit["revoked_before"])
            ),
        );
    }
    if let Value::Object(risk) = &report["risk"] {
        let threshold = match (&risk.get("threshold"), &risk.get("threshold_points")) {
            (Some(Value::String(t)), Some(at)) => format!(" (reached {t} at {at})"),
            _ => " (below every threshold)".to_string(),
        };
        row("risk score", format!("{}{threshold}", text(&risk["score"])));
        if let Some(Value::Array(signals)) = risk.get("signals") {
            for s in signals {
                let note = if s["report_only"] == Value::Bool(true) {
                    "  (report only: not counted)"
                } else {
                    ""
                };
                row(
                    "",
                    format!(
                        "{:>+5}  {:<22} {}{note}",
                        s["points"].as_i64().unwrap_or(0),
                        text(&s["signal"]),
                        text(&s["value"])
                    ),
                );
            }
        }
    }
    let answer = &report["answer"];
    match &answer["status"] {
        Value::Number(status) => {
            row("answer", format!("{status} {}", text(&answer["details"])));
            if let Value::Array(headers) = &answer["headers"] {
                for h in headers {
                    row("", format!("{}: {}", text(&h[0]), text(&h[1])));
                }
            }
        }
        other => {
            row("answer", text(other));
            if let Value::Array(headers) = &answer["upstream_headers"] {
                for h in headers {
                    row("", format!("{}: {}", text(&h[0]), text(&h[1])));
                }
            }
        }
    }
    match &report["reasons"] {
        Value::Array(reasons) if !reasons.is_empty() => {
            for (i, reason) in reasons.iter().enumerate() {
                row(
                    if i == 0 { "reasons" } else { "" },
                    format!("- {}", text(reason)),
                );
            }
        }
        _ => row("reasons", "-".into()),
    }
}

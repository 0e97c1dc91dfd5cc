//! Usage texts: `mfa-gate --help` lists the subcommands, `mfa-gate <subcommand> --help` (or
//! `-h`, or `mfa-gate help <subcommand>`) prints that one's options.

use crate::error::{CliError, CliResult};
use crate::keys::ALGORITHMS;
use std::process::ExitCode;

/// One subcommand's help: its synopsis, what it does, and its options.
pub struct Usage {
    /// The subcommand's name, as typed.
    pub name: &'static str,
    /// The synopsis lines (no leading `mfa-gate`).
    synopsis: &'static str,
    /// What it does, in a sentence or two (also shown by `mfa-gate --help`).
    summary: &'static str,
    /// Its options, one per line: name, two or more spaces, description.
    options: &'static str,
    /// Whether its help lists the signing algorithms (`keys::ALGORITHMS`).
    lists_algorithms: bool,
}

/// `mfa-gate check`.
pub const CHECK: Usage = Usage {
    name: "check",
    synopsis: "check CONFIG...",
    summary: "\
Validate a configuration exactly as the filter's on_configure does and print every error
with its field path. CONFIG is a JSON configuration, an Envoy YAML (the
envoy.filters.http.wasm filter's StringValue), an Istio WasmPlugin or an Envoy Gateway
EnvoyExtensionPolicy. Exit 0 when every CONFIG is valid, 1 if not.",
    options: "\
CONFIG            one or more files to check",
    lists_algorithms: false,
};

/// `mfa-gate explain`.
pub const EXPLAIN: Usage = Usage {
    name: "explain",
    synopsis: "\
explain --config CONFIG (--token TOKEN | --claims FILE) --method M --path P
                 [--host H] [--header 'Name: value']... [--jwks FILE] [--revoked FILE]
                 [--client-cert-digest HEX] [--client-cert-uri-san URI]
                 [--client-cert-dns-san NAME] [--client-cert-subject DN]
                 [--last-seen COUNTRY[,LAT,LON],SECONDS_AGO]... [--now UNIX] [--json]",
    summary: "\
The decision the filter makes for this request: methods and level found, the rule
matched, each reason, and the answer sent.",
    options: "\
--config CONFIG         the configuration (any file `check` takes; the first one in it)
--token TOKEN           the session JWT, verified as the filter does
--claims FILE           unsigned claims (a JSON object) instead: signature checks skipped
--method M, --path P    the request line
--host H                the Host / :authority (default localhost)
-H, --header 'N: v'     a request header (repeatable)
--jwks FILE             keys for issuers configured with remote_jwks
--revoked FILE          revocation entries, a JSON array: each {\"issuer\": I, and one of
                        \"session\" (sid), \"subject\" (sub), \"email\", \"opaque\",
                        \"token\" (jti); optional \"before\": UNIX (default now), \"effect\":
                        \"revoke\" | \"lower_assurance\"}
--client-cert-digest HEX  the mTLS client certificate's SHA-256 (hex), as Envoy's
                        connection.sha256_peer_certificate_digest gives it
--client-cert-uri-san, --client-cert-dns-san, --client-cert-subject
                        the client certificate's SANs and subject (device posture)
--last-seen SIGHTING    an earlier sighting of the token's subject (repeatable): e.g.
                        AT,48.21,16.37,600 (Vienna ten minutes ago) or FR,86400
                        Geo headers (x-geo-country, ...), a DPoP proof (--header
                        'DPoP: ...') and posture headers go in --header.
--now UNIX              the clock, in seconds since 1970 (default: now)
--json                  print the explanation as one JSON object",
    lists_algorithms: false,
};

/// `mfa-gate token`.
pub const TOKEN: Usage = Usage {
    name: "token",
    synopsis: "token --key KEY --claims FILE [--kid K] [--alg A] [--exp-in SECS]",
    summary: "\
Mint a signed test token, adding iat and exp when absent. For tests and demos only —
not for production.",
    options: "\
--key KEY         a private JWK (from `keygen`) or a PEM private key
--claims FILE     the claims, a JSON object
--kid K           the header's kid (default: the key's)
--alg A           the algorithm (needed for PEM RSA keys; a JWK names its own)
--exp-in SECS     lifetime when the claims have no exp (default 3600)",
    lists_algorithms: true,
};

/// `mfa-gate keygen`.
pub const KEYGEN: Usage = Usage {
    name: "keygen",
    synopsis: "keygen [--alg ES256] [--kid K] --out KEY.json",
    summary: "\
Generate a private JWK for `token` and print the public JWKS to put in an issuer's jwks
(for HS*, the secret for hmac_secret_base64). Test keys only: written unencrypted.",
    options: "\
--alg A           the algorithm (default ES256)
--kid K           the key id (default: test-<unix time>)
--out KEY.json    where to write the private JWK",
    lists_algorithms: true,
};

/// `mfa-gate set`.
pub const SET: Usage = Usage {
    name: "set",
    synopsis: "\
set --key KEY --event E (--iss-sub SUB | --email E | --opaque ID) [--session SID]
                 [--iss I] [--aud A]... [--member NAME=VALUE]... [--push URL [--bearer T]]",
    summary: "\
Mint a signed Security Event Token (RFC 8417, as Shared Signals 1.0 profiles it: typ
secevent+jwt, sub_id, one event, no sub, no exp) or, with --event backchannel-logout, an
OpenID back-channel logout token (typ logout+jwt), and print it. With --push, POST it to a
receiver (RFC 8935 push; a logout token as logout_token=...) and print the answer; exit 1
unless it is 202 (200 or 204 for a logout token). For tests only.",
    options: "\
--key KEY               a private JWK (from `keygen`) or a PEM private key
--kid K, --alg A        the header's kid, the algorithm (as for `token`)
--event E               session-revoked, token-claims-change, credential-change,
                        assurance-level-change, device-compliance-change (CAEP);
                        account-credential-change-required, account-purged,
                        account-disabled, sessions-revoked (RISC); backchannel-logout;
                        or an event type URI
--iss I                 iss (default https://idp.mfa-gate.test, the demo's)
--aud A                 aud, repeatable (default mfa-gate-demo)
--iss-sub SUB           the user as an iss_sub subject (a logout token's sub)
--sub-iss I             that subject's iss (default: --iss)
--email E, --opaque ID  the user as an email or opaque subject
--session SID           the session: a complex subject {user, session} (a logout token's sid)
--complex               a complex subject even without --session
--jti J, --iat UNIX     jti (default random), iat (default now)
--txn T                 txn
--event-timestamp UNIX  CAEP event_timestamp (default: iat)
--initiating-entity E   CAEP initiating_entity: admin, user, policy or system
--reason-admin TEXT     CAEP reason_admin (en); --reason-user TEXT: reason_user
--member NAME=VALUE     an event member (VALUE is JSON, or else a string), e.g.
                        change_type=revoke, 'claims={\"acr\":\"pwd\"}', reason=hijacking
--push URL              POST the token there (http:// only)
--bearer T              the receiver's bearer credential (default $MFA_GATE_PUSH_BEARER)",
    lists_algorithms: false,
};

/// `mfa-gate demo`.
pub const DEMO: Usage = Usage {
    name: "demo",
    synopsis: "\
demo [--proxy-port 10000] [--idp-port 10001] [--app-port 10002] [--print-json]
                 [--ssf-bearer T] [--ssf-stream NAME]... [--ssf-push-url URL [--ssf-push-bearer T]]
                 [--backchannel-logout-url URL] [--okta-api-token T]
                 [--client-secret S] [--client-key-pem FILE]",
    summary: "\
Run the demo identity provider and upstream app on 127.0.0.1 and print curl lines with
the answers to expect (scripts/run-demo.sh starts the proxy beside it). The identity
provider is also a Shared Signals transmitter (/.well-known/ssf-configuration): RFC 8936
poll streams, RFC 8935 push, back-channel logout, and an Okta-shaped session API
(DELETE /api/v1/users/<id>/sessions).",
    options: "\
--proxy-port P              the gateway's port, used in the printed curl lines (default 10000)
--idp-port P                the identity provider's port (default 10001)
--app-port P                the upstream app's port (default 10002)
--print-json                print the demo cases, with tokens, as one JSON line
--ssf-bearer T              bearer credential of the poll and stream endpoints
                            (default $MFA_GATE_SSF_BEARER; without one, polling is off)
--ssf-stream NAME           a poll stream, POST /ssf/poll/NAME (repeatable; default one,
                            \"default\"); /ssf/poll is the first
--ssf-queue N               unacknowledged SETs kept per stream (default 1000; the oldest
                            is dropped beyond)
--ssf-long-poll SECS        how long a long poll waits for a SET (default 10)
--ssf-aud A                 aud of the SETs and logout tokens (default mfa-gate-demo)
--ssf-push-url URL          also push every SET there (RFC 8935)
--ssf-push-bearer T         the push receiver's bearer credential
                            (default $MFA_GATE_SSF_PUSH_BEARER)
--backchannel-logout-url U  POST a logout token there when a session ends
--okta-api-token T          the session API's SSWS token (default $MFA_GATE_OKTA_API_TOKEN;
                            without one, the session API answers 401)
--client-secret S           the OAuth client mfa-gate-demo's secret at /oauth/token,
                            /oauth/introspect and /oauth/revoke (default
                            $MFA_GATE_CLIENT_SECRET, else demo-oidc-client-secret)
--client-key-pem FILE       the client's public key (ES256 or RS256 PEM) for
                            private_key_jwt client assertions",
    lists_algorithms: false,
};

/// Every subcommand, in the order `mfa-gate --help` lists them.
pub const ALL: [&Usage; 6] = [&CHECK, &EXPLAIN, &TOKEN, &KEYGEN, &SET, &DEMO];

/// Whether an argument asks for help (`--help` or `-h`).
pub fn is_help(arg: &lexopt::Arg<'_>) -> bool {
    matches!(arg, lexopt::Arg::Long("help") | lexopt::Arg::Short('h'))
}

/// The names of every subcommand, for error messages ("check, explain, ... or demo").
pub fn names() -> String {
    let names: Vec<&str> = ALL.iter().map(|u| u.name).collect();
    match names.split_last() {
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// `mfa-gate --help`.
pub fn top_level() -> String {
    let mut text = String::from(
        "mfa-gate — keep push-MFA sessions off privileged routes (CLI for the mfa-gate Envoy filter)\n\nUsage:\n",
    );
    for usage in ALL {
        text.push_str(&format!("  mfa-gate {}\n", usage.synopsis));
        for line in usage.summary.lines() {
            text.push_str(&format!("      {line}\n"));
        }
        text.push('\n');
    }
    text.push_str("  mfa-gate <command> --help     that command's options\n");
    text.push_str("  mfa-gate --version | --help\n");
    text
}

impl Usage {
    /// `mfa-gate <name> --help`.
    pub fn text(&self) -> String {
        let mut text = format!(
            "Usage: mfa-gate {}\n\n{}\n\nOptions:\n",
            self.synopsis, self.summary
        );
        for line in self.options.lines() {
            text.push_str(&format!("  {line}\n"));
        }
        // The help option, its description in the same column as the others'.
        let first = self.options.lines().next().unwrap_or("");
        let column = first
            .find("  ")
            .and_then(|gap| first[gap..].find(|c| c != ' ').map(|skip| gap + skip))
            .unwrap_or(18);
        text.push_str(&format!("  {:<column$}print this help\n", "-h, --help"));
        if self.lists_algorithms {
            text.push_str(&format!("\nAlgorithms: {}\n", ALGORITHMS.join(", ")));
        }
        text
    }

    /// Prints the help on stdout; the subcommand then exits 0.
    pub fn print(&self) -> ExitCode {
        print!("{}", self.text());
        ExitCode::SUCCESS
    }
}

/// `mfa-gate help [SUBCOMMAND]`.
pub fn help_command(subcommand: Option<&str>) -> CliResult<ExitCode> {
    match subcommand {
        None => {
            print!("{}", top_level());
            Ok(ExitCode::SUCCESS)
        }
        Some(name) => ALL
            .iter()
            .find(|u| u.name == name)
            .map(|u| u.print())
            .ok_or_else(|| unknown_command(name)),
    }
}

/// The error for a subcommand that does not exist.
pub fn unknown_command(name: &str) -> CliError {
    CliError::new(format!(
        "unknown command \"{name}\" (expected {}; see --help)",
        names()
    ))
}

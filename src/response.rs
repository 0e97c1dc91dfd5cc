//! The HTTP answers mfa-gate sends: RFC 6750 for missing/invalid tokens, RFC 9470 for
//! step-up, a redirect to the provider for browsers, 403 for a policy deny.
//!
//! Every reply carries `content-type: application/json`, `cache-control: no-store` and a
//! small JSON body with an `error` member. Conventions follow Envoy's jwt_authn filter
//! (`source/extensions/filters/http/jwt_authn/filter.cc`, `Filter::onComplete`): 401 with
//! `WWW-Authenticate: Bearer realm="…"` and no error code when the token is missing,
//! `error="invalid_token"` for any other token failure, and **403** (still
//! `error="invalid_token"`, body "Audiences in Jwt are not allowed") when only the audience
//! is wrong. RFC 6750's `insufficient_scope` is about OAuth scopes, which mfa-gate does not
//! check, so it is not used.
//!
//! Step-up follows RFC 9470 §3: `Bearer error="insufficient_user_authentication"` with
//! `error_description`, `acr_values` and `max_age` (quoted, as in the RFC's examples), plus
//! `realm`. Browsers get a 302 to the authorization endpoint with `acr_values`, `max_age` and
//! `prompt=login` (OpenID Connect Core §3.1.2.1); the URL the user asked for travels in
//! `state` for the application at `redirect_uri` to send the user back (it must only accept
//! same-origin URLs from it).
//!
//! Header safety: every text placed in a header goes through [`header_text`], which removes
//! CR, LF, other control characters and non-ASCII, turns `"` into `'`, drops `\` and caps
//! the length, so no value can end a quoted-string or start a new header line.

/// A local reply for `send_http_response`. `details` has no spaces (access-log friendly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u32,
    /// Header names are lower-case; values are printable ASCII.
    pub headers: Vec<(String, String)>,
    /// Small JSON body.
    pub body: Vec<u8>,
    /// Response-code details for the access log.
    pub details: &'static str,
}

/// A `set-cookie` header that clears cookie `name` (a revoked session's token).
pub fn clear_cookie(name: &str) -> (String, String) {
    (
        "set-cookie".to_string(),
        format!("{name}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"),
    )
}

/// 202: a pushed Security Event Token was accepted (RFC 8935 section 2.3).
pub fn event_accepted() -> LocalReply {
    LocalReply {
        status: 202,
        headers: vec![("cache-control".to_string(), "no-store".to_string())],
        body: Vec::new(),
        details: "mfa_gate_set_accepted",
    }
}

/// 400 with the RFC 8935 section 2.4 error (`err`, `description`): a pushed SET refused.
pub fn event_refused(err: &str, description: &str) -> LocalReply {
    reply(
        400,
        Vec::new(),
        serde_json::json!({"err": err, "description": description}),
        "mfa_gate_set_refused",
    )
}

/// 401 for a push or logout request without the configured bearer credential.
pub fn event_unauthenticated(realm: &str) -> LocalReply {
    reply(
        401,
        vec![www_authenticate(&[("realm", realm)])],
        serde_json::json!({"err": "authentication_failed", "description": "bearer credential missing or wrong"}),
        "mfa_gate_set_unauthenticated",
    )
}

/// 200: a back-channel logout token was accepted (Back-Channel Logout 1.0 section 2.8).
pub fn logout_accepted() -> LocalReply {
    LocalReply {
        status: 200,
        headers: vec![("cache-control".to_string(), "no-store".to_string())],
        body: Vec::new(),
        details: "mfa_gate_logout_accepted",
    }
}

/// 400 `invalid_request` for a refused logout token (Back-Channel Logout 1.0 section 2.8).
pub fn logout_refused(description: &str) -> LocalReply {
    reply(
        400,
        Vec::new(),
        serde_json::json!({"error": "invalid_request", "error_description": description}),
        "mfa_gate_logout_refused",
    )
}

/// 405 for anything but POST on a push or logout endpoint.
pub fn method_not_allowed() -> LocalReply {
    let mut r = reply(
        405,
        Vec::new(),
        serde_json::json!({"error": "method_not_allowed"}),
        "mfa_gate_method_not_allowed",
    );
    r.headers.push(("allow".to_string(), "POST".to_string()));
    r
}

/// 503 when an event could not be recorded (the transmitter should deliver it again).
pub fn event_unrecorded() -> LocalReply {
    reply(
        503,
        Vec::new(),
        serde_json::json!({"err": "temporarily_unavailable", "description": "the revocation could not be recorded; deliver it again"}),
        "mfa_gate_set_unrecorded",
    )
}

/// The provider's authorization endpoint for browser step-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpEndpoint {
    pub authorization_endpoint: String,
    pub client_id: String,
    pub redirect_uri: String,
}

/// Where to send a browser for step-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectTarget<'a> {
    /// The provider's authorization endpoint (may already have a query).
    pub authorization_endpoint: &'a str,
    /// Our OAuth client id at the provider.
    pub client_id: &'a str,
    /// Where the provider sends the browser back (the application's callback).
    pub redirect_uri: &'a str,
    /// The URL the user asked for (scheme://host/path?query), carried back to the app.
    pub return_url: &'a str,
}

/// Envoy jwt_authn's body text for an audience mismatch, reused as the description.
pub const AUDIENCE_NOT_ALLOWED: &str = "Audiences in Jwt are not allowed";

/// Longest text kept in one header parameter (realm, description, acr_values).
const MAX_HEADER_PARAM: usize = 200;

/// Makes `text` safe inside a quoted-string header parameter: keeps printable ASCII,
/// turns `"` into `'`, drops `\`, CR, LF, other controls and non-ASCII, caps at 200 bytes.
pub fn header_text(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '"' => Some('\''),
            '\\' => None,
            ' '..='~' => Some(c),
            _ => None,
        })
        .take(MAX_HEADER_PARAM)
        .collect()
}

/// Percent-encodes `text` for a URL query value: everything but RFC 3986 unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX` of its UTF-8 bytes.
pub fn percent_encode(text: &str) -> String {
    percent_encode_unless(text, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
    })
}

/// Percent-encodes (`%XX`, upper-case hex) every byte of `text` for which `keep` is false.
pub fn percent_encode_unless(text: &str, keep: impl Fn(u8) -> bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len() * 3);
    for &b in text.as_bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// Whether an `Accept` header asks for HTML before JSON (for `BrowserMode::Auto`):
/// `text/html` (or `application/xhtml+xml`) is listed with q > 0 and its q is at least the
/// q of any JSON type. A missing or empty header is not a browser.
pub fn prefers_html(accept: &[u8]) -> bool {
    let Ok(accept) = std::str::from_utf8(accept) else {
        return false;
    };
    let mut html_q: Option<u32> = None;
    let mut json_q: Option<u32> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1000_u32;
        for param in parts {
            if let Some((k, v)) = param.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = parse_qvalue(v.trim());
                }
            }
        }
        let slot = match media.as_str() {
            "text/html" | "application/xhtml+xml" => &mut html_q,
            "application/json" => &mut json_q,
            m if m.ends_with("+json") => &mut json_q,
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |old: u32| old.max(q)));
    }
    match html_q {
        Some(h) if h > 0 => h >= json_q.unwrap_or(0),
        _ => false,
    }
}

/// A q-value in thousandths (`0.5` → 500, `1` → 1000; digits past the third decimal are
/// ignored). Anything that is not `[+]digits[.digits]` or `[+].digits` counts as 0. Hand-rolled
/// instead of `str::parse::<f32>`, whose float parser and tables cost ~15 KB of wasm.
fn parse_qvalue(v: &str) -> u32 {
    let v = v.strip_prefix('+').unwrap_or(v);
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return 0;
    }
    let whole = int.bytes().fold(0_u32, |n, d| {
        n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    });
    let mut thousandths = 0_u32;
    for d in frac.bytes().chain(std::iter::repeat(b'0')).take(3) {
        thousandths = thousandths * 10 + u32::from(d - b'0');
    }
    whole.saturating_mul(1000).saturating_add(thousandths)
}

fn json_body(value: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap_or_default()
}

fn reply(
    status: u32,
    mut headers: Vec<(String, String)>,
    body: serde_json::Value,
    details: &'static str,
) -> LocalReply {
    headers.push(("content-type".to_string(), "application/json".to_string()));
    headers.push(("cache-control".to_string(), "no-store".to_string()));
    LocalReply {
        status,
        headers,
        body: json_body(body),
        details,
    }
}

fn www_authenticate(params: &[(&str, &str)]) -> (String, String) {
    let value = params
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", header_text(v)))
        .collect::<Vec<_>>()
        .join(", ");
    ("www-authenticate".to_string(), format!("Bearer {value}"))
}

/// 401, `WWW-Authenticate: Bearer realm="…"` with no error code (RFC 6750 §3.1).
pub fn missing_token(realm: &str) -> LocalReply {
    reply(
        401,
        vec![www_authenticate(&[("realm", realm)])],
        serde_json::json!({
            "error": "missing_token",
            "error_description": "a bearer token is required",
        }),
        "mfa_gate_missing_token",
    )
}

/// 401, `error="invalid_token"` with a description (never the token itself).
pub fn invalid_token(realm: &str, description: &str) -> LocalReply {
    reply(
        401,
        vec![www_authenticate(&[
            ("realm", realm),
            ("error", "invalid_token"),
            ("error_description", description),
        ])],
        serde_json::json!({
            "error": "invalid_token",
            "error_description": header_text(description),
        }),
        "mfa_gate_invalid_token",
    )
}

/// The algorithms a DPoP proof may be signed with, as `algs` advertises them (RFC 9449 §7.1).
pub const DPOP_ALGS: &str = "ES256 ES384 EdDSA RS256 PS256";

/// 401 for a DPoP-bound token (or a `DPoP` request) whose binding does not hold, with the
/// `DPoP` scheme's challenge (RFC 9449 §7.1): `error="invalid_dpop_proof"` when the proof is
/// at fault, `error="invalid_token"` otherwise.
pub fn dpop_refused(realm: &str, proof_at_fault: bool, description: &str) -> LocalReply {
    let error = if proof_at_fault {
        "invalid_dpop_proof"
    } else {
        "invalid_token"
    };
    let params = [
        ("realm", realm),
        ("error", error),
        ("error_description", description),
        ("algs", DPOP_ALGS),
    ];
    let (name, value) = www_authenticate(&params);
    let value = format!("DPoP {}", value.strip_prefix("Bearer ").unwrap_or(&value));
    reply(
        401,
        vec![(name, value)],
        serde_json::json!({
            "error": error,
            "error_description": header_text(description),
        }),
        "mfa_gate_dpop_refused",
    )
}

/// The same challenge under the `DPoP` scheme, for a session whose token is DPoP-bound
/// (RFC 9449 §7.1: such a client answers `DPoP` challenges): `WWW-Authenticate: Bearer …`
/// becomes `DPoP …, algs="…"`. Other headers and other schemes are left as they are.
pub fn as_dpop_challenge(reply: &mut LocalReply) {
    for (name, value) in &mut reply.headers {
        if name == "www-authenticate" {
            if let Some(params) = value.strip_prefix("Bearer ") {
                *value = format!("DPoP {params}, algs=\"{DPOP_ALGS}\"");
            }
        }
    }
}

/// 403 for a token whose audience is not accepted, as Envoy jwt_authn answers:
/// `error="invalid_token"`, description "Audiences in Jwt are not allowed".
pub fn audience_mismatch(realm: &str) -> LocalReply {
    reply(
        403,
        vec![www_authenticate(&[
            ("realm", realm),
            ("error", "invalid_token"),
            ("error_description", AUDIENCE_NOT_ALLOWED),
        ])],
        serde_json::json!({
            "error": "invalid_token",
            "error_description": AUDIENCE_NOT_ALLOWED,
        }),
        "mfa_gate_audience_mismatch",
    )
}

/// 401 RFC 9470: `error="insufficient_user_authentication"`, `acr_values`, `max_age`.
/// `acr_values` is left out when empty, `max_age` when `None`.
pub fn step_up_challenge(
    realm: &str,
    acr_values: &str,
    max_age: Option<u64>,
    description: &str,
) -> LocalReply {
    let max_age_text = max_age.map(|m| m.to_string());
    let mut params: Vec<(&str, &str)> = vec![
        ("realm", realm),
        ("error", "insufficient_user_authentication"),
        ("error_description", description),
    ];
    if !acr_values.is_empty() {
        params.push(("acr_values", acr_values));
    }
    if let Some(m) = &max_age_text {
        params.push(("max_age", m));
    }
    let mut body = serde_json::json!({
        "error": "insufficient_user_authentication",
        "error_description": header_text(description),
    });
    if !acr_values.is_empty() {
        body["acr_values"] = serde_json::Value::from(header_text(acr_values));
    }
    if let Some(m) = max_age {
        body["max_age"] = serde_json::Value::from(m);
    }
    reply(
        401,
        vec![www_authenticate(&params)],
        body,
        "mfa_gate_step_up",
    )
}

/// The authorization request URL for a browser step-up. The endpoint keeps its own query
/// (parameters are appended with `&`) and loses any `#fragment` (RFC 6749 §3.1 forbids one).
pub fn step_up_location(
    target: &RedirectTarget<'_>,
    acr_values: &str,
    max_age: Option<u64>,
) -> String {
    let endpoint = target
        .authorization_endpoint
        .split('#')
        .next()
        .unwrap_or_default();
    // Only URL-safe printable ASCII of the configured endpoint is kept.
    let endpoint: String = endpoint
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .collect();
    let mut url = endpoint;
    if !url.contains('?') {
        url.push('?');
    } else if !url.ends_with('?') && !url.ends_with('&') {
        url.push('&');
    }
    let max_age_text = max_age.map(|m| m.to_string());
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", target.client_id),
        ("redirect_uri", target.redirect_uri),
        ("scope", "openid"),
    ];
    if !acr_values.is_empty() {
        params.push(("acr_values", acr_values));
    }
    if let Some(m) = &max_age_text {
        params.push(("max_age", m));
    }
    params.push(("prompt", "login"));
    params.push(("state", target.return_url));
    let query = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    url.push_str(&query);
    url
}

/// 302 to the provider with `acr_values`, `max_age`, `prompt=login` and the return URL.
pub fn step_up_redirect(
    target: &RedirectTarget<'_>,
    acr_values: &str,
    max_age: Option<u64>,
) -> LocalReply {
    let location = step_up_location(target, acr_values, max_age);
    reply(
        302,
        vec![("location".to_string(), location)],
        serde_json::json!({
            "error": "insufficient_user_authentication",
            "error_description": "step-up authentication required",
        }),
        "mfa_gate_step_up_redirect",
    )
}

/// 400 for a request that cannot be read safely (an ambiguous path, an odd host), with the
/// reason code in the body (JSON).
pub fn bad_request(reason: &str) -> LocalReply {
    reply(
        400,
        Vec::new(),
        serde_json::json!({
            "error": "bad_request",
            "reason": header_text(reason),
        }),
        "mfa_gate_bad_request",
    )
}

/// 400 RFC 6750 `invalid_request` for a request carrying more than one credential (§2: a
/// client must not send the token more than one way).
pub fn multiple_credentials(realm: &str) -> LocalReply {
    let description = "the request carries more than one credential";
    reply(
        400,
        vec![www_authenticate(&[
            ("realm", realm),
            ("error", "invalid_request"),
            ("error_description", description),
        ])],
        serde_json::json!({
            "error": "invalid_request",
            "error_description": description,
        }),
        "mfa_gate_multiple_credentials",
    )
}

/// 403 for a policy deny, with the reason code in the body (JSON).
pub fn denied(reason: &str) -> LocalReply {
    reply(
        403,
        Vec::new(),
        serde_json::json!({
            "error": "access_denied",
            "reason": header_text(reason),
        }),
        "mfa_gate_denied",
    )
}

/// 429 for a push prompt over its limit (reason `push_rate_limited`): `Retry-After` says
/// when the next prompt would be admitted; the prompt never reaches the provider.
pub fn push_rate_limited(scope: &str, retry_after_secs: u64) -> LocalReply {
    reply(
        429,
        vec![(
            "retry-after".to_string(),
            retry_after_secs.max(1).to_string(),
        )],
        serde_json::json!({
            "error": "push_rate_limited",
            "error_description": "too many push prompts; try again later",
            "scope": header_text(scope),
            "retry_after": retry_after_secs.max(1),
        }),
        "mfa_gate_push_rate_limited",
    )
}

/// A push prompt request the gate cannot read: 413 for a body over the cap, 400 otherwise
/// (`push_user_missing`, `push_body_unreadable`), with the reason code in the body.
pub fn push_refused(status: u32, reason: &str) -> LocalReply {
    reply(
        status,
        Vec::new(),
        serde_json::json!({
            "error": if status == 413 { "payload_too_large" } else { "bad_request" },
            "reason": header_text(reason),
        }),
        "mfa_gate_push_refused",
    )
}

/// 503 for a push prompt whose count cannot be had (the rate-limit service unreachable and
/// its failure mode `deny`): the prompt is not sent.
pub fn push_limit_unavailable() -> LocalReply {
    reply(
        503,
        vec![("retry-after".to_string(), "5".to_string())],
        serde_json::json!({
            "error": "temporarily_unavailable",
            "reason": "push_limit_unavailable",
        }),
        "mfa_gate_push_limit_unavailable",
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn header<'a>(r: &'a LocalReply, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn body(r: &LocalReply) -> Value {
        serde_json::from_slice(&r.body).expect("body is JSON")
    }

    #[track_caller]
    fn assert_common(r: &LocalReply) {
        assert_eq!(header(r, "content-type"), Some("application/json"));
        assert_eq!(header(r, "cache-control"), Some("no-store"));
        assert!(!r.details.contains(' '), "{}", r.details);
        assert!(r.body.len() < 1024);
        for (k, v) in &r.headers {
            assert!(
                v.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "{k}: {v:?} has bytes outside printable ASCII"
            );
        }
    }

    #[test]
    fn qvalues_parse_in_thousandths() {
        for (text, expected) in [
            ("1", 1000),
            ("1.0", 1000),
            ("0.5", 500),
            ("0.123456", 123),
            ("+.5", 500),
            ("0", 0),
            ("", 0),
            (".", 0),
            ("1e0", 0),
            ("-1", 0),
            ("inf", 0),
        ] {
            assert_eq!(parse_qvalue(text), expected, "{text}");
        }
        assert!(prefers_html(b"text/html;q=0.9, application/json;q=0.8"));
        assert!(!prefers_html(b"text/html;q=0.5, application/json"));
        assert!(!prefers_html(b"text/html;q=0"));
    }

    #[test]
    fn missing_token_has_no_error_code() {
        let r = missing_token("api");
        assert_common(&r);
        assert_eq!(r.status, 401);
        assert_eq!(
            header(&r, "www-authenticate"),
            Some(r#"Bearer realm="api""#)
        );
        assert_eq!(body(&r)["error"], "missing_token");
        assert_eq!(r.details, "mfa_gate_missing_token");
    }

    #[test]
    fn invalid_token_rfc6750() {
        let r = invalid_token("api", "Jwt is expired");
        assert_common(&r);
        assert_eq!(r.status, 401);
        assert_eq!(
            header(&r, "www-authenticate"),
            Some(
                r#"Bearer realm="api", error="invalid_token", error_description="Jwt is expired""#
            )
        );
        assert_eq!(body(&r)["error_description"], "Jwt is expired");
    }

    #[test]
    fn audience_mismatch_mirrors_envoy_jwt_authn() {
        let r = audience_mismatch("api");
        assert_common(&r);
        assert_eq!(r.status, 403);
        assert_eq!(
            header(&r, "www-authenticate"),
            Some(
                r#"Bearer realm="api", error="invalid_token", error_description="Audiences in Jwt are not allowed""#
            )
        );
        assert_eq!(body(&r)["error"], "invalid_token");
    }

    #[test]
    fn step_up_challenge_rfc9470() {
        let r = step_up_challenge(
            "api",
            "phr phrh",
            Some(300),
            "phishing-resistant authentication required",
        );
        assert_common(&r);
        assert_eq!(r.status, 401);
        assert_eq!(
            header(&r, "www-authenticate"),
            Some(concat!(
                r#"Bearer realm="api", error="insufficient_user_authentication", "#,
                r#"error_description="phishing-resistant authentication required", "#,
                r#"acr_values="phr phrh", max_age="300""#
            ))
        );
        let b = body(&r);
        assert_eq!(b["error"], "insufficient_user_authentication");
        assert_eq!(b["acr_values"], "phr phrh");
        assert_eq!(b["max_age"], 300);
        assert_eq!(r.details, "mfa_gate_step_up");

        let r = step_up_challenge("api", "", None, "more recent authentication required");
        let h = header(&r, "www-authenticate").unwrap_or_default();
        assert!(!h.contains("acr_values") && !h.contains("max_age"), "{h}");
        assert!(body(&r).get("max_age").is_none());
    }

    #[test]
    fn header_injection_is_neutralised() {
        let evil = "x\"\r\nSet-Cookie: a=b\\\u{7f}é\u{0}";
        let r = step_up_challenge(evil, evil, Some(1), evil);
        assert_common(&r);
        let h = header(&r, "www-authenticate").unwrap_or_default();
        assert!(!h.contains('\r') && !h.contains('\n') && !h.contains('\\'));
        assert_eq!(header_text(evil), "x'Set-Cookie: a=b");
        // Exactly the quotes we put there: 2 per parameter.
        assert_eq!(h.matches('"').count(), 2 * 5, "{h}");
        let r = invalid_token(&"r".repeat(5000), "d");
        assert!(header(&r, "www-authenticate").unwrap_or_default().len() < 300);
        let r = denied("level_below_required:push<phishing_resistant\r\n\"");
        assert_eq!(
            body(&r)["reason"],
            "level_below_required:push<phishing_resistant'"
        );
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(
            percent_encode("a b&c=d/e?f#g+h%"),
            "a%20b%26c%3Dd%2Fe%3Ff%23g%2Bh%25"
        );
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode("\r\n\""), "%0D%0A%22");
    }

    fn target(endpoint: &str) -> RedirectTarget<'_> {
        RedirectTarget {
            authorization_endpoint: endpoint,
            client_id: "app 1",
            redirect_uri: "https://app.example/cb",
            return_url: "https://app.example/admin?x=1&y=2",
        }
    }

    #[test]
    fn browser_redirect() {
        let r = step_up_redirect(&target("https://idp.example/authorize"), "phr", Some(0));
        assert_common(&r);
        assert_eq!(r.status, 302);
        assert_eq!(r.details, "mfa_gate_step_up_redirect");
        assert_eq!(
            header(&r, "location"),
            Some(concat!(
                "https://idp.example/authorize?response_type=code&client_id=app%201",
                "&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=openid&acr_values=phr",
                "&max_age=0&prompt=login",
                "&state=https%3A%2F%2Fapp.example%2Fadmin%3Fx%3D1%26y%3D2"
            ))
        );
    }

    #[test]
    fn redirect_endpoint_with_query_or_fragment() {
        let cases = [
            (
                "https://idp.example/oauth2/v1/authorize?tenant=a",
                "https://idp.example/oauth2/v1/authorize?tenant=a&response_type=code",
            ),
            (
                "https://idp.example/authorize?",
                "https://idp.example/authorize?response_type=code",
            ),
            (
                "https://idp.example/authorize?a=1&",
                "https://idp.example/authorize?a=1&response_type=code",
            ),
            (
                "https://idp.example/authorize#frag",
                "https://idp.example/authorize?response_type=code",
            ),
            (
                "https://idp.example/auth\r\norize",
                "https://idp.example/authorize?response_type=code",
            ),
        ];
        for (endpoint, start) in cases {
            let loc = step_up_location(&target(endpoint), "", None);
            assert!(loc.starts_with(start), "{endpoint:?} → {loc}");
            assert!(
                !loc.contains("acr_values") && !loc.contains("max_age"),
                "{loc}"
            );
            assert!(loc.ends_with(
                "&prompt=login&state=https%3A%2F%2Fapp.example%2Fadmin%3Fx%3D1%26y%3D2"
            ));
        }
    }

    #[test]
    fn denied_body() {
        let r = denied("level_below_required:push<phishing_resistant");
        assert_common(&r);
        assert_eq!(r.status, 403);
        assert!(header(&r, "www-authenticate").is_none());
        assert_eq!(
            body(&r),
            serde_json::json!({"error": "access_denied", "reason": "level_below_required:push<phishing_resistant"})
        );
    }

    #[test]
    fn accept_header_preference() {
        let cases: &[(&[u8], bool)] = &[
            (
                b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                true,
            ),
            (b"application/json", false),
            (b"application/json, text/html;q=0.5", false),
            (b"text/html;q=0.9, application/json;q=0.9", true),
            (b"text/html;q=0", false),
            (b"*/*", false),
            (b"", false),
            (b"TEXT/HTML", true),
            (b"application/problem+json, text/html;q=0.1", false),
            (b"text/html;q=abc", false),
            (b"\xff\xfe", false),
        ];
        for (accept, expected) in cases {
            assert_eq!(
                prefers_html(accept),
                *expected,
                "{:?}",
                String::from_utf8_lossy(accept)
            );
        }
    }
}

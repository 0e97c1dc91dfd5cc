//! RFC 7662 token introspection for opaque session tokens: which tokens are introspected
//! ([`is_jwt_shaped`]: a JWT goes the verification path), the settings an introspecting
//! issuer compiles into ([`Settings`]), the call the glue sends ([`call`]), the strict
//! parser of the answer ([`answer`]) and the shared, bounded cache of answers ([`cache`]).
//!
//! Pure: no SDK, no configuration types; the glue (`filter/introspection.rs`) dispatches
//! the call and stores what [`answer::parse`] returns. Never logs, and never keeps a
//! token: the cache is keyed by a keyed digest of it.

pub mod answer;
pub mod cache;

/// How the gate authenticates to the introspection endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded client id and secret.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

/// Which answer members carry the authentication methods and context class (renamed to
/// `amr` and `acr` before the issuer's vocabulary reads them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// The member holding the methods (`amr` by default).
    pub amr: String,
    /// The member holding the context class (`acr` by default).
    pub acr: String,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            amr: "amr".to_string(),
            acr: "acr".to_string(),
        }
    }
}

/// An issuer's introspection endpoint and cache settings (compiled from
/// `issuers[i].introspection`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The Envoy cluster the call goes through.
    pub cluster: String,
    /// `:authority` of the call (the endpoint's host).
    pub authority: String,
    /// `:path` of the call (the endpoint's path and query).
    pub path: String,
    /// The gate's client id at the authorization server.
    pub client_id: String,
    /// The VM environment variable holding the client secret.
    pub client_secret_env: String,
    /// How the client authenticates.
    pub auth: ClientAuth,
    /// Call timeout, milliseconds.
    pub timeout_ms: u64,
    /// How long an active answer is kept at most (also bounded by its `exp`).
    pub cache_ttl_secs: u64,
    /// How long an inactive answer is kept.
    pub inactive_ttl_secs: u64,
    /// Where the answer's amr/acr are read from.
    pub fields: Fields,
}

/// Whether `token` looks like a compact JWS: three non-empty base64url segments. Such a
/// token is verified, never introspected.
pub fn is_jwt_shaped(token: &[u8]) -> bool {
    let mut segments = 0;
    for segment in token.split(|&b| b == b'.') {
        segments += 1;
        let base64url = segment
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if segment.is_empty() || !base64url || segments > 3 {
            return false;
        }
    }
    segments == 3
}

/// An introspection request, ready for `dispatch_http_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Headers, pseudo-headers first.
    pub headers: Vec<(String, String)>,
    /// The form body.
    pub body: Vec<u8>,
}

/// The RFC 7662 §2.1 request for `token`: a form POST with `token_type_hint=access_token`
/// and the client's credentials (`secret` from the VM environment).
pub fn call(settings: &Settings, token: &[u8], secret: &str) -> Call {
    let mut body = String::with_capacity(token.len() + 64);
    body.push_str("token=");
    form_encode(&mut body, token);
    body.push_str("&token_type_hint=access_token");
    let mut headers = vec![
        (":method".to_string(), "POST".to_string()),
        (":path".to_string(), settings.path.clone()),
        (":authority".to_string(), settings.authority.clone()),
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
        ("accept".to_string(), "application/json".to_string()),
    ];
    match settings.auth {
        ClientAuth::Basic => {
            let mut pair = String::new();
            form_encode(&mut pair, settings.client_id.as_bytes());
            pair.push(':');
            form_encode(&mut pair, secret.as_bytes());
            let encoded =
                <ct_codecs::Base64 as ct_codecs::Encoder>::encode_to_string(pair.as_bytes())
                    .unwrap_or_default();
            headers.push(("authorization".to_string(), format!("Basic {encoded}")));
        }
        ClientAuth::Post => {
            body.push_str("&client_id=");
            form_encode(&mut body, settings.client_id.as_bytes());
            body.push_str("&client_secret=");
            form_encode(&mut body, secret.as_bytes());
        }
    }
    Call {
        headers,
        body: body.into_bytes(),
    }
}

/// Appends `bytes` percent-encoded for `application/x-www-form-urlencoded`: every byte but
/// the unreserved ones (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
fn form_encode(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    pub(crate) fn settings(auth: ClientAuth) -> Settings {
        Settings {
            cluster: "idp".into(),
            authority: "idp.example".into(),
            path: "/oauth/introspect".into(),
            client_id: "gate client".into(),
            client_secret_env: "SECRET".into(),
            auth,
            timeout_ms: 1000,
            cache_ttl_secs: 300,
            inactive_ttl_secs: 10,
            fields: Fields::default(),
        }
    }

    #[test]
    fn only_three_base64url_segments_are_jwt_shaped() {
        assert!(is_jwt_shaped(b"eyJh.eyJi.c2ln"));
        assert!(is_jwt_shaped(b"a-_.b.c"));
        for opaque in [
            &b"opaque-token-123"[..],
            b"a.b",
            b"a.b.c.d",
            b"a..c",
            b".b.c",
            b"a.b.",
            b"a+b.c.d",
            b"a.b.c=",
            b"",
        ] {
            assert!(!is_jwt_shaped(opaque), "{opaque:?}");
        }
    }

    #[test]
    fn basic_auth_call_encodes_token_and_credentials() {
        let call = call(&settings(ClientAuth::Basic), b"ab+/=~.c", "s:cr&t");
        assert_eq!(
            String::from_utf8(call.body).unwrap(),
            "token=ab%2B%2F%3D~.c&token_type_hint=access_token"
        );
        let auth = call.headers.iter().find(|(n, _)| n == "authorization");
        // base64("gate%20client:s%3Acr%26t")
        let expected =
            <ct_codecs::Base64 as ct_codecs::Encoder>::encode_to_string("gate%20client:s%3Acr%26t")
                .unwrap();
        assert_eq!(auth.unwrap().1, format!("Basic {expected}"));
        assert!(call
            .headers
            .contains(&(":method".to_string(), "POST".to_string())));
        assert!(call
            .headers
            .contains(&(":path".to_string(), "/oauth/introspect".to_string())));
    }

    #[test]
    fn post_auth_call_puts_credentials_in_the_body() {
        let call = call(&settings(ClientAuth::Post), b"tok", "sec ret");
        assert_eq!(
            String::from_utf8(call.body).unwrap(),
            "token=tok&token_type_hint=access_token&client_id=gate%20client&client_secret=sec%20ret"
        );
        assert!(!call.headers.iter().any(|(n, _)| n == "authorization"));
    }
}

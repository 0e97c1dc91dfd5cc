//! Where the session token is: Authorization Bearer, a named header, or a cookie, tried in
//! the configured order. Works on raw header bytes; never logs what it finds.

use crate::request::RequestView;

/// A place a token can be carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>` or `Authorization: DPoP <token>` (scheme
    /// case-insensitive).
    AuthorizationBearer,
    /// A request header (lower-case name) whose whole value is the token.
    Header(String),
    /// A cookie by name.
    Cookie(String),
}

impl TokenSource {
    /// Short label for logs and decision records (`bearer`, `header:x`, `cookie:x`).
    pub fn label(&self) -> std::borrow::Cow<'static, str> {
        match self {
            TokenSource::AuthorizationBearer => "bearer".into(),
            TokenSource::Header(h) => format!("header:{h}").into(),
            TokenSource::Cookie(c) => format!("cookie:{c}").into(),
        }
    }
}

/// A credential found in the request, borrowed from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundToken<'a> {
    /// The credential bytes, trimmed (and unquoted for a cookie).
    pub token: &'a [u8],
    /// Index into the configured sources.
    pub source: usize,
}

/// A source carried something token-shaped that cannot be a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MalformedCredential {
    /// Index into the configured sources.
    pub source: usize,
    /// What was wrong (never the value itself).
    pub reason: &'static str,
}

/// Finds the first token among `sources`, in order. A source that is absent (or an
/// `Authorization` header with another scheme) is skipped; one that is present but
/// malformed stops the search with an error, so a broken credential is never silently
/// replaced by a weaker one from a later source.
pub fn find_token<'a>(
    sources: &[TokenSource],
    headers: &'a dyn RequestView,
) -> Result<Option<FoundToken<'a>>, MalformedCredential> {
    let Some(found) = locate_token(sources, headers) else {
        return Ok(None);
    };
    match check_token(found.token) {
        Ok(()) => Ok(Some(found)),
        Err(reason) => Err(MalformedCredential {
            source: found.source,
            reason,
        }),
    }
}

/// The credential of the first source that carries one, not yet checked (see
/// [`check_token`]): the same source [`find_token`] settles on. A caller holding a cache of
/// verified tokens may look the bytes up first, since a cached token was checked when it
/// was verified; anything else must pass [`check_token`].
pub fn locate_token<'a>(
    sources: &[TokenSource],
    headers: &'a dyn RequestView,
) -> Option<FoundToken<'a>> {
    sources.iter().enumerate().find_map(|(index, source)| {
        let token = match source {
            TokenSource::AuthorizationBearer => {
                headers.header("authorization").and_then(bearer_credential)
            }
            TokenSource::Header(name) => headers.header(name).map(trim),
            // Every `Cookie` entry is read: HTTP/1 clients may send more than one line.
            TokenSource::Cookie(name) => {
                let mut first = None;
                headers.each_header(&mut |k, v| {
                    if first.is_none() && k.eq_ignore_ascii_case(b"cookie") {
                        first = cookie_credential(v, name);
                    }
                });
                first
            }
        }?;
        Some(FoundToken {
            token,
            source: index,
        })
    })
}

/// Whether the request carries a credential other than `token`: a second `Authorization`
/// header or one of another scheme (Basic, ...), another value in a configured header, or
/// another cookie of a configured name (in any `Cookie` entry). The gate vouches for one
/// credential; an upstream that reads another one (Django keeps the last cookie, a Basic
/// header may authenticate someone else) must never see it beside the verified one.
/// Copies of the same token (bearer and cookie alike) are not a conflict.
pub fn carries_other_credential(
    sources: &[TokenSource],
    headers: &dyn RequestView,
    token: &[u8],
) -> bool {
    let mut other = false;
    headers.each_header(&mut |name, value| {
        if other {
            return;
        }
        if name.eq_ignore_ascii_case(b"authorization") {
            // Any scheme counts: an upstream may honour Basic or Digest by itself.
            other = !bearer_credential(value).is_some_and(|v| same_credential(v, token));
            return;
        }
        if name.eq_ignore_ascii_case(b"cookie") {
            other = sources.iter().any(|source| match source {
                TokenSource::Cookie(cookie) => {
                    cookie_values(value, cookie.as_bytes()).any(|v| !same_credential(v, token))
                }
                _ => false,
            });
            return;
        }
        other = sources.iter().any(|source| match source {
            TokenSource::Header(header) => {
                name.eq_ignore_ascii_case(header.as_bytes()) && !same_credential(trim(value), token)
            }
            _ => false,
        });
    });
    other
}

/// Whether two credentials are the same bytes. The located token is usually a slice of the
/// very header it is compared with: then no byte is compared (a token is about a kilobyte,
/// and wasm's `memcmp` compares one byte at a time, on every request).
fn same_credential(a: &[u8], b: &[u8]) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// Whether a located credential can be a token: not empty, and only base64url/base64
/// characters and dots.
pub fn check_token(token: &[u8]) -> Result<(), &'static str> {
    if token.is_empty() {
        return Err("empty_credential");
    }
    if !token.iter().all(|&b| is_token_char(b)) {
        return Err("credential_has_invalid_characters");
    }
    Ok(())
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &bytes[start..end.max(start)]
}

/// RFC 6750 §2.1 `b64token` characters (JWS compact serialisation uses a subset plus `.`),
/// as a table: this runs over every byte of the token on every request.
static TOKEN_CHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=');
        b += 1;
    }
    table
};

fn is_token_char(b: u8) -> bool {
    TOKEN_CHARS[b as usize]
}

/// The credential after a `Bearer` or `DPoP` scheme (case-insensitive), trimmed; None for
/// other schemes. Which of the two it was is [`authorization_scheme`]'s answer: a
/// DPoP-bound token must come with the `DPoP` scheme and its proof (RFC 9449 §7.1).
fn bearer_credential(value: &[u8]) -> Option<&[u8]> {
    match split_scheme(value) {
        (Some(_), rest) => Some(rest),
        (None, _) => None,
    }
}

/// The scheme of an `Authorization` value, when it is `Bearer` or `DPoP`, and what follows it.
fn split_scheme(value: &[u8]) -> (Option<AuthorizationScheme>, &[u8]) {
    let value = trim(value);
    let scheme_end = value
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    let scheme = if scheme.eq_ignore_ascii_case(b"bearer") {
        Some(AuthorizationScheme::Bearer)
    } else if scheme.eq_ignore_ascii_case(b"dpop") {
        Some(AuthorizationScheme::Dpop)
    } else {
        None
    };
    (scheme, trim(rest))
}

/// The token-carrying schemes of `Authorization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationScheme {
    /// RFC 6750.
    Bearer,
    /// RFC 9449: the token is bound to the key of the `DPoP` proof header.
    Dpop,
}

/// The scheme of the request's (first) `Authorization` header, when it carries a token.
pub fn authorization_scheme(headers: &dyn RequestView) -> Option<AuthorizationScheme> {
    headers
        .header("authorization")
        .and_then(|v| split_scheme(v).0)
}

/// The value of cookie `name` (the first one), trimmed and unquoted.
fn cookie_credential<'a>(value: &'a [u8], name: &str) -> Option<&'a [u8]> {
    value
        .split(|&b| b == b';')
        .find_map(|pair| cookie_pair_value(pair, name.as_bytes()))
}

/// Every value of cookie `name` in one `Cookie` header, trimmed and unquoted.
pub fn cookie_values<'a>(value: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    value
        .split(|&b| b == b';')
        .filter_map(move |pair| cookie_pair_value(pair, name))
}

/// The value of one `name=value` pair of a `Cookie` header when its name is `name`.
fn cookie_pair_value<'a>(pair: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let pair = trim(pair);
    let eq = pair.iter().position(|&b| b == b'=')?;
    let (key, rest) = pair.split_at(eq);
    if key != name {
        return None;
    }
    let v = trim(rest.get(1..).unwrap_or_default());
    Some(match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    }

    fn all_sources() -> Vec<TokenSource> {
        vec![
            TokenSource::AuthorizationBearer,
            TokenSource::Header("x-session-token".into()),
            TokenSource::Cookie("session".into()),
        ]
    }

    fn found(h: &[(&str, &[u8])]) -> Result<Option<(Vec<u8>, usize)>, &'static str> {
        find_token(&all_sources(), &headers(h))
            .map(|o| o.map(|f| (f.token.to_vec(), f.source)))
            .map_err(|e| e.reason)
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_trimmed() {
        for v in [&b"Bearer a.b.c"[..], b"bearer  a.b.c ", b"BEARER\ta.b.c"] {
            assert_eq!(
                found(&[("authorization", v)]),
                Ok(Some((b"a.b.c".to_vec(), 0)))
            );
        }
    }

    #[test]
    fn other_schemes_fall_through_to_later_sources() {
        assert_eq!(
            found(&[
                ("authorization", b"Basic dXNlcjpwYXNz"),
                ("cookie", b"a=1; session=t.o.k")
            ]),
            Ok(Some((b"t.o.k".to_vec(), 2)))
        );
    }

    #[test]
    fn sources_are_tried_in_order() {
        assert_eq!(
            found(&[
                ("x-session-token", b"h.h.h"),
                ("authorization", b"Bearer b.b.b")
            ]),
            Ok(Some((b"b.b.b".to_vec(), 0)))
        );
        assert_eq!(
            found(&[("x-session-token", b"h.h.h"), ("cookie", b"session=c.c.c")]),
            Ok(Some((b"h.h.h".to_vec(), 1)))
        );
    }

    #[test]
    fn malformed_credentials_are_errors_not_skips() {
        assert_eq!(
            found(&[("authorization", b"Bearer")]),
            Err("empty_credential")
        );
        assert_eq!(
            found(&[("authorization", b"Bearer a b")]),
            Err("credential_has_invalid_characters")
        );
        assert_eq!(
            found(&[
                ("authorization", b"Bearer \xff\xfe"),
                ("cookie", b"session=x.y.z")
            ]),
            Err("credential_has_invalid_characters")
        );
        assert_eq!(
            found(&[("cookie", b"session=a\"b")]),
            Err("credential_has_invalid_characters")
        );
    }

    #[test]
    fn cookie_parsing_matches_exact_names_and_quotes() {
        assert_eq!(
            found(&[("cookie", b"xsession=no; session=\"q.u.o\"; other=1")]),
            Ok(Some((b"q.u.o".to_vec(), 2)))
        );
        assert_eq!(found(&[("cookie", b"sessionx=1;;; =; session")]), Ok(None));
        assert_eq!(found(&[("cookie", b"\xff\xfe=\x00")]), Ok(None));
    }

    #[test]
    fn a_cookie_in_a_second_cookie_line_is_found() {
        assert_eq!(
            found(&[("cookie", b"theme=dark"), ("cookie", b"session=s.e.s")]),
            Ok(Some((b"s.e.s".to_vec(), 2)))
        );
    }

    #[test]
    fn other_credentials_beside_the_token_are_seen() {
        let sources = all_sources();
        let other = |h: &[(&str, &[u8])]| carries_other_credential(&sources, &headers(h), b"t.o.k");
        // The same token twice (bearer and cookie) is no conflict.
        assert!(!other(&[
            ("authorization", b"Bearer t.o.k"),
            ("cookie", b"session=t.o.k")
        ]));
        assert!(!other(&[
            ("cookie", b"a=1; session=t.o.k"),
            ("x-session-token", b" t.o.k ")
        ]));
        // Django keeps the last of two cookies of one name.
        assert!(other(&[("cookie", b"session=t.o.k; session=p.u.sh")]));
        assert!(other(&[
            ("cookie", b"session=t.o.k"),
            ("cookie", b"session=p.u.sh")
        ]));
        // Any other Authorization scheme may authenticate someone else upstream.
        assert!(other(&[
            ("cookie", b"session=t.o.k"),
            ("authorization", b"Basic dXNlcjpwYXNz")
        ]));
        assert!(other(&[
            ("authorization", b"Bearer t.o.k"),
            ("authorization", b"Bearer o.t.h")
        ]));
        assert!(other(&[
            ("authorization", b"Bearer t.o.k"),
            ("cookie", b"session=o.t.h")
        ]));
        assert!(other(&[
            ("cookie", b"session=t.o.k"),
            ("X-Session-Token", b"o.t.h")
        ]));
        // Unrelated cookies and headers are not credentials.
        assert!(!other(&[(
            "cookie",
            b"session=t.o.k; sessionx=1; theme=dark"
        )]));
    }

    #[test]
    fn nothing_present_is_none() {
        assert_eq!(found(&[]), Ok(None));
        assert_eq!(found(&[("accept", b"text/html")]), Ok(None));
    }
}

//! Where the session token is: Authorization Bearer, a named header, or a cookie, tried in
//! the configured order. Works on raw header bytes; never logs what it finds.

/// A place a token can be carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>` (scheme case-insensitive).
    AuthorizationBearer,
    /// A request header (lower-case name) whose whole value is the token.
    Header(String),
    /// A cookie by name.
    Cookie(String),
}

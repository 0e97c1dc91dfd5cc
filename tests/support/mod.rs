//! What the native integration tests share: a request as the engine reads it.
#![allow(dead_code)] // each test crate uses its part

use mfa_gate::request::{RequestHeaders, RequestView};
use std::borrow::Cow;

/// Request headers in order, with no properties (no jwt_authn metadata).
pub struct Req(pub Vec<(String, Vec<u8>)>);

impl RequestHeaders for Req {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.0.header(name)
    }
    fn each_header<'s>(&'s self, visit: &mut dyn FnMut(&'s [u8], &'s [u8])) {
        self.0.each_header(visit)
    }
}

impl RequestView for Req {
    fn property(&self, _: &[&str]) -> Option<Cow<'_, [u8]>> {
        None
    }
}

/// A GET of `path` at `authority` carrying `token` as a bearer token.
pub fn bearer_get(path: &str, authority: &str, token: &str) -> Req {
    Req(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
        (":authority".into(), authority.as_bytes().to_vec()),
        (
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        ),
    ])
}

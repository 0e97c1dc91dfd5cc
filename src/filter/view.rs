//! The engine's [`RequestView`] over the host: the header map read once (one hostcall, as
//! bytes), properties read only when the engine or the glue asks for one.

use crate::pairs::Pairs;
use crate::request::{RequestHeaders, RequestView};
use proxy_wasm::hostcalls;
use std::borrow::Cow;

/// One request's headers and the host behind them.
pub struct HostRequest<'a> {
    headers: Pairs<'a>,
}

impl<'a> HostRequest<'a> {
    /// A view over the request header map in the pairs encoding (see
    /// [`super::header_map::request_header_bytes`]); a malformed map reads as empty, as
    /// Envoy's own parser treats it.
    pub fn new(header_bytes: &'a [u8]) -> Self {
        HostRequest {
            headers: crate::pairs::parse(header_bytes).unwrap_or_default(),
        }
    }
}

impl RequestHeaders for HostRequest<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.header(name)
    }

    fn each_header<'s>(&'s self, visit: &mut dyn FnMut(&'s [u8], &'s [u8])) {
        self.headers.each_header(visit);
    }
}

impl RequestView for HostRequest<'_> {
    /// Errors (not a stream, a serialization failure) read as absent.
    fn property(&self, path: &[&str]) -> Option<Cow<'_, [u8]>> {
        hostcalls::get_property(path.to_vec())
            .ok()
            .flatten()
            .map(Cow::Owned)
    }
}

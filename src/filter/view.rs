//! The engine's [`RequestView`] over the host: the header map, read once in one hostcall
//! and parsed in place ([`Pairs`]), and properties read only when asked for.

use crate::pairs::Pairs;
use crate::request::RequestView;
use proxy_wasm::hostcalls;
use std::borrow::Cow;

/// Implemented on the parsed header map itself, so a header read costs no extra call.
impl RequestView for Pairs<'_> {
    /// Errors (not a stream, a serialization failure) read as absent.
    fn property(&self, path: &[&str]) -> Option<Cow<'_, [u8]>> {
        hostcalls::get_property(path.to_vec())
            .ok()
            .flatten()
            .map(Cow::Owned)
    }
}

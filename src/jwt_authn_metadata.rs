//! Reading the payload that Envoy's jwt_authn filter verified and stored in dynamic
//! metadata (`payload_in_metadata`), from the bytes Envoy hands a wasm filter for the
//! property `metadata.filter_metadata["envoy.filters.http.jwt_authn"][<payload_in_metadata>]`.
//!
//! OWNER: tokens helper. Interface fixed below; implementation to be completed.

use crate::claims::Claims;

/// The property path to read with `get_property` for a given `payload_in_metadata` name.
pub fn property_path(payload_key: &str) -> Vec<&str> {
    vec![
        "metadata",
        "filter_metadata",
        "envoy.filters.http.jwt_authn",
        payload_key,
    ]
}

/// Decodes the bytes Envoy returns for that property into claims.
pub fn decode_payload(bytes: &[u8]) -> Result<Claims, String> {
    let _ = bytes;
    Err("not implemented".into())
}

//! `metadata.<…>` property resolution (owned by the tokens helper; this placeholder resolves nothing).

use crate::properties::PropertyFailure;

/// Returns the bytes Envoy would hand for `metadata.<rest…>` (None → NotFound).
pub fn resolve(
    filter_metadata: &serde_json::Map<String, serde_json::Value>,
    rest: &[&[u8]],
) -> Result<Option<Vec<u8>>, PropertyFailure> {
    let _ = (filter_metadata, rest);
    Ok(None)
}

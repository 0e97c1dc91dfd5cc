//! The claim set of a session token, shared by every stage of the pipeline.

/// A JWT payload (or Envoy jwt_authn's verified payload) as a JSON object.
pub type Claims = serde_json::Map<String, serde_json::Value>;

//! Plugin configuration: serde types, then a checked, compiled form whose errors name the
//! field path and quote the bad value.

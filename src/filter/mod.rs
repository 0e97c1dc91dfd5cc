//! The proxy-wasm glue: the only module that touches the SDK.

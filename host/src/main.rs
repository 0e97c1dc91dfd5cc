//! `mfa-gate-host replay` and `mfa-gate-host serve`.
fn main() {}

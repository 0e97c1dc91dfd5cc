//! Signing keys and tokens for tests, made by the CLI (`mfa-gate keygen` / `mfa-gate
//! token`): the same code users mint test tokens with.

use crate::process::{cli, Scratch};
use serde_json::{json, Value};
use std::path::PathBuf;

/// The demo issuer and audience (envoy/envoy.yaml's plugin configuration trusts them).
pub const DEMO_ISSUER: &str = "https://idp.mfa-gate.test";
/// The demo audience.
pub const DEMO_AUDIENCE: &str = "mfa-gate-demo";

/// A private signing key in a scratch directory, with its public JWKS.
pub struct TestKey {
    path: PathBuf,
    /// The key's `kid`.
    pub kid: String,
    /// The public JWKS document (one key).
    pub jwks: Value,
    scratch: Scratch,
}

impl TestKey {
    /// A fresh key of algorithm `alg` (e.g. "ES256") named `kid`.
    pub fn generate(alg: &str, kid: &str) -> TestKey {
        let scratch = Scratch::new(&format!("key-{kid}"));
        let path = scratch.path().join("private.json");
        let out = cli(&[
            "keygen",
            "--alg",
            alg,
            "--kid",
            kid,
            "--out",
            path.to_str().unwrap(),
        ]);
        let jwks = serde_json::from_slice(&out.stdout).expect("keygen prints the public JWKS");
        TestKey {
            path,
            kid: kid.to_string(),
            jwks,
            scratch,
        }
    }

    /// A token with these claims (`iat`/`exp` added when absent, 1 hour).
    pub fn token(&self, claims: &Value) -> String {
        let file = self.scratch.write("claims.json", claims.to_string());
        let out = cli(&[
            "token",
            "--key",
            self.path.to_str().unwrap(),
            "--claims",
            file.to_str().unwrap(),
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A token for the demo issuer and audience: subject `sub`, these `amr` values,
    /// signed in now.
    pub fn demo_token(&self, sub: &str, amr: &[&str]) -> String {
        self.token(&demo_claims(sub, amr))
    }
}

/// Claims as the demo IdP issues them: iss, aud, sub, amr, auth_time now.
pub fn demo_claims(sub: &str, amr: &[&str]) -> Value {
    json!({
        "iss": DEMO_ISSUER,
        "aud": DEMO_AUDIENCE,
        "sub": sub,
        "amr": amr,
        "auth_time": now_secs(),
    })
}

/// A JWKS document holding every key of `keys`.
pub fn jwks_of(keys: &[&TestKey]) -> Value {
    let all: Vec<Value> = keys
        .iter()
        .flat_map(|k| k.jwks["keys"].as_array().cloned().unwrap_or_default())
        .collect();
    json!({ "keys": all })
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

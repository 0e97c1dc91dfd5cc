//! Sender-constrained tokens for the end-to-end tests: DPoP keys and the proofs they sign
//! (RFC 9449), and the confirmation values a token carries (`cnf.jkt`, `cnf.x5t#S256`).
//!
//! A DPoP proof is a JWS whose header carries the public key as a JSON object (`jwk`),
//! which jwt-simple's header type cannot hold: the compact JWS is built here by hand,
//! `base64url(header) . base64url(claims)`, and signed with p256 (ES256, deterministic
//! RFC 6979 signatures, `r || s`) or ed25519-compact (EdDSA). Keys are generated with
//! jwt-simple, whose public JWK export gives the members; the RFC 7638 thumbprint is
//! computed here (and checked against jwt-simple's own for ES256), independently of the
//! filter's code.
//!
//! ```no_run
//! use mfa_gate_envoy::{DpopKey, ProofSpec};
//! let key = DpopKey::es256();
//! let cnf = serde_json::json!({"jkt": key.thumbprint()});
//! let proof = key.proof(&ProofSpec::new("GET", "http://127.0.0.1:10000/api/profile", "the.access.token"));
//! ```

use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use jwt_simple::prelude::{ECDSAP256KeyPairLike, ES256KeyPair, Ed25519KeyPair, EdDSAKeyPairLike};
use p256::ecdsa::signature::Signer as _;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).expect("base64url")
}

/// A proof's `ath`: base64url(SHA-256(access token)).
pub fn ath(access_token: &str) -> String {
    b64url(&Sha256::digest(access_token.as_bytes()))
}

/// A token's `cnf["x5t#S256"]` for a client certificate: base64url(SHA-256(DER)) (RFC 8705).
pub fn x5t_s256(cert_der: &[u8]) -> String {
    b64url(&Sha256::digest(cert_der))
}

/// A `jti` never handed out before in this process (and most unlikely in any other).
pub fn fresh_jti() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = RandomState::new().build_hasher().finish();
    format!("jti-{n}-{random:016x}")
}

enum Signing {
    Es256(Box<ES256KeyPair>),
    EdDsa(Box<Ed25519KeyPair>),
}

/// A DPoP key pair: ES256 (P-256) or EdDSA (Ed25519).
pub struct DpopKey {
    signing: Signing,
    jwk: Map<String, Value>,
}

/// What a proof says; [`ProofSpec::new`] gives a valid one for a request, the fields can
/// then be changed (or `None`d: the claim is left out) to make it wrong.
#[derive(Clone, Debug)]
pub struct ProofSpec {
    /// `typ` (`dpop+jwt`).
    pub typ: String,
    /// `htm`.
    pub htm: Option<String>,
    /// `htu`.
    pub htu: Option<String>,
    /// `iat`.
    pub iat: Option<u64>,
    /// `jti`.
    pub jti: Option<String>,
    /// `ath`.
    pub ath: Option<String>,
}

impl ProofSpec {
    /// A proof for `method` on `htu` with `access_token`, issued now, with a fresh `jti`.
    pub fn new(method: &str, htu: &str, access_token: &str) -> ProofSpec {
        ProofSpec {
            typ: "dpop+jwt".to_string(),
            htm: Some(method.to_string()),
            htu: Some(htu.to_string()),
            iat: Some(crate::now_secs()),
            jti: Some(fresh_jti()),
            ath: Some(ath(access_token)),
        }
    }

    /// The same, issued at `iat`.
    pub fn issued_at(mut self, iat: u64) -> ProofSpec {
        self.iat = Some(iat);
        self
    }

    /// The claims as JSON.
    pub fn claims(&self) -> Value {
        let mut claims = Map::new();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                claims.insert(name.to_string(), value);
            }
        };
        put("jti", self.jti.clone().map(Value::from));
        put("htm", self.htm.clone().map(Value::from));
        put("htu", self.htu.clone().map(Value::from));
        put("iat", self.iat.map(Value::from));
        put("ath", self.ath.clone().map(Value::from));
        Value::Object(claims)
    }
}

impl DpopKey {
    /// A fresh P-256 key (proofs signed ES256).
    pub fn es256() -> DpopKey {
        let key = ES256KeyPair::generate();
        let jwk = public_jwk(&key.public_key().to_jwk());
        let dpop = DpopKey {
            signing: Signing::Es256(Box::new(key)),
            jwk,
        };
        if let Signing::Es256(key) = &dpop.signing {
            assert_eq!(
                dpop.thumbprint(),
                key.jwk_thumbprint(),
                "RFC 7638 thumbprint (ours vs jwt-simple's)"
            );
        }
        dpop
    }

    /// A fresh Ed25519 key (proofs signed EdDSA).
    pub fn ed25519() -> DpopKey {
        let key = Ed25519KeyPair::generate();
        let jwk = public_jwk(&key.public_key().to_jwk());
        DpopKey {
            signing: Signing::EdDsa(Box::new(key)),
            jwk,
        }
    }

    /// The JWS `alg`.
    pub fn alg(&self) -> &'static str {
        match self.signing {
            Signing::Es256(_) => "ES256",
            Signing::EdDsa(_) => "EdDSA",
        }
    }

    /// The public JWK (only the members RFC 7638 hashes, `kty` first as JWKs go).
    pub fn public_jwk(&self) -> Value {
        Value::Object(self.jwk.clone())
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key, base64url: a token's `cnf.jkt`.
    pub fn thumbprint(&self) -> String {
        let members: &[&str] = match self.signing {
            Signing::Es256(_) => &["crv", "kty", "x", "y"],
            Signing::EdDsa(_) => &["crv", "kty", "x"],
        };
        let canonical: Vec<String> = members
            .iter()
            .map(|m| format!("\"{m}\":{}", self.jwk[*m]))
            .collect();
        let canonical = format!("{{{}}}", canonical.join(","));
        b64url(&Sha256::digest(canonical.as_bytes()))
    }

    /// A `cnf` claim binding a token to this key.
    pub fn cnf(&self) -> Value {
        json!({ "jkt": self.thumbprint() })
    }

    /// A proof as `spec` says, header `{"typ", "alg", "jwk"}`, signed with this key.
    pub fn proof(&self, spec: &ProofSpec) -> String {
        let header = json!({"typ": spec.typ, "alg": self.alg(), "jwk": self.public_jwk()});
        self.sign_compact(&header, &spec.claims())
    }

    /// A compact JWS of exactly this header and these claims, signed with this key.
    pub fn sign_compact(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = match &self.signing {
            Signing::Es256(key) => {
                let signing_key: &p256::ecdsa::SigningKey = key.key_pair().as_ref();
                let signature: p256::ecdsa::Signature = signing_key.sign(signing_input.as_bytes());
                signature.to_bytes().to_vec()
            }
            Signing::EdDsa(key) => {
                let pair: &ed25519_compact::KeyPair = key.key_pair().as_ref();
                pair.sk.sign(signing_input.as_bytes(), None).to_vec()
            }
        };
        format!("{signing_input}.{}", b64url(&signature))
    }
}

/// The RFC 7638 members of a public JWK as jwt-simple exports it (no `kid`, `alg`, `use`).
fn public_jwk(exported: &str) -> Map<String, Value> {
    let exported: Value = serde_json::from_str(exported).expect("jwt-simple's JWK is JSON");
    let mut jwk = Map::new();
    for member in ["kty", "crv", "x", "y"] {
        if let Some(value) = exported.get(member) {
            jwk.insert(member.to_string(), value.clone());
        }
    }
    assert!(
        jwk.contains_key("kty") && jwk.contains_key("x"),
        "{exported}"
    );
    jwk
}

//! Who is calling: the compact JWS and strict JSON a token is made of (`jose`), which
//! Ed25519 keys are trusted (`ed25519_point`), the issuer's keys (`jwks`), the signature and registered claims (`verify`), DPoP proofs
//! (`dpop`), a token's confirmation (`cnf`) and the mTLS comparison (`binding`), where the
//! credential is (`extract`), Envoy jwt_authn's verified payload (`jwt_authn`), the
//! verified-session cache of one VM (`cache`) and of every VM (`shared_sessions`), the session every later stage reads (`session`), the
//! compiled issuer (`issuer`), and establishing a request's session from all of them
//! (`establish`). Declared in order: each file imports only files above it.

pub mod jose;
pub(crate) mod ed25519_point;
pub mod jwks;
pub mod verify;
pub mod dpop;
pub mod binding;
pub mod extract;
pub mod jwt_authn;
pub mod cache;
pub mod shared_sessions;
pub mod session;
pub mod issuer;
pub mod establish;

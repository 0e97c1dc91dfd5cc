//! Who is calling: where the credential is (`extract`), the compact JWS and strict JSON it
//! is made of (`jose`), the issuer's keys (`jwks`), the signature and registered claims
//! (`verify`), or Envoy jwt_authn's verified payload (`jwt_authn`); the verified-session
//! cache (`cache`) and the session every later stage reads (`session`).

pub mod cache;
pub mod establish;
pub mod extract;
pub mod issuer;
pub mod jose;
pub mod jwks;
pub mod jwt_authn;
pub mod session;
pub mod verify;

//! Request signals: facts about a session that can change after it was verified, read on
//! every request (cache hit or not): [`revocation`]; the DPoP proofs already seen
//! ([`replay`]); where the request comes from ([`location`], placed with the built-in
//! [`places`] table) and what the subject's history says about it ([`sightings`]: new
//! country, impossible travel); and the device's [`posture`] from trusted sources.
//!
//! A leaf stage: it imports only [`crate::store`], so the token stage can attach each
//! session's revocation keys when it is established. Request data comes in as plain values
//! or a header lookup, never as `crate::request` types.

pub mod revocation;
pub mod replay;
pub mod places;
pub mod location;
pub mod sightings;
pub mod posture;

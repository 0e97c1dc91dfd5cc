//! Request signals: facts about a session that can change after it was verified, read on
//! every request (cache hit or not): [`revocation`], and the DPoP proofs already seen
//! ([`replay`]).
//!
//! A leaf stage: it imports only [`crate::store`], so the token stage can attach each
//! session's revocation keys when it is established.

pub mod revocation;
pub mod replay;

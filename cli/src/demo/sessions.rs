//! The demo identity provider's sign-in sessions. Every sign-in (`/token/<user>`,
//! `/login/<user>`, the tokens the demo prints) starts a session with a fresh random `sid`,
//! which that sign-in's token carries; ending a user's sessions (the Okta-shaped session API)
//! returns them so that one event and one logout token can be sent per session.
//!
//! Bounded: a user keeps at most [`MAX_SESSIONS_PER_USER`] sessions. Sessions whose tokens
//! have expired are forgotten first; when a user still has too many, the oldest is forgotten
//! and the user is marked, so that ending their sessions also sends a user-wide event (no
//! session whose token may still be valid goes unrevoked).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The most sessions the demo remembers per user.
pub const MAX_SESSIONS_PER_USER: usize = 256;

#[derive(Debug, Default)]
struct UserSessions {
    /// (`sid`, start time), oldest first.
    active: VecDeque<(String, u64)>,
    /// A session whose token may still be valid was forgotten at the bound.
    forgot_live_session: bool,
}

/// The sessions that ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EndedSessions {
    /// Their `sid`s, oldest first.
    pub sids: Vec<String>,
    /// Sessions beyond the bound were forgotten: revoke the user as a whole too.
    pub forgot_live_session: bool,
}

/// Every user's sessions.
#[derive(Debug)]
pub struct Sessions {
    lifetime_secs: u64,
    by_user: Mutex<HashMap<String, UserSessions>>,
}

impl Sessions {
    /// No sessions yet; a session lasts as long as its token (`lifetime_secs`).
    pub fn new(lifetime_secs: u64) -> Sessions {
        Sessions {
            lifetime_secs,
            by_user: Mutex::new(HashMap::new()),
        }
    }

    /// Records a new session `sid` of `user` at `now`.
    pub fn start(&self, user: &str, sid: &str, now: u64) {
        let mut by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        let sessions = by_user.entry(user.to_string()).or_default();
        let lifetime = self.lifetime_secs;
        sessions
            .active
            .retain(|(_, started)| started.saturating_add(lifetime) > now);
        if sessions.active.len() >= MAX_SESSIONS_PER_USER {
            sessions.active.pop_front();
            sessions.forgot_live_session = true;
        }
        sessions.active.push_back((sid.to_string(), now));
    }

    /// The `sid` of `user`'s newest session.
    pub fn newest(&self, user: &str) -> Option<String> {
        let by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        by_user
            .get(user)
            .and_then(|s| s.active.back())
            .map(|(sid, _)| sid.clone())
    }

    /// Ends every session of `user` (their tokens are revoked from now on).
    pub fn end_all(&self, user: &str) -> EndedSessions {
        let mut by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        match by_user.remove(user) {
            Some(sessions) => EndedSessions {
                sids: sessions.active.into_iter().map(|(sid, _)| sid).collect(),
                forgot_live_session: sessions.forgot_live_session,
            },
            None => EndedSessions::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn sessions_end_together_and_expired_ones_are_forgotten() {
        let sessions = Sessions::new(100);
        sessions.start("u", "old", 0);
        sessions.start("u", "a", 150);
        sessions.start("u", "b", 160);
        assert_eq!(sessions.newest("u").as_deref(), Some("b"));
        let ended = sessions.end_all("u");
        assert_eq!(ended.sids, vec!["a", "b"]);
        assert!(!ended.forgot_live_session);
        assert_eq!(sessions.end_all("u"), EndedSessions::default());
    }

    #[test]
    fn at_the_bound_the_user_is_marked() {
        let sessions = Sessions::new(1000);
        for i in 0..=MAX_SESSIONS_PER_USER {
            sessions.start("u", &format!("s{i}"), 1);
        }
        let ended = sessions.end_all("u");
        assert!(!ended.sids.contains(&"s0".to_string()));
        assert_eq!(ended.sids.len(), MAX_SESSIONS_PER_USER);
        assert!(ended.forgot_live_session);
    }
}

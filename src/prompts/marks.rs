//! Users approved under pressure: a mark is left when a push was approved after denied or
//! unanswered prompts ([`super::history::settle`]), and the gate asks on every gated
//! request whether the session's user has one ([`MarkCopy::lookup`]). A session is
//! "approved under pressure" when a mark for its claim's user holds and the session
//! started no earlier than two minutes before the mark ([`covers`]); the gate then steps
//! it up to phishing-resistant authentication on privileged routes, or revokes it.
//!
//! Cheap: the lookup reads one shard (one shared-data read) and decodes it only when its
//! version changed since this VM last did ([`MarkCopy`]). Bounded and versioned: at most
//! [`CAPACITY`] marks over [`SHARDS`] keys, expired ones dropped on write, then the oldest.
//! Holds digests and times only, never a user name.

use super::shard::{find, secs32, u32_at, Layout, Record};
use super::UserKey;
use crate::store::{Store, UpdateError};

/// Number of shards marks are spread over (small shards: one is read per gated request).
pub const SHARDS: usize = 256;
/// Marks kept in all.
pub const CAPACITY: usize = 20_000;
/// A session that started this long before the mark is still covered by it, seconds (the
/// sign-in the approval completes may have started a little before the answer came back).
pub const SESSION_GRACE_SECS: u64 = 120;

// An entry: marked_at u32 | expires_at u32 | unanswered u16.
const ENTRY_BYTES: usize = 10;

const MARKS: Layout = Layout {
    prefix: "mfa_gate.prompts.v1.marks",
    shards: SHARDS,
    format: 1,
    entry_bytes: ENTRY_BYTES,
    max_entries: 1,
    capacity: CAPACITY,
};

/// A user's mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// When the approval under pressure was seen, seconds since the epoch.
    pub marked_at: u64,
    /// The denied or unanswered prompts before it.
    pub unanswered: u32,
}

fn decode_entry(record: &Record) -> Option<(Mark, u64)> {
    let entry = record.entries.last()?;
    let marked_at = u64::from(u32_at(entry, 0)?);
    let expires_at = u64::from(u32_at(entry, 4)?);
    let unanswered = u32::from(u16::from_be_bytes(entry.get(8..10)?.try_into().ok()?));
    Some((
        Mark {
            marked_at,
            unanswered,
        },
        expires_at,
    ))
}

/// Marks `user` as approved under pressure at `marked_at`, for `ttl_secs` (a later mark
/// replaces an earlier one).
pub fn mark<S: Store + ?Sized>(
    store: &mut S,
    user: &UserKey,
    marked_at: u64,
    unanswered: u32,
    ttl_secs: u64,
) -> Result<(), UpdateError> {
    let expires_at = marked_at.saturating_add(ttl_secs);
    // A record's recency is its expiry: expired marks go first, then the soonest to expire.
    let keep_since = secs32(marked_at);
    MARKS.update(store, &user.0, keep_since, |current| {
        let (marked_at, expires_at, unanswered) = match current.and_then(decode_entry) {
            Some((old, old_expiry)) if old.marked_at > marked_at => {
                (old.marked_at, old_expiry.max(expires_at), old.unanswered)
            }
            _ => (marked_at, expires_at, unanswered),
        };
        let mut entry = Vec::with_capacity(ENTRY_BYTES);
        entry.extend_from_slice(&secs32(marked_at).to_be_bytes());
        entry.extend_from_slice(&secs32(expires_at).to_be_bytes());
        entry.extend_from_slice(&u16::try_from(unanswered).unwrap_or(u16::MAX).to_be_bytes());
        Some(Record {
            subject: user.0,
            recency: secs32(expires_at),
            entries: vec![entry],
        })
    })?;
    Ok(())
}

/// A VM's decoded copy of the mark shards it has read, each used again while its version
/// is unchanged.
#[derive(Debug, Default)]
pub struct MarkCopy {
    shards: Vec<Option<(u32, Vec<Record>)>>,
}

impl MarkCopy {
    /// The mark of `user` that has not expired at `now_secs` (`None`: none, or its shard
    /// is unreadable or the store fails: a mark is never invented). One shared-data read;
    /// decoded only when the shard changed.
    pub fn lookup<S: Store + ?Sized>(
        &mut self,
        store: &S,
        user: &UserKey,
        now_secs: u64,
    ) -> Option<Mark> {
        if self.shards.len() != SHARDS {
            self.shards = vec![None; SHARDS];
        }
        let shard = MARKS.shard_of(&user.0);
        let slot = self.shards.get_mut(shard)?;
        let Ok(Some(current)) = store.get(&MARKS.key(shard)) else {
            *slot = None;
            return None;
        };
        if !matches!(slot, Some((cas, _)) if *cas == current.cas) {
            *slot = MARKS
                .decode(&current.bytes)
                .map(|records| (current.cas, records));
        }
        let (_, records) = slot.as_ref()?;
        let (mark, expires_at) = decode_entry(find(records, &user.0)?)?;
        (expires_at > now_secs).then_some(mark)
    }
}

/// Whether `mark` covers a session that started at `session_time` (its `auth_time`, or
/// `iat`): the mark holds at `now_secs` (younger than `ttl_secs`) and the session started
/// no earlier than [`SESSION_GRACE_SECS`] before it. A session without either time is
/// covered (it cannot show it predates the mark).
pub fn covers(mark: &Mark, session_time: Option<u64>, now_secs: u64, ttl_secs: u64) -> bool {
    let holds = mark.marked_at.saturating_add(ttl_secs) > now_secs;
    let after = session_time.is_none_or(|t| t.saturating_add(SESSION_GRACE_SECS) >= mark.marked_at);
    holds && after
}

/// Marks and bytes kept (for the figures).
pub fn size<S: Store + ?Sized>(store: &S) -> (usize, usize) {
    MARKS.size(store)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::prompts::user_key;
    use crate::store::{MemoryStore, StoreError, Versioned};
    use std::cell::Cell;

    const T0: u64 = 1_700_000_000;
    const TTL: u64 = 43_200;

    #[test]
    fn a_mark_holds_for_its_ttl_and_covers_sessions_from_just_before_it() {
        let mut s = MemoryStore::default();
        let jane = user_key(b"Jane ");
        mark(&mut s, &jane, T0, 3, TTL).unwrap();
        let mut copy = MarkCopy::default();
        let m = copy.lookup(&s, &user_key(b"jane"), T0 + 1).unwrap();
        assert_eq!(
            m,
            Mark {
                marked_at: T0,
                unanswered: 3
            }
        );
        assert_eq!(copy.lookup(&s, &jane, T0 + TTL), None, "expired");
        assert!(covers(&m, Some(T0 + 5), T0 + 10, TTL));
        assert!(covers(&m, Some(T0 - 120), T0 + 10, TTL));
        assert!(
            !covers(&m, Some(T0 - 121), T0 + 10, TTL),
            "an older session"
        );
        assert!(covers(&m, None, T0 + 10, TTL));
        assert!(!covers(&m, Some(T0 + 5), T0 + TTL, TTL), "expired");
        // A later mark replaces it; an earlier one does not.
        mark(&mut s, &jane, T0 + 100, 2, TTL).unwrap();
        mark(&mut s, &jane, T0 + 50, 9, TTL).unwrap();
        assert_eq!(
            copy.lookup(&s, &jane, T0 + 101),
            Some(Mark {
                marked_at: T0 + 100,
                unanswered: 2
            })
        );
    }

    /// Counts reads; can fail them.
    #[derive(Default)]
    struct Counting {
        inner: MemoryStore,
        reads: Cell<u32>,
        down: bool,
    }

    impl Store for Counting {
        fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
            self.reads.set(self.reads.get() + 1);
            if self.down {
                return Err(StoreError::Unavailable("down".into()));
            }
            self.inner.get(key)
        }
        fn set_if_cas(&mut self, key: &str, bytes: &[u8], cas: u32) -> Result<(), StoreError> {
            self.inner.set_if_cas(key, bytes, cas)
        }
    }

    #[test]
    fn a_lookup_is_one_read_and_garbage_or_a_failing_store_is_no_mark() {
        let mut s = Counting::default();
        let jane = user_key(b"jane");
        mark(&mut s, &jane, T0, 2, TTL).unwrap();
        let mut copy = MarkCopy::default();
        s.reads.set(0);
        assert!(copy.lookup(&s, &jane, T0).is_some());
        assert!(copy.lookup(&s, &jane, T0).is_some());
        assert_eq!(s.reads.get(), 2);
        s.down = true;
        assert_eq!(copy.lookup(&s, &jane, T0), None);
        s.down = false;
        let key = MARKS.key(MARKS.shard_of(&jane.0));
        let cas = s.inner.get(&key).unwrap().unwrap().cas;
        s.inner.set_if_cas(&key, b"\x01garbage", cas).unwrap();
        assert_eq!(copy.lookup(&s, &jane, T0), None);
        // The next mark replaces the garbage.
        mark(&mut s, &jane, T0 + 1, 2, TTL).unwrap();
        assert!(copy.lookup(&s, &jane, T0 + 2).is_some());
    }

    #[test]
    fn marks_stay_bounded() {
        let mut s = MemoryStore::default();
        for i in 0..(CAPACITY + 2_000) {
            let u = user_key(format!("u{i}").as_bytes());
            mark(&mut s, &u, T0 + i as u64, 2, TTL).unwrap();
        }
        let (kept, _) = size(&s);
        assert!(kept <= SHARDS * CAPACITY.div_ceil(SHARDS), "{kept}");
        // The newest are kept.
        let newest = user_key(format!("u{}", CAPACITY + 1_999).as_bytes());
        assert!(MarkCopy::default().lookup(&s, &newest, T0 + 1).is_some());
    }
}

//! Prompt counting in shared data (all workers of one Envoy): a sliding log per user and
//! per client address of the times prompts were let through, judged against every
//! configured [`Window`]. A prompt passes only when every window of both scopes has room;
//! a refused prompt is not counted (so a flood cannot keep a user locked out longer than
//! the window), and the answer says when the oldest counted prompt leaves the full window
//! (`Retry-After`).
//!
//! Bounded: a subject's log keeps at most the largest `max_prompts` of its scope (older
//! times cannot matter: a full window refuses before the log grows), and only times within
//! the longest window; subjects are spread over [`SHARDS`] keys, at most [`USER_CAPACITY`]
//! users and [`CLIENT_CAPACITY`] clients, the least recently prompted dropped first.
//! Subjects are digests of the endpoint and the user key or client address, never the
//! values. One CAS update per key through `store::update`.

use super::shard::{secs32, u32_at, Layout, Record};
use super::{client_key, Limits, UserKey, Window};
use crate::store::{Store, UpdateError};

/// Number of shards each scope is spread over.
pub const SHARDS: usize = 256;
/// Users whose counts are kept.
pub const USER_CAPACITY: usize = 50_000;
/// Client addresses whose counts are kept.
pub const CLIENT_CAPACITY: usize = 50_000;

/// Which count refused a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The user's.
    User,
    /// The client address's.
    Client,
}

impl Scope {
    /// `user` or `client`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Client => "client",
        }
    }
}

/// The verdict on one prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Let through and counted.
    Admitted {
        /// Prompts in the tightest window (the least room left), this one included.
        count: u32,
        /// Prompts that window still lets through.
        remaining: u32,
    },
    /// Refused, not counted.
    Limited {
        /// The scope whose window is full.
        scope: Scope,
        /// Prompts counted in that window.
        count: u32,
        /// Seconds until a prompt would be let through (at least 1).
        retry_after_secs: u64,
    },
}

fn layout(scope: Scope, windows: &[Window]) -> Layout {
    let (prefix, capacity) = match scope {
        Scope::User => ("mfa_gate.prompts.v1.window.user", USER_CAPACITY),
        Scope::Client => ("mfa_gate.prompts.v1.window.client", CLIENT_CAPACITY),
    };
    Layout {
        prefix,
        shards: SHARDS,
        format: 1,
        entry_bytes: 4,
        max_entries: windows
            .iter()
            .map(|w| w.max_prompts as usize)
            .max()
            .unwrap_or(1)
            .clamp(1, 255),
        capacity,
    }
}

/// The subject a scope counts under: a digest of the endpoint and the key.
fn subject(scope: Scope, endpoint: &str, key: &[u8; 16]) -> [u8; 16] {
    let mut hasher = hmac_sha256::Hash::new();
    hasher.update(scope.as_str().as_bytes());
    hasher.update([0u8]);
    hasher.update(endpoint.as_bytes());
    hasher.update([0u8]);
    hasher.update(key);
    let full = hasher.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// The times kept in `record` that are still within the longest window.
fn times(record: Option<&Record>, windows: &[Window], now: u64) -> Vec<u64> {
    let longest = windows.iter().map(|w| w.window_secs).max().unwrap_or(0);
    let mut times: Vec<u64> = record
        .map(|r| {
            r.entries
                .iter()
                .filter_map(|e| u32_at(e, 0))
                .map(u64::from)
                .filter(|&t| t.saturating_add(longest) > now)
                .collect()
        })
        .unwrap_or_default();
    times.sort_unstable();
    times
}

/// Within `window` at `now`: later than `now - window_secs` (a time after now, from a
/// clock gone back, counts).
fn in_window(t: u64, window: &Window, now: u64) -> bool {
    t.saturating_add(window.window_secs) > now
}

/// Whether one more prompt fits every window: `Ok((count, remaining))` of the tightest
/// window once it is counted, or `Err((count, retry_after_secs))` of the full window that
/// frees up last.
fn judge(times: &[u64], windows: &[Window], now: u64) -> Result<(u32, u32), (u32, u64)> {
    let mut full: Option<(u32, u64)> = None;
    let mut tightest: Option<(u32, u32)> = None;
    for window in windows {
        let inside: Vec<u64> = times
            .iter()
            .copied()
            .filter(|&t| in_window(t, window, now))
            .collect();
        let count = u32::try_from(inside.len()).unwrap_or(u32::MAX);
        if count >= window.max_prompts {
            // The prompt that must leave for one more to fit.
            let leaving = inside
                .get(inside.len() - window.max_prompts as usize)
                .copied()
                .unwrap_or(now);
            let retry = leaving
                .saturating_add(window.window_secs)
                .saturating_sub(now)
                .max(1);
            if full.is_none_or(|(_, r)| retry > r) {
                full = Some((count, retry));
            }
            continue;
        }
        let after = count + 1;
        let remaining = window.max_prompts - after;
        if tightest.is_none_or(|(_, r)| remaining < r) {
            tightest = Some((after, remaining));
        }
    }
    match full {
        Some(full) => Err(full),
        None => Ok(tightest.unwrap_or((1, u32::MAX))),
    }
}

/// Counts one prompt in one scope if its windows have room; the verdict.
fn count_scope<S: Store + ?Sized>(
    store: &mut S,
    scope: Scope,
    windows: &[Window],
    subject: &[u8; 16],
    now: u64,
    check: bool,
) -> Result<Counted, UpdateError> {
    let layout = layout(scope, windows);
    let longest = windows.iter().map(|w| w.window_secs).max().unwrap_or(0);
    let keep_since = secs32(now.saturating_sub(longest));
    let mut verdict = Counted::Admitted {
        count: 1,
        remaining: u32::MAX,
    };
    layout.update(store, subject, keep_since, |record| {
        let mut kept = times(record, windows, now);
        let judged = if check {
            judge(&kept, windows, now)
        } else {
            Ok(judge(&kept, windows, now).unwrap_or((kept.len() as u32 + 1, 0)))
        };
        match judged {
            Err((count, retry_after_secs)) => {
                verdict = Counted::Limited {
                    scope,
                    count,
                    retry_after_secs,
                };
                None
            }
            Ok((count, remaining)) => {
                verdict = Counted::Admitted { count, remaining };
                kept.push(now);
                Some(Record {
                    subject: *subject,
                    recency: secs32(now),
                    entries: kept
                        .iter()
                        .map(|&t| secs32(t).to_be_bytes().to_vec())
                        .collect(),
                })
            }
        }
    })?;
    Ok(verdict)
}

/// The tighter of two admitted verdicts.
fn tighter(a: Counted, b: Counted) -> Counted {
    match (a, b) {
        (Counted::Admitted { remaining: ra, .. }, Counted::Admitted { remaining: rb, .. })
            if rb < ra =>
        {
            b
        }
        (Counted::Admitted { .. }, _) => a,
        (_, _) => b,
    }
}

/// Counts one prompt for `user` and `client` (client address bytes, e.g.
/// `b"203.0.113.9"`; `None` = unknown) on `endpoint` if no window is full; a refused
/// prompt is not counted. The client's windows are checked first without writing; then
/// one CAS update per key (user, then client). Two workers racing for a client's last
/// slot may leave the loser's user count one higher (it is then refused as `Client`).
pub fn count_local<S: Store + ?Sized>(
    store: &mut S,
    limits: &Limits,
    endpoint: &str,
    user: &UserKey,
    client: Option<&[u8]>,
    now_secs: u64,
) -> Result<Counted, UpdateError> {
    let client_subject = client
        .filter(|_| !limits.per_client.is_empty())
        .map(|c| subject(Scope::Client, endpoint, &client_key(c)));
    if let Some(client_subject) = &client_subject {
        let layout = layout(Scope::Client, &limits.per_client);
        let record = layout
            .read(store, client_subject)
            .map_err(UpdateError::Store)?;
        let kept = times(record.as_ref(), &limits.per_client, now_secs);
        if let Err((count, retry_after_secs)) = judge(&kept, &limits.per_client, now_secs) {
            return Ok(Counted::Limited {
                scope: Scope::Client,
                count,
                retry_after_secs,
            });
        }
    }
    let mut verdict = Counted::Admitted {
        count: 1,
        remaining: u32::MAX,
    };
    if !limits.per_user.is_empty() {
        let user_subject = subject(Scope::User, endpoint, &user.0);
        verdict = count_scope(
            store,
            Scope::User,
            &limits.per_user,
            &user_subject,
            now_secs,
            true,
        )?;
        if matches!(verdict, Counted::Limited { .. }) {
            return Ok(verdict);
        }
    }
    if let Some(client_subject) = &client_subject {
        let client_verdict = count_scope(
            store,
            Scope::Client,
            &limits.per_client,
            client_subject,
            now_secs,
            true,
        )?;
        verdict = tighter(verdict, client_verdict);
    }
    Ok(verdict)
}

/// Counts a prompt the rate-limit service already admitted, without judging it, so that a
/// later fallback to local counting knows it.
pub fn note_admitted<S: Store + ?Sized>(
    store: &mut S,
    limits: &Limits,
    endpoint: &str,
    user: &UserKey,
    client: Option<&[u8]>,
    now_secs: u64,
) -> Result<(), UpdateError> {
    if !limits.per_user.is_empty() {
        let user_subject = subject(Scope::User, endpoint, &user.0);
        count_scope(
            store,
            Scope::User,
            &limits.per_user,
            &user_subject,
            now_secs,
            false,
        )?;
    }
    if let Some(client) = client.filter(|_| !limits.per_client.is_empty()) {
        let client_subject = subject(Scope::Client, endpoint, &client_key(client));
        count_scope(
            store,
            Scope::Client,
            &limits.per_client,
            &client_subject,
            now_secs,
            false,
        )?;
    }
    Ok(())
}

/// Subjects and bytes kept for `scope` (for the figures).
pub fn size<S: Store + ?Sized>(store: &S, limits: &Limits, scope: Scope) -> (usize, usize) {
    let windows = match scope {
        Scope::User => &limits.per_user,
        Scope::Client => &limits.per_client,
    };
    layout(scope, windows).size(store)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::prompts::user_key;
    use crate::store::{MemoryStore, StoreError, Versioned};

    const T0: u64 = 1_700_000_000;

    fn limits() -> Limits {
        Limits::default()
    }

    fn prompt(store: &mut MemoryStore, user: &str, client: Option<&str>, at: u64) -> Counted {
        count_local(
            store,
            &limits(),
            "duo",
            &user_key(user.as_bytes()),
            client.map(str::as_bytes),
            at,
        )
        .unwrap()
    }

    #[test]
    fn three_in_five_minutes_then_the_fourth_is_limited_with_retry_after() {
        let mut store = MemoryStore::default();
        assert_eq!(
            prompt(&mut store, "jane", None, T0),
            Counted::Admitted {
                count: 1,
                remaining: 2
            }
        );
        assert_eq!(
            prompt(&mut store, "jane", None, T0 + 10),
            Counted::Admitted {
                count: 2,
                remaining: 1
            }
        );
        assert_eq!(
            prompt(&mut store, "jane", None, T0 + 20),
            Counted::Admitted {
                count: 3,
                remaining: 0
            }
        );
        assert_eq!(
            prompt(&mut store, "jane", None, T0 + 30),
            Counted::Limited {
                scope: Scope::User,
                count: 3,
                retry_after_secs: 270
            }
        );
        // Refused prompts are not counted: the retry time does not move.
        assert_eq!(
            prompt(&mut store, "jane", None, T0 + 299),
            Counted::Limited {
                scope: Scope::User,
                count: 3,
                retry_after_secs: 1
            }
        );
        // Another user, the same endpoint: unaffected; the same user on another endpoint too.
        assert!(matches!(
            prompt(&mut store, "john", None, T0 + 30),
            Counted::Admitted { count: 1, .. }
        ));
        let other = count_local(
            &mut store,
            &limits(),
            "okta",
            &user_key(b"jane"),
            None,
            T0 + 30,
        )
        .unwrap();
        assert!(matches!(other, Counted::Admitted { count: 1, .. }));
    }

    #[test]
    fn the_window_slides_and_the_hour_limit_holds() {
        let mut store = MemoryStore::default();
        for i in 0..3 {
            prompt(&mut store, "jane", None, T0 + i);
        }
        // The oldest leaves the 5-minute window at T0 + 300.
        assert!(matches!(
            prompt(&mut store, "jane", None, T0 + 299),
            Counted::Limited { .. }
        ));
        assert_eq!(
            prompt(&mut store, "jane", None, T0 + 300),
            Counted::Admitted {
                count: 3,
                remaining: 0
            }
        );
        // Three every five minutes: the hour's 10 run out first.
        let mut at = T0 + 300;
        let mut admitted = 4;
        while admitted < 10 {
            at += 301;
            for _ in 0..3 {
                if admitted < 10
                    && matches!(
                        prompt(&mut store, "jane", None, at),
                        Counted::Admitted { .. }
                    )
                {
                    admitted += 1;
                }
            }
        }
        match prompt(&mut store, "jane", None, at + 400) {
            Counted::Limited {
                scope: Scope::User,
                count: 10,
                retry_after_secs,
            } => assert_eq!(retry_after_secs, T0 + 3600 - (at + 400)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_client_is_limited_across_users_and_a_refused_prompt_counts_for_no_one() {
        let mut store = MemoryStore::default();
        for i in 0..20 {
            let user = format!("user{i}");
            assert!(matches!(
                prompt(&mut store, &user, Some("203.0.113.9"), T0 + i),
                Counted::Admitted { .. }
            ));
        }
        assert_eq!(
            prompt(&mut store, "victim", Some("203.0.113.9"), T0 + 30),
            Counted::Limited {
                scope: Scope::Client,
                count: 20,
                retry_after_secs: 270
            }
        );
        // The refused prompt did not count for the user.
        assert_eq!(
            prompt(&mut store, "victim", Some("198.51.100.1"), T0 + 31),
            Counted::Admitted {
                count: 1,
                remaining: 2
            }
        );
        // An unknown client is counted per user only.
        assert!(matches!(
            prompt(&mut store, "other", None, T0 + 32),
            Counted::Admitted { .. }
        ));
    }

    #[test]
    fn the_tightest_window_of_both_scopes_is_reported() {
        let mut store = MemoryStore::default();
        let tight = Limits {
            per_user: vec![Window {
                max_prompts: 5,
                window_secs: 60,
            }],
            per_client: vec![Window {
                max_prompts: 2,
                window_secs: 60,
            }],
        };
        let c = count_local(&mut store, &tight, "e", &user_key(b"a"), Some(b"c"), T0).unwrap();
        assert_eq!(
            c,
            Counted::Admitted {
                count: 1,
                remaining: 1
            }
        );
    }

    #[test]
    fn admitted_by_the_service_is_counted_for_a_later_fallback() {
        let mut store = MemoryStore::default();
        let jane = user_key(b"jane");
        for i in 0..4 {
            note_admitted(&mut store, &limits(), "duo", &jane, None, T0 + i).unwrap();
        }
        assert!(matches!(
            prompt(&mut store, "jane", None, T0 + 10),
            Counted::Limited {
                scope: Scope::User,
                ..
            }
        ));
    }

    #[test]
    fn many_users_stay_bounded_and_entries_are_capped() {
        let mut store = MemoryStore::default();
        let small = Limits {
            per_user: vec![Window {
                max_prompts: 2,
                window_secs: 3600,
            }],
            per_client: Vec::new(),
        };
        let jane = user_key(b"jane");
        for i in 0..5 {
            note_admitted(&mut store, &small, "e", &jane, None, T0 + i).unwrap();
        }
        let record = layout(Scope::User, &small.per_user)
            .read(&store, &subject(Scope::User, "e", &jane.0))
            .unwrap()
            .unwrap();
        assert_eq!(record.entries.len(), 2, "entries ≤ the largest max_prompts");
        // Over capacity, every shard keeps its share.
        let per_shard = USER_CAPACITY.div_ceil(SHARDS);
        for i in 0..(USER_CAPACITY + 5_000) {
            let u = user_key(format!("u{i}").as_bytes());
            note_admitted(&mut store, &small, "e", &u, None, T0 + 10).unwrap();
        }
        let (subjects, bytes) = size(&store, &small, Scope::User);
        assert!(subjects <= SHARDS * per_shard, "{subjects}");
        assert!(subjects > USER_CAPACITY - SHARDS, "{subjects}");
        assert!(bytes < SHARDS * (1 + per_shard * (21 + 8)), "{bytes}");
    }

    #[test]
    fn garbage_in_the_store_never_panics_and_a_failing_store_is_an_error() {
        let mut store = MemoryStore::default();
        let jane = user_key(b"jane");
        let l = layout(Scope::User, &limits().per_user);
        let key = l.key(l.shard_of(&subject(Scope::User, "duo", &jane.0)));
        store.set_if_cas(&key, &[1, 0xff, 0xff], 0).unwrap();
        assert!(matches!(
            prompt(&mut store, "jane", None, T0),
            Counted::Admitted { count: 1, .. }
        ));

        struct Down;
        impl Store for Down {
            fn get(&self, _: &str) -> Result<Option<Versioned>, StoreError> {
                Err(StoreError::Unavailable("down".into()))
            }
            fn set_if_cas(&mut self, _: &str, _: &[u8], _: u32) -> Result<(), StoreError> {
                Err(StoreError::Unavailable("down".into()))
            }
        }
        assert_eq!(
            count_local(&mut Down, &limits(), "duo", &jane, Some(b"c"), T0),
            Err(UpdateError::Store(StoreError::Unavailable("down".into())))
        );
    }
}

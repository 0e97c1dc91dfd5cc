//! Per-user prompt history and the fatigue signature, in shared data: the prompts let
//! through recently (time, state, transaction), and the provider's answers to them. From
//! it, [`note_prompt`] tells a first prompt from a repeated one, and [`settle`] tells a
//! normal approval from one given after denied or unanswered prompts (the push-bombing
//! signature), which leaves a mark ([`super::marks`]) the gate acts on. A second set
//! keeps each pending transaction's user, so a poll that does not name its user is
//! attributed ([`transaction`]).
//!
//! **What counts as unanswered.** At an approval, every earlier prompt of the fatigue
//! window since the last approval that was denied, timed out, or never answered as far as
//! the gate saw (still pending, whatever its age: the user passed it over for a later one,
//! or its answer never came back through the gate) counts as unanswered. No timer is
//! needed: a prompt the provider let time out without the client asking again is exactly
//! a prompt left unanswered.
//!
//! Bounded and versioned: at most [`MAX_PROMPTS`] prompts per user within the fatigue
//! window, [`USER_CAPACITY`] users, [`TRANSACTION_CAPACITY`] transactions for
//! [`TRANSACTION_TTL_SECS`], each set spread over [`SHARDS`] keys, least recent dropped
//! first. Only digests are kept: never a user name or a provider's transaction id.

use super::shard::{secs32, u32_at, Layout, Record};
use super::{marks, FatigueSettings, UserKey};
use crate::store::{Store, UpdateError};

/// Number of shards each set is spread over.
pub const SHARDS: usize = 256;
/// Prompts remembered per user (the newest).
pub const MAX_PROMPTS: usize = 16;
/// Users whose prompts are remembered.
pub const USER_CAPACITY: usize = 50_000;
/// Pending transactions remembered.
pub const TRANSACTION_CAPACITY: usize = 50_000;
/// How long a transaction is remembered after its prompt, seconds (a push is answered or
/// times out within minutes; a poll after this is attributed by its own sources only).
pub const TRANSACTION_TTL_SECS: u64 = 600;

/// A provider's answer to a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptOutcome {
    /// The user approved.
    Approved,
    /// The user denied.
    Denied,
    /// The push timed out unanswered.
    Timeout,
    /// Not answered yet.
    Pending,
}

impl PromptOutcome {
    /// `approved`, `denied`, `timeout`, `pending`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PromptOutcome::Approved => "approved",
            PromptOutcome::Denied => "denied",
            PromptOutcome::Timeout => "timeout",
            PromptOutcome::Pending => "pending",
        }
    }

    /// The outcome named `name` (configuration).
    pub fn parse(name: &str) -> Option<PromptOutcome> {
        [
            PromptOutcome::Approved,
            PromptOutcome::Denied,
            PromptOutcome::Timeout,
            PromptOutcome::Pending,
        ]
        .into_iter()
        .find(|o| o.as_str() == name)
    }

    fn code(self) -> u8 {
        match self {
            PromptOutcome::Pending => 0,
            PromptOutcome::Approved => 1,
            PromptOutcome::Denied => 2,
            PromptOutcome::Timeout => 3,
        }
    }

    fn from_code(code: u8) -> Option<PromptOutcome> {
        match code {
            0 => Some(PromptOutcome::Pending),
            1 => Some(PromptOutcome::Approved),
            2 => Some(PromptOutcome::Denied),
            3 => Some(PromptOutcome::Timeout),
            _ => None,
        }
    }
}

/// What one prompt or answer was, for the record and the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptEvent {
    /// A prompt, the first not yet approved in the fatigue window.
    Prompt,
    /// A prompt after others not yet approved in the window.
    PromptRepeated {
        /// Prompts in the window not yet approved, this one included.
        count: u32,
    },
    /// The user denied.
    Denied,
    /// The push timed out.
    Timeout,
    /// The user approved.
    Approved,
    /// The user approved after denied or unanswered prompts: approved under pressure.
    ApprovedAfterRepeats {
        /// The denied or unanswered prompts before it.
        unanswered: u32,
    },
}

impl PromptEvent {
    /// `push_prompt`, `push_prompt_repeated`, `push_denied`, `push_timeout`,
    /// `push_approved`, `push_approved_after_repeats`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PromptEvent::Prompt => "push_prompt",
            PromptEvent::PromptRepeated { .. } => "push_prompt_repeated",
            PromptEvent::Denied => "push_denied",
            PromptEvent::Timeout => "push_timeout",
            PromptEvent::Approved => "push_approved",
            PromptEvent::ApprovedAfterRepeats { .. } => "push_approved_after_repeats",
        }
    }
}

/// An answer recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// What it was.
    pub event: PromptEvent,
    /// Whether the user was marked as approved under pressure.
    pub marked: bool,
}

/// A transaction the gate saw prompted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownTransaction {
    /// The user it was prompted for.
    pub user: UserKey,
    /// Whether it is waiting for an answer (none yet, or the last one was pending).
    pub pending: bool,
}

// A prompt entry: time u32 | state (bits 0-1 outcome code, bit 7: has a transaction) |
// the transaction digest's first 8 bytes (zero when none).
const PROMPT_BYTES: usize = 13;
const HAS_TRANSACTION: u8 = 0x80;
// A transaction entry: user 16 | time u32 | outcome code.
const TRANSACTION_BYTES: usize = 21;

const PROMPTS: Layout = Layout {
    prefix: "mfa_gate.prompts.v1.history",
    shards: SHARDS,
    format: 1,
    entry_bytes: PROMPT_BYTES,
    max_entries: MAX_PROMPTS,
    capacity: USER_CAPACITY,
};

const TRANSACTIONS: Layout = Layout {
    prefix: "mfa_gate.prompts.v1.transactions",
    shards: SHARDS,
    format: 1,
    entry_bytes: TRANSACTION_BYTES,
    max_entries: 1,
    capacity: TRANSACTION_CAPACITY,
};

/// One remembered prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Prompt {
    time: u64,
    state: PromptOutcome,
    transaction: Option<[u8; 8]>,
}

impl Prompt {
    fn decode(bytes: &[u8]) -> Option<Prompt> {
        let time = u64::from(u32_at(bytes, 0)?);
        let flags = *bytes.get(4)?;
        if flags & !(HAS_TRANSACTION | 0b11) != 0 {
            return None;
        }
        let state = PromptOutcome::from_code(flags & 0b11)?;
        let transaction: [u8; 8] = bytes.get(5..13)?.try_into().ok()?;
        Some(Prompt {
            time,
            state,
            transaction: (flags & HAS_TRANSACTION != 0).then_some(transaction),
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PROMPT_BYTES);
        out.extend_from_slice(&secs32(self.time).to_be_bytes());
        let flag = if self.transaction.is_some() {
            HAS_TRANSACTION
        } else {
            0
        };
        out.push(self.state.code() | flag);
        out.extend_from_slice(&self.transaction.unwrap_or_default());
        out
    }
}

fn short(transaction: &[u8; 16]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&transaction[..8]);
    out
}

/// The user's prompts within the fatigue window, oldest first (entries that do not
/// decode are dropped).
fn prompts(record: Option<&Record>, window_secs: u64, now: u64) -> Vec<Prompt> {
    let mut list: Vec<Prompt> = record
        .map(|r| r.entries.iter().filter_map(|e| Prompt::decode(e)).collect())
        .unwrap_or_default();
    list.retain(|p| p.time.saturating_add(window_secs) >= now);
    list.sort_by_key(|p| p.time);
    list
}

fn record_of(user: &UserKey, list: &[Prompt], now: u64) -> Record {
    Record {
        subject: user.0,
        recency: secs32(now),
        entries: list.iter().map(Prompt::encode).collect(),
    }
}

/// The prompts after the last approval, before index `before`.
fn since_approval(list: &[Prompt], before: usize) -> &[Prompt] {
    let list = list.get(..before).unwrap_or(list);
    let start = list
        .iter()
        .rposition(|p| p.state == PromptOutcome::Approved)
        .map_or(0, |at| at + 1);
    list.get(start..).unwrap_or_default()
}

fn keep_since(window_secs: u64, now: u64) -> u32 {
    secs32(now.saturating_sub(window_secs))
}

/// At a prompt that passed the limits: [`PromptEvent::Prompt`], or
/// [`PromptEvent::PromptRepeated`] with the prompts in the fatigue window not yet
/// approved, this one included. Remembers the prompt and, when given, its transaction
/// (→ user, pending).
pub fn note_prompt<S: Store + ?Sized>(
    store: &mut S,
    fatigue: &FatigueSettings,
    user: &UserKey,
    transaction: Option<[u8; 16]>,
    now_secs: u64,
) -> Result<PromptEvent, UpdateError> {
    let mut count = 1u32;
    let window = fatigue.window_secs;
    PROMPTS.update(store, &user.0, keep_since(window, now_secs), |record| {
        let mut list = prompts(record, window, now_secs);
        count = u32::try_from(since_approval(&list, list.len()).len()).unwrap_or(u32::MAX) + 1;
        list.push(Prompt {
            time: now_secs,
            state: PromptOutcome::Pending,
            transaction: transaction.as_ref().map(short),
        });
        Some(record_of(user, &list, now_secs))
    })?;
    if let Some(transaction) = transaction {
        remember_transaction(store, user, &transaction, PromptOutcome::Pending, now_secs)?;
    }
    Ok(if count > 1 {
        PromptEvent::PromptRepeated { count }
    } else {
        PromptEvent::Prompt
    })
}

/// Gives the user's newest prompt without a transaction the one the provider answered
/// with (Duo's async `txid`, Okta's poll link), and remembers it (→ user, pending).
/// Returns whether a prompt took it.
pub fn attach_transaction<S: Store + ?Sized>(
    store: &mut S,
    fatigue: &FatigueSettings,
    user: &UserKey,
    transaction: &[u8; 16],
    now_secs: u64,
) -> Result<bool, UpdateError> {
    let window = fatigue.window_secs;
    let mut attached = false;
    PROMPTS.update(store, &user.0, keep_since(window, now_secs), |record| {
        let mut list = prompts(record, window, now_secs);
        let at = list
            .iter()
            .rposition(|p| p.transaction.is_none() && p.state == PromptOutcome::Pending);
        let prompt = list.get_mut(at?)?;
        prompt.transaction = Some(short(transaction));
        attached = true;
        Some(record_of(user, &list, now_secs))
    })?;
    if attached {
        remember_transaction(store, user, transaction, PromptOutcome::Pending, now_secs)?;
    }
    Ok(attached)
}

fn remember_transaction<S: Store + ?Sized>(
    store: &mut S,
    user: &UserKey,
    transaction: &[u8; 16],
    state: PromptOutcome,
    now_secs: u64,
) -> Result<(), UpdateError> {
    let keep = keep_since(TRANSACTION_TTL_SECS, now_secs);
    TRANSACTIONS.update(store, transaction, keep, |current| {
        // An answer keeps the prompt's time (the transaction expires from its prompt).
        let time = match (state, current.and_then(decode_transaction)) {
            (PromptOutcome::Pending, _) | (_, None) => now_secs,
            (_, Some((_, time, _))) => time,
        };
        let mut entry = Vec::with_capacity(TRANSACTION_BYTES);
        entry.extend_from_slice(&user.0);
        entry.extend_from_slice(&secs32(time).to_be_bytes());
        entry.push(state.code());
        Some(Record {
            subject: *transaction,
            recency: secs32(time),
            entries: vec![entry],
        })
    })?;
    Ok(())
}

fn decode_transaction(record: &Record) -> Option<(UserKey, u64, PromptOutcome)> {
    let entry = record.entries.last()?;
    let user: [u8; 16] = entry.get(..16)?.try_into().ok()?;
    let time = u64::from(u32_at(entry, 16)?);
    let state = PromptOutcome::from_code(*entry.get(20)?)?;
    Some((UserKey(user), time, state))
}

/// What the gate knows of a transaction (`None`: unknown or expired).
pub fn transaction<S: Store + ?Sized>(
    store: &S,
    transaction: &[u8; 16],
    now_secs: u64,
) -> Option<KnownTransaction> {
    let record = TRANSACTIONS.read(store, transaction).ok()??;
    let (user, time, state) = decode_transaction(&record)?;
    (time.saturating_add(TRANSACTION_TTL_SECS) >= now_secs).then_some(KnownTransaction {
        user,
        pending: state == PromptOutcome::Pending,
    })
}

/// The user a poll's transaction belongs to (`None`: unknown or expired).
pub fn transaction_user<S: Store + ?Sized>(
    store: &S,
    transaction: &[u8; 16],
    now_secs: u64,
) -> Option<UserKey> {
    self::transaction(store, transaction, now_secs).map(|t| t.user)
}

/// Records the provider's answer to the user's prompt with this transaction (none given:
/// the newest pending one). An approval after at least `min_unanswered` denied or
/// unanswered prompts of the window is [`PromptEvent::ApprovedAfterRepeats`] and marks the
/// user ([`marks::mark`]). `None`, nothing recorded: a pending answer, or no pending
/// prompt it answers (already settled: a client asking again; or a prompt the gate did
/// not see).
pub fn settle<S: Store + ?Sized>(
    store: &mut S,
    fatigue: &FatigueSettings,
    user: &UserKey,
    transaction: Option<[u8; 16]>,
    outcome: PromptOutcome,
    now_secs: u64,
) -> Result<Option<Settled>, UpdateError> {
    if outcome == PromptOutcome::Pending {
        return Ok(None);
    }
    let window = fatigue.window_secs;
    let mut event: Option<PromptEvent> = None;
    PROMPTS.update(store, &user.0, keep_since(window, now_secs), |record| {
        event = None;
        let mut list = prompts(record, window, now_secs);
        let at = match &transaction {
            Some(t) => list
                .iter()
                .rposition(|p| p.transaction == Some(short(t)))
                .filter(|&at| {
                    list.get(at)
                        .is_some_and(|p| p.state == PromptOutcome::Pending)
                }),
            None => list.iter().rposition(|p| p.state == PromptOutcome::Pending),
        }?;
        let unanswered = since_approval(&list, at)
            .iter()
            .filter(|p| p.state != PromptOutcome::Approved)
            .count();
        let unanswered = u32::try_from(unanswered).unwrap_or(u32::MAX);
        event = Some(match outcome {
            PromptOutcome::Approved if unanswered >= fatigue.min_unanswered => {
                PromptEvent::ApprovedAfterRepeats { unanswered }
            }
            PromptOutcome::Approved => PromptEvent::Approved,
            PromptOutcome::Denied => PromptEvent::Denied,
            _ => PromptEvent::Timeout,
        });
        list.get_mut(at)?.state = outcome;
        Some(record_of(user, &list, now_secs))
    })?;
    let Some(event) = event else {
        return Ok(None);
    };
    if let Some(transaction) = transaction {
        remember_transaction(store, user, &transaction, outcome, now_secs)?;
    }
    let marked = match event {
        PromptEvent::ApprovedAfterRepeats { unanswered } => {
            marks::mark(store, user, now_secs, unanswered, fatigue.mark_ttl_secs)?;
            true
        }
        _ => false,
    };
    Ok(Some(Settled { event, marked }))
}

/// Users and bytes the prompt history keeps (for the figures).
pub fn size<S: Store + ?Sized>(store: &S) -> (usize, usize) {
    PROMPTS.size(store)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::prompts::{transaction_key, user_key, MarkCopy};
    use crate::store::MemoryStore;

    const T0: u64 = 1_700_000_000;

    fn fatigue() -> FatigueSettings {
        FatigueSettings::default()
    }

    fn jane() -> UserKey {
        user_key(b"jane")
    }

    fn tx(n: u8) -> [u8; 16] {
        transaction_key(&[b'x', n])
    }

    fn mark_of(store: &MemoryStore, user: &UserKey, now: u64) -> Option<marks::Mark> {
        MarkCopy::default().lookup(store, user, now)
    }

    #[test]
    fn deny_deny_approve_is_approved_after_repeats_and_marks_the_user() {
        let mut s = MemoryStore::default();
        let f = fatigue();
        assert_eq!(
            note_prompt(&mut s, &f, &jane(), Some(tx(1)), T0).unwrap(),
            PromptEvent::Prompt
        );
        let denied = settle(
            &mut s,
            &f,
            &jane(),
            Some(tx(1)),
            PromptOutcome::Denied,
            T0 + 5,
        );
        assert_eq!(
            denied.unwrap(),
            Some(Settled {
                event: PromptEvent::Denied,
                marked: false
            })
        );
        assert_eq!(
            note_prompt(&mut s, &f, &jane(), Some(tx(2)), T0 + 30).unwrap(),
            PromptEvent::PromptRepeated { count: 2 }
        );
        settle(
            &mut s,
            &f,
            &jane(),
            Some(tx(2)),
            PromptOutcome::Denied,
            T0 + 35,
        )
        .unwrap();
        assert_eq!(
            note_prompt(&mut s, &f, &jane(), Some(tx(3)), T0 + 60).unwrap(),
            PromptEvent::PromptRepeated { count: 3 }
        );
        assert_eq!(mark_of(&s, &jane(), T0 + 61), None);
        let approved = settle(
            &mut s,
            &f,
            &jane(),
            Some(tx(3)),
            PromptOutcome::Approved,
            T0 + 65,
        );
        assert_eq!(
            approved.unwrap(),
            Some(Settled {
                event: PromptEvent::ApprovedAfterRepeats { unanswered: 2 },
                marked: true
            })
        );
        assert_eq!(
            mark_of(&s, &jane(), T0 + 66),
            Some(marks::Mark {
                marked_at: T0 + 65,
                unanswered: 2
            })
        );
        // The same answer seen again records nothing.
        assert_eq!(
            settle(
                &mut s,
                &f,
                &jane(),
                Some(tx(3)),
                PromptOutcome::Approved,
                T0 + 66
            )
            .unwrap(),
            None
        );
        // After an approval, the count starts again.
        assert_eq!(
            note_prompt(&mut s, &f, &jane(), None, T0 + 100).unwrap(),
            PromptEvent::Prompt
        );
        // Others are not marked.
        assert_eq!(mark_of(&s, &user_key(b"john"), T0 + 66), None);
    }

    #[test]
    fn an_approval_alone_is_a_normal_approval() {
        let mut s = MemoryStore::default();
        let f = fatigue();
        note_prompt(&mut s, &f, &jane(), None, T0).unwrap();
        let settled = settle(&mut s, &f, &jane(), None, PromptOutcome::Approved, T0 + 8);
        assert_eq!(
            settled.unwrap(),
            Some(Settled {
                event: PromptEvent::Approved,
                marked: false
            })
        );
        assert_eq!(mark_of(&s, &jane(), T0 + 9), None);
        // A pending answer records nothing; an answer without a prompt neither.
        assert_eq!(
            settle(&mut s, &f, &jane(), None, PromptOutcome::Pending, T0 + 9).unwrap(),
            None
        );
        assert_eq!(
            settle(
                &mut s,
                &f,
                &user_key(b"x"),
                None,
                PromptOutcome::Denied,
                T0 + 9
            )
            .unwrap(),
            None
        );
    }

    #[test]
    fn prompts_left_unanswered_count_and_old_denials_outside_the_window_do_not() {
        let mut s = MemoryStore::default();
        let f = fatigue();
        // Two denials long ago.
        for i in 0..2 {
            note_prompt(&mut s, &f, &jane(), None, T0 + i).unwrap();
            settle(&mut s, &f, &jane(), None, PromptOutcome::Denied, T0 + i).unwrap();
        }
        let later = T0 + f.window_secs + 10;
        note_prompt(&mut s, &f, &jane(), None, later).unwrap();
        let settled = settle(
            &mut s,
            &f,
            &jane(),
            None,
            PromptOutcome::Approved,
            later + 5,
        );
        assert_eq!(settled.unwrap().unwrap().event, PromptEvent::Approved);

        // A burst: two prompts never answered, then a third approved.
        let mut s = MemoryStore::default();
        for (i, t) in [tx(1), tx(2), tx(3)].into_iter().enumerate() {
            note_prompt(&mut s, &f, &jane(), Some(t), T0 + i as u64).unwrap();
        }
        let settled = settle(
            &mut s,
            &f,
            &jane(),
            Some(tx(3)),
            PromptOutcome::Approved,
            T0 + 4,
        );
        assert_eq!(
            settled.unwrap().unwrap().event,
            PromptEvent::ApprovedAfterRepeats { unanswered: 2 }
        );
        // A timeout counts too.
        let mut s = MemoryStore::default();
        note_prompt(&mut s, &f, &jane(), None, T0).unwrap();
        let t = settle(&mut s, &f, &jane(), None, PromptOutcome::Timeout, T0 + 60).unwrap();
        assert_eq!(t.unwrap().event, PromptEvent::Timeout);
        note_prompt(&mut s, &f, &jane(), None, T0 + 61).unwrap();
        let settled = settle(&mut s, &f, &jane(), None, PromptOutcome::Approved, T0 + 62);
        assert_eq!(
            settled.unwrap().unwrap().event,
            PromptEvent::Approved,
            "one unanswered is under min_unanswered 2"
        );
    }

    #[test]
    fn polls_are_attributed_through_the_transaction_until_it_expires() {
        let mut s = MemoryStore::default();
        let f = fatigue();
        note_prompt(&mut s, &f, &jane(), None, T0).unwrap();
        assert_eq!(transaction(&s, &tx(9), T0), None);
        assert!(attach_transaction(&mut s, &f, &jane(), &tx(9), T0 + 1).unwrap());
        assert_eq!(
            transaction(&s, &tx(9), T0 + 2),
            Some(KnownTransaction {
                user: jane(),
                pending: true
            })
        );
        assert_eq!(transaction_user(&s, &tx(9), T0 + 2), Some(jane()));
        settle(
            &mut s,
            &f,
            &jane(),
            Some(tx(9)),
            PromptOutcome::Denied,
            T0 + 10,
        )
        .unwrap();
        assert_eq!(
            transaction(&s, &tx(9), T0 + 11).map(|t| t.pending),
            Some(false)
        );
        assert_eq!(
            transaction_user(&s, &tx(9), T0 + 1 + TRANSACTION_TTL_SECS + 1),
            None
        );
        // Nothing pending without a transaction: nothing to attach to.
        assert!(!attach_transaction(&mut s, &f, &jane(), &tx(8), T0 + 12).unwrap());
    }

    #[test]
    fn prompts_per_user_are_capped_and_garbage_never_panics() {
        let mut s = MemoryStore::default();
        let f = fatigue();
        for i in 0..40 {
            note_prompt(&mut s, &f, &jane(), None, T0 + i).unwrap();
        }
        let record = PROMPTS.read(&s, &jane().0).unwrap().unwrap();
        assert_eq!(record.entries.len(), MAX_PROMPTS);
        assert_eq!(
            note_prompt(&mut s, &f, &jane(), None, T0 + 41).unwrap(),
            PromptEvent::PromptRepeated {
                count: MAX_PROMPTS as u32 + 1
            }
        );
        // Garbage in every shard a user touches.
        let mut s = MemoryStore::default();
        for layout in [PROMPTS, TRANSACTIONS] {
            for shard in 0..SHARDS {
                s.set_if_cas(&layout.key(shard), &[1, 0, 1, 2], 0).unwrap();
            }
        }
        assert_eq!(transaction_user(&s, &tx(1), T0), None);
        assert_eq!(
            note_prompt(&mut s, &f, &jane(), Some(tx(1)), T0).unwrap(),
            PromptEvent::Prompt
        );
        assert_eq!(transaction_user(&s, &tx(1), T0), Some(jane()));
        // An entry with a bad state byte is dropped, not trusted.
        let mut record = PROMPTS.read(&s, &jane().0).unwrap().unwrap();
        record.entries[0][4] = 0x7f;
        let key = PROMPTS.key(PROMPTS.shard_of(&jane().0));
        let cas = s.get(&key).unwrap().unwrap().cas;
        s.set_if_cas(&key, &PROMPTS.encode(&[record]), cas).unwrap();
        assert_eq!(
            note_prompt(&mut s, &f, &jane(), None, T0 + 1).unwrap(),
            PromptEvent::Prompt
        );
    }
}

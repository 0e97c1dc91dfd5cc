//! When to fetch each issuer's keys, as data: the periodic refresh, the backoff after a
//! failure, and the limits on fetches that requests trigger (a token naming an unknown
//! `kid`, or no keys loaded yet). The glue asks what is due or admitted, dispatches the
//! calls and reports how they ended; every decision lives here, natively tested. A leaf:
//! it imports nothing from the crate.

/// Seconds between refreshes triggered by tokens naming an unknown `kid`, per issuer.
pub const UNKNOWN_KID_REFRESH_INTERVAL_SECS: u64 = 30;
/// Fetches that requests may have in flight per issuer while no keys are loaded yet.
pub const MAX_WAITING_FETCHES: u32 = 8;
/// First retry delay after a failed fetch; doubles per failure up to the refresh interval.
pub const RETRY_BASE_SECS: u64 = 5;
/// Tick period while any issuer fetches keys remotely.
pub const TICK_SECS: u64 = 5;
/// Refresh interval assumed for an issuer that names none (it has no remote keys).
const FALLBACK_REFRESH_SECS: u64 = 600;

/// Why a request needs keys before it can be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysWanted {
    /// No keys were loaded yet for this issuer.
    NotLoaded,
    /// The token names a `kid` the current key set lacks (rotation?).
    UnknownKid,
}

/// Which kind of fetch finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchKind {
    /// The root context's scheduled refresh.
    Scheduled,
    /// A request waiting for keys.
    Request,
}

/// Fetch bookkeeping for one issuer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct IssuerFetch {
    /// Seconds between refreshes; `None` when the issuer's keys are not fetched.
    refresh_secs: Option<u64>,
    /// Scheduled (root) fetch in flight.
    scheduled_in_flight: bool,
    /// Request-triggered fetches in flight.
    request_fetches_in_flight: u32,
    /// When the next scheduled fetch is due (seconds since epoch).
    next_due_secs: u64,
    /// Consecutive failures.
    failures: u32,
    /// Last request-triggered fetch for an unknown kid.
    last_unknown_kid_fetch_secs: Option<u64>,
}

/// The key-fetch schedule of every issuer, by issuer index.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeySchedule {
    issuers: Vec<IssuerFetch>,
}

impl KeySchedule {
    /// A schedule for issuers with these refresh intervals (`None`: keys not fetched).
    /// Every remote issuer is due at once.
    pub fn new(refresh_secs: impl IntoIterator<Item = Option<u64>>) -> Self {
        KeySchedule {
            issuers: refresh_secs
                .into_iter()
                .map(|refresh_secs| IssuerFetch {
                    refresh_secs,
                    ..IssuerFetch::default()
                })
                .collect(),
        }
    }

    /// Whether any issuer fetches keys, so ticks are needed.
    pub fn has_periodic_work(&self) -> bool {
        self.issuers.iter().any(|i| i.refresh_secs.is_some())
    }

    /// The issuers whose scheduled fetch is due at `now` (none already in flight).
    pub fn due(&self, now: u64) -> Vec<usize> {
        (self.issuers.iter().enumerate())
            .filter(|(_, i)| {
                i.refresh_secs.is_some() && !i.scheduled_in_flight && now >= i.next_due_secs
            })
            .map(|(index, _)| index)
            .collect()
    }

    /// A scheduled fetch of issuer `index` was dispatched.
    pub fn scheduled_started(&mut self, index: usize) {
        if let Some(i) = self.issuers.get_mut(index) {
            i.scheduled_in_flight = true;
        }
    }

    /// A scheduled fetch could not be dispatched: try again two ticks later.
    pub fn scheduled_not_dispatched(&mut self, index: usize, now: u64) {
        if let Some(i) = self.issuers.get_mut(index) {
            i.next_due_secs = now.saturating_add(TICK_SECS * 2);
        }
    }

    /// Whether a request may start a fetch of issuer `index` now: while no keys are loaded,
    /// up to [`MAX_WAITING_FETCHES`] at once; for an unknown `kid`, one per
    /// [`UNKNOWN_KID_REFRESH_INTERVAL_SECS`].
    pub fn admits_request(&self, index: usize, why: KeysWanted, now: u64) -> bool {
        let Some(i) = self.issuers.get(index) else {
            return false;
        };
        match why {
            KeysWanted::NotLoaded => i.request_fetches_in_flight < MAX_WAITING_FETCHES,
            KeysWanted::UnknownKid => i
                .last_unknown_kid_fetch_secs
                .is_none_or(|last| now.saturating_sub(last) >= UNKNOWN_KID_REFRESH_INTERVAL_SECS),
        }
    }

    /// A request's fetch of issuer `index` was dispatched.
    pub fn request_started(&mut self, index: usize, why: KeysWanted, now: u64) {
        if let Some(i) = self.issuers.get_mut(index) {
            i.request_fetches_in_flight += 1;
            if why == KeysWanted::UnknownKid {
                i.last_unknown_kid_fetch_secs = Some(now);
            }
        }
    }

    /// A fetch of issuer `index` ended (`succeeded`: a usable key set arrived): the next
    /// refresh is due one interval later, or after a backoff that doubles per consecutive
    /// failure from [`RETRY_BASE_SECS`] up to the interval.
    pub fn finished(&mut self, index: usize, kind: FetchKind, succeeded: bool, now: u64) {
        let Some(i) = self.issuers.get_mut(index) else {
            return;
        };
        match kind {
            FetchKind::Scheduled => i.scheduled_in_flight = false,
            FetchKind::Request => {
                i.request_fetches_in_flight = i.request_fetches_in_flight.saturating_sub(1)
            }
        }
        let refresh = i.refresh_secs.unwrap_or(FALLBACK_REFRESH_SECS);
        if succeeded {
            i.failures = 0;
            i.next_due_secs = now.saturating_add(refresh);
        } else {
            i.failures = i.failures.saturating_add(1);
            let shift = i.failures.saturating_sub(1).min(10);
            let delay = RETRY_BASE_SECS.saturating_mul(1 << shift).min(refresh);
            i.next_due_secs = now.saturating_add(delay);
        }
    }
}

/// Longest wait between polls after failures, seconds.
pub const MAX_POLL_BACKOFF_SECS: u64 = 300;

/// When one transmitter is polled (RFC 8936): every interval; at once again while it has
/// more events; after a failure, the interval doubled per consecutive failure (at most
/// [`MAX_POLL_BACKOFF_SECS`]). One poll at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollSchedule {
    interval_secs: u64,
    next_due_secs: u64,
    in_flight: bool,
    failures: u32,
}

impl PollSchedule {
    /// A schedule polling every `interval_secs`, first due at once.
    pub fn new(interval_secs: u64) -> Self {
        PollSchedule {
            interval_secs: interval_secs.max(1),
            next_due_secs: 0,
            in_flight: false,
            failures: 0,
        }
    }

    /// Whether a poll should start now.
    pub fn due(&self, now_secs: u64) -> bool {
        !self.in_flight && now_secs >= self.next_due_secs
    }

    /// A poll started.
    pub fn started(&mut self) {
        self.in_flight = true;
    }

    /// A poll could not start (no lease, dispatch refused): try again next interval.
    pub fn skipped(&mut self, now_secs: u64) {
        self.in_flight = false;
        self.next_due_secs = now_secs.saturating_add(self.interval_secs);
    }

    /// The poll ended: `ok` when the body was readable; `more` when the transmitter
    /// said more events are waiting.
    pub fn finished(&mut self, ok: bool, more: bool, now_secs: u64) {
        self.in_flight = false;
        if ok {
            self.failures = 0;
            self.next_due_secs = if more {
                now_secs
            } else {
                now_secs.saturating_add(self.interval_secs)
            };
        } else {
            self.failures = self.failures.saturating_add(1);
            self.next_due_secs = now_secs.saturating_add(self.backoff_secs());
        }
    }

    /// The wait after the current run of failures.
    pub fn backoff_secs(&self) -> u64 {
        let doublings = self.failures.min(16);
        (self.interval_secs << doublings).min(MAX_POLL_BACKOFF_SECS.max(self.interval_secs))
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// How long a poller's lease lasts: long enough to cover a slow poll, short enough
    /// that another VM takes over soon after the holder goes away.
    pub fn lease_secs(&self) -> u64 {
        self.interval_secs.saturating_mul(3).max(15)
    }
}

/// Attempts a [`RetryQueue`] item gets before it is given up.
pub const MAX_ATTEMPTS: u32 = 6;
/// First retry delay; doubles per failed attempt up to [`MAX_POLL_BACKOFF_SECS`].
pub const RETRY_FIRST_SECS: u64 = 2;

/// Work to try until it succeeds, with backoff: at most `capacity` items (the oldest is
/// dropped beyond, and reported), each tried at most [`MAX_ATTEMPTS`] times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryQueue<T> {
    items: Vec<Queued<T>>,
    capacity: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Queued<T> {
    item: T,
    attempts: u32,
    due_secs: u64,
}

/// What became of a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry<T> {
    /// Queued again, to be tried after this many seconds.
    Later(u64),
    /// Out of attempts: given up.
    GaveUp(T),
}

impl<T> RetryQueue<T> {
    /// An empty queue of at most `capacity` items.
    pub fn new(capacity: usize) -> Self {
        RetryQueue {
            items: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    /// Queues `item`, due at once. Returns the item dropped to make room, if any.
    pub fn push(&mut self, item: T, now_secs: u64) -> Option<T> {
        let dropped = (self.items.len() >= self.capacity).then(|| self.items.remove(0).item);
        self.items.push(Queued {
            item,
            attempts: 0,
            due_secs: now_secs,
        });
        dropped
    }

    /// Takes every item that is due, with the attempts made so far.
    pub fn take_due(&mut self, now_secs: u64) -> Vec<(T, u32)> {
        let (due, waiting): (Vec<_>, Vec<_>) =
            self.items.drain(..).partition(|q| q.due_secs <= now_secs);
        self.items = waiting;
        due.into_iter().map(|q| (q.item, q.attempts)).collect()
    }

    /// An attempt (the `attempts`-th before it, counting from 0) failed: queue it again
    /// with backoff, or give it up.
    pub fn failed(&mut self, item: T, attempts: u32, now_secs: u64) -> Retry<T> {
        let attempts = attempts.saturating_add(1);
        if attempts >= MAX_ATTEMPTS {
            return Retry::GaveUp(item);
        }
        let wait = (RETRY_FIRST_SECS << (attempts - 1).min(16)).min(MAX_POLL_BACKOFF_SECS);
        self.push_back(item, attempts, now_secs.saturating_add(wait));
        Retry::Later(wait)
    }

    fn push_back(&mut self, item: T, attempts: u32, due_secs: u64) {
        if self.items.len() >= self.capacity {
            self.items.remove(0);
        }
        self.items.push(Queued {
            item,
            attempts,
            due_secs,
        });
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn remote_issuers_are_due_at_once_and_then_every_interval() {
        let mut s = KeySchedule::new([Some(600), None, Some(60)]);
        assert!(s.has_periodic_work());
        assert_eq!(s.due(NOW), vec![0, 2]);
        s.scheduled_started(0);
        s.scheduled_started(2);
        assert_eq!(s.due(NOW + 1000), Vec::<usize>::new(), "in flight");
        s.finished(0, FetchKind::Scheduled, true, NOW);
        s.finished(2, FetchKind::Scheduled, true, NOW);
        assert_eq!(s.due(NOW + 59), Vec::<usize>::new());
        assert_eq!(s.due(NOW + 60), vec![2]);
        assert_eq!(s.due(NOW + 600), vec![0, 2]);
        assert!(!KeySchedule::new([None]).has_periodic_work());
    }

    #[test]
    fn failures_back_off_doubling_up_to_the_interval_and_success_resets() {
        let mut s = KeySchedule::new([Some(60)]);
        let mut delays = Vec::new();
        for _ in 0..6 {
            s.scheduled_started(0);
            s.finished(0, FetchKind::Scheduled, false, NOW);
            let next = (NOW..).find(|t| !s.due(*t).is_empty()).unwrap_or(NOW);
            delays.push(next - NOW);
        }
        assert_eq!(delays, vec![5, 10, 20, 40, 60, 60]);
        s.finished(0, FetchKind::Scheduled, true, NOW);
        s.finished(0, FetchKind::Scheduled, false, NOW);
        assert!(s.due(NOW + 4).is_empty() && !s.due(NOW + 5).is_empty());
    }

    #[test]
    fn an_undispatched_fetch_is_retried_two_ticks_later() {
        let mut s = KeySchedule::new([Some(600)]);
        s.scheduled_not_dispatched(0, NOW);
        assert!(s.due(NOW + 2 * TICK_SECS - 1).is_empty());
        assert_eq!(s.due(NOW + 2 * TICK_SECS), vec![0]);
    }

    #[test]
    fn requests_waiting_for_first_keys_are_limited_in_flight() {
        let mut s = KeySchedule::new([Some(600)]);
        for _ in 0..MAX_WAITING_FETCHES {
            assert!(s.admits_request(0, KeysWanted::NotLoaded, NOW));
            s.request_started(0, KeysWanted::NotLoaded, NOW);
        }
        assert!(!s.admits_request(0, KeysWanted::NotLoaded, NOW));
        s.finished(0, FetchKind::Request, false, NOW);
        assert!(s.admits_request(0, KeysWanted::NotLoaded, NOW));
        assert!(
            !s.admits_request(7, KeysWanted::NotLoaded, NOW),
            "no such issuer"
        );
    }

    #[test]
    fn unknown_kid_refreshes_are_one_per_interval() {
        let mut s = KeySchedule::new([Some(600)]);
        assert!(s.admits_request(0, KeysWanted::UnknownKid, NOW));
        s.request_started(0, KeysWanted::UnknownKid, NOW);
        s.finished(0, FetchKind::Request, true, NOW);
        let interval = UNKNOWN_KID_REFRESH_INTERVAL_SECS;
        assert!(!s.admits_request(0, KeysWanted::UnknownKid, NOW + interval - 1));
        assert!(s.admits_request(0, KeysWanted::UnknownKid, NOW + interval));
        // Waiting for first keys is limited separately.
        assert!(s.admits_request(0, KeysWanted::NotLoaded, NOW + 1));
    }

    #[test]
    fn polls_run_every_interval_at_once_while_more_and_back_off_on_failure() {
        let mut s = PollSchedule::new(5);
        assert!(s.due(0));
        s.started();
        assert!(!s.due(100), "one poll at a time");
        s.finished(true, true, 100);
        assert!(s.due(100), "more events: again at once");
        s.started();
        s.finished(true, false, 100);
        assert!(!s.due(104));
        assert!(s.due(105));
        s.started();
        s.finished(false, false, 105);
        assert_eq!(s.backoff_secs(), 10);
        assert!(!s.due(114));
        assert!(s.due(115));
        for _ in 0..10 {
            s.started();
            s.finished(false, false, 200);
        }
        assert_eq!(s.backoff_secs(), MAX_POLL_BACKOFF_SECS);
        s.started();
        s.finished(true, false, 1000);
        assert_eq!(s.failures(), 0);
        assert!(s.due(1005));
        s.skipped(1005);
        assert!(!s.due(1009));
        assert!(s.due(1010));
    }

    #[test]
    fn retries_back_off_and_give_up_after_the_last_attempt() {
        let mut q = RetryQueue::new(2);
        assert_eq!(q.push("a", 100), None);
        assert_eq!(q.take_due(100), vec![("a", 0)]);
        assert!(q.is_empty());
        let mut waits = Vec::new();
        let mut attempts = 0;
        let mut now = 100;
        loop {
            match q.failed("a", attempts, now) {
                Retry::Later(wait) => {
                    waits.push(wait);
                    assert!(q.take_due(now + wait - 1).is_empty());
                    now += wait;
                    let due = q.take_due(now);
                    assert_eq!(due.len(), 1);
                    attempts = due[0].1;
                }
                Retry::GaveUp(item) => {
                    assert_eq!(item, "a");
                    break;
                }
            }
        }
        assert_eq!(waits, vec![2, 4, 8, 16, 32]);
        assert_eq!(attempts + 1, MAX_ATTEMPTS);
        // Bounded: the oldest goes.
        q.push("x", 0);
        q.push("y", 0);
        assert_eq!(q.push("z", 0), Some("x"));
        assert_eq!(q.len(), 2);
    }
}

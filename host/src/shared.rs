//! State one host process shares across its worker VMs: clock, shared data (§3.4), shared queues
//! (§3.5), metrics (§3.7), the log store, the clusters and the cross-worker notification inboxes.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::clusters::Clusters;
use crate::types::{ClockMode, LogLine, MetricSnapshot};
use crate::HostOptions;

/// Locks a mutex, recovering the data if another thread panicked while holding it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The clock every time hostcall, WASI clock and timer follows.
pub(crate) enum Clock {
    /// Unix time in nanoseconds; moves only when advanced.
    Virtual(AtomicU64),
    /// The system clock; `origin` anchors the monotonic clock.
    Real { origin: Instant },
}

impl Clock {
    pub(crate) fn new(mode: ClockMode) -> Self {
        match mode {
            ClockMode::Virtual { start_unix_ms } => {
                Clock::Virtual(AtomicU64::new(start_unix_ms.saturating_mul(1_000_000)))
            }
            ClockMode::Real => Clock::Real {
                origin: Instant::now(),
            },
        }
    }

    pub(crate) fn is_virtual(&self) -> bool {
        matches!(self, Clock::Virtual(_))
    }

    /// Wall-clock time in Unix nanoseconds.
    pub(crate) fn now_unix_ns(&self) -> u64 {
        match self {
            Clock::Virtual(ns) => ns.load(Ordering::SeqCst),
            Clock::Real { .. } => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                .unwrap_or(0),
        }
    }

    pub(crate) fn now_unix_ms(&self) -> u64 {
        self.now_unix_ns() / 1_000_000
    }

    /// Monotonic nanoseconds (virtual: the same as wall time).
    pub(crate) fn monotonic_ns(&self) -> u64 {
        match self {
            Clock::Virtual(ns) => ns.load(Ordering::SeqCst),
            Clock::Real { origin } => {
                u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
            }
        }
    }

    /// Moves a virtual clock forward to `unix_ms` (never backwards). No effect on the real clock.
    pub(crate) fn advance_to_ms(&self, unix_ms: u64) {
        if let Clock::Virtual(ns) = self {
            ns.fetch_max(unix_ms.saturating_mul(1_000_000), Ordering::SeqCst);
        }
    }
}

/// Result of a shared-data set.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CasResult {
    Ok,
    CasMismatch,
}

/// Process-wide shared data keyed by `(vm_id, key)` with cpp-host's CAS rules (§3.4).
pub(crate) struct SharedData {
    entries: HashMap<(String, Vec<u8>), (Vec<u8>, u32)>,
    next_cas: u32,
}

impl SharedData {
    fn new() -> Self {
        SharedData {
            entries: HashMap::new(),
            next_cas: 1,
        }
    }

    fn bump_cas(&mut self) -> u32 {
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        cas
    }

    /// The value and its cas, or None if the key was never set.
    pub(crate) fn get(&self, vm_id: &str, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        self.entries
            .get(&(vm_id.to_string(), key.to_vec()))
            .cloned()
    }

    /// Stores unless the key exists and `cas` is non-zero and differs from the stored cas.
    pub(crate) fn set(&mut self, vm_id: &str, key: &[u8], value: &[u8], cas: u32) -> CasResult {
        let map_key = (vm_id.to_string(), key.to_vec());
        if let Some((_, stored)) = self.entries.get(&map_key) {
            if cas != 0 && cas != *stored {
                return CasResult::CasMismatch;
            }
        }
        let new_cas = self.bump_cas();
        self.entries.insert(map_key, (value.to_vec(), new_cas));
        CasResult::Ok
    }
}

/// One shared queue.
struct Queue {
    /// Worker and root context that receive `proxy_on_queue_ready`.
    worker: usize,
    root_context: u32,
    items: VecDeque<Vec<u8>>,
}

/// Shared queues keyed by `(vm_id, name)` with global non-zero tokens (§3.5).
pub(crate) struct SharedQueues {
    by_name: HashMap<(String, Vec<u8>), u32>,
    queues: HashMap<u32, Queue>,
    next_token: u32,
}

/// A queue token is unknown.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct QueueNotFound;

impl SharedQueues {
    fn new() -> Self {
        SharedQueues {
            by_name: HashMap::new(),
            queues: HashMap::new(),
            next_token: 1,
        }
    }

    /// Registers (or re-targets) a queue; returns its token.
    pub(crate) fn register(&mut self, vm_id: &str, name: &[u8], worker: usize, root: u32) -> u32 {
        let key = (vm_id.to_string(), name.to_vec());
        if let Some(token) = self.by_name.get(&key).copied() {
            if let Some(queue) = self.queues.get_mut(&token) {
                queue.worker = worker;
                queue.root_context = root;
            }
            return token;
        }
        let token = self.next_token;
        self.next_token = self.next_token.wrapping_add(1).max(1);
        self.by_name.insert(key, token);
        self.queues.insert(
            token,
            Queue {
                worker,
                root_context: root,
                items: VecDeque::new(),
            },
        );
        token
    }

    pub(crate) fn resolve(&self, vm_id: &str, name: &[u8]) -> Option<u32> {
        self.by_name
            .get(&(vm_id.to_string(), name.to_vec()))
            .copied()
    }

    /// Appends; returns the (worker, root context) to notify.
    pub(crate) fn enqueue(
        &mut self,
        token: u32,
        data: Vec<u8>,
    ) -> Result<(usize, u32), QueueNotFound> {
        let queue = self.queues.get_mut(&token).ok_or(QueueNotFound)?;
        queue.items.push_back(data);
        Ok((queue.worker, queue.root_context))
    }

    /// Ok(None) = Empty.
    pub(crate) fn dequeue(&mut self, token: u32) -> Result<Option<Vec<u8>>, QueueNotFound> {
        let queue = self.queues.get_mut(&token).ok_or(QueueNotFound)?;
        Ok(queue.items.pop_front())
    }
}

/// Metric kind (ABI MetricType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    pub(crate) fn from_abi(value: i32) -> Option<Self> {
        match value {
            0 => Some(MetricKind::Counter),
            1 => Some(MetricKind::Gauge),
            2 => Some(MetricKind::Histogram),
            _ => None,
        }
    }
}

/// Stat values by (kind, name without `wasmcustom.`); shared by all workers (§3.7).
///
/// Defining a stat resolves it to a handle (as Envoy's `defineMetric` resolves a stat once);
/// updates through the handle are an index, not a name lookup.
#[derive(Default)]
pub(crate) struct MetricStore {
    stats: Vec<Stat>,
    index: HashMap<(MetricKind, String), usize>,
}

struct Stat {
    kind: MetricKind,
    name: String,
    value: i64,
    samples: Vec<u64>,
}

/// A resolved stat (index into the store).
pub(crate) type StatHandle = usize;

impl MetricStore {
    /// Resolves (kind, name), creating the stat at 0 on first definition.
    pub(crate) fn define(&mut self, kind: MetricKind, name: &str) -> StatHandle {
        if let Some(handle) = self.index.get(&(kind, name.to_string())) {
            return *handle;
        }
        let handle = self.stats.len();
        self.stats.push(Stat {
            kind,
            name: name.to_string(),
            value: 0,
            samples: Vec::new(),
        });
        self.index.insert((kind, name.to_string()), handle);
        handle
    }

    /// Adds to a counter or gauge (a counter's record adds, §3.7).
    pub(crate) fn add(&mut self, handle: StatHandle, delta: i64) {
        if let Some(stat) = self.stats.get_mut(handle) {
            stat.value = stat.value.wrapping_add(delta);
        }
    }

    pub(crate) fn set(&mut self, handle: StatHandle, value: i64) {
        if let Some(stat) = self.stats.get_mut(handle) {
            stat.value = value;
        }
    }

    pub(crate) fn get(&self, handle: StatHandle) -> i64 {
        self.stats.get(handle).map_or(0, |stat| stat.value)
    }

    pub(crate) fn record_histogram(&mut self, handle: StatHandle, value: u64) {
        if let Some(stat) = self.stats.get_mut(handle) {
            stat.samples.push(value);
        }
    }

    fn find(&self, kind: MetricKind, name: &str) -> Option<&Stat> {
        self.index
            .get(&(kind, name.to_string()))
            .and_then(|handle| self.stats.get(*handle))
    }

    /// Counter/gauge value by name; for a histogram, its sample count.
    pub(crate) fn by_name(&self, name: &str) -> Option<i64> {
        for kind in [MetricKind::Counter, MetricKind::Gauge] {
            if let Some(stat) = self.find(kind, name) {
                return Some(stat.value);
            }
        }
        self.find(MetricKind::Histogram, name)
            .map(|stat| i64::try_from(stat.samples.len()).unwrap_or(i64::MAX))
    }

    pub(crate) fn histogram(&self, name: &str) -> Option<Vec<u64>> {
        self.find(MetricKind::Histogram, name)
            .map(|stat| stat.samples.clone())
    }

    pub(crate) fn snapshot(&self) -> MetricSnapshot {
        let mut snapshot = MetricSnapshot::new();
        // Histograms first, then counters, then gauges: a later kind of the same name wins.
        for stat in self
            .stats
            .iter()
            .filter(|s| s.kind == MetricKind::Histogram)
        {
            snapshot.insert(
                stat.name.clone(),
                i64::try_from(stat.samples.len()).unwrap_or(i64::MAX),
            );
        }
        for kind in [MetricKind::Counter, MetricKind::Gauge] {
            for stat in self.stats.iter().filter(|s| s.kind == kind) {
                snapshot.insert(stat.name.clone(), stat.value);
            }
        }
        snapshot
    }
}

/// Most log lines kept (oldest dropped first) so a long run stays bounded.
pub(crate) const LOG_CAPACITY: usize = 100_000;

/// Bounded store of every log line, across workers, in emission order.
#[derive(Default)]
pub(crate) struct LogStore {
    lines: VecDeque<LogLine>,
}

impl LogStore {
    pub(crate) fn push(&mut self, line: LogLine) {
        if self.lines.len() >= LOG_CAPACITY {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    pub(crate) fn all(&self) -> Vec<LogLine> {
        self.lines.iter().cloned().collect()
    }

    pub(crate) fn take(&mut self) -> Vec<LogLine> {
        self.lines.drain(..).collect()
    }
}

/// Everything the workers of one host share.
pub(crate) struct Shared {
    pub options: HostOptions,
    pub clock: Clock,
    pub data: Mutex<SharedData>,
    pub queues: Mutex<SharedQueues>,
    pub metrics: Mutex<MetricStore>,
    pub logs: Mutex<LogStore>,
    pub clusters: Mutex<Clusters>,
    /// Per worker: pending `proxy_on_queue_ready(root, token)` notifications.
    pub inboxes: Vec<Mutex<VecDeque<(u32, u32)>>>,
}

impl Shared {
    pub(crate) fn new(options: HostOptions, clusters: Clusters) -> Self {
        let workers = options.workers.max(1);
        Shared {
            clock: Clock::new(options.clock),
            options,
            data: Mutex::new(SharedData::new()),
            queues: Mutex::new(SharedQueues::new()),
            metrics: Mutex::new(MetricStore::default()),
            logs: Mutex::new(LogStore::default()),
            clusters: Mutex::new(clusters),
            inboxes: (0..workers).map(|_| Mutex::new(VecDeque::new())).collect(),
        }
    }

    /// Posts a queue-ready notification to a worker's inbox.
    pub(crate) fn post_queue_ready(&self, worker: usize, root: u32, token: u32) {
        if let Some(inbox) = self.inboxes.get(worker) {
            lock(inbox).push_back((root, token));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // §3.4: cas counter starts at 1; cas=0 unconditional; non-zero cas on absent key succeeds.
    #[test]
    fn shared_data_cas_rules() {
        let mut data = SharedData::new();
        assert_eq!(data.get("", b"k"), None);
        assert_eq!(data.set("", b"k", b"v1", 99), CasResult::Ok);
        assert_eq!(data.get("", b"k"), Some((b"v1".to_vec(), 1)));
        assert_eq!(data.set("", b"k", b"v2", 7), CasResult::CasMismatch);
        assert_eq!(data.set("", b"k", b"v2", 1), CasResult::Ok);
        assert_eq!(data.set("", b"k", b"v3", 0), CasResult::Ok);
        assert_eq!(data.get("", b"k"), Some((b"v3".to_vec(), 3)));
        assert_eq!(data.get("other", b"k"), None);
    }

    // §3.5: register returns the existing token and re-targets.
    #[test]
    fn queue_register_resolve_enqueue() {
        let mut queues = SharedQueues::new();
        let token = queues.register("", b"q", 0, 1);
        assert_eq!(queues.register("", b"q", 1, 1), token);
        assert_eq!(queues.resolve("", b"q"), Some(token));
        assert_eq!(queues.resolve("x", b"q"), None);
        assert_eq!(queues.enqueue(token, b"a".to_vec()), Ok((1, 1)));
        assert_eq!(queues.dequeue(token), Ok(Some(b"a".to_vec())));
        assert_eq!(queues.dequeue(token), Ok(None));
        assert_eq!(queues.dequeue(token + 1), Err(QueueNotFound));
    }
}

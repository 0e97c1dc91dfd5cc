//! The sharded, bounded record sets in shared data that prompt counting, prompt history,
//! transactions and marks are kept in (one codec, so each is checked the same way).
//!
//! A set spreads 16-byte subjects (digests, never names) over `shards` keys. A shard is a
//! format byte, then records sorted by subject: `subject 16 | recency u32 | count u8 |
//! count × entry` (entries of a fixed size, oldest first). A write drops records not
//! recent enough, then the least recent while the shard is over its share of the
//! capacity, and keeps a record's newest entries up to its bound. Bytes that are not
//! exactly this format (another build, garbage) read as an empty shard and are replaced
//! by the next write, never trusted. Changes go through `store::update` only.

use crate::store::{self, Store, StoreError, UpdateError};

/// The most records a shard is read with, whatever the capacity.
const MAX_SHARD_RECORDS: usize = 1 << 16;
/// Bytes of a record before its entries.
const HEADER_BYTES: usize = 16 + 4 + 1;

/// Where and how one record set is kept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// Key prefix (carries the format version).
    pub prefix: &'static str,
    /// Number of shards.
    pub shards: usize,
    /// Format version byte.
    pub format: u8,
    /// Bytes of one entry.
    pub entry_bytes: usize,
    /// The most entries a record keeps (at most 255).
    pub max_entries: usize,
    /// Subjects kept in all.
    pub capacity: usize,
}

/// One subject's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The subject's digest.
    pub subject: [u8; 16],
    /// When it was last written (seconds, saturating at `u32::MAX`): least recent first
    /// out.
    pub recency: u32,
    /// The entries, oldest first, each `entry_bytes` long.
    pub entries: Vec<Vec<u8>>,
}

impl Layout {
    /// The key of shard `index`.
    pub fn key(&self, index: usize) -> String {
        format!("{}.{index}", self.prefix)
    }

    /// The shard `subject` lives in.
    pub fn shard_of(&self, subject: &[u8; 16]) -> usize {
        usize::from(u16::from_be_bytes([subject[14], subject[15]])) % self.shards.max(1)
    }

    fn per_shard(&self) -> usize {
        self.capacity
            .div_ceil(self.shards.max(1))
            .clamp(1, MAX_SHARD_RECORDS)
    }

    fn max_bytes(&self) -> usize {
        1 + MAX_SHARD_RECORDS * (HEADER_BYTES + 255 * self.entry_bytes)
    }

    /// Every record of a shard's bytes, if they are exactly this format: whole records,
    /// subjects strictly increasing, at most 255 entries each.
    pub fn decode(&self, bytes: &[u8]) -> Option<Vec<Record>> {
        let mut rest = store::decode(self.format, bytes, self.max_bytes()).ok()?;
        let mut records: Vec<Record> = Vec::new();
        while !rest.is_empty() {
            let header = rest.get(..HEADER_BYTES)?;
            let subject: [u8; 16] = header.get(..16)?.try_into().ok()?;
            let recency = u32::from_be_bytes(header.get(16..20)?.try_into().ok()?);
            let count = usize::from(*header.get(20)?);
            let end = HEADER_BYTES + count * self.entry_bytes;
            let body = rest.get(HEADER_BYTES..end)?;
            if records.last().is_some_and(|r| r.subject >= subject)
                || records.len() >= MAX_SHARD_RECORDS
            {
                return None;
            }
            records.push(Record {
                subject,
                recency,
                entries: body
                    .chunks_exact(self.entry_bytes.max(1))
                    .map(<[u8]>::to_vec)
                    .collect(),
            });
            rest = rest.get(end..)?;
        }
        Some(records)
    }

    /// The shard's bytes for `records` (sorted by subject).
    pub fn encode(&self, records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(self.format);
        for record in records {
            let kept = record.entries.len().min(self.max_entries).min(255);
            let entries = &record.entries[record.entries.len() - kept..];
            out.extend_from_slice(&record.subject);
            out.extend_from_slice(&record.recency.to_be_bytes());
            out.push(u8::try_from(kept).unwrap_or(0));
            for entry in entries {
                let mut fixed = entry.clone();
                fixed.resize(self.entry_bytes, 0);
                out.extend_from_slice(&fixed);
            }
        }
        out
    }

    /// The record of `subject` (`None`: none, or its shard is unreadable).
    pub fn read<S: Store + ?Sized>(
        &self,
        store: &S,
        subject: &[u8; 16],
    ) -> Result<Option<Record>, StoreError> {
        let Some(current) = store.get(&self.key(self.shard_of(subject)))? else {
            return Ok(None);
        };
        Ok(self
            .decode(&current.bytes)
            .and_then(|records| find(&records, subject).cloned()))
    }

    /// Changes the record of `subject`: `change` gets the current one (`None`: absent)
    /// and returns the new one, or `None` to leave the shard as it is. Records whose
    /// recency is below `keep_since` are dropped on the way. Returns whether it wrote.
    pub fn update<S, F>(
        &self,
        store: &mut S,
        subject: &[u8; 16],
        keep_since: u32,
        mut change: F,
    ) -> Result<bool, UpdateError>
    where
        S: Store + ?Sized,
        F: FnMut(Option<&Record>) -> Option<Record>,
    {
        let mut wrote = false;
        store::update(store, &self.key(self.shard_of(subject)), |current| {
            // Garbage, or another format, is replaced, never trusted.
            let mut records = current.and_then(|b| self.decode(b)).unwrap_or_default();
            let Some(mut next) = change(find(&records, subject)) else {
                wrote = false;
                return None;
            };
            next.subject = *subject;
            let kept = next.entries.len().min(self.max_entries).min(255);
            next.entries.drain(..next.entries.len() - kept);
            records.retain(|r| r.subject != *subject && r.recency >= keep_since);
            let per_shard = self.per_shard();
            if records.len() >= per_shard {
                let excess = records.len() + 1 - per_shard;
                let mut by_recency: Vec<(u32, [u8; 16])> =
                    records.iter().map(|r| (r.recency, r.subject)).collect();
                by_recency.sort_unstable();
                let mut gone: Vec<[u8; 16]> =
                    by_recency.iter().take(excess).map(|(_, s)| *s).collect();
                gone.sort_unstable();
                records.retain(|r| gone.binary_search(&r.subject).is_err());
            }
            let at = records.partition_point(|r| r.subject < *subject);
            records.insert(at, next);
            wrote = true;
            Some(self.encode(&records))
        })?;
        Ok(wrote)
    }

    /// Subjects and bytes kept (for the figures and tests).
    pub fn size<S: Store + ?Sized>(&self, store: &S) -> (usize, usize) {
        let mut subjects = 0;
        let mut bytes = 0;
        for shard in 0..self.shards {
            if let Ok(Some(v)) = store.get(&self.key(shard)) {
                subjects += self.decode(&v.bytes).map_or(0, |r| r.len());
                bytes += v.bytes.len();
            }
        }
        (subjects, bytes)
    }
}

/// The record of `subject` among records sorted by subject.
pub(crate) fn find<'r>(records: &'r [Record], subject: &[u8; 16]) -> Option<&'r Record> {
    records
        .binary_search_by(|r| r.subject.cmp(subject))
        .ok()
        .and_then(|at| records.get(at))
}

/// Seconds as stored (32 bits, saturating).
pub(crate) fn secs32(secs: u64) -> u32 {
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// A big-endian u32 at `at`.
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const LAYOUT: Layout = Layout {
        prefix: "test.shard",
        shards: 2,
        format: 7,
        entry_bytes: 2,
        max_entries: 3,
        capacity: 4,
    };

    fn subject(n: u8) -> [u8; 16] {
        let mut s = [0u8; 16];
        s[0] = n;
        s[15] = 0; // every test subject in shard 0
        s
    }

    fn put(store: &mut MemoryStore, n: u8, recency: u32, entries: usize) {
        LAYOUT
            .update(store, &subject(n), 0, |_| {
                Some(Record {
                    subject: subject(n),
                    recency,
                    entries: (0..entries).map(|e| vec![e as u8, n]).collect(),
                })
            })
            .unwrap();
    }

    #[test]
    fn records_round_trip_and_entries_are_capped_newest_kept() {
        let mut store = MemoryStore::default();
        put(&mut store, 1, 10, 5);
        let r = LAYOUT.read(&store, &subject(1)).unwrap().unwrap();
        assert_eq!(r.recency, 10);
        assert_eq!(r.entries, vec![vec![2, 1], vec![3, 1], vec![4, 1]]);
        assert_eq!(LAYOUT.read(&store, &subject(2)).unwrap(), None);
    }

    #[test]
    fn a_full_shard_drops_the_least_recent_and_stale_records_go() {
        let mut store = MemoryStore::default();
        for n in 1..=2 {
            put(&mut store, n, u32::from(n) * 10, 1);
        }
        put(&mut store, 3, 30, 1);
        // Capacity 4 over 2 shards: 2 a shard; subject 1 (least recent) went.
        assert_eq!(LAYOUT.read(&store, &subject(1)).unwrap(), None);
        assert!(LAYOUT.read(&store, &subject(2)).unwrap().is_some());
        LAYOUT
            .update(&mut store, &subject(4), 25, |_| {
                Some(Record {
                    subject: [9; 16],
                    recency: 40,
                    entries: vec![],
                })
            })
            .unwrap();
        assert_eq!(LAYOUT.read(&store, &subject(2)).unwrap(), None, "stale");
        assert!(LAYOUT.read(&store, &subject(3)).unwrap().is_some());
        let r = LAYOUT.read(&store, &subject(4)).unwrap().unwrap();
        assert_eq!(r.subject, subject(4), "stored under the subject asked for");
        assert_eq!(LAYOUT.size(&store).0, 2);
    }

    #[test]
    fn garbage_reads_as_empty_and_is_replaced() {
        let mut store = MemoryStore::default();
        for bytes in [
            &b""[..],
            &[7, 1, 2, 3][..],
            &[6][..],
            &[7; 40][..],
            &[
                7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200,
            ][..],
        ] {
            store.set_if_cas(&LAYOUT.key(0), bytes, 0).unwrap();
            assert_eq!(LAYOUT.read(&store, &subject(1)).unwrap(), None);
            assert_eq!(LAYOUT.decode(bytes), None, "{bytes:?}");
        }
        put(&mut store, 1, 5, 1);
        assert!(LAYOUT.read(&store, &subject(1)).unwrap().is_some());
        // Unsorted subjects are not this format.
        let mut records = LAYOUT
            .decode(&store.get(&LAYOUT.key(0)).unwrap().unwrap().bytes)
            .unwrap();
        records.push(records[0].clone());
        assert_eq!(LAYOUT.decode(&LAYOUT.encode(&records)), None);
    }
}

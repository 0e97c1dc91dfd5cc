//! Data shared by every worker VM (proxy-wasm shared data), through one narrow seam: a
//! [`Store`] gives a value with its version (`cas`) and sets a value only if its version is
//! still the one read. What changes shared data goes through [`update`], the bounded CAS
//! retry loop; values carry a format version and a size bound ([`encode`], [`decode`]);
//! each VM keeps a decoded copy keyed by the version ([`DecodedCopy`]), so an unchanged
//! value costs one read and no decoding. [`MemoryStore`] is the store native tests use.
//! A leaf: it imports nothing from the crate.

use std::collections::HashMap;

/// Attempts [`update`] makes before it gives up on a contended key.
pub const MAX_CAS_ATTEMPTS: u32 = 8;

/// A value and its version, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The stored bytes.
    pub bytes: Vec<u8>,
    /// The version to name when setting it again (never 0).
    pub cas: u32,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The value changed since it was read.
    CasMismatch,
    /// The host refused or cannot answer (its words).
    Unavailable(String),
}

/// Shared data by key.
pub trait Store {
    /// The value at `key` and its version; `None` when there is none.
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError>;

    /// Sets `key` to `bytes` if its version is still `cas`; `cas` 0 sets it whatever it
    /// holds (the host's meaning: use it only for a key read as absent).
    fn set_if_cas(&mut self, key: &str, bytes: &[u8], cas: u32) -> Result<(), StoreError>;
}

/// Why [`update`] did not write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateError {
    /// Every one of [`MAX_CAS_ATTEMPTS`] attempts lost to another writer.
    Contended,
    /// The store failed.
    Store(StoreError),
}

/// Reads `key`, computes its new value from the current one (`None` when absent) and
/// writes it if nobody wrote in between, retrying up to [`MAX_CAS_ATTEMPTS`] times.
/// `change` returning `None` leaves the value as it is. Returns the value now stored
/// (`None` when absent and unchanged).
pub fn update<S, F>(store: &mut S, key: &str, mut change: F) -> Result<Option<Vec<u8>>, UpdateError>
where
    S: Store + ?Sized,
    F: FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
{
    for _ in 0..MAX_CAS_ATTEMPTS {
        let current = store.get(key).map_err(UpdateError::Store)?;
        let (bytes, cas) = match &current {
            Some(v) => (Some(v.bytes.as_slice()), v.cas),
            None => (None, 0),
        };
        let Some(next) = change(bytes) else {
            return Ok(current.map(|v| v.bytes));
        };
        match store.set_if_cas(key, &next, cas) {
            Ok(()) => return Ok(Some(next)),
            Err(StoreError::CasMismatch) => continue,
            Err(e) => return Err(UpdateError::Store(e)),
        }
    }
    Err(UpdateError::Contended)
}

/// Why stored bytes cannot be read as a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// Written in another format version (by another build of the filter).
    OtherVersion(u8),
    /// Over the size bound, or empty.
    BadSize(usize),
}

/// `payload` prefixed with its format `version`, if within `max_bytes` in all.
pub fn encode(version: u8, payload: &[u8], max_bytes: usize) -> Result<Vec<u8>, CodecError> {
    let len = payload.len() + 1;
    if len > max_bytes {
        return Err(CodecError::BadSize(len));
    }
    let mut bytes = Vec::with_capacity(len);
    bytes.push(version);
    bytes.extend_from_slice(payload);
    Ok(bytes)
}

/// The payload of bytes written by [`encode`] with this `version` and bound.
pub fn decode(version: u8, bytes: &[u8], max_bytes: usize) -> Result<&[u8], CodecError> {
    if bytes.is_empty() || bytes.len() > max_bytes {
        return Err(CodecError::BadSize(bytes.len()));
    }
    match bytes.split_first() {
        Some((&v, payload)) if v == version => Ok(payload),
        Some((&v, _)) => Err(CodecError::OtherVersion(v)),
        None => Err(CodecError::BadSize(0)),
    }
}

/// A VM's decoded copy of one shared value, decoded again only when its version changes.
#[derive(Debug, Default)]
pub struct DecodedCopy<T> {
    copy: Option<(u32, T)>,
}

impl<T> DecodedCopy<T> {
    /// The current value of `key` (`None` when absent or unreadable), decoding with
    /// `decode` only when the stored version differs from the copy's.
    pub fn read<S, F>(&mut self, store: &S, key: &str, decode: F) -> Option<&T>
    where
        S: Store + ?Sized,
        F: FnOnce(&[u8]) -> Option<T>,
    {
        let Ok(Some(current)) = store.get(key) else {
            self.copy = None;
            return None;
        };
        let fresh = matches!(&self.copy, Some((cas, _)) if *cas == current.cas);
        if !fresh {
            self.copy = decode(&current.bytes).map(|value| (current.cas, value));
        }
        self.copy.as_ref().map(|(_, value)| value)
    }
}

/// An in-memory [`Store`] with the host's semantics: each set bumps the version; a set
/// naming an old version fails with [`StoreError::CasMismatch`].
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    entries: HashMap<String, Versioned>,
    next_cas: u32,
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        Ok(self.entries.get(key).cloned())
    }

    fn set_if_cas(&mut self, key: &str, bytes: &[u8], cas: u32) -> Result<(), StoreError> {
        let current = self.entries.get(key).map(|v| v.cas);
        if cas != 0 && current != Some(cas) {
            return Err(StoreError::CasMismatch);
        }
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        let versioned = Versioned {
            bytes: bytes.to_vec(),
            cas: self.next_cas,
        };
        self.entries.insert(key.to_string(), versioned);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// A store another VM writes to between each read and write, `races` times.
    struct Contended {
        inner: MemoryStore,
        races: u32,
    }

    impl Store for Contended {
        fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
            self.inner.get(key)
        }

        fn set_if_cas(&mut self, key: &str, bytes: &[u8], cas: u32) -> Result<(), StoreError> {
            if self.races > 0 {
                self.races -= 1;
                let theirs = self.inner.get(key)?.map_or(0, |v| v.cas);
                self.inner.set_if_cas(key, b"theirs", theirs)?;
            }
            self.inner.set_if_cas(key, bytes, cas)
        }
    }

    fn increment(bytes: Option<&[u8]>) -> Option<Vec<u8>> {
        let n = bytes.map_or(0, |b| b.len());
        Some(vec![b'x'; n + 1])
    }

    #[test]
    fn versions_change_on_every_set_and_stale_sets_fail() {
        let mut store = MemoryStore::default();
        assert_eq!(store.get("k"), Ok(None));
        store.set_if_cas("k", b"a", 0).unwrap();
        let first = store.get("k").unwrap().unwrap();
        store.set_if_cas("k", b"b", first.cas).unwrap();
        let second = store.get("k").unwrap().unwrap();
        assert_ne!(first.cas, second.cas);
        assert_eq!(
            store.set_if_cas("k", b"c", first.cas),
            Err(StoreError::CasMismatch)
        );
        assert_eq!(store.get("k").unwrap().unwrap().bytes, b"b");
    }

    #[test]
    fn update_writes_from_the_current_value() {
        let mut store = MemoryStore::default();
        assert_eq!(update(&mut store, "k", increment), Ok(Some(b"x".to_vec())));
        assert_eq!(update(&mut store, "k", increment), Ok(Some(b"xx".to_vec())));
        // No change, no write.
        let before = store.get("k").unwrap();
        assert_eq!(update(&mut store, "k", |_| None), Ok(Some(b"xx".to_vec())));
        assert_eq!(store.get("k").unwrap(), before);
        assert_eq!(update(&mut store, "absent", |_| None), Ok(None));
    }

    /// A contended store holding a value already (a race on an absent key cannot be seen:
    /// setting with cas 0 always succeeds, as on the host).
    fn contended(races: u32) -> Contended {
        let mut inner = MemoryStore::default();
        inner.set_if_cas("k", b"seed", 0).unwrap();
        Contended { inner, races }
    }

    #[test]
    fn update_retries_a_lost_race_and_gives_up_after_the_bound() {
        let mut store = contended(MAX_CAS_ATTEMPTS - 1);
        // The last attempt reads "theirs" (6 bytes) and wins.
        assert_eq!(
            update(&mut store, "k", increment),
            Ok(Some(b"xxxxxxx".to_vec()))
        );
        let mut store = contended(MAX_CAS_ATTEMPTS);
        let mut calls = 0;
        let result = update(&mut store, "k", |b| {
            calls += 1;
            increment(b)
        });
        assert_eq!(result, Err(UpdateError::Contended));
        assert_eq!(calls, MAX_CAS_ATTEMPTS);
    }

    #[test]
    fn codec_is_versioned_and_bounded() {
        let bytes = encode(2, b"payload", 16).unwrap();
        assert_eq!(decode(2, &bytes, 16), Ok(&b"payload"[..]));
        assert_eq!(decode(3, &bytes, 16), Err(CodecError::OtherVersion(2)));
        assert_eq!(decode(2, &bytes, 4), Err(CodecError::BadSize(8)));
        assert_eq!(decode(2, b"", 16), Err(CodecError::BadSize(0)));
        assert_eq!(encode(2, &[0; 16], 16), Err(CodecError::BadSize(17)));
    }

    #[test]
    fn decoded_copy_decodes_only_when_the_version_changes() {
        let mut store = MemoryStore::default();
        let mut copy: DecodedCopy<usize> = DecodedCopy::default();
        let mut decodes = 0;
        let mut read = |store: &MemoryStore, copy: &mut DecodedCopy<usize>| {
            copy.read(store, "k", |b| {
                decodes += 1;
                Some(b.len())
            })
            .copied()
        };
        assert_eq!(read(&store, &mut copy), None);
        store.set_if_cas("k", b"abc", 0).unwrap();
        assert_eq!(read(&store, &mut copy), Some(3));
        assert_eq!(read(&store, &mut copy), Some(3));
        update(&mut store, "k", increment).unwrap();
        assert_eq!(read(&store, &mut copy), Some(4));
        assert_eq!(decodes, 2);
    }
}

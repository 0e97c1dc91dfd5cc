//! Where each subject was last seen, kept in shared data so every worker VM judges a
//! request against the same history: the last sighting (time, country, point) and the
//! countries seen recently. From it, [`assess`] tells a first sighting, a new country and
//! travel too fast to be real ("impossible travel"); [`LocalCopy::observe`] reads the
//! history, assesses and records the sighting when due.
//!
//! **What the facts mean.**
//! - *First sighting*: no history for the subject (never seen, or not within
//!   `known_countries_secs`). Nothing else is judged then: a first sighting is not a new
//!   country, and there is nothing to travel from.
//! - *New country*: the request's country is not among those the subject was seen in
//!   within `known_countries_secs` (at most [`MAX_COUNTRIES`] are remembered, the least
//!   recently seen dropped first).
//! - *Travel*: both the last sighting and the request have coordinates, and they are at
//!   least `min_distance_km` apart once the uncertainty of each point is taken off (0 for
//!   coordinates from headers or a city; for a country-level point, how far that country
//!   reaches from its capital: [`places::country_reach_km`]). The speed is that distance
//!   over the time since the last sighting, counted as at least one second: two far places
//!   seen at the same second, or with the clock gone backwards, are impossible.
//! - *Impossible travel*: faster than `max_speed_kmh`. The default, 805 km/h, is the 500 mph
//!   Okta's velocity behaviour assumes by default (help.okta.com, "Add a velocity
//!   behavior", takes the limit in km/h; the 500 mph default as blinkops.com describes it,
//!   "Detecting and Remediating Okta Impossible Traveler Alerts"). Exactly the limit is
//!   possible.
//!
//! **Cheap.** A request never writes unless its sighting is due: the subject is new, its
//! country or point changed (by `min_distance_km` or more), or the stored sighting is older
//! than `refresh_secs` (which bounds how stale a "last seen" time can be). Subjects are
//! spread over [`SHARDS`] keys by their digest; a VM's [`LocalCopy`] keeps each shard it
//! read, checked once, and reuses it while the shard's version is unchanged, so an
//! unchanged shard costs one read and no decoding.
//!
//! **Bounded and versioned.** Each shard holds at most `capacity / SHARDS` subjects in
//! fixed-size records ([`RECORD_BYTES`]) sorted by digest, behind a format byte; a write
//! drops subjects not seen within `known_countries_secs`, then the least recently seen
//! while over the cap. A shard that is not exactly this format (another build, garbage) is
//! not trusted: it reads as empty and the next write replaces it. Subjects are 16-byte
//! digests the caller computes, never names: shared data holds no identifiers, only
//! approximate places and times.

use super::location::{distance_km, Coordinates, CoordinatesSource, Place};
use super::places;
use crate::store::{self, Store, StoreError, UpdateError};
use smallvec::SmallVec;

/// Number of shards subjects are spread over. At the default capacity a shard holds 391
/// subjects (31 KB): the most a request copies out of shared data.
pub const SHARDS: usize = 256;
/// The shared-data key prefix (the format version is part of it).
pub const KEY_PREFIX: &str = "mfa_gate.sightings.v1";
/// Format version of every value under [`KEY_PREFIX`].
const FORMAT: u8 = 1;
/// Countries remembered per subject.
pub const MAX_COUNTRIES: usize = 8;
/// Bytes of one stored subject.
pub const RECORD_BYTES: usize = 16 + 4 + 2 + 4 + 4 + 1 + 1 + MAX_COUNTRIES * 6;
/// The most subjects a shard is read with, whatever the configured capacity.
const MAX_SHARD_RECORDS: usize = 1 << 16;
/// Micro-degrees in a degree (points are stored as integers).
const MICRO: f64 = 1_000_000.0;

/// How sightings are kept and judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SightingSettings {
    /// Subjects kept in all (spread over the shards); the least recently seen go first.
    pub capacity: usize,
    /// A sighting at an unchanged place is written again once the stored one is this old.
    pub refresh_secs: u64,
    /// How long a country counts as known, and a subject's history is kept.
    pub known_countries_secs: u64,
    /// Faster than this is impossible travel.
    pub max_speed_kmh: f64,
    /// Moves shorter than this (after uncertainty) are jitter, not travel.
    pub min_distance_km: f64,
}

impl Default for SightingSettings {
    fn default() -> Self {
        SightingSettings {
            capacity: 100_000,
            refresh_secs: 300,
            known_countries_secs: 90 * 24 * 3600,
            max_speed_kmh: 805.0,
            min_distance_km: 100.0,
        }
    }
}

/// One sighting, as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sighting {
    /// When, seconds since the epoch (stored as 32 bits: saturates in 2106).
    pub time_secs: u64,
    /// The country, if known.
    pub country: Option<[u8; 2]>,
    /// Where (to a micro-degree), if known.
    pub coordinates: Option<Coordinates>,
    /// Where the coordinates came from (set exactly when `coordinates` is).
    pub source: Option<CoordinatesSource>,
    /// Whether the network was flagged anonymous in any way.
    pub anonymous: bool,
}

/// A country a subject was seen in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownCountry {
    /// ISO 3166-1 alpha-2.
    pub country: [u8; 2],
    /// The last time it was seen there.
    pub last_seen_secs: u64,
}

/// What is kept about one subject.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectRecord {
    /// The subject's digest.
    pub subject: [u8; 16],
    /// The last sighting recorded.
    pub last: Sighting,
    /// The countries seen recently (at most [`MAX_COUNTRIES`]).
    pub countries: SmallVec<[KnownCountry; MAX_COUNTRIES]>,
}

impl SubjectRecord {
    /// Whether `country` was seen within `known_secs` of `now_secs` (a time after now,
    /// from a clock that went back, counts as recent).
    pub fn knows(&self, country: [u8; 2], now_secs: u64, known_secs: u64) -> bool {
        self.countries
            .iter()
            .any(|k| k.country == country && recent(k.last_seen_secs, now_secs, known_secs))
    }
}

fn recent(at: u64, now: u64, within: u64) -> bool {
    at.saturating_add(within) >= now
}

/// A move between the last sighting and this request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Travel {
    /// The country of the last sighting.
    pub from_country: Option<[u8; 2]>,
    /// Whether the last sighting's network was flagged anonymous.
    pub from_anonymous: bool,
    /// The great-circle distance between the two points.
    pub km: f64,
    /// The uncertainty taken off `km` before judging the speed (country-level points).
    pub margin_km: f64,
    /// Seconds since the last sighting (0 when the clock went backwards).
    pub secs: u64,
    /// `km - margin_km` over `secs` (at least one second), in km/h.
    pub kmh: f64,
}

/// What the history says about this request's place.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LocationFacts {
    /// No history for the subject.
    pub first_sighting: bool,
    /// A country not seen recently.
    pub new_country: bool,
    /// A move beyond jitter since the last sighting.
    pub travel: Option<Travel>,
    /// That move was faster than `max_speed_kmh`.
    pub impossible_travel: bool,
}

/// Why [`LocalCopy::observe`] could not finish.
#[derive(Debug, Clone, PartialEq)]
pub enum SightingError {
    /// The history could not be read: nothing was judged.
    Read(StoreError),
    /// The request was judged (`facts`) but its sighting could not be recorded.
    Write {
        /// What the history said.
        facts: LocationFacts,
        /// Why the write failed.
        error: UpdateError,
    },
}

impl SightingError {
    /// The facts judged before the failure, if any.
    pub fn facts(&self) -> Option<&LocationFacts> {
        match self {
            Self::Read(_) => None,
            Self::Write { facts, .. } => Some(facts),
        }
    }
}

impl std::fmt::Display for SightingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store_error = |f: &mut std::fmt::Formatter<'_>, e: &StoreError| match e {
            StoreError::CasMismatch => f.write_str("shared data changed under the write"),
            StoreError::Unavailable(why) => write!(f, "shared data unavailable: {why}"),
        };
        match self {
            Self::Read(e) => store_error(f, e),
            Self::Write {
                error: UpdateError::Contended,
                ..
            } => f.write_str("shared data stayed contended"),
            Self::Write {
                error: UpdateError::Store(e),
                ..
            } => store_error(f, e),
        }
    }
}

/// The shared-data key of shard `index`.
pub fn shard_key(index: usize) -> String {
    format!("{KEY_PREFIX}.shard.{index}")
}

/// The shard `subject` lives in.
pub fn shard_of(subject: &[u8; 16]) -> usize {
    usize::from(subject[15]) % SHARDS
}

/// How uncertain a point is, in km: 0 for coordinates from headers or a city, the
/// country's reach for a country-level point (and a world's width when unknown).
fn uncertainty_km(source: Option<CoordinatesSource>, country: Option<[u8; 2]>) -> f64 {
    match source {
        Some(CoordinatesSource::Header | CoordinatesSource::CityTable) => 0.0,
        Some(CoordinatesSource::CountryTable) | None => country
            .and_then(places::country_reach_km)
            .unwrap_or(20_000.0),
    }
}

/// What `previous` (the subject's record, `None` when there is none) says about a request
/// from `place` at `now_secs`. Pure; a place with neither country nor coordinates says
/// nothing.
pub fn assess(
    previous: Option<&SubjectRecord>,
    place: &Place,
    now_secs: u64,
    settings: &SightingSettings,
) -> LocationFacts {
    if !place.is_located() {
        return LocationFacts::default();
    }
    let history =
        previous.filter(|r| recent(r.last.time_secs, now_secs, settings.known_countries_secs));
    let Some(previous) = history else {
        return LocationFacts {
            first_sighting: true,
            ..LocationFacts::default()
        };
    };
    let new_country = place
        .country
        .is_some_and(|c| !previous.knows(c, now_secs, settings.known_countries_secs));
    let travel = match (previous.last.coordinates, place.coordinates) {
        (Some(from), Some(to)) => {
            let km = distance_km(from, to);
            let margin_km = uncertainty_km(previous.last.source, previous.last.country)
                + uncertainty_km(place.coordinates_source, place.country);
            let certain_km = km - margin_km;
            let secs = now_secs.saturating_sub(previous.last.time_secs);
            // At least one second: the same second (or a clock gone back) is not a
            // division by zero but the fastest travel there is.
            let hours = secs.max(1) as f64 / 3600.0;
            (certain_km >= settings.min_distance_km).then_some(Travel {
                from_country: previous.last.country,
                from_anonymous: previous.last.anonymous,
                km,
                margin_km,
                secs,
                kmh: certain_km / hours,
            })
        }
        _ => None,
    };
    LocationFacts {
        first_sighting: false,
        new_country,
        travel,
        impossible_travel: travel.is_some_and(|t| t.kmh > settings.max_speed_kmh),
    }
}

/// Whether a request from `place` at `now_secs` must be written over `previous`.
pub fn due(
    previous: Option<&SubjectRecord>,
    place: &Place,
    now_secs: u64,
    settings: &SightingSettings,
) -> bool {
    if !place.is_located() {
        return false;
    }
    let Some(previous) = previous else {
        return true;
    };
    let last = &previous.last;
    let moved = match (last.coordinates, place.coordinates) {
        (Some(a), Some(b)) => distance_km(a, b) >= settings.min_distance_km,
        (None, Some(_)) => true,
        _ => false,
    };
    let country_unknown = place
        .country
        .is_some_and(|c| !previous.countries.iter().any(|k| k.country == c));
    last.country != place.country
        || moved
        || country_unknown
        || now_secs.saturating_sub(last.time_secs) >= settings.refresh_secs
}

/// `previous` with the sighting of `place` at `now_secs` recorded.
fn recorded(
    subject: [u8; 16],
    previous: Option<&SubjectRecord>,
    place: &Place,
    now_secs: u64,
    settings: &SightingSettings,
) -> SubjectRecord {
    // What is stored is what will be read back: times in 32 bits, points in micro-degrees,
    // countries upper-case (anything else from a caller is not kept, so the shard always
    // decodes).
    let now = now_secs.min(u64::from(u32::MAX));
    let country = place
        .country
        .filter(|c| c.iter().all(u8::is_ascii_uppercase));
    let mut countries: SmallVec<[KnownCountry; MAX_COUNTRIES]> =
        previous.map(|r| r.countries.clone()).unwrap_or_default();
    countries.retain(|k| recent(k.last_seen_secs, now, settings.known_countries_secs));
    if let Some(country) = country {
        match countries.iter_mut().find(|k| k.country == country) {
            Some(known) => known.last_seen_secs = known.last_seen_secs.max(now),
            None => {
                if countries.len() >= MAX_COUNTRIES {
                    let oldest = countries
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, k)| k.last_seen_secs)
                        .map(|(at, _)| at);
                    if let Some(at) = oldest {
                        countries.remove(at);
                    }
                }
                countries.push(KnownCountry {
                    country,
                    last_seen_secs: now,
                });
            }
        }
    }
    let coordinates = place.coordinates.and_then(|c| {
        let (lat, lon) = (micro(c.latitude), micro(c.longitude));
        Coordinates::new(f64::from(lat) / MICRO, f64::from(lon) / MICRO)
    });
    SubjectRecord {
        subject,
        last: Sighting {
            time_secs: now,
            country,
            coordinates,
            // Coordinates without a source are taken as precise (read_place always says).
            source: coordinates.map(|_| {
                place
                    .coordinates_source
                    .unwrap_or(CoordinatesSource::Header)
            }),
            anonymous: place.anonymous.any(),
        },
        countries,
    }
}

fn micro(degrees: f64) -> i32 {
    // `as` saturates (and maps NaN to 0): never a panic.
    (degrees * MICRO).round() as i32
}

// Record layout (big-endian): subject 16 | time u32 | country 2 (0 0: none) | latitude i32
// | longitude i32 (micro-degrees) | flags (bits 0-1 source: 0 none, 1 header, 2 city, 3
// country; bit 2 anonymous) | count | MAX_COUNTRIES × (country 2 | last seen u32), unused
// slots zero.

fn encode_record(record: &SubjectRecord, out: &mut Vec<u8>) {
    let time = |t: u64| u32::try_from(t).unwrap_or(u32::MAX).to_be_bytes();
    out.extend_from_slice(&record.subject);
    out.extend_from_slice(&time(record.last.time_secs));
    out.extend_from_slice(&record.last.country.unwrap_or([0, 0]));
    // A point and its source go together: neither is written without the other.
    let point = record.last.coordinates.zip(record.last.source);
    let (lat, lon) = point.map_or((0, 0), |(c, _)| (micro(c.latitude), micro(c.longitude)));
    out.extend_from_slice(&lat.to_be_bytes());
    out.extend_from_slice(&lon.to_be_bytes());
    let source = match point.map(|(_, source)| source) {
        None => 0u8,
        Some(CoordinatesSource::Header) => 1,
        Some(CoordinatesSource::CityTable) => 2,
        Some(CoordinatesSource::CountryTable) => 3,
    };
    out.push(source | (u8::from(record.last.anonymous) << 2));
    let kept = &record.countries[..record.countries.len().min(MAX_COUNTRIES)];
    out.push(u8::try_from(kept.len()).unwrap_or(0));
    for known in kept {
        out.extend_from_slice(&known.country);
        out.extend_from_slice(&time(known.last_seen_secs));
    }
    out.resize(out.len() + (MAX_COUNTRIES - kept.len()) * 6, 0);
}

fn country_code(bytes: [u8; 2]) -> Option<Option<[u8; 2]>> {
    match bytes {
        [0, 0] => Some(None),
        c if c.iter().all(u8::is_ascii_uppercase) => Some(Some(c)),
        _ => None,
    }
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes one record, checking every field; `None` for anything this build would not
/// have written.
fn decode_record(bytes: &[u8]) -> Option<SubjectRecord> {
    if bytes.len() != RECORD_BYTES {
        return None;
    }
    let subject: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
    let time_secs = u64::from(u32_at(bytes, 16)?);
    let country = country_code(bytes.get(20..22)?.try_into().ok()?)?;
    let lat = u32_at(bytes, 22)?.cast_signed();
    let lon = u32_at(bytes, 26)?.cast_signed();
    let flags = *bytes.get(30)?;
    if flags & !0b111 != 0 {
        return None;
    }
    let source = match flags & 0b11 {
        0 => None,
        1 => Some(CoordinatesSource::Header),
        2 => Some(CoordinatesSource::CityTable),
        _ => Some(CoordinatesSource::CountryTable),
    };
    let coordinates = match source {
        None if lat == 0 && lon == 0 => None,
        None => return None,
        Some(_) => Some(Coordinates::new(
            f64::from(lat) / MICRO,
            f64::from(lon) / MICRO,
        )?),
    };
    let count = usize::from(*bytes.get(31)?);
    if count > MAX_COUNTRIES {
        return None;
    }
    let mut countries = SmallVec::new();
    for slot in 0..MAX_COUNTRIES {
        let at = 32 + slot * 6;
        let raw = bytes.get(at..at + 6)?;
        if slot >= count {
            if raw.iter().any(|b| *b != 0) {
                return None;
            }
            continue;
        }
        let code = country_code([*raw.first()?, *raw.get(1)?])??;
        if countries.iter().any(|k: &KnownCountry| k.country == code) {
            return None;
        }
        countries.push(KnownCountry {
            country: code,
            last_seen_secs: u64::from(u32_at(raw, 2)?),
        });
    }
    Some(SubjectRecord {
        subject,
        last: Sighting {
            time_secs,
            country,
            coordinates,
            source,
            anonymous: flags & 0b100 != 0,
        },
        countries,
    })
}

/// A shard's payload (after the format byte) if it is exactly this build's format: whole
/// records, each valid, subjects strictly increasing, within the hard bound.
fn checked_payload(bytes: &[u8]) -> Option<&[u8]> {
    let payload = store::decode(FORMAT, bytes, 1 + MAX_SHARD_RECORDS * RECORD_BYTES).ok()?;
    if payload.len() % RECORD_BYTES != 0 {
        return None;
    }
    let mut previous: Option<&[u8]> = None;
    for chunk in payload.chunks_exact(RECORD_BYTES) {
        decode_record(chunk)?;
        let subject = chunk.get(..16)?;
        if previous.is_some_and(|p| p >= subject) {
            return None;
        }
        previous = Some(subject);
    }
    Some(payload)
}

/// The record of `subject` in a checked payload.
fn find(payload: &[u8], subject: &[u8; 16]) -> Option<SubjectRecord> {
    let count = payload.len() / RECORD_BYTES;
    let (mut low, mut high) = (0, count);
    while low < high {
        let mid = low + (high - low) / 2;
        let chunk = payload.get(mid * RECORD_BYTES..(mid + 1) * RECORD_BYTES)?;
        match chunk.get(..16)?.cmp(subject.as_slice()) {
            std::cmp::Ordering::Less => low = mid + 1,
            std::cmp::Ordering::Greater => high = mid,
            std::cmp::Ordering::Equal => return decode_record(chunk),
        }
    }
    None
}

/// The new value of a shard holding `current` (`None`: absent or unreadable) once the
/// sighting of `subject` at `place` is in it (recorded over what the shard holds now), or
/// `None` when nothing must be written (another VM recorded a sighting that makes this one
/// not due).
fn write_shard(
    current: Option<&[u8]>,
    subject: [u8; 16],
    place: &Place,
    now_secs: u64,
    settings: &SightingSettings,
) -> Option<Vec<u8>> {
    // Garbage, or another format, is replaced, never trusted.
    let payload = current.and_then(checked_payload).unwrap_or_default();
    let stored = find(payload, &subject);
    if !due(stored.as_ref(), place, now_secs, settings) {
        return None;
    }
    let record = recorded(subject, stored.as_ref(), place, now_secs, settings);
    let mut kept: Vec<&[u8]> = payload
        .chunks_exact(RECORD_BYTES)
        .filter(|chunk| chunk.get(..16) != Some(record.subject.as_slice()))
        .filter(|chunk| {
            let time = u32_at(chunk, 16).map_or(0, u64::from);
            recent(time, now_secs, settings.known_countries_secs)
        })
        .collect();
    let per_shard = settings
        .capacity
        .div_ceil(SHARDS)
        .clamp(1, MAX_SHARD_RECORDS);
    if kept.len() >= per_shard {
        // Drop the least recently seen until the new record fits.
        let excess = kept.len() + 1 - per_shard;
        let mut by_age: Vec<(u32, usize)> = kept
            .iter()
            .enumerate()
            .map(|(at, chunk)| (u32_at(chunk, 16).unwrap_or(0), at))
            .collect();
        by_age.sort_unstable();
        let mut drop: Vec<usize> = by_age.iter().take(excess).map(|(_, at)| *at).collect();
        drop.sort_unstable();
        let mut index = 0;
        kept.retain(|_| {
            let gone = drop.binary_search(&index).is_ok();
            index += 1;
            !gone
        });
    }
    let mut new_record = Vec::with_capacity(RECORD_BYTES);
    encode_record(&record, &mut new_record);
    // Never write what would not read back (it would make the whole shard unreadable).
    decode_record(&new_record)?;
    let at = kept.partition_point(|chunk| chunk.get(..16) < Some(record.subject.as_slice()));
    kept.insert(at, &new_record);
    let mut out = Vec::with_capacity(1 + kept.len() * RECORD_BYTES);
    out.push(FORMAT);
    for chunk in kept {
        out.extend_from_slice(chunk);
    }
    Some(out)
}

/// The 16-byte key a subject's sightings are kept under: SHA-256 of the issuer and the
/// subject (never the values themselves).
pub fn subject_key(issuer: &str, subject: &str) -> [u8; 16] {
    let mut hasher = hmac_sha256::Hash::new();
    hasher.update(issuer.as_bytes());
    hasher.update([0u8]);
    hasher.update(subject.as_bytes());
    let full = hasher.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&full[..16]);
    key
}

/// A VM's copy of the shards it has read: each kept (checked) with its version and used
/// again while the version is unchanged.
#[derive(Debug, Default)]
pub struct LocalCopy {
    shards: Vec<Option<(u32, Vec<u8>)>>,
}

impl LocalCopy {
    /// The record of `subject` (`None` when there is none, or its shard is unreadable).
    /// One read of its shard; checked again only when the shard changed.
    pub fn record<S: Store + ?Sized>(
        &mut self,
        store: &S,
        subject: &[u8; 16],
    ) -> Result<Option<SubjectRecord>, StoreError> {
        let shard = shard_of(subject);
        if self.shards.len() != SHARDS {
            self.shards = vec![None; SHARDS];
        }
        let Some(slot) = self.shards.get_mut(shard) else {
            return Ok(None);
        };
        let Some(current) = store.get(&shard_key(shard))? else {
            *slot = None;
            return Ok(None);
        };
        let fresh = matches!(slot, Some((cas, _)) if *cas == current.cas);
        if !fresh {
            *slot = checked_payload(&current.bytes)
                .is_some()
                .then_some((current.cas, current.bytes));
        }
        Ok(slot
            .as_ref()
            .and_then(|(_, bytes)| bytes.get(1..))
            .and_then(|payload| find(payload, subject)))
    }

    /// Judges a request of `subject` from `place` at `now_secs` against the history, and
    /// records the sighting when due. Returns the facts and whether it wrote.
    pub fn observe<S: Store + ?Sized>(
        &mut self,
        store: &mut S,
        subject: [u8; 16],
        place: &Place,
        now_secs: u64,
        settings: &SightingSettings,
    ) -> Result<(LocationFacts, bool), SightingError> {
        let previous = self.record(store, &subject).map_err(SightingError::Read)?;
        let facts = assess(previous.as_ref(), place, now_secs, settings);
        if !due(previous.as_ref(), place, now_secs, settings) {
            return Ok((facts, false));
        }
        let mut wrote = false;
        let result = store::update(store, &shard_key(shard_of(&subject)), |current| {
            let next = write_shard(current, subject, place, now_secs, settings);
            wrote = next.is_some();
            next
        });
        match result {
            Ok(_) => Ok((facts, wrote)),
            Err(error) => Err(SightingError::Write { facts, error }),
        }
    }
}

/// [`LocalCopy::observe`] without a copy to keep (one-off use: the CLI, tests).
pub fn observe<S: Store + ?Sized>(
    store: &mut S,
    subject: [u8; 16],
    place: &Place,
    now_secs: u64,
    settings: &SightingSettings,
) -> Result<(LocationFacts, bool), SightingError> {
    LocalCopy::default().observe(store, subject, place, now_secs, settings)
}

/// Subjects and bytes the sightings keep in `store` (for the figures).
pub fn size<S: Store + ?Sized>(store: &S) -> (usize, usize) {
    let mut subjects = 0;
    let mut bytes = 0;
    for shard in 0..SHARDS {
        if let Ok(Some(v)) = store.get(&shard_key(shard)) {
            subjects += v.bytes.len().saturating_sub(1) / RECORD_BYTES;
            bytes += v.bytes.len();
        }
    }
    (subjects, bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::signals::location::{Anonymity, EARTH_RADIUS_KM};
    use crate::store::{MemoryStore, Versioned};
    use std::cell::Cell;

    const T0: u64 = 1_700_000_000;

    fn at(country: &[u8; 2], lat: f64, lon: f64) -> Place {
        Place {
            country: Some(*country),
            coordinates: Coordinates::new(lat, lon),
            coordinates_source: Some(CoordinatesSource::Header),
            ..Place::default()
        }
    }

    fn paris() -> Place {
        at(b"FR", 48.8566, 2.3522)
    }

    fn new_york() -> Place {
        at(b"US", 40.7128, -74.0060)
    }

    fn country_only(code: &[u8; 2]) -> Place {
        Place {
            country: Some(*code),
            coordinates: places::country_point(*code),
            coordinates_source: Some(CoordinatesSource::CountryTable),
            ..Place::default()
        }
    }

    fn subject(n: u32) -> [u8; 16] {
        let full = hmac_sha256::Hash::hash(&n.to_be_bytes());
        full[..16].try_into().unwrap()
    }

    /// A subject whose digest falls in `shard`, the `k`-th such.
    fn subject_in(shard: usize, k: usize) -> [u8; 16] {
        (0..)
            .map(subject)
            .filter(|s| shard_of(s) == shard)
            .nth(k)
            .unwrap()
    }

    fn settings() -> SightingSettings {
        SightingSettings::default()
    }

    /// Counts reads, and can fail them or every write.
    #[derive(Default)]
    struct Counting {
        inner: MemoryStore,
        reads: Cell<u32>,
        writes: u32,
        fail_reads: bool,
        fail_writes: bool,
    }

    impl Store for Counting {
        fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
            self.reads.set(self.reads.get() + 1);
            if self.fail_reads {
                return Err(StoreError::Unavailable("down".into()));
            }
            self.inner.get(key)
        }
        fn set_if_cas(&mut self, key: &str, bytes: &[u8], cas: u32) -> Result<(), StoreError> {
            if self.fail_writes {
                return Err(StoreError::CasMismatch);
            }
            self.writes += 1;
            self.inner.set_if_cas(key, bytes, cas)
        }
    }

    #[test]
    fn a_first_sighting_is_recorded_and_an_unchanged_place_is_not_written_again() {
        let mut store = Counting::default();
        let mut copy = LocalCopy::default();
        let alice = subject(1);
        let (facts, wrote) = copy
            .observe(&mut store, alice, &paris(), T0, &settings())
            .unwrap();
        assert_eq!(
            facts,
            LocationFacts {
                first_sighting: true,
                ..LocationFacts::default()
            }
        );
        assert!(wrote);
        assert_eq!(store.writes, 1);
        // Same place, within refresh: nothing new, no write, one read.
        for dt in [1, 60, 299] {
            store.reads.set(0);
            let (facts, wrote) = copy
                .observe(&mut store, alice, &paris(), T0 + dt, &settings())
                .unwrap();
            assert_eq!(facts, LocationFacts::default());
            assert!(!wrote);
            assert_eq!(store.reads.get(), 1);
        }
        assert_eq!(store.writes, 1);
        // Jitter within the city is the same place.
        let nearby = at(b"FR", 48.80, 2.13);
        let (facts, wrote) = copy
            .observe(&mut store, alice, &nearby, T0 + 10, &settings())
            .unwrap();
        assert_eq!((facts, wrote), (LocationFacts::default(), false));
        // Once the stored sighting is refresh_secs old, it is written again.
        let (_, wrote) = copy
            .observe(&mut store, alice, &paris(), T0 + 300, &settings())
            .unwrap();
        assert!(wrote);
        let record = copy.record(&store, &alice).unwrap().unwrap();
        assert_eq!(record.last.time_secs, T0 + 300);
        assert_eq!(record.last.country, Some(*b"FR"));
        assert_eq!(store.writes, 2);
    }

    #[test]
    fn a_place_without_country_or_coordinates_says_nothing_and_writes_nothing() {
        let mut store = Counting::default();
        let tor = Place {
            anonymous: Anonymity {
                tor: true,
                anonymous: true,
                ..Anonymity::default()
            },
            ..Place::default()
        };
        let (facts, wrote) = observe(&mut store, subject(1), &tor, T0, &settings()).unwrap();
        assert_eq!((facts, wrote), (LocationFacts::default(), false));
        assert_eq!(store.writes, 0);
    }

    #[test]
    fn a_new_country_is_one_not_seen_recently() {
        let mut store = MemoryStore::default();
        let s = settings();
        let alice = subject(7);
        observe(&mut store, alice, &paris(), T0, &s).unwrap();
        let day = 24 * 3600;
        let (facts, wrote) = observe(&mut store, alice, &new_york(), T0 + day, &s).unwrap();
        assert!(facts.new_country && !facts.first_sighting && wrote);
        // Travel over a day is possible.
        let travel = facts.travel.unwrap();
        assert_eq!(travel.from_country, Some(*b"FR"));
        assert_eq!(travel.secs, day);
        assert!(!facts.impossible_travel);
        // Back to France: known.
        let (facts, _) = observe(&mut store, alice, &paris(), T0 + 2 * day, &s).unwrap();
        assert!(!facts.new_country);
        // Not seen in the US within known_countries_secs: new again.
        let later = T0 + day + s.known_countries_secs + 1;
        observe(&mut store, alice, &paris(), later - 10, &s).unwrap();
        let (facts, _) = observe(&mut store, alice, &new_york(), later, &s).unwrap();
        assert!(facts.new_country && !facts.first_sighting);
    }

    #[test]
    fn history_older_than_the_known_window_is_a_first_sighting() {
        let mut store = MemoryStore::default();
        let s = settings();
        observe(&mut store, subject(1), &paris(), T0, &s).unwrap();
        let (facts, wrote) = observe(
            &mut store,
            subject(1),
            &new_york(),
            T0 + s.known_countries_secs + 1,
            &s,
        )
        .unwrap();
        assert!(facts.first_sighting && !facts.new_country && wrote);
        assert_eq!(facts.travel, None);
    }

    #[test]
    fn impossible_travel_is_faster_than_the_limit() {
        let s = settings();
        let km = distance_km(
            paris().coordinates.unwrap(),
            new_york().coordinates.unwrap(),
        );
        assert!((km - 5837.0).abs() < 5.0);
        // The time at which the trip takes exactly 805 km/h.
        let boundary = km / s.max_speed_kmh * 3600.0;
        let judge = |secs: u64| {
            let mut store = MemoryStore::default();
            observe(&mut store, subject(1), &paris(), T0, &s).unwrap();
            observe(&mut store, subject(1), &new_york(), T0 + secs, &s)
                .unwrap()
                .0
        };
        let fast = judge(boundary.floor() as u64 - 1);
        assert!(fast.impossible_travel);
        let travel = fast.travel.unwrap();
        assert!(travel.kmh > 805.0 && travel.kmh < 806.0, "{}", travel.kmh);
        assert_eq!(travel.margin_km, 0.0);
        assert!(
            (travel.km - km).abs() < 0.5,
            "points stored to a micro-degree"
        );
        let slow = judge(boundary.ceil() as u64 + 1);
        assert!(!slow.impossible_travel);
        let travel = slow.travel.unwrap();
        assert!(travel.kmh < 805.0 && travel.kmh > 804.0, "{}", travel.kmh);
    }

    #[test]
    fn exactly_the_limit_is_possible() {
        let s = SightingSettings {
            max_speed_kmh: 3600.0,
            ..settings()
        };
        // 1,000 km in 1,000 s is exactly 3,600 km/h.
        let previous = SubjectRecord {
            subject: subject(1),
            last: Sighting {
                time_secs: T0,
                country: Some(*b"FR"),
                coordinates: Coordinates::new(0.0, 0.0),
                source: Some(CoordinatesSource::Header),
                anonymous: true,
            },
            countries: SmallVec::new(),
        };
        let degrees = 1000.0 / (EARTH_RADIUS_KM * std::f64::consts::PI / 180.0);
        let place = at(b"FR", degrees, 0.0);
        let travel = assess(Some(&previous), &place, T0 + 1000, &s)
            .travel
            .unwrap();
        assert!((travel.kmh - 3600.0).abs() < 1e-6, "{}", travel.kmh);
        assert!(travel.from_anonymous);
        // At exactly the limit: possible; a hair under the speed: impossible.
        let limit = |max_speed_kmh| SightingSettings {
            max_speed_kmh,
            ..settings()
        };
        let exact = assess(Some(&previous), &place, T0 + 1000, &limit(travel.kmh));
        assert!(!exact.impossible_travel);
        let under = assess(
            Some(&previous),
            &place,
            T0 + 1000,
            &limit(travel.kmh - 1e-9),
        );
        assert!(under.impossible_travel);
        assert!(assess(Some(&previous), &place, T0 + 999, &s).impossible_travel);
    }

    #[test]
    fn no_time_or_a_clock_gone_back_between_far_places_is_impossible() {
        let s = settings();
        for now in [T0, T0 - 3600] {
            let mut store = MemoryStore::default();
            observe(&mut store, subject(1), &paris(), T0, &s).unwrap();
            let (facts, wrote) = observe(&mut store, subject(1), &new_york(), now, &s).unwrap();
            assert!(facts.impossible_travel, "{now}");
            let travel = facts.travel.unwrap();
            assert_eq!(travel.secs, 0);
            assert!(travel.kmh.is_finite() && travel.kmh > 1e6);
            assert!(wrote, "a change of place is recorded");
        }
        // The same place with the clock gone back: nothing, and no write.
        let mut store = MemoryStore::default();
        observe(&mut store, subject(1), &paris(), T0, &s).unwrap();
        let (facts, wrote) = observe(&mut store, subject(1), &paris(), T0 - 3600, &s).unwrap();
        assert_eq!((facts, wrote), (LocationFacts::default(), false));
    }

    #[test]
    fn short_moves_are_jitter_and_need_coordinates_on_both_sides() {
        let s = settings();
        let mut store = MemoryStore::default();
        observe(&mut store, subject(1), &paris(), T0, &s).unwrap();
        // 50 km in one second: below min_distance_km, not travel.
        let (facts, _) =
            observe(&mut store, subject(1), &at(b"FR", 48.4, 2.35), T0 + 1, &s).unwrap();
        assert_eq!(facts.travel, None);
        assert!(!facts.impossible_travel);
        // Coordinates on one side only: a new country, but no travel judged.
        let no_point = Place {
            country: Some(*b"US"),
            ..Place::default()
        };
        let (facts, wrote) = observe(&mut store, subject(1), &no_point, T0 + 2, &s).unwrap();
        assert!(facts.new_country && wrote);
        assert_eq!(facts.travel, None);
        let (facts, _) = observe(&mut store, subject(1), &new_york(), T0 + 3, &s).unwrap();
        assert_eq!(facts.travel, None, "the last sighting had no point");
    }

    #[test]
    fn country_level_points_are_judged_with_their_uncertainty() {
        let s = settings();
        // France then Germany a minute later, known only by country: Strasbourg to Kehl
        // is a walk, so no travel is claimed.
        let mut store = MemoryStore::default();
        observe(&mut store, subject(1), &country_only(b"FR"), T0, &s).unwrap();
        let (facts, _) =
            observe(&mut store, subject(1), &country_only(b"DE"), T0 + 60, &s).unwrap();
        assert!(facts.new_country);
        assert_eq!(facts.travel, None);
        assert!(!facts.impossible_travel);
        // France then Australia a minute later: impossible whatever part of each.
        let (facts, _) =
            observe(&mut store, subject(1), &country_only(b"AU"), T0 + 120, &s).unwrap();
        let travel = facts.travel.unwrap();
        assert_eq!(travel.from_country, Some(*b"DE"));
        assert_eq!(travel.margin_km, 700.0 + 3900.0);
        assert!(facts.impossible_travel);
        // A precise point against a country-level one: only the country's reach is taken.
        let previous = SubjectRecord {
            subject: subject(2),
            last: Sighting {
                time_secs: T0,
                country: Some(*b"FR"),
                coordinates: paris().coordinates,
                source: Some(CoordinatesSource::Header),
                anonymous: false,
            },
            countries: SmallVec::new(),
        };
        let facts = assess(Some(&previous), &country_only(b"US"), T0 + 3600, &s);
        assert_eq!(facts.travel.unwrap().margin_km, 4500.0);
        assert!(
            facts.impossible_travel,
            "Paris to somewhere in the US in an hour"
        );
    }

    #[test]
    fn countries_are_bounded_and_the_least_recent_goes() {
        let s = settings();
        let mut store = MemoryStore::default();
        let codes: [&[u8; 2]; 10] = [
            b"FR", b"DE", b"IT", b"ES", b"PT", b"NL", b"BE", b"AT", b"CH", b"PL",
        ];
        for (i, code) in codes.iter().enumerate() {
            let (_, wrote) = observe(
                &mut store,
                subject(1),
                &country_only(code),
                T0 + i as u64 * 10,
                &s,
            )
            .unwrap();
            assert!(wrote);
        }
        let record = LocalCopy::default()
            .record(&store, &subject(1))
            .unwrap()
            .unwrap();
        assert_eq!(record.countries.len(), MAX_COUNTRIES);
        let kept: Vec<[u8; 2]> = record.countries.iter().map(|k| k.country).collect();
        assert!(!kept.contains(b"FR") && !kept.contains(b"DE"), "{kept:?}");
        assert!(kept.contains(b"PL") && kept.contains(b"IT"));
        // France is new again; Italy is not.
        let now = T0 + 100;
        assert!(assess(Some(&record), &country_only(b"FR"), now, &s).new_country);
        assert!(!assess(Some(&record), &country_only(b"IT"), now, &s).new_country);
    }

    #[test]
    fn a_full_shard_drops_its_least_recently_seen_subject() {
        // Two subjects a shard.
        let s = SightingSettings {
            capacity: 2 * SHARDS,
            ..settings()
        };
        let mut store = MemoryStore::default();
        let subjects: Vec<[u8; 16]> = (0..5).map(|k| subject_in(3, k)).collect();
        for (i, subject) in subjects.iter().enumerate() {
            observe(&mut store, *subject, &paris(), T0 + i as u64, &s).unwrap();
        }
        let mut copy = LocalCopy::default();
        let present: Vec<bool> = subjects
            .iter()
            .map(|x| copy.record(&store, x).unwrap().is_some())
            .collect();
        assert_eq!(present, [false, false, false, true, true]);
        // A subject seen again is kept over one seen less recently.
        observe(&mut store, subjects[3], &new_york(), T0 + 10, &s).unwrap();
        observe(&mut store, subjects[0], &paris(), T0 + 11, &s).unwrap();
        assert!(copy.record(&store, &subjects[3]).unwrap().is_some());
        assert!(copy.record(&store, &subjects[4]).unwrap().is_none());
        assert_eq!(size(&store), (2, 1 + 2 * RECORD_BYTES));
        // Other shards are untouched.
        assert!(store.get(&shard_key(4)).unwrap().is_none());
    }

    #[test]
    fn subjects_not_seen_within_the_window_are_dropped_on_write() {
        let s = SightingSettings {
            known_countries_secs: 1000,
            ..settings()
        };
        let mut store = MemoryStore::default();
        let (a, b) = (subject_in(9, 0), subject_in(9, 1));
        observe(&mut store, a, &paris(), T0, &s).unwrap();
        observe(&mut store, b, &paris(), T0 + 1001, &s).unwrap();
        assert_eq!(size(&store).0, 1);
        assert!(LocalCopy::default().record(&store, &a).unwrap().is_none());
    }

    #[test]
    fn shared_data_that_is_not_this_format_is_replaced_not_trusted() {
        let s = settings();
        let alice = subject_in(5, 0);
        let key = shard_key(5);
        // A record claiming alice was in Australia a second ago, but with a bad flag.
        let mut forged = SubjectRecord {
            subject: alice,
            last: Sighting {
                time_secs: T0,
                country: Some(*b"AU"),
                coordinates: Coordinates::new(-33.87, 151.21),
                source: Some(CoordinatesSource::Header),
                anonymous: false,
            },
            countries: SmallVec::new(),
        };
        forged.countries.push(KnownCountry {
            country: *b"AU",
            last_seen_secs: T0,
        });
        let mut bytes = vec![FORMAT];
        encode_record(&forged, &mut bytes);
        let mut bad_flag = bytes.clone();
        bad_flag[1 + 30] |= 0x80;
        let mut bad_country = bytes.clone();
        bad_country[1 + 20] = b'a';
        let mut dirty_slot = bytes.clone();
        dirty_slot[1 + RECORD_BYTES - 1] = 1;
        let mut unsorted = bytes.clone();
        unsorted.extend_from_slice(&bytes[1..]);
        let garbage: Vec<Vec<u8>> = vec![
            b"\x09garbage".to_vec(),
            vec![FORMAT; 1 + RECORD_BYTES - 1],
            vec![],
            bad_flag,
            bad_country,
            dirty_slot,
            unsorted,
        ];
        for value in garbage {
            let mut store = MemoryStore::default();
            store.set_if_cas(&key, &value, 0).unwrap();
            let mut copy = LocalCopy::default();
            assert_eq!(copy.record(&store, &alice).unwrap(), None, "{value:?}");
            let (facts, wrote) = copy
                .observe(&mut store, alice, &paris(), T0 + 1, &s)
                .unwrap();
            assert!(facts.first_sighting && !facts.impossible_travel);
            assert!(wrote);
            assert_eq!(size(&store), (1, 1 + RECORD_BYTES));
            let record = copy.record(&store, &alice).unwrap().unwrap();
            assert_eq!(record.last.country, Some(*b"FR"));
        }
        // The well-formed forgery is read as what it says (shared data is the VMs' own).
        let mut store = MemoryStore::default();
        store.set_if_cas(&key, &bytes, 0).unwrap();
        let read = LocalCopy::default()
            .record(&store, &alice)
            .unwrap()
            .unwrap();
        assert_eq!(read.last.country, Some(*b"AU"));
        assert_eq!(read.countries.len(), 1);
    }

    #[test]
    fn records_round_trip_and_random_bytes_never_decode_into_nonsense() {
        let mut record = recorded(subject(3), None, &new_york(), T0, &settings());
        record.last.anonymous = true;
        let mut bytes = Vec::new();
        encode_record(&record, &mut bytes);
        assert_eq!(bytes.len(), RECORD_BYTES);
        assert_eq!(decode_record(&bytes), Some(record.clone()));
        // Times past 2106 saturate rather than wrap.
        let far = recorded(subject(3), None, &paris(), u64::MAX, &settings());
        assert_eq!(far.last.time_secs, u64::from(u32::MAX));
        // Pseudo-random bytes: never a panic; whatever decodes is in range.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut chunk = bytes.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x % RECORD_BYTES as u64) as usize;
                chunk[at] = (x >> 32) as u8;
            }
            if let Some(r) = decode_record(&chunk) {
                assert!(r.countries.len() <= MAX_COUNTRIES);
                if let Some(c) = r.last.coordinates {
                    assert!(c.latitude.abs() <= 90.0 && c.longitude.abs() <= 180.0);
                }
            }
            let mut shard = vec![FORMAT];
            shard.extend_from_slice(&chunk);
            let _ = checked_payload(&shard);
        }
    }

    #[test]
    fn an_unchanged_shard_costs_one_read_and_a_changed_one_is_read_again() {
        let s = settings();
        let mut store = Counting::default();
        let mut copy = LocalCopy::default();
        let (a, b) = (subject_in(1, 0), subject_in(1, 1));
        copy.observe(&mut store, a, &paris(), T0, &s).unwrap();
        store.reads.set(0);
        assert!(copy.record(&store, &a).unwrap().is_some());
        assert_eq!(store.reads.get(), 1);
        // Another VM writes b into the same shard: this copy sees it.
        observe(&mut store, b, &new_york(), T0, &s).unwrap();
        assert!(copy.record(&store, &b).unwrap().is_some());
        assert!(copy.record(&store, &a).unwrap().is_some());
    }

    #[test]
    fn store_failures_are_reported_with_the_facts_judged() {
        let s = settings();
        let mut store = Counting {
            fail_reads: true,
            ..Counting::default()
        };
        let err = observe(&mut store, subject(1), &paris(), T0, &s).unwrap_err();
        assert_eq!(
            err,
            SightingError::Read(StoreError::Unavailable("down".into()))
        );
        assert_eq!(err.facts(), None);
        assert_eq!(err.to_string(), "shared data unavailable: down");
        let mut store = Counting {
            fail_writes: true,
            ..Counting::default()
        };
        let err = observe(&mut store, subject(1), &paris(), T0, &s).unwrap_err();
        let facts = err.facts().unwrap();
        assert!(facts.first_sighting);
        assert_eq!(err.to_string(), "shared data stayed contended");
    }

    #[test]
    fn a_race_lost_to_the_same_sighting_does_not_write_twice() {
        let s = settings();
        let mut store = MemoryStore::default();
        let alice = subject(11);
        // This VM read the shard before another VM recorded alice.
        let mut copy = LocalCopy::default();
        assert_eq!(copy.record(&store, &alice).unwrap(), None);
        observe(&mut store, alice, &paris(), T0, &s).unwrap();
        let before = store.get(&shard_key(shard_of(&alice))).unwrap();
        // Deciding from its stale view that a write is due, it finds in the update that
        // nothing is.
        assert!(due(None, &paris(), T0 + 1, &s));
        let current = before.as_ref().map(|v| v.bytes.as_slice());
        assert_eq!(write_shard(current, alice, &paris(), T0 + 1, &s), None);
        let (facts, wrote) = copy
            .observe(&mut store, alice, &paris(), T0 + 1, &s)
            .unwrap();
        assert_eq!((facts, wrote), (LocationFacts::default(), false));
    }

    #[test]
    fn a_caller_made_place_never_corrupts_the_shard() {
        let s = settings();
        let mut store = MemoryStore::default();
        let (a, b) = (subject_in(2, 0), subject_in(2, 1));
        observe(&mut store, a, &paris(), T0, &s).unwrap();
        // A lower-case country and coordinates without a source: not what read_place
        // makes, but it must not make the shard unreadable.
        let odd = Place {
            country: Some(*b"fr"),
            coordinates: Coordinates::new(10.0, 10.0),
            coordinates_source: None,
            ..Place::default()
        };
        let (_, wrote) = observe(&mut store, b, &odd, T0, &s).unwrap();
        assert!(wrote);
        let mut copy = LocalCopy::default();
        assert!(
            copy.record(&store, &a).unwrap().is_some(),
            "the shard still reads"
        );
        let record = copy.record(&store, &b).unwrap().unwrap();
        assert_eq!(record.last.country, None);
        assert!(record.countries.is_empty());
        assert_eq!(record.last.source, Some(CoordinatesSource::Header));
    }

    #[test]
    fn figures_at_the_default_capacity() {
        let s = settings();
        let per_shard = s.capacity.div_ceil(SHARDS);
        assert_eq!(RECORD_BYTES, 80);
        assert_eq!(per_shard, 391);
        assert!(1 + per_shard * RECORD_BYTES < 32 * 1024);
        assert!(shard_key(SHARDS - 1).starts_with(KEY_PREFIX));
    }
}

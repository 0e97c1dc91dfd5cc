//! The request signals stage: what this request says about the device and the place it
//! comes from, worked out once per request (cache hit or not), after the session is
//! established and before the policy decides.
//!
//! - **Binding** (a hard fact): a token carrying `cnf` is held to it. `cnf.jkt` needs the
//!   `DPoP` scheme and a proof signed with that key, fresh and never seen before (RFC
//!   9449); `cnf.x5t#S256` needs the mTLS client certificate it names (RFC 8705). A bound
//!   token without its proof, or on another connection, is refused: never taken as a plain
//!   bearer token.
//! - **Posture**: from the configured, trusted sources only (a token claim, the device
//!   certificate, a header a trusted hop sets).
//! - **Location**: from the headers Envoy's geoip filter or a trusted edge sets, compared
//!   with the subject's last sighting in shared data.
//!
//! The shared stores (DPoP `jti`s, sightings) are reached through [`SignalStores`]: the
//! glue's shared data, or a [`crate::store::MemoryStore`] natively.

use crate::config::{Config, LocationConfig, PostureConfig, PostureSourceConfig};
use crate::prompts::marks::{Mark, MarkCopy};
use crate::request::{header_values, RequestView};
use crate::risk::{Binding, LocationFact, PostureFact, Travel};
use crate::signals::location::{read_place, Place};
use crate::signals::posture::{from_certificate, from_value, Posture};
use crate::signals::replay::{self, Remembered, ReplaySettings, Seen};
use crate::signals::sightings::{self, LocationFacts, SightingSettings};
use crate::store::Store;
use crate::token::binding::{certificate_matches, thumbprint_matches, Confirmation};
use crate::token::dpop::{verify_proof, ProofCheck};
use crate::token::extract::{authorization_scheme, locate_token, AuthorizationScheme};
use crate::token::session::Session;
use smallvec::SmallVec;
use std::cell::RefCell;

/// The shared stores request signals read and write.
pub trait SignalStores {
    /// Records a DPoP proof's `jti` digest until `expires_at`; whether it was seen before.
    fn remember_proof(
        &self,
        digest: [u8; 16],
        expires_at: u64,
        now_secs: u64,
        settings: &ReplaySettings,
    ) -> Result<Remembered, String>;

    /// The subject's location facts at `place`, judged against its sightings (read only),
    /// and whether recording this sighting is due (a new place, or the last one older than
    /// `refresh_secs`): only then does a passed request need [`SignalStores::record`].
    fn assess(
        &self,
        subject: [u8; 16],
        place: &Place,
        now_secs: u64,
        settings: &SightingSettings,
    ) -> Result<(LocationFacts, bool), String>;

    /// Records a sighting of the subject at `place` (when one is due: a new place, or the
    /// last one older than `refresh_secs`). Only a request that was let through is a
    /// sighting: a refused one must not teach the gate a place.
    fn record(
        &self,
        subject: [u8; 16],
        place: &Place,
        now_secs: u64,
        settings: &SightingSettings,
    ) -> Result<(), String>;

    /// The fatigue mark on the push user `user` (a session approved under pressure), if
    /// any: read through the VM's decoded copy of the marks.
    fn pressured(&self, user: &crate::prompts::UserKey, now_secs: u64) -> Option<Mark>;
}

/// [`SignalStores`] over any [`Store`] (the glue's shared data, a `MemoryStore`), with the
/// VM's decoded copy of the sighting shards it has read (an unchanged shard is not decoded
/// again).
#[derive(Debug, Default)]
pub struct SharedSignals<S> {
    store: RefCell<S>,
    sightings: RefCell<sightings::LocalCopy>,
    marks: RefCell<MarkCopy>,
}

impl<S> SharedSignals<S> {
    /// Stores signals in `store`.
    pub fn new(store: S) -> Self {
        SharedSignals {
            store: RefCell::new(store),
            sightings: RefCell::new(sightings::LocalCopy::default()),
            marks: RefCell::new(MarkCopy::default()),
        }
    }

    /// The store (for tests and the CLI that seed or inspect it).
    pub fn store(&self) -> &RefCell<S> {
        &self.store
    }
}

impl<S: Store> SignalStores for SharedSignals<S> {
    fn remember_proof(
        &self,
        digest: [u8; 16],
        expires_at: u64,
        now_secs: u64,
        settings: &ReplaySettings,
    ) -> Result<Remembered, String> {
        let mut store = self.store.try_borrow_mut().map_err(|e| e.to_string())?;
        replay::remember(&mut *store, digest, expires_at, now_secs, settings)
            .map_err(|e| e.code().to_string())
    }

    fn assess(
        &self,
        subject: [u8; 16],
        place: &Place,
        now_secs: u64,
        settings: &SightingSettings,
    ) -> Result<(LocationFacts, bool), String> {
        let store = self.store.try_borrow().map_err(|e| e.to_string())?;
        let mut copy = self.sightings.try_borrow_mut().map_err(|e| e.to_string())?;
        let previous = copy
            .record(&*store, &subject)
            .map_err(|e| format!("{e:?}"))?;
        let previous = previous.as_ref();
        Ok((
            sightings::assess(previous, place, now_secs, settings),
            sightings::due(previous, place, now_secs, settings),
        ))
    }

    fn record(
        &self,
        subject: [u8; 16],
        place: &Place,
        now_secs: u64,
        settings: &SightingSettings,
    ) -> Result<(), String> {
        let mut store = self.store.try_borrow_mut().map_err(|e| e.to_string())?;
        let mut copy = self.sightings.try_borrow_mut().map_err(|e| e.to_string())?;
        copy.observe(&mut *store, subject, place, now_secs, settings)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn pressured(&self, user: &crate::prompts::UserKey, now_secs: u64) -> Option<Mark> {
        let store = self.store.try_borrow().ok()?;
        let mut copy = self.marks.try_borrow_mut().ok()?;
        copy.lookup(&*store, user, now_secs)
    }
}

/// Why a bound token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingRefusal {
    /// The reason code (`dpop_proof_missing`, `certificate_binding_mismatch`, ...).
    pub code: &'static str,
    /// For `error_description`: our words only.
    pub description: &'static str,
    /// The proof itself is at fault (RFC 9449 `invalid_dpop_proof`), not the token.
    pub proof: bool,
    /// Answer with the `DPoP` scheme's challenge (a DPoP-bound token or a DPoP request).
    pub dpop: bool,
}

/// Everything this stage found about a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Gathered {
    /// The binding that held, `None` for an unbound token, or why a bound one is refused.
    pub binding: Result<Option<Binding>, BindingRefusal>,
    /// Posture, when sources are configured.
    pub posture: Option<PostureFact>,
    /// Location, when configured (`Some(None)`: this request has none).
    pub location: Option<Option<LocationFact>>,
    /// Counters to bump (store errors, replays seen).
    pub counters: Vec<&'static str>,
    /// The sighting this request is, to record if it is let through.
    pub sighting: Option<Sighting>,
}

/// A sighting of a subject, recorded only once its request is let through.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    /// The subject's digest ([`subject_digest`]).
    pub subject: [u8; 16],
    /// Where the request came from.
    pub place: Place,
}

/// Records the sighting of a request that was let through (see [`SignalStores::record`]).
pub fn record_sighting(
    config: &Config,
    stores: &dyn SignalStores,
    sighting: &Sighting,
    now_secs: u64,
) -> Result<(), String> {
    let Some(location) = config.risk.as_ref().and_then(|r| r.location.as_ref()) else {
        return Ok(());
    };
    stores.record(
        sighting.subject,
        &sighting.place,
        now_secs,
        &location.sightings,
    )
}

/// Runs the stage for a request on `session`.
pub fn gather(
    config: &Config,
    headers: &dyn RequestView,
    session: &Session,
    now_secs: u64,
    stores: &dyn SignalStores,
) -> Gathered {
    let mut counters = Vec::new();
    let binding = check_binding(config, headers, session, now_secs, stores, &mut counters);
    let risk = config.risk.as_ref();
    let posture = risk
        .and_then(|r| r.posture.as_ref())
        .map(|p| posture(p, headers, session));
    let mut sighting = None;
    let location = risk.and_then(|r| r.location.as_ref()).map(|l| {
        location(
            l,
            headers,
            session,
            now_secs,
            stores,
            &mut counters,
            &mut sighting,
        )
    });
    Gathered {
        binding,
        posture,
        location,
        counters,
        sighting,
    }
}

fn refuse(
    code: &'static str,
    description: &'static str,
    proof: bool,
) -> Result<Option<Binding>, BindingRefusal> {
    Err(BindingRefusal {
        code,
        description,
        proof,
        dpop: true,
    })
}

/// Holds a token to its `cnf`.
fn check_binding(
    config: &Config,
    headers: &dyn RequestView,
    session: &Session,
    now_secs: u64,
    stores: &dyn SignalStores,
    counters: &mut Vec<&'static str>,
) -> Result<Option<Binding>, BindingRefusal> {
    let scheme = authorization_scheme(headers);
    let confirmation = match &session.binding {
        Ok(confirmation) => confirmation.as_ref(),
        Err(code) => {
            return Err(BindingRefusal {
                code,
                description: "The token's confirmation (cnf) claim is malformed",
                proof: false,
                dpop: false,
            })
        }
    };
    let Some(Confirmation { x5t_s256, jkt }) = confirmation else {
        if scheme == Some(AuthorizationScheme::Dpop) {
            // RFC 9449 §7.1: the DPoP scheme claims a binding the token does not have.
            return refuse("dpop_token_not_bound", "The token is not DPoP-bound", false);
        }
        return Ok(None);
    };
    let mut held = None;
    if let Some(x5t) = x5t_s256 {
        let digest = headers.property(&["connection", "sha256_peer_certificate_digest"]);
        match digest.as_deref() {
            None | Some(b"") => {
                return Err(BindingRefusal {
                    code: "certificate_binding_missing",
                    description:
                        "The token is bound to a client certificate the connection does not present",
                    proof: false,
                    dpop: jkt.is_some(),
                })
            }
            Some(digest) if !certificate_matches(x5t, digest) => {
                return Err(BindingRefusal {
                    code: "certificate_binding_mismatch",
                    description: "The token is bound to another client certificate",
                    proof: false,
                    dpop: jkt.is_some(),
                })
            }
            Some(_) => held = Some(Binding::Certificate),
        }
    }
    let Some(jkt) = jkt else {
        return Ok(held);
    };
    if scheme != Some(AuthorizationScheme::Dpop) {
        return refuse(
            "dpop_scheme_required",
            "The token is DPoP-bound: send it with the DPoP scheme and a proof",
            false,
        );
    }
    let proofs = header_values(headers, "dpop");
    let proof = match proofs.as_slice() {
        [] => return refuse("dpop_proof_missing", "No DPoP proof", true),
        [proof] => *proof,
        _ => return refuse("dpop_proof_repeated", "More than one DPoP proof", true),
    };
    let Some(found) = locate_token(&config.token_sources, headers) else {
        return refuse("dpop_token_missing", "No access token", false);
    };
    let settings = &config.binding.dpop;
    let target = target_uri(&settings.origins, headers);
    let check = ProofCheck {
        method: headers.header(":method").unwrap_or_default(),
        target_uri: &target,
        access_token: found.token,
        now_secs,
        max_age_secs: settings.max_age_secs,
        clock_skew_secs: settings.clock_skew_secs,
    };
    let verified = match verify_proof(proof, &check) {
        Ok(verified) => verified,
        Err(e) => return refuse(e.code(), e.description(), true),
    };
    if !thumbprint_matches(jkt, &verified.thumbprint) {
        return refuse(
            "dpop_key_mismatch",
            "The DPoP proof is signed with another key than the token is bound to",
            true,
        );
    }
    let expires_at = check.acceptable_until(verified.issued_at);
    let replay = ReplaySettings {
        capacity: settings.replay_capacity,
    };
    match stores.remember_proof(verified.jti_digest, expires_at, now_secs, &replay) {
        Ok(Remembered {
            seen: Seen::Replayed,
            ..
        }) => refuse("dpop_replayed", "The DPoP proof was used before", true),
        Ok(remembered) => {
            if remembered.evicted_unexpired {
                counters.push(crate::metrics::DPOP_REPLAY_EVICTED);
            }
            Ok(Some(Binding::Dpop))
        }
        Err(_) => {
            counters.push(crate::metrics::DPOP_REPLAY_UNAVAILABLE);
            refuse(
                "dpop_replay_unavailable",
                "The DPoP proof cannot be checked for replay",
                true,
            )
        }
    }
}

/// The URI a proof's `htu` must name: a configured origin (the one whose authority is the
/// request's, else the first) or the request's own scheme and authority, and the request
/// path without its query.
fn target_uri(origins: &[String], headers: &dyn RequestView) -> String {
    let authority = String::from_utf8_lossy(headers.header(":authority").unwrap_or_default());
    let path = headers.header(":path").unwrap_or(b"/");
    let path = path
        .split(|&b| b == b'?' || b == b'#')
        .next()
        .unwrap_or(b"/");
    let path = String::from_utf8_lossy(path);
    let origin = if origins.is_empty() {
        let scheme = String::from_utf8_lossy(headers.header(":scheme").unwrap_or(b"https"));
        format!("{scheme}://{authority}")
    } else {
        origins
            .iter()
            .find(|o| {
                o.split_once("://")
                    .is_some_and(|(_, a)| a.eq_ignore_ascii_case(&authority))
            })
            .or(origins.first())
            .cloned()
            .unwrap_or_default()
    };
    format!("{origin}{path}")
}

/// The posture the first source that answers gives.
fn posture(config: &PostureConfig, headers: &dyn RequestView, session: &Session) -> PostureFact {
    let read = |value: &[u8]| -> Option<Posture> {
        let trimmed = String::from_utf8_lossy(value).trim().to_ascii_lowercase();
        (config.values.iter())
            .find(|(v, _)| *v == trimmed)
            .map(|(_, p)| *p)
            .or_else(|| from_value(trimmed.as_bytes()))
    };
    for source in &config.sources {
        let (found, name) = match source {
            PostureSourceConfig::Claim(_) => (
                session
                    .posture_claim
                    .as_deref()
                    .and_then(|v| read(v.as_bytes())),
                "claim",
            ),
            PostureSourceConfig::Header(name) => (headers.header(name).and_then(read), "header"),
            PostureSourceConfig::Certificate(rule) => {
                let mtls = headers
                    .property(&["connection", "mtls"])
                    .is_some_and(|v| v.as_ref() == b"true" || v.as_ref() == [1]);
                if !mtls {
                    // No client certificate: nothing more to read.
                    continue;
                }
                let uri = headers.property(&["connection", "uri_san_peer_certificate"]);
                let dns = headers.property(&["connection", "dns_san_peer_certificate"]);
                let subject = headers.property(&["connection", "subject_peer_certificate"]);
                let found = from_certificate(
                    mtls,
                    uri.as_deref(),
                    dns.as_deref(),
                    subject.as_deref(),
                    rule,
                );
                (found, "certificate")
            }
        };
        if let Some(posture) = found {
            return PostureFact {
                posture: posture.as_str(),
                source: name,
            };
        }
    }
    PostureFact {
        posture: Posture::Unknown.as_str(),
        source: "none",
    }
}

/// The location facts of a request: its place, against the subject's sightings.
fn location(
    config: &LocationConfig,
    headers: &dyn RequestView,
    session: &Session,
    now_secs: u64,
    stores: &dyn SignalStores,
    counters: &mut Vec<&'static str>,
    sighting: &mut Option<Sighting>,
) -> Option<LocationFact> {
    // One pass over the headers for the dozen names the location reads.
    let mut found: SmallVec<[(&[u8], &[u8]); 12]> = SmallVec::new();
    headers.each_header(&mut |name, value| {
        if found.len() < 12
            && config
                .headers
                .names()
                .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
        {
            found.push((name, value));
        }
    });
    let lookup = |name: &str| {
        found
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| *v)
    };
    let place = read_place(&lookup, &config.headers);
    if place.country.is_none() && place.coordinates.is_none() {
        return None;
    }
    let anonymous = anonymity(&place);
    let mut fact = LocationFact {
        country: place.country,
        first_sighting: false,
        new_country: false,
        anonymous,
        travel: None,
        impossible_travel: false,
    };
    let Some(digest) = session.subject_key else {
        return Some(fact);
    };
    let judged = stores.assess(digest, &place, now_secs, &config.sightings);
    // Recorded only when due (most requests of a settled subject are not): a passed
    // request then costs no second read of its shard.
    if !matches!(judged, Ok((_, false))) {
        *sighting = Some(Sighting {
            subject: digest,
            place,
        });
    }
    match judged {
        Ok((facts, _)) => {
            fact.first_sighting = facts.first_sighting;
            fact.new_country = facts.new_country;
            fact.impossible_travel = facts.impossible_travel;
            fact.travel = facts.travel.map(|t| Travel {
                from_country: t.from_country,
                km: t.km,
                secs: t.secs,
                kmh: t.kmh,
            });
        }
        Err(_) => counters.push(crate::metrics::LOCATION_STORE_ERROR),
    }
    Some(fact)
}

/// The strongest anonymising network flag of a place.
fn anonymity(place: &Place) -> Option<&'static str> {
    let a = &place.anonymous;
    [
        (a.tor, "tor"),
        (a.vpn, "vpn"),
        (a.proxy, "proxy"),
        (a.hosting, "hosting"),
        (a.anonymous, "anonymous"),
    ]
    .into_iter()
    .find_map(|(set, kind)| set.then_some(kind))
}

/// The 16-byte key a subject's sightings are kept under: SHA-256 of the issuer and the
/// subject (never the values themselves).
pub fn subject_digest(issuer: &str, subject: &str) -> [u8; 16] {
    sightings::subject_key(issuer, subject)
}

//! The risk score: what was observed about a request (how the user authenticated, whether
//! the token is bound to the device presenting it, the device's posture, where the request
//! comes from and how that compares with the subject's last sighting, how old the sign-in
//! is) turned into points, one [`Contribution`] per signal, and the total compared with a
//! route's [`Thresholds`].
//!
//! The assurance level is one signal among the others here, not the gate: a push session
//! (30 points by default) on a bound, managed device (−10 each) from a usual place scores
//! 10 and passes a route that steps up at 50; the same session from a new country (+25)
//! scores 55 and is stepped up; impossible travel (+100) reaches a revoke threshold. Hard
//! facts (a binding that does not hold, a revoked session) never reach the score: the
//! engine refuses them first. A signal marked `report_only` is shown with its points but
//! not added to the enforced total, so operators can tune a profile before enforcing it.
//!
//! Pure: no I/O; it never sees a token or a header, only the facts the signal stages found.

use crate::assurance::Level;
use crate::json::{json_str, push_i32};
#[cfg(test)]
use crate::policy::DEFAULT_THRESHOLDS;
use crate::policy::{Decision, Thresholds};
use smallvec::SmallVec;

/// Every signal that can add points, in the order they are scored and recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// How the user authenticated (points per level).
    Assurance,
    /// The token is bound to this device (mTLS certificate or DPoP key) and the proof held.
    DeviceBound,
    /// The token carries no binding.
    DeviceUnbound,
    /// The device is managed (a trusted posture source says so).
    PostureManaged,
    /// The device is compliant.
    PostureCompliant,
    /// The device is known to be unmanaged.
    PostureUnmanaged,
    /// A posture source is configured but said nothing usable.
    PostureUnknown,
    /// The subject has not been seen in this country within the remembered period.
    NewCountry,
    /// The subject has never been seen (no history to compare with).
    FirstSighting,
    /// The request comes through an anonymising network (Tor, VPN, hosting, proxy).
    AnonymousNetwork,
    /// Faster than the configured speed from the subject's last sighting.
    ImpossibleTravel,
    /// Location is configured but this request has none.
    LocationUnknown,
    /// The authentication is older than the configured age.
    StaleAuthentication,
}

impl Signal {
    /// Every signal, in scoring order.
    pub const ALL: [Signal; 13] = [
        Signal::Assurance,
        Signal::DeviceBound,
        Signal::DeviceUnbound,
        Signal::PostureManaged,
        Signal::PostureCompliant,
        Signal::PostureUnmanaged,
        Signal::PostureUnknown,
        Signal::NewCountry,
        Signal::FirstSighting,
        Signal::AnonymousNetwork,
        Signal::ImpossibleTravel,
        Signal::LocationUnknown,
        Signal::StaleAuthentication,
    ];

    /// The configuration and record spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Assurance => "assurance",
            Signal::DeviceBound => "device_bound",
            Signal::DeviceUnbound => "device_unbound",
            Signal::PostureManaged => "posture_managed",
            Signal::PostureCompliant => "posture_compliant",
            Signal::PostureUnmanaged => "posture_unmanaged",
            Signal::PostureUnknown => "posture_unknown",
            Signal::NewCountry => "new_country",
            Signal::FirstSighting => "first_sighting",
            Signal::AnonymousNetwork => "anonymous_network",
            Signal::ImpossibleTravel => "impossible_travel",
            Signal::LocationUnknown => "location_unknown",
            Signal::StaleAuthentication => "stale_authentication",
        }
    }

    /// Parses the configuration spelling.
    pub fn parse(name: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// What one signal is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weight {
    /// Points added when the signal is present (negative: it lowers the risk).
    pub points: i32,
    /// Shown in the record but not added to the enforced score.
    pub report_only: bool,
}

/// Points per signal and per assurance level: the scoring table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Points per level, indexed by `Level as usize`.
    pub level_points: [i32; Level::ALL.len()],
    /// Weights per signal, indexed by `Signal as usize` (the `Assurance` entry's points are
    /// unused: the level table gives them; its `report_only` applies).
    pub weights: [Weight; Signal::ALL.len()],
    /// An authentication older than this adds [`Signal::StaleAuthentication`].
    pub stale_after_secs: u64,
}

/// The default points per level, weakest first (none, password, push, push with number
/// matching, one-time code, phishing-resistant, hardware-bound phishing-resistant).
pub const DEFAULT_LEVEL_POINTS: [i32; Level::ALL.len()] = [60, 50, 30, 25, 20, 0, 0];

/// The default age after which a sign-in counts as stale: 12 hours.
pub const DEFAULT_STALE_AFTER_SECS: u64 = 12 * 3600;

/// The default points of a signal.
pub const fn default_points(signal: Signal) -> i32 {
    match signal {
        Signal::Assurance => 0,
        Signal::DeviceBound => -10,
        Signal::DeviceUnbound => 0,
        Signal::PostureManaged => -10,
        Signal::PostureCompliant => -10,
        Signal::PostureUnmanaged => 20,
        Signal::PostureUnknown => 0,
        Signal::NewCountry => 25,
        Signal::FirstSighting => 0,
        Signal::AnonymousNetwork => 30,
        Signal::ImpossibleTravel => 100,
        Signal::LocationUnknown => 0,
        Signal::StaleAuthentication => 15,
    }
}

impl Default for Profile {
    /// The shipped profile (the README's scoring table).
    fn default() -> Self {
        let mut weights = [Weight {
            points: 0,
            report_only: false,
        }; Signal::ALL.len()];
        for signal in Signal::ALL {
            if let Some(weight) = weights.get_mut(signal as usize) {
                weight.points = default_points(signal);
            }
        }
        Profile {
            level_points: DEFAULT_LEVEL_POINTS,
            weights,
            stale_after_secs: DEFAULT_STALE_AFTER_SECS,
        }
    }
}

impl Profile {
    /// The weight of `signal`.
    pub fn weight(&self, signal: Signal) -> Weight {
        self.weights
            .get(signal as usize)
            .copied()
            .unwrap_or(Weight {
                points: 0,
                report_only: true,
            })
    }

    /// The points of `level`.
    pub fn level_points(&self, level: Level) -> i32 {
        self.level_points.get(level as usize).copied().unwrap_or(0)
    }
}

/// How the token is bound to the device that presented it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// RFC 8705: `cnf.x5t#S256` matched the mTLS client certificate.
    Certificate,
    /// RFC 9449: `cnf.jkt` matched a verified DPoP proof.
    Dpop,
}

impl Binding {
    /// The record spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Binding::Certificate => "mtls",
            Binding::Dpop => "dpop",
        }
    }
}

/// The device's posture as a trusted source gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostureFact {
    /// `managed`, `compliant`, `unmanaged` or `unknown`.
    pub posture: &'static str,
    /// `claim`, `certificate` or `header` (`none` when no source answered).
    pub source: &'static str,
}

/// Where the request comes from, and what that means against the subject's history.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationFact {
    /// ISO 3166-1 alpha-2, when known.
    pub country: Option<[u8; 2]>,
    /// No earlier sighting of the subject.
    pub first_sighting: bool,
    /// Not seen in this country within the remembered period.
    pub new_country: bool,
    /// The anonymising network kind (`tor`, `vpn`, `hosting`, `proxy`, `anonymous`).
    pub anonymous: Option<&'static str>,
    /// Distance and speed from the last sighting, when both have coordinates.
    pub travel: Option<Travel>,
    /// Faster than the configured speed.
    pub impossible_travel: bool,
}

/// A move between two sightings of a subject.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Travel {
    /// The country of the earlier sighting.
    pub from_country: Option<[u8; 2]>,
    /// Great-circle distance, km.
    pub km: f64,
    /// Time between the sightings, seconds.
    pub secs: u64,
    /// Speed, km/h (infinite for no time between far places).
    pub kmh: f64,
}

/// Everything the score is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The session's level.
    pub level: Level,
    /// The verified binding (`None`: the token is not bound).
    pub binding: Option<Binding>,
    /// Posture, when posture sources are configured.
    pub posture: Option<PostureFact>,
    /// Location facts, when location is configured (`None` inside: no location for this
    /// request).
    pub location: Option<Option<LocationFact>>,
    /// Seconds since the user authenticated, when known.
    pub auth_age_secs: Option<u64>,
}

/// One signal's part in a score.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// Which signal.
    pub signal: Signal,
    /// What was observed (`push`, `FR`, `tor`, `4120km/h`, `managed:claim`): our words and
    /// checked values only (a country code is two upper-case letters).
    pub value: String,
    /// Points it is worth.
    pub points: i32,
    /// Shown but not counted.
    pub report_only: bool,
}

/// A request's score and what made it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Score {
    /// The enforced total (report-only contributions excluded).
    pub total: i32,
    /// The total with the report-only contributions counted too (what enforcing every
    /// signal would give).
    pub total_if_enforced: i32,
    /// Every contribution, in scoring order; signals that are absent are not listed.
    pub contributions: SmallVec<[Contribution; 6]>,
}

impl Score {
    fn add(&mut self, signal: Signal, weight: Weight, points: i32, value: String) {
        self.total_if_enforced = self.total_if_enforced.saturating_add(points);
        if !weight.report_only {
            self.total = self.total.saturating_add(points);
        }
        self.contributions.push(Contribution {
            signal,
            value,
            points,
            report_only: weight.report_only,
        });
    }
}

/// Scores what was observed.
pub fn score(profile: &Profile, observed: &Observed) -> Score {
    let mut score = Score::default();
    let add = |score: &mut Score, signal: Signal, value: String| {
        let weight = profile.weight(signal);
        score.add(signal, weight, weight.points, value);
    };

    let weight = profile.weight(Signal::Assurance);
    let points = profile.level_points(observed.level);
    score.add(
        Signal::Assurance,
        weight,
        points,
        observed.level.as_str().to_string(),
    );

    match observed.binding {
        Some(binding) => add(&mut score, Signal::DeviceBound, binding.as_str().into()),
        None => add(&mut score, Signal::DeviceUnbound, "bearer".into()),
    }

    if let Some(posture) = &observed.posture {
        let signal = match posture.posture {
            "managed" => Signal::PostureManaged,
            "compliant" => Signal::PostureCompliant,
            "unmanaged" => Signal::PostureUnmanaged,
            _ => Signal::PostureUnknown,
        };
        add(
            &mut score,
            signal,
            format!("{}:{}", posture.posture, posture.source),
        );
    }

    match &observed.location {
        None => {}
        Some(None) => add(&mut score, Signal::LocationUnknown, "none".into()),
        Some(Some(location)) => {
            let country = location
                .country
                .map_or_else(|| "??".to_string(), country_str);
            if location.first_sighting {
                add(&mut score, Signal::FirstSighting, country.clone());
            } else if location.new_country {
                add(&mut score, Signal::NewCountry, country.clone());
            }
            if let Some(kind) = location.anonymous {
                add(&mut score, Signal::AnonymousNetwork, kind.into());
            }
            if location.impossible_travel {
                let value = location.travel.map_or_else(
                    || "unknown".to_string(),
                    |t| {
                        let from = t.from_country.map_or_else(|| "??".to_string(), country_str);
                        format!("{from}->{country}:{}km/{}s", t.km.round() as i64, t.secs)
                    },
                );
                add(&mut score, Signal::ImpossibleTravel, value);
            }
        }
    }

    if let Some(age) = observed.auth_age_secs {
        if age > profile.stale_after_secs {
            add(&mut score, Signal::StaleAuthentication, format!("{age}s"));
        }
    }
    score
}

/// A two-letter country code as text (it was checked to be ASCII letters when read).
fn country_str(code: [u8; 2]) -> String {
    String::from_utf8_lossy(&code).into_owned()
}

/// What a score means on a route: the strictest threshold it reaches, and that threshold.
pub fn judge(score: &Score, thresholds: &Thresholds) -> Option<(Decision, i32)> {
    let reached = |at: Option<i32>| at.filter(|&at| score.total >= at);
    if let Some(at) = reached(thresholds.revoke_at) {
        return Some((Decision::Revoke, at));
    }
    if let Some(at) = reached(thresholds.deny_at) {
        return Some((Decision::Deny, at));
    }
    reached(thresholds.step_up_at).map(|at| (Decision::StepUp, at))
}

/// The decision record's `risk` member: the score, the threshold it reached, each
/// contribution.
pub fn write_json(out: &mut String, score: &Score, reached: Option<(Decision, i32)>) {
    out.push_str("{\"score\":");
    push_i32(out, score.total);
    if score.total_if_enforced != score.total {
        out.push_str(",\"score_if_enforced\":");
        push_i32(out, score.total_if_enforced);
    }
    if let Some((decision, at)) = reached {
        out.push_str(",\"threshold\":");
        json_str(out, decision.as_str());
        out.push_str(",\"threshold_points\":");
        push_i32(out, at);
    }
    out.push_str(",\"signals\":[");
    for (i, c) in score.contributions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"signal\":\"");
        out.push_str(c.signal.as_str());
        out.push_str("\",\"value\":");
        json_str(out, &c.value);
        out.push_str(",\"points\":");
        push_i32(out, c.points);
        if c.report_only {
            out.push_str(",\"report_only\":true");
        }
        out.push('}');
    }
    out.push_str("]}");
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn observed(level: Level) -> Observed {
        Observed {
            level,
            binding: None,
            posture: None,
            location: None,
            auth_age_secs: Some(60),
        }
    }

    fn usual(country: &[u8; 2]) -> Option<Option<LocationFact>> {
        Some(Some(LocationFact {
            country: Some(*country),
            first_sighting: false,
            new_country: false,
            anonymous: None,
            travel: None,
            impossible_travel: false,
        }))
    }

    #[test]
    fn a_push_session_from_the_usual_place_passes_a_medium_route() {
        let profile = Profile::default();
        let mut o = observed(Level::Push);
        o.location = usual(b"FR");
        let s = score(&profile, &o);
        assert_eq!(s.total, 30);
        assert_eq!(judge(&s, &DEFAULT_THRESHOLDS), None);
    }

    #[test]
    fn a_bound_managed_device_lowers_the_score() {
        let profile = Profile::default();
        let mut o = observed(Level::Push);
        o.binding = Some(Binding::Dpop);
        o.posture = Some(PostureFact {
            posture: "managed",
            source: "certificate",
        });
        let s = score(&profile, &o);
        assert_eq!(s.total, 10);
        let values: Vec<_> = s
            .contributions
            .iter()
            .map(|c| (c.signal.as_str(), c.value.as_str(), c.points))
            .collect();
        assert_eq!(
            values,
            [
                ("assurance", "push", 30),
                ("device_bound", "dpop", -10),
                ("posture_managed", "managed:certificate", -10)
            ]
        );
    }

    #[test]
    fn a_new_country_steps_a_push_session_up_but_not_a_passkey_session() {
        let profile = Profile::default();
        let mut o = observed(Level::Push);
        o.location = Some(Some(LocationFact {
            country: Some(*b"DE"),
            first_sighting: false,
            new_country: true,
            anonymous: None,
            travel: None,
            impossible_travel: false,
        }));
        let s = score(&profile, &o);
        assert_eq!(s.total, 55);
        assert_eq!(judge(&s, &DEFAULT_THRESHOLDS), Some((Decision::StepUp, 50)));
        o.level = Level::PhishingResistant;
        let s = score(&profile, &o);
        assert_eq!(s.total, 25);
        assert_eq!(judge(&s, &DEFAULT_THRESHOLDS), None);
    }

    #[test]
    fn impossible_travel_reaches_a_revoke_threshold() {
        let profile = Profile::default();
        let mut o = observed(Level::Push);
        o.location = Some(Some(LocationFact {
            country: Some(*b"JP"),
            first_sighting: false,
            new_country: true,
            anonymous: None,
            travel: Some(Travel {
                from_country: Some(*b"FR"),
                km: 9713.4,
                secs: 600,
                kmh: 58280.0,
            }),
            impossible_travel: true,
        }));
        let s = score(&profile, &o);
        assert_eq!(s.total, 155);
        let thresholds = Thresholds {
            revoke_at: Some(100),
            ..DEFAULT_THRESHOLDS
        };
        assert_eq!(judge(&s, &thresholds), Some((Decision::Revoke, 100)));
        let travel = s.contributions.last().unwrap();
        assert_eq!(travel.value, "FR->JP:9713km/600s");
    }

    #[test]
    fn report_only_signals_are_shown_but_not_counted() {
        let mut profile = Profile::default();
        profile.weights[Signal::ImpossibleTravel as usize].report_only = true;
        let mut o = observed(Level::PhishingResistant);
        o.location = Some(Some(LocationFact {
            country: Some(*b"JP"),
            first_sighting: false,
            new_country: false,
            anonymous: Some("tor"),
            travel: None,
            impossible_travel: true,
        }));
        let s = score(&profile, &o);
        assert_eq!(s.total, 30);
        assert_eq!(s.total_if_enforced, 130);
        let mut json = String::new();
        write_json(&mut json, &s, judge(&s, &DEFAULT_THRESHOLDS));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["score"], 30);
        assert_eq!(v["score_if_enforced"], 130);
        assert!(v.get("threshold").is_none(), "{json}");
        assert_eq!(v["signals"][2]["signal"], "anonymous_network");
        assert_eq!(v["signals"][3]["report_only"], true);
    }

    #[test]
    fn stale_sign_ins_and_missing_locations_are_signals() {
        let mut profile = Profile::default();
        profile.weights[Signal::LocationUnknown as usize].points = 5;
        let mut o = observed(Level::Otp);
        o.auth_age_secs = Some(DEFAULT_STALE_AFTER_SECS + 1);
        o.location = Some(None);
        let s = score(&profile, &o);
        assert_eq!(s.total, 20 + 5 + 15);
        let mut json = String::new();
        write_json(&mut json, &s, None);
        assert!(json.contains("\"signal\":\"stale_authentication\",\"value\":\"43201s\""));
    }

    #[test]
    fn the_strictest_threshold_reached_wins_and_scores_can_be_negative() {
        let s = Score {
            total: -20,
            total_if_enforced: -20,
            contributions: SmallVec::new(),
        };
        assert_eq!(judge(&s, &DEFAULT_THRESHOLDS), None);
        let mut json = String::new();
        write_json(&mut json, &s, None);
        assert!(json.starts_with("{\"score\":-20"));
        let s = Score { total: 100, ..s };
        assert_eq!(judge(&s, &DEFAULT_THRESHOLDS), Some((Decision::Deny, 100)));
    }

    #[test]
    fn signal_names_round_trip() {
        for signal in Signal::ALL {
            assert_eq!(Signal::parse(signal.as_str()), Some(signal));
        }
        assert_eq!(Signal::ALL.len(), Signal::StaleAuthentication as usize + 1);
    }
}

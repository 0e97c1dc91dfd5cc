//! Device posture: whether the device behind a request is managed by the organisation, or
//! managed and compliant with its policies, as a *trusted* source says. Three sources:
//!
//! - **A claim** in the verified token (an IdP that knows the device, e.g. from Intune or
//!   Jamf, puts its state in the token): the caller reads the claim and hands its value to
//!   [`PostureMap::lookup`] or [`from_value`].
//! - **A client certificate** issued to managed devices, presented over mTLS: Envoy gives
//!   the connection's facts as attributes (`connection.mtls`,
//!   `connection.uri_san_peer_certificate` and `connection.dns_san_peer_certificate`, the
//!   first URI and DNS SAN, and `connection.subject_peer_certificate`, the subject in RFC
//!   2253 form; envoyproxy.io, "Attributes"); [`from_certificate`] matches them against a
//!   [`CertificateRule`]. `connection.mtls` means only that a peer certificate was
//!   presented: the listener must require client certificates and validate them against the
//!   device CA (no `ACCEPT_UNTRUSTED`), or any self-made certificate would pass.
//! - **A header** set by a trusted device-trust proxy in front of the gate (which must strip
//!   one a client sends): its value goes to [`PostureMap::lookup`] or [`from_value`].
//!
//! Never trusts a client's word: a value not in the map is no posture ([`None`]; the
//! caller counts it as [`Posture::Unknown`]), a rule with nothing to match matches nothing,
//! and every input is bounded and compared as bytes. Never panics.

/// Longest value read (claim, header, certificate field), in bytes.
const MAX_VALUE_BYTES: usize = 4096;

/// What a trusted source says about the device, weakest first (so `>=` reads "at least").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Posture {
    /// No trusted source says anything.
    Unknown,
    /// Known not to be managed (a personal device).
    Unmanaged,
    /// Enrolled in the organisation's device management.
    Managed,
    /// Managed and meeting the compliance policy.
    Compliant,
}

impl Posture {
    /// The name in configuration and decision records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Unmanaged => "unmanaged",
            Self::Managed => "managed",
            Self::Compliant => "compliant",
        }
    }

    /// The posture named `name` (any case; surrounding spaces ignored).
    pub fn parse(name: &str) -> Option<Posture> {
        let name = name.trim();
        [
            Self::Unknown,
            Self::Unmanaged,
            Self::Managed,
            Self::Compliant,
        ]
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(name))
    }

    /// Whether this posture meets `required` (is at least as strong).
    pub fn meets(self, required: Posture) -> bool {
        self >= required
    }
}

/// Where a posture came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostureSource {
    /// A claim in the verified token.
    Claim,
    /// The mTLS client certificate.
    Certificate,
    /// A header set by a trusted proxy.
    Header,
}

impl PostureSource {
    /// The name in decision records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Certificate => "certificate",
            Self::Header => "header",
        }
    }
}

/// Which source values mean which posture (values compared ignoring ASCII case and
/// surrounding spaces). The default holds the four posture names, which are also the
/// words Intune (`compliant`) and Jamf (`managed`, `unmanaged`) use; an operator adds a
/// vendor's other values (`noncompliant`, `inGracePeriod`, ...) as they mean them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostureMap {
    entries: Vec<(String, Posture)>,
}

impl Default for PostureMap {
    fn default() -> Self {
        let mut map = PostureMap::empty();
        for posture in [
            Posture::Unknown,
            Posture::Unmanaged,
            Posture::Managed,
            Posture::Compliant,
        ] {
            map.insert(posture.as_str(), posture);
        }
        map
    }
}

impl PostureMap {
    /// A map that knows no value.
    pub fn empty() -> Self {
        PostureMap {
            entries: Vec::new(),
        }
    }

    /// Makes `value` mean `posture` (replacing what it meant).
    pub fn insert(&mut self, value: &str, posture: Posture) {
        let value = value.trim();
        match self
            .entries
            .iter_mut()
            .find(|(v, _)| v.eq_ignore_ascii_case(value))
        {
            Some(entry) => entry.1 = posture,
            None => self.entries.push((value.to_string(), posture)),
        }
    }

    /// The map with `value` meaning `posture`.
    pub fn with(mut self, value: &str, posture: Posture) -> Self {
        self.insert(value, posture);
        self
    }

    /// The posture `value` means, if the map knows it.
    pub fn lookup(&self, value: &[u8]) -> Option<Posture> {
        if value.len() > MAX_VALUE_BYTES {
            return None;
        }
        let value = value.trim_ascii();
        self.entries
            .iter()
            .find(|(v, _)| v.as_bytes().eq_ignore_ascii_case(value))
            .map(|(_, p)| *p)
    }
}

/// The posture a claim or header `value` names, by the default [`PostureMap`] (the four
/// posture names, any case).
pub fn from_value(value: &[u8]) -> Option<Posture> {
    if value.len() > MAX_VALUE_BYTES {
        return None;
    }
    let value = std::str::from_utf8(value.trim_ascii()).ok()?;
    Posture::parse(value)
}

/// Which client certificates are the organisation's devices, and what they show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRule {
    /// The first URI SAN starts with one of these (exact bytes, e.g.
    /// `spiffe://corp.example/device/`).
    pub uri_san_prefixes: Vec<String>,
    /// The first DNS SAN is one of these names or under it (`devices.corp.example`
    /// matches `laptop-7.devices.corp.example`, not `evildevices.corp.example`; any case).
    pub dns_san_suffixes: Vec<String>,
    /// The subject holds one of these as whole attributes (`OU=Managed Devices` matches
    /// `CN=laptop-7,OU=Managed Devices,O=Corp`, not `CN=OU=Managed Devices`).
    pub subject_contains: Vec<String>,
    /// What a matching certificate shows.
    pub posture: Posture,
}

/// The posture the client certificate shows under `rule`, if mTLS is on and the
/// certificate matches one of the rule's patterns (Envoy's `connection.mtls`,
/// `connection.uri_san_peer_certificate`, `connection.dns_san_peer_certificate`,
/// `connection.subject_peer_certificate`).
pub fn from_certificate(
    mtls: bool,
    uri_san: Option<&[u8]>,
    dns_san: Option<&[u8]>,
    subject: Option<&[u8]>,
    rule: &CertificateRule,
) -> Option<Posture> {
    if !mtls {
        return None;
    }
    let uri = bounded(uri_san).is_some_and(|uri| {
        rule.uri_san_prefixes
            .iter()
            .any(|p| !p.is_empty() && uri.starts_with(p.as_bytes()))
    });
    let dns = bounded(dns_san).is_some_and(|name| {
        rule.dns_san_suffixes
            .iter()
            .any(|s| dns_under(name, s.as_bytes()))
    });
    let subject = bounded(subject).is_some_and(|dn| {
        rule.subject_contains
            .iter()
            .any(|part| holds_attributes(dn, part.as_bytes()))
    });
    (uri || dns || subject).then_some(rule.posture)
}

/// `value` if it is not empty and within [`MAX_VALUE_BYTES`].
fn bounded(value: Option<&[u8]>) -> Option<&[u8]> {
    value.filter(|v| !v.is_empty() && v.len() <= MAX_VALUE_BYTES)
}

/// Whether DNS name `name` is `suffix` or a name under it (ASCII case-insensitive; a
/// leading dot on the suffix is allowed).
fn dns_under(name: &[u8], suffix: &[u8]) -> bool {
    let suffix = suffix.strip_prefix(b".").unwrap_or(suffix);
    let name = name.strip_suffix(b".").unwrap_or(name);
    if suffix.is_empty() || name.len() < suffix.len() {
        return false;
    }
    let (head, tail) = name.split_at(name.len() - suffix.len());
    tail.eq_ignore_ascii_case(suffix) && (head.is_empty() || head.ends_with(b"."))
}

/// Whether RFC 2253 distinguished name `dn` holds `part` as whole attributes: `part`
/// starts where an attribute starts and ends where one ends (at an unescaped `,` or `+`).
fn holds_attributes(dn: &[u8], part: &[u8]) -> bool {
    if part.is_empty() || part.len() > dn.len() {
        return false;
    }
    (0..=dn.len() - part.len()).any(|at| {
        dn.get(at..at + part.len()) == Some(part)
            && (at == 0 || separator_at(dn, at - 1))
            && (at + part.len() == dn.len() || separator_at(dn, at + part.len()))
    })
}

/// Whether `dn[at]` is an unescaped attribute separator (`,` or `+`): one not preceded by
/// an odd run of backslashes.
fn separator_at(dn: &[u8], at: usize) -> bool {
    let Some((before, rest)) = dn.split_at_checked(at) else {
        return false;
    };
    matches!(rest.first(), Some(b',' | b'+'))
        && before.iter().rev().take_while(|b| **b == b'\\').count() % 2 == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn rule() -> CertificateRule {
        CertificateRule {
            uri_san_prefixes: vec!["spiffe://corp.example/device/".into()],
            dns_san_suffixes: vec!["devices.corp.example".into()],
            subject_contains: vec!["OU=Managed Devices".into()],
            posture: Posture::Managed,
        }
    }

    #[test]
    fn postures_have_names_and_an_order() {
        for p in [
            Posture::Unknown,
            Posture::Unmanaged,
            Posture::Managed,
            Posture::Compliant,
        ] {
            assert_eq!(Posture::parse(p.as_str()), Some(p));
        }
        assert_eq!(Posture::parse(" COMPLIANT "), Some(Posture::Compliant));
        assert_eq!(Posture::parse("Managed"), Some(Posture::Managed));
        assert_eq!(Posture::parse("compliantish"), None);
        assert!(Posture::Compliant.meets(Posture::Managed));
        assert!(Posture::Managed.meets(Posture::Managed));
        assert!(!Posture::Unmanaged.meets(Posture::Managed));
        assert!(!Posture::Unknown.meets(Posture::Unmanaged));
        assert_eq!(PostureSource::Certificate.as_str(), "certificate");
        assert_eq!(PostureSource::Claim.as_str(), "claim");
        assert_eq!(PostureSource::Header.as_str(), "header");
    }

    #[test]
    fn values_are_read_by_the_map_only() {
        assert_eq!(from_value(b"compliant"), Some(Posture::Compliant));
        assert_eq!(from_value(b" Managed\t"), Some(Posture::Managed));
        assert_eq!(from_value(b"noncompliant"), None);
        assert_eq!(from_value(b"\xFFmanaged"), None);
        assert_eq!(from_value(&[b'a'; MAX_VALUE_BYTES + 1]), None);
        let map = PostureMap::default()
            .with("noncompliant", Posture::Unmanaged)
            .with("inGracePeriod", Posture::Managed)
            .with("MANAGED", Posture::Compliant);
        assert_eq!(map.lookup(b"NonCompliant"), Some(Posture::Unmanaged));
        assert_eq!(map.lookup(b"ingraceperiod"), Some(Posture::Managed));
        assert_eq!(map.lookup(b"managed"), Some(Posture::Compliant), "replaced");
        assert_eq!(map.lookup(b"compliant"), Some(Posture::Compliant));
        assert_eq!(map.lookup(b"true"), None);
        assert_eq!(PostureMap::empty().lookup(b"compliant"), None);
    }

    #[test]
    fn a_matching_certificate_shows_the_rule_posture() {
        let rule = rule();
        let uri = Some(&b"spiffe://corp.example/device/laptop-7"[..]);
        assert_eq!(
            from_certificate(true, uri, None, None, &rule),
            Some(Posture::Managed)
        );
        // No mTLS, no posture, whatever the attributes say.
        assert_eq!(from_certificate(false, uri, None, None, &rule), None);
        let dns = |name: &[u8]| from_certificate(true, None, Some(name), None, &rule);
        assert_eq!(
            dns(b"laptop-7.devices.corp.example"),
            Some(Posture::Managed)
        );
        assert_eq!(
            dns(b"LAPTOP-7.Devices.Corp.Example."),
            Some(Posture::Managed)
        );
        assert_eq!(dns(b"devices.corp.example"), Some(Posture::Managed));
        assert_eq!(dns(b"evildevices.corp.example"), None);
        assert_eq!(dns(b"devices.corp.example.evil"), None);
        let subject = |dn: &[u8]| from_certificate(true, None, None, Some(dn), &rule);
        assert_eq!(
            subject(b"CN=laptop-7,OU=Managed Devices,O=Corp"),
            Some(Posture::Managed)
        );
        assert_eq!(subject(b"OU=Managed Devices"), Some(Posture::Managed));
        assert_eq!(subject(b"CN=x+OU=Managed Devices"), Some(Posture::Managed));
        assert_eq!(subject(b"CN=OU=Managed Devices,O=Corp"), None);
        assert_eq!(subject(b"CN=a,OU=Managed Devices Fake,O=Corp"), None);
        assert_eq!(
            subject(b"CN=a\\,OU=Managed Devices,O=Corp"),
            None,
            "escaped"
        );
        assert_eq!(
            subject(b"CN=a\\\\,OU=Managed Devices,O=Corp"),
            Some(Posture::Managed),
            "an escaped backslash, then a real comma"
        );
        assert_eq!(
            from_certificate(
                true,
                Some(b"spiffe://corp.example/user/x"),
                None,
                None,
                &rule
            ),
            None
        );
    }

    #[test]
    fn a_rule_with_nothing_to_match_matches_nothing() {
        let empty = CertificateRule {
            uri_san_prefixes: vec![String::new()],
            dns_san_suffixes: vec![String::new(), ".".into()],
            subject_contains: vec![String::new()],
            posture: Posture::Compliant,
        };
        assert_eq!(
            from_certificate(true, Some(b"x"), Some(b"y"), Some(b"CN=z"), &empty),
            None
        );
        assert_eq!(from_certificate(true, None, None, None, &rule()), None);
    }

    #[test]
    fn hostile_certificate_fields_never_panic() {
        let rule = rule();
        let all: Vec<u8> = (0..=255).collect();
        let huge = vec![b','; 1 << 20];
        let mut samples: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        samples.push(all);
        samples.push(huge);
        samples.push(b"\\\\\\,".to_vec());
        samples.push(b"OU=Managed Device".to_vec());
        for value in &samples {
            let v = Some(value.as_slice());
            assert_eq!(from_certificate(true, v, v, v, &rule), None, "{value:?}");
            assert_eq!(from_value(value), None);
        }
    }
}

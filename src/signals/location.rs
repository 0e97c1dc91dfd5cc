//! Where a request comes from, as a trusted edge in front of the gate wrote it into request
//! headers: a country, region, city, network (ASN), coordinates and anonymity flags. The
//! gate does no IP lookup of its own; it reads what one of three sources sets:
//!
//! - **Envoy's geoip filter** (`envoy.filters.http.geoip`, MaxMind provider). The header
//!   names are the operator's (`geo_headers_to_add`: `country`, `city`, `region`, `asn`,
//!   `is_anon`, `anon_vpn`, `anon_hosting`, `anon_tor`, `anon_proxy`); the filter overwrites
//!   any the client sent. The provider writes the country's ISO code, the English city
//!   name, the ISO code of the least specific subdivision as region, the ASN in decimal
//!   and `"true"`/`"false"` for the anonymity flags; it writes no coordinates
//!   (envoyproxy.io, `extensions.geoip_providers.common.v3.CommonGeoipProviderConfig`;
//!   envoy `source/extensions/geoip_providers/maxmind/geoip_provider.cc`).
//!   [`LocationHeaders::geoip`] names them `x-geo-*`.
//! - **Amazon CloudFront** viewer location headers (`CloudFront-Viewer-Country`,
//!   `-Country-Region`, `-City`, `-Latitude`, `-Longitude`, `-ASN`), added by an origin
//!   request policy. The country is ISO 3166-1 alpha-2, the region the most specific ISO
//!   3166-2 subdivision code (up to three characters), the coordinates approximate; non-ASCII
//!   characters are percent-encoded (RFC 3986) (AWS, CloudFront Developer Guide, "Add
//!   CloudFront request headers", viewer location headers).
//! - **Cloudflare** visitor location headers (`cf-ipcountry`, `cf-region-code`, `cf-ipcity`,
//!   `cf-iplatitude`, `cf-iplongitude`, from the "Add visitor location headers" Managed
//!   Transform; `cf-ipcountry` alone with IP Geolocation). `XX` means no country is known;
//!   `T1` is the code Cloudflare gives Tor exit nodes, which have no country
//!   (developers.cloudflare.com: Managed Transforms reference; HTTP request headers;
//!   "Onion Routing and Tor support").
//!
//! These headers are only as trustworthy as the edge that sets them: the operator must make
//! sure a client cannot reach the gate with its own (Envoy's geoip filter overwrites them;
//! behind a CDN, only the CDN may reach the listener).
//!
//! When no coordinates come with the request, the place is put at its city or country from
//! the built-in table ([`super::places`]), and says so ([`CoordinatesSource`]).
//!
//! Never panics and never trusts a value: each is bounded in length, must be ASCII (the
//! city and region: valid UTF-8 without control characters), and a malformed one is
//! ignored as if absent.

use super::places;
pub use super::places::Coordinates;

/// Mean Earth radius (IUGG), in km.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Longest city or region name kept, in bytes (after percent-decoding).
const MAX_NAME_BYTES: usize = 128;
/// Longest raw value read for a name (percent-encoding triples a byte).
const MAX_RAW_NAME_BYTES: usize = 3 * MAX_NAME_BYTES;
/// Longest raw value read for a number (coordinate, ASN) or a flag.
const MAX_NUMBER_BYTES: usize = 24;

/// Where a place's coordinates come from, which says how precise they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatesSource {
    /// Latitude and longitude headers (the edge's estimate for the address).
    Header,
    /// The built-in table's point for the named city.
    CityTable,
    /// The built-in table's point for the country (its capital): the place is only known
    /// to be somewhere in that country.
    CountryTable,
}

impl CoordinatesSource {
    /// The name in decision records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::CityTable => "city_table",
            Self::CountryTable => "country_table",
        }
    }
}

/// What the edge says about the address's network (MaxMind's anonymous IP flags; Tor also
/// from Cloudflare's `T1`). All false when nothing says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Anonymity {
    /// Any kind of anonymising network (MaxMind `is_anonymous`).
    pub anonymous: bool,
    /// An anonymous VPN.
    pub vpn: bool,
    /// A hosting or cloud provider.
    pub hosting: bool,
    /// A Tor exit node.
    pub tor: bool,
    /// A public proxy.
    pub proxy: bool,
}

impl Anonymity {
    /// Whether any flag is set.
    pub fn any(&self) -> bool {
        self.anonymous || self.vpn || self.hosting || self.tor || self.proxy
    }
}

/// Where a request comes from, as far as the headers tell.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Place {
    /// ISO 3166-1 alpha-2, upper-case; only codes the built-in table knows.
    pub country: Option<[u8; 2]>,
    /// The subdivision code as the edge gives it (`CA`, `ENG`, `13`).
    pub region: Option<String>,
    /// The city name (English, UTF-8).
    pub city: Option<String>,
    /// The autonomous system number.
    pub asn: Option<u32>,
    /// Where it is.
    pub coordinates: Option<Coordinates>,
    /// Where the coordinates come from (set exactly when `coordinates` is).
    pub coordinates_source: Option<CoordinatesSource>,
    /// What kind of network it is.
    pub anonymous: Anonymity,
}

impl Place {
    /// The country code as text.
    pub fn country_str(&self) -> Option<&str> {
        self.country
            .as_ref()
            .and_then(|c| std::str::from_utf8(c).ok())
    }

    /// Whether it says where the request is (a country or coordinates).
    pub fn is_located(&self) -> bool {
        self.country.is_some() || self.coordinates.is_some()
    }
}

/// Which request headers (lower-case names) carry which part of a [`Place`]; `None` for
/// a part the edge does not send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocationHeaders {
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// Subdivision code.
    pub region: Option<String>,
    /// City name.
    pub city: Option<String>,
    /// Autonomous system number, decimal.
    pub asn: Option<String>,
    /// Latitude, decimal degrees.
    pub latitude: Option<String>,
    /// Longitude, decimal degrees.
    pub longitude: Option<String>,
    /// `true`/`false`: any anonymising network.
    pub anonymous: Option<String>,
    /// `true`/`false`: anonymous VPN.
    pub vpn: Option<String>,
    /// `true`/`false`: hosting provider.
    pub hosting: Option<String>,
    /// `true`/`false`: Tor exit node.
    pub tor: Option<String>,
    /// `true`/`false`: public proxy.
    pub proxy: Option<String>,
    /// Whether names arrive percent-encoded (CloudFront) and are decoded.
    pub percent_encoded: bool,
}

fn name(n: &str) -> Option<String> {
    Some(n.to_string())
}

impl LocationHeaders {
    /// Default names for an Envoy geoip filter's `geo_headers_to_add` (`x-geo-country`,
    /// `x-geo-city`, `x-geo-region`, `x-geo-asn`, `x-geo-anon`, `x-geo-anon-vpn`,
    /// `x-geo-anon-hosting`, `x-geo-anon-tor`, `x-geo-anon-proxy`). Envoy lets the
    /// operator choose them: configure the filter with these, or name others.
    pub fn geoip() -> Self {
        LocationHeaders {
            country: name("x-geo-country"),
            region: name("x-geo-region"),
            city: name("x-geo-city"),
            asn: name("x-geo-asn"),
            latitude: None,
            longitude: None,
            anonymous: name("x-geo-anon"),
            vpn: name("x-geo-anon-vpn"),
            hosting: name("x-geo-anon-hosting"),
            tor: name("x-geo-anon-tor"),
            proxy: name("x-geo-anon-proxy"),
            percent_encoded: false,
        }
    }

    /// CloudFront's viewer location headers.
    pub fn cloudfront() -> Self {
        LocationHeaders {
            country: name("cloudfront-viewer-country"),
            region: name("cloudfront-viewer-country-region"),
            city: name("cloudfront-viewer-city"),
            asn: name("cloudfront-viewer-asn"),
            latitude: name("cloudfront-viewer-latitude"),
            longitude: name("cloudfront-viewer-longitude"),
            percent_encoded: true,
            ..LocationHeaders::default()
        }
    }

    /// Cloudflare's visitor location headers.
    pub fn cloudflare() -> Self {
        LocationHeaders {
            country: name("cf-ipcountry"),
            region: name("cf-region-code"),
            city: name("cf-ipcity"),
            latitude: name("cf-iplatitude"),
            longitude: name("cf-iplongitude"),
            ..LocationHeaders::default()
        }
    }

    /// The same names in lower case (how the host looks headers up), for names an
    /// operator configured.
    pub fn lowercased(mut self) -> Self {
        for n in [
            &mut self.country,
            &mut self.region,
            &mut self.city,
            &mut self.asn,
            &mut self.latitude,
            &mut self.longitude,
            &mut self.anonymous,
            &mut self.vpn,
            &mut self.hosting,
            &mut self.tor,
            &mut self.proxy,
        ]
        .into_iter()
        .flatten()
        {
            n.make_ascii_lowercase();
        }
        self
    }
}

impl LocationHeaders {
    /// Every header name this set reads.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        [
            &self.country,
            &self.region,
            &self.city,
            &self.asn,
            &self.latitude,
            &self.longitude,
            &self.anonymous,
            &self.vpn,
            &self.hosting,
            &self.tor,
            &self.proxy,
        ]
        .into_iter()
        .filter_map(|n| n.as_deref())
    }
}

/// Reads the place from the request's headers (`header` gives a header's value by
/// lower-case name). Malformed values are ignored; when no coordinates come with the
/// request, they are taken from the built-in table (city, else country).
pub fn read_place<'r>(header: &dyn Fn(&str) -> Option<&'r [u8]>, names: &LocationHeaders) -> Place {
    let get = |n: &Option<String>| n.as_deref().and_then(header);
    let mut place = Place::default();
    if let Some(value) = get(&names.country) {
        match country(value) {
            Country::Code(code) => place.country = Some(code),
            Country::Tor => {
                place.anonymous.tor = true;
                place.anonymous.anonymous = true;
            }
            Country::Unknown => {}
        }
    }
    place.region = get(&names.region).and_then(|v| text(v, names.percent_encoded));
    place.city = get(&names.city).and_then(|v| text(v, names.percent_encoded));
    place.asn = get(&names.asn).and_then(asn);
    let flags = [
        (&names.anonymous, &mut place.anonymous.anonymous),
        (&names.vpn, &mut place.anonymous.vpn),
        (&names.hosting, &mut place.anonymous.hosting),
        (&names.tor, &mut place.anonymous.tor),
        (&names.proxy, &mut place.anonymous.proxy),
    ];
    for (n, flag) in flags {
        if get(n).and_then(boolean) == Some(true) {
            *flag = true;
        }
    }
    let latitude = get(&names.latitude).and_then(number);
    let longitude = get(&names.longitude).and_then(number);
    if let (Some(lat), Some(lon)) = (latitude, longitude) {
        // 0,0 is in the Gulf of Guinea: what a lookup that found nothing writes.
        if lat != 0.0 || lon != 0.0 {
            place.coordinates = Coordinates::new(lat, lon);
        }
    }
    if place.coordinates.is_some() {
        place.coordinates_source = Some(CoordinatesSource::Header);
    } else if let Some(code) = place.country {
        let city = place
            .city
            .as_deref()
            .and_then(|c| places::city_point(code, c));
        if let Some(point) = city {
            place.coordinates = Some(point);
            place.coordinates_source = Some(CoordinatesSource::CityTable);
        } else if let Some(point) = places::country_point(code) {
            place.coordinates = Some(point);
            place.coordinates_source = Some(CoordinatesSource::CountryTable);
        }
    }
    place
}

/// The great-circle distance between `a` and `b`, in km (haversine formula, mean Earth
/// radius [`EARTH_RADIUS_KM`]).
pub fn distance_km(a: Coordinates, b: Coordinates) -> f64 {
    let (phi1, phi2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let half_dphi = (phi2 - phi1) / 2.0;
    let half_dlambda = (b.longitude - a.longitude).to_radians() / 2.0;
    let h = half_dphi.sin().powi(2) + phi1.cos() * phi2.cos() * half_dlambda.sin().powi(2);
    // Rounding can take h a hair outside [0, 1] for antipodal points.
    2.0 * EARTH_RADIUS_KM * h.clamp(0.0, 1.0).sqrt().asin()
}

enum Country {
    Code([u8; 2]),
    Tor,
    Unknown,
}

fn country(value: &[u8]) -> Country {
    let value = value.trim_ascii();
    let [a, b] = value else {
        return Country::Unknown;
    };
    let code = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
    if code == *b"T1" {
        return Country::Tor;
    }
    // XX, ZZ and every other code that names no country are not in the table.
    if places::is_country(code) {
        Country::Code(code)
    } else {
        Country::Unknown
    }
}

/// A city or region name: valid UTF-8 (after percent-decoding when `percent`), no control
/// characters, not empty, at most [`MAX_NAME_BYTES`].
fn text(value: &[u8], percent: bool) -> Option<String> {
    if value.len() > MAX_RAW_NAME_BYTES {
        return None;
    }
    let decoded;
    let bytes = if percent && value.contains(&b'%') {
        decoded = percent_decode(value)?;
        decoded.as_slice()
    } else {
        value
    };
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if text.is_empty() || text.len() > MAX_NAME_BYTES || text.chars().any(char::is_control) {
        return None;
    }
    Some(text.to_string())
}

/// RFC 3986 percent-decoding; `None` for a `%` not followed by two hex digits.
fn percent_decode(value: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let (&hi, &lo) = (tail.first()?, tail.get(1)?);
            let hex = |b: u8| char::from(b).to_digit(16);
            let decoded = hex(hi)? * 16 + hex(lo)?;
            out.push(u8::try_from(decoded).ok()?);
            rest = tail.get(2..)?;
        } else {
            out.push(byte);
            rest = tail;
        }
    }
    Some(out)
}

/// A decimal number of digits, one optional sign and one optional point (no exponent, no
/// `inf`/`NaN`).
fn number(value: &[u8]) -> Option<f64> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > MAX_NUMBER_BYTES {
        return None;
    }
    let digits = value.strip_prefix(b"-").or(value.strip_prefix(b"+"));
    let digits = digits.unwrap_or(value);
    let well_formed = digits.iter().any(u8::is_ascii_digit)
        && digits.iter().all(|b| b.is_ascii_digit() || *b == b'.')
        && digits.iter().filter(|b| **b == b'.').count() <= 1;
    if !well_formed {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse::<f64>().ok()
}

/// An ASN: decimal, optionally prefixed `AS`, not 0.
fn asn(value: &[u8]) -> Option<u32> {
    let value = value.trim_ascii();
    let digits = match value {
        [a, s, rest @ ..] if a.eq_ignore_ascii_case(&b'a') && s.eq_ignore_ascii_case(&b's') => rest,
        _ => value,
    };
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (n != 0).then_some(n)
}

/// `true`/`1` or `false`/`0`, any case.
fn boolean(value: &[u8]) -> Option<bool> {
    let value = value.trim_ascii();
    if value.eq_ignore_ascii_case(b"true") || value == b"1" {
        Some(true)
    } else if value.eq_ignore_ascii_case(b"false") || value == b"0" {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn read(names: &LocationHeaders, headers: &[(&str, &[u8])]) -> Place {
        let lookup = |n: &str| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        read_place(&lookup, names)
    }

    fn point(lat: f64, lon: f64) -> Coordinates {
        Coordinates::new(lat, lon).unwrap()
    }

    #[test]
    fn distances_are_great_circle_km() {
        let paris = point(48.8566, 2.3522);
        let new_york = point(40.7128, -74.0060);
        let km = distance_km(paris, new_york);
        assert!((km - 5837.0).abs() < 5.0, "{km}");
        assert_eq!(distance_km(paris, paris), 0.0);
        let london = point(51.5074, -0.1278);
        assert!((distance_km(paris, london) - 344.0).abs() < 3.0);
        let sydney = point(-33.8688, 151.2093);
        assert!((distance_km(london, sydney) - 16_990.0).abs() < 30.0);
        // Antipodes: half the circumference, no NaN.
        let half = distance_km(point(0.0, 0.0), point(0.0, 180.0));
        assert!((half - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6);
        let poles = distance_km(point(90.0, 0.0), point(-90.0, 0.0));
        assert!((poles - half).abs() < 1e-6);
    }

    #[test]
    fn geoip_headers_name_the_place_and_the_table_places_it() {
        let place = read(
            &LocationHeaders::geoip(),
            &[
                ("x-geo-country", b"FR"),
                ("x-geo-city", b"Paris"),
                ("x-geo-region", b"IDF"),
                ("x-geo-asn", b"3215"),
                ("x-geo-anon", b"true"),
                ("x-geo-anon-vpn", b"true"),
                ("x-geo-anon-hosting", b"false"),
                ("x-geo-anon-tor", b"false"),
                ("x-geo-anon-proxy", b"nonsense"),
            ],
        );
        assert_eq!(place.country, Some(*b"FR"));
        assert_eq!(place.country_str(), Some("FR"));
        assert_eq!(place.city.as_deref(), Some("Paris"));
        assert_eq!(place.region.as_deref(), Some("IDF"));
        assert_eq!(place.asn, Some(3215));
        assert_eq!(
            place.anonymous,
            Anonymity {
                anonymous: true,
                vpn: true,
                ..Anonymity::default()
            }
        );
        assert_eq!(place.coordinates, places::city_point(*b"FR", "paris"));
        assert_eq!(place.coordinates_source, Some(CoordinatesSource::CityTable));
        // A city the table lacks: the country's point.
        let lyon = read(
            &LocationHeaders::geoip(),
            &[("x-geo-country", b"fr"), ("x-geo-city", b"Lyon")],
        );
        assert_eq!(lyon.country, Some(*b"FR"));
        assert_eq!(lyon.coordinates, places::country_point(*b"FR"));
        assert_eq!(
            lyon.coordinates_source,
            Some(CoordinatesSource::CountryTable)
        );
    }

    #[test]
    fn cloudfront_headers_give_coordinates_and_percent_encoded_names() {
        let place = read(
            &LocationHeaders::cloudfront(),
            &[
                ("cloudfront-viewer-country", b"BR"),
                ("cloudfront-viewer-city", b"S%C3%A3o Paulo"),
                ("cloudfront-viewer-country-region", b"SP"),
                ("cloudfront-viewer-latitude", b"-23.54750"),
                ("cloudfront-viewer-longitude", b"-46.63611"),
                ("cloudfront-viewer-asn", b"28573"),
            ],
        );
        assert_eq!(place.country, Some(*b"BR"));
        assert_eq!(place.city.as_deref(), Some("São Paulo"));
        assert_eq!(place.region.as_deref(), Some("SP"));
        assert_eq!(place.asn, Some(28573));
        assert_eq!(place.coordinates, Some(point(-23.5475, -46.63611)));
        assert_eq!(place.coordinates_source, Some(CoordinatesSource::Header));
        // Broken percent-encoding: the name is dropped, nothing else.
        let broken = read(
            &LocationHeaders::cloudfront(),
            &[
                ("cloudfront-viewer-country", b"BR"),
                ("cloudfront-viewer-city", b"S%C3%A"),
            ],
        );
        assert_eq!(broken.city, None);
        assert_eq!(broken.country, Some(*b"BR"));
        // Percent-encoded bytes that are not UTF-8, or a control character.
        for city in [&b"%FF%FE"[..], b"a%00b", b"a%0Ab"] {
            let place = read(
                &LocationHeaders::cloudfront(),
                &[("cloudfront-viewer-city", city)],
            );
            assert_eq!(place.city, None, "{city:?}");
        }
    }

    #[test]
    fn cloudflare_pseudo_countries_are_not_countries() {
        let tor = read(&LocationHeaders::cloudflare(), &[("cf-ipcountry", b"T1")]);
        assert_eq!(tor.country, None);
        assert!(tor.anonymous.tor && tor.anonymous.any());
        assert_eq!(tor.coordinates, None);
        assert!(!tor.is_located());
        let unknown = read(&LocationHeaders::cloudflare(), &[("cf-ipcountry", b"XX")]);
        assert_eq!(unknown, Place::default());
        let place = read(
            &LocationHeaders::cloudflare(),
            &[
                ("cf-ipcountry", b"US"),
                ("cf-ipcity", b"Ann Arbor"),
                ("cf-region-code", b"MI"),
                ("cf-iplatitude", b"42.30680"),
                ("cf-iplongitude", b"-83.70590"),
            ],
        );
        assert_eq!(place.country, Some(*b"US"));
        assert_eq!(place.coordinates, Some(point(42.3068, -83.7059)));
        assert_eq!(place.coordinates_source, Some(CoordinatesSource::Header));
        assert!(!place.anonymous.any());
    }

    #[test]
    fn malformed_coordinates_fall_back_to_the_table() {
        let names = LocationHeaders::cloudflare();
        for (lat, lon) in [
            (&b"91"[..], &b"10"[..]),
            (b"10", b"-180.5"),
            (b"NaN", b"1"),
            (b"inf", b"1"),
            (b"1e3", b"1"),
            (b"1.2.3", b"1"),
            (b"--1", b"1"),
            (b"", b"1"),
            (b"+", b"1"),
            (b"0", b"0"),
            (b"12.5", b"-"),
        ] {
            let place = read(
                &names,
                &[
                    ("cf-ipcountry", b"DE"),
                    ("cf-iplatitude", lat),
                    ("cf-iplongitude", lon),
                ],
            );
            assert_eq!(place.coordinates, places::country_point(*b"DE"), "{lat:?}");
            assert_eq!(
                place.coordinates_source,
                Some(CoordinatesSource::CountryTable)
            );
        }
        // A latitude without a longitude is no position either.
        let half = read(&names, &[("cf-iplatitude", b"48.1")]);
        assert_eq!(half.coordinates, None);
        assert_eq!(half.coordinates_source, None);
        // Signs, spaces and a bare integer are fine.
        let fine = read(
            &names,
            &[("cf-iplatitude", b" +48 "), ("cf-iplongitude", b"-0.5")],
        );
        assert_eq!(fine.coordinates, Some(point(48.0, -0.5)));
    }

    #[test]
    fn small_fields_are_checked() {
        let names = LocationHeaders::geoip();
        let asn_of = |v: &[u8]| read(&names, &[("x-geo-asn", v)]).asn;
        assert_eq!(asn_of(b"AS13335"), Some(13335));
        assert_eq!(asn_of(b"4294967295"), Some(u32::MAX));
        for bad in [
            &b"0"[..],
            b"4294967296",
            b"-1",
            b"12a",
            b"",
            b"AS",
            b"99999999999",
        ] {
            assert_eq!(asn_of(bad), None, "{bad:?}");
        }
        let country_of = |v: &[u8]| read(&names, &[("x-geo-country", v)]).country;
        assert_eq!(country_of(b" gb "), Some(*b"GB"));
        for bad in [&b"G"[..], b"GBR", b"ZZ", b"EU", b"1A", b"\xC3\x89U", b""] {
            assert_eq!(country_of(bad), None, "{bad:?}");
        }
        assert_eq!(
            read(&names, &[("x-geo-city", &[b'a'; 129])]).city,
            None,
            "over the bound"
        );
        assert_eq!(read(&names, &[("x-geo-city", b"   ")]).city, None);
        // Raw UTF-8 is a name (Envoy writes UTF-8); a percent sign is kept when the source
        // does not percent-encode.
        assert_eq!(
            read(&names, &[("x-geo-city", "Zürich 100%".as_bytes())])
                .city
                .as_deref(),
            Some("Zürich 100%")
        );
    }

    #[test]
    fn operator_names_are_lowercased() {
        let names = LocationHeaders {
            country: Some("X-Country".to_string()),
            ..LocationHeaders::default()
        }
        .lowercased();
        assert_eq!(names.country.as_deref(), Some("x-country"));
        let place = read(&names, &[("x-country", b"JP")]);
        assert_eq!(place.country, Some(*b"JP"));
        assert_eq!(
            place.coordinates_source,
            Some(CoordinatesSource::CountryTable)
        );
    }

    #[test]
    fn hostile_bytes_never_panic_and_never_pass_as_values() {
        let all: Vec<u8> = (0..=255).collect();
        let huge = vec![b'9'; 1 << 20];
        let huge_name = vec![b'a'; 1 << 20];
        let mut samples: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        samples.extend((0..=255u8).map(|b| vec![b'4', b, b'.', b'5']));
        samples.extend((0..=255u8).map(|b| vec![b'%', b, b'%']));
        samples.push(all);
        samples.push(huge);
        samples.push(huge_name);
        samples.push(b"%".to_vec());
        samples.push(b"%%%%".to_vec());
        samples.push(b"\xF0\x9F\x98".to_vec());
        for names in [
            LocationHeaders::geoip(),
            LocationHeaders::cloudfront(),
            LocationHeaders::cloudflare(),
        ] {
            for value in &samples {
                let lookup = |_: &str| Some(value.as_slice());
                let place = read_place(&lookup, &names);
                for text in [&place.city, &place.region].into_iter().flatten() {
                    assert!(text.len() <= MAX_NAME_BYTES);
                    assert!(!text.chars().any(char::is_control), "{text:?}");
                }
                if let Some(c) = place.coordinates {
                    assert!(c.latitude.abs() <= 90.0 && c.longitude.abs() <= 180.0);
                }
            }
        }
    }
}

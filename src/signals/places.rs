//! A small built-in gazetteer: a representative point for every ISO 3166-1 country (its
//! capital) and for the largest cities, so a request whose geolocation gives names but no
//! coordinates (Envoy's geoip filter writes a country code and an English city name, never
//! a latitude) can still be placed for travel checks. It also defines [`Coordinates`].
//!
//! **Where the values come from.** Written for this project from public-domain geographic
//! knowledge, not copied from any code or data file: each country's point is its capital
//! (the seat of government where the two differ: La Paz for Bolivia), the point The World
//! Factbook's "Capital — geographic coordinates" field gives (CIA; a U.S. Government work,
//! public domain), rounded to 0.01° (about 1 km). Places without a capital use their
//! administrative centre or a central point (Antarctica: the South Pole). City points are
//! city centres, to the same rounding. A handful were compared with public capital lists
//! for sanity; the tests check known distances between them.
//!
//! **How far a country reaches.** Each country row also carries `reach_km`: an estimate,
//! rounded up, of how far its main territory extends from its point (Canada: Ottawa to the
//! Yukon). A country-level sighting says only "somewhere in that country", so a travel
//! check must not take the capital for the place: it subtracts both reaches from the
//! distance before it judges a speed ([`super::sightings`]). The reach is only ever
//! subtracted, so an overestimate costs detections, never a false alarm; far-flung parts
//! (Hawaii, the Canary Islands, Easter Island) are left out where their neighbours are far
//! away anyway.
//!
//! Never allocates, never panics: lookups are binary searches over sorted static arrays
//! (their order is checked by the tests). It must never be taken as a precise position.

use std::cmp::Ordering;

/// A point on the Earth, in degrees (WGS 84). [`Coordinates::new`] checks the ranges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coordinates {
    /// Degrees north (negative: south), -90 to 90.
    pub latitude: f64,
    /// Degrees east (negative: west), -180 to 180.
    pub longitude: f64,
}

impl Coordinates {
    /// The point at `latitude`, `longitude`, if both are finite and within range.
    pub fn new(latitude: f64, longitude: f64) -> Option<Coordinates> {
        let valid = latitude.is_finite()
            && longitude.is_finite()
            && (-90.0..=90.0).contains(&latitude)
            && (-180.0..=180.0).contains(&longitude);
        valid.then_some(Coordinates {
            latitude,
            longitude,
        })
    }
}

/// (code, latitude, longitude, reach in km), sorted by code. Every code ISO 3166-1
/// assigns, and `XK` (Kosovo: user-assigned in ISO 3166, but what MaxMind, CloudFront and
/// Cloudflare report for it).
const COUNTRIES: &[([u8; 2], f64, f64, u16)] = &[
    (*b"AD", 42.51, 1.52, 40),
    (*b"AE", 24.45, 54.38, 500),
    (*b"AF", 34.53, 69.17, 1000),
    (*b"AG", 17.12, -61.85, 100),
    (*b"AI", 18.22, -63.05, 40),
    (*b"AL", 41.33, 19.82, 250),
    (*b"AM", 40.18, 44.51, 250),
    (*b"AO", -8.84, 13.23, 1400),
    (*b"AQ", -90.0, 0.0, 3200),
    (*b"AR", -34.60, -58.38, 2600),
    (*b"AS", -14.28, -170.70, 400),
    (*b"AT", 48.21, 16.37, 600),
    (*b"AU", -35.28, 149.13, 3900),
    (*b"AW", 12.52, -70.03, 40),
    (*b"AX", 60.10, 19.94, 120),
    (*b"AZ", 40.41, 49.87, 550),
    (*b"BA", 43.86, 18.41, 250),
    (*b"BB", 13.10, -59.62, 40),
    (*b"BD", 23.81, 90.41, 450),
    (*b"BE", 50.85, 4.35, 200),
    (*b"BF", 12.37, -1.52, 600),
    (*b"BG", 42.70, 23.32, 450),
    (*b"BH", 26.23, 50.59, 60),
    (*b"BI", -3.43, 29.92, 200),
    (*b"BJ", 6.50, 2.60, 700),
    (*b"BL", 17.90, -62.85, 20),
    (*b"BM", 32.29, -64.78, 40),
    (*b"BN", 4.94, 114.95, 150),
    (*b"BO", -16.50, -68.15, 1300),
    (*b"BQ", 12.15, -68.27, 900),
    (*b"BR", -15.79, -47.88, 3000),
    (*b"BS", 25.05, -77.35, 650),
    (*b"BT", 27.47, 89.64, 250),
    (*b"BV", -54.42, 3.36, 20),
    (*b"BW", -24.65, 25.91, 1000),
    (*b"BY", 53.90, 27.56, 450),
    (*b"BZ", 17.25, -88.77, 250),
    (*b"CA", 45.42, -75.70, 4600),
    (*b"CC", -12.19, 96.83, 40),
    (*b"CD", -4.44, 15.27, 1900),
    (*b"CF", 4.39, 18.56, 900),
    (*b"CG", -4.27, 15.28, 1000),
    (*b"CH", 46.95, 7.45, 250),
    (*b"CI", 6.83, -5.29, 550),
    (*b"CK", -21.21, -159.78, 1400),
    (*b"CL", -33.45, -70.67, 2600),
    (*b"CM", 3.85, 11.50, 1100),
    (*b"CN", 39.90, 116.41, 3700),
    (*b"CO", 4.71, -74.07, 1200),
    (*b"CR", 9.93, -84.09, 300),
    (*b"CU", 23.11, -82.37, 900),
    (*b"CV", 14.93, -23.51, 350),
    (*b"CW", 12.11, -68.93, 40),
    (*b"CX", -10.42, 105.68, 20),
    (*b"CY", 35.17, 33.36, 200),
    (*b"CZ", 50.08, 14.44, 400),
    (*b"DE", 52.52, 13.40, 700),
    (*b"DJ", 11.59, 43.15, 200),
    (*b"DK", 55.68, 12.57, 400),
    (*b"DM", 15.30, -61.39, 50),
    (*b"DO", 18.49, -69.93, 350),
    (*b"DZ", 36.75, 3.06, 2100),
    (*b"EC", -0.18, -78.47, 500),
    (*b"EE", 59.44, 24.75, 250),
    (*b"EG", 30.04, 31.24, 1100),
    (*b"EH", 27.15, -13.20, 900),
    (*b"ER", 15.32, 38.93, 500),
    (*b"ES", 40.42, -3.70, 700),
    (*b"ET", 9.03, 38.74, 1000),
    (*b"FI", 60.17, 24.94, 1100),
    (*b"FJ", -18.14, 178.44, 700),
    (*b"FK", -51.70, -57.85, 200),
    (*b"FM", 6.92, 158.16, 1900),
    (*b"FO", 62.01, -6.77, 100),
    (*b"FR", 48.86, 2.35, 1000),
    (*b"GA", 0.42, 9.47, 700),
    (*b"GB", 51.51, -0.13, 1000),
    (*b"GD", 12.06, -61.75, 60),
    (*b"GE", 41.72, 44.79, 350),
    (*b"GF", 4.92, -52.33, 350),
    (*b"GG", 49.46, -2.54, 50),
    (*b"GH", 5.60, -0.19, 700),
    (*b"GI", 36.14, -5.35, 10),
    (*b"GL", 64.18, -51.72, 2400),
    (*b"GM", 13.45, -16.58, 350),
    (*b"GN", 9.64, -13.58, 800),
    (*b"GP", 16.00, -61.73, 100),
    (*b"GQ", 3.75, 8.78, 700),
    (*b"GR", 37.98, 23.73, 650),
    (*b"GS", -54.28, -36.51, 800),
    (*b"GT", 14.63, -90.51, 400),
    (*b"GU", 13.47, 144.75, 40),
    (*b"GW", 11.86, -15.60, 250),
    (*b"GY", 6.80, -58.16, 700),
    (*b"HK", 22.32, 114.17, 40),
    (*b"HM", -53.10, 73.52, 100),
    (*b"HN", 14.07, -87.19, 500),
    (*b"HR", 45.81, 15.98, 500),
    (*b"HT", 18.59, -72.31, 250),
    (*b"HU", 47.50, 19.04, 350),
    (*b"ID", -6.21, 106.85, 4000),
    (*b"IE", 53.35, -6.26, 350),
    (*b"IL", 31.77, 35.21, 300),
    (*b"IM", 54.15, -4.48, 40),
    (*b"IN", 28.61, 77.21, 2600),
    (*b"IO", -7.31, 72.41, 300),
    (*b"IQ", 33.32, 44.37, 600),
    (*b"IR", 35.69, 51.39, 1500),
    (*b"IS", 64.15, -21.94, 500),
    (*b"IT", 41.90, 12.50, 800),
    (*b"JE", 49.19, -2.11, 30),
    (*b"JM", 17.97, -76.79, 200),
    (*b"JO", 31.95, 35.93, 400),
    (*b"JP", 35.68, 139.69, 2000),
    (*b"KE", -1.29, 36.82, 850),
    (*b"KG", 42.87, 74.59, 700),
    (*b"KH", 11.56, 104.92, 400),
    (*b"KI", 1.45, 173.00, 3400),
    (*b"KM", -11.70, 43.26, 250),
    (*b"KN", 17.30, -62.73, 40),
    (*b"KP", 39.04, 125.76, 600),
    (*b"KR", 37.57, 126.98, 500),
    (*b"KW", 29.38, 47.99, 200),
    (*b"KY", 19.29, -81.38, 150),
    (*b"KZ", 51.17, 71.43, 1900),
    (*b"LA", 17.98, 102.63, 700),
    (*b"LB", 33.89, 35.50, 150),
    (*b"LC", 14.01, -60.99, 40),
    (*b"LI", 47.14, 9.52, 20),
    (*b"LK", 6.89, 79.90, 400),
    (*b"LR", 6.30, -10.80, 500),
    (*b"LS", -29.31, 27.48, 200),
    (*b"LT", 54.69, 25.28, 350),
    (*b"LU", 49.61, 6.13, 60),
    (*b"LV", 56.95, 24.11, 300),
    (*b"LY", 32.89, 13.19, 1900),
    (*b"MA", 34.02, -6.84, 1000),
    (*b"MC", 43.74, 7.42, 10),
    (*b"MD", 47.01, 28.86, 250),
    (*b"ME", 42.44, 19.26, 150),
    (*b"MF", 18.07, -63.08, 20),
    (*b"MG", -18.88, 47.51, 900),
    (*b"MH", 7.09, 171.38, 1300),
    (*b"MK", 42.00, 21.43, 200),
    (*b"ML", 12.64, -8.00, 1700),
    (*b"MM", 19.76, 96.08, 1200),
    (*b"MN", 47.89, 106.91, 1500),
    (*b"MO", 22.20, 113.54, 20),
    (*b"MP", 15.21, 145.75, 700),
    (*b"MQ", 14.62, -61.06, 50),
    (*b"MR", 18.08, -15.98, 1400),
    (*b"MS", 16.79, -62.21, 20),
    (*b"MT", 35.90, 14.51, 50),
    (*b"MU", -20.16, 57.50, 600),
    (*b"MV", 4.18, 73.51, 550),
    (*b"MW", -13.96, 33.79, 600),
    (*b"MX", 19.43, -99.13, 2400),
    (*b"MY", 3.139, 101.69, 2000),
    (*b"MZ", -25.97, 32.57, 1800),
    (*b"NA", -22.56, 17.07, 1200),
    (*b"NC", -22.28, 166.46, 500),
    (*b"NE", 13.51, 2.11, 1700),
    (*b"NF", -29.06, 167.96, 20),
    (*b"NG", 9.06, 7.49, 750),
    (*b"NI", 12.11, -86.24, 450),
    (*b"NL", 52.37, 4.90, 300),
    (*b"NO", 59.91, 10.75, 1500),
    (*b"NP", 27.72, 85.32, 650),
    (*b"NR", -0.55, 166.92, 10),
    (*b"NU", -19.06, -169.92, 20),
    (*b"NZ", -41.29, 174.78, 1000),
    (*b"OM", 23.59, 58.41, 1000),
    (*b"PA", 8.98, -79.52, 400),
    (*b"PE", -12.05, -77.04, 1300),
    (*b"PF", -17.54, -149.57, 1700),
    (*b"PG", -9.44, 147.18, 1200),
    (*b"PH", 14.60, 120.98, 1300),
    (*b"PK", 33.68, 73.05, 1400),
    (*b"PL", 52.23, 21.01, 500),
    (*b"PM", 46.78, -56.18, 40),
    (*b"PN", -25.07, -130.10, 550),
    (*b"PR", 18.47, -66.11, 150),
    (*b"PS", 31.90, 35.20, 150),
    (*b"PT", 38.72, -9.14, 700),
    (*b"PW", 7.50, 134.62, 600),
    (*b"PY", -25.26, -57.58, 850),
    (*b"QA", 25.29, 51.53, 150),
    (*b"RE", -20.88, 55.45, 60),
    (*b"RO", 44.43, 26.10, 550),
    (*b"RS", 44.79, 20.45, 350),
    (*b"RU", 55.76, 37.62, 7000),
    (*b"RW", -1.94, 30.06, 200),
    (*b"SA", 24.71, 46.68, 1300),
    (*b"SB", -9.43, 159.95, 900),
    (*b"SC", -4.62, 55.45, 1200),
    (*b"SD", 15.50, 32.56, 1300),
    (*b"SE", 59.33, 18.07, 1300),
    (*b"SG", 1.35, 103.82, 30),
    (*b"SH", -15.92, -5.72, 2500),
    (*b"SI", 46.06, 14.51, 150),
    (*b"SJ", 78.22, 15.65, 1000),
    (*b"SK", 48.15, 17.11, 450),
    (*b"SL", 8.48, -13.23, 350),
    (*b"SM", 43.94, 12.45, 10),
    (*b"SN", 14.72, -17.47, 700),
    (*b"SO", 2.05, 45.32, 1400),
    (*b"SR", 5.85, -55.20, 500),
    (*b"SS", 4.85, 31.58, 850),
    (*b"ST", 0.34, 6.73, 200),
    (*b"SV", 13.69, -89.22, 150),
    (*b"SX", 18.03, -63.05, 10),
    (*b"SY", 33.51, 36.29, 650),
    (*b"SZ", -26.31, 31.14, 150),
    (*b"TC", 21.46, -71.14, 150),
    (*b"TD", 12.13, 15.06, 1600),
    (*b"TF", -49.35, 70.22, 5000),
    (*b"TG", 6.13, 1.22, 600),
    (*b"TH", 13.76, 100.50, 1000),
    (*b"TJ", 38.56, 68.79, 700),
    (*b"TK", -9.20, -171.85, 150),
    (*b"TL", -8.56, 125.57, 300),
    (*b"TM", 37.96, 58.33, 900),
    (*b"TN", 36.81, 10.18, 800),
    (*b"TO", -21.14, -175.20, 700),
    (*b"TR", 39.93, 32.86, 1200),
    (*b"TT", 10.65, -61.51, 150),
    (*b"TV", -8.52, 179.20, 500),
    (*b"TW", 25.03, 121.57, 400),
    (*b"TZ", -6.16, 35.75, 900),
    (*b"UA", 50.45, 30.52, 900),
    (*b"UG", 0.35, 32.58, 500),
    (*b"UM", 19.28, 166.65, 20000),
    (*b"US", 38.90, -77.04, 4500),
    (*b"UY", -34.90, -56.16, 500),
    (*b"UZ", 41.30, 69.24, 1400),
    (*b"VA", 41.90, 12.45, 5),
    (*b"VC", 13.16, -61.23, 100),
    (*b"VE", 10.48, -66.90, 1200),
    (*b"VG", 18.43, -64.62, 50),
    (*b"VI", 18.34, -64.93, 80),
    (*b"VN", 21.03, 105.85, 1500),
    (*b"VU", -17.73, 168.32, 650),
    (*b"WF", -13.28, -176.18, 250),
    (*b"WS", -13.83, -171.76, 150),
    (*b"XK", 42.66, 21.17, 100),
    (*b"YE", 15.37, 44.19, 1100),
    (*b"YT", -12.78, 45.23, 40),
    (*b"ZA", -25.75, 28.19, 1500),
    (*b"ZM", -15.39, 28.32, 900),
    (*b"ZW", -17.83, 31.05, 700),
];

/// (country, lower-case English name, latitude, longitude), sorted by country then name
/// (byte order). The largest cities by population, under the names MaxMind's English
/// names use, plus the common ASCII spellings of the accented ones.
const CITIES: &[([u8; 2], &str, f64, f64)] = &[
    (*b"AO", "luanda", -8.84, 13.23),
    (*b"AR", "buenos aires", -34.60, -58.38),
    (*b"AU", "melbourne", -37.81, 144.96),
    (*b"AU", "sydney", -33.87, 151.21),
    (*b"BD", "dhaka", 23.81, 90.41),
    (*b"BR", "rio de janeiro", -22.91, -43.17),
    (*b"BR", "sao paulo", -23.55, -46.63),
    (*b"BR", "são paulo", -23.55, -46.63),
    (*b"CA", "montreal", 45.50, -73.57),
    (*b"CA", "montréal", 45.50, -73.57),
    (*b"CA", "toronto", 43.65, -79.38),
    (*b"CA", "vancouver", 49.28, -123.12),
    (*b"CD", "kinshasa", -4.44, 15.27),
    (*b"CI", "abidjan", 5.36, -4.01),
    (*b"CL", "santiago", -33.45, -70.67),
    (*b"CN", "beijing", 39.90, 116.41),
    (*b"CN", "chengdu", 30.57, 104.07),
    (*b"CN", "chongqing", 29.56, 106.55),
    (*b"CN", "guangzhou", 23.13, 113.26),
    (*b"CN", "hangzhou", 30.27, 120.16),
    (*b"CN", "nanjing", 32.06, 118.80),
    (*b"CN", "shanghai", 31.23, 121.47),
    (*b"CN", "shenzhen", 22.54, 114.06),
    (*b"CN", "tianjin", 39.13, 117.20),
    (*b"CN", "wuhan", 30.59, 114.31),
    (*b"CN", "xi'an", 34.34, 108.94),
    (*b"CN", "xian", 34.34, 108.94),
    (*b"CO", "bogota", 4.71, -74.07),
    (*b"CO", "bogotá", 4.71, -74.07),
    (*b"DE", "berlin", 52.52, 13.40),
    (*b"DE", "frankfurt am main", 50.11, 8.68),
    (*b"DE", "hamburg", 53.55, 9.99),
    (*b"DE", "munich", 48.14, 11.58),
    (*b"EG", "alexandria", 31.20, 29.92),
    (*b"EG", "cairo", 30.04, 31.24),
    (*b"ES", "barcelona", 41.39, 2.17),
    (*b"ES", "madrid", 40.42, -3.70),
    (*b"FR", "paris", 48.86, 2.35),
    (*b"GB", "london", 51.51, -0.13),
    (*b"GB", "manchester", 53.48, -2.24),
    (*b"HK", "hong kong", 22.32, 114.17),
    (*b"ID", "jakarta", -6.21, 106.85),
    (*b"IN", "ahmedabad", 23.02, 72.57),
    (*b"IN", "bangalore", 12.97, 77.59),
    (*b"IN", "bengaluru", 12.97, 77.59),
    (*b"IN", "chennai", 13.08, 80.27),
    (*b"IN", "delhi", 28.61, 77.21),
    (*b"IN", "hyderabad", 17.39, 78.49),
    (*b"IN", "kolkata", 22.57, 88.36),
    (*b"IN", "mumbai", 19.08, 72.88),
    (*b"IN", "new delhi", 28.61, 77.21),
    (*b"IN", "pune", 18.52, 73.86),
    (*b"IN", "surat", 21.17, 72.83),
    (*b"IQ", "baghdad", 33.32, 44.37),
    (*b"IR", "tehran", 35.69, 51.39),
    (*b"IT", "milan", 45.46, 9.19),
    (*b"IT", "rome", 41.90, 12.50),
    (*b"JP", "nagoya", 35.18, 136.91),
    (*b"JP", "osaka", 34.69, 135.50),
    (*b"JP", "tokyo", 35.68, 139.69),
    (*b"KE", "nairobi", -1.29, 36.82),
    (*b"KR", "busan", 35.18, 129.08),
    (*b"KR", "seoul", 37.57, 126.98),
    (*b"MM", "yangon", 16.87, 96.20),
    (*b"MX", "guadalajara", 20.67, -103.35),
    (*b"MX", "mexico city", 19.43, -99.13),
    (*b"MX", "monterrey", 25.69, -100.32),
    (*b"MY", "kuala lumpur", 3.139, 101.69),
    (*b"NG", "lagos", 6.52, 3.38),
    (*b"NL", "amsterdam", 52.37, 4.90),
    (*b"PE", "lima", -12.05, -77.04),
    (*b"PH", "manila", 14.60, 120.98),
    (*b"PK", "karachi", 24.86, 67.01),
    (*b"PK", "lahore", 31.55, 74.34),
    (*b"RU", "moscow", 55.76, 37.62),
    (*b"RU", "saint petersburg", 59.94, 30.31),
    (*b"SA", "riyadh", 24.71, 46.68),
    (*b"SD", "khartoum", 15.50, 32.56),
    (*b"SG", "singapore", 1.35, 103.82),
    (*b"TH", "bangkok", 13.76, 100.50),
    (*b"TR", "istanbul", 41.01, 28.98),
    (*b"TZ", "dar es salaam", -6.79, 39.21),
    (*b"US", "chicago", 41.88, -87.63),
    (*b"US", "dallas", 32.78, -96.80),
    (*b"US", "houston", 29.76, -95.37),
    (*b"US", "los angeles", 34.05, -118.24),
    (*b"US", "miami", 25.76, -80.19),
    (*b"US", "new york", 40.71, -74.01),
    (*b"US", "new york city", 40.71, -74.01),
    (*b"US", "san francisco", 37.77, -122.42),
    (*b"US", "seattle", 47.61, -122.33),
    (*b"US", "washington", 38.90, -77.04),
    (*b"VN", "ho chi minh city", 10.82, 106.63),
    (*b"ZA", "johannesburg", -26.20, 28.05),
];

fn country_row(code: [u8; 2]) -> Option<&'static ([u8; 2], f64, f64, u16)> {
    let at = COUNTRIES.binary_search_by(|row| row.0.cmp(&code)).ok()?;
    COUNTRIES.get(at)
}

/// Whether `code` (upper-case) is a country this table knows: every ISO 3166-1 alpha-2
/// code, and `XK`.
pub fn is_country(code: [u8; 2]) -> bool {
    country_row(code).is_some()
}

/// The representative point (the capital) of country `code` (upper-case ISO 3166-1
/// alpha-2), if the table knows it.
pub fn country_point(code: [u8; 2]) -> Option<Coordinates> {
    country_row(code).map(|row| Coordinates {
        latitude: row.1,
        longitude: row.2,
    })
}

/// How far, in km, country `code`'s main territory may lie from its [`country_point`]
/// (an estimate rounded up; see the module docs). `None` for a code the table lacks.
pub fn country_reach_km(code: [u8; 2]) -> Option<f64> {
    country_row(code).map(|row| f64::from(row.3))
}

/// Compares a stored lower-case name with `name` lower-cased, without allocating.
fn cmp_lowercase(stored: &str, name: &str) -> Ordering {
    stored
        .chars()
        .cmp(name.chars().flat_map(char::to_lowercase))
}

/// The centre of city `city` (case-insensitive English name, as MaxMind writes it, e.g.
/// "New York", "São Paulo") in country `country`, if it is one of the largest cities the
/// table lists.
pub fn city_point(country: [u8; 2], city: &str) -> Option<Coordinates> {
    // No city name is this long: do not compare what cannot match.
    if city.len() > 64 {
        return None;
    }
    let at = CITIES
        .binary_search_by(|row| row.0.cmp(&country).then_with(|| cmp_lowercase(row.1, city)))
        .ok()?;
    CITIES.get(at).map(|row| Coordinates {
        latitude: row.2,
        longitude: row.3,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_unique_and_in_range() {
        for pair in COUNTRIES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{:?}", pair[1].0);
        }
        for pair in CITIES.windows(2) {
            let order = pair[0].0.cmp(&pair[1].0).then(pair[0].1.cmp(pair[1].1));
            assert_eq!(order, Ordering::Less, "{:?} {}", pair[1].0, pair[1].1);
        }
        for (code, lat, lon, reach) in COUNTRIES {
            assert!(code.iter().all(u8::is_ascii_uppercase));
            assert!(Coordinates::new(*lat, *lon).is_some(), "{code:?}");
            assert!(*reach > 0);
        }
        for (code, name, lat, lon) in CITIES {
            assert!(is_country(*code), "{name}");
            assert_eq!(name.to_lowercase(), *name);
            assert!(Coordinates::new(*lat, *lon).is_some(), "{name}");
        }
    }

    #[test]
    fn every_iso_country_is_there() {
        // 249 ISO 3166-1 codes, and XK.
        assert_eq!(COUNTRIES.len(), 250);
        for code in [*b"US", *b"FR", *b"AQ", *b"SS", *b"BQ", *b"XK", *b"ZW"] {
            assert!(is_country(code), "{code:?}");
        }
        for code in [*b"XX", *b"ZZ", *b"EU", *b"T1", *b"AA", *b"us"] {
            assert!(!is_country(code), "{code:?}");
        }
    }

    #[test]
    fn country_points_are_the_capitals() {
        let paris = country_point(*b"FR").unwrap();
        assert_eq!((paris.latitude, paris.longitude), (48.86, 2.35));
        let washington = country_point(*b"US").unwrap();
        assert_eq!((washington.latitude, washington.longitude), (38.90, -77.04));
        assert_eq!(country_point(*b"XX"), None);
        assert_eq!(country_reach_km(*b"CA"), Some(4600.0));
        assert_eq!(country_reach_km(*b"ZZ"), None);
    }

    #[test]
    fn known_distances_between_capitals() {
        use super::super::location::distance_km;
        let km = |a: &[u8; 2], b: &[u8; 2]| {
            distance_km(country_point(*a).unwrap(), country_point(*b).unwrap())
        };
        for (a, b, expected) in [
            (b"GB", b"FR", 344.0),
            (b"ES", b"PT", 503.0),
            (b"US", b"CA", 734.0),
            (b"JP", b"KR", 1_159.0),
            (b"AU", b"NZ", 2_326.0),
            (b"CN", b"RU", 5_800.0),
            (b"AR", b"UY", 205.0),
        ] {
            let got = km(a, b);
            assert!(
                (got - expected).abs() < expected * 0.02,
                "{a:?}-{b:?}: {got}"
            );
        }
    }

    #[test]
    fn cities_are_found_by_name_whatever_the_case() {
        let ny = city_point(*b"US", "New York").unwrap();
        assert_eq!((ny.latitude, ny.longitude), (40.71, -74.01));
        assert_eq!(city_point(*b"US", "NEW YORK"), Some(ny));
        assert_eq!(
            city_point(*b"BR", "SÃO PAULO"),
            city_point(*b"BR", "sao paulo")
        );
        assert!(city_point(*b"BR", "São Paulo").is_some());
        // The country is part of the key: Paris, Texas is not Paris.
        assert_eq!(city_point(*b"US", "Paris"), None);
        assert_eq!(city_point(*b"FR", "Lyon"), None);
        assert_eq!(city_point(*b"FR", ""), None);
        assert_eq!(city_point(*b"FR", &"x".repeat(10_000)), None);
    }

    #[test]
    fn coordinates_are_checked() {
        assert!(Coordinates::new(90.0, 180.0).is_some());
        assert!(Coordinates::new(-90.0, -180.0).is_some());
        for (lat, lon) in [
            (90.01, 0.0),
            (0.0, -180.5),
            (f64::NAN, 0.0),
            (0.0, f64::INFINITY),
        ] {
            assert_eq!(Coordinates::new(lat, lon), None);
        }
    }
}

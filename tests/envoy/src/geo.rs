//! Geolocation for the end-to-end tests: tiny MaxMind databases (City, ASN, Anonymous-IP)
//! made at test time by `scripts/make-test-geoip.py` (PyPI `mmdb-writer`, in the
//! repository's `.venv`), and the filters that put Envoy's `envoy.filters.http.geoip` in
//! front of the mfa-gate filter:
//!
//! 1. `envoy.filters.http.header_mutation` removes every request header starting with
//!    [`GEO_HEADER_PREFIX`]: the geoip filter sets a header only when its lookup finds a
//!    value and leaves a client's own copy in place otherwise, so without this a client
//!    could claim `x-geo-country: US` from an address the databases do not know;
//! 2. `envoy.filters.http.geoip` with the `envoy.geoip_providers.maxmind` provider, looking
//!    up the address [`ClientAddress`] says;
//! 3. then the wasm filter(s) and the router, as the bootstrap has them.
//!
//! ```no_run
//! use mfa_gate_envoy::{ClientAddress, GatewayBuilder, GeoDatabases, GeoNetwork, GeoSetup};
//! let databases = GeoDatabases::build(&[GeoNetwork::new("203.0.113.0/24").country("FR").city("Paris")]);
//! let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
//!     .geoip(&GeoSetup::new(&databases, ClientAddress::test_header()))
//!     .echo_upstream()
//!     .start();
//! ```

use crate::process::Scratch;
use crate::repo_root;
use serde_json::{json, Map, Value as Json};
use serde_yaml::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every geo header the setup adds starts with this; the strip filter removes them all.
pub const GEO_HEADER_PREFIX: &str = "x-geo-";
/// The request header [`ClientAddress::test_header`] takes the looked-up address from.
pub const TEST_CLIENT_IP_HEADER: &str = "x-test-client-ip";

/// The request headers the geoip filter sets (`geo_field_keys` of the MaxMind
/// provider's `common_provider_config`), one per MaxMind field.
pub mod headers {
    /// `country.iso_code` of the City database, e.g. `FR`.
    pub const COUNTRY: &str = "x-geo-country";
    /// `city.names.en`, e.g. `Paris`.
    pub const CITY: &str = "x-geo-city";
    /// `subdivisions[0].iso_code`, e.g. `IDF`.
    pub const REGION: &str = "x-geo-region";
    /// `autonomous_system_number` of the ASN database, decimal, e.g. `64500`.
    pub const ASN: &str = "x-geo-asn";
    /// `is_anonymous` of the Anonymous-IP database: `true` or `false`.
    pub const ANON: &str = "x-geo-anon";
    /// `is_anonymous_vpn`.
    pub const ANON_VPN: &str = "x-geo-anon-vpn";
    /// `is_hosting_provider`.
    pub const ANON_HOSTING: &str = "x-geo-anon-hosting";
    /// `is_tor_exit_node`.
    pub const ANON_TOR: &str = "x-geo-anon-tor";
    /// `is_public_proxy`.
    pub const ANON_PROXY: &str = "x-geo-anon-proxy";
    /// All of them.
    pub const ALL: [&str; 9] = [
        COUNTRY,
        CITY,
        REGION,
        ASN,
        ANON,
        ANON_VPN,
        ANON_HOSTING,
        ANON_TOR,
        ANON_PROXY,
    ];
}

/// One network and what the databases say about it (the JSON `make-test-geoip.py` takes).
/// A field left unset is absent from the record, so Envoy sets no header for it.
#[derive(Clone, Debug)]
pub struct GeoNetwork {
    fields: Map<String, Json>,
}

impl GeoNetwork {
    /// An IPv4 or IPv6 network in CIDR form, e.g. `203.0.113.0/24`, `2001:db8::/32`.
    pub fn new(cidr: &str) -> GeoNetwork {
        let mut fields = Map::new();
        fields.insert("network".into(), json!(cidr));
        GeoNetwork { fields }
    }

    fn set(mut self, key: &str, value: Json) -> GeoNetwork {
        self.fields.insert(key.into(), value);
        self
    }

    /// The country's ISO code (City database `country.iso_code`).
    pub fn country(self, iso_code: &str) -> GeoNetwork {
        self.set("country", json!(iso_code))
    }

    /// The city's English name (`city.names.en`).
    pub fn city(self, name: &str) -> GeoNetwork {
        self.set("city", json!(name))
    }

    /// The region's ISO code (`subdivisions[0].iso_code`).
    pub fn region(self, iso_code: &str) -> GeoNetwork {
        self.set("region", json!(iso_code))
    }

    /// The autonomous system (ASN database), with its organisation's name.
    pub fn asn(self, number: u32, organization: &str) -> GeoNetwork {
        self.set("asn", json!(number))
            .set("asn_org", json!(organization))
    }

    /// `is_anonymous` (Anonymous-IP database).
    pub fn anonymous(self, flag: bool) -> GeoNetwork {
        self.set("anonymous", json!(flag))
    }

    /// `is_anonymous_vpn`.
    pub fn anonymous_vpn(self, flag: bool) -> GeoNetwork {
        self.set("anonymous_vpn", json!(flag))
    }

    /// `is_hosting_provider`.
    pub fn hosting_provider(self, flag: bool) -> GeoNetwork {
        self.set("hosting_provider", json!(flag))
    }

    /// `is_tor_exit_node`.
    pub fn tor_exit_node(self, flag: bool) -> GeoNetwork {
        self.set("tor_exit_node", json!(flag))
    }

    /// `is_public_proxy`.
    pub fn public_proxy(self, flag: bool) -> GeoNetwork {
        self.set("public_proxy", json!(flag))
    }

    /// The JSON object the generator reads.
    pub fn to_json(&self) -> Json {
        Json::Object(self.fields.clone())
    }
}

/// The three databases, written to their own scratch directory.
pub struct GeoDatabases {
    /// GeoIP2-City: country, city, region.
    pub city: PathBuf,
    /// GeoLite2-ASN: autonomous system number and organisation.
    pub asn: PathBuf,
    /// GeoIP2-Anonymous-IP: the five anonymity flags.
    pub anon: PathBuf,
    dir: Scratch,
}

impl GeoDatabases {
    /// Runs `scripts/make-test-geoip.py` on `networks`. Panics with what to do when the
    /// venv's Python or mmdb-writer is missing, or with the script's error.
    pub fn build(networks: &[GeoNetwork]) -> GeoDatabases {
        let dir = Scratch::new("geoip");
        let description = json!({
            "networks": networks.iter().map(GeoNetwork::to_json).collect::<Vec<_>>()
        });
        let description_path = dir.write("networks.json", description.to_string());
        let python = venv_python();
        let script = repo_root().join("scripts/make-test-geoip.py");
        let out = Command::new(&python)
            .arg(&script)
            .arg(&description_path)
            .arg(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        assert!(
            out.status.success(),
            "{} {} failed ({}): {}{}",
            python.display(),
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let file = |name: &str| {
            let path = dir.path().join(name);
            assert!(path.is_file(), "make-test-geoip.py wrote no {name}");
            path
        };
        GeoDatabases {
            city: file("city.mmdb"),
            asn: file("asn.mmdb"),
            anon: file("anon.mmdb"),
            dir,
        }
    }

    /// The directory the databases (and `networks.json`) are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Where `make run` (scripts/run-demo.sh) builds the demo's databases, relative to the
/// repository root: the shipped `envoy/envoy.yaml` names them there.
pub const DEMO_GEOIP_DIR: &str = "target/demo-geoip";

/// Builds the demo's databases from `envoy/demo-geoip.json` into [`DEMO_GEOIP_DIR`], as
/// `make run` does, once per test process; returns the directory. The shipped bootstraps'
/// relative `*_db_path`s then resolve from the repository root (`envoy --mode validate`),
/// and [`crate::GatewayBuilder::shipped`] makes them absolute.
pub fn demo_databases() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = repo_root().join(DEMO_GEOIP_DIR);
            std::fs::create_dir_all(&dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
            let python = venv_python();
            let script = repo_root().join("scripts/make-test-geoip.py");
            let out = Command::new(&python)
                .arg(&script)
                .arg(repo_root().join("envoy/demo-geoip.json"))
                .arg(&dir)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
            assert!(
                out.status.success(),
                "make-test-geoip.py envoy/demo-geoip.json failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            dir
        })
        .clone()
}

/// The repository venv's Python with mmdb-writer (`make setup` installs both); panics with
/// that advice when either is missing.
pub fn venv_python() -> PathBuf {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `make setup` (scripts/install-envoy.sh makes the venv and installs \
         mmdb-writer, which the geoip tests need)",
        python.display()
    );
    let probe = Command::new(&python)
        .args(["-c", "import mmdb_writer"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        probe.status.success(),
        "mmdb-writer is not installed in {}: run `make setup` (scripts/install-envoy.sh \
         installs it): {}",
        python.display(),
        String::from_utf8_lossy(&probe.stderr)
    );
    python
}

/// Which address the geoip filter looks up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAddress {
    /// The first value of this request header (`custom_header_config.header_name`); the
    /// connection's address when it is missing or not an IP. For tests: the client picks
    /// the address, so it must never face untrusted clients.
    Header(String),
    /// `x-forwarded-for`, trusting this many proxy hops on its right
    /// (`xff_config.xff_num_trusted_hops`, at least 1 to read the header at all: with 0
    /// Envoy 1.40 looks up the connection's address).
    Xff {
        /// Hops on the right that are the operator's own proxies.
        trusted_hops: u32,
    },
    /// The downstream connection's source address (on loopback, 127.0.0.1).
    Connection,
}

impl ClientAddress {
    /// [`ClientAddress::Header`] with [`TEST_CLIENT_IP_HEADER`].
    pub fn test_header() -> ClientAddress {
        ClientAddress::Header(TEST_CLIENT_IP_HEADER.to_string())
    }
}

/// How [`crate::GatewayBuilder::geoip`] sets the geo filters up.
#[derive(Clone, Debug)]
pub struct GeoSetup {
    /// The databases.
    pub city: PathBuf,
    /// The ASN database.
    pub asn: PathBuf,
    /// The Anonymous-IP database.
    pub anon: PathBuf,
    /// Which address is looked up.
    pub client_address: ClientAddress,
    /// Put the header_mutation filter that removes client-sent `x-geo-*` first (default
    /// true; false only to show why it is needed).
    pub strip_client_geo_headers: bool,
}

impl GeoSetup {
    /// The databases, looked up by `client_address`, client geo headers stripped.
    pub fn new(databases: &GeoDatabases, client_address: ClientAddress) -> GeoSetup {
        GeoSetup {
            city: databases.city.clone(),
            asn: databases.asn.clone(),
            anon: databases.anon.clone(),
            client_address,
            strip_client_geo_headers: true,
        }
    }

    /// Without the strip filter (to show what a client can claim without it).
    pub fn without_strip(mut self) -> GeoSetup {
        self.strip_client_geo_headers = false;
        self
    }

    /// The HTTP filters to put before the mfa-gate filter, in order.
    pub fn http_filters(&self) -> Vec<Value> {
        let mut filters = Vec::new();
        if self.strip_client_geo_headers {
            filters.push(strip_geo_headers_filter(GEO_HEADER_PREFIX));
        }
        filters.push(geoip_filter(self));
        filters
    }
}

/// `envoy.filters.http.header_mutation` removing every request header whose name starts
/// with `prefix` (`remove_on_match` with a prefix `key_matcher`).
pub fn strip_geo_headers_filter(prefix: &str) -> Value {
    yaml(&format!(
        r#"
name: envoy.filters.http.header_mutation
typed_config:
  "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
  mutations:
    request_mutations:
    - remove_on_match: {{key_matcher: {{prefix: "{prefix}"}}}}
"#
    ))
}

/// `envoy.filters.http.geoip` with the MaxMind provider on the three databases, every
/// header of [`headers`] configured.
pub fn geoip_filter(setup: &GeoSetup) -> Value {
    let address = match &setup.client_address {
        ClientAddress::Header(name) => format!("custom_header_config: {{header_name: \"{name}\"}}"),
        ClientAddress::Xff { trusted_hops } => {
            format!("xff_config: {{xff_num_trusted_hops: {trusted_hops}}}")
        }
        ClientAddress::Connection => String::new(),
    };
    yaml(&format!(
        r#"
name: envoy.filters.http.geoip
typed_config:
  "@type": type.googleapis.com/envoy.extensions.filters.http.geoip.v3.Geoip
  {address}
  provider:
    name: envoy.geoip_providers.maxmind
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.geoip_providers.maxmind.v3.MaxMindConfig
      city_db_path: "{city}"
      asn_db_path: "{asn}"
      anon_db_path: "{anon}"
      common_provider_config:
        geo_field_keys:
          country: {country}
          city: {city_header}
          region: {region}
          asn: {asn_header}
          anon: {anon_header}
          anon_vpn: {anon_vpn}
          anon_hosting: {anon_hosting}
          anon_tor: {anon_tor}
          anon_proxy: {anon_proxy}
"#,
        city = setup.city.display(),
        asn = setup.asn.display(),
        anon = setup.anon.display(),
        country = headers::COUNTRY,
        city_header = headers::CITY,
        region = headers::REGION,
        asn_header = headers::ASN,
        anon_header = headers::ANON,
        anon_vpn = headers::ANON_VPN,
        anon_hosting = headers::ANON_HOSTING,
        anon_tor = headers::ANON_TOR,
        anon_proxy = headers::ANON_PROXY,
    ))
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("filter YAML: {e}\n{text}"))
}

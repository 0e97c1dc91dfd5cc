//! The test infrastructure for issue 15's risk signals, proven in real Envoy: an mTLS
//! listener (client certificate required or optional) with certificates made at test time,
//! the connection properties a wasm filter reads there (exact formats, pinned), and Envoy's
//! geoip filter on tiny MaxMind databases in front of the mfa-gate filter, with client-sent
//! geo headers stripped first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{
    geo_headers, release_wasm, Answer, CertSpec, ClientAddress, ClientCerts, EchoUpstream, Gateway,
    GatewayBuilder, GeoDatabases, GeoNetwork, GeoSetup, Scratch, TestCa, TlsMaterial,
    GEO_HEADER_PREFIX, TEST_CLIENT_IP_HEADER,
};
use serde_json::{json, Value};

/// The access-log fields that cross-check the wasm properties: Envoy's peer-certificate
/// command operators and the same CEL attributes the wasm `get_property` reads.
const PEER_FIELDS: [(&str, &str); 10] = [
    ("fingerprint", "%DOWNSTREAM_PEER_FINGERPRINT_256%"),
    ("uri_san", "%DOWNSTREAM_PEER_URI_SAN%"),
    ("dns_san", "%DOWNSTREAM_PEER_DNS_SAN%"),
    ("subject", "%DOWNSTREAM_PEER_SUBJECT%"),
    (
        "cel_digest",
        "%CEL(connection.sha256_peer_certificate_digest)%",
    ),
    ("cel_uri_san", "%CEL(connection.uri_san_peer_certificate)%"),
    ("cel_dns_san", "%CEL(connection.dns_san_peer_certificate)%"),
    ("cel_subject", "%CEL(connection.subject_peer_certificate)%"),
    ("cel_mtls", "%CEL(connection.mtls)%"),
    ("status", "%RESPONSE_CODE%"),
];

/// A device certificate with a three-field subject and two URI and two DNS SANs.
fn laptop_spec() -> CertSpec {
    CertSpec::client()
        .country("FR")
        .organization("Example Corp")
        .common_name("laptop-42")
        .uri_san("spiffe://corp.test/device/42")
        .uri_san("urn:example:device:42")
        .dns_san("laptop-42.corp.test")
        .dns_san("laptop.corp.test")
}

/// The conformance fixture (it answers `x-conformance: properties` with the properties it
/// read as `x-r-<name>` response headers); fails when it was not built.
fn conformance_fixture() -> std::path::PathBuf {
    let fixture = release_wasm().with_file_name("conformance_filter.wasm");
    assert!(
        fixture.is_file(),
        "{} is missing: build it first (make wasm, or cargo build --release --target \
         wasm32-wasip1 -p conformance-filter)",
        fixture.display()
    );
    fixture
}

fn probe_gateway(tls: &TlsMaterial, mode: ClientCerts) -> Gateway {
    GatewayBuilder::shipped("envoy/envoy.yaml")
        .plugin_config(without_risk)
        .wasm_file(conformance_fixture())
        .tls_listener(tls, mode)
        .access_log_fields(&PEER_FIELDS)
        .echo_upstream()
        .start()
}

/// The last access-log entry once there are `count`.
fn nth_log_entry(gateway: &Gateway, count: usize) -> Value {
    gateway.wait_until(&format!("{count} access-log entries"), |g| {
        g.access_log().len() >= count
    });
    gateway.access_log()[count - 1].clone()
}

fn header(answer: &Answer, name: &str) -> String {
    answer
        .header(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", answer.headers))
        .to_string()
}

#[test]
fn the_wasm_properties_of_an_mtls_connection_have_these_formats() {
    let tls = TlsMaterial::new();
    let laptop = tls.device(&laptop_spec());
    let gateway = probe_gateway(&tls, ClientCerts::Required);

    let answer = gateway
        .tls_get(
            &tls.client(Some(&laptop)),
            "/probe",
            &[("x-conformance", "properties")],
        )
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    for name in ["digest", "uri-san", "subject", "mtls"] {
        eprintln!("wasm {name}: {}", header(&answer, &format!("x-r-{name}")));
    }
    let logged = nth_log_entry(&gateway, 1);
    eprintln!("access log: {logged:#}");

    let fingerprint = laptop.sha256_fingerprint();
    // connection.sha256_peer_certificate_digest: 64 lowercase hex digits, no colons.
    assert_eq!(header(&answer, "x-r-digest"), fingerprint);
    // connection.uri_san_peer_certificate: the first URI SAN only.
    assert_eq!(
        header(&answer, "x-r-uri-san"),
        "spiffe://corp.test/device/42"
    );
    // connection.subject_peer_certificate: RFC 2253, last RDN first.
    assert_eq!(
        header(&answer, "x-r-subject"),
        "CN=laptop-42,O=Example Corp,C=FR"
    );
    // connection.mtls: a one-byte boolean.
    assert_eq!(header(&answer, "x-r-mtls"), "[1]");

    // The access log's operators list every SAN, comma-separated; the CEL attributes (the
    // ones wasm reads) give the first.
    assert_eq!(logged["fingerprint"], fingerprint.as_str());
    assert_eq!(
        logged["uri_san"],
        "spiffe://corp.test/device/42,urn:example:device:42"
    );
    assert_eq!(logged["dns_san"], "laptop-42.corp.test,laptop.corp.test");
    assert_eq!(logged["subject"], "CN=laptop-42,O=Example Corp,C=FR");
    assert_eq!(logged["cel_digest"], fingerprint.as_str());
    assert_eq!(logged["cel_uri_san"], "spiffe://corp.test/device/42");
    assert_eq!(logged["cel_dns_san"], "laptop-42.corp.test");
    assert_eq!(logged["cel_subject"], "CN=laptop-42,O=Example Corp,C=FR");
    assert_eq!(logged["cel_mtls"], "true");
    gateway.assert_no_wasm_failure();
}

#[test]
fn a_required_client_certificate_keeps_out_the_certless_and_the_untrusted() {
    let tls = TlsMaterial::new();
    let laptop = tls.device(&laptop_spec());
    let rogue = TestCa::new("rogue device CA").issue(&laptop_spec());
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .plugin_config(without_risk)
        .tls_listener(&tls, ClientCerts::Required)
        .echo_upstream()
        .start();
    let bearer = format!("Bearer {}", gateway.token("push"));
    let auth = [("authorization", bearer.as_str())];

    let answer = gateway
        .tls_get(&tls.client(Some(&laptop)), "/api/profile", &auth)
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    let seen = EchoUpstream::headers_seen(&answer);
    assert!(
        seen.iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("x-forwarded-proto") && v == "https"),
        "{seen:?}"
    );

    let certless = gateway.tls_get(&tls.client(None), "/api/profile", &auth);
    let failure = certless.expect_err("no certificate, no connection");
    eprintln!("without a certificate: {failure}");
    assert!(failure.message.contains("CertificateRequired"), "{failure}");

    let untrusted = gateway.tls_get(&tls.client(Some(&rogue)), "/api/profile", &auth);
    let failure = untrusted.expect_err("an untrusted device is refused");
    eprintln!("untrusted device CA: {failure}");
    assert!(failure.message.contains("UnknownCA"), "{failure}");
    assert_eq!(gateway.echo().unwrap().requests(), 1);
    gateway.assert_no_wasm_failure();
}

#[test]
fn an_optional_client_certificate_lets_a_certless_connection_through() {
    let tls = TlsMaterial::new();
    let laptop = tls.device(&laptop_spec());
    let gateway = probe_gateway(&tls, ClientCerts::Optional);
    let probe = [("x-conformance", "properties")];

    let certless = gateway
        .tls_get(&tls.client(None), "/probe", &probe)
        .unwrap();
    assert_eq!(certless.status, 200, "{}", certless.text());
    assert_eq!(header(&certless, "x-r-mtls"), "[0]");
    for name in ["digest", "uri-san", "subject"] {
        eprintln!(
            "no certificate: {name} = {}",
            header(&certless, &format!("x-r-{name}"))
        );
    }
    assert_eq!(header(&certless, "x-r-digest"), "none");
    assert_eq!(header(&certless, "x-r-uri-san"), "none");
    // CEL gives an empty subject; the SDK's get_property reads an empty value as None.
    assert_eq!(header(&certless, "x-r-subject"), "none");
    let logged = nth_log_entry(&gateway, 1);
    eprintln!("access log without a certificate: {logged:#}");
    assert_eq!(logged["cel_mtls"], "false");
    assert_eq!(logged["cel_subject"], "");
    for absent in [
        "fingerprint",
        "uri_san",
        "dns_san",
        "subject",
        "cel_digest",
        "cel_uri_san",
        "cel_dns_san",
    ] {
        assert_eq!(logged[absent], Value::Null, "{absent}");
    }

    let with_cert = gateway
        .tls_get(&tls.client(Some(&laptop)), "/probe", &probe)
        .unwrap();
    assert_eq!(with_cert.status, 200, "{}", with_cert.text());
    assert_eq!(header(&with_cert, "x-r-mtls"), "[1]");
    assert_eq!(
        header(&with_cert, "x-r-digest"),
        laptop.sha256_fingerprint()
    );

    // Optional is not "anything goes": a certificate that is sent is still checked.
    let rogue = TestCa::new("rogue device CA").issue(&laptop_spec());
    let failure = gateway
        .tls_get(&tls.client(Some(&rogue)), "/probe", &probe)
        .expect_err("an untrusted certificate is refused even when optional");
    assert!(failure.message.contains("UnknownCA"), "{failure}");
    gateway.assert_no_wasm_failure();
}

/// These tests are about what reaches the filter and the upstream, not the risk score the
/// shipped configuration also runs: its rules are judged on their level alone here.
fn without_risk(config: &mut serde_json::Value) {
    if let Some(routes) = config["routes"].as_array_mut() {
        for route in routes {
            if let Some(route) = route.as_object_mut() {
                route.remove("risk");
            }
        }
    }
    if let Some(config) = config.as_object_mut() {
        config.remove("risk");
    }
}

/// The networks the geo tests know: Paris (every field), a German IPv6 block, loopback.
fn geo_networks() -> Vec<GeoNetwork> {
    vec![
        GeoNetwork::new("203.0.113.0/24")
            .country("FR")
            .city("Paris")
            .region("IDF")
            .asn(64500, "Example Transit")
            .anonymous(true)
            .anonymous_vpn(true)
            .hosting_provider(false),
        GeoNetwork::new("2001:db8::/32")
            .country("DE")
            .city("Berlin"),
        GeoNetwork::new("127.0.0.0/8").country("AQ"),
    ]
}

/// The `x-geo-*` headers the echo upstream received, names lowercased, in order.
fn geo_seen(answer: &Answer) -> Vec<(String, String)> {
    assert_eq!(answer.status, 200, "{}", answer.text());
    EchoUpstream::headers_seen(answer)
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .filter(|(k, _)| k.starts_with(GEO_HEADER_PREFIX))
        .collect()
}

fn sorted(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs.sort();
    pairs
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    sorted(
        items
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
    )
}

#[test]
fn geoip_tags_a_known_address_and_a_client_cannot_claim_one() {
    let databases = GeoDatabases::build(&geo_networks());
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .plugin_config(without_risk)
        .geoip(&GeoSetup::new(&databases, ClientAddress::test_header()))
        .echo_upstream()
        .start();
    let bearer = format!("Bearer {}", gateway.token("push"));
    let get = |extra: &[(&str, &str)]| {
        let mut headers = vec![("authorization", bearer.as_str())];
        headers.extend_from_slice(extra);
        gateway.get("/api/profile", &headers)
    };

    // Paris, with the client claiming the US and a Tor exit the database does not say.
    let paris = geo_seen(&get(&[
        (TEST_CLIENT_IP_HEADER, "203.0.113.7"),
        (geo_headers::COUNTRY, "US"),
        (geo_headers::ANON_TOR, "true"),
    ]));
    eprintln!("203.0.113.7: {paris:?}");
    assert_eq!(
        sorted(paris),
        pairs(&[
            (geo_headers::COUNTRY, "FR"),
            (geo_headers::CITY, "Paris"),
            (geo_headers::REGION, "IDF"),
            (geo_headers::ASN, "64500"),
            (geo_headers::ANON, "true"),
            (geo_headers::ANON_VPN, "true"),
            (geo_headers::ANON_HOSTING, "false"),
        ])
    );

    // An address no database knows: no geo header at all, the client's claims removed.
    let unknown = geo_seen(&get(&[
        (TEST_CLIENT_IP_HEADER, "198.51.100.7"),
        (geo_headers::COUNTRY, "US"),
        ("X-Geo-City", "Springfield"),
    ]));
    assert_eq!(unknown, Vec::<(String, String)>::new());

    // IPv6.
    let berlin = geo_seen(&get(&[(TEST_CLIENT_IP_HEADER, "2001:db8::1")]));
    assert_eq!(
        sorted(berlin),
        pairs(&[(geo_headers::COUNTRY, "DE"), (geo_headers::CITY, "Berlin")])
    );

    // No (or an unparsable) address header: Envoy looks up the connection's address.
    for extra in [&[][..], &[(TEST_CLIENT_IP_HEADER, "not-an-ip")][..]] {
        let fallback = geo_seen(&get(extra));
        assert_eq!(
            fallback,
            pairs(&[(geo_headers::COUNTRY, "AQ")]),
            "{extra:?}"
        );
    }
    gateway.assert_no_wasm_failure();
}

#[test]
fn without_the_strip_filter_a_client_geo_header_survives_a_failed_lookup() {
    let databases = GeoDatabases::build(&geo_networks());
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .plugin_config(without_risk)
        .geoip(&GeoSetup::new(&databases, ClientAddress::test_header()).without_strip())
        .echo_upstream()
        .start();
    let bearer = format!("Bearer {}", gateway.token("push"));
    let unknown = geo_seen(&gateway.get(
        "/api/profile",
        &[
            ("authorization", &bearer),
            (TEST_CLIENT_IP_HEADER, "198.51.100.7"),
            (geo_headers::COUNTRY, "US"),
        ],
    ));
    // The geoip filter only sets what it found: the client's claim goes through.
    assert_eq!(unknown, pairs(&[(geo_headers::COUNTRY, "US")]));
    // A found value replaces the client's (one header, the database's).
    let paris = geo_seen(&gateway.get(
        "/api/profile",
        &[
            ("authorization", &bearer),
            (TEST_CLIENT_IP_HEADER, "203.0.113.7"),
            (geo_headers::COUNTRY, "US"),
            (geo_headers::ANON_TOR, "true"),
        ],
    ));
    let countries: Vec<&str> = paris
        .iter()
        .filter(|(k, _)| k == geo_headers::COUNTRY)
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(countries, ["FR"]);
    // ...but a field the record lacks keeps the client's value.
    assert!(
        paris
            .iter()
            .any(|(k, v)| k == geo_headers::ANON_TOR && v == "true"),
        "{paris:?}"
    );
}

#[test]
fn geoip_xff_config_skips_the_trusted_hops_on_the_right() {
    let databases = GeoDatabases::build(&geo_networks());
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .plugin_config(without_risk)
        // The geoip filter's own reading of x-forwarded-for, as it arrives: the HCM neither
        // appends the connection's address nor takes a client address from it.
        .hcm(|hcm| {
            if let Some(hcm) = hcm.as_mapping_mut() {
                hcm.remove("use_remote_address");
                hcm.remove("xff_num_trusted_hops");
            }
        })
        .geoip(&GeoSetup::new(
            &databases,
            ClientAddress::Xff { trusted_hops: 1 },
        ))
        .echo_upstream()
        .start();
    let bearer = format!("Bearer {}", gateway.token("push"));
    let country = |xff: Option<&str>| {
        let mut headers = vec![("authorization", bearer.as_str())];
        headers.extend(xff.map(|x| ("x-forwarded-for", x)));
        let seen = geo_seen(&gateway.get("/api/profile", &headers));
        seen.into_iter()
            .find(|(k, _)| k == geo_headers::COUNTRY)
            .map(|(_, v)| v)
    };
    // One trusted hop: the entry left of the rightmost is looked up.
    let second_from_right = country(Some("198.51.100.9, 203.0.113.7, 192.0.2.1"));
    assert_eq!(second_from_right.as_deref(), Some("FR"));
    assert_eq!(
        country(Some("203.0.113.7, 198.51.100.9")).as_deref(),
        Some("FR")
    );
    // The rightmost (the trusted hop's own entry) is skipped even when it is known.
    assert_eq!(country(Some("198.51.100.9, 203.0.113.7")), None);
    // A single entry is looked up as it is (there is nothing to skip it for).
    assert_eq!(country(Some("203.0.113.7")).as_deref(), Some("FR"));
    // No x-forwarded-for: the connection's address (127.0.0.1).
    assert_eq!(country(None).as_deref(), Some("AQ"));
}

#[test]
fn geoip_behind_a_trusted_proxy_looks_up_the_address_the_hcm_trusts() {
    // The production shape: the HCM takes the client address from x-forwarded-for
    // (use_remote_address, one trusted hop: the load balancer appended the rightmost
    // entry) and the geoip filter looks up the stream's remote address, which is that one.
    let databases = GeoDatabases::build(&geo_networks());
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .plugin_config(without_risk)
        .hcm(|hcm| {
            hcm["use_remote_address"] = serde_yaml::Value::Bool(true);
            hcm["xff_num_trusted_hops"] = serde_yaml::Value::Number(1.into());
        })
        .geoip(&GeoSetup::new(&databases, ClientAddress::Connection))
        .echo_upstream()
        .start();
    let bearer = format!("Bearer {}", gateway.token("push"));
    let seen = |xff: &str| {
        geo_seen(&gateway.get(
            "/api/profile",
            &[("authorization", &bearer), ("x-forwarded-for", xff)],
        ))
    };
    // The client's own claim (left) is not what is looked up; the balancer's entry is.
    let paris = seen("2001:db8::1, 203.0.113.7");
    assert!(
        paris.contains(&(geo_headers::COUNTRY.to_string(), "FR".to_string())),
        "{paris:?}"
    );
    let unknown = seen("203.0.113.7, 198.51.100.9");
    assert_eq!(unknown, Vec::<(String, String)>::new());
}

#[test]
fn the_geoip_generator_refuses_what_it_does_not_know() {
    let python = mfa_gate_envoy::venv_python();
    let script = mfa_gate_envoy::repo_root().join("scripts/make-test-geoip.py");
    let scratch = Scratch::new("geoip-refused");
    let cases = [
        (
            json!({"networks": [{"network": "203.0.113.0/24", "contry": "FR"}]}),
            "unknown keys ['contry']",
        ),
        (
            json!({"networks": [{"network": "203.0.113.0/33"}]}),
            "bad network",
        ),
        (
            json!({"networks": [{"network": "203.0.113.0/24", "asn": "64500"}]}),
            "asn must be",
        ),
        (
            json!({"networks": [{"network": "203.0.113.0/24", "anonymous": "yes"}]}),
            "must be true or false",
        ),
        (
            json!([{"network": "203.0.113.0/24"}]),
            "must be {\"networks\"",
        ),
    ];
    for (index, (description, expected)) in cases.iter().enumerate() {
        let path = scratch.write(&format!("bad-{index}.json"), description.to_string());
        let out = std::process::Command::new(&python)
            .arg(&script)
            .arg(&path)
            .arg(scratch.path().join(format!("out-{index}")))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{description} was accepted");
        assert!(stderr.contains(expected), "{description}: {stderr}");
        assert!(
            !scratch
                .path()
                .join(format!("out-{index}/city.mmdb"))
                .exists(),
            "{description}: a database was written"
        );
    }
}

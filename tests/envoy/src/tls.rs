//! mTLS for the end-to-end tests: certificate authorities, server and device (client)
//! certificates made at test time with `rcgen` (ECDSA P-256), written as PEM files Envoy
//! reads; the listener's `DownstreamTlsContext` that asks for (or requires) a device
//! certificate; and a TLS client (`rustls` on `ring`) that sends one HTTP/1.1 request with
//! or without a client certificate and reads the answer like [`crate::http_request`].
//!
//! Two authorities: the server CA signs Envoy's certificate (for `localhost` and
//! `127.0.0.1`) and only the client trusts it; the device CA signs the client certificates
//! and only Envoy trusts it. A certificate from any other [`TestCa`] is an untrusted device.
//!
//! ```no_run
//! use mfa_gate_envoy::{CertSpec, ClientCerts, GatewayBuilder, TlsMaterial};
//! let tls = TlsMaterial::new();
//! let laptop = tls.device(&CertSpec::client().common_name("laptop-1").uri_san("spiffe://corp/device/1"));
//! let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
//!     .tls_listener(&tls, ClientCerts::Required)
//!     .echo_upstream()
//!     .start();
//! let answer = gateway.tls_get(&tls.client(Some(&laptop)), "/health", &[]).unwrap();
//! assert_eq!(answer.status, 200);
//! ```

use crate::http::{read_answer, request_bytes, Answer, ANSWER_TIMEOUT};
use crate::process::Scratch;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_yaml::Value;
use sha2::{Digest, Sha256};
use std::io::{BufReader, Write};
use std::net::{IpAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The name the TLS client asks for (SNI) and checks the server certificate against.
pub const SERVER_NAME: &str = "localhost";

/// A certificate authority made at test time: a self-signed CA certificate and its key.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA whose subject is `CN=<common_name>`.
    pub fn new(common_name: &str) -> TestCa {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-signed CA");
        TestCa { issuer }
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// Issues a certificate for `spec` (a fresh P-256 key), signed by this CA.
    pub fn issue(&self, spec: &CertSpec) -> Identity {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (field, value) in &spec.subject {
            params
                .distinguished_name
                .push(field.clone(), value.as_str());
        }
        for uri in &spec.uri_sans {
            params
                .subject_alt_names
                .push(SanType::URI(uri.as_str().try_into().expect("URI SAN")));
        }
        for name in &spec.dns_sans {
            params
                .subject_alt_names
                .push(SanType::DnsName(name.as_str().try_into().expect("DNS SAN")));
        }
        for ip in &spec.ip_sans {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![if spec.server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("certificate key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the certificate");
        Identity {
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// What goes into a certificate [`TestCa::issue`] makes: subject fields in the order given
/// (the DER order), URI, DNS and IP subject alternative names in the order given, and the
/// extended key usage (client or server authentication).
#[derive(Clone, Debug, Default)]
pub struct CertSpec {
    subject: Vec<(DnType, String)>,
    uri_sans: Vec<String>,
    dns_sans: Vec<String>,
    ip_sans: Vec<IpAddr>,
    server: bool,
}

impl CertSpec {
    /// A client (device) certificate, empty subject, no SAN yet.
    pub fn client() -> CertSpec {
        CertSpec::default()
    }

    /// Envoy's certificate: `CN=localhost`, DNS SAN `localhost`, IP SAN `127.0.0.1`,
    /// server authentication.
    pub fn loopback_server() -> CertSpec {
        CertSpec {
            server: true,
            ..CertSpec::default()
        }
        .common_name(SERVER_NAME)
        .dns_san(SERVER_NAME)
        .ip_san(IpAddr::from([127, 0, 0, 1]))
    }

    /// Appends `CN=<value>` to the subject.
    pub fn common_name(self, value: &str) -> CertSpec {
        self.subject_field(DnType::CommonName, value)
    }

    /// Appends `O=<value>` to the subject.
    pub fn organization(self, value: &str) -> CertSpec {
        self.subject_field(DnType::OrganizationName, value)
    }

    /// Appends `OU=<value>` to the subject.
    pub fn organizational_unit(self, value: &str) -> CertSpec {
        self.subject_field(DnType::OrganizationalUnitName, value)
    }

    /// Appends `C=<value>` to the subject.
    pub fn country(self, value: &str) -> CertSpec {
        self.subject_field(DnType::CountryName, value)
    }

    /// Appends any subject field.
    pub fn subject_field(mut self, field: DnType, value: &str) -> CertSpec {
        self.subject.push((field, value.to_string()));
        self
    }

    /// Adds a URI subject alternative name (e.g. `spiffe://corp.test/device/42`).
    pub fn uri_san(mut self, uri: &str) -> CertSpec {
        self.uri_sans.push(uri.to_string());
        self
    }

    /// Adds a DNS subject alternative name.
    pub fn dns_san(mut self, name: &str) -> CertSpec {
        self.dns_sans.push(name.to_string());
        self
    }

    /// Adds an IP subject alternative name.
    pub fn ip_san(mut self, ip: IpAddr) -> CertSpec {
        self.ip_sans.push(ip);
        self
    }
}

/// A certificate and its private key (PKCS#8), DER and PEM.
#[derive(Clone)]
pub struct Identity {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    key_der: Vec<u8>,
    key_pem: String,
}

impl Identity {
    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// SHA-256 of the DER certificate as 64 lowercase hex digits, no separators: the form
    /// of Envoy's `connection.sha256_peer_certificate_digest` and
    /// `%DOWNSTREAM_PEER_FINGERPRINT_256%`.
    pub fn sha256_fingerprint(&self) -> String {
        Sha256::digest(&self.cert_der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Writes `<name>.crt` and `<name>.key` (PEM) into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.cert_pem)
            .unwrap_or_else(|e| panic!("write {}: {e}", cert.display()));
        std::fs::write(&key, &self.key_pem)
            .unwrap_or_else(|e| panic!("write {}: {e}", key.display()));
        (cert, key)
    }
}

/// Whether Envoy's listener refuses a connection without a client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCerts {
    /// `require_client_certificate: true`: no certificate, no connection.
    Required,
    /// `require_client_certificate: false`: Envoy asks for one and checks it against the
    /// device CA when one is sent, but lets a connection without one through.
    Optional,
}

/// The TLS material of one test, in its own scratch directory: the server CA and Envoy's
/// certificate, the device CA (Envoy's trusted CA for client certificates), as PEM files.
pub struct TlsMaterial {
    /// Signs Envoy's certificate; the client trusts it.
    pub server_ca: TestCa,
    /// Signs device certificates; Envoy trusts it.
    pub device_ca: TestCa,
    server: Identity,
    /// Envoy's certificate chain (`server.crt`) and key (`server.key`).
    pub server_cert_path: PathBuf,
    /// Envoy's private key.
    pub server_key_path: PathBuf,
    /// The device CA certificate (`device-ca.crt`), Envoy's `trusted_ca`.
    pub device_ca_path: PathBuf,
    dir: Scratch,
}

impl TlsMaterial {
    /// Makes both CAs and Envoy's certificate and writes them to a new scratch directory.
    pub fn new() -> TlsMaterial {
        let dir = Scratch::new("tls");
        let server_ca = TestCa::new("mfa-gate test server CA");
        let device_ca = TestCa::new("mfa-gate test device CA");
        let server = server_ca.issue(&CertSpec::loopback_server());
        let (server_cert_path, server_key_path) = server.write(dir.path(), "server");
        let device_ca_path = dir.write("device-ca.crt", device_ca.cert_pem());
        TlsMaterial {
            server_ca,
            device_ca,
            server,
            server_cert_path,
            server_key_path,
            device_ca_path,
            dir,
        }
    }

    /// A device certificate signed by the device CA.
    pub fn device(&self, spec: &CertSpec) -> Identity {
        self.device_ca.issue(spec)
    }

    /// Envoy's certificate.
    pub fn server_identity(&self) -> &Identity {
        &self.server
    }

    /// The directory the PEM files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A client that trusts the server CA and presents `identity` (or no certificate).
    pub fn client(&self, identity: Option<&Identity>) -> TlsClient {
        TlsClient::new(&self.server_ca, identity)
    }

    /// The listener's `transport_socket`: `envoy.transport_sockets.tls` with Envoy's
    /// certificate and the device CA as `validation_context.trusted_ca`.
    pub fn downstream_transport_socket(&self, mode: ClientCerts) -> Value {
        downstream_transport_socket(
            &self.server_cert_path,
            &self.server_key_path,
            &self.device_ca_path,
            mode,
        )
    }
}

impl Default for TlsMaterial {
    fn default() -> Self {
        TlsMaterial::new()
    }
}

/// The `transport_socket` of a listener filter chain that terminates TLS with `cert`/`key`
/// and checks client certificates against `trusted_ca` (required or optional).
pub fn downstream_transport_socket(
    cert: &Path,
    key: &Path,
    trusted_ca: &Path,
    mode: ClientCerts,
) -> Value {
    let yaml = format!(
        r#"
name: envoy.transport_sockets.tls
typed_config:
  "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
  require_client_certificate: {required}
  common_tls_context:
    tls_certificates:
    - certificate_chain: {{filename: "{cert}"}}
      private_key: {{filename: "{key}"}}
    validation_context:
      trusted_ca: {{filename: "{ca}"}}
"#,
        required = mode == ClientCerts::Required,
        cert = cert.display(),
        key = key.display(),
        ca = trusted_ca.display(),
    );
    serde_yaml::from_str(&yaml).expect("transport socket YAML")
}

/// Why a TLS exchange gave no HTTP answer: the handshake failed, Envoy sent an alert (e.g.
/// `CertificateRequired`, `UnknownCA`), or the connection closed.
#[derive(Debug, Clone)]
pub struct TlsFailure {
    /// The error as rustls or the socket reported it.
    pub message: String,
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A TLS client (TLS 1.2 and 1.3, rustls on ring) that trusts one CA and presents one
/// client certificate or none. One request per connection, SNI [`SERVER_NAME`].
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
}

impl TlsClient {
    /// Trusts `server_ca`; presents `identity` when given.
    pub fn new(server_ca: &TestCa, identity: Option<&Identity>) -> TlsClient {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(server_ca.cert_der())
            .expect("trust the server CA");
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
        let config = match identity {
            Some(identity) => builder
                .with_client_auth_cert(
                    vec![identity.cert_der.clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_der.clone())),
                )
                .expect("client certificate and key"),
            None => builder.with_no_client_auth(),
        };
        TlsClient {
            config: Arc::new(config),
        }
    }

    /// Sends `bytes` over TLS on a new connection to `127.0.0.1:port` and reads one answer
    /// (a `100 Continue` skipped). A failed handshake, an alert or a close without an answer
    /// is a [`TlsFailure`].
    pub fn exchange(&self, port: u16, bytes: &[u8]) -> Result<Answer, TlsFailure> {
        let failure = |what: &str, e: &dyn std::fmt::Display| TlsFailure {
            message: format!("{what} 127.0.0.1:{port}: {e}"),
        };
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{port}: {e}"));
        tcp.set_read_timeout(Some(ANSWER_TIMEOUT)).expect("timeout");
        tcp.set_nodelay(true).expect("nodelay");
        let name = ServerName::try_from(SERVER_NAME).expect("server name");
        let connection =
            rustls::ClientConnection::new(self.config.clone(), name).expect("TLS client");
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        stream
            .write_all(bytes)
            .and_then(|()| stream.flush())
            .map_err(|e| failure("sending to", &e))?;
        let head_request = bytes.starts_with(b"HEAD ");
        match read_answer(&mut BufReader::new(stream), head_request) {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => Err(TlsFailure {
                message: format!("127.0.0.1:{port} closed the connection without an answer"),
            }),
            Err(e) => Err(failure("reading the answer from", &e)),
        }
    }

    /// A request over TLS (`host: 127.0.0.1:<port>` unless given, `connection: close`,
    /// `content-length` when there is a body), like [`crate::http_request`].
    pub fn request(
        &self,
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, TlsFailure> {
        self.exchange(port, &request_bytes(port, method, path, headers, body))
    }
}

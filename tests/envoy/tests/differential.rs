//! Differential check against Envoy's own `jwt_authn` (issue 18, part 2): one generated set of
//! valid and invalid tokens sent through real Envoy twice, once to a gateway where
//! `jwt_authn` verifies (envoy/envoy-jwt-authn.yaml) and once to a gateway where mfa-gate
//! verifies by itself (envoy/envoy.yaml), with the same keys (one JWKS, inlined in both),
//! issuer, audience and 60 s clock skew.
//!
//! mfa-gate must never accept a token `jwt_authn` refuses; where mfa-gate is stricter the
//! case is listed in [`STRICTER`] with its reason. The table is written to
//! `target/differential.md` and must match the one in docs/differential.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
use ed25519_compact::{KeyPair, Seed};
use mfa_gate_envoy::{
    b64url, jwks_of, now_secs, repo_root, Answer, Gateway, GatewayBuilder, TestKey, DEMO_AUDIENCE,
    DEMO_ISSUER,
};
use serde_json::{json, Value};

/// Every algorithm both verifiers support, minted by the CLI (HS256 is left out: mfa-gate
/// takes HMAC only with an explicitly configured secret, which would change the
/// alg-confusion cases).
const ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// The kid of the hand-signed Ed25519 key (the raw cases: header and payload bytes as given).
const RAW_KID: &str = "k-raw";

/// Cases where mfa-gate refuses and jwt_authn accepts: deliberate, with the reason.
const STRICTER: &[(&str, &str)] = &[
    ("exp/missing", "exp is required (missing exp): a session must end; jwt_authn treats a missing exp as never expiring"),
    ("exp/beyond i64 (9223372036854775808)", "a time claim must fit an i64 of seconds (invalid claim); jwt_authn reads it as an unsigned 64-bit number"),
    ("iat/90 s ahead (outside skew)", "an iat later than now + skew is refused (issued in future); jwt_authn does not check iat"),
    ("json/header crit with an unknown member", "RFC 7515 section 4.1.11: an unknown crit extension must be refused (malformed token); jwt_authn ignores crit"),
    ("b64/padding on the signature", "base64url without padding only, as RFC 7515 section 2 says (malformed token); jwt_authn strips padding from the signature"),
    ("b64/signature with non-canonical trailing bits", "canonical base64url only (malformed token), so one signature has one spelling; jwt_authn decodes leniently"),
    ("shape/16 KB token (long extra claim)", "tokens over max_token_bytes (default 8192) are refused before parsing (token too large); jwt_authn has no limit below Envoy's header limit"),
];

/// One token to send, under a stable name.
struct Case {
    name: String,
    token: String,
    /// The whole `Authorization` value when it is not `Bearer <token>`.
    authorization: Option<String>,
}

/// The Ed25519 key the raw cases are signed with, and its public JWK.
struct RawKey {
    pair: KeyPair,
}

impl RawKey {
    fn new() -> RawKey {
        RawKey {
            pair: KeyPair::from_seed(Seed::generate()),
        }
    }

    fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": RAW_KID,
               "x": b64url(self.pair.pk.as_ref())})
    }

    /// `b64(header).b64(payload).b64(sig)` over the exact bytes given.
    fn sign(&self, header: &str, payload: &str) -> String {
        let input = format!(
            "{}.{}",
            b64url(header.as_bytes()),
            b64url(payload.as_bytes())
        );
        let signature = self.pair.sk.sign(input.as_bytes(), None);
        format!("{input}.{}", b64url(signature.as_ref()))
    }
}

fn header(kid: &str) -> String {
    json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}).to_string()
}

/// The demo claims (a phishing-resistant session, one hour) with `edit` applied.
fn claims(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let now = now_secs();
    let mut map = serde_json::Map::new();
    map.insert("iss".into(), DEMO_ISSUER.into());
    map.insert("aud".into(), DEMO_AUDIENCE.into());
    map.insert("sub".into(), "diff@example.com".into());
    map.insert("amr".into(), json!(["pwd", "pop"]));
    map.insert("auth_time".into(), now.into());
    map.insert("iat".into(), now.into());
    map.insert("exp".into(), (now + 3600).into());
    edit(&mut map);
    Value::Object(map).to_string()
}

/// The demo claims as raw JSON text with one member's value replaced by `raw` (for values
/// serde_json cannot hold: 1e300 as written, integers beyond u64, duplicates).
fn claims_raw(member: &str, raw: &str) -> String {
    let text = claims(|c| {
        c.insert(member.into(), "@@".into());
    });
    text.replace("\"@@\"", raw)
}

fn case(name: &str, token: String) -> Case {
    Case {
        name: name.to_string(),
        token,
        authorization: None,
    }
}

fn raw_cases(raw: &RawKey, rsa: &TestKey) -> Vec<Case> {
    let now = now_secs() as i64;
    let h = header(RAW_KID);
    let set = |member: &'static str, value: Value| {
        claims(move |c| {
            c.insert(member.into(), value);
        })
    };
    let drop = |member: &'static str| {
        claims(move |c| {
            c.remove(member);
        })
    };
    let valid = raw.sign(&h, &claims(|_| {}));
    let parts: Vec<&str> = valid.split('.').collect();
    let (h64, p64, s64) = (parts[0], parts[1], parts[2]);
    let mut cases = vec![
        case("raw/valid", valid.clone()),
        // Algorithms.
        case(
            "alg/none, empty signature",
            format!(
                "{}.{p64}.",
                b64url(
                    json!({"alg": "none", "kid": RAW_KID})
                        .to_string()
                        .as_bytes()
                )
            ),
        ),
        case(
            "alg/NONE (upper case), empty signature",
            format!(
                "{}.{p64}.",
                b64url(
                    json!({"alg": "NONE", "kid": RAW_KID})
                        .to_string()
                        .as_bytes()
                )
            ),
        ),
        case("alg/HS256 keyed with the RSA public JWK (confusion)", {
            let hs_header = json!({"alg": "HS256", "typ": "JWT", "kid": rsa.kid}).to_string();
            let input = format!(
                "{}.{}",
                b64url(hs_header.as_bytes()),
                b64url(claims(|_| {}).as_bytes())
            );
            let secret = rsa.jwks["keys"][0].to_string();
            let mac = hmac_sha256::HMAC::mac(input.as_bytes(), secret.as_bytes());
            format!("{input}.{}", b64url(&mac))
        }),
        case(
            "alg/ES256 in the header of an Ed25519 signature",
            raw.sign(
                &json!({"alg": "ES256", "kid": RAW_KID}).to_string(),
                &claims(|_| {}),
            ),
        ),
        case(
            "alg/header without alg",
            raw.sign(&json!({"kid": RAW_KID}).to_string(), &claims(|_| {})),
        ),
        case(
            "kid/unknown",
            raw.sign(&header("k-nobody"), &claims(|_| {})),
        ),
        case(
            "kid/absent",
            raw.sign(&json!({"alg": "EdDSA"}).to_string(), &claims(|_| {})),
        ),
        // Times, with the 60 s skew on both.
        case(
            "exp/30 s ago (inside skew)",
            raw.sign(&h, &set("exp", (now - 30).into())),
        ),
        case(
            "exp/90 s ago (outside skew)",
            raw.sign(&h, &set("exp", (now - 90).into())),
        ),
        case("exp/missing", raw.sign(&h, &drop("exp"))),
        case(
            "exp/as a string",
            raw.sign(&h, &set("exp", (now + 3600).to_string().into())),
        ),
        case(
            "exp/a float",
            raw.sign(&h, &claims_raw("exp", &format!("{}.5", now + 3600))),
        ),
        case("exp/negative", raw.sign(&h, &set("exp", (-1).into()))),
        case("exp/1e300", raw.sign(&h, &claims_raw("exp", "1e300"))),
        case(
            "exp/beyond i64 (9223372036854775808)",
            raw.sign(&h, &claims_raw("exp", "9223372036854775808")),
        ),
        case(
            "exp/beyond u64 (99999999999999999999999)",
            raw.sign(&h, &claims_raw("exp", "99999999999999999999999")),
        ),
        case("exp/null", raw.sign(&h, &set("exp", Value::Null))),
        case(
            "nbf/30 s ahead (inside skew)",
            raw.sign(&h, &set("nbf", (now + 30).into())),
        ),
        case(
            "nbf/90 s ahead (outside skew)",
            raw.sign(&h, &set("nbf", (now + 90).into())),
        ),
        case(
            "nbf/as a string",
            raw.sign(&h, &set("nbf", now.to_string().into())),
        ),
        case(
            "iat/30 s ahead (inside skew)",
            raw.sign(&h, &set("iat", (now + 30).into())),
        ),
        case(
            "iat/90 s ahead (outside skew)",
            raw.sign(&h, &set("iat", (now + 90).into())),
        ),
        case(
            "iat/as a string",
            raw.sign(&h, &set("iat", now.to_string().into())),
        ),
        case("iat/missing", raw.sign(&h, &drop("iat"))),
        // Audience and issuer.
        case(
            "aud/list with a match",
            raw.sign(&h, &set("aud", json!(["other", DEMO_AUDIENCE]))),
        ),
        case(
            "aud/list without a match",
            raw.sign(&h, &set("aud", json!(["other"]))),
        ),
        case("aud/empty list", raw.sign(&h, &set("aud", json!([])))),
        case(
            "aud/string without a match",
            raw.sign(&h, &set("aud", "other".into())),
        ),
        case("aud/missing", raw.sign(&h, &drop("aud"))),
        case("aud/a number", raw.sign(&h, &set("aud", 7.into()))),
        case(
            "iss/mismatch",
            raw.sign(&h, &set("iss", "https://evil.example".into())),
        ),
        case(
            "iss/trailing slash",
            raw.sign(&h, &set("iss", format!("{DEMO_ISSUER}/").into())),
        ),
        case("iss/missing", raw.sign(&h, &drop("iss"))),
        // Duplicate JSON members.
        case(
            "dup/header alg (EdDSA then none)",
            raw.sign(
                &format!("{{\"alg\":\"EdDSA\",\"kid\":\"{RAW_KID}\",\"alg\":\"none\"}}"),
                &claims(|_| {}),
            ),
        ),
        case(
            "dup/header kid (unknown then known)",
            raw.sign(
                &format!("{{\"alg\":\"EdDSA\",\"kid\":\"k-nobody\",\"kid\":\"{RAW_KID}\"}}"),
                &claims(|_| {}),
            ),
        ),
        case(
            "dup/payload exp (past then future)",
            raw.sign(
                &h,
                &claims_raw("exp", &format!("{}, \"exp\": {}", now - 1000, now + 3600)),
            ),
        ),
        case(
            "dup/payload exp (future then past)",
            raw.sign(
                &h,
                &claims_raw("exp", &format!("{}, \"exp\": {}", now + 3600, now - 1000)),
            ),
        ),
        case(
            "dup/payload iss (wrong then right)",
            raw.sign(
                &h,
                &claims_raw(
                    "iss",
                    &format!("\"https://evil.example\", \"iss\": \"{DEMO_ISSUER}\""),
                ),
            ),
        ),
        case(
            "dup/payload aud (right then wrong)",
            raw.sign(
                &h,
                &claims_raw("aud", &format!("\"{DEMO_AUDIENCE}\", \"aud\": \"other\"")),
            ),
        ),
        // Odd JSON.
        case(
            "json/huge number in an extra claim (1e400)",
            raw.sign(&h, &claims_raw("x", "1e400")),
        ),
        case(
            "json/nested garbage 64 deep",
            raw.sign(
                &h,
                &claims_raw("x", &format!("{}{}", "[".repeat(64), "]".repeat(64))),
            ),
        ),
        case(
            "json/nested garbage 1000 deep",
            raw.sign(
                &h,
                &claims_raw("x", &format!("{}{}", "[".repeat(1000), "]".repeat(1000))),
            ),
        ),
        case("json/payload an array", raw.sign(&h, "[]")),
        case("json/payload a string", raw.sign(&h, "\"claims\"")),
        case("json/payload null", raw.sign(&h, "null")),
        case("json/payload not JSON", raw.sign(&h, "{not json")),
        case(
            "json/payload trailing bytes after the object",
            raw.sign(&h, &format!("{} x", claims(|_| {}))),
        ),
        case("json/header an array", raw.sign("[]", &claims(|_| {}))),
        case(
            "json/header crit with an unknown member",
            raw.sign(
                &json!({"alg": "EdDSA", "kid": RAW_KID, "crit": ["x-unknown"], "x-unknown": 1})
                    .to_string(),
                &claims(|_| {}),
            ),
        ),
        // Encoding and structure.
        case("b64/padding on the header", format!("{h64}==.{p64}.{s64}")),
        case(
            "b64/padding on the signature",
            format!("{h64}.{p64}.{s64}=="),
        ),
        case(
            "b64/signature in the +/ alphabet",
            plus_slash_signature(raw, &h),
        ),
        case(
            "b64/signature with non-canonical trailing bits",
            non_canonical_tail(s64).map_or_else(
                || panic!("an Ed25519 signature has 4 trailing bits"),
                |s| format!("{h64}.{p64}.{s}"),
            ),
        ),
        case(
            "b64/space inside the payload",
            format!("{h64}.{} {}.{s64}", &p64[..10], &p64[10..]),
        ),
        case("shape/5 segments (JWE-like)", format!("{valid}.e30.e30")),
        case("shape/4 segments", format!("{valid}.e30")),
        case("shape/2 segments", format!("{h64}.{p64}")),
        case("shape/empty signature", format!("{h64}.{p64}.")),
        case("shape/signature of another token", {
            let other = raw.sign(&h, &set("sub", "other@example.com".into()));
            format!("{h64}.{p64}.{}", other.rsplit('.').next().unwrap_or(""))
        }),
        case(
            "shape/16 KB token (long extra claim)",
            raw.sign(&h, &set("x", "a".repeat(16 * 1024).into())),
        ),
    ];
    cases.push(Case {
        name: "header/two spaces after Bearer".into(),
        token: valid.clone(),
        authorization: Some(format!("Bearer  {valid}")),
    });
    cases.push(Case {
        name: "header/lower-case bearer".into(),
        token: valid.clone(),
        authorization: Some(format!("bearer {valid}")),
    });
    cases
}

/// A valid raw token whose signature has `-` or `_`, with those written as `+` and `/`.
fn plus_slash_signature(raw: &RawKey, h: &str) -> String {
    for n in 0..64 {
        let token = raw.sign(
            h,
            &claims(|c| {
                c.insert("jti".into(), format!("alphabet-{n}").into());
            }),
        );
        let (input, signature) = token.rsplit_once('.').unwrap();
        if signature.contains(['-', '_']) {
            return format!("{input}.{}", signature.replace('-', "+").replace('_', "/"));
        }
    }
    panic!("no signature with - or _ in 64 tries")
}

/// The signature with its last character's unused low bits set (decodes to the same bytes
/// under a lenient decoder).
fn non_canonical_tail(signature: &str) -> Option<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = *signature.as_bytes().last()?;
    let index = ALPHABET.iter().position(|&c| c == last)?;
    let changed = ALPHABET[index | 0b11];
    let mut out = signature[..signature.len() - 1].to_string();
    out.push(char::from(changed));
    (changed != last).then_some(out)
}

/// `accept` or `refuse`.
fn verdict(accepted: bool) -> &'static str {
    if accepted {
        "accept"
    } else {
        "refuse"
    }
}

fn send(gateway: &Gateway, case: &Case) -> Answer {
    let authorization = case
        .authorization
        .clone()
        .unwrap_or_else(|| format!("Bearer {}", case.token));
    gateway.get("/api/profile", &[("authorization", &authorization)])
}

/// An answer mfa-gate wrote (its realm), or the upstream's 200.
fn jwt_authn_answer_is_mfa_gates(answer: &Answer) -> bool {
    let www = answer.header("www-authenticate").unwrap_or("");
    answer.status == 200 || www.contains("mfa-gate-demo")
}

fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), Into::into)
}

#[test]
fn mfa_gate_never_accepts_a_token_jwt_authn_refuses() {
    let cli_keys: Vec<TestKey> = ALGORITHMS
        .iter()
        .map(|alg| TestKey::generate(alg, &format!("k-{}", alg.to_lowercase())))
        .collect();
    let raw = RawKey::new();
    let mut jwks = jwks_of(&cli_keys.iter().collect::<Vec<_>>());
    jwks["keys"].as_array_mut().unwrap().push(raw.jwk());
    let jwks_text = jwks.to_string();

    let mut cases = Vec::new();
    for (alg, key) in ALGORITHMS.iter().zip(&cli_keys) {
        let claims = json!({"iss": DEMO_ISSUER, "aud": DEMO_AUDIENCE, "sub": "diff@example.com",
                            "amr": ["pwd", "pop"], "auth_time": now_secs()});
        cases.push(case(&format!("{alg}/valid"), key.token(&claims)));
        // A different key under the trusted key's kid.
        let stranger = TestKey::generate(alg, &key.kid);
        cases.push(case(
            &format!("{alg}/wrong key, same kid"),
            stranger.token(&claims),
        ));
    }
    let rsa = &cli_keys[0];
    cases.extend(raw_cases(&raw, rsa));

    let mfa_jwks = jwks.clone();
    let mfa_gate = GatewayBuilder::shipped("envoy/envoy.yaml")
        .plugin_config(move |c| {
            let issuer = &mut c["issuers"][0];
            let issuer = issuer.as_object_mut().unwrap();
            issuer.remove("remote_jwks");
            issuer.remove("introspection");
            issuer.insert("jwks".into(), mfa_jwks);
            issuer.insert("algorithms".into(), json!(ALGORITHMS));
            issuer.insert("clock_skew_secs".into(), 60.into());
        })
        .start();
    let jwt_authn = GatewayBuilder::shipped("envoy/envoy-jwt-authn.yaml")
        .hcm(move |hcm| {
            let filter = &mut hcm["http_filters"][0];
            assert_eq!(
                filter["name"].as_str(),
                Some("envoy.filters.http.jwt_authn")
            );
            let provider = &mut filter["typed_config"]["providers"]["demo_idp"];
            let provider = provider.as_mapping_mut().unwrap();
            provider.remove("remote_jwks");
            let mut local = serde_yaml::Mapping::new();
            local.insert("inline_string".into(), jwks_text.into());
            provider.insert("local_jwks".into(), local.into());
            provider.insert("clock_skew_seconds".into(), 60.into());
        })
        .start();

    let mut rows = Vec::new();
    let mut bugs = Vec::new();
    let mut unexplained = Vec::new();
    let mut refused_by_jwt_authn = 0;
    for case in &cases {
        let denied_before = jwt_authn.counter("http.gateway.jwt_authn.denied");
        let by_jwt_authn = send(&jwt_authn, case);
        let by_mfa_gate = send(&mfa_gate, case);
        assert!(
            by_jwt_authn.status < 500 && by_mfa_gate.status < 500,
            "{}: jwt_authn {} / mfa-gate {}: {}",
            case.name,
            by_jwt_authn.status,
            by_mfa_gate.status,
            by_mfa_gate.text()
        );
        // jwt_authn's verdict by its own counter; its refusal is a 401 mfa-gate never wrote.
        let j = jwt_authn.counter("http.gateway.jwt_authn.denied") == denied_before;
        if !j {
            assert!(
                !jwt_authn_answer_is_mfa_gates(&by_jwt_authn),
                "{}",
                case.name
            );
        }
        let m = by_mfa_gate.status == 200;
        if !j {
            refused_by_jwt_authn += 1;
        }
        let note = match (j, m) {
            (false, true) => {
                bugs.push(case.name.clone());
                "BUG: mfa-gate accepts what jwt_authn refuses".to_string()
            }
            (true, false) => match STRICTER.iter().find(|(name, _)| *name == case.name) {
                Some((_, why)) => format!("mfa-gate stricter: {why}"),
                None => {
                    unexplained.push(format!(
                        "{} (mfa-gate {}: {})",
                        case.name,
                        by_mfa_gate.status,
                        by_mfa_gate.text()
                    ));
                    "mfa-gate stricter: UNEXPLAINED".to_string()
                }
            },
            _ => String::new(),
        };
        rows.push(format!(
            "| {} | {} | {} | {} |",
            case.name,
            verdict(j),
            verdict(m),
            note
        ));
    }
    let table = format!(
        "| case | jwt_authn | mfa-gate | note |\n|---|---|---|---|\n{}\n",
        rows.join("\n")
    );
    std::fs::write(target_dir().join("differential.md"), &table).unwrap();

    // Not vacuous: every algorithm's valid token passes both, and jwt_authn counted each refusal.
    for alg in ALGORITHMS
        .iter()
        .map(|a| format!("{a}/valid"))
        .chain(["raw/valid".to_string()])
    {
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("| {alg} |")))
            .unwrap();
        assert!(row.contains("| accept | accept |"), "{row}");
    }
    assert!(refused_by_jwt_authn > 0, "jwt_authn refused some cases");
    assert!(
        bugs.is_empty(),
        "mfa-gate accepts tokens jwt_authn refuses: {bugs:?}\n{table}"
    );
    assert!(
        unexplained.is_empty(),
        "mfa-gate stricter without a reason in STRICTER: {unexplained:#?}\n{table}"
    );
    mfa_gate.assert_no_wasm_failure();
    jwt_authn.assert_no_wasm_failure();

    let doc = std::fs::read_to_string(repo_root().join("docs/differential.md")).unwrap_or_default();
    assert!(
        doc.contains(&table),
        "docs/differential.md does not hold the generated table (target/differential.md):\n{table}"
    );
}

#[test]
fn non_canonical_tail_changes_only_unused_bits() {
    let signature = b64url(&[0xAB; 64]);
    let changed = non_canonical_tail(&signature).unwrap();
    assert_ne!(changed, signature);
    // A strict decoder refuses it; the bytes a lenient one would read are the same.
    assert!(Base64UrlSafeNoPadding::decode_to_vec(&changed, None).is_err());
}

//! JOSE building blocks shared by [`crate::token::jwks`] and [`crate::token::verify`]: the
//! algorithms mfa-gate implements, the compact JWS form, canonical base64url segments,
//! strict JSON (no duplicate members) and log-safe text. It imports nothing above it.

use std::fmt;

use ct_codecs::{Base64UrlSafeNoPadding, Decoder, Encoder};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JWS algorithm mfa-gate can verify. `none` is not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
    HS256,
    HS384,
    HS512,
}

impl Algorithm {
    /// The RSA family (PKCS#1 v1.5 and PSS): what an RSA key without `alg` may verify.
    pub const RSA: [Algorithm; 6] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];

    /// All algorithms: the RSA family, then EC, EdDSA and HMAC.
    pub const ALL: [Algorithm; 12] = {
        let others = [
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
            Algorithm::HS256,
            Algorithm::HS384,
            Algorithm::HS512,
        ];
        let mut all = [Algorithm::RS256; 12];
        let mut i = 0;
        while i < 6 {
            all[i] = Algorithm::RSA[i];
            all[i + 6] = others[i];
            i += 1;
        }
        all
    };

    /// The JOSE `alg` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
        }
    }

    /// Parses the JOSE spelling (case-sensitive, as RFC 7515 requires). `none` → None.
    pub fn parse(s: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// True for the HMAC family, which needs an explicitly configured secret.
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }
}

/// Why a token is not a well-formed compact JWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoseError {
    /// Over the configured maximum length.
    TooLarge { len: usize, max: usize },
    /// Not three base64url segments, bad base64, a header or payload that is not a JSON
    /// object, or one with duplicate members.
    Malformed(String),
}

fn malformed(why: &str) -> JoseError {
    JoseError::Malformed(why.to_string())
}

/// The three segments of a compact JWS, as text (checked to be base64url + dots).
pub(crate) struct Compact<'a> {
    /// The whole token.
    pub(crate) text: &'a str,
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
}

impl<'a> Compact<'a> {
    /// Splits a token, after the length cap and a base64url-and-dots character check.
    pub(crate) fn split(token: &'a [u8], max_token_bytes: usize) -> Result<Compact<'a>, JoseError> {
        if token.len() > max_token_bytes {
            return Err(JoseError::TooLarge {
                len: token.len(),
                max: max_token_bytes,
            });
        }
        if !token
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(malformed(
                "token has characters outside base64url and '.' (JWS JSON serialization is not supported)",
            ));
        }
        let text = std::str::from_utf8(token).map_err(|_| malformed("token is not ASCII"))?;
        let mut parts = text.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("token does not have exactly three segments"));
        };
        if header.is_empty() {
            return Err(malformed("empty header segment"));
        }
        Ok(Compact {
            text,
            header,
            payload,
            signature,
        })
    }
}

/// Decodes one segment, accepting only canonical unpadded base64url: the decoder tolerates
/// non-zero trailing bits, so two spellings would decode to the same bytes (Wycheproof
/// `invalidBase64Padding`); re-encoding must give the segment back.
pub(crate) fn decode_segment(segment: &str, what: &str) -> Result<Vec<u8>, JoseError> {
    let not_base64 = || JoseError::Malformed(format!("{what} is not canonical base64url"));
    let bytes = Base64UrlSafeNoPadding::decode_to_vec(segment, None).map_err(|_| not_base64())?;
    match Base64UrlSafeNoPadding::encode_to_string(&bytes) {
        Ok(again) if again == segment => Ok(bytes),
        _ => Err(not_base64()),
    }
}

/// Decodes a base64url segment holding a JSON object without duplicate members.
pub(crate) fn decode_object(segment: &str, what: &str) -> Result<Map<String, Value>, JoseError> {
    let bytes = decode_segment(segment, what)?;
    match parse_json_unique(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(JoseError::Malformed(format!("{what} is not a JSON object"))),
        Err(e) if e.to_string().starts_with(DUPLICATE_MEMBER) => Err(JoseError::Malformed(
            format!("{what} has a duplicate member"),
        )),
        Err(_) => Err(JoseError::Malformed(format!("{what} is not valid JSON"))),
    }
}

const DUPLICATE_MEMBER: &str = "duplicate member";

/// Parses JSON, rejecting any object with a repeated member name (after unescaping, so
/// `"a"` and `"\u0061"` collide). Parsers disagree on which duplicate wins, so a token or
/// JWKS with duplicates is refused rather than read one way here and another elsewhere.
/// serde_json's recursion limit (128) still applies.
pub(crate) fn parse_json_unique(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let UniqueValue(value) = serde_json::from_slice(bytes)?;
    Ok(value)
}

struct UniqueValue(Value);

impl<'de> Deserialize<'de> for UniqueValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueValueVisitor)
    }
}

struct UniqueValueVisitor;

impl<'de> Visitor<'de> for UniqueValueVisitor {
    type Value = UniqueValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::String(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueValue, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(UniqueValue(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueValue, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(de::Error::custom(DUPLICATE_MEMBER));
            }
            let UniqueValue(value) = map.next_value()?;
            members.insert(name, value);
        }
        Ok(UniqueValue(Value::Object(members)))
    }
}

/// Attacker-controlled text (a `kid`, an `alg`, a `kty`) shortened for errors and logs.
pub(crate) fn truncate_for_log(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicate_members_are_found_at_any_depth_and_after_unescaping() {
        assert!(parse_json_unique(br#"{"a":1,"b":{"c":[{"d":1}]}}"#).is_ok());
        for doc in [
            &br#"{"a":1,"a":2}"#[..],
            br#"{"a":1,"\u0061":2}"#,
            br#"{"x":{"y":1,"y":1}}"#,
            br#"[{"z":[{"k":1,"k":1}]}]"#,
        ] {
            let err = parse_json_unique(doc).unwrap_err();
            assert!(err.to_string().starts_with(DUPLICATE_MEMBER), "{err}");
        }
        let value = parse_json_unique(
            br#"{"n":-1,"f":1.5,"u":18446744073709551615,"s":"\u00fc","z":null,"b":false}"#,
        )
        .unwrap();
        assert_eq!(
            value,
            json!({"n": -1, "f": 1.5, "u": u64::MAX, "s": "ü", "z": null, "b": false})
        );
    }

    #[test]
    fn segments_must_be_canonical_base64url() {
        assert_eq!(decode_segment("Zm9v", "x").unwrap(), b"foo");
        assert_eq!(decode_segment("", "x").unwrap(), b"");
        // "Zm9w" decodes to "fop"; "Zm9vZ" is an impossible length; "QR" has non-zero
        // trailing bits (the canonical spelling of "A" is "QQ").
        for bad in ["Zm9v=", "Zm9vZ", "QR", "Zm9v+", "Zm9v/"] {
            assert!(decode_segment(bad, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn the_rsa_family_leads_every_algorithm() {
        assert_eq!(Algorithm::ALL[..6], Algorithm::RSA);
        for (i, a) in Algorithm::ALL.iter().enumerate() {
            assert_eq!(Algorithm::parse(a.as_str()), Some(*a));
            assert!(!Algorithm::ALL[i + 1..].contains(a), "{a:?} twice");
        }
    }
}

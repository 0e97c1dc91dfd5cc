//! Reading the payload that Envoy's jwt_authn filter verified and stored in dynamic
//! metadata (`payload_in_metadata`).
//!
//! # Which property, and why
//!
//! jwt_authn stores `filter_metadata["envoy.filters.http.jwt_authn"]` as a
//! `google.protobuf.Struct` whose field `<payload_in_metadata>` is a Struct holding the JWT
//! payload (JSON numbers become doubles).
//!
//! A wasm filter reads it with `get_property`. In Envoy (source/extensions/common/wasm/context.cc,
//! `Context::getProperty`), the first path segment `metadata` is resolved by
//! `StreamActivation::FindValue` (source/extensions/filters/common/expr/evaluator.cc,
//! `case ActivationToken::Metadata: return CelProtoWrapper::CreateMessage(&info.dynamicMetadata(), arena)`),
//! i.e. the `envoy.config.core.v3.Metadata` message. Each later segment descends: a message
//! field (`filter_metadata` → a CEL map over the proto map), a map key, or a list index. cel-cpp
//! unwraps well-known types on the way (eval/public/structs/cel_proto_wrap_util.cc,
//! `ValueFromMessage`): a `Struct` becomes a CEL map, a `ListValue` a list, a `Value` its
//! number (double) / string / bool / null. `serializeValue` (context.cc) then encodes the
//! final value: a message with `SerializeToString`, a map or list in the proxy-wasm pairs
//! format, a double as 8 raw bytes, a string as raw bytes, and a null as a
//! `SerializationFailure`.
//!
//! So `["metadata", "filter_metadata", "envoy.filters.http.jwt_authn", <key>]` returns the
//! payload in the pairs format, where a number (8-byte double) cannot be told apart from an
//! 8-byte string, a nested object from a list or a string, and any `null` claim fails the
//! whole read. The path `["metadata"]` returns the serialized `Metadata` protobuf, which
//! carries every type explicitly. mfa-gate therefore reads `["metadata"]` and decodes the
//! protobuf here with a small bounded reader (`Metadata` → `Struct` → `Value`/`ListValue`).
//!
//! Wire format used (field numbers): `Metadata.filter_metadata` = 1 (map<string, Struct>),
//! `Struct.fields` = 1 (map<string, Value>), map entries key = 1 / value = 2,
//! `Value`: null = 1, number = 2 (double), string = 3, bool = 4, struct = 5, list = 6;
//! `ListValue.values` = 1.
//!
//! This module depends only on serde_json, so the host crate's test of its Envoy encoder
//! (host/src/metadata.rs) can compile it and decode what the encoder produced.

use serde_json::{Map, Number, Value};

/// The dynamic-metadata namespace jwt_authn writes to.
pub const JWT_AUTHN_NAMESPACE: &str = "envoy.filters.http.jwt_authn";

/// Deepest Struct/ListValue nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// The property path to read with `get_property`: the whole dynamic metadata, as a
/// serialized `envoy.config.core.v3.Metadata` (see the module documentation).
pub const PROPERTY_PATH: [&str; 1] = ["metadata"];

/// Decodes the bytes Envoy returns for [`PROPERTY_PATH`] and extracts
/// `filter_metadata["envoy.filters.http.jwt_authn"][payload_key]` as claims.
///
/// `Ok(None)`: no jwt_authn metadata, or no entry for `payload_key` (jwt_authn verified no
/// token for this request). `Err`: the bytes are not a valid `Metadata` message, or the
/// entry is not a Struct. Never panics, whatever the bytes.
pub fn decode_payload(
    bytes: &[u8],
    payload_key: &str,
) -> Result<Option<Map<String, Value>>, String> {
    let Some(jwt_authn) = find_map_entry(bytes, JWT_AUTHN_NAMESPACE, "Metadata")? else {
        return Ok(None);
    };
    let Some(value) = find_map_entry(jwt_authn, payload_key, "Struct")? else {
        return Ok(None);
    };
    match decode_value(value, 0)? {
        Value::Object(claims) => Ok(Some(claims)),
        other => Err(format!(
            "jwt_authn metadata entry {payload_key:?} is a {}, not a Struct",
            json_type(&other)
        )),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "struct",
    }
}

/// One protobuf field: its number and payload.
enum Field<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(&'a [u8]),
    Fixed32,
}

/// Reads protobuf fields one by one, refusing anything malformed.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let (&byte, rest) = self.bytes.split_first().ok_or("truncated varint")?;
            self.bytes = rest;
            if i == 9 && byte > 1 {
                return Err("varint overflows 64 bits".into());
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        if len > self.bytes.len() {
            return Err("field length runs past the end".into());
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    /// The next field, or None at the end.
    fn next_field(&mut self) -> Result<Option<(u64, Field<'a>)>, String> {
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let number = tag >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(format!("invalid field number {number}"));
        }
        let field = match tag & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                let raw = self.take(8)?;
                let mut eight = [0u8; 8];
                eight.copy_from_slice(raw);
                Field::Fixed64(eight)
            }
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| "field length too large".to_string())?;
                Field::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Field::Fixed32
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        Ok(Some((number, field)))
    }
}

/// Finds `key` in a message whose field 1 is a `map<string, X>`; returns the (last, as
/// protobuf merges maps) value's bytes. Every field is still checked to be well-formed.
fn find_map_entry<'a>(
    message: &'a [u8],
    key: &str,
    what: &str,
) -> Result<Option<&'a [u8]>, String> {
    let mut reader = Reader::new(message);
    let mut found = None;
    while let Some((number, field)) = reader.next_field()? {
        if number != 1 {
            continue;
        }
        let Field::Bytes(entry) = field else {
            return Err(format!("{what} field 1 is not length-delimited"));
        };
        let (entry_key, entry_value) = map_entry(entry)?;
        if entry_key == key.as_bytes() {
            found = Some(entry_value);
        }
    }
    Ok(found)
}

/// A map entry's key (field 1) and value bytes (field 2); missing ones are empty.
fn map_entry(entry: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let mut reader = Reader::new(entry);
    let (mut key, mut value): (&[u8], &[u8]) = (&[], &[]);
    while let Some((number, field)) = reader.next_field()? {
        match (number, field) {
            (1, Field::Bytes(k)) => key = k,
            (2, Field::Bytes(v)) => value = v,
            (1 | 2, _) => return Err("map entry key or value is not length-delimited".into()),
            _ => {}
        }
    }
    Ok((key, value))
}

fn utf8(bytes: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
}

/// Decodes a `google.protobuf.Value`.
fn decode_value(bytes: &[u8], depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nesting deeper than {MAX_DEPTH}"));
    }
    let mut reader = Reader::new(bytes);
    // A Value with no kind set reads as null, as in cel-cpp.
    let mut value = Value::Null;
    while let Some((number, field)) = reader.next_field()? {
        value = match (number, field) {
            (1, Field::Varint(_)) => Value::Null,
            (2, Field::Fixed64(raw)) => number_value(f64::from_le_bytes(raw))?,
            (3, Field::Bytes(s)) => Value::String(utf8(s, "string value")?),
            (4, Field::Varint(b)) => Value::Bool(b != 0),
            (5, Field::Bytes(s)) => Value::Object(decode_struct(s, depth + 1)?),
            (6, Field::Bytes(l)) => Value::Array(decode_list(l, depth + 1)?),
            (1..=6, _) => return Err(format!("Value field {number} has the wrong wire type")),
            _ => continue,
        };
    }
    Ok(value)
}

/// A double as JSON: integral values within ±2^53 become integers (claims such as `exp`
/// arrive as doubles), others stay floats; NaN and infinities are refused.
fn number_value(f: f64) -> Result<Value, String> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if !f.is_finite() {
        return Err("number value is NaN or infinite".into());
    }
    if f.fract() == 0.0 && f.abs() <= EXACT {
        return Ok(if f >= 0.0 {
            Value::Number(Number::from(f as u64))
        } else {
            Value::Number(Number::from(f as i64))
        });
    }
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| "number value is not representable".into())
}

/// Decodes a `google.protobuf.Struct` (later entries with the same key win).
fn decode_struct(bytes: &[u8], depth: usize) -> Result<Map<String, Value>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nesting deeper than {MAX_DEPTH}"));
    }
    let mut reader = Reader::new(bytes);
    let mut fields = Map::new();
    while let Some((number, field)) = reader.next_field()? {
        match (number, field) {
            (1, Field::Bytes(entry)) => {
                let (key, value) = map_entry(entry)?;
                fields.insert(utf8(key, "Struct key")?, decode_value(value, depth + 1)?);
            }
            (1, _) => return Err("Struct field 1 is not length-delimited".into()),
            _ => {}
        }
    }
    Ok(fields)
}

/// Decodes a `google.protobuf.ListValue`.
fn decode_list(bytes: &[u8], depth: usize) -> Result<Vec<Value>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nesting deeper than {MAX_DEPTH}"));
    }
    let mut reader = Reader::new(bytes);
    let mut values = Vec::new();
    while let Some((number, field)) = reader.next_field()? {
        match (number, field) {
            (1, Field::Bytes(item)) => values.push(decode_value(item, depth + 1)?),
            (1, _) => return Err("ListValue field 1 is not length-delimited".into()),
            _ => {}
        }
    }
    Ok(values)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Hand-assembled `Metadata{filter_metadata{"envoy.filters.http.jwt_authn":
    /// Struct{"p": Struct{"exp": 1700000000.0, "amr": ["hwk"], "ok": true, "n": null}}}}`,
    /// written out byte by byte from the protobuf encoding rules.
    fn sample() -> Vec<u8> {
        fn len(tag: u8, body: &[u8]) -> Vec<u8> {
            assert!(body.len() < 128);
            [vec![tag, body.len() as u8], body.to_vec()].concat()
        }
        fn entry(key: &str, value: &[u8]) -> Vec<u8> {
            [len(0x0a, key.as_bytes()), len(0x12, value)].concat()
        }
        let exp = [vec![0x11], 1_700_000_000f64.to_le_bytes().to_vec()].concat();
        let amr = len(0x32, &len(0x0a, &len(0x1a, b"hwk")));
        let ok = vec![0x20, 0x01];
        let null = vec![0x08, 0x00];
        let payload = [
            len(0x0a, &entry("exp", &exp)),
            len(0x0a, &entry("amr", &amr)),
            len(0x0a, &entry("ok", &ok)),
            len(0x0a, &entry("n", &null)),
        ]
        .concat();
        let jwt_authn = len(0x0a, &entry("p", &len(0x2a, &payload)));
        let other = len(0x0a, &entry("other.filter", &[]));
        [other, len(0x0a, &entry(JWT_AUTHN_NAMESPACE, &jwt_authn))].concat()
    }

    #[test]
    fn property_path_is_the_whole_metadata_message() {
        assert_eq!(PROPERTY_PATH, ["metadata"]);
    }

    #[test]
    fn decodes_a_hand_encoded_metadata_message() {
        let claims = decode_payload(&sample(), "p").unwrap().unwrap();
        assert_eq!(
            Value::Object(claims),
            json!({"exp": 1_700_000_000u64, "amr": ["hwk"], "ok": true, "n": null})
        );
    }

    #[test]
    fn absent_namespace_or_key_is_none() {
        assert_eq!(decode_payload(&sample(), "missing"), Ok(None));
        assert_eq!(decode_payload(&[], "p"), Ok(None));
        // A Metadata with only another filter's entry.
        let other = [0x0a, 0x10, 0x0a, 0x0c]
            .iter()
            .copied()
            .chain(*b"other.filter")
            .chain([0x12, 0x00])
            .collect::<Vec<u8>>();
        assert_eq!(decode_payload(&other, "p"), Ok(None));
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics() {
        let good = sample();
        // Every truncation of a valid message is either an error or a valid shorter message.
        for cut in 0..good.len() {
            let _ = decode_payload(&good[..cut], "p");
        }
        // Every single-byte corruption.
        for i in 0..good.len() {
            for x in [0x00, 0x01, 0x07, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= x;
                let _ = decode_payload(&bad, "p");
            }
        }
        assert!(
            decode_payload(&[0x0a, 0x05, 0x01], "p").is_err(),
            "length past the end"
        );
        assert!(decode_payload(&[0x0b], "p").is_err(), "group wire type");
        assert!(decode_payload(&[0x08; 11], "p").is_err());
        assert!(decode_payload(&[0x80; 20], "p").is_err(), "endless varint");
        assert!(decode_payload(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], "p").is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        // Value{list_value{values: Value{list_value{...}}}} nested 200 times.
        let mut value: Vec<u8> = vec![0x08, 0x00];
        for _ in 0..200 {
            let list = encode_len(0x0a, &value);
            value = encode_len(0x32, &list);
        }
        let payload_struct = encode_len(
            0x0a,
            &[encode_len(0x0a, b"x"), encode_len(0x12, &value)].concat(),
        );
        let entry = [
            encode_len(0x0a, b"p"),
            encode_len(0x12, &encode_len(0x2a, &payload_struct)),
        ]
        .concat();
        let jwt_authn = encode_len(0x0a, &entry);
        let metadata = encode_len(
            0x0a,
            &[
                encode_len(0x0a, JWT_AUTHN_NAMESPACE.as_bytes()),
                encode_len(0x12, &jwt_authn),
            ]
            .concat(),
        );
        let err = decode_payload(&metadata, "p").unwrap_err();
        assert!(err.contains("nesting"), "{err}");
    }

    #[test]
    fn non_struct_payload_and_bad_numbers_are_errors() {
        let jwt_authn = encode_len(
            0x0a,
            &[
                encode_len(0x0a, b"p"),
                encode_len(0x12, &encode_len(0x1a, b"str")),
            ]
            .concat(),
        );
        let metadata = encode_len(
            0x0a,
            &[
                encode_len(0x0a, JWT_AUTHN_NAMESPACE.as_bytes()),
                encode_len(0x12, &jwt_authn),
            ]
            .concat(),
        );
        assert!(decode_payload(&metadata, "p")
            .unwrap_err()
            .contains("not a Struct"));
        assert!(number_value(f64::NAN).is_err());
        assert!(number_value(f64::INFINITY).is_err());
        assert_eq!(number_value(-3.0).unwrap(), json!(-3));
        assert_eq!(number_value(2.5).unwrap(), json!(2.5));
    }

    fn encode_len(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let mut n = body.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.extend_from_slice(body);
        out
    }
}

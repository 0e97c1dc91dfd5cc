//! `metadata.<…>` property resolution: the bytes Envoy hands a wasm filter for the property
//! path `metadata` + `rest`, given the stream's dynamic `filter_metadata` (namespace → JSON
//! object, i.e. the `google.protobuf.Struct` a filter such as jwt_authn stored).
//!
//! Envoy's behaviour, from its source:
//! * source/extensions/common/wasm/context.cc, `Context::getProperty`: the first segment is
//!   looked up by `findValue`, which delegates to `StreamActivation::FindValue`
//!   (source/extensions/filters/common/expr/evaluator.cc): `metadata` is
//!   `CelProtoWrapper::CreateMessage(&info.dynamicMetadata(), arena)`, the
//!   `envoy.config.core.v3.Metadata` message. Each later segment: on a message, a field by
//!   name (`FindFieldByName`; a map field becomes a CEL map, unknown name → NotFound); on a
//!   map, a key lookup (miss → NotFound); on a list, `absl::SimpleAtoi` index (bad or out of
//!   range → NotFound); on anything else → NotFound.
//! * cel-cpp eval/public/structs/cel_proto_wrap_util.cc, `ValueFromMessage`: a `Struct` map
//!   value is unwrapped to a CEL map, a `ListValue` to a list, a `Value` to double / string /
//!   bool / null (kind not set → null).
//! * context.cc, `serializeValue`: message → `SerializeToString` (empty message → empty
//!   bytes, which the guest sees as no value); string → raw bytes; double → 8 bytes LE;
//!   bool → 1 byte; map → proxy-wasm pairs (key, serialized value), 4 bytes for an empty map;
//!   list → pairs (serialized element, ""); null (anywhere inside) → SerializationFailure.
//!
//! (Read at envoyproxy/envoy b40935ac07f770581a402ca8a220d251bc02b3a5 and google/cel-cpp
//! 03f4f2fc1f3a69fe3293c24162e68d581d13e7fe; function names are given because line numbers move.)
//!
//! Map iteration order is unspecified in Envoy (protobuf maps); this host emits keys sorted.
//! `typed_filter_metadata` is not modelled: it is always an empty map here.

use serde_json::{Map, Value};

use crate::properties::PropertyFailure;

/// The field names of `envoy.config.core.v3.Metadata`.
const FILTER_METADATA: &[u8] = b"filter_metadata";
const TYPED_FILTER_METADATA: &[u8] = b"typed_filter_metadata";

/// Returns the bytes Envoy would hand for `metadata.<rest…>` (`Ok(None)` → NotFound).
pub fn resolve(
    filter_metadata: &Map<String, Value>,
    rest: &[&[u8]],
) -> Result<Option<Vec<u8>>, PropertyFailure> {
    let Some((field, deeper)) = rest.split_first() else {
        return encode_metadata(filter_metadata).map(Some);
    };
    match *field {
        FILTER_METADATA => {
            let Some((namespace, deeper)) = deeper.split_first() else {
                // The whole map<string, Struct> as a CEL map.
                return serialize_map(filter_metadata).map(Some);
            };
            let Some(structure) = std::str::from_utf8(namespace)
                .ok()
                .and_then(|name| filter_metadata.get(name))
            else {
                return Ok(None);
            };
            descend(structure, deeper)
        }
        TYPED_FILTER_METADATA => {
            if deeper.is_empty() {
                Ok(Some(pairs(Vec::new())))
            } else {
                Ok(None)
            }
        }
        _ => Ok(None),
    }
}

/// Follows the remaining segments through unwrapped Struct/ListValue values.
fn descend(mut value: &Value, path: &[&[u8]]) -> Result<Option<Vec<u8>>, PropertyFailure> {
    for segment in path {
        value = match value {
            Value::Object(map) => {
                let Some(next) = std::str::from_utf8(segment).ok().and_then(|k| map.get(k)) else {
                    return Ok(None);
                };
                next
            }
            Value::Array(items) => {
                let Some(next) = simple_atoi(segment)
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| items.get(i))
                else {
                    return Ok(None);
                };
                next
            }
            _ => return Ok(None),
        };
    }
    serialize_value(value).map(Some)
}

/// `absl::SimpleAtoi` into an `int`: optional surrounding ASCII whitespace, optional sign,
/// decimal digits, no overflow.
fn simple_atoi(segment: &[u8]) -> Option<i32> {
    let text = std::str::from_utf8(segment)
        .ok()?
        .trim_matches(|c: char| c.is_ascii_whitespace());
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i32>().ok()
}

/// `serializeValue` for an unwrapped Struct value.
fn serialize_value(value: &Value) -> Result<Vec<u8>, PropertyFailure> {
    match value {
        Value::Null => Err(PropertyFailure::SerializationFailure),
        Value::Bool(b) => Ok(vec![u8::from(*b)]),
        Value::Number(n) => {
            let f = n.as_f64().ok_or(PropertyFailure::SerializationFailure)?;
            Ok(f.to_le_bytes().to_vec())
        }
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Object(map) => serialize_map(map),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push((serialize_value(item)?, Vec::new()));
            }
            Ok(pairs(out))
        }
    }
}

fn serialize_map(map: &Map<String, Value>) -> Result<Vec<u8>, PropertyFailure> {
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in sorted(map) {
        out.push((key.as_bytes().to_vec(), serialize_value(value)?));
    }
    Ok(pairs(out))
}

/// The proxy-wasm pairs format as `PairsUtil::marshalPairs` writes it (an empty map is
/// the 4-byte count 0, unlike a header map, for which hosts return nothing).
fn pairs(items: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<u8> {
    let data: usize = items.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut out = Vec::with_capacity(4 + 8 * items.len() + data);
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for (key, value) in &items {
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (key, value) in &items {
        out.extend_from_slice(key);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}

fn sorted(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

// --- protobuf encoding of envoy.config.core.v3.Metadata / google.protobuf.Struct --------
//
// As protobuf C++ does: sizes first (`ByteSizeLong`), then one pass writing into a buffer
// of exactly that size, so a read costs one allocation whatever the nesting.

fn varint_len(n: u64) -> usize {
    let bits = 64 - (n | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Bytes of a length-delimited field (one-byte tag, as every field number here is < 16).
fn len_field(body: usize) -> usize {
    1 + varint_len(body as u64) + body
}

fn put_len_header(out: &mut Vec<u8>, field: u32, body: usize) {
    put_varint(out, u64::from(field) << 3 | 2);
    put_varint(out, body as u64);
}

/// A map entry's body: key (1) and value (2) are always written, as protobuf C++ does.
fn entry_len(key: &str, value_body: usize) -> usize {
    len_field(key.len()) + len_field(value_body)
}

fn encode_metadata(filter_metadata: &Map<String, Value>) -> Result<Vec<u8>, PropertyFailure> {
    // Sizes first, each nested Struct/ListValue body measured once and kept in visiting
    // order (protobuf C++'s cached sizes), then one writing pass that reads them back.
    let mut sizes = Vec::new();
    let mut total = 0;
    for (namespace, structure) in filter_metadata {
        let Value::Object(fields) = structure else {
            // filter_metadata values are Structs; anything else cannot be serialized.
            return Err(PropertyFailure::SerializationFailure);
        };
        let body = measure_body(&mut sizes, |sizes| measure_struct(sizes, fields));
        total += len_field(entry_len(namespace, body));
    }
    let mut writer = Writer {
        out: Vec::with_capacity(total),
        sizes: &sizes,
        next: 0,
    };
    // serde_json's map (no `preserve_order`) iterates in key order: the output is sorted.
    for (namespace, structure) in filter_metadata {
        if let Value::Object(fields) = structure {
            let body = writer.take_size();
            writer.len_header(1, entry_len(namespace, body));
            writer.len_header(1, namespace.len());
            writer.out.extend_from_slice(namespace.as_bytes());
            writer.len_header(2, body);
            writer.write_struct(fields);
        }
    }
    Ok(writer.out)
}

/// Reserves `body`'s slot in visiting order, measures it (children after it), fills it in.
fn measure_body(sizes: &mut Vec<usize>, body: impl FnOnce(&mut Vec<usize>) -> usize) -> usize {
    let slot = sizes.len();
    sizes.push(0);
    let len = body(sizes);
    sizes[slot] = len;
    len
}

/// A Struct body: its map entries.
fn measure_struct(sizes: &mut Vec<usize>, fields: &Map<String, Value>) -> usize {
    fields
        .iter()
        .map(|(key, value)| len_field(entry_len(key, measure_value(sizes, value))))
        .sum()
}

/// A `google.protobuf.Value` body.
fn measure_value(sizes: &mut Vec<usize>, value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 2,
        Value::Number(_) => 9,
        Value::String(s) => len_field(s.len()),
        Value::Object(fields) => len_field(measure_body(sizes, |s| measure_struct(s, fields))),
        Value::Array(items) => len_field(measure_body(sizes, |s| {
            items
                .iter()
                .map(|item| len_field(measure_value(s, item)))
                .sum()
        })),
    }
}

/// The writing pass: reads the measured sizes back in the order they were measured.
struct Writer<'a> {
    out: Vec<u8>,
    sizes: &'a [usize],
    next: usize,
}

impl Writer<'_> {
    fn take_size(&mut self) -> usize {
        let size = self.sizes.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        size
    }

    fn len_header(&mut self, field: u32, body: usize) {
        put_len_header(&mut self.out, field, body);
    }

    /// A Value's body length, and for a Struct or ListValue the inner body length.
    fn value_len(&mut self, value: &Value) -> (usize, usize) {
        match value {
            Value::Null | Value::Bool(_) => (2, 0),
            Value::Number(_) => (9, 0),
            Value::String(s) => (len_field(s.len()), 0),
            Value::Object(_) | Value::Array(_) => {
                let inner = self.take_size();
                (len_field(inner), inner)
            }
        }
    }

    fn write_struct(&mut self, fields: &Map<String, Value>) {
        for (key, value) in fields {
            let (body, inner) = self.value_len(value);
            self.len_header(1, entry_len(key, body));
            self.len_header(1, key.len());
            self.out.extend_from_slice(key.as_bytes());
            self.len_header(2, body);
            self.write_value(value, inner);
        }
    }

    fn write_value(&mut self, value: &Value, inner: usize) {
        match value {
            Value::Null => self.out.extend_from_slice(&[0x08, 0x00]),
            Value::Number(n) => {
                self.out.push(0x11);
                self.out
                    .extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
            }
            Value::String(s) => {
                self.len_header(3, s.len());
                self.out.extend_from_slice(s.as_bytes());
            }
            Value::Bool(b) => self.out.extend_from_slice(&[0x20, u8::from(*b)]),
            Value::Object(fields) => {
                self.len_header(5, inner);
                self.write_struct(fields);
            }
            Value::Array(items) => {
                self.len_header(6, inner);
                for item in items {
                    let (body, item_inner) = self.value_len(item);
                    self.len_header(1, body);
                    self.write_value(item, item_inner);
                }
            }
        }
    }
}

/// The filter crate's decoder (src/token/jwt_authn.rs), compiled here unchanged: it
/// depends only on serde_json, so the round trip runs without linking the filter crate.
#[cfg(test)]
#[path = "../../src/token/jwt_authn.rs"]
#[allow(dead_code)]
mod decoder;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    use super::decoder;

    const JWT_AUTHN: &str = "envoy.filters.http.jwt_authn";

    fn metadata_with(payload: Value) -> Map<String, Value> {
        let mut filter_metadata = Map::new();
        filter_metadata.insert(JWT_AUTHN.into(), json!({ "jwt_payload": payload }));
        filter_metadata.insert("envoy.lb".into(), json!({"canary": true}));
        filter_metadata
    }

    fn round_trip(payload: Value) -> Option<Map<String, Value>> {
        let filter_metadata = metadata_with(payload);
        let bytes = resolve(&filter_metadata, &[]).unwrap().unwrap();
        decoder::decode_payload(&bytes, "jwt_payload").unwrap()
    }

    #[test]
    fn claims_round_trip_through_the_metadata_message() {
        // `["metadata"]` is the Metadata message itself (evaluator.cc StreamActivation::FindValue,
        // ActivationToken::Metadata), serialized by context.cc serializeValue (kMessage →
        // SerializeToString); src/token/jwt_authn.rs decodes it.
        // Envoy's jwt_authn (test/extensions/filters/http/jwt_authn) stores the payload
        // Struct under payload_in_metadata; numbers become doubles on the way.
        let claims = json!({
            "iss": "https://idp.example.com",
            "sub": "ülrich 🦀",
            "exp": 1_700_000_300u64,
            "iat": 1_700_000_000u64,
            "ratio": 0.25,
            "negative": -7,
            "mfa": true,
            "disabled": false,
            "amr": ["pwd", "mfa", ["nested", 1]],
            "address": {"country": "FR", "geo": {"lat": 48.85}},
            "groups": [],
            "nothing": null,
            // Over 127 bytes: lengths of two varint bytes at every nesting level.
            "long": {"text": "x".repeat(300), "list": [["y".repeat(200)]]},
        });
        assert_eq!(
            round_trip(claims.clone()),
            Some(claims.as_object().unwrap().clone())
        );
    }

    #[test]
    fn missing_payload_key_or_namespace_decodes_to_none() {
        let bytes = resolve(&metadata_with(json!({"sub": "a"})), &[])
            .unwrap()
            .unwrap();
        assert_eq!(decoder::decode_payload(&bytes, "other_key").unwrap(), None);
        let empty = resolve(&Map::new(), &[]).unwrap().unwrap();
        assert!(empty.is_empty(), "an empty Metadata serializes to no bytes");
        assert_eq!(
            decoder::decode_payload(&empty, "jwt_payload").unwrap(),
            None
        );
    }

    #[test]
    fn deeper_paths_use_cel_value_encodings() {
        // Envoy context.cc `serializeValue`: kDouble → 8 raw bytes, kString → raw, kBool →
        // 1 byte, kList → marshalPairs(element, ""), kMap → marshalPairs(key, value);
        // `getProperty`: list segments parsed with absl::SimpleAtoi, misses → NotFound.
        let fm = metadata_with(
            json!({"exp": 1_700_000_300u64, "sub": "abcdefgh", "amr": ["pwd", "hwk"], "ok": true}),
        );
        let path = |segments: &[&str]| -> Result<Option<Vec<u8>>, PropertyFailure> {
            let bytes: Vec<&[u8]> = segments.iter().map(|s| s.as_bytes()).collect();
            resolve(&fm, &bytes)
        };
        let base = ["filter_metadata", JWT_AUTHN, "jwt_payload"];
        fn with<'a>(base: &[&'a str], last: &[&'a str]) -> Vec<&'a str> {
            [base, last].concat()
        }
        // A number is an 8-byte double: indistinguishable from the 8-byte string "abcdefgh".
        assert_eq!(
            path(&with(&base, &["exp"])).unwrap().unwrap(),
            1_700_000_300f64.to_le_bytes()
        );
        assert_eq!(path(&with(&base, &["sub"])).unwrap().unwrap(), b"abcdefgh");
        assert_eq!(path(&with(&base, &["ok"])).unwrap().unwrap(), [1]);
        // A list: pairs of (element, "").
        let amr = path(&with(&base, &["amr"])).unwrap().unwrap();
        let mut expected = vec![2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0];
        expected.extend_from_slice(b"pwd\0\0hwk\0\0");
        assert_eq!(amr, expected);
        assert_eq!(path(&with(&base, &["amr", "1"])).unwrap().unwrap(), b"hwk");
        assert_eq!(
            path(&with(&base, &["amr", " +1 "])).unwrap().unwrap(),
            b"hwk"
        );
        assert_eq!(path(&with(&base, &["amr", "2"])).unwrap(), None);
        assert_eq!(path(&with(&base, &["amr", "x"])).unwrap(), None);
        assert_eq!(path(&with(&base, &["sub", "deeper"])).unwrap(), None);
        assert_eq!(path(&with(&base, &["missing"])).unwrap(), None);
        assert_eq!(path(&["no_such_field"]).unwrap(), None);
        assert_eq!(
            path(&["typed_filter_metadata"]).unwrap().unwrap(),
            [0, 0, 0, 0]
        );
        // The whole payload map: pairs, keys sorted here (unspecified order in Envoy).
        let map = path(&base).unwrap().unwrap();
        assert_eq!(&map[..4], &[4, 0, 0, 0]);
    }

    #[test]
    fn null_anywhere_in_the_value_is_a_serialization_failure() {
        let fm = metadata_with(json!({"n": null, "list": [1, null]}));
        let seg = |s: &'static str| s.as_bytes();
        let base = [seg("filter_metadata"), seg(JWT_AUTHN), seg("jwt_payload")];
        assert_eq!(
            resolve(&fm, &[&base[..], &[seg("n")]].concat()),
            Err(PropertyFailure::SerializationFailure)
        );
        assert_eq!(
            resolve(&fm, &base),
            Err(PropertyFailure::SerializationFailure)
        );
        assert_eq!(
            resolve(&fm, &[&base[..], &[seg("list"), seg("1")]].concat()),
            Err(PropertyFailure::SerializationFailure)
        );
        // The protobuf path carries the null faithfully.
        assert!(resolve(&fm, &[]).unwrap().is_some());
    }

    #[test]
    fn hostile_metadata_bytes_never_panic_the_decoder() {
        let bytes = resolve(&metadata_with(json!({"amr": ["hwk"], "exp": 1.5})), &[])
            .unwrap()
            .unwrap();
        for cut in 0..bytes.len() {
            let _ = decoder::decode_payload(&bytes[..cut], "jwt_payload");
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] = bad[i].wrapping_add(0x41);
            let _ = decoder::decode_payload(&bad, "jwt_payload");
        }
        assert!(decoder::decode_payload(&[0x0a, 0x7f], "jwt_payload").is_err());
    }
}

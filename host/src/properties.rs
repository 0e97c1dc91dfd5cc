//! `proxy_get_property` / `proxy_set_property` (§3.8): attribute lookup with Envoy's encodings.

use crate::metadata;
use crate::runtime::abi::{serialize_pairs, status};
use crate::runtime::vm::{Access, StreamState, VmState};

/// Why a property lookup failed (what `metadata::resolve` reports too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyFailure {
    /// No such attribute (or not available now).
    NotFound,
    /// The value exists but cannot be serialized.
    SerializationFailure,
}

impl PropertyFailure {
    fn status(&self) -> i32 {
        match self {
            PropertyFailure::NotFound => status::NOT_FOUND,
            PropertyFailure::SerializationFailure => status::SERIALIZATION_FAILURE,
        }
    }
}

fn int(value: i64) -> Vec<u8> {
    value.to_le_bytes().to_vec()
}

fn text(value: &str) -> Vec<u8> {
    value.as_bytes().to_vec()
}

fn found(value: Option<Vec<u8>>) -> Result<Vec<u8>, i32> {
    value.ok_or(status::NOT_FOUND)
}

/// Looks up a `\0`-separated property path for the effective context. Ok(empty) is returned as 0/0.
pub(crate) fn get_property(state: &VmState, path: &[u8]) -> Result<Vec<u8>, i32> {
    let segments: Vec<&[u8]> = path.split(|byte| *byte == 0).collect();
    let Some((first, rest)) = segments.split_first() else {
        return Err(status::NOT_FOUND);
    };
    let options = &state.shared.options;
    let leaf_only = |value: Vec<u8>| {
        if rest.is_empty() {
            Ok(value)
        } else {
            Err(status::NOT_FOUND)
        }
    };
    match *first {
        b"plugin_name" => return leaf_only(text(&options.plugin_name)),
        b"plugin_root_id" => return leaf_only(text(&options.root_id)),
        b"plugin_vm_id" => return leaf_only(text(&options.vm_id)),
        _ => {}
    }
    // A root context has no stream info (§3.8 Availability).
    let Some(stream) = state.active_stream() else {
        return Err(status::NOT_FOUND);
    };
    let attribute = rest.first().copied().unwrap_or_default();
    let deeper = rest.get(1..).unwrap_or_default();
    match *first {
        b"request" => request_property(state, stream, attribute, deeper),
        b"response" => response_property(stream, attribute, deeper),
        b"source" => address_property(stream.info.source_address.as_deref(), attribute, deeper),
        b"destination" => address_property(
            stream.info.destination_address.as_deref(),
            attribute,
            deeper,
        ),
        b"connection" => connection_property(stream, attribute, deeper),
        b"connection_id" => leaf_only(int(stream.connection_id as i64)),
        b"xds" => {
            if !deeper.is_empty() {
                return Err(status::NOT_FOUND);
            }
            let value = match attribute {
                b"route_name" => stream.info.route_name.as_deref(),
                b"cluster_name" => stream.info.cluster_name.as_deref(),
                _ => None,
            };
            found(value.map(text))
        }
        b"metadata" => match metadata::resolve(&stream.info.filter_metadata, rest) {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(status::NOT_FOUND),
            Err(failure) => Err(failure.status()),
        },
        b"filter_state" => {
            if rest.len() != 1 {
                return Err(status::NOT_FOUND);
            }
            found(stream.filter_state.get(attribute).cloned())
        }
        other => {
            // Any other name reads filter state `wasm.<name>`.
            if !rest.is_empty() {
                return Err(status::NOT_FOUND);
            }
            let mut key = b"wasm.".to_vec();
            key.extend_from_slice(other);
            found(stream.filter_state.get(&key).cloned())
        }
    }
}

fn header_value<'a>(headers: &'a [(Vec<u8>, Vec<u8>)], name: &[u8]) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(key, _)| key.as_slice() == name)
        .map(|(_, value)| value.as_slice())
}

/// A header map as a property: repeated values comma-joined, in first-seen order.
fn joined_headers(headers: &[(Vec<u8>, Vec<u8>)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut joined: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (key, value) in headers {
        match joined.iter_mut().find(|(name, _)| name == key) {
            Some((_, existing)) => {
                existing.push(b',');
                existing.extend_from_slice(value);
            }
            None => joined.push((key.clone(), value.clone())),
        }
    }
    joined
}

fn map_property(headers: &[(Vec<u8>, Vec<u8>)], deeper: &[&[u8]]) -> Result<Vec<u8>, i32> {
    let joined = joined_headers(headers);
    match deeper {
        [] => Ok(serialize_pairs(
            joined.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        )),
        [name] => {
            let name = name.to_ascii_lowercase();
            found(
                joined
                    .into_iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value),
            )
        }
        _ => Err(status::NOT_FOUND),
    }
}

fn request_property(
    state: &VmState,
    stream: &StreamState,
    attribute: &[u8],
    deeper: &[&[u8]],
) -> Result<Vec<u8>, i32> {
    // Header-derived attributes need live request headers: on_request_headers (or paused there)
    // and on_log only (envoy#24194).
    let headers_live = stream.request_headers_access != Access::None || state.in_log;
    let header = |name: &[u8]| -> Result<Vec<u8>, i32> {
        if !headers_live || !deeper.is_empty() {
            return Err(status::NOT_FOUND);
        }
        found(stream.request_header(name).map(<[u8]>::to_vec))
    };
    let path = || stream.request_header(b":path").unwrap_or_default();
    match attribute {
        b"path" => header(b":path"),
        b"host" => header(b":authority"),
        b"scheme" => header(b":scheme"),
        b"method" => header(b":method"),
        b"referer" => header(b"referer"),
        b"useragent" => header(b"user-agent"),
        b"id" => header(b"x-request-id"),
        b"url_path" | b"query" if headers_live && deeper.is_empty() => {
            let full = path();
            let split = full.iter().position(|byte| *byte == b'?');
            let value = match (attribute, split) {
                (b"url_path", Some(at)) => &full[..at],
                (b"url_path", None) => full,
                (_, Some(at)) => &full[at + 1..],
                (_, None) => &[][..],
            };
            Ok(value.to_vec())
        }
        b"headers" if headers_live => map_property(&stream.request_headers, deeper),
        b"time" if deeper.is_empty() => Ok(int(stream.start_unix_ns as i64)),
        b"protocol" if deeper.is_empty() => Ok(text("HTTP/1.1")),
        b"size" if deeper.is_empty() => Ok(int(stream.request_body.len() as i64)),
        b"total_size" if deeper.is_empty() => {
            let header_bytes: usize = stream
                .request_headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum();
            Ok(int((header_bytes + stream.request_body.len()) as i64))
        }
        b"duration" if deeper.is_empty() => {
            let now = state.shared.clock.now_unix_ns();
            Ok(int(now.saturating_sub(stream.start_unix_ns) as i64))
        }
        _ => Err(status::NOT_FOUND),
    }
}

fn response_property(
    stream: &StreamState,
    attribute: &[u8],
    deeper: &[&[u8]],
) -> Result<Vec<u8>, i32> {
    if !stream.response_started {
        return Err(status::NOT_FOUND);
    }
    let code = header_value(&stream.response_headers, b":status")
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(|value| value.parse::<i64>().ok());
    match (attribute, deeper) {
        (b"code", []) => found(code.map(int)),
        (b"code_details", []) => found(stream.response_code_details.as_deref().map(text)),
        (b"headers", _) => map_property(&stream.response_headers, deeper),
        (b"trailers", _) => map_property(&stream.response_trailers, deeper),
        (b"size", []) => Ok(int(stream.response_body.len() as i64)),
        (b"total_size", []) => {
            let header_bytes: usize = stream
                .response_headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum();
            Ok(int((header_bytes + stream.response_body.len()) as i64))
        }
        (b"flags", []) => Ok(int(0)),
        _ => Err(status::NOT_FOUND),
    }
}

fn address_property(
    address: Option<&str>,
    attribute: &[u8],
    deeper: &[&[u8]],
) -> Result<Vec<u8>, i32> {
    if !deeper.is_empty() {
        return Err(status::NOT_FOUND);
    }
    let address = address.ok_or(status::NOT_FOUND)?;
    match attribute {
        b"address" => Ok(text(address)),
        b"port" => {
            let port = address
                .rsplit_once(':')
                .and_then(|(_, port)| port.parse::<i64>().ok())
                .ok_or(status::NOT_FOUND)?;
            Ok(int(port))
        }
        _ => Err(status::NOT_FOUND),
    }
}

fn connection_property(
    stream: &StreamState,
    attribute: &[u8],
    deeper: &[&[u8]],
) -> Result<Vec<u8>, i32> {
    if !deeper.is_empty() {
        return Err(status::NOT_FOUND);
    }
    let peer = &stream.info.peer;
    match attribute {
        b"id" => Ok(int(stream.connection_id as i64)),
        b"mtls" => Ok(vec![u8::from(peer.mtls)]),
        b"sha256_peer_certificate_digest" => found(peer.sha256_digest.as_deref().map(text)),
        b"uri_san_peer_certificate" => found(peer.uri_san.as_deref().map(text)),
        b"subject_peer_certificate" => found(peer.subject.as_deref().map(text)),
        _ => Err(status::NOT_FOUND),
    }
}

/// Stores filter state `wasm.<raw path>`; NotFound outside a stream (§3.8).
pub(crate) fn set_property(state: &mut VmState, path: &[u8], value: Vec<u8>) -> i32 {
    let Some(stream) = state.active_stream_mut() else {
        return status::NOT_FOUND;
    };
    let mut key = b"wasm.".to_vec();
    key.extend_from_slice(path);
    stream.filter_state.insert(key, value);
    status::OK
}

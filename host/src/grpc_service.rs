//! What the `upstream` argument of `proxy_grpc_call` names. Envoy's `Context::grpcCall`
//! (source/extensions/common/wasm/context.cc) first parses it as a serialized
//! `envoy.config.core.v3.GrpcService`; only bytes that are not one are a cluster name. This
//! module reads just enough protobuf wire format to make that same decision; it must never
//! panic or recurse without bound on any bytes a module passes.

/// How Envoy reads the `upstream` bytes of a gRPC call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GrpcTarget {
    /// Not a GrpcService: a cluster name, which must exist (else ParseFailure).
    Name(String),
    /// A GrpcService whose target is `envoy_grpc.cluster_name` (Envoy skips the cluster
    /// check: an unknown cluster fails the call once started).
    EnvoyGrpc(String),
    /// A GrpcService with no Envoy gRPC target (`google_grpc`, or none): not emulated.
    Other,
}

/// Envoy's (protobuf's) default recursion limit.
const MAX_DEPTH: usize = 100;

/// A field of a message: number, wire type, and the payload of a length-delimited one.
type Field<'a> = (u64, u8, &'a [u8]);

fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in 0..10 {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << (7 * shift);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The fields of a message that parses as protobuf wire format (groups checked, their
/// content skipped), or None. `end_group` is the field number of an open group.
fn fields_until<'a>(
    bytes: &'a [u8],
    at: &mut usize,
    end_group: Option<u64>,
    depth: usize,
) -> Option<Vec<Field<'a>>> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut fields = Vec::new();
    while *at < bytes.len() {
        let tag = varint(bytes, at)?;
        let (number, wire_type) = (tag >> 3, (tag & 7) as u8);
        if number == 0 || number > (1 << 29) - 1 {
            return None;
        }
        match wire_type {
            0 => {
                varint(bytes, at)?;
            }
            1 | 5 => {
                let width = if wire_type == 1 { 8 } else { 4 };
                *at = at.checked_add(width).filter(|end| *end <= bytes.len())?;
            }
            2 => {
                let len = usize::try_from(varint(bytes, at)?).ok()?;
                let end = at.checked_add(len).filter(|end| *end <= bytes.len())?;
                fields.push((number, 2, &bytes[*at..end]));
                *at = end;
                continue;
            }
            3 => {
                fields_until(bytes, at, Some(number), depth + 1)?;
            }
            4 => return (end_group == Some(number)).then_some(fields),
            _ => return None,
        }
        fields.push((number, wire_type, &[]));
    }
    end_group.is_none().then_some(fields)
}

fn message(bytes: &[u8], depth: usize) -> Option<Vec<Field<'_>>> {
    fields_until(bytes, &mut 0, None, depth)
}

/// Decides as Envoy 1.40 does: GrpcService fields 1 `envoy_grpc` (EnvoyGrpc: 1 cluster_name,
/// 2 authority, strings; 3 retry_policy, 4 max_receive_message_length, messages), 2
/// `google_grpc`, 3 `timeout`, 5 `initial_metadata`, 6 `retry_policy` (messages). A known field
/// of another wire type is an unknown field, as protobuf's parser treats it; the last of
/// `envoy_grpc`/`google_grpc` is the target (a oneof), repeated messages merge.
pub(crate) fn grpc_target(bytes: &[u8]) -> GrpcTarget {
    let as_name = || GrpcTarget::Name(String::from_utf8_lossy(bytes).into_owned());
    let Some(fields) = message(bytes, 0) else {
        return as_name();
    };
    let mut target = None;
    let mut cluster = None;
    for (number, wire_type, payload) in fields {
        if wire_type != 2 {
            continue;
        }
        match number {
            1 => {
                let Some(inner) = message(payload, 1) else {
                    return as_name();
                };
                for (inner_number, inner_type, value) in inner {
                    match (inner_number, inner_type) {
                        (1 | 2, 2) => {
                            let Ok(text) = std::str::from_utf8(value) else {
                                return as_name();
                            };
                            if inner_number == 1 {
                                cluster = Some(text.to_string());
                            }
                        }
                        (3 | 4, 2) if message(value, 2).is_none() => return as_name(),
                        _ => {}
                    }
                }
                target = Some(1);
            }
            2 | 3 | 5 | 6 => {
                if message(payload, 1).is_none() {
                    return as_name();
                }
                if number == 2 {
                    target = Some(2);
                }
            }
            _ => {}
        }
    }
    match (target, cluster) {
        (Some(1), Some(cluster)) => GrpcTarget::EnvoyGrpc(cluster),
        _ => GrpcTarget::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envoy_grpc(cluster: &str) -> Vec<u8> {
        let mut inner = vec![0x0a, cluster.len() as u8];
        inner.extend_from_slice(cluster.as_bytes());
        let mut outer = vec![0x0a, inner.len() as u8];
        outer.extend_from_slice(&inner);
        outer
    }

    // Cluster names are (almost always) not protobuf: "auth" starts with field 12 fixed64
    // and is too short for it; "grpc" starts with wire type 7.
    #[test]
    fn plain_names_are_names() {
        for name in ["auth", "grpc", "no-such-cluster", "push_service"] {
            assert_eq!(
                grpc_target(name.as_bytes()),
                GrpcTarget::Name(name.to_string())
            );
        }
    }

    #[test]
    fn serialized_services_are_read() {
        assert_eq!(
            grpc_target(&envoy_grpc("push")),
            GrpcTarget::EnvoyGrpc("push".to_string())
        );
        // Empty bytes are an empty GrpcService; "h1" is field 13 varint 0x31.
        assert_eq!(grpc_target(b""), GrpcTarget::Other);
        assert_eq!(grpc_target(b"h1"), GrpcTarget::Other);
        // google_grpc after envoy_grpc wins the oneof.
        let mut both = envoy_grpc("push");
        both.extend_from_slice(&[0x12, 0x00]);
        assert_eq!(grpc_target(&both), GrpcTarget::Other);
    }

    #[test]
    fn broken_wire_format_is_a_name() {
        for bytes in [
            &[0x0a, 0x05, 0x01][..],
            &[0x0b][..],
            &[0x0c][..],
            &[0x80][..],
        ] {
            assert!(
                matches!(grpc_target(bytes), GrpcTarget::Name(_)),
                "{bytes:?}"
            );
        }
        // Deep nesting of groups stops at the limit instead of overflowing the stack.
        let deep = [0x0bu8; 10_000];
        assert!(matches!(grpc_target(&deep), GrpcTarget::Name(_)));
    }
}

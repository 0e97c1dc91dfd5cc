//! The `env` imports of ABI 0.2.1 (§1), answering as Envoy does.

use wasmtime::{AsContextMut, Caller, Linker};

use super::abi::{
    deserialize_pairs, lower, pairs_size, read_bytes, return_bytes, return_with, status,
    write_pairs, write_u32, write_u64,
};
use super::vm::{Access, LocalReply, VmState};
use crate::clusters::{grpc_status, plan_grpc_reply, plan_reply, CallOutcome, Dispatch};
use crate::grpc_service::{grpc_target, GrpcTarget};
use crate::properties;
use crate::shared::{lock, CasResult, MetricKind, StatHandle};
use crate::types::{ClusterRequest, GrpcCall, HeaderList};
use crate::upstream_call::call_http_cluster;

type Ctx<'a> = Caller<'a, VmState>;
type HostResult = wasmtime::Result<i32>;

/// Names of every `env` import this host provides.
pub(crate) const ENV_IMPORTS: &[&str] = &[
    "proxy_log",
    "proxy_get_log_level",
    "proxy_get_current_time_nanoseconds",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_buffer_bytes",
    "proxy_set_buffer_bytes",
    "proxy_get_buffer_status",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_value",
    "proxy_get_header_map_size",
    "proxy_replace_header_map_value",
    "proxy_add_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_get_property",
    "proxy_set_property",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_send_local_response",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_send",
    "proxy_grpc_cancel",
    "proxy_grpc_close",
    "proxy_get_status",
    "proxy_set_effective_context",
    "proxy_call_foreign_function",
    "proxy_done",
    "proxy_define_metric",
    "proxy_get_metric",
    "proxy_record_metric",
    "proxy_increment_metric",
];

macro_rules! read_or_return {
    ($caller:expr, $ptr:expr, $len:expr) => {
        match read_bytes($caller, $ptr, $len) {
            Some(bytes) => bytes,
            None => return Ok(status::INVALID_MEMORY_ACCESS),
        }
    };
}

/// Hostcalls other than logging trap while `_initialize` runs ("restricted_callback", as V8 does).
fn restricted(caller: &Ctx<'_>, name: &str) -> wasmtime::Result<()> {
    if caller.data().initializing {
        return Err(wasmtime::Error::msg(format!(
            "restricted_callback: {name} called during module initialization"
        )));
    }
    Ok(())
}

fn ok_or_memory(written: bool) -> HostResult {
    Ok(if written {
        status::OK
    } else {
        status::INVALID_MEMORY_ACCESS
    })
}

/// Registers every `env` hostcall on the linker.
pub(crate) fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    logging_and_time(linker)?;
    buffers(linker)?;
    header_maps(linker)?;
    properties_and_shared(linker)?;
    stream_control(linker)?;
    calls(linker)?;
    metrics(linker)?;
    Ok(())
}

fn logging_and_time(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut c: Ctx<'_>, level: i32, ptr: i32, len: i32| -> HostResult {
            let name = match level {
                0 => "trace",
                1 => "debug",
                2 => "info",
                3 => "warn",
                4 => "error",
                5 => "critical",
                _ => return Ok(status::BAD_ARGUMENT),
            };
            let message = read_or_return!(&mut c, ptr, len);
            let message = String::from_utf8(message)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            c.data_mut().log(name, message);
            Ok(status::OK)
        },
    )?;
    // All levels are captured (the host records every line); Envoy answers its `wasm` logger level.
    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut c: Ctx<'_>, ret: i32| -> HostResult { ok_or_memory(write_u32(&mut c, ret, 0)) },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: Ctx<'_>, ret: i32| -> HostResult {
            let now = c.data().shared.clock.now_unix_ns();
            ok_or_memory(write_u64(&mut c, ret, now))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: Ctx<'_>, period: i32| -> HostResult {
            restricted(&c, "proxy_set_tick_period_milliseconds")?;
            let period = u64::from(period as u32);
            let now = c.data().shared.clock.now_unix_ms();
            let state = c.data_mut();
            state.tick_period_ms = period;
            state.next_tick_ms = (period > 0).then(|| now.saturating_add(period));
            Ok(status::OK)
        },
    )?;
    Ok(())
}

/// Buffer types (§0 BufferType).
const REQUEST_BODY: i32 = 0;
const RESPONSE_BODY: i32 = 1;
const CALL_RESPONSE_BODY: i32 = 4;
const GRPC_RECEIVE_BUFFER: i32 = 5;
const VM_CONFIGURATION: i32 = 6;
const PLUGIN_CONFIGURATION: i32 = 7;
const CALL_DATA: i32 = 8;

/// The readable bytes of a buffer: Err(status) if unknown (BadArgument) or unavailable (NotFound).
/// The HTTP bodies are always there: outside their callbacks they read empty (Envoy hands out
/// its buffer wrapper, empty when no body chunk is current).
fn buffer_bytes(state: &VmState, kind: i32) -> Result<&[u8], i32> {
    if !(0..=CALL_DATA).contains(&kind) {
        return Err(status::BAD_ARGUMENT);
    }
    let stream = state.active_stream();
    match kind {
        REQUEST_BODY => Ok(stream
            .filter(|s| s.request_body_access != Access::None)
            .map_or(&[][..], |s| s.request_body.as_slice())),
        RESPONSE_BODY => Ok(stream
            .filter(|s| s.response_body_access != Access::None)
            .map_or(&[][..], |s| s.response_body.as_slice())),
        CALL_RESPONSE_BODY => state
            .call_response
            .as_ref()
            .map(|(_, body, _)| body.as_slice())
            .ok_or(status::NOT_FOUND),
        // Envoy hands out the root context's receive buffer: the message in on_grpc_receive,
        // empty (Ok) at any other time.
        GRPC_RECEIVE_BUFFER => Ok(state.grpc_receive.as_deref().unwrap_or(&[])),
        VM_CONFIGURATION => Ok(state.shared.options.vm_configuration.as_slice()),
        PLUGIN_CONFIGURATION if state.in_configure => {
            Ok(state.shared.options.plugin_configuration.as_slice())
        }
        _ => Err(status::NOT_FOUND),
    }
}

fn buffer_mut(state: &mut VmState, kind: i32) -> Result<&mut Vec<u8>, i32> {
    match kind {
        REQUEST_BODY => state
            .active_stream_mut()
            .filter(|s| s.request_body_access == Access::ReadWrite)
            .map(|s| &mut s.request_body)
            .ok_or(status::NOT_FOUND),
        RESPONSE_BODY => state
            .active_stream_mut()
            .filter(|s| s.response_body_access == Access::ReadWrite)
            .map(|s| &mut s.response_body)
            .ok_or(status::NOT_FOUND),
        _ => Err(status::BAD_ARGUMENT),
    }
}

fn buffers(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Ctx<'_>,
         kind: i32,
         start: i32,
         max: i32,
         ret_ptr: i32,
         ret_len: i32|
         -> HostResult {
            restricted(&c, "proxy_get_buffer_bytes")?;
            let bytes = match buffer_bytes(c.data(), kind) {
                Ok(bytes) => {
                    // start+max in 64 bits (the SDK passes max = usize::MAX), then clamp.
                    let start = u64::from(start as u32);
                    let end = start
                        .saturating_add(u64::from(max as u32))
                        .min(bytes.len() as u64);
                    if start >= end {
                        Vec::new()
                    } else {
                        bytes[start as usize..end as usize].to_vec()
                    }
                }
                Err(code) => return Ok(code),
            };
            return_bytes(&mut c, &bytes, ret_ptr, ret_len)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: Ctx<'_>, kind: i32, start: i32, size: i32, ptr: i32, len: i32| -> HostResult {
            restricted(&c, "proxy_set_buffer_bytes")?;
            let data = read_or_return!(&mut c, ptr, len);
            let buffer = match buffer_mut(c.data_mut(), kind) {
                Ok(buffer) => buffer,
                Err(code) => return Ok(code),
            };
            let start = start as u32 as usize;
            let size = size as u32 as usize;
            if start == 0 {
                // Drain `size` bytes, then prepend (§3.1).
                let drained = size.min(buffer.len());
                buffer.drain(..drained);
                buffer.splice(0..0, data);
            } else if start >= buffer.len() {
                buffer.extend_from_slice(&data);
            } else {
                return Ok(status::BAD_ARGUMENT);
            }
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_status",
        |mut c: Ctx<'_>, kind: i32, ret_len: i32, ret_flags: i32| -> HostResult {
            restricted(&c, "proxy_get_buffer_status")?;
            let len = match buffer_bytes(c.data(), kind) {
                Ok(bytes) => bytes.len() as u32,
                Err(code) => return Ok(code),
            };
            ok_or_memory(write_u32(&mut c, ret_len, len) && write_u32(&mut c, ret_flags, 0))
        },
    )?;
    Ok(())
}

/// Map types (§0 MapType).
const CALL_RESPONSE_HEADERS: i32 = 6;
const CALL_RESPONSE_TRAILERS: i32 = 7;

/// Ok(None) = unavailable now; Err = unknown map type.
fn map_ref(state: &VmState, kind: i32) -> Result<Option<&HeaderList>, i32> {
    let stream = state.active_stream();
    match kind {
        0..=3 => Ok(stream.and_then(|s| {
            let map = match kind {
                0 => &s.request_headers,
                1 => &s.request_trailers,
                2 => &s.response_headers,
                _ => &s.response_trailers,
            };
            (access_of(s, kind) != Access::None).then_some(map)
        })),
        4 | 5 => Ok(None),
        CALL_RESPONSE_HEADERS => Ok(state.call_response.as_ref().map(|(headers, _, _)| headers)),
        CALL_RESPONSE_TRAILERS => Ok(state
            .call_response
            .as_ref()
            .map(|(_, _, trailers)| trailers)),
        _ => Err(status::BAD_ARGUMENT),
    }
}

fn access_of(stream: &super::vm::StreamState, kind: i32) -> Access {
    match kind {
        0 => stream.request_headers_access,
        1 => stream.request_trailers_access,
        2 => stream.response_headers_access,
        3 => stream.response_trailers_access,
        _ => Access::None,
    }
}

/// A writable map, or None (unavailable, read-only or immutable → BadArgument).
fn map_mut(state: &mut VmState, kind: i32) -> Option<&mut HeaderList> {
    let stream = state.active_stream_mut()?;
    if access_of(stream, kind) != Access::ReadWrite {
        return None;
    }
    match kind {
        0 => Some(&mut stream.request_headers),
        1 => Some(&mut stream.request_trailers),
        2 => Some(&mut stream.response_headers),
        3 => Some(&mut stream.response_trailers),
        _ => None,
    }
}

/// Envoy's addCopy: pseudo-headers stay ahead of regular ones.
pub(crate) fn add_header(map: &mut HeaderList, key: Vec<u8>, value: Vec<u8>) {
    if key.first() == Some(&b':') {
        let at = map
            .iter()
            .position(|(name, _)| name.first() != Some(&b':'))
            .unwrap_or(map.len());
        map.insert(at, (key, value));
    } else {
        map.push((key, value));
    }
}

/// Envoy's setCopy (1.40: `remove` then `addCopy`): every entry of the key goes, then the
/// value is added at the end (a pseudo-header: at the end of the pseudo-headers).
fn replace_header(map: &mut HeaderList, key: Vec<u8>, value: Vec<u8>) {
    map.retain(|(name, _)| *name != key);
    add_header(map, key, value);
}

fn header_maps(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: Ctx<'_>, kind: i32, ret_ptr: i32, ret_len: i32| -> HostResult {
            restricted(&c, "proxy_get_header_map_pairs")?;
            // Serialized straight into the guest's allocation, as cpp-host does.
            let size = match map_ref(c.data(), kind) {
                Ok(Some(map)) => pairs_size(map.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))),
                Ok(None) => 0,
                Err(code) => return Ok(code),
            };
            return_with(&mut c, size, ret_ptr, ret_len, |state, out| {
                match map_ref(state, kind) {
                    Ok(Some(map)) => {
                        write_pairs(map.iter().map(|(k, v)| (k.as_slice(), v.as_slice())), out)
                    }
                    _ => false,
                }
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: Ctx<'_>, kind: i32, ptr: i32, len: i32| -> HostResult {
            restricted(&c, "proxy_set_header_map_pairs")?;
            let bytes = read_or_return!(&mut c, ptr, len);
            let pairs = deserialize_pairs(&bytes);
            let Some(map) = map_mut(c.data_mut(), kind) else {
                return Ok(status::BAD_ARGUMENT);
            };
            map.clear();
            for (key, value) in pairs {
                add_header(map, lower(key), value);
            }
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Ctx<'_>, kind: i32, kp: i32, kl: i32, ret_ptr: i32, ret_len: i32| -> HostResult {
            restricted(&c, "proxy_get_header_map_value")?;
            let key = lower(read_or_return!(&mut c, kp, kl));
            let value = match map_ref(c.data(), kind) {
                Ok(Some(map)) => map
                    .iter()
                    .find(|(name, _)| *name == key)
                    .map(|(_, v)| v.clone()),
                Ok(None) if c.data().in_log => return Ok(status::NOT_FOUND),
                Ok(None) => return Ok(status::BAD_ARGUMENT),
                Err(code) => return Ok(code),
            };
            match value {
                Some(value) => return_bytes(&mut c, &value, ret_ptr, ret_len),
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_size",
        |mut c: Ctx<'_>, kind: i32, ret: i32| -> HostResult {
            restricted(&c, "proxy_get_header_map_size")?;
            let size = match map_ref(c.data(), kind) {
                Ok(Some(map)) => map.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>(),
                Ok(None) => return Ok(status::BAD_ARGUMENT),
                Err(code) => return Ok(code),
            };
            ok_or_memory(write_u32(&mut c, ret, size as u32))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: Ctx<'_>, kind: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> HostResult {
            restricted(&c, "proxy_replace_header_map_value")?;
            let key = lower(read_or_return!(&mut c, kp, kl));
            let value = read_or_return!(&mut c, vp, vl);
            let Some(map) = map_mut(c.data_mut(), kind) else {
                return Ok(status::BAD_ARGUMENT);
            };
            replace_header(map, key, value);
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: Ctx<'_>, kind: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> HostResult {
            restricted(&c, "proxy_add_header_map_value")?;
            let key = lower(read_or_return!(&mut c, kp, kl));
            let value = read_or_return!(&mut c, vp, vl);
            let Some(map) = map_mut(c.data_mut(), kind) else {
                return Ok(status::BAD_ARGUMENT);
            };
            add_header(map, key, value);
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: Ctx<'_>, kind: i32, kp: i32, kl: i32| -> HostResult {
            restricted(&c, "proxy_remove_header_map_value")?;
            let key = lower(read_or_return!(&mut c, kp, kl));
            let Some(map) = map_mut(c.data_mut(), kind) else {
                return Ok(status::BAD_ARGUMENT);
            };
            map.retain(|(name, _)| *name != key);
            Ok(status::OK)
        },
    )?;
    Ok(())
}

fn properties_and_shared(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: Ctx<'_>, pp: i32, pl: i32, ret_ptr: i32, ret_len: i32| -> HostResult {
            restricted(&c, "proxy_get_property")?;
            let path = read_or_return!(&mut c, pp, pl);
            match properties::get_property(c.data(), &path) {
                Ok(value) => return_bytes(&mut c, &value, ret_ptr, ret_len),
                Err(code) => Ok(code),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: Ctx<'_>, pp: i32, pl: i32, vp: i32, vl: i32| -> HostResult {
            restricted(&c, "proxy_set_property")?;
            let path = read_or_return!(&mut c, pp, pl);
            let value = read_or_return!(&mut c, vp, vl);
            Ok(properties::set_property(c.data_mut(), &path, value))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: Ctx<'_>,
         kp: i32,
         kl: i32,
         ret_ptr: i32,
         ret_len: i32,
         ret_cas: i32|
         -> HostResult {
            restricted(&c, "proxy_get_shared_data")?;
            let key = read_or_return!(&mut c, kp, kl);
            let entry = {
                let shared = c.data().shared.clone();
                let data = lock(&shared.data);
                data.get(&shared.options.vm_id, &key)
            };
            let Some((value, cas)) = entry else {
                return Ok(status::NOT_FOUND);
            };
            let code = return_bytes(&mut c, &value, ret_ptr, ret_len)?;
            if code != status::OK {
                return Ok(code);
            }
            ok_or_memory(write_u32(&mut c, ret_cas, cas))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: Ctx<'_>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| -> HostResult {
            restricted(&c, "proxy_set_shared_data")?;
            let key = read_or_return!(&mut c, kp, kl);
            let value = read_or_return!(&mut c, vp, vl);
            let shared = c.data().shared.clone();
            let result = lock(&shared.data).set(&shared.options.vm_id, &key, &value, cas as u32);
            Ok(match result {
                CasResult::Ok => status::OK,
                CasResult::CasMismatch => status::CAS_MISMATCH,
            })
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut c: Ctx<'_>, np: i32, nl: i32, ret: i32| -> HostResult {
            restricted(&c, "proxy_register_shared_queue")?;
            let name = read_or_return!(&mut c, np, nl);
            let (shared, worker, root) = {
                let state = c.data();
                (state.shared.clone(), state.worker, state.root_context)
            };
            let token = lock(&shared.queues).register(&shared.options.vm_id, &name, worker, root);
            ok_or_memory(write_u32(&mut c, ret, token))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: Ctx<'_>, vp: i32, vl: i32, np: i32, nl: i32, ret: i32| -> HostResult {
            restricted(&c, "proxy_resolve_shared_queue")?;
            let vm_id = read_or_return!(&mut c, vp, vl);
            let name = read_or_return!(&mut c, np, nl);
            let shared = c.data().shared.clone();
            let vm_id = if vm_id.is_empty() {
                shared.options.vm_id.clone()
            } else {
                String::from_utf8_lossy(&vm_id).into_owned()
            };
            let resolved = lock(&shared.queues).resolve(&vm_id, &name);
            match resolved {
                Some(token) => ok_or_memory(write_u32(&mut c, ret, token)),
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut c: Ctx<'_>, token: i32, ret_ptr: i32, ret_len: i32| -> HostResult {
            restricted(&c, "proxy_dequeue_shared_queue")?;
            let shared = c.data().shared.clone();
            let item = lock(&shared.queues).dequeue(token as u32);
            match item {
                Ok(Some(bytes)) => return_bytes(&mut c, &bytes, ret_ptr, ret_len),
                Ok(None) => Ok(status::EMPTY),
                Err(_) => Ok(status::NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |mut c: Ctx<'_>, token: i32, ptr: i32, len: i32| -> HostResult {
            restricted(&c, "proxy_enqueue_shared_queue")?;
            let data = read_or_return!(&mut c, ptr, len);
            let shared = c.data().shared.clone();
            let target = lock(&shared.queues).enqueue(token as u32, data);
            match target {
                Ok((worker, root)) => {
                    shared.post_queue_ready(worker, root, token as u32);
                    Ok(status::OK)
                }
                Err(_) => Ok(status::NOT_FOUND),
            }
        },
    )?;
    Ok(())
}

/// Envoy's StringUtil::replaceAllEmptySpace.
fn replace_whitespace(details: &[u8]) -> String {
    String::from_utf8_lossy(details)
        .chars()
        .map(|ch| {
            if matches!(ch, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c') {
                '_'
            } else {
                ch
            }
        })
        .collect()
}

fn stream_control(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        |mut c: Ctx<'_>, kind: i32| -> HostResult {
            restricted(&c, "proxy_continue_stream")?;
            match kind {
                0 | 1 => {
                    // Without a stream (root context) there is nothing to continue: Ok, no effect.
                    let Some(stream) = c.data_mut().active_stream_mut() else {
                        return Ok(status::OK);
                    };
                    if kind == 0 {
                        stream.continue_request = true;
                    } else {
                        stream.continue_response = true;
                    }
                    // The request headers/body/trailers pointers are dropped at once (§3.1).
                    stream.request_headers_access = Access::None;
                    stream.request_body_access = Access::None;
                    stream.request_trailers_access = Access::None;
                    Ok(status::OK)
                }
                2 => Ok(status::OK),
                3 => Ok(status::UNIMPLEMENTED),
                _ => Ok(status::BAD_ARGUMENT),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_close_stream",
        |mut c: Ctx<'_>, kind: i32| -> HostResult {
            restricted(&c, "proxy_close_stream")?;
            match kind {
                0 | 1 => {
                    if let Some(stream) = c.data_mut().active_stream_mut() {
                        stream.close = true;
                    }
                    Ok(status::OK)
                }
                2 | 3 => Ok(status::OK),
                _ => Ok(status::BAD_ARGUMENT),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Ctx<'_>,
         code: i32,
         dp: i32,
         dl: i32,
         bp: i32,
         bl: i32,
         hp: i32,
         hl: i32,
         grpc: i32|
         -> HostResult {
            restricted(&c, "proxy_send_local_response")?;
            let details = read_or_return!(&mut c, dp, dl);
            let body = read_or_return!(&mut c, bp, bl);
            let header_bytes = read_or_return!(&mut c, hp, hl);
            let headers = deserialize_pairs(&header_bytes)
                .into_iter()
                .map(|(key, value)| (lower(key), value))
                .collect();
            let reply = LocalReply {
                status: code as u32,
                body,
                headers,
                grpc_status: (0..=16).contains(&grpc).then_some(grpc as u32),
                details: replace_whitespace(&details),
            };
            // Without decoder callbacks (root context) Envoy does nothing and still answers Ok.
            if let Some(stream) = c.data_mut().active_stream_mut() {
                stream.local_reply = Some(reply);
            }
            Ok(status::OK)
        },
    )?;
    Ok(())
}

fn has_header(headers: &HeaderList, name: &[u8]) -> bool {
    headers.iter().any(|(key, _)| key.as_slice() == name)
}

fn calls(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: Ctx<'_>,
         up: i32,
         ul: i32,
         hp: i32,
         hl: i32,
         bp: i32,
         bl: i32,
         tp: i32,
         tl: i32,
         timeout: i32,
         ret: i32|
         -> HostResult {
            restricted(&c, "proxy_http_call")?;
            let cluster = read_or_return!(&mut c, up, ul);
            let header_bytes = read_or_return!(&mut c, hp, hl);
            let body = read_or_return!(&mut c, bp, bl);
            let trailer_bytes = read_or_return!(&mut c, tp, tl);
            let timeout = timeout as u32;
            if timeout > i32::MAX as u32 {
                return Ok(status::BAD_ARGUMENT);
            }
            let cluster = String::from_utf8_lossy(&cluster).into_owned();
            let shared = c.data().shared.clone();
            if !lock(&shared.clusters).contains(&cluster) {
                return Ok(status::BAD_ARGUMENT);
            }
            let mut headers = deserialize_pairs(&header_bytes);
            if !(has_header(&headers, b":path")
                && has_header(&headers, b":method")
                && has_header(&headers, b":authority"))
            {
                return Ok(status::BAD_ARGUMENT);
            }
            if !body.is_empty() && !has_header(&headers, b"content-length") {
                headers.push((
                    b"content-length".to_vec(),
                    body.len().to_string().into_bytes(),
                ));
            }
            let token = c.data().last_call_token.wrapping_add(4);
            if !write_u32(&mut c, ret, token) {
                return Ok(status::INVALID_MEMORY_ACCESS);
            }
            c.data_mut().last_call_token = token;
            let request = ClusterRequest {
                cluster,
                headers,
                body,
                trailers: deserialize_pairs(&trailer_bytes),
                timeout_ms: u64::from(timeout),
            };
            let dispatch = lock(&shared.clusters).dispatch(&request);
            let reply = match dispatch {
                Dispatch::Reply(reply) => reply,
                Dispatch::Http(address) => call_http_cluster(&address, &request),
            };
            // The cluster's wall time (a blocking HTTP call) does not count against the callback.
            c.as_context_mut()
                .set_epoch_deadline(super::callback_deadline_ticks());
            let planned = plan_reply(reply, request.timeout_ms);
            c.data_mut()
                .schedule_reply(token, planned.delay_ms, planned.outcome);
            Ok(status::OK)
        },
    )?;
    // gRPC unary calls as Envoy 1.40 makes them: proxy-wasm-cpp-host `exports::grpc_call`
    // (memory checked, then the root context's grpcCall, then the token written) and Envoy's
    // `Context::grpcCall` (source/extensions/common/wasm/context.cc).
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |mut c: Ctx<'_>,
         up: i32,
         ul: i32,
         sp: i32,
         sl: i32,
         mp: i32,
         ml: i32,
         hp: i32,
         hl: i32,
         bp: i32,
         bl: i32,
         timeout: i32,
         ret: i32|
         -> HostResult {
            restricted(&c, "proxy_grpc_call")?;
            let upstream = read_or_return!(&mut c, up, ul);
            let service = read_or_return!(&mut c, sp, sl);
            let method = read_or_return!(&mut c, mp, ml);
            let metadata = read_or_return!(&mut c, hp, hl);
            let message = read_or_return!(&mut c, bp, bl);
            let shared = c.data().shared.clone();
            // Not a serialized GrpcService: a cluster name, which must exist (ParseFailure,
            // Envoy's answer kept from ABI 0.1). A GrpcService skips the cluster check.
            let (cluster, checked) = match grpc_target(&upstream) {
                GrpcTarget::Name(name) => {
                    if !lock(&shared.clusters).contains_grpc(&name) {
                        return Ok(status::PARSE_FAILURE);
                    }
                    (name, true)
                }
                GrpcTarget::EnvoyGrpc(name) => (name, false),
                // getOrCreateRawAsyncClient fails without an Envoy gRPC target: BadArgument.
                GrpcTarget::Other => return Ok(status::BAD_ARGUMENT),
            };
            // Wasm::nextGrpcCallId: 5, 9, 13… (type 1 in the low two bits).
            let token = c.data().last_grpc_call_token.wrapping_add(4);
            c.data_mut().last_grpc_call_token = token;
            if !checked && !lock(&shared.clusters).contains_grpc(&cluster) {
                // The async client fails at once ("Cluster not available", UNAVAILABLE) while
                // sendRaw runs: grpcCall answers InternalFailure, and the failure, deferred
                // because the VM is on the stack, still reaches on_grpc_close.
                c.data_mut().schedule_reply(
                    token,
                    Some(0),
                    CallOutcome::GrpcClose {
                        code: grpc_status::UNAVAILABLE,
                        message: "Cluster not available".to_string(),
                    },
                );
                return Ok(status::INTERNAL_FAILURE);
            }
            let call = GrpcCall {
                cluster,
                service: String::from_utf8_lossy(&service).into_owned(),
                method: String::from_utf8_lossy(&method).into_owned(),
                initial_metadata: deserialize_pairs(&metadata)
                    .into_iter()
                    .map(|(key, value)| (lower(key), value))
                    .collect(),
                message,
                timeout_ms: u64::from(timeout as u32),
            };
            let reply = lock(&shared.clusters).dispatch_grpc(&call);
            // The handler's wall time does not count against the callback.
            c.as_context_mut()
                .set_epoch_deadline(super::callback_deadline_ticks());
            let planned = plan_grpc_reply(reply, call.timeout_ms);
            c.data_mut()
                .schedule_reply(token, planned.delay_ms, planned.outcome);
            // The call is under way whatever happens to the token pointer.
            if !write_u32(&mut c, ret, token) {
                return Ok(status::INVALID_MEMORY_ACCESS);
            }
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |c: Ctx<'_>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> HostResult {
            restricted(&c, "proxy_grpc_stream")?;
            Ok(status::PARSE_FAILURE)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        |c: Ctx<'_>, token: i32, _: i32, _: i32, _: i32| -> HostResult {
            restricted(&c, "proxy_grpc_send")?;
            Ok(if token & 3 == 2 {
                status::NOT_FOUND
            } else {
                status::BAD_ARGUMENT
            })
        },
    )?;
    // Context::grpcCancel / grpcClose: a live call's token (type 1) is cancelled, Ok, and
    // nothing is delivered for it; an unknown call or any stream token (type 2, no streams
    // here) is NotFound; other tokens BadArgument. The call being delivered is still live
    // (Envoy erases it after the callback).
    for name in ["proxy_grpc_cancel", "proxy_grpc_close"] {
        linker.func_wrap(
            "env",
            name,
            move |mut c: Ctx<'_>, token: i32| -> HostResult {
                restricted(&c, name)?;
                let token = token as u32;
                Ok(match token & 3 {
                    1 => {
                        let state = c.data_mut();
                        if state.cancel_scheduled(token) || state.grpc_delivering == Some(token) {
                            status::OK
                        } else {
                            status::NOT_FOUND
                        }
                    }
                    2 => status::NOT_FOUND,
                    _ => status::BAD_ARGUMENT,
                })
            },
        )?;
    }
    linker.func_wrap(
        "env",
        "proxy_get_status",
        |mut c: Ctx<'_>, ret_code: i32, ret_ptr: i32, ret_len: i32| -> HostResult {
            restricted(&c, "proxy_get_status")?;
            let code = c.data().status_code;
            let message = c.data().status_message.clone();
            if !write_u32(&mut c, ret_code, code) {
                return Ok(status::INVALID_MEMORY_ACCESS);
            }
            return_bytes(&mut c, &message, ret_ptr, ret_len)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: Ctx<'_>, id: i32| -> HostResult {
            restricted(&c, "proxy_set_effective_context")?;
            let id = id as u32;
            let state = c.data_mut();
            let known =
                id == state.root_context || state.stream.as_ref().is_some_and(|s| s.id == id);
            if !known {
                return Ok(status::BAD_ARGUMENT);
            }
            state.effective_context = id;
            Ok(status::OK)
        },
    )?;
    // Envoy's foreign functions (compress, declare_property, expr_*, …) are not emulated:
    // every name answers NotFound, as Envoy does for a name it does not register.
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |c: Ctx<'_>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> HostResult {
            restricted(&c, "proxy_call_foreign_function")?;
            Ok(status::NOT_FOUND)
        },
    )?;
    // No root context is ever pending done (the host does not shut VMs down).
    linker.func_wrap("env", "proxy_done", |c: Ctx<'_>| -> HostResult {
        restricted(&c, "proxy_done")?;
        Ok(status::NOT_FOUND)
    })?;
    Ok(())
}

fn metric(state: &VmState, id: i32) -> Option<(MetricKind, StatHandle)> {
    state.metric_ids.get(id as u32 as usize).copied().flatten()
}

fn metrics(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: Ctx<'_>, kind: i32, np: i32, nl: i32, ret: i32| -> HostResult {
            restricted(&c, "proxy_define_metric")?;
            let Some(metric_kind) = MetricKind::from_abi(kind) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let name = String::from_utf8_lossy(&read_or_return!(&mut c, np, nl)).into_owned();
            let state = c.data_mut();
            let slot = kind as usize;
            state.metric_counters[slot] = state.metric_counters[slot].wrapping_add(1);
            let id = state.metric_counters[slot] * 4 + kind as u32;
            let handle = lock(&state.shared.metrics).define(metric_kind, &name);
            let index = id as usize;
            if state.metric_ids.len() <= index {
                state.metric_ids.resize(index + 1, None);
            }
            state.metric_ids[index] = Some((metric_kind, handle));
            ok_or_memory(write_u32(&mut c, ret, id))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: Ctx<'_>, id: i32, ret: i32| -> HostResult {
            restricted(&c, "proxy_get_metric")?;
            // Envoy 1.40 answers BadArgument for an id it never defined (cpp-host: NotFound).
            let Some((kind, handle)) = metric(c.data(), id) else {
                return Ok(status::BAD_ARGUMENT);
            };
            if kind == MetricKind::Histogram {
                return Ok(status::BAD_ARGUMENT);
            }
            let value = lock(&c.data().shared.metrics).get(handle);
            ok_or_memory(write_u64(&mut c, ret, value as u64))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |c: Ctx<'_>, id: i32, value: i64| -> HostResult {
            restricted(&c, "proxy_record_metric")?;
            let Some((kind, handle)) = metric(c.data(), id) else {
                return Ok(status::NOT_FOUND);
            };
            let mut store = lock(&c.data().shared.metrics);
            match kind {
                // A counter's record adds (§3.7).
                MetricKind::Counter => store.add(handle, value),
                MetricKind::Gauge => store.set(handle, value),
                MetricKind::Histogram => store.record_histogram(handle, value as u64),
            }
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |c: Ctx<'_>, id: i32, delta: i64| -> HostResult {
            restricted(&c, "proxy_increment_metric")?;
            let Some((kind, handle)) = metric(c.data(), id) else {
                return Ok(status::NOT_FOUND);
            };
            match kind {
                MetricKind::Counter if delta <= 0 => Ok(status::BAD_ARGUMENT),
                MetricKind::Histogram => Ok(status::BAD_ARGUMENT),
                _ => {
                    lock(&c.data().shared.metrics).add(handle, delta);
                    Ok(status::OK)
                }
            }
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Envoy 1.40's setCopy removes every entry, then adds one (at the end; a pseudo-header
    // at the end of the pseudo-headers), as the real-Envoy conformance test saw.
    #[test]
    fn replace_removes_every_entry_then_adds_at_the_end() {
        let mut map: HeaderList = vec![
            (b":path".to_vec(), b"/".to_vec()),
            (b"a".to_vec(), b"1".to_vec()),
            (b"b".to_vec(), b"x".to_vec()),
            (b"a".to_vec(), b"2".to_vec()),
        ];
        replace_header(&mut map, b"a".to_vec(), b"9".to_vec());
        assert_eq!(map[2], (b"a".to_vec(), b"9".to_vec()));
        assert_eq!(map.len(), 3);
        add_header(&mut map, b":authority".to_vec(), b"h".to_vec());
        assert_eq!(map[1].0, b":authority".to_vec());
    }

    #[test]
    fn details_whitespace_becomes_underscore() {
        assert_eq!(replace_whitespace(b"a b\tc"), "a_b_c");
    }
}

//! Bad modules give a clear HostError, never a host panic (§1 imports, §2 instantiation).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use mfa_gate_host::{Clusters, Host, HostError, HostOptions};

fn load(wat: &str) -> Result<Host, HostError> {
    Host::load_bytes(wat.as_bytes(), HostOptions::default(), Clusters::new())
}

/// A minimal valid plugin in WAT: memory, allocator, marker, and configurable bodies.
fn module(imports: &str, initialize: &str, vm_start: &str, configure: &str) -> String {
    format!(
        r#"(module
  {imports}
  (memory (export "memory") 2)
  (global $next (mut i32) (i32.const 1024))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $at i32)
    global.get $next
    local.set $at
    global.get $next
    local.get $size
    i32.add
    global.set $next
    local.get $at)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "_initialize") {initialize})
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) {vm_start})
  (func (export "proxy_on_configure") (param i32 i32) (result i32) {configure})
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) i32.const 0)
)"#
    )
}

#[test]
fn minimal_wat_module_loads_and_serves() {
    let mut host = load(&module("", "", "i32.const 1", "i32.const 1")).unwrap();
    let mut upstream = common::ok_upstream();
    let exchange = host.handle(common::get("/", &[]), &mut upstream);
    assert_eq!(exchange.response.status, 200);
}

#[test]
fn not_wasm_is_rejected() {
    let error =
        Host::load_bytes(b"this is not wasm", HostOptions::default(), Clusters::new()).unwrap_err();
    assert!(matches!(error, HostError::NotWasm(_)), "{error:?}");
    assert!(
        error.to_string().starts_with("not a WebAssembly module"),
        "{error}"
    );
    let error = Host::load_bytes(
        b"\0asm\x01\0\0\0garbage",
        HostOptions::default(),
        Clusters::new(),
    )
    .unwrap_err();
    assert!(
        error.to_string().starts_with("invalid WebAssembly module"),
        "{error}"
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let error = Host::load(
        "/nonexistent/filter.wasm".as_ref(),
        HostOptions::default(),
        Clusters::new(),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("cannot read /nonexistent/filter.wasm"),
        "{error}"
    );
}

// §2: cpp-host rejects modules without a proxy_abi_version_* marker.
#[test]
fn missing_abi_marker_is_rejected() {
    let error = load(r#"(module (memory (export "memory") 1))"#).unwrap_err();
    assert_eq!(error, HostError::MissingAbiMarker);
    assert!(error.to_string().contains("proxy_abi_version_0_2_1"));
}

// §1: an import the host does not provide is named.
#[test]
fn unknown_import_is_named() {
    let wat = module(
        r#"(import "env" "proxy_teleport" (func (param i32)))"#,
        "",
        "i32.const 1",
        "i32.const 1",
    );
    let error = load(&wat).unwrap_err();
    assert_eq!(
        error,
        HostError::UnknownImport {
            module: "env".to_string(),
            name: "proxy_teleport".to_string()
        }
    );
    assert_eq!(
        error.to_string(),
        "the module imports env.proxy_teleport, which this host (like Envoy) does not provide"
    );
    let wat = module(
        r#"(import "wasi_snapshot_preview1" "sock_accept" (func (param i32 i32 i32) (result i32)))"#,
        "",
        "i32.const 1",
        "i32.const 1",
    );
    assert!(
        matches!(load(&wat).unwrap_err(), HostError::UnknownImport { name, .. } if name == "sock_accept")
    );
}

// A provided import with the wrong signature fails linking with a clear error.
#[test]
fn import_with_wrong_signature_is_rejected() {
    let wat = module(
        r#"(import "env" "proxy_log" (func (param i32)))"#,
        "",
        "i32.const 1",
        "i32.const 1",
    );
    let error = load(&wat).unwrap_err();
    assert!(matches!(error, HostError::Instantiate(_)), "{error:?}");
    assert!(error.to_string().contains("proxy_log"), "{error}");
}

#[test]
fn trap_in_initialize_is_start_trap() {
    let error = load(&module("", "unreachable", "i32.const 1", "i32.const 1")).unwrap_err();
    assert!(matches!(error, HostError::StartTrap(_)), "{error:?}");
    assert!(error.to_string().contains("unreachable"), "{error}");
}

// §2 step 1: hostcalls other than logging/WASI trap during _initialize (restricted_callback).
#[test]
fn restricted_hostcall_during_initialize_traps() {
    let wat = module(
        r#"(import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))"#,
        "i32.const 10 call $tick drop",
        "i32.const 1",
        "i32.const 1",
    );
    let error = load(&wat).unwrap_err();
    assert!(error.to_string().contains("restricted_callback"), "{error}");
}

#[test]
fn configure_false_and_vm_start_false() {
    let error = load(&module("", "", "i32.const 1", "i32.const 0")).unwrap_err();
    assert!(matches!(error, HostError::ConfigureFailed { .. }));
    let error = load(&module("", "", "i32.const 0", "i32.const 1")).unwrap_err();
    assert!(matches!(error, HostError::VmStartFailed { .. }));
    let error = load(&module("", "", "unreachable", "i32.const 1")).unwrap_err();
    match error {
        HostError::VmStartFailed { logs } => {
            assert!(logs
                .iter()
                .any(|l| l.level == "error" && l.message.contains("proxy_on_vm_start")))
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn export_with_wrong_signature_is_rejected() {
    let wat = r#"(module
  (memory (export "memory") 1)
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 0)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_request_headers") (param i32) (result i32) i32.const 0))"#;
    let error = load(wat).unwrap_err();
    assert!(
        matches!(&error, HostError::BadExport { name, .. } if name == "proxy_on_request_headers"),
        "{error:?}"
    );
}

#[test]
fn missing_allocator_is_rejected() {
    let wat = r#"(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1")))"#;
    let error = load(wat).unwrap_err();
    assert_eq!(
        error,
        HostError::MissingExport("malloc or proxy_on_memory_allocate")
    );
}

// Host never panics on a module that misbehaves at run time: a trap mid-stream is contained,
// and an allocator returning garbage gives InvalidMemoryAccess (here: get_buffer_bytes of the
// vm configuration with an allocator that answers an out-of-bounds pointer).
#[test]
fn bad_allocator_pointer_is_invalid_memory_access() {
    let wat = r#"(module
  (import "env" "proxy_get_buffer_bytes" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "status=?")
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 0x7fffff00)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (i32.store8 (i32.const 107)
      (i32.add (i32.const 48) (call $get (i32.const 6) (i32.const 0) (i32.const -1) (i32.const 200) (i32.const 204))))
    (drop (call $log (i32.const 2) (i32.const 100) (i32.const 8)))
    i32.const 1)
  (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1))"#;
    let options = HostOptions {
        vm_configuration: b"cfg".to_vec(),
        workers: 1,
        ..HostOptions::default()
    };
    let host = Host::load_bytes(wat.as_bytes(), options, Clusters::new()).unwrap();
    assert!(
        host.logs().iter().any(|l| &*l.message == "status=6"),
        "{:?}",
        host.logs()
    );
}

// A module cannot grow its memory past the host's cap (1 GiB): memory.grow answers -1.
#[test]
fn memory_growth_is_capped() {
    let wat = r#"(module
  (memory (export "memory") 1)
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 0)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (i32.eq (memory.grow (i32.const 16385)) (i32.const -1)))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1))"#;
    let options = HostOptions {
        workers: 1,
        ..HostOptions::default()
    };
    let host = Host::load_bytes(wat.as_bytes(), options, Clusters::new());
    assert!(host.is_ok(), "grow past 1 GiB must fail: {:?}", host.err());
}

// A callback that never returns is interrupted (after 5 s) and fails its VM instead of hanging
// the host; fail closed answers 503 wasm_fail_stream.
#[test]
fn endless_loop_is_interrupted() {
    let wat = r#"(module
  (memory (export "memory") 1)
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 0)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (loop $forever (br $forever))
    i32.const 0))"#;
    let options = HostOptions {
        workers: 1,
        ..HostOptions::default()
    };
    let mut host = Host::load_bytes(wat.as_bytes(), options, Clusters::new()).unwrap();
    let mut upstream = common::ok_upstream();
    let exchange = host.handle(common::get("/", &[]), &mut upstream);
    assert_eq!(exchange.response.status, 503);
    assert_eq!(
        exchange.response_code_details.as_deref(),
        Some("wasm_fail_stream")
    );
    assert!(host
        .worker_failed(0)
        .unwrap()
        .contains("proxy_on_request_headers"));
}

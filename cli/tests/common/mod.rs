//! Helpers shared by the CLI's integration tests: run the built `mfa-gate` binary, scratch
//! directories, and paths in the repository.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the workspace).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `mfa-gate` with `args` from the repository root.
pub fn mfa_gate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mfa-gate"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run mfa-gate")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the failure shape every bad input must have: exit 1, one line on stderr that
/// contains `needle`, and no panic or backtrace.
pub fn assert_one_line_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit status; stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "exactly one error line, got: {err}"
    );
    assert!(
        err.contains(needle),
        "stderr should mention {needle:?}: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mfa-gate-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.to_string_lossy().into_owned()
}

/// The project's proxy-wasm host binary, built beside `mfa-gate`.
pub fn host_binary() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_mfa-gate"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let host = dir.join("mfa-gate-host");
    assert!(
        host.exists(),
        "{} is missing: build it first with `cargo build -p mfa-gate-host` (make test does)",
        host.display()
    );
    host
}

/// The filter built for wasm32-wasip1 (release), required by end-to-end tests.
pub fn filter_wasm() -> PathBuf {
    let path = repo().join("target/wasm32-wasip1/release/mfa_gate.wasm");
    assert!(
        path.exists(),
        "{} is missing: build it first with `make wasm` (make test does)",
        path.display()
    );
    path
}

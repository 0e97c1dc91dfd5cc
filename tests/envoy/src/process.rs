//! Processes and files a test owns: a child killed on drop, a scratch directory (kept when
//! the test fails, for its logs), and the CLI (`mfa-gate`) for the demo, keys and tokens.

use crate::cli_binary;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A child process killed (and reaped) when dropped, pass or fail.
pub struct Running {
    child: Child,
}

impl Running {
    /// Starts `command`.
    pub fn spawn(command: &mut Command, what: &str) -> Running {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Running { child }
    }

    /// The exit status if it has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The child's stdout, once (when piped).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory under the system temp dir; removed on drop unless the test is failing.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// `$TMPDIR/mfa-gate-envoy-<pid>-<n>-<name>`.
    pub fn new(name: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("mfa-gate-envoy-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("scratch directory");
        Scratch { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `name` in it and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Runs `mfa-gate ARGS` and returns its output; panics with stderr when it fails.
pub fn cli(args: &[&str]) -> Output {
    let out = Command::new(cli_binary())
        .args(args)
        .output()
        .expect("run mfa-gate");
    assert!(
        out.status.success(),
        "mfa-gate {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `mfa-gate demo --print-json` on the given ports, with `extra` arguments; returns it running and the JSON it
/// printed (its cases, with concrete tokens). Both listeners are bound once it has printed.
pub fn start_demo(
    proxy: u16,
    idp: u16,
    app: u16,
    extra: &[String],
    scratch: &Scratch,
) -> (Running, serde_json::Value) {
    let log = std::fs::File::create(scratch.path().join("demo.log")).expect("demo log");
    let mut demo = Running::spawn(
        Command::new(cli_binary())
            .args(["demo", "--print-json"])
            .args(["--proxy-port", &proxy.to_string()])
            .args(["--idp-port", &idp.to_string()])
            .args(["--app-port", &app.to_string()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log),
        "mfa-gate demo",
    );
    let mut line = String::new();
    let stdout = demo.take_stdout().expect("demo stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the demo's first line");
    let printed = serde_json::from_str(&line).unwrap_or_else(|e| {
        let log = std::fs::read_to_string(scratch.path().join("demo.log")).unwrap_or_default();
        panic!("mfa-gate demo --print-json printed {line:?} ({e}); its stderr: {log}")
    });
    (demo, printed)
}

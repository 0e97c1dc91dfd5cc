//! Envoy itself validates every bootstrap shipped in envoy/: `envoy --mode validate -c FILE`
//! from the repository root (as a user runs it, so the relative wasm filename resolves).
//! Validation decodes the whole bootstrap with Envoy's protos (unknown fields, enums, value
//! shapes), applies their protoc-gen-validate rules, builds every filter — the wasm filter
//! loads the module and runs its on_configure — and fails on anything it refuses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{demo_databases, envoy_binary, release_wasm, repo_root, Scratch};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `envoy --mode validate -c FILE` from the repository root.
fn validate(file: &Path) -> Output {
    Command::new(envoy_binary())
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "--log-level",
            "warning",
        ])
        .arg("-c")
        .arg(file)
        .current_dir(repo_root())
        .output()
        .expect("run envoy --mode validate")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every YAML file under envoy/ that is an Envoy bootstrap (has `static_resources`).
fn shipped_bootstraps() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let doc: serde_yaml::Value =
                    serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap())
                        .unwrap_or(serde_yaml::Value::Null);
                if doc.get("static_resources").is_some() {
                    found.push(path);
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(&repo_root().join("envoy"), &mut found);
    found.sort();
    found
}

#[test]
fn envoy_accepts_every_shipped_bootstrap() {
    release_wasm(); // the bootstraps name the release build
    demo_databases(); // and envoy/envoy.yaml the demo's geoip databases
    let files = shipped_bootstraps();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(repo_root()).unwrap().display().to_string())
        .collect();
    for expected in ["envoy/envoy.yaml", "envoy/envoy-jwt-authn.yaml"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    for (file, name) in files.iter().zip(&names) {
        let out = validate(Path::new(name));
        let output = text(&out);
        assert!(
            out.status.success() && output.contains(&format!("configuration '{name}' OK")),
            "envoy --mode validate -c {name} ({}): {output}",
            out.status
        );
        assert!(file.is_file());
    }
}

/// The check has teeth: what the files could get wrong, Envoy refuses.
#[test]
fn envoy_refuses_broken_bootstraps() {
    let original = std::fs::read_to_string(repo_root().join("envoy/envoy.yaml")).unwrap();
    let wasm = release_wasm();
    demo_databases();
    let scratch = Scratch::new("validate");
    let broken = [
        (
            "a misspelt enum",
            "failure_policy: FAIL_CLOSED",
            "failure_policy: FAIL_CLOSE",
            "FAIL_CLOSE",
        ),
        (
            "an unknown field",
            "merge_slashes: true",
            "merge_slashes: true\n          merge_slashs: true",
            "merge_slashs",
        ),
        // protoc-gen-validate: a cluster needs a name (min_len 1), a schema check cannot see it.
        (
            "an empty cluster name",
            "- name: demo_app",
            "- name: \"\"",
            "ClusterValidationError.Name",
        ),
        // The filter's own on_configure refuses an unknown level: Envoy refuses the config.
        (
            "an invalid plugin configuration",
            "\"level\": \"push\"}",
            "\"level\": \"push_only\"}",
            "push_only",
        ),
    ];
    for (what, from, to, mentioned) in broken {
        assert!(
            original.contains(from),
            "{what}: {from:?} in envoy/envoy.yaml"
        );
        let yaml = original.replacen(from, to, 1).replace(
            "target/wasm32-wasip1/release/mfa_gate.wasm",
            &wasm.to_string_lossy(),
        );
        let file = scratch.write(&format!("{}.yaml", what.replace(' ', "-")), yaml);
        let out = validate(&file);
        let output = text(&out);
        assert!(!out.status.success(), "{what}: Envoy accepted it: {output}");
        assert!(
            output.contains(mentioned),
            "{what}: the error names {mentioned:?}: {output}"
        );
    }
}

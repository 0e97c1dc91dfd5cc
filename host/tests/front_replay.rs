//! `mfa-gate-host replay` end to end: the built binary, the fixture filters, JSON lines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> PathBuf {
    let path = workspace().join("target/wasm32-wasip1/release").join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first: make wasm",
        path.display()
    );
    path
}

fn replay(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfa-gate-host"))
        .arg("replay")
        .args(args)
        .current_dir(workspace())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn lines(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn header<'a>(headers: &'a Value, name: &str) -> Option<&'a str> {
    headers
        .as_array()?
        .iter()
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair[1].as_str())
}

#[test]
fn noop_filter_passes_requests_and_reports_malformed_lines() {
    let wasm = fixture("noop_filter.wasm");
    let input = concat!(
        r#"{"method":"POST","path":"/echo","authority":"app","headers":{"x-a":["1","2"]},"body":"ping"}"#,
        "\n",
        "this is not json\n",
        r#"{"path":"relative"}"#,
        "\n",
        r#"{"path":"/x","unknown_field":true}"#,
        "\n",
        r#"{"advance_ms":2500}"#,
        "\n",
        r#"{"path":"/teapot","upstream":{"status":418,"headers":{"x-up":"1"},"body":"short and stout"}}"#,
        "\n",
    );
    let out = lines(&replay(
        &[
            "--wasm",
            wasm.to_str().unwrap(),
            "--start-unix-ms",
            "1700000000000",
        ],
        input,
    ));
    assert_eq!(out.len(), 6, "{out:?}");

    assert_eq!(out[0]["status"], 200);
    assert_eq!(out[0]["body"], "ping", "default upstream echoes the body");
    assert_eq!(out[0]["reached_upstream"], true);
    let upstream = &out[0]["upstream_headers"];
    assert_eq!(header(upstream, ":method"), Some("POST"));
    assert_eq!(header(upstream, ":authority"), Some("app"));
    assert_eq!(header(upstream, "x-forwarded-proto"), Some("http"));
    assert_eq!(
        upstream
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p[0] == "x-a")
            .count(),
        2
    );

    assert!(
        out[1]["error"].as_str().unwrap().starts_with("line 2: "),
        "{}",
        out[1]
    );
    assert!(
        out[2]["error"]
            .as_str()
            .unwrap()
            .contains("must start with '/'"),
        "{}",
        out[2]
    );
    assert!(
        out[3]["error"].as_str().unwrap().contains("unknown_field"),
        "{}",
        out[3]
    );
    assert_eq!(out[4], serde_json::json!({"advanced_ms": 2500}));
    assert_eq!(out[5]["status"], 418);
    assert_eq!(out[5]["body"], "short and stout");
    assert_eq!(header(&out[5]["headers"], "x-up"), Some("1"));
}

#[test]
fn canned_cluster_replies_are_served_in_order_and_the_last_repeats() {
    let wasm = fixture("conformance_filter.wasm");
    let dir = std::env::temp_dir().join(format!("front-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let canned = dir.join("auth.json");
    std::fs::write(
        &canned,
        r#"[{"status":500,"body":"busy"},{"status":201,"headers":{"x-k":"v"},"body":"granted"}]"#,
    )
    .unwrap();
    let call = r#"{"path":"/c","headers":{"x-conformance":"callout","x-cluster":"auth"}}"#;
    let deny = r#"{"path":"/d","headers":{"x-conformance":"callout","x-cluster":"auth","x-on-reply":"deny"}}"#;
    let input = format!("{call}\n{call}\n{deny}\n");
    let cluster = format!("auth={}", canned.display());
    let out = lines(&replay(
        &["--wasm", wasm.to_str().unwrap(), "--cluster", &cluster],
        &input,
    ));
    assert_eq!(header(&out[0]["headers"], "x-r-call-status"), Some("500"));
    assert_eq!(header(&out[0]["headers"], "x-r-call-body"), Some("busy"));
    assert_eq!(header(&out[1]["headers"], "x-r-call-status"), Some("201"));
    assert_eq!(header(&out[1]["headers"], "x-r-call-body"), Some("granted"));
    assert_eq!(
        header(&out[1]["upstream_headers"], "x-callout-status"),
        Some("201")
    );
    // The filter's local reply after the (repeated) last canned answer.
    assert_eq!(out[2]["status"], 403);
    assert_eq!(out[2]["body"], "callout denied");
    assert_eq!(out[2]["reached_upstream"], false);
    assert_eq!(header(&out[2]["headers"], "x-r-call-status"), Some("201"));
    let logs = out[2]["logs"].as_array().unwrap();
    assert!(logs.iter().any(|l| l["message"]
        .as_str()
        .unwrap()
        .starts_with("lifecycle request_headers")));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn canned_delay_past_the_call_timeout_is_a_504_for_the_filter() {
    let wasm = fixture("conformance_filter.wasm");
    let canned =
        std::env::temp_dir().join(format!("front-replay-delay-{}.json", std::process::id()));
    std::fs::write(
        &canned,
        r#"[{"status":200,"delay_ms":500,"body":"late"},{"status":200,"delay_ms":5000}]"#,
    )
    .unwrap();
    let call = r#"{"path":"/c","headers":{"x-conformance":"callout","x-cluster":"auth","x-timeout-ms":"1000"}}"#;
    let cluster = format!("auth={}", canned.display());
    let out = lines(&replay(
        &["--wasm", wasm.to_str().unwrap(), "--cluster", &cluster],
        &format!("{call}\n{call}\n"),
    ));
    assert_eq!(header(&out[0]["headers"], "x-r-call-status"), Some("200"));
    assert_eq!(header(&out[0]["headers"], "x-r-call-body"), Some("late"));
    assert_eq!(header(&out[1]["headers"], "x-r-call-status"), Some("504"));
    std::fs::remove_file(&canned).ok();
}

#[test]
fn configure_failure_exits_non_zero_with_the_filter_error() {
    let wasm = fixture("conformance_filter.wasm");
    let output = replay(
        &["--wasm", wasm.to_str().unwrap(), "--plugin-config", "fail"],
        "",
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("proxy_on_configure failed"), "{stderr}");
    assert!(stderr.contains("configuration rejected"), "{stderr}");
}

#[test]
fn not_a_wasm_file_exits_non_zero_with_one_line() {
    let output = replay(&["--wasm", "Cargo.toml"], "");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: Cargo.toml: "), "{stderr}");
}

#[test]
fn config_yaml_gives_the_filter_its_configuration_and_route_names() {
    fixture("conformance_filter.wasm");
    let template =
        std::fs::read_to_string(workspace().join("host/tests/data/filter.yaml")).unwrap();
    let yaml = std::env::temp_dir().join(format!("front-replay-{}.yaml", std::process::id()));
    std::fs::write(
        &yaml,
        template
            .replace("UPSTREAM_PORT", "9")
            .replace("DOWN_PORT", "9"),
    )
    .unwrap();
    let input = r#"{"path":"/anything","headers":{"x-conformance":"properties"}}"#;
    let output = replay(&["--config", yaml.to_str().unwrap()], &format!("{input}\n"));
    let out = lines(&output);
    assert_eq!(out[0]["reached_upstream"], true, "{}", out[0]);
    let headers = &out[0]["headers"];
    assert_eq!(header(headers, "x-r-plugin-name"), Some("conformance"));
    assert_eq!(header(headers, "x-r-root-id"), Some("conformance_root"));
    assert_eq!(header(headers, "x-r-route"), Some("app"));
    assert_eq!(header(headers, "x-r-cluster"), Some("app"));
    std::fs::remove_file(&yaml).ok();
}

#[test]
fn usage_errors_exit_2() {
    let output = replay(&[], "");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--wasm FILE or --config"));
}

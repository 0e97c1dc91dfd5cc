//! The demo's step-up in a real browser: the shipped demo gateway (envoy/envoy.yaml, the
//! release filter, `mfa-gate demo`) walked by headless Chromium through Selenium
//! (tests/browser/step_up.py), one scenario per fresh browser profile, each saving its
//! screenshots in `target/browser/<scenario>/`.
//!
//! Which sign-in flow the gateway runs is found here, over plain HTTP, independently of the
//! script: when its redirect to the IdP carries `response_type=code` with a nonce or PKCE's
//! `code_challenge` (the filter finishing the sign-in itself; the legacy redirect has
//! response_type=code alone), the tampered-`state` scenario must have run, so the test cannot
//! silently stop checking the callback once that flow lands.
//!
//! Needs Chromium, chromedriver and Selenium (`make setup` installs them); fails with that
//! advice when one is missing, never skips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use mfa_gate_envoy::{http_get, Gateway, GatewayBuilder};
use std::path::{Path, PathBuf};
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// What scripts/install-selenium.sh pins.
const SELENIUM_VERSION: &str = "4.51.0";
const INSTALL_HINT: &str = "run `make setup` (as root on Debian it installs chromium and \
     chromium-driver with apt-get, and selenium into .venv); otherwise `apt-get install chromium \
     chromium-driver` and `./scripts/install-selenium.sh`";

/// The repository root (tests/envoy/../..).
fn repo() -> PathBuf {
    mfa_gate_envoy::repo_root()
}

/// The venv's Python with Selenium at the pinned version; panics with the install hint when
/// Chromium, chromedriver, the venv or Selenium is missing.
fn browser_parts() -> PathBuf {
    for binary in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(binary).is_file(),
            "{binary} is missing; the browser test needs it: {INSTALL_HINT}"
        );
    }
    let python = repo().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: {INSTALL_HINT}",
        python.display()
    );
    let probe = Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m, selenium; print(m.version('selenium'))",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let version = String::from_utf8_lossy(&probe.stdout).trim().to_string();
    assert!(
        probe.status.success() && version == SELENIUM_VERSION,
        "selenium {SELENIUM_VERSION} is not installed in {} (found {version:?}): {INSTALL_HINT}\n{}",
        python.display(),
        String::from_utf8_lossy(&probe.stderr)
    );
    python
}

/// Which flow the gateway runs, asked over HTTP: a push session's browser request for
/// /admin/users is sent to the IdP's /authorize, with a nonce or PKCE in the new flow.
fn gateway_flow(gateway: &Gateway) -> &'static str {
    let login = http_get(gateway.idp_port, "/login/push");
    assert_eq!(login.status, 302, "{}", login.text());
    let set_cookie = login
        .header("set-cookie")
        .expect("the IdP's session cookie");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let redirect = gateway.get(
        "/admin/users",
        &[("accept", "text/html"), ("cookie", cookie.as_str())],
    );
    assert_eq!(redirect.status, 302, "{}", redirect.text());
    let location = redirect.header("location").expect("location").to_string();
    let authorize = format!("http://127.0.0.1:{}/authorize?", gateway.idp_port);
    assert!(location.starts_with(&authorize), "{location}");
    // The legacy redirect has response_type=code too, with the return path as `state`; the
    // sign-in the filter finishes itself adds a nonce and PKCE's code_challenge.
    let query = location.split_once('?').map_or("", |(_, q)| q);
    let has = |name: &str| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(name))
    };
    let code = query.split('&').any(|pair| pair == "response_type=code");
    if code && (has("code_challenge") || has("nonce")) {
        "code"
    } else {
        "legacy"
    }
}

/// Where a scenario runs: the gateway's and the IdP's URLs, and the artefact folder under
/// `target/browser/`.
struct Site<'a> {
    gateway: String,
    idp: String,
    folder: &'a str,
    /// Quoted when a scenario fails (Envoy's log tail).
    log: Box<dyn Fn() -> String + 'a>,
}

impl<'a> Site<'a> {
    fn demo(gateway: &'a Gateway) -> Site<'a> {
        Site {
            gateway: format!("http://127.0.0.1:{}", gateway.port),
            idp: format!("http://127.0.0.1:{}", gateway.idp_port),
            folder: "",
            log: Box::new(|| format!("Envoy:\n{}", gateway.log_tail())),
        }
    }
}

/// Runs tests/browser/step_up.py on one scenario. Returns whether it passed, what it
/// printed and the artefact folder.
fn step_up(python: &Path, site: &Site, scenario: &str) -> (bool, String, PathBuf) {
    let out = repo()
        .join("target/browser")
        .join(site.folder)
        .join(scenario);
    let run = Command::new(python)
        .arg(repo().join("tests/browser/step_up.py"))
        .args(["--gateway", &site.gateway, "--idp", &site.idp])
        .arg("--out")
        .arg(&out)
        .args(["--scenario", scenario])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    (run.status.success(), printed, out)
}

/// Runs one scenario; asserts it passed and that the screenshots it names, and `expected`
/// among them, exist. Returns its result.json.
fn run_scenario(
    python: &Path,
    site: &Site,
    scenario: &str,
    expected: &[&str],
) -> serde_json::Value {
    let (passed, printed, out) = step_up(python, site, scenario);
    assert!(
        passed,
        "browser scenario {scenario} failed, artefacts in {}:\n{printed}\n{}",
        out.display(),
        (site.log)()
    );
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("result.json")).unwrap_or_else(|e| {
            panic!(
                "{scenario}: no result.json in {} ({e}): {printed}",
                out.display()
            )
        }),
    )
    .expect("result.json");
    let shots: Vec<&str> = result["screenshots"]
        .as_array()
        .expect("screenshots")
        .iter()
        .map(|s| s.as_str().expect("a file name"))
        .collect();
    for name in expected {
        assert!(
            shots.contains(name),
            "{scenario}: {name} not among {shots:?}"
        );
    }
    for name in &shots {
        let size = std::fs::metadata(out.join(name)).map_or(0, |m| m.len());
        assert!(
            size > 1000,
            "{scenario}: {name} is missing or empty ({size} bytes)"
        );
    }
    result
}

#[test]
fn the_demo_step_up_holds_in_chromium() {
    let python = browser_parts();
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml").start();
    let flow = gateway_flow(&gateway);
    let site = Site::demo(&gateway);

    // (a) push, then the passkey on the IdP's page, then /admin/users lets the browser in.
    let signed_in = run_scenario(
        &python,
        &site,
        "push-then-passkey",
        &["01-reauthenticate.png", "02-app.png"],
    );
    assert_eq!(signed_in["flow"], flow, "the script saw another flow");

    // (b) a push session that does not re-authenticate is never let in.
    let stays_out = run_scenario(
        &python,
        &site,
        "push-stays-out",
        &["01-reauthenticate.png", "02-still-reauthenticate.png"],
    );
    assert_eq!(stays_out["flow"], flow);

    // (c) the callback with a tampered state: only the code flow has one, and there it
    // must run.
    let tampered = if flow == "code" {
        vec![
            "01-reauthenticate.png",
            "02-sign-in-failed.png",
            "03-still-reauthenticate.png",
        ]
    } else {
        vec!["01-reauthenticate.png"]
    };
    let state = run_scenario(&python, &site, "tampered-state", &tampered);
    assert_eq!(state["flow"], flow);
    assert_eq!(
        state["ran"],
        flow == "code",
        "tampered-state ran: {}; the gateway runs the {flow} flow (it must run exactly on the \
         code flow)",
        state["ran"]
    );

    // Every /admin/users the browsers asked for without a passkey was a step-up, and the
    // passkey's one was allowed.
    assert!(gateway.counter("wasmcustom.mfa_gate.decision.step_up") >= 4);
    assert!(gateway.counter("wasmcustom.mfa_gate.decision.allow") >= 1);
    gateway.assert_no_wasm_failure();
}

/// tests/browser/fake_code_flow.py on free ports; killed when dropped.
struct FakeCodeFlow {
    child: std::process::Child,
    gateway: String,
    idp: String,
}

impl FakeCodeFlow {
    fn start(python: &Path, args: &[&str]) -> FakeCodeFlow {
        use std::io::BufRead;
        let mut child = Command::new(python)
            .arg(repo().join("tests/browser/fake_code_flow.py"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start fake_code_flow.py: {e}"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the fake's first line");
        let url = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .unwrap_or_else(|| panic!("fake_code_flow.py printed {line:?}"))
                .to_string()
        };
        FakeCodeFlow {
            gateway: url("gateway="),
            idp: url("idp="),
            child,
        }
    }

    fn site<'a>(&self, folder: &'a str) -> Site<'a> {
        Site {
            gateway: self.gateway.clone(),
            idp: self.idp.clone(),
            folder,
            log: Box::new(String::new),
        }
    }
}

impl Drop for FakeCodeFlow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The script's own code-flow path, until the shipped demo runs that flow: against a
/// stand-in gateway and IdP that do (fake_code_flow.py), every scenario runs and passes,
/// and a callback that takes any `state` is caught.
#[test]
fn the_script_checks_the_code_flow_and_catches_a_callback_that_takes_any_state() {
    let python = browser_parts();
    let fake = FakeCodeFlow::start(&python, &[]);
    let site = fake.site("fake-code-flow");
    let signed_in = run_scenario(&python, &site, "push-then-passkey", &["02-app.png"]);
    assert_eq!(signed_in["flow"], "code");
    let state = run_scenario(
        &python,
        &site,
        "tampered-state",
        &["02-sign-in-failed.png", "03-still-reauthenticate.png"],
    );
    assert_eq!(state["ran"], true);
    drop(fake);

    let broken = FakeCodeFlow::start(&python, &["--accept-any-state"]);
    let (passed, printed, _) = step_up(&python, &broken.site("fake-any-state"), "tampered-state");
    assert!(
        !passed,
        "a callback that takes a tampered state passed:\n{printed}"
    );
    assert!(
        printed.contains("FAILED at step: open the callback with a tampered state")
            && printed.contains("Sign-in failed"),
        "{printed}"
    );
}

//! Every module the project ships loads and answers in real Envoy: the release build
//! (`make wasm`), `dist/mfa_gate.wasm` (`make dist`: what the OCI image carries) and the
//! module an Istio or Envoy Gateway proxy gets out of the OCI image `make oci` builds (taken
//! out with those platforms' own image-fetcher rules). Each runs envoy/envoy.yaml with the
//! demo IdP and app.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

#[path = "../../../cli/tests/common/oci_image.rs"]
mod oci_image;

use mfa_gate_envoy::{release_wasm, repo_root, GatewayBuilder, Scratch};
use oci_image::{OciLayout, Variant};
use std::path::PathBuf;

/// The demo's push session on envoy/envoy.yaml with `wasm`: step-up (RFC 9470 401) on the
/// admin route, 200 on the API, both decisions counted, no wasm VM failure.
fn answers_like_the_demo(wasm: PathBuf) {
    let gateway = GatewayBuilder::shipped("envoy/envoy.yaml")
        .wasm_file(wasm)
        .start();
    let bearer = format!("Bearer {}", gateway.token("push"));

    let admin = gateway.get("/admin/users", &[("authorization", &bearer)]);
    assert_eq!(admin.status, 401, "{}", admin.text());
    let challenge = admin.header("www-authenticate").unwrap_or("");
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\""),
        "step-up challenge: {challenge:?}"
    );
    let profile = gateway.get("/api/profile", &[("authorization", &bearer)]);
    assert_eq!(profile.status, 200, "{}", profile.text());
    assert_eq!(profile.json()["headers"]["x-mfa-gate-level"], "push");

    assert_eq!(gateway.counter("wasmcustom.mfa_gate.decision.step_up"), 1);
    assert_eq!(gateway.counter("wasmcustom.mfa_gate.decision.allow"), 1);
    gateway.assert_no_wasm_failure();
}

/// `dist/mfa_gate.wasm`, which must be the wasm-opt output, not a copy of the release build.
fn dist_wasm() -> PathBuf {
    let dist = repo_root().join("dist/mfa_gate.wasm");
    let optimised = std::fs::read(&dist).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: build it first with `make dist` (make test does; needs binaryen's wasm-opt)",
            dist.display()
        )
    });
    let release = std::fs::read(release_wasm()).expect("release module");
    assert!(
        optimised.len() < release.len(),
        "dist/mfa_gate.wasm ({} bytes) is not smaller than the release build ({} bytes): not wasm-opt's output",
        optimised.len(),
        release.len()
    );
    dist
}

#[test]
fn release_build_loads_and_answers_in_envoy() {
    answers_like_the_demo(release_wasm());
}

#[test]
fn dist_module_loads_and_answers_in_envoy() {
    answers_like_the_demo(dist_wasm());
}

#[test]
fn module_pulled_from_the_oci_image_loads_and_answers_in_envoy() {
    let dist = dist_wasm();
    let scratch = Scratch::new("artefacts-oci");
    let out = scratch.path().join("oci-out");
    oci_image::build(&repo_root(), &dist, &out);
    let layout = OciLayout::open(&out.join("oci")).expect("OCI layout");
    let pulled = layout
        .pull(mfa_gate::VERSION)
        .expect("Istio's and Envoy Gateway's fetchers accept the image");
    assert_eq!(pulled.variant, Variant::Compat);
    // What the platforms hand Envoy, under the name the harness expects of mfa-gate.
    let pulled_wasm = scratch.write("mfa_gate.wasm", &pulled.module);
    answers_like_the_demo(pulled_wasm);
}

//! `make oci` (scripts/build-oci.sh): the OCI image layout Istio's WasmPlugin and Envoy
//! Gateway pull. Checks every digest and size against the blobs, and the media types.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod common;

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;

fn blob(layout: &Path, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().expect("digest");
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).expect("blob present");
    assert_eq!(
        format!("{:x}", Sha256::digest(&bytes)),
        hex,
        "blob content matches its digest"
    );
    assert_eq!(
        descriptor["size"].as_u64(),
        Some(bytes.len() as u64),
        "size of {digest}"
    );
    bytes
}

#[test]
fn build_oci_writes_a_valid_wasm_image_layout() {
    let wasm = common::filter_wasm();
    let out = common::scratch("oci");
    let status = Command::new("bash")
        .arg(common::repo().join("scripts/build-oci.sh"))
        .env("OCI_OUT", &out)
        .env("WASM", &wasm)
        .output()
        .expect("run build-oci.sh");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let layout = out.join("oci");

    let marker: Value =
        serde_json::from_slice(&std::fs::read(layout.join("oci-layout")).expect("oci-layout"))
            .expect("json");
    assert_eq!(marker["imageLayoutVersion"], "1.0.0");
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(index["schemaVersion"], 2);
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        mfa_gate::VERSION
    );

    let manifest: Value = serde_json::from_slice(&blob(&layout, entry)).expect("manifest JSON");
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.module.wasm.config.v1+json"
    );
    let _config: Value =
        serde_json::from_slice(&blob(&layout, &manifest["config"])).expect("config JSON");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "Istio's compat variant is single-layered");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.module.wasm.content.layer.v1+wasm"
    );
    let module = blob(&layout, &layers[0]);
    assert_eq!(
        module,
        std::fs::read(&wasm).expect("wasm"),
        "the layer is the filter itself"
    );
    assert_eq!(&module[..4], b"\0asm");

    let tarball = out.join(format!("mfa-gate-oci-{}.tar", mfa_gate::VERSION));
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(&tarball)
        .output()
        .expect("tar");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("./index.json") && listing.contains("./oci-layout"),
        "{listing}"
    );
}

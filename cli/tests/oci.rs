//! `make oci` (scripts/build-oci.sh): the OCI image Istio's WasmPlugin and Envoy Gateway's
//! EnvoyExtensionPolicy pull. The built layout is pulled with the platforms' own image-fetcher
//! rules (common/oci_image.rs: replayed from their source, versions cited there),
//! and the checksum `make oci` prints is the one those fetchers compare `sha256` with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

mod common;
#[path = "common/oci_image.rs"]
mod oci_image;

use oci_image::{extract, sha256_hex, OciLayout, Variant};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

/// The value build-oci.sh tells the user to put in spec.sha256 / code.image.sha256.
fn printed_pin(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.contains("spec.sha256") && l.contains("code.image.sha256"))
        .unwrap_or_else(|| panic!("no sha256 pin line in:\n{stdout}"));
    line.rsplit(' ').next().expect("value").to_string()
}

fn built(name: &str) -> (PathBuf, PathBuf, String) {
    let wasm = common::filter_wasm();
    let out = common::scratch(name);
    let stdout = oci_image::build(&common::repo(), &wasm, &out);
    (wasm, out, stdout)
}

#[test]
fn istio_and_envoy_gateway_fetchers_take_the_module_out_of_the_image() {
    let (wasm, out, stdout) = built("oci-pull");
    let layout = OciLayout::open(&out.join("oci")).expect("layout");
    let pulled = layout
        .pull(mfa_gate::VERSION)
        .expect("the fetchers accept it");
    assert_eq!(pulled.variant, Variant::Compat, "the compat variant");
    assert_eq!(
        pulled.module,
        std::fs::read(&wasm).expect("wasm"),
        "plugin.wasm is the module, byte for byte"
    );

    // spec.sha256 / code.image.sha256 are compared with the manifest digest, not the module's.
    let pin = printed_pin(&stdout);
    assert_eq!(pin, pulled.manifest_digest);
    assert_ne!(pin, sha256_hex(&pulled.module));
    assert!(
        stdout.contains(&format!("@sha256:{pin}")),
        "the digest-pinned url: {stdout}"
    );
}

#[test]
fn image_is_a_standard_oci_image_docker_and_podman_can_read() {
    let (_, out, _) = built("oci-layout");
    let layout = OciLayout::open(&out.join("oci")).expect("layout");
    let manifest: Value =
        serde_json::from_slice(&layout.manifest_bytes(mfa_gate::VERSION).expect("manifest"))
            .expect("JSON");
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["annotations"]["module.wasm.image/variant"], "compat",
        "the Wasm image spec's compat variant annotation"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let config: Value =
        serde_json::from_slice(&layout.blob(&manifest["config"]).expect("config")).expect("JSON");
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip1");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1);
    // The config's diff_id is the uncompressed layer's digest (image-spec config.md).
    let gz = layout.blob(&layers[0]).expect("layer");
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut tar)
        .expect("gunzip");
    assert_eq!(
        config["rootfs"],
        json!({"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&tar))]})
    );

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

#[test]
fn the_same_module_gives_the_same_manifest_digest() {
    let (_, _, first) = built("oci-repro-1");
    let (_, _, second) = built("oci-repro-2");
    assert_eq!(
        printed_pin(&first),
        printed_pin(&second),
        "a pinned sha256 stays valid across rebuilds"
    );
}

/// The replayed rules refuse what the platforms refuse: the check can fail.
#[test]
fn fetcher_rules_refuse_a_single_raw_wasm_layer_and_accept_the_two_layer_artefact() {
    let module = b"\0asm\x01\0\0\0".to_vec();
    let wasm_layer = json!({"mediaType": "application/vnd.module.wasm.content.layer.v1+wasm",
        "digest": "sha256:w", "size": 8});
    let config_layer = json!({"mediaType": "application/vnd.module.wasm.config.v1+json",
        "digest": "sha256:c", "size": 2});
    let blob = |d: &Value| -> Result<Vec<u8>, String> {
        Ok(if d["digest"] == "sha256:w" {
            module.clone()
        } else {
            b"{}".to_vec()
        })
    };
    let manifest = |layers: Vec<Value>| {
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_layer, "layers": layers})
    };

    // The image `make oci` built before: one raw module layer.
    let refused = extract(&manifest(vec![wasm_layer.clone()]), blob).unwrap_err();
    assert!(
        refused.contains("could not parse as compat variant: invalid media type")
            && refused.contains("number of layers must be 2 but got 1"),
        "{refused}"
    );

    let (variant, got) =
        extract(&manifest(vec![config_layer.clone(), wasm_layer]), blob).expect("oci variant");
    assert_eq!((variant, &got), (Variant::OciArtifact, &module));

    // A Docker manifest takes only the Docker layer type.
    let mut docker = manifest(vec![
        json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": "sha256:w", "size": 8}),
    ]);
    docker["mediaType"] = json!("application/vnd.docker.distribution.manifest.v2+json");
    assert!(extract(&docker, blob)
        .unwrap_err()
        .contains("as Docker container: invalid media type"));
}

//! The OCI image `make oci` builds (scripts/build-oci.sh, [`build`]), pulled by the rules with
//! which Istio's and Envoy Gateway's Wasm image fetchers accept an image and take the module
//! out of it, replayed on the OCI layout ([`OciLayout::pull`]). The rules are written from
//! the platforms' source, not from our own idea of a Wasm image:
//!
//! - Istio `pkg/wasm/imagefetcher.go` (`PrepareFetch`, `extractDockerImage`,
//!   `extractOCIStandardImage`, `extractWasmPluginBinary`, `extractOCIArtifactImage`) and
//!   `pkg/wasm/cache.go` (`isValidWasmBinary`, the checksum comparison), identical in these
//!   rules from 1.22.0 to 1.31.0-rc.0 (commit 86c9f01);
//! - Envoy Gateway `internal/wasm/imagefetcher.go` and `internal/wasm/cache.go`, the same
//!   rules from v1.2.0 to v1.9.0 (commit d32f282), plus a 256 MiB limit on the module.
//!
//! Both take the manifest the reference names; its digest (go-containerregistry's
//! `img.Digest()`: sha256 of the manifest bytes) is the checksum `spec.sha256` /
//! `code.image.sha256` is compared with. Then, in this order: a Docker schema 2 manifest →
//! the Docker variant; otherwise the "compat" variant, else the "oci" artefact variant. The
//! registry client checks every blob against its digest, as [`OciLayout::blob`] does.
//! Shared with tests/envoy's artefact test (included there by path).
#![allow(dead_code)]

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `types.DockerManifestSchema2` (go-containerregistry).
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// `types.DockerLayer`: the Docker variant's layer.
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// `types.OCILayer`: the compat variant's layer.
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// `wasmLayerMediaType` in `extractOCIArtifactImage`: the oci variant's raw module layer.
const WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// `wasmPluginFileName` in `extractWasmPluginBinary`.
const PLUGIN_FILE: &str = "plugin.wasm";
/// Istio's `ISTIO_WASM_MAX_BINARY_SIZE_BYTES` default and Envoy Gateway's `maxWasmSize`.
const MAX_WASM_SIZE: u64 = 256 * 1024 * 1024;

/// Runs scripts/build-oci.sh (in `repo`) on `wasm` with output in `out` (the layout is
/// `out/oci`); returns what it printed. Panics with its stderr when it fails.
pub fn build(repo: &Path, wasm: &Path, out: &Path) -> String {
    let run = Command::new("bash")
        .arg(repo.join("scripts/build-oci.sh"))
        .env("WASM", wasm)
        .env("OCI_OUT", out)
        .output()
        .expect("run scripts/build-oci.sh");
    assert!(
        run.status.success(),
        "build-oci.sh: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8_lossy(&run.stdout).into_owned()
}

/// Which of the fetchers' image variants the module was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Docker schema 2 manifest, last layer a Docker rootfs tar.gz holding plugin.wasm.
    Docker,
    /// OCI manifest, last layer an OCI tar+gzip layer holding plugin.wasm.
    Compat,
    /// OCI manifest with exactly two layers, one of them the raw module.
    OciArtifact,
}

/// What a fetcher pulls for one image reference.
#[derive(Debug)]
pub struct Pulled {
    /// Hex sha256 of the manifest bytes: what `spec.sha256` / `code.image.sha256` must equal.
    pub manifest_digest: String,
    /// The variant the module came out of.
    pub variant: Variant,
    /// The module as the fetcher hands it to Envoy.
    pub module: Vec<u8>,
}

/// An OCI image layout on disk (`oci-layout`, `index.json`, `blobs/sha256/…`).
pub struct OciLayout {
    dir: PathBuf,
}

impl OciLayout {
    /// The layout in `dir`; its `oci-layout` marker must name version 1.0.0.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let marker: Value = read_json(&dir.join("oci-layout"))?;
        if marker["imageLayoutVersion"] != "1.0.0" {
            return Err(format!("oci-layout: {marker}"));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The raw bytes of the manifest tagged `tag` in `index.json` (what a push of `dir:tag`
    /// puts in the registry under that tag).
    pub fn manifest_bytes(&self, tag: &str) -> Result<Vec<u8>, String> {
        let index: Value = read_json(&self.dir.join("index.json"))?;
        let entry = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .ok_or_else(|| format!("index.json has no manifest tagged {tag}"))?;
        self.blob(entry)
    }

    /// The blob a descriptor names, checked against its digest and size.
    pub fn blob(&self, descriptor: &Value) -> Result<Vec<u8>, String> {
        let digest = descriptor["digest"]
            .as_str()
            .ok_or_else(|| format!("descriptor without digest: {descriptor}"))?;
        let hex = digest
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("not a sha256 digest: {digest}"))?;
        let path = self.dir.join("blobs/sha256").join(hex);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if sha256_hex(&bytes) != hex {
            return Err(format!("blob {digest}: content does not match its digest"));
        }
        if descriptor["size"].as_u64() != Some(bytes.len() as u64) {
            return Err(format!(
                "blob {digest}: size {} in the descriptor, {} on disk",
                descriptor["size"],
                bytes.len()
            ));
        }
        Ok(bytes)
    }

    /// Pulls `tag` as the fetchers do.
    pub fn pull(&self, tag: &str) -> Result<Pulled, String> {
        let manifest_bytes = self.manifest_bytes(tag)?;
        let manifest: Value = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| format!("manifest is not JSON: {e}"))?;
        let (variant, module) = extract(&manifest, |d| self.blob(d))?;
        Ok(Pulled {
            manifest_digest: sha256_hex(&manifest_bytes),
            variant,
            module,
        })
    }
}

/// The fetchers' `binaryFetcher`: takes the module out of an image manifest, reading blobs
/// through `blob`, then applies `isValidWasmBinary`.
pub fn extract(
    manifest: &Value,
    blob: impl Fn(&Value) -> Result<Vec<u8>, String>,
) -> Result<(Variant, Vec<u8>), String> {
    let layers: &[Value] = manifest["layers"].as_array().map_or(&[], Vec::as_slice);
    let (variant, module) = if manifest["mediaType"] == DOCKER_MANIFEST {
        let module = tar_gz_layer(layers, DOCKER_LAYER, &blob)
            .map_err(|e| format!("as Docker container: {e}"))?;
        (Variant::Docker, module)
    } else {
        match tar_gz_layer(layers, OCI_LAYER, &blob) {
            Ok(module) => (Variant::Compat, module),
            Err(compat) => match artefact_layer(layers, &blob) {
                Ok(module) => (Variant::OciArtifact, module),
                Err(oci) => {
                    return Err(format!(
                        "could not parse as compat variant: {compat}; could not parse as oci variant: {oci}"
                    ))
                }
            },
        }
    };
    if module.len() < 8 || &module[..4] != b"\0asm" {
        return Err("fetched Wasm binary is invalid (no \\0asm header)".into());
    }
    Ok((variant, module))
}

/// `extractDockerImage` / `extractOCIStandardImage`: the last layer, of media type `media_type`,
/// a tar.gz in which the first entry named plugin.wasm (any directory) is the module.
fn tar_gz_layer(
    layers: &[Value],
    media_type: &str,
    blob: &impl Fn(&Value) -> Result<Vec<u8>, String>,
) -> Result<Vec<u8>, String> {
    let layer = layers
        .last()
        .ok_or("number of layers must be greater than zero")?;
    if layer["mediaType"] != media_type {
        return Err(format!(
            "invalid media type {} (expect {media_type})",
            layer["mediaType"]
        ));
    }
    let compressed = blob(layer)?;
    let tar = flate2::read::GzDecoder::new(compressed.as_slice()).take(MAX_WASM_SIZE);
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(|e| format!("failed to parse layer as tar.gz: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("layer tar: {e}"))?;
        let path = entry.path().map_err(|e| format!("layer tar: {e}"))?;
        if path.file_name().and_then(|n| n.to_str()) == Some(PLUGIN_FILE) {
            let size = entry.header().size().map_err(|e| e.to_string())?;
            if size > MAX_WASM_SIZE {
                return Err(format!("{PLUGIN_FILE} size {size} exceeds {MAX_WASM_SIZE}"));
            }
            let mut module = Vec::new();
            entry
                .read_to_end(&mut module)
                .map_err(|e| format!("failed to read {PLUGIN_FILE}: {e}"))?;
            return Ok(module);
        }
    }
    Err(format!("{PLUGIN_FILE} not found in the archive"))
}

/// `extractOCIArtifactImage`: exactly two layers, the first of the raw module type is the module.
fn artefact_layer(
    layers: &[Value],
    blob: &impl Fn(&Value) -> Result<Vec<u8>, String>,
) -> Result<Vec<u8>, String> {
    if layers.len() != 2 {
        return Err(format!(
            "number of layers must be 2 but got {}",
            layers.len()
        ));
    }
    let layer = layers
        .iter()
        .find(|l| l["mediaType"] == WASM_LAYER)
        .ok_or_else(|| format!("could not find the layer of type {WASM_LAYER}"))?;
    let module = blob(layer)?;
    if module.len() as u64 > MAX_WASM_SIZE {
        return Err(format!(
            "wasm layer size exceeds maximum size {MAX_WASM_SIZE}"
        ));
    }
    Ok(module)
}

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn read_json(path: &Path) -> Result<Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

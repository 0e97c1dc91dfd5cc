#!/usr/bin/env bash
# `make oci`: package the filter as an OCI image that Istio's WasmPlugin (url: oci://...) and
# Envoy Gateway's EnvoyExtensionPolicy (code.type: Image) pull — without a container engine.
#
# Output: an OCI image layout (dist/oci/: oci-layout, index.json, blobs/sha256/...) and the
# same as a tarball (dist/mfa-gate-oci-<version>.tar). The image is the Wasm "compat" variant
# that Istio's image fetcher recognises: one layer of media type
# application/vnd.module.wasm.content.layer.v1+wasm (the raw module) with a config of media
# type application/vnd.module.wasm.config.v1+json.
#
# Push it with oras (https://oras.land) or skopeo:
#   oras cp --from-oci-layout dist/oci:<version> registry.example.com/mfa-gate:<version>
#   skopeo copy oci:dist/oci:<version> docker://registry.example.com/mfa-gate:<version>
#
# Environment: WASM (the module, default the release build), OCI_OUT (default dist).
set -euo pipefail
cd "$(dirname "$0")/.."

WASM=${WASM:-target/wasm32-wasip1/release/mfa_gate.wasm}
OUT=${OCI_OUT:-dist}
VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
LAYOUT="$OUT/oci"

if [ ! -f "$WASM" ]; then
  echo "build-oci: $WASM is missing: build it first with 'make wasm'" >&2
  exit 1
fi
command -v sha256sum >/dev/null || { echo "build-oci: sha256sum is required" >&2; exit 1; }

rm -rf "$LAYOUT"
mkdir -p "$LAYOUT/blobs/sha256"

# Stores stdin (or a file) as a blob; prints "<digest> <size>".
put_blob() {
  local tmp digest size
  tmp=$(mktemp "$LAYOUT/blob.XXXXXX")
  cat "${1:-/dev/stdin}" > "$tmp"
  digest=$(sha256sum "$tmp" | cut -d' ' -f1)
  size=$(wc -c < "$tmp" | tr -d ' ')
  mv "$tmp" "$LAYOUT/blobs/sha256/$digest"
  echo "$digest $size"
}

read -r wasm_digest wasm_size < <(put_blob "$WASM")
read -r config_digest config_size < <(printf '%s' \
  '{"type":"envoy_proxy","abiVersions":["proxy_abi_version_0_2_1"],"rootIds":["mfa_gate"]}' | put_blob)

read -r manifest_digest manifest_size < <(printf '%s' "{\
\"schemaVersion\":2,\
\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"config\":{\"mediaType\":\"application/vnd.module.wasm.config.v1+json\",\"digest\":\"sha256:$config_digest\",\"size\":$config_size},\
\"layers\":[{\"mediaType\":\"application/vnd.module.wasm.content.layer.v1+wasm\",\"digest\":\"sha256:$wasm_digest\",\"size\":$wasm_size,\
\"annotations\":{\"org.opencontainers.image.title\":\"plugin.wasm\"}}],\
\"annotations\":{\"org.opencontainers.image.title\":\"mfa-gate\",\"org.opencontainers.image.version\":\"$VERSION\",\
\"org.opencontainers.image.description\":\"Envoy proxy-wasm filter that keeps push-MFA sessions off privileged routes\",\
\"org.opencontainers.image.licenses\":\"Apache-2.0\"}}" | put_blob)

printf '%s' '{"imageLayoutVersion":"1.0.0"}' > "$LAYOUT/oci-layout"
printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\
\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$manifest_digest\",\
\"size\":$manifest_size,\"annotations\":{\"org.opencontainers.image.ref.name\":\"$VERSION\"}}]}" > "$LAYOUT/index.json"

TARBALL="$OUT/mfa-gate-oci-$VERSION.tar"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$TARBALL" -C "$LAYOUT" .

echo "build-oci: $LAYOUT (tag $VERSION, manifest sha256:$manifest_digest)"
echo "build-oci: $TARBALL"
echo "build-oci: module sha256 $wasm_digest ($wasm_size bytes) — WasmPlugin spec.sha256 if you pin it"
echo "build-oci: push with: oras cp --from-oci-layout $LAYOUT:$VERSION <registry>/mfa-gate:$VERSION"

#!/usr/bin/env bash
# `make oci`: package the filter as an OCI image that Istio's WasmPlugin (url: oci://...) and
# Envoy Gateway's EnvoyExtensionPolicy (code.type: Image) pull — without a container engine.
#
# Output: an OCI image layout (dist/oci/: oci-layout, index.json, blobs/sha256/...) and the
# same as a tarball (dist/mfa-gate-oci-<version>.tar). The image is the Wasm image spec's
# "compat" variant, the first one both platforms' image fetchers try (istio/istio
# pkg/wasm/imagefetcher.go, envoyproxy/gateway internal/wasm/imagefetcher.go): the manifest's
# last (here: only) layer is an application/vnd.oci.image.layer.v1.tar+gzip tarball holding
# plugin.wasm, the config a standard OCI image config (so docker, podman, skopeo and crane
# handle it too), and the manifest annotated module.wasm.image/variant=compat.
#
# spec.sha256 (Istio) and code.image.sha256 (Envoy Gateway) hold the digest of this image
# manifest, not the module's sha256: both fetchers compare them with the manifest digest.
#
# Push it with oras (https://oras.land) or skopeo (both keep the manifest, so its digest):
#   oras cp --from-oci-layout dist/oci:<version> registry.example.com/mfa-gate:<version>
#   skopeo copy --preserve-digests oci:dist/oci:<version> docker://registry.example.com/mfa-gate:<version>
#
# Environment: WASM (the module, default dist/mfa_gate.wasm), OCI_OUT (default dist).
set -euo pipefail
cd "$(dirname "$0")/.."

WASM=${WASM:-dist/mfa_gate.wasm}
OUT=${OCI_OUT:-dist}
VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
LAYOUT="$OUT/oci"

if [ ! -f "$WASM" ]; then
  echo "build-oci: $WASM is missing: build it first with 'make dist' (make oci does)" >&2
  exit 1
fi
for tool in sha256sum gzip tar; do
  command -v "$tool" >/dev/null || { echo "build-oci: $tool is required" >&2; exit 1; }
done

rm -rf "$LAYOUT"
mkdir -p "$LAYOUT/blobs/sha256"

# Stores stdin (or a file) as a blob; prints "<digest> <size>".
put_blob() {
  local tmp digest size
  tmp=$(mktemp "$LAYOUT/blob.XXXXXX")
  cat "${1:-/dev/stdin}" > "$tmp"
  digest=$(sha256sum "$tmp" | cut -d' ' -f1)
  size=$(wc -c < "$tmp" | tr -d ' ')
  chmod 0644 "$tmp"
  mv "$tmp" "$LAYOUT/blobs/sha256/$digest"
  echo "$digest $size"
}

# The layer: a reproducible tarball with plugin.wasm alone (fixed owner, mode and time), gzipped
# without a name or timestamp. The config lists the uncompressed tarball's digest (diff_id).
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -m 0644 "$WASM" "$stage/plugin.wasm"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=ustar \
  -cf "$stage/layer.tar" -C "$stage" plugin.wasm
diff_id=$(sha256sum "$stage/layer.tar" | cut -d' ' -f1)
read -r layer_digest layer_size < <(gzip -9 -n -c "$stage/layer.tar" | put_blob)
wasm_digest=$(sha256sum "$WASM" | cut -d' ' -f1)

# A standard image config: GOOS/GOARCH-style platform of a WASI module, the layer's diff_id.
read -r config_digest config_size < <(printf '%s' "{\
\"architecture\":\"wasm\",\"os\":\"wasip1\",\
\"config\":{\"Labels\":{\"org.opencontainers.image.version\":\"$VERSION\"}},\
\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff_id\"]}}" | put_blob)

read -r manifest_digest manifest_size < <(printf '%s' "{\
\"schemaVersion\":2,\
\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$config_digest\",\"size\":$config_size},\
\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$layer_digest\",\"size\":$layer_size}],\
\"annotations\":{\"module.wasm.image/variant\":\"compat\",\
\"org.opencontainers.image.title\":\"mfa-gate\",\"org.opencontainers.image.version\":\"$VERSION\",\
\"org.opencontainers.image.description\":\"Envoy proxy-wasm filter that keeps push-MFA sessions off privileged routes\",\
\"org.opencontainers.image.licenses\":\"Apache-2.0\"}}" | put_blob)

printf '%s' '{"imageLayoutVersion":"1.0.0"}' > "$LAYOUT/oci-layout"
printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\
\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$manifest_digest\",\
\"size\":$manifest_size,\"annotations\":{\"org.opencontainers.image.ref.name\":\"$VERSION\"}}]}" > "$LAYOUT/index.json"

TARBALL="$OUT/mfa-gate-oci-$VERSION.tar"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$TARBALL" -C "$LAYOUT" .

echo "build-oci: $LAYOUT (tag $VERSION)"
echo "build-oci: $TARBALL"
echo "build-oci: image manifest digest sha256:$manifest_digest"
echo "build-oci:   pin it as Istio spec.sha256 / Envoy Gateway code.image.sha256: $manifest_digest"
echo "build-oci:   or in the url: <registry>/mfa-gate@sha256:$manifest_digest"
echo "build-oci: module plugin.wasm sha256 $wasm_digest ($(wc -c < "$WASM" | tr -d ' ') bytes): not the value for an oci:// url"
echo "build-oci: push with: oras cp --from-oci-layout $LAYOUT:$VERSION <registry>/mfa-gate:$VERSION"

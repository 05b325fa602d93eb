#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. installs what the tests need when missing (nginx, libfcgi-dev, libsqlite3-dev, curl, pkg-config),
#   2. builds (debug) and runs the Swift unit tests,
#   3. runs the end-to-end tests: real nginx → real FastCGI workers → real SQLite file → the
#      provider simulator on loopback, driven by curl and the official `openai` Python package
#      (installed from PyPI into a virtualenv), including the chaos tests (workers killed, the
#      database locked, its filesystem full),
#   4. a short smoke of every libFuzzer target (Tests/fuzz/run-fuzz.sh; FUZZ_SECONDS, default 20).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

bash "$ROOT/deploy/install-packages.sh"

echo "== building (debug)"
swift build --build-tests 2>&1 | { grep -v '^\[[0-9]*/[0-9]*\]' || true; }

# The binary Apache runs in the CGI tests is the shared-hosting build: the Swift runtime linked in
# (a shared host has no Swift), as deploy/build-static.sh makes it, in debug to save CI minutes.
echo "== building the CGI binary (debug, --static-swift-stdlib)"
swift build --static-swift-stdlib --product deploxa-gateway --scratch-path .build-static-debug 2>&1 \
    | { grep -v '^\[[0-9]*/[0-9]*\]' || true; }

echo "== unit tests"
swift test --skip-build 2>&1 | { grep -v '^◇' || true; }

echo "== end-to-end tests"
DEPLOXA_GATEWAY_BIN="$(swift build --show-bin-path)/deploxa-gateway" \
DEPLOXA_CGI_BIN="$(swift build --static-swift-stdlib --scratch-path .build-static-debug --show-bin-path)/deploxa-gateway" \
    bash Tests/e2e/run.sh

# After the end-to-end tests, never beside them: a fuzzer takes a whole core.
echo "== fuzz smoke (libFuzzer, 20 s a target; Tests/fuzz/run-fuzz.sh)"
bash Tests/fuzz/run-fuzz.sh "${FUZZ_SECONDS:-20}"

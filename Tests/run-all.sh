#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. installs what the tests need when missing (nginx, libfcgi-dev, libsqlite3-dev, curl, pkg-config),
#   2. builds (debug) and runs the Swift unit tests,
#   3. runs the end-to-end tests: real nginx → real FastCGI workers → real SQLite file → the
#      provider simulator on loopback, driven by curl and the official `openai` Python package
#      (installed from PyPI into a virtualenv), including the chaos tests (workers killed, the
#      database locked, its filesystem full),
#   4. the PostgreSQL backend: its SQL, then the shared-state end-to-end files again with every
#      stack on a throwaway PostgreSQL cluster (Debian's postgresql, started and stopped here),
#   5. a short smoke of every libFuzzer target (Tests/fuzz/run-fuzz.sh; FUZZ_SECONDS, default 20).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

bash "$ROOT/deploy/install-packages.sh" --postgres

echo "== building (debug)"
swift build --build-tests 2>&1 | { grep -v '^\[[0-9]*/[0-9]*\]' || true; }

# The binary Apache runs in the CGI tests is the shared-hosting build: the Swift runtime linked in
# (a shared host has no Swift), as deploy/build-static.sh makes it, in debug to save CI minutes.
echo "== building the CGI binary (debug, --static-swift-stdlib)"
DEPLOXA_WITHOUT_POSTGRES=1 swift build --static-swift-stdlib --product deploxa-gateway --scratch-path .build-static-debug 2>&1 \
    | { grep -v '^\[[0-9]*/[0-9]*\]' || true; }

echo "== unit tests"
swift test --skip-build 2>&1 | { grep -v '^◇' || true; }

echo "== end-to-end tests"
DEPLOXA_GATEWAY_BIN="$(swift build --show-bin-path)/deploxa-gateway" \
DEPLOXA_CGI_BIN="$(DEPLOXA_WITHOUT_POSTGRES=1 swift build --static-swift-stdlib --scratch-path .build-static-debug --show-bin-path)/deploxa-gateway" \
    bash Tests/e2e/run.sh

# The shared backend: its SQL on a throwaway cluster (exactness under concurrency, idempotent
# audit batches, the export cursor), then the end-to-end files whose subject is the state the
# nodes share (limits, cache, fallback and breakers, the admin API, audit), with every stack on
# PostgreSQL (the other files pass on it too, but CI's 30 minutes do not hold both full runs). The
# multi-node test (three serve masters, one nginx upstream, one PostgreSQL) ran above.
echo "== PostgreSQL: schema and functions (Tests/postgres)"
"$ROOT/.build/e2e-venv/bin/python" -m pytest Tests/postgres -q -p no:cacheprovider </dev/null
echo "== end-to-end tests on PostgreSQL"
DEPLOXA_E2E_BACKEND=postgres \
DEPLOXA_GATEWAY_BIN="$(swift build --show-bin-path)/deploxa-gateway" \
    bash Tests/e2e/run.sh Tests/e2e/test_chat.py Tests/e2e/test_limits.py Tests/e2e/test_cache.py Tests/e2e/test_fallback.py \
        Tests/e2e/test_admin_api.py Tests/e2e/test_zz_audit_complete.py

# After the end-to-end tests, never beside them: a fuzzer takes a whole core.
echo "== fuzz smoke (libFuzzer, 20 s a target; Tests/fuzz/run-fuzz.sh)"
bash Tests/fuzz/run-fuzz.sh "${FUZZ_SECONDS:-20}"

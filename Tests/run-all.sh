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
# (a shared host has no Swift), as deploy/build-static.sh makes it. Compiling everything a second
# time for it took ~8 of CI's minutes, so it is the debug build's own objects linked again with
# --static-swift-stdlib (Foundation's static libraries named, since objects compiled for a dynamic
# link do not ask for them), copied aside, and the dynamic binary linked back: ~1 minute.
echo "== linking the CGI binary (--static-swift-stdlib, from the debug build's objects)"
foundation_static=()
for library in Foundation CoreFoundation _FoundationCShims _FoundationCollections FoundationEssentials \
        FoundationInternationalization _FoundationICU swiftDispatch swiftSynchronization; do
    foundation_static+=(-Xlinker "-l$library")
done
swift build --static-swift-stdlib -Xlinker --start-group "${foundation_static[@]}" -Xlinker --end-group \
    --product deploxa-gateway 2>&1 | { grep -vE '^\[[0-9]*/[0-9]*\]|warning: the use of' || true; }
CGI_BIN="$ROOT/.build/cgi/deploxa-gateway"
mkdir -p "$(dirname "$CGI_BIN")"
cp "$(swift build --show-bin-path)/deploxa-gateway" "$CGI_BIN"
swift build --product deploxa-gateway 2>&1 | { grep -v '^\[[0-9]*/[0-9]*\]' || true; }

echo "== unit tests"
swift test --skip-build 2>&1 | { grep -v '^◇' || true; }

echo "== end-to-end tests"
DEPLOXA_GATEWAY_BIN="$(swift build --show-bin-path)/deploxa-gateway" \
DEPLOXA_CGI_BIN="$CGI_BIN" \
    bash Tests/e2e/run.sh

# The shared backend: its SQL on a throwaway cluster (exactness under concurrency, idempotent
# audit batches, the export cursor), then the end-to-end files whose subject is the state the
# nodes share (limits, cache, fallback and breakers, concurrent streams, the admin API, audit),
# with every stack on PostgreSQL (the other files pass on it too, but CI's 30 minutes do not hold
# both full runs). The multi-node test (three serve masters, one nginx upstream, one PostgreSQL)
# ran above.
echo "== PostgreSQL: schema and functions (Tests/postgres)"
"$ROOT/.build/e2e-venv/bin/python" -m pytest Tests/postgres -q -p no:cacheprovider </dev/null
echo "== end-to-end tests on PostgreSQL"
DEPLOXA_E2E_BACKEND=postgres \
DEPLOXA_GATEWAY_BIN="$(swift build --show-bin-path)/deploxa-gateway" \
    bash Tests/e2e/run.sh Tests/e2e/test_chat.py Tests/e2e/test_limits.py Tests/e2e/test_cache.py Tests/e2e/test_fallback.py \
        Tests/e2e/test_concurrency.py Tests/e2e/test_admin_api.py Tests/e2e/test_zz_audit_complete.py

# After the end-to-end tests, never beside them: a fuzzer takes a whole core.
echo "== fuzz smoke (libFuzzer, 20 s a target; Tests/fuzz/run-fuzz.sh)"
bash Tests/fuzz/run-fuzz.sh "${FUZZ_SECONDS:-20}"

#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer) of the parsers and translators that read bytes from clients
# and providers. Each target is in Fuzz/<Target>/ and exists in Package.swift only when
# DEPLOXA_FUZZ is set.
#
#   Tests/fuzz/run-fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   default 20 s, all targets
#   Tests/fuzz/run-fuzz.sh --replay TARGET FILE|DIR...         re-run saved inputs (a crash file,
#                                                              Tests/fuzz/regressions/<Target>/)
#
# Tests/fuzz/regressions/<Target>/ holds inputs that once failed; every run replays them first, so
# a fixed bug stays fixed (and an unfixed one fails the run).
#
# Builds the targets (release, instrumented for libFuzzer and AddressSanitizer, scratch path
# .build-fuzz), seeds each from the provider fixtures (make-seeds.sh: corpus and dictionary) plus
# the saved regressions and whatever an earlier run with the same FUZZ_WORK found,
# runs them one after the other and prints one line per target: executions, exec/s, coverage,
# result. Exits 1 when any target crashed, hung (-timeout) or ran out of memory; the inputs that
# did are kept under the work directory (FUZZ_WORK, default a new temp dir) and previewed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

ALL_TARGETS=(FuzzJSON FuzzChatRequest FuzzSSE FuzzProviderResponses FuzzStreamTranslators)
SCRATCH="$ROOT/.build-fuzz"
# One -sanitize flag: swiftc keeps only the last of several, so "fuzzer" and "address" go together.
SANITIZE=${FUZZ_SANITIZE:-fuzzer,address}
BIN="$SCRATCH/release"

build() {
    local started=$SECONDS
    for target in "$@"; do
        DEPLOXA_FUZZ=1 nice -n 10 swift build -c release --scratch-path "$SCRATCH" \
            -Xswiftc "-sanitize=$SANITIZE" --product "$target" 2>&1 \
            | { grep -E 'error:|warning: .*/Fuzz/|complete!' || true; }
        [[ -x "$BIN/$target" ]] || { echo "build of $target failed" >&2; exit 2; }
    done
    echo "== built ${*} in $((SECONDS - started)) s"
}

# Longest input libFuzzer will try: streams need room for several events.
max_len() {
    case "$1" in
        FuzzSSE|FuzzStreamTranslators) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

# A crash file as text a person can read: printable bytes as they are, the rest escaped.
preview() {
    python3 - "$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
print("    %d bytes: %r%s" % (len(data), data[:300], " ..." if len(data) > 300 else ""))
PY
}

# libFuzzer prints the stack of a crash itself; Swift's own backtracer, started on the same
# signal, trips AddressSanitizer (a stack-buffer-underflow in its memory reader) and buries it.
export SWIFT_BACKTRACE=enable=no

if [[ "${1:-}" == "--replay" ]]; then
    target=${2:?usage: run-fuzz.sh --replay TARGET FILE|DIR...}
    shift 2
    build "$target"
    status=0
    for input in "$@"; do
        # A directory: every file in it once (-runs=0 only reads the corpus); a file: run it.
        if [[ -d "$input" ]]; then
            "$BIN/$target" -runs=0 -timeout=5 "$input" || status=$?
        else
            "$BIN/$target" -timeout=5 "$input" || status=$?
        fi
    done
    exit $status
fi

SECONDS_PER_TARGET=${1:-20}
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=("${ALL_TARGETS[@]}")
WORK=${FUZZ_WORK:-$(mktemp -d /tmp/deploxa-fuzz.XXXXXX)}
mkdir -p "$WORK"
echo "== fuzzing ${TARGETS[*]} for ${SECONDS_PER_TARGET} s each; work directory $WORK"

build "${TARGETS[@]}"
bash "$ROOT/Tests/fuzz/make-seeds.sh" "$WORK/seeds" >/dev/null

failed=0
summary=()
for target in "${TARGETS[@]}"; do
    corpus="$WORK/corpus/$target"
    artifacts="$WORK/artifacts/$target"
    mkdir -p "$corpus" "$artifacts" "$WORK/seeds/$target"
    inputs=("$corpus" "$WORK/seeds/$target")
    [[ -d "$ROOT/Tests/fuzz/regressions/$target" ]] && inputs+=("$ROOT/Tests/fuzz/regressions/$target")
    log="$WORK/$target.log"
    # New inputs go to the first directory (the work corpus); seeds and regressions are only read.
    # A run that does not finish within -timeout seconds counts as a hang.
    set +e
    "$BIN/$target" -max_total_time="$SECONDS_PER_TARGET" -max_len="$(max_len "$target")" \
        -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 -dict="$WORK/seeds/fuzz.dict" \
        -artifact_prefix="$artifacts/" "${inputs[@]}" >"$log" 2>&1
    code=$?
    set -e
    executions=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
    rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log")
    coverage=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
    crashes=$(find "$artifacts" -type f | wc -l)
    result="ok"
    if [[ $code -ne 0 || $crashes -gt 0 ]]; then
        result="FOUND $(grep -oE 'ERROR: libFuzzer: [a-z-]+|ERROR: AddressSanitizer: [a-z-]+|Fatal error: .{0,100}' "$log" | head -1 || echo "exit $code") (log $log)"
        failed=1
    fi
    line=$(printf '%-22s %4ss  %10s execs  %7s exec/s  %-20s %s' "$target" "$SECONDS_PER_TARGET" "${executions:-?}" "${rate:-?}" "${coverage:-cov: ?}" "$result")
    echo "$line"
    summary+=("$line")
    for file in $(find "$artifacts" -type f | sort); do
        echo "    reproducer: $file"
        preview "$file"
        echo "    replay: Tests/fuzz/run-fuzz.sh --replay $target $file"
    done
done

echo "== summary ($(date -u +%Y-%m-%dT%H:%MZ))"
printf '%s\n' "${summary[@]}"
exit $failed

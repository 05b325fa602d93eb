#!/usr/bin/env bash
# Deploxa AI Gateway benchmarks: one command, loopback only, bounded in time.
#
#   Benchmarks/run-benchmarks.sh
#
# Builds release binaries (scratch path .build-bench), starts the provider simulator, the gateway
# (`serve`, master + WORKERS workers) and nginx on 127.0.0.1, then measures:
#
#   a. overhead at fixed rates (RATES, default 100 500 1000 req/s): the same non-streaming chat
#      completion (words=8) sent open-loop through nginx straight to the simulator ("direct") and
#      through nginx → FastCGI → gateway → simulator ("gateway"), alternating REPEATS times, same
#      nginx; overhead = median(gateway) − median(direct), at p50 and p99;
#   d. during the CPU_RATE (1000 req/s) runs: CPU seconds of nginx, gateway workers, the master and
#      the simulator (from /proc/PID/stat) → µs of CPU per request per component;
#   c. memory: STREAMS (1000) concurrent slow SSE streams held open; RSS of the workers (summed),
#      the master, the simulator and nginx, idle and while the streams are open;
#   b. the highest rate (STEP_RATES) at which the gateway's p99 overhead stays under
#      MAX_P99_OVERHEAD_MS (5 ms) with no errors and no non-2xx answers;
#   l. limits: the same request at LIMITS_RATE (500) req/s with a key whose project and key carry
#      RPM, TPM and a monthly budget (never reached) against a key without limits, alternating
#      REPEATS times; cost = median(limited) − median(unlimited) at p50/p99, and worker CPU per
#      request. Then the multi-process hammer: HAMMER_PROCESSES (4) processes × HAMMER_COUNT (5000)
#      admissions on one RPM counter of limit HAMMER_LIMIT (10000): exact total, SQLITE_BUSY count;
#   p. per provider (PROVIDER_LIST) at PROVIDER_RATE (500) req/s: the OpenAI request through the
#      gateway with X-AI-Provider (translated both ways) against that provider's own request sent
#      through nginx straight to the simulator ("native"), alternating REPEATS times;
#   t. translation cost per provider in-process (deploxa-translation-bench: request, response,
#      500-chunk stream, each against a JSON parse+serialise baseline of the same bytes);
#   w. closed loop: wrk keeps CLOSED_CONNECTIONS (64) connections busy for DURATION seconds on the
#      direct and the gateway path, alternating REPEATS times; throughput (req/s) and wrk's p50/p99
#      (needs wrk: apt-get install wrk);
#   h. cache hits: one entry seeded (X-Cache-TTL: 3600, a MISS) in a project of its own, then the
#      same request open-loop at HIT_RATES (1000) req/s through nginx → gateway (every answer a
#      HIT), alternating REPEATS times with a plain nginx `location = /static-hit { return 200
#      '<the hit's exact body bytes>'; }` in the same nginx; added latency = median(hit) −
#      median(static) at p50/p99 (target: ≤ 1 ms p99 at 1,000 req/s). Then the highest rate of
#      HIT_STEP_RATES held with hit p99 ≤ HIT_MAX_P99_MS (5) and no errors. Checked afterwards: the
#      simulator saw no request during the hit runs, and the project's audit rows are all cache
#      hits but the seed (deploxa-loadgen does not read response headers).
#
# Prints a summary table and writes Benchmarks/results/latest.json (plus the gateway's and nginx's
# logs of the run next to it).
#
# Environment (defaults in brackets):
#   WORKERS [2]  DURATION [15]  WARMUP [3]  RATES ["100 500 1000"]  REPEATS [3]  CPU_RATE [1000]
#   STEP_RATES ["1000 1250 1500 1750 2000 2500 3000 4000"]  STEP_DURATION [10]  STEP_REPEATS [3]
#   MAX_P99_OVERHEAD_MS [5]  CONNECTIONS [256]  LOADGEN_THREADS [1]
#   STREAMS [1000]  STREAM_HOLD [20]  STREAM_SAMPLE_AT [10]  STREAM_WORDS [30]  STREAM_CHUNK_DELAY_MS [1000]
#   STREAM_BASELINE_HOLD [5] (the same streams sent direct first, for a time-to-first-byte baseline)
#   WORDS [8]  PARTS ["a c b l p t h"] (any of a, b, c, l, p, t, w, h; d rides on a)  SKIP_BUILD [0]
#   CLOSED_CONNECTIONS [64] (part w)  GATEWAY_BIN [the release build of this tree]
#   LIMITS_RATE [500]  HAMMER_PROCESSES [4]  HAMMER_COUNT [5000]  HAMMER_LIMIT [10000]
#   PROVIDER_LIST ["openai anthropic google mistral cohere"]  PROVIDER_RATE [500]
#   HIT_RATES ["1000"]  HIT_STEP_RATES ["2000 3000 4000 6000 8000"]  HIT_STEP_DURATION [STEP_DURATION]
#   HIT_MAX_P99_MS [5]  SERVE_EXTRA [""] (more `serve` options, e.g. "--accept-threads 1")
#   QUIET_LOAD [unset]: if set (e.g. 0.5), first wait up to QUIET_WAIT [300] s for the 1-minute
#   load average to fall below it.
#   IDLE_CPU_SECONDS [5] (idle CPU of each component, measured before the load)
#   KEEP_TMP [0]: 1 keeps the temporary directory (database, logs, per-run JSON) for inspection.
#   RESULTS [Benchmarks/results/latest.json]

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRATCH="$ROOT/.build-bench"
# GATEWAY_BIN benchmarks another gateway binary (e.g. a release build of an earlier commit, to
# compare before and after a change in the same session); the load generators come from this tree.
GW="${GATEWAY_BIN:-$SCRATCH/release/deploxa-gateway}"
LG="$SCRATCH/release/deploxa-loadgen"
TB="$SCRATCH/release/deploxa-translation-bench"

WORKERS="${WORKERS:-2}"
DURATION="${DURATION:-15}"
WARMUP="${WARMUP:-3}"
RATES="${RATES:-100 500 1000}"
CPU_RATE="${CPU_RATE:-1000}"
STEP_RATES="${STEP_RATES:-1000 1250 1500 1750 2000 2500 3000 4000}"
STEP_DURATION="${STEP_DURATION:-10}"
REPEATS="${REPEATS:-3}"
STEP_REPEATS="${STEP_REPEATS:-3}"
MAX_P99_OVERHEAD_MS="${MAX_P99_OVERHEAD_MS:-5}"
CONNECTIONS="${CONNECTIONS:-256}"
LOADGEN_THREADS="${LOADGEN_THREADS:-1}"
STREAMS="${STREAMS:-1000}"
STREAM_HOLD="${STREAM_HOLD:-20}"
STREAM_SAMPLE_AT="${STREAM_SAMPLE_AT:-10}"
STREAM_WORDS="${STREAM_WORDS:-30}"
STREAM_BASELINE_HOLD="${STREAM_BASELINE_HOLD:-5}"
STREAM_CHUNK_DELAY_MS="${STREAM_CHUNK_DELAY_MS:-1000}"
WORDS="${WORDS:-8}"
PARTS="${PARTS:-a c b l p t h}"
CLOSED_CONNECTIONS="${CLOSED_CONNECTIONS:-64}"
LIMITS_RATE="${LIMITS_RATE:-500}"
PROVIDER_LIST="${PROVIDER_LIST:-openai anthropic google mistral cohere}"
PROVIDER_RATE="${PROVIDER_RATE:-500}"
HIT_RATES="${HIT_RATES:-1000}"
SERVE_EXTRA="${SERVE_EXTRA:-}"
HIT_STEP_RATES="${HIT_STEP_RATES:-2000 3000 4000 6000 8000}"
HIT_STEP_DURATION="${HIT_STEP_DURATION:-$STEP_DURATION}"
HIT_MAX_P99_MS="${HIT_MAX_P99_MS:-5}"
HAMMER_PROCESSES="${HAMMER_PROCESSES:-4}"
HAMMER_COUNT="${HAMMER_COUNT:-5000}"
HAMMER_LIMIT="${HAMMER_LIMIT:-10000}"
SKIP_BUILD="${SKIP_BUILD:-0}"
QUIET_WAIT="${QUIET_WAIT:-300}"
RESULTS="${RESULTS:-$ROOT/Benchmarks/results/latest.json}"
RESULTS_DIR="$(dirname "$RESULTS")"
CLK_TCK="$(getconf CLK_TCK)"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

for tool in nginx jq curl ss awk /usr/bin/time timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
done

# ---------------------------------------------------------------------------------------------
# Process bookkeeping and cleanup (every process we start is tracked by pid; nothing by name).

T=""
SIM_PID=""
SERVE_PID=""
NGINX_PID=""
BG_PIDS=()

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Children of a pid, from /proc/*/stat (field 4 = ppid).
children_of() {
    local parent="$1" s line rest pid
    for s in /proc/[0-9]*/stat; do
        { read -r line <"$s"; } 2>/dev/null || continue
        rest="${line##*) }"
        # rest: state ppid ...
        set -- $rest
        if [ "${2:-}" = "$parent" ]; then
            pid="${s#/proc/}"
            echo "${pid%/stat}"
        fi
    done
}

stop_pid() {  # stop_pid PID SIGNAL SECONDS: signal, wait up to SECONDS, then SIGKILL.
    local pid="$1" sig="$2" secs="$3" i
    pid_alive "$pid" || return 0
    kill -s "$sig" "$pid" 2>/dev/null
    for ((i = 0; i < secs * 10; i++)); do
        pid_alive "$pid" || return 0
        # Reap it if it is our child.
        if ! [ -e "/proc/$pid" ] || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
            wait "$pid" 2>/dev/null
            return 0
        fi
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

CLEANED=0
cleanup() {
    [ "$CLEANED" = 1 ] && return
    CLEANED=1
    local p workers=""
    for p in "${BG_PIDS[@]}"; do stop_pid "$p" TERM 3; done
    if [ -n "$SERVE_PID" ]; then workers="$(children_of "$SERVE_PID")"; fi
    [ -n "$NGINX_PID" ] && stop_pid "$NGINX_PID" QUIT 5
    [ -n "$SERVE_PID" ] && stop_pid "$SERVE_PID" TERM 10
    for p in $workers; do stop_pid "$p" KILL 2; done
    [ -n "$SIM_PID" ] && stop_pid "$SIM_PID" TERM 5
    if [ -n "$T" ] && [ -d "$T" ]; then
        if [ "${KEEP_TMP:-0}" = 1 ]; then log "kept $T"; else rm -rf "$T"; fi
    fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

# ---------------------------------------------------------------------------------------------
# Helpers: free ports, /proc readings, JSON.

free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 12000))
        if [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then echo "$p"; return 0; fi
    done
    die "no free port found"
}

cpu_ticks() {  # utime+stime of the given pids (ticks), summed
    local total=0 pid line rest
    for pid in "$@"; do
        { read -r line <"/proc/$pid/stat"; } 2>/dev/null || continue
        rest="${line##*) }"
        set -- $rest
        # rest fields: 1 state, 2 ppid, … 12 utime, 13 stime
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

thread_ticks() {  # lines "tid name ticks" for every thread of the given pids (name: digits → N)
    local pid task line rest name
    for pid in "$@"; do
        for task in /proc/"$pid"/task/[0-9]*; do
            { read -r line <"$task/stat"; } 2>/dev/null || continue
            { read -r name <"$task/comm"; } 2>/dev/null || name=unknown
            rest="${line##*) }"
            set -- $rest
            name="$(printf '%s' "$name" | tr -s '0-9' 'N' | tr ' ' '_')"
            echo "${task##*/} $name $((${12} + ${13}))"
        done
    done
}

listen_overflows() {  # TcpExt ListenOverflows (accept queue full → SYN dropped, client retries after ~1 s)
    awk '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) n[i] = $i; h = 1 } else { for (i = 1; i <= NF; i++) if (n[i] == "ListenOverflows") print $i } }' /proc/net/netstat
}

status_kb() {  # status_kb FIELD PID...: sum of VmRSS/VmHWM (kB)
    local field="$1" total=0 pid v
    shift
    for pid in "$@"; do
        v="$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/status" 2>/dev/null)"
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

worker_pids() { children_of "$SERVE_PID" | sort -n | tr '\n' ' '; }
nginx_pids() { echo "$NGINX_PID $(children_of "$NGINX_PID" | tr '\n' ' ')"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# Waits (bounded) until the 1-minute load average is below QUIET_LOAD.
wait_quiet() {
    [ -n "${QUIET_LOAD:-}" ] || return 0
    local waited=0 l1
    while :; do
        l1="$(cut -d' ' -f1 /proc/loadavg)"
        if awk -v l="$l1" -v q="$QUIET_LOAD" 'BEGIN { exit !(l < q) }'; then return 0; fi
        if [ "$waited" -ge "$QUIET_WAIT" ]; then log "load still $l1 after ${QUIET_WAIT}s; going on"; return 0; fi
        [ $((waited % 30)) -eq 0 ] && log "waiting for a quiet machine (load $l1, want < $QUIET_LOAD)"
        sleep 5
        waited=$((waited + 5))
    done
}

# ---------------------------------------------------------------------------------------------
# Build. The source state is recorded just before it (others may change the tree during the run).

GIT_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
GIT_DIRTY="$(git -C "$ROOT" status --porcelain -- Sources Package.swift 2>/dev/null | wc -l)"

if [ "$SKIP_BUILD" != 1 ]; then
    log "building release into $SCRATCH"
    built=0
    for attempt in 1 2 3 4; do
        if (cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH" 2>&1 | tail -n 25 >&2) &&
            [ -x "$GW" ] && [ -x "$LG" ]; then
            built=1
            break
        fi
        log "build failed (attempt $attempt); retrying in 60 s"
        sleep 60
    done
    [ "$built" = 1 ] || die "release build failed"
fi
[ -x "$GW" ] && [ -x "$LG" ] && [ -x "$TB" ] || die "binaries missing in $SCRATCH/release (run without SKIP_BUILD=1)"
BINARY_BUILT="$(date -u -r "$GW" +%Y-%m-%dT%H:%M:%SZ)"

# ---------------------------------------------------------------------------------------------
# State, simulator, gateway, nginx.

T="$(mktemp -d /tmp/deploxa-bench.XXXXXX)"
chmod 755 "$T"   # nginx workers (nobody when started as root) must reach the socket
mkdir -p "$T/nginx/logs" "$T/nginx/tmp" "$T/runs"
SIM_PORT="$(free_port)"
NGINX_PORT="$(free_port)"
while [ "$NGINX_PORT" = "$SIM_PORT" ]; do NGINX_PORT="$(free_port)"; done
SOCK="$T/gw.sock"
export DEPLOXA_GATEWAY_DB="$T/gw.db"

log "starting the simulator on 127.0.0.1:$SIM_PORT"
"$GW" simulate --listen "127.0.0.1:$SIM_PORT" >"$T/sim.log" 2>&1 &
SIM_PID=$!
for ((i = 0; i < 100; i++)); do
    curl -fsS "http://127.0.0.1:$SIM_PORT/_sim/stats" >/dev/null 2>&1 && break
    pid_alive "$SIM_PID" || die "simulator exited: $(tail -5 "$T/sim.log")"
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$SIM_PORT/_sim/stats" >/dev/null || die "simulator not answering"

log "creating the gateway state in $DEPLOXA_GATEWAY_DB"
{
    "$GW" migrate &&
    "$GW" org create bench &&
    "$GW" project create bench/load &&
    for p in openai anthropic google mistral cohere; do
        echo sim-key | "$GW" provider set bench/load "$p" --base-url "http://127.0.0.1:$SIM_PORT/$p" || exit 1
    done
} >"$T/setup.log" 2>&1 || die "setup failed: $(tail -5 "$T/setup.log")"
KEY="$("$GW" key create bench/load --json 2>>"$T/setup.log" | jq -r '.secret')"
[ -n "$KEY" ] && [ "$KEY" != null ] || die "key create failed: $(tail -5 "$T/setup.log")"
# Part l's key: every check runs (key and project RPM/TPM, budgets), none is ever reached.
{
    "$GW" project create bench/limited --rpm 100000000 --tpm 1000000000000 --monthly-budget 1000000000 &&
    echo sim-key | "$GW" provider set bench/limited openai --base-url "http://127.0.0.1:$SIM_PORT/openai"
} >>"$T/setup.log" 2>&1 || die "setup of bench/limited failed: $(tail -5 "$T/setup.log")"
KEY_LIMITED="$("$GW" key create bench/limited --rpm 100000000 --tpm 1000000000000 --monthly-budget 1000000000 --json 2>>"$T/setup.log" | jq -r '.secret')"
[ -n "$KEY_LIMITED" ] && [ "$KEY_LIMITED" != null ] || die "limited key create failed: $(tail -5 "$T/setup.log")"

log "starting serve --workers $WORKERS on $SOCK"
# --socket-mode 0666: nginx's workers run as nobody when it starts as root (the template has no
# `user` directive), neither the socket's owner nor in its group (serve's default is 0660).
"$GW" serve --socket "$SOCK" --socket-mode 0666 --workers "$WORKERS" --pid-file "$T/serve.pid" --log-level warning \
    --graceful-timeout 5 $SERVE_EXTRA >"$T/serve.log" 2>&1 &
SERVE_PID=$!
for ((i = 0; i < 100; i++)); do
    [ -S "$SOCK" ] && [ "$(children_of "$SERVE_PID" | wc -l)" -ge "$WORKERS" ] && break
    pid_alive "$SERVE_PID" || die "serve exited: $(tail -5 "$T/serve.log")"
    sleep 0.1
done
[ -S "$SOCK" ] || die "no socket at $SOCK"

log "starting nginx on 127.0.0.1:$NGINX_PORT"
TEMPLATE="$ROOT/nginx/nginx.local.conf.template"
CONF="$T/nginx/nginx.conf"
# Part h's static baseline: a location answering with the cache hit's exact bytes. Its body is
# only known once an entry is seeded, so it lives in an included file that part h rewrites
# before reloading nginx; until then it answers '{}'.
STATIC_HIT_CONF="$T/nginx/static-hit.conf"
printf '%s\n' "location = /static-hit { default_type application/json; return 200 '{}'; }" >"$STATIC_HIT_CONF"
sed -e "s|@PREFIX@|$T/nginx|g" -e "s|@SOCKET@|$SOCK|g" -e "s|@LISTEN@|127.0.0.1:$NGINX_PORT|g" "$TEMPLATE" |
awk -v simport="$SIM_PORT" -v statichit="$STATIC_HIT_CONF" '
    # Benchmark additions: access log off, a /direct/ location proxying straight to the
    # simulator over kept-alive connections, unbuffered, in the same server as /v1/, and the
    # /static-hit location of part h (included).
    /^[[:space:]]*access_log[[:space:]]/ { print "    access_log off;"; next }
    /^[[:space:]]*http[[:space:]]*\{/ {
        print
        print "    upstream deploxa_bench_sim {"
        print "        server 127.0.0.1:" simport ";"
        print "        keepalive 256;"
        print "        keepalive_requests 100000;"
        print "    }"
        next
    }
    /^[[:space:]]*location[[:space:]]+\/v1\/[[:space:]]*\{/ && !added {
        print "        location /native/ {"
        print "            proxy_pass http://deploxa_bench_sim/;"
        print "            proxy_http_version 1.1;"
        print "            proxy_set_header Connection \"\";"
        print "            proxy_buffering off;"
        print "        }"
        print ""
        print "        location /direct/ {"
        print "            proxy_pass http://deploxa_bench_sim/openai/;"
        print "            proxy_http_version 1.1;"
        print "            proxy_set_header Connection \"\";"
        print "            proxy_buffering off;"
        print "            proxy_read_timeout 900s;"
        print "        }"
        print ""
        print "        include " statichit ";"
        print ""
        added = 1
    }
    { print }
' >"$CONF"
grep -q 'deploxa_bench_sim/openai/' "$CONF" && grep -q 'upstream deploxa_bench_sim' "$CONF" &&
    grep -qF "include $STATIC_HIT_CONF;" "$CONF" ||
    die "could not add the /direct/ location to the rendered template ($CONF)"
nginx -t -q -p "$T/nginx" -c "$CONF" -e "$T/nginx/logs/nginx-error.log" 2>"$T/nginx-t.log" ||
    die "nginx -t failed: $(cat "$T/nginx-t.log")"
nginx -p "$T/nginx" -c "$CONF" -e "$T/nginx/logs/nginx-error.log" -g 'daemon off;' >"$T/nginx.out" 2>&1 &
NGINX_PID=$!
BASE="http://127.0.0.1:$NGINX_PORT"
for ((i = 0; i < 100; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200 ] && break
    pid_alive "$NGINX_PID" || die "nginx exited: $(cat "$T/nginx.out")"
    sleep 0.1
done

# Request bodies.
printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello. [sim words=%s]"}]}' \
    "$WORDS" >"$T/chat.json"
printf '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Tell a slow story. [sim chunk_delay_ms=%s words=%s]"}]}' \
    "$STREAM_CHUNK_DELAY_MS" "$STREAM_WORDS" >"$T/stream.json"

GW_URL="$BASE/v1/chat/completions"
DIRECT_URL="$BASE/direct/v1/chat/completions"
GW_AUTH="Authorization: Bearer $KEY"
DIRECT_AUTH="Authorization: Bearer sim-key"

# Per provider (part p): the OpenAI-format client body, and the provider-native request the
# gateway would send for it (body, path, headers), written by the translation benchmark.
"$TB" --dump-requests "$T/native" --words "$WORDS" || die "could not write the provider-native requests"

# target_for PATH sets TARGET_URL, TARGET_BODY and TARGET_HEADERS (curl/loadgen -H arguments):
#   gateway | limited | direct: the OpenAI request through the gateway (unlimited / limited key)
#   or through nginx straight to the simulator; gw:P — the same for provider P through the
#   gateway; native:P — P's own request through nginx straight to the simulator;
#   gateway-hit | static-hit (part h): the seeded cached request through the gateway, and the
#   same request (same headers and body) to nginx's /static-hit.
KEY_CACHE=""
target_for() {
    local path="$1" line
    TARGET_HEADERS=()
    case "$path" in
        gateway) TARGET_URL="$GW_URL"; TARGET_BODY="$T/chat.json"; TARGET_HEADERS=(-H "$GW_AUTH") ;;
        limited) TARGET_URL="$GW_URL"; TARGET_BODY="$T/chat.json"; TARGET_HEADERS=(-H "Authorization: Bearer $KEY_LIMITED") ;;
        direct) TARGET_URL="$DIRECT_URL"; TARGET_BODY="$T/chat.json"; TARGET_HEADERS=(-H "$DIRECT_AUTH") ;;
        gw:*) TARGET_URL="$GW_URL"; TARGET_BODY="$T/native/${path#gw:}.client.json"
              TARGET_HEADERS=(-H "$GW_AUTH" -H "X-AI-Provider: ${path#gw:}") ;;
        native:*) TARGET_URL="$BASE/native$(cat "$T/native/${path#native:}.path")"; TARGET_BODY="$T/native/${path#native:}.body"
                  while IFS= read -r line || [ -n "$line" ]; do [ -n "$line" ] && TARGET_HEADERS+=(-H "$line"); done <"$T/native/${path#native:}.headers" ;;
        gateway-hit|static-hit)
            TARGET_URL="$GW_URL"; [ "$path" = static-hit ] && TARGET_URL="$BASE/static-hit"
            TARGET_BODY="$T/cache.json"; TARGET_HEADERS=(-H "Authorization: Bearer $KEY_CACHE" -H "X-Cache-TTL: 3600") ;;
        *) die "unknown path $path" ;;
    esac
}

# Smoke test: both paths answer 200 with a chat completion.
for path in gateway direct limited $(for p in $PROVIDER_LIST; do echo "gw:$p native:$p"; done); do
    target_for "$path"
    code="$(curl -s -o "$T/smoke-${path/:/-}.json" -D "$T/smoke-${path/:/-}.headers" -w '%{http_code}' "${TARGET_HEADERS[@]}" \
        -H 'Content-Type: application/json' --data-binary @"$TARGET_BODY" "$TARGET_URL")"
    path="${path/:/-}"
    check='.choices[0].message.content'
    [[ "$path" == native-* ]] && check='.'  # the provider's own answer shape
    [ "$code" = 200 ] && jq -e "$check" "$T/smoke-$path.json" >/dev/null 2>&1 ||
        die "smoke test $path: HTTP $code: $(head -c 400 "$T/smoke-$path.json")"
done
log "smoke test ok (gateway, direct, limited and every provider's gateway and native paths answer 200)"

WORKERS_AT_START="$(worker_pids)"
IDLE_FRESH_WORKERS_KB="$(status_kb VmRSS $WORKERS_AT_START)"
IDLE_FRESH_MASTER_KB="$(status_kb VmRSS "$SERVE_PID")"
IDLE_FRESH_SIM_KB="$(status_kb VmRSS "$SIM_PID")"
IDLE_FRESH_NGINX_KB="$(status_kb VmRSS $(nginx_pids))"
LOAD_START="$(loadavg)"

# Idle CPU (no requests) over IDLE_CPU_SECONDS: a floor included in every CPU-per-request figure.
IDLE_CPU_SECONDS="${IDLE_CPU_SECONDS:-5}"
idle0_w="$(cpu_ticks $WORKERS_AT_START)"; idle0_s="$(cpu_ticks "$SIM_PID")"; idle0_n="$(cpu_ticks $(nginx_pids))"
sleep "$IDLE_CPU_SECONDS"
IDLE_CPU_JSON="$(awk -v w="$(( $(cpu_ticks $WORKERS_AT_START) - idle0_w ))" -v s="$(( $(cpu_ticks "$SIM_PID") - idle0_s ))" \
    -v n="$(( $(cpu_ticks $(nginx_pids)) - idle0_n ))" -v t="$CLK_TCK" -v d="$IDLE_CPU_SECONDS" \
    'BEGIN { printf "{\"seconds\":%d,\"workers_ms_per_s\":%.1f,\"simulator_ms_per_s\":%.1f,\"nginx_ms_per_s\":%.1f}", d, w / t / d * 1000, s / t / d * 1000, n / t / d * 1000 }')"
log "idle CPU: $IDLE_CPU_JSON"

# ---------------------------------------------------------------------------------------------
# One open-loop run. run_rate NAME PATH(gateway|direct) RATE DURATION: writes $T/runs/NAME.json, which
# holds the generator's JSON report plus "cpu" (µs per request per component) and "loadavg".

run_rate() {
    local name="$1" path="$2" rate="$3" dur="$4" out before_ng before_w before_m before_s \
        after_ng after_w after_m after_s wpids npids total lg_user lg_sys
    target_for "$path"
    out="$T/runs/$name"
    wpids="$(worker_pids)"
    npids="$(nginx_pids)"
    before_ng="$(cpu_ticks $npids)"; before_w="$(cpu_ticks $wpids)"
    before_m="$(cpu_ticks "$SERVE_PID")"; before_s="$(cpu_ticks "$SIM_PID")"
    thread_ticks $wpids >"$out.threads-before"
    /usr/bin/time -f '%U %S' -o "$out.time" timeout --kill-after=5 $((dur + WARMUP + 40)) \
        "$LG" rate --url "$TARGET_URL" --rate "$rate" --duration "$dur" --warmup "$WARMUP" \
        --connections "$CONNECTIONS" --threads "$LOADGEN_THREADS" --timeout 10 \
        --body-file "$TARGET_BODY" "${TARGET_HEADERS[@]}" -H "Content-Type: application/json" --json >"$out.lg" 2>"$out.err"
    local rc=$?
    after_ng="$(cpu_ticks $npids)"; after_w="$(cpu_ticks $wpids)"
    after_m="$(cpu_ticks "$SERVE_PID")"; after_s="$(cpu_ticks "$SIM_PID")"
    thread_ticks $wpids >"$out.threads-after"
    local total_for_threads
    total_for_threads="$(awk -v r="$rate" -v d="$dur" -v w="$WARMUP" 'BEGIN { printf "%d", r * (d + w) + 0.5 }')"
    # Worker CPU by thread name (digits folded to N): µs per request.
    awk -v tck="$CLK_TCK" -v total="$total_for_threads" '
        FNR == NR { before[$1] = $3; next }
        { delta[$2] += $3 - ($1 in before ? before[$1] : 0) }
        END {
            printf "{"; sep = ""
            for (n in delta) { printf "%s\"%s\":%.1f", sep, n, delta[n] / tck * 1e6 / total; sep = "," }
            printf "}\n"
        }' "$out.threads-before" "$out.threads-after" >"$out.threads.json"
    if [ "$rc" != 0 ] || ! jq -e . "$out.lg" >/dev/null 2>&1; then
        log "loadgen $name failed (rc $rc): $(tail -3 "$out.err")"
        echo '{"failed":true}' >"$out.lg"
    fi
    [ "$(worker_pids)" = "$wpids" ] || log "WARNING: worker set changed during $name: [$wpids] → [$(worker_pids)]"
    read -r lg_user lg_sys <"$out.time" 2>/dev/null || { lg_user=0; lg_sys=0; }
    total="$(awk -v r="$rate" -v d="$dur" -v w="$WARMUP" 'BEGIN { printf "%d", r * (d + w) + 0.5 }')"
    jq --arg path "$path" --arg name "$name" --arg load "$(loadavg)" \
        --arg workers_before "$wpids" --arg workers_after "$(worker_pids)" \
        --argjson total "$total" --argjson tck "$CLK_TCK" \
        --argjson ng "$((after_ng - before_ng))" --argjson w "$((after_w - before_w))" \
        --argjson m "$((after_m - before_m))" --argjson s "$((after_s - before_s))" \
        --argjson lgu "$lg_user" --argjson lgs "$lg_sys" --slurpfile threads "$out.threads.json" '
        def us(t): (t / $tck * 1e6 / $total * 10 | round) / 10;
        . + {name: $name, path: $path, loadavg_after: $load,
             worker_threads_us_per_req: (if ($path | test("^(gateway|limited|gw:)")) then $threads[0] else null end),
             worker_pids_before: $workers_before, worker_pids_after: $workers_after,
             cpu: {requests_sent_incl_warmup: $total,
                   nginx_us_per_req: us($ng), workers_us_per_req: us($w), master_us_per_req: us($m),
                   simulator_us_per_req: us($s),
                   loadgen_us_per_req: (((($lgu + $lgs) * 1e6 / $total) * 10 | round) / 10),
                   nginx_cpu_s: ($ng / $tck), workers_cpu_s: ($w / $tck), master_cpu_s: ($m / $tck),
                   simulator_cpu_s: ($s / $tck), loadgen_cpu_s: ($lgu + $lgs)}}'  "$out.lg" >"$out.json"
    log "$(jq -r '"\(.name): target \(.target_rate) achieved \(.achieved_rate // "-") req/s  p50 \(.p50_ms // "-") p99 \(.p99_ms // "-") ms  non2xx \(.non_2xx // "-") errors \(.errors // "-")  status \(.status_counts // {} | tostring)"' "$out.json")"
}

# pair NAME RATE DURATION REPEATS: REPEATS × (direct, then gateway); writes $T/runs/NAME.pair.json with
# every run, and per path a summary: median p50/p90/p99/p99.9 over the repeats, worst p99 and
# max, lowest achieved rate, summed errors and status counts, mean CPU per request.
# Overhead = median(gateway) − median(direct), at p50 and at p99.
pair() {
    local name="$1" rate="$2" dur="$3" reps="${4:-1}" base_path="${5:-direct}" gw_path="${6:-gateway}" i dfiles=() gfiles=()
    for ((i = 1; i <= reps; i++)); do
        run_rate "$name-direct-$i" "$base_path" "$rate" "$dur"
        sleep 1
        run_rate "$name-gateway-$i" "$gw_path" "$rate" "$dur"
        sleep 1
        dfiles+=("$T/runs/$name-direct-$i.json")
        gfiles+=("$T/runs/$name-gateway-$i.json")
    done
    jq -n --argjson rate "$rate" --slurpfile d <(jq -s . "${dfiles[@]}") --slurpfile g <(jq -s . "${gfiles[@]}") '
        def r3: if . == null then null else (. * 1000 | round) / 1000 end;
        def median: map(select(. != null)) | sort
            | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
              else (.[length / 2 - 1] + .[length / 2]) / 2 end;
        def mean: map(select(. != null)) | if length == 0 then null else ((add / length) * 10 | round) / 10 end;
        def summary(runs): {
            runs: (runs | length),
            failed: (runs | any(.failed == true)),
            target_rate: $rate,
            achieved_rate: (runs | map(.achieved_rate) | map(select(. != null)) | min),
            sent: (runs | map(.sent // 0) | add), completed: (runs | map(.completed // 0) | add),
            errors: (runs | map(if .failed == true then 1 else (.errors // 0) end) | add),
            non_2xx: (runs | map(.non_2xx // 0) | add),
            status_counts: (reduce (runs[] | .status_counts // {} | to_entries[]) as $e ({}; .[$e.key] += $e.value)),
            error_counts: (reduce (runs[] | .error_counts // {} | to_entries[]) as $e ({}; .[$e.key] += $e.value)),
            p50_ms: (runs | map(.p50_ms) | median | r3), p90_ms: (runs | map(.p90_ms) | median | r3),
            p99_ms: (runs | map(.p99_ms) | median | r3), p999_ms: (runs | map(.p999_ms) | median | r3),
            p99_ms_each: (runs | map(.p99_ms)), p50_ms_each: (runs | map(.p50_ms)),
            p99_ms_worst: (runs | map(.p99_ms) | map(select(. != null)) | max),
            max_ms: (runs | map(.max_ms) | map(select(. != null)) | max),
            dispatch_lag_p99_ms_worst: (runs | map(.dispatch_lag_p99_ms) | map(select(. != null)) | max),
            cpu: (runs | map(.cpu) | {
                nginx_us_per_req: map(.nginx_us_per_req) | mean,
                workers_us_per_req: map(.workers_us_per_req) | mean,
                master_us_per_req: map(.master_us_per_req) | mean,
                simulator_us_per_req: map(.simulator_us_per_req) | mean,
                loadgen_us_per_req: map(.loadgen_us_per_req) | mean}),
            worker_threads_us_per_req: (runs | map(.worker_threads_us_per_req // {}) as $t
                | ($t | map(keys) | add // [] | unique) as $k
                | reduce $k[] as $name ({}; .[$name] = ($t | map(.[$name] // 0) | mean)))};
        def sub(a; b): if (a == null or b == null) then null else ((a - b) * 1000 | round) / 1000 end;
        summary($d[0]) as $ds | summary($g[0]) as $gs
        | {rate: $rate, repeats: ($d[0] | length), direct: $ds, gateway: $gs,
           overhead_p50_ms: sub($gs.p50_ms; $ds.p50_ms),
           overhead_p99_ms: sub($gs.p99_ms; $ds.p99_ms),
           runs: {direct: $d[0], gateway: $g[0]}}' >"$T/runs/$name.pair.json"
    log "$name: overhead p50 $(jq -r .overhead_p50_ms "$T/runs/$name.pair.json") ms, p99 $(jq -r .overhead_p99_ms "$T/runs/$name.pair.json") ms (medians of $reps)"
}

echo '[]' >"$T/overhead.json"
echo '{"ran":false}' >"$T/steps.json"
echo '{"ran":false}' >"$T/memory.json"
echo 'null' >"$T/cpu.json"

wait_quiet

# ---------------------------------------------------------------------------------------------
# a (+ d). Overhead at fixed rates.

part_a() {
    log "part a: overhead at $RATES req/s (${DURATION}s + ${WARMUP}s warm-up each, direct then gateway); load $(loadavg)"
    # A short unmeasured warm-up of both paths (connections, caches, page faults).
    run_rate warm-direct direct 200 3 >/dev/null 2>&1
    run_rate warm-gateway gateway 200 3 >/dev/null 2>&1
    local r files=()
    for r in $RATES; do
        pair "rate$r" "$r" "$DURATION" "$REPEATS"
        files+=("$T/runs/rate$r.pair.json")
    done
    jq -s '.' "${files[@]}" >"$T/overhead.json"
    # d. CPU per request per component at CPU_RATE.
    if [ -f "$T/runs/rate$CPU_RATE.pair.json" ]; then
        jq --argjson rate "$CPU_RATE" '{rate: $rate, repeats: .repeats, gateway: .gateway.cpu, direct: .direct.cpu,
            gateway_worker_threads_us_per_req: .gateway.worker_threads_us_per_req,
            gateway_loadavg_after: (.runs.gateway | map(.loadavg_after))}' "$T/runs/rate$CPU_RATE.pair.json" >"$T/cpu.json"
    fi
}

# ---------------------------------------------------------------------------------------------
# c. Memory with STREAMS concurrent slow streams.

part_c() {
    log "part c: $STREAMS concurrent streams (chunk_delay_ms=$STREAM_CHUNK_DELAY_MS words=$STREAM_WORDS), hold ${STREAM_HOLD}s; load $(loadavg)"
    local wpids idle_w idle_m idle_s idle_n lgpid sample_w sample_m sample_s sample_n hwm_w per_worker \
        sim_stats_open sim_conns nginx_fcgi after_stats rc
    # Baseline: the same streams straight to the simulator through nginx (time to first byte,
    # simulator and nginx memory), held a short while.
    local ovf0 ovf1 ovf2 ovf3
    ovf0="$(listen_overflows)"
    timeout --kill-after=5 $((STREAM_BASELINE_HOLD + 40)) "$LG" streams --url "$DIRECT_URL" --concurrency "$STREAMS" \
        --hold "$STREAM_BASELINE_HOLD" --timeout 10 --body-file "$T/stream.json" -H "$DIRECT_AUTH" --json \
        >"$T/runs/streams-direct.lg" 2>"$T/runs/streams-direct.err" ||
        log "direct streams baseline failed: $(tail -3 "$T/runs/streams-direct.err")"
    jq -e . "$T/runs/streams-direct.lg" >/dev/null 2>&1 || echo '{"failed":true}' >"$T/runs/streams-direct.lg"
    ovf1="$(listen_overflows)"
    log "direct streams baseline: $(jq -c '{established, first_byte, errors, status_counts, ttfb_p50_ms, ttfb_p99_ms}' "$T/runs/streams-direct.lg")"
    sleep 3
    wpids="$(worker_pids)"
    idle_w="$(status_kb VmRSS $wpids)"; idle_m="$(status_kb VmRSS "$SERVE_PID")"
    idle_s="$(status_kb VmRSS "$SIM_PID")"; idle_n="$(status_kb VmRSS $(nginx_pids))"
    ovf2="$(listen_overflows)"
    timeout --kill-after=5 $((STREAM_HOLD + 40)) "$LG" streams --url "$GW_URL" --concurrency "$STREAMS" \
        --hold "$STREAM_HOLD" --timeout 10 --body-file "$T/stream.json" -H "$GW_AUTH" --json \
        >"$T/runs/streams.lg" 2>"$T/runs/streams.err" &
    lgpid=$!
    BG_PIDS+=("$lgpid")
    sleep "$STREAM_SAMPLE_AT"
    sample_w="$(status_kb VmRSS $wpids)"; sample_m="$(status_kb VmRSS "$SERVE_PID")"
    sample_s="$(status_kb VmRSS "$SIM_PID")"; sample_n="$(status_kb VmRSS $(nginx_pids))"
    hwm_w="$(status_kb VmHWM $wpids)"
    per_worker="$(for p in $wpids; do printf '{"pid":%s,"rss_kb":%s,"threads":%s},' "$p" "$(status_kb VmRSS "$p")" \
        "$(awk '$1 == "Threads:" { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)"; done)"
    sim_stats_open="$(curl -s --max-time 5 "http://127.0.0.1:$SIM_PORT/_sim/stats")"
    echo "$sim_stats_open" | jq -e . >/dev/null 2>&1 || sim_stats_open=null
    sim_conns="$(ss -Htn state established "( dport = :$SIM_PORT )" 2>/dev/null | wc -l)"
    nginx_fcgi="$(ss -Hx 2>/dev/null | grep -c "$SOCK")"
    log "streams open: workers RSS $(mb "$sample_w") MB (idle $(mb "$idle_w") MB), master $(mb "$sample_m") MB, simulator $(mb "$sample_s") MB; sim in-flight $(echo "$sim_stats_open" | jq -r '.in_flight // "?"' 2>/dev/null), gateway→sim TCP $sim_conns"
    wait "$lgpid"
    rc=$?
    [ "$rc" = 0 ] && jq -e . "$T/runs/streams.lg" >/dev/null 2>&1 || {
        log "streams loadgen failed (rc $rc): $(tail -3 "$T/runs/streams.err")"
        echo '{"failed":true}' >"$T/runs/streams.lg"
    }
    ovf3="$(listen_overflows)"
    sleep 5
    after_stats="$(curl -s --max-time 5 "http://127.0.0.1:$SIM_PORT/_sim/stats")"
    echo "$after_stats" | jq -e . >/dev/null 2>&1 || after_stats=null
    local after_w
    after_w="$(status_kb VmRSS $wpids)"
    jq -n --slurpfile lg "$T/runs/streams.lg" --slurpfile lgd "$T/runs/streams-direct.lg" \
        --argjson streams "$STREAMS" --argjson hold "$STREAM_HOLD" --argjson at "$STREAM_SAMPLE_AT" \
        --argjson words "$STREAM_WORDS" --argjson delay "$STREAM_CHUNK_DELAY_MS" \
        --argjson fresh_w "$IDLE_FRESH_WORKERS_KB" --argjson fresh_m "$IDLE_FRESH_MASTER_KB" \
        --argjson fresh_s "$IDLE_FRESH_SIM_KB" --argjson fresh_n "$IDLE_FRESH_NGINX_KB" \
        --argjson idle_w "$idle_w" --argjson idle_m "$idle_m" --argjson idle_s "$idle_s" --argjson idle_n "$idle_n" \
        --argjson w "$sample_w" --argjson m "$sample_m" --argjson s "$sample_s" --argjson n "$sample_n" \
        --argjson hwm "$hwm_w" --argjson after_w "$after_w" --argjson per "[${per_worker%,}]" \
        --argjson simopen "${sim_stats_open:-null}" --argjson simafter "${after_stats:-null}" \
        --argjson simconns "$sim_conns" --argjson fcgi "$nginx_fcgi" \
        --argjson ovf_direct "$(( ${ovf1:-0} - ${ovf0:-0} ))" --argjson ovf_gw "$(( ${ovf3:-0} - ${ovf2:-0} ))" --arg load "$(loadavg)" \
        --arg wpids "$wpids" --arg wpids_after "$(worker_pids)" '
        def mb(k): (k / 1024 * 10 | round) / 10;
        {ran: true, streams: $streams, hold_s: $hold, sampled_after_s: $at,
         sim_words: $words, sim_chunk_delay_ms: $delay, loadgen: $lg[0], direct_baseline: $lgd[0],
         rss_mb: {
           workers_idle_fresh: mb($fresh_w), master_idle_fresh: mb($fresh_m),
           simulator_idle_fresh: mb($fresh_s), nginx_idle_fresh: mb($fresh_n),
           workers_idle_before: mb($idle_w), master_idle_before: mb($idle_m),
           simulator_idle_before: mb($idle_s), nginx_idle_before: mb($idle_n),
           workers_streams_open: mb($w), master_streams_open: mb($m),
           simulator_streams_open: mb($s), nginx_streams_open: mb($n),
           workers_peak_hwm: mb($hwm), workers_5s_after_close: mb($after_w)},
         per_worker_while_open: $per,
         workers_rss_per_stream_kb: ((($w - $idle_w) / $streams * 10 | round) / 10),
         simulator_stats_while_open: $simopen, simulator_stats_5s_after: $simafter,
         upstream_tcp_connections_to_simulator_while_open: $simconns,
         fastcgi_unix_connections_while_open: $fcgi,
         tcp_listen_overflows: {direct_baseline: $ovf_direct, gateway: $ovf_gw},
         worker_pids_before: $wpids, worker_pids_after: $wpids_after,
         loadavg_after: $load}' >"$T/memory.json"
    log "streams: $(jq -c '{established, first_byte, completed, held_to_end, errors, status_counts, ttfb_p99_ms}' "$T/runs/streams.lg")"
}

# ---------------------------------------------------------------------------------------------
# b. Step the rate up until the p99 overhead reaches MAX_P99_OVERHEAD_MS or errors appear.

part_b() {
    log "part b: stepping $STEP_RATES req/s (${STEP_DURATION}s + ${WARMUP}s each) until p99 overhead ≥ ${MAX_P99_OVERHEAD_MS} ms or errors; load $(loadavg)"
    local r files=() best=null stop_reason="all step rates passed" verdict
    for r in $STEP_RATES; do
        pair "step$r" "$r" "$STEP_DURATION" "$STEP_REPEATS"
        files+=("$T/runs/step$r.pair.json")
        verdict="$(jq -r --argjson max "$MAX_P99_OVERHEAD_MS" '
            def errs(x): (x.failed == true) or (x.errors // 1) > 0 or (x.non_2xx // 1) > 0;
            def slow(x): (x.achieved_rate // 0) < 0.98 * x.target_rate;
            if errs(.direct) or slow(.direct) then "baseline (direct) failed or saturated"
            elif errs(.gateway) then "gateway errors or non-2xx answers"
            elif slow(.gateway) then "gateway saturated (achieved rate < 98 % of target)"
            elif (.overhead_p99_ms == null or .overhead_p99_ms >= $max) then "p99-overhead"
            else "pass" end' "$T/runs/step$r.pair.json")"
        [ "$verdict" = "p99-overhead" ] && verdict="p99 overhead ≥ $MAX_P99_OVERHEAD_MS ms"
        if [ "$verdict" = pass ]; then
            best="$r"
        else
            stop_reason="$verdict at $r req/s"
            log "step $r req/s: $verdict; stopping"
            break
        fi
    done
    jq -s --argjson best "$best" --arg reason "$stop_reason" --argjson max "$MAX_P99_OVERHEAD_MS" \
        '{ran: true, max_p99_overhead_ms: $max, highest_passing_rate: $best, stop_reason: $reason, steps: .}' \
        "${files[@]}" >"$T/steps.json"
}

# ---------------------------------------------------------------------------------------------
# l. What limits cost: limited vs unlimited key at LIMITS_RATE, then the multi-process hammer.

part_l() {
    log "part l: limits on vs off at $LIMITS_RATE req/s (${DURATION}s + ${WARMUP}s each, $REPEATS alternating pairs); load $(loadavg)"
    run_rate warm-limited limited 200 3 >/dev/null 2>&1
    local i off=() on=()
    for ((i = 1; i <= REPEATS; i++)); do
        run_rate "limits-off-$i" gateway "$LIMITS_RATE" "$DURATION"; sleep 1
        run_rate "limits-on-$i" limited "$LIMITS_RATE" "$DURATION"; sleep 1
        off+=("$T/runs/limits-off-$i.json"); on+=("$T/runs/limits-on-$i.json")
    done
    log "part l: hammer, $HAMMER_PROCESSES processes × $HAMMER_COUNT admissions on one counter (limit $HAMMER_LIMIT)"
    local at p pids=()
    at="$(date +%s)"
    for ((p = 1; p <= HAMMER_PROCESSES; p++)); do
        "$GW" bench-admit --count "$HAMMER_COUNT" --rpm "$HAMMER_LIMIT" --scope "gk_hammer_$at" --at "$at" \
            >"$T/runs/hammer-$p.json" 2>"$T/runs/hammer-$p.err" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    jq -n --argjson rate "$LIMITS_RATE" --argjson limit "$HAMMER_LIMIT" --argjson procs "$HAMMER_PROCESSES" \
        --argjson count "$HAMMER_COUNT" \
        --slurpfile off <(jq -s . "${off[@]}") --slurpfile on <(jq -s . "${on[@]}") \
        --slurpfile hammer <(cat "$T"/runs/hammer-*.json | jq -s .) '
        def median: map(select(. != null)) | sort
            | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
              else (.[length / 2 - 1] + .[length / 2]) / 2 end;
        def r3: if . == null then null else (. * 1000 | round) / 1000 end;
        def summary(runs): {p50_ms: (runs | map(.p50_ms) | median | r3), p99_ms: (runs | map(.p99_ms) | median | r3),
            p50_ms_each: (runs | map(.p50_ms)), p99_ms_each: (runs | map(.p99_ms)),
            achieved_rate: (runs | map(.achieved_rate) | map(select(. != null)) | min),
            errors: (runs | map(.errors // 0) | add), non_2xx: (runs | map(.non_2xx // 0) | add),
            workers_us_per_req: (runs | map(.cpu.workers_us_per_req) | median)};
        summary($off[0]) as $a | summary($on[0]) as $b
        | {ran: true, rate: $rate, off: $a, on: $b,
           cost_p50_ms: (($b.p50_ms - $a.p50_ms) | r3), cost_p99_ms: (($b.p99_ms - $a.p99_ms) | r3),
           cost_workers_us_per_req: (($b.workers_us_per_req - $a.workers_us_per_req) * 10 | round / 10),
           target_p50_ms: 0.3, met: (($b.p50_ms - $a.p50_ms) <= 0.3 and $b.errors == 0 and $b.non_2xx == 0),
           hammer: {processes: $procs, admissions_each: $count, limit: $limit,
                    admitted: ($hammer[0] | map(.admitted) | add), refused: ($hammer[0] | map(.refused) | add),
                    busy_errors: ($hammer[0] | map(.busy_errors) | add),
                    exact: (($hammer[0] | map(.admitted) | add) == ([$limit, $procs * $count] | min)),
                    admissions_per_s: (($procs * $count) / ($hammer[0] | map(.seconds) | max) | round),
                    p50_ms_each: ($hammer[0] | map(.p50_ms * 1000 | round / 1000)),
                    p99_ms_each: ($hammer[0] | map(.p99_ms * 1000 | round / 1000)),
                    max_ms: ($hammer[0] | map(.max_ms) | max | r3)}}' >"$T/limits.json"
    log "part l: $(jq -c '{cost_p50_ms, cost_p99_ms, cost_workers_us_per_req, hammer: (.hammer | {admitted, busy_errors, exact, admissions_per_s})}' "$T/limits.json")"
}

# ---------------------------------------------------------------------------------------------
# p. Overhead per provider: translated gateway path vs the provider's native request, direct.

part_p() {
    log "part p: per-provider overhead at $PROVIDER_RATE req/s for $PROVIDER_LIST; load $(loadavg)"
    local p files=()
    for p in $PROVIDER_LIST; do
        run_rate "warm-$p" "gw:$p" 200 2 >/dev/null 2>&1
        pair "prov-$p" "$PROVIDER_RATE" "$DURATION" "$REPEATS" "native:$p" "gw:$p"
        jq --arg p "$p" '. + {provider: $p}' "$T/runs/prov-$p.pair.json" >"$T/runs/prov-$p.tagged.json"
        files+=("$T/runs/prov-$p.tagged.json")
    done
    jq -s '.' "${files[@]}" >"$T/providers.json"
}

# ---------------------------------------------------------------------------------------------
# t. Translation cost in-process.

part_t() {
    log "part t: translation cost per provider (in-process)"
    "$TB" --json >"$T/translation.json" 2>"$T/translation.err" || { log "translation bench failed: $(tail -3 "$T/translation.err")"; echo null >"$T/translation.json"; }
}

# ---------------------------------------------------------------------------------------------
# h. Cache hits: the seeded entry replayed by the gateway against nginx returning the same bytes.

header_of() {  # header_of FILE NAME: the value of header NAME in a curl -D dump (last one wins)
    tr -d '\r' <"$1" | awk -v n="$(printf '%s' "$2" | tr 'A-Z' 'a-z')" -F': ' 'tolower($1) == n { v = substr($0, length($1) + 3) } END { print v }'
}

cache_usage() {  # bench/cache's audit totals as {requests, cache_hits, errors}
    "$GW" usage --project bench/cache --by project --json 2>/dev/null |
        jq -c '(.[0] // {}) | {requests: (.requests // 0), cache_hits: (.cache_hits // 0), errors: (.errors // 0)}'
}

part_h() {
    log "part h: cache hits at $HIT_RATES req/s against a static nginx answer of the same bytes, then stepping $HIT_STEP_RATES; load $(loadavg)"
    local code verdict r i files=() steps=() held=null stop_reason="all step rates held" escaped
    h_fail() { log "part h: $*"; jq -n --arg e "$*" '{ran: false, error: $e}' >"$T/cache_hit.json"; }

    # A project of its own: its audit rows are this part's requests only.
    {
        "$GW" project create bench/cache &&
        echo sim-key | "$GW" provider set bench/cache openai --base-url "http://127.0.0.1:$SIM_PORT/openai"
    } >>"$T/setup.log" 2>&1 || { h_fail "setup of bench/cache failed: $(tail -3 "$T/setup.log")"; return; }
    KEY_CACHE="$("$GW" key create bench/cache --json 2>>"$T/setup.log" | jq -r '.secret')"
    [ -n "$KEY_CACHE" ] && [ "$KEY_CACHE" != null ] || { h_fail "key create for bench/cache failed"; return; }
    printf '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Cache this answer. [sim words=%s]"}]}' \
        "$WORDS" >"$T/cache.json"
    target_for gateway-hit

    # Seed (MISS), then one HIT: its bytes are what every hit of the runs returns.
    code="$(curl -s -o "$T/cache-seed.json" -D "$T/cache-seed.headers" -w '%{http_code}' "${TARGET_HEADERS[@]}" \
        -H 'Content-Type: application/json' --data-binary @"$TARGET_BODY" "$TARGET_URL")"
    [ "$code" = 200 ] && [ "$(header_of "$T/cache-seed.headers" X-Cache)" = MISS ] ||
        { h_fail "seeding: HTTP $code, X-Cache '$(header_of "$T/cache-seed.headers" X-Cache)': $(head -c 300 "$T/cache-seed.json")"; return; }
    code="$(curl -s -o "$T/cache-hit.json" -D "$T/cache-hit.headers" -w '%{http_code}' "${TARGET_HEADERS[@]}" \
        -H 'Content-Type: application/json' --data-binary @"$TARGET_BODY" "$TARGET_URL")"
    [ "$code" = 200 ] && [ "$(header_of "$T/cache-hit.headers" X-Cache)" = HIT ] ||
        { h_fail "first hit: HTTP $code, X-Cache '$(header_of "$T/cache-hit.headers" X-Cache)': $(head -c 300 "$T/cache-hit.json")"; return; }
    cmp -s "$T/cache-seed.json" "$T/cache-hit.json" || log "part h: WARNING: the hit's body differs from the seeding answer's"

    # The static location answers with exactly those bytes: nginx single-quoted string, with
    # \ and ' escaped and newlines as \n; a $ would be read as a variable, so it is refused.
    grep -q '\$' "$T/cache-hit.json" && { h_fail "the hit's body contains '\$', which nginx's return would expand"; return; }
    escaped="$(sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g" "$T/cache-hit.json" | awk 'NR > 1 { printf "\\n" } { printf "%s", $0 }')"
    [ "$(tail -c 1 "$T/cache-hit.json" | od -An -tx1 | tr -d ' ')" = 0a ] && escaped="$escaped\\n"
    printf 'location = /static-hit { default_type application/json; return 200 '"'"'%s'"'"'; }\n' "$escaped" >"$STATIC_HIT_CONF"
    nginx -t -q -p "$T/nginx" -c "$CONF" -e "$T/nginx/logs/nginx-error.log" 2>"$T/nginx-t-h.log" ||
        { h_fail "nginx -t with the static-hit location: $(cat "$T/nginx-t-h.log")"; return; }
    nginx -p "$T/nginx" -c "$CONF" -e "$T/nginx/logs/nginx-error.log" -s reload 2>"$T/nginx-reload.log" ||
        { h_fail "nginx reload failed: $(cat "$T/nginx-reload.log")"; return; }
    for ((i = 0; i < 100; i++)); do
        curl -s -o "$T/static-hit.out" -H 'Content-Type: application/json' --data-binary @"$T/cache.json" "$BASE/static-hit" &&
            cmp -s "$T/static-hit.out" "$T/cache-hit.json" && break
        sleep 0.1
    done
    cmp -s "$T/static-hit.out" "$T/cache-hit.json" ||
        { h_fail "/static-hit does not answer the hit's bytes after the reload: $(head -c 300 "$T/static-hit.out")"; return; }
    log "part h: seeded ($(wc -c <"$T/cache-hit.json") bytes); /static-hit answers the same bytes"

    local sim_before sim_after usage_after prev
    sim_before="$(curl -s --max-time 5 "http://127.0.0.1:$SIM_PORT/_sim/stats" | jq '.requests')"
    run_rate warm-static static-hit 200 2 >/dev/null 2>&1
    run_rate warm-hit gateway-hit 200 2 >/dev/null 2>&1
    for r in $HIT_RATES; do
        pair "hit$r" "$r" "$DURATION" "$REPEATS" static-hit gateway-hit
        files+=("$T/runs/hit$r.pair.json")
    done

    # Highest hit rate held: p99 ≤ HIT_MAX_P99_MS, no errors, no non-2xx, ≥ 98 % of the target rate.
    for r in $HIT_STEP_RATES; do
        run_rate "hitstep$r" gateway-hit "$r" "$HIT_STEP_DURATION"
        steps+=("$T/runs/hitstep$r.json")
        verdict="$(jq -r --argjson max "$HIT_MAX_P99_MS" '
            if .failed == true or (.errors // 1) > 0 or (.non_2xx // 1) > 0 then "errors or non-2xx answers"
            elif (.achieved_rate // 0) < 0.98 * .target_rate then "saturated (achieved rate < 98 % of target)"
            elif (.p99_ms == null or .p99_ms > $max) then "p99 over the limit"
            else "pass" end' "$T/runs/hitstep$r.json")"
        [ "$verdict" = "p99 over the limit" ] && verdict="p99 > $HIT_MAX_P99_MS ms"
        if [ "$verdict" = pass ]; then
            held="$r"
        else
            stop_reason="$verdict at $r req/s"
            log "part h: step $r req/s: $verdict; stopping"
            break
        fi
    done

    # Every answer a hit: the simulator saw nothing, and the project's audit rows (written
    # asynchronously: wait until the count settles, bounded) are all hits but the seed.
    sim_after="$(curl -s --max-time 5 "http://127.0.0.1:$SIM_PORT/_sim/stats" | jq '.requests')"
    prev=""
    for ((i = 0; i < 30; i++)); do
        usage_after="$(cache_usage)"
        [ -n "$usage_after" ] && [ "$usage_after" = "$prev" ] && break
        prev="$usage_after"
        sleep 1
    done
    [ -n "$usage_after" ] || usage_after='{"requests":0,"cache_hits":0,"errors":0}'

    jq -n --argjson max "$HIT_MAX_P99_MS" --argjson held "$held" --arg reason "$stop_reason" \
        --argjson sim_before "${sim_before:-null}" --argjson sim_after "${sim_after:-null}" --argjson usage "$usage_after" \
        --argjson bytes "$(wc -c <"$T/cache-hit.json")" \
        --slurpfile pairs <(if [ "${#files[@]}" -gt 0 ]; then jq -s . "${files[@]}"; else echo '[]'; fi) \
        --slurpfile steps <(if [ "${#steps[@]}" -gt 0 ]; then jq -s . "${steps[@]}"; else echo '[]'; fi) '
        def r3: if . == null then null else (. * 1000 | round) / 1000 end;
        ($pairs[0] | map({rate, repeats, static: .direct, hit: .gateway,
                          added_p50_ms: .overhead_p50_ms, added_p99_ms: .overhead_p99_ms,
                          runs: {static: .runs.direct, hit: .runs.gateway}})) as $rates
        | {sim_requests_during_hit_runs: (if $sim_before == null or $sim_after == null then null else $sim_after - $sim_before end),
           audit: $usage, non_hit_requests: ($usage.requests - $usage.cache_hits)} as $check
        | ($check.sim_requests_during_hit_runs == 0 and $check.non_hit_requests == 1 and $usage.errors == 0) as $all_hits
        | {ran: true, ttl_s: 3600, body_bytes: $bytes,
           nginx_static: "location = /static-hit { default_type application/json; return 200 <the hit body>; } in the same server",
           verification: ($check + {all_hits: $all_hits,
                          how: "deploxa-loadgen does not read headers: simulator requests during the runs must be 0, and the bench/cache audit rows all cache hits but the seeding MISS"}),
           rates: $rates,
           target_1000: ($rates | map(select(.rate == 1000)) | .[0] // null
                         | if . == null then null else
                           {added_p99_ms, added_p50_ms, target_added_p99_ms: 1,
                            met: (.added_p99_ms != null and .added_p99_ms <= 1 and .hit.errors == 0 and .hit.non_2xx == 0 and $all_hits)} end),
           max_rate: {max_p99_ms: $max, highest_rate_held: $held, stop_reason: $reason,
                      steps: ($steps[0] | map({rate: .target_rate, achieved_rate, p50_ms, p90_ms, p99_ms, p999_ms, max_ms,
                                               errors, non_2xx, status_counts, error_counts, cpu}))}}' >"$T/cache_hit.json" ||
        { h_fail "could not summarise part h"; return; }
    log "part h: $(jq -c '{added: (.rates | map({rate, added_p50_ms, added_p99_ms, hit_p99: .hit.p99_ms, static_p99: .static.p99_ms})), held: .max_rate.highest_rate_held, verification: (.verification | del(.how))}' "$T/cache_hit.json")"
}

# ---------------------------------------------------------------------------------------------
# w. Closed loop: as many requests as CLOSED_CONNECTIONS connections can complete (wrk).

closed_run() {  # closed_run NAME PATH: one wrk run → $T/runs/NAME.closed.json {path, rps, p50_ms, p99_ms, non2xx, errors}
    local name="$1" path="$2" header lua="$T/closed-$2.lua" out="$T/runs/$1.closed"
    target_for "$path"
    {
        printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        for ((header = 1; header < ${#TARGET_HEADERS[@]}; header += 2)); do
            printf 'wrk.headers["%s"] = "%s"\n' "${TARGET_HEADERS[$header]%%:*}" "$(echo "${TARGET_HEADERS[$header]#*: }" | sed 's/"/\\"/g')"
        done
        printf 'wrk.body = [==[%s]==]\n' "$(cat "$TARGET_BODY")"
    } >"$lua"
    timeout --kill-after=5 $((DURATION + 30)) wrk -t1 -c"$CLOSED_CONNECTIONS" -d"${DURATION}s" --latency -s "$lua" "$TARGET_URL" >"$out.txt" 2>&1
    awk -v path="$path" '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /Requests\/sec:/ { rps = $2 }
        $1 == "50.000%" || $1 == "50%" { p50 = ms($2) }
        $1 == "99.000%" || $1 == "99%" { p99 = ms($2) }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ { errors = $4 + $6 + $8 + $10 }
        END { printf "{\"path\":\"%s\",\"rps\":%s,\"p50_ms\":%s,\"p99_ms\":%s,\"non2xx\":%d,\"errors\":%d}\n",
                     path, rps + 0, p50 + 0, p99 + 0, non2xx + 0, errors + 0 }' "$out.txt" >"$out.json"
    log "$name: $(cat "$out.json")"
}

part_w() {
    command -v wrk >/dev/null 2>&1 || { log "part w skipped: wrk is not installed (apt-get install wrk)"; return; }
    log "part w: closed loop, $CLOSED_CONNECTIONS connections, ${DURATION}s each, direct then gateway × $REPEATS; load $(loadavg)"
    local i files=()
    for ((i = 1; i <= REPEATS; i++)); do
        closed_run "closed-direct-$i" direct; sleep 1
        closed_run "closed-gateway-$i" gateway; sleep 1
        files+=("$T/runs/closed-direct-$i.closed.json" "$T/runs/closed-gateway-$i.closed.json")
    done
    jq -s --argjson conns "$CLOSED_CONNECTIONS" '
        def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
        def summary(p): map(select(.path == p)) | {runs: length, rps_each: map(.rps), rps: (map(.rps) | median),
            p50_ms: (map(.p50_ms) | median), p99_ms: (map(.p99_ms) | median),
            non2xx: (map(.non2xx) | add), errors: (map(.errors) | add)};
        {ran: true, connections: $conns, direct: summary("direct"), gateway: summary("gateway")}' "${files[@]}" >"$T/closed.json"
    log "part w: $(jq -c '{direct_rps: .direct.rps, gateway_rps: .gateway.rps, gateway_p50_ms: .gateway.p50_ms, gateway_p99_ms: .gateway.p99_ms}' "$T/closed.json")"
}

echo '{"ran":false}' >"$T/closed.json"
echo '{"ran":false}' >"$T/limits.json"
echo '[]' >"$T/providers.json"
echo 'null' >"$T/translation.json"
echo '{"ran":false}' >"$T/cache_hit.json"
for part in $PARTS; do
    case "$part" in
        a) part_a ;;
        b) part_b ;;
        c) part_c ;;
        l) part_l ;;
        p) part_p ;;
        t) part_t ;;
        h) part_h ;;
        w) part_w ;;
        *) log "unknown part '$part' (a, b, c, l, p, t, w or h)" ;;
    esac
done

# ---------------------------------------------------------------------------------------------
# Evidence and results.

LOAD_END="$(loadavg)"
WORKERS_AT_END="$(worker_pids)"
mkdir -p "$RESULTS_DIR"
base="${RESULTS%.json}"
tail -n 300 "$T/serve.log" >"$base-serve.log" 2>/dev/null
tail -n 300 "$T/nginx/logs/nginx-error.log" >"$base-nginx-error.log" 2>/dev/null
serve_lines="$(wc -l <"$T/serve.log")"
serve_err_lines="$(grep -ciE 'error|critical|crash|exited|signal' "$T/serve.log")"
nginx_err_lines="$(grep -cE '\[(error|crit|alert|emerg)\]' "$T/nginx/logs/nginx-error.log" 2>/dev/null)"
nginx_err_lines="${nginx_err_lines:-0}"

CPU_MODEL="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
MEM_TOTAL_KB="$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
SWIFT_VERSION="$(swift --version 2>/dev/null | head -1)"
NGINX_VERSION="$(nginx -v 2>&1 | sed 's/^nginx version: //')"
SOURCES_CHANGED_SINCE_BUILD="$(find "$ROOT/Sources" "$ROOT/Package.swift" -newer "$GW" -type f 2>/dev/null | wc -l)"
SQLITE_VERSION="$(pkg-config --modversion sqlite3 2>/dev/null || echo unknown)"

jq -n --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg host "$(uname -srm)" --arg cpu "$CPU_MODEL" \
    --argjson cores "$(nproc)" --argjson mem "$MEM_TOTAL_KB" --arg swift "$SWIFT_VERSION" \
    --arg nginx "$NGINX_VERSION" --arg sqlite "$SQLITE_VERSION" \
    --arg git_rev "$GIT_REV" --argjson git_dirty "$GIT_DIRTY" --arg built "$BINARY_BUILT" \
    --argjson changed_after "$SOURCES_CHANGED_SINCE_BUILD" \
    --arg load_start "$LOAD_START" --arg load_end "$LOAD_END" \
    --argjson workers "$WORKERS" --argjson dur "$DURATION" --argjson warm "$WARMUP" \
    --argjson step_dur "$STEP_DURATION" --argjson conns "$CONNECTIONS" --argjson lgthreads "$LOADGEN_THREADS" \
    --argjson words "$WORDS" --arg parts "$PARTS" \
    --arg wstart "$WORKERS_AT_START" --arg wend "$WORKERS_AT_END" \
    --argjson idle_cpu "$IDLE_CPU_JSON" --argjson serve_lines "$serve_lines" --argjson serve_err "$serve_err_lines" --argjson nginx_err "$nginx_err_lines" \
    --slurpfile overhead "$T/overhead.json" --slurpfile steps "$T/steps.json" \
    --slurpfile memory "$T/memory.json" --slurpfile cpuper "$T/cpu.json" --slurpfile limits "$T/limits.json" \
    --slurpfile providers "$T/providers.json" --slurpfile translation "$T/translation.json" \
    --slurpfile cachehit "$T/cache_hit.json" --slurpfile closed "$T/closed.json" --arg gateway_bin "$GW" '
    {date: $date,
     machine: {kernel: $host, cpu: $cpu, cores: $cores, mem_total_mb: ($mem / 1024 | round),
               swift: $swift, nginx: $nginx, sqlite: $sqlite},
     source: {git_head_before_build: $git_rev, uncommitted_files_in_sources_before_build: $git_dirty,
              gateway_binary_built: $built, source_files_changed_after_build: $changed_after},
     loadavg: {start: $load_start, end: $load_end},
     config: {workers: $workers, duration_s: $dur, warmup_s: $warm, step_duration_s: $step_dur,
              loadgen_connections: $conns, loadgen_threads: $lgthreads, sim_words: $words, parts: $parts,
              nginx: "nginx/nginx.local.conf.template (worker_processes 1), access_log off, + /direct/ proxy location (upstream keepalive 256, proxy_buffering off), + /static-hit return location (part h)"},
     targets: {
       overhead_500: ($overhead[0] | map(select(.rate == 500)) | .[0] // null
                      | if . == null then null else
                        {p50_ms: .overhead_p50_ms, p99_ms: .overhead_p99_ms,
                         p50_target_ms: 1, p99_target_ms: 3,
                         met: (.overhead_p50_ms <= 1 and .overhead_p99_ms <= 3
                               and .gateway.errors == 0 and .gateway.non_2xx == 0)} end),
       streams_1000: (if $memory[0].ran then
                        {workers_rss_mb: $memory[0].rss_mb.workers_streams_open, target_mb: 400,
                         established: $memory[0].loadgen.established,
                         met: ($memory[0].rss_mb.workers_streams_open < 400
                               and $memory[0].loadgen.established == $memory[0].streams)}
                      else null end),
       cache_hit_1000: (if $cachehit[0].ran then $cachehit[0].target_1000 else null end)},
     limits: $limits[0],
     providers: ($providers[0] | map({provider, rate, native: .direct, gateway, overhead_p50_ms, overhead_p99_ms,
                                      met: (.overhead_p50_ms <= 1 and .overhead_p99_ms <= 3 and .gateway.errors == 0 and .gateway.non_2xx == 0)})),
     translation: $translation[0],
     cache_hit: $cachehit[0],
     closed_loop: $closed[0],
     gateway_binary: $gateway_bin,
     overhead: $overhead[0], cpu_per_request: $cpuper[0], idle_cpu: $idle_cpu, memory: $memory[0], max_rate: $steps[0],
     gateway_health: {worker_pids_start: $wstart, worker_pids_end: $wend,
                      serve_log_lines: $serve_lines, serve_log_error_like_lines: $serve_err,
                      nginx_error_log_error_lines: $nginx_err}}' >"$RESULTS" || die "could not write $RESULTS"

# ---------------------------------------------------------------------------------------------
# Summary table.

{
    echo
    echo "Deploxa gateway benchmarks — $(jq -r .date "$RESULTS")"
    echo "machine: $(jq -r '.machine | "\(.cores) cores \(.cpu), \(.mem_total_mb) MB, \(.kernel)"' "$RESULTS")"
    echo "workers: $WORKERS   load average: start $LOAD_START, end $LOAD_END"
    echo
    if [ "$(jq '.overhead | length' "$RESULTS")" -gt 0 ]; then
        echo "a. overhead (open loop, ${DURATION}s measured + ${WARMUP}s warm-up, medians of $REPEATS alternating runs, latency in ms)"
        printf '%-9s %9s %9s %9s %9s %9s %9s %10s %7s\n' rate dir_p50 dir_p99 gw_p50 gw_p99 ovh_p50 ovh_p99 gw_achvd gw_err
        jq -r '.overhead[] | [.rate, .direct.p50_ms, .direct.p99_ms, .gateway.p50_ms, .gateway.p99_ms,
            .overhead_p50_ms, .overhead_p99_ms, .gateway.achieved_rate, ((.gateway.errors // 0) + (.gateway.non_2xx // 0))]
            | map(tostring) | @tsv' "$RESULTS" |
            while IFS=$'\t' read -r a b c d e f g h i; do
                printf '%-9s %9s %9s %9s %9s %9s %9s %10s %7s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g" "$h" "$i"
            done
        echo
    fi
    if [ "$(jq '.cpu_per_request != null' "$RESULTS")" = true ]; then
        echo "d. CPU per request at $CPU_RATE req/s (µs; incl. warm-up requests)"
        printf '%-8s %8s %8s %8s %10s %8s\n' path nginx workers master simulator loadgen
        for p in direct gateway; do
            jq -r --arg p "$p" '.cpu_per_request[$p] | [$p, .nginx_us_per_req, .workers_us_per_req, .master_us_per_req,
                .simulator_us_per_req, .loadgen_us_per_req] | map(tostring) | @tsv' "$RESULTS" |
                while IFS=$'\t' read -r a b c d e f; do printf '%-8s %8s %8s %8s %10s %8s\n' "$a" "$b" "$c" "$d" "$e" "$f"; done
        done
        echo "   gateway workers by thread (µs/request): $(jq -r '.cpu_per_request.gateway_worker_threads_us_per_req // {}
            | to_entries | sort_by(-.value) | map(select(.value > 0) | "\(.key) \(.value)") | join(", ")' "$RESULTS")"
        echo
    fi
    if [ "$(jq '.memory.ran' "$RESULTS")" = true ]; then
        echo "c. memory with $STREAMS open streams (RSS, MB)"
        jq -r '.memory | "   workers: idle fresh \(.rss_mb.workers_idle_fresh), idle before \(.rss_mb.workers_idle_before), streams open \(.rss_mb.workers_streams_open) (peak HWM \(.rss_mb.workers_peak_hwm)), 5 s after close \(.rss_mb.workers_5s_after_close)",
            "   master: \(.rss_mb.master_idle_before) → \(.rss_mb.master_streams_open)   simulator: \(.rss_mb.simulator_idle_before) → \(.rss_mb.simulator_streams_open)   nginx: \(.rss_mb.nginx_idle_before) → \(.rss_mb.nginx_streams_open)",
            "   streams: established \(.loadgen.established // "?"), first_byte \(.loadgen.first_byte // "?"), completed \(.loadgen.completed // "?"), held to end \(.loadgen.held_to_end // "?"), errors \(.loadgen.errors // "?"), status \(.loadgen.status_counts // {} | tostring), ttfb p99 \(.loadgen.ttfb_p99_ms // "?") ms",
            "   direct baseline: established \(.direct_baseline.established // "?"), ttfb p50 \(.direct_baseline.ttfb_p50_ms // "?") ms, p99 \(.direct_baseline.ttfb_p99_ms // "?") ms; gateway ttfb p50 \(.loadgen.ttfb_p50_ms // "?") ms",
            "   simulator in-flight while open: \(.simulator_stats_while_open.in_flight // "?"), 5 s after close: \(.simulator_stats_5s_after.in_flight // "?")"' "$RESULTS"
        echo
    fi
    if [ "$(jq '.max_rate.ran' "$RESULTS")" = true ]; then
        echo "b. highest rate with p99 overhead < ${MAX_P99_OVERHEAD_MS} ms and no errors: $(jq -r '.max_rate.highest_passing_rate // "none"' "$RESULTS") req/s ($(jq -r .max_rate.stop_reason "$RESULTS"))"
        printf '%-9s %9s %9s %9s %9s %10s %7s\n' rate dir_p99 gw_p50 gw_p99 ovh_p99 gw_achvd gw_err
        jq -r '.max_rate.steps[] | [.rate, .direct.p99_ms, .gateway.p50_ms, .gateway.p99_ms, .overhead_p99_ms,
            .gateway.achieved_rate, ((.gateway.errors // 0) + (.gateway.non_2xx // 0))] | map(tostring) | @tsv' "$RESULTS" |
            while IFS=$'\t' read -r a b c d e f g; do printf '%-9s %9s %9s %9s %9s %10s %7s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g"; done
        echo
    fi
    if [ "$(jq '.providers | length' "$RESULTS")" -gt 0 ]; then
        echo "p. overhead per provider at $PROVIDER_RATE req/s (gateway with X-AI-Provider vs the provider's native request straight to the simulator; medians of $REPEATS, ms)"
        printf '%-10s %9s %9s %9s %9s %9s %9s %7s %6s\n' provider nat_p50 nat_p99 gw_p50 gw_p99 ovh_p50 ovh_p99 gw_err met
        jq -r '.providers[] | [.provider, .native.p50_ms, .native.p99_ms, .gateway.p50_ms, .gateway.p99_ms, .overhead_p50_ms,
            .overhead_p99_ms, ((.gateway.errors // 0) + (.gateway.non_2xx // 0)), .met] | map(tostring) | @tsv' "$RESULTS" |
            while IFS=$'\t' read -r a b c d e f g h i; do printf '%-10s %9s %9s %9s %9s %9s %9s %7s %6s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g" "$h" "$i"; done
        echo
    fi
    if [ "$(jq '.translation != null' "$RESULTS")" = true ]; then
        echo "t. translation cost per request, in-process (µs; × = against JSON parse+serialise of the same bytes)"
        printf '%-10s %16s %18s %22s %10s\n' provider request response stream_500_chunks ns/chunk
        jq -r '.translation[] | [.provider, "\(.request_us) (×\((.request_us / .request_baseline_us * 10 | round) / 10))",
            "\(.response_us) (×\((.response_us / .response_baseline_us * 10 | round) / 10))",
            "\(.stream_us) (×\((.stream_us / .stream_baseline_us * 10 | round) / 10))", .stream_ns_per_chunk] | map(tostring) | @tsv' "$RESULTS" |
            while IFS=$'\t' read -r a b c d e; do printf '%-10s %16s %18s %22s %10s\n' "$a" "$b" "$c" "$d" "$e"; done
        echo
    fi
    if [ "$(jq '.limits.ran' "$RESULTS")" = true ]; then
        echo "l. limits on vs off at $LIMITS_RATE req/s (medians of $REPEATS alternating runs, ms) and the multi-process hammer"
        jq -r '.limits | "   off: p50 \(.off.p50_ms) p99 \(.off.p99_ms) (workers \(.off.workers_us_per_req) µs CPU/req)   on: p50 \(.on.p50_ms) p99 \(.on.p99_ms) (workers \(.on.workers_us_per_req) µs CPU/req), errors \(.on.errors) non-2xx \(.on.non_2xx)",
            "   cost of limits: p50 \(.cost_p50_ms) ms, p99 \(.cost_p99_ms) ms, \(.cost_workers_us_per_req) µs worker CPU per request",
            "   hammer: \(.hammer.processes) × \(.hammer.admissions_each) admissions, limit \(.hammer.limit): admitted \(.hammer.admitted), refused \(.hammer.refused), SQLITE_BUSY \(.hammer.busy_errors), exact \(.hammer.exact); \(.hammer.admissions_per_s) admissions/s, p50 \(.hammer.p50_ms_each) ms, p99 \(.hammer.p99_ms_each) ms"' "$RESULTS"
        echo
    fi
    if [ "$(jq '.cache_hit.ran' "$RESULTS")" = true ]; then
        echo "h. cache hits vs nginx returning the same bytes (/static-hit), medians of $REPEATS alternating runs, ms"
        printf '%-9s %9s %9s %9s %9s %9s %9s %10s %7s\n' rate st_p50 st_p99 hit_p50 hit_p99 add_p50 add_p99 hit_achvd hit_err
        jq -r '.cache_hit.rates[] | [.rate, .static.p50_ms, .static.p99_ms, .hit.p50_ms, .hit.p99_ms, .added_p50_ms, .added_p99_ms,
            .hit.achieved_rate, ((.hit.errors // 0) + (.hit.non_2xx // 0))] | map(tostring) | @tsv' "$RESULTS" |
            while IFS=$'\t' read -r a b c d e f g h i; do
                printf '%-9s %9s %9s %9s %9s %9s %9s %10s %7s\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g" "$h" "$i"
            done
        jq -r '.cache_hit | "   every answer a hit: \(.verification.all_hits) (simulator requests during the runs \(.verification.sim_requests_during_hit_runs), audit rows \(.verification.audit.requests), of which cache hits \(.verification.audit.cache_hits), errors \(.verification.audit.errors))",
            "   highest hit rate held with p99 ≤ \(.max_rate.max_p99_ms) ms and no errors: \(.max_rate.highest_rate_held // "none") req/s (\(.max_rate.stop_reason))",
            (.max_rate.steps[] | "     \(.rate) req/s: achieved \(.achieved_rate), p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, errors \(.errors), non-2xx \(.non_2xx)")' "$RESULTS"
        echo
    elif [ "$(jq -r '.cache_hit.error // empty' "$RESULTS")" != "" ]; then
        echo "h. cache hits: not measured: $(jq -r '.cache_hit.error' "$RESULTS")"
        echo
    fi
    echo "targets:"
    jq -r '.targets | "   overhead at 500 req/s (p50 ≤ 1 ms, p99 ≤ 3 ms): \(if .overhead_500 == null then "not run" else "p50 \(.overhead_500.p50_ms) ms, p99 \(.overhead_500.p99_ms) ms → \(if .overhead_500.met then "MET" else "NOT MET" end)" end)",
        "   1,000 streams under 400 MB worker RSS: \(if .streams_1000 == null then "not run" else "\(.streams_1000.workers_rss_mb) MB, \(.streams_1000.established) established → \(if .streams_1000.met then "MET" else "NOT MET" end)" end)"' "$RESULTS"
    jq -r '.limits | "   limits cost ≤ 0.3 ms p50 at \(.rate // "-") req/s: \(if .ran then "\(.cost_p50_ms) ms → \(if .met then "MET" else "NOT MET" end)" else "not run" end)"' "$RESULTS"
    jq -r '.targets.cache_hit_1000 | "   cache hit adds ≤ 1 ms p99 at 1,000 req/s: \(if . == null then "not run" else "\(.added_p99_ms) ms → \(if .met then "MET" else "NOT MET" end)" end)"' "$RESULTS"
    echo "gateway: workers [$WORKERS_AT_START] at start, [$WORKERS_AT_END] at end; serve log $serve_lines lines ($serve_err_lines error-like); nginx error log $nginx_err_lines error lines"
    echo "results: $RESULTS"
}

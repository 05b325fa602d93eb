#!/usr/bin/env bash
# Sets up and runs the Deploxa AI Gateway locally, without touching system configuration:
#   1. installs nginx, libfcgi-dev, libsqlite3-dev (apt-get) when missing,
#   2. builds the release binary,
#   3. creates run/gateway.db with a demo org, project and key,
#   4. configures provider openai from $OPENAI_API_KEY, or else the built-in provider simulator,
#   5. starts `deploxa-gateway serve` (2 workers) and nginx on 127.0.0.1:8080,
#   6. prints the demo key and a curl line to try.
#
#   deploy/run-local.sh          set up and start (again)
#   deploy/run-local.sh stop     stop everything it started
#
# Environment: DEPLOXA_PORT (8080), DEPLOXA_SIM_PORT (9000), DEPLOXA_RUN_DIR (./run), OPENAI_API_KEY.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=${DEPLOXA_RUN_DIR:-$ROOT/run}
PORT=${DEPLOXA_PORT:-8080}
SIM_PORT=${DEPLOXA_SIM_PORT:-9000}
export DEPLOXA_GATEWAY_DB=$RUN/gateway.db

stop_all() {
    if [ -f "$RUN/nginx.pid" ]; then nginx -p "$RUN" -c "$RUN/nginx.conf" -s quit 2>/dev/null || true; fi
    for name in gateway simulator; do
        if [ -f "$RUN/$name.pid" ]; then
            pid=$(cat "$RUN/$name.pid")
            if kill -0 "$pid" 2>/dev/null; then
                kill -QUIT "$pid" 2>/dev/null || true
                for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$pid" 2>/dev/null || true
            fi
            rm -f "$RUN/$name.pid"
        fi
    done
}

if [ "${1:-}" = "stop" ]; then
    stop_all
    echo "Stopped."
    exit 0
fi

# 1. System packages.
bash "$ROOT/deploy/install-packages.sh"

# 2. Build.
echo "Building (release) ..."
cd "$ROOT"
swift build -c release --product deploxa-gateway 2>&1 | tail -1
BIN=$(swift build -c release --show-bin-path)/deploxa-gateway

stop_all
mkdir -p "$RUN/logs" "$RUN/tmp"
chmod 755 "$RUN"

# 3. Database and demo tenant.
"$BIN" migrate
if ! "$BIN" project list --json | grep -q '"demo/app"'; then
    "$BIN" org create demo >/dev/null 2>&1 || true
    "$BIN" project create demo/app >/dev/null
fi

# 4. Providers: the real API when its key is in the environment, else the built-in simulator.
simulated=()
for entry in openai:OPENAI_API_KEY anthropic:ANTHROPIC_API_KEY google:GEMINI_API_KEY mistral:MISTRAL_API_KEY cohere:COHERE_API_KEY; do
    provider="${entry%%:*}" variable="${entry#*:}"
    if [ -n "${!variable:-}" ]; then
        "$BIN" provider set demo/app "$provider" --api-key-env "$variable" >/dev/null
        echo "Provider $provider: the real API, with the key from \$$variable."
    else
        simulated+=("$provider")
    fi
done
if [ "${#simulated[@]}" -gt 0 ]; then
    nohup "$BIN" simulate --listen "127.0.0.1:$SIM_PORT" >"$RUN/logs/simulator.log" 2>&1 &
    echo $! >"$RUN/simulator.pid"
    for provider in "${simulated[@]}"; do
        echo "simulator-key" | "$BIN" provider set demo/app "$provider" --base-url "http://127.0.0.1:$SIM_PORT/$provider" >/dev/null
    done
    echo "Providers ${simulated[*]}: no API key in the environment, so they point at the built-in provider simulator on 127.0.0.1:$SIM_PORT."
fi

# 5. Workers and nginx.
# The socket is 0660 by default (owner and group). nginx started by root runs its workers as
# `nobody` (the template has no `user` directive), a user in neither, so then the socket is opened
# to everyone (it sits in this user's run folder, on a loopback-only setup); started by a plain
# user, nginx's workers are that user and the default suffices.
SOCKET_MODE=0660
[ "$(id -u)" = 0 ] && SOCKET_MODE=0666
nohup "$BIN" serve --socket "$RUN/gateway.sock" --socket-mode "$SOCKET_MODE" --workers 2 --pid-file "$RUN/gateway.pid" >>"$RUN/logs/gateway.log" 2>&1 &
sed -e "s#@PREFIX@#$RUN#g" -e "s#@SOCKET@#$RUN/gateway.sock#g" -e "s#@LISTEN@#127.0.0.1:$PORT#g" \
    "$ROOT/nginx/nginx.local.conf.template" >"$RUN/nginx.conf"
for _ in $(seq 1 50); do [ -S "$RUN/gateway.sock" ] && break; sleep 0.1; done
nginx -p "$RUN" -c "$RUN/nginx.conf" 2>&1 | grep -v 'the "user" directive' || true

for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null

# The demo key is created once and kept (0600) in the run folder (the database stores only its
# hash); a new one is made when the kept one no longer works (new database, revoked).
KEY=$(cat "$RUN/demo-key" 2>/dev/null || true)
status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/models" -H "Authorization: Bearer $KEY")
if [ "$status" != 200 ]; then
    (umask 077; "$BIN" key create demo/app --name demo 2>/dev/null >"$RUN/demo-key")
    KEY=$(cat "$RUN/demo-key")
fi

# An installation-wide admin token for the dashboard and the admin API, kept like the demo key.
ADMIN=$(cat "$RUN/admin-token" 2>/dev/null || true)
status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/v1/projects" -H "Authorization: Bearer $ADMIN")
if [ "$status" != 200 ]; then
    (umask 077; "$BIN" admin-token create --name local-admin 2>/dev/null >"$RUN/admin-token")
    ADMIN=$(cat "$RUN/admin-token")
fi

# 6. Try it.
cat <<INFO

Deploxa AI Gateway is running on http://127.0.0.1:$PORT  (logs: $RUN/logs, database: $RUN/gateway.db)
Demo gateway key (project demo/app): $KEY

Try:
  curl http://127.0.0.1:$PORT/v1/chat/completions -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" -d '{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}]}'

Stream:
  curl -N http://127.0.0.1:$PORT/v1/chat/completions -H "Authorization: Bearer $KEY" -d '{"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "Hello!"}]}'

Another provider, same request (translated to Anthropic's Messages API and back):
  curl http://127.0.0.1:$PORT/v1/chat/completions -H "Authorization: Bearer $KEY" -d '{"model": "claude-sonnet-4", "messages": [{"role": "user", "content": "Hello!"}]}'

Cached for 60 s (the second call says X-Cache: HIT and costs nothing):
  curl -i http://127.0.0.1:$PORT/v1/chat/completions -H "Authorization: Bearer $KEY" -H "X-Cache-TTL: 60" -d '{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}]}'

Falling back to Anthropic when OpenAI fails (the simulator fails OpenAI on "[sim openai:status=503]"):
  curl -i http://127.0.0.1:$PORT/v1/chat/completions -H "Authorization: Bearer $KEY" -H "X-AI-Fallback: anthropic/claude-sonnet-4" -d '{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello! [sim openai:status=503]"}]}'

Dashboard:  http://127.0.0.1:$PORT/dashboard   (log in with the admin token below)
Admin token (whole installation): $ADMIN
Admin API:  curl 'http://127.0.0.1:$PORT/api/v1/usage?group_by=model' -H "Authorization: Bearer $ADMIN"

Audit log:  DEPLOXA_GATEWAY_DB=$RUN/gateway.db $BIN audit export
Stop:       deploy/run-local.sh stop
INFO

#!/usr/bin/env bash
# Runs two Deploxa AI Gateway nodes on this machine sharing one PostgreSQL database, behind one
# nginx, without touching system configuration (a local demo of a multi-node installation):
#   1. installs nginx, libfcgi-dev, libsqlite3-dev, postgresql (apt-get) when missing,
#   2. builds the release binary,
#   3. starts a throwaway PostgreSQL 15 cluster in run-two-nodes/pg (127.0.0.1 and a unix socket in
#      that folder only, `trust` authentication: a demo, not a production setup) with a database
#      "deploxa"; the cluster is created once and reused,
#   4. migrates it and creates a demo org, project and key (60 requests a minute, shared by both
#      nodes), and configures provider openai from $OPENAI_API_KEY, or else the built-in simulator,
#   5. starts two `deploxa-gateway serve` masters (2 workers each, their own socket, pid file, log
#      file and audit journal, the same --db URL) and nginx on 127.0.0.1:8080, balancing the two
#      sockets round robin (each access-log line names its node in up=…),
#   6. prints the demo key, a curl line to try and a line that shows which node answered what.
#
#   deploy/run-two-nodes.sh          set up and start (again)
#   deploy/run-two-nodes.sh stop     stop everything it started (nginx, both nodes, the simulator,
#                                    the PostgreSQL cluster); the data stays for the next start
#
# Environment: DEPLOXA_PORT (8080), DEPLOXA_SIM_PORT (9000), DEPLOXA_PG_PORT (55433),
# DEPLOXA_RUN_DIR (./run-two-nodes), DEPLOXA_PG_BIN (/usr/lib/postgresql/15/bin), OPENAI_API_KEY.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=${DEPLOXA_RUN_DIR:-$ROOT/run-two-nodes}
PORT=${DEPLOXA_PORT:-8080}
SIM_PORT=${DEPLOXA_SIM_PORT:-9000}
PG_PORT=${DEPLOXA_PG_PORT:-55433}
PG_BIN=${DEPLOXA_PG_BIN:-/usr/lib/postgresql/15/bin}
PG=$RUN/pg                      # the cluster: data/, its unix socket, postgres.log
NODES=(node1 node2)

# PostgreSQL refuses to run as root: then initdb and pg_ctl run as the `postgres` OS user (which
# Debian's postgresql package creates) and the cluster's folder belongs to it.
as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        (cd "$PG" && runuser -u postgres -- "$@")
    else
        (cd "$PG" && "$@")
    fi
}

pg_running() { [ -f "$PG/data/postmaster.pid" ] && as_postgres "$PG_BIN/pg_ctl" -D "$PG/data" status >/dev/null 2>&1; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop_pid_file() {   # SIGQUIT (graceful stop), then wait up to 10 s, then SIGKILL
    local file=$1 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -QUIT "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

stop_gateway() {    # nginx, both nodes and the simulator; the cluster keeps running
    if [ -f "$RUN/nginx.pid" ]; then
        nginx -p "$RUN" -c "$RUN/nginx.conf" -s quit 2>/dev/null || true
        for _ in $(seq 1 100); do [ -f "$RUN/nginx.pid" ] || break; sleep 0.1; done
        stop_pid_file "$RUN/nginx.pid"
    fi
    for node in "${NODES[@]}"; do
        stop_pid_file "$RUN/$node.pid"
        rm -f "$RUN/$node.sock"
    done
    stop_pid_file "$RUN/simulator.pid"
}

if [ "${1:-}" = "stop" ]; then
    stop_gateway
    if pg_running; then as_postgres "$PG_BIN/pg_ctl" -D "$PG/data" -m fast -w stop >/dev/null; fi
    echo "Stopped (data kept in $RUN)."
    exit 0
elif [ -n "${1:-}" ]; then
    echo "usage: $0 [stop]" >&2
    exit 2
fi

# 1. System packages.
bash "$ROOT/deploy/install-packages.sh" --postgres
[ -x "$PG_BIN/initdb" ] || { echo "No PostgreSQL in $PG_BIN (set DEPLOXA_PG_BIN)." >&2; exit 1; }

# 2. Build.
echo "Building (release) ..."
cd "$ROOT"
swift build -c release --product deploxa-gateway 2>&1 | tail -1
BIN=$(swift build -c release --show-bin-path)/deploxa-gateway

stop_gateway
for port in "$PORT" "$SIM_PORT"; do
    if port_busy "$port"; then
        echo "Port $port on 127.0.0.1 is in use; choose others with DEPLOXA_PORT / DEPLOXA_SIM_PORT." >&2
        exit 1
    fi
done
mkdir -p "$RUN/logs" "$RUN/tmp" "$PG"
chmod 755 "$RUN"

# 3. The PostgreSQL cluster (created the first time, then reused with its data).
if [ "$(id -u)" = 0 ]; then chown postgres: "$PG"; fi
chmod 755 "$PG"
if [ ! -f "$PG/data/PG_VERSION" ]; then
    echo "Creating a PostgreSQL cluster in $PG/data ..."
    as_postgres "$PG_BIN/initdb" -D "$PG/data" -A trust -U postgres -E UTF8 --locale=C >"$PG/initdb.log" 2>&1 \
        || { cat "$PG/initdb.log" >&2; exit 1; }
    cat >>"$PG/data/postgresql.conf" <<CONF

# deploy/run-two-nodes.sh: loopback and this folder's unix socket only (the port is given at start).
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG'
timezone = 'UTC'
CONF
fi
if pg_running; then
    PG_PORT=$(sed -n 4p "$PG/data/postmaster.pid")
    echo "PostgreSQL is already running on 127.0.0.1:$PG_PORT."
else
    if port_busy "$PG_PORT"; then
        echo "Port $PG_PORT on 127.0.0.1 is in use; choose another with DEPLOXA_PG_PORT." >&2
        exit 1
    fi
    as_postgres "$PG_BIN/pg_ctl" -D "$PG/data" -l "$PG/postgres.log" -o "-p $PG_PORT" -w -t 30 start >/dev/null \
        || { tail -20 "$PG/postgres.log" >&2; exit 1; }
    echo "PostgreSQL started on 127.0.0.1:$PG_PORT (data: $PG/data, log: $PG/postgres.log)."
fi
PSQL=("$PG_BIN/psql" -X -q -h "$PG" -p "$PG_PORT" -U postgres)
if [ "$("${PSQL[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'deploxa'")" != 1 ]; then
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE deploxa"
fi
DB="postgresql://postgres@127.0.0.1:$PG_PORT/deploxa"

# 4. Schema, demo tenant and provider (the database is shared: this is done once, for both nodes).
"$BIN" migrate --db "$DB"
projects=$("$BIN" project list --db "$DB" --json)
if ! grep -q '"demo/app"' <<<"$projects"; then
    "$BIN" org create demo --db "$DB" >/dev/null 2>&1 || true
    "$BIN" project create demo/app --db "$DB" >/dev/null
fi
if [ -n "${OPENAI_API_KEY:-}" ]; then
    "$BIN" provider set demo/app openai --api-key-env OPENAI_API_KEY --db "$DB" >/dev/null
    echo "Provider openai: the real API, with the key from \$OPENAI_API_KEY."
else
    nohup "$BIN" simulate --listen "127.0.0.1:$SIM_PORT" >"$RUN/logs/simulator.log" 2>&1 &
    echo $! >"$RUN/simulator.pid"
    echo "simulator-key" | "$BIN" provider set demo/app openai --base-url "http://127.0.0.1:$SIM_PORT/openai" --db "$DB" >/dev/null
    echo "Provider openai: no OPENAI_API_KEY in the environment, so it points at the built-in provider simulator on 127.0.0.1:$SIM_PORT."
fi

# 5. Two nodes and nginx. nginx started by root runs its workers as `nobody`, so then the sockets
# are opened to everyone (they sit in this run folder, on a loopback-only setup); see run-local.sh.
SOCKET_MODE=0660
[ "$(id -u)" = 0 ] && SOCKET_MODE=0666
for node in "${NODES[@]}"; do
    nohup "$BIN" serve --db "$DB" --socket "$RUN/$node.sock" --socket-mode "$SOCKET_MODE" --workers 2 \
        --pid-file "$RUN/$node.pid" --log-file "$RUN/logs/$node.log" --audit-journal "$RUN/$node.audit-journal" \
        >>"$RUN/logs/$node.log" 2>&1 &
done
for node in "${NODES[@]}"; do
    for _ in $(seq 1 100); do [ -S "$RUN/$node.sock" ] && break; sleep 0.1; done
    [ -S "$RUN/$node.sock" ] || { echo "$node did not start; see $RUN/logs/$node.log:" >&2; tail -20 "$RUN/logs/$node.log" >&2; exit 1; }
done

# nginx.conf: the local template, with every fastcgi_pass going to an upstream of both sockets
# (round robin) and the answering node's socket in each access-log line (up=…).
sed -e "s#@PREFIX@#$RUN#g" -e "s#@LISTEN@#127.0.0.1:$PORT#g" \
    -e 's#fastcgi_pass unix:@SOCKET@;#fastcgi_pass deploxa;#' \
    -e 's#urt=$upstream_response_time#& up=$upstream_addr#' \
    -e "/^http {/a\\
    upstream deploxa {\\
        server unix:$RUN/node1.sock;\\
        server unix:$RUN/node2.sock;\\
    }" "$ROOT/nginx/nginx.local.conf.template" >"$RUN/nginx.conf"
nginx -p "$RUN" -c "$RUN/nginx.conf" 2>&1 | grep -v 'the "user" directive' || true

for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
for _ in "${NODES[@]}"; do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null; done   # once per node (round robin)

# The demo key is created once and kept (0600) in the run folder (the database stores only its
# hash); a new one is made when the kept one no longer works (new cluster, revoked).
KEY=$(cat "$RUN/demo-key" 2>/dev/null || true)
status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/models" -H "Authorization: Bearer $KEY")
if [ "$status" != 200 ]; then
    (umask 077; "$BIN" key create demo/app --name demo --rpm 60 --db "$DB" 2>/dev/null >"$RUN/demo-key")
    KEY=$(cat "$RUN/demo-key")
fi

# 6. Try it.
cat <<INFO

Deploxa AI Gateway: two nodes (masters $(cat "$RUN/node1.pid") and $(cat "$RUN/node2.pid"), 2 workers each) behind nginx on http://127.0.0.1:$PORT
Shared database: $DB   (logs: $RUN/logs)
Demo gateway key (project demo/app, 60 requests a minute across both nodes): $KEY

Try:
  curl http://127.0.0.1:$PORT/v1/chat/completions -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" -d '{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}]}'

Which node answered (requests per node socket, from nginx's access log):
  grep -o 'up=[^ ]*' $RUN/logs/nginx-access.log | sort | uniq -c

A key limited to 5 requests a minute (the 6th gets 429, whichever node it reaches):
  $BIN key create demo/app --name rpm5 --rpm 5 --db $DB

Commands against the shared database take --db, e.g.:
  $BIN usage --db $DB
  $BIN audit export --db $DB
psql:  psql -h $PG -p $PG_PORT -U postgres deploxa
Stop:  deploy/run-two-nodes.sh stop
INFO

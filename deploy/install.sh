#!/usr/bin/env bash
# Installs the Deploxa AI Gateway on a Debian 12 machine whose nginx already serves HTTPS.
# deploy/INSTALL.md lists the same steps, in the same order, for doing it by hand.
#
#   deploy/install.sh [--binary PATH] [--socket PATH]    install, or upgrade (run it again)
#   deploy/install.sh --uninstall                        remove it, keeping the database
#   ... --root DIR                                       into the directory tree DIR instead of /
#
#   --binary PATH   the deploxa-gateway to install (default: this repository's release build,
#                   .build/release/deploxa-gateway, from `swift build -c release`)
#   --socket PATH   the FastCGI socket, in the unit and the nginx snippet
#                   (default /run/deploxa-gateway/gateway.sock)
#   --root DIR      install below DIR (DIR/usr/local/bin, DIR/etc/..., DIR/var/lib/...), as a
#                   package build would: no user, no chown, no systemctl (it says what it skips);
#                   any user may do this. Paths inside the installed files stay the target's.
#
# Steps: 1 binary → /usr/local/bin; 2 system user `deploxa` (no login shell, member of www-data,
# nginx's group); 3 /var/lib/deploxa-gateway (0700, deploxa); 4 `migrate` as deploxa; 5 the systemd
# unit; 6 the logrotate rules; 7 the nginx snippet → /etc/nginx/snippets; 8 systemctl
# daemon-reload, enable --now. Running it again is safe: files are replaced only when they differ
# and the database is only migrated. Upgrade: run it again with the new binary, then
# `systemctl reload deploxa-gateway`. It never touches nginx's own configuration: it prints how
# to include the snippet.
set -euo pipefail
umask 022

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

SERVICE=deploxa-gateway
SERVICE_USER=deploxa
SERVICE_GROUP=www-data   # nginx's group on Debian: its workers must reach the socket
BIN_PATH=/usr/local/bin/deploxa-gateway
UNIT_PATH=/etc/systemd/system/deploxa-gateway.service
LOGROTATE_PATH=/etc/logrotate.d/deploxa-gateway
SNIPPET_PATH=/etc/nginx/snippets/deploxa-gateway.conf
DATA_DIR=/var/lib/deploxa-gateway
DB_PATH=$DATA_DIR/gateway.db
LOG_DIR=/var/log/deploxa-gateway
DEFAULT_SOCKET=/run/deploxa-gateway/gateway.sock

UNIT_SOURCE=$REPO/deploy/systemd/deploxa-gateway.service
LOGROTATE_SOURCE=$REPO/deploy/logrotate/deploxa-gateway
SNIPPET_SOURCE=$REPO/nginx/deploxa-gateway.conf

binary=$REPO/.build/release/deploxa-gateway
socket=$DEFAULT_SOCKET
root=""
uninstall=0

die() { echo "install.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
value() { if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value (--help)"; fi; }

while [ $# -gt 0 ]; do
    case "$1" in
        --binary) value "$@"; binary=$2; shift 2 ;;
        --binary=*) binary=${1#*=}; shift ;;
        --socket) value "$@"; socket=$2; shift 2 ;;
        --socket=*) socket=${1#*=}; shift ;;
        --root) value "$@"; root=$2; shift 2 ;;
        --root=*) root=${1#*=}; shift ;;
        --uninstall) uninstall=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

if [ -n "$root" ]; then
    mkdir -p "$root"
    root=$(cd "$root" && pwd)
    [ "$root" != / ] || die "--root / is the real system: leave --root out (and run as root)"
else
    [ "$(id -u)" = 0 ] || die "run as root (or with --root DIR to install into a directory tree)"
    [ -d /run/systemd/system ] || die "systemd is not running here; use --root DIR and start serve yourself"
fi

# Only characters that need no quoting in the unit, nginx and sed; under 108 bytes (sun_path).
case "$socket" in
    /*) ;;
    *) die "--socket must be an absolute path" ;;
esac
[[ "$socket" =~ ^/[A-Za-z0-9._/-]+$ ]] || die "--socket may contain only letters, digits and . _ / -"
[ "${#socket}" -lt 108 ] || die "--socket is too long for a unix socket (${#socket} bytes, at most 107)"

say() { printf '%s\n' "$*"; }
skipped() { say "    skipped (--root): $*"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# put MODE SOURCE DEST: DEST gets SOURCE's content and MODE, replaced atomically (a running
# binary keeps its old file); says whether it was new, replaced or already the same.
changed=()
put() {
    local mode=$1 source=$2 dest=$root$3
    mkdir -p "$(dirname "$dest")"
    if [ -f "$dest" ] && cmp -s "$source" "$dest"; then
        chmod "$mode" "$dest"
        say "    $3: unchanged"
        return 0
    fi
    local state=installed
    [ -e "$dest" ] && state=replaced
    install -m "$mode" "$source" "$dest.new.$$"
    mv -f "$dest.new.$$" "$dest"
    changed+=("$3")
    say "    $3: $state (mode $mode)"
}

# ------------------------------------------------------------------------------------------------
if [ "$uninstall" = 1 ]; then
    say "Removing the Deploxa AI Gateway${root:+ from $root} (the database stays)"
    if [ -z "$root" ]; then
        if [ -f "$UNIT_PATH" ]; then
            say "    systemctl disable --now $SERVICE"
            systemctl disable --now "$SERVICE" || true
        fi
    else
        skipped "systemctl disable --now $SERVICE"
    fi
    for path in "$BIN_PATH" "$UNIT_PATH" "$LOGROTATE_PATH" "$SNIPPET_PATH"; do
        if [ -e "$root$path" ]; then
            rm -f "$root$path"
            say "    removed $path"
        else
            say "    $path: not there"
        fi
    done
    if [ -z "$root" ]; then
        say "    systemctl daemon-reload"
        systemctl daemon-reload
    else
        skipped "systemctl daemon-reload"
    fi
    say ""
    if [ -z "$root" ]; then
        say "Kept $DATA_DIR (the database, $DB_PATH) and the user $SERVICE_USER."
    else
        say "Kept $DATA_DIR (the database, $DB_PATH)."
    fi
    [ -d "$root$LOG_DIR" ] && say "Kept $LOG_DIR (log files)."
    [ -d "$root$UNIT_PATH.d" ] && say "Kept your drop-ins in $UNIT_PATH.d."
    say "Installing again later picks the database up as it is. To delete everything:"
    say "    rm -r $DATA_DIR $LOG_DIR $UNIT_PATH.d; userdel $SERVICE_USER"
    if [ -d "$root/etc/nginx" ]; then
        includes=$(grep -rl --exclude-dir=snippets -e "$SNIPPET_PATH" "$root/etc/nginx" 2>/dev/null || true)
        if [ -n "$includes" ]; then
            say ""
            say "nginx still includes the removed snippet in:"
            while IFS= read -r file; do say "    ${file#"$root"}"; done <<<"$includes"
            say "Delete that include line, then: nginx -t && systemctl reload nginx"
        fi
    fi
    exit 0
fi

# ------------------------------------------------------------------------------------------------
if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
    die "no executable binary at $binary (build it: swift build -c release --product deploxa-gateway, or pass --binary PATH)"
fi
"$binary" --help >/dev/null 2>&1 \
    || die "$binary does not run here (runtime libraries: apt-get install libfcgi0ldbl libsqlite3-0)"
if [ -z "$root" ]; then
    getent group "$SERVICE_GROUP" >/dev/null || die "there is no group $SERVICE_GROUP (is nginx installed? apt-get install nginx)"
fi

# The unit and the snippet with the chosen socket. A socket outside the unit's RuntimeDirectory
# needs its folder writable under ProtectSystem=strict.
sed -e "s#$DEFAULT_SOCKET#$socket#g" "$UNIT_SOURCE" >"$tmp/unit"
socket_dir=$(dirname "$socket")
if [ "$socket_dir" != "$(dirname "$DEFAULT_SOCKET")" ]; then
    sed -i -e "s#^ReadWritePaths=.*#& $socket_dir#" "$tmp/unit"
fi
sed -e "s#$DEFAULT_SOCKET#$socket#g" "$SNIPPET_SOURCE" >"$tmp/snippet"

was_active=0
if [ -z "$root" ] && systemctl is-active --quiet "$SERVICE"; then was_active=1; fi

say "Installing the Deploxa AI Gateway${root:+ into $root}"

say "1/8 binary $binary"
put 0755 "$binary" "$BIN_PATH"

say "2/8 system user $SERVICE_USER (no login shell, member of $SERVICE_GROUP)"
if [ -z "$root" ]; then
    if getent passwd "$SERVICE_USER" >/dev/null; then
        say "    exists"
    else
        useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
        say "    created"
    fi
    usermod -a -G "$SERVICE_GROUP" "$SERVICE_USER"
else
    skipped "useradd --system --user-group --home-dir $DATA_DIR --no-create-home --shell /usr/sbin/nologin $SERVICE_USER"
    skipped "usermod -a -G $SERVICE_GROUP $SERVICE_USER"
fi

say "3/8 data folder $DATA_DIR (0700)"
mkdir -p "$root$DATA_DIR"
chmod 0700 "$root$DATA_DIR"
if [ -z "$root" ]; then
    chown -R "$SERVICE_USER:$SERVICE_GROUP" "$DATA_DIR"
else
    skipped "chown -R $SERVICE_USER:$SERVICE_GROUP $DATA_DIR"
fi

say "4/8 migrate $DB_PATH"
if [ -z "$root" ]; then
    (umask 077; runuser -u "$SERVICE_USER" -g "$SERVICE_GROUP" -- "$BIN_PATH" --db "$DB_PATH" migrate)
else
    skipped "runuser -u $SERVICE_USER -g $SERVICE_GROUP (ran as $(id -un) instead)"
    (umask 077; "$root$BIN_PATH" --db "$root$DB_PATH" migrate)
fi

say "5/8 systemd unit"
put 0644 "$tmp/unit" "$UNIT_PATH"

say "6/8 logrotate rules (for $LOG_DIR/*.log, used with serve --log-file)"
put 0644 "$LOGROTATE_SOURCE" "$LOGROTATE_PATH"

say "7/8 nginx snippet (socket $socket)"
put 0644 "$tmp/snippet" "$SNIPPET_PATH"

say "8/8 systemctl daemon-reload; systemctl enable --now $SERVICE"
if [ -z "$root" ]; then
    systemctl daemon-reload
    systemctl enable --now "$SERVICE"
    systemctl is-active --quiet "$SERVICE" || die "$SERVICE did not start: journalctl -u $SERVICE"
    say "    $SERVICE is active"
else
    skipped "systemctl daemon-reload"
    skipped "systemctl enable --now $SERVICE"
fi

unit_changed=0
for path in "${changed[@]+"${changed[@]}"}"; do [ "$path" = "$UNIT_PATH" ] && unit_changed=1; done

say ""
[ -n "$root" ] && say "Installed into $root; the paths below are the target system's."
if [ "$was_active" = 1 ]; then
    if [ "$unit_changed" = 1 ]; then
        say "The service was already running and its unit changed: apply both with"
        say "    systemctl restart $SERVICE"
    else
        say "The service was already running: switch it to the installed binary with"
        say "    systemctl reload $SERVICE     (new workers start from it, old ones finish their requests)"
    fi
    say ""
fi
cat <<NEXT
Next steps:
1. nginx: inside your HTTPS server { ... } block (e.g. in /etc/nginx/sites-enabled/), add
       include $SNIPPET_PATH;
   then
       nginx -t && systemctl reload nginx
2. An organisation, a project, its provider key, a gateway key and an admin token, as
   $SERVICE_USER on $DB_PATH (key create and admin-token create print their secret once):
       export DEPLOXA_GATEWAY_DB=$DB_PATH
       runuser -u $SERVICE_USER -- deploxa-gateway org create acme
       runuser -u $SERVICE_USER -- deploxa-gateway project create acme/web
       runuser -u $SERVICE_USER -- deploxa-gateway provider set acme/web openai --api-key-env OPENAI_API_KEY
       runuser -u $SERVICE_USER -- deploxa-gateway key create acme/web --name web-backend
       runuser -u $SERVICE_USER -- deploxa-gateway admin-token create --name you
   (export OPENAI_API_KEY first, or pipe the key into \`provider set\` without --api-key-env.)
3. Check:
       curl https://your.host/ping           # pong
       curl https://your.host/v1/chat/completions -H "Authorization: Bearer \$KEY" \\
            -d '{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}]}'
   Dashboard: https://your.host/dashboard (sign in with the admin token); metrics:
       curl https://your.host/metrics -H "Authorization: Bearer \$ADMIN_TOKEN"
Logs: journalctl -u $SERVICE (to log to $LOG_DIR instead, see deploy/INSTALL.md).
NEXT

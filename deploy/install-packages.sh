#!/usr/bin/env bash
# Installs, with apt-get, what building and running the gateway needs and the machine lacks:
# nginx, libfcgi-dev, libsqlite3-dev, pkg-config, curl; with --postgres also Debian's postgresql
# (the shared backend's server, for the tests and deploy/run-two-nodes.sh). Used by run-local.sh
# and the test suite.
set -euo pipefail
missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
[ -f /usr/include/fcgiapp.h ] || missing+=(libfcgi-dev)
[ -f /usr/include/sqlite3.h ] || missing+=(libsqlite3-dev)
if [ "${1:-}" = "--postgres" ]; then
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing ${missing[*]} ..."
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

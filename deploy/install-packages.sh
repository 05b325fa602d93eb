#!/usr/bin/env bash
# Installs, with apt-get, what building and running the gateway needs and the machine lacks:
# nginx, libfcgi-dev, libsqlite3-dev, pkg-config, curl. Used by run-local.sh and the test suite.
set -euo pipefail
missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
[ -f /usr/include/fcgiapp.h ] || missing+=(libfcgi-dev)
[ -f /usr/include/sqlite3.h ] || missing+=(libsqlite3-dev)
if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing ${missing[*]} ..."
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

#!/usr/bin/env bash
# End-to-end tests: nginx → FastCGI → deploxa-gateway serve → SQLite → provider simulator,
# driven with the official openai Python SDK.
#
#   bash Tests/e2e/run.sh [test files...] [pytest args...]
#   DEPLOXA_E2E_BACKEND=postgres bash Tests/e2e/run.sh ...   every stack on a throwaway PostgreSQL
#                                                           cluster instead of SQLite files
#
# Needs the debug binary (swift build; or DEPLOXA_GATEWAY_BIN), nginx, curl and python3 >= 3.9.
# Creates (or reuses) a virtualenv at .build/e2e-venv with openai and pytest from PyPI.
# Exits with pytest's exit code.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

bin="${DEPLOXA_GATEWAY_BIN:-$repo/.build/debug/deploxa-gateway}"
if [[ ! -x "$bin" ]]; then
    echo "e2e: the gateway binary is missing: $bin" >&2
    echo "e2e: build it first (cd $repo && swift build), or set DEPLOXA_GATEWAY_BIN." >&2
    exit 2
fi
export DEPLOXA_GATEWAY_BIN="$bin"
for tool in nginx curl; do
    if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$tool" ]]; then
        echo "e2e: '$tool' is not installed (apt-get install $tool)." >&2
        exit 2
    fi
done
export PATH="$PATH:/usr/sbin:/sbin"
# The dashboard's browser tests (test_dashboard.py) drive Debian's chromium through its
# chromedriver: installed with apt-get when missing, as deploy/install-packages.sh does.
if ! command -v chromium >/dev/null 2>&1 || [[ ! -x /usr/bin/chromedriver ]]; then
    echo "e2e: installing chromium and chromium-driver (apt-get) for the dashboard's browser tests" >&2
    sudo=""; [[ "$(id -u)" -eq 0 ]] || sudo=sudo
    if ! { $sudo apt-get update -qq </dev/null \
            && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver </dev/null >/dev/null; }; then
        echo "e2e: could not install chromium/chromium-driver; the dashboard's browser tests will fail." >&2
    fi
fi
# The CGI tests under a real Apache 2.4 + mod_cgi (test_apache_cgi.py): Debian's apache2, run as
# the current user with a generated config (never the system's service).
if ! command -v apache2 >/dev/null 2>&1 && [[ ! -x /usr/sbin/apache2 ]]; then
    echo "e2e: installing apache2 (apt-get) for the CGI tests under Apache" >&2
    sudo=""; [[ "$(id -u)" -eq 0 ]] || sudo=sudo
    if ! { $sudo apt-get update -qq </dev/null \
            && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends apache2 </dev/null >/dev/null; }; then
        echo "e2e: could not install apache2; the CGI tests under Apache will fail." >&2
    fi
fi
export PYTHONDONTWRITEBYTECODE=1

python="${PYTHON:-python3}"
venv="$repo/.build/e2e-venv"
requirements=("openai>=1.50,<3" "pytest>=8,<10" "openapi-spec-validator>=0.7,<1" "selenium>=4.20,<5")
stamp="$venv/.e2e-requirements"
wanted="${requirements[*]}"

if [[ ! -x "$venv/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]] \
        || ! "$venv/bin/python" -c 'import openai, pytest, httpx' >/dev/null 2>&1; then
    echo "e2e: preparing the virtualenv at $venv" >&2
    mkdir -p "$repo/.build"
    if [[ ! -x "$venv/bin/python" ]]; then
        "$python" -m venv "$venv" </dev/null
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${requirements[@]}" </dev/null
    printf '%s' "$wanted" >"$stamp"
fi

# Test files or directories given first replace the default (the whole e2e folder).
targets=()
while [[ $# -gt 0 && "$1" != -* && -e "$1" ]]; do targets+=("$1"); shift; done
[[ ${#targets[@]} -gt 0 ]] || targets=("$here")

set +e
"$venv/bin/python" -m pytest "${targets[@]}" -q -p no:cacheprovider "$@" </dev/null
code=$?
set -e
exit "$code"

#!/usr/bin/env bash
# The shared-hosting artifact (docs/shared-hosting.md): a release build of deploxa-gateway with the
# Swift runtime linked in (--static-swift-stdlib), stripped, for a host that has no Swift. It then
# needs only libc, libstdc++, libz, libfcgi and libsqlite3 (apt packages libfcgi0ldbl/libfcgi-bin
# and libsqlite3-0 on Debian; most shared hosts have both).
#
#   bash deploy/build-static.sh [OUT_DIR]      (default: dist/)
#
# Builds in its own scratch folder (.build-static), so .build is never touched. Writes
# OUT_DIR/deploxa-gateway and OUT_DIR/deploxa-gateway.sha256 (`sha256sum -c` format), then prints
# `ldd` of the binary and fails if anything from the Swift toolchain is linked dynamically.
# Environment: SCRATCH (default .build-static), CONFIGURATION (release; `debug` for a quicker,
# unoptimised build of the same kind).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
out="${1:-$repo/dist}"
scratch="${SCRATCH:-$repo/.build-static}"
configuration="${CONFIGURATION:-release}"
# A shared host runs one SQLite file: the PostgreSQL backend (and its TLS stack) stays out.
export DEPLOXA_WITHOUT_POSTGRES=1

echo "== swift build -c $configuration --static-swift-stdlib (scratch: $scratch)"
started=$(date +%s)
swift build -c "$configuration" --static-swift-stdlib --product deploxa-gateway --scratch-path "$scratch" 2>&1 \
    | { grep -v '^\[[0-9]*/[0-9]*\]' || true; }
bin="$(swift build -c "$configuration" --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)/deploxa-gateway"
echo "== built in $(( $(date +%s) - started )) s: $bin ($(du -h "$bin" | cut -f1))"

mkdir -p "$out"
strip -o "$out/deploxa-gateway.tmp" "$bin"
chmod 755 "$out/deploxa-gateway.tmp"
mv -f "$out/deploxa-gateway.tmp" "$out/deploxa-gateway"
(cd "$out" && sha256sum deploxa-gateway >deploxa-gateway.sha256)
echo "== $out/deploxa-gateway ($(du -h "$out/deploxa-gateway" | cut -f1), stripped)"
cat "$out/deploxa-gateway.sha256"

echo "== ldd $out/deploxa-gateway"
linked="$(ldd "$out/deploxa-gateway")"
echo "$linked"
if grep -Eq 'libswift|libFoundation|libdispatch|libBlocksRuntime|/usr/share/swift|swift.*/lib' <<<"$linked"; then
    echo "build-static: the binary still links the Swift toolchain's libraries dynamically" >&2
    exit 1
fi
"$out/deploxa-gateway" --help >/dev/null
echo "== ok: nothing from the Swift toolchain is linked; check on the host with: sha256sum -c deploxa-gateway.sha256"

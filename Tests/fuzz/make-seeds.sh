#!/usr/bin/env bash
# Writes the seed corpus of every fuzz target from the provider fixtures, so the seeds follow the
# fixtures when those change:
#   Tests/fuzz/make-seeds.sh OUT_DIR      → OUT_DIR/<FuzzTarget>/<sha1 of the seed>
#                                           OUT_DIR/fuzz.dict (libFuzzer -dict=)
# The dictionary holds every object key and short string value of the fixtures and the SSE and
# JSON tokens, so mutations insert "tool_calls" or "data: " whole instead of byte by byte.
# Deterministic: the same fixtures always give the same files (names are content hashes, as
# libFuzzer names its own corpus files). The leading choice bytes follow each target's layout,
# documented in Fuzz/<FuzzTarget>/<FuzzTarget>.swift.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:?usage: make-seeds.sh OUT_DIR}

python3 - "$ROOT/Tests/GatewayProvidersTests/Fixtures" "$OUT" <<'PY'
import hashlib, json, os, sys

fixtures, out = sys.argv[1], sys.argv[2]
# Same order as `fuzzProviders` in Fuzz/FuzzSupport/FuzzSupport.swift.
providers = ["openai", "anthropic", "google", "mistral", "cohere"]
# Same list as `statuses` in Fuzz/FuzzProviderResponses/FuzzProviderResponses.swift.
statuses = [400, 401, 403, 404, 408, 413, 422, 429, 498, 500, 502, 503, 504, 529]

def write(target, data):
    folder = os.path.join(out, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

def read(path):
    with open(path, "rb") as f:
        return f.read()

def request_variant(case_dir):
    """Which of FuzzRequests.all is closest to the case's own client request."""
    path = os.path.join(case_dir, "client.request.json")
    if not os.path.exists(path):
        return 1
    request = json.loads(read(path))
    if request.get("tools"):
        return 2
    if (request.get("n") or 1) > 1:
        return 3
    return 1 if request.get("stream") else 0

tokens = set()

def collect(value):
    if isinstance(value, dict):
        for key, child in value.items():
            tokens.add(json.dumps(key, ensure_ascii=False).encode())
            collect(child)
    elif isinstance(value, list):
        for child in value:
            collect(child)
    elif isinstance(value, str) and 0 < len(value) <= 24:
        tokens.add(json.dumps(value, ensure_ascii=False).encode())

def collect_text(data):
    try:
        collect(json.loads(data))
    except ValueError:
        pass

for p, provider in enumerate(providers):
    folder = os.path.join(fixtures, provider)
    for case in sorted(os.listdir(folder)):
        case_dir = os.path.join(folder, case)
        files = {name: os.path.join(case_dir, name) for name in sorted(os.listdir(case_dir))}
        variant = request_variant(case_dir)
        for name, path in files.items():
            if name.endswith(".json"):
                write("FuzzJSON", read(path))
                collect_text(read(path))
        if "client.request.json" in files:
            write("FuzzChatRequest", read(files["client.request.json"]))
        for name in ("upstream.sse", "client.sse"):
            if name in files:
                stream = read(files[name])
                # Each data line is a JSON text too.
                for line in stream.splitlines():
                    if line.startswith(b"data: {"):
                        write("FuzzJSON", line[6:])
                        collect_text(line[6:])
                    elif line.startswith(b"event: "):
                        tokens.add(line)
                # Byte 0: piece sizes 1…32 for the SSE parser; for the relay also the provider
                # and request (byte 0) before the sizes (byte 1).
                write("FuzzSSE", bytes([31]) + stream)
                if name == "upstream.sse":
                    write("FuzzStreamTranslators", bytes([p + 5 * variant, 31]) + stream)
        if "upstream.response.json" in files and not case.startswith("embeddings"):
            write("FuzzProviderResponses", bytes([p, variant & 3]) + read(files["upstream.response.json"]))
        if "upstream.response.raw" in files:
            write("FuzzProviderResponses", bytes([p, variant & 3]) + read(files["upstream.response.raw"]))
        if "upstream.error.json" in files:
            error = json.loads(read(files["upstream.error.json"]))
            body = error["body"]
            body = body.encode() if isinstance(body, str) else json.dumps(body, separators=(",", ":")).encode()
            status = statuses.index(error["status"]) if error["status"] in statuses else 0
            retry = 0x80 if any(k.lower() == "retry-after" for k in error.get("headers", {})) else 0
            write("FuzzProviderResponses", bytes([p + 5, status * 4 | retry]) + body)

# Framing and number edge cases the fixtures do not show (raw bytes, as they appear on the wire).
tokens.update([
    b"data: ", b"event: ", b"id: ", b"retry: ", b": ping", b"\n\n", b"\r\n", b"\r", b"[DONE]", b"data: [DONE]",
    b"true", b"false", b"null", b"{}", b"[]", b"\\u0000", b"\\ud83d\\ude00", b"\\ud800", b"-0", b"1e999",
    b"1e-999", b"0.1e1", b"9223372036854775807", b"9223372036854775808", b"-9223372036854775809",
])
with open(os.path.join(out, "fuzz.dict"), "w") as f:
    for token in sorted(tokens):
        # libFuzzer's dictionary syntax: a quoted string with \\, \" and \xNN escapes.
        escaped = "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\x{b:02X}" for b in token)
        f.write(f'"{escaped}"\n')
PY
for target in "$OUT"/*/; do echo "$(basename "$target"): $(ls "$target" | wc -l) seeds"; done

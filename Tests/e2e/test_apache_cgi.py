"""The gateway as a plain CGI program under a real Apache 2.4 + mod_cgi (docs/shared-hosting.md),
with the shipped deploy/shared-hosting/.htaccess and a --static-swift-stdlib binary (DEPLOXA_CGI_BIN,
as built for a host without Swift).

Each Apache here has a database of its own (apache_helpers.CGIDatabase), so the main stack's
audit-completeness check stays exact; every audit check reads that database with `audit export`."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time

import httpx
import pytest

import gwstack
from apache_helpers import ApacheCGI, CGIDatabase, cgi_bin
from gwstack import parse_sse, sha256_hex, stream_content

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello [sim words=3]"}]}


def _auth(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def _request_id(response: httpx.Response) -> str:
    request_id = response.headers.get("x-request-id")
    assert request_id, dict(response.headers)
    return request_id


def _assert_openai_error(response: httpx.Response, status: int, code: str, message: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and message in error["message"], error
    assert error["type"] == "authentication_error" if status == 401 else error["type"]


MISSING = ("invalid_api_key", "didn't provide an API key")
WRONG = ("invalid_api_key", "Incorrect gateway key")


@pytest.fixture(scope="module")
def cgi_db(simulator):
    return CGIDatabase(simulator, "cgibin")


@pytest.fixture(scope="module")
def apache(cgi_db):
    server = ApacheCGI(cgi_db, "cgi-bin").start()
    try:
        yield server
    finally:
        server.stop()


def test_the_cgi_binary_links_no_swift_runtime():
    """The binary under test is the one a host without Swift can run (DEPLOXA_CGI_BIN)."""
    linked = subprocess.run(["ldd", cgi_bin()], capture_output=True, text=True, timeout=30)
    assert linked.returncode == 0, linked.stderr
    swift = [line.strip() for line in linked.stdout.splitlines()
             if "libswift" in line or "libFoundation" in line or "libdispatch" in line or "libBlocksRuntime" in line]
    assert not swift, (f"{cgi_bin()} links the Swift runtime dynamically; set DEPLOXA_CGI_BIN to a "
                       f"--static-swift-stdlib build (deploy/build-static.sh): {swift}")
    assert "libfcgi" in linked.stdout and "libsqlite3" in linked.stdout


def test_chat_completion_by_path_info_is_served_and_audited(apache, cgi_db, simulator):
    with httpx.Client(timeout=60) as http:
        ok = http.post(apache.script_url + "/v1/chat/completions", headers=_auth(cgi_db.secret),
                       json={**CHAT, "user": "apache-user"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["choices"][0]["message"]["content"] == "The quick brown"
        # The provider got the project's provider key, not the client's gateway key.
        upstream = {name.lower(): value for name, value in simulator.last()["headers"].items()}
        assert upstream.get("authorization") == "Bearer " + sha256_hex("sk-cgi-provider-key")  # the simulator shows a hash
        models = http.get(apache.script_url + "/v1/models", headers=_auth(cgi_db.secret))
        assert models.status_code == 200 and models.json()["object"] == "list", models.text

        # Authorization really reaches the gateway: without it (or with a wrong one), a 401 in OpenAI's shape.
        missing = http.post(apache.script_url + "/v1/chat/completions", json=CHAT)
        _assert_openai_error(missing, 401, *MISSING)
        wrong = http.post(apache.script_url + "/v1/chat/completions", headers=_auth("dpx_000000000000_wrong"), json=CHAT)
        _assert_openai_error(wrong, 401, *WRONG)

    rows = {row["request_id"]: row for row in cgi_db.audit_rows()}
    row = rows[_request_id(ok)]
    assert row["user"] == "apache-user" and row["completion_tokens"] == 3 and row["status"] == 200
    assert rows[_request_id(missing)]["status"] == 401
    assert rows[_request_id(wrong)]["status"] == 401


def test_v1_rewritten_onto_the_script_and_nothing_else_served(apache, cgi_db):
    with httpx.Client(timeout=60) as http:
        ok = http.post(apache.rewritten_v1 + "/chat/completions", headers=_auth(cgi_db.secret), json=CHAT)
        assert ok.status_code == 200, ok.text
        assert ok.json()["choices"][0]["message"]["content"] == "The quick brown"
        # The query string survives the rewrite (an unknown route names what it got).
        unknown = http.get(apache.rewritten_v1 + "/no-such-route?x=1", headers=_auth(cgi_db.secret))
        assert unknown.status_code == 404, unknown.text
        assert "/v1/no-such-route" in unknown.json()["error"]["message"]
        assert "cgi-bin" not in unknown.json()["error"]["message"]
        for path in ("/cgi-bin/notes.txt", "/cgi-bin/.htaccess", "/cgi-bin/"):
            denied = http.get(apache.url + path)
            assert denied.status_code == 403, (path, denied.status_code, denied.text[:200])
    assert _request_id(ok) in {row["request_id"] for row in cgi_db.audit_rows()}


def test_isindex_query_is_not_a_command_line(apache, cgi_db):
    """`GET /cgi-bin/gateway?key+revoke+gk_…`: Apache passes an ISINDEX query as argv; the gateway
    must ignore it. The probe shows that this Apache does pass it."""
    with httpx.Client(timeout=60) as http:
        probe = http.get(f"{apache.url}/probe/argv?key+revoke+{cgi_db.key_id}")
        assert probe.status_code == 200 and probe.text.split() == ["key", "revoke", cgi_db.key_id], probe.text

        keys_before = cgi_db.keys()
        rows_before = len(cgi_db.audit_rows())
        attempts = [f"key+revoke+{cgi_db.key_id}", "key+create+host/app", f"key+revoke+{cgi_db.key_id}+--db+{cgi_db.path}",
                    "org+create+intruder", "migrate"]
        for query in attempts:
            answer = http.get(f"{apache.script_url}?{query}")
            assert answer.status_code == 404, (query, answer.status_code, answer.text[:300])
            assert answer.json()["error"]["type"]  # the gateway's own answer, in OpenAI's shape
            assert "Revoked" not in answer.text and "dpx_" not in answer.text

        assert cgi_db.keys() == keys_before
        assert all(key["revoked_at"] is None for key in cgi_db.keys())
        # `org create intruder` did not run: the name is still free (names are unique).
        cgi_db.cli("org", "create", "intruder")
        still = http.post(apache.script_url + "/v1/chat/completions", headers=_auth(cgi_db.secret), json=CHAT)
        assert still.status_code == 200, still.text
    # Nothing changed but the audit log: at most one row per request.
    assert len(cgi_db.audit_rows()) <= rows_before + len(attempts) + 1


def test_stream_reaches_the_client_event_by_event(apache, cgi_db):
    """The simulator waits 400 ms between events; through Apache they must arrive that far apart,
    not all at once at the end."""
    body = {"model": "gpt-4o", "stream": True,
            "messages": [{"role": "user", "content": "paced [sim words=5 chunk_delay_ms=400]"}]}
    arrivals: list[tuple[float, str]] = []
    raw = b""
    with httpx.Client(timeout=60) as http:
        start = time.monotonic()
        with http.stream("POST", apache.script_url + "/v1/chat/completions", headers=_auth(cgi_db.secret), json=body) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            request_id = _request_id(response)
            pending = b""
            for chunk in response.iter_raw():
                now = time.monotonic() - start
                raw += chunk
                pending += chunk
                while b"\n\n" in pending:
                    event, pending = pending.split(b"\n\n", 1)
                    arrivals.append((now, event.decode()))
    payloads = parse_sse(raw)
    assert stream_content(payloads) == "The quick brown fox jumps"
    assert payloads[-1] == "[DONE]"
    content_times = [t for t, event in arrivals if '"content"' in event]
    assert len(content_times) >= 5, arrivals
    gaps = [b - a for a, b in zip(content_times, content_times[1:])]
    gwstack.SUMMARY.append("apache cgi stream: content events at " + ", ".join(f"{t:.2f}s" for t in content_times))
    # Paced at 400 ms: the spread between the first and the last word is ~1.6 s when streamed,
    # ~0 when buffered; each gap is clearly more than zero.
    assert content_times[-1] - content_times[0] >= 1.2, content_times
    assert sum(1 for gap in gaps if gap >= 0.25) >= len(gaps) - 1, gaps
    row = {r["request_id"]: r for r in cgi_db.audit_rows()}[request_id]
    assert row["status"] == 200 and row["completion_tokens"] == 5


def test_htdocs_folder_with_only_the_shipped_htaccess(simulator):
    """A folder under the web root, no ScriptAlias: the .htaccess alone makes `gateway` a CGI
    program, maps /api/v1/... onto it and serves nothing else."""
    database = CGIDatabase(simulator, "htdocs")
    with ApacheCGI(database, "htdocs") as server, httpx.Client(timeout=60) as http:
        ok = http.post(server.rewritten_v1 + "/chat/completions", headers=_auth(database.secret), json=CHAT)
        assert ok.status_code == 200, ok.text
        direct = http.post(server.script_url + "/v1/chat/completions", headers=_auth(database.secret), json=CHAT)
        assert direct.status_code == 200, direct.text
        _assert_openai_error(http.post(server.rewritten_v1 + "/chat/completions", json=CHAT), 401, *MISSING)
        for path in ("/api/notes.txt", "/api/.htaccess", "/api/"):
            assert http.get(server.url + path).status_code == 403, path
        # The binary is run, never downloaded.
        assert http.get(server.script_url).headers.get("content-type", "").startswith("application/json")
    ids = {row["request_id"] for row in database.audit_rows()}
    assert {_request_id(ok), _request_id(direct)} <= ids


def test_host_that_refuses_cgipassauth(simulator):
    """AllowOverride without AuthConfig: the shipped CGIPassAuth line is refused (a 500: the error
    docs/shared-hosting.md describes), and without it the RewriteRule fallback passes Authorization."""
    database = CGIDatabase(simulator, "nopassauth")
    limited = "FileInfo Indexes Limit Options"
    with ApacheCGI(database, "htdocs", allow_override=limited) as server, httpx.Client(timeout=60) as http:
        refused = http.post(server.rewritten_v1 + "/chat/completions", headers=_auth(database.secret), json=CHAT)
        assert refused.status_code == 500
        assert "CGIPassAuth not allowed here" in server.error_log.read_text()
    with ApacheCGI(database, "htdocs", allow_override=limited, cgipassauth=False) as server, httpx.Client(timeout=60) as http:
        ok = http.post(server.rewritten_v1 + "/chat/completions", headers=_auth(database.secret), json=CHAT)
        assert ok.status_code == 200, ok.text
        direct = http.post(server.script_url + "/v1/chat/completions", headers=_auth(database.secret), json=CHAT)
        assert direct.status_code == 200, direct.text
        _assert_openai_error(http.post(server.rewritten_v1 + "/chat/completions", json=CHAT), 401, *MISSING)
        _assert_openai_error(http.post(server.rewritten_v1 + "/chat/completions", headers=_auth("dpx_000000000000_wrong"),
                                       json=CHAT), 401, *WRONG)
    ids = {row["request_id"] for row in database.audit_rows()}
    assert {_request_id(ok), _request_id(direct)} <= ids


def test_cgi_cost_200_chat_completions(apache, cgi_db):
    """What a process per request costs: 200 non-streamed chat completions one after another."""
    rows_before = len(cgi_db.audit_rows())
    latencies = []
    with httpx.Client(timeout=60) as http:
        started = time.monotonic()
        for _ in range(200):
            t0 = time.monotonic()
            answer = http.post(apache.script_url + "/v1/chat/completions", headers=_auth(cgi_db.secret), json=CHAT)
            latencies.append(time.monotonic() - t0)
            assert answer.status_code == 200, answer.text
        elapsed = time.monotonic() - started
    latencies.sort()
    line = (f"apache cgi ({cgi_bin()}): 200 chat completions in {elapsed:.1f}s = {200 / elapsed:.1f} req/s, "
            f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {latencies[189] * 1000:.0f} ms")
    gwstack.SUMMARY.append(line)
    print(line)
    assert len(cgi_db.audit_rows()) == rows_before + 200


def test_cgi_environment_as_apache_sets_it_after_a_rewrite(cgi_db):
    """Without Apache: the variables Apache sets for /cgi-bin/v1/models rewritten onto the script on a
    host without CGIPassAuth (route in PATH_INFO, REQUEST_URI the client's URL, the key only in
    REDIRECT_HTTP_AUTHORIZATION), and an empty HTTP_AUTHORIZATION (the rule on a request without the header)."""
    env = {"PATH": os.environ.get("PATH", ""), "GATEWAY_INTERFACE": "CGI/1.1", "DEPLOXA_GATEWAY_DB": cgi_db.path,
           "REQUEST_METHOD": "GET", "REQUEST_URI": "/cgi-bin/v1/models", "SCRIPT_NAME": "/cgi-bin/gateway",
           "PATH_INFO": "/v1/models", "QUERY_STRING": "", "HTTP_AUTHORIZATION": "",
           "REDIRECT_HTTP_AUTHORIZATION": f"Bearer {cgi_db.secret}", "SWIFT_BACKTRACE": "enable=no"}
    result = subprocess.run([cgi_bin()], input=b"", env=env, capture_output=True, timeout=60)
    head, _, payload = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"Status: 200"), result.stdout[:300] + result.stderr[-300:]
    assert json.loads(payload)["object"] == "list"
    del env["REDIRECT_HTTP_AUTHORIZATION"]
    result = subprocess.run([cgi_bin()], input=b"", env=env, capture_output=True, timeout=60)
    head, _, payload = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"Status: 401"), result.stdout[:300]
    assert "didn't provide an API key" in json.loads(payload)["error"]["message"]

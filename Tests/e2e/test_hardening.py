"""Hardening: hostile clients, hostile providers and hostile operators' environments, through
real nginx, four workers, one SQLite file and an upstream on loopback.

What is checked (issue "Hardening"):
  1. integer parameters out of range are 400s, and no worker dies parsing them;
  2. a body repeating one key many times is parsed in linear time;
  3. as a CGI program the binary ignores argv and never creates a database in its cwd;
  4. a budgeted request for an unpriced model is refused (model_not_priced), and every change of a
     price, provider, key or limit applies to the very next request in every worker;
  5. a stream the client cuts right after its last content chunk is still metered;
  6. a hostile provider's numbers, headers, oversized events and leaked secrets are contained;
  7. audit text fields are bounded; 8. CSV export neutralises formulas; 9. the socket's default
     mode is 0660; 10. cache waiters count against RPM before they wait.

Tests run on a stack of this module's own (the main stack's audit-completeness check stays
exact) except where a test changes serve options or may leave a worker busy: those start theirs.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import signal
import subprocess
import threading
import time
import uuid

import httpx
import pytest

import gwstack
from gwstack import GatewayStack, expected_reply, gateway_bin, make_temp_dir, parse_sse, stream_content, wait_until
from hostile_upstream import FOREIGN_GOOGLE_KEY, FOREIGN_OPENAI_KEY, OK_TEXT, HostileUpstream

CHAT = "/v1/chat/completions"
SIM_CHAT = "/openai/v1/chat/completions"
SIM_MISTRAL_CHAT = "/mistral/v1/chat/completions"

# Every stack of this module names its socket mode, so that it keeps working with nginx's
# unprivileged workers whatever the default becomes (test 9 checks the default on its own).
SERVE_ARGS = ["--socket-mode", "0666", "--upstream-timeout", "5", "--graceful-timeout", "10", "--breaker-failures", "0"]


def _uid() -> str:
    return uuid.uuid4().hex[:12]


def _chat(text: str = "hi", model: str = "gpt-4o", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def _post(stack: GatewayStack, body: dict | bytes, key: str | None = None, headers: dict | None = None,
          timeout: float = 30, route: str = CHAT) -> httpx.Response:
    sent = {**stack.auth(key), **(headers or {})}
    with stack.http(timeout=timeout) as http:
        if isinstance(body, bytes):
            return http.post(route, headers={**sent, "Content-Type": "application/json"}, content=body)
        return http.post(route, headers=sent, json=body)


def _error(response: httpx.Response) -> dict:
    try:
        return response.json()["error"]
    except Exception as error:  # noqa: BLE001
        raise AssertionError(f"not an OpenAI error body ({response.status_code}): {response.text[:400]!r}") from error


def _from_gateway(response: httpx.Response) -> str:
    """The request id; fails when nginx answered by itself (a dead or missing worker)."""
    rid = response.headers.get("x-request-id")
    assert rid, f"nginx answered {response.status_code} without the gateway (no X-Request-Id): {response.text[:300]!r}"
    return rid


def _rows_by_id(stack: GatewayStack, ids: list[str], timeout: float = 10) -> dict[str, list[dict]]:
    """Polls `audit export` until every id has a row; returns id → rows (to check for duplicates)."""
    wanted = set(ids)
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, list[dict]] = {}
        for row in stack.audit_rows():
            if row["request_id"] in wanted:
                found.setdefault(row["request_id"], []).append(row)
        if len(found) == len(wanted) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _assert_one_row_each(stack: GatewayStack, ids: list[str], timeout: float = 10) -> dict[str, dict]:
    found = _rows_by_id(stack, ids, timeout)
    missing = [rid for rid in ids if rid not in found]
    assert not missing, f"{len(missing)} of {len(ids)} requests have no audit row: {missing[:5]}"
    doubled = {rid: len(rows) for rid, rows in found.items() if len(rows) > 1}
    assert not doubled, f"request ids with several audit rows: {doubled}"
    return {rid: rows[0] for rid, rows in found.items()}


@contextlib.contextmanager
def _workers_survive(stack: GatewayStack):
    """The block must leave every worker process alive: same pids before and after."""
    before = stack.wait_for_workers()
    yield before
    time.sleep(0.3)  # a crashed worker is reaped and replaced within this
    after = stack.worker_pids()
    died = before - after
    assert not died, (f"worker(s) {sorted(died)} died (pids before {sorted(before)}, after {sorted(after)}); "
                      f"gateway log:\n{gwstack.tail(stack.gateway_log, 30)}")


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def hostile():
    upstream = HostileUpstream().start()
    try:
        yield upstream
    finally:
        upstream.stop()


@pytest.fixture(scope="module")
def hard(simulator):
    st = GatewayStack(simulator, name="hard", workers=4, serve_args=SERVE_ARGS)
    try:
        st.start()
        yield st
    finally:
        st.stop()


# --------------------------------------------------------------------------------------------
# 1. Integer parameters


BAD_INTEGERS = [
    ("max_tokens=int64.max", '"max_tokens": 9223372036854775807', "max_tokens", "invalid_value"),
    ("max_tokens=int64.min", '"max_tokens": -9223372036854775808', "max_tokens", "invalid_value"),
    ("max_tokens=uint64.max", '"max_tokens": 18446744073709551615', "max_tokens", "invalid_value"),
    ("max_tokens=1e400", '"max_tokens": 1e400', None, "invalid_json"),
    ("max_tokens=0", '"max_tokens": 0', "max_tokens", "invalid_value"),
    ("max_tokens=2^31", '"max_tokens": 2147483648', "max_tokens", "invalid_value"),
    ("max_tokens=1.5", '"max_tokens": 1.5', "max_tokens", "invalid_value"),
    ("max_tokens=-1", '"max_tokens": -1', "max_tokens", "invalid_value"),
    ("max_completion_tokens=int64.max", '"max_completion_tokens": 9223372036854775807', "max_completion_tokens", "invalid_value"),
    ("max_completion_tokens=0", '"max_completion_tokens": 0', "max_completion_tokens", "invalid_value"),
    ("n=2^62", '"n": 4611686018427387904', "n", "invalid_value"),
    ("n=0", '"n": 0', "n", "invalid_value"),
    ("n=129", '"n": 129', "n", "invalid_value"),
    ("n=-9223372036854775808", '"n": -9223372036854775808', "n", "invalid_value"),
]


@pytest.fixture(scope="module")
def tpm_key(hard):
    return hard.create_key("tpm-ints", None, "--tpm", "100000")


@pytest.mark.parametrize("label,fragment,param,code", BAD_INTEGERS, ids=[c[0] for c in BAD_INTEGERS])
def test_out_of_range_integer_is_a_400_and_no_worker_dies(hard, tpm_key, label, fragment, param, code):
    body = ('{"model":"gpt-4o","messages":[{"role":"user","content":"ints %s"}],%s}' % (_uid(), fragment)).encode()
    before = hard.simulator.count(SIM_CHAT)
    with _workers_survive(hard):
        response = _post(hard, body, key=tpm_key["secret"])
        _from_gateway(response)
        assert response.status_code == 400, (label, response.status_code, response.text[:300])
        error = _error(response)
        assert error["type"] == "invalid_request_error", error
        assert error["code"] == code, (label, error)
        if param is not None:
            assert error["param"] == param, (label, error)
        # The worker still serves.
        again = _post(hard, _chat(f"after {label}"), key=tpm_key["secret"])
        assert again.status_code == 200, again.text[:300]
    assert hard.simulator.count(SIM_CHAT) - before == 1, "the refused request reached the provider"


@pytest.mark.parametrize("fragment", ['"max_tokens": 2147483647', '"max_completion_tokens": 1', '"n": 1', '"n": 128'])
def test_integers_at_the_edges_of_the_range_are_accepted(hard, fragment):
    body = ('{"model":"gpt-4o","messages":[{"role":"user","content":"edge %s"}],%s}' % (_uid(), fragment)).encode()
    response = _post(hard, body)
    _from_gateway(response)
    assert response.status_code == 200, (fragment, response.status_code, response.text[:300])


# --------------------------------------------------------------------------------------------
# 2. Repeated keys: linear-time parsing


def _repeated_keys_body(unique: int = 40_000, repeats: int = 250_000) -> bytes:
    parts = [b'{"model":"gpt-4o","messages":[{"role":"user","content":"repeated keys"}],"metadata":{']
    parts.append(b",".join(b'"k%06d":"v"' % i for i in range(unique)))
    last = b'"k%06d":"v"' % (unique - 1)
    parts.append(b"," + b",".join([last] * repeats))
    parts.append(b"}}")
    return b"".join(parts)


def _nginx_body_limit() -> int:
    text = gwstack.NGINX_TEMPLATE.read_text()
    match = re.search(r"client_max_body_size\s+(\d+)([kKmMgG]?)\s*;", text)
    assert match, "nginx template sets no client_max_body_size"
    factor = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[match.group(2).lower()]
    return int(match.group(1)) * factor


def test_repeated_keys_body_is_parsed_quickly(simulator):
    body = _repeated_keys_body()
    json.loads(body)  # valid JSON (Python keeps the last duplicate)
    assert 3_000_000 < len(body) < _nginx_body_limit(), (len(body), _nginx_body_limit())
    # Its own stack: on a quadratic parser the workers would stay busy for minutes; this stack is
    # killed at the end, whatever happened.
    st = GatewayStack(simulator, name="dupkeys", workers=4, serve_args=SERVE_ARGS)
    try:
        st.start()
        started = time.monotonic()
        try:
            single = _post(st, body, timeout=30)
        except httpx.TimeoutException:
            pytest.fail(f"one {len(body)}-byte body with repeated keys took more than 30 s (limit 10 s)")
        single_time = time.monotonic() - started
        _from_gateway(single)
        assert single.status_code < 500, (single.status_code, single.text[:300])
        assert single_time < 10, f"one body with repeated keys took {single_time:.1f} s (limit 10 s)"

        results: list = [None] * 4

        def one(index: int) -> None:
            try:
                results[index] = _post(st, body, timeout=40)
            except Exception as error:  # noqa: BLE001
                results[index] = error

        started = time.monotonic()
        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=45)
        together = time.monotonic() - started
        failures = [r for r in results if not isinstance(r, httpx.Response)]
        assert not failures, f"concurrent bodies failed after {together:.1f} s: {failures}"
        for response in results:
            _from_gateway(response)
            assert response.status_code < 500, (response.status_code, response.text[:300])
        assert together < 20, f"four concurrent bodies with repeated keys took {together:.1f} s (limit 20 s)"
    finally:
        st.kill_now()
        st.stop()


# --------------------------------------------------------------------------------------------
# 3. CGI: argv ignored, no database in the working directory


@pytest.fixture(scope="module")
def cgi_db(simulator):
    directory = make_temp_dir("cgi-hard")
    db = str(directory / "gw.db")

    def cli(*args, input=""):
        result = subprocess.run([gateway_bin(), "--db", db, *args], input=input, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{args}: {result.stderr}"
        return result.stdout

    cli("migrate")
    cli("org", "create", "cgi")
    cli("project", "create", "cgi/app")
    cli("provider", "set", "cgi/app", "openai", "--base-url", simulator.openai_base_url, input="sk-cgi-provider-key\n")
    return {"db": db, "dir": directory, "cli": cli}


def _cgi_key(cgi_db) -> dict:
    """A key of its own for each test, so one test's (wrongly) revoked key never fails another."""
    return json.loads(cgi_db["cli"]("key", "create", "cgi/app", "--name", "cgi-" + _uid(), "--json"))


def _cgi_env(secret: str, body: bytes, db: str | None) -> dict:
    env = {
        "PATH": os.environ.get("PATH", ""), "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
        "REQUEST_METHOD": "POST", "REQUEST_URI": "/v1/chat/completions", "SCRIPT_NAME": "", "PATH_INFO": "/v1/chat/completions",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "HTTP_AUTHORIZATION": f"Bearer {secret}",
        "SWIFT_BACKTRACE": "enable=no",
    }
    if db is not None:
        env["DEPLOXA_GATEWAY_DB"] = db
    return env


def _run_cgi(argv: list[str], env: dict, body: bytes, cwd: str | None = None) -> tuple[subprocess.CompletedProcess, bytes, dict, bytes]:
    result = subprocess.run([gateway_bin(), *argv], input=body, env=env, capture_output=True, timeout=60, cwd=cwd)
    head, _, payload = result.stdout.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:] if head.startswith(b"Status:") else head.split(b"\r\n"):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return result, head, headers, payload


def _cgi_chat_body(text: str = "hi") -> bytes:
    return json.dumps(_chat(f"{text} {_uid()}")).encode()


def test_cgi_ignores_argv_key_revoke(cgi_db):
    key = _cgi_key(cgi_db)
    body = _cgi_chat_body()
    env = _cgi_env(key["secret"], body, cgi_db["db"])
    result, head, _, payload = _run_cgi(["key", "revoke", key["id"]], env, body)
    assert head.startswith(b"Status: 200"), f"not the CGI response to the request: {result.stdout[:300]!r} stderr {result.stderr[:300]!r}"
    assert json.loads(payload)["choices"][0]["message"]["content"], payload[:300]
    # The key was not revoked: the next request with it is served.
    body = _cgi_chat_body("again")
    result, head, _, _ = _run_cgi([], _cgi_env(key["secret"], body, cgi_db["db"]), body)
    assert head.startswith(b"Status: 200"), f"the key stopped working after a CGI run with argv 'key revoke': {head!r}"


def test_cgi_ignores_argv_price_set(cgi_db):
    key = _cgi_key(cgi_db)
    body = _cgi_chat_body()
    env = _cgi_env(key["secret"], body, cgi_db["db"])
    result, head, headers, _ = _run_cgi(["price", "set", "gpt-4o", "--input", "0", "--output", "0"], env, body)
    assert head.startswith(b"Status: 200"), f"not the CGI response to the request: {result.stdout[:300]!r}"
    body = _cgi_chat_body("priced")
    _, head, headers, _ = _run_cgi([], _cgi_env(key["secret"], body, cgi_db["db"]), body)
    assert head.startswith(b"Status: 200"), head
    assert float(headers.get("x-gateway-cost-usd", "0")) > 0, f"gpt-4o's price was changed through CGI argv: {headers}"


@pytest.mark.parametrize("db", [None, "gw.db", "./data/gw.db"], ids=["unset", "relative", "relative-subdir"])
def test_cgi_without_an_absolute_database_path_is_a_500_and_creates_nothing(db):
    cwd = make_temp_dir("cgi-cwd")
    (cwd / "data").mkdir()
    body = _cgi_chat_body()
    env = _cgi_env("dpx_000000000000_whatever", body, db)
    result, head, _, payload = _run_cgi([], env, body, cwd=str(cwd))
    assert result.stdout.startswith(b"Status: 500"), f"stdout: {result.stdout[:300]!r} stderr: {result.stderr[:300]!r}"
    assert "error" in json.loads(payload), payload[:300]
    assert result.returncode != 0, "a CGI start without a usable database must exit non-zero"
    leftovers = sorted(str(p.relative_to(cwd)) for p in cwd.rglob("*") if p.name != "data")
    assert leftovers == [], f"the CGI run created files in its working directory: {leftovers}"


# --------------------------------------------------------------------------------------------
# 4. Unpriced models under a budget; every change applies to the next request in every worker


UNPRICED = "o3-mini-unpriced"
FANOUT = 8  # sequential requests after a change: enough to meet all four workers


def test_budgeted_request_for_an_unpriced_model_is_refused_until_priced(hard):
    hard.create_project("acme/budgeted", "--monthly-budget", "100")
    project_budget = hard.create_key("budgeted", "acme/budgeted")
    hard.create_project("acme/keybudget")
    key_budget = hard.create_key("key-budget", "acme/keybudget", "--monthly-budget", "100")
    openai_header = {"X-AI-Provider": "openai"}
    before = hard.simulator.count(SIM_CHAT)
    ids = []
    for key in (project_budget, key_budget):
        for _ in range(FANOUT):  # every worker has now seen (and may have cached) the missing price
            refused = _post(hard, _chat(model=UNPRICED), key=key["secret"], headers=openai_header)
            ids.append(_from_gateway(refused))
            assert refused.status_code == 400, (refused.status_code, refused.text[:300])
            error = _error(refused)
            assert error["type"] == "invalid_request_error" and error["code"] == "model_not_priced", error
            assert UNPRICED in error["message"], error["message"]
            assert f"deploxa-gateway price set {UNPRICED}" in error["message"], error["message"]
    assert hard.simulator.count(SIM_CHAT) - before == 0, "a refused unpriced request reached the provider"

    # Without any budget the same model is served; its cost is unknown.
    free = _post(hard, _chat(model=UNPRICED), headers=openai_header)
    assert free.status_code == 200, free.text[:300]
    assert "x-gateway-cost-usd" not in free.headers

    hard.cli("price", "set", UNPRICED, "--input", "1", "--output", "2")
    expected = (5 * 1 + 8 * 2) / 1e6  # "hi": 5 prompt tokens, 8 completion tokens
    for key in (project_budget, key_budget):
        for attempt in range(FANOUT):
            served = _post(hard, _chat(model=UNPRICED), key=key["secret"], headers=openai_header)
            ids.append(_from_gateway(served))
            assert served.status_code == 200, f"request {attempt + 1} after `price set`: {served.status_code} {served.text[:300]}"
            assert float(served.headers["x-gateway-cost-usd"]) == pytest.approx(expected), dict(served.headers)
    _assert_one_row_each(hard, ids)


def test_provider_base_url_change_applies_to_the_next_request(hard, hostile):
    hard.create_project("acme/switch")
    key = hard.create_key("switch", "acme/switch")
    for _ in range(FANOUT):
        response = _post(hard, _chat(f"before switch {_uid()}"), key=key["secret"])
        assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] != OK_TEXT
    before = hostile.count("/v1/chat/completions")
    hard.cli("provider", "set", "acme/switch", "openai", "--base-url", hostile.url, input="sk-switch-" + _uid() + "\n")
    for attempt in range(FANOUT):
        response = _post(hard, _chat(f"after switch {_uid()}"), key=key["secret"])
        assert response.status_code == 200, response.text[:300]
        content = response.json()["choices"][0]["message"]["content"]
        assert content == OK_TEXT, f"request {attempt + 1} after `provider set --base-url` still went to the old upstream"
    assert hostile.count("/v1/chat/completions") - before == FANOUT

    # A new provider key (same base URL) is the one sent with the very next request.
    new_key = "sk-switch-new-" + _uid()
    hard.cli("provider", "set", "acme/switch", "openai", "--base-url", hostile.url, input=new_key + "\n")
    seen = len(hostile.requests)
    for _ in range(FANOUT):
        assert _post(hard, _chat(f"new key {_uid()}"), key=key["secret"]).status_code == 200
    sent_keys = [r["headers"].get("Authorization") for r in hostile.requests[seen:]]
    assert sent_keys == [f"Bearer {new_key}"] * FANOUT, f"provider keys sent after the change: {sent_keys}"


def test_key_revoke_applies_to_the_next_request(hard):
    key = hard.create_key("to-revoke")
    for _ in range(FANOUT):
        assert _post(hard, _chat(), key=key["secret"]).status_code == 200
    hard.cli("key", "revoke", key["id"])
    statuses = [_post(hard, _chat(), key=key["secret"]).status_code for _ in range(FANOUT)]
    assert statuses == [401] * FANOUT, f"after `key revoke`: {statuses}"


def test_lowered_limit_applies_to_the_next_request(hard):
    key = hard.create_key("to-lower", None, "--rpm", "100")
    for _ in range(FANOUT):
        assert _post(hard, _chat(), key=key["secret"]).status_code == 200
    hard.cli("key", "set-limits", key["id"], "--rpm", "3")
    responses = [_post(hard, _chat(), key=key["secret"]) for _ in range(FANOUT)]
    statuses = [r.status_code for r in responses]
    assert statuses == [429] * FANOUT, f"after lowering RPM from 100 to 3 with 8 requests made: {statuses}"
    assert all(r.headers.get("x-ratelimit-limit-requests") == "3" for r in responses)


# --------------------------------------------------------------------------------------------
# 5. A stream cut right after its last content chunk is still metered


@pytest.mark.parametrize("provider,model,sim_path", [("openai", "gpt-4o", SIM_CHAT), ("mistral", "mistral-large", SIM_MISTRAL_CHAT)])
def test_stream_cut_after_the_last_content_chunk_is_metered(hard, provider, model, sim_path):
    body = _chat(f"metered {_uid()} [sim words=3 pause_after=4 pause_ms=1500]", model=model, stream=True)
    before = hard.simulator.count(sim_path)
    with _workers_survive(hard):
        with hard.http(timeout=20) as http:
            with http.stream("POST", CHAT, headers={**hard.auth(), "X-AI-Provider": provider}, json=body) as response:
                assert response.status_code == 200, response.read()[:300]
                request_id = _from_gateway(response)
                raw = b""
                started = time.monotonic()
                for part in response.iter_raw():
                    raw += part
                    complete = raw[: raw.rfind(b"\n\n") + 2] if b"\n\n" in raw else b""
                    if complete and stream_content([p for p in parse_sse(complete) if p != "[DONE]"]) == expected_reply(3):
                        break
                    assert time.monotonic() - started < 10, raw[-300:]
                else:
                    pytest.fail(f"the stream ended before its third word: {raw[-300:]!r}")
                assert not re.search(rb'"finish_reason"\s*:\s*"stop"', raw), \
                    "the pause came too late: the finish chunk was relayed before the client left"
            # Leaving the block closes the connection: the client is gone during the pause.
        row = hard.wait_for_audit(request_id, timeout=10)
        # The row may be written at the disconnect and completed later: poll for the usage.
        deadline = time.monotonic() + 8
        while row.get("completion_tokens") in (None, 0) and time.monotonic() < deadline:
            time.sleep(0.3)
            row = next(r for r in hard.audit_rows() if r["request_id"] == request_id)
    assert hard.simulator.count(sim_path) - before == 1
    assert row["status"] == 499 and row["error_code"] == "client_disconnected", row
    assert (row["prompt_tokens"] or 0) > 0, f"the usage sent after the client left was not metered: {row}"
    assert (row["completion_tokens"] or 0) > 0, f"the usage sent after the client left was not metered: {row}"
    assert (row["cost_usd"] or 0) > 0, f"the usage sent after the client left was not charged: {row}"


# --------------------------------------------------------------------------------------------
# 6. A hostile provider


SECRETS_FIXED = [FOREIGN_OPENAI_KEY, FOREIGN_GOOGLE_KEY]


@pytest.fixture(scope="module")
def hostile_project(hard, hostile):
    provider_key = "sk-hostile-own-" + os.urandom(12).hex()
    hard.cli("project", "create", "acme/hostile")
    hard.cli("provider", "set", "acme/hostile", "openai", "--base-url", hostile.url, input=provider_key + "\n")
    for provider in ("google", "anthropic", "cohere", "mistral"):
        hard.cli("provider", "set", "acme/hostile", provider, "--base-url", hostile.url, input=provider_key + "\n")
    return {"slug": "acme/hostile", "provider_key": provider_key}


def _hostile_key(hard) -> dict:
    # Each case on a fresh key with every limit, so accounting of hostile numbers is exercised
    # and one case's numbers never exhaust another's limits.
    return hard.create_key("hostile-" + _uid(), "acme/hostile", "--rpm", "1000", "--tpm", "100000000", "--monthly-budget", "1000000")


HOSTILE_CASES = [
    ("retry_after_huge", False), ("retry_after_huge", True), ("retry_after_nan", False), ("retry_after_nan", True),
    ("usage_float", False), ("usage_float", True), ("usage_bigint", False), ("usage_bigint", True),
    ("usage_overflow", False), ("usage_overflow", True), ("usage_negative", False), ("usage_negative", True),
    ("stream_usage_huge", True), ("stream_usage_huge", False),
    ("huge_event", True),
    ("leak_400", False), ("leak_400", True), ("leak_stream", True),
]


def _check_retry_after(response: httpx.Response) -> None:
    value = response.headers.get("retry-after")
    if value is None:
        return
    assert re.fullmatch(r"\d{1,10}", value), f"the gateway relayed an unusable Retry-After: {value!r}"
    assert int(value) <= 86_400 * 31, f"Retry-After {value} s"


@pytest.mark.parametrize("mode,stream", HOSTILE_CASES, ids=[f"{m}-{'stream' if s else 'plain'}" for m, s in HOSTILE_CASES])
def test_hostile_provider_is_contained(hard, hostile, hostile_project, mode, stream):
    _hostile_case(hard, hostile, hostile_project, mode, stream, "openai", "gpt-4o")


OTHER_FORMATS = [("anthropic", "claude-sonnet-4"), ("google", "gemini-1.5-pro"), ("cohere", "command-r"),
                 ("mistral", "mistral-large")]
OTHER_MODES = ["retry_after_huge", "retry_after_nan", "usage_float", "usage_bigint", "usage_overflow", "usage_negative", "leak_400",
               "stream_usage_huge"]


@pytest.mark.parametrize("mode", OTHER_MODES)
@pytest.mark.parametrize("provider,model", OTHER_FORMATS, ids=[p for p, _ in OTHER_FORMATS])
def test_hostile_numbers_in_every_provider_format(hard, hostile, hostile_project, provider, model, mode):
    """The same hostile headers and usage numbers, each in the provider's own non-streamed format
    (Anthropic's input_tokens, Gemini's usageMetadata, Cohere's billed_units…)."""
    _hostile_case(hard, hostile, hostile_project, mode, False, provider, model)


def _hostile_case(hard, hostile, hostile_project, mode, stream, provider, model):
    key = _hostile_key(hard)
    secrets = SECRETS_FIXED + [hostile_project["provider_key"]]
    before = hostile.count()
    log_size = hard.gateway_log.stat().st_size
    with _workers_survive(hard):
        body = _chat(f"hostile {_uid()} [hostile {mode}]", model=model, stream=stream)
        started = time.monotonic()
        try:
            response = _post(hard, body, key=key["secret"], headers={"X-AI-Provider": provider}, timeout=60)
        except httpx.TransportError as error:
            pytest.fail(f"{mode}: the client got no complete answer within 60 s: {error!r}")
        elapsed = time.monotonic() - started
        request_id = _from_gateway(response)
        text = response.text
        # The worker that handled it still serves (any worker: the pids are checked too).
        follow_up = _post(hard, _chat(f"after {mode} {_uid()}"), key=hard.key)
        assert follow_up.status_code == 200, follow_up.text[:300]
    calls = hostile.count() - before
    assert 1 <= calls <= 3, f"{calls} upstream calls for one request"
    assert elapsed < 45, f"{mode} took {elapsed:.1f} s"

    if mode.startswith("retry_after"):
        assert response.status_code in (429, 502, 503), (response.status_code, text[:300])
        _error(response)
        _check_retry_after(response)
    elif mode == "huge_event":
        if response.status_code == 200:
            payloads = parse_sse(response.content)
            assert payloads and any('"error"' in p for p in payloads[-2:]), \
                f"a >16 MiB SSE event ended without an error event: {response.content[-300:]!r}"
            assert len(response.content) < 16 * 1024 * 1024 + 65536, "the >16 MiB event was relayed whole"
        else:
            assert response.status_code == 502, (response.status_code, text[:300])
            _error(response)
    elif mode.startswith("leak"):
        assert response.status_code in (200, 400, 502), (response.status_code, text[:300])
        if response.status_code != 200:
            _error(response)
    else:  # hostile numbers in the usage
        assert response.status_code in (200, 502), (response.status_code, text[:300])

    for secret in secrets:
        assert secret not in text, f"the client saw a provider secret ({secret[:12]}…) in: {text[:400]!r}"
        assert secret not in str(dict(response.headers)), f"a provider secret in the response headers: {dict(response.headers)}"

    rows = _assert_one_row_each(hard, [request_id])
    row = rows[request_id]
    for field in ("prompt_tokens", "completion_tokens"):
        value = row[field]
        assert value is None or value >= 0, f"{mode}: negative {field} recorded: {row}"
    cost = row["cost_usd"]
    assert cost is None or (math.isfinite(cost) and cost >= 0), f"{mode}: cost {cost!r} recorded"
    for secret in secrets:
        assert secret not in json.dumps(row), f"a provider secret in the audit row: {row}"

    time.sleep(0.2)
    with open(hard.gateway_log, "rb") as log:
        log.seek(log_size)
        logged = log.read().decode(errors="replace")
    for secret in secrets:
        assert secret not in logged, f"the gateway logged a provider secret ({secret[:12]}…):\n" + \
            "\n".join(line for line in logged.splitlines() if secret in line)[:600]


@pytest.fixture(scope="module")
def breaker_stack(simulator):
    """The circuit breaker on (its default), so a provider's Retry-After decides how long it is
    skipped: hostile Retry-After values reach that arithmetic too."""
    st = GatewayStack(simulator, name="hbreaker", workers=2,
                      serve_args=["--socket-mode", "0666", "--upstream-timeout", "5", "--graceful-timeout", "10"])
    try:
        st.start()
        yield st
    finally:
        st.stop()


@pytest.mark.parametrize("mode", ["retry_after_huge", "retry_after_nan"])
def test_hostile_retry_after_with_breaker_and_fallback(breaker_stack, hostile, mode):
    st = breaker_stack
    tag = _uid()[:8]
    with_fallback, alone = f"acme/hfb-{tag}", f"acme/hra-{tag}"
    for slug in (with_fallback, alone):
        st.cli("project", "create", slug)
        st.cli("provider", "set", slug, "openai", "--base-url", hostile.url, input="sk-hostile-breaker\n")
    st.cli("provider", "set", with_fallback, "mistral", "--base-url", f"{st.simulator.url}/mistral", input="sk-sim\n")
    st.cli("fallback", "set", with_fallback, "openai/gpt-4o", "--to", "mistral/mistral-large")
    fallback_key = st.create_key("hfb", with_fallback)["secret"]
    alone_key = st.create_key("hra", alone)["secret"]
    ids = []
    with _workers_survive(st):
        # The primary answers with a hostile Retry-After; the fallback serves.
        first = _post(st, _chat(f"breaker {tag} [hostile {mode}]"), key=fallback_key, timeout=30)
        ids.append(_from_gateway(first))
        assert first.status_code == 200, (first.status_code, first.text[:300])
        # The next one: the primary may be skipped for "its" Retry-After; the answer is still sane.
        second = _post(st, _chat(f"breaker next {tag}"), key=fallback_key, timeout=30)
        ids.append(_from_gateway(second))
        assert second.status_code == 200, (second.status_code, second.text[:300])
        # Without a fallback: the hostile answer itself, then (perhaps) a fail-fast refusal.
        for text in (f"alone {tag} [hostile {mode}]", f"alone next {tag}", f"alone again {tag}"):
            response = _post(st, _chat(text), key=alone_key, timeout=30)
            ids.append(_from_gateway(response))
            assert response.status_code in (200, 429, 502, 503), (response.status_code, response.text[:300])
            if response.status_code != 200:
                _error(response)
                _check_retry_after(response)
    _assert_one_row_each(st, ids)


@pytest.mark.parametrize("model", ["gemini-1.5-pro/../../files", "a?b", "x%2Fy", "gemini-1.5-pro\\..\\x", "models/../../v1beta/files"])
def test_gemini_model_names_that_could_escape_the_path_are_refused(hard, hostile, hostile_project, model):
    key = _hostile_key(hard)
    before = hostile.count()
    with _workers_survive(hard):
        response = _post(hard, _chat(f"gemini path {_uid()}", model=model), key=key["secret"], headers={"X-AI-Provider": "google"})
    request_id = _from_gateway(response)
    assert response.status_code == 400, (model, response.status_code, response.text[:300])
    error = _error(response)
    assert error["type"] == "invalid_request_error" and error["param"] == "model", error
    assert hostile.count() - before == 0, f"the upstream was called for model {model!r}: {hostile.paths()[before:]}"
    _assert_one_row_each(hard, [request_id])


def test_a_plain_gemini_model_still_reaches_the_upstream(hard, hostile, hostile_project):
    """The other side of the previous test: a well-formed name is called (the hostile server
    answers in OpenAI's shape, so the gateway may call that a bad answer — only the call matters)."""
    key = _hostile_key(hard)
    before = hostile.count("/v1beta/models/gemini-1.5-pro")
    response = _post(hard, _chat(f"gemini {_uid()}", model="gemini-1.5-pro"), key=key["secret"], headers={"X-AI-Provider": "google"})
    _from_gateway(response)
    assert hostile.count("/v1beta/models/gemini-1.5-pro") - before == 1, hostile.paths()[-3:]


# --------------------------------------------------------------------------------------------
# 7. Audit text fields are bounded


def test_long_user_and_model_are_truncated_in_the_audit_row(hard):
    user = "ü" + "é" * 9_999  # 10,000 characters, 20,000 bytes
    model = "gpt-4o-" + "🌍" * 300
    ids = []
    for body, headers in [(_chat(f"long user {_uid()}", user=user), {}),
                          (_chat(f"long model {_uid()}", model=model, user="x" * 10_000), {"X-AI-Provider": "openai"})]:
        response = _post(hard, body, headers=headers)
        ids.append(_from_gateway(response))
        assert response.status_code < 500, response.text[:300]
    rows = _assert_one_row_each(hard, ids)
    for request_id, original_user, original_model in [(ids[0], user, "gpt-4o"), (ids[1], "x" * 10_000, model)]:
        row = rows[request_id]
        for field, original in (("user", original_user), ("model_requested", original_model)):
            value = row[field]
            if value is None:
                continue
            assert len(value.encode("utf-8")) <= 256, f"{field} stored with {len(value.encode())} bytes"
            stem = value[:-1] if value.endswith("…") else value
            assert original.startswith(stem), f"{field} is not a clean prefix of the original: {value[:80]!r}"


# --------------------------------------------------------------------------------------------
# 8. CSV export neutralises formulas


FORMULAS = ['=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)"]


def test_csv_export_neutralises_formulas(hard):
    ids = {}
    for user in FORMULAS:
        response = _post(hard, _chat(f"csv {_uid()}", user=user))
        assert response.status_code == 200, response.text[:300]
        ids[_from_gateway(response)] = user
    # A model name that is a formula (refused or served, it is audited as requested).
    model_response = _post(hard, _chat(f"csv model {_uid()}", model="=1+1"), headers={"X-AI-Provider": "openai"})
    model_id = _from_gateway(model_response)
    _assert_one_row_each(hard, [*ids, model_id])
    exported = hard.cli("audit", "export", "--format", "csv").stdout
    rows = {row["request_id"]: row for row in csv.DictReader(io.StringIO(exported))}
    for request_id, user in ids.items():
        assert request_id in rows, f"{request_id} missing from the CSV export"
        cell = rows[request_id]["user"]
        assert cell.startswith("'"), f"user {user!r} exported as {cell!r}: a spreadsheet would run it as a formula"
        assert cell[1:] == user, f"user {user!r} exported as {cell!r}"
    model_cell = rows[model_id]["model_requested"]
    assert model_cell in ("", "'=1+1"), f"model '=1+1' exported as {model_cell!r}"
    # Nothing in the export starts with a formula character, in any column.
    for row in rows.values():
        for column, cell in row.items():
            if column in ("prompt_tokens", "completion_tokens", "cost_usd", "latency_ms", "seq", "status", "org_id", "project_id",
                          "cached_tokens", "reasoning_tokens", "cache_write_tokens", "upstream_latency_ms", "ttft_ms"):
                continue  # numbers (a negative number would start with '-')
            assert not (cell and cell[0] in "=+-@\t\r"), f"{column} = {cell!r} in row {row['request_id']}"


# --------------------------------------------------------------------------------------------
# 9. The socket's default mode


def test_serve_creates_its_socket_with_mode_0660_by_default(simulator):
    directory = make_temp_dir("sockmode")
    db, sock, log_path = directory / "gw.db", directory / "gw.sock", directory / "serve.log"
    subprocess.run([gateway_bin(), "--db", str(db), "migrate"], check=True, capture_output=True, timeout=60)
    log = open(log_path, "ab")
    master = subprocess.Popen([gateway_bin(), "serve", "--db", str(db), "--socket", str(sock), "--workers", "1"],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        wait_until(lambda: master.poll() is not None or sock.exists(), timeout=20, what="the socket")
        assert master.poll() is None, gwstack.tail(log_path)
        mode = os.stat(sock).st_mode & 0o777
        assert mode == 0o660, f"socket mode {oct(mode)}, expected 0o660 without --socket-mode"
    finally:
        if master.poll() is None:
            master.send_signal(signal.SIGQUIT)
            try:
                master.wait(timeout=20)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait(timeout=5)


# --------------------------------------------------------------------------------------------
# 10. Cache waiters count against RPM before they wait


def test_cache_waiters_are_counted_against_rpm_before_waiting(hard):
    key = hard.create_key("waiters", None, "--rpm", "5")
    body = _chat(f"waiters {_uid()} [sim latency_ms=1500]")
    count = 10
    before = hard.simulator.count(SIM_CHAT)

    def send(http: httpx.Client) -> tuple:
        started = time.monotonic()
        response = http.post(CHAT, headers={**hard.auth(key["secret"]), "X-Cache-TTL": "60"}, json=body)
        return response, time.monotonic() - started

    results = _concurrently(hard, count, send)
    answered = [(r, t) for r, t in results if r.status_code == 200]
    refused = [(r, t) for r, t in results if r.status_code == 429]
    summary = sorted((r.status_code, r.headers.get("x-cache"), round(t, 2)) for r, t in results)
    assert len(answered) == 5 and len(refused) == 5, summary
    assert sorted(r.headers.get("x-cache") for r, _ in answered) == ["HIT"] * 4 + ["MISS"], summary
    slow_refusals = [round(t, 2) for _, t in refused if t >= 1.0]
    assert not slow_refusals, f"429s that waited for the leader first: {slow_refusals} ({summary})"
    assert all(_error(r)["code"] == "rate_limit_exceeded" for r, _ in refused)
    assert hard.simulator.count(SIM_CHAT) - before == 1, "one provider call for the ten identical requests"
    _assert_one_row_each(hard, [r.headers["x-request-id"] for r, _ in results])


def _concurrently(stack: GatewayStack, count: int, send) -> list:
    """Runs `send(http)` on `count` threads released together; returns their results in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def one(index: int) -> None:
        try:
            with stack.http(timeout=30) as http:
                barrier.wait(timeout=10)
                results[index] = send(http)
        except Exception as error:  # noqa: BLE001
            results[index] = error

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=40)
    failures = [r for r in results if isinstance(r, BaseException) or r is None]
    assert not failures, failures
    return results


def test_cache_waiters_per_key_are_bounded_and_the_rest_ask_the_provider(simulator):
    """`--cache-max-waiters 2`, one worker: of six identical requests one computes the answer, two
    wait for it and the three beyond the bound go to the provider themselves. Everyone is answered."""
    st = GatewayStack(simulator, name="waitbound", workers=1, serve_args=SERVE_ARGS + ["--cache-max-waiters", "2"])
    try:
        st.start()
        body = _chat(f"bounded waiters {_uid()} [sim latency_ms=1500]")
        before = st.simulator.count(SIM_CHAT)
        results = _concurrently(st, 6, lambda http: http.post(CHAT, headers={**st.auth(), "X-Cache-TTL": "60"}, json=body))
        summary = sorted((r.status_code, r.headers.get("x-cache")) for r in results)
        assert all(r.status_code == 200 for r in results), summary
        assert sorted(r.headers.get("x-cache") for r in results).count("HIT") == 2, summary
        assert st.simulator.count(SIM_CHAT) - before == 4, f"leader + 3 over the bound called the provider ({summary})"
        _assert_one_row_each(st, [r.headers["x-request-id"] for r in results])
    finally:
        st.stop()


def test_cache_eviction_spares_a_small_project_when_a_big_one_fills_the_cache(simulator):
    """`--cache-max-mb 1`: project B stores one small answer first (the oldest entry of all), then
    project A stores ~2.5 MiB. Evicting the globally oldest would take B's entry; fair eviction
    cuts A, so B's next identical request is still a HIT."""
    st = GatewayStack(simulator, name="fair", workers=2,
                      serve_args=SERVE_ARGS + ["--cache-max-mb", "1", "--cache-prune-interval", "0.3"])
    try:
        st.start()
        st.create_project(f"{st.PROJECT.split('/')[0]}/small")
        small_key = st.create_key("small", f"{st.PROJECT.split('/')[0]}/small")["secret"]
        small_body = _chat(f"small project {_uid()} [sim words=5]")
        headers = {"X-Cache-TTL": "600"}
        first = _post(st, small_body, key=small_key, headers=headers)
        assert first.status_code == 200 and first.headers.get("x-cache") == "MISS"
        for index in range(50):  # ~50 KiB each
            response = _post(st, _chat(f"big project {index} {_uid()} [sim words=8000]"), headers=headers)
            assert response.status_code == 200, response.text[:200]
        # Wait until the janitors brought the cache under its bound, then ask B again.
        import sqlite3

        def cached(query: str) -> int:
            with contextlib.closing(sqlite3.connect(st.db, timeout=10)) as db:
                return db.execute(query).fetchone()[0]

        wait_until(lambda: cached("SELECT coalesce(sum(size), 0) FROM cache_entries") <= 1 << 20, timeout=15,
                   what="the cache to be pruned to 1 MiB")
        entries = cached("SELECT count(*) FROM cache_entries")
        assert entries < 51, f"nothing was evicted ({entries} entries for 51 answers of ~2.5 MiB)"
        again = _post(st, small_body, key=small_key, headers=headers)
        assert again.status_code == 200
        assert again.headers.get("x-cache") == "HIT", "the small project's only entry was evicted"
    finally:
        st.stop()

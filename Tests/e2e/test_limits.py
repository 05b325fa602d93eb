"""Limits through nginx and four workers sharing one SQLite file: RPM, TPM, monthly budgets and
the free plan are exact across processes, answered with OpenAI's 429s and x-ratelimit headers."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime, timezone

import httpx
import pytest

from gwstack import GatewayStack, wait_until

# A model priced at $1 per token in and out, so spend is easy to predict: a "hi" request costs
# 5 prompt tokens (1 word + 4) + 8 completion tokens = $13.
DEAR_MODEL = "gpt-dear"


def _set_dear_price(stack: GatewayStack) -> None:
    stack.cli("price", "set", DEAR_MODEL, "--input", "1000000", "--output", "1000000")


@pytest.fixture(scope="module")
def limits_stack(simulator):
    st = GatewayStack(simulator, name="limits", workers=4, serve_args=["--upstream-timeout", "5", "--db-busy-timeout", "300"],
                      before_serve=_set_dear_price)
    try:
        st.start()
        yield st
    finally:
        st.stop()


@pytest.fixture(scope="module")
def short_window_stack(simulator):
    """A 2-second RPM/TPM window, so a test can watch the window move on."""
    st = GatewayStack(simulator, name="window", workers=2, settings={"limits.window_seconds": "2"})
    try:
        st.start()
        yield st
    finally:
        st.stop()


def _chat(model="gpt-4o", content="hi", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


async def _burst(stack: GatewayStack, keys: list[str], count_per_key: int) -> list[httpx.Response]:
    total = len(keys) * count_per_key
    limits = httpx.Limits(max_connections=total + 10, max_keepalive_connections=total + 10)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60, limits=limits, trust_env=False) as client:
        start = asyncio.Event()

        async def one(key: str, index: int) -> httpx.Response:
            await start.wait()
            return await client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                                     json=_chat(content=f"burst {index}"))

        tasks = [asyncio.create_task(one(key, i)) for key in keys for i in range(count_per_key)]
        await asyncio.sleep(0.05)
        start.set()
        return await asyncio.gather(*tasks)


def _post(stack: GatewayStack, key: str, body: dict) -> httpx.Response:
    with stack.http() as client:
        return client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body)


DURATION = re.compile(r"^(\d+ms|\d+s|\d+m\d+s|\d+h\d+m\d+s)$")


def test_rpm_30_with_60_concurrent_requests_lets_exactly_30_through(limits_stack):
    st = limits_stack
    st.create_project("acme/rpm")
    key = st.create_key("rpm30", "acme/rpm", "--rpm", "30")
    before = st.simulator.stats()["requests"]
    responses = asyncio.run(_burst(st, [key["secret"]], 60))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 30 and statuses.count(429) == 30, {s: statuses.count(s) for s in set(statuses)}
    # Only admitted requests reached the provider.
    assert st.simulator.stats()["requests"] - before == 30
    for response in responses:
        assert response.headers["x-ratelimit-limit-requests"] == "30"
        assert DURATION.match(response.headers["x-ratelimit-reset-requests"]), response.headers["x-ratelimit-reset-requests"]
        if response.status_code == 429:
            error = response.json()["error"]
            assert error["code"] == "rate_limit_exceeded" and error["type"] == "rate_limit_exceeded"
            assert 1 <= int(response.headers["retry-after"]) <= 60
            assert response.headers["x-ratelimit-remaining-requests"] == "0"
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in responses if r.status_code == 200)
    assert remaining == list(range(30)), remaining
    rows = wait_until(lambda: (lambda rs: rs if len(rs) == 60 else None)(
        [r for r in st.audit_rows("acme/rpm") if r["key_id"] == key["id"]]), timeout=10, what="60 audit rows")
    assert sorted(r["status"] for r in rows) == [200] * 30 + [429] * 30


def test_project_limit_holds_across_two_keys(limits_stack):
    st = limits_stack
    st.create_project("acme/shared", "--rpm", "30")
    first = st.create_key("shared-a", "acme/shared")
    second = st.create_key("shared-b", "acme/shared")
    responses = asyncio.run(_burst(st, [first["secret"], second["secret"]], 30))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 30 and statuses.count(429) == 30, {s: statuses.count(s) for s in set(statuses)}
    assert all(r.json()["error"]["message"].startswith("Rate limit reached for project acme/shared")
               for r in responses if r.status_code == 429)


def test_tpm_counts_real_usage(limits_stack):
    st = limits_stack
    st.create_project("acme/tpm")
    key = st.create_key("tpm40", "acme/tpm", "--tpm", "40")
    statuses = []
    for _ in range(6):
        response = _post(st, key["secret"], _chat())
        statuses.append(response.status_code)
        assert response.headers["x-ratelimit-limit-tokens"] == "40"
        assert DURATION.match(response.headers["x-ratelimit-reset-tokens"])
        if response.status_code == 200:
            assert response.json()["usage"]["total_tokens"] == 13
    # 0, 13, 26, 39 tokens used before requests 1-4 (< 40: allowed); 52 before the fifth.
    assert statuses == [200, 200, 200, 200, 429, 429], statuses
    error = _post(st, key["secret"], _chat()).json()["error"]
    assert error["code"] == "rate_limit_exceeded" and "40 tokens per minute" in error["message"]


def test_monthly_budget_is_reached_by_streamed_requests(limits_stack, client_for):
    st = limits_stack
    st.create_project("acme/budget")
    key = st.create_key("budget30", "acme/budget", "--monthly-budget", "30")
    client = client_for(st, key["secret"])
    outcomes = []
    for _ in range(5):
        try:
            stream = client.chat.completions.create(model=DEAR_MODEL, messages=[{"role": "user", "content": "hi"}], stream=True)
            text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
            assert text
            outcomes.append("ok")
        except Exception as error:  # openai.RateLimitError
            outcomes.append(type(error).__name__ + ":" + str(getattr(error, "code", "")))
    # $0, $13, $26 spent before requests 1-3 (< $30); $39 before the fourth.
    assert outcomes == ["ok", "ok", "ok", "RateLimitError:insufficient_quota", "RateLimitError:insufficient_quota"], outcomes
    rows = wait_until(lambda: (lambda rs: rs if len(rs) == 5 else None)(
        [r for r in st.audit_rows("acme/budget") if r["key_id"] == key["id"]]), timeout=10, what="5 audit rows")
    streamed = [r for r in rows if r["status"] == 200]
    assert len(streamed) == 3 and all(r["stream"] for r in streamed)
    assert all(r["cost_usd"] == pytest.approx(13.0) for r in streamed), [r["cost_usd"] for r in streamed]
    assert all(r["prompt_tokens"] == 5 and r["completion_tokens"] == 8 for r in streamed)
    refused = [r for r in rows if r["status"] == 429]
    assert len(refused) == 2 and all(r["error_code"] == "insufficient_quota" for r in refused)
    # Raising the cap lets the key spend again: limits are changeable without a restart.
    st.cli("key", "set-limits", key["id"], "--monthly-budget", "100")
    assert _post(st, key["secret"], _chat(model=DEAR_MODEL)).status_code == 200


def test_free_plan_stops_at_1000_requests_a_month(limits_stack):
    st = limits_stack
    project_id = st.create_project("acme/free", "--plan", "free")
    key = st.create_key("free", "acme/free")
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    st.sql(f"INSERT INTO monthly_totals (scope, month, requests, cost_nanos) VALUES ('p:{project_id}', '{month}', 999, 0) "
           "ON CONFLICT (scope, month) DO UPDATE SET requests = excluded.requests, cost_nanos = excluded.cost_nanos")
    first = _post(st, key["secret"], _chat())
    assert first.status_code == 200, first.text
    second = _post(st, key["secret"], _chat())
    assert second.status_code == 429
    error = second.json()["error"]
    assert error["code"] == "insufficient_quota" and "1000 requests per month on the free plan" in error["message"]
    assert int(second.headers["retry-after"]) >= 1
    count = int(st.sql(f"SELECT requests FROM monthly_totals WHERE scope = 'p:{project_id}' AND month = '{month}'"))
    assert count == 1000
    # Moving the project to pro lifts the cap.
    st.cli("project", "set-limits", "acme/free", "--plan", "pro")
    assert _post(st, key["secret"], _chat()).status_code == 200


def test_database_busy_fails_closed_with_503_and_counts_nothing(limits_stack):
    st = limits_stack
    st.create_project("acme/busy")
    key = st.create_key("busy", "acme/busy", "--rpm", "5")
    with st.write_lock_held():
        response = _post(st, key["secret"], _chat())
        assert response.status_code == 503, response.text
        assert response.json()["error"]["type"] == "service_unavailable"
        assert int(response.headers["retry-after"]) >= 1
    # The refused request was not counted: all 5 of the minute's requests are still available.
    statuses = [_post(st, key["secret"], _chat()).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429], statuses


def test_rpm_window_moves_on(short_window_stack):
    st = short_window_stack
    key = st.create_key("window", None, "--rpm", "3")
    statuses = [_post(st, key["secret"], _chat()).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429], statuses
    refused = _post(st, key["secret"], _chat())
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 2
    time.sleep(wait + 0.3)
    assert _post(st, key["secret"], _chat()).status_code == 200


def test_requests_without_limits_carry_no_ratelimit_headers_but_a_cost(stack):
    with stack.http() as client:
        response = client.post("/v1/chat/completions", headers=stack.auth(), json=_chat())
    assert response.status_code == 200
    assert "x-ratelimit-limit-requests" not in response.headers
    # gpt-4o: 5 × $2.50/1M + 8 × $10/1M.
    assert float(response.headers["x-gateway-cost-usd"]) == pytest.approx(5 * 2.5e-6 + 8 * 10e-6)
    row = stack.wait_for_audit(response.headers["x-request-id"])
    assert row["cost_usd"] == pytest.approx(5 * 2.5e-6 + 8 * 10e-6)


def test_unknown_price_is_recorded_as_unknown_not_zero(stack):
    with stack.http() as client:
        response = client.post("/v1/chat/completions", headers={**stack.auth(), "X-AI-Provider": "openai"},
                               json=_chat(model="my-unpriced-model"))
    assert response.status_code == 200
    assert "x-gateway-cost-usd" not in response.headers
    row = stack.wait_for_audit(response.headers["x-request-id"])
    assert row["cost_usd"] is None and row["prompt_tokens"] == 5
    usage = json.loads(stack.cli("usage", "--by", "model", "--json").stdout)
    unpriced = next(u for u in usage if u["model"] == "my-unpriced-model")
    assert unpriced["unknown_cost_requests"] >= 1


def test_usage_groups_by_user_and_day(stack):
    with stack.http() as client:
        for user in ["alice", "alice", "bob"]:
            assert client.post("/v1/chat/completions", headers=stack.auth(), json=_chat(user=user)).status_code == 200
    time.sleep(0.2)
    by_user = {u["user"]: u for u in json.loads(stack.cli("usage", "--by", "user", "--json").stdout)}
    assert by_user["alice"]["requests"] >= 2 and by_user["bob"]["requests"] >= 1
    assert by_user["bob"]["prompt_tokens"] >= 5 and by_user["bob"]["cost_usd"] > 0
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    by_day = json.loads(stack.cli("usage", "--by", "day", "--from", today, "--to", today, "--json").stdout)
    assert [d["day"] for d in by_day] == [today]
    table = stack.cli("usage", "--by", "provider").stdout
    assert "openai" in table and "REQUESTS" in table


def test_org_limit_set_on_create_and_changed_later(limits_stack):
    st = limits_stack
    st.cli("org", "create", "globex", "--rpm", "3")
    st.create_project("globex/app")
    key = st.create_key("globex", "globex/app")
    statuses = [_post(st, key["secret"], _chat()).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429], statuses
    refused = _post(st, key["secret"], _chat())
    assert "org globex" in refused.json()["error"]["message"]
    st.cli("org", "set-limits", "globex", "--rpm", "none")
    assert _post(st, key["secret"], _chat()).status_code == 200

"""Request caching through nginx, four workers and one SQLite file.

`X-Cache-TTL: N` caches a 200 answer for N seconds; the answer says `X-Cache: HIT` or `MISS`
whenever the request carried the header. The key is the project, the requested provider, the
route and the canonical body, so a body with its keys in another order is the same entry, and two
projects never share one. A hit is the stored body, costs nothing, calls no provider, counts
toward RPM but not TPM, and is audited with `cache_hit` true and no attempts. Identical requests
in flight together make one provider call.

Every test uses its own prompt text (a uuid), so entries never collide between tests; provider
calls are counted per simulator path, as deltas.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import httpx
import pytest

from gwstack import expected_reply, parse_sse, stream_content

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
SIM_CHAT = "/openai/v1/chat/completions"
SIM_EMBEDDINGS = "/openai/v1/embeddings"
SIM_MISTRAL_CHAT = "/mistral/v1/chat/completions"


def _uid() -> str:
    return uuid.uuid4().hex


def _chat(text: str, model: str = "gpt-4o", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def _post(stack, body: dict | bytes, headers: dict | None = None, key: str | None = None, route: str = CHAT) -> httpx.Response:
    sent = {**stack.auth(key), **(headers or {})}
    with stack.http() as http:
        if isinstance(body, bytes):
            return http.post(route, headers={**sent, "Content-Type": "application/json"}, content=body)
        return http.post(route, headers=sent, json=body)


def _ttl(seconds: int | str = 60, **more) -> dict:
    return {"X-Cache-TTL": str(seconds), **more}


def _cost(response: httpx.Response) -> float:
    assert "x-gateway-cost-usd" in response.headers, dict(response.headers)
    return float(response.headers["x-gateway-cost-usd"])


def _assert_hit_row(stack, response: httpx.Response, route: str = CHAT) -> dict:
    row = stack.wait_for_audit(response.headers["x-request-id"])
    assert row["cache_hit"] is True, row
    assert row["status"] == 200, row
    assert row["cost_usd"] == 0, row
    assert row["prompt_tokens"] == 0 and row["completion_tokens"] == 0, row
    assert row["attempts"] == [], row
    assert row["route"] == route, row
    return row


def test_miss_then_hit_serves_the_stored_answer_without_calling_the_provider(stack):
    sim = stack.simulator
    body = _chat(f"cache me {_uid()}")
    before = sim.count(SIM_CHAT)

    miss = _post(stack, body, _ttl(60))
    assert miss.status_code == 200, miss.text
    assert miss.headers["x-cache"] == "MISS"
    assert miss.headers["x-ai-provider"] == "openai"
    assert _cost(miss) > 0
    assert miss.json()["choices"][0]["message"]["content"] == expected_reply(8)
    assert sim.count(SIM_CHAT) - before == 1
    miss_row = stack.wait_for_audit(miss.headers["x-request-id"])
    assert miss_row["cache_hit"] is False and miss_row["cost_usd"] > 0 and len(miss_row["attempts"]) == 1, miss_row

    hit = _post(stack, body, _ttl(60))
    assert hit.status_code == 200, hit.text
    assert hit.headers["x-cache"] == "HIT"
    assert hit.headers["x-ai-provider"] == "openai"
    assert hit.headers["content-type"].startswith("application/json")
    assert _cost(hit) == 0
    assert hit.content == miss.content, "a hit is the stored answer, byte for byte"
    assert hit.headers["x-request-id"] != miss.headers["x-request-id"]
    assert sim.count(SIM_CHAT) - before == 1, "a hit calls no provider"
    row = _assert_hit_row(stack, hit)
    assert row["provider"] == "openai"

    # Without X-Cache-TTL: no lookup (the provider is called) and no X-Cache header.
    plain = _post(stack, body)
    assert plain.status_code == 200
    assert "x-cache" not in plain.headers
    assert plain.content != miss.content
    assert sim.count(SIM_CHAT) - before == 2


def test_streamed_answer_is_replayed_as_a_stream(stack, client):
    sim = stack.simulator
    text = f"stream and cache me {_uid()} [sim words=12]"
    body = _chat(text, stream=True)
    before = sim.count(SIM_CHAT)

    miss = _post(stack, body, _ttl(60))
    assert miss.status_code == 200
    assert miss.headers["x-cache"] == "MISS"
    assert miss.headers["content-type"].startswith("text/event-stream")
    miss_events = parse_sse(miss.content)
    assert miss_events[-1] == "[DONE]" and stream_content(miss_events) == expected_reply(12)

    hit = _post(stack, body, _ttl(60))
    assert hit.status_code == 200
    assert hit.headers["x-cache"] == "HIT"
    assert hit.headers["x-ai-provider"] == "openai"
    assert hit.headers["content-type"].startswith("text/event-stream")
    hit_events = parse_sse(hit.content)
    assert hit_events == miss_events, "the hit replays the same SSE events"
    assert hit_events[-1] == "[DONE]" and hit_events.count("[DONE]") == 1

    # The official client reads the replay like any stream.
    api = client.with_options(default_headers={"X-Cache-TTL": "60"})
    raw = api.chat.completions.with_raw_response.create(model="gpt-4o", messages=[{"role": "user", "content": text}], stream=True)
    assert raw.headers["x-cache"] == "HIT"
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected_reply(12)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]

    assert sim.count(SIM_CHAT) - before == 1, "one provider call for the miss, none for the two hits"
    row = _assert_hit_row(stack, hit)
    assert row["stream"] is True
    # A hit costs nothing, and says so in the header, streamed or not.
    assert _cost(hit) == 0


def test_streamed_and_non_streamed_requests_are_separate_entries(stack):
    sim = stack.simulator
    text = f"two shapes {_uid()}"
    before = sim.count(SIM_CHAT)

    plain_miss = _post(stack, _chat(text), _ttl(60))
    stream_miss = _post(stack, _chat(text, stream=True), _ttl(60))
    assert (plain_miss.headers["x-cache"], stream_miss.headers["x-cache"]) == ("MISS", "MISS")
    assert sim.count(SIM_CHAT) - before == 2

    plain_hit = _post(stack, _chat(text), _ttl(60))
    stream_hit = _post(stack, _chat(text, stream=True), _ttl(60))
    assert (plain_hit.headers["x-cache"], stream_hit.headers["x-cache"]) == ("HIT", "HIT")
    assert plain_hit.headers["content-type"].startswith("application/json")
    assert plain_hit.content == plain_miss.content
    assert stream_hit.headers["content-type"].startswith("text/event-stream")
    assert parse_sse(stream_hit.content) == parse_sse(stream_miss.content)
    assert sim.count(SIM_CHAT) - before == 2


def test_expired_entry_is_never_served(stack):
    sim = stack.simulator
    body = _chat(f"short lived {_uid()}")
    before = sim.count(SIM_CHAT)

    first = _post(stack, body, _ttl(1))
    assert first.status_code == 200 and first.headers["x-cache"] == "MISS"
    time.sleep(2.2)
    # The entry stored with TTL 1 has expired, whatever TTL the next request asks for.
    second = _post(stack, body, _ttl(60))
    assert second.status_code == 200 and second.headers["x-cache"] == "MISS", second.headers
    assert second.content != first.content
    assert sim.count(SIM_CHAT) - before == 2
    # The fresh answer was stored with TTL 60.
    third = _post(stack, body, _ttl(60))
    assert third.headers["x-cache"] == "HIT"
    assert third.content == second.content
    assert sim.count(SIM_CHAT) - before == 2


def test_two_projects_never_share_an_entry(stack):
    sim = stack.simulator
    slug = f"acme/cache-iso-{_uid()[:10]}"
    stack.create_project(slug)
    other = stack.create_key("cache-iso", slug)
    raw = json.dumps(_chat(f"same bytes {_uid()}"), separators=(",", ":")).encode()
    before = sim.count(SIM_CHAT)

    first = _post(stack, raw, _ttl(60))
    assert first.headers["x-cache"] == "MISS"
    assert _post(stack, raw, _ttl(60)).headers["x-cache"] == "HIT"
    assert sim.count(SIM_CHAT) - before == 1

    elsewhere = _post(stack, raw, _ttl(60), key=other["secret"])
    assert elsewhere.status_code == 200
    assert elsewhere.headers["x-cache"] == "MISS", "another project must not see this project's entry"
    assert elsewhere.content != first.content
    assert sim.count(SIM_CHAT) - before == 2
    again = _post(stack, raw, _ttl(60), key=other["secret"])
    assert again.headers["x-cache"] == "HIT" and again.content == elsewhere.content
    assert sim.count(SIM_CHAT) - before == 2
    row = stack.wait_for_audit(again.headers["x-request-id"])
    assert row["project"] == slug and row["cache_hit"] is True


def test_the_requested_provider_is_part_of_the_key(stack):
    sim = stack.simulator
    body = _chat(f"which provider {_uid()}", model="open-mistral-nemo")
    before = sim.counts()

    via_openai = _post(stack, body, _ttl(60, **{"X-AI-Provider": "openai"}))
    assert via_openai.headers["x-cache"] == "MISS" and via_openai.headers["x-ai-provider"] == "openai"
    via_mistral = _post(stack, body, _ttl(60, **{"X-AI-Provider": "mistral"}))
    assert via_mistral.status_code == 200, via_mistral.text
    assert via_mistral.headers["x-cache"] == "MISS" and via_mistral.headers["x-ai-provider"] == "mistral"
    after = sim.counts()
    assert after.get(SIM_CHAT, 0) - before.get(SIM_CHAT, 0) == 1
    assert after.get(SIM_MISTRAL_CHAT, 0) - before.get(SIM_MISTRAL_CHAT, 0) == 1
    hit = _post(stack, body, _ttl(60, **{"X-AI-Provider": "mistral"}))
    assert hit.headers["x-cache"] == "HIT" and hit.headers["x-ai-provider"] == "mistral"
    assert hit.content == via_mistral.content


def test_canonical_body_reordered_keys_and_whitespace_hit_the_same_entry(stack):
    sim = stack.simulator
    text = f"canonical {_uid()}"
    compact = ('{"model":"gpt-4o","messages":[{"role":"user","content":"%s"}],"temperature":0.5,"max_tokens":50}' % text).encode()
    shuffled = ('{\n  "max_tokens" : 50,\n\t"temperature": 0.5 ,\n  "messages" : [ { "content" : "%s",  "role" : "user" } ],'
                '\r\n  "model":   "gpt-4o"\n}\n' % text).encode()
    assert json.loads(compact) == json.loads(shuffled) and compact != shuffled
    before = sim.count(SIM_CHAT)

    miss = _post(stack, compact, _ttl(60))
    assert miss.status_code == 200 and miss.headers["x-cache"] == "MISS"
    hit = _post(stack, shuffled, _ttl(60))
    assert hit.status_code == 200
    assert hit.headers["x-cache"] == "HIT", "same JSON with other key order and whitespace is the same entry"
    assert hit.content == miss.content
    assert sim.count(SIM_CHAT) - before == 1

    # A body that differs in a value is another entry.
    different = _post(stack, compact.replace(b'"temperature":0.5', b'"temperature":0.6'), _ttl(60))
    assert different.headers["x-cache"] == "MISS"
    assert sim.count(SIM_CHAT) - before == 2


def test_errors_are_not_cached(stack):
    sim = stack.simulator
    body = _chat(f"fail twice {_uid()} [sim status=500]")
    before = sim.count(SIM_CHAT)
    for _ in range(2):
        failed = _post(stack, body, _ttl(60))
        assert failed.status_code == 502, failed.text
        assert failed.json()["error"]["code"] == "upstream_error"
        assert failed.headers["x-cache"] == "MISS"
    assert sim.count(SIM_CHAT) - before == 2


def test_cache_control_no_cache_refreshes_the_entry(stack):
    sim = stack.simulator
    body = _chat(f"no-cache {_uid()}")
    before = sim.count(SIM_CHAT)

    seeded = _post(stack, body, _ttl(60))
    assert seeded.headers["x-cache"] == "MISS"
    fresh = _post(stack, body, _ttl(60, **{"Cache-Control": "no-cache"}))
    assert fresh.status_code == 200
    assert fresh.headers["x-cache"] == "MISS", "no-cache skips the lookup"
    assert fresh.content != seeded.content
    assert sim.count(SIM_CHAT) - before == 2
    # ...but stores the fresh answer.
    hit = _post(stack, body, _ttl(60))
    assert hit.headers["x-cache"] == "HIT"
    assert hit.content == fresh.content
    assert sim.count(SIM_CHAT) - before == 2


def test_cache_control_no_store_neither_looks_up_nor_stores(stack):
    sim = stack.simulator
    body = _chat(f"no-store {_uid()}")
    before = sim.count(SIM_CHAT)

    unstored = _post(stack, body, _ttl(60, **{"Cache-Control": "no-store"}))
    assert unstored.status_code == 200 and unstored.headers["x-cache"] == "MISS"
    nothing_stored = _post(stack, body, _ttl(60))
    assert nothing_stored.headers["x-cache"] == "MISS", "no-store must not have stored the answer"
    assert sim.count(SIM_CHAT) - before == 2
    # Now there is an entry; no-store still does not look it up.
    skipped = _post(stack, body, _ttl(60, **{"Cache-Control": "no-store"}))
    assert skipped.headers["x-cache"] == "MISS"
    assert skipped.content != nothing_stored.content
    assert sim.count(SIM_CHAT) - before == 3
    # ...and did not replace it.
    hit = _post(stack, body, _ttl(60))
    assert hit.headers["x-cache"] == "HIT" and hit.content == nothing_stored.content
    assert sim.count(SIM_CHAT) - before == 3


def test_ttl_zero_neither_looks_up_nor_stores(stack):
    sim = stack.simulator
    body = _chat(f"ttl zero {_uid()}")
    before = sim.count(SIM_CHAT)

    zero = _post(stack, body, _ttl(0))
    assert zero.status_code == 200
    assert zero.headers["x-cache"] == "MISS", "X-Cache is sent whenever the request carried X-Cache-TTL, 0 too"
    stored_later = _post(stack, body, _ttl(60))
    assert stored_later.headers["x-cache"] == "MISS", "TTL 0 must not have stored the answer"
    assert sim.count(SIM_CHAT) - before == 2
    zero_again = _post(stack, body, _ttl(0))
    assert zero_again.headers["x-cache"] == "MISS", "TTL 0 does not look up"
    assert zero_again.content != stored_later.content
    assert sim.count(SIM_CHAT) - before == 3
    assert _post(stack, body, _ttl(60)).headers["x-cache"] == "HIT"
    assert sim.count(SIM_CHAT) - before == 3


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "2592001", "99999999999999999999", "10s"])
def test_invalid_ttl_is_a_400(stack, value):
    sim = stack.simulator
    before = sim.count(SIM_CHAT)
    refused = _post(stack, _chat(f"bad ttl {_uid()}"), {"X-Cache-TTL": value})
    assert refused.status_code == 400, (value, refused.status_code, refused.text)
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "X-Cache-TTL", error
    assert sim.count(SIM_CHAT) - before == 0


def test_largest_ttl_is_accepted(stack):
    response = _post(stack, _chat(f"thirty days {_uid()}"), _ttl(2592000))
    assert response.status_code == 200, response.text
    assert response.headers["x-cache"] == "MISS"


def test_identical_requests_in_flight_together_make_one_provider_call(stack):
    sim = stack.simulator
    body = _chat(f"coalesce {_uid()} [sim latency_ms=800]")
    count = 16
    before = sim.count(SIM_CHAT)
    barrier = threading.Barrier(count)
    results: list[httpx.Response | Exception | None] = [None] * count

    def one(index: int) -> None:
        try:
            with stack.http(timeout=30) as http:
                barrier.wait(timeout=10)
                results[index] = http.post(CHAT, headers={**stack.auth(), **_ttl(60)}, json=body)
        except Exception as error:  # noqa: BLE001 - reported below
            results[index] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "requests still running after 60 s"
    failures = [r for r in results if not isinstance(r, httpx.Response)]
    assert not failures, failures
    assert [r.status_code for r in results] == [200] * count, [(r.status_code, r.text[:200]) for r in results]
    verdicts = sorted(r.headers.get("x-cache") for r in results)
    assert verdicts == ["HIT"] * (count - 1) + ["MISS"], verdicts
    assert len({r.content for r in results}) == 1, "every waiter answers with the leader's body"
    assert sim.count(SIM_CHAT) - before == 1, "identical requests in flight together make one provider call"


def test_a_hit_counts_toward_rpm(stack):
    key = stack.create_key("cache-rpm", None, "--rpm", "3")
    body = _chat(f"rpm {_uid()}")
    responses = [_post(stack, body, _ttl(60), key=key["secret"]) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429], [(r.status_code, r.text[:200]) for r in responses]
    assert [r.headers.get("x-cache") for r in responses[:3]] == ["MISS", "HIT", "HIT"]
    assert responses[3].json()["error"]["code"] == "rate_limit_exceeded"


def test_a_hit_does_not_count_against_tpm(stack):
    # The simulator's arithmetic: "hi <uid>" is 2 words + 4 = 6 prompt tokens, 8 completion
    # tokens, 14 in all. A request is refused once the minute's tokens reach the limit (20).
    key = stack.create_key("cache-tpm", None, "--tpm", "20")
    body = _chat(f"hi {_uid()}")
    miss = _post(stack, body, _ttl(60), key=key["secret"])
    assert miss.status_code == 200 and miss.headers["x-cache"] == "MISS"
    assert miss.json()["usage"]["total_tokens"] == 14
    # Had a hit counted its 14 tokens, the second one would already be refused (28 ≥ 20).
    for _ in range(4):
        hit = _post(stack, body, _ttl(60), key=key["secret"])
        assert hit.status_code == 200, hit.text
        assert hit.headers["x-cache"] == "HIT"
    # The limit is live: one more provider answer (14 + 14 = 28 tokens) and the next request is refused.
    assert _post(stack, _chat(f"hi {_uid()}"), key=key["secret"]).status_code == 200
    refused = _post(stack, _chat(f"hi {_uid()}"), key=key["secret"])
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"


def test_embeddings_are_cached(stack, client):
    sim = stack.simulator
    body = {"model": "text-embedding-3-small", "input": [f"embed me {_uid()}", "and me"]}
    before = sim.count(SIM_EMBEDDINGS)

    openai_header = {"X-AI-Provider": "openai"}  # no provider is inferred from an embedding model's name
    miss = _post(stack, body, _ttl(60, **openai_header), route=EMBEDDINGS)
    assert miss.status_code == 200, miss.text
    assert miss.headers["x-cache"] == "MISS"
    hit = _post(stack, body, _ttl(60, **openai_header), route=EMBEDDINGS)
    assert hit.status_code == 200
    assert hit.headers["x-cache"] == "HIT" and hit.headers["x-ai-provider"] == "openai"
    assert hit.content == miss.content
    assert _cost(hit) == 0
    assert sim.count(SIM_EMBEDDINGS) - before == 1
    _assert_hit_row(stack, hit, route=EMBEDDINGS)

    # Through the official client (whose body differs: it asks for base64 vectors, so it is
    # another entry): a miss, then the same vectors from the cache.
    api = client.with_options(default_headers=_ttl(60, **openai_header))
    first = api.embeddings.with_raw_response.create(model=body["model"], input=body["input"])
    second = api.embeddings.with_raw_response.create(model=body["model"], input=body["input"])
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    vectors = [d.embedding for d in second.parse().data]
    assert vectors == [d.embedding for d in first.parse().data]
    assert len(vectors) == 2 and all(len(v) > 0 for v in vectors)
    assert sim.count(SIM_EMBEDDINGS) - before == 2


def test_a_hit_does_not_count_against_a_monthly_budget(stack):
    # gpt-4o's default price: "hi <uid>" costs 6 × $2.50/1M + 8 × $10/1M = $0.000095.
    cost = 6 * 2.5e-6 + 8 * 10e-6
    key = stack.create_key("cache-budget", None, "--monthly-budget", "0.00015")
    body = _chat(f"hi {_uid()}")
    miss = _post(stack, body, _ttl(60), key=key["secret"])
    assert miss.status_code == 200 and miss.headers["x-cache"] == "MISS"
    assert _cost(miss) == pytest.approx(cost)
    # $0.000095 spent of $0.00015. Had a hit cost as much, the second one would already be refused.
    for _ in range(3):
        hit = _post(stack, body, _ttl(60), key=key["secret"])
        assert hit.status_code == 200, hit.text
        assert hit.headers["x-cache"] == "HIT"
    # The budget is live: one more provider answer ($0.00019 spent) and the next request is refused.
    assert _post(stack, _chat(f"hi {_uid()}"), key=key["secret"]).status_code == 200
    refused = _post(stack, _chat(f"hi {_uid()}"), key=key["secret"])
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "insufficient_quota"

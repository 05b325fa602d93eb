"""Many requests at once through nginx and four workers."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from gwstack import expected_reply, parse_sse, stream_content


async def _run_all(stack, bodies: list[dict], timeout: float = 60) -> list:
    limits = httpx.Limits(max_connections=len(bodies) + 10, max_keepalive_connections=len(bodies) + 10)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=timeout, limits=limits, trust_env=False) as client:
        async def one(body):
            response = await client.post("/v1/chat/completions", headers=stack.auth(), json=body)
            return response
        return await asyncio.gather(*(one(body) for body in bodies), return_exceptions=True)


@pytest.mark.parametrize("model", ["gpt-4o", "claude-sonnet-4", "gemini-2.0-flash", "mistral-large", "command-r"])
def test_200_concurrent_streams(stack, model):
    count = 200
    bodies = [{"model": model, "stream": True,
               "messages": [{"role": "user", "content": f"stream number {i} [sim chunk_delay_ms=100 words=8]"}]}
              for i in range(count)]
    start = time.monotonic()
    responses = asyncio.run(_run_all(stack, bodies))
    elapsed = time.monotonic() - start
    failures = [r for r in responses if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} requests raised, e.g. {failures[0]!r}"
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * count, {s: statuses.count(s) for s in set(statuses)}
    expected = expected_reply(8)
    for response in responses:
        payloads = parse_sse(response.content)
        assert payloads[-1] == "[DONE]"
        assert not any(p.startswith('{"error"') for p in payloads)
        assert stream_content(payloads) == expected
    ids = {r.headers["x-request-id"] for r in responses}
    assert len(ids) == count, "request ids are unique"
    # Each stream takes ~1 s upstream; run one after another they would take 200 s.
    assert elapsed < 30, f"200 concurrent 1-second streams took {elapsed:.1f}s"
    print(f"200 concurrent streams in {elapsed:.2f}s")
    # Every one is audited as a metered success.
    wanted = {r.headers["x-request-id"] for r in responses}
    rows = {}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rows = {row["request_id"]: row for row in stack.audit_rows() if row["request_id"] in wanted}
        if len(rows) == count:
            break
        time.sleep(0.2)
    assert len(rows) == count, f"{count - len(rows)} audit rows missing"
    assert all(row["status"] == 200 and row["completion_tokens"] == 8 for row in rows.values())


def test_300_concurrent_non_streaming(stack):
    count = 300
    bodies = [{"model": "gpt-4o", "messages": [{"role": "user", "content": f"request number {i} [sim words={1 + i % 7}]"}]}
              for i in range(count)]
    start = time.monotonic()
    responses = asyncio.run(_run_all(stack, bodies))
    elapsed = time.monotonic() - start
    failures = [r for r in responses if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} requests raised, e.g. {failures[0]!r}"
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * count, {s: statuses.count(s) for s in set(statuses)}
    for i, response in enumerate(responses):
        assert response.json()["choices"][0]["message"]["content"] == expected_reply(1 + i % 7)
        assert response.json()["usage"]["prompt_tokens"] == 5 + 4
    print(f"300 concurrent requests in {elapsed:.2f}s")

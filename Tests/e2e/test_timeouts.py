"""serve's two provider deadlines, on a gateway of its own:

  --upstream-timeout S       "Seconds until a provider's response head (504 after that)"
  --upstream-idle-timeout S  "Longest silence, in seconds, inside a provider's response body"

Here the head deadline is 3 s and the idle deadline 1 s, so the two cannot be confused.
"""

from __future__ import annotations

import json
import time

import pytest

from gwstack import GatewayStack, expected_reply, parse_sse


@pytest.fixture(scope="module")
def timeout_stack(simulator):
    stack = GatewayStack(simulator, name="timeouts", workers=1,
                         serve_args=["--upstream-timeout", "3", "--upstream-idle-timeout", "1", "--graceful-timeout", "5"])
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def _chat(stack, text: str, stream: bool = False):
    with stack.http(timeout=30) as http:
        start = time.monotonic()
        response = http.post("/v1/chat/completions", headers=stack.auth(),
                             json={"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": text}]})
        return response, time.monotonic() - start


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_slow_head_within_upstream_timeout_succeeds(timeout_stack, stream):
    """A provider that takes 1.5 s to answer is within --upstream-timeout 3: the idle deadline
    (1 s) is about silences inside the body, not the wait for the head."""
    response, elapsed = _chat(timeout_stack, "think first [sim latency_ms=1500 words=4]", stream=stream)
    assert response.status_code == 200, f"after {elapsed:.2f}s: {response.text}"
    if stream:
        payloads = parse_sse(response.content)
        assert payloads[-1] == "[DONE]" and not any(p.startswith('{"error"') for p in payloads), payloads[-2:]
    else:
        assert response.json()["choices"][0]["message"]["content"] == expected_reply(4)


def test_head_deadline_is_upstream_timeout(timeout_stack):
    response, elapsed = _chat(timeout_stack, "never mind [sim latency_ms=6000]")
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert 2.7 < elapsed < 4.5, f"504 after {elapsed:.2f}s with --upstream-timeout 3"


def test_idle_deadline_inside_a_stream(timeout_stack):
    # The role chunk and the first word come at once, then 2.5 s of silence: cut after ~1 s.
    response, elapsed = _chat(timeout_stack, "pause mid-way [sim pause_after=2 pause_ms=2500 words=3]", stream=True)
    assert response.status_code == 200
    payloads = parse_sse(response.content)
    assert payloads[-1] == "[DONE]"
    error = json.loads(payloads[-2])["error"]
    assert error["code"] == "upstream_timeout", error
    content = "".join((c.get("delta") or {}).get("content") or "" for p in payloads[:-2] for c in json.loads(p)["choices"])
    assert content == "The ", content
    assert 0.8 < elapsed < 2.2, f"stream cut after {elapsed:.2f}s with --upstream-idle-timeout 1"
    row = timeout_stack.wait_for_audit(response.headers["x-request-id"])
    assert row["status"] == 200
    assert row["error_code"] == "upstream_timeout"


def test_idle_deadline_before_any_content_is_a_504(timeout_stack):
    # Only the role chunk before 2.5 s of silence: nothing reached the client, so it is a plain
    # 504 (with a fallback target it would have gone there).
    response, elapsed = _chat(timeout_stack, "silent start [sim chunk_delay_ms=2500 words=3]", stream=True)
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert 0.8 < elapsed < 2.2, f"cut after {elapsed:.2f}s with --upstream-idle-timeout 1"
    row = timeout_stack.wait_for_audit(response.headers["x-request-id"])
    assert row["status"] == 504 and row["stream"] is True

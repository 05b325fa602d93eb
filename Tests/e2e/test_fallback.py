"""Provider fallback through nginx, four workers and the simulator, on a gateway of its own:

  serve --upstream-timeout 1 --breaker-failures 3 --breaker-cooldown 2

A provider 5xx, 429, Anthropic's 529, a refused connection, a timeout or a malformed answer sends
the request to the next target of the chain (`X-AI-Fallback: provider/model,...`, else the
project's chain from `fallback set`), translated for that provider with its own model. A 4xx
other than 429 is returned as is. A stream falls back only before its first byte reached the
client. The audit row lists every attempt. Limits are charged once per client request. After 3
consecutive failures a provider is skipped for 2 s (circuit breaker, shared by all workers), and
a provider's `Retry-After` skips it for that long.

Every test works in a fresh project, so breaker state never leaks from one test to another.
The simulator's directives are provider-scoped (`[sim openai:status=500]` applies only when the
simulated OpenAI answers); provider calls are counted per simulator path, as deltas.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import httpx
import openai
import pytest

from gwstack import GatewayStack, expected_reply, free_port, parse_sse, stream_content

CHAT = "/v1/chat/completions"
PATHS = {
    "openai": "/openai/v1/chat/completions",
    "anthropic": "/anthropic/v1/messages",
    "google": "/google/v1beta/models/gemini-2.0-flash:generateContent",
    "mistral": "/mistral/v1/chat/completions",
    "cohere": "/cohere/v2/chat",
}


@pytest.fixture(scope="module")
def fb_stack(simulator):
    st = GatewayStack(simulator, name="fallback", workers=4,
                      serve_args=["--upstream-timeout", "1", "--breaker-failures", "3", "--breaker-cooldown", "2",
                                  "--graceful-timeout", "5"])
    try:
        st.start()
        yield st
    finally:
        st.stop()


@dataclass
class Project:
    stack: GatewayStack
    slug: str
    key: str
    key_id: str

    def post(self, body: dict, headers: dict | None = None, key: str | None = None) -> httpx.Response:
        with self.stack.http(timeout=30) as http:
            return http.post(CHAT, headers={**self.stack.auth(key or self.key), **(headers or {})}, json=body)

    def timed_post(self, body: dict, headers: dict | None = None) -> tuple[httpx.Response, float]:
        start = time.monotonic()
        response = self.post(body, headers)
        return response, time.monotonic() - start

    def row(self, response: httpx.Response) -> dict:
        return self.stack.wait_for_audit(response.headers["x-request-id"])

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.stack.v1, api_key=self.key, max_retries=0, timeout=30)


def _new_project(stack: GatewayStack, *key_options: str, providers: bool = True) -> Project:
    slug = f"acme/fb-{uuid.uuid4().hex[:12]}"
    if providers:
        stack.create_project(slug)
    else:
        stack.cli("project", "create", slug)
    created = stack.create_key("fallback", slug, *key_options)
    return Project(stack, slug, created["secret"], created["id"])


@pytest.fixture
def project(fb_stack) -> Project:
    """A fresh project with every provider configured, and a key without limits."""
    return _new_project(fb_stack)


def _chat(text: str, model: str = "gpt-4o", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": f"{text} {uuid.uuid4().hex}"}], **extra}


def _fallback(*targets: str) -> dict:
    return {"X-AI-Fallback": ",".join(targets)}


class Counts:
    """Provider calls per simulator path since it was made."""

    def __init__(self, stack: GatewayStack):
        self.sim = stack.simulator
        self.before = self.sim.counts()

    def delta(self, name: str) -> int:
        path = PATHS.get(name, name)
        return self.sim.count(path) - self.before.get(path, 0)

    def deltas(self, *names: str) -> dict[str, int]:
        now = self.sim.counts()
        return {name: now.get(PATHS.get(name, name), 0) - self.before.get(PATHS.get(name, name), 0) for name in names}


def _attempts(row: dict) -> list[tuple]:
    """(provider, model, status, failed?) per attempt; every attempt must carry a latency."""
    for attempt in row["attempts"]:
        assert isinstance(attempt["latency_ms"], (int, float)) and attempt["latency_ms"] >= 0, row["attempts"]
    return [(a["provider"], a["model"], a["status"], bool(a["error_code"])) for a in row["attempts"]]


def _assert_answered_by(response: httpx.Response, provider: str, model: str, words: int = 8) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["x-ai-provider"] == provider
    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["model"] == model, completion["model"]
    assert completion["choices"][0]["message"]["content"] == expected_reply(words)
    return completion


def _assert_row_served_by(row: dict, provider: str, model: str) -> None:
    assert row["status"] == 200, row
    assert row["provider"] == provider, row
    assert row["model_served"] == model, row


# --------------------------------------------------------------------------------------------
# Triggers: each falls back to a provider with another wire format.


def test_fallback_on_500_to_anthropic(project, fb_stack):
    counts = Counts(fb_stack)
    response = project.post(_chat("[sim openai:status=500]"), _fallback("anthropic/claude-sonnet-4"))
    _assert_answered_by(response, "anthropic", "claude-sonnet-4")
    assert counts.deltas("openai", "anthropic") == {"openai": 1, "anthropic": 1}
    # The fallback request was a valid Anthropic Messages request for the target's own model.
    last = fb_stack.simulator.last()
    assert last["path"] == PATHS["anthropic"]
    assert last["body"]["model"] == "claude-sonnet-4" and last["body"]["max_tokens"] > 0
    assert "[sim openai:status=500]" in json.dumps(last["body"]["messages"])
    row = project.row(response)
    _assert_row_served_by(row, "anthropic", "claude-sonnet-4")
    assert row["model_requested"] == "gpt-4o"
    assert _attempts(row) == [("openai", "gpt-4o", 500, True), ("anthropic", "claude-sonnet-4", 200, False)]
    assert row["attempts"][1]["error_code"] is None
    assert row["cost_usd"] is not None and row["cost_usd"] > 0


@pytest.mark.parametrize("primary, directive, status, fallback", [
    (("openai", "gpt-4o"), "[sim openai:status=429]", 429, ("google", "gemini-2.0-flash")),
    (("anthropic", "claude-sonnet-4"), "[sim anthropic:status=529]", 529, ("openai", "gpt-4o")),
])
def test_fallback_on_a_provider_status(primary, directive, status, fallback, project, fb_stack):
    (first, first_model), (second, second_model) = primary, fallback
    counts = Counts(fb_stack)
    response = project.post(_chat(directive, model=first_model), _fallback(f"{second}/{second_model}"))
    _assert_answered_by(response, second, second_model)
    assert counts.deltas(first, second) == {first: 1, second: 1}
    row = project.row(response)
    _assert_row_served_by(row, second, second_model)
    assert row["model_requested"] == first_model
    assert _attempts(row) == [(first, first_model, status, True), (second, second_model, 200, False)]


def test_fallback_on_timeout_to_mistral(project, fb_stack):
    counts = Counts(fb_stack)
    response, elapsed = project.timed_post(_chat("[sim openai:latency_ms=3000]"), _fallback("mistral/mistral-large"))
    _assert_answered_by(response, "mistral", "mistral-large")
    # --upstream-timeout 1: the first attempt is given up after ~1 s, not after the 3 s it would take.
    assert 0.9 < elapsed < 2.8, f"answered after {elapsed:.2f}s"
    assert counts.deltas("openai", "mistral") == {"openai": 1, "mistral": 1}
    row = project.row(response)
    _assert_row_served_by(row, "mistral", "mistral-large")
    assert _attempts(row) == [("openai", "gpt-4o", 504, True), ("mistral", "mistral-large", 200, False)]
    assert row["attempts"][0]["latency_ms"] >= 900


def test_fallback_on_connection_refused_to_cohere(project, fb_stack):
    closed = free_port()  # nothing listens there
    fb_stack.cli("provider", "set", project.slug, "openai", "--base-url", f"http://127.0.0.1:{closed}/openai",
                 input=fb_stack.provider_key + "\n")
    counts = Counts(fb_stack)
    response = project.post(_chat("refused"), _fallback("cohere/command-r-plus"))
    _assert_answered_by(response, "cohere", "command-r-plus")
    assert counts.deltas("openai", "cohere") == {"openai": 0, "cohere": 1}
    row = project.row(response)
    _assert_row_served_by(row, "cohere", "command-r-plus")
    assert _attempts(row) == [("openai", "gpt-4o", 502, True), ("cohere", "command-r-plus", 200, False)]


def test_fallback_on_malformed_answer(project, fb_stack):
    counts = Counts(fb_stack)
    response = project.post(_chat("[sim openai:malformed=1]"), _fallback("anthropic/claude-sonnet-4"))
    _assert_answered_by(response, "anthropic", "claude-sonnet-4")
    assert counts.deltas("openai", "anthropic") == {"openai": 1, "anthropic": 1}
    row = project.row(response)
    attempts = _attempts(row)
    assert [(p, m, failed) for p, m, _, failed in attempts] == [("openai", "gpt-4o", True), ("anthropic", "claude-sonnet-4", False)]


def test_no_fallback_on_400(project, fb_stack):
    counts = Counts(fb_stack)
    response = project.post(_chat("[sim openai:status=400]"), _fallback("anthropic/claude-sonnet-4"))
    assert response.status_code == 400, response.text
    assert "Simulated HTTP 400" in response.json()["error"]["message"], "the provider's own message"
    assert counts.deltas("openai", "anthropic") == {"openai": 1, "anthropic": 0}
    row = project.row(response)
    assert row["status"] == 400
    assert _attempts(row) == [("openai", "gpt-4o", 400, True)]


# --------------------------------------------------------------------------------------------
# Chains: the project's (CLI), the header's, and which wins.


def _chains(stack: GatewayStack, slug: str) -> list[dict]:
    return json.loads(stack.cli("fallback", "list", slug, "--json").stdout)


def test_project_chain_of_three_targets_set_listed_replaced_removed(project, fb_stack):
    stack = fb_stack
    stack.cli("fallback", "set", project.slug, "openai/gpt-4o", "--to", "anthropic/claude-sonnet-4,google/gemini-2.0-flash")
    assert _chains(stack, project.slug) == [
        {"provider": "openai", "model": "gpt-4o", "targets": ["anthropic/claude-sonnet-4", "google/gemini-2.0-flash"]}]
    assert "anthropic/claude-sonnet-4" in stack.cli("fallback", "list", project.slug).stdout

    counts = Counts(stack)
    response = project.post(_chat("[sim openai:status=500 anthropic:status=529]"))  # no header: the project's chain
    _assert_answered_by(response, "google", "gemini-2.0-flash")
    assert counts.deltas("openai", "anthropic", "google") == {"openai": 1, "anthropic": 1, "google": 1}
    row = project.row(response)
    _assert_row_served_by(row, "google", "gemini-2.0-flash")
    assert _attempts(row) == [("openai", "gpt-4o", 500, True), ("anthropic", "claude-sonnet-4", 529, True),
                              ("google", "gemini-2.0-flash", 200, False)]

    # `set` replaces the chain.
    stack.cli("fallback", "set", project.slug, "openai/gpt-4o", "--to", "mistral/mistral-large")
    assert _chains(stack, project.slug) == [{"provider": "openai", "model": "gpt-4o", "targets": ["mistral/mistral-large"]}]
    counts = Counts(stack)
    replaced = project.post(_chat("[sim openai:status=500]"))
    _assert_answered_by(replaced, "mistral", "mistral-large")
    assert counts.deltas("anthropic", "google", "mistral") == {"anthropic": 0, "google": 0, "mistral": 1}

    # `remove` deletes it: a failure is then the request's own.
    stack.cli("fallback", "remove", project.slug, "openai/gpt-4o")
    assert _chains(stack, project.slug) == []
    counts = Counts(stack)
    alone = project.post(_chat("[sim openai:status=500]"))
    assert alone.status_code == 502 and alone.json()["error"]["code"] == "upstream_error", alone.text
    assert counts.deltas("openai", "mistral") == {"openai": 1, "mistral": 0}


def test_project_chain_applies_only_to_its_provider_and_model(project, fb_stack):
    fb_stack.cli("fallback", "set", project.slug, "openai/gpt-4o", "--to", "anthropic/claude-sonnet-4")
    counts = Counts(fb_stack)
    other_model = project.post(_chat("[sim openai:status=500]", model="gpt-4o-mini"))
    assert other_model.status_code == 502, other_model.text
    assert counts.deltas("openai", "anthropic") == {"openai": 1, "anthropic": 0}
    # The chain's own provider/model, with the provider named by header instead of inferred.
    matching = project.post(_chat("[sim openai:status=500]"), {"X-AI-Provider": "openai"})
    _assert_answered_by(matching, "anthropic", "claude-sonnet-4")


def test_header_beats_the_project_chain(project, fb_stack):
    fb_stack.cli("fallback", "set", project.slug, "openai/gpt-4o", "--to", "anthropic/claude-sonnet-4")
    counts = Counts(fb_stack)
    response = project.post(_chat("[sim openai:status=500]"), _fallback("mistral/mistral-large"))
    _assert_answered_by(response, "mistral", "mistral-large")
    assert counts.deltas("openai", "anthropic", "mistral") == {"openai": 1, "anthropic": 0, "mistral": 1}
    assert _attempts(project.row(response)) == [("openai", "gpt-4o", 500, True), ("mistral", "mistral-large", 200, False)]


def test_header_allows_spaces_around_commas(project, fb_stack):
    counts = Counts(fb_stack)
    response = project.post(_chat("[sim openai:status=500 anthropic:status=500]"),
                            {"X-AI-Fallback": "anthropic/claude-sonnet-4 ,  google/gemini-2.0-flash"})
    _assert_answered_by(response, "google", "gemini-2.0-flash")
    assert counts.deltas("openai", "anthropic", "google") == {"openai": 1, "anthropic": 1, "google": 1}
    assert [a[0] for a in _attempts(project.row(response))] == ["openai", "anthropic", "google"]


@pytest.mark.parametrize("value", ["anthropic", "anthropic/", "/claude-sonnet-4", "nosuch/some-model",
                                   "anthropic/claude-sonnet-4,google", "anthropic/claude-sonnet-4,,google/gemini-2.0-flash"])
def test_malformed_fallback_header_is_a_400(project, fb_stack, value):
    counts = Counts(fb_stack)
    response = project.post(_chat("fine"), {"X-AI-Fallback": value})
    assert response.status_code == 400, (value, response.status_code, response.text)
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "X-AI-Fallback", error
    assert counts.deltas("openai", "anthropic", "google") == {"openai": 0, "anthropic": 0, "google": 0}


def test_fallback_to_a_provider_not_configured_is_a_400(fb_stack):
    bare = _new_project(fb_stack, providers=False)
    fb_stack.cli("provider", "set", bare.slug, "openai", "--base-url", f"{fb_stack.simulator.url}/openai",
                 input=fb_stack.provider_key + "\n")
    counts = Counts(fb_stack)
    response = bare.post(_chat("fine"), _fallback("anthropic/claude-sonnet-4"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "provider_not_configured", response.text
    assert counts.deltas("openai", "anthropic") == {"openai": 0, "anthropic": 0}


# --------------------------------------------------------------------------------------------
# Everything failed: the last attempt's error.


@pytest.mark.parametrize("last_failure, status, code, last_attempt_status", [
    ("anthropic:status=529", 502, "upstream_error", 529),
    ("anthropic:latency_ms=3000", 504, "upstream_timeout", 504),
    ("anthropic:status=429 anthropic:retry_after=5", 429, None, 429),
], ids=["5xx", "timeout", "429"])
def test_all_targets_failed_returns_the_last_attempts_error(project, fb_stack, last_failure, status, code, last_attempt_status):
    counts = Counts(fb_stack)
    response = project.post(_chat(f"[sim openai:status=500 {last_failure}]"), _fallback("anthropic/claude-sonnet-4"))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if code:
        assert error["code"] == code, error
    else:
        assert int(response.headers["retry-after"]) >= 1, dict(response.headers)
    assert counts.deltas("openai", "anthropic") == {"openai": 1, "anthropic": 1}
    row = project.row(response)
    assert row["status"] == status
    assert [(p, m, s, failed) for p, m, s, failed in _attempts(row)] == [
        ("openai", "gpt-4o", 500, True), ("anthropic", "claude-sonnet-4", last_attempt_status, True)]


# --------------------------------------------------------------------------------------------
# Streams.


@pytest.mark.parametrize("failure", ["openai:status=500", "openai:disconnect_after=0"], ids=["status-500", "dropped-before-first-chunk"])
def test_stream_falls_back_before_the_first_byte(project, fb_stack, failure):
    counts = Counts(fb_stack)
    response = project.post(_chat(f"[sim {failure} words=10]", stream=True), _fallback("anthropic/claude-sonnet-4"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-ai-provider"] == "anthropic"
    payloads = parse_sse(response.content)
    assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1
    assert not any("error" in json.loads(p) for p in payloads[:-1]), payloads
    assert stream_content(payloads) == expected_reply(10)
    assert {json.loads(p)["model"] for p in payloads[:-1]} == {"claude-sonnet-4"}
    assert counts.deltas("openai", "anthropic") == {"openai": 1, "anthropic": 1}
    row = project.row(response)
    assert row["stream"] is True
    _assert_row_served_by(row, "anthropic", "claude-sonnet-4")
    assert row["error_code"] is None, row
    attempts = _attempts(row)
    assert [(p, m, failed) for p, m, _, failed in attempts] == [("openai", "gpt-4o", True), ("anthropic", "claude-sonnet-4", False)]


def test_stream_error_after_the_first_chunk_ends_the_stream_without_fallback(project, fb_stack):
    counts = Counts(fb_stack)
    response = project.post(_chat("[sim openai:stream_error_after=3]", stream=True), _fallback("anthropic/claude-sonnet-4"))
    assert response.status_code == 200
    assert response.headers["x-ai-provider"] == "openai"
    payloads = parse_sse(response.content)
    assert payloads[-1] == "[DONE]"
    assert json.loads(payloads[-2])["error"]["message"], payloads[-2]
    assert stream_content(payloads[:-2]) == "The quick brown "
    assert counts.deltas("openai", "anthropic") == {"openai": 1, "anthropic": 0}
    row = project.row(response)
    assert row["error_code"], row
    assert [a[0] for a in _attempts(row)] == ["openai"]

    # The official client raises while iterating, after the content that did arrive.
    received = []
    with pytest.raises(openai.APIError):
        for chunk in project.client().with_options(default_headers=_fallback("anthropic/claude-sonnet-4")).chat.completions.create(
                model="gpt-4o", stream=True, messages=[{"role": "user", "content": f"[sim openai:stream_error_after=3] {uuid.uuid4().hex}"}]):
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(received) == "The quick brown "
    assert counts.deltas("openai", "anthropic") == {"openai": 2, "anthropic": 0}


# --------------------------------------------------------------------------------------------
# Limits, circuit breaker, Retry-After.


def test_limits_are_charged_once_per_client_request(fb_stack):
    limited = _new_project(fb_stack, "--rpm", "2")
    counts = Counts(fb_stack)
    first = limited.post(_chat("[sim openai:status=500]"), _fallback("anthropic/claude-sonnet-4"))
    second = limited.post(_chat("[sim openai:status=500]"), _fallback("anthropic/claude-sonnet-4"))
    for response in (first, second):
        _assert_answered_by(response, "anthropic", "claude-sonnet-4")
    assert [first.headers["x-ratelimit-remaining-requests"], second.headers["x-ratelimit-remaining-requests"]] == ["1", "0"]
    third = limited.post(_chat("fine"))
    assert third.status_code == 429, third.text
    assert third.json()["error"]["code"] == "rate_limit_exceeded"
    assert counts.deltas("openai", "anthropic") == {"openai": 2, "anthropic": 2}


def test_circuit_breaker_opens_after_three_failures_and_closes_after_the_cooldown(project, fb_stack):
    counts = Counts(fb_stack)
    fallback = _fallback("anthropic/claude-sonnet-4")
    for _ in range(3):
        _assert_answered_by(project.post(_chat("[sim openai:status=500]"), fallback), "anthropic", "claude-sonnet-4")
    opened = time.monotonic()
    assert counts.deltas("openai", "anthropic") == {"openai": 3, "anthropic": 3}

    # Open: a request that openai would answer goes straight to the fallback.
    skipped = project.post(_chat("fine"), fallback)
    _assert_answered_by(skipped, "anthropic", "claude-sonnet-4")
    assert time.monotonic() - opened < 2, "the test took too long to see the open breaker"
    assert counts.deltas("openai", "anthropic") == {"openai": 3, "anthropic": 4}, "an open breaker calls nobody"
    row = project.row(skipped)
    assert row["attempts"][0]["provider"] == "openai" and row["attempts"][0]["error_code"] == "circuit_open", row["attempts"]
    assert row["attempts"][0]["status"] == 0
    assert _attempts(row)[1] == ("anthropic", "claude-sonnet-4", 200, False)

    # After the 2 s cool-down (plus whole-second rounding), a probe succeeds and closes it.
    time.sleep(max(0.0, opened + 3.1 - time.monotonic()))
    probe = project.post(_chat("fine"), fallback)
    _assert_answered_by(probe, "openai", "gpt-4o")
    after = project.post(_chat("fine"), fallback)
    _assert_answered_by(after, "openai", "gpt-4o")
    assert counts.deltas("openai", "anthropic") == {"openai": 5, "anthropic": 4}
    assert _attempts(project.row(after)) == [("openai", "gpt-4o", 200, False)]


def test_every_target_open_fails_fast_with_retry_after(project, fb_stack):
    fallback = _fallback("anthropic/claude-sonnet-4")
    for _ in range(3):
        failed = project.post(_chat("[sim openai:status=500 anthropic:status=529]"), fallback)
        assert failed.status_code == 502, failed.text
    counts = Counts(fb_stack)
    response, elapsed = project.timed_post(_chat("fine"), fallback)
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "upstream_error"
    assert 1 <= int(response.headers["retry-after"]) <= 3
    assert elapsed < 1.0, f"took {elapsed:.2f}s with every target open"
    assert counts.deltas("openai", "anthropic") == {"openai": 0, "anthropic": 0}
    row = project.row(response)
    assert [(a["provider"], a["status"], a["error_code"]) for a in row["attempts"]] == [
        ("openai", 0, "circuit_open"), ("anthropic", 0, "circuit_open")]


def test_provider_retry_after_skips_it_for_that_long(project, fb_stack):
    counts = Counts(fb_stack)
    fallback = _fallback("anthropic/claude-sonnet-4")
    limited = project.post(_chat("[sim openai:status=429 openai:retry_after=2]"), fallback)
    told = time.monotonic()
    _assert_answered_by(limited, "anthropic", "claude-sonnet-4")
    assert _attempts(project.row(limited)) == [("openai", "gpt-4o", 429, True), ("anthropic", "claude-sonnet-4", 200, False)]

    skipped = project.post(_chat("fine"), fallback)
    assert time.monotonic() - told < 1, "the test took too long to see the skip"
    _assert_answered_by(skipped, "anthropic", "claude-sonnet-4")
    assert counts.deltas("openai", "anthropic") == {"openai": 1, "anthropic": 2}, "openai is not called while its Retry-After runs"
    first = project.row(skipped)["attempts"][0]
    assert (first["provider"], first["status"], first["error_code"]) == ("openai", 0, "circuit_open")

    time.sleep(max(0.0, told + 3.1 - time.monotonic()))
    again = project.post(_chat("fine"), fallback)
    _assert_answered_by(again, "openai", "gpt-4o")
    assert counts.deltas("openai", "anthropic") == {"openai": 2, "anthropic": 2}


def test_a_cached_fallback_answer_names_the_provider_that_answered(project, fb_stack):
    body = _chat("[sim openai:status=500]")
    headers = {**_fallback("anthropic/claude-sonnet-4"), "X-Cache-TTL": "60"}
    counts = Counts(fb_stack)
    miss = project.post(body, headers)
    _assert_answered_by(miss, "anthropic", "claude-sonnet-4")
    assert miss.headers["x-cache"] == "MISS"
    hit = project.post(body, headers)
    assert hit.status_code == 200
    assert hit.headers["x-cache"] == "HIT"
    assert hit.headers["x-ai-provider"] == "anthropic", "a hit names the provider that originally answered"
    assert hit.content == miss.content
    assert counts.deltas("openai", "anthropic") == {"openai": 1, "anthropic": 1}
    row = project.row(hit)
    assert row["cache_hit"] is True and row["attempts"] == []

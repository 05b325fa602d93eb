"""Chat completions through nginx → gateway → simulator, with the official openai SDK."""

from __future__ import annotations

import json
import subprocess
import time

from gwstack import expected_prompt_tokens, expected_reply, parse_sse, sha256_hex, stream_content


def _messages(text: str) -> list[dict]:
    return [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}]


def test_non_streaming_via_sdk(stack, client, wait_for_audit):
    messages = _messages("Tell me about foxes [sim words=12]")
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages)
    request_id = raw.headers.get("x-request-id")
    assert request_id and request_id.startswith("req_")
    assert raw.headers.get("x-ai-provider") == "openai"
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == expected_reply(12)
    assert completion.choices[0].finish_reason == "stop"
    prompt = expected_prompt_tokens(messages)
    assert prompt == 3 + 4 + 6 + 4
    assert completion.usage.prompt_tokens == prompt
    assert completion.usage.completion_tokens == 12
    assert completion.usage.total_tokens == prompt + 12

    row = wait_for_audit(request_id)
    assert row["status"] == 200
    assert row["error_code"] is None
    assert row["key_id"] == stack.key_id
    assert row["project"] == "acme/web"
    assert row["provider"] == "openai"
    assert row["model_requested"] == "gpt-4o"
    assert row["model_served"] == "gpt-4o"
    assert row["prompt_tokens"] == prompt
    assert row["completion_tokens"] == 12
    assert row["stream"] is False
    assert row["route"] == "/v1/chat/completions"
    assert row["latency_ms"] is not None and row["latency_ms"] > 0
    assert [a["status"] for a in row["attempts"]] == [200]


def test_streaming_via_sdk_matches_non_streaming(stack, client, wait_for_audit):
    messages = _messages("Stream it please [sim words=11]")
    plain = client.chat.completions.create(model="gpt-4o", messages=messages)

    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages, stream=True)
    request_id = raw.headers.get("x-request-id")
    assert request_id and request_id.startswith("req_")
    assert raw.headers.get("x-ai-provider") == "openai"
    assert raw.headers.get("content-type", "").startswith("text/event-stream")
    chunks = list(raw.parse())
    assert chunks, "no chunks"
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    text = "".join(choice.delta.content or "" for chunk in chunks for choice in chunk.choices)
    assert text == plain.choices[0].message.content == expected_reply(11)
    assert chunks[-1].choices and chunks[-1].choices[0].finish_reason == "stop"
    # The client did not ask for usage: the usage chunk the gateway requested for metering
    # must not reach it, and no chunk may carry usage numbers.
    assert all(chunk.usage is None for chunk in chunks), [c.usage for c in chunks if c.usage is not None]

    # ...but the audit row is metered all the same.
    row = wait_for_audit(request_id)
    assert row["status"] == 200
    assert row["stream"] is True
    assert row["prompt_tokens"] == expected_prompt_tokens(messages)
    assert row["completion_tokens"] == 11
    assert row["ttft_ms"] is not None and row["ttft_ms"] > 0
    assert row["model_served"] == "gpt-4o"


def test_streaming_include_usage_final_chunk(client, wait_for_audit):
    messages = _messages("Count with usage [sim words=6]")
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=messages, stream=True, stream_options={"include_usage": True})
    request_id = raw.headers.get("x-request-id")
    chunks = list(raw.parse())
    final = chunks[-1]
    assert final.usage is not None, "the final chunk has no usage"
    assert final.choices == []
    prompt = expected_prompt_tokens(messages)
    assert final.usage.prompt_tokens == prompt
    assert final.usage.completion_tokens == 6
    assert final.usage.total_tokens == prompt + 6
    assert sum(1 for chunk in chunks if chunk.usage is not None) == 1
    text = "".join(choice.delta.content or "" for chunk in chunks for choice in chunk.choices)
    assert text == expected_reply(6)
    row = wait_for_audit(request_id)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, 6)


def test_split_unicode_stream_through_curl(stack, wait_for_audit, tmp_path):
    body = {"model": "gpt-4o", "stream": True,
            "messages": [{"role": "user", "content": "Say it in many scripts [sim split=1 unicode=1 words=16]"}]}
    headers_file = tmp_path / "headers.txt"
    result = subprocess.run(
        ["curl", "-sS", "-N", "--max-time", "30", "-D", str(headers_file),
         "-H", f"Authorization: Bearer {stack.key}", "-H", "Content-Type: application/json",
         "--data-binary", json.dumps(body), stack.v1 + "/chat/completions"],
        capture_output=True, timeout=40)
    assert result.returncode == 0, result.stderr
    head = headers_file.read_text()
    assert head.startswith("HTTP/1.1 200"), head
    raw = result.stdout
    text = raw.decode("utf-8")  # strict: a split multi-byte character would raise here
    assert "\ufffd" not in text
    assert text.rstrip("\n").endswith("data: [DONE]")
    payloads = parse_sse(raw)
    assert payloads[-1] == "[DONE]"
    assert payloads.count("[DONE]") == 1
    for payload in payloads[:-1]:
        json.loads(payload)  # every event whole
    assert stream_content(payloads) == expected_reply(16, unicode=True)
    request_id = next(line.split(":", 1)[1].strip() for line in head.splitlines() if line.lower().startswith("x-request-id:"))
    row = wait_for_audit(request_id)
    assert row["status"] == 200 and row["error_code"] is None
    assert row["completion_tokens"] == 16


def test_sse_arrives_incrementally(client):
    messages = [{"role": "user", "content": "Slowly now [sim chunk_delay_ms=300 words=5]"}]
    start = time.monotonic()
    stream = client.chat.completions.create(model="gpt-4o", messages=messages, stream=True)
    content_times = []
    text = ""
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                content_times.append(time.monotonic() - start)
                text += choice.delta.content
    end = time.monotonic() - start
    assert text == expected_reply(5)
    assert len(content_times) == 5, content_times
    # Upstream: role, 5 words, finish, usage, [DONE] with 300 ms between events (~2.4 s).
    assert end > 2.0, f"the stream ended after {end:.2f}s; the simulator paces it over ~2.4s"
    assert content_times[0] < 1.0, f"first content chunk after {content_times[0]:.2f}s"
    assert end - content_times[0] > 1.5, f"first chunk at {content_times[0]:.2f}s, end at {end:.2f}s: buffered"
    # Each word came on its own, not in a batch.
    gaps = [b - a for a, b in zip(content_times, content_times[1:])]
    assert all(gap > 0.15 for gap in gaps), gaps


def test_models_list(client, stack, wait_for_audit):
    raw = client.models.with_raw_response.list()
    request_id = raw.headers.get("x-request-id")
    models = raw.parse()
    ids = [model.id for model in models]
    assert "gpt-4o" in ids
    owners = {model.id: model.owned_by for model in models}
    # docs/api.md's model names, each listed by the provider that serves it.
    for model_id, owner in {"gpt-4o": "openai", "claude-sonnet-4": "anthropic", "gemini-2.0-flash": "google",
                            "mistral-large": "mistral", "command-r": "cohere"}.items():
        assert owners.get(model_id) == owner, (model_id, owners.get(model_id))
    row = wait_for_audit(request_id)
    assert row["status"] == 200
    assert row["route"] == "/v1/models"
    assert row["key_id"] == stack.key_id


def test_healthz(http):
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_user_field_in_audit_row(client, wait_for_audit):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "who am I"}], user="alice-e2e")
    row = wait_for_audit(raw.headers["x-request-id"])
    assert row["user"] == "alice-e2e"
    assert row["status"] == 200


def test_provider_key_sent_upstream_gateway_key_never(stack, client, simulator):
    simulator.reset()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "check the credentials"}])
    assert raw.http_response.status_code == 200
    last = simulator.last()
    headers = {name.lower(): value for name, value in last["headers"].items()}
    assert headers.get("authorization") == "Bearer " + sha256_hex(stack.provider_key)
    assert last["path"] == "/openai/v1/chat/completions"
    assert last["body"]["model"] == "gpt-4o"
    assert last["body"]["messages"] == [{"role": "user", "content": "check the credentials"}]
    # The gateway key (or its hash) must not travel upstream in any form.
    everything = json.dumps(last)
    assert stack.key not in everything
    assert sha256_hex(stack.key) not in everything
    assert stack.key.split("_")[-1] not in everything  # not even its secret part

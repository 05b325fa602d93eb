"""Every provider through nginx, four workers and the simulator speaking that provider's own wire
format, with the official `openai` client: the gateway translates both ways."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from gwstack import expected_prompt_tokens, expected_reply, parse_sse

MODELS = {
    "openai": "gpt-4o",
    "anthropic": "claude-sonnet-4",
    "google": "gemini-2.0-flash",
    "mistral": "mistral-large",
    "cohere": "command-r",
}
EMBEDDING_MODELS = {
    "openai": "text-embedding-3-small",
    "google": "text-embedding-004",
    "mistral": "mistral-embed",
    "cohere": "embed-english-v3.0",
}
PROVIDERS = list(MODELS)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _with_header(client: openai.OpenAI, provider: str) -> openai.OpenAI:
    return client.with_options(default_headers={"X-AI-Provider": provider})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_non_streaming(provider, client, stack):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
    raw = _with_header(client, provider).chat.completions.with_raw_response.create(model=MODELS[provider], messages=messages)
    completion = raw.parse()
    assert raw.headers["x-ai-provider"] == provider
    choice = completion.choices[0]
    assert choice.message.content == expected_reply(8)
    assert choice.finish_reason == "stop"
    assert completion.object == "chat.completion"
    assert completion.usage.prompt_tokens == expected_prompt_tokens(messages)
    assert completion.usage.completion_tokens == 8
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 8
    assert completion.model.startswith(MODELS[provider].split("-")[0])
    row = stack.wait_for_audit(raw.headers["x-request-id"])
    assert row["provider"] == provider and row["status"] == 200
    assert row["prompt_tokens"] == expected_prompt_tokens(messages) and row["completion_tokens"] == 8
    assert row["cost_usd"] is not None and row["cost_usd"] > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streaming_with_and_without_usage(provider, client, stack):
    messages = [{"role": "user", "content": "Stream please [sim words=12]"}]
    stream = _with_header(client, provider).chat.completions.create(
        model=MODELS[provider], messages=messages, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_reply(12)
    assert len({c.id for c in chunks}) == 1, "every chunk of a stream has the same id"
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 12
    assert chunks[-1].usage.prompt_tokens == expected_prompt_tokens(messages)

    # Without include_usage: no usage chunk, but the audit row still has the tokens.
    with stack.http() as http:
        response = http.post("/v1/chat/completions", headers={**stack.auth(), "X-AI-Provider": provider},
                             json={"model": MODELS[provider], "stream": True, "messages": messages})
    payloads = parse_sse(response.content)
    assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1
    assert all(json.loads(p).get("choices") for p in payloads[:-1]), "no usage-only chunk when the client did not ask"
    row = stack.wait_for_audit(response.headers["x-request-id"])
    assert row["stream"] and row["completion_tokens"] == 12 and row["prompt_tokens"] == expected_prompt_tokens(messages)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_call_round_trip(provider, client):
    api = _with_header(client, provider)
    messages = [{"role": "user", "content": "What is the weather in Paris? [sim tool=get_weather]"}]
    first = api.chat.completions.create(model=MODELS[provider], messages=messages, tools=[WEATHER_TOOL], tool_choice="auto")
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content in (None, "")
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id

    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude_none=True)]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature_c": 18, "sky": "clear"})},
    ]
    second = api.chat.completions.create(model=MODELS[provider], messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == expected_reply(8)
    assert not second.choices[0].message.tool_calls


@pytest.mark.parametrize("provider", PROVIDERS)
def test_streamed_tool_call(provider, client):
    stream = _with_header(client, provider).chat.completions.create(
        model=MODELS[provider], stream=True, tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Paris? [sim tool=get_weather]"}])
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        for part in delta.tool_calls or []:
            entry = calls.setdefault(part.index, {"id": None, "name": None, "arguments": ""})
            if part.id:
                assert entry["id"] is None, "id comes once per tool call"
                entry["id"] = part.id
            if part.function and part.function.name:
                entry["name"] = part.function.name
            if part.function and part.function.arguments:
                entry["arguments"] += part.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"] and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_provider_errors_in_openai_shape(provider, client, stack):
    api = _with_header(client, provider)
    with pytest.raises(openai.RateLimitError) as limited:
        api.chat.completions.create(model=MODELS[provider], messages=[{"role": "user", "content": "[sim status=429 retry_after=7]"}])
    assert limited.value.response.headers["retry-after"] == "7"
    with pytest.raises(openai.BadRequestError):
        api.chat.completions.create(model=MODELS[provider], messages=[{"role": "user", "content": "[sim status=400]"}])
    with pytest.raises(openai.AuthenticationError):
        api.chat.completions.create(model=MODELS[provider], messages=[{"role": "user", "content": "[sim status=401]"}])
    status = 529 if provider == "anthropic" else 500
    with pytest.raises(openai.InternalServerError) as failed:
        api.chat.completions.create(model=MODELS[provider], messages=[{"role": "user", "content": f"[sim status={status}]"}])
    assert failed.value.status_code == 502
    body = failed.value.response.json()["error"]
    assert body["code"] == "upstream_error" and f"HTTP {status}" in body["message"]
    assert stack.provider_key not in failed.value.response.text


@pytest.mark.parametrize("provider", PROVIDERS)
def test_mid_stream_error_becomes_an_error_event(provider, client, stack):
    with stack.http() as http:
        response = http.post("/v1/chat/completions", headers={**stack.auth(), "X-AI-Provider": provider},
                             json={"model": MODELS[provider], "stream": True,
                                   "messages": [{"role": "user", "content": "[sim stream_error_after=2 words=10 chunk_delay_ms=50]"}]})
    assert response.status_code == 200
    payloads = parse_sse(response.content)
    assert payloads[-1] == "[DONE]"
    assert json.loads(payloads[-2])["error"]["message"]
    row = stack.wait_for_audit(response.headers["x-request-id"])
    assert row["error_code"], row
    # The SDK raises for the error event.
    with pytest.raises(openai.APIError):
        for _ in _with_header(client, provider).chat.completions.create(
                model=MODELS[provider], stream=True,
                messages=[{"role": "user", "content": "[sim stream_error_after=2 chunk_delay_ms=50]"}]):
            pass


@pytest.mark.parametrize("provider", list(EMBEDDING_MODELS))
def test_embeddings(provider, client, stack):
    raw = _with_header(client, provider).embeddings.with_raw_response.create(
        model=EMBEDDING_MODELS[provider], input=["the quick brown fox", "jumps over"])
    result = raw.parse()
    assert raw.headers["x-ai-provider"] == provider
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) > 0 and all(isinstance(x, float) for x in d.embedding) for d in result.data)
    row = stack.wait_for_audit(raw.headers["x-request-id"])
    assert row["provider"] == provider and row["status"] == 200 and row["route"] == "/v1/embeddings"


def test_anthropic_has_no_embeddings(client):
    with pytest.raises(openai.BadRequestError) as refused:
        _with_header(client, "anthropic").embeddings.create(model="claude-sonnet-4", input="x")
    assert refused.value.response.json()["error"]["code"] == "unsupported_provider"


def test_models_lists_every_configured_provider(client):
    ids = {model.id for model in client.models.list()}
    for model in MODELS.values():
        assert model in ids, (model, sorted(ids))


def test_provider_inferred_from_the_model_name(client):
    for provider, model in MODELS.items():
        raw = client.chat.completions.with_raw_response.create(model=model, messages=[{"role": "user", "content": "hi"}])
        assert raw.headers["x-ai-provider"] == provider
        assert raw.parse().choices[0].message.content == expected_reply(8)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_provider_output_is_a_502_and_an_audit_row(provider, stack):
    with stack.http() as http:
        headers = {**stack.auth(), "X-AI-Provider": provider}
        broken = http.post("/v1/chat/completions", headers=headers,
                           json={"model": MODELS[provider], "messages": [{"role": "user", "content": "[sim malformed=1]"}]})
        assert broken.status_code == 502, broken.text
        error = broken.json()["error"]
        assert error["type"] == "upstream_error" and provider in error["message"]
        row = stack.wait_for_audit(broken.headers["x-request-id"])
        assert row["status"] == 502 and row["provider"] == provider
        stream = http.post("/v1/chat/completions", headers=headers,
                           json={"model": MODELS[provider], "stream": True,
                                 "messages": [{"role": "user", "content": "[sim malformed=1]"}]})
        if provider == "google":
            # The simulated Gemini stream sends one good chunk before the broken one: the content
            # went out, so the stream ends with an error event.
            payloads = parse_sse(stream.content)
            assert stream.status_code == 200 and payloads[-1] == "[DONE]" and "error" in json.loads(payloads[-2])
        else:
            # Broken before any content: nothing was sent yet, so it is a plain 502 too (and could
            # have fallen back), not a 200 with an error event.
            assert stream.status_code == 502, stream.text
            assert stream.json()["error"]["type"] == "upstream_error"
        assert stack.wait_for_audit(stream.headers["x-request-id"])["error_code"]
        # The worker that met the bad output still serves.
        assert http.post("/v1/chat/completions", headers=headers,
                         json={"model": MODELS[provider], "messages": [{"role": "user", "content": "hi"}]}).status_code == 200

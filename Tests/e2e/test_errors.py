"""Every error case of docs/api.md's errors table, through nginx, in OpenAI's error shape, audited."""

from __future__ import annotations

import json
import time

import openai
import pytest

from gwstack import parse_sse

# Every error body seen in this module, for the no-secrets check at the end.
ERROR_BODIES: list[str] = []


def chat_body(text: str = "hello", model: str | None = "gpt-4o", **extra) -> dict:
    body = {"messages": [{"role": "user", "content": text}], **extra}
    if model is not None:
        body["model"] = model
    return body


def post_chat(stack, http, body=None, *, content: bytes | None = None, key: str | None = "default", headers=None):
    request_headers = {"Content-Type": "application/json"}
    if key == "default":
        request_headers.update(stack.auth())
    elif key is not None:
        request_headers["Authorization"] = f"Bearer {key}"
    request_headers.update(headers or {})
    if content is None:
        content = json.dumps(body).encode()
    return http.post("/v1/chat/completions", content=content, headers=request_headers)


def assert_openai_error(stack, response, status: int, *, type: str | None = None, code: str | None = None,
                        param: str | None = None, audit_code: str | None = None) -> dict:
    """Checks the status, OpenAI's error shape, X-Request-Id and the audit row; returns the error."""
    ERROR_BODIES.append(response.text)
    assert response.status_code == status, response.text
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    if type is not None:
        assert error["type"] == type, error
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    request_id = response.headers.get("x-request-id")
    assert request_id and request_id.startswith("req_"), response.headers
    row = stack.wait_for_audit(request_id)
    assert row["status"] == status, row
    expected_code = audit_code or error["code"] or error["type"]
    assert row["error_code"] == expected_code, row
    return error


# --- authentication ----------------------------------------------------------------------------


def test_no_key_401(stack, http):
    response = post_chat(stack, http, chat_body(), key=None)
    assert_openai_error(stack, response, 401, type="authentication_error", code="invalid_api_key")
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer")


def test_bad_key_401_sdk(stack, http):
    bogus = "dpx_000000000000_ThisIsNotARealGatewayKeyAtAll0000000000"
    client = openai.OpenAI(base_url=stack.v1, api_key=bogus, max_retries=0, timeout=30)
    with pytest.raises(openai.AuthenticationError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 401
    response = raised.value.response
    error = assert_openai_error(stack, response, 401, type="authentication_error", code="invalid_api_key")
    assert bogus not in response.text and "ThisIsNotARealGatewayKey" not in error["message"]
    # A key that is not even key-shaped.
    response = post_chat(stack, http, chat_body(), key="garbage")
    assert_openai_error(stack, response, 401, code="invalid_api_key")


def test_revoked_key_401(stack, http):
    created = stack.create_key("to-revoke")
    client = openai.OpenAI(base_url=stack.v1, api_key=created["secret"], max_retries=0, timeout=30)
    ok = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert ok.http_response.status_code == 200
    assert stack.wait_for_audit(ok.headers["x-request-id"])["key_id"] == created["id"]

    stack.cli("key", "revoke", created["id"])
    listed = json.loads(stack.cli("key", "list", "acme/web", "--json").stdout)
    assert any(k["id"] == created["id"] for k in listed)
    with pytest.raises(openai.AuthenticationError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 401
    assert_openai_error(stack, raised.value.response, 401, type="authentication_error", code="invalid_api_key")
    assert created["secret"] not in raised.value.response.text


# --- invalid requests --------------------------------------------------------------------------


def test_malformed_json_400(stack, http):
    response = post_chat(stack, http, content=b'{"model": "gpt-4o", "messages": [')
    assert_openai_error(stack, response, 400, type="invalid_request_error")


def test_missing_model_400(stack, http):
    response = post_chat(stack, http, chat_body(model=None))
    assert_openai_error(stack, response, 400, type="invalid_request_error", param="model")


def test_unknown_provider_header_400(stack, http):
    response = post_chat(stack, http, chat_body(), headers={"X-AI-Provider": "acmecloud"})
    error = assert_openai_error(stack, response, 400, type="invalid_request_error")
    assert "acmecloud" in error["message"]


def test_model_without_inferable_provider_400(stack, http):
    response = post_chat(stack, http, chat_body(model="llama-3-70b"))
    error = assert_openai_error(stack, response, 400, type="invalid_request_error", param="model")
    assert "X-AI-Provider" in error["message"]


@pytest.mark.parametrize("how", ["header", "model"])
def test_provider_not_configured_400(stack, http, simulator, how):
    # A project that configured only openai.
    if not stack.cli("project", "list", "--json").stdout.count('"acme/openai-only"'):
        stack.cli("project", "create", "acme/openai-only")
        stack.cli("provider", "set", "acme/openai-only", "openai", "--base-url", simulator.openai_base_url, input="sk-x\n")
        test_provider_not_configured_400.key = stack.create_key("openai-only", "acme/openai-only")["secret"]
    auth = {"Authorization": f"Bearer {test_provider_not_configured_400.key}"}
    simulator.reset()
    if how == "header":
        response = post_chat(stack, http, chat_body(), headers={**auth, "X-AI-Provider": "anthropic"})
    else:
        response = post_chat(stack, http, chat_body(model="claude-sonnet-4"), headers=auth)
    error = assert_openai_error(stack, response, 400, type="invalid_request_error")
    assert "anthropic" in error["message"]
    assert simulator.stats()["requests"] == 0, "nothing may reach a provider"


def test_body_over_limit_413(stack, http):
    filler = "x" * (10 * 1024 * 1024 + 512 * 1024)  # 10.5 MiB: over serve's 10 MiB, under nginx's 12m
    response = post_chat(stack, http, content=json.dumps(chat_body(filler)).encode())
    assert_openai_error(stack, response, 413, type="invalid_request_error", code="request_too_large")


def test_unknown_route_404(stack, http):
    response = http.get("/v1/nope", headers=stack.auth())
    assert_openai_error(stack, response, 404, type="invalid_request_error", code="not_found")
    response = http.post("/v1/nope", headers=stack.auth(), content=b"{}")
    assert_openai_error(stack, response, 404, code="not_found")


def test_wrong_method_405(stack, http):
    response = http.get("/v1/chat/completions", headers=stack.auth())
    assert_openai_error(stack, response, 405, type="invalid_request_error")


# --- provider failures -------------------------------------------------------------------------


def test_upstream_500_becomes_502(stack, client):
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "boom [sim status=500]"}])
    assert raised.value.status_code == 502
    assert isinstance(raised.value, openai.InternalServerError)
    error = assert_openai_error(stack, raised.value.response, 502, type="upstream_error", code="upstream_error")
    assert "500" in error["message"], "the message names the provider's error"
    row = stack.wait_for_audit(raised.value.response.headers["x-request-id"])
    assert [a["status"] for a in row["attempts"]] == [500]


def test_upstream_429_keeps_retry_after(stack, client, http):
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="gpt-4o",
                                       messages=[{"role": "user", "content": "slow down [sim status=429 retry_after=7]"}])
    response = raised.value.response
    assert response.status_code == 429
    assert response.headers.get("retry-after") == "7"
    error = assert_openai_error(stack, response, 429, audit_code="rate_limit_exceeded")
    assert "Rate limit reached" in error["message"], "the provider's message is passed on"
    assert error["code"] == "rate_limit_exceeded"


def test_upstream_400_passthrough(stack, http):
    response = post_chat(stack, http, chat_body("bad one [sim status=400]"))
    error = assert_openai_error(stack, response, 400, type="invalid_request_error")
    assert "Simulated HTTP 400" in error["message"], "the provider's message is passed on"


def test_upstream_timeout_504(stack, http):
    start = time.monotonic()
    response = post_chat(stack, http, chat_body("take your time [sim latency_ms=4000]"))
    elapsed = time.monotonic() - start
    assert_openai_error(stack, response, 504, type="upstream_timeout", code="upstream_timeout")
    assert 1.7 < elapsed < 3.5, f"504 after {elapsed:.2f}s with --upstream-timeout 2"


@pytest.mark.parametrize("directive", ["malformed=1", "empty_body=1"])
def test_unreadable_upstream_answer_502(stack, http, directive):
    response = post_chat(stack, http, chat_body(f"broken [sim {directive}]"))
    assert_openai_error(stack, response, 502, type="upstream_error", code="upstream_error")


@pytest.mark.parametrize("directive", ["malformed=1", "disconnect_after=0"])
def test_stream_failure_before_any_content_is_a_plain_502(stack, http, directive):
    # The provider answered 200 but broke before its first content chunk: the gateway had sent
    # nothing yet (it holds the head until content, so such a stream can fall back), so the
    # client gets an ordinary error answer rather than a 200 with an error event.
    body = chat_body(f"stream then break [sim {directive}]", stream=True)
    response = post_chat(stack, http, body)
    assert_openai_error(stack, response, 502, type="upstream_error", code="upstream_error")
    row = stack.wait_for_audit(response.headers["x-request-id"])
    assert row["status"] == 502 and row["stream"] is True, row
    assert [a["status"] for a in row["attempts"]] == [200], row["attempts"]


@pytest.mark.parametrize("directive", ["disconnect_after=2 chunk_delay_ms=100", "stream_error_after=2 chunk_delay_ms=50"])
def test_stream_failure_after_content_ends_with_error_event(stack, http, directive):
    body = chat_body(f"stream then break [sim {directive}]", stream=True)
    response = post_chat(stack, http, body)
    assert response.status_code == 200
    assert response.headers.get("content-type", "").startswith("text/event-stream")
    payloads = parse_sse(response.content)
    assert payloads[-1] == "[DONE]", payloads[-3:]
    assert payloads.count("[DONE]") == 1
    last_event = json.loads(payloads[-2])
    assert set(last_event) == {"error"}, last_event
    assert set(last_event["error"]) == {"message", "type", "param", "code"}
    assert last_event["error"]["message"]
    ERROR_BODIES.append(payloads[-2])
    # Everything before the error event is a normal chunk, and the chunks that arrived before
    # the provider broke off are all relayed.
    for payload in payloads[:-2]:
        assert json.loads(payload)["object"] == "chat.completion.chunk"
    content = "".join((c.get("delta") or {}).get("content") or ""
                      for p in payloads[:-2] for c in json.loads(p)["choices"])
    assert content == "The quick "
    row = stack.wait_for_audit(response.headers["x-request-id"])
    assert row["status"] == 200
    assert row["stream"] is True
    assert row["error_code"], row


# --- secrets -----------------------------------------------------------------------------------


def test_no_secret_in_error_bodies_or_logs(stack, http):
    # A few more errors that involve keys, then look everywhere a secret could leak.
    responses = [
        post_chat(stack, http, chat_body(), key=stack.key + "x"),
        post_chat(stack, http, chat_body(), key=stack.provider_key),
        post_chat(stack, http, chat_body("who are you [sim status=401]")),
        post_chat(stack, http, chat_body("forbidden [sim status=403]")),
        post_chat(stack, http, chat_body("oops [sim status=503]")),
    ]
    assert [r.status_code for r in responses] == [401, 401, 401, 403, 502]
    bodies = ERROR_BODIES + [r.text for r in responses]
    secrets = {"gateway key": stack.key, "gateway key secret part": stack.key.split("_")[-1],
               "provider key": stack.provider_key}
    for body in bodies:
        for label, secret in secrets.items():
            assert secret not in body, f"{label} leaked in an error body: {body}"
    time.sleep(0.2)
    log = stack.gateway_log.read_text(errors="replace")
    for label, secret in secrets.items():
        assert secret not in log, f"{label} leaked in the gateway log"
    audit = stack.cli("audit", "export").stdout + stack.cli("audit", "export", "--format", "csv").stdout
    for label, secret in secrets.items():
        assert secret not in audit, f"{label} leaked in the audit log"

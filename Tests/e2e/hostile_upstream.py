"""A hostile provider for the hardening tests: a small threaded HTTP server on 127.0.0.1 that
speaks OpenAI's chat-completions format but answers with the numbers, headers and bodies a
broken or malicious upstream might send.

It runs in-process (a pytest fixture starts and stops it). Each request is scripted by a marker
in its body, `[hostile MODE]` (e.g. inside a message's text); without one it answers a normal
completion ("hostile ok"), streamed when the request asks for a stream. Every request it
receives is recorded (path, headers, body), so a test can tell whether the gateway called it.

Modes:
  retry_after_huge     429 with `Retry-After: 1e99`
  retry_after_nan      503 with `Retry-After: nan`
  usage_float          200, usage.prompt_tokens = 9e18
  usage_bigint         200, usage.prompt_tokens = 9000000000000000000
  usage_overflow       200, usage.prompt_tokens = 99999999999999999999999 (beyond Int64)
  usage_negative       200, usage.prompt_tokens = -5, completion_tokens = -7
  stream_usage_huge    a stream whose usage chunk has 1e300 tokens
  huge_event           a stream with one SSE event made of > 16 MiB of `data:` lines, no blank line
  leak_400             400 JSON error whose message/type/code/param carry secrets
  leak_stream          a stream with a mid-stream `{"error":{...}}` event carrying the same secrets

The format follows the request's path: Anthropic (/v1/messages), Gemini (/v1beta/…), Cohere
(/v2/chat) answer in their own non-streamed shapes for the Retry-After, usage and leak_400 modes
(stream_usage_huge then means 1e300 tokens in the non-streamed usage); anything else is OpenAI's
(Mistral's is the same).

The secrets: a foreign OpenAI key, a Google API key, and the provider key the gateway itself
sent in this request's Authorization (or x-goog-api-key) header.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FOREIGN_OPENAI_KEY = "sk-proj-AAAAAAAAAAAAAAAAAAAAAAAA"
FOREIGN_GOOGLE_KEY = "AIzaSyA-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
OK_TEXT = "hostile ok"
HUGE_EVENT_BYTES = 17 * 1024 * 1024

_MARKER = re.compile(rb"\[hostile ([a-z0-9_]+)\]")


class HostileUpstream:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "HostileUpstream":
        upstream = self

        class Handler(_Handler):
            owner = upstream

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="hostile-upstream", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def record(self, entry: dict) -> None:
        with self._lock:
            self.requests.append(entry)

    def count(self, path_prefix: str = "") -> int:
        with self._lock:
            return sum(1 for r in self.requests if r["path"].startswith(path_prefix))

    def paths(self) -> list[str]:
        with self._lock:
            return [r["path"] for r in self.requests]


class _Handler(BaseHTTPRequestHandler):
    owner: HostileUpstream
    protocol_version = "HTTP/1.1"
    server_version = "hostile/1"

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    # -- plumbing --------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def _provider_key(self) -> str:
        auth = self.headers.get("Authorization") or ""
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return (self.headers.get("x-goog-api-key") or self.headers.get("x-api-key") or "").strip()

    def _send_json(self, status: int, body: bytes, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
            self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True

    # -- answers ---------------------------------------------------------------------------

    def _completion(self, model: str, usage: bytes | None = None) -> bytes:
        document = {
            "id": "chatcmpl-hostile", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": OK_TEXT}, "finish_reason": "stop"}],
            "usage": "__USAGE__",
        }
        usage = usage or b'{"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}'
        return json.dumps(document).replace('"__USAGE__"', usage.decode()).encode()

    def _chunk_event(self, model: str, delta: dict | None, finish: str | None = None, usage: str | None = None) -> bytes:
        document = {"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                    "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]}
        text = json.dumps(document)
        if usage is not None:
            text = text[:-1] + ', "usage": ' + usage + "}"
        return b"data: " + text.encode() + b"\n\n"

    def _stream(self, model: str, usage: str, error_event: bytes | None = None) -> None:
        self._start_stream()
        self._chunk(self._chunk_event(model, {"role": "assistant", "content": ""}))
        for word in OK_TEXT.split(" "):
            self._chunk(self._chunk_event(model, {"content": word + " "}))
        if error_event is not None:
            self._chunk(b"data: " + error_event + b"\n\n")
            self._end_stream()
            return
        self._chunk(self._chunk_event(model, {}, "stop"))
        self._chunk(self._chunk_event(model, None, usage=usage))
        self._chunk(b"data: [DONE]\n\n")
        self._end_stream()

    def _leak_error(self) -> dict:
        own = self._provider_key()
        return {"error": {
            "message": f"Incorrect API key provided: {own}. Try {FOREIGN_OPENAI_KEY} or {FOREIGN_GOOGLE_KEY}.",
            "type": f"invalid_request_error {FOREIGN_OPENAI_KEY}",
            "code": f"{FOREIGN_GOOGLE_KEY}",
            "param": f"{own}",
        }}

    def _error_body(self, message: str, kind: str, code: str) -> bytes:
        return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()

    # -- dispatch --------------------------------------------------------------------------

    def do_GET(self):  # noqa: N802
        self.owner.record({"method": "GET", "path": self.path, "headers": dict(self.headers), "body": b""})
        self._send_json(404, self._error_body("not here", "invalid_request_error", "not_found"))

    def do_POST(self):  # noqa: N802
        body = self._read_body()
        self.owner.record({"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body})
        match = _MARKER.search(body)
        mode = match.group(1).decode() if match else "ok"
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        model = str(request.get("model") or "gpt-4o")
        stream = bool(request.get("stream"))
        if self.path.startswith("/v1/messages"):
            fmt = "anthropic"
        elif self.path.startswith("/v1beta/"):
            fmt = "google"
            stream = "streamGenerateContent" in self.path
        elif self.path.startswith("/v2/chat"):
            fmt = "cohere"
        else:
            fmt = "openai"  # OpenAI and Mistral
        try:
            if fmt == "openai":
                self._answer(mode, model, stream)
            else:
                self._answer_other(fmt, mode, model)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    def _answer(self, mode: str, model: str, stream: bool) -> None:
        normal_usage = '{"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}'
        if mode == "retry_after_huge":
            self._send_json(429, self._error_body("Rate limit reached", "requests", "rate_limit_exceeded"),
                            {"Retry-After": "1e99", "retry-after-ms": "1e99"})
        elif mode == "retry_after_nan":
            self._send_json(503, self._error_body("The engine is currently overloaded", "server_error", "overloaded"),
                            {"Retry-After": "nan"})
        elif mode in ("usage_float", "usage_bigint", "usage_overflow", "usage_negative"):
            literal = {"usage_float": "9e18", "usage_bigint": "9000000000000000000",
                       "usage_overflow": "99999999999999999999999", "usage_negative": "-5"}[mode]
            completion = "-7" if mode == "usage_negative" else "2"
            usage = f'{{"prompt_tokens": {literal}, "completion_tokens": {completion}, "total_tokens": {literal}}}'
            if stream:
                self._stream(model, usage)
            else:
                self._send_json(200, self._completion(model, usage.encode()))
        elif mode == "stream_usage_huge":
            usage = '{"prompt_tokens": 1e300, "completion_tokens": 1e300, "total_tokens": 1e300}'
            if stream:
                self._stream(model, usage)
            else:
                self._send_json(200, self._completion(model, usage.encode()))
        elif mode == "huge_event":
            self._start_stream()
            self._chunk(self._chunk_event(model, {"role": "assistant", "content": ""}))
            line = b"data: " + b"x" * 1018 + b"\n"  # 1 KiB a line, no blank line between them
            block = line * 1024  # 1 MiB
            sent = 0
            while sent < HUGE_EVENT_BYTES:
                self._chunk(block)
                sent += len(block)
            self._chunk(b"\n")
            self._chunk(b"data: [DONE]\n\n")
            self._end_stream()
        elif mode == "leak_400":
            self._send_json(400, json.dumps(self._leak_error()).encode())
        elif mode == "leak_stream":
            self._stream(model, normal_usage, error_event=json.dumps(self._leak_error()).encode())
        else:
            if stream:
                self._stream(model, normal_usage)
            else:
                self._send_json(200, self._completion(model))

    # -- the other providers' formats (non-streamed) ------------------------------------------

    def _answer_other(self, fmt: str, mode: str, model: str) -> None:
        if mode in ("retry_after_huge", "retry_after_nan"):
            status, header = (429, "1e99") if mode == "retry_after_huge" else (503, "nan")
            self._send_json(status, self._other_error(fmt, status, "Slow down"), {"Retry-After": header})
            return
        if mode == "leak_400":
            own = self._provider_key()
            text = f"Bad key {own}; try {FOREIGN_OPENAI_KEY} or {FOREIGN_GOOGLE_KEY}"
            self._send_json(400, self._other_error(fmt, 400, text, kind=f"invalid_request_error {FOREIGN_OPENAI_KEY} {own}"))
            return
        literal = {"usage_float": "9e18", "usage_bigint": "9000000000000000000", "usage_overflow": "99999999999999999999999",
                   "usage_negative": "-5", "stream_usage_huge": "1e300"}.get(mode, "5")
        completion = {"usage_negative": "-7", "stream_usage_huge": "1e300"}.get(mode, "2")
        if fmt == "anthropic":
            document = {"id": "msg_hostile", "type": "message", "role": "assistant", "model": model,
                        "content": [{"type": "text", "text": OK_TEXT}], "stop_reason": "end_turn", "stop_sequence": None,
                        "usage": "__USAGE__"}
            usage = f'{{"input_tokens": {literal}, "output_tokens": {completion}}}'
        elif fmt == "google":
            document = {"candidates": [{"content": {"parts": [{"text": OK_TEXT}], "role": "model"}, "finishReason": "STOP",
                                        "index": 0}], "usageMetadata": "__USAGE__", "modelVersion": model}
            usage = (f'{{"promptTokenCount": {literal}, "candidatesTokenCount": {completion}, '
                     f'"totalTokenCount": {literal}}}')
        else:  # cohere v2
            document = {"id": "hostile", "finish_reason": "COMPLETE",
                        "message": {"role": "assistant", "content": [{"type": "text", "text": OK_TEXT}]}, "usage": "__USAGE__"}
            usage = (f'{{"billed_units": {{"input_tokens": {literal}, "output_tokens": {completion}}}, '
                     f'"tokens": {{"input_tokens": {literal}, "output_tokens": {completion}}}}}')
        self._send_json(200, json.dumps(document).replace('"__USAGE__"', usage).encode())

    def _other_error(self, fmt: str, status: int, message: str, kind: str = "error") -> bytes:
        if fmt == "anthropic":
            return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
        if fmt == "google":
            return json.dumps({"error": {"code": status, "message": message, "status": kind}}).encode()
        return json.dumps({"id": kind, "message": message}).encode()  # cohere

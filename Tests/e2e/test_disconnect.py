"""A client that hangs up mid-stream: no crash, upstream cancelled, audited as 499."""

from __future__ import annotations

import json
import socket
import time

from gwstack import raw_chat_request, wait_until


def _open_stream(stack, text: str) -> tuple[socket.socket, bytes]:
    """Sends a streaming chat request over a raw socket through nginx; returns the socket and the
    bytes read so far (at least the response head)."""
    body = json.dumps({"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": text}]}).encode()
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
    sock.sendall(raw_chat_request(f"127.0.0.1:{stack.port}", stack.key, body))
    received = b""
    while b"\r\n\r\n" not in received:
        part = sock.recv(65536)
        assert part, f"connection closed before the head: {received!r}"
        received += part
    return sock, received


def _read_events(sock: socket.socket, received: bytes, count: int, timeout: float = 10) -> bytes:
    deadline = time.monotonic() + timeout
    while received.count(b"data: ") < count:
        assert time.monotonic() < deadline, f"only {received.count(b'data: ')} events after {timeout}s"
        part = sock.recv(65536)
        assert part, "stream ended early"
        received += part
    return received


def _request_id(head: bytes) -> str:
    for line in head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n"):
        if line.lower().startswith("x-request-id:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no X-Request-Id in {head!r}")


def test_client_disconnect_mid_stream(stack, simulator):
    workers_before = stack.wait_for_workers()
    wait_until(lambda: simulator.stats()["in_flight"] == 0, timeout=10, what="an idle simulator")

    sock, received = _open_stream(stack, "a long story [sim chunk_delay_ms=200 words=100]")
    try:
        assert received.startswith(b"HTTP/1.1 200"), received[:200]
        request_id = _request_id(received)
        received = _read_events(sock, received, 3)
        assert simulator.stats()["in_flight"] == 1, "the upstream stream is open"
    finally:
        sock.close()
    closed_at = time.monotonic()

    # The upstream request is cancelled: the simulator sees its connection go (the stream
    # would otherwise run ~20 s).
    wait_until(lambda: simulator.stats()["in_flight"] == 0, timeout=5,
               what="the simulator's in_flight to drop to 0 after the client left")
    assert time.monotonic() - closed_at < 5

    row = stack.wait_for_audit(request_id)
    assert row["status"] == 499, row
    assert row["error_code"] == "client_disconnected", row
    assert row["stream"] is True
    assert row["latency_ms"] < 10_000, "the row was written when the client left, not when the stream would have ended"

    # No worker crashed or was replaced.
    time.sleep(0.5)
    assert stack.worker_pids() == workers_before
    # And the gateway still serves.
    with stack.http() as http:
        response = http.post("/v1/chat/completions", headers=stack.auth(),
                             json={"model": "gpt-4o", "messages": [{"role": "user", "content": "still there?"}]})
    assert response.status_code == 200


def test_client_disconnect_records_the_upstream_attempt(stack, simulator):
    """docs/api.md, audit log: each row lists every (fallback) attempt. The provider was called and
    answered 200 before the client left, so the row must list that attempt."""
    sock, received = _open_stream(stack, "another long story [sim chunk_delay_ms=200 words=50]")
    try:
        request_id = _request_id(received)
        _read_events(sock, received, 2)
    finally:
        sock.close()
    row = stack.wait_for_audit(request_id)
    assert row["status"] == 499
    assert row["provider"] == "openai"
    assert len(row["attempts"]) == 1, f"attempts: {row['attempts']}"
    assert row["attempts"][0]["status"] == 200
    assert row["model_served"] == "gpt-4o", "the chunks relayed before the disconnect named the model"
    wait_until(lambda: simulator.stats()["in_flight"] == 0, timeout=5, what="the upstream to be cancelled")

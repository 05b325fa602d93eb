"""The other two ways the same binary serves requests: as a plain CGI program (docs/api.md: hosts that
offer only CGI) and as a FastCGI server on TCP (`serve --listen`). Both use a database of their
own so that the main stack's audit-completeness check stays exact."""
import json
import os
import signal
import socket
import struct
import subprocess

from gwstack import free_port, gateway_bin, make_temp_dir, wait_until


def _own_database(simulator):
    directory = make_temp_dir("cgi")
    db = str(directory / "gw.db")

    def cli(*args, input=""):
        result = subprocess.run([gateway_bin(), *args, "--db", db], input=input, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    cli("migrate")
    cli("org", "create", "cgi")
    cli("project", "create", "cgi/app")
    cli("provider", "set", "cgi/app", "openai", "--base-url", simulator.openai_base_url, input="sk-cgi-provider-key\n")
    secret = json.loads(cli("key", "create", "cgi/app", "--json"))["secret"]
    return db, secret, cli


def test_cgi_request_is_served_and_audited(simulator):
    db, secret, cli = _own_database(simulator)
    body = json.dumps({"model": "gpt-4o", "user": "cgi-user", "messages": [{"role": "user", "content": "hi [sim words=3]"}]}).encode()
    env = {
        "PATH": os.environ.get("PATH", ""), "DEPLOXA_GATEWAY_DB": db, "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": "POST", "REQUEST_URI": "/v1/chat/completions", "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)), "HTTP_AUTHORIZATION": f"Bearer {secret}", "SWIFT_BACKTRACE": "enable=no",
    }
    result = subprocess.run([gateway_bin()], input=body, env=env, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    head, _, payload = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"Status: 200 OK"), head
    request_id = [line.split(b": ", 1)[1].decode() for line in head.split(b"\r\n") if line.lower().startswith(b"x-request-id")][0]
    answer = json.loads(payload)
    assert answer["choices"][0]["message"]["content"] == "The quick brown"
    rows = [json.loads(line) for line in cli("audit", "export").splitlines()]
    assert [row["request_id"] for row in rows] == [request_id]
    assert rows[0]["user"] == "cgi-user" and rows[0]["completion_tokens"] == 3

    # A bad key through CGI: still OpenAI's error shape, still audited.
    env["HTTP_AUTHORIZATION"] = "Bearer dpx_000000000000_wrong"
    bad = subprocess.run([gateway_bin()], input=body, env=env, capture_output=True, timeout=60)
    head, _, payload = bad.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"Status: 401"), head
    assert json.loads(payload)["error"]["code"] == "invalid_api_key"
    assert len(cli("audit", "export").splitlines()) == 2


def _fastcgi_request(port, params, body=b""):
    def record(kind, content):
        return struct.pack("!BBHHBx", 1, kind, 1, len(content), 0) + content

    def pair(name, value):
        name, value = name.encode(), value.encode()
        sizes = b"".join(bytes([len(x)]) if len(x) < 128 else struct.pack("!I", len(x) | 0x80000000) for x in (name, value))
        return sizes + name + value

    encoded = b"".join(pair(k, v) for k, v in params.items())
    message = record(1, struct.pack("!HB5x", 1, 0)) + record(4, encoded) + record(4, b"")
    if body:
        message += record(5, body)
    message += record(5, b"")
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.sendall(message)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    stdout = b""
    while len(data) >= 8:
        _, kind, _, length, padding = struct.unpack("!BBHHB", data[:7])
        if kind == 6:
            stdout += data[8:8 + length]
        data = data[8 + length + padding:]
    return stdout


def test_serve_listens_on_tcp(simulator):
    db, secret, _ = _own_database(simulator)
    port = free_port()
    directory = make_temp_dir("tcp")
    log = open(directory / "serve.log", "ab")
    master = subprocess.Popen([gateway_bin(), "serve", "--db", db, "--listen", f"127.0.0.1:{port}", "--workers", "1"],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        def healthy():
            try:
                return b"Status: 200" in _fastcgi_request(port, {"REQUEST_METHOD": "GET", "REQUEST_URI": "/healthz"})
            except OSError:
                return False
        wait_until(healthy, timeout=20, what="serve --listen to answer /healthz")
        body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "tcp [sim words=2]"}]}).encode()
        answer = _fastcgi_request(port, {
            "REQUEST_METHOD": "POST", "REQUEST_URI": "/v1/chat/completions", "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)), "HTTP_AUTHORIZATION": f"Bearer {secret}"}, body)
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"Status: 200"), answer[:300]
        assert json.loads(payload)["choices"][0]["message"]["content"] == "The quick"
    finally:
        master.send_signal(signal.SIGQUIT)
        try:
            master.wait(timeout=20)
        finally:
            if master.poll() is None:
                master.kill()
            log.close()
    assert master.returncode == 0

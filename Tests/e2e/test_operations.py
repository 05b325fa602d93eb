"""Operating the pool like php-fpm (docs/operations.md): /metrics for the whole pool, /status,
/ping, the slow log, log formats and SIGUSR1, and stops and reloads that lose no request.

Each test runs its own gateway (own database, socket, serve master and nginx) on the session's
simulator. Load is open loop: requests are started at a fixed rate whatever the answers do, so
a stall or a refusal shows as failures, not as a slower test.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest

from admin_helpers import create_token
from gwstack import GatewayStack, gateway_bin, pid_alive, raw_chat_request, tail, wait_until

CHAT = "/v1/chat/completions"


@contextlib.contextmanager
def own_stack(simulator, name: str, workers: int = 2, serve_args=(), **options):
    stack = GatewayStack(simulator, name=name, workers=workers,
                         serve_args=["--graceful-timeout", "10", "--breaker-failures", "0", *serve_args], **options)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def body(text: str, model: str = "gpt-4o", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": f"{text} {uuid.uuid4().hex}"}], **extra}


# --------------------------------------------------------------------------------------------
# Prometheus text format


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[tuple, str]:
    """{(name, ((label, value), ...)): value} of every sample; checks the format as it goes."""
    samples: dict[tuple, str] = {}
    declared: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            declared.add(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        name, _, labels, value = match.groups()
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in declared or family in declared, f"{name} has no # TYPE line"
        key = (name, tuple(sorted(LABEL.findall(labels or ""))))
        assert key not in samples, f"duplicate sample {key}"
        samples[key] = value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return float(samples.get((name, tuple(sorted(labels.items()))), "0"))


def scrape(stack: GatewayStack, token: str | None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(stack.base_url + "/metrics", headers=headers, timeout=10, trust_env=False)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse_metrics(response.text)


def without_scrapes(samples: dict) -> dict:
    """What the data plane did: the scrapes' own requests (route metrics/status) keep moving."""
    moving = ("deploxa_accepted_requests_total", "deploxa_workers", "deploxa_requests_in_flight", "deploxa_listen_queue",
              "deploxa_listen_queue_max", "deploxa_max_children_reached_total")
    return {key: v for key, v in samples.items()
            if key[0] not in moving and ("route", "metrics") not in key[1] and ("route", "status") not in key[1]}


# --------------------------------------------------------------------------------------------
# 1. /metrics: pool-wide totals equal to what was sent


def test_every_scrape_shows_the_pools_totals_equal_to_what_was_sent(simulator):
    with own_stack(simulator, "metrics", workers=3) as stack, stack.http(timeout=30) as http:
        token = create_token(stack, name="prometheus")["secret"]
        stack.create_project("acme/limited")
        limited = stack.create_key("rpm2", "acme/limited", "--rpm", "2")["secret"]
        auth = stack.auth()
        sent: Counter = Counter()

        def post(json_body, headers=None, expect=200, kind=None):
            response = http.post(CHAT, headers={**auth, **(headers or {})}, json=json_body)
            assert response.status_code == expect, response.text
            sent[kind] += 1
            return response

        for i in range(6):
            post(body(f"openai {i}"), kind=("2xx", "openai", "none"))
        for i in range(4):
            post(body(f"anthropic {i}", model="claude-sonnet-4"), kind=("2xx", "anthropic", "none"))
        for i in range(2):
            post(body(f"stream {i}", stream=True, stream_options={"include_usage": True}), kind=("2xx", "openai", "none"))
        cached = body("cache me")
        post(cached, {"X-Cache-TTL": "60"}, kind=("2xx", "openai", "miss"))
        for _ in range(2):
            assert post(cached, {"X-Cache-TTL": "60"}, kind=("2xx", "openai", "hit")).headers["x-cache"] == "HIT"
        for i in range(2):  # openai fails, anthropic answers: one fallback each
            post(body(f"[sim openai:status=500] fallback {i}"), {"X-AI-Fallback": "anthropic/claude-sonnet-4"},
                 kind=("2xx", "anthropic", "none"))
        auth = {"Authorization": f"Bearer {limited}"}
        for i in range(5):  # RPM 2: two answered, three refused (counted under the provider asked for)
            post(body(f"limited {i}"), expect=200 if i < 2 else 429,
                 kind=("2xx", "openai", "none") if i < 2 else ("4xx", "openai", "none"))
        auth = stack.auth()
        response = http.post(CHAT, headers={**auth, "Content-Type": "application/json"}, content=b"{not json")
        assert response.status_code == 400
        sent[("4xx", "", "none")] += 1
        total = sum(sent.values())
        assert total == 23

        # The last answer's counters are added as its worker finishes it: wait (bounded) until
        # they are all in, then every scrape, on whichever worker nginx picks, must agree.
        def counted(samples):
            return sum(v for (name, labels), v in ((k, float(v)) for k, v in samples.items())
                       if name == "deploxa_requests_total" and ("route", "chat_completions") in labels)
        wait_until(lambda: counted(scrape(stack, token)) == total, timeout=10, what=f"{total} requests in /metrics")

        scrapes = [scrape(stack, token) for _ in range(10)]
        first = without_scrapes(scrapes[0])
        for other in scrapes[1:]:
            assert without_scrapes(other) == first, "two scrapes disagree"

        got = scrapes[-1]
        for (status_class, provider, cache), count in sent.items():
            assert value(got, "deploxa_requests_total", route="chat_completions", status_class=status_class,
                         provider=provider, cache=cache) == count, (status_class, provider, cache)
        assert value(got, "deploxa_limit_refusals_total", kind="rpm") == 3
        assert value(got, "deploxa_limit_refusals_total", kind="tpm") == 0
        assert value(got, "deploxa_fallbacks_total", provider="openai") == 2
        assert value(got, "deploxa_request_duration_seconds_count", route="chat_completions") == total
        assert value(got, "deploxa_request_duration_seconds_bucket", route="chat_completions", le="+Inf") == total
        # Upstream latency: every provider call that answered (not the cache hits, not refusals).
        assert value(got, "deploxa_upstream_latency_seconds_count", provider="openai") == 6 + 2 + 1 + 2
        assert value(got, "deploxa_upstream_latency_seconds_count", provider="anthropic") == 4 + 2
        assert value(got, "deploxa_time_to_first_token_seconds_count", provider="openai") == 2

        # Tokens and cost by provider and model equal the audit log's sums.
        def all_rows():
            rows = stack.audit_rows()
            return rows if len(rows) >= total else None
        rows = wait_until(all_rows, timeout=10, what="audit rows")
        assert len(rows) == total
        prompt, completion, cost = defaultdict(int), defaultdict(int), defaultdict(float)
        for row in rows:
            if row.get("provider"):
                key = (row["provider"], row.get("model_served") or row.get("model_requested"))
                prompt[key] += row.get("prompt_tokens") or 0
                completion[key] += row.get("completion_tokens") or 0
                cost[key] += row.get("cost_usd") or 0
        assert set(prompt) == {("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4")}, prompt
        for key in prompt:
            labels = {"provider": key[0], "model": key[1]}
            assert value(got, "deploxa_tokens_total", **labels, kind="prompt") == prompt[key] > 0
            assert value(got, "deploxa_tokens_total", **labels, kind="completion") == completion[key] > 0
            assert abs(value(got, "deploxa_cost_usd_total", **labels) - cost[key]) < 1e-8 * len(rows)

        # Bounded labels: no key id, user, request id or secret anywhere.
        text = httpx.get(stack.base_url + "/metrics", headers={"Authorization": f"Bearer {token}"}, trust_env=False).text
        for secret in (stack.key, stack.key_id, limited, token, "req_"):
            assert secret not in text
        assert {labels for (name, labels) in got} and all(
            dict(labels).keys() <= {"route", "status_class", "provider", "cache", "le", "model", "kind", "state"}
            for (name, labels) in got)
        assert value(got, "deploxa_workers_configured") == 3


def test_metrics_and_status_need_an_installation_wide_admin_token(simulator):
    with own_stack(simulator, "metrics-guard", workers=1) as stack, stack.http() as http:
        scoped = create_token(stack, "--org", stack.ORG, name="org-only")["secret"]
        wide = create_token(stack, "--read-only", name="reader")["secret"]
        for path in ("/metrics", "/status"):
            assert http.get(path).status_code == 401
            assert http.get(path, headers={"Authorization": f"Bearer {stack.key}"}).status_code == 401
            refused = http.get(path, headers={"Authorization": f"Bearer {scoped}"})
            assert refused.status_code == 403 and refused.json()["error"]["message"]
            assert http.get(path, headers={"Authorization": f"Bearer {wide}"}).status_code == 200
            assert http.post(path, headers={"Authorization": f"Bearer {wide}"}).status_code == 405
        ping = http.get("/ping")
        assert (ping.status_code, ping.text) == (200, "pong\n")


# --------------------------------------------------------------------------------------------
# 2. /status and /ping


def test_status_page_shows_the_pool_and_each_worker_without_keys_or_prompts(simulator):
    with own_stack(simulator, "status", workers=2, serve_args=["--metrics-public"]) as stack, stack.http() as http:
        token = create_token(stack, name="status")["secret"]
        admin = {"Authorization": f"Bearer {token}"}
        assert http.get("/metrics").status_code == 200, "--metrics-public opens /metrics"
        assert http.get("/status").status_code == 401, "but never /status"
        for i in range(4):
            assert http.post(CHAT, headers=stack.auth(), json=body(f"warm {i}")).status_code == 200

        secret_prompt = "do-not-show-this-prompt-" + uuid.uuid4().hex
        slow = concurrent.futures.ThreadPoolExecutor(1).submit(
            lambda: httpx.post(stack.base_url + CHAT, headers=stack.auth(), timeout=30, trust_env=False,
                               json={"model": "gpt-4o", "messages": [{"role": "user", "content": f"[sim openai:latency_ms=1500] {secret_prompt}"}]}))

        def in_flight():
            status = http.get("/status?json&full", headers=admin).json()
            requests = [r for p in status["processes"] for r in p["in flight"] if r["route"] == "chat_completions"]
            return (status, requests) if requests and requests[0]["provider"] == "openai" else None
        status, requests = wait_until(in_flight, timeout=5, what="the slow request on /status?full")
        assert requests[0]["age ms"] >= 0
        assert status["pool"] and status["process manager"] == "static"
        assert status["total processes"] == 2
        assert status["active processes"] >= 1
        assert status["accepted conn"] >= 5
        assert status["listen queue len"] > 0
        assert {p["pid"] for p in status["processes"]} == stack.worker_pids()
        assert {p["state"] for p in status["processes"]} <= {"Idle", "Running"}
        assert "Running" in {p["state"] for p in status["processes"]}
        assert sum(p["requests"] for p in status["processes"]) >= 4

        text = http.get("/status?full", headers=admin)
        assert text.headers["content-type"].startswith("text/plain")
        assert re.search(r"^accepted conn:\s+\d+$", text.text, re.M)
        assert re.search(r"^request:\s+chat_completions provider=openai age_ms=\d+$", text.text, re.M)
        assert text.text.count("pid:") == 2
        short = http.get("/status", headers=admin).text
        assert "pid:" not in short and "active processes:" in short
        assert slow.result().status_code == 200
        for page in (text.text, json.dumps(status), http.get("/metrics").text):
            for secret in (secret_prompt, stack.key, stack.key_id, token):
                assert secret not in page


# --------------------------------------------------------------------------------------------
# 3 and 4. Slow log, JSON log lines, request ids, SIGUSR1


def read_json_lines(path: Path) -> list[dict]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        parsed.append(json.loads(line))  # every line is one JSON object
    return parsed


def test_slow_log_json_lines_request_ids_and_sigusr1_reopen(simulator, tmp_path):
    log = tmp_path / "gateway.log"
    args = ["--slowlog-threshold", "0.4", "--log-format", "json", "--log-file", str(log)]
    with own_stack(simulator, "slowlog", workers=2, serve_args=args) as stack, stack.http(timeout=30) as http:
        token = create_token(stack, name="status")["secret"]
        fast = http.post(CHAT, headers=stack.auth(), json=body("fast"))
        slow = http.post(CHAT, headers=stack.auth(), json=body("[sim openai:latency_ms=700] slow"))
        assert fast.status_code == slow.status_code == 200
        slow_id, fast_id = slow.headers["x-request-id"], fast.headers["x-request-id"]

        def slow_line(request_id, path=log):
            lines = [entry for entry in read_json_lines(path) if entry.get("message") == "slow request"]
            return next((entry for entry in lines if entry.get("request_id") == request_id), None)
        entry = wait_until(lambda: slow_line(slow_id), timeout=5, what="the slow log line")
        assert entry["level"] == "warning"
        assert entry["route"] == "chat_completions" and entry["provider"] == "openai" and entry["status"] == "200"
        assert float(entry["duration_ms"]) >= 700
        # Where the time went: the provider's wait dominates, and the stages add up.
        stages = {k[:-3]: float(v) for k, v in entry.items() if k.endswith("_ms") and k != "duration_ms"}
        assert {"queue", "limits", "prepare", "upstream_first_byte", "upstream_body", "audit", "respond"} == set(stages), stages
        assert stages["upstream_first_byte"] >= 600
        assert sum(stages.values()) == pytest.approx(float(entry["duration_ms"]), abs=2.0)
        assert slow_line(fast_id) is None, "a fast request is not in the slow log"
        status = http.get("/status?json", headers={"Authorization": f"Bearer {token}"}).json()
        assert status["slow requests"] == 1
        assert value(scrape(stack, token), "deploxa_slow_requests_total") == 1

        # Every line is JSON with time, level and message; the master's and the workers'.
        lines = read_json_lines(log)
        assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
        assert any(line["logger"] == "deploxa.master" for line in lines)
        assert not any(stack.key in json.dumps(line) or token in json.dumps(line) for line in lines)

        # logrotate: move the file away, SIGUSR1 to the master, the next lines go to a new file.
        rotated = tmp_path / "gateway.log.1"
        log.rename(rotated)
        os.kill(stack.master_pid, signal.SIGUSR1)
        wait_until(log.exists, timeout=5, what="the master to reopen its log file")
        time.sleep(0.3)  # the workers reopen on their next tick (every second at most)
        deadline = time.monotonic() + 5
        again_id = None
        while time.monotonic() < deadline:  # until both workers have written to the new file
            again = http.post(CHAT, headers=stack.auth(), json=body("[sim openai:latency_ms=500] after rotation"))
            again_id = again.headers["x-request-id"]
            # The worker writes the line just after the answer ends: wait for it, in either file.
            wait_until(lambda: slow_line(again_id, log) or slow_line(again_id, rotated), timeout=2,
                       what="the slow log line after rotation")
            if slow_line(again_id, log) is None:
                break
            workers = {line.get("pid") for line in read_json_lines(log) if line.get("message") == "slow request"}
            if len(workers) >= 2:
                break
        assert again_id and slow_line(again_id, log) is not None, tail(log)
        assert slow_line(again_id, rotated) is None
        assert slow_line(slow_id, rotated) is not None and slow_line(slow_id, log) is None


def test_a_breaker_opening_is_logged_with_the_request_id_and_counted(simulator, tmp_path):
    log = tmp_path / "gateway.log"
    args = ["--log-format", "json", "--log-file", str(log), "--breaker-failures", "2", "--breaker-cooldown", "1",
            "--metrics-public"]
    with own_stack(simulator, "breaker-log", workers=2, serve_args=args) as stack, stack.http(timeout=30) as http:
        ids = []
        for i in range(2):
            failed = http.post(CHAT, headers=stack.auth(), json=body(f"[sim openai:status=500] breaker {i}"))
            assert failed.status_code >= 500
            ids.append(failed.headers["x-request-id"])
        opened = wait_until(lambda: [l for l in read_json_lines(log) if l["message"] == "circuit breaker opened"],
                            timeout=5, what="the breaker's log line")
        assert opened[0]["request_id"] == ids[1] and opened[0]["provider"] == "openai"
        assert value(scrape(stack, None), "deploxa_breaker_opens_total", provider="openai") == 1
        # After the cool-down one request probes; it fails, and the breaker opens again.
        time.sleep(1.3)
        probe = http.post(CHAT, headers=stack.auth(), json=body("[sim openai:status=500] probe"))
        assert probe.status_code >= 500
        again = wait_until(lambda: [l for l in read_json_lines(log) if l["message"].startswith("circuit breaker opened again")],
                           timeout=5, what="the re-opening's log line")
        assert again[0]["request_id"] == probe.headers["x-request-id"]
        assert value(scrape(stack, None), "deploxa_breaker_opens_total", provider="openai") == 2
        skipped = http.post(CHAT, headers=stack.auth(), json=body("skipped while open"))
        assert skipped.status_code == 502 and skipped.headers.get("retry-after"), "skipped while open, without a call"


# --------------------------------------------------------------------------------------------
# 5. Stop and reload under load


class SteadyLoad:
    """Chat requests started at `rate` per second through nginx, each on its own connection
    (as independent clients would), until stopped; every answer's status is kept.

    Each request is one HTTP/1.1 exchange on a plain socket (`Connection: close`, read to EOF):
    httpx cost ~3 ms of Python per request, so on a 2-core CI machine the generator itself could
    not offer 300/s beside the gateway and nginx (it reached 190-200/s there)."""

    def __init__(self, base_url: str, key: str, rate: int = 300, threads: int = 48):
        self.key, self.rate = key, rate
        url = urllib.parse.urlsplit(base_url)
        self.address = (url.hostname, url.port or 80)
        self.host = url.netloc
        self.pool = concurrent.futures.ThreadPoolExecutor(threads)
        # (started at, status, error text or "", answered at)
        self.results: list[tuple[float, int, str, float]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.started = 0

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _exchange(self, index: int) -> tuple[int, str]:
        body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": f"load {index}"}]}).encode()
        with socket.create_connection(self.address, timeout=30) as connection:
            connection.sendall(raw_chat_request(self.host, self.key, body))
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        answer = b"".join(chunks)
        status_line, _, rest = answer.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            return 0, f"not an HTTP answer: {answer[:200]!r}"
        status = int(parts[1])
        if status == 200 and b'"chat.completion"' not in rest:
            return 0, f"200 without a completion: {answer[:300]!r}"
        return status, "" if status == 200 else rest.partition(b"\r\n\r\n")[2][:300].decode(errors="replace")

    def _one(self, index: int) -> None:
        at = time.monotonic()
        try:
            status, text = self._exchange(index)
        except OSError as error:
            status, text = 0, f"{type(error).__name__}: {error}"
        with self.lock:
            self.results.append((at, status, text, time.monotonic()))

    def _run(self) -> None:
        start = time.monotonic()
        while not self.stopping.is_set():
            due = start + self.started / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.pool.submit(self._one, self.started)
            self.started += 1

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.pool.shutdown(wait=True)

    def failures(self) -> list[tuple[float, int, str, float]]:
        return [r for r in self.results if r[1] != 200]

    def in_flight_at(self, moment: float) -> int:
        """Requests started before `moment` and answered after it."""
        return sum(1 for r in self.results if r[0] <= moment < r[3])


def test_reloads_under_300_requests_per_second_fail_no_request(simulator):
    reloads = int(os.environ.get("DEPLOXA_E2E_RELOADS", "6"))
    with own_stack(simulator, "reload-load", workers=2) as stack:
        token = create_token(stack, name="status")["secret"]
        generations, windows = [], []
        with SteadyLoad(stack.base_url, stack.key, rate=300) as load:
            time.sleep(1.5)
            for _ in range(reloads):
                before = stack.worker_pids()
                signalled = time.monotonic()
                os.kill(stack.master_pid, signal.SIGUSR2)
                # The reload is done when the old generation has left.
                stack.wait_for_workers(excluding=before, timeout=20)
                windows.append((signalled, time.monotonic()))
                generations.append(stack.worker_pids())
                time.sleep(1.0)
            time.sleep(0.5)
        results, failures = load.results, load.failures()
        duration = results[-1][0] - results[0][0]
        during = [sum(1 for r in results if start <= r[0] <= end) for start, end in windows]
        print(f"reloads: {reloads}, requests: {len(results)} in {duration:.1f} s "
              f"({len(results) / duration:.0f} req/s), failures: {len(failures)}, "
              f"started during each reload: {during}, in flight at each signal: {[load.in_flight_at(w[0]) for w in windows]}")
        assert len(results) == load.started
        assert len(results) / duration > 250, "the load did not reach 300 req/s; the test proves nothing"
        assert all(count > 0 for count in during), f"a reload saw no request: {during}"
        assert failures == [], f"{len(failures)} of {len(results)} requests failed during reloads: {Counter(f[1] for f in failures)} {failures[:5]}"
        assert len(set(map(frozenset, generations))) == reloads, "every reload started a new generation"
        status = httpx.get(stack.base_url + "/status?json", headers={"Authorization": f"Bearer {token}"}, trust_env=False).json()
        assert status["reloads"] == reloads
        assert status["total processes"] == 2


def two_master_upstream(second_socket: Path):
    """nginx config filter: both masters' sockets in one upstream; a connect that fails (the
    stopping master's socket is gone) is retried on the other before anything was sent."""
    def apply(conf: str) -> str:
        match = re.search(r"fastcgi_pass unix:(\S+);", conf)
        first = match.group(1)
        upstream = (f"    upstream deploxa_pool {{\n        server unix:{first} max_fails=0;\n"
                    f"        server unix:{second_socket} max_fails=0;\n    }}\n\n    server {{")
        conf = conf.replace("    server {", upstream, 1)
        return conf.replace(f"fastcgi_pass unix:{first};", "fastcgi_pass deploxa_pool;\n            fastcgi_next_upstream error timeout;")
    return apply


class SecondMaster:
    """Another `serve` master on the same database with its own socket, as on a second box."""

    def __init__(self, stack: GatewayStack, socket_path: Path):
        self.stack, self.socket = stack, socket_path
        self.pid_file = socket_path.with_suffix(".pid")
        self.log = socket_path.with_suffix(".log")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [gateway_bin(), "serve", "--db", str(self.stack.db), "--socket", str(self.socket), "--socket-mode", "0666",
                 "--workers", "2", "--pid-file", str(self.pid_file), "--graceful-timeout", "10", "--breaker-failures", "0"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "SWIFT_BACKTRACE": "enable=no"})
        wait_until(lambda: self.process.poll() is not None or (self.socket.exists() and len(children(self.process.pid)) == 2),
                   timeout=20, what="the second master and its workers")
        assert self.process.poll() is None, tail(self.log)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGQUIT)
        return self.process.wait(timeout=30)


def children(pid: int) -> set[int]:
    from gwstack import children_of
    return children_of(pid)


def restart_main_master(stack: GatewayStack) -> None:
    signal_and_wait(stack.master)
    stack.start_gateway()


def signal_and_wait(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGQUIT)
    assert process.wait(timeout=30) == 0


def test_sigquit_under_load_with_two_masters_behind_nginx_fails_no_request(simulator):
    """The production recipe for a stop without errors (docs/operations.md): two masters in one
    nginx upstream. Each is stopped with SIGQUIT and started again, twice, under 300 req/s."""
    holder: dict = {}

    def conf_filter(conf):
        return two_master_upstream(holder["socket"])(conf)
    stack = GatewayStack(simulator, name="two-masters", workers=2,
                         serve_args=["--graceful-timeout", "10", "--breaker-failures", "0"], nginx_conf_filter=conf_filter,
                         before_serve=lambda _: second.start())
    holder["socket"] = stack.dir / "second.sock"
    second = SecondMaster(stack, holder["socket"])
    try:
        stack.start()
        stops = []
        with SteadyLoad(stack.base_url, stack.key, rate=300) as load:
            time.sleep(1.5)
            for _ in range(2):
                stops.append(time.monotonic())
                restart_main_master(stack)
                time.sleep(1.0)
                stops.append(time.monotonic())
                assert second.stop() == 0
                second.start()
                time.sleep(1.0)
        results, failures = load.results, load.failures()
        duration = results[-1][0] - results[0][0]
        in_flight = [load.in_flight_at(moment) for moment in stops]
        print(f"4 stops: {len(results)} requests in {duration:.1f} s ({len(results) / duration:.0f} req/s), "
              f"failures: {len(failures)}, in flight as each stop began: {in_flight}")
        # The point is that the stops happen under load (most of the 300/s offered, also on a busy
        # CI machine), not a throughput figure: 249.99/s once failed the old bound of 250.
        assert len(results) / duration > 200
        assert len(results) == load.started
        assert failures == [], f"{len(failures)} of {len(results)} failed: {Counter(f[1] for f in failures)} {failures[:5]}"
        errors = stack.nginx_error_log.read_text() if stack.nginx_error_log.exists() else ""
        assert "prematurely closed" not in errors and "reset by peer" not in errors, errors[-2000:]
    finally:
        with contextlib.suppress(Exception):
            if second.process and second.process.poll() is None:
                second.stop()
        stack.stop()


def test_sigquit_of_a_lone_master_under_load_fails_only_new_connections_cleanly(simulator):
    """One master, stopped under 300 req/s: every request it accepted is answered; nginx's
    connects after the socket is gone fail as connect errors (a clean 502, no reset, no
    truncated or rejected request), and every answered request has its audit row."""
    with own_stack(simulator, "lone-stop", workers=2) as stack:
        with SteadyLoad(stack.base_url, stack.key, rate=300) as load:
            time.sleep(1.5)
            stopped_at = time.monotonic()
            stack.master.send_signal(signal.SIGQUIT)
            assert stack.master.wait(timeout=30) == 0
            time.sleep(0.5)
        results = load.results
        # A request the client started just before the signal can reach nginx's connect after the
        # socket is gone (the load's threads on a busy 2-core box lag, seen up to 0.8 s in a full
        # CI-like run): what matters is how each failed, checked in nginx's log below (a request
        # the gateway had accepted and then dropped would show there as a reset or a cut answer).
        early = [(round(stopped_at - r[0], 3), r[1]) for r in results if r[1] != 200 and r[0] < stopped_at - 1.2]
        assert not early, early[:10]
        statuses = Counter(r[1] for r in results)
        assert set(statuses) <= {200, 502}, statuses
        assert statuses[502] > 0, "requests after the stop must have been refused by nginx"
        errors = stack.nginx_error_log.read_text()
        lines = [l for l in errors.splitlines() if "[error]" in l or "[crit]" in l]
        assert len(lines) == statuses[502], errors[-3000:]
        assert all(re.search(r"connect\(\) to unix:\S+ failed \((2: No such file or directory|111: Connection refused)\)", l)
                   for l in lines), [l for l in lines if "connect()" not in l][:5]
        # Every 200 was audited.
        answered = statuses[200]
        rows = [r for r in stack.audit_rows() if r["route"] == CHAT]
        assert len(rows) == answered


# --------------------------------------------------------------------------------------------
# 9. OpenTelemetry traces (off by default)


class OTLPReceiver:
    """A few lines of OTLP/HTTP collector: keeps every span POSTed to /v1/traces (JSON)."""

    def __init__(self):
        import http.server
        receiver = self
        self.spans: list[dict] = []
        self.resources: list[dict] = []
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.path == "/v1/traces" and self.headers["Content-Type"] == "application/json"
                with receiver.lock:
                    for resource_spans in payload["resourceSpans"]:
                        receiver.resources.append(resource_spans["resource"])
                        for scope in resource_spans["scopeSpans"]:
                            receiver.spans.extend(scope["spans"])
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def trace(self, trace_id: str) -> list[dict]:
        with self.lock:
            return [span for span in self.spans if span["traceId"] == trace_id]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def attributes(span: dict) -> dict:
    return {a["key"]: next(iter(a["value"].values())) for a in span.get("attributes", [])}


def test_traces_reach_an_otlp_collector_with_a_span_per_step(simulator):
    receiver = OTLPReceiver()
    try:
        args = ["--otel-endpoint", receiver.endpoint, "--otel-service-name", "gateway-e2e"]
        with own_stack(simulator, "otel", workers=2, serve_args=args) as stack, stack.http(timeout=30) as http:
            trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
            response = http.post(CHAT, json=body("[sim openai:status=500] traced"),
                                 headers={**stack.auth(), "X-AI-Fallback": "anthropic/claude-sonnet-4",
                                          "traceparent": f"00-{trace_id}-{parent}-01"})
            assert response.status_code == 200
            spans = wait_until(lambda: (lambda s: s if len(s) >= 5 else None)(receiver.trace(trace_id)),
                               timeout=10, what="the request's spans at the collector")
            root = next(s for s in spans if s.get("parentSpanId") == parent)
            assert root["name"] == "POST /v1/chat/completions" and root["kind"] == 2
            assert attributes(root)["deploxa.request_id"] == response.headers["x-request-id"]
            assert attributes(root)["http.response.status_code"] == "200"
            children = [s for s in spans if s.get("parentSpanId") == root["spanId"]]
            assert [c["name"] for c in sorted(children, key=lambda c: int(c["startTimeUnixNano"]))] == [
                "limits", "upstream openai", "upstream anthropic", "audit"]
            calls = {c["name"]: c for c in children}
            assert calls["upstream openai"]["status"]["code"] == 2
            assert attributes(calls["upstream openai"])["http.response.status_code"] == "500"
            assert attributes(calls["upstream anthropic"])["gen_ai.request.model"] == "claude-sonnet-4"
            for child in children:
                assert int(root["startTimeUnixNano"]) <= int(child["startTimeUnixNano"]) <= int(child["endTimeUnixNano"]) \
                    <= int(root["endTimeUnixNano"])
            # Wall-clock times: within a minute of now.
            assert abs(int(root["startTimeUnixNano"]) / 1e9 - time.time()) < 60
            assert {"key": "service.name", "value": {"stringValue": "gateway-e2e"}} in receiver.resources[0]["attributes"]

            # Without a traceparent: a trace of its own; /metrics and the like are not traced.
            plain = http.post(CHAT, json=body("untraced parent"), headers=stack.auth())
            wait_until(lambda: any(attributes(s).get("deploxa.request_id") == plain.headers["x-request-id"]
                                   for s in list(receiver.spans)), timeout=10, what="the second request's span")
            http.get("/ping")
            assert not any(s["name"].endswith("/ping") for s in receiver.spans)
            # Never a secret or a prompt in a span.
            dumped = json.dumps(receiver.spans)
            assert stack.key not in dumped and "traced" not in dumped.replace("untraced", "")
    finally:
        receiver.close()


def test_a_dead_collector_costs_no_request_and_a_bad_endpoint_is_refused(simulator):
    with own_stack(simulator, "otel-dead", workers=1, serve_args=["--otel-endpoint", "http://127.0.0.1:9/v1/traces"]) as stack, \
            stack.http(timeout=30) as http:
        statuses = [http.post(CHAT, json=body(f"collector down {i}"), headers=stack.auth()).status_code for i in range(20)]
        assert statuses == [200] * 20
        # The HTTP client retries a refused connect until its 2 s connect timeout, then gives up.
        wait_until(lambda: "trace spans not delivered" in stack.gateway_log.read_text(), timeout=10,
                   what="the warning about the collector")
        assert http.post(CHAT, json=body("still fine"), headers=stack.auth()).status_code == 200
    with pytest.raises(Exception):
        GatewayStack(simulator, name="otel-bad", serve_args=["--otel-endpoint", "collector:4318"]).start()


def test_workers_stop_when_their_master_is_killed(simulator):
    """A master killed outright (SIGKILL, the OOM killer) leaves no worker serving unsupervised:
    the kernel sends each worker SIGQUIT, and it finishes what it has and exits."""
    with own_stack(simulator, "orphans", workers=2) as stack, stack.http(timeout=30) as http:
        workers = stack.wait_for_workers()
        slow = concurrent.futures.ThreadPoolExecutor(1).submit(
            lambda: httpx.post(stack.base_url + CHAT, headers=stack.auth(), timeout=30, trust_env=False,
                               json=body("[sim openai:latency_ms=800] in flight when the master dies")))
        time.sleep(0.3)
        stack.master.kill()
        stack.master.wait(timeout=5)
        wait_until(lambda: not any(pid_alive(pid) for pid in workers), timeout=10, what="the orphaned workers to exit")
        answer = slow.result()
        assert answer.status_code == 200, "the request in flight was finished"
        assert stack.wait_for_audit(answer.headers["x-request-id"])["status"] == 200

"""Part s: the gateway's own cost, closed loop, against a static upstream.

The simulator does real work per request (JSON parsing, token counting, word generation); an
nginx returning a fixed chat.completion does almost none, so what is left is the gateway's own
cost: nginx → FastCGI → worker (key lookup, RPM limit, translation, metering, audit) → upstream.

    static upstream  a second nginx on 127.0.0.1 answering every request with COMPLETION
                     (1 worker, keep-alive up to 1,000,000 requests per connection, backlog 4096)
    gateway          `serve --workers STATIC_WORKERS` with Tests/e2e/gwstack.py, a project with an
                     RPM limit (so the limit transaction runs) whose openai provider points at
                     the static upstream
    front nginx      nginx/nginx.local.conf.template as gwstack renders it, with access_log off,
                     keepalive_requests 1000000 and `listen … backlog=4096`
    load             wrk -t1 with STATIC_CONNECTIONS connections (throughput), then 1 (latency),
                     STATIC_DURATION s each, POST /v1/chat/completions with X-AI-Provider: openai

Optionally (--prototype-bin) the same against a FastCGI prototype started by spawn-fcgi
(STATIC_WORKERS processes) behind an identical front nginx, and the ratios gateway/prototype.
Per run: req/s, wrk's p50/p99, and per request the workers' CPU (utime+stime from
/proc/PID/stat) and context switches (voluntary + nonvoluntary of every thread, from
/proc/PID/task/*/status), read before and after the run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import httpx

import gwstack
from bench_common import (CLK_TCK, Fatal, context_switches, cpu_ticks, jq_str, jround, loadavg, log, r1,
                          run_wrk, write_wrk_script)

COMPLETION = ('{"id":"chatcmpl-abc123","object":"chat.completion","created":1700000000,'
              '"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant",'
              '"content":"Hello! How can I help you today?","refusal":null},"logprobs":null,'
              '"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18},'
              '"system_fingerprint":"fp_0ba0d124f1"}')
REQUEST = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello there"}],"max_tokens":20}'
UPSTREAM_KEY_ENV = "BENCH_UPSTREAM_KEY"
PROJECT = "bench/static"

# Whatever part s started, for main's cleanup should the run be interrupted (each has .stop()).
_STARTED: list = []


def stop_all() -> None:
    while _STARTED:
        try:
            _STARTED.pop().stop()
        except Exception as error:  # noqa: BLE001 - keep stopping the others
            log(f"part s: stopping: {error}")


# --------------------------------------------------------------------------------------------
# The static upstream


class StaticUpstream:
    """An nginx of its own, in the foreground (our child), answering COMPLETION to everything."""

    def __init__(self, workdir: Path):
        self.prefix = workdir / "upstream"
        self.prefix.mkdir(parents=True)
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _conf(self) -> str:
        p = self.prefix
        temp_paths = "".join(f"    {kind}_temp_path {p}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        return (f"worker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log warn;\n"
                "events { worker_connections 8192; }\n"
                "http {\n    access_log off;\n" + temp_paths +
                # The gateway keeps its upstream connections open: never make it reconnect.
                "    keepalive_requests 1000000;\n"
                f"    server {{\n        listen 127.0.0.1:{self.port} backlog=4096;\n"
                f"        location / {{ default_type application/json; return 200 '{COMPLETION}'; }}\n"
                "    }\n}\n")

    def start(self) -> "StaticUpstream":
        for _ in range(3):  # a free port can be taken between probing and binding
            self.port = gwstack.free_port()
            conf = self.prefix / "nginx.conf"
            conf.write_text(self._conf())
            with open(self.prefix / "stdout.log", "ab") as out:
                self.proc = subprocess.Popen([gwstack.nginx_bin(), "-p", str(self.prefix), "-c", str(conf),
                                              "-e", str(self.prefix / "error.log"), "-g", "daemon off;"],
                                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            _STARTED.append(self)
            try:
                gwstack.wait_until(lambda: self.proc.poll() is not None or httpx.get(self.url, timeout=2, trust_env=False).text == COMPLETION,
                                   timeout=10, what="the static upstream")
                if self.proc.poll() is None:
                    return self
            except TimeoutError:
                pass
            self.stop()
        raise Fatal(f"the static upstream nginx did not start: {gwstack.tail(self.prefix / 'error.log', 5)}")

    def stop(self) -> None:
        gwstack.stop_nginx_process(self.proc)
        if self in _STARTED:
            _STARTED.remove(self)


def front_nginx_filter(conf: str) -> str:
    """The front nginx of part s: the template with access_log off, keep-alive up to 1,000,000
    requests per client connection (wrk never reconnects) and a listen backlog of 4096 (64
    connections opened at once must not overflow the accept queue), so that gateway and
    prototype are measured behind the same nginx."""
    conf = re.sub(r"^[ \t]*access_log[ \t].*$", "    access_log off;\n    keepalive_requests 1000000;", conf, count=1, flags=re.M)
    conf = re.sub(r"^([ \t]*listen[ \t]+[^;\s]+)[ \t]*;", r"\1 backlog=4096;", conf, count=1, flags=re.M)
    if "backlog=4096" not in conf or "keepalive_requests 1000000" not in conf:
        raise Fatal("could not adapt the nginx template for part s")
    return conf


# --------------------------------------------------------------------------------------------
# The two FastCGI applications


class StaticStack(gwstack.GatewayStack):
    """The gateway for part s. GatewayStack's own project points every provider at
    `simulator.url/PROVIDER`; here that "simulator" is the static upstream and the measured
    project is another one (PROJECT), made in before_serve."""
    ORG = "bench"
    PROJECT = "bench/default"


def start_gateway(args, upstream: StaticUpstream) -> tuple[StaticStack, str]:
    created: dict = {}

    def create_project(stack: StaticStack) -> None:
        # An RPM limit far from reached: the limit transaction runs on every request.
        stack.cli("project", "create", PROJECT, "--rpm", "100000000")
        # --api-key-env: the key comes from the environment of `provider set` (never an argument).
        os.environ.setdefault(UPSTREAM_KEY_ENV, "sk-bench-static")
        stack.cli("provider", "set", PROJECT, "openai", "--api-key-env", UPSTREAM_KEY_ENV, "--base-url", upstream.url)
        created["key"] = stack.create_key("static", PROJECT)["secret"]

    stack = StaticStack(upstream, name="static", workers=args.static_workers,
                        serve_args=["--log-level", "warning", *args.serve_extra.split()],
                        before_serve=create_project, nginx_conf_filter=front_nginx_filter)
    _STARTED.append(stack)
    try:
        stack.start()
    except (gwstack.CommandError, RuntimeError, TimeoutError) as error:
        raise Fatal(f"part s: the gateway did not start: {error}\n{gwstack.tail(stack.gateway_log, 5)}") from error
    return stack, created["key"]


class Prototype:
    """A FastCGI prototype binary started like the comparison's own script does: spawn-fcgi binds
    the socket (mode 0666, backlog 4096) and forks PROCESSES copies, configured by environment
    variables (MODE=task, one thread and one event-loop thread each, its own SQLite file, the
    upstream URL)."""

    def __init__(self, binary: str, workdir: Path, socket: Path, upstream: StaticUpstream, processes: int):
        self.binary, self.workdir, self.socket, self.processes = binary, workdir, socket, processes
        self.pid_file = workdir / "prototype.pids"
        self.env = {**os.environ, "MODE": "task", "THREADS": "1", "EL_THREADS": "1", "DB": str(workdir / "prototype.db"),
                    "UPSTREAM": f"{upstream.url}/v1/chat/completions"}
        self.started: list[int] = []

    def start(self) -> "Prototype":
        self.socket.unlink(missing_ok=True)
        _STARTED.append(self)
        result = subprocess.run(["spawn-fcgi", "-s", str(self.socket), "-M", "0666", "-b", "4096", "-F", str(self.processes),
                                 "-P", str(self.pid_file), "--", self.binary],
                                env=self.env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        self.started = self.pids()
        if result.returncode != 0 or len(self.started) != self.processes or not self.socket.exists():
            raise Fatal(f"spawn-fcgi exited {result.returncode} ({len(self.started)} processes): {result.stderr.strip()[-300:]}")
        return self

    def pids(self) -> list[int]:
        try:
            pids = [int(line) for line in self.pid_file.read_text().split()]
        except (OSError, ValueError):
            return []
        return [pid for pid in pids if gwstack.pid_alive(pid)]

    def stop(self) -> None:
        # Only the pids spawn-fcgi reported for this run.
        for pid in self.started:
            gwstack.signal_pid(pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        while any(gwstack.pid_alive(pid) for pid in self.started) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in self.started:
            if gwstack.pid_alive(pid):
                gwstack.signal_pid(pid, signal.SIGKILL)
        self.started = []
        if self in _STARTED:
            _STARTED.remove(self)


# --------------------------------------------------------------------------------------------
# Measuring


def smoke(url: str, headers: dict) -> None:
    response = httpx.post(url, content=REQUEST.encode(), headers=headers, timeout=30, trust_env=False)
    try:
        ok = response.status_code == 200 and response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        ok = False
    if not ok:
        raise Fatal(f"smoke test: HTTP {response.status_code}: {response.content[:300]!r}")


def measure(label: str, url: str, script: Path, connections: int, duration: int,
            workers: Callable[[], list[int]], front: Callable[[], list[int]], out_dir: Path) -> dict:
    """One wrk run, with the workers' CPU and context switches (and the front nginx's CPU)
    read before and after it."""
    pids, nginx_pids = workers(), front()
    cpu0, csw0, ng0 = cpu_ticks(pids), context_switches(pids), cpu_ticks(nginx_pids)
    wrk = run_wrk(script, url, connections, duration, out_dir / f"wrk-{label}-c{connections}.txt")
    cpu1, csw1, ng1 = cpu_ticks(pids), context_switches(pids), cpu_ticks(nginx_pids)
    if sorted(workers()) != sorted(pids):
        log(f"part s: WARNING: the {label} worker set changed during the run: {pids} → {workers()}")
    requests = wrk["requests"] or 1

    def per_request_us(ticks: int) -> float:
        return r1(ticks / CLK_TCK * 1e6 / requests)
    result = {"connections": connections, "rps": wrk["rps"], "p50_ms": wrk["p50_ms"], "p90_ms": wrk["p90_ms"],
              "p99_ms": wrk["p99_ms"], "requests": wrk["requests"], "non2xx": wrk["non2xx"], "errors": wrk["errors"],
              "workers_cpu_us_per_req": per_request_us(cpu1 - cpu0),
              "workers_ctx_switches_per_req": jround((csw1 - csw0) / requests * 100) / 100,
              "front_nginx_cpu_us_per_req": per_request_us(ng1 - ng0),
              "worker_pids": pids, "loadavg_after": loadavg()}
    if wrk.get("failed"):
        result["failed"] = True
    log(f"{label} c={connections}: {wrk['rps']:.0f} req/s, p50 {jq_str(wrk['p50_ms'])} ms, p99 {jq_str(wrk['p99_ms'])} ms, "
        f"worker CPU {jq_str(result['workers_cpu_us_per_req'])} µs/req, "
        f"{jq_str(result['workers_ctx_switches_per_req'])} context switches/req, non-2xx {wrk['non2xx']}, errors {wrk['errors']}")
    return result


def measure_both(label: str, url: str, script: Path, args, workers, front, out_dir: Path) -> dict:
    """Throughput with STATIC_CONNECTIONS connections, then latency with one."""
    many = measure(label, url, script, args.static_connections, args.static_duration, workers, front, out_dir)
    time.sleep(1)
    one = measure(label, url, script, 1, args.static_duration, workers, front, out_dir)
    return {"many": many, "one": one}


def wrk_script(out_dir: Path, key: str) -> Path:
    # The same request bytes to both: the prototype ignores the Authorization header.
    headers = [("Content-Type", "application/json"), ("X-AI-Provider", "openai"), ("Authorization", f"Bearer {key}")]
    return write_wrk_script(out_dir / "post.lua", headers, REQUEST.encode())


def run_gateway(args, upstream: StaticUpstream, out_dir: Path) -> dict:
    stack, key = start_gateway(args, upstream)
    try:
        url = stack.base_url + "/v1/chat/completions"
        script = wrk_script(out_dir, key)
        smoke(url, {"Content-Type": "application/json", "X-AI-Provider": "openai", "Authorization": f"Bearer {key}"})
        log(f"part s: gateway ({args.static_workers} workers) answers through nginx on 127.0.0.1:{stack.port}")
        return measure_both("gateway", url, script, args, lambda: sorted(stack.worker_pids()),
                            lambda: [stack.nginx.pid, *gwstack.children_of(stack.nginx.pid)], out_dir)
    finally:
        stack.stop()
        _STARTED.remove(stack)


def run_prototype(args, upstream: StaticUpstream, out_dir: Path) -> dict:
    # A front nginx rendered and run exactly as the gateway's (GatewayStack's nginx half), in
    # front of the socket spawn-fcgi binds: this stack never starts a gateway.
    front = gwstack.GatewayStack(upstream, name="proto-front", nginx_conf_filter=front_nginx_filter)
    prototype = Prototype(args.prototype_bin, out_dir, front.socket, upstream, args.static_workers).start()
    _STARTED.append(front)
    try:
        front.start_nginx()
        url = front.base_url + "/v1/chat/completions"
        script = wrk_script(out_dir, "unused")
        gwstack.wait_until(lambda: smoke(url, {"Content-Type": "application/json", "X-AI-Provider": "openai"}) is None,
                           timeout=10, what="the prototype's first answer")
        log(f"part s: prototype ({args.static_workers} processes) answers through nginx on 127.0.0.1:{front.port}")
        return measure_both("prototype", url, script, args, prototype.pids,
                            lambda: [front.nginx.pid, *gwstack.children_of(front.nginx.pid)], out_dir)
    finally:
        front.stop()
        _STARTED.remove(front)
        prototype.stop()


def ratios(gateway: dict, prototype: dict) -> dict:
    def ratio(impl_a: dict, impl_b: dict, run: str, field: str):
        a, b = impl_a[run][field], impl_b[run][field]
        return jround(a / b * 100) / 100 if a and b else None
    return {"rps_many": ratio(gateway, prototype, "many", "rps"), "p50_one": ratio(gateway, prototype, "one", "p50_ms"),
            "p99_one": ratio(gateway, prototype, "one", "p99_ms"),
            "cpu_many": ratio(gateway, prototype, "many", "workers_cpu_us_per_req"),
            "cpu_one": ratio(gateway, prototype, "one", "workers_cpu_us_per_req"),
            "csw_many": ratio(gateway, prototype, "many", "workers_ctx_switches_per_req"),
            "csw_one": ratio(gateway, prototype, "one", "workers_ctx_switches_per_req")}


def part_s(args, out_dir: Path) -> dict:
    if shutil.which("wrk") is None:
        log("part s skipped: wrk is not installed (apt-get install wrk)")
        return {"ran": False, "error": "wrk is not installed"}
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"part s: closed loop against a static upstream, wrk -t1 -c{args.static_connections} then -c1, "
        f"{args.static_duration}s each, {args.static_workers} workers; load {loadavg()}")
    upstream = StaticUpstream(out_dir).start()
    result = {"ran": True, "duration_s": args.static_duration, "connections": args.static_connections,
              "workers": args.static_workers,
              "upstream": f"nginx returning a fixed chat.completion ({len(COMPLETION)} bytes); worker_processes 1, "
                          "keepalive_requests 1000000, backlog 4096",
              "front_nginx": "nginx/nginx.local.conf.template (worker_processes 1), access_log off, "
                             "keepalive_requests 1000000, listen backlog=4096",
              "request": REQUEST, "provider_project": f"{PROJECT} (--rpm 100000000), openai → the static upstream",
              "runs": {}}
    try:
        result["runs"]["gateway"] = run_gateway(args, upstream, out_dir)
        if args.prototype_bin:
            problem = None
            if not os.access(args.prototype_bin, os.X_OK):
                problem = f"not an executable: {args.prototype_bin}"
            elif shutil.which("spawn-fcgi") is None:
                problem = "spawn-fcgi is not installed (apt-get install spawn-fcgi)"
            if problem:
                log(f"part s: prototype not measured: {problem}")
                result["prototype_error"] = problem
            else:
                time.sleep(1)
                result["prototype_bin"] = str(Path(args.prototype_bin).resolve())
                try:
                    result["runs"]["prototype"] = run_prototype(args, upstream, out_dir)
                except (Fatal, TimeoutError, RuntimeError) as error:
                    # The gateway's figures stand on their own.
                    log(f"part s: prototype not measured: {error}")
                    result["prototype_error"] = str(error)
                    return result
                result["ratios"] = ratios(result["runs"]["gateway"], result["runs"]["prototype"])
                r = result["ratios"]
                log(f"part s: ratio gateway/prototype: throughput at {args.static_connections} connections "
                    f"{jq_str(r['rps_many'])}, p50 latency at 1 connection {jq_str(r['p50_one'])}, "
                    f"p99 at 1 connection {jq_str(r['p99_one'])}")
    finally:
        upstream.stop()
    return result

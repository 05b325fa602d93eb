"""The main stack of run_benchmarks.py: simulator, gateway (`serve` master + workers) and nginx,
started with Tests/e2e/gwstack.py, and the open-loop runs through it (deploxa-loadgen).

Every way of sending the benchmark's request is a named path (see Bench.target); a run reads the
CPU of each component from /proc before and after, a pair alternates a baseline path with a
gateway path and takes the overhead as the difference of the medians.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx

import gwstack
from bench_common import (CLK_TCK, Fatal, alt, cpu_ticks, jq_str, loadavg, log, max_present, mean1, median,
                          min_present, r1, r3, read_json, run_bounded, stop_popen, thread_ticks, write_json)

# The main stack: simulator, gateway (serve master + workers) and nginx, with the benchmark's
# additions to nginx's configuration.


class BenchStack(gwstack.GatewayStack):
    ORG = "bench"
    PROJECT = "bench/load"


def nginx_additions(sim_port: int, static_hit_conf: Path) -> Callable[[str], str]:
    """The benchmark's changes to nginx/nginx.local.conf.template: access log off; /direct/ and
    /native/ proxying straight to the simulator over kept-alive connections, unbuffered, in the
    same server as /v1/ (so both paths share nginx and its listening socket); and part h's
    /static-hit location, in an included file that part h rewrites."""
    upstream = (f"    upstream deploxa_bench_sim {{\n        server 127.0.0.1:{sim_port};\n"
                "        keepalive 256;\n        keepalive_requests 100000;\n    }\n")

    def proxy(location: str, target: str, extra: str = "") -> str:
        return (f"        location {location} {{\n            proxy_pass http://deploxa_bench_sim{target};\n"
                "            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n"
                f"            proxy_buffering off;\n{extra}        }}\n\n")
    locations = (proxy("/native/", "/") + proxy("/direct/", "/openai/", "            proxy_read_timeout 900s;\n")
                 + f"        include {static_hit_conf};\n\n")

    def edit(conf: str) -> str:
        conf = re.sub(r"^[ \t]*access_log[ \t].*$", "    access_log off;", conf, flags=re.M)
        conf = re.sub(r"^([ \t]*http[ \t]*\{[^\n]*\n)", lambda m: m.group(1) + upstream, conf, count=1, flags=re.M)
        conf = re.sub(r"^([ \t]*location[ \t]+/v1/[ \t]*\{)", lambda m: locations + m.group(1), conf, count=1, flags=re.M)
        if "upstream deploxa_bench_sim" not in conf or "deploxa_bench_sim/openai/" not in conf \
                or f"include {static_hit_conf};" not in conf:
            raise Fatal("could not add the /direct/ location to the rendered template")
        return conf
    return edit


@dataclass
class Target:
    url: str
    body: Path
    headers: list[str]  # "Name: value"


class Bench:
    """The running main stack and the ways of sending the benchmark's request through it."""

    def __init__(self, args, tmp: Path):
        self.args = args
        self.tmp = tmp
        self.runs = tmp / "runs"
        self.runs.mkdir()
        self.simulator: gwstack.Simulator | None = None
        self.stack: BenchStack | None = None
        self.background: list[subprocess.Popen] = []
        self.key = self.key_limited = self.key_cache = ""
        self.static_hit_conf = tmp / "static-hit.conf"

    # -- setup --------------------------------------------------------------------------------

    def start(self) -> None:
        a = self.args
        log("starting the simulator")
        self.simulator = gwstack.Simulator(self.tmp).start()
        log(f"simulator on 127.0.0.1:{self.simulator.port}")
        # Until part h seeds an entry, /static-hit answers '{}'.
        self.static_hit_conf.write_text("location = /static-hit { default_type application/json; return 200 '{}'; }\n")
        serve_args = ["--log-level", "warning", "--graceful-timeout", "5", *a.serve_extra.split()]
        self.stack = BenchStack(self.simulator, name="bench", workers=a.workers, serve_args=serve_args,
                                before_serve=self._create_limited_project,
                                nginx_conf_filter=nginx_additions(self.simulator.port, self.static_hit_conf))
        self.stack.provider_key = "sim-key"
        log(f"creating the gateway state in {self.stack.db}, starting serve --workers {a.workers} and nginx")
        try:
            self.stack.start()
        except (gwstack.CommandError, RuntimeError, TimeoutError) as error:
            raise Fatal(f"setup failed: {error}\n{gwstack.tail(self.stack.gateway_log, 5)}") from error
        self.key = self.stack.key
        log(f"nginx on 127.0.0.1:{self.stack.port}")

        self.base = self.stack.base_url
        self.gw_url = self.base + "/v1/chat/completions"
        self.direct_url = self.base + "/direct/v1/chat/completions"
        self.chat_body = self.tmp / "chat.json"
        self.chat_body.write_text('{"model":"gpt-4o-mini","messages":[{"role":"user","content":'
                                  f'"Say hello. [sim words={a.words}]"}}]}}')
        self.stream_body = self.tmp / "stream.json"
        self.stream_body.write_text('{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":'
                                    f'"Tell a slow story. [sim chunk_delay_ms={a.stream_chunk_delay_ms} '
                                    f'words={a.stream_words}]"}}]}}')
        # Per provider (part p): the OpenAI-format client body, and the provider-native request the
        # gateway would send for it (body, path, headers), written by the translation benchmark.
        self.native = self.tmp / "native"
        result = subprocess.run([a.translation_bin, "--dump-requests", str(self.native), "--words", str(a.words)],
                                stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if result.returncode != 0:
            raise Fatal(f"could not write the provider-native requests: {result.stderr[-300:]}")
        self.smoke_test()

    def _create_limited_project(self, stack: BenchStack) -> None:
        """Part l's key: every check runs (key and project RPM/TPM, budgets), none is ever reached."""
        limits = ("--rpm", "100000000", "--tpm", "1000000000000", "--monthly-budget", "1000000000")
        stack.cli("project", "create", "bench/limited", *limits)
        stack.cli("provider", "set", "bench/limited", "openai", "--base-url", self.simulator.openai_base_url,
                  input="sim-key\n")
        self.key_limited = stack.create_key("limited", "bench/limited", *limits)["secret"]

    def smoke_test(self) -> None:
        """Every path answers 200 with a chat completion (native paths: the provider's own shape)."""
        paths = ["gateway", "direct", "limited"] + [f"{kind}:{p}" for p in self.args.provider_list for kind in ("gw", "native")]
        with httpx.Client(timeout=30, trust_env=False) as client:
            for path in paths:
                response = self.send(client, path)
                name = path.replace(":", "-")
                (self.tmp / f"smoke-{name}.json").write_bytes(response.content)
                try:
                    body = response.json()
                    ok = bool(body) if path.startswith("native:") else bool(body["choices"][0]["message"]["content"])
                except (ValueError, KeyError, IndexError, TypeError):
                    ok = False
                if response.status_code != 200 or not ok:
                    raise Fatal(f"smoke test {name}: HTTP {response.status_code}: {response.content[:400]!r}")
        log("smoke test ok (gateway, direct, limited and every provider's gateway and native paths answer 200)")

    # -- targets ------------------------------------------------------------------------------

    def target(self, path: str) -> Target:
        """gateway | limited | direct: the OpenAI request through the gateway (unlimited / limited
        key) or through nginx straight to the simulator; gw:P: the same for provider P through the
        gateway; native:P: P's own request through nginx straight to the simulator;
        gateway-hit | static-hit (part h): the seeded cached request through the gateway, and the
        same request (same headers and body) to nginx's /static-hit."""
        auth = f"Authorization: Bearer {self.key}"
        if path == "gateway":
            return Target(self.gw_url, self.chat_body, [auth])
        if path == "limited":
            return Target(self.gw_url, self.chat_body, [f"Authorization: Bearer {self.key_limited}"])
        if path == "direct":
            return Target(self.direct_url, self.chat_body, ["Authorization: Bearer sim-key"])
        if path.startswith("gw:"):
            provider = path[3:]
            return Target(self.gw_url, self.native / f"{provider}.client.json", [auth, f"X-AI-Provider: {provider}"])
        if path.startswith("native:"):
            provider = path[7:]
            url_path = (self.native / f"{provider}.path").read_text().rstrip("\n")
            headers = [line for line in (self.native / f"{provider}.headers").read_text().splitlines() if line]
            return Target(f"{self.base}/native{url_path}", self.native / f"{provider}.body", headers)
        if path in ("gateway-hit", "static-hit"):
            url = self.gw_url if path == "gateway-hit" else self.base + "/static-hit"
            return Target(url, self.tmp / "cache.json", [f"Authorization: Bearer {self.key_cache}", "X-Cache-TTL: 3600"])
        raise ValueError(f"unknown path {path}")

    def send(self, client: httpx.Client, path: str) -> httpx.Response:
        target = self.target(path)
        headers = [tuple(h.split(": ", 1)) for h in target.headers] + [("Content-Type", "application/json")]
        return client.post(target.url, content=target.body.read_bytes(), headers=headers)

    # -- processes ----------------------------------------------------------------------------

    def worker_pids(self) -> list[int]:
        return sorted(self.stack.worker_pids())

    def nginx_pids(self) -> list[int]:
        return [self.stack.nginx.pid, *sorted(gwstack.children_of(self.stack.nginx.pid))]

    def sim_stats(self) -> dict | None:
        try:
            return self.simulator.stats()
        except Exception:  # noqa: BLE001 - reported as null, as before
            return None

    def stop(self) -> None:
        for proc in self.background:
            stop_popen(proc, signal.SIGTERM, 3)
        if self.stack is not None:
            self.stack.stop()
        if self.simulator is not None:
            self.simulator.stop()

    # -- one open-loop run, and alternating pairs ------------------------------------------------

    def run_rate(self, name: str, path: str, rate: int, duration: int, quiet: bool = False) -> dict:
        """One deploxa-loadgen run; writes runs/NAME.json: the generator's report plus "cpu" (µs per
        request per component), worker CPU by thread and the load average after it. `quiet`: no
        log lines (warm-ups)."""
        a = self.args
        target = self.target(path)
        out = self.runs / name
        wpids, npids = self.worker_pids(), self.nginx_pids()
        master, sim = self.stack.master_pid, self.simulator.proc.pid
        before = [cpu_ticks(npids), cpu_ticks(wpids), cpu_ticks([master]), cpu_ticks([sim])]
        threads_before = thread_ticks(wpids)
        headers = [arg for h in target.headers for arg in ("-H", h)]
        rc, loadgen_cpu = run_bounded(
            [a.loadgen_bin, "rate", "--url", target.url, "--rate", str(rate), "--duration", str(duration),
             "--warmup", str(a.warmup), "--connections", str(a.connections), "--threads", str(a.loadgen_threads),
             "--timeout", "10", "--body-file", str(target.body), *headers, "-H", "Content-Type: application/json",
             "--json"],
            out.with_suffix(".lg"), out.with_suffix(".err"), timeout=duration + a.warmup + 40)
        after = [cpu_ticks(npids), cpu_ticks(wpids), cpu_ticks([master]), cpu_ticks([sim])]
        threads_after = thread_ticks(wpids)
        total = int(rate * (duration + a.warmup) + 0.5)  # requests sent, warm-up included

        report = read_json(out.with_suffix(".lg"))
        if rc != 0 or not report:
            if not quiet:
                log(f"loadgen {name} failed (rc {rc}): {gwstack.tail(out.with_suffix('.err'), 3)}")
            report = {"failed": True}
        now_workers = self.worker_pids()
        if now_workers != wpids and not quiet:
            log(f"WARNING: worker set changed during {name}: [{pid_list(wpids)}] → [{pid_list(now_workers)}]")

        def us(ticks: int) -> float:
            return r1(ticks / CLK_TCK * 1e6 / total)
        # Worker CPU by thread name (digits folded to N): µs per request.
        by_thread: dict[str, float] = {}
        for tid, (thread, ticks) in threads_after.items():
            by_thread[thread] = by_thread.get(thread, 0) + ticks - threads_before.get(tid, (thread, 0))[1]
        ng, w, m, s = (x - y for x, y in zip(after, before))
        run = {**report, "name": name, "path": path, "loadavg_after": loadavg(),
               "worker_threads_us_per_req": ({k: r1(v / CLK_TCK * 1e6 / total) for k, v in by_thread.items()}
                                             if re.match(r"^(gateway|limited|gw:)", path) else None),
               "worker_pids_before": pid_list(wpids), "worker_pids_after": pid_list(now_workers),
               "cpu": {"requests_sent_incl_warmup": total,
                       "nginx_us_per_req": us(ng), "workers_us_per_req": us(w), "master_us_per_req": us(m),
                       "simulator_us_per_req": us(s), "loadgen_us_per_req": r1(loadgen_cpu * 1e6 / total),
                       "nginx_cpu_s": ng / CLK_TCK, "workers_cpu_s": w / CLK_TCK, "master_cpu_s": m / CLK_TCK,
                       "simulator_cpu_s": s / CLK_TCK, "loadgen_cpu_s": loadgen_cpu}}
        write_json(out.with_suffix(".json"), run)
        if quiet:
            return run
        log(f"{name}: target {jq_str(run.get('target_rate'))} achieved {jq_str(alt(run.get('achieved_rate'), '-'))} req/s  "
            f"p50 {jq_str(alt(run.get('p50_ms'), '-'))} p99 {jq_str(alt(run.get('p99_ms'), '-'))} ms  "
            f"non2xx {jq_str(alt(run.get('non_2xx'), '-'))} errors {jq_str(alt(run.get('errors'), '-'))}  "
            f"status {jq_str(alt(run.get('status_counts'), {}))}")
        return run

    def warm(self, name: str, path: str, rate: int, duration: int) -> None:
        """An unmeasured run (connections, caches, page faults), its log line dropped."""
        try:
            self.run_rate(name, path, rate, duration, quiet=True)
        except Exception as error:  # noqa: BLE001 - a warm-up may fail without consequence
            log(f"warm-up {name} failed: {error}")

    def pair(self, name: str, rate: int, duration: int, repeats: int = 1,
             base_path: str = "direct", gw_path: str = "gateway") -> dict:
        """REPEATS × (base path, then gateway path); overhead = median(gateway) − median(base), at p50
        and at p99. Writes runs/NAME.pair.json."""
        base_runs, gw_runs = [], []
        for i in range(1, repeats + 1):
            base_runs.append(self.run_rate(f"{name}-direct-{i}", base_path, rate, duration))
            time.sleep(1)
            gw_runs.append(self.run_rate(f"{name}-gateway-{i}", gw_path, rate, duration))
            time.sleep(1)
        direct, gateway = run_summary(base_runs, rate), run_summary(gw_runs, rate)
        result = {"rate": rate, "repeats": len(base_runs), "direct": direct, "gateway": gateway,
                  "overhead_p50_ms": difference(gateway["p50_ms"], direct["p50_ms"]),
                  "overhead_p99_ms": difference(gateway["p99_ms"], direct["p99_ms"]),
                  "runs": {"direct": base_runs, "gateway": gw_runs}}
        write_json(self.runs / f"{name}.pair.json", result)
        log(f"{name}: overhead p50 {jq_str(result['overhead_p50_ms'])} ms, p99 {jq_str(result['overhead_p99_ms'])} ms "
            f"(medians of {repeats})")
        return result


def pid_list(pids) -> str:
    return " ".join(str(p) for p in pids)


def difference(a, b):
    return None if a is None or b is None else r3(a - b)


def run_summary(runs: list[dict], rate: int) -> dict:
    """One path's runs: median percentiles, the worst p99 and max, the lowest achieved rate,
    summed errors and status counts, mean CPU per request."""
    def counts(field: str) -> dict:
        merged: dict = {}
        for run in runs:
            for key, value in (run.get(field) or {}).items():
                merged[key] = merged.get(key, 0) + value
        return merged

    def col(field: str) -> list:
        return [run.get(field) for run in runs]
    cpus = [run["cpu"] for run in runs]
    thread_maps = [run.get("worker_threads_us_per_req") or {} for run in runs]
    thread_names = sorted({name for m in thread_maps for name in m})
    return {
        "runs": len(runs),
        "failed": any(run.get("failed") is True for run in runs),
        "target_rate": rate,
        "achieved_rate": min_present(col("achieved_rate")),
        "sent": sum(alt(run.get("sent"), 0) for run in runs), "completed": sum(alt(run.get("completed"), 0) for run in runs),
        "errors": sum(1 if run.get("failed") is True else alt(run.get("errors"), 0) for run in runs),
        "non_2xx": sum(alt(run.get("non_2xx"), 0) for run in runs),
        "status_counts": counts("status_counts"),
        "error_counts": counts("error_counts"),
        "p50_ms": r3(median(col("p50_ms"))), "p90_ms": r3(median(col("p90_ms"))),
        "p99_ms": r3(median(col("p99_ms"))), "p999_ms": r3(median(col("p999_ms"))),
        "p99_ms_each": col("p99_ms"), "p50_ms_each": col("p50_ms"),
        "p99_ms_worst": max_present(col("p99_ms")),
        "max_ms": max_present(col("max_ms")),
        "dispatch_lag_p99_ms_worst": max_present(col("dispatch_lag_p99_ms")),
        "cpu": {field: mean1(cpu.get(field) for cpu in cpus) for field in
                ("nginx_us_per_req", "workers_us_per_req", "master_us_per_req", "simulator_us_per_req",
                 "loadgen_us_per_req")},
        "worker_threads_us_per_req": {name: mean1(m.get(name, 0) for m in thread_maps) for name in thread_names},
    }

#!/usr/bin/env python3
"""Deploxa AI Gateway benchmarks: one command, loopback only, bounded in time.

    python3 Benchmarks/run_benchmarks.py [options]        (every option also reads an environment variable)

Builds release binaries (scratch path .build-bench), starts the provider simulator, the gateway
(`serve`, master + WORKERS workers) and nginx on 127.0.0.1 with Tests/e2e/gwstack.py, then measures
the parts named by PARTS, in that order:

  a  overhead at fixed rates (RATES): the same non-streaming chat completion (words=WORDS) sent
     open-loop through nginx straight to the simulator ("direct") and through nginx → FastCGI →
     gateway → simulator ("gateway"), alternating REPEATS times, same nginx;
     overhead = median(gateway) − median(direct), at p50 and p99;
  d  (rides on a) during the CPU_RATE runs: CPU seconds of nginx, gateway workers, the master and
     the simulator (/proc/PID/stat) → µs of CPU per request per component;
  c  memory: STREAMS concurrent slow SSE streams held open; RSS of the workers (summed), the master,
     the simulator and nginx, idle and while the streams are open;
  b  the highest rate (STEP_RATES) at which the gateway's p99 overhead stays under
     MAX_P99_OVERHEAD_MS with no errors and no non-2xx answers;
  l  limits: the same request at LIMITS_RATE with a key whose project and key carry RPM, TPM and a
     monthly budget (never reached) against a key without limits, alternating REPEATS times; then
     the multi-process hammer: HAMMER_PROCESSES × HAMMER_COUNT admissions on one RPM counter of
     limit HAMMER_LIMIT (exact total, SQLITE_BUSY count);
  p  per provider (PROVIDER_LIST) at PROVIDER_RATE: the OpenAI request through the gateway with
     X-AI-Provider (translated both ways) against that provider's own request sent through nginx
     straight to the simulator ("native"), alternating REPEATS times;
  t  translation cost per provider in-process (deploxa-translation-bench);
  w  closed loop: wrk keeps CLOSED_CONNECTIONS connections busy for DURATION seconds on the direct
     and the gateway path, alternating REPEATS times (needs wrk);
  h  cache hits: one entry seeded (X-Cache-TTL: 3600) in a project of its own, then replayed at
     HIT_RATES against nginx returning the hit's exact bytes itself (/static-hit); then the highest
     rate of HIT_STEP_RATES held with hit p99 ≤ HIT_MAX_P99_MS; checks that every answer was a hit;
  s  closed loop against a static upstream (not the simulator, so only the gateway's own cost):
     a second nginx returns a fixed chat.completion, the gateway (STATIC_WORKERS workers, a project
     with an RPM limit) calls it; wrk -t1 with STATIC_CONNECTIONS connections, then 1, for
     STATIC_DURATION s each: req/s, p50/p99, worker CPU and context switches per request; with
     --prototype-bin the same against that FastCGI prototype (spawn-fcgi) and the ratios
     gateway/prototype. Not in the default PARTS.
  g  the shared database, SQLite against PostgreSQL (Benchmarks/bench_postgres.py): four deployments
     side by side on one simulator, each behind its own nginx, each with part l's limited key:
     SQLite with BEFORE_BIN, SQLite with this tree, PostgreSQL with one node (WORKERS workers) and
     G_NODES serve masters of G_NODE_WORKERS workers behind one nginx upstream, all on one throwaway
     cluster (G_PG_SETTINGS); alternating within every repeat: open loop at G_RATES (overhead over
     direct), wrk with CLOSED_CONNECTIONS connections, and G_ADMIT_PROCESSES `bench-admit`
     processes on one hot scope (limit = total, checked exact) and over G_ADMIT_SPREAD scopes.
     Writes its own document next to RESULTS (NAME-g.json). Not in the default PARTS.

Prints a summary table on stdout (progress on stderr) and writes RESULTS (plus the gateway's and
nginx's logs of the run next to it). Every process it starts is stopped on exit, by pid.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_PYTHON = REPO / ".build" / "e2e-venv" / "bin" / "python"

# gwstack needs httpx; the e2e suite's virtualenv has it.
try:
    import httpx
except ImportError:
    if VENV_PYTHON.exists() and not os.environ.get("RUN_BENCHMARKS_REEXEC"):
        os.environ["RUN_BENCHMARKS_REEXEC"] = "1"
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])
    sys.exit("run_benchmarks: needs httpx (pip install httpx, or run `bash Tests/e2e/run.sh --co -q` once "
             "to create .build/e2e-venv)")

sys.path.insert(0, str(REPO / "Tests" / "e2e"))

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Callable  # noqa: E402

import gwstack  # noqa: E402

import bench_report  # noqa: E402
import static_closed_loop  # noqa: E402
from bench_stack import Bench, difference, pid_list  # noqa: E402
from bench_common import (CLK_TCK, Fatal, alt, cpu_ticks, jq_str, jround, listen_overflows, loadavg, log,  # noqa: E402
                          mb, median, min_present, r1, r3, read_json, run_bounded, run_wrk, status_kb, status_value,
                          write_json, write_wrk_script)

SCRATCH = REPO / ".build-bench"
PROVIDERS = ("openai", "anthropic", "google", "mistral", "cohere")
ALL_PARTS = "abclpthwsg"
PARTS_ON_THE_MAIN_STACK = set("abclpthw")


# --------------------------------------------------------------------------------------------
# Options: each one an environment variable too (the names the bash version read), the option
# winning over the variable.


@dataclass
class Knob:
    env: str
    default: object
    parse: Callable[[str], object]
    help: str


def number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def ints(text: str) -> list[int]:
    return [int(word) for word in text.replace(",", " ").split()]


def words(text: str) -> list[str]:
    return text.replace(",", " ").split()


KNOBS = [
    Knob("PARTS", "a c b l p t h", words, f"parts to run, in order (any of {', '.join(ALL_PARTS)}; d rides on a)"),
    Knob("WORKERS", 2, int, "gateway worker processes"),
    Knob("DURATION", 15, int, "measured seconds per open-loop run (and per wrk run of part w)"),
    Knob("WARMUP", 3, int, "warm-up seconds before each open-loop run (sent, not recorded)"),
    Knob("RATES", "100 500 1000", ints, "part a: rates (req/s)"),
    Knob("REPEATS", 3, int, "alternating runs per measurement (parts a, l, p, w, h)"),
    Knob("CPU_RATE", 1000, int, "part d: the rate of part a whose CPU per request is reported"),
    Knob("STEP_RATES", "1000 1250 1500 1750 2000 2500 3000 4000", ints, "part b: rates stepped through"),
    Knob("STEP_DURATION", 10, int, "part b: measured seconds per step"),
    Knob("STEP_REPEATS", 3, int, "part b: alternating runs per step"),
    Knob("MAX_P99_OVERHEAD_MS", 5, number, "part b: the p99 overhead that ends the stepping"),
    Knob("CONNECTIONS", 256, int, "deploxa-loadgen: maximum keep-alive connections"),
    Knob("LOADGEN_THREADS", 1, int, "deploxa-loadgen: event-loop threads"),
    Knob("STREAMS", 1000, int, "part c: concurrent streams"),
    Knob("STREAM_HOLD", 20, int, "part c: seconds the streams are held open"),
    Knob("STREAM_SAMPLE_AT", 10, int, "part c: seconds after the start at which RSS is sampled"),
    Knob("STREAM_WORDS", 30, int, "part c: words per stream"),
    Knob("STREAM_CHUNK_DELAY_MS", 1000, int, "part c: the simulator's delay between chunks"),
    Knob("STREAM_BASELINE_HOLD", 5, int, "part c: hold of the same streams sent direct first (time-to-first-byte baseline)"),
    Knob("WORDS", 8, int, "words of the simulator's answer"),
    Knob("CLOSED_CONNECTIONS", 64, int, "part w: wrk connections"),
    Knob("LIMITS_RATE", 500, int, "part l: rate (req/s)"),
    Knob("HAMMER_PROCESSES", 4, int, "part l: hammer processes"),
    Knob("HAMMER_COUNT", 5000, int, "part l: admissions per hammer process"),
    Knob("HAMMER_LIMIT", 10000, int, "part l: the hammered counter's RPM limit"),
    Knob("PROVIDER_LIST", " ".join(PROVIDERS), words, "part p: providers"),
    Knob("PROVIDER_RATE", 500, int, "part p: rate (req/s)"),
    Knob("HIT_RATES", "1000", ints, "part h: rates of the hit-vs-static pairs"),
    Knob("HIT_STEP_RATES", "2000 3000 4000 6000 8000", ints, "part h: rates stepped through"),
    Knob("HIT_STEP_DURATION", None, int, "part h: measured seconds per step (default: STEP_DURATION)"),
    Knob("HIT_MAX_P99_MS", 5, number, "part h: the hit p99 that ends the stepping"),
    Knob("STATIC_DURATION", 10, int, "part s: seconds per wrk run"),
    Knob("STATIC_CONNECTIONS", 64, int, "part s: wrk connections of the throughput run (the latency run uses 1)"),
    Knob("STATIC_WORKERS", 2, int, "part s: gateway workers (and prototype processes)"),
    Knob("PROTOTYPE_BIN", None, str, "part s: a built FastCGI prototype binary to measure beside the gateway (needs spawn-fcgi)"),
    Knob("BEFORE_BIN", None, str, "part g: the SQLite 'before' gateway binary (e.g. a release build of the commit before)"),
    Knob("G_RATES", "500 1000", ints, "part g: open-loop rates (req/s)"),
    Knob("G_NODES", 3, int, "part g: serve masters of the multi-node PostgreSQL deployment"),
    Knob("G_NODE_WORKERS", 2, int, "part g: workers of each of those masters"),
    Knob("G_ADMIT_PROCESSES", 3, int, "part g: bench-admit processes at once"),
    Knob("G_ADMIT_COUNT", 2000, int, "part g: admissions per bench-admit process"),
    Knob("G_ADMIT_SPREAD", 1000, int, "part g: scopes of the spread admission runs"),
    Knob("G_PG_SETTINGS", "", words, "part g: extra postgresql.conf settings of the cluster, KEY=VALUE ..."),
    Knob("SERVE_EXTRA", "", str, 'more `serve` options, e.g. "--accept-threads 1"'),
    Knob("QUIET_LOAD", None, float, "first wait (up to QUIET_WAIT s) for the 1-minute load average to fall below this"),
    Knob("QUIET_WAIT", 300, int, "seconds to wait at most for QUIET_LOAD"),
    Knob("IDLE_CPU_SECONDS", 5, int, "idle CPU of each component, measured before the load"),
    Knob("GATEWAY_BIN", None, str, "the gateway binary to benchmark (default: .build-bench/release/deploxa-gateway); "
                                   "the load generators always come from .build-bench"),
    Knob("RESULTS", str(REPO / "Benchmarks" / "results" / "latest.json"), str, "the results file"),
]
FLAGS = [
    Knob("SKIP_BUILD", False, bool, "do not build; use the binaries in .build-bench/release (env: 1)"),
    Knob("KEEP_TMP", False, bool, "keep the temporary directories (database, logs, per-run JSON) (env: 1)"),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run_benchmarks.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for knob in KNOBS:
        option = "--" + knob.env.lower().replace("_", "-")
        names = [option, "--prototype"] if knob.env == "PROTOTYPE_BIN" else [option]
        raw = os.environ.get(knob.env)
        default = knob.default
        try:
            if raw not in (None, ""):
                default = knob.parse(raw)
            elif isinstance(default, str) and knob.parse is not str:
                default = knob.parse(default)
        except ValueError:
            parser.error(f"environment variable {knob.env}={raw!r}: not valid")
        shown = knob.default if knob.default not in (None, "") else "unset"
        parser.add_argument(*names, dest=knob.env.lower(), type=knob.parse, default=default, metavar=knob.env,
                            help=f"{knob.help} [env {knob.env}; default {shown}]")
    for knob in FLAGS:
        parser.add_argument("--" + knob.env.lower().replace("_", "-"), dest=knob.env.lower(), action="store_true",
                            default=os.environ.get(knob.env, "0") == "1", help=f"{knob.help} [env {knob.env}]")
    args = parser.parse_args(argv)
    if args.hit_step_duration is None:
        args.hit_step_duration = args.step_duration
    args.results = Path(args.results).resolve()
    args.gateway_bin = str(Path(args.gateway_bin).resolve()) if args.gateway_bin else str(SCRATCH / "release" / "deploxa-gateway")
    args.loadgen_bin = str(SCRATCH / "release" / "deploxa-loadgen")
    args.translation_bin = str(SCRATCH / "release" / "deploxa-translation-bench")
    unknown = [p for p in args.parts if p not in ALL_PARTS]
    for part in unknown:
        log(f"unknown part '{part}' ({', '.join(ALL_PARTS[:-1])} or {ALL_PARTS[-1]})")
    return args


# --------------------------------------------------------------------------------------------
# Build and source state


def source_state() -> dict:
    """git HEAD and the uncommitted files under Sources, read before the build (the tree may
    change during the run)."""
    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return result.stdout if result.returncode == 0 else ""
    return {"git_rev": git("rev-parse", "--short", "HEAD").strip() or "unknown",
            "git_dirty": len(git("status", "--porcelain", "--", "Sources", "Package.swift").splitlines())}


def build(args) -> None:
    log(f"building release into {SCRATCH}")
    for attempt in range(1, 5):
        result = subprocess.run(["swift", "build", "-c", "release", "--scratch-path", str(SCRATCH)], cwd=REPO,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print("\n".join(result.stdout.splitlines()[-25:]), file=sys.stderr)
        if result.returncode == 0 and os.access(args.gateway_bin, os.X_OK) and os.access(args.loadgen_bin, os.X_OK):
            return
        log(f"build failed (attempt {attempt}); retrying in 60 s")
        time.sleep(60)
    raise Fatal("release build failed")


def wait_quiet(args) -> None:
    """Waits (bounded) until the 1-minute load average is below QUIET_LOAD."""
    if args.quiet_load is None:
        return
    waited = 0
    while True:
        load = os.getloadavg()[0]
        if load < args.quiet_load:
            return
        if waited >= args.quiet_wait:
            log(f"load still {load:.2f} after {args.quiet_wait}s; going on")
            return
        if waited % 30 == 0:
            log(f"waiting for a quiet machine (load {load:.2f}, want < {args.quiet_load})")
        time.sleep(5)
        waited += 5


def compact(value: dict, fields: list[str]) -> str:
    """jq -c '{a, b, …}' of a report (missing fields as null)."""
    return jq_str({field: value.get(field) for field in fields})


# --------------------------------------------------------------------------------------------
# Before the load: idle figures.


def measure_idle(bench: Bench, state: dict) -> None:
    a = bench.args
    workers, master, sim = bench.worker_pids(), bench.stack.master_pid, bench.simulator.proc.pid
    state["workers_at_start"] = pid_list(workers)
    state["idle_fresh_kb"] = {"workers": status_kb("VmRSS", workers), "master": status_kb("VmRSS", [master]),
                              "simulator": status_kb("VmRSS", [sim]), "nginx": status_kb("VmRSS", bench.nginx_pids())}
    state["load_start"] = loadavg()
    # Idle CPU (no requests) over IDLE_CPU_SECONDS: a floor included in every CPU-per-request figure.
    before = [cpu_ticks(workers), cpu_ticks([sim]), cpu_ticks(bench.nginx_pids())]
    time.sleep(a.idle_cpu_seconds)
    after = [cpu_ticks(workers), cpu_ticks([sim]), cpu_ticks(bench.nginx_pids())]
    w, s, n = ((y - x) / CLK_TCK / a.idle_cpu_seconds * 1000 for x, y in zip(before, after))
    state["idle_cpu"] = {"seconds": a.idle_cpu_seconds, "workers_ms_per_s": round(w, 1),
                         "simulator_ms_per_s": round(s, 1), "nginx_ms_per_s": round(n, 1)}
    log(f"idle CPU: {jq_str(state['idle_cpu'])}")


# --------------------------------------------------------------------------------------------
# a (+ d). Overhead at fixed rates.


def part_a(bench: Bench, results: dict) -> None:
    a = bench.args
    log(f"part a: overhead at {' '.join(map(str, a.rates))} req/s ({a.duration}s + {a.warmup}s warm-up each, "
        f"direct then gateway); load {loadavg()}")
    bench.warm("warm-direct", "direct", 200, 3)
    bench.warm("warm-gateway", "gateway", 200, 3)
    results["overhead"] = [bench.pair(f"rate{rate}", rate, a.duration, a.repeats) for rate in a.rates]
    # d. CPU per request per component at CPU_RATE.
    at_cpu_rate = [p for p in results["overhead"] if p["rate"] == a.cpu_rate]
    if at_cpu_rate:
        pair = at_cpu_rate[-1]
        results["cpu"] = {"rate": a.cpu_rate, "repeats": pair["repeats"], "gateway": pair["gateway"]["cpu"],
                          "direct": pair["direct"]["cpu"],
                          "gateway_worker_threads_us_per_req": pair["gateway"]["worker_threads_us_per_req"],
                          "gateway_loadavg_after": [run["loadavg_after"] for run in pair["runs"]["gateway"]]}


# --------------------------------------------------------------------------------------------
# c. Memory with STREAMS concurrent slow streams.


def streams_command(bench: Bench, url: str, auth: str, hold: int) -> list[str]:
    a = bench.args
    return [a.loadgen_bin, "streams", "--url", url, "--concurrency", str(a.streams), "--hold", str(hold),
            "--timeout", "10", "--body-file", str(bench.stream_body), "-H", auth, "--json"]


def ss_count(*args: str, containing: str | None = None) -> int:
    result = subprocess.run(["ss", *args], capture_output=True, text=True)
    lines = result.stdout.splitlines()
    return len([line for line in lines if containing in line] if containing else lines)


def part_c(bench: Bench, results: dict, state: dict) -> None:
    a, runs = bench.args, bench.runs
    log(f"part c: {a.streams} concurrent streams (chunk_delay_ms={a.stream_chunk_delay_ms} words={a.stream_words}), "
        f"hold {a.stream_hold}s; load {loadavg()}")
    workers_of = bench.worker_pids
    master, sim = bench.stack.master_pid, bench.simulator.proc.pid
    stream_fields = ["established", "first_byte", "completed", "held_to_end", "errors", "status_counts", "ttfb_p99_ms"]

    # Baseline: the same streams straight to the simulator through nginx (time to first byte,
    # simulator and nginx memory), held a short while.
    ovf0 = listen_overflows()
    rc, _ = run_bounded(streams_command(bench, bench.direct_url, "Authorization: Bearer sim-key", a.stream_baseline_hold),
                        runs / "streams-direct.lg", runs / "streams-direct.err", timeout=a.stream_baseline_hold + 40)
    if rc != 0:
        log(f"direct streams baseline failed: {gwstack.tail(runs / 'streams-direct.err', 3)}")
    direct = read_json(runs / "streams-direct.lg") or {"failed": True}
    ovf1 = listen_overflows()
    log(f"direct streams baseline: "
        f"{compact(direct, ['established', 'first_byte', 'errors', 'status_counts', 'ttfb_p50_ms', 'ttfb_p99_ms'])}")
    time.sleep(3)

    wpids = workers_of()
    idle = {"w": status_kb("VmRSS", wpids), "m": status_kb("VmRSS", [master]), "s": status_kb("VmRSS", [sim]),
            "n": status_kb("VmRSS", bench.nginx_pids())}
    ovf2 = listen_overflows()
    # The gateway streams run in a thread (bounded like the others) while this one samples.
    outcome: dict = {}

    def streams() -> None:
        outcome["rc"], _ = run_bounded(streams_command(bench, bench.gw_url, f"Authorization: Bearer {bench.key}", a.stream_hold),
                                       runs / "streams.lg", runs / "streams.err", timeout=a.stream_hold + 40,
                                       on_start=bench.background.append)
    runner = threading.Thread(target=streams, daemon=True)
    runner.start()
    time.sleep(a.stream_sample_at)
    sample = {"w": status_kb("VmRSS", wpids), "m": status_kb("VmRSS", [master]), "s": status_kb("VmRSS", [sim]),
              "n": status_kb("VmRSS", bench.nginx_pids())}
    hwm = status_kb("VmHWM", wpids)
    per_worker = [{"pid": p, "rss_kb": status_kb("VmRSS", [p]), "threads": status_value(p, "Threads")} for p in wpids]
    sim_open = bench.sim_stats()
    sim_conns = ss_count("-Htn", "state", "established", f"( dport = :{bench.simulator.port} )")
    nginx_fcgi = ss_count("-Hx", containing=str(bench.stack.socket))
    log(f"streams open: workers RSS {mb(sample['w'])} MB (idle {mb(idle['w'])} MB), master {mb(sample['m'])} MB, "
        f"simulator {mb(sample['s'])} MB; sim in-flight {jq_str(alt((sim_open or {}).get('in_flight'), '?'))}, "
        f"gateway→sim TCP {sim_conns}")
    runner.join()
    gateway = read_json(runs / "streams.lg")
    if outcome.get("rc") != 0 or not gateway:
        log(f"streams loadgen failed (rc {outcome.get('rc')}): {gwstack.tail(runs / 'streams.err', 3)}")
        gateway = {"failed": True}
    ovf3 = listen_overflows()
    time.sleep(5)
    sim_after = bench.sim_stats()
    after_w = status_kb("VmRSS", wpids)
    fresh = state["idle_fresh_kb"]

    def rss(kb: int) -> float:
        return r1(kb / 1024)
    results["memory"] = {
        "ran": True, "streams": a.streams, "hold_s": a.stream_hold, "sampled_after_s": a.stream_sample_at,
        "sim_words": a.stream_words, "sim_chunk_delay_ms": a.stream_chunk_delay_ms,
        "loadgen": gateway, "direct_baseline": direct,
        "rss_mb": {
            "workers_idle_fresh": rss(fresh["workers"]), "master_idle_fresh": rss(fresh["master"]),
            "simulator_idle_fresh": rss(fresh["simulator"]), "nginx_idle_fresh": rss(fresh["nginx"]),
            "workers_idle_before": rss(idle["w"]), "master_idle_before": rss(idle["m"]),
            "simulator_idle_before": rss(idle["s"]), "nginx_idle_before": rss(idle["n"]),
            "workers_streams_open": rss(sample["w"]), "master_streams_open": rss(sample["m"]),
            "simulator_streams_open": rss(sample["s"]), "nginx_streams_open": rss(sample["n"]),
            "workers_peak_hwm": rss(hwm), "workers_5s_after_close": rss(after_w)},
        "per_worker_while_open": per_worker,
        "workers_rss_per_stream_kb": r1((sample["w"] - idle["w"]) / a.streams),
        "simulator_stats_while_open": sim_open, "simulator_stats_5s_after": sim_after,
        "upstream_tcp_connections_to_simulator_while_open": sim_conns,
        "fastcgi_unix_connections_while_open": nginx_fcgi,
        "tcp_listen_overflows": {"direct_baseline": ovf1 - ovf0, "gateway": ovf3 - ovf2},
        "worker_pids_before": pid_list(wpids), "worker_pids_after": pid_list(workers_of()),
        "loadavg_after": loadavg()}
    log(f"streams: {compact(gateway, stream_fields)}")


# --------------------------------------------------------------------------------------------
# b. Step the rate up until the p99 overhead reaches MAX_P99_OVERHEAD_MS or errors appear.


def step_verdict(pair: dict, max_ms: float) -> str:
    def errors(x: dict) -> bool:
        return x["failed"] is True or alt(x["errors"], 1) > 0 or alt(x["non_2xx"], 1) > 0

    def slow(x: dict) -> bool:
        return alt(x["achieved_rate"], 0) < 0.98 * x["target_rate"]
    if errors(pair["direct"]) or slow(pair["direct"]):
        return "baseline (direct) failed or saturated"
    if errors(pair["gateway"]):
        return "gateway errors or non-2xx answers"
    if slow(pair["gateway"]):
        return "gateway saturated (achieved rate < 98 % of target)"
    if pair["overhead_p99_ms"] is None or pair["overhead_p99_ms"] >= max_ms:
        return f"p99 overhead ≥ {jq_str(max_ms)} ms"
    return "pass"


def part_b(bench: Bench, results: dict) -> None:
    a = bench.args
    log(f"part b: stepping {' '.join(map(str, a.step_rates))} req/s ({a.step_duration}s + {a.warmup}s each) until p99 "
        f"overhead ≥ {jq_str(a.max_p99_overhead_ms)} ms or errors; load {loadavg()}")
    steps, best, stop_reason = [], None, "all step rates passed"
    for rate in a.step_rates:
        pair = bench.pair(f"step{rate}", rate, a.step_duration, a.step_repeats)
        steps.append(pair)
        verdict = step_verdict(pair, a.max_p99_overhead_ms)
        if verdict != "pass":
            stop_reason = f"{verdict} at {rate} req/s"
            log(f"step {rate} req/s: {verdict}; stopping")
            break
        best = rate
    results["steps"] = {"ran": True, "max_p99_overhead_ms": a.max_p99_overhead_ms, "highest_passing_rate": best,
                        "stop_reason": stop_reason, "steps": steps}


# --------------------------------------------------------------------------------------------
# l. What limits cost: limited vs unlimited key at LIMITS_RATE, then the multi-process hammer.


def hammer(bench: Bench) -> list[dict]:
    """HAMMER_PROCESSES `bench-admit` processes at once on one RPM counter (one window: same --at)."""
    a = bench.args
    at = str(int(time.time()))
    procs = []
    for p in range(1, a.hammer_processes + 1):
        with open(bench.runs / f"hammer-{p}.json", "wb") as out, open(bench.runs / f"hammer-{p}.err", "wb") as err:
            procs.append(subprocess.Popen(
                [a.gateway_bin, "--db", str(bench.stack.db), "bench-admit", "--count", str(a.hammer_count),
                 "--rpm", str(a.hammer_limit), "--scope", f"gk_hammer_{at}", "--at", at],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err))
    bench.background.extend(procs)
    for proc in procs:
        proc.wait()
    reports = [read_json(bench.runs / f"hammer-{p}.json") for p in range(1, a.hammer_processes + 1)]
    if not all(reports):
        raise Fatal(f"bench-admit failed: {gwstack.tail(bench.runs / 'hammer-1.err', 3)}")
    return reports


def part_l(bench: Bench, results: dict) -> None:
    a = bench.args
    log(f"part l: limits on vs off at {a.limits_rate} req/s ({a.duration}s + {a.warmup}s each, {a.repeats} alternating "
        f"pairs); load {loadavg()}")
    bench.warm("warm-limited", "limited", 200, 3)
    off, on = [], []
    for i in range(1, a.repeats + 1):
        off.append(bench.run_rate(f"limits-off-{i}", "gateway", a.limits_rate, a.duration))
        time.sleep(1)
        on.append(bench.run_rate(f"limits-on-{i}", "limited", a.limits_rate, a.duration))
        time.sleep(1)
    log(f"part l: hammer, {a.hammer_processes} processes × {a.hammer_count} admissions on one counter "
        f"(limit {a.hammer_limit})")
    reports = hammer(bench)

    def summary(runs: list[dict]) -> dict:
        return {"p50_ms": r3(median(r.get("p50_ms") for r in runs)), "p99_ms": r3(median(r.get("p99_ms") for r in runs)),
                "p50_ms_each": [r.get("p50_ms") for r in runs], "p99_ms_each": [r.get("p99_ms") for r in runs],
                "achieved_rate": min_present(r.get("achieved_rate") for r in runs),
                "errors": sum(alt(r.get("errors"), 0) for r in runs),
                "non_2xx": sum(alt(r.get("non_2xx"), 0) for r in runs),
                "workers_us_per_req": median(r["cpu"]["workers_us_per_req"] for r in runs)}
    off_s, on_s = summary(off), summary(on)
    cost_p50 = difference(on_s["p50_ms"], off_s["p50_ms"])
    cost_cpu = (None if on_s["workers_us_per_req"] is None or off_s["workers_us_per_req"] is None
                else r1(on_s["workers_us_per_req"] - off_s["workers_us_per_req"]))
    admitted = sum(r["admitted"] for r in reports)
    results["limits"] = {
        "ran": True, "rate": a.limits_rate, "off": off_s, "on": on_s,
        "cost_p50_ms": cost_p50, "cost_p99_ms": difference(on_s["p99_ms"], off_s["p99_ms"]),
        "cost_workers_us_per_req": cost_cpu,
        "target_p50_ms": 0.3,
        "met": cost_p50 is not None and cost_p50 <= 0.3 and on_s["errors"] == 0 and on_s["non_2xx"] == 0,
        "hammer": {"processes": a.hammer_processes, "admissions_each": a.hammer_count, "limit": a.hammer_limit,
                   "admitted": admitted, "refused": sum(r["refused"] for r in reports),
                   "busy_errors": sum(r["busy_errors"] for r in reports),
                   "exact": admitted == min(a.hammer_limit, a.hammer_processes * a.hammer_count),
                   "admissions_per_s": jround(a.hammer_processes * a.hammer_count / max(r["seconds"] for r in reports)),
                   "p50_ms_each": [r3(r["p50_ms"]) for r in reports], "p99_ms_each": [r3(r["p99_ms"]) for r in reports],
                   "max_ms": r3(max(r["max_ms"] for r in reports))}}
    limits = results["limits"]
    log(f"part l: " + jq_str({"cost_p50_ms": limits["cost_p50_ms"], "cost_p99_ms": limits["cost_p99_ms"],
                              "cost_workers_us_per_req": limits["cost_workers_us_per_req"],
                              "hammer": {k: limits["hammer"][k] for k in ("admitted", "busy_errors", "exact", "admissions_per_s")}}))


# --------------------------------------------------------------------------------------------
# p. Overhead per provider: translated gateway path vs the provider's native request, direct.


def part_p(bench: Bench, results: dict) -> None:
    a = bench.args
    log(f"part p: per-provider overhead at {a.provider_rate} req/s for {' '.join(a.provider_list)}; load {loadavg()}")
    results["providers"] = []
    for provider in a.provider_list:
        bench.warm(f"warm-{provider}", f"gw:{provider}", 200, 2)
        pair = bench.pair(f"prov-{provider}", a.provider_rate, a.duration, a.repeats, f"native:{provider}", f"gw:{provider}")
        results["providers"].append({**pair, "provider": provider})


# --------------------------------------------------------------------------------------------
# t. Translation cost in-process.


def part_t(bench: Bench, results: dict) -> None:
    log("part t: translation cost per provider (in-process)")
    out, err = bench.tmp / "translation.json", bench.tmp / "translation.err"
    rc, _ = run_bounded([bench.args.translation_bin, "--json"], out, err, timeout=3600)
    results["translation"] = read_json(out) if rc == 0 else None
    if results["translation"] is None:
        log(f"translation bench failed: {gwstack.tail(err, 3)}")


# --------------------------------------------------------------------------------------------
# h. Cache hits: the seeded entry replayed by the gateway against nginx returning the same bytes.


def nginx_single_quoted(body: bytes) -> str:
    """The body as an nginx single-quoted string: \\ and ' escaped, newlines as \\n."""
    return body.decode().replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")


def cache_usage(bench: Bench) -> dict | None:
    """bench/cache's audit totals as {requests, cache_hits, errors}."""
    result = bench.stack.cli("usage", "--project", "bench/cache", "--by", "project", "--json", check=False)
    try:
        rows = json.loads(result.stdout)
    except ValueError:
        return None
    row = (rows[0] if rows else None) or {}
    return {"requests": alt(row.get("requests"), 0), "cache_hits": alt(row.get("cache_hits"), 0),
            "errors": alt(row.get("errors"), 0)}


def nginx_reload(bench: Bench) -> str | None:
    """nginx -t, then -s reload, of the main stack's nginx; an error message or None."""
    stack = bench.stack
    base = [gwstack.nginx_bin(), "-p", str(stack.prefix), "-c", str(stack.nginx_conf),
            "-e", str(stack.prefix / "logs" / "nginx-startup.log")]
    for extra, what in ((["-t", "-q"], "nginx -t with the static-hit location"), (["-s", "reload"], "nginx reload failed")):
        result = subprocess.run(base + extra, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if result.returncode != 0:
            return f"{what}: {result.stderr.strip()}"
    return None


def seed_cache(bench: Bench) -> bytes:
    """A project of its own (its audit rows are this part's requests only), one MISS, one HIT;
    /static-hit then answers the hit's exact bytes. Returns them; raises Fatal with the reason."""
    stack, a = bench.stack, bench.args
    try:
        stack.cli("project", "create", "bench/cache")
        stack.cli("provider", "set", "bench/cache", "openai", "--base-url", bench.simulator.openai_base_url, input="sim-key\n")
        bench.key_cache = stack.create_key("cache", "bench/cache")["secret"]
    except (gwstack.CommandError, KeyError) as error:
        raise Fatal(f"setup of bench/cache failed: {str(error)[-300:]}") from error
    (bench.tmp / "cache.json").write_text('{"model":"gpt-4o-mini","messages":[{"role":"user","content":'
                                          f'"Cache this answer. [sim words={a.words}]"}}]}}')
    with httpx.Client(timeout=30, trust_env=False) as client:
        answers = []
        for expected, what in (("MISS", "seeding"), ("HIT", "first hit")):
            response = bench.send(client, "gateway-hit")
            x_cache = response.headers.get("x-cache", "")
            if response.status_code != 200 or x_cache != expected:
                raise Fatal(f"{what}: HTTP {response.status_code}, X-Cache '{x_cache}': {response.content[:300]!r}")
            answers.append(response.content)
    seed, hit = answers
    (bench.tmp / "cache-hit.json").write_bytes(hit)
    if seed != hit:
        log("part h: WARNING: the hit's body differs from the seeding answer's")
    if b"$" in hit:
        raise Fatal("the hit's body contains '$', which nginx's return would expand")
    bench.static_hit_conf.write_text("location = /static-hit { default_type application/json; "
                                     f"return 200 '{nginx_single_quoted(hit)}'; }}\n")
    error = nginx_reload(bench)
    if error:
        raise Fatal(error)
    with httpx.Client(timeout=5, trust_env=False) as client:
        try:
            gwstack.wait_until(lambda: bench.send(client, "static-hit").content == hit, timeout=10, interval=0.1,
                               what="/static-hit")
        except TimeoutError as error:
            raise Fatal(f"/static-hit does not answer the hit's bytes after the reload: "
                        f"{bench.send(client, 'static-hit').content[:300]!r}") from error
    log(f"part h: seeded ({len(hit)} bytes); /static-hit answers the same bytes")
    return hit


def hit_step_verdict(run: dict, max_ms: float) -> str:
    if run.get("failed") is True or alt(run.get("errors"), 1) > 0 or alt(run.get("non_2xx"), 1) > 0:
        return "errors or non-2xx answers"
    if alt(run.get("achieved_rate"), 0) < 0.98 * run.get("target_rate", 0):
        return "saturated (achieved rate < 98 % of target)"
    if run.get("p99_ms") is None or run["p99_ms"] > max_ms:
        return f"p99 > {jq_str(max_ms)} ms"
    return "pass"


def part_h(bench: Bench, results: dict) -> None:
    a = bench.args
    log(f"part h: cache hits at {' '.join(map(str, a.hit_rates))} req/s against a static nginx answer of the same bytes, "
        f"then stepping {' '.join(map(str, a.hit_step_rates))}; load {loadavg()}")
    try:
        hit = seed_cache(bench)
    except Fatal as error:
        log(f"part h: {error}")
        results["cache_hit"] = {"ran": False, "error": str(error)}
        return

    sim_before = (bench.sim_stats() or {}).get("requests")
    bench.warm("warm-static", "static-hit", 200, 2)
    bench.warm("warm-hit", "gateway-hit", 200, 2)
    pairs = [bench.pair(f"hit{rate}", rate, a.duration, a.repeats, "static-hit", "gateway-hit") for rate in a.hit_rates]

    # Highest hit rate held: p99 ≤ HIT_MAX_P99_MS, no errors, no non-2xx, ≥ 98 % of the target rate.
    steps, held, stop_reason = [], None, "all step rates held"
    for rate in a.hit_step_rates:
        run = bench.run_rate(f"hitstep{rate}", "gateway-hit", rate, a.hit_step_duration)
        steps.append(run)
        verdict = hit_step_verdict(run, a.hit_max_p99_ms)
        if verdict != "pass":
            stop_reason = f"{verdict} at {rate} req/s"
            log(f"part h: step {rate} req/s: {verdict}; stopping")
            break
        held = rate

    # Every answer a hit: the simulator saw nothing, and the project's audit rows (written
    # asynchronously: wait until the count settles, bounded) are all hits but the seed.
    sim_after = (bench.sim_stats() or {}).get("requests")
    usage, previous = None, None
    for _ in range(30):
        usage = cache_usage(bench)
        if usage is not None and usage == previous:
            break
        previous = usage
        time.sleep(1)
    usage = usage or {"requests": 0, "cache_hits": 0, "errors": 0}

    rates = [{"rate": p["rate"], "repeats": p["repeats"], "static": p["direct"], "hit": p["gateway"],
              "added_p50_ms": p["overhead_p50_ms"], "added_p99_ms": p["overhead_p99_ms"],
              "runs": {"static": p["runs"]["direct"], "hit": p["runs"]["gateway"]}} for p in pairs]
    sim_requests = None if sim_before is None or sim_after is None else sim_after - sim_before
    check = {"sim_requests_during_hit_runs": sim_requests, "audit": usage,
             "non_hit_requests": usage["requests"] - usage["cache_hits"]}
    all_hits = sim_requests == 0 and check["non_hit_requests"] == 1 and usage["errors"] == 0
    at_1000 = next((r for r in rates if r["rate"] == 1000), None)
    results["cache_hit"] = {
        "ran": True, "ttl_s": 3600, "body_bytes": len(hit),
        "nginx_static": "location = /static-hit { default_type application/json; return 200 <the hit body>; } in the same server",
        "verification": {**check, "all_hits": all_hits,
                         "how": "deploxa-loadgen does not read headers: simulator requests during the runs must be 0, "
                                "and the bench/cache audit rows all cache hits but the seeding MISS"},
        "rates": rates,
        "target_1000": None if at_1000 is None else {
            "added_p99_ms": at_1000["added_p99_ms"], "added_p50_ms": at_1000["added_p50_ms"], "target_added_p99_ms": 1,
            "met": (at_1000["added_p99_ms"] is not None and at_1000["added_p99_ms"] <= 1 and at_1000["hit"]["errors"] == 0
                    and at_1000["hit"]["non_2xx"] == 0 and all_hits)},
        "max_rate": {"max_p99_ms": a.hit_max_p99_ms, "highest_rate_held": held, "stop_reason": stop_reason,
                     "steps": [{"rate": s.get("target_rate"), **{f: s.get(f) for f in (
                         "achieved_rate", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "errors", "non_2xx",
                         "status_counts", "error_counts", "cpu")}} for s in steps]}}
    cache = results["cache_hit"]
    log("part h: " + jq_str({
        "added": [{"rate": r["rate"], "added_p50_ms": r["added_p50_ms"], "added_p99_ms": r["added_p99_ms"],
                   "hit_p99": r["hit"]["p99_ms"], "static_p99": r["static"]["p99_ms"]} for r in rates],
        "held": held, "verification": {k: v for k, v in cache["verification"].items() if k != "how"}}))


# --------------------------------------------------------------------------------------------
# w. Closed loop: as many requests as CLOSED_CONNECTIONS connections can complete (wrk).


def closed_run(bench: Bench, name: str, path: str) -> dict:
    a = bench.args
    target = bench.target(path)
    headers = [("Content-Type", "application/json")] + [tuple(h.split(": ", 1)) for h in target.headers]
    script = write_wrk_script(bench.tmp / f"closed-{path}.lua", headers, target.body.read_bytes())
    wrk = run_wrk(script, target.url, a.closed_connections, a.duration, bench.runs / f"{name}.closed.txt")
    run = {"path": path, "rps": wrk["rps"], "p50_ms": wrk["p50_ms"], "p99_ms": wrk["p99_ms"],
           "non2xx": wrk["non2xx"], "errors": wrk["errors"]}
    write_json(bench.runs / f"{name}.closed.json", run)
    log(f"{name}: {jq_str(run)}")
    return run


def part_w(bench: Bench, results: dict) -> None:
    a = bench.args
    if shutil.which("wrk") is None:
        log("part w skipped: wrk is not installed (apt-get install wrk)")
        return
    log(f"part w: closed loop, {a.closed_connections} connections, {a.duration}s each, direct then gateway × {a.repeats}; "
        f"load {loadavg()}")
    runs = []
    for i in range(1, a.repeats + 1):
        runs.append(closed_run(bench, f"closed-direct-{i}", "direct"))
        time.sleep(1)
        runs.append(closed_run(bench, f"closed-gateway-{i}", "gateway"))
        time.sleep(1)

    def summary(path: str) -> dict:
        mine = [r for r in runs if r["path"] == path]
        return {"runs": len(mine), "rps_each": [r["rps"] for r in mine], "rps": median(r["rps"] for r in mine),
                "p50_ms": median(r["p50_ms"] for r in mine), "p99_ms": median(r["p99_ms"] for r in mine),
                "non2xx": sum(r["non2xx"] for r in mine), "errors": sum(r["errors"] for r in mine)}
    closed = {"ran": True, "connections": a.closed_connections, "direct": summary("direct"), "gateway": summary("gateway")}
    results["closed"] = closed
    log("part w: " + jq_str({"direct_rps": closed["direct"]["rps"], "gateway_rps": closed["gateway"]["rps"],
                             "gateway_p50_ms": closed["gateway"]["p50_ms"], "gateway_p99_ms": closed["gateway"]["p99_ms"]}))


# --------------------------------------------------------------------------------------------
# g. The shared database: SQLite (before, after) against PostgreSQL (one node, G_NODES nodes).


def part_g(args, tmp: Path, results: dict) -> None:
    import bench_postgres
    if not os.access(args.loadgen_bin, os.X_OK):
        raise Fatal(f"part g: {args.loadgen_bin} missing (run without SKIP_BUILD=1)")
    args.before_bin = str(Path(args.before_bin).resolve()) if args.before_bin else None
    log(f"part g: SQLite before ({args.before_bin}) and after ({args.gateway_bin}) against PostgreSQL, 1 and "
        f"{args.g_nodes} nodes; load {loadavg()}")
    document = bench_postgres.run_part_g(args, tmp / "postgres")
    stem = str(args.results)[:-5] if str(args.results).endswith(".json") else str(args.results)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    write_json(Path(stem + "-g.json"), document)
    results["postgres"] = document
    names = list(document["deployments"])
    lines = ["part g (ms; overhead = median of the deployment − median of direct; [min, max] over the repeats)"]
    for entry in document["open_loop"]:
        for name in names:
            d = entry["deployments"][name]
            lines.append(f"  {entry['rate']:>5} req/s  {name:<14} overhead p50 {jq_str(d['overhead_p50_ms']):>6} "
                         f"{jq_str(d['overhead_p50_spread'])}  p99 {jq_str(d['overhead_p99_ms']):>6} "
                         f"{jq_str(d['overhead_p99_spread'])}  errors {d['errors']} non2xx {d['non_2xx']}")
    for name, s in document["closed_loop"]["summary"].items():
        lines.append(f"  closed {document['closed_loop']['connections']} conns  {name:<14} {jq_str(s['rps']):>8} req/s "
                     f"{jq_str(s['rps_each'])}  p50 {jq_str(s['p50_ms'])} p99 {jq_str(s['p99_ms'])}")
    for name, s in document["admissions"]["summary"].items():
        lines.append(f"  admissions  {name:<20} {jq_str(s['admissions_per_s']):>7}/s {jq_str(s['admissions_per_s_each'])} "
                     f"exact {jq_str(s['all_exact'])}")
    lines.append("  targets " + jq_str(document["targets"]))
    print("\n".join(lines), flush=True)


# --------------------------------------------------------------------------------------------
# Evidence: the logs of the run next to the results, and counts of their error-like lines.


def gateway_health(bench: Bench | None, state: dict, results_path: Path) -> None:
    base = str(results_path)[:-5] if str(results_path).endswith(".json") else str(results_path)
    state.update(serve_lines=0, serve_err_lines=0, nginx_err_lines=0)
    if bench is None or bench.stack is None:
        return
    serve_log = bench.stack.gateway_log.read_text(errors="replace").splitlines() if bench.stack.gateway_log.exists() else []
    nginx_log = (bench.stack.nginx_error_log.read_text(errors="replace").splitlines()
                 if bench.stack.nginx_error_log.exists() else [])
    Path(base + "-serve.log").write_text("".join(line + "\n" for line in serve_log[-300:]))
    Path(base + "-nginx-error.log").write_text("".join(line + "\n" for line in nginx_log[-300:]))
    state["serve_lines"] = len(serve_log)
    state["serve_err_lines"] = len([l for l in serve_log if re.search(r"error|critical|crash|exited|signal", l, re.I)])
    state["nginx_err_lines"] = len([l for l in nginx_log if re.search(r"\[(error|crit|alert|emerg)\]", l)])


# --------------------------------------------------------------------------------------------


class Interrupted(BaseException):
    pass


def on_signal(signum, frame) -> None:
    raise Interrupted()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("nginx", "ss"):
        if shutil.which(tool) is None and not os.access(f"/usr/sbin/{tool}", os.X_OK):
            log(f"FATAL: missing tool: {tool}")
            return 1
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    state = source_state()
    parts = [p for p in args.parts if p in ALL_PARTS]
    needs_main_stack = any(p in PARTS_ON_THE_MAIN_STACK for p in parts)
    bench: Bench | None = None
    tmp: Path | None = None
    results = bench_report.empty_sections()
    try:
        if not args.skip_build:
            build(args)
        needed = [args.gateway_bin] + ([args.loadgen_bin, args.translation_bin] if needs_main_stack else [])
        missing = [path for path in needed if not os.access(path, os.X_OK)]
        if missing:
            raise Fatal(f"binaries missing: {' '.join(missing)} (run without SKIP_BUILD=1)")
        os.environ["DEPLOXA_GATEWAY_BIN"] = args.gateway_bin  # gwstack reads this one
        state["binary_built"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(args.gateway_bin)))

        tmp = Path(tempfile.mkdtemp(prefix="deploxa-bench.", dir="/tmp"))
        tmp.chmod(0o755)  # nginx's workers (nobody when started as root) must reach the socket
        state.update(load_start=loadavg(), workers_at_start="", idle_cpu=None)
        if needs_main_stack:
            bench = Bench(args, tmp)
            bench.start()
            measure_idle(bench, state)
        wait_quiet(args)

        for part in parts:
            if part == "a":
                part_a(bench, results)
            elif part == "b":
                part_b(bench, results)
            elif part == "c":
                part_c(bench, results, state)
            elif part == "l":
                part_l(bench, results)
            elif part == "p":
                part_p(bench, results)
            elif part == "t":
                part_t(bench, results)
            elif part == "h":
                part_h(bench, results)
            elif part == "w":
                part_w(bench, results)
            elif part == "s":
                results["static"] = static_closed_loop.part_s(args, tmp / "static")
            elif part == "g":
                part_g(args, tmp, results)

        state["load_end"] = loadavg()
        state["workers_at_end"] = pid_list(bench.worker_pids()) if bench else ""
        args.results.parent.mkdir(parents=True, exist_ok=True)
        gateway_health(bench, state, args.results)
        document = bench_report.build_results(args, state, results)
        write_json(args.results, document)
        bench_report.print_summary(args, state, document)
        return 0
    except Fatal as error:
        log(f"FATAL: {error}")
        return 1
    except (KeyboardInterrupt, Interrupted):
        log("interrupted")
        return 130
    except Exception:  # noqa: BLE001 - reported, then everything started is stopped
        log(f"FATAL: {traceback.format_exc()}")
        return 1
    finally:
        if bench is not None:
            bench.stop()
        static_closed_loop.stop_all()
        kept = [tmp] + (list(gwstack.TEMP_DIRS) if tmp else [])
        for path in kept:
            if path is None or not path.exists():
                continue
            if args.keep_tmp:
                log(f"kept {path}")
            else:
                shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

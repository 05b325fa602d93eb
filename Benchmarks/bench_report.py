"""The results document of run_benchmarks.py and its summary table (the same fields and lines
the bash version wrote)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from bench_common import alt, jq_str, jround, le

REPO = Path(__file__).resolve().parents[1]

NGINX_NOTE = ("nginx/nginx.local.conf.template (worker_processes 1), access_log off, + /direct/ proxy location "
              "(upstream keepalive 256, proxy_buffering off), + /static-hit return location (part h)")


def empty_sections() -> dict:
    """What each part leaves when it does not run."""
    return {"overhead": [], "steps": {"ran": False}, "memory": {"ran": False}, "cpu": None, "closed": {"ran": False},
            "limits": {"ran": False}, "providers": [], "translation": None, "cache_hit": {"ran": False},
            "static": {"ran": False}}


# --------------------------------------------------------------------------------------------
# The machine and the build


def _command_line(cmd: list[str], stream: str = "stdout") -> str:
    if shutil.which(cmd[0]) is None and not os.access(f"/usr/sbin/{cmd[0]}", os.X_OK):
        return ""
    result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    text = result.stdout if stream == "stdout" else result.stderr
    return text.splitlines()[0] if text.strip() else ""


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    mem_kb = int(re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M).group(1))
    uname = os.uname()
    return {"kernel": f"{uname.sysname} {uname.release} {uname.machine}", "cpu": model.group(1) if model else "",
            "cores": os.cpu_count(), "mem_total_mb": jround(mem_kb / 1024),
            "swift": _command_line(["swift", "--version"]),
            "nginx": _command_line(["nginx", "-v"], "stderr").replace("nginx version: ", "", 1),
            "sqlite": _command_line(["pkg-config", "--modversion", "sqlite3"]) or "unknown"}


def sources_changed_after(binary: str) -> int:
    """Files under Sources (and Package.swift) newer than the binary."""
    built = os.path.getmtime(binary)
    paths = [REPO / "Package.swift"] + [Path(d) / f for d, _, files in os.walk(REPO / "Sources") for f in files]
    return len([p for p in paths if p.is_file() and p.stat().st_mtime > built])


# --------------------------------------------------------------------------------------------
# The document


def _gateway_clean(section: dict) -> bool:
    return section["errors"] == 0 and section["non_2xx"] == 0


def build_results(args, state: dict, r: dict) -> dict:
    at_500 = next((p for p in r["overhead"] if p["rate"] == 500), None)
    memory, cache = r["memory"], r["cache_hit"]
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "source": {"git_head_before_build": state["git_rev"],
                   "uncommitted_files_in_sources_before_build": state["git_dirty"],
                   "gateway_binary_built": state["binary_built"],
                   "source_files_changed_after_build": sources_changed_after(args.gateway_bin)},
        "loadavg": {"start": state["load_start"], "end": state["load_end"]},
        "config": {"workers": args.workers, "duration_s": args.duration, "warmup_s": args.warmup,
                   "step_duration_s": args.step_duration, "loadgen_connections": args.connections,
                   "loadgen_threads": args.loadgen_threads, "sim_words": args.words, "parts": " ".join(args.parts),
                   "nginx": NGINX_NOTE},
        "targets": {
            "overhead_500": None if at_500 is None else {
                "p50_ms": at_500["overhead_p50_ms"], "p99_ms": at_500["overhead_p99_ms"],
                "p50_target_ms": 1, "p99_target_ms": 3,
                "met": le(at_500["overhead_p50_ms"], 1) and le(at_500["overhead_p99_ms"], 3)
                and _gateway_clean(at_500["gateway"])},
            "streams_1000": None if not memory["ran"] else {
                "workers_rss_mb": memory["rss_mb"]["workers_streams_open"], "target_mb": 400,
                "established": memory["loadgen"].get("established"),
                "met": memory["rss_mb"]["workers_streams_open"] < 400
                and memory["loadgen"].get("established") == memory["streams"]},
            "cache_hit_1000": cache["target_1000"] if cache["ran"] else None},
        "limits": r["limits"],
        "providers": [{"provider": p["provider"], "rate": p["rate"], "native": p["direct"], "gateway": p["gateway"],
                       "overhead_p50_ms": p["overhead_p50_ms"], "overhead_p99_ms": p["overhead_p99_ms"],
                       "met": le(p["overhead_p50_ms"], 1) and le(p["overhead_p99_ms"], 3) and _gateway_clean(p["gateway"])}
                      for p in r["providers"]],
        "translation": r["translation"],
        "cache_hit": cache,
        "closed_loop": r["closed"],
        "closed_loop_static": r["static"],
        "gateway_binary": args.gateway_bin,
        "overhead": r["overhead"], "cpu_per_request": r["cpu"], "idle_cpu": state["idle_cpu"], "memory": memory,
        "max_rate": r["steps"],
        "gateway_health": {"worker_pids_start": state["workers_at_start"], "worker_pids_end": state["workers_at_end"],
                           "serve_log_lines": state["serve_lines"], "serve_log_error_like_lines": state["serve_err_lines"],
                           "nginx_error_log_error_lines": state["nginx_err_lines"]},
    }


# --------------------------------------------------------------------------------------------
# The summary table


def _row(widths: str, values: list) -> str:
    """printf-style columns: widths like "-9 9 9" (negative = left-aligned)."""
    cells = []
    for width, value in zip(widths.split(), values):
        text = value if isinstance(value, str) else jq_str(value)
        cells.append(text.ljust(-int(width)) if width.startswith("-") else text.rjust(int(width)))
    return " ".join(cells)


def _errors(section: dict):
    return alt(section.get("errors"), 0) + alt(section.get("non_2xx"), 0)


def _ratio(value: float, baseline: float) -> str:
    return jq_str(jround(value / baseline * 10) / 10)


def print_summary(args, state: dict, d: dict) -> None:
    out = print
    out()
    out(f"Deploxa gateway benchmarks — {d['date']}")
    m = d["machine"]
    out(f"machine: {m['cores']} cores {m['cpu']}, {jq_str(m['mem_total_mb'])} MB, {m['kernel']}")
    out(f"workers: {args.workers}   load average: start {state['load_start']}, end {state['load_end']}")
    out()
    if d["overhead"]:
        out(f"a. overhead (open loop, {args.duration}s measured + {args.warmup}s warm-up, medians of {args.repeats} "
            "alternating runs, latency in ms)")
        widths = "-9 9 9 9 9 9 9 10 7"
        out(_row(widths, ["rate", "dir_p50", "dir_p99", "gw_p50", "gw_p99", "ovh_p50", "ovh_p99", "gw_achvd", "gw_err"]))
        for p in d["overhead"]:
            out(_row(widths, [p["rate"], p["direct"]["p50_ms"], p["direct"]["p99_ms"], p["gateway"]["p50_ms"],
                              p["gateway"]["p99_ms"], p["overhead_p50_ms"], p["overhead_p99_ms"],
                              p["gateway"]["achieved_rate"], _errors(p["gateway"])]))
        out()
    cpu = d["cpu_per_request"]
    if cpu is not None:
        out(f"d. CPU per request at {args.cpu_rate} req/s (µs; incl. warm-up requests)")
        widths = "-8 8 8 8 10 8"
        out(_row(widths, ["path", "nginx", "workers", "master", "simulator", "loadgen"]))
        for path in ("direct", "gateway"):
            c = cpu[path]
            out(_row(widths, [path, c["nginx_us_per_req"], c["workers_us_per_req"], c["master_us_per_req"],
                              c["simulator_us_per_req"], c["loadgen_us_per_req"]]))
        threads = sorted(alt(cpu.get("gateway_worker_threads_us_per_req"), {}).items(), key=lambda kv: -kv[1])
        out("   gateway workers by thread (µs/request): "
            + ", ".join(f"{name} {jq_str(value)}" for name, value in threads if value > 0))
        out()
    mem = d["memory"]
    if mem["ran"]:
        rss, lg, base = mem["rss_mb"], mem["loadgen"], mem["direct_baseline"]

        def q(section: dict, field: str) -> str:
            return jq_str(alt(section.get(field), "?"))
        out(f"c. memory with {args.streams} open streams (RSS, MB)")
        out(f"   workers: idle fresh {jq_str(rss['workers_idle_fresh'])}, idle before {jq_str(rss['workers_idle_before'])}, "
            f"streams open {jq_str(rss['workers_streams_open'])} (peak HWM {jq_str(rss['workers_peak_hwm'])}), "
            f"5 s after close {jq_str(rss['workers_5s_after_close'])}")
        out(f"   master: {jq_str(rss['master_idle_before'])} → {jq_str(rss['master_streams_open'])}   "
            f"simulator: {jq_str(rss['simulator_idle_before'])} → {jq_str(rss['simulator_streams_open'])}   "
            f"nginx: {jq_str(rss['nginx_idle_before'])} → {jq_str(rss['nginx_streams_open'])}")
        out(f"   streams: established {q(lg, 'established')}, first_byte {q(lg, 'first_byte')}, "
            f"completed {q(lg, 'completed')}, held to end {q(lg, 'held_to_end')}, errors {q(lg, 'errors')}, "
            f"status {jq_str(alt(lg.get('status_counts'), {}))}, ttfb p99 {q(lg, 'ttfb_p99_ms')} ms")
        out(f"   direct baseline: established {q(base, 'established')}, ttfb p50 {q(base, 'ttfb_p50_ms')} ms, "
            f"p99 {q(base, 'ttfb_p99_ms')} ms; gateway ttfb p50 {q(lg, 'ttfb_p50_ms')} ms")
        out(f"   simulator in-flight while open: {q(mem['simulator_stats_while_open'] or {}, 'in_flight')}, "
            f"5 s after close: {q(mem['simulator_stats_5s_after'] or {}, 'in_flight')}")
        out()
    steps = d["max_rate"]
    if steps["ran"]:
        out(f"b. highest rate with p99 overhead < {jq_str(args.max_p99_overhead_ms)} ms and no errors: "
            f"{jq_str(alt(steps['highest_passing_rate'], 'none'))} req/s ({steps['stop_reason']})")
        widths = "-9 9 9 9 9 10 7"
        out(_row(widths, ["rate", "dir_p99", "gw_p50", "gw_p99", "ovh_p99", "gw_achvd", "gw_err"]))
        for p in steps["steps"]:
            out(_row(widths, [p["rate"], p["direct"]["p99_ms"], p["gateway"]["p50_ms"], p["gateway"]["p99_ms"],
                              p["overhead_p99_ms"], p["gateway"]["achieved_rate"], _errors(p["gateway"])]))
        out()
    if d["providers"]:
        out(f"p. overhead per provider at {args.provider_rate} req/s (gateway with X-AI-Provider vs the provider's native "
            f"request straight to the simulator; medians of {args.repeats}, ms)")
        widths = "-10 9 9 9 9 9 9 7 6"
        out(_row(widths, ["provider", "nat_p50", "nat_p99", "gw_p50", "gw_p99", "ovh_p50", "ovh_p99", "gw_err", "met"]))
        for p in d["providers"]:
            out(_row(widths, [p["provider"], p["native"]["p50_ms"], p["native"]["p99_ms"], p["gateway"]["p50_ms"],
                              p["gateway"]["p99_ms"], p["overhead_p50_ms"], p["overhead_p99_ms"], _errors(p["gateway"]),
                              p["met"]]))
        out()
    if d["translation"] is not None:
        out("t. translation cost per request, in-process (µs; × = against JSON parse+serialise of the same bytes)")
        widths = "-10 16 18 22 10"
        out(_row(widths, ["provider", "request", "response", "stream_500_chunks", "ns/chunk"]))
        for t in d["translation"]:
            out(_row(widths, [t["provider"],
                              f"{jq_str(t['request_us'])} (×{_ratio(t['request_us'], t['request_baseline_us'])})",
                              f"{jq_str(t['response_us'])} (×{_ratio(t['response_us'], t['response_baseline_us'])})",
                              f"{jq_str(t['stream_us'])} (×{_ratio(t['stream_us'], t['stream_baseline_us'])})",
                              t["stream_ns_per_chunk"]]))
        out()
    limits = d["limits"]
    if limits["ran"]:
        off, on, h = limits["off"], limits["on"], limits["hammer"]
        out(f"l. limits on vs off at {args.limits_rate} req/s (medians of {args.repeats} alternating runs, ms) and the "
            "multi-process hammer")
        out(f"   off: p50 {jq_str(off['p50_ms'])} p99 {jq_str(off['p99_ms'])} (workers {jq_str(off['workers_us_per_req'])} "
            f"µs CPU/req)   on: p50 {jq_str(on['p50_ms'])} p99 {jq_str(on['p99_ms'])} (workers "
            f"{jq_str(on['workers_us_per_req'])} µs CPU/req), errors {jq_str(on['errors'])} non-2xx {jq_str(on['non_2xx'])}")
        out(f"   cost of limits: p50 {jq_str(limits['cost_p50_ms'])} ms, p99 {jq_str(limits['cost_p99_ms'])} ms, "
            f"{jq_str(limits['cost_workers_us_per_req'])} µs worker CPU per request")
        out(f"   hammer: {h['processes']} × {h['admissions_each']} admissions, limit {h['limit']}: admitted {h['admitted']}, "
            f"refused {h['refused']}, SQLITE_BUSY {h['busy_errors']}, exact {jq_str(h['exact'])}; "
            f"{jq_str(h['admissions_per_s'])} admissions/s, p50 {jq_str(h['p50_ms_each'])} ms, "
            f"p99 {jq_str(h['p99_ms_each'])} ms")
        out()
    cache = d["cache_hit"]
    if cache["ran"]:
        out(f"h. cache hits vs nginx returning the same bytes (/static-hit), medians of {args.repeats} alternating runs, ms")
        widths = "-9 9 9 9 9 9 9 10 7"
        out(_row(widths, ["rate", "st_p50", "st_p99", "hit_p50", "hit_p99", "add_p50", "add_p99", "hit_achvd", "hit_err"]))
        for h in cache["rates"]:
            out(_row(widths, [h["rate"], h["static"]["p50_ms"], h["static"]["p99_ms"], h["hit"]["p50_ms"],
                              h["hit"]["p99_ms"], h["added_p50_ms"], h["added_p99_ms"], h["hit"]["achieved_rate"],
                              _errors(h["hit"])]))
        v, mr = cache["verification"], cache["max_rate"]
        out(f"   every answer a hit: {jq_str(v['all_hits'])} (simulator requests during the runs "
            f"{jq_str(v['sim_requests_during_hit_runs'])}, audit rows {jq_str(v['audit']['requests'])}, of which cache hits "
            f"{jq_str(v['audit']['cache_hits'])}, errors {jq_str(v['audit']['errors'])})")
        out(f"   highest hit rate held with p99 ≤ {jq_str(mr['max_p99_ms'])} ms and no errors: "
            f"{jq_str(alt(mr['highest_rate_held'], 'none'))} req/s ({mr['stop_reason']})")
        for s in mr["steps"]:
            out(f"     {jq_str(s['rate'])} req/s: achieved {jq_str(s['achieved_rate'])}, p50 {jq_str(s['p50_ms'])} ms, "
                f"p99 {jq_str(s['p99_ms'])} ms, errors {jq_str(s['errors'])}, non-2xx {jq_str(s['non_2xx'])}")
        out()
    elif cache.get("error"):
        out(f"h. cache hits: not measured: {cache['error']}")
        out()
    static = d["closed_loop_static"]
    if static["ran"]:
        print_static(static)
        out()
    out("targets:")
    t = d["targets"]
    o = t["overhead_500"]
    out("   overhead at 500 req/s (p50 ≤ 1 ms, p99 ≤ 3 ms): " + (
        "not run" if o is None else
        f"p50 {jq_str(o['p50_ms'])} ms, p99 {jq_str(o['p99_ms'])} ms → {'MET' if o['met'] else 'NOT MET'}"))
    s = t["streams_1000"]
    out("   1,000 streams under 400 MB worker RSS: " + (
        "not run" if s is None else
        f"{jq_str(s['workers_rss_mb'])} MB, {jq_str(s['established'])} established → {'MET' if s['met'] else 'NOT MET'}"))
    out(f"   limits cost ≤ 0.3 ms p50 at {jq_str(alt(limits.get('rate'), '-'))} req/s: " + (
        f"{jq_str(limits['cost_p50_ms'])} ms → {'MET' if limits['met'] else 'NOT MET'}" if limits["ran"] else "not run"))
    c = t["cache_hit_1000"]
    out("   cache hit adds ≤ 1 ms p99 at 1,000 req/s: " + (
        "not run" if c is None else f"{jq_str(c['added_p99_ms'])} ms → {'MET' if c['met'] else 'NOT MET'}"))
    out(f"gateway: workers [{state['workers_at_start']}] at start, [{state['workers_at_end']}] at end; serve log "
        f"{state['serve_lines']} lines ({state['serve_err_lines']} error-like); nginx error log {state['nginx_err_lines']} "
        "error lines")
    out(f"results: {args.results}")


def print_static(static: dict) -> None:
    """Part s: one row per implementation, then the ratios."""
    connections = static["connections"]
    print(f"s. closed loop against a static nginx upstream (wrk -t1, {static['duration_s']}s per run, "
          f"{static['workers']} worker processes; CPU and context switches: the workers', per request)")
    widths = "-10 9 9 9 9 9 11 11 11 11 7"
    print(_row(widths, ["impl", f"c{connections}_rps", f"c{connections}_p50", f"c{connections}_p99", "c1_p50", "c1_p99",
                        f"cpu_us_c{connections}", "cpu_us_c1", f"csw_c{connections}", "csw_c1", "non2xx"]))
    for name, runs in static["runs"].items():
        many, one = runs["many"], runs["one"]
        print(_row(widths, [name, many["rps"], many["p50_ms"], many["p99_ms"], one["p50_ms"], one["p99_ms"],
                            many["workers_cpu_us_per_req"], one["workers_cpu_us_per_req"],
                            many["workers_ctx_switches_per_req"], one["workers_ctx_switches_per_req"],
                            many["non2xx"] + many["errors"] + one["non2xx"] + one["errors"]]))
    ratios = static.get("ratios")
    if ratios:
        print(f"   ratio gateway/prototype: throughput at {connections} connections {jq_str(ratios['rps_many'])}, "
              f"p50 at 1 connection {jq_str(ratios['p50_one'])}, p99 at 1 connection {jq_str(ratios['p99_one'])}, "
              f"worker CPU per request {jq_str(ratios['cpu_many'])} ({connections}) / {jq_str(ratios['cpu_one'])} (1), "
              f"context switches per request {jq_str(ratios['csw_many'])} ({connections}) / {jq_str(ratios['csw_one'])} (1)")
    elif static.get("prototype_error"):
        print(f"   prototype: not measured: {static['prototype_error']}")

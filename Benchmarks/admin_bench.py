#!/usr/bin/env python3
"""The admin side on a big audit log: does it stay fast, and does it leave the data plane alone?

    python3 Benchmarks/admin_bench.py [--rows 10000000] [--days 90] [--reuse PATH] …
    python3 Benchmarks/admin_bench.py --rows 200000          # a quick run (a minute or two)

1. Generates ROWS audit rows spread over the last DAYS days into a fresh database (`migrate`,
   then orgs, projects and keys through the CLI; the rows themselves with python's sqlite3 in
   large transactions, `synchronous=OFF` and audit_log's secondary indexes dropped during the
   load and rebuilt after it), then times `rollup rebuild`. `--reuse PATH` keeps that database
   (and a PATH.meta.json describing it) and uses it again when ROWS and DAYS match. Every run
   works on a copy, so the cached file never gains the run's own rows.
2. Starts the simulator, `serve` (WORKERS workers) and nginx with Tests/e2e/gwstack.py on the
   copy, and creates an installation-wide admin token.
3. Read latencies, each READS times after 3 warm-ups (p50/p95/max, target < 200 ms):
   usage by model over 30 days, /dashboard, an audit page of 50 rows and the 5th page following
   next_cursor, /dashboard/requests; and, beyond the target list, the heaviest one-click reads
   (usage grouped by user over 30 days, /dashboard?range=30d with and without group=user).
4. The whole audit log exported as CSV (curl → a pipe counting lines): rows/s (target
   ≥ 200,000) and the RSS of every worker sampled every 0.5 s (start, max, end).
5. Data-plane cost of admin work: open loop (deploxa-loadgen rate) at RATE req/s, non-streamed
   gpt-4o chat through nginx with a gateway key, (a) alone and (b) while full CSV exports run in
   a loop and /dashboard is reloaded every second; a, b alternating REPEATS times. The harness's
   nginx has no location straight to the simulator, so absolute p50/p99 are reported, and the
   ratio b/a of the medians (target: p99 within 20 %).
6. Table size: the same load against a second stack on an empty database, alternating with the
   big one REPEATS times; ratio big/empty of p50 and p99 (target: the same).

Prints a summary and writes Benchmarks/results/admin/latest.json (`--out`). Binaries:
GATEWAY_BIN or DEPLOXA_GATEWAY_BIN (default: .build/release/deploxa-gateway, else the debug
one), LOADGEN_BIN (default: deploxa-loadgen next to the gateway binary). Needs nginx, curl and
httpx (when this python lacks httpx, the script re-runs itself with .build/e2e-venv/bin/python,
the e2e suite's virtualenv: `bash Tests/e2e/run.sh --co -q` creates it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import resource
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_PYTHON = REPO / ".build" / "e2e-venv" / "bin" / "python"

try:
    import httpx  # noqa: F401 - gwstack needs it
except ImportError:
    if VENV_PYTHON.exists() and not os.environ.get("ADMIN_BENCH_REEXEC"):
        os.environ["ADMIN_BENCH_REEXEC"] = "1"
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])
    sys.exit("admin_bench: needs httpx (pip install httpx, or run `bash Tests/e2e/run.sh --co -q` once "
             "to create .build/e2e-venv)")

sys.path.insert(0, str(REPO / "Tests" / "e2e"))

DAY_MS = 86_400_000
T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f}s] {message}", flush=True)


# --------------------------------------------------------------------------------------------
# Binaries


def resolve_binaries() -> tuple[str, str]:
    gateway = os.environ.get("GATEWAY_BIN") or os.environ.get("DEPLOXA_GATEWAY_BIN")
    if not gateway:
        release = REPO / ".build" / "release" / "deploxa-gateway"
        gateway = str(release if release.exists() else REPO / ".build" / "debug" / "deploxa-gateway")
    loadgen = os.environ.get("LOADGEN_BIN") or str(Path(gateway).parent / "deploxa-loadgen")
    for path in (gateway, loadgen):
        if not os.access(path, os.X_OK):
            sys.exit(f"admin_bench: missing binary {path} (swift build -c release; or set GATEWAY_BIN / LOADGEN_BIN)")
    # gwstack reads this one.
    os.environ["DEPLOXA_GATEWAY_BIN"] = gateway
    return gateway, loadgen


def run_cli(gateway: str, db: Path, *args: str, timeout: float = 3600, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([gateway, "--db", str(db), *args], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"deploxa-gateway {' '.join(args)} exited {result.returncode}: {result.stderr.strip()[-800:]}")
    return result


# --------------------------------------------------------------------------------------------
# 1. The data set

ORG_NAMES = ["acme", "globex", "initech", "umbrella", "hooli"]
PROJECT_NAMES = ["web", "mobile", "batch", "support"]
# (provider, model, share of requests)
MODELS = [
    ("openai", "gpt-4o", 18), ("openai", "gpt-4o-mini", 22), ("openai", "o1-mini", 3), ("openai", "gpt-3.5-turbo", 4),
    ("anthropic", "claude-sonnet-4", 14), ("anthropic", "claude-haiku-4", 9), ("anthropic", "claude-opus-4", 2),
    ("google", "gemini-2.0-flash", 10), ("google", "gemini-1.5-pro", 4),
    ("mistral", "mistral-large", 5), ("mistral", "codestral", 4),
    ("cohere", "command-r-plus", 5),
]
# (status, error code, share of errors)
ERRORS = [(429, "rate_limit_exceeded", 40), (502, "upstream_error", 20), (500, "upstream_error", 10),
          (503, "provider_unavailable", 10), (400, "invalid_request_error", 12), (504, "upstream_timeout", 8)]
ERROR_RATE, CACHE_HIT_RATE, STREAM_RATE, FALLBACK_RATE, UNPRICED_RATE, NO_USER_RATE = 0.03, 0.10, 0.20, 0.01, 0.003, 0.15
INSERT_SQL = """INSERT INTO audit_log (request_id, time_ms, method, route, org_id, project_id, key_id, user, provider,
    model_requested, model_served, status, error_code, prompt_tokens, completion_tokens, cached_tokens, cost_usd,
    latency_ms, upstream_latency_ms, ttft_ms, cache_hit, stream, attempts_json, reasoning_tokens, cache_write_tokens)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""


def zipf_cumulative(n: int, s: float = 1.0) -> list[float]:
    total, cumulative = 0.0, []
    for i in range(n):
        total += 1.0 / (i + 1) ** s
        cumulative.append(total)
    return cumulative


def create_tenants(gateway: str, db: Path, keys: int) -> list[tuple[str, int, int]]:
    """5 orgs × 4 projects and `keys` keys spread over them, through the CLI; (key id, project id, org id)."""
    for org in ORG_NAMES:
        run_cli(gateway, db, "org", "create", org)
        for project in PROJECT_NAMES:
            run_cli(gateway, db, "project", "create", f"{org}/{project}")
    slugs = [f"{org}/{project}" for org in ORG_NAMES for project in PROJECT_NAMES]
    for i in range(keys):
        run_cli(gateway, db, "key", "create", slugs[i % len(slugs)], "--name", f"key-{i:03d}", "--json")
    with sqlite3.connect(db) as con:
        return con.execute("SELECT k.id, p.id, p.org_id FROM gateway_keys k JOIN projects p ON p.id = k.project_id "
                           "ORDER BY k.created_at, k.id").fetchall()


def load_rows(db: Path, rows: int, days: int, keys: list[tuple[str, int, int]], users: int, seed: int) -> dict:
    rnd = random.Random(seed)
    with sqlite3.connect(db) as con:
        prices = {m: (i, o, c) for m, i, o, c in con.execute(
            "SELECT model, input_per_million, output_per_million, cached_input_per_million FROM prices")}
    missing = [m for _, m, _ in MODELS if m not in prices]
    if missing:
        raise RuntimeError(f"no price for {missing}")

    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-2000000")  # 2 GB: the request_id index is filled in random order
    con.execute("PRAGMA temp_store=MEMORY")
    # Secondary indexes are cheaper built once, sorted, than kept up to date row by row.
    indexes = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_log' "
                          "AND sql IS NOT NULL").fetchall()
    for name, _ in indexes:
        con.execute(f'DROP INDEX "{name}"')

    key_cum = zipf_cumulative(len(keys), 0.9)
    model_cum = list(__import__("itertools").accumulate(w for _, _, w in MODELS))
    user_cum = zipf_cumulative(users, 0.8)
    user_names = [f"user-{i:04d}" for i in range(users)]
    error_cum = list(__import__("itertools").accumulate(w for _, _, w in ERRORS))
    model_rows = [(p, m, prices[m]) for p, m, _ in MODELS]

    now_ms = int(time.time() * 1000)
    start_ms = now_ms - days * DAY_MS
    step = days * DAY_MS / rows
    chunk, per_transaction = 50_000, 500_000
    started = time.monotonic()
    lognorm, rand, choices = rnd.lognormvariate, rnd.random, rnd.choices
    ln = math.log
    done = 0
    con.execute("BEGIN")
    while done < rows:
        n = min(chunk, rows - done)
        low = start_ms + done * step
        span = n * step
        times = sorted(int(low + rand() * span) for _ in range(n))
        key_pick = choices(keys, cum_weights=key_cum, k=n)
        model_pick = choices(model_rows, cum_weights=model_cum, k=n)
        user_pick = choices(user_names, cum_weights=user_cum, k=n)
        batch = []
        append = batch.append
        for i in range(n):
            key_id, project_id, org_id = key_pick[i]
            provider, model, (p_in, p_out, p_cached) = model_pick[i]
            user = None if rand() < NO_USER_RATE else user_pick[i]
            stream = rand() < STREAM_RATE
            served, attempts = model, None
            prompt = completion = cached = cost = ttft = upstream = reasoning = None
            error_code, cache_hit = None, 0
            if rand() < ERROR_RATE:
                status, error_code = choices(ERRORS, cum_weights=error_cum)[0][:2]
                latency = lognorm(ln(3), 0.5) if status in (429, 400) else lognorm(ln(1500), 0.9)
                if status not in (429, 400):
                    upstream = latency * 0.99
            else:
                status = 200
                prompt = int(lognorm(ln(350), 1.0)) + 1
                completion = int(lognorm(ln(120), 0.9)) + 1
                cached = int(prompt * (0.3 + 0.6 * rand())) if rand() < 0.25 else 0
                if model == "o1-mini":
                    reasoning = int(completion * 0.6)
                if rand() < CACHE_HIT_RATE:
                    cache_hit, cost = 1, 0.0
                    latency = lognorm(ln(2.0), 0.4)
                    ttft = latency * 0.6 if stream else None
                else:
                    latency = lognorm(ln(300 + completion * 6.0), 0.5)
                    upstream = latency - lognorm(ln(0.8), 0.4)
                    ttft = min(latency, lognorm(ln(350), 0.6)) if stream else None
                    if rand() < FALLBACK_RATE:
                        other = model_rows[int(rand() * len(model_rows))]
                        first = lognorm(ln(400), 0.8)
                        attempts = json.dumps([
                            {"provider": provider, "model": model, "status": 503, "latencyMs": round(first, 1),
                             "errorCode": "provider_unavailable"},
                            {"provider": other[0], "model": other[1], "status": 200, "latencyMs": round(upstream, 1)}])
                        provider, served, (p_in, p_out, p_cached) = other
                        latency += first
                    if rand() >= UNPRICED_RATE:
                        cost = ((prompt - cached) * p_in + cached * (p_cached if p_cached is not None else p_in)
                                + completion * p_out) / 1e6
            append(("req_%024x" % rnd.getrandbits(96), times[i], "POST", "/v1/chat/completions", org_id, project_id,
                    key_id, user, provider, model, served, status, error_code, prompt, completion, cached, cost,
                    latency, upstream, ttft, cache_hit, int(stream), attempts, reasoning, None))
        con.executemany(INSERT_SQL, batch)
        done += n
        if done % per_transaction == 0 or done == rows:
            con.execute("COMMIT")
            elapsed = time.monotonic() - started
            log(f"  {done:,} rows in {elapsed:.0f} s ({done / elapsed:,.0f} rows/s)")
            if done < rows:
                con.execute("BEGIN")
    load_seconds = time.monotonic() - started
    started = time.monotonic()
    for name, sql in indexes:
        log(f"  index {name}")
        con.execute(sql)
    index_seconds = time.monotonic() - started
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return {"load_seconds": round(load_seconds, 1), "load_rows_per_s": round(rows / load_seconds),
            "index_rebuild_seconds": round(index_seconds, 1), "indexes_rebuilt": [n for n, _ in indexes],
            "generated_at_ms": now_ms}


def generate(gateway: str, target: Path, args) -> dict:
    partial = target.with_name(target.name + ".partial")
    for suffix in ("", "-wal", "-shm"):
        Path(str(partial) + suffix).unlink(missing_ok=True)
    log(f"generating {args.rows:,} rows over {args.days} days into {target}")
    run_cli(gateway, partial, "migrate")
    keys = create_tenants(gateway, partial, args.keys)
    log(f"  {len(ORG_NAMES)} orgs, {len(ORG_NAMES) * len(PROJECT_NAMES)} projects, {len(keys)} keys created via the CLI")
    meta = {"rows": args.rows, "days": args.days, "keys": len(keys), "users": args.users, "models": len(MODELS),
            "seed": args.seed}
    meta.update(load_rows(partial, args.rows, args.days, keys, args.users, args.seed))
    rollup_rebuild(gateway, partial, meta)
    finish_db(partial, meta)
    for suffix in ("-wal", "-shm"):
        Path(str(partial) + suffix).unlink(missing_ok=True)
    partial.rename(target)
    Path(str(target) + ".meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rollup_rebuild(gateway: str, db: Path, meta: dict) -> None:
    """`rollup rebuild`, timed (wall clock and its own CPU time), into meta["rollup_rebuild"]."""
    started, cpu = time.monotonic(), children_cpu()
    result = run_cli(gateway, db, "rollup", "rebuild", check=False)
    seconds, cpu = time.monotonic() - started, children_cpu() - cpu
    if result.returncode == 0:
        meta["rollup_rebuild"] = {"seconds": round(seconds, 1), "rows_per_s": round(meta["rows"] / seconds),
                                  "cpu_seconds": round(cpu, 1), "rows_per_cpu_s": round(meta["rows"] / cpu),
                                  "output": result.stdout.strip()[-300:], "loadavg_after": os.getloadavg()[0],
                                  "binary": gateway}
        log(f"  rollup rebuild: {seconds:.1f} s ({meta['rows'] / seconds:,.0f} rows/s; CPU {cpu:.1f} s, "
            f"{meta['rows'] / cpu:,.0f} rows per CPU-second) {result.stdout.strip()[-120:]}")
    else:
        meta["rollup_rebuild"] = {"failed": True, "exit": result.returncode, "stderr": result.stderr.strip()[-500:]}
        log(f"  rollup rebuild FAILED (exit {result.returncode}): {result.stderr.strip()[-300:]}")


def finish_db(db: Path, meta: dict) -> None:
    with sqlite3.connect(db) as con:
        meta["schema_versions"] = [v for (v,) in con.execute("SELECT version FROM schema_migrations ORDER BY version")]
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    meta["db_bytes"] = db.stat().st_size


def upgrade(gateway: str, path: Path, meta: dict, rebuild: bool) -> None:
    """A cached database made by an older binary: `migrate` it (timed) and rebuild its rollups."""
    started, cpu = time.monotonic(), children_cpu()
    result = run_cli(gateway, path, "migrate")
    seconds, cpu = time.monotonic() - started, children_cpu() - cpu
    if "up to date" not in result.stdout:
        # `migrate` rebuilds the rollups itself when it adds them to a database with audit rows.
        meta.setdefault("upgrades", []).append({"migrate": result.stdout.strip()[-300:], "seconds": round(seconds, 1),
                                                "cpu_seconds": round(cpu, 1),
                                                "binary": gateway, "loadavg_after": os.getloadavg()[0]})
        log(f"  upgraded the cached database: {result.stdout.strip()} ({seconds:.1f} s, including the rollups' "
            f"first build: {meta['rows'] / seconds:,.0f} rows/s)")
        if not rebuild:
            meta["rollup_rebuild"] = {"inside_migrate": True, "seconds": round(seconds, 1),
                                      "rows_per_s": round(meta["rows"] / seconds), "cpu_seconds": round(cpu, 1),
                                      "rows_per_cpu_s": round(meta["rows"] / cpu) if cpu else None, "binary": gateway}
    if rebuild or meta.get("rollup_rebuild", {}).get("binary") != gateway:
        rollup_rebuild(gateway, path, meta)
    finish_db(path, meta)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    Path(str(path) + ".meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def dataset(gateway: str, args) -> tuple[Path, dict, bool]:
    """The cached database (generated when missing or different); (path, meta, reused)."""
    path = Path(args.reuse) if args.reuse else Path(f"/tmp/deploxa-admin-bench-{args.rows}x{args.days}d.db")
    meta_path = Path(str(path) + ".meta.json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("rows") == args.rows and meta.get("days") == args.days and not args.regenerate:
            log(f"reusing {path} ({meta['rows']:,} rows generated "
                f"{(time.time() * 1000 - meta['generated_at_ms']) / 3_600_000:.1f} h ago)")
            upgrade(gateway, path, meta, args.rebuild_rollups)
            return path, meta, True
    return path, generate(gateway, path, args), False


# --------------------------------------------------------------------------------------------
# Measuring helpers


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[rank]


def summary_ms(samples: list[float]) -> dict:
    return {"p50_ms": round(percentile(samples, 50), 1), "p95_ms": round(percentile(samples, 95), 1),
            "max_ms": round(max(samples), 1), "n": len(samples)}


def vm_rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def utc_iso(ms: float) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Dashboard:
    """A dashboard login kept by hand (the session cookie may be `Secure`, which a cookie jar
    would not send over http://127.0.0.1)."""

    def __init__(self, base_url: str, admin_token: str):
        self.base_url = base_url
        self.admin_token = admin_token
        self.cookie = ""
        self.error = ""

    @staticmethod
    def _cookie(response, name: str) -> str | None:
        for header in response.headers.get_list("set-cookie"):
            first = header.split(";", 1)[0]
            if first.startswith(name + "="):
                return first[len(name) + 1:]
        return None

    def login(self, client) -> bool:
        page = client.get(self.base_url + "/dashboard/login")
        if page.status_code != 200:
            self.error = f"GET /dashboard/login: HTTP {page.status_code}"
            return False
        csrf_cookie = self._cookie(page, "deploxa_login_csrf")
        match = re.search(r'name="csrf"[^>]*value="([^"]+)"', page.text) or \
            re.search(r'value="([^"]+)"[^>]*name="csrf"', page.text)
        if not csrf_cookie or not match:
            self.error = "the login page has no deploxa_login_csrf cookie or csrf field"
            return False
        answer = client.post(self.base_url + "/dashboard/login", data={"token": self.admin_token, "csrf": match.group(1)},
                             headers={"Cookie": f"deploxa_login_csrf={csrf_cookie}"}, follow_redirects=False)
        session = self._cookie(answer, "deploxa_session")
        if not session:
            self.error = f"POST /dashboard/login: HTTP {answer.status_code}, no deploxa_session cookie"
            return False
        self.cookie = f"deploxa_session={session}"
        return True

    def get(self, client, path: str):
        return client.get(self.base_url + path, headers={"Cookie": self.cookie}, follow_redirects=False)


def timed_reads(client, name: str, fetch, reads: int, warmups: int, target_ms: float) -> dict:
    """`fetch()` returns a response; each timed from send to the last body byte."""
    samples, statuses, size = [], {}, 0
    for i in range(warmups + reads):
        started = time.perf_counter()
        response = fetch()
        elapsed = (time.perf_counter() - started) * 1000
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        size = len(response.content)
        if i >= warmups:
            samples.append(elapsed)
    result = summary_ms(samples)
    result.update({"status_counts": statuses, "body_bytes": size, "target_ms": target_ms,
                   "met": all(s == 200 for s in statuses) and result["p95_ms"] < target_ms})
    log(f"  {name:<28} p50 {result['p50_ms']:7.1f}  p95 {result['p95_ms']:7.1f}  max {result['max_ms']:7.1f} ms  "
        f"status {statuses}  {size:,} bytes")
    return result


def curl_export(url: str, token: str, stop: threading.Event | None = None, max_seconds: float = 1200) -> dict:
    """Streams url through curl into a pipe that counts lines; bounded in time."""
    proc = subprocess.Popen(["curl", "-sS", "-N", "--max-time", str(int(max_seconds)), "-H", f"Authorization: Bearer {token}",
                             "-D", "/dev/stderr", url],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    started = time.monotonic()
    lines = size = 0
    first_bytes = b""
    stopped = False
    while True:
        if stop is not None and stop.is_set():
            stopped = True
            proc.terminate()
            break
        data = proc.stdout.read1(1 << 20)
        if not data:
            break
        if len(first_bytes) < 300:
            first_bytes += data[:300]
        lines += data.count(b"\n")
        size += len(data)
    proc.stdout.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    headers = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    status = re.findall(r"^HTTP/\S+ (\d{3})", headers, re.M)
    return {"seconds": time.monotonic() - started, "lines": lines, "bytes": size, "curl_exit": proc.returncode,
            "http_status": int(status[-1]) if status else None, "stopped": stopped,
            "head": first_bytes[:200].decode(errors="replace")}


class RSSSampler(threading.Thread):
    """VmRSS of every worker every `interval` seconds."""

    def __init__(self, stack, interval: float = 0.5):
        super().__init__(daemon=True)
        self.stack, self.interval = stack, interval
        self.samples: dict[int, list[tuple[float, int]]] = {}
        self.cpu_start = {pid: cpu_ticks(pid) for pid in stack.worker_pids()}
        self.halt = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.halt.is_set():
            for pid in self.stack.worker_pids():
                kb = vm_rss_kb(pid)
                if kb is not None:
                    self.samples.setdefault(pid, []).append((time.monotonic() - started, kb))
            self.halt.wait(self.interval)

    def report(self) -> dict:
        per_worker = {}
        for pid, samples in self.samples.items():
            values = [kb for _, kb in samples]
            per_worker[str(pid)] = {"start_mb": round(values[0] / 1024, 1), "max_mb": round(max(values) / 1024, 1),
                                    "end_mb": round(values[-1] / 1024, 1), "samples": len(values),
                                    "cpu_s": round((cpu_ticks(pid) - self.cpu_start.get(pid, 0)) / os.sysconf("SC_CLK_TCK"), 1)}
        busiest = max(per_worker, key=lambda p: per_worker[p]["cpu_s"]) if per_worker else None
        return {"workers": per_worker, "serving_worker": busiest}


def wait_quiet(args, what: str) -> float:
    """With --quiet-load X: wait (at most --quiet-wait s) for the 1-minute load average to fall below X."""
    if args.quiet_load:
        deadline = time.monotonic() + args.quiet_wait
        while os.getloadavg()[0] >= args.quiet_load and time.monotonic() < deadline:
            time.sleep(5)
    load = os.getloadavg()[0]
    log(f"{what} (load {load:.2f})")
    return load


def loadgen_run(loadgen: str, url: str, body: Path, key: str, args, name: str) -> dict:
    command = [loadgen, "rate", "--url", url, "--rate", str(args.rate), "--duration", str(args.duration),
               "--warmup", str(args.warmup), "--connections", "256", "--timeout", "10", "--body-file", str(body),
               "-H", f"Authorization: Bearer {key}", "-H", "Content-Type: application/json", "--json"]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=args.duration + args.warmup + 60)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        report = {"failed": True, "exit": result.returncode, "stderr": result.stderr[-500:]}
    report["name"] = name
    report["loadavg"] = os.getloadavg()[0]
    log(f"  {name:<14} achieved {report.get('achieved_rate', '-')} req/s  p50 {report.get('p50_ms', '-')}  "
        f"p99 {report.get('p99_ms', '-')} ms  errors {report.get('errors', '-')}  non2xx {report.get('non_2xx', '-')}  "
        f"status {report.get('status_counts', {})}  load {report['loadavg']:.2f}")
    return report


def medians(runs: list[dict]) -> dict:
    good = [r for r in runs if not r.get("failed")]
    out = {}
    for field in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
        values = [r[field] for r in good if isinstance(r.get(field), (int, float))]
        if values:
            out[field] = round(statistics.median(values), 3)
    out["runs"] = len(good)
    out["errors"] = sum(r.get("errors", 0) or 0 for r in good)
    out["non_2xx"] = sum(r.get("non_2xx", 0) or 0 for r in good)
    out["min_achieved_rate"] = min((r.get("achieved_rate", 0) for r in good), default=None)
    return out


def ratio(b: dict, a: dict, field: str) -> float | None:
    if a.get(field) and b.get(field) is not None:
        return round(b[field] / a[field], 3)
    return None


# --------------------------------------------------------------------------------------------
# The run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--reuse", metavar="PATH", help="the cached generated database (default /tmp/deploxa-admin-bench-ROWSxDAYSd.db)")
    parser.add_argument("--regenerate", action="store_true", help="generate even when the cached database matches")
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--rebuild-rollups", action="store_true", help="time `rollup rebuild` on a reused database too")
    parser.add_argument("--retention-days", type=int, help="serve --audit-retention-days (default: serve's own, 90)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reads", type=int, default=20)
    parser.add_argument("--read-warmups", type=int, default=3)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", default="reads,export,dataplane,tablesize")
    parser.add_argument("--quiet-load", type=float, help="before each part, wait for the 1-minute load average to fall below this")
    parser.add_argument("--quiet-wait", type=float, default=120, help="seconds to wait at most for --quiet-load, per part")
    parser.add_argument("--max-minutes", type=float, default=30, help="bound on everything after generation")
    parser.add_argument("--out", default=str(REPO / "Benchmarks" / "results" / "admin" / "latest.json"))
    parser.add_argument("--keep", action="store_true", help="keep the run's copy of the database")
    args = parser.parse_args()
    parts = set(args.parts.split(","))

    gateway, loadgen = resolve_binaries()
    log(f"gateway {gateway}\nloadgen {loadgen}")
    results: dict = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python3 Benchmarks/admin_bench.py " + " ".join(sys.argv[1:]),
        "source": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip(),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "loadavg_start": os.getloadavg()},
        "binaries": {"gateway": gateway, "loadgen": loadgen,
                     "gateway_built": dt.datetime.fromtimestamp(os.path.getmtime(gateway), dt.timezone.utc).isoformat()},
        "config": {k: getattr(args, k) for k in ("rows", "days", "workers", "reads", "read_warmups", "rate", "duration",
                                                 "warmup", "repeats")},
    }
    cached, meta, reused = dataset(gateway, args)
    results["dataset"] = dict(meta, path=str(cached), reused=reused)
    if args.generate_only:
        write_results(args, results)
        return 0

    import gwstack  # after DEPLOXA_GATEWAY_BIN is set
    deadline = time.monotonic() + args.max_minutes * 60
    simulator = gwstack.Simulator(gwstack.make_temp_dir("admbench-sim")).start()
    serve_args = [] if args.retention_days is None else ["--audit-retention-days", str(args.retention_days)]
    big = gwstack.GatewayStack(simulator, name="admbench-big", workers=args.workers, serve_args=serve_args)
    empty = None
    try:
        # 2. The stack on a copy of the generated database.
        started = time.monotonic()
        shutil.copyfile(cached, big.db)
        log(f"copied the database ({cached.stat().st_size / 1e9:.2f} GB) in {time.monotonic() - started:.1f} s")
        gwstack._register(big)
        big.cli("migrate")
        slug = f"{ORG_NAMES[0]}/{PROJECT_NAMES[0]}"
        big.configure_providers(slug)
        created = big.create_key("bench-dataplane", slug)
        big.key, big.key_id = created["secret"], created["id"]
        big.start_gateway()
        big.start_nginx()
        gwstack.wait_until(big._healthy, timeout=30, what="GET /healthz through nginx")
        made = big.cli("admin-token", "create", "--name", "bench", check=False)
        admin = (made.stdout.strip().splitlines() or [""])[-1].strip()
        if not admin.startswith("dpa_"):
            log(f"NO ADMIN TOKEN (admin-token create exited {made.returncode}: {made.stderr.strip()[-200:]}); "
                "only the parts without the admin side can run")
            results["admin_token_error"] = made.stderr.strip()[-300:]
            parts &= {"tablesize"}
        log(f"stack up: nginx :{big.port}, workers {sorted(big.worker_pids())}")
        body = big.dir / "chat.json"
        body.write_text(json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello. [sim words=8]"}]}))
        auth = {"Authorization": f"Bearer {admin}"}
        now_ms = time.time() * 1000
        since = utc_iso(now_ms - 30 * DAY_MS)
        client = big.http(timeout=120)
        smoke = client.post("/v1/chat/completions", content=body.read_bytes(),
                            headers={"Authorization": f"Bearer {big.key}", "Content-Type": "application/json"})
        assert smoke.status_code == 200, smoke.text[:300]
        dashboard = Dashboard(big.base_url, admin)
        has_dashboard = dashboard.login(client)
        results["dashboard_login"] = "ok" if has_dashboard else dashboard.error
        if not has_dashboard:
            log(f"dashboard not available, skipping its reads: {dashboard.error}")

        # 3. Reads.
        if "reads" in parts:
            reads = {"loadavg_before": wait_quiet(args, f"reads ({args.read_warmups} warm-ups + {args.reads} each), from={since}")}
            reads["usage_30d_by_model"] = timed_reads(client, "usage 30d group_by=model", lambda: client.get(
                "/api/v1/usage", params={"from": since, "group_by": "model"}, headers=auth), args.reads, args.read_warmups, 200)
            if has_dashboard:
                reads["dashboard"] = timed_reads(client, "/dashboard", lambda: dashboard.get(client, "/dashboard"),
                                                 args.reads, args.read_warmups, 200)
            page_params = {"from": since, "limit": "50"}
            reads["audit_page_1"] = timed_reads(client, "audit page 1 (50 rows)", lambda: client.get(
                "/api/v1/audit", params=page_params, headers=auth), args.reads, args.read_warmups, 200)
            cursor = None
            walk = []
            for _ in range(4):
                page = client.get("/api/v1/audit", params=dict(page_params, **({"cursor": cursor} if cursor else {})),
                                  headers=auth).json()
                walk.append(len(page.get("data", [])))
                cursor = page.get("next_cursor")
                if not cursor:
                    break
            if cursor:
                reads["audit_page_5"] = timed_reads(client, "audit page 5 (next_cursor)", lambda: client.get(
                    "/api/v1/audit", params=dict(page_params, cursor=cursor), headers=auth),
                    args.reads, args.read_warmups, 200)
                reads["audit_page_5"]["rows_on_pages_1_to_4"] = walk
            if has_dashboard:
                day = since[:10]
                reads["dashboard_requests"] = timed_reads(client, "/dashboard/requests", lambda: dashboard.get(
                    client, f"/dashboard/requests?from={day}"), args.reads, args.read_warmups, 200)
            # Beyond the list: the heaviest reads a user can ask for with one click.
            extra = {"usage_30d_by_user": ("usage 30d group_by=user", lambda: client.get(
                "/api/v1/usage", params={"from": since, "group_by": "user"}, headers=auth))}
            if has_dashboard:
                extra["dashboard_30d"] = ("/dashboard?range=30d", lambda: dashboard.get(client, "/dashboard?range=30d"))
                extra["dashboard_30d_by_user"] = ("/dashboard?range=30d&group=user",
                                                  lambda: dashboard.get(client, "/dashboard?range=30d&group=user"))
            for name, (label, fetch) in extra.items():
                if time.monotonic() < deadline:
                    reads[name] = timed_reads(client, label, fetch, args.reads, args.read_warmups, 200)
                    reads[name]["extra"] = True
            results["reads"] = reads

        # 4. Export.
        if "export" in parts and time.monotonic() < deadline:
            time.sleep(2)  # the audit writer's last batch (the smoke request) lands first
            with sqlite3.connect(f"file:{big.db}?mode=ro", uri=True) as con:
                table_rows = con.execute("SELECT count(*) FROM audit_log").fetchone()[0]
            export_load = wait_quiet(args, f"export: GET /api/v1/audit?format=csv of {table_rows:,} rows")
            sampler = RSSSampler(big)
            sampler.start()
            time.sleep(1.0)
            export = curl_export(big.base_url + "/api/v1/audit?format=csv", admin,
                                 max_seconds=max(60, deadline - time.monotonic()))
            time.sleep(1.0)
            sampler.halt.set()
            sampler.join()
            with sqlite3.connect(f"file:{big.db}?mode=ro", uri=True) as con:
                table_rows_after = con.execute("SELECT count(*) FROM audit_log").fetchone()[0]
            rows_out = max(0, export["lines"] - 1)
            export.update({"loadavg_before": export_load, "loadavg_after": os.getloadavg()[0], "table_rows": table_rows, "table_rows_after": table_rows_after, "rows": rows_out,
                           "rows_per_s": round(rows_out / export["seconds"]) if export["seconds"] else None,
                           "mb_per_s": round(export["bytes"] / 1e6 / export["seconds"], 1), "rss": sampler.report()})
            serving = export["rss"]["workers"].get(export["rss"]["serving_worker"] or "", {})
            export["serving_rss_growth_mb"] = round(serving.get("max_mb", 0) - serving.get("start_mb", 0), 1)
            export["complete"] = export["http_status"] == 200 and export["curl_exit"] == 0 \
                and table_rows_after <= rows_out <= table_rows  # retention may delete the oldest rows meanwhile
            export["met"] = export["complete"] and (export["rows_per_s"] or 0) >= 200_000
            results["export"] = export
            log(f"  {rows_out:,} rows (table {table_rows:,}) in {export['seconds']:.1f} s = {export['rows_per_s']:,} rows/s, "
                f"{export['mb_per_s']} MB/s, HTTP {export['http_status']}, curl exit {export['curl_exit']}, "
                f"table after {table_rows_after:,}")
            for pid, rss in export["rss"]["workers"].items():
                log(f"  worker {pid}: RSS start {rss['start_mb']} MB, max {rss['max_mb']}, end {rss['end_mb']}, CPU {rss['cpu_s']} s"
                    + ("  <- served the export" if pid == export["rss"]["serving_worker"] else ""))

        # 5. Data-plane overhead of admin work.
        url = big.v1 + "/chat/completions"
        if "dataplane" in parts and time.monotonic() < deadline:
            wait_quiet(args, f"data plane: {args.rate} req/s × {args.duration} s (+{args.warmup} s warm-up), alone (a) vs with "
                f"CSV exports in a loop + /dashboard every second (b), ×{args.repeats}")
            runs = {"a": [], "b": []}
            background = []
            for i in range(args.repeats):
                if time.monotonic() > deadline:
                    break
                runs["a"].append(loadgen_run(loadgen, url, body, big.key, args, f"a{i + 1} alone"))
                time.sleep(2)
                stop = threading.Event()
                info = {"exports_started": 0, "export_rows": 0, "dashboard_ms": [], "dashboard_status": {}}

                def export_loop():
                    while not stop.is_set():
                        info["exports_started"] += 1
                        out = curl_export(big.base_url + "/api/v1/audit?format=csv", admin, stop=stop)
                        info["export_rows"] += max(0, out["lines"] - 1)
                        if out["http_status"] != 200:
                            info["export_failures"] = info.get("export_failures", 0) + 1
                            stop.wait(1)

                def dashboard_loop():
                    with big.http(timeout=60) as c:
                        while not stop.is_set():
                            started = time.perf_counter()
                            path = "/dashboard" if has_dashboard else "/api/v1/usage?group_by=model"
                            r = dashboard.get(c, path) if has_dashboard else c.get(path, headers=auth)
                            info["dashboard_ms"].append((time.perf_counter() - started) * 1000)
                            info["dashboard_status"][r.status_code] = info["dashboard_status"].get(r.status_code, 0) + 1
                            stop.wait(max(0.0, 1.0 - (time.perf_counter() - started)))

                threads = [threading.Thread(target=export_loop, daemon=True), threading.Thread(target=dashboard_loop, daemon=True)]
                for t in threads:
                    t.start()
                time.sleep(1)
                run = loadgen_run(loadgen, url, body, big.key, args, f"b{i + 1} +admin")
                stop.set()
                for t in threads:
                    t.join(timeout=30)
                samples = info.pop("dashboard_ms")
                info["dashboard_during"] = summary_ms(samples) if samples else None
                info["export_rows_per_s_under_load"] = round(info["export_rows"] / (args.duration + args.warmup + 1))
                run["background"] = info
                background.append(info)
                runs["b"].append(run)
                log(f"     background: {info['exports_started']} export(s) started, {info['export_rows']:,} rows streamed, "
                    f"/dashboard {info['dashboard_during']}")
                time.sleep(2)
            a, b = medians(runs["a"]), medians(runs["b"])
            results["dataplane"] = {"alone": a, "with_admin": b, "runs": runs["a"] + runs["b"],
                                    "ratio_p50": ratio(b, a, "p50_ms"), "ratio_p99": ratio(b, a, "p99_ms"),
                                    "direct_baseline": "none: the harness's nginx has no location straight to the simulator"}
            results["dataplane"]["met"] = (results["dataplane"]["ratio_p99"] or 99) <= 1.2 and b["errors"] == 0 and b["non_2xx"] == 0

        # 6. Table size.
        if "tablesize" in parts and time.monotonic() < deadline:
            empty = gwstack.GatewayStack(simulator, name="admbench-empty", workers=args.workers, serve_args=serve_args).start()
            wait_quiet(args, f"table size: {args.rate} req/s on an empty database vs the {meta['rows']:,}-row one, ×{args.repeats}")
            runs = {"empty": [], "big": []}
            for i in range(args.repeats):
                if time.monotonic() > deadline:
                    break
                runs["empty"].append(loadgen_run(loadgen, empty.v1 + "/chat/completions", body, empty.key, args, f"empty{i + 1}"))
                time.sleep(2)
                runs["big"].append(loadgen_run(loadgen, url, body, big.key, args, f"big{i + 1}"))
                time.sleep(2)
            e, g = medians(runs["empty"]), medians(runs["big"])
            results["tablesize"] = {"empty": e, "big": g, "runs": runs["empty"] + runs["big"],
                                    "ratio_p50": ratio(g, e, "p50_ms"), "ratio_p99": ratio(g, e, "p99_ms")}
            results["tablesize"]["met"] = (results["tablesize"]["ratio_p99"] or 99) <= 1.2 and g["errors"] == 0

        results["worker_pids_end"] = sorted(big.worker_pids())
        results["gateway_log_tail"] = gwstack.tail(big.gateway_log, 20)
        results["nginx_error_log_tail"] = gwstack.tail(big.nginx_error_log, 20)
        client.close()
    finally:
        if empty is not None:
            empty.stop()
        big.stop()
        simulator.stop()
        if not args.keep:  # the run's directories (a copy of the database, logs): the results hold the log tails
            for directory in [big.dir, simulator.workdir] + ([empty.dir] if empty is not None else []):
                shutil.rmtree(directory, ignore_errors=True)
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["seconds_after_generation"] = round(time.monotonic() - deadline + args.max_minutes * 60)
    print_summary(results)
    write_results(args, results)
    return 0


def write_results(args, results: dict) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {out}")


def print_summary(r: dict) -> None:
    def verdict(ok) -> str:
        return "met" if ok else "NOT met"

    d = r["dataset"]
    print(f"\n=== admin benchmark: {d['rows']:,} audit rows over {d['days']} days ===")
    if not d.get("reused"):
        print(f"generation: {d['load_rows_per_s']:,} rows/s (+ {d['index_rebuild_seconds']} s of index rebuild)")
    rr = d.get("rollup_rebuild", {})
    if rr.get("rows_per_s"):
        print(f"rollup rebuild: {rr['seconds']} s, {rr['rows_per_s']:,} rows/s"
              + (f" ({rr['rows_per_cpu_s']:,} rows per CPU-second)" if rr.get("rows_per_cpu_s") else ""))
    for name, x in (r.get("reads") or {}).items():
        if not isinstance(x, dict):
            continue
        print(f"read {name:<22} p50 {x['p50_ms']:7.1f}  p95 {x['p95_ms']:7.1f}  max {x['max_ms']:7.1f} ms  "
              f"(< {x['target_ms']:.0f} ms: {verdict(x['met'])})")
    if "export" in r:
        x = r["export"]
        s = x["rss"]["workers"].get(x["rss"]["serving_worker"] or "", {})
        print(f"export CSV: {x['rows']:,} rows, {x['rows_per_s']:,} rows/s (≥ 200,000: {verdict(x['met'])}); serving worker RSS "
              f"start {s.get('start_mb')} max {s.get('max_mb')} end {s.get('end_mb')} MB")
    for key, left, right in (("dataplane", "alone", "with_admin"), ("tablesize", "empty", "big")):
        if key in r:
            x = r[key]
            print(f"{key}: {left} p50/p99 {x[left].get('p50_ms')}/{x[left].get('p99_ms')} ms, {right} "
                  f"{x[right].get('p50_ms')}/{x[right].get('p99_ms')} ms, ratio p50 {x['ratio_p50']} p99 {x['ratio_p99']} "
                  f"(p99 within 20 %: {verdict(x['met'])})")


if __name__ == "__main__":
    sys.exit(main())

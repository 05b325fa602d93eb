"""Part g of run_benchmarks.py: the shared database, SQLite against PostgreSQL.

Four deployments run side by side on one provider simulator, each behind its own nginx (the
template plus the benchmark's /direct/ location, access log off), each with part l's limited key
(project and key carry RPM, TPM and a monthly budget that are never reached):

  sqlite-before  BEFORE_BIN (the commit before the Postgres work), SQLite, WORKERS workers
  sqlite-after   GATEWAY_BIN (this tree), SQLite, WORKERS workers
  pg-1node       GATEWAY_BIN on a database of its own in a throwaway PostgreSQL cluster, WORKERS workers
  pg-3nodes      G_NODES `serve` masters of G_NODE_WORKERS workers each on one database of the same
                 cluster, behind one nginx `upstream` of their sockets (Tests/e2e/multinode.py)

Measured in one run, the deployments alternating in that order within every repeat:
  1. open loop (deploxa-loadgen) at G_RATES with the limited key, after one run of the direct path
     (nginx → simulator, through sqlite-after's nginx) per repeat; overhead = median of the
     deployment − median of direct, at p50 and p99, with the per-repeat overheads as the spread;
  2. closed loop: wrk with CLOSED_CONNECTIONS connections for DURATION s, direct then each;
  3. admissions: G_ADMIT_PROCESSES `bench-admit` processes at once, G_ADMIT_COUNT each, on one
     hot scope whose limit is the total (exactly the total must be admitted), then spread over
     G_ADMIT_SPREAD scopes; sqlite-after and pg-1node alternating (sqlite-before: hot only, its
     bench-admit has no --spread); then the same on pg-1node's database with synchronous_commit = off
     (ALTER DATABASE; SQLite's synchronous=NORMAL does not flush per commit either).
For every run: CPU of the gateway workers, the masters, nginx, the simulator and every PostgreSQL
process (/proc) per request, and from PostgreSQL's own counters (no extension needed) the
transactions and the calls of each deploxa_* function per request with their time inside the
database (pg_stat_database, pg_stat_user_functions with track_functions = 'pl').
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import gwstack
from multinode import MultiNode
from pgcluster import PostgresCluster

from bench_common import (CLK_TCK, Fatal, alt, cpu_ticks, jq_str, loadavg, log, median, r1, r3, read_json,
                          run_bounded, run_wrk, stop_popen, write_json, write_wrk_script)
from bench_stack import nginx_additions

LIMITS = ("--rpm", "100000000", "--tpm", "1000000000000", "--monthly-budget", "1000000000")


@contextlib.contextmanager
def gateway_binary(path: str):
    """gwstack runs $DEPLOXA_GATEWAY_BIN: the given binary while a deployment is set up and started."""
    saved = os.environ.get("DEPLOXA_GATEWAY_BIN")
    os.environ["DEPLOXA_GATEWAY_BIN"] = path
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("DEPLOXA_GATEWAY_BIN", None)
        else:
            os.environ["DEPLOXA_GATEWAY_BIN"] = saved


def create_limited(stack: gwstack.GatewayStack, simulator: gwstack.Simulator) -> str:
    """Part l's limited project and key on this deployment's database; returns the key's secret."""
    project = f"{stack.ORG}/limited"
    stack.cli("project", "create", project, *LIMITS)
    stack.cli("provider", "set", project, "openai", "--base-url", simulator.openai_base_url, input="sim-key\n")
    return stack.create_key("limited", project, *LIMITS)["secret"]


def postgres_pids(cluster: PostgresCluster) -> list[int]:
    """The cluster's postmaster and its children (backends and background processes)."""
    try:
        postmaster = int((cluster.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return []
    return [postmaster, *sorted(gwstack.children_of(postmaster))]


class BenchNodes(MultiNode):
    """MultiNode with the benchmark's nginx additions (the multinode access log turned off too)."""

    def __init__(self, *args, extra_filter=None, **kwargs):
        self.extra_filter = extra_filter
        super().__init__(*args, **kwargs)

    def _nginx_filter(self, conf: str) -> str:
        conf = super()._nginx_filter(conf)
        return self.extra_filter(conf) if self.extra_filter else conf


class Deployment:
    """One of the four: its stack(s), the nginx in front, its database and the limited key."""

    def __init__(self, name: str, binary: str, backend: str):
        self.name, self.binary, self.backend = name, binary, backend
        self.stacks: list[gwstack.GatewayStack] = []
        self.front: gwstack.GatewayStack | None = None  # the stack whose nginx takes the requests
        self.multi: BenchNodes | None = None
        self.key = ""
        self.db_arg = ""
        self.pg_database: str | None = None

    @property
    def url(self) -> str:
        return self.front.base_url + "/v1/chat/completions"

    @property
    def direct_url(self) -> str:
        return self.front.base_url + "/direct/v1/chat/completions"

    def worker_pids(self) -> list[int]:
        return sorted(pid for stack in self.stacks for pid in stack.worker_pids())

    def master_pids(self) -> list[int]:
        return [stack.master_pid for stack in self.stacks]

    def nginx_pids(self) -> list[int]:
        return [self.front.nginx.pid, *sorted(gwstack.children_of(self.front.nginx.pid))]

    def stop(self) -> None:
        if self.multi is not None:
            self.multi.stop()
        else:
            for stack in self.stacks:
                stack.stop()


class PostgresBench:
    """Sets up the simulator, the cluster and the four deployments; runs and records part g."""

    def __init__(self, args, tmp: Path):
        self.args = args
        self.tmp = tmp
        self.runs = tmp / "runs"
        self.runs.mkdir(parents=True, exist_ok=True)
        self.simulator: gwstack.Simulator | None = None
        self.cluster: PostgresCluster | None = None
        self.deployments: list[Deployment] = []
        self.background: list[subprocess.Popen] = []
        self.body = tmp / "chat.json"
        self.body.write_text('{"model":"gpt-4o-mini","messages":[{"role":"user","content":'
                             f'"Say hello. [sim words={args.words}]"}}]}}')

    # -- setup --------------------------------------------------------------------------------

    def pg_settings(self) -> dict[str, str]:
        settings = {"track_functions": "pl"}
        for word in self.args.g_pg_settings:
            key, _, value = word.partition("=")
            settings[key] = value
        return settings

    def filter_for(self, name: str):
        static = self.tmp / f"static-{name}.conf"
        static.write_text("location = /static-hit { default_type application/json; return 200 '{}'; }\n")
        return nginx_additions(self.simulator.port, static)

    def serve_args(self) -> list[str]:
        return ["--log-level", "warning", "--graceful-timeout", "5", *self.args.serve_extra.split()]

    def start(self) -> None:
        a = self.args
        log("part g: starting the simulator")
        self.simulator = gwstack.Simulator(self.tmp).start()
        log(f"part g: starting a PostgreSQL cluster ({jq_str(self.pg_settings())})")
        self.cluster = PostgresCluster(settings=self.pg_settings()).start()
        version = self.cluster.psql("SHOW server_version")
        log(f"part g: PostgreSQL {version} on port {self.cluster.port}")
        for name, binary, backend in (("sqlite-before", a.before_bin, "sqlite"), ("sqlite-after", a.gateway_bin, "sqlite"),
                                      ("pg-1node", a.gateway_bin, "postgres")):
            dep = Deployment(name, binary, backend)
            holder: dict = {}
            with gateway_binary(binary):
                stack = gwstack.GatewayStack(
                    self.simulator, name=name.replace("-", ""), workers=a.workers, serve_args=self.serve_args(),
                    before_serve=lambda s: holder.update(key=create_limited(s, self.simulator)),
                    nginx_conf_filter=self.filter_for(name), postgres=self.cluster if backend == "postgres" else None)
                stack.provider_key = "sim-key"
                dep.stacks, dep.front = [stack], stack
                self.deployments.append(dep)
                log(f"part g: starting {name} ({binary}, {a.workers} workers)")
                stack.start()
            dep.key, dep.db_arg = holder["key"], stack.db_arg
            dep.pg_database = stack.pg_database if backend == "postgres" else None
        dep = Deployment(f"pg-{a.g_nodes}nodes", a.gateway_bin, "postgres")
        with gateway_binary(a.gateway_bin):
            multi = BenchNodes(self.simulator, self.cluster, count=a.g_nodes, workers=a.g_node_workers,
                               serve_args=self.serve_args(), extra_filter=self.filter_for(dep.name))
            for node in multi.nodes:
                node.provider_key = "sim-key"
            dep.multi, dep.stacks, dep.front = multi, multi.nodes, multi.first
            self.deployments.append(dep)
            log(f"part g: starting {dep.name} ({a.g_nodes} serve masters × {a.g_node_workers} workers, one nginx upstream)")
            multi.start()
            dep.key = create_limited(multi.first, self.simulator)
        dep.db_arg, dep.pg_database = multi.db_url, multi.database
        self.smoke_test()

    def smoke_test(self) -> None:
        import httpx
        with httpx.Client(timeout=30, trust_env=False) as client:
            for dep in self.deployments:
                # Several requests, so that every node of the multi-node deployment answers one.
                for _ in range(max(3, len(dep.stacks) * 2)):
                    response = client.post(dep.url, content=self.body.read_bytes(),
                                           headers={"Authorization": f"Bearer {dep.key}", "Content-Type": "application/json"})
                    try:
                        ok = response.status_code == 200 and bool(response.json()["choices"][0]["message"]["content"])
                    except (ValueError, KeyError, IndexError, TypeError):
                        ok = False
                    if not ok:
                        raise Fatal(f"part g: smoke test of {dep.name}: HTTP {response.status_code}: {response.content[:300]!r}")
            response = client.post(self.deployments[1].direct_url, content=self.body.read_bytes(),
                                   headers={"Authorization": "Bearer sim-key", "Content-Type": "application/json"})
            if response.status_code != 200:
                raise Fatal(f"part g: smoke test of the direct path: HTTP {response.status_code}")
        log("part g: smoke test ok (the limited key answers 200 on every deployment, direct answers 200)")

    def stop(self) -> None:
        for proc in self.background:
            stop_popen(proc, signal.SIGTERM, 3)
        for dep in reversed(self.deployments):
            try:
                dep.stop()
            except Exception as error:  # noqa: BLE001 - stop the rest too
                log(f"part g: stopping {dep.name}: {error}")
        if self.simulator is not None:
            self.simulator.stop()
        if self.cluster is not None:
            self.cluster.cleanup()

    # -- PostgreSQL's processes and counters -------------------------------------------------------

    def pg_pids(self) -> list[int]:
        return postgres_pids(self.cluster) if self.cluster is not None else []

    def pg_ticks(self) -> dict[int, int]:
        """CPU ticks of every live PostgreSQL process, and under key -1 those of the backends that
        have exited (the postmaster's cutime + cstime: it reaps them), so that the backends of a
        short-lived client (bench-admit) are counted too."""
        pids = self.pg_pids()
        ticks = {pid: cpu_ticks([pid]) for pid in pids}
        if pids:
            try:
                fields = Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()
                ticks[-1] = int(fields[13]) + int(fields[14])
            except (OSError, IndexError, ValueError):
                pass
        return ticks

    def pg_counters(self, database: str | None) -> dict | None:
        """Transactions, rows and calls of each function of one database, as its statistics say."""
        if database is None:
            return None
        lit = gwstack.sql_literal(database)
        row = self.cluster.psql(f"SELECT xact_commit + xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated, "
                                f"tup_deleted, blks_hit, blks_read FROM pg_stat_database WHERE datname = {lit}")
        names = ("transactions", "tup_returned", "tup_fetched", "tup_inserted", "tup_updated", "tup_deleted",
                 "blks_hit", "blks_read")
        counters = dict(zip(names, (int(x) for x in row.split("|")))) if row else {}
        functions = {}
        for line in self.cluster.psql("SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions",
                                      db=database).splitlines():
            name, calls, total, own = line.split("|")
            functions[name] = {"calls": int(calls), "total_ms": float(total), "self_ms": float(own)}
        counters["functions"] = functions
        return counters

    @staticmethod
    def counter_delta(before: dict | None, after: dict | None, requests: int) -> dict | None:
        if before is None or after is None or requests <= 0:
            return None
        per = {f"{k}_per_req": r3((after[k] - before.get(k, 0)) / requests)
               for k in after if k != "functions"}
        functions = {}
        for name, now in after["functions"].items():
            was = before["functions"].get(name, {"calls": 0, "total_ms": 0.0, "self_ms": 0.0})
            calls = now["calls"] - was["calls"]
            if calls <= 0:
                continue
            functions[name] = {"calls_per_req": r3(calls / requests),
                               "ms_per_call": r3((now["total_ms"] - was["total_ms"]) / calls),
                               "self_ms_per_call": r3((now["self_ms"] - was["self_ms"]) / calls)}
        per["functions"] = functions
        return per

    def settle_stats(self, dep: Deployment | None) -> None:
        """Waits (at most 20 s) until the deployment's workers and PostgreSQL are quiet (under 0.15 of a
        core over half a second), so that a saturated run's backlog does not fall on the next run; and
        at least 1.2 s, since backends publish their statistics at most once a second, when idle."""
        started = time.monotonic()
        pids = (dep.worker_pids() if dep else []) + self.pg_pids()
        last = cpu_ticks(pids)
        while time.monotonic() - started < 20:
            time.sleep(0.5)
            now = cpu_ticks(pids)
            quiet = (now - last) / CLK_TCK < 0.075
            last = now
            if quiet and time.monotonic() - started >= 1.2:
                break

    # -- one measured run -------------------------------------------------------------------------

    def measured(self, dep: Deployment | None, run: Callable[[], tuple]) -> tuple[dict, dict]:
        """Runs `run()` (which returns (report, requests)) between /proc and statistics readings."""
        front = dep or self.deployments[1]
        wpids, mpids, npids = front.worker_pids(), front.master_pids(), front.nginx_pids()
        sim = self.simulator.proc.pid
        pg_before = self.pg_ticks()
        counters_before = self.pg_counters(dep.pg_database if dep else None)
        before = [cpu_ticks(wpids), cpu_ticks(mpids), cpu_ticks(npids), cpu_ticks([sim])]
        report, requests = run()
        after = [cpu_ticks(wpids), cpu_ticks(mpids), cpu_ticks(npids), cpu_ticks([sim])]
        pg_after = self.pg_ticks()
        self.settle_stats(dep)
        counters_after = self.pg_counters(dep.pg_database if dep else None)
        pg = sum(pg_after.values()) - sum(pg_before.values())  # live + reaped, after − before
        w, m, n, s = (y - x for x, y in zip(before, after))

        def us(ticks: int):
            return None if not requests else r1(ticks / CLK_TCK * 1e6 / requests)
        cpu = {"requests": requests, "workers_us_per_req": us(w), "masters_us_per_req": us(m), "nginx_us_per_req": us(n),
               "simulator_us_per_req": us(s), "postgres_us_per_req": us(pg), "postgres_cpu_s": pg / CLK_TCK,
               "workers_cpu_s": w / CLK_TCK}
        return report, {"cpu": cpu, "postgres_counters": self.counter_delta(counters_before, counters_after, requests)}

    def open_run(self, name: str, dep: Deployment | None, rate: int) -> dict:
        """One deploxa-loadgen run at RATE: dep's limited path, or (None) the direct path."""
        a = self.args
        url = dep.url if dep else self.deployments[1].direct_url
        auth = f"Authorization: Bearer {dep.key}" if dep else "Authorization: Bearer sim-key"
        out = self.runs / name

        def run():
            rc, loadgen_cpu = run_bounded(
                [a.loadgen_bin, "rate", "--url", url, "--rate", str(rate), "--duration", str(a.duration),
                 "--warmup", str(a.warmup), "--connections", str(a.connections), "--threads", str(a.loadgen_threads),
                 "--timeout", "10", "--body-file", str(self.body), "-H", auth, "-H", "Content-Type: application/json",
                 "--json"], out.with_suffix(".lg"), out.with_suffix(".err"), timeout=a.duration + a.warmup + 40,
                on_start=self.background.append)
            report = read_json(out.with_suffix(".lg"))
            if rc != 0 or not report:
                log(f"part g: loadgen {name} failed (rc {rc}): {gwstack.tail(out.with_suffix('.err'), 3)}")
                report = {"failed": True}
            return report, int(rate * (a.duration + a.warmup) + 0.5)
        report, extra = self.measured(dep, run)
        result = {"name": name, "deployment": dep.name if dep else "direct", "rate": rate,
                  **{k: report.get(k) for k in ("failed", "target_rate", "achieved_rate", "sent", "completed", "p50_ms",
                                                "p90_ms", "p99_ms", "p999_ms", "max_ms", "errors", "non_2xx",
                                                "status_counts", "error_counts")},
                  **extra, "loadavg_after": loadavg()}
        write_json(out.with_suffix(".json"), result)
        log(f"{name}: achieved {jq_str(alt(result['achieved_rate'], '-'))} req/s p50 {jq_str(alt(result['p50_ms'], '-'))} "
            f"p99 {jq_str(alt(result['p99_ms'], '-'))} ms non2xx {jq_str(alt(result['non_2xx'], '-'))} "
            f"errors {jq_str(alt(result['errors'], '-'))} workers {jq_str(extra['cpu']['workers_us_per_req'])} µs/req "
            f"postgres {jq_str(extra['cpu']['postgres_us_per_req'])} µs/req")
        return result

    def closed_run(self, name: str, dep: Deployment | None) -> dict:
        a = self.args
        url = dep.url if dep else self.deployments[1].direct_url
        auth = dep.key if dep else "sim-key"
        script = write_wrk_script(self.tmp / f"{name}.lua", [("Content-Type", "application/json"),
                                                             ("Authorization", f"Bearer {auth}")], self.body.read_bytes())

        def run():
            wrk = run_wrk(script, url, a.closed_connections, a.duration, self.runs / f"{name}.closed.txt")
            return wrk, wrk["requests"]
        wrk, extra = self.measured(dep, run)
        result = {"name": name, "deployment": dep.name if dep else "direct", **wrk, **extra, "loadavg_after": loadavg()}
        write_json(self.runs / f"{name}.closed.json", result)
        log(f"{name}: {jq_str(wrk['rps'])} req/s p50 {jq_str(wrk['p50_ms'])} p99 {jq_str(wrk['p99_ms'])} ms "
            f"non2xx {wrk['non2xx']} errors {wrk['errors']} workers {jq_str(extra['cpu']['workers_us_per_req'])} µs/req "
            f"postgres {jq_str(extra['cpu']['postgres_us_per_req'])} µs/req")
        return result

    def admit_run(self, name: str, dep: Deployment, mode: str) -> dict:
        """G_ADMIT_PROCESSES bench-admit processes at once; hot: one scope, limit = the total
        (exactly the total must be admitted); spread: G_ADMIT_SPREAD scopes, each limited to the total."""
        a = self.args
        total = a.g_admit_processes * a.g_admit_count
        at = str(int(time.time()))
        scope = f"gk_g_{name.replace('-', '_')}_{at}"
        extra = ["--spread", str(a.g_admit_spread)] if mode == "spread" else []
        outs = [self.runs / f"{name}-{p}.json" for p in range(1, a.g_admit_processes + 1)]

        def run():
            procs = []
            for out in outs:
                with open(out, "wb") as stdout, open(out.with_suffix(".err"), "wb") as stderr:
                    procs.append(subprocess.Popen(
                        [dep.binary, "--db", dep.db_arg, "bench-admit", "--count", str(a.g_admit_count), "--rpm", str(total),
                         "--scope", scope, "--at", at, *extra], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr))
            self.background.extend(procs)
            deadline = time.monotonic() + 300
            for proc in procs:
                try:
                    proc.wait(timeout=max(1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    stop_popen(proc, signal.SIGTERM, 3)
            return [read_json(out) for out in outs], total
        reports, extra_readings = self.measured(dep, run)
        if not all(reports):
            raise Fatal(f"part g: bench-admit {name} failed: {gwstack.tail(outs[0].with_suffix('.err'), 3)}")
        admitted = sum(r["admitted"] for r in reports)
        seconds = max(r["seconds"] for r in reports)
        result = {"name": name, "deployment": dep.name, "mode": mode, "processes": a.g_admit_processes,
                  "admissions_each": a.g_admit_count, "scopes": a.g_admit_spread if mode == "spread" else 1,
                  "limit_per_scope": total, "admitted": admitted, "refused": sum(r["refused"] for r in reports),
                  "busy_errors": sum(r["busy_errors"] for r in reports), "exact": admitted == total,
                  "seconds": r3(seconds), "admissions_per_s": round(total / seconds) if seconds else None,
                  "p50_ms_each": [r3(r["p50_ms"]) for r in reports], "p99_ms_each": [r3(r["p99_ms"]) for r in reports],
                  "max_ms": r3(max(r["max_ms"] for r in reports)),
                  "postgres_us_per_admission": extra_readings["cpu"]["postgres_us_per_req"],
                  "postgres_counters": extra_readings["postgres_counters"]}
        write_json(self.runs / f"{name}.admit.json", result)
        log(f"{name}: {result['admitted']} admitted of {total} (exact {result['exact']}), busy {result['busy_errors']}, "
            f"{jq_str(result['admissions_per_s'])} admissions/s, p50 {jq_str(result['p50_ms_each'])} ms, "
            f"postgres {jq_str(result['postgres_us_per_admission'])} µs/admission")
        return result

    def idle_cpu(self, seconds: float = 5) -> dict:
        """CPU of every component with no requests (ms per s): the floor under every figure."""
        groups = {dep.name: dep.worker_pids() + dep.master_pids() for dep in self.deployments}
        before = {k: cpu_ticks(v) for k, v in groups.items()}
        pg_before = self.pg_ticks()
        time.sleep(seconds)
        after = {k: cpu_ticks(v) for k, v in groups.items()}
        pg = sum(self.pg_ticks().values()) - sum(pg_before.values())
        idle = {f"{k}_ms_per_s": r1((after[k] - before[k]) / CLK_TCK / seconds * 1000) for k in groups}
        idle["postgres_ms_per_s"] = r1(pg / CLK_TCK / seconds * 1000)
        return idle


# --------------------------------------------------------------------------------------------
# The part


def spread(values) -> list | None:
    present = [v for v in values if v is not None]
    return [r3(min(present)), r3(max(present))] if present else None


def ratio(x, y):
    return None if x is None or y in (None, 0) else r3(x / y)


def run_part_g(args, tmp: Path) -> dict:
    if not args.before_bin or not os.access(args.before_bin, os.X_OK):
        raise Fatal(f"part g needs --before-bin (the SQLite 'before' binary); got {args.before_bin!r}")
    if shutil.which("wrk") is None:
        raise Fatal("part g needs wrk (apt-get install wrk)")
    bench = PostgresBench(args, tmp)
    try:
        bench.start()
        return measure(bench)
    finally:
        bench.stop()


def measure(bench: PostgresBench) -> dict:
    a = bench.args
    deps = bench.deployments
    names = [d.name for d in deps]
    document: dict = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "deployments": {}, "config": {
        "workers": a.workers, "nodes": a.g_nodes, "node_workers": a.g_node_workers, "rates": a.g_rates,
        "repeats": a.repeats, "duration_s": a.duration, "warmup_s": a.warmup, "closed_connections": a.closed_connections,
        "admit_processes": a.g_admit_processes, "admit_count": a.g_admit_count, "admit_spread": a.g_admit_spread,
        "postgres_settings": bench.pg_settings(), "postgres_version": bench.cluster.psql("SHOW server_version"),
        "before_bin": a.before_bin, "after_bin": a.gateway_bin,
        "limits": "project and key: " + " ".join(LIMITS), "order": "direct, then " + ", ".join(names) + " in every repeat"}}
    for dep in deps:
        document["deployments"][dep.name] = {"binary": dep.binary, "backend": dep.backend, "serve_masters": len(dep.stacks),
                                             "workers_each": dep.stacks[0].workers}
    document["idle_cpu"] = bench.idle_cpu()
    log(f"part g: idle CPU {jq_str(document['idle_cpu'])}")

    for dep in deps:
        run_bounded([a.loadgen_bin, "rate", "--url", dep.url, "--rate", "200", "--duration", "3", "--warmup", "1",
                     "--connections", str(a.connections), "--timeout", "10", "--body-file", str(bench.body),
                     "-H", f"Authorization: Bearer {dep.key}", "-H", "Content-Type: application/json", "--json"],
                    bench.runs / f"warm-{dep.name}.lg", bench.runs / f"warm-{dep.name}.err", timeout=60)

    # 1. Open loop.
    open_loop = []
    for rate in a.g_rates:
        runs: dict[str, list[dict]] = {"direct": [], **{n: [] for n in names}}
        for i in range(1, a.repeats + 1):
            log(f"part g: open loop {rate} req/s, repeat {i}/{a.repeats}; load {loadavg()}")
            runs["direct"].append(bench.open_run(f"g-open{rate}-direct-{i}", None, rate))
            time.sleep(1)
            for dep in deps:
                runs[dep.name].append(bench.open_run(f"g-open{rate}-{dep.name}-{i}", dep, rate))
                time.sleep(1)
        direct = runs["direct"]
        entry = {"rate": rate, "direct": {"p50_ms": r3(median(r["p50_ms"] for r in direct)),
                                          "p99_ms": r3(median(r["p99_ms"] for r in direct)),
                                          "p50_ms_each": [r["p50_ms"] for r in direct],
                                          "p99_ms_each": [r["p99_ms"] for r in direct]}, "deployments": {}}
        for name in names:
            mine = runs[name]
            over50 = [None if r["p50_ms"] is None or d["p50_ms"] is None else r3(r["p50_ms"] - d["p50_ms"])
                      for r, d in zip(mine, direct)]
            over99 = [None if r["p99_ms"] is None or d["p99_ms"] is None else r3(r["p99_ms"] - d["p99_ms"])
                      for r, d in zip(mine, direct)]
            p50, p99 = r3(median(r["p50_ms"] for r in mine)), r3(median(r["p99_ms"] for r in mine))
            counters = [r["postgres_counters"] for r in mine if r["postgres_counters"]]
            entry["deployments"][name] = {
                "p50_ms": p50, "p99_ms": p99, "p50_ms_each": [r["p50_ms"] for r in mine],
                "p99_ms_each": [r["p99_ms"] for r in mine],
                "overhead_p50_ms": None if p50 is None or entry["direct"]["p50_ms"] is None else r3(p50 - entry["direct"]["p50_ms"]),
                "overhead_p99_ms": None if p99 is None or entry["direct"]["p99_ms"] is None else r3(p99 - entry["direct"]["p99_ms"]),
                "overhead_p50_ms_each": over50, "overhead_p99_ms_each": over99,
                "overhead_p50_spread": spread(over50), "overhead_p99_spread": spread(over99),
                "achieved_rate_min": min((r["achieved_rate"] or 0) for r in mine),
                "errors": sum(1 if r.get("failed") else alt(r.get("errors"), 0) for r in mine),
                "non_2xx": sum(alt(r.get("non_2xx"), 0) for r in mine),
                "workers_us_per_req": median(r["cpu"]["workers_us_per_req"] for r in mine),
                "masters_us_per_req": median(r["cpu"]["masters_us_per_req"] for r in mine),
                "postgres_us_per_req": median(r["cpu"]["postgres_us_per_req"] for r in mine),
                "postgres_counters_last_repeat": counters[-1] if counters else None}
        entry["runs"] = runs
        open_loop.append(entry)
        log("part g: " + jq_str({"rate": rate, "overhead_p50_ms": {n: entry["deployments"][n]["overhead_p50_ms"] for n in names},
                                 "overhead_p99_ms": {n: entry["deployments"][n]["overhead_p99_ms"] for n in names}}))
    document["open_loop"] = open_loop

    # 2. Closed loop.
    closed: dict[str, list[dict]] = {"direct": [], **{n: [] for n in names}}
    for i in range(1, a.repeats + 1):
        log(f"part g: closed loop, {a.closed_connections} connections, repeat {i}/{a.repeats}; load {loadavg()}")
        closed["direct"].append(bench.closed_run(f"g-closed-direct-{i}", None))
        time.sleep(1)
        for dep in deps:
            closed[dep.name].append(bench.closed_run(f"g-closed-{dep.name}-{i}", dep))
            time.sleep(1)
    document["closed_loop"] = {
        "connections": a.closed_connections, "duration_s": a.duration,
        "summary": {k: {"rps": median(r["rps"] for r in v), "rps_each": [r["rps"] for r in v],
                        "p50_ms": median(r["p50_ms"] for r in v), "p99_ms": median(r["p99_ms"] for r in v),
                        "non2xx": sum(r["non2xx"] for r in v), "errors": sum(r["errors"] for r in v),
                        "workers_us_per_req": median(r["cpu"]["workers_us_per_req"] for r in v),
                        "postgres_us_per_req": median(r["cpu"]["postgres_us_per_req"] for r in v)}
                    for k, v in closed.items()},
        "runs": closed}

    # 3. Admissions.
    sqlite_after, pg1 = deps[1], deps[2]
    admissions: list[dict] = []
    for i in range(1, a.repeats + 1):
        log(f"part g: admissions, repeat {i}/{a.repeats}; load {loadavg()}")
        for dep, modes in ((deps[0], ("hot",)), (sqlite_after, ("hot", "spread")), (pg1, ("hot", "spread"))):
            for mode in modes:
                admissions.append(bench.admit_run(f"g-admit-{mode}-{dep.name}-{i}", dep, mode))
                time.sleep(1)
    # The same on PostgreSQL without a WAL flush per commit (SQLite runs synchronous=NORMAL: no
    # fsync per commit either): new sessions of pg-1node's database get synchronous_commit = off.
    if "synchronous_commit=off" not in a.g_pg_settings:
        bench.cluster.psql(f'ALTER DATABASE "{pg1.pg_database}" SET synchronous_commit = off', db="postgres")
        for i in range(1, a.repeats + 1):
            for mode in ("hot", "spread"):
                run = bench.admit_run(f"g-admit-{mode}-pg-async-{i}", pg1, mode)
                admissions.append({**run, "deployment": "pg-1node synchronous_commit=off"})
                time.sleep(1)
    admit_summary = {}
    for dep in (deps[0].name, sqlite_after.name, pg1.name, "pg-1node synchronous_commit=off"):
        for mode in ("hot", "spread"):
            mine = [r for r in admissions if r["deployment"] == dep and r["mode"] == mode]
            if mine:
                admit_summary[f"{dep} {mode}"] = {
                    "admissions_per_s": median(r["admissions_per_s"] for r in mine),
                    "admissions_per_s_each": [r["admissions_per_s"] for r in mine],
                    "all_exact": all(r["exact"] for r in mine), "busy_errors": sum(r["busy_errors"] for r in mine),
                    "p50_ms": median(median(r["p50_ms_each"]) for r in mine),
                    "p99_ms": median(max(r["p99_ms_each"]) for r in mine),
                    "postgres_us_per_admission": median(r["postgres_us_per_admission"] for r in mine)}
    document["admissions"] = {"summary": admit_summary, "runs": admissions}

    document["targets"] = targets(document, names)
    log("part g: targets " + jq_str(document["targets"]))
    document["loadavg_end"] = loadavg()
    return document


def targets(document: dict, names: list[str]) -> dict:
    before, after, pg1, pgn = names
    out = {}
    at500 = next((e for e in document["open_loop"] if e["rate"] == 500), None)
    if at500:
        d = at500["deployments"]
        for pg in (pg1, pgn):
            added = [None if x is None or y is None else r3(x - y)
                     for x, y in zip(d[pg]["p50_ms_each"], d[after]["p50_ms_each"])]
            value = None if d[pg]["p50_ms"] is None or d[after]["p50_ms"] is None else r3(d[pg]["p50_ms"] - d[after]["p50_ms"])
            out[f"{pg}_adds_p50_ms_over_sqlite_at_500"] = {
                "value": value, "each_repeat": added, "target_ms": 1,
                "met": value is not None and value <= 1 and d[pg]["errors"] == 0 and d[pg]["non_2xx"] == 0}
    sqlite = {}
    for entry in document["open_loop"]:
        d = entry["deployments"]
        for field in ("overhead_p50_ms", "overhead_p99_ms"):
            each = [ratio(x, y) for x, y in zip(d[after][f"{field}_each"], d[before][f"{field}_each"])]
            sqlite[f"{field}_at_{entry['rate']}"] = {"after_over_before": ratio(d[after][field], d[before][field]),
                                                     "per_repeat": each, "spread": spread(each)}
    cl = document["closed_loop"]["runs"]
    each = [ratio(x["rps"], y["rps"]) for x, y in zip(cl[after], cl[before])]
    s = document["closed_loop"]["summary"]
    sqlite["closed_loop_rps"] = {"after_over_before": ratio(s[after]["rps"], s[before]["rps"]), "per_repeat": each,
                                 "spread": spread(each)}
    sqlite["closed_loop_p50"] = {"after_over_before": ratio(s[after]["p50_ms"], s[before]["p50_ms"])}
    adm = document["admissions"]["summary"]
    if f"{before} hot" in adm and f"{after} hot" in adm:
        sqlite["admissions_hot_per_s"] = {"after_over_before": ratio(adm[f"{after} hot"]["admissions_per_s"],
                                                                     adm[f"{before} hot"]["admissions_per_s"])}
    out["sqlite_after_over_before"] = sqlite
    return out

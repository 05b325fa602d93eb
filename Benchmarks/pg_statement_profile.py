#!/usr/bin/env python3
"""Where PostgreSQL's time goes per gateway request.

One gateway on a throwaway PostgreSQL cluster (2 workers, nginx, the simulator), a key with
RPM, TPM and a monthly budget (every limit path on), a wrk closed loop; then, per request:
PostgreSQL's CPU by process, and every statement's execution and planning time from
pg_stat_statements (track = all, so the statements inside the PL/pgSQL functions show too),
and each function's time from pg_stat_user_functions.

    DEPLOXA_GATEWAY_BIN=.build/debug/deploxa-gateway python3 Benchmarks/pg_statement_profile.py [SECONDS] [CONNECTIONS]

Needs wrk and Debian's postgresql 15 (pg_stat_statements ships with it). pg_stat_statements
with planning tracked costs some CPU itself: compare runs of this script with each other, not
with part g's figures. Run it under the build lock on a quiet machine.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "Tests" / "e2e"), str(ROOT / "Benchmarks")]

import gwstack  # noqa: E402
from bench_common import CLK_TCK, cpu_ticks, run_wrk, write_wrk_script  # noqa: E402
from bench_postgres import create_limited, postgres_pids  # noqa: E402
from pgcluster import PostgresCluster  # noqa: E402


def postgres_ticks(cluster: PostgresCluster) -> dict[str, int]:
    """CPU ticks of the cluster's processes, summed by kind (from each process title)."""
    ticks: dict[str, int] = {}
    for pid in postgres_pids(cluster):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        kind = title.split(":", 1)[1].strip().split(" ")[0] if ":" in title else "postmaster"
        kind = "backends (the gateway's connections)" if kind == "postgres" else kind
        ticks[kind] = ticks.get(kind, 0) + cpu_ticks([pid])
    return ticks


def main() -> int:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    tmp = Path(tempfile.mkdtemp(prefix="deploxa-pgprofile-"))
    tmp.chmod(0o755)
    simulator = gwstack.Simulator(tmp).start()
    cluster = PostgresCluster(settings={
        "shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "all",
        "pg_stat_statements.track_planning": "on", "track_functions": "pl"}).start()
    holder: dict = {}
    stack = gwstack.GatewayStack(simulator, name="pgprofile", workers=2, serve_args=["--log-level", "warning"],
                                 before_serve=lambda s: holder.update(key=create_limited(s, simulator)), postgres=cluster)
    stack.provider_key = "sim-key"
    try:
        stack.start()
        db = stack.pg_database
        cluster.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", db=db)
        body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello. [sim words=20]"}]}'
        script = write_wrk_script(tmp / "chat.lua", [("Content-Type", "application/json"),
                                                     ("Authorization", f"Bearer {holder['key']}")], body)
        url = stack.base_url + "/v1/chat/completions"
        run_wrk(script, url, connections, 3, tmp / "warm-up.txt")
        time.sleep(1)
        cluster.psql("SELECT pg_stat_statements_reset(); SELECT pg_stat_reset();", db=db)
        workers = stack.worker_pids()
        before, workers_before = postgres_ticks(cluster), cpu_ticks(workers)
        wrk = run_wrk(script, url, connections, seconds, tmp / "run.txt")
        time.sleep(1)  # the audit writer's last batch
        after, workers_after = postgres_ticks(cluster), cpu_ticks(workers)
        n = max(1, wrk["requests"])
        per_tick = 1e6 / CLK_TCK / n  # µs per request per tick
        total = sum(after.values()) - sum(before.values())
        print(f"wrk -c{connections} {seconds} s: {wrk['rps']} req/s, {wrk['requests']} requests, p50 {wrk['p50_ms']} ms, "
              f"non-2xx {wrk['non2xx']}; PostgreSQL CPU {total * per_tick:.0f} µs per request, "
              f"the gateway's workers {(workers_after - workers_before) * per_tick:.0f}")
        for kind in sorted(after, key=lambda k: before.get(k, 0) - after[k]):
            if after[kind] - before.get(kind, 0):
                print(f"  {(after[kind] - before.get(kind, 0)) * per_tick:7.0f} µs/request  {kind}")
        print("\nstatements (µs per request, calls per request, µs per call, of which planning per request; "
              "top = sent by the gateway, nested = inside a function):")
        print(cluster.psql(f"""
            SELECT lpad(round((total_exec_time + total_plan_time) * 1000 / {n})::text, 6) || '  ' ||
                   lpad(round(calls::numeric / {n}, 3)::text, 6) || '  ' ||
                   lpad(round(((total_exec_time + total_plan_time) / greatest(calls, 1))::numeric * 1000)::text, 6) || '  ' ||
                   lpad(round(total_plan_time * 1000 / {n})::text, 4) || '  ' ||
                   CASE WHEN toplevel THEN 'top    ' ELSE 'nested ' END ||
                   left(regexp_replace(query, '[[:space:]]+', ' ', 'g'), 110)
              FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat%'
             ORDER BY total_exec_time + total_plan_time DESC LIMIT 25""", db=db))
        print("\nfunctions (calls, total µs per request, self µs per request):")
        print(cluster.psql(f"""
            SELECT funcname || ' ' || calls || ' ' || round(total_time * 1000 / {n}) || ' ' || round(self_time * 1000 / {n})
              FROM pg_stat_user_functions ORDER BY total_time DESC""", db=db))
        commits = cluster.psql(f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{db}'", db=db)
        print(f"\ntransactions per request: {int(commits) / n:.2f}")
        return 0
    finally:
        stack.stop()
        simulator.stop()
        cluster.cleanup()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""PostgreSQL's added latency over SQLite at one open-loop rate, for two gateway binaries.

Part g measures every deployment and takes a quarter of an hour; this measures only what a change
to the PostgreSQL request path moves, in a few minutes: three deployments, one gateway master with
2 workers each, part g's limited key (RPM, TPM and a monthly budget, never reached), alternating
within every repeat (and reversed every other repeat):

  sqlite   --after on an SQLite file (the baseline the target is measured against)
  pg-A     --before on a fresh database of a throwaway PostgreSQL cluster
  pg-B     --after on another fresh database of the same cluster
  pg-B-async  with --async: --after again, with synchronous_commit = off for its run (what
           docs/postgres.md says that costs: a database crash forgets the last commits)

Each run: deploxa-loadgen at RATE req/s for 10 s after 2 s of warm-up. Prints each run's p50/p99
and the medians, and PostgreSQL's added p50 (pg − sqlite) for both binaries.

    python3 Benchmarks/pg_overhead_ab.py --before OLD_BIN --after NEW_BIN [--rate 500] [--repeats 3] [--async]

Needs the release build's deploxa-loadgen (.build-bench) and Debian's postgresql. Run it under the
build lock on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "Tests" / "e2e"), str(ROOT / "Benchmarks")]

import gwstack  # noqa: E402
from bench_postgres import create_limited  # noqa: E402
from pgcluster import PostgresCluster  # noqa: E402

BODY = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello. [sim words=20]"}]}'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="gateway binary A (PostgreSQL only)")
    parser.add_argument("--after", required=True, help="gateway binary B (PostgreSQL and the SQLite baseline)")
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--async", dest="with_async", action="store_true",
                        help="also run --after with synchronous_commit = off")
    parser.add_argument("--loadgen", default=str(ROOT / ".build-bench" / "release" / "deploxa-loadgen"))
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="deploxa-pg-ab-"))
    tmp.chmod(0o755)
    body = tmp / "chat.json"
    body.write_text(BODY)
    simulator = gwstack.Simulator(tmp).start()
    cluster = PostgresCluster().start()
    p50s: dict[str, list[float]] = {}

    def run(label: str, binary: str, on_postgres: bool, repeat: int) -> None:
        os.environ["DEPLOXA_GATEWAY_BIN"] = binary
        # One deployment runs at a time, so the server-wide setting is this run's alone (a reload
        # reaches open sessions too).
        commit = "off" if label.endswith("async") else "on"
        cluster.psql(f"ALTER SYSTEM SET synchronous_commit = {commit}; SELECT pg_reload_conf();")
        holder: dict = {}
        stack = gwstack.GatewayStack(simulator, name=f"{label}-{repeat}", workers=2, serve_args=["--log-level", "warning"],
                                     before_serve=lambda s: holder.update(key=create_limited(s, simulator)),
                                     postgres=cluster if on_postgres else None)
        stack.provider_key = "sim-key"
        try:
            stack.start()
            out = tmp / f"{label}-{repeat}.json"
            with open(out, "w") as sink:
                subprocess.run([args.loadgen, "rate", "--url", stack.base_url + "/v1/chat/completions", "--rate", str(args.rate),
                                "--duration", "10", "--warmup", "2", "--connections", "256", "--threads", "2", "--timeout", "10",
                                "--body-file", str(body), "-H", f"Authorization: Bearer {holder['key']}",
                                "-H", "Content-Type: application/json", "--json"],
                               stdout=sink, stderr=subprocess.DEVNULL, timeout=60, check=True)
            result = json.loads(out.read_text())
            p50s.setdefault(label, []).append(result["p50_ms"])
            print(f"{label:7} repeat {repeat}: achieved {result['achieved_rate']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
                  f"p99 {result['p99_ms']:.2f} ms, non-2xx {result['non_2xx']}, errors {result['errors']}", flush=True)
        finally:
            stack.stop()

    try:
        for repeat in range(args.repeats):
            order = [("sqlite", args.after, False), ("pg-A", args.before, True), ("pg-B", args.after, True)]
            if args.with_async:
                order.append(("pg-B-async", args.after, True))
            for label, binary, on_postgres in (reversed(order) if repeat % 2 else order):
                run(label, binary, on_postgres, repeat)
        median = {label: sorted(values)[len(values) // 2] for label, values in p50s.items()}
        print("median p50 (ms): " + ", ".join(f"{label} {value:.2f}" for label, value in median.items()))
        print(f"PostgreSQL's added p50 over SQLite at {args.rate} req/s: "
              + ", ".join(f"{label} {value - median['sqlite']:.2f} ms" for label, value in median.items() if label != "sqlite"))
    finally:
        simulator.stop()
        cluster.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

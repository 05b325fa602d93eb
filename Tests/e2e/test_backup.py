"""`deploxa-gateway backup` and `check` while `serve` answers a steady load through nginx.

Three rounds: a pool of threads sends chat requests for ~6 s; in the middle the test reads the
audit rows committed in the live database so far, runs `backup PATH`, restores the copy into a
new file, `check`s it and reads its audit log with the CLI. Every row committed before the
backup began must be in the copy, and no request of the load may fail.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import gwstack
from gwstack import GatewayStack, gateway_bin

LOAD_SECONDS = 6.0
BACKUP_AT = 2.5
THREADS = 16
SEED_ROWS = 100_000
RATE = 150.0  # requests per second, all threads together


@pytest.fixture(scope="module")
def backup_stack(simulator):
    stack = GatewayStack(simulator, name="backup", workers=4, serve_args=["--upstream-timeout", "5", "--graceful-timeout", "10"])
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([gateway_bin(), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


class Load:
    """Threads sending non-streaming chat requests, ~RATE a second together, until `stopping`; each answer's id, status and
    the monotonic time it was received."""

    def __init__(self, stack: GatewayStack):
        self.stack = stack
        self.lock = threading.Lock()
        self.results: list[tuple[str | None, int, float]] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def worker(self, index: int) -> None:
        with httpx.Client(base_url=self.stack.base_url, timeout=30, trust_env=False) as client:
            number = 0
            interval = THREADS / RATE
            next_send = time.monotonic() + index * interval / THREADS
            while not self.stopping.is_set():
                time.sleep(max(0.0, next_send - time.monotonic()))
                next_send += interval
                number += 1
                body = {"model": "gpt-4o", "messages": [{"role": "user", "content": f"load {index}-{number}"}]}
                try:
                    response = client.post("/v1/chat/completions", headers=self.stack.auth(), json=body)
                    received = time.monotonic()
                    with self.lock:
                        self.results.append((response.headers.get("x-request-id"), response.status_code, received))
                except httpx.HTTPError as error:
                    with self.lock:
                        self.errors.append(repr(error))

    def answered_before(self, moment: float) -> set[str]:
        with self.lock:
            return {rid for rid, status, received in self.results if rid and received < moment}


def seed_audit_rows(db, count: int) -> None:
    """Old audit rows written straight into the live database (batches of 5,000 per transaction,
    so the workers' own audit writes keep getting the lock)."""
    now_ms = int(time.time() * 1000) - 86_400_000
    with sqlite3.connect(db, timeout=30) as connection:
        for start in range(0, count, 5000):
            connection.executemany(
                "INSERT INTO audit_log (request_id, time_ms, method, route, provider, model_requested, model_served, "
                "status, prompt_tokens, completion_tokens, cost_usd, latency_ms) "
                "VALUES (?, ?, 'POST', '/v1/chat/completions', 'openai', 'gpt-4o', 'gpt-4o-2024-08-06', 200, 12, 30, 0.0003, 41.5)",
                [(f"seed-{i:07d}", now_ms + i) for i in range(start, min(count, start + 5000))])
            connection.commit()


def audit_ids(db, project: str | None = None) -> set[str]:
    result = run_cli("--db", str(db), "audit", "export", "--format", "ndjson")
    assert result.returncode == 0, result.stderr
    return {json.loads(line)["request_id"] for line in result.stdout.splitlines() if line.strip()}


def test_backup_under_load_three_times(backup_stack):
    stack = backup_stack
    rounds = []
    for round_number in range(1, 4):
        target = stack.dir / f"backup-{round_number}.db"
        load = Load(stack)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            for index in range(THREADS):
                pool.submit(load.worker, index)
            time.sleep(BACKUP_AT)
            # "Committed before the backup began": what the live database shows right now.
            committed = {row["request_id"] for row in stack.audit_rows()}
            backup_began = time.monotonic()
            answered = load.answered_before(backup_began)
            result = stack.cli("backup", str(target), "--json", timeout=120)
            backup_ended = time.monotonic()
            time.sleep(max(0.0, LOAD_SECONDS - (time.monotonic() - started)))
            load.stopping.set()
        elapsed = time.monotonic() - started
        summary = json.loads(result.stdout)

        statuses = [status for _, status, _ in load.results]
        during = [status for _, status, received in load.results if backup_began <= received <= backup_ended]
        assert not load.errors, f"{len(load.errors)} requests raised, e.g. {load.errors[0]}"
        assert statuses and all(s == 200 for s in statuses), {s: statuses.count(s) for s in set(statuses)}
        # The load really spanned the backup: answers before it began and after it ended.
        assert any(received < backup_began for _, _, received in load.results)
        assert any(received > backup_ended for _, _, received in load.results)

        # Restore: a copy of the backup in a new file; `check` it, then read it with the CLI.
        restored = stack.dir / f"restored-{round_number}.db"
        shutil.copyfile(target, restored)
        assert not (target.parent / (target.name + "-wal")).exists()
        check = run_cli("--db", str(restored), "check", "--json")
        assert check.returncode == 0, check.stdout + check.stderr
        report = json.loads(check.stdout)
        assert report["healthy"] and report["integrity"] == ["ok"] and report["foreign_key_violations"] == []
        assert report["audit_rows"] == summary["audit_rows"]
        assert report["schema_version"] == report["expected_schema_version"] == summary["schema_version"]
        in_copy = audit_ids(restored)
        missing = committed - in_copy
        assert not missing, f"{len(missing)} audit rows committed before the backup are not in the copy"
        assert len(in_copy) == summary["audit_rows"]

        rate = len(statuses) / elapsed
        rounds.append(
            f"backup round {round_number}: load {len(statuses)} requests in {elapsed:.1f} s ({rate:.0f} req/s), all 200, "
            f"{len(during)} answered while the backup command ran; backup {summary['seconds']:.3f} s "
            f"({backup_ended - backup_began:.2f} s with the CLI start), {summary['pages']} pages, {summary['bytes']} bytes; "
            f"{len(committed)} rows committed before it, all in the copy ({summary['audit_rows']} rows); "
            f"{len(answered & in_copy)}/{len(answered)} of the answers received before it")

    for line in rounds:
        print(line)
        gwstack.SUMMARY.append(line)
    assert len(rounds) == 3


def test_backup_refuses_to_overwrite_and_check_fails_on_damage(backup_stack):
    stack = backup_stack
    target = stack.dir / "kept.db"
    target.write_bytes(b"do not overwrite me")
    refused = stack.cli("backup", str(target), check=False)
    assert refused.returncode != 0 and "--force" in refused.stderr
    assert target.read_bytes() == b"do not overwrite me"
    forced = stack.cli("backup", str(target), "--force")
    assert forced.stdout.startswith(f"Backed up {stack.db} to {target}:"), forced.stdout
    assert "schema version" in forced.stdout and "audit rows" in forced.stdout
    assert run_cli("--db", str(target), "check").returncode == 0

    damaged = stack.dir / "damaged.db"
    shutil.copyfile(target, damaged)
    size = damaged.stat().st_size
    with open(damaged, "r+b") as f:
        f.seek((size // 4096 // 2) * 4096)
        f.write(b"\xa5" * 3 * 4096)
    bad = run_cli("--db", str(damaged), "check", "--json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert json.loads(bad.stdout)["healthy"] is False
    assert run_cli("--db", str(damaged), "check", "--quick").returncode == 1
    # The live database is healthy, and `check` reads it without disturbing the workers.
    live = run_cli("--db", str(stack.db), "check", "--quick")
    assert live.returncode == 0, live.stdout


def test_page_by_page_backup_under_load_is_measured(backup_stack):
    """The measurement behind the default (docs/operations.md): the online backup API (200 pages
    per step, 10 ms pauses) against the same load on a database grown to a realistic size
    (SEED_ROWS more audit rows), given 10 s, then VACUUM INTO. Reported; asserted: the load
    never failed and the VACUUM INTO copy is healthy and holds every row committed before it."""
    stack = backup_stack
    seed_audit_rows(stack.db, SEED_ROWS)
    load = Load(stack)
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for index in range(THREADS):
            pool.submit(load.worker, index)
        time.sleep(1.0)
        began = time.monotonic()
        result = stack.cli("backup", str(stack.dir / "pages.db"), "--json", "--method", "backup-api",
                           "--pages-per-step", "200", "--pause-ms", "10", "--timeout", "10", check=False, timeout=60)
        took = time.monotonic() - began
        committed = {row["request_id"] for row in stack.audit_rows()}
        vacuum = stack.cli("backup", str(stack.dir / "vacuum.db"), "--json", timeout=60)
        load.stopping.set()
    statuses = [status for _, status, _ in load.results]
    assert statuses and all(s == 200 for s in statuses), {s: statuses.count(s) for s in set(statuses)}
    vacuum_summary = json.loads(vacuum.stdout)
    if result.returncode == 0:
        pages_summary = json.loads(result.stdout)
        outcome = (f"finished in {pages_summary['seconds']:.2f} s after {pages_summary['steps']} steps and "
                   f"{pages_summary['restarts']} restarts")
    else:
        outcome = f"gave up after {took:.1f} s: {result.stderr.strip()}"
    line = (f"backup-api under load ({len(statuses)} requests): {outcome}; "
            f"vacuum-into: {vacuum_summary['seconds']:.3f} s, {vacuum_summary['pages']} pages, "
            f"{vacuum_summary['audit_rows']} audit rows")
    print(line)
    gwstack.SUMMARY.append(line)
    assert run_cli("--db", str(stack.dir / "vacuum.db"), "check").returncode == 0
    assert vacuum_summary["audit_rows"] >= SEED_ROWS and not committed - audit_ids(stack.dir / "vacuum.db")

"""Chaos: workers killed with SIGKILL under steady load, the database's write lock held by another
process, and the database's filesystem full. Through nginx, four workers, one SQLite file and the
simulator, each test on a stack of its own.

The invariant everywhere: every request a client got an X-Request-Id for has exactly one audit
row once the gateway has settled, and no request id has two. Limited requests fail closed (503)
while the database cannot be written; unlimited ones keep being served.

Summary numbers are printed, added to the run's summary, and appended to the JSON file named by
$DEPLOXA_RELIABILITY_OUT (a list of objects), if set.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import sqlite3
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

import gwstack
from gwstack import GatewayStack, make_temp_dir, wait_until

CHAT = "/v1/chat/completions"
SERVE_ARGS = ["--socket-mode", "0666", "--upstream-timeout", "10", "--graceful-timeout", "10", "--breaker-failures", "0"]


def _uid() -> str:
    return uuid.uuid4().hex[:12]


def _chat(text: str, **extra) -> dict:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra}


@contextlib.contextmanager
def own_stack(simulator, name: str, workers: int = 4, db_path: Path | None = None):
    stack = GatewayStack(simulator, name=name, workers=workers, serve_args=SERVE_ARGS)
    if db_path is not None:
        stack.db = db_path
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def _report(name: str, numbers: dict) -> str:
    line = f"{name}: " + ", ".join(f"{k}={v}" for k, v in numbers.items())
    print("\n" + line)
    gwstack.SUMMARY.append(line)
    out = os.environ.get("DEPLOXA_RELIABILITY_OUT")
    if out:
        path = Path(out)
        try:
            existing = json.loads(path.read_text()) if path.exists() else []
            if not isinstance(existing, list):
                existing = [existing]
        except ValueError:
            existing = []
        existing.append({"test": name, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **numbers})
        path.write_text(json.dumps(existing, indent=2) + "\n")
    return line


def _audit_counts(stack: GatewayStack) -> Counter:
    return Counter(row["request_id"] for row in stack.audit_rows())


def _settle(stack: GatewayStack, ids: set[str], timeout: float) -> tuple[Counter, float]:
    """Polls the audit export until every id has a row (or `timeout`); returns the counts and
    the seconds it took."""
    started = time.monotonic()
    while True:
        counts = _audit_counts(stack)
        if all(rid in counts for rid in ids) or time.monotonic() - started > timeout:
            return counts, time.monotonic() - started
        time.sleep(0.25)


# --------------------------------------------------------------------------------------------
# 1. kill -9 under load


TOTAL = 1200
RATE = 100.0  # requests per second, for the whole run
CLIENTS = 12
KILLS = 6
KILL_INTERVAL = 1.6
CACHED_PROMPTS = 24


def test_kill9_under_load_loses_no_audit_row(simulator):
    with own_stack(simulator, "chaos") as stack:
        limited = stack.create_key("chaos-limited", None, "--rpm", "100000", "--tpm", "100000000", "--monthly-budget", "100000")
        run = _uid()
        results: list[dict | None] = [None] * TOTAL
        next_index = iter(range(TOTAL))
        index_lock = threading.Lock()
        start_at = time.monotonic() + 0.5
        done = threading.Event()

        def request(http: httpx.Client, i: int) -> dict:
            kind = ("plain", "stream", "cached")[i % 3]
            key = limited["secret"] if i % 2 else stack.key
            headers = stack.auth(key)
            if kind == "plain":
                body = _chat(f"chaos {run} {i} [sim words=3]")
            elif kind == "stream":
                body = _chat(f"chaos {run} {i} [sim words=5 chunk_delay_ms=20]", stream=True)
            else:
                body = _chat(f"chaos cached {run} {i % CACHED_PROMPTS} [sim words=4]")
                headers = {**headers, "X-Cache-TTL": "60"}
            outcome = {"i": i, "kind": kind, "status": None, "rid": None, "error": None, "complete": False}
            try:
                with http.stream("POST", CHAT, headers=headers, json=body) as response:
                    outcome["status"] = response.status_code
                    outcome["rid"] = response.headers.get("x-request-id")
                    raw = response.read()
                    outcome["complete"] = True
                    if kind == "stream" and response.status_code == 200 and b"[DONE]" not in raw:
                        outcome["complete"] = False
            except httpx.HTTPError as error:
                outcome["error"] = type(error).__name__
            return outcome

        def client() -> None:
            with httpx.Client(base_url=stack.base_url, timeout=30, trust_env=False,
                              limits=httpx.Limits(max_keepalive_connections=2)) as http:
                while True:
                    with index_lock:
                        i = next(next_index, None)
                    if i is None:
                        return
                    delay = start_at + i / RATE - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    results[i] = request(http, i)

        kills: list[int] = []
        chooser = random.Random(20261203)  # the same victims' order every run

        def killer() -> None:
            time.sleep(1.5)
            for _ in range(KILLS):
                if done.is_set():
                    return
                pids = sorted(stack.worker_pids())
                if pids:
                    victim = chooser.choice(pids)
                    gwstack.signal_pid(victim, 9)
                    kills.append(victim)
                done.wait(KILL_INTERVAL)

        started = time.monotonic()
        clients = [threading.Thread(target=client, daemon=True, name=f"chaos-client-{n}") for n in range(CLIENTS)]
        assassin = threading.Thread(target=killer, daemon=True, name="chaos-killer")
        for thread in clients:
            thread.start()
        assassin.start()
        for thread in clients:
            thread.join(timeout=240)
        done.set()
        assassin.join(timeout=10)
        elapsed = time.monotonic() - started
        assert not any(t.is_alive() for t in clients), "clients still running after 240 s"
        assert all(r is not None for r in results)

        stack.wait_for_workers(timeout=15)
        received = [r for r in results if r["rid"]]
        ids = {r["rid"] for r in received}
        counts, settle_time = _settle(stack, ids, timeout=15)

        statuses = Counter(r["status"] for r in results)
        without_id = [r for r in results if not r["rid"]]
        nginx_502 = sum(1 for r in without_id if r["status"] == 502)
        no_answer = sum(1 for r in without_id if r["status"] is None)
        cut = sum(1 for r in received if not r["complete"])
        lost = sorted(rid for rid in ids if rid not in counts)
        duplicates = sorted(rid for rid, n in counts.items() if n > 1)
        numbers = {
            "sent": len(results), "seconds": round(elapsed, 1), "rate_per_s": round(len(results) / elapsed, 1),
            "answered_with_id": len(received), "status_200": statuses.get(200, 0),
            "nginx_502_without_id": nginx_502, "other_without_id": len(without_id) - nginx_502 - no_answer,
            "transport_errors_before_head": no_answer, "cut_after_head": cut,
            "rows": sum(counts.values()), "lost": len(lost), "duplicates": len(duplicates), "kills": len(kills),
            "settle_s": round(settle_time, 1),
        }
        _report("chaos kill -9", numbers)

        assert len(kills) >= 5, f"only {len(kills)} workers were killed"
        assert len(ids) == len(received), "two responses carried the same X-Request-Id"
        assert not lost, f"{len(lost)} request ids a client received have no audit row, e.g. {lost[:5]}; {numbers}"
        assert not duplicates, f"{len(duplicates)} request ids have several audit rows, e.g. {duplicates[:5]}; {numbers}"
        # Sanity: the load was real and mostly served.
        assert statuses.get(200, 0) >= TOTAL * 0.8, dict(statuses)
        other = {s: n for s, n in statuses.items() if s not in (200, 502, None)}
        assert not other, f"unexpected statuses: {other}"


# --------------------------------------------------------------------------------------------
# 2. The write lock held by another process


LOCK_SECONDS = 5.0


def _flow(stack: GatewayStack, key: str, tag: str, stop: threading.Event, into: list) -> None:
    with stack.http(timeout=20) as http:
        n = 0
        while not stop.is_set():
            n += 1
            started = time.monotonic()
            entry = {"tag": tag, "start": started, "status": None, "rid": None, "retry_after": None, "error": None, "type": None}
            try:
                response = http.post(CHAT, headers=stack.auth(key), json=_chat(f"{tag} {n} {_uid()} [sim words=2]"))
                entry.update(status=response.status_code, rid=response.headers.get("x-request-id"),
                             retry_after=response.headers.get("retry-after"))
                if response.status_code != 200:
                    try:
                        entry["type"] = response.json()["error"]["type"]
                    except Exception:  # noqa: BLE001
                        entry["type"] = "not-openai-shape"
            except httpx.HTTPError as error:
                entry["error"] = repr(error)
            entry["end"] = time.monotonic()
            into.append(entry)
            time.sleep(0.1)


def test_database_write_lock_fails_closed_for_limited_keys_and_serves_the_rest(simulator):
    with own_stack(simulator, "dblock") as stack:
        limited = stack.create_key("lock-limited", None, "--rpm", "100000")
        with stack.http() as http:
            for key in (stack.key, limited["secret"]):
                for _ in range(4):
                    assert http.post(CHAT, headers=stack.auth(key), json=_chat("warm")).status_code == 200
        workers = stack.wait_for_workers()

        locked, released = threading.Event(), threading.Event()
        window: dict = {}

        def hold() -> None:
            db = sqlite3.connect(stack.db, timeout=10, isolation_level=None)
            try:
                db.execute("BEGIN IMMEDIATE")
                window["start"] = time.monotonic()
                locked.set()
                time.sleep(LOCK_SECONDS)
                window["end"] = time.monotonic()
                db.execute("ROLLBACK")
            finally:
                db.close()
                released.set()

        stop = threading.Event()
        entries: list = []
        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        assert locked.wait(10), "could not take the database's write lock"
        flows = [threading.Thread(target=_flow, args=(stack, key, tag, stop, entries), daemon=True)
                 for key, tag in ((limited["secret"], "limited"), (stack.key, "unlimited"))]
        for thread in flows:
            thread.start()
        assert released.wait(LOCK_SECONDS + 10)
        time.sleep(1.0)  # a little traffic after the release too
        stop.set()
        for thread in flows:
            thread.join(timeout=30)
        assert stack.worker_pids() == workers, "a worker died while the database was locked"

        during = [e for e in entries if e["start"] >= window["start"] and e["end"] <= window["end"]]
        limited_during = [e for e in during if e["tag"] == "limited"]
        unlimited_during = [e for e in during if e["tag"] == "unlimited"]
        assert limited_during, "no limited request both started and ended while the lock was held"
        assert all(e["status"] == 503 for e in limited_during), \
            f"limited requests while locked: {[(e['status'], e['type']) for e in limited_during]}"
        assert all(e["type"] == "service_unavailable" for e in limited_during), [e["type"] for e in limited_during]
        assert all(e["retry_after"] and int(e["retry_after"]) >= 1 for e in limited_during), \
            [e["retry_after"] for e in limited_during]
        slowest = max(e["end"] - e["start"] for e in limited_during)
        assert slowest < 4.0, f"a limited request took {slowest:.1f} s to fail closed (busy timeout 2 s)"
        unlimited_statuses = Counter(e["status"] for e in unlimited_during)
        assert unlimited_statuses.get(200, 0) >= 3 and set(unlimited_statuses) == {200}, \
            f"unlimited requests while locked: {dict(unlimited_statuses)}"

        ids = {e["rid"] for e in entries if e["rid"]}
        counts, settle_time = _settle(stack, ids, timeout=15)
        lost = [rid for rid in ids if rid not in counts]
        duplicates = [rid for rid, n in counts.items() if n > 1]
        _report("chaos db write lock", {
            "lock_s": LOCK_SECONDS, "requests": len(entries), "limited_503_while_locked": len(limited_during),
            "unlimited_200_while_locked": unlimited_statuses.get(200, 0), "answered_with_id": len(ids),
            "lost": len(lost), "duplicates": len(duplicates), "settle_s": round(settle_time, 1)})
        assert not lost, f"{len(lost)} answered requests have no audit row after the lock was released: {lost[:5]}"
        assert not duplicates, f"request ids with several audit rows: {duplicates[:5]}"


# --------------------------------------------------------------------------------------------
# 3. The database's filesystem full


def _mount_tmpfs(directory: Path, size: str = "16m") -> str | None:
    """Mounts a tmpfs; returns None, or why it could not."""
    if os.geteuid() != 0:
        return "not root: cannot mount a tmpfs"
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(directory)],
                            capture_output=True, text=True, timeout=20)
    if result.returncode != 0:
        return f"mount -t tmpfs refused: {result.stderr.strip()}"
    return None


def _unmount(directory: Path) -> None:
    result = subprocess.run(["umount", str(directory)], capture_output=True, timeout=20)
    if result.returncode != 0:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True, timeout=20)


def _fill(path: Path) -> int:
    """Writes `path` until the filesystem is full; returns the bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as filler:
        for size in (1 << 20, 1 << 12, 1):
            block = b"\0" * size
            while True:
                try:
                    written += filler.write(block)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
    return written


def test_full_disk_fails_closed_and_recovers(simulator):
    mount_dir = make_temp_dir("fulldisk")
    why = _mount_tmpfs(mount_dir)
    if why:
        pytest.skip(why)
    try:
        with own_stack(simulator, "fulldisk", db_path=mount_dir / "gw.db") as stack:
            limited = stack.create_key("full-limited", None, "--rpm", "100000")
            all_ids: set[str] = set()
            with stack.http(timeout=20) as http:
                def send(key: str, text: str) -> httpx.Response:
                    response = http.post(CHAT, headers=stack.auth(key), json=_chat(f"{text} {_uid()} [sim words=2]"))
                    if response.headers.get("x-request-id"):
                        all_ids.add(response.headers["x-request-id"])
                    return response

                for key in (stack.key, limited["secret"]):
                    for _ in range(4):
                        assert send(key, "warm").status_code == 200
                workers = stack.wait_for_workers()
                # Settle the WAL back into the database and truncate it, so that any write now
                # needs new space.
                time.sleep(0.5)
                with contextlib.closing(sqlite3.connect(stack.db, timeout=10)) as db:
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                filler = mount_dir / "filler"
                filled = _fill(filler)
                free = os.statvfs(mount_dir).f_bavail
                assert free == 0, f"the tmpfs still has {free} free blocks after writing {filled} bytes"

                full_limited = [send(limited["secret"], f"full limited {i}") for i in range(6)]
                full_unlimited = [send(stack.key, f"full unlimited {i}") for i in range(6)]
                full_ids = {r.headers["x-request-id"] for r in full_limited + full_unlimited if r.headers.get("x-request-id")}
                time.sleep(0.3)
                assert stack.worker_pids() == workers, f"a worker died on a full disk:\n{gwstack.tail(stack.gateway_log, 30)}"
                limited_statuses = [r.status_code for r in full_limited]
                unlimited_statuses = [r.status_code for r in full_unlimited]
                assert all(r.headers.get("x-request-id") for r in full_limited + full_unlimited), \
                    "nginx answered by itself (a worker died or hung)"
                assert limited_statuses == [503] * 6, f"limited requests on a full disk: {limited_statuses}"
                for response in full_limited:
                    error = response.json()["error"]
                    assert error["type"] == "service_unavailable", error
                    assert int(response.headers["retry-after"]) >= 1
                assert set(unlimited_statuses) <= {200, 503}, f"unlimited requests on a full disk: {unlimited_statuses}"

                filler.unlink()
                freed_at = time.monotonic()
                recovered = wait_until(lambda: (lambda r: r if r.status_code == 200 else None)(send(limited["secret"], "recovered")),
                                       timeout=10, interval=0.5, what="a limited request to succeed after space was freed")
                recovery_s = time.monotonic() - freed_at
                assert recovered.status_code == 200
                assert send(stack.key, "recovered unlimited").status_code == 200

            counts, settle_time = _settle(stack, all_ids, timeout=20)
            lost = sorted(rid for rid in all_ids if rid not in counts)
            lost_full = sorted(rid for rid in full_ids if rid not in counts)
            duplicates = sorted(rid for rid, n in counts.items() if n > 1)
            _report("chaos disk full", {
                "limited_503": limited_statuses.count(503), "unlimited_200": unlimited_statuses.count(200),
                "unlimited_503": unlimited_statuses.count(503), "recovery_s": round(recovery_s, 1),
                "answered_with_id": len(all_ids), "lost": len(lost), "lost_while_full": len(lost_full),
                "duplicates": len(duplicates), "settle_s": round(settle_time, 1)})
            assert not lost_full, f"{len(lost_full)} requests answered while the disk was full have no audit row: {lost_full[:5]}"
            assert not lost, f"{len(lost)} answered requests have no audit row: {lost[:5]}"
            assert not duplicates, f"request ids with several audit rows: {duplicates[:5]}"
            assert stack.worker_pids() == workers
    finally:
        _unmount(mount_dir)

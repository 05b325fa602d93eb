"""Audit retention on a gateway of its own (`serve --audit-retention-days 30
--audit-retention-interval 1`): raw audit rows older than 30 days are deleted by the janitor, the
usage summaries (rollups) of those days are kept, newer rows are kept, and the WAL file does not
grow without bound after the deletes (SQLite; on PostgreSQL, with DEPLOXA_E2E_BACKEND=postgres,
the same rows go, by partition drops and deletes, and there is no WAL file to check).

Before the gateway starts (GatewayStack's `before_serve` hook: the database exists, nothing
serves yet), 3,000 rows dated 40–60 days ago and 200 rows dated 25 days ago are inserted straight
into `audit_log` and folded into the rollups (admin_helpers.insert_audit_rows: on SQLite a plain
INSERT then `deploxa-gateway rollup rebuild`, on PostgreSQL `deploxa_append_audit`), and the CLI's
`usage --by day` for the old range is read. Once the janitor has deleted the old rows, `/usage`
for that range must still report exactly what those rows held.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from admin_helpers import (Admin, assert_same_usage, chat, create_token, day_floor, insert_audit_rows, project_ids, rfc3339,
                           sum_usage, usage_of_rows, utc_now)
from gwstack import GatewayStack, wait_until

OLD_ROWS = 3000
KEPT_ROWS = 200
WAL_BOUND = 64 * 1024 * 1024


def _row(i: int, moment: datetime, org_id: int, project_id: int, key_id: str, prefix: str) -> tuple:
    """A varied audit row: errors, cache hits and unknown costs among ordinary requests.

    Costs are whole micro-dollars, so the rollups' nano-dollar sums are exact."""
    prompt, completion = 5 + i % 40, 8 + i % 25
    status, cost, cache_hit = 200, (prompt * 2 + completion * 3) * 1e-6, 0
    if i % 13 == 0:
        status, prompt, completion, cost = 500, 0, 0, None
    elif i % 17 == 0:
        prompt, completion, cost, cache_hit = 0, 0, 0.0, 1
    elif i % 19 == 0:
        cost = None  # tokens but no price: an unknown cost
    provider, model = [("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4"), ("google", "gemini-2.0-flash")][i % 3]
    return (f"req_{prefix}{i:020d}", int(moment.timestamp() * 1000), org_id, project_id, key_id, f"old-user-{i % 5}", provider,
            model, model, status, prompt, completion, cost, 10.0 + (i * 7) % 90, cache_hit, i % 2)


def _as_audit(row: tuple) -> dict:
    """An inserted tuple in the shape of an audit row, for usage_of_rows."""
    return {"time_ms": row[1], "status": row[9], "prompt_tokens": row[10], "completion_tokens": row[11], "cost_usd": row[12],
            "cache_hit": bool(row[14]), "cached_tokens": 0}


@pytest.fixture(scope="module")
def retention(simulator):
    now = utc_now()
    seeded: dict = {"now": now}
    # The old range, whole UTC days: every old row lies inside it, no kept row does.
    seeded["from"] = day_floor(now - timedelta(days=61))
    seeded["to"] = day_floor(now - timedelta(days=39))

    def seed(stack: GatewayStack) -> None:
        org_id, project_id = project_ids(stack, stack.PROJECT)
        old = [_row(i, now - timedelta(days=40 + 20 * i / OLD_ROWS, minutes=7), org_id, project_id, stack.key_id, "old")
               for i in range(OLD_ROWS)]
        kept = [_row(i, now - timedelta(days=25, minutes=i), org_id, project_id, stack.key_id, "kept") for i in range(KEPT_ROWS)]
        insert_audit_rows(stack, old + kept)  # and folds them into the rollups
        seeded["old"], seeded["kept"] = old, kept
        seeded["cli_by_day"] = json.loads(stack.cli(
            "usage", "--project", stack.PROJECT, "--by", "day", "--from", seeded["from"].strftime("%Y-%m-%d"),
            "--to", (seeded["to"] - timedelta(days=1)).strftime("%Y-%m-%d"), "--json").stdout)
        seeded["token"] = create_token(stack, name="retention")["secret"]

    stack = GatewayStack(simulator, name="retention", workers=2, before_serve=seed,
                         serve_args=["--audit-retention-days", "30", "--audit-retention-interval", "1", "--upstream-timeout", "2"])
    try:
        stack.start()
        seeded["stack"] = stack
        seeded["admin"] = Admin(stack, seeded["token"], "retention token")
        yield seeded
    finally:
        stack.stop()


def _count(stack: GatewayStack, where: str) -> int:
    return int(stack.sql(f"SELECT count(*) FROM audit_log WHERE {where}"))


def _expected_by_day(rows: list[tuple]) -> dict:
    days = defaultdict(list)
    for row in rows:
        days[datetime.fromtimestamp(row[1] / 1000, timezone.utc).strftime("%Y-%m-%d")].append(_as_audit(row))
    return {day: usage_of_rows(members) for day, members in days.items()}


def test_retention_deletes_old_rows_and_keeps_their_usage(retention):
    stack, admin = retention["stack"], retention["admin"]
    old, kept = retention["old"], retention["kept"]
    window = {"from": rfc3339(retention["from"]), "to": rfc3339(retention["to"])}
    expected_days = _expected_by_day(old)
    expected_total = usage_of_rows(_as_audit(r) for r in old)
    assert expected_total["requests"] == OLD_ROWS and expected_total["errors"] and expected_total["cache_hits"]
    assert expected_total["unknown_cost_requests"]

    # What the rollups said before anything was deleted (read with the CLI before serve started).
    cli_days = {row["day"]: row for row in retention["cli_by_day"]}
    assert set(cli_days) == set(expected_days), (sorted(cli_days), sorted(expected_days))
    names = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "unknown_cost_requests", "cache_hits", "errors")
    for day, figures in expected_days.items():
        assert_same_usage(cli_days[day], figures, f"usage --by day before retention, {day}", names)

    cutoff_ms = int((retention["now"] - timedelta(days=30)).timestamp() * 1000)
    wait_until(lambda: _count(stack, f"time_ms < {cutoff_ms}") == 0, timeout=90, interval=0.5,
               what="the janitor to delete every audit row older than 30 days")
    assert admin.audit_walk(window) == [], "no raw rows are left in the old range"
    assert admin.export_ndjson(window) == []

    # The rollups kept the old days: /usage for that range is what the deleted rows held.
    for grouping in ("day", "model", "provider", "user"):
        usage = admin.ok("GET", "/usage", params={"group_by": grouping, **window})
        assert_same_usage(usage["total"], sum_usage(usage["data"]), f"/usage?group_by={grouping}: total vs groups")
        assert_same_usage(usage["total"], expected_total, f"/usage?group_by={grouping} after retention vs the deleted rows")
    by_day = {g["group"]: g for g in admin.ok("GET", "/usage", params={"group_by": "day", **window})["data"]}
    assert set(by_day) == set(expected_days), (sorted(by_day), sorted(expected_days))
    for day, figures in expected_days.items():
        assert_same_usage(by_day[day], figures, f"/usage day {day} after retention")
        assert by_day[day]["latency_ms"]["p50"] is not None, by_day[day]

    # Newer rows stay, through several more janitor passes (interval 1 s).
    time.sleep(3)
    assert _count(stack, "request_id LIKE 'req_kept%'") == KEPT_ROWS
    kept_window = {"from": rfc3339(retention["now"] - timedelta(days=26)), "to": rfc3339(retention["now"] - timedelta(days=24))}
    assert {r["request_id"] for r in admin.audit_walk(kept_window)} == {r[0] for r in kept}


def test_recent_requests_are_kept_and_the_wal_stays_bounded(retention):
    stack, admin = retention["stack"], retention["admin"]
    cutoff_ms = int((retention["now"] - timedelta(days=30)).timestamp() * 1000)
    wait_until(lambda: _count(stack, f"time_ms < {cutoff_ms}") == 0, timeout=90, interval=0.5, what="the old rows to go")
    sent = []
    for i in range(5):
        response = chat(stack, stack.key, content=f"recent {i}")
        assert response.status_code == 200, response.text
        sent.append(response.headers["x-request-id"])
    for request_id in sent:
        admin.wait_for_row(request_id)
    time.sleep(2.5)  # two more janitor passes: recent rows must survive them
    recent = {r["request_id"] for r in admin.audit_walk({"from": rfc3339(retention["now"] - timedelta(hours=1))})}
    assert set(sent) <= recent
    assert _count(stack, f"time_ms >= {cutoff_ms}") >= KEPT_ROWS + len(sent)
    if stack.postgres is None:  # SQLite's WAL file; Postgres keeps no per-database WAL to measure here
        wal = stack.db.with_name(stack.db.name + "-wal")
        size = wal.stat().st_size if wal.exists() else 0
        assert size < WAL_BOUND, f"the WAL is {size} bytes after the deletes (bound {WAL_BOUND})"

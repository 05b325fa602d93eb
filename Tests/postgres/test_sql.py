"""The PostgreSQL schema and request-path functions (Sources/GatewayStorePostgres/PostgresMigrations.swift)
against a throwaway cluster: exactness under concurrency (pgbench with custom scripts), idempotent
audit batches, the export sequencer and partitions. (Admissions per second: Benchmarks/run_benchmarks.py part g.)

    python3 -m pytest -q -s Tests/postgres/test_sql.py      (-s shows the measured numbers)

Needs Debian's postgresql 15 binaries (/usr/lib/postgresql/15/bin or $DEPLOXA_PG_BIN) and, when
run as root, the `postgres` user. No Python driver: psql and pgbench only.
"""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests" / "e2e"))
import pgcluster  # noqa: E402

MIGRATIONS = REPO / "Sources" / "GatewayStorePostgres" / "PostgresMigrations.swift"


def migration_steps() -> list[tuple[int, str, str]]:
    text = MIGRATIONS.read_text()
    steps = re.findall(r'Step\(version: (\d+), name: "([^"]+)", sql: """\n(.*?)\n[ \t]*"""\)', text, re.S)
    assert steps, "no migration steps found"
    for _, _, sql in steps:
        assert "\\" not in sql, "migration SQL must not contain backslashes"
    return [(int(version), name, sql) for version, name, sql in steps]


@pytest.fixture(scope="module")
def pg():
    cluster = pgcluster.PostgresCluster().start()
    try:
        # As the Swift runner does: each step in one transaction under the advisory lock.
        cluster.psql("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text, applied_at timestamptz DEFAULT now())")
        for version, name, sql in migration_steps():
            cluster.psql(f"BEGIN;\nSELECT pg_advisory_xact_lock(7474);\n{sql}\n;\n"
                         f"INSERT INTO schema_migrations (version, name) VALUES ({version}, '{name}');\nCOMMIT;\n")
        cluster.psql("CREATE TABLE test_log (tag text, ok boolean)")
        yield cluster
    finally:
        cluster.cleanup()


def arr(values, kind="bigint") -> str:
    return "ARRAY[" + ", ".join("NULL" if v is None else (f"'{v}'" if kind == "text" else str(v)) for v in values) + f"]::{kind}[]"


def admit_call(scopes, rpm=None, tpm=None, budget=None, cap=None, estimate=0, window=3600, cache=False) -> str:
    n = len(scopes)
    rpm, tpm, budget, cap = (x if x is not None else [None] * n for x in (rpm, tpm, budget, cap))
    return (f"deploxa_admit({arr(scopes, 'text')}, {arr(rpm)}, {arr(tpm)}, {arr(budget)}, {arr(cap)}, "
            f"{estimate}, {window}, {'true' if cache else 'false'})")


ADMIT_COLUMNS = ["admitted", "reason", "scope_index", "retry_after", "requests_limit", "requests_remaining",
                 "requests_reset", "tokens_limit", "tokens_remaining", "tokens_reset", "second", "month"]


def admit(pg, *args, **kwargs) -> dict:
    row = pg.psql(f"SELECT * FROM {admit_call(*args, **kwargs)}").split("|")
    return dict(zip(ADMIT_COLUMNS, row))


def logged(pg, tag) -> tuple[int, int]:
    ok, total = pg.psql(f"SELECT count(*) FILTER (WHERE ok), count(*) FROM test_log WHERE tag = '{tag}'").split("|")
    return int(ok), int(total)


def bucket_total(pg, scope) -> int:
    return int(pg.psql(f"SELECT coalesce(sum(requests), 0) FROM rate_buckets WHERE scope = '{scope}'"))


# -- admission: exact under concurrency ---------------------------------------------------------

def test_hot_scope_admits_exactly_the_limit(pg):
    script = f"INSERT INTO test_log SELECT 'hot', admitted FROM {admit_call(['k:x'], rpm=[1000])};\n"
    started = time.time()
    pg.pgbench(script, clients=8, transactions=250)
    ok, total = logged(pg, "hot")
    print(f"\n8 clients x 250 admissions, RPM 1000: admitted {ok} of {total}, bucket {bucket_total(pg, 'k:x')} "
          f"({time.time() - started:.1f} s)")
    assert total == 2000
    assert ok == 1000
    assert bucket_total(pg, "k:x") == 1000


def test_naive_single_statement_over_admits(pg):
    """Why deploxa_admit reads the window in a later statement: one statement that locks and
    counts reads the window with the snapshot it took before waiting for the lock."""
    pg.psql("""
        INSERT INTO limit_scopes VALUES ('k:naive');
        CREATE FUNCTION naive_admit(p_scope text, p_limit bigint) RETURNS boolean LANGUAGE sql AS $$
            WITH locked AS (SELECT scope FROM limit_scopes WHERE scope = p_scope FOR UPDATE),
            used AS (SELECT coalesce(sum(b.requests), 0) AS n FROM locked
                     LEFT JOIN rate_buckets b ON b.scope = locked.scope
                      AND b.second > floor(extract(epoch FROM clock_timestamp()))::bigint - 3600),
            ins AS (INSERT INTO rate_buckets (scope, second, requests)
                    SELECT p_scope, floor(extract(epoch FROM clock_timestamp()))::bigint, 1 FROM used WHERE used.n < p_limit
                    ON CONFLICT (scope, second) DO UPDATE SET requests = rate_buckets.requests + 1 RETURNING 1)
            SELECT EXISTS (SELECT 1 FROM ins)
        $$;
        """)
    pg.pgbench("INSERT INTO test_log SELECT 'naive', naive_admit('k:naive', 1000);\n", clients=8, transactions=250)
    ok, _ = logged(pg, "naive")
    print(f"\nnaive one-statement CTE, RPM 1000, 8 x 250: admitted {ok}, bucket {bucket_total(pg, 'k:naive')}")
    assert ok == bucket_total(pg, "k:naive")
    assert ok >= 1000  # typically more: the over-admission deploxa_admit exists to prevent


def test_two_scopes_in_opposite_orders_no_deadlock(pg):
    a = f"INSERT INTO test_log SELECT 'ab', admitted FROM {admit_call(['k:a', 'p:b'], rpm=[600, 1000])};\n"
    b = f"INSERT INTO test_log SELECT 'ba', admitted FROM {admit_call(['p:b', 'k:a'], rpm=[1000, 600])};\n"
    c = f"INSERT INTO test_log SELECT 'b', admitted FROM {admit_call(['p:b'], rpm=[1000])};\n"
    report = pg.pgbench([(a, 2), (b, 2), (c, 1)], clients=8, transactions=250)
    assert "deadlock" not in report
    both = logged(pg, "ab")[0] + logged(pg, "ba")[0]
    only_b = logged(pg, "b")[0]
    ka, pb = bucket_total(pg, "k:a"), bucket_total(pg, "p:b")
    print(f"\nopposite orders: k:a {ka}/600, p:b {pb}/1000 (two-scope admitted {both}, p:b-only {only_b})")
    assert ka == both and pb == both + only_b
    assert ka <= 600 and pb <= 1000
    assert ka == 600 or pb == 1000  # 2000 attempts: some limit was reached exactly


def test_free_plan_cap_exact(pg):
    month = pg.psql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM')")
    pg.psql(f"INSERT INTO monthly_totals (scope, month, requests) VALUES ('p:free', '{month}', 995)")
    pg.pgbench(f"INSERT INTO test_log SELECT 'free', admitted FROM {admit_call(['k:fk', 'p:free'], cap=[None, 1000])};\n",
               clients=30, transactions=1)
    assert logged(pg, "free") == (5, 30)
    assert pg.psql(f"SELECT requests FROM monthly_totals WHERE scope = 'p:free' AND month = '{month}'") == "1000"
    refused = admit(pg, ["k:fk", "p:free"], cap=[None, 1000])
    assert refused["admitted"] == "f" and refused["reason"] == "freePlan" and refused["scope_index"] == "1"
    assert 1 <= int(refused["retry_after"]) <= 31 * 86400
    assert refused["month"] == month


def test_admission_rules_match_the_sqlite_store(pg):
    # RPM: the third of 2 is refused, naming scope 0; headroom is the tightest limit.
    first = admit(pg, ["k:r1", "p:r1"], rpm=[2, 10], window=60)
    assert first["admitted"] == "t" and first["requests_limit"] == "2" and first["requests_remaining"] == "1"
    assert first["requests_reset"] == "60"
    admit(pg, ["k:r1", "p:r1"], rpm=[2, 10], window=60)
    third = admit(pg, ["k:r1", "p:r1"], rpm=[2, 10], window=60)
    assert (third["admitted"], third["reason"], third["scope_index"]) == ("f", "requestsPerMinute", "0")
    assert 1 <= int(third["retry_after"]) <= 60 and third["requests_remaining"] == "0"
    assert bucket_total(pg, "k:r1") == 2 and bucket_total(pg, "p:r1") == 2  # refused counts nowhere

    # TPM: reservation counted; at or over the limit refused; TPM headroom = limit - used - estimate.
    ok = admit(pg, ["k:t1"], tpm=[100], estimate=100)
    assert ok["admitted"] == "t" and ok["tokens_remaining"] == "0" and ok["requests_limit"] == ""
    refused = admit(pg, ["k:t1"], tpm=[100], estimate=10)
    assert (refused["reason"], refused["scope_index"]) == ("tokensPerMinute", "0")
    # A cache hit is not refused by TPM nor by a spent budget, but counts as a request.
    assert admit(pg, ["k:t1"], tpm=[100], estimate=0, cache=True)["admitted"] == "t"
    assert pg.psql("SELECT sum(requests), sum(tokens) FROM rate_buckets WHERE scope = 'k:t1'") == "2|100"
    # Settle gives back unused tokens (never below 0) and adds spend.
    second, month = ok["second"], ok["month"]
    pg.psql(f"SELECT deploxa_settle(ARRAY['k:t1'], {second}, -1000, ARRAY['k:t1', 'p:t1'], '{month}', 250)")
    assert pg.psql(f"SELECT tokens FROM rate_buckets WHERE scope = 'k:t1' AND second = {second}") == "0"
    assert pg.psql(f"SELECT cost_nanos FROM monthly_totals WHERE scope = 'p:t1' AND month = '{month}'") == "250"

    # Budget: spent 250 of 250 nanos -> refused (not for a cache hit); first refusal in plan order wins.
    assert admit(pg, ["k:t1"], tpm=[100], estimate=100)["admitted"] == "t"
    refused = admit(pg, ["k:t1", "p:t1"], tpm=[100, None], budget=[None, 250], estimate=0)
    assert (refused["reason"], refused["scope_index"]) == ("tokensPerMinute", "0")
    refused = admit(pg, ["k:other", "p:t1"], rpm=[100, None], budget=[None, 250])
    assert (refused["reason"], refused["scope_index"]) == ("monthlyBudget", "1")
    assert int(refused["retry_after"]) >= 1
    assert admit(pg, ["p:t1"], budget=[250], cache=True)["admitted"] == "t"
    # No limits at all: admitted, nothing counted.
    assert admit(pg, [], estimate=5)["admitted"] == "t"


def test_cache_lease_compare_and_set(pg):
    key = "decode('c0ffee', 'hex')"
    pg.pgbench(f"INSERT INTO test_log SELECT 'lease', deploxa_claim_cache_lease({key}, 60000);\n", clients=8, transactions=25)
    assert logged(pg, "lease") == (1, 200)
    pg.psql(f"SELECT deploxa_store_cached_answer({key}, 1, 0, 'openai', 'gpt-4o', decode('7b7d', 'hex'), 60000)")
    assert pg.psql(f"SELECT count(*) FROM cache_leases WHERE key = {key}") == "0"
    assert pg.psql(f"SELECT provider, model_served, size, expires_at - created_at FROM cache_entries "
                   f"WHERE key = {key} AND expires_at > deploxa_now_ms()") == "openai|gpt-4o|69|60000"
    assert pg.psql(f"SELECT deploxa_claim_cache_lease({key}, 1)") == "t"
    time.sleep(0.01)
    assert pg.psql(f"SELECT deploxa_claim_cache_lease({key}, 60000)") == "t"  # the 1 ms lease expired
    assert pg.psql(f"SELECT deploxa_claim_cache_lease({key}, 60000)") == "f"


def test_breakers(pg):
    rows = [pg.psql("SELECT failures, open_until > 0 FROM deploxa_breaker_failure(7, 'openai', 3, 30000, NULL)") for _ in range(3)]
    assert rows == ["1|f", "2|f", "3|t"]
    now, open_until = map(int, pg.psql("SELECT deploxa_now_ms(), open_until FROM circuit_breakers WHERE project_id = 7").split("|"))
    assert 29000 <= open_until - now <= 30000
    # A Retry-After longer than the cool-down keeps it open longer.
    later = int(pg.psql("SELECT open_until FROM deploxa_breaker_failure(7, 'openai', 3, 30000, 120000)"))
    assert later - now >= 119000
    pg.psql(f"UPDATE circuit_breakers SET open_until = {now - 5} WHERE project_id = 7")
    pg.pgbench(f"INSERT INTO test_log SELECT 'probe', deploxa_breaker_claim_probe(7, 'openai', {now - 5}, 30000);\n",
               clients=8, transactions=25)
    assert logged(pg, "probe") == (1, 200)
    pg.psql("SELECT deploxa_breaker_success(7, 'openai')")
    assert pg.psql("SELECT count(*) FROM circuit_breakers WHERE project_id = 7") == "0"


def test_key_lookup_function_returns_what_the_shared_select_returns(pg):
    """deploxa_authenticate (step 4) keeps its plan across calls; its columns must stay those of
    GatewayStore.authenticateColumns, which the SQLite store sends and the worker reads by position."""
    keys_swift = (REPO / "Sources" / "GatewayStore" / "GatewayStore+Keys.swift").read_text()
    select = re.search(r'static let authenticateColumns = """\n(.*?)\n[ \t]*"""', keys_swift, re.S).group(1)
    pg.psql("""
        INSERT INTO orgs (id, name, rpm, tpm, monthly_budget_usd, created_at) VALUES (71, 'lookup-org', 5, NULL, 2.5, 1000);
        INSERT INTO projects (id, org_id, name, plan, rpm, tpm, monthly_budget_usd, created_at)
            VALUES (72, 71, 'lookup', 'free', NULL, 900, NULL, 2000);
        INSERT INTO gateway_keys (id, project_id, name, secret_hash, rpm, tpm, monthly_budget_usd, created_at, revoked_at) VALUES
            ('key_lookup_a', 72, 'a', '\\x00ff10'::bytea, 7, NULL, 0.25, 3000, NULL),
            ('key_lookup_b', 72, NULL, '\\x01'::bytea, NULL, 40, NULL, 4000, 5000);
        UPDATE settings_version SET version = version + 3;
    """)
    for key in ("key_lookup_a", "key_lookup_b"):
        shared = pg.psql(f"{select} WHERE k.id = '{key}'")
        assert shared.count("|") == 23, shared
        assert pg.psql(f"SELECT * FROM deploxa_authenticate('{key}')") == shared
        # And again in one session, where the function runs on its cached plan.
        assert pg.psql(f"SELECT * FROM deploxa_authenticate('{key}'); SELECT * FROM deploxa_authenticate('{key}');") == shared + "\n" + shared
    assert pg.psql("SELECT count(*) FROM deploxa_authenticate('key_unknown')") == "0"
    # The last column: whether the project has any circuit-breaker row (the breaker's own read is
    # skipped when it has none).
    assert pg.psql("SELECT project_has_breakers FROM deploxa_authenticate('key_lookup_a')") == "f"
    pg.psql("SELECT failures FROM deploxa_breaker_failure(72, 'anthropic', 3, 30000, NULL)")
    assert pg.psql("SELECT project_has_breakers FROM deploxa_authenticate('key_lookup_a')") == "t"
    assert pg.psql(f"{select} WHERE k.id = 'key_lookup_a'").endswith("|t")
    pg.psql("SELECT deploxa_breaker_success(72, 'anthropic')")
    assert pg.psql("SELECT project_has_breakers FROM deploxa_authenticate('key_lookup_a')") == "f"


def test_admission_checks_a_remembered_key(pg):
    """A worker that remembers a key sends md5 of its deploxa_authenticate row with the admission;
    a different row (limits changed, key revoked, a breaker row appeared) counts nothing."""
    pg.psql("""
        INSERT INTO orgs (id, name, created_at) VALUES (81, 'checked-org', 1000);
        INSERT INTO projects (id, org_id, name, plan, created_at) VALUES (82, 81, 'checked', 'pro', 2000);
        INSERT INTO gateway_keys (id, project_id, secret_hash, rpm, created_at) VALUES ('key_checked', 82, '\\x01'::bytea, 5, 3000);
    """)
    def fingerprint():
        return pg.psql("SELECT md5(a::text) FROM deploxa_authenticate('key_checked') AS a")
    def checked(fp, scopes=("key:key_checked",), rpm=(5,)):
        call = admit_call(list(scopes), rpm=list(rpm)).replace("deploxa_admit(", f"deploxa_admit_checked('key_checked', '{fp}', ", 1)
        return dict(zip(ADMIT_COLUMNS, pg.psql(f"SELECT * FROM {call}").split("|")))
    remembered = fingerprint()
    assert len(remembered) == 32 and fingerprint() == remembered  # stable while nothing changes
    first = checked(remembered)
    assert first["admitted"] == "t" and first["requests_remaining"] == "4"
    assert bucket_total(pg, "key:key_checked") == 1
    # Another row than the one remembered: refused as changed, nothing counted.
    stale = checked("0" * 32)
    assert (stale["admitted"], stale["reason"], stale["second"]) == ("f", "key_changed", "")
    assert bucket_total(pg, "key:key_checked") == 1
    # Each kind of change makes a new fingerprint: the key's limits, its project's, a breaker row, revocation.
    for change, undo in [("UPDATE gateway_keys SET rpm = 6 WHERE id = 'key_checked'", "UPDATE gateway_keys SET rpm = 5 WHERE id = 'key_checked'"),
                         ("UPDATE projects SET tpm = 100 WHERE id = 82", "UPDATE projects SET tpm = NULL WHERE id = 82"),
                         ("SELECT failures FROM deploxa_breaker_failure(82, 'openai', 3, 30000, NULL)", "SELECT deploxa_breaker_success(82, 'openai')"),
                         ("UPDATE gateway_keys SET revoked_at = 4000 WHERE id = 'key_checked'", "UPDATE gateway_keys SET revoked_at = NULL WHERE id = 'key_checked'")]:
        pg.psql(change)
        assert checked(remembered)["reason"] == "key_changed", change
        assert bucket_total(pg, "key:key_checked") == 1, change
        pg.psql(undo)
        assert fingerprint() == remembered, undo
    # A key that no longer exists is a change too; without a key the check is skipped.
    assert dict(zip(ADMIT_COLUMNS, pg.psql("SELECT * FROM deploxa_admit_checked('key_gone', 'x', ARRAY[]::text[], "
                                           "ARRAY[]::bigint[], ARRAY[]::bigint[], ARRAY[]::bigint[], ARRAY[]::bigint[], 0, 60, false)").split("|")))["reason"] == "key_changed"
    unchecked = pg.psql("SELECT admitted FROM deploxa_admit_checked(NULL, NULL, ARRAY['key:key_checked'], ARRAY[5]::bigint[], "
                        "ARRAY[NULL]::bigint[], ARRAY[NULL]::bigint[], ARRAY[NULL]::bigint[], 0, 3600, false)")
    assert unchecked == "t" and bucket_total(pg, "key:key_checked") == 2
    # Only the key to check, no limit: confirmed, nothing counted anywhere.
    assert checked(remembered, scopes=(), rpm=())["admitted"] == "t"
    assert bucket_total(pg, "key:key_checked") == 2


def test_cluster_lease(pg):
    assert pg.psql("SELECT deploxa_claim_lease('janitor', 'node-a', 30)") == "t"
    assert pg.psql("SELECT deploxa_claim_lease('janitor', 'node-b', 30)") == "f"
    assert pg.psql("SELECT deploxa_claim_lease('janitor', 'node-a', 30)") == "t"  # renewed
    pg.psql("UPDATE cluster_leases SET expires_at = clock_timestamp() - interval '1 second'")
    assert pg.psql("SELECT deploxa_claim_lease('janitor', 'node-b', 30)") == "t"
    assert pg.psql("SELECT deploxa_claim_lease('janitor', 'node-a', 30)") == "f"


# -- audit ---------------------------------------------------------------------------------------

def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def nanos(usd: float) -> int:
    """SpendAmount.nanos: (usd * 1e9).rounded() (half away from zero)."""
    x = usd * 1e9
    t = math.trunc(x)
    return int(t + (math.copysign(1, x) if abs(x - t) >= 0.5 else 0))


def hist_bucket(value: float) -> int:
    if not value >= 0.5:
        return 0
    return min(max(1 + math.floor(math.log2(value / 0.5) * 8), 1), 199)


def hist_encode(counts: dict[int, int]) -> str | None:
    parts = [bytes([i]) + min(c, 2**32 - 1).to_bytes(4, "little") for i, c in sorted(counts.items()) if c > 0]
    return b"".join(parts).hex() if parts else None


def audit_batch(prefix: str, count: int, seed: int, start: str = "2025-01-31T22:30:00") -> list[dict]:
    rng = random.Random(seed)
    base = ms(start)
    rows = []
    for i in range(count):
        status = rng.choice([200, 200, 200, 200, 429, 500])
        project = rng.choice([1, 2, None])
        rows.append({
            "request_id": f"{prefix}-{i:05d}", "time_ms": base + rng.randrange(0, 3 * 3_600_000),
            "method": "POST", "route": "/v1/chat/completions",
            "org_id": None if project is None else 1, "project_id": project,
            "key_id": rng.choice(["key1", "key2", None]) if project else None,
            "user": rng.choice(["alice", "bob", None]),
            "provider": rng.choice(["openai", "anthropic", None]),
            "model_requested": rng.choice(["gpt-4o", "claude-sonnet-4", None]),
            "model_served": rng.choice(["gpt-4o-2024-08-06", None, None]),
            "status": status, "error_code": None if status < 400 else "upstream_error",
            "prompt_tokens": rng.choice([None, 0, 12, 1000]), "completion_tokens": rng.choice([None, 0, 7, 300]),
            "cached_tokens": rng.choice([None, 0, 5]),
            "cost_usd": rng.choice([None, 0.0, 3.125e-7, 0.00123, 1.5e-9, 0.0000195]),
            "latency_ms": rng.choice([0.2, 1.0, 4.0, 16.0, 123.456, 2500.0, 1e9]),
            "upstream_latency_ms": rng.choice([None, 100.0]),
            "ttft_ms": rng.choice([None, None, 0.7, 64.0, 300.5]),
            "cache_hit": rng.choice([True, False, False]), "stream": rng.choice([0, 1]),
            "attempts_json": rng.choice([None, '[{"provider":"openai","model":"gpt-4o","status":500,"latencyMs":3}]']),
            "reasoning_tokens": rng.choice([None, 3]), "cache_write_tokens": rng.choice([None, 4]),
            "spend_settled": rng.choice([True, False]),
        })
    return rows


def append(pg, rows) -> int:
    return int(pg.psql(f"SELECT deploxa_append_audit($j${json.dumps(rows)}$j$::jsonb)"))


def expected_rollups(rows: list[dict]):
    """RollupBatch / RollupTotals.add over `rows`, per table."""
    tables = {"usage_hourly": 3_600_000, "usage_daily": 86_400_000}
    out = {name: {} for name in tables}
    for r in rows:
        model = r["model_served"] or r["model_requested"] or "(none)"
        keys = [("all", ""), ("model", model), ("key", r["key_id"] or "(none)"), ("provider", r["provider"] or "(none)"),
                ("user", r["user"] or "(none)")]
        for name, width in tables.items():
            for kind, value in keys:
                key = (kind, r["time_ms"] // width * width, r["project_id"] or 0, value)
                t = out[name].setdefault(key, {"n": 0, "p": 0, "c": 0, "ca": 0, "cost": 0, "unk": 0, "hits": 0, "err": 0,
                                                "lat": {}, "ttft": {}})
                prompt, completion = r["prompt_tokens"] or 0, r["completion_tokens"] or 0
                t["n"] += 1
                t["p"] += prompt
                t["c"] += completion
                t["ca"] += r["cached_tokens"] or 0
                if r["cost_usd"] is not None:
                    t["cost"] += nanos(r["cost_usd"])
                if r["cost_usd"] is None and r["status"] < 400 and prompt + completion > 0 and not r["cache_hit"]:
                    t["unk"] += 1
                t["hits"] += 1 if r["cache_hit"] else 0
                t["err"] += 1 if r["status"] >= 400 else 0
                b = hist_bucket(r["latency_ms"])
                t["lat"][b] = t["lat"].get(b, 0) + 1
                if r["ttft_ms"] is not None:
                    b = hist_bucket(r["ttft_ms"])
                    t["ttft"][b] = t["ttft"].get(b, 0) + 1
    result = {}
    for name, groups in out.items():
        result[name] = sorted(
            f"{k[0]}|{k[1]}|{k[2]}|{k[3]}|{t['n']}|{t['p']}|{t['c']}|{t['ca']}|{t['cost']}|{t['unk']}|{t['hits']}|{t['err']}|"
            f"{hist_encode(t['lat']) or ''}|{hist_encode(t['ttft']) or ''}" for k, t in groups.items())
    return result


def stored_rollups(pg, table: str) -> list[str]:
    """The table's rows, histograms re-encoded (stored, a bucket may repeat: deploxa_hist_add)."""
    return sorted(pg.psql(
        f"SELECT kind, bucket, project_id, value, requests, prompt_tokens, completion_tokens, cached_tokens, cost_nanos, "
        f"unknown_cost, cache_hits, errors, encode(deploxa_hist_merge(latency_hist, NULL), 'hex'), "
        f"encode(deploxa_hist_merge(ttft_hist, NULL), 'hex') FROM {table}").splitlines())


def expected_spend(rows) -> dict[tuple[str, str], int]:
    spend: dict[tuple[str, str], int] = {}
    for r in rows:
        if r["spend_settled"] or not r["cost_usd"] or r["cost_usd"] <= 0:
            continue
        month = datetime.fromtimestamp(r["time_ms"] / 1000, tz=timezone.utc).strftime("%Y-%m")
        for scope in ([f"k:{r['key_id']}"] if r["key_id"] else []) + ([f"p:{r['project_id']}"] if r["project_id"] else []) \
                + ([f"o:{r['org_id']}"] if r["org_id"] else []):
            spend[(scope, month)] = spend.get((scope, month), 0) + nanos(r["cost_usd"])
    return spend


def stored_spend(pg) -> dict[tuple[str, str], int]:
    rows = pg.psql("SELECT scope, month, cost_nanos FROM monthly_totals WHERE month LIKE '2025-%' AND cost_nanos <> 0")
    return {(s, m): int(c) for s, m, c in (line.split("|") for line in rows.splitlines())}


def test_hist_merge_matches_latency_histogram(pg):
    assert pg.psql("SELECT deploxa_hist_merge(NULL, NULL) IS NULL") == "t"
    one = "decode('0901000000', 'hex')"
    assert pg.psql(f"SELECT encode(deploxa_hist_merge({one}, {one}), 'hex')") == "0902000000"
    assert pg.psql(f"SELECT encode(deploxa_hist_merge({one}, decode('0003000000' || '0901000000', 'hex')), 'hex')") \
        == "00030000000902000000"
    # Malformed length: ignored entirely; an index >= 200 stops reading there; counts saturate.
    assert pg.psql(f"SELECT encode(deploxa_hist_merge({one}, decode('0901', 'hex')), 'hex')") == "0901000000"
    assert pg.psql(f"SELECT encode(deploxa_hist_merge(decode('0101000000c8010000000201000000', 'hex'), NULL), 'hex')") \
        == "0101000000"
    assert pg.psql("SELECT encode(deploxa_hist_merge(decode('05ffffffff', 'hex'), decode('0502000000', 'hex')), 'hex')") \
        == "05ffffffff"
    assert pg.psql("SELECT deploxa_hist_merge(decode('0100000000', 'hex'), NULL) IS NULL") == "t"
    values = [0.1, 0.5, 0.6, 1.0, 1.09, 2.0, 3.0, 16.0, 100.0, 123.456, 1000.0, 65536.0, 14_000_000.0, 1e12]
    got = pg.psql(f"SELECT string_agg(deploxa_hist_bucket(v)::text, ',' ORDER BY o) FROM unnest(ARRAY{values}::float8[]) "
                  "WITH ORDINALITY AS u(v, o)")
    assert got == ",".join(str(hist_bucket(v)) for v in values)
    assert pg.psql("SELECT string_agg(deploxa_nanos(v)::text, ',') FROM unnest(ARRAY[3.125e-7, 1.5e-9, 0.0000195, -2.5e-9, 0.5e-9, 0.49e-9]::float8[]) v") \
        == ",".join(str(nanos(v)) for v in [3.125e-7, 1.5e-9, 0.0000195, -2.5e-9, 0.5e-9, 0.49e-9])


def test_hist_add_appends_and_stays_bounded(pg):
    one = "decode('0901000000', 'hex')"
    assert pg.psql(f"SELECT encode(deploxa_hist_add({one}, {one}), 'hex')") == "09010000000901000000"
    assert pg.psql(f"SELECT encode(deploxa_hist_add(NULL, {one}), 'hex'), encode(deploxa_hist_add({one}, NULL), 'hex'), "
                   f"deploxa_hist_add(NULL, NULL) IS NULL") == "0901000000|0901000000|t"
    # 3,000 adds over 150 buckets: the blob never passes 2,000 bytes and sums exactly.
    pg.psql("""
        CREATE TABLE hist_add_sizes (n int, size int, h bytea);
        DO $$
        DECLARE h bytea;
        BEGIN
            FOR i IN 1 .. 3000 LOOP
                h := deploxa_hist_add(h, deploxa_hist_pair(i % 150, 1 + i % 3));
                INSERT INTO hist_add_sizes VALUES (i, octet_length(h), h);
            END LOOP;
        END
        $$;""")
    assert int(pg.psql("SELECT max(size) FROM hist_add_sizes")) <= 2000
    assert int(pg.psql("SELECT count(*) FROM hist_add_sizes WHERE size < (SELECT size FROM hist_add_sizes b WHERE b.n = hist_add_sizes.n - 1)")) > 5
    counts: dict[int, int] = {}
    for i in range(1, 3001):
        counts[i % 150] = counts.get(i % 150, 0) + 1 + i % 3
    assert pg.psql("SELECT encode(deploxa_hist_merge(h, NULL), 'hex') FROM hist_add_sizes WHERE n = 3000") == hist_encode(counts)


def test_audit_batches_are_idempotent_and_rollups_exact(pg):
    rows = audit_batch("a", 300, seed=1)
    assert append(pg, rows) == 300
    counted = (pg.psql("SELECT count(*) FROM audit_log WHERE request_id LIKE 'a-%'"), stored_spend(pg),
               stored_rollups(pg, "usage_hourly"), stored_rollups(pg, "usage_daily"))
    assert append(pg, rows) == 0  # the same batch again (a lost acknowledgement)
    assert (pg.psql("SELECT count(*) FROM audit_log WHERE request_id LIKE 'a-%'"), stored_spend(pg),
            stored_rollups(pg, "usage_hourly"), stored_rollups(pg, "usage_daily")) == counted
    assert counted[0] == "300"

    # Half old, half new: only the new rows count.
    more = audit_batch("b", 100, seed=2)
    assert append(pg, rows[:100] + more) == 100

    # The same new batch from 4 sessions at once: inserted once.
    concurrent = audit_batch("c", 150, seed=3)
    pg.pgbench(f"SELECT deploxa_append_audit($j${json.dumps(concurrent)}$j$::jsonb);\n", clients=4, transactions=1)

    everything = rows + more + concurrent
    assert pg.psql("SELECT count(*), count(DISTINCT request_id) FROM audit_log WHERE request_id ~ '^[abc]-'") == "550|550"
    assert stored_spend(pg) == expected_spend(everything)
    expected = expected_rollups(everything)
    assert stored_rollups(pg, "usage_hourly") == expected["usage_hourly"]
    assert stored_rollups(pg, "usage_daily") == expected["usage_daily"]
    # And the rollups equal sums over audit_log itself.
    assert pg.psql("""
        SELECT count(*), sum(coalesce(prompt_tokens, 0)), sum(deploxa_nanos(cost_usd)), count(*) FILTER (WHERE status >= 400)
        FROM audit_log WHERE request_id ~ '^[abc]-'""") == pg.psql("""
        SELECT sum(requests), sum(prompt_tokens), sum(cost_nanos), sum(errors) FROM usage_hourly WHERE kind = 'all'""")
    dims = pg.psql("SELECT project_id, kind, value FROM audit_dimensions ORDER BY 1, 2, 3").splitlines()
    want = sorted({f"{r['project_id'] or 0}|{kind}|{r[field]}" for r in everything
                   for kind, field in [("model", "model_requested"), ("model", "model_served"), ("user", "user"),
                                       ("key", "key_id"), ("provider", "provider")] if r[field] is not None})
    assert sorted(dims) == want
    assert pg.psql("SELECT last_seen FROM audit_dimensions WHERE kind = 'user' AND value = 'alice' AND project_id = 1") == \
        str(max(r["time_ms"] for r in everything if r["user"] == "alice" and r["project_id"] == 1))


def summary_of(rows: list[dict]) -> dict:
    """What PostgresAuditSink sends beside `rows` (AuditBatchSummary), built from the sums above."""
    rollups = []
    for table, width in (("usage_hourly", 3_600_000), ("usage_daily", 86_400_000)):
        for line in expected_rollups(rows)[table]:
            kind, bucket, project, value, *figures, lat, ttft = line.split("|")
            rollups.append({"width": width, "kind": kind, "bucket": int(bucket), "project_id": int(project), "value": value,
                            **dict(zip(["requests", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_nanos",
                                        "unknown_cost", "cache_hits", "errors"], map(int, figures))),
                            "latency_hist": lat or None, "ttft_hist": ttft or None})
    dimensions: dict[tuple, int] = {}
    for r in rows:
        for kind, field in [("model", "model_requested"), ("model", "model_served"), ("user", "user"), ("key", "key_id"),
                            ("provider", "provider")]:
            if r[field] is not None:
                key = (r["project_id"] or 0, kind, r[field])
                dimensions[key] = max(dimensions.get(key, r["time_ms"]), r["time_ms"])
    return {"spend": [{"scope": scope, "month": month, "nanos": n} for (scope, month), n in sorted(expected_spend(rows).items())],
            "rollups": rollups,
            "dimensions": [{"project_id": p, "kind": k, "value": v, "last_seen": t} for (p, k, v), t in sorted(dimensions.items())]}


def test_a_batch_summary_is_used_only_when_every_row_is_new(pg):
    rows = audit_batch("sum", 60, seed=11, start="2024-07-10T10:00:00")
    day_start, day_end = ms("2024-07-10T00:00:00"), ms("2024-07-11T00:00:00")

    def mine(table: str) -> list[str]:
        return [line for line in stored_rollups(pg, table) if day_start <= int(line.split("|")[1]) < day_end]

    def spend() -> dict:
        return {(s, m): int(c) for s, m, c in (line.split("|") for line in pg.psql(
            "SELECT scope, month, cost_nanos FROM monthly_totals WHERE month = '2024-07' AND cost_nanos <> 0").splitlines())}

    assert append(pg, rows[:10]) == 10  # no summary: computed in the database
    # Half of this batch is already in (a replayed journal): a summary of the whole batch would
    # count rows 5..9 twice, so the function must ignore it (made wrong here to tell).
    wrong = summary_of(rows[5:30])
    for rollup in wrong["rollups"]:
        rollup["requests"] += 1000
    assert int(pg.psql(f"SELECT deploxa_append_audit($j${json.dumps(rows[5:30])}$j$::jsonb, $j${json.dumps(wrong)}$j$::jsonb)")) == 20
    # All new: the summary is what gets added (a marker only it carries shows it was used).
    summary = summary_of(rows[30:])
    summary["dimensions"].append({"project_id": 0, "kind": "user", "value": "from-the-summary", "last_seen": day_start})
    assert int(pg.psql(f"SELECT deploxa_append_audit($j${json.dumps(rows[30:])}$j$::jsonb, $j${json.dumps(summary)}$j$::jsonb)")) == 30
    assert pg.psql("SELECT count(*) FROM audit_dimensions WHERE value = 'from-the-summary'") == "1"
    # The same batch again (a lost acknowledgement): nothing added twice.
    assert int(pg.psql(f"SELECT deploxa_append_audit($j${json.dumps(rows[30:])}$j$::jsonb, $j${json.dumps(summary)}$j$::jsonb)")) == 0

    expected = expected_rollups(rows)
    assert mine("usage_hourly") == expected["usage_hourly"]
    assert mine("usage_daily") == expected["usage_daily"]
    assert spend() == expected_spend(rows)
    assert len(expected["usage_hourly"]) > 20


def horizon_rows(prefix: str, project: int, start: str, count: int = 20) -> list[dict]:
    """Rows whose rollups, dimensions and spend no other batch touches (an open batch holds those)."""
    return [{"request_id": f"{prefix}-{i:02d}", "time_ms": ms(start) + i, "status": 200, "project_id": project,
             "latency_ms": 1.0} for i in range(count)]


def test_export_horizon_never_skips_rows_committed_out_of_order(pg):
    before = int(pg.psql("SELECT deploxa_audit_horizon()"))
    early = horizon_rows("hz-early", 41, "2025-03-01T00:00:00")
    late = horizon_rows("hz-late", 42, "2025-03-02T00:00:00")
    session = subprocess.Popen([str(pgcluster.PG_BIN / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", *pg.client_args()],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # A batch numbers its rows and stays open (a slow commit)...
        session.stdin.write(f"BEGIN;\nSELECT deploxa_append_audit($j${json.dumps(early)}$j$::jsonb);\n"
                            "SELECT max(seq) FROM audit_log WHERE request_id LIKE 'hz-early-%';\n")
        session.stdin.flush()
        assert session.stdout.readline().strip() == "20"
        early_max = int(session.stdout.readline())
        # ...while a later batch commits, with higher numbers.
        assert append(pg, late) == 20
        late_min = int(pg.psql("SELECT min(seq) FROM audit_log WHERE request_id LIKE 'hz-late-%'"))
        assert before < early_max < late_min
        # A reader paging by seq now would pass the open batch's numbers and never come back to
        # them: the horizon waits until that batch has ended.
        with pytest.raises(RuntimeError, match="lock timeout"):
            pg.psql("SET lock_timeout = '300ms';\nSELECT deploxa_audit_horizon();")
        assert pg.psql("SELECT count(*) FROM audit_log WHERE request_id LIKE 'hz-%'") == "20"  # only the late rows visible
        session.stdin.write("COMMIT;\n")
        session.stdin.close()
        assert session.wait(timeout=30) == 0
    finally:
        if session.poll() is None:
            session.kill()
    horizon = int(pg.psql("SELECT deploxa_audit_horizon()"))
    assert pg.psql(f"SELECT count(*) FILTER (WHERE request_id LIKE 'hz-early-%'), count(*) FROM audit_log "
                   f"WHERE seq > {before} AND seq <= {horizon} AND request_id LIKE 'hz-%'") == "20|40"


def test_export_paging_under_concurrent_batches_sees_every_row_once(pg):
    """Four sessions append 5-row batches for a few seconds while a reader pages by (cursor, horizon]."""
    script = ("\\set r random(1, 1000000000)\n"
              "SELECT deploxa_append_audit((SELECT jsonb_agg(jsonb_build_object('request_id', 'pg-' || :r || '-' || g, "
              "'time_ms', 1741000000000 + g, 'status', 200, 'project_id', 43, 'latency_ms', 1.0)) FROM generate_series(1, 5) AS g));\n")
    cursor = int(pg.psql("SELECT deploxa_audit_horizon()"))
    seen: list[str] = []
    writers = threading.Thread(target=pg.pgbench, args=(script,), kwargs={"clients": 4, "seconds": 4})
    writers.start()
    pages = 0
    while True:
        finished = not writers.is_alive()
        horizon = int(pg.psql("SELECT deploxa_audit_horizon()"))
        page = pg.psql(f"SELECT request_id FROM audit_log WHERE seq > {cursor} AND seq <= {horizon} "
                       f"AND request_id LIKE 'pg-%' ORDER BY seq")
        seen += page.splitlines()
        cursor = horizon
        pages += 1
        if finished:
            break
    writers.join()
    everything = pg.psql("SELECT request_id FROM audit_log WHERE request_id LIKE 'pg-%'").splitlines()
    assert len(everything) > 100 and pages > 5
    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(everything)


def test_partitions(pg):
    may = ms("2031-05-10T00:00:00")
    assert append(pg, audit_batch("part", 10, seed=6, start="2031-05-10T00:00:00")) == 10
    assert pg.psql("SELECT DISTINCT tableoid::regclass FROM audit_log WHERE request_id LIKE 'part-%'") == "audit_log_default"
    pg.pgbench(f"SELECT deploxa_ensure_audit_partitions({may}, 2);\n", clients=4, transactions=3)
    assert pg.psql(f"SELECT deploxa_ensure_audit_partitions({may}, 2)") == "0"
    assert pg.psql("SELECT DISTINCT tableoid::regclass FROM audit_log WHERE request_id LIKE 'part-%'") == "audit_log_2031_05"
    assert pg.psql("SELECT count(*) FROM audit_log WHERE request_id LIKE 'part-%'") == "10"
    assert append(pg, audit_batch("part", 10, seed=6, start="2031-05-10T00:00:00")) == 0  # still recognised
    # Retention: whole months before the cutoff are dropped, older rows elsewhere deleted.
    # 12,000 rows in DEFAULT make sure one call cannot delete them all.
    pg.psql("SELECT deploxa_append_audit((SELECT jsonb_agg(jsonb_build_object('request_id', 'old-' || g, "
            "'time_ms', 1700000000000 + g, 'status', 200, 'project_id', 43, 'latency_ms', 1.0)) "
            "FROM generate_series(1, 12000) AS g))")
    cutoff = ms("2031-06-01T00:00:00")
    dropped = int(pg.psql(f"SELECT deploxa_drop_audit_partitions_before({cutoff})"))
    assert dropped >= 1
    # Rows outside whole months go at most 10,000 per call (the janitor calls it every pass);
    # how many the earlier tests left in DEFAULT depends on how fast pgbench ran there.
    older = f"SELECT count(*) FROM audit_log WHERE time_ms < {cutoff}"
    left = [int(pg.psql(older))]
    assert left[0] >= 2_000, left
    while left[-1] > 0 and len(left) < 20:
        assert pg.psql(f"SELECT deploxa_drop_audit_partitions_before({cutoff})") == "0"
        left.append(int(pg.psql(older)))
        assert left[-1] == max(left[-2] - 10_000, 0), left
    assert left[-1] == 0, left
    assert pg.psql("SELECT to_regclass('audit_log_2031_05') IS NULL, to_regclass('audit_log_2031_06') IS NOT NULL") == "t|t"
    assert pg.psql("SELECT audit_deleted_before FROM rollup_state") == str(cutoff)


# -- throughput ----------------------------------------------------------------------------------

"""Helpers shared by the admin REST API tests (test_admin_api.py, test_admin_retention.py).

An `Admin` is an HTTP client for `/api/v1` through nginx holding one admin token; a `Tenant` is a
fresh org with its projects and keys, so that a test module never touches another module's data.
Nothing here asserts on the gateway's behaviour except `assert_error`, which checks the OpenAI
error shape every admin error must have.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable

import httpx

from gwstack import GatewayStack, sql_literal, wait_until

API = "/api/v1"
CHAT = "/v1/chat/completions"


def uid(length: int = 10) -> str:
    return uuid.uuid4().hex[:length]


# --------------------------------------------------------------------------------------------
# Admin tokens (CLI)


def create_token(stack: GatewayStack, *options: str, name: str | None = None) -> dict:
    """`admin-token create … --json`: the token's record, with its `secret`."""
    args = ["admin-token", "create", *options]
    if name:
        args += ["--name", name]
    created = json.loads(stack.cli(*args, "--json").stdout)
    assert created["id"].startswith("at_") and created["secret"].startswith("dpa_"), created
    return created


def list_tokens(stack: GatewayStack) -> list[dict]:
    out = json.loads(stack.cli("admin-token", "list", "--json").stdout)
    return out["data"] if isinstance(out, dict) else out


# --------------------------------------------------------------------------------------------
# The admin API client


class Admin:
    """`/api/v1` through nginx with one admin token (or none)."""

    def __init__(self, stack: GatewayStack, token: str | None, name: str = "admin"):
        self.stack = stack
        self.token = token
        self.name = name

    def headers(self, extra: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def request(self, method: str, path: str, *, json_body=None, params: dict | None = None, content: bytes | None = None,
                headers: dict | None = None, timeout: float = 60) -> httpx.Response:
        # "/projects" means "/api/v1/projects"; "/v1/…" and "/api/…" are taken as they are.
        url = path if path.startswith(("/api/", "/v1/")) else API + path
        with self.stack.http(timeout=timeout) as http:
            if content is not None:
                return http.request(method, url, params=params, content=content,
                                    headers=self.headers({"Content-Type": "application/json", **(headers or {})}))
            if json_body is not None:
                return http.request(method, url, params=params, json=json_body, headers=self.headers(headers))
            return http.request(method, url, params=params, headers=self.headers(headers))

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body=None, **kwargs) -> httpx.Response:
        return self.request("POST", path, json_body=body, **kwargs)

    def patch(self, path: str, body=None, **kwargs) -> httpx.Response:
        return self.request("PATCH", path, json_body=body, **kwargs)

    def put(self, path: str, body=None, **kwargs) -> httpx.Response:
        return self.request("PUT", path, json_body=body, **kwargs)

    def delete(self, path: str, **kwargs) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def ok(self, method: str, path: str, body=None, status: int = 200, **kwargs) -> dict | None:
        """The JSON answer of a request that must succeed with `status`."""
        response = self.request(method, path, json_body=body, **kwargs)
        assert response.status_code == status, f"{method} {path} as {self.name}: {response.status_code} {response.text[:500]}"
        return response.json() if response.content else None

    # -- the audit log ------------------------------------------------------------------------

    def audit_walk(self, params: dict | None = None, limit: int = 1000, max_pages: int = 100_000,
                   pages: list | None = None) -> list[dict]:
        """Every row of a selection, following `next_cursor` until it is null."""
        rows: list[dict] = []
        cursor = None
        for _ in range(max_pages):
            query = {**(params or {}), "limit": str(limit)}
            if cursor:
                query["cursor"] = cursor
            response = self.get("/audit", params=query)
            assert response.status_code == 200, f"GET /audit {query}: {response.status_code} {response.text[:500]}"
            page = response.json()
            assert page["object"] == "list" and isinstance(page["data"], list), page
            assert len(page["data"]) <= limit, (len(page["data"]), limit)
            if pages is not None:
                pages.append(page)
            rows.extend(page["data"])
            cursor = page["next_cursor"]
            if cursor is None:
                return rows
            assert isinstance(cursor, str) and cursor, page
        raise AssertionError(f"the audit walk did not end within {max_pages} pages")

    def export(self, fmt: str, params: dict | None = None) -> httpx.Response:
        response = self.get("/audit", params={**(params or {}), "format": fmt}, timeout=120)
        assert response.status_code == 200, f"export {fmt} {params}: {response.status_code} {response.text[:500]}"
        return response

    def export_ndjson(self, params: dict | None = None) -> list[dict]:
        return parse_ndjson(self.export("ndjson", params).text)

    def export_csv(self, params: dict | None = None) -> tuple[list[str], list[dict]]:
        return parse_csv(self.export("csv", params).text)

    def wait_for_rows(self, params: dict, count: int, timeout: float = 20) -> list[dict]:
        """The selection's rows once it holds at least `count` (rows are written asynchronously)."""
        def enough():
            rows = self.audit_walk(params)
            return rows if len(rows) >= count else None
        return wait_until(enough, timeout=timeout, interval=0.2, what=f"{count} audit rows for {params}")

    def wait_for_row(self, request_id: str, timeout: float = 15) -> dict:
        def found():
            response = self.get(f"/audit/{request_id}")
            return response.json() if response.status_code == 200 else None
        return wait_until(found, timeout=timeout, interval=0.1, what=f"GET /api/v1/audit/{request_id}")


def parse_ndjson(text: str) -> list[dict]:
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def parse_csv(text: str) -> tuple[list[str], list[dict]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def assert_error(response: httpx.Response, status: int, code: str | None = None, type: str | None = None,
                 param: str | None = None, what: str = "") -> dict:
    """An admin error: `status` and OpenAI's shape {"error": {"message", "type", "param", "code"}}."""
    label = f"{what}: " if what else ""
    assert response.status_code == status, f"{label}expected {status}, got {response.status_code}: {response.text[:500]}"
    assert response.headers.get("content-type", "").startswith("application/json"), f"{label}{response.headers}"
    body = response.json()
    assert set(body) == {"error"}, f"{label}{body}"
    error = body["error"]
    assert {"message", "type", "param", "code"} <= set(error), f"{label}{error}"
    assert isinstance(error["message"], str) and error["message"], f"{label}{error}"
    if code is not None:
        assert error["code"] == code, f"{label}{error}"
    if type is not None:
        assert error["type"] == type, f"{label}{error}"
    if param is not None:
        assert error["param"] == param, f"{label}{error}"
    return error


# --------------------------------------------------------------------------------------------
# Tenants and traffic


def chat(stack: GatewayStack, key: str, content: str | None = None, model: str = "gpt-4o", headers: dict | None = None,
         **extra) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content or f"hello {uid()}"}], **extra}
    with stack.http() as http:
        return http.post(CHAT, headers={**stack.auth(key), **(headers or {})}, json=body)


@dataclass
class Tenant:
    """An org of its own with projects `web` and `sib`, every provider configured, a key each."""

    stack: GatewayStack
    org: str
    keys: dict = field(default_factory=dict)  # slug -> {"id", "secret"}

    @property
    def web(self) -> str:
        return f"{self.org}/web"

    @property
    def sib(self) -> str:
        return f"{self.org}/sib"

    def project(self, name: str, *options: str) -> str:
        slug = f"{self.org}/{name}"
        self.stack.create_project(slug, *options)
        self.keys[slug] = self.stack.create_key(f"{name}-key", slug)
        return slug

    def key(self, slug: str) -> str:
        return self.keys[slug]["secret"]

    def key_id(self, slug: str) -> str:
        return self.keys[slug]["id"]


def new_tenant(stack: GatewayStack, prefix: str = "adm", projects: Iterable[str] = ("web", "sib")) -> Tenant:
    org = f"{prefix}{uid(8)}"
    stack.cli("org", "create", org)
    tenant = Tenant(stack, org)
    for name in projects:
        tenant.project(name)
    return tenant


def project_ids(stack: GatewayStack, slug: str) -> tuple[int, int]:
    """(org_id, project_id) of a project, read from the database (SQLite file or Postgres)."""
    org, name = slug.split("/")
    out = stack.sql("SELECT o.id, p.id FROM projects p JOIN orgs o ON o.id = p.org_id "
                    f"WHERE o.name = {sql_literal(org)} AND p.name = {sql_literal(name)}")
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, f"no single project {slug} in the database: {out!r}"
    org_id, project_id = lines[0].split("|")
    return int(org_id), int(project_id)


AUDIT_COLUMNS = ("request_id", "time_ms", "org_id", "project_id", "key_id", "user", "provider", "model_requested",
                 "model_served", "status", "prompt_tokens", "completion_tokens", "cost_usd", "latency_ms", "cache_hit", "stream")

AUDIT_INSERT = ("INSERT INTO audit_log (request_id, time_ms, method, route, org_id, project_id, key_id, user, provider, "
                "model_requested, model_served, status, prompt_tokens, completion_tokens, cost_usd, latency_ms, cache_hit, stream) "
                "VALUES (?, ?, 'POST', '/v1/chat/completions', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def insert_audit_rows(stack: GatewayStack, rows: list[tuple]) -> None:
    """Rows straight into audit_log (tuples in AUDIT_COLUMNS' order), folded into the usage
    rollups and dimensions like rows the gateway wrote, with nobody's spend changed.

    SQLite: a plain INSERT, then `deploxa-gateway rollup rebuild` (which recomputes the rollups
    and dimensions from audit_log and touches no spend). PostgreSQL: `deploxa_append_audit`, the
    function the gateway's audit writer calls, which inserts and folds the rows into the rollups
    and dimensions in one transaction; `spend_settled` keeps it from adding their cost to the
    month-to-date spend (the SQLite path adds none either)."""
    if stack.postgres is None:
        with sqlite3.connect(stack.db, timeout=30) as db:
            db.executemany(AUDIT_INSERT, rows)
        stack.cli("rollup", "rebuild", timeout=300)
        return
    objects = []
    for row in rows:
        assert len(row) == len(AUDIT_COLUMNS), row
        objects.append({"method": "POST", "route": "/v1/chat/completions", **dict(zip(AUDIT_COLUMNS, row)),
                        "spend_settled": True})
    for start in range(0, len(objects), 5000):
        batch = json.dumps(objects[start:start + 5000])
        inserted = stack.sql(f"SELECT deploxa_append_audit({sql_literal(batch)}::jsonb)")
        assert inserted.strip() == str(len(objects[start:start + 5000])), \
            f"deploxa_append_audit inserted {inserted!r} of {len(objects[start:start + 5000])} rows"


# --------------------------------------------------------------------------------------------
# Times


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def day_floor(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_ago(days: float) -> datetime:
    return utc_now() - timedelta(days=days)


# --------------------------------------------------------------------------------------------
# Usage sums from audit rows (the rules of the rollups)


USAGE_COUNTS = ("requests", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "unknown_cost_requests",
                "cache_hits", "errors")


def usage_of_rows(rows: Iterable[dict]) -> dict:
    """The usage figures of audit rows: what /usage must report for exactly these rows."""
    total = {name: 0 for name in USAGE_COUNTS}
    total["cost_usd"] = 0.0
    for row in rows:
        prompt = row.get("prompt_tokens") or 0
        completion = row.get("completion_tokens") or 0
        total["requests"] += 1
        total["prompt_tokens"] += prompt
        total["completion_tokens"] += completion
        total["total_tokens"] += prompt + completion
        total["cached_tokens"] += row.get("cached_tokens") or 0
        total["cost_usd"] += row.get("cost_usd") or 0.0
        total["cache_hits"] += 1 if row.get("cache_hit") else 0
        total["errors"] += 1 if row["status"] >= 400 else 0
        if row["status"] < 400 and prompt + completion > 0 and row.get("cost_usd") is None and not row.get("cache_hit"):
            total["unknown_cost_requests"] += 1
    return total


def sum_usage(groups: Iterable[dict]) -> dict:
    total = {name: 0 for name in USAGE_COUNTS}
    total["cost_usd"] = 0.0
    for group in groups:
        for name in USAGE_COUNTS:
            total[name] += group[name]
        total["cost_usd"] += group["cost_usd"]
    return total


def assert_same_usage(actual: dict, expected: dict, what: str, names: Iterable[str] = USAGE_COUNTS) -> None:
    for name in names:
        assert actual[name] == expected[name], f"{what}: {name} is {actual[name]}, expected {expected[name]} ({actual} vs {expected})"
    assert abs(actual["cost_usd"] - expected["cost_usd"]) <= 1e-9, \
        f"{what}: cost_usd {actual['cost_usd']!r} vs expected {expected['cost_usd']!r}"

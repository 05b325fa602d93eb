"""The admin REST API (`/api/v1`) end to end: nginx → FastCGI workers → the store (SQLite, or
PostgreSQL with DEPLOXA_E2E_BACKEND=postgres), on a gateway of its own (`admin`), so that its
thousands of audit rows and its price changes never reach the session stack's tests.

What is checked, and why:
- Admin tokens (CLI create/list/revoke) are the only credential of `/api/v1`; they are stored
  hashed (the secret is nowhere in the database file, nor in any row of the Postgres database); a
  gateway key and an admin token are never interchangeable; every refusal is a 401 in OpenAI's
  error shape.
- Scope: an org- or project-scoped token sees a project outside its scope exactly as a project
  that does not exist (404, same error), on every route and every method, and unfiltered lists
  hold only its own rows; nothing outside the scope changes. A read-only token changes nothing
  (403); prices are installation-wide (403 for scoped tokens).
- Each route's round trip, its validation errors (400 naming the field in `param`), 405 and 404;
  changes reach the very next `/v1` request (new key, revoked key, limits, provider settings,
  fallback chains, prices).
- The audit log: keyset pages stay exact while requests keep arriving; NDJSON and CSV exports are
  the same selection as the JSON pages, hostile `user` text survives (CSV formula neutralised), and
  a large export is streamed.
- Usage (rollups) agrees with the audit rows for every grouping, and with `deploxa-gateway usage`.

Every tenant here is a fresh org (`adm…`) on this module's own stack.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import threading
import time
from datetime import datetime, timedelta

import pytest
from openapi_spec_validator import validate

from admin_helpers import (Admin, assert_error, assert_same_usage, chat, create_token, hour_floor, insert_audit_rows,
                           list_tokens, new_tenant, parse_csv, parse_ndjson, project_ids, rfc3339, sum_usage, uid, usage_of_rows,
                           utc_now)
from gwstack import GatewayStack, sha256_hex, wait_until


@pytest.fixture(scope="module")
def st(simulator):
    stack = GatewayStack(simulator, name="admin", workers=4,
                         serve_args=["--upstream-timeout", "2", "--graceful-timeout", "10", "--breaker-failures", "0"])
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def root(st) -> Admin:
    """An installation-wide, read-write admin token."""
    return Admin(st, create_token(st, name="root")["secret"], "installation token")


@pytest.fixture(scope="module")
def mine(st):
    """The tenant the scoped tokens belong to: org adm…, projects web and sib."""
    return new_tenant(st)


@pytest.fixture(scope="module")
def theirs(st):
    """Another tenant: org adm…, project other, with a request, a fallback chain and providers."""
    return new_tenant(st, projects=("other",))


def _other(theirs) -> str:
    return f"{theirs.org}/other"


def _request(st, key: str, **kwargs) -> str:
    response = chat(st, key, **kwargs)
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"]


# --------------------------------------------------------------------------------------------
# 1. Admin tokens


DPA = re.compile(r"^dpa_[0-9A-Za-z_]{20,}$")


def test_admin_token_cli_create_list_revoke(st, mine):
    plain = st.cli("admin-token", "create", "--name", "plain")
    lines = plain.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dpa_"), f"stdout must be the token alone: {plain.stdout!r}"
    secret = lines[0].strip()
    assert DPA.match(secret), secret
    assert plain.stderr.strip(), "a note on stderr"
    assert secret not in plain.stderr
    assert Admin(st, secret).get("/projects").status_code == 200

    everything = create_token(st, name="all")
    assert set(everything) == {"id", "name", "scope", "read_only", "created_at", "revoked_at", "secret"}, everything
    assert re.fullmatch(r"at_[0-9a-f]+", everything["id"]) and everything["name"] == "all"
    assert everything["scope"]["kind"] == "installation" and everything["read_only"] is False
    assert everything["revoked_at"] is None and everything["created_at"]
    assert DPA.match(everything["secret"]), everything["secret"]

    org = create_token(st, "--org", mine.org)
    assert org["scope"]["kind"] == "org" and mine.org in org["scope"].values(), org
    project = create_token(st, "--project", mine.web, "--read-only")
    assert project["scope"]["kind"] == "project" and mine.web in project["scope"].values(), project
    assert project["read_only"] is True

    for bad in (["--org", "nosuchorg" + uid()], ["--project", f"{mine.org}/nosuch"], ["--org", mine.org, "--project", mine.web]):
        result = st.cli("admin-token", "create", *bad, check=False)
        assert result.returncode != 0, f"admin-token create {bad} must fail: {result.stdout}"
        assert "dpa_" not in result.stdout

    listed = st.cli("admin-token", "list", "--json").stdout
    for token in (everything, org, project):
        assert token["secret"] not in listed
        assert token["secret"][-20:] not in listed
    by_id = {t["id"]: t for t in list_tokens(st)}
    assert {everything["id"], org["id"], project["id"]} <= set(by_id)
    assert all("secret" not in t for t in by_id.values())
    assert by_id[org["id"]]["scope"] == org["scope"] and by_id[project["id"]]["read_only"] is True

    client = Admin(st, org["secret"])
    assert client.get("/projects").status_code == 200
    st.cli("admin-token", "revoke", org["id"])
    assert_error(client.get("/projects"), 401, "invalid_admin_token", "authentication_error", what="revoked token")
    assert_error(client.get(f"/projects/{mine.web}"), 401, "invalid_admin_token", what="revoked token")
    assert list_tokens_by_id(st)[org["id"]]["revoked_at"] is not None
    assert list_tokens_by_id(st)[everything["id"]]["revoked_at"] is None
    assert Admin(st, everything["secret"]).get("/projects").status_code == 200, "revoking one token leaves the others"
    assert st.cli("admin-token", "revoke", "at_000000000000", check=False).returncode != 0


def list_tokens_by_id(st) -> dict:
    return {t["id"]: t for t in list_tokens(st)}


def test_admin_tokens_are_stored_hashed(st):
    token = create_token(st, name="hashed")
    secret = token["secret"]
    random_part = secret.rsplit("_", 1)[1]
    assert Admin(st, secret).get("/projects").status_code == 200
    # Neither the secret nor its random part, as text or as the hex a bytea column prints as.
    needles = [secret.encode(), random_part.encode(), secret.encode().hex().encode(), random_part.encode().hex().encode()]

    def assert_clean(data: bytes, where: str) -> None:
        lowered = data.lower()
        for needle in needles:
            assert needle not in data and needle.lower() not in lowered, f"{where} holds the token in clear"

    if st.postgres is None:
        import sqlite3

        with sqlite3.connect(f"file:{st.db}?mode=ro", uri=True) as db:
            columns = [c[1] for c in db.execute("PRAGMA table_info(admin_tokens)")]
            rows = db.execute("SELECT * FROM admin_tokens").fetchall()
        assert columns and rows
        assert any(token["id"] in (v for v in row if isinstance(v, str)) for row in rows), "the token's row is there"
        for row in rows:
            for value in row:
                data = value if isinstance(value, bytes) else str(value).encode()
                assert_clean(data, f"admin_tokens row {row}")
        for path in (st.db, st.db.with_name(st.db.name + "-wal")):
            if path.exists():
                assert_clean(path.read_bytes(), path.name)
    else:
        columns = st.sql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'admin_tokens'")
        assert int(columns) > 1, columns
        # Every column of every row, as psql prints it (bytea as \x…hex).
        rows = [line.split("|") for line in st.sql("SELECT * FROM admin_tokens").splitlines()]
        assert rows and any(token["id"] in row for row in rows), "the token's row is there"
        for row in rows:
            for value in row:
                assert_clean(value.encode(), f"admin_tokens row {row}")
        # The whole database, as the SQLite check reads the whole file: every table's rows.
        from pgcluster import PG_BIN
        import subprocess

        dump = subprocess.run([str(PG_BIN / "pg_dump"), "--data-only", *st.postgres.client_args(st.pg_database)],
                              capture_output=True, timeout=120)
        assert dump.returncode == 0 and token["id"].encode() in dump.stdout, dump.stderr[-500:]
        assert_clean(dump.stdout, f"pg_dump of {st.pg_database}")


def test_401_without_or_with_a_wrong_credential(st, mine, root):
    anonymous = Admin(st, None)
    for method, path in [("GET", "/projects"), ("GET", "/audit"), ("GET", "/usage"), ("GET", "/prices"), ("POST", "/projects"),
                         ("GET", f"/projects/{mine.web}"), ("DELETE", f"/keys/{mine.key_id(mine.web)}")]:
        assert_error(anonymous.request(method, path), 401, "invalid_admin_token", "authentication_error", what=f"{method} {path}")

    valid = root.token
    tampered = valid[:-1] + ("A" if valid[-1] != "A" else "B")
    for header in [f"Bearer {tampered}", "Bearer dpa_000000000000_" + "x" * 40, "Bearer nonsense", "Bearer", f"Basic {valid}",
                   f"Token {valid}"]:
        with st.http() as http:
            response = http.get("/api/v1/projects", headers={"Authorization": header})
        assert_error(response, 401, "invalid_admin_token", "authentication_error", what=header)

    # A gateway key is no admin token, and an admin token is no gateway key.
    gateway_key = Admin(st, mine.key(mine.web))
    assert_error(gateway_key.get("/projects"), 401, "invalid_admin_token", "authentication_error", what="dpx_ key on /api/v1")
    assert_error(gateway_key.get(f"/projects/{mine.web}"), 401, "invalid_admin_token", what="dpx_ key on its own project")
    assert_error(chat(st, valid), 401, "invalid_api_key", what="admin token on /v1/chat/completions")
    with st.http() as http:
        assert_error(http.get("/v1/models", headers={"Authorization": f"Bearer {valid}"}), 401, "invalid_api_key",
                     what="admin token on /v1/models")
    assert chat(st, mine.key(mine.web)).status_code == 200, "the gateway key itself works on /v1"
    # Swapping the prefixes makes neither work on the other side.
    assert_error(chat(st, "dpx_" + valid[4:]), 401, "invalid_api_key", what="an admin token's body as a dpx_ key")
    assert_error(Admin(st, "dpa_" + mine.key(mine.web)[4:]).get("/projects"), 401, "invalid_admin_token",
                 what="a gateway key's body as a dpa_ token")
    assert root.get("/projects").status_code == 200


# --------------------------------------------------------------------------------------------
# 2. Scope


GHOST_KEY = "gk_0000000000ff"
GHOST_REQUEST = "req_00000000000000000000000000000abc"  # the shape of a real one: req_ + 32 hex


def _scoped_routes(slug: str, key_id: str, request_id: str) -> list[tuple]:
    """(method, path, params, body) of every route of the table that names a project, key or request."""
    return [
        ("GET", f"/projects/{slug}", None, None),
        ("PATCH", f"/projects/{slug}", None, {"rpm": 7}),
        ("GET", f"/projects/{slug}/keys", None, None),
        ("POST", f"/projects/{slug}/keys", None, {"name": "intruder"}),
        ("GET", f"/keys/{key_id}", None, None),
        ("PATCH", f"/keys/{key_id}", None, {"rpm": 7}),
        ("DELETE", f"/keys/{key_id}", None, None),
        ("GET", f"/projects/{slug}/providers", None, None),
        ("PUT", f"/projects/{slug}/providers/openai", None, {"api_key": "sk-intruder-" + "0" * 20, "base_url": "http://127.0.0.1:9"}),
        ("DELETE", f"/projects/{slug}/providers/mistral", None, None),
        ("GET", f"/projects/{slug}/fallbacks", None, None),
        ("PUT", f"/projects/{slug}/fallbacks/openai/gpt-4o", None, {"to": ["mistral/mistral-large"]}),
        ("DELETE", f"/projects/{slug}/fallbacks/openai/gpt-4o", None, None),
        ("GET", "/audit", {"project": slug}, None),
        ("GET", "/audit", {"key": key_id}, None),
        ("GET", "/audit", {"project": slug, "format": "csv"}, None),
        ("GET", "/audit", {"project": slug, "format": "ndjson"}, None),
        ("GET", "/audit", {"key": key_id, "format": "ndjson"}, None),
        ("GET", f"/audit/{request_id}", None, None),
        ("GET", "/usage", {"project": slug}, None),
        ("GET", "/usage", {"project": slug, "group_by": "project"}, None),
    ]


def _assert_all_404_like_nothing(client: Admin, slug: str, key_id: str, request_id: str) -> None:
    ghost_slug = slug.split("/")[0] + "/ghost" + uid(6)
    real = _scoped_routes(slug, key_id, request_id)
    ghost = _scoped_routes(ghost_slug, GHOST_KEY, GHOST_REQUEST)
    failures = []
    for (method, path, params, body), (_, ghost_path, ghost_params, _) in zip(real, ghost):
        what = f"{client.name}: {method} {path} {params or ''}"
        response = client.request(method, path, params=params, json_body=body)
        if response.status_code != 404:
            failures.append(f"{what} -> {response.status_code} {response.text[:200]}")
            continue
        error = assert_error(response, 404, "not_found", what=what)
        nothing = client.request(method, ghost_path, params=ghost_params, json_body=body)
        ghost_error = assert_error(nothing, 404, "not_found", what=f"{client.name}: {method} {ghost_path} {ghost_params or ''}")
        normalised = {k: (v.replace(ghost_slug, slug).replace(GHOST_KEY, key_id).replace(GHOST_REQUEST, request_id)
                          if isinstance(v, str) else v) for k, v in ghost_error.items()}
        if error != normalised:
            failures.append(f"{what}: outside the scope {error} differs from a missing one {ghost_error}")
    assert not failures, "routes outside the scope that are not a plain 404:\n" + "\n".join(failures)


@pytest.fixture(scope="module")
def scoped(st, root, mine, theirs):
    """Traffic in both tenants, a fallback chain in each project, and two read-write scoped tokens."""
    other = _other(theirs)
    requests = {}
    for slug, tenant in ((other, theirs), (mine.web, mine), (mine.sib, mine)):
        st.cli("fallback", "set", slug, "openai/gpt-4o", "--to", "anthropic/claude-sonnet-4")
        requests[slug] = _request(st, tenant.key(slug), user=f"user-of-{slug}")
    for request_id in requests.values():
        root.wait_for_row(request_id)
    org_token = Admin(st, create_token(st, "--org", mine.org, name="org-rw")["secret"], "org token")
    project_token = Admin(st, create_token(st, "--project", mine.web, name="project-rw")["secret"], "project token")
    return {"requests": requests, "org": org_token, "project": project_token}


def _assert_untouched(st, root: Admin, tenant, slug: str) -> None:
    """Nothing a refused request named has changed."""
    project = root.ok("GET", f"/projects/{slug}")
    assert project["rpm"] is None and project["tpm"] is None, project
    keys = root.ok("GET", f"/projects/{slug}/keys")["data"]
    assert [k["id"] for k in keys] == [tenant.key_id(slug)], keys
    assert keys[0]["status"] == "active" and keys[0]["rpm"] is None, keys
    providers = {p["provider"]: p for p in root.ok("GET", f"/projects/{slug}/providers")["data"]}
    assert set(providers) == set(GatewayStack.PROVIDERS), providers
    assert providers["openai"]["base_url"] == f"{st.simulator.url}/openai", providers["openai"]
    chains = root.ok("GET", f"/projects/{slug}/fallbacks")["data"]
    assert [(c["provider"], c["model"], c["to"]) for c in chains] == [("openai", "gpt-4o", ["anthropic/claude-sonnet-4"])], chains
    assert chat(st, tenant.key(slug)).status_code == 200, f"the key of {slug} must still work"


def test_scoped_tokens_see_another_orgs_project_as_missing_on_every_route(st, root, mine, theirs, scoped):
    other = _other(theirs)
    for client in (scoped["org"], scoped["project"]):
        _assert_all_404_like_nothing(client, other, theirs.key_id(other), scoped["requests"][other])
        # Creating a project in another org: that org does not exist for this token.
        response = client.post("/projects", {"name": f"{theirs.org}/intruded"})
        assert_error(response, 404, "not_found", what=f"{client.name}: POST /projects in another org")
    _assert_untouched(st, root, theirs, other)
    assert [p["name"] for p in root.ok("GET", "/projects")["data"] if p["name"].startswith(theirs.org + "/")] == [other]


def test_project_token_sees_its_sibling_project_as_missing(st, root, mine, scoped):
    _assert_all_404_like_nothing(scoped["project"], mine.sib, mine.key_id(mine.sib), scoped["requests"][mine.sib])
    _assert_untouched(st, root, mine, mine.sib)
    # The org token does see the sibling.
    assert scoped["org"].get(f"/projects/{mine.sib}").status_code == 200
    assert scoped["org"].get(f"/audit/{scoped['requests'][mine.sib]}").status_code == 200


def test_scoped_tokens_unfiltered_lists_hold_only_their_own_rows(st, root, mine, theirs, scoped):
    own_web = scoped["requests"][mine.web]
    cases = [(scoped["org"], lambda slug: slug.startswith(mine.org + "/"), {mine.web, mine.sib}),
             (scoped["project"], lambda slug: slug == mine.web, {mine.web})]
    everything = {row["request_id"] for row in root.audit_walk()}
    assert scoped["requests"][_other(theirs)] in everything
    for client, inside, must_see in cases:
        rows = client.audit_walk()
        outside = [(r["request_id"], r["project"]) for r in rows if not inside(r["project"] or "")]
        assert not outside, f"{client.name}: /audit shows rows outside its scope: {outside[:5]}"
        assert own_web in {r["request_id"] for r in rows}, f"{client.name}: its own request is missing from /audit"
        for fmt in ("ndjson", "csv"):
            exported = client.export_ndjson() if fmt == "ndjson" else client.export_csv()[1]
            assert {r["request_id"] for r in exported} == {r["request_id"] for r in rows}, f"{client.name}: {fmt} export"
            assert all(inside(r["project"] or "") for r in exported), f"{client.name}: {fmt} export leaks"
        usage = client.ok("GET", "/usage", params={"group_by": "project"})
        groups = {g["group"] for g in usage["data"]}
        assert groups and all(inside(g) for g in groups), f"{client.name}: /usage?group_by=project shows {groups}"
        assert mine.web in groups
        assert usage["total"]["requests"] == sum(g["requests"] for g in usage["data"])
        projects = {p["name"] for p in client.ok("GET", "/projects")["data"]}
        assert all(inside(p) for p in projects) and must_see <= projects, f"{client.name}: /projects shows {projects}"
        assert client.get(f"/projects/{mine.web}").status_code == 200
        assert client.get(f"/audit/{own_web}").status_code == 200


def test_read_only_tokens_change_nothing(st, root, mine, scoped):
    slug = mine.web
    key_id = mine.key_id(slug)
    changes = [
        ("POST", "/projects", {"name": f"{mine.org}/ro{uid(6)}"}),
        ("PATCH", f"/projects/{slug}", {"rpm": 1}),
        ("POST", f"/projects/{slug}/keys", {"name": "ro"}),
        ("PATCH", f"/keys/{key_id}", {"rpm": 1}),
        ("DELETE", f"/keys/{key_id}", None),
        ("PUT", f"/projects/{slug}/providers/openai", {"api_key": "sk-readonly-" + "1" * 20}),
        ("DELETE", f"/projects/{slug}/providers/mistral", None),
        ("PUT", f"/projects/{slug}/fallbacks/openai/gpt-4o", {"to": ["mistral/mistral-large"]}),
        ("DELETE", f"/projects/{slug}/fallbacks/openai/gpt-4o", None),
        ("PUT", "/prices/gpt-4o", {"input": 999, "output": 999}),
    ]
    reads = [("/projects", None), (f"/projects/{slug}", None), (f"/projects/{slug}/keys", None), (f"/keys/{key_id}", None),
             (f"/projects/{slug}/providers", None), (f"/projects/{slug}/fallbacks", None), ("/prices", None),
             ("/audit", {"project": slug}), (f"/audit/{scoped['requests'][slug]}", None), ("/usage", {"project": slug}),
             ("/audit", {"project": slug, "format": "csv"})]
    prices_before = {p["model"]: p for p in root.ok("GET", "/prices")["data"]}
    for options in (["--read-only"], ["--org", mine.org, "--read-only"], ["--project", slug, "--read-only"]):
        client = Admin(st, create_token(st, *options)["secret"], f"read-only token {options}")
        for method, path, body in changes:
            assert_error(client.request(method, path, json_body=body), 403, "forbidden", "permission_error",
                         what=f"{client.name}: {method} {path}")
        for path, params in reads:
            response = client.get(path, params=params)
            assert response.status_code == 200, f"{client.name}: GET {path} {params}: {response.status_code} {response.text[:200]}"
    _assert_untouched(st, root, mine, slug)
    assert {p["model"]: p for p in root.ok("GET", "/prices")["data"]} == prices_before
    assert not [p for p in root.ok("GET", "/projects")["data"] if "/ro" in p["name"]]


def test_prices_are_changed_only_by_installation_tokens(st, root, mine, scoped):
    model = f"admscoped-{uid()}"
    for client in (scoped["org"], scoped["project"]):
        assert_error(client.put(f"/prices/{model}", {"input": 1, "output": 2}), 403, "forbidden", "permission_error",
                     what=f"{client.name}: PUT /prices")
        assert client.get("/prices").status_code == 200
    assert model not in {p["model"] for p in root.ok("GET", "/prices")["data"]}
    assert root.put(f"/prices/{model}", {"input": 1, "output": 2}).status_code == 200


# --------------------------------------------------------------------------------------------
# 3. Round trips


ROUTES = {
    ("get", "/api/v1/openapi.json"), ("get", "/api/v1/audit"), ("get", "/api/v1/audit/{}"), ("get", "/api/v1/usage"),
    ("get", "/api/v1/projects"), ("post", "/api/v1/projects"), ("get", "/api/v1/projects/{}/{}"),
    ("patch", "/api/v1/projects/{}/{}"), ("get", "/api/v1/projects/{}/{}/keys"), ("post", "/api/v1/projects/{}/{}/keys"),
    ("get", "/api/v1/keys/{}"), ("patch", "/api/v1/keys/{}"), ("delete", "/api/v1/keys/{}"),
    ("get", "/api/v1/projects/{}/{}/providers"), ("put", "/api/v1/projects/{}/{}/providers/{}"),
    ("delete", "/api/v1/projects/{}/{}/providers/{}"), ("get", "/api/v1/projects/{}/{}/fallbacks"),
    ("put", "/api/v1/projects/{}/{}/fallbacks/{}/{}"), ("delete", "/api/v1/projects/{}/{}/fallbacks/{}/{}"),
    ("get", "/api/v1/prices"), ("put", "/api/v1/prices/{}"),
}


def test_openapi_document_is_public_valid_and_complete(st):
    with st.http() as http:
        response = http.get("/api/v1/openapi.json")
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert str(document.get("openapi", "")).startswith("3.1"), document.get("openapi")
    validate(document)
    base = ""
    servers = document.get("servers") or []
    if servers and servers[0].get("url", "/").rstrip("/") not in ("", "/"):
        base = re.sub(r"^https?://[^/]+", "", servers[0]["url"]).rstrip("/")
    documented = set()
    for path, item in document["paths"].items():
        full = path if path.startswith("/api/v1") else base + path
        template = re.sub(r"\{[^}]+\}", "{}", full)
        for method in item:
            if method in ("get", "put", "post", "delete", "patch"):
                documented.add((method, template))
    missing = ROUTES - documented
    assert not missing, f"routes missing from openapi.json: {sorted(missing)}"
    with st.http() as http:
        assert_error(http.post("/api/v1/openapi.json"), 405, "method_not_allowed")


def test_unknown_routes_and_wrong_methods(st, root, mine):
    slug, key_id = mine.web, mine.key_id(mine.web)
    for path in ["/api/v1/nothing", f"/api/v1/projects/{slug}/nothing", f"/api/v1/projects/{slug}/keys/extra",
                 "/api/v1/audit/a/b/c", "/api/v2/projects", "/api/v1/usage/extra"]:
        assert_error(root.get(path), 404, "not_found", what=f"GET {path}")
    for method, path in [("DELETE", "/projects"), ("PUT", "/projects"), ("PUT", f"/projects/{slug}"), ("DELETE", f"/projects/{slug}"),
                         ("PUT", f"/projects/{slug}/keys"), ("POST", f"/keys/{key_id}"), ("PUT", f"/keys/{key_id}"),
                         ("POST", "/audit"), ("DELETE", "/audit/req_x"), ("POST", "/usage"), ("POST", "/prices"),
                         ("DELETE", "/prices"), ("GET", "/prices/gpt-4o"), ("POST", f"/projects/{slug}/providers"),
                         ("GET", f"/projects/{slug}/providers/openai"), ("POST", f"/projects/{slug}/fallbacks"),
                         ("GET", f"/projects/{slug}/fallbacks/openai/gpt-4o")]:
        body = {} if method in ("POST", "PUT", "PATCH") else None
        assert_error(root.request(method, path, json_body=body), 405, "method_not_allowed", what=f"{method} {path}")


def test_projects_create_read_update(st, root, mine, theirs, scoped):
    slug = f"{mine.org}/p{uid(6)}"
    created = root.ok("POST", "/projects", {"name": slug, "plan": "team", "rpm": 10, "tpm": 1000, "monthly_budget_usd": 5.5}, status=201)
    assert created["object"] == "project" and created["name"] == slug, created
    assert created["org"] == mine.org and created["project"] == slug.split("/")[1]
    assert (created["plan"], created["rpm"], created["tpm"], created["monthly_budget_usd"]) == ("team", 10, 1000, 5.5), created
    assert created["created_at"] and created["month_to_date"]["requests"] == 0
    assert_error(root.post("/projects", {"name": slug}), 409, "conflict", what="POST an existing project")
    assert slug in {p["name"] for p in root.ok("GET", "/projects")["data"]}
    fetched = root.ok("GET", f"/projects/{slug}")
    assert {k: fetched[k] for k in ("name", "plan", "rpm", "tpm", "monthly_budget_usd")} == \
        {k: created[k] for k in ("name", "plan", "rpm", "tpm", "monthly_budget_usd")}
    assert fetched["month_to_date"]["month"] == utc_now().strftime("%Y-%m"), fetched

    # PATCH: absent fields unchanged, null clears.
    patched = root.ok("PATCH", f"/projects/{slug}", {"rpm": 20})
    assert (patched["rpm"], patched["tpm"], patched["monthly_budget_usd"], patched["plan"]) == (20, 1000, 5.5, "team"), patched
    patched = root.ok("PATCH", f"/projects/{slug}", {"tpm": None, "plan": "pro"})
    assert (patched["rpm"], patched["tpm"], patched["monthly_budget_usd"], patched["plan"]) == (20, None, 5.5, "pro"), patched
    patched = root.ok("PATCH", f"/projects/{slug}", {"monthly_budget_usd": None, "rpm": None})
    assert (patched["rpm"], patched["tpm"], patched["monthly_budget_usd"]) == (None, None, None), patched
    assert root.ok("GET", f"/projects/{slug}")["rpm"] is None

    # Validation: 400 naming the field.
    for body, param in [({"rpm": 1, "colour": "red"}, "colour"), ({"rpm": -1}, "rpm"), ({"rpm": "ten"}, "rpm"),
                        ({"tpm": 1.5}, "tpm"), ({"monthly_budget_usd": -3}, "monthly_budget_usd"), ({"plan": "gold"}, "plan"),
                        ({"name": "x/y"}, "name")]:
        assert_error(root.patch(f"/projects/{slug}", body), 400, param=param, what=f"PATCH {body}")
    for body, param in [({"name": "noslash"}, "name"), ({"name": f"{mine.org}/x{uid(4)}", "plan": "gold"}, "plan"),
                        ({"name": f"{mine.org}/x{uid(4)}", "bogus": True}, "bogus"), ({"plan": "pro"}, "name"),
                        ({"name": f"{mine.org}/x{uid(4)}", "rpm": -5}, "rpm")]:
        assert_error(root.post("/projects", body), 400, param=param, what=f"POST /projects {body}")
    assert_error(root.request("POST", "/projects", content=b"{not json"), 400, what="POST invalid JSON")
    assert_error(root.request("POST", "/projects", content=b"[1, 2]"), 400, what="POST a JSON array")
    assert root.ok("GET", f"/projects/{slug}")["plan"] == "pro", "refused changes left the project alone"
    assert_error(root.get(f"/projects/{mine.org}/nosuch"), 404, "not_found")
    assert_error(root.patch(f"/projects/{mine.org}/nosuch", {"rpm": 1}), 404, "not_found")

    # An installation token may create a new org this way; an org token only inside its own org.
    new_org = f"admnew{uid(6)}"
    assert root.ok("POST", "/projects", {"name": f"{new_org}/app"}, status=201)["org"] == new_org
    inside = scoped["org"].ok("POST", "/projects", {"name": f"{mine.org}/byorg{uid(4)}"}, status=201)
    assert inside["org"] == mine.org
    assert_error(scoped["org"].post("/projects", {"name": f"admbrand{uid(6)}/app"}), 404, "not_found",
                 what="org token creating a new org")
    assert_error(scoped["project"].post("/projects", {"name": f"{mine.org}/byproj{uid(4)}"}), 404, "not_found",
                 what="project token creating a project")


def test_a_project_built_entirely_through_the_api_serves_requests_within_its_limits(st, root, mine):
    slug = f"{mine.org}/api{uid(6)}"
    root.ok("POST", "/projects", {"name": slug, "rpm": 2}, status=201)
    root.ok("PUT", f"/projects/{slug}/providers/openai", {"api_key": "sk-built-" + uid(24), "base_url": f"{st.simulator.url}/openai"})
    key = root.ok("POST", f"/projects/{slug}/keys", {"name": "first"}, status=201)
    statuses = [chat(st, key["secret"]).status_code for _ in range(3)]
    assert statuses == [200, 200, 429], statuses
    root.ok("PATCH", f"/projects/{slug}", {"rpm": None})
    assert chat(st, key["secret"]).status_code == 200, "lifting the project's limit applies at once"


def test_project_month_to_date_counts_this_months_requests(st, root, mine):
    slug = mine.project(f"mtd{uid(6)}")
    before = root.ok("GET", f"/projects/{slug}")["month_to_date"]
    assert (before["requests"], before["cost_usd"]) == (0, 0), before
    costs = []
    for _ in range(3):
        response = chat(st, mine.key(slug))
        assert response.status_code == 200
        costs.append(root.wait_for_row(response.headers["x-request-id"])["cost_usd"])
    for item in (root.ok("GET", f"/projects/{slug}"),
                 next(p for p in root.ok("GET", "/projects")["data"] if p["name"] == slug)):
        month = item["month_to_date"]
        assert month["month"] == utc_now().strftime("%Y-%m"), month
        assert month["requests"] == 3, f"month_to_date after 3 requests this month: {month}"
        assert abs(month["cost_usd"] - sum(costs)) <= 1e-9, (month, costs)


def test_keys_create_list_limit_revoke(st, root, mine):
    slug = mine.project(f"k{uid(6)}")
    created = root.ok("POST", f"/projects/{slug}/keys", {"name": "by-api", "rpm": 100, "tpm": None, "monthly_budget_usd": 5.5}, status=201)
    assert created["object"] == "key" and re.fullmatch(r"gk_[0-9a-f]{12}", created["id"]), created
    assert created["secret"].startswith("dpx_") and created["name"] == "by-api"
    assert (created["rpm"], created["tpm"], created["monthly_budget_usd"]) == (100, None, 5.5), created
    secret = created["secret"]
    assert chat(st, secret).status_code == 200, "a new key works at once"

    listing = root.get(f"/projects/{slug}/keys")
    assert listing.status_code == 200 and secret not in listing.text and secret[-20:] not in listing.text
    items = {k["id"]: k for k in listing.json()["data"]}
    assert {created["id"], mine.key_id(slug)} == set(items), items
    assert all("secret" not in k for k in items.values())
    one = root.get(f"/keys/{created['id']}")
    assert one.status_code == 200 and secret not in one.text and "secret" not in one.json()
    assert one.json()["status"] == "active" and one.json()["rpm"] == 100

    limited = root.ok("PATCH", f"/keys/{created['id']}", {"rpm": 1})
    assert (limited["rpm"], limited["monthly_budget_usd"]) == (1, 5.5), limited
    refused = chat(st, secret)
    assert refused.status_code == 429, f"rpm 1 after one request this minute: {refused.status_code} {refused.text[:200]}"
    freed = root.ok("PATCH", f"/keys/{created['id']}", {"rpm": None})
    assert (freed["rpm"], freed["monthly_budget_usd"]) == (None, 5.5), freed
    assert chat(st, secret).status_code == 200
    assert root.ok("PATCH", f"/keys/{created['id']}", {"monthly_budget_usd": None})["monthly_budget_usd"] is None
    for body, param in [({"rpm": "ten"}, "rpm"), ({"secret": "x"}, "secret"), ({"tpm": -1}, "tpm"), ({"rpm": 1, "owner": "x"}, "owner")]:
        assert_error(root.patch(f"/keys/{created['id']}", body), 400, param=param, what=f"PATCH key {body}")
    for body, param in [({"name": 42}, "name"), ({"rpm": -2}, "rpm"), ({"project": slug}, "project")]:
        assert_error(root.post(f"/projects/{slug}/keys", body), 400, param=param, what=f"POST key {body}")
    assert root.ok("GET", f"/keys/{created['id']}")["rpm"] is None

    revoked = root.ok("DELETE", f"/keys/{created['id']}")
    assert revoked["status"] == "revoked" and revoked["revoked_at"], revoked
    assert_error(chat(st, secret), 401, "invalid_api_key", what="the revoked key's very next request")
    assert root.ok("GET", f"/keys/{created['id']}")["status"] == "revoked"
    assert chat(st, mine.key(slug)).status_code == 200, "the project's other key still works"
    assert_error(root.get("/keys/gk_0000000000aa"), 404, "not_found")
    assert_error(root.delete("/keys/gk_0000000000aa"), 404, "not_found")
    assert_error(root.post(f"/projects/{mine.org}/nosuch/keys", {"name": "x"}), 404, "not_found")


def test_provider_keys_are_write_only(st, root, mine):
    slug = mine.project(f"pv{uid(6)}")
    api_key = "sk-admin-e2e-" + uid(32)
    saved = root.put(f"/projects/{slug}/providers/openai", {"api_key": api_key, "base_url": f"{st.simulator.url}/openai"})
    assert saved.status_code == 200, saved.text
    assert api_key not in saved.text
    item = saved.json()
    assert item["provider"] == "openai" and item["api_key_last4"] == api_key[-4:], item
    assert item["base_url"] == f"{st.simulator.url}/openai" == item["effective_base_url"] and item["updated_at"], item

    listing = root.get(f"/projects/{slug}/providers")
    assert listing.status_code == 200 and api_key not in listing.text
    by_name = {p["provider"]: p for p in listing.json()["data"]}
    assert set(by_name) == set(GatewayStack.PROVIDERS)
    assert by_name["openai"]["api_key_last4"] == api_key[-4:]
    assert all({"provider", "api_key_last4", "base_url", "effective_base_url", "updated_at"} <= set(p) for p in by_name.values())
    assert all("api_key" not in p for p in by_name.values())

    # The very next request uses the new key.
    response = chat(st, mine.key(slug))
    assert response.status_code == 200, response.text
    upstream_headers = {name.lower(): value for name, value in st.simulator.last()["headers"].items()}
    assert upstream_headers.get("authorization") == "Bearer " + sha256_hex(api_key), "the simulator saw another key"
    row = root.wait_for_row(response.headers["x-request-id"])
    texts = [root.get(f"/projects/{slug}").text, root.get(f"/audit/{row['request_id']}").text,
             root.export("ndjson", {"project": slug}).text, root.export("csv", {"project": slug}).text,
             root.get("/audit", params={"project": slug}).text, root.get("/projects").text]
    assert all(api_key not in text and api_key[4:-4] not in text for text in texts), "the provider key leaked"

    # No base URL: the provider's default.
    mistral = root.ok("PUT", f"/projects/{slug}/providers/mistral", {"api_key": "mk-" + uid(20)})
    assert mistral["base_url"] is None and mistral["effective_base_url"].startswith("https://"), mistral

    deleted = root.delete(f"/projects/{slug}/providers/mistral")
    assert deleted.status_code == 204 and not deleted.content, deleted.text
    assert "mistral" not in {p["provider"] for p in root.ok("GET", f"/projects/{slug}/providers")["data"]}

    assert_error(root.put(f"/projects/{slug}/providers/nosuch", {"api_key": "k" * 20}), 400, what="unknown provider")
    assert_error(root.delete(f"/projects/{slug}/providers/nosuch"), 400, what="DELETE unknown provider")
    for body, param in [({}, "api_key"), ({"api_key": ""}, "api_key"), ({"api_key": 12}, "api_key"),
                        ({"api_key": "k" * 20, "base_url": "ftp://example.com"}, "base_url"),
                        ({"api_key": "k" * 20, "region": "eu"}, "region")]:
        assert_error(root.put(f"/projects/{slug}/providers/anthropic", body), 400, param=param, what=f"PUT provider {body}")
    assert root.ok("GET", f"/projects/{slug}/providers")["data"], "refused changes removed nothing"
    assert chat(st, mine.key(slug), model="claude-sonnet-4").status_code == 200, "anthropic untouched by refused PUTs"


def test_fallback_chains_round_trip_and_apply(st, root, mine):
    slug = mine.project(f"fb{uid(6)}")
    chain = root.ok("PUT", f"/projects/{slug}/fallbacks/openai/gpt-4o", {"to": ["anthropic/claude-sonnet-4", "mistral/mistral-large"]})
    assert (chain["provider"], chain["model"], chain["to"]) == ("openai", "gpt-4o", ["anthropic/claude-sonnet-4", "mistral/mistral-large"])
    items = root.ok("GET", f"/projects/{slug}/fallbacks")["data"]
    assert [(c["provider"], c["model"], c["to"]) for c in items] == [("openai", "gpt-4o", chain["to"])], items

    failing = f"[sim openai:status=500] {uid()}"
    rescued = chat(st, mine.key(slug), content=failing)
    assert rescued.status_code == 200 and rescued.headers["x-ai-provider"] == "anthropic", (rescued.status_code, rescued.text[:200])

    replaced = root.ok("PUT", f"/projects/{slug}/fallbacks/openai/gpt-4o", {"to": ["mistral/mistral-large"]})
    assert replaced["to"] == ["mistral/mistral-large"]
    assert chat(st, mine.key(slug), content=f"[sim openai:status=500] {uid()}").headers.get("x-ai-provider") == "mistral"

    deleted = root.delete(f"/projects/{slug}/fallbacks/openai/gpt-4o")
    assert deleted.status_code == 204 and not deleted.content
    assert root.ok("GET", f"/projects/{slug}/fallbacks")["data"] == []
    unrescued = chat(st, mine.key(slug), content=f"[sim openai:status=500] {uid()}")
    assert unrescued.status_code != 200, "without a chain the failure reaches the client"

    for body, param in [({"to": []}, "to"), ({"to": ["nosuch/model"]}, "to"), ({"to": "anthropic/claude-sonnet-4"}, "to"),
                        ({"to": [7]}, "to"), ({}, "to"), ({"to": ["anthropic/claude-sonnet-4"], "when": "always"}, "when")]:
        assert_error(root.put(f"/projects/{slug}/fallbacks/openai/gpt-4o", body), 400, param=param, what=f"PUT chain {body}")
    assert root.ok("GET", f"/projects/{slug}/fallbacks")["data"] == []


def test_price_change_applies_to_the_very_next_request(st, root, mine):
    model = f"admprice-{uid()}"
    prices = root.ok("GET", "/prices")
    assert prices["object"] == "list" and "gpt-4o" in {p["model"] for p in prices["data"]}
    for rates in [(3.0, 7.0), (11.0, 13.0), (0.5, 0.25)]:
        saved = root.ok("PUT", f"/prices/{model}", {"input": rates[0], "output": rates[1], "cached_input": rates[0] / 2})
        assert (saved["model"], saved["input"], saved["output"]) == (model, *rates), saved
        response = chat(st, mine.key(mine.web), model=model, headers={"X-AI-Provider": "openai"})
        assert response.status_code == 200, response.text
        row = root.wait_for_row(response.headers["x-request-id"])
        assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0 and not row["cached_tokens"], row
        expected = row["prompt_tokens"] * rates[0] / 1e6 + row["completion_tokens"] * rates[1] / 1e6
        assert row["cost_usd"] is not None and abs(row["cost_usd"] - expected) <= 1e-9, (rates, row["cost_usd"], expected)
    listed = {p["model"]: p for p in root.ok("GET", "/prices")["data"]}
    assert (listed[model]["input"], listed[model]["output"]) == (0.5, 0.25)
    for body, param in [({"input": -1, "output": 1}, "input"), ({"input": 1}, "output"), ({"output": 1}, "input"),
                        ({"input": 1, "output": "x"}, "output"), ({"input": 1, "output": 1, "discount": 3}, "discount"),
                        ({"input": 1, "output": 1, "cached_input": -2}, "cached_input")]:
        assert_error(root.put(f"/prices/{model}", body), 400, param=param, what=f"PUT price {body}")
    assert {p["model"]: p for p in root.ok("GET", "/prices")["data"]}[model]["input"] == 0.5


def test_audit_row_filters_and_parameters(st, root, mine):
    slug = mine.project(f"au{uid(6)}")
    key = mine.key(slug)
    second = st.create_key("second", slug)
    sent = {
        "alice": _request(st, key, user="alice"),
        "bob": _request(st, second["secret"], user="bob", model="claude-sonnet-4"),
        "plain": _request(st, key),
    }
    failed = chat(st, key, content=f"[sim openai:status=400] {uid()}", user="alice")
    assert failed.status_code == 400
    sent["failed"] = failed.headers["x-request-id"]
    rows = root.wait_for_rows({"project": slug}, 4)
    assert {r["request_id"] for r in rows} == set(sent.values())

    one = root.ok("GET", f"/audit/{sent['bob']}")
    assert one == next(r for r in rows if r["request_id"] == sent["bob"])
    assert (one["project"], one["key_id"], one["user"], one["provider"], one["status"]) == (slug, second["id"], "bob", "anthropic", 200)
    for field in ("time", "model_requested", "model_served", "error_code", "prompt_tokens", "completion_tokens", "cached_tokens",
                  "cost_usd", "latency_ms", "ttft_ms", "cache_hit", "stream", "attempts"):
        assert field in one, f"audit rows carry {field}: {one}"

    def ids(**params):
        return {r["request_id"] for r in root.audit_walk({"project": slug, **params})}
    assert ids(user="alice") == {sent["alice"], sent["failed"]}
    assert ids(key=second["id"]) == {sent["bob"]}
    assert root.audit_walk({"key": second["id"]}) == [one]
    assert ids(provider="anthropic") == {sent["bob"]}
    assert ids(model="claude-sonnet-4") == {sent["bob"]}
    assert ids(status="400") == {sent["failed"]}
    start = datetime.fromisoformat(min(r["time"] for r in rows).replace("Z", "+00:00"))
    assert ids(**{"from": rfc3339(start + timedelta(hours=1))}) == set()
    assert ids(**{"from": rfc3339(start - timedelta(minutes=1)), "to": rfc3339(utc_now() + timedelta(minutes=1))}) == set(sent.values())

    pages: list = []
    walked = root.audit_walk({"project": slug}, limit=1, pages=pages)
    assert [r["request_id"] for r in walked] == [r["request_id"] for r in rows]
    assert all(len(p["data"]) <= 1 for p in pages) and len(pages) >= 4
    first = root.ok("GET", "/audit", params={"project": slug})
    assert len(first["data"]) == 4, "the default limit (100) holds all four"

    for params, param in [({"cursor": "garbage"}, "cursor"), ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"),
                          ({"limit": "ten"}, "limit"), ({"from": "yesterday"}, "from"), ({"status": "abc"}, "status"),
                          ({"format": "xml"}, "format")]:
        assert_error(root.get("/audit", params={"project": slug, **params}), 400, param=param, what=f"/audit {params}")
    assert_error(root.get("/audit/req_doesnotexist0000"), 404, "not_found")
    assert_error(root.get("/audit", params={"project": f"{mine.org}/nosuch"}), 404, "not_found")
    assert_error(root.get("/audit", params={"key": "gk_0000000000bb"}), 404, "not_found")
    for params, param in [({"group_by": "colour"}, "group_by"), ({"from": "nope"}, "from")]:
        assert_error(root.get("/usage", params=params), 400, param=param, what=f"/usage {params}")


# --------------------------------------------------------------------------------------------
# 4. Pagination while requests keep arriving


def _time_key(row: dict) -> tuple:
    return (datetime.fromisoformat(row["time"].replace("Z", "+00:00")), row["seq"])


def test_pages_stay_exact_while_requests_keep_arriving(st, root, mine):
    slug = mine.project(f"pg{uid(6)}")
    key = mine.key(slug)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: chat(st, key, content=f"page {i} {uid()}").status_code, range(150)))
    assert statuses.count(200) == 150, {s: statuses.count(s) for s in set(statuses)}
    before = wait_until(lambda: (lambda rows: rows if len(rows) >= 150 else None)(root.export_ndjson({"project": slug})),
                        timeout=30, interval=0.3, what="150 exported rows")
    before_ids = [r["request_id"] for r in before]
    assert len(before_ids) == len(set(before_ids)) == 150

    stop = threading.Event()
    written: list[int] = []

    def keep_writing():
        while not stop.is_set():
            written.append(chat(st, key, content=f"during the walk {uid()}").status_code)

    writers = [threading.Thread(target=keep_writing) for _ in range(2)]
    for thread in writers:
        thread.start()
    try:
        wait_until(lambda: len(written) >= 4, timeout=20, what="writes during the walk")
        pages: list = []
        walked = root.audit_walk({"project": slug}, limit=7, pages=pages)
    finally:
        stop.set()
        for thread in writers:
            thread.join(30)
    assert written.count(200) >= 4 and len(pages) >= 150 // 7, (len(written), len(pages))
    assert all(len(p["data"]) <= 7 for p in pages)
    ids = [r["request_id"] for r in walked]
    repeated = {i for i in ids if ids.count(i) > 1}
    assert not repeated, f"request ids returned twice by the walk: {sorted(repeated)[:5]}"
    missing = set(before_ids) - set(ids)
    assert not missing, f"{len(missing)} rows that existed before the walk were skipped, e.g. {sorted(missing)[:5]}"
    keys = [_time_key(r) for r in walked]
    assert all(a > b for a, b in zip(keys, keys[1:])), "pages are newest first by (time, seq)"


# --------------------------------------------------------------------------------------------
# 5. Exports


HOSTILE_USER = '=HYPERLINK("http://evil.example/?q=1","click"), "quoted" and\nnew line; semi;colon'


def _csv_matches(csv_value: str, value) -> bool:
    if value is None:
        return csv_value == ""
    if isinstance(value, bool):
        return csv_value == ("true" if value else "false")
    if isinstance(value, (int, float)):
        return csv_value != "" and abs(float(csv_value) - value) <= 1e-9 * max(1.0, abs(value))
    if isinstance(value, str):
        if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
            return csv_value == "'" + value
        return csv_value == value
    return json.loads(csv_value) == value


def test_ndjson_csv_and_pages_are_the_same_selection(st, root, mine):
    slug = mine.project(f"ex{uid(6)}")
    key = mine.key(slug)
    users = [HOSTILE_USER, "+1+2", "-3", "@SUM(A1)", "alice", "comma, inside", 'a "quote"', "ünïcödé 日本"]
    sent = [_request(st, key, user=user) for user in users]
    sent.append(_request(st, key, model="gemini-2.0-flash", stream=True))
    failed = chat(st, key, model="nosuch-model-" + uid())
    assert failed.status_code == 400
    sent.append(failed.headers["x-request-id"])
    pages = root.wait_for_rows({"project": slug}, len(sent))
    assert sorted(r["request_id"] for r in pages) == sorted(sent)

    ndjson_response = root.export("ndjson", {"project": slug})
    assert ndjson_response.headers["content-type"].startswith("application/x-ndjson"), ndjson_response.headers
    assert ndjson_response.headers.get("content-disposition", "").startswith("attachment"), ndjson_response.headers
    assert ndjson_response.text.endswith("\n")
    ndjson = parse_ndjson(ndjson_response.text)

    csv_response = root.export("csv", {"project": slug})
    assert csv_response.headers["content-type"].startswith("text/csv"), csv_response.headers
    assert csv_response.headers.get("content-disposition", "").startswith("attachment"), csv_response.headers
    raw = csv_response.text
    header_line = raw.split("\r\n", 1)[0]
    assert "\n" not in header_line and raw.endswith("\r\n"), "CSV lines end with CRLF"
    columns, csv_rows = parse_csv(raw)
    assert header_line.split(",") == columns
    assert raw.count("\r\n") == len(csv_rows) + 1, "one CRLF per record plus the header's"

    assert len(ndjson) == len(csv_rows) == len(pages) == len(sent)
    assert [r["request_id"] for r in ndjson] == [r["request_id"] for r in pages], "same rows, same order (newest first)"
    assert [r["request_id"] for r in csv_rows] == [r["request_id"] for r in pages]
    assert set(columns) == set(ndjson[0]), (columns, sorted(ndjson[0]))
    by_id = {r["request_id"]: r for r in pages}
    for exported, from_csv in zip(ndjson, csv_rows):
        assert exported == by_id[exported["request_id"]], f"NDJSON and JSON pages differ: {exported} vs {by_id[exported['request_id']]}"
        wrong = {c: (from_csv[c], exported[c]) for c in columns if not _csv_matches(from_csv[c], exported[c])}
        assert not wrong, f"CSV differs from NDJSON for {exported['request_id']}: {wrong}"

    exported_users = {r["user"] for r in ndjson}
    assert set(users) <= exported_users, exported_users
    hostile = next(r for r in csv_rows if r["user"].startswith("'=HYPERLINK"))
    assert hostile["user"] == "'" + HOSTILE_USER
    assert next(r for r in csv_rows if r["user"].endswith("+1+2"))["user"] == "'+1+2"
    assert next(r for r in pages if r["user"] == HOSTILE_USER)["user"] == HOSTILE_USER
    # The same selection with a filter.
    only = root.export_ndjson({"project": slug, "user": HOSTILE_USER})
    assert [r["request_id"] for r in only] == [sent[0]]
    assert [r["request_id"] for r in parse_csv(root.export("csv", {"project": slug, "user": HOSTILE_USER}).text)[1]] == [sent[0]]


def test_a_large_export_is_streamed(st, root, mine):
    slug = mine.project(f"bulk{uid(6)}")
    org_id, project_id = project_ids(st, slug)
    key_id = mine.key_id(slug)
    now_ms = int(time.time() * 1000)
    count = 2500
    rows = [(f"req_bulk{uid(8)}{i:05d}", now_ms - 60_000 - i * 500, org_id, project_id, key_id, f"user{i % 7}", "openai",
             "gpt-4o", "gpt-4o", 200 if i % 11 else 500, 5 + i % 3, 8, (5 * 2.5 + 8 * 10) / 1e6, 12.5 + i % 40, 0, i % 2)
            for i in range(count)]
    insert_audit_rows(st, rows)
    inserted = {r[0] for r in rows}

    with st.http(timeout=120) as http:
        for fmt in ("ndjson", "csv"):
            with http.stream("GET", "/api/v1/audit", params={"project": slug, "format": fmt}, headers=root.headers()) as response:
                assert response.status_code == 200
                streamed = (response.headers.get("transfer-encoding", "").lower() == "chunked"
                            or "content-length" not in response.headers)
                assert streamed, f"a {count}-row {fmt} export must be streamed, got headers {dict(response.headers)}"
                body = b"".join(response.iter_bytes()).decode()
            exported = parse_ndjson(body) if fmt == "ndjson" else parse_csv(body)[1]
            assert len(exported) == count, (fmt, len(exported))
            assert {r["request_id"] for r in exported} == inserted, fmt
    pages: list = []
    walked = root.audit_walk({"project": slug}, limit=1000, pages=pages)
    assert len(walked) == count and len(pages) >= 3
    assert [r["request_id"] for r in walked] == [r[0] for r in sorted(rows, key=lambda r: -r[1])]


# --------------------------------------------------------------------------------------------
# 6. Usage against the audit rows


GROUPINGS = ("model", "user", "key", "provider", "project", "day", "hour")


def _label(row: dict, grouping: str):
    if grouping == "model":
        return row.get("model_served") or row.get("model_requested")
    if grouping == "key":
        return row.get("key_id")
    return {"user": row.get("user"), "provider": row.get("provider"), "project": row.get("project")}.get(grouping)


def _assert_percentiles(group: dict, what: str, require_ttft: bool) -> None:
    for name, required in (("latency_ms", True), ("ttft_ms", require_ttft)):
        p = group[name]
        values = (p["p50"], p["p95"], p["p99"])
        if required:
            assert None not in values, f"{what}: {name} percentiles missing: {p}"
        if None not in values:
            assert 0 <= values[0] <= values[1] <= values[2], f"{what}: {name} percentiles out of order: {p}"


def test_usage_agrees_with_the_audit_rows_for_every_grouping(st, root, mine):
    slug = mine.project(f"us{uid(6)}")
    key = mine.key(slug)
    second = st.create_key("usage-second", slug)["secret"]
    started = utc_now()
    cached_body = f"cache me {uid()}"
    plan = [
        dict(key=key, user="alice"), dict(key=key, user="alice", model="claude-sonnet-4"), dict(key=second, user="bob"),
        dict(key=second, user="bob", model="gemini-2.0-flash", stream=True), dict(key=key, model="mistral-large"),
        dict(key=key, stream=True, user="carol"), dict(key=key, content=cached_body, headers={"X-Cache-TTL": "60"}),
        dict(key=key, content=cached_body, headers={"X-Cache-TTL": "60"}),
        dict(key=key, model="admunpriced-" + uid(), headers={"X-AI-Provider": "openai"}, user="alice"),
        dict(key=key, model="nosuch-model-" + uid()), dict(key=second, content=f"[sim openai:status=400] {uid()}", user="bob"),
    ]
    statuses = []
    for spec in plan:
        spec = dict(spec)
        statuses.append(chat(st, spec.pop("key"), **spec).status_code)
    assert statuses == [200] * 9 + [400, 400], statuses
    rows = root.wait_for_rows({"project": slug}, len(plan))
    assert len(rows) == len(plan)
    assert sum(1 for r in rows if r["cache_hit"]) == 1, "the second cached request is a hit"
    expected_total = usage_of_rows(rows)
    assert expected_total["unknown_cost_requests"] >= 1 and expected_total["errors"] == 2 and expected_total["cache_hits"] == 1
    any_ttft = any(r["ttft_ms"] is not None for r in rows)

    window = {"from": rfc3339(hour_floor(started)), "to": rfc3339(hour_floor(utc_now()) + timedelta(hours=1))}
    in_window = root.audit_walk({"project": slug, **window})
    assert {r["request_id"] for r in in_window} == {r["request_id"] for r in rows}
    for grouping in GROUPINGS:
        usage = root.ok("GET", "/usage", params={"project": slug, "group_by": grouping, **window})
        what = f"/usage?group_by={grouping}"
        assert usage["object"] == "usage" and usage["group_by"] == grouping and usage["from"] and usage["to"], usage
        groups = usage["data"]
        assert groups, what
        for group in groups:
            assert group["total_tokens"] == group["prompt_tokens"] + group["completion_tokens"], (what, group)
        assert_same_usage(usage["total"], sum_usage(groups), f"{what}: total vs sum of groups")
        assert_same_usage(usage["total"], expected_total, f"{what}: total vs the audit rows")
        expected_groups: dict = {}
        for row in rows:
            expected_groups.setdefault(_label(row, grouping), []).append(row)
        buckets = _bucket(rows, grouping) if grouping in ("day", "hour") else expected_groups
        expected_counts = sorted(len(v) for v in buckets.values())
        assert sorted(g["requests"] for g in groups) == expected_counts, (what, groups, expected_counts)
        by_label = {g["group"]: g for g in groups}
        if grouping not in ("day", "hour"):
            for label, members in expected_groups.items():
                if label is None:
                    continue
                assert label in by_label, f"{what}: no group {label!r} in {sorted(by_label)}"
                assert_same_usage(by_label[label], usage_of_rows(members), f"{what} group {label!r}")
                _assert_percentiles(by_label[label], f"{what} group {label!r}",
                                    require_ttft=any(m["ttft_ms"] is not None for m in members))
        for group in groups:
            _assert_percentiles(group, f"{what} group {group['group']!r}", require_ttft=False)
        _assert_percentiles(usage["total"], f"{what} total", require_ttft=any_ttft)

    # The CLI reads the same rollups (all time: only this test's rows are in the project).
    cli_rows = json.loads(st.cli("usage", "--project", slug, "--by", "model", "--json").stdout)
    names = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "unknown_cost_requests", "cache_hits", "errors")
    cli_total = {name: sum(r[name] for r in cli_rows) for name in names}
    cli_total["cost_usd"] = sum(r["cost_usd"] for r in cli_rows)
    assert_same_usage(cli_total, expected_total, "deploxa-gateway usage --by model vs the audit rows", names)
    assert sorted(r["requests"] for r in cli_rows) == sorted(
        g["requests"] for g in root.ok("GET", "/usage", params={"project": slug, "group_by": "model", **window})["data"])


def test_usage_default_range_includes_requests_just_made(st, root, mine):
    """No from/to: 'the last 30 days' must include the request made a moment ago."""
    slug = mine.project(f"ud{uid(6)}")
    _request(st, mine.key(slug), user="now")
    root.wait_for_rows({"project": slug}, 1)
    usage = root.ok("GET", "/usage", params={"project": slug, "group_by": "user"})
    assert usage["total"]["requests"] == 1, f"the default range misses the current hour: {usage}"


def _bucket(rows: list[dict], grouping: str) -> dict:
    buckets: dict = {}
    for row in rows:
        moment = datetime.fromisoformat(row["time"].replace("Z", "+00:00"))
        label = moment.strftime("%Y-%m-%d") if grouping == "day" else moment.strftime("%Y-%m-%dT%H")
        buckets.setdefault(label, []).append(row)
    return buckets

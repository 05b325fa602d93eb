"""The dashboard in a real headless browser (chromium + chromedriver), through real nginx.

Everything runs on a project of its own (a fresh org), and the browser logs in with an admin
token scoped to that project, so the overview shows exactly the traffic this module sent:
20 chat requests through nginx with the openai SDK, over two priced models and two users.
After every page load the browser console must hold no error (CSP violations land there), and
the page is saved to Tests/e2e/screenshots/<page>.png (the overview and the keys page also to
docs/screenshots/ with UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import uuid
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx
import openai
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from browser import Page, browser_factory  # noqa: F401 - browser_factory is a fixture
from gwstack import wait_until

SESSION_COOKIE = "deploxa_session"
CHAT = "/v1/chat/completions"
REFUSED_LOGIN = "/dashboard/login - Failed to load resource: the server responded with a status of 403"

# (model, user) -> how many chat requests the module sends before looking at the overview.
TRAFFIC = {("gpt-4o-mini", "alice"): 7, ("gpt-4o-mini", "bob"): 5, ("gpt-4o", "alice"): 3, ("gpt-4o", "bob"): 5}
PER_MODEL = {"gpt-4o-mini": 12, "gpt-4o": 8}


# --------------------------------------------------------------------------------------------
# The tenant, its traffic, the browser


@dataclass
class Tenant:
    stack: object
    org: str
    slug: str
    key: str
    token: str
    request_ids: list[str] = field(default_factory=list)

    @property
    def keys_path(self) -> str:
        return f"/dashboard/projects/{self.slug}/keys"

    @property
    def settings_path(self) -> str:
        return f"/dashboard/projects/{self.slug}/settings"

    def api(self, path: str, **params) -> httpx.Response:
        with self.stack.http() as http:
            return http.get("/api/v1" + path, params=params, headers={"Authorization": f"Bearer {self.token}"})

    def keys(self) -> list[dict]:
        response = self.api(f"/projects/{self.slug}/keys")
        assert response.status_code == 200, response.text
        return response.json()["data"]


@pytest.fixture(scope="module")
def tenant(stack) -> Tenant:
    org = "dash" + uuid.uuid4().hex[:8]
    slug = f"{org}/app"
    stack.cli("org", "create", org)
    stack.create_project(slug)
    key = stack.create_key("dashboard-traffic", slug)["secret"]
    # `admin-token create` prints the token once, on its own line.
    out = stack.cli("admin-token", "create", "--name", "selenium", "--project", slug).stdout
    tokens = [line.strip() for line in out.splitlines() if line.strip().startswith("dpa_")]
    assert len(tokens) == 1, out
    return Tenant(stack=stack, org=org, slug=slug, key=key, token=tokens[0])


@pytest.fixture(scope="module")
def traffic(tenant) -> Tenant:
    """The module's chat requests, sent through nginx; returns once usage counts all of them."""
    client = openai.OpenAI(base_url=tenant.stack.v1, api_key=tenant.key, max_retries=0, timeout=30)
    n = 0
    for (model, user), count in TRAFFIC.items():
        for _ in range(count):
            n += 1
            raw = client.chat.completions.with_raw_response.create(
                model=model, user=user, messages=[{"role": "user", "content": f"dashboard request {n} {uuid.uuid4().hex}"}])
            assert raw.http_response.status_code == 200
            raw.parse()
            tenant.request_ids.append(raw.headers["x-request-id"])
    assert len(set(tenant.request_ids)) == sum(TRAFFIC.values())

    def counted():
        body = tenant.api("/usage", group_by="model").json()
        return body if body["total"]["requests"] == sum(TRAFFIC.values()) else None
    wait_until(counted, timeout=30, interval=0.2, what="usage to count the module's requests")
    return tenant


@pytest.fixture(scope="module")
def page(browser_factory, stack) -> Page:  # noqa: F811
    return Page(browser_factory(), stack.base_url)


def login(page: Page, token: str, shot: str | None = None, allow: tuple[str, ...] = ()) -> None:
    """Submits the login form. A refused login (the browser logs its 403) is left to the
    caller's assertions, which show the page's error."""
    page.open("/dashboard/login")
    field_ = page.css("#login-token")
    field_.clear()
    field_.send_keys(token)
    page.click_and_wait(page.css("#login-submit"), shot=shot, allow=allow + (REFUSED_LOGIN,))


def logged_in(page: Page, tenant: Tenant) -> Page:
    """The browser with a live session of the tenant's token (logs in when it has none)."""
    if page.cookie(SESSION_COOKIE) is None:
        login(page, tenant.token)
    assert page.cookie(SESSION_COOKIE) is not None, f"login failed: on {page.path}: {shown_error(page)}"
    return page


def shown_error(page: Page) -> str:
    """The dashboard's error page or login error as text, for assertion messages."""
    for testid in ("error-page", "login-error"):
        found = page.testids(testid)
        if found:
            return " ".join(found[0].text.split())
    return "(no error shown)"


def http_with_session(stack, value: str) -> httpx.Client:
    return httpx.Client(base_url=stack.base_url, timeout=30, trust_env=False, cookies={SESSION_COOKIE: value})


def number(text: str) -> float:
    """A figure as the dashboard prints it ("1,234", "$0.0012", "—" = 0)."""
    cleaned = text.strip().replace(",", "").replace("$", "")
    if cleaned in ("", "—"):
        return 0
    return float(cleaned)


def table_rows(table) -> list[list[str]]:
    """Each body row of a table: its header cell and data cells as text."""
    rows = []
    for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
        rows.append([cell.get_attribute("textContent").strip() for cell in tr.find_elements(By.CSS_SELECTOR, "th, td")])
    return rows


def table_heads(table) -> list[str]:
    return [th.get_attribute("textContent").strip() for th in table.find_elements(By.CSS_SELECTOR, "thead th")]


def curl_chat(stack, secret: str) -> int:
    result = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30",
         "-H", f"Authorization: Bearer {secret}", "-H", "Content-Type: application/json",
         "-d", json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello from curl"}]}),
         stack.base_url + CHAT],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def key_row(page: Page, name: str):
    rows = [row for row in page.testids("key-row") if name in row.get_attribute("textContent")]
    assert len(rows) == 1, f"expected one key row named {name!r}, found {len(rows)}"
    return rows[0]


# --------------------------------------------------------------------------------------------
# 1. Login


def test_dashboard_login_accepts_a_same_origin_post_on_any_port(tenant, stack):
    """What a browser sends with the login form: `Origin` = scheme://host:port of the page. The
    gateway compares it with the Host it gets through nginx; nginx's stock fastcgi_params may pass
    `$host` (Debian: no port), so a dashboard on a non-default port must still accept it."""
    with stack.http() as http:
        form = http.get("/dashboard/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        response = http.post("/dashboard/login", data={"csrf": csrf, "token": tenant.token},
                             headers={"Origin": stack.base_url, "Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 303, (
        f"a same-origin login from {stack.base_url} was answered {response.status_code}: "
        + " ".join(re.sub(r"<[^>]+>", " ", response.text[response.text.find("<main"):]).split())[:200])
    assert response.headers["location"] == "/dashboard"


def test_dashboard_login_sets_a_strict_httponly_session(page, tenant, stack):
    page.driver.delete_all_cookies()
    page.open("/dashboard", shot="login")
    assert page.path == "/dashboard/login", f"GET /dashboard without a session should land on the login page, got {page.path}"

    # A wrong token: the error, and no session. (The 401 of that answer is logged by the browser.)
    wrong = "dpa_000000000000_" + "x" * 40
    login(page, wrong, shot="login-error", allow=("status of 401",))
    assert page.path == "/dashboard/login"
    errors = page.testids("login-error")
    assert errors, f"a wrong token should show the login error; the page shows: {shown_error(page)}"
    assert errors[0].is_displayed() and "not valid" in errors[0].text, errors[0].text
    assert page.cookie(SESSION_COOKIE) is None, "a wrong token must not get a session cookie"

    login(page, tenant.token)
    assert page.path == "/dashboard", f"after login the browser should be on the overview, got {page.path}: {shown_error(page)}"
    assert not page.testids("login-error")
    cookie = page.cookie(SESSION_COOKIE)
    assert cookie is not None, "no session cookie after login"
    assert cookie["httpOnly"] is True, cookie
    assert cookie["sameSite"] == "Strict", cookie
    assert cookie["path"] == "/", cookie
    document_cookie = page.driver.execute_script("return document.cookie")
    assert SESSION_COOKIE not in document_cookie and cookie["value"] not in document_cookie, document_cookie
    assert page.testid("token-name").text == "selenium"
    assert tenant.slug in page.testid("token-scope").text


# --------------------------------------------------------------------------------------------
# 2. Response headers and inline code


class InlineCodeScanner(HTMLParser):
    """Collects what a strict CSP forbids or what needs 'unsafe-inline': inline scripts, `on…=`
    handlers, `style=` attributes, <style> elements."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = {name.lower(): value for name, value in attrs}
        for name in names:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…>")
            if name == "style":
                self.problems.append(f"<{tag} style=…>")
        if tag == "script":
            if not names.get("src"):
                self.problems.append("inline <script>")
            self._in_script = True
        if tag == "style":
            self.problems.append("<style> element")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append("a <script src> with inline content")


def test_dashboard_security_headers_and_no_inline_code(page, traffic, stack):
    tenant = traffic
    logged_in(page, tenant)
    value = page.cookie(SESSION_COOKIE)["value"]
    paths = ["/dashboard", "/dashboard?range=7d&group=user", "/dashboard/requests", f"/dashboard/requests/{tenant.request_ids[0]}",
             tenant.keys_path, tenant.settings_path, "/dashboard/prices"]
    with http_with_session(stack, value) as http, stack.http() as anonymous:
        answers = [(path, http.get(path)) for path in paths] + [("/dashboard/login", anonymous.get("/dashboard/login"))]
        for path, response in answers:
            assert response.status_code == 200, f"{path}: {response.status_code}"
            assert response.headers["content-type"].startswith("text/html"), path
            csp = response.headers.get("content-security-policy", "")
            assert csp, f"{path}: no Content-Security-Policy"
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, f"{path}: {csp}"
            directives = {d.strip().split()[0]: d.strip().split()[1:] for d in csp.split(";") if d.strip()}
            assert directives.get("default-src") == ["'none'"], f"{path}: {csp}"
            assert directives.get("script-src") == ["'self'"], f"{path}: {csp}"
            assert directives.get("frame-ancestors") == ["'none'"], f"{path}: {csp}"
            assert response.headers.get("x-frame-options") == "DENY", f"{path}: {response.headers.get('x-frame-options')}"
            assert response.headers.get("x-content-type-options") == "nosniff", path
            assert "no-store" in response.headers.get("cache-control", ""), path
            scanner = InlineCodeScanner()
            scanner.feed(response.text)
            assert not scanner.problems, f"{path}: {sorted(set(scanner.problems))}"
            assert re.search(r"<script[^>]+src=\"/dashboard/assets/app\.js\"", response.text), path
        for asset, kind in (("/dashboard/assets/app.js", "javascript"), ("/dashboard/assets/app.css", "text/css")):
            response = anonymous.get(asset)
            assert response.status_code == 200 and kind in response.headers["content-type"], asset


# --------------------------------------------------------------------------------------------
# 3. Charts from real requests


def test_dashboard_overview_charts_show_the_requests_sent(page, traffic):
    tenant = traffic
    logged_in(page, tenant)
    page.open("/dashboard?range=24h&group=model", shot="overview")

    # The headline figures.
    assert number(page.css('[data-testid="card-requests"] .stat-value').text) == sum(TRAFFIC.values())

    # The spend chart: an SVG whose bars carry <title>s naming both models, and its table.
    spend = page.testid("chart-spend")
    svgs = spend.find_elements(By.CSS_SELECTOR, "svg")
    assert svgs, "the spend chart has no <svg>"
    titles = [t.get_attribute("textContent") for t in svgs[0].find_elements(By.CSS_SELECTOR, "title")]
    assert titles, "the spend chart's SVG has no <title> elements"
    for model in PER_MODEL:
        assert any(title.startswith(model + ",") for title in titles), f"no bar title for {model}: {titles}"
    spend_table = page.testid("chart-spend-table")
    heads = table_heads(spend_table)
    assert set(PER_MODEL) <= set(heads), heads
    spent = sum(number(row[heads.index("Total")]) for row in table_rows(spend_table))
    assert spent > 0, "both models are priced: the spend chart's table shows no spend"

    # The requests chart's table: per model, the requests sent.
    requests_table = page.testid("chart-requests-table")
    heads = table_heads(requests_table)
    rows = table_rows(requests_table)
    per_model = {model: sum(number(row[heads.index(model)]) for row in rows) for model in PER_MODEL}
    assert per_model == PER_MODEL, per_model

    # The usage table, and the same figures from the REST API.
    usage = {row[0]: int(number(row[1])) for row in table_rows(page.testid("usage-table"))}
    assert usage == PER_MODEL, usage
    api = tenant.api("/usage", group_by="model").json()
    assert {row["group"]: row["requests"] for row in api["data"]} == usage

    # Grouped by user: the two users.
    page.open("/dashboard?range=24h&group=user", shot="overview-by-user")
    by_user = {row[0]: int(number(row[1])) for row in table_rows(page.testid("usage-table"))}
    expected_users = Counter()
    for (_, user), count in TRAFFIC.items():
        expected_users[user] += count
    assert by_user == dict(expected_users), by_user


# --------------------------------------------------------------------------------------------
# 4. The request log


def request_ids_on(page: Page) -> list[str]:
    ids = []
    for link in page.all('[data-testid="request-row"] a[data-testid="request-link"]'):
        ids.append(urlsplit(link.get_attribute("href")).path.rsplit("/", 1)[1])
    return ids


def test_dashboard_requests_detail_filter_and_csv(page, traffic, stack):
    tenant = traffic
    logged_in(page, tenant)
    page.open("/dashboard/requests", shot="requests")
    rows = page.testids("request-row")
    assert rows, "no request rows"
    shown = request_ids_on(page)
    assert set(tenant.request_ids) <= set(shown), "the request log lacks requests sent through nginx"

    # A row's link opens its detail page.
    first = page.all('[data-testid="request-row"] a[data-testid="request-link"]')[0]
    request_id = shown[0]
    page.click_and_wait(first, shot="request-detail")
    assert page.path == f"/dashboard/requests/{request_id}", page.path
    assert page.testid("field-id").text == request_id
    assert request_id in page.css(".subtitle").text
    attempts = page.testid("attempts-table")
    attempt_rows = attempts.find_elements(By.CSS_SELECTOR, '[data-testid="attempt-row"]')
    assert len(attempt_rows) >= 1
    assert "openai" in attempt_rows[0].text

    # Filter by model with the form.
    page.open("/dashboard/requests")
    Select(page.css("#filter-model")).select_by_value("gpt-4o")
    page.click_and_wait(page.css('#filter-form button[type="submit"]'), shot="requests-filtered")
    assert parse_qs(urlsplit(page.path).query).get("model") == ["gpt-4o"], page.path
    heads = table_heads(page.testid("requests-table"))
    model_column = heads.index("Model")
    models = [row.find_elements(By.CSS_SELECTOR, "td")[model_column].get_attribute("textContent").strip()
              for row in page.testids("request-row")]
    assert models and set(models) == {"gpt-4o"}, models
    filtered_ids = request_ids_on(page)
    assert len(filtered_ids) == PER_MODEL["gpt-4o"], filtered_ids

    # The CSV export of that selection, fetched with the session cookie.
    href = page.css("#export-csv").get_attribute("href")
    assert parse_qs(urlsplit(href).query).get("model") == ["gpt-4o"], href
    assert parse_qs(urlsplit(href).query).get("format") == ["csv"], href
    with http_with_session(stack, page.cookie(SESSION_COOKIE)["value"]) as http:
        response = http.get(href)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("text/csv"), response.headers["content-type"]
    records = list(csv.DictReader(io.StringIO(response.text)))
    assert {r["request_id"] for r in records} == set(filtered_ids)
    assert {r["model_requested"] for r in records} == {"gpt-4o"}
    assert {r["project"] for r in records} == {tenant.slug}


# --------------------------------------------------------------------------------------------
# 5. API keys


def test_dashboard_keys_create_use_and_revoke(page, traffic, stack):
    tenant = traffic
    logged_in(page, tenant)
    page.open(tenant.keys_path, shot="keys-before")
    name = "selenium-" + uuid.uuid4().hex[:6]
    page.css("#create-name").send_keys(name)
    page.click_and_wait(page.css('#create-key-form button[type="submit"]'), shot="key-created")

    secret_input = page.css("#new-key-secret")
    secret = secret_input.get_attribute("value")
    assert secret.startswith("dpx_"), secret
    copy = page.css("#copy-secret")
    assert copy.text == "Copy" and copy.is_displayed(), "the Copy button is missing or still hidden with JavaScript on"
    assert name in page.testid("new-key-banner").text
    assert secret in page.testid("new-key-curl").text
    assert "?" not in page.path and secret not in page.driver.current_url

    assert curl_chat(stack, secret) == 200

    page.open(tenant.keys_path, shot="keys")
    assert secret not in page.source, "the secret is shown again after a reload"
    assert not page.all("#new-key-secret")
    row = key_row(page, name)
    assert "active" in row.text

    confirmed = page.click_and_wait(row.find_element(By.CSS_SELECTOR, '[data-testid="key-revoke-form"] button'),
                                    accept_confirm=True, shot="key-revoked")
    assert confirmed, "revoking a key with JavaScript on should ask for confirmation"
    assert "notice=key-revoked" in page.path, page.path
    assert "revoked" in page.testid("flash").text.lower()
    assert "revoked" in key_row(page, name).text
    assert curl_chat(stack, secret) == 401
    assert [k["status"] for k in tenant.keys() if k["name"] == name] == ["revoked"]


# --------------------------------------------------------------------------------------------
# 6. Settings


def test_dashboard_settings_limits_and_provider_key(page, traffic):
    tenant = traffic
    logged_in(page, tenant)
    page.open(tenant.settings_path, shot="settings")
    rpm = page.css("#settings-rpm")
    rpm.clear()
    rpm.send_keys("777")
    page.click_and_wait(page.css('#project-limits-form button[type="submit"]'))
    assert "notice=limits-saved" in page.path, page.path
    assert page.css("#settings-rpm").get_attribute("value") == "777"
    project = tenant.api(f"/projects/{tenant.slug}")
    assert project.status_code == 200 and project.json()["rpm"] == 777, project.text

    # A provider key (cohere: this module's traffic goes to openai) is shown as … + last 4.
    provider_key = "sk-selenium-" + uuid.uuid4().hex
    last4 = provider_key[-4:]
    page.css("#provider-key-cohere").send_keys(provider_key)
    form = page.css("#provider-key-cohere").find_element(By.XPATH, "./ancestor::form")
    page.click_and_wait(form.find_element(By.CSS_SELECTOR, 'button[type="submit"]'), shot="settings-provider-saved")
    assert "notice=provider-saved" in page.path, page.path
    assert provider_key not in page.source, "the provider key is in the page"
    rows = [row for row in page.testids("provider-row") if row.find_elements(By.CSS_SELECTOR, "td")[0].text == "cohere"]
    assert len(rows) == 1
    assert rows[0].find_elements(By.CSS_SELECTOR, "td")[1].text == "…" + last4
    providers = tenant.api(f"/projects/{tenant.slug}/providers").json()["data"]
    assert [p["api_key_last4"] for p in providers if p["provider"] == "cohere"] == [last4]


# --------------------------------------------------------------------------------------------
# 7. CSRF


def test_dashboard_forms_refuse_cross_site_posts(page, traffic, stack):
    tenant = traffic
    logged_in(page, tenant)
    page.open(tenant.keys_path)
    csrf = page.css('#create-key-form input[name="csrf"]').get_attribute("value")
    assert csrf
    before = {k["id"] for k in tenant.keys()}
    with http_with_session(stack, page.cookie(SESSION_COOKIE)["value"]) as http:
        def post(data: dict, headers: dict | None = None) -> httpx.Response:
            return http.post(tenant.keys_path, data=data, headers=headers or {})
        attempts = {
            "no csrf field": post({"name": "csrf-missing"}),
            "a wrong csrf": post({"name": "csrf-wrong", "csrf": "0" * len(csrf)}),
            "Origin of another site": post({"name": "csrf-origin", "csrf": csrf}, {"Origin": "http://evil.example"}),
            "Sec-Fetch-Site: cross-site": post({"name": "csrf-fetch-site", "csrf": csrf}, {"Sec-Fetch-Site": "cross-site"}),
        }
        for what, response in attempts.items():
            assert response.status_code == 403, f"{what}: {response.status_code}"
        assert {k["id"] for k in tenant.keys()} == before, "a refused form post created a key"

        # The same post from the dashboard's own origin, with its token, works: the refusals
        # above were the CSRF checks, not a bad cookie.
        control = post({"name": "csrf-control", "csrf": csrf}, {"Origin": stack.base_url, "Sec-Fetch-Site": "same-origin"})
        assert control.status_code == 200, control.text[:300]
        assert 'id="new-key-secret"' in control.text
    after = tenant.keys()
    assert [k["name"] for k in after if k["id"] not in before] == ["csrf-control"]


# --------------------------------------------------------------------------------------------
# 8. Logout


def test_dashboard_logout_ends_the_session(page, traffic, stack):
    tenant = traffic
    logged_in(page, tenant)
    page.open("/dashboard")
    old = page.cookie(SESSION_COOKIE)["value"]
    with http_with_session(stack, old) as http:
        assert http.get("/dashboard").status_code == 200, "the session cookie does not work outside the browser"
    page.click_and_wait(page.css('#logout-form button[type="submit"]'), shot="logged-out")
    assert page.path == "/dashboard/login", page.path
    assert page.cookie(SESSION_COOKIE) is None
    with http_with_session(stack, old) as http:
        response = http.get("/dashboard")
        assert response.status_code in (302, 303), response.status_code
        assert response.headers["location"].endswith("/dashboard/login"), response.headers.get("location")
        api = http.get("/api/v1/audit", params={"format": "csv"})
        assert api.status_code == 401, f"the old session still reads the audit log: {api.status_code}"
    page.open("/dashboard")
    assert page.path == "/dashboard/login"


# --------------------------------------------------------------------------------------------
# 9. JavaScript off


def test_dashboard_works_without_javascript(browser_factory, traffic, stack):  # noqa: F811
    tenant = traffic
    page = Page(browser_factory(javascript=False), stack.base_url)
    login(page, tenant.token)
    assert page.path == "/dashboard", f"{page.path}: {shown_error(page)}"
    page.open(tenant.keys_path)
    name = "nojs-" + uuid.uuid4().hex[:6]
    page.css("#create-name").send_keys(name)
    page.click_and_wait(page.css('#create-key-form button[type="submit"]'), shot="nojs-key-created")
    secret = page.css("#new-key-secret").get_attribute("value")
    assert secret.startswith("dpx_"), secret
    # app.js removes the Copy button's `hidden` attribute: still there = JavaScript is off.
    copy = page.css("#copy-secret")
    assert copy.get_attribute("hidden") is not None, "JavaScript seems to be on: app.js unhid the Copy button"
    copy_shown = copy.is_displayed()

    page.open(tenant.keys_path)
    confirmed = page.click_and_wait(key_row(page, name).find_element(By.CSS_SELECTOR, '[data-testid="key-revoke-form"] button'),
                                    accept_confirm=True, shot="nojs-key-revoked")
    assert not confirmed, "a confirm dialog appeared with JavaScript off"
    assert "notice=key-revoked" in page.path, page.path
    assert "revoked" in key_row(page, name).text
    assert [k["status"] for k in tenant.keys() if k["name"] == name] == ["revoked"]
    assert curl_chat(stack, secret) == 401
    # Without the script the Copy button cannot work, so it must not be shown: its `hidden`
    # attribute has to win over the stylesheet's `.btn { display: … }`.
    assert not copy_shown, "with JavaScript off the (non-working) Copy button is visible: CSS overrides its hidden attribute"


# --------------------------------------------------------------------------------------------
# 10. Phone width


def test_dashboard_overview_fits_a_phone(browser_factory, traffic, stack):  # noqa: F811
    tenant = traffic
    page = Page(browser_factory(width=390, height=844), stack.base_url)
    page.driver.set_window_size(390, 844)
    login(page, tenant.token)
    assert page.path == "/dashboard", f"{page.path}: {shown_error(page)}"
    # Pictures of the other pages at this width, for a look (not asserted).
    for path, shot in (("/dashboard/requests", "requests-phone"), (tenant.keys_path, "keys-phone"),
                       (tenant.settings_path, "settings-phone")):
        page.open(path, shot=shot)
    page.open("/dashboard?range=24h&group=model", shot="overview-phone")
    assert page.testid("chart-spend").find_elements(By.CSS_SELECTOR, "svg")
    scroll_width, inner_width = page.no_horizontal_scroll()
    assert inner_width <= 420, f"the window is not phone-sized: innerWidth {inner_width}"
    assert scroll_width <= inner_width + 1, (
        f"the overview scrolls sideways on a phone: scrollWidth {scroll_width} > innerWidth {inner_width}; "
        f"widest elements: {page.overflowing()}")


# --------------------------------------------------------------------------------------------
# 11. Every page: no console errors, a screenshot


def test_dashboard_every_page_has_a_clean_console(browser_factory, traffic, stack):  # noqa: F811
    """A fresh browser that counts everything, the favicon's 404 included, on every page."""
    tenant = traffic
    page = Page(browser_factory(), stack.base_url)
    page.strict_favicon = True
    page.driver.get(page.url("/dashboard/login"))
    WebDriverWait(page.driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
    errors: dict[str, list[str]] = {"/dashboard/login": page.console_errors()}
    login(page, tenant.token, allow=("",))  # the login page's own errors are counted above
    assert page.cookie(SESSION_COOKIE) is not None, f"login failed: on {page.path}: {shown_error(page)}"
    page.console()
    # (The other tests picture the overview, requests, detail, keys and settings pages.)
    pages = [("/dashboard?range=24h&group=model", None), ("/dashboard?range=30d&group=user", "overview-30d"),
             ("/dashboard/requests", None), (f"/dashboard/requests/{tenant.request_ids[-1]}", None),
             (tenant.keys_path, None), (tenant.settings_path, None), ("/dashboard/prices", "prices")]
    for path, shot in pages:
        page.driver.get(page.url(path))
        WebDriverWait(page.driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
        if shot:
            page.screenshot(shot)
        assert page.path == path, f"{path} ended on {page.path}"
        assert page.css("h1").text, path
        errors[path] = page.console_errors()
    # An unknown page: the error page; the browser notes its 404, and nothing else.
    page.driver.get(page.url("/dashboard/no-such-page"))
    WebDriverWait(page.driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
    page.screenshot("not-found")
    assert page.testid("error-page").is_displayed()
    errors["/dashboard/no-such-page"] = page.console_errors(allow=("/dashboard/no-such-page - Failed to load resource: the server responded with a status of 404",))
    errors = {path: found for path, found in errors.items() if found}
    assert not errors, "console errors: " + json.dumps(errors, indent=1)

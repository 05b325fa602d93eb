"""A real headless browser for the dashboard's tests: Debian's chromium driven by its chromedriver.

`make_driver()` starts one (no Selenium Manager: `SE_OFFLINE=true`, the driver at
/usr/bin/chromedriver, the browser at /usr/bin/chromium), with its console log readable through
`driver.get_log("browser")`. `Page` wraps a driver with what every test does after loading a page:
check the console for errors (CSP violations are reported there too) and save a screenshot.
Every driver made here is quit at the end of the test module that made it (`browser_factory`),
and, should that fail, at interpreter exit.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager download anything

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException, WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
HERE = Path(__file__).resolve().parent
SCREENSHOTS = HERE / "screenshots"
DOCS_SCREENSHOTS = HERE.parents[1] / "docs" / "screenshots"
# Only these pages are committed (for the README), and only when asked to.
DOCS_PAGES = ("overview", "keys")

# Every page load makes the browser fetch /favicon.ico unless the page names an icon; a 404 there
# is a console error. Reported apart (see test_dashboard_every_page_has_a_clean_console).
FAVICON_404 = "/favicon.ico - Failed to load resource"

_DRIVERS: list = []
_DRIVERS_LOCK = threading.Lock()


@atexit.register
def _quit_leftovers() -> None:
    with _DRIVERS_LOCK:
        leftovers = list(_DRIVERS)
        _DRIVERS.clear()
    for driver in leftovers:
        try:
            driver.quit()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def make_driver(javascript: bool = True, width: int = 1280, height: int = 900) -> webdriver.Chrome:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: apt-get install chromium chromium-driver (Tests/e2e/run.sh does it)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                     "--no-proxy-server", "--no-first-run", "--disable-extensions", "--disable-background-networking",
                     "--disable-sync", "--disable-component-update", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    service = Service(CHROMEDRIVER, log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(10)
    with _DRIVERS_LOCK:
        _DRIVERS.append(driver)
    return driver


def quit_driver(driver) -> None:
    try:
        driver.quit()
    finally:
        with _DRIVERS_LOCK:
            if driver in _DRIVERS:
                _DRIVERS.remove(driver)


@pytest.fixture(scope="module")
def browser_factory():
    """Makes drivers (`make(javascript=False)`); all of them are quit when the module ends."""
    made = []

    def make(**kwargs) -> webdriver.Chrome:
        driver = make_driver(**kwargs)
        made.append(driver)
        return driver
    yield make
    for driver in made:
        quit_driver(driver)


class Page:
    """A driver plus the checks made after every page load."""

    def __init__(self, driver: webdriver.Chrome, base_url: str):
        self.driver = driver
        self.base_url = base_url.rstrip("/")
        self.visited: list[str] = []
        self.strict_favicon = False
        self.favicon_errors: list[str] = []

    # -- navigation ---------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + path

    def open(self, path: str, shot: str | None = None, allow: tuple[str, ...] = ()) -> "Page":
        """Loads `path`, waits for it, checks the console; saves a screenshot named `shot`."""
        self.driver.get(self.url(path))
        self.loaded(shot, allow=allow)
        return self

    def loaded(self, shot: str | None = None, allow: tuple[str, ...] = ()) -> "Page":
        """After a navigation (a click, a submit): waits for the document, checks the console."""
        WebDriverWait(self.driver, 20).until(lambda d: d.execute_script("return document.readyState") == "complete")
        self.visited.append(self.path)
        if shot:  # before the console check, so a failing page is still pictured
            self.screenshot(shot)
        self.assert_no_console_errors(allow=allow)
        return self

    @property
    def path(self) -> str:
        parts = urlsplit(self.driver.current_url)
        return parts.path + (("?" + parts.query) if parts.query else "")

    @property
    def source(self) -> str:
        return self.driver.page_source

    # -- elements -----------------------------------------------------------------------------

    def css(self, selector: str):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list:
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def testid(self, name: str):
        return self.css(f'[data-testid="{name}"]')

    def testids(self, name: str) -> list:
        return self.all(f'[data-testid="{name}"]')

    def click_and_wait(self, element, shot: str | None = None, accept_confirm: bool = False, allow: tuple[str, ...] = ()) -> bool:
        """Clicks something that navigates; returns whether a confirm dialog appeared (accepted)."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        confirmed = False
        if accept_confirm:
            try:
                WebDriverWait(self.driver, 3).until(lambda d: d.switch_to.alert)
                self.driver.switch_to.alert.accept()
                confirmed = True
            except Exception:  # noqa: BLE001 - no dialog (JavaScript off)
                confirmed = False
        WebDriverWait(self.driver, 20).until(lambda d: _stale(old))
        self.loaded(shot, allow=allow)
        return confirmed

    def alert_present(self) -> bool:
        try:
            self.driver.switch_to.alert
            return True
        except NoAlertPresentException:
            return False

    # -- checks -------------------------------------------------------------------------------

    def console(self) -> list[dict]:
        return self.driver.get_log("browser")

    def console_errors(self, allow: tuple[str, ...] = ()) -> list[str]:
        """The SEVERE console messages since the last look (CSP violations are SEVERE), but
        those containing one of `allow` (e.g. an expected 401) and, unless `strict_favicon`,
        the missing favicon's 404 (kept in `favicon_errors`; one test asserts on it)."""
        errors = []
        for entry in self.console():
            message = entry.get("message", "")
            if entry.get("level") != "SEVERE" or any(text in message for text in allow):
                continue
            if FAVICON_404 in message and not self.strict_favicon:
                self.favicon_errors.append(f"{self.path}: {message}")
                continue
            errors.append(message)
        return errors

    def assert_no_console_errors(self, allow: tuple[str, ...] = ()) -> None:
        errors = self.console_errors(allow=allow)
        assert not errors, f"console errors on {self.path}: " + "; ".join(errors)

    def no_horizontal_scroll(self) -> tuple[int, int]:
        return tuple(self.driver.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"))

    def overflowing(self, limit: int = 6) -> list[str]:
        """The outermost elements that reach past the window's right edge, widest first."""
        return self.driver.execute_script("""
            const out = [], w = window.innerWidth;
            for (const el of document.body.querySelectorAll('*')) {
              const r = el.getBoundingClientRect();
              if (r.right <= w + 1 || !r.width) continue;
              const p = el.parentElement;
              if (p && p !== document.body && p.getBoundingClientRect().right > w + 1) continue;
              const id = el.id ? '#' + el.id : '', cls = el.classList.length ? '.' + [...el.classList].join('.') : '';
              const t = el.getAttribute('data-testid');
              out.push([r.width, el.tagName.toLowerCase() + id + cls + (t ? '[' + t + ']' : '') + ' ' + Math.round(r.width) + 'px wide, right edge ' + Math.round(r.right)]);
            }
            return out.sort((a, b) => b[0] - a[0]).slice(0, arguments[0]).map(x => x[1]);
        """, limit)

    # -- screenshots --------------------------------------------------------------------------

    def screenshot(self, name: str) -> Path:
        """The whole page (not only the viewport) as Tests/e2e/screenshots/NAME.png; with
        UPDATE_SCREENSHOTS=1, the README's pages also to docs/screenshots/."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOTS / f"{name}.png"
        try:
            width, height = self.driver.execute_script(
                "return [Math.max(document.documentElement.clientWidth, document.documentElement.scrollWidth),"
                " Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)]")
            shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 6000), "scale": 1}})
            target.write_bytes(base64.b64decode(shot["data"]))
        except (WebDriverException, TypeError, ValueError):
            # JavaScript off: execute_script still works (it is WebDriver's, not the page's);
            # whatever else fails, fall back to the viewport.
            self.driver.save_screenshot(str(target))
        if os.environ.get("UPDATE_SCREENSHOTS") == "1" and name in DOCS_PAGES:
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target, DOCS_SCREENSHOTS / f"{name}.png")
        return target

    # -- cookies ------------------------------------------------------------------------------

    def cookie(self, name: str) -> dict | None:
        return next((c for c in self.driver.get_cookies() if c["name"] == name), None)


def _stale(element) -> bool:
    try:
        element.is_enabled()
        return False
    except WebDriverException:
        return True

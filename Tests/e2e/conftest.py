"""Session fixtures of the end-to-end suite: one simulator, one gateway stack behind nginx.

The stack: a temp dir; the provider simulator on a free loopback port; a fresh database
(migrate, org acme, project acme/web, provider openai pointed at the simulator, one gateway
key); `deploxa-gateway serve --workers 4 --upstream-timeout 2`; nginx rendered from
nginx/nginx.local.conf.template. Everything is stopped at the end of the session (and by an
atexit hook if the session dies); on failure the tails of the logs are printed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import openai
import pytest

import gwstack
from gwstack import GatewayStack, Simulator


def pytest_configure(config):
    binary = Path(gwstack.gateway_bin())
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise pytest.UsageError(
            f"deploxa-gateway binary not found at {binary}; build it first (cd {gwstack.REPO} && swift build) "
            "or set DEPLOXA_GATEWAY_BIN.")
    if not shutil.which(gwstack.nginx_bin()):
        raise pytest.UsageError("nginx is not installed (apt-get install nginx).")


@pytest.fixture(scope="session")
def simulator():
    sim = Simulator(gwstack.make_temp_dir("sim"))
    try:
        sim.start()
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="session")
def stack(simulator):
    # The main stack's tests script provider failures on purpose (e.g. `[sim status=429 retry_after=7]`),
    # so its circuit breaker is off; the breaker and Retry-After skipping are tested on
    # test_fallback's own stack.
    st = GatewayStack(simulator, name="main", workers=4,
                      serve_args=["--upstream-timeout", "2", "--graceful-timeout", "10", "--breaker-failures", "0"])
    try:
        st.start()
        yield st
    finally:
        st.stop()


@pytest.fixture(scope="session")
def base_url(stack) -> str:
    return stack.base_url


@pytest.fixture(scope="session")
def key(stack) -> str:
    return stack.key


@pytest.fixture(scope="session")
def client(stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.v1, api_key=stack.key, max_retries=0, timeout=30)


@pytest.fixture(scope="session")
def cli(stack):
    return stack.cli


@pytest.fixture(scope="session")
def audit_rows(stack):
    return stack.audit_rows


@pytest.fixture(scope="session")
def wait_for_audit(stack):
    return stack.wait_for_audit


@pytest.fixture
def worker_pids(stack):
    return stack.worker_pids


@pytest.fixture
def http(stack):
    with stack.http() as client:
        yield client


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Runs after the session fixtures are torn down: every process is stopped by now."""
    for line in gwstack.SUMMARY:
        terminalreporter.write_line(line)
    if exitstatus == 0:
        for path in gwstack.TEMP_DIRS:
            shutil.rmtree(path, ignore_errors=True)
        return
    terminalreporter.section("end-to-end logs (tails)")
    for label, path in gwstack.LOG_FILES:
        terminalreporter.write_line(f"----- {label}: {path}")
        terminalreporter.write_line(gwstack.tail(path, 40))
    terminalreporter.write_line("Temp dirs kept for inspection: " + " ".join(str(p) for p in gwstack.TEMP_DIRS))


@pytest.fixture(scope="session")
def client_for():
    """An official OpenAI client for any stack and gateway key."""
    def make(stack, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=stack.v1, api_key=key, max_retries=0, timeout=30)
    return make

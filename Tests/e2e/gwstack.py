"""Process management for the end-to-end suite.

Starts the project's provider simulator, a gateway (`deploxa-gateway serve`, a master with
worker processes) on its own database and unix socket, and nginx in front of it, all on
127.0.0.1. Every process started here is registered so that it is stopped at the end of the
test that owns it, and, should that fail, at interpreter exit (atexit). Every wait is bounded.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

import httpx

REPO = Path(__file__).resolve().parents[2]
NGINX_TEMPLATE = REPO / "nginx" / "nginx.local.conf.template"

# Loopback only, whatever the environment says about proxies.
for _name in ("NO_PROXY", "no_proxy"):
    os.environ[_name] = "127.0.0.1,localhost"


def gateway_bin() -> str:
    return os.environ.get("DEPLOXA_GATEWAY_BIN") or str(REPO / ".build" / "debug" / "deploxa-gateway")


def nginx_bin() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Bookkeeping shared with conftest: live components (for atexit), log files and temp dirs (for
# the failure summary).

_LIVE: list = []
_LIVE_LOCK = threading.Lock()
LOG_FILES: list[tuple[str, Path]] = []
TEMP_DIRS: list[Path] = []
# Lines for the end of the run's report (e.g. the audit completeness counts).
SUMMARY: list[str] = []


def _register(component) -> None:
    with _LIVE_LOCK:
        _LIVE.append(component)


def _unregister(component) -> None:
    with _LIVE_LOCK:
        if component in _LIVE:
            _LIVE.remove(component)


@atexit.register
def _kill_leftovers() -> None:
    with _LIVE_LOCK:
        leftovers = list(reversed(_LIVE))
        _LIVE.clear()
    for component in leftovers:
        try:
            component.kill_now()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def make_temp_dir(name: str) -> Path:
    # Short paths: a unix socket path must stay under 108 bytes.
    path = Path(tempfile.mkdtemp(prefix=f"dpx-e2e-{name}-", dir="/tmp"))
    # nginx's workers run as an unprivileged user when nginx starts as root: they must be
    # able to reach the socket inside.
    path.chmod(0o755)
    TEMP_DIRS.append(path)
    return path


# --------------------------------------------------------------------------------------------
# Small utilities


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_nginx_process(proc: "subprocess.Popen | None") -> None:
    """Stops an nginx master started in the foreground, and its workers with it."""
    if proc is None or proc.poll() is not None:
        return
    workers = children_of(proc.pid)
    proc.terminate()  # nginx's fast shutdown: the master stops its workers
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    for pid in workers:  # a worker outlives a SIGKILLed master
        if pid_alive(pid):
            signal_pid(pid, signal.SIGKILL)


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.05, what: str = "condition"):
    """Polls `predicate` until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - keep polling, report the last one
            last_error = error
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}{detail}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def children_of(parent: int) -> set[int]:
    """Live (non-zombie) processes whose parent is `parent`, from /proc/*/stat."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        # fields[0] is the state, fields[1] the ppid.
        if len(fields) > 1 and int(fields[1]) == parent and fields[0] not in ("Z", "X"):
            found.add(int(entry))
    return found


def signal_pid(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def tail(path: Path, lines: int = 60) -> str:
    try:
        data = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(missing)"
    return "\n".join(data[-lines:])


# --------------------------------------------------------------------------------------------
# The provider simulator


class Simulator:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.log_path = workdir / "simulator.log"
        LOG_FILES.append(("simulator", self.log_path))
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/openai"

    def start(self) -> "Simulator":
        for _ in range(3):  # a free port can be taken between probing and binding
            self.port = free_port()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [gateway_bin(), "simulate", "--listen", f"127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            _register(self)
            try:
                wait_until(lambda: self.proc.poll() is not None or "simulator listening on" in self.log_path.read_text(),
                           timeout=20, what="the simulator to listen")
                if self.proc.poll() is None:
                    wait_until(lambda: self.stats() is not None, timeout=10, what="GET /_sim/stats")
                    return self
            except TimeoutError:
                pass
            self.stop()
        raise RuntimeError(f"the simulator did not start; log:\n{tail(self.log_path)}")

    def _get(self, path: str):
        response = httpx.get(self.url + path, timeout=5, trust_env=False)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict:
        return self._get("/_sim/stats")

    def last(self) -> dict:
        return self._get("/_sim/last")

    def counts(self) -> dict[str, int]:
        """Provider requests seen so far, per request path (e.g. `/openai/v1/chat/completions`)."""
        return dict(self.stats()["by_path"])

    def count(self, path: str) -> int:
        """Provider requests seen so far on one path."""
        return self.counts().get(path, 0)

    def reset(self) -> dict:
        response = httpx.post(self.url + "/_sim/reset", timeout=5, trust_env=False)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        _unregister(self)

    def kill_now(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()


# --------------------------------------------------------------------------------------------
# A gateway: database, `serve` master + workers, nginx in front


class CommandError(AssertionError):
    pass


class GatewayStack:
    """One gateway deployment: its own database, socket, serve master and nginx."""

    ORG = "acme"
    PROJECT = "acme/web"

    PROVIDERS = ("openai", "anthropic", "google", "mistral", "cohere")

    def __init__(self, simulator: Simulator, name: str = "main", workers: int = 4, serve_args: Iterable[str] = (),
                 settings: dict[str, str] | None = None, before_serve: Callable[["GatewayStack"], None] | None = None,
                 nginx_conf_filter: Callable[[str], str] | None = None, postgres=None, database: str | None = None):
        """`postgres`: a pgcluster.PostgresCluster to keep the state in (a database of its own,
        `database` or a fresh name) instead of an SQLite file; with DEPLOXA_E2E_BACKEND=postgres
        every stack does so, on one cluster for the session."""
        self.simulator = simulator
        if postgres is None and backend() == "postgres":
            postgres = shared_postgres()
        self.postgres = postgres
        self.pg_database = database or f"gw_{name.replace('-', '_')}_{os.urandom(4).hex()}"
        self.nginx_conf_filter = nginx_conf_filter
        self.settings = dict(settings or {})
        self.before_serve = before_serve
        self.name = name
        self.workers = workers
        self.serve_args = list(serve_args)
        self.dir = make_temp_dir(name)
        self.db = self.dir / "gw.db"
        self.socket = self.dir / "gw.sock"
        self.pid_file = self.dir / "gw.pid"
        self.gateway_log = self.dir / "gateway.log"
        self.prefix = self.dir / "nginx"
        (self.prefix / "logs").mkdir(parents=True)
        (self.prefix / "tmp").mkdir(parents=True)
        self.nginx_conf = self.prefix / "nginx.conf"
        self.access_log = self.prefix / "logs" / "nginx-access.log"
        self.nginx_error_log = self.prefix / "logs" / "nginx-error.log"
        LOG_FILES.extend([(f"{name} gateway", self.gateway_log), (f"{name} nginx error", self.nginx_error_log)])
        self.port = 0
        self.provider_key = "sk-e2e-provider-" + os.urandom(12).hex()
        self.key = ""
        self.key_id = ""
        self.master: subprocess.Popen | None = None
        self.nginx: subprocess.Popen | None = None
        self._known_workers: set[int] = set()

    # -- URLs ---------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def v1(self) -> str:
        return self.base_url + "/v1"

    # -- CLI ----------------------------------------------------------------------------------

    def cli(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [gateway_bin(), "--db", self.db_arg, *args],
            input=input if input is not None else "", capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise CommandError(f"deploxa-gateway {' '.join(args)} exited {result.returncode}:\n"
                               f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def _journal_args(self) -> list[str]:
        """On Postgres the journal's default folder is in the working directory: keep it in the
        stack's own temp dir instead (an SQLite stack's sits beside its file already)."""
        if self.postgres is None or "--audit-journal" in self.serve_args:
            return []
        return ["--audit-journal", str(self.dir / "audit-journal")]

    @property
    def db_arg(self) -> str:
        """What --db gets: the SQLite file (tests may move it before start), or this stack's
        database in the Postgres cluster."""
        return str(self.db) if self.postgres is None else pg_database_url(self.postgres, self.pg_database)

    def write_settings(self, settings: dict[str, str]) -> None:
        """Rows of the `settings` table, on either backend."""
        if self.postgres is None:
            with sqlite3.connect(self.db) as db:
                db.executemany("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", list(settings.items()))
            return
        for key, value in settings.items():
            self.postgres.psql(f"INSERT INTO settings (key, value) VALUES ({sql_literal(key)}, {sql_literal(value)}) "
                               "ON CONFLICT (key) DO UPDATE SET value = excluded.value", db=self.pg_database)

    def sql(self, statement: str) -> str:
        """One statement against this stack's database (sqlite3 or psql), rows as psql -At prints them."""
        if self.postgres is not None:
            return self.postgres.psql(statement, db=self.pg_database)
        with sqlite3.connect(self.db, timeout=30) as db:
            rows = db.execute(statement).fetchall()
        return "\n".join("|".join("" if v is None else str(v) for v in row) for row in rows)

    @contextlib.contextmanager
    def write_lock_held(self):
        """Holds what an admission needs to write, until the block ends: SQLite's write lock
        (BEGIN IMMEDIATE), or on Postgres an exclusive lock on the scope rows' table."""
        if self.postgres is None:
            db = sqlite3.connect(self.db, timeout=10, isolation_level=None)
            db.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                db.execute("ROLLBACK")
                db.close()
            return
        from pgcluster import PG_BIN
        psql = subprocess.Popen([str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", self.db_arg],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            psql.stdin.write("BEGIN;\nLOCK TABLE limit_scopes IN ACCESS EXCLUSIVE MODE;\n\\echo locked\n")
            psql.stdin.flush()
            line = psql.stdout.readline()
            assert line.strip() == "locked", f"psql could not take the lock: {line!r}"
            yield
        finally:
            try:
                psql.stdin.write("ROLLBACK;\n")
                psql.stdin.close()
                psql.wait(timeout=10)
            except Exception:
                psql.kill()

    def configure_providers(self, project: str) -> None:
        """Every provider of the project points at its simulated API."""
        for provider in self.PROVIDERS:
            self.cli("provider", "set", project, provider, "--base-url", f"{self.simulator.url}/{provider}",
                     input=self.provider_key + "\n")

    def create_project(self, slug: str, *options: str) -> int:
        """A further project with every provider configured; returns its id."""
        created = json.loads(self.cli("project", "create", slug, *options, "--json").stdout)
        self.configure_providers(slug)
        return created["id"]

    def create_key(self, name: str, project: str | None = None, *options: str) -> dict:
        created = json.loads(self.cli("key", "create", project or self.PROJECT, "--name", name, *options, "--json").stdout)
        assert created["id"].startswith("gk_") and created["secret"].startswith("dpx_"), created
        return created

    def audit_rows(self, project: str | None = None) -> list[dict]:
        args = ["audit", "export", "--format", "ndjson"]
        if project:
            args += ["--project", project]
        out = self.cli(*args).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def wait_for_audit(self, request_id: str, timeout: float = 10) -> dict:
        def find():
            for row in self.audit_rows():
                if row["request_id"] == request_id:
                    return row
            return None
        return wait_until(find, timeout=timeout, interval=0.05, what=f"the audit row of {request_id}")

    # -- processes ----------------------------------------------------------------------------

    @property
    def master_pid(self) -> int:
        assert self.master is not None
        return self.master.pid

    def worker_pids(self) -> set[int]:
        pids = children_of(self.master_pid)
        self._known_workers |= pids
        return pids

    def wait_for_workers(self, count: int | None = None, timeout: float = 10, excluding: set[int] = frozenset()) -> set[int]:
        count = self.workers if count is None else count

        def ready():
            pids = self.worker_pids()
            return pids if len(pids) == count and not (pids & set(excluding)) else None
        return wait_until(ready, timeout=timeout, what=f"{count} worker processes of {self.name}")

    def start(self) -> "GatewayStack":
        _register(self)
        if self.postgres is not None:
            self.postgres.psql(f'CREATE DATABASE "{self.pg_database}"', db="postgres")
        self.cli("migrate")
        self.cli("org", "create", self.ORG)
        self.cli("project", "create", self.PROJECT)
        self.configure_providers(self.PROJECT)
        created = self.create_key(f"e2e-{self.name}")
        self.key, self.key_id = created["secret"], created["id"]
        if self.settings:
            self.write_settings(self.settings)
        if self.before_serve:
            self.before_serve(self)
        self.start_gateway()
        self.start_nginx()
        wait_until(self._healthy, timeout=20, what=f"GET /healthz through nginx ({self.name})")
        return self

    def start_gateway(self) -> None:
        env = dict(os.environ)
        # A crashing worker would otherwise spend ~10 s in Swift's backtracer; crashes are
        # still seen (log lines, exit status), just quickly. DEPLOXA_E2E_BACKTRACE=1 keeps it.
        if os.environ.get("DEPLOXA_E2E_BACKTRACE") != "1":
            env["SWIFT_BACKTRACE"] = "enable=no"
        log = open(self.gateway_log, "ab")
        self.master = subprocess.Popen(
            [gateway_bin(), "serve", "--db", self.db_arg, "--socket", str(self.socket), "--socket-mode", "0666",
             "--workers", str(self.workers), "--pid-file", str(self.pid_file), *self._journal_args(), *self.serve_args],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        wait_until(lambda: self.master.poll() is not None or (self.socket.exists() and self.pid_file.exists()),
                   timeout=20, what="the gateway's socket and pid file")
        if self.master.poll() is not None:
            raise RuntimeError(f"serve exited with {self.master.returncode}:\n{tail(self.gateway_log)}")
        assert int(self.pid_file.read_text().strip()) == self.master.pid
        self.wait_for_workers()

    def render_nginx_conf(self, port: int) -> Path:
        """Writes nginx's config for `port` (from nginx/nginx.local.conf.template) and returns its path."""
        conf = (NGINX_TEMPLATE.read_text().replace("@PREFIX@", str(self.prefix)).replace("@SOCKET@", str(self.socket))
                .replace("@LISTEN@", f"127.0.0.1:{port}"))
        if self.nginx_conf_filter:
            conf = self.nginx_conf_filter(conf)
        self.nginx_conf.write_text(conf)
        return self.nginx_conf

    def start_nginx(self) -> None:
        for _ in range(3):
            self.port = free_port()
            self.nginx_conf = self.render_nginx_conf(self.port)
            log = open(self.prefix / "logs" / "nginx-stdout.log", "ab")
            # In the foreground, so it is our child and can always be stopped.
            self.nginx = subprocess.Popen(
                [nginx_bin(), "-p", str(self.prefix), "-c", str(self.nginx_conf),
                 "-e", str(self.prefix / "logs" / "nginx-startup.log"), "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            try:
                wait_until(lambda: self.nginx.poll() is not None or self._port_open(), timeout=10, what="nginx to listen")
            except TimeoutError:
                pass
            if self.nginx.poll() is None and self._port_open():
                return
            self._kill_nginx()
        raise RuntimeError(f"nginx did not start:\n{tail(self.prefix / 'logs' / 'nginx-startup.log')}\n{tail(self.nginx_error_log)}")

    def _port_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _healthy(self) -> bool:
        return httpx.get(self.base_url + "/healthz", timeout=5, trust_env=False).status_code == 200

    def stop_gateway(self, timeout: float = 30) -> int | None:
        """SIGQUIT to the master; waits for it; kills whatever is left after `timeout`."""
        if self.master is None:
            return None
        workers = set(self._known_workers)
        if self.master.poll() is None:
            workers |= self.worker_pids()
            signal_pid(self.master.pid, signal.SIGQUIT)
            try:
                self.master.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                signal_pid(self.master.pid, signal.SIGKILL)
                self.master.wait(timeout=10)
        for pid in workers:
            if pid_alive(pid) and _is_gateway_process(pid):
                signal_pid(pid, signal.SIGKILL)
        return self.master.returncode

    def stop_nginx(self) -> None:
        if self.nginx is None or self.nginx.poll() is not None:
            return
        subprocess.run([nginx_bin(), "-p", str(self.prefix), "-c", str(self.nginx_conf), "-s", "quit"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        try:
            self.nginx.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._kill_nginx()

    def _kill_nginx(self) -> None:
        stop_nginx_process(self.nginx)

    def stop(self) -> None:
        try:
            self.stop_gateway()
        finally:
            try:
                self.stop_nginx()
            finally:
                _unregister(self)

    def kill_now(self) -> None:
        pids = set(self._known_workers)
        if self.master is not None and self.master.poll() is None:
            pids |= children_of(self.master.pid)
            self.master.kill()
        for pid in pids:
            if pid_alive(pid) and _is_gateway_process(pid):
                signal_pid(pid, signal.SIGKILL)
        self._kill_nginx()

    # -- HTTP helpers -------------------------------------------------------------------------

    def http(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)

    def auth(self, key: str | None = None) -> dict:
        return {"Authorization": f"Bearer {key or self.key}"}


def backend() -> str:
    """The e2e suite's store: DEPLOXA_E2E_BACKEND=sqlite (default) or postgres."""
    return os.environ.get("DEPLOXA_E2E_BACKEND", "sqlite")


_SHARED_POSTGRES = None


def shared_postgres():
    """One throwaway cluster for the whole session (each stack gets a database of its own)."""
    global _SHARED_POSTGRES
    if _SHARED_POSTGRES is None:
        from pgcluster import PostgresCluster
        _SHARED_POSTGRES = PostgresCluster().start()
    return _SHARED_POSTGRES


def pg_database_url(cluster, database: str) -> str:
    """The cluster's URL for another database of it."""
    return cluster.url.rsplit("/", 1)[0] + "/" + database


def sql_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _is_gateway_process(pid: int) -> bool:
    try:
        return "deploxa-gateway" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# The simulator's deterministic replies


PLAIN_WORDS = ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog."]
UNICODE_WORDS = ["héllo", "日本語", "🌍", "naïve", "Ωmega", "emoji🎉", "ok", "done."]


def expected_reply(words: int = 8, unicode: bool = False) -> str:
    vocabulary = UNICODE_WORDS if unicode else PLAIN_WORDS
    return " ".join(vocabulary[i % len(vocabulary)] for i in range(words))


def expected_prompt_tokens(messages: list[dict]) -> int:
    """The simulator's prompt tokens: per message, its whitespace-separated words + 4."""
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            texts = [content]
        elif isinstance(content, list):
            texts = [part.get("text", "") for part in content if part.get("type") == "text"]
        else:
            texts = []
        total += 4 + sum(len(text.split()) for text in texts)
    return total


def raw_chat_request(host: str, key: str, body: bytes) -> bytes:
    """A chat completion POST as bytes for a plain socket (HTTP/1.1, `Connection: close`), for
    tests that need the wire without a client library in between."""
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def parse_sse(raw: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, in order (strict UTF-8)."""
    text = raw.decode("utf-8")
    payloads = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip(" ") if line.startswith("data:") else None for line in block.split("\n")]
        data = [d for d in data if d is not None]
        if data:
            payloads.append("\n".join(data))
    return payloads


def stream_content(payloads: list[str]) -> str:
    text = []
    for payload in payloads:
        if payload == "[DONE]":
            continue
        chunk = json.loads(payload)
        for choice in chunk.get("choices") or []:
            text.append((choice.get("delta") or {}).get("content") or "")
    return "".join(text)

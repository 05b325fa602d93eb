"""A throwaway PostgreSQL cluster for tests: initdb into a temp directory, pg_ctl start on a free
loopback port and a unix socket in that directory, one database "deploxa", and a stop at exit.

Postgres refuses to run as root, so initdb and pg_ctl run as the `postgres` user (the temp
directory is handed to it); clients (psql, pgbench, the gateway) connect as role postgres with
`trust` authentication and may run as any OS user.

    cluster = PostgresCluster().start()
    cluster.psql("SELECT 1")          # -> "1"
    cluster.url                       # postgresql://postgres@127.0.0.1:PORT/deploxa
    cluster.pause(3)                  # stopped for 3 s, then started again (same data)
    cluster.stop()

Binaries come from $DEPLOXA_PG_BIN, else /usr/lib/postgresql/15/bin (Debian's postgresql).
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("DEPLOXA_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresCluster:
    """One cluster; `start` runs initdb the first time only, so `restart`/`pause` keep the data."""

    def __init__(self, workdir: Path | None = None, settings: dict[str, str] | None = None):
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="deploxa-pg-"))
        self.datadir = self.workdir / "data"
        self.sockdir = self.workdir / "sock"
        self.logfile = self.workdir / "postgres.log"
        self.port = _free_port()
        # Test settings: enough connections for the concurrency tests (3 nodes x workers x pool
        # plus pgbench), fast shutdown, and a log that says why something failed.
        self.settings = {
            "max_connections": "200",
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.sockdir),
            "shared_buffers": "128MB",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "timezone": "UTC",
        }
        self.settings.update(settings or {})
        self._initialised = False
        self._running = False
        atexit.register(self._atexit)

    # -- addresses ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/deploxa"

    @property
    def socket_url(self) -> str:
        return f"postgresql://{PG_USER}@/deploxa?host={self.sockdir}&port={self.port}"

    def client_args(self, db: str = "deploxa") -> list[str]:
        """Connection options for psql/pgbench (over the unix socket)."""
        return ["-h", str(self.sockdir), "-p", str(self.port), "-U", PG_USER, "-d", db]

    # -- lifecycle ---------------------------------------------------------------------------

    def _as_postgres(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        if os.geteuid() == 0:
            kwargs.setdefault("user", PG_USER)
            kwargs.setdefault("group", pwd.getpwnam(PG_USER).pw_gid)
            kwargs.setdefault("extra_groups", [])
        return subprocess.run(args, capture_output=True, text=True, cwd=self.workdir, **kwargs)

    def _initdb(self) -> None:
        self.sockdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(PG_USER)
            os.chmod(self.workdir, 0o700)
            for path in (self.workdir, self.sockdir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            # Clients running as root reach the socket through the (postgres-owned) directory.
            os.chmod(self.workdir, 0o711)
            os.chmod(self.sockdir, 0o777)
        result = self._as_postgres([str(PG_BIN / "initdb"), "-D", str(self.datadir), "-A", "trust", "-U", PG_USER,
                                    "-E", "UTF8", "--locale=C", "-N"])
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write("\n# deploxa test cluster\n")
            for key, value in self.settings.items():
                conf.write(f"{key} = '{value}'\n")
        self._initialised = True

    def start(self) -> "PostgresCluster":
        if self._running:
            return self
        first = not self._initialised
        if first:
            self._initdb()
        result = self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
                                    "-w", "-t", "30", "start"])
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed:\n{result.stdout}\n{result.stderr}\n{self.log_tail()}")
        self._running = True
        if first:
            self.psql("CREATE DATABASE deploxa", db="postgres")
        return self

    def stop(self, mode: str = "fast") -> None:
        if not self._running:
            return
        result = self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop"])
        if result.returncode != 0 and self._postmaster_alive():
            raise RuntimeError(f"pg_ctl stop failed:\n{result.stdout}\n{result.stderr}")
        self._running = False

    def restart(self, mode: str = "fast") -> "PostgresCluster":
        self.stop(mode)
        return self.start()

    def pause(self, seconds: float, mode: str = "fast") -> "PostgresCluster":
        """Stops the server, waits `seconds`, starts it again (clients see connections refused)."""
        self.stop(mode)
        time.sleep(seconds)
        return self.start()

    @property
    def running(self) -> bool:
        return self._running

    def cleanup(self) -> None:
        """Stops the server and removes the temp directory (if this object created it)."""
        self.stop("immediate" if self._running else "fast")
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _postmaster_alive(self) -> bool:
        pidfile = self.datadir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
            os.kill(pid, 0)
            return True
        except (OSError, ValueError):
            return False

    def _atexit(self) -> None:
        try:
            self.cleanup()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- clients -----------------------------------------------------------------------------

    def psql(self, sql: str, db: str = "deploxa", timeout: float = 120) -> str:
        """Runs `sql` (any number of statements, read as a script) with ON_ERROR_STOP; returns
        stdout (unaligned, tuples only) without the trailing newline; raises on any error."""
        result = subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", *self.client_args(db),
                                 "-f", "-"], input=sql, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout.rstrip("\n")

    def pgbench(self, script: str | list[tuple[str, int]], clients: int, transactions: int | None = None,
                seconds: float | None = None, db: str = "deploxa", extra: list[str] | None = None) -> str:
        """Runs pgbench (no vacuum, no init) with one custom script, or several as (script, weight)
        pairs; returns its report (stdout and stderr). Raises when pgbench fails (a client that
        hits an error, e.g. a deadlock, makes it exit non-zero)."""
        pairs = [(script, 1)] if isinstance(script, str) else list(script)
        paths: list[str] = []
        try:
            args = [str(PG_BIN / "pgbench"), "-n", "-c", str(clients), "-j", str(min(clients, 4)), *self.client_args(db)[:-2]]
            for text, weight in pairs:
                with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
                    handle.write(text)
                    paths.append(handle.name)
                args += ["-f", f"{handle.name}@{weight}"]
            if transactions is not None:
                args += ["-t", str(transactions)]
            if seconds is not None:
                args += ["-T", str(int(seconds))]
            args += extra or []
            args.append(db)
            result = subprocess.run(args, capture_output=True, text=True, timeout=300)
            if result.returncode != 0:
                raise RuntimeError(f"pgbench failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
            return result.stdout + result.stderr
        finally:
            for path in paths:
                os.unlink(path)

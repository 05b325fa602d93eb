"""A real Apache 2.4 running the gateway as a plain CGI program (mod_cgi), for test_apache_cgi.py.

Each `ApacheCGI` is its own apache2 process: a generated config in a temp dir, Listen on a free
loopback port, its own PidFile/ErrorLog/Mutex, `-DFOREGROUND`. It never touches the system's
apache2 service or /etc/apache2. The gateway binary is copied in as `gateway` beside the shipped
deploy/shared-hosting/.htaccess (with the database path filled in), as a user would upload them.

As root (CI), Apache will not run CGI programs as root: its children switch to www-data, like a
real host's web server user, so the database folder is handed to www-data (SQLite, run as root by
the CLI, gives the -wal/-shm files the database file's owner).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

import httpx

import gwstack
from gwstack import LOG_FILES, free_port, make_temp_dir, tail, wait_until

SHIPPED_HTACCESS = gwstack.REPO / "deploy" / "shared-hosting" / ".htaccess"
MODULES = Path("/usr/lib/apache2/modules")


def cgi_bin() -> str:
    """The binary Apache runs: DEPLOXA_CGI_BIN (a --static-swift-stdlib build), else the e2e binary."""
    return os.environ.get("DEPLOXA_CGI_BIN") or gwstack.gateway_bin()


def apache_bin() -> str:
    return shutil.which("apache2") or "/usr/sbin/apache2"


def web_user() -> pwd.struct_passwd | None:
    return pwd.getpwnam("www-data") if os.geteuid() == 0 else None


class CGIDatabase:
    """A database of its own (outside every web root), configured with the CLI like an operator would."""

    def __init__(self, simulator, name: str):
        self.directory = make_temp_dir(f"cgidb-{name}")
        self.path = str(self.directory / "gateway.db")
        self.cli("migrate")
        self.cli("org", "create", "host")
        self.cli("project", "create", "host/app")
        self.cli("provider", "set", "host/app", "openai", "--base-url", simulator.openai_base_url,
                 input="sk-cgi-provider-key\n")
        created = json.loads(self.cli("key", "create", "host/app", "--json"))
        self.key_id, self.secret = created["id"], created["secret"]
        self.hand_to_web_user()

    def cli(self, *args: str, input: str = "") -> str:
        result = subprocess.run([gwstack.gateway_bin(), *args, "--db", self.path], input=input, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, f"{args[:2]}: {result.stderr}"
        return result.stdout

    def hand_to_web_user(self) -> None:
        user = web_user()
        if user is None:
            return
        for path in [self.directory, *self.directory.iterdir()]:
            os.chown(path, user.pw_uid, user.pw_gid)

    def audit_rows(self) -> list[dict]:
        return [json.loads(line) for line in self.cli("audit", "export").splitlines()]

    def keys(self) -> list[dict]:
        return json.loads(self.cli("key", "list", "host/app", "--json"))


def htaccess_for(database: str, *, cgipassauth: bool = True) -> str:
    text = SHIPPED_HTACCESS.read_text()
    placeholder = "SetEnv DEPLOXA_GATEWAY_DB /home/USER/deploxa/gateway.db"
    assert placeholder in text, "the shipped .htaccess no longer has the DEPLOXA_GATEWAY_DB line"
    text = text.replace(placeholder, f"SetEnv DEPLOXA_GATEWAY_DB {database}")
    if not cgipassauth:
        # What docs/shared-hosting.md tells a user whose host refuses CGIPassAuth.
        assert "\nCGIPassAuth On\n" in text
        text = text.replace("\nCGIPassAuth On\n", "\n")
    return text


class ApacheCGI:
    """layout: "cgi-bin" (ScriptAlias /cgi-bin/, the host's cgi-bin folder) or "htdocs" (a folder
    /api/ under the DocumentRoot: only the shipped .htaccess makes it a CGI program).
    allow_override: the vhost's AllowOverride ("All", or e.g. "FileInfo Indexes Limit Options" on a
    host that refuses CGIPassAuth)."""

    def __init__(self, database: CGIDatabase, layout: str = "cgi-bin", *, allow_override: str = "All",
                 cgipassauth: bool = True):
        self.database = database
        self.layout = layout
        self.allow_override = allow_override
        self.cgipassauth = cgipassauth
        self.root = make_temp_dir(f"apache-{layout}")
        self.error_log = self.root / "error.log"
        LOG_FILES.append((f"apache ({layout})", self.error_log))
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def script_url(self) -> str:
        """The gateway script's URL: requests go to script_url + "/v1/..."."""
        return f"{self.url}/cgi-bin/gateway" if self.layout == "cgi-bin" else f"{self.url}/api/gateway"

    @property
    def rewritten_v1(self) -> str:
        """The URL that the .htaccess rewrite maps onto the script."""
        return f"{self.url}/cgi-bin/v1" if self.layout == "cgi-bin" else f"{self.url}/api/v1"

    def _install(self) -> Path:
        htdocs = self.root / "htdocs"
        htdocs.mkdir()
        folder = self.root / "cgi-bin" if self.layout == "cgi-bin" else htdocs / "api"
        folder.mkdir()
        binary = Path(cgi_bin())
        assert binary.is_file(), f"the CGI binary is missing: {binary} (DEPLOXA_CGI_BIN)"
        shutil.copy2(binary, folder / "gateway")
        (folder / "gateway").chmod(0o755)
        (folder / ".htaccess").write_text(htaccess_for(self.database.path, cgipassauth=self.cgipassauth))
        probe = self.root / "probe"
        probe.mkdir()
        (probe / "argv").write_text('#!/bin/sh\nprintf \'Content-Type: text/plain\\r\\n\\r\\n\'\nfor a in "$@"; do echo "$a"; done\n')
        (probe / "argv").chmod(0o755)
        probe.chmod(0o755)
        # A file the .htaccess must not serve.
        (folder / "notes.txt").write_text("not for the web\n")
        for path in (self.root, htdocs, folder):
            path.chmod(0o755)
        return folder

    def _config(self, folder: Path) -> str:
        modules = ["mpm_prefork", "authz_core", "cgi", "rewrite", "alias", "env", "mime"]
        loads = "\n".join(f"LoadModule {name}_module {MODULES}/mod_{name}.so" for name in modules)
        user = web_user()
        run_as = f"User {user.pw_name}\nGroup www-data\n" if user else ""
        script_alias = f'ScriptAlias /cgi-bin/ "{self.root}/cgi-bin/"\n' if self.layout == "cgi-bin" else ""
        # /probe/argv: a shell CGI script that prints its argv, to show that this Apache really
        # passes an ISINDEX query (`?a+b+c`) to a CGI program as its command line.
        script_alias += f'ScriptAlias /probe/ "{self.root}/probe/"\n'

        return f"""{loads}
ServerName 127.0.0.1
ServerRoot "{self.root}"
Listen 127.0.0.1:{self.port}
PidFile "{self.root}/apache.pid"
DefaultRuntimeDir "{self.root}"
Mutex file:{self.root} default
ErrorLog "{self.error_log}"
LogLevel warn
LogFormat "%h %t \\"%r\\" %>s %b %D" timed
CustomLog "{self.root}/access.log" timed
TypesConfig /etc/mime.types
{run_as}StartServers 2
MinSpareServers 2
MaxSpareServers 8
MaxRequestWorkers 16
Timeout 60
DocumentRoot "{self.root}/htdocs"
{script_alias}<Directory />
    AllowOverride None
    Require all denied
</Directory>
# Debian's own defaults for /var/www and /usr/lib/cgi-bin (conf-available/serve-cgi-bin.conf).
<Directory "{self.root}/htdocs">
    Options Indexes FollowSymLinks
    AllowOverride {self.allow_override}
    Require all granted
</Directory>
<Directory "{self.root}/probe">
    AllowOverride None
    Require all granted
</Directory>
<Directory "{self.root}/cgi-bin">
    AllowOverride {self.allow_override}
    Options +ExecCGI -MultiViews +SymLinksIfOwnerMatch
    Require all granted
</Directory>
<Files ".ht*">
    Require all denied
</Files>
"""

    def start(self) -> "ApacheCGI":
        folder = self._install()
        for _ in range(3):
            self.port = free_port()
            conf = self.root / "apache.conf"
            conf.write_text(self._config(folder))
            check = subprocess.run([apache_bin(), "-t", "-f", str(conf)], capture_output=True, text=True, timeout=30)
            assert check.returncode == 0, f"apache2 -t: {check.stderr}"
            log = open(self.root / "apache.out", "ab")
            self.proc = subprocess.Popen([apache_bin(), "-f", str(conf), "-DFOREGROUND"],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
            log.close()
            gwstack._register(self)
            try:
                wait_until(lambda: self.proc.poll() is not None or self._answers(), timeout=20, what="apache2 to listen")
                if self.proc.poll() is None:
                    return self
            except TimeoutError:
                pass
            self.stop()
        raise RuntimeError(f"apache2 did not start; error log:\n{tail(self.error_log)}\n{tail(self.root / 'apache.out')}")

    def _answers(self) -> bool:
        try:
            httpx.get(self.url + "/", timeout=2)
            return True
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # SIGTERM: the parent stops its children and exits (prefork).
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill_now()
        gwstack._unregister(self)

    def kill_now(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    def __enter__(self) -> "ApacheCGI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

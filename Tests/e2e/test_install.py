"""deploy/install.sh, tested the way an operator uses it, without systemd and without touching /.

`install.sh --root DIR` installs into a fresh tree DIR (DIR/usr/local/bin, DIR/etc/..., DIR/var/lib/...)
and skips useradd, chown and systemctl, saying so. The files it writes keep the target system's
paths (/usr/local/bin/deploxa-gateway, /var/lib/deploxa-gateway/gateway.db): the tests map those
into DIR where they run something.

1. the tree: files, modes, the unit under `systemd-analyze verify`, the logrotate rules under
   `logrotate -d` (and one forced rotation of a copy), `nginx -t` on a configuration that includes
   the installed snippet;
2. the whole path: an HTTPS nginx (self-signed certificate for localhost and 127.0.0.1) whose
   server block includes the installed snippet, in front of `serve` started from the installed
   binary with the unit's ExecStart arguments, in the unit's group, on the installed database;
3. /metrics, /status and /ping through that nginx (the pool's endpoints);
4. installing again (same binary: nothing changes; a new binary while serving: replaced in
   place, and the unit's reload signal starts workers from the new file);
5. `install.sh --uninstall`: binary, unit, logrotate rules and snippet gone; the database stays
   and holds the audit rows of step 2.

About `systemd-analyze verify`: it checks that every Exec*= command exists, and the unit's
/usr/local/bin/deploxa-gateway exists only inside DIR. `verify --root=DIR` resolves that one, but
then also wants /bin/kill (ExecReload) and sysinit.target inside DIR, which a bare install tree
does not have. So the test verifies a copy of the installed unit, under the same file name, whose
binary path is rewritten into DIR; everything else in it is checked against this host.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

import gwstack
from admin_helpers import create_token
from gwstack import GatewayStack, expected_reply, gateway_bin, make_temp_dir, nginx_bin, tail, wait_until

INSTALL = gwstack.REPO / "deploy" / "install.sh"

BIN = "/usr/local/bin/deploxa-gateway"
UNIT = "/etc/systemd/system/deploxa-gateway.service"
LOGROTATE = "/etc/logrotate.d/deploxa-gateway"
SNIPPET = "/etc/nginx/snippets/deploxa-gateway.conf"
DATA_DIR = "/var/lib/deploxa-gateway"
DB = DATA_DIR + "/gateway.db"

# path inside the tree -> (kind, mode)
EXPECTED_TREE = {
    BIN: ("file", 0o755),
    UNIT: ("file", 0o644),
    LOGROTATE: ("file", 0o644),
    SNIPPET: ("file", 0o644),
    DATA_DIR: ("dir", 0o700),
    DB: ("file", 0o600),
}

# What the snippet must route: exact (`location = X`) or prefix (`location X`).
ROUTES = {"/v1/": "prefix", "/healthz": "exact", "/api/": "prefix", "/dashboard": "prefix",
          "/metrics": "exact", "/status": "exact", "/ping": "exact"}

SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"

# With root, nginx's workers run as this user and group (Debian's for a root nginx without a
# `user` line), and serve runs in that group, as the unit runs it in www-data, nginx's group there.
IS_ROOT = os.geteuid() == 0
NGINX_USER, NGINX_GROUP = "nobody", "nogroup"


def inside(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def run_install(root: Path, *args: str, binary: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    command = ["bash", str(INSTALL), "--root", str(root), *args]
    if "--uninstall" not in args:
        command += ["--binary", binary or gateway_bin()]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    if check:
        assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def snapshot(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every path below root: (kind, permission bits, sha256 of a file's content)."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        relative = "/" + str(path.relative_to(root))
        if stat.S_ISDIR(info.st_mode):
            found[relative] = ("dir", stat.S_IMODE(info.st_mode), "")
        else:
            found[relative] = ("file", stat.S_IMODE(info.st_mode), hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def unit_settings(unit_text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in unit_text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            name, value = line.split("=", 1)
            settings.setdefault(name.strip(), []).append(value.strip())
    return settings


def snippet_locations(text: str) -> dict[str, tuple[str, str]]:
    """location path -> (modifier, body) of an nginx snippet without nested blocks."""
    found = {}
    for match in re.finditer(r"^\s*location\s+(=\s+)?(\S+)\s*\{(.*?)^\s*\}", text, re.M | re.S):
        found[match.group(2)] = ("exact" if match.group(1) else "prefix", match.group(3))
    return found


def nginx_conf(prefix: Path, snippet: Path, port: int, tls: tuple[Path, Path] | None = None) -> Path:
    """A whole nginx configuration whose one server block includes the snippet, as an operator's would."""
    for name in ("logs", "tmp"):
        (prefix / name).mkdir(parents=True, exist_ok=True)
    # `include fastcgi_params;` in the snippet is relative to the configuration's folder, as in /etc/nginx.
    shutil.copy("/etc/nginx/fastcgi_params", prefix / "fastcgi_params")
    listen = f"listen 127.0.0.1:{port} ssl;" if tls else f"listen 127.0.0.1:{port};"
    certificates = f"ssl_certificate {tls[0]};\n        ssl_certificate_key {tls[1]};" if tls else ""
    user = f"user {NGINX_USER} {NGINX_GROUP};" if IS_ROOT else ""
    conf = prefix / "nginx.conf"
    conf.write_text(f"""{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/logs/nginx-access.log;
    client_body_temp_path {prefix}/tmp/client_body;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    proxy_temp_path {prefix}/tmp/proxy;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        {listen}
        server_name localhost;
        {certificates}
        include {snippet};
    }}
}}
""")
    return conf


# --------------------------------------------------------------------------------------------
# 1. The installed tree


@pytest.fixture(scope="module")
def plain_root():
    """install.sh --root DIR with the defaults (socket /run/deploxa-gateway/gateway.sock)."""
    root = make_temp_dir("inst") / "root"
    result = run_install(root)
    return root, result


def test_install_tree(plain_root):
    root, result = plain_root
    tree = snapshot(root)
    files = {path for path, (kind, _, _) in tree.items() if kind == "file"}
    assert files == {path for path, (kind, _) in EXPECTED_TREE.items() if kind == "file"}, tree
    for path, (kind, mode) in EXPECTED_TREE.items():
        assert tree[path][:2] == (kind, mode), f"{path}: {tree[path][:2]}, expected {(kind, oct(mode))}"
    assert tree[BIN][2] == hashlib.sha256(Path(gateway_bin()).read_bytes()).hexdigest()
    with sqlite3.connect(f"file:{inside(root, DB)}?mode=ro", uri=True) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"audit_log", "projects", "settings"} <= tables, tables  # migrated

    for skipped in ("useradd --system", "usermod -a -G www-data deploxa", "chown -R deploxa:www-data /var/lib/deploxa-gateway",
                    "runuser -u deploxa", "systemctl daemon-reload", "systemctl enable --now deploxa-gateway"):
        assert f"skipped (--root): {skipped}" in result.stdout, (skipped, result.stdout)
    for step in ("include /etc/nginx/snippets/deploxa-gateway.conf;", "nginx -t && systemctl reload nginx",
                 "org create", "project create", "provider set", "key create", "admin-token create"):
        assert step in result.stdout, (step, result.stdout)


def test_install_md_has_the_scripts_commands(plain_root):
    """deploy/INSTALL.md's manual steps are the script's: every command it skipped or printed."""
    _, result = plain_root
    manual = (gwstack.REPO / "deploy" / "INSTALL.md").read_text()
    commands = [line.split("skipped (--root): ", 1)[1] for line in result.stdout.splitlines() if "skipped (--root): " in line]
    commands = [c for c in commands if not c.startswith("runuser -u deploxa -g www-data (ran as")]
    commands.append("runuser -u deploxa -g www-data -- /usr/local/bin/deploxa-gateway --db /var/lib/deploxa-gateway/gateway.db migrate")
    next_steps = result.stdout.split("Next steps:", 1)[1]
    commands += [line.strip() for line in next_steps.splitlines()
                 if line.strip().startswith(("include ", "nginx -t", "export ", "runuser ", "curl "))]
    assert len(commands) >= 15, commands
    for command in commands:
        assert command in manual, f"deploy/INSTALL.md lacks: {command}"


def test_installed_unit(plain_root):
    root, _ = plain_root
    text = inside(root, UNIT).read_text()
    settings = unit_settings(text)
    exec_start = shlex.split(settings["ExecStart"][0])
    assert exec_start[:2] == [BIN, "serve"]
    assert exec_start[exec_start.index("--socket") + 1] == "/run/deploxa-gateway/gateway.sock"
    assert exec_start[exec_start.index("--socket-mode") + 1] == "0660"
    assert "--log-file" not in exec_start  # the journal by default
    assert settings["ExecStartPre"] == [f"{BIN} migrate"]
    assert settings["Environment"] == [f"DEPLOXA_GATEWAY_DB={DB}"]
    for name, value in {"User": "deploxa", "Group": "www-data", "StateDirectory": "deploxa-gateway",
                        "StateDirectoryMode": "0700", "RuntimeDirectory": "deploxa-gateway", "RuntimeDirectoryMode": "0750",
                        "LogsDirectory": "deploxa-gateway", "NoNewPrivileges": "true", "ProtectSystem": "strict",
                        "ProtectHome": "true", "PrivateTmp": "true", "KillSignal": "SIGQUIT",
                        "ExecReload": "/bin/kill -USR2 $MAINPID"}.items():
        assert settings.get(name) == [value], (name, settings.get(name))

    # systemd-analyze verify on a copy whose binary path points into the tree (module docstring).
    check_dir = root.parent / "verify"
    check_dir.mkdir()
    copy = check_dir / "deploxa-gateway.service"
    copy.write_text(text.replace(BIN, str(inside(root, BIN))))
    verified = subprocess.run([SYSTEMD_ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0 and verified.stderr.strip() == "", f"{verified.returncode}\n{verified.stderr}"
    # The check can fail: the same copy with a missing binary does.
    copy.write_text(text.replace(BIN, str(check_dir / "missing-binary")))
    failed = subprocess.run([SYSTEMD_ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert failed.returncode != 0 and "missing-binary" in failed.stderr, failed.stderr


def _logrotate() -> str:
    found = shutil.which("logrotate") or ("/usr/sbin/logrotate" if Path("/usr/sbin/logrotate").exists() else None)
    if not found:
        sudo = [] if IS_ROOT else ["sudo"]
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "logrotate"], capture_output=True, timeout=600,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = shutil.which("logrotate") or "/usr/sbin/logrotate"
    assert Path(found).exists(), "logrotate is not installed and apt-get could not install it"
    return found


def test_installed_logrotate_rules(plain_root):
    root, _ = plain_root
    logrotate = _logrotate()
    rules = inside(root, LOGROTATE)
    state = root.parent / "logrotate.state"
    debug = subprocess.run([logrotate, "-d", "--state", str(state), str(rules)], capture_output=True, text=True, timeout=60)
    output = debug.stdout + debug.stderr
    assert debug.returncode == 0, output
    assert "error" not in output.lower(), output
    assert "rotating pattern: /var/log/deploxa-gateway/*.log" in output, output
    assert "postrotate" in rules.read_text() and "--signal=USR1 --kill-who=main" in rules.read_text()

    # One real, forced rotation of a copy pointed at a folder of the test: the file is renamed
    # (compression waits a rotation: delaycompress), and the postrotate script runs and succeeds
    # when the service is not running (no systemd here), without sending anything.
    logs = root.parent / "logs"
    logs.mkdir()
    (logs / "gateway.log").write_text("one line\n")
    copy = root.parent / "logrotate-copy"
    copy.write_text(rules.read_text().replace("/var/log/deploxa-gateway/", f"{logs}/"))
    forced = subprocess.run([logrotate, "-v", "-f", "--state", str(state), str(copy)], capture_output=True, text=True, timeout=60)
    output = forced.stdout + forced.stderr
    assert forced.returncode == 0, output
    assert "running postrotate script" in output, output
    assert sorted(p.name for p in logs.iterdir()) == ["gateway.log.1"], list(logs.iterdir())


def test_installed_snippet_passes_nginx_t(plain_root):
    root, _ = plain_root
    snippet = inside(root, SNIPPET)
    locations = snippet_locations(snippet.read_text())
    for path, kind in ROUTES.items():
        assert path in locations, (path, sorted(locations))
        assert locations[path][0] == kind, (path, locations[path][0])
        assert "fastcgi_pass unix:/run/deploxa-gateway/gateway.sock;" in locations[path][1], path
        assert "fastcgi_keep_conn off;" in locations[path][1], path
    prefix = root.parent / "nginx-t"
    conf = nginx_conf(prefix, snippet, gwstack.free_port())
    checked = subprocess.run([nginx_bin(), "-t", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "logs" / "startup.log")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and "syntax is ok" in checked.stderr, checked.stderr


# --------------------------------------------------------------------------------------------
# 2. The whole path: HTTPS nginx -> installed snippet -> serve as the unit runs it


class InstalledStack(GatewayStack):
    """A GatewayStack whose files are install.sh's: the installed binary and database, serve
    started with the installed unit's ExecStart, nginx with TLS and the installed snippet."""

    def __init__(self, simulator, root: Path, work: Path):
        super().__init__(simulator, name="installed", workers=2)
        self.root = root
        self.work = work
        self.binary = inside(root, BIN)
        self.db = inside(root, DB)
        self.unit = unit_settings(inside(root, UNIT).read_text())
        exec_start = shlex.split(self.unit["ExecStart"][0])
        self.socket = Path(exec_start[exec_start.index("--socket") + 1])
        self.workers = int(exec_start[exec_start.index("--workers") + 1])
        self.cert, self.cert_key = work / "cert.pem", work / "key.pem"
        self.curl_count = 0

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.port}"

    def http(self, timeout: float = 30):
        import httpx
        return httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False, verify=str(self.cert))

    def cli(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60):
        result = subprocess.run([str(self.binary), "--db", str(self.db), *args], input=input if input is not None else "",
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise gwstack.CommandError(f"deploxa-gateway {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def target_to_tree(self, word: str) -> str:
        for target in (BIN, DATA_DIR):
            if word == target or word.startswith(target + "/"):
                return str(inside(self.root, word))
        return word

    def start_gateway(self) -> None:
        """What systemd does: RuntimeDirectory (0750, the unit's group), ExecStartPre, ExecStart."""
        env = {**os.environ, "SWIFT_BACKTRACE": "enable=no"}
        for assignment in self.unit["Environment"]:
            name, value = assignment.split("=", 1)
            env[name] = self.target_to_tree(value)
        group = NGINX_GROUP if IS_ROOT else None
        self.socket.parent.mkdir(mode=0o750, exist_ok=True)
        if IS_ROOT:
            shutil.chown(self.socket.parent, group=group)
        pre = [self.target_to_tree(word) for word in shlex.split(self.unit["ExecStartPre"][0])]
        subprocess.run(pre, env=env, check=True, capture_output=True, timeout=60)
        command = [self.target_to_tree(word) for word in shlex.split(self.unit["ExecStart"][0])]
        assert command[0] == str(self.binary)
        log = open(self.gateway_log, "ab")
        self.master = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                       group=group)
        log.close()
        wait_until(lambda: self.master.poll() is not None or self.socket.exists(), timeout=20, what="the installed serve's socket")
        if self.master.poll() is not None:
            raise RuntimeError(f"serve exited with {self.master.returncode}:\n{tail(self.gateway_log)}")
        self.wait_for_workers()

    def start_nginx(self) -> None:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", str(self.cert_key), "-out", str(self.cert)], check=True, capture_output=True, timeout=60)
        super().start_nginx()

    def render_nginx_conf(self, port: int) -> Path:
        return nginx_conf(self.prefix, inside(self.root, SNIPPET), port, tls=(self.cert, self.cert_key))

    def _healthy(self) -> bool:
        return self.curl("/healthz")[0] == 200

    def curl(self, path: str, *args: str, host: str = "localhost") -> tuple[int, dict[str, str], bytes]:
        """curl --cacert CERT https://HOST:PORT/PATH: (status, headers in lower case, body)."""
        self.curl_count += 1
        body, head = self.work / f"curl-{self.curl_count}.body", self.work / f"curl-{self.curl_count}.head"
        result = subprocess.run(
            ["curl", "-sS", "--cacert", str(self.cert), "--resolve", f"localhost:{self.port}:127.0.0.1",
             "-o", str(body), "-D", str(head), "-w", "%{http_code}", *args, f"https://{host}:{self.port}{path}"],
            capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"curl {path}: exit {result.returncode}: {result.stderr}"
        headers = {}
        for line in head.read_text(errors="replace").splitlines()[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        return int(result.stdout), headers, body.read_bytes()


@pytest.fixture(scope="module")
def served(simulator):
    """install.sh --root DIR --socket S, then the installed gateway serving through HTTPS nginx."""
    work = make_temp_dir("instsrv")
    root = work / "root"
    socket_path = work / "run" / "gateway.sock"
    run_install(root, "--socket", str(socket_path))
    stack = InstalledStack(simulator, root, work)
    assert stack.socket == socket_path
    state = {"stack": stack, "root": root, "work": work, "request_ids": []}
    try:
        stack.start()
        yield state
    finally:
        stack.stop()


CHAT_BODY = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello from the install test [sim words=6]"}]})


def chat_over_https(stack: InstalledStack) -> str:
    before = stack.simulator.count("/openai/v1/chat/completions")
    status, headers, body = stack.curl("/v1/chat/completions", "-H", f"Authorization: Bearer {stack.key}",
                                       "-H", "Content-Type: application/json", "--data-binary", CHAT_BODY)
    assert status == 200, (status, body[:500])
    answer = json.loads(body)
    assert answer["choices"][0]["message"]["content"] == expected_reply(6)
    assert headers.get("x-ai-provider") == "openai"
    assert stack.simulator.count("/openai/v1/chat/completions") == before + 1
    request_id = headers.get("x-request-id", "")
    assert request_id.startswith("req_"), headers
    return request_id


def test_https_path_through_installed_files(served):
    stack: InstalledStack = served["stack"]
    # The socket as the unit makes it: mode 0660; with root, in nginx's group (the unit's www-data).
    info = stack.socket.stat()
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o660, oct(info.st_mode)
    if IS_ROOT:
        assert info.st_gid == grp.getgrnam(NGINX_GROUP).gr_gid, info.st_gid  # nginx reaches it only through the group

    request_id = chat_over_https(stack)
    served["request_ids"].append(request_id)
    row = stack.wait_for_audit(request_id)
    assert row["status"] == 200 and row["provider"] == "openai", row

    status, headers, body = stack.curl("/dashboard/login")
    assert status == 200, (status, body[:300])
    assert headers.get("content-type", "").startswith("text/html"), headers
    assert b"<form" in body and b"</html>" in body

    # The certificate names 127.0.0.1 too; a gateway key does not open the admin API.
    status, _, _ = stack.curl("/healthz", host="127.0.0.1")
    assert status == 200
    status, _, body = stack.curl("/api/v1/projects", "-H", f"Authorization: Bearer {stack.key}")
    assert status == 401, (status, body[:300])


def test_metrics_status_ping_through_installed_snippet(served):
    """The pool's endpoints (needs the binary with /metrics, /status, /ping)."""
    stack: InstalledStack = served["stack"]
    status, _, body = stack.curl("/ping")
    assert status == 200 and body.strip() == b"pong", (status, body[:200])
    for path in ("/metrics", "/status"):
        status, _, body = stack.curl(path)
        assert status == 401, (path, status, body[:200])
    token = create_token(stack, name="install-metrics")["secret"]
    status, headers, body = stack.curl("/metrics", "-H", f"Authorization: Bearer {token}")
    assert status == 200, (status, body[:300])
    assert headers.get("content-type", "").startswith("text/plain"), headers
    assert re.search(rb"^deploxa_\w+", body, re.M), body[:500]


# --------------------------------------------------------------------------------------------
# 4. Installing again


def test_install_twice_changes_nothing(plain_root):
    root, _ = plain_root
    sidecars = (DB + "-wal", DB + "-shm")  # SQLite's WAL files may stay after `migrate`
    before = {path: entry for path, entry in snapshot(root).items() if path not in sidecars}
    again = run_install(root)
    after = snapshot(root)
    assert {path: entry for path, entry in after.items() if path not in sidecars} == before
    for path in sidecars:
        if path in after:  # as private as the database (migrate runs with umask 077)
            assert after[path][:2] == ("file", 0o600), (path, after[path])
    for path in (BIN, UNIT, LOGROTATE, SNIPPET):
        assert f"{path}: unchanged" in again.stdout, again.stdout
    assert "up to date" in again.stdout, again.stdout


def test_upgrade_while_serving_then_reload(served):
    stack: InstalledStack = served["stack"]
    root, work = served["root"], served["work"]
    # A "new release": the same program with bytes appended (ignored by the loader), so it differs.
    new_binary = work / "deploxa-gateway-new"
    shutil.copy(gateway_bin(), new_binary)
    with open(new_binary, "ab") as f:
        f.write(b"\0upgrade-" + uuid.uuid4().hex.encode())
    new_binary.chmod(0o755)
    old_workers = stack.worker_pids()
    upgraded = run_install(root, "--socket", str(stack.socket), binary=str(new_binary))
    assert f"{BIN}: replaced" in upgraded.stdout, upgraded.stdout
    for path in (UNIT, LOGROTATE, SNIPPET):
        assert f"{path}: unchanged" in upgraded.stdout, upgraded.stdout
    installed = inside(root, BIN)
    assert installed.read_bytes() == new_binary.read_bytes()
    # Replaced by rename: the running master keeps the old file, now unlinked.
    assert os.readlink(f"/proc/{stack.master_pid}/exe").endswith("(deleted)")
    assert chat_over_https(stack)  # still serving, before the reload

    stack.master.send_signal(signal.SIGUSR2)  # the unit's ExecReload
    new_workers = stack.wait_for_workers(excluding=old_workers, timeout=30)
    for pid in new_workers:
        assert os.readlink(f"/proc/{pid}/exe") == str(installed), pid
    served["request_ids"].append(chat_over_https(stack))
    for request_id in served["request_ids"]:
        stack.wait_for_audit(request_id)


# --------------------------------------------------------------------------------------------
# 5. Uninstalling


def test_uninstall_keeps_the_database(served):
    stack: InstalledStack = served["stack"]
    root = served["root"]
    assert served["request_ids"], "the earlier tests of this module made no requests"
    assert stack.stop_gateway() == 0  # what `systemctl disable --now` does first
    site = inside(root, "/etc/nginx/sites-enabled/gateway-site")
    site.parent.mkdir(parents=True)
    site.write_text(f"server {{\n    include {SNIPPET};\n}}\n")
    removed = run_install(root, "--uninstall")
    # The operator's server block still includes the snippet: the script says where.
    assert "nginx still includes the removed snippet in:\n    /etc/nginx/sites-enabled/gateway-site\n" in removed.stdout, removed.stdout
    for path in (BIN, UNIT, LOGROTATE, SNIPPET):
        assert not inside(root, path).exists(), path
        assert f"removed {path}" in removed.stdout, removed.stdout
    assert "skipped (--root): systemctl disable --now deploxa-gateway" in removed.stdout
    assert f"Kept {DATA_DIR}" in removed.stdout, removed.stdout
    assert inside(root, DB).is_file()

    exported = subprocess.run([gateway_bin(), "--db", str(inside(root, DB)), "audit", "export", "--format", "ndjson"],
                              capture_output=True, text=True, timeout=60)
    assert exported.returncode == 0, exported.stderr
    ids = {json.loads(line)["request_id"] for line in exported.stdout.splitlines() if line.strip()}
    assert set(served["request_ids"]) <= ids, (served["request_ids"], ids)

    # Uninstalling twice is fine too, and installing again picks the database up as it is.
    again = run_install(root, "--uninstall")
    assert f"{BIN}: not there" in again.stdout
    reinstalled = run_install(root, "--socket", str(stack.socket))
    assert "up to date" in reinstalled.stdout, reinstalled.stdout


def test_refuses_without_root_and_bad_arguments():
    unknown = subprocess.run(["bash", str(INSTALL), "--frobnicate"], capture_output=True, text=True, timeout=30)
    assert unknown.returncode == 2 and "unknown argument: --frobnicate" in unknown.stderr
    relative = run_install(make_temp_dir("instbad") / "root", "--socket", "run/gw.sock", check=False)
    assert relative.returncode != 0 and "absolute" in relative.stderr
    missing = run_install(make_temp_dir("instbad") / "root", binary="/nonexistent/deploxa-gateway", check=False)
    assert missing.returncode != 0 and "no executable binary at /nonexistent/deploxa-gateway" in missing.stderr
    if IS_ROOT:
        # A plain user without --root is told to be root, before anything is looked at or installed
        # (a copy of the script, readable by that user).
        copy = make_temp_dir("instuser") / "install.sh"
        shutil.copy(INSTALL, copy)
        copy.chmod(0o755)
        as_user = subprocess.run(["runuser", "-u", NGINX_USER, "--", "bash", str(copy)], capture_output=True, text=True, timeout=30)
        assert as_user.returncode == 1 and "run as root" in as_user.stderr, (as_user.returncode, as_user.stderr)

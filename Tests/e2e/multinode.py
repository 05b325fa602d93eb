"""Several gateway nodes sharing one PostgreSQL database, behind one nginx `upstream`.

    cluster = PostgresCluster().start()
    nodes = MultiNode(simulator, cluster, count=3, workers=2, serve_args=[...]).start()
    nodes.post_many([...])      # concurrent requests through nginx; each result names its node

Node 1 sets the database up (migrate, org, project, providers, a key); every node only runs
`serve` (its own master, workers and unix socket, the same `--db` URL). nginx is rendered from
nginx/nginx.local.conf.template by a conf filter: every `fastcgi_pass` goes to an `upstream`
block listing the nodes' sockets (round robin, `max_fails=0` so a node is never benched), each
answer carries the socket that produced it in `X-Deploxa-Upstream`, and `logs/upstream.log`
records `request_id upstream_addr status` per request as a cross-check.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass, field

import httpx

import gwstack
from gwstack import GatewayStack, Simulator, wait_until

CHAT = "/v1/chat/completions"
UPSTREAM_HEADER = "x-deploxa-upstream"


@dataclass
class Answer:
    """One request sent through nginx and what came back."""
    key: str
    status: int                  # 0: no HTTP answer (transport error)
    request_id: str | None
    node: int | None             # 1-based index of the node that answered, None if unknown
    body: bytes
    headers: dict
    started: float               # time.monotonic() when sent
    finished: float
    error: str | None = None

    def json(self):
        import json
        return json.loads(self.body)


@dataclass
class Ledger:
    """Every answer of the module, for the audit checks."""
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, answers: list[Answer]) -> None:
        with self.lock:
            self.answers.extend(answers)

    def answered(self) -> list[Answer]:
        with self.lock:
            return [a for a in self.answers if a.status and a.request_id]


class MultiNode:
    ORG = GatewayStack.ORG
    PROJECT = GatewayStack.PROJECT

    def __init__(self, simulator: Simulator, cluster, count: int = 3, workers: int = 2, serve_args=()):
        self.simulator = simulator
        self.cluster = cluster
        self.database = f"gw_multinode_{os.urandom(4).hex()}"
        self.nodes = [GatewayStack(simulator, name=f"node{i + 1}", workers=workers, serve_args=serve_args,
                                   postgres=cluster, database=self.database,
                                   nginx_conf_filter=self._nginx_filter if i == 0 else None)
                      for i in range(count)]
        self.ledger = Ledger()
        self.key = ""
        self.key_id = ""

    # -- set-up ------------------------------------------------------------------------------

    @property
    def first(self) -> GatewayStack:
        return self.nodes[0]

    @property
    def base_url(self) -> str:
        return self.first.base_url

    @property
    def db_url(self) -> str:
        return self.first.db_arg

    @property
    def upstream_log(self):
        return self.first.prefix / "logs" / "upstream.log"

    def _nginx_filter(self, conf: str) -> str:
        own = f"fastcgi_pass unix:{self.first.socket};"
        assert own in conf, "the template's fastcgi_pass lines changed"
        conf = conf.replace(own, "fastcgi_pass deploxa_nodes;\n            add_header X-Deploxa-Upstream $upstream_addr always;")
        servers = "".join(f"        server unix:{node.socket} max_fails=0;\n" for node in self.nodes)
        block = ("http {\n"
                 "    upstream deploxa_nodes {\n" + servers + "    }\n"
                 "    log_format multinode '$upstream_http_x_request_id $upstream_addr $status';\n"
                 f"    access_log {self.upstream_log} multinode;\n")
        assert conf.count("http {\n") == 1
        return conf.replace("http {\n", block, 1)

    def start(self) -> "MultiNode":
        first = self.first
        for node in self.nodes:
            gwstack._register(node)
        self.cluster.psql(f'CREATE DATABASE "{self.database}"', db="postgres")
        first.cli("migrate")
        first.cli("org", "create", self.ORG)
        first.cli("project", "create", self.PROJECT)
        first.configure_providers(self.PROJECT)
        created = first.create_key("multinode")
        self.key, self.key_id = created["secret"], created["id"]
        for node in self.nodes:
            node.key, node.key_id = self.key, self.key_id
            node.start_gateway()
        first.start_nginx()
        wait_until(lambda: httpx.get(self.base_url + "/healthz", timeout=5, trust_env=False).status_code == 200,
                   timeout=20, what="GET /healthz through nginx (multinode)")
        return self

    def stop(self) -> None:
        errors = []
        for node in self.nodes:
            try:
                node.stop()
            except Exception as error:  # noqa: BLE001 - stop the others too
                errors.append(error)
        if errors:
            raise errors[0]

    # -- CLI / SQL through node 1 -------------------------------------------------------------

    def cli(self, *args, **kwargs):
        return self.first.cli(*args, **kwargs)

    def sql(self, statement: str) -> str:
        return self.cluster.psql(statement, db=self.database)

    def worker_pids(self) -> list[set[int]]:
        return [node.worker_pids() for node in self.nodes]

    def node_of(self, upstream_addr: str | None) -> int | None:
        if not upstream_addr:
            return None
        # A retried request lists several addresses; the last one answered.
        last = upstream_addr.split(",")[-1].strip()
        for index, node in enumerate(self.nodes):
            if last == f"unix:{node.socket}":
                return index + 1
        return None

    def request_workers(self) -> dict[str, tuple[int, int]]:
        """request id -> (node, worker pid), from the nodes' logs (needs `serve --slowlog-threshold`
        below every request's duration: each request is then logged as a "slow request")."""
        found = {}
        for index, node in enumerate(self.nodes):
            for line in node.gateway_log.read_text(errors="replace").splitlines():
                if "slow request" not in line:
                    continue
                fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
                if "request_id" in fields and fields.get("pid", "").isdigit():
                    found[fields["request_id"]] = (index + 1, int(fields["pid"]))
        return found

    def upstream_log_nodes(self) -> dict[str, int | None]:
        """request id -> node, from nginx's per-request log."""
        found = {}
        for line in self.upstream_log.read_text().splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[0] not in ("-", ""):
                found[parts[0]] = self.node_of(parts[1])
        return found

    # -- requests -----------------------------------------------------------------------------

    def post_many(self, requests: list[tuple[str, dict, dict]], timeout: float = 60) -> list[Answer]:
        """Sends every (key, body, extra headers) at once (released together) and returns the answers in order."""
        answers = asyncio.run(self._post_many(requests, timeout))
        self.ledger.add(answers)
        return answers

    def post(self, key: str, body: dict, headers: dict | None = None, timeout: float = 30) -> Answer:
        with httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False) as client:
            answer = self._send_sync(client, key, body, headers or {})
        self.ledger.add([answer])
        return answer

    def _send_sync(self, client: httpx.Client, key: str, body: dict, headers: dict) -> Answer:
        started = time.monotonic()
        try:
            response = client.post(CHAT, headers={"Authorization": f"Bearer {key}", **headers}, json=body)
        except httpx.HTTPError as error:
            return Answer(key, 0, None, None, b"", {}, started, time.monotonic(), repr(error))
        return self._answer(key, response, started)

    def _answer(self, key: str, response: httpx.Response, started: float) -> Answer:
        return Answer(key, response.status_code, response.headers.get("x-request-id"),
                      self.node_of(response.headers.get(UPSTREAM_HEADER)), response.content, dict(response.headers),
                      started, time.monotonic())

    async def _post_many(self, requests, timeout: float) -> list[Answer]:
        limits = httpx.Limits(max_connections=len(requests) + 10, max_keepalive_connections=len(requests) + 10)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=timeout, limits=limits, trust_env=False) as client:
            go = asyncio.Event()

            async def one(key: str, body: dict, headers: dict) -> Answer:
                await go.wait()
                started = time.monotonic()
                try:
                    response = await client.post(CHAT, headers={"Authorization": f"Bearer {key}", **headers}, json=body)
                except httpx.HTTPError as error:
                    return Answer(key, 0, None, None, b"", {}, started, time.monotonic(), repr(error))
                return self._answer(key, response, started)

            tasks = [asyncio.create_task(one(key, body, headers)) for key, body, headers in requests]
            await asyncio.sleep(0.05)
            go.set()
            return list(await asyncio.gather(*tasks))


def by_node(answers: list[Answer], status: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    for answer in answers:
        if answer.status == status:
            counts[answer.node] = counts.get(answer.node, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (item[0] is None, item[0] or 0)))


def statuses(answers: list[Answer]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for answer in answers:
        counts[answer.status] = counts.get(answer.status, 0) + 1
    return dict(sorted(counts.items()))


def nanos(usd: float | None) -> int:
    """deploxa_nanos: USD -> nano-USD, rounded half away from zero."""
    if usd is None:
        return 0
    x = usd * 1e9
    whole = int(x)
    if abs(x - whole) >= 0.5:
        whole += 1 if x > 0 else -1
    return whole

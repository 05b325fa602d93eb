"""The master process: restart of a dead worker, reload, recycling, graceful stop.

Each test runs its own gateway (own database, socket, serve master and nginx) on the
session's simulator, so that signals and crashes never touch the main stack.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import httpx
import pytest

from gwstack import GatewayStack, expected_reply, parse_sse, pid_alive, stream_content, wait_until


@contextlib.contextmanager
def own_stack(simulator, name: str, workers: int = 2, serve_args=()):
    stack = GatewayStack(simulator, name=name, workers=workers, serve_args=["--graceful-timeout", "10", *serve_args])
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def chat(http: httpx.Client, stack: GatewayStack, text: str = "ping", **extra) -> httpx.Response:
    return http.post("/v1/chat/completions", headers=stack.auth(),
                     json={"model": "gpt-4o", "messages": [{"role": "user", "content": text}], **extra})


def test_killed_worker_is_replaced(simulator):
    with own_stack(simulator, "kill9") as stack, stack.http(timeout=15) as http:
        before = stack.wait_for_workers()
        victim = sorted(before)[0]
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        # Requests keep succeeding while the master notices and refills.
        statuses = [chat(http, stack, f"during restart {i}").status_code for i in range(5)]
        deadline = killed_at + 3.0
        after = stack.wait_for_workers(timeout=max(0.1, deadline - time.monotonic()), excluding={victim})
        assert victim not in after
        assert len(after - before) == 1, f"exactly one replacement: before {before}, after {after}"
        assert after & before == before - {victim}, "the other worker was left alone"
        statuses += [chat(http, stack, f"after restart {i}").status_code for i in range(10)]
        assert statuses == [200] * 15


@pytest.mark.parametrize("signum", [signal.SIGUSR2, signal.SIGHUP], ids=["SIGUSR2", "SIGHUP"])
def test_reload_lets_inflight_stream_finish(simulator, signum):
    with own_stack(simulator, "reload") as stack, stack.http(timeout=30) as http:
        old = stack.wait_for_workers()
        result: dict = {}
        first_event = threading.Event()

        def run_stream():
            try:
                body = {"model": "gpt-4o", "stream": True,
                        "messages": [{"role": "user", "content": "slow stream [sim chunk_delay_ms=200 words=12]"}]}
                with http.stream("POST", "/v1/chat/completions", headers=stack.auth(), json=body) as response:
                    result["status"] = response.status_code
                    result["request_id"] = response.headers.get("x-request-id")
                    raw = b""
                    for part in response.iter_raw():
                        raw += part
                        if b"data: " in raw:
                            first_event.set()
                    result["raw"] = raw
            except Exception as error:  # noqa: BLE001 - reported by the main thread
                result["error"] = error
            finally:
                first_event.set()

        thread = threading.Thread(target=run_stream, daemon=True)
        thread.start()
        assert first_event.wait(10), "the stream did not start"
        assert "error" not in result, result.get("error")
        os.kill(stack.master_pid, signum)

        # New workers come up while the old ones drain.
        wait_until(lambda: len(stack.worker_pids() - old) == stack.workers, timeout=5, what="the new generation of workers")
        # Requests during the reload succeed.
        assert chat(http, stack, "during reload").status_code == 200

        thread.join(timeout=20)
        assert not thread.is_alive(), "the in-flight stream did not finish"
        assert "error" not in result, result.get("error")
        assert result["status"] == 200
        payloads = parse_sse(result["raw"])
        assert payloads[-1] == "[DONE]"
        assert not any(p.startswith('{"error"') for p in payloads), payloads[-2]
        assert stream_content(payloads) == expected_reply(12), "the stream was cut short"

        # Once drained, the old generation is gone: every worker is new.
        new = stack.wait_for_workers(timeout=5, excluding=old)
        assert not (new & old)
        assert not any(pid_alive(pid) for pid in old)
        row = stack.wait_for_audit(result["request_id"])
        assert row["status"] == 200 and row["error_code"] is None and row["completion_tokens"] == 12
        assert chat(http, stack, "after reload").status_code == 200


def worker_thread_cpus(pid: int) -> list[tuple[str, set[int]]]:
    """Each thread of a worker: its name and the CPUs it may run on."""
    threads = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            threads.append((f.read().strip(), os.sched_getaffinity(int(tid))))
    return threads


def is_bound_pair(name: str) -> bool:
    return name == "fcgi-requests-0" or name.startswith("NIO-ELT")


def bound_cpu(pid: int) -> int | None:
    """The one CPU a worker's request thread and its HTTP client loop share (None: not bound)."""
    pair = [cpus for name, cpus in worker_thread_cpus(pid) if is_bound_pair(name)]
    assert len(pair) == 2 and pair[0] == pair[1], f"the request thread and the client's loop: {pair}"
    return next(iter(pair[0])) if len(pair[0]) == 1 else None


def bound_cpus(stack: GatewayStack, excluding: set[int] = frozenset()) -> list[int | None]:
    """The CPU of every worker, once each has started its request thread and bound it."""
    def settled():
        pids = stack.wait_for_workers(excluding=excluding)
        try:
            return sorted((bound_cpu(pid) for pid in pids), key=lambda cpu: -1 if cpu is None else cpu)
        except AssertionError:
            return None  # still starting
    return wait_until(settled, timeout=10, what="the workers' CPU binding")


def test_each_worker_binds_its_request_thread_and_client_loop_to_one_cpu(simulator):
    allowed = sorted(os.sched_getaffinity(0))
    with own_stack(simulator, "cpus", workers=3) as stack, stack.http(timeout=15) as http:
        # Slot i takes the i-th allowed CPU, wrapping; with a single CPU there is nothing to choose.
        expected = sorted(allowed[slot % len(allowed)] for slot in range(3)) if len(allowed) > 1 else [None] * 3
        assert bound_cpus(stack) == expected
        for pid in stack.worker_pids():
            # Only those two: the main thread, the audit writer and the rest keep every CPU.
            others = [(name, cpus) for name, cpus in worker_thread_cpus(pid) if not is_bound_pair(name)]
            assert others and all(cpus == set(allowed) for _, cpus in others), others
        assert chat(http, stack, "bound").status_code == 200
        # A replacement worker takes its slot's CPU again.
        victim = sorted(stack.worker_pids())[0]
        os.kill(victim, signal.SIGKILL)
        assert bound_cpus(stack, excluding={victim}) == expected
        assert chat(http, stack, "after replacement").status_code == 200
    with own_stack(simulator, "nocpus", workers=2, serve_args=["--cpu-affinity", "none"]) as stack:
        assert bound_cpus(stack) == [None, None]
        for pid in stack.worker_pids():
            assert all(cpus == set(allowed) for _, cpus in worker_thread_cpus(pid))


def test_max_requests_recycles_workers(simulator):
    with own_stack(simulator, "maxreq", serve_args=["--max-requests", "5"]) as stack, stack.http(timeout=15) as http:
        initial = stack.wait_for_workers()
        seen = set(initial)
        request_ids = []
        for i in range(20):
            response = chat(http, stack, f"request {i} [sim words=3]")
            assert response.status_code == 200, (i, response.text)
            assert response.json()["choices"][0]["message"]["content"] == expected_reply(3)
            request_ids.append(response.headers["x-request-id"])
            seen |= stack.worker_pids()
        final = stack.wait_for_workers()
        assert final != initial, "no worker was recycled after 20 requests with --max-requests 5"
        # 20 requests at ≤5 per worker: at least 4 workers served, so at least 2 were started anew.
        assert len(seen) >= 4, f"worker pids seen: {sorted(seen)}"
        # No audit row was lost when a worker exited. The last answers' rows may still be in their
        # live worker's writer queue (it gathers up to 5 ms), so wait for them, boundedly.
        wanted = set(request_ids)
        try:
            wait_until(lambda: wanted <= {row["request_id"] for row in stack.audit_rows()}, timeout=10,
                       what="an audit row for every answer")
        except TimeoutError:
            rows = {row["request_id"] for row in stack.audit_rows()}
            raise AssertionError(f"missing audit rows: {wanted - rows}") from None


def test_recycled_and_reloaded_workers_exit_cleanly(simulator):
    """A worker that leaves on purpose (request budget reached, reload, stop) must exit with
    status 0, not crash on its way out."""
    with own_stack(simulator, "clean", workers=1, serve_args=["--max-requests", "2"]) as stack, \
            stack.http(timeout=15) as http:
        first = stack.wait_for_workers()
        for i in range(3):
            assert chat(http, stack, f"recycle {i}").status_code == 200
        stack.wait_for_workers(excluding=first)
        current = stack.worker_pids()
        os.kill(stack.master_pid, signal.SIGUSR2)
        stack.wait_for_workers(excluding=current)
        time.sleep(0.3)
        log = stack.gateway_log.read_text(errors="replace")
        crash_lines = [line for line in log.splitlines()
                       if "Fatal error" in line or "worker died" in line or "Signal" in line]
        assert not crash_lines, "workers crashed while exiting:\n" + "\n".join(crash_lines[:5])


@pytest.mark.parametrize("signum", [signal.SIGQUIT, signal.SIGTERM], ids=["SIGQUIT", "SIGTERM"])
def test_graceful_stop_finishes_inflight_request(simulator, signum):
    with own_stack(simulator, "stop") as stack, stack.http(timeout=30) as http:
        stack.wait_for_workers()
        result: dict = {}

        def slow_request():
            try:
                result["response"] = chat(http, stack, "slow answer [sim latency_ms=1500 words=4]")
            except Exception as error:  # noqa: BLE001
                result["error"] = error

        simulator_before = simulator.stats()["requests"]
        thread = threading.Thread(target=slow_request, daemon=True)
        thread.start()
        wait_until(lambda: simulator.stats()["requests"] > simulator_before, timeout=5,
                   what="the slow request to reach the simulator")
        os.kill(stack.master_pid, signum)
        thread.join(timeout=15)
        assert not thread.is_alive()
        assert "error" not in result, result.get("error")
        response = result["response"]
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == expected_reply(4)

        stack.master.wait(timeout=15)
        assert stack.master.returncode == 0
        assert not stack.socket.exists(), "the socket file was not removed"
        assert not stack.pid_file.exists(), "the pid file was not removed"
        assert not any(pid_alive(pid) for pid in stack._known_workers)
        row = stack.wait_for_audit(response.headers["x-request-id"])
        assert row["status"] == 200

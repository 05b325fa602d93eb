"""Pieces shared by the benchmark parts: logging, /proc readings, jq-compatible numbers,
child processes bounded in time, and wrk.

The results files were first written by jq; the helpers here (rounding half away from zero,
`//`-style defaults, number formatting) keep the figures and the printed lines the same.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

CLK_TCK = os.sysconf("SC_CLK_TCK")


class Fatal(Exception):
    """A setup step failed: the run stops (everything started is still stopped)."""


def log(message: str) -> None:
    # On stderr, so that stdout carries only the summary table.
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# /proc readings. A process or thread that is gone counts as zero: workers may be recycled.


def _stat_fields(path: str) -> list[str] | None:
    """The fields after the command name of a /proc stat file (0 = state, 1 = ppid, 11 = utime, 12 = stime)."""
    try:
        with open(path) as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_ticks(pids: Iterable[int]) -> int:
    """utime + stime of the given processes (all their threads), in clock ticks."""
    total = 0
    for pid in pids:
        fields = _stat_fields(f"/proc/{pid}/stat")
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total


def _thread_dirs(pids: Iterable[int]) -> Iterator[tuple[int, str]]:
    """(tid, /proc/PID/task/TID) for every thread of the given processes that still exists."""
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            yield int(tid), f"/proc/{pid}/task/{tid}"


def thread_ticks(pids: Iterable[int]) -> dict[int, tuple[str, int]]:
    """tid → (thread name with digit runs folded to N, utime + stime ticks), for every thread."""
    threads = {}
    for tid, path in _thread_dirs(pids):
        fields = _stat_fields(f"{path}/stat")
        if not fields:
            continue
        try:
            name = Path(f"{path}/comm").read_text().strip()
        except OSError:
            name = "unknown"
        # "NIO-ELT-0-#1" and "NIO-ELT-0-#2" are the same kind of thread.
        name = re.sub(r"N+", "N", re.sub(r"[0-9]", "N", name)).replace(" ", "_")
        threads[tid] = (name, int(fields[11]) + int(fields[12]))
    return threads


def _status_fields(path: str) -> dict[str, str]:
    try:
        with open(path) as f:
            return dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return {}


def status_kb(field: str, pids: Iterable[int]) -> int:
    """Sum of a kB field of /proc/PID/status (VmRSS, VmHWM) over the given processes."""
    total = 0
    for pid in pids:
        value = _status_fields(f"/proc/{pid}/status").get(field)
        if value:
            total += int(value.split()[0])
    return total


def status_value(pid: int, field: str) -> int:
    value = _status_fields(f"/proc/{pid}/status").get(field)
    return int(value.split()[0]) if value else 0


def context_switches(pids: Iterable[int]) -> int:
    """Voluntary + nonvoluntary context switches of every thread of the given processes.

    /proc/PID/status counts the main thread only, so every /proc/PID/task/TID/status is summed."""
    total = 0
    for _, path in _thread_dirs(pids):
        fields = _status_fields(f"{path}/status")
        for name in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
            if name in fields:
                total += int(fields[name].split()[0])
    return total


def listen_overflows() -> int:
    """TcpExt ListenOverflows: accept queue full → SYN dropped, the client retries after ~1 s."""
    try:
        lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines() if line.startswith("TcpExt:")]
        return int(dict(zip(lines[0], lines[1]))["ListenOverflows"])
    except (OSError, IndexError, KeyError, ValueError):
        return 0


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def mb(kb: float) -> str:
    return f"{kb / 1024:.1f}"


# --------------------------------------------------------------------------------------------
# Numbers as jq computed and printed them.


def jround(x: float) -> float:
    """jq's round: half away from zero (Python's round() rounds half to even)."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def r1(x: float | None) -> float | None:
    return None if x is None else jround(x * 10) / 10


def r3(x: float | None) -> float | None:
    return None if x is None else jround(x * 1000) / 1000


def alt(value, default):
    """jq's `value // default`: the default when the value is null or false (0 is kept)."""
    return default if value is None or value is False else value


def median(values: Iterable) -> float | None:
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def mean1(values: Iterable) -> float | None:
    present = [v for v in values if v is not None]
    return r1(sum(present) / len(present)) if present else None


def min_present(values: Iterable):
    present = [v for v in values if v is not None]
    return min(present) if present else None


def max_present(values: Iterable):
    present = [v for v in values if v is not None]
    return max(present) if present else None


def le(value, limit) -> bool:
    """jq's `value <= limit` for a number limit: null sorts before every number."""
    return value is None or value <= limit


def jq_str(value) -> str:
    """jq's `tostring` / string interpolation of a value."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e17:
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(normalise(value), separators=(",", ":"), ensure_ascii=False)


def normalise(value):
    """Integral floats as integers, as jq writes them (1000.0 → 1000)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e17:
        return int(value)
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(normalise(value), indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path, default=None):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


# --------------------------------------------------------------------------------------------
# Child processes bounded in time.


def run_bounded(cmd: list[str], stdout: Path, stderr: Path, timeout: float, env: dict | None = None,
                on_start: Callable[[subprocess.Popen], None] | None = None) -> tuple[int, float]:
    """Runs cmd with its output in files, like `timeout --kill-after=5 TIMEOUT cmd`:
    SIGTERM after `timeout` s, SIGKILL 5 s later. Returns (exit code, the child's own CPU
    seconds); 124 when it was stopped. The CPU comes from wait4's rusage of that very child, so
    other processes of this script finishing meanwhile do not count. `on_start` receives the
    process (e.g. to stop it should the run be interrupted)."""
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
    if on_start:
        on_start(proc)
    fired = threading.Event()

    def stop(signum: int) -> None:
        fired.set()
        try:
            os.kill(proc.pid, signum)
        except ProcessLookupError:
            pass
    timers = [threading.Timer(timeout, stop, (signal.SIGTERM,)), threading.Timer(timeout + 5, stop, (signal.SIGKILL,))]
    for timer in timers:
        timer.daemon = True
        timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:  # interrupted: the child must not outlive the run
        proc.kill()
        proc.wait()
        raise
    finally:
        for timer in timers:
            timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return (124 if fired.is_set() else proc.returncode), usage.ru_utime + usage.ru_stime


def stop_popen(proc: subprocess.Popen | None, signum: int = signal.SIGTERM, seconds: float = 3) -> None:
    """Signal, wait up to `seconds`, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(signum)
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# --------------------------------------------------------------------------------------------
# wrk (closed loop).


def write_wrk_script(path: Path, headers: list[tuple[str, str]], body: bytes) -> Path:
    """A wrk Lua script sending POST with these headers and this body."""
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    lines = ['wrk.method = "POST"']
    lines += [f"wrk.headers[{quoted(name)}] = {quoted(value)}" for name, value in headers]
    text = body.decode()
    if "]==]" in text:
        raise ValueError("the body contains the Lua long-bracket terminator ]==]")
    lines.append(f"wrk.body = [==[{text}]==]")
    path.write_text("\n".join(lines) + "\n")
    return path


def _latency_ms(value: str) -> float | None:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", value)
    if not match:
        return None
    number, unit = float(match.group(1)), match.group(2)
    ms = number / 1000 if unit == "us" else number * {"ms": 1, "s": 1000, "m": 60000}[unit]
    return float(f"{ms:.6g}")  # as awk printed it (0.814, not 0.8140000000000001)


def parse_wrk(text: str) -> dict:
    """requests/s, p50/p90/p99 (ms, from --latency), requests, non-2xx/3xx answers and socket errors."""
    def number(pattern: str, default=0.0):
        match = re.search(pattern, text, re.M)
        return float(match.group(1)) if match else default
    percentiles = {}
    for label, value in re.findall(r"^\s+(50|75|90|99)(?:\.000)?%\s+(\S+)", text, re.M):
        percentiles[label] = _latency_ms(value)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {"rps": number(r"^Requests/sec:\s+([0-9.]+)"),
            "p50_ms": percentiles.get("50") or 0, "p90_ms": percentiles.get("90") or 0,
            "p99_ms": percentiles.get("99") or 0,
            "requests": int(number(r"^\s*(\d+) requests in ")),
            "non2xx": int(number(r"Non-2xx or 3xx responses:\s+(\d+)")),
            "errors": sum(int(n) for n in errors.groups()) if errors else 0}


def run_wrk(script: Path, url: str, connections: int, duration: int, out: Path) -> dict:
    """One `wrk -t1 -cN -dDs --latency` run; its report is kept in `out`."""
    rc, _ = run_bounded(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
                        out, out.with_suffix(".err"), timeout=duration + 30)
    result = parse_wrk(out.read_text(errors="replace"))
    if rc != 0:
        result["failed"] = True
        log(f"wrk exited {rc}: {out.with_suffix('.err').read_text(errors='replace')[-300:]}")
    return result

"""``POST /price`` over HTTP: a uvicorn server in its own process, driven from this one.

``python -m bench.http_load [--rate 1000] [--duration 10] [--json]`` builds a demo store
and ruleset in a temporary directory (the benchmark catalog, 100 generated rules by
default), starts ``uvicorn --factory server.app:app_from_env`` with one worker on a free
loopback port, checks a response against the in-process engine, warms the server up, and
then sends 10-line carts on a **fixed open-loop schedule** (request *i* is due at
``t0 + i / rate``) over a few persistent keep-alive connections. Latency is measured from
the scheduled send time, so a stalled server (or a late client) shows up in the figures
instead of silently lowering the rate. Each connection is a thread with a blocking socket
and ``time.sleep`` for pacing (sub-millisecond wake-ups, unlike asyncio timers, whose
timeouts are rounded up to whole milliseconds). The server is always terminated.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.gen import generate
from engine.core.data import DataSet

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CONNECTIONS = 4
REQUEST_TIMEOUT_S = 5.0
STARTUP_TIMEOUT_S = 120.0
WARMUP_REQUESTS = 500


@dataclass
class Demo:
    """What the server serves and what the load sends."""

    env: dict[str, str]
    bodies: list[bytes]
    carts: list[dict[str, Any]]
    sources: dict[str, str]
    data: DataSet
    n_rules: int
    n_skus: int


def prepare(tmp: Path, *, n_rules: int, n_skus: int, seed: int, n_bodies: int = 500) -> Demo:
    """Write the store and the rules directory; return the server's environment and carts."""
    from engine.ledger.store import Store

    w = generate(n_skus=n_skus, n_customers=1_000, n_carts=0, n_rules=n_rules, seed=seed)
    rules_dir = tmp / "rules"
    rules_dir.mkdir()
    (rules_dir / "bench.rule").write_text(w.rule_text, encoding="utf-8")
    db_path = tmp / "pricer.duckdb"
    with Store(db_path) as store:
        store.load_frame("catalog", w.catalog)
        store.load_frame("standard_prices", w.standard_prices)
    env = {
        **os.environ,
        "PRICER_DATA_DIR": str(tmp),
        "PRICER_DB_PATH": str(db_path),
        "PRICER_RULES_DIR": str(rules_dir),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("PRICER_ADMIN_TOKEN", None)
    carts = w.latency_carts(n_bodies, lines=10, seed=23)
    return Demo(
        env=env,
        bodies=[_request(json.dumps(c).encode()) for c in carts],
        carts=carts,
        sources={str(rules_dir / "bench.rule"): w.rule_text},
        data=w.data,
        n_rules=n_rules,
        n_skus=n_skus,
    )


HEALTH_REQUEST = f"GET /health HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


def _request(body: bytes) -> bytes:
    head = (
        f"POST /price HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(demo: Demo, log_path: Path) -> Iterator[int]:
    """Run uvicorn (one worker) on a free loopback port; always stopped on exit."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "uvicorn", "--factory", "server.app:app_from_env",
        "--host", HOST, "--port", str(port), "--workers", "1",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=demo.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(proc, port, log_path)
        yield port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{log_path.read_text()}")
        try:
            with socket.create_connection((HOST, port), timeout=1.0) as sock:
                sock.sendall(HEALTH_REQUEST)
                status, _ = _read_response(sock, bytearray())
                if status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not become healthy in {STARTUP_TIMEOUT_S:.0f} s")


def _read_response(sock: socket.socket, buf: bytearray) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length body; ``buf`` keeps bytes read past it."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the response headers")
        buf += chunk
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    length = None
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None:
        raise ConnectionError("response without Content-Length")
    total = end + 4 + length
    while len(buf) < total:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed inside the response body")
        buf += chunk
    body = bytes(buf[end + 4 : total])
    del buf[:total]
    return status, body


class _Conn:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = bytearray()

    def roundtrip(self, request: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection((HOST, self.port), timeout=REQUEST_TIMEOUT_S)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buf = bytearray()
        try:
            self.sock.sendall(request)
            return _read_response(self.sock, self.buf)
        except (OSError, ValueError):
            self.close()
            raise

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


def check_answers(demo: Demo, port: int, n: int = 5) -> int:
    """Compare ``n`` HTTP answers with ``engine.api.quote`` in this process; mismatches."""
    from engine.api import compile_ruleset, quote

    plan = compile_ruleset(demo.sources, demo.data)
    conn = _Conn(port)
    bad = 0
    try:
        for i in range(n):
            status, body = conn.roundtrip(demo.bodies[i])
            want = quote(plan, demo.carts[i])
            got = json.loads(body) if status == 200 else None
            if got is None or got["lines"] != want["lines"] or got["totals"] != want["totals"]:
                bad += 1
    finally:
        conn.close()
    return bad


def drive(port: int, bodies: list[bytes], *, rate: float, duration: float) -> dict[str, Any]:
    """Open-loop load at ``rate`` requests/s for ``duration`` s; latency from schedule."""
    total = int(rate * duration)
    due = np.zeros(total)
    sent = np.zeros(total)
    done = np.full(total, np.nan)
    ok = np.zeros(total, dtype=bool)
    errors: list[str] = []
    counter = itertools.count()
    conns = [_Conn(port) for _ in range(CONNECTIONS)]
    for k in range(WARMUP_REQUESTS):  # closed-loop warm-up, not measured
        conns[k % CONNECTIONS].roundtrip(bodies[k % len(bodies)])
    start = time.perf_counter() + 0.05
    interval = 1.0 / rate

    def worker(conn: _Conn) -> None:
        while True:
            i = next(counter)
            if i >= total:
                return
            when = start + i * interval
            delay = when - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            due[i] = when
            sent[i] = time.perf_counter()
            try:
                status, _ = conn.roundtrip(bodies[i % len(bodies)])
                ok[i] = status == 200
                if not ok[i]:
                    errors.append(f"HTTP {status}")
            except Exception as exc:  # counted, never fatal: the run must finish
                errors.append(type(exc).__name__)
            done[i] = time.perf_counter()

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in conns]
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    gc.collect()
    gc.disable()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=duration + 60)
    finally:
        gc.enable()
        sys.setswitchinterval(old_interval)
        for c in conns:
            c.close()
    finished = ~np.isnan(done)
    lat = (done - due)[finished & ok] * 1e3
    svc = (done - sent)[finished & ok] * 1e3
    span = float(np.nanmax(done) - start) if finished.any() else float("nan")
    return {
        "rps": round(float(ok.sum()) / span, 1) if span > 0 else 0.0,
        "p50_ms": round(float(np.percentile(lat, 50)), 3) if len(lat) else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 3) if len(lat) else None,
        "p999_ms": round(float(np.percentile(lat, 99.9)), 3) if len(lat) else None,
        "max_ms": round(float(lat.max()), 3) if len(lat) else None,
        "service_p50_ms": round(float(np.percentile(svc, 50)), 3) if len(svc) else None,
        "service_p99_ms": round(float(np.percentile(svc, 99)), 3) if len(svc) else None,
        "errors": int(total - ok.sum()),
        "error_kinds": sorted(set(errors)),
        "requests": total,
        "target_rps": rate,
        "duration_s": duration,
        "connections": CONNECTIONS,
    }


def run(*, rate: float, duration: float, n_rules: int, n_skus: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pricer-bench-") as tmpdir:
        tmp = Path(tmpdir)
        demo = prepare(tmp, n_rules=n_rules, n_skus=n_skus, seed=seed)
        with server(demo, tmp / "server.log") as port:
            mismatches = check_answers(demo, port)
            # The floor of server framework + load generator: GET /health on the same schedule.
            floor = drive(port, [HEALTH_REQUEST], rate=rate, duration=min(duration, 3.0))
            result = drive(port, demo.bodies, rate=rate, duration=duration)
        result.update(
            health_baseline={k: floor[k] for k in ("rps", "p50_ms", "p99_ms", "errors")},
            answer_mismatches=mismatches,
            rules=n_rules,
            skus=n_skus,
            lines_per_cart=10,
            server="uvicorn --factory server.app:app_from_env, 1 worker, 127.0.0.1",
        )
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--rules", type=int, default=100, help="rules in the demo ruleset")
    parser.add_argument("--skus", type=int, default=10_000, help="SKUs in the demo catalog")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    result = run(
        rate=args.rate, duration=args.duration, n_rules=args.rules, n_skus=args.skus, seed=args.seed
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>16}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

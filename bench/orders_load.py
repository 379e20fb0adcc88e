"""Orders over HTTP: ``POST /orders/validate`` latency and ``POST /orders/commit`` throughput.

``python -m bench.orders_load [--validate N] [--commits N] [--clients C] [--json]`` writes
the demo data and the demo ruleset (``rules/``: every promotion form, budgets, uses per
customer, gift stock) into a temporary DuckDB file, starts ``pricer serve`` (uvicorn, one
worker) on a free loopback port, and then:

* sends ``N`` validate requests one after the other (5-line orders of demo customers)
  and reports p50 / p99 latency in ms;
* sends ``N`` commits with distinct order ids from ``C`` threads, each with its own
  keep-alive connection, and reports commits per second (commits are serialized in the
  server by design: one writer, one transaction each);
* checks the ledger afterwards: every acknowledged commit is there, and nothing overdrew.

The server is always terminated.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from engine.core.money import parse_money

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _orders(n: int, seed: int, prefix: str) -> list[dict[str, Any]]:
    from server.demo import generate

    tables = generate(seed=2026, n_skus=3000, n_customers=200)
    customers = tables["demo_customers"].to_dicts()
    skus = [
        s
        for s in tables["standard_prices"]["sku"].unique().sort().to_list()
        if not s.startswith("KIT")
    ]
    packs = {
        r["sku"]: int(r["pack"])
        for r in tables["catalog"].select("sku", "pack").drop_nulls().to_dicts()
    }
    rng = random.Random(seed)
    out = []
    for i in range(n):
        c = rng.choice(customers)
        customer = {k: c[k] for k in ("id", "tier", "region") if c.get(k)}
        picked = [
            rng.choice(skus) for _ in range(5)
        ]  # quantities in whole packs where the catalog has them
        lines = [
            {"id": str(j + 1), "sku": sku, "qty": str(rng.randint(1, 20) * packs.get(sku, 1))}
            for j, sku in enumerate(picked)
        ]
        out.append(
            {"id": f"{prefix}-{i:06d}", "date": "2026-11-22", "customer": customer, "lines": lines}
        )
    return out


def _prepare(tmp: Path) -> tuple[Path, Path]:
    from engine.ledger.store import Store
    from server.demo import generate

    db = tmp / "orders.duckdb"
    with Store(db) as store:
        for name, frame in generate(seed=2026, n_skus=3000, n_customers=200).items():
            store.load_frame(name, frame)
    return db, ROOT / "rules"


def run(n_validate: int, n_commits: int, clients: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pricer-orders-") as tmp_name:
        db, rules = _prepare(Path(tmp_name))
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        env.pop("PRICER_ADMIN_TOKEN", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--db", str(db), "--rules", str(rules), "--port", str(port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("the server exited at startup")
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not start in 120 s")
                time.sleep(0.2)
            return _measure(url, n_validate, n_commits, clients, seed)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _measure(url: str, n_validate: int, n_commits: int, clients: int, seed: int) -> dict[str, Any]:
    validate_orders = _orders(n_validate + 50, seed, "V")
    with httpx.Client(base_url=url, timeout=30) as client:
        for order in validate_orders[:50]:  # warm-up: first-seen customer contexts
            client.post("/orders/validate", json=order)
        latencies = []
        for order in validate_orders[50:]:
            t = time.perf_counter()
            response = client.post("/orders/validate", json=order)
            latencies.append(time.perf_counter() - t)
            assert response.status_code == 200, response.text
    commit_orders = _orders(n_commits, seed + 1, "C")
    acknowledged: list[str] = []
    refused: dict[str, int] = {}
    lock = threading.Lock()
    chunks = [commit_orders[i::clients] for i in range(clients)]

    def worker(orders: list[dict[str, Any]]) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for order in orders:
                response = client.post("/orders/commit", json=order)
                with lock:
                    if response.status_code == 200:
                        acknowledged.append(order["id"])
                    else:  # e.g. an order with a no_price line: order_invalid (a realistic refusal)
                        body = response.json()
                        why = f"{response.status_code} {body.get('code')}: " + ",".join(
                            sorted({e["code"] for e in body.get("errors", [])})
                        )
                        refused[why] = refused.get(why, 0) + 1

    threads = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    with httpx.Client(base_url=url, timeout=30) as client:
        missing = [o for o in acknowledged if client.get(f"/orders/{o}").status_code != 200]
        quotas = client.get("/quotas/promotions").json()["promotions"]
        currency = client.get("/rulesets/current").json()["currency"]
    overdrawn = [
        q["promotion"] for q in quotas
        if q.get("budget") and parse_money(q["budget"]["used"], currency) > parse_money(q["budget"]["limit"], currency)
    ]  # fmt: skip
    ms = np.array(latencies) * 1000
    return {
        "validate_ms": {
            "p50": round(float(np.percentile(ms, 50)), 2),
            "p99": round(float(np.percentile(ms, 99)), 2),
            "n": len(ms),
        },
        "commits_per_s": round(len(acknowledged) / elapsed, 1),
        "commits": len(acknowledged),
        "commit_refusals": refused,
        "clients": clients,
        "lines_per_order": 5,
        "acknowledged_missing": len(missing),
        "overdrawn": overdrawn,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="orders over HTTP: validate latency, commit throughput"
    )
    parser.add_argument("--validate", type=int, default=1000, help="validate requests timed")
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", action="store_true", help="one JSON line on stdout")
    args = parser.parse_args(argv)
    result = run(args.validate, args.commits, args.clients, args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        v = result["validate_ms"]
        print(f"validate: p50 {v['p50']} ms, p99 {v['p99']} ms over {v['n']} requests")
        print(
            f"commit: {result['commits_per_s']} commits/s ({result['commits']} commits, {result['clients']} clients)"
        )
    return 0 if not result["acknowledged_missing"] and not result["overdrawn"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The ledger against a real server process: concurrent commits racing for a budget and
per-customer uses never overdraw them, and a SIGKILL in the middle of a stream of commits
loses no acknowledged commit and leaves no half-written one (docs/orders.md).

Each test starts ``pricer serve`` (uvicorn, one worker) on a free port and a temporary
DuckDB file, and talks to it over real HTTP connections (one httpx client per thread).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from engine.core.money import parse_money
from engine.ledger.store import Store

ROOT = Path(__file__).resolve().parents[2]

RULESET = """\
ruleset "live" currency CNY timezone "Asia/Shanghai" rounding half_up

pricelist "standard" priority 0 {
  table standard_prices
}

promotion "ten budget" priority 10 {
  each line: percent_off 10%
  budget 500.00
}

promotion "welcome" priority 0 {
  order subtotal >= 10.00: amount_off 5.00
  uses 1 per customer
}
"""

BUDGET = 50_000  # minor units
CUSTOMERS = 20
CREDIT = "500.00"  # per customer in the race test: room for exactly 2 of its orders (see there)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    db: Path
    rules: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = _free_port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--db", str(self.db), "--rules", str(self.rules), "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the server exited at startup"
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not start in 30 s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def _serve(tmp_path: Path, ruleset: str, accounts: pl.DataFrame | None = None) -> Iterator[Server]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "main.rule").write_text(ruleset, encoding="utf-8")
    db = tmp_path / "ledger.duckdb"
    with Store(db) as store:
        store.load_frame("catalog", pl.DataFrame({"sku": ["A"], "base_unit": ["pcs"]}))
        store.load_frame("standard_prices", pl.DataFrame({"sku": ["A"], "price": ["20.00"]}))
        if accounts is not None:
            store.load_frame("accounts", accounts)
    srv = Server(db=db, rules=rules)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from _serve(tmp_path, RULESET)


@pytest.fixture
def credit_server(tmp_path: Path) -> Iterator[Server]:
    """RULESET with a credit check: every customer has CREDIT of credit."""
    accounts = pl.DataFrame(
        {
            "customer_id": [f"D{c:02d}" for c in range(CUSTOMERS)],
            "credit_limit": [CREDIT] * CUSTOMERS,
        }
    )
    yield from _serve(tmp_path, RULESET + "\ncredit {\n  table accounts\n}\n", accounts)


def _order(n: int) -> dict[str, Any]:
    return {
        "id": f"O-{n:04d}",
        "date": "2026-11-22",
        "customer": {"id": f"D{n % CUSTOMERS:02d}"},
        "lines": [{"id": "1", "sku": "A", "qty": "10"}],
    }


def _discount_of(response: dict[str, Any], rule: str) -> int:
    total = 0
    for line in response["quote"]["lines"]:
        for adj in line.get("adjustments", []):
            if adj["rule"] == rule:
                total -= parse_money(adj["amount"], "CNY")
    return total


def _ledger_figures(db: Path) -> dict[str, Any]:
    with Store(db) as store:
        cur = store.cursor()
        orders = cur.execute(
            "SELECT order_id, status, net_total, response FROM ledger_orders WHERE status = 'committed'"
        ).fetchall()
        consumed = dict(
            cur.execute(
                "SELECT c.kind || ':' || coalesce(c.promotion, ''), sum(c.amount + c.qty) FROM ledger_consumption c"
                " JOIN ledger_orders o USING (order_id) WHERE o.status = 'committed' GROUP BY 1"
            ).fetchall()
        )
        uses = cur.execute(
            "SELECT c.customer_id, sum(c.qty) FROM ledger_consumption c JOIN ledger_orders o USING (order_id)"
            " WHERE o.status = 'committed' AND c.kind = 'use' AND c.promotion = 'welcome' GROUP BY 1"
        ).fetchall()
        lines_net = dict(
            cur.execute("SELECT order_id, sum(net_amount) FROM ledger_lines GROUP BY 1").fetchall()
        )
        recorded = {r[0] for r in cur.execute("SELECT order_id FROM ledger_orders").fetchall()}
        line_orders = {
            r[0] for r in cur.execute("SELECT DISTINCT order_id FROM ledger_lines").fetchall()
        }
        consumption_orders = {
            r[0] for r in cur.execute("SELECT DISTINCT order_id FROM ledger_consumption").fetchall()
        }
    import json

    return {
        "orders": {
            o: (s, int(n), json.loads(r) if isinstance(r, str) else r) for o, s, n, r in orders
        },
        "consumed": {k: int(v) for k, v in consumed.items()},
        "uses": {c: int(n) for c, n in uses},
        "lines_net": {k: int(v) for k, v in lines_net.items()},
        "recorded": recorded,  # any status: a cancelled order's rows stay
        "line_orders": line_orders,
        "consumption_orders": consumption_orders,
    }


def _assert_consistent(figures: dict[str, Any]) -> None:
    """The ledger's sums equal the committed orders' own figures, and nothing overdrew."""
    orders = figures["orders"]
    assert figures["consumed"].get("budget:ten budget", 0) == sum(
        _discount_of(r, "ten budget") for _, _, r in orders.values()
    )
    assert figures["consumed"].get("budget:ten budget", 0) <= BUDGET
    assert all(n <= 1 for n in figures["uses"].values()), figures["uses"]
    for order_id, (_, net, _) in orders.items():
        assert figures["lines_net"][order_id] == net
    # no half-written order: lines and consumption only for recorded orders
    assert figures["line_orders"] <= figures["recorded"]
    assert figures["consumption_orders"] <= figures["recorded"]


def test_concurrent_commits_never_overdraw(credit_server: Server) -> None:
    """200 commits race for a 500.00 budget, one welcome per customer and 500.00 of credit
    per customer. An order is 200.00 less 20.00 of budget while it lasts, less 5.00 welcome
    on the customer's first: 175.00 to 200.00. Two orders take at most 395.00 and three at
    least 535.00, so whatever the interleaving exactly 2 of each customer's 10 orders are
    committed and the other 8 are refused (422 credit_exceeded)."""
    server = credit_server
    n = 200
    local = threading.local()

    def commit(i: int) -> tuple[int, dict[str, Any]]:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=server.url, timeout=60)
        response = client.post("/orders/commit", json=_order(i))
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(commit, range(n)))
    committed = [body for status, body in results if status == 200]
    refused = [body for status, body in results if status != 200]
    assert len(committed) == 2 * CUSTOMERS, [
        b for b in refused if b.get("code") != "order_invalid"
    ][:3]
    assert {(b["code"], tuple(e["code"] for e in b["errors"])) for b in refused} == {
        ("order_invalid", ("credit_exceeded",))
    }
    assert len(refused) == n - 2 * CUSTOMERS
    given = sum(_discount_of(body, "ten budget") for body in committed)
    assert given == BUDGET  # 40 orders want 20.00 each: exactly the 500.00 budget is given
    welcomed = sum(
        1
        for body in committed
        if any(
            a["rule"] == "welcome" for line in body["quote"]["lines"] for a in line["adjustments"]
        )
    )
    assert welcomed == CUSTOMERS  # one use per customer, whatever the interleaving
    credit = {}
    for body in committed:
        [item] = [c for c in body["consumed"] if c["kind"] == "credit"]
        assert item["amount"] == body["quote"]["totals"]["gross"]
        credit[item["customer_id"]] = credit.get(item["customer_id"], 0) + parse_money(
            item["amount"], "CNY"
        )
    assert len(credit) == CUSTOMERS and all(35_000 <= used <= 39_500 for used in credit.values()), (
        credit
    )
    quotas = httpx.get(f"{server.url}/quotas/promotions").json()["promotions"]
    assert {q["promotion"]: q.get("budget", {}).get("remaining") for q in quotas}[
        "ten budget"
    ] == "0.00"

    # cancel one welcomed order that got budget: /price (the in-memory view) gives both back
    cancelled = next(
        b for b in committed if _discount_of(b, "welcome") and _discount_of(b, "ten budget") == 2000
    )
    customer = next(c["customer_id"] for c in cancelled["consumed"] if c["kind"] == "credit")
    cart = {
        "date": "2026-11-22",
        "customer": {"id": customer},
        "lines": [{"id": "1", "sku": "A", "qty": "10"}],
    }
    before = httpx.post(f"{server.url}/price", json=cart).json()
    assert [
        a["rule"] for line in before["lines"] for a in line["adjustments"]
    ] == []  # budget spent, welcome used
    assert (
        httpx.post(f"{server.url}/orders/{cancelled['order_id']}/cancel").json()["status"]
        == "cancelled"
    )
    after = httpx.post(f"{server.url}/price", json=cart).json()
    assert after["totals"]["net"] == "175.00"  # 200.00 - 20.00 released budget - 5.00 welcome again
    assert (
        httpx.post(f"{server.url}/orders/commit", json={**cart, "id": "AFTER"}).status_code == 200
    )  # its credit is free again

    server.stop()
    figures = _ledger_figures(server.db)
    assert len(figures["orders"]) == 2 * CUSTOMERS  # one cancelled, one more committed
    assert figures["consumed"]["budget:ten budget"] == BUDGET
    assert (
        sorted(figures["uses"].values()) == [1] * CUSTOMERS
    )  # the cancelled order's use went to AFTER
    _assert_consistent(figures)


def test_sigkill_mid_stream_loses_no_acknowledged_commit(server: Server) -> None:
    acknowledged: set[str] = set()
    sent: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(10_000))

    def stream() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            while not stop.is_set():
                with lock:
                    order = _order(next(counter))
                    sent.add(order["id"])
                try:
                    response = client.post("/orders/commit", json=order)
                except httpx.HTTPError:
                    return  # the server died under this request: not acknowledged
                if response.status_code == 200:
                    with lock:
                        acknowledged.add(order["id"])

    threads = [threading.Thread(target=stream) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 60 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()  # SIGKILL, commits in flight
    stop.set()
    for t in threads:
        t.join(timeout=15)
    assert len(acknowledged) >= 60
    server.start()  # the same file: DuckDB replays its write-ahead log
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for order_id in sorted(acknowledged):
            got = client.get(f"/orders/{order_id}")
            assert got.status_code == 200, order_id
            assert got.json()["status"] == "committed"
        # after the restart, commits go on from what survived, and an acknowledged id replays
        again = client.post("/orders/commit", json=_order(int(sorted(acknowledged)[0][2:])))
        assert again.headers.get("Idempotent-Replay") == "true"
    server.stop()
    figures = _ledger_figures(server.db)
    assert acknowledged <= set(figures["orders"])
    assert set(figures["orders"]) <= sent  # nothing appears that was never sent
    _assert_consistent(figures)


SPECIAL_RULESET = """\
ruleset "live" currency CNY timezone "Asia/Shanghai" rounding half_up

pricelist "standard" priority 0 {
  table standard_prices
}

special prices {
  table special_prices
}
"""


def test_concurrent_commits_never_overdraw_a_special_quota(tmp_path: Path) -> None:
    """200 orders of 1 A each race for a project special price with a quota of 50 units:
    exactly 50 units are sold at the special price, whatever the interleaving."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "main.rule").write_text(SPECIAL_RULESET, encoding="utf-8")
    db = tmp_path / "ledger.duckdb"
    with Store(db) as store:
        store.load_frame("catalog", pl.DataFrame({"sku": ["A"], "base_unit": ["pcs"]}))
        store.load_frame("standard_prices", pl.DataFrame({"sku": ["A"], "price": ["20.00"]}))
        store.load_frame(
            "special_prices",
            pl.DataFrame(
                {
                    "customer_id": ["D1"],
                    "project": ["P-1"],
                    "sku": ["A"],
                    "price": ["15.00"],
                    "qty_quota": ["50"],
                }
            ),
        )
    srv = Server(db=db, rules=rules)
    srv.start()
    try:
        local = threading.local()

        def commit(i: int) -> tuple[int, dict[str, Any]]:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = httpx.Client(base_url=srv.url, timeout=60)
            order = {"id": f"S-{i:04d}", "date": "2026-11-22", "customer": {"id": "D1"}, "project": "P-1",
                     "lines": [{"id": "1", "sku": "A", "qty": "1"}]}  # fmt: skip
            response = client.post("/orders/commit", json=order)
            return response.status_code, response.json()

        with ThreadPoolExecutor(max_workers=32) as pool:
            results = list(pool.map(commit, range(200)))
        assert [s for s, _ in results] == [200] * 200
        special_units = sum(
            1
            for _, body in results
            for line in body["quote"]["lines"]
            for sub in line.get("sublines", [])
            if sub.get("special")
        )
        assert special_units == 50
        quota = httpx.get(
            f"{srv.url}/quotas/special/D1", params={"project": "P-1", "sku": "A"}
        ).json()["quotas"][0]
        assert quota["qty_remaining"] == "0"
    finally:
        srv.stop()
    with Store(db) as store:
        row = (
            store.cursor()
            .execute("SELECT sum(qty) FROM ledger_consumption WHERE kind = 'special'")
            .fetchone()
        )
    assert row is not None and int(row[0]) == 50_000

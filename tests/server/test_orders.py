"""POST /orders/validate, /orders/commit, /orders/{id}/cancel and GET /quotas: every check
with its figures, idempotent commits, cancel releasing exactly what was consumed, refusals
with stable codes (docs/orders.md)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from engine.ledger.committed import Consumption, OrderRecord, QuotaExhausted
from engine.ledger.store import Store
from server.app import create_app
from server.settings import Settings

RULESET = """\
ruleset "orders" currency CNY timezone "Asia/Shanghai" rounding half_up

pricelist "standard" priority 0 {
  table standard_prices
}

promotion "B 10% budget" priority 20 {
  each line where sku == "B": percent_off 10%
  budget 50.00
}

promotion "welcome" priority 10 {
  order subtotal >= 100.00: amount_off 10.00
  uses 1 per customer
}

promotion "every 200 a G" priority 5 {
  order every 200.00: gift 1 of "G"
  gift stock 3
}

approval "everyone" priority 0 {
  up to 3%: approved
  up to 10%: sales_manager
  above: rejected
}

credit {
  table accounts
}

sellable {
  table assortment by customer.group
}

stock plan {
  table stock_plans policy block
}

rebate payment {
  max 10% of order
}
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "main.rule").write_text(RULESET, encoding="utf-8")
    db = tmp_path / "p.duckdb"
    with Store(db) as store:
        store.load_frame("catalog", pl.DataFrame({
            "sku": ["A", "B", "G", "Z"], "base_unit": ["pcs"] * 4, "min_qty": ["6", "", "", ""], "pack": ["3", "", "", ""],
            "units": ["box=12", "", "", ""],
        }))  # fmt: skip
        store.load_frame(
            "standard_prices",
            pl.DataFrame(
                {"sku": ["A", "B", "G", "Z"], "price": ["10.00", "20.00", "5.00", "1.00"]}
            ),
        )
        store.load_frame("accounts", pl.DataFrame({
            "customer_id": ["D1", "D2"], "credit_limit": ["5000.00", "100.00"], "outstanding": ["0", "50.00"],
            "prepaid": ["0", "10.00"], "rebate_balance": ["30.00", "0"],
        }))  # fmt: skip
        store.load_frame(
            "assortment", pl.DataFrame({"customer_group": ["south"] * 3, "sku": ["A", "B", "G"]})
        )
        store.load_frame(
            "fx_rates",
            pl.DataFrame(
                {"from": ["CNY"], "to": ["USD"], "date": ["2026-01-01"], "rate": ["0.14"]}
            ),
        )
        store.load_frame(
            "stock_plans",
            pl.DataFrame(
                {"customer_id": ["D1"], "sku": ["A"], "month": ["2026-11"], "qty": ["30"]}
            ),
        )
    with TestClient(create_app(Settings(db_path=db, rules_dir=rules))) as test_client:
        yield test_client


def order(
    order_id: str, *lines: dict[str, Any], customer: str = "D1", **extra: Any
) -> dict[str, Any]:
    return {
        "id": order_id,
        "date": "2026-11-22",
        "customer": {"id": customer, "group": "south"},
        "lines": list(lines),
        **extra,
    }


def codes(findings: list[dict[str, Any]]) -> list[tuple[str | None, str]]:
    return sorted((f.get("line"), f["code"]) for f in findings)


def test_a_clean_order_validates_ok(client: TestClient) -> None:
    body = client.post(
        "/orders/validate", json=order("O1", {"id": "1", "sku": "A", "qty": "6"})
    ).json()
    assert (body["ok"], body["errors"], body["warnings"]) == (True, [], [])
    assert body["quote"]["totals"]["net"] == "60.00"


def test_every_check_at_once(client: TestClient) -> None:
    body = client.post("/orders/validate", json=order(
        "O2",
        {"id": "1", "sku": "A", "qty": "7"},                              # 7 >= 6 but not a multiple of 3
        {"id": "2", "sku": "A", "qty": "3", "expected_net": "29.00"},     # below 6; stale expected net
        {"id": "3", "sku": "Z", "qty": "1"},                              # not in group south's assortment
        {"id": "4", "sku": "NOPE", "qty": "1"},                           # unknown SKU
        {"id": "5", "sku": "A", "qty": "2", "unit": "crate"},             # unknown unit
        {"id": "6", "sku": "B", "qty": "5", "manual_discount": "7%"},     # waits for a sales manager
        {"id": "7", "sku": "B", "qty": "1", "manual_discount": "20%"},    # rejected
        {"id": "8", "sku": "A", "qty": "24"},                             # 7 + 3 + 24 = 34 A, plan 30 (block)
    )).json()  # fmt: skip
    assert body["ok"] is False
    assert codes(body["errors"]) == [
        ("1", "exceeds_stock_plan"), ("1", "not_pack_multiple"), ("2", "below_min_qty"), ("2", "price_changed"),
        ("3", "not_sellable"), ("4", "unknown_sku"), ("5", "unknown_unit"), ("7", "discount_rejected"),
    ]  # fmt: skip
    assert codes(body["warnings"]) == [("6", "needs_approval")]
    found = {(f.get("line"), f["code"]): f for f in body["errors"] + body["warnings"]}
    # priced lines 70 + 30 + 1 + 90 + 18 + 240 = 449.00 take "welcome" (10.00): line 2 gets 10 x 30/449 = 0.67
    assert (found[("2", "price_changed")]["expected"], found[("2", "price_changed")]["actual"]) == (
        "29.00",
        "29.33",
    )
    assert (found[("2", "below_min_qty")]["qty"], found[("2", "below_min_qty")]["min_qty"]) == (
        "3",
        "6",
    )
    assert found[("1", "not_pack_multiple")]["pack"] == "3"
    assert {k: found[("1", "exceeds_stock_plan")][k] for k in ("planned", "committed", "ordered", "month", "severity")} == {
        "planned": "30", "committed": "0", "ordered": "34", "month": "2026-11", "severity": "error",
    }  # fmt: skip
    assert found[("6", "needs_approval")]["approval_level"] == "sales_manager"


def test_credit_counts_prepaid_and_the_accepted_rebate_payment(client: TestClient) -> None:
    # D2: 100.00 - 50.00 + 10.00 = 60.00 available; 4 B = 80.00 - 8.00 (B 10%) = 72.00
    body = client.post(
        "/orders/validate", json=order("O3", {"id": "1", "sku": "B", "qty": "4"}, customer="D2")
    ).json()
    [credit] = body["errors"]
    assert (credit["code"], credit["order_total"], credit["available"]) == (
        "credit_exceeded",
        "72.00",
        "60.00",
    )
    # D1 pays 50.00 from a 30.00 rebate balance, at most 10% of 180.00 - 10.00 welcome = 170.00: 17.00 accepted
    body = client.post(
        "/orders/validate",
        json=order("O4", {"id": "1", "sku": "A", "qty": "18"}, rebate_payment="50.00"),
    ).json()
    [capped] = body["warnings"]
    assert (capped["code"], capped["requested"], capped["allowed"]) == (
        "rebate_capped",
        "50.00",
        "17.00",
    )
    assert body["ok"] is True


def test_credit_is_consumed_by_commits_and_released_by_cancel(client: TestClient) -> None:
    # D2: 100.00 - 50.00 + 10.00 = 60.00 available; each order is 6 A = 60.00
    first = client.post(
        "/orders/commit", json=order("K1", {"id": "1", "sku": "A", "qty": "6"}, customer="D2")
    )
    assert first.status_code == 200, first.text
    assert [(c["kind"], c["customer_id"], c["amount"]) for c in first.json()["consumed"]] == [
        ("credit", "D2", "60.00")
    ]
    for order_id in ("K2", "K3"):
        refused = client.post(
            "/orders/commit",
            json=order(order_id, {"id": "1", "sku": "A", "qty": "6"}, customer="D2"),
        )
        assert (refused.status_code, refused.json()["code"]) == (422, "order_invalid")
        [credit] = refused.json()["errors"]
        assert (
            credit["code"],
            credit["order_total"],
            credit["available"],
            credit["committed"],
        ) == ("credit_exceeded", "60.00", "0.00", "60.00")
        assert client.get(f"/orders/{order_id}").status_code == 404
    assert client.post("/orders/K1/cancel").status_code == 200
    assert (
        client.post(
            "/orders/commit", json=order("K2", {"id": "1", "sku": "A", "qty": "6"}, customer="D2")
        ).status_code
        == 200
    )


def test_the_transaction_refuses_to_overdraw_credit(client: TestClient) -> None:
    """A credit consumption carries its limit; the commit's re-check refuses past it."""
    ledger = client.app.state.runtime.store.ledger  # type: ignore[attr-defined]
    import datetime as dt

    def record(order_id: str, amount: int) -> None:
        item = Consumption("credit", customer_id="D2", amount=amount, limit_amount=6000)
        ledger.record(
            OrderRecord(
                order_id,
                "D2",
                None,
                None,
                dt.date(2026, 11, 22),
                "CNY",
                (0, 0, 0, 0, 0),
                {},
                (),
                (item,),
            )
        )

    record("T1", 6000)
    with pytest.raises(QuotaExhausted) as err:
        record("T2", 1)
    assert (err.value.used, err.value.asked, err.value.limit) == (6000, 1, 6000)


def test_a_rebate_balance_is_paid_out_once(client: TestClient) -> None:
    # D1: balance 30.00. 20 B = 400.00 - 40.00 (B 10%) - 10.00 welcome = 350.00, cap 10% = 35.00: 30.00 applied
    first = client.post(
        "/orders/commit",
        json=order("R1", {"id": "1", "sku": "B", "qty": "20"}, rebate_payment="30.00"),
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["rebate_applied"] == "30.00"
    consumed = {c["kind"]: c for c in body["consumed"]}
    assert (consumed["rebate_payment"]["amount"], consumed["credit"]["amount"]) == (
        "30.00",
        "320.00",
    )
    # R2: 400.00 - 10.00 (the budget's rest) = 390.00, cap 39.00, but nothing is left of the balance
    second = client.post(
        "/orders/commit",
        json=order("R2", {"id": "1", "sku": "B", "qty": "20"}, rebate_payment="30.00"),
    )
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["rebate_applied"] == "0.00"
    [capped] = body["warnings"]
    assert (capped["code"], capped["requested"], capped["allowed"]) == (
        "rebate_capped",
        "30.00",
        "0.00",
    )
    assert "rebate_payment" not in {c["kind"] for c in body["consumed"]}
    assert {c["kind"]: c["amount"] for c in body["consumed"] if c["kind"] == "credit"} == {
        "credit": "390.00"
    }
    # cancelling R1 gives its 30.00 back
    assert client.post("/orders/R1/cancel").status_code == 200
    again = client.post(
        "/orders/validate",
        json=order("R3", {"id": "1", "sku": "B", "qty": "20"}, rebate_payment="30.00"),
    ).json()
    assert again["warnings"] == []  # 390.00 x 10% = 39.00 >= the 30.00 balance back in full


def test_a_negative_rebate_payment_is_refused(client: TestClient) -> None:
    for path in ("/orders/validate", "/orders/commit"):
        response = client.post(
            path, json=order("N1", {"id": "1", "sku": "A", "qty": "6"}, rebate_payment="-50.00")
        )
        assert (response.status_code, response.json()["code"]) == (422, "bad_rebate_payment")
    assert client.get("/orders/N1").status_code == 404


def test_expected_total_is_checked(client: TestClient) -> None:
    body = client.post(
        "/orders/validate",
        json=order("O5", {"id": "1", "sku": "A", "qty": "6"}, expected_total="59.00"),
    ).json()
    assert [(f["code"], f["expected"], f["actual"]) for f in body["errors"]] == [
        ("price_changed", "59.00", "60.00")
    ]


def promotions(client: TestClient, customer: str = "D1") -> dict[str, Any]:
    body = client.get("/quotas/promotions", params={"customer_id": customer}).json()
    return {p["promotion"]: p for p in body["promotions"]}


def test_commit_consumes_once_and_cancel_releases_exactly(client: TestClient) -> None:
    # 15 B = 300.00; B 10% = 30.00 (budget 50.00); welcome 10.00; one G (300 >= 200), stock 3
    first = client.post("/orders/commit", json=order("C1", {"id": "1", "sku": "B", "qty": "15"}))
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "committed" and body["quote"]["totals"]["net"] == "260.00"
    assert sorted((c["kind"], c.get("promotion"), c.get("amount") or c.get("qty")) for c in body["consumed"]) == [
        ("budget", "B 10% budget", "30.00"), ("budget", "welcome", "10.00"), ("credit", None, "260.00"),
        ("gift_stock", "every 200 a G", "1"), ("use", "welcome", "1"),  # a use only of "uses 1 per customer"
    ]  # fmt: skip
    quotas = promotions(client)
    assert quotas["B 10% budget"]["budget"] == {
        "limit": "50.00",
        "used": "30.00",
        "remaining": "20.00",
    }
    assert quotas["welcome"]["uses"] == {"customer_id": "D1", "used": "1", "remaining": "0"}
    assert quotas["every 200 a G"]["gift_stock"] == {"limit": "3", "used": "1", "remaining": "2"}

    again = client.post("/orders/commit", json=order("C1", {"id": "1", "sku": "B", "qty": "15"}))
    assert again.status_code == 200 and again.headers["Idempotent-Replay"] == "true"
    assert again.json() == body
    other = client.post("/orders/commit", json=order("C1", {"id": "1", "sku": "B", "qty": "16"}))
    assert (other.status_code, other.json()["code"]) == (
        409,
        "order_id_reused",
    )  # the same id for another order
    assert promotions(client)["B 10% budget"]["budget"]["used"] == "30.00"  # nothing more consumed

    # a second order sees what remains: budget 20.00 of the 30.00 it would get, no welcome
    quote = client.post(
        "/price",
        json={
            k: v for k, v in order("-", {"id": "1", "sku": "B", "qty": "15"}).items() if k != "id"
        },
    ).json()
    assert [(a["rule"], a["amount"]) for a in quote["lines"][0]["adjustments"]] == [
        ("B 10% budget", "-20.00")
    ]

    cancelled = client.post("/orders/C1/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert sorted((c["kind"], c.get("amount") or c.get("qty")) for c in cancelled.json()["released"]) == [
        ("budget", "10.00"), ("budget", "30.00"), ("credit", "260.00"), ("gift_stock", "1"), ("use", "1"),
    ]  # fmt: skip
    quotas = promotions(client)
    assert quotas["B 10% budget"]["budget"]["used"] == "0.00"
    assert quotas["welcome"]["uses"]["remaining"] == "1"
    assert quotas["every 200 a G"]["gift_stock"]["remaining"] == "3"
    # /price prices against the in-memory view: the budget and D1's welcome are back
    quote = client.post(
        "/price",
        json={
            k: v for k, v in order("-", {"id": "1", "sku": "B", "qty": "15"}).items() if k != "id"
        },
    ).json()
    assert [(a["rule"], a["amount"]) for a in quote["lines"][0]["adjustments"]] == [
        ("B 10% budget", "-30.00"),
        ("welcome", "-10.00"),
    ]
    assert client.post("/orders/C1/cancel").json() == {
        "order_id": "C1",
        "status": "cancelled",
        "released": [],
    }  # nothing more
    replay = client.post("/orders/commit", json=order("C1", {"id": "1", "sku": "B", "qty": "15"}))
    assert replay.json()["status"] == "cancelled"  # the id stays taken: a new order needs a new id
    assert client.get("/orders/C1").json()["status"] == "cancelled"


def test_a_commit_with_errors_is_refused_and_records_nothing(client: TestClient) -> None:
    response = client.post("/orders/commit", json=order("C2", {"id": "1", "sku": "A", "qty": "3"}))
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "order_invalid"
    assert [e["code"] for e in body["errors"]] == ["below_min_qty"]
    assert client.get("/orders/C2").status_code == 404
    fixed = client.post("/orders/commit", json=order("C2", {"id": "1", "sku": "A", "qty": "6"}))
    assert fixed.status_code == 200  # the id was not taken by the refused attempt


def test_committing_an_imported_id_is_refused(client: TestClient) -> None:
    ledger = client.app.state.runtime.store.ledger  # type: ignore[attr-defined]
    ledger.seed(
        {
            "committed_lines": [
                {
                    "order_id": "H-1",
                    "customer_id": "D1",
                    "date": "2026-11-03",
                    "sku": "A",
                    "qty": "6",
                    "amount": "60.00",
                }
            ]
        },
        "CNY",
    )
    response = client.post("/orders/commit", json=order("H-1", {"id": "1", "sku": "A", "qty": "6"}))
    assert (response.status_code, response.json()["code"]) == (409, "order_id_reused")
    assert "Idempotent-Replay" not in response.headers
    assert ledger.find("H-1").status == "imported"


def test_unknown_orders_are_404(client: TestClient) -> None:
    for response in (client.post("/orders/NOPE/cancel"), client.get("/orders/NOPE")):
        assert response.status_code == 404
        assert response.json()["code"] == "order_not_found"


def test_a_commit_in_another_currency_is_refused(client: TestClient) -> None:
    response = client.post(
        "/orders/commit", json=order("C3", {"id": "1", "sku": "A", "qty": "6"}, currency="USD")
    )
    assert response.status_code == 422
    assert response.json()["code"] == "commit_currency"
    assert client.post(
        "/orders/validate", json=order("C3", {"id": "1", "sku": "A", "qty": "6"}, currency="USD")
    ).json()["ok"]


def test_the_transaction_refuses_to_overdraw(client: TestClient, tmp_path: Path) -> None:
    """Even a commit priced on a stale snapshot cannot pass a limit: the transaction re-reads
    (under the write lock, which serializes it with every other write)."""
    ledger = client.app.state.runtime.store.ledger  # type: ignore[attr-defined]
    import datetime as dt

    def record(order_id: str, amount: int) -> None:
        item = Consumption("budget", promotion="B 10% budget", amount=amount, limit_amount=5000)
        ledger.record(
            OrderRecord(
                order_id,
                "D9",
                None,
                None,
                dt.date(2026, 11, 22),
                "CNY",
                (0, 0, 0, 0, 0),
                {},
                (),
                (item,),
            )
        )

    record("T1", 4000)
    with pytest.raises(QuotaExhausted) as err:
        record("T2", 1001)
    assert (err.value.used, err.value.asked, err.value.limit) == (4000, 1001, 5000)
    assert ledger.find("T2") is None
    record("T3", 1000)  # exactly the rest fits
    assert promotions(client)["B 10% budget"]["budget"]["remaining"] == "0.00"


def test_the_committed_lines_frame_stays_compact(client: TestClient) -> None:
    """Each commit appends its lines in memory; the frame is compacted, not one chunk per commit."""
    import datetime as dt

    from engine.ledger.committed import OrderLine

    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    ledger, plan = runtime.store.ledger, runtime.require().plan
    assert ledger.view(plan).committed_lines.height == 0  # the in-memory state is loaded
    for n in range(200):
        line = OrderLine("1", 0, "A", 6000, 6000, 0, 6000, 0)
        ledger.record(
            OrderRecord(
                f"L{n}",
                "D1",
                None,
                None,
                dt.date(2026, 11, 22),
                "CNY",
                (6000, 0, 6000, 0, 6000),
                {},
                (line,),
            )
        )
    lines = ledger.view(plan).committed_lines
    assert (lines.height, lines["qty"].sum(), lines["amount"].sum()) == (
        200,
        200 * 6000,
        200 * 6000,
    )
    assert lines.n_chunks() <= 65
    assert (
        max(ledger._lines.n_chunks("all")) <= 64
    )  # the frame views are built from: not one chunk per commit (200)


class _LookupOnly(dict):  # type: ignore[type-arg]
    """A ledger mapping that may be looked up but not copied or walked (that is O(ledger))."""

    def __iter__(self) -> Any:
        raise AssertionError("the quote walked the whole ledger mapping")

    def keys(self) -> Any:
        raise AssertionError("the quote copied the whole ledger mapping")


def test_a_quote_looks_up_the_ledger_without_copying_it(client: TestClient) -> None:
    from engine.api import quote
    from engine.ledger.view import LedgerView

    plan = client.app.state.runtime.require().plan  # type: ignore[attr-defined]
    welcome = [r.name for r in plan.rules].index("welcome")
    budget = [r.name for r in plan.rules].index("B 10% budget")
    view = LedgerView(
        budget_used=_LookupOnly({budget: 4500}),
        uses=_LookupOnly({(welcome, "D1"): 1}),
        gift_stock_used=_LookupOnly(),
    )
    cart = {k: v for k, v in order("-", {"id": "1", "sku": "B", "qty": "15"}).items() if k != "id"}
    priced = quote(plan, cart, ledger=view)
    # D1 used welcome; 5.00 of the B budget is left
    assert [(a["rule"], a["amount"]) for a in priced["lines"][0]["adjustments"]] == [
        ("B 10% budget", "-5.00")
    ]


def test_a_cached_view_is_read_without_the_lock_and_cancel_does_not_reread_the_ledger(
    client: TestClient,
) -> None:
    import threading

    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    ledger, plan = runtime.store.ledger, runtime.require().plan
    assert (
        client.post(
            "/orders/commit", json=order("V1", {"id": "1", "sku": "B", "qty": "15"})
        ).status_code
        == 200
    )
    view = ledger.view(plan)
    got: list[Any] = []
    with ledger._view_lock:  # a rebuild in progress holds this lock
        reader = threading.Thread(target=lambda: got.append(ledger.view(plan)))
        reader.start()
        reader.join(timeout=5)
        assert got == [view]  # the cached view, without waiting for the lock

    def no_full_read() -> Any:
        raise AssertionError("cancel re-aggregated the whole ledger")

    ledger._read_totals = no_full_read
    assert client.post("/orders/V1/cancel").status_code == 200
    del ledger._read_totals
    after = ledger.view(plan)
    assert after.budget_used == {
        [r.name for r in plan.rules].index("B 10% budget"): 0,
        [r.name for r in plan.rules].index("welcome"): 0,
    }
    assert {k: v for k, v in ledger._totals.items() if v != (0, 0)} == ledger.used_totals() == {}


def test_the_guarantee_rests_on_the_write_lock(client: TestClient) -> None:
    """What docs/orders.md says of the limits of the guarantee: two transactions that bypass
    ``write_lock`` both pass the re-check and overdraw (DuckDB reports no conflict)."""
    import datetime as dt

    from engine.ledger.committed import check_limit, insert_order

    store = client.app.state.runtime.store  # type: ignore[attr-defined]
    ledger = store.ledger  # creates the ledger tables
    a, b = store._con.cursor(), store._con.cursor()  # two connections, as two writers would have

    def rec(order_id: str) -> OrderRecord:
        item = Consumption("budget", promotion="B 10% budget", amount=4000, limit_amount=5000)
        return OrderRecord(
            order_id,
            "D9",
            None,
            None,
            dt.date(2026, 11, 22),
            "CNY",
            (0, 0, 0, 0, 0),
            {},
            (),
            (item,),
        )

    a.begin()
    b.begin()
    for cur, order_id in ((a, "X1"), (b, "X2")):
        check_limit(cur, rec(order_id).consumption[0])  # both see 0.00 used of 50.00
    for cur, order_id in ((a, "X1"), (b, "X2")):
        insert_order(cur, rec(order_id), "committed")
    a.commit()
    b.commit()
    assert ledger.used_totals()[("budget", "B 10% budget", None, None, None)] == (
        0,
        8000,
    )  # 80.00 of a 50.00 budget


def test_a_commit_queued_behind_a_publish_uses_the_new_ruleset(client: TestClient) -> None:
    import threading

    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    answers: list[Any] = []
    with runtime.store.ledger.write_lock:  # a commit in progress: the next one waits
        waiting = threading.Thread(
            target=lambda: answers.append(
                client.post(
                    "/orders/commit", json=order("P1", {"id": "1", "sku": "B", "qty": "15"})
                )
            )
        )
        waiting.start()
        waiting.join(timeout=1)
        assert answers == []
        runtime.publish({"main.rule": RULESET.replace("budget 50.00", "budget 12.00")})
    waiting.join(timeout=30)
    [answer] = answers
    assert answer.status_code == 200, answer.text
    # the new ruleset's 12.00 budget, not the 30.00 the old one allowed
    assert {
        c["promotion"]: c["amount"] for c in answer.json()["consumed"] if c["kind"] == "budget"
    } == {"B 10% budget": "12.00", "welcome": "10.00"}


def test_a_retry_with_explain_toggled_is_a_replay(client: TestClient) -> None:
    first = client.post("/orders/commit", json=order("E1", {"id": "1", "sku": "A", "qty": "6"}))
    assert first.status_code == 200
    again = client.post(
        "/orders/commit", json=order("E1", {"id": "1", "sku": "A", "qty": "6"}, explain=True)
    )
    assert (again.status_code, again.headers.get("Idempotent-Replay")) == (200, "true")


def test_a_promotion_that_adds_to_the_net_consumes_no_budget(client: TestClient) -> None:
    import datetime as dt

    from engine.core.codes import AdjustmentStage, BenefitKind, LineError
    from engine.orders.validation import order_record
    from engine.results.responses import PricedCart, Record

    plan = client.app.state.runtime.require().plan  # type: ignore[attr-defined]
    rule = [r.name for r in plan.rules].index("B 10% budget")
    # 1 B: 20.00 list, the promotion's adjustment +1.00 -> 21.00
    line = Record("1", "B", "1", None, LineError.OK, plan.catalog.sku_index["B"], 1_000, 0, 2_000, 1, 2_000,
                  [(rule, BenefitKind.PERCENT_OFF, 100, AdjustmentStage.LINE)], 2_100, 0, 0, 2_100)  # fmt: skip
    record = order_record(
        plan,
        order("M1", {"id": "1", "sku": "B", "qty": "1"}),
        PricedCart("CNY", dt.date(2026, 11, 22), [line]),
    )
    assert [c for c in record.consumption if c.kind == "budget"] == []


def test_bad_orders_are_4xx(client: TestClient) -> None:
    assert (
        client.post("/orders/validate", json={"lines": [{"sku": "A", "qty": "1"}]}).status_code
        == 422
    )  # no id
    assert (
        client.post(
            "/orders/commit", json=order("", {"id": "1", "sku": "A", "qty": "6"})
        ).status_code
        == 422
    )
    response = client.post(
        "/orders/validate",
        json=order("O9", {"id": "1", "sku": "A", "qty": "6", "expected_net": 1.5}),
    )
    assert response.status_code == 422


def test_the_validate_example_in_docs_orders_md(client: TestClient) -> None:
    import json
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "orders.md").read_text(encoding="utf-8")
    order_json, answer_json = re.findall(r"```json\n(.*?)\n```", text, re.S)[:2]
    shown = json.loads(answer_json)
    body = client.post("/orders/validate", json=json.loads(order_json)).json()
    assert {k: body[k] for k in ("order_id", "ok", "errors", "warnings")} == {
        k: shown[k] for k in ("order_id", "ok", "errors", "warnings")
    }


def test_stock_plan_and_gift_stock_count_committed_orders(client: TestClient) -> None:
    # 24 A committed (240.00: one G of the 3 in stock), then 9 more: 33 > the plan of 30
    assert (
        client.post(
            "/orders/commit", json=order("S1", {"id": "1", "sku": "A", "qty": "24"})
        ).status_code
        == 200
    )
    body = client.post(
        "/orders/validate", json=order("S2", {"id": "1", "sku": "A", "qty": "9"})
    ).json()
    [over] = body["errors"]
    assert {k: over[k] for k in ("code", "line", "planned", "committed", "ordered")} == {
        "code": "exceeds_stock_plan", "line": "1", "planned": "30", "committed": "24", "ordered": "9",
    }  # fmt: skip
    # 40 B = 800.00, B 10% clipped to its 50.00 budget, D1 used "welcome" in S1: 750.00 earns
    # 3 G (every 200.00); S1 took 1 of the 3 in stock, so 2 are given
    body = client.post(
        "/orders/validate", json=order("S3", {"id": "1", "sku": "B", "qty": "40"})
    ).json()
    [short] = body["warnings"]
    assert {k: short[k] for k in ("code", "rule", "sku", "earned", "given")} == {
        "code": "gift_short", "rule": "every 200 a G", "sku": "G", "earned": "3", "given": "2",
    }  # fmt: skip
    assert body["ok"] is True

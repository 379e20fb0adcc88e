"""Order checks and commit consumption against the special-price contract (a split line has
``sublines`` with ``special: true``), without the engine's special-price stage: the table
name is patched in and the quote's sub-lines are written by hand."""

from __future__ import annotations

from typing import Any

import pytest

from engine.api import compile_ruleset
from engine.core.data import DataSet
from engine.ledger.view import LedgerView
from engine.orders import validation as order_checks

DATA = DataSet.from_rows(
    [{"sku": "A", "base_unit": "pcs"}],
    {
        "standard_prices": [{"sku": "A", "price": "20.00"}],
        "special_prices": [
            {"customer_id": "D1", "project": "P-778", "sku": "A", "price": "15.00", "qty_quota": "100", "amount_quota": ""},
            {"customer_id": "D1", "project": "", "sku": "A", "price": "16.00", "qty_quota": "", "amount_quota": "200.00"},
        ],
    },
)
PLAN = compile_ruleset({"r.rule": 'ruleset "x" currency CNY\npricelist "standard" { table standard_prices }'}, DATA)


@pytest.fixture(autouse=True)
def special_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_checks, "special_table_name", lambda plan: "special_prices")


def order(project: str | None = "P-778") -> dict[str, Any]:
    out: dict[str, Any] = {"id": "O1", "date": "2026-11-22", "customer": {"id": "D1"}, "lines": [{"id": "1", "sku": "A", "qty": "30"}]}
    if project is not None:
        out["project"] = project
    return out


def test_a_used_up_quota_is_quota_short() -> None:
    spent = LedgerView(special_used={("D1", "P-778", "A"): (100_000, 150_000)})
    v = order_checks.validate_order(PLAN, DATA, spent, order())
    assert [(w["code"], w["line"], w["qty"], w["special_qty"]) for w in v.warnings] == [("quota_short", "1", "30", "0")]
    assert v.ok  # a warning: the order can be committed at the list price
    # 90 of 100 used: something is left, so the engine would split (no finding from this check)
    assert order_checks.validate_order(PLAN, DATA, LedgerView(special_used={("D1", "P-778", "A"): (90_000, 0)}), order()).warnings == []


def test_the_any_project_row_counts_its_amount_quota() -> None:
    # another project: the row without a project applies; 190.00 of 200.00 used < one unit at 16.00
    spent = LedgerView(special_used={("D1", "", "A"): (0, 19_000)})
    assert [w["code"] for w in order_checks.validate_order(PLAN, DATA, spent, order("P-9")).warnings] == ["quota_short"]
    assert order_checks.validate_order(PLAN, DATA, LedgerView(special_used={("D1", "", "A"): (0, 18_400)}), order("P-9")).warnings == []


def test_a_split_line_is_quota_short_and_consumes_its_special_sub_line() -> None:
    priced: dict[str, Any] = {
        "currency": "CNY", "date": "2026-11-22", "errors": [], "warnings": [], "gifts": [],
        "totals": {"list": "600.00", "discount": "0.00", "net": "500.00", "tax": "0.00", "gross": "500.00"},
        "lines": [{
            "id": "1", "sku": "A", "qty": "30", "base_qty": "30", "status": "ok", "list_amount": "500.00", "net_amount": "500.00",
            "adjustments": [],
            "sublines": [
                {"qty": "20", "base_qty": "20", "unit_price": "15.00", "list_amount": "300.00", "net_amount": "300.00", "tax": "0.00", "special": True, "adjustments": []},
                {"qty": "10", "base_qty": "10", "unit_price": "20.00", "list_amount": "200.00", "net_amount": "200.00", "tax": "0.00", "special": False, "adjustments": []},
            ],
        }],
    }  # fmt: skip
    lines = order_checks._priced_lines(priced, order(), "CNY")
    v = order_checks.Validation(order_id="O1", quote=priced)
    order_checks._special_short(v, lines)
    assert [(w["code"], w["qty"], w["special_qty"]) for w in v.warnings] == [("quota_short", "30", "20")]
    record = order_checks.order_record(PLAN, DATA, order(), priced)
    [special] = [c for c in record.consumption if c.kind == "special"]
    assert (special.customer_id, special.project, special.sku, special.qty, special.amount) == ("D1", "P-778", "A", 20_000, 30_000)
    assert (special.limit_qty, special.limit_amount) == (100_000, None)
    assert [(x.sub, x.qty, x.net_amount, x.special) for x in record.lines] == [(1, 20_000, 30_000, True), (2, 10_000, 20_000, False)]

"""Near-miss hints ("add 2 more A") and the promotions that did not apply, with reasons.

Each test is a hand-worked cart; the figures in the comments are the arithmetic."""

from __future__ import annotations

from typing import Any

import pytest

from engine.api import compile_ruleset, quote, quote_batch
from engine.data import DataSet
from tests.engine.test_agreement import ABCD, HEADER, STANDARD, STANDARD_PRICES, cart


def priced(rules: str, cart_: dict[str, Any], *, explain: bool = True, tables: dict[str, Any] | None = None) -> dict[str, Any]:
    plan = compile_ruleset({"scenario.rule": HEADER + STANDARD + rules}, DataSet.from_rows(ABCD, tables or {"standard_prices": STANDARD_PRICES}))
    body = {**cart_, "explain": True} if explain else cart_
    single = quote(plan, body)
    # the bulk path explains the same way
    assert quote_batch(plan, [body])[0] == single
    return single


def reasons(body: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {m["rule"]: (m["reason"], m["detail"]) for m in body["not_applied"]}


FIVE_A = 'promotion "A5" priority 10 { each line where sku == "A" and qty >= 5: percent_off 5% }\n'


def test_add_quantity_hint_names_the_missing_units_and_the_rule() -> None:
    body = priced(FIVE_A, cart([("1", "A", "3"), ("2", "B", "3")]), explain=False)
    # 3 A, the promotion starts at 5: add 2; B has no promotion to reach
    assert body["hints"] == [
        {"rule": "A5", "kind": "add_quantity", "line": "1", "sku": "A", "missing_qty": "2", "unit": "pcs", "message": "add 2 pcs more A: A5"}
    ]
    assert "not_applied" not in body  # only when asked


def test_add_quantity_hint_points_at_the_next_tier_step() -> None:
    rules = 'promotion "A tiers" { each line where sku == "A": tiers by qty { >= 5: percent_off 5%  >= 10: percent_off 10% } }\n'
    body = priced(rules, cart([("1", "A", "7")]), explain=False)
    # 7 A is on the 5% step; 3 more reach the 10% step
    assert [(h["missing_qty"], h["rule"]) for h in body["hints"]] == [("3", "A tiers")]
    assert body["lines"][0]["net_amount"] == "133.00"  # 140.00 - 5%


def test_no_hint_once_the_last_step_is_reached() -> None:
    body = priced(FIVE_A, cart([("1", "A", "5")]), explain=False)
    assert body["hints"] == []


def test_outside_window_and_condition_false() -> None:
    rules = (
        'promotion "october" { valid 2026-10-01 .. 2026-10-31  each line where sku == "A": percent_off 5% }\n'
        'promotion "gold only" { when customer.tier == "gold"  each line where sku == "A": percent_off 5% }\n'
        + FIVE_A
    )
    body = priced(rules, cart([("1", "A", "3")], customer={"id": "D1", "tier": "silver"}))
    assert reasons(body) == {
        "october": ("outside_window", "valid 2026-10-01 .. 2026-10-31; the cart is dated 2026-11-22"),
        "gold only": ("condition_false", "customer.tier is 'silver'; the condition needs in ('gold')"),
        "A5": ("condition_false", "needs a quantity of at least 5 pcs; line 1 has 3"),
    }


def test_stopped_by_exclusive_and_lost_group() -> None:
    rules = (
        'promotion "first" priority 100 stacking exclusive { each line where sku == "A": percent_off 10% }\n'
        'promotion "after" priority 50 { each line where sku == "A": percent_off 5% }\n'
        'promotion "small" priority 40 group "g" { each line where sku == "B": percent_off 3% }\n'
        'promotion "big" priority 30 group "g" { each line where sku == "B": percent_off 8% }\n'
    )
    body = priced(rules, cart([("1", "A", "1"), ("2", "B", "1")]))
    assert [[a["rule"] for a in line["adjustments"]] for line in body["lines"]] == [["first"], ["big"]]
    assert reasons(body) == {
        "after": ("stopped_by_exclusive", "'first' is exclusive and came first"),
        "small": ("lost_group", "'big' gave more in the same group"),
    }
    assert {m["rule"]: m.get("by") for m in body["not_applied"]} == {"after": "first", "small": "big"}


def test_order_and_combo_thresholds() -> None:
    rules = (
        'promotion "spend 100" { order subtotal >= 100.00: amount_off 10.00 }\n'
        'promotion "A+B set" { combo 2 of sku "A", 1 of sku "B": amount_off 5.00 per set }\n'
    )
    body = priced(rules, cart([("1", "A", "1"), ("2", "B", "1")]))
    # 20.00 + 30.00 = 50.00: 50.00 short; one A of the two the set needs
    assert reasons(body) == {
        "spend 100": ("threshold_not_reached", "the eligible subtotal is 50.00 short of its first step"),
        "A+B set": ("threshold_not_reached", "the cart does not hold a complete set"),
    }
    assert [(h["kind"], h["missing_amount"]) for h in body["hints"]] == [("spend_more", "50.00")]


def test_a_spent_budget_is_reported_as_capped() -> None:
    from engine.ledger_view import LedgerView

    rules = 'promotion "welcome" { order subtotal >= 10.00: amount_off 1.00\n  uses 1 per customer }\n'
    plan = compile_ruleset({"scenario.rule": HEADER + STANDARD + rules}, DataSet.from_rows(ABCD, {"standard_prices": STANDARD_PRICES}))
    body = quote(plan, {**cart([("1", "A", "1")]), "explain": True}, ledger=LedgerView(uses={(0, "D1"): 1}))
    assert body["totals"]["net"] == "20.00"
    assert reasons(body) == {"welcome": ("capped", "its budget or uses per customer are used up")}


@pytest.mark.parametrize("rules", [FIVE_A, 'promotion "spend 100" { order subtotal >= 100.00: amount_off 10.00 }\n'])
def test_an_applied_promotion_is_never_listed(rules: str) -> None:
    body = priced(rules, cart([("1", "A", "10")]))
    assert body["not_applied"] == []
    assert body["totals"]["discount"] in ("-10.00",)


def test_promotions_for_other_skus_are_not_candidates() -> None:
    body = priced(FIVE_A, cart([("1", "B", "10")]))
    assert body["not_applied"] == []

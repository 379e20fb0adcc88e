"""Near-miss hints ("add 2 more A") and the promotions that did not apply, with reasons.

Each test is a hand-worked cart; the figures in the comments are the arithmetic."""

from __future__ import annotations

from typing import Any

import pytest

from engine.api import compile_ruleset, quote, quote_batch
from engine.core.data import DataSet
from tests.engine.test_agreement import ABCD, HEADER, STANDARD, STANDARD_PRICES, cart


def priced(
    rules: str, cart_: dict[str, Any], *, explain: bool = True, tables: dict[str, Any] | None = None
) -> dict[str, Any]:
    plan = compile_ruleset(
        {"scenario.rule": HEADER + STANDARD + rules},
        DataSet.from_rows(ABCD, tables or {"standard_prices": STANDARD_PRICES}),
    )
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
        {
            "rule": "A5",
            "kind": "add_quantity",
            "line": "1",
            "sku": "A",
            "missing_qty": "2",
            "unit": "pcs",
            "message": "add 2 pcs more A: A5",
        }
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
        "october": (
            "outside_window",
            "valid 2026-10-01 .. 2026-10-31; the cart is dated 2026-11-22",
        ),
        "gold only": (
            "condition_false",
            "customer.tier is 'silver'; the condition needs in ('gold')",
        ),
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
    assert [[a["rule"] for a in line["adjustments"]] for line in body["lines"]] == [
        ["first"],
        ["big"],
    ]
    assert reasons(body) == {
        "after": ("stopped_by_exclusive", "'first' is exclusive and came first"),
        "small": ("lost_group", "'big' gave more in the same group"),
    }
    assert {m["rule"]: m.get("by") for m in body["not_applied"]} == {
        "after": "first",
        "small": "big",
    }


def test_order_and_combo_thresholds() -> None:
    rules = (
        'promotion "spend 100" { order subtotal >= 100.00: amount_off 10.00 }\n'
        'promotion "A+B set" { combo 2 of sku "A", 1 of sku "B": amount_off 5.00 per set }\n'
    )
    body = priced(rules, cart([("1", "A", "1"), ("2", "B", "1")]))
    # 20.00 + 30.00 = 50.00: 50.00 short; one A of the two the set needs
    assert reasons(body) == {
        "spend 100": (
            "threshold_not_reached",
            "the eligible subtotal is 50.00 short of its first step",
        ),
        "A+B set": ("threshold_not_reached", "the cart does not hold a complete set"),
    }
    assert [(h["kind"], h["missing_amount"]) for h in body["hints"]] == [("spend_more", "50.00")]


def test_a_spent_budget_is_reported_as_capped() -> None:
    from engine.ledger.view import LedgerView

    rules = (
        'promotion "welcome" { order subtotal >= 10.00: amount_off 1.00\n  uses 1 per customer }\n'
    )
    plan = compile_ruleset(
        {"scenario.rule": HEADER + STANDARD + rules},
        DataSet.from_rows(ABCD, {"standard_prices": STANDARD_PRICES}),
    )
    body = quote(
        plan, {**cart([("1", "A", "1")]), "explain": True}, ledger=LedgerView(uses={(0, "D1"): 1})
    )
    assert body["totals"]["net"] == "20.00"
    assert reasons(body) == {"welcome": ("capped", "its budget or uses per customer are used up")}


@pytest.mark.parametrize(
    "rules", [FIVE_A, 'promotion "spend 100" { order subtotal >= 100.00: amount_off 10.00 }\n']
)
def test_an_applied_promotion_is_never_listed(rules: str) -> None:
    body = priced(rules, cart([("1", "A", "10")]))
    assert body["not_applied"] == []
    assert body["totals"]["discount"] in ("-10.00",)


def test_promotions_for_other_skus_are_not_candidates() -> None:
    body = priced(FIVE_A, cart([("1", "B", "10")]))
    assert body["not_applied"] == []


def _with_ledger(rules: str, cart_: dict[str, Any], ledger: Any) -> dict[str, Any]:
    plan = compile_ruleset(
        {"scenario.rule": HEADER + STANDARD + rules},
        DataSet.from_rows(ABCD, {"standard_prices": STANDARD_PRICES}),
    )
    body = {**cart_, "explain": True}
    single = quote(plan, body, ledger=ledger)
    assert quote_batch(plan, [body], ledger=ledger)[0] == single
    return single


def _committed(*rows: tuple[str, str, str, int]) -> Any:
    """A ledger view with D1's committed lines: (date, sku, qty, net amount in fen)."""
    import datetime as dt

    import polars as pl

    from engine.ledger.view import COMMITTED_LINE_SCHEMA, LedgerView

    frame = pl.DataFrame(
        {
            "customer_id": ["D1"] * len(rows),
            "date": [dt.date.fromisoformat(r[0]) for r in rows],
            "sku": [r[1] for r in rows],
            "qty": [int(r[2]) * 1000 for r in rows],
            "amount": [r[3] for r in rows],
        },
        schema=COMMITTED_LINE_SCHEMA,
    )
    return LedgerView(committed_lines=frame)


# D1 committed 30 A (600.00) on 2026-11-03 and 10 B (300.00) on 2026-11-05 in the window,
# and 500 A on 2026-10-30 (outside every November window below)
CUMULATIVE_LEDGER = (
    ("2026-11-03", "A", "30", 60000),
    ("2026-11-05", "B", "10", 30000),
    ("2026-10-30", "A", "500", 1_000_000),
)


def test_a_cumulative_condition_not_met_says_what_it_needs_and_what_the_customer_has() -> None:
    rules = (
        'promotion "November 100 A" {\n  valid 2026-11-01 .. 2026-11-30\n  cumulative qty of sku "A" >= 100\n'
        '  each line where sku == "A": percent_off 3%\n}\n'
        'promotion "loyal tools" {\n  valid 2026-11-01 .. 2026-11-30\n  cumulative amount of category "tools" >= 1500.00\n'
        "  order subtotal >= 100.00: amount_off 10.00\n}\n"
    )
    body = _with_ledger(
        rules, cart([("1", "A", "10"), ("2", "B", "1")]), _committed(*CUMULATIVE_LEDGER)
    )
    assert body["totals"]["net"] == "230.00"  # 10 x 20.00 + 30.00: nothing applied
    # qty of A in the window: 30 committed + 10 in this cart = 40 < 100 (the October 500 A
    # do not count); amount of tools (A and B): 600.00 + 300.00 committed + 230.00 in this
    # cart = 1130.00 < 1500.00
    assert reasons(body) == {
        "November 100 A": (
            "condition_false",
            'needs a cumulative qty of sku "A" of at least 100; the customer has 40 (committed 30 + this cart 10)',
        ),
        "loyal tools": (
            "condition_false",
            'needs a cumulative amount of category "tools" of at least 1500.00; the customer has 1130.00 (committed 900.00 + this cart 230.00)',
        ),
    }


def test_a_met_cumulative_condition_leaves_the_condition_that_failed() -> None:
    rules = (
        'promotion "30 A, then 20 at once" {\n  valid 2026-11-01 .. 2026-11-30\n  cumulative qty of sku "A" >= 30\n'
        '  each line where sku == "A" and qty >= 20: percent_off 5%\n}\n'
        'promotion "tools buyers spend 500" {\n  valid 2026-11-01 .. 2026-11-30\n  cumulative amount of category "tools" >= 1000.00\n'
        "  order subtotal >= 500.00: amount_off 20.00\n}\n"
    )
    body = _with_ledger(
        rules, cart([("1", "A", "10"), ("2", "B", "1")]), _committed(*CUMULATIVE_LEDGER)
    )
    assert body["totals"]["net"] == "230.00"
    # 30 + 10 = 40 A >= 30 holds, but line 1 has 10 A of the 20 the line needs;
    # 900.00 + 230.00 = 1130.00 of tools >= 1000.00 holds, but 230.00 is 270.00 short of 500.00
    assert reasons(body) == {
        "30 A, then 20 at once": (
            "condition_false",
            "needs a quantity of at least 20 pcs; line 1 has 10",
        ),
        "tools buyers spend 500": (
            "threshold_not_reached",
            "the eligible subtotal is 270.00 short of its first step",
        ),
    }


def test_an_order_promotion_past_its_threshold_with_nothing_left_is_no_benefit() -> None:
    rules = (
        'promotion "all off" priority 100 { order subtotal >= 10.00: percent_off 100% }\n'
        'promotion "ten off" priority 50 { order subtotal >= 40.00: amount_off 10.00 }\n'
        'promotion "tiers" priority 40 { order subtotal tiers { >= 40.00: amount_off 5.00  >= 100.00: amount_off 15.00 } }\n'
    )
    body = _with_ledger(rules, cart([("1", "A", "1"), ("2", "B", "1")]), None)
    # 20.00 + 30.00 = 50.00 entering stage 6: "all off" takes all 50.00; "ten off" (50.00 >= 40.00)
    # and "tiers" (first step 40.00 reached, 50.00 short of the second) have nothing left to take
    assert body["totals"]["net"] == "0.00"
    assert [[a["rule"] for a in line["adjustments"]] for line in body["lines"]] == [
        ["all off"],
        ["all off"],
    ]
    nothing = "its threshold is reached, but the eligible lines had nothing left to take (earlier promotions took their whole net) or its benefit came to nothing"
    assert reasons(body) == {"ten off": ("no_benefit", nothing), "tiers": ("no_benefit", nothing)}


def test_an_order_promotion_past_its_threshold_with_its_budget_spent_is_capped() -> None:
    from engine.ledger.view import LedgerView

    rules = 'promotion "budgeted" { order subtotal >= 40.00: amount_off 10.00\n  budget 100.00 }\n'
    # 50.00 >= 40.00, but the ledger has used all 100.00 of its budget
    body = _with_ledger(
        rules, cart([("1", "A", "1"), ("2", "B", "1")]), LedgerView(budget_used={0: 10000})
    )
    assert body["totals"]["net"] == "50.00"
    assert reasons(body) == {"budgeted": ("capped", "its budget or uses per customer are used up")}

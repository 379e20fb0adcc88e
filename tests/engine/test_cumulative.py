"""Cumulative conditions (SPEC §3.6; docs/language.md "Cumulative conditions"): C04 with its
hand-worked figures on the engine (``engine.api.quote`` with a ``LedgerView``) and on the
oracle, and the decisions docs/promotions.md records. C04 needs ledger state, so it runs
here rather than through ``POST /price``.
"""

from __future__ import annotations

from typing import Any

from engine.api import check_ruleset, compile_ruleset, quote
from engine.core.data import DataSet
from tests.engine.test_agreement import (
    ABCD,
    HEADER,
    STANDARD,
    STANDARD_PRICES,
    check_full_agreement,
    ledger_view,
)

DATA = DataSet.from_rows(
    ABCD,
    {
        "standard_prices": STANDARD_PRICES,
        "fx_rates": [{"from": "CNY", "to": "USD", "date": "2026-11-01", "rate": "0.14"}],
    },
)
C04_RULES = (
    STANDARD
    + 'promotion "November 100 A" {\n  valid 2026-11-01 .. 2026-11-30\n  cumulative qty of sku "A" >= 100\n'
    + '  each line where sku == "A": percent_off 3%\n}\n'
)
C04_LEDGER = {
    "committed_lines": [
        {"customer_id": "D1", "date": "2026-11-03", "sku": "A", "qty": "60"},
        {"customer_id": "D1", "date": "2026-11-15", "sku": "A", "qty": "30"},
        {"customer_id": "D1", "date": "2026-10-30", "sku": "A", "qty": "500"},
    ]
}


def cart(*lines: tuple[str, str], customer: str | None = "D1", **context: Any) -> dict[str, Any]:
    return {
        "date": "2026-11-22",
        **({"customer": {"id": customer}} if customer else {}),
        **context,
        "lines": [{"id": str(i + 1), "sku": sku, "qty": qty} for i, (sku, qty) in enumerate(lines)],
    }


def nets(rules: str, carts: list[dict[str, Any]], ledger: dict[str, Any] | None) -> list[list[str]]:
    responses = check_full_agreement({"r.rule": HEADER + rules}, DATA, carts, ledger)
    return [[line["net_amount"] for line in r["lines"]] for r in responses]


def test_C04_committed_orders_in_the_window_plus_this_cart() -> None:
    # 60 + 30 (the October order is outside the window) + 15 = 105 >= 100 -> 3% of 300.00
    assert nets(C04_RULES, [cart(("A", "15"))], C04_LEDGER) == [["291.00"]]
    # 60 + 30 + 9 = 99: not reached; another customer has no history
    assert nets(C04_RULES, [cart(("A", "9")), cart(("A", "15"), customer="D2")], C04_LEDGER) == [
        ["180.00"],
        ["300.00"],
    ]


def test_C04_this_cart_counts_all_its_lines_of_the_selection() -> None:
    # 90 committed + 5 + 5 across two lines (and a box of 12) reach 100 together
    assert nets(C04_RULES, [cart(("A", "5"), ("B", "1"), ("A", "5"))], C04_LEDGER) == [
        ["97.00", "30.00", "97.00"]
    ]


def test_C04_the_engine_without_the_ledger_counts_only_the_cart() -> None:
    plan = compile_ruleset({"r.rule": HEADER + C04_RULES}, DATA)
    assert quote(plan, cart(("A", "15")))["lines"][0]["net_amount"] == "300.00"
    assert quote(plan, cart(("A", "100")))["lines"][0]["net_amount"] == "1940.00"
    view = ledger_view(C04_LEDGER, "CNY")
    assert quote(plan, cart(("A", "15")), ledger=view)["lines"][0]["net_amount"] == "291.00"


def test_cumulative_amounts_count_committed_net_and_this_cart_list_amount() -> None:
    rules = (
        STANDARD
        + 'promotion "big spenders" {\n  cumulative amount of category "tools" >= 1000.00\n  order subtotal >= 0.00: percent_off 10%\n}\n'
    )
    ledger = {
        "committed_lines": [
            {"customer_id": "D1", "date": "2025-01-01", "sku": "B", "qty": "1", "amount": "900.00"}
        ]
    }
    # no window: all history counts; 900.00 + 5 x 20.00 = 1000.00 reaches it
    assert nets(rules, [cart(("A", "5"), ("C", "2"))], ledger) == [["90.00", "9.00"]]
    assert nets(rules, [cart(("A", "4"), ("C", "20"))], ledger) == [
        ["80.00", "100.00"]
    ]  # 980.00: parts don't count
    # a cart in USD: 900.00 CNY -> 126.00 USD, threshold 140.00 USD; 5 x 2.80 = 14.00
    assert nets(rules, [cart(("A", "5"), currency="USD")], ledger) == [["12.60"]]


def test_the_checker_reads_cumulative_conditions() -> None:
    def codes(statement: str) -> list[str]:
        rules = STANDARD + f'promotion "p" {{\n  {statement}\n  each line: percent_off 5%\n}}\n'
        return [
            d.code for d in check_ruleset({"r.rule": HEADER + rules}, DATA) if d.severity == "error"
        ]

    assert codes('cumulative qty of sku "A" >= 100') == []
    assert codes('cumulative amount of brand "acme" >= 5000.00') == []
    assert codes('cumulative qty of sku "NOPE" >= 1') == ["E0303"]
    assert codes('cumulative qty of sku "A" >= 2 box') == ["E0304"]
    assert codes('cumulative amount of sku "A" >= 5%') == ["E0202"]
    assert codes('cumulative qty of qty "A" >= 1') == ["E0206"]

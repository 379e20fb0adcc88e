"""Money written in rules, on a cart in another currency: converted at the cart date's rate."""

from __future__ import annotations

from typing import Any

import pytest

from engine.api import compile_ruleset, quote, quote_batch
from engine.core.data import DataSet
from tests.reference import reference_quote

RULES = """
ruleset "fx" currency CNY timezone "Asia/Shanghai" rounding half_up
pricelist "standard" priority 0 { table standard_prices }
pricelist "export" priority 10 { when customer.region == "US" table export_prices currency USD }
promotion "big order line" priority 100 { each line where amount >= 100.00: percent_off 10% }
promotion "one off" priority 50 { each line: amount_off 1.00 per unit }
"""


def data(fx: list[dict[str, str]]) -> DataSet:
    return DataSet.from_rows(
        [{"sku": "A", "base_unit": "pcs"}],
        {
            "standard_prices": [{"sku": "A", "price": "20.00"}],
            "export_prices": [{"sku": "A", "price": "3.00"}],
            "fx_rates": fx,
        },
    )


BOTH_WAYS = [
    {"from": "CNY", "to": "USD", "date": "2026-11-01", "rate": "0.1385"},
    {"from": "USD", "to": "CNY", "date": "2026-11-01", "rate": "7.2000"},
]


def quotes(ds: DataSet, cart: dict[str, Any]) -> list[dict[str, Any]]:
    plan = compile_ruleset({"fx.rule": RULES}, ds)
    return [
        quote(plan, cart),
        quote_batch(plan, [cart])[0],
        reference_quote({"fx.rule": RULES}, ds, cart),
    ]


def test_thresholds_and_amounts_convert_into_the_cart_currency() -> None:
    cart = {
        "currency": "USD",
        "date": "2026-11-22",
        "customer": {"id": "E1"},
        "lines": [{"sku": "A", "qty": "10"}],
    }
    for answer in quotes(data(BOTH_WAYS), cart):
        line = answer["lines"][0]
        # 20.00 CNY x 0.1385 = 2.77 USD; 10 units = 27.70 USD
        assert (line["unit_price"], line["list_amount"]) == ("2.77", "27.70")
        # 100.00 CNY is 13.85 USD, reached: 10% = 2.77; 1.00 CNY is 0.14 USD a unit: 1.40
        assert [(a["rule"], a["amount"]) for a in line["adjustments"]] == [
            ("big order line", "-2.77"),
            ("one off", "-1.40"),
        ]
        assert line["net_amount"] == "23.53"


def test_a_cart_without_a_ruleset_to_cart_rate_gets_no_fx_rate() -> None:
    only_inbound = [BOTH_WAYS[1]]  # USD->CNY exists; CNY->USD (for the rules' money) does not
    cart = {
        "currency": "USD",
        "date": "2026-11-22",
        "customer": {"id": "E1", "region": "US"},
        "lines": [{"sku": "A", "qty": "1"}],
    }
    for answer in quotes(data(only_inbound), cart):
        assert [(e["line"], e["code"]) for e in answer["errors"]] == [("1", "no_fx_rate")]
        assert answer["totals"]["net"] == "0.00"


@pytest.mark.parametrize("currency", ["CNY"])
def test_a_cart_in_the_ruleset_currency_needs_no_rate(currency: str) -> None:
    cart = {
        "currency": currency,
        "date": "2026-11-22",
        "customer": {"id": "D1"},
        "lines": [{"sku": "A", "qty": "10"}],
    }
    for answer in quotes(data([]), cart):
        # 200.00 >= 100.00: 10% = 20.00, then 1.00 x 10 = 10.00
        assert answer["lines"][0]["net_amount"] == "170.00"

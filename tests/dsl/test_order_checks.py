"""The order-check declarations (credit, sellable, stock plan, rebate payment): parsed,
checked with the usual diagnostics, formatted, compiled into ``Plan.order_checks``."""

from __future__ import annotations

import pytest

from dsl.check import check
from dsl.errors import RuleError
from dsl.fmt import format_ruleset
from dsl.parser import parse_source, parse_sources
from engine.api import compile_ruleset
from engine.core.data import DataSet

HEADER = 'ruleset "t" currency CNY\npricelist "standard" { table standard_prices }\n'

DATA = DataSet.from_rows(
    [{"sku": "A", "base_unit": "pcs"}],
    {
        "standard_prices": [{"sku": "A", "price": "10.00"}],
        "accounts": [{"customer_id": "D1", "credit_limit": "100.00"}],
        "assortment": [{"customer_group": "south", "sku": "A"}],
        "stock_plans": [{"customer_id": "D1", "sku": "A", "qty": "5"}],
        "no_sku": [{"customer_id": "D1"}],
    },
)

ALL = """
credit { table accounts }
sellable { table assortment by customer.group }
stock plan { table stock_plans policy block }
rebate payment { max 12.5% of order }
"""


def codes(source: str) -> list[tuple[str, int, int]]:
    _, diags = check(parse_sources({"r.rule": HEADER + source}), DATA)
    return [(d.code, d.span.line, d.span.col) for d in diags]


def test_declarations_compile_into_the_plan() -> None:
    plan = compile_ruleset({"r.rule": HEADER + ALL}, DATA)
    checks = plan.order_checks
    assert (checks.credit_table, checks.sellable_table, checks.sellable_by) == (
        "accounts",
        "assortment",
        "group",
    )
    assert (checks.stock_table, checks.stock_policy, checks.rebate_max_bp) == (
        "stock_plans",
        "block",
        1250,
    )


def test_formatter_round_trips() -> None:
    formatted = format_ruleset(parse_source(HEADER + ALL, "r.rule"))
    assert "stock plan {\n  table stock_plans policy block\n}" in formatted
    assert "rebate payment {\n  max 12.5% of order\n}" in formatted
    assert format_ruleset(parse_source(formatted, "r.rule")) == formatted


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("credit { table accountz }", [("E0301", 3, 1)]),
        ("stock plan { table no_sku policy warn }", [("E0302", 3, 1), ("E0302", 3, 1)]),
        ("sellable { table assortment by sku }", [("E0206", 3, 32)]),
        ("sellable { table assortment by customer.region }", [("E0302", 3, 1)]),
        ("rebate payment { max 0% of order }", [("E0505", 3, 22)]),
        ("credit { table accounts }\ncredit { table accounts }", [("E0101", 4, 1)]),
    ],
)
def test_diagnostics(source: str, expected: list[tuple[str, int, int]]) -> None:
    assert codes(source) == expected


def test_unknown_stock_policy_is_a_syntax_error() -> None:
    with pytest.raises(RuleError) as err:
        parse_sources({"r.rule": HEADER + "stock plan { table stock_plans policy maybe }"})
    assert "'warn' or 'block'" in err.value.render()

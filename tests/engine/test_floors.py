"""Stage 9, floor prices: hand-worked cases, with carts in the ruleset currency and in others.

A floor table holds the lowest net price per base unit in the ruleset currency. On a cart
in another currency the floor is converted like every other amount the ruleset names: at
the ruleset->cart rate dated on or before the cart date, the per-unit floor converted and
rounded once to the cart currency's minor unit (as a price list's unit price is, SPEC §3.2),
then ``floor amount = round(converted floor x quantity)``. A line whose SKU has a floor on
a cart with no such rate gets ``no_fx_rate`` (a wrong floor is worse than no quote).

Every case is answered by ``quote``, ``quote_batch`` and the reference interpreter, and all
three must give the hand-worked figures; the property test at the end requires the engine
and the reference to agree on generated foreign-currency carts with floors.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.api import compile_ruleset, quote, quote_batch
from engine.core.data import DataSet
from tests.engine.test_agreement import check_full_agreement
from tests.reference import reference_quote
from tests.strategies import FOREIGN_CURRENCY, Case, cases

HEADER = 'ruleset "fx floors" currency USD timezone "Europe/Berlin" rounding half_up\n'
PROMOTIONS = (
    'promotion "ten" priority 100 { each line where sku == "A": percent_off 10% }\n'
    'promotion "three" priority 100 { each line where sku == "B": percent_off 3% }\n'
)


def rules(policy: str) -> dict[str, str]:
    return {
        "floors.rule": HEADER
        + 'pricelist "standard" priority 0 { table standard_prices }\n'
        + f"floor {{ table floor_prices policy {policy} }}\n"
        + 'approval "all" priority 0 { up to 5%: approved above: rejected }\n'
        + PROMOTIONS
    }


CATALOG = [{"sku": s, "base_unit": "pcs"} for s in ("A", "B", "C")]
FX = [
    {"from": "USD", "to": "EUR", "date": "2026-11-01", "rate": "0.9237"},
    {"from": "USD", "to": "JPY", "date": "2026-11-01", "rate": "150.25"},
]


def data(fx: list[dict[str, str]] = FX) -> DataSet:
    return DataSet.from_rows(
        CATALOG,
        {
            "standard_prices": [{"sku": "A", "price": "1000.00"}, {"sku": "B", "price": "1000.00"}],
            "floor_prices": [{"sku": "A", "floor": "950.00"}, {"sku": "B", "floor": "950.00"}],
            "fx_rates": fx,
        },
    )


def cart(currency: str, lines: list[dict[str, Any]], date: str = "2026-11-22") -> dict[str, Any]:
    return {"currency": currency, "date": date, "customer": {"id": "D1"}, "lines": lines}


def answers(sources: dict[str, str], ds: DataSet, the_cart: dict[str, Any]) -> list[dict[str, Any]]:
    """The engine's one-cart and batch answers and the reference's, for the same cart."""
    plan = compile_ruleset(sources, ds)
    return [
        quote(plan, the_cart),
        quote_batch(plan, [the_cart])[0],
        reference_quote(sources, ds, the_cart),
    ]


def figures(line: dict[str, Any]) -> tuple[Any, ...]:
    return (
        line["list_amount"],
        [(a["rule"], a["amount"]) for a in line["adjustments"]],
        line["net_amount"],
        bool(line.get("floor_clamped", False)),
        line["status"],
        line.get("approval_level"),
    )


def test_a_eur_line_below_the_converted_floor_is_clamped_to_it() -> None:
    # A lists at 1000.00 USD: 1000.00 x 0.9237 = 923.70 EUR a unit; 2 units = 1847.40 EUR.
    # "ten": 10% of 1847.40 = 184.74 off, running net 1662.66 EUR.
    # The floor, 950.00 USD a unit: 950.00 x 0.9237 = 877.515 -> 877.52 EUR (rounded once,
    # per unit, like a list price); 2 units: 1755.04 EUR. (Converting the line's floor of
    # 1900.00 USD instead would give 1755.03: the unit figure is the one converted.)
    # 1662.66 < 1755.04: the clamp takes back 1755.04 - 1662.66 = 92.38 of "ten",
    # leaving -184.74 + 92.38 = -92.36 and the line exactly on 1755.04.
    # Read unconverted, the floor would be 950.00 EUR a unit (1900.00 for the line).
    the_cart = cart("EUR", [{"id": "1", "sku": "A", "qty": "2"}])
    for answer in answers(rules("clamp"), data(), the_cart):
        assert figures(answer["lines"][0]) == (
            "1847.40",
            [("ten", "-92.36")],
            "1755.04",
            True,
            "ok",
            None,
        )
        assert answer["totals"]["net"] == "1755.04"


def test_a_jpy_line_below_the_converted_floor_is_clamped_though_above_the_unconverted_number() -> (
    None
):
    # The case: a floor read as the cart's money unconverted is too low, so a line
    # below the real floor is not clamped. USD -> JPY 150.25, and JPY has no decimals:
    # A lists at 1000.00 USD = 100000 minor x 150.25 / 100 = 150250 JPY; 1 unit: 150250.
    # "ten": 10% = 15025 off, running net 135225 JPY.
    # Floor 950.00 USD = 95000 minor x 150.25 / 100 = 142737.5 -> 142738 JPY a unit.
    # 135225 < 142738: take back 7513 of "ten", leaving -7512; net 142738 JPY.
    # (Unconverted, the floor would be 95000 JPY and 135225 would stand.)
    the_cart = cart("JPY", [{"id": "1", "sku": "A", "qty": "1"}])
    for answer in answers(rules("clamp"), data(), the_cart):
        assert figures(answer["lines"][0]) == (
            "150250",
            [("ten", "-7512")],
            "142738",
            True,
            "ok",
            None,
        )


def test_a_eur_line_above_the_converted_floor_is_not_clamped() -> None:
    # B lists at 923.70 EUR a unit (as A above); 2 units = 1847.40 EUR.
    # "three": 3% of 1847.40 = 55.422 -> 55.42 off, net 1791.98 EUR.
    # Its floor is 1755.04 EUR (as A's): 1791.98 is above it and stays; read unconverted
    # (1900.00 EUR) the whole 55.42 would be taken back.
    the_cart = cart("EUR", [{"id": "1", "sku": "B", "qty": "2"}])
    for answer in answers(rules("clamp"), data(), the_cart):
        assert figures(answer["lines"][0]) == (
            "1847.40",
            [("three", "-55.42")],
            "1791.98",
            False,
            "ok",
            None,
        )


def test_a_same_currency_floor_clamps_as_before() -> None:
    # USD cart, no conversion: A 2 x 1000.00 = 2000.00, 10% = 200.00 off -> 1800.00, below
    # the floor 2 x 950.00 = 1900.00: "ten" is cut to -100.00. B: 3% = 60.00 off -> 1940.00,
    # above 1900.00: unchanged.
    the_cart = cart(
        "USD", [{"id": "1", "sku": "A", "qty": "2"}, {"id": "2", "sku": "B", "qty": "2"}]
    )
    for answer in answers(rules("clamp"), data(), the_cart):
        assert [figures(line) for line in answer["lines"]] == [
            ("2000.00", [("ten", "-100.00")], "1900.00", True, "ok", None),
            ("2000.00", [("three", "-60.00")], "1940.00", False, "ok", None),
        ]


def test_flag_and_manual_discounts_compare_with_the_converted_floor() -> None:
    # policy flag, EUR cart; every line's floor is 1755.04 EUR (2 units, as above).
    # 1: A, 1662.66 after "ten": below -> needs_approval (floor), price kept.
    # 2: B, 1791.98 after "three": above -> ok (unconverted, 1900.00, it would be flagged).
    # 3: B with a manual 3% (approved by its band): 3% of 1791.98 = 53.7594 -> 53.76,
    #    net 1738.22 < 1755.04 -> a manual discount below the floor needs approval (floor).
    # 4: B with a manual 2%: 2% of 1791.98 = 35.8396 -> 35.84, net 1756.14 >= 1755.04 ->
    #    approved (unconverted, it would need approval).
    lines = [
        {"id": "1", "sku": "A", "qty": "2"},
        {"id": "2", "sku": "B", "qty": "2"},
        {"id": "3", "sku": "B", "qty": "2", "manual_discount": "3%"},
        {"id": "4", "sku": "B", "qty": "2", "manual_discount": "2%"},
    ]
    for answer in answers(rules("flag"), data(), cart("EUR", lines)):
        assert [figures(line) for line in answer["lines"]] == [
            ("1847.40", [("ten", "-184.74")], "1662.66", False, "needs_approval", "floor"),
            ("1847.40", [("three", "-55.42")], "1791.98", False, "ok", None),
            (
                "1847.40",
                [("three", "-55.42"), ("manual discount", "-53.76")],
                "1738.22",
                False,
                "needs_approval",
                "floor",
            ),
            (
                "1847.40",
                [("three", "-55.42"), ("manual discount", "-35.84")],
                "1756.14",
                False,
                "approved",
                None,
            ),
        ]


def test_a_line_with_a_floor_and_no_ruleset_to_cart_rate_gets_no_fx_rate() -> None:
    # A EUR price list needs no rate, but A's floor (USD) does and there is no USD->EUR
    # rate: A is not priced (no_fx_rate); C, with no floor, is priced: 2 x 100.00 EUR.
    sources = {
        "floors.rule": HEADER
        + 'pricelist "euro" priority 0 { table euro_prices currency EUR }\n'
        + "floor { table floor_prices policy clamp }\n"
        + PROMOTIONS
    }
    ds = DataSet.from_rows(
        CATALOG,
        {
            "euro_prices": [{"sku": "A", "price": "1000.00"}, {"sku": "C", "price": "100.00"}],
            "floor_prices": [{"sku": "A", "floor": "950.00"}],
            "fx_rates": [{"from": "USD", "to": "JPY", "date": "2026-11-01", "rate": "150.25"}],
        },
    )
    the_cart = cart(
        "EUR", [{"id": "1", "sku": "A", "qty": "2"}, {"id": "2", "sku": "C", "qty": "2"}]
    )
    for answer in answers(sources, ds, the_cart):
        assert [(e["line"], e["code"]) for e in answer["errors"]] == [("1", "no_fx_rate")]
        assert figures(answer["lines"][1]) == ("200.00", [], "200.00", False, "ok", None)
        assert answer["totals"]["net"] == "200.00"


@st.composite
def foreign_floor_cases(draw: st.DrawFn) -> Case:
    """Generated stage 5-9 cases with a floor, exchange rates, and most carts in the
    foreign currency (some dated before the rates start, so they have no rate)."""
    case = draw(cases(max_carts=4, stages59=True, foreign_floors=True))
    carts = tuple(
        {**c, "currency": FOREIGN_CURRENCY} if draw(st.integers(0, 3)) else c
        for c in case.carts
    )  # fmt: skip
    return Case(
        blocks=case.blocks,
        sources=case.sources,
        catalog=case.catalog,
        tables=case.tables,
        carts=carts,
        ledger=case.ledger,
    )


@settings(max_examples=150)
@given(case=foreign_floor_cases())
def test_foreign_currency_floors_agree_with_the_reference(case: Case) -> None:
    check_full_agreement(case.sources, case.data, list(case.carts))

"""W0501: a line promotion that an earlier exclusive one (or several together) always pre-empts."""

from __future__ import annotations

from engine.api import check_ruleset
from engine.core.data import DataSet

DATA = DataSet.from_rows(
    [
        {"sku": "A", "base_unit": "pcs", "category": "tools"},
        {"sku": "B", "base_unit": "pcs", "category": "tools"},
        {"sku": "C", "base_unit": "pcs", "category": "parts"},
    ],
    {"standard_prices": [{"sku": "A", "price": "1.00"}]},
)
HEAD = 'ruleset "x" currency CNY\npricelist "s" { table standard_prices }\n'


def warnings(body: str) -> list[tuple[str, int]]:
    src = {"x.rule": HEAD + body}
    return [(d.code, d.span.line) for d in check_ruleset(src, DATA) if d.severity == "warning"]


def test_a_narrower_later_promotion_is_shadowed_by_a_wider_exclusive_one() -> None:
    body = (
        'promotion "tools 10%" priority 100 stacking exclusive { each line where category == "tools": percent_off 10% }\n'
        'promotion "A from 5" priority 50 { each line where sku == "A" and qty >= 5: percent_off 5% }\n'
        'promotion "parts" priority 40 { each line where category == "parts": percent_off 3% }\n'
    )
    assert warnings(body) == [("W0501", 4)]


def test_alternatives_covered_by_different_earlier_promotions_are_shadowed() -> None:
    body = (
        'promotion "tools" priority 100 stacking exclusive { each line where category == "tools": percent_off 10% }\n'
        'promotion "parts" priority 90 stacking exclusive { each line where category == "parts": percent_off 10% }\n'
        'promotion "A or C" priority 50 { each line where sku == "A" or sku == "C": percent_off 5% }\n'
    )
    assert warnings(body) == [("W0501", 5)]


def test_no_warning_when_the_earlier_one_is_narrower_grouped_or_a_fixed_price() -> None:
    body = (
        'promotion "gold tools" priority 100 stacking exclusive { when customer.tier == "gold" each line where category == "tools": percent_off 10% }\n'
        'promotion "grouped" priority 95 stacking exclusive group "g" { each line: percent_off 1% }\n'
        'promotion "fixed" priority 90 stacking exclusive { each line: fixed_price 0.50 }\n'
        'promotion "tools" priority 50 { each line where category == "tools": percent_off 5% }\n'
    )
    assert warnings(body) == []


def test_a_set_of_skus_is_covered_like_the_same_skus_written_with_or() -> None:
    body = (
        'promotion "A" priority 100 stacking exclusive { each line where sku == "A": percent_off 10% }\n'
        'promotion "B" priority 90 stacking exclusive { each line where sku == "B": percent_off 10% }\n'
        'promotion "A or B" priority 50 { each line where sku == "A" or sku == "B": percent_off 5% }\n'
        'promotion "A, B" priority 40 { each line where sku in ("A", "B"): percent_off 5% }\n'
        'promotion "A, B, C" priority 30 { each line where sku in ("A", "B", "C"): percent_off 5% }\n'
    )
    assert warnings(body) == [("W0501", 5), ("W0501", 6)]


def test_a_promotion_that_includes_special_is_shadowed_only_by_ones_that_include_it_too() -> None:
    from engine.api import check_ruleset
    from engine.core.data import DataSet

    data = DataSet.from_rows(
        [{"sku": "A", "base_unit": "pcs"}],
        {
            "p": [{"sku": "A", "price": "1.00"}],
            "s": [{"customer_id": "D1", "sku": "A", "price": "0.50"}],
        },
    )
    head = 'ruleset "x" currency CNY\npricelist "p" { table p }\nspecial prices { table s }\n'
    first = 'promotion "all" priority 10 stacking exclusive {\n  each line: percent_off 5%\n%s}\n'
    later = 'promotion "later" {\n  each line: percent_off 3%\n  includes special\n}\n'

    def warned(includes: str) -> list[str]:
        sources = {"r.rule": head + first.replace("%s", includes) + later}
        return [d.code for d in check_ruleset(sources, data)]

    assert warned("") == []  # "later" still applies to special-price sub-lines
    assert warned("  includes special\n") == ["W0501"]

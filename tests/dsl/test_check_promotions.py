"""The checker on combos, pools, order promotions, gifts, caps, floors and approval bands.

Valid declarations check clean; each invalid one gives exactly the expected codes at the
expected ``line:col``. Every source is ``HEADER`` (line 1), a blank line, then the
snippet from line 3, so a snippet's first line is line 3.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from dsl import tree as t
from dsl.check import CheckedRuleset, check
from dsl.errors import Diagnostic, RuleError
from dsl.parser import parse_sources
from engine.core.data import DataSet

ROOT = Path(__file__).resolve().parents[2]
PATH = "rules/t.rule"
HEADER = 'ruleset "t" currency CNY timezone "Asia/Shanghai"\n\n'

DATA = DataSet.from_rows(
    [
        {
            "sku": "A",
            "base_unit": "pcs",
            "units": {"box": 12},
            "category": "tools",
            "brand": "acme",
            "tax_class": "std",
        },
        {"sku": "B", "base_unit": "pcs", "category": "tools", "brand": "bolt", "tax_class": "std"},
        {"sku": "C", "base_unit": "m", "category": "parts", "brand": "acme"},
        {"sku": "G", "base_unit": "pcs", "category": "gifts", "color": "red"},
    ],
    {
        "standard_prices": [
            {"sku": "A", "price": "10.00"},
            {"sku": "B", "price": "20.00"},
            {"sku": "C", "price": "5.00"},
            {"sku": "G", "price": "15.00"},
        ],
        "floor_prices": [{"sku": "A", "floor": "8.00"}],
        "net_prices": [{"sku": "A", "price": "9.00"}],
    },
)


def diagnostics(snippet: str) -> list[Diagnostic]:
    """Every diagnostic of the snippet (parser's included), checked against ``DATA``."""
    sources = {PATH: HEADER + textwrap.dedent(snippet).strip("\n") + "\n"}
    try:
        ruleset = parse_sources(sources)
    except RuleError as err:
        return list(err.diagnostics)
    return check(ruleset, DATA)[1]


def found(snippet: str) -> list[tuple[str, int, int]]:
    return sorted((d.code, d.span.line, d.span.col) for d in diagnostics(snippet))


def checked(snippet: str) -> CheckedRuleset:
    sources = {PATH: HEADER + textwrap.dedent(snippet).strip("\n") + "\n"}
    result, diags = check(parse_sources(sources), DATA)
    assert diags == [], [f"{d.code} {d.span}: {d.message}" for d in diags]
    assert result is not None
    return result


# ---- valid declarations check clean ---------------------------------------------------------

VALID = {
    "combo amount per set, max": """
        promotion "A2+B3" priority 50 {
          combo 2 of sku "A", 3 of sku "B": amount_off 10.00 per set
          max 3 per order
        }
    """,
    "combo percent, groups of SKUs": """
        promotion "tool + part" {
          combo 2 of category "tools", 1 of category in ("parts", "gifts"): percent_off 15%
        }
    """,
    "combo fixed price, per set left out": """
        promotion "A+B for 25" {
          combo 1 of sku "A", 1 of sku "B": fixed_price 25.00
        }
    """,
    "combo amount without per set": """
        promotion "A+B 5 off" {
          combo 1 of sku in ("A", "B",), 1 of brand "acme": amount_off 5.00 CNY
        }
    """,
    "combo gift, caps after a comma": """
        promotion "A+B: a G" {
          combo 1 of sku "A", 1 of sku "B": gift 1 of "G", max 2 gifts per order, gift stock 100
        }
    """,
    "combo by tax class and item attribute, cheapest first": """
        promotion "std + red" {
          combo 1 of tax_class "std", 1 of item.color "red": percent_off 5%
          cheapest first
        }
    """,
    "pool units gift": """
        promotion "10 tools: a G" {
          pool category "tools" every 10: gift 1 of "G"
        }
    """,
    "pool money": """
        promotion "acme every 500" {
          pool brand "acme" every 500.00 CNY: amount_off 20.00 per set
          max 4 per order
          cheapest first
        }
    """,
    "pool percent": """
        promotion "3 tools 5%" {
          pool sku in ("A", "B") every 3: percent_off 5%
          max discount 100.00 per order
        }
    """,
    "order threshold amount": """
        promotion "spend 1000" priority 30 {
          order subtotal >= 1000.00: amount_off 50.00
          max discount 50.00 per order
          budget 50000.00
          uses 3 per customer
        }
    """,
    "order threshold percent": """
        promotion "spend 1000: 3%" {
          when customer.tier == "gold"
          valid 2026-11-01 .. 2026-11-30
          order subtotal >= 1000: percent_off 3%
        }
    """,
    "order tiers": """
        promotion "spend more" stacking exclusive {
          order subtotal tiers {
            >= 5000.00: percent_off 2%
            >= 10000.00: amount_off 400.00
            >= 20000.00: gift 1 of "G"
          }
        }
    """,
    "order every with max": """
        promotion "every 1000" {
          order every 1000.00: amount_off 50.00
          max 3 per order
        }
    """,
    "order gift with gift caps": """
        promotion "spend 2000: G" group "spend" {
          order every 2000.00: gift 2 of "G", max 3 per order, max 4 gifts per order, gift stock 500
        }
    """,
    "line promotion with money caps": """
        promotion "tools 10%" {
          each line where category == "tools": percent_off 10%
          max discount 200.00 per order
          budget 1000.00
          uses 1 per customer
        }
    """,
    "floor clamp": """
        floor {
          table floor_prices policy clamp
        }
    """,
    "floor flag": """
        floor { table floor_prices policy flag }
    """,
    "approval with above": """
        approval "gold partners" priority 10 {
          when customer.tier == "gold"
          up to 5%: approved
          up to 15%: channel_manager
          above: rejected
        }
    """,
    "approval without above or when": """
        approval "everyone" {
          up to 3%: approved
          up to 10%: sales_manager
        }
    """,
    "approval with one band": """
        approval "no manual discounts" priority -1 {
          above: rejected
        }
    """,
}


@pytest.mark.parametrize("snippet", list(VALID.values()), ids=list(VALID))
def test_valid_declaration_checks_clean(snippet: str) -> None:
    assert found(snippet) == []


def test_checked_ruleset_carries_floor_approvals_and_caps() -> None:
    result = checked(
        """
        floor {
          table floor_prices policy flag
        }

        approval "b" priority 5 {
          above: rejected
        }

        approval "a" priority 10 {
          up to 5%: approved
        }

        promotion "A2+B3" {
          combo 2 of sku "A", 3 of sku "B": amount_off 10.00 per set, max 3 per order
          cheapest first
        }
        """
    )
    assert result.floor is not None and (result.floor.table, result.floor.policy) == (
        "floor_prices",
        "flag",
    )
    assert [a.name for a in result.approvals] == ["a", "b"]  # priority descending
    (promo,) = result.promotions
    assert isinstance(promo.scope, t.ComboScope) and promo.cheapest_first
    cap = promo.cap("applications")
    assert cap is not None and isinstance(cap.value, t.NumberLit) and cap.value.text == "3"


def test_checker_without_data_skips_catalog_checks() -> None:
    """No data: unknown gift SKUs and floor tables are not checked (as for price lists)."""
    sources = {
        PATH: HEADER
        + 'promotion "p" {\n  order subtotal >= 10.00: gift 1 of "NOPE"\n}\n'
        + "floor {\n  table no_such_table policy clamp\n}\n"
    }
    result, diags = check(parse_sources(sources), None)
    assert diags == [] and result is not None


def _scenario_cases() -> list[object]:
    out: list[object] = []
    for rule_path in sorted((ROOT / "tests" / "scenarios").glob("*/ruleset.rule")):
        case = ROOT / "tests" / "scenarios" / "cases" / f"{rule_path.parent.name}.json"
        name = rule_path.parent.name
        out.append(pytest.param(rule_path, case, id=name))
    return out


@pytest.mark.parametrize(("rule_path", "case_path"), _scenario_cases())
def test_scenario_ruleset_checks_clean(rule_path: Path, case_path: Path) -> None:
    """The working scenario rulesets (S01-S03, O01-O03, C01, F01-F03, T01, B01, ...)."""
    assert case_path.exists(), f"scenario {rule_path.parent.name} has no case file {case_path.name}"
    case = json.loads(case_path.read_text(encoding="utf-8"))
    data = DataSet.from_rows(case["catalog"], case["tables"])
    key = rule_path.relative_to(ROOT).as_posix()
    _, diags = check(parse_sources({key: rule_path.read_text(encoding="utf-8")}), data)
    assert diags == [], [f"{d.code} {d.span}: {d.message}" for d in diags]


# ---- invalid declarations: exactly these codes at these places -------------------------------

INVALID = {
    # combos
    "combo count zero and fractional": (
        """
        promotion "c" {
          combo 0 of sku "A", 1.5 of sku "B": amount_off 10.00 per set
        }
        """,
        [("E0505", 4, 9), ("E0505", 4, 23)],
    ),
    "combo count negative": (
        """
        promotion "c" {
          combo -1 of sku "A": amount_off 5.00
        }
        """,
        [("E0505", 4, 9)],
    ),
    "combo part unknown SKU": (
        """
        promotion "c" {
          combo 1 of sku "Z", 1 of sku "B": percent_off 5%
        }
        """,
        [("E0303", 4, 18)],
    ),
    "combo part selects by a cart field": (
        """
        promotion "c" {
          combo 1 of customer.tier "gold": percent_off 5%
        }
        """,
        [("E0206", 4, 14)],
    ),
    "combo part selects by a misspelt field": (
        """
        promotion "c" {
          combo 1 of categroy "tools": percent_off 5%
        }
        """,
        [("E0201", 4, 14)],
    ),
    "combo percent out of range": (
        """
        promotion "c" {
          combo 1 of sku "A": percent_off 0%
        }
        """,
        [("E0205", 4, 35)],
    ),
    "combo amount in another currency": (
        """
        promotion "c" {
          combo 1 of sku "A": amount_off 5.00 USD per set
        }
        """,
        [("E0203", 4, 34)],
    ),
    "combo fixed price over-precise": (
        """
        promotion "c" {
          combo 1 of sku "A": fixed_price 1.005
        }
        """,
        [("E0205", 4, 35)],
    ),
    # pools
    "pool selects by a cart field": (
        """
        promotion "c" {
          pool customer.tier "gold" every 10: percent_off 5%
        }
        """,
        [("E0206", 4, 8)],
    ),
    "pool selects by a line field": (
        """
        promotion "c" {
          pool qty "5" every 10: percent_off 5%
        }
        """,
        [("E0206", 4, 8)],
    ),
    "pool selector value not text": (
        """
        promotion "c" {
          pool category in ("tools", 5) every 10: percent_off 5%
        }
        """,
        [("E0202", 4, 30)],
    ),
    "pool every zero": (
        """
        promotion "c" {
          pool category "tools" every 0: percent_off 5%
        }
        """,
        [("E0505", 4, 31)],
    ),
    "pool every fractional units": (
        """
        promotion "c" {
          pool category "tools" every 2.5: percent_off 5%
        }
        """,
        [("E0505", 4, 31)],
    ),
    "pool every money without currency is units": (
        """
        promotion "c" {
          pool category "tools" every 500.00: percent_off 5%
        }
        """,
        [("E0505", 4, 31)],
    ),
    "pool every zero money": (
        """
        promotion "c" {
          pool category "tools" every 0.00 CNY: percent_off 5%
        }
        """,
        [("E0505", 4, 31)],
    ),
    "pool every money in another currency": (
        """
        promotion "c" {
          pool category "tools" every 500.00 USD: percent_off 5%
        }
        """,
        [("E0203", 4, 31)],
    ),
    "pool every in a unit": (
        """
        promotion "c" {
          pool category "tools" every 2 box: percent_off 5%
        }
        """,
        [("E0202", 4, 31)],
    ),
    # gifts
    "gift SKU not in the catalog": (
        """
        promotion "c" {
          pool sku in ("A", "B") every 10: gift 1 of "GG"
        }
        """,
        [("E0303", 4, 46)],
    ),
    "gift quantity zero": (
        """
        promotion "c" {
          pool sku in ("A", "B") every 10: gift 0 of "G"
        }
        """,
        [("E0505", 4, 41)],
    ),
    "gift in an order tier, not in the catalog": (
        """
        promotion "c" {
          order subtotal tiers {
            >= 100.00: percent_off 2%
            >= 200.00: gift 1 of "GX"
          }
        }
        """,
        [("E0303", 6, 26)],
    ),
    "gift on a line promotion is a syntax error": (
        """
        promotion "c" {
          each line: gift 1 of "G"
        }
        """,
        [("E0001", 4, 14)],
    ),
    # order promotions
    "order tiers out of order": (
        """
        promotion "c" {
          order subtotal tiers {
            >= 10000.00: percent_off 4%
            >= 5000.00: percent_off 2%
          }
        }
        """,
        [("E0401", 6, 8)],
    ),
    "order tiers overlap": (
        """
        promotion "c" {
          order subtotal tiers {
            >= 5000.00: percent_off 2%
            >= 5000: percent_off 3%
          }
        }
        """,
        [("E0402", 6, 8)],
    ),
    "order threshold a percentage": (
        """
        promotion "c" {
          order subtotal >= 5%: amount_off 10.00
        }
        """,
        [("E0202", 4, 21)],
    ),
    "order threshold in another currency": (
        """
        promotion "c" {
          order subtotal >= 100.00 USD: amount_off 10.00
        }
        """,
        [("E0203", 4, 21)],
    ),
    "order every zero": (
        """
        promotion "c" {
          order every 0.00: amount_off 5.00
        }
        """,
        [("E0505", 4, 15)],
    ),
    "order when reads a line field": (
        """
        promotion "c" {
          when qty >= 5
          order subtotal >= 100.00: amount_off 10.00
        }
        """,
        [("E0206", 4, 8)],
    ),
    "two scopes": (
        """
        promotion "c" {
          each line: percent_off 5%
          order subtotal >= 100.00: amount_off 10.00
        }
        """,
        [("E0103", 5, 3)],
    ),
    # caps that do not fit the scope
    "max per order on a line promotion": (
        """
        promotion "c" {
          each line: percent_off 5%
          max 3 per order
        }
        """,
        [("E0504", 5, 3)],
    ),
    "max per order on an order threshold": (
        """
        promotion "c" {
          order subtotal >= 100.00: amount_off 10.00, max 3 per order
        }
        """,
        [("E0504", 4, 47)],
    ),
    "max per order on order tiers": (
        """
        promotion "c" {
          order subtotal tiers {
            >= 100.00: percent_off 2%
          }
          max 2 per order
        }
        """,
        [("E0504", 7, 3)],
    ),
    "max gifts per order without gifts": (
        """
        promotion "c" {
          combo 2 of sku "A": percent_off 5%
          max 2 gifts per order
        }
        """,
        [("E0504", 5, 3)],
    ),
    "gift stock without gifts": (
        """
        promotion "c" {
          order subtotal >= 100.00: amount_off 10.00
          gift stock 100
        }
        """,
        [("E0504", 5, 3)],
    ),
    "gift caps on a line promotion": (
        """
        promotion "c" {
          each line: percent_off 5%
          max 2 gifts per order
          gift stock 10
        }
        """,
        [("E0504", 5, 3), ("E0504", 6, 3)],
    ),
    "max discount on a pool gift": (
        """
        promotion "c" {
          pool category "tools" every 10: gift 1 of "G"
          max discount 50.00 per order
        }
        """,
        [("E0504", 5, 3)],
    ),
    "max discount on an order gift": (
        """
        promotion "c" {
          order subtotal >= 1000.00: gift 1 of "G", max discount 50.00 per order
        }
        """,
        [("E0504", 4, 45)],
    ),
    "max discount on a combo gift": (
        """
        promotion "c" {
          combo 1 of sku "A": gift 1 of "G"
          max discount 5.00 per order
        }
        """,
        [("E0504", 5, 3)],
    ),
    "cheapest first on a line promotion": (
        """
        promotion "c" {
          each line: percent_off 5%
          cheapest first
        }
        """,
        [("E0504", 3, 1)],  # see test_cheapest_first_points_at_the_statement
    ),
    # cap values
    "max zero per order": (
        """
        promotion "c" {
          combo 2 of sku "A": amount_off 10.00 per set, max 0 per order
        }
        """,
        [("E0505", 4, 53)],
    ),
    "uses fractional": (
        """
        promotion "c" {
          each line: percent_off 5%
          uses 1.5 per customer
        }
        """,
        [("E0505", 5, 8)],
    ),
    "gift stock zero and max gifts fractional": (
        """
        promotion "c" {
          order subtotal >= 10.00: gift 1 of "G"
          gift stock 0
          max 2.5 gifts per order
        }
        """,
        [("E0505", 5, 14), ("E0505", 6, 7)],
    ),
    "max discount zero": (
        """
        promotion "c" {
          each line: percent_off 5%
          max discount 0.00 per order
        }
        """,
        [("E0505", 5, 16)],
    ),
    "budget a percentage": (
        """
        promotion "c" {
          each line: percent_off 5%
          budget 5%
        }
        """,
        [("E0202", 5, 10)],
    ),
    "budget in another currency": (
        """
        promotion "c" {
          each line: percent_off 5%
          budget 100.00 USD
        }
        """,
        [("E0203", 5, 10)],
    ),
    "budget over-precise": (
        """
        promotion "c" {
          each line: percent_off 5%
          budget 100.005
        }
        """,
        [("E0205", 5, 10)],
    ),
    "max discount a percentage": (
        """
        promotion "c" {
          each line: percent_off 5%
          max discount 10% per order
        }
        """,
        [("E0202", 5, 16)],
    ),
    "cap given twice": (
        """
        promotion "c" {
          each line: percent_off 5%
          max discount 5.00 per order
          max discount 6.00 per order
        }
        """,
        [("E0103", 6, 3)],
    ),
    # floors
    "second floor": (
        """
        floor {
          table floor_prices policy clamp
        }

        floor {
          table floor_prices policy flag
        }
        """,
        [("E0101", 7, 1)],
    ),
    "floor table without a floor column": (
        """
        floor {
          table net_prices policy clamp
        }
        """,
        [("E0302", 3, 1)],  # see test_floor_table_errors_point_at_the_table
    ),
    "floor table unknown": (
        """
        floor {
          table floor_price policy clamp
        }
        """,
        [("E0301", 3, 1)],  # see test_floor_table_errors_point_at_the_table
    ),
    "floor policy unknown": (
        """
        floor {
          table floor_prices policy block
        }
        """,
        [("E0001", 4, 29)],
    ),
    # approval bands
    "approval bands going down": (
        """
        approval "x" {
          up to 15%: channel_manager
          up to 5%: approved
          above: rejected
        }
        """,
        [("E0506", 5, 9)],
    ),
    "approval bands with the same limit": (
        """
        approval "x" {
          up to 10%: sales_manager
          up to 10.00%: channel_manager
        }
        """,
        [("E0506", 5, 9)],
    ),
    "approval above not last": (
        """
        approval "x" {
          up to 5%: approved
          above: rejected
          up to 15%: channel_manager
        }
        """,
        [("E0506", 5, 3)],
    ),
    "approval two aboves": (
        """
        approval "x" {
          above: channel_manager
          above: rejected
        }
        """,
        [("E0506", 4, 3)],
    ),
    "approval band limit over-precise": (
        """
        approval "x" {
          up to 5.125%: approved
        }
        """,
        [("E0205", 4, 9)],
    ),
    "approval when reads a line field": (
        """
        approval "x" {
          when sku == "A"
          up to 5%: approved
        }
        """,
        [("E0206", 4, 8)],
    ),
    "approval with stacking": (
        """
        approval "x" priority 1 stacking exclusive {
          up to 5%: approved
        }
        """,
        [("E0206", 3, 25)],
    ),
    "approval without bands": (
        """
        approval "x" {
          when customer.tier == "gold"
        }
        """,
        [("E0001", 5, 1)],
    ),
}


@pytest.mark.parametrize(("snippet", "expected"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_declaration_gives_exactly_these_diagnostics(
    snippet: str, expected: list[tuple[str, int, int]]
) -> None:
    assert found(snippet) == sorted(expected)


def test_every_new_code_has_a_case() -> None:
    codes = {code for _, expected in INVALID.values() for code, _, _ in expected}
    assert {"E0504", "E0505", "E0506"} <= codes


def test_diagnostics_are_errors() -> None:
    for snippet, _ in INVALID.values():
        assert {d.severity for d in diagnostics(snippet)} == {"error"}


# ---- positions the checker gets wrong today (strict xfail: remove when fixed) ----------------


@pytest.mark.xfail(
    strict=True,
    reason="the tree keeps no span for 'cheapest first'; the caret lands on the promotion's head",
)
def test_cheapest_first_points_at_the_statement() -> None:
    assert found(
        """
        promotion "c" {
          order subtotal >= 500.00: amount_off 20.00
          cheapest first
        }
        """
    ) == [("E0504", 5, 3)]


@pytest.mark.xfail(
    strict=True, reason="a floor's table errors point at 'floor {', not at its table statement"
)
def test_floor_table_errors_point_at_the_table() -> None:
    assert found(
        """
        floor {
          table net_prices policy clamp
        }
        """
    ) == [("E0302", 4, 3)]

"""The checker on rebate, commission, partner-tier and fund declarations: each problem is
reported with its code, its place and a plain message."""

from __future__ import annotations

import pytest

from dsl.check import check
from dsl.parser import parse_sources
from engine.core.data import DataSet

HEAD = 'ruleset "t" currency CNY\n'
DATA = DataSet.from_rows(
    [{"sku": "A", "base_unit": "pcs", "category": "tools"}],
    {
        "rebate_targets": [{"customer_id": "D1", "period": "2026-Q4", "target": "100.00"}],
        "bad_targets": [{"customer_id": "D1", "goal": "1"}],
    },
)

CASES = [
    ('rebate "r" { basis net_amount earn 1% }', "E0502", "rebate 'r' has no period", 2, 8),
    ('rebate "r" { period quarter earn 1% }', "E0502", "rebate 'r' has no basis", 2, 8),
    ('rebate "r" { period quarter basis net_amount }', "E0502", "rebate 'r' pays nothing", 2, 8),
    (
        'rebate "r" { period quarter basis net_amount tiers retroactive by attainment { >= 100%: 2% } }',
        "E0502",
        "tiers by attainment need a target in rebate 'r'",
        2,
        46,
    ),
    (
        'rebate "r" { period quarter basis net_amount target table rebate_targetz earn 1% }',
        "E0301",
        "unknown table 'rebate_targetz'",
        2,
        1,
    ),
    (
        'rebate "r" { period quarter basis net_amount target table bad_targets earn 1% }',
        "E0302",
        "table 'bad_targets' has no column 'period'",
        2,
        1,
    ),
    (
        'rebate "r" { period quarter basis net_amount where brnd == "x" earn 1% }',
        "E0201",
        "unknown field 'brnd'",
        2,
        52,
    ),
    (
        'rebate "r" { period quarter basis net_amount where sku == "Z" earn 1% }',
        "E0303",
        "unknown SKU 'Z'",
        2,
        59,
    ),
    (
        'rebate "r" { period quarter basis qty earn 2% }',
        "E0202",
        "a percentage of a quantity basis is not money",
        2,
        44,
    ),
    (
        'rebate "r" { period quarter basis net_amount tiers retroactive by basis { >= 10.00: 1% >= 5.00: 2% } }',
        "E0401",
        "tier thresholds must increase from step to step",
        2,
        91,
    ),
    (
        'rebate "r" { period quarter basis net_amount tiers retroactive by basis { >= 10.00: 1% >= 10.00: 2% } }',
        "E0402",
        "two tier steps have the same threshold",
        2,
        91,
    ),
    (
        'rebate "r" { period quarter basis net_amount tiers retroactive by basis { >= 10%: 1% } }',
        "E0202",
        "a basis threshold is an amount of money, not a percentage",
        2,
        78,
    ),
    (
        'rebate "r" { period quarter basis net_amount earn 1% cap 10.00 USD per customer }',
        "E0203",
        "amount in USD, but the ruleset's currency is CNY",
        2,
        58,
    ),
    (
        'rebate "r" { period quarter basis net_amount earn 1% cap 10.00 per order }',
        "E0504",
        "a rebate is capped per customer (per period), not per order",
        2,
        54,
    ),
    (
        'rebate "r" { period 2026-12-01 .. 2026-11-01 basis net_amount earn 1% }',
        "E0501",
        "the period starts after it ends",
        2,
        14,
    ),
    (
        'rebate "r" { period quarter basis net_amount earn 101% }',
        "E0205",
        "a rate must be between 0% and 100%, not 101%",
        2,
        51,
    ),
    (
        'fund "f" { period quarter basis net_amount tiers retroactive by basis { >= 0.00: 1% } }',
        "E0504",
        "a fund accrues a flat percentage; tiers do not apply",
        2,
        44,
    ),
    (
        'commission "c" { period quarter cap 10.00 per order }',
        "E0502",
        "commission 'c' earns nothing",
        2,
        12,
    ),
    (
        'commission "c" { period quarter earn 1% of order cap 10.00 per customer }',
        "E0504",
        "a commission is capped per order or per period, not per customer",
        2,
        50,
    ),
    (
        'commission "c" { period quarter earn 5.00 per lead_converted cap 10.00 per order }',
        "E0504",
        "a cap per order needs a commission on orders",
        2,
        62,
    ),
    (
        'partner tiers "p" { period year default "Bronze" }',
        "E0502",
        "partner tiers 'p' have no levels",
        2,
        15,
    ),
    (
        'partner tiers "p" { period year level "Gold" when purchase >= 10.00 }',
        "E0201",
        "unknown metric 'purchase'",
        2,
        51,
    ),
    (
        'partner tiers "p" { period year level "Gold" when leads_submitted >= 1.5 }',
        "E0202",
        "'leads_submitted' is a count, compared with a number",
        2,
        70,
    ),
    (
        'partner tiers "p" { period year level "Gold" when purchases >= 1.00 level "Gold" when orders >= 1 }',
        "E0101",
        "duplicate level name 'Gold'",
        2,
        69,
    ),
    (
        'rebate "r" { period quarter basis net_amount earn 1% }\nrebate "r" { period year basis net_amount earn 1% }',
        "E0101",
        "duplicate rebate name 'r'",
        3,
        8,
    ),
    (
        'rebate "r" { period quarter period year basis net_amount earn 1% }',
        "E0103",
        "'period' is given twice in one declaration",
        2,
        29,
    ),
]


@pytest.mark.parametrize(
    ("source", "code", "message", "line", "col"), CASES, ids=[c[2] for c in CASES]
)
def test_policy_diagnostics(source: str, code: str, message: str, line: int, col: int) -> None:
    from dsl.errors import RuleError

    try:
        ruleset = parse_sources({"r.rule": HEAD + source})
    except RuleError as err:
        diagnostics = list(err.diagnostics)
    else:
        diagnostics = check(ruleset, DATA)[1]
    found = [(d.code, d.message, d.span.line, d.span.col) for d in diagnostics]
    assert (code, message, line, col) in found, found


def test_a_clean_policy_ruleset_checks_without_diagnostics() -> None:
    source = (
        HEAD
        + 'rebate "r" { period quarter basis net_amount where category == "tools" minus returns target table rebate_targets tiers retroactive by attainment { >= 100%: 2% } }'
    )
    assert check(parse_sources({"r.rule": source}), DATA)[1] == []

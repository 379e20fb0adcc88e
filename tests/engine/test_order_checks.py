"""Order checks and commit consumption. The first checks run against the special-price
contract without the engine's special-price stage (the table name is patched in); the
rest price real splits and promotions and pin, to the minor unit, what a commit consumes,
read from the typed pricing result (never from the formatted JSON quote)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.api import compile_ruleset
from engine.core.data import DataSet
from engine.ledger.committed import OrderRecord
from engine.ledger.view import LedgerView
from engine.orders import validation as order_checks
from engine.results import responses

DATA = DataSet.from_rows(
    [{"sku": "A", "base_unit": "pcs"}],
    {
        "standard_prices": [{"sku": "A", "price": "20.00"}],
        "special_prices": [
            {
                "customer_id": "D1",
                "project": "P-778",
                "sku": "A",
                "price": "15.00",
                "qty_quota": "100",
                "amount_quota": "",
            },
            {
                "customer_id": "D1",
                "project": "",
                "sku": "A",
                "price": "16.00",
                "qty_quota": "",
                "amount_quota": "200.00",
            },
        ],
    },
)
PLAN = compile_ruleset(
    {"r.rule": 'ruleset "x" currency CNY\npricelist "standard" { table standard_prices }'}, DATA
)
SPECIAL_PLAN = compile_ruleset(
    {
        "r.rule": 'ruleset "x" currency CNY\npricelist "standard" { table standard_prices }\nspecial prices { table special_prices }'
    },
    DATA,
)


@pytest.fixture(autouse=True)
def special_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_checks, "special_table_name", lambda plan: "special_prices")


def order(project: str | None = "P-778") -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": "O1",
        "date": "2026-11-22",
        "customer": {"id": "D1"},
        "lines": [{"id": "1", "sku": "A", "qty": "30"}],
    }
    if project is not None:
        out["project"] = project
    return out


def test_a_used_up_quota_is_quota_short() -> None:
    spent = LedgerView(special_used={("D1", "P-778", "A"): (100_000, 150_000)})
    v = order_checks.validate_order(PLAN, DATA, spent, order())
    assert [(w["code"], w["line"], w["qty"], w["special_qty"]) for w in v.warnings] == [
        ("quota_short", "1", "30", "0")
    ]
    assert v.ok  # a warning: the order can be committed at the list price
    # 90 of 100 used: something is left, so the engine would split (no finding from this check)
    assert (
        order_checks.validate_order(
            PLAN, DATA, LedgerView(special_used={("D1", "P-778", "A"): (90_000, 0)}), order()
        ).warnings
        == []
    )


def test_the_any_project_row_counts_its_amount_quota() -> None:
    # another project: the row without a project applies; 190.00 of 200.00 used < one unit at 16.00
    spent = LedgerView(special_used={("D1", "", "A"): (0, 19_000)})
    assert [
        w["code"] for w in order_checks.validate_order(PLAN, DATA, spent, order("P-9")).warnings
    ] == ["quota_short"]
    assert (
        order_checks.validate_order(
            PLAN, DATA, LedgerView(special_used={("D1", "", "A"): (0, 18_400)}), order("P-9")
        ).warnings
        == []
    )


def test_a_split_line_is_quota_short_and_consumes_its_special_sub_line() -> None:
    # 80 of P-778's 100 used: 20 at 15.00 = 300.00 (special), 10 at 20.00 = 200.00 (list)
    v = order_checks.validate_order(
        SPECIAL_PLAN, DATA, LedgerView(special_used={("D1", "P-778", "A"): (80_000, 0)}), order()
    )
    assert [(w["code"], w["qty"], w["special_qty"]) for w in v.warnings] == [
        ("quota_short", "30", "20")
    ]
    record = order_checks.order_record(SPECIAL_PLAN, order(), v.priced)
    [special] = [c for c in record.consumption if c.kind == "special"]
    assert (special.customer_id, special.project, special.sku, special.qty, special.amount) == (
        "D1",
        "P-778",
        "A",
        20_000,
        30_000,
    )
    assert (special.limit_qty, special.limit_amount) == (100_000, None)
    assert [(x.sub, x.qty, x.net_amount, x.special) for x in record.lines] == [
        (1, 20_000, 30_000, True),
        (2, 10_000, 20_000, False),
    ]


# ---- what a commit consumes, from the typed pricing result ------------------------------

PROMO_RULES = """\
ruleset "x" currency CNY timezone "Asia/Shanghai" rounding half_up
pricelist "standard" { table standard_prices }
special prices { table special_prices }
promotion "A 10%" priority 20 {
  each line where sku == "A": percent_off 10%
  includes special
  budget 500.00
}
promotion "welcome" priority 10 {
  order subtotal >= 100.00: amount_off 10.00
  uses 1 per customer
}
promotion "every 100 a G" priority 5 {
  order every 100.00: gift 1 of "G"
  gift stock 3
}
"""
PROMO_DATA = DataSet.from_rows(
    [{"sku": "A", "base_unit": "pcs"}, {"sku": "G", "base_unit": "pcs"}],
    {
        "standard_prices": [{"sku": "A", "price": "20.00"}, {"sku": "G", "price": "5.00"}],
        "special_prices": DATA.tables["special_prices"].to_dicts(),
        "fx_rates": [{"from": "CNY", "to": "USD", "date": "2026-01-01", "rate": "0.14"}],
    },
)
PROMO_PLAN = compile_ruleset({"r.rule": PROMO_RULES}, PROMO_DATA)
#: 80 of P-778's qty quota of 100 used: 20 of the 30 A are at the special price
SPENT_80 = LedgerView(special_used={("D1", "P-778", "A"): (80_000, 0)})


def consumed(record: OrderRecord) -> list[tuple[Any, ...]]:
    return [
        (
            c.kind,
            c.promotion,
            c.customer_id,
            c.project,
            c.sku,
            c.qty,
            c.amount,
            c.limit_qty,
            c.limit_amount,
        )
        for c in record.consumption
    ]


def test_a_commit_consumes_budgets_uses_gift_stock_and_the_special_quota_of_a_split_line() -> None:
    v = order_checks.validate_order(PROMO_PLAN, PROMO_DATA, SPENT_80, order())
    assert v.ok
    record = order_checks.order_record(PROMO_PLAN, order(), v.priced, v)
    # special: 20 x 15.00 = 300.00 - 10% (A 10% includes special) = 270.00
    # list:    10 x 20.00 = 200.00 - 10% = 180.00; welcome (180.00 >= 100.00, special left out) -10.00 = 170.00
    # every 100 a G: 170.00 of subtotal -> one G
    assert [
        (x.line_id, x.sub, x.sku, x.qty, x.list_amount, x.discount, x.net_amount, x.tax, x.special)
        for x in record.lines
    ] == [
        ("1", 1, "A", 20_000, 30_000, 3_000, 27_000, 0, True),
        ("1", 2, "A", 10_000, 20_000, 3_000, 17_000, 0, False),
    ]
    assert consumed(record) == [
        (
            "budget",
            "A 10%",
            None,
            None,
            None,
            0,
            5_000,
            None,
            50_000,
        ),  # 30.00 + 20.00 of its 500.00
        ("gift_stock", "every 100 a G", None, None, None, 1, 0, 3, None),
        ("budget", "welcome", None, None, None, 0, 1_000, None, None),  # counted, without a limit
        ("use", "welcome", "D1", None, None, 1, 0, 1, None),
        (
            "special",
            None,
            "D1",
            "P-778",
            "A",
            20_000,
            30_000,
            100_000,
            None,
        ),  # the list amount of the special sub-line
    ]
    assert record.totals == (50_000, 6_000, 44_000, 0, 44_000)
    assert (v.order_total, record.currency, record.date.isoformat()) == (
        44_000,
        "CNY",
        "2026-11-22",
    )


def test_a_cart_in_another_currency_is_consumed_in_its_own_minor_units() -> None:
    usd = {**order(), "currency": "USD"}
    v = order_checks.validate_order(PROMO_PLAN, PROMO_DATA, SPENT_80, usd)
    record = order_checks.order_record(PROMO_PLAN, usd, v.priced, v)
    # CNY -> USD at 0.14, per unit, rounded once: 15.00 -> 2.10, 20.00 -> 2.80; the rules' 10.00 -> 1.40
    # special: 20 x 2.10 = 42.00 - 4.20 = 37.80; list: 10 x 2.80 = 28.00 - 2.80 = 25.20 (>= 14.00) - 1.40 = 23.80
    assert [(x.sub, x.list_amount, x.discount, x.net_amount, x.special) for x in record.lines] == [
        (1, 4_200, 420, 3_780, True),
        (2, 2_800, 420, 2_380, False),
    ]
    assert consumed(record) == [
        ("budget", "A 10%", None, None, None, 0, 700, None, 50_000),
        ("gift_stock", "every 100 a G", None, None, None, 1, 0, 3, None),  # 23.80 >= 14.00
        ("budget", "welcome", None, None, None, 0, 140, None, None),
        ("use", "welcome", "D1", None, None, 1, 0, 1, None),
        ("special", None, "D1", "P-778", "A", 20_000, 4_200, 100_000, None),
    ]
    assert (record.currency, record.totals, v.order_total) == (
        "USD",
        (7_000, 840, 6_160, 0, 6_160),
        6_160,
    )
    # the client's expected figures are compared in the cart's currency
    stale = {
        **usd,
        "expected_total": "61.60",
        "lines": [{"id": "1", "sku": "A", "qty": "30", "expected_net": "61.59"}],
    }
    v = order_checks.validate_order(PROMO_PLAN, PROMO_DATA, SPENT_80, stale)
    assert [(f["code"], f.get("line"), f["expected"], f["actual"]) for f in v.errors] == [
        ("price_changed", "1", "61.59", "61.60")
    ]


def test_validation_and_consumption_never_read_the_formatted_quote(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The JSON writer's money strings are poisoned: the findings and what a commit consumes
    still come out right, because they are read from the typed result, not parsed back."""
    monkeypatch.setattr(
        responses, "money_formatter", lambda currency: lambda minor: f"<{minor} {currency}>"
    )
    stale = {
        **order(),
        "expected_total": "440.00",
        "lines": [{"id": "1", "sku": "A", "qty": "30", "expected_net": "440.01"}],
    }
    v = order_checks.validate_order(PROMO_PLAN, PROMO_DATA, SPENT_80, stale)
    assert v.quote["totals"]["net"] == "<44000 CNY>"  # the response is written from the same result
    assert [(f["code"], f["expected"], f["actual"]) for f in v.errors] == [
        ("price_changed", "440.01", "440.00")
    ]
    record = order_checks.order_record(PROMO_PLAN, stale, v.priced, v)
    assert record.totals == (50_000, 6_000, 44_000, 0, 44_000)
    assert [(c.kind, c.promotion, c.qty, c.amount) for c in record.consumption] == [
        ("budget", "A 10%", 0, 5_000), ("gift_stock", "every 100 a G", 1, 0), ("budget", "welcome", 0, 1_000), ("use", "welcome", 1, 0),
        ("special", None, 20_000, 30_000),
    ]  # fmt: skip


def test_consumption_matches_promotions_by_rule_id_not_by_display_name() -> None:
    """A manual discount on a ruleset with a promotion that is *named* "manual discount"
    (and gives nothing here): neither consumes anything."""
    rules = """\
ruleset "x" currency CNY
pricelist "standard" { table standard_prices }
promotion "manual discount" {
  each line where sku == "G": percent_off 5%
  budget 100.00
}
approval "everyone" priority 0 {
  up to 10%: approved
  above: rejected
}
"""
    plan = compile_ruleset({"r.rule": rules}, PROMO_DATA)
    asked = {
        "id": "O1",
        "date": "2026-11-22",
        "customer": {"id": "D1"},
        "lines": [{"id": "1", "sku": "A", "qty": "1", "manual_discount": "5%"}],
    }
    v = order_checks.validate_order(plan, PROMO_DATA, None, asked)
    assert v.quote["lines"][0]["adjustments"][0]["rule"] == "manual discount"  # 20.00 - 5% = 19.00
    record = order_checks.order_record(plan, asked, v.priced, v)
    assert (consumed(record), record.totals) == ([], (2_000, 100, 1_900, 0, 1_900))

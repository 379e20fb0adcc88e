"""Stage 3, special prices (SPEC §3.3; docs/promotions.md "Special prices"): Q01 and Q02
with their hand-worked figures, on the engine (``engine.api.quote`` with a ``LedgerView``)
and on the oracle (``tests/reference.py``), and each decision docs/promotions.md records.
Q01 needs ledger state, so it runs here rather than through ``POST /price``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from dsl.errors import RuleError
from engine.api import check_ruleset, compile_ruleset, price_frames, quote, quote_batch
from engine.core.data import DataSet
from engine.ledger.view import LedgerView
from tests.engine.test_agreement import (
    ABCD,
    HEADER,
    STANDARD,
    STANDARD_PRICES,
    check_full_agreement,
    ledger_view,
)
from tests.reference import reference_quote

SPECIAL = "special prices {\n  table special_prices\n}\n"


def data_with(special_rows: list[dict[str, Any]], **tables: list[dict[str, Any]]) -> DataSet:
    return DataSet.from_rows(
        ABCD, {"standard_prices": STANDARD_PRICES, "special_prices": special_rows, **tables}
    )


def both(
    rules: str, data: DataSet, cart: dict[str, Any], ledger: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The engine's answer, after checking the oracle gives the same on every figure."""
    sources = {"r.rule": HEADER + rules}
    return check_full_agreement(sources, data, [cart], ledger)[0]


def sublines(line: dict[str, Any]) -> list[tuple[bool, str, str, str]]:
    return [
        (s["special"], s["qty"], s["unit_price"], s["net_amount"])
        for s in line.get("sublines") or []
    ]


Q01_ROW = {
    "customer_id": "D1", "project": "P-778", "sku": "A", "price": "15.00", "qty_quota": "100",
    "valid_from": "2026-10-01", "valid_to": "2026-12-31",
}  # fmt: skip
Q01_LEDGER = {
    "special_consumed": [{"customer_id": "D1", "project": "P-778", "sku": "A", "qty": "80"}]
}
Q01_RULES = (
    STANDARD
    + SPECIAL
    + 'promotion "A5 at 95%" priority 100 {\n  each line where sku == "A" and qty >= 5: percent_off 5%\n}\n'
)
Q01_CART = {
    "currency": "CNY",
    "date": "2026-11-22",
    "customer": {"id": "D1"},
    "project": "P-778",
    "lines": [{"id": "1", "sku": "A", "qty": "30"}],
}


def test_Q01_special_price_split_on_the_engine_and_the_oracle() -> None:
    body = both(Q01_RULES, data_with([Q01_ROW]), Q01_CART, Q01_LEDGER)
    line = body["lines"][0]
    # quota 100 - 80 consumed = 20 at 15.00; the 5% sees the whole line (30 >= 5) and
    # applies to the 10 list-price units only
    assert sublines(line) == [(True, "20", "15.00", "300.00"), (False, "10", "20.00", "190.00")]
    assert [(a["rule"], a["amount"]) for a in line["sublines"][1]["adjustments"]] == [
        ("A5 at 95%", "-10.00")
    ]
    assert line["sublines"][0]["adjustments"] == []
    assert (line["list_amount"], line["net_amount"], line["unit_price"]) == (
        "500.00",
        "490.00",
        "20.00",
    )
    assert [(a["rule"], a["amount"]) for a in line["adjustments"]] == [("A5 at 95%", "-10.00")]
    assert body["totals"]["net"] == "490.00"


def test_Q01_without_the_ledger_the_whole_line_is_special() -> None:
    body = both(Q01_RULES, data_with([Q01_ROW]), Q01_CART)
    assert sublines(body["lines"][0]) == [(True, "30", "15.00", "450.00")]


def test_Q02_amount_quota_limits_the_special_part_to_whole_units() -> None:
    row = {
        "customer_id": "D1",
        "project": "P-9",
        "sku": "A",
        "price": "15.00",
        "qty_quota": "100",
        "amount_quota": "200.00",
    }
    cart = {
        "date": "2026-11-22",
        "customer": {"id": "D1"},
        "project": "P-9",
        "lines": [{"id": "1", "sku": "A", "qty": "30"}],
    }
    body = both(STANDARD + SPECIAL, data_with([row]), cart)
    # 200.00 / 15.00 -> 13 whole units (195.00); the other 17 at 20.00
    assert sublines(body["lines"][0]) == [
        (True, "13", "15.00", "195.00"),
        (False, "17", "20.00", "340.00"),
    ]
    assert body["totals"]["net"] == "535.00"


def test_lines_of_one_cart_take_from_the_quota_in_cart_order() -> None:
    row = {"customer_id": "D1", "project": "", "sku": "A", "price": "15.00", "qty_quota": "25"}
    cart = {
        "date": "2026-11-22",
        "customer": {"id": "D1"},
        "lines": [
            {"sku": "A", "qty": "10"},
            {"sku": "B", "qty": "1"},
            {"sku": "A", "qty": "20"},
            {"sku": "A", "qty": "5"},
        ],
    }
    body = both(STANDARD + SPECIAL, data_with([row]), cart)
    a1, b, a2, a3 = body["lines"]
    assert sublines(a1) == [(True, "10", "15.00", "150.00")]
    assert "sublines" not in b
    assert sublines(a2) == [(True, "15", "15.00", "225.00"), (False, "5", "20.00", "100.00")]
    assert "sublines" not in a3  # nothing left: an unsplit line


def test_the_project_row_wins_and_a_blank_project_row_serves_other_carts() -> None:
    rows = [
        {"customer_id": "D1", "project": "", "sku": "A", "price": "18.00"},
        {
            "customer_id": "D1",
            "project": "P-1",
            "sku": "A",
            "price": "12.00",
            "valid_to": "2026-11-30",
        },
    ]
    data = data_with(rows)
    on_project = {
        "date": "2026-11-22",
        "customer": {"id": "D1"},
        "project": "P-1",
        "lines": [{"sku": "A", "qty": "2"}],
    }
    assert sublines(both(STANDARD + SPECIAL, data, on_project)["lines"][0]) == [
        (True, "2", "12.00", "24.00")
    ]
    other = {**on_project, "project": "P-2"}
    assert sublines(both(STANDARD + SPECIAL, data, other)["lines"][0]) == [
        (True, "2", "18.00", "36.00")
    ]
    # outside the project row's window the customer's row applies
    late = {**on_project, "date": "2026-12-01"}
    assert sublines(both(STANDARD + SPECIAL, data, late)["lines"][0]) == [
        (True, "2", "18.00", "36.00")
    ]
    stranger = {**on_project, "customer": {"id": "D2"}}
    assert "sublines" not in both(STANDARD + SPECIAL, data, stranger)["lines"][0]


def test_special_sub_lines_count_only_towards_promotions_that_include_them() -> None:
    row = {"customer_id": "D1", "project": "", "sku": "A", "price": "15.00", "qty_quota": "10"}
    rules = (
        STANDARD + SPECIAL
        + 'promotion "all 10%" {\n  each line: percent_off 10%\n  includes special\n}\n'
        + 'promotion "spend 300" {\n  order subtotal >= 300.00: amount_off 30.00\n}\n'
        + 'promotion "spend 300 incl" priority -1 {\n  order subtotal >= 300.00: amount_off 10.00\n  includes special\n}\n'
    )  # fmt: skip
    cart = {"date": "2026-11-22", "customer": {"id": "D1"}, "lines": [{"sku": "A", "qty": "20"}]}
    line = both(rules, data_with([row]), cart)["lines"][0]
    special, listed = line["sublines"]
    # 10 @ 15.00 = 150.00 - 10% = 135.00; 10 @ 20.00 = 200.00 - 10% = 180.00. Subtotal
    # without special sub-lines 180.00 (< 300); with them 315.00: only the second applies
    assert [(a["rule"], a["amount"]) for a in special["adjustments"]] == [
        ("all 10%", "-15.00"),
        ("spend 300 incl", "-4.29"),
    ]
    assert [(a["rule"], a["amount"]) for a in listed["adjustments"]] == [
        ("all 10%", "-20.00"),
        ("spend 300 incl", "-5.71"),
    ]
    assert line["net_amount"] == "305.00"


def test_a_cart_in_another_currency_converts_the_special_price() -> None:
    row = {"customer_id": "D1", "project": "", "sku": "A", "price": "15.00", "qty_quota": "2"}
    fx = [{"from": "CNY", "to": "USD", "date": "2026-11-01", "rate": "0.14"}]
    cart = {
        "currency": "USD",
        "date": "2026-11-22",
        "customer": {"id": "D1"},
        "lines": [{"sku": "A", "qty": "3"}],
    }
    line = both(STANDARD + SPECIAL, data_with([row], fx_rates=fx), cart)["lines"][0]
    assert sublines(line) == [(True, "2", "2.10", "4.20"), (False, "1", "2.80", "2.80")]
    no_rate = {**cart, "date": "2026-10-22"}
    assert (
        both(STANDARD + SPECIAL, data_with([row], fx_rates=fx), no_rate)["lines"][0]["error"][
            "code"
        ]
        == "no_fx_rate"
    )


def test_price_frames_gives_one_row_per_sub_line() -> None:
    plan = compile_ruleset({"r.rule": HEADER + Q01_RULES}, data_with([Q01_ROW]))
    carts = pl.DataFrame(
        {"cart_id": ["c1"], "date": ["2026-11-22"], "customer_id": ["D1"], "project": ["P-778"]}
    )
    lines = pl.DataFrame(
        {"cart_id": ["c1", "c1"], "line_id": ["1", "2"], "sku": ["A", "B"], "qty": ["30", "1"]}
    )
    out = price_frames(plan, carts, lines, ledger=ledger_view(Q01_LEDGER, "CNY"))
    assert out.select(
        "line_id", "special", "list_amount_minor", "discount_minor", "net_amount_minor"
    ).rows() == [
        ("1", True, 30000, 0, 30000),
        ("1", False, 20000, -1000, 19000),
        ("2", False, 3000, 0, 3000),
    ]


def test_quote_and_quote_batch_take_the_ledger_snapshot() -> None:
    plan = compile_ruleset({"r.rule": HEADER + Q01_RULES}, data_with([Q01_ROW]))
    used_up = LedgerView(special_used={("D1", "P-778", "A"): (100_000, 0)})
    assert "sublines" not in quote(plan, Q01_CART, ledger=used_up)["lines"][0]
    assert quote_batch(plan, [Q01_CART], ledger=used_up)[0]["totals"]["net"] == "570.00"


def codes(rules: str, data: DataSet) -> list[str]:
    return [
        d.code for d in check_ruleset({"r.rule": HEADER + rules}, data) if d.severity == "error"
    ]


def test_the_checker_names_the_special_price_table_problems() -> None:
    data = data_with([Q01_ROW])
    assert codes(STANDARD + SPECIAL, data) == []
    assert codes(STANDARD + "special prices {\n  table specials\n}\n", data) == ["E0301"]
    no_price = DataSet.from_rows(
        ABCD,
        {"standard_prices": STANDARD_PRICES, "special_prices": [{"customer_id": "D1", "sku": "A"}]},
    )
    assert codes(STANDARD + SPECIAL, no_price) == ["E0302"]
    assert codes(STANDARD + SPECIAL + SPECIAL, data) == ["E0101"]
    assert codes(
        STANDARD + 'promotion "p" {\n  each line: percent_off 5%\n  includes special\n}\n', data
    ) == ["E0504"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"customer_id": "D1", "sku": "NOPE", "price": "1"}, "unknown sku 'NOPE'"),
        ({"customer_id": "D1", "sku": "A", "price": "1.234"}, "is not an amount of CNY"),
        (
            {"customer_id": "D1", "sku": "A", "price": "1", "qty_quota": "x"},
            "qty_quota 'x' is not a quantity",
        ),
        (
            {
                "customer_id": "D1",
                "sku": "A",
                "price": "1",
                "valid_from": "2026-12-01",
                "valid_to": "2026-11-01",
            },
            "valid_to is before valid_from",
        ),
    ],
)
def test_bad_special_price_rows_refuse_the_ruleset_naming_the_row(
    row: dict[str, Any], message: str
) -> None:
    with pytest.raises(RuleError) as err:
        compile_ruleset({"r.rule": HEADER + STANDARD + SPECIAL}, data_with([row]))
    assert message in err.value.render()


def test_two_rows_for_one_customer_project_and_sku_are_refused() -> None:
    rows = [
        {"customer_id": "D1", "sku": "A", "price": "1"},
        {"customer_id": "D1", "sku": "A", "price": "2"},
    ]
    with pytest.raises(RuleError) as err:
        compile_ruleset({"r.rule": HEADER + STANDARD + SPECIAL}, data_with(rows))
    assert "a second special price" in err.value.render()


def test_the_reference_reads_the_scenario_ledger_shape() -> None:
    response = reference_quote(
        {"r.rule": HEADER + Q01_RULES}, data_with([Q01_ROW]), Q01_CART, ledger=Q01_LEDGER
    )
    assert sublines(response["lines"][0]) == [
        (True, "20", "15.00", "300.00"),
        (False, "10", "20.00", "190.00"),
    ]


def test_the_language_guide_example_prices_as_it_says() -> None:
    """docs/language.md "Special prices": 20 special + 10 listed with 5% off = 490.00, and
    the order promotion that includes special counts both sub-lines (490.00 < 500.00)."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "language.md").read_text(
        encoding="utf-8"
    )
    block = guide.split("### Special prices", 1)[1].split("```rule\n")[2].split("```", 1)[0]
    assert "includes special" in block
    line = both(STANDARD + block, data_with([Q01_ROW]), Q01_CART, Q01_LEDGER)["lines"][0]
    assert sublines(line) == [(True, "20", "15.00", "300.00"), (False, "10", "20.00", "190.00")]
    assert line["net_amount"] == "490.00"
    # one more D (50.00) reaches 500.00: 20.00 off, spread over both sub-lines and D
    more = {**Q01_CART, "lines": [*Q01_CART["lines"], {"id": "2", "sku": "D", "qty": "1"}]}
    body = both(STANDARD + block, data_with([Q01_ROW]), more, Q01_LEDGER)
    assert body["totals"]["net"] == "520.00"
    assert [a["amount"] for a in body["lines"][0]["sublines"][0]["adjustments"]] == ["-11.11"]

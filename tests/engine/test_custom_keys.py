"""A price list keyed by a custom customer attribute prices every path alike.

``keyed by customer.sector`` reads the ``customer_sector`` column of the price table
against the cart's ``customer.sector``. No condition of the ruleset reads the attribute:
the key alone must make the plan carry it (issue 9: ``quote`` skipped the list and
``quote_batch`` failed with ``ColumnNotFoundError``).

Figures, by hand (CNY, no tax, no promotions):

| cart | sector | line | list | unit price | amount |
| --- | --- | --- | --- | --- | --- |
| H | hospital | 2 A | sector prices | 15.00 | 30.00 |
| H | hospital | 1 B | sector prices | 27.00 | 27.00 |
| S | school | 3 A | sector prices | 12.50 | 37.50 |
| S | school | 1 B | standard (no school row for B) | 30.00 | 30.00 |

H nets 57.00, S nets 67.50.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.api import compile_ruleset, price_frames, quote, quote_batch
from engine.core.data import DataSet
from engine.ledger.store import Store
from engine.plan.compiled import Plan
from server.app import create_app
from server.settings import Settings
from tests.reference import reference_quote

with warnings.catch_warnings():  # starlette's notice about httpx, not about our code
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

RULESET = """\
ruleset "keys" currency CNY timezone "Asia/Shanghai" rounding half_up
attribute customer.sector
pricelist "sector prices" priority 100 { table sector_prices keyed by customer.sector }
pricelist "standard" priority 0 { table standard_prices }
"""

CATALOG = [{"sku": "A", "base_unit": "pcs"}, {"sku": "B", "base_unit": "pcs"}]
STANDARD_PRICES = [{"sku": "A", "price": "20.00"}, {"sku": "B", "price": "30.00"}]
SECTOR_PRICES = [
    {"sku": "A", "customer_sector": "hospital", "price": "15.00"},
    {"sku": "B", "customer_sector": "hospital", "price": "27.00"},
    {"sku": "A", "customer_sector": "school", "price": "12.50"},
]

HOSPITAL: dict[str, Any] = {
    "date": "2026-11-22",
    "customer": {"id": "D1", "sector": "hospital"},
    "lines": [{"id": "1", "sku": "A", "qty": "2"}, {"id": "2", "sku": "B", "qty": "1"}],
}
SCHOOL: dict[str, Any] = {
    "date": "2026-11-22",
    "customer": {"id": "D2", "sector": "school"},
    "lines": [{"id": "1", "sku": "A", "qty": "3"}, {"id": "2", "sku": "B", "qty": "1"}],
}

#: (price list, unit price, list amount, net amount) per line id
HOSPITAL_LINES = {
    "1": ("sector prices", "15.00", "30.00", "30.00"),
    "2": ("sector prices", "27.00", "27.00", "27.00"),
}
SCHOOL_LINES = {
    "1": ("sector prices", "12.50", "37.50", "37.50"),
    "2": ("standard", "30.00", "30.00", "30.00"),
}


def data() -> DataSet:
    return DataSet.from_rows(
        CATALOG, {"standard_prices": STANDARD_PRICES, "sector_prices": SECTOR_PRICES}
    )


@pytest.fixture(scope="module")
def plan() -> Plan:
    return compile_ruleset({"keys.rule": RULESET}, data())


def priced_lines(response: dict[str, Any]) -> dict[str, tuple[str, str, str, str]]:
    return {
        line["id"]: (
            line["price_list"],
            line["unit_price"],
            line["list_amount"],
            line["net_amount"],
        )
        for line in response["lines"]
    }


def test_plan_carries_the_attribute_a_list_is_keyed_by(plan: Plan) -> None:
    assert "sector" in plan.customer_attrs


def test_quote_prices_one_cart_from_its_sectors_rows(plan: Plan) -> None:
    response = quote(plan, HOSPITAL)

    assert priced_lines(response) == HOSPITAL_LINES
    assert (response["totals"]["list"], response["totals"]["net"]) == ("57.00", "57.00")


def test_quote_batch_prices_each_cart_by_its_own_sector(plan: Plan) -> None:
    hospital, school = quote_batch(plan, [HOSPITAL, SCHOOL])

    assert priced_lines(hospital) == HOSPITAL_LINES
    assert priced_lines(school) == SCHOOL_LINES
    assert (hospital["totals"]["net"], school["totals"]["net"]) == ("57.00", "67.50")


def test_a_cart_without_the_attribute_falls_through_to_standard(plan: Plan) -> None:
    cart = {**HOSPITAL, "customer": {"id": "D3"}}

    (response,) = quote_batch(plan, [cart])

    assert priced_lines(response) == {
        "1": ("standard", "20.00", "40.00", "40.00"),
        "2": ("standard", "30.00", "30.00", "30.00"),
    }
    assert quote(plan, cart)["totals"]["net"] == "70.00"


def test_price_frames_reads_the_attribute_from_a_customer_column(plan: Plan) -> None:
    carts = pl.DataFrame(
        {
            "cart_id": ["H", "S", "N"],
            "date": ["2026-11-22"] * 3,
            "customer_id": ["D1", "D2", "D3"],
            "customer_sector": ["hospital", "school", None],
        }
    )
    lines = pl.DataFrame(
        {
            "cart_id": ["H", "H", "S", "S", "N"],
            "line_id": ["1", "2", "1", "2", "1"],
            "sku": ["A", "B", "A", "B", "A"],
            "qty": ["2", "1", "3", "1", "1"],
        }
    )

    out = price_frames(plan, carts, lines)

    assert out.select(
        "cart_id",
        "line_id",
        "price_list",
        "unit_price_minor",
        "list_amount_minor",
        "net_amount_minor",
    ).rows() == [
        ("H", "1", "sector prices", 1500, 3000, 3000),
        ("H", "2", "sector prices", 2700, 2700, 2700),
        ("S", "1", "sector prices", 1250, 3750, 3750),
        ("S", "2", "standard", 3000, 3000, 3000),
        ("N", "1", "standard", 2000, 2000, 2000),
    ]


# ---- through the HTTP app --------------------------------------------------------------


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "main.rule").write_text(RULESET, encoding="utf-8")
    db_path = tmp_path / "data" / "pricer.duckdb"
    with Store(db_path) as store:
        store.load_frame("catalog", pl.DataFrame(CATALOG))
        store.load_frame("standard_prices", pl.DataFrame(STANDARD_PRICES))
        store.load_frame("sector_prices", pl.DataFrame(SECTOR_PRICES))
    settings_ = Settings(
        data_dir=db_path.parent,
        db_path=db_path,
        rules_dir=rules_dir,
        admin_token="test-admin-token",  # type: ignore[arg-type]
        max_lines_per_cart=1000,
        max_carts_per_batch=5,
        max_body_bytes=256 * 1024,
    )
    with TestClient(create_app(settings_)) as test_client:
        yield test_client


def test_http_price_uses_the_keyed_list(client: TestClient) -> None:
    resp = client.post("/price", json=HOSPITAL)

    assert resp.status_code == 200
    assert priced_lines(resp.json()) == HOSPITAL_LINES
    assert resp.json()["totals"]["net"] == "57.00"


def test_http_price_batch_prices_two_sectors(client: TestClient) -> None:
    resp = client.post("/price/batch", json={"carts": [HOSPITAL, SCHOOL]})

    assert resp.status_code == 200
    hospital, school = resp.json()["quotes"]
    assert priced_lines(hospital) == HOSPITAL_LINES
    assert priced_lines(school) == SCHOOL_LINES
    assert (hospital["totals"]["net"], school["totals"]["net"]) == ("57.00", "67.50")


# ---- against the reference interpreter -------------------------------------------------

SECTORS = st.text(alphabet="abcxyz", min_size=1, max_size=3)
PRICES = st.integers(min_value=1, max_value=99_999).map(
    lambda minor: f"{minor // 100}.{minor % 100:02d}"
)


@st.composite
def keyed_cases(draw: st.DrawFn) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Rows of ``sector_prices`` for random sector values, and carts whose sector is one
    of them, another value or missing."""
    sectors = draw(st.lists(SECTORS, min_size=1, max_size=4, unique=True))
    pairs = draw(
        st.lists(
            st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(sectors)),
            min_size=1,
            max_size=8,
            unique=True,
        )
    )
    rows = [{"sku": sku, "customer_sector": sector, "price": draw(PRICES)} for sku, sector in pairs]
    carts = []
    for c in range(draw(st.integers(min_value=1, max_value=5))):
        sector = draw(st.one_of(st.sampled_from(sectors), SECTORS, st.none()))
        customer = {"id": f"D{c}"} if sector is None else {"id": f"D{c}", "sector": sector}
        skus = draw(st.lists(st.sampled_from(["A", "B"]), min_size=1, max_size=3))
        lines = [
            {"id": str(i + 1), "sku": sku, "qty": str(draw(st.integers(min_value=1, max_value=20)))}
            for i, sku in enumerate(skus)
        ]
        carts.append({"date": "2026-11-22", "customer": customer, "lines": lines})
    return rows, carts


def comparable(response: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    return [
        (line["id"], line["status"], line["price_list"], line["unit_price"], line["net_amount"])
        for line in response["lines"]
    ]


@settings(max_examples=60, deadline=None)
@given(case=keyed_cases())
def test_quote_batch_agrees_with_reference_on_random_sector_keys(
    case: tuple[list[dict[str, str]], list[dict[str, Any]]],
) -> None:
    rows, carts = case
    data_ = DataSet.from_rows(CATALOG, {"standard_prices": STANDARD_PRICES, "sector_prices": rows})
    sources = {"keys.rule": RULESET}
    plan = compile_ruleset(sources, data_)

    expected = [comparable(reference_quote(sources, data_, cart)) for cart in carts]

    assert [comparable(r) for r in quote_batch(plan, carts)] == expected
    assert [comparable(quote(plan, cart)) for cart in carts] == expected

"""The demo data: deterministic, loadable through the store, and priceable by a ruleset."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.api import compile_ruleset, quote
from engine.ledger.store import Store
from server import demo

DEMO_RULES = """\
ruleset "demo" currency CNY timezone "Asia/Shanghai" rounding half_up
pricelist "customer prices" priority 300 { table customer_prices keyed by customer.id }
pricelist "gold" priority 200 { when customer.tier == "gold" table gold_prices }
pricelist "export" priority 100 { when customer.region == "US" currency USD table export_prices }
pricelist "standard" priority 0 { table standard_prices }
tax "vat" { table tax_rates }
"""


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    return demo.generate()


def test_same_seed_gives_the_same_tables(tables: dict[str, pl.DataFrame]) -> None:
    again = demo.generate()
    assert set(again) == set(tables)
    for name, frame in tables.items():
        assert_frame_equal(again[name], frame)
    assert not demo.generate(seed=7)["standard_prices"].equals(tables["standard_prices"])


def test_catalog_has_3000_skus_in_12_categories_5_brands_and_one_kit(
    tables: dict[str, pl.DataFrame],
) -> None:
    catalog = tables["catalog"]
    assert catalog.height == 3001  # 3,000 products and the installer kit (a bundle)
    kit = catalog.filter(pl.col("sku") == "KIT-0001")
    assert kit.select("category", "components").rows() == [
        ("kits", "TL-0001:2;EL-0001:1;SF-0001:1")
    ]
    assert catalog.filter(pl.col("category") != "kits").get_column("category").n_unique() == 12
    assert catalog.get_column("brand").n_unique() == 5
    cables = catalog.filter(pl.col("category") == "cables")
    assert cables.get_column("base_unit").unique().to_list() == ["m"]
    books = catalog.filter(pl.col("tax_class") == "books")
    assert books.get_column("sku").str.starts_with("BK-").all()


def test_tour_skus_exist_with_standard_prices(tables: dict[str, pl.DataFrame]) -> None:
    catalog = tables["catalog"].filter(pl.col("sku").is_in(["TL-0001", "TL-0002", "CB-0001"]))
    assert catalog.select("sku", "base_unit", "units").rows() == [
        ("TL-0001", "pcs", "box=12"),
        ("TL-0002", "pcs", "box=12"),
        ("CB-0001", "m", "reel=100"),
    ]
    standard = tables["standard_prices"]
    assert standard.filter(pl.col("sku") == "TL-0001").get_column("min_qty").to_list() == [
        "0",
        "10",
        "50",
    ]
    assert standard.filter(pl.col("sku") == "TL-0002").height == 1
    assert standard.filter(pl.col("sku") == "CB-0001").height >= 1


def test_customer_prices_cover_200_customers(tables: dict[str, pl.DataFrame]) -> None:
    assert tables["customer_prices"].get_column("customer_id").n_unique() == 200
    customers = tables["demo_customers"]
    assert set(customers.get_column("tier").unique()) == {"gold", "silver", "bronze"}
    assert set(customers.get_column("region").unique()) == set(demo.CUSTOMER_REGIONS)


def test_if_empty_writes_once_then_leaves_the_store_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "demo.duckdb"
    assert demo.main(["--db", str(db), "--if-empty", "--skus", "120", "--customers", "10"]) == 0
    assert "catalog: 121 rows" in capsys.readouterr().out  # 120 products and the kit
    assert demo.main(["--db", str(db), "--if-empty"]) == 0
    assert "store already has data" in capsys.readouterr().out
    with Store(db) as store:
        assert store.snapshot().catalog.height == 121


def test_demo_data_prices_through_a_ruleset(
    tables: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    with Store(tmp_path / "demo.duckdb") as store:
        demo.write(store, tables)
        plan = compile_ruleset({"demo.rule": DEMO_RULES}, store.snapshot())
    cart = {
        "date": "2026-11-22",
        "customer": {"id": "NEW", "tier": "bronze", "region": "north"},
        "lines": [
            {"sku": "TL-0001", "qty": "2"},
            {"sku": "TL-0001", "qty": "60"},
            {"sku": "CB-0001", "qty": "12.5"},
            {"sku": "BK-0001", "qty": "1"},
        ],
    }
    lines = quote(plan, cart)["lines"]
    assert [line["status"] for line in lines] == ["ok"] * 4
    assert [line["tax_rate"] for line in lines] == ["13%", "13%", "13%", "9%"]
    first, bulk = lines[0]["unit_price"], lines[1]["unit_price"]
    ten_off = (Decimal(first) * Decimal("0.90")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert Decimal(bulk) == ten_off  # the 50+ break of standard_prices
    us = quote(plan, {**cart, "customer": {"id": "NEW", "region": "US"}})["lines"]
    assert {line["price_list"] for line in us} == {"export"}
    assert {line["tax_rate"] for line in us} == {"0%"}

"""Fixtures for the HTTP API and CLI tests: a tiny ruleset, a store holding its data, an app."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

with warnings.catch_warnings():  # starlette's notice about httpx, not about our code
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from engine.ledger.store import Store
from server.app import create_app
from server.settings import Settings

ADMIN_TOKEN = "test-admin-token"

RULESET = """\
ruleset "t" currency CNY timezone "Asia/Shanghai" rounding half_up
pricelist "standard" priority 0 { table standard_prices }
promotion "ten" priority 100 { each line where sku == "A": percent_off 10% }
tax "vat" { table tax_rates }
"""

#: The same ruleset with 20% off instead of 10%: a different version.
RULESET_20 = RULESET.replace("percent_off 10%", "percent_off 20%")

#: An unknown table on line 2: a check error.
BROKEN = RULESET.replace("table standard_prices", "table standard_pricez")

CART: dict[str, Any] = {
    "currency": "CNY",
    "date": "2026-11-22",
    "customer": {"id": "D1", "region": "CN"},
    "lines": [{"sku": "A", "qty": "2"}],
}


def write_ruleset(directory: Path, source: str = RULESET) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.rule").write_text(source, encoding="utf-8")
    return directory


def fill_store(path: Path) -> None:
    with Store(path) as store:
        store.load_frame(
            "catalog", pl.DataFrame({"sku": ["A"], "base_unit": ["pcs"], "units": ["box=12"]})
        )
        store.load_frame("standard_prices", pl.DataFrame({"sku": ["A"], "price": ["20.00"]}))
        store.load_frame("tax_rates", pl.DataFrame({"region": ["CN"], "rate": ["13%"]}))


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return write_ruleset(tmp_path / "rules")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "pricer.duckdb"
    fill_store(path)
    return path


@pytest.fixture
def settings(db_path: Path, rules_dir: Path) -> Settings:
    return Settings(
        db_path=db_path,
        rules_dir=rules_dir,
        admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
        max_lines_per_cart=1000,
        max_carts_per_batch=5,
        max_body_bytes=256 * 1024,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

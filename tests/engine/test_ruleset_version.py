"""``Plan.version`` (docs/engine-api.md): a content digest of the rule files keyed by their
path inside the ruleset folder, the catalog and every data table; nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from engine.api import compile_ruleset, load_sources, quote
from engine.core.data import DataSet

MAIN = """\
ruleset "v" currency CNY timezone "Asia/Shanghai"
pricelist "standard" priority 0 { table standard_prices }
"""
PROMO = 'promotion "ten" priority 100 { each line where sku == "A": percent_off 10% }\n'

CATALOG = [{"sku": "A", "base_unit": "pcs"}, {"sku": "B", "base_unit": "pcs"}]
PRICES = [{"sku": "A", "price": "20.00"}, {"sku": "B", "price": "5.00"}]
CART: dict[str, Any] = {
    "date": "2026-11-22",
    "lines": [{"sku": "A", "qty": "2"}, {"sku": "B", "qty": "1"}],
}

ROOT = Path(__file__).resolve().parents[2]


def write_rules(folder: Path, files: dict[str, str] | None = None) -> Path:
    for name, text in (files or {"main.rule": MAIN, "promos/ten.rule": PROMO}).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def data(prices: list[dict[str, Any]] = PRICES, **tables: list[dict[str, Any]]) -> DataSet:
    return DataSet.from_rows(CATALOG, {"standard_prices": prices, **tables})


def test_same_rules_in_two_folders_have_the_same_version(tmp_path: Path) -> None:
    here = load_sources(write_rules(tmp_path / "one" / "rules"))
    there = load_sources(write_rules(tmp_path / "elsewhere" / "deeper" / "ruleset"))
    assert sorted(here) != sorted(there)  # the display paths differ...

    a, b = compile_ruleset(here, data()), compile_ruleset(there, data())

    assert a.version == b.version  # ...the version does not
    assert a.version.startswith("sha256:") and len(a.version) == len("sha256:") + 16


def test_renaming_a_file_inside_the_folder_changes_the_version(tmp_path: Path) -> None:
    before = load_sources(write_rules(tmp_path / "a"))
    after = load_sources(
        write_rules(tmp_path / "b", {"main.rule": MAIN, "promos/ten_pct.rule": PROMO})
    )
    assert compile_ruleset(before, data()).version != compile_ruleset(after, data()).version


def test_a_changed_price_row_changes_the_version(tmp_path: Path) -> None:
    sources = load_sources(write_rules(tmp_path / "rules"))
    dearer = [{"sku": "A", "price": "25.00"}, {"sku": "B", "price": "5.00"}]

    old, new = compile_ruleset(sources, data()), compile_ruleset(sources, data(dearer))

    # 2 x 20.00 less 10% + 5.00 = 41.00; at 25.00: 2 x 25.00 less 10% + 5.00 = 50.00
    assert quote(old, CART)["totals"]["net"] == "41.00"
    assert quote(new, CART)["totals"]["net"] == "50.00"
    assert old.version != new.version
    assert quote(new, CART)["ruleset_version"] == new.version


def test_a_new_data_table_or_catalog_row_changes_the_version(tmp_path: Path) -> None:
    sources = load_sources(write_rules(tmp_path / "rules"))
    base = compile_ruleset(sources, data()).version

    with_table = data(stock=[{"sku": "A", "qty": "3"}])
    more_catalog = DataSet.from_rows(
        [*CATALOG, {"sku": "C", "base_unit": "pcs"}], {"standard_prices": PRICES}
    )

    assert compile_ruleset(sources, with_table).version != base
    assert compile_ruleset(sources, more_catalog).version != base
    assert compile_ruleset(sources, data()).version == base


def test_a_changed_rule_file_changes_the_version(tmp_path: Path) -> None:
    old = load_sources(write_rules(tmp_path / "old"))
    new = load_sources(
        write_rules(
            tmp_path / "new", {"main.rule": MAIN, "promos/ten.rule": PROMO.replace("10%", "20%")}
        )
    )
    assert compile_ruleset(old, data()).version != compile_ruleset(new, data()).version


SCRIPT = """\
import sys
from engine.api import compile_ruleset, load_sources
from tests.engine.test_ruleset_version import data
print(compile_ruleset(load_sources(sys.argv[1]), data()).version)
"""


def test_same_inputs_in_a_fresh_process_give_the_same_version(tmp_path: Path) -> None:
    folder = write_rules(tmp_path / "rules")
    here = compile_ruleset(load_sources(folder), data()).version
    env = {
        **os.environ,
        "PYTHONHASHSEED": "12345" if os.environ.get("PYTHONHASHSEED") != "12345" else "54321",
    }

    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    assert done.stdout.strip() == here

"""``pricer diff``: historical orders re-priced under two rulesets, compared exactly."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from engine.api import compile_ruleset
from engine.batch.history import load_frame
from engine.batch.whatif import diff
from engine.core.data import DataSet
from server.cli import main

HEAD = 'ruleset "t" currency CNY timezone "Asia/Shanghai" rounding half_up\npricelist "std" priority 0 { table standard_prices }\n'
OLD = HEAD + 'promotion "A off" priority 10 { each line where sku == "A": percent_off 10% }\n'
NEW = (
    HEAD
    + 'promotion "A off" priority 10 { each line where sku == "A": percent_off 20% }\npromotion "B off" priority 5 { each line where sku == "B": amount_off 1.00 }\n'
)
CATALOG = pl.DataFrame({"sku": ["A", "B"], "base_unit": ["pcs", "pcs"]})
PRICES = pl.DataFrame({"sku": ["A", "B"], "price": ["10.00", "3.33"]})
LINES = pl.DataFrame(
    {
        "order_id": ["O1", "O1", "O2"],
        "line_id": ["1", "2", "1"],
        "date": ["2026-11-02", "2026-11-02", "2026-12-01"],
        "customer_id": ["D1", "D1", "D2"],
        "sku": ["A", "B", "A"],
        "qty": ["3", "2.5", "1"],
        "net_amount": ["27.00", "8.33", "9.00"],
        "currency": ["CNY", "CNY", "CNY"],
    }
)


def test_diff_figures_by_partner_sku_and_rule() -> None:
    data = DataSet(catalog=CATALOG, tables={"standard_prices": PRICES})
    lines = load_frame("order_lines", LINES, "CNY").collect()
    report = diff(
        compile_ruleset({"a.rule": OLD}, data), compile_ruleset({"a.rule": NEW}, data), lines
    )
    # O1: A 3 x 10.00 = 30.00, 10% -> 27.00, 20% -> 24.00; B 2.5 x 3.33 = 8.33 (8.325 half up),
    # new: 1.00 off per unit = 2.50 -> 5.83. O2: A 10.00 -> 9.00 / 8.00.
    assert report.lines.select("net_old", "net_new", "net_delta").rows() == [
        (2700, 2400, -300),
        (833, 583, -250),
        (900, 800, -100),
    ]
    totals = report.totals.row(0, named=True)
    assert (
        totals["list_old"],
        totals["discount_old"],
        totals["net_old"],
        totals["net_new"],
        totals["net_delta"],
    ) == (4833, -400, 4433, 3783, -650)
    assert report.by_partner.select("customer_id", "net_delta", "changed").rows() == [
        ("D1", -550, 2),
        ("D2", -100, 1),
    ]
    assert report.by_sku.select("sku", "net_delta").rows() == [("A", -400), ("B", -250)]
    assert report.by_rule.select(
        "rule", "discount_old", "discount_new", "discount_delta"
    ).rows() == [
        ("A off", -400, -800, -400),
        ("B off", 0, -250, -250),
    ]


def test_diff_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "p.duckdb")
    for name, frame in (("catalog", CATALOG), ("standard_prices", PRICES)):
        frame.write_csv(tmp_path / f"{name}.csv")
        assert main(["--db", db, "load", name, str(tmp_path / f"{name}.csv")]) == 0
    for name, text in (("old", OLD), ("new", NEW)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.rule").write_text(text, encoding="utf-8")
    LINES.write_csv(tmp_path / "order_lines.csv")
    capsys.readouterr()
    out = tmp_path / "d.csv"
    args = [
        "--db",
        db,
        "diff",
        str(tmp_path / "old"),
        str(tmp_path / "new"),
        "--history",
        str(tmp_path / "order_lines.csv"),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "what-if on 2 orders, 3 lines (all dates)" in printed
    totals = printed.split("totals\n", 1)[1].splitlines()[2].split()
    assert totals == [
        "CNY",
        "3",
        "3",
        "0",
        "48.33",
        "48.33",
        "-4.00",
        "-10.50",
        "44.33",
        "37.83",
        "-6.50",
    ]
    assert pl.read_csv(out)["net_delta"].to_list() == [-300, -250, -100]
    assert main([*args[:-2], "--period", "2026-12"]) == 0
    assert "what-if on 1 order, 1 line (2026-12)" in capsys.readouterr().out

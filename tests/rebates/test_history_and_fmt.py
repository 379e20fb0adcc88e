"""History files are checked row by row (all or nothing), policies format canonically,
and a bad run input is one clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsl.fmt import format_ruleset
from dsl.parser import parse_sources
from engine.batch.history import read_history
from engine.batch.rebates import RebateError, parse_period
from engine.core.data import DataError
from server.cli import main

HERE = Path(__file__).parent / "scenarios"


def test_bad_history_rows_are_named_and_nothing_is_read(tmp_path: Path) -> None:
    bad = tmp_path / "order_lines.csv"
    bad.write_text(
        "order_id,line_id,date,customer_id,sku,qty,net_amount,currency\n"
        "O1,1,2026-10-01,D1,A,1,100.00,CNY\n"
        "O1,1,2026-13-01,D1,A,x,100.001,CNY\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError) as err:
        read_history(bad, "CNY")
    text = str(err.value)
    assert "nothing was loaded" in text
    assert "row 2, column line_id: duplicate line '1' of order 'O1' (first at row 1)" in text
    assert "row 2, column date: '2026-13-01' is not an ISO date (YYYY-MM-DD)" in text
    assert "row 2, column qty: 'x' is not a decimal number" in text
    assert "row 2, column net_amount: '100.001' has more fractional digits than CNY has" in text


def test_periods() -> None:
    assert parse_period("2026-Q4").start.isoformat() == "2026-10-01"
    assert parse_period("2026-02").end.isoformat() == "2026-02-28"
    assert parse_period("2026").label == "2026"
    assert parse_period("2026-01-01..2026-06-30").kind == "range"
    with pytest.raises(RebateError, match="write 2026-Q4"):
        parse_period("Q4")


@pytest.mark.parametrize("scenario", sorted(p.name for p in HERE.iterdir()))
def test_policies_format_canonically(scenario: str) -> None:
    source = (HERE / scenario / "ruleset.rule").read_text(encoding="utf-8")
    formatted = format_ruleset(parse_sources({"r.rule": source}).files[0])
    assert formatted == source
    assert format_ruleset(parse_sources({"r.rule": formatted}).files[0]) == formatted


def test_cli_bad_period_and_history_currency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = HERE / "R02-incremental"
    db = str(tmp_path / "p.duckdb")
    assert main(["--db", db, "rebates", str(rules), "--history", str(rules), "--period", "Q9"]) == 2
    assert "write 2026-Q4" in capsys.readouterr().err
    usd = tmp_path / "order_lines.csv"
    usd.write_text(
        "order_id,line_id,date,customer_id,sku,qty,net_amount,currency\nO1,1,2026-02-01,D1,A,1,10.00,USD\n",
        encoding="utf-8",
    )
    assert main(["--db", db, "rebates", str(rules), "--history", str(usd), "--period", "2026"]) == 2
    assert "currency_mismatch" in capsys.readouterr().err

"""The DuckDB store: all-or-nothing loads that name bad rows, snapshots, published rulesets."""

from __future__ import annotations

import threading
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.core.data import DataError
from engine.ledger.store import BadRowsError, Store, StoreError


def _env() -> dict[str, str]:
    """The environment for a child Python that imports this checkout."""
    import os

    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "db" / "pricer.duckdb")
    s.load_frame("catalog", pl.DataFrame({"sku": ["A", "B"], "base_unit": ["pcs", "m"]}))
    return s


GOOD_PRICES = "sku,price,min_qty\nA,20.00,\nA,19.00,10\nB,3.5,\n"
TWO_BAD_ROWS = "sku,price,min_qty\nA,20.00,\n,7.00,\nB,abc,1.2345\nC,1.00,\n"


def test_csv_with_two_bad_rows_loads_nothing_and_names_rows_and_columns(
    store: Store, tmp_path: Path
) -> None:
    store.load_table("standard_prices", write(tmp_path / "good.csv", GOOD_PRICES))

    with pytest.raises(BadRowsError) as caught:
        store.load_table("standard_prices", write(tmp_path / "bad.csv", TWO_BAD_ROWS))

    err = caught.value
    assert isinstance(err, DataError) and err.table == "standard_prices"
    assert str(err) == (
        "table standard_prices: 3 problems in 2 rows; nothing was loaded\n"
        "  row 2, column sku: is empty\n"
        "  row 3, column price: 'abc' is not a decimal number\n"
        "  row 3, column min_qty: '1.2345' has more than 3 fractional digits (a quantity)"
    )
    assert [(p.row, p.column) for p in err.problems] == [(2, "sku"), (3, "price"), (3, "min_qty")]
    assert store.read("standard_prices").get_column("price").to_list() == ["20.00", "19.00", "3.5"]


def test_failed_first_load_leaves_no_table(store: Store, tmp_path: Path) -> None:
    with pytest.raises(BadRowsError):
        store.load_table("gold_prices", write(tmp_path / "bad.csv", TWO_BAD_ROWS))
    assert "gold_prices" not in store.snapshot().tables
    assert [t.name for t in store.tables()] == ["catalog"]


def test_more_than_twenty_problems_lists_twenty_and_counts_the_rest(store: Store) -> None:
    frame = pl.DataFrame({"sku": [f"S{i}" for i in range(30)], "price": ["-1"] * 30})
    with pytest.raises(BadRowsError) as caught:
        store.load_frame("p", frame)
    assert len(caught.value.problems) == 20 and caught.value.total == 30
    assert str(caught.value).endswith("  row 20, column price: '-1' is negative\n  ... and 10 more")


def test_reload_replaces_the_table(store: Store, tmp_path: Path) -> None:
    store.load_table("standard_prices", write(tmp_path / "a.csv", GOOD_PRICES))
    report = store.load_table("standard_prices", write(tmp_path / "b.csv", "sku,price\nB,4.00\n"))

    assert (report.rows, report.columns, report.kind) == (1, ("sku", "price"), "price")
    assert store.read("standard_prices").to_dicts() == [{"sku": "B", "price": "4.00"}]
    assert store.snapshot().tables["standard_prices"].columns == ["sku", "price"]
    info = {t.name: t for t in store.tables()}["standard_prices"]
    assert (info.rows, info.columns) == (1, ("sku", "price"))


def test_snapshot_round_trips_text_exactly_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "p.duckdb"
    catalog = pl.DataFrame(
        {
            "sku": ["A", "B"],
            "base_unit": ["pcs", "m"],
            "units": ["box=12;case=144", None],
            "color": ["red", ""],
        }
    )
    prices = pl.DataFrame(
        {"customer_id": ["D1", "D2"], "sku": ["A", "A"], "price": ["18.000", "0"]}
    )
    with Store(path) as store:
        store.load_frame("catalog", catalog)
        store.load_frame("customer_prices", prices)
        store.load_frame("notes", pl.DataFrame({"sku": ["A"], "note": [" spaced  "]}))
    with Store(path) as store:
        snap = store.snapshot()
    assert_frame_equal(snap.catalog, catalog)
    assert_frame_equal(snap.tables["customer_prices"], prices)
    assert snap.tables["notes"].item(0, "note") == " spaced  "
    assert set(snap.tables) == {"customer_prices", "notes"}


def test_parquet_numbers_become_text(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pl.DataFrame({"sku": ["A", "B"], "price": [20, 3], "min_qty": [0, 5]}).write_parquet(path)
    store.load_table("silver_prices", path)
    assert store.read("silver_prices").rows() == [("A", "20", "0"), ("B", "3", "5")]


def test_catalog_checks_skus_units_and_quantities(store: Store) -> None:
    frame = pl.DataFrame(
        {
            "sku": ["A", "A", "C"],
            "base_unit": ["pcs", "pcs", ""],
            "units": ["box=12;case=144", "box=0", "box=12;"],
            "pack": ["6", "0", "1.5"],
        }
    )
    with pytest.raises(BadRowsError) as caught:
        store.load_frame("catalog", frame)
    assert [str(p) for p in caught.value.problems] == [
        "row 2, column sku: duplicate sku 'A' (first at row 1)",
        "row 2, column units: 'box=0' is not like 'box=12;case=144' (positive integer factors)",
        "row 2, column pack: '0' must be greater than zero",
        "row 3, column base_unit: is empty",
        "row 3, column units: 'box=12;' is not like 'box=12;case=144' (positive integer factors)",
    ]
    assert store.snapshot().catalog.get_column("sku").to_list() == ["A", "B"]


def test_catalog_without_base_unit_column_is_refused(store: Store) -> None:
    with pytest.raises(DataError, match="the catalog needs column\\(s\\) base_unit"):
        store.load_frame("catalog", pl.DataFrame({"sku": ["A"]}))


def test_fx_rates_need_known_currencies_iso_dates_and_positive_rates(store: Store) -> None:
    frame = pl.DataFrame(
        {
            "from": ["USD", "usd", "USD"],
            "to": ["CNY", "CNY", "CNY"],
            "date": ["2026-11-01", "2026-02-30", "01/11/2026"],
            "rate": ["7.12", "0", "7.123456789012"],
        }
    )
    with pytest.raises(BadRowsError) as caught:
        store.load_frame("fx_rates", frame)
    assert [str(p) for p in caught.value.problems] == [
        "row 2, column from: 'usd' is not a known ISO 4217 currency code",
        "row 2, column date: '2026-02-30' is not an ISO date (YYYY-MM-DD)",
        "row 2, column rate: '0' must be greater than zero",
        "row 3, column date: '01/11/2026' is not an ISO date (YYYY-MM-DD)",
        "row 3, column rate: '7.123456789012' has more than 10 fractional digits (a rate)",
    ]


def test_tax_rates_accept_percent_or_plain_numbers(store: Store) -> None:
    good = pl.DataFrame(
        {
            "region": ["CN", "CN", "HK"],
            "tax_class": [None, "books", None],
            "rate": ["13%", "9", "0%"],
        }
    )
    assert store.load_frame("tax_rates", good).rows == 3
    bad = pl.DataFrame({"region": ["CN", "X", "Y"], "rate": ["13 %", "150%", "-1%"]})
    with pytest.raises(BadRowsError) as caught:
        store.load_frame("tax_rates", bad)
    assert [str(p) for p in caught.value.problems] == [
        "row 1, column rate: '13 %' is not a percentage like '13%'",
        "row 2, column rate: '150%' is above 100%",
        "row 3, column rate: '-1%' is not a percentage like '13%'",
    ]


def test_price_rows_alike_but_for_price_contradict(store: Store) -> None:
    frame = pl.DataFrame(
        {"customer_id": ["D1", "D2", "D1"], "sku": ["A", "A", "A"], "price": ["1", "2", "3"]}
    )
    with pytest.raises(
        BadRowsError, match="row 3, column sku: prices the same customer_id/sku as row 1"
    ):
        store.load_frame("customer_prices", frame)


def test_price_with_seven_decimals_is_refused_six_is_fine(store: Store) -> None:
    assert store.load_frame("p", pl.DataFrame({"sku": ["A"], "price": ["0.123456"]})).rows == 1
    with pytest.raises(BadRowsError, match="'0.1234567' has more than 6 fractional digits"):
        store.load_frame("p", pl.DataFrame({"sku": ["A"], "price": ["0.1234567"]}))


def test_table_without_price_column_loads_as_text(store: Store) -> None:
    report = store.load_frame("floor_notes", pl.DataFrame({"anything": ["x", None]}))
    assert (report.kind, report.rows) == ("text", 2)


@pytest.mark.parametrize("name", ["bad-name", "1prices", "drop table x;", ""])
def test_bad_table_names_are_refused(store: Store, tmp_path: Path, name: str) -> None:
    with pytest.raises(DataError, match="bad table name"):
        store.load_table(name, write(tmp_path / "t.csv", "sku,price\nA,1\n"))


def test_unreadable_files_are_data_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        store.load_table("p", tmp_path / "missing.csv")
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        store.load_table("p", write(tmp_path / "p.xlsx", "x"))
    with pytest.raises(DataError, match="cannot read"):
        store.load_table("p", write(tmp_path / "ragged.csv", "sku,price\nA,1,extra\n"))
    with pytest.raises(DataError, match="column 'sku' appears more than once"):
        store.load_table("p", write(tmp_path / "dup.csv", "sku,sku,price\nA,A,1\n"))


def test_rulesets_latest_saved_is_current(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    with Store(path) as store:
        assert store.current_ruleset() is None
        store.save_ruleset("sha256:1", {"b.rule": "one"})
        store.save_ruleset("sha256:2", {"a.rule": "two", "b.rule": 'ünïcode "quoted"\n'})
    with Store(path) as store:
        record = store.current_ruleset_record()
    assert record is not None and record.version == "sha256:2"
    assert record.sources == {"a.rule": "two", "b.rule": 'ünïcode "quoted"\n'}


def test_a_second_process_cannot_open_a_locked_file_and_gets_a_clear_message(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    path = tmp_path / "locked.duckdb"
    with Store(path):
        code = (
            "from engine.ledger.store import Store, StoreError\n"
            f"try:\n    Store({str(path)!r})\nexcept StoreError as e:\n    print(e)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_env()
        )
    assert "in use by another process" in out.stdout, out.stderr


def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.duckdb")
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.snapshot()


def test_threads_read_through_their_own_cursors(store: Store) -> None:
    store.load_frame(
        "p", pl.DataFrame({"sku": ["A"] * 3, "min_qty": ["0", "5", "10"], "price": ["3", "2", "1"]})
    )
    seen: list[int] = []

    def read() -> None:
        for _ in range(20):
            seen.append(store.read("p").height)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [3] * 80


def test_a_committed_load_survives_the_process_being_killed(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "killed.duckdb"
    code = (
        "import os, polars as pl\n"
        "from engine.ledger.store import Store\n"
        f"store = Store({str(path)!r})\n"
        "store.load_frame('catalog', pl.DataFrame({'sku': ['A'], 'base_unit': ['pcs']}))\n"
        "store.save_ruleset('sha256:k', {'k.rule': 'x'})\n"
        "os._exit(9)  # no close, no checkpoint\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_env()
    )
    assert done.returncode == 9, done.stderr
    with Store(path) as store:
        assert store.snapshot().catalog.get_column("sku").to_list() == ["A"]
        assert store.current_ruleset() == {"k.rule": "x"}


def test_special_price_tables_check_quotas_dates_and_one_row_per_key(store: Store) -> None:
    frame = pl.DataFrame(
        {
            "customer_id": ["D1", "D1", "", "D2", "D1"],
            "project": ["P-1", "", "", "", "P-1"],
            "sku": ["A", "A", "B", "B", "A"],
            "price": ["15.00", "x", "3", "4", "16"],
            "qty_quota": ["100", "", "1.5", "-2", ""],
            "amount_quota": ["", "200.00", "", "", ""],
            "valid_from": ["2026-10-01", "", "", "2026-12-01", ""],
            "valid_to": ["2026-12-31", "", "2026-13-01", "2026-11-01", ""],
        }
    )
    with pytest.raises(BadRowsError) as err:
        store.load_frame("special_prices", frame)
    assert [str(p) for p in err.value.problems] == [
        "row 2, column price: 'x' is not a decimal number",
        "row 3, column customer_id: is empty",
        "row 3, column valid_to: '2026-13-01' is not an ISO date (YYYY-MM-DD)",
        "row 4, column qty_quota: '-2' is negative",
        "row 4, column valid_to: '2026-11-01' is before valid_from '2026-12-01'",
        "row 5, column sku: a second special price for this customer_id/project/sku (first at row 1)",
    ]
    good = frame.head(1)
    assert store.load_frame("special_prices", good).kind == "special"
    # a table named otherwise is a special-price table by its quota columns
    assert store.load_frame("project_prices", good.drop("amount_quota")).kind == "special"

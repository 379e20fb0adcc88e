"""The ``pricer`` CLI: exit codes and messages of check, fmt, load and quote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from engine.ledger.store import Store
from server.cli import main
from tests.server.conftest import BROKEN, write_ruleset

ROOT = Path(__file__).resolve().parents[2]

UNFORMATTED = (
    'ruleset "t" currency CNY timezone "Asia/Shanghai" rounding half_up\n'
    'pricelist "standard"    priority 0 {   table standard_prices }\n'
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_check_clean_ruleset_prints_ok_with_rule_count_and_version(
    capsys: pytest.CaptureFixture[str], db_path: Path, rules_dir: Path
) -> None:
    status, out, err = run(capsys, "--db", str(db_path), "check", str(rules_dir))
    assert status == 0, err
    assert out.startswith("ok: 3 rules, version sha256:")
    assert err == ""


def test_check_broken_ruleset_prints_file_line_col_and_exits_1(
    capsys: pytest.CaptureFixture[str], db_path: Path, tmp_path: Path
) -> None:
    broken = write_ruleset(tmp_path / "broken", BROKEN)
    status, out, err = run(capsys, "check", str(broken), "--db", str(db_path))
    assert status == 1
    assert out == ""
    assert f"{broken / 'main.rule'}:2:35: error[E0301]: unknown table 'standard_pricez'" in err
    assert "help: did you mean 'standard_prices'?" in err
    assert err.rstrip().endswith("1 error, 0 warnings")


def test_check_without_database_skips_data_checks(
    capsys: pytest.CaptureFixture[str], rules_dir: Path, tmp_path: Path
) -> None:
    status, out, _ = run(capsys, "--db", str(tmp_path / "none.duckdb"), "check", str(rules_dir))
    assert status == 0
    assert "table and SKU checks skipped: no database at" in out
    assert not (tmp_path / "none.duckdb").exists()


def test_check_missing_directory_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, _, err = run(capsys, "check", str(tmp_path / "nope"))
    assert status == 2
    assert err == f"pricer check: error: {tmp_path / 'nope'}: no such ruleset directory\n"


def test_fmt_check_lists_files_that_would_change_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_ruleset(tmp_path / "r", UNFORMATTED)
    status, _, err = run(capsys, "fmt", str(rules), "--check")
    assert status == 1
    assert f"would reformat {rules / 'main.rule'}" in err
    assert (rules / "main.rule").read_text() == UNFORMATTED


def test_fmt_rewrites_then_check_passes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rules = write_ruleset(tmp_path / "r", UNFORMATTED)
    status, out, _ = run(capsys, "fmt", str(rules))
    assert status == 0 and f"reformatted {rules / 'main.rule'}" in out
    assert (rules / "main.rule").read_text() != UNFORMATTED
    status, out, _ = run(capsys, "fmt", str(rules), "--check")
    assert (status, out) == (0, "1 file already formatted\n")


def test_fmt_syntax_error_exits_1_with_position(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = write_ruleset(tmp_path / "r", 'ruleset "t" currency CNY\npricelist {\n')
    status, _, err = run(capsys, "fmt", str(rules))
    assert status == 1
    assert f"{rules / 'main.rule'}:" in err and "error[E000" in err


def test_load_bad_file_exits_2_naming_rows_and_loads_nothing(
    capsys: pytest.CaptureFixture[str], db_path: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "prices.csv"
    bad.write_text("sku,price\nA,x\n,1.00\n", encoding="utf-8")
    status, out, err = run(capsys, "--db", str(db_path), "load", "standard_prices", str(bad))
    assert status == 2 and out == ""
    assert err == (
        f"pricer load: error: {bad}: table standard_prices: 2 problems in 2 rows; nothing was loaded\n"
        "  row 1, column price: 'x' is not a decimal number\n"
        "  row 2, column sku: is empty\n"
    )
    with Store(db_path) as store:
        assert store.read("standard_prices").to_dicts() == [{"sku": "A", "price": "20.00"}]


def test_load_good_file_reports_rows(
    capsys: pytest.CaptureFixture[str], db_path: Path, tmp_path: Path
) -> None:
    good = tmp_path / "gold.csv"
    good.write_text("sku,price\nA,18.00\n", encoding="utf-8")
    status, out, _ = run(capsys, "load", "gold_prices", str(good), "--db", str(db_path))
    assert status == 0
    assert out == "loaded 1 row into gold_prices (price table; columns: sku, price)\n"


def test_quote_prints_the_priced_cart(
    capsys: pytest.CaptureFixture[str], db_path: Path, rules_dir: Path, tmp_path: Path
) -> None:
    cart = tmp_path / "cart.json"
    cart.write_text(
        json.dumps(
            {
                "date": "2026-11-22",
                "customer": {"region": "CN"},
                "lines": [{"sku": "A", "qty": "2"}],
            }
        )
    )
    status, out, _ = run(
        capsys, "--db", str(db_path), "--rules", str(rules_dir), "quote", str(cart)
    )
    assert status == 0
    assert json.loads(out)["totals"] == {
        "list": "40.00",
        "discount": "-4.00",
        "net": "36.00",
        "tax": "4.68",
        "gross": "40.68",
        "gift_value": "0.00",
    }
    assert out.startswith('{\n  "ruleset_version"')


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"lines": [', "not valid JSON"),
        (
            '{"lines": [{"sku": "A", "qty": 2.5}]}',
            'lines[0].qty: must be a decimal string like "1.5"',
        ),
        ('{"date": "2026-11-22", "lines": []}', "no_lines: cart: 'lines' must be a non-empty list"),
    ],
    ids=["not_json", "float_qty", "no_lines"],
)
def test_quote_bad_cart_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
    db_path: Path,
    rules_dir: Path,
    tmp_path: Path,
    content: str,
    message: str,
) -> None:
    cart = tmp_path / "cart.json"
    cart.write_text(content)
    status, out, err = run(
        capsys, "--db", str(db_path), "--rules", str(rules_dir), "quote", str(cart)
    )
    assert status == 2 and out == ""
    assert err.startswith(f"pricer quote: error: {cart}: ") and message in err
    assert err.count("\n") == 1


def test_quote_batch_writes_one_priced_row_per_line(
    capsys: pytest.CaptureFixture[str], db_path: Path, rules_dir: Path, tmp_path: Path
) -> None:
    carts = tmp_path / "carts.parquet"
    pl.DataFrame(
        {
            "cart_id": ["c1", "c1", "c2"],
            "date": ["2026-11-22"] * 3,
            "customer_region": ["CN", "CN", "HK"],
            "sku": ["A", "A", "NOPE"],
            "qty": ["2", "1", "1"],
            "unit": [None, "box", None],
        }
    ).write_parquet(carts)
    out_path = tmp_path / "out" / "priced.parquet"
    status, out, err = run(
        capsys,
        "--db",
        str(db_path),
        "--rules",
        str(rules_dir),
        "quote",
        "--batch",
        str(carts),
        "--out",
        str(out_path),
    )
    assert status == 0, err
    assert out == f"priced 3 lines in 2 carts -> {out_path}\n"
    priced = pl.read_parquet(out_path)
    assert priced.select(
        "cart_id", "line_id", "status", "net_amount_minor", "tax_minor"
    ).rows() == [
        ("c1", "1", "ok", 3600, 468),
        ("c1", "2", "ok", 21600, 2808),
        ("c2", "1", "unknown_sku", 0, 0),
    ]


def test_quote_batch_carts_disagreeing_on_date_exit_2(
    capsys: pytest.CaptureFixture[str], db_path: Path, rules_dir: Path, tmp_path: Path
) -> None:
    carts = tmp_path / "carts.parquet"
    pl.DataFrame(
        {
            "cart_id": ["c1", "c1"],
            "date": ["2026-11-22", "2026-11-23"],
            "sku": ["A", "A"],
            "qty": ["1", "1"],
        }
    ).write_parquet(carts)
    status, _, err = run(
        capsys,
        "--db",
        str(db_path),
        "quote",
        "--batch",
        str(carts),
        "--out",
        str(tmp_path / "o.parquet"),
    )
    assert status == 2
    assert err == "pricer quote: error: cart 'c1': lines disagree on date\n"


def test_quote_without_database_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cart = tmp_path / "cart.json"
    cart.write_text('{"lines": [{"sku": "A", "qty": "1"}]}')
    status, _, err = run(capsys, "--db", str(tmp_path / "none.duckdb"), "quote", str(cart))
    assert status == 2
    assert "no database at" in err and "pricer load" in err


def test_bad_setting_in_environment_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rules_dir: Path
) -> None:
    monkeypatch.setenv("PRICER_MAX_LINES_PER_CART", "lots")
    status, _, err = run(capsys, "check", str(rules_dir))
    assert status == 2
    assert "PRICER_MAX_LINES_PER_CART" in err


def test_real_entry_point_reports_errors_without_traceback(db_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,price\nA,-1\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "--db",
            str(db_path),
            "load",
            "standard_prices",
            str(bad),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert "row 1, column price: '-1' is negative" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_with_a_broken_ruleset_exits_1_with_diagnostics(
    db_path: Path, tmp_path: Path
) -> None:
    broken = write_ruleset(tmp_path / "broken", BROKEN)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = ["--db", str(db_path), "--rules", str(broken), "serve", "--port", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1
    assert "does not compile against the loaded data" in done.stderr
    assert "main.rule:2:35: error[E0301]" in done.stderr
    assert "Traceback" not in done.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_answers_health_and_quotes(db_path: Path, rules_dir: Path, tmp_path: Path) -> None:
    import time

    import httpx

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = ["--db", str(db_path), "--rules", str(rules_dir), "serve", "--port", str(port)]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", *argv], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                health = httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
        else:
            raise AssertionError("server did not start: " + (tmp_path / "serve.log").read_text())
        assert health.json()["ruleset_version"].startswith("sha256:")
        cart = {
            "date": "2026-11-22",
            "customer": {"region": "CN"},
            "lines": [{"sku": "A", "qty": "2"}],
        }
        quote = httpx.post(f"{base}/price", json=cart, timeout=10).json()
        assert quote["totals"]["gross"] == "40.68"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


# ---- pricer load ledger ------------------------------------------------------------------------


def _ledger_doc_example() -> str:
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "ledger.md").read_text(encoding="utf-8")
    return re.findall(r"```json\n(.*?)\n```", text, re.S)[0]


def test_load_ledger_imports_history(
    capsys: pytest.CaptureFixture[str], db_path: Path, rules_dir: Path, tmp_path: Path
) -> None:
    history = tmp_path / "history.json"
    history.write_text(_ledger_doc_example(), encoding="utf-8")  # the example in docs/ledger.md
    status, out, err = run(
        capsys, "--db", str(db_path), "--rules", str(rules_dir), "load", "ledger", str(history)
    )
    assert (status, err) == (0, "")
    assert out.strip() == "loaded 5 ledger rows into the ledger (imported history, amounts in CNY)"
    with Store(db_path) as store:
        used = store.ledger.used_totals()
        lines = store.committed_order_lines()
    assert used[("budget", "ten budget", None, None, None)] == (0, 97000)
    assert used[("special", None, "D1", "P-778", "A")] == (80000, 0)
    assert used[("use", "welcome 10", "D1", None, None)] == (2, 0)
    assert lines.select("customer_id", "sku", "qty", "net_amount").row(0) == (
        "D1",
        "A",
        60000,
        120000,
    )


def test_load_ledger_bad_row_loads_nothing(
    capsys: pytest.CaptureFixture[str], db_path: Path, rules_dir: Path, tmp_path: Path
) -> None:
    history = tmp_path / "history.json"
    history.write_text(
        json.dumps(
            {
                "budget_used": {"x": "1.00"},
                "uses": [{"promotion": "w", "customer_id": "D1", "orders": "2.5"}],
            }
        )
    )
    status, out, err = run(
        capsys, "--db", str(db_path), "--rules", str(rules_dir), "load", "ledger", str(history)
    )
    assert status != 0
    assert (
        err.strip()
        == f"pricer load: error: {history}: uses row 1: 'orders' '2.5' is not a whole number"
    )
    with Store(db_path) as store:
        assert store.ledger.used_totals() == {}


def test_load_ledger_refuses_another_currency(
    capsys: pytest.CaptureFixture[str], db_path: Path, rules_dir: Path, tmp_path: Path
) -> None:
    history = tmp_path / "history.json"
    history.write_text(json.dumps({"currency": "JPY", "budget_used": {"ten budget": "5000"}}))
    status, out, err = run(
        capsys, "--db", str(db_path), "--rules", str(rules_dir), "load", "ledger", str(history)
    )
    assert status != 0 and out == ""
    assert err.startswith(
        f"pricer load: error: {history}: the history is in JPY, the ruleset in CNY;"
    )
    with Store(db_path) as store:
        assert store.ledger.used_totals() == {}
    history.write_text(
        json.dumps({"currency": "CNY", "budget_used": {"ten budget": "50.00"}})
    )  # its own currency is fine
    assert (
        run(
            capsys, "--db", str(db_path), "--rules", str(rules_dir), "load", "ledger", str(history)
        )[0]
        == 0
    )
    with Store(db_path) as store:
        assert store.ledger.used_totals() == {("budget", "ten budget", None, None, None): (0, 5000)}


def test_quote_reads_the_ledger(
    capsys: pytest.CaptureFixture[str], db_path: Path, tmp_path: Path
) -> None:
    rules = write_ruleset(tmp_path / "budget_rules", 'ruleset "t" currency CNY\npricelist "standard" { table standard_prices }\n'
                          'promotion "ten" { each line: percent_off 10%\n budget 5.00 }\n')  # fmt: skip
    cart = tmp_path / "cart.json"
    cart.write_text(
        json.dumps(
            {"date": "2026-11-22", "customer": {"id": "D1"}, "lines": [{"sku": "A", "qty": "2"}]}
        )
    )
    status, out, _ = run(capsys, "--db", str(db_path), "--rules", str(rules), "quote", str(cart))
    assert (
        status == 0 and json.loads(out)["totals"]["net"] == "36.00"
    )  # 4.00 off, within the 5.00 budget
    history = tmp_path / "history.json"
    history.write_text(json.dumps({"budget_used": {"ten": "3.00"}}))
    assert (
        run(capsys, "--db", str(db_path), "--rules", str(rules), "load", "ledger", str(history))[0]
        == 0
    )
    status, out, _ = run(capsys, "--db", str(db_path), "--rules", str(rules), "quote", str(cart))
    assert status == 0 and json.loads(out)["totals"]["net"] == "38.00"  # 2.00 of the budget left

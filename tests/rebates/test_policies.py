"""Hand-worked figures for the policy forms the scenarios do not cover: a quantity basis
paid per unit, incremental tiers by attainment, custom periods, funds, event rewards with a
per-period cap, partner tiers on certified staff, accrual runs and their deltas, and the
HTTP errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from engine.api import compile_policies
from engine.batch.history import History, empty, typed
from engine.batch.rebates import parse_period, run_policies
from engine.core.data import DataSet
from engine.ledger.store import Store
from server.app import create_app
from server.cli import main
from server.settings import Settings

HEAD = 'ruleset "t" currency CNY timezone "Asia/Shanghai" rounding half_up\n'
DATA = DataSet.from_rows(
    [
        {"sku": "C", "base_unit": "m", "category": "cable", "brand": "acme"},
        {"sku": "T", "base_unit": "pcs", "category": "tools", "brand": "bolt"},
    ],
    {
        "partner_facts": [
            {"partner_id": "D1", "period": "2026-Q4", "certified_staff": "4"},
            {"partner_id": "D2", "period": "2026-Q4", "certified_staff": "1"},
        ]
    },
)
LINES = pl.DataFrame(
    {
        "order_id": ["O1", "O1", "O2", "O3", "O4"],
        "line_id": ["1", "2", "1", "1", "1"],
        "date": ["2026-10-05", "2026-10-05", "2026-11-20", "2026-12-24", "2026-11-02"],
        "customer_id": ["D1", "D1", "D1", "D1", "D2"],
        "sku": ["C", "T", "C", "C", "T"],
        "qty": ["1200.5", "10", "800", "300", "4"],
        "net_amount": ["6002.50", "1000.00", "4000.00", "1500.00", "400.00"],
        "currency": ["CNY"] * 5,
        "special": ["false", "false", "true", "false", "false"],
    }
)
EVENTS = pl.DataFrame(
    {
        "event_id": [f"E{i}" for i in range(7)],
        "date": ["2026-10-01"] * 7,
        "partner_id": ["D1", "D1", "D1", "D1", "D2", "D2", "D2"],
        "kind": [
            "lead_converted",
            "lead_converted",
            "lead_converted",
            "lead_submitted",
            "lead_submitted",
            "merchant_referred",
            "partner_recruited",
        ],
    }
)


def history() -> History:
    return History(
        lines=typed("order_lines", LINES, "CNY").lazy(),
        returns=empty("returns"),
        events=typed("events", EVENTS, "CNY").lazy(),
        source="test",
    )


def run(
    rules: str, period: str = "2026-Q4", as_of: dt.date | None = None
) -> dict[str, dict[str, str | None]]:
    result = run_policies(
        compile_policies({"t.rule": HEAD + rules}, DATA),
        history(),
        parse_period(period),
        as_of=as_of,
    )
    return {f"{r['policy']}/{r['partner']}": r for r in result.rows.iter_rows(named=True)}


def test_quantity_basis_paid_per_unit() -> None:
    # cable metres, special line left out: 1200.5 + 300 = 1500.5 m >= 1000: 0.05 per metre = 75.025 -> 75.03
    rows = run(
        'rebate "metres" { period quarter basis qty where category == "cable" tiers retroactive by basis { >= 500: 0.02 per unit >= 1000: 0.05 per unit } }'
    )
    row = rows["metres/D1"]
    assert (row["basis"], row["step"], row["rate"], row["amount"]) == (
        "1500.5",
        ">= 1000",
        "0.05 per unit",
        "75.03",
    )


def test_incremental_by_attainment() -> None:
    # all of D1: 6002.50 + 1000.00 + 1500.00 = 8502.50 of target 5000.00 = 170.05%
    # bands start at 0%, 100% (5000.00), 150% (7500.00): 5000 x 1% + 2500 x 2% + 1002.50 x 4% = 50 + 50 + 40.10
    rows = run(
        'rebate "bands" { period quarter basis net_amount target 5000.00 tiers incremental by attainment { >= 0%: 1% >= 100%: 2% >= 150%: 4% } }'
    )
    row = rows["bands/D1"]
    assert (row["attainment"], row["rate"], row["amount"]) == ("170.05%", "1% / 2% / 4%", "140.10")
    assert "3 bands (1% / 2% / 4%), each rate on its slice = 140.10" in str(row["explanation"])
    # D2: 400.00 = 8% of target: the first band only
    assert (rows["bands/D2"]["attainment"], rows["bands/D2"]["amount"]) == ("8%", "4.00")


def test_custom_period_fund_and_minimum_payout() -> None:
    rules = (
        'fund "co-op" { period 2026-10-01 .. 2026-11-30 basis net_amount where brand == "acme" includes special earn 2.5% }\n'
        'rebate "small" { period 2026-10-01 .. 2026-11-30 basis net_amount earn 1% minimum payout 50.00 }\n'
    )
    rows = run(rules, period="2026-10-01..2026-11-30")
    # acme cable in Oct-Nov, special included: 6002.50 + 4000.00 = 10002.50 x 2.5% = 250.0625 -> 250.06
    assert rows["co-op/D1"]["amount"] == "250.06"
    # D1 without the special line: 7002.50 x 1% = 70.03; D2: 4.00 is below the minimum
    assert rows["small/D1"]["amount"] == "70.03"
    assert (rows["small/D2"]["uncapped"], rows["small/D2"]["amount"]) == ("4.00", "0.00")
    assert "below the minimum payout 50.00, nothing paid" in str(rows["small/D2"]["explanation"])
    # a quarter run does not run range policies
    assert run(rules) == {}


def test_event_rewards_with_a_period_cap() -> None:
    rows = run(
        'commission "leads" { period quarter earn 30.00 per lead_converted earn 2.00 per lead_submitted earn 100.00 per partner_recruited cap 80.00 per period }'
    )
    d1, d2 = rows["leads/D1"], rows["leads/D2"]
    assert (d1["uncapped"], d1["amount"]) == ("92.00", "80.00")
    assert (
        d1["explanation"]
        == "3 lead_converted, 1 lead_submitted = 92.00; 92.00 capped at 80.00 per period"
    )
    assert (d2["amount"], d2["explanation"]) == (
        "80.00",
        "1 lead_submitted, 1 partner_recruited = 102.00; 102.00 capped at 80.00 per period",
    )


def test_partner_tiers_on_certified_staff() -> None:
    rows = run(
        'partner tiers "levels" { period quarter level "Expert" when certified_staff >= 3 and leads_converted >= 3 level "Active" when orders >= 1 }'
    )
    assert rows["levels/D1"]["step"] == "Expert"
    assert rows["levels/D2"]["step"] == "Active"
    assert rows["levels/D2"]["explanation"] == (
        "purchases 400.00, leads submitted 1, merchants referred 1, partners recruited 1, certified staff 1; highest level that holds: Active; not Expert"
    )


def test_accrual_runs_and_deltas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.rule").write_text(
        HEAD
        + 'rebate "running" { period quarter basis net_amount earn 1% accrual }\nrebate "final only" { period quarter basis net_amount earn 1% }\n',
        encoding="utf-8",
    )
    LINES.write_csv(tmp_path / "order_lines.csv")
    db = str(tmp_path / "p.duckdb")
    out = tmp_path / "r.csv"
    base = [
        "--db",
        db,
        "rebates",
        str(rules),
        "--history",
        str(tmp_path / "order_lines.csv"),
        "--period",
        "2026-Q4",
        "--out",
        str(out),
    ]
    # up to 2026-11-30: D1 7002.50 (O1; O2 is special... counted: special lines are left out) -> 70.03
    assert main([*base, "--as-of", "2026-11-30"]) == 0
    printed = capsys.readouterr()
    assert "accrual as of 2026-11-30" in printed.out
    assert "skipped final only: period 2026-Q4 is open on 2026-11-30" in printed.err
    first = {r["partner"]: r for r in pl.read_csv(out, infer_schema=False).iter_rows(named=True)}
    assert (first["D1"]["amount"], first["D1"]["previous"], first["D1"]["delta"]) == (
        "70.03",
        None,
        None,
    )
    # the same accrual again: the same figure, a zero delta
    assert main([*base, "--as-of", "2026-11-30"]) == 0
    again = {r["partner"]: r for r in pl.read_csv(out, infer_schema=False).iter_rows(named=True)}
    assert (again["D1"]["amount"], again["D1"]["delta"]) == ("70.03", "0.00")
    # the closed quarter: O3 adds 1500.00 -> 85.03, 15.00 more than accrued
    assert main([*base, "--as-of", "2026-12-31"]) == 0
    final = {
        (r["policy"], r["partner"]): r
        for r in pl.read_csv(out, infer_schema=False).iter_rows(named=True)
    }
    assert (
        final[("running", "D1")]["amount"],
        final[("running", "D1")]["previous"],
        final[("running", "D1")]["delta"],
    ) == ("85.03", "70.03", "15.00")
    assert final[("final only", "D1")]["amount"] == "85.03"
    summary = capsys.readouterr().out
    assert "final: 4 rows" in summary


def test_http_errors(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.rule").write_text(
        HEAD + 'rebate "r" { period quarter basis net_amount earn 1% }\n', encoding="utf-8"
    )
    settings = Settings(data_dir=tmp_path, rules_dir=rules)
    with Store(settings.db_path) as store:
        store.load_frame("order_lines", LINES)
    with TestClient(create_app(settings)) as client:
        bad = client.post("/rebates/calculate", json={"partner": "D1", "period": "Q4"})
        assert bad.status_code == 422
        body = bad.json()
        assert body["code"] == "bad_rebate_request" and body["errors"][0]["code"] == "bad_period"
        missing = client.post("/rebates/calculate", json={"period": "2026-Q4"})
        assert missing.status_code == 422 and set(missing.json()) == {"code", "message", "errors"}
        ok = client.post(
            "/rebates/calculate", json={"partner": "D1", "period": "2026-Q4", "as_of": "2026-11-30"}
        )
        assert ok.status_code == 200
        assert (
            ok.json()["accrual"] is True
            and ok.json()["results"] == []
            and ok.json()["skipped"][0]["policy"] == "r"
        )
        closed = client.post(
            "/rebates/calculate", json={"partner": "D1", "period": "2026-Q4", "as_of": "2026-12-31"}
        ).json()
        assert closed["results"][0]["amount"] == "85.03"
    (rules / "r.rule").write_text(HEAD, encoding="utf-8")
    with TestClient(create_app(settings)) as client:
        none = client.post("/rebates/calculate", json={"partner": "D1", "period": "2026-Q4"})
        assert none.status_code == 422 and none.json()["code"] == "no_policies"


def test_progress_bar_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.rule").write_text(
        HEAD
        + 'rebate "r" { period quarter basis net_amount earn 1% }\nfund "f" { period quarter basis net_amount earn 1% }\n',
        encoding="utf-8",
    )
    LINES.write_csv(tmp_path / "order_lines.csv")
    args = [
        "--db",
        str(tmp_path / "p.duckdb"),
        "rebates",
        str(rules),
        "--history",
        str(tmp_path / "order_lines.csv"),
        "--period",
        "2026-Q4",
        "--as-of",
        "2026-12-31",
        "--progress",
    ]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "[" in err and "0/3" in err and "3/3" in err and "done" in err

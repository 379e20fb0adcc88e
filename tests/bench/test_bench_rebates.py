"""The rebate benchmark at a tiny size: the generated history loads, every policy runs."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from bench import rebates


def test_rebate_bench_runs_every_policy(tmp_path: Path) -> None:
    path = rebates.generate(tmp_path / "h", n_lines=20_000, n_partners=40, seed=3, chunk=7_000)
    lines = pl.read_parquet(path / "order_lines.parquet")
    assert lines.height == 20_000 and lines["qty"].dtype == pl.Int64
    figures = rebates.run_once(path)
    assert figures["policies"] == 5
    assert figures["result_rows"] == 5 * 40  # every partner bought, has a target and events

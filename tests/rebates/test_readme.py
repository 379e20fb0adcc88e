"""The README's rebate run is what the demo data and rules/ really give."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server import demo
from server.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Rebates, commissions, partner tiers and funds", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```text\n(.*?)```", section, re.DOTALL)


def test_readme_rebate_run_matches_the_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "demo.duckdb")
    assert demo.main(["--db", db]) == 0
    capsys.readouterr()
    summary, partner = _blocks()
    common = ["--db", db, "--rules", str(ROOT / "rules"), "rebates", str(ROOT / "rules"), "--period", "2026-Q4", "--as-of", "2026-12-31", "--no-store"]
    assert main(common) == 0
    assert capsys.readouterr().out == summary
    assert main([*common, "--partner", "D0001", "--show"]) == 0
    assert capsys.readouterr().out == partner

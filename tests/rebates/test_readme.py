"""The README's rebate run is what the demo data and rules/ really give."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from server import demo
from server.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _versions(text: str) -> str:
    return re.sub(r"sha256:[0-9a-f]{16}", "sha256:<version>", text)


def _blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Rebates, commissions, partner tiers and funds", 1)[1].split(
        "\n## ", 1
    )[0]
    return re.findall(r"```text\n(.*?)```", section, re.DOTALL)


def test_readme_rebate_run_matches_the_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "demo.duckdb")
    assert demo.main(["--db", db]) == 0
    capsys.readouterr()
    summary, partner, diff_text = _blocks()
    common = [
        "--db",
        db,
        "--rules",
        str(ROOT / "rules"),
        "rebates",
        str(ROOT / "rules"),
        "--period",
        "2026-Q4",
        "--as-of",
        "2026-12-31",
        "--no-store",
    ]
    assert main(common) == 0
    assert capsys.readouterr().out == summary
    assert main([*common, "--partner", "D0001", "--show"]) == 0
    assert capsys.readouterr().out == partner
    # the diff: the tools promotion at 6% instead of 5%
    nxt = tmp_path / "next"
    shutil.copytree(ROOT / "rules", nxt)
    promotions = nxt / "promotions.rule"
    promotions.write_text(
        promotions.read_text(encoding="utf-8").replace(
            "qty >= 5: percent_off 5%", "qty >= 5: percent_off 6%"
        ),
        encoding="utf-8",
    )
    args = [
        "--db",
        db,
        "diff",
        str(ROOT / "rules"),
        str(nxt),
        "--period",
        "2026-Q4",
        "--customers",
        "demo_customers",
        "--top",
        "3",
    ]
    assert main(args) == 0
    assert _versions(capsys.readouterr().out) == _versions(diff_text)

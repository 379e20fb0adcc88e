"""Golden diagnostics: every ``tests/fixtures/check/*.rule`` renders exactly its ``.expected``.

The ``.expected`` file holds the full text ``pricer check`` prints (``render_all``), with
paths relative to the repository root. Regenerate after an intended change with::

    PRICER_REGEN_GOLDEN=1 .venv/bin/pytest tests/dsl/test_golden.py

then read every changed file before committing it: a golden file blesses the message.

``KNOWN_BAD`` lists fixtures whose current diagnostic is wrong or unhelpful. Their
``.expected`` holds the text the checker *should* print (a proposal), and the test is a
strict xfail: when the checker is fixed, regenerate, review, and delete the entry.
Regeneration never overwrites a known-bad fixture.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dsl.errors import render_all
from engine.api import check_ruleset
from engine.core.data import DataSet

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "check"
REGEN = os.environ.get("PRICER_REGEN_GOLDEN") == "1"

#: the fixed data every fixture is checked against
DATA = DataSet.from_rows(
    [
        {"sku": "A", "base_unit": "pcs", "units": {"box": 12}},
        {"sku": "B", "base_unit": "pcs", "units": {"box": 12}},
        {"sku": "MUG", "base_unit": "pcs"},  # a gift item
    ],
    {
        "standard_prices": [{"sku": "A", "price": "10.00"}, {"sku": "B", "price": "20.00"}],
        "tax_rates": [{"rate": "13%", "region": "", "tax_class": "", "trade_term": ""}],
        "floor_prices": [{"sku": "A", "floor": "8.00"}],
    },
)

#: fixture name -> what is wrong with today's output (see the module docstring)
KNOWN_BAD: dict[str, str] = {
    "syntax_missing_and": "'10 sku' is lexed as a quantity in unit 'sku'; the caret lands on '=='",
    "unknown_currency_header": "caret under the whole header instead of the currency code",
    "unknown_timezone": "caret under the whole header; no did-you-mean for a misspelt zone",
    "cheapest_first_on_order": "caret under the promotion's head instead of 'cheapest first'",
    "floor_table_missing_column": "caret under 'floor {' instead of the floor's table statement",
}


def fixture_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.rule"))


def rendered(name: str) -> str:
    path = FIXTURES / f"{name}.rule"
    key = path.relative_to(ROOT).as_posix()
    sources = {key: path.read_text(encoding="utf-8")}
    return render_all(check_ruleset(sources, DATA), sources) + "\n"


def _params() -> list[object]:
    out: list[object] = []
    for name in fixture_names():
        marks = (
            [pytest.mark.xfail(reason=KNOWN_BAD[name], strict=True)] if name in KNOWN_BAD else []
        )
        out.append(pytest.param(name, id=name, marks=marks))
    return out


@pytest.mark.parametrize("name", _params())
def test_fixture_renders_its_expected_diagnostics(name: str) -> None:
    expected_path = FIXTURES / f"{name}.expected"
    actual = rendered(name)
    if REGEN and name not in KNOWN_BAD:
        expected_path.write_text(actual, encoding="utf-8")
    assert expected_path.exists(), (
        f"{expected_path.name} is missing; run with PRICER_REGEN_GOLDEN=1"
    )
    assert actual == expected_path.read_text(encoding="utf-8")


def test_every_fixture_has_an_error() -> None:
    """A fixture that checks clean would bless nothing (known-bad ones excepted). A warning
    counts: a W0501 fixture has no error, only its warning."""
    clean = [
        n for n in fixture_names() if n not in KNOWN_BAD and rendered(n).startswith("0 errors")
    ]
    assert clean == []


def test_every_expected_file_has_a_fixture() -> None:
    orphans = sorted(
        p.name for p in FIXTURES.glob("*.expected") if not (FIXTURES / f"{p.stem}.rule").exists()
    )
    assert orphans == []


def test_known_bad_entries_name_existing_fixtures() -> None:
    assert sorted(set(KNOWN_BAD) - set(fixture_names())) == []


def test_fixtures_cover_every_check_code() -> None:
    """Every parser/checker code (warnings included) that a single file can trigger has at
    least one golden file."""
    codes = {
        line.split("[", 1)[1].split("]", 1)[0]
        for name in fixture_names()
        for line in _expected_lines(name)
        if "error[" in line or "warning[" in line
    }
    wanted = {
        "E0001",
        "E0002",
        "E0003",
        "E0101",
        "E0102",
        "E0103",
        "E0201",
        "E0202",
        "E0203",
        "E0204",
        "E0205",
        "E0206",
        "E0207",
        "E0301",
        "E0302",
        "E0303",
        "E0304",
        "E0401",
        "E0402",
        "E0501",
        "E0502",
        "E0504",
        "E0505",
        "E0506",
        "W0501",
    }
    assert sorted(wanted - codes) == []


def _expected_lines(name: str) -> list[str]:
    path = FIXTURES / f"{name}.expected"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

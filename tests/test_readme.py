"""The README's tour, run against the demo: the figures it shows are the figures served."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from engine.api import Plan, compile_ruleset, load_sources, quote
from engine.data import DataSet
from server.demo import generate

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _demo_plan() -> Plan:
    tables = generate()
    catalog = tables.pop("catalog")
    sources = {str(Path(p).relative_to(ROOT)): s for p, s in load_sources(ROOT / "rules").items()}
    return compile_ruleset(sources, DataSet(catalog=catalog, tables=tables))


def test_readme_tour_quote_matches_the_demo() -> None:
    request = json.loads(re.search(r"<<'JSON'\n(.*?)\nJSON", README, re.S).group(1))  # type: ignore[union-attr]
    shown: list[dict[str, Any]] = [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", README, re.S)]
    response = quote(_demo_plan(), request)
    assert response["errors"] == []
    assert len(shown) >= 3
    for excerpt in shown:
        if "id" in excerpt:  # a line, shown whole
            assert next(x for x in response["lines"] if x["id"] == excerpt["id"]) == excerpt
        else:  # top-level keys
            assert {k: response[k] for k in excerpt} == excerpt

"""The README's tour, run against the demo: the figures it shows are the figures served."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from engine.api import Plan, compile_ruleset, load_sources, quote
from engine.core.data import DataSet
from server.demo import generate

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
TOUR, _, ORDERS = README.partition("## Orders and the ledger")


def _demo_plan() -> Plan:
    tables = generate()
    catalog = tables.pop("catalog")
    sources = {str(Path(p).relative_to(ROOT)): s for p, s in load_sources(ROOT / "rules").items()}
    return compile_ruleset(sources, DataSet(catalog=catalog, tables=tables))


def test_readme_tour_quote_matches_the_demo() -> None:
    request = json.loads(re.search(r"<<'JSON'\n(.*?)\nJSON", TOUR, re.S).group(1))  # type: ignore[union-attr]
    shown: list[dict[str, Any]] = [
        json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", TOUR, re.S)
    ]
    response = quote(_demo_plan(), request)
    assert response["errors"] == []
    assert len(shown) >= 3
    for excerpt in shown:
        if "id" in excerpt:  # a line, shown whole
            assert next(x for x in response["lines"] if x["id"] == excerpt["id"]) == excerpt
        else:  # top-level keys
            assert {k: response[k] for k in excerpt} == excerpt


def test_readme_orders_validate_commit_cancel_on_the_demo(tmp_path: Path) -> None:
    """The orders section: validate (stale price), commit, commit again, cancel."""
    import warnings

    from engine.ledger.store import Store
    from server.app import create_app
    from server.settings import Settings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    order = json.loads(re.search(r"<<'ORDER'\n(.*?)\nORDER", ORDERS, re.S).group(1))  # type: ignore[union-attr]
    validated, committed, cancelled = [
        json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", ORDERS, re.S)
    ]
    db = tmp_path / "demo.duckdb"
    with Store(db) as store:
        for name, frame in generate().items():
            store.load_frame(name, frame)
    with TestClient(create_app(Settings(db_path=db, rules_dir=ROOT / "rules"))) as client:
        body = client.post("/orders/validate", json=order).json()
        assert {k: body[k] for k in validated} == validated
        order["lines"][0]["expected_net"] = validated["errors"][0]["actual"]
        first = client.post("/orders/commit", json=order)
        assert first.status_code == 200
        assert {k: first.json()[k] for k in committed} == committed
        again = client.post("/orders/commit", json=order)
        assert again.headers["Idempotent-Replay"] == "true" and again.json() == first.json()
        assert client.post(f"/orders/{order['id']}/cancel").json() == cancelled

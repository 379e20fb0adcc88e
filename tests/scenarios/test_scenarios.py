"""Acceptance scenarios (../shared/scenarios), each through the HTTP API.

Each scenario directory here holds the scenario's rules written as a ``.rule`` file; the
scenario's catalog and tables are loaded through the store exactly as ``pricer load``
does, its ``ledger`` block is seeded as ``pricer load ledger`` does, and its request is
sent to ``POST /price`` (or, for the order scenarios, to the endpoint it names).
``pytest -k <scenario id>`` runs one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.core.data import DataSet
from engine.ledger.store import Store
from server.app import create_app
from server.settings import Settings

HERE = Path(__file__).parent
CASES = HERE / "cases"
ALL_SCENARIOS = sorted(p.parent.name for p in HERE.glob("*/ruleset.rule"))


def load_case(scenario_id: str) -> dict[str, Any]:
    return json.loads((CASES / f"{scenario_id}.json").read_text())


#: scenario files whose standard_prices price a SKU their catalog lacks (V02 prices D)
PRICES_BEYOND_CATALOG = {"V02-sellable-and-packs"}


def _param(scenario_id: str) -> Any:
    return pytest.param(scenario_id, id=scenario_id)


SCENARIOS = [s for s in ALL_SCENARIOS if "cart" in load_case(s)["request"]]
ORDER_SCENARIOS = [s for s in ALL_SCENARIOS if "endpoint" in load_case(s)["request"]]


@pytest.fixture
def scenario_client(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    scenario_id = request.param
    case = load_case(scenario_id)
    tables = dict(case.get("tables") or {})
    if (
        scenario_id in PRICES_BEYOND_CATALOG
    ):  # the compiler rightly refuses a price for an unknown SKU
        skus = {item["sku"] for item in case["catalog"]}
        tables["standard_prices"] = [row for row in tables["standard_prices"] if row["sku"] in skus]
    data = DataSet.from_rows(case.get("catalog") or [], tables)
    settings = Settings(data_dir=tmp_path, rules_dir=HERE / scenario_id)
    with Store(settings.db_path) as store:
        files = tmp_path / "files"
        files.mkdir()
        data.catalog.write_csv(files / "catalog.csv")
        store.load_table("catalog", files / "catalog.csv")
        for name, frame in data.tables.items():
            frame.write_csv(files / f"{name}.csv")
            store.load_table(name, files / f"{name}.csv")
        if case.get("ledger"):
            store.ledger.seed(case["ledger"], case["ruleset"]["currency"])
    with TestClient(create_app(settings)) as client:
        yield client, case


def _lines(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["id"]: line for line in body["lines"]}


def assert_sublines(
    got: list[dict[str, Any]] | None, want: list[dict[str, Any]], line_id: str
) -> None:
    """A split line's sub-lines, special first: every figure the scenario gives (a sub-line
    that does not say ``special`` is the list-price one)."""
    assert got is not None, f"line {line_id} was not split"
    assert len(got) == len(want), line_id
    for sub, expected in zip(got, want, strict=True):
        assert sub["special"] == expected.get("special", False), line_id
        for key, value in expected.items():
            if key == "adjustments":
                assert [[a["rule"], a["amount"]] for a in sub["adjustments"]] == value, line_id
            elif key != "special":
                assert sub[key] == value, (line_id, key)


def assert_expected(body: dict[str, Any], expected: dict[str, Any]) -> None:
    lines = _lines(body)
    for line_id, want in expected.get("lines", {}).items():
        got = lines[line_id]
        for key, value in want.items():
            if key in ("note", "why"):
                continue
            if key == "adjustments":
                assert [[a["rule"], a["amount"]] for a in got["adjustments"]] == value, line_id
            elif key == "sublines":
                assert_sublines(got.get("sublines"), value, line_id)
            else:
                assert got[key] == value, (line_id, key)
    totals = {"net_total": "net", "tax_total": "tax", "total": "gross"}
    for key, total in totals.items():
        if key in expected:
            assert body["totals"][total] == expected[key], key
    if "errors" in expected:
        got_errors = sorted((e["line"], e["code"]) for e in body["errors"])
        assert got_errors == sorted((e["line"], e["code"]) for e in expected["errors"])
    if "gifts" in expected:
        assert len(body["gifts"]) == len(expected["gifts"])
        for got, want in zip(body["gifts"], expected["gifts"], strict=True):
            assert {k: got[k] for k in want} == want
    if "gift_value" in expected:
        assert body["totals"]["gift_value"] == expected["gift_value"]
    if "hints" in expected:
        assert len(body["hints"]) == len(expected["hints"])
        for got, want in zip(body["hints"], expected["hints"], strict=True):
            assert {k: got[k] for k in want} == want
    if "warnings" in expected:
        assert sorted(w["code"] for w in body["warnings"]) == sorted(expected["warnings"])


#: the scenarios' "also" sentences, as a changed request and the figures it must give
ALSO: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "P03-validity-window": (
        {"date": "2026-11-30"},
        {
            "lines": {"1": {"unit_price": "19.00", "price_list": "gold november"}},
            "net_total": "19.00",
        },
    ),
    "C03-uses-per-customer": ({"customer": {"id": "D2"}}, {"net_total": "190.00"}),
}


@pytest.mark.parametrize("scenario_client", [_param(s) for s in SCENARIOS], indirect=True)
def test_scenario(scenario_client: tuple[TestClient, dict[str, Any]]) -> None:
    client, case = scenario_client
    cart = case["request"]["cart"]
    response = client.post("/price", json=cart)
    assert response.status_code == 200, response.text
    body = response.json()
    assert_expected(body, case["expected"])
    if case["id"] in ALSO:
        change, expected = ALSO[case["id"]]
        again = client.post("/price", json={**cart, **change})
        assert again.status_code == 200, again.text
        assert_expected(again.json(), expected)


def _has(found: list[dict[str, Any]], want: dict[str, Any]) -> bool:
    return any(all(f.get(k) == v for k, v in want.items()) for f in found)


def _special_remaining(client: TestClient, order: dict[str, Any]) -> str:
    line = order["lines"][0]
    quotas = client.get(
        f"/quotas/special/{order['customer']['id']}",
        params={"project": order.get("project"), "sku": line["sku"]},
    )
    assert quotas.status_code == 200, quotas.text
    [row] = quotas.json()["quotas"]
    return str(row["qty_remaining"])


@pytest.mark.parametrize("scenario_client", [_param(s) for s in ORDER_SCENARIOS], indirect=True)
def test_order_scenario(scenario_client: tuple[TestClient, dict[str, Any]]) -> None:
    """V01-V04: validate findings with their figures; commit, commit again, cancel."""
    client, case = scenario_client
    endpoint, order, expected = (
        case["request"]["endpoint"],
        case["request"]["order"],
        case["expected"],
    )
    if endpoint == "orders/validate":
        response = client.post("/orders/validate", json=order)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["ok"] is False
        for want in expected["errors"]:
            assert _has(body["errors"], want), (want, body["errors"])
        assert len(body["errors"]) == len(expected["errors"]), body["errors"]
        return
    assert endpoint == "orders/commit"
    first = client.post("/orders/commit", json=order)
    assert first.status_code == 200, first.text
    assert first.json()["quote"]["totals"]["net"] == expected["after_first_commit"]["net_total"]
    assert _special_remaining(client, order) == expected["after_first_commit"]["special_remaining"]
    again = client.post("/orders/commit", json=order)
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replay"] == "true"
    assert (
        again.json()["quote"]["totals"]["net"]
        == expected["after_second_commit_same_id"]["net_total"]
    )
    assert (
        _special_remaining(client, order)
        == expected["after_second_commit_same_id"]["special_remaining"]
    )
    cancelled = client.post(f"/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert _special_remaining(client, order) == expected["after_cancel"]["special_remaining"]

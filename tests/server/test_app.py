"""The API's working paths: quotes with real figures, rulesets inspected, checked, published."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

import engine.api
from engine.ledger.store import Store
from server.app import StartupError, create_app
from server.settings import Settings
from tests.server.conftest import BROKEN, CART, RULESET, RULESET_20, admin, write_ruleset


def test_price_two_a_in_cn_gets_ten_percent_off_and_vat(client: TestClient) -> None:
    resp = client.post("/price", json=CART)

    assert resp.status_code == 200
    quote = resp.json()
    (priced,) = quote["lines"]
    assert (priced["price_list"], priced["unit_price"], priced["list_amount"]) == (
        "standard",
        "20.00",
        "40.00",
    )
    assert [(a["rule"], a["amount"]) for a in priced["adjustments"]] == [("ten", "-4.00")]
    assert quote["totals"] == {
        "list": "40.00",
        "discount": "-4.00",
        "net": "36.00",
        "tax": "4.68",
        "gross": "40.68",
        "gift_value": "0.00",
    }
    assert quote["ruleset_version"] == client.get("/health").json()["ruleset_version"]


def test_price_in_boxes_converts_to_base_units(client: TestClient) -> None:
    cart = {**CART, "lines": [{"id": "L1", "sku": "A", "qty": 1, "unit": "box"}]}
    quote = client.post("/price", json=cart).json()
    assert quote["lines"][0]["id"] == "L1"
    assert quote["lines"][0]["base_qty"] == "12"
    assert quote["totals"] == {
        "list": "240.00",
        "discount": "-24.00",
        "net": "216.00",
        "tax": "28.08",
        "gross": "244.08",
        "gift_value": "0.00",
    }


def test_price_outside_cn_has_no_tax(client: TestClient) -> None:
    cart = {**CART, "customer": {"id": "D9", "region": "HK", "segment": "retail", "vip": True}}
    totals = client.post("/price", json=cart).json()["totals"]
    assert (totals["net"], totals["tax"], totals["gross"]) == ("36.00", "0.00", "36.00")


def test_batch_answers_each_cart_like_price(client: TestClient) -> None:
    hk = {**CART, "customer": {"region": "HK"}, "lines": [{"sku": "A", "qty": "3"}]}
    resp = client.post("/price/batch", json={"carts": [CART, hk]})

    assert resp.status_code == 200
    body = resp.json()
    assert [q["totals"]["gross"] for q in body["quotes"]] == ["40.68", "54.00"]
    assert body["quotes"][0] == client.post("/price", json=CART).json()
    assert body["ruleset_version"] == body["quotes"][0]["ruleset_version"]


def test_current_ruleset_describes_the_served_plan(client: TestClient, rules_dir: Path) -> None:
    body = client.get("/rulesets/current").json()
    assert body["name"] == "t"
    assert (body["currency"], body["timezone"], body["rounding"]) == (
        "CNY",
        "Asia/Shanghai",
        "half_up",
    )
    assert body["rules"] == ["standard", "ten", "vat"]
    assert body["files"] == [str(rules_dir / "main.rule")]
    assert body["source"] == str(rules_dir) and body["published_at"] is None


def test_check_reports_ok_for_a_clean_ruleset(client: TestClient) -> None:
    body = client.post("/rulesets/check", json={"files": {"main.rule": RULESET}}).json()
    assert body == {"ok": True, "diagnostics": [], "rendered": "0 errors, 0 warnings"}


def test_check_reports_diagnostics_without_publishing(client: TestClient) -> None:
    before = client.get("/health").json()["ruleset_version"]
    resp = client.post("/rulesets/check", json={"files": {"main.rule": BROKEN}})

    assert resp.status_code == 200
    body = resp.json()
    assert body["ok"] is False
    assert [d["code"] for d in body["diagnostics"]] == ["E0301"]
    assert body["rendered"].startswith(
        "main.rule:2:35: error[E0301]: unknown table 'standard_pricez'"
    )
    assert "help: did you mean 'standard_prices'?" in body["rendered"]
    assert client.get("/health").json()["ruleset_version"] == before


def test_publish_swaps_the_plan_and_survives_a_restart(
    client: TestClient, settings: Settings
) -> None:
    old = client.get("/health").json()["ruleset_version"]

    resp = client.post(
        "/rulesets/publish", json={"files": {"rules/main.rule": RULESET_20}}, headers=admin()
    )

    assert resp.status_code == 200
    body = resp.json()
    assert body["previous_version"] == old and body["changed"] is True
    assert body["version"] != old
    assert client.get("/health").json()["ruleset_version"] == body["version"]
    assert client.post("/price", json=CART).json()["totals"]["net"] == "32.00"
    again = client.post(
        "/rulesets/publish", json={"files": {"rules/main.rule": RULESET_20}}, headers=admin()
    )
    assert again.json()["changed"] is False

    client.app.state.runtime.close()  # type: ignore[attr-defined]
    with TestClient(create_app(settings)) as restarted:
        current = restarted.get("/rulesets/current").json()
        assert current["version"] == body["version"]
        assert current["source"] == "store" and current["files"] == ["rules/main.rule"]


def test_publishing_after_a_new_data_table_is_a_new_version(client: TestClient) -> None:
    files = {"rules/main.rule": RULESET}
    first = client.post("/rulesets/publish", json={"files": files}, headers=admin()).json()
    store: Store = client.app.state.runtime.store  # type: ignore[attr-defined]
    store.load_frame("standard_prices", pl.DataFrame({"sku": ["A"], "price": ["25.00"]}))

    again = client.post("/rulesets/publish", json={"files": files}, headers=admin()).json()

    assert again["changed"] is True and again["previous_version"] == first["version"]
    assert again["version"] != first["version"]
    # 2 x 25.00 less 10% = 45.00 (the old table gave 36.00)
    quote = client.post("/price", json=CART).json()
    assert (quote["totals"]["net"], quote["ruleset_version"]) == ("45.00", again["version"])


def test_request_in_flight_finishes_on_the_plan_it_started_with(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_quote = engine.api.quote
    entered, release = threading.Event(), threading.Event()

    def slow_quote(plan: Any, cart: Any, **kw: Any) -> Any:
        entered.set()
        assert release.wait(10)
        return real_quote(plan, cart, **kw)

    monkeypatch.setattr(engine.api, "quote", slow_quote)
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(client.post("/price", json=CART).json()))
    worker.start()
    assert entered.wait(10)
    published = client.post(
        "/rulesets/publish", json={"files": {"m.rule": RULESET_20}}, headers=admin()
    )
    release.set()
    worker.join(10)

    assert published.status_code == 200
    assert result["totals"]["net"] == "36.00"  # the old plan: 10% off
    assert result["ruleset_version"] == published.json()["previous_version"]
    monkeypatch.setattr(engine.api, "quote", real_quote)
    assert client.post("/price", json=CART).json()["totals"]["net"] == "32.00"


def test_startup_with_a_broken_rules_dir_fails_with_diagnostics(
    settings: Settings, tmp_path: Path
) -> None:
    broken = write_ruleset(tmp_path / "broken", BROKEN)
    with pytest.raises(StartupError, match=r"main.rule:2:35: error\[E0301\]"):
        create_app(settings.model_copy(update={"rules_dir": broken}))
    with Store(settings.db_path) as store:  # the store was closed again: it opens
        assert store.has_catalog()


def test_openapi_documents_the_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {
        "/price",
        "/price/batch",
        "/health",
        "/rulesets/current",
        "/rulesets/check",
        "/rulesets/publish",
    } <= set(spec["paths"])
    assert "CartIn" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 200


def test_max_lines_setting_is_the_limit_the_engine_applies(settings: Settings) -> None:
    roomy = settings.model_copy(update={"max_lines_per_cart": 1500})
    cart = {**CART, "lines": [{"sku": "A", "qty": "1"}] * 1200}
    with TestClient(create_app(roomy)) as client:
        resp = client.post("/price", json=cart)
        assert resp.status_code == 200, resp.text
        assert resp.json()["totals"]["list"] == "24000.00"
        batch = client.post("/price/batch", json={"carts": [cart]})
        assert batch.status_code == 200, batch.text

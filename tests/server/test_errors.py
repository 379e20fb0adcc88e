"""Every failing path of the API answers with the one error shape, the right status and code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import engine.api
from server.app import create_app
from server.settings import Settings
from tests.server.conftest import BROKEN, CART, RULESET_20, admin

ERROR_ITEM_PLACES = {"field", "line", "source"}


def assert_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is ``status`` with the one error shape and top-level ``code``."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = resp.json()
    assert set(body) == {"code", "message", "errors"}
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], list) and body["errors"]
    for item in body["errors"]:
        assert isinstance(item["code"], str) and item["code"]
        assert isinstance(item["message"], str) and item["message"]
    assert "Traceback" not in resp.text
    return body


def line(**fields: Any) -> dict[str, Any]:
    return {"sku": "A", "qty": "1", **fields}


JSON = {"content-type": "application/json"}

# (id, request kwargs, status, code, field of the first error item or None)
MALFORMED: list[tuple[str, dict[str, Any], int, str, str | None]] = [
    ("not_json", {"content": b"{sku: A", "headers": JSON}, 400, "bad_json", "body"),
    ("truncated_json", {"content": b'{"lines": [', "headers": JSON}, 400, "bad_json", "body"),
    ("empty_body", {"content": b"", "headers": JSON}, 400, "bad_json", "body"),
    (
        "form_body",
        {"content": b"lines=A", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        400,
        "bad_json",
        "body",
    ),
    ("not_utf8", {"content": b'{"lines": "\xff\xfe"}', "headers": JSON}, 400, "bad_json", None),
    ("json_list", {"json": [CART]}, 422, "invalid_request", "body"),
    ("json_string", {"json": "cart"}, 422, "invalid_request", "body"),
    ("json_null", {"content": b"null", "headers": JSON}, 422, "invalid_request", "body"),
    ("missing_lines", {"json": {"currency": "CNY"}}, 422, "invalid_request", "lines"),
    ("lines_not_list", {"json": {"lines": {"sku": "A"}}}, 422, "invalid_request", "lines"),
    ("line_not_object", {"json": {"lines": ["A"]}}, 422, "invalid_request", "lines[0]"),
    (
        "qty_object",
        {"json": {"lines": [line(qty={"value": 1})]}},
        422,
        "invalid_request",
        "lines[0].qty",
    ),
    ("qty_float", {"json": {"lines": [line(qty=1.5)]}}, 422, "invalid_request", "lines[0].qty"),
    ("qty_bool", {"json": {"lines": [line(qty=True)]}}, 422, "invalid_request", "lines[0].qty"),
    ("qty_missing", {"json": {"lines": [{"sku": "A"}]}}, 422, "invalid_request", "lines[0].qty"),
    ("sku_number", {"json": {"lines": [line(sku=7)]}}, 422, "invalid_request", "lines[0].sku"),
    (
        "unknown_line_key",
        {"json": {"lines": [line(quantity="1")]}},
        422,
        "invalid_request",
        "lines[0].quantity",
    ),
    ("unknown_cart_key", {"json": {**CART, "coupon": "X"}}, 422, "invalid_request", "coupon"),
    ("customer_string", {"json": {**CART, "customer": "D1"}}, 422, "invalid_request", "customer"),
    (
        "custom_attr_object",
        {"json": {**CART, "customer": {"id": "D1", "x": {}}}},
        422,
        "invalid_request",
        None,
    ),
    ("date_number", {"json": {**CART, "date": 20261122}}, 422, "invalid_request", "date"),
    ("empty_lines", {"json": {"lines": []}}, 422, "no_lines", "lines"),
    ("bad_date", {"json": {**CART, "date": "2026-13-45"}}, 422, "bad_date", "date"),
    (
        "unknown_currency",
        {"json": {**CART, "currency": "XXX"}},
        422,
        "unknown_currency",
        "currency",
    ),
    ("2000_lines", {"json": {"lines": [line()] * 2000}}, 413, "too_large", "lines"),
    (
        "huge_body",
        {"content": b'{"lines": [' + b" " * 300_000 + b"]}", "headers": JSON},
        413,
        "too_large",
        "body",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "field"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_cart_gets_error_shape_not_500(
    client: TestClient, kwargs: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    body = assert_error(client.post("/price", **kwargs), status, code)
    if field is not None:
        assert body["errors"][0]["field"] == field


def test_chunked_body_over_limit_is_413(client: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(100):
            yield b" " * 4096

    assert_error(client.post("/price", content=chunks(), headers=JSON), 413, "too_large")


def test_bad_quantity_is_a_line_error_not_a_request_error(client: TestClient) -> None:
    cart = {
        **CART,
        "lines": [line(qty="-1"), line(qty="1.2345"), line(qty="two"), line(sku="NOPE")],
    }
    resp = client.post("/price", json=cart)
    assert resp.status_code == 200
    codes = [e["code"] for e in resp.json()["errors"]]
    assert codes == ["bad_quantity", "bad_quantity", "bad_quantity", "unknown_sku"]
    assert resp.json()["totals"]["net"] == "0.00"


def test_unknown_route_is_404_not_found(client: TestClient) -> None:
    body = assert_error(client.get("/prices"), 404, "not_found")
    assert "/prices" in body["message"]


def test_wrong_method_is_405_with_allow_header(client: TestClient) -> None:
    resp = client.get("/price")
    assert_error(resp, 405, "method_not_allowed")
    assert resp.headers["allow"] == "POST"
    assert_error(client.delete("/health"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    "path", ["/price/batch", "/rulesets/check", "/rulesets/publish"], ids=lambda p: p.strip("/")
)
def test_other_bodies_not_json_are_400(client: TestClient, path: str) -> None:
    headers = {**JSON, **admin()}
    assert_error(client.post(path, content=b"[1,", headers=headers), 400, "bad_json")


def test_batch_over_max_carts_is_413(client: TestClient) -> None:
    body = assert_error(client.post("/price/batch", json={"carts": [CART] * 6}), 413, "too_large")
    assert body["errors"][0]["field"] == "carts"


def test_batch_cart_over_max_lines_names_the_cart(client: TestClient) -> None:
    big = {**CART, "lines": [line()] * 1001}
    body = assert_error(client.post("/price/batch", json={"carts": [CART, big]}), 413, "too_large")
    assert body["errors"][0]["field"] == "carts[1].lines"


def test_batch_with_bad_cart_is_422_with_field(client: TestClient) -> None:
    resp = client.post("/price/batch", json={"carts": [CART, {"lines": [line(qty=[])]}]})
    body = assert_error(resp, 422, "invalid_request")
    assert body["errors"][0]["field"] == "carts[1].lines[0].qty"


def test_batch_missing_carts_is_422(client: TestClient) -> None:
    body = assert_error(client.post("/price/batch", json={"cart": []}), 422, "invalid_request")
    assert {e["field"] for e in body["errors"]} == {"carts", "cart"}


def test_check_with_no_files_is_422(client: TestClient) -> None:
    body = assert_error(client.post("/rulesets/check", json={"files": {}}), 422, "invalid_request")
    assert body["errors"][0]["field"] == "files"


def test_publish_without_token_is_401(client: TestClient) -> None:
    resp = client.post("/rulesets/publish", json={"files": {"a.rule": RULESET_20}})
    assert_error(resp, 401, "unauthorized")
    assert resp.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header", ["Bearer wrong-token-123", "Basic dGVzdC1hZG1pbi10b2tlbg==", "test-admin-token"]
)
def test_publish_with_wrong_token_is_401(client: TestClient, header: str) -> None:
    resp = client.post(
        "/rulesets/publish",
        json={"files": {"a.rule": RULESET_20}},
        headers={"Authorization": header},
    )
    assert_error(resp, 401, "unauthorized")


def test_publish_when_admin_disabled_is_403(settings: Settings) -> None:
    no_admin = settings.model_copy(update={"admin_token": None})
    with TestClient(create_app(no_admin)) as client:
        resp = client.post(
            "/rulesets/publish", json={"files": {"a.rule": RULESET_20}}, headers=admin()
        )
        body = assert_error(resp, 403, "admin_disabled")
        assert "PRICER_ADMIN_TOKEN" in body["message"]


def test_publish_broken_ruleset_is_422_and_old_version_keeps_serving(client: TestClient) -> None:
    before = client.get("/health").json()["ruleset_version"]
    assert before.startswith("sha256:")

    resp = client.post(
        "/rulesets/publish", json={"files": {"rules/main.rule": BROKEN}}, headers=admin()
    )

    body = assert_error(resp, 422, "ruleset_invalid")
    diag = body["errors"][0]
    assert (diag["code"], diag["file"], diag["line"]) == ("E0301", "rules/main.rule", 2)
    assert diag["source"] == "rules/main.rule:2:35"
    assert diag["hint"] == "did you mean 'standard_prices'?"
    assert client.get("/health").json()["ruleset_version"] == before
    quoted = client.post("/price", json=CART).json()
    assert quoted["ruleset_version"] == before
    assert quoted["totals"]["net"] == "36.00"


def test_publish_syntax_error_is_422_with_position(client: TestClient) -> None:
    source = 'ruleset "t" currency CNY\npricelist "x" priority { table standard_prices }\n'
    resp = client.post("/rulesets/publish", json={"files": {"bad.rule": source}}, headers=admin())
    body = assert_error(resp, 422, "ruleset_invalid")
    assert body["errors"][0]["file"] == "bad.rule"
    assert body["errors"][0]["line"] == 2


def test_no_ruleset_loaded_is_503_no_ruleset(settings: Settings, tmp_path: Path) -> None:
    empty = settings.model_copy(update={"rules_dir": tmp_path / "no-rules"})
    with TestClient(create_app(empty)) as client:
        assert client.get("/health").json() == {"status": "ok", "ruleset_version": None}
        assert_error(client.post("/price", json=CART), 503, "no_ruleset")
        assert_error(client.get("/rulesets/current"), 503, "no_ruleset")


def test_unexpected_exception_is_500_internal_without_details(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail from deep inside")

    monkeypatch.setattr(engine.api, "quote", boom)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        resp = client.post("/price", json=CART)
    body = assert_error(resp, 500, "internal")
    assert "secret" not in resp.text and "RuntimeError" not in resp.text
    assert body["errors"] == [{"code": "internal", "message": body["message"]}]


@pytest.mark.parametrize("body", [{"files": {}}, {"nope": 1}, {"files": {"a.rule": 7}}])
def test_publish_checks_the_token_before_the_body(client: TestClient, body: dict[str, Any]) -> None:
    assert_error(client.post("/rulesets/publish", json=body), 401, "unauthorized")

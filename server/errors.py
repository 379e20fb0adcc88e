"""The API's one error shape and the handlers that produce it for every failure.

Every error response is ``{"code", "message", "errors": [{"code", "message", "field" |
"line" | "source", ...}]}``. Where each comes from::

    Exception
    ├── ApiError (ours; status + code)             -> its status
    │   ├── TooLarge                               -> 413 too_large
    │   ├── Unauthorized                           -> 401 unauthorized
    │   ├── AdminDisabled                          -> 403 admin_disabled
    │   └── NoRuleset                              -> 503 no_ruleset
    ├── RequestValidationError (FastAPI)           -> 400 bad_json | 422 invalid_request
    ├── engine.api.CartError                       -> 422 <its code>
    ├── engine.core.money.MoneyError                    -> 422 invalid_value
    ├── dsl.errors.RuleError                       -> 422 ruleset_invalid (every diagnostic)
    ├── starlette HTTPException (routing)          -> 404 not_found, 405 method_not_allowed
    └── anything else                              -> 500 internal (no details in the body)

Bodies over ``max_body_bytes`` are refused by ``BodyLimit`` before any route runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dsl.errors import RuleError
from engine.core.money import MoneyError

log = logging.getLogger("pricer.server")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def dumps(content: Any, *, pretty: bool = False) -> bytes:
    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    if pretty:
        option |= orjson.OPT_INDENT_2
    return orjson.dumps(content, default=_default, option=option)


class OrjsonResponse(Response):
    """JSON rendered by orjson (money stays strings; a stray Decimal becomes one)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


# ---- our own errors ------------------------------------------------------------------


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, errors: Sequence[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors) if errors is not None else []


class TooLarge(ApiError):
    status = 413
    code = "too_large"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class AdminDisabled(ApiError):
    status = 403
    code = "admin_disabled"


class NoRuleset(ApiError):
    status = 503
    code = "no_ruleset"


def error_body(code: str, message: str, errors: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    items = list(errors) or [{"code": code, "message": message}]
    return {"code": code, "message": message, "errors": items}


def error_response(
    status: int,
    code: str,
    message: str,
    errors: Iterable[dict[str, Any]] = (),
    headers: dict[str, str] | None = None,
) -> OrjsonResponse:
    return OrjsonResponse(error_body(code, message, errors), status_code=status, headers=headers)


# ---- translating each kind of failure ------------------------------------------------


def field_path(loc: Sequence[int | str]) -> str:
    """``("body", "lines", 0, "qty")`` -> ``"lines[0].qty"``."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def clean_message(message: str) -> str:
    """Pydantic's message without its ``Value error, `` prefix (our validators' own words)."""
    return message.removeprefix("Value error, ")


def _validation(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    for err in raw:
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "invalid JSON")
            pos = loc[1] if len(loc) > 1 else None
            where = f" at character {pos}" if pos is not None else ""
            msg = f"the request body is not valid JSON: {detail}{where}"
            return error_response(
                400, "bad_json", msg, [{"code": "bad_json", "message": msg, "field": "body"}]
            )
        if loc == ("body",) and err.get("type") == "missing":
            msg = "the request body is empty; send a JSON object"
            return error_response(
                400, "bad_json", msg, [{"code": "bad_json", "message": msg, "field": "body"}]
            )
        if loc == ("body",) and isinstance(err.get("input"), (bytes, bytearray)):
            msg = "the request body must be JSON (Content-Type: application/json)"
            return error_response(
                400, "bad_json", msg, [{"code": "bad_json", "message": msg, "field": "body"}]
            )
    items = [
        {
            "code": str(err.get("type", "invalid")),
            "message": clean_message(str(err.get("msg", "invalid value"))),
            "field": field_path(tuple(err.get("loc", ()))),
        }
        for err in raw[:100]
    ]
    n = len(raw)
    first = f"{items[0]['field']}: {items[0]['message']}" if items else "invalid request"
    more = f" (and {n - 1} more)" if n > 1 else ""
    return error_response(422, "invalid_request", f"invalid request: {first}{more}", items)


def _api_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return error_response(exc.status, exc.code, exc.message, exc.errors, headers)


def _cart_error(request: Request, exc: Exception) -> OrjsonResponse:
    code = str(getattr(exc, "code", "bad_cart"))
    message = str(getattr(exc, "message", None) or exc)
    item: dict[str, Any] = {"code": code, "message": message}
    field = getattr(exc, "field", None)
    if field:
        item["field"] = field
    return error_response(422, code, message, [item])


def _money_error(request: Request, exc: Exception) -> OrjsonResponse:
    message = str(exc)
    return error_response(422, "invalid_value", message)


def rule_error_items(exc: RuleError) -> list[dict[str, Any]]:
    return [d.to_dict() for d in exc.diagnostics]


def _rule_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, RuleError)
    errors = sum(1 for d in exc.diagnostics if d.severity == "error")
    message = f"the ruleset has {errors} error{'s' if errors != 1 else ''}; nothing was published"
    return error_response(422, "ruleset_invalid", message, rule_error_items(exc))


_HTTP_CODES = {
    400: ("bad_json", "the request body could not be read as JSON"),
    404: ("not_found", "no such endpoint"),
    405: ("method_not_allowed", "method not allowed on this endpoint"),
}


def _http_error(request: Request, exc: Exception) -> OrjsonResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, message = _HTTP_CODES.get(exc.status_code, ("http_error", str(exc.detail)))
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {request.url.path}" + (
            f"; use {allowed}" if allowed else ""
        )
    return error_response(
        exc.status_code, code, message, headers=dict(exc.headers) if exc.headers else None
    )


def _internal(request: Request, exc: Exception) -> OrjsonResponse:
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal error; the server log has the details")


def install(app: FastAPI, cart_error: type[Exception] | None) -> None:
    """Register every handler on ``app`` (``cart_error`` is ``engine.api.CartError``)."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ApiError, _api_error)
    if cart_error is not None:
        app.add_exception_handler(cart_error, _cart_error)
    app.add_exception_handler(MoneyError, _money_error)
    app.add_exception_handler(RuleError, _rule_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal)


# ---- body size -----------------------------------------------------------------------


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413 ``too_large``.

    Checks ``Content-Length`` first, then counts the bytes actually received (chunked
    bodies), buffering at most ``max_bytes`` before handing the body on.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = -1
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        chunks: list[bytes] = []
        total = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(body)
            more = bool(message.get("more_body", False))
        replay: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([replay], then=receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body is over the limit of {self.max_bytes} bytes"
        response = error_response(
            413, "too_large", message, [{"code": "too_large", "message": message, "field": "body"}]
        )
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive

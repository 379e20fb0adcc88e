"""The FastAPI app: thin routes from JSON to ``engine.api`` and back, one router per area.

State lives in one ``Runtime`` on ``app.state.runtime``: the store and the loaded ruleset.
Publishing compiles the new ruleset off to the side and swaps one reference under a lock;
a request reads the reference once, so requests in flight finish on the plan they started.

    uvicorn.run(create_app(load_settings()))     # what ``pricer serve`` does
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from dsl.errors import RuleError, render_all
from engine import api as engine_api
from engine.core.data import DataError
from engine.ledger.store import Store, StoreError
from server import errors, orders
from server.errors import AdminDisabled, NoRuleset, OrjsonResponse, TooLarge, Unauthorized
from server.schemas import (
    BatchIn,
    BatchOut,
    CartIn,
    CheckOut,
    ErrorOut,
    HealthOut,
    PublishOut,
    QuoteOut,
    RulesetFilesIn,
    RulesetOut,
)
from server.settings import Settings, load_settings

if TYPE_CHECKING:
    from engine.api import Plan

log = logging.getLogger("pricer.server")


class StartupError(RuntimeError):
    """The service cannot start: the store cannot be opened or the ruleset does not compile."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """A compiled ruleset and where it came from; never mutated, only replaced."""

    plan: Plan
    sources: dict[str, str]
    origin: str  # "store" or the rules directory it was read from
    published_at: dt.datetime | None = None


class Runtime:
    """The app's state: the store and the ruleset currently served."""

    def __init__(self, settings: Settings, store: Store, loaded: Loaded | None) -> None:
        self.settings = settings
        self.store = store
        self._loaded = loaded
        self._swap = threading.Lock()

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        """Open the store and load the published ruleset, else the one in ``rules_dir``."""
        try:
            store = Store(settings.db_path)
        except StoreError as exc:
            raise StartupError(str(exc)) from None
        try:
            return cls(settings, store, _startup_ruleset(settings, store))
        except BaseException:
            store.close()
            raise

    @property
    def loaded(self) -> Loaded | None:
        return self._loaded

    def require(self) -> Loaded:
        loaded = self._loaded
        if loaded is None:
            raise NoRuleset(
                "no ruleset is loaded: publish one (POST /rulesets/publish) or put .rule files "
                f"in {self.settings.rules_dir} and restart"
            )
        return loaded

    def publish(self, files: dict[str, str]) -> tuple[Loaded, Loaded | None]:
        """Compile ``files`` against the store's data; swap it in and record it. RuleError if bad."""
        plan = engine_api.compile_ruleset(files, self.store.snapshot())
        with self._swap:
            old = self._loaded
            if old is not None and old.origin == "store" and old.plan.version == plan.version:
                return old, old
            record = self.store.save_ruleset(plan.version, files)
            new = Loaded(plan, dict(files), "store", record.published_at)
            self._loaded = new
        log.info("published ruleset %s (was %s)", plan.version, old.plan.version if old else None)
        return new, old

    def close(self) -> None:
        self.store.close()


def _startup_ruleset(settings: Settings, store: Store) -> Loaded | None:
    record = store.current_ruleset_record()
    if record is not None:
        sources, origin, published = record.sources, "store", record.published_at
    elif settings.rules_dir.is_dir() and any(settings.rules_dir.rglob("*.rule")):
        sources = engine_api.load_sources(settings.rules_dir)
        origin, published = str(settings.rules_dir), None
    else:
        log.warning("no ruleset: nothing published and no .rule files in %s", settings.rules_dir)
        return None
    what = "the published ruleset" if origin == "store" else f"the ruleset in {origin}"
    try:
        plan = engine_api.compile_ruleset(sources, store.snapshot())
    except RuleError as exc:
        raise StartupError(
            f"{what} does not compile against the loaded data:\n{exc.render()}"
        ) from None
    except DataError as exc:
        raise StartupError(f"{what} does not compile against the loaded data: {exc}") from None
    log.info("serving ruleset %s from %s", plan.version, origin)
    return Loaded(plan, sources, origin, published)


# ---- dependencies --------------------------------------------------------------------


# async, so FastAPI calls them on the event loop instead of hopping to the thread pool
async def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _loaded(runtime: Annotated[Runtime, Depends(_runtime)]) -> Loaded:
    return runtime.require()


_bearer = HTTPBearer(auto_error=False, description="PRICER_ADMIN_TOKEN")


def _admin(
    runtime: Annotated[Runtime, Depends(_runtime)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    token = runtime.settings.admin_token
    if token is None:
        raise AdminDisabled(
            "admin endpoints are disabled: the server was started without PRICER_ADMIN_TOKEN"
        )
    if credentials is None:
        raise Unauthorized("this endpoint needs 'Authorization: Bearer <admin token>'")
    expected = token.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise Unauthorized("the bearer token is not the admin token")


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
LoadedDep = Annotated[Loaded, Depends(_loaded)]
AdminDep = Annotated[None, Depends(_admin)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut} for status in (400, 413, 422, 503)
}


def check_lines(cart: CartIn, limit: int, where: str) -> None:
    if len(cart.lines) > limit:
        message = f"{where} has {len(cart.lines)} lines; at most {limit} are allowed per cart"
        raise TooLarge(message, errors=[{"code": "too_large", "message": message, "field": where}])


# ---- routes --------------------------------------------------------------------------

pricing = APIRouter(tags=["pricing"])


_CART_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CartIn"}}},
    }
}


def _parse_cart(request: Request, body: bytes) -> CartIn:
    """The body as a ``CartIn``, parsed and validated in one pass by pydantic's JSON parser."""
    content_type = request.headers.get("content-type", "application/json")
    if "json" not in content_type:
        raise RequestValidationError(
            [{"type": "model_attributes_type", "loc": ("body",), "msg": "not JSON", "input": body}]
        )
    try:
        return CartIn.model_validate_json(body)
    except ValidationError as exc:
        errors: list[dict[str, Any]] = []
        for err in exc.errors():
            loc = ("body", *err.get("loc", ()))
            if err.get("type") == "json_invalid" and not body.strip():
                errors.append(
                    {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
                )
            else:
                errors.append({**dict(err), "loc": loc})
        raise RequestValidationError(errors) from None


@pricing.post(
    "/price",
    response_model=None,
    responses={200: {"model": QuoteOut}, **_ERRORS},
    openapi_extra=_CART_BODY,
)
async def price(request: Request, runtime: RuntimeDep, loaded: LoadedDep) -> OrjsonResponse:
    """Quote one cart: every line with its list price, adjustments, net, tax and totals."""
    cart = _parse_cart(request, await request.body())
    limit = runtime.settings.max_lines_per_cart
    check_lines(cart, limit, "lines")
    # priced in the thread pool: a slow quote (a first-seen customer context builds its
    # promotion table) must not stall the event loop for every other request
    quote = await run_in_threadpool(_quote, runtime, loaded, cart.to_engine(), limit)
    return OrjsonResponse(quote)


def _quote(runtime: Runtime, loaded: Loaded, cart: dict[str, Any], limit: int) -> dict[str, Any]:
    # the ledger snapshot is cached until the next commit or cancel
    view = runtime.store.ledger.view(loaded.plan)
    return engine_api.quote(loaded.plan, cart, max_lines=limit, ledger=view)


@pricing.post("/price/batch", response_model=None, responses={200: {"model": BatchOut}, **_ERRORS})
def price_batch(batch: BatchIn, runtime: RuntimeDep, loaded: LoadedDep) -> OrjsonResponse:
    """Quote many carts in one call (the bulk path); answers are in request order."""
    limit = runtime.settings.max_carts_per_batch
    if len(batch.carts) > limit:
        message = f"the batch has {len(batch.carts)} carts; at most {limit} are allowed"
        raise TooLarge(
            message, errors=[{"code": "too_large", "message": message, "field": "carts"}]
        )
    for i, cart in enumerate(batch.carts):
        check_lines(cart, runtime.settings.max_lines_per_cart, f"carts[{i}].lines")
    carts = [c.to_engine() for c in batch.carts]
    quotes = engine_api.quote_batch(
        loaded.plan,
        carts,
        max_lines=runtime.settings.max_lines_per_cart,
        ledger=runtime.store.ledger.view(loaded.plan),
    )
    return OrjsonResponse({"ruleset_version": loaded.plan.version, "quotes": quotes})


health = APIRouter(tags=["service"])


@health.get("/health")
def get_health(runtime: RuntimeDep) -> HealthOut:
    """Liveness, and the version of the ruleset being served (null if none)."""
    loaded = runtime.loaded
    return HealthOut(status="ok", ruleset_version=loaded.plan.version if loaded else None)


rulesets = APIRouter(prefix="/rulesets", tags=["rulesets"])


@rulesets.get("/current", responses={503: {"model": ErrorOut}})
def current_ruleset(loaded: LoadedDep) -> RulesetOut:
    """The ruleset being served: name, version, currency, files and rule names."""
    plan = loaded.plan
    return RulesetOut(
        name=plan.name,
        version=plan.version,
        currency=plan.currency,
        timezone=plan.timezone,
        rounding=plan.rounding,
        source=loaded.origin,
        published_at=_iso(loaded.published_at),
        files=sorted(loaded.sources),
        rules=list(plan.rule_names),
    )


@rulesets.post("/check", responses=_ERRORS)
def check_ruleset(body: RulesetFilesIn, runtime: RuntimeDep) -> CheckOut:
    """Check a ruleset against the loaded data without publishing it (200 either way)."""
    try:
        diagnostics = list(engine_api.check_ruleset(body.files, runtime.store.snapshot()))
    except RuleError as exc:
        diagnostics = list(exc.diagnostics)
    ok = not any(d.severity == "error" for d in diagnostics)
    return CheckOut(
        ok=ok,
        diagnostics=[d.to_dict() for d in diagnostics],
        rendered=render_all(diagnostics, body.files),
    )


@rulesets.post(
    "/publish", responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, **_ERRORS}
)
def publish_ruleset(body: RulesetFilesIn, runtime: RuntimeDep, _admin: AdminDep) -> PublishOut:
    """Compile and swap in a new ruleset (admin). A ruleset with errors is refused (422) and
    the current one keeps serving."""
    new, old = runtime.publish(body.files)
    return PublishOut(
        version=new.plan.version,
        previous_version=old.plan.version if old else None,
        changed=old is None or old.plan.version != new.plan.version,
        published_at=_iso(new.published_at),
    )


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat() + "Z"


# ---- the app -------------------------------------------------------------------------


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app; opens the store and loads the ruleset now (``StartupError`` if it can't).

    Example::

        client = TestClient(create_app(Settings(db_path=tmp / "p.duckdb", rules_dir=rules)))
        client.post("/price", json={"lines": [{"sku": "A", "qty": "2"}]}).json()["totals"]
    """
    state = runtime if runtime is not None else Runtime.open(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(
        title="pricer",
        version="0.1.0",
        summary="Pricing and promotions for channel distribution",
        default_response_class=OrjsonResponse,
        strict_content_type=False,  # a body without Content-Type is read as JSON
        lifespan=lifespan,
    )
    app.state.runtime = state
    app.include_router(pricing)
    app.include_router(rulesets)
    app.include_router(health)
    app.include_router(orders.orders)
    app.include_router(orders.quotas)
    from server.rebates import router as rebates_router

    app.include_router(rebates_router)
    errors.install(app, engine_api.CartError)
    app.add_middleware(errors.BodyLimit, max_bytes=settings.max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (``pricer serve --reload``): settings from PRICER_*."""
    return create_app(load_settings())

"""``POST /rebates/calculate``: one partner's rebates, commissions, tier and funds for a period.

Computed from the store: the history tables loaded with ``pricer load`` (order_lines,
returns, events) and the ledger's committed orders where the store keeps them, under the
policy declarations of the ruleset being served. Errors have the one error shape.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from engine.core.data import DataError
from server.errors import ApiError

router = APIRouter(tags=["rebates"])


class RebateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner: str = Field(
        min_length=1,
        max_length=200,
        description="the partner (customer id, referrer or event partner)",
    )
    period: str = Field(
        min_length=1, max_length=40, description="2026-Q4, 2026-11, 2026 or 2026-01-01..2026-06-30"
    )
    as_of: dt.date | None = Field(
        default=None, description="cut an open period here (an accrual); default: the period's end"
    )


class RebateRow(BaseModel):
    policy: str
    kind: str
    period: str
    currency: str
    basis: str | None
    target: str | None
    attainment: str | None
    step: str | None
    rate: str | None
    uncapped: str | None
    amount: str | None
    explanation: str
    source: str


class RebateOrder(BaseModel):
    policy: str
    order_id: str
    net: str
    amount: str
    capped: bool


class RebateResponse(BaseModel):
    partner: str
    period: str
    start: str
    end: str
    as_of: str
    accrual: bool
    version: str
    results: list[RebateRow]
    orders: list[RebateOrder]
    skipped: list[dict[str, str]]


class RebateInputError(ApiError):
    status = 422
    code = "bad_rebate_request"


class NoPolicies(ApiError):
    status = 422
    code = "no_policies"


_cache_lock = threading.Lock()
_cache: dict[tuple[int, str], Any] = {}


def _policies(runtime: Any, sources: dict[str, str], version: str) -> Any:
    from engine.api import compile_policies

    key = (id(runtime), version)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is None:
        cached = compile_policies(sources, runtime.store.snapshot())
        with _cache_lock:
            _cache.clear()
            _cache[key] = cached
    return cached


def calculate(runtime: Any, body: RebateRequest) -> dict[str, Any]:
    from engine.batch.history import store_history
    from engine.batch.rebates import RebateError, parse_period, run_policies

    loaded = runtime.require()
    policies = _policies(runtime, loaded.sources, loaded.plan.version)
    if not policies.count:
        raise NoPolicies(
            "the ruleset being served has no rebate, commission, partner tiers or fund declarations"
        )
    try:
        period = parse_period(body.period)
        history = store_history(
            runtime.store,
            policies.currency,
            partner=body.partner,
            start=period.start,
            end=period.end,
        )
        result = run_policies(policies, history, period, as_of=body.as_of, partner=body.partner)
    except RebateError as exc:
        raise RebateInputError(
            exc.message, errors=[{"code": exc.code, "message": exc.message}]
        ) from None
    except DataError as exc:
        raise RebateInputError(
            str(exc), errors=[{"code": "bad_history", "message": str(exc)}]
        ) from None
    rows = result.rows.drop("partner").to_dicts()
    orders = result.details.drop("partner").to_dicts()
    return {
        "partner": body.partner,
        "period": period.label,
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "as_of": result.as_of.isoformat(),
        "accrual": result.accrual,
        "version": policies.version,
        "results": rows,
        "orders": orders,
        "skipped": [{"policy": p, "reason": why} for p, why in result.skipped],
    }


async def _runtime(request: Request) -> Any:
    return request.app.state.runtime


@router.post("/rebates/calculate", response_model=RebateResponse)
async def rebates_calculate(
    body: RebateRequest, runtime: Annotated[Any, Depends(_runtime)]
) -> dict[str, Any]:
    """One partner's rebates, commissions, partner tier and fund accruals for a period, each
    with its basis, target, attainment, step or rate, amount and a one-line explanation."""
    return await run_in_threadpool(calculate, runtime, body)

"""Orders and the ledger over HTTP: validate, commit (idempotent), cancel, and what remains
of each quota (docs/orders.md).

A commit holds the ledger's write lock from the moment it reads the ledger to the moment
its transaction commits, so it prices against exactly what it writes against; the
transaction re-reads every consumed total and refuses (409 ``quota_exhausted``) anything
beyond a limit. What keeps the ledger from being overdrawn is that lock, one server process
per DuckDB file and the re-check under the lock together: the DuckDB transaction alone
would not (inserts for the same key do not conflict under snapshot isolation).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from engine.core.money import format_money, format_quantity
from engine.ledger.committed import Consumption, QuotaExhausted, StoredOrder
from engine.orders.validation import order_record, special_table_name, validate_order
from server.errors import ApiError, OrjsonResponse
from server.schemas import ErrorOut, OrderIn

if TYPE_CHECKING:
    from server.app import Runtime

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut} for status in (400, 404, 409, 413, 422, 503)
}


class OrderInvalid(ApiError):
    status = 422
    code = "order_invalid"


class QuotaConflict(ApiError):
    status = 409
    code = "quota_exhausted"


class OrderNotFound(ApiError):
    status = 404
    code = "order_not_found"


class OrderIdReused(ApiError):
    status = 409
    code = "order_id_reused"


class BadRebatePayment(ApiError):
    status = 422
    code = "bad_rebate_payment"


def _check_rebate_payment(order: OrderIn) -> None:
    text = order.rebate_payment
    try:
        negative = text is not None and Decimal(text.strip()) < 0
    except (InvalidOperation, ValueError):
        return  # not a figure at all: the money parser refuses it (invalid_value)
    if negative:
        raise BadRebatePayment(
            f"rebate_payment {text} is negative: a payment from the rebate balance is zero or more"
        )


class CommitCurrency(ApiError):
    status = 422
    code = "commit_currency"


orders = APIRouter(prefix="/orders", tags=["orders"])
quotas = APIRouter(prefix="/quotas", tags=["orders"])


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _check_size(runtime: Runtime, order: OrderIn) -> None:
    from server.app import check_lines

    check_lines(order, runtime.settings.max_lines_per_cart, "lines")


def _consumed(items: tuple[Consumption, ...], currency: str) -> list[dict[str, Any]]:
    out = []
    for c in items:
        row: dict[str, Any] = {"kind": c.kind}
        for key in ("promotion", "customer_id", "project", "sku"):
            value = getattr(c, key)
            if value is not None:
                row[key] = value
        if c.kind == "special":
            row["qty"] = format_quantity(c.qty)
            row["amount"] = format_money(c.amount, currency)
        elif c.kind in ("budget", "credit", "rebate_payment"):
            row["amount"] = format_money(c.amount, currency)
        else:
            row["qty"] = str(c.qty)
        out.append(row)
    return out


@orders.post("/validate", responses=_ERRORS)
async def validate(order: OrderIn, request: Request) -> OrjsonResponse:
    """Price the order and run every check of SPEC §5; 200 with ``ok`` false when a finding
    is an error."""
    runtime = _runtime(request)
    loaded = runtime.require()
    _check_size(runtime, order)
    _check_rebate_payment(order)

    def run() -> dict[str, Any]:
        view = runtime.store.ledger.view(loaded.plan)
        return validate_order(loaded.plan, runtime.store.snapshot(), view, order.to_engine()).body()

    return OrjsonResponse(await run_in_threadpool(run))


@orders.post("/commit", responses=_ERRORS)
async def commit(order: OrderIn, request: Request) -> OrjsonResponse:
    """Re-validate and, with no error, consume quotas and record the order in one
    transaction. The same id again returns the first result and consumes nothing."""
    runtime = _runtime(request)
    runtime.require()  # 503 no_ruleset before anything else; the plan is read under the write lock
    _check_size(runtime, order)
    _check_rebate_payment(order)
    return await run_in_threadpool(_commit, runtime, order.to_engine())


#: request fields that change how the answer is presented, not the order: left out of the digest
_PRESENTATION = ("explain",)


def _digest(order: dict[str, Any]) -> str:
    body = {k: v for k, v in order.items() if k not in _PRESENTATION}
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def _replay_or_refuse(stored: StoredOrder, digest: str) -> OrjsonResponse:
    if stored.status == "imported" or stored.request_digest is None:
        raise OrderIdReused(
            f"order id {stored.order_id!r} belongs to imported history; a new order needs a new id"
        )
    if stored.request_digest is not None and stored.request_digest != digest:
        raise OrderIdReused(
            f"order {stored.order_id!r} was committed with another body; a retry must send the same order, a new order needs a new id"
        )
    return _replay(stored.status, stored.response)


def _commit(runtime: Runtime, order: dict[str, Any]) -> OrjsonResponse:
    ledger = runtime.store.ledger
    digest = _digest(order)
    with ledger.write_lock:
        plan = (
            runtime.require().plan
        )  # read under the lock: a commit queued behind a publish uses the new ruleset
        stored = ledger.find(str(order["id"]))
        if stored is not None:
            return _replay_or_refuse(stored, digest)
        data = runtime.store.snapshot()
        checked = validate_order(plan, data, ledger.view(plan), order)
        if not checked.ok:
            raise OrderInvalid(
                f"order {order['id']} has {len(checked.errors)} error(s); nothing was committed",
                errors=checked.errors,
            )
        currency = checked.priced.currency
        if currency != plan.currency:
            raise CommitCurrency(
                f"orders are committed in the ruleset currency {plan.currency}; this one is in {currency}"
            )
        record = order_record(plan, order, checked.priced, checked)
        response = {
            "order_id": record.order_id,
            "status": "committed",
            "rebate_applied": format_money(checked.rebate_applied, currency),
            "warnings": checked.warnings,
            "consumed": _consumed(record.consumption, currency),
            "quote": checked.quote,
        }
        try:
            stored, new = ledger.record(replace(record, response=response, request_digest=digest))
        except QuotaExhausted as exc:
            item = {"code": "quota_exhausted", "message": str(exc), "kind": exc.consumption.kind, "measure": exc.measure,
                    "limit": exc.limit, "used": exc.used, "asked": exc.asked}  # fmt: skip
            raise QuotaConflict(str(exc), errors=[item]) from None
    return _replay_or_refuse(stored, digest) if not new else OrjsonResponse(response)


def _replay(status: str, response: dict[str, Any]) -> OrjsonResponse:
    return OrjsonResponse({**response, "status": status}, headers={"Idempotent-Replay": "true"})


@orders.get("/{order_id}", responses=_ERRORS)
def get_order(order_id: str, request: Request) -> OrjsonResponse:
    """A committed order as its commit answered, with its current status."""
    stored = _runtime(request).store.ledger.find(order_id)
    if stored is None:
        raise OrderNotFound(f"no order {order_id!r} in the ledger")
    return OrjsonResponse({**stored.response, "status": stored.status})


@orders.post("/{order_id}/cancel", responses=_ERRORS)
def cancel(order_id: str, request: Request) -> OrjsonResponse:
    """Release exactly what the order consumed; cancelling again releases nothing
    (``released: []``)."""
    runtime = _runtime(request)
    stored = runtime.store.ledger.find(order_id)
    if stored is None or stored.status == "imported":
        raise OrderNotFound(f"no committed order {order_id!r} in the ledger")
    stored, released = runtime.store.ledger.cancel(order_id)
    assert stored is not None
    currency = (
        str(stored.response.get("quote", {}).get("currency", "")) or runtime.require().plan.currency
    )
    items = (
        _consumed(stored.consumption, currency) if released else []
    )  # a second cancel releases nothing
    return OrjsonResponse({"order_id": order_id, "status": stored.status, "released": items})


# ---- what remains ----------------------------------------------------------------------


@quotas.get("/promotions", responses=_ERRORS)
def promotion_quotas(request: Request, customer_id: str | None = None) -> OrjsonResponse:
    """Every promotion with a budget, gift stock or uses per customer: the limit, what
    live orders consumed and what remains (uses: for ``customer_id``, if given)."""
    runtime = _runtime(request)
    plan = runtime.require().plan
    used = runtime.store.ledger.used_totals()
    out = []
    for rule, caps in zip(plan.rules, plan.rule_caps, strict=False):
        if caps.budget is None and caps.gift_stock is None and caps.uses_per_customer is None:
            continue
        row: dict[str, Any] = {"promotion": rule.name}
        if caps.budget is not None:
            spent = used.get(("budget", rule.name, None, None, None), (0, 0))[1]
            row["budget"] = {"limit": format_money(caps.budget, plan.currency), "used": format_money(spent, plan.currency),
                             "remaining": format_money(max(0, caps.budget - spent), plan.currency)}  # fmt: skip
        if caps.gift_stock is not None:
            given = used.get(("gift_stock", rule.name, None, None, None), (0, 0))[0]
            row["gift_stock"] = {
                "limit": str(caps.gift_stock),
                "used": str(given),
                "remaining": str(max(0, caps.gift_stock - given)),
            }
        if caps.uses_per_customer is not None:
            row["uses_per_customer"] = str(caps.uses_per_customer)
            if customer_id is not None:
                n = used.get(("use", rule.name, customer_id, None, None), (0, 0))[0]
                row["uses"] = {
                    "customer_id": customer_id,
                    "used": str(n),
                    "remaining": str(max(0, caps.uses_per_customer - n)),
                }
        out.append(row)
    return OrjsonResponse({"promotions": out})


@quotas.get("/special/{customer_id}", responses=_ERRORS)
def special_quotas(
    customer_id: str, request: Request, project: str | None = None, sku: str | None = None
) -> OrjsonResponse:
    """The customer's special prices with their quotas, consumed and remaining."""
    import polars as pl

    runtime = _runtime(request)
    plan = runtime.require().plan
    name = special_table_name(plan)
    data = runtime.store.snapshot()
    if name is None or name not in data.tables:
        return OrjsonResponse({"customer_id": customer_id, "quotas": []})
    table = data.tables[name].filter(pl.col("customer_id") == customer_id)
    if sku is not None:
        table = table.filter(pl.col("sku") == sku)
    if project is not None and "project" in table.columns:
        table = table.filter(
            (pl.col("project") == project) | pl.col("project").is_null() | (pl.col("project") == "")
        )
    used = runtime.store.ledger.used_totals()
    out = []
    from engine.core.money import parse_money, parse_quantity

    for row in table.iter_rows(named=True):
        key = str(row.get("project") or "")
        qty_used, amount_used = used.get(("special", None, customer_id, key, row["sku"]), (0, 0))
        item: dict[str, Any] = {"project": key or None, "sku": row["sku"], "price": row["price"],
                                "qty_used": format_quantity(qty_used), "amount_used": format_money(amount_used, plan.currency)}  # fmt: skip
        if row.get("qty_quota") not in (None, ""):
            quota = parse_quantity(str(row["qty_quota"]))
            item["qty_quota"] = format_quantity(quota)
            item["qty_remaining"] = format_quantity(max(0, quota - qty_used))
        if row.get("amount_quota") not in (None, ""):
            quota = parse_money(str(row["amount_quota"]), plan.currency)
            item["amount_quota"] = format_money(quota, plan.currency)
            item["amount_remaining"] = format_money(max(0, quota - amount_used), plan.currency)
        out.append(item)
    return OrjsonResponse({"customer_id": customer_id, "quotas": out})

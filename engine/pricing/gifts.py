"""Stage 7, gifts: gift lines at their list price with a 100% discount.

Gift units earned by combos, pools and order promotions are limited by ``max N gifts per
order`` (already, at the promotion's step) and by the gift stock left (stock minus what
committed orders took); when fewer are given than earned the quote says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.core.codes import LINE_ERRORS, LineError
from engine.core.money import QTY_SCALE
from engine.plan.compiled import Plan
from engine.pricing.cart import CartBatch
from engine.pricing.list_price import list_prices
from engine.pricing.running import Running

I64 = npt.NDArray[np.int64]


@dataclass
class GiftLines:
    cart: I64
    rule: I64
    sku: I64
    qty: I64  # thousandths
    price_list: I64
    unit_price: I64
    factor: I64
    list_amount: I64

    @staticmethod
    def empty() -> GiftLines:
        z = np.zeros(0, dtype=np.int64)
        return GiftLines(z, z, z, z, z, z, z, z)


@dataclass
class Warning:
    cart: int
    code: str
    rule: int
    earned: int
    given: int
    sku: int


def price_units(
    plan: Plan, batch: CartBatch, cart: I64, sku: I64, qty: I64
) -> tuple[I64, I64, I64, I64, I64]:
    """List-price synthetic lines (gifts) for the given carts: (list, unit price, factor,
    list amount, error) per line."""
    n = len(cart)
    synthetic = CartBatch(
        carts=batch.carts,
        line_cart=cart,
        line_ids=[""] * n,
        line_skus=[""] * n,
        line_qty_text=[""] * n,
        line_units=[None] * n,
        sku=sku,
        factor=np.ones(n, dtype=np.int64),
        qty=qty,
        error=np.full(n, LineError.OK, dtype=np.int64),
    )
    return list_prices(plan, synthetic)


def give_gifts(
    plan: Plan, batch: CartBatch, state: Running, stock_used: dict[int, int] | None
) -> tuple[GiftLines, list[Warning]]:
    if not state.gifts:
        return GiftLines.empty(), []
    carts, rules, skus, earned, capped = [], [], [], [], []
    for request in state.gifts:
        carts.append(request.cart)
        rules.append(np.full(len(request.cart), request.rule_id, dtype=np.int64))
        skus.append(request.sku)
        earned.append(request.earned)
        capped.append(request.units)
    cart = np.concatenate(carts)
    rule = np.concatenate(rules)
    sku = np.concatenate(skus)
    earned_units = np.concatenate(earned)
    given = np.concatenate(capped)  # after max N gifts per order
    caps = {r.rule_id: r.caps for r in plan.stages.rules}
    for rule_id in np.unique(rule).tolist():
        stock = caps[rule_id].gift_stock
        if stock is not None:
            left = max(0, stock - (stock_used or {}).get(rule_id, 0))
            at = rule == rule_id
            given[at] = np.minimum(given[at], left)
    warnings = [
        Warning(
            cart=int(cart[i]),
            code="gift_short",
            rule=int(rule[i]),
            earned=int(earned_units[i]),
            given=int(given[i]),
            sku=int(sku[i]),
        )
        for i in np.nonzero(given < earned_units)[0].tolist()
    ]
    keep = given > 0
    cart, rule, sku, given = cart[keep], rule[keep], sku[keep], given[keep]
    chosen, unit_price, factor, amount, error = price_units(
        plan, batch, cart, sku, given * QTY_SCALE
    )
    unpriced = error != LineError.OK
    warnings += [
        Warning(
            cart=int(cart[i]),
            code=LINE_ERRORS[int(error[i])],
            rule=int(rule[i]),
            earned=int(given[i]),
            given=0,
            sku=int(sku[i]),
        )
        for i in np.nonzero(unpriced)[0].tolist()
    ]
    ok = ~unpriced
    return (
        GiftLines(
            cart=cart[ok],
            rule=rule[ok],
            sku=sku[ok],
            qty=given[ok] * QTY_SCALE,
            price_list=chosen[ok],
            unit_price=unit_price[ok],
            factor=factor[ok],
            list_amount=amount[ok],
        ),
        warnings,
    )

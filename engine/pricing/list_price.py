"""Stage 2, list price: each line's unit price from the first applicable list that holds
its SKU, converted into the cart's currency, and its list amount."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.core.codes import LineError
from engine.core.money import MAX_LINE_AMOUNT_MINOR, QTY_SCALE, mul_div_round
from engine.plan.compiled import Plan
from engine.plan.conditions import cart_holds
from engine.plan.price_lists import encode_keys
from engine.pricing.cart import CartBatch

I64 = npt.NDArray[np.int64]
DAY_RADIX = 10_000_000  # above any date ordinal: (currency code, day) packed in one int


def list_prices(plan: Plan, batch: CartBatch) -> tuple[I64, I64, I64, I64, I64]:
    """Stage 2: (price list, unit price, pricing factor, list amount, error) per line."""
    n = batch.n_lines
    error = batch.error.copy()
    chosen = np.full(n, -1, dtype=np.int64)
    row = np.full(n, -1, dtype=np.int64)
    open_ = error == LineError.OK
    for li, pl_plan in enumerate(plan.pricelists):
        if not open_.any():
            break
        applies = cart_holds(pl_plan.conjuncts, batch.carts)
        candidates = np.nonzero(open_ & applies[batch.line_cart])[0]
        if len(candidates) == 0:
            continue
        key = (
            encode_keys(pl_plan, batch.carts)[batch.line_cart[candidates]]
            if pl_plan.keyed_fields
            else np.zeros(len(candidates), dtype=np.int64)
        )
        found = pl_plan.lookup(batch.sku[candidates], key, batch.qty[candidates])
        hit = found >= 0
        chosen[candidates[hit]] = li
        row[candidates[hit]] = found[hit]
        open_[candidates[hit]] = False
    error[open_] = LineError.NO_PRICE
    unit_price = np.zeros(n, dtype=np.int64)
    factor = np.ones(n, dtype=np.int64)
    cart_currency = batch.carts["currency"]
    single = cart_currency.n_unique() == 1
    for li, pl_plan in enumerate(plan.pricelists):
        in_list = chosen == li
        if single and cart_currency[0] == pl_plan.currency:
            same = in_list  # every cart is in this list's currency: no conversion at all
        else:
            same = in_list & (cart_currency == pl_plan.currency).to_numpy()[batch.line_cart]
        at = np.nonzero(same)[0]
        factor[at] = pl_plan.row_factor[row[at]]
        unit_price[at] = pl_plan.row_price[row[at]]
        foreign = np.nonzero(in_list & ~same)[0]
        if len(foreign):
            factor[foreign] = pl_plan.row_factor[row[foreign]]
            names = cart_currency.unique(maintain_order=True)
            codes = cart_currency.replace_strict(
                names, pl.int_range(len(names), eager=True), return_dtype=pl.Int64
            ).to_numpy()
            cart_key = codes * DAY_RADIX + batch.carts["date"].to_numpy()
            line_key = cart_key[batch.line_cart[foreign]]
            for key in np.unique(line_key).tolist():
                at = foreign[line_key == key]
                cur, day = str(names[key // DAY_RADIX]), key % DAY_RADIX
                rate = plan.fx.rate(pl_plan.currency, cur, day)
                if rate is None:
                    error[at] = LineError.NO_FX_RATE
                    continue
                unit_price[at] = pl_plan.prices_in(cur, rate, plan.rounding)[row[at]]
    ok = error == LineError.OK
    # guard against overflow before the exact product: only magnitudes are estimated in floats
    estimate = unit_price.astype(np.float64) * batch.qty / (factor * QTY_SCALE)
    too_large = ok & (estimate >= 2 * MAX_LINE_AMOUNT_MINOR)
    amount = np.zeros(n, dtype=np.int64)
    safe = ok & ~too_large
    amount[safe] = mul_div_round(
        unit_price[safe], batch.qty[safe], factor[safe] * QTY_SCALE, plan.rounding
    )
    too_large |= safe & (amount >= MAX_LINE_AMOUNT_MINOR)
    error[too_large] = LineError.AMOUNT_TOO_LARGE
    amount[error != LineError.OK] = 0
    chosen[error != LineError.OK] = -1
    return chosen, unit_price, factor, amount, error

"""The pricing waterfall: the stages of SPEC §3, called in order, over all lines at once.

1. normalize (``engine.cart``)  2. list price (``engine.pricelist``)
4. line promotions (``engine.line_promotions``)  10. tax and totals (``engine.tax``)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.cart import AMOUNT_TOO_LARGE, NO_FX_RATE, NO_PRICE, OK, CartBatch
from engine.conditions import context_classes, evaluate_cart, frame_columns
from engine.line_promotions import Adjustments, apply_line_promotions
from engine.money import MAX_LINE_AMOUNT_MINOR, QTY_SCALE, mul_div_round
from engine.plan import Plan
from engine.pricelist import encode_keys
from engine.tax import line_rates, split_tax

I64 = npt.NDArray[np.int64]
DAY_RADIX = 10_000_000  # above any date ordinal: (currency code, day) packed in one int


@dataclass
class PricedLines:
    error: I64
    price_list: I64  # index into plan.pricelists, -1 none
    unit_price: I64  # per pricing unit, cart currency minor units
    pricing_factor: I64  # base units per pricing unit
    list_amount: I64
    net_amount: I64  # after tax split (net of tax)
    tax_rate: I64  # basis points
    tax: I64
    gross_amount: I64
    adjustments: Adjustments


def list_prices(plan: Plan, batch: CartBatch) -> tuple[I64, I64, I64, I64, I64]:
    """Stage 2: (price list, unit price, pricing factor, list amount, error) per line."""
    n = batch.n_lines
    error = batch.error.copy()
    chosen = np.full(n, -1, dtype=np.int64)
    row = np.full(n, -1, dtype=np.int64)
    open_ = error == OK
    for li, pl_plan in enumerate(plan.pricelists):
        if not open_.any():
            break
        fields = sorted({a.field for c in pl_plan.conjuncts for a in c.cart})
        class_of_cart, classes = context_classes(batch.carts, fields)
        applies = evaluate_cart(pl_plan.conjuncts, frame_columns(classes), classes.height)[class_of_cart]
        candidates = np.nonzero(open_ & applies[batch.line_cart])[0]
        if len(candidates) == 0:
            continue
        key = encode_keys(pl_plan, batch.carts)[batch.line_cart[candidates]] if pl_plan.keyed_fields else np.zeros(len(candidates), dtype=np.int64)
        found = pl_plan.lookup(batch.sku[candidates], key, batch.qty[candidates])
        hit = found >= 0
        chosen[candidates[hit]] = li
        row[candidates[hit]] = found[hit]
        open_[candidates[hit]] = False
    error[open_] = NO_PRICE
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
            codes = cart_currency.replace_strict(names, pl.int_range(len(names), eager=True), return_dtype=pl.Int64).to_numpy()
            cart_key = codes * DAY_RADIX + batch.carts["date"].to_numpy()
            line_key = cart_key[batch.line_cart[foreign]]
            for key in np.unique(line_key).tolist():
                at = foreign[line_key == key]
                cur, day = str(names[key // DAY_RADIX]), key % DAY_RADIX
                rate = plan.fx.rate(pl_plan.currency, cur, day)
                if rate is None:
                    error[at] = NO_FX_RATE
                    continue
                unit_price[at] = pl_plan.prices_in(cur, rate, plan.rounding)[row[at]]
    ok = error == OK
    # guard against overflow before the exact product: only magnitudes are estimated in floats
    estimate = unit_price.astype(np.float64) * batch.qty / (factor * QTY_SCALE)
    too_large = ok & (estimate >= 2 * MAX_LINE_AMOUNT_MINOR)
    amount = np.zeros(n, dtype=np.int64)
    safe = ok & ~too_large
    amount[safe] = mul_div_round(unit_price[safe], batch.qty[safe], factor[safe] * QTY_SCALE, plan.rounding)
    too_large |= safe & (amount >= MAX_LINE_AMOUNT_MINOR)
    error[too_large] = AMOUNT_TOO_LARGE
    amount[error != OK] = 0
    chosen[error != OK] = -1
    return chosen, unit_price, factor, amount, error


def foreign_money(plan: Plan, batch: CartBatch, list_amount: I64, error: I64) -> tuple[I64 | None, tuple[I64, I64] | None]:
    """For carts in another currency than the ruleset's, when promotions name money: each
    line's amount cell against converted edges and its row of converted benefit amounts.
    Lines of a cart with no ruleset->cart rate get ``no_fx_rate`` (``error`` is updated)."""
    if not plan.money_in_promotions:
        return None, None
    cart_currency = batch.carts["currency"]
    foreign_cart = (cart_currency != plan.currency).to_numpy()
    if not foreign_cart.any():
        return None, None
    index = plan.line_index
    cell = np.searchsorted(index.amount_bounds, list_amount, side="right")
    tables = [index.benefit_amount]
    slot = np.zeros(batch.n_lines, dtype=np.int64)
    names = cart_currency.unique(maintain_order=True)
    codes = cart_currency.replace_strict(names, pl.int_range(len(names), eager=True), return_dtype=pl.Int64).to_numpy()
    cart_key = np.where(foreign_cart, codes * DAY_RADIX + batch.carts["date"].to_numpy(), -1)
    line_key = cart_key[batch.line_cart]
    for key in np.unique(line_key[line_key >= 0]).tolist():
        at = np.nonzero((line_key == key) & (error == OK))[0]
        currency, day = str(names[key // DAY_RADIX]), key % DAY_RADIX
        rate = plan.fx.rate(plan.currency, currency, day)
        if rate is None:
            error[at] = NO_FX_RATE
            continue
        edges, amounts = index.in_currency(rate, plan.currency, currency, plan.rounding)
        cell[at] = np.searchsorted(edges, list_amount[at], side="right")
        slot[at] = len(tables)
        tables.append(amounts)
    return cell, (np.stack(tables), slot)


def price(plan: Plan, batch: CartBatch) -> PricedLines:
    chosen, unit_price, factor, list_amount, error = list_prices(plan, batch)
    cell, money = foreign_money(plan, batch, list_amount, error)
    ok = np.nonzero(error == OK)[0]
    list_amount[error != OK] = 0
    net = list_amount.copy()
    chosen[error != OK] = -1
    adjustments = Adjustments.empty()
    if len(ok):
        program = plan.line_index.programs_for(
            batch.carts, batch.line_cart[ok], batch.sku[ok], batch.qty[ok], list_amount[ok],
            amount_cell=None if cell is None else cell[ok],
        )
        money_ok = None if money is None else (money[0], money[1][ok])
        net_ok, adj = apply_line_promotions(plan.line_index, program, list_amount[ok], batch.qty[ok], plan.rounding, money_ok)
        net[ok] = net_ok
        adjustments = Adjustments(line=ok[adj.line], rule=adj.rule, kind=adj.kind, amount=adj.amount)
    rates = line_rates(plan.tax, plan.catalog, batch.carts, batch.line_cart, batch.sku)
    included = np.zeros(batch.n_lines, dtype=np.bool_)
    for li, pl_plan in enumerate(plan.pricelists):
        if pl_plan.tax_included:
            included |= chosen == li
    net_of_tax, tax = split_tax(net, rates, included, plan.rounding)
    bad = error != OK
    for arr in (net_of_tax, tax):
        arr[bad] = 0
    return PricedLines(
        error=error,
        price_list=chosen,
        unit_price=unit_price,
        pricing_factor=factor,
        list_amount=list_amount,
        net_amount=net_of_tax,
        tax_rate=rates,
        tax=tax,
        gross_amount=net_of_tax + tax,
        adjustments=adjustments,
    )

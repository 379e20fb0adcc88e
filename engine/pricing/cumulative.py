"""Cumulative conditions (SPEC §3.6): ``cumulative qty of sku "A" >= 100`` holds in a cart
when the customer's quantity (or net amount) of the selected items in committed orders
dated inside the promotion's window, plus this cart's priced lines, reaches the threshold.

Each condition is compiled into a cart atom on a synthetic cart field ``cumulative.<k>``
(``"1"`` when it holds), so line, combo, pool and order promotions evaluate it with the
same per-context machinery as any cart condition. Per batch, each condition costs one
filtered group-by over the committed lines and one sum over the batch's lines. The figures
compared are kept (``CumulativeFigures``) so an explanation quotes the same numbers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.plan.catalog import BoolArray

I64 = npt.NDArray[np.int64]

FIELD_PREFIX = "cumulative."


@dataclass(frozen=True)
class CumulativePlan:
    field: str  # the synthetic cart field, "cumulative.<k>"
    measure: Literal["qty", "amount"]
    mask: BoolArray  # which SKUs count (by catalog code)
    skus: tuple[str, ...]  # the same, by name (to filter committed lines)
    threshold: int  # thousandths of the base unit, or minor units of the ruleset currency
    start: dt.date | None  # the promotion's window (None: open)
    end: dt.date | None
    items: str = ""  # the selection as written (``sku "A"``), for explanations


@dataclass(frozen=True)
class CumulativeFigures:
    """Per cart, what pricing compared for one condition: ``committed + cart >= threshold``
    (quantities in thousandths; amounts in the cart's currency minor units)."""

    committed: I64
    cart: I64
    threshold: I64


def committed_totals(cumulative: CumulativePlan, committed: pl.DataFrame | None) -> dict[str, int]:
    """Per customer: the committed quantity (thousandths) or net amount (ruleset minor
    units) of the selected items in orders dated inside the window."""
    if committed is None or committed.height == 0:
        return {}
    frame = committed.filter(pl.col("sku").is_in(list(cumulative.skus)))
    if cumulative.start is not None:
        frame = frame.filter(pl.col("date") >= cumulative.start)
    if cumulative.end is not None:
        frame = frame.filter(pl.col("date") <= cumulative.end)
    sums = frame.group_by("customer_id").agg(pl.col(cumulative.measure).sum())
    return dict(zip(sums["customer_id"].to_list(), sums[cumulative.measure].to_list(), strict=True))


def cart_totals(
    cumulative: CumulativePlan,
    n_carts: int,
    line_cart: I64,
    sku: I64,
    qty: I64,
    list_amount: I64,
    ok: npt.NDArray[np.bool_],
) -> I64:
    """Per cart: the quantity or list amount of its priced lines of the selected items."""
    counted = ok & cumulative.mask[np.maximum(sku, 0)]
    values = qty if cumulative.measure == "qty" else list_amount
    out = np.zeros(n_carts, dtype=np.int64)
    np.add.at(out, line_cart[counted], values[counted])
    return out

"""The columnar edge: carts and lines as polars frames in, priced lines as a frame out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from dsl.schema import CART_TEXT_FIELDS
from engine.core.codes import LINE_ERRORS, LineError
from engine.core.columns import null_text, quantity_column
from engine.core.money import CURRENCY_EXPONENTS, MAX_QTY_MILLI
from engine.plan.compiled import Plan
from engine.pricing.cart import CartBatch, CartError
from engine.pricing.pipeline import PricedLines

I64 = npt.NDArray[np.int64]

#: frame column -> cart field
CART_COLUMNS = {
    "customer_id": "customer.id",
    "customer_tier": "customer.tier",
    "customer_region": "customer.region",
    "customer_group": "customer.group",
    "channel": "channel",
    "project": "project",
    "trade_term": "trade_term",
}


def batch_from_frames(plan: Plan, carts: pl.DataFrame, lines: pl.DataFrame) -> CartBatch:
    for column in ("cart_id",):
        if column not in carts.columns or column not in lines.columns:
            raise CartError("bad_frame", f"both frames need a '{column}' column")
    for column in ("sku", "qty"):
        if column not in lines.columns:
            raise CartError("bad_frame", f"the lines frame needs a '{column}' column")
    if carts["cart_id"].n_unique() != carts.height:
        raise CartError("bad_frame", "cart_id must be unique in the carts frame")
    if "date" not in carts.columns:
        raise CartError("bad_frame", "the carts frame needs a 'date' column")
    dates = carts["date"]
    if dates.dtype == pl.String:
        dates = dates.str.to_date("%Y-%m-%d", strict=False)
    if dates.null_count():
        raise CartError("bad_date", "every cart needs a date (YYYY-MM-DD)")
    epoch = dt.date(1970, 1, 1).toordinal()
    ordinals = dates.cast(pl.Int64) + epoch
    currency = (
        carts["currency"].cast(pl.String).fill_null(plan.currency)
        if "currency" in carts.columns
        else pl.Series([plan.currency] * carts.height)
    )
    unknown = set(currency.unique().to_list()) - set(CURRENCY_EXPONENTS)
    if unknown:
        raise CartError(
            "unknown_currency",
            f"unknown currency {sorted(unknown)[0]!r} in the carts frame",
            "currency",
        )
    frame = {
        "currency": currency,
        "date": ordinals,
    }
    for name in CART_TEXT_FIELDS:
        source = next((col for col, field in CART_COLUMNS.items() if field == name), None)
        if name == "currency":
            continue
        frame[name] = (
            carts[source].cast(pl.String)
            if source and source in carts.columns
            else null_text(carts.height)
        )
    for attr in plan.customer_attrs:  # custom attributes: a customer_<attr> column, else missing
        column = f"customer_{attr}"
        frame[f"customer.{attr}"] = (
            carts[column].cast(pl.String) if column in carts.columns else null_text(carts.height)
        )
    cart_frame = pl.DataFrame(frame).with_columns(pl.col("currency").cast(pl.String))
    cart_index = (
        lines["cart_id"]
        .replace_strict(
            carts["cart_id"],
            pl.int_range(carts.height, eager=True),
            default=-1,
            return_dtype=pl.Int64,
        )
        .to_numpy()
    )
    if (cart_index < 0).any():
        raise CartError("bad_frame", "a line names a cart_id that is not in the carts frame")
    # every stage reads a cart's lines as one contiguous run: regroup them (stably, so a
    # cart's lines keep their order) and remember where each came from
    source_row = None
    if len(cart_index) > 1 and bool((np.diff(cart_index) < 0).any()):
        source_row = np.argsort(cart_index, kind="stable").astype(np.int64)
        lines = lines[source_row]
        cart_index = cart_index[source_row]
    sku = (
        lines["sku"]
        .cast(pl.String)
        .replace_strict(
            plan.catalog.sku_series,
            pl.int_range(plan.catalog.size, eager=True),
            default=-1,
            return_dtype=pl.Int64,
        )
        .to_numpy()
    )
    qty_col = lines["qty"]
    milli = quantity_column(qty_col)
    factor = np.ones(lines.height, dtype=np.int64)
    units: Sequence[str | None] | pl.Series = (
        lines["unit"] if "unit" in lines.columns else null_text(lines.height)
    )
    if "unit" in lines.columns and lines["unit"].null_count() < lines.height:
        for unit in set(lines["unit"].unique().to_list()) - {None}:
            at = (lines["unit"] == unit).fill_null(False).to_numpy()
            factor[at] = plan.catalog.factor(unit)[np.maximum(sku[at], 0)]
    error = np.full(lines.height, LineError.OK, dtype=np.int64)
    error[factor <= 0] = LineError.UNKNOWN_UNIT
    error[(milli <= 0) | (milli * np.maximum(factor, 1) > MAX_QTY_MILLI)] = LineError.BAD_QUANTITY
    error[sku < 0] = LineError.UNKNOWN_SKU
    qty = np.where(error == LineError.OK, milli * factor, 0)
    line_ids = (
        lines["line_id"].cast(pl.String)
        if "line_id" in lines.columns
        else pl.int_range(1, lines.height + 1, eager=True).cast(pl.String)
    )
    return CartBatch(
        carts=cart_frame,
        line_cart=cart_index.astype(np.int64),
        line_ids=line_ids,
        line_skus=lines["sku"].cast(pl.String),
        line_qty_text=qty_col.cast(pl.String),
        line_units=units,
        sku=sku.astype(np.int64),
        factor=factor,
        qty=qty.astype(np.int64),
        error=error,
        source_row=source_row,
    )


def output_positions(batch: CartBatch, priced: PricedLines) -> I64 | None:
    """Where each priced row lands in ``priced_frame``'s output (None: where it is), so
    figures keyed by priced row (adjustments) can be joined to the output."""
    if batch.source_row is None:
        return None
    source = batch.source_row if priced.rows is None else batch.source_row[priced.rows.line]
    order = np.argsort(source, kind="stable")
    positions = np.empty(len(order), dtype=np.int64)
    positions[order] = np.arange(len(order), dtype=np.int64)
    return positions


def priced_frame(
    plan: Plan, batch: CartBatch, priced: PricedLines, carts: pl.DataFrame
) -> pl.DataFrame:
    """One row per priced row, in the order of the input lines: a line, or each sub-line
    of a line stage 3 split (same cart_id and line_id, ``special`` true on the
    special-price one, which comes first)."""
    positions = output_positions(batch, priced)
    special = pl.repeat(False, batch.n_lines, dtype=pl.Boolean, eager=True)
    if priced.rows is not None:
        special = pl.Series(priced.rows.special)
        batch = priced.rows.batch
    cart_ids = carts["cart_id"].gather(batch.line_cart)
    discount = np.zeros(batch.n_lines, dtype=np.int64)
    np.add.at(discount, priced.adjustments.line, priced.adjustments.amount)
    list_names = ["", *[p.name for p in plan.pricelists]]
    status = pl.Series("status", priced.error).replace_strict(
        list(range(len(LINE_ERRORS))), list(LINE_ERRORS), return_dtype=pl.String
    )
    names = pl.Series("price_list", priced.price_list + 1).replace_strict(
        list(range(len(list_names))), list_names, return_dtype=pl.String
    )
    frame = pl.DataFrame(
        {
            "cart_id": cart_ids,
            "line_id": pl.Series(batch.line_ids),
            "sku": pl.Series(batch.line_skus),
            "special": special,
            "status": status,
            "price_list": names,
            "unit_price_minor": priced.unit_price,
            "list_amount_minor": priced.list_amount,
            "discount_minor": discount,
            "net_amount_minor": priced.net_amount,
            "tax_minor": priced.tax,
            "gross_amount_minor": priced.gross_amount,
        }
    )
    if positions is None:
        return frame
    return frame[np.argsort(positions, kind="stable")]

"""Carts in, as columns: decode cart JSON (the edge) and normalize lines (stage 1).

A ``CartBatch`` holds one row per cart (its context, as the fields rules read) and one
entry per line (SKU code, unit factor, base quantity in thousandths, error code).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from dsl.schema import CART_TEXT_FIELDS
from engine.core.codes import LineError
from engine.core.money import (
    BP_SCALE,
    CURRENCY_EXPONENTS,
    MAX_QTY_MILLI,
    MoneyError,
    parse_percent,
    parse_quantity,
)

I64 = npt.NDArray[np.int64]

#: line error codes; index 0 is "ok"
MAX_LINES_PER_CART = 1000


class CartError(ValueError):
    """A cart that cannot be priced at all (as opposed to a line error)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass
class CartBatch:
    """Carts as columns. The text columns are only read to write responses, so the
    columnar path passes polars Series and never converts them to Python objects."""

    carts: pl.DataFrame  # currency, date (ordinal), and every cart field rules can read
    line_cart: I64
    line_ids: Sequence[str] | pl.Series
    line_skus: Sequence[str] | pl.Series
    line_qty_text: Sequence[str] | pl.Series
    line_units: Sequence[str | None] | pl.Series
    sku: I64
    factor: I64
    qty: I64  # base quantity, thousandths
    error: I64
    manual_bp: I64 | None = None  # requested manual discount per line, basis points (-1 none)
    #: the input row of each line when the input did not hold a cart's lines together and
    #: they were regrouped (stably, by cart) for pricing; None when the input order is kept
    source_row: I64 | None = None

    def __post_init__(self) -> None:
        if self.manual_bp is None:
            self.manual_bp = np.full(len(self.sku), -1, dtype=np.int64)

    @property
    def n_lines(self) -> int:
        return len(self.sku)

    @property
    def dates(self) -> list[dt.date]:
        return [dt.date.fromordinal(d) for d in self.carts["date"].to_list()]


def cart_date(value: Any, timezone: str, where: str) -> dt.date:
    """A cart's pricing date in the ruleset's time zone; today when absent."""
    zone = zoneinfo.ZoneInfo(timezone)
    if value is None:
        return dt.datetime.now(zone).date()
    if not isinstance(value, str):
        raise CartError("bad_date", f"{where}: date must be a string like 2026-11-22", "date")
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CartError(
            "bad_date", f"{where}: {value!r} is not an ISO date or timestamp", "date"
        ) from None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(zone)
    return stamp.date()


def cart_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    return None


def decode_carts(
    carts: Sequence[Any],
    *,
    currency: str,
    timezone: str,
    sku_index: Mapping[str, int],
    factor_of: Any,
    customer_attrs: Sequence[str],
    max_lines: int = MAX_LINES_PER_CART,
) -> CartBatch:
    """Validate and decode cart dicts. Whole-cart problems raise ``CartError``; line
    problems become line error codes."""
    columns: dict[str, list[Any]] = {"currency": [], "date": []}
    for name in CART_TEXT_FIELDS:
        columns.setdefault(name, [])
    for attr in customer_attrs:
        columns[f"customer.{attr}"] = []
    line_cart: list[int] = []
    ids: list[str] = []
    skus: list[str] = []
    qty_text: list[str] = []
    units: list[str | None] = []
    sku_codes: list[int] = []
    factors: list[int] = []
    qtys: list[int] = []
    errors: list[int] = []
    manual: list[int] = []
    for c, cart in enumerate(carts):
        where = f"cart {c + 1}" if len(carts) > 1 else "cart"
        if not isinstance(cart, Mapping):
            raise CartError("bad_cart", f"{where}: a cart must be a JSON object")
        cur = cart.get("currency", currency)
        if cur not in CURRENCY_EXPONENTS:
            raise CartError("unknown_currency", f"{where}: unknown currency {cur!r}", "currency")
        day = cart_date(cart.get("date"), timezone, where)
        customer = cart.get("customer") or {}
        if not isinstance(customer, Mapping):
            raise CartError("bad_cart", f"{where}: customer must be an object", "customer")
        columns["currency"].append(cur)
        columns["date"].append(day.toordinal())
        for name in CART_TEXT_FIELDS:
            if name == "currency":
                continue
            if name.startswith("customer."):
                columns[name].append(cart_text(customer.get(name.removeprefix("customer."))))
            else:
                columns[name].append(cart_text(cart.get(name)))
        for attr in customer_attrs:
            columns[f"customer.{attr}"].append(cart_text(customer.get(attr)))
        lines = cart.get("lines")
        if not isinstance(lines, list) or not lines:
            raise CartError("no_lines", f"{where}: 'lines' must be a non-empty list", "lines")
        if len(lines) > max_lines:
            raise CartError(
                "too_many_lines", f"{where}: {len(lines)} lines; at most {max_lines}", "lines"
            )
        for i, line in enumerate(lines):
            if not isinstance(line, Mapping):
                raise CartError(
                    "bad_line", f"{where}: line {i + 1} must be an object", f"lines[{i}]"
                )
            line_id = cart_text(line.get("id")) or str(i + 1)
            sku = line.get("sku")
            if not isinstance(sku, str):
                raise CartError(
                    "bad_line", f"{where}: line {line_id} needs a 'sku' string", f"lines[{i}].sku"
                )
            unit = line.get("unit")
            if unit is not None and not isinstance(unit, str):
                raise CartError(
                    "bad_line",
                    f"{where}: line {line_id}: 'unit' must be a string",
                    f"lines[{i}].unit",
                )
            raw_qty = line.get("qty")
            line_cart.append(c)
            ids.append(line_id)
            skus.append(sku)
            units.append(unit)
            qty_text.append(
                str(raw_qty)
                if isinstance(raw_qty, str | int | float) and not isinstance(raw_qty, bool)
                else repr(raw_qty)
            )
            code = sku_index.get(sku, -1)
            sku_codes.append(code)
            error = LineError.OK
            factor = 0
            milli = 0
            if code < 0:
                error = LineError.UNKNOWN_SKU
            else:
                factor = factor_of(unit, code)
                if factor <= 0:
                    error = LineError.UNKNOWN_UNIT
            if error == LineError.OK:
                milli = cart_quantity(raw_qty)
                if milli <= 0 or milli * factor > MAX_QTY_MILLI:
                    error = LineError.BAD_QUANTITY
                    milli = 0
            factors.append(factor)
            qtys.append(milli * factor if error == LineError.OK else 0)
            errors.append(error)
            manual.append(manual_discount(line.get("manual_discount"), where, line_id, i))
    frame = pl.DataFrame(
        {k: v for k, v in columns.items()},
        schema={k: (pl.Int64 if k == "date" else pl.String) for k in columns},
    )
    return CartBatch(
        carts=frame,
        line_cart=np.array(line_cart, dtype=np.int64),
        line_ids=ids,
        line_skus=skus,
        line_qty_text=qty_text,
        line_units=units,
        sku=np.array(sku_codes, dtype=np.int64),
        factor=np.array(factors, dtype=np.int64),
        qty=np.array(qtys, dtype=np.int64),
        error=np.array(errors, dtype=np.int64),
        manual_bp=np.array(manual, dtype=np.int64),
    )


def manual_discount(raw: Any, where: str, line_id: str, i: int) -> int:
    """A line's requested manual discount in basis points (-1 when none)."""
    if raw is None:
        return -1
    try:
        bp = parse_percent(str(raw)) if isinstance(raw, str) else -2
    except MoneyError:
        bp = -2
    if not 0 <= bp <= BP_SCALE:
        raise CartError(
            "bad_line",
            f'{where}: line {line_id}: manual_discount must be a percentage like "7%", not {raw!r}',
            f"lines[{i}].manual_discount",
        )
    return bp


def cart_quantity(raw: Any) -> int:
    """Thousandths, or -1 for anything that is not a positive decimal with <= 3 decimals."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return -1
    if isinstance(raw, int):
        return raw * 1000
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():  # the common case, without Decimal
        return int(raw) * 1000
    try:
        return parse_quantity(str(raw))
    except MoneyError:
        return -1

"""Stage 3, special prices: a line whose (customer, project, SKU) has a valid special price
with quota left is split into a special-price sub-line and a list-price sub-line.

The table (``special prices { table special_prices }``) holds one row per (customer_id,
project, sku): ``price`` per base unit in the ruleset currency, optional ``qty_quota``
(base units), ``amount_quota`` (ruleset currency) and ``valid_from``/``valid_to``
(inclusive dates). A blank project applies to any cart of the customer; a row naming the
cart's project wins over it. What is left of a quota is the quota minus what committed
orders consumed (``LedgerView.special_used``) minus what earlier lines of the same cart
took from the same row (cart order). The amount quota caps price x quantity in whole base
units. Everything here is vectorized: one join per batch, then one pass per *rank* (the
n-th line of a cart on the same row), which is 1 for almost every batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.core.columns import scaled_column
from engine.core.data import DataError, DataSet
from engine.core.money import QTY_DIGITS, QTY_SCALE, Rounding, exponent, mul_div_round
from engine.plan.catalog import CatalogIndex

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

NONE = -1  # no quota
FAR = dt.date(9999, 12, 31).toordinal()


@dataclass(frozen=True)
class SpecialPlan:
    """The special-price table, compiled: one entry per row."""

    table: str
    frame: pl.DataFrame  # row, customer_id, project ("" = any), sku (code), date window
    customer: tuple[str, ...]
    project: tuple[str, ...]
    sku: I64
    price: I64  # minor units of the ruleset currency per base unit
    qty_quota: I64  # thousandths of the base unit, NONE = no quota
    amount_quota: I64  # minor units of the ruleset currency, NONE = no quota
    valid_from: I64  # date ordinals, inclusive
    valid_to: I64
    row_of: dict[tuple[str, str, int], int]  # (customer, project or "", sku) -> row

    @property
    def size(self) -> int:
        return len(self.sku)


def _text(frame: pl.DataFrame, column: str) -> list[str]:
    if column not in frame.columns:
        return [""] * frame.height
    return [(v or "").strip() for v in frame[column].cast(pl.String).to_list()]


def _amounts(
    frame: pl.DataFrame, column: str, digits: int, what: str, table: str, required: bool
) -> I64:
    texts = _text(frame, column)
    blank = np.array([v == "" for v in texts], dtype=np.bool_)
    values, ok = scaled_column(pl.Series(texts, dtype=pl.String), digits)
    bad = ~ok & ~blank if not required else ~ok
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{column} {texts[row]!r} is not {what}", table=table, row=row + 1)
    return np.where(blank, NONE, values).astype(np.int64)


def _dates(frame: pl.DataFrame, column: str, default: int, table: str) -> I64:
    out = np.full(frame.height, default, dtype=np.int64)
    for i, text in enumerate(_text(frame, column)):  # compile time, once per table row
        if not text:
            continue
        try:
            out[i] = dt.date.fromisoformat(text).toordinal()
        except ValueError:
            raise DataError(
                f"{column} {text!r} is not an ISO date (YYYY-MM-DD)", table=table, row=i + 1
            ) from None
    return out


def build_special(table: str, currency: str, catalog: CatalogIndex, data: DataSet) -> SpecialPlan:
    """Read and check the table (raises ``DataError`` naming the row)."""
    frame = data.table(table)
    customers = _text(frame, "customer_id")
    projects = _text(frame, "project")
    skus = _text(frame, "sku")
    codes = np.empty(frame.height, dtype=np.int64)
    row_of: dict[tuple[str, str, int], int] = {}
    for i, (customer, project, sku) in enumerate(zip(customers, projects, skus, strict=True)):
        if not customer:
            raise DataError("customer_id is empty", table=table, row=i + 1)
        if sku not in catalog.sku_index:
            raise DataError(f"unknown sku {sku!r}", table=table, row=i + 1)
        codes[i] = catalog.sku_index[sku]
        key = (customer, project, int(codes[i]))
        if key in row_of:
            raise DataError(
                f"a second special price for customer {customer!r}, project {project or '(any)'!r}, sku {sku!r} (first at row {row_of[key] + 1})",
                table=table,
                row=i + 1,
            )
        row_of[key] = i
    price = _amounts(
        frame, "price", exponent(currency), f"an amount of {currency}", table, required=True
    )
    qty_quota = _amounts(frame, "qty_quota", QTY_DIGITS, "a quantity", table, required=False)
    amount_quota = _amounts(
        frame, "amount_quota", exponent(currency), f"an amount of {currency}", table, required=False
    )
    valid_from = _dates(frame, "valid_from", 0, table)
    valid_to = _dates(frame, "valid_to", FAR, table)
    late = valid_to < valid_from
    if late.any():
        row = int(np.argmax(late))
        raise DataError("valid_to is before valid_from", table=table, row=row + 1)
    compiled = pl.DataFrame(
        {
            "row": np.arange(frame.height, dtype=np.int64),
            "customer": customers,
            "project": projects,
            "sku": codes,
        },
        schema={"row": pl.Int64, "customer": pl.String, "project": pl.String, "sku": pl.Int64},
    )
    return SpecialPlan(
        table=table,
        frame=compiled,
        customer=tuple(customers),
        project=tuple(projects),
        sku=codes,
        price=price,
        qty_quota=qty_quota,
        amount_quota=amount_quota,
        valid_from=valid_from,
        valid_to=valid_to,
        row_of=row_of,
    )


def special_rows(
    special: SpecialPlan, carts: pl.DataFrame, line_cart: I64, sku: I64, open_: Bool
) -> I64:
    """Per line: the special-price row that applies (-1 none): the row naming the cart's
    project if it is valid on the cart date, else the row without a project."""
    n = len(sku)
    found = np.full(n, -1, dtype=np.int64)
    at = np.nonzero(open_)[0]
    if len(at) == 0 or special.size == 0:
        return found
    customer = carts["customer.id"].gather(line_cart[at])
    project = carts["project"].fill_null("").str.strip_chars().gather(line_cart[at])
    lines = pl.DataFrame({"line": at, "customer": customer, "project": project, "sku": sku[at]})
    day = carts["date"].to_numpy()[line_cart]
    for level in ("project", "any"):
        table = (
            special.frame.filter(pl.col("project") != "")
            if level == "project"
            else special.frame.filter(pl.col("project") == "")
        )
        probe = lines if level == "project" else lines.drop("project")
        keys = ["customer", "project", "sku"] if level == "project" else ["customer", "sku"]
        hit = probe.join(table, on=keys, how="inner")
        if hit.height == 0:
            continue
        line = hit["line"].to_numpy()
        row = hit["row"].to_numpy()
        valid = (
            (special.valid_from[row] <= day[line])
            & (day[line] <= special.valid_to[row])
            & (found[line] < 0)
        )
        found[line[valid]] = row[valid]
    return found


def split_quantities(
    special: SpecialPlan,
    row: I64,
    line_cart: I64,
    qty: I64,
    used: Mapping[tuple[str, str, str], tuple[int, int]],
    sku_index: Mapping[str, int],
    mode: Rounding,
) -> I64:
    """Per line: the quantity (thousandths) priced at the special price: within what is left
    of the row's quotas after the ledger and the earlier lines of the same cart."""
    out = np.zeros(len(row), dtype=np.int64)
    lines = np.nonzero(row >= 0)[0]
    if len(lines) == 0:
        return out
    rows = row[lines]
    used_q = np.zeros(special.size, dtype=np.int64)
    used_a = np.zeros(special.size, dtype=np.int64)
    for (customer, project, sku), (q, a) in used.items():  # once per ledger entry, not per line
        r = special.row_of.get((customer, project, sku_index.get(sku, -1)))
        if r is not None:
            used_q[r] += q
            used_a[r] += a
    left_q = np.where(special.qty_quota == NONE, NONE, np.maximum(0, special.qty_quota - used_q))
    left_a = np.where(
        special.amount_quota == NONE, NONE, np.maximum(0, special.amount_quota - used_a)
    )
    # lines of one cart on one row take from the quota in cart order
    group = line_cart[lines] * special.size + rows
    order = np.lexsort((lines, group))
    lines, rows, group = lines[order], rows[order], group[order]
    starts = np.nonzero(np.concatenate([[True], group[1:] != group[:-1]]))[0]
    rank = np.arange(len(lines)) - np.repeat(starts, np.diff(np.append(starts, len(lines))))
    group_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(lines))))
    big = np.iinfo(np.int64).max
    rem_q = np.where(left_q[rows[starts]] == NONE, big, left_q[rows[starts]])
    rem_a = np.where(left_a[rows[starts]] == NONE, big, left_a[rows[starts]])
    for r in range(int(rank.max()) + 1):
        at = np.nonzero(rank == r)[0]
        g = group_of[at]
        price = special.price[rows[at]]
        by_amount = np.where(
            (rem_a[g] == big) | (price <= 0), big, (rem_a[g] // np.maximum(price, 1)) * QTY_SCALE
        )
        take = np.maximum(0, np.minimum(np.minimum(qty[lines[at]], rem_q[g]), by_amount))
        out[lines[at]] = take
        rem_q[g] = np.where(rem_q[g] == big, big, rem_q[g] - take)
        spent = mul_div_round(price, take, QTY_SCALE, mode)
        rem_a[g] = np.where(rem_a[g] == big, big, rem_a[g] - spent)
    return out

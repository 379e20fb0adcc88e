"""Stage 2, list price: the first applicable list (priority, then name) that holds the SKU.

A list's rows are folded at compile time into a lookup: a dense ``[sku, break] -> row``
array for lists without keys, sorted composite keys ``(sku, key, break)`` searched with
``searchsorted`` for lists keyed by cart fields (customer prices). Quantity breaks pick
the row with the largest ``min_qty`` not above the line's base quantity.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl

from dsl import tree as t
from dsl.schema import table_column
from engine.core.columns import scaled_column
from engine.core.data import DataError, DataSet
from engine.core.money import (
    MAX_UNIT_PRICE_MINOR,
    QTY_DIGITS,
    Rounding,
    convert_minor_many,
    exponent,
    parse_rate,
)
from engine.plan.catalog import CatalogIndex
from engine.plan.conditions import Conjunct

I64 = npt.NDArray[np.int64]


@dataclass
class PriceListPlan:
    name: str
    span: t.Span
    conjuncts: tuple[Conjunct, ...]
    currency: str
    tax_included: bool
    keyed_fields: tuple[str, ...]
    row_price: I64
    row_factor: I64
    break_values: I64  # sorted distinct min_qty (thousandths of the base unit)
    dense: I64 | None  # [sku * n_breaks + break] -> row, for lists without keys
    key_codes: tuple[dict[str, int], ...]  # per keyed field: value -> code
    key_radix: int
    sorted_keys: I64 | None  # composite (sku, key, break) per row, sorted
    sorted_rows: I64 | None
    converted: dict[tuple[str, int, int], I64] = field(default_factory=dict)

    def lookup(self, sku: I64, key: I64, qty: I64) -> I64:
        """Row index for each line (-1 where this list does not hold the SKU at that quantity)."""
        n_breaks = len(self.break_values)
        brk = np.searchsorted(self.break_values, qty, side="right") - 1
        if self.dense is not None:
            flat = sku * n_breaks + np.maximum(brk, 0)
            rows: I64 = np.where(brk >= 0, self.dense[flat], -1)
            return rows
        assert self.sorted_keys is not None and self.sorted_rows is not None
        prefix = sku * self.key_radix + key
        wanted = prefix * n_breaks + brk
        pos = np.searchsorted(self.sorted_keys, wanted, side="right") - 1
        safe = np.maximum(pos, 0)
        hit = (pos >= 0) & (brk >= 0) & (key >= 0) & (self.sorted_keys[safe] // n_breaks == prefix)
        found: I64 = np.where(hit, self.sorted_rows[safe], -1)
        return found

    def prices_in(self, currency: str, rate: tuple[int, int], mode: Rounding) -> I64:
        """Every row's unit price converted to ``currency`` (exact, rounded once): built by
        ``finish`` for every rate of the plan's fx table, computed (not kept) otherwise."""
        found = self.converted.get((currency, rate[0], rate[1]))
        if found is not None:
            return found
        return convert_minor_many(self.row_price, rate, self.currency, currency, mode)

    def finish(self, fx: FxRates, mode: Rounding) -> None:
        """Convert the rows at every rate the fx table holds from this list's currency, up to
        ``MAX_CONVERTED`` figures (past it, ``prices_in`` converts per call)."""
        pairs = [
            (dst, rate)
            for (src, dst), (_, rates) in fx.rates.items()
            if src == self.currency
            for rate in dict.fromkeys(rates)
        ]
        if len(pairs) * len(self.row_price) > MAX_CONVERTED:
            return
        self.converted = {
            (dst, rate[0], rate[1]): convert_minor_many(
                self.row_price, rate, self.currency, dst, mode
            )
            for dst, rate in pairs
        }


#: the most converted unit prices ``PriceListPlan.finish`` keeps per list
MAX_CONVERTED = 1 << 23


@dataclass(frozen=True)
class _Folded:
    """A price table folded into lookups: what depends on the data, not on the rules."""

    row_price: I64
    row_factor: I64
    break_values: I64
    dense: I64 | None
    key_codes: tuple[dict[str, int], ...]
    key_radix: int
    sorted_keys: I64 | None
    sorted_rows: I64 | None


#: folded tables by (table frame, currency, keys, catalog); republishing rules over the
#: same data snapshot reuses them. Values keep the frame and catalog alive, so ids stay valid.
_FOLDED: dict[
    tuple[int, str, tuple[str, ...], int], tuple[pl.DataFrame, CatalogIndex, _Folded]
] = {}
_FOLDED_MAX = 64


def build_pricelist(
    decl: t.PriceList,
    conjuncts: tuple[Conjunct, ...],
    ruleset_currency: str,
    catalog: CatalogIndex,
    data: DataSet,
) -> PriceListPlan:
    assert decl.table is not None
    frame = data.table(decl.table.name)
    currency = decl.currency or ruleset_currency
    keyed = tuple(k.name for k in decl.table.keyed_by)
    cache_key = (id(frame), currency, keyed, id(catalog))
    cached = _FOLDED.get(cache_key)
    if cached is not None and cached[0] is frame and cached[1] is catalog:
        folded = cached[2]
    else:
        folded = _fold(decl.table.name, frame, currency, keyed, catalog)
        if len(_FOLDED) >= _FOLDED_MAX:
            _FOLDED.pop(next(iter(_FOLDED)))
        _FOLDED[cache_key] = (frame, catalog, folded)
    return PriceListPlan(
        name=decl.name,
        span=decl.span,
        conjuncts=conjuncts,
        currency=currency,
        tax_included=decl.tax_included,
        keyed_fields=keyed,
        row_price=folded.row_price,
        row_factor=folded.row_factor,
        break_values=folded.break_values,
        dense=folded.dense,
        key_codes=folded.key_codes,
        key_radix=folded.key_radix,
        sorted_keys=folded.sorted_keys,
        sorted_rows=folded.sorted_rows,
    )


def _fold(
    name: str, frame: pl.DataFrame, currency: str, keyed: tuple[str, ...], catalog: CatalogIndex
) -> _Folded:
    n = frame.height
    row_sku = (
        frame["sku"]
        .cast(pl.String)
        .replace_strict(
            catalog.sku_series,
            pl.int_range(catalog.size, eager=True),
            default=-1,
            return_dtype=pl.Int64,
        )
        .to_numpy()
    )
    _first_bad(row_sku < 0, name, lambda i: f"unknown sku {frame['sku'][i]!r}")
    row_price, price_ok = scaled_column(frame["price"], exponent(currency))
    _first_bad(
        ~price_ok, name, lambda i: f"price {frame['price'][i]!r} is not an amount of {currency}"
    )
    _first_bad(
        row_price > MAX_UNIT_PRICE_MINOR,
        name,
        lambda i: f"price {frame['price'][i]!r} out of range",
    )
    if "min_qty" in frame.columns:
        given = frame["min_qty"].fill_null("").cast(pl.String).str.strip_chars() != ""
        row_min, min_ok = scaled_column(frame["min_qty"].fill_null("0"), QTY_DIGITS)
        _first_bad(
            given.to_numpy() & ~min_ok,
            name,
            lambda i: f"min_qty {frame['min_qty'][i]!r} is not a quantity",
        )
    else:
        row_min = np.zeros(n, dtype=np.int64)
    row_factor = np.ones(n, dtype=np.int64)
    if "unit" in frame.columns and frame["unit"].null_count() < n:
        units = frame["unit"].cast(pl.String)
        for unit in units.drop_nulls().unique().to_list():
            at = (units == unit).fill_null(False).to_numpy()
            row_factor[at] = catalog.factor(unit)[row_sku[at]]
        # a row naming its SKU's base unit prices per base unit
        named = units.is_not_null().to_numpy()
        base = np.array(catalog.base_units, dtype=object)[row_sku] == units.to_numpy()
        row_factor[named & base] = 1
        _first_bad(
            row_factor <= 0,
            name,
            lambda i: f"unit {units[i]!r} is not a unit of sku {frame['sku'][i]!r}",
        )
    key_codes: list[dict[str, int]] = []
    row_keys = np.zeros((n, len(keyed)), dtype=np.int64)
    for j, field_name in enumerate(keyed):
        key_column = table_column(field_name)
        column = frame[key_column].cast(pl.String)
        empty = (column.is_null() | (column == "")).fill_null(True).to_numpy()
        if empty.any():
            raise DataError(
                f"empty key column {key_column!r}", table=name, row=int(np.argmax(empty)) + 1
            )
        vocabulary = column.unique(maintain_order=True)
        key_codes.append(dict(zip(vocabulary.to_list(), range(len(vocabulary)), strict=True)))
        row_keys[:, j] = column.replace_strict(
            vocabulary, pl.int_range(len(vocabulary), eager=True), return_dtype=pl.Int64
        ).to_numpy()
    break_values = np.unique(row_min) if frame.height else np.zeros(1, dtype=np.int64)
    n_breaks = len(break_values)
    row_break = np.searchsorted(break_values, row_min)
    key_radix = 1
    row_key = np.zeros(frame.height, dtype=np.int64)
    for j in range(len(keyed)):
        row_key = row_key * (len(key_codes[j]) + 1) + row_keys[:, j]
        key_radix *= len(key_codes[j]) + 1
    composite = (row_sku * key_radix + row_key) * n_breaks + row_break
    order = np.argsort(composite, kind="stable")
    sorted_keys = composite[order]
    dupes = np.nonzero(sorted_keys[1:] == sorted_keys[:-1])[0]
    if len(dupes):
        first, second = sorted(int(x) + 1 for x in order[[dupes[0], dupes[0] + 1]])
        raise DataError(
            f"rows {first} and {second} price the same SKU, key and min_qty", table=name
        )
    dense: I64 | None = None
    if not keyed:
        dense = np.full(catalog.size * n_breaks, -1, dtype=np.int64)
        dense[row_sku * n_breaks + row_break] = np.arange(frame.height)
        # a missing break takes the largest lower break that exists (forward fill per SKU)
        grid = dense.reshape(catalog.size, n_breaks)
        for b in range(1, n_breaks):
            grid[:, b] = np.where(grid[:, b] < 0, grid[:, b - 1], grid[:, b])
    return _Folded(
        row_price=row_price,
        row_factor=row_factor,
        break_values=break_values.astype(np.int64),
        dense=dense,
        key_codes=tuple(key_codes),
        key_radix=key_radix,
        sorted_keys=None if dense is not None else sorted_keys,
        sorted_rows=None if dense is not None else order.astype(np.int64),
    )


def _first_bad(bad: np.ndarray, table: str, message: Callable[[int], str]) -> None:
    """Raise ``DataError`` naming the first bad row (1-based, as a spreadsheet shows it)."""
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(message(i), table=table, row=i + 1)


def encode_keys(plan: PriceListPlan, carts: pl.DataFrame) -> I64:
    """Each cart's composite key code for a keyed list (-1 where a value is not in the table)."""
    code = np.zeros(carts.height, dtype=np.int64)
    missing = np.zeros(carts.height, dtype=np.bool_)
    for j, name in enumerate(plan.keyed_fields):
        values = carts[name]
        mapping = plan.key_codes[j]
        if carts.height <= 64:  # a few carts: dict lookups beat building the mapping's series
            codes = np.array([mapping.get(v, -1) for v in values.to_list()], dtype=np.int64)
        else:
            codes = values.replace_strict(
                list(mapping), list(mapping.values()), default=-1, return_dtype=pl.Int64
            ).to_numpy()
        missing |= codes < 0
        code = code * (len(mapping) + 1) + np.maximum(codes, 0)
    result: I64 = np.where(missing, -1, code)
    return result


@dataclass(frozen=True)
class FxRates:
    """Exchange rates by (from, to): dates (ordinals, sorted) and exact rates."""

    rates: dict[tuple[str, str], tuple[list[int], list[tuple[int, int]]]]

    def rate(self, src: str, dst: str, day: int) -> tuple[int, int] | None:
        """The rate of the latest date on or before ``day``."""
        if src == dst:
            return (1, 1)
        found = self.rates.get((src, dst))
        if found is None:
            return None
        dates, rates = found
        pos = int(np.searchsorted(np.array(dates), day, side="right")) - 1
        return rates[pos] if pos >= 0 else None


def build_fx(data: DataSet) -> FxRates:
    if "fx_rates" not in data.tables:
        return FxRates({})
    frame = data.tables["fx_rates"]
    table: dict[tuple[str, str], list[tuple[int, tuple[int, int]]]] = {}
    for i, row in enumerate(frame.iter_rows(named=True)):
        try:
            src, dst = row["from"], row["to"]
            exponent(src)
            exponent(dst)
            day = dt.date.fromisoformat(row["date"]).toordinal()
            rate = parse_rate(row["rate"])
        except (KeyError, ValueError, TypeError) as err:
            raise DataError(str(err), table="fx_rates", row=i + 1) from None
        table.setdefault((src, dst), []).append((day, rate))
    return FxRates(
        {k: ([d for d, _ in sorted(v)], [r for _, r in sorted(v)]) for k, v in table.items()}
    )

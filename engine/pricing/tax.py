"""Stage 10, tax: a rate per line from the tax table, then tax per line.

Rows match on ``region`` (the customer's), ``tax_class`` (the SKU's) and ``trade_term``
(the cart's); an empty key matches anything; the matching row with the most keys wins
(ties: table order); no row means 0%. Rates are resolved once per distinct
(region, tax class, trade term) combination and gathered onto lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from dsl import tree as t
from engine.core.data import DataError, DataSet
from engine.core.money import BP_SCALE, MoneyError, Rounding, mul_div_round, parse_percent
from engine.plan.catalog import CatalogIndex

I64 = npt.NDArray[np.int64]
KEYS = ("region", "tax_class", "trade_term")


@dataclass(frozen=True)
class TaxPlan:
    name: str
    span: t.Span
    rows: tuple[tuple[str | None, str | None, str | None, int], ...]

    def rate(self, region: str | None, tax_class: str | None, trade_term: str | None) -> int:
        best: tuple[int, int] | None = None
        for i, (r, c, term, _bp) in enumerate(self.rows):
            if (
                (r is None or r == region)
                and (c is None or c == tax_class)
                and (term is None or term == trade_term)
            ):
                score = sum(k is not None for k in (r, c, term))
                if best is None or score > best[0]:
                    best = (score, i)
        return self.rows[best[1]][3] if best is not None else 0


def build_tax(decl: t.TaxRule, data: DataSet) -> TaxPlan:
    frame = data.table(decl.table.name)
    rows = []
    for i, row in enumerate(frame.iter_rows(named=True)):
        try:
            bp = parse_percent(row["rate"] or "")
        except MoneyError as err:
            raise DataError(str(err), table=decl.table.name, row=i + 1) from None
        keys = tuple((row.get(k) or None) if row.get(k) not in ("*",) else None for k in KEYS)
        rows.append((keys[0], keys[1], keys[2], bp))
    return TaxPlan(name=decl.name, span=decl.span, rows=tuple(rows))


def line_rates(
    plan: TaxPlan | None, catalog: CatalogIndex, carts: pl.DataFrame, line_cart: I64, sku: I64
) -> I64:
    """Basis points of tax for every line."""
    if plan is None or not plan.rows:
        return np.zeros(len(sku), dtype=np.int64)
    region_vals, region_code = _codes(carts["customer.region"].to_list())
    term_vals, term_code = _codes(carts["trade_term"].to_list())
    tax_col = catalog.text["tax_class"]
    class_vals: list[str | None] = [None, *tax_col.values]
    lut = np.empty((len(region_vals), len(class_vals), len(term_vals)), dtype=np.int64)
    for a, region in enumerate(region_vals):
        for b, tax_class in enumerate(class_vals):
            for c, term in enumerate(term_vals):
                lut[a, b, c] = plan.rate(region, tax_class, term)
    rates: I64 = lut[
        region_code[line_cart], tax_col.codes[np.maximum(sku, 0)] + 1, term_code[line_cart]
    ]
    return rates


def _codes(values: list[str | None]) -> tuple[list[str | None], I64]:
    vocab: dict[str | None, int] = {}
    codes = np.fromiter(
        (vocab.setdefault(v, len(vocab)) for v in values), dtype=np.int64, count=len(values)
    )
    return list(vocab), codes


def split_tax(
    amount: I64, bp: I64, included: npt.NDArray[np.bool_], mode: Rounding
) -> tuple[I64, I64]:
    """(net, tax) per line: tax on top of the net, or carved out of a tax-inclusive gross."""
    if not bp.any():
        return amount, np.zeros(len(amount), dtype=np.int64)
    if not included.any():
        return amount, mul_div_round(amount, bp, BP_SCALE, mode)
    on_top = mul_div_round(amount, bp, BP_SCALE, mode)
    carved_net = mul_div_round(
        amount, np.full(len(amount), BP_SCALE, dtype=np.int64), BP_SCALE + bp, mode
    )
    net: I64 = np.where(included, carved_net, amount)
    tax: I64 = np.where(included, amount - carved_net, on_top)
    return net, tax

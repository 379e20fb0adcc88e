"""The catalog as arrays: SKU codes, unit factors and item attributes as integer codes.

Rules fold their item conditions into boolean masks over these arrays at compile time,
so pricing never compares strings per line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.core.data import CATALOG_CORE_COLUMNS, DataError, DataSet

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class TextColumn:
    """Codes for one text attribute: ``codes[sku]`` indexes ``values``; -1 is null."""

    values: tuple[str, ...]
    index: dict[str, int]
    codes: npt.NDArray[np.int32]

    def mask(self, wanted: set[str], *, negated: bool) -> BoolArray:
        """SKUs whose value is in ``wanted`` (null is never in a set; ``not in`` holds on null)."""
        lut = np.zeros(len(self.values) + 1, dtype=np.bool_)
        for value in wanted:
            code = self.index.get(value)
            if code is not None:
                lut[code + 1] = True
        hit: BoolArray = lut[self.codes + 1]
        return ~hit if negated else hit


def _text_column(values: list[str | None]) -> TextColumn:
    vocab: dict[str, int] = {}
    codes = np.empty(len(values), dtype=np.int32)
    for i, value in enumerate(values):
        if value is None or value == "":
            codes[i] = -1
        else:
            codes[i] = vocab.setdefault(value, len(vocab))
    return TextColumn(values=tuple(vocab), index=vocab, codes=codes)


@dataclass(frozen=True, slots=True)
class CatalogIndex:
    skus: tuple[str, ...]
    sku_index: dict[str, int]
    sku_series: pl.Series
    base_units: tuple[str, ...]
    #: unit name -> factor to the base unit per SKU (0 where the SKU has no such unit)
    unit_factors: dict[str, IntArray]
    #: text attributes by field name: sku, category, brand, tax_class, item.<attr>
    text: dict[str, TextColumn]

    @property
    def size(self) -> int:
        return len(self.skus)

    def factor(self, unit: str) -> IntArray:
        found = self.unit_factors.get(unit)
        return found if found is not None else np.zeros(self.size, dtype=np.int64)


_CATALOGS: dict[int, tuple[pl.DataFrame, CatalogIndex]] = {}


def build_catalog(data: DataSet) -> CatalogIndex:
    """The catalog index of a data snapshot (built once per catalog frame, then reused)."""
    cached = _CATALOGS.get(id(data.catalog))
    if cached is not None and cached[0] is data.catalog:
        return cached[1]
    index = _build_catalog(data.catalog)
    if len(_CATALOGS) >= 8:
        _CATALOGS.pop(next(iter(_CATALOGS)))
    _CATALOGS[id(data.catalog)] = (data.catalog, index)
    return index


def _build_catalog(frame: pl.DataFrame) -> CatalogIndex:
    for column in ("sku", "base_unit"):
        if column not in frame.columns:
            raise DataError(f"the catalog has no '{column}' column", table="catalog")
    skus = [s or "" for s in frame["sku"].to_list()]
    base_units = [u or "" for u in frame["base_unit"].to_list()]
    index: dict[str, int] = {}
    for row, sku in enumerate(skus):
        if not sku:
            raise DataError("empty sku", table="catalog", row=row + 1)
        if sku in index:
            raise DataError(f"duplicate sku {sku!r}", table="catalog", row=row + 1)
        index[sku] = row
    factors: dict[str, IntArray] = {}

    def put(unit: str, row: int, factor: int) -> None:
        arr = factors.setdefault(unit, np.zeros(len(skus), dtype=np.int64))
        arr[row] = factor

    unit_texts = frame["units"].to_list() if "units" in frame.columns else [None] * len(skus)
    for row, (base, unit_text) in enumerate(zip(base_units, unit_texts, strict=True)):
        if not base:
            raise DataError("empty base_unit", table="catalog", row=row + 1)
        put(base, row, 1)
        for part in (unit_text or "").split(";"):
            if not part.strip():
                continue
            unit, sep, number = part.partition("=")
            if not sep or not number.strip().isdigit() or int(number) <= 0:
                raise DataError(
                    f"bad unit {part!r} (expected name=positive integer)",
                    table="catalog",
                    row=row + 1,
                )
            put(unit.strip(), row, int(number))
    text: dict[str, TextColumn] = {
        "sku": TextColumn(tuple(skus), index, np.arange(len(skus), dtype=np.int32))
    }
    for column in frame.columns:
        if column in ("sku", "base_unit", "units", "min_qty", "pack", "components"):
            continue
        name = column if column in CATALOG_CORE_COLUMNS else f"item.{column}"
        text[name] = _text_column(frame[column].to_list())
    for name in ("category", "brand", "tax_class"):
        text.setdefault(name, _text_column([None] * len(skus)))
    return CatalogIndex(
        skus=tuple(skus),
        sku_index=index,
        sku_series=pl.Series("sku", skus, dtype=pl.String),
        base_units=tuple(base_units),
        unit_factors=factors,
        text=text,
    )

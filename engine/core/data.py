"""The data a ruleset is compiled against: the catalog and the named data tables.

A ``DataSet`` is an immutable in-memory snapshot (polars frames of text columns, exactly as
loaded). The store (``engine.ledger.store``) reads it from DuckDB; tests build it from dicts.
Values are validated where they are used (a price column when a price list names the
table), so every error can name the table, the row and the column.

Catalog columns: ``sku`` (required, unique), ``base_unit`` (required), ``category``,
``brand``, ``tax_class``, ``min_qty``, ``pack``; ``units`` (``"box=12;case=144"``);
``components`` (bundles, ``"P:1;S:1"``); any other column is an item attribute
readable in rules as ``item.<column>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

CATALOG_CORE_COLUMNS = (
    "sku",
    "base_unit",
    "category",
    "brand",
    "tax_class",
    "units",
    "min_qty",
    "pack",
    "components",
)


class DataError(ValueError):
    """A data table that is missing, malformed or inconsistent; says which table and row."""

    def __init__(self, message: str, *, table: str | None = None, row: int | None = None) -> None:
        where = ""
        if table is not None:
            where = f"table {table}"
            if row is not None:
                where += f" row {row}"
            where += ": "
        super().__init__(where + message)
        self.table = table
        self.row = row


def _text_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    data: dict[str, list[str | None]] = {c: [] for c in columns}
    for row in rows:
        for c in columns:
            value = row.get(c)
            data[c].append(None if value is None else _as_text(value))
    return pl.DataFrame(data, schema={c: pl.String for c in columns})


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ";".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True, slots=True)
class DataSet:
    catalog: pl.DataFrame
    tables: Mapping[str, pl.DataFrame] = field(default_factory=dict)

    @staticmethod
    def from_rows(
        catalog: Iterable[Mapping[str, Any]], tables: Mapping[str, Iterable[Mapping[str, Any]]]
    ) -> DataSet:
        """Build from plain rows (as in the scenario files); every value becomes text.

        A catalog ``units`` dict ``{"box": 12}`` becomes ``"box=12"``; a ``components`` list
        of ``{"sku": "P", "ratio": 1}`` becomes ``"P:1"``.
        """
        cat_rows = []
        for row in catalog:
            row = dict(row)
            if "bundle" in row and "components" not in row:
                row["components"] = row.pop("bundle")
            comps = row.get("components")
            if isinstance(comps, list):
                row["components"] = ";".join(
                    f"{c['sku']}:{c.get('ratio', c.get('qty', 1))}"
                    if isinstance(c, dict)
                    else str(c)
                    for c in comps
                )
            attrs = row.pop("attributes", None)
            if isinstance(attrs, dict):
                row.update(attrs)
            cat_rows.append(row)
        frame = _text_frame(cat_rows)
        if frame.height == 0:
            frame = pl.DataFrame(schema={"sku": pl.String, "base_unit": pl.String})
        return DataSet(
            catalog=frame,
            tables={name: _text_frame(rows) for name, rows in tables.items()},
        )

    def table(self, name: str) -> pl.DataFrame:
        try:
            return self.tables[name]
        except KeyError:
            raise DataError(f"unknown table {name!r}") from None

    def digest(self) -> str:
        """sha256 hex of the content: the catalog and every table by name, each table's
        columns by name and its rows in load order, every value as text (null apart from "").

        >>> a = DataSet.from_rows([{"sku": "A", "base_unit": "pcs"}], {"p": [{"sku": "A", "price": "20.00"}]})
        >>> b = DataSet.from_rows([{"base_unit": "pcs", "sku": "A"}], {"p": [{"price": "20.00", "sku": "A"}]})
        >>> a.digest() == b.digest(), a.digest() == a.with_table("p", pl.DataFrame({"sku": ["A"], "price": ["21.00"]})).digest()
        (True, False)
        """
        digest = hashlib.sha256(b"pricer-data/1")
        _frame_digest(digest, b"catalog", self.catalog)
        for name in sorted(self.tables):
            _frame_digest(digest, b"table:" + name.encode(), self.tables[name])
        return digest.hexdigest()

    def with_table(self, name: str, frame: pl.DataFrame) -> DataSet:
        tables = dict(self.tables)
        tables[name] = frame
        return DataSet(catalog=self.catalog, tables=tables)


def _field(digest: hashlib._Hash, value: bytes) -> None:
    digest.update(len(value).to_bytes(8, "little"))
    digest.update(value)


def _frame_digest(digest: hashlib._Hash, name: bytes, frame: pl.DataFrame) -> None:
    """Column by column (sorted, as rules read columns by name), with no per-row Python:
    each column's byte lengths (-1 for null), then its values joined into one string."""
    _field(digest, name)
    digest.update(frame.height.to_bytes(8, "little") + frame.width.to_bytes(8, "little"))
    columns = sorted(frame.columns)
    if not columns:
        return
    text = frame.select(pl.col(c).cast(pl.String) for c in columns)
    lengths = text.select(pl.all().str.len_bytes().cast(pl.Int64).fill_null(-1)).get_columns()
    joined = text.select(pl.all().str.join("", ignore_nulls=True)).row(0)
    for column, length, value in zip(columns, lengths, joined, strict=True):
        _field(digest, column.encode())
        digest.update(length.to_numpy().astype("<i8").tobytes())
        _field(digest, (value or "").encode())

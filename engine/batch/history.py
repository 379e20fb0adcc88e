"""Order history for rebates, commissions, partner tiers and funds (SPEC §6).

Three tables, imported from CSV/Parquet (``pricer load order_lines FILE``, or a file or
directory given to ``pricer rebates --history``) or, for order lines, read from the
ledger's committed orders:

    order_lines  order_id, line_id, date, customer_id (the buying partner), referrer?,
                 project?, sku, qty, list_amount?, net_amount, currency, special?
    returns      return_id, order_id?, date, customer_id, sku, qty, net_amount, currency?
    events       event_id, date, partner_id, kind, order_id?, amount?

(? = optional column.) In a file, amounts and quantities are decimal text (``"1234.50"``,
``"12.5"``); they become exact integers: ``qty`` in thousandths of the base unit,
``list_amount``/``net_amount``/``amount`` in minor units of the row's ``currency`` (the
ruleset's when a table has no currency column). Returns are positive figures that are
subtracted. A text file is checked row by row before anything is used, all or nothing,
naming the bad rows (the same checks as ``engine.ledger.store``'s table loading). A Parquet file
whose amount columns are already integers (``Int64``, as the bench generator and
``write_canonical`` write them) is read lazily as it is; its schema is checked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from engine.core.data import DataError
from engine.core.money import CURRENCY_EXPONENTS, QTY_DIGITS

#: table -> (required columns, optional columns)
HISTORY_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "order_lines": (
        ("order_id", "line_id", "date", "customer_id", "sku", "qty", "net_amount", "currency"),
        ("referrer", "project", "list_amount", "special"),
    ),
    "returns": (
        ("return_id", "date", "customer_id", "sku", "qty", "net_amount"),
        ("order_id", "currency"),
    ),
    "events": (("event_id", "date", "partner_id", "kind"), ("order_id", "amount")),
}
EVENT_KINDS = ("lead_submitted", "lead_converted", "merchant_referred", "partner_recruited")
MONEY_COLUMNS = ("list_amount", "net_amount", "amount")
TEXT_COLUMNS = (
    "order_id",
    "line_id",
    "return_id",
    "event_id",
    "customer_id",
    "partner_id",
    "referrer",
    "project",
    "sku",
    "kind",
    "currency",
)
TRUE_WORDS = ("true", "1", "yes", "y", "t")
FALSE_WORDS = ("false", "0", "no", "n", "f", "")


# ---- row checks (used by engine.ledger.store.checks_for) ----------------------------------------


def history_checks(name: str, frame: pl.DataFrame) -> list[tuple[str, pl.Expr]]:
    """The row checks of one history table (text columns), as ``engine.ledger.store`` runs them."""
    from engine.ledger.store import (
        currency_check,
        decimal_check,
        is_blank,
        iso_date_check,
        need_columns,
        required_check,
        row_problem,
        unique_check,
    )

    required, optional = HISTORY_TABLES[name]
    need_columns(frame, name, required, f"the {name.replace('_', ' ')} table")
    has = set(frame.columns)
    checks: list[tuple[str, pl.Expr]] = [
        required_check(c) for c in required if c not in ("qty", "net_amount")
    ]
    key = {"order_lines": None, "returns": "return_id", "events": "event_id"}[name]
    if key is not None:
        checks.append(unique_check(key))
    else:
        from engine.ledger.store import ROW_NUMBER

        first = pl.col(ROW_NUMBER).min().over("order_id", "line_id")
        checks.append(
            row_problem(
                "line_id",
                (
                    pl.col(ROW_NUMBER) > first,
                    pl.format(
                        "duplicate line '{}' of order '{}' (first at row {})",
                        pl.col("line_id"),
                        pl.col("order_id"),
                        first,
                    ),
                ),
            )
        )
    checks.append(iso_date_check("date"))
    if "currency" in has:
        checks.append(currency_check("currency", required=name == "order_lines"))
    if "qty" in has:
        checks += [required_check("qty"), decimal_check("qty", QTY_DIGITS, "zero", "a quantity")]
    for col in MONEY_COLUMNS:
        if col in has:
            if col == "net_amount":
                checks.append(required_check(col))
            checks.append(decimal_check(col, 3, "zero", "an amount"))
            checks.append(_money_digits(col, "currency" in has))
    if "special" in has:
        word = pl.col("special").str.strip_chars().str.to_lowercase()
        checks.append(
            row_problem(
                "special",
                (
                    ~is_blank("special") & ~word.is_in(TRUE_WORDS + FALSE_WORDS),
                    pl.format("'{}' is not true or false", pl.col("special")),
                ),
            )
        )
    if name == "events":
        checks.append(
            row_problem(
                "kind",
                (
                    ~pl.col("kind").str.strip_chars().is_in(EVENT_KINDS),
                    pl.format(
                        "'{}' is not an event kind ({})",
                        pl.col("kind"),
                        pl.lit(", ".join(EVENT_KINDS)),
                    ),
                ),
            )
        )
    return checks


def _money_digits(col: str, has_currency: bool) -> tuple[str, pl.Expr]:
    """More fractional digits than the row's currency has (JPY 0, CNY 2)."""
    from engine.ledger.store import row_problem

    if not has_currency:
        return row_problem(col, (pl.lit(False), None))
    digits = (
        pl.col("currency")
        .str.strip_chars()
        .replace_strict(CURRENCY_EXPONENTS, default=3, return_dtype=pl.Int64)
    )
    frac = (
        pl.col(col)
        .str.strip_chars()
        .str.extract(r"\.(\d*)$", 1)
        .fill_null("")
        .str.strip_chars_end("0")
    )
    return row_problem(
        col,
        (
            frac.str.len_chars() > digits,
            pl.format(
                "'{}' has more fractional digits than {} has", pl.col(col), pl.col("currency")
            ),
        ),
    )


# ---- typed (canonical) frames --------------------------------------------------------------


def _scaled(col: str, digits: int) -> pl.Expr:
    """Checked non-negative decimal text -> integer scaled by 10^digits."""
    v = pl.col(col).str.strip_chars().str.strip_prefix("+")
    whole = v.str.extract(r"^(\d*)", 1).replace("", "0").cast(pl.Int64)
    frac = v.str.extract(r"\.(\d*)$", 1).fill_null("").str.pad_end(digits, "0").str.slice(0, digits)
    frac_value = frac.replace("", "0").cast(pl.Int64) if digits else pl.lit(0, dtype=pl.Int64)
    out: pl.Expr = whole * 10**digits + frac_value
    return out


def _money(col: str, default_currency: str, has_currency: bool) -> pl.Expr:
    """Decimal text -> minor units of the row's currency (checked: no extra digits)."""
    milli = _scaled(col, 3)
    if not has_currency:
        fixed: pl.Expr = milli // 10 ** (3 - CURRENCY_EXPONENTS[default_currency])
        return fixed
    divisor = (
        pl.col("currency")
        .str.strip_chars()
        .replace_strict(
            {c: 10 ** (3 - e) for c, e in CURRENCY_EXPONENTS.items()}, return_dtype=pl.Int64
        )
    )
    out: pl.Expr = milli // divisor
    return out


SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "order_lines": {
        "order_id": pl.String(),
        "line_id": pl.String(),
        "date": pl.Date(),
        "customer_id": pl.String(),
        "referrer": pl.String(),
        "project": pl.String(),
        "sku": pl.String(),
        "qty": pl.Int64(),
        "list_amount": pl.Int64(),
        "net_amount": pl.Int64(),
        "currency": pl.String(),
        "special": pl.Boolean(),
    },
    "returns": {
        "return_id": pl.String(),
        "order_id": pl.String(),
        "date": pl.Date(),
        "customer_id": pl.String(),
        "sku": pl.String(),
        "qty": pl.Int64(),
        "net_amount": pl.Int64(),
        "currency": pl.String(),
    },
    "events": {
        "event_id": pl.String(),
        "date": pl.Date(),
        "partner_id": pl.String(),
        "kind": pl.String(),
        "order_id": pl.String(),
        "amount": pl.Int64(),
    },
}


def typed(name: str, frame: pl.DataFrame, currency: str) -> pl.DataFrame:
    """A checked text frame -> the canonical typed frame (every column of ``SCHEMAS[name]``)."""
    frame = frame.select(pl.all().cast(pl.String))
    has = set(frame.columns)
    exprs: list[pl.Expr] = []
    for col, dtype in SCHEMAS[name].items():
        if col not in has:
            if col == "currency":
                exprs.append(pl.lit(currency, dtype=pl.String).alias(col))
            elif col == "special":
                exprs.append(pl.lit(False).alias(col))
            else:
                exprs.append(pl.lit(None, dtype=dtype).alias(col))
            continue
        blank = pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")
        if col == "date":
            exprs.append(pl.col(col).str.strip_chars().str.to_date("%Y-%m-%d"))
        elif col == "qty":
            exprs.append(_scaled(col, QTY_DIGITS).alias(col))
        elif col in MONEY_COLUMNS:
            exprs.append(
                pl.when(blank)
                .then(None)
                .otherwise(_money(col, currency, "currency" in has))
                .alias(col)
            )
        elif col == "special":
            exprs.append(
                pl.col(col)
                .str.strip_chars()
                .str.to_lowercase()
                .is_in(TRUE_WORDS)
                .fill_null(False)
                .alias(col)
            )
        elif col == "currency":
            exprs.append(
                pl.when(blank)
                .then(pl.lit(currency))
                .otherwise(pl.col(col).str.strip_chars())
                .alias(col)
            )
        else:
            exprs.append(
                pl.when(blank).then(None).otherwise(pl.col(col).str.strip_chars()).alias(col)
            )
    return frame.select(exprs)


def _is_typed(schema: pl.Schema, name: str) -> bool:
    money = [c for c in ("qty", "net_amount", "amount") if c in schema]
    return bool(money) and all(schema[c].is_integer() for c in money)


def _check_typed_schema(name: str, schema: pl.Schema, where: str) -> list[pl.Expr]:
    required, _ = HISTORY_TABLES[name]
    missing = [c for c in required if c not in schema]
    if missing:
        raise DataError(
            f"{where}: the {name.replace('_', ' ')} table needs column(s) {', '.join(missing)}"
        )
    casts = []
    for col, dtype in SCHEMAS[name].items():
        if col in schema:
            have = schema[col]
            ok = (
                (dtype.is_integer() and have.is_integer())
                or have == dtype
                or (dtype == pl.String() and have in (pl.String(), pl.Categorical()))
            )
            if col == "date" and have == pl.String():
                casts.append(pl.col(col).str.to_date("%Y-%m-%d"))
                continue
            if not ok:
                raise DataError(f"{where}: column {col} is {have}, expected {dtype}")
            casts.append(pl.col(col).cast(dtype))
        elif col == "special":
            casts.append(pl.lit(False).alias(col))
        else:
            casts.append(pl.lit(None, dtype=dtype).alias(col))
    return casts


@dataclass(frozen=True)
class History:
    """The history as lazy typed frames (``SCHEMAS``); absent tables are empty frames."""

    lines: pl.LazyFrame
    returns: pl.LazyFrame
    events: pl.LazyFrame
    source: str


def empty(name: str) -> pl.LazyFrame:
    return pl.DataFrame(schema=SCHEMAS[name]).lazy()


def load_frame(name: str, frame: pl.DataFrame, currency: str) -> pl.LazyFrame:
    """Check a text (or typed) frame of history table ``name``; all rows or none."""
    from engine.ledger.store import as_text_frame, validate

    if _is_typed(frame.schema, name):
        return frame.lazy().select(_check_typed_schema(name, frame.schema, name))
    text = as_text_frame(frame, name)
    validate(name, text)
    return typed(name, text, currency).lazy()


def _read(name: str, path: Path, currency: str) -> pl.LazyFrame:
    from engine.ledger.store import read_table_file

    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            schema = pl.scan_parquet(path).collect_schema()
        except (pl.exceptions.PolarsError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"cannot read {path}: {first}") from None
        if _is_typed(schema, name):
            return pl.scan_parquet(path).select(_check_typed_schema(name, schema, str(path)))
    frame = read_table_file(path)
    try:
        return load_frame(name, frame, currency)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None


def _find(directory: Path, name: str) -> Path | None:
    for suffix in (".parquet", ".pq", ".csv"):
        candidate = directory / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def read_history(path: str | Path, currency: str) -> History:
    """A file of order lines, or a directory holding ``order_lines``, ``returns`` and
    ``events`` (``.parquet`` or ``.csv``; returns and events optional)."""
    root = Path(path)
    if root.is_dir():
        lines_path = _find(root, "order_lines")
        if lines_path is None:
            raise DataError(f"{root}: no order_lines.parquet or order_lines.csv")
        parts = {name: _find(root, name) for name in ("returns", "events")}
        return History(
            lines=_read("order_lines", lines_path, currency),
            returns=_read("returns", parts["returns"], currency)
            if parts["returns"]
            else empty("returns"),
            events=_read("events", parts["events"], currency)
            if parts["events"]
            else empty("events"),
            source=str(root),
        )
    if not root.is_file():
        raise DataError(f"no such file or directory: {root}")
    return History(
        lines=_read("order_lines", root, currency),
        returns=empty("returns"),
        events=empty("events"),
        source=str(root),
    )


def store_history(
    store: object,
    currency: str,
    *,
    partner: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> History:
    """The history loaded into the store (``pricer load order_lines|returns|events``), plus
    the ledger's committed orders when the store keeps them (``committed_order_lines``).

    ``partner``, ``start`` and ``end`` narrow what is read in DuckDB itself (one partner's
    rows: its orders, the orders it referred, its returns and events; dates in range), so a
    single look-up does not read the whole history."""
    from engine.ledger.store import DATA_SCHEMA, Store, quoted_name

    assert isinstance(store, Store)
    names = {info.name: info for info in store.tables()}
    frames: dict[str, pl.LazyFrame] = {}
    who = {
        "order_lines": ("customer_id", "referrer"),
        "returns": ("customer_id",),
        "events": ("partner_id",),
    }
    for name in ("order_lines", "returns", "events"):
        info = names.get(name)
        if info is None:
            frames[name] = empty(name)
            continue
        where: list[str] = []
        params: list[object] = []
        if partner is not None:
            keys = [k for k in who[name] if k in info.columns]
            where.append("(" + " OR ".join(f'"{k}" = ?' for k in keys) + ")")
            params += [partner] * len(keys)
        if start is not None and end is not None:
            where.append("trim(date) BETWEEN ? AND ?")
            params += [start.isoformat(), end.isoformat()]
        sql = f"SELECT * FROM {DATA_SCHEMA}.{quoted_name(info.name)}" + (
            " WHERE " + " AND ".join(where) if where else ""
        )
        rows = store._cursor().execute(sql, params)
        columns = [d[0] for d in rows.description or ()]
        frame = pl.DataFrame(rows.fetchall(), schema={c: pl.String for c in columns}, orient="row")
        frames[name] = typed(name, frame, currency).lazy()
    committed = getattr(store, "committed_order_lines", None)
    if callable(committed):
        extra = committed()
        if isinstance(extra, pl.DataFrame) and extra.height:
            frames["order_lines"] = pl.concat(
                [frames["order_lines"], load_frame("order_lines", extra, currency)],
                how="vertical_relaxed",
            )
    return History(
        lines=frames["order_lines"],
        returns=frames["returns"],
        events=frames["events"],
        source=f"store {store.path}",
    )


def write_canonical(frames: Sequence[pl.DataFrame], path: str | Path) -> None:
    """Write typed order-line chunks to one Parquet file (the bench's generator uses it)."""
    import pyarrow.parquet as pq

    writer = None
    try:
        for frame in frames:
            table = frame.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()

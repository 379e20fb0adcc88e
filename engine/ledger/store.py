"""The DuckDB store: the catalog, the named data tables and the published rulesets in one file.

Tables (all text columns exactly as loaded, validated before anything is written)::

    catalog                    the SKUs (columns as in engine.core.data)
    tables."<name>"            one table per named data table (price lists, rates, ...)
    data_tables(name, rows, loaded_at, columns)   registry of what is loaded (catalog included)
    rulesets(id, version, published_at, sources)  published ruleset sources; the latest is current

Loading is all or nothing: every row is checked first (``checks_for`` lists the checks per
kind of table) and a file with any bad row loads nothing, raising a ``BadRowsError`` (a
``DataError``) that names up to 20 problems by row and column. One DuckDB connection per
``Store`` (one per process); each thread works through its own cursor; values are always
bound parameters, identifiers are checked against ``TABLE_NAME`` and quoted.

>>> store = Store(":memory:")
>>> store.load_frame("catalog", pl.DataFrame({"sku": ["A"], "base_unit": ["pcs"]})).rows
1
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import duckdb
import polars as pl

from engine.core.data import DataError, DataSet
from engine.core.money import CURRENCY_EXPONENTS, MAX_FX_DIGITS, PERCENT_DIGITS, QTY_DIGITS

if TYPE_CHECKING:
    from engine.ledger.committed import Ledger

TableKind = Literal["catalog", "fx_rates", "tax_rates", "price", "special", "text"]

#: columns only a special-price table has (stage 3; a special-price table is also one whose
#: name says ``special`` and that has a ``price`` column)
SPECIAL_QUOTA_COLUMNS = ("qty_quota", "amount_quota")

#: A data table name: what a rule can write after ``table``.
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
DATA_SCHEMA = "tables"
MAX_LISTED_PROBLEMS = 20
PRICE_DIGITS = 6  # fractional digits a price-table price may carry

ROW_NUMBER = "__pricer_row"
_INCOMING = "__pricer_incoming"
_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)$"
_UNIT_PART = r"^[A-Za-z_][A-Za-z0-9_.\-]*\s*=\s*[1-9][0-9]*$"
_COMPONENT_PART = r"^[^:;=\s]+\s*:\s*(\d+(\.\d*)?|\.\d+)$"

_SCHEMA_SQL = (
    f"CREATE SCHEMA IF NOT EXISTS {DATA_SCHEMA}",
    "CREATE TABLE IF NOT EXISTS data_tables ("
    " name VARCHAR PRIMARY KEY, rows BIGINT NOT NULL, loaded_at TIMESTAMP NOT NULL,"
    " columns VARCHAR[] NOT NULL)",
    "CREATE SEQUENCE IF NOT EXISTS ruleset_seq",
    "CREATE TABLE IF NOT EXISTS rulesets ("
    " id BIGINT PRIMARY KEY DEFAULT nextval('ruleset_seq'), version VARCHAR NOT NULL,"
    " published_at TIMESTAMP NOT NULL, sources JSON NOT NULL)",
)


class StoreError(RuntimeError):
    """The database file cannot be opened or used (locked by another process, unreadable)."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int  # 1-based data row (the CSV header is not a row)
    column: str
    problem: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.problem}"


class BadRowsError(DataError):
    """A file with bad rows; nothing was loaded. ``problems`` holds the first 20."""

    def __init__(self, table: str, problems: Sequence[RowProblem], total: int, rows: int) -> None:
        bad_rows = len({p.row for p in problems})
        head = (
            f"{total} problem{'s' if total != 1 else ''} in {rows} row{'s' if rows != 1 else ''}"
            f"; nothing was loaded"
        )
        listed = "\n".join(f"  {p}" for p in problems)
        more = f"\n  ... and {total - len(problems)} more" if total > len(problems) else ""
        super().__init__(f"{head}\n{listed}{more}", table=table)
        self.problems = tuple(problems)
        self.total = total
        self.bad_rows = bad_rows


@dataclass(frozen=True, slots=True)
class LoadReport:
    table: str
    kind: TableKind
    rows: int
    columns: tuple[str, ...]
    loaded_at: dt.datetime


@dataclass(frozen=True, slots=True)
class TableInfo:
    name: str
    rows: int
    loaded_at: dt.datetime
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RulesetRecord:
    version: str
    published_at: dt.datetime
    sources: dict[str, str]


# ---- reading files ---------------------------------------------------------------------


def read_table_file(path: str | Path) -> pl.DataFrame:
    """A CSV or Parquet file as a frame of text columns (values exactly as written)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            frame = pl.read_csv(path, infer_schema=False, raise_if_empty=False)
        elif suffix in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
        else:
            raise DataError(f"{path}: unsupported file type {suffix!r} (use .csv or .parquet)")
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {path}: {first}") from None
    return as_text_frame(frame, str(path))


def as_text_frame(frame: pl.DataFrame, what: str) -> pl.DataFrame:
    renamed = {c: c.replace("\ufeff", "").strip() for c in frame.columns}
    frame = frame.rename(renamed)
    bad = [
        c
        for c, dtype in frame.schema.items()
        if isinstance(dtype, (pl.List, pl.Array, pl.Struct, pl.Object, pl.Binary))
    ]
    if bad:
        raise DataError(f"{what}: column(s) {', '.join(bad)} are not plain values")
    return frame.select(pl.all().cast(pl.String))


def _check_columns(frame: pl.DataFrame, table: str) -> None:
    seen: dict[str, str] = {}
    for column in frame.columns:
        if not column:
            raise DataError("a column has an empty name", table=table)
        dup = re.fullmatch(r"(.*)_duplicated_\d+", column)
        if dup and dup.group(1) in frame.columns:
            raise DataError(f"column {dup.group(1)!r} appears more than once", table=table)
        if column.lower() in seen or column == ROW_NUMBER:
            raise DataError(f"column {column!r} appears more than once", table=table)
        seen[column.lower()] = column
    if not frame.columns:
        raise DataError("the file has no columns", table=table)


# ---- validation ------------------------------------------------------------------------

#: One check: the column it is about and an expression that is a problem text or null.
Check = tuple[str, pl.Expr]
Minimum = Literal["zero", "positive"]


def is_blank(col: str) -> pl.Expr:
    return pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")


def row_problem(col: str, *cases: tuple[pl.Expr, pl.Expr | str | None]) -> Check:
    """A check whose problem is the message of the first case that holds (None: no problem)."""
    expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for condition, message in reversed(cases):
        text = message if isinstance(message, pl.Expr) else pl.lit(message, dtype=pl.String)
        expr = pl.when(condition).then(text).otherwise(expr)
    return col, expr


def _says(col: str, template: str) -> pl.Expr:
    """``template`` with ``{}`` replaced by the cell's text."""
    return pl.format(template, pl.col(col))


def required_check(col: str) -> Check:
    return row_problem(col, (is_blank(col), "is empty"))


def _too_precise(text: pl.Expr, digits: int) -> pl.Expr:
    # a non-zero digit past the allowed ones ("1.2300" is fine at 2 digits)
    return text.str.contains(r"\.\d{" + str(digits) + r"}\d*[1-9]")


def decimal_check(col: str, digits: int, minimum: Minimum, what: str) -> Check:
    """A decimal cell (empty cells pass; ``required_check`` catches those that must not be)."""
    v = pl.col(col).str.strip_chars()
    return row_problem(
        col,
        (is_blank(col), None),
        (~v.str.contains(_NUMBER), _says(col, "'{}' is not a decimal number")),
        (v.str.starts_with("-") & v.str.contains(r"[1-9]"), _says(col, "'{}' is negative")),
        (
            pl.lit(minimum == "positive") & ~v.str.contains(r"[1-9]"),
            _says(col, "'{}' must be greater than zero"),
        ),
        (
            _too_precise(v, digits),
            _says(col, f"'{{}}' has more than {digits} fractional digits ({what})"),
        ),
    )


def currency_check(col: str, *, required: bool = True) -> Check:
    known = pl.col(col).str.strip_chars().is_in(sorted(CURRENCY_EXPONENTS))
    return row_problem(
        col,
        (is_blank(col), "is empty" if required else None),
        (~known, _says(col, "'{}' is not a known ISO 4217 currency code")),
    )


def iso_date_check(col: str) -> Check:
    v = pl.col(col).str.strip_chars()
    bad = (
        ~v.str.contains(r"^\d{4}-\d{2}-\d{2}$") | v.str.to_date("%Y-%m-%d", strict=False).is_null()
    )
    return row_problem(
        col, (is_blank(col), "is empty"), (bad, _says(col, "'{}' is not an ISO date (YYYY-MM-DD)"))
    )


def _optional_date(col: str) -> Check:
    v = pl.col(col).str.strip_chars()
    bad = (
        ~v.str.contains(r"^\d{4}-\d{2}-\d{2}$") | v.str.to_date("%Y-%m-%d", strict=False).is_null()
    )
    return row_problem(
        col, (is_blank(col), None), (bad, _says(col, "'{}' is not an ISO date (YYYY-MM-DD)"))
    )


def _window(start: str, end: str) -> Check:
    first = pl.col(start).str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    last = pl.col(end).str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    message = pl.format("'{}' is before valid_from '{}'", pl.col(end), pl.col(start))
    return row_problem(end, ((last < first).fill_null(False), message))


def _one_special_per_key(frame: pl.DataFrame) -> Check:
    """A customer (and project) has one special price per SKU: its quotas are one ledger key."""
    project = (
        pl.col("project").fill_null("").str.strip_chars()
        if "project" in frame.columns
        else pl.lit("")
    )
    keys = [pl.col("customer_id").str.strip_chars(), project, pl.col("sku").str.strip_chars()]
    first = pl.col(ROW_NUMBER).min().over(keys)
    message = pl.format(
        "a second special price for this customer_id/project/sku (first at row {})", first
    )
    return row_problem("sku", (pl.col(ROW_NUMBER) > first, message))


def _percent(col: str) -> Check:
    body = pl.col(col).str.strip_chars().str.strip_suffix("%")
    return row_problem(
        col,
        (is_blank(col), "is empty"),
        (
            ~body.str.contains(_NUMBER) | body.str.starts_with("-"),
            _says(col, "'{}' is not a percentage like '13%'"),
        ),
        (
            _too_precise(body, PERCENT_DIGITS),
            _says(col, f"'{{}}' has more than {PERCENT_DIGITS} fractional digits"),
        ),
        (body.cast(pl.Decimal(38, 10), strict=False) > 100, _says(col, "'{}' is above 100%")),
    )


def unique_check(col: str) -> Check:
    first = pl.col(ROW_NUMBER).min().over(col)
    message = pl.format("duplicate {} '{}' (first at row {})", pl.lit(col), pl.col(col), first)
    return row_problem(col, (~is_blank(col) & (pl.col(ROW_NUMBER) > first), message))


def _same_key(frame: pl.DataFrame) -> Check:
    """Two price rows alike in every column but ``price`` contradict each other."""
    keys = [c for c in frame.columns if c != "price"]
    first = pl.col(ROW_NUMBER).min().over(keys)
    message = pl.format("prices the same {} as row {}", pl.lit("/".join(keys)), first)
    return row_problem("sku", (pl.col(ROW_NUMBER) > first, message))


def _list_of(col: str, part: str, what: str) -> Check:
    """A ``;``-separated list whose every part matches ``part``."""
    parts = pl.col(col).str.split(";").list.eval(pl.element().str.strip_chars().str.contains(part))
    return row_problem(
        col, (is_blank(col), None), (~parts.list.all(), _says(col, f"'{{}}' is not {what}"))
    )


def need_columns(frame: pl.DataFrame, table: str, needed: Sequence[str], kind: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"{kind} needs column(s) {', '.join(missing)}; the file has {', '.join(frame.columns)}",
            table=table,
        )


def table_kind(name: str, columns: Sequence[str]) -> TableKind:
    """What a table is checked as: by its name, else a ``price`` column makes a price table."""
    if name == "catalog":
        return "catalog"
    if name == "fx_rates":
        return "fx_rates"
    if name == "tax_rates":
        return "tax_rates"
    if "price" in columns and (
        "special" in name.lower() or any(c in columns for c in SPECIAL_QUOTA_COLUMNS)
    ):
        return "special"
    return "price" if "price" in columns else "text"


def checks_for(name: str, frame: pl.DataFrame) -> tuple[TableKind, list[Check]]:
    """The checks every row of ``frame`` must pass to be loaded as table ``name``."""
    kind = table_kind(name, frame.columns)
    if name in ("order_lines", "returns", "events"):  # order history (engine.batch.history)
        from engine.batch.history import history_checks

        return "text", history_checks(name, frame)
    has = set(frame.columns)
    checks: list[Check] = []
    if kind == "catalog":
        need_columns(frame, name, ("sku", "base_unit"), "the catalog")
        checks += [required_check("sku"), unique_check("sku"), required_check("base_unit")]
        if "units" in has:
            checks.append(
                _list_of("units", _UNIT_PART, "like 'box=12;case=144' (positive integer factors)")
            )
        if "components" in has:
            checks.append(_list_of("components", _COMPONENT_PART, "like 'P:1;S:2' (sku:ratio)"))
        if "min_qty" in has:
            checks.append(decimal_check("min_qty", QTY_DIGITS, "zero", "a quantity"))
        if "pack" in has:
            checks.append(decimal_check("pack", QTY_DIGITS, "positive", "a quantity"))
    elif kind == "fx_rates":
        need_columns(frame, name, ("from", "to", "date", "rate"), "an exchange-rate table")
        checks += [
            currency_check("from"),
            currency_check("to"),
            iso_date_check("date"),
            required_check("rate"),
        ]
        checks.append(decimal_check("rate", MAX_FX_DIGITS, "positive", "a rate"))
    elif kind == "tax_rates":
        need_columns(frame, name, ("rate",), "a tax-rate table")
        checks.append(_percent("rate"))
    elif kind == "special":
        need_columns(frame, name, ("customer_id", "sku", "price"), "a special-price table")
        checks += [required_check("customer_id"), required_check("sku"), required_check("price")]
        checks.append(decimal_check("price", PRICE_DIGITS, "zero", "a price"))
        if "qty_quota" in has:
            checks.append(decimal_check("qty_quota", QTY_DIGITS, "zero", "a quantity"))
        if "amount_quota" in has:
            checks.append(decimal_check("amount_quota", PRICE_DIGITS, "zero", "an amount"))
        for column in ("valid_from", "valid_to"):
            if column in has:
                checks.append(_optional_date(column))
        if "valid_from" in has and "valid_to" in has:
            checks.append(_window("valid_from", "valid_to"))
        checks.append(_one_special_per_key(frame))
    elif kind == "price":
        need_columns(frame, name, ("sku", "price"), "a price table")
        checks += [required_check("sku"), required_check("price")]
        checks.append(decimal_check("price", PRICE_DIGITS, "zero", "a price"))
        if "min_qty" in has:
            checks.append(decimal_check("min_qty", QTY_DIGITS, "zero", "a quantity"))
        if "currency" in has:
            checks.append(currency_check("currency", required=False))
        checks.append(_same_key(frame))
    return kind, checks


def validate(name: str, frame: pl.DataFrame) -> TableKind:
    """Check every row; raise ``BadRowsError`` listing the first problems if any row is bad."""
    _check_columns(frame, name)
    kind, checks = checks_for(name, frame)
    if not checks or frame.height == 0:
        return kind
    numbered = frame.with_row_index(ROW_NUMBER, offset=1)
    found = numbered.select(
        pl.col(ROW_NUMBER), *[expr.alias(f"c{i}") for i, (_, expr) in enumerate(checks)]
    )
    parts = []
    for i, (column, _) in enumerate(checks):
        hits = found.filter(pl.col(f"c{i}").is_not_null())
        if hits.height:
            parts.append(
                hits.select(
                    pl.col(ROW_NUMBER).alias("row"),
                    pl.lit(i).alias("order"),
                    pl.lit(column).alias("column"),
                    pl.col(f"c{i}").alias("problem"),
                )
            )
    if not parts:
        return kind
    problems = pl.concat(parts).sort("row", "order")
    listed = [
        RowProblem(row=int(r["row"]), column=str(r["column"]), problem=str(r["problem"]))
        for r in problems.head(MAX_LISTED_PROBLEMS).iter_rows(named=True)
    ]
    rows = problems.get_column("row").n_unique()
    raise BadRowsError(name, listed, total=problems.height, rows=rows)


# ---- the store -------------------------------------------------------------------------


def quoted_name(name: str) -> str:
    if not TABLE_NAME.fullmatch(name):
        raise DataError(
            f"bad table name {name!r}: use letters, digits and '_', starting with a letter"
        )
    return '"' + name + '"'


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


class Store:
    """One DuckDB file holding catalog, data tables and rulesets. Thread-safe.

    >>> store = Store(":memory:")
    >>> store.current_ruleset() is None
    True
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        if self.path != ":memory:" and not read_only:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.Error as exc:
            raise StoreError(_explain_open_error(self.path, exc)) from None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._snapshot: DataSet | None = None
        self._ledger: Ledger | None = None
        self._closed = False
        if not read_only:
            cur = self._cursor()
            for sql in _SCHEMA_SQL:
                cur.execute(sql)

    # -- plumbing
    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self._closed:
            raise StoreError(f"store {self.path} is closed")
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cursor = cur
        return cur

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor on the store's connection (the ledger writes through it)."""
        return self._cursor()

    @property
    def ledger(self) -> Ledger:
        """The ledger tables in this file (created on first use)."""
        with self._lock:
            if self._ledger is None:
                from engine.ledger.committed import Ledger

                self._ledger = Ledger(self)
            return self._ledger

    def committed_order_lines(
        self, start: dt.date | None = None, end: dt.date | None = None
    ) -> pl.DataFrame:
        """Lines of committed (and imported, not cancelled) orders dated in [start, end]:
        order_id, line_id, date (Date), customer_id, referrer, project, sku, qty (Int64
        thousandths), list_amount, net_amount (Int64 minor units), currency, special (Boolean).
        The schema is in docs/ledger.md. A read-only store without ledger tables has none."""
        if self.read_only:
            from engine.ledger.committed import ORDER_LINE_SCHEMA, Ledger

            if not Ledger.exists(self):
                return pl.DataFrame(schema=ORDER_LINE_SCHEMA)
            return Ledger(self, create=False).committed_order_lines(start, end)
        return self.ledger.committed_order_lines(start, end)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _has_registry(self) -> bool:
        row = (
            self._cursor()
            .execute(
                "SELECT count(*) FROM information_schema.tables"
                " WHERE table_schema = 'main' AND table_name = 'data_tables'"
            )
            .fetchone()
        )
        return bool(row and row[0])

    # -- data tables
    def load_table(self, name: str, path: str | Path) -> LoadReport:
        """Read a CSV/Parquet file, check every row, and replace table ``name`` with it."""
        quoted_name(name)
        return self.load_frame(name, read_table_file(path))

    def load_frame(self, name: str, frame: pl.DataFrame) -> LoadReport:
        """Check and load a frame (every column becomes text); all rows or none."""
        qualified = "catalog" if name == "catalog" else f"{DATA_SCHEMA}.{quoted_name(name)}"
        frame = as_text_frame(frame, name)
        kind = validate(name, frame)
        loaded_at = _now()
        cur = self._cursor()
        with self._lock:
            cur.begin()
            try:
                cur.register(_INCOMING, frame.to_arrow())
                cur.execute(f"CREATE OR REPLACE TABLE {qualified} AS SELECT * FROM {_INCOMING}")
                cur.execute("DELETE FROM data_tables WHERE lower(name) = lower(?)", [name])
                cur.execute(
                    "INSERT INTO data_tables (name, rows, loaded_at, columns) VALUES (?, ?, ?, ?)",
                    [name, frame.height, loaded_at, list(frame.columns)],
                )
                cur.commit()
            except BaseException:
                cur.rollback()
                raise
            finally:
                cur.unregister(_INCOMING)
            self._snapshot = None
        return LoadReport(name, kind, frame.height, tuple(frame.columns), loaded_at)

    def tables(self) -> list[TableInfo]:
        """Every loaded table (the catalog included), by name."""
        if not self._has_registry():
            return []
        rows = (
            self._cursor()
            .execute("SELECT name, rows, loaded_at, columns FROM data_tables ORDER BY name")
            .fetchall()
        )
        return [TableInfo(str(n), int(r), t, tuple(c)) for n, r, t, c in rows]

    def has_catalog(self) -> bool:
        return any(t.name == "catalog" for t in self.tables())

    def read(self, name: str) -> pl.DataFrame:
        """One loaded table as text columns, in load order."""
        info = {t.name.lower(): t for t in self.tables()}.get(name.lower())
        if info is None:
            raise DataError(f"unknown table {name!r}")
        qualified = "catalog" if name == "catalog" else f"{DATA_SCHEMA}.{quoted_name(info.name)}"
        frame: pl.DataFrame = self._cursor().sql(f"SELECT * FROM {qualified}").pl()
        return frame.select(pl.all().cast(pl.String))

    def snapshot(self) -> DataSet:
        """The catalog and every named table, as an immutable ``DataSet`` (cached until a load)."""
        with self._lock:
            if self._snapshot is not None:
                return self._snapshot
            infos = self.tables()
            catalog = pl.DataFrame(schema={"sku": pl.String, "base_unit": pl.String})
            tables: dict[str, pl.DataFrame] = {}
            for info in infos:
                frame = self.read(info.name)
                if info.name == "catalog":
                    catalog = frame
                else:
                    tables[info.name] = frame
            self._snapshot = DataSet(catalog=catalog, tables=tables)
            return self._snapshot

    # -- rulesets
    def save_ruleset(self, version: str, sources: dict[str, str]) -> RulesetRecord:
        """Record a published ruleset; it becomes the current one."""
        published_at = _now()
        cur = self._cursor()
        with self._lock:
            cur.execute(
                "INSERT INTO rulesets (version, published_at, sources) VALUES (?, ?, ?)",
                [version, published_at, json.dumps(dict(sorted(sources.items())))],
            )
        return RulesetRecord(version, published_at, dict(sources))

    def current_ruleset_record(self) -> RulesetRecord | None:
        if not self._has_registry():
            return None
        row = (
            self._cursor()
            .execute("SELECT version, published_at, sources FROM rulesets ORDER BY id DESC LIMIT 1")
            .fetchone()
        )
        if row is None:
            return None
        version, published_at, sources = row
        loaded = json.loads(sources) if isinstance(sources, str) else sources
        return RulesetRecord(
            str(version), published_at, {str(k): str(v) for k, v in loaded.items()}
        )

    def current_ruleset(self) -> dict[str, str] | None:
        """The sources of the latest published ruleset, or None if none was published."""
        record = self.current_ruleset_record()
        return None if record is None else record.sources


def _explain_open_error(path: str, exc: duckdb.Error) -> str:
    text = str(exc)
    if "lock" in text.lower():
        return (
            f"cannot open database {path}: it is in use by another process (stop the server first)"
        )
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"cannot open database {path}: {first}"

"""The ledger in DuckDB: committed orders, their lines, and what each consumed of the
brand's scarce allowances (special-price quotas, promotion budgets, per-customer uses,
gift stock). Quotes read a snapshot (``Ledger.view`` -> ``LedgerView``); only
``Ledger.record`` (a commit), ``Ledger.cancel`` and ``Ledger.seed`` write.

Tables (schema in docs/ledger.md)::

    ledger_orders(order_id PK, customer_id, project, referrer, date, currency, status,
                  committed_at, cancelled_at, list_total, discount_total, net_total,
                  tax_total, gross_total, response)
    ledger_lines(order_id, line_id, sub, sku, qty, list_amount, discount, net_amount, tax, special)
    ledger_consumption(order_id, kind, promotion, customer_id, project, sku, qty, amount)

``status`` is ``committed``, ``cancelled`` or ``imported`` (history loaded with
``pricer load-ledger`` or ``Ledger.seed``); a cancelled order's rows stay (the audit
trail) and count in no sum. Amounts are minor units of the ruleset currency, quantities
thousandths of the base unit. Every write is one DuckDB transaction; a commit re-reads what
was consumed and refuses (``QuotaExhausted``) anything that would go beyond a limit. That
re-check is sound only because writers are serialized by ``write_lock`` (in-process) and
one server process owns the DuckDB file: DuckDB's snapshot isolation does not make two
transactions that insert consumption rows for the same key conflict, so two writers that
bypassed the lock could both pass the check and overdraw.

>>> from engine.ledger.store import Store
>>> ledger = Ledger(Store(":memory:"))
>>> ledger.used_totals()
{}
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from engine.core.money import parse_money, parse_quantity
from engine.ledger.view import LedgerView

if TYPE_CHECKING:
    import duckdb

    from engine.ledger.store import Store
    from engine.plan.compiled import Plan

ConsumptionKind = Literal["special", "budget", "use", "gift_stock", "credit", "rebate_payment"]

#: the columns of ``committed_order_lines`` (docs/ledger.md)
ORDER_LINE_SCHEMA: dict[str, type[pl.DataType]] = {
    "order_id": pl.Utf8, "line_id": pl.Utf8, "date": pl.Date, "customer_id": pl.Utf8, "referrer": pl.Utf8,
    "project": pl.Utf8, "sku": pl.Utf8, "qty": pl.Int64, "list_amount": pl.Int64, "net_amount": pl.Int64,
    "currency": pl.Utf8, "special": pl.Boolean,
}  # fmt: skip

_SCHEMA_SQL = (
    "CREATE TABLE IF NOT EXISTS ledger_orders ("
    " order_id VARCHAR PRIMARY KEY, customer_id VARCHAR, project VARCHAR, referrer VARCHAR,"
    " date DATE NOT NULL, currency VARCHAR NOT NULL, status VARCHAR NOT NULL,"
    " committed_at TIMESTAMP NOT NULL, cancelled_at TIMESTAMP,"
    " list_total BIGINT NOT NULL, discount_total BIGINT NOT NULL, net_total BIGINT NOT NULL,"
    " tax_total BIGINT NOT NULL, gross_total BIGINT NOT NULL, response JSON, request_digest VARCHAR)",
    "CREATE TABLE IF NOT EXISTS ledger_lines ("
    " order_id VARCHAR NOT NULL, line_id VARCHAR NOT NULL, sub INTEGER NOT NULL,"
    " sku VARCHAR NOT NULL, qty BIGINT NOT NULL, list_amount BIGINT NOT NULL,"
    " discount BIGINT NOT NULL, net_amount BIGINT NOT NULL, tax BIGINT NOT NULL,"
    " special BOOLEAN NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_consumption ("
    " order_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, promotion VARCHAR, customer_id VARCHAR,"
    " project VARCHAR, sku VARCHAR, qty BIGINT NOT NULL, amount BIGINT NOT NULL)",
)

#: the in-memory committed-lines frame is compacted when it has more chunks than this
_MAX_CHUNKS = 64

#: only these count: a cancelled order released what it consumed
_LIVE = "o.status <> 'cancelled'"


class LedgerError(ValueError):
    """Bad ledger input (a seed file with a bad row); ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class QuotaExhausted(RuntimeError):
    """A commit would consume beyond a limit; nothing was written."""

    def __init__(self, consumption: Consumption, used: int, measure: str, limit: int) -> None:
        asked = consumption.qty if measure == "qty" else consumption.amount
        what = (
            consumption.promotion
            or f"special price {consumption.customer_id}/{consumption.project or '-'}/{consumption.sku}"
        )
        super().__init__(
            f"{what}: {consumption.kind} {measure} limit {limit}, already used {used}, this order needs {asked}"
        )
        self.consumption = consumption
        self.used = used
        self.measure = measure
        self.limit = limit
        self.asked = asked


@dataclass(frozen=True, slots=True)
class Consumption:
    """One thing an order consumes. ``limit_qty``/``limit_amount``: the most that may ever
    be consumed of this key across live orders (None: no limit)."""

    kind: ConsumptionKind
    promotion: str | None = None
    customer_id: str | None = None
    project: str | None = None
    sku: str | None = None
    qty: int = 0  # special: thousandths; use: orders (1); gift_stock: whole units
    amount: int = 0  # special: list amount; budget: discount given; credit: order total; rebate_payment: applied (minor units)
    limit_qty: int | None = None
    limit_amount: int | None = None


@dataclass(frozen=True, slots=True)
class OrderLine:
    line_id: str
    sub: int  # 0 for an unsplit line; 1, 2, ... for its sub-lines
    sku: str
    qty: int  # thousandths of the base unit
    list_amount: int
    discount: int
    net_amount: int
    tax: int
    special: bool = False


@dataclass(frozen=True, slots=True)
class OrderRecord:
    order_id: str
    customer_id: str | None
    project: str | None
    referrer: str | None
    date: dt.date
    currency: str
    totals: tuple[int, int, int, int, int]  # list, discount, net, tax, gross
    response: dict[str, Any]
    lines: tuple[OrderLine, ...] = ()
    consumption: tuple[Consumption, ...] = ()
    request_digest: str | None = (
        None  # the committed request's digest: the same id with another order is refused
    )


@dataclass(frozen=True, slots=True)
class StoredOrder:
    order_id: str
    status: str
    response: dict[str, Any]
    consumption: tuple[Consumption, ...] = field(default=())
    request_digest: str | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Ledger:
    """The ledger tables in a store's DuckDB file. Thread-safe; writes are serialized by
    ``write_lock`` (hold it around validate-and-record so a commit prices on what it writes
    against)."""

    def __init__(self, store: Store, *, create: bool = True) -> None:
        self.store = store
        self.write_lock = threading.RLock()
        self._generation = 0
        self._view_lock = threading.Lock()
        self._views: dict[tuple[str, int], LedgerView] = {}
        #: what live orders consumed and their lines, kept in memory and updated by each
        #: write (so a commit does not re-read the whole ledger); None: read it on next use
        self._totals: (
            dict[tuple[str, str | None, str | None, str | None, str | None], tuple[int, int]] | None
        ) = None
        self._lines: pl.DataFrame | None = None
        if create:
            cur = self._cursor()
            for sql in _SCHEMA_SQL:
                cur.execute(sql)

    @staticmethod
    def exists(store: Store) -> bool:
        """The ledger tables are in the file (a read-only store cannot create them)."""
        rows = (
            store.cursor()
            .execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = 'ledger_orders'"
            )
            .fetchall()
        )  # fetch to the end: a pending result would block the next relation on this cursor
        return bool(rows and rows[0][0])

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        return self.store.cursor()

    def _changed(
        self,
        order: OrderRecord | None = None,
        sign: int = 0,
        order_id: str | None = None,
        released: tuple[Consumption, ...] = (),
    ) -> None:
        """After a write: drop the cached views; fold ``order`` in (sign +1) or take the
        order ``order_id`` and what it consumed (``released``) out (sign -1) of the
        in-memory state, or forget it (re-read)."""
        with self._view_lock:
            self._views = {}  # a new dict: readers looking up the old one without the lock keep a consistent one
            self._generation += 1
            if self._totals is None or self._lines is None or sign == 0:
                self._totals = self._lines = None
                return
            if sign > 0 and order is not None:
                for c in order.consumption:
                    key = _key(c)
                    qty, amount = self._totals.get(key, (0, 0))
                    self._totals[key] = (qty + c.qty, amount + c.amount)
                if order.lines:
                    lines = pl.concat([self._lines, _lines_frame(order)], how="vertical")
                    # concat adds a chunk per commit: filters over it (stock plan, cumulative
                    # conditions) slow down with commits since start unless compacted
                    self._lines = lines.rechunk() if lines.n_chunks() > _MAX_CHUNKS else lines
            elif sign < 0 and order_id is not None:
                for c in released:
                    key = _key(c)
                    qty, amount = self._totals.get(key, (0, 0))
                    self._totals[key] = (qty - c.qty, amount - c.amount)
                self._lines = self._lines.filter(pl.col("order_id") != order_id)

    def _state(
        self,
    ) -> tuple[
        dict[tuple[str, str | None, str | None, str | None, str | None], tuple[int, int]],
        pl.DataFrame,
    ]:
        """(totals, lines) of live orders; call with ``_view_lock`` held."""
        if self._totals is None or self._lines is None:
            self._totals = self._read_totals()
            lines = self.committed_order_lines(None, None)
            self._lines = lines.select(
                "order_id",
                "customer_id",
                "date",
                "sku",
                "qty",
                pl.col("net_amount").alias("amount"),
            )
        return self._totals, self._lines

    # ---- reading -----------------------------------------------------------------------

    def used_totals(
        self,
    ) -> dict[tuple[str, str | None, str | None, str | None, str | None], tuple[int, int]]:
        """(kind, promotion, customer, project, sku) -> (qty, amount) over live orders."""
        return self._read_totals()

    def _read_totals(
        self,
    ) -> dict[tuple[str, str | None, str | None, str | None, str | None], tuple[int, int]]:
        rows = (
            self._cursor()
            .execute(
                "SELECT c.kind, c.promotion, c.customer_id, c.project, c.sku, sum(c.qty), sum(c.amount)"
                " FROM ledger_consumption c JOIN ledger_orders o USING (order_id)"
                f" WHERE {_LIVE} GROUP BY ALL"
            )
            .fetchall()
        )
        return {(str(k), p, c, pr, s): (int(q), int(a)) for k, p, c, pr, s, q, a in rows}

    def view(self, plan: Plan) -> LedgerView:
        """The snapshot quotes price against (cached until the next write). A cached view is
        returned without taking the lock, so quotes do not wait for a rebuild after a write
        (one that starts during the write may get the view from just before it)."""
        cached = self._views.get((plan.version, self._generation))
        if cached is not None:
            return cached
        with self._view_lock:
            key = (plan.version, self._generation)
            cached = self._views.get(key)
            if cached is not None:
                return cached
            view = self._build_view(plan)
            self._views[key] = view
            return view

    def _build_view(self, plan: Plan) -> LedgerView:
        totals, lines = self._state()
        budget: dict[str, int] = {}
        gifts: dict[str, int] = {}
        uses: dict[tuple[str, str], int] = {}
        special: dict[tuple[str, str, str], tuple[int, int]] = {}
        credit: dict[str, int] = {}
        rebate: dict[str, int] = {}
        for (kind, promotion, customer, project, sku), (qty, amount) in totals.items():
            if kind == "special":
                special[(customer or "", project or "", sku or "")] = (qty, amount)
            elif kind == "budget" and promotion is not None:
                budget[promotion] = amount
            elif kind == "gift_stock" and promotion is not None:
                gifts[promotion] = qty
            elif kind == "use" and promotion is not None and customer is not None:
                uses[(promotion, customer)] = qty
            elif kind == "credit" and customer is not None:
                credit[customer] = amount
            elif kind == "rebate_payment" and customer is not None:
                rebate[customer] = amount
        committed = lines.select("customer_id", "date", "sku", "qty", "amount")
        return replace(
            view_from_names(plan, budget, gifts, uses, special, committed),
            credit_used=credit,
            rebate_used=rebate,
        )

    def committed_order_lines(self, start: dt.date | None, end: dt.date | None) -> pl.DataFrame:
        """Lines of live orders (committed or imported, not cancelled) dated in [start, end]:
        order_id, line_id, date, customer_id, referrer, project, sku, qty (thousandths),
        list_amount, net_amount (minor units), currency, special."""
        where = [_LIVE]
        params: list[Any] = []
        if start is not None:
            where.append("o.date >= ?")
            params.append(start)
        if end is not None:
            where.append("o.date <= ?")
            params.append(end)
        table = (
            self._cursor()
            .sql(
                "SELECT l.order_id, l.line_id, o.date, o.customer_id, o.referrer, o.project, l.sku,"
                " l.qty, l.list_amount, l.net_amount, o.currency, l.special"
                " FROM ledger_lines l JOIN ledger_orders o USING (order_id)"
                f" WHERE {' AND '.join(where)} ORDER BY o.date, l.order_id, l.line_id, l.sub",
                params=params,
            )
            .to_arrow_table()
        )
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame.cast(ORDER_LINE_SCHEMA)  # type: ignore[arg-type]

    def find(self, order_id: str) -> StoredOrder | None:
        row = (
            self._cursor()
            .execute(
                "SELECT status, response, request_digest FROM ledger_orders WHERE order_id = ?",
                [order_id],
            )
            .fetchone()
        )
        if row is None:
            return None
        rows = (
            self._cursor()
            .execute(
                "SELECT kind, promotion, customer_id, project, sku, qty, amount FROM ledger_consumption WHERE order_id = ?",
                [order_id],
            )
            .fetchall()
        )
        consumed = tuple(
            Consumption(
                kind=k, promotion=p, customer_id=c, project=pr, sku=s, qty=int(q), amount=int(a)
            )
            for k, p, c, pr, s, q, a in rows
        )
        response = json.loads(row[1]) if isinstance(row[1], str) else (row[1] or {})
        return StoredOrder(order_id, str(row[0]), response, consumed, row[2])

    # ---- writing -----------------------------------------------------------------------

    def record(self, order: OrderRecord) -> tuple[StoredOrder, bool]:
        """Record a committed order and what it consumed, in one transaction. Returns the
        stored order and whether it is new (False: this id was committed before, nothing
        was consumed now). Raises ``QuotaExhausted`` (nothing written) if any limit would be
        passed."""
        with self.write_lock:
            cur = self._cursor()
            cur.begin()
            try:
                found = cur.execute(
                    "SELECT 1 FROM ledger_orders WHERE order_id = ?", [order.order_id]
                ).fetchone()
                if found is not None:
                    cur.rollback()
                    stored = self.find(order.order_id)
                    assert stored is not None
                    return stored, False
                for item in order.consumption:
                    check_limit(cur, item)
                insert_order(cur, order, "committed")
                cur.commit()
            except BaseException:
                cur.rollback()
                raise
            self._changed(order, +1)
        return StoredOrder(
            order.order_id, "committed", order.response, order.consumption, order.request_digest
        ), True

    def cancel(self, order_id: str) -> tuple[StoredOrder | None, bool]:
        """Mark a committed order cancelled: what it consumed stops counting. Idempotent.
        Returns the stored order (None if no such order) and whether this call released
        it (False: it was not committed, e.g. already cancelled)."""
        with self.write_lock:
            stored = self.find(order_id)
            if stored is None or stored.status != "committed":
                return stored, False
            cur = self._cursor()
            cur.begin()
            try:
                row = cur.execute(
                    "UPDATE ledger_orders SET status = 'cancelled', cancelled_at = ? WHERE order_id = ? AND status = 'committed'",
                    [_now(), order_id],
                ).fetchone()
                cur.commit()
            except BaseException:
                cur.rollback()
                raise
            done = bool(row and row[0])
            if done:
                self._changed(None, -1, order_id, stored.consumption)
        return replace(stored, status="cancelled"), done

    def seed(self, block: Mapping[str, Any], currency: str) -> int:
        """Load imported history: a scenario file's ``ledger`` block (``budget_used``,
        ``gift_stock_used``, ``uses``, ``special_consumed``, ``committed_lines``); amounts
        in ``currency`` (the ruleset's). One imported order per committed line (its
        ``order_id`` if given) plus one holding the consumption. Returns the rows written."""
        consumption = list(_seed_consumption(block, currency))
        lines = list(block.get("committed_lines") or [])
        orders: list[OrderRecord] = []
        stamp = _now().strftime("%Y%m%dT%H%M%S%f")
        if consumption:
            orders.append(
                OrderRecord(
                    f"import-{stamp}",
                    None,
                    None,
                    None,
                    dt.date.today(),
                    currency,
                    (0, 0, 0, 0, 0),
                    {},
                    (),
                    tuple(consumption),
                )
            )
        by_id: dict[str, OrderRecord] = {}
        for n, row in enumerate(lines, start=1):
            record = _seed_line_order(row, n, stamp, currency)
            prev = by_id.get(record.order_id)
            if prev is not None:  # several lines of one imported order
                if (prev.customer_id, prev.date) != (record.customer_id, record.date):
                    raise LedgerError(
                        "bad_ledger_row",
                        f"committed_lines row {n}: order {record.order_id!r} has another customer or date in an earlier row",
                    )
                totals = tuple(a + b for a, b in zip(prev.totals, record.totals, strict=True))
                record = replace(prev, lines=prev.lines + record.lines, totals=totals)  # type: ignore[arg-type]
            by_id[record.order_id] = record
        orders.extend(by_id.values())
        with self.write_lock:
            cur = self._cursor()
            cur.begin()
            try:
                for order in orders:
                    insert_order(cur, order, "imported")
                cur.commit()
            except BaseException:
                cur.rollback()
                raise
            self._changed()
        return len(consumption) + len(lines)


def view_from_names(
    plan: Plan,
    budget_used: Mapping[str, int] | None = None,
    gift_stock_used: Mapping[str, int] | None = None,
    uses: Mapping[tuple[str, str], int] | None = None,
    special_used: Mapping[tuple[str, str, str], tuple[int, int]] | None = None,
    committed_lines: pl.DataFrame | None = None,
) -> LedgerView:
    """A ``LedgerView`` from figures keyed by promotion name (the ledger's own keys), for
    ``plan``: budgets in minor units, gift stock in units, uses as (promotion, customer)
    -> orders. Promotions the plan does not have are left out."""
    ids = {info.name: i for i, info in enumerate(plan.rules)}
    return LedgerView(
        budget_used={ids[n]: v for n, v in (budget_used or {}).items() if n in ids},
        gift_stock_used={ids[n]: v for n, v in (gift_stock_used or {}).items() if n in ids},
        uses={(ids[n], c): v for (n, c), v in (uses or {}).items() if n in ids},
        special_used=dict(special_used or {}),
        committed_lines=committed_lines,
    )


def check_limit(cur: duckdb.DuckDBPyConnection, item: Consumption) -> None:
    if item.limit_qty is None and item.limit_amount is None:
        return
    row = cur.execute(
        "SELECT coalesce(sum(c.qty), 0), coalesce(sum(c.amount), 0)"
        " FROM ledger_consumption c JOIN ledger_orders o USING (order_id)"
        f" WHERE {_LIVE} AND c.kind = ? AND c.promotion IS NOT DISTINCT FROM ?"
        " AND c.customer_id IS NOT DISTINCT FROM ? AND c.project IS NOT DISTINCT FROM ? AND c.sku IS NOT DISTINCT FROM ?",
        [item.kind, item.promotion, item.customer_id, item.project, item.sku],
    ).fetchone()
    used_qty, used_amount = (int(row[0]), int(row[1])) if row else (0, 0)
    if item.limit_qty is not None and item.qty > 0 and used_qty + item.qty > item.limit_qty:
        raise QuotaExhausted(item, used_qty, "qty", item.limit_qty)
    if (
        item.limit_amount is not None
        and item.amount > 0
        and used_amount + item.amount > item.limit_amount
    ):
        raise QuotaExhausted(item, used_amount, "amount", item.limit_amount)


def insert_order(cur: duckdb.DuckDBPyConnection, order: OrderRecord, status: str) -> None:
    cur.execute(
        "INSERT INTO ledger_orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)",
        [order.order_id, order.customer_id, order.project, order.referrer, order.date, order.currency, status, _now(),
         *order.totals, json.dumps(order.response), order.request_digest],
    )  # fmt: skip
    # one multi-row INSERT per table (DuckDB's executemany runs a statement per row)
    for table, width, rows in (
        ("ledger_lines", 10, [[order.order_id, x.line_id, x.sub, x.sku, x.qty, x.list_amount, x.discount, x.net_amount, x.tax, x.special] for x in order.lines]),
        ("ledger_consumption", 8, [[order.order_id, c.kind, c.promotion, c.customer_id, c.project, c.sku, c.qty, c.amount] for c in order.consumption]),
    ):  # fmt: skip
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            values = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * len(chunk))
            cur.execute(f"INSERT INTO {table} VALUES {values}", [v for row in chunk for v in row])


def _key(c: Consumption) -> tuple[str, str | None, str | None, str | None, str | None]:
    return (c.kind, c.promotion, c.customer_id, c.project, c.sku)


def _lines_frame(order: OrderRecord) -> pl.DataFrame:
    """An order's lines as rows of the in-memory committed-lines frame."""
    n = len(order.lines)
    return pl.DataFrame(
        {
            "order_id": [order.order_id] * n, "customer_id": [order.customer_id] * n, "date": [order.date] * n,
            "sku": [x.sku for x in order.lines], "qty": [x.qty for x in order.lines], "amount": [x.net_amount for x in order.lines],
        },
        schema={"order_id": pl.Utf8, "customer_id": pl.Utf8, "date": pl.Date, "sku": pl.Utf8, "qty": pl.Int64, "amount": pl.Int64},
    )  # fmt: skip


# ---- seeding -------------------------------------------------------------------------------


def _text(row: Mapping[str, Any], key: str, where: str, required: bool = True) -> str | None:
    value = row.get(key)
    if value is None or str(value).strip() == "":
        if required:
            raise LedgerError("bad_ledger_row", f"{where}: '{key}' is missing")
        return None
    return str(value).strip()


def _number(parse: Any, text: str | None, where: str, key: str, *args: Any) -> int:
    if text is None:
        return 0
    try:
        value = int(parse(text, *args))
    except (ValueError, ArithmeticError):
        raise LedgerError(
            "bad_ledger_row", f"{where}: '{key}' {text!r} is not a valid figure"
        ) from None
    if value < 0:
        raise LedgerError("bad_ledger_row", f"{where}: '{key}' {text!r} is negative")
    return value


def _whole(text: str | None, where: str, key: str) -> int:
    milli = _number(parse_quantity, text, where, key)
    if milli % 1000:
        raise LedgerError("bad_ledger_row", f"{where}: '{key}' {text!r} is not a whole number")
    return milli // 1000


def _seed_consumption(block: Mapping[str, Any], currency: str) -> Iterable[Consumption]:
    for name, amount in dict(block.get("budget_used") or {}).items():
        yield Consumption(
            "budget",
            promotion=str(name),
            amount=_number(parse_money, str(amount), f"budget_used[{name!r}]", "amount", currency),
        )
    for name, units in dict(block.get("gift_stock_used") or {}).items():
        yield Consumption(
            "gift_stock",
            promotion=str(name),
            qty=_whole(str(units), f"gift_stock_used[{name!r}]", "units"),
        )
    for n, row in enumerate(block.get("uses") or [], start=1):
        where = f"uses row {n}"
        yield Consumption(
            "use", promotion=_text(row, "promotion", where), customer_id=_text(row, "customer_id", where),
            qty=_whole(_text(row, "orders", where), where, "orders"),
        )  # fmt: skip
    for n, row in enumerate(block.get("special_consumed") or [], start=1):
        where = f"special_consumed row {n}"
        yield Consumption(
            "special", customer_id=_text(row, "customer_id", where), project=_text(row, "project", where, required=False) or "",
            sku=_text(row, "sku", where), qty=_number(parse_quantity, _text(row, "qty", where, required=False), where, "qty"),
            amount=_number(parse_money, _text(row, "amount", where, required=False), where, "amount", currency),
        )  # fmt: skip


def _seed_line_order(row: Mapping[str, Any], n: int, stamp: str, currency: str) -> OrderRecord:
    where = f"committed_lines row {n}"
    date_text = _text(row, "date", where)
    try:
        date = dt.date.fromisoformat(str(date_text))
    except ValueError:
        raise LedgerError(
            "bad_ledger_row", f"{where}: 'date' {date_text!r} is not an ISO date"
        ) from None
    qty = _number(parse_quantity, _text(row, "qty", where), where, "qty")
    amount = _number(
        parse_money, _text(row, "amount", where, required=False), where, "amount", currency
    )
    list_amount = (
        _number(
            parse_money,
            _text(row, "list_amount", where, required=False),
            where,
            "list_amount",
            currency,
        )
        or amount
    )
    order_id = _text(row, "order_id", where, required=False) or f"import-{stamp}-{n}"
    line = OrderLine(
        line_id=_text(row, "line_id", where, required=False) or "1", sub=0, sku=str(_text(row, "sku", where)), qty=qty,
        list_amount=list_amount, discount=list_amount - amount, net_amount=amount, tax=0,
        special=str(row.get("special", "")).lower() in ("true", "1", "yes"),
    )  # fmt: skip
    return OrderRecord(
        order_id, _text(row, "customer_id", where), _text(row, "project", where, required=False),
        _text(row, "referrer", where, required=False), date, currency,
        (list_amount, list_amount - amount, amount, 0, amount), {}, (line,),
    )  # fmt: skip

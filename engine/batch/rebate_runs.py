"""Rebate runs kept in the DuckDB store, and deltas against what was already accrued.

    rebate_runs(run_id, period, as_of, accrual, version, history, run_at)
    rebate_results(run_id, partner, policy, kind, period, ..., amount, amount_minor, ...)

Every run is stored whole under a new ``run_id``. A run's ``previous`` for a partner and
policy is the amount of the latest earlier run of the same period (an accrual, or an
earlier final run), and ``delta`` what changed since: re-running with the same history
gives the same amounts and a zero delta.
"""

from __future__ import annotations

import contextlib
import datetime as dt

import polars as pl

from engine.batch.rebates import RESULT_COLUMNS, RunResult
from engine.core.columns import money_text
from engine.ledger.store import Store

_SQL = (
    "CREATE SEQUENCE IF NOT EXISTS rebate_run_seq",
    "CREATE TABLE IF NOT EXISTS rebate_runs (run_id BIGINT PRIMARY KEY, period VARCHAR NOT NULL,"
    " as_of DATE NOT NULL, accrual BOOLEAN NOT NULL, version VARCHAR NOT NULL, history VARCHAR,"
    " run_at TIMESTAMP NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rebate_results (run_id BIGINT NOT NULL, partner VARCHAR, policy VARCHAR,"
    " kind VARCHAR, period VARCHAR, currency VARCHAR, basis VARCHAR, target VARCHAR, attainment VARCHAR,"
    " step VARCHAR, rate VARCHAR, uncapped VARCHAR, amount VARCHAR, explanation VARCHAR, source VARCHAR,"
    " amount_minor BIGINT)",
)

_INCOMING = "__pricer_rebate_rows"


def _ensure(store: Store) -> None:
    cur = store._cursor()
    for sql in _SQL:
        cur.execute(sql)


def _minor(text: pl.Expr) -> pl.Expr:
    """A result amount (always written with the currency's digits) back to minor units."""
    return text.str.replace(".", "", literal=True).cast(pl.Int64)


def previous_amounts(store: Store, period: str) -> pl.DataFrame:
    """partner, policy, previous_minor: the latest stored run of ``period`` per pair."""
    _ensure(store)
    rows = (
        store._cursor()
        .execute(
            "SELECT partner, policy, amount_minor AS previous_minor FROM rebate_results r"
            " WHERE r.period = ? AND r.run_id = (SELECT max(run_id) FROM rebate_results q"
            " WHERE q.period = r.period AND q.policy = r.policy AND q.partner = r.partner)",
            [period],
        )
        .fetchall()
    )
    schema = {"partner": pl.String, "policy": pl.String, "previous_minor": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def with_deltas(store: Store | None, result: RunResult, currency: str) -> pl.DataFrame:
    """The result rows plus ``previous`` and ``delta`` (money rows only; null when the pair
    was never run for this period)."""
    rows = result.rows.with_columns(_minor(pl.col("amount")).alias("amount_minor"))
    if store is None:
        prev = pl.DataFrame(
            schema={"partner": pl.String, "policy": pl.String, "previous_minor": pl.Int64}
        )
    else:
        prev = previous_amounts(store, result.period.label)
    rows = rows.join(prev, on=["partner", "policy"], how="left")
    delta = pl.col("amount_minor") - pl.col("previous_minor")
    return rows.with_columns(
        money_text(pl.col("previous_minor"), currency).alias("previous"),
        money_text(delta, currency).alias("delta"),
    ).drop("previous_minor")


def save_run(
    store: Store, result: RunResult, rows: pl.DataFrame, version: str, history: str
) -> int:
    """Store a run and its rows (with ``amount_minor``); returns the run id."""
    _ensure(store)
    cur = store._cursor()
    with store._lock:
        cur.begin()
        try:
            row = cur.execute("SELECT nextval('rebate_run_seq')").fetchone()
            assert row is not None
            run_id = int(row[0])
            cur.execute(
                "INSERT INTO rebate_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    result.period.label,
                    result.as_of,
                    result.accrual,
                    version,
                    history,
                    dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0),
                ],
            )
            data = rows.select(
                pl.lit(run_id, dtype=pl.Int64).alias("run_id"), *RESULT_COLUMNS, "amount_minor"
            )
            cur.register(_INCOMING, data.to_arrow())
            cur.execute(f"INSERT INTO rebate_results SELECT * FROM {_INCOMING}")
            cur.commit()
        except BaseException:
            cur.rollback()
            raise
        finally:
            with contextlib.suppress(Exception):  # nothing registered when the insert failed early
                cur.unregister(_INCOMING)
    return run_id


def summary(rows: pl.DataFrame, currency: str) -> pl.DataFrame:
    """One row per policy: kind, partners, partners paid, total and (after an earlier run of
    the period) the total change, as text."""
    table = (
        rows.with_columns(_minor(pl.col("delta")).alias("delta_minor"))
        .group_by("policy", "kind")
        .agg(
            pl.len().alias("partners"),
            (pl.col("amount_minor").fill_null(0) > 0).sum().alias("paid"),
            pl.col("amount_minor").sum().alias("total_minor"),
            pl.col("amount_minor").is_not_null().any().alias("money"),
            pl.col("delta_minor").sum().alias("delta_minor"),
            pl.col("delta_minor").is_not_null().any().alias("has_delta"),
        )
        .sort("policy")
    )
    return table.select(
        "policy",
        "kind",
        "partners",
        "paid",
        pl.when(pl.col("money"))
        .then(money_text(pl.col("total_minor"), currency))
        .otherwise(pl.lit(""))
        .alias("total"),
        pl.when(pl.col("has_delta"))
        .then(money_text(pl.col("delta_minor"), currency))
        .otherwise(pl.lit(""))
        .alias("delta"),
    )

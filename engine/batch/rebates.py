"""Rebates, commissions, partner tiers and marketing funds over the order history (SPEC §6).

``engine.api.compile_policies`` turns a ruleset's policy declarations into plain values
(``engine.plan.policies``);
``run_policies`` computes every policy for one period over a ``History`` of lazy typed
frames, columnar end to end: one filtered scan and group-by per policy (polars, streaming)
down to one row per partner, then the tier, cap and rounding arithmetic on int64 arrays
(``engine.core.money``) — no loop over order lines or partners.

One result row per partner and policy (``RESULT_COLUMNS``). Money is int64 minor units
inside and decimal text in the result; the semantics are in docs/rebates.md.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from dsl import tree as t
from dsl.schema import FACT_METRICS, METRICS
from dsl.tree import money_value
from engine.batch.history import History
from engine.core.columns import money_text, percent_text, quantity_text, scaled_column
from engine.core.data import DataError
from engine.core.money import (
    BP_SCALE,
    QTY_DIGITS,
    QTY_SCALE,
    exponent,
    format_money,
    format_percent,
    mul_div_round,
)
from engine.plan.policies import CommissionPolicy, PolicySet, RatePolicy, TierPolicy

PolicyKind = Literal["rebate", "fund", "commission", "tiers"]

RESULT_SCHEMA: dict[str, pl.DataType] = {
    "partner": pl.String(),
    "policy": pl.String(),
    "kind": pl.String(),
    "period": pl.String(),
    "currency": pl.String(),
    "basis": pl.String(),
    "target": pl.String(),
    "attainment": pl.String(),
    "step": pl.String(),
    "rate": pl.String(),
    "uncapped": pl.String(),
    "amount": pl.String(),
    "explanation": pl.String(),
    "source": pl.String(),
}
RESULT_COLUMNS = tuple(RESULT_SCHEMA)


class RebateError(ValueError):
    """Bad input to a run (a period that does not parse, history in another currency)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---- periods -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """A closed date range with its label: ``2026-Q4``, ``2026-11``, ``2026`` or a range."""

    kind: Literal["month", "quarter", "year", "range"]
    label: str
    start: dt.date
    end: dt.date


_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})$")


def parse_period(text: str) -> Period:
    """``2026-Q4``, ``2026-11``, ``2026`` or ``2026-01-01..2026-06-30``."""
    s = text.strip()
    try:
        if m := _QUARTER.match(s):
            year, q = int(m.group(1)), int(m.group(2))
            start = dt.date(year, 3 * q - 2, 1)
            end = dt.date(year, 3 * q, calendar.monthrange(year, 3 * q)[1])
            return Period("quarter", f"{year}-Q{q}", start, end)
        if m := _MONTH.match(s):
            year, month = int(m.group(1)), int(m.group(2))
            return Period(
                "month",
                f"{year}-{month:02d}",
                dt.date(year, month, 1),
                dt.date(year, month, calendar.monthrange(year, month)[1]),
            )
        if m := _YEAR.match(s):
            year = int(m.group(1))
            return Period("year", str(year), dt.date(year, 1, 1), dt.date(year, 12, 31))
        if m := _RANGE.match(s):
            start, end = dt.date.fromisoformat(m.group(1)), dt.date.fromisoformat(m.group(2))
            if start > end:
                raise RebateError("bad_period", f"period {text!r} starts after it ends")
            return Period("range", f"{start.isoformat()}..{end.isoformat()}", start, end)
    except ValueError as exc:
        if isinstance(exc, RebateError):
            raise
        raise RebateError(
            "bad_period", f"period {text!r} is not a calendar period: {exc}"
        ) from None
    raise RebateError(
        "bad_period", f"period {text!r}: write 2026-Q4, 2026-11, 2026 or 2026-01-01..2026-06-30"
    )


def policy_period(spec: t.PeriodSpec | None, run: Period) -> bool:
    """Whether a policy declared with ``spec`` runs for the run period."""
    if spec is None:
        return False
    if spec.kind == "range":
        return run.kind == "range" and (spec.start, spec.end) == (run.start, run.end)
    return spec.kind == run.kind


# ---- conditions as polars expressions --------------------------------------------------------

#: rule field -> history column
LINE_COLUMN = {
    "customer.id": "customer_id",
    "sku": "sku",
    "category": "category",
    "brand": "brand",
    "project": "project",
    "referrer": "referrer",
}


def _column(name: str) -> str:
    return LINE_COLUMN.get(name) or "item__" + name.removeprefix("item.")


def condition_metrics(cond: t.Condition) -> set[str]:
    return {a.field.name for a in t.atoms(cond)}


def condition_columns(cond: t.Condition | None) -> set[str]:

    return set() if cond is None else {_column(a.field.name) for a in t.atoms(cond)}


def _value(lit: t.Literal_, kind: str, currency: str) -> pl.Expr:
    return pl.lit(_raw_value(lit, kind, currency))


def _raw_value(lit: t.Literal_, kind: str, currency: str) -> str | int:
    if isinstance(lit, t.StringLit):
        return lit.value
    if kind == "money":
        return money_value(lit, currency)
    if isinstance(lit, t.NumberLit):
        return int(lit.text)
    raise DataError(f"cannot compare with {lit}")


def to_expr(
    cond: t.Condition, column: Callable[[str], str], kind: Callable[[str], str], currency: str
) -> pl.Expr:
    """A condition as a boolean expression, with docs/language.md's missing-value rules:
    ``==``, ``in``, ``<``... are false on a missing value, ``!=`` and ``not in`` true."""
    if isinstance(cond, t.Compare):
        col = pl.col(column(cond.field.name))
        v = _value(cond.value, kind(cond.field.name), currency)
        ops: dict[str, pl.Expr] = {
            "==": col == v,
            "!=": col != v,
            "<": col < v,
            "<=": col <= v,
            ">": col > v,
            ">=": col >= v,
        }
        return ops[cond.op].fill_null(cond.op == "!=")
    if isinstance(cond, t.InSet):
        col = pl.col(column(cond.field.name))
        values = [_raw_value(v, kind(cond.field.name), currency) for v in cond.values]
        hit = col.is_in(values).fill_null(False)
        return ~hit if cond.negated else hit
    if isinstance(cond, t.Not):
        return ~to_expr(cond.item, column, kind, currency)
    parts = [to_expr(c, column, kind, currency) for c in cond.items]
    return pl.all_horizontal(parts) if isinstance(cond, t.And) else pl.any_horizontal(parts)


# ---- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    rows: pl.DataFrame  # RESULT_SCHEMA
    details: (
        pl.DataFrame
    )  # per-order commission figures: partner, policy, order_id, net, amount, capped
    skipped: tuple[tuple[str, str], ...]  # (policy, why)
    period: Period
    as_of: dt.date
    accrual: bool


Progress = Callable[[int, int, str], None]


def _catalog(policies: PolicySet, needed: set[str]) -> pl.LazyFrame | None:
    cat = policies.data.catalog
    cols = {"category": "category", "brand": "brand"} | {c: c for c in cat.columns}
    wanted = [c for c in needed if c in ("category", "brand") or c.startswith("item__")]
    if not wanted:
        return None
    select = [pl.col("sku")]
    for c in wanted:
        src = c.removeprefix("item__")
        select.append(
            (pl.col(cols[src]) if src in cat.columns else pl.lit(None, dtype=pl.String))
            .cast(pl.String)
            .alias(c)
        )
    return cat.lazy().select(select).unique("sku", keep="first")


def _with_item(frame: pl.LazyFrame, policies: PolicySet, needed: set[str]) -> pl.LazyFrame:
    catalog = _catalog(policies, needed)
    if catalog is None:
        return frame
    return frame.join(catalog, on="sku", how="left")


def _collect(frame: pl.LazyFrame) -> pl.DataFrame:
    return frame.collect(engine="streaming")


def _in_period(period: Period, as_of: dt.date) -> pl.Expr:
    end = min(period.end, as_of)
    return pl.col("date").is_between(pl.lit(period.start), pl.lit(end), closed="both")


def _line_filter(policies: PolicySet, where: t.Condition | None) -> pl.Expr:
    if where is None:
        return pl.lit(True)
    return to_expr(where, _column, lambda _: "text", policies.currency)


def run_policies(
    policies: PolicySet,
    history: History,
    period: Period,
    *,
    as_of: dt.date | None = None,
    partner: str | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Every policy of ``policies`` that runs for ``period``, over ``history``.

    ``as_of`` (default: the period's end) cuts an open period: lines after it are not
    counted and the run is an accrual; only policies marked ``accrual`` run then (a
    commission, a fund and partner tiers always do). ``partner`` restricts to one partner.
    """
    as_of = as_of or period.end
    accrual = as_of < period.end
    runnable: list[RatePolicy | CommissionPolicy | TierPolicy] = []
    skipped: list[tuple[str, str]] = []
    every: list[RatePolicy | CommissionPolicy | TierPolicy] = [
        *policies.rates,
        *policies.commissions,
        *policies.tiers,
    ]
    for p in every:
        if not policy_period(p.period, period):
            declared = (
                "none"
                if p.period is None
                else (
                    p.period.kind
                    if p.period.kind != "range"
                    else f"{p.period.start}..{p.period.end}"
                )
            )
            skipped.append((p.name, f"its period is {declared}, the run's is {period.kind}"))
        elif accrual and isinstance(p, RatePolicy) and p.kind == "rebate" and not p.accrual:
            skipped.append(
                (
                    p.name,
                    f"period {period.label} is open on {as_of}; the rebate is not marked 'accrual'",
                )
            )
        else:
            runnable.append(p)
    lines = history.lines.filter(_in_period(period, as_of))
    returns = history.returns.filter(_in_period(period, as_of))
    events = history.events.filter(_in_period(period, as_of))
    if partner is not None:
        lines = lines.filter((pl.col("customer_id") == partner) | (pl.col("referrer") == partner))
        returns = returns.filter(pl.col("customer_id") == partner)
        events = events.filter(pl.col("partner_id") == partner)
    rates = [p for p in runnable if isinstance(p, RatePolicy)]
    tier_policies = [p for p in runnable if isinstance(p, TierPolicy)]
    wants_tiers = bool(tier_policies)
    # distinct orders per partner cost a hash set each: only when a level reads them
    wants_orders = any(
        "orders" in condition_metrics(cond) for p in tier_policies for _, cond in p.levels
    )
    if progress is not None:
        progress(0, len(runnable) + 1, "scanning the history")
    # one scan of the lines (and one of the returns) feeds every rebate, fund and tier policy
    agg = _aggregate(policies, rates, wants_tiers, wants_orders, lines, returns)
    frames: list[pl.DataFrame] = []
    details: list[pl.DataFrame] = []
    for i, p in enumerate(runnable):
        if progress is not None:
            progress(i + 1, len(runnable) + 1, p.name)
        if isinstance(p, RatePolicy):
            frames.append(_rate_policy(policies, p, rates.index(p), agg, period))
        elif isinstance(p, CommissionPolicy):
            rows, detail = _commission(policies, p, lines, events, period)
            frames.append(rows)
            details.append(detail)
        else:
            frames.append(_tier_policy(policies, p, agg, events, period))
    if progress is not None:
        progress(len(runnable) + 1, len(runnable) + 1, "done")
    rows = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=RESULT_SCHEMA)
    if partner is not None:
        rows = rows.filter(pl.col("partner") == partner)
    rows = rows.sort("policy", "partner")
    detail_frame = (
        pl.concat(details, how="vertical") if details else pl.DataFrame(schema=DETAIL_SCHEMA)
    )
    if partner is not None:
        detail_frame = detail_frame.filter(pl.col("partner") == partner)
    return RunResult(
        rows=rows,
        details=detail_frame.sort("policy", "partner", "order_id"),
        skipped=tuple(skipped),
        period=period,
        as_of=as_of,
        accrual=accrual,
    )


def _check_currency(lines: pl.LazyFrame, returns: pl.LazyFrame, currency: str) -> None:
    other = _collect(
        pl.concat([lines.select("currency"), returns.select("currency")])
        .filter(pl.col("currency") != currency)
        .group_by("currency")
        .len()
        .sort("currency")
    )
    if other.height:
        found = ", ".join(f"{r['len']} in {r['currency']}" for r in other.iter_rows(named=True))
        raise RebateError(
            "currency_mismatch",
            f"the history has rows in another currency than the ruleset's {currency} ({found}); "
            "rebates are computed in the ruleset currency: convert those rows before the run",
        )


# ---- rebates and funds ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Aggregates:
    """Per customer, from one scan of the lines and one of the returns: for rate policy i,
    ``b{i}``/``n{i}`` (counted basis and lines) and ``rb{i}``/``rn{i}`` (returned), plus
    ``purchases``, ``orders`` and ``returns`` for partner tiers."""

    lines: pl.DataFrame
    returns: pl.DataFrame


def _keep(policies: PolicySet, p: RatePolicy) -> pl.Expr:
    keep = _line_filter(policies, p.where)
    return keep if p.includes_special else keep & ~pl.col("special")


def _aggregate(
    policies: PolicySet,
    rates: list[RatePolicy],
    wants_tiers: bool,
    wants_orders: bool,
    lines: pl.LazyFrame,
    returns: pl.LazyFrame,
) -> _Aggregates:
    cur = policies.currency
    needed: set[str] = set().union(*(condition_columns(p.where) for p in rates)) if rates else set()
    other = (pl.col("currency") != cur).fill_null(False).sum().alias("__other")
    aggs = [other]
    for i, p in enumerate(rates):
        keep = _keep(policies, p)
        value = pl.col("net_amount" if p.measure == "net_amount" else "qty")
        aggs += [
            pl.when(keep).then(value).otherwise(0).sum().cast(pl.Int64).alias(f"b{i}"),
            keep.sum().cast(pl.Int64).alias(f"n{i}"),
        ]
    if wants_tiers:
        orders = (
            pl.col("order_id").n_unique() if wants_orders else pl.lit(None, dtype=pl.Int64).first()
        )
        aggs += [
            pl.col("net_amount").sum().cast(pl.Int64).alias("purchases"),
            orders.cast(pl.Int64).alias("orders"),
        ]
    line_agg = _collect(_with_item(lines, policies, needed).group_by("customer_id").agg(aggs))
    r = returns
    order_fields = needed & {"project", "referrer"}
    if order_fields or any(p.minus_returns and not p.includes_special for p in rates):
        # a return takes its order's project/referrer, and is of a special-price line when its
        # order's line of that SKU was one (only the returned orders' lines are grouped)
        per_order = (
            lines.join(returns.select("order_id").unique(), on="order_id", how="semi")
            .group_by("order_id", "sku")
            .agg(pl.col("special").any(), *(pl.col(c).first() for c in sorted(order_fields)))
        )
        r = r.join(per_order, on=["order_id", "sku"], how="left").with_columns(
            pl.col("special").fill_null(False)
        )
    else:
        r = r.with_columns(pl.lit(False).alias("special"))
    for c in ("project", "referrer"):
        if c in needed and c not in order_fields:
            r = r.with_columns(pl.lit(None, dtype=pl.String).alias(c))
    raggs = [other, pl.col("net_amount").sum().cast(pl.Int64).alias("returns")]
    for i, p in enumerate(rates):
        if p.minus_returns:
            keep = _keep(policies, p)
            value = pl.col("net_amount" if p.measure == "net_amount" else "qty")
            raggs += [
                pl.when(keep).then(value).otherwise(0).sum().cast(pl.Int64).alias(f"rb{i}"),
                keep.sum().cast(pl.Int64).alias(f"rn{i}"),
            ]
    ret_agg = _collect(_with_item(r, policies, needed).group_by("customer_id").agg(raggs))
    if line_agg["__other"].sum() or ret_agg["__other"].sum():
        _check_currency(lines, returns, cur)
    return _Aggregates(lines=line_agg, returns=ret_agg)


def _basis_frame(p: RatePolicy, i: int, agg: _Aggregates) -> pl.DataFrame:
    """customer_id, purchases, returned (basis units), one row per customer with a counted
    line or return."""
    bought = agg.lines.select(
        "customer_id", pl.col(f"b{i}").alias("purchases"), pl.col(f"n{i}").alias("n")
    )
    if p.minus_returns:
        back = agg.returns.select(
            "customer_id", pl.col(f"rb{i}").alias("returned"), pl.col(f"rn{i}").alias("rn")
        )
        frame = bought.join(back, on="customer_id", how="full", coalesce=True)
    else:
        frame = bought.with_columns(
            pl.lit(0, dtype=pl.Int64).alias("returned"), pl.lit(0, dtype=pl.Int64).alias("rn")
        )
    frame = frame.with_columns(pl.col(c).fill_null(0) for c in ("purchases", "n", "returned", "rn"))
    return frame.filter((pl.col("n") + pl.col("rn")) > 0).select(
        "customer_id", "purchases", "returned"
    )


def _targets(policies: PolicySet, p: RatePolicy, period: Period) -> pl.DataFrame | None:
    """customer_id, target (basis units) for the period, from the policy's table."""
    if p.target_table is None:
        return None
    table = policies.data.tables.get(p.target_table)
    if table is None:
        raise RebateError(
            "unknown_table", f"rebate '{p.name}': target table '{p.target_table}' is not loaded"
        )
    rows = table.filter(
        pl.col("period").str.strip_chars().str.to_uppercase() == period.label.upper()
    )
    digits = QTY_DIGITS if p.measure == "qty" else exponent(policies.currency)
    values, ok = scaled_column(rows["target"], digits)
    if not ok.all():
        bad = rows.filter(pl.Series(~ok)).row(0, named=True)
        what = "a quantity" if p.measure == "qty" else f"an amount in {policies.currency}"
        raise RebateError(
            "bad_target",
            f"table {p.target_table}: target {bad['target']!r} of {bad['customer_id']} for {period.label} is not {what}",
        )
    if rows["customer_id"].n_unique() != rows.height:
        dup = rows.filter(pl.col("customer_id").is_duplicated())["customer_id"][0]
        raise RebateError(
            "bad_target", f"table {p.target_table}: two targets for {dup} in {period.label}"
        )
    return pl.DataFrame(
        {
            "customer_id": rows["customer_id"].cast(pl.String),
            "target": pl.Series(values, dtype=pl.Int64),
        }
    )


def _rate_policy(
    policies: PolicySet, p: RatePolicy, i: int, agg: _Aggregates, period: Period
) -> pl.DataFrame:
    cur, mode = policies.currency, policies.rounding
    frame = _basis_frame(p, i, agg)
    targets = _targets(policies, p, period)
    if targets is not None:
        frame = frame.join(targets, on="customer_id", how="full", coalesce=True).with_columns(
            pl.col("purchases").fill_null(0), pl.col("returned").fill_null(0)
        )
    else:
        frame = frame.with_columns(pl.lit(p.target_value, dtype=pl.Int64).alias("target"))
    frame = frame.sort("customer_id")
    n = frame.height
    purchases = frame["purchases"].to_numpy().astype(np.int64)
    returned = frame["returned"].to_numpy().astype(np.int64)
    basis = np.maximum(purchases - returned, 0)
    target_s = frame["target"]
    has_target = (~target_s.is_null()).to_numpy() & (target_s.fill_null(0).to_numpy() > 0)
    target = target_s.fill_null(0).to_numpy().astype(np.int64)
    thresholds = np.array(p.thresholds, dtype=np.int64)
    rates = np.array(p.rates, dtype=np.int64)
    # the comparable measure: the basis, or the attainment against basis points of target
    if p.by == "attainment":
        # basis / target >= bp / 10000  <=>  basis * 10000 >= bp * target (exact, as Python ints
        # when large figures could overflow)
        reached = np.zeros((n, len(thresholds)), dtype=bool)
        for j, bp in enumerate(p.thresholds):
            reached[:, j] = has_target & _ge_products(basis, BP_SCALE, target, bp)
    else:
        reached = basis[:, None] >= thresholds[None, :]
    step = np.where(
        reached.any(axis=1), reached.shape[1] - 1 - np.argmax(reached[:, ::-1], axis=1), -1
    )
    denominator = BP_SCALE if p.measure == "net_amount" else QTY_SCALE
    if p.mode == "retroactive":
        rate = np.where(step >= 0, rates[np.maximum(step, 0)], 0)
        uncapped = mul_div_round(basis, rate, denominator, mode)
    else:
        if p.by == "attainment":
            edges = (
                np.stack(
                    [
                        mul_div_round(target, np.full(n, bp, dtype=np.int64), BP_SCALE, mode)
                        for bp in p.thresholds
                    ],
                    axis=1,
                )
                if n
                else np.zeros((0, len(p.thresholds)), dtype=np.int64)
            )
        else:
            edges = np.broadcast_to(thresholds, (n, len(thresholds)))
        uncapped = np.zeros(n, dtype=np.int64)
        for j in range(len(p.thresholds)):
            low = edges[:, j]
            high = (
                edges[:, j + 1] if j + 1 < len(p.thresholds) else np.full(n, np.iinfo(np.int64).max)
            )
            band = np.clip(basis, low, high) - low
            if p.by == "attainment":
                band = np.where(has_target, band, 0)
            uncapped = uncapped + mul_div_round(
                np.maximum(band, 0), np.full(n, rates[j], dtype=np.int64), denominator, mode
            )
    amount = uncapped.copy()
    capped = np.zeros(n, dtype=bool)
    if p.cap is not None:
        capped = amount > p.cap
        amount = np.minimum(amount, p.cap)
    below_min = np.zeros(n, dtype=bool)
    if p.minimum is not None:
        below_min = (amount > 0) & (amount < p.minimum)
        amount = np.where(below_min, 0, amount)
    t_ = pl.DataFrame(
        {
            "partner": frame["customer_id"],
            "basis_m": basis,
            "returned_m": returned,
            "target_m": target,
            "has_target": has_target,
            "step_i": step.astype(np.int64),
            "uncapped_m": uncapped,
            "amount_m": amount,
            "capped": capped,
            "below_min": below_min,
            "attain_bp": _attainment_bp(basis, target, has_target),
        }
    )
    qty = p.measure == "qty"
    basis_t = quantity_text(pl.col("basis_m")) if qty else money_text(pl.col("basis_m"), cur)
    returned_t = (
        quantity_text(pl.col("returned_m")) if qty else money_text(pl.col("returned_m"), cur)
    )
    target_t = pl.when(pl.col("has_target")).then(
        quantity_text(pl.col("target_m")) if qty else money_text(pl.col("target_m"), cur)
    )
    attain_t = pl.when(pl.col("has_target")).then(percent_text(pl.col("attain_bp")))
    got_step = pl.col("step_i") >= 0
    step_t = (
        pl.when(got_step).then(_pick(pl.col("step_i"), [">= " + x for x in p.threshold_texts]))
        if p.kind == "rebate"
        else pl.lit(None, dtype=pl.String)
    )
    rates_t = (
        [" / ".join(p.rate_texts[: k + 1]) for k in range(len(p.rate_texts))]
        if p.mode == "incremental"
        else list(p.rate_texts)
    )
    rate_t = pl.when(got_step).then(_pick(pl.col("step_i"), rates_t))
    uncapped_t, amount_t = (
        money_text(pl.col("uncapped_m"), cur),
        money_text(pl.col("amount_m"), cur),
    )
    what = "quantity" if qty else "net purchases"
    head = pl.concat_str(pl.lit(f"{what} "), basis_t)
    if p.minus_returns:
        head = head + pl.when(pl.col("returned_m") != 0).then(
            pl.concat_str(pl.lit(" after "), returned_t, pl.lit(" returned"))
        ).otherwise(pl.lit(""))
    if p.by == "attainment":
        head = head + pl.when(pl.col("has_target")).then(
            pl.concat_str(pl.lit(" = "), attain_t, pl.lit(" of target "), target_t)
        ).otherwise(pl.lit(""))
    if p.kind == "fund":
        earned = pl.concat_str(pl.lit("; "), rate_t, pl.lit(" accrued = "), uncapped_t)
    elif p.mode == "retroactive":
        earned = pl.concat_str(
            pl.lit("; reached "),
            step_t,
            pl.lit(": "),
            rate_t,
            pl.lit(" on the whole basis = "),
            uncapped_t,
        )
    else:
        bands = pl.concat_str(
            (pl.col("step_i") + 1).cast(pl.String),
            pl.when(pl.col("step_i") > 0).then(pl.lit(" bands")).otherwise(pl.lit(" band")),
        )
        earned = pl.concat_str(
            pl.lit("; "),
            bands,
            pl.lit(" ("),
            rate_t,
            pl.lit("), each rate on its slice = "),
            uncapped_t,
        )
    tail = (
        pl.when(pl.col("capped"))
        .then(pl.concat_str(pl.lit("; capped at "), amount_t, pl.lit(" per customer")))
        .otherwise(pl.lit(""))
    )
    if p.minimum is not None:
        tail = tail + pl.when(pl.col("below_min")).then(
            pl.lit(f"; below the minimum payout {format_money(p.minimum, cur)}, nothing paid")
        ).otherwise(pl.lit(""))
    explanation = (
        pl.when(pl.lit(p.by == "attainment") & ~pl.col("has_target"))
        .then(head + pl.lit("; no target for the period, no rebate"))
        .when(~got_step)
        .then(head + pl.lit(f"; below the first step (>= {p.threshold_texts[0]}), nothing earned"))
        .otherwise(head + earned + tail)
    )
    return t_.select(
        "partner",
        pl.lit(p.name).alias("policy"),
        pl.lit(p.kind).alias("kind"),
        pl.lit(period.label).alias("period"),
        pl.lit(cur).alias("currency"),
        basis_t.alias("basis"),
        target_t.alias("target"),
        (
            attain_t
            if p.by == "attainment" or p.target_table or p.target_value
            else pl.lit(None, dtype=pl.String)
        ).alias("attainment"),
        step_t.alias("step"),
        rate_t.alias("rate"),
        uncapped_t.alias("uncapped"),
        amount_t.alias("amount"),
        explanation.alias("explanation"),
        pl.lit(p.source).alias("source"),
    ).cast(RESULT_SCHEMA)  # type: ignore[arg-type]


def _pick(index: pl.Expr, texts: list[str]) -> pl.Expr:
    """texts[index] (index >= 0), vectorized."""
    return index.replace_strict(
        list(range(len(texts))), texts, default=None, return_dtype=pl.String
    )


def _attainment_bp(basis: np.ndarray, target: np.ndarray, has_target: np.ndarray) -> np.ndarray:
    """floor(basis * 10000 / target) in basis points (0 without a target), exactly."""
    safe = np.where(has_target, target, 1)
    if len(basis) == 0 or int(np.abs(basis).max()) < (1 << 62) // BP_SCALE:
        return np.where(has_target, basis * BP_SCALE // safe, 0)
    return np.array(
        [
            int(b) * BP_SCALE // int(t_) if h else 0
            for b, t_, h in zip(basis, safe, has_target, strict=True)
        ],
        dtype=np.int64,
    )


def _ge_products(a: np.ndarray, a_scale: int, b: np.ndarray, b_scale: int) -> np.ndarray:
    """a * a_scale >= b * b_scale, exactly (object ints where int64 could overflow)."""
    limit = (1 << 62) // max(a_scale, b_scale, 1)
    if (np.abs(a) < limit).all() and (np.abs(b) < limit).all():
        out: np.ndarray = a * a_scale >= b * b_scale
        return out
    return np.array(
        [int(x) * a_scale >= int(y) * b_scale for x, y in zip(a, b, strict=True)], dtype=bool
    )


# ---- commissions -----------------------------------------------------------------------------

DETAIL_SCHEMA: dict[str, pl.DataType] = {
    "partner": pl.String(),
    "policy": pl.String(),
    "order_id": pl.String(),
    "net": pl.String(),
    "amount": pl.String(),
    "capped": pl.Boolean(),
}


def _commission(
    policies: PolicySet,
    p: CommissionPolicy,
    lines: pl.LazyFrame,
    events: pl.LazyFrame,
    period: Period,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    cur, mode = policies.currency, policies.rounding
    who = "referrer" if p.beneficiary == "referrer" else "customer_id"
    orders = pl.DataFrame(schema={"partner": pl.String, "order_id": pl.String, "net": pl.Int64})
    if p.percent is not None:
        needed = condition_columns(p.where)
        orders = _collect(
            _with_item(lines, policies, needed)
            .filter(_line_filter(policies, p.where) & pl.col(who).is_not_null())
            .group_by(pl.col(who).alias("partner"), "order_id")
            .agg(pl.col("net_amount").sum().alias("net"))
            .sort("partner", "order_id")
        )
    net = orders["net"].to_numpy().astype(np.int64)
    per_order = (
        mul_div_round(net, np.full(len(net), p.percent or 0, dtype=np.int64), BP_SCALE, mode)
        if len(net)
        else np.zeros(0, dtype=np.int64)
    )
    capped = per_order > p.cap_order if p.cap_order is not None else np.zeros(len(net), dtype=bool)
    if p.cap_order is not None:
        per_order = np.minimum(per_order, p.cap_order)
    detail = orders.with_columns(
        pl.Series("amount_m", per_order, dtype=pl.Int64),
        pl.Series("capped", capped, dtype=pl.Boolean),
    ).select(
        "partner",
        pl.lit(p.name).alias("policy"),
        "order_id",
        money_text(pl.col("net"), cur).alias("net"),
        money_text(pl.col("amount_m"), cur).alias("amount"),
        "capped",
    )
    by_partner = (
        orders.with_columns(
            pl.Series("commission", per_order, dtype=pl.Int64), pl.Series("capped", capped)
        )
        .group_by("partner")
        .agg(
            pl.len().alias("orders"),
            pl.col("net").sum(),
            pl.col("commission").sum(),
            pl.col("capped").sum().alias("orders_capped"),
        )
    )
    if p.rewards:
        rewards = pl.DataFrame(
            {"kind": [k for k, _ in p.rewards], "reward": [v for _, v in p.rewards]},
            schema={"kind": pl.String, "reward": pl.Int64},
        )
        ev = _collect(
            events.join(rewards.lazy(), on="kind", how="inner")
            .group_by(pl.col("partner_id").alias("partner"), "kind")
            .agg(pl.len().alias("count"), pl.col("reward").first())
        )
        ev = ev.with_columns(
            pl.Series(
                "earned",
                mul_div_round(
                    ev["count"].to_numpy().astype(np.int64),
                    ev["reward"].to_numpy().astype(np.int64),
                    1,
                    mode,
                )
                if ev.height
                else np.zeros(0, dtype=np.int64),
                dtype=pl.Int64,
            )
        )
        ev_sum = (
            ev.sort("kind")
            .group_by("partner")
            .agg(
                pl.col("earned").sum().alias("events_earned"),
                pl.format("{} {}", pl.col("count"), pl.col("kind"))
                .str.join(", ")
                .alias("event_text"),
            )
        )
        by_partner = by_partner.join(ev_sum, on="partner", how="full", coalesce=True)
    else:
        by_partner = by_partner.with_columns(
            pl.lit(0, dtype=pl.Int64).alias("events_earned"),
            pl.lit(None, dtype=pl.String).alias("event_text"),
        )
    by_partner = by_partner.with_columns(
        pl.col("orders").fill_null(0),
        pl.col("net").fill_null(0),
        pl.col("commission").fill_null(0),
        pl.col("orders_capped").fill_null(0),
        pl.col("events_earned").fill_null(0),
    ).sort("partner")
    total = (by_partner["commission"] + by_partner["events_earned"]).to_numpy().astype(np.int64)
    amount = np.minimum(total, p.cap_period) if p.cap_period is not None else total
    frame = by_partner.with_columns(
        pl.Series("total", total, dtype=pl.Int64), pl.Series("amount_m", amount, dtype=pl.Int64)
    )
    parts: list[pl.Expr] = []
    if p.percent is not None:
        plural_s = pl.when(pl.col("orders") != 1).then(pl.lit("s")).otherwise(pl.lit(""))
        capped_t = (
            pl.when(pl.col("orders_capped") > 0)
            .then(
                pl.concat_str(
                    pl.lit(", "),
                    pl.col("orders_capped").cast(pl.String),
                    pl.lit(f" capped at {format_money(p.cap_order or 0, cur)} per order"),
                )
            )
            .otherwise(pl.lit(""))
        )
        on_orders = pl.concat_str(
            pl.col("orders").cast(pl.String),
            pl.lit(" order"),
            plural_s,
            pl.lit(" net "),
            money_text(pl.col("net"), cur),
            pl.lit(f" at {format_percent(p.percent)}"),
            capped_t,
            pl.lit(" = "),
            money_text(pl.col("commission"), cur),
        )
        parts.append(pl.when(pl.col("orders") > 0).then(on_orders))
    if p.rewards:
        parts.append(
            pl.when(pl.col("event_text").is_not_null()).then(
                pl.concat_str(
                    pl.col("event_text"), pl.lit(" = "), money_text(pl.col("events_earned"), cur)
                )
            )
        )
    joined = pl.concat_str(parts, separator="; ", ignore_nulls=True) if parts else pl.lit("")
    explanation = pl.when(joined == "").then(pl.lit("nothing earned")).otherwise(joined) + pl.when(
        pl.col("amount_m") < pl.col("total")
    ).then(
        pl.concat_str(
            pl.lit("; "),
            money_text(pl.col("total"), cur),
            pl.lit(" capped at "),
            money_text(pl.col("amount_m"), cur),
            pl.lit(" per period"),
        )
    ).otherwise(pl.lit(""))
    rows = frame.select(
        "partner",
        pl.lit(p.name).alias("policy"),
        pl.lit("commission").alias("kind"),
        pl.lit(period.label).alias("period"),
        pl.lit(cur).alias("currency"),
        money_text(pl.col("net"), cur).alias("basis"),
        pl.lit(None, dtype=pl.String).alias("target"),
        pl.lit(None, dtype=pl.String).alias("attainment"),
        pl.lit(None, dtype=pl.String).alias("step"),
        pl.lit(format_percent(p.percent) if p.percent is not None else None, dtype=pl.String).alias(
            "rate"
        ),
        money_text(pl.col("total"), cur).alias("uncapped"),
        money_text(pl.col("amount_m"), cur).alias("amount"),
        explanation.alias("explanation"),
        pl.lit(p.source).alias("source"),
    )
    return rows, detail


# ---- partner tiers ---------------------------------------------------------------------------


def _tier_policy(
    policies: PolicySet, p: TierPolicy, agg: _Aggregates, events: pl.LazyFrame, period: Period
) -> pl.DataFrame:

    cur = policies.currency
    bought = agg.lines.lazy().select(pl.col("customer_id").alias("partner"), "purchases", "orders")
    back = agg.returns.lazy().select(pl.col("customer_id").alias("partner"), "returns")
    counts = events.group_by(pl.col("partner_id").alias("partner")).agg(
        (pl.col("kind") == "lead_submitted").sum().alias("leads_submitted"),
        (pl.col("kind") == "lead_converted").sum().alias("leads_converted"),
        (pl.col("kind") == "merchant_referred").sum().alias("merchants_referred"),
        (pl.col("kind") == "partner_recruited").sum().alias("partners_recruited"),
    )
    metrics = _collect(
        bought.join(back, on="partner", how="full", coalesce=True).join(
            counts, on="partner", how="full", coalesce=True
        )
    )
    facts = policies.data.tables.get("partner_facts")
    if facts is not None and "certified_staff" in facts.columns:
        f = facts.filter(
            pl.col("period").str.strip_chars().str.to_uppercase() == period.label.upper()
        ).select(
            pl.col("partner_id").alias("partner"),
            pl.col("certified_staff").str.strip_chars().cast(pl.Int64, strict=False),
        )
        metrics = metrics.join(f, on="partner", how="full", coalesce=True)
    else:
        metrics = metrics.with_columns(pl.lit(None, dtype=pl.Int64).alias("certified_staff"))
    fill = [
        c
        for c in (*METRICS, *FACT_METRICS)
        if c in metrics.columns and c != "net_purchases" and c != "certified_staff"
    ]
    metrics = (
        metrics.with_columns(pl.col(c).fill_null(0).cast(pl.Int64) for c in fill)
        .with_columns((pl.col("purchases") - pl.col("returns")).alias("net_purchases"))
        .filter(pl.col("partner").is_not_null())
        .sort("partner")
    )
    kinds = dict(METRICS) | {m: "count" for m in FACT_METRICS}
    level = pl.lit(p.default, dtype=pl.String)
    for name, cond in reversed(p.levels):
        level = (
            pl.when(to_expr(cond, lambda f: f, lambda f: kinds[f], cur))
            .then(pl.lit(name))
            .otherwise(level)
        )
    out = metrics.with_columns(level.alias("level"))
    figures: list[pl.Expr] = [
        pl.concat_str(pl.lit("purchases "), money_text(pl.col("purchases"), cur))
    ]
    figures.append(
        pl.when(pl.col("returns") != 0).then(
            pl.concat_str(pl.lit("returns "), money_text(pl.col("returns"), cur))
        )
    )
    for m in ("leads_submitted", "leads_converted", "merchants_referred", "partners_recruited"):
        figures.append(
            pl.when(pl.col(m) != 0).then(
                pl.concat_str(pl.lit(m.replace("_", " ") + " "), pl.col(m).cast(pl.String))
            )
        )
    figures.append(
        pl.when(pl.col("certified_staff").is_not_null()).then(
            pl.concat_str(pl.lit("certified staff "), pl.col("certified_staff").cast(pl.String))
        )
    )
    said = pl.concat_str(figures, separator=", ", ignore_nulls=True)
    names = [lv for lv, _ in p.levels]
    why = [
        f"; highest level that holds: {name}" + (f"; not {', '.join(names[:k])}" if k else "")
        for k, name in enumerate(names)
    ]
    reason = (
        pl.when(pl.col("level").is_null())
        .then(pl.lit("; no level holds and there is no default"))
        .when(pl.col("level").is_in(names))
        .then(pl.col("level").replace_strict(names, why, default=None, return_dtype=pl.String))
        .otherwise(pl.concat_str(pl.lit("; no level holds: default "), pl.col("level")))
    )
    return out.select(
        "partner",
        pl.lit(p.name).alias("policy"),
        pl.lit("tiers").alias("kind"),
        pl.lit(period.label).alias("period"),
        pl.lit(cur).alias("currency"),
        money_text(pl.col("purchases"), cur).alias("basis"),
        pl.lit(None, dtype=pl.String).alias("target"),
        pl.lit(None, dtype=pl.String).alias("attainment"),
        pl.col("level").alias("step"),
        pl.lit(None, dtype=pl.String).alias("rate"),
        pl.lit(None, dtype=pl.String).alias("uncapped"),
        pl.lit(None, dtype=pl.String).alias("amount"),
        (said + reason).alias("explanation"),
        pl.lit(p.source).alias("source"),
    )

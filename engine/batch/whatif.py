"""What-if on history: re-price past orders under two rulesets and compare (``pricer diff``).

Every historical order becomes one cart (its date, customer, project and currency; tier,
region and group from a customers table when one is given) with its lines (SKU, base
quantity), and both plans price all carts with the batch engine (the ``price_frames``
path: ``batch_from_frames`` → ``price`` → ``priced_frame``, plus the adjustment rows so
the discount can be split by rule). The comparison is columnar: joins and group-bys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.plan.compiled import Plan
from engine.pricing.pipeline import price
from engine.results.frames import batch_from_frames, output_positions, priced_frame

MANUAL = "manual discount"


def _carts_and_lines(
    lines: pl.DataFrame, customers: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    carts = (
        lines.group_by("order_id", maintain_order=True)
        .agg(
            pl.col("date").first(),
            pl.col("customer_id").first(),
            pl.col("project").first(),
            pl.col("currency").first(),
        )
        .rename({"order_id": "cart_id"})
    )
    if customers is not None and customers.height:
        key = "id" if "id" in customers.columns else "customer_id"
        extra = [c for c in customers.columns if c not in (key, "name")]
        table = customers.select(
            pl.col(key).alias("customer_id"), *(pl.col(c).alias(f"customer_{c}") for c in extra)
        ).unique("customer_id", keep="first")
        carts = carts.join(table, on="customer_id", how="left")
    qty = pl.col("qty")
    text = pl.format("{}.{}", qty // 1000, (qty % 1000).cast(pl.String).str.zfill(3))
    line_frame = lines.select(
        pl.col("order_id").alias("cart_id"),
        pl.col("line_id").cast(pl.String),
        "sku",
        text.alias("qty"),
    )
    return carts, line_frame


def reprice(
    plan: Plan, lines: pl.DataFrame, customers: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(priced lines: order_id, line_id, sku, status, list/discount/net minor units;
    discount by rule: row (line position), rule, amount minor units)."""
    carts, line_frame = _carts_and_lines(lines, customers)
    batch = batch_from_frames(plan, carts, line_frame)
    priced = price(plan, batch, None)
    out = priced_frame(plan, batch, priced, carts)
    names = [r.name for r in plan.rules]
    adj = priced.adjustments
    rule = adj.rule
    known = (rule >= 0) & (rule < len(names))
    rule_names = np.where(
        known, np.array(names + [MANUAL], dtype=object)[np.where(known, rule, len(names))], MANUAL
    )
    positions = output_positions(batch, priced)
    rows = adj.line.astype(np.int64) if positions is None else positions[adj.line]
    by_rule = pl.DataFrame(
        {
            "row": rows,
            "rule": pl.Series(rule_names.tolist(), dtype=pl.String),
            "amount": adj.amount.astype(np.int64),
        }
    )
    return out.rename({"cart_id": "order_id"}), by_rule


@dataclass(frozen=True)
class Diff:
    lines: pl.DataFrame  # one row per history line, old and new figures (minor units)
    by_partner: pl.DataFrame
    by_sku: pl.DataFrame
    by_rule: pl.DataFrame
    totals: pl.DataFrame


FIGURES = ("list", "discount", "net")


def diff(old: Plan, new: Plan, lines: pl.DataFrame, customers: pl.DataFrame | None = None) -> Diff:
    """Both plans over the same lines; money in minor units of each line's currency."""
    o, o_rules = reprice(old, lines, customers)
    n, n_rules = reprice(new, lines, customers)
    base = lines.select(
        "order_id",
        pl.col("line_id").cast(pl.String),
        "customer_id",
        "sku",
        "currency",
        pl.col("net_amount").alias("booked_net"),
    )

    def side(frame: pl.DataFrame, tag: str) -> pl.DataFrame:
        return frame.select(
            pl.col("status").alias(f"status_{tag}"),
            pl.col("list_amount_minor").alias(f"list_{tag}"),
            pl.col("discount_minor").alias(f"discount_{tag}"),
            pl.col("net_amount_minor").alias(f"net_{tag}"),
        )

    joined = pl.concat([base, side(o, "old"), side(n, "new")], how="horizontal").with_columns(
        (pl.col("net_new") - pl.col("net_old")).alias("net_delta")
    )
    ok = (pl.col("status_old") == "ok") & (pl.col("status_new") == "ok")

    def group(keys: list[str]) -> pl.DataFrame:
        return (
            joined.group_by(keys)
            .agg(
                pl.len().alias("lines"),
                (pl.col("net_delta") != 0).sum().alias("changed"),
                (~ok).sum().alias("errors"),
                *(pl.col(f"{f}_{t}").sum() for f in FIGURES for t in ("old", "new")),
                pl.col("net_delta").sum(),
            )
            .sort(pl.col("net_delta").abs(), *keys, descending=[True, *([False] * len(keys))])
        )

    currency = joined.select("currency").with_row_index("row")
    rules = (
        pl.concat(
            [
                o_rules.join(currency, on="row")
                .group_by("rule", "currency")
                .agg(pl.col("amount").sum().alias("discount_old")),
                n_rules.join(currency, on="row")
                .group_by("rule", "currency")
                .agg(pl.col("amount").sum().alias("discount_new")),
            ],
            how="diagonal",
        )
        .group_by("rule", "currency")
        .agg(pl.col("discount_old").sum(), pl.col("discount_new").sum())
        .with_columns((pl.col("discount_new") - pl.col("discount_old")).alias("discount_delta"))
        .sort(pl.col("discount_delta").abs(), "rule", descending=[True, False])
    )
    return Diff(
        lines=joined,
        by_partner=group(["customer_id", "currency"]),
        by_sku=group(["sku", "currency"]),
        by_rule=rules,
        totals=group(["currency"]),
    )

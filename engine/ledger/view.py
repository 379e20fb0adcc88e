"""What the ledger tells a quote: how much of each promotion's budget, gift stock and
per-customer uses, and of each special price's quotas, committed orders already consumed,
and the committed lines cumulative promotions count (read-only; only commits write).

A quote prices against one ``LedgerView`` (a snapshot); ``None`` means an empty ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

#: the columns of ``LedgerView.committed_lines`` (one row per committed, not cancelled,
#: order line): customer_id Utf8, date Date, sku Utf8, qty Int64 (thousandths of the base
#: unit), amount Int64 (net, minor units of the ruleset currency)
COMMITTED_LINE_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.Utf8(),
    "date": pl.Date(),
    "sku": pl.Utf8(),
    "qty": pl.Int64(),
    "amount": pl.Int64(),
}


@dataclass(frozen=True)
class LedgerView:
    budget_used: dict[int, int] = field(default_factory=dict)  # rule id -> minor units
    gift_stock_used: dict[int, int] = field(default_factory=dict)  # rule id -> units
    uses: dict[tuple[int, str], int] = field(default_factory=dict)  # (rule id, customer) -> orders
    #: (customer id, project or "", sku) -> (qty in thousandths of the base unit, amount in
    #: minor units of the ruleset currency) consumed from that special price's quotas
    special_used: dict[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)
    #: committed order lines (COMMITTED_LINE_SCHEMA), for cumulative conditions
    committed_lines: pl.DataFrame | None = None
    #: customer id -> what live committed orders took of the customer's credit (their
    #: order totals) and of the rebate balance (rebate payments applied), minor units
    credit_used: dict[str, int] = field(default_factory=dict)
    rebate_used: dict[str, int] = field(default_factory=dict)

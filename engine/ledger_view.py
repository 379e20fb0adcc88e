"""What the ledger tells a quote: how much of each promotion's budget, gift stock and
per-customer uses committed orders already consumed (read-only; only commits write)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LedgerView:
    budget_used: dict[int, int] = field(default_factory=dict)  # rule id -> minor units
    gift_stock_used: dict[int, int] = field(default_factory=dict)  # rule id -> units
    uses: dict[tuple[int, str], int] = field(default_factory=dict)  # (rule id, customer) -> orders

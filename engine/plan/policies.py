"""Compiled rebate, commission, partner-tier and fund policies: plain values, built by
``dsl/compile_policies.py`` and run over order history by ``engine.batch.rebates``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dsl import tree as t
from engine.core.data import DataSet
from engine.core.money import Rounding


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """A rebate or a fund (a fund is one flat rate on its basis)."""

    name: str
    kind: Literal["rebate", "fund"]
    period: t.PeriodSpec | None
    measure: Literal["net_amount", "qty"]
    where: t.Condition | None
    minus_returns: bool
    includes_special: bool
    target_table: str | None
    target_value: int | None
    mode: Literal["retroactive", "incremental"]
    by: Literal["attainment", "basis"]
    thresholds: tuple[int, ...]  # basis units (minor / thousandths) or basis points of target
    threshold_texts: tuple[str, ...]
    rates: tuple[int, ...]  # basis points, or minor units per base unit (qty basis)
    rate_texts: tuple[str, ...]
    cap: int | None
    minimum: int | None
    accrual: bool
    source: str


@dataclass(frozen=True, slots=True)
class CommissionPolicy:
    name: str
    period: t.PeriodSpec | None
    beneficiary: Literal["referrer", "buyer"]
    percent: int | None  # basis points of the order's net
    where: t.Condition | None
    rewards: tuple[tuple[str, int], ...]  # (event kind, minor units per event)
    cap_order: int | None
    cap_period: int | None
    source: str


@dataclass(frozen=True, slots=True)
class TierPolicy:
    name: str
    period: t.PeriodSpec | None
    levels: tuple[tuple[str, t.Condition], ...]  # highest first
    default: str | None
    source: str


@dataclass(frozen=True, slots=True)
class PolicySet:
    version: str
    currency: str
    rounding: Rounding
    timezone: str
    rates: tuple[RatePolicy, ...] = ()
    commissions: tuple[CommissionPolicy, ...] = ()
    tiers: tuple[TierPolicy, ...] = ()
    data: DataSet = field(default_factory=lambda: DataSet.from_rows([], {}))

    @property
    def count(self) -> int:
        return len(self.rates) + len(self.commissions) + len(self.tiers)

"""A plain reference for the batch policies: row by row, exact fractions, no polars.

It reads the same parameters the tests write into rule text, walks the history one line
at a time and rounds with ``fractions.Fraction``; ``tests/rebates/test_agreement.py``
holds the engine to it to the cent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction


def round_half(x: Fraction, mode: str) -> int:
    sign = -1 if x < 0 else 1
    mag = abs(x)
    whole = mag.numerator // mag.denominator
    rest = mag - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and (mode == "half_up" or whole % 2 == 1)):
        whole += 1
    return sign * whole


@dataclass(frozen=True)
class Line:
    order_id: str
    customer: str
    referrer: str | None
    category: str
    net: int  # minor units
    special: bool


@dataclass(frozen=True)
class Return:
    order_id: str
    customer: str
    category: str
    net: int


@dataclass(frozen=True)
class Rebate:
    category: str | None  # basis where category == ...
    minus_returns: bool
    includes_special: bool
    target: int | None  # minor units, the same for every partner
    mode: str  # retroactive | incremental
    by: str  # basis | attainment
    thresholds: tuple[int, ...]  # minor units, or basis points of the target
    rates: tuple[int, ...]  # basis points
    cap: int | None
    minimum: int | None


def rebate(
    policy: Rebate, lines: list[Line], returns: list[Return], rounding: str
) -> dict[str, int]:
    """partner -> amount (minor units) for every partner with lines or returns."""

    def counted(category: str) -> bool:
        return policy.category is None or category == policy.category

    special_of: dict[tuple[str, str], bool] = defaultdict(bool)
    bought: dict[str, int] = {}
    for ln in lines:
        special_of[(ln.order_id, ln.category)] |= ln.special
    for ln in lines:
        if counted(ln.category) and (policy.includes_special or not ln.special):
            bought[ln.customer] = bought.get(ln.customer, 0) + ln.net
    returned: dict[str, int] = defaultdict(int)
    if policy.minus_returns:
        for r in returns:
            # tests use one SKU per category, so (order, category) names the order's line
            if counted(r.category) and (
                policy.includes_special or not special_of[(r.order_id, r.category)]
            ):
                bought.setdefault(r.customer, 0)
                returned[r.customer] += r.net
    out: dict[str, int] = {}
    for partner in bought:
        basis = max(bought[partner] - returned[partner], 0)
        if policy.by == "attainment":
            assert policy.target
            measure = Fraction(basis, policy.target) * 10000
            edges = [
                round_half(Fraction(policy.target * bp, 10000), rounding)
                for bp in policy.thresholds
            ]
        else:
            measure = Fraction(basis)
            edges = list(policy.thresholds)
        reached = [i for i, th in enumerate(policy.thresholds) if measure >= th]
        if policy.mode == "retroactive":
            amount = (
                round_half(Fraction(basis * policy.rates[reached[-1]], 10000), rounding)
                if reached
                else 0
            )
        else:
            amount = 0
            for i, low in enumerate(edges):
                high = edges[i + 1] if i + 1 < len(edges) else None
                top = basis if high is None else min(basis, high)
                if top > low:
                    amount += round_half(Fraction((top - low) * policy.rates[i], 10000), rounding)
        if policy.cap is not None:
            amount = min(amount, policy.cap)
        if policy.minimum is not None and 0 < amount < policy.minimum:
            amount = 0
        out[partner] = amount
    return out


@dataclass(frozen=True)
class Commission:
    percent: int  # basis points
    cap_order: int | None
    cap_period: int | None


def commission(
    policy: Commission, lines: list[Line], rounding: str
) -> tuple[dict[str, int], dict[str, int]]:
    """(referrer -> amount, order -> amount)."""
    nets: dict[tuple[str, str], int] = defaultdict(int)
    for ln in lines:
        if ln.referrer is not None:
            nets[(ln.referrer, ln.order_id)] += ln.net
    per_order: dict[str, int] = {}
    totals: dict[str, int] = defaultdict(int)
    for (ref, order), net in nets.items():
        amount = round_half(Fraction(net * policy.percent, 10000), rounding)
        if policy.cap_order is not None:
            amount = min(amount, policy.cap_order)
        per_order[order] = amount
        totals[ref] += amount
    if policy.cap_period is not None:
        totals = defaultdict(int, {k: min(v, policy.cap_period) for k, v in totals.items()})
    return dict(totals), per_order


def tier(
    levels: list[tuple[str, int, int]], default: str, lines: list[Line], leads: dict[str, int]
) -> dict[str, str]:
    """levels: (name, purchases at least, leads_submitted at least), highest first."""
    purchases: dict[str, int] = defaultdict(int)
    for ln in lines:
        purchases[ln.customer] += ln.net
    partners = set(purchases) | set(leads)
    out = {}
    for p in partners:
        out[p] = next(
            (name for name, money, n in levels if purchases[p] >= money and leads.get(p, 0) >= n),
            default,
        )
    return out

"""Stage 9: floor prices, then manual discounts checked against approval bands.

A floor is per base unit in the ruleset currency; on a cart in another currency it is
converted at the cart date's ruleset->cart rate, rounded once per unit (as a list price
is), before ``round(floor x quantity)``. A line with a floor on a cart without that rate
gets ``no_fx_rate`` at stage 2 (``floors_without_rate``).
``clamp`` takes back the most recent adjustments on a line (latest stage, then latest in
evaluation order) just far enough that the line sits exactly on its floor; ``flag`` keeps
the price and marks the line for approval. A manual discount is applied last, as a
percent of the running net, and its approval band decides whether it is applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.core.codes import AdjustmentStage, ApprovalStatus, BenefitKind, LineError
from engine.core.money import BP_SCALE, QTY_SCALE, Rounding, convert_minor_many, mul_div_round
from engine.plan.cart_rules import ApprovalPlan, FloorPlan
from engine.pricing.line_promotions import Adjustments
from engine.pricing.running import MANUAL_RULE, CartMoney, Running

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]


@dataclass
class Approval:
    status: I64  # per line, an ApprovalStatus
    level: list[str | None]  # per line: the approval level asked for
    clamped: Bool  # per line: a floor clamp took back part of an adjustment


def floors_without_rate(
    plan: FloorPlan | None, money: CartMoney | None, line_cart: I64, sku: I64, error: I64
) -> None:
    """Stage 2's guard for stage 9: a priced line whose SKU has a floor, in a cart whose
    currency has no ruleset->cart rate for its date, gets ``no_fx_rate`` (in place)."""
    if plan is None or money is None or not money.no_rate.any():
        return
    has_floor = plan.per_unit[np.maximum(sku, 0)] >= 0
    error[(error == LineError.OK) & has_floor & money.no_rate[line_cart]] = LineError.NO_FX_RATE


def floor_amounts(plan: FloorPlan | None, state: Running, mode: Rounding) -> I64:
    """Per line: round(floor x quantity) in the cart's currency, or -1 where the SKU has
    no floor. The per-unit floor is converted first (once per rate, rounded once)."""
    if plan is None:
        return np.full(len(state.sku), -1, dtype=np.int64)
    per_unit = plan.per_unit[state.sku]  # a copy: converted in place below
    money = state.money
    if money is not None and money.rates:
        rate_of_line = money.rate_of_cart[state.line_cart]
        for r, (rate, src, dst) in enumerate(money.rates):
            at = np.nonzero((rate_of_line == r) & (per_unit >= 0))[0]
            if len(at):
                per_unit[at] = convert_minor_many(per_unit[at], rate, src, dst, mode)
    amount = mul_div_round(np.maximum(per_unit, 0), state.qty, QTY_SCALE, mode)
    result: I64 = np.where((per_unit >= 0) & state.eligible, amount, -1)
    return result


def clamp_to_floor(
    state: Running, adjustments: Adjustments, floor: I64
) -> tuple[Adjustments, Bool]:
    """Take back the latest adjustments of each line below its floor (in place on a copy)."""
    deficit = np.where(floor >= 0, floor - state.net, 0)
    below = deficit > 0
    if not below.any() or len(adjustments.line) == 0:
        return adjustments, np.zeros(len(state.net), dtype=np.bool_)
    line, amount = adjustments.line, adjustments.amount.copy()
    rows = np.nonzero(below[line])[0]
    # latest first within each line: rows are sorted by (line, stage, position)
    order = rows[np.lexsort((-adjustments.position[rows], -adjustments.stage[rows], line[rows]))]
    mag = -amount[order]
    lines = line[order]
    before = np.cumsum(mag) - mag
    first = np.concatenate([[True], lines[1:] != lines[:-1]])
    base = np.maximum.accumulate(np.where(first, before, 0))
    taken_back = np.clip(deficit[lines] - (before - base), 0, mag)
    amount[order] += taken_back
    back = np.zeros(len(state.net), dtype=np.int64)
    np.add.at(back, lines, taken_back)
    state.net += back
    clamped = back > 0
    keep = amount != 0  # an adjustment taken back entirely is gone
    return (
        Adjustments(
            line=line[keep],
            rule=adjustments.rule[keep],
            kind=adjustments.kind[keep],
            amount=amount[keep],
            stage=adjustments.stage[keep],
            position=adjustments.position[keep],
        ),  # fmt: skip
        clamped,
    )


def manual_discounts(
    state: Running,
    requested: I64,
    approvals: tuple[ApprovalPlan, ...],
    floor: I64,
    flagged: Bool,
    mode: Rounding,
) -> tuple[Adjustments, Approval]:
    """Apply each line's requested manual discount (basis points, -1 none) per its band."""
    n = len(state.net)
    status = np.where(flagged, ApprovalStatus.NEEDS_APPROVAL, ApprovalStatus.OK).astype(np.int64)
    level: list[str | None] = ["floor" if f else None for f in flagged.tolist()]
    asked = np.nonzero((requested >= 0) & state.eligible)[0]
    if len(asked) == 0:
        return Adjustments.empty(), Approval(
            status=status, level=level, clamped=np.zeros(n, dtype=np.bool_)
        )
    band_of_cart = np.full(state.n_carts, -1, dtype=np.int64)
    for i, approval in enumerate(approvals):
        holds = _holds(state, approval)
        band_of_cart = np.where((band_of_cart < 0) & holds, i, band_of_cart)
    outcome = [
        approvals[b].outcome(int(bp)) if b >= 0 else "rejected"
        for b, bp in zip(
            band_of_cart[state.line_cart[asked]].tolist(), requested[asked].tolist(), strict=True
        )
    ]
    applied = np.array([o != "rejected" for o in outcome], dtype=np.bool_)
    rows = asked[applied]
    discount = mul_div_round(state.net[rows], requested[rows], BP_SCALE, mode)
    state.net[rows] -= discount
    for i, o in zip(asked.tolist(), outcome, strict=True):
        if o == "rejected":
            status[i] = ApprovalStatus.REJECTED
            level[i] = None
        elif o == "approved":
            status[i] = ApprovalStatus.APPROVED
        else:
            status[i] = ApprovalStatus.NEEDS_APPROVAL
            level[i] = o
    # a manual discount that takes a line below its floor always needs approval
    under = rows[(floor[rows] >= 0) & (state.net[rows] < floor[rows])]
    for i in under.tolist():
        if status[i] != ApprovalStatus.NEEDS_APPROVAL:
            status[i] = ApprovalStatus.NEEDS_APPROVAL
            level[i] = "floor"
    nonzero = discount != 0
    made = Adjustments(
        line=rows[nonzero],
        rule=np.full(int(nonzero.sum()), MANUAL_RULE, dtype=np.int64),
        kind=np.full(int(nonzero.sum()), BenefitKind.PERCENT_OFF, dtype=np.int64),
        amount=-discount[nonzero],
        stage=np.full(int(nonzero.sum()), AdjustmentStage.MANUAL, dtype=np.int64),
        position=np.zeros(int(nonzero.sum()), dtype=np.int64),
    )
    return made, Approval(status=status, level=level, clamped=np.zeros(n, dtype=np.bool_))


def _holds(state: Running, approval: ApprovalPlan) -> Bool:
    from engine.plan.conditions import cart_holds

    return cart_holds(approval.conjuncts, state.carts)

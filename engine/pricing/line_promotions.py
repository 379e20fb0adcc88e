"""Stage 4, line promotions: apply each line's program to its running net amount.

Programs come from ``engine.plan.line_index``; here they are executed slot by slot, every
slot vectorized over all lines that have it. A slot with several members is a best-of
group: each member is computed on the running net and the largest discount is kept
(ties: the earlier member, i.e. higher priority, then name).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.core.allocate import clip_to_cap
from engine.core.codes import BenefitKind
from engine.core.money import BP_SCALE, QTY_SCALE, Rounding, mul_div_round
from engine.plan.line_index import LineRuleIndex

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Adjustments:
    """Typed adjustment rows: which line, which rule, which benefit kind, how much
    (negative), at which stage and position in the evaluation order (rows sort by
    (line, stage, position), which is the order the waterfall applied them)."""

    line: I64
    rule: I64
    kind: I64
    amount: I64
    stage: I64
    position: I64

    @staticmethod
    def empty() -> Adjustments:
        z = np.zeros(0, dtype=np.int64)
        return Adjustments(z, z, z, z, z, z)

    @staticmethod
    def concat(parts: list[Adjustments]) -> Adjustments:
        """All rows, ordered by line, then stage, then position."""
        if not parts:
            return Adjustments.empty()
        cols = {
            f: np.concatenate([getattr(p, f) for p in parts])
            for f in ("line", "rule", "kind", "amount", "stage", "position")
        }
        order = np.lexsort((cols["position"], cols["stage"], cols["line"]))
        return Adjustments(**{f: v[order] for f, v in cols.items()})


def discount_of(
    index: LineRuleIndex,
    benefit: I64,
    net: I64,
    qty: I64,
    mode: Rounding,
    per_unit_amounts: I64 | None = None,
) -> tuple[I64, npt.NDArray[np.bool_]]:
    """The discount each benefit gives on each line's running net, and whether it applies.
    ``per_unit_amounts`` gives each line's benefit amount when it is not the ruleset's
    (a cart in another currency)."""
    kind = index.benefit_kind[benefit]
    bp = index.benefit_bp[benefit]
    if not (kind != BenefitKind.PERCENT_OFF).any():  # the common case: percentages only
        return mul_div_round(net, bp, BP_SCALE, mode), np.ones(len(net), dtype=np.bool_)
    per_unit = index.benefit_amount[benefit] if per_unit_amounts is None else per_unit_amounts
    percent = mul_div_round(net, bp, BP_SCALE, mode)
    by_qty = mul_div_round(per_unit, qty, QTY_SCALE, mode)
    amount_off = np.minimum(net, by_qty)
    fixed = net - by_qty
    discount: I64 = np.where(
        kind == BenefitKind.PERCENT_OFF,
        percent,
        np.where(kind == BenefitKind.AMOUNT_OFF, amount_off, fixed),
    )
    applies = (kind != BenefitKind.FIXED_PRICE) | (by_qty < net)
    return np.maximum(discount, 0), applies


def apply_line_promotions(
    index: LineRuleIndex,
    program: npt.NDArray[np.int32],
    net: I64,
    qty: I64,
    mode: Rounding,
    money: tuple[I64, I64] | None = None,
    carts: tuple[I64, I64] | None = None,
    budget_used: dict[int, int] | None = None,
    in_cart_currency: Callable[[int], I64] | None = None,
    switched_off: tuple[dict[int, npt.NDArray[np.bool_]], I64] | None = None,
) -> tuple[I64, Adjustments, npt.NDArray[np.bool_]]:
    """Run every line's program; returns the new running net, the adjustments made and
    which lines an exclusive promotion stopped.

    ``money`` = (a table ``[currency slot, benefit] -> per-unit amount``, each line's slot)
    for batches with carts in currencies other than the ruleset's. ``carts`` = (each line's
    cart, cart starts) is needed when a line promotion has a cap on money: such a batch runs
    promotion by promotion (position order) so the cap can clip each cart at the
    promotion's own step; otherwise programs run slot by slot, which gives the same answer
    faster. ``switched_off`` = ({line rule: per cart, its budget is spent or the customer
    used up its uses}, each line's cart): such a rule does not apply to the cart's lines,
    so it neither wins a best-of group nor stops the line (SPEC §3.8)."""
    net = net.copy()
    stopped = np.zeros(len(net), dtype=np.bool_)
    lines_with = np.nonzero(program > 0)[0]
    if len(lines_with) == 0:
        return net, Adjustments.empty(), stopped
    programs = index.programs.array()
    parts: list[Adjustments] = []
    if index.money_capped and carts is not None:
        keys = index.programs.slot_keys()[program[lines_with]]  # [line, slot] -> position
        line_pos, slot_pos = np.nonzero(keys >= 0)
        pair_key = keys[line_pos, slot_pos]
        order = np.argsort(pair_key, kind="stable")
        line_pos, slot_pos, pair_key = line_pos[order], slot_pos[order], pair_key[order]
        bounds = np.nonzero(np.concatenate([[True], pair_key[1:] != pair_key[:-1], [True]]))[0]
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            rows = lines_with[line_pos[start:end]]
            members = programs[
                program[rows], slot_pos[start:end], :
            ]  # each line's own slot at this position
            parts.extend(
                _run_slot(
                    index,
                    members,
                    rows,
                    net,
                    qty,
                    stopped,
                    mode,
                    money,
                    int(pair_key[start]),
                    carts,
                    budget_used,
                    in_cart_currency,
                    switched_off,
                )
            )
    else:
        for slot in range(programs.shape[1]):
            members = programs[program[lines_with], slot, :]
            parts.extend(
                _run_slot(
                    index,
                    members,
                    lines_with,
                    net,
                    qty,
                    stopped,
                    mode,
                    money,
                    -1,
                    None,
                    None,
                    None,
                    switched_off,
                )
            )
    return net, Adjustments.concat(parts), stopped


def _run_slot(
    index: LineRuleIndex,
    members: npt.NDArray[np.int32],
    rows: I64,
    net: I64,
    qty: I64,
    stopped: npt.NDArray[np.bool_],
    mode: Rounding,
    money: tuple[I64, I64] | None,
    position: int,
    carts: tuple[I64, I64] | None,
    budget_used: dict[int, int] | None,
    in_cart_currency: Callable[[int], I64] | None,
    switched_off: tuple[dict[int, npt.NDArray[np.bool_]], I64] | None = None,
) -> list[Adjustments]:
    """Evaluate one slot (a rule, or a best-of group) on ``rows``; updates ``net`` and
    ``stopped`` in place and returns the adjustment rows."""
    live = (members[:, 0] >= 0) & ~stopped[rows]
    if not live.any():
        return []
    rows = rows[live]
    members = members[live]
    best = np.full(len(rows), -1, dtype=np.int64)
    best_discount = np.full(len(rows), -1, dtype=np.int64)
    for m in range(members.shape[1]):
        benefit = members[:, m].astype(np.int64)
        present = benefit >= 0
        if not present.any():
            continue
        safe = np.maximum(benefit, 0)
        if switched_off is not None:
            off_rules, line_cart = switched_off
            member_rule = index.benefit_rule[safe]
            for r, off in off_rules.items():
                present &= ~((member_rule == r) & off[line_cart[rows]])
        per_unit = None if money is None else money[0][money[1][rows], safe]
        discount, applies = discount_of(index, safe, net[rows], qty[rows], mode, per_unit)
        better = present & applies & (discount > best_discount)
        best = np.where(better, benefit, best)
        best_discount = np.where(better, discount, best_discount)
    won = best >= 0
    rows, best, best_discount = rows[won], best[won], best_discount[won]
    rule = index.benefit_rule[best].astype(np.int64)
    if carts is not None:
        best_discount = _clip_capped(
            index, rule, rows, best_discount, carts, budget_used, in_cart_currency
        )
    net[rows] -= best_discount
    stopped[rows] |= index.programs.benefit_exclusive[best]
    nonzero = best_discount != 0
    slot_key = np.asarray(index.programs.slot_key, dtype=np.int64)
    return [
        Adjustments(
            line=rows[nonzero],
            rule=rule[nonzero],
            kind=index.benefit_kind[best[nonzero]].astype(np.int64),
            amount=-best_discount[nonzero],
            stage=np.zeros(int(nonzero.sum()), dtype=np.int64),
            position=slot_key[best[nonzero]]
            if position < 0
            else np.full(int(nonzero.sum()), position, dtype=np.int64),
        )
    ]


def _clip_capped(
    index: LineRuleIndex,
    rule: I64,
    rows: I64,
    discount: I64,
    carts: tuple[I64, I64],
    budget_used: dict[int, int] | None,
    in_cart_currency: Callable[[int], I64] | None,
) -> I64:
    """Clip what a capped rule takes from each cart (max discount per order, remaining
    budget); what is kept is spread pro rata by the unclipped discounts."""
    line_cart, cart_starts = carts
    discount = discount.copy()
    for r in np.unique(rule).tolist():
        caps = index.caps[r]
        if not caps.clips_money:
            continue
        limits = [
            c for c in (caps.max_discount, _remaining(caps.budget, budget_used, r)) if c is not None
        ]
        per_cart = [
            in_cart_currency(c)
            if in_cart_currency
            else np.full(len(cart_starts), c, dtype=np.int64)
            for c in limits
        ]
        cap = np.minimum.reduce(per_cart)
        at = rule == r
        full = np.zeros(len(line_cart), dtype=np.int64)
        full[rows[at]] = discount[at]
        clipped = clip_to_cap(full, cap, line_cart, cart_starts)
        discount[at] = clipped[rows[at]]
    return discount


def _remaining(budget: int | None, used: dict[int, int] | None, rule: int) -> int | None:
    if budget is None:
        return None
    return max(0, budget - (used or {}).get(rule, 0))

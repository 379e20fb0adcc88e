"""Stage 4, line promotions: apply each line's program to its running net amount.

Programs come from ``engine.line_index``; here they are executed slot by slot, every
slot vectorized over all lines that have it. A slot with several members is a best-of
group: each member is computed on the running net and the largest discount is kept
(ties: the earlier member, i.e. higher priority, then name).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.line_index import KIND_AMOUNT, KIND_FIXED, KIND_PERCENT, LineRuleIndex
from engine.money import BP_SCALE, QTY_SCALE, Rounding, mul_div_round

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Adjustments:
    """Typed adjustment rows: which line, which rule, which benefit kind, how much (negative)."""

    line: I64
    rule: I64
    kind: I64
    amount: I64

    @staticmethod
    def empty() -> Adjustments:
        z = np.zeros(0, dtype=np.int64)
        return Adjustments(z, z, z, z)


def discount_of(
    index: LineRuleIndex, benefit: I64, net: I64, qty: I64, mode: Rounding, per_unit_amounts: I64 | None = None
) -> tuple[I64, npt.NDArray[np.bool_]]:
    """The discount each benefit gives on each line's running net, and whether it applies.
    ``per_unit_amounts`` gives each line's benefit amount when it is not the ruleset's
    (a cart in another currency)."""
    kind = index.benefit_kind[benefit]
    bp = index.benefit_bp[benefit]
    if not (kind != KIND_PERCENT).any():  # the common case: percentages only
        return mul_div_round(net, bp, BP_SCALE, mode), np.ones(len(net), dtype=np.bool_)
    per_unit = index.benefit_amount[benefit] if per_unit_amounts is None else per_unit_amounts
    percent = mul_div_round(net, bp, BP_SCALE, mode)
    by_qty = mul_div_round(per_unit, qty, QTY_SCALE, mode)
    amount_off = np.minimum(net, by_qty)
    fixed = net - by_qty
    discount: I64 = np.where(kind == KIND_PERCENT, percent, np.where(kind == KIND_AMOUNT, amount_off, fixed))
    applies = (kind != KIND_FIXED) | (by_qty < net)
    return np.maximum(discount, 0), applies


def apply_line_promotions(
    index: LineRuleIndex,
    program: npt.NDArray[np.int32],
    net: I64,
    qty: I64,
    mode: Rounding,
    money: tuple[I64, I64] | None = None,
) -> tuple[I64, Adjustments]:
    """Run every line's program; returns the new running net and the adjustments made.

    ``money`` = (a table ``[currency slot, benefit] -> per-unit amount``, each line's slot)
    for batches with carts in currencies other than the ruleset's."""
    net = net.copy()
    programs = index.programs.array()
    lines_with = np.nonzero(program > 0)[0]
    if len(lines_with) == 0:
        return net, Adjustments.empty()
    stopped = np.zeros(len(net), dtype=np.bool_)
    parts: list[tuple[I64, I64, I64, I64, I64]] = []
    for slot in range(programs.shape[1]):
        members = programs[program[lines_with], slot, :]
        live = (members[:, 0] >= 0) & ~stopped[lines_with]
        if not live.any():
            continue
        rows = lines_with[live]
        members = members[live]
        best = np.full(len(rows), -1, dtype=np.int64)
        best_discount = np.full(len(rows), -1, dtype=np.int64)
        for m in range(members.shape[1]):
            benefit = members[:, m].astype(np.int64)
            present = benefit >= 0
            if not present.any():
                continue
            safe = np.maximum(benefit, 0)
            per_unit = None if money is None else money[0][money[1][rows], safe]
            discount, applies = discount_of(index, safe, net[rows], qty[rows], mode, per_unit)
            better = present & applies & (discount > best_discount)
            best = np.where(better, benefit, best)
            best_discount = np.where(better, discount, best_discount)
        won = best >= 0
        rows, best, best_discount = rows[won], best[won], best_discount[won]
        net[rows] -= best_discount
        rule = index.benefit_rule[best].astype(np.int64)
        stopped[rows] |= index.programs.benefit_exclusive[best]
        nonzero = best_discount != 0
        parts.append(
            (
                rows[nonzero],
                rule[nonzero],
                index.benefit_kind[best[nonzero]].astype(np.int64),
                -best_discount[nonzero],
                np.full(int(nonzero.sum()), slot, dtype=np.int64),
            )
        )
    if not parts:
        return net, Adjustments.empty()
    line = np.concatenate([p[0] for p in parts])
    slot_of = np.concatenate([p[4] for p in parts])
    order = np.lexsort((slot_of, line))
    return net, Adjustments(
        line=line[order],
        rule=np.concatenate([p[1] for p in parts])[order],
        kind=np.concatenate([p[2] for p in parts])[order],
        amount=np.concatenate([p[3] for p in parts])[order],
    )

"""Stage 5, combos and pools: complete sets and every-N pools over each cart's lines.

Units are consumed per promotion (a later combo or pool sees only unconsumed units),
most expensive net unit price first unless ``cheapest first``. The benefit of all sets is
summed and spread once over the lines that gave units, weighted by the net of the
consumed units (docs/promotions.md gives the exact arithmetic).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.core.allocate import allocate, cart_sums, clip_to_cap
from engine.core.codes import AdjustmentStage, BenefitKind
from engine.core.money import BP_SCALE, QTY_SCALE, Rounding, mul_div_round
from engine.plan.cart_rules import CartRule, SetBenefit
from engine.pricing.running import (
    Effect,
    GiftsWorth,
    Running,
    apply_effect,
    best_per_cart,
    keep_carts,
    steps_of,
)

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]
BIG = np.iinfo(np.int64).max

KIND_OF = {
    "percent": BenefitKind.PERCENT_OFF,
    "amount": BenefitKind.AMOUNT_OFF,
    "fixed": BenefitKind.FIXED_PRICE,
    "gift": BenefitKind.AMOUNT_OFF,
}


def take_in_price_order(
    state: Running, member: Bool, available: I64, target: I64, cheapest_first: bool
) -> I64:
    """Thousandths taken from each member line so each cart's ``target`` is met, walking
    its lines by net unit price (highest first, or lowest), ties by cart order."""
    taken = np.zeros(len(member), dtype=np.int64)
    idx = np.nonzero(member & (available > 0))[0]
    if len(idx) == 0:
        return taken
    qty = np.maximum(state.qty[idx], 1)
    unit_price = state.net[idx] * QTY_SCALE // qty
    key = unit_price if cheapest_first else -unit_price
    order = np.lexsort((idx, key, state.line_cart[idx]))
    lines = idx[order]
    avail = available[lines]
    carts = state.line_cart[lines]
    before = np.cumsum(avail) - avail
    first_of_cart = np.concatenate([[True], carts[1:] != carts[:-1]])
    base = np.maximum.accumulate(np.where(first_of_cart, before, 0))
    within = before - base
    taken[lines] = np.clip(target[carts] - within, 0, avail)
    return taken


def _consumed_net(state: Running, taken: I64, mode: Rounding) -> I64:
    safe_qty = np.maximum(state.qty, 1)
    net: I64 = np.where(taken > 0, mul_div_round(state.net, taken, safe_qty, mode), 0)
    return net


def _benefit(
    state: Running,
    rule: CartRule,
    benefit: SetBenefit,
    applications: I64,
    taken: I64,
    mode: Rounding,
    position: int,
) -> Effect:
    weights = _consumed_net(state, taken, mode)
    takes = taken > 0
    if benefit.kind == "percent":
        discount = mul_div_round(
            weights, np.full(len(weights), benefit.bp, dtype=np.int64), BP_SCALE, mode
        )
    elif benefit.kind in ("amount", "fixed"):
        per_set = state.in_cart_currency(benefit.amount)
        if benefit.kind == "amount":
            amount = applications * per_set
        else:
            amount = np.maximum(cart_sums(weights, state.cart_starts) - applications * per_set, 0)
        discount = allocate(amount, weights, state.line_cart, state.cart_starts, take=takes)
    else:
        discount = np.zeros(len(taken), dtype=np.int64)
    discount = np.minimum(np.where(takes, discount, 0), np.maximum(state.net, 0))
    cap = state.money_cap(rule)
    if cap is not None:
        discount = clip_to_cap(discount, cap, state.line_cart, state.cart_starts)
    gifts = earned = np.zeros(state.n_carts, dtype=np.int64)
    if benefit.kind == "gift":
        gifts = earned = applications * benefit.gift_qty
        if rule.caps.max_gifts is not None:
            gifts = np.minimum(earned, rule.caps.max_gifts)
    applies = applications > 0
    return Effect(
        rule=rule,
        applies=applies,
        consumed=taken,
        discount=discount,
        kind=KIND_OF[benefit.kind],
        gift_units=np.where(applies, gifts, 0),
        touched=takes,
        position=position,
        gifts_earned=np.where(applies, earned, 0),
    )


def evaluate(state: Running, rule: CartRule, mode: Rounding, position: int) -> Effect:
    """What one combo or pool would do on the current running figures (no side effects)."""
    cart_ok = state.cart_applies(rule)
    base = state.open_lines(rule) & cart_ok[state.line_cart]
    available = np.where(base, state.qty - state.consumed, 0)
    taken = np.zeros(len(available), dtype=np.int64)
    assert rule.benefit is not None
    if rule.form == "combo":
        applications = np.full(state.n_carts, BIG, dtype=np.int64)
        members = []
        for need, mask in rule.parts:
            member = base & mask[state.sku]
            members.append((need, member))
            total = cart_sums(np.where(member, available, 0), state.cart_starts)
            applications = np.minimum(applications, total // (need * QTY_SCALE))
        applications = _cap_applications(rule, applications)
        for need, member in members:
            taken += take_in_price_order(
                state, member, available, applications * need * QTY_SCALE, rule.cheapest_first
            )
    else:
        assert rule.pool_mask is not None
        member = base & rule.pool_mask[state.sku]
        if rule.step_units:
            total = cart_sums(np.where(member, available, 0), state.cart_starts)
            applications = _cap_applications(rule, total // rule.step_units)
            taken = take_in_price_order(
                state, member, available, applications * rule.step_units, rule.cheapest_first
            )
        else:
            value = np.where(
                member, mul_div_round(state.net, available, np.maximum(state.qty, 1), mode), 0
            )
            step = np.maximum(state.in_cart_currency(rule.step_money), 1)
            applications = _cap_applications(rule, cart_sums(value, state.cart_starts) // step)
            taken = np.where(member & (applications[state.line_cart] > 0), available, 0)
    return _benefit(state, rule, rule.benefit, applications, taken, mode, position)


def _cap_applications(rule: CartRule, applications: I64) -> I64:
    if rule.caps.max_applications is not None:
        applications = np.minimum(applications, rule.caps.max_applications)
    result: I64 = np.maximum(applications, 0)
    return result


def run_sets(
    state: Running, rules: list[CartRule], mode: Rounding, gifts_worth: GiftsWorth | None
) -> None:
    """Stage 5 over the whole batch: every combo and pool, in evaluation order."""
    for position, members in steps_of(rules):
        effects = [evaluate(state, rule, mode, position) for rule in members]
        if len(effects) == 1:
            apply_effect(state, effects[0], AdjustmentStage.SET)
            continue
        values = [e.value(gifts_worth, state.cart_starts, state.gift_stock_used) for e in effects]
        winner = best_per_cart(effects, values)
        for i, effect in enumerate(effects):
            apply_effect(
                state, keep_carts(effect, winner == i, state.line_cart), AdjustmentStage.SET
            )

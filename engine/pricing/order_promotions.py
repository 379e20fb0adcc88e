"""Stage 6, order promotions: thresholds on each cart's eligible subtotal.

Every order promotion tests its threshold against the same subtotal (the eligible lines'
running nets entering the stage); a percent benefit takes its share of the running
eligible subtotal at its own turn; amounts are spread over the eligible lines by their
running nets (largest remainder). An exclusive order promotion that applies stops the
order promotions after it in that cart.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine.core.allocate import allocate, cart_sums, clip_to_cap
from engine.core.codes import AdjustmentStage, BenefitKind
from engine.core.money import BP_SCALE, Rounding, mul_div_round
from engine.plan.cart_rules import CartRule
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


def thresholds_of(state: Running, rule: CartRule) -> I64:
    """``[step, cart]``: each step's threshold in each cart's currency (ascending)."""
    return np.stack([state.in_cart_currency(t) for t in rule.thresholds])


def reached_step(state: Running, rule: CartRule, subtotal: I64) -> tuple[I64, I64]:
    """Per cart: the step reached (-1 none) and how many times (``every``)."""
    thresholds = thresholds_of(state, rule)
    step = (thresholds <= subtotal[None, :]).sum(axis=0) - 1
    times = np.where(step >= 0, 1, 0)
    if rule.order_kind == "every":
        times = subtotal // np.maximum(thresholds[0], 1)
        if rule.caps.max_applications is not None:
            times = np.minimum(times, rule.caps.max_applications)
        step = np.where(times > 0, 0, -1)
    return step.astype(np.int64), times.astype(np.int64)


def evaluate(
    state: Running,
    rule: CartRule,
    subtotal: I64,
    order_stopped: Bool,
    mode: Rounding,
    position: int,
) -> Effect:
    cart_ok = state.cart_applies(rule) & ~order_stopped
    step, times = reached_step(state, rule, subtotal)
    applies = cart_ok & (step >= 0)
    open_ = state.open_lines(rule) & applies[state.line_cart]
    running = cart_sums(np.where(open_, state.net, 0), state.cart_starts)
    safe_step = np.maximum(step, 0)
    kinds = [b.kind for b in rule.step_benefits]
    bp = np.array([b.bp for b in rule.step_benefits], dtype=np.int64)[safe_step]
    per_step = np.stack([state.in_cart_currency(b.amount) for b in rule.step_benefits])[
        safe_step, np.arange(state.n_carts)
    ]
    gift_qty = np.array([b.gift_qty for b in rule.step_benefits], dtype=np.int64)[safe_step]
    gift_sku = np.array([b.gift_sku for b in rule.step_benefits], dtype=np.int64)[safe_step]
    kind_of = np.array(
        [{"percent": 0, "amount": 1, "gift": 2}.get(k, 1) for k in kinds], dtype=np.int64
    )[safe_step]
    amount = np.where(
        kind_of == 0,
        mul_div_round(running, bp, BP_SCALE, mode),
        np.where(kind_of == 1, np.minimum(per_step * times, running), 0),
    )
    amount = np.where(applies, amount, 0)
    discount = allocate(
        amount, np.where(open_, state.net, 0), state.line_cart, state.cart_starts, take=open_
    )
    cap = state.money_cap(rule)
    if cap is not None:
        discount = clip_to_cap(discount, cap, state.line_cart, state.cart_starts)
    gifts = earned = np.where(applies & (kind_of == 2), gift_qty * times, 0)
    if rule.caps.max_gifts is not None:
        gifts = np.minimum(earned, rule.caps.max_gifts)
    # the kind of the step each cart reached (tiers may mix percentages and amounts)
    kind_per_cart = np.where(kind_of == 0, BenefitKind.PERCENT_OFF, BenefitKind.AMOUNT_OFF).astype(
        np.int64
    )
    return Effect(
        rule=rule,
        applies=applies,
        consumed=np.zeros(len(discount), dtype=np.int64),
        discount=discount,
        kind=kind_per_cart,
        gift_units=gifts,
        touched=open_,
        position=position,
        gifts_earned=earned,
        gift_sku=gift_sku,
    )


def subtotals(state: Running) -> dict[bool, I64]:
    """Per cart, the subtotal order thresholds test: without special-price sub-lines
    (``False``) and with them, for promotions that ``include special`` (``True``)."""
    plain = cart_sums(np.where(state.open_lines(), state.net, 0), state.cart_starts)
    if state.special is None:
        return {False: plain, True: plain}
    everything = cart_sums(
        np.where(state.eligible & ~state.stopped, state.net, 0), state.cart_starts
    )
    return {False: plain, True: everything}


def run_orders(
    state: Running, rules: list[CartRule], mode: Rounding, gifts_worth: GiftsWorth | None
) -> dict[bool, I64]:
    """Stage 6 over the batch; returns the subtotals every order promotion tested (per cart;
    see ``subtotals``)."""
    subtotal = subtotals(state)
    order_stopped = np.zeros(state.n_carts, dtype=np.bool_)
    for position, members in steps_of(rules):
        effects = [
            evaluate(state, rule, subtotal[rule.includes_special], order_stopped, mode, position)
            for rule in members
        ]
        if len(effects) == 1:
            chosen = [effects[0]]
        else:
            values = [
                e.value(gifts_worth, state.cart_starts, state.gift_stock_used) for e in effects
            ]
            winner = best_per_cart(effects, values)
            chosen = [keep_carts(e, winner == i, state.line_cart) for i, e in enumerate(effects)]
        for effect in chosen:
            apply_effect(state, effect, AdjustmentStage.ORDER)
            if effect.rule.exclusive:
                order_stopped |= effect.applies
    return subtotal

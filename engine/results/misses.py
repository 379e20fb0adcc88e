"""Near misses and non-applications, for one priced cart.

* ``quantity_hints``: for each priced line, the nearest larger quantity at which a line
  promotion (or a higher tier step) would start to apply — "add 2 more A". Found by
  probing the same compiled line table the pricing used, at the next few quantity edges.
* ``not_applied``: the promotions that were candidates for the cart (their item scope
  names a SKU in it, or they are order promotions) but gave nothing, each with the first
  reason that holds, in this order: ``outside_window``, ``condition_false`` (the cart's
  context, or no line meets the quantity/amount condition; a ``cumulative`` condition is
  explained with the committed and in-cart figures pricing compared), ``capped`` (budget or uses
  exhausted), ``stopped_by_exclusive`` (an exclusive promotion earlier in the waterfall
  took every line it would have applied to), ``lost_group`` (another member of its best-of
  group gave more), ``threshold_not_reached`` (combo set incomplete, pool step or order
  subtotal not reached), ``no_benefit`` (it applied but gave nothing, e.g. a fixed price
  above the running price, or an order promotion whose threshold was reached after
  earlier promotions took the whole net). Asked for per cart with ``"explain": true``.

Both run after pricing on the cart's records (plain ints), so they cost nothing when no
one asks and never change a figure.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.core.codes import LineError
from engine.core.money import QTY_SCALE, format_quantity, money_formatter
from engine.plan.conditions import Conjunct
from engine.pricing.cumulative import FIELD_PREFIX

if TYPE_CHECKING:
    from engine.plan.cart_rules import CartRule
    from engine.plan.compiled import Plan
    from engine.results.responses import Record

#: how many quantity edges above a line's quantity a hint looks at
HINT_EDGES = 3

#: the detail of an order promotion that reached its threshold but gave nothing
ORDER_NO_BENEFIT = "its threshold is reached, but the eligible lines had nothing left to take (earlier promotions took their whole net) or its benefit came to nothing"


def quantity_hints(
    plan: Plan, values: dict[str, Any], currency: str, records: Sequence[Record]
) -> list[dict[str, Any]]:
    """The next quantity step of each priced line that adds a line promotion or a tier."""
    index = plan.line_index
    if (
        not index.rules
        or not len(index.qty_bounds)
        or (currency != plan.currency and plan.money_in_promotions)
    ):
        return []
    slot_base = (
        index.slot_of_context(values) * index.n_sku
    )  # first: an unfinished index may add a table
    table = index.table()
    q_bounds = index.qty_bounds.tolist()
    a_bounds = index.amount_bounds.tolist()
    n_cells, n_acells = index.n_cells, index.n_acells
    slots_of = index.programs.slots
    benefit_rule = index.benefit_rule.tolist()
    hints: list[dict[str, Any]] = []
    for r in records:
        if r.error != LineError.OK or r.base_qty <= 0:
            continue

        def program_at(qty: int, amount: int, sku: int = r.sku) -> int:
            cell = bisect_right(q_bounds, qty) * n_acells + bisect_right(a_bounds, amount)
            return int(table[(slot_base + sku) * n_cells + cell])

        now = {b for members in slots_of[program_at(r.base_qty, r.list_amount)] for b in members}
        start = bisect_right(q_bounds, r.base_qty)
        for edge in q_bounds[start : start + HINT_EDGES]:
            amount = r.list_amount * edge // r.base_qty
            new = [
                b for members in slots_of[program_at(edge, amount)] for b in members if b not in now
            ]
            if new:
                rule = plan.rules[int(plan.line_rule_ids[benefit_rule[new[0]]])]
                missing = format_quantity(edge - r.base_qty)
                unit = plan.catalog.base_units[r.sku]
                hints.append(
                    {
                        "rule": rule.name,
                        "kind": "add_quantity",
                        "line": r.line_id,
                        "sku": r.sku_text,
                        "missing_qty": missing,
                        "unit": unit,
                        "message": f"add {missing} {unit} more {r.sku_text}: {rule.name}",
                    }
                )
                break
    return hints


def not_applied(
    plan: Plan,
    values: dict[str, Any],
    currency: str,
    records: Sequence[Record],
    gift_rules: set[int],
    capped_rules: set[int],
    spend_hints: dict[int, str] | None = None,
    *,
    order_reached: set[int] | None = None,
    cumulative: Sequence[tuple[int, int, int]] | None = None,
) -> list[dict[str, Any]]:
    """Every candidate promotion of the cart that gave nothing, with its reason.

    ``order_reached``: the order promotions whose first step the cart's subtotal reached in
    stage 6 (None: judged from ``spend_hints`` alone). ``cumulative``: per cumulative
    condition of the plan, the (committed, this cart, threshold) figures pricing compared
    for the cart (amounts in the cart's currency). ``spend_hints``: rule id -> the spend
    hint's missing amount, as the response writes it."""
    priced = [r for r in records if r.error == LineError.OK]
    if not priced:
        return []
    applied = {adj[0] for r in priced for adj in r.adjustments} | gift_rules
    skus = np.array([r.sku for r in priced], dtype=np.int64)
    day = int(values["date"])
    same_currency = currency == plan.currency
    money = money_formatter(plan.currency)
    line_rules = set(plan.line_rule_ids.tolist())

    def position(rule_id: int) -> tuple[int, int]:
        """Waterfall order: line promotions, then combos and pools, then order promotions."""
        if rule_id in line_rules:
            return (4, rule_id)
        return (6 if plan.stages.form_of(rule_id) == "order" else 5, rule_id)

    exclusive_rules = _exclusive_rules(plan)
    out: list[dict[str, Any]] = []

    def miss(rule_id: int, reason: str, detail: str, by: int | None = None) -> None:
        info = plan.rules[rule_id]
        entry = {"rule": info.name, "source": info.source, "reason": reason, "detail": detail}
        if by is not None:
            entry["by"] = plan.rules[by].name
        out.append(entry)

    def window_detail(rule_id: int) -> str | None:
        decl = plan.rules[rule_id].decl
        valid = decl.valid if decl is not None else None
        if valid is None or valid.start.toordinal() <= day <= valid.end.toordinal():
            return None
        return f"valid {valid.start.isoformat()} .. {valid.end.isoformat()}; the cart is dated {dt.date.fromordinal(day).isoformat()}"

    def context_holds(conjuncts: Sequence[Conjunct]) -> bool:
        return any(all(a.holds(values.get(a.field)) for a in c.cart) for c in conjuncts)

    def cumulative_detail(field: str) -> str:
        """What a cumulative condition needs and what the customer has, from pricing's figures."""
        k = int(field.removeprefix(FIELD_PREFIX))
        c = plan.cumulative[k]
        if cumulative is None or k >= len(cumulative):
            shown = format_quantity(c.threshold) if c.measure == "qty" else money(c.threshold)
            return f"needs a cumulative {c.measure} of {c.items} of at least {shown}"
        show = format_quantity if c.measure == "qty" else money_formatter(currency)
        past, now, threshold = cumulative[k]
        return (
            f"needs a cumulative {c.measure} of {c.items} of at least {show(threshold)}; "
            f"the customer has {show(past + now)} (committed {show(past)} + this cart {show(now)})"
        )

    def context_detail(conjuncts: Sequence[Conjunct]) -> str:
        """The first test of the first alternative that fails, in words."""
        for c in conjuncts:
            for a in c.cart:
                value = values.get(a.field)
                if a.holds(value):
                    continue
                if a.field.startswith(FIELD_PREFIX):
                    return cumulative_detail(a.field)
                if a.field == "date":
                    shown = (
                        dt.date.fromordinal(int(value)).isoformat()
                        if isinstance(value, int)
                        else "missing"
                    )
                    return f"the cart date {shown} fails date {a.op} {dt.date.fromordinal(a.date).isoformat()}"
                wanted = ", ".join(repr(v) for v in sorted(a.values, key=str))
                return f"{a.field} is {value!r}; the condition needs {a.op} ({wanted})"
        return "the cart's customer or context does not meet its condition"

    def stopper(lines: Sequence[Record], rule_id: int) -> int | None:
        """The exclusive rule before ``rule_id`` that adjusted every one of ``lines``."""
        found = None
        for r in lines:
            earlier = [
                adj[0]
                for adj in r.adjustments
                if adj[0] in exclusive_rules and position(adj[0]) < position(rule_id)
            ]
            if not earlier:
                return None
            found = earlier[0]
        return found

    def group_winner(lines: Sequence[Record], rule_id: int) -> int | None:
        decl = plan.rules[rule_id].decl
        group = decl.group if decl is not None else None
        if group is None:
            return None
        for r in lines:
            for adj in r.adjustments:
                other = plan.rules[adj[0]].decl if adj[0] < len(plan.rules) else None
                if adj[0] != rule_id and other is not None and other.group == group:
                    return int(adj[0])
        for g in gift_rules:
            other = plan.rules[g].decl
            if g != rule_id and other is not None and other.group == group:
                return g
        return None

    # line promotions whose item scope names a SKU of the cart
    index = plan.line_index
    for i, rule in enumerate(index.rules):
        rule_id = int(plan.line_rule_ids[i])
        if rule_id in applied:
            continue
        hits = [c for c in rule.conjuncts if c.item is None or bool(c.item[skus].any())]
        if not hits:
            continue
        if (why := window_detail(rule_id)) is not None:
            miss(rule_id, "outside_window", why)
            continue
        holding = [c for c in hits if all(a.holds(values.get(a.field)) for a in c.cart)]
        if not holding:
            miss(rule_id, "condition_false", context_detail(hits))
            continue
        lines = [
            r
            for r in priced
            if any(_line_meets(c, r, same_currency) for c in holding) and _tier_reached(rule, r)
        ]
        if not lines:
            miss(
                rule_id,
                "condition_false",
                _nearest_line_condition(plan, holding, rule, priced, money),
            )
            continue
        if (by := stopper(lines, rule_id)) is not None:
            miss(
                rule_id,
                "stopped_by_exclusive",
                f"{plan.rules[by].name!r} is exclusive and came first",
                by,
            )
            continue
        if (by := group_winner(lines, rule_id)) is not None:
            miss(rule_id, "lost_group", f"{plan.rules[by].name!r} gave more in the same group", by)
            continue
        caps = index.caps[i]
        if caps.budget is not None or caps.uses_per_customer is not None or rule_id in capped_rules:
            miss(rule_id, "capped", "its budget or uses per customer are used up")
            continue
        miss(
            rule_id,
            "no_benefit",
            "it applied but gave nothing (a fixed price not below the running price, or a zero benefit)",
        )

    # combo, pool and order promotions
    for cart_rule in plan.stages.rules:
        rule_id = cart_rule.rule_id
        if rule_id in applied:
            continue
        masks = [m for _, m in cart_rule.parts] or (
            [cart_rule.pool_mask] if cart_rule.pool_mask is not None else []
        )
        if masks and not any(bool(m[skus].any()) for m in masks):
            continue
        if (why := window_detail(rule_id)) is not None:
            miss(rule_id, "outside_window", why)
            continue
        if not context_holds(cart_rule.conjuncts):
            miss(rule_id, "condition_false", context_detail(cart_rule.conjuncts))
            continue
        missing = (spend_hints or {}).get(rule_id)
        # a spend hint alone does not say the first step was missed (a tier promotion past
        # its first step has a hint for the next): stage 6's own test does
        reached = rule_id in order_reached if order_reached is not None else missing is None
        if cart_rule.form == "order" and not reached and rule_id not in capped_rules:
            detail = (
                f"the eligible subtotal is {missing} short of its first step"
                if missing is not None
                else _threshold_detail("order")
            )
            miss(rule_id, "threshold_not_reached", detail)
            continue
        in_scope = [r for r in priced if not masks or any(bool(m[r.sku]) for m in masks)]
        if cart_rule.form != "order" and not _sets_reachable(cart_rule, in_scope):
            miss(rule_id, "threshold_not_reached", _threshold_detail(cart_rule.form))
            continue
        if rule_id in capped_rules:
            miss(rule_id, "capped", "its budget or uses per customer are used up")
            continue
        if cart_rule.form != "order" and (by := stopper(in_scope, rule_id)) is not None:
            miss(
                rule_id,
                "stopped_by_exclusive",
                f"{plan.rules[by].name!r} is exclusive and came first",
                by,
            )
            continue
        if cart_rule.form == "order":
            earlier = [
                g
                for g in applied
                if g in exclusive_rules
                and g not in line_rules
                and plan.stages.form_of(g) == "order"
                and g < rule_id
            ]
            if earlier:
                miss(
                    rule_id,
                    "stopped_by_exclusive",
                    f"{plan.rules[earlier[0]].name!r} is exclusive and came first",
                    earlier[0],
                )
                continue
        if (by := group_winner(in_scope, rule_id)) is not None:
            miss(rule_id, "lost_group", f"{plan.rules[by].name!r} gave more in the same group", by)
            continue
        if cart_rule.form == "order":
            miss(rule_id, "no_benefit", ORDER_NO_BENEFIT)
        else:
            miss(
                rule_id,
                "no_benefit",
                "its units were taken by an earlier combo or pool promotion, or its benefit came to nothing",
            )
    return out


def _sets_reachable(rule: CartRule, lines: Sequence[Record]) -> bool:
    """At least one set (combo) or step (pool) in the cart's units, before consumption."""
    if rule.form == "combo":
        return all(
            sum(r.base_qty for r in lines if bool(mask[r.sku])) >= need * QTY_SCALE
            for need, mask in rule.parts
        )
    if rule.step_units:
        return sum(r.base_qty for r in lines) >= rule.step_units
    return sum(r.list_amount for r in lines) >= rule.step_money


def _exclusive_rules(plan: Plan) -> frozenset[int]:
    return plan.exclusive_rules


def _line_meets(conj: Conjunct, r: Record, same_currency: bool) -> bool:
    if conj.item is not None and not bool(conj.item[r.sku]):
        return False
    if not conj.qty[0] <= r.base_qty < conj.qty[1]:
        return False
    # amounts in rules are in the ruleset currency: a foreign cart's amount is not compared
    return not same_currency or conj.amount[0] <= r.list_amount < conj.amount[1]


def _tier_reached(rule: Any, r: Record) -> bool:
    if not rule.tier_thresholds:
        return True
    measure = r.base_qty if rule.tier_measure == "qty" else r.list_amount
    return bool(measure >= rule.tier_thresholds[0])


def _nearest_line_condition(
    plan: Plan, holding: Sequence[Conjunct], rule: Any, priced: Sequence[Record], money: Any
) -> str:
    for r in priced:
        for c in holding:
            if c.item is not None and not bool(c.item[r.sku]):
                continue
            low = max(c.qty[0], rule.tier_thresholds[0] if rule.tier_measure == "qty" else c.qty[0])
            if r.base_qty < low:
                unit = plan.catalog.base_units[r.sku]
                return f"needs a quantity of at least {format_quantity(low)} {unit}; line {r.line_id} has {format_quantity(r.base_qty)}"
            low_amount = max(
                c.amount[0],
                rule.tier_thresholds[0] if rule.tier_measure == "amount" else c.amount[0],
            )
            if r.list_amount < low_amount:
                return f"needs a line amount of at least {money(low_amount)}; line {r.line_id} has {money(r.list_amount)}"
    return "no line meets its quantity or amount condition"


def _threshold_detail(form: str) -> str:
    return {
        "combo": "the cart does not hold a complete set",
        "pool": "the cart's eligible units or amount do not reach one step",
        "order": "the eligible subtotal does not reach its threshold",
    }.get(form, "its threshold is not reached")

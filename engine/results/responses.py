"""Priced lines out: typed per-cart results, and the JSON-ready dicts written from them
(every cent explained, money as decimal strings).

Both paths (bulk arrays and the small-batch probe) describe each line as a ``Record`` of
plain ints, and one function turns records into the response, so the two can't drift. The
bulk path's carts are ``PricedCart``s (records, gifts, warnings and hints with rule ids,
amounts in minor units): the JSON response is written from them, and order validation and
commit consumption (``engine.orders.validation``) read the same figures, never the JSON.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from engine.core.codes import (
    ADJUSTMENT_STAGES,
    APPROVAL_STATUSES,
    BENEFIT_KINDS,
    LINE_ERRORS,
    AdjustmentStage,
    LineError,
)
from engine.core.money import format_percent, format_quantity, money_formatter
from engine.plan.compiled import Plan
from engine.pricing.cart import CartBatch
from engine.pricing.gifts import Warning
from engine.pricing.pipeline import PricedLines
from engine.pricing.running import MANUAL_RULE
from engine.results.misses import not_applied, quantity_hints

ERROR_MESSAGES = {
    "unknown_sku": "unknown SKU {sku!r}",
    "unknown_unit": "SKU {sku!r} is not sold in unit {unit!r}",
    "bad_quantity": "quantity {qty} is not a positive number with at most 3 decimals (and at most 1,000,000,000 units)",
    "no_price": "no applicable price list holds SKU {sku!r}",
    "no_fx_rate": "no exchange rate into the cart's currency for the cart's date",
    "amount_too_large": "the line amount exceeds the documented limit of 10^15 minor units",
}


class Record(NamedTuple):
    line_id: str
    sku_text: str
    qty_text: str
    unit: str | None
    error: int
    sku: int
    base_qty: int
    price_list: int
    unit_price: int
    factor: int
    list_amount: int
    adjustments: list[tuple[int, int, int, int]]  # (rule, kind, amount, stage)
    net: int
    tax_rate: int
    tax: int
    gross: int
    status: int = 0  # engine.core.codes.ApprovalStatus
    approval_level: str | None = None
    clamped: bool = False
    manual_bp: int = -1
    #: stage 3 split the line: its sub-lines (special first); the line's figures are their sums
    sublines: tuple[Record, ...] | None = None
    special: bool = False  # this record is a special-price sub-line
    #: a special-price sub-line: its row of the special-price table (``plan.special``), else -1
    special_row: int = -1


class Gift(NamedTuple):
    """A gift line of a cart (stage 7); it is free: its net is zero."""

    rule: int  # rule id (index into ``plan.rules``)
    sku: int  # catalog code
    qty: int  # thousandths of the base unit
    unit_price: int  # cart currency, minor units
    list_amount: int


@dataclass
class CartExtras:
    """What stages 5-9 add to one cart: typed (rule ids, catalog codes, minor units)."""

    gifts: list[Gift] = field(default_factory=list)
    warnings: list[Warning] = field(default_factory=list)
    hints: list[tuple[int, int]] = field(
        default_factory=list
    )  # (rule id, missing amount): spend more
    switched_off: set[int] = field(default_factory=set)  # rule ids
    #: order promotions (rule ids) whose first step the cart's subtotal reached (filled
    #: only for carts that ask ``explain``)
    order_reached: set[int] = field(default_factory=set)

    @property
    def gift_value(self) -> int:
        return sum(g.list_amount for g in self.gifts)


class CartTotals(NamedTuple):
    """A cart's totals over its priced lines, minor units of the cart currency."""

    list: int
    discount: int  # the sum of every adjustment: negative for a discount
    net: int
    tax: int
    gross: int


def cart_totals(records: list[Record]) -> CartTotals:
    """The totals of the response's ``totals`` block (lines with an error count nothing)."""
    priced = [r for r in records if r.error == LineError.OK]
    return CartTotals(
        list=sum(r.list_amount for r in priced),
        discount=sum(a[2] for r in priced for a in r.adjustments),
        net=sum(r.net for r in priced),
        tax=sum(r.tax for r in priced),
        gross=sum(r.gross for r in priced),
    )


@dataclass(frozen=True)
class PricedCart:
    """One cart, priced: what its JSON response is written from (``write_response``) and
    what order validation and commit consumption read."""

    currency: str
    date: dt.date
    #: one record per line, in cart order; a split line's rows are its ``sublines``
    lines: list[Record]
    extras: CartExtras | None = None  # stages 5-9 (None: the ruleset has none)
    context: dict[str, Any] | None = None  # the cart's condition values (hints, explanations)
    explain: bool = False
    cumulative: list[tuple[int, int, int]] | None = (
        None  # per cumulative condition: (committed, cart, threshold)
    )

    def totals(self) -> CartTotals:
        return cart_totals(self.lines)


def line_error(r: Record) -> tuple[str, str]:
    """(code, message) of a line that could not be priced."""
    name = LINE_ERRORS[r.error]
    return name, f"line {r.line_id}: " + ERROR_MESSAGES[name].format(
        sku=r.sku_text, unit=r.unit, qty=r.qty_text
    )


def warning_message(plan: Plan, w: Warning) -> str:
    name, sku = plan.rules[w.rule].name, plan.catalog.skus[w.sku]
    if w.code == "gift_short":
        return f"{name}: {w.earned} {sku} earned, {w.given} given (the per-order gift cap or the gift stock)"
    if w.code == "no_fx_rate":
        return f"{name}: gift {sku!r} has no exchange rate into the cart's currency for its date"
    return f"{name}: no price list holds gift {sku!r}"


def _stage_name(plan: Plan, rule: int, stage: int) -> str:
    if stage == AdjustmentStage.SET:
        return plan.stages.form_of(rule)
    return ADJUSTMENT_STAGES[stage]


def build_response(
    plan: Plan,
    currency: str,
    date: str,
    records: list[Record],
    extras: CartExtras | None = None,
    context: dict[str, Any] | None = None,
    explain: bool = False,
    cumulative: list[tuple[int, int, int]] | None = None,
) -> dict[str, Any]:
    """One cart's response. ``context`` (the cart's condition values) adds the line
    promotions' quantity hints; ``explain`` adds the promotions that did not apply
    (``cumulative``: per cumulative condition of the plan, the (committed, this cart,
    threshold) figures pricing compared for this cart)."""
    extras = extras if extras is not None else CartExtras()
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    cat = plan.catalog
    money = money_formatter(currency)
    for r in records:
        line: dict[str, Any] = {"id": r.line_id, "sku": r.sku_text, "qty": r.qty_text}
        if r.unit is not None:
            line["unit"] = r.unit
        if r.error != LineError.OK:
            name, message = line_error(r)
            line["status"] = "error"
            line["error"] = {"code": name, "message": message}
            errors.append({"line": r.line_id, "code": name, "message": message})
            lines.append(line)
            continue
        pl_plan = plan.pricelists[r.price_list]
        base_unit = cat.base_units[r.sku]
        adjustments = _adjustments(plan, r.adjustments, money)
        line.update(
            {
                "base_qty": str(r.base_qty // 1000)
                if r.base_qty % 1000 == 0
                else format_quantity(r.base_qty),
                "base_unit": base_unit,
                "status": "ok",
                "price_list": pl_plan.name,
                "unit_price": money(r.unit_price),
                "pricing_unit": base_unit
                if r.factor == 1
                else _unit_named(plan, r.sku, r.factor, base_unit),
                "list_amount": money(r.list_amount),
                "adjustments": adjustments,
                "net_amount": money(r.net),
                "tax_rate": format_percent(r.tax_rate) if r.tax_rate else "0%",
                "tax": money(r.tax),
                "gross_amount": money(r.gross),
            }
        )
        if pl_plan.tax_included:
            line["tax_included"] = True
        if r.status:
            line["status"] = APPROVAL_STATUSES[r.status]
            if r.approval_level is not None:
                line["approval_level"] = r.approval_level
        if r.manual_bp >= 0:
            line["manual_discount"] = format_percent(r.manual_bp)
        if r.clamped:
            line["floor_clamped"] = True
        if r.sublines is not None:
            line["sublines"] = [_subline(plan, sub, base_unit, money) for sub in r.sublines]
        components = plan.stages.bundles.get(r.sku)
        if components:
            line["components"] = _components(plan, components, r.net, money)
        lines.append(line)
    totals = cart_totals(records)
    gifts = [
        {
            "sku": cat.skus[g.sku], "qty": format_quantity(g.qty), "unit_price": money(g.unit_price), "list_amount": money(g.list_amount),
            "net_amount": money(0), "rule": plan.rules[g.rule].name, "source": plan.rules[g.rule].source,
        }
        for g in extras.gifts
    ]  # fmt: skip
    warnings = [
        {
            "code": w.code,
            "rule": plan.rules[w.rule].name,
            "sku": cat.skus[w.sku],
            "earned": str(w.earned),
            "given": str(w.given),
            "message": warning_message(plan, w),
        }
        for w in extras.warnings
    ]
    hints = [
        {
            "rule": plan.rules[rule].name,
            "kind": "spend_more",
            "missing_amount": money(missing),
            "message": f"spend {money(missing)} more: {plan.rules[rule].name}",
        }
        for rule, missing in extras.hints
    ]
    if context is not None:
        hints = quantity_hints(plan, context, currency, records) + hints
    response = {
        "ruleset_version": plan.version,
        "currency": currency,
        "date": date,
        "lines": lines,
        "errors": errors,
        "totals": {
            "list": money(totals.list),
            "discount": money(totals.discount),
            "net": money(totals.net),
            "tax": money(totals.tax),
            "gross": money(totals.gross),
            "gift_value": money(extras.gift_value),
        },
        "gifts": gifts,
        "warnings": warnings,
        "hints": hints,
    }
    if explain and context is not None:
        gift_rules = {g.rule for g in extras.gifts}
        spend = {rule: money(missing) for rule, missing in extras.hints}
        response["not_applied"] = not_applied(
            plan, context, currency, records, gift_rules, extras.switched_off, spend,
            order_reached=extras.order_reached, cumulative=cumulative,
        )  # fmt: skip
    return response


def _adjustments(
    plan: Plan, rows: list[tuple[int, int, int, int]], money: Any
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rule_index, kind, amount, stage in rows:
        if rule_index == MANUAL_RULE:
            out.append(
                {
                    "rule": "manual discount",
                    "kind": "percent_off",
                    "amount": money(amount),
                    "stage": "manual",
                }
            )
        else:
            rule = plan.rules[rule_index]
            out.append(
                {
                    "rule": rule.name,
                    "kind": BENEFIT_KINDS[kind],
                    "amount": money(amount),
                    "source": rule.source,
                    "stage": _stage_name(plan, rule_index, stage),
                }
            )
    return out


def _subline(plan: Plan, r: Record, base_unit: str, money: Any) -> dict[str, Any]:
    """One sub-line of a split line: its quantity in the base unit and its own figures."""
    return {
        "special": r.special,
        "qty": format_quantity(r.base_qty),
        "unit_price": money(r.unit_price),
        "pricing_unit": base_unit
        if r.factor == 1
        else _unit_named(plan, r.sku, r.factor, base_unit),
        "list_amount": money(r.list_amount),
        "adjustments": _adjustments(plan, r.adjustments, money),
        "net_amount": money(r.net),
        "tax": money(r.tax),
        "gross_amount": money(r.gross),
    }


#: which status a split line shows when its sub-lines differ: the one that needs most attention
STATUS_SEVERITY = (0, 2, 1, 3)  # ok < approved < needs_approval < rejected


def merge_sublines(
    subs: list[Record], line_unit_price: int, line_factor: int, line_price_list: int
) -> Record:
    """A split line's record: sums of its sub-lines' figures, their adjustments merged by
    (rule, kind, stage) in the order they first appear, and its list price as unit price."""
    first = subs[0]
    merged: dict[tuple[int, int, int], int] = {}
    for sub in subs:
        for rule, kind, amount, stage in sub.adjustments:
            merged[(rule, kind, stage)] = merged.get((rule, kind, stage), 0) + amount
    worst = max(subs, key=lambda sub: STATUS_SEVERITY[sub.status])
    return first._replace(
        base_qty=sum(sub.base_qty for sub in subs),
        price_list=line_price_list,
        unit_price=line_unit_price,
        factor=line_factor,
        list_amount=sum(sub.list_amount for sub in subs),
        adjustments=[
            (rule, kind, amount, stage)
            for (rule, kind, stage), amount in merged.items()
            if amount != 0
        ],
        net=sum(sub.net for sub in subs),
        tax=sum(sub.tax for sub in subs),
        gross=sum(sub.gross for sub in subs),
        status=worst.status,
        approval_level=worst.approval_level,
        clamped=any(sub.clamped for sub in subs),
        sublines=tuple(subs) if any(sub.special for sub in subs) else None,
        special=False,
    )


def _components(
    plan: Plan, components: tuple[tuple[int, int], ...], net: int, money: Any
) -> list[dict[str, str]]:
    """A bundle line's net over its components by ratio (largest remainder, declared order)."""
    ratios = [ratio for _, ratio in components]
    total = sum(ratios)
    shares = [net * ratio // total for ratio in ratios]
    remainders = sorted(range(len(ratios)), key=lambda i: (-(net * ratios[i] % total), i))
    for i in remainders[: net - sum(shares)]:
        shares[i] += 1
    return [
        {"sku": plan.catalog.skus[sku], "amount": money(share)}
        for (sku, _), share in zip(components, shares, strict=True)
    ]


def write_response(plan: Plan, cart: PricedCart) -> dict[str, Any]:
    """The JSON-ready response of one priced cart."""
    return build_response(
        plan,
        cart.currency,
        cart.date.isoformat(),
        cart.lines,
        cart.extras,
        cart.context,
        cart.explain,
        cart.cumulative,
    )


def priced_carts(
    plan: Plan, batch: CartBatch, priced: PricedLines, explain: list[bool] | None = None
) -> list[PricedCart]:
    """The batch's carts as typed results, in batch order (``explain``: per cart, whether
    it asks for the promotions that did not apply)."""
    rows = priced.rows
    if rows is not None:
        batch = rows.batch  # one record per row, regrouped into lines below
    adj = priced.adjustments
    starts = np.searchsorted(adj.line, np.arange(batch.n_lines + 1)).tolist()
    adj_rule, adj_kind, adj_amount, adj_stage = (
        adj.rule.tolist(),
        adj.kind.tolist(),
        adj.amount.tolist(),
        adj.stage.tolist(),
    )
    outcome = priced.cart_stages
    status = outcome.approval.status.tolist() if outcome else None
    levels = outcome.approval.level if outcome else None
    clamped = outcome.approval.clamped.tolist() if outcome else None
    assert batch.manual_bp is not None
    manual = batch.manual_bp.tolist()
    columns = zip(
        batch.line_cart.tolist(),
        priced.error.tolist(),
        batch.sku.tolist(),
        batch.qty.tolist(),
        priced.price_list.tolist(),
        priced.unit_price.tolist(),
        priced.pricing_factor.tolist(),
        priced.list_amount.tolist(),
        priced.net_amount.tolist(),
        priced.tax_rate.tolist(),
        priced.tax.tolist(),
        priced.gross_amount.tolist(),
        strict=True,
    )
    dates = batch.dates  # computed once: a property over every cart
    per_cart: list[list[Record]] = [[] for _ in dates]
    for i, (
        cart,
        error,
        sku,
        qty,
        li,
        unit_price,
        factor,
        list_amount,
        net,
        rate,
        tax,
        gross,
    ) in enumerate(columns):
        adjustments = [
            (adj_rule[k], adj_kind[k], adj_amount[k], adj_stage[k])
            for k in range(starts[i], starts[i + 1])
        ]
        per_cart[cart].append(
            Record(
                batch.line_ids[i],
                batch.line_skus[i],
                batch.line_qty_text[i],
                batch.line_units[i],
                error,
                sku,
                qty,
                li,
                unit_price,
                factor,
                list_amount,
                adjustments,
                net,
                rate,
                tax,
                gross,
                status[i] if status else 0,
                levels[i] if levels else None,
                bool(clamped[i]) if clamped else False,
                manual[i],
            )  # fmt: skip
        )
    if rows is not None:
        per_cart = _regroup(
            per_cart, rows.line.tolist(), rows.special.tolist(), rows.special_row.tolist(), rows
        )
    currencies = batch.carts["currency"].to_list()
    extras = (
        cart_extras(plan, batch, priced, currencies, explain) if outcome else [None] * len(dates)
    )
    contexts = batch.carts.rows(named=True)
    cumulative: list[list[tuple[int, int, int]] | None] = [None] * len(dates)
    if priced.cumulative:  # the cumulative fields pricing computed, and their figures
        flat = [
            tuple(zip(f.committed.tolist(), f.cart.tolist(), f.threshold.tolist(), strict=True))
            for f in priced.cumulative
        ]
        for c, context in enumerate(contexts):
            cumulative[c] = [per_cart_figures[c] for per_cart_figures in flat]
            for k, (past, now, threshold) in enumerate(cumulative[c] or []):
                context[plan.cumulative[k].field] = "1" if past + now >= threshold else "0"
    return [
        PricedCart(
            currencies[c],
            dates[c],
            per_cart[c],
            extras[c],
            contexts[c],
            bool(explain and explain[c]),
            cumulative[c],
        )
        for c in range(len(dates))
    ]


def _regroup(
    per_cart: list[list[Record]],
    row_line: list[int],
    special: list[bool],
    special_row: list[int],
    rows: Any,
) -> list[list[Record]]:
    """Rows back into lines: a line's rows are adjacent, in cart order."""
    out: list[list[Record]] = []
    i = 0
    unit_price, factor, price_list = (
        rows.line_unit_price.tolist(),
        rows.line_factor.tolist(),
        rows.line_price_list.tolist(),
    )
    for records in per_cart:
        lines: list[Record] = []
        k = 0
        while k < len(records):
            line = row_line[i]
            end = k + 1
            while end < len(records) and row_line[i + end - k] == line:
                end += 1
            subs = [
                records[j]._replace(special=special[i + j - k], special_row=special_row[i + j - k])
                for j in range(k, end)
            ]
            if len(subs) == 1 and not subs[0].special:
                lines.append(subs[0])
            else:
                lines.append(merge_sublines(subs, unit_price[line], factor[line], price_list[line]))
            i += end - k
            k = end
        out.append(lines)
    return out


def cart_extras(
    plan: Plan,
    batch: CartBatch,
    priced: PricedLines,
    currencies: list[str],
    explain: list[bool] | None = None,
) -> list[CartExtras | None]:
    outcome = priced.cart_stages
    assert outcome is not None
    extras = [CartExtras() for _ in currencies]
    explaining = [c for c, asks in enumerate(explain or []) if asks]
    for rule, reached in outcome.order_reached.items():
        for c in explaining:
            if reached[c]:
                extras[c].order_reached.add(rule)
    g = outcome.gifts
    for cart, rule, sku, qty, unit_price, amount in zip(
        g.cart.tolist(),
        g.rule.tolist(),
        g.sku.tolist(),
        g.qty.tolist(),
        g.unit_price.tolist(),
        g.list_amount.tolist(),
        strict=True,
    ):
        extras[cart].gifts.append(Gift(rule, sku, qty, unit_price, amount))
    for w in outcome.warnings:
        extras[w.cart].warnings.append(w)
    for cart, rule in outcome.switched_off:
        extras[cart].switched_off.add(rule)
    for cart, rule, missing in outcome.hints:
        extras[cart].hints.append((rule, missing))
    return list(extras)


def _unit_named(plan: Plan, sku: int, factor: int, base_unit: str) -> str:
    for unit, factors in plan.catalog.unit_factors.items():
        if unit != base_unit and int(factors[sku]) == factor:
            return unit
    return base_unit

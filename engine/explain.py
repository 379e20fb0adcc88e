"""Priced lines out, as JSON-ready dicts: every cent explained, money as decimal strings.

Both paths (bulk arrays and the small-batch probe) describe each line as a ``Record`` of
plain ints, and one function turns records into the response, so the two can't drift.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from engine.cart import LINE_ERRORS, OK, CartBatch
from engine.line_index import KIND_NAMES
from engine.money import format_percent, format_quantity, money_formatter
from engine.plan import Plan
from engine.waterfall import PricedLines

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
    adjustments: list[tuple[int, int, int]]  # (rule, kind, amount)
    net: int
    tax_rate: int
    tax: int
    gross: int


def build_response(plan: Plan, currency: str, date: str, records: list[Record]) -> dict[str, Any]:
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    total_list = total_discount = total_net = total_tax = total_gross = 0
    cat = plan.catalog
    money = money_formatter(currency)
    rules = plan.line_rules
    for r in records:
        line: dict[str, Any] = {"id": r.line_id, "sku": r.sku_text, "qty": r.qty_text}
        if r.unit is not None:
            line["unit"] = r.unit
        if r.error != OK:
            name = LINE_ERRORS[r.error]
            message = f"line {r.line_id}: " + ERROR_MESSAGES[name].format(sku=r.sku_text, unit=r.unit, qty=r.qty_text)
            line["status"] = "error"
            line["error"] = {"code": name, "message": message}
            errors.append({"line": r.line_id, "code": name, "message": message})
            lines.append(line)
            continue
        pl_plan = plan.pricelists[r.price_list]
        base_unit = cat.base_units[r.sku]
        adjustments = []
        for rule_index, kind, amount in r.adjustments:
            rule = rules[rule_index]
            adjustments.append({"rule": rule.name, "kind": KIND_NAMES[kind], "amount": money(amount), "source": rule.source})
            total_discount += amount
        line.update(
            {
                "base_qty": str(r.base_qty // 1000) if r.base_qty % 1000 == 0 else format_quantity(r.base_qty),
                "base_unit": base_unit,
                "status": "ok",
                "price_list": pl_plan.name,
                "unit_price": money(r.unit_price),
                "pricing_unit": base_unit if r.factor == 1 else _unit_named(plan, r.sku, r.factor, base_unit),
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
        lines.append(line)
        total_list += r.list_amount
        total_net += r.net
        total_tax += r.tax
        total_gross += r.gross
    return {
        "ruleset_version": plan.version,
        "currency": currency,
        "date": date,
        "lines": lines,
        "errors": errors,
        "totals": {
            "list": money(total_list),
            "discount": money(total_discount),
            "net": money(total_net),
            "tax": money(total_tax),
            "gross": money(total_gross),
        },
    }


def responses(plan: Plan, batch: CartBatch, priced: PricedLines) -> list[dict[str, Any]]:
    adj = priced.adjustments
    starts = np.searchsorted(adj.line, np.arange(batch.n_lines + 1)).tolist()
    adj_rule, adj_kind, adj_amount = adj.rule.tolist(), adj.kind.tolist(), adj.amount.tolist()
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
    per_cart: list[list[Record]] = [[] for _ in batch.dates]
    for i, (cart, error, sku, qty, li, unit_price, factor, list_amount, net, rate, tax, gross) in enumerate(columns):
        adjustments = [(adj_rule[k], adj_kind[k], adj_amount[k]) for k in range(starts[i], starts[i + 1])]
        per_cart[cart].append(
            Record(
                batch.line_ids[i], batch.line_skus[i], batch.line_qty_text[i], batch.line_units[i],
                error, sku, qty, li, unit_price, factor, list_amount, adjustments, net, rate, tax, gross,
            )
        )
    currencies = batch.carts["currency"].to_list()
    return [build_response(plan, currencies[c], batch.dates[c].isoformat(), per_cart[c]) for c in range(len(batch.dates))]


def _unit_named(plan: Plan, sku: int, factor: int, base_unit: str) -> str:
    for unit, factors in plan.catalog.unit_factors.items():
        if unit != base_unit and int(factors[sku]) == factor:
            return unit
    return base_unit

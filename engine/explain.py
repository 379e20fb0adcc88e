"""Priced lines out, as JSON-ready dicts: every cent explained, money as decimal strings."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.cart import LINE_ERRORS, OK, CartBatch
from engine.line_index import KIND_NAMES
from engine.money import format_money, format_percent, format_quantity
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


def responses(plan: Plan, batch: CartBatch, priced: PricedLines) -> list[dict[str, Any]]:
    currencies = batch.carts["currency"].to_list()
    n_carts = len(batch.dates)
    out: list[dict[str, Any]] = [
        {
            "ruleset_version": plan.version,
            "currency": currencies[c],
            "date": batch.dates[c].isoformat(),
            "lines": [],
            "errors": [],
        }
        for c in range(n_carts)
    ]
    adj = priced.adjustments
    starts = np.searchsorted(adj.line, np.arange(batch.n_lines + 1))
    sums = {name: [0] * n_carts for name in ("list", "discount", "net", "tax", "gross")}
    cat = plan.catalog
    for i in range(batch.n_lines):
        c = int(batch.line_cart[i])
        cur = currencies[c]
        line: dict[str, Any] = {"id": batch.line_ids[i], "sku": batch.line_skus[i], "qty": batch.line_qty_text[i]}
        if batch.line_units[i] is not None:
            line["unit"] = batch.line_units[i]
        code = int(priced.error[i])
        if code != OK:
            name = LINE_ERRORS[code]
            message = f"line {batch.line_ids[i]}: " + ERROR_MESSAGES[name].format(
                sku=batch.line_skus[i], unit=batch.line_units[i], qty=batch.line_qty_text[i]
            )
            line["status"] = "error"
            line["error"] = {"code": name, "message": message}
            out[c]["errors"].append({"line": batch.line_ids[i], "code": name, "message": message})
            out[c]["lines"].append(line)
            continue
        s = int(batch.sku[i])
        li = int(priced.price_list[i])
        pl_plan = plan.pricelists[li]
        base_unit = cat.base_units[s]
        factor = int(priced.pricing_factor[i])
        pricing_unit = base_unit if factor == 1 else _unit_named(plan, s, factor, base_unit)
        adjustments = []
        for k in range(int(starts[i]), int(starts[i + 1])):
            rule = plan.line_rules[int(adj.rule[k])]
            adjustments.append(
                {"rule": rule.name, "kind": KIND_NAMES[int(adj.kind[k])], "amount": format_money(int(adj.amount[k]), cur), "source": rule.source}
            )
            sums["discount"][c] += int(adj.amount[k])
        line.update(
            {
                "base_qty": format_quantity(int(batch.qty[i])),
                "base_unit": base_unit,
                "status": "ok",
                "price_list": pl_plan.name,
                "unit_price": format_money(int(priced.unit_price[i]), cur),
                "pricing_unit": pricing_unit,
                "list_amount": format_money(int(priced.list_amount[i]), cur),
                "adjustments": adjustments,
                "net_amount": format_money(int(priced.net_amount[i]), cur),
                "tax_rate": format_percent(int(priced.tax_rate[i])),
                "tax": format_money(int(priced.tax[i]), cur),
                "gross_amount": format_money(int(priced.gross_amount[i]), cur),
            }
        )
        if pl_plan.tax_included:
            line["tax_included"] = True
        out[c]["lines"].append(line)
        sums["list"][c] += int(priced.list_amount[i])
        sums["net"][c] += int(priced.net_amount[i])
        sums["tax"][c] += int(priced.tax[i])
        sums["gross"][c] += int(priced.gross_amount[i])
    for c in range(n_carts):
        out[c]["totals"] = {name: format_money(values[c], currencies[c]) for name, values in sums.items()}
    return out


def _unit_named(plan: Plan, sku: int, factor: int, base_unit: str) -> str:
    for unit, factors in plan.catalog.unit_factors.items():
        if unit != base_unit and int(factors[sku]) == factor:
            return unit
    return base_unit

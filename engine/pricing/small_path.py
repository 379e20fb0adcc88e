"""The small-batch path: one cart priced by probing the compiled plan with scalar lookups.

A vectorized call costs tens of microseconds of fixed overhead per numpy/polars operation,
which dominates a 10-line cart. This path walks the cart's few lines against the *same*
compiled plan — the same price-list row tables, the same per-signature promotion tables,
the same programs — through Python lists and dicts the compiler derives once, when it
finishes the plan (``finish``; ``Plan.small``): nothing is built while serving. Its cost
does not grow with the number of rules. Property tests require it to agree with the
bulk path (``engine.pricing.pipeline``) and the reference interpreter to the minor unit.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dsl.schema import CART_TEXT_FIELDS
from engine.core.codes import BenefitKind, LineError
from engine.core.money import (
    BP_SCALE,
    CURRENCY_EXPONENTS,
    MAX_LINE_AMOUNT_MINOR,
    MAX_QTY_MILLI,
    QTY_SCALE,
    int_round_div,
)
from engine.plan.compiled import Plan
from engine.plan.conditions import holds_for_cart
from engine.plan.price_lists import PriceListPlan
from engine.pricing.cart import MAX_LINES_PER_CART, CartError, cart_date, cart_quantity, cart_text
from engine.results.responses import Record, build_response


class _ListProbe:
    def __init__(self, plan: PriceListPlan) -> None:
        self.plan = plan
        self.breaks = plan.break_values.tolist()
        self.n_breaks = len(self.breaks)
        self.dense = plan.dense.tolist() if plan.dense is not None else None
        self.keyed: dict[int, list[tuple[int, int]]] = {}
        if plan.sorted_keys is not None and plan.sorted_rows is not None:
            for composite, row in zip(
                plan.sorted_keys.tolist(), plan.sorted_rows.tolist(), strict=True
            ):
                prefix, brk = divmod(composite, self.n_breaks)
                self.keyed.setdefault(prefix, []).append((brk, row))
        self.prices = plan.row_price.tolist()
        self.factors = plan.row_factor.tolist()
        self.currency = plan.currency
        self.tax_included = plan.tax_included

    def lookup(self, sku: int, key: int, qty: int) -> int:
        brk = bisect_right(self.breaks, qty) - 1
        if brk < 0:
            return -1
        if self.dense is not None:
            return int(self.dense[sku * self.n_breaks + brk])
        if key < 0:
            return -1
        rows = self.keyed.get(sku * self.plan.key_radix + key)
        if not rows:
            return -1
        pos = bisect_right(rows, (brk, 1 << 62)) - 1
        return rows[pos][1] if pos >= 0 else -1

    def key_of(self, values: Mapping[str, Any]) -> int:
        code = 0
        for j, name in enumerate(self.plan.keyed_fields):
            mapping = self.plan.key_codes[j]
            value = values.get(name)
            found = mapping.get(value) if isinstance(value, str) else None
            if found is None:
                return -1
            code = code * (len(mapping) + 1) + found
        return code


class SmallPath:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        cat = plan.catalog
        self.sku_index = cat.sku_index
        self.base_units = cat.base_units
        self.unit_factors = {unit: arr.tolist() for unit, arr in cat.unit_factors.items()}
        tax_col = cat.text["tax_class"]
        self.tax_class = [tax_col.values[c] if c >= 0 else None for c in tax_col.codes.tolist()]
        self.lists = [_ListProbe(p) for p in plan.pricelists]
        index = plan.line_index
        self.index = index
        self.q_bounds = index.qty_bounds.tolist()
        self.a_bounds = index.amount_bounds.tolist()
        self.kind = index.benefit_kind.tolist()
        self.bp = index.benefit_bp.tolist()
        self.amount = index.benefit_amount.tolist()
        self.rule = (
            plan.line_rule_ids[index.benefit_rule].tolist() if len(index.benefit_rule) else []
        )
        self.exclusive = index.programs.benefit_exclusive.tolist()
        self.customer_attrs = plan.customer_attrs
        # every tax rate a line can get: a region or trade term no tax row names is looked up
        # as None (both match only the rows that leave that key open)
        rows = plan.tax.rows if plan.tax is not None else ()
        self.tax_regions = frozenset(r[0] for r in rows if r[0] is not None)
        self.tax_terms = frozenset(r[2] for r in rows if r[2] is not None)
        self.tax_rates: dict[tuple[Any, Any, Any], int] = {
            (region, tax_class, term): plan.tax.rate(region, tax_class, term)
            if plan.tax is not None
            else 0
            for region in (*self.tax_regions, None)
            for tax_class in {*self.tax_class, None}
            for term in (*self.tax_terms, None)
        }

    def factor(self, unit: str | None, sku: int) -> int:
        if unit is None or unit == self.base_units[sku]:
            return 1
        found = self.unit_factors.get(unit)
        return found[sku] if found is not None else 0

    def _context(self, cart: Mapping[str, Any]) -> tuple[dict[str, Any], str, Any]:
        plan = self.plan
        currency = cart.get("currency", plan.currency)
        if currency not in CURRENCY_EXPONENTS:
            raise CartError("unknown_currency", f"cart: unknown currency {currency!r}", "currency")
        day = cart_date(cart.get("date"), plan.timezone, "cart")
        customer = cart.get("customer") or {}
        if not isinstance(customer, Mapping):
            raise CartError("bad_cart", "cart: customer must be an object", "customer")
        values: dict[str, Any] = {"date": day.toordinal(), "currency": currency}
        for name in CART_TEXT_FIELDS:
            if name.startswith("customer."):
                values[name] = cart_text(customer.get(name.removeprefix("customer.")))
            elif name != "currency":
                values[name] = cart_text(cart.get(name))
        for attr in self.customer_attrs:
            values[f"customer.{attr}"] = cart_text(customer.get(attr))
        return values, currency, day

    def quote(self, cart: Any, max_lines: int = MAX_LINES_PER_CART) -> dict[str, Any]:
        values, currency, day, records = self._price(cart, max_lines)
        return build_response(
            self.plan,
            currency,
            day.isoformat(),
            records,
            context=values,
            explain=cart.get("explain") is True,
        )

    def price(
        self, cart: Any, max_lines: int = MAX_LINES_PER_CART
    ) -> tuple[str, dt.date, list[Record]]:
        """The priced lines of one cart as plain-int records (no formatting)."""
        _, currency, day, records = self._price(cart, max_lines)
        return currency, day, records

    def _price(
        self, cart: Any, max_lines: int
    ) -> tuple[dict[str, Any], str, dt.date, list[Record]]:
        if not isinstance(cart, Mapping):
            raise CartError("bad_cart", "cart: a cart must be a JSON object")
        values, currency, day = self._context(cart)
        lines = cart.get("lines")
        if not isinstance(lines, list) or not lines:
            raise CartError("no_lines", "cart: 'lines' must be a non-empty list", "lines")
        if len(lines) > max_lines:
            raise CartError(
                "too_many_lines", f"cart: {len(lines)} lines; at most {max_lines}", "lines"
            )
        plan = self.plan
        half_even = plan.rounding == "half_even"
        # everything the line loop touches, hoisted into locals (this loop is the hot path)
        active = [
            (li, probe, probe.key_of(values) if probe.plan.keyed_fields else 0)
            for li, probe in enumerate(self.lists)
            if holds_for_cart(probe.plan.conjuncts, values)
        ]
        index = self.index
        # the slot first: an unfinished index may add a table
        slot_base = index.slot_of_context(values) * index.n_sku if index.rules else 0
        table = index.table().data if index.rules else None
        n_cells, n_acells = index.n_cells, index.n_acells
        q_bounds, a_bounds = self.q_bounds, self.a_bounds
        amounts = self.amount
        money_missing = False
        if currency != plan.currency and plan.money_in_promotions:
            rate = plan.fx.rate(plan.currency, currency, values["date"])
            if rate is None:
                money_missing = True  # no ruleset->cart rate for the promotions' amounts
            else:
                edges, converted = index.in_currency(rate, plan.currency, currency, plan.rounding)
                a_bounds, amounts = edges.tolist(), converted.tolist()
        slots_of = index.programs.slots
        sku_index, base_units, unit_factors = self.sku_index, self.base_units, self.unit_factors
        tax_class, tax_rates = self.tax_class, self.tax_rates
        region, term = values["customer.region"], values["trade_term"]
        region = region if region in self.tax_regions else None
        term = term if term in self.tax_terms else None
        day_ordinal = values["date"]
        records: list[Record] = []
        append = records.append
        for i, line in enumerate(lines):
            if not isinstance(line, Mapping):
                raise CartError("bad_line", f"cart: line {i + 1} must be an object", f"lines[{i}]")
            raw_id = line.get("id")
            line_id = (
                raw_id if type(raw_id) is str and raw_id else (cart_text(raw_id) or str(i + 1))
            )
            sku_text = line.get("sku")
            if type(sku_text) is not str:
                raise CartError(
                    "bad_line", f"cart: line {line_id} needs a 'sku' string", f"lines[{i}].sku"
                )
            unit = line.get("unit")
            if unit is not None and type(unit) is not str:
                raise CartError(
                    "bad_line", f"cart: line {line_id}: 'unit' must be a string", f"lines[{i}].unit"
                )
            raw_qty = line.get("qty")
            if type(raw_qty) is str:
                qty_text = raw_qty
                milli = (
                    int(raw_qty) * QTY_SCALE
                    if raw_qty.isascii() and raw_qty.isdigit()
                    else cart_quantity(raw_qty)
                )
            else:
                qty_text = (
                    str(raw_qty)
                    if isinstance(raw_qty, int | float) and not isinstance(raw_qty, bool)
                    else repr(raw_qty)
                )
                milli = cart_quantity(raw_qty)
            sku = sku_index.get(sku_text, -1)
            error = LineError.OK
            qty = 0
            if sku < 0:
                error = LineError.UNKNOWN_SKU
            else:
                if unit is None or unit == base_units[sku]:
                    factor = 1
                else:
                    found = unit_factors.get(unit)
                    factor = found[sku] if found is not None else 0
                if factor <= 0:
                    error = LineError.UNKNOWN_UNIT
                elif milli <= 0 or milli * factor > MAX_QTY_MILLI:
                    error = LineError.BAD_QUANTITY
                else:
                    qty = milli * factor
            chosen = row = -1
            probe = None
            if error == LineError.OK:
                for li, candidate, key in active:
                    row = candidate.lookup(sku, key, qty)
                    if row >= 0:
                        chosen, probe = li, candidate
                        break
                else:
                    error = LineError.NO_PRICE
            unit_price = price_factor = list_amount = 0
            if probe is not None:
                price_factor = probe.factors[row]
                if probe.currency == currency:
                    unit_price = probe.prices[row]
                else:
                    rate = plan.fx.rate(probe.currency, currency, day_ordinal)
                    if rate is None:
                        error = LineError.NO_FX_RATE
                    else:
                        unit_price = int(probe.plan.prices_in(currency, rate, plan.rounding)[row])
                if error == LineError.OK:
                    list_amount = int_round_div(
                        unit_price * qty, price_factor * QTY_SCALE, half_even
                    )
                    if list_amount >= MAX_LINE_AMOUNT_MINOR:
                        error, list_amount = LineError.AMOUNT_TOO_LARGE, 0
                    elif money_missing:
                        error, list_amount = LineError.NO_FX_RATE, 0
            if error != LineError.OK or probe is None:
                append(
                    Record(
                        line_id,
                        sku_text,
                        qty_text,
                        unit,
                        error,
                        sku,
                        qty,
                        -1,
                        unit_price,
                        price_factor if error == LineError.AMOUNT_TOO_LARGE else 1,
                        0,
                        [],
                        0,
                        0,
                        0,
                        0,
                    )
                )
                continue
            net = list_amount
            adjustments: list[tuple[int, int, int, int]] = []
            if table is not None:
                cell = bisect_right(q_bounds, qty) * n_acells + bisect_right(a_bounds, list_amount)
                program = table[(slot_base + sku) * n_cells + cell]
                if program:
                    net = self._apply(slots_of[program], net, qty, adjustments, half_even, amounts)
            rate_bp = tax_rates[(region, tax_class[sku], term)]
            if probe.tax_included:
                net_of_tax = int_round_div(net * BP_SCALE, BP_SCALE + rate_bp, half_even)
                tax = net - net_of_tax
            else:
                net_of_tax = net
                tax = int_round_div(net * rate_bp, BP_SCALE, half_even) if rate_bp else 0
            append(
                Record(
                    line_id,
                    sku_text,
                    qty_text,
                    unit,
                    LineError.OK,
                    sku,
                    qty,
                    chosen,
                    unit_price,
                    price_factor,
                    list_amount,
                    adjustments,
                    net_of_tax,
                    rate_bp,
                    tax,
                    net_of_tax + tax,
                )
            )
        return values, currency, day, records

    def _apply(
        self,
        slots: tuple[tuple[int, ...], ...],
        net: int,
        qty: int,
        adjustments: list[tuple[int, int, int, int]],
        half_even: bool,
        amounts: list[int],
    ) -> int:
        for members in slots:
            best, best_discount = -1, -1
            for b in members:
                kind = self.kind[b]
                if kind == BenefitKind.PERCENT_OFF:
                    discount, ok = int_round_div(net * self.bp[b], BP_SCALE, half_even), True
                else:
                    by_qty = int_round_div(amounts[b] * qty, QTY_SCALE, half_even)
                    if kind == BenefitKind.AMOUNT_OFF:
                        discount, ok = min(net, by_qty), True
                    else:
                        discount, ok = net - by_qty, by_qty < net
                    assert kind in (BenefitKind.AMOUNT_OFF, BenefitKind.FIXED_PRICE)
                discount = max(discount, 0)
                if ok and discount > best_discount:
                    best, best_discount = b, discount
            if best < 0:
                continue
            net -= best_discount
            if best_discount:
                adjustments.append((self.rule[best], self.kind[best], -best_discount, 0))
            if self.exclusive[best]:
                break
        return net


def finish(plan: Plan) -> Plan:
    """The plan with every table a quote reads built: each signature's line-promotion table
    (every cart context the rules can tell apart), the amounts and prices at every rate of
    the fx table, and the small-batch path's tables. The compiler calls it once; pricing
    after it only reads."""
    plan.line_index.finish(plan.fx, plan.currency, plan.rounding)
    for pricelist in plan.pricelists:
        pricelist.finish(plan.fx, plan.rounding)
    probes = SmallPath(plan)
    finished = replace(plan, small=probes)
    probes.plan = finished
    return finished


def small_path(plan: Plan) -> SmallPath:
    """The plan's small-batch tables (built by ``finish``); a plan that was not finished
    gets them built for this call and not kept."""
    probes = plan.small
    if isinstance(probes, SmallPath) and probes.plan is plan:
        return probes
    return SmallPath(plan)

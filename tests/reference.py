"""The oracle: a plain, line-by-line interpreter of the rule tree that prices one cart.

It follows SPEC §2 and §3 (stages 1, 2, 4, 10 and Stacking) as directly as it can, with
Python ints for money (minor units) and quantities (thousandths), so that the vectorized
engine can be checked against it to the minor unit. It reads the tree from
``dsl.parser`` and nothing of the checker, the compiler or the engine but ``DataSet`` and
the parse/format helpers of ``engine.money``; it rounds with its own exact fractions.
Speed is not a goal; being obviously right is. Where the brief was silent it follows
docs/language.md.

>>> from engine.data import DataSet
>>> data = DataSet.from_rows(
...     [{"sku": "A", "base_unit": "pcs"}], {"prices": [{"sku": "A", "price": "2.50"}]}
... )
>>> rules = {"r.rule": 'ruleset "x" currency CNY\\npricelist "p" { table prices }'}
>>> reference_quote(rules, data, {"date": "2026-11-22", "lines": [{"sku": "A", "qty": "3"}]})[
...     "totals"
... ]["net"]
'7.50'

What neither says is decided in one place each and marked "decided:". A case outside
what is decided at all (say, a money literal applied to a cart in another currency)
raises ``Undecided`` rather than guessing; the property tests never generate one.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from fractions import Fraction
from zoneinfo import ZoneInfo

from dsl import tree as t
from dsl.parser import parse_sources
from engine.data import DataSet
from engine.money import (
    CURRENCY_EXPONENTS,
    MAX_LINE_AMOUNT_MINOR,
    MAX_QTY_MILLI,
    MoneyError,
    Rounding,
    format_money,
    format_percent,
    format_quantity,
    parse_money,
    parse_percent,
    parse_quantity,
    parse_rate,
)

FX_TABLE = "fx_rates"

#: Context fields read straight off the cart (``customer.<attr>``, ``currency`` and ``date``
#: are handled apart).
CART_FIELDS = ("channel", "project", "trade_term")

#: Line fields read off the catalog row; ``item.<col>`` reads any catalog column.
CATALOG_FIELDS = ("sku", "category", "brand", "tax_class")

#: Tax table key columns and where the line's value comes from.
TAX_KEYS = ("region", "tax_class", "trade_term")


class Undecided(Exception):
    """The rules say nothing about this case; the oracle refuses to guess."""


# ---- rounding: exact fractions, rounded once on the magnitude ------------------------------


def rounded(value: Fraction, mode: Rounding) -> int:
    """Round to an integer on the magnitude: half away from zero, or half to even."""
    magnitude = abs(value)
    whole = math.floor(magnitude)
    rest = magnitude - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and (mode == "half_up" or whole % 2 == 1)):
        whole += 1
    return whole if value >= 0 else -whole


def percent_of(amount: int, bp: int, mode: Rounding) -> int:
    """round(amount x percent), the percent in basis points."""
    return rounded(Fraction(amount * bp, 10_000), mode)


def amount_for(per_unit: int, base_milli: int, mode: Rounding) -> int:
    """round(price per base unit x quantity), the quantity in thousandths."""
    return rounded(Fraction(per_unit * base_milli, 1000), mode)


def convert(amount: int, rate: tuple[int, int], src: str, dst: str, mode: Rounding) -> int:
    """Minor units of ``src`` to minor units of ``dst`` at ``rate`` (dst per src)."""
    major = Fraction(amount, 10 ** CURRENCY_EXPONENTS[src]) * Fraction(rate[0], rate[1])
    return rounded(major * 10 ** CURRENCY_EXPONENTS[dst], mode)


# ---- the ruleset, read off the tree ----------------------------------------------------


@dataclass
class Rules:
    name: str
    currency: str
    timezone: str
    rounding: Rounding
    price_lists: list[t.PriceList]  # in trial order: priority desc, name asc
    promotions: list[t.Promotion]  # in waterfall order: priority desc, name asc
    tax: t.TaxRule | None


def read_rules(sources: dict[str, str]) -> Rules:
    ruleset = parse_sources(sources)
    headers: list[t.Header] = []
    price_lists: list[t.PriceList] = []
    promotions: list[t.Promotion] = []
    taxes: list[t.TaxRule] = []
    for decl in ruleset.declarations():
        if isinstance(decl, t.Header):
            headers.append(decl)
        elif isinstance(decl, t.PriceList):
            price_lists.append(decl)
        elif isinstance(decl, t.Promotion):
            promotions.append(decl)
        elif isinstance(decl, t.TaxRule):
            taxes.append(decl)
    # What the checker refuses, the oracle refuses too.
    if len(headers) != 1 or headers[0].currency is None:
        raise ValueError("a ruleset has exactly one header, with a currency (E0102)")
    header = headers[0]
    if len(taxes) > 1:
        raise ValueError("a ruleset has at most one tax rule")
    price_lists.sort(key=lambda p: (-p.priority, p.name))
    promotions.sort(key=lambda p: (-p.priority, p.name))
    rounding: Rounding = "half_even" if header.rounding == "half_even" else "half_up"
    return Rules(
        name=header.name,
        currency=header.currency,
        timezone=header.timezone or "UTC",  # the documented default
        rounding=rounding,
        price_lists=price_lists,
        promotions=promotions,
        tax=taxes[0] if taxes else None,
    )


# ---- the catalog -----------------------------------------------------------------------


@dataclass
class Item:
    sku: str
    base_unit: str
    units: dict[str, int]  # unit name -> factor to the base unit, base unit included
    columns: dict[str, str | None]  # every catalog column, as text

    def factor(self, unit: str) -> int | None:
        return self.units.get(unit)


def read_catalog(data: DataSet) -> dict[str, Item]:
    items: dict[str, Item] = {}
    for row in data.catalog.to_dicts():
        sku = row["sku"]
        base = row["base_unit"]
        units = {base: 1}
        for part in (row.get("units") or "").split(";"):
            if part.strip():
                name, factor = part.split("=")
                units[name.strip()] = int(factor)
        items[sku] = Item(sku=sku, base_unit=base, units=units, columns=dict(row))
    return items


def rows_of(data: DataSet, name: str) -> list[dict[str, str | None]]:
    return data.table(name).to_dicts()


# ---- a cart and its lines --------------------------------------------------------------


@dataclass
class Context:
    """What every condition can see about the cart as a whole."""

    cart: dict
    currency: str
    date: dt.date
    #: ruleset currency -> cart currency, when they differ and the rules name money
    money_rate: tuple[int, int] | None = None

    def customer(self, key: str) -> object | None:
        customer = self.cart.get("customer") or {}
        return customer.get(key)


@dataclass
class Line:
    id: str
    item: Item
    unit: str
    qty_text: str
    base_milli: int  # quantity in thousandths of the base unit
    list_amount: int | None = None  # minor units of the cart currency, once priced
    tax_included: bool = False
    adjustments: list[dict] = field(default_factory=list)


def cart_date(cart: dict, timezone: str) -> dt.date:
    zone = ZoneInfo(timezone)
    value = cart.get("date")
    if value is None:
        return dt.datetime.now(zone).date()
    if not isinstance(value, str):
        raise ValueError(f"cart date {value!r} is not a string")
    if len(value) == 10:
        return dt.date.fromisoformat(value)
    stamp = dt.datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        # decided: a timestamp without an offset is already in the ruleset's time zone.
        return stamp.date()
    return stamp.astimezone(zone).date()


# ---- conditions ------------------------------------------------------------------------


def field_kind(name: str) -> str:
    if name == "qty":
        return "qty"
    if name == "amount":
        return "money"
    if name == "date":
        return "date"
    return "text"


def field_value(name: str, ctx: Context, line: Line | None) -> object | None:
    """The field's value on this cart (and line); None when it is missing (null)."""
    if name == "date":
        return ctx.date
    if name == "currency":
        return ctx.currency
    if name.startswith("customer."):
        return ctx.customer(name.removeprefix("customer."))
    if name in CART_FIELDS:
        return ctx.cart.get(name)
    if line is None:
        raise Undecided(f"line field {name!r} where only the cart context is known")
    if name == "qty":
        return line.base_milli
    if name == "amount":
        return line.list_amount
    if name in CATALOG_FIELDS:
        return line.item.columns.get(name)
    if name.startswith("item."):
        return line.item.columns.get(name.removeprefix("item."))
    raise Undecided(f"unknown field {name!r}")


class NoSuchUnit(Exception):
    """A quantity written in a unit the line's SKU does not have."""


def literal_value(lit: t.Literal_, kind: str, ctx: Context, rules: Rules, line: Line | None) -> object:
    """A literal as a value of the field's kind (thousandths, minor units, date, text)."""
    if kind == "text":
        if isinstance(lit, t.StringLit):
            return lit.value
    elif kind == "date":
        if isinstance(lit, t.DateLit):
            return lit.value
    elif kind == "qty":
        if isinstance(lit, t.NumberLit):
            return parse_quantity(lit.text)  # a bare number is in base units
        if isinstance(lit, t.QtyLit):
            assert line is not None
            factor = line.item.factor(lit.unit)
            if factor is None:
                raise NoSuchUnit(lit.unit)
            return parse_quantity(lit.text) * factor
    elif kind == "money":
        return money_literal(lit, ctx, rules)
    raise Undecided(f"a {type(lit).__name__} compared with a {kind} field")


def money_literal(lit: t.Literal_, ctx: Context, rules: Rules) -> int:
    """Money in the rules, as minor units of the cart currency."""
    if isinstance(lit, t.NumberLit):
        currency = rules.currency  # a bare number is in the ruleset currency
    elif isinstance(lit, t.MoneyLit):
        currency = lit.currency
    else:
        raise Undecided(f"a {type(lit).__name__} where money is expected")
    value = parse_money(lit.text, currency)
    if currency != ctx.currency:
        # decided (docs/engine.md): rule money is converted into the cart's currency at the
        # cart date's ruleset->cart rate, rounded once per figure
        assert ctx.money_rate is not None, "price_line refuses such carts without a rate"
        return convert(value, ctx.money_rate, currency, ctx.currency, rules.rounding)
    return value


def names_money(promotion: t.Promotion) -> bool:
    """Does a promotion's scope read or give an amount of money?"""
    scope = promotion.scope
    if scope is None:
        return False
    action = scope.action
    if isinstance(action, t.Tiers):
        if action.measure == "amount":
            return True
        benefits = [step.benefit for step in action.steps]
    else:
        benefits = [action]
    if any(not isinstance(b, t.PercentOff) for b in benefits):
        return True
    return scope.where is not None and _reads_amount(scope.where)


def _reads_amount(cond: t.Condition) -> bool:
    if isinstance(cond, t.Compare | t.InSet):
        return cond.field.name == "amount"
    if isinstance(cond, t.Not):
        return _reads_amount(cond.item)
    return any(_reads_amount(item) for item in cond.items)


def compare(left: object, op: str, right: object) -> bool:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if isinstance(left, str):
        raise Undecided("ordering comparison on text")
    if op == "<":
        return left < right  # type: ignore[operator]
    if op == "<=":
        return left <= right  # type: ignore[operator]
    if op == ">":
        return left > right  # type: ignore[operator]
    if op == ">=":
        return left >= right  # type: ignore[operator]
    raise ValueError(f"unknown comparator {op!r}")


def holds(
    cond: t.Condition, ctx: Context, rules: Rules, line: Line | None, negated: bool = False
) -> bool:
    """Evaluate a condition, or its negation when ``negated`` (``not`` flips it).

    On a null field ``==``, ``<``... and ``in`` are false; ``!=`` and ``not in`` are true;
    ``not`` turns them around as usual. A comparison written in a unit the line's SKU
    lacks (``qty >= 2 box`` on a SKU without boxes) is false either way, even under
    ``not`` (docs/language.md §7), which is why the negation is carried down to the
    comparisons (De Morgan) instead of applied to the result.
    """
    if isinstance(cond, t.Not):
        return holds(cond.item, ctx, rules, line, not negated)
    if isinstance(cond, t.And | t.Or):
        results = [holds(c, ctx, rules, line, negated) for c in cond.items]
        every = isinstance(cond, t.And) != negated  # not (a and b) == (not a) or (not b)
        return all(results) if every else any(results)
    try:
        truth = comparison_holds(cond, ctx, rules, line)
    except NoSuchUnit:
        return False
    return truth != negated


def comparison_holds(cond: t.Compare | t.InSet, ctx: Context, rules: Rules, line: Line | None) -> bool:
    kind = field_kind(cond.field.name)
    value = field_value(cond.field.name, ctx, line)
    if isinstance(cond, t.Compare):
        right = literal_value(cond.value, kind, ctx, rules, line)
        if value is None:
            return cond.op == "!="
        return compare(value, cond.op, right)
    members = [literal_value(v, kind, ctx, rules, line) for v in cond.values]
    if value is None:
        return cond.negated
    return (value in members) != cond.negated


def in_window(valid: t.Validity | None, date: dt.date) -> bool:
    return valid is None or valid.start <= date <= valid.end


# ---- stage 1: normalize ----------------------------------------------------------------


class LineError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def normalize(raw: dict, line_id: str, catalog: dict[str, Item]) -> Line:
    sku = raw.get("sku")
    item = catalog.get(sku) if isinstance(sku, str) else None
    if item is None:
        raise LineError("unknown_sku", f"line {line_id}: unknown SKU {sku!r}")
    unit = raw.get("unit")
    if unit is None:
        unit = item.base_unit
    factor = item.factor(unit) if isinstance(unit, str) else None
    if factor is None:
        raise LineError("unknown_unit", f"line {line_id}: SKU {item.sku!r} has no unit {unit!r}")
    qty = raw.get("qty")
    try:
        # decided: a JSON integer is as good as its decimal string; a float is not.
        if isinstance(qty, bool) or not isinstance(qty, (str, int)):
            raise MoneyError("not a decimal string")
        milli = parse_quantity(str(qty))
    except MoneyError:
        raise LineError("bad_quantity", f"line {line_id}: quantity {qty!r} is not valid") from None
    base_milli = milli * factor
    # decided: the one-billion limit is on the base quantity (MAX_QTY_MILLI).
    if milli <= 0 or base_milli > MAX_QTY_MILLI:
        raise LineError("bad_quantity", f"line {line_id}: quantity {qty!r} is out of range")
    return Line(id=line_id, item=item, unit=unit, qty_text=str(qty), base_milli=base_milli)


# ---- stage 2: list price ---------------------------------------------------------------


@dataclass
class ListPrice:
    price_list: t.PriceList
    unit_price: int  # cart currency minor units per pricing unit
    pricing_unit: str
    factor: int  # of the pricing unit


def key_column(field_name: str) -> str:
    return field_name.replace(".", "_")


def list_row(
    price_list: t.PriceList, ctx: Context, line: Line, data: DataSet
) -> dict[str, str | None] | None:
    """The quantity-break row of this list for the line, or None if the list lacks the SKU."""
    assert price_list.table is not None
    candidates = []
    for row in rows_of(data, price_list.table.name):
        if row.get("sku") != line.item.sku:
            continue
        keys_match = True
        for key in price_list.table.keyed_by:
            wanted = field_value(key.name, ctx, None)
            if wanted is None or row.get(key_column(key.name)) != wanted:
                keys_match = False
        if not keys_match:
            continue
        min_qty = parse_quantity(row.get("min_qty") or "0")
        if min_qty <= line.base_milli:
            candidates.append((min_qty, row))
    if not candidates:
        return None
    best_min = max(min_qty for min_qty, _ in candidates)
    # decided: two rows with the same largest min_qty -> the first in table order.
    return next(row for min_qty, row in candidates if min_qty == best_min)


def fx_rate(data: DataSet, src: str, dst: str, date: dt.date) -> tuple[int, int] | None:
    if FX_TABLE not in data.tables:
        return None
    best: tuple[dt.date, dict] | None = None
    for row in rows_of(data, FX_TABLE):
        if row.get("from") != src or row.get("to") != dst:
            continue
        day = dt.date.fromisoformat(str(row["date"]))
        # decided: two rows for the same (from, to, date) -> the first in table order.
        if day <= date and (best is None or day > best[0]):
            best = (day, row)
    if best is None:
        return None
    return parse_rate(str(best[1]["rate"]))


def list_price(rules: Rules, ctx: Context, line: Line, data: DataSet) -> ListPrice:
    for price_list in rules.price_lists:
        if not in_window(price_list.valid, ctx.date):
            continue
        if price_list.when is not None and not holds(price_list.when, ctx, rules, None):
            continue
        if price_list.table is None:
            continue
        row = list_row(price_list, ctx, line, data)
        if row is None:
            continue
        unit = row.get("unit") or line.item.base_unit
        factor = line.item.factor(unit)
        if factor is None:
            raise ValueError(f"price row unit {unit!r} is not a unit of {line.item.sku!r}")
        currency = price_list.currency or rules.currency
        price = parse_money(str(row["price"]), currency)
        if currency != ctx.currency:
            rate = fx_rate(data, currency, ctx.currency, ctx.date)
            if rate is None:
                raise LineError(
                    "no_fx_rate",
                    f"line {line.id}: no {currency}->{ctx.currency} rate on {ctx.date}",
                )
            price = convert(price, rate, currency, ctx.currency, rules.rounding)
        return ListPrice(price_list=price_list, unit_price=price, pricing_unit=unit, factor=factor)
    raise LineError("no_price", f"line {line.id}: no price list holds SKU {line.item.sku!r}")


# ---- stage 4: line promotions ----------------------------------------------------------


def waterfall_steps(promotions: list[t.Promotion]) -> list[list[t.Promotion]]:
    """Promotions in order, a best-of group as one step at its first member's place."""
    steps: list[list[t.Promotion]] = []
    groups: dict[str, list[t.Promotion]] = {}
    for promo in promotions:
        if promo.group is None:
            steps.append([promo])
        elif promo.group in groups:
            groups[promo.group].append(promo)
        else:
            groups[promo.group] = [promo]
            steps.append(groups[promo.group])
    return steps


def chosen_benefit(promo: t.Promotion, ctx: Context, rules: Rules, line: Line) -> t.Benefit | None:
    """The benefit this promotion gives the line, or None if it does not apply to it."""
    if promo.scope is None:
        return None
    if not in_window(promo.valid, ctx.date):
        return None
    if promo.when is not None and not holds(promo.when, ctx, rules, None):
        return None
    if promo.scope.where is not None and not holds(promo.scope.where, ctx, rules, line):
        return None
    action = promo.scope.action
    if not isinstance(action, t.Tiers):
        return action
    kind = "qty" if action.measure == "qty" else "money"
    measure = line.base_milli if action.measure == "qty" else line.list_amount
    reached = None
    for step in action.steps:  # the highest step reached, whatever order they are written in
        threshold = literal_value(step.threshold, kind, ctx, rules, line)
        assert isinstance(threshold, int) and isinstance(measure, int)
        if threshold <= measure and (reached is None or threshold >= reached[0]):
            reached = (threshold, step.benefit)
    return None if reached is None else reached[1]


def discount(benefit: t.Benefit, net: int, ctx: Context, rules: Rules, line: Line) -> int | None:
    """What the benefit takes off the running net ``net``; None if it does not apply."""
    if isinstance(benefit, t.PercentOff):
        return percent_of(net, parse_percent(benefit.percent.text), rules.rounding)
    if isinstance(benefit, t.AmountOff):
        per_unit = money_literal(benefit.amount, ctx, rules)
        return min(net, amount_for(per_unit, line.base_milli, rules.rounding))
    assert isinstance(benefit, t.FixedPrice)
    per_unit = money_literal(benefit.price, ctx, rules)
    target = amount_for(per_unit, line.base_milli, rules.rounding)
    if target < net:
        return net - target
    return None


BENEFIT_KIND = {t.PercentOff: "percent_off", t.AmountOff: "amount_off", t.FixedPrice: "fixed_price"}


def apply_promotions(rules: Rules, ctx: Context, line: Line) -> int:
    """Run the line promotions on the line; records its adjustments and returns its net."""
    assert line.list_amount is not None
    net = line.list_amount
    for members in waterfall_steps(rules.promotions):
        best: tuple[t.Promotion, t.Benefit, int] | None = None
        for promo in members:
            benefit = chosen_benefit(promo, ctx, rules, line)
            if benefit is None:
                continue
            off = discount(benefit, net, ctx, rules, line)
            if off is None:
                continue
            if best is None or off > best[2]:  # ties: the earlier member in sort order
                best = (promo, benefit, off)
        if best is None:
            continue
        promo, benefit, off = best
        net -= off
        if off != 0:
            line.adjustments.append(
                {"rule": promo.name, "kind": BENEFIT_KIND[type(benefit)], "amount": -off}
            )
        if promo.stacking == "exclusive":
            break
    return net


# ---- stage 10: tax ---------------------------------------------------------------------


def tax_rate(rules: Rules, ctx: Context, line: Line, data: DataSet) -> int:
    """The line's tax rate in basis points: the matching row with the most keys, else 0."""
    if rules.tax is None:
        return 0
    values = {
        "region": ctx.customer("region"),
        "tax_class": line.item.columns.get("tax_class"),
        "trade_term": ctx.cart.get("trade_term"),
    }
    best: tuple[int, dict] | None = None
    for row in rows_of(data, rules.tax.table.name):
        keys = [k for k in TAX_KEYS if row.get(k) not in (None, "", "*")]  # empty or * = any
        if any(row[k] != values[k] for k in keys):
            continue
        if best is None or len(keys) > best[0]:  # ties: the first row in table order
            best = (len(keys), row)
    if best is None:
        return 0
    return parse_percent(str(best[1]["rate"]))


# ---- the whole quote -------------------------------------------------------------------


def price_line(rules: Rules, ctx: Context, line: Line, data: DataSet) -> dict:
    price = list_price(rules, ctx, line, data)
    if ctx.currency != rules.currency and ctx.money_rate is None and any(names_money(p) for p in rules.promotions):
        raise LineError(
            "no_fx_rate",
            f"line {line.id}: no {rules.currency}->{ctx.currency} rate on {ctx.date} for the promotions' amounts",
        )
    list_amount = rounded(Fraction(price.unit_price * line.base_milli, price.factor * 1000), rules.rounding)
    if abs(list_amount) >= MAX_LINE_AMOUNT_MINOR:
        raise LineError("amount_too_large", f"line {line.id}: the line amount is too large")
    line.list_amount = list_amount
    line.tax_included = price.price_list.tax_included
    running = apply_promotions(rules, ctx, line)
    rate = tax_rate(rules, ctx, line, data)
    if line.tax_included:
        gross = running
        net = rounded(Fraction(gross * 10_000, 10_000 + rate), rules.rounding)
        tax = gross - net
    else:
        net = running
        tax = percent_of(net, rate, rules.rounding)
    money = ctx.currency
    return {
        "id": line.id,
        "sku": line.item.sku,
        "qty": line.qty_text,
        "unit": line.unit,
        "base_qty": format_quantity(line.base_milli),
        "base_unit": line.item.base_unit,
        "status": "ok",
        "price_list": price.price_list.name,
        "unit_price": format_money(price.unit_price, money),
        "pricing_unit": price.pricing_unit,
        "list_amount": format_money(list_amount, money),
        "adjustments": [
            {"rule": a["rule"], "kind": a["kind"], "amount": format_money(a["amount"], money)}
            for a in line.adjustments
        ],
        "net_amount": format_money(net, money),
        "tax_rate": format_percent(rate),
        "tax": format_money(tax, money),
        "gross_amount": format_money(net + tax, money),
        # the same figures as ints, for the totals; dropped before returning
        "_minor": {
            "list": list_amount,
            "discount": sum(a["amount"] for a in line.adjustments),
            "net": net,
            "tax": tax,
            "gross": net + tax,
        },
    }


def reference_quote(sources: dict[str, str], data: DataSet, cart: dict) -> dict:
    """Price one cart by walking the rule tree; the response shape of ``engine.api.quote``."""
    rules = read_rules(sources)
    catalog = read_catalog(data)
    currency = cart.get("currency") or rules.currency
    if currency not in CURRENCY_EXPONENTS:
        raise ValueError(f"unknown currency {currency!r}")
    ctx = Context(cart=cart, currency=currency, date=cart_date(cart, rules.timezone))
    if currency != rules.currency:
        ctx.money_rate = fx_rate(data, rules.currency, currency, ctx.date)

    lines: list[dict] = []
    errors: list[dict] = []
    totals = {"list": 0, "discount": 0, "net": 0, "tax": 0, "gross": 0}
    for position, raw in enumerate(cart["lines"], start=1):
        line_id = str(raw.get("id", position))
        try:
            line = normalize(raw, line_id, catalog)
            priced = price_line(rules, ctx, line, data)
        except LineError as err:
            lines.append(
                {
                    "id": line_id,
                    "sku": raw.get("sku"),
                    "qty": raw.get("qty"),
                    "status": "error",
                    "error": {"code": err.code, "message": err.message},
                }
            )
            errors.append({"line": line_id, "code": err.code, "message": err.message})
            continue
        for key, value in priced.pop("_minor").items():
            totals[key] += value
        lines.append(priced)

    return {
        "currency": currency,
        "date": ctx.date.isoformat(),
        "lines": lines,
        "errors": errors,
        "totals": {key: format_money(value, currency) for key, value in totals.items()},
    }

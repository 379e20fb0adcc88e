"""The oracle: a plain, line-by-line interpreter of the rule tree that prices one cart.

It follows SPEC §2 and §3 (stages 1, 2, 4-10, Stacking and Allocation) as directly as it
can, with Python ints for money (minor units) and quantities (thousandths), so that the
vectorized engine can be checked against it to the minor unit. Stages 5-9 (combos, pools,
order promotions, gifts, caps, floors, manual discounts, bundles, hints) follow
docs/promotions.md word by word; each stage is one function below, named after it.
It reads the tree from ``dsl.parser`` and nothing of the checker, the compiler or the
engine but ``DataSet`` and the parse/format helpers of ``engine.core.money``; it rounds with
its own exact fractions. Speed is not a goal; being obviously right is. Where the brief
was silent it follows docs/language.md.

Stage 3 (special prices) splits a line into sub-lines (docs/promotions.md "Special
prices"): each sub-line is a ``Line`` of its own from then on, which sees its parent's
quantity and list amount in line promotions' conditions, and the response sums them back.

>>> from engine.core.data import DataSet
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
from engine.core.data import DataSet
from engine.core.money import (
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
    floor: t.FloorDecl | None = None
    approvals: list[t.ApprovalDecl] = field(default_factory=list)  # priority desc, name asc
    special: t.SpecialDecl | None = None


def read_rules(sources: dict[str, str]) -> Rules:
    ruleset = parse_sources(sources)
    headers: list[t.Header] = []
    price_lists: list[t.PriceList] = []
    promotions: list[t.Promotion] = []
    taxes: list[t.TaxRule] = []
    floors: list[t.FloorDecl] = []
    approvals: list[t.ApprovalDecl] = []
    specials: list[t.SpecialDecl] = []
    for decl in ruleset.declarations():
        if isinstance(decl, t.Header):
            headers.append(decl)
        elif isinstance(decl, t.PriceList):
            price_lists.append(decl)
        elif isinstance(decl, t.Promotion):
            promotions.append(decl)
        elif isinstance(decl, t.TaxRule):
            taxes.append(decl)
        elif isinstance(decl, t.FloorDecl):
            floors.append(decl)
        elif isinstance(decl, t.ApprovalDecl):
            approvals.append(decl)
        elif isinstance(decl, t.SpecialDecl):
            specials.append(decl)
    # What the checker refuses, the oracle refuses too.
    if len(headers) != 1 or headers[0].currency is None:
        raise ValueError("a ruleset has exactly one header, with a currency (E0102)")
    header = headers[0]
    if len(taxes) > 1:
        raise ValueError("a ruleset has at most one tax rule")
    if len(floors) > 1:
        raise ValueError("a ruleset has at most one floor declaration")
    if len(specials) > 1:
        raise ValueError("a ruleset has at most one special prices declaration")
    price_lists.sort(key=lambda p: (-p.priority, p.name))
    promotions.sort(key=lambda p: (-p.priority, p.name))
    approvals.sort(key=lambda a: (-a.priority, a.name))
    rounding: Rounding = "half_even" if header.rounding == "half_even" else "half_up"
    return Rules(
        name=header.name,
        currency=header.currency,
        timezone=header.timezone or "UTC",  # the documented default
        rounding=rounding,
        price_lists=price_lists,
        promotions=promotions,
        tax=taxes[0] if taxes else None,
        floor=floors[0] if floors else None,
        approvals=approvals,
        special=specials[0] if specials else None,
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
    #: promotions whose cumulative conditions do not hold for this cart (SPEC §3.6)
    cumulative_off: set[str] = field(default_factory=set)

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
    #: {"rule", "kind", "stage", "amount" (negative minor units)}, in stage then evaluation
    #: order, so the last one is the most recently applied
    adjustments: list[dict] = field(default_factory=list)
    price: ListPrice | None = None
    stopped: bool = False  # an exclusive promotion applied to it (docs/promotions.md)
    consumed: int = 0  # thousandths taken by combo/pool promotions so far
    status: str = "ok"
    approval_level: str | None = None
    floor_clamped: bool = False
    position: int = -1  # among the cart's priced lines (cart order)
    manual: str | None = None  # the requested manual discount, as written ("7%")
    special: bool = False  # a special-price sub-line (stage 3)
    #: a sub-line of a split line: what line promotions' conditions see (the whole line's
    #: base quantity and list amount); None on a line that was not split
    whole: tuple[int, int] | None = None
    parent_price: ListPrice | None = None  # a sub-line: the whole line's list price

    @property
    def net(self) -> int:
        """The running net: the list amount minus every adjustment made so far."""
        assert self.list_amount is not None
        return self.list_amount + sum(a["amount"] for a in self.adjustments)

    def add(self, rule: str, kind: str, stage: str, off: int) -> None:
        """Record ``off`` (a positive discount) as an adjustment; nothing when it is zero."""
        # decided: a zero adjustment is not recorded, as in stage 4 (docs/engine.md).
        if off != 0:
            self.adjustments.append({"rule": rule, "kind": kind, "stage": stage, "amount": -off})


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
        return line.base_milli if line.whole is None else line.whole[0]
    if name == "amount":
        return line.list_amount if line.whole is None else line.whole[1]
    if name in CATALOG_FIELDS:
        return line.item.columns.get(name)
    if name.startswith("item."):
        return line.item.columns.get(name.removeprefix("item."))
    raise Undecided(f"unknown field {name!r}")


class NoSuchUnit(Exception):
    """A quantity written in a unit the line's SKU does not have."""


def literal_value(
    lit: t.Literal_, kind: str, ctx: Context, rules: Rules, line: Line | None
) -> object:
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
    """Does a promotion's scope (or a cap, or a cumulative amount) read or give money?"""
    if any(c.measure == "amount" for c in promotion.cumulative):
        return True
    scope = promotion.scope
    if scope is None:
        return False
    if any(cap.kind in ("discount", "budget") for cap in promotion.caps):
        return True
    if isinstance(scope, t.OrderScope):
        return True  # its thresholds are money
    if isinstance(scope, t.ComboScope | t.PoolScope):
        if isinstance(scope, t.PoolScope) and isinstance(scope.every, t.MoneyLit):
            return True
        return isinstance(scope.benefit, t.AmountOff | t.FixedPrice)
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


def comparison_holds(
    cond: t.Compare | t.InSet, ctx: Context, rules: Rules, line: Line | None
) -> bool:
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


# ---- cumulative conditions (SPEC §3.6) --------------------------------------------------


def item_selected(selector: t.ItemSelector, item: Item) -> bool:
    name = selector.field.name
    value = (
        item.columns.get(name.removeprefix("item."))
        if name.startswith("item.")
        else item.columns.get(name)
    )
    return value is not None and value in [
        v.value for v in selector.values if isinstance(v, t.StringLit)
    ]


def cumulative_holds(
    promo: t.Promotion,
    ctx: Context,
    rules: Rules,
    lines: list[Line],
    ledger: Ledger,
    catalog: dict[str, Item],
) -> bool:
    """Every ``cumulative`` condition of the promotion: the customer's committed lines
    dated inside its window (all of them without a window) plus this cart's priced lines,
    whole (before any special-price split): base quantity, or net amount committed and
    list amount in the cart."""
    customer = ctx.customer("id")
    for c in promo.cumulative:
        past = 0
        for row in ledger.committed_lines:
            item = catalog.get(str(row["sku"]))
            if (
                customer is None
                or row["customer_id"] != customer
                or item is None
                or not item_selected(c.selector, item)
            ):
                continue
            if not in_window(promo.valid, dt.date.fromisoformat(str(row["date"]))):
                continue
            if c.measure == "qty":
                past += parse_quantity(str(row["qty"]))
            else:
                past += parse_money(str(row.get("amount") or "0"), rules.currency)
        if c.measure == "qty":
            now = sum(line.base_milli for line in lines if item_selected(c.selector, line.item))
            threshold = literal_value(c.threshold, "qty", ctx, rules, None)
        else:
            if ctx.currency != rules.currency:
                if ctx.money_rate is None:
                    return False  # its lines are no_fx_rate anyway
                past = convert(past, ctx.money_rate, rules.currency, ctx.currency, rules.rounding)
            now = sum(
                line.list_amount or 0 for line in lines if item_selected(c.selector, line.item)
            )
            threshold = money_literal(c.threshold, ctx, rules)
        assert isinstance(threshold, int)
        if past + now < threshold:
            return False
    return True


# ---- stage 3: special prices -----------------------------------------------------------


def special_row(rules: Rules, ctx: Context, line: Line, data: DataSet) -> dict | None:
    """The special-price row for the line: the one naming the cart's project if valid on
    the cart date, else the one without a project (blank = any project), else None."""
    assert rules.special is not None
    customer = ctx.customer("id")
    project = (ctx.cart.get("project") or "").strip()
    found: dict[str, dict] = {}
    for row in rows_of(data, rules.special.table):
        if (row.get("customer_id") or "").strip() != customer or (
            row.get("sku") or ""
        ).strip() != line.item.sku:
            continue
        start = (row.get("valid_from") or "").strip()
        end = (row.get("valid_to") or "").strip()
        if start and ctx.date < dt.date.fromisoformat(start):
            continue
        if end and ctx.date > dt.date.fromisoformat(end):
            continue
        row_project = (row.get("project") or "").strip()
        if row_project == "":
            found.setdefault("any", row)
        elif row_project == project:
            found.setdefault("project", row)
    return found.get("project") or found.get("any")


def split_special(
    rules: Rules, ctx: Context, line: Line, data: DataSet, left: dict, ledger: Ledger
) -> list[Line]:
    """Stage 3 on one priced line: itself, or its special-price sub-line (within what is
    left of the quotas) and its list-price sub-line (the rest). ``left`` carries what is
    left of each row's quotas from line to line of the cart."""
    if rules.special is None:
        return [line]
    row = special_row(rules, ctx, line, data)
    if row is None:
        return [line]
    key = (
        (row.get("customer_id") or "").strip(),
        (row.get("project") or "").strip(),
        line.item.sku,
    )
    if key not in left:
        used_qty, used_amount = ledger.special_used.get(key, (0, 0))
        qty_quota = (row.get("qty_quota") or "").strip()
        amount_quota = (row.get("amount_quota") or "").strip()
        left[key] = [
            max(0, parse_quantity(qty_quota) - used_qty) if qty_quota else None,
            max(0, parse_money(amount_quota, rules.currency) - used_amount)
            if amount_quota
            else None,
        ]
    qty_left, amount_left = left[key]
    price = parse_money(
        str(row["price"]).strip(), rules.currency
    )  # per base unit, ruleset currency
    take = line.base_milli
    if qty_left is not None:
        take = min(take, qty_left)
    if amount_left is not None and price > 0:
        take = min(take, amount_left // price * 1000)  # whole units within the amount left
    if take <= 0:
        return [line]
    cart_price = price
    if ctx.currency != rules.currency:
        rate = fx_rate(data, rules.currency, ctx.currency, ctx.date)
        if rate is None:
            raise LineError(
                "no_fx_rate",
                f"line {line.id}: no {rules.currency}->{ctx.currency} rate for its special price",
            )
        cart_price = convert(price, rate, rules.currency, ctx.currency, rules.rounding)
    if qty_left is not None:
        left[key][0] = qty_left - take
    if amount_left is not None:
        left[key][1] = amount_left - rounded(Fraction(price * take, 1000), rules.rounding)
    assert line.price is not None and line.list_amount is not None
    whole = (line.base_milli, line.list_amount)
    special = Line(
        id=line.id, item=line.item, unit=line.unit, qty_text=line.qty_text, base_milli=take,
        list_amount=rounded(Fraction(cart_price * take, 1000), rules.rounding),
        price=ListPrice(price_list=line.price.price_list, unit_price=cart_price, pricing_unit=line.item.base_unit, factor=1),
        special=True, whole=whole, parent_price=line.price,
    )  # fmt: skip
    # decided: special prices are net of tax, whatever the list says
    subs = [special]
    rest = line.base_milli - take
    if rest > 0:
        subs.append(
            Line(
                id=line.id,
                item=line.item,
                unit=line.unit,
                qty_text=line.qty_text,
                base_milli=rest,
                list_amount=rounded(
                    Fraction(line.price.unit_price * rest, line.price.factor * 1000), rules.rounding
                ),
                price=line.price,
                tax_included=line.tax_included,
                whole=whole,
                parent_price=line.price,
            )  # fmt: skip
        )
    return subs


# ---- the state of one quote ------------------------------------------------------------


@dataclass
class Ledger:
    """What committed orders already consumed (SPEC §5). Without one, nothing was."""

    budget_used: dict[str, int] = field(
        default_factory=dict
    )  # promotion -> minor units (ruleset currency)
    uses: dict[tuple[str, str | None], int] = field(
        default_factory=dict
    )  # (promotion, customer id) -> orders
    gift_stock_used: dict[str, int] = field(default_factory=dict)  # promotion -> gift units
    #: (customer id, project or "", sku) -> (thousandths, minor units of the ruleset currency)
    special_used: dict[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)
    #: committed order lines: {"customer_id", "date", "sku", "qty", "amount"} (decimal text)
    committed_lines: list[dict] = field(default_factory=list)


def read_ledger(ledger: dict | None, currency: str = "CNY") -> Ledger:
    """``special_consumed`` is a list of ``{"customer_id", "project", "sku", "qty",
    "amount"}`` (decimal strings, as in the scenario files; project and amount optional)."""
    ledger = ledger or {}
    special_used: dict[tuple[str, str, str], tuple[int, int]] = {}
    for row in ledger.get("special_consumed") or []:
        key = (str(row["customer_id"]), str(row.get("project") or ""), str(row["sku"]))
        qty, amount = special_used.get(key, (0, 0))
        qty += parse_quantity(str(row.get("qty") or "0"))
        amount += parse_money(str(row.get("amount") or "0"), currency)
        special_used[key] = (qty, amount)
    return Ledger(
        budget_used=dict(ledger.get("budget_used") or {}),
        uses=dict(ledger.get("uses") or {}),
        gift_stock_used=dict(ledger.get("gift_stock_used") or {}),
        special_used=special_used,
        committed_lines=list(ledger.get("committed_lines") or []),
    )


@dataclass(eq=False)
class Run:
    """One quote in progress: its priced lines (cart order) and what the stages produced."""

    rules: Rules
    ctx: Context
    data: DataSet
    catalog: dict[str, Item]
    ledger: Ledger
    lines: list[Line]
    gifts: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    hints: list[dict] = field(default_factory=list)
    #: what each promotion took from this cart, after its caps (for the invariants)
    taken: dict[str, int] = field(default_factory=dict)
    #: a tie was broken by cart order somewhere (so reordering lines may change figures)
    order_sensitive: bool = False

    def money(self, lit: t.Literal_) -> int:
        return money_literal(lit, self.ctx, self.rules)


# ---- allocation (SPEC §3 Allocation; docs/promotions.md "Allocation") --------------------


def allocate(amount: int, weights: list[int], run: Run | None = None) -> list[int]:
    """Spread ``amount`` over non-negative integer weights by largest remainder.

    ``share_i = floor(A x w_i / W)``; the ``A - sum(share_i)`` leftover minor units go one
    each to the largest remainders ``(A x w_i) mod W``, ties to the earlier entry. ``W = 0``:
    the whole amount to the first entry. A negative amount: its magnitude, negated. With a
    ``run``, the entries are lines in cart order, and a tie that decided a leftover (or
    ``W = 0`` over several lines) marks the quote as depending on the order of its lines.
    """
    if not weights:
        assert amount == 0, "an amount with nowhere to go"
        return []
    assert all(w >= 0 for w in weights)
    sign = -1 if amount < 0 else 1
    whole = abs(amount)
    total_weight = sum(weights)
    if total_weight == 0:
        shares = [whole] + [0] * (len(weights) - 1)
        if run is not None and whole != 0 and len(weights) > 1:
            run.order_sensitive = True
    else:
        shares = [whole * w // total_weight for w in weights]
        leftover = whole - sum(shares)
        remainders = [whole * w % total_weight for w in weights]
        order = sorted(range(len(weights)), key=lambda i: -remainders[i])  # stable: earlier first
        for i in order[:leftover]:
            shares[i] += 1
        tie = (
            0 < leftover < len(weights)
            and remainders[order[leftover - 1]] == remainders[order[leftover]]
        )
        if run is not None and tie:
            run.order_sensitive = True
    assert sum(shares) == whole
    return [sign * s for s in shares]


# ---- caps (stage 8, applied at each promotion's own step) --------------------------------


def cap_count(promo: t.Promotion, kind: t.CapKind) -> int | None:
    cap = promo.cap(kind)
    return None if cap is None else int(cap.value.text)  # type: ignore[union-attr]


def budget_remaining(promo: t.Promotion, run: Run) -> int | None:
    """What is left of the promotion's budget, in the cart's currency (None: no budget)."""
    cap = promo.cap("budget")
    if cap is None:
        return None
    if not isinstance(cap.value, t.NumberLit | t.MoneyLit):
        raise Undecided("a budget that is not money")
    budget = parse_money(cap.value.text, run.rules.currency)  # the checker allows no other
    remaining = budget - run.ledger.budget_used.get(promo.name, 0)
    if run.ctx.currency != run.rules.currency:
        assert run.ctx.money_rate is not None
        return convert(
            remaining, run.ctx.money_rate, run.rules.currency, run.ctx.currency, run.rules.rounding
        )
    return remaining


def switched_off(promo: t.Promotion, run: Run) -> bool:
    """A budget with nothing left, or a customer who used up ``uses N per customer``."""
    remaining = budget_remaining(promo, run)
    if remaining is not None and remaining <= 0:
        return True
    uses = cap_count(promo, "uses")
    customer = run.ctx.customer("id")
    return uses is not None and run.ledger.uses.get((promo.name, customer), 0) >= uses  # type: ignore[arg-type]


def capped_applications(promo: t.Promotion, count: int) -> int:
    """``max N per order``: combo sets, pool applications, ``order every`` steps."""
    most = cap_count(promo, "applications")
    return count if most is None else min(count, most)


def clip(promo: t.Promotion, offs: list[int], run: Run) -> list[int]:
    """``max discount X per order`` and ``budget``: the promotion's total over the cart is
    clipped to the smallest limit; what is kept is allocated over the lines pro rata by
    their unclipped adjustments (largest remainder)."""
    limits = []
    cap = promo.cap("discount")
    if cap is not None:
        limits.append(run.money(cap.value))
    remaining = budget_remaining(promo, run)
    if remaining is not None:
        limits.append(remaining)
    if not limits or sum(offs) <= min(limits):
        return offs
    return allocate(min(limits), offs, run)


# ---- which promotion belongs to which stage, and best-of groups ---------------------------


def stage_of(promo: t.Promotion) -> str:
    scope = promo.scope
    if isinstance(scope, t.ComboScope):
        return "combo"
    if isinstance(scope, t.PoolScope):
        return "pool"
    if isinstance(scope, t.OrderScope):
        return "order"
    return "line"


def waterfall_steps(promotions: list[t.Promotion]) -> list[list[t.Promotion]]:
    """Promotions in order, a best-of group as one step at its first member's place.

    decided: a group is formed per stage (line; combo and pool; order). A group whose
    members sit in different stages has one step in each stage.
    """
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


def promotions_of(run: Run, *stages: str) -> list[t.Promotion]:
    return [p for p in run.rules.promotions if p.scope is not None and stage_of(p) in stages]


def cart_promotion_holds(promo: t.Promotion, run: Run) -> bool:
    """``valid`` and ``when`` hold for the cart, and no cap switched the promotion off."""
    if not in_window(promo.valid, run.ctx.date):
        return False
    if promo.name in run.ctx.cumulative_off:
        return False
    if promo.when is not None and not holds(promo.when, run.ctx, run.rules, None):
        return False
    return not switched_off(promo, run)


# ---- stage 4: line promotions ----------------------------------------------------------


def chosen_benefit(promo: t.Promotion, ctx: Context, rules: Rules, line: Line) -> t.Benefit | None:
    """The benefit this promotion gives the line, or None if it does not apply to it."""
    if not isinstance(promo.scope, t.LineScope):
        return None
    if not in_window(promo.valid, ctx.date):
        return None
    if promo.name in ctx.cumulative_off:
        return None
    if promo.when is not None and not holds(promo.when, ctx, rules, None):
        return None
    if promo.scope.where is not None and not holds(promo.scope.where, ctx, rules, line):
        return None
    action = promo.scope.action
    if not isinstance(action, t.Tiers):
        return action
    kind = "qty" if action.measure == "qty" else "money"
    measure = field_value("qty" if action.measure == "qty" else "amount", ctx, line)
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


def stage_line_promotions(run: Run) -> None:
    """Each step on every line: a best-of group keeps per line the member giving the most
    (ties: the earlier member); then each promotion's caps clip its total over the cart."""
    for members in waterfall_steps(promotions_of(run, "line")):
        kept: dict[str, list[tuple[Line, t.Benefit, int]]] = {p.name: [] for p in members}
        for line in run.lines:
            if line.stopped:
                continue
            best: tuple[t.Promotion, t.Benefit, int] | None = None
            for promo in members:
                if switched_off(promo, run):
                    continue
                if line.special and not promo.includes_special:
                    continue  # special-price sub-lines take no promotion that does not include them
                benefit = chosen_benefit(promo, run.ctx, run.rules, line)
                if benefit is None:
                    continue
                off = discount(benefit, line.net, run.ctx, run.rules, line)
                if off is None:
                    continue
                if best is None or off > best[2]:  # ties: the earlier member in sort order
                    best = (promo, benefit, off)
            if best is not None:
                kept[best[0].name].append((line, best[1], best[2]))
        for promo in members:
            entries = kept[promo.name]
            if not entries:
                continue
            offs = clip(promo, [off for _, _, off in entries], run)
            for (line, benefit, _), off in zip(entries, offs, strict=True):
                line.add(promo.name, BENEFIT_KIND[type(benefit)], "line", off)
                if promo.stacking == "exclusive":
                    line.stopped = True
            run.taken[promo.name] = sum(offs)


# ---- stages 5 and 6 share this: what one combo, pool or order promotion would do ----------


@dataclass(eq=False)
class Outcome:
    promo: t.Promotion
    stage: str  # combo | pool | order
    kind: str | None  # percent_off | amount_off | fixed_price; None for gifts
    offs: list[tuple[Line, int]]  # after caps, in cart order
    consumed: list[tuple[Line, int]]  # thousandths taken from each line
    touched: list[Line]  # the lines it applies to (stopped by it when it is exclusive)
    gift: dict | None = None
    gift_value: int = 0
    warnings: list[dict] = field(default_factory=list)

    @property
    def value(self) -> int:
        """What a best-of group compares: the discount plus the list value of the gifts."""
        return sum(off for _, off in self.offs) + self.gift_value


def best_outcome(outcomes: list[Outcome | None]) -> Outcome | None:
    best = None
    for outcome in outcomes:  # in evaluation order: ties to the earlier member
        if outcome is not None and (best is None or outcome.value > best.value):
            best = outcome
    return best


def commit(outcome: Outcome, run: Run) -> None:
    promo = outcome.promo
    for line, off in outcome.offs:
        assert outcome.kind is not None
        line.add(promo.name, outcome.kind, outcome.stage, off)
    for line, milli in outcome.consumed:
        line.consumed += milli
    if promo.stacking == "exclusive":
        for line in outcome.touched:
            line.stopped = True
    if outcome.gift is not None:
        run.gifts.append(outcome.gift)
    run.warnings.extend(outcome.warnings)
    if outcome.kind is not None:
        run.taken[promo.name] = sum(off for _, off in outcome.offs)


# ---- stage 7: gifts (given at the promotion's step, so best-of groups can value them) -----


def give_gift(
    promo: t.Promotion, gift: t.Gift, count: int, run: Run
) -> tuple[dict | None, int, list[dict]]:
    """The gift line for ``count`` sets/applications/steps, its list value, and warnings."""
    earned = int(gift.qty.text) * count
    given = earned
    most = cap_count(promo, "gifts")
    if most is not None:
        given = min(given, most)
    stock = cap_count(promo, "gift_stock")
    if stock is not None:
        given = min(given, max(0, stock - run.ledger.gift_stock_used.get(promo.name, 0)))
    warnings = []
    if given < earned:
        # decided: any shortfall (the per-order gift cap or the stock) is a gift_short.
        warnings.append(
            {
                "code": "gift_short",
                "rule": promo.name,
                "earned": str(earned),
                "given": str(given),
                "message": f"{promo.name}: {earned} {gift.sku.value} earned, {given} given",
            }
        )
    if given == 0:
        return None, 0, warnings
    item = run.catalog.get(gift.sku.value)
    if item is None:
        raise ValueError(f"gift {gift.sku.value!r} is not in the catalog (E0303)")
    line = Line(
        id="gift", item=item, unit=item.base_unit, qty_text=str(given), base_milli=given * 1000
    )
    try:
        price = list_price(run.rules, run.ctx, line, run.data)
    except LineError as err:
        # decided: a gift that cannot be priced (no_price, or no_fx_rate) warns with that code.
        warnings.append(
            {"code": err.code, "rule": promo.name, "sku": item.sku, "message": err.message}
        )
        return None, 0, warnings
    list_amount = rounded(
        Fraction(price.unit_price * line.base_milli, price.factor * 1000), run.rules.rounding
    )
    money = run.ctx.currency
    gift_line = {
        "sku": item.sku,
        "qty": format_quantity(line.base_milli),
        "unit_price": format_money(price.unit_price, money),
        "list_amount": format_money(list_amount, money),
        "net_amount": format_money(0, money),
        "rule": promo.name,
        "source": f"{promo.span.file}:{promo.span.line}",
    }
    return gift_line, list_amount, warnings


# ---- stage 5: combos and pools ------------------------------------------------------------


def counted_lines(promo: t.Promotion, run: Run) -> list[Line]:
    """The lines a promotion counts and gives to: special-price sub-lines only if it says
    ``includes special``."""
    return [line for line in run.lines if promo.includes_special or not line.special]


def available(line: Line) -> int:
    """Units a combo/pool promotion may still take: none from a stopped line."""
    return 0 if line.stopped else line.base_milli - line.consumed


def selects(selector: t.ItemSelector, line: Line, run: Run) -> bool:
    value = field_value(selector.field.name, run.ctx, line)
    return value is not None and value in [
        v.value for v in selector.values if isinstance(v, t.StringLit)
    ]


def net_unit_price(line: Line) -> int:
    """Running net x 1000 / base quantity (thousandths), rounded down to a minor unit."""
    return line.net * 1000 // line.base_milli


def consume(
    entries: list[tuple[Line, int]], need: int, cheapest_first: bool, run: Run
) -> list[tuple[Line, int]]:
    """Take ``need`` thousandths from (line, available) entries in unit order: the highest
    net unit price first (``cheapest first``: the lowest); ties by cart order."""
    sign = 1 if cheapest_first else -1
    ordered = sorted(entries, key=lambda e: sign * net_unit_price(e[0]))  # stable: cart order
    taken: list[tuple[Line, int]] = []
    for line, avail in ordered:
        take = min(avail, need)
        taken.append((line, take))
        need -= take
    assert need == 0
    # a tie matters when the walk stops inside a run of equal prices
    for price in {net_unit_price(line) for line, _ in ordered}:
        tied = [
            (take, avail)
            for (line, take), (_, avail) in zip(taken, ordered, strict=True)
            if net_unit_price(line) == price
        ]
        if (
            len(tied) > 1
            and not all(take == avail for take, avail in tied)
            and not all(take == 0 for take, _ in tied)
        ):
            run.order_sensitive = True
    return sorted([(line, take) for line, take in taken if take > 0], key=lambda e: e[0].position)


def consumed_net(line: Line, milli: int, run: Run) -> int:
    """``c_i = round(running net x consumed / quantity)``."""
    return rounded(Fraction(line.net * milli, line.base_milli), run.rules.rounding)


def set_outcome(
    promo: t.Promotion, stage: str, count: int, consumed: list[tuple[Line, int]], run: Run
) -> Outcome:
    """The benefit of ``count`` sets (combo) or applications (pool), summed and allocated once."""
    scope = promo.scope
    assert isinstance(scope, t.ComboScope | t.PoolScope)
    benefit = scope.benefit
    lines = [line for line, _ in consumed]
    outcome = Outcome(
        promo=promo, stage=stage, kind=None, offs=[], consumed=consumed, touched=lines
    )
    if isinstance(benefit, t.Gift):
        outcome.gift, outcome.gift_value, outcome.warnings = give_gift(promo, benefit, count, run)
        return outcome
    weights = [consumed_net(line, milli, run) for line, milli in consumed]
    if isinstance(benefit, t.PercentOff):
        bp = parse_percent(benefit.percent.text)
        offs = [percent_of(c, bp, run.rules.rounding) for c in weights]
    elif isinstance(benefit, t.AmountOff):
        offs = allocate(run.money(benefit.amount) * count, weights, run)
    else:  # fixed_price X per set: the set costs X
        offs = allocate(max(0, sum(weights) - run.money(benefit.price) * count), weights, run)
    offs = [
        min(off, line.net) for line, off in zip(lines, offs, strict=True)
    ]  # never above the net
    offs = clip(promo, offs, run)
    outcome.kind = BENEFIT_KIND[type(benefit)]
    outcome.offs = list(zip(lines, offs, strict=True))
    return outcome


def evaluate_combo(promo: t.Promotion, run: Run) -> Outcome | None:
    scope = promo.scope
    assert isinstance(scope, t.ComboScope)
    if not cart_promotion_holds(promo, run):
        return None
    parts: list[list[tuple[Line, int]]] = [[] for _ in scope.parts]
    for line in counted_lines(promo, run):
        units = available(line)
        if units == 0:
            continue
        for j, part in enumerate(scope.parts):  # a line belongs to the first part it matches
            if selects(part.selector, line, run):
                parts[j].append((line, units))
                break
    needs = [int(part.count.text) * 1000 for part in scope.parts]
    sets = min(sum(units for _, units in parts[j]) // needs[j] for j in range(len(needs)))
    sets = capped_applications(promo, sets)
    if sets == 0:
        return None
    consumed: list[tuple[Line, int]] = []
    for j, need in enumerate(needs):
        consumed += consume(parts[j], sets * need, promo.cheapest_first, run)
    consumed.sort(key=lambda e: e[0].position)
    return set_outcome(promo, "combo", sets, consumed, run)


def evaluate_pool(promo: t.Promotion, run: Run) -> Outcome | None:
    scope = promo.scope
    assert isinstance(scope, t.PoolScope)
    if not cart_promotion_holds(promo, run):
        return None
    entries = [
        (line, available(line))
        for line in counted_lines(promo, run)
        if available(line) > 0 and selects(scope.selector, line, run)
    ]
    if isinstance(scope.every, t.MoneyLit):
        # every X CNY: the available units' value; consumes every available unit it counted
        value = sum(consumed_net(line, units, run) for line, units in entries)
        applications = capped_applications(promo, value // run.money(scope.every))
        consumed = entries
    else:
        step = int(scope.every.text) * 1000
        applications = capped_applications(promo, sum(units for _, units in entries) // step)
        consumed = (
            consume(entries, applications * step, promo.cheapest_first, run) if applications else []
        )
    if applications == 0:
        return None
    return set_outcome(promo, "pool", applications, consumed, run)


def stage_combos_and_pools(run: Run) -> None:
    for members in waterfall_steps(promotions_of(run, "combo", "pool")):
        outcomes = [
            evaluate_combo(p, run) if stage_of(p) == "combo" else evaluate_pool(p, run)
            for p in members
        ]
        best = best_outcome(outcomes)  # per cart; only the kept member consumes units
        if best is not None:
            commit(best, run)


# ---- stage 6: order promotions --------------------------------------------------------------


def order_thresholds(promo: t.Promotion, run: Run) -> list[tuple[int, t.OrderTier]]:
    scope = promo.scope
    assert isinstance(scope, t.OrderScope)
    return [(run.money(step.threshold), step) for step in scope.steps]


def evaluate_order(
    promo: t.Promotion, subtotal: int, eligible: list[Line], run: Run
) -> Outcome | None:
    scope = promo.scope
    assert isinstance(scope, t.OrderScope)
    if not cart_promotion_holds(promo, run):
        return None
    steps = order_thresholds(promo, run)
    if scope.kind == "every":
        every, step = steps[0]
        if subtotal < every:
            return None
        count = capped_applications(promo, subtotal // every)
    else:
        reached = [(threshold, step) for threshold, step in steps if threshold <= subtotal]
        if not reached:
            return None
        _, step = max(reached, key=lambda r: r[0])  # the highest step reached
        count = 1
    outcome = Outcome(
        promo=promo, stage="order", kind=None, offs=[], consumed=[], touched=list(eligible)
    )
    benefit = step.benefit
    if isinstance(benefit, t.Gift):
        outcome.gift, outcome.gift_value, outcome.warnings = give_gift(promo, benefit, count, run)
        return outcome
    running = sum(line.net for line in eligible)  # S: at this promotion's turn
    if isinstance(benefit, t.PercentOff):
        if scope.kind == "every":
            raise Undecided("a percent under `order every` (the checker refuses it: E0504)")
        total = percent_of(running, parse_percent(benefit.percent.text), run.rules.rounding)
    else:
        total = min(run.money(benefit.amount) * count, running)
    offs = allocate(total, [line.net for line in eligible], run)
    offs = clip(promo, offs, run)
    outcome.kind = BENEFIT_KIND[type(benefit)]
    outcome.offs = list(zip(eligible, offs, strict=True))
    return outcome


def spend_more_hint(promo: t.Promotion, subtotal: int, run: Run) -> dict | None:
    """The nearest step of an order promotion the subtotal has not reached.

    decided: for `order every X` the next step is the next multiple of X, while `max N per
    order` is not yet reached; for a threshold or tiers, the lowest threshold above the
    subtotal. Only promotions whose `valid`/`when` hold and that no cap switched off.
    """
    scope = promo.scope
    assert isinstance(scope, t.OrderScope)
    if not cart_promotion_holds(promo, run):
        return None
    thresholds = [threshold for threshold, _ in order_thresholds(promo, run)]
    if scope.kind == "every":
        steps_now = subtotal // thresholds[0]
        most = cap_count(promo, "applications")
        if most is not None and steps_now >= most:
            return None
        target = (steps_now + 1) * thresholds[0]
    else:
        above = [threshold for threshold in thresholds if threshold > subtotal]
        if not above:
            return None
        target = min(above)
    return {
        "rule": promo.name,
        "kind": "spend_more",
        "missing_amount": format_money(target - subtotal, run.ctx.currency),
    }


def stage_order_promotions(run: Run) -> None:
    # gifts are never lines; special-price sub-lines count only where a promotion includes them
    eligible = {
        special: [line for line in run.lines if not line.stopped and (special or not line.special)]
        for special in (False, True)
    }
    subtotal = {
        special: sum(line.net for line in lines) for special, lines in eligible.items()
    }  # taken once
    promos = promotions_of(run, "order")
    for promo in promos:
        hint = spend_more_hint(promo, subtotal[promo.includes_special], run)
        if hint is not None:
            run.hints.append(hint)
    for members in waterfall_steps(promos):
        best = best_outcome(
            [
                evaluate_order(
                    p,
                    subtotal[p.includes_special],
                    [line for line in eligible[p.includes_special] if not line.stopped],
                    run,
                )
                for p in members
            ]
        )
        if best is None:
            continue
        commit(best, run)
        if best.promo.stacking == "exclusive":
            break  # it stops every order promotion after it (and its lines)


# ---- stage 9: floors, then manual discounts -------------------------------------------------


def floor_per_unit(rules: Rules, data: DataSet, sku: str) -> int | None:
    """The SKU's floor per base unit (ruleset currency) from the floor table's first row."""
    if rules.floor is None:
        return None
    for row in rows_of(data, rules.floor.table):
        if row.get("sku") == sku:  # decided: the first row for the SKU
            return parse_money(str(row["floor"]), rules.currency)
    return None


def floor_amount(line: Line, run: Run) -> int | None:
    """``round(floor x quantity)`` in the cart's currency. decided (docs/language.md §12):
    on a cart in another currency the floor per unit is converted at the cart date's
    ruleset->cart rate and rounded once, as a list's unit price is (SPEC §3.2), then
    multiplied by the quantity."""
    per_unit = floor_per_unit(run.rules, run.data, line.item.sku)
    if per_unit is None:
        return None
    if run.ctx.currency != run.rules.currency:
        assert run.ctx.money_rate is not None, "list_stage refuses a floor line without a rate"
        per_unit = convert(
            per_unit, run.ctx.money_rate, run.rules.currency, run.ctx.currency, run.rules.rounding
        )
    return amount_for(per_unit, line.base_milli, run.rules.rounding)


def stage_floors(run: Run) -> None:
    """decided: the floor is compared with the running amount the stages work on (the gross
    on a tax-inclusive list, SPEC §3.10)."""
    if run.rules.floor is None:
        return
    for line in run.lines:
        floor = floor_amount(line, run)
        if floor is None or line.net >= floor:
            continue
        if run.rules.floor.policy == "flag":
            line.status, line.approval_level = "needs_approval", "floor"
            continue
        short = floor - line.net
        for adjustment in reversed(line.adjustments):  # the most recent first
            give_back = min(short, -adjustment["amount"])
            adjustment["amount"] += give_back
            short -= give_back
            if give_back:
                line.floor_clamped = True
            if short == 0:
                break
        # decided: an adjustment reduced to zero is removed; a list amount below the floor
        # is left there (nothing more to take back).
        line.adjustments = [a for a in line.adjustments if a["amount"] != 0]


MANUAL_RULE = "manual discount"


def approval_outcome(bp: int, run: Run) -> tuple[str, t.ApprovalDecl | None]:
    """The first approval declaration whose `when` holds; its first band whose limit is at
    least the percent (`above`: the rest). None holding: rejected."""
    for decl in run.rules.approvals:
        if decl.when is not None and not holds(decl.when, run.ctx, run.rules, None):
            continue
        for band in decl.bands:
            if band.limit is None or parse_percent(band.limit.text) >= bp:
                return band.outcome, decl
        return "rejected", decl  # decided: above every band, with no `above` band
    return "rejected", None


def stage_manual_discounts(run: Run) -> None:
    for line in run.lines:
        text = line.manual
        if text is None:
            continue
        if not isinstance(text, str):
            raise Undecided(f"manual discount {text!r} is not a percent string")
        bp = parse_percent(text)
        if not 0 < bp <= 10_000:
            raise Undecided(f"manual discount {text!r} out of range")
        outcome, decl = approval_outcome(bp, run)
        if outcome == "rejected":
            # decided: a rejected request decides the status, even over a floor flag.
            line.status, line.approval_level = "rejected", None
            continue
        # decided (as the engine): a manual discount has no rule; its adjustment's rule is
        # "manual discount", its stage "manual".
        line.add(MANUAL_RULE, "percent_off", "manual", percent_of(line.net, bp, run.rules.rounding))
        floor = floor_amount(line, run)
        if outcome != "approved":
            line.status, line.approval_level = "needs_approval", outcome
        elif floor is not None and line.net < floor:
            line.status, line.approval_level = "needs_approval", "floor"
        else:
            line.status, line.approval_level = "approved", None


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


# ---- bundles -----------------------------------------------------------------------------


def bundle_components(line: Line, net: int, currency: str) -> list[dict] | None:
    """A bundle's net allocated over its components by their ratios (ties: declared order)."""
    text = line.item.columns.get("components")
    if not text:
        return None
    parts = []
    for part in text.split(";"):
        if part.strip():
            sku, _, ratio = part.partition(":")
            parts.append((sku.strip(), Fraction(ratio.strip() or "1")))
    scale = math.lcm(*(ratio.denominator for _, ratio in parts))
    shares = allocate(net, [int(ratio * scale) for _, ratio in parts])
    return [
        {"sku": sku, "amount": format_money(share, currency)}
        for (sku, _), share in zip(parts, shares, strict=True)
    ]


# ---- the whole quote -------------------------------------------------------------------


def list_stage(rules: Rules, ctx: Context, line: Line, data: DataSet) -> None:
    """Stage 2 on one line: its price list, unit price and list amount."""
    price = list_price(rules, ctx, line, data)
    if (
        ctx.currency != rules.currency
        and ctx.money_rate is None
        and any(names_money(p) for p in rules.promotions)
    ):
        raise LineError(
            "no_fx_rate",
            f"line {line.id}: no {rules.currency}->{ctx.currency} rate on {ctx.date} for the promotions' amounts",
        )
    list_amount = rounded(
        Fraction(price.unit_price * line.base_milli, price.factor * 1000), rules.rounding
    )
    if abs(list_amount) >= MAX_LINE_AMOUNT_MINOR:
        raise LineError("amount_too_large", f"line {line.id}: the line amount is too large")
    if (
        ctx.currency != rules.currency
        and ctx.money_rate is None
        and floor_per_unit(rules, data, line.item.sku) is not None
    ):
        # decided: its floor cannot be put in the cart's currency; a wrong floor is worse
        # than no quote (as for the promotions' money). Lines without a floor are priced.
        raise LineError(
            "no_fx_rate",
            f"line {line.id}: no {rules.currency}->{ctx.currency} rate on {ctx.date} for its floor",
        )
    line.price = price
    line.list_amount = list_amount
    line.tax_included = price.price_list.tax_included


def line_response(line: Line, run: Run) -> tuple[dict, dict[str, int]]:
    """Stage 10 and the response line; with the same figures as ints for the totals."""
    assert line.price is not None and line.list_amount is not None
    rate = tax_rate(run.rules, run.ctx, line, run.data)
    running = line.net
    if line.tax_included:
        gross = running
        net = rounded(Fraction(gross * 10_000, 10_000 + rate), run.rules.rounding)
        tax = gross - net
    else:
        net = running
        tax = percent_of(net, rate, run.rules.rounding)
    money = run.ctx.currency
    out: dict = {
        "id": line.id,
        "sku": line.item.sku,
        "qty": line.qty_text,
        "unit": line.unit,
        "base_qty": format_quantity(line.base_milli),
        "base_unit": line.item.base_unit,
        "status": line.status,
    }
    if line.approval_level is not None:
        out["approval_level"] = line.approval_level
    out.update(
        {
            "price_list": line.price.price_list.name,
            "unit_price": format_money(line.price.unit_price, money),
            "pricing_unit": line.price.pricing_unit,
            "list_amount": format_money(line.list_amount, money),
            "adjustments": [
                {
                    "rule": a["rule"],
                    "kind": a["kind"],
                    "stage": a["stage"],
                    "amount": format_money(a["amount"], money),
                }
                for a in line.adjustments
            ],
            "net_amount": format_money(net, money),
            "tax_rate": format_percent(rate),
            "tax": format_money(tax, money),
            "gross_amount": format_money(net + tax, money),
            "floor_clamped": line.floor_clamped,
        }
    )
    components = bundle_components(line, net, money)
    if components is not None:
        out["components"] = components
    if line.manual is not None:
        out["manual_discount"] = line.manual
    minor = {
        "list": line.list_amount,
        "discount": sum(a["amount"] for a in line.adjustments),
        "net": net,
        "tax": tax,
        "gross": net + tax,
    }
    return out, minor


STATUS_SEVERITY = {"ok": 0, "approved": 1, "needs_approval": 2, "rejected": 3}


def split_line_response(subs: list[Line], run: Run) -> tuple[dict, dict[str, int]]:
    """A line, or a split line: its sub-lines' figures summed, their adjustments merged by
    (rule, kind, stage) in first-seen order, the status that needs most attention, and
    ``sublines`` (special first) when a special price took part of it."""
    parts = [line_response(sub, run) for sub in subs]
    if len(subs) == 1 and not subs[0].special:
        return parts[0]
    money = run.ctx.currency
    price = subs[0].parent_price
    out = dict(parts[0][0])
    minor = {key: sum(p[1][key] for p in parts) for key in parts[0][1]}
    merged: dict[tuple[str, str, str], int] = {}
    for sub in subs:
        for a in sub.adjustments:
            merged[(a["rule"], a["kind"], a["stage"])] = (
                merged.get((a["rule"], a["kind"], a["stage"]), 0) + a["amount"]
            )
    worst = max(parts, key=lambda p: STATUS_SEVERITY[p[0]["status"]])[0]
    whole = subs[0].whole
    assert whole is not None and price is not None
    out.update(
        {
            "base_qty": format_quantity(whole[0]),
            "status": worst["status"],
            "price_list": price.price_list.name,
            "unit_price": format_money(price.unit_price, money),
            "pricing_unit": price.pricing_unit,
            "list_amount": format_money(minor["list"], money),
            "adjustments": [
                {"rule": rule, "kind": kind, "stage": stage, "amount": format_money(amount, money)}
                for (rule, kind, stage), amount in merged.items()
                if amount != 0
            ],
            "net_amount": format_money(minor["net"], money),
            "tax": format_money(minor["tax"], money),
            "gross_amount": format_money(minor["gross"], money),
            "floor_clamped": any(sub.floor_clamped for sub in subs),
            "sublines": [
                {
                    "special": sub.special,
                    "qty": format_quantity(sub.base_milli),
                    "unit_price": p[0]["unit_price"],
                    "list_amount": p[0]["list_amount"],
                    "adjustments": p[0]["adjustments"],
                    "net_amount": p[0]["net_amount"],
                    "tax": p[0]["tax"],
                    "gross_amount": p[0]["gross_amount"],
                }
                for sub, p in zip(subs, parts, strict=True)
            ],
        }
    )
    out.pop("approval_level", None)
    if worst.get("approval_level") is not None:
        out["approval_level"] = worst["approval_level"]
    if "components" in out:
        out["components"] = bundle_components(subs[0], minor["net"], money)
    return out, minor


def reference_quote(
    sources: dict[str, str],
    data: DataSet,
    cart: dict,
    ledger: dict | None = None,
    trace: dict | None = None,
) -> dict:
    """Price one cart by walking the rule tree; the response shape of ``engine.api.quote``.

    ``ledger``: ``{"budget_used": {promotion: minor units}, "uses": {(promotion, customer
    id): orders}, "gift_stock_used": {promotion: units}}``; without it nothing was used.
    ``trace``, if given, is filled with ``promotion_totals`` (what each promotion took
    from the cart after its caps, before floors) and ``order_sensitive`` (whether a tie
    was broken by cart order, so that reordering the lines may change the figures).
    """
    rules = read_rules(sources)
    catalog = read_catalog(data)
    currency = cart.get("currency") or rules.currency
    if currency not in CURRENCY_EXPONENTS:
        raise ValueError(f"unknown currency {currency!r}")
    ctx = Context(cart=cart, currency=currency, date=cart_date(cart, rules.timezone))
    if currency != rules.currency:
        ctx.money_rate = fx_rate(data, rules.currency, currency, ctx.date)

    ledger_state = read_ledger(ledger, rules.currency)
    quota_left: dict = {}  # stage 3: what is left of each special price's quotas
    whole_lines: list[Line] = []  # the priced lines before any split (cumulative conditions)
    slots: list[
        list[Line] | dict
    ] = []  # a priced line (its sub-lines), or an error line, in cart order
    errors: list[dict] = []
    priced: list[Line] = []
    for position, raw in enumerate(cart["lines"], start=1):
        line_id = str(raw.get("id", position))
        try:
            line = normalize(raw, line_id, catalog)
            list_stage(rules, ctx, line, data)
            subs = split_special(rules, ctx, line, data, quota_left, ledger_state)
        except LineError as err:
            slots.append(
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
        whole_lines.append(line)
        for sub in subs:  # a sub-line is a line from here on (special first: SPEC §3 Allocation)
            sub.position = len(priced)
            sub.manual = raw.get("manual_discount")
            priced.append(sub)
        slots.append(subs)

    ctx.cumulative_off = {
        p.name
        for p in rules.promotions
        if p.cumulative and not cumulative_holds(p, ctx, rules, whole_lines, ledger_state, catalog)
    }
    run = Run(rules=rules, ctx=ctx, data=data, catalog=catalog, ledger=ledger_state, lines=priced)
    # A cart whose lines all failed still meets an order threshold of 0.00 (docs/promotions.md
    # says subtotal >= X); only a cart in another currency without a rate for the rules'
    # money cannot evaluate them (its lines are all no_fx_rate then).
    if (
        ctx.currency == rules.currency
        or ctx.money_rate is not None
        or not any(names_money(p) for p in rules.promotions)
    ):
        stage_line_promotions(run)  # 4
        stage_combos_and_pools(run)  # 5 (gifts, stage 7, and caps, stage 8, at each step)
        stage_order_promotions(run)  # 6
        stage_floors(run)  # 9
        stage_manual_discounts(run)  # 9

    lines: list[dict] = []
    totals = {"list": 0, "discount": 0, "net": 0, "tax": 0, "gross": 0}
    for slot in slots:
        if isinstance(slot, dict):
            lines.append(slot)
            continue
        out, minor = split_line_response(slot, run)
        for key, value in minor.items():
            totals[key] += value
        lines.append(out)
    gift_value = sum(parse_money(g["list_amount"], currency) for g in run.gifts)
    if trace is not None:
        trace["promotion_totals"] = dict(run.taken)
        trace["order_sensitive"] = run.order_sensitive
    return {
        "currency": currency,
        "date": ctx.date.isoformat(),
        "lines": lines,
        "errors": errors,
        "gifts": run.gifts,
        "warnings": run.warnings,
        "hints": run.hints,
        "totals": {
            **{key: format_money(value, currency) for key, value in totals.items()},
            "gift_value": format_money(gift_value, currency),
        },
    }

"""The checker: names, types, currencies, tables, SKUs, tiers. Collects every problem.

``check(ruleset, data)`` returns ``(checked, diagnostics)``; ``checked`` is None when any
diagnostic is an error. ``data`` may be None: then tables, SKUs and units are not checked.

>>> from dsl.parser import parse_sources
>>> rs = parse_sources({"a.rule": 'ruleset "x" currency CNY\\npromotion "p" { each line where sku_x == "A": percent_off 5% }'})
>>> [d.code for d in check(rs, None)[1]]
['E0201']
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from dsl import tree as t
from dsl.errors import Diagnostic, did_you_mean
from dsl.policies import check_policies
from dsl.schema import FieldInfo, FieldType, Schema, table_column
from dsl.tree import atoms, money_value, quantity_value
from engine.core.data import CATALOG_CORE_COLUMNS, DataSet
from engine.core.money import (
    CURRENCY_EXPONENTS,
    MoneyError,
    Rounding,
    parse_percent,
)

ORDERING_OPS = {"<", "<=", ">", ">="}

#: the columns a special-price table must have (project, qty_quota, amount_quota,
#: valid_from and valid_to are optional)
SPECIAL_COLUMNS = ("customer_id", "sku", "price")

#: caps as an admin writes them
CAP_WORDS = {
    "applications": "max N per order",
    "discount": "max discount X per order",
    "gifts": "max N gifts per order",
    "budget": "budget X",
    "uses": "uses N per customer",
    "gift_stock": "gift stock N",
}

#: what to do instead of reading a line field where only the cart is known
WHEN_HINTS = {
    "a price list's 'when'": "a price list is chosen for the whole cart; for quantity breaks give its table a min_qty column",
    "an approval's 'when'": "an approval is chosen for the whole cart; its bands limit the requested percentage",
    "a cart promotion's 'when'": "a combo, pool or order promotion reads the cart in its 'when'; its parts and thresholds select the lines",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedRuleset:
    """A ruleset that passed every check, with its declarations in evaluation order."""

    name: str
    currency: str
    timezone: str
    rounding: Rounding
    pricelists: tuple[t.PriceList, ...]
    promotions: tuple[t.Promotion, ...]
    tax: t.TaxRule | None
    schema: Schema
    sources: dict[str, str]
    floor: t.FloorDecl | None = None
    approvals: tuple[t.ApprovalDecl, ...] = ()
    order_checks: tuple[t.OrderCheckDecl, ...] = ()
    special: t.SpecialDecl | None = None


def evaluation_order(priority: int, name: str) -> tuple[int, str]:
    """Stage order within a stage: priority descending, then name."""
    return (-priority, name)


# ---- literal values (shared with the compiler, so a checked literal always converts) ----


class Checker:
    def __init__(self, ruleset: t.Ruleset, data: DataSet | None) -> None:
        self.ruleset = ruleset
        self.data = data
        self.diags: list[Diagnostic] = []
        self.currency = "CNY"
        self.skus: set[str] = set()
        self.units: set[str] = set()
        if data is not None and "sku" in data.catalog.columns:
            self.skus = {s for s in data.catalog["sku"].to_list() if s}
            self.units = (
                set(data.catalog["base_unit"].drop_nulls().to_list())
                if "base_unit" in data.catalog.columns
                else set()
            )
            if "units" in data.catalog.columns:
                for text in data.catalog["units"].drop_nulls().to_list():
                    for part in text.split(";"):
                        if "=" in part:
                            self.units.add(part.split("=", 1)[0].strip())

    def error(self, code: str, message: str, span: t.Span, hint: str | None = None) -> None:
        self.diags.append(
            Diagnostic(code=code, severity="error", message=message, span=span, hint=hint)
        )

    # ---- header and declarations ---------------------------------------------------------

    def run(self) -> CheckedRuleset | None:
        decls = self.ruleset.declarations()
        headers = [d for d in decls if isinstance(d, t.Header)]
        header = self._header(headers)
        schema = self._schema(decls)
        self._duplicates(decls)
        pricelists = [d for d in decls if isinstance(d, t.PriceList)]
        promotions = [d for d in decls if isinstance(d, t.Promotion)]
        taxes = [d for d in decls if isinstance(d, t.TaxRule)]
        for pl_decl in pricelists:
            self._pricelist(pl_decl, schema)
        for promo in promotions:
            self._promotion(promo, schema)
        for tax in taxes:
            self._table(tax.table, required=("rate",), schema=schema)
            if tax.table.keyed_by:
                self.error(
                    "E0206",
                    "a tax table is not keyed; its rows match on region, tax_class and trade_term columns",
                    tax.table.keyed_by[0].span,
                )
        for extra in taxes[1:]:
            self.error(
                "E0101",
                f"a ruleset has one tax declaration; '{extra.name}' is a second",
                extra.name_span,
                f"the first is '{taxes[0].name}' at {taxes[0].span}",
            )
        floors = [d for d in decls if isinstance(d, t.FloorDecl)]
        for floor in floors:
            self._table(
                t.TableRef(name=floor.table, keyed_by=(), span=floor.span),
                required=("sku", "floor"),
                schema=schema,
            )
        for extra_floor in floors[1:]:
            self.error(
                "E0101",
                "a ruleset has one floor declaration; this is a second",
                extra_floor.span,
                f"the first is at {floors[0].span}",
            )
        specials = [d for d in decls if isinstance(d, t.SpecialDecl)]
        for special in specials:
            self._table(
                t.TableRef(name=special.table, keyed_by=(), span=special.span),
                required=SPECIAL_COLUMNS,
                schema=schema,
            )
        for extra_special in specials[1:]:
            self.error(
                "E0101",
                "a ruleset has one special prices declaration; this is a second",
                extra_special.span,
                f"the first is at {specials[0].span}",
            )
        if not specials:
            for promo in promotions:
                if promo.includes_special:
                    self.error(
                        "E0504",
                        f"promotion '{promo.name}' includes special-price sub-lines, but the ruleset declares no special prices",
                        promo.name_span,
                        "add: special prices { table special_prices }",
                    )
        approvals = [d for d in decls if isinstance(d, t.ApprovalDecl)]
        for approval in approvals:
            self._approval(approval, schema)
        order_checks = [d for d in decls if isinstance(d, t.OrderCheckDecl)]
        self._order_checks(order_checks, schema)
        check_policies(self, decls)
        if any(d.severity == "error" for d in self.diags) or header is None:
            return None
        return CheckedRuleset(
            name=header.name,
            currency=self.currency,
            timezone=header.timezone or "UTC",
            rounding=(header.rounding or "half_up"),  # type: ignore[arg-type]
            pricelists=tuple(
                sorted(pricelists, key=lambda d: evaluation_order(d.priority, d.name))
            ),
            promotions=tuple(
                sorted(promotions, key=lambda d: evaluation_order(d.priority, d.name))
            ),
            tax=taxes[0] if taxes else None,
            floor=floors[0] if floors else None,
            approvals=tuple(sorted(approvals, key=lambda d: evaluation_order(d.priority, d.name))),
            order_checks=tuple(order_checks),
            special=specials[0] if specials else None,
            schema=schema,
            sources=dict(self.ruleset.sources),
        )

    def _header(self, headers: list[t.Header]) -> t.Header | None:
        if not headers:
            first = self.ruleset.files[0].path if self.ruleset.files else "<ruleset>"
            span = t.Span(file=first, line=1, col=1, end_line=1, end_col=2)
            self.error(
                "E0102",
                "the ruleset has no header",
                span,
                'start one file with: ruleset "name" currency CNY timezone "Asia/Shanghai"',
            )
            return None
        for extra in headers[1:]:
            self.error(
                "E0102", "a second ruleset header", extra.span, f"the first is at {headers[0].span}"
            )
        header = headers[0]
        if header.currency is None:
            self.error(
                "E0102",
                "the ruleset header does not name its currency",
                header.span,
                "add: currency CNY",
            )
        elif header.currency not in CURRENCY_EXPONENTS:
            self.error(
                "E0204",
                f"unknown currency '{header.currency}'",
                header.span,
                did_you_mean(header.currency, CURRENCY_EXPONENTS),
            )
        else:
            self.currency = header.currency
        if header.timezone is not None:
            try:
                zoneinfo.ZoneInfo(header.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                self.error(
                    "E0207",
                    f"unknown time zone '{header.timezone}'",
                    header.span,
                    'use an IANA name such as "Asia/Shanghai"',
                )
        return header

    def _schema(self, decls: tuple[t.Declaration, ...]) -> Schema:
        customer_attrs: set[str] = set()
        item_attrs: set[str] = set()
        if self.data is not None:
            item_attrs = {c for c in self.data.catalog.columns if c not in CATALOG_CORE_COLUMNS}
        for d in decls:
            if isinstance(d, t.AttributeDecl):
                head, _, attr = d.field.name.partition(".")
                if head == "customer" and attr and "." not in attr:
                    customer_attrs.add(attr)
                elif head == "item" and attr and "." not in attr:
                    item_attrs.add(attr)
                else:
                    self.error(
                        "E0201",
                        f"'{d.field.name}' is not an attribute name",
                        d.field.span,
                        "declare customer.<name> or item.<name>",
                    )
        return Schema.build(customer_attrs, item_attrs)

    def _duplicates(self, decls: tuple[t.Declaration, ...]) -> None:
        seen: dict[tuple[str, str], t.Span] = {}
        for d in decls:
            if isinstance(d, t.PriceList | t.Promotion | t.TaxRule):
                key = (type(d).__name__, d.name)
                if key in seen:
                    kind = {
                        "PriceList": "price list",
                        "Promotion": "promotion",
                        "TaxRule": "tax rule",
                    }[key[0]]
                    self.error(
                        "E0101",
                        f"duplicate {kind} name '{d.name}'",
                        d.name_span,
                        f"the first is at {seen[key]}",
                    )
                else:
                    seen[key] = d.name_span

    # ---- price lists, promotions, tables ------------------------------------------------

    def _pricelist(self, decl: t.PriceList, schema: Schema) -> None:
        if decl.when is not None:
            self._condition(decl.when, schema, allowed=("cart",), place="a price list's 'when'")
        self._validity(decl.valid)
        if decl.currency is not None and decl.currency not in CURRENCY_EXPONENTS:
            self.error(
                "E0204",
                f"unknown currency '{decl.currency}'",
                decl.span,
                did_you_mean(decl.currency, CURRENCY_EXPONENTS),
            )
        if decl.table is None:
            self.error(
                "E0502",
                f"price list '{decl.name}' names no table",
                decl.name_span,
                "add: table <name>",
            )
        else:
            self._table(decl.table, required=("sku", "price"), schema=schema)

    def _table(self, ref: t.TableRef, required: tuple[str, ...], schema: Schema) -> None:
        for key in ref.keyed_by:
            info = schema.get(key.name)
            if info is None:
                self._unknown_field(key, schema)
            elif info.scope != "cart":
                self.error(
                    "E0206",
                    f"a table can be keyed by cart fields only; '{key.name}' is a line field",
                    key.span,
                )
        if self.data is None:
            return
        if ref.name not in self.data.tables:
            self.error(
                "E0301",
                f"unknown table '{ref.name}'",
                ref.span,
                did_you_mean(ref.name, self.data.tables)
                or "load it with: pricer load <table> <file>",
            )
            return
        columns = set(self.data.tables[ref.name].columns)
        needed = list(required) + [table_column(k.name) for k in ref.keyed_by]
        for column in needed:
            if column not in columns:
                self.error(
                    "E0302",
                    f"table '{ref.name}' has no column '{column}'",
                    ref.span,
                    f"its columns are: {', '.join(sorted(columns))}",
                )

    #: the columns each order check's table must have (docs/orders.md)
    ORDER_CHECK_COLUMNS: ClassVar[dict[str, tuple[str, ...]]] = {
        "credit": ("customer_id", "credit_limit"),
        "sellable": ("sku",),
        "stock_plan": ("customer_id", "sku", "qty"),
    }
    ORDER_CHECK_WORDS: ClassVar[dict[str, str]] = {
        "credit": "credit",
        "sellable": "sellable",
        "stock_plan": "stock plan",
        "rebate_payment": "rebate payment",
    }

    def _order_checks(self, decls: list[t.OrderCheckDecl], schema: Schema) -> None:
        """``credit``, ``sellable``, ``stock plan`` and ``rebate payment``: at most one each,
        tables with their columns, a sellable key that is a customer field, a cap in (0, 100%]."""
        first: dict[str, t.OrderCheckDecl] = {}
        for decl in decls:
            words = self.ORDER_CHECK_WORDS[decl.kind]
            if decl.kind in first:
                self.error(
                    "E0101",
                    f"a ruleset has one '{words}' declaration; this is a second",
                    decl.span,
                    f"the first is at {first[decl.kind].span}",
                )
                continue
            first[decl.kind] = decl
            if decl.by is not None and not decl.by.name.startswith("customer."):
                self.error(
                    "E0206",
                    f"the assortment is keyed by a customer field; '{decl.by.name}' is not one",
                    decl.by.span,
                    "write: sellable { table assortment by customer.group }",
                )
                continue
            if decl.table is not None:
                keyed = (decl.by,) if decl.by is not None else ()
                self._table(
                    t.TableRef(name=decl.table, keyed_by=keyed, span=decl.span),
                    required=self.ORDER_CHECK_COLUMNS[decl.kind],
                    schema=schema,
                )
            if decl.max_percent is not None:
                value = Decimal(decl.max_percent.text)
                if not Decimal(0) < value <= Decimal(100):
                    self.error(
                        "E0505",
                        "the rebate payment cap must be above 0% and at most 100%",
                        decl.max_percent.span,
                    )

    def _validity(self, valid: t.Validity | None) -> None:
        if valid is not None and valid.start > valid.end:
            self.error(
                "E0501",
                f"validity window ends ({valid.end}) before it starts ({valid.start})",
                valid.span,
            )

    def _promotion(self, decl: t.Promotion, schema: Schema) -> None:
        if decl.when is not None:
            place = (
                "a promotion's 'when'"
                if decl.scope is None or isinstance(decl.scope, t.LineScope)
                else "a cart promotion's 'when'"
            )
            self._condition(decl.when, schema, allowed=("cart",), place=place)
        self._validity(decl.valid)
        for cumulative in decl.cumulative:
            self._cumulative(cumulative, schema)
        scope = decl.scope
        if scope is None:
            self.error(
                "E0502",
                f"promotion '{decl.name}' has no scope",
                decl.name_span,
                "add: each line where <condition>: <benefit>",
            )
            return
        if isinstance(scope, t.LineScope):
            if scope.where is not None:
                self._condition(
                    scope.where, schema, allowed=("cart", "item", "line"), place="a line condition"
                )
            action = scope.action
            if isinstance(action, t.Tiers):
                self._tiers(action)
            else:
                self._benefit(action)
        elif isinstance(scope, t.ComboScope):
            for part in scope.parts:
                self._whole(part.count, "a combo part's count")
                self._selector(part.selector, schema)
            self._set_benefit(scope.benefit)
        elif isinstance(scope, t.PoolScope):
            self._selector(scope.selector, schema)
            if isinstance(scope.every, t.MoneyLit):
                value = self._money_literal(scope.every, allow_negative=False)
                if value is not None and value <= 0:
                    self.error("E0505", "a pool's step must be above zero", scope.every.span)
            elif isinstance(scope.every, t.NumberLit):
                if self._whole(scope.every, "a pool's step in units", quiet=True) is None:
                    money_hint = (
                        f"to count money, write its currency: every {scope.every.text} {self.currency}"
                        if "." in scope.every.text
                        else None
                    )
                    self.error(
                        "E0505",
                        "a pool's step in units must be a positive whole number",
                        scope.every.span,
                        money_hint,
                    )
            else:
                self.error(
                    "E0202",
                    f"a pool counts units (every 10) or money (every 500.00 {self.currency}), not {describe_literal(scope.every)}",
                    scope.every.span,
                )
            self._set_benefit(scope.benefit)
        else:
            self._order_scope(scope)
        self._caps(decl)

    def _cumulative(self, cumulative: t.Cumulative, schema: Schema) -> None:
        self._selector(cumulative.selector, schema)
        threshold = cumulative.threshold
        if cumulative.measure == "amount":
            self._money_literal(threshold, allow_negative=False)
        elif isinstance(threshold, t.QtyLit):
            self.error(
                "E0304",
                f"a cumulative quantity is counted in the base unit, not in '{threshold.unit}'",
                threshold.span,
                "write it as a number of base units",
            )
        else:
            self._quantity_literal(threshold)

    def _whole(self, lit: t.Literal_, what: str, quiet: bool = False) -> int | None:
        text = lit.text if isinstance(lit, t.NumberLit) else None
        if text is None or not text.isdigit() or int(text) <= 0:
            if not quiet:
                self.error("E0505", f"{what} must be a positive whole number", lit.span)
            return None
        return int(text)

    def _selector(self, selector: t.ItemSelector, schema: Schema) -> None:
        info = schema.get(selector.field.name)
        if info is None:
            self._unknown_field(selector.field, schema)
            return
        if info.scope != "item":
            self.error(
                "E0206",
                f"a combo part or pool selects lines by an item field (sku, category, brand, item.*), not '{selector.field.name}'",
                selector.field.span,
            )
            return
        for value in selector.values:
            self._value(info, value, "in")

    def _set_benefit(self, benefit: t.SetBenefit) -> None:
        if isinstance(benefit, t.Gift):
            self._gift(benefit)
        else:
            self._benefit(benefit)

    def _gift(self, gift: t.Gift) -> None:
        self._whole(gift.qty, "a gift's quantity")
        if self.data is not None and gift.sku.value not in self.skus:
            self.error(
                "E0303",
                f"gift '{gift.sku.value}' is not in the catalog",
                gift.sku.span,
                did_you_mean(gift.sku.value, self.skus),
            )

    def _order_scope(self, scope: t.OrderScope) -> None:
        previous: tuple[int, t.Span] | None = None
        for step in scope.steps:
            if isinstance(step.benefit, t.Gift):
                self._gift(step.benefit)
            else:
                self._benefit(step.benefit)
            value = self._money_literal(step.threshold, allow_negative=False)
            if value is None:
                continue
            if scope.kind == "every" and value <= 0:
                self.error("E0505", "'order every' needs an amount above zero", step.threshold.span)
            if scope.kind == "every" and not isinstance(step.benefit, t.AmountOff | t.Gift):
                self.error(
                    "E0504",
                    "'order every' gives an amount (or gifts) per full step",
                    step.benefit.span,
                    "for a percentage of the order, write: order subtotal >= X: percent_off P",
                )
            previous = self.next_step(previous, value, step.threshold.span)

    def _caps(self, decl: t.Promotion) -> None:
        scope = decl.scope
        gives_gifts = _gives_gifts(scope)
        for cap in decl.caps:
            if cap.kind in ("applications", "uses", "gifts", "gift_stock"):
                self._whole(cap.value, f"the count in '{CAP_WORDS[cap.kind]}'")
            else:
                value = self._money_literal(cap.value, allow_negative=False)
                if value is not None and value <= 0:
                    self.error("E0505", "a cap on money must be above zero", cap.value.span)
            if cap.kind == "applications" and not (
                isinstance(scope, t.ComboScope | t.PoolScope)
                or (isinstance(scope, t.OrderScope) and scope.kind == "every")
            ):
                self.error(
                    "E0504",
                    "'max N per order' counts combo sets, pool applications or 'order every' steps",
                    cap.span,
                    "for a line promotion, cap the money: max discount 50.00 per order",
                )
            if cap.kind in ("gifts", "gift_stock") and not gives_gifts:
                self.error(
                    "E0504",
                    f"'{CAP_WORDS[cap.kind]}' caps gifts, and this promotion gives none",
                    cap.span,
                    "to cap its discount: max discount 50.00 per order",
                )
            if cap.kind == "discount" and gives_gifts:
                self.error(
                    "E0504",
                    "a gift promotion gives no discount to cap",
                    cap.span,
                    "cap its gifts: max 2 gifts per order, or gift stock 500",
                )
        if decl.cheapest_first and not isinstance(scope, t.ComboScope | t.PoolScope):
            self.error(
                "E0504",
                "'cheapest first' says which units a combo or pool consumes; this promotion consumes none",
                decl.span,
            )

    def _approval(self, decl: t.ApprovalDecl, schema: Schema) -> None:
        if decl.when is not None:
            self._condition(decl.when, schema, allowed=("cart",), place="an approval's 'when'")
        previous: tuple[int, t.Span] | None = None
        for i, band in enumerate(decl.bands):
            if band.limit is None:
                if i != len(decl.bands) - 1:
                    self.error(
                        "E0506",
                        "'above' must be the last band",
                        band.span,
                        "the bands after it can never be reached; move it to the end",
                    )
                continue
            try:
                bp = parse_percent(band.limit.text)
            except MoneyError as err:
                self.error("E0205", str(err), band.limit.span)
                continue
            if previous is not None and bp <= previous[0]:
                self.error(
                    "E0506",
                    "approval bands must go up from band to band",
                    band.limit.span,
                    f"the previous band is at {previous[1]}",
                )
            previous = (bp, band.limit.span)

    def _benefit(self, benefit: t.Benefit) -> None:
        if isinstance(benefit, t.PercentOff):
            try:
                bp = parse_percent(benefit.percent.text)
            except MoneyError as err:
                self.error("E0205", str(err), benefit.percent.span)
                return
            if not 0 < bp <= 10_000:
                self.error(
                    "E0205",
                    f"percent_off must be above 0% and at most 100%, not {benefit.percent.text}%",
                    benefit.percent.span,
                )
            return
        lit = benefit.amount if isinstance(benefit, t.AmountOff) else benefit.price
        self._money_literal(lit, allow_negative=False)

    def _money_literal(self, lit: t.Literal_, allow_negative: bool) -> int | None:
        """The literal in minor units of the ruleset currency, or None after reporting why."""
        if not isinstance(lit, t.MoneyLit | t.NumberLit):
            self.error(
                "E0202",
                f"expected an amount of money, found {describe_literal(lit)}",
                lit.span,
                f"write it as 10.00 or 10.00 {self.currency}",
            )
            return None
        if isinstance(lit, t.MoneyLit) and lit.currency != self.currency:
            if lit.currency not in CURRENCY_EXPONENTS:
                self.error(
                    "E0204",
                    f"unknown currency '{lit.currency}'",
                    lit.span,
                    did_you_mean(lit.currency, CURRENCY_EXPONENTS),
                )
            else:
                self.error(
                    "E0203",
                    f"amount in {lit.currency}, but the ruleset's currency is {self.currency}",
                    lit.span,
                )
            return None
        try:
            value = money_value(lit, self.currency)
        except MoneyError as err:
            self.error("E0205", str(err), lit.span)
            return None
        if value < 0 and not allow_negative:
            self.error("E0205", "an amount here cannot be negative", lit.span)
        return value

    def _tiers(self, tiers: t.Tiers) -> None:
        previous: tuple[int, t.Span] | None = None
        for step in tiers.steps:
            self._benefit(step.benefit)
            value: int | None
            if tiers.measure == "qty":
                if isinstance(step.threshold, t.QtyLit):
                    self.error(
                        "E0304",
                        f"a 'tiers by qty' threshold is counted in the base unit, not in '{step.threshold.unit}'",
                        step.threshold.span,
                        "write it as a number of base units",
                    )
                    continue
                value = self._quantity_literal(step.threshold)
            else:
                value = self._money_literal(step.threshold, allow_negative=False)
            if value is None:
                continue
            previous = self.next_step(previous, value, step.threshold.span)

    def next_step(
        self, previous: tuple[int, t.Span] | None, value: int, span: t.Span
    ) -> tuple[int, t.Span]:
        """Tier thresholds strictly increase: ``E0402`` for a repeat, ``E0401`` for a
        step below the one before. Returns the step to compare the next one with."""
        if previous is not None:
            if value == previous[0]:
                self.error(
                    "E0402",
                    "two tier steps have the same threshold",
                    span,
                    f"the other is at {previous[1]}",
                )
            elif value < previous[0]:
                self.error(
                    "E0401",
                    "tier thresholds must increase from step to step",
                    span,
                    f"this one is below the step at {previous[1]}",
                )
        return (value, span)

    def _quantity_literal(self, lit: t.Literal_) -> int | None:
        if not isinstance(lit, t.QtyLit | t.NumberLit):
            self.error(
                "E0202",
                f"expected a quantity, found {describe_literal(lit)}",
                lit.span,
                "write it as 10 or 10 box",
            )
            return None
        try:
            milli, unit = quantity_value(lit)
        except MoneyError as err:
            self.error("E0205", str(err), lit.span)
            return None
        if unit is not None and self.data is not None and unit not in self.units:
            self.error("E0304", f"unknown unit '{unit}'", lit.span, did_you_mean(unit, self.units))
            return None
        if milli < 0:
            self.error("E0205", "a quantity cannot be negative", lit.span)
        # a threshold in another unit is compared per SKU; its order is only known per SKU
        return milli if unit is None else None

    # ---- conditions ---------------------------------------------------------------------

    def _condition(
        self, cond: t.Condition, schema: Schema, allowed: tuple[str, ...], place: str
    ) -> None:
        for atom in atoms(cond):
            info = schema.get(atom.field.name)
            if info is None:
                self._unknown_field(atom.field, schema)
                continue
            if info.scope not in allowed:
                hint = WHEN_HINTS.get(place, "move it into: each line where ...")
                self.error(
                    "E0206",
                    f"'{atom.field.name}' is a line field; {place} can only read cart fields",
                    atom.field.span,
                    hint,
                )
                continue
            if isinstance(atom, t.Compare):
                self._compare(atom, info)
            else:
                for value in atom.values:
                    self._value(info, value, "in")

    def _unknown_field(self, ref: t.FieldRef, schema: Schema) -> None:
        head, _, attr = ref.name.partition(".")
        builtin = {f.partition(".")[2] for f in schema.fields if f.startswith(head + ".")}
        close = did_you_mean(attr, builtin) if head in ("customer", "item") and attr else None
        if head in ("customer", "item") and attr and "." not in attr and close is None:
            hint: str | None = f"declare custom attributes first: attribute {ref.name}"
        else:
            hint = did_you_mean(ref.name, schema.fields)
        self.error("E0201", f"unknown field '{ref.name}'", ref.span, hint)

    def _compare(self, atom: t.Compare, info: FieldInfo) -> None:
        if info.type == "text" and atom.op in ORDERING_OPS:
            self.error(
                "E0202",
                f"'{atom.field.name}' is text; it can be compared with == != in, not {atom.op}",
                atom.span,
            )
            return
        self._value(info, atom.value, atom.op)

    def _value(self, info: FieldInfo, lit: t.Literal_, op: str) -> None:
        expected: FieldType = info.type
        if expected == "text":
            if not isinstance(lit, t.StringLit):
                self.error(
                    "E0202",
                    f"'{info.name}' is text, compared with {describe_literal(lit)}",
                    lit.span,
                    'quote it: "..."',
                )
                return
            if info.name == "sku" and self.data is not None and lit.value not in self.skus:
                self.error(
                    "E0303",
                    f"unknown SKU '{lit.value}'",
                    lit.span,
                    did_you_mean(lit.value, self.skus),
                )
            elif info.name == "currency" and lit.value not in CURRENCY_EXPONENTS:
                self.error(
                    "E0204",
                    f"unknown currency '{lit.value}'",
                    lit.span,
                    did_you_mean(lit.value, CURRENCY_EXPONENTS),
                )
        elif expected == "date":
            if not isinstance(lit, t.DateLit):
                self.error(
                    "E0202",
                    f"'{info.name}' is a date, compared with {describe_literal(lit)}",
                    lit.span,
                    "write a date as 2026-11-30",
                )
        elif expected == "quantity":
            self._quantity_literal(lit)
        else:
            if isinstance(lit, t.PercentLit):
                self.error("E0202", f"'{info.name}' is money, compared with a percentage", lit.span)
                return
            self._money_literal(lit, allow_negative=True)


def _gives_gifts(scope: t.Scope | None) -> bool:
    if isinstance(scope, t.ComboScope | t.PoolScope):
        return isinstance(scope.benefit, t.Gift)
    if isinstance(scope, t.OrderScope):
        return any(isinstance(step.benefit, t.Gift) for step in scope.steps)
    return False


def describe_literal(lit: t.Literal_) -> str:
    return {
        t.StringLit: "text",
        t.NumberLit: "a number",
        t.MoneyLit: "an amount of money",
        t.PercentLit: "a percentage",
        t.QtyLit: "a quantity",
        t.DateLit: "a date",
    }[type(lit)]


def check(
    ruleset: t.Ruleset, data: DataSet | None
) -> tuple[CheckedRuleset | None, list[Diagnostic]]:
    checker = Checker(ruleset, data)
    checked = checker.run()
    return checked, checker.diags


def today_in(timezone: str) -> dt.date:
    return dt.datetime.now(zoneinfo.ZoneInfo(timezone)).date()

"""The rule tree: frozen dataclasses the parser builds and the checker and compiler read.

Nothing here knows about lark. Every node carries a ``span`` so that any diagnostic or
adjustment can point back at ``file:line:col``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from engine.core.money import MoneyError, parse_money, parse_quantity

Comparator = Literal["==", "!=", "<", "<=", ">", ">="]
Stacking = Literal["stackable", "exclusive"]
Measure = Literal["qty", "amount"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NO_SPAN = Span(file="<none>", line=0, col=0, end_line=0, end_col=0)


# ---- literals ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StringLit:
    value: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberLit:
    """A bare number: its type comes from what it is compared with."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class MoneyLit:
    text: str
    currency: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class PercentLit:
    text: str  # without the % sign
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class QtyLit:
    text: str
    unit: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class DateLit:
    value: dt.date
    span: Span


Literal_ = StringLit | NumberLit | MoneyLit | PercentLit | QtyLit | DateLit


# ---- conditions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldRef:
    name: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Compare:
    field: FieldRef
    op: Comparator
    value: Literal_
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class InSet:
    field: FieldRef
    values: tuple[Literal_, ...]
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class And:
    items: tuple[Condition, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Or:
    items: tuple[Condition, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Not:
    item: Condition
    span: Span


Condition = Compare | InSet | And | Or | Not


# ---- benefits ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PercentOff:
    percent: PercentLit
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class AmountOff:
    """An amount off each unit of the line (``per unit`` may be written for clarity)."""

    amount: Literal_
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class FixedPrice:
    """A net unit price; applies only when lower than the running net unit price."""

    price: Literal_
    span: Span


Benefit = PercentOff | AmountOff | FixedPrice


@dataclass(frozen=True, slots=True, kw_only=True)
class Tier:
    threshold: Literal_
    benefit: Benefit
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Tiers:
    measure: Measure
    steps: tuple[Tier, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class LineScope:
    where: Condition | None
    action: Benefit | Tiers
    span: Span


# ---- combos, pools, order promotions, caps ----------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemSelector:
    """Which lines a combo part or a pool counts: ``sku "A"`` or ``category in ("x", "y")``."""

    field: FieldRef
    values: tuple[Literal_, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class ComboPart:
    count: NumberLit
    selector: ItemSelector
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Gift:
    qty: NumberLit
    sku: StringLit
    span: Span


#: what a combo set or a pool application gives: percent off the consumed units, an amount
#: off per set/application, a fixed price per set, or gift items per set/application
SetBenefit = PercentOff | AmountOff | FixedPrice | Gift
#: what an order promotion gives
OrderBenefit = PercentOff | AmountOff | Gift


@dataclass(frozen=True, slots=True, kw_only=True)
class ComboScope:
    parts: tuple[ComboPart, ...]
    benefit: SetBenefit
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolScope:
    selector: ItemSelector
    every: Literal_  # a quantity (units) or an amount of money
    benefit: SetBenefit
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderTier:
    threshold: Literal_
    benefit: OrderBenefit
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderScope:
    """``subtotal >= X`` (one step), ``subtotal tiers {...}`` or ``every X`` (one step)."""

    kind: Literal["threshold", "tiers", "every"]
    steps: tuple[OrderTier, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Cumulative:
    """``cumulative qty of sku "A" >= 100``: the customer's quantity (or net amount) of the
    selected items in committed orders dated inside the promotion's window, plus this cart."""

    measure: Measure
    selector: ItemSelector
    threshold: Literal_
    span: Span


CapKind = Literal["applications", "discount", "gifts", "budget", "uses", "gift_stock"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Cap:
    kind: CapKind
    value: Literal_
    span: Span


Scope = LineScope | ComboScope | PoolScope | OrderScope


# ---- declarations --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Validity:
    start: dt.date
    end: dt.date
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class TableRef:
    name: str
    keyed_by: tuple[FieldRef, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    name: str
    currency: str | None
    timezone: str | None
    rounding: str | None
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class AttributeDecl:
    field: FieldRef
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceList:
    name: str
    priority: int
    when: Condition | None
    valid: Validity | None
    table: TableRef | None
    currency: str | None
    tax_included: bool
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Promotion:
    name: str
    priority: int
    stacking: Stacking
    group: str | None
    when: Condition | None
    valid: Validity | None
    scope: Scope | None
    caps: tuple[Cap, ...] = ()
    cheapest_first: bool = False
    #: ``includes special``: special-price sub-lines take this promotion and count towards it
    includes_special: bool = False
    #: cumulative conditions: all must hold for the promotion to apply in a cart
    cumulative: tuple[Cumulative, ...] = ()
    span: Span
    name_span: Span

    def cap(self, kind: CapKind) -> Cap | None:
        return next((c for c in self.caps if c.kind == kind), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class FloorDecl:
    table: str
    policy: Literal["clamp", "flag"]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecialDecl:
    """``special prices { table special_prices }``: stage 3's table."""

    table: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Band:
    """``up to 5%: approved`` (limit set) or ``above: rejected`` (no limit)."""

    limit: PercentLit | None
    outcome: str  # approved | rejected | an approval level such as channel_manager
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalDecl:
    name: str
    priority: int
    when: Condition | None
    bands: tuple[Band, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class TaxRule:
    name: str
    table: TableRef
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCheckDecl:
    """An order check for ``POST /orders/validate``: ``credit { table accounts }``,
    ``sellable { table assortment by customer.group }``, ``stock plan { table stock_plans
    policy warn }`` or ``rebate payment { max 10% of order }``."""

    kind: Literal["credit", "sellable", "stock_plan", "rebate_payment"]
    span: Span
    table: str | None = None
    by: FieldRef | None = None  # sellable: the customer attribute the assortment is keyed by
    policy: Literal["warn", "block"] | None = None  # stock plan
    max_percent: PercentLit | None = None  # rebate payment


# ---- rebates, commissions, partner tiers, marketing funds (SPEC §6) ---------------------

PeriodKind = Literal["month", "quarter", "year", "range"]
PolicyCapKind = Literal["customer", "order", "period"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PeriodSpec:
    """``period quarter`` (kind set) or ``period 2026-01-01 .. 2026-06-30`` (kind "range")."""

    kind: PeriodKind
    start: dt.date | None
    end: dt.date | None
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Basis:
    """What a rebate or fund is computed on: ``basis net_amount where ... minus returns``."""

    measure: Literal["net_amount", "qty"]
    where: Condition | None
    minus_returns: bool
    includes_special: bool
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Payout:
    """A rate: a percentage of the basis, or an amount per base unit (a qty basis)."""

    percent: PercentLit | None
    per_unit: Literal_ | None
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyTier:
    threshold: Literal_
    payout: Payout
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyTiers:
    mode: Literal["retroactive", "incremental"]
    by: Literal["attainment", "basis"]
    steps: tuple[PolicyTier, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyCap:
    per: PolicyCapKind
    value: Literal_
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class RebateDecl:
    """A rebate (``kind == "rebate"``) or a marketing-fund accrual (``kind == "fund"``)."""

    kind: Literal["rebate", "fund"]
    name: str
    period: PeriodSpec | None
    basis: Basis | None
    target_table: str | None
    target_value: Literal_ | None
    tiers: PolicyTiers | None
    flat: Payout | None
    caps: tuple[PolicyCap, ...]
    minimum_payout: Literal_ | None
    accrual: bool
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class EventReward:
    amount: Literal_
    event: str
    span: Span
    event_span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class CommissionDecl:
    name: str
    period: PeriodSpec | None
    beneficiary: Literal["referrer", "buyer"]
    percent: PercentLit | None
    where: Condition | None
    rewards: tuple[EventReward, ...]
    caps: tuple[PolicyCap, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Level:
    name: str
    when: Condition
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class PartnerTiersDecl:
    name: str
    period: PeriodSpec | None
    levels: tuple[Level, ...]
    default: str | None
    span: Span
    name_span: Span


PolicyDecl = RebateDecl | CommissionDecl | PartnerTiersDecl


Declaration = (
    Header
    | AttributeDecl
    | PriceList
    | Promotion
    | TaxRule
    | FloorDecl
    | SpecialDecl
    | ApprovalDecl
    | OrderCheckDecl
    | PolicyDecl
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleFile:
    path: str
    source: str
    declarations: tuple[Declaration, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Ruleset:
    """A whole directory of rule files, parsed; not yet checked."""

    files: tuple[RuleFile, ...]
    sources: dict[str, str] = field(default_factory=dict)

    def declarations(self) -> tuple[Declaration, ...]:
        return tuple(d for f in self.files for d in f.declarations)


# ---- reading the tree ----------------------------------------------------------------------


def atoms(cond: Condition) -> Iterator[Compare | InSet]:
    """Every comparison in a condition, depth first."""
    if isinstance(cond, Compare | InSet):
        yield cond
    elif isinstance(cond, Not):
        yield from atoms(cond.item)
    else:
        for item in cond.items:
            yield from atoms(item)


def money_value(lit: Literal_, currency: str) -> int:
    """A money literal (or a bare number, in ``currency``) in minor units."""
    if isinstance(lit, MoneyLit):
        return parse_money(lit.text, lit.currency)
    if isinstance(lit, NumberLit):
        return parse_money(lit.text, currency)
    raise MoneyError("not a money literal")


def quantity_value(lit: Literal_) -> tuple[int, str | None]:
    """Thousandths and the unit named (None = the base unit)."""
    if isinstance(lit, QtyLit):
        return parse_quantity(lit.text), lit.unit
    if isinstance(lit, NumberLit):
        return parse_quantity(lit.text), None
    raise MoneyError("not a quantity literal")

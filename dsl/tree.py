"""The rule tree: frozen dataclasses the parser builds and the checker and compiler read.

Nothing here knows about lark. Every node carries a ``span`` so that any diagnostic or
adjustment can point back at ``file:line:col``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

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
    scope: LineScope | None
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class TaxRule:
    name: str
    table: TableRef
    span: Span
    name_span: Span


Declaration = Header | AttributeDecl | PriceList | Promotion | TaxRule


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

"""The compiled plan: everything pricing needs, as arrays and lookups, built once per publish."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from dsl import tree as t
from dsl.errors import Diagnostic
from engine.core.money import Rounding
from engine.plan.cart_rules import Caps, CartStages
from engine.plan.catalog import CatalogIndex
from engine.plan.line_index import LineRuleIndex
from engine.plan.price_lists import FxRates, PriceListPlan
from engine.pricing.cumulative import CumulativePlan
from engine.pricing.special import SpecialPlan
from engine.pricing.tax import TaxPlan


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """What an adjustment points back to: the rule's name, kind and source position."""

    name: str
    kind: str
    span: t.Span
    #: the promotion as written (window, group, stacking), for explanations
    decl: t.Promotion | None = None

    @property
    def source(self) -> str:
        return f"{self.span.file}:{self.span.line}"


@dataclass(frozen=True)
class Plan:
    name: str
    currency: str
    timezone: str
    rounding: Rounding
    version: str
    catalog: CatalogIndex
    pricelists: tuple[PriceListPlan, ...]
    #: every promotion, in evaluation order; adjustments name their rule by index here
    rules: tuple[RuleInfo, ...]
    #: line promotion i of ``line_index`` is ``rules[line_rule_ids[i]]``
    line_rule_ids: npt.NDArray[np.int64]
    line_index: LineRuleIndex
    stages: CartStages
    tax: TaxPlan | None
    fx: FxRates
    sources: dict[str, str]
    #: some line promotion reads or gives money: a cart in another currency needs a rate
    money_in_promotions: bool
    #: warnings the compiler found (unreachable promotions); they don't stop a publish
    warnings: tuple[Diagnostic, ...] = ()
    #: per promotion (index into ``rules``): its caps (budget, uses, gift stock: the ledger's limits)
    rule_caps: tuple[Caps, ...] = ()
    #: the order checks ``POST /orders/validate`` runs (credit, sellable, stock plan, rebate payment)
    order_checks: OrderChecks = field(default_factory=lambda: OrderChecks())
    #: stage 3's special-price table (None: the ruleset declares no special prices)
    special: SpecialPlan | None = None
    #: cumulative conditions, each a synthetic cart field the batch computes (engine.pricing.cumulative)
    cumulative: tuple[CumulativePlan, ...] = ()
    #: custom customer attributes the rules read (``customer_attributes``): a cart column each
    customer_attrs: tuple[str, ...] = ()
    #: the small-batch path's Python-side tables (``engine.pricing.small_path``), built by the
    #: compiler's finishing step; None for a plan that was not finished. Not part of identity.
    small: Any = field(default=None, compare=False, repr=False)
    #: promotion name -> index in ``rules`` (derived at construction)
    rule_positions: Mapping[str, int] = field(init=False, compare=False, repr=False)
    #: the promotions that say ``exclusive`` (indexes into ``rules``, derived at construction)
    exclusive_rules: frozenset[int] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # derived once, here: the plan is never written after it is constructed
        object.__setattr__(
            self, "rule_positions", MappingProxyType({r.name: k for k, r in enumerate(self.rules)})
        )
        exclusive = frozenset(
            k
            for k, r in enumerate(self.rules)
            if r.decl is not None and r.decl.stacking == "exclusive"
        )
        object.__setattr__(self, "exclusive_rules", exclusive)

    def rule_index(self, name: str) -> int:
        """The index in ``rules`` of the promotion with this (unique) name."""
        return self.rule_positions[name]

    @property
    def rule_names(self) -> list[str]:
        return (
            [p.name for p in self.pricelists]
            + [r.name for r in self.rules]
            + ([self.tax.name] if self.tax else [])
        )


@dataclass(frozen=True, slots=True)
class OrderChecks:
    """The ruleset's order-check declarations (docs/orders.md); None: not declared."""

    credit_table: str | None = None
    sellable_table: str | None = None
    sellable_by: str | None = None  # the customer attribute, e.g. "group" (column customer_group)
    stock_table: str | None = None
    stock_policy: str = "warn"  # warn | block
    rebate_max_bp: int | None = None  # rebate payment cap, basis points of the order total


BUILTIN_CUSTOMER_FIELDS = frozenset({"id", "tier", "region", "group"})


def customer_attributes(
    pricelists: Sequence[PriceListPlan],
    line_index: LineRuleIndex,
    stages: CartStages,
    order_checks: OrderChecks,
) -> tuple[str, ...]:
    """The custom customer attributes a plan reads, sorted: every one a price list is keyed
    by, a condition (price list, promotion, approval) tests, or an order check looks up.

    The compiler stores them as ``Plan.customer_attrs``; each becomes a cart column."""
    fields = set(line_index.fields)
    fields |= {f for p in pricelists for f in p.keyed_fields}
    conjuncts = [c for p in pricelists for c in p.conjuncts]
    conjuncts += [c for r in stages.rules for c in r.conjuncts]
    conjuncts += [c for a in stages.approvals for c in a.conjuncts]
    fields |= {atom.field for c in conjuncts for atom in c.cart}
    if order_checks.sellable_by is not None:
        fields.add(f"customer.{order_checks.sellable_by}")
    attrs = {f.removeprefix("customer.") for f in fields if f.startswith("customer.")}
    return tuple(sorted(attrs - BUILTIN_CUSTOMER_FIELDS))

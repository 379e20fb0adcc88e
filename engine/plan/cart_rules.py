"""Compiled cart-level rules: combos, pools and order promotions (stages 5-7), caps, floors
and approval bands (stage 9). Built by ``dsl.compile`` from the checked tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from engine.plan.catalog import BoolArray
from engine.plan.conditions import Conjunct

I64 = npt.NDArray[np.int64]

BenefitKind = Literal["percent", "amount", "fixed", "gift"]


@dataclass(frozen=True, slots=True)
class SetBenefit:
    """What a combo set, a pool application or an order step gives."""

    kind: BenefitKind
    bp: int = 0  # percent
    amount: int = 0  # minor units: per set / per application / per order step
    gift_sku: int = -1
    gift_qty: int = 0  # whole units per set / application / step


@dataclass(frozen=True, slots=True)
class Caps:
    max_applications: int | None = None
    max_discount: int | None = None  # minor units per order
    max_gifts: int | None = None
    budget: int | None = None  # minor units, all orders
    uses_per_customer: int | None = None
    gift_stock: int | None = None

    @property
    def clips_money(self) -> bool:
        return self.max_discount is not None or self.budget is not None


@dataclass(frozen=True)
class CartRule:
    """One combo, pool or order promotion, with its position in the evaluation order."""

    rule_id: int
    name: str
    form: Literal["combo", "pool", "order"]
    exclusive: bool
    group: str | None
    conjuncts: tuple[Conjunct, ...]  # when + valid (cart atoms only)
    caps: Caps
    benefit: SetBenefit | None = None  # combos and pools
    parts: tuple[tuple[int, BoolArray], ...] = ()  # combos: (units needed, which SKUs)
    pool_mask: BoolArray | None = None
    step_units: int = 0  # pools counting units: thousandths per application
    step_money: int = 0  # pools counting money: minor units per application
    cheapest_first: bool = False
    order_kind: Literal["threshold", "tiers", "every", ""] = ""
    thresholds: tuple[int, ...] = ()  # order promotions: ascending minor units
    step_benefits: tuple[SetBenefit, ...] = ()
    includes_special: bool = False  # special-price sub-lines count towards it and take it

    def gives_gifts(self) -> bool:
        benefits = (self.benefit,) if self.benefit is not None else self.step_benefits
        return any(b is not None and b.kind == "gift" for b in benefits)


@dataclass(frozen=True)
class FloorPlan:
    policy: Literal["clamp", "flag"]
    per_unit: I64  # per SKU: floor price per base unit (minor), -1 = none


@dataclass(frozen=True)
class ApprovalPlan:
    name: str
    conjuncts: tuple[Conjunct, ...]
    limits: tuple[int, ...]  # basis points, ascending; the last band may be open
    outcomes: tuple[str, ...]  # one per limit, plus one more if there is an "above" band
    has_above: bool

    def outcome(self, bp: int) -> str:
        for limit, outcome in zip(self.limits, self.outcomes, strict=False):
            if bp <= limit:
                return outcome
        return self.outcomes[-1] if self.has_above else "rejected"


@dataclass(frozen=True)
class CartStages:
    """Everything after line promotions. Empty when a ruleset has none of it."""

    rules: tuple[CartRule, ...] = ()
    floor: FloorPlan | None = None
    approvals: tuple[ApprovalPlan, ...] = ()
    bundles: dict[int, tuple[tuple[int, int], ...]] = field(
        default_factory=dict
    )  # sku -> (component, ratio)

    @property
    def active(self) -> bool:
        return bool(self.rules or self.floor or self.approvals)

    def form_of(self, rule_id: int) -> str:
        """``combo``, ``pool`` or ``order`` for a cart-level rule."""
        return next(r.form for r in self.rules if r.rule_id == rule_id)

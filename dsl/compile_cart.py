"""Compiling cart-level rules (combos, pools, order promotions, caps, floors, approvals)."""

from __future__ import annotations

import numpy as np

from dsl import tree as t
from dsl.tree import money_value
from engine.core.columns import scaled_column
from engine.core.data import DataError, DataSet
from engine.core.money import exponent, parse_percent, parse_quantity
from engine.plan.cart_rules import ApprovalPlan, Caps, CartRule, FloorPlan, SetBenefit
from engine.plan.catalog import BoolArray, CatalogIndex
from engine.plan.conditions import TRUE, ConditionCompiler, Conjunct


def caps_of(promo: t.Promotion, currency: str) -> Caps:
    def whole(kind: t.CapKind) -> int | None:
        cap = promo.cap(kind)
        return (
            int(cap.value.text) if cap is not None and isinstance(cap.value, t.NumberLit) else None
        )

    def money(kind: t.CapKind) -> int | None:
        cap = promo.cap(kind)
        return money_value(cap.value, currency) if cap is not None else None

    return Caps(
        max_applications=whole("applications"),
        max_discount=money("discount"),
        max_gifts=whole("gifts"),
        budget=money("budget"),
        uses_per_customer=whole("uses"),
        gift_stock=whole("gift_stock"),
    )


def _benefit(benefit: t.SetBenefit, currency: str, catalog: CatalogIndex) -> SetBenefit:
    if isinstance(benefit, t.Gift):
        return SetBenefit(
            kind="gift",
            gift_sku=catalog.sku_index[benefit.sku.value],
            gift_qty=int(benefit.qty.text),
        )
    if isinstance(benefit, t.PercentOff):
        return SetBenefit(kind="percent", bp=parse_percent(benefit.percent.text))
    if isinstance(benefit, t.AmountOff):
        return SetBenefit(kind="amount", amount=money_value(benefit.amount, currency))
    return SetBenefit(kind="fixed", amount=money_value(benefit.price, currency))


def selector_mask(selector: t.ItemSelector, catalog: CatalogIndex) -> BoolArray:
    wanted = {v.value for v in selector.values if isinstance(v, t.StringLit)}
    column = catalog.text.get(selector.field.name)
    if column is None:
        return np.zeros(catalog.size, dtype=np.bool_)
    return column.mask(wanted, negated=False)


def build_cart_rule(
    rule_id: int,
    promo: t.Promotion,
    conditions: ConditionCompiler,
    catalog: CatalogIndex,
    currency: str,
    cumulative: tuple[Conjunct, ...] = TRUE,
) -> CartRule:
    scope = promo.scope
    conjuncts = conditions.and_all(
        [conditions.validity(promo.valid), conditions.compile(promo.when), cumulative], promo.span
    )
    common = {
        "rule_id": rule_id,
        "name": promo.name,
        "exclusive": promo.stacking == "exclusive",
        "includes_special": promo.includes_special,
        "group": promo.group,
        "conjuncts": conjuncts,
        "caps": caps_of(promo, currency),
        "cheapest_first": promo.cheapest_first,
    }
    if isinstance(scope, t.ComboScope):
        parts = []
        claimed = np.zeros(catalog.size, dtype=np.bool_)
        for part in scope.parts:
            # a SKU belongs to the first part (in written order) that selects it
            mask = selector_mask(part.selector, catalog) & ~claimed
            claimed |= mask
            parts.append((int(part.count.text), mask))
        return CartRule(
            form="combo",
            benefit=_benefit(scope.benefit, currency, catalog),
            parts=tuple(parts),
            **common,  # type: ignore[arg-type]
        )
    if isinstance(scope, t.PoolScope):
        step_units = step_money = 0
        if isinstance(scope.every, t.MoneyLit):
            step_money = money_value(scope.every, currency)
        else:
            step_units = (
                parse_quantity(scope.every.text) if isinstance(scope.every, t.NumberLit) else 0
            )
        return CartRule(
            form="pool",
            benefit=_benefit(scope.benefit, currency, catalog),
            pool_mask=selector_mask(scope.selector, catalog),
            step_units=step_units,
            step_money=step_money,
            **common,  # type: ignore[arg-type]
        )
    assert isinstance(scope, t.OrderScope)
    return CartRule(
        form="order",
        order_kind=scope.kind,
        thresholds=tuple(money_value(s.threshold, currency) for s in scope.steps),
        step_benefits=tuple(_benefit(s.benefit, currency, catalog) for s in scope.steps),
        **common,  # type: ignore[arg-type]
    )


def build_floor(
    decl: t.FloorDecl, currency: str, catalog: CatalogIndex, data: DataSet
) -> FloorPlan:
    frame = data.table(decl.table)
    per_unit = np.full(catalog.size, -1, dtype=np.int64)
    for i, sku in enumerate(frame["sku"].to_list()):
        if sku not in catalog.sku_index:
            raise DataError(f"unknown sku {sku!r}", table=decl.table, row=i + 1)
    values, ok = scaled_column(frame["floor"], exponent(currency))
    if not ok.all():
        bad = int(np.argmax(~ok))
        raise DataError(
            f"floor {frame['floor'][bad]!r} is not an amount of {currency}",
            table=decl.table,
            row=bad + 1,
        )
    skus = np.array([catalog.sku_index[s] for s in frame["sku"].to_list()], dtype=np.int64)
    per_unit[skus] = values
    return FloorPlan(policy=decl.policy, per_unit=per_unit)


def build_approval(decl: t.ApprovalDecl, conditions: ConditionCompiler) -> ApprovalPlan:
    limits = tuple(parse_percent(b.limit.text) for b in decl.bands if b.limit is not None)
    return ApprovalPlan(
        name=decl.name,
        conjuncts=conditions.compile(decl.when),
        limits=limits,
        outcomes=tuple(b.outcome for b in decl.bands),
        has_above=any(b.limit is None for b in decl.bands),
    )


def build_bundles(data: DataSet, catalog: CatalogIndex) -> dict[int, tuple[tuple[int, int], ...]]:
    """Bundle SKUs and their components with allocation ratios, from the catalog."""
    if "components" not in data.catalog.columns:
        return {}
    bundles: dict[int, tuple[tuple[int, int], ...]] = {}
    for row, (sku, text) in enumerate(
        zip(data.catalog["sku"].to_list(), data.catalog["components"].to_list(), strict=True)
    ):
        if not text:
            continue
        parts = []
        for part in text.split(";"):
            name, _, ratio = part.partition(":")
            if (
                name.strip() not in catalog.sku_index
                or not ratio.strip().isdigit()
                or int(ratio) <= 0
            ):
                raise DataError(
                    f"bad component {part!r} (expected SKU:positive ratio)",
                    table="catalog",
                    row=row + 1,
                )
            parts.append((catalog.sku_index[name.strip()], int(ratio)))
        bundles[catalog.sku_index[sku]] = tuple(parts)
    return bundles

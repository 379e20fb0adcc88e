"""The compiler: a checked rule tree plus its data tables -> the engine's plan.

>>> # see engine.api.compile_ruleset for the public entry point
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import PurePosixPath

import numpy as np

from dsl import tree as t
from dsl.check import CheckedRuleset
from dsl.compile_cart import (
    build_approval,
    build_bundles,
    build_cart_rule,
    build_floor,
    caps_of,
    selector_mask,
)
from dsl.errors import Diagnostic
from dsl.fmt import selector
from dsl.shadow import shadowed
from dsl.tree import money_value, quantity_value
from engine.core.codes import BenefitKind
from engine.core.data import DataError, DataSet
from engine.core.money import parse_percent
from engine.plan.cart_rules import CartStages
from engine.plan.catalog import CatalogIndex, build_catalog
from engine.plan.compiled import OrderChecks, Plan, RuleInfo, customer_attributes
from engine.plan.conditions import (
    FULL,
    TRUE,
    CartAtom,
    ConditionCompiler,
    ConditionTooComplex,
    Conjunct,
)
from engine.plan.line_index import BenefitSpec, LineRule, LineRuleIndex
from engine.plan.price_lists import build_fx, build_pricelist
from engine.pricing.cumulative import FIELD_PREFIX, CumulativePlan
from engine.pricing.small_path import finish
from engine.pricing.special import build_special
from engine.pricing.tax import build_tax


class CompileError(Exception):
    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__("compile failed")
        self.diagnostics = diagnostics


def ruleset_version(sources: dict[str, str], data: DataSet | None = None) -> str:
    """``"sha256:<16 hex>"`` of the rule files, keyed by their path inside the ruleset folder
    (``source_keys``), and of ``data`` (``DataSet.digest``); the same inputs give the same
    version in every process, wherever the folder sits.

    >>> ruleset_version({"/srv/a/rules/r.rule": "x"}) == ruleset_version({"rules/r.rule": "x"})
    True
    """
    digest = hashlib.sha256(b"pricer-ruleset/2")
    keys = source_keys(sources)
    digest.update(len(sources).to_bytes(8, "little"))
    for path in sorted(sources, key=lambda p: (keys[p], p)):
        for part in (keys[path], sources[path]):
            raw = part.encode()
            digest.update(len(raw).to_bytes(8, "little") + raw)
    digest.update(b"data:" + (data.digest().encode() if data is not None else b"none"))
    return "sha256:" + digest.hexdigest()[:16]


def source_keys(sources: Iterable[str]) -> dict[str, str]:
    """Each display path relative to the deepest folder that holds every file: the ruleset
    root ``load_sources`` read, or the folder a client's file names share.

    >>> source_keys(["/tmp/x/rules/main.rule", "/tmp/x/rules/promos/q4.rule"])
    {'/tmp/x/rules/main.rule': 'main.rule', '/tmp/x/rules/promos/q4.rule': 'promos/q4.rule'}
    """
    parts = {path: PurePosixPath(path).parts for path in sources}
    folders = [p[:-1] for p in parts.values()]
    shared = 0
    if folders:
        shortest = min(folders, key=len)
        while shared < len(shortest) and all(f[shared] == shortest[shared] for f in folders):
            shared += 1
    return {path: "/".join(p[shared:]) for path, p in parts.items()}


def _benefit(benefit: t.Benefit, currency: str) -> BenefitSpec:
    if isinstance(benefit, t.PercentOff):
        return BenefitSpec(kind=BenefitKind.PERCENT_OFF, bp=parse_percent(benefit.percent.text))
    if isinstance(benefit, t.AmountOff):
        return BenefitSpec(
            kind=BenefitKind.AMOUNT_OFF, amount=money_value(benefit.amount, currency)
        )
    return BenefitSpec(kind=BenefitKind.FIXED_PRICE, amount=money_value(benefit.price, currency))


def _line_rule(
    promo: t.Promotion,
    conditions: ConditionCompiler,
    currency: str,
    cumulative: tuple[Conjunct, ...] = TRUE,
) -> LineRule:
    scope = promo.scope
    assert isinstance(scope, t.LineScope)
    parts = [
        conditions.validity(promo.valid),
        conditions.compile(promo.when),
        conditions.compile(scope.where),
        cumulative,
    ]
    action = scope.action
    if isinstance(action, t.Tiers):
        thresholds = []
        for step in action.steps:
            if action.measure == "qty":
                milli, unit = quantity_value(step.threshold)
                if unit is not None:
                    raise ConditionTooComplex(step.threshold.span)
                thresholds.append(milli)
            else:
                thresholds.append(money_value(step.threshold, currency))
        lowest = (thresholds[0], FULL[1])
        floor = Conjunct(
            item=None,
            cart=(),
            qty=lowest if action.measure == "qty" else FULL,
            amount=lowest if action.measure == "amount" else FULL,
        )
        parts.append((floor,))
        conjuncts = conditions.and_all(parts, promo.span)
        return LineRule(
            name=promo.name,
            exclusive=promo.stacking == "exclusive",
            group=promo.group,
            conjuncts=conjuncts,
            benefit=None,
            tier_measure=action.measure,
            tier_thresholds=tuple(thresholds),
            tier_benefits=tuple(_benefit(s.benefit, currency) for s in action.steps),
            includes_special=promo.includes_special,
        )
    conjuncts = conditions.and_all(parts, promo.span)
    return LineRule(
        name=promo.name,
        exclusive=promo.stacking == "exclusive",
        group=promo.group,
        conjuncts=conjuncts,
        benefit=_benefit(action, currency),
        includes_special=promo.includes_special,
    )


def _cumulative(
    promo: t.Promotion, catalog: CatalogIndex, currency: str, plans: list[CumulativePlan]
) -> tuple[Conjunct, ...]:
    """The promotion's cumulative conditions as cart atoms on synthetic fields (their plans
    are appended to ``plans``)."""
    atoms = []
    for c in promo.cumulative:
        mask = selector_mask(c.selector, catalog)
        threshold = (
            quantity_value(c.threshold)[0]
            if c.measure == "qty"
            else money_value(c.threshold, currency)
        )
        field = f"{FIELD_PREFIX}{len(plans)}"
        plans.append(
            CumulativePlan(
                field=field,
                measure=c.measure,
                mask=mask,
                skus=tuple(s for s, m in zip(catalog.skus, mask.tolist(), strict=True) if m),
                threshold=threshold,
                start=promo.valid.start if promo.valid else None,
                end=promo.valid.end if promo.valid else None,
                items=selector(c.selector),
            )  # fmt: skip
        )
        atoms.append(CartAtom(field=field, op="in", values=frozenset({"1"})))
    if not atoms:
        return TRUE
    return (Conjunct(item=None, cart=tuple(atoms), qty=FULL, amount=FULL),)


def names_money(promo: t.Promotion) -> bool:
    """Does a promotion read or give an amount of money (so a foreign cart needs a rate)?"""
    scope = promo.scope
    if scope is None:
        return False
    if any(c.measure == "amount" for c in promo.cumulative):
        return True
    if any(c.kind in ("discount", "budget") for c in promo.caps):
        return True
    if not isinstance(scope, t.LineScope):
        return _cart_rule_names_money(promo)
    action = scope.action
    if isinstance(action, t.Tiers):
        if action.measure == "amount":
            return True
        benefits: list[t.Benefit] = [step.benefit for step in action.steps]
    else:
        benefits = [action]
    if any(not isinstance(b, t.PercentOff) for b in benefits):
        return True
    return scope.where is not None and _reads_amount(scope.where)


def _cart_rule_names_money(promo: t.Promotion) -> bool:
    scope = promo.scope
    if isinstance(scope, t.ComboScope | t.PoolScope):
        benefits: list[t.SetBenefit] = [scope.benefit]
        if isinstance(scope, t.PoolScope) and isinstance(scope.every, t.MoneyLit):
            return True
    else:
        assert isinstance(scope, t.OrderScope)
        return True  # thresholds are money
    money_caps = any(c.kind in ("discount", "budget") for c in promo.caps)
    return money_caps or any(isinstance(b, t.AmountOff | t.FixedPrice) for b in benefits)


def _reads_amount(cond: t.Condition) -> bool:
    if isinstance(cond, t.Compare | t.InSet):
        return cond.field.name == "amount"
    if isinstance(cond, t.Not):
        return _reads_amount(cond.item)
    return any(_reads_amount(item) for item in cond.items)


def _shadow_warning(
    promotions: list[t.Promotion], shadowed_index: int, covers: tuple[int, ...]
) -> Diagnostic:
    names = " and ".join(f"'{promotions[a].name}' ({promotions[a].span})" for a in covers)
    verb = (
        "is exclusive, comes first and applies"
        if len(covers) == 1
        else "are exclusive, come first and together apply"
    )
    return Diagnostic(
        code="W0501",
        severity="warning",
        message=f"promotion '{promotions[shadowed_index].name}' can never apply: {names} {verb} wherever it would",
        span=promotions[shadowed_index].name_span,
        hint=f"narrow or lower the priority of the earlier promotion{'s' if len(covers) > 1 else ''}, or remove this one",
    )


def compile_checked(checked: CheckedRuleset, data: DataSet) -> Plan:
    """Raises ``CompileError`` (with diagnostics) or ``DataError``."""
    catalog = build_catalog(data)
    conditions = ConditionCompiler(catalog, checked.schema, checked.currency)
    diagnostics: list[Diagnostic] = []
    pricelists = []
    for decl in checked.pricelists:
        try:
            conj = conditions.and_all(
                [conditions.validity(decl.valid), conditions.compile(decl.when)], decl.span
            )
            pricelists.append(build_pricelist(decl, conj, checked.currency, catalog, data))
        except ConditionTooComplex as err:
            diagnostics.append(
                Diagnostic(code="E0503", severity="error", message=str(err), span=err.span)
            )
        except DataError as err:
            diagnostics.append(
                Diagnostic(
                    code="E0302",
                    severity="error",
                    message=f"price list '{decl.name}': {err}",
                    span=decl.span,
                )
            )
    rules: list[LineRule] = []
    line_ids: list[int] = []
    infos = [
        RuleInfo(name=p.name, kind="promotion", span=p.span, decl=p) for p in checked.promotions
    ]
    cart_rules = []
    cumulative: list[CumulativePlan] = []
    for rule_id, promo in enumerate(checked.promotions):
        try:
            held = _cumulative(promo, catalog, checked.currency, cumulative)
            if isinstance(promo.scope, t.LineScope):
                rules.append(_line_rule(promo, conditions, checked.currency, held))
                line_ids.append(rule_id)
            else:
                cart_rules.append(
                    build_cart_rule(rule_id, promo, conditions, catalog, checked.currency, held)
                )
        except ConditionTooComplex as err:
            diagnostics.append(
                Diagnostic(
                    code="E0503",
                    severity="error",
                    message=str(err),
                    span=err.span,
                    hint="split the rule, or write tier thresholds in the base unit",
                )
            )
    tax = None
    if checked.tax is not None:
        try:
            tax = build_tax(checked.tax, data)
        except DataError as err:
            diagnostics.append(
                Diagnostic(
                    code="E0302",
                    severity="error",
                    message=f"tax '{checked.tax.name}': {err}",
                    span=checked.tax.span,
                )
            )
    try:
        fx = build_fx(data)
    except DataError as err:
        span = t.Span(file="<data>", line=0, col=0, end_line=0, end_col=0)
        diagnostics.append(Diagnostic(code="E0302", severity="error", message=str(err), span=span))
    stages = CartStages(rules=(), floor=None, approvals=(), bundles={})
    try:
        stages = CartStages(
            rules=tuple(cart_rules),
            floor=build_floor(checked.floor, checked.currency, catalog, data)
            if checked.floor is not None
            else None,
            approvals=tuple(build_approval(a, conditions) for a in checked.approvals),
            bundles=build_bundles(data, catalog),
        )
    except DataError as err:
        span = (
            checked.floor.span
            if checked.floor is not None
            else t.Span(file="<data>", line=0, col=0, end_line=0, end_col=0)
        )
        diagnostics.append(Diagnostic(code="E0302", severity="error", message=str(err), span=span))
    special = None
    if checked.special is not None:
        try:
            special = build_special(checked.special.table, checked.currency, catalog, data)
        except DataError as err:
            diagnostics.append(
                Diagnostic(
                    code="E0302",
                    severity="error",
                    message=f"special prices: {err}",
                    span=checked.special.span,
                )
            )
    if diagnostics:
        raise CompileError(diagnostics)
    caps = [caps_of(p, checked.currency) for p in checked.promotions]
    line_promotions = [checked.promotions[i] for i in line_ids]
    warnings = tuple(_shadow_warning(line_promotions, b, covers) for b, covers in shadowed(rules))
    line_index = LineRuleIndex(
        rules, catalog.size, [caps[i] for i in line_ids], special=special is not None
    )
    order_checks = _order_checks(checked)
    return finish(
        Plan(
            name=checked.name,
            currency=checked.currency,
            timezone=checked.timezone,
            rounding=checked.rounding,
            version=ruleset_version(checked.sources, data),
            catalog=catalog,
            pricelists=tuple(pricelists),
            rules=tuple(infos),
            line_rule_ids=np.array(line_ids, dtype=np.int64),
            line_index=line_index,
            special=special,
            cumulative=tuple(cumulative),
            stages=stages,
            tax=tax,
            fx=fx,
            money_in_promotions=any(names_money(p) for p in checked.promotions),
            warnings=warnings,
            sources=checked.sources,
            rule_caps=tuple(caps),
            order_checks=order_checks,
            customer_attrs=customer_attributes(pricelists, line_index, stages, order_checks),
        )
    )


def _order_checks(checked: CheckedRuleset) -> OrderChecks:
    found = {d.kind: d for d in checked.order_checks}
    credit, sellable, stock, rebate = (
        found.get(k) for k in ("credit", "sellable", "stock_plan", "rebate_payment")
    )
    return OrderChecks(
        credit_table=credit.table if credit else None,
        sellable_table=sellable.table if sellable else None,
        sellable_by=sellable.by.name.removeprefix("customer.")
        if sellable and sellable.by
        else None,
        stock_table=stock.table if stock else None,
        stock_policy=(stock.policy or "warn") if stock else "warn",
        rebate_max_bp=parse_percent(rebate.max_percent.text)
        if rebate and rebate.max_percent
        else None,
    )

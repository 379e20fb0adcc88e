"""Compile a checked ruleset's rebate, commission, partner-tier and fund declarations
into ``engine.plan.policies.PolicySet`` (SPEC §6)."""

from __future__ import annotations

from dsl import tree as t
from dsl.check import CheckedRuleset
from dsl.compile import ruleset_version
from dsl.tree import money_value, quantity_value
from engine.core.data import DataSet
from engine.core.money import format_money, format_quantity, parse_percent
from engine.plan.policies import CommissionPolicy, PolicySet, RatePolicy, TierPolicy


def _src(span: t.Span) -> str:
    return f"{span.file}:{span.line}"


def _payout_value(p: t.Payout, currency: str) -> tuple[int, str]:
    if p.percent is not None:
        return parse_percent(p.percent.text), f"{p.percent.text}%"
    assert p.per_unit is not None
    value = money_value(p.per_unit, currency)
    return value, f"{format_money(value, currency)} per unit"


def _threshold(lit: t.Literal_, d: t.RebateDecl, currency: str) -> tuple[int, str]:
    assert d.tiers is not None and d.basis is not None
    if d.tiers.by == "attainment":
        assert isinstance(lit, t.PercentLit)
        return parse_percent(lit.text), f"{lit.text}%"
    if d.basis.measure == "qty":
        value = quantity_value(lit)[0]
        return value, format_quantity(value)
    value = money_value(lit, currency)
    return value, format_money(value, currency)


def compile_policies_checked(
    ruleset: t.Ruleset, checked: CheckedRuleset, data: DataSet | None
) -> PolicySet:
    """The ruleset's rebate, commission, tier and fund declarations as plain values; the
    ruleset has passed the checker (``engine.api.compile_policies`` parses and checks)."""
    cur = checked.currency
    rates: list[RatePolicy] = []
    commissions: list[CommissionPolicy] = []
    tiers: list[TierPolicy] = []
    for d in ruleset.declarations():
        if isinstance(d, t.RebateDecl):
            assert d.basis is not None
            if d.tiers is not None:
                steps = [
                    (_threshold(s.threshold, d, cur), _payout_value(s.payout, cur))
                    for s in d.tiers.steps
                ]
                mode, by = d.tiers.mode, d.tiers.by
            else:
                assert d.flat is not None
                zero = (0, format_quantity(0) if d.basis.measure == "qty" else format_money(0, cur))
                steps = [(zero, _payout_value(d.flat, cur))]
                mode, by = "retroactive", "basis"
            target: int | None = None
            if d.target_value is not None:
                target = (
                    quantity_value(d.target_value)[0]
                    if d.basis.measure == "qty"
                    else money_value(d.target_value, cur)
                )
            cap = next((money_value(c.value, cur) for c in d.caps if c.per == "customer"), None)
            rates.append(
                RatePolicy(
                    name=d.name,
                    kind=d.kind,
                    period=d.period,
                    measure=d.basis.measure,
                    where=d.basis.where,
                    minus_returns=d.basis.minus_returns,
                    includes_special=d.basis.includes_special,
                    target_table=d.target_table,
                    target_value=target,
                    mode=mode,
                    by=by,
                    thresholds=tuple(s[0][0] for s in steps),
                    threshold_texts=tuple(s[0][1] for s in steps),
                    rates=tuple(s[1][0] for s in steps),
                    rate_texts=tuple(s[1][1] for s in steps),
                    cap=cap,
                    minimum=money_value(d.minimum_payout, cur)
                    if d.minimum_payout is not None
                    else None,
                    accrual=d.accrual,
                    source=_src(d.span),
                )
            )
        elif isinstance(d, t.CommissionDecl):
            caps = {c.per: money_value(c.value, cur) for c in d.caps}
            commissions.append(
                CommissionPolicy(
                    name=d.name,
                    period=d.period,
                    beneficiary=d.beneficiary,
                    percent=parse_percent(d.percent.text) if d.percent is not None else None,
                    where=d.where,
                    rewards=tuple((r.event, money_value(r.amount, cur)) for r in d.rewards),
                    cap_order=caps.get("order"),
                    cap_period=caps.get("period"),
                    source=_src(d.span),
                )
            )
        elif isinstance(d, t.PartnerTiersDecl):
            tiers.append(
                TierPolicy(
                    name=d.name,
                    period=d.period,
                    levels=tuple((lv.name, lv.when) for lv in d.levels),
                    default=d.default,
                    source=_src(d.span),
                )
            )
    return PolicySet(
        version=ruleset_version(checked.sources, data),
        currency=cur,
        rounding=checked.rounding,
        timezone=checked.timezone,
        rates=tuple(rates),
        commissions=tuple(commissions),
        tiers=tuple(tiers),
        data=data if data is not None else DataSet.from_rows([], {}),
    )

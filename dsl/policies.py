"""Rebate, commission, partner-tier and marketing-fund declarations (SPEC §6).

Parser callbacks (``PolicyTransformer``, mixed into the parser's transformer), the checks
(``check_policies``, called by the checker) and the formatter (``format_policy``) live
here, so the pricing declarations' modules change by one line each.

>>> from dsl.parser import parse_sources
>>> rs = parse_sources({"a.rule": 'ruleset "x" currency CNY\\nrebate "r" { period quarter basis net_amount earn 2% }'})
>>> rs.declarations()[1].flat.percent.text
'2'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dsl import tree as t
from dsl.errors import Diagnostic, did_you_mean
from dsl.schema import FACT_METRICS, METRICS

if TYPE_CHECKING:
    from dsl.check import Checker

#: event kinds a commission can reward (the ``kind`` column of the events history)
EVENT_KINDS = ("lead_submitted", "lead_converted", "merchant_referred", "partner_recruited")

#: fields a basis or commission ``where`` may read: the order line and its catalog item
LINE_FIELDS = ("sku", "category", "brand", "project", "customer.id", "referrer")


# ---- parsing ---------------------------------------------------------------------------


def _unquote(token: Any) -> str:
    body = str(token)[1:-1]
    return body.replace('\\"', '"').replace("\\\\", "\\")


class PolicyTransformer:
    """Callbacks for the policy rules of ``grammar.lark``; mixed into ``parser._ToTree``."""

    path: str
    repeats: list[Diagnostic]

    if TYPE_CHECKING:  # the parser's transformer (``parser._ToTree``) provides these

        def s(self, meta: Any) -> t.Span: ...

        def _field(self, token: Any) -> t.FieldRef: ...

    def _repeat(self, key: str, span: t.Span, first: t.Span) -> None:
        self.repeats.append(
            Diagnostic(
                code="E0103",
                severity="error",
                message=f"'{key}' is given twice in one declaration",
                span=span,
                hint=f"the first one is at {first}",
            )
        )

    def _collect(self, items: list[Any]) -> dict[str, tuple[Any, t.Span]]:
        found: dict[str, tuple[Any, t.Span]] = {}
        for key, value, span in items:
            if key in found:
                self._repeat(key, span, found[key][1])
                continue
            found[key] = (value, span)
        return found

    def period_kind(self, meta: Any, c: list[Any]) -> tuple[str, Any, t.Span]:
        span = self.s(meta)
        return ("period", t.PeriodSpec(kind=str(c[0]), start=None, end=None, span=span), span)  # type: ignore[arg-type]

    def period_range(self, meta: Any, c: list[Any]) -> tuple[str, Any, t.Span]:
        from dsl.parser import date_token

        span = self.s(meta)
        start, end = date_token(c[0], self.path), date_token(c[1], self.path)
        return ("period", t.PeriodSpec(kind="range", start=start, end=end, span=span), span)

    def minus_returns(self, meta: Any, c: list[Any]) -> tuple[str, t.Span]:
        return ("minus_returns", self.s(meta))

    def basis_includes_special(self, meta: Any, c: list[Any]) -> tuple[str, t.Span]:
        return ("includes_special", self.s(meta))

    def basis_stmt(self, meta: Any, c: list[Any]) -> tuple[str, Any, t.Span]:
        span = self.s(meta)
        where = next((x for x in c[1:] if not isinstance(x, tuple)), None)
        opts: dict[str, t.Span] = {}
        for x in c[1:]:
            if isinstance(x, tuple):
                if x[0] in opts:
                    self._repeat(x[0].replace("_", " "), x[1], opts[x[0]])
                opts.setdefault(x[0], x[1])
        basis = t.Basis(
            measure=str(c[0]),  # type: ignore[arg-type]
            where=where,
            minus_returns="minus_returns" in opts,
            includes_special="includes_special" in opts,
            span=span,
        )
        return ("basis", basis, span)

    def target_table(self, meta: Any, c: list[Any]) -> tuple[str, Any, t.Span]:
        return ("target", ("table", str(c[0])), self.s(meta))

    def target_value(self, meta: Any, c: list[Any]) -> tuple[str, Any, t.Span]:
        return ("target", ("value", c[0]), self.s(meta))

    def payout_percent(self, meta: Any, c: list[Any]) -> t.Payout:
        pct = t.PercentLit(text=str(c[0]).removesuffix("%"), span=self.s(c[0]))
        return t.Payout(percent=pct, per_unit=None, span=self.s(meta))

    def payout_per_unit(self, meta: Any, c: list[Any]) -> t.Payout:
        return t.Payout(percent=None, per_unit=c[0], span=self.s(meta))

    def policy_tier(self, meta: Any, c: list[Any]) -> t.PolicyTier:
        return t.PolicyTier(threshold=c[0], payout=c[1], span=self.s(meta))

    def policy_tiers(self, meta: Any, c: list[Any]) -> tuple[str, Any, t.Span]:
        span = self.s(meta)
        tiers = t.PolicyTiers(mode=str(c[0]), by=str(c[1]), steps=tuple(c[2:]), span=span)  # type: ignore[arg-type]
        return ("tiers", tiers, span)

    def flat_rate(self, meta: Any, c: list[Any]) -> tuple[str, Any, t.Span]:
        return ("earn", c[0], self.s(meta))

    def _policy_cap(self, per: t.PolicyCapKind, meta: Any, c: list[Any]) -> t.PolicyCap:
        return t.PolicyCap(per=per, value=c[0], span=self.s(meta))

    def cap_per_customer(self, meta: Any, c: list[Any]) -> t.PolicyCap:
        return self._policy_cap("customer", meta, c)

    def cap_per_order(self, meta: Any, c: list[Any]) -> t.PolicyCap:
        return self._policy_cap("order", meta, c)

    def cap_per_period(self, meta: Any, c: list[Any]) -> t.PolicyCap:
        return self._policy_cap("period", meta, c)

    def minimum_payout(self, meta: Any, c: list[Any]) -> tuple[str, Any, t.Span]:
        return ("minimum payout", c[0], self.s(meta))

    def accrual(self, meta: Any, c: list[Any]) -> tuple[str, Any, t.Span]:
        return ("accrual", True, self.s(meta))

    def _caps(self, items: list[Any]) -> tuple[tuple[t.PolicyCap, ...], list[Any]]:
        caps: dict[str, t.PolicyCap] = {}
        rest = []
        for x in items:
            if isinstance(x, t.PolicyCap):
                if x.per in caps:
                    self._repeat(f"cap per {x.per}", x.span, caps[x.per].span)
                caps.setdefault(x.per, x)
            else:
                rest.append(x)
        return tuple(caps.values()), rest

    def _rebate(self, kind: str, meta: Any, c: list[Any]) -> t.RebateDecl:
        caps, rest = self._caps(c[1:])
        opts = self._collect(rest)
        target = opts.get("target", ((None, None),))[0]
        return t.RebateDecl(
            kind=kind,  # type: ignore[arg-type]
            name=_unquote(c[0]),
            period=opts.get("period", (None,))[0],
            basis=opts.get("basis", (None,))[0],
            target_table=target[1] if target[0] == "table" else None,
            target_value=target[1] if target[0] == "value" else None,
            tiers=opts.get("tiers", (None,))[0],
            flat=opts.get("earn", (None,))[0],
            caps=caps,
            minimum_payout=opts.get("minimum payout", (None,))[0],
            accrual=opts.get("accrual", (False,))[0],
            span=self.s(meta),
            name_span=self.s(c[0]),
        )

    def rebate_decl(self, meta: Any, c: list[Any]) -> t.RebateDecl:
        return self._rebate("rebate", meta, c)

    def fund_decl(self, meta: Any, c: list[Any]) -> t.RebateDecl:
        return self._rebate("fund", meta, c)

    def beneficiary(self, meta: Any, c: list[Any]) -> tuple[str, Any, t.Span]:
        return ("beneficiary", str(c[0]), self.s(meta))

    def earn_percent(self, meta: Any, c: list[Any]) -> tuple[str, Any, t.Span]:
        pct = t.PercentLit(text=str(c[0]).removesuffix("%"), span=self.s(c[0]))
        return ("earn percent", (pct, c[1] if len(c) > 1 else None), self.s(meta))

    def earn_event(self, meta: Any, c: list[Any]) -> t.EventReward:
        return t.EventReward(
            amount=c[0], event=str(c[1]), span=self.s(meta), event_span=self.s(c[1])
        )

    def commission_decl(self, meta: Any, c: list[Any]) -> t.CommissionDecl:
        caps, rest = self._caps(c[1:])
        rewards = tuple(x for x in rest if isinstance(x, t.EventReward))
        opts = self._collect([x for x in rest if not isinstance(x, t.EventReward)])
        percent, where = opts.get("earn percent", ((None, None),))[0]
        return t.CommissionDecl(
            name=_unquote(c[0]),
            period=opts.get("period", (None,))[0],
            beneficiary=opts.get("beneficiary", ("buyer",))[0],
            percent=percent,
            where=where,
            rewards=rewards,
            caps=caps,
            span=self.s(meta),
            name_span=self.s(c[0]),
        )

    def level(self, meta: Any, c: list[Any]) -> t.Level:
        return t.Level(name=_unquote(c[0]), when=c[1], span=self.s(meta))

    def default_level(self, meta: Any, c: list[Any]) -> tuple[str, Any, t.Span]:
        return ("default", _unquote(c[0]), self.s(meta))

    def partner_tiers_decl(self, meta: Any, c: list[Any]) -> t.PartnerTiersDecl:
        levels = tuple(x for x in c[1:] if isinstance(x, t.Level))
        opts = self._collect([x for x in c[1:] if not isinstance(x, t.Level)])
        return t.PartnerTiersDecl(
            name=_unquote(c[0]),
            period=opts.get("period", (None,))[0],
            levels=levels,
            default=opts.get("default", (None,))[0],
            span=self.s(meta),
            name_span=self.s(c[0]),
        )


# ---- checks ----------------------------------------------------------------------------

KIND_WORD = {
    t.RebateDecl: "rebate",
    t.CommissionDecl: "commission",
    t.PartnerTiersDecl: "partner tiers",
}


def _kind(d: t.PolicyDecl) -> str:
    return d.kind if isinstance(d, t.RebateDecl) else KIND_WORD[type(d)]


def check_policies(ck: Checker, decls: tuple[t.Declaration, ...]) -> None:
    """Every check of the policy declarations, reported through the checker ``ck``."""
    policies = [
        d for d in decls if isinstance(d, t.RebateDecl | t.CommissionDecl | t.PartnerTiersDecl)
    ]
    seen: dict[tuple[str, str], t.Span] = {}
    for d in policies:
        key = (_kind(d), d.name)
        if key in seen:
            ck.error(
                "E0101",
                f"duplicate {key[0]} name '{d.name}'",
                d.name_span,
                f"the first is at {seen[key]}",
            )
        seen.setdefault(key, d.name_span)
        if d.period is None:
            ck.error(
                "E0502",
                f"{_kind(d)} '{d.name}' has no period",
                d.name_span,
                "add: period month, period quarter, period year or period 2026-01-01 .. 2026-06-30",
            )
        elif (
            d.period.kind == "range"
            and d.period.start is not None
            and d.period.end is not None
            and d.period.start > d.period.end
        ):
            ck.error("E0501", "the period starts after it ends", d.period.span)
        if isinstance(d, t.RebateDecl):
            _rebate(ck, d)
        elif isinstance(d, t.CommissionDecl):
            _commission(ck, d)
        else:
            _partner_tiers(ck, d)


def _line_condition(ck: Checker, cond: t.Condition) -> None:

    items = {f for f in ck.data.catalog.columns} if ck.data is not None else set()
    allowed = set(LINE_FIELDS) | {f"item.{c}" for c in items}
    for atom in t.atoms(cond):
        name = atom.field.name
        if name not in allowed and not (ck.data is None and name.startswith("item.")):
            ck.error(
                "E0201",
                f"unknown field '{name}'",
                atom.field.span,
                did_you_mean(name, allowed)
                or f"a basis reads: {', '.join(LINE_FIELDS)}, item.<column>",
            )
            continue
        if isinstance(atom, t.Compare) and atom.op not in ("==", "!="):
            ck.error(
                "E0202",
                f"'{name}' is text; it can be compared with == != in, not {atom.op}",
                atom.span,
            )
            continue
        values = (atom.value,) if isinstance(atom, t.Compare) else atom.values
        for lit in values:
            if not isinstance(lit, t.StringLit):
                ck.error(
                    "E0202",
                    f"'{name}' is text, compared with {describe_literal(lit)}",
                    lit.span,
                    'quote it: "..."',
                )
            elif name == "sku" and ck.data is not None and lit.value not in ck.skus:
                ck.error(
                    "E0303",
                    f"unknown SKU '{lit.value}'",
                    lit.span,
                    did_you_mean(lit.value, ck.skus),
                )


def describe_literal(lit: t.Literal_) -> str:
    from dsl.check import describe_literal as describe

    return describe(lit)


def _percent(ck: Checker, lit: t.PercentLit, what: str) -> int | None:
    from engine.core.money import MoneyError, parse_percent

    try:
        bp = parse_percent(lit.text)
    except MoneyError as err:
        ck.error("E0205", str(err), lit.span)
        return None
    if not 0 <= bp <= 10_000:
        ck.error("E0205", f"{what} must be between 0% and 100%, not {lit.text}%", lit.span)
        return None
    return bp


def _payout(ck: Checker, payout: t.Payout, basis: t.Basis | None) -> None:
    if payout.percent is not None:
        if basis is not None and basis.measure == "qty":
            ck.error(
                "E0202",
                "a percentage of a quantity basis is not money",
                payout.span,
                "pay an amount per unit: >= 100: 2.00 per unit",
            )
            return
        _percent(ck, payout.percent, "a rate")
    else:
        assert payout.per_unit is not None
        if basis is not None and basis.measure == "net_amount":
            ck.error(
                "E0202",
                "an amount per unit needs a qty basis",
                payout.span,
                "pay a percentage of the basis: >= 100000.00: 2%",
            )
            return
        ck._money_literal(payout.per_unit, allow_negative=False)


def _rebate(ck: Checker, d: t.RebateDecl) -> None:
    what = f"{d.kind} '{d.name}'"
    if d.basis is None:
        ck.error(
            "E0502",
            f"{what} has no basis",
            d.name_span,
            "add: basis net_amount (where ...) (minus returns)",
        )
    elif d.basis.where is not None:
        _line_condition(ck, d.basis.where)
    if d.tiers is None and d.flat is None:
        ck.error(
            "E0502",
            f"{what} pays nothing",
            d.name_span,
            "add: earn 2%, or tiers retroactive by basis { >= 100000.00: 1% }",
        )
    if d.tiers is not None and d.flat is not None:
        ck.error("E0504", f"{what} has both tiers and a flat rate", d.flat.span, "keep one of them")
    if d.kind == "fund":
        for span, word in (
            (d.tiers.span if d.tiers else None, "tiers"),
            (d.target_value.span if d.target_value else None, "a target"),
        ):
            if span is not None:
                ck.error(
                    "E0504",
                    f"a fund accrues a flat percentage; {word} do not apply",
                    span,
                    "write: earn 2%",
                )
    if d.flat is not None:
        _payout(ck, d.flat, d.basis)
    if d.target_value is not None:
        if d.basis is not None and d.basis.measure == "qty":
            ck._quantity_literal(d.target_value)
        else:
            ck._money_literal(d.target_value, allow_negative=False)
    if d.target_table is not None and ck.data is not None:
        if d.target_table not in ck.data.tables:
            ck.error(
                "E0301",
                f"unknown table '{d.target_table}'",
                d.span,
                did_you_mean(d.target_table, ck.data.tables)
                or "load it with: pricer load <table> <file>",
            )
        else:
            columns = set(ck.data.tables[d.target_table].columns)
            for column in ("customer_id", "period", "target"):
                if column not in columns:
                    ck.error(
                        "E0302",
                        f"table '{d.target_table}' has no column '{column}'",
                        d.span,
                        f"its columns are: {', '.join(sorted(columns))}",
                    )
    if d.tiers is not None:
        _policy_tiers(ck, d)
    for cap in d.caps:
        if cap.per != "customer":
            ck.error(
                "E0504",
                f"a {d.kind} is capped per customer (per period), not per {cap.per}",
                cap.span,
                "write: cap 5000.00 per customer",
            )
        else:
            ck._money_literal(cap.value, allow_negative=False)
    if d.minimum_payout is not None:
        ck._money_literal(d.minimum_payout, allow_negative=False)


def _policy_tiers(ck: Checker, d: t.RebateDecl) -> None:
    assert d.tiers is not None
    tiers = d.tiers
    if tiers.by == "attainment" and d.target_table is None and d.target_value is None:
        ck.error(
            "E0502",
            f"tiers by attainment need a target in rebate '{d.name}'",
            tiers.span,
            "add: target table rebate_targets, or target 1000000.00",
        )
    previous: tuple[int, t.Span] | None = None
    for step in tiers.steps:
        _payout(ck, step.payout, d.basis)
        value: int | None = None
        if tiers.by == "attainment":
            if not isinstance(step.threshold, t.PercentLit):
                ck.error(
                    "E0202",
                    f"an attainment threshold is a percentage of the target, not {describe_literal(step.threshold)}",
                    step.threshold.span,
                    "write it as >= 100%",
                )
                continue
            from engine.core.money import MoneyError, parse_percent

            try:
                value = parse_percent(step.threshold.text)
            except MoneyError as err:
                ck.error("E0205", str(err), step.threshold.span)
                continue
        elif d.basis is not None and d.basis.measure == "qty":
            if isinstance(step.threshold, t.QtyLit):
                ck.error(
                    "E0304",
                    "a qty basis is counted in base units",
                    step.threshold.span,
                    "write it as a number of base units",
                )
                continue
            value = ck._quantity_literal(step.threshold)
        else:
            if isinstance(step.threshold, t.PercentLit):
                ck.error(
                    "E0202",
                    "a basis threshold is an amount of money, not a percentage",
                    step.threshold.span,
                    "write it as >= 100000.00, or tier by attainment",
                )
                continue
            value = ck._money_literal(step.threshold, allow_negative=False)
        if value is None:
            continue
        previous = ck.next_step(previous, value, step.threshold.span)


def _commission(ck: Checker, d: t.CommissionDecl) -> None:
    if d.percent is None and not d.rewards:
        ck.error(
            "E0502",
            f"commission '{d.name}' earns nothing",
            d.name_span,
            "add: earn 3% of order, or earn 50.00 per lead_converted",
        )
    if d.percent is not None:
        _percent(ck, d.percent, "a commission rate")
    if d.where is not None:
        if d.percent is None:
            ck.error(
                "E0504", "'where' selects order lines; this commission pays per event", d.where.span
            )
        _line_condition(ck, d.where)
    seen: dict[str, t.Span] = {}
    for reward in d.rewards:
        if reward.event not in EVENT_KINDS:
            ck.error(
                "E0701",
                f"unknown event kind '{reward.event}'",
                reward.event_span,
                did_you_mean(reward.event, EVENT_KINDS)
                or f"the kinds are: {', '.join(EVENT_KINDS)}",
            )
        elif reward.event in seen:
            ck.error(
                "E0103",
                f"'{reward.event}' is rewarded twice",
                reward.span,
                f"the first one is at {seen[reward.event]}",
            )
        seen.setdefault(reward.event, reward.span)
        ck._money_literal(reward.amount, allow_negative=False)
    for cap in d.caps:
        if cap.per == "customer":
            ck.error(
                "E0504",
                "a commission is capped per order or per period, not per customer",
                cap.span,
                "write: cap 500.00 per order, or cap 5000.00 per period",
            )
        elif cap.per == "order" and d.percent is None:
            ck.error(
                "E0504",
                "a cap per order needs a commission on orders",
                cap.span,
                "add: earn 3% of order",
            )
        else:
            ck._money_literal(cap.value, allow_negative=False)


def _partner_tiers(ck: Checker, d: t.PartnerTiersDecl) -> None:

    if not d.levels:
        ck.error(
            "E0502",
            f"partner tiers '{d.name}' have no levels",
            d.name_span,
            'add: level "Gold" when purchases >= 1000000.00',
        )
    names: dict[str, t.Span] = {}
    metrics = dict(METRICS) | {m: "count" for m in FACT_METRICS}
    for level in d.levels:
        if level.name in names or level.name == d.default:
            ck.error(
                "E0101",
                f"duplicate level name '{level.name}'",
                level.span,
                f"the first is at {names.get(level.name, d.span)}",
            )
        names.setdefault(level.name, level.span)
        for atom in t.atoms(level.when):
            name = atom.field.name
            kind = metrics.get(name)
            if kind is None:
                ck.error(
                    "E0201",
                    f"unknown metric '{name}'",
                    atom.field.span,
                    did_you_mean(name, metrics) or f"the metrics are: {', '.join(metrics)}",
                )
                continue
            values = (atom.value,) if isinstance(atom, t.Compare) else atom.values
            for lit in values:
                if kind == "money":
                    if isinstance(lit, t.PercentLit):
                        ck.error(
                            "E0202", f"'{name}' is money, compared with a percentage", lit.span
                        )
                    else:
                        ck._money_literal(lit, allow_negative=False)
                elif (
                    not isinstance(lit, t.NumberLit) or "." in lit.text or lit.text.startswith("-")
                ):
                    ck.error(
                        "E0202",
                        f"'{name}' is a count, compared with {describe_literal(lit)}",
                        lit.span,
                        "write a whole number: leads_submitted >= 200",
                    )
        if ck.data is not None and any(a.field.name in FACT_METRICS for a in t.atoms(level.when)):
            facts = ck.data.tables.get("partner_facts")
            if facts is None:
                ck.error(
                    "E0301",
                    "certified_staff is read from table 'partner_facts', which is not loaded",
                    level.span,
                    "load it with: pricer load partner_facts <file> (partner_id, period, certified_staff)",
                )


# ---- formatting ------------------------------------------------------------------------


def _period(p: t.PeriodSpec) -> str:
    if p.kind == "range":
        assert p.start is not None and p.end is not None
        return f"period {p.start.isoformat()} .. {p.end.isoformat()}"
    return f"period {p.kind}"


def _payout_text(p: t.Payout) -> str:
    from dsl.fmt import literal

    if p.percent is not None:
        return f"{p.percent.text}%"
    assert p.per_unit is not None
    return f"{literal(p.per_unit)} per unit"


def format_policy(d: t.PolicyDecl) -> str:
    from dsl.fmt import INDENT, condition, literal, quote_name

    body: list[str] = []
    if d.period is not None:
        body.append(_period(d.period))
    if isinstance(d, t.RebateDecl):
        head = f"{d.kind} {quote_name(d.name)}"
        if d.basis is not None:
            text = f"basis {d.basis.measure}"
            if d.basis.where is not None:
                text += f" where {condition(d.basis.where)}"
            if d.basis.minus_returns:
                text += " minus returns"
            if d.basis.includes_special:
                text += " includes special"
            body.append(text)
        if d.target_table is not None:
            body.append(f"target table {d.target_table}")
        if d.target_value is not None:
            body.append(f"target {literal(d.target_value)}")
        if d.tiers is not None:
            body.append(f"tiers {d.tiers.mode} by {d.tiers.by} {{")
            body.extend(
                f"{INDENT}>= {literal(s.threshold)}: {_payout_text(s.payout)}"
                for s in d.tiers.steps
            )
            body.append("}")
        if d.flat is not None:
            body.append(f"earn {_payout_text(d.flat)}")
        body.extend(f"cap {literal(c.value)} per {c.per}" for c in d.caps)
        if d.minimum_payout is not None:
            body.append(f"minimum payout {literal(d.minimum_payout)}")
        if d.accrual:
            body.append("accrual")
    elif isinstance(d, t.CommissionDecl):
        head = f"commission {quote_name(d.name)}"
        if d.percent is not None or d.beneficiary != "buyer":
            body.append(f"beneficiary {d.beneficiary}")
        if d.percent is not None:
            where = f" where {condition(d.where)}" if d.where is not None else ""
            body.append(f"earn {d.percent.text}% of order{where}")
        body.extend(f"earn {literal(r.amount)} per {r.event}" for r in d.rewards)
        body.extend(f"cap {literal(c.value)} per {c.per}" for c in d.caps)
    else:
        head = f"partner tiers {quote_name(d.name)}"
        body.extend(f"level {quote_name(lv.name)} when {condition(lv.when)}" for lv in d.levels)
        if d.default is not None:
            body.append(f"default {quote_name(d.default)}")
    return head + " {\n" + "".join(f"{INDENT}{line}\n" for line in body) + "}"

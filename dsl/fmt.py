"""The formatter: any rule file printed in one canonical layout (``pricer fmt``).

Formatting is idempotent and keeps meaning: ``parse(format(f)) == parse(f)`` up to spans.
Comments are dropped only if they sit inside a declaration; comments between
declarations are kept.
"""

from __future__ import annotations

from dsl import tree as t

INDENT = "  "


def quote_name(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(lit: t.Literal_) -> str:
    if isinstance(lit, t.StringLit):
        return quote_name(lit.value)
    if isinstance(lit, t.PercentLit):
        return f"{lit.text}%"
    if isinstance(lit, t.MoneyLit):
        return f"{lit.text} {lit.currency}"
    if isinstance(lit, t.QtyLit):
        return f"{lit.text} {lit.unit}"
    if isinstance(lit, t.DateLit):
        return lit.value.isoformat()
    return lit.text


_PRECEDENCE = {t.Or: 1, t.And: 2, t.Not: 3}


def condition(cond: t.Condition, parent: int = 0) -> str:
    if isinstance(cond, t.Compare):
        return f"{cond.field.name} {cond.op} {literal(cond.value)}"
    if isinstance(cond, t.InSet):
        values = ", ".join(literal(v) for v in cond.values)
        return f"{cond.field.name} {'not in' if cond.negated else 'in'} ({values})"
    level = _PRECEDENCE[type(cond)]
    if isinstance(cond, t.Not):
        text = f"not {condition(cond.item, level)}"
    else:
        word = " or " if isinstance(cond, t.Or) else " and "
        text = word.join(condition(item, level) for item in cond.items)
    return f"({text})" if level <= parent and not isinstance(cond, t.Not) else text


def benefit(b: t.Benefit) -> str:
    if isinstance(b, t.PercentOff):
        return f"percent_off {b.percent.text}%"
    if isinstance(b, t.AmountOff):
        return f"amount_off {literal(b.amount)} per unit"
    return f"fixed_price {literal(b.price)}"


def set_benefit(b: t.SetBenefit) -> str:
    if isinstance(b, t.Gift):
        return f"gift {b.qty.text} of {quote_name(b.sku.value)}"
    if isinstance(b, t.PercentOff):
        return f"percent_off {b.percent.text}%"
    if isinstance(b, t.AmountOff):
        return f"amount_off {literal(b.amount)} per set"
    return f"fixed_price {literal(b.price)} per set"


def order_benefit(b: t.OrderBenefit) -> str:
    if isinstance(b, t.Gift):
        return set_benefit(b)
    if isinstance(b, t.PercentOff):
        return f"percent_off {b.percent.text}%"
    return f"amount_off {literal(b.amount)}"


def selector(sel: t.ItemSelector) -> str:
    if len(sel.values) == 1:
        return f"{sel.field.name} {literal(sel.values[0])}"
    return f"{sel.field.name} in ({', '.join(literal(v) for v in sel.values)})"


def cap(c: t.Cap) -> str:
    value = literal(c.value)
    return {
        "applications": f"max {value} per order",
        "discount": f"max discount {value} per order",
        "gifts": f"max {value} gifts per order",
        "budget": f"budget {value}",
        "uses": f"uses {value} per customer",
        "gift_stock": f"gift stock {value}",
    }[c.kind]


def _scope_lines(scope: t.Scope) -> list[str]:
    if isinstance(scope, t.LineScope):
        where = f" where {condition(scope.where)}" if scope.where is not None else ""
        action = scope.action
        if isinstance(action, t.Tiers):
            steps = [
                f"{INDENT}>= {literal(s.threshold)}: {benefit(s.benefit)}" for s in action.steps
            ]
            return [f"each line{where}: tiers by {action.measure} {{", *steps, "}"]
        return [f"each line{where}: {benefit(action)}"]
    if isinstance(scope, t.ComboScope):
        parts = ", ".join(f"{p.count.text} of {selector(p.selector)}" for p in scope.parts)
        return [f"combo {parts}: {set_benefit(scope.benefit)}"]
    if isinstance(scope, t.PoolScope):
        return [
            f"pool {selector(scope.selector)} every {literal(scope.every)}: {set_benefit(scope.benefit)}"
        ]
    if scope.kind == "tiers":
        steps = [
            f"{INDENT}>= {literal(s.threshold)}: {order_benefit(s.benefit)}" for s in scope.steps
        ]
        return ["order subtotal tiers {", *steps, "}"]
    step = scope.steps[0]
    head = "order subtotal >=" if scope.kind == "threshold" else "order every"
    return [f"{head} {literal(step.threshold)}: {order_benefit(step.benefit)}"]


def _valid(v: t.Validity) -> str:
    return f"valid {v.start.isoformat()} .. {v.end.isoformat()}"


def _table(ref: t.TableRef) -> str:
    keys = f" keyed by {', '.join(k.name for k in ref.keyed_by)}" if ref.keyed_by else ""
    return f"table {ref.name}{keys}"


def declaration(d: t.Declaration) -> str:
    if isinstance(d, t.RebateDecl | t.CommissionDecl | t.PartnerTiersDecl):
        from dsl.policies import format_policy

        return format_policy(d)
    if isinstance(d, t.Header):
        parts = [f"ruleset {quote_name(d.name)}"]
        if d.currency:
            parts.append(f"currency {d.currency}")
        if d.timezone:
            parts.append(f"timezone {quote_name(d.timezone)}")
        if d.rounding:
            parts.append(f"rounding {d.rounding}")
        return " ".join(parts)
    if isinstance(d, t.AttributeDecl):
        return f"attribute {d.field.name}"
    if isinstance(d, t.FloorDecl):
        return f"floor {{\n{INDENT}table {d.table} policy {d.policy}\n}}"
    if isinstance(d, t.SpecialDecl):
        return f"special prices {{\n{INDENT}table {d.table}\n}}"
    if isinstance(d, t.OrderCheckDecl):
        if d.kind == "credit":
            return f"credit {{\n{INDENT}table {d.table}\n}}"
        if d.kind == "sellable":
            assert d.by is not None
            return f"sellable {{\n{INDENT}table {d.table} by {d.by.name}\n}}"
        if d.kind == "stock_plan":
            return f"stock plan {{\n{INDENT}table {d.table} policy {d.policy}\n}}"
        assert d.max_percent is not None
        return f"rebate payment {{\n{INDENT}max {d.max_percent.text}% of order\n}}"
    if isinstance(d, t.ApprovalDecl):
        lines = [f"when {condition(d.when)}"] if d.when is not None else []
        for band in d.bands:
            lines.append(
                f"up to {band.limit.text}%: {band.outcome}"
                if band.limit is not None
                else f"above: {band.outcome}"
            )
        head = f"approval {quote_name(d.name)} priority {d.priority}"
        return head + " {\n" + "".join(f"{INDENT}{line}\n" for line in lines) + "}"
    if isinstance(d, t.TaxRule):
        return f"tax {quote_name(d.name)} {{\n{INDENT}{_table(d.table)}\n}}"
    if isinstance(d, t.PriceList):
        body = []
        if d.when is not None:
            body.append(f"when {condition(d.when)}")
        if d.valid is not None:
            body.append(_valid(d.valid))
        if d.table is not None:
            body.append(_table(d.table))
        if d.currency:
            body.append(f"currency {d.currency}")
        if d.tax_included:
            body.append("includes tax")
        head = f"pricelist {quote_name(d.name)} priority {d.priority}"
        return head + " {\n" + "".join(f"{INDENT}{line}\n" for line in body) + "}"
    head = f"promotion {quote_name(d.name)} priority {d.priority}"
    if d.stacking != "stackable":
        head += f" stacking {d.stacking}"
    if d.group is not None:
        head += f" group {quote_name(d.group)}"
    body = []
    if d.valid is not None:
        body.append(_valid(d.valid))
    if d.when is not None:
        body.append(f"when {condition(d.when)}")
    for cumulative in d.cumulative:
        body.append(
            f"cumulative {cumulative.measure} of {selector(cumulative.selector)} >= {literal(cumulative.threshold)}"
        )
    if d.scope is not None:
        body.extend(_scope_lines(d.scope))
    body.extend(cap(c) for c in d.caps)
    if d.cheapest_first:
        body.append("cheapest first")
    if d.includes_special:
        body.append("includes special")
    return head + " {\n" + "".join(f"{INDENT}{line}\n" for line in body) + "}"


def _leading_comments(source: str, line: int, previous_end: int) -> list[str]:
    lines = source.splitlines()
    out = []
    for text in lines[previous_end : max(line - 1, 0)]:
        stripped = text.strip()
        if stripped.startswith("#"):
            out.append(stripped)
    return out


def format_ruleset(rule_file: t.RuleFile) -> str:
    chunks: list[str] = []
    previous_end = 0
    for d in rule_file.declarations:
        comments = _leading_comments(rule_file.source, d.span.line, previous_end)
        text = declaration(d)
        chunks.append("\n".join([*comments, text]))
        previous_end = d.span.end_line
    trailing = _leading_comments(
        rule_file.source, len(rule_file.source.splitlines()) + 1, previous_end
    )
    if trailing:
        chunks.append("\n".join(trailing))
    return "\n\n".join(chunks) + "\n" if chunks else ""

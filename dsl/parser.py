"""Parse `.rule` source into the rule tree (the only module that imports lark).

>>> f = parse_source('ruleset "demo" currency CNY', "demo.rule")
>>> f.declarations[0].currency
'CNY'
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.tree import Meta

from dsl import tree as t
from dsl.errors import Diagnostic, RuleError
from dsl.policies import PolicyTransformer

GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")

#: How terminals are named to an admin in "expected ..." messages.
FRIENDLY: dict[str, str] = {
    "STRING": 'a quoted name ("...")',
    "NUMBER": "a number",
    "SIGNED_INT": "a whole number",
    "PERCENT": "a percentage (5%)",
    "CURRENCY": "a currency code (CNY)",
    "DATE": "a date (2026-11-30)",
    "FIELD": "a field name (sku, customer.tier, ...)",
    "NAME": "a table name",
    "UNIT_NAME": "a unit name",
    "COMPARATOR": "a comparison (==, !=, <, <=, >, >=)",
    "STACKING": "'exclusive' or 'stackable'",
    "FLOOR_POLICY": "'clamp' or 'flag'",
    "STOCK_POLICY": "'warn' or 'block'",
    "MEASURE": "'qty' or 'amount'",
    "ROUNDING_MODE": "'half_up' or 'half_even'",
    "BASIS_MEASURE": "'net_amount' or 'qty'",
    "TIER_MODE": "'retroactive' or 'incremental'",
    "TIER_BY": "'attainment' or 'basis'",
    "PERIOD_KIND": "'month', 'quarter' or 'year'",
    "BENEFICIARY": "'referrer' or 'buyer'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COLON": "':'",
    "COMMA": "','",
    "$END": "the end of the file",
}


_WORD_LITERAL = re.compile(r'"([a-z_]+)"')
_WORD_END = "(?![a-zA-Z0-9_])"


def _whole_word_keywords(grammar: str) -> str:
    """Make every keyword match as a whole word only (``perunit`` is not ``per unit``).

    Each quoted word in a rule becomes a filtered terminal that matches only when no letter,
    digit or underscore follows, with priority 2,
    so it also wins over a field or unit name that spells the same word.
    """
    rules, _, terminals = grammar.partition("// ---- tokens")
    words = sorted(set(_WORD_LITERAL.findall(rules)))
    rules = _WORD_LITERAL.sub(lambda m: f"_KW_{m.group(1).upper()}", rules)
    terminals = re.sub(
        r'^([A-Z_]+)(\.\d+)?: ((?:"[a-z_]+"(?: \| )?)+)$',
        lambda m: (
            f"{m.group(1)}{m.group(2) or ''}: /({'|'.join(_WORD_LITERAL.findall(m.group(3)))}){_WORD_END}/"
        ),
        terminals,
        flags=re.M,
    )
    declared = "\n".join(f"_KW_{w.upper()}.2: /{w}{_WORD_END}/" for w in words)
    return f"{rules}// ---- tokens{terminals}\n{declared}\n"


@cache
def _parser() -> Lark:
    return Lark(
        _whole_word_keywords(GRAMMAR_PATH.read_text(encoding="utf-8")),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
    )


def _span(path: str, meta: Meta | Token) -> t.Span:
    return t.Span(
        file=path,
        line=meta.line or 0,
        col=meta.column or 0,
        end_line=meta.end_line or meta.line or 0,
        end_col=meta.end_column or ((meta.column or 0) + 1),
    )


def _unquote(token: Token) -> str:
    body = str(token)[1:-1]
    return body.replace('\\"', '"').replace("\\\\", "\\")


def date_token(token: Token, path: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(token))
    except ValueError:
        raise _LiteralProblem(f"'{token}' is not a calendar date", _span(path, token)) from None


class _LiteralProblem(Exception):
    def __init__(self, message: str, span: t.Span) -> None:
        super().__init__(message)
        self.span = span


class _ToTree(PolicyTransformer, Transformer[Token, Any]):
    """Turns lark's parse tree into our own nodes; nothing downstream sees lark.

    Every callback takes ``(meta, children)``. They are called directly rather than
    through ``v_args(meta=True)``, whose per-node wrapper objects cost a third of the
    time of parsing a large ruleset.
    """

    def __init__(self, path: str) -> None:
        super().__init__(visit_tokens=False)
        self.path = path

    def _call_userfunc(self, tree: Any, new_children: list[Any] | None = None) -> Any:
        children = new_children if new_children is not None else tree.children
        return getattr(self, tree.data)(tree.meta, children)

    def s(self, meta: Meta | Token) -> t.Span:
        return _span(self.path, meta)

    # literals
    def string_lit(self, meta: Meta, c: list[Token]) -> t.StringLit:
        return t.StringLit(value=_unquote(c[0]), span=self.s(meta))

    def percent_lit(self, meta: Meta, c: list[Token]) -> t.PercentLit:
        return t.PercentLit(text=str(c[0]).removesuffix("%"), span=self.s(meta))

    def money_lit(self, meta: Meta, c: list[Token]) -> t.MoneyLit:
        return t.MoneyLit(text=str(c[0]), currency=str(c[1]), span=self.s(meta))

    def qty_lit(self, meta: Meta, c: list[Token]) -> t.QtyLit:
        return t.QtyLit(text=str(c[0]), unit=str(c[1]), span=self.s(meta))

    def number_lit(self, meta: Meta, c: list[Token]) -> t.NumberLit:
        return t.NumberLit(text=str(c[0]), span=self.s(meta))

    def date_lit(self, meta: Meta, c: list[Token]) -> t.DateLit:
        return t.DateLit(value=date_token(c[0], self.path), span=self.s(meta))

    def literal_list(self, meta: Meta, c: list[t.Literal_]) -> tuple[t.Literal_, ...]:
        return tuple(c)

    # conditions
    def _field(self, token: Token) -> t.FieldRef:
        return t.FieldRef(name=str(token), span=self.s(token))

    def compare(self, meta: Meta, c: list[Any]) -> t.Compare:
        return t.Compare(field=self._field(c[0]), op=str(c[1]), value=c[2], span=self.s(meta))  # type: ignore[arg-type]

    def in_set(self, meta: Meta, c: list[Any]) -> t.InSet:
        return t.InSet(field=self._field(c[0]), values=c[1], negated=False, span=self.s(meta))

    def not_in_set(self, meta: Meta, c: list[Any]) -> t.InSet:
        return t.InSet(field=self._field(c[0]), values=c[1], negated=True, span=self.s(meta))

    def or_(self, meta: Meta, c: list[t.Condition]) -> t.Condition:
        return c[0] if len(c) == 1 else t.Or(items=tuple(c), span=self.s(meta))

    def and_(self, meta: Meta, c: list[t.Condition]) -> t.Condition:
        return c[0] if len(c) == 1 else t.And(items=tuple(c), span=self.s(meta))

    def not_(self, meta: Meta, c: list[t.Condition]) -> t.Not:
        return t.Not(item=c[0], span=self.s(meta))

    # benefits and tiers
    def percent_off(self, meta: Meta, c: list[Token]) -> t.PercentOff:
        pct = t.PercentLit(text=str(c[0]).removesuffix("%"), span=self.s(c[0]))
        return t.PercentOff(percent=pct, span=self.s(meta))

    def amount_off(self, meta: Meta, c: list[Any]) -> t.AmountOff:
        return t.AmountOff(amount=c[0], span=self.s(meta))

    def fixed_price(self, meta: Meta, c: list[Any]) -> t.FixedPrice:
        return t.FixedPrice(price=c[0], span=self.s(meta))

    def per_unit(self, meta: Meta, c: list[Any]) -> None:
        return None

    def tier(self, meta: Meta, c: list[Any]) -> t.Tier:
        return t.Tier(threshold=c[0], benefit=c[1], span=self.s(meta))

    def tiers(self, meta: Meta, c: list[Any]) -> t.Tiers:
        return t.Tiers(measure=str(c[0]), steps=tuple(c[1:]), span=self.s(meta))  # type: ignore[arg-type]

    # combos, pools, order promotions, caps
    def select_one(self, meta: Meta, c: list[Any]) -> t.ItemSelector:
        value = t.StringLit(value=_unquote(c[1]), span=self.s(c[1]))
        return t.ItemSelector(field=self._field(c[0]), values=(value,), span=self.s(meta))

    def select_many(self, meta: Meta, c: list[Any]) -> t.ItemSelector:
        return t.ItemSelector(field=self._field(c[0]), values=c[1], span=self.s(meta))

    def combo_part(self, meta: Meta, c: list[Any]) -> t.ComboPart:
        count = t.NumberLit(text=str(c[0]), span=self.s(c[0]))
        return t.ComboPart(count=count, selector=c[1], span=self.s(meta))

    def per_set(self, meta: Meta, c: list[Any]) -> None:
        return None

    def set_percent_off(self, meta: Meta, c: list[Token]) -> t.PercentOff:
        return self.percent_off(meta, c)

    def set_amount_off(self, meta: Meta, c: list[Any]) -> t.AmountOff:
        return t.AmountOff(amount=c[0], span=self.s(meta))

    def set_fixed_price(self, meta: Meta, c: list[Any]) -> t.FixedPrice:
        return t.FixedPrice(price=c[0], span=self.s(meta))

    order_percent_off = set_percent_off
    order_amount_off = set_amount_off

    def gift(self, meta: Meta, c: list[Any]) -> t.Gift:
        qty = t.NumberLit(text=str(c[0]), span=self.s(c[0]))
        sku = t.StringLit(value=_unquote(c[1]), span=self.s(c[1]))
        return t.Gift(qty=qty, sku=sku, span=self.s(meta))

    def _scope(self, scope: Any, c: list[Any]) -> tuple[str, Any, tuple[t.Cap, ...]]:
        return ("scope", scope, tuple(x for x in c if isinstance(x, t.Cap)))

    def combo_scope(self, meta: Meta, c: list[Any]) -> tuple[str, Any, tuple[t.Cap, ...]]:
        parts = tuple(x for x in c if isinstance(x, t.ComboPart))
        benefit = next(
            x for x in c if isinstance(x, t.PercentOff | t.AmountOff | t.FixedPrice | t.Gift)
        )
        return self._scope(t.ComboScope(parts=parts, benefit=benefit, span=self.s(meta)), c)

    def pool_scope(self, meta: Meta, c: list[Any]) -> tuple[str, Any, tuple[t.Cap, ...]]:
        scope = t.PoolScope(selector=c[0], every=c[1], benefit=c[2], span=self.s(meta))
        return self._scope(scope, c[3:])

    def order_tier(self, meta: Meta, c: list[Any]) -> t.OrderTier:
        return t.OrderTier(threshold=c[0], benefit=c[1], span=self.s(meta))

    def order_threshold(self, meta: Meta, c: list[Any]) -> tuple[str, Any, tuple[t.Cap, ...]]:
        step = t.OrderTier(threshold=c[0], benefit=c[1], span=self.s(meta))
        return self._scope(t.OrderScope(kind="threshold", steps=(step,), span=self.s(meta)), c[2:])

    def order_every(self, meta: Meta, c: list[Any]) -> tuple[str, Any, tuple[t.Cap, ...]]:
        step = t.OrderTier(threshold=c[0], benefit=c[1], span=self.s(meta))
        return self._scope(t.OrderScope(kind="every", steps=(step,), span=self.s(meta)), c[2:])

    def order_tiers(self, meta: Meta, c: list[Any]) -> tuple[str, Any, tuple[t.Cap, ...]]:
        steps = tuple(x for x in c if isinstance(x, t.OrderTier))
        return self._scope(t.OrderScope(kind="tiers", steps=steps, span=self.s(meta)), c)

    def _cap(self, kind: t.CapKind, meta: Meta, value: Any) -> t.Cap:
        if isinstance(value, Token):
            value = t.NumberLit(text=str(value), span=self.s(value))
        return t.Cap(kind=kind, value=value, span=self.s(meta))

    def cap_applications(self, meta: Meta, c: list[Any]) -> t.Cap:
        return self._cap("applications", meta, c[0])

    def cap_discount(self, meta: Meta, c: list[Any]) -> t.Cap:
        return self._cap("discount", meta, c[0])

    def cap_gifts(self, meta: Meta, c: list[Any]) -> t.Cap:
        return self._cap("gifts", meta, c[0])

    def cap_budget(self, meta: Meta, c: list[Any]) -> t.Cap:
        return self._cap("budget", meta, c[0])

    def cap_uses(self, meta: Meta, c: list[Any]) -> t.Cap:
        return self._cap("uses", meta, c[0])

    def cap_gift_stock(self, meta: Meta, c: list[Any]) -> t.Cap:
        return self._cap("gift_stock", meta, c[0])

    def cheapest_first(self, meta: Meta, c: list[Any]) -> tuple[str, Any, t.Span]:
        return ("cheapest_first", True, self.s(meta))

    def cumulative_stmt(self, meta: Meta, c: list[Any]) -> t.Cumulative:
        return t.Cumulative(measure=str(c[0]), selector=c[1], threshold=c[2], span=self.s(meta))  # type: ignore[arg-type]

    def includes_special(self, meta: Meta, c: list[Any]) -> tuple[str, Any, t.Span]:
        return ("includes_special", True, self.s(meta))

    # floors and approval bands
    def floor_decl(self, meta: Meta, c: list[Token]) -> t.FloorDecl:
        return t.FloorDecl(table=str(c[0]), policy=str(c[1]), span=self.s(meta))  # type: ignore[arg-type]

    # order checks
    def credit_decl(self, meta: Meta, c: list[Token]) -> t.OrderCheckDecl:
        return t.OrderCheckDecl(kind="credit", table=str(c[0]), span=self.s(meta))

    def sellable_decl(self, meta: Meta, c: list[Token]) -> t.OrderCheckDecl:
        return t.OrderCheckDecl(
            kind="sellable", table=str(c[0]), by=self._field(c[1]), span=self.s(meta)
        )

    def stock_plan_decl(self, meta: Meta, c: list[Token]) -> t.OrderCheckDecl:
        return t.OrderCheckDecl(
            kind="stock_plan",
            table=str(c[0]),
            policy=str(c[1]),  # type: ignore[arg-type]
            span=self.s(meta),
        )

    def rebate_payment_decl(self, meta: Meta, c: list[Token]) -> t.OrderCheckDecl:
        pct = t.PercentLit(text=str(c[0]).removesuffix("%"), span=self.s(c[0]))
        return t.OrderCheckDecl(kind="rebate_payment", max_percent=pct, span=self.s(meta))

    def special_decl(self, meta: Meta, c: list[Token]) -> t.SpecialDecl:
        return t.SpecialDecl(table=str(c[0]), span=self.s(meta))

    def band_up_to(self, meta: Meta, c: list[Token]) -> t.Band:
        limit = t.PercentLit(text=str(c[0]).removesuffix("%"), span=self.s(c[0]))
        return t.Band(limit=limit, outcome=str(c[1]), span=self.s(meta))

    def band_above(self, meta: Meta, c: list[Token]) -> t.Band:
        return t.Band(limit=None, outcome=str(c[0]), span=self.s(meta))

    def approval_decl(self, meta: Meta, c: list[Any]) -> t.ApprovalDecl:
        bands = tuple(x for x in c[1:] if isinstance(x, t.Band))
        opts = self._options([x for x in c[1:] if not isinstance(x, t.Band)])
        for key in ("stacking", "group"):
            if key in opts:
                self.repeats.append(
                    Diagnostic(
                        code="E0206",
                        severity="error",
                        message=f"'{key}' does not apply to approval bands",
                        span=opts[key][1],
                    )
                )
        return t.ApprovalDecl(
            name=_unquote(c[0]),
            priority=opts.get("priority", (0,))[0],
            when=opts.get("when", (None,))[0],
            bands=bands,
            span=self.s(meta),
            name_span=self.s(c[0]),
        )

    def line_scope(self, meta: Meta, c: list[Any]) -> t.LineScope:
        where = c[0] if len(c) == 2 else None
        return t.LineScope(where=where, action=c[-1], span=self.s(meta))

    # statements
    def when_stmt(self, meta: Meta, c: list[Any]) -> tuple[str, Any, t.Span]:
        return ("when", c[0], self.s(meta))

    def valid_stmt(self, meta: Meta, c: list[Token]) -> tuple[str, Any, t.Span]:
        span = self.s(meta)
        return (
            "valid",
            t.Validity(
                start=date_token(c[0], self.path), end=date_token(c[1], self.path), span=span
            ),
            span,
        )

    def table_stmt(self, meta: Meta, c: list[Any]) -> tuple[str, Any, t.Span]:
        keys: tuple[t.FieldRef, ...] = c[1] if len(c) > 1 else ()
        ref = t.TableRef(name=str(c[0]), keyed_by=keys, span=self.s(meta))
        return ("table", ref, self.s(meta))

    def field_list(self, meta: Meta, c: list[Token]) -> tuple[t.FieldRef, ...]:
        return tuple(self._field(tok) for tok in c)

    def list_currency(self, meta: Meta, c: list[Token]) -> tuple[str, Any, t.Span]:
        return ("currency", str(c[0]), self.s(meta))

    def includes_tax(self, meta: Meta, c: list[Token]) -> tuple[str, Any, t.Span]:
        return ("includes_tax", True, self.s(meta))

    def opt_priority(self, meta: Meta, c: list[Token]) -> tuple[str, Any, t.Span]:
        return ("priority", int(str(c[0])), self.s(meta))

    def opt_stacking(self, meta: Meta, c: list[Token]) -> tuple[str, Any, t.Span]:
        return ("stacking", str(c[0]), self.s(meta))

    def opt_group(self, meta: Meta, c: list[Token]) -> tuple[str, Any, t.Span]:
        return ("group", _unquote(c[0]), self.s(meta))

    def opt_currency(self, meta: Meta, c: list[Token]) -> tuple[str, Any, t.Span]:
        return ("currency", str(c[0]), self.s(meta))

    def opt_timezone(self, meta: Meta, c: list[Token]) -> tuple[str, Any, t.Span]:
        return ("timezone", _unquote(c[0]), self.s(meta))

    def opt_rounding(self, meta: Meta, c: list[Token]) -> tuple[str, Any, t.Span]:
        return ("rounding", str(c[0]), self.s(meta))

    # declarations: statements are collected as (key, value, span) and checked for repeats
    def _options(self, items: list[Any]) -> dict[str, tuple[Any, t.Span]]:
        options: dict[str, tuple[Any, t.Span]] = {}
        for item in items:
            if isinstance(item, tuple) and len(item) == 3 and isinstance(item[0], str):
                key, value, span = item
                if key in options:
                    self.repeats.append(
                        Diagnostic(
                            code="E0103",
                            severity="error",
                            message=f"'{key}' is given twice in one declaration",
                            span=span,
                            hint=f"the first one is at {options[key][1]}",
                        )
                    )
                    continue
                options[key] = (value, span)
        return options

    repeats: list[Diagnostic]

    def header(self, meta: Meta, c: list[Any]) -> t.Header:
        opts = self._options(c[1:])
        return t.Header(
            name=_unquote(c[0]),
            currency=opts.get("currency", (None,))[0],
            timezone=opts.get("timezone", (None,))[0],
            rounding=opts.get("rounding", (None,))[0],
            span=self.s(meta),
        )

    def attribute_decl(self, meta: Meta, c: list[Token]) -> t.AttributeDecl:
        return t.AttributeDecl(field=self._field(c[0]), span=self.s(meta))

    def pricelist(self, meta: Meta, c: list[Any]) -> t.PriceList:
        opts = self._options(c[1:])
        for key in ("stacking", "group"):
            if key in opts:
                self.repeats.append(
                    Diagnostic(
                        code="E0206",
                        severity="error",
                        message=f"'{key}' does not apply to a price list",
                        span=opts[key][1],
                        hint="price lists are tried by priority; the first that holds the SKU prices the line",
                    )
                )
        return t.PriceList(
            name=_unquote(c[0]),
            priority=opts.get("priority", (0,))[0],
            when=opts.get("when", (None,))[0],
            valid=opts.get("valid", (None,))[0],
            table=opts.get("table", (None,))[0],
            currency=opts.get("currency", (None,))[0],
            tax_included=opts.get("includes_tax", (False,))[0],
            span=self.s(meta),
            name_span=self.s(c[0]),
        )

    def promotion(self, meta: Meta, c: list[Any]) -> t.Promotion:
        scopes: list[t.Scope] = []
        caps: list[t.Cap] = []
        rest: list[Any] = []
        cumulative: list[t.Cumulative] = []
        for x in c[1:]:
            if isinstance(x, t.Cumulative):
                cumulative.append(x)
            elif isinstance(x, t.LineScope):
                scopes.append(x)
            elif isinstance(x, tuple) and x and x[0] == "scope":
                scopes.append(x[1])
                caps.extend(x[2])
            elif isinstance(x, t.Cap):
                caps.append(x)
            else:
                rest.append(x)
        opts = self._options(rest)
        for extra in scopes[1:]:
            self.repeats.append(
                Diagnostic(
                    code="E0103",
                    severity="error",
                    message="a promotion has one scope (each line, combo, pool or order); this is a second one",
                    span=extra.span,
                    hint="split it into two promotions",
                )
            )
        seen: dict[str, t.Cap] = {}
        for cap in caps:
            if cap.kind in seen:
                self.repeats.append(
                    Diagnostic(
                        code="E0103",
                        severity="error",
                        message="this cap is given twice in one promotion",
                        span=cap.span,
                        hint=f"the first one is at {seen[cap.kind].span}",
                    )
                )
            seen.setdefault(cap.kind, cap)
        return t.Promotion(
            name=_unquote(c[0]),
            priority=opts.get("priority", (0,))[0],
            stacking=opts.get("stacking", ("stackable",))[0],
            group=opts.get("group", (None,))[0],
            when=opts.get("when", (None,))[0],
            valid=opts.get("valid", (None,))[0],
            scope=scopes[0] if scopes else None,
            caps=tuple(seen.values()),
            cheapest_first=opts.get("cheapest_first", (False,))[0],
            includes_special=opts.get("includes_special", (False,))[0],
            cumulative=tuple(cumulative),
            span=self.s(meta),
            name_span=self.s(c[0]),
        )

    def tax_decl(self, meta: Meta, c: list[Any]) -> t.TaxRule:
        return t.TaxRule(
            name=_unquote(c[0]), table=c[1][1], span=self.s(meta), name_span=self.s(c[0])
        )

    def start(self, meta: Meta, c: list[t.Declaration]) -> tuple[t.Declaration, ...]:
        return tuple(c)


def _terminal_text(name: str) -> str:
    if name in FRIENDLY:
        return FRIENDLY[name]
    if name.startswith("_KW_"):
        return f"'{name[4:].lower()}'"
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name
    return f"'{pattern.value}'" if pattern.type == "str" else name


def _expected(expected: set[str]) -> str:
    # punctuation first (a missing '}' or ':' is the likeliest fix), then words
    names = sorted({_terminal_text(e) for e in expected}, key=lambda n: (n[1:2].isalpha(), n))
    if len(names) > 8:
        names = names[:8] + ["..."]
    return ", ".join(names)


def _acceptable(err: UnexpectedInput) -> set[str]:
    """What the parser could really take here (LALR lookahead sets over-approximate)."""
    interactive = getattr(err, "interactive_parser", None)
    if interactive is not None:
        try:
            return set(interactive.accepts())
        except Exception:  # noqa: BLE001 - fall back to lark's own list
            pass
    return set(getattr(err, "expected", None) or getattr(err, "allowed", None) or ())


def _syntax_diagnostic(err: UnexpectedInput, path: str) -> Diagnostic:
    line, col = err.line or 1, err.column or 1
    if isinstance(err, UnexpectedToken) and err.token.type == "$END":
        span = t.Span(file=path, line=line, col=col, end_line=line, end_col=col + 1)
        return Diagnostic(
            code="E0003",
            severity="error",
            message="the file ends in the middle of a declaration",
            span=span,
            hint=f"expected {_expected(_acceptable(err) - {'$END'})}",
        )
    if isinstance(err, UnexpectedToken):
        tok = err.token
        width = max(1, len(str(tok)))
        span = t.Span(file=path, line=line, col=col, end_line=line, end_col=col + width)
        return Diagnostic(
            code="E0001",
            severity="error",
            message=f"unexpected '{tok}'",
            span=span,
            hint=f"expected {_expected(_acceptable(err))}",
        )
    if isinstance(err, UnexpectedCharacters):
        span = t.Span(file=path, line=line, col=col, end_line=line, end_col=col + 1)
        allowed = _acceptable(err)
        return Diagnostic(
            code="E0002",
            severity="error",
            message=f"unexpected character {err.char!r}",
            span=span,
            hint=f"expected {_expected(allowed)}" if allowed else None,
        )
    assert isinstance(err, UnexpectedEOF)
    span = t.Span(file=path, line=line, col=col, end_line=line, end_col=col + 1)
    return Diagnostic(
        code="E0003",
        severity="error",
        message="the file ends in the middle of a declaration",
        span=span,
    )


def parse_source(source: str, path: str) -> t.RuleFile:
    """Parse one file; raises ``RuleError`` with the syntax diagnostic."""
    diagnostics, rule_file = parse_collect(source, path)
    if diagnostics:
        raise RuleError(diagnostics, {path: source})
    assert rule_file is not None
    return rule_file


def parse_collect(source: str, path: str) -> tuple[list[Diagnostic], t.RuleFile | None]:
    try:
        lark_tree = _parser().parse(source)
    except UnexpectedInput as err:
        return [_syntax_diagnostic(err, path)], None
    transformer = _ToTree(path)
    transformer.repeats = []
    try:
        decls = transformer.transform(lark_tree)
    except Exception as err:  # lark wraps errors raised inside callbacks
        inner = getattr(err, "orig_exc", err)
        if isinstance(inner, _LiteralProblem):
            return [
                Diagnostic(code="E0205", severity="error", message=str(inner), span=inner.span)
            ], None
        raise
    return transformer.repeats, t.RuleFile(path=path, source=source, declarations=decls)


def parse_directory(root: str | Path) -> t.Ruleset:
    """Parse every ``*.rule`` file under ``root`` (sorted, so the order is deterministic)."""
    root_path = Path(root)
    paths = sorted(root_path.rglob("*.rule")) if root_path.is_dir() else [root_path]
    files: dict[str, str] = {}
    for p in paths:
        files[_display_path(p)] = p.read_text(encoding="utf-8")
    return parse_sources(files)


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def parse_sources(files: dict[str, str]) -> t.Ruleset:
    """Parse a ruleset given as {path: source}; collects every file's diagnostics."""
    diagnostics: list[Diagnostic] = []
    parsed: list[t.RuleFile] = []
    for path in sorted(files):
        diags, rule_file = parse_collect(files[path], path)
        diagnostics.extend(diags)
        if rule_file is not None:
            parsed.append(rule_file)
    if not files:
        span = t.Span(file="<ruleset>", line=0, col=0, end_line=0, end_col=0)
        diagnostics.append(
            Diagnostic(
                code="E0601", severity="error", message="the ruleset has no .rule files", span=span
            )
        )
    if diagnostics:
        raise RuleError(diagnostics, dict(files))
    return t.Ruleset(files=tuple(parsed), sources=dict(files))

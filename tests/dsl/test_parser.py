"""The parser: our tree from `.rule` text, with spans, precedence and literals right."""

from __future__ import annotations

import datetime as dt

import pytest

from dsl import tree as t
from dsl.errors import RuleError
from dsl.parser import parse_source, parse_sources

HEADER = 'ruleset "demo" currency CNY\n'


def parse(text: str, path: str = "demo.rule") -> t.RuleFile:
    return parse_source(text, path)


def promotion(text: str) -> t.Promotion:
    decl = parse(HEADER + text).declarations[1]
    assert isinstance(decl, t.Promotion)
    return decl


def where(condition: str) -> t.Condition:
    """The tree of one line condition."""
    scope = promotion(f'promotion "p" {{ each line where {condition}: percent_off 5% }}').scope
    assert scope is not None and scope.where is not None
    return scope.where


def shape(cond: t.Condition) -> object:
    """A condition as nested tuples of operator and field names, for precedence checks."""
    if isinstance(cond, t.Compare | t.InSet):
        return cond.field.name
    if isinstance(cond, t.Not):
        return ("not", shape(cond.item))
    word = "and" if isinstance(cond, t.And) else "or"
    return (word, *(shape(item) for item in cond.items))


def syntax_error(text: str) -> tuple[str, int, int, str | None]:
    with pytest.raises(RuleError) as caught:
        parse(text)
    (diag,) = caught.value.diagnostics
    return diag.code, diag.span.line, diag.span.col, diag.hint


# ---- declarations ------------------------------------------------------------------------


def test_header_reads_currency_timezone_and_rounding() -> None:
    (header,) = parse(
        'ruleset "channel-2026" currency CNY timezone "Asia/Shanghai" rounding half_even'
    ).declarations
    assert isinstance(header, t.Header)
    assert (header.name, header.currency, header.timezone, header.rounding) == (
        "channel-2026",
        "CNY",
        "Asia/Shanghai",
        "half_even",
    )


def test_header_options_are_optional_and_unordered() -> None:
    (header,) = parse('ruleset "x" rounding half_up currency USD').declarations
    assert isinstance(header, t.Header)
    assert (header.currency, header.timezone, header.rounding) == ("USD", None, "half_up")


def test_pricelist_reads_every_statement() -> None:
    decl = parse(
        HEADER
        + """pricelist "customer prices" priority 300 {
  when customer.tier == "gold"
  valid 2026-11-01 .. 2026-11-30
  table customer_prices keyed by customer.id, channel
  currency USD
  includes tax
}"""
    ).declarations[1]
    assert isinstance(decl, t.PriceList)
    assert decl.name == "customer prices" and decl.priority == 300
    assert isinstance(decl.when, t.Compare) and decl.when.field.name == "customer.tier"
    assert decl.valid is not None and (decl.valid.start, decl.valid.end) == (
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 30),
    )
    assert decl.table is not None and decl.table.name == "customer_prices"
    assert [k.name for k in decl.table.keyed_by] == ["customer.id", "channel"]
    assert decl.currency == "USD" and decl.tax_included is True


def test_pricelist_defaults() -> None:
    decl = parse(HEADER + 'pricelist "standard" { table standard_prices }').declarations[1]
    assert isinstance(decl, t.PriceList)
    assert (decl.priority, decl.when, decl.valid, decl.currency, decl.tax_included) == (
        0,
        None,
        None,
        None,
        False,
    )
    assert decl.table is not None and decl.table.keyed_by == ()


def test_promotion_defaults_to_priority_zero_and_stackable() -> None:
    decl = promotion('promotion "p" { each line: percent_off 5% }')
    assert (decl.priority, decl.stacking, decl.group, decl.when, decl.valid) == (
        0,
        "stackable",
        None,
        None,
        None,
    )
    assert decl.scope is not None and decl.scope.where is None


def test_promotion_head_options_in_any_order() -> None:
    decl = promotion(
        'promotion "p" group "tools" stacking exclusive priority -5 { each line: percent_off 5% }'
    )
    assert (decl.priority, decl.stacking, decl.group) == (-5, "exclusive", "tools")


def test_attribute_and_tax_declarations() -> None:
    decls = parse(HEADER + 'attribute customer.segment\ntax "vat" { table tax_rates }').declarations
    assert isinstance(decls[1], t.AttributeDecl) and decls[1].field.name == "customer.segment"
    assert (
        isinstance(decls[2], t.TaxRule)
        and decls[2].name == "vat"
        and decls[2].table.name == "tax_rates"
    )


def test_comments_and_layout_are_ignored() -> None:
    one_line = parse(HEADER + 'promotion "p" { each line where sku == "A": percent_off 5% }')
    spread = parse(
        HEADER
        + '# a note\npromotion "p" {  # why\n  each line\n    where sku == "A":\n    percent_off 5%\n}\n'
    )
    assert len(one_line.declarations) == len(spread.declarations) == 2


# ---- benefits and tiers ------------------------------------------------------------------


def test_benefits() -> None:
    pct = promotion('promotion "p" { each line: percent_off 12.5% }').scope
    off = promotion('promotion "p" { each line: amount_off 1.50 per unit }').scope
    fixed = promotion('promotion "p" { each line: fixed_price 9.99 CNY }').scope
    assert (
        pct is not None
        and isinstance(pct.action, t.PercentOff)
        and pct.action.percent.text == "12.5"
    )
    assert off is not None and isinstance(off.action, t.AmountOff)
    assert isinstance(off.action.amount, t.NumberLit) and off.action.amount.text == "1.50"
    assert fixed is not None and isinstance(fixed.action, t.FixedPrice)
    assert isinstance(fixed.action.price, t.MoneyLit) and (
        fixed.action.price.text,
        fixed.action.price.currency,
    ) == ("9.99", "CNY")


def test_per_unit_is_optional_and_changes_nothing() -> None:
    with_words = promotion('promotion "p" { each line: amount_off 1.50 per unit }').scope
    without = promotion('promotion "p" { each line: amount_off 1.50 }').scope
    assert with_words is not None and without is not None
    assert isinstance(with_words.action, t.AmountOff) and isinstance(without.action, t.AmountOff)
    assert with_words.action.amount.text == without.action.amount.text  # type: ignore[union-attr]


def test_tiers_keep_their_steps_in_order() -> None:
    scope = promotion(
        'promotion "p" { each line: tiers by amount { >= 1000.00: percent_off 2%  >= 5000.00: amount_off 1.00 } }'
    ).scope
    assert scope is not None and isinstance(scope.action, t.Tiers)
    assert scope.action.measure == "amount"
    assert [s.threshold.text for s in scope.action.steps] == ["1000.00", "5000.00"]  # type: ignore[union-attr]
    assert [type(s.benefit).__name__ for s in scope.action.steps] == ["PercentOff", "AmountOff"]


# ---- precedence --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            'sku == "A" or category == "x" and brand == "y"',
            ("or", "sku", ("and", "category", "brand")),
        ),
        (
            'sku == "A" and category == "x" or brand == "y"',
            ("or", ("and", "sku", "category"), "brand"),
        ),
        ('not sku == "A" and category == "x"', ("and", ("not", "sku"), "category")),
        ('not sku == "A" or category == "x"', ("or", ("not", "sku"), "category")),
        ('not (sku == "A" or category == "x")', ("not", ("or", "sku", "category"))),
        (
            '(sku == "A" or category == "x") and brand == "y"',
            ("and", ("or", "sku", "category"), "brand"),
        ),
        ('sku == "A" and category == "x" and brand == "y"', ("and", "sku", "category", "brand")),
        ('sku == "A" or category == "x" or brand == "y"', ("or", "sku", "category", "brand")),
        ('not not sku == "A"', ("not", ("not", "sku"))),
        (
            'sku == "A" and (category == "x" and brand == "y")',
            ("and", "sku", ("and", "category", "brand")),
        ),
        ('not sku in ("A")', ("not", "sku")),
    ],
)
def test_not_binds_tighter_than_and_which_binds_tighter_than_or(
    condition: str, expected: object
) -> None:
    assert shape(where(condition)) == expected


def test_not_in_is_one_operator() -> None:
    cond = where('brand not in ("acme", "bolt")')
    assert isinstance(cond, t.InSet) and cond.negated is True
    assert [v.value for v in cond.values] == ["acme", "bolt"]  # type: ignore[union-attr]


# ---- literals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "fields"),
    [
        ('"gold"', t.StringLit, {"value": "gold"}),
        (r'"say \"hi\" \\ bye"', t.StringLit, {"value": 'say "hi" \\ bye'}),
        ("10", t.NumberLit, {"text": "10"}),
        ("2.5", t.NumberLit, {"text": "2.5"}),
        ("-3", t.NumberLit, {"text": "-3"}),
        ("500.00 CNY", t.MoneyLit, {"text": "500.00", "currency": "CNY"}),
        ("10 box", t.QtyLit, {"text": "10", "unit": "box"}),
        ("12.5%", t.PercentLit, {"text": "12.5"}),
        ("2026-11-30", t.DateLit, {"value": dt.date(2026, 11, 30)}),
    ],
)
def test_literal_kinds(text: str, kind: type, fields: dict[str, object]) -> None:
    cond = where(f"amount == {text}")
    assert isinstance(cond, t.Compare)
    assert isinstance(cond.value, kind)
    for name, value in fields.items():
        assert getattr(cond.value, name) == value


def test_in_list_may_end_with_a_comma() -> None:
    cond = where('sku in ("A", "B",)')
    assert isinstance(cond, t.InSet) and len(cond.values) == 2


def test_bare_number_keeps_its_text_for_the_checker_to_type() -> None:
    cond = where("qty >= 1.500")
    assert (
        isinstance(cond, t.Compare)
        and isinstance(cond.value, t.NumberLit)
        and cond.value.text == "1.500"
    )


# ---- spans -------------------------------------------------------------------------------


def test_spans_point_at_file_line_and_columns() -> None:
    text = (
        HEADER + 'promotion "A 5%" priority 10 {\n  each line where sku == "A": percent_off 5%\n}\n'
    )
    decl = parse(text, "rules/promo.rule").declarations[1]
    assert isinstance(decl, t.Promotion)
    assert str(decl.span) == "rules/promo.rule:2:1"
    assert (decl.span.end_line, decl.span.end_col) == (4, 2)
    assert (decl.name_span.line, decl.name_span.col, decl.name_span.end_col) == (2, 11, 17)
    assert decl.scope is not None
    cond = decl.scope.where
    assert isinstance(cond, t.Compare)
    assert (cond.span.line, cond.span.col, cond.span.end_col) == (3, 19, 29)
    assert (cond.field.span.col, cond.field.span.end_col) == (19, 22)
    assert (cond.value.span.col, cond.value.span.end_col) == (26, 29)
    assert isinstance(decl.scope.action, t.PercentOff)
    assert (decl.scope.action.percent.span.col, decl.scope.action.percent.span.end_col) == (43, 45)


def test_span_of_a_condition_over_several_lines() -> None:
    text = (
        HEADER
        + 'promotion "p" {\n  when channel == "a"\n    or channel == "b"\n  each line: percent_off 5%\n}'
    )
    decl = parse(text).declarations[1]
    assert isinstance(decl, t.Promotion) and isinstance(decl.when, t.Or)
    span = decl.when.span
    assert (span.line, span.col, span.end_line, span.end_col) == (3, 8, 4, 22)


def test_every_node_has_a_span_in_its_file() -> None:
    text = (
        HEADER
        + 'promotion "p" { when not (channel == "a" and date >= 2026-01-01) each line where qty in (1, 2 box): tiers by qty { >= 1: percent_off 1% } }'
    )

    def walk(node: object) -> list[t.Span]:
        found = []
        if hasattr(node, "__dataclass_fields__"):
            for name in node.__dataclass_fields__:
                value = getattr(node, name)
                if isinstance(value, t.Span):
                    found.append(value)
                else:
                    found.extend(walk(value))
        elif isinstance(node, tuple):
            for item in node:
                found.extend(walk(item))
        return found

    spans = walk(parse(text, "x.rule").declarations[1])
    assert len(spans) > 15
    assert all(s.file == "x.rule" and s.line >= 2 and s.col >= 1 for s in spans)


# ---- syntax errors -----------------------------------------------------------------------


def test_unexpected_token_is_e0001_at_the_token() -> None:
    code, line, col, hint = syntax_error(HEADER + "pricelist standard { table standard_prices }")
    assert (code, line, col) == ("E0001", 2, 11)
    assert hint == 'expected a quoted name ("...")'


def test_unexpected_character_is_e0002() -> None:
    code, line, col, _ = syntax_error(
        HEADER + "promotion \"p\" { each line where sku == 'A': percent_off 5% }"
    )
    assert (code, line, col) == ("E0002", 2, 40)


def test_end_of_file_inside_a_declaration_is_e0003() -> None:
    code, line, _, hint = syntax_error(HEADER + 'promotion "p" {\n  each line: percent_off 5%\n')
    assert (code, line) == ("E0003", 3)
    assert hint is not None and "'}'" in hint


def test_impossible_date_is_e0205() -> None:
    code, line, col, _ = syntax_error(
        HEADER + 'promotion "p" { valid 2026-02-30 .. 2026-03-01 each line: percent_off 5% }'
    )
    assert (code, line, col) == ("E0205", 2, 23)


def test_repeated_option_is_e0103_pointing_at_the_second() -> None:
    with pytest.raises(RuleError) as caught:
        parse(
            HEADER
            + 'promotion "p" priority 1 priority 2 { each line: percent_off 5% each line: percent_off 6% }'
        )
    found = [(d.code, d.span.col) for d in caught.value.diagnostics]
    assert found == [("E0103", 26), ("E0103", 65)]


def test_every_file_of_a_ruleset_reports_its_syntax_error() -> None:
    with pytest.raises(RuleError) as caught:
        parse_sources({"a.rule": HEADER + "pricelist x {}", "b.rule": "promotion {"})
    assert sorted(d.span.file for d in caught.value.diagnostics) == ["a.rule", "b.rule"]


def test_an_empty_ruleset_is_e0601() -> None:
    with pytest.raises(RuleError) as caught:
        parse_sources({})
    assert [d.code for d in caught.value.diagnostics] == ["E0601"]


# ---- known problems (strict xfail: they fail today; fix the parser, then drop the mark) ----


def test_keywords_are_whole_words() -> None:
    code, _, col, _ = syntax_error(HEADER + 'promotion "p" { eachline: percent_off 5% }')
    assert (code, col) == ("E0001", 17)


@pytest.mark.xfail(
    strict=True, reason="grammar.lark says keywords are reserved, but 'table table' parses"
)
def test_keywords_are_reserved() -> None:
    code, _, _, _ = syntax_error(HEADER + 'pricelist "p" { table table }')
    assert code == "E0001"

"""The language docs can't drift: their examples check, their keywords and codes are complete.

* every ```` ```rule ```` block in docs/language.md and docs/promotions.md parses and checks
  with no diagnostic, warnings included (a block without a ``ruleset`` header is checked
  with ``DEFAULT_HEADER`` put in front);
* every ```` ```rule-error ```` block in docs/language.md and docs/errors.md renders
  exactly the ```` ```text ```` block after it (checked as ``rules/example.rule``);
* every keyword of dsl/grammar.lark appears as code in docs/language.md;
* every diagnostic code (errors ``E....`` and warnings ``W....``), line error code and API
  error code appears in docs/errors.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from dsl.errors import CODES, render_all
from dsl.parser import GRAMMAR_PATH
from engine.api import check_ruleset
from engine.core.data import DataSet

ROOT = Path(__file__).resolve().parents[2]
LANGUAGE = ROOT / "docs" / "language.md"
PROMOTIONS = ROOT / "docs" / "promotions.md"
ERRORS = ROOT / "docs" / "errors.md"
EXAMPLE_PATH = "rules/example.rule"
DEFAULT_HEADER = 'ruleset "docs" currency CNY timezone "Asia/Shanghai" rounding half_up\n\n'

#: the catalog and tables the documentation's examples are written against
DOCS_DATA = DataSet.from_rows(
    [
        {
            "sku": "A",
            "base_unit": "pcs",
            "units": {"box": 12},
            "category": "tools",
            "brand": "acme",
            "tax_class": "std",
        },
        {
            "sku": "B",
            "base_unit": "pcs",
            "units": {"box": 12},
            "category": "tools",
            "brand": "bolt",
            "tax_class": "std",
        },
        {"sku": "C", "base_unit": "m", "category": "parts", "brand": "acme", "tax_class": "books"},
        {"sku": "D", "base_unit": "pcs", "category": "parts", "brand": "bolt"},
        # a gift item, and a bundle of three components
        {"sku": "G", "base_unit": "pcs", "category": "gifts"},
        {"sku": "KIT", "base_unit": "set", "components": "P:1;S:1;K:1"},
        {"sku": "P", "base_unit": "pcs"},
        {"sku": "S", "base_unit": "pcs"},
        {"sku": "K", "base_unit": "pcs"},
    ],
    {
        "standard_prices": [
            {"sku": "A", "price": "10.00", "min_qty": "0"},
            {"sku": "A", "price": "9.50", "min_qty": "24"},
            {"sku": "A", "price": "9.00", "min_qty": "120"},
            {"sku": "B", "price": "20.00"},
            {"sku": "C", "price": "5.00"},
            {"sku": "D", "price": "50.00"},
            {"sku": "G", "price": "15.00"},
            {"sku": "KIT", "price": "100.00"},
        ],
        "gold_prices": [{"sku": "A", "price": "9.00"}, {"sku": "B", "price": "18.00"}],
        "customer_prices": [{"sku": "A", "customer_id": "D1", "price": "8.50"}],
        "box_prices": [{"sku": "A", "price": "120.00", "unit": "box"}],
        "usd_prices": [{"sku": "D", "price": "7.00"}],
        "gross_prices": [{"sku": "A", "price": "11.30"}, {"sku": "B", "price": "22.60"}],
        "tax_rates": [
            {"rate": "13%", "region": "", "tax_class": "", "trade_term": ""},
            {"rate": "9%", "region": "", "tax_class": "books", "trade_term": ""},
            {"rate": "0%", "region": "", "tax_class": "", "trade_term": "EXW"},
            {"rate": "6%", "region": "HK", "tax_class": "books", "trade_term": ""},
        ],
        "fx_rates": [{"from": "USD", "to": "CNY", "date": "2026-01-01", "rate": "7.1"}],
        "floor_prices": [{"sku": "A", "floor": "8.00"}, {"sku": "B", "floor": "15.00"}],
        "accounts": [
            {
                "customer_id": "D1",
                "credit_limit": "10000.00",
                "outstanding": "9000.00",
                "prepaid": "500.00",
            }
        ],
        "assortment": [{"customer_group": "south", "sku": "A"}],
        "stock_plans": [{"customer_id": "D1", "sku": "A", "month": "2026-11", "qty": "100"}],
        "rebate_targets": [{"customer_id": "D1", "period": "2026-Q4", "target": "1000000.00"}],
        "special_prices": [
            {
                "customer_id": "D1",
                "project": "P-778",
                "sku": "A",
                "price": "15.00",
                "qty_quota": "100",
                "amount_quota": "",
                "valid_from": "2026-10-01",
                "valid_to": "2026-12-31",
            },
        ],  # fmt: skip
    },
)


@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # 1-based line of the opening fence
    kind: str  # the fence's info string: "rule", "rule-error", "text", ...
    text: str

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order."""
    out: list[Block] = []
    kind: str | None = None
    start = 0
    body: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if kind is None:
            if line.startswith("```"):
                kind, start, body = line[3:].strip(), number, []
        elif line.startswith("```"):
            out.append(
                Block(doc=path.name, line=start, kind=kind, text="".join(f"{b}\n" for b in body))
            )
            kind = None
        else:
            body.append(line)
    assert kind is None, f"{path.name}:{start}: unclosed code block"
    return out


def rule_blocks() -> list[Block]:
    return [b for doc in (LANGUAGE, PROMOTIONS) for b in blocks(doc) if b.kind == "rule"]


def error_pairs() -> list[tuple[Block, Block]]:
    pairs = []
    for doc in (LANGUAGE, ERRORS):
        found = blocks(doc)
        for i, block in enumerate(found):
            if block.kind == "rule-error":
                following = found[i + 1] if i + 1 < len(found) else None
                assert following is not None and following.kind == "text", (
                    f"{block.id}: a rule-error block needs a text block after it"
                )
                pairs.append((block, following))
    return pairs


def with_header(source: str) -> str:
    """A documentation snippet as a whole ruleset (the header is added when it has none)."""
    return source if re.search(r"^\s*ruleset\s", source, re.MULTILINE) else DEFAULT_HEADER + source


def code_text(path: Path) -> str:
    """Everything written as code in a Markdown file: fenced blocks and `inline` spans."""
    text = path.read_text(encoding="utf-8")
    fenced = "\n".join(b.text for b in blocks(path))
    inline = "\n".join(re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.DOTALL)))
    return fenced + "\n" + inline


def grammar_keywords() -> set[str]:
    """The quoted words of the grammar: "pricelist", "tiers", "half_up", ..."""
    return set(re.findall(r'"([a-z_]+)"', GRAMMAR_PATH.read_text(encoding="utf-8")))


# ---- the examples ------------------------------------------------------------------------


@pytest.mark.parametrize("block", rule_blocks(), ids=lambda b: b.id)
def test_rule_example_checks_clean(block: Block) -> None:
    sources = {EXAMPLE_PATH: with_header(block.text)}
    diagnostics = check_ruleset(sources, DOCS_DATA)
    assert diagnostics == [], render_all(diagnostics, sources)


@pytest.mark.parametrize("pair", error_pairs(), ids=lambda p: p[0].id)
def test_rule_error_example_renders_its_text(pair: tuple[Block, Block]) -> None:
    example, expected = pair
    sources = {EXAMPLE_PATH: example.text}
    diagnostics = check_ruleset(sources, DOCS_DATA)
    assert diagnostics, f"{example.id}: the example is meant to fail but checks clean"
    assert render_all(diagnostics, sources) + "\n" == expected.text


def test_language_doc_has_examples_of_both_kinds() -> None:
    assert len([b for b in rule_blocks() if b.doc == LANGUAGE.name]) >= 15
    assert len([b for b in rule_blocks() if b.doc == PROMOTIONS.name]) >= 3
    assert len([p for p in error_pairs() if p[0].doc == LANGUAGE.name]) >= 3


def test_error_examples_cover_their_codes() -> None:
    """Each code section of errors.md shows an example that produces that very code
    (``error[E....]`` for an error, ``warning[W....]`` for a warning)."""
    for example, expected in error_pairs():
        if example.doc != ERRORS.name:
            continue
        heading = _heading_before(ERRORS, example.line)
        code = heading.split()[1]
        severity = "warning" if code.startswith("W") else "error"
        assert f"{severity}[{code}]" in expected.text, (
            f"{example.id}: example under '{heading}' does not show {code}"
        )


def _heading_before(path: Path, line: int) -> str:
    lines = path.read_text(encoding="utf-8").splitlines()[: line - 1]
    return next(text for text in reversed(lines) if text.startswith("#### "))


# ---- completeness -----------------------------------------------------------------------


def test_every_grammar_keyword_is_documented() -> None:
    documented = set(re.findall(r"[a-z_]+", code_text(LANGUAGE)))
    assert sorted(grammar_keywords() - documented) == []


def test_grammar_keywords_are_found() -> None:
    """Guards the keyword test itself against a grammar file it can no longer read."""
    assert {
        "pricelist",
        "promotion",
        "tiers",
        "percent_off",
        "keyed",
        "half_even",
    } <= grammar_keywords()


def test_every_diagnostic_code_is_documented() -> None:
    headings = set(
        re.findall(r"^#### ([EW]\d{4}) ", ERRORS.read_text(encoding="utf-8"), re.MULTILINE)
    )
    assert sorted(set(CODES) - headings) == []
    assert sorted(headings - set(CODES)) == [], (
        "errors.md documents a code dsl.errors.CODES does not have"
    )


def test_every_line_error_code_is_documented() -> None:
    from engine.core.codes import LINE_ERRORS

    documented = set(
        re.findall(r"^\| `([a-z_]+)` \|", ERRORS.read_text(encoding="utf-8"), re.MULTILINE)
    )
    assert sorted(set(LINE_ERRORS[1:]) - documented) == []


def api_error_codes() -> set[str]:
    """Error codes the server and engine can answer with, read from their source."""
    codes: set[str] = set()
    for path in [*(ROOT / "engine").rglob("*.py"), *(ROOT / "server").glob("*.py")]:
        text = path.read_text(encoding="utf-8")
        codes |= set(re.findall(r'CartError\(\s*"([a-z_]+)"', text))
        if path.parent.name == "server":  # ApiError subclasses (server/errors.py, server/orders.py)
            codes |= set(re.findall(r'^\s+code = "([a-z_]+)"', text, re.MULTILINE))
    errors_py = (ROOT / "server" / "errors.py").read_text(encoding="utf-8")
    codes |= set(re.findall(r'^\s+code = "([a-z_]+)"', errors_py, re.MULTILINE))
    codes |= set(re.findall(r'error_response\(\s*\d+,\s*"([a-z_]+)"', errors_py))
    codes |= set(re.findall(r'\d+: \("([a-z_]+)",', errors_py))
    codes |= set(re.findall(r'\("([a-z_]+)", str\(exc\.detail\)\)', errors_py))
    return codes


def test_every_api_error_code_is_documented() -> None:
    codes = api_error_codes()
    assert {"bad_json", "too_large", "ruleset_invalid", "bad_cart"} <= codes, (
        "the source scan found too little"
    )
    documented = set(
        re.findall(
            r"^\| (?:\d+|other) \| `([a-z_]+)` \|", ERRORS.read_text(encoding="utf-8"), re.MULTILINE
        )
    )
    assert sorted(codes - documented) == []

"""Diagnostics: data first (a stable code, a span, a message, a hint), text second.

Rendered, one looks like::

    rules/q4.rule:12:19: error[E0201]: unknown field 'sku_grop'
       12 |   each line where sku_grop == "x": percent_off 5%
          |                   ^^^^^^^^
    help: did you mean 'sku'?

Every code is listed in ``CODES`` and documented in ``docs/errors.md``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from dsl.tree import Span

Severity = Literal["error", "warning"]

#: Stable diagnostic codes and what they mean. Tests check docs/errors.md lists them all.
CODES: dict[str, str] = {
    "E0001": "syntax error: a token the grammar does not expect here",
    "E0002": "syntax error: a character or word that is not part of the language",
    "E0003": "syntax error: the file ends in the middle of a declaration",
    "E0101": "duplicate name: two declarations of the same kind share a name",
    "E0102": "ruleset header missing, or declared more than once",
    "E0103": "option given twice in one declaration",
    "E0201": "unknown field",
    "E0202": "type mismatch between a field and a value",
    "E0203": "currency mismatch",
    "E0204": "unknown currency",
    "E0205": "a literal that cannot be held exactly (too many decimals, out of range)",
    "E0206": "a field that cannot be used in this place",
    "E0207": "unknown time zone",
    "E0301": "unknown table",
    "E0302": "a table lacks a column the declaration needs",
    "E0303": "unknown SKU",
    "E0304": "unknown unit, or a unit whose factor differs across the SKUs a rule matches",
    "E0401": "tiers out of order",
    "E0402": "tiers overlap (two steps with the same threshold)",
    "E0501": "empty validity window (start after end)",
    "E0502": "declaration without what it needs (a price list without a table, a promotion without a scope)",
    "E0503": "condition too complex to compile (too many alternatives)",
    "E0504": "a cap or option that does not fit the promotion's scope",
    "E0505": "a combo, pool or order promotion figure that must be a positive whole number",
    "E0506": "approval bands out of order, or 'above' before the last band",
    "W0501": "warning: a promotion that can never apply (shadowed by an earlier exclusive promotion with a wider condition)",
    "E0601": "ruleset directory has no .rule files",
    "E0701": "unknown event kind in a commission",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span
    hint: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "source": str(self.span),
            "file": self.span.file,
            "line": self.span.line,
            "col": self.span.col,
            "hint": self.hint,
        }


class RuleError(Exception):
    """A ruleset that failed to parse or check; carries every diagnostic found."""

    def __init__(self, diagnostics: Sequence[Diagnostic], sources: dict[str, str]) -> None:
        self.diagnostics = tuple(diagnostics)
        self.sources = sources
        errors = sum(1 for d in diagnostics if d.severity == "error")
        super().__init__(f"{errors} error(s) in ruleset")

    def render(self) -> str:
        return render_all(self.diagnostics, self.sources)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate: one differing only in case first, else by similarity."""
    pool = sorted(set(candidates))
    folded = [c for c in pool if c.casefold() == name.casefold()]
    match = folded[:1] or difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else None


def render(diag: Diagnostic, sources: dict[str, str]) -> str:
    span = diag.span
    head = f"{span.file}:{span.line}:{span.col}: {diag.severity}[{diag.code}]: {diag.message}"
    lines = [head]
    source = sources.get(span.file)
    if source is not None and span.line >= 1:
        text_lines = source.splitlines()
        if span.line <= len(text_lines):
            text = text_lines[span.line - 1].rstrip("\n")
            gutter = f"{span.line:>4} | "
            lines.append(gutter + text)
            end_col = span.end_col if span.end_line == span.line else len(text) + 1
            width = max(1, end_col - span.col)
            lines.append(" " * (len(gutter) - 2) + "| " + " " * (span.col - 1) + "^" * width)
    if diag.hint:
        lines.append(f"help: {diag.hint}")
    return "\n".join(lines)


def sort_key(diag: Diagnostic) -> tuple[str, int, int, str]:
    return (diag.span.file, diag.span.line, diag.span.col, diag.code)


def render_all(diagnostics: Iterable[Diagnostic], sources: dict[str, str]) -> str:
    ordered = sorted(diagnostics, key=sort_key)
    body = "\n\n".join(render(d, sources) for d in ordered)
    errors = sum(1 for d in ordered if d.severity == "error")
    warnings = len(ordered) - errors
    summary = f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
    return f"{body}\n\n{summary}" if body else summary

"""The engine's public entry points (the contract in docs/engine-api.md).

>>> from engine.core.data import DataSet
>>> data = DataSet.from_rows([{"sku": "A", "base_unit": "pcs"}], {"standard_prices": [{"sku": "A", "price": "20.00"}]})
>>> plan = compile_ruleset({"r.rule": 'ruleset "x" currency CNY\\npricelist "standard" { table standard_prices }'}, data)
>>> quote(plan, {"date": "2026-11-22", "lines": [{"sku": "A", "qty": "3"}]})["totals"]["net"]
'60.00'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from dsl.check import check
from dsl.compile import CompileError, compile_checked
from dsl.compile_policies import compile_policies_checked
from dsl.errors import Diagnostic, RuleError
from dsl.fmt import format_ruleset
from dsl.parser import parse_sources
from engine.core.data import DataError, DataSet
from engine.ledger.view import LedgerView
from engine.plan.compiled import Plan
from engine.plan.policies import PolicySet
from engine.pricing.cart import MAX_LINES_PER_CART, CartError, decode_carts
from engine.pricing.pipeline import price
from engine.pricing.small_path import small_path
from engine.results.frames import batch_from_frames, priced_frame
from engine.results.responses import PricedCart, priced_carts, write_response

__all__ = [
    "CartError",
    "DataError",
    "Plan",
    "RuleError",
    "check_ruleset",
    "compile_policies",
    "compile_ruleset",
    "format_sources",
    "load_sources",
    "price_carts",
    "price_frames",
    "quote",
    "quote_batch",
]


def load_sources(path: str | Path) -> dict[str, str]:
    """``{display path: source}`` of every ``*.rule`` under a directory (or one file)."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no such ruleset directory: {path}")
    paths = sorted(root.rglob("*.rule")) if root.is_dir() else [root]
    out: dict[str, str] = {}
    for p in paths:
        out[str(p)] = p.read_text(encoding="utf-8")
    return out


def check_ruleset(sources: dict[str, str], data: DataSet | None) -> list[Diagnostic]:
    """Every diagnostic of the ruleset (empty when it is clean), compile problems included."""
    try:
        ruleset = parse_sources(sources)
    except RuleError as err:
        return list(err.diagnostics)
    checked, diagnostics = check(ruleset, data)
    if checked is not None and data is not None:
        try:
            diagnostics.extend(compile_checked(checked, data).warnings)
        except CompileError as err:
            diagnostics.extend(err.diagnostics)
        except DataError as err:
            diagnostics.append(_data_diagnostic(err))
    return diagnostics


def _data_diagnostic(err: DataError) -> Diagnostic:
    from dsl.tree import Span

    span = Span(
        file=f"<table {err.table or 'catalog'}>", line=err.row or 0, col=0, end_line=0, end_col=0
    )
    return Diagnostic(code="E0302", severity="error", message=str(err), span=span)


def compile_ruleset(sources: dict[str, str], data: DataSet) -> Plan:
    """Parse, check and compile; raises ``RuleError`` carrying every diagnostic."""
    ruleset = parse_sources(sources)
    checked, diagnostics = check(ruleset, data)
    errors = [d for d in diagnostics if d.severity == "error"]
    if checked is None or errors:
        raise RuleError(diagnostics, dict(sources))
    try:
        return compile_checked(checked, data)
    except CompileError as err:
        raise RuleError(err.diagnostics, dict(sources)) from None
    except DataError as err:
        raise RuleError([_data_diagnostic(err)], dict(sources)) from None


def compile_policies(sources: dict[str, str], data: DataSet | None) -> PolicySet:
    """Parse and check the whole ruleset and compile its rebate, commission, partner-tier
    and fund declarations (run them with ``engine.batch.rebates.run_policies``). Raises
    ``RuleError`` carrying every diagnostic."""
    ruleset = parse_sources(sources)
    checked, diagnostics = check(ruleset, data)
    if checked is None or any(d.severity == "error" for d in diagnostics):
        raise RuleError(diagnostics, dict(sources))
    return compile_policies_checked(ruleset, checked, data)


def format_sources(sources: dict[str, str]) -> dict[str, str]:
    """Every file in the canonical layout (raises ``RuleError`` on syntax errors)."""
    ruleset = parse_sources(sources)
    return {f.path: format_ruleset(f) for f in ruleset.files}


def _decode(plan: Plan, carts: Sequence[Any], max_lines: int) -> Any:
    catalog = plan.catalog
    factors = catalog.unit_factors
    base_units = catalog.base_units

    def factor_of(unit: str | None, sku: int) -> int:
        if unit is None or unit == base_units[sku]:
            return 1
        found = factors.get(unit)
        return int(found[sku]) if found is not None else 0

    return decode_carts(
        carts,
        currency=plan.currency,
        timezone=plan.timezone,
        sku_index=catalog.sku_index,
        factor_of=factor_of,
        customer_attrs=plan.customer_attrs,
        max_lines=max_lines,
    )


def quote(
    plan: Plan, cart: Any, max_lines: int = MAX_LINES_PER_CART, ledger: LedgerView | None = None
) -> dict[str, Any]:
    """Price one cart; line problems are line errors, a malformed cart raises ``CartError``.

    Rulesets with only list prices, line promotions and tax take the small-batch path
    (scalar probes of the compiled tables). Carts that need stages 5-9 (combos, pools,
    order promotions, gifts, money caps, floors, manual discounts) special prices (stage 3) or cumulative conditions take the bulk path with
    a batch of one, so those stages have a single implementation. Both give the answer
    ``quote_batch`` gives. ``ledger``: what committed orders consumed (None: nothing)."""
    ledger_counts = ledger is not None and bool(plan.line_index.ledger_capped)
    if (
        plan.stages.active
        or plan.line_index.money_capped
        or plan.special is not None
        or plan.cumulative
        or ledger_counts
        or _asks_manual_discount(cart)
    ):
        return quote_batch(plan, [cart], max_lines=max_lines, ledger=ledger)[0]
    return small_path(plan).quote(cart, max_lines=max_lines)


def _asks_manual_discount(cart: Any) -> bool:
    lines = cart.get("lines") if isinstance(cart, dict) else None
    return isinstance(lines, list) and any(
        isinstance(line, dict) and line.get("manual_discount") is not None for line in lines
    )


def quote_batch(
    plan: Plan,
    carts: Sequence[Any],
    max_lines: int = MAX_LINES_PER_CART,
    ledger: LedgerView | None = None,
) -> list[dict[str, Any]]:
    """Price many carts in one vectorized pass; the same answers as ``quote`` one by one."""
    return [write_response(plan, cart) for cart in price_carts(plan, carts, max_lines, ledger)]


def price_carts(
    plan: Plan,
    carts: Sequence[Any],
    max_lines: int = MAX_LINES_PER_CART,
    ledger: LedgerView | None = None,
) -> list[PricedCart]:
    """Price many carts in one vectorized pass into typed results (``PricedCart``: figures
    in minor units, rule ids): what ``quote_batch`` writes as JSON, and what order
    validation and commit consumption read."""
    if not isinstance(carts, Sequence) or isinstance(carts, str | bytes):
        raise CartError("bad_request", "carts must be a list of cart objects")
    if not carts:
        return []
    batch = _decode(plan, carts, max_lines)
    explain = [isinstance(c, dict) and c.get("explain") is True for c in carts]
    return priced_carts(plan, batch, price(plan, batch, ledger), explain)


def price_frames(
    plan: Plan, carts: pl.DataFrame, lines: pl.DataFrame, ledger: LedgerView | None = None
) -> pl.DataFrame:
    """The columnar bulk path: one row per line in, one priced row per line out.

    ``carts``: ``cart_id`` (unique), ``date`` (pl.Date or ISO text), optional ``currency``
    (default and null: the ruleset's),
    ``customer_id``, ``customer_tier``, ``customer_region``, ``customer_group``, ``channel``,
    ``project``, ``trade_term``, and ``customer_<attr>`` for each custom attribute of
    ``plan.customer_attrs`` (missing: null). ``lines``: ``cart_id``, ``line_id``, ``sku``, ``qty``
    (integer base units, or decimal text), optional ``unit``. Output columns: cart_id,
    line_id, sku, status, price_list, unit_price_minor, list_amount_minor, discount_minor,
    net_amount_minor, tax_minor, gross_amount_minor (integers in minor units of the cart's
    currency). A cart's lines need not be adjacent in ``lines``: the output keeps the
    input's line order.
    """
    batch = batch_from_frames(plan, carts, lines)
    priced = price(plan, batch, ledger)
    return priced_frame(plan, batch, priced, carts)

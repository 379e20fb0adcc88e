"""The pricing waterfall: the stages of SPEC §3 as data (``STAGES``), run in order over
one ``Waterfall`` state holding every line of every cart in the batch.

Each stage has one implementation, used for one cart and for a million: 2 list price
(``engine.pricing.list_price``), cumulative conditions (``engine.pricing.cumulative``),
3 special prices (``engine.pricing.special``: a split line becomes two rows), 4 line
promotions (``engine.pricing.line_promotions``), 5-9 over each cart's running figures
(``engine.pricing.combos``, ``order_promotions``, ``gifts``, ``running`` for caps,
``floors``), 10 tax and totals (``engine.pricing.tax``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.core.allocate import cart_starts_of
from engine.core.codes import LineError
from engine.core.money import MAX_LINE_AMOUNT_MINOR, QTY_SCALE, convert_minor, mul_div_round
from engine.ledger.view import LedgerView
from engine.plan.cart_rules import CartRule
from engine.plan.compiled import Plan
from engine.pricing.cart import CartBatch
from engine.pricing.combos import run_sets
from engine.pricing.cumulative import CumulativeFigures, cart_totals, committed_totals
from engine.pricing.floors import (
    Approval,
    clamp_to_floor,
    floor_amounts,
    floors_without_rate,
    manual_discounts,
)
from engine.pricing.gifts import GiftLines, Warning, give_gifts, price_units
from engine.pricing.line_promotions import Adjustments, apply_line_promotions
from engine.pricing.list_price import DAY_RADIX, list_prices
from engine.pricing.order_promotions import reached_step, run_orders, thresholds_of
from engine.pricing.running import CartMoney, Effect, Running, cart_money
from engine.pricing.special import special_rows, split_quantities
from engine.pricing.tax import line_rates, split_tax

I64 = npt.NDArray[np.int64]


@dataclass
class PricedLines:
    error: I64
    price_list: I64  # index into plan.pricelists, -1 none
    unit_price: I64  # per pricing unit, cart currency minor units
    pricing_factor: I64  # base units per pricing unit
    list_amount: I64
    net_amount: I64  # after tax split (net of tax)
    tax_rate: I64  # basis points
    tax: I64
    gross_amount: I64
    adjustments: Adjustments
    cart_stages: CartOutcome | None = None
    #: stage 3 split some line: every array above is per *row* (see ``Rows``)
    rows: Rows | None = None
    #: per cumulative condition of the plan (in order): the per-cart figures it compared
    cumulative: tuple[CumulativeFigures, ...] = ()


@dataclass
class Rows:
    """Stage 3's split of a batch: each line is one row, or two (its special-price sub-line
    first, then its list-price sub-line; a line wholly within its quota has only the first)."""

    batch: CartBatch  # one entry per row
    line: I64  # row -> line of the original batch
    special: npt.NDArray[np.bool_]  # row is a special-price sub-line
    line_unit_price: I64  # stage 2's figures per line (the response's line-level unit price)
    line_factor: I64
    line_price_list: I64
    #: per row: the special-price table row (``plan.special``) a special sub-line is priced
    #: at, -1 for a list-price row (what a commit consumes and the quotas it counts against)
    special_row: I64


@dataclass
class CartOutcome:
    """What stages 5-9 add: gifts, warnings, hints, line statuses."""

    gifts: GiftLines
    warnings: list[Warning]
    hints: list[tuple[int, int, int]]  # (cart, rule id, missing amount)
    approval: Approval
    switched_off: list[tuple[int, int]]  # (cart, rule id): a budget or uses per customer used up
    #: order rule id -> per cart: the subtotal it tested reaches its first step (explanations)
    order_reached: dict[int, npt.NDArray[np.bool_]] = field(default_factory=dict)


def foreign_money(
    plan: Plan, batch: CartBatch, list_amount: I64, error: I64
) -> tuple[I64 | None, tuple[I64, I64] | None]:
    """For carts in another currency than the ruleset's, when promotions name money: each
    line's amount cell against converted edges and its row of converted benefit amounts.
    Lines of a cart with no ruleset->cart rate get ``no_fx_rate`` (``error`` is updated)."""
    if not plan.money_in_promotions:
        return None, None
    cart_currency = batch.carts["currency"]
    foreign_cart = (cart_currency != plan.currency).to_numpy()
    if not foreign_cart.any():
        return None, None
    index = plan.line_index
    cell = np.searchsorted(index.amount_bounds, list_amount, side="right")
    tables = [index.benefit_amount]
    slot = np.zeros(batch.n_lines, dtype=np.int64)
    names = cart_currency.unique(maintain_order=True)
    codes = cart_currency.replace_strict(
        names, pl.int_range(len(names), eager=True), return_dtype=pl.Int64
    ).to_numpy()
    cart_key = np.where(foreign_cart, codes * DAY_RADIX + batch.carts["date"].to_numpy(), -1)
    line_key = cart_key[batch.line_cart]
    for key in np.unique(line_key[line_key >= 0]).tolist():
        at = np.nonzero((line_key == key) & (error == LineError.OK))[0]
        currency, day = str(names[key // DAY_RADIX]), key % DAY_RADIX
        rate = plan.fx.rate(plan.currency, currency, day)
        if rate is None:
            error[at] = LineError.NO_FX_RATE
            continue
        edges, amounts = index.in_currency(rate, plan.currency, currency, plan.rounding)
        cell[at] = np.searchsorted(edges, list_amount[at], side="right")
        slot[at] = len(tables)
        tables.append(amounts)
    return cell, (np.stack(tables), slot)


def _line_rules_off(
    plan: Plan,
    batch: CartBatch,
    ledger: LedgerView | None,
    rule_money: CartMoney | None,
    line_cart: I64,
) -> tuple[dict[int, npt.NDArray[np.bool_]], I64] | None:
    """Per line promotion with a budget or ``uses N per customer``: which carts it is
    switched off for (nothing left of the budget, in the cart's currency; the customer's
    committed orders used it N times)."""
    if ledger is None or not plan.line_index.ledger_capped:
        return None
    off: dict[int, npt.NDArray[np.bool_]] = {}
    customers: list[Any] | None = None
    for j in plan.line_index.ledger_capped:
        caps, rule_id = plan.line_index.caps[j], int(plan.line_rule_ids[j])
        cart_off = np.zeros(len(batch.carts), dtype=np.bool_)
        if caps.budget is not None:
            left = max(0, caps.budget - ledger.budget_used.get(rule_id, 0))
            cart_off |= (
                rule_money.of(left)
                if rule_money is not None
                else np.full(len(batch.carts), left, dtype=np.int64)
            ) <= 0
        if caps.uses_per_customer is not None and ledger.uses:
            if customers is None:
                customers = batch.carts["customer.id"].to_list()
            used = np.array(
                [ledger.uses.get((rule_id, c), 0) if c is not None else 0 for c in customers],
                dtype=np.int64,
            )
            cart_off |= used >= caps.uses_per_customer
        if cart_off.any():
            off[j] = cart_off
    return (off, line_cart) if off else None


@dataclass
class Waterfall:
    """One batch on its way down the waterfall: its lines as columns (one entry per row
    once stage 3 has split lines), the adjustments so far, and the ledger snapshot it reads.
    Every stage reads and updates this one state; ``price`` runs them in order."""

    plan: Plan
    batch: CartBatch
    ledger: LedgerView | None
    # stage 2
    chosen: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    unit_price: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    factor: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    list_amount: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    error: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: carts in another currency: each line's amount cell and converted benefit amounts
    cell: I64 | None = None
    money: tuple[I64, I64] | None = None
    #: rule money (ruleset currency) in each cart's currency; None: every cart is in it
    rule_money: CartMoney | None = None
    cumulative: tuple[CumulativeFigures, ...] = ()
    rows: Rows | None = None
    #: what a line promotion's conditions see: the whole line's quantity and list amount
    cond_qty: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cond_amount: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    program_sku: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # stage 4 on
    net: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    stopped: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    adjustments: Adjustments = field(default_factory=Adjustments.empty)
    cart_starts: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    outcome: CartOutcome | None = None
    # stage 10
    tax_rate: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    net_of_tax: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tax: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def priced(self) -> PricedLines:
        return PricedLines(
            error=self.error,
            price_list=self.chosen,
            unit_price=self.unit_price,
            pricing_factor=self.factor,
            list_amount=self.list_amount,
            net_amount=self.net_of_tax,
            tax_rate=self.tax_rate,
            tax=self.tax,
            gross_amount=self.net_of_tax + self.tax,
            adjustments=self.adjustments,
            cart_stages=self.outcome,
            rows=self.rows,
            cumulative=self.cumulative,
        )


def list_price_stage(w: Waterfall) -> None:
    """Stage 2: each line's list price; the rule money of carts in another currency."""
    plan, batch = w.plan, w.batch
    w.chosen, w.unit_price, w.factor, w.list_amount, w.error = list_prices(plan, batch)
    w.cell, w.money = foreign_money(plan, batch, w.list_amount, w.error)
    w.rule_money = cart_money(plan, batch)  # per cart, not per row: a split keeps the carts
    floors_without_rate(
        plan.stages.floor, w.rule_money, batch.line_cart, batch.sku, w.error
    )  # stage 9's floors need a rate
    w.cond_qty, w.cond_amount, w.program_sku = batch.qty, w.list_amount, batch.sku


def cumulative_stage(w: Waterfall) -> None:
    """Cumulative conditions become cart fields, read like any other (SPEC §3.6)."""
    w.batch, w.cumulative = cumulative_fields(w.plan, w.batch, w.list_amount, w.error, w.ledger)
    w.cond_qty = w.batch.qty


def special_stage(w: Waterfall) -> None:
    """Stage 3: a line with a special price within its quota becomes one or two rows."""
    split = split_lines(
        w.plan, w.batch, w.chosen, w.unit_price, w.factor, w.list_amount, w.error, w.ledger
    )
    if split is None:
        return
    w.rows, (w.chosen, w.unit_price, w.factor, w.list_amount, w.error) = split
    at = w.rows.line
    w.cond_qty, w.cond_amount = w.batch.qty[at], w.cond_amount[at]
    w.cell = None if w.cell is None else w.cell[at]
    w.money = None if w.money is None else (w.money[0], w.money[1][at])
    w.batch = w.rows.batch
    w.program_sku = w.batch.sku + np.where(w.rows.special, w.plan.catalog.size, 0)


def line_promotions_stage(w: Waterfall) -> None:
    """Stage 4: every priced line's program of line promotions on its running net."""
    plan, batch, ledger = w.plan, w.batch, w.ledger
    ok = np.nonzero(w.error == LineError.OK)[0]
    w.list_amount[w.error != LineError.OK] = 0
    w.net = w.list_amount.copy()
    w.chosen[w.error != LineError.OK] = -1
    w.stopped = np.zeros(batch.n_lines, dtype=np.bool_)
    w.cart_starts = cart_starts_of(batch.line_cart, len(batch.carts))
    if not len(ok):
        return
    program = plan.line_index.programs_for(
        batch.carts, batch.line_cart[ok], w.program_sku[ok], w.cond_qty[ok], w.cond_amount[ok],
        amount_cell=None if w.cell is None else w.cell[ok],
    )  # fmt: skip
    money_ok = None if w.money is None else (w.money[0], w.money[1][ok])
    ok_cart = batch.line_cart[ok]
    rule_money = w.rule_money
    net_ok, adj, stopped_ok = apply_line_promotions(
        plan.line_index, program, w.list_amount[ok], batch.qty[ok], plan.rounding, money_ok,
        carts=(ok_cart, cart_starts_of(ok_cart, len(batch.carts))) if plan.line_index.money_capped else None,
        budget_used={i: ledger.budget_used.get(int(r), 0) for i, r in enumerate(plan.line_rule_ids)} if ledger else None,
        in_cart_currency=rule_money.of if rule_money is not None else None,
        switched_off=_line_rules_off(plan, batch, ledger, rule_money, ok_cart),
    )  # fmt: skip
    w.net[ok] = net_ok
    w.stopped[ok] = stopped_ok
    w.adjustments = Adjustments(
        line=ok[adj.line], rule=plan.line_rule_ids[adj.rule], kind=adj.kind, amount=adj.amount,
        stage=adj.stage, position=plan.line_rule_ids[adj.position],
    )  # fmt: skip


def cart_level_stage(w: Waterfall) -> None:
    """Stages 5-9 over each cart's running figures: ``cart_stages``."""
    w.outcome, w.adjustments = cart_stages(
        w.plan, w.batch, w.error, w.net, w.stopped, w.adjustments, w.cart_starts, w.ledger, w.rule_money,
        None if w.rows is None else w.rows.special,
    )  # fmt: skip


def tax_stage(w: Waterfall) -> None:
    """Stage 10: a rate per line, tax split out of tax-included lists; totals are sums."""
    plan, batch = w.plan, w.batch
    w.tax_rate = line_rates(plan.tax, plan.catalog, batch.carts, batch.line_cart, batch.sku)
    included = np.zeros(batch.n_lines, dtype=np.bool_)
    for li, pl_plan in enumerate(plan.pricelists):
        if pl_plan.tax_included:
            included |= w.chosen == li
    if w.rows is not None:
        included &= ~w.rows.special  # special prices are net of tax
    w.net_of_tax, w.tax = split_tax(w.net, w.tax_rate, included, plan.rounding)
    bad = w.error != LineError.OK
    for arr in (w.net_of_tax, w.tax):
        arr[bad] = 0


def _asks_manual_discount(batch: CartBatch) -> bool:
    return batch.manual_bp is not None and bool((batch.manual_bp >= 0).any())


@dataclass(frozen=True)
class Stage:
    """One step of the waterfall: SPEC §3's number, what it does, when the plan needs it."""

    number: str
    name: str
    run: Callable[[Waterfall], None]
    needed: Callable[[Plan, CartBatch], bool]


#: the waterfall, in order (SPEC §3); stage 1, normalizing carts, happened at the edge
#: (``engine.pricing.cart``, ``engine.results.frames``). Stages 5-9 (sets, order
#: promotions, gifts, caps, floors and manual discounts) run together over each cart's
#: ``Running`` figures in ``cart_stages``.
STAGES: tuple[Stage, ...] = (
    Stage("2", "list price", list_price_stage, lambda plan, batch: True),
    Stage(
        "3.6", "cumulative conditions", cumulative_stage, lambda plan, batch: bool(plan.cumulative)
    ),
    Stage("3", "special prices", special_stage, lambda plan, batch: plan.special is not None),
    Stage("4", "line promotions", line_promotions_stage, lambda plan, batch: True),
    Stage(
        "5-9",
        "sets, order promotions, gifts, caps, floors, manual discounts",
        cart_level_stage,
        lambda plan, batch: plan.stages.active or _asks_manual_discount(batch),
    ),  # fmt: skip
    Stage("10", "tax and totals", tax_stage, lambda plan, batch: True),
)


def price(plan: Plan, batch: CartBatch, ledger: LedgerView | None = None) -> PricedLines:
    """The waterfall, stage by stage, over every line of every cart in the batch: the
    same stages for one cart and for a million."""
    w = Waterfall(plan=plan, batch=batch, ledger=ledger)
    for stage in STAGES:
        if stage.needed(plan, batch):
            stage.run(w)
    return w.priced()


def cumulative_fields(
    plan: Plan, batch: CartBatch, list_amount: I64, error: I64, ledger: LedgerView | None
) -> tuple[CartBatch, tuple[CumulativeFigures, ...]]:
    """The batch with one ``cumulative.<k>`` cart column per cumulative condition: "1"
    where the customer's committed total in the window plus this cart's reaches it, and
    the figures compared, per condition. Money is the ruleset's; on a cart in another
    currency the committed total and the threshold are converted at the cart date's
    ruleset->cart rate (like all rule money)."""
    committed = ledger.committed_lines if ledger is not None else None
    customers = batch.carts["customer.id"]
    n_carts = batch.carts.height
    money = cart_money(plan, batch)
    columns = []
    figures = []
    for c in plan.cumulative:
        totals = committed_totals(c, committed)
        past = np.zeros(n_carts, dtype=np.int64)
        if totals:
            past = (
                customers.replace_strict(
                    list(totals), list(totals.values()), default=0, return_dtype=pl.Int64
                )
                .fill_null(0)
                .to_numpy()
                .copy()
            )
        now = cart_totals(
            c, n_carts, batch.line_cart, batch.sku, batch.qty, list_amount, error == LineError.OK
        )
        threshold = np.full(n_carts, c.threshold, dtype=np.int64)
        if c.measure == "amount" and money is not None:
            threshold = money.of(c.threshold)
            foreign = np.nonzero(money.rate_of_cart >= 0)[0]
            for cart in foreign.tolist():  # carts in another currency only, once per cart
                rate, src, dst = money.rates[int(money.rate_of_cart[cart])]
                past[cart] = convert_minor(int(past[cart]), rate, src, dst, plan.rounding)
        columns.append(
            pl.Series(c.field, np.where(past + now >= threshold, "1", "0"), dtype=pl.String)
        )
        figures.append(CumulativeFigures(committed=past, cart=now, threshold=threshold))
    return replace(batch, carts=batch.carts.with_columns(columns)), tuple(figures)


def split_lines(
    plan: Plan,
    batch: CartBatch,
    chosen: I64,
    unit_price: I64,
    factor: I64,
    list_amount: I64,
    error: I64,
    ledger: LedgerView | None,
) -> tuple[Rows, tuple[I64, I64, I64, I64, I64]] | None:
    """Stage 3: the rows of the batch and their (price list, unit price, pricing factor, list
    amount, error); None when no line has a special price with quota left (``error`` gets
    ``no_fx_rate`` / ``amount_too_large`` for lines whose special part can't be priced)."""
    special = plan.special
    assert special is not None
    row = special_rows(special, batch.carts, batch.line_cart, batch.sku, error == LineError.OK)
    if not (row >= 0).any():
        return None
    safe = np.maximum(row, 0)
    price_cart = special.price[safe].copy()  # the special price in the cart's currency
    foreign_cart = (batch.carts["currency"] != plan.currency).to_numpy()
    foreign = (
        np.nonzero((row >= 0) & foreign_cart[batch.line_cart])[0]
        if foreign_cart.any()
        else np.zeros(0, dtype=np.int64)
    )
    if len(foreign):
        currency = batch.carts["currency"].to_numpy()
        days = batch.carts["date"].to_numpy()
        keys = sorted(
            {(str(currency[c]), int(days[c])) for c in np.unique(batch.line_cart[foreign]).tolist()}
        )
        for cur, day in keys:  # once per (currency, date) in play
            at = foreign[
                (currency[batch.line_cart[foreign]] == cur)
                & (days[batch.line_cart[foreign]] == day)
            ]
            rate = plan.fx.rate(plan.currency, cur, day)
            if rate is None:
                error[at] = LineError.NO_FX_RATE
                row[at] = -1
                continue
            values, inverse = np.unique(price_cart[at], return_inverse=True)
            converted = np.array(
                [
                    convert_minor(int(v), rate, plan.currency, cur, plan.rounding)
                    for v in values.tolist()
                ],
                dtype=np.int64,
            )
            price_cart[at] = converted[inverse.reshape(-1)]
    used = ledger.special_used if ledger is not None else {}
    s_qty = split_quantities(
        special, row, batch.line_cart, batch.qty, used, plan.catalog.sku_index, plan.rounding
    )
    s_qty[error != LineError.OK] = 0
    split = s_qty > 0
    if not split.any():
        return None
    estimate = price_cart.astype(np.float64) * s_qty / QTY_SCALE
    too_large = split & (estimate >= 2 * MAX_LINE_AMOUNT_MINOR)
    s_amount = np.zeros(batch.n_lines, dtype=np.int64)
    fine = split & ~too_large
    s_amount[fine] = mul_div_round(price_cart[fine], s_qty[fine], QTY_SCALE, plan.rounding)
    too_large |= s_amount >= MAX_LINE_AMOUNT_MINOR
    error[too_large] = LineError.AMOUNT_TOO_LARGE
    split &= ~too_large
    s_qty[~split] = 0
    rest = batch.qty - s_qty
    rest_amount = list_amount.copy()
    partial = np.nonzero(split & (rest > 0))[0]
    rest_amount[partial] = mul_div_round(
        unit_price[partial], rest[partial], factor[partial] * QTY_SCALE, plan.rounding
    )
    has_list = ~split | (rest > 0)
    counts = split.astype(np.int64) + has_list
    line = np.repeat(np.arange(batch.n_lines, dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    is_special = np.zeros(len(line), dtype=np.bool_)
    is_special[first[split]] = True
    row_qty = np.where(is_special, s_qty[line], rest[line])
    row_amount = np.where(is_special, s_amount[line], rest_amount[line])
    row_error = error[line]
    row_amount[row_error != LineError.OK] = 0
    rows_batch = CartBatch(
        carts=batch.carts,
        line_cart=batch.line_cart[line],
        line_ids=_take(batch.line_ids, line),
        line_skus=_take(batch.line_skus, line),
        line_qty_text=_take(batch.line_qty_text, line),
        line_units=_take(batch.line_units, line),
        sku=batch.sku[line],
        factor=batch.factor[line],
        qty=row_qty,
        error=row_error,
        manual_bp=None if batch.manual_bp is None else batch.manual_bp[line],
    )
    rows = Rows(
        batch=rows_batch, line=line, special=is_special, line_unit_price=unit_price, line_factor=factor, line_price_list=chosen,
        special_row=np.where(is_special, row[line], -1),
    )  # fmt: skip
    figures = (
        chosen[line],
        np.where(is_special, price_cart[line], unit_price[line]),
        np.where(is_special, 1, factor[line]),
        row_amount,
        row_error,
    )
    return rows, figures


def _take(values: Any, at: I64) -> Any:
    if isinstance(values, pl.Series):
        return values.gather(at)
    return [values[i] for i in at.tolist()]


def cart_stages(
    plan: Plan,
    batch: CartBatch,
    error: I64,
    net: I64,
    stopped: npt.NDArray[np.bool_],
    adjustments: Adjustments,
    cart_starts: I64,
    ledger: LedgerView | None,
    rule_money: CartMoney | None,
    special: npt.NDArray[np.bool_] | None = None,
) -> tuple[CartOutcome, Adjustments]:
    """Stages 5-9 on the running figures (``net`` is updated in place)."""
    state = Running(
        carts=batch.carts,
        line_cart=batch.line_cart,
        cart_starts=cart_starts,
        sku=np.maximum(batch.sku, 0),
        qty=batch.qty,
        net=net,
        eligible=error == LineError.OK,
        stopped=stopped,
        consumed=np.zeros(batch.n_lines, dtype=np.int64),
        adjustments=[adjustments],
        money=rule_money,
        budget_used=ledger.budget_used if ledger else {},  # read-only: passed through, not copied
        uses=ledger.uses if ledger else {},
        gift_stock_used=ledger.gift_stock_used if ledger else {},
        money_blocks=plan.money_in_promotions,
        special=special,
    )
    mode = plan.rounding
    rules = list(plan.stages.rules)

    def gifts_worth(effect: Effect, units: I64) -> I64:
        """Per cart: the list amount of ``units`` of the gift this member would give,
        priced at the break for that quantity (as stage 7 will price them)."""
        benefits = [
            b
            for b in (effect.rule.benefit, *effect.rule.step_benefits)
            if b is not None and b.kind == "gift"
        ]
        giving = np.nonzero(units > 0)[0]
        worth = np.zeros(state.n_carts, dtype=np.int64)
        if not benefits or len(giving) == 0:
            return worth
        skus = (
            effect.gift_sku[giving]
            if effect.gift_sku is not None
            else np.full(len(giving), benefits[0].gift_sku, dtype=np.int64)
        )
        _, _, _, amount, err = price_units(
            plan, batch, giving, np.maximum(skus, 0), units[giving] * QTY_SCALE
        )
        worth[giving] = np.where(err == LineError.OK, amount, 0)
        return worth

    run_sets(state, [r for r in rules if r.form != "order"], mode, gifts_worth)  # stage 5
    subtotal = run_orders(
        state, [r for r in rules if r.form == "order"], mode, gifts_worth
    )  # stage 6
    gifts, warnings = give_gifts(
        plan, batch, state, ledger.gift_stock_used if ledger else None
    )  # stage 7
    adjustments = Adjustments.concat(state.adjustments)
    floor = floor_amounts(plan.stages.floor, state, mode)  # stage 9
    clamped = np.zeros(batch.n_lines, dtype=np.bool_)
    flagged = np.zeros(batch.n_lines, dtype=np.bool_)
    if plan.stages.floor is not None and plan.stages.floor.policy == "clamp":
        adjustments, clamped = clamp_to_floor(state, adjustments, floor)
    elif plan.stages.floor is not None:
        flagged = (floor >= 0) & (state.net < floor)
    assert batch.manual_bp is not None
    manual, approval = manual_discounts(
        state, batch.manual_bp, plan.stages.approvals, floor, flagged, mode
    )
    approval.clamped = clamped
    adjustments = Adjustments.concat([adjustments, manual])
    switched_off = [
        (int(c), r.rule_id)
        for r in rules
        if r.caps.budget is not None or r.caps.uses_per_customer is not None
        for c in np.nonzero(state.switched_off(r))[0]
    ]
    # the same test stage 6 made (reached_step), before its caps, exclusive stops and groups
    reached = {
        r.rule_id: reached_step(state, r, subtotal[r.includes_special])[0] >= 0
        for r in rules
        if r.form == "order"
    }
    outcome = CartOutcome(
        gifts=gifts,
        warnings=warnings,
        hints=order_hints(state, rules, subtotal),
        approval=approval,
        switched_off=switched_off,
        order_reached=reached,
    )
    return outcome, adjustments


def order_hints(
    state: Running, rules: list[CartRule], subtotals: dict[bool, I64]
) -> list[tuple[int, int, int]]:
    """For each order promotion and cart: how much more spend reaches its next step (for
    ``order every``: the next full step, while its ``max N per order`` is not reached)."""
    hints: list[tuple[int, int, int]] = []
    # a cart whose currency the rules' money can't be converted into gets no hints
    convertible = (
        ~state.money.no_rate if state.money is not None else np.ones(state.n_carts, dtype=np.bool_)
    )
    for rule in rules:
        if rule.form != "order":
            continue
        cart_ok = state.cart_applies(rule) & convertible
        subtotal = subtotals[rule.includes_special]
        thresholds = thresholds_of(state, rule)
        if rule.order_kind == "every":
            step = np.maximum(thresholds[0], 1)
            times = subtotal // step
            room = (
                cart_ok
                if rule.caps.max_applications is None
                else cart_ok & (times < rule.caps.max_applications)
            )
            for c in np.nonzero(room)[0].tolist():
                hints.append((c, rule.rule_id, int((times[c] + 1) * step[c] - subtotal[c])))
            continue
        nxt = (thresholds <= subtotal[None, :]).sum(axis=0)
        carts = np.nonzero(cart_ok & (nxt < len(rule.thresholds)))[0]
        for c in carts.tolist():
            hints.append((c, rule.rule_id, int(thresholds[nxt[c], c] - subtotal[c])))
    return sorted(hints)

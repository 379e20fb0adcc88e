"""Order validation (SPEC §5) and what a committed order consumes.

``validate_order`` prices the order as ``/price`` does (against a ledger snapshot) and runs
every check at once; each finding has a stable ``code``, a ``severity`` (``error`` blocks a
commit, ``warning`` does not), the ``line`` it concerns (absent for order-wide findings),
a message and the figures involved. ``order_record`` turns the priced order into the
ledger rows a commit writes, each with the limit the ledger must not pass. Codes and
figures are listed in docs/orders.md.

Both read the typed result of pricing (``engine.results.responses.PricedCart``: integers in
minor units and thousandths, rule ids, special-price table rows), never the JSON quote:
the quote is written from the same result for the response only.

>>> from engine.core.data import DataSet
>>> from engine.api import compile_ruleset
>>> data = DataSet.from_rows([{"sku": "A", "base_unit": "pcs", "min_qty": "6"}], {"p": [{"sku": "A", "price": "2.00"}]})
>>> plan = compile_ruleset({"r.rule": 'ruleset "x" currency CNY\\npricelist "p" { table p }'}, data)
>>> v = validate_order(plan, data, None, {"id": "O1", "lines": [{"id": "1", "sku": "A", "qty": "2"}]})
>>> [(f["code"], f["line"], f["min_qty"]) for f in v.errors]
[('below_min_qty', '1', '6')]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from engine.api import price_carts
from engine.core.codes import ApprovalStatus, LineError
from engine.core.columns import scaled_column
from engine.core.data import DataSet
from engine.core.money import (
    BP_SCALE,
    QTY_DIGITS,
    MoneyError,
    format_money,
    format_percent,
    format_quantity,
    mul_div_round,
    parse_money,
    parse_quantity,
)
from engine.ledger.committed import Consumption, OrderLine, OrderRecord
from engine.ledger.view import LedgerView
from engine.plan.compiled import Plan
from engine.pricing.running import MANUAL_RULE
from engine.pricing.special import NONE
from engine.results.responses import PricedCart, Record, line_error, warning_message, write_response

#: order fields that are not part of the cart the engine prices
ORDER_ONLY = ("id", "referrer", "rebate_payment", "expected_total")
LINE_ONLY = ("expected_net",)


@dataclass
class Validation:
    order_id: str | None
    #: the priced order: what the checks and ``order_record`` read
    priced: PricedCart
    quote: dict[
        str, Any
    ]  # the JSON quote of the response, written from ``priced`` (never read back)
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    order_total: int = 0  # gross, minor units of the order currency
    rebate_applied: int = 0
    #: the customer's credit (credit_limit - outstanding + prepaid) and rebate balance from
    #: the accounts table, before what live orders took (None: not checked); a commit
    #: records its order total and rebate payment against these limits
    credit_limit: int | None = None
    rebate_balance: int | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(
        self, code: str, severity: str, message: str, line: str | None = None, **figures: Any
    ) -> None:
        finding: dict[str, Any] = {"code": code, "severity": severity}
        if line is not None:
            finding["line"] = line
        finding["message"] = message
        finding.update(figures)
        (self.errors if severity == "error" else self.warnings).append(finding)

    def body(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
            "quote": self.quote,
        }


def cart_of(order: Mapping[str, Any]) -> dict[str, Any]:
    """The order as the cart the engine prices (order-only fields left out)."""
    cart = {k: v for k, v in order.items() if k not in ORDER_ONLY}
    lines = order.get("lines")
    if isinstance(lines, list):
        cart["lines"] = [
            {k: v for k, v in line.items() if k not in LINE_ONLY}
            if isinstance(line, dict)
            else line
            for line in lines
        ]
    return cart


def special_table_name(plan: Plan) -> str | None:
    """The special-price table the ruleset declares (``special prices { table ... }``)."""
    return plan.special.table if plan.special is not None else None


def validate_order(
    plan: Plan, data: DataSet, ledger: LedgerView | None, order: Mapping[str, Any]
) -> Validation:
    """Price ``order`` against ``ledger`` and run every check of SPEC §5."""
    [priced] = price_carts(plan, [cart_of(order)], ledger=ledger)
    currency = priced.currency
    v = Validation(
        order_id=str(order["id"]) if order.get("id") is not None else None,
        quote=write_response(plan, priced),
        priced=priced,
    )
    for r in priced.lines:
        if r.error != LineError.OK:
            code, message = line_error(r)
            v.add(code, "error", message, line=r.line_id)
    lines = _priced_lines(priced, order)
    if lines.height:
        _catalog_checks(v, lines, data)
        _sellable(v, plan, lines, data, order)
        _stale_prices(v, lines, currency)
        _special_short(v, lines)
        _special_spent(v, plan, lines, data, ledger, order, priced.date)
        _stock_plan(v, plan, lines, data, ledger, order, priced.date)
    for r in priced.lines:
        if r.error != LineError.OK:
            continue
        if r.status == ApprovalStatus.NEEDS_APPROVAL:
            v.add(
                "needs_approval",
                "warning",
                f"line {r.line_id}: needs approval by {r.approval_level}",
                line=r.line_id,
                approval_level=r.approval_level,
            )
        elif r.status == ApprovalStatus.REJECTED:
            manual = format_percent(r.manual_bp) if r.manual_bp >= 0 else None
            v.add(
                "discount_rejected",
                "error",
                f"line {r.line_id}: the manual discount {manual} is not allowed",
                line=r.line_id,
                manual_discount=manual,
            )
    for w in priced.extras.warnings if priced.extras is not None else []:
        if w.code == "gift_short":
            v.add(
                "gift_short",
                "warning",
                warning_message(plan, w),
                rule=plan.rules[w.rule].name,
                sku=plan.catalog.skus[w.sku],
                earned=str(w.earned),
                given=str(w.given),
            )
    totals = priced.totals()
    gross = totals.gross
    expected_total = order.get("expected_total")
    if isinstance(expected_total, str) and _money_or_none(expected_total, currency) != totals.net:
        net = format_money(totals.net, currency)
        v.add(
            "price_changed",
            "error",
            f"the order's net total is {net}, not {expected_total}",
            expected=expected_total,
            actual=net,
        )
    v.rebate_applied = _rebate_payment(v, plan, data, ledger, order, gross, currency)
    v.order_total = gross - v.rebate_applied
    _credit(v, plan, data, ledger, order, currency)
    return v


def _money_or_none(text: str, currency: str) -> int | None:
    try:
        return parse_money(text, currency)
    except MoneyError:
        return None


def _priced_lines(priced: PricedCart, order: Mapping[str, Any]) -> pl.DataFrame:
    """The priced (not error) lines: id, sku, base qty (thousandths), net (minor units), the
    client's expected net and the special sub-line quantity (None: not split)."""
    expected = {
        str(line.get("id", i + 1)): line.get("expected_net")
        for i, line in enumerate(order.get("lines") or [])
        if isinstance(line, dict)
    }
    rows = [
        {
            "line": r.line_id,
            "sku": r.sku_text,
            "qty": r.base_qty,
            "net": r.net,
            "expected_net": expected.get(r.line_id),
            "special_qty": sum(s.base_qty for s in r.sublines if s.special)
            if r.sublines is not None
            else None,
        }
        for r in priced.lines
        if r.error == LineError.OK
    ]
    schema = {
        "line": pl.Utf8,
        "sku": pl.Utf8,
        "qty": pl.Int64,
        "net": pl.Int64,
        "expected_net": pl.Utf8,
        "special_qty": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)


def _fmt_qty(frame: pl.DataFrame, column: str) -> list[str]:
    return [format_quantity(q) for q in frame[column].to_list()]


_CATALOG_RULES: dict[int, tuple[pl.DataFrame, pl.DataFrame]] = {}


def _catalog_rules(catalog: pl.DataFrame) -> pl.DataFrame:
    """sku, min_qty, pack (thousandths; null: no rule), parsed once per catalog snapshot."""
    cached = _CATALOG_RULES.get(id(catalog))
    if cached is not None and cached[0] is catalog:
        return cached[1]
    rules = pl.DataFrame({"sku": catalog["sku"]})
    for c in ("min_qty", "pack"):
        if c in catalog.columns:
            values, ok = scaled_column(catalog[c].fill_null(""), QTY_DIGITS)  # blank: no rule
            rules = rules.with_columns(
                pl.when(pl.Series(ok))
                .then(pl.Series(values, dtype=pl.Int64))
                .otherwise(None)
                .alias(c)
            )
    if len(_CATALOG_RULES) > 8:
        _CATALOG_RULES.clear()
    _CATALOG_RULES[id(catalog)] = (catalog, rules)
    return rules


def _catalog_checks(v: Validation, lines: pl.DataFrame, data: DataSet) -> None:
    cols = [c for c in ("min_qty", "pack") if c in data.catalog.columns]
    if not cols:
        return
    rules = _catalog_rules(data.catalog)
    joined = lines.join(rules, on="sku", how="left")
    if "min_qty" in cols:
        below = joined.filter(pl.col("qty") < pl.col("min_qty"))
        for line, qty, least in zip(
            below["line"].to_list(), _fmt_qty(below, "qty"), _fmt_qty(below, "min_qty"), strict=True
        ):
            v.add(
                "below_min_qty",
                "error",
                f"line {line}: {qty} is below the minimum order quantity {least}",
                line=line,
                qty=qty,
                min_qty=least,
            )
    if "pack" in cols:
        off = joined.filter((pl.col("pack") > 0) & (pl.col("qty") % pl.col("pack") != 0))
        for line, qty, pack in zip(
            off["line"].to_list(), _fmt_qty(off, "qty"), _fmt_qty(off, "pack"), strict=True
        ):
            v.add(
                "not_pack_multiple",
                "error",
                f"line {line}: {qty} is not a multiple of the pack size {pack}",
                line=line,
                qty=qty,
                pack=pack,
            )


def _sellable(
    v: Validation, plan: Plan, lines: pl.DataFrame, data: DataSet, order: Mapping[str, Any]
) -> None:
    checks = plan.order_checks
    if checks.sellable_table is None or checks.sellable_by is None:
        return
    table = data.tables.get(checks.sellable_table)
    if table is None:
        return
    customer = order.get("customer") or {}
    value = customer.get(checks.sellable_by) if isinstance(customer, dict) else None
    column = f"customer_{checks.sellable_by}"
    allowed = (
        table.filter(pl.col(column) == str(value)).select("sku").unique()
        if value is not None
        else pl.DataFrame(schema={"sku": pl.Utf8})
    )
    outside = lines.join(allowed, on="sku", how="anti")
    who = (
        f"customer {checks.sellable_by} {value!r}"
        if value is not None
        else f"a customer without a {checks.sellable_by}"
    )
    for line, sku in zip(outside["line"].to_list(), outside["sku"].to_list(), strict=True):
        v.add(
            "not_sellable",
            "error",
            f"line {line}: {sku} is not in the assortment of {who}",
            line=line,
            sku=sku,
        )


def _stale_prices(v: Validation, lines: pl.DataFrame, currency: str) -> None:
    asked = lines.filter(pl.col("expected_net").is_not_null())
    for line, expected, net in zip(
        asked["line"].to_list(),
        asked["expected_net"].to_list(),
        asked["net"].to_list(),
        strict=True,
    ):
        if _money_or_none(expected, currency) != net:
            actual = format_money(net, currency)
            v.add(
                "price_changed",
                "error",
                f"line {line}: the net is {actual}, not {expected}",
                line=line,
                expected=expected,
                actual=actual,
            )


def _special_short(v: Validation, lines: pl.DataFrame) -> None:
    short = lines.filter(
        pl.col("special_qty").is_not_null() & (pl.col("special_qty") < pl.col("qty"))
    )
    for line, qty, special in zip(
        short["line"].to_list(), _fmt_qty(short, "qty"), _fmt_qty(short, "special_qty"), strict=True
    ):
        v.add(
            "quota_short", "warning", f"line {line}: the special-price quota covers {special} of {qty}; the rest is at the list price",
            line=line, qty=qty, special_qty=special,
        )  # fmt: skip


def _special_spent(
    v: Validation,
    plan: Plan,
    lines: pl.DataFrame,
    data: DataSet,
    ledger: LedgerView | None,
    order: Mapping[str, Any],
    date: dt.date,
) -> None:
    """``quota_short`` for a line not split at all because its special price's quota is
    used up (nothing left, or less than one unit's worth of the amount quota)."""
    name = special_table_name(plan)
    customer = order.get("customer") if isinstance(order.get("customer"), dict) else {}
    customer_id = customer.get("id") if customer else None
    if name is None or name not in data.tables or customer_id is None:
        return
    skus = set(data.tables[name].filter(pl.col("customer_id") == str(customer_id))["sku"].to_list())
    unsplit = lines.filter(pl.col("special_qty").is_null() & pl.col("sku").is_in(sorted(skus)))
    if not unsplit.height:
        return
    project = str(order["project"]) if order.get("project") is not None else None
    used_all = ledger.special_used if ledger is not None else {}
    for line, sku, qty in zip(
        unsplit["line"].to_list(), unsplit["sku"].to_list(), _fmt_qty(unsplit, "qty"), strict=True
    ):
        key, qty_quota, amount_quota, price = _special_row(
            plan, data, str(customer_id), project, sku, date
        )
        if price is None:
            continue
        used_qty, used_amount = used_all.get((str(customer_id), key, sku), (0, 0))
        spent = (qty_quota is not None and used_qty >= qty_quota) or (
            amount_quota is not None and amount_quota - used_amount < price
        )
        if spent:
            v.add("quota_short", "warning", f"line {line}: the special-price quota is used up; all {qty} are at the list price",
                  line=line, qty=qty, special_qty="0")  # fmt: skip


def _stock_plan(
    v: Validation,
    plan: Plan,
    lines: pl.DataFrame,
    data: DataSet,
    ledger: LedgerView | None,
    order: Mapping[str, Any],
    date: dt.date,
) -> None:
    checks = plan.order_checks
    if checks.stock_table is None or checks.stock_table not in data.tables:
        return
    customer = order.get("customer") or {}
    customer_id = customer.get("id") if isinstance(customer, dict) else None
    if customer_id is None:
        return
    month = date.strftime("%Y-%m")
    table = data.tables[checks.stock_table].filter(pl.col("customer_id") == str(customer_id))
    if "month" in table.columns:
        table = table.filter(pl.col("month").is_null() | (pl.col("month") == month))
    values, ok = scaled_column(table["qty"].fill_null(""), QTY_DIGITS)
    planned = (
        table.select("sku")
        .with_columns(planned=pl.Series(values, dtype=pl.Int64))
        .filter(pl.Series(ok))
        .group_by("sku")
        .agg(pl.col("planned").sum())
    )
    ordered = lines.group_by("sku").agg(
        pl.col("qty").sum().alias("ordered"), pl.col("line").first()
    )
    committed = pl.DataFrame(schema={"sku": pl.Utf8, "committed": pl.Int64})
    if ledger is not None and ledger.committed_lines is not None:
        start = date.replace(day=1)
        committed = (
            ledger.committed_lines.filter((pl.col("customer_id") == str(customer_id)) & (pl.col("date") >= start) & (pl.col("date") <= date))
            .group_by("sku").agg(pl.col("qty").sum().alias("committed"))
        )  # fmt: skip
    over = (
        ordered.join(planned, on="sku", how="inner").join(committed, on="sku", how="left")
        .with_columns(pl.col("committed").fill_null(0))
        .filter(pl.col("ordered") + pl.col("committed") > pl.col("planned")).sort("line")
    )  # fmt: skip
    severity = "error" if checks.stock_policy == "block" else "warning"
    for row in over.iter_rows(named=True):
        v.add(
            "exceeds_stock_plan", severity,
            f"{row['sku']}: {format_quantity(row['ordered'])} ordered + {format_quantity(row['committed'])} committed in {month} is above the plan of {format_quantity(row['planned'])}",
            line=row["line"], sku=row["sku"], month=month, planned=format_quantity(row["planned"]),
            committed=format_quantity(row["committed"]), ordered=format_quantity(row["ordered"]),
        )  # fmt: skip


def _account(plan: Plan, data: DataSet, order: Mapping[str, Any]) -> dict[str, Any] | None:
    table_name = plan.order_checks.credit_table
    if table_name is None or table_name not in data.tables:
        return None
    customer = order.get("customer") or {}
    customer_id = customer.get("id") if isinstance(customer, dict) else None
    rows = (
        data.tables[table_name].filter(pl.col("customer_id") == str(customer_id))
        if customer_id is not None
        else None
    )
    return rows.row(0, named=True) if rows is not None and rows.height else {}


def _figure(row: Mapping[str, Any], column: str, currency: str) -> int:
    text = row.get(column)
    if text is None or str(text).strip() == "":
        return 0
    return parse_money(str(text).strip(), currency)


def _customer_id(order: Mapping[str, Any]) -> str | None:
    customer = order.get("customer") or {}
    customer_id = customer.get("id") if isinstance(customer, dict) else None
    return str(customer_id) if customer_id is not None else None


def _rebate_payment(
    v: Validation,
    plan: Plan,
    data: DataSet,
    ledger: LedgerView | None,
    order: Mapping[str, Any],
    gross: int,
    currency: str,
) -> int:
    """How much of the requested rebate payment is accepted (``rebate_capped`` if less):
    within the ruleset's cap and what is left of the balance after live orders' payments."""
    asked_text = order.get("rebate_payment")
    if not isinstance(asked_text, str):
        return 0
    asked = parse_money(asked_text, currency)
    if asked <= 0:
        return 0  # a negative payment is refused before validation (bad_rebate_payment)
    bp = plan.order_checks.rebate_max_bp
    cap = 0 if bp is None else int(mul_div_round(gross, bp, BP_SCALE, plan.rounding))
    account = _account(plan, data, order)
    balance = None
    if account is not None and "rebate_balance" in account:
        v.rebate_balance = _figure(account, "rebate_balance", currency)
        customer_id = _customer_id(order)
        used = (
            ledger.rebate_used.get(customer_id, 0)
            if ledger is not None and customer_id is not None
            else 0
        )
        balance = max(0, v.rebate_balance - used)
    allowed = max(0, min(asked, cap) if balance is None else min(asked, cap, balance))
    if allowed < asked:
        why = (
            "rebate payment is not allowed by the ruleset"
            if bp is None
            else f"at most {format_money(cap, currency)} of this order"
        )
        if balance is not None and balance < cap:
            why = f"the rebate balance left is {format_money(balance, currency)}"
        v.add("rebate_capped", "warning", f"rebate payment {asked_text} reduced to {format_money(allowed, currency)}: {why}",
              requested=asked_text, allowed=format_money(allowed, currency))  # fmt: skip
    return allowed


def _credit(
    v: Validation,
    plan: Plan,
    data: DataSet,
    ledger: LedgerView | None,
    order: Mapping[str, Any],
    currency: str,
) -> None:
    """``credit_exceeded`` if the order total is above the credit limit - outstanding +
    prepaid, less the totals of live orders committed against it."""
    account = _account(plan, data, order)
    if account is None:
        return
    limit = _figure(account, "credit_limit", currency)
    v.credit_limit = (
        limit - _figure(account, "outstanding", currency) + _figure(account, "prepaid", currency)
    )
    customer_id = _customer_id(order)
    used = (
        ledger.credit_used.get(customer_id, 0)
        if ledger is not None and customer_id is not None
        else 0
    )
    available = v.credit_limit - used
    if v.order_total > available:
        total, avail = format_money(v.order_total, currency), format_money(available, currency)
        why = "" if account else " (the customer has no row in the accounts table)"
        v.add("credit_exceeded", "error", f"the order total {total} is above the available credit plus prepaid balance {avail}{why}",
              order_total=total, available=avail, committed=format_money(used, currency))  # fmt: skip


# ---- what a commit consumes ------------------------------------------------------------


def _special_row(
    plan: Plan, data: DataSet, customer: str, project: str | None, sku: str, date: dt.date
) -> tuple[str, int | None, int | None, int | None]:
    """(project key, qty quota, amount quota, price per base unit) of the special price a
    line gets (a row for its project wins over a row for any project); price None: none."""
    name = special_table_name(plan)
    if name is None or name not in data.tables:
        return project or "", None, None, None
    table = data.tables[name].filter((pl.col("customer_id") == customer) & (pl.col("sku") == sku))
    iso = date.isoformat()
    for column, keep in (
        ("valid_from", pl.col("valid_from") <= iso),
        ("valid_to", pl.col("valid_to") >= iso),
    ):
        if column in table.columns:
            table = table.filter(pl.col(column).is_null() | (pl.col(column) == "") | keep)
    if "project" in table.columns:
        exact = table.filter(pl.col("project") == (project or ""))
        table = (
            exact
            if exact.height
            else table.filter(pl.col("project").is_null() | (pl.col("project") == ""))
        )
    if not table.height:
        return project or "", None, None, None
    row = table.row(0, named=True)
    key = str(row.get("project") or "")
    qty = row.get("qty_quota")
    amount = row.get("amount_quota")
    return (
        key,
        parse_quantity(str(qty)) if qty not in (None, "") else None,
        parse_money(str(amount), plan.currency) if amount not in (None, "") else None,
        _money_or_none(str(row.get("price")), plan.currency),
    )


def order_record(
    plan: Plan, order: Mapping[str, Any], priced: PricedCart, checked: Validation | None = None
) -> OrderRecord:
    """The ledger rows a commit of ``order`` (priced as ``priced``; ``checked``: its
    validation, for what it takes of the customer's credit and rebate balance) writes.

    Every figure comes from the typed result: a promotion's budget is what its adjustments
    (by rule id) took off, its gift stock the whole units of its gift lines, a special
    price's quotas what its sub-lines took of the table row they were priced at."""
    currency = priced.currency
    customer = order.get("customer") if isinstance(order.get("customer"), dict) else {}
    customer_id = str(customer["id"]) if customer and customer.get("id") is not None else None
    project = str(order["project"]) if order.get("project") is not None else None
    lines: list[OrderLine] = []
    discounts: dict[int, int] = {}  # rule id -> what its adjustments took off
    special: dict[int, list[int]] = {}  # special-price row -> [qty, list amount]

    def take(part: Record, line_id: str, sub: int, sku: str) -> None:
        lines.append(
            OrderLine(
                line_id,
                sub,
                sku,
                part.base_qty,
                part.list_amount,
                part.list_amount - part.net,
                part.net,
                part.tax,
                part.special,
            )
        )
        for rule, _, amount, _ in part.adjustments:
            if rule != MANUAL_RULE:
                discounts[rule] = discounts.get(rule, 0) - amount
        if part.special:
            got = special.setdefault(part.special_row, [0, 0])
            got[0] += part.base_qty
            got[1] += part.list_amount

    for r in priced.lines:
        if r.error != LineError.OK:
            continue
        if r.sublines is not None:  # a split line: its rows carry the figures and adjustments
            for n, sub in enumerate(r.sublines, start=1):
                take(sub, r.line_id, n, r.sku_text)
        else:
            take(r, r.line_id, 0, r.sku_text)
    gifts: dict[int, int] = {}  # rule id -> whole units given
    for gift in priced.extras.gifts if priced.extras is not None else []:
        gifts[gift.rule] = gifts.get(gift.rule, 0) + gift.qty // 1000
    consumed: list[Consumption] = []
    for rule in sorted(set(discounts) | set(gifts), key=lambda rule: plan.rules[rule].name):
        name = plan.rules[rule].name  # the ledger's key for a promotion
        caps = plan.rule_caps[rule] if rule < len(plan.rule_caps) else None
        if (
            discounts.get(rule, 0) > 0
        ):  # never a negative budget row: that would free budget for others
            consumed.append(
                Consumption(
                    "budget",
                    promotion=name,
                    amount=discounts[rule],
                    limit_amount=caps.budget if caps else None,
                )
            )
        if gifts.get(rule):
            consumed.append(
                Consumption(
                    "gift_stock",
                    promotion=name,
                    qty=gifts[rule],
                    limit_qty=caps.gift_stock if caps else None,
                )
            )
        if (
            customer_id is not None and caps is not None and caps.uses_per_customer is not None
        ):  # only a limited use is counted
            consumed.append(
                Consumption(
                    "use",
                    promotion=name,
                    customer_id=customer_id,
                    qty=1,
                    limit_qty=caps.uses_per_customer,
                )
            )
    if special:
        table = plan.special
        assert table is not None  # a special sub-line was priced at one of its rows
        for row, (qty, amount) in sorted(
            special.items(), key=lambda item: (plan.catalog.skus[int(table.sku[item[0]])], item[0])
        ):
            qty_quota, amount_quota = int(table.qty_quota[row]), int(table.amount_quota[row])
            consumed.append(Consumption(
                "special", customer_id=customer_id, project=table.project[row], sku=plan.catalog.skus[int(table.sku[row])], qty=qty, amount=amount,
                limit_qty=None if qty_quota == NONE else qty_quota, limit_amount=None if amount_quota == NONE else amount_quota,
            ))  # fmt: skip
    if checked is not None and customer_id is not None:
        if checked.credit_limit is not None and checked.order_total > 0:
            consumed.append(
                Consumption(
                    "credit",
                    customer_id=customer_id,
                    amount=checked.order_total,
                    limit_amount=checked.credit_limit,
                )
            )
        if checked.rebate_applied > 0:
            consumed.append(
                Consumption(
                    "rebate_payment",
                    customer_id=customer_id,
                    amount=checked.rebate_applied,
                    limit_amount=checked.rebate_balance,
                )
            )
    totals = priced.totals()
    return OrderRecord(
        order_id=str(order["id"]), customer_id=customer_id, project=project,
        referrer=str(order["referrer"]) if order.get("referrer") is not None else None, date=priced.date, currency=currency,
        totals=(totals.list, -totals.discount, totals.net, totals.tax, totals.gross), response={}, lines=tuple(lines), consumption=tuple(consumed),
    )  # fmt: skip

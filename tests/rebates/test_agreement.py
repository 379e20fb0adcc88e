"""The batch engine agrees with the row-by-row reference (tests/rebates/reference.py) to the
cent: retroactive and incremental tiers by basis and by attainment, returns, special-price
exclusion, caps, minimum payouts, referrer commissions with caps, partner tiers."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from engine.api import compile_policies
from engine.batch.history import History, typed
from engine.batch.rebates import parse_period, run_policies
from engine.core.data import DataSet
from engine.core.money import format_money, format_percent, parse_money
from tests.rebates import reference as ref

CATEGORIES = ("reagent", "tool")
SKU_OF = {"reagent": "RG", "tool": "TL"}
DATA = DataSet.from_rows(
    [
        {"sku": "RG", "base_unit": "pcs", "category": "reagent"},
        {"sku": "TL", "base_unit": "pcs", "category": "tool"},
    ],
    {},
)
PERIOD = parse_period("2026-Q4")

money = st.integers(min_value=0, max_value=50_000_000)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[ref.Line], list[ref.Return]]:
    n = draw(st.integers(min_value=1, max_value=25))
    lines = []
    for _i in range(n):
        lines.append(
            ref.Line(
                order_id=f"O{draw(st.integers(0, 8))}",
                customer=draw(st.sampled_from(["D1", "D2", "D3"])),
                referrer=draw(st.sampled_from([None, "R1", "R2"])),
                category=draw(st.sampled_from(CATEGORIES)),
                net=draw(money),
                special=draw(st.booleans()),
            )
        )
    # an order belongs to one customer and one referrer
    owner = {ln.order_id: (ln.customer, ln.referrer) for ln in lines}
    lines = [
        ref.Line(
            ln.order_id,
            owner[ln.order_id][0],
            owner[ln.order_id][1],
            ln.category,
            ln.net,
            ln.special,
        )
        for ln in lines
    ]
    returns = []
    for _j in range(draw(st.integers(0, 6))):
        src = draw(st.sampled_from(lines))
        returns.append(
            ref.Return(
                order_id=src.order_id,
                customer=src.customer,
                category=src.category,
                net=draw(st.integers(0, 20_000_000)),
            )
        )
    return lines, returns


def history_of(lines: list[ref.Line], returns: list[ref.Return]) -> History:
    text_lines = pl.DataFrame(
        {
            "order_id": [ln.order_id for ln in lines],
            "line_id": [str(i) for i in range(len(lines))],
            "date": ["2026-11-15"] * len(lines),
            "customer_id": [ln.customer for ln in lines],
            "referrer": [ln.referrer for ln in lines],
            "sku": [SKU_OF[ln.category] for ln in lines],
            "qty": ["1"] * len(lines),
            "net_amount": [format_money(ln.net, "CNY") for ln in lines],
            "currency": ["CNY"] * len(lines),
            "special": ["true" if ln.special else "false" for ln in lines],
        }
    )
    text_returns = pl.DataFrame(
        {
            "return_id": [f"X{i}" for i in range(len(returns))],
            "order_id": [r.order_id for r in returns],
            "date": ["2026-12-01"] * len(returns),
            "customer_id": [r.customer for r in returns],
            "sku": [SKU_OF[r.category] for r in returns],
            "qty": ["1"] * len(returns),
            "net_amount": [format_money(r.net, "CNY") for r in returns],
        },
        schema={
            c: pl.String
            for c in ("return_id", "order_id", "date", "customer_id", "sku", "qty", "net_amount")
        },
    )
    from engine.batch.history import empty

    return History(
        lines=typed("order_lines", text_lines, "CNY").lazy(),
        returns=typed("returns", text_returns, "CNY").lazy(),
        events=empty("events"),
        source="test",
    )


@st.composite
def rebates(draw: st.DrawFn) -> ref.Rebate:
    by = draw(st.sampled_from(["basis", "attainment"]))
    k = draw(st.integers(1, 4))
    if by == "basis":
        thresholds = sorted(
            draw(st.lists(st.integers(0, 60_000_000), min_size=k, max_size=k, unique=True))
        )
    else:
        thresholds = sorted(
            draw(st.lists(st.integers(0, 20_000), min_size=k, max_size=k, unique=True))
        )
    rates = draw(st.lists(st.integers(0, 10_000), min_size=k, max_size=k))
    return ref.Rebate(
        category=draw(st.sampled_from([None, "reagent"])),
        minus_returns=draw(st.booleans()),
        includes_special=draw(st.booleans()),
        target=draw(st.integers(1, 80_000_000)) if by == "attainment" else None,
        mode=draw(st.sampled_from(["retroactive", "incremental"])),
        by=by,
        thresholds=tuple(thresholds),
        rates=tuple(rates),
        cap=draw(st.none() | st.integers(0, 1_000_000)),
        minimum=draw(st.none() | st.integers(0, 100_000)),
    )


def rule_text(p: ref.Rebate, rounding: str) -> str:
    where = f' where category == "{p.category}"' if p.category else ""
    basis = (
        f"basis net_amount{where}"
        + (" minus returns" if p.minus_returns else "")
        + (" includes special" if p.includes_special else "")
    )
    steps = "\n".join(
        f"    >= {format_percent(th) if p.by == 'attainment' else format_money(th, 'CNY')}: {format_percent(rate)}"
        for th, rate in zip(p.thresholds, p.rates, strict=True)
    )
    lines = [
        f'ruleset "t" currency CNY rounding {rounding}',
        'rebate "r" {',
        "  period quarter",
        f"  {basis}",
    ]
    if p.target is not None:
        lines.append(f"  target {format_money(p.target, 'CNY')}")
    lines += [f"  tiers {p.mode} by {p.by} {{", steps, "  }"]
    if p.cap is not None:
        lines.append(f"  cap {format_money(p.cap, 'CNY')} per customer")
    if p.minimum is not None:
        lines.append(f"  minimum payout {format_money(p.minimum, 'CNY')}")
    lines.append("}")
    return "\n".join(lines) + "\n"


@given(policy=rebates(), history=histories(), rounding=st.sampled_from(["half_up", "half_even"]))
def test_rebates_agree_with_reference(
    policy: ref.Rebate, history: tuple[list[ref.Line], list[ref.Return]], rounding: str
) -> None:
    lines, returns = history
    policies = compile_policies({"r.rule": rule_text(policy, rounding)}, DATA)
    result = run_policies(policies, history_of(lines, returns), PERIOD)
    got = {r["partner"]: parse_money(r["amount"], "CNY") for r in result.rows.iter_rows(named=True)}
    assert got == ref.rebate(policy, lines, returns, rounding)


@given(
    history=histories(),
    percent=st.integers(1, 10_000),
    cap_order=st.none() | st.integers(0, 2_000_000),
    cap_period=st.none() | st.integers(0, 5_000_000),
    rounding=st.sampled_from(["half_up", "half_even"]),
)
def test_commissions_agree_with_reference(
    history: tuple[list[ref.Line], list[ref.Return]],
    percent: int,
    cap_order: int | None,
    cap_period: int | None,
    rounding: str,
) -> None:
    lines, returns = history
    caps = (
        f"  cap {format_money(cap_order, 'CNY')} per order\n" if cap_order is not None else ""
    ) + (f"  cap {format_money(cap_period, 'CNY')} per period\n" if cap_period is not None else "")
    text = f'ruleset "t" currency CNY rounding {rounding}\ncommission "c" {{\n  period quarter\n  beneficiary referrer\n  earn {format_percent(percent)} of order\n{caps}}}\n'
    result = run_policies(
        compile_policies({"c.rule": text}, DATA), history_of(lines, returns), PERIOD
    )
    totals, per_order = ref.commission(
        ref.Commission(percent, cap_order, cap_period), lines, rounding
    )
    assert {
        r["partner"]: parse_money(r["amount"], "CNY") for r in result.rows.iter_rows(named=True)
    } == totals
    assert {
        r["order_id"]: parse_money(r["amount"], "CNY") for r in result.details.iter_rows(named=True)
    } == per_order


@given(
    history=histories(),
    gold=money,
    silver=money,
    leads=st.dictionaries(st.sampled_from(["D1", "D2", "D3", "P9"]), st.integers(0, 5), max_size=4),
    need=st.integers(0, 5),
)
def test_partner_tiers_agree_with_reference(
    history: tuple[list[ref.Line], list[ref.Return]],
    gold: int,
    silver: int,
    leads: dict[str, int],
    need: int,
) -> None:
    lines, _ = history
    text = (
        'ruleset "t" currency CNY\npartner tiers "p" {\n  period quarter\n'
        f'  level "Gold" when purchases >= {format_money(gold, "CNY")} and leads_submitted >= {need}\n'
        f'  level "Silver" when purchases >= {format_money(silver, "CNY")}\n  default "Bronze"\n}}\n'
    )
    events = pl.DataFrame(
        {
            "event_id": [f"E{p}{i}" for p, n in leads.items() for i in range(n)],
            "date": [dt.date(2026, 10, 3)] * sum(leads.values()),
            "partner_id": [p for p, n in leads.items() for _ in range(n)],
            "kind": ["lead_submitted"] * sum(leads.values()),
            "order_id": [None] * sum(leads.values()),
            "amount": [None] * sum(leads.values()),
        },
        schema={
            "event_id": pl.String,
            "date": pl.Date,
            "partner_id": pl.String,
            "kind": pl.String,
            "order_id": pl.String,
            "amount": pl.Int64,
        },
    )
    h = history_of(lines, [])
    h = History(lines=h.lines, returns=h.returns, events=events.lazy(), source="test")
    result = run_policies(compile_policies({"p.rule": text}, DATA), h, PERIOD)
    expected = ref.tier(
        [("Gold", gold, need), ("Silver", silver, 0)],
        "Bronze",
        lines,
        {p: n for p, n in leads.items() if n},
    )
    assert {r["partner"]: r["step"] for r in result.rows.iter_rows(named=True)} == expected

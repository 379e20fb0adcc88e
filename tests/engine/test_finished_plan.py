"""A finished plan: compiling builds every table a quote reads; pricing only reads.

Issue 9, item 3. Before, the per-signature ``[sku, cell] -> program`` tables of the line
index, the small path's Python tables and the converted prices were built on first use
and kept on the plan, so the first quote of each new customer context paid for them.
Now ``dsl.compile`` finishes the plan (``engine.pricing.small_path.finish``) and these
tests count what pricing builds: nothing.

The small ruleset, by hand (CNY, no tax; A lists at 20.00, B at 30.00):

* "gold 10%": ``customer.tier == "gold"``, on SKU A;
* "not HK 5%": valid 2026-01-01 .. 2026-12-31, ``customer.region not in ("HK")``, on
  lines with ``qty >= 2``, after "gold 10%".

| cart | tier, region, date | line | list | gold | not HK | net |
| --- | --- | --- | --- | --- | --- | --- |
| G | gold, east, 2026-11-22 | 2 A | 40.00 | -4.00 | -1.80 | 34.20 |
| G | | 1 B | 30.00 | | | 30.00 |
| P | platinum, HK, 2026-11-22 | 2 A | 40.00 | | | 40.00 |
| N | (none), (none), 2026-03-01 | 3 A | 60.00 | | -3.00 | 57.00 |
| L | (none), (none), 2027-01-05 | 3 A | 60.00 | | | 60.00 |

Its context space: region {HK, other} x tier {gold, other} x date {before 2026-01-01,
in 2026, from 2027-01-01} = 12 contexts; the signatures are (gold or not) x (not-HK
window holds or not) = 4 tables.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import engine.plan.line_index as line_index_module
from engine.api import compile_ruleset, load_sources, price_frames, quote, quote_batch
from engine.core.data import DataSet
from engine.core.money import convert_minor, parse_money
from engine.plan.compiled import Plan
from engine.plan.line_index import LineRuleIndex
from engine.pricing.small_path import SmallPath, small_path

ROOT = Path(__file__).resolve().parents[2]

RULESET = """\
ruleset "finished" currency CNY timezone "Asia/Shanghai" rounding half_up
pricelist "standard" priority 0 { table standard_prices }
promotion "gold 10%" priority 20 {
  when customer.tier == "gold"
  each line where sku == "A": percent_off 10%
}
promotion "not HK 5%" priority 10 {
  valid 2026-01-01 .. 2026-12-31
  when customer.region not in ("HK")
  each line where qty >= 2: percent_off 5%
}
"""

CATALOG = [{"sku": "A", "base_unit": "pcs"}, {"sku": "B", "base_unit": "pcs"}]
PRICES = [{"sku": "A", "price": "20.00"}, {"sku": "B", "price": "30.00"}]


def cart(date: str, customer: dict[str, str], lines: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "date": date,
        "customer": customer,
        "lines": [{"id": str(i + 1), "sku": sku, "qty": qty} for i, (sku, qty) in enumerate(lines)],
    }


GOLD = cart("2026-11-22", {"id": "C1", "tier": "gold", "region": "east"}, [("A", "2"), ("B", "1")])
PLATINUM_HK = cart("2026-11-22", {"id": "C2", "tier": "platinum", "region": "HK"}, [("A", "2")])
NOBODY_2026 = cart("2026-03-01", {"id": "C3"}, [("A", "3")])
NOBODY_2027 = cart("2027-01-05", {"id": "C4"}, [("A", "3")])
EXPECTED = {
    "C1": [("34.20", ["gold 10%", "not HK 5%"]), ("30.00", [])],
    "C2": [("40.00", [])],
    "C3": [("57.00", ["not HK 5%"])],
    "C4": [("60.00", [])],
}


def nets(answer: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [
        (line["net_amount"], [a["rule"] for a in line.get("adjustments", ())])
        for line in answer["lines"]
    ]


@pytest.fixture(scope="module")
def small_plan() -> Plan:
    data = DataSet.from_rows(CATALOG, {"standard_prices": PRICES})
    return compile_ruleset({"rules/finished.rule": RULESET}, data)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Counts every table build and every small-path construction while a test prices."""
    counts = {"tables": 0, "small": 0}
    build_table = LineRuleIndex._build_table
    small_init = SmallPath.__init__

    def counting_build(self: LineRuleIndex, active: Any) -> Any:
        counts["tables"] += 1
        return build_table(self, active)

    def counting_init(self: SmallPath, plan: Plan) -> None:
        counts["small"] += 1
        small_init(self, plan)

    monkeypatch.setattr(LineRuleIndex, "_build_table", counting_build)
    monkeypatch.setattr(SmallPath, "__init__", counting_init)
    yield counts


def test_compiling_builds_every_signature_table(small_plan: Plan) -> None:
    index = small_plan.line_index
    assert index.space.sizes == (2, 2, 3)  # customer.region, customer.tier, date
    assert index.space.size == 12
    assert index.finished is not None
    assert index.built_tables() == 4
    assert index.table().shape == (4 * index.n_sku * index.n_cells,)
    assert small_path(small_plan) is small_plan.small
    assert not hasattr(small_plan, "scratch")


def test_every_new_context_prices_without_building_anything(
    small_plan: Plan, builds: dict[str, int]
) -> None:
    index = small_plan.line_index
    table, programs = index.table(), len(index.programs.slots)
    for c in (GOLD, PLATINUM_HK, NOBODY_2026, NOBODY_2027):
        assert nets(quote(small_plan, c)) == EXPECTED[c["customer"]["id"]]
    answers = quote_batch(small_plan, [GOLD, PLATINUM_HK, NOBODY_2026, NOBODY_2027])
    assert [nets(a) for a in answers] == list(EXPECTED.values())
    assert builds == {"tables": 0, "small": 0}
    assert index.table() is table
    assert len(index.programs.slots) == programs
    assert index.on_demand.tables == [] and index.on_demand.slot_of_code == {}


def test_a_value_no_rule_names_is_the_same_context_as_none(small_plan: Plan) -> None:
    space = small_plan.line_index.space
    day = dt.date(2026, 11, 22).toordinal()
    assert space.code(("HK", "platinum", day)) == space.code(("HK", None, day))
    assert (
        space.code(("east", "gold", day))
        == space.code(("west", "gold", day))
        == space.code((None, "gold", day))
    )
    assert space.code(("HK", "gold", day)) != space.code(("east", "gold", day))
    # the window's edges split the date axis exactly where it opens and closes
    first, last = dt.date(2026, 1, 1).toordinal(), dt.date(2026, 12, 31).toordinal()
    assert (
        space.code((None, None, first - 1))
        != space.code((None, None, first))
        == space.code((None, None, last))
    )
    assert space.code((None, None, last)) != space.code((None, None, last + 1))


# ---- the demo ruleset -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> tuple[dict[str, str], DataSet, list[dict[str, Any]]]:
    from bench.full import demo_carts
    from server.demo import generate

    tables = generate()
    catalog = tables.pop("catalog")
    data = DataSet(catalog=catalog, tables=tables)
    sources = {str(Path(p).relative_to(ROOT)): s for p, s in load_sources(ROOT / "rules").items()}
    carts = demo_carts(tables, 60, seed=11)
    # every customer context: the demo's customers, some with a segment, in both currencies, across the windows
    for k, c in enumerate(carts):
        if k % 3 == 0:
            c["customer"]["segment"] = "installer"
        if k % 4 == 1:
            c["currency"] = "USD"
        if k % 5 == 2:
            c["date"] = "2027-03-01"
    return sources, data, carts


def test_the_demo_plan_prices_every_cart_without_building(
    demo: Any, builds: dict[str, int]
) -> None:
    sources, data, carts = demo
    plan = compile_ruleset(sources, data)
    index = plan.line_index
    before = (index.finished, index.table(), len(index.programs.slots), plan.small)
    converted = [
        (p.converted.keys(), [id(a) for a in p.converted.values()]) for p in plan.pricelists
    ]
    line_converted = dict(index.converted)
    assert index.finished is not None and index.built_tables() >= 1
    assert any(p.converted for p in plan.pricelists) and line_converted  # CNY <-> USD rates
    builds.update(tables=0, small=0)  # compiling built them; from here on, nothing may
    for c in carts:
        quote(plan, c)
    quote_batch(plan, carts)
    assert builds == {"tables": 0, "small": 0}
    assert (index.finished, index.table(), len(index.programs.slots), plan.small) == before
    assert [
        (p.converted.keys(), [id(a) for a in p.converted.values()]) for p in plan.pricelists
    ] == converted
    assert index.converted == line_converted
    assert index.on_demand.tables == []


def test_converted_prices_are_the_per_row_conversion(demo: Any) -> None:
    sources, data, _ = demo
    plan = compile_ruleset(sources, data)
    checked = 0
    for p in plan.pricelists:
        for (dst, num, den), prices in p.converted.items():
            expected = [
                convert_minor(int(v), (num, den), p.currency, dst, plan.rounding)
                for v in p.row_price.tolist()
            ]
            assert prices.tolist() == expected
            checked += 1
    assert checked > 0


def test_the_on_demand_fallback_gives_the_same_answers_from_many_threads(
    demo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over ``MAX_CONTEXTS`` the compiler leaves the tables to ``OnDemandTables``: built on
    first use under its lock. Four threads pricing at once get the finished plan's answers."""
    sources, data, carts = demo
    finished = compile_ruleset(sources, data)
    expected = quote_batch(finished, carts)
    monkeypatch.setattr(line_index_module, "MAX_CONTEXTS", 0)
    fallback = compile_ruleset(sources, data)
    assert fallback.line_index.finished is None
    results: dict[int, list[dict[str, Any]]] = {}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            results[k] = [quote(fallback, copy.deepcopy(c)) for c in carts]
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    for k in range(4):
        assert results[k] == expected
    assert quote_batch(fallback, carts) == expected
    on_demand = fallback.line_index.on_demand
    assert 1 <= len(on_demand.tables) <= finished.line_index.built_tables()
    assert len(set(on_demand.slot_of_signature.values())) == len(on_demand.tables)


def test_price_frames_reads_the_finished_tables(demo: Any, builds: dict[str, int]) -> None:
    from bench.full import demo_frames, without_manual_discounts

    sources, data, carts = demo
    plan = compile_ruleset(sources, data)
    builds.update(tables=0, small=0)
    # the frames carry no segment and no currency: price the carts that need neither
    local = [
        c
        for c in without_manual_discounts(carts)
        if "currency" not in c and "segment" not in c["customer"]
    ]
    priced = price_frames(plan, *demo_frames(local))
    assert builds["tables"] == 0
    batch_nets = [
        parse_money(line["net_amount"], a["currency"]) if line.get("status") == "ok" else None
        for a in quote_batch(plan, local)
        for line in a["lines"]
    ]
    assert priced["net_amount_minor"].to_list() == batch_nets


def test_shared_entries_give_the_per_signature_tables_programs(demo: Any) -> None:
    """``finish`` builds every table from one sorted entry list; each must hold, slot by
    slot, the program the per-signature builder (the one the fallback uses) gives."""
    sources, data, _ = demo
    plan = compile_ruleset(sources, data)
    index = plan.line_index
    entries = index._entries()
    assert entries is not None
    active = index.space.signatures(index.conj_cart)
    size = index.n_sku * index.n_cells
    slots = index.programs.slots
    for row in range(0, len(active), 7):
        shared = index._table_from_entries(active[row], *entries)
        alone = index._build_table(active[row])
        assert [slots[p] for p in shared.tolist()] == [slots[p] for p in alone.tolist()]
        slot = int(index.finished.context_slot[row]) if index.finished is not None else -1
        assert index.table()[slot * size : (slot + 1) * size].tolist() == shared.tolist()

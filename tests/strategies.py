"""Hypothesis strategies for pricing cases: a small catalog, rules as source text, data, carts.

Everything drawn stays inside what the static checker accepts and what the oracle
(``tests.reference``) decides: tiers ascending and in base units, money literals only in
the ruleset currency (CNY, JPY or BHD, so minor units of 2, 0 and 3 digits); carts in
another currency convert the rules' money at the cart date's rate.

``cases(stages59=True)`` adds what docs/promotions.md covers: combos and pools (every
form of benefit, ``max N per order``, ``cheapest first``), order promotions (threshold,
tiers, every; percent, amount, gift), gifts with their caps, money caps and usage limits
on every kind of promotion, exclusive and best-of groups in each stage, floors (clamp or
flag), approval bands with manual discounts on cart lines, and bundles. It leaves out
what the checker refuses (a percent under ``order every``) and what the oracle leaves
undecided or decides without the docs' word: a group whose members sit in different
stages, and a budget on a gift promotion. A floor on a cart in another currency is drawn
only with ``foreign_floors=True`` (tests/engine/test_floors.py).

>>> from hypothesis import find
>>> case = find(cases(), lambda c: len(c.carts) == 1)
>>> sorted(case.sources)[0].endswith(".rule")
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from hypothesis import strategies as st

from engine.core.data import DataSet
from engine.core.money import format_money

RULESET_CURRENCIES = ("CNY", "CNY", "JPY", "BHD")
FOREIGN_CURRENCY = "USD"
#: Rates both ways between the foreign currency and each ruleset currency.
FX_FROM_FOREIGN = {"CNY": ("7.1234", "6.9"), "JPY": ("150.25", "149.5"), "BHD": ("0.376",)}
FX_TO_FOREIGN = {
    "CNY": ("0.1385", "0.14", "0.1407"),
    "JPY": ("0.0067", "0.00665"),
    "BHD": ("2.6596",),
}

SKU_NAMES = ("A", "B", "C", "D", "E", "F", "G", "H")
CUSTOMER_IDS = ("D1", "D2", "D3")
TIERS = ("gold", "silver", "bronze")
REGIONS = ("CN", "HK", "US")
CATEGORIES = ("tools", "parts", "reagent")
BRANDS = ("acme", "zeta")
TAX_CLASSES = ("std", "reduced")
COLORS = ("red", "blue")

# Names chosen so that sorting by name exercises case, digits and non-ASCII.
LIST_NAMES = ("standard", "gold", "Gold", "list 10", "list 9", "été", "Zed")
PROMO_NAMES = ("ten", "five", "A 10%", "a 10%", "B promo", "vol", "促销", "x10", "x9", "Zz")

WINDOWS = (
    ("2026-11-01", "2026-11-30"),
    ("2026-11-15", "2026-11-15"),
    ("2026-10-01", "2026-11-14"),
    ("2026-12-01", "2026-12-31"),
)
CART_DATES = (
    "2026-10-31",
    "2026-11-01",
    "2026-11-14",
    "2026-11-15",
    "2026-11-30",
    "2026-12-01",
    "2026-11-30T17:30:00+01:00",  # 2026-12-01 in Shanghai
    "2026-11-14T23:59:59+07:00",  # 2026-11-15 in Shanghai
    "2026-11-15T01:00:00+08:00",
)
AWKWARD_QTYS = (
    "1",
    "2",
    "3",
    "0.001",
    "3.333",
    "12",
    "24",
    "100",
    "0.5",
    "10.250",
    "144",
    "999999",
    "1000000000",
    "1000000000.001",  # the one-billion limit
    "05",
    ".5",
    "+2",
    " 3 ",
    "2.500",
    "1e3",  # odd but decimal
    "0",
    "-1",
    "1.0005",
    "abc",
    "",  # bad quantities
)

# Money pools in minor units, written out in whatever currency the case uses.
PRICES = (1, 99, 999, 1000, 1999, 3333, 10000, 123456, 2000000)
AMOUNTS_OFF = (1, 50, 100, 333, 25000)
FIXED_PRICES = (1, 100, 999, 1500, 1999)
AMOUNT_THRESHOLDS = (1000, 5000, 9999, 10000, 100000)
TIER_AMOUNTS = (0, 1000, 5000, 10000, 50000, 100000)
PERCENTS = ("5%", "10%", "12.5%", "33.33%", "0.01%", "100%")  # 0% is refused (E0205)
TAX_RATES = ("13%", "9", "6%", "0", "12.5%")


@dataclass(frozen=True)
class Case:
    """One generated ruleset with its data and a batch of carts."""

    blocks: tuple[str, ...]  # declarations, as source text, in drawn order
    sources: dict[str, str]  # the blocks laid out in files
    catalog: tuple[dict[str, Any], ...]
    tables: dict[str, tuple[dict[str, Any], ...]]
    carts: tuple[dict[str, Any], ...]
    #: what committed orders consumed, in the oracle's shape (``special_consumed``); None: nothing
    ledger: dict[str, Any] | None = None

    @property
    def data(self) -> DataSet:
        return DataSet.from_rows(self.catalog, {k: list(v) for k, v in self.tables.items()})

    def __repr__(self) -> str:  # what hypothesis prints for a falsifying example
        out = ["Case("]
        for path, text in self.sources.items():
            out.append(f"--- {path}\n{text}")
        out.append(f"catalog = {list(self.catalog)!r}")
        for name, rows in self.tables.items():
            out.append(f"table {name} = {list(rows)!r}")
        for cart in self.carts:
            out.append(f"cart = {cart!r}")
        if self.ledger:
            out.append(f"ledger = {self.ledger!r}")
        out.append(")")
        return "\n".join(out)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis prints with this
        printer.text(repr(self))


def quote_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def string_set(values: tuple[str, ...] | list[str]) -> str:
    return "(" + ", ".join(quote_text(v) for v in values) + ")"


def lay_out(
    blocks: tuple[str, ...] | list[str], assignment: list[int], names: list[str]
) -> dict[str, str]:
    """Put block i in file ``names[assignment[i]]``, keeping the blocks' order in each file."""
    files: dict[str, list[str]] = {}
    for block, index in zip(blocks, assignment, strict=True):
        files.setdefault(names[index], []).append(block)
    return {name: "\n\n".join(parts) + "\n" for name, parts in files.items()}


FILE_NAMES = ("a.rule", "prices.rule", "promo/b.rule", "promo/a.rule", "z.rule")


@st.composite
def layouts(draw: st.DrawFn, blocks: tuple[str, ...]) -> dict[str, str]:
    """The blocks, reordered and spread over 1-3 files with drawn names."""
    order = draw(st.permutations(list(blocks)))
    count = draw(st.integers(1, 3))
    names = draw(st.lists(st.sampled_from(FILE_NAMES), min_size=count, max_size=count, unique=True))
    assignment = [draw(st.integers(0, count - 1)) for _ in order]
    return lay_out(order, assignment, names)


# ---- catalog -----------------------------------------------------------------------------


@st.composite
def catalogs(draw: st.DrawFn, bundles: bool = False) -> tuple[dict[str, Any], ...]:
    n = draw(st.integers(3, 8))
    all_box = draw(st.booleans())
    rows = []
    for sku in SKU_NAMES[:n]:
        row: dict[str, Any] = {
            "sku": sku,
            "base_unit": draw(st.sampled_from(("pcs", "pcs", "m"))),
            "category": draw(st.sampled_from(CATEGORIES)),
            "brand": draw(st.sampled_from((*BRANDS, None))),
            "tax_class": draw(st.sampled_from((*TAX_CLASSES, None))),
            "color": draw(st.sampled_from((*COLORS, None))),
        }
        if all_box or draw(st.booleans()):
            box = draw(st.sampled_from((6, 12)))  # `qty >= 2 box` is compared per SKU
            units = {"box": box}
            if draw(st.booleans()):
                units["case"] = box * 12
            row["units"] = units
        rows.append(row)
    if bundles and draw(st.booleans()):
        # a bundle over 2-3 of the other SKUs, ratios in declared order
        bundle = rows[draw(st.integers(0, n - 1))]
        others = [r["sku"] for r in rows if r is not bundle]
        parts = draw(st.lists(st.sampled_from(others), min_size=2, max_size=3, unique=True))
        bundle["components"] = [
            {"sku": sku, "ratio": draw(st.sampled_from((1, 1, 2, 3)))} for sku in parts
        ]
    return tuple(rows)


def units_of(row: dict[str, Any]) -> dict[str, int]:
    return dict(row.get("units") or {})


def some_sku_has_box(catalog: tuple[dict[str, Any], ...]) -> bool:
    return any("box" in units_of(r) for r in catalog)


# ---- conditions ----------------------------------------------------------------------------


def context_atoms() -> st.SearchStrategy[str]:
    tiers = st.lists(st.sampled_from(TIERS), min_size=1, max_size=2, unique=True)
    regions = st.lists(st.sampled_from(REGIONS), min_size=1, max_size=2, unique=True)
    ids = st.lists(st.sampled_from(CUSTOMER_IDS), min_size=1, max_size=2, unique=True)
    return st.one_of(
        st.sampled_from(TIERS).map(lambda v: f"customer.tier == {quote_text(v)}"),
        st.sampled_from(TIERS).map(lambda v: f"customer.tier != {quote_text(v)}"),
        tiers.map(lambda vs: f"customer.tier in {string_set(vs)}"),
        tiers.map(lambda vs: f"customer.tier not in {string_set(vs)}"),
        st.sampled_from(REGIONS).map(lambda v: f"customer.region == {quote_text(v)}"),
        regions.map(lambda vs: f"customer.region in {string_set(vs)}"),
        ids.map(lambda vs: f"customer.id in {string_set(vs)}"),
        st.sampled_from(CUSTOMER_IDS).map(lambda v: f"customer.id != {quote_text(v)}"),
        st.just('customer.group == "south"'),
        st.just('customer.segment == "x"'),
        st.just('channel == "mall"'),
        st.just('trade_term != "FOB"'),
        st.just('project == "P-1"'),
        st.sampled_from(("==", "!=")).map(lambda op: f'currency {op} "{FOREIGN_CURRENCY}"'),
        st.sampled_from(("<", ">=", "==")).map(lambda op: f"date {op} 2026-11-15"),
    )


def money_text(currency: str) -> st.SearchStrategy[str]:
    """What follows a money literal: nothing, or the ruleset currency."""
    return st.sampled_from(("", f" {currency}"))


def line_atoms(catalog: tuple[dict[str, Any], ...], currency: str) -> st.SearchStrategy[str]:
    skus = [r["sku"] for r in catalog]
    categories = sorted({r["category"] for r in catalog})
    brands = sorted({r["brand"] for r in catalog if r["brand"]}) or list(BRANDS)
    sku_sets = st.lists(st.sampled_from(skus), min_size=1, max_size=3, unique=True)
    qty_ops = st.sampled_from(("<", "<=", ">", ">=", "==", "!="))
    qty_values = st.sampled_from(("0.001", "1", "2.5", "3.333", "10", "12", "24", "100"))
    atoms = [
        st.sampled_from(skus).map(lambda v: f"sku == {quote_text(v)}"),
        sku_sets.map(lambda vs: f"sku in {string_set(vs)}"),
        sku_sets.map(lambda vs: f"sku not in {string_set(vs)}"),
        st.sampled_from(categories).map(lambda v: f"category == {quote_text(v)}"),
        st.sampled_from(categories).map(lambda v: f"category != {quote_text(v)}"),
        st.sampled_from(brands).map(lambda v: f"brand == {quote_text(v)}"),
        st.lists(st.sampled_from(brands), min_size=1, max_size=2, unique=True).map(
            lambda vs: f"brand not in {string_set(vs)}"
        ),
        st.sampled_from(TAX_CLASSES).map(lambda v: f"tax_class == {quote_text(v)}"),
        st.sampled_from(COLORS).map(lambda v: f"item.color == {quote_text(v)}"),
        st.sampled_from(COLORS).map(lambda v: f"item.color != {quote_text(v)}"),
        st.lists(qty_values, min_size=1, max_size=3, unique=True).map(
            lambda vs: f"qty in ({', '.join(vs)})"
        ),
        st.tuples(qty_ops, qty_values).map(lambda p: f"qty {p[0]} {p[1]}"),
        st.tuples(
            st.sampled_from(("<", ">=")),
            st.sampled_from(AMOUNT_THRESHOLDS),
            money_text(currency),
        ).map(lambda p: f"amount {p[0]} {format_money(p[1], currency)}{p[2]}"),
        context_atoms(),
    ]
    if some_sku_has_box(catalog):  # a SKU without boxes never matches these, even under `not`
        atoms.append(
            st.tuples(
                st.sampled_from(("<", ">=", "==", "!=")), st.sampled_from(("1", "2", "0.5"))
            ).map(lambda p: f"qty {p[0]} {p[1]} box")
        )
        atoms.append(st.just("qty in (1 box, 2 box)"))
    return st.one_of(*atoms)


def conditions(atoms: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """and / or / not over the atoms, parenthesised so the text parses as drawn."""

    def combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        group = st.lists(children, min_size=2, max_size=3)
        return st.one_of(
            group.map(lambda cs: " and ".join(f"({c})" for c in cs)),
            group.map(lambda cs: " or ".join(f"({c})" for c in cs)),
            children.map(lambda c: f"not ({c})"),
        )

    return st.recursive(atoms, combine, max_leaves=4)


CONTEXT_CONDITIONS = conditions(context_atoms())


# ---- price lists -------------------------------------------------------------------------


#: Cart fields a price table may be keyed by, and the values its key column takes.
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "customer.id": CUSTOMER_IDS,
    "customer.tier": TIERS,
    "channel": ("mall", "admin"),
}


@st.composite
def price_rows(
    draw: st.DrawFn,
    catalog: tuple[dict[str, Any], ...],
    key: str | None,
    coverage: float,
    currency: str,
    from_zero: bool = False,
) -> list[dict[str, Any]]:
    """Rows for about ``coverage`` of the SKUs, with quantity breaks, units and keys."""
    rows: list[dict[str, Any]] = []
    for item in catalog:
        if coverage < 1 and not draw(st.booleans()):
            continue
        key_values: tuple[str | None, ...] = (None,)
        if key is not None:
            key_values = tuple(
                draw(
                    st.lists(st.sampled_from(KEY_FIELDS[key]), min_size=1, max_size=2, unique=True)
                )
            )
        for key_value in key_values:
            breaks = draw(
                st.lists(
                    st.sampled_from(("0", "2.5", "10", "24", "120")),
                    min_size=1,
                    max_size=3,
                    unique=True,
                )
            )
            if from_zero and "0" not in breaks:
                breaks.insert(0, "0")  # every quantity finds a row
            for min_qty in breaks:
                price = format_money(draw(st.sampled_from(PRICES)), currency)
                row: dict[str, Any] = {"sku": item["sku"], "price": price}
                if key is not None:
                    row[key.replace(".", "_")] = key_value
                if min_qty != "0" or draw(st.booleans()):
                    row["min_qty"] = min_qty
                unit = draw(st.sampled_from((None, item["base_unit"], *units_of(item))))
                if unit is not None:
                    row["unit"] = unit
                rows.append(row)
    return rows


def pricelist_text(
    name: str,
    priority: int,
    table: str,
    *,
    when: str | None = None,
    valid: tuple[str, str] | None = None,
    currency: str | None = None,
    includes_tax: bool = False,
    key: str | None = None,
) -> str:
    body = []
    if when:
        body.append(f"when {when}")
    if valid:
        body.append(f"valid {valid[0]} .. {valid[1]}")
    if currency:
        body.append(f"currency {currency}")
    if includes_tax:
        body.append("includes tax")
    body.append(f"table {table}" + (f" keyed by {key}" if key else ""))
    inner = "\n".join("  " + b for b in body)
    return f"pricelist {quote_text(name)} priority {priority} {{\n{inner}\n}}"


# ---- promotions --------------------------------------------------------------------------


@cache
def benefits(currency: str) -> st.SearchStrategy[str]:
    def money(minor: int) -> str:
        return format_money(minor, currency)

    return st.one_of(
        st.sampled_from(PERCENTS).map(lambda p: f"percent_off {p}"),
        st.tuples(
            st.sampled_from(AMOUNTS_OFF), money_text(currency), st.sampled_from(("", " per unit"))
        ).map(lambda p: f"amount_off {money(p[0])}{p[1]}{p[2]}"),
        st.tuples(st.sampled_from(FIXED_PRICES), money_text(currency)).map(
            lambda p: f"fixed_price {money(p[0])}{p[1]}"
        ),
    )


@st.composite
def tiers(draw: st.DrawFn, currency: str) -> str:
    # Tier thresholds count base units; the checker refuses `>= 1 box` there (E0304).
    measure = draw(st.sampled_from(("qty", "amount")))
    if measure == "qty":
        pool = ("0", "1", "2.5", "5", "10", "24", "100")
        picked = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
        picked.sort(key=float)
    else:
        suffix = draw(money_text(currency))
        minors = sorted(
            draw(st.lists(st.sampled_from(TIER_AMOUNTS), min_size=1, max_size=3, unique=True))
        )
        picked = [format_money(m, currency) + suffix for m in minors]
    steps = " ".join(f">= {v}: {draw(benefits(currency))}" for v in picked)
    return f"tiers by {measure} {{ {steps} }}"


@st.composite
def promotions(
    draw: st.DrawFn,
    catalog: tuple[dict[str, Any], ...],
    where_conditions: st.SearchStrategy[str],
    currency: str,
    name: str,
    caps: bool = False,
) -> str:
    head = [f"promotion {quote_text(name)}"]
    head.append(f"priority {draw(st.sampled_from((0, 50, 100, 100, 200, -5)))}")
    head.append(draw(st.sampled_from(("stacking exclusive", "stacking stackable", "", "", "", ""))))
    if draw(st.integers(0, 2)) == 0:
        head.append(f"group {quote_text(draw(st.sampled_from(('g1', 'g2'))))}")
    body = []
    if draw(st.integers(0, 3)) == 0:
        start, end = draw(st.sampled_from(WINDOWS))
        body.append(f"valid {start} .. {end}")
    if draw(st.integers(0, 3)) == 0:
        body.append(f"when {draw(CONTEXT_CONDITIONS)}")
    where = ""
    if draw(st.integers(0, 3)) != 0:
        where = f" where {draw(where_conditions)}"
    if draw(st.integers(0, 2)) == 0:
        action = draw(tiers(currency))
    else:
        action = draw(benefits(currency))
    body.append(f"each line{where}: {action}")
    if caps:
        body.extend(draw(money_caps(currency)))
    inner = "\n".join("  " + b for b in body)
    return " ".join(h for h in head if h) + f" {{\n{inner}\n}}"


def names_money(block: str, currency: str) -> bool:
    """Does a promotion's text name an amount of money (so its meaning needs a currency)?"""
    return re.search(rf"\bamount\b|amount_off|fixed_price|\b{currency}\b", block) is not None


# ---- stages 5-9: combos, pools, order promotions, gifts, caps --------------------------------

CAP_DISCOUNTS = (100, 1000, 5000, 100000)  # `max discount X per order`, minor units
BUDGETS = (1, 2500, 100000)
SET_AMOUNTS = (1, 100, 1000, 2500, 100000)  # amount_off per set / application
SET_PRICES = (0, 100, 999, 5000, 200000)  # fixed_price per set: the set costs X
POOL_MONEY_STEPS = (1000, 5000, 12345, 100000)
ORDER_THRESHOLDS = (0, 1000, 5000, 10000, 50000, 100000, 1000000)
ORDER_EVERY = (1000, 5000, 10000, 100000)
ORDER_AMOUNTS = (1, 500, 5000, 20000)


@st.composite
def money_caps(draw: st.DrawFn, currency: str) -> list[str]:
    """Caps on a promotion that gives money: per-order discount, budget, uses (no ledger)."""
    out = []
    if draw(st.integers(0, 3)) == 0:
        out.append(
            f"max discount {format_money(draw(st.sampled_from(CAP_DISCOUNTS)), currency)}{draw(money_text(currency))} per order"
        )
    if draw(st.integers(0, 4)) == 0:
        out.append(
            f"budget {format_money(draw(st.sampled_from(BUDGETS)), currency)}{draw(money_text(currency))}"
        )
    if draw(st.integers(0, 5)) == 0:
        out.append(f"uses {draw(st.sampled_from((1, 3)))} per customer")
    return out


@st.composite
def gift_caps(draw: st.DrawFn) -> list[str]:
    out = []
    if draw(st.integers(0, 2)) == 0:
        out.append(f"max {draw(st.sampled_from((1, 2, 5)))} gifts per order")
    if draw(st.integers(0, 2)) == 0:
        out.append(f"gift stock {draw(st.sampled_from((1, 3, 500)))}")
    return out


def selectors(catalog: tuple[dict[str, Any], ...]) -> st.SearchStrategy[str]:
    """What a combo part or a pool counts: one item field, one value or a set of them."""
    skus = [r["sku"] for r in catalog]
    categories = sorted({r["category"] for r in catalog})
    return st.one_of(
        st.sampled_from(skus).map(lambda v: f"sku {quote_text(v)}"),
        st.lists(st.sampled_from(skus), min_size=1, max_size=3, unique=True).map(
            lambda vs: f"sku in {string_set(vs)}"
        ),
        st.sampled_from(categories).map(lambda v: f"category {quote_text(v)}"),
        st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2, unique=True).map(
            lambda vs: f"category in {string_set(vs)}"
        ),
        st.sampled_from(BRANDS).map(lambda v: f"brand {quote_text(v)}"),
        st.sampled_from(COLORS).map(lambda v: f"item.color {quote_text(v)}"),
        st.sampled_from(TAX_CLASSES).map(lambda v: f"tax_class {quote_text(v)}"),
    )


def gift_text(catalog: tuple[dict[str, Any], ...]) -> st.SearchStrategy[str]:
    skus = [r["sku"] for r in catalog]
    return st.tuples(st.sampled_from((1, 1, 2)), st.sampled_from(skus)).map(
        lambda p: f"gift {p[0]} of {quote_text(p[1])}"
    )


@st.composite
def set_benefits(
    draw: st.DrawFn, catalog: tuple[dict[str, Any], ...], currency: str
) -> tuple[str, str]:
    """A combo/pool benefit and what it gives: "percent", "money" or "gift"."""
    kind = draw(st.sampled_from(("percent", "amount", "fixed", "gift")))
    if kind == "percent":
        return f"percent_off {draw(st.sampled_from(PERCENTS))}", "percent"
    if kind == "gift":
        return draw(gift_text(catalog)), "gift"
    per_set = draw(st.sampled_from(("", " per set")))
    if kind == "amount":
        return (
            f"amount_off {format_money(draw(st.sampled_from(SET_AMOUNTS)), currency)}{draw(money_text(currency))}{per_set}",
            "money",
        )
    return (
        f"fixed_price {format_money(draw(st.sampled_from(SET_PRICES)), currency)}{draw(money_text(currency))}{per_set}",
        "money",
    )


@st.composite
def promotion_head(draw: st.DrawFn, name: str, groups: tuple[str, ...]) -> str:
    head = [
        f"promotion {quote_text(name)}",
        f"priority {draw(st.sampled_from((0, 50, 100, 100, 200, -5)))}",
    ]
    head.append(draw(st.sampled_from(("stacking exclusive", "stacking stackable", "", "", "", ""))))
    if draw(st.integers(0, 2)) == 0:
        head.append(f"group {quote_text(draw(st.sampled_from(groups)))}")
    return " ".join(h for h in head if h)


@st.composite
def promotion_context(draw: st.DrawFn) -> list[str]:
    body = []
    if draw(st.integers(0, 4)) == 0:
        start, end = draw(st.sampled_from(WINDOWS))
        body.append(f"valid {start} .. {end}")
    if draw(st.integers(0, 4)) == 0:
        body.append(f"when {draw(CONTEXT_CONDITIONS)}")
    return body


def with_caps(draw: st.DrawFn, scope: str, caps: list[str]) -> list[str]:
    """Caps written after the scope on its line (``, max 3 per order``) or as statements."""
    inline = [c for c in caps if draw(st.booleans())]
    return [scope + "".join(f", {c}" for c in inline)] + [c for c in caps if c not in inline]


@st.composite
def set_promotions(
    draw: st.DrawFn, catalog: tuple[dict[str, Any], ...], currency: str, name: str
) -> str:
    """A combo (1-3 parts) or a pool (every N units, or every X of money)."""
    head = draw(promotion_head(name, ("s1", "s2")))
    body = draw(promotion_context())
    benefit, gives = draw(set_benefits(catalog, currency))
    if draw(st.booleans()):
        parts = draw(
            st.lists(
                st.tuples(st.sampled_from((1, 1, 2, 3)), selectors(catalog)),
                min_size=1,
                max_size=draw(st.sampled_from((1, 2, 2, 3))),
            )
        )
        scope = "combo " + ", ".join(f"{n} of {sel}" for n, sel in parts) + f": {benefit}"
    else:
        if draw(st.booleans()):
            every = str(draw(st.sampled_from((1, 2, 3, 5, 10))))
        else:
            every = f"{format_money(draw(st.sampled_from(POOL_MONEY_STEPS)), currency)} {currency}"
        scope = f"pool {draw(selectors(catalog))} every {every}: {benefit}"
    caps = []
    if draw(st.integers(0, 2)) == 0:
        caps.append(f"max {draw(st.sampled_from((1, 2, 3)))} per order")
    caps += draw(gift_caps()) if gives == "gift" else draw(money_caps(currency))
    body += with_caps(draw, scope, caps)
    if draw(st.integers(0, 3)) == 0:
        body.append("cheapest first")
    inner = "\n".join("  " + b for b in body)
    return f"{head} {{\n{inner}\n}}"


@st.composite
def order_benefits(
    draw: st.DrawFn, catalog: tuple[dict[str, Any], ...], currency: str, percent: bool
) -> str:
    kinds = ("percent", "amount", "gift") if percent else ("amount", "gift")
    kind = draw(st.sampled_from(kinds))
    if kind == "percent":
        return f"percent_off {draw(st.sampled_from(PERCENTS))}"
    if kind == "gift":
        return draw(gift_text(catalog))
    return f"amount_off {format_money(draw(st.sampled_from(ORDER_AMOUNTS)), currency)}{draw(money_text(currency))}"


@st.composite
def order_promotions(
    draw: st.DrawFn, catalog: tuple[dict[str, Any], ...], currency: str, name: str
) -> str:
    """``order subtotal >= X``, ``order subtotal tiers {...}`` or ``order every X``."""
    head = draw(promotion_head(name, ("o1", "o2")))
    body = draw(promotion_context())

    def money(minor: int) -> str:
        return format_money(minor, currency) + draw(money_text(currency))

    form = draw(st.sampled_from(("threshold", "tiers", "every")))
    caps = []
    if form == "threshold":
        benefits_ = [draw(order_benefits(catalog, currency, percent=True))]
        scope = (
            f"order subtotal >= {money(draw(st.sampled_from(ORDER_THRESHOLDS)))}: {benefits_[0]}"
        )
    elif form == "tiers":
        steps = sorted(
            draw(st.lists(st.sampled_from(ORDER_THRESHOLDS), min_size=1, max_size=3, unique=True))
        )
        benefits_ = [draw(order_benefits(catalog, currency, percent=True)) for _ in steps]
        scope = (
            "order subtotal tiers { "
            + " ".join(f">= {money(x)}: {b}" for x, b in zip(steps, benefits_, strict=True))
            + " }"
        )
    else:
        # a percent under `order every` is refused by the checker (E0504)
        benefits_ = [draw(order_benefits(catalog, currency, percent=False))]
        scope = f"order every {money(draw(st.sampled_from(ORDER_EVERY)))}: {benefits_[0]}"
        if draw(st.booleans()):
            caps.append(f"max {draw(st.sampled_from((1, 2, 3)))} per order")
    if any(b.startswith("gift") for b in benefits_):
        caps += draw(gift_caps())
    else:
        caps += draw(money_caps(currency))
    body += with_caps(draw, scope, caps)
    inner = "\n".join("  " + b for b in body)
    return f"{head} {{\n{inner}\n}}"


# ---- stage 9: floors and approval bands ---------------------------------------------------------

FLOORS = (1, 99, 500, 1000, 1999, 9000, 100000)  # per base unit, minor units
MANUAL_DISCOUNTS = ("0.01%", "3%", "5%", "7%", "12.5%", "15%", "20%", "100%")
BAND_LIMITS = ("3%", "5%", "10%", "15%", "25%")
BAND_OUTCOMES = ("approved", "approved", "channel_manager", "sales_director", "rejected")
APPROVAL_NAMES = ("gold partners", "all", "Zz", "silver")


@st.composite
def floor_rows(
    draw: st.DrawFn, catalog: tuple[dict[str, Any], ...], currency: str
) -> list[dict[str, Any]]:
    rows = []
    for item in catalog:
        if not rows or draw(st.booleans()):  # at least one row, so the table has its columns
            rows.append(
                {"sku": item["sku"], "floor": format_money(draw(st.sampled_from(FLOORS)), currency)}
            )
    return rows


@st.composite
def approvals(draw: st.DrawFn, name: str) -> str:
    body = []
    if draw(st.integers(0, 2)) == 0:
        body.append(f"when {draw(CONTEXT_CONDITIONS)}")
    limits = sorted(
        draw(st.lists(st.sampled_from(BAND_LIMITS), min_size=1, max_size=3, unique=True)),
        key=lambda p: float(p[:-1]),
    )
    body += [f"up to {limit}: {draw(st.sampled_from(BAND_OUTCOMES))}" for limit in limits]
    if draw(st.booleans()):
        body.append(f"above: {draw(st.sampled_from(BAND_OUTCOMES))}")
    inner = "\n".join("  " + b for b in body)
    return f"approval {quote_text(name)} priority {draw(st.sampled_from((0, 10)))} {{\n{inner}\n}}"


# ---- tax -------------------------------------------------------------------------------


@st.composite
def tax_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    keys = st.fixed_dictionaries(
        {},
        optional={
            "region": st.sampled_from(REGIONS),
            "tax_class": st.sampled_from(TAX_CLASSES),
            "trade_term": st.sampled_from(("EXW", "FOB")),
        },
    )
    rows = draw(st.lists(keys, min_size=1, max_size=5))
    out = []
    for row in rows:
        wildcard = draw(st.sampled_from((None, None, "", "*")))  # empty or * = any
        full = {"region": wildcard, "tax_class": wildcard, "trade_term": wildcard, **row}
        full["rate"] = draw(st.sampled_from(TAX_RATES))
        out.append(full)
    return out


# ---- special prices (stage 3) ------------------------------------------------------------

SPECIAL_PRICES = (0, 1, 99, 500, 999, 1500, 10000)  # per base unit, minor units
SPECIAL_QTY_QUOTAS = ("1", "2", "5", "10", "12.5", "20", "100", "0.5")
SPECIAL_AMOUNT_QUOTAS = (0, 1, 1000, 2500, 10000, 1000000)
PROJECTS = ("", "", "P-1", "P-2")


@st.composite
def special_rows(
    draw: st.DrawFn, catalog: tuple[dict[str, Any], ...], currency: str
) -> list[dict[str, Any]]:
    """One row per (customer, project, sku) drawn; quotas, prices and windows vary."""
    skus = [r["sku"] for r in catalog]
    keys = draw(
        st.lists(
            st.tuples(
                st.sampled_from(CUSTOMER_IDS), st.sampled_from(PROJECTS), st.sampled_from(skus)
            ),
            min_size=2,
            max_size=12,
            unique=True,
        )
    )
    rows = []
    for customer, project, sku in keys:
        row: dict[str, Any] = {"customer_id": customer, "project": project, "sku": sku}
        row["price"] = format_money(draw(st.sampled_from(SPECIAL_PRICES)), currency)
        row["qty_quota"] = draw(st.sampled_from(("", *SPECIAL_QTY_QUOTAS)))
        row["amount_quota"] = draw(
            st.sampled_from(("", "", *(format_money(a, currency) for a in SPECIAL_AMOUNT_QUOTAS)))
        )
        window = draw(st.none() | st.sampled_from(WINDOWS))
        row["valid_from"], row["valid_to"] = window if window else ("", "")
        if window and draw(st.booleans()):
            row["valid_from"] = ""  # open-ended on one side
        rows.append(row)
    return rows


@st.composite
def special_ledger(draw: st.DrawFn, rows: list[dict[str, Any]], currency: str) -> dict[str, Any]:
    """What committed orders already consumed of some special prices' quotas."""
    consumed = []
    for row in rows:
        if draw(st.booleans()):
            consumed.append(
                {
                    "customer_id": row["customer_id"],
                    "project": row["project"],
                    "sku": row["sku"],
                    "qty": draw(st.sampled_from(("0", "1", "3", "4.5", "50", "200"))),
                    "amount": format_money(
                        draw(st.sampled_from((0, 1, 500, 2000, 5000000))), currency
                    ),
                }
            )
    return {"special_consumed": consumed}


def including_special(draw: st.DrawFn, block: str) -> str:
    """A promotion that sometimes says ``includes special``."""
    if block.startswith("promotion") and draw(st.integers(0, 2)) == 0:
        return block[: -len("\n}")] + "\n  includes special\n}"
    return block


# ---- cumulative conditions (SPEC §3.6) ----------------------------------------------------

CUMULATIVE_QTYS = (1, 5, 10, 30, 100)
CUMULATIVE_AMOUNTS = (1000, 10000, 100000, 1000000)
COMMITTED_DATES = (
    "2026-10-15",
    "2026-10-31",
    "2026-11-01",
    "2026-11-14",
    "2026-11-20",
    "2026-12-05",
)


@st.composite
def with_cumulative(
    draw: st.DrawFn, block: str, catalog: tuple[dict[str, Any], ...], currency: str
) -> str:
    """A promotion that sometimes carries one or two cumulative conditions."""
    if not block.startswith("promotion") or draw(st.integers(0, 2)) == 0:
        return block
    lines = []
    for _ in range(draw(st.integers(1, 2))):
        if draw(st.booleans()):
            lines.append(
                f"  cumulative qty of {draw(selectors(catalog))} >= {draw(st.sampled_from(CUMULATIVE_QTYS))}"
            )
        else:
            amount = format_money(draw(st.sampled_from(CUMULATIVE_AMOUNTS)), currency)
            lines.append(
                f"  cumulative amount of {draw(selectors(catalog))} >= {amount}{draw(money_text(currency))}"
            )
    head, _, rest = block.partition("{\n")
    return head + "{\n" + "\n".join(lines) + "\n" + rest


@st.composite
def committed_lines(
    draw: st.DrawFn, catalog: tuple[dict[str, Any], ...], currency: str
) -> list[dict[str, Any]]:
    """Committed order lines of the generated customers, inside and outside the windows."""
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        rows.append(
            {
                "customer_id": draw(st.sampled_from(CUSTOMER_IDS)),
                "date": draw(st.sampled_from(COMMITTED_DATES)),
                "sku": draw(st.sampled_from([r["sku"] for r in catalog])),
                "qty": draw(st.sampled_from(("1", "2.5", "10", "40", "99"))),
                "amount": format_money(
                    draw(st.sampled_from((0, 999, 5000, 60000, 500000))), currency
                ),
            }
        )
    return rows


# ---- carts -------------------------------------------------------------------------------


@st.composite
def quantities(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.sampled_from(AWKWARD_QTYS))
    milli = draw(st.integers(1, 500_000))
    whole, frac = divmod(milli, 1000)
    return f"{whole}.{frac:03d}".rstrip("0").rstrip(".") if frac else str(whole)


UNIT_CHOICES = st.sampled_from((None, None, None, None, "base", "other", "other", "box", "crate"))


@st.composite
def carts(
    draw: st.DrawFn,
    catalog: tuple[dict[str, Any], ...],
    currency: str,
    foreign_ok: bool,
    stages59: bool = False,
    special: bool = False,
) -> dict[str, Any]:
    customer = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "id": st.sampled_from(CUSTOMER_IDS),
                "tier": st.sampled_from(TIERS),
                "region": st.sampled_from(REGIONS),
                "group": st.sampled_from(("south", "north")),
                "segment": st.sampled_from(("x", "y")),
            },
        )
    )
    if (
        special and "id" not in customer and draw(st.integers(0, 4)) != 0
    ):  # special prices are per customer
        customer = {**customer, "id": draw(st.sampled_from(CUSTOMER_IDS))}
    cart: dict[str, Any] = {"date": draw(st.sampled_from(CART_DATES))}
    if customer or draw(st.booleans()):
        cart["customer"] = customer
    if draw(st.booleans()):
        cart["currency"] = currency
    if foreign_ok and draw(st.integers(0, 3)) == 0:
        cart["currency"] = FOREIGN_CURRENCY
    for key, values in (
        ("channel", ("mall", "admin")),
        ("trade_term", ("EXW", "FOB")),
        ("project", ("P-1", "P-2")),
    ):
        if draw(st.booleans()):
            cart[key] = draw(st.sampled_from(values))
    skus = [r["sku"] for r in catalog]
    lines = []
    numbered = draw(st.integers(0, 4)) != 0
    for i in range(draw(st.integers(1, 8))):
        line: dict[str, Any] = {"id": f"L{i + 1}"} if numbered else {}  # else ids are positions
        line["sku"] = (
            draw(st.sampled_from(skus)) if draw(st.integers(0, 40 if stages59 else 15)) else "NOPE"
        )
        item = next((r for r in catalog if r["sku"] == line["sku"]), None)
        unit = None if stages59 and draw(st.integers(0, 4)) else draw(UNIT_CHOICES)
        if unit == "base":
            unit = item["base_unit"] if item else "pcs"
        elif unit == "other":  # a unit the SKU has, if any
            unit = draw(st.sampled_from(sorted(units_of(item)) or ["box"])) if item else "box"
        if unit is not None:
            line["unit"] = unit
        if stages59 and draw(st.integers(0, 2)) != 0:  # stages 5-9 want lines that price
            line["qty"] = str(draw(st.sampled_from((1, 1, 2, 3, 4, 5, 6, 10, 12, 20, 25))))
        else:
            line["qty"] = draw(quantities())
        if stages59 and draw(st.integers(0, 2)) == 0:
            line["manual_discount"] = draw(st.sampled_from(MANUAL_DISCOUNTS))
        lines.append(line)
    cart["lines"] = lines
    return cart


# ---- a whole case ----------------------------------------------------------------------------


@st.composite
def cases(
    draw: st.DrawFn,
    max_carts: int = 3,
    stages59: bool = False,
    special: bool = False,
    cumulative: bool = False,
    foreign_floors: bool = False,
) -> Case:
    """``special``: the ruleset has special prices (some promotions ``include special``) and
    the case a ledger of what committed orders consumed of their quotas. ``cumulative``:
    some promotions carry cumulative conditions, and the ledger holds committed lines.
    ``foreign_floors`` (with ``stages59``): the ruleset always has a floor and exchange
    rates, and carts may be in the foreign currency (the floor converted into it)."""
    catalog = draw(catalogs(bundles=stages59))
    money = draw(st.sampled_from(RULESET_CURRENCIES))
    rounding = draw(st.sampled_from(("half_up", "half_even")))
    timezone = draw(st.sampled_from(("Asia/Shanghai", "Asia/Shanghai", "Europe/Berlin")))
    blocks = [
        f'ruleset "generated" currency {money} timezone "{timezone}" rounding {rounding}',
        "attribute customer.segment",
    ]
    tables: dict[str, tuple[dict[str, Any], ...]] = {}

    # price lists
    count = draw(st.integers(1, 4))
    names = draw(st.lists(st.sampled_from(LIST_NAMES), min_size=count, max_size=count, unique=True))
    foreign_lists = False
    for j, name in enumerate(names):
        key = draw(st.sampled_from((None, None, None, None, None, *KEY_FIELDS)))
        table = f"prices_{j}"
        currency = FOREIGN_CURRENCY if draw(st.integers(0, 4)) == 0 else None
        rows = draw(price_rows(catalog, key, 0.5, currency or money))
        if not rows:
            rows = draw(price_rows(catalog, key, 1.0, currency or money))
        tables[table] = tuple(rows)
        foreign_lists |= currency is not None
        blocks.append(
            pricelist_text(
                name,
                draw(st.sampled_from((0, 100, 100, 200))),
                table,
                when=draw(st.none() | CONTEXT_CONDITIONS),
                valid=draw(st.none() | st.sampled_from(WINDOWS)),
                currency=currency,
                includes_tax=draw(st.integers(0, 4)) == 0,
                key=key,
            )
        )
    if stages59 or draw(st.integers(0, 3)) != 0:  # most rulesets have a catch-all list
        tables["base_prices"] = tuple(
            draw(price_rows(catalog, None, 1.0, money, from_zero=stages59))
        )
        blocks.append(pricelist_text("base", -10, "base_prices"))

    # promotions
    promo_names = draw(st.lists(st.sampled_from(PROMO_NAMES), max_size=6, unique=True))
    where_conditions = conditions(line_atoms(catalog, money))
    promo_blocks = []
    for name in promo_names:
        stage = (
            draw(st.sampled_from(("line", "set", "set", "order", "order"))) if stages59 else "line"
        )
        if stage == "line":
            promo_blocks.append(
                draw(promotions(catalog, where_conditions, money, name, caps=stages59))
            )
        elif stage == "set":
            promo_blocks.append(draw(set_promotions(catalog, money, name)))
        else:
            promo_blocks.append(draw(order_promotions(catalog, money, name)))
    ledger: dict[str, Any] | None = None
    if cumulative:
        promo_blocks = [draw(with_cumulative(b, catalog, money)) for b in promo_blocks]
        ledger = {"committed_lines": draw(committed_lines(catalog, money))}
    if special:
        promo_blocks = [including_special(draw, b) for b in promo_blocks]
        rows = draw(special_rows(catalog, money))
        tables["special_prices"] = tuple(rows)
        promo_blocks.append("special prices {\n  table special_prices\n}")
        ledger = {**(ledger or {}), **draw(special_ledger(rows, money))}
    blocks.extend(promo_blocks)

    # floors and approval bands
    has_floor = stages59 and (foreign_floors or draw(st.integers(0, 2)) == 0)
    if has_floor:
        tables["floor_prices"] = tuple(draw(floor_rows(catalog, money)))
        blocks.append(
            f"floor {{\n  table floor_prices policy {draw(st.sampled_from(('clamp', 'flag')))}\n}}"
        )
    if stages59:
        for name in draw(st.lists(st.sampled_from(APPROVAL_NAMES), max_size=2, unique=True)):
            blocks.append(draw(approvals(name)))

    # tax
    if draw(st.integers(0, 3)) != 0:
        tables["tax_rates"] = tuple(draw(tax_rows()))
        blocks.append('tax "vat" {\n  table tax_rates\n}')

    # exchange rates: both ways, sometimes only from mid-November (earlier carts lack a rate)
    if foreign_lists or foreign_floors or draw(st.integers(0, 3)) != 0:
        dates = draw(
            st.sampled_from((("2026-10-01",), ("2026-11-15",), ("2026-10-01", "2026-11-15")))
        )
        fx = []
        for date in dates:
            inbound = draw(st.sampled_from(FX_FROM_FOREIGN[money]))
            outbound = draw(st.sampled_from(FX_TO_FOREIGN[money]))
            fx.append({"from": FOREIGN_CURRENCY, "to": money, "date": date, "rate": inbound})
            fx.append({"from": money, "to": FOREIGN_CURRENCY, "date": date, "rate": outbound})
        tables["fx_rates"] = tuple(fx)

    # foreign carts with a floor only when asked: tests/engine/test_agreement.py's floor
    # invariant reads the floor table in the ruleset currency
    foreign_ok = "fx_rates" in tables and (foreign_floors or not has_floor)
    batch = draw(
        st.lists(
            carts(catalog, money, foreign_ok, stages59=stages59, special=special or cumulative),
            min_size=1,
            max_size=max_carts,
        )
    )
    sources = draw(layouts(tuple(blocks)))
    return Case(
        blocks=tuple(blocks),
        sources=sources,
        catalog=catalog,
        tables=tables,
        carts=tuple(batch),
        ledger=ledger,
    )

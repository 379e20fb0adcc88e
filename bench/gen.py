"""A seeded, deterministic generator of the benchmark workload: catalog, customers, rules, carts.

The rules are the benchmark's one shape: "tier in T (or any) and region in G (or any) and
(category in C or SKU in S) and qty >= q -> p% off", every promotion ``stacking exclusive``
with a distinct priority, so the first match in priority order wins and is the only one
applied. No rule is shadowed by any *single* earlier (higher-priority) rule: a drawn rule
whose condition implies an earlier rule's is redrawn. A few rules (13 of 1,000 at seed 42)
are still covered by two earlier rules together; ``pricer check`` reports those as W0501
warnings, which do not stop a ruleset from compiling.

>>> w = generate(n_skus=20, n_customers=5, n_carts=3, n_rules=4, seed=1)
>>> w.n_lines == int(w.cart_offsets[-1])
True
>>> sorted(w.sources)
['bench.rule']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl

from engine.core.data import DataSet

CURRENCY = "CNY"
DATE = "2026-11-22"
TIMEZONE = "Asia/Shanghai"
TIERS = ("gold", "silver", "bronze")
TIER_WEIGHTS = (0.2, 0.3, 0.5)
REGIONS = (
    "north", "south", "east", "west", "central",
    "northeast", "northwest", "southeast", "southwest", "coastal",
)  # fmt: skip
N_CATEGORIES = 50
QTY_STEPS = (1, 2, 5, 10, 20, 50)
P_ANY_TIER = 0.3
P_ANY_REGION = 0.3
MAX_CART_LINES = 20
PRICE_MIN_MINOR, PRICE_MAX_MINOR = 100, 99_999  # 1.00 .. 999.99 CNY
MAX_REDRAWS = 200

# The full workload of the issue.
FULL = {"n_skus": 10_000, "n_customers": 50_000, "n_carts": 100_000}
RULE_COUNTS = (10, 100, 1000)


@dataclass(frozen=True, slots=True)
class Rule:
    """One generated promotion; ``None`` for tiers/regions means any."""

    name: str
    priority: int
    tiers: tuple[str, ...] | None
    regions: tuple[str, ...] | None
    categories: tuple[str, ...]
    skus: tuple[str, ...]
    min_qty: int
    percent_bp: int  # basis points: 750 = 7.5%

    def render(self) -> str:
        when: list[str] = []
        if self.tiers is not None:
            when.append(f"customer.tier in ({_strings(self.tiers)})")
        if self.regions is not None:
            when.append(f"customer.region in ({_strings(self.regions)})")
        items: list[str] = []
        if self.categories:
            items.append(f"category in ({_strings(self.categories)})")
        if self.skus:
            items.append(f"sku in ({_strings(self.skus)})")
        item = items[0] if len(items) == 1 else "(" + " or ".join(items) + ")"
        body = []
        if when:
            body.append("  when " + " and ".join(when))
        body.append(
            f"  each line where {item} and qty >= {self.min_qty}: "
            f"percent_off {percent_text(self.percent_bp)}"
        )
        head = f'promotion "{self.name}" priority {self.priority} stacking exclusive {{'
        return "\n".join([head, *body, "}"])

    def matches(self, tier: str, region: str, category: str, sku: str, qty: int) -> bool:
        """The rule's condition, in plain Python (for small cross-checks)."""
        return (
            (self.tiers is None or tier in self.tiers)
            and (self.regions is None or region in self.regions)
            and (category in self.categories or sku in self.skus)
            and qty >= self.min_qty
        )


def _strings(values: tuple[str, ...]) -> str:
    return ", ".join(f'"{v}"' for v in values)


def percent_text(bp: int) -> str:
    """750 -> ``7.5%``, 700 -> ``7%``."""
    whole, frac = divmod(bp, 100)
    return f"{whole}%" if frac == 0 else f"{whole}.{frac:02d}".rstrip("0") + "%"


def discount_minor(list_minor: np.ndarray, bp: np.ndarray) -> np.ndarray:
    """round_half_up(list x bp / 10000) for non-negative int64 arrays."""
    return (list_minor * bp + 5_000) // 10_000


def sku_id(i: int) -> str:
    return f"S{i:06d}"


def customer_id(i: int) -> str:
    return f"C{i:06d}"


def category_id(i: int) -> str:
    return f"c{i:02d}"


@dataclass(eq=False)
class Workload:
    """Everything one benchmark size needs; arrays are the truth, frames and dicts views."""

    seed: int
    n_skus: int
    n_customers: int
    n_rules: int
    sku_category: np.ndarray  # int16 index into categories, per SKU
    sku_price_minor: np.ndarray  # int64, per SKU
    customer_tier: np.ndarray  # int8 index into TIERS, per customer
    customer_region: np.ndarray  # int8 index into REGIONS, per customer
    rules: list[Rule]
    cart_customer: np.ndarray  # int64 customer index, per cart
    cart_offsets: np.ndarray  # int64, n_carts + 1: lines of cart i are [off[i], off[i+1])
    line_sku: np.ndarray  # int64 SKU index, per line
    line_qty: np.ndarray  # int64 whole base units, per line
    redraws: int = 0
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    # ---- sizes and ids ----------------------------------------------------------------

    @property
    def n_carts(self) -> int:
        return len(self.cart_customer)

    @property
    def n_lines(self) -> int:
        return len(self.line_sku)

    @cached_property
    def sku_ids(self) -> list[str]:
        return [sku_id(i) for i in range(self.n_skus)]

    @cached_property
    def customer_ids(self) -> list[str]:
        return [customer_id(i) for i in range(self.n_customers)]

    @cached_property
    def line_cart(self) -> np.ndarray:
        """Cart index of every line."""
        sizes = np.diff(self.cart_offsets)
        return np.repeat(np.arange(self.n_carts, dtype=np.int64), sizes)

    @cached_property
    def line_position(self) -> np.ndarray:
        """1-based position of every line in its cart (the JSON line id)."""
        return np.arange(self.n_lines, dtype=np.int64) - self.cart_offsets[self.line_cart] + 1

    # ---- the ruleset and its data ---------------------------------------------------

    @cached_property
    def rule_text(self) -> str:
        header = (
            f'ruleset "bench-{self.n_rules}" currency {CURRENCY} '
            f'timezone "{TIMEZONE}" rounding half_up\n\n'
            'pricelist "standard" priority 0 { table standard_prices }\n'
        )
        return header + "\n" + "\n\n".join(r.render() for r in self.rules) + "\n"

    @cached_property
    def sources(self) -> dict[str, str]:
        """``{"bench.rule": text}``; the same dict every time (callers may cache by identity)."""
        return {"bench.rule": self.rule_text}

    @cached_property
    def catalog(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "sku": self.sku_ids,
                "base_unit": ["pcs"] * self.n_skus,
                "category": [category_id(int(c)) for c in self.sku_category],
            },
            schema={"sku": pl.String, "base_unit": pl.String, "category": pl.String},
        )

    @cached_property
    def standard_prices(self) -> pl.DataFrame:
        return pl.DataFrame(
            {"sku": self.sku_ids, "price": [_money(int(p)) for p in self.sku_price_minor]},
            schema={"sku": pl.String, "price": pl.String},
        )

    @cached_property
    def customers(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "id": self.customer_ids,
                "tier": [TIERS[t] for t in self.customer_tier],
                "region": [REGIONS[g] for g in self.customer_region],
            }
        )

    @cached_property
    def data(self) -> DataSet:
        return DataSet(catalog=self.catalog, tables={"standard_prices": self.standard_prices})

    # ---- carts ---------------------------------------------------------------------

    def carts_frame(self) -> pl.DataFrame:
        """One row per cart: cart_id, currency, date, customer_id, customer_tier, customer_region."""
        cust = self.cart_customer
        tiers = pl.Series(TIERS, dtype=pl.String)
        regions = pl.Series(REGIONS, dtype=pl.String)
        return pl.DataFrame(
            {
                "cart_id": np.arange(self.n_carts, dtype=np.int64),
                "currency": pl.repeat(CURRENCY, self.n_carts, eager=True),
                "date": pl.repeat(DATE, self.n_carts, eager=True),
                "customer_id": pl.Series(self.customer_ids, dtype=pl.String).gather(cust),
                "customer_tier": tiers.gather(self.customer_tier[cust]),
                "customer_region": regions.gather(self.customer_region[cust]),
            }
        )

    def lines_frame(self) -> pl.DataFrame:
        """One row per line: cart_id, line_id (1-based text), sku, qty (whole-number text)."""
        return pl.DataFrame(
            {
                "cart_id": self.line_cart,
                "line_id": pl.Series(self.line_position).cast(pl.String),
                "sku": pl.Series(self.sku_ids, dtype=pl.String).gather(self.line_sku),
                "qty": pl.Series(self.line_qty).cast(pl.String),
            }
        )

    def cart_dict(self, i: int) -> dict[str, Any]:
        """Cart ``i`` in the request JSON shape of ``engine.api.quote``."""
        c = int(self.cart_customer[i])
        lo, hi = int(self.cart_offsets[i]), int(self.cart_offsets[i + 1])
        skus, qtys = self.sku_ids, self.line_qty
        return {
            "currency": CURRENCY,
            "date": DATE,
            "customer": {
                "id": self.customer_ids[c],
                "tier": TIERS[self.customer_tier[c]],
                "region": REGIONS[self.customer_region[c]],
            },
            "lines": [
                {"id": str(k - lo + 1), "sku": skus[self.line_sku[k]], "qty": str(qtys[k])}
                for k in range(lo, hi)
            ],
        }

    def cart_dicts(self, carts: range | list[int] | np.ndarray) -> list[dict[str, Any]]:
        return [self.cart_dict(int(i)) for i in carts]

    def subsample_carts(self, max_lines: int, seed: int = 7) -> np.ndarray:
        """Cart indexes (sorted) chosen at random until they hold about ``max_lines`` lines."""
        if self.n_lines <= max_lines:
            return np.arange(self.n_carts, dtype=np.int64)
        order = np.random.default_rng(seed).permutation(self.n_carts)
        sizes = np.diff(self.cart_offsets)[order]
        take = int(np.searchsorted(np.cumsum(sizes), max_lines, side="right"))
        return np.sort(order[: max(take, 1)])

    def lines_of(self, carts: np.ndarray) -> np.ndarray:
        """Line indexes of the given carts, in cart order."""
        parts = [np.arange(self.cart_offsets[i], self.cart_offsets[i + 1]) for i in carts]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def line_contexts(self, lines: np.ndarray) -> list[dict[str, Any]]:
        """The per-line facts the rules read, as zen input contexts."""
        cust = self.cart_customer[self.line_cart[lines]]
        return [
            {
                "tier": TIERS[t],
                "region": REGIONS[g],
                "category": category_id(int(c)),
                "sku": self.sku_ids[s],
                "qty": int(q),
            }
            for t, g, c, s, q in zip(
                self.customer_tier[cust],
                self.customer_region[cust],
                self.sku_category[self.line_sku[lines]],
                self.line_sku[lines],
                self.line_qty[lines],
                strict=True,
            )
        ]

    def list_minor(self, lines: np.ndarray) -> np.ndarray:
        """List amount of each line in minor units (standard price x whole quantity)."""
        return self.sku_price_minor[self.line_sku[lines]] * self.line_qty[lines]

    def latency_carts(self, n: int, lines: int = 10, seed: int = 11) -> list[dict[str, Any]]:
        """``n`` fresh carts of exactly ``lines`` lines each, drawn like the batch carts."""
        rng = np.random.default_rng([self.seed, seed])
        sizes = np.full(n, lines, dtype=np.int64)
        cust, offsets, skus, qtys = _draw_carts(rng, n, sizes, self.n_customers, self.n_skus)
        sub = Workload(
            seed=self.seed,
            n_skus=self.n_skus,
            n_customers=self.n_customers,
            n_rules=self.n_rules,
            sku_category=self.sku_category,
            sku_price_minor=self.sku_price_minor,
            customer_tier=self.customer_tier,
            customer_region=self.customer_region,
            rules=self.rules,
            cart_customer=cust,
            cart_offsets=offsets,
            line_sku=skus,
            line_qty=qtys,
        )
        sub.__dict__["sku_ids"] = self.sku_ids
        sub.__dict__["customer_ids"] = self.customer_ids
        return sub.cart_dicts(range(n))

    def with_rules(self, n_rules: int) -> Workload:
        """The same catalog, customers and carts with another rule count (rules reseeded)."""
        rng = np.random.default_rng([self.seed, 2, n_rules])
        rules, redraws = _draw_rules(rng, n_rules, self.n_skus, self.sku_category)
        w = Workload(
            seed=self.seed,
            n_skus=self.n_skus,
            n_customers=self.n_customers,
            n_rules=n_rules,
            sku_category=self.sku_category,
            sku_price_minor=self.sku_price_minor,
            customer_tier=self.customer_tier,
            customer_region=self.customer_region,
            rules=rules,
            cart_customer=self.cart_customer,
            cart_offsets=self.cart_offsets,
            line_sku=self.line_sku,
            line_qty=self.line_qty,
            redraws=redraws,
        )
        for name in ("sku_ids", "customer_ids", "catalog", "standard_prices", "data", "line_cart"):
            if name in self.__dict__:
                w.__dict__[name] = self.__dict__[name]
        return w


def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def generate(n_skus: int, n_customers: int, n_carts: int, n_rules: int, seed: int) -> Workload:
    """The workload for one size; the same arguments always give the same workload."""
    rng = np.random.default_rng([seed, 1])
    sku_category = rng.integers(0, N_CATEGORIES, n_skus).astype(np.int16)
    sku_price = rng.integers(PRICE_MIN_MINOR, PRICE_MAX_MINOR + 1, n_skus).astype(np.int64)
    customer_tier = rng.choice(len(TIERS), n_customers, p=TIER_WEIGHTS).astype(np.int8)
    customer_region = rng.integers(0, len(REGIONS), n_customers).astype(np.int8)
    sizes = rng.integers(1, MAX_CART_LINES + 1, n_carts).astype(np.int64)
    cust, offsets, skus, qtys = _draw_carts(rng, n_carts, sizes, n_customers, n_skus)
    rules, redraws = _draw_rules(
        np.random.default_rng([seed, 2, n_rules]), n_rules, n_skus, sku_category
    )
    return Workload(
        seed=seed,
        n_skus=n_skus,
        n_customers=n_customers,
        n_rules=n_rules,
        sku_category=sku_category,
        sku_price_minor=sku_price,
        customer_tier=customer_tier,
        customer_region=customer_region,
        rules=rules,
        cart_customer=cust,
        cart_offsets=offsets,
        line_sku=skus,
        line_qty=qtys,
        redraws=redraws,
    )


def _draw_carts(
    rng: np.random.Generator, n: int, sizes: np.ndarray, n_customers: int, n_skus: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    n_lines = int(offsets[-1])
    cust = rng.integers(0, n_customers, n).astype(np.int64)
    skus = rng.integers(0, n_skus, n_lines).astype(np.int64)
    # Mostly small quantities (geometric, mean ~6), one line in ten a bulk 10..100.
    qtys = np.minimum(rng.geometric(0.16, n_lines), 99).astype(np.int64)
    bulk = rng.random(n_lines) < 0.1
    qtys[bulk] = rng.integers(10, 101, int(bulk.sum()))
    return cust, offsets, skus, qtys


def _draw_rules(
    rng: np.random.Generator, n_rules: int, n_skus: int, sku_category: np.ndarray
) -> tuple[list[Rule], int]:
    """``n_rules`` rules, highest priority first; each redrawn while an earlier one shadows it."""
    rules: list[Rule] = []
    covers: list[tuple[frozenset[str], frozenset[str]]] = []  # (categories, skus) per rule
    cat_of = {sku_id(i): category_id(int(c)) for i, c in enumerate(sku_category)} if n_skus else {}
    redraws = 0
    for i in range(n_rules):
        for _attempt in range(MAX_REDRAWS):
            rule = _draw_rule(rng, i, n_rules, n_skus)
            if not any(
                _shadows(e, ec, es, rule, cat_of) for e, (ec, es) in zip(rules, covers, strict=True)
            ):
                break
            redraws += 1
        else:
            raise RuntimeError(f"could not draw an unshadowed rule {i} in {MAX_REDRAWS} tries")
        rules.append(rule)
        covers.append((frozenset(rule.categories), frozenset(rule.skus)))
    return rules, redraws


def _draw_rule(rng: np.random.Generator, i: int, n_rules: int, n_skus: int) -> Rule:
    tiers = None
    if rng.random() >= P_ANY_TIER:
        k = int(rng.integers(1, 3))
        tiers = tuple(TIERS[j] for j in sorted(rng.choice(len(TIERS), k, replace=False)))
    regions = None
    if rng.random() >= P_ANY_REGION:
        k = int(rng.integers(1, 4))
        regions = tuple(REGIONS[j] for j in sorted(rng.choice(len(REGIONS), k, replace=False)))
    shape = rng.random()  # 45% categories only, 25% SKUs only, 30% both
    categories: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()
    if shape < 0.75 or n_skus == 0:
        k = int(rng.integers(1, 4))
        categories = tuple(
            category_id(int(c)) for c in sorted(rng.choice(N_CATEGORIES, k, replace=False))
        )
    if shape >= 0.45 and n_skus > 0:
        k = min(int(rng.integers(1, 6)), n_skus)
        skus = tuple(sku_id(int(s)) for s in sorted(rng.choice(n_skus, k, replace=False)))
    return Rule(
        name=f"r{i:04d}",
        priority=n_rules - i,
        tiers=tiers,
        regions=regions,
        categories=categories,
        skus=skus,
        min_qty=int(rng.choice(QTY_STEPS)),
        percent_bp=50 * int(rng.integers(1, 61)),  # 0.5% .. 30% in half percents
    )


def _shadows(
    earlier: Rule,
    e_cats: frozenset[str],
    e_skus: frozenset[str],
    later: Rule,
    cat_of: dict[str, str],
) -> bool:
    """True when every line ``later`` matches is matched by ``earlier`` (so it never fires)."""
    if later.min_qty < earlier.min_qty:
        return False
    if earlier.tiers is not None and (
        later.tiers is None or not set(later.tiers) <= set(earlier.tiers)
    ):
        return False
    if earlier.regions is not None and (
        later.regions is None or not set(later.regions) <= set(earlier.regions)
    ):
        return False
    if not e_cats.issuperset(later.categories):
        return False
    return all(s in e_skus or cat_of[s] in e_cats for s in later.skus)

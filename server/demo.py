"""Seeded, deterministic demo data, written through the store: ``python -m server.demo --if-empty``.

About 3000 SKUs in 12 categories and 5 brands, with the tables the demo ruleset in
``rules/`` names: ``standard_prices`` (with quantity breaks), ``gold_prices``,
``silver_prices``, ``customer_prices`` (keyed by customer id), ``export_prices`` (USD),
``fx_rates``, ``tax_rates``, and ``demo_customers`` (not read by rules; carts carry the
customer, the table is there to build realistic ones), plus a year of order history
(``order_lines``, ``returns``, ``events``) and ``rebate_targets`` for the rebate, commission,
tier and fund policies in ``rules/rebates.rule``. The same seed gives the same data.

SKUs the README tour relies on: ``TL-0001`` and ``TL-0002`` (tools, pcs, box=12) and
``CB-0001`` (cable sold by the metre).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import polars as pl

BRANDS = ("Acme", "Borealis", "Cobalt", "Dynamo", "Everest")
CUSTOMER_TIERS = ("gold", "silver", "bronze")
CUSTOMER_REGIONS = ("north", "south", "east", "west", "US", "HK")
MAINLAND_REGIONS = ("CN", "north", "south", "east", "west")
DEMO_YEARS = (2025, 2026, 2027)
USD_CNY = Decimal("7.1200")


@dataclass(frozen=True, slots=True)
class Category:
    prefix: str
    name: str
    base_unit: str
    units: str | None  # other units, "box=12"
    price_range: tuple[int, int]  # whole CNY per base unit
    tax_class: str = "standard"


CATEGORIES = (
    Category("TL", "tools", "pcs", "box=12", (15, 900)),
    Category("CB", "cables", "m", "reel=100", (2, 40)),
    Category("LT", "lighting", "pcs", "case=24", (8, 600)),
    Category("FS", "fasteners", "pcs", "box=12;case=144", (1, 30)),
    Category("EL", "electrical", "pcs", "box=12", (5, 400)),
    Category("SF", "safety", "pcs", "case=24", (10, 300)),
    Category("PT", "paint", "pcs", "case=24", (30, 500)),
    Category("PL", "plumbing", "pcs", "box=12", (6, 350)),
    Category("AD", "adhesives", "pcs", "box=12", (4, 120)),
    Category("BK", "books", "pcs", None, (25, 260), tax_class="books"),
    Category("ST", "storage", "pcs", None, (40, 1500)),
    Category("GD", "garden", "pcs", "case=24", (12, 800)),
)


def _money(value: Decimal, places: str = "0.01") -> str:
    return str(value.quantize(Decimal(places), rounding=ROUND_HALF_UP))


def _catalog(rng: random.Random, n_skus: int) -> tuple[pl.DataFrame, dict[str, Decimal]]:
    rows: list[dict[str, Any]] = []
    base_price: dict[str, Decimal] = {}
    per_category = max(1, n_skus // len(CATEGORIES))
    for cat in CATEGORIES:
        for i in range(1, per_category + 1):
            sku = f"{cat.prefix}-{i:04d}"
            brand = BRANDS[(i - 1) % len(BRANDS)] if i <= 5 else rng.choice(BRANDS)
            # every other SKU of a category has the extra units; the tour's SKUs always do
            units = cat.units if (i <= 2 or rng.random() < 0.6) else None
            low, high = cat.price_range
            cents = rng.randint(low * 100, high * 100)
            base_price[sku] = Decimal(cents) / 100
            min_qty = pack = None
            if i > 10 and cat.prefix == "FS" and rng.random() < 0.2:
                min_qty, pack = "12", "12"
            rows.append(
                {
                    "sku": sku,
                    "name": f"{brand} {cat.name} {i:04d}",
                    "base_unit": cat.base_unit,
                    "category": cat.name,
                    "brand": brand,
                    "tax_class": cat.tax_class,
                    "units": units,
                    "min_qty": min_qty,
                    "pack": pack,
                }
            )
    return pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}), base_price


#: the demo's bundle: a kit sold as one SKU, its price split over its components by ratio
KIT = ("KIT-0001", "TL-0001:2;EL-0001:1;SF-0001:1")


def _with_bundle(
    catalog: pl.DataFrame, standard: pl.DataFrame, price: dict[str, Decimal]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Append the installer kit (no random draws, so the other rows stay as they were)."""
    sku, components = KIT
    kit_price = 2 * price["TL-0001"] + price["EL-0001"] + price["SF-0001"]
    row = {c: None for c in catalog.columns} | {
        "sku": sku, "name": "Installer kit", "base_unit": "kit", "category": "kits",
        "brand": "Acme", "tax_class": "standard", "components": components,
    }  # fmt: skip
    catalog = (
        catalog.with_columns(pl.lit(None, dtype=pl.String).alias("components"))
        if "components" not in catalog.columns
        else catalog
    )
    catalog = pl.concat([catalog, pl.DataFrame([row], schema=catalog.schema)])
    price_row = {"sku": sku, "min_qty": "0", "price": _money(kit_price * Decimal("0.9"))}
    return catalog, pl.concat([standard, pl.DataFrame([price_row], schema=standard.schema)])


def _floors(price: dict[str, Decimal]) -> pl.DataFrame:
    """The lowest net unit price the brand allows: 60% of the standard price."""
    rows = [{"sku": sku, "floor": _money(p * Decimal("0.6"))} for sku, p in price.items()]
    return pl.DataFrame(rows, schema={"sku": pl.String, "floor": pl.String})


def _standard(rng: random.Random, price: dict[str, Decimal]) -> pl.DataFrame:
    rows: list[dict[str, str | None]] = []
    for sku, p in price.items():
        rows.append({"sku": sku, "min_qty": "0", "price": _money(p)})
        # quantity breaks for about a fifth of the SKUs (and always for TL-0001)
        if sku == "TL-0001" or (sku != "TL-0002" and rng.random() < 0.2):
            rows.append({"sku": sku, "min_qty": "10", "price": _money(p * Decimal("0.95"))})
            rows.append({"sku": sku, "min_qty": "50", "price": _money(p * Decimal("0.90"))})
    return pl.DataFrame(rows, schema={"sku": pl.String, "min_qty": pl.String, "price": pl.String})


def _tier_list(
    rng: random.Random, price: dict[str, Decimal], factor: str, share: float
) -> pl.DataFrame:
    rows = [
        {"sku": sku, "price": _money(p * Decimal(factor))}
        for sku, p in price.items()
        if rng.random() < share
    ]
    return pl.DataFrame(rows, schema={"sku": pl.String, "price": pl.String})


def _customers(rng: random.Random, n: int) -> pl.DataFrame:
    rows = []
    for i in range(1, n + 1):
        rows.append(
            {
                "id": f"D{i:04d}",
                "name": f"Dealer {i:04d}",
                "tier": CUSTOMER_TIERS[0] if i == 1 else rng.choice(CUSTOMER_TIERS),
                "region": CUSTOMER_REGIONS[0] if i == 1 else rng.choice(CUSTOMER_REGIONS),
            }
        )
    return pl.DataFrame(rows, schema={k: pl.String for k in rows[0]})


def _customer_prices(
    rng: random.Random, price: dict[str, Decimal], customers: pl.DataFrame
) -> pl.DataFrame:
    skus = sorted(price)
    rows = []
    for customer in customers.get_column("id").to_list():
        for sku in sorted(rng.sample(skus, rng.randint(5, 15))):
            off = Decimal(rng.randint(75, 88)) / 100
            rows.append({"customer_id": customer, "sku": sku, "price": _money(price[sku] * off)})
    return pl.DataFrame(
        rows, schema={"customer_id": pl.String, "sku": pl.String, "price": pl.String}
    )


def _export(rng: random.Random, price: dict[str, Decimal]) -> pl.DataFrame:
    rows = [
        {"sku": sku, "price": _money(p / USD_CNY * Decimal("1.08"))}
        for sku, p in price.items()
        if sku in ("TL-0001", "TL-0002", "CB-0001") or rng.random() < 0.5
    ]
    return pl.DataFrame(rows, schema={"sku": pl.String, "price": pl.String})


def _fx(rng: random.Random) -> pl.DataFrame:
    """Monthly rates (the engine takes the latest rate on or before the cart date)."""
    rows = []
    for year in DEMO_YEARS:
        for month in range(1, 13):
            day = dt.date(year, month, 1).isoformat()
            usd_cny = USD_CNY + Decimal(rng.randint(-600, 600)) / 10000
            rows.append(
                {"from": "USD", "to": "CNY", "date": day, "rate": _money(usd_cny, "0.0001")}
            )
            rows.append(
                {"from": "CNY", "to": "USD", "date": day, "rate": _money(1 / usd_cny, "0.000001")}
            )
    return pl.DataFrame(rows, schema={k: pl.String for k in ("from", "to", "date", "rate")})


def _tax() -> pl.DataFrame:
    """13% VAT in mainland China (books 9%), none in HK and the US. The mainland rows are
    repeated for the demo's sales regions (north/south/east/west), which are in CN."""
    rows: list[dict[str, str | None]] = []
    for region in MAINLAND_REGIONS:
        rows.append({"region": region, "tax_class": None, "rate": "13%"})
        rows.append({"region": region, "tax_class": "books", "rate": "9%"})
    rows.append({"region": "HK", "tax_class": None, "rate": "0%"})
    rows.append({"region": "US", "tax_class": None, "rate": "0%"})
    return pl.DataFrame(
        rows, schema={"region": pl.String, "tax_class": pl.String, "rate": pl.String}
    )


def history(
    seed: int,
    catalog: pl.DataFrame,
    standard: pl.DataFrame,
    customers: pl.DataFrame,
    n_orders: int = 4000,
) -> dict[str, pl.DataFrame]:
    """Seeded order history for 2026 (order_lines, returns, events) and 2026-Q4 rebate
    targets: what ``pricer rebates rules/ --period 2026-Q4`` runs over in the demo."""
    rng = random.Random(seed * 7 + 1)
    price = (
        {
            r[0]: Decimal(r[1])
            for r in standard.filter(pl.col("min_qty").is_null() | (pl.col("min_qty") == "0"))
            .select("sku", "price")
            .iter_rows()
        }
        if "min_qty" in standard.columns
        else {r[0]: Decimal(r[1]) for r in standard.select("sku", "price").iter_rows()}
    )
    skus = sorted(s for s in catalog["sku"].to_list() if s in price and s != "KIT-0001")
    ids = customers["id"].to_list()
    lines: list[dict[str, str]] = []
    for o in range(1, n_orders + 1):
        customer = ids[0] if o % 25 == 0 else rng.choice(ids)
        day = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(365))
        referrer = rng.choice(ids) if rng.random() < 0.2 else ""
        for line in range(1, rng.randint(1, 6) + 1):
            sku = rng.choice(skus)
            qty = rng.randint(1, 40)
            special = rng.random() < 0.05
            off = Decimal(rng.choice((0, 0, 3, 5, 10))) / 100
            net = price[sku] * qty * (1 - off)
            lines.append(
                {
                    "order_id": f"H{o:05d}",
                    "line_id": str(line),
                    "date": day.isoformat(),
                    "customer_id": customer,
                    "referrer": referrer,
                    "project": "",
                    "sku": sku,
                    "qty": str(qty),
                    "list_amount": _money(price[sku] * qty),
                    "net_amount": _money(net),
                    "currency": "CNY",
                    "special": "true" if special else "false",
                }
            )
    returns = []
    for i, ln in enumerate(rng.sample(lines, len(lines) // 50), start=1):
        returns.append(
            {
                "return_id": f"X{i:05d}",
                "order_id": ln["order_id"],
                "date": ln["date"],
                "customer_id": ln["customer_id"],
                "sku": ln["sku"],
                "qty": "1",
                "net_amount": _money(Decimal(ln["net_amount"]) / Decimal(ln["qty"])),
            }
        )
    kinds = ("lead_submitted", "lead_converted", "merchant_referred", "partner_recruited")
    events = [
        {
            "event_id": f"E{i:05d}",
            "date": (dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(365))).isoformat(),
            "partner_id": rng.choice(ids),
            "kind": rng.choice(kinds),
        }
        for i in range(1, 3001)
    ]
    targets = [
        {"customer_id": c, "period": "2026-Q4", "target": f"{rng.randrange(20, 200) * 1000}.00"}
        for c in ids
    ]
    return {
        "order_lines": pl.DataFrame(lines, schema={k: pl.String for k in lines[0]}),
        "returns": pl.DataFrame(returns, schema={k: pl.String for k in returns[0]}),
        "events": pl.DataFrame(events, schema={k: pl.String for k in events[0]}),
        "rebate_targets": pl.DataFrame(targets, schema={k: pl.String for k in targets[0]}),
    }


def generate(
    seed: int = 2026, n_skus: int = 3000, n_customers: int = 200
) -> dict[str, pl.DataFrame]:
    """Every demo table by name (``catalog`` included); deterministic in ``seed``."""
    rng = random.Random(seed)
    catalog, price = _catalog(rng, n_skus)
    customers = _customers(rng, n_customers)
    standard = _standard(rng, price)
    catalog, standard = _with_bundle(catalog, standard, price)
    return {
        "standard_prices": standard,
        "floor_prices": _floors(price),
        "gold_prices": _tier_list(rng, price, "0.85", 0.6),
        "silver_prices": _tier_list(rng, price, "0.92", 0.6),
        "customer_prices": _customer_prices(rng, price, customers),
        "export_prices": _export(rng, price),
        "fx_rates": _fx(rng),
        "tax_rates": _tax(),
        "demo_customers": customers,
        **history(seed, catalog, standard, customers),
        "catalog": catalog,
    }


def write(store: Any, tables: dict[str, pl.DataFrame]) -> None:
    """Load every table; the catalog last, so an interrupted run is redone by --if-empty."""
    for name in sorted(tables, key=lambda n: n == "catalog"):
        report = store.load_frame(name, tables[name])
        print(f"  {name}: {report.rows} rows")


def main(argv: list[str] | None = None) -> int:
    from engine.core.data import DataError
    from engine.ledger.store import Store, StoreError
    from server.settings import SettingsError, load_settings

    parser = argparse.ArgumentParser(
        prog="python -m server.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--db", metavar="PATH", default=None, help="DuckDB file (default from settings)"
    )
    parser.add_argument(
        "--if-empty", action="store_true", help="do nothing if the store has a catalog"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--skus", type=int, default=3000)
    parser.add_argument("--customers", type=int, default=200)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(db_path=args.db)
        with Store(settings.db_path) as store:
            if args.if_empty and store.has_catalog():
                print(f"store already has data ({settings.db_path}); nothing to do")
                return 0
            print(f"writing demo data to {settings.db_path} (seed {args.seed})")
            write(store, generate(args.seed, args.skus, args.customers))
    except (SettingsError, StoreError, DataError) as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

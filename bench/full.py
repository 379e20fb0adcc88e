"""The full demo ruleset (every stage: price lists, line promotions, combos, pools, order
promotions, gifts, caps, floors, approval bands, tax) over seeded demo carts.

``python -m bench.full [--carts N]`` prints one JSON object; ``bench.run`` reports it under
``"full"``. Batch: ``quote_batch`` over every cart (JSON in, JSON out, the bulk path).
Per cart: ``quote`` on 10-line carts.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.api import compile_ruleset, load_sources, quote, quote_batch
from engine.data import DataSet
from server.demo import generate

ROOT = Path(__file__).resolve().parents[1]


def demo_carts(tables: dict[str, Any], n_carts: int, seed: int, lines: int | None = None) -> list[dict[str, Any]]:
    """Carts of 1-20 lines (or exactly ``lines``) from the demo's customers and SKUs."""
    rng = random.Random(seed)
    customers = tables["demo_customers"].to_dicts()
    skus = [s for s in tables["standard_prices"]["sku"].unique(maintain_order=True).to_list() if s]
    carts = []
    for _ in range(n_carts):
        customer = rng.choice(customers)
        count = lines or rng.randint(1, 20)
        cart_lines = []
        for i in range(count):
            line: dict[str, Any] = {"id": str(i + 1), "sku": rng.choice(skus), "qty": str(rng.choice((1, 2, 3, 5, 10, 12, 24, 50, 100)))}
            if rng.random() < 0.05:
                line["manual_discount"] = rng.choice(("3%", "7%", "12%", "20%"))
            cart_lines.append(line)
        carts.append(
            {
                "date": "2026-11-22",
                "customer": {"id": customer["id"], "tier": customer["tier"], "region": customer["region"]},
                "lines": cart_lines,
            }
        )
    return carts


def run(n_carts: int = 20_000, seed: int = 7, cart_calls: int = 2_000) -> dict[str, Any]:
    tables = generate()
    catalog = tables.pop("catalog")
    data = DataSet(catalog=catalog, tables=tables)
    sources = {str(Path(p).relative_to(ROOT)): s for p, s in load_sources(ROOT / "rules").items()}
    t0 = time.perf_counter()
    plan = compile_ruleset(sources, data)
    compile_ms = (time.perf_counter() - t0) * 1000
    carts = demo_carts(tables, n_carts, seed)
    n_lines = sum(len(c["lines"]) for c in carts)
    quote_batch(plan, carts[:1000])  # warm the signature tables
    gc.collect()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        answers = quote_batch(plan, carts)
        times.append(time.perf_counter() - t0)
    small = demo_carts(tables, cart_calls + 200, seed + 1, lines=10)
    for cart in small[:200]:
        quote(plan, cart)
    samples = []
    for cart in small[200:]:
        t0 = time.perf_counter_ns()
        quote(plan, cart)
        samples.append(time.perf_counter_ns() - t0)
    us = np.asarray(samples, dtype=np.float64) / 1e3
    return {
        "rules": len(plan.rules),
        "carts": n_carts,
        "lines": n_lines,
        "compile_ms": round(compile_ms, 1),
        "batch_lines_per_s": round(n_lines / min(times)),
        "batch_s": [round(t, 3) for t in times],
        "cart_us": {"p50": round(float(np.percentile(us, 50)), 1), "p99": round(float(np.percentile(us, 99)), 1)},
        "gifts_given": sum(len(a["gifts"]) for a in answers),
        "adjustments": sum(len(line.get("adjustments", ())) for a in answers for line in a["lines"]),
        "note": "batch = quote_batch (JSON carts in, JSON answers out, bulk path); per cart = quote on 10-line carts",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--carts", type=int, default=20_000)
    parser.add_argument("--cart-calls", type=int, default=2_000)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.carts, cart_calls=args.cart_calls)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

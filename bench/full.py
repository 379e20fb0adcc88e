"""The full demo ruleset (every stage: price lists, line promotions, combos, pools, order
promotions, gifts, caps, floors, approval bands, tax) over seeded demo carts.

``python -m bench.full [--carts N]`` prints one JSON object; ``bench.run`` reports it under
``"full"``. Batch: ``quote_batch`` over every cart (JSON in, JSON out, the bulk path), and
``price_frames`` over the same carts as polars frames (columnar in and out; the frames carry
no manual discounts, so those carts are priced without them, here and in the check).
Per cart: ``quote`` on 10-line carts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from engine.api import compile_ruleset, load_sources, price_frames, quote, quote_batch
from engine.core.data import DataSet
from engine.core.money import parse_money
from server.demo import generate

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest.json"


def demo_carts(
    tables: dict[str, Any], n_carts: int, seed: int, lines: int | None = None
) -> list[dict[str, Any]]:
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
            line: dict[str, Any] = {
                "id": str(i + 1),
                "sku": rng.choice(skus),
                "qty": str(rng.choice((1, 2, 3, 5, 10, 12, 24, 50, 100))),
            }
            if rng.random() < 0.05:
                line["manual_discount"] = rng.choice(("3%", "7%", "12%", "20%"))
            cart_lines.append(line)
        carts.append(
            {
                "date": "2026-11-22",
                "customer": {
                    "id": customer["id"],
                    "tier": customer["tier"],
                    "region": customer["region"],
                },
                "lines": cart_lines,
            }
        )
    return carts


def demo_frames(carts: list[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``carts`` as the carts and lines frames of ``price_frames`` (manual discounts dropped)."""
    cart_frame = pl.DataFrame(
        {
            "cart_id": list(range(len(carts))),
            "date": [c["date"] for c in carts],
            "customer_id": [c["customer"]["id"] for c in carts],
            "customer_tier": [c["customer"]["tier"] for c in carts],
            "customer_region": [c["customer"]["region"] for c in carts],
        }
    )
    line_frame = pl.DataFrame(
        {
            "cart_id": [i for i, c in enumerate(carts) for _ in c["lines"]],
            "line_id": [line["id"] for c in carts for line in c["lines"]],
            "sku": [line["sku"] for c in carts for line in c["lines"]],
            "qty": [line["qty"] for c in carts for line in c["lines"]],
        }
    )
    return cart_frame, line_frame


def without_manual_discounts(carts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **c,
            "lines": [
                {k: v for k, v in line.items() if k != "manual_discount"} for line in c["lines"]
            ],
        }
        for c in carts
    ]


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
    quote_batch(plan, carts[:1000])  # warm-up (the compiler already built every table)
    gc.collect()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        answers = quote_batch(plan, carts)
        times.append(time.perf_counter() - t0)
    cart_frame, line_frame = demo_frames(carts)
    priced = price_frames(plan, cart_frame, line_frame)  # warm-up, and the answers checked below
    gc.collect()
    frame_times = []
    for _ in range(3):
        t0 = time.perf_counter()
        price_frames(plan, cart_frame, line_frame)
        frame_times.append(time.perf_counter() - t0)
    check = without_manual_discounts(carts[:500])
    batch_nets = [
        parse_money(line["net_amount"], a["currency"]) if line.get("status") == "ok" else None
        for a in quote_batch(plan, check)
        for line in a["lines"]
    ]
    frame_nets = priced.filter(pl.col("cart_id") < len(check))["net_amount_minor"].to_list()
    # a row count that differs is a mismatch of its own (one per missing or extra row)
    frames_vs_batch = abs(len(batch_nets) - len(frame_nets)) + sum(
        a != b for a, b in zip(batch_nets, frame_nets, strict=False)
    )
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
        "frames_lines_per_s": round(priced.height / min(frame_times)),
        "frames_s": [round(t, 3) for t in frame_times],
        "frames_rows": priced.height,
        "frames_vs_batch_mismatches": frames_vs_batch,
        "cart_us": {
            "p50": round(float(np.percentile(us, 50)), 1),
            "p99": round(float(np.percentile(us, 99)), 1),
        },
        "gifts_given": sum(len(a["gifts"]) for a in answers),
        "adjustments": sum(
            len(line.get("adjustments", ())) for a in answers for line in a["lines"]
        ),
        "note": (
            "batch = quote_batch (JSON carts in, JSON answers out, bulk path); frames = price_frames "
            "(polars frames in and out, no manual discounts; lines/s = priced rows / time); "
            "per cart = quote on 10-line carts"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--carts", type=int, default=20_000)
    parser.add_argument("--cart-calls", type=int, default=2_000)
    parser.add_argument(
        "--save",
        type=Path,
        nargs="?",
        const=RESULTS,
        default=None,
        help='replace "full" in a results JSON (default bench/results/latest.json)',
    )
    args = parser.parse_args(argv)
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    loadavg = [round(x, 2) for x in os.getloadavg()]
    figures = run(args.carts, cart_calls=args.cart_calls)
    print(json.dumps(figures))
    if args.save is not None:
        current = json.loads(args.save.read_text(encoding="utf-8")) if args.save.is_file() else {}
        current["full"] = figures
        if "frames_vs_batch_mismatches" in figures:
            current.setdefault("mismatches", {})["full_frames_vs_batch_mismatches"] = figures[
                "frames_vs_batch_mismatches"
            ]
        command = " ".join(["python -m bench.full", *(sys.argv[1:] if argv is None else argv)])
        current.setdefault("merged", {})["full demo ruleset"] = {
            "command": command,
            "generated_at": started_at,
            "loadavg_at_start": loadavg,
        }
        args.save.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The first quotes after a publish: does a new customer context pay for building tables?

``python -m bench.first_quote [--ruleset demo|gen] [--rules N]`` compiles the ruleset
(timed), then quotes ten carts, each from a customer context not seen before (distinct
tier and region, and for the demo every third with ``segment: installer``), timing each;
then the same ten again (every context now seen). It prints one JSON object: the compile
time, the ten first quotes in ms, the warm repeat, and ``first`` / ``tenth`` / ``warm_p50``.
Only the public API is used, so the same command measures any revision.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from engine.api import compile_ruleset, load_sources, quote
from engine.core.data import DataSet

ROOT = Path(__file__).resolve().parents[1]


def _distinct_contexts(carts: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    seen: set[tuple[Any, ...]] = set()
    chosen = []
    for c in carts:
        key = (c["customer"].get("tier"), c["customer"].get("region"))
        if key not in seen:
            seen.add(key)
            chosen.append(c)
        if len(chosen) == n:
            break
    return chosen


def demo_workload() -> tuple[dict[str, str], DataSet, list[dict[str, Any]]]:
    from bench.full import demo_carts
    from server.demo import generate

    tables = generate()
    catalog = tables.pop("catalog")
    data = DataSet(catalog=catalog, tables=tables)
    sources = {str(Path(p).relative_to(ROOT)): s for p, s in load_sources(ROOT / "rules").items()}
    carts = _distinct_contexts(demo_carts(tables, 400, seed=5, lines=10), 10)
    for k, c in enumerate(carts):
        if k % 3 == 2:
            c["customer"]["segment"] = "installer"
    return sources, data, carts


def gen_workload(n_rules: int) -> tuple[dict[str, str], DataSet, list[dict[str, Any]]]:
    from bench.gen import generate

    w = generate(n_skus=10_000, n_customers=50_000, n_carts=1_000, n_rules=n_rules, seed=42)
    return w.sources, w.data, _distinct_contexts(w.latency_carts(2_000), 10)


def run(ruleset: str, n_rules: int) -> dict[str, Any]:
    sources, data, carts = demo_workload() if ruleset == "demo" else gen_workload(n_rules)
    compile_ruleset(sources, data)  # imports and first-call costs out of the way
    t0 = time.perf_counter()
    plan = compile_ruleset(sources, data)
    compile_s = time.perf_counter() - t0
    first = []
    for c in carts:
        t0 = time.perf_counter()
        quote(plan, c)
        first.append((time.perf_counter() - t0) * 1000)
    warm = []
    for c in carts:
        t0 = time.perf_counter()
        quote(plan, c)
        warm.append((time.perf_counter() - t0) * 1000)
    return {
        "ruleset": ruleset if ruleset == "demo" else f"gen R={n_rules}",
        "compile_s": round(compile_s, 3),
        "first_quotes_ms": [round(x, 2) for x in first],
        "warm_quotes_ms": [round(x, 2) for x in warm],
        "first": round(first[0], 2),
        "tenth": round(first[-1], 2),
        "warm_p50": round(statistics.median(warm), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ruleset", choices=("demo", "gen"), default="demo")
    parser.add_argument("--rules", type=int, default=1000)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.ruleset, args.rules)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Rebate batch benchmark: a generated history of 10M order lines and 5,000 partners.

The history is generated once, in chunks, to a Parquet file of typed columns (the
canonical form, ``engine.batch.history``), and the run scans it lazily in a child process so
that its time and peak memory (``ru_maxrss``) are the run's alone. The run computes a
ruleset of five policies: a retroactive rebate by attainment against a target table with
a category filter and returns, an incremental rebate by basis, a marketing fund, a
referrer commission with caps, and partner tiers.

    python -m bench.rebates                 # 10M lines, writes "rebates" in latest.json
    python -m bench.rebates --lines 1000000 --no-save
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "latest.json"
CACHE = BENCH_DIR / ".cache"
CATEGORIES = ("reagent", "tools", "cable", "safety", "lighting", "kits")

RULES = """\
ruleset "bench" currency CNY timezone "Asia/Shanghai" rounding half_up

rebate "Q4 reagent volume" {
  period quarter
  basis net_amount where category == "reagent" minus returns
  target table rebate_targets
  tiers retroactive by attainment {
    >= 80%: 1%
    >= 100%: 2%
    >= 120%: 3%
  }
  cap 100000.00 per customer
  minimum payout 50.00
}

rebate "Q4 growth bands" {
  period quarter
  basis net_amount minus returns
  tiers incremental by basis {
    >= 0.00: 0.5%
    >= 500000.00: 1%
    >= 2000000.00: 1.5%
  }
}

fund "Q4 co-op" {
  period quarter
  basis net_amount where brand == "acme" minus returns
  earn 2%
}

commission "referrals" {
  period quarter
  beneficiary referrer
  earn 3% of order
  cap 500.00 per order
  cap 20000.00 per period
}

partner tiers "Q4 levels" {
  period quarter
  level "Platinum" when purchases >= 5000000.00 and leads_submitted >= 20
  level "Gold" when purchases >= 1000000.00
  level "Silver" when purchases >= 200000.00
  default "Bronze"
}
"""


def catalog(n_skus: int = 3_000) -> pl.DataFrame:
    idx = np.arange(n_skus)
    return pl.DataFrame(
        {
            "sku": [f"S{i:05d}" for i in idx],
            "base_unit": ["pcs"] * n_skus,
            "category": [CATEGORIES[i % len(CATEGORIES)] for i in idx],
            "brand": ["acme" if i % 3 == 0 else "bolt" for i in idx],
        }
    )


def generate(path: Path, n_lines: int, n_partners: int, seed: int, chunk: int = 1_000_000) -> Path:
    """Write ``order_lines.parquet``, ``returns.parquet`` and ``events.parquet`` under ``path``."""
    from engine.batch.history import write_canonical

    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_skus = 3_000
    q4 = np.datetime64("2026-10-01")

    def chunks() -> Any:
        done = 0
        while done < n_lines:
            n = min(chunk, n_lines - done)
            order = (done + np.arange(n)) // 5  # five lines an order
            customer = rng.integers(0, n_partners, n)
            customer = customer[np.searchsorted(order, order)]  # one customer per order
            has_ref = rng.random(n) < 0.3
            ref = rng.integers(0, n_partners, n)[np.searchsorted(order, order)]
            qty = rng.integers(1, 50, n) * 1000
            price = rng.integers(500, 200_000, n)
            net = qty // 1000 * price
            days = rng.integers(0, 92, n)[np.searchsorted(order, order)]
            frame = pl.DataFrame(
                {
                    "order_id": pl.Series(order).cast(pl.String),
                    "line_id": pl.Series(np.arange(n) % 5 + 1).cast(pl.String),
                    "date": pl.Series(
                        (q4 + days.astype("timedelta64[D]")).astype("datetime64[D]")
                    ).cast(pl.Date),
                    "customer_id": pl.Series(customer).cast(pl.String),
                    "referrer": pl.Series(np.where(has_ref, ref, -1))
                    .cast(pl.String)
                    .replace("-1", None),
                    "project": pl.Series([None] * n, dtype=pl.String),
                    "sku": "S" + pl.Series(rng.integers(0, n_skus, n)).cast(pl.String).str.zfill(5),
                    "qty": pl.Series(qty, dtype=pl.Int64),
                    "list_amount": pl.Series(net + net // 10, dtype=pl.Int64),
                    "net_amount": pl.Series(net, dtype=pl.Int64),
                    "currency": pl.Series(["CNY"], dtype=pl.String).extend_constant("CNY", n - 1),
                    "special": pl.Series(rng.random(n) < 0.05),
                }
            )
            done += n
            yield frame

    write_canonical(chunks(), path / "order_lines.parquet")
    n_ret = max(n_lines // 100, 1)
    r_order = rng.integers(0, n_lines // 5, n_ret)
    pl.DataFrame(
        {
            "return_id": pl.Series(np.arange(n_ret)).cast(pl.String),
            "order_id": pl.Series(r_order).cast(pl.String),
            "date": pl.repeat(dt.date(2026, 12, 15), n_ret, eager=True),
            "customer_id": pl.Series(rng.integers(0, n_partners, n_ret)).cast(pl.String),
            "sku": "S" + pl.Series(rng.integers(0, n_skus, n_ret)).cast(pl.String).str.zfill(5),
            "qty": pl.Series(rng.integers(1, 5, n_ret) * 1000, dtype=pl.Int64),
            "net_amount": pl.Series(rng.integers(1_000, 500_000, n_ret), dtype=pl.Int64),
            "currency": pl.Series(["CNY"] * n_ret),
        }
    ).write_parquet(path / "returns.parquet")
    n_ev = n_partners * 20
    kinds = np.array(["lead_submitted", "lead_converted", "merchant_referred", "partner_recruited"])
    pl.DataFrame(
        {
            "event_id": pl.Series(np.arange(n_ev)).cast(pl.String),
            "date": pl.Series(
                (q4 + rng.integers(0, 92, n_ev).astype("timedelta64[D]")).astype("datetime64[D]")
            ).cast(pl.Date),
            "partner_id": pl.Series(rng.integers(0, n_partners, n_ev)).cast(pl.String),
            "kind": pl.Series(kinds[rng.integers(0, 4, n_ev)]),
            "order_id": pl.Series([None] * n_ev, dtype=pl.String),
            "amount": pl.Series([None] * n_ev, dtype=pl.Int64),
        }
    ).write_parquet(path / "events.parquet")
    pl.DataFrame(
        {
            "customer_id": pl.Series(np.arange(n_partners)).cast(pl.String),
            "period": ["2026-Q4"] * n_partners,
            "target": [f"{t}.00" for t in rng.integers(50_000, 2_000_000, n_partners)],
        }
    ).write_csv(path / "rebate_targets.csv")
    return path


def run_once(path: Path) -> dict[str, Any]:
    """The timed run (called in a child process): compile, scan, compute, no output file."""
    from engine.api import compile_policies
    from engine.batch.history import read_history
    from engine.batch.rebates import parse_period, run_policies
    from engine.core.data import DataSet

    started = time.perf_counter()
    data = DataSet(
        catalog=catalog(),
        tables={"rebate_targets": pl.read_csv(path / "rebate_targets.csv", infer_schema=False)},
    )
    policies = compile_policies({"bench.rule": RULES}, data)
    history = read_history(path, policies.currency)
    result = run_policies(policies, history, parse_period("2026-Q4"))
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "result_rows": result.rows.height,
        "policies": policies.count,
    }


def run(
    n_lines: int = 10_000_000, n_partners: int = 5_000, seed: int = 11, runs: int = 2
) -> dict[str, Any]:
    path = CACHE / f"history_{n_lines}_{n_partners}_{seed}"
    started = time.perf_counter()
    if not (path / "events.parquet").is_file():
        print(
            f"[rebates] generating {n_lines:,} lines, {n_partners:,} partners -> {path}",
            file=sys.stderr,
        )
        generate(path, n_lines, n_partners, seed)
    generate_s = round(time.perf_counter() - started, 1)
    best: dict[str, Any] | None = None
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-m", "bench.rebates", "--run-only", str(path)],
            check=True,
            capture_output=True,
            text=True,
            cwd=BENCH_DIR.parent,
        )
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        if best is None or figures["seconds"] < best["seconds"]:
            best = figures
    assert best is not None
    size_mb = round(sum(f.stat().st_size for f in path.iterdir()) / 2**20, 1)
    return {
        **best,
        "lines": n_lines,
        "partners": n_partners,
        "history_mb": size_mb,
        "generate_s": generate_s,
        "runs": runs,
        "target_s": 10.0,
        "target_met": best["seconds"] < 10.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="rebate batch benchmark")
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--partners", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--no-save", action="store_true", help="print only; leave latest.json alone"
    )
    parser.add_argument("--run-only", metavar="DIR", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_only:
        print(json.dumps(run_once(Path(args.run_only))))
        return 0
    figures = run(args.lines, args.partners, args.seed, args.runs)
    print(json.dumps(figures, indent=2))
    if not args.no_save:
        current = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() else {}
        current["rebates"] = figures
        RESULTS.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

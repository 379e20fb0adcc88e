"""The benchmark rules as one GoRules zen-engine first-hit decision table, run at zen's
fast configuration.

Table layout (JDM: inputNode -> decisionTableNode, hitPolicy "first" -> outputNode):

* input columns ``category``, ``sku``, ``qty``, ``tier``, ``region`` (the most selective
  first, which measured fastest at 1,000 rules); cells are zen unary expressions:
  ``"gold", "silver"`` (value in the set), ``>= 5`` (qty), empty for any;
* one output column ``bp``: the rule's percentage in basis points (an integer, so no float
  ever holds a percentage);
* rows in priority order. A rule "(category in C or sku in S)" becomes **two adjacent rows**
  with the same tier/region/qty cells and the same output, one with the category cell and an
  empty SKU cell, the other the reverse (a rule with only C or only S is one row). A
  decision table ANDs its cells, so the disjunction needs two rows; keeping them adjacent
  keeps the first hit equal to the first matching rule: the rows of rule k come after
  every row of rules < k and before every row of rules > k.

The table is built twice: ``line`` takes one line's facts and answers ``{"bp": 750}`` or
``{}`` (no hit); ``loop`` runs in zen's ``loop`` execution mode over an input array
``lines`` and writes one result per line to ``results`` (``{"bp": 750}`` or ``None``).

**Fast configuration** (``ZenPricer``): one ``ZenEngine`` with a static loader holding both
graphs, created once (zen parses and compiles them at creation: ~30-55 ms at 1,000 rules),
then ``engine.evaluate(key, context)`` per call. The batch is measured four ways and the
best is reported: one call per line (``line``), one ``loop`` call per cart, one ``loop``
call per chunk of 100 or 1,000 lines (``LOOP_CHUNKS``). One 10-line cart is one ``loop``
call, timed from the request-shaped cart (contexts built per call, like pricer's ``quote``)
and, as zen's floor, from contexts built beforehand (``cart_us_zen_evaluate_only``).

**Slow path** (``ZenSlowPricer``, a labelled note only): ``ZenEngine().create_decision(
content).evaluate(context)``, one ``loop`` call per cart. In zen-engine 2.1.3's Python
binding that path is far slower per call (measured on this machine at 1,000 rules: ~1.5-2.3k
lines/s, against ~80-130k lines/s for the same per-cart calls through the static loader),
so it is no measure of zen's engine and no ratio uses it.

Net per line is computed here, in integer minor units:
``net = list - round_half_up(list x bp / 10000)``.

``python -m bench.zen_runner`` measures zen alone at R = 10, 100, 1000 on the benchmark
workload and checks its answers against pricer's ``price_frames`` and ``quote``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zen

from bench.gen import Rule, discount_minor

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest.json"
COLUMNS = ("category", "sku", "qty", "tier", "region")
LINE, LOOP = "line", "loop"  # the static loader's keys
LOOP_CHUNKS = (100, 1_000)  # lines per ``loop`` call in the chunked batch modes
BATCH_MODES = ("per_line", "per_cart", *(f"loop_chunk_{n}" for n in LOOP_CHUNKS))


def _set_cell(values: tuple[str, ...] | None) -> str:
    return "" if values is None else ", ".join(json.dumps(v) for v in values)


def decision_table(rules: Sequence[Rule], *, loop: bool = True) -> dict[str, Any]:
    """The JDM graph for ``rules`` (highest priority first)."""
    inputs = [{"id": f"in_{c}", "name": c, "type": "expression", "field": c} for c in COLUMNS]
    outputs = [{"id": "out_bp", "name": "bp", "type": "expression", "field": "bp"}]
    rows: list[dict[str, str]] = []
    for rule in rules:
        base = {
            "in_tier": _set_cell(rule.tiers),
            "in_region": _set_cell(rule.regions),
            "in_qty": f">= {rule.min_qty}",
            "out_bp": str(rule.percent_bp),
        }
        item_cells = []
        if rule.categories:
            item_cells.append({"in_category": _set_cell(rule.categories), "in_sku": ""})
        if rule.skus:
            item_cells.append({"in_category": "", "in_sku": _set_cell(rule.skus)})
        for k, cells in enumerate(item_cells):
            rows.append({"_id": f"{rule.name}_{k}", "_description": rule.name, **base, **cells})
    content: dict[str, Any] = {
        "hitPolicy": "first",
        "inputs": inputs,
        "outputs": outputs,
        "rules": rows,
    }
    if loop:
        content.update(inputField="lines", executionMode="loop", outputPath="results")
    return {
        "contentType": "application/vnd.gorules.decision",
        "nodes": [
            {"id": "request", "type": "inputNode", "name": "Request", "position": {"x": 0, "y": 0}},
            {
                "id": "rules",
                "type": "decisionTableNode",
                "name": "Rules",
                "position": {"x": 200, "y": 0},
                "content": content,
            },
            {
                "id": "response",
                "type": "outputNode",
                "name": "Response",
                "position": {"x": 400, "y": 0},
            },
        ],
        "edges": [
            {"id": "e1", "type": "edge", "sourceId": "request", "targetId": "rules"},
            {"id": "e2", "type": "edge", "sourceId": "rules", "targetId": "response"},
        ],
    }


def _loop_percents(
    evaluate: Callable[[dict[str, Any]], Any], groups: Sequence[Sequence[dict[str, Any]]]
) -> np.ndarray:
    """One ``loop`` evaluation per group of lines; the percentage (bp, 0 for none) per line."""
    bp: list[int] = []
    for group in groups:
        results = evaluate({"lines": group})["result"]["results"]
        if len(results) != len(group):
            raise RuntimeError("zen returned a result count different from its input")
        bp.extend(int(hit["bp"]) if hit else 0 for hit in results)
    return np.asarray(bp, dtype=np.int64)


def split(contexts: Sequence[dict[str, Any]], sizes: Sequence[int]) -> list[list[dict[str, Any]]]:
    """``contexts`` cut into consecutive groups of the given sizes."""
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
    if bounds[-1] != len(contexts):
        raise ValueError("group sizes do not add up to the number of lines")
    return [list(contexts[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]


def chunks(contexts: Sequence[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [list(contexts[lo : lo + size]) for lo in range(0, len(contexts), size)]


def cart_contexts(
    cart: dict[str, Any], category_of: dict[str, str], price_of: dict[str, int]
) -> tuple[list[dict[str, Any]], list[int]]:
    """The zen input contexts and list amounts (minor units) of one request-shaped cart."""
    customer = cart["customer"]
    tier, region = customer["tier"], customer["region"]
    contexts = []
    amounts = []
    for line in cart["lines"]:
        sku = line["sku"]
        qty = int(line["qty"])
        contexts.append(
            {"tier": tier, "region": region, "category": category_of[sku], "sku": sku, "qty": qty}
        )
        amounts.append(price_of[sku] * qty)
    return contexts, amounts


def _net(amount: int, hit: dict[str, Any] | None) -> int:
    return amount - (amount * int(hit["bp"]) + 5_000) // 10_000 if hit else amount


class ZenPricer:
    """zen at its fast configuration: one ``ZenEngine`` with a static loader, created once."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.graphs = {LINE: decision_table(rules, loop=False), LOOP: decision_table(rules)}
        t0 = time.perf_counter()
        self.engine = zen.ZenEngine({"loader": {"type": "static", "content": self.graphs}})
        self.load_ms = round((time.perf_counter() - t0) * 1e3, 1)
        self.engine.evaluate(LINE, {})
        self.engine.evaluate(LOOP, {"lines": []})

    def percents_bp(
        self,
        contexts: Sequence[dict[str, Any]],
        mode: str = "per_line",
        cart_sizes: Sequence[int] | None = None,
    ) -> np.ndarray:
        """The first matching rule's percentage in basis points per line (0 if none).

        ``mode``: ``per_line`` (one ``evaluate`` per line), ``per_cart`` (one ``loop``
        evaluation per cart, ``cart_sizes`` giving the lines of each) or
        ``loop_chunk_<n>`` (one ``loop`` evaluation per ``n`` lines).
        """
        return self.run_groups(self.groups(contexts, mode, cart_sizes), mode)

    def groups(
        self,
        contexts: Sequence[dict[str, Any]],
        mode: str,
        cart_sizes: Sequence[int] | None = None,
    ) -> Sequence[Any]:
        """The evaluation inputs of ``mode``, prepared outside any timed region."""
        if mode == "per_line":
            return contexts
        if mode == "per_cart":
            if cart_sizes is None:
                raise ValueError("per_cart needs the cart sizes")
            return split(contexts, cart_sizes)
        if mode.startswith("loop_chunk_"):
            return chunks(contexts, int(mode.removeprefix("loop_chunk_")))
        raise ValueError(f"unknown zen batch mode {mode!r}")

    def run_groups(self, groups: Sequence[Any], mode: str) -> np.ndarray:
        evaluate = self.engine.evaluate
        if mode == "per_line":
            return np.asarray(
                [evaluate(LINE, c)["result"].get("bp", 0) for c in groups], dtype=np.int64
            )
        return _loop_percents(lambda ctx: evaluate(LOOP, ctx), groups)

    def net_minor(
        self,
        contexts: Sequence[dict[str, Any]],
        list_minor: np.ndarray,
        mode: str = "per_line",
        cart_sizes: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Net amount per line in minor units."""
        bp = self.percents_bp(contexts, mode, cart_sizes)
        net: np.ndarray = list_minor - discount_minor(list_minor, bp)
        return net

    def quote_cart(
        self,
        cart: dict[str, Any],
        category_of: dict[str, str],
        price_of: dict[str, int],
    ) -> list[int]:
        """Net minor units per line of one request-shaped cart: one ``loop`` evaluation."""
        contexts, amounts = cart_contexts(cart, category_of, price_of)
        results = self.engine.evaluate(LOOP, {"lines": contexts})["result"]["results"]
        return [_net(a, hit) for a, hit in zip(amounts, results, strict=True)]


class ZenSlowPricer:
    """The slow path, for a labelled note only: ``create_decision(...).evaluate`` per cart."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.decision = zen.ZenEngine().create_decision(json.dumps(decision_table(rules)))
        self.decision.evaluate({"lines": []})

    def percents_bp(self, groups: Sequence[Sequence[dict[str, Any]]]) -> np.ndarray:
        return _loop_percents(self.decision.evaluate, groups)

    def quote_cart(
        self, cart: dict[str, Any], category_of: dict[str, str], price_of: dict[str, int]
    ) -> list[int]:
        contexts, amounts = cart_contexts(cart, category_of, price_of)
        results = self.decision.evaluate({"lines": contexts})["result"]["results"]
        return [_net(a, hit) for a, hit in zip(amounts, results, strict=True)]


# ---- measuring -------------------------------------------------------------------------


def percentiles_us(samples_ns: Sequence[int]) -> dict[str, float]:
    arr = np.asarray(samples_ns, dtype=np.float64) / 1e3
    return {
        "p50": round(float(np.percentile(arr, 50)), 1),
        "p99": round(float(np.percentile(arr, 99)), 1),
        "mean": round(float(arr.mean()), 1),
        "n": len(arr),
    }


def time_calls(fn: Callable[[Any], Any], items: Sequence[Any], warmup: int) -> list[int]:
    """Wall time (ns) of ``fn`` on each item after the first ``warmup`` items (untimed)."""
    for item in items[:warmup]:
        fn(item)
    gc.collect()
    out = []
    clock = time.perf_counter_ns
    for item in items[warmup:]:
        t0 = clock()
        fn(item)
        out.append(clock() - t0)
    return out


def measure(
    rules: Sequence[Rule],
    contexts: Sequence[dict[str, Any]],
    cart_sizes: Sequence[int],
    list_minor: np.ndarray,
    latency_carts: Sequence[dict[str, Any]],
    category_of: dict[str, str],
    price_of: dict[str, int],
    *,
    batch_runs: int = 3,
    cart_calls: int = 500,
    warmup: int = 200,
    check_carts: int = 500,
    slow_lines: int = 1_000,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """zen's batch lines/s (every mode, best of ``batch_runs``), per-cart µs, slow-path note.

    Returns ``(figures, answers)``: ``figures`` is JSON; ``answers`` holds zen's net per
    line for every batch mode (``net_by_mode``), the slow path's on the first carts
    (``slow_net``) and the nets of the first ``check_carts`` latency carts (``cart_nets``),
    for ``agreement`` to compare with pricer.
    """
    zen_pricer = ZenPricer(rules)
    out: dict[str, Any] = {"zen_load_ms": zen_pricer.load_ms}
    prepared = {m: zen_pricer.groups(contexts, m, cart_sizes) for m in BATCH_MODES}
    net_by_mode = {}
    best_s = {m: float("inf") for m in BATCH_MODES}
    for _ in range(max(batch_runs, 1)):
        for mode in BATCH_MODES:  # interleaved, so that a noisy moment hits every mode
            gc.collect()
            t0 = time.perf_counter()
            bp = zen_pricer.run_groups(prepared[mode], mode)
            best_s[mode] = min(best_s[mode], time.perf_counter() - t0)
            net_by_mode[mode] = list_minor - discount_minor(list_minor, bp)
    by_mode = {m: round(len(contexts) / s) for m, s in best_s.items()}
    best = max(by_mode, key=by_mode.__getitem__)
    out["zen_lines_per_s"] = by_mode[best]
    out["zen_batch_mode"] = best
    out["zen_lines_per_s_by_mode"] = by_mode

    carts = list(latency_carts[: warmup + cart_calls])
    out["cart_us_zen"] = percentiles_us(
        time_calls(lambda c: zen_pricer.quote_cart(c, category_of, price_of), carts, warmup)
    )
    # zen's floor: the same carts' contexts built beforehand, only ``engine.evaluate`` timed
    prebuilt = [{"lines": cart_contexts(c, category_of, price_of)[0]} for c in carts]
    evaluate = zen_pricer.engine.evaluate
    out["cart_us_zen_evaluate_only"] = percentiles_us(
        time_calls(lambda ctx: evaluate(LOOP, ctx), prebuilt, warmup)
    )
    cart_nets = [
        zen_pricer.quote_cart(c, category_of, price_of) for c in latency_carts[:check_carts]
    ]

    slow_net = np.zeros(0, dtype=np.int64)
    if slow_lines > 0:
        slow = ZenSlowPricer(rules)
        n_carts = max(int(np.searchsorted(np.cumsum(cart_sizes), slow_lines, side="right")), 1)
        groups = split(contexts[: int(sum(cart_sizes[:n_carts]))], cart_sizes[:n_carts])
        n = sum(len(g) for g in groups)
        t0 = time.perf_counter()
        slow_bp = slow.percents_bp(groups)
        out["zen_slow_lines_per_s"] = round(n / (time.perf_counter() - t0))
        out["zen_slow_lines"] = n
        out["zen_slow_note"] = (
            "ZenEngine().create_decision(content).evaluate, one loop call per cart, "
            f"on the first {n} sample lines; not zen's fast path"
        )
        slow_net = list_minor[:n] - discount_minor(list_minor[:n], slow_bp)
    answers = {"net_by_mode": net_by_mode, "slow_net": slow_net, "cart_nets": cart_nets}
    return out, answers


def agreement(
    answers: dict[str, Any], pricer_net: np.ndarray, quote_nets: Sequence[Sequence[int | None]]
) -> dict[str, int]:
    """Lines where zen's net differs from pricer's: batch (every mode), slow path, per cart."""
    by_mode = {m: int((net != pricer_net).sum()) for m, net in answers["net_by_mode"].items()}
    slow = answers["slow_net"]
    return {
        "zen_mismatches": sum(by_mode.values()),
        "zen_slow_mismatches": int((slow != pricer_net[: len(slow)]).sum()),
        "quote_vs_zen_mismatches": sum(
            a != b
            for qa, qb in zip(quote_nets, answers["cart_nets"], strict=True)
            for a, b in zip(qa, qb, strict=True)
        ),
    }


def cart_lookups(w: Any) -> tuple[dict[str, str], dict[str, int]]:
    """Category and standard price (minor units) by SKU id, for request-shaped carts."""
    from bench.gen import category_id

    category_of = {s: category_id(int(c)) for s, c in zip(w.sku_ids, w.sku_category, strict=True)}
    price_of = {s: int(p) for s, p in zip(w.sku_ids, w.sku_price_minor, strict=True)}
    return category_of, price_of


# ---- zen alone: ``python -m bench.zen_runner`` ------------------------------------------


def main(argv: list[str] | None = None) -> int:
    import polars as pl

    from bench.gen import FULL, RULE_COUNTS, generate
    from engine.api import compile_ruleset, price_frames, quote
    from engine.core.money import parse_money

    parser = argparse.ArgumentParser(description="zen-engine alone, checked against pricer")
    parser.add_argument("--rules", type=int, nargs="+", default=list(RULE_COUNTS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--n-carts", type=int, default=FULL["n_carts"])
    parser.add_argument("--sample-lines", type=int, default=20_000)
    parser.add_argument("--batch-runs", type=int, default=3)
    parser.add_argument("--cart-calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--check-carts", type=int, default=500)
    parser.add_argument("--slow-lines", type=int, default=1_000, help="0: skip the slow path")
    parser.add_argument(
        "--save",
        type=Path,
        nargs="?",
        const=RESULTS,
        default=None,
        help=f"merge the zen figures into a results JSON (default {RESULTS.relative_to(ROOT)})",
    )
    args = parser.parse_args(argv)

    sizes = {**FULL, "n_carts": args.n_carts}
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    loadavg = [round(x, 2) for x in os.getloadavg()]
    # the same base as bench.run (rules for the first count, reseeded for the others), so the
    # checked sample and the rules are the ones a full run uses
    base = generate(**sizes, n_rules=RULE_COUNTS[0], seed=args.seed)
    sample_carts = base.subsample_carts(args.sample_lines)
    sample_lines = base.lines_of(sample_carts)
    contexts = base.line_contexts(sample_lines)
    cart_sizes = np.diff(base.cart_offsets)[sample_carts].tolist()
    list_minor = base.list_minor(sample_lines)
    latency_carts = base.latency_carts(args.warmup + args.cart_calls, lines=10)
    category_of, price_of = cart_lookups(base)
    keep = pl.Series(sample_carts)
    carts = base.carts_frame().filter(pl.col("cart_id").is_in(keep))
    lines = (
        base.lines_frame()
        .with_columns(pl.Series("qty", base.line_qty))
        .filter(pl.col("cart_id").is_in(keep))
    )
    result: dict[str, Any] = {
        "command": " ".join(
            ["python -m bench.zen_runner", *(sys.argv[1:] if argv is None else argv)]
        ),
        "generated_at": started_at,
        "loadavg_at_start": loadavg,
        "sizes": {**sizes, "seed": args.seed, "checked_lines": len(contexts)},
        "zen_engine": _zen_version(),
        "per_rules": {},
    }
    for n_rules in args.rules:
        w = base if n_rules == base.n_rules else base.with_rules(n_rules)
        print(f"[R={n_rules}] zen on {len(contexts):,} lines", file=sys.stderr, flush=True)
        plan = compile_ruleset(w.sources, w.data)
        pricer_net = price_frames(plan, carts, lines)["net_amount_minor"].to_numpy()
        quote_nets = [
            [parse_money(x["net_amount"], "CNY") for x in quote(plan, c)["lines"]]
            for c in latency_carts[: args.check_carts]
        ]
        figures, answers = measure(
            w.rules, contexts, cart_sizes, list_minor, latency_carts, category_of, price_of,
            batch_runs=args.batch_runs, cart_calls=args.cart_calls, warmup=args.warmup,
            check_carts=args.check_carts, slow_lines=args.slow_lines,
        )  # fmt: skip
        figures.update(agreement(answers, pricer_net, quote_nets))
        result["per_rules"][str(n_rules)] = figures
        print(json.dumps({n_rules: figures}), file=sys.stderr, flush=True)
    print(json.dumps(result))
    if args.save is not None:
        save(result, args.save)
        print(f"merged the zen figures into {args.save}", file=sys.stderr)
    bad = {
        f"{k}@{r}": v[k] for r, v in result["per_rules"].items() for k in ZEN_MISMATCH_KINDS if v[k]
    }
    if bad:
        print(f"FAIL: zen and pricer disagree: {bad}", file=sys.stderr)
        return 1
    return 0


ZEN_MISMATCH_KINDS = ("zen_mismatches", "zen_slow_mismatches", "quote_vs_zen_mismatches")


def save(result: dict[str, Any], path: Path) -> None:
    """Merge a zen-only run into a ``bench.run`` results JSON: the zen figures are replaced,
    every other figure is left alone, and ``merged.zen`` says where the zen ones came from."""
    current: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    ours, theirs = result["sizes"], current.get("sizes", {})
    differ = [k for k in ours if k in theirs and theirs[k] != ours[k]]
    if differ:  # figures from another workload or sample would not be comparable
        raise SystemExit(f"not merged: {path} was run on other sizes ({', '.join(differ)})")
    per = result["per_rules"]
    top = max(per, key=int)
    for r, figures in per.items():
        current.setdefault("per_rules", {}).setdefault(r, {}).update(figures)
    batch = current.setdefault("batch_lines_per_s", {})
    batch.setdefault("zen", {}).update({r: v["zen_lines_per_s"] for r, v in per.items()})
    batch.setdefault("zen_mode", {}).update({r: v["zen_batch_mode"] for r, v in per.items()})
    cart = current.setdefault("cart_us", {})
    cart["zen"] = {k: per[top]["cart_us_zen"][k] for k in ("p50", "p99")}
    cart["zen_evaluate_only"] = {
        k: per[top]["cart_us_zen_evaluate_only"][k] for k in ("p50", "p99")
    }
    current.setdefault("cart_us_by_rules", {}).setdefault("zen", {}).update(
        {r: v["cart_us_zen"] for r, v in per.items()}
    )
    slow = {r: v["zen_slow_lines_per_s"] for r, v in per.items() if "zen_slow_lines_per_s" in v}
    current.setdefault("zen_slow_lines_per_s", {}).update(slow)
    current["zen_slow_note"] = (
        "not zen's fast path, not used in any ratio: ZenEngine().create_decision(content)"
        ".evaluate, one loop call per cart, on a small sample"
    )
    current.setdefault("mismatches", {}).update(
        {f"{k}@{r}": v[k] for r, v in per.items() for k in ZEN_MISMATCH_KINDS}
    )
    current.setdefault("merged", {})["zen"] = {
        k: result[k] for k in ("command", "generated_at", "loadavg_at_start", "sizes", "zen_engine")
    }
    path.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")


def _zen_version() -> str:
    from importlib.metadata import version

    return version("zen-engine")


if __name__ == "__main__":
    raise SystemExit(main())

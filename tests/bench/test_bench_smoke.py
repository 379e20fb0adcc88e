"""The benchmark's generator, at a tiny size, gives rules that pricer, zen and the reference
price identically (and that a plain first-hit loop over the rules prices the same way)."""

from __future__ import annotations

import numpy as np
import pytest

from bench import zen_runner
from bench.gen import Workload, _shadows, category_id, discount_minor, generate
from bench.zen_runner import BATCH_MODES, ZenPricer, ZenSlowPricer, split

SIZE = {"n_skus": 60, "n_customers": 40, "n_carts": 60, "n_rules": 30, "seed": 5}


@pytest.fixture(scope="module")
def workload() -> Workload:
    return generate(**SIZE)


def first_hit_net(w: Workload) -> np.ndarray:
    """Net minor units per line: the first rule (highest priority) that matches, or none."""
    contexts = w.line_contexts(np.arange(w.n_lines))
    bp = np.zeros(w.n_lines, dtype=np.int64)
    for i, c in enumerate(contexts):
        for rule in w.rules:
            if rule.matches(c["tier"], c["region"], c["category"], c["sku"], c["qty"]):
                bp[i] = rule.percent_bp
                break
    list_minor = w.list_minor(np.arange(w.n_lines))
    return list_minor - discount_minor(list_minor, bp)


def nets_of(response: dict) -> list[int]:
    from engine.core.money import parse_money

    return [parse_money(line["net_amount"], response["currency"]) for line in response["lines"]]


def test_generator_is_deterministic_and_seed_sensitive() -> None:
    a, b, c = generate(**SIZE), generate(**SIZE), generate(**{**SIZE, "seed": 6})
    assert a.rule_text == b.rule_text
    assert np.array_equal(a.line_sku, b.line_sku) and np.array_equal(a.line_qty, b.line_qty)
    assert a.rule_text != c.rule_text


def test_rules_have_distinct_priorities_and_none_is_shadowed(workload: Workload) -> None:
    rules = workload.rules
    assert len({r.priority for r in rules}) == len(rules)
    cat_of = {
        sid: category_id(int(c))
        for sid, c in zip(workload.sku_ids, workload.sku_category, strict=True)
    }
    for k, later in enumerate(rules):
        for earlier in rules[:k]:
            assert not _shadows(
                earlier, frozenset(earlier.categories), frozenset(earlier.skus), later, cat_of
            )


def test_rules_discount_some_lines_but_not_all(workload: Workload) -> None:
    net = first_hit_net(workload)
    discounted = net != workload.list_minor(np.arange(workload.n_lines))
    assert 0 < discounted.sum() < workload.n_lines


def test_zen_decision_table_is_first_hit(workload: Workload) -> None:
    lines = np.arange(workload.n_lines)
    zen = ZenPricer(workload.rules)
    contexts, list_minor = workload.line_contexts(lines), workload.list_minor(lines)
    sizes = np.diff(workload.cart_offsets).tolist()
    expected = first_hit_net(workload)
    for mode in BATCH_MODES:  # every batch configuration of the fast engine
        assert np.array_equal(zen.net_minor(contexts, list_minor, mode, sizes), expected), mode
    slow_bp = ZenSlowPricer(workload.rules).percents_bp(split(contexts, sizes))
    assert np.array_equal(list_minor - discount_minor(list_minor, slow_bp), expected)
    cat_of = {
        s: category_id(int(c)) for s, c in zip(workload.sku_ids, workload.sku_category, strict=True)
    }
    price_of = {s: int(p) for s, p in zip(workload.sku_ids, workload.sku_price_minor, strict=True)}
    per_cart = [
        n
        for i in range(workload.n_carts)
        for n in zen.quote_cart(workload.cart_dict(i), cat_of, price_of)
    ]
    assert per_cart == expected.tolist()


def test_pricer_batch_and_quote_agree_with_first_hit(workload: Workload) -> None:
    from engine.api import compile_ruleset, price_frames, quote

    plan = compile_ruleset(workload.sources, workload.data)
    expected = first_hit_net(workload)
    priced = price_frames(plan, workload.carts_frame(), workload.lines_frame())
    assert (priced["status"] == "ok").all()
    assert np.array_equal(priced["net_amount_minor"].to_numpy(), expected)
    quoted = [
        n for i in range(workload.n_carts) for n in nets_of(quote(plan, workload.cart_dict(i)))
    ]
    assert quoted == expected.tolist()


def test_reference_agrees_with_first_hit(workload: Workload) -> None:
    import tests.reference as reference

    expected = first_hit_net(workload)
    carts = range(0, workload.n_carts, 6)  # the interpreter re-reads everything per cart
    got = [
        n
        for i in carts
        for n in nets_of(
            reference.reference_quote(workload.sources, workload.data, workload.cart_dict(i))
        )
    ]
    want = [
        int(n)
        for i in carts
        for n in expected[workload.cart_offsets[i] : workload.cart_offsets[i + 1]]
    ]
    assert got == want


def test_zen_fast_runner_measures_every_mode_and_agrees_with_pricer(workload: Workload) -> None:
    from engine.api import compile_ruleset, price_frames, quote

    plan = compile_ruleset(workload.sources, workload.data)
    lines = np.arange(workload.n_lines)
    latency = workload.latency_carts(7, lines=10)
    category_of, price_of = zen_runner.cart_lookups(workload)
    figures, answers = zen_runner.measure(
        workload.rules,
        workload.line_contexts(lines),
        np.diff(workload.cart_offsets).tolist(),
        workload.list_minor(lines),
        latency,
        category_of,
        price_of,
        batch_runs=1,
        cart_calls=5,
        warmup=2,
        check_carts=7,
        slow_lines=25,
    )
    by_mode = figures["zen_lines_per_s_by_mode"]
    assert set(by_mode) == set(BATCH_MODES) and min(by_mode.values()) > 0
    assert figures["zen_batch_mode"] == max(by_mode, key=by_mode.__getitem__)
    assert figures["zen_lines_per_s"] == by_mode[figures["zen_batch_mode"]]
    assert figures["cart_us_zen"]["n"] == figures["cart_us_zen_evaluate_only"]["n"] == 5
    # the slow path runs on whole carts: the first carts holding at most 25 lines
    assert 0 < figures["zen_slow_lines"] <= 25
    assert figures["zen_slow_lines"] in np.asarray(workload.cart_offsets).tolist()
    assert figures["zen_slow_lines_per_s"] > 0

    pricer_net = price_frames(plan, workload.carts_frame(), workload.lines_frame())[
        "net_amount_minor"
    ].to_numpy()
    quote_nets = [nets_of(quote(plan, c)) for c in latency]
    assert zen_runner.agreement(answers, pricer_net, quote_nets) == {
        "zen_mismatches": 0,
        "zen_slow_mismatches": 0,
        "quote_vs_zen_mismatches": 0,
    }
    # and the check does see a difference: one line off by a minor unit, in every mode
    off = pricer_net.copy()
    off[0] += 1
    quote_off = [[quote_nets[0][0] + 1, *quote_nets[0][1:]], *quote_nets[1:]]
    assert zen_runner.agreement(answers, off, quote_off) == {
        "zen_mismatches": len(BATCH_MODES),
        "zen_slow_mismatches": 1,
        "quote_vs_zen_mismatches": 1,
    }


def test_zen_save_merges_only_zen_figures_and_refuses_another_workload(tmp_path) -> None:
    import json

    figures = {
        "zen_lines_per_s": 150_000,
        "zen_batch_mode": "loop_chunk_100",
        "zen_lines_per_s_by_mode": {"per_line": 70_000, "loop_chunk_100": 150_000},
        "cart_us_zen": {"p50": 90.0, "p99": 140.0, "mean": 95.0, "n": 500},
        "cart_us_zen_evaluate_only": {"p50": 70.0, "p99": 120.0, "mean": 75.0, "n": 500},
        "zen_slow_lines_per_s": 2_000,
        "zen_mismatches": 0,
        "zen_slow_mismatches": 0,
        "quote_vs_zen_mismatches": 0,
    }
    result = {
        "command": "python -m bench.zen_runner --save",
        "generated_at": "2026-12-02T21:00:00+00:00",
        "loadavg_at_start": [0.4, 0.5, 0.6],
        "sizes": {"n_carts": 100_000, "seed": 42, "checked_lines": 19_997},
        "zen_engine": "2.1.3",
        "per_rules": {"1000": figures},
    }
    earlier = {
        "sizes": {"n_carts": 100_000, "seed": 42, "checked_lines": 19_997, "lines": 1_052_376},
        "batch_lines_per_s": {"pricer": {"1000": 1_524_298}, "zen": {"1000": 2_533}},
        "cart_us": {"pricer": {"p50": 288.2, "p99": 475.8}, "zen": {"p50": 3986.2, "p99": 7849.1}},
        "per_rules": {"1000": {"batch_lines_per_s": 1_524_298, "zen_lines_per_s": 2_533}},
    }
    path = tmp_path / "latest.json"
    path.write_text(json.dumps(earlier))
    zen_runner.save(result, path)
    merged = json.loads(path.read_text())
    assert merged["batch_lines_per_s"]["pricer"] == {"1000": 1_524_298}
    assert merged["batch_lines_per_s"]["zen"] == {"1000": 150_000}
    assert merged["cart_us"]["pricer"] == {"p50": 288.2, "p99": 475.8}
    assert merged["cart_us"]["zen"] == {"p50": 90.0, "p99": 140.0}
    assert merged["per_rules"]["1000"]["batch_lines_per_s"] == 1_524_298
    assert merged["per_rules"]["1000"]["zen_lines_per_s"] == 150_000
    assert merged["zen_slow_lines_per_s"] == {"1000": 2_000}
    assert merged["mismatches"]["zen_slow_mismatches@1000"] == 0
    assert merged["merged"]["zen"]["command"] == "python -m bench.zen_runner --save"

    other = tmp_path / "other.json"
    other.write_text(json.dumps({**earlier, "sizes": {**earlier["sizes"], "n_carts": 3_000}}))
    with pytest.raises(SystemExit, match="other sizes"):
        zen_runner.save(result, other)
    assert json.loads(other.read_text())["batch_lines_per_s"]["zen"] == {"1000": 2_533}

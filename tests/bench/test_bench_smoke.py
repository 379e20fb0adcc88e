"""The benchmark's generator, at a tiny size, gives rules that pricer, zen and the reference
price identically (and that a plain first-hit loop over the rules prices the same way)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.gen import Workload, _shadows, category_id, discount_minor, generate
from bench.zen_runner import ZenPricer

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
    from engine.money import parse_money

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
    net = zen.net_minor(workload.line_contexts(lines), workload.list_minor(lines))
    assert np.array_equal(net, first_hit_net(workload))
    cat_of = {
        s: category_id(int(c)) for s, c in zip(workload.sku_ids, workload.sku_category, strict=True)
    }
    price_of = {s: int(p) for s, p in zip(workload.sku_ids, workload.sku_price_minor, strict=True)}
    per_cart = [
        n
        for i in range(workload.n_carts)
        for n in zen.quote_cart(workload.cart_dict(i), cat_of, price_of)
    ]
    assert per_cart == net.tolist()


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
    reference = pytest.importorskip("tests.reference", exc_type=ImportError)
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

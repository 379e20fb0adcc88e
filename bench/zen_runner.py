"""The benchmark rules as one GoRules zen-engine first-hit decision table.

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

The table runs in zen's ``loop`` execution mode over an input array ``lines`` (one
``evaluate`` call per cart, or per chunk of lines in the batch measurement), writing one
result per line to ``results``: ``{"bp": 750}`` or ``None`` for no hit. One call per line
would measure the Python binding instead of the engine: zen-engine 2.1.3 starts a fresh
async runtime on every ``evaluate`` call (~100 µs on this machine, even for an empty graph)
and prepares the table's expressions again on each call.

Net per line is computed here, in integer minor units:
``net = list - round_half_up(list x bp / 10000)``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import zen

from bench.gen import Rule, discount_minor

COLUMNS = ("category", "sku", "qty", "tier", "region")
BATCH_CHUNK = 2_000  # lines per evaluate call in the batch measurement


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


class ZenPricer:
    """Prices lines with one zen decision (``ZenEngine().create_decision(...)``)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.content = json.dumps(decision_table(rules))
        self.decision = zen.ZenEngine().create_decision(self.content)
        self.decision.evaluate({"lines": []})

    def percents_bp(
        self, contexts: Sequence[dict[str, Any]], chunk: int = BATCH_CHUNK
    ) -> np.ndarray:
        """The first matching rule's percentage in basis points per line (0 if none)."""
        out = np.zeros(len(contexts), dtype=np.int64)
        evaluate = self.decision.evaluate
        for lo in range(0, len(contexts), chunk):
            results = evaluate({"lines": list(contexts[lo : lo + chunk])})["result"]["results"]
            if len(results) != min(chunk, len(contexts) - lo):
                raise RuntimeError("zen returned a result count different from its input")
            for k, hit in enumerate(results):
                if hit:
                    out[lo + k] = int(hit["bp"])
        return out

    def net_minor(self, contexts: Sequence[dict[str, Any]], list_minor: np.ndarray) -> np.ndarray:
        """Net amount per line in minor units."""
        return list_minor - discount_minor(list_minor, self.percents_bp(contexts))

    def quote_cart(
        self,
        cart: dict[str, Any],
        category_of: dict[str, str],
        price_of: dict[str, int],
    ) -> list[int]:
        """Net minor units per line of one request-shaped cart: one ``evaluate`` call."""
        customer = cart["customer"]
        tier, region = customer["tier"], customer["region"]
        contexts = []
        amounts = []
        for line in cart["lines"]:
            sku = line["sku"]
            qty = int(line["qty"])
            contexts.append(
                {
                    "tier": tier,
                    "region": region,
                    "category": category_of[sku],
                    "sku": sku,
                    "qty": qty,
                }
            )
            amounts.append(price_of[sku] * qty)
        results = self.decision.evaluate({"lines": contexts})["result"]["results"]
        return [
            amount - (amount * int(hit["bp"]) + 5_000) // 10_000 if hit else amount
            for amount, hit in zip(amounts, results, strict=True)
        ]

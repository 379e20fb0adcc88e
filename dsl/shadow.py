"""Unreachable line promotions: shadowed by an earlier exclusive one with a wider condition.

Promotion B can never apply when, for every alternative (conjunct) of B's condition, an
earlier exclusive promotion A that always applies where its condition holds (not in a
best-of group, no fixed price, which may not apply) has an alternative at least as wide:
A's cart atoms are a subset of B's, A's quantity and amount intervals contain B's, and
A's SKUs include B's. Candidates are found through A's cart-atom sets (each subset of B's
atoms is one dictionary probe), so the check stays cheap with thousands of rules.
"""

from __future__ import annotations

from itertools import combinations

from engine.conditions import CartAtom, Conjunct
from engine.line_index import KIND_FIXED, LineRule


def _always_applies(rule: LineRule) -> bool:
    if not rule.exclusive or rule.group is not None:
        return False
    benefits = (rule.benefit,) if rule.benefit is not None else rule.tier_benefits
    return all(b is not None and b.kind != KIND_FIXED for b in benefits)


def _covers(a: Conjunct, b: Conjunct) -> bool:
    if not (a.qty[0] <= b.qty[0] and b.qty[1] <= a.qty[1] and a.amount[0] <= b.amount[0] and b.amount[1] <= a.amount[1]):
        return False
    if a.item is None:
        return True
    if b.item is None:
        return bool(a.item.all())
    return not bool((b.item & ~a.item).any())


def shadowed(rules: list[LineRule]) -> list[tuple[int, tuple[int, ...]]]:
    """(shadowed rule, the earlier rules that together cover it), in evaluation order."""
    by_atoms: dict[frozenset[CartAtom], list[tuple[int, Conjunct]]] = {}
    found: list[tuple[int, tuple[int, ...]]] = []
    for index, rule in enumerate(rules):
        if rule.conjuncts:
            covering: list[int] = []
            for conj in rule.conjuncts:
                atoms = list(dict.fromkeys(conj.cart))
                cover = None
                for size in range(len(atoms) + 1):
                    for subset in combinations(atoms, size):
                        for earlier, candidate in by_atoms.get(frozenset(subset), ()):
                            if _covers(candidate, conj) and (cover is None or earlier < cover):
                                cover = earlier
                if cover is None:
                    break
                covering.append(cover)
            if len(covering) == len(rule.conjuncts):
                found.append((index, tuple(sorted(set(covering)))))
        if _always_applies(rule):
            for conj in rule.conjuncts:
                by_atoms.setdefault(frozenset(conj.cart), []).append((index, conj))
    return found

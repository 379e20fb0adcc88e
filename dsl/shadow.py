"""Unreachable line promotions: shadowed by an earlier exclusive one with a wider condition.

Promotion B can never apply when, for every alternative (conjunct) of B's condition, an
earlier exclusive promotion A that always applies where its condition holds (not in a
best-of group, no fixed price, which may not apply) has an alternative at least as wide:
A's cart atoms are a subset of B's, A's quantity and amount intervals contain B's, and
A's SKUs include B's. Candidates are found through A's cart-atom sets (each subset of B's
atoms is one dictionary probe), so the check stays cheap with thousands of rules.
A promotion that ``includes special`` also applies to special-price sub-lines, where only
earlier promotions that include them too can stop it: only those can shadow it.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from engine.core.codes import BenefitKind
from engine.plan.conditions import CartAtom, Conjunct
from engine.plan.line_index import LineRule


def _always_applies(rule: LineRule) -> bool:
    if not rule.exclusive or rule.group is not None:
        return False
    benefits = (rule.benefit,) if rule.benefit is not None else rule.tier_benefits
    return all(b is not None and b.kind != BenefitKind.FIXED_PRICE for b in benefits)


def _wider(a: Conjunct, b: Conjunct) -> bool:
    """A's quantity and amount intervals contain B's."""
    return (
        a.qty[0] <= b.qty[0]
        and b.qty[1] <= a.qty[1]
        and a.amount[0] <= b.amount[0]
        and b.amount[1] <= a.amount[1]
    )


def _covering(
    by_atoms: dict[frozenset[CartAtom], list[tuple[int, Conjunct]]], conj: Conjunct
) -> list[tuple[int, Conjunct]]:
    """Earlier alternatives whose cart atoms are a subset of ``conj``'s, whose intervals
    contain its intervals, and which share at least one of its SKUs."""
    atoms = list(dict.fromkeys(conj.cart))
    found = []
    for size in range(len(atoms) + 1):
        for subset in combinations(atoms, size):
            for earlier, candidate in by_atoms.get(frozenset(subset), ()):
                if not _wider(candidate, conj):
                    continue
                if (
                    candidate.item is None
                    or conj.item is None
                    or bool((conj.item & candidate.item).any())
                ):
                    found.append((earlier, candidate))
    return found


def _all_covered(covers: list[Conjunct], conj: Conjunct) -> bool:
    """Do the covering alternatives' SKUs, together, include all of ``conj``'s?"""
    if any(c.item is None for c in covers):
        return True
    union = np.logical_or.reduce([c.item for c in covers if c.item is not None])
    if conj.item is None:
        return bool(union.all())
    return not bool((conj.item & ~union).any())


def shadowed(rules: list[LineRule]) -> list[tuple[int, tuple[int, ...]]]:
    """(shadowed rule, the earlier rules that together cover it), in evaluation order."""
    by_atoms: dict[frozenset[CartAtom], list[tuple[int, Conjunct]]] = {}
    by_atoms_special: dict[
        frozenset[CartAtom], list[tuple[int, Conjunct]]
    ] = {}  # rules that include special
    found: list[tuple[int, tuple[int, ...]]] = []
    for index, rule in enumerate(rules):
        if rule.conjuncts:
            covering: set[int] = set()
            for conj in rule.conjuncts:
                covers = _covering(by_atoms_special if rule.includes_special else by_atoms, conj)
                if not covers or not _all_covered([c for _, c in covers], conj):
                    break
                covering.update(earlier for earlier, _ in covers)
            else:
                found.append((index, tuple(sorted(covering))))
        if _always_applies(rule):
            for conj in rule.conjuncts:
                by_atoms.setdefault(frozenset(conj.cart), []).append((index, conj))
                if rule.includes_special:
                    by_atoms_special.setdefault(frozenset(conj.cart), []).append((index, conj))
    return found

"""Conditions compiled to disjunctive normal form, folded by what each atom reads.

Every condition becomes a tuple of ``Conjunct``s (OR of ANDs). Within a conjunct:

* item atoms (``sku``, ``category``, ``brand``, ``tax_class``, ``item.*``) fold into one
  boolean mask over the catalog, computed once at compile time;
* cart atoms (customer fields, channel, project, date ...) stay symbolic and are evaluated
  once per distinct cart context, not per line;
* ``qty`` and ``amount`` atoms fold into half-open integer intervals ``[lo, hi)``.

So a rule never costs a pass over every line: lines find their rules by
(SKU, cart context, quantity cell, amount cell) lookups (see ``engine.plan.line_index``).

Null semantics: on a missing value ``==``, ``in`` and ordering are false, ``!=`` and
``not in`` are true, so negation pushes down exactly (De Morgan).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import polars as pl

from dsl import tree as t
from dsl.schema import Schema
from dsl.tree import money_value, quantity_value
from engine.plan.catalog import BoolArray, CatalogIndex

LOW = -(1 << 62)
HIGH = 1 << 62
MAX_CONJUNCTS = 256

Interval = tuple[int, int]
FULL: Interval = (LOW, HIGH)


class ConditionTooComplex(ValueError):
    def __init__(self, span: t.Span) -> None:
        super().__init__(f"condition expands to more than {MAX_CONJUNCTS} alternatives")
        self.span = span


@dataclass(frozen=True, slots=True)
class CartAtom:
    """A test on the cart context: text in/not in a set, or a date comparison."""

    field: str
    op: str  # "in" | "not in" | one of == != < <= > >= (dates, as ordinals)
    values: frozenset[object] = frozenset()
    date: int = 0

    def holds(self, value: object) -> bool:
        """The same test on one cart's value (the small-batch path)."""
        if self.op in ("in", "not in"):
            return bool((value in self.values) != (self.op == "not in"))
        assert isinstance(value, int)
        day = value
        return {
            "==": day == self.date,
            "!=": day != self.date,
            "<": day < self.date,
            "<=": day <= self.date,
            ">": day > self.date,
            ">=": day >= self.date,
        }[self.op]

    def evaluate(self, column: np.ndarray) -> BoolArray:
        if self.op in ("in", "not in"):
            values = self.values
            hit = np.fromiter((v in values for v in column), dtype=np.bool_, count=len(column))
            return ~hit if self.op == "not in" else hit
        col = column.astype(np.int64)
        result: BoolArray = {
            "==": col == self.date,
            "!=": col != self.date,
            "<": col < self.date,
            "<=": col <= self.date,
            ">": col > self.date,
            ">=": col >= self.date,
        }[self.op]
        return result


@dataclass(frozen=True, slots=True)
class Conjunct:
    item: BoolArray | None  # None = every SKU
    cart: tuple[CartAtom, ...]
    qty: Interval
    amount: Interval

    def and_(self, other: Conjunct) -> Conjunct | None:
        item: BoolArray | None
        if self.item is None:
            item = other.item
        elif other.item is None:
            item = self.item
        else:
            item = self.item & other.item
        if item is not None and not item.any():
            return None
        qty = (max(self.qty[0], other.qty[0]), min(self.qty[1], other.qty[1]))
        amount = (max(self.amount[0], other.amount[0]), min(self.amount[1], other.amount[1]))
        if qty[0] >= qty[1] or amount[0] >= amount[1]:
            return None
        return Conjunct(item=item, cart=self.cart + other.cart, qty=qty, amount=amount)


TRUE = (Conjunct(item=None, cart=(), qty=FULL, amount=FULL),)
NEGATE = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def _intervals(op: str, value: int) -> tuple[Interval, ...]:
    return {
        "==": ((value, value + 1),),
        "!=": ((LOW, value), (value + 1, HIGH)),
        "<": ((LOW, value),),
        "<=": ((LOW, value + 1),),
        ">": ((value + 1, HIGH),),
        ">=": ((value, HIGH),),
    }[op]


def _set_intervals(points: Iterable[int], negated: bool) -> tuple[Interval, ...]:
    ordered = sorted(set(points))
    if not negated:
        return tuple((p, p + 1) for p in ordered)
    out: list[Interval] = []
    low = LOW
    for p in ordered:
        if low < p:
            out.append((low, p))
        low = p + 1
    out.append((low, HIGH))
    return tuple(out)


class ConditionCompiler:
    def __init__(self, catalog: CatalogIndex, schema: Schema, currency: str) -> None:
        self.catalog = catalog
        self.schema = schema
        self.currency = currency

    def compile(self, cond: t.Condition | None) -> tuple[Conjunct, ...]:
        if cond is None:
            return TRUE
        return self._dnf(cond, negated=False)

    def and_all(self, parts: Iterable[tuple[Conjunct, ...]], span: t.Span) -> tuple[Conjunct, ...]:
        result: tuple[Conjunct, ...] = TRUE
        for part in parts:
            result = self._and(result, part, span)
        return result

    def validity(self, valid: t.Validity | None) -> tuple[Conjunct, ...]:
        if valid is None:
            return TRUE
        atoms = (
            CartAtom(field="date", op=">=", date=valid.start.toordinal()),
            CartAtom(field="date", op="<=", date=valid.end.toordinal()),
        )
        return (Conjunct(item=None, cart=atoms, qty=FULL, amount=FULL),)

    def _and(
        self, left: tuple[Conjunct, ...], right: tuple[Conjunct, ...], span: t.Span
    ) -> tuple[Conjunct, ...]:
        out = [c for a in left for b in right if (c := a.and_(b)) is not None]
        if len(out) > MAX_CONJUNCTS:
            raise ConditionTooComplex(span)
        return tuple(out)

    def _dnf(self, cond: t.Condition, negated: bool) -> tuple[Conjunct, ...]:
        if isinstance(cond, t.Not):
            return self._dnf(cond.item, not negated)
        if isinstance(cond, t.And | t.Or):
            parts = [self._dnf(item, negated) for item in cond.items]
            conjunctive = isinstance(cond, t.And) != negated
            if conjunctive:
                return self.and_all(parts, cond.span)
            merged = tuple(c for part in parts for c in part)
            if len(merged) > MAX_CONJUNCTS:
                raise ConditionTooComplex(cond.span)
            return merged
        return self._atom(cond, negated)

    def _atom(self, atom: t.Compare | t.InSet, negated: bool) -> tuple[Conjunct, ...]:
        name = atom.field.name
        info = self.schema.get(name)
        assert info is not None, f"unchecked field {name}"
        if isinstance(atom, t.Compare):
            op = NEGATE[atom.op] if negated else atom.op
            values: tuple[t.Literal_, ...] = (atom.value,)
        else:
            op = "not in" if atom.negated != negated else "in"
            values = atom.values
        if info.type == "text":
            wanted = {v.value for v in values if isinstance(v, t.StringLit)}
            set_negated = op in ("!=", "not in")
            if info.scope == "item":
                mask = (
                    self.catalog.text[name].mask(wanted, negated=set_negated)
                    if name in self.catalog.text
                    else np.full(self.catalog.size, set_negated)
                )
                return (Conjunct(item=mask, cart=(), qty=FULL, amount=FULL),) if mask.any() else ()
            cart_atom = CartAtom(
                field=name, op="not in" if set_negated else "in", values=frozenset(wanted)
            )
            return (Conjunct(item=None, cart=(cart_atom,), qty=FULL, amount=FULL),)
        if info.type == "date":
            dates = [v.value.toordinal() for v in values if isinstance(v, t.DateLit)]
            if op in ("in", "not in"):
                cart_atom = CartAtom(field=name, op=op, values=frozenset(dates))
                return (Conjunct(item=None, cart=(cart_atom,), qty=FULL, amount=FULL),)
            return (
                Conjunct(
                    item=None,
                    cart=(CartAtom(field=name, op=op, date=dates[0]),),
                    qty=FULL,
                    amount=FULL,
                ),
            )
        if info.type == "money":
            points = [money_value(v, self.currency) for v in values]
            return tuple(
                Conjunct(item=None, cart=(), qty=FULL, amount=iv)
                for iv in self._numeric(op, points)
            )
        return self._quantity(op, values)

    def _numeric(self, op: str, points: list[int]) -> tuple[Interval, ...]:
        if op in ("in", "not in"):
            return _set_intervals(points, negated=op == "not in")
        return _intervals(op, points[0])

    def _quantity(self, op: str, values: tuple[t.Literal_, ...]) -> tuple[Conjunct, ...]:
        parsed = [quantity_value(v) for v in values]
        units = {unit for _, unit in parsed}
        if units == {None}:
            return tuple(
                Conjunct(item=None, cart=(), qty=iv, amount=FULL)
                for iv in self._numeric(op, [m for m, _ in parsed])
            )
        # A quantity in a named unit means a different base threshold per SKU: one
        # alternative per distinct factor, restricted to the SKUs that have that factor.
        # A SKU without the unit never satisfies the comparison.
        out: list[Conjunct] = []
        factor_arrays = {
            unit: self.catalog.factor(unit) if unit else np.ones(self.catalog.size, dtype=np.int64)
            for unit in units
        }
        combos = np.stack([factor_arrays[u] for _, u in parsed])
        has_all = (combos > 0).all(axis=0)
        distinct = {tuple(int(x) for x in combos[:, i]) for i in np.nonzero(has_all)[0]}
        for factors in sorted(distinct):
            mask: BoolArray = np.asarray(has_all, dtype=np.bool_).copy()
            for row, f in enumerate(factors):
                mask &= combos[row] == f
            points = [m * f for (m, _), f in zip(parsed, factors, strict=True)]
            for iv in self._numeric(op, points):
                out.append(Conjunct(item=mask, cart=(), qty=iv, amount=FULL))
        return tuple(out)


# ---- evaluating cart atoms -------------------------------------------------------------


def holds_for_cart(conjuncts: tuple[Conjunct, ...], values: dict[str, object]) -> bool:
    return any(all(atom.holds(values.get(atom.field)) for atom in conj.cart) for conj in conjuncts)


def cart_fields(conjuncts: Iterable[Conjunct]) -> set[str]:
    return {atom.field for c in conjuncts for atom in c.cart}


def evaluate_cart(
    conjuncts: tuple[Conjunct, ...], frame: dict[str, np.ndarray], size: int
) -> BoolArray:
    """Which rows of a cart-context frame satisfy some conjunct (ignoring item and intervals)."""
    result = np.zeros(size, dtype=np.bool_)
    for conj in conjuncts:
        hit = np.ones(size, dtype=np.bool_)
        for atom in conj.cart:
            hit &= atom.evaluate(frame[atom.field])
        result |= hit
    return result


#: the one row of recent one-cart frames, as a dict (the quote path asks for it per rule)
_ONE_ROW: dict[int, tuple[pl.DataFrame, dict[str, object]]] = {}


def cart_holds(conjuncts: tuple[Conjunct, ...], carts: pl.DataFrame) -> BoolArray:
    """Per cart: some conjunct's cart atoms hold (ignoring item and intervals). A batch is
    factorized into context classes; a single cart is tested as one dict of values."""
    if carts.height == 1:
        cached = _ONE_ROW.get(id(carts))
        if cached is None or cached[0] is not carts:
            if len(_ONE_ROW) >= 64:
                _ONE_ROW.pop(next(iter(_ONE_ROW)))
            cached = (carts, carts.row(0, named=True))
            _ONE_ROW[id(carts)] = cached
        return np.array([holds_for_cart(conjuncts, cached[1])], dtype=np.bool_)
    fields = sorted({a.field for c in conjuncts for a in c.cart})
    class_of_cart, classes = context_classes(carts, fields)
    result: BoolArray = evaluate_cart(conjuncts, frame_columns(classes), classes.height)[
        class_of_cart
    ]
    return result


#: recent factorizations, by (carts frame, fields): every stage asks for the same ones
_CLASSES: dict[tuple[int, tuple[str, ...]], tuple[pl.DataFrame, np.ndarray, pl.DataFrame]] = {}


def context_classes(carts: pl.DataFrame, fields: list[str]) -> tuple[np.ndarray, pl.DataFrame]:
    """Factorize carts by the context fields rules read: (class id per cart, one row per class)."""
    if not fields:
        return np.zeros(carts.height, dtype=np.int64), pl.DataFrame({"_": [0]})
    if carts.height == 1:  # one cart is one class: no factorizing
        return np.zeros(1, dtype=np.int64), carts.select(fields)
    key = (id(carts), tuple(fields))
    cached = _CLASSES.get(key)
    if cached is not None and cached[0] is carts:
        return cached[1], cached[2]
    ids, uniq = _factorize(carts, fields)
    if len(_CLASSES) >= 64:
        _CLASSES.pop(next(iter(_CLASSES)))
    _CLASSES[key] = (carts, ids, uniq)
    return ids, uniq


def _factorize(carts: pl.DataFrame, fields: list[str]) -> tuple[np.ndarray, pl.DataFrame]:
    keys = carts.select(fields)
    uniq = keys.unique(maintain_order=True).with_row_index("_cls")
    ids = keys.join(uniq, on=fields, how="left", nulls_equal=True, maintain_order="left")["_cls"]
    return ids.to_numpy().astype(np.int64), uniq.drop("_cls")


def frame_columns(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    return {name: frame[name].to_numpy() for name in frame.columns}


def date_ordinal(value: dt.date) -> int:
    return value.toordinal()

"""Which line promotions apply to a line, found by lookup instead of by scanning rules.

A line's applicable promotions depend only on (its SKU, its cart's context, the cell its
quantity falls in, the cell its list amount falls in): every rule boundary on ``qty`` and
``amount`` is a cell edge. For each distinct *signature* (the set of rule alternatives
whose cart atoms hold for a context) the index builds, once, a dense table
``[sku, cell] -> program``; a program is the ordered list of benefits to apply, already
grouped into best-of slots and cut after an exclusive rule. The cart atoms can tell
only finitely many contexts apart (``ContextSpace``), so ``finish`` (run by the compiler)
enumerates them and builds every signature's table before the first quote; pricing only
reads. The cost per line is a few array gathers whatever the number of rules (DESIGN
principle 1). A space over the bounds falls back to ``OnDemandTables``.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.core.codes import BenefitKind
from engine.core.money import Rounding, convert_minor
from engine.plan.cart_rules import Caps
from engine.plan.catalog import BoolArray
from engine.plan.conditions import (
    HIGH,
    LOW,
    CartAtom,
    Conjunct,
    cart_fields,
    context_classes,
    evaluate_cart,
    frame_columns,
)
from engine.plan.price_lists import FxRates

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class BenefitSpec:
    kind: int
    bp: int = 0  # percent_off, basis points
    amount: int = 0  # amount_off / fixed_price, minor units per base unit


@dataclass(frozen=True, slots=True)
class LineRule:
    """One line promotion, compiled: its alternatives and its benefit (or tier steps)."""

    name: str
    exclusive: bool
    group: str | None
    conjuncts: tuple[Conjunct, ...]
    benefit: BenefitSpec | None  # None when tiered
    tier_measure: str | None = None  # "qty" | "amount"
    tier_thresholds: tuple[int, ...] = ()
    tier_benefits: tuple[BenefitSpec, ...] = ()
    includes_special: bool = (
        False  # ``includes special``: it also applies to special-price sub-lines
    )


@dataclass
class Programs:
    """Interned benefit sequences. Program 0 is 'no promotion'."""

    benefit_rule: I32
    benefit_exclusive: npt.NDArray[np.bool_]
    benefit_kind: I32
    slot_key: list[int]  # per benefit: the evaluation position of its rule or group
    ids: dict[tuple[int, ...], int] = field(default_factory=lambda: {(): 0})
    slots: list[tuple[tuple[int, ...], ...]] = field(default_factory=lambda: [()])
    _array: I32 | None = None
    #: per benefit: its rule can be switched off by the ledger (budget, uses per customer)
    benefit_switchable: npt.NDArray[np.bool_] | None = None

    def intern(self, benefits: tuple[int, ...]) -> int:
        found = self.ids.get(benefits)
        if found is not None:
            return found
        grouped: dict[int, list[int]] = {}
        for b in benefits:
            grouped.setdefault(self.slot_key[b], []).append(b)
        slots: list[tuple[int, ...]] = []
        for key in sorted(grouped):
            members = tuple(grouped[key])
            slots.append(members)
            # a lone exclusive percent/amount rule always applies (unless the ledger can
            # switch it off): nothing after it can
            switchable = self.benefit_switchable is not None and bool(
                self.benefit_switchable[members[0]]
            )
            if (
                len(members) == 1
                and self.benefit_exclusive[members[0]]
                and self.benefit_kind[members[0]] != BenefitKind.FIXED_PRICE
                and not switchable
            ):
                break
        pid = len(self.slots)
        self.ids[benefits] = pid
        self.slots.append(tuple(slots))
        self._array = None
        return pid

    def slot_keys(self) -> I32:
        """Programs as ``[program, slot] -> position`` of the slot's rule or group (-1 pad)."""
        arr = self.array()
        keys = np.full(arr.shape[:2], -1, dtype=np.int32)
        first = arr[:, :, 0]
        keys[first >= 0] = np.asarray(self.slot_key, dtype=np.int32)[first[first >= 0]]
        return keys

    def array(self) -> I32:
        """Programs as ``[program, slot, member] -> benefit`` (-1 padding)."""
        if self._array is None:
            depth = max((len(s) for s in self.slots), default=0)
            width = max((len(m) for s in self.slots for m in s), default=0)
            arr = np.full((len(self.slots), max(depth, 1), max(width, 1)), -1, dtype=np.int32)
            for pid, slots in enumerate(self.slots):
                for si, members in enumerate(slots):
                    arr[pid, si, : len(members)] = members
            self._array = arr
        return self._array


class LineRuleIndex:
    """``special``: the ruleset has special prices. Then the SKU axis is doubled: SKU code
    ``s + n_sku`` stands for a special-price sub-line of SKU ``s``, which only the rules
    that say ``includes special`` select, so sub-lines need no other mechanism."""

    def __init__(
        self,
        rules: list[LineRule],
        n_sku: int,
        caps: list[Caps] | None = None,
        special: bool = False,
    ) -> None:
        self.rules = rules
        self.special_offset = n_sku if special else 0
        #: per line rule: its caps (``max discount``, ``budget``) clipped at its own step
        self.caps = caps if caps is not None else [Caps() for _ in rules]
        self.money_capped = [i for i, c in enumerate(self.caps) if c.clips_money]
        n_real = n_sku
        n_sku = 2 * n_sku if special else n_sku
        #: line rules the ledger can switch off (a budget, uses per customer)
        self.ledger_capped = [
            i
            for i, c in enumerate(self.caps)
            if c.budget is not None or c.uses_per_customer is not None
        ]
        self.n_sku = n_sku
        qty_points: set[int] = set()
        amount_points: set[int] = set()
        conj_rule: list[int] = []
        conj_items: list[BoolArray] = []
        self.conj_cart: list[tuple[Conjunct, ...]] = []
        conj_iv: list[tuple[int, int, int, int]] = []
        for r, rule in enumerate(rules):
            for conj in rule.conjuncts:
                conj_rule.append(r)
                item = conj.item if conj.item is not None else np.ones(n_real, dtype=np.bool_)
                if special:
                    item = np.concatenate(
                        [item, item if rule.includes_special else np.zeros(n_real, dtype=np.bool_)]
                    )
                conj_items.append(item)
                self.conj_cart.append((conj,))
                conj_iv.append((*conj.qty, *conj.amount))
                for lo, hi in (conj.qty,):
                    qty_points.update(v for v in (lo, hi) if LOW < v < HIGH)
                for lo, hi in (conj.amount,):
                    amount_points.update(v for v in (lo, hi) if LOW < v < HIGH)
            if rule.tier_measure == "qty":
                qty_points.update(rule.tier_thresholds)
            elif rule.tier_measure == "amount":
                amount_points.update(rule.tier_thresholds)
        self.qty_bounds = np.array(sorted(qty_points), dtype=np.int64)
        self.amount_bounds = np.array(sorted(amount_points), dtype=np.int64)
        self.n_acells = len(self.amount_bounds) + 1
        self.n_cells = (len(self.qty_bounds) + 1) * self.n_acells
        self.conj_rule = np.array(conj_rule, dtype=np.int32)
        self.conj_items = (
            np.stack(conj_items) if conj_items else np.zeros((0, n_sku), dtype=np.bool_)
        )
        iv = np.array(conj_iv, dtype=np.int64).reshape(-1, 4)
        self.conj_q = (
            self._cell_lo(self.qty_bounds, iv[:, 0]),
            self._cell_hi(self.qty_bounds, iv[:, 1]),
        )
        self.conj_a = (
            self._cell_lo(self.amount_bounds, iv[:, 2]),
            self._cell_hi(self.amount_bounds, iv[:, 3]),
        )
        self.fields = sorted(cart_fields(c for r in rules for c in r.conjuncts))
        self._benefits(rules)
        #: every cart context the cart atoms tell apart (finite: see ``ContextSpace``)
        self.space = ContextSpace.of(self.fields, self.conj_cart)
        #: the amounts in other currencies, per (rate, from, to, rounding): built by ``finish``
        self.converted: dict[tuple[object, ...], tuple[I64, I64]] = {}
        #: every signature's table, built by ``finish`` (None: not finished, or over the bounds)
        self.finished: FinishedTables | None = None
        #: the fallback when not finished: tables built on first use, under its lock
        self.on_demand = OnDemandTables()

    # ---- compile-time tables ---------------------------------------------------------------

    @staticmethod
    def _cell_lo(bounds: I64, lo: I64) -> I64:
        cells: I64 = np.where(lo <= LOW, 0, np.searchsorted(bounds, lo, side="right"))
        return cells

    @staticmethod
    def _cell_hi(bounds: I64, hi: I64) -> I64:
        cells: I64 = np.where(
            hi >= HIGH, len(bounds) + 1, np.searchsorted(bounds, hi, side="right")
        )
        return cells

    def _benefits(self, rules: list[LineRule]) -> None:
        specs: list[BenefitSpec] = []
        rule_of: list[int] = []
        # benefit id per (rule, cell): tiers pick their step from the cell's lower edge
        self.cell_benefit = np.full((len(rules), self.n_cells), -1, dtype=np.int32)
        q_rep = np.concatenate([[LOW], self.qty_bounds]).astype(np.int64)
        a_rep = np.concatenate([[LOW], self.amount_bounds]).astype(np.int64)
        cell_q = np.repeat(q_rep, self.n_acells)
        cell_a = np.tile(a_rep, len(q_rep))
        group_position: dict[str, int] = {}
        slot_key: list[int] = []
        for r, rule in enumerate(rules):
            key = group_position.setdefault(rule.group, r) if rule.group is not None else r
            if rule.benefit is not None:
                self.cell_benefit[r, :] = len(specs)
                specs.append(rule.benefit)
                rule_of.append(r)
                slot_key.append(key)
                continue
            measure = cell_q if rule.tier_measure == "qty" else cell_a
            step = (
                np.searchsorted(
                    np.array(rule.tier_thresholds, dtype=np.int64), measure, side="right"
                )
                - 1
            )
            base = len(specs)
            for spec in rule.tier_benefits:
                specs.append(spec)
                rule_of.append(r)
                slot_key.append(key)
            self.cell_benefit[r, :] = np.where(step >= 0, base + step, -1)
        self.benefit_kind = np.array([s.kind for s in specs], dtype=np.int32)
        self.benefit_bp = np.array([s.bp for s in specs], dtype=np.int64)
        self.benefit_amount = np.array([s.amount for s in specs], dtype=np.int64)
        self.benefit_rule = np.array(rule_of, dtype=np.int32)
        exclusive = np.array([rules[r].exclusive for r in rule_of], dtype=np.bool_)
        self.programs = Programs(
            benefit_rule=self.benefit_rule,
            benefit_exclusive=exclusive,
            benefit_kind=self.benefit_kind,
            slot_key=slot_key,
            benefit_switchable=np.isin(
                self.benefit_rule, np.array(self.ledger_capped, dtype=np.int32)
            ),
        )

    # ---- money in another currency -------------------------------------------------------------

    def in_currency(
        self, rate: tuple[int, int], src: str, dst: str, mode: Rounding
    ) -> tuple[I64, I64]:
        """The amount cell edges and per-unit benefit amounts converted from the ruleset
        currency into a cart's currency at ``rate`` (each figure rounded once): built by
        ``finish`` for every rate of the plan's fx table, computed (not kept) otherwise."""
        found = self.converted.get((rate, src, dst, mode))
        if found is not None:
            return found
        return self._convert(rate, src, dst, mode)

    def _convert(
        self, rate: tuple[int, int], src: str, dst: str, mode: Rounding
    ) -> tuple[I64, I64]:
        def conv(values: I64) -> I64:
            return np.array(
                [convert_minor(int(v), rate, src, dst, mode) for v in values.tolist()],
                dtype=np.int64,
            )

        return conv(self.amount_bounds), conv(self.benefit_amount)

    # ---- finishing: every table, before the first quote --------------------------------------

    def finish(
        self, fx: FxRates | None = None, currency: str | None = None, mode: Rounding | None = None
    ) -> None:
        """Build every table a lookup reads: the ``[sku, cell] -> program`` table of every
        signature any cart context can produce (``ContextSpace`` enumerates them), and the
        converted amounts for every ruleset->cart rate in ``fx``. Called once by the
        compiler; after it, lookups only read. When the context space or its tables are
        over ``MAX_CONTEXTS`` / ``MAX_TABLE_BYTES``, tables are left to ``OnDemandTables``."""
        if fx is not None and currency is not None and mode is not None:
            converted: dict[tuple[object, ...], tuple[I64, I64]] = {}
            for (src, dst), (_, rates) in fx.rates.items():
                if src == currency:
                    for rate in rates:
                        converted.setdefault(
                            (rate, src, dst, mode), self._convert(rate, src, dst, mode)
                        )
            self.converted = converted
        self.programs.array()
        if not self.rules or self.finished is not None:
            return
        space = self.space
        if space.size > MAX_CONTEXTS:
            return
        active = space.signatures(self.conj_cart)
        packed = (
            np.packbits(active, axis=1)
            if active.shape[1]
            else np.zeros((len(active), 1), dtype=np.uint8)
        )
        uniq, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
        if len(uniq) * self.n_sku * self.n_cells * 4 > MAX_TABLE_BYTES:
            return
        entries = self._entries()
        if entries is None:
            tables = [self._build_table(active[i]) for i in first.tolist()]
        else:
            tables = [self._table_from_entries(active[i], *entries) for i in first.tolist()]
        self.programs.array()
        self.finished = FinishedTables(
            context_slot=inverse.reshape(-1).astype(np.int64),
            table=np.concatenate(tables),
            count=len(tables),
        )

    # ---- per-signature tables ------------------------------------------------------------------

    def _entries(self) -> tuple[I64, I64, I64] | None:
        """Every (slot = sku * n_cells + cell, benefit, alternative) some alternative can give,
        sorted: what every signature's table is a filter of (None: over ``MAX_ENTRIES``)."""
        sku, conj = np.nonzero(np.ascontiguousarray(self.conj_items.T))
        rule = self.conj_rule[conj]
        q_lo, q_hi = self.conj_q[0][conj], self.conj_q[1][conj]
        a_lo, a_hi = self.conj_a[0][conj], self.conj_a[1][conj]
        slots: list[I64] = []
        benefits: list[I64] = []
        conjs: list[I64] = []
        total = 0
        for qc in range(len(self.qty_bounds) + 1):
            in_q = (q_lo <= qc) & (qc < q_hi)
            for ac in range(self.n_acells):
                cell = qc * self.n_acells + ac
                at = np.nonzero(in_q & (a_lo <= ac) & (ac < a_hi))[0]
                b = self.cell_benefit[rule[at], cell]
                at, b = at[b >= 0], b[b >= 0]
                total += len(at)
                if total > MAX_ENTRIES:
                    return None
                slots.append(sku[at] * self.n_cells + cell)
                benefits.append(b.astype(np.int64))
                conjs.append(conj[at].astype(np.int64))
        if not slots:
            return (
                np.zeros(0, dtype=np.int64),
                np.zeros(0, dtype=np.int64),
                np.zeros(0, dtype=np.int64),
            )
        slot, benefit, alt = np.concatenate(slots), np.concatenate(benefits), np.concatenate(conjs)
        order = np.lexsort((alt, benefit, slot))
        return slot[order], benefit[order], alt[order]

    def _table_from_entries(self, active: BoolArray, slot: I64, benefit: I64, alt: I64) -> I32:
        """``_build_table`` for one signature from the shared ``_entries``: the same programs
        (a row per slot: its benefits in order), found with one filter and a row hash."""
        table = np.zeros(self.n_sku * self.n_cells, dtype=np.int32)
        keep = active[alt]
        s, b = slot[keep], benefit[keep]
        if len(s) == 0:
            return table
        # alternatives of one rule give one benefit per slot: keep it once
        first = np.ones(len(s), dtype=np.bool_)
        first[1:] = (s[1:] != s[:-1]) | (b[1:] != b[:-1])
        s, b = s[first], b[first]
        starts = np.nonzero(np.concatenate([[True], s[1:] != s[:-1]]))[0]
        lengths = np.diff(np.append(starts, len(s)))
        pos = np.arange(len(s)) - np.repeat(starts, lengths)
        weights = np.random.default_rng(0x5EED).integers(
            1, 1 << 63, int(lengths.max()), dtype=np.uint64
        ) | np.uint64(1)
        with np.errstate(over="ignore"):
            mixed = (b.astype(np.uint64) + np.uint64(1)) * weights[pos]
            row_hash = np.add.reduceat(mixed, starts) ^ (
                lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            )
        _, rep, inverse = np.unique(row_hash, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        # exact despite the hash: every row must equal its representative, entry by entry
        group_rep = rep[inverse]
        same = bool((lengths == lengths[group_rep]).all())
        if same:
            same = bool((b == b[np.repeat(starts[group_rep], lengths) + pos]).all())
        if not same:
            return self._build_table(active)
        # only the representative rows go to Python
        rep_lengths = lengths[rep]
        values = b[
            np.repeat(starts[rep], rep_lengths)
            + (
                np.arange(int(rep_lengths.sum()))
                - np.repeat(np.cumsum(rep_lengths) - rep_lengths, rep_lengths)
            )
        ].tolist()
        intern = self.programs.intern
        ends = np.cumsum(rep_lengths).tolist()
        pids = np.array(
            [intern(tuple(values[lo:hi])) for lo, hi in zip([0, *ends[:-1]], ends, strict=True)],
            dtype=np.int32,
        )
        table[s[starts]] = pids[inverse]
        return table

    def _build_table(self, active: BoolArray) -> I32:
        table = np.zeros(self.n_sku * self.n_cells, dtype=np.int32)
        conj_ids = np.nonzero(active)[0]
        if len(conj_ids) == 0:
            return table
        sku, local = np.nonzero(np.ascontiguousarray(self.conj_items[conj_ids].T))
        conj = conj_ids[local]
        rule = self.conj_rule[conj]
        q_lo, q_hi = self.conj_q[0][conj], self.conj_q[1][conj]
        a_lo, a_hi = self.conj_a[0][conj], self.conj_a[1][conj]
        rows_sku: list[I64] = []
        rows_cell: list[I64] = []
        rows_benefit: list[I64] = []
        for qc in range(len(self.qty_bounds) + 1):
            in_q = (q_lo <= qc) & (qc < q_hi)
            if not in_q.any():
                continue
            for ac in range(self.n_acells):
                keep = in_q & (a_lo <= ac) & (ac < a_hi)
                if not keep.any():
                    continue
                s, r = sku[keep], rule[keep]
                # alternatives of one rule for one SKU are adjacent: keep the first
                first = np.ones(len(s), dtype=np.bool_)
                first[1:] = (s[1:] != s[:-1]) | (r[1:] != r[:-1])
                s, r = s[first], r[first]
                cell = qc * self.n_acells + ac
                b = self.cell_benefit[r, cell]
                ok = b >= 0
                rows_sku.append(s[ok])
                rows_cell.append(np.full(int(ok.sum()), cell, dtype=np.int64))
                rows_benefit.append(b[ok].astype(np.int64))
        if not rows_sku:
            return table
        s_all = np.concatenate(rows_sku)
        c_all = np.concatenate(rows_cell)
        b_all = np.concatenate(rows_benefit)
        slot = s_all * self.n_cells + c_all
        order = np.lexsort((b_all, slot))  # benefit ids follow rule order within a rule
        slot, b_all = slot[order], b_all[order]
        starts = np.nonzero(np.concatenate([[True], slot[1:] != slot[:-1]]))[0]
        ends = np.append(starts[1:], len(slot))
        lengths = ends - starts
        width = int(lengths.max())
        padded = np.full((len(starts), width), -1, dtype=np.int64)
        pos = np.arange(len(slot)) - np.repeat(starts, lengths)
        padded[np.repeat(np.arange(len(starts)), lengths), pos] = b_all
        base = len(self.benefit_kind) + 1  # a row's entries are -1 .. base - 2
        if base**width < 1 << 62:
            # rows as one integer each (most significant first: the same order as by rows),
            # a 1-D unique being far cheaper than ``np.unique(axis=0)``
            weights = np.array([base ** (width - 1 - k) for k in range(width)], dtype=np.int64)
            _, first, inverse = np.unique(
                (padded + 1) @ weights, return_index=True, return_inverse=True
            )
            uniq = padded[first]
        else:
            uniq, inverse = np.unique(padded, axis=0, return_inverse=True)
        pids = np.array(
            [self.programs.intern(tuple(int(x) for x in row if x >= 0)) for row in uniq],
            dtype=np.int32,
        )
        table[slot[starts]] = pids[inverse.reshape(-1)]
        return table

    # ---- lookups ---------------------------------------------------------------------------------

    def context_codes(self, classes: pl.DataFrame) -> list[int]:
        """The ``ContextSpace`` code of each row of a frame of cart contexts."""
        if not self.fields:
            return [0] * classes.height
        code = self.space.code
        return [code(row) for row in classes.select(self.fields).iter_rows()]

    def slots_of_codes(self, codes: list[int]) -> npt.NDArray[np.int64]:
        """The table slot of each context code (a read of the finished tables)."""
        finished = self.finished
        if finished is not None:
            result: npt.NDArray[np.int64] = finished.context_slot[np.asarray(codes, dtype=np.int64)]
            return result
        return self.on_demand.slots(self, codes)

    def class_slots_for(self, classes: pl.DataFrame) -> npt.NDArray[np.int64]:
        """The table slot of each distinct cart context."""
        return self.slots_of_codes(self.context_codes(classes))

    def slot_of_context(self, values: dict[str, object]) -> int:
        """The table slot for one cart's context values."""
        code = self.space.code(tuple(values.get(f) for f in self.fields)) if self.fields else 0
        finished = self.finished
        if finished is not None:
            return int(finished.context_slot[code])
        return int(self.on_demand.slots(self, [code])[0])

    def table(self) -> I32:
        """Every signature's table, concatenated: ``[slot, sku, cell] -> program``, flat."""
        finished = self.finished
        return finished.table if finished is not None else self.on_demand.table

    def built_tables(self) -> int:
        """How many signature tables exist (finished, or built on demand so far)."""
        return self.finished.count if self.finished is not None else len(self.on_demand.tables)

    def programs_for(
        self,
        carts: pl.DataFrame,
        line_cart: I64,
        sku: I64,
        qty: I64,
        amount: I64,
        amount_cell: I64 | None = None,
    ) -> I32:
        """The program of every line (0 = no line promotion applies). ``amount_cell``
        overrides the amount cells (carts in another currency compare converted edges)."""
        if not self.rules:
            return np.zeros(len(sku), dtype=np.int32)
        class_of_cart, classes = context_classes(carts, self.fields)
        slot_of_class = self.class_slots_for(classes)
        table = self.table()  # after the slots: an on-demand build publishes the table first
        table_slot = slot_of_class[class_of_cart][line_cart]
        qc = np.searchsorted(self.qty_bounds, qty, side="right")
        ac = (
            np.searchsorted(self.amount_bounds, amount, side="right")
            if amount_cell is None
            else amount_cell
        )
        cell = qc * self.n_acells + ac
        flat = (table_slot * self.n_sku + sku) * self.n_cells + cell
        result: I32 = table[flat]
        return result


# ---- the cart contexts line rules can tell apart --------------------------------------------------

#: the most cart contexts (product of every field's classes) ``finish`` enumerates
MAX_CONTEXTS = 1 << 16
#: the most bytes of signature tables ``finish`` builds
MAX_TABLE_BYTES = 256 << 20
#: the most (slot, benefit, alternative) entries ``finish`` shares between signatures
MAX_ENTRIES = 1 << 24

_ORDER_EDGES = {"<": (0,), ">=": (0,), "<=": (1,), ">": (1,), "==": (0, 1), "!=": (0, 1)}


@dataclass(frozen=True)
class ContextSpace:
    """Every cart context the rules' cart atoms can tell apart, as a finite mixed-radix code.

    A text field's classes are the values some atom names, plus one class for every other
    value (None included: ``in`` is false and ``not in`` true for both). A date field's
    classes are the intervals between the atoms' edges. So the space is finite whatever the
    customer master holds; its size is the product of the fields' class counts."""

    fields: tuple[str, ...]
    #: per field: value -> class (text fields; any other value is class ``len``), or None
    names: tuple[dict[object, int] | None, ...]
    #: per field: sorted edges, class = number of edges <= the value (date fields), or None
    edges: tuple[list[int] | None, ...]
    sizes: tuple[int, ...]

    @staticmethod
    def of(fields: list[str], conj_cart: list[tuple[Conjunct, ...]]) -> ContextSpace:
        atoms = [atom for (conj,) in conj_cart for atom in conj.cart]
        names: list[dict[object, int] | None] = []
        edges: list[list[int] | None] = []
        sizes: list[int] = []
        for name in fields:
            mine = [a for a in atoms if a.field == name]
            if name == "date":
                points = {
                    v + d
                    for a in mine
                    if a.op in ("in", "not in")
                    for v in a.values
                    if isinstance(v, int)
                    for d in (0, 1)
                }
                points |= {
                    a.date + d for a in mine if a.op in _ORDER_EDGES for d in _ORDER_EDGES[a.op]
                }
                edges.append(sorted(points))
                names.append(None)
                sizes.append(len(points) + 1)
            else:
                named = sorted({str(v) for a in mine for v in a.values})
                names.append({v: k for k, v in enumerate(named)})
                edges.append(None)
                sizes.append(len(named) + 1)
        return ContextSpace(tuple(fields), tuple(names), tuple(edges), tuple(sizes))

    @property
    def size(self) -> int:
        total = 1
        for n in self.sizes:
            total *= n
        return total

    def code(self, values: tuple[object, ...] | list[object]) -> int:
        """A context's code: its class per field, mixed radix (first field most significant)."""
        code = 0
        for value, named, edges, size in zip(
            values, self.names, self.edges, self.sizes, strict=True
        ):
            if named is not None:
                found = named.get(value) if isinstance(value, str) else None
                k = size - 1 if found is None else found
            else:
                assert edges is not None and isinstance(value, int), "a cart always has a date"
                k = bisect_right(edges, value)
            code = code * size + k
        return code

    def representatives(self, position: int) -> list[object]:
        """One value of each class of field ``position`` (None: the unnamed class)."""
        named, edges = self.names[position], self.edges[position]
        if named is not None:
            return [*named, None]
        assert edges is not None
        return [edges[0] - 1 if edges else 0, *edges]

    def signatures(self, conj_cart: list[tuple[Conjunct, ...]]) -> BoolArray:
        """``[code, conjunct]``: which conjuncts' cart atoms hold in each context of the space."""
        n = self.size
        codes = np.arange(n, dtype=np.int64)
        digits: dict[str, I64] = {}
        stride = 1
        for position in range(len(self.fields) - 1, -1, -1):
            digits[self.fields[position]] = (codes // stride) % self.sizes[position]
            stride *= self.sizes[position]
        truth: dict[str, dict[CartAtom, BoolArray]] = {}
        active = np.ones((n, len(conj_cart)), dtype=np.bool_)
        for j, (conj,) in enumerate(conj_cart):
            for atom in conj.cart:
                by_field = truth.setdefault(atom.field, {})
                holds = by_field.get(atom)
                if holds is None:
                    reps = self.representatives(self.fields.index(atom.field))
                    holds = by_field[atom] = np.array([atom.holds(v) for v in reps], dtype=np.bool_)
                active[:, j] &= holds[digits[atom.field]]
        return active


@dataclass(frozen=True)
class FinishedTables:
    """What ``LineRuleIndex.finish`` built: the slot of every context code and every table."""

    context_slot: npt.NDArray[np.int64]  # [code] -> slot
    table: I32  # [slot, sku, cell] -> program, flat
    count: int


class OnDemandTables:
    """The fallback for a context space over the bounds (``MAX_CONTEXTS``, ``MAX_TABLE_BYTES``):
    a signature's table is built the first time a context that has it is priced, under
    the lock, and kept; readers see a table only once it is complete."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.slot_of_code: dict[int, int] = {}
        self.slot_of_signature: dict[bytes, int] = {}
        self.tables: list[I32] = []
        self.table: I32 = np.zeros(0, dtype=np.int32)

    def slots(self, index: LineRuleIndex, codes: list[int]) -> npt.NDArray[np.int64]:
        known = self.slot_of_code
        if any(c not in known for c in codes):
            with self.lock:
                missing = sorted({c for c in codes if c not in known})
                if missing:
                    self._add(index, missing)
        return np.array([known[c] for c in codes], dtype=np.int64)

    def _add(self, index: LineRuleIndex, codes: list[int]) -> None:
        space = index.space
        values: list[list[object]] = [[] for _ in space.fields]
        for code in codes:
            rest = code
            for position in range(len(space.fields) - 1, -1, -1):
                rest, k = divmod(rest, space.sizes[position])
                values[position].append(space.representatives(position)[k])
        schema = {f: (pl.Int64 if f == "date" else pl.String) for f in space.fields}
        frame = pl.DataFrame(dict(zip(space.fields, values, strict=True)), schema=schema)
        columns = frame_columns(frame)
        active = (
            np.stack([evaluate_cart(c, columns, len(codes)) for c in index.conj_cart], axis=1)
            if index.conj_cart
            else np.zeros((len(codes), 0), dtype=np.bool_)
        )
        new: dict[int, int] = {}
        added = False
        for row, code in enumerate(codes):
            key = np.packbits(active[row]).tobytes()
            slot = self.slot_of_signature.get(key)
            if slot is None:
                slot = self.slot_of_signature[key] = len(self.tables)
                self.tables.append(index._build_table(active[row]))
                added = True
            new[code] = slot
        if added:
            index.programs.array()
            self.table = np.concatenate(
                self.tables
            )  # published before the slots that point into it
        self.slot_of_code.update(new)

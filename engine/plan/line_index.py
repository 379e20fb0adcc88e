"""Which line promotions apply to a line, found by lookup instead of by scanning rules.

A line's applicable promotions depend only on (its SKU, its cart's context, the cell its
quantity falls in, the cell its list amount falls in): every rule boundary on ``qty`` and
``amount`` is a cell edge. For each distinct *signature* (the set of rule alternatives
whose cart atoms hold for a context) the index builds, once, a dense table
``[sku, cell] -> program``; a program is the ordered list of benefits to apply, already
grouped into best-of slots and cut after an exclusive rule. Tables are built lazily per
signature and cached, so the cost per line is a few array gathers whatever the number
of rules (DESIGN principle 1).
"""

from __future__ import annotations

import threading
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
    Conjunct,
    cart_fields,
    context_classes,
    evaluate_cart,
    frame_columns,
)

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
    includes_special: bool = False  # ``includes special``: it also applies to special-price sub-lines


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
            switchable = self.benefit_switchable is not None and bool(self.benefit_switchable[members[0]])
            if len(members) == 1 and self.benefit_exclusive[members[0]] and self.benefit_kind[members[0]] != BenefitKind.FIXED_PRICE and not switchable:
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

    def __init__(self, rules: list[LineRule], n_sku: int, caps: list[Caps] | None = None, special: bool = False) -> None:
        self.rules = rules
        self.special_offset = n_sku if special else 0
        #: per line rule: its caps (``max discount``, ``budget``) clipped at its own step
        self.caps = caps if caps is not None else [Caps() for _ in rules]
        self.money_capped = [i for i, c in enumerate(self.caps) if c.clips_money]
        n_real = n_sku
        n_sku = 2 * n_sku if special else n_sku
        #: line rules the ledger can switch off (a budget, uses per customer)
        self.ledger_capped = [i for i, c in enumerate(self.caps) if c.budget is not None or c.uses_per_customer is not None]
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
                    item = np.concatenate([item, item if rule.includes_special else np.zeros(n_real, dtype=np.bool_)])
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
        self.conj_items = np.stack(conj_items) if conj_items else np.zeros((0, n_sku), dtype=np.bool_)
        iv = np.array(conj_iv, dtype=np.int64).reshape(-1, 4)
        self.conj_q = (self._cell_lo(self.qty_bounds, iv[:, 0]), self._cell_hi(self.qty_bounds, iv[:, 1]))
        self.conj_a = (self._cell_lo(self.amount_bounds, iv[:, 2]), self._cell_hi(self.amount_bounds, iv[:, 3]))
        self.fields = sorted(cart_fields(c for r in rules for c in r.conjuncts))
        self._benefits(rules)
        self.class_slots: dict[tuple[object, ...], int] = {}
        self.signature_slots: dict[bytes, int] = {}
        self.tables: list[I32] = []
        self._table_cache: I32 | None = None
        self._lock = threading.Lock()
        self._converted: dict[tuple[object, ...], tuple[I64, I64]] = {}

    # ---- compile-time tables ---------------------------------------------------------------

    @staticmethod
    def _cell_lo(bounds: I64, lo: I64) -> I64:
        cells: I64 = np.where(lo <= LOW, 0, np.searchsorted(bounds, lo, side="right"))
        return cells

    @staticmethod
    def _cell_hi(bounds: I64, hi: I64) -> I64:
        cells: I64 = np.where(hi >= HIGH, len(bounds) + 1, np.searchsorted(bounds, hi, side="right"))
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
            step = np.searchsorted(np.array(rule.tier_thresholds, dtype=np.int64), measure, side="right") - 1
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
            benefit_switchable=np.isin(self.benefit_rule, np.array(self.ledger_capped, dtype=np.int32)),
        )

    # ---- money in another currency -------------------------------------------------------------

    def in_currency(self, rate: tuple[int, int], src: str, dst: str, mode: Rounding) -> tuple[I64, I64]:
        """The amount cell edges and per-unit benefit amounts converted from the ruleset
        currency into a cart's currency at ``rate`` (each figure rounded once), cached."""
        key = (rate, src, dst, mode)
        found = self._converted.get(key)
        if found is None:
            def conv(values: I64) -> I64:
                return np.array([convert_minor(int(v), rate, src, dst, mode) for v in values.tolist()], dtype=np.int64)

            found = (conv(self.amount_bounds), conv(self.benefit_amount))
            self._converted[key] = found
        return found

    # ---- per-signature tables ------------------------------------------------------------------

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
        uniq, inverse = np.unique(padded, axis=0, return_inverse=True)
        pids = np.array([self.programs.intern(tuple(int(x) for x in row if x >= 0)) for row in uniq], dtype=np.int32)
        table[slot[starts]] = pids[inverse.reshape(-1)]
        return table

    def _slot_for(self, active: BoolArray) -> int:
        key = np.packbits(active).tobytes()
        slot = self.signature_slots.get(key)
        if slot is None:
            slot = len(self.tables)
            self.tables.append(self._build_table(active))
            self.signature_slots[key] = slot
            self._table_cache = None
        return slot

    def _all_tables(self) -> I32:
        if self._table_cache is None:
            self._table_cache = np.concatenate(self.tables) if self.tables else np.zeros(0, dtype=np.int32)
        return self._table_cache

    # ---- lookups ---------------------------------------------------------------------------------

    def class_slots_for(self, classes: pl.DataFrame) -> npt.NDArray[np.int64]:
        """The table slot of each distinct cart context (evaluating cart atoms once per context)."""
        keys: list[tuple[object, ...]] = classes.select(self.fields).rows() if self.fields else [()] * classes.height
        slots = np.empty(len(keys), dtype=np.int64)
        missing = [i for i, k in enumerate(keys) if k not in self.class_slots]
        if missing:
            with self._lock:
                self._add_classes(classes, keys, missing)
        for i, k in enumerate(keys):
            slots[i] = self.class_slots[k]
        return slots

    def _add_classes(self, classes: pl.DataFrame, keys: list[tuple[object, ...]], missing: list[int]) -> None:
        missing = [i for i in missing if keys[i] not in self.class_slots]
        if not missing:
            return
        columns = frame_columns(classes[missing]) if self.fields else {}
        active = (
            np.stack([evaluate_cart(c, columns, len(missing)) for c in self.conj_cart], axis=1)
            if self.conj_cart
            else np.zeros((len(missing), 0), dtype=np.bool_)
        )
        for row, i in enumerate(missing):
            self.class_slots[keys[i]] = self._slot_for(active[row])

    def slot_of_context(self, values: dict[str, object]) -> int:
        """The table slot for one cart's context values (cached after the first time)."""
        key = tuple(values.get(f) for f in self.fields)
        slot = self.class_slots.get(key)
        if slot is None:
            schema = {f: (pl.Int64 if f == "date" else pl.String) for f in self.fields}
            frame = pl.DataFrame([list(key)], schema=schema, orient="row") if self.fields else pl.DataFrame({"_": [0]})
            slot = int(self.class_slots_for(frame)[0])
        return slot

    def table(self) -> I32:
        with self._lock:
            return self._all_tables()

    def programs_for(
        self, carts: pl.DataFrame, line_cart: I64, sku: I64, qty: I64, amount: I64, amount_cell: I64 | None = None
    ) -> I32:
        """The program of every line (0 = no line promotion applies). ``amount_cell``
        overrides the amount cells (carts in another currency compare converted edges)."""
        if not self.rules:
            return np.zeros(len(sku), dtype=np.int32)
        class_of_cart, classes = context_classes(carts, self.fields)
        slot_of_class = self.class_slots_for(classes)
        table_slot = slot_of_class[class_of_cart][line_cart]
        qc = np.searchsorted(self.qty_bounds, qty, side="right")
        ac = np.searchsorted(self.amount_bounds, amount, side="right") if amount_cell is None else amount_cell
        cell = qc * self.n_acells + ac
        flat = (table_slot * self.n_sku + sku) * self.n_cells + cell
        result: I32 = self.table()[flat]
        return result

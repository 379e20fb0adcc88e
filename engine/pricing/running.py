"""The running state of a batch through stages 5-9, and what every cart-level promotion
produces: an ``Effect`` (units consumed, discount per line, gifts per cart), computed
without side effects so that best-of groups can compare members before one is kept."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import polars as pl

from engine.core.allocate import cart_sums
from engine.plan.cart_rules import CartRule
from engine.plan.compiled import Plan
from engine.plan.conditions import cart_holds
from engine.pricing.cart import CartBatch
from engine.pricing.line_promotions import Adjustments

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

#: adjustment rule id of a manual discount (it has no rule)
MANUAL_RULE = -1


@dataclass
class GiftRequest:
    cart: I64
    rule_id: int
    sku: I64  # per cart
    units: I64  # whole units per cart after ``max N gifts per order``
    earned: I64  # whole units earned per cart before any cap


@dataclass(frozen=True)
class CartMoney:
    """Money written in rules (ruleset currency) in each cart's currency: converted at the
    cart date's ruleset->cart rate, each figure rounded once (identity for carts in the
    ruleset currency)."""

    rate_of_cart: I64  # index into ``rates``; -1 = the ruleset currency (or no rate)
    rates: tuple[tuple[tuple[int, int], str, str], ...]  # (rate, from, to)
    mode: str
    no_rate: Bool  # per cart: in another currency with no ruleset->cart rate
    _cache: dict[int, I64] = field(default_factory=dict)

    def of(self, value: int) -> I64:
        found = self._cache.get(value)
        if found is None:
            from engine.core.money import convert_minor

            converted = [
                convert_minor(value, rate, src, dst, self.mode)  # type: ignore[arg-type]
                for rate, src, dst in self.rates
            ]
            lookup = np.array([value, *converted], dtype=np.int64)
            found = lookup[self.rate_of_cart + 1]
            self._cache[value] = found
        return found


@dataclass
class Running:
    """Per-line figures all cart-level stages read and update (lines grouped by cart)."""

    carts: pl.DataFrame
    line_cart: I64
    cart_starts: I64
    sku: I64
    qty: I64
    net: I64
    eligible: Bool  # priced, not a gift
    stopped: Bool  # an exclusive promotion applied to the line
    consumed: I64  # thousandths consumed by combos and pools
    adjustments: list[Adjustments] = field(default_factory=list)
    gifts: list[GiftRequest] = field(default_factory=list)
    money: CartMoney | None = None
    # the ledger view's own mappings, read-only (never copied per quote: they grow with the ledger)
    budget_used: Mapping[int, int] = field(default_factory=dict)  # rule id -> minor units (ledger)
    uses: Mapping[tuple[int, str], int] = field(
        default_factory=dict
    )  # (rule id, customer) -> orders
    gift_stock_used: Mapping[int, int] = field(default_factory=dict)  # rule id -> units (ledger)
    money_blocks: bool = (
        False  # the rules name money: carts with no rate into their currency get no promotions
    )
    special: Bool | None = None  # per row: a special-price sub-line (None: no line is split)

    def switched_off(self, rule: CartRule) -> Bool:
        """Per cart: nothing left of the rule's budget (in the cart's currency), or the
        customer already used it ``uses N per customer`` times."""
        off = np.zeros(self.n_carts, dtype=np.bool_)
        if rule.caps.budget is not None:
            left = max(0, rule.caps.budget - self.budget_used.get(rule.rule_id, 0))
            off |= self.in_cart_currency(left) <= 0
        if rule.caps.uses_per_customer is not None:
            customers = self.carts["customer.id"].to_list()
            used = np.array(
                [self.uses.get((rule.rule_id, c), 0) if c is not None else 0 for c in customers],
                dtype=np.int64,
            )
            off |= used >= rule.caps.uses_per_customer
        return off

    def money_cap(self, rule: CartRule) -> I64 | None:
        """Per cart: the most this rule may take (max discount per order, budget left), in
        the cart's currency; None when it has neither cap."""
        caps = []
        if rule.caps.max_discount is not None:
            caps.append(self.in_cart_currency(rule.caps.max_discount))
        if rule.caps.budget is not None:
            left = max(0, rule.caps.budget - self.budget_used.get(rule.rule_id, 0))
            caps.append(self.in_cart_currency(left))
        if not caps:
            return None
        result: I64 = np.minimum.reduce(caps)
        return result

    def in_cart_currency(self, value: int) -> I64:
        """A rule's money figure, per cart, in the cart's currency."""
        if self.money is None:
            return np.full(self.n_carts, value, dtype=np.int64)
        return self.money.of(value)

    @property
    def n_carts(self) -> int:
        return len(self.cart_starts)

    def cart_applies(self, rule: CartRule) -> Bool:
        """Per cart: the rule's ``when`` and validity window hold, and no cap switched it off."""
        holds = cart_holds(rule.conjuncts, self.carts)
        if self.money is not None and self.money_blocks:
            holds = holds & ~self.money.no_rate  # rule money can't be put in these carts' currency
        if rule.caps.budget is not None or rule.caps.uses_per_customer is not None:
            holds = holds & ~self.switched_off(rule)
        return holds

    def open_lines(self, rule: CartRule | None = None) -> Bool:
        """Rows a promotion may count and touch: priced, not a gift, not stopped, and not a
        special-price sub-line unless the promotion ``includes special``."""
        open_: Bool = self.eligible & ~self.stopped
        if self.special is not None and (rule is None or not rule.includes_special):
            open_ = open_ & ~self.special
        return open_


@dataclass
class Effect:
    rule: CartRule
    applies: Bool  # per cart
    consumed: I64  # per line, thousandths taken now
    discount: I64  # per line, >= 0
    kind: int | I64  # benefit kind code for the adjustment rows (or one per cart)
    gift_units: I64  # per cart, after ``max N gifts per order``
    touched: Bool  # per line: the promotion applied to it (for exclusive stops)
    position: int
    gifts_earned: I64 | None = None  # per cart, before the cap (None: same as gift_units)
    gift_sku: I64 | None = None  # per cart, when steps give different gifts (order tiers)

    def value(
        self,
        gifts_worth: GiftsWorth | None,
        cart_starts: I64,
        stock_used: Mapping[int, int] | None = None,
    ) -> I64:
        """Per cart: what the member gives (discount plus the list value of the gifts it
        would give: after its per-order cap and the gift stock left, priced at the break
        for that quantity)."""
        total = cart_sums(self.discount, cart_starts)
        if gifts_worth is not None:
            units = self.gift_units
            if self.rule.caps.gift_stock is not None:
                left = max(
                    0, self.rule.caps.gift_stock - (stock_used or {}).get(self.rule.rule_id, 0)
                )
                units = np.minimum(units, left)
            total = total + gifts_worth(self, units)
        result: I64 = np.where(self.applies, total, -1)
        return result


#: (member, whole gift units per cart) -> per cart, the list amount of those gifts
GiftsWorth = Callable[[Effect, I64], I64]


def best_per_cart(effects: list[Effect], values: list[I64]) -> I64:
    """Index of the member each cart keeps: the largest value, ties to the earlier member;
    -1 where no member applies."""
    stacked = np.stack(values)  # [member, cart]
    best = np.argmax(stacked, axis=0)  # argmax keeps the first of equal values
    none = stacked.max(axis=0) < 0
    result: I64 = np.where(none, -1, best).astype(np.int64)
    return result


def keep_carts(effect: Effect, keep: Bool, line_cart: I64) -> Effect:
    """The effect restricted to the carts in ``keep``."""
    on_line = keep[line_cart]
    return Effect(
        rule=effect.rule,
        applies=effect.applies & keep,
        consumed=np.where(on_line, effect.consumed, 0),
        discount=np.where(on_line, effect.discount, 0),
        kind=effect.kind,
        gift_units=np.where(keep, effect.gift_units, 0),
        touched=effect.touched & on_line,
        position=effect.position,
        gifts_earned=None
        if effect.gifts_earned is None
        else np.where(keep, effect.gifts_earned, 0),
        gift_sku=effect.gift_sku,
    )


def apply_effect(state: Running, effect: Effect, stage: int) -> None:
    rows = np.nonzero(effect.discount > 0)[0]
    state.net -= effect.discount
    state.consumed += effect.consumed
    if len(rows):
        state.adjustments.append(
            Adjustments(
                line=rows,
                rule=np.full(len(rows), effect.rule.rule_id, dtype=np.int64),
                kind=np.full(len(rows), effect.kind, dtype=np.int64)
                if isinstance(effect.kind, int)
                else effect.kind[state.line_cart[rows]],
                amount=-effect.discount[rows],
                stage=np.full(len(rows), stage, dtype=np.int64),
                position=np.full(len(rows), effect.position, dtype=np.int64),
            )
        )
    if effect.rule.exclusive:
        state.stopped |= effect.touched
    given = np.nonzero(
        (effect.gift_units > 0)
        | ((effect.gifts_earned if effect.gifts_earned is not None else effect.gift_units) > 0)
    )[0]
    if len(given):
        benefits = [
            b
            for b in (effect.rule.benefit, *effect.rule.step_benefits)
            if b is not None and b.kind == "gift"
        ]
        earned = effect.gift_units if effect.gifts_earned is None else effect.gifts_earned
        skus = (
            effect.gift_sku[given]
            if effect.gift_sku is not None
            else np.full(len(given), benefits[0].gift_sku, dtype=np.int64)
        )
        state.gifts.append(
            GiftRequest(
                cart=given,
                rule_id=effect.rule.rule_id,
                sku=skus,
                units=effect.gift_units[given],
                earned=earned[given],
            )
        )


def cart_money(plan: Plan, batch: CartBatch) -> CartMoney | None:
    """Per-cart conversion of rule money, when some cart is not in the ruleset currency."""
    currency = batch.carts["currency"].to_list()
    dates = batch.carts["date"].to_list()
    if all(c == plan.currency for c in set(currency)):
        return None
    rates: list[tuple[tuple[int, int], str, str]] = []
    index: dict[tuple[str, int], int] = {}
    rate_of_cart = np.full(len(currency), -1, dtype=np.int64)
    no_rate = np.zeros(len(currency), dtype=np.bool_)
    for c, (cur, day) in enumerate(zip(currency, dates, strict=True)):
        if cur == plan.currency:
            continue
        key = (cur, day)
        if key not in index:
            rate = plan.fx.rate(plan.currency, cur, day)
            index[key] = len(rates) if rate is not None else -1
            if rate is not None:
                rates.append((rate, plan.currency, cur))
        rate_of_cart[c] = index[key]
        no_rate[c] = index[key] < 0
    return CartMoney(
        rate_of_cart=rate_of_cart, rates=tuple(rates), mode=plan.rounding, no_rate=no_rate
    )


def steps_of(rules: list[CartRule]) -> list[tuple[int, list[CartRule]]]:
    """Evaluation steps: each rule alone, or a best-of group at its first member's place."""
    steps: list[tuple[int, list[CartRule]]] = []
    groups: dict[str, list[CartRule]] = {}
    for rule in rules:
        if rule.group is None:
            steps.append((rule.rule_id, [rule]))
        elif rule.group in groups:
            groups[rule.group].append(rule)
        else:
            groups[rule.group] = [rule]
            steps.append((rule.rule_id, groups[rule.group]))
    return steps

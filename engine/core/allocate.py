"""Per-cart segment arithmetic and largest-remainder allocation, exact in integers.

Lines of a batch are grouped by cart (cart order, then line order), so per-cart sums are
``np.add.reduceat`` over cart starts and per-cart ranks come from one ``lexsort``.

>>> import numpy as np
>>> allocate(np.array([1000]), np.array([3800, 9000]), np.array([0, 0]), np.array([0]))
array([297, 703])
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

#: products below this stay in int64; above it the allocation is done with Python ints
_SAFE = 1 << 62


def cart_sums(values: I64, cart_starts: I64) -> I64:
    """The sum of ``values`` over each cart's lines (carts are contiguous; a cart with no
    lines sums to 0 — ``reduceat`` alone would repeat its neighbour's first value)."""
    n = len(values)
    if n == 0:
        return np.zeros(len(cart_starts), dtype=np.int64)
    ends = np.append(cart_starts[1:], n)
    filled = ends > cart_starts
    sums = np.zeros(len(cart_starts), dtype=np.int64)
    # only the filled carts' starts: an empty cart's start clamped into range would cut
    # its neighbour's segment short
    sums[filled] = np.add.reduceat(values, cart_starts[filled])
    return sums


def cart_starts_of(line_cart: I64, n_carts: int) -> I64:
    starts: I64 = np.searchsorted(line_cart, np.arange(n_carts), side="left").astype(np.int64)
    return starts


def allocate(
    amount: I64, weight: I64, line_cart: I64, cart_starts: I64, take: Bool | None = None
) -> I64:
    """Spread each cart's ``amount`` over its lines by ``weight``, largest remainder.

    ``share_i = floor(A * w_i / W)``; the leftover minor units go one each to the largest
    remainders ``(A * w_i) mod W``, ties to the earlier line. Shares sum exactly to ``A``.
    Lines with ``take`` False (default: weight > 0) get nothing; a cart whose weights are
    all zero gives its whole amount to its first taking line. ``amount`` >= 0.
    """
    n = len(weight)
    if take is None:
        take = weight > 0
    weight = np.where(take, weight, 0)
    total = cart_sums(weight, cart_starts)
    a_line = amount[line_cart]
    w_total = total[line_cart]
    exact = _products_fit(amount, weight)
    if exact:
        num = a_line * weight
        safe_total = np.maximum(w_total, 1)
        share = num // safe_total
        remainder = num % safe_total
    else:
        num_o = a_line.astype(object) * weight.astype(object)
        den_o = np.maximum(w_total, 1).astype(object)
        share = (num_o // den_o).astype(np.int64)
        remainder_o = num_o % den_o
        # ranks only need the order of remainders: a dense rank (equal values, equal rank)
        order_o = np.argsort(remainder_o, kind="stable")
        ordered = remainder_o[order_o]
        step = (
            np.concatenate([[True], ordered[1:] != ordered[:-1]])
            if n
            else np.zeros(0, dtype=np.bool_)
        )
        remainder = np.empty(n, dtype=np.int64)
        remainder[order_o] = np.cumsum(step) - 1
    share = np.where(take, share, 0)
    # carts whose weights are all zero: everything to the first taking line
    zero_weight = (total == 0) & (amount > 0)
    if zero_weight.any():
        first = _first_taking(take, line_cart, cart_starts, len(amount))
        carts = np.nonzero(zero_weight & (first >= 0))[0]
        share[first[carts]] = amount[carts]
    leftover = amount - cart_sums(share, cart_starts)
    leftover = np.where(zero_weight, 0, leftover)
    if leftover.any():
        position = np.arange(n)
        order = np.lexsort((position, -remainder, ~take, line_cart))
        rank = np.empty(n, dtype=np.int64)
        sorted_cart = line_cart[order]
        rank[order] = np.arange(n) - cart_starts[sorted_cart]
        share += (take & (rank < leftover[line_cart])).astype(np.int64)
    result: I64 = share
    return result


def _products_fit(amount: I64, weight: I64) -> bool:
    if len(weight) == 0 or len(amount) == 0:
        return True
    return int(np.max(np.abs(amount))) * int(np.max(np.abs(weight))) < _SAFE


def _first_taking(take: Bool, line_cart: I64, cart_starts: I64, n_carts: int) -> I64:
    """Each cart's first taking line (-1 if none)."""
    idx = np.nonzero(take)[0]
    seen = np.full(n_carts, len(take), dtype=np.int64)
    np.minimum.at(seen, line_cart[idx], idx)
    first: I64 = np.where(seen < len(take), seen, -1)
    return first


def clip_to_cap(discount: I64, cap: I64, line_cart: I64, cart_starts: I64) -> I64:
    """Clip each cart's total ``discount`` to ``cap`` (per cart; -1 = no cap). What is kept
    is spread pro rata by the unclipped discounts (largest remainder)."""
    total = cart_sums(discount, cart_starts)
    over = (cap >= 0) & (total > cap)
    if not over.any():
        return discount
    kept = np.where(over, cap, total)
    clipped = allocate(kept, discount, line_cart, cart_starts, take=discount > 0)
    result: I64 = np.where(over[line_cart], clipped, discount)
    return result

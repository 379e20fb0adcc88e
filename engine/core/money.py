"""Money, quantities, percentages and rounding: the one module that converts and rounds.

Inside the engine every amount is an integer count of its currency's minor unit,
every quantity an integer count of thousandths (``QTY_SCALE``), every percentage
an integer count of basis points (1% = 100 bp). Decimal strings exist only at the
edges: ``parse_*`` reads them, ``format_*`` writes them.

>>> parse_money("1234.5", "CNY")
123450
>>> format_money(-450, "CNY")
'-4.50'
>>> round_div(44995, 10000, "half_up")   # 4.4995 -> 4.50 at two decimals (on 1e-4 units)
4
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

Rounding = Literal["half_up", "half_even"]
ROUNDING_MODES: tuple[Rounding, ...] = ("half_up", "half_even")

QTY_SCALE = 1000  # quantities carry at most 3 fractional digits
QTY_DIGITS = 3
BP_SCALE = 10_000  # 100% in basis points
PERCENT_DIGITS = 2  # at most 2 fractional digits of a percent

#: ISO 4217 minor-unit exponents. A currency missing here is refused at check time.
CURRENCY_EXPONENTS: dict[str, int] = {
    "AED": 2,
    "AUD": 2,
    "BHD": 3,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CNY": 2,
    "CZK": 2,
    "DKK": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "HUF": 2,
    "IDR": 2,
    "ILS": 2,
    "INR": 2,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "MXN": 2,
    "MYR": 2,
    "NOK": 2,
    "NZD": 2,
    "OMR": 3,
    "PHP": 2,
    "PLN": 2,
    "RUB": 2,
    "SAR": 2,
    "SEK": 2,
    "SGD": 2,
    "THB": 2,
    "TRY": 2,
    "TWD": 2,
    "USD": 2,
    "VND": 0,
    "ZAR": 2,
}

#: Documented limits; input beyond them is refused with a clear error.
MAX_LINE_AMOUNT_MINOR = 10**15  # a line amount stays below 10^15 minor units
MAX_UNIT_PRICE_MINOR = 10**12
MAX_QTY_MILLI = 10**12  # one billion base units per line
MAX_FX_DIGITS = 10  # fractional digits of an exchange rate


class MoneyError(ValueError):
    """A money, quantity or percentage literal that cannot be held exactly."""


def exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r}") from None


#: what a decimal looks like at the edges: ASCII digits, an optional sign and point; no
#: exponents, underscores, other scripts' digits or infinities (which ``Decimal`` accepts)
DECIMAL_SYNTAX = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)


def _decimal(text: str, what: str) -> Decimal:
    if not isinstance(text, str) or DECIMAL_SYNTAX.fullmatch(text.strip()) is None:
        raise MoneyError(f"{what} {text!r} is not a decimal number")
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise MoneyError(f"{what} {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise MoneyError(f"{what} {text!r} is not a finite number")
    return value


def _scaled(value: Decimal, digits: int, what: str, text: str) -> int:
    scaled = value.scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{what} {text!r} has more than {digits} fractional digits")
    return int(scaled)


def parse_money(text: str, currency: str) -> int:
    """Decimal string -> integer minor units; more digits than the currency has is an error."""
    digits = exponent(currency)
    return _scaled(_decimal(text, "amount"), digits, f"{currency} amount", text)


def format_money(minor: int, currency: str) -> str:
    digits = exponent(currency)
    minor = int(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}" if digits else f"{sign}{whole}"


def money_formatter(currency: str) -> Callable[[int], str]:
    """``format_money`` specialised to one currency (the response writer's hot loop)."""
    digits = exponent(currency)
    scale = 10**digits
    if digits == 0:
        return lambda minor: str(int(minor))

    def fmt(minor: int) -> str:
        if minor < 0:
            whole, frac = divmod(-minor, scale)
            return f"-{whole}.{frac:0{digits}d}"
        whole, frac = divmod(minor, scale)
        return f"{whole}.{frac:0{digits}d}"

    return fmt


def parse_quantity(text: str) -> int:
    """Decimal string -> integer thousandths. ``"1.5"`` -> 1500."""
    return _scaled(_decimal(text, "quantity"), QTY_DIGITS, "quantity", text)


def format_quantity(milli: int) -> str:
    milli = int(milli)
    sign = "-" if milli < 0 else ""
    whole, frac = divmod(abs(milli), QTY_SCALE)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:03d}".rstrip("0")


def parse_percent(text: str) -> int:
    """``"12.5%"`` or ``"12.5"`` -> 1250 basis points."""
    body = text.strip().removesuffix("%")
    return _scaled(_decimal(body, "percentage"), PERCENT_DIGITS, "percentage", text)


def format_percent(bp: int) -> str:
    whole, frac = divmod(abs(int(bp)), 100)
    sign = "-" if bp < 0 else ""
    if frac == 0:
        return f"{sign}{whole}%"
    return f"{sign}{whole}.{frac:02d}".rstrip("0") + "%"


def parse_rate(text: str) -> tuple[int, int]:
    """An exchange rate as an exact fraction (numerator, denominator = 10^k)."""
    value = _decimal(text, "exchange rate")
    if value <= 0:
        raise MoneyError(f"exchange rate {text!r} must be positive")
    exp = value.as_tuple().exponent
    digits = max(0, -exp) if isinstance(exp, int) else 0
    if digits > MAX_FX_DIGITS:
        raise MoneyError(f"exchange rate {text!r} has more than {MAX_FX_DIGITS} fractional digits")
    return int(value.scaleb(digits)), 10**digits


IntArray = npt.NDArray[np.int64]


@overload
def round_div(num: int, den: int, mode: Rounding) -> int: ...
@overload
def round_div(num: IntArray, den: int | IntArray, mode: Rounding) -> IntArray: ...
def round_div(num: int | IntArray, den: int | IntArray, mode: Rounding) -> int | IntArray:
    """``num / den`` rounded to an integer, on the magnitude: half away from zero or half even.

    ``den`` must be positive. Works on Python ints (exact at any size) and int64 arrays.
    """
    if isinstance(num, np.ndarray):
        mag = np.abs(num)
        q, r = np.divmod(mag, den)
        twice = 2 * r
        if mode == "half_up":
            up = twice >= den
        else:
            up = (twice > den) | ((twice == den) & (q % 2 == 1))
        out: IntArray = (q + up) * np.sign(num)
        return out
    assert isinstance(den, int)
    mag_i = abs(num)
    q_i, r_i = divmod(mag_i, den)
    twice_i = 2 * r_i
    if mode == "half_up":
        up_i = twice_i >= den
    else:
        up_i = twice_i > den or (twice_i == den and q_i % 2 == 1)
    result = q_i + int(up_i)
    return -result if num < 0 else result


def int_round_div(num: int, den: int, half_even: bool) -> int:
    """``round_div`` for Python ints only, without dispatch (the small-batch path's hot loop)."""
    q, r = divmod(-num if num < 0 else num, den)
    twice = r + r
    if twice > den or (twice == den and (not half_even or q & 1)):
        q += 1
    return -q if num < 0 else q


_FAST_LIMIT = 1 << 61


def _small_non_negative(a: IntArray, b: int | IntArray) -> bool:
    if a.size == 0:
        return True
    a_min, a_max = int(a.min()), int(a.max())
    if isinstance(b, np.ndarray):
        b_min, b_max = (int(b.min()), int(b.max())) if b.size else (0, 0)
    else:
        b_min = b_max = int(b)
    return a_min >= 0 and b_min >= 0 and a_max * b_max < _FAST_LIMIT


def _split_fits(b: int | IntArray, den: int | IntArray) -> bool:
    """The split ``q*b + r*b/den`` stays in int64 while ``den * |b|`` does."""
    b_max = (
        int(np.max(np.abs(b)))
        if isinstance(b, np.ndarray) and b.size
        else abs(int(b))
        if not isinstance(b, np.ndarray)
        else 0
    )
    d_max = (
        int(np.max(den))
        if isinstance(den, np.ndarray) and den.size
        else int(den)
        if not isinstance(den, np.ndarray)
        else 0
    )
    return b_max * d_max < _FAST_LIMIT


def _mul_div_round_exact(
    a: IntArray, b: int | IntArray, den: int | IntArray, mode: Rounding
) -> IntArray:
    """The same rounding with Python integers (rare: only for figures near the limits)."""
    n = len(a)
    bs = b.tolist() if isinstance(b, np.ndarray) else [int(b)] * n
    ds = den.tolist() if isinstance(den, np.ndarray) else [int(den)] * n
    out = [round_div(x * y, d, mode) for x, y, d in zip(a.tolist(), bs, ds, strict=True)]
    return np.array(out, dtype=np.int64)


@overload
def mul_div_round(a: int, b: int, den: int, mode: Rounding) -> int: ...
@overload
def mul_div_round(
    a: IntArray, b: int | IntArray, den: int | IntArray, mode: Rounding
) -> IntArray: ...
def mul_div_round(
    a: int | IntArray, b: int | IntArray, den: int | IntArray, mode: Rounding
) -> int | IntArray:
    """``a * b / den`` rounded, without forming ``a * b`` (which could overflow int64).

    ``a = q*den + r`` so ``a*b/den = q*b + r*b/den``; callers keep ``|a|/den * |b|`` and
    ``den * |b|`` inside int64 (the documented limits do).
    """
    if isinstance(a, np.ndarray):
        if _small_non_negative(a, b):
            # the common case: a*b cannot overflow and nothing is negative: one pass
            num = a * b
            if mode == "half_up":
                fast: IntArray = (num + num + den) // (den + den)
                return fast
            q, r = np.divmod(num, den)
            twice = r + r
            even: IntArray = q + ((twice > den) | ((twice == den) & (q % 2 == 1)))
            return even
        if not _split_fits(b, den):
            return _mul_div_round_exact(a, b, den, mode)
        sign = np.sign(a) * np.sign(b)
        mag_a = np.abs(a)
        mag_b = np.abs(b)
        q, r = np.divmod(mag_a, den)
        whole = q * mag_b
        part = r * mag_b
        pq, pr = np.divmod(part, den)
        twice = 2 * pr
        if mode == "half_up":
            up = twice >= den
        else:
            total = whole + pq
            up = (twice > den) | ((twice == den) & (total % 2 == 1))
        out: IntArray = (whole + pq + up) * sign
        return out
    assert isinstance(b, int) and isinstance(den, int)
    return round_div(a * b, den, mode)


def convert_minor(amount: int, rate: tuple[int, int], src: str, dst: str, mode: Rounding) -> int:
    """Convert minor units of ``src`` to ``dst`` at ``rate`` (dst per src), rounded once."""
    num, den = rate
    shift = exponent(dst) - exponent(src)
    scale = int(10 ** abs(shift))
    if shift >= 0:
        return round_div(amount * num * scale, den, mode)
    return round_div(amount * num, den * scale, mode)


def convert_minor_many(
    amounts: IntArray, rate: tuple[int, int], src: str, dst: str, mode: Rounding
) -> IntArray:
    """``convert_minor`` over an array: each amount converted and rounded once, exactly."""
    num, den = rate
    shift = exponent(dst) - exponent(src)
    scale = int(10 ** abs(shift))
    if shift >= 0:
        return mul_div_round(amounts, num * scale, den, mode)
    return mul_div_round(amounts, num, den * scale, mode)
